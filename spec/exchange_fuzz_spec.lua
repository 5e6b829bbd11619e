-- luacheck: std +busted
-- A thousand random and garbage requests into ex:handle: every answer must be a well-formed
-- response table (and encodable JSON when the body is a table), nothing may raise, and the
-- exchange must still trade correctly afterwards.
local exchange = require "polysim.exchange"
local rng = require "polysim.exchange.rng"
local util = require "polysim.exchange.util"

local ok_core, core = pcall(require, "polysim.core")
local encode = ok_core and core.json_encode or nil

local T0 = 1790000000

local PATHS = {   -- {usual method, path}
  { "GET", "/v1/health" }, { "GET", "/v1/health/ready" }, { "GET", "/v1/status" }, { "GET", "/v1/markets" },
  { "GET", "/v1/markets/updown" }, { "GET", "/v1/markets/by-slug/{s}" }, { "GET", "/v1/markets/{c}" },
  { "GET", "/v1/markets/{c}/book" }, { "GET", "/v1/markets/{c}/candles" }, { "GET", "/v1/markets-by-token/{t}" },
  { "GET", "/v1/book" }, { "POST", "/v1/prices/batch" }, { "GET", "/v1/events" }, { "POST", "/v1/orders" },
  { "POST", "/v1/orders" }, { "POST", "/v1/orders" }, { "GET", "/v1/orders" }, { "POST", "/v1/orders/batch" },
  { "GET", "/v1/orders/{n}" }, { "DELETE", "/v1/orders/{n}" }, { "POST", "/v1/cancel-all" },
  { "DELETE", "/v1/cancel-market-orders" }, { "POST", "/v1/clob/order" }, { "GET", "/v1/account/balance" },
  { "GET", "/v1/account/positions" }, { "GET", "/v1/account/portfolio" }, { "GET", "/v1/account/history" },
  { "GET", "/v1/account/equity" }, { "POST", "/v1/account/reset-api-balance" }, { "GET", "/v1/export/trades.csv" },
  { "GET", "/v1/me" }, { "GET", "/v1/account/me/entitlements" }, { "GET", "/v1/me/wallets" },
  { "GET", "/v1/me/wallets/{s}" }, { "POST", "/v1/keys/bootstrap" }, { "GET", "/v1/keys/tiers" },
  { "POST", "/v1/keys/ws-token" }, { "GET", "/v1/keys" }, { "POST", "/v1/keys" }, { "DELETE", "/v1/keys/{n}" },
  { "PATCH", "/v1/keys/{n}" }, { "POST", "/v1/keys/{n}/rotate" },
  { "GET", "/" }, { "GET", "" }, { "GET", "/v1" }, { "GET", "/v2/markets" }, { "GET", "/v1/markets/" },
  { "GET", "/v1//markets" }, { "GET", "/v1/markets?limit=3&offset=x" }, { "GET", "/v1/orders/%00" },
  { "GET", "/v1/markets/%zz" }, { "GET", "/../../etc/passwd" },
}
local METHODS = { "GET", "GET", "GET", "GET", "POST", "POST", "POST", "DELETE", "PATCH", "PUT", "HEAD", "OPTIONS",
  "get", "", "BREW" }
local FIELDS = { "market_id", "side", "outcome", "quantity", "price", "order_type", "time_in_force", "amount",
  "post_only", "expiration", "client_order_id", "orders", "market_ids", "token_id", "size", "name", "tier",
  "permissions", "limit", "offset" }

