-- luacheck: std +busted
-- Keys, tiers, JWT surfaces, WebSocket tokens, rate limits and fault injection of the local
-- exchange, through ex:handle.
local exchange = require "polysim.exchange"

local T0 = 1790000000

local function setup(opts)
  opts = opts or {}
  local clock = { t = T0 }
  opts.clock = function() return clock.t end
  opts.seed = opts.seed or 11
  return assert(exchange.new(opts)), clock
end

local function call(ex, method, path, o)
  o = o or {}
  local headers = o.headers or { ["x-api-key"] = o.key or ex.api_key }
  return ex:handle { method = method, path = path, query = o.query or {}, headers = headers, json = o.json }
end

local function code(r) return r.headers["X-Polysim-Code"] end

describe("exchange keys", function()
  local ex, clock
  before_each(function() ex, clock = setup() end)

  it("creates keys once-shown, lists prefixes only", function()
    local r = call(ex, "POST", "/v1/keys", { json = { name = "bot", permissions = { "read", "trade" } } })
    assert.are.equal(201, r.status)
    local k = r.body
    assert.are.equal(72, #k.raw_key)
    assert.is_truthy(k.raw_key:match("^ps_live_[0-9a-f]+$"))
    assert.are.equal(k.raw_key:sub(1, 16), k.key_prefix)
    assert.are.equal("pro", k.rate_limit_tier)
    assert.are.same({ "read", "trade" }, { k.permissions[1], k.permissions[2] })
    assert.is_string(k.created_at)
    local list = call(ex, "GET", "/v1/keys").body
    assert.are.equal(2, #list)
    for _, info in ipairs(list) do
      assert.is_nil(info.raw_key)
      assert.are.equal(16, #info.key_prefix)
      assert.is_true(info.is_active)
    end
    assert.are.equal(200, call(ex, "GET", "/v1/account/balance", { key = k.raw_key }).status)
  end)

  it("applies tier defaults and the free-tier rule", function()
    local r = call(ex, "POST", "/v1/keys", { json = { tier = "free" } })
    assert.are.equal(201, r.status)
    assert.are.same({ "read" }, { table.unpack(r.body.permissions) })
    r = call(ex, "POST", "/v1/keys", { json = { tier = "free", permissions = { "read", "trade" } } })
    assert.are.equal(403, r.status)
    assert.are.equal("TIER_REQUIRES_UPGRADE", code(r))
    r = call(ex, "POST", "/v1/keys", { json = { tier = "gold" } })
    assert.are.equal(400, r.status)
    assert.are.equal("INVALID_TIER", code(r))
    r = call(ex, "POST", "/v1/keys", { json = { tier = "enterprise" } })
    assert.are.equal("TIER_REQUIRES_UPGRADE", code(r))
    r = call(ex, "POST", "/v1/keys", { json = { name = 5 } })
    assert.are.equal(422, r.status)
  end)

  it("allows at most 5 active keys", function()
    for _ = 1, 4 do assert.are.equal(201, call(ex, "POST", "/v1/keys", { json = {} }).status) end
    local r = call(ex, "POST", "/v1/keys", { json = {} })
    assert.are.equal(400, r.status)
    assert.are.equal("MAX_KEYS_REACHED", code(r))
  end)

  it("revokes keys", function()
    local k = call(ex, "POST", "/v1/keys", { json = {} }).body
    local r = call(ex, "DELETE", "/v1/keys/" .. k.id)
    assert.are.equal(200, r.status)
    assert.are.equal("Key revoked successfully", r.body.message)
    assert.are.equal("INVALID_API_KEY", code(call(ex, "GET", "/v1/markets", { key = k.raw_key })))
    assert.are.equal(404, call(ex, "DELETE", "/v1/keys/" .. k.id).status)
    assert.are.equal(404, call(ex, "DELETE", "/v1/keys/999").status)
    assert.are.equal(1, #call(ex, "GET", "/v1/keys").body)
  end)

  it("rotates with a 24 h overlap, then KEY_EXPIRED", function()
    local k = call(ex, "POST", "/v1/keys", { json = { name = "old" } }).body
    local r = call(ex, "POST", "/v1/keys/" .. k.id .. "/rotate")
    assert.are.equal(201, r.status)
    local new = r.body
    assert.are_not.equal(k.raw_key, new.raw_key)
    assert.are.equal("old", new.name)
    assert.are.equal(200, call(ex, "GET", "/v1/markets", { key = k.raw_key }).status)
    local info
    for _, i in ipairs(call(ex, "GET", "/v1/keys").body) do if i.id == k.id then info = i end end
    assert.is_string(info.expires_at)
    clock.t = T0 + 24 * 3600 + 1
    local e = call(ex, "GET", "/v1/markets", { key = k.raw_key })
    assert.are.equal(401, e.status)
    assert.are.equal("KEY_EXPIRED", code(e))
    assert.are.equal(200, call(ex, "GET", "/v1/markets", { key = new.raw_key }).status)
  end)

  it("renames with PATCH", function()
    local k = call(ex, "POST", "/v1/keys", { json = {} }).body
    local r = call(ex, "PATCH", "/v1/keys/" .. k.id, { json = { name = "renamed" } })
    assert.are.equal(200, r.status)
    assert.are.equal("renamed", r.body.name)
  end)

  it("needs trade to manage keys", function()
    local ro = ex:add_key { permissions = { "read" } }
    local r = call(ex, "POST", "/v1/keys", { key = ro, json = {} })
    assert.are.equal(403, r.status)
    assert.are.equal("INSUFFICIENT_PERMISSION", code(r))
    assert.are.equal(200, call(ex, "GET", "/v1/keys", { key = ro }).status)
  end)

  it("lists tiers as the source of truth, with overrides", function()
    local ex2 = setup { tiers = { pro = { per_second = 3, per_minute = 10, batch = 7 } } }
    local tiers = call(ex2, "GET", "/v1/keys/tiers").body
    assert.are.equal(4, #tiers)
    local pro
    for _, t in ipairs(tiers) do if t.tier == "pro" then pro = t end end
    assert.are.equal(3, pro.requests_per_second)
    assert.are.equal(10, pro.requests_per_minute)
    assert.are.equal(7, pro.max_batch_size)
    assert.are.equal(10, pro.max_ws_connections)
  end)

  it("starts wallets at the plan's baseline", function()
    local u = ex:add_user { plan = "pro_plus" }
    local k = ex:add_key { user_id = u.user_id }
    assert.are.equal("25000.00", call(ex, "GET", "/v1/account/balance", { key = k }).body.balance)
    local me = call(ex, "GET", "/v1/me", { headers = { authorization = "Bearer " .. u.jwt } }).body
    assert.are.equal("pro_plus", me.tier)
  end)

  it("restricts keys off the allowlist", function()
    assert(ex:restrict_key(ex.api_key, true))
    local r = call(ex, "GET", "/v1/markets")
    assert.are.equal(403, r.status)
    assert.are.equal("ACCESS_RESTRICTED", code(r))
  end)
end)

describe("exchange bootstrap", function()
  it("creates the first key with the Bearer JWT only", function()
    local ex = setup()
    local h = { authorization = "Bearer " .. ex.bootstrap_token }
    local none = call(ex, "POST", "/v1/keys/bootstrap", { headers = { ["x-api-key"] = ex.api_key } })
    assert.are.equal(401, none.status)
    local bad = call(ex, "POST", "/v1/keys/bootstrap", { headers = { authorization = "Bearer nope" } })
    assert.are.equal(401, bad.status)
    assert.is_string(bad.body.detail)
    local r = call(ex, "POST", "/v1/keys/bootstrap", { headers = h, json = { name = "ci" } })
    assert.are.equal(201, r.status)
    assert.are.equal("ci", r.body.name)
    assert.are.equal(200, call(ex, "GET", "/v1/account/balance", { key = r.body.raw_key }).status)
    local again = call(ex, "POST", "/v1/keys/bootstrap", { headers = h })
    assert.are.equal(400, again.status)
    assert.are.equal("KEYS_ALREADY_EXIST", code(again))
    assert(ex:expire_jwt(ex.bootstrap_token))
    assert.are.equal(401, call(ex, "POST", "/v1/keys/bootstrap", { headers = h }).status)
  end)

  it("answers 403 CLOSED_BETA with the human message in the body", function()
    local ex = setup { closed_beta = "CLOSED_BETA" }
    local r = call(ex, "POST", "/v1/keys/bootstrap", { headers = { authorization = "Bearer " .. ex.bootstrap_token } })
    assert.are.equal(403, r.status)
    assert.are.equal("CLOSED_BETA", code(r))
    assert.is_truthy(r.body.error:find("closed beta", 1, true))
    assert.are.equal(403, call(ex, "POST", "/v1/keys", { json = {} }).status)
    ex:set_closed_beta("API_PRO_COMING_SOON")
    assert.are.equal("API_PRO_COMING_SOON", code(call(ex, "POST", "/v1/keys", { json = {} })))
    ex:set_closed_beta(false)
    assert.are.equal(201, call(ex, "POST", "/v1/keys", { json = {} }).status)
  end)
end)

describe("exchange websocket tokens", function()
  it("are single use and expire after ws_token_ttl", function()
    local ex, clock = setup { ws_token_ttl = 5 }
    local r = call(ex, "POST", "/v1/keys/ws-token")
    assert.are.equal(200, r.status)
    assert.are.equal(5, r.body.expires_in)
    local ctx = ex:ws_authorize(r.body.token, "prices")
    assert.are.equal(ex.user_id, ctx.user_id)
    assert.are.equal(10, ctx.max_ws_connections)
    assert.are.equal("prices", ctx.channel)
    local again, why = ex:ws_authorize(r.body.token, "prices")
    assert.is_nil(again)
    assert.is_string(why)
    local t2 = call(ex, "POST", "/v1/keys/ws-token").body.token
    clock.t = clock.t + 6
    assert.is_nil(ex:ws_authorize(t2, "executions"))
    assert.is_nil(ex:ws_authorize(nil, "prices"))
    local h = { authorization = "Bearer " .. ex.user_token }
    assert.are.equal(200, call(ex, "POST", "/v1/keys/ws-token", { headers = h }).status)
  end)
end)

describe("exchange rate limits", function()
  it("limit per second and per minute with headers and Retry-After", function()
    local ex, clock = setup { tiers = { pro = { per_second = 3, per_minute = 5 } } }
    for i = 1, 3 do
      local r = call(ex, "GET", "/v1/markets", { query = { limit = "1" } })
      assert.are.equal(200, r.status)
      assert.are.equal("5", r.headers["X-RateLimit-Limit"])
      assert.are.equal(tostring(5 - i), r.headers["X-RateLimit-Remaining"])
      assert.are.equal("pro", r.headers["X-RateLimit-Tier"])
      assert.is_string(r.headers["X-RateLimit-Reset"])
    end
    local r = call(ex, "GET", "/v1/markets")
    assert.are.equal(429, r.status)
    assert.are.equal("RATE_LIMITED", code(r))
    assert.are.equal("1", r.headers["Retry-After"])
    assert.is_string(r.headers["X-RateLimit-Limit"])
    clock.t = clock.t + 1
    assert.are.equal(404, call(ex, "GET", "/v1/markets/0xnone").status)   -- counts too
    assert.are.equal(200, call(ex, "GET", "/v1/markets").status)
    r = call(ex, "GET", "/v1/markets")
    assert.are.equal(429, r.status)
    local ra = tonumber(r.headers["Retry-After"])
    assert.is_true(ra >= 58 and ra <= 60)
    -- another key has its own budget
    local k2 = ex:add_key {}
    assert.are.equal(200, call(ex, "GET", "/v1/markets", { key = k2 }).status)
    clock.t = clock.t + 60
    assert.are.equal(200, call(ex, "GET", "/v1/markets").status)
  end)

  it("count a batch as one call and put headers on errors after auth", function()
    local ex = setup { tiers = { pro = { per_second = 2, per_minute = 100 } } }
    local cid = ex:pick_market { binary = true }
    local orders = {}
    for i = 1, 5 do orders[i] = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "5", price = "0.01",
                                  order_type = "limit" } end
    assert.are.equal(200, call(ex, "POST", "/v1/orders/batch", { json = { orders = orders } }).status)
    local r = call(ex, "GET", "/v1/orders/424242")
    assert.are.equal(404, r.status)
    assert.are.equal("98", r.headers["X-RateLimit-Remaining"])
    assert.are.equal(429, call(ex, "GET", "/v1/markets").status)
  end)
end)

describe("exchange fault injection", function()
  local ex
  before_each(function() ex = setup() end)

  it("answers injected statuses the given number of times, then normally", function()
    ex:inject { path = "/v1/markets", status = 503, times = 2 }
    assert.are.equal(503, call(ex, "GET", "/v1/markets").status)
    assert.are.equal(200, call(ex, "GET", "/v1/keys/tiers").status)
    local r = call(ex, "GET", "/v1/markets")
    assert.are.equal(503, r.status)
    assert.are.equal("SERVICE_UNAVAILABLE", code(r))
    assert.is_string(r.body.request_id)
    assert.are.equal(200, call(ex, "GET", "/v1/markets").status)
  end)

  it("injects 429 with Retry-After, CDN edge blocks, broken bodies and split codes", function()
    ex:inject { status = 429, retry_after = 2 }
    local r = call(ex, "GET", "/v1/markets")
    assert.are.equal(429, r.status)
    assert.are.equal("2", r.headers["Retry-After"])
    assert.are.equal("RATE_LIMITED", code(r))
    ex:inject { raw = { status = 502, body = "error code: 1020", content_type = "text/plain" } }
    r = call(ex, "GET", "/v1/markets")
    assert.are.equal(502, r.status)
    assert.are.equal("error code: 1020", r.body)
    assert.are.equal("text/plain", r.content_type)
    assert.is_string(r.headers["x-request-id"])
    ex:inject { body = "not json", status = 500 }
    r = call(ex, "GET", "/v1/markets")
    assert.are.equal(500, r.status)
    assert.are.equal("not json", r.body)
    ex:inject { header_code = "INSUFFICIENT_BALANCE", body_error = "MARKET_CLOSED", status = 400 }
    r = call(ex, "GET", "/v1/markets")
    assert.are.equal("INSUFFICIENT_BALANCE", code(r))
    assert.are.equal("MARKET_CLOSED", r.body.error)
  end)

  it("drops the answer after processing, and delays", function()
    local cid = ex:pick_market { binary = true }
    assert(ex:set_book(cid, "Yes", { asks = { { "0.50", "100" } } }))
    ex:inject { path = "/v1/orders", method = "POST", drop_after_processing = true }
    local r = call(ex, "POST", "/v1/orders", { json = { market_id = cid, side = "BUY", outcome = "Yes",
                                                        quantity = "5", price = "0.5" } })
    assert.is_true(r.drop)
    assert.are.equal(1, #call(ex, "GET", "/v1/account/history").body)
    ex:inject { path_pattern = "^/v1/account", delay = 0.25 }
    r = call(ex, "GET", "/v1/account/balance")
    assert.are.equal(200, r.status)
    assert.are.equal(0.25, r.delay)
    ex:inject { status = 500, times = 10 }
    ex:clear_faults()
    assert.are.equal(200, call(ex, "GET", "/v1/markets").status)
  end)
end)
