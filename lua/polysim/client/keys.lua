-- Client methods for API keys (list, create, bootstrap, revoke, rotate, rename, tiers,
-- ws-token), mixed into the client's methods table by polysim.client (install).
local core = require "polysim.core"
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local error, ipairs = error, ipairs
local check_string, check_int, check_enum, check_table = args.check_string, args.check_int, args.check_enum, args.check_table
local check_keys, set, pathseg = args.check_keys, args.set, args.pathseg

local _M = {}

-- secret_of(client) -> the client's {api_key, bearer} record (polysim.client keeps it).
function _M.install(methods, secret_of)
  local TIERS = { "free", "pro", "pro_plus", "enterprise" }
  local PERMISSIONS = { "read", "trade" }

  function methods:keys_page(p)
    p = check_table("keys_page", "params", p, true)
    check_keys("keys_page", p, set { "limit", "offset" })
    return self:_call("GET", "/v1/keys", { auth = "either", query = {
      limit = check_int("keys_page", "limit", p.limit, 1, 100),
      offset = check_int("keys_page", "offset", p.offset, 0),
    } })
  end

  -- Iterates over the account's keys: one page (an account holds at most a handful; the
  -- server answers them all at once).
  function methods:keys(p)
    p = check_table("keys", "params", p, true)
    check_keys("keys", p, set { "page_size" })
    local page, err = self:keys_page { limit = check_int("keys", "page_size", p.page_size, 1, 100) or 100 }
    if not page then error(err, 2) end
    local list, i = paginate.list_of(page, { "keys", "items" }), 0
    return function()
      i = i + 1
      return list[i]
    end
  end

  local function key_body(fname, p)
    check_keys(fname, p, set { "name", "tier", "permissions" })
    local body = {
      name = check_string(fname, "name", p.name, true),
      tier = check_enum(fname, "tier", p.tier, TIERS, true),
    }
    if p.permissions ~= nil then
      check_table(fname, "permissions", p.permissions)
      body.permissions = core.array {}
      for i, perm in ipairs(p.permissions) do
        body.permissions[i] = check_enum(fname, "permissions[" .. i .. "]", perm, PERMISSIONS)
      end
    end
    return body
  end

  function methods:create_key(p)
    p = check_table("create_key", "params", p, true)
    return self:_call("POST", "/v1/keys", { auth = "either", body = key_body("create_key", p) })
  end

  -- bootstrap{ token = <Bearer JWT>, name = } creates the first key of an account.
  function methods:bootstrap(p)
    p = check_table("bootstrap", "params", p)
    check_keys("bootstrap", p, set { "token", "name" })
    local token = p.token or secret_of(self).bearer
    check_string("bootstrap", "token", token)
    return self:_call("POST", "/v1/keys/bootstrap", { auth = "bearer", bearer = token,
      body = { name = check_string("bootstrap", "name", p.name, true) } })
  end

  function methods:revoke_key(id)
    return self:_call("DELETE", "/v1/keys/" .. pathseg("revoke_key", "key_id", id, true), { auth = "either" })
  end

  function methods:rotate_key(id)
    return self:_call("POST", "/v1/keys/" .. pathseg("rotate_key", "key_id", id, true) .. "/rotate", { auth = "either" })
  end

  function methods:rename_key(id, name)
    local seg = pathseg("rename_key", "key_id", id, true)
    return self:_call("PATCH", "/v1/keys/" .. seg,
      { auth = "either", body = { name = check_string("rename_key", "name", name) } })
  end

  function methods:tiers() return self:_call("GET", "/v1/keys/tiers", { auth = "either" }) end
  function methods:ws_token() return self:_call("POST", "/v1/keys/ws-token", { auth = "either" }) end
end

return _M
