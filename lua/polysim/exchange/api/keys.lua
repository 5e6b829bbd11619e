-- Handlers: API keys (list, create, bootstrap, revoke, rotate, rename), tiers, WS tokens.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local R = require "polysim.exchange.request"

local array, absent = util.array, util.absent
local item = errors.item
local body_object, path_int, ok = R.body_object, R.path_int, R.ok

local H = {}

local function beta_gate(self, user)
  if not self.closed_beta then return end
  local code = "CLOSED_BETA"
  if self.closed_beta == "API_PRO_COMING_SOON" and user.plan ~= "free" then code = "API_PRO_COMING_SOON" end
  errors.throw(errors.human(403, code, code == "CLOSED_BETA" and
    ("API access is in closed beta. New keys are issued to approved cohorts only. " ..
     "Apply via the waitlist; we'll email you when a cohort opens.")
    or "Pro API access is rolling out in cohorts. Check /account/billing."))
end

local PERMS = { read = true, trade = true }

local function create_key(self, user, j, now)
  local items = {}
  local name = j.name
  if absent(name) then name = nil
  elseif type(name) ~= "string" then items[#items + 1] = item({ "body", "name" }, "Input should be a valid string",
      "string_type", name)
  elseif not util.valid_utf8(name) then
    items[#items + 1] = item({ "body", "name" }, "Input should be a valid UTF-8 string", "string_unicode")
  elseif #name > 100 then items[#items + 1] = item({ "body", "name" }, "String should have at most 100 characters",
      "string_too_long") end
  local tier = j.tier
  if absent(tier) then tier = nil
  elseif type(tier) ~= "string" then items[#items + 1] = item({ "body", "tier" }, "Input should be a valid string",
      "string_type", tier) end
  local perms = j.permissions
  if absent(perms) then perms = nil
  elseif type(perms) ~= "table" or (next(perms) ~= nil and perms[1] == nil) then
    items[#items + 1] = item({ "body", "permissions" }, "Input should be a valid list", "list_type")
  else
    for i, p in ipairs(perms) do
      if type(p) ~= "string" then items[#items + 1] = item({ "body", "permissions", i - 1 },
          "Input should be a valid string", "string_type", p) end
    end
  end
  if #items > 0 then errors.throw(errors.validation(items)) end
  tier = tier or user.plan
  if not keys.TIER_RANK[tier] then
    errors.fail(400, "INVALID_TIER", "Unknown tier '" .. tier .. "'; see GET /v1/keys/tiers",
      { valid_tiers = array { "free", "pro", "pro_plus", "enterprise" } })
  end
  local list
  if perms then
    list = {}
    local seen = {}
    for _, p in ipairs(perms) do
      if p == "admin" then errors.fail(403, "PERMISSION_DENIED",
          "The admin permission cannot be granted to API keys") end
      if not PERMS[p] then errors.fail(400, "INVALID_PERMISSION", "Unknown permission '" .. p .. "'",
          { valid = array { "read", "trade" } }) end
      if not seen[p] then seen[p] = true; list[#list + 1] = p end
    end
    if #list == 0 then list = nil end
  end
  if tier == "free" and list then
    for _, p in ipairs(list) do
      if p == "trade" then
        errors.fail(403, "TIER_REQUIRES_UPGRADE", "Free-tier keys are read-only: drop 'trade' or use a paid tier",
          { tier = "free", requested = array(util.copy(list)) })
      end
    end
  end
  if keys.TIER_RANK[tier] > keys.TIER_RANK[user.plan] then
    errors.fail(403, "TIER_REQUIRES_UPGRADE", "Your plan (" .. user.plan .. ") does not include " .. tier .. " keys",
      { plan = user.plan, requested_tier = tier })
  end
  if keys.active_count(user) >= keys.MAX_ACTIVE_KEYS then
    errors.fail(400, "MAX_KEYS_REACHED", "Maximum of 5 active API keys reached; revoke one first",
      { max_keys = keys.MAX_ACTIVE_KEYS })
  end
  local key, raw = keys.add_key(self.K, user, { name = name, tier = tier, permissions = list }, now)
  accounts.ensure_wallet(user, self.tiers, now)
  return ok(keys.created_view(key, raw), 201)
end

function H.keys_list(_, ctx, _, now)
  local out = array()
  for _, k in ipairs(ctx.user.keys) do
    if not k.revoked then out[#out + 1] = keys.key_info(k, now) end
  end
  return ok(out)
end

function H.keys_create(self, ctx, req, now)
  local j = body_object(req, true)
  beta_gate(self, ctx.user)
  return create_key(self, ctx.user, j, now)
end

function H.bootstrap(self, ctx, req, now)
  local j = body_object(req, true)
  beta_gate(self, ctx.user)
  for _, k in ipairs(ctx.user.keys) do
    if not k.revoked then
      errors.fail(400, "KEYS_ALREADY_EXIST", "You already have API key(s): use POST /v1/keys with X-API-Key instead")
    end
  end
  return create_key(self, ctx.user, j, now)
end

local function own_key(self, ctx, id)
  local k = self.K.by_id[path_int(id, "key_id")]
  if not k or k.user ~= ctx.user or k.revoked then errors.fail(404, "KEY_NOT_FOUND", "API key not found: " .. id) end
  return k
end

function H.key_delete(self, ctx, _, _, id)
  local k = own_key(self, ctx, id)
  k.is_active = false
  k.revoked = true
  return ok { message = "Key revoked successfully", id = k.id }
end

function H.key_rotate(self, ctx, _, now, id)
  local old = own_key(self, ctx, id)
  if not old.is_active then errors.fail(400, "KEY_INACTIVE", "Only active keys can be rotated") end
  local key, raw = keys.add_key(self.K, ctx.user,
    { name = old.name, tier = old.tier, permissions = util.copy(old.permissions) }, now)
  local exp = now + keys.ROTATE_OVERLAP
  if not old.expires_at or old.expires_at > exp then old.expires_at = exp end
  local v = keys.created_view(key, raw)
  v.rotated_from = old.id
  v.old_key_expires_at = util.iso(old.expires_at)
  return ok(v, 201)
end

function H.key_patch(self, ctx, req, now, id)
  local k = own_key(self, ctx, id)
  local j = body_object(req)
  local name = j.name
  if absent(name) then name = nil
  elseif type(name) ~= "string" then errors.invalid({ "body", "name" }, "Input should be a valid string",
      "string_type", name)
  elseif not util.valid_utf8(name) then
    errors.invalid({ "body", "name" }, "Input should be a valid UTF-8 string", "string_unicode")
  elseif #name > 100 then errors.invalid({ "body", "name" }, "String should have at most 100 characters",
      "string_too_long") end
  k.name = name
  return ok(keys.key_info(k, now))
end

function H.tiers(self)
  local out = array()
  for i, name in ipairs(keys.TIER_ORDER) do out[i] = keys.tier_info(self.tiers[name]) end
  return ok(out)
end

function H.ws_token(self, ctx, _, now)
  return ok { token = keys.mint_ws_token(self.K, ctx, now, self.ws_token_ttl), expires_in = self.ws_token_ttl }
end

return H
