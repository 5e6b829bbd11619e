-- luacheck: std +busted
-- The local exchange driven directly through ex:handle: universe, market data, auth,
-- errors and the quick-start trade.
local exchange = require "polysim.exchange"
local util = require "polysim.exchange.util"

local T0 = 1790000000.25

local function new_ex(opts)
  opts = opts or {}
  local clock = { t = opts.t or T0 }
  opts.clock = function() return clock.t end
  opts.seed = opts.seed or 1
  local ex = assert(exchange.new(opts))
  return ex, clock
end

local function call(ex, method, path, o)
  o = o or {}
  local headers = o.headers or { ["x-api-key"] = o.key or ex.api_key }
  return ex:handle { method = method, path = path, query = o.query or {}, headers = headers,
                     json = o.json, body = o.body, json_error = o.json_error }
end

local function assert_error(resp, status, code)
  assert.are.equal(status, resp.status)
  assert.are.equal(code, resp.headers["X-Polysim-Code"])
  assert.are.equal(code == "CLOSED_BETA" and resp.body.error or code, resp.body.error)
  assert.is_string(resp.body.message)
  assert.is_string(resp.body.request_id)
  assert.are.equal(resp.headers["x-request-id"], resp.body.request_id)
end

describe("exchange universe", function()
  it("is the same for the same seed and different for another", function()
    local a, b, c = new_ex { seed = 5 }, new_ex { seed = 5 }, new_ex { seed = 6 }
    assert.are.equal(#a.U.list, #b.U.list)
    for i, m in ipairs(a.U.list) do
      assert.are.equal(m.condition_id, b.U.list[i].condition_id)
      assert.are.equal(m.question, b.U.list[i].question)
      assert.are.equal(m.outcomes[1].price, b.U.list[i].outcomes[1].price)
    end
    assert.are_not.equal(a.U.list[1].condition_id, c.U.list[1].condition_id)
    assert.are.equal(a.api_key, b.api_key)
  end)

  it("has 30-50 well-formed markets with categories, fees and statuses", function()
    local ex = new_ex()
    local list = ex.U.list
    assert.is_true(#list >= 30 and #list <= 50)
    local cats, binary, multi, closed, resolved, hot = {}, 0, 0, 0, 0, 0
    for _, m in ipairs(list) do
      assert.is_truthy(m.condition_id:match("^0x%x+$"))
      assert.are.equal(66, #m.condition_id)
      for _, o in ipairs(m.outcomes) do
        assert.is_truthy(o.token_id:match("^%d+$"))
        assert.is_true(#o.token_id >= 70)
      end
      cats[m.category] = m.fee_bps
      if m.binary then binary = binary + 1 else multi = multi + 1 end
      if m.closed then closed = closed + 1 end
      if m.resolved_outcome then resolved = resolved + 1 end
      if m.is_hot then hot = hot + 1 end
    end
    assert.are.equal(400, cats.politics)
    assert.are.equal(0, cats.culture)
    assert.is_true(binary > 20 and multi >= 2)
    assert.is_true(closed >= 2 and resolved >= 1 and hot >= 5)
  end)

  it("moves prices deterministically on tick and emits price events", function()
    local a, ca = new_ex { seed = 9 }
    local b, cb = new_ex { seed = 9 }
    local seen = {}
    a:on("price", function(id, msg) seen[#seen + 1] = { id, msg } end)
    for _ = 1, 20 do ca.t = ca.t + 1; cb.t = cb.t + 1; a:tick(1); b:tick(1) end
    for i, m in ipairs(a.U.list) do
      assert.are.equal(m.outcomes[1].price, b.U.list[i].outcomes[1].price)
    end
    assert.is_true(#seen > 0)
    local msg = seen[1][2]
    assert.are.equal("price", msg.type)
    assert.are.equal(seen[1][1], msg.market_id)
    assert.is_string(msg.buy); assert.is_string(msg.sell); assert.is_string(msg.updated_at)
  end)
end)

describe("exchange market data", function()
  local ex, clock
  before_each(function() ex, clock = new_ex() end)

  it("lists markets with offset pagination and string numbers", function()
    local r = call(ex, "GET", "/v1/markets", { query = { limit = "5" } })
    assert.are.equal(200, r.status)
    assert.are.equal(5, #r.body)
    assert.are.equal(util.array_mt, getmetatable(r.body))
    local m = r.body[1]
    assert.is_string(m.condition_id); assert.is_string(m.live_price.buy)
    assert.are.equal(util.array_mt, getmetatable(m.outcomes))
    local r2 = call(ex, "GET", "/v1/markets", { query = { limit = "5", offset = "5" } })
    assert.are_not.equal(m.condition_id, r2.body[1].condition_id)
    local all = call(ex, "GET", "/v1/markets", { query = { limit = "500", active_only = "false" } })
    assert.are.equal(#ex.U.list, #all.body)
    local open = call(ex, "GET", "/v1/markets", { query = { limit = "500" } })
    assert.is_true(#open.body < #all.body)
    local hot = call(ex, "GET", "/v1/markets", { query = { limit = "500", hot_only = "true" } })
    for _, h in ipairs(hot.body) do assert.is_true(h.is_hot) end
  end)

  it("rejects out-of-range and malformed query parameters with 422", function()
    for _, q in ipairs { { limit = "0" }, { limit = "501" }, { limit = "abc" }, { offset = "-1" },
                         { hot_only = "maybe" } } do
      local r = call(ex, "GET", "/v1/markets", { query = q })
      assert.are.equal(422, r.status)
      assert.are.equal("VALIDATION_ERROR", r.headers["X-Polysim-Code"])
      assert.are.equal("query", r.body.detail[1].loc[1])
      assert.is_string(r.body.detail[1].msg)
      assert.is_string(r.body.detail[1].type)
    end
  end)

  it("searches by text (search or q)", function()
    local m = ex.U.list[1]
    local word = m.question:match("(%a%a%a%a%a+)")
    for _, name in ipairs { "search", "q" } do
      local r = call(ex, "GET", "/v1/markets", { query = { [name] = word:lower(), active_only = "false" } })
      assert.is_true(#r.body >= 1)
      for _, x in ipairs(r.body) do assert.is_truthy(x.question:lower():find(word:lower(), 1, true)) end
    end
  end)

  it("serves market detail by id, slug and token, and 404 MARKET_NOT_FOUND", function()
    local m = ex.U.list[2]
    local r = call(ex, "GET", "/v1/markets/" .. m.condition_id, { query = { include_book = "true" } })
    assert.are.equal(200, r.status)
    assert.are.equal(m.question, r.body.question)
    assert.is_string(r.body.end_date)
    assert.is_table(r.body.book)
    local s = call(ex, "GET", "/v1/markets/by-slug/" .. m.slug)
    assert.are.equal(m.condition_id, s.body.condition_id)
    local t = call(ex, "GET", "/v1/markets-by-token/" .. m.outcomes[2].token_id)
    assert.are.equal(m.condition_id, t.body.condition_id)
    assert_error(call(ex, "GET", "/v1/markets/0xdeadbeef"), 404, "MARKET_NOT_FOUND")
    assert_error(call(ex, "GET", "/v1/markets/by-slug/nope"), 404, "MARKET_NOT_FOUND")
  end)

  it("serves sorted books with spread and mid, by market and by token", function()
    local cid = ex:pick_market { binary = true }
    local r = call(ex, "GET", "/v1/markets/" .. cid .. "/book", { query = { outcome = "No", depth = "3" } })
    assert.are.equal(200, r.status)
    local b = r.body
    assert.is_true(#b.bids <= 3 and #b.asks <= 3 and #b.bids > 0)
    for i = 2, #b.bids do assert.is_true(tonumber(b.bids[i - 1].price) > tonumber(b.bids[i].price)) end
    for i = 2, #b.asks do assert.is_true(tonumber(b.asks[i - 1].price) < tonumber(b.asks[i].price)) end
    assert.is_string(b.spread); assert.is_string(b.mid)
    local t = call(ex, "GET", "/v1/book", { query = { token_id = b.token_id } })
    assert.are.equal(b.token_id, t.body.token_id)
    assert.are.equal(422, call(ex, "GET", "/v1/markets/" .. cid .. "/book", { query = { depth = "51" } }).status)
    assert.are.equal(422, call(ex, "GET", "/v1/book").status)
  end)

  it("answers exact books after set_book, merging the complement", function()
    local cid = ex:pick_market { category = "politics", binary = true }
    assert(ex:set_book(cid, "Yes", { bids = { { "0.63", "50" } }, asks = { { "0.65", "100" }, { "0.66", "20.5" } } }))
    local yes = call(ex, "GET", "/v1/markets/" .. cid .. "/book", { query = { outcome = "Yes" } }).body
    assert.are.same({ { price = "0.65", size = "100" }, { price = "0.66", size = "20.5" } }, yes.asks)
    assert.are.equal("0.02", yes.spread)
    assert.are.equal("0.64", yes.mid)
    local no = call(ex, "GET", "/v1/markets/" .. cid .. "/book", { query = { outcome = "No" } }).body
    assert.are.same({ { price = "0.37", size = "50" } }, no.asks)
    assert.are.same({ { price = "0.35", size = "100" }, { price = "0.34", size = "20.5" } }, no.bids)
    local raw = call(ex, "GET", "/v1/markets/" .. cid .. "/book", { query = { outcome = "No", raw = "true" } }).body
    assert.are.equal(0, #raw.bids)
  end)

  it("serves candles for every interval and rejects others", function()
    local m = ex.U.list[1]
    for _, iv in ipairs { "1h", "6h", "1d", "1w", "max" } do
      local r = call(ex, "GET", "/v1/markets/" .. m.condition_id .. "/candles", { query = { interval = iv } })
      assert.are.equal(200, r.status)
      assert.is_true(#r.body > 0, iv)
      local c = r.body[1]
      assert.are.equal("integer", math.type(c.t))
      assert.is_string(c.o); assert.is_string(c.h); assert.is_string(c.l); assert.is_string(c.c)
      assert.is_true(tonumber(c.l) <= tonumber(c.h))
    end
    assert.are.equal(422, call(ex, "GET", "/v1/markets/" .. m.condition_id .. "/candles",
      { query = { interval = "2h" } }).status)
    -- ticks add samples
    local before = #ex.U.list[1].hist_t
    for _ = 1, 30 do clock.t = clock.t + 60; ex:tick(60) end
    assert.is_true(#ex.U.list[1].hist_t >= before)
  end)

  it("batches prices; unknown ids come back with condition_id only", function()
    local a, b = ex.U.list[1].condition_id, ex.U.list[2].condition_id
    local r = call(ex, "POST", "/v1/prices/batch", { json = { market_ids = { a, "0xnope", b } } })
    assert.are.equal(200, r.status)
    assert.are.equal(3, #r.body)
    assert.are.equal(a, r.body[1].condition_id); assert.is_string(r.body[1].buy)
    assert.are.same({ condition_id = "0xnope" }, r.body[2])
    assert.is_true(#r.body[3].outcomes >= 2)
    local many = {}
    for i = 1, 21 do many[i] = a end
    assert.are.equal(422, call(ex, "POST", "/v1/prices/batch", { json = { market_ids = many } }).status)
    assert.are.equal(422, call(ex, "POST", "/v1/prices/batch", { json = { market_ids = {} } }).status)
  end)

  it("serves up/down windows that are tradable markets", function()
    local r = call(ex, "GET", "/v1/markets/updown", { query = { asset = "BTC", interval = "5M", limit = "3" } })
    assert.are.equal(200, r.status)
    assert.are.equal(3, #r.body.markets)
    local w = r.body.markets[1]
    assert.are.equal("BTC", w.asset)
    assert.are.same({ "Up", "Down" }, { w.outcomes[1], w.outcomes[2] })
    assert.is_truthy(ex.U.by_id[w.condition_id])
    local again = call(ex, "GET", "/v1/markets/updown", { query = { asset = "BTC", interval = "5M", limit = "3" } })
    assert.are.equal(w.condition_id, again.body.markets[1].condition_id)
    assert.are.equal(422, call(ex, "GET", "/v1/markets/updown", { query = { asset = "DOGE" } }).status)
  end)

  it("groups markets into events", function()
    local r = call(ex, "GET", "/v1/events", { query = { limit = "3" } })
    assert.are.equal(200, r.status)
    assert.are.equal(3, #r.body)
    assert.is_string(r.body[1].title)
    assert.is_true(#r.body[1].markets >= 1)
  end)

  it("answers HEAD like GET without a body, and gives price snapshots for the WebSocket", function()
    local r = ex:handle { method = "HEAD", path = "/v1/health", headers = {} }
    assert.are.equal(200, r.status)
    assert.are.equal("", r.body)
    local cid = ex.U.list[1].condition_id
    local msg = ex:price_message(cid)
    assert.are.equal("price", msg.type)
    assert.are.equal(cid, msg.market_id)
    assert.is_nil(ex:price_message("0xnope"))
    local seen
    ex:on("price", function(id, m) seen = { id, m } end)
    assert(ex:set_book(cid, ex.U.list[1].outcomes[1].label, { bids = { { "0.40", "1" } }, asks = { { "0.50", "1" } } }))
    assert.are.equal(cid, seen[1])
    assert.are.equal("0.40", seen[2].best_bid)
  end)

  it("answers health, readiness and status without a key", function()
    for _, p in ipairs { "/v1/health", "/v1/health/ready", "/v1/status" } do
      local r = ex:handle { method = "GET", path = p, headers = {} }
      assert.are.equal(200, r.status)
      assert.is_string(r.body.status)
      assert.is_string(r.headers["x-request-id"])
      assert.is_nil(r.headers["X-RateLimit-Limit"])
    end
  end)
end)

describe("exchange auth", function()
  local ex
  before_each(function() ex = new_ex() end)

  it("accepts X-API-Key, POLY_API_KEY, Poly-API-Key and Bearer ps_live_", function()
    for _, h in ipairs { { ["x-api-key"] = ex.api_key }, { ["poly_api_key"] = ex.api_key },
                         { ["poly-api-key"] = ex.api_key }, { authorization = "Bearer " .. ex.api_key } } do
      assert.are.equal(200, call(ex, "GET", "/v1/account/balance", { headers = h }).status)
    end
  end)

  it("lets X-API-Key win over the others", function()
    local bad = "ps_live_" .. string.rep("0", 64)
    local r = call(ex, "GET", "/v1/account/balance",
      { headers = { ["x-api-key"] = ex.api_key, authorization = "Bearer " .. bad } })
    assert.are.equal(200, r.status)
    r = call(ex, "GET", "/v1/account/balance", { headers = { ["x-api-key"] = bad, authorization = "Bearer "
        .. ex.api_key } })
    assert_error(r, 401, "INVALID_API_KEY")
  end)

  it("answers 401 MISSING_API_KEY, INVALID_API_KEY and KEY_EXPIRED", function()
    assert_error(call(ex, "GET", "/v1/markets", { headers = {} }), 401, "MISSING_API_KEY")
    assert_error(call(ex, "GET", "/v1/markets", { key = "nope" }), 401, "INVALID_API_KEY")
    assert_error(call(ex, "GET", "/v1/markets", { key = "ps_live_" .. string.rep("a", 64) }), 401, "INVALID_API_KEY")
    assert_error(call(ex, "GET", "/v1/markets", { key = ex.api_key:upper() }), 401, "INVALID_API_KEY")
  end)

  -- keys.lookup remembers verified keys by fingerprint and checks the shape only of others:
  -- a malformed key keeps its own answer after the good one was seen.
  it("answers a malformed key the same before and after a good key was verified", function()
    local function msg(key) return call(ex, "GET", "/v1/markets", { key = key }).body.message end
    local upper, seven = ex.api_key:upper(), ex.api_key:sub(1, 71) .. "g"
    local unknown = "ps_live_" .. string.rep("b", 64)
    local before = { msg(upper), msg(seven), msg(unknown) }
    assert.are.equal(200, call(ex, "GET", "/v1/markets", { key = ex.api_key }).status)
    assert.are.same(before, { msg(upper), msg(seven), msg(unknown) })
    assert.are.same({ "Invalid API key", "Invalid API key", "Invalid, revoked or deactivated API key" }, before)
  end)

  it("rejects a Bearer JWT on the trade surface and accepts it on the dashboard", function()
    local h = { authorization = "Bearer " .. ex.user_token }
    assert_error(call(ex, "GET", "/v1/account/balance", { headers = h }), 401, "INVALID_API_KEY")
    assert_error(call(ex, "GET", "/v1/markets", { headers = h }), 401, "INVALID_API_KEY")
    assert.are.equal(200, call(ex, "GET", "/v1/keys", { headers = h }).status)
    assert.are.equal(200, call(ex, "GET", "/v1/me", { headers = h }).status)
    assert.are.equal(200, call(ex, "GET", "/v1/keys/tiers", { headers = h }).status)
    assert.are.equal(200, call(ex, "GET", "/v1/account/me/entitlements", { headers = h }).status)
    local bad = call(ex, "GET", "/v1/keys", { headers = { authorization = "Bearer eyJ.bad.jwt" } })
    assert.are.equal(401, bad.status)
  end)

  it("stores only the SHA-256 of keys", function()
    for hash, key in pairs(ex.K.by_hash) do
      assert.are.equal(64, #hash)
      assert.is_nil(key.raw)
      for _, v in pairs(key) do assert.are_not.equal(ex.api_key, v) end
    end
  end)

  it("registers a given api_key", function()
    local raw = "ps_live_" .. string.rep("ab", 32)
    local ex2 = new_ex { api_key = raw }
    assert.are.equal(raw, ex2.api_key)
    assert.are.equal(200, call(ex2, "GET", "/v1/markets", { key = raw }).status)
  end)
end)

describe("exchange errors", function()
  local ex
  before_each(function() ex = new_ex() end)

  it("answers unknown routes with a JSON 404 {detail} and wrong methods with 405", function()
    local r = call(ex, "GET", "/v1/nothing-here")
    assert.are.equal(404, r.status)
    assert.are.equal("Not Found", r.body.detail)
    assert.is_string(r.headers["x-request-id"])
    assert.are.equal(405, call(ex, "PUT", "/v1/markets").status)
  end)

  it("turns malformed JSON, wrong body types and missing fields into 422 detail lists", function()
    local r = call(ex, "POST", "/v1/orders", { body = "{oops", json_error = "unexpected character" })
    assert.are.equal(422, r.status)
    assert.are.equal("json_invalid", r.body.detail[1].type)
    r = call(ex, "POST", "/v1/orders", { body = "[1]", json = { 1 } })
    assert.are.equal(422, r.status)
    r = call(ex, "POST", "/v1/orders", { json = { side = "BUY" } })
    assert.are.equal(422, r.status)
    local locs = {}
    for _, d in ipairs(r.body.detail) do locs[d.loc[2]] = d.type end
    assert.are.equal("missing", locs.market_id)
    assert.are.equal("missing", locs.outcome)
    assert.are.equal("missing", locs.quantity)
    assert.is_string(r.body.request_id)
  end)

  it("answers 413 for oversized bodies", function()
    local ex2 = new_ex { max_body = 100 }
    local r = call(ex2, "POST", "/v1/orders", { body = string.rep("x", 101) })
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
  end)

  it("never raises out of handle", function()
    for _, req in ipairs { {}, { method = 1 }, { method = "GET", path = {} }, { method = "GET", path = "/v1/markets",
        headers = 5 },
                           { method = "POST", path = "/v1/orders", headers = { ["x-api-key"] = ex.api_key },
                               json = "str" } } do
      local r = ex:handle(req)
      assert.is_number(r.status)
      assert.is_string(r.headers["x-request-id"])
    end
    local r = ex:handle("not a table")
    assert.is_number(r.status)
  end)

  it("echoes a sane incoming x-request-id", function()
    local r = call(ex, "GET", "/v1/markets/0xnope", { headers = { ["x-api-key"] = ex.api_key,
        ["x-request-id"] = "abc-123" } })
    assert.are.equal("abc-123", r.headers["x-request-id"])
    assert.are.equal("abc-123", r.body.request_id)
  end)
end)

describe("exchange quick start", function()
  it("a pro key buying 10 Yes at 0.65 in a 4% category pays 6.50 + 0.09 and sees 9993.41", function()
    local ex = new_ex()
    local cid = ex:pick_market { category = "politics", binary = true }
    assert.are.equal(400, ex:market(cid).fee_bps)
    assert(ex:set_book(cid, "Yes", { asks = { { "0.65", "100" } }, bids = { { "0.63", "100" } } }))
    local bal = call(ex, "GET", "/v1/account/balance")
    assert.are.equal("10000.00", bal.body.balance)
    assert.are.equal("10000.00", bal.body.starting_balance)
    local r = call(ex, "POST", "/v1/orders", { json = {
      market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.65" } })
    assert.are.equal(200, r.status)
    local b = r.body
    assert.are.equal("FILLED", b.status)
    assert.are.equal("0.65", b.price)
    assert.are.equal("10", b.quantity)
    assert.are.equal("6.50", b.notional)
    assert.are.equal("0.09", b.fee)
    assert.are.equal("9993.41", b.account_balance)
    assert.are.equal("orderbook", b.price_source)
    assert.are.equal(0, b.slippage_bps)
    assert.are.equal(1, b.book_walk_levels)
    assert.are.equal("10", b.position.quantity)
    assert.are.equal("0.65", b.position.avg_entry_price)
    assert.are.equal("9993.41", call(ex, "GET", "/v1/account/balance").body.balance)
  end)
end)
