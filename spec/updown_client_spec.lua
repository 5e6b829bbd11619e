-- luacheck: std +busted
-- Up/Down, spot and the SSE stream through the Lua client over loopback (issue 9): the
-- payload as the SDK's fixtures show it, price_to_beat pending (404) then set, a full 5M
-- window from schedule to settlement with the money to the cent (the exchange's clock is
-- advanced, nothing sleeps), client:spot_stream with its reconnects, and polysim.updown.
local polysim = require "polysim"
local ploop = require "polysim.loop"
local updown = require "polysim.updown"
local H = require "helper"

local T0 = 1790000000 - 1790000000 % 300 + 290    -- 10 s before a 5M boundary

local function start()
  local clock = { t = T0 }
  local srv = H.exchange { clock = function() return clock.t end }
  return srv, clock, H.client(srv)
end

local function advance(srv, clock, seconds)
  for _ = 1, seconds do clock.t = clock.t + 1; srv.exchange:tick(1) end
end

describe("client Up/Down", function()
  local srv, clock, client
  before_each(function() srv, clock, client = start() end)
  after_each(function() srv:close() end)

  it("updown{} returns the payload object (SDK get_updown), rows as list_updown", function()
    local p = assert(client:updown { asset = "BTC", interval = "5M", limit = 3 })
    assert.equal(3, p.total)
    assert.same({ "5M" }, { table.unpack(p.available_intervals) })
    assert.equal(3, p.interval_counts["5M"])
    assert.is_number(p.crypto_prices.BTC.price)
    assert.equal("BTC", p.crypto_prices.BTC.symbol)
    local rows = assert(client:updown_windows { asset = "BTC", interval = "5M", limit = 3, live = true })
    assert.equal(3, #rows)
    local w = rows[1]
    assert.is_string(w.time_range)
    local nested = w.markets[1]
    assert.same({ "Up", "Down" }, { table.unpack(require("polysim.core").json_decode(nested.outcomes)) })
  end)

  it("spot, spots and price_to_beat (404 while pending, also by token id)", function()
    local s = assert(client:spot("btc"))
    assert.equal("BTC", s.symbol)
    assert.is_number(s.price)
    assert.is_false(s.stale)
    local all = assert(client:spots())
    for _, sym in ipairs(updown.ASSETS) do assert.is_table(all.prices[sym], sym) end
    local none, err = client:spot("DOGE")
    assert.is_nil(none)
    assert.equal(404, err.status)
    local rows = assert(client:updown_windows { asset = "BTC", interval = "5M", limit = 2 })
    local pending, perr = client:price_to_beat(rows[2].condition_id)
    assert.is_nil(pending)
    assert.equal(404, perr.status)
    local cur = assert(client:price_to_beat(rows[1].tokens[2].token_id))
    assert.equal(rows[1].event_metadata_ptb, cur.price)
    assert.equal("BTC", cur.asset)
  end)

  it("a 5M window from schedule to settlement, money to the cent", function()
    local rows = assert(client:updown_windows { asset = "BTC", interval = "5M", limit = 2 })
    local w = rows[2]
    assert.is_nil(updown.price_to_beat(w))                        -- scheduled: no strike yet
    assert.is_true(updown.seconds_to_expiry(w, clock.t) > 300)
    advance(srv, clock, 10)
    local live = assert(client:updown_windows { asset = "BTC", interval = "5M", limit = 2, live = true })
    local row
    for _, r in ipairs(live) do if r.condition_id == w.condition_id then row = r end end
    assert.is_table(row)
    local ptb = updown.price_to_beat(row)
    assert.equal(assert(client:price_to_beat(w.condition_id)).price, ptb)
    assert.equal(w.condition_id, updown.next_to_expire(live, clock.t).condition_id)
    local bal0 = polysim.decimal(assert(client:balance()).balance)
    local up = assert(client:place_order { market_id = w.condition_id, side = "BUY", outcome = "Up",
      order_type = "market", quantity = "20", price = "0.99" })
    local down = assert(client:place_order { market_id = w.condition_id, side = "BUY", outcome = "Down",
      order_type = "market", quantity = "10", price = "0.99" })
    local paid = polysim.decimal(up.notional) + polysim.decimal(up.fee) + polysim.decimal(down.notional)
      + polysim.decimal(down.fee)
    advance(srv, clock, 300)
    local m = srv.exchange:market(w.condition_id)
    local spot_close = m.updown.close_price
    local won = spot_close >= m.updown.strike and "Up" or "Down"
    assert.equal(won, m.resolved_outcome)
    local payout = polysim.decimal(won == "Up" and "20" or "10")
    local bal = assert(client:balance())
    assert.equal(tostring(bal0 - paid + payout), tostring(polysim.decimal(bal.balance)))
    assert.equal(bal.balance, bal.total_value)
    local settled = 0
    for t in client:history {} do
      if t.price_source == "settlement" then
        settled = settled + 1
        assert.equal(t.outcome == won and "1.00" or "0.00", t.price)
      end
    end
    assert.equal(2, settled)
    for _, p in ipairs(assert(client:positions {})) do assert.equal("CLOSED", p.status) end
    local eq = assert(client:equity { days = 1 })
    assert.equal(bal.balance, eq[#eq].total_value)             -- the payout is in the equity curve
    assert.equal("0.00", eq[#eq].position_value)
  end)

  it("sends the window lifecycle to WebSocket price subscribers", function()
    local core = require "polysim.core"
    local w = assert(client:updown_windows { asset = "ETH", interval = "5M", limit = 2 })[2]
    local msgs = {}
    local conn
    conn = core.ws_connect {
      url = srv.base_url:gsub("^http", "ws") .. "/v1/ws/prices?token=" .. assert(client:ws_token()).token,
      on_open = function() conn:send(core.json_encode { action = "subscribe", markets = { w.condition_id } }) end,
      on_message = function(text) msgs[#msgs + 1] = core.json_decode(text) end }
    local function seen(ev)
      for _, m in ipairs(msgs) do if m.type == "window" and m.event == ev then return m end end
    end
    assert(ploop.run_until(function() for _, m in ipairs(msgs) do if m.type == "subscribed" then return true end end end, 5))
    for k = 1, 310 do
      advance(srv, clock, 1)
      if k % 50 == 0 then ploop.run_until(function() return false end, 0.01) end
    end
    assert(ploop.run_until(function() return seen("settle") ~= nil end, 5))
    conn:close(1000, "done")
    local open, res = seen("open"), seen("resolve")
    assert.equal(w.condition_id, open.market_id)
    assert.equal("ETH", open.asset)
    assert.is_number(open.price_to_beat)
    assert.is_truthy(seen("close"))
    assert.is_true(res.resolved_outcome == "Up" or res.resolved_outcome == "Down")
    assert.equal(res.close_price >= res.price_to_beat and "Up" or "Down", res.resolved_outcome)
  end)
end)

describe("client:spot_stream", function()
  local srv, clock, client
  before_each(function() srv, clock, client = start() end)
  after_each(function() srv:close() end)

  it("streams spot ticks and window events over SSE", function()
    local rows = assert(client:updown_windows { asset = "BTC", interval = "5M", limit = 2 })
    local ticks, windows, names = {}, {}, {}
    local s = client:spot_stream { crypto = { "BTC" }, condition_ids = { rows[2].condition_id },
      on_spot = function(t) ticks[#ticks + 1] = t end,
      on_window = function(w) windows[#windows + 1] = w.event end,
      on_message = function(ev) names[ev.event] = true end }
    assert(ploop.run_until(function() return #ticks >= 1 end, 10))   -- the current price at once
    for _ = 1, 12 do advance(srv, clock, 1); ploop.run_until(function() return false end, 0.02) end
    assert(ploop.run_until(function() return #windows >= 1 end, 10))
    s:close()
    assert.is_true(#ticks >= 5, "ticks " .. #ticks)
    for _, t in ipairs(ticks) do assert.equal("BTC", t.symbol); assert.is_number(t.price) end
    assert.equal("open", windows[1])
    assert.is_true(names.snapshot)
    assert.is_true(names.crypto_price)
  end)

  it("iterates events, batching several symbols", function()
    local s = client:spot_stream { crypto = { "BTC", "ETH" } }
    local ev = s()
    s:close()
    assert.equal("crypto_price_batch", ev.event)
    assert.equal(2, ev.data.count)
    assert.is_nil(s())
  end)

  it("reconnects after a 503 and after the server ends the stream", function()
    local ex = srv.exchange
    ex:inject { status = 503, path = "/prices/stream", times = 1 }
    local events, ticks = {}, 0
    local s = client:spot_stream { crypto = { "SOL" }, backoff_base = 0.01,
      on_spot = function() ticks = ticks + 1 end,
      on_event = function(e) events[#events + 1] = e.type end }
    assert(ploop.run_until(function() return ticks >= 1 end, 10))
    assert.same({ "reconnecting", "connected" }, events)
    -- the server closes the stream cleanly: the client is back at once
    for sess in pairs(ex.sse_sessions) do sess:finish() end
    assert(ploop.run_until(function() return ticks >= 2 end, 10))
    s:close()
    assert.same({ "reconnecting", "connected", "reconnecting", "connected", "closed" }, events)
  end)

  it("gives up on a permanent error and after max_reconnects", function()
    local ex = srv.exchange
    local closed
    local s = client:spot_stream { crypto = { "DOGE" }, on_event = function(e)
      if e.type == "closed" then closed = e end end }
    assert(ploop.run_until(function() return closed ~= nil end, 10))
    assert.equal(422, closed.error.status)
    assert.is_true(s.closed)
    closed = nil
    ex:inject { status = 503, path = "/prices/stream", times = 5 }
    client:spot_stream { max_reconnects = 2, backoff_base = 0.01, on_event = function(e)
      if e.type == "closed" then closed = e end end, on_spot = function() end }
    assert(ploop.run_until(function() return closed ~= nil end, 10))
    assert.equal("SSE_RETRIES_EXHAUSTED", closed.error.code)
  end)
end)

describe("polysim.updown", function()
  -- the SDK's tests/test_updown.py cases
  local NOW = updown.parse_iso("2026-06-14T12:00:00Z")
  it("reads rows as the SDK's helpers do", function()
    assert.equal(300, updown.seconds_to_expiry({ end_date = "2026-06-14T12:05:00Z" }, NOW))
    assert.equal(-300, updown.seconds_to_expiry({ end_date = "2026-06-14T11:55:00Z" }, NOW))
    assert.equal(300, updown.seconds_to_expiry({ end_date = "2026-06-14T12:05:00" }, NOW))
    assert.equal(300, updown.seconds_to_expiry({ end_date = "2026-06-14T14:05:00+02:00" }, NOW))
    assert.is_nil(updown.seconds_to_expiry({}, NOW))
    assert.is_nil(updown.seconds_to_expiry({ end_date = "not-a-date" }, NOW))
    assert.is_true(updown.is_window_open { active = true, closed = false, resolved = false })
    assert.is_false(updown.is_window_open { active = true, closed = true, resolved = false })
    assert.is_false(updown.is_window_open { active = true, closed = false, resolved = true })
    assert.is_false(updown.is_window_open { closed = false, resolved = false })
    assert.equal(64500, updown.price_to_beat { event_metadata_ptb = 64500.0, group_item_threshold = "0" })
    assert.equal(63000.5, updown.price_to_beat { group_item_threshold = "63000.5" })
    assert.is_nil(updown.price_to_beat { event_metadata_ptb = 0, group_item_threshold = "0" })
    assert.equal(88, updown.ptb_distance(64588, "64500"))
    assert.is_nil(updown.ptb_distance(nil, 1))
    assert.near(100, updown.ptb_distance_bps(101, 100), 1e-9)
    assert.is_nil(updown.ptb_distance_bps(1, 0))
    local rows = {
      { condition_id = "a", active = true, closed = false, resolved = false, end_date = "2026-06-14T12:15:00Z" },
      { condition_id = "b", active = true, closed = false, resolved = false, end_date = "2026-06-14T12:05:00Z" },
      { condition_id = "c", active = true, closed = true, resolved = false, end_date = "2026-06-14T12:01:00Z" },
      { condition_id = "d", active = true, closed = false, resolved = false, end_date = "2026-06-14T11:59:00Z" },
    }
    assert.equal(3, #updown.open_windows(rows))
    assert.equal("b", updown.next_to_expire(rows, NOW).condition_id)
    assert.is_nil(updown.next_to_expire({}, NOW))
  end)
end)
