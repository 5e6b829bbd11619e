-- luacheck: std +busted
-- Up/Down windows and the spot model of the local exchange (issue 9): the payload of
-- GET /v1/markets/updown as the SDK reads it (polysim_sdk/client.py, scripts/04_btc_updown.py,
-- tests/test_native_client.py), /prices/live*, /prices/ptb (404 while pending), and a 5M window
-- from schedule to settlement with the money checked to the cent.
local exchange = require "polysim.exchange"
local fixed = require "polysim.exchange.fixed"
local core = require "polysim.core"

local T0 = 1790000000 - 1790000000 % 300 + 290    -- 10 s before a 5M boundary

local function setup(seed)
  local clock = { t = T0 }
  local ex = assert(exchange.new { seed = seed or 5, clock = function() return clock.t end })
  return ex, clock
end

local function call(ex, method, path, query, json)
  return ex:handle { method = method, path = path, query = query or {}, json = json,
                     headers = { ["x-api-key"] = ex.api_key } }
end

local function run(ex, clock, seconds)
  for _ = 1, seconds do clock.t = clock.t + 1; ex:tick(1) end
end

describe("Up/Down payload", function()
  it("is the SDK's payload object with rows, nested markets and spot", function()
    local ex = setup()
    local r = call(ex, "GET", "/v1/markets/updown", { asset = "BTC", interval = "5M", limit = "3" })
    assert.are.equal(200, r.status)
    local p = r.body
    assert.are.equal(3, p.total)
    assert.are.equal(3, #p.markets)
    assert.are.same({ "BTC" }, { table.unpack(p.available_assets) })
    assert.are.same({ "5M" }, { table.unpack(p.available_intervals) })
    assert.are.equal(3, p.interval_counts["5M"])
    assert.are.equal(3, p.asset_counts.BTC)
    assert.are.equal(3, #p.grouped_by_asset.BTC)
    assert.are.equal(3, #p.grouped_by_interval["5M"])
    for _, sym in ipairs { "BTC", "ETH", "SOL", "XRP", "SPX", "NDX" } do
      local c = p.crypto_prices[sym]
      assert.are.equal(sym, c.symbol)
      assert.is_number(c.price)
      assert.is_string(c.source)
    end
    local w = p.markets[1]
    assert.are.equal("BTC", w.asset)
    for _, k in ipairs { "slug", "condition_id", "time_range", "start_date", "end_date" } do
      assert.is_string(w[k], k)
    end
    assert.is_true(w.active); assert.is_false(w.closed); assert.is_false(w.resolved)
    -- the live window has its strike; the next one is pending
    assert.is_number(w.event_metadata_ptb)
    assert.are.equal(w.event_metadata_ptb, tonumber(w.group_item_threshold))
    assert.are.equal(core.null, p.markets[2].event_metadata_ptb)
    local nested = w.markets[1]
    assert.are.same({ "Up", "Down" }, core.json_decode(nested.outcomes))
    assert.are.equal(2, #core.json_decode(nested.outcome_prices))
    local toks = core.json_decode(nested.token_ids)
    assert.are.equal(w.tokens[1].token_id, toks[1])
    -- the whole payload encodes (grouped views share rows)
    assert.is_string(core.json_encode(p))
  end)

  it("lists every asset and interval the SDK names", function()
    local ex = setup()
    local p = call(ex, "GET", "/v1/markets/updown", { limit = "100" }).body
    local seen = {}
    for _, w in ipairs(p.markets) do seen[w.asset] = true end
    for _, sym in ipairs { "BTC", "ETH", "SOL", "XRP", "SPX", "NDX" } do
      assert.is_true(seen[sym] or p.asset_counts[sym] ~= nil or false, sym)
    end
    for _, iv in ipairs { "5M", "15M", "1H", "4H", "daily" } do
      local q = call(ex, "GET", "/v1/markets/updown", { asset = "SPX", interval = iv, limit = "1" }).body
      assert.are.equal(1, q.interval_counts[iv], iv)
    end
    assert.are.equal(422, call(ex, "GET", "/v1/markets/updown", { interval = "2M" }).status)
  end)
end)

describe("spot prices", function()
  it("are seeded and reproducible, and move with the clock", function()
    local a, ca = setup(9)
    local b, cb = setup(9)
    local first = call(a, "GET", "/prices/live/BTC").body.price
    run(a, ca, 30); run(b, cb, 30)
    local pa, pb = call(a, "GET", "/prices/live").body, call(b, "GET", "/prices/live").body
    for _, sym in ipairs(pa.supported_symbols) do assert.are.equal(pa.prices[sym].price, pb.prices[sym].price) end
    assert.are_not.equal(first, pa.prices.BTC.price)
    local one = call(a, "GET", "/prices/live/eth")
    assert.are.equal(200, one.status)
    assert.are.equal("ETH", one.body.symbol)
    assert.is_false(one.body.stale)
    assert.is_number(one.body.age_seconds)
    assert.are.equal(404, call(a, "GET", "/prices/live/DOGE").status)
    local c = setup(10)
    assert.are_not.equal(call(c, "GET", "/prices/live/BTC").body.price, first)
  end)

  it("reach listeners as crypto_price messages every tick", function()
    local ex, clock = setup()
    call(ex, "GET", "/prices/live")
    local got
    ex:on("spot", function(ups) got = ups end)
    run(ex, clock, 1)
    assert.are.equal(6, #got)
    assert.are.equal("crypto_price", got[1].type)
    assert.are.equal("BTC", got[1].symbol)
  end)
end)

describe("a 5M window", function()
  it("goes from schedule to settlement on spot, paying to the cent", function()
    local ex, clock = setup()
    local rows = call(ex, "GET", "/v1/markets/updown", { asset = "BTC", interval = "5M", limit = "2" }).body.markets
    local w = rows[2]                                   -- opens in 10 s
    local cid, up_token = w.condition_id, w.tokens[1].token_id
    local events = {}
    ex:on("window", function(id, msg) if id == cid then events[#events + 1] = msg end end)
    -- scheduled: strike pending, by condition id and by token id
    local pend = call(ex, "GET", "/prices/ptb/" .. cid)
    assert.are.equal(404, pend.status)
    assert.matches("not yet available", pend.body.error)
    assert.are.equal(404, call(ex, "GET", "/prices/ptb/" .. up_token).status)
    run(ex, clock, 10)
    -- open: the strike is spot at the open
    local ptb = call(ex, "GET", "/prices/ptb/" .. up_token)
    assert.are.equal(200, ptb.status)
    assert.are.equal("BTC", ptb.body.asset)
    assert.are.equal(w.start_date, ptb.body.start_date)
    local m = ex:market(cid)
    assert.are.equal("open", events[1].event)
    assert.are.equal(ptb.body.price, events[1].price_to_beat)
    -- buy 10 Up and 10 Down (one side wins whichever way spot goes)
    local bal0 = fixed.parse(call(ex, "GET", "/v1/account/balance").body.balance, 8)
    local cost = 0
    for _, side in ipairs { "Up", "Down" } do
      local o = call(ex, "POST", "/v1/orders", nil, { market_id = cid, side = "BUY", outcome = side,
        order_type = "market", quantity = "10", price = "0.99" })
      assert.are.equal(200, o.status)
      assert.are.equal("FILLED", o.body.status)
      cost = cost + fixed.parse(o.body.notional, 8) + fixed.parse(o.body.fee, 8)
    end
    -- a resting SELL holds shares into the close: cancelled at the close, then settled
    local rest = call(ex, "POST", "/v1/orders", nil, { market_id = cid, side = "SELL", outcome = "Up",
      order_type = "limit", quantity = "5", price = "0.99", time_in_force = "GTC" })
    assert.are.equal("PENDING", rest.body.status)
    run(ex, clock, 300)
    local names = {}
    for i, e in ipairs(events) do names[i] = e.event end
    assert.are.same({ "open", "close", "resolve", "settle" }, names)
    -- resolved on spot against the strike, not on the market's price
    local close = events[3].close_price
    local won = close >= events[3].price_to_beat and "Up" or "Down"
    assert.are.equal(won, m.resolved_outcome)
    assert.are.equal(won, events[3].resolved_outcome)
    assert.are.equal("10.00", events[4].payout)
    -- money to the cent: 10 winning shares pay 10.00
    local bal = call(ex, "GET", "/v1/account/balance").body
    assert.are.equal(fixed.money(bal0 - cost + 10 * fixed.M), bal.balance)
    assert.are.equal("0.00", bal.reserved)
    assert.are.equal("0.00", bal.positions_value)
    assert.are.equal(bal.balance, bal.total_value)
    for _, p in ipairs(call(ex, "GET", "/v1/account/positions").body) do
      assert.are.equal("CLOSED", p.status)
      assert.are.equal("0", p.quantity)
    end
    assert.are.equal("CANCELLED", call(ex, "GET", "/v1/orders/" .. rest.body.order_id).body.status)
    -- the settlement is in the history
    local paid = {}
    for _, t in ipairs(call(ex, "GET", "/v1/account/history").body) do
      if t.price_source == "settlement" then paid[t.outcome] = t end
    end
    assert.are.equal("10.00", paid[won].notional)
    assert.are.equal("1.00", paid[won].price)
    assert.are.equal("0.00", paid[won == "Up" and "Down" or "Up"].notional)
    -- and the window row says so
    local d = call(ex, "GET", "/v1/markets/" .. cid).body
    assert.are.equal(won, d.resolved_outcome)
    assert(ex:check_invariants())
    -- the next window of the series opened on schedule
    local nxt = call(ex, "GET", "/v1/markets/updown", { asset = "BTC", interval = "5M", limit = "1" }).body.markets[1]
    assert.are_not.equal(cid, nxt.condition_id)
    assert.are.equal(200, call(ex, "GET", "/prices/ptb/" .. nxt.condition_id).status)
  end)

  it("prices the Up side from spot against the strike", function()
    local ex, clock = setup()
    local w = call(ex, "GET", "/v1/markets/updown", { asset = "ETH", interval = "5M", limit = "2" }).body.markets[2]
    run(ex, clock, 200)
    local m = ex:market(w.condition_id)
    local S = ex.U.spot
    local above = S.assets.ETH.p > m.updown.strike
    local up = m.outcomes[1].price
    if S.assets.ETH.p ~= m.updown.strike then assert.are.equal(above, up > 5000) end
  end)
end)