local function rand_scalar(r, ex, cids)
  local k = r:below(14)
  if k == 0 then return r:range(-1000000, 1000000)
  elseif k == 1 then return r:range(-1000, 1000) / 7
  elseif k == 2 then return r:pick { 0 / 0, math.huge, -math.huge, math.maxinteger, math.mininteger, 1e308, -0.0 }
  elseif k == 3 then return r:chance(1, 2)
  elseif k == 4 then return util.null
  elseif k == 5 then return r:bytes(r:range(0, 40))
  elseif k == 6 then return r:pick { "BUY", "SELL", "Yes", "No", "market", "limit", "GTC", "FOK", "IOC", "FAK",
                                     "GTD", "pro", "free", "read", "trade", "admin" }
  elseif k == 7 then return tostring(r:range(0, 10000) / 100)
  elseif k == 8 then return r:pick { "0.65", "1", "0", "-1", "1e3", "0.00001", "1e-400", "9999999999999999999999",
                                     " 0.5 ", ".", "", "0x10", "NaN" }
  elseif k == 9 then return cids[r:range(1, #cids)]
  elseif k == 10 then return ex:market(cids[r:range(1, #cids)]).outcomes[1].token_id
  elseif k == 11 then return string.rep("9", r:range(1, 400))
  elseif k == 12 then return tostring(r:range(1, 50))
  end
  return r:hex(r:range(1, 80))
end

local function rand_value(r, ex, cids, depth)
  if depth > 0 and r:chance(1, 4) then
    local t = {}
    if r:chance(1, 2) then
      for i = 1, r:range(0, 6) do t[i] = rand_value(r, ex, cids, depth - 1) end
      if r:chance(1, 2) then setmetatable(t, util.array_mt) end
    else
      for _ = 1, r:range(0, 6) do t[r:pick(FIELDS)] = rand_value(r, ex, cids, depth - 1) end
    end
    return t
  end
  return rand_scalar(r, ex, cids)
end

local function rand_body(r, ex, cids)
  local k = r:below(6)
  if k == 0 then return nil end
  if k == 1 then return rand_value(r, ex, cids, 3) end
  local t = {}
  for _ = 1, r:range(1, 10) do t[r:pick(FIELDS)] = rand_value(r, ex, cids, 2) end
  if k == 2 then   -- a plausible order
    t.market_id, t.side, t.outcome = cids[r:range(1, #cids)], r:pick { "BUY", "SELL" }, r:pick { "Yes", "No" }
    t.quantity, t.price = tostring(r:range(1, 100)), "0." .. r:range(1, 99)
  end
  return t
end

local function check_response(resp, what)
  assert(type(resp) == "table", what .. ": response is not a table")
  assert(math.type(resp.status) == "integer" and resp.status >= 100 and resp.status <= 599, what .. ": bad status")
  assert(type(resp.headers) == "table", what .. ": no headers")
  assert(type(resp.headers["x-request-id"]) == "string", what .. ": no x-request-id")
  for k, v in pairs(resp.headers) do
    assert(type(k) == "string" and type(v) == "string", what .. ": header " .. tostring(k) .. " is not a string")
  end
  assert(type(resp.body) == "table" or type(resp.body) == "string", what .. ": body type " .. type(resp.body))
  if resp.status >= 400 and type(resp.body) == "table" then
    assert(resp.body.error or resp.body.detail, what .. ": error without error/detail")
    if resp.headers["X-Polysim-Code"] and resp.body.error then
      assert.is_string(resp.body.request_id)
    end
  end
  if encode and type(resp.body) == "table" then
    local okj, err = pcall(encode, resp.body)
    assert(okj, what .. ": body does not encode: " .. tostring(err))
  end
  if resp.status == 500 then error(what .. ": internal error") end
end

describe("exchange garbage requests", function()
  it("answers a thousand random requests well-formed and keeps working", function()
    local clock = { t = T0 }
    local ex = assert(exchange.new { seed = 21, clock = function() return clock.t end,
      tiers = { pro = { per_second = 100000, per_minute = 100000 } } })
    local r = rng.new("garbage")
    local cids = {}
    for i = 1, 8 do cids[i] = ex.U.list[i].condition_id end
    local other = ex:add_key {}
    local keys = { ex.api_key, ex.api_key, ex.api_key, other, "ps_live_" .. string.rep("0", 64), "garbage", "",
                   ex.user_token, ex.bootstrap_token }
    local statuses = {}
    for i = 1, 1000 do
      local route = r:pick(PATHS)
      local method = r:chance(2, 3) and route[1] or r:pick(METHODS)
      local path = route[2]
        :gsub("{c}", function() return r:chance(4, 5) and cids[r:range(1, #cids)] or r:hex(8) end)
        :gsub("{t}", function() return ex:market(cids[1]).outcomes[r:range(1, 2)].token_id end)
        :gsub("{s}", function() return r:chance(1, 2) and ex:market(cids[2]).slug or r:hex(5) end)
        :gsub("{n}", function() return r:pick { tostring(r:range(1, 30)), "-1", "abc", "1.5",
            "99999999999999999999" } end)
      local headers = {}
      local k = r:below(6)
      if k <= 2 then headers["x-api-key"] = r:pick(keys)
      elseif k == 3 then headers.authorization = "Bearer " .. r:pick(keys)
      elseif k == 4 then headers["poly-api-key"] = r:pick(keys) end
      if r:chance(1, 5) then headers["idempotency-key"] = tostring(r:range(1, 20)) end
      if r:chance(1, 10) then headers["x-request-id"] = r:bytes(r:range(0, 200)) end
      if r:chance(1, 20) then headers[r:bytes(3)] = r:bytes(3) end
      local query = {}
      for _ = 1, r:range(0, 4) do
        query[r:pick { "limit", "offset", "status", "side", "market_id", "cursor", "hot_only", "active_only", "q",
                       "interval", "outcome", "depth", "days", "token_id", "asset", "market", "include_book" }] =
          tostring(rand_scalar(r, ex, cids))
      end
      if r:chance(1, 20) then query[1] = { "x" } end
      local body = rand_body(r, ex, cids)
      local req = { method = method, path = path, query = query, headers = headers, json = body }
      if r:chance(1, 10) then req.json, req.json_error, req.body = nil, "unexpected token", r:bytes(r:range(1, 30)) end
      if r:chance(1, 50) then req = r:pick { {}, { method = 5 }, { path = false }, { headers = "x" } } end
      if r:chance(1, 40) then clock.t = clock.t + r:range(0, 10); ex:tick(r:range(0, 10)) end
      local resp = ex:handle(req)
      check_response(resp, ("request %d %s %s"):format(i, tostring(req.method), tostring(req.path)))
      statuses[resp.status] = (statuses[resp.status] or 0) + 1
      local okinv, err = ex:check_invariants()
      assert(okinv, "request " .. i .. ": " .. tostring(err))
    end
    assert.is_nil(ex.last_error)
    -- a spread of answers, not one kind
    local kinds = 0
    for _ in pairs(statuses) do kinds = kinds + 1 end
    assert.is_true(kinds >= 6)
    assert.is_true((statuses[200] or 0) > 100)
    -- still trades exactly
    local cid = ex:pick_market { category = "politics", binary = true }
    local fresh = ex:add_user { plan = "pro" }
    local key = ex:add_key { user_id = fresh.user_id }
    assert(ex:set_book(cid, "Yes", { asks = { { "0.65", "100" } } }))
    local resp = ex:handle { method = "POST", path = "/v1/orders", headers = { ["x-api-key"] = key },
      json = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.65" } }
    assert.are.equal(200, resp.status)
    assert.are.equal("9993.41", resp.body.account_balance)
  end)
end)
