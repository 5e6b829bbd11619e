-- luacheck: std +busted
-- The exchange's memory is bounded (issue 10 #8): idempotency records live for a stated window
-- on the exchange's clock, finished orders and trades beyond keep_finished are compacted.
local exchange = require "polysim.exchange"

local T0 = 1790000000

local function setup(opts)
  local clock = { t = T0 }
  opts.clock = function() return clock.t end
  opts.seed = 5
  local ex = assert(exchange.new(opts))
  local cid = assert(ex:pick_market { binary = true, state = "open" })
  assert(ex:set_book(cid, "Yes", { bids = { { "0.40", "100000" } }, asks = { { "0.45", "100000" } } }))
  return ex, clock, cid
end

local function order(ex, cid, fields, key)
  local j = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "5", price = "0.50",
              order_type = "market" }
  for k, v in pairs(fields or {}) do j[k] = v end
  return ex:handle { method = "POST", path = "/v1/orders", query = {},
    headers = { ["x-api-key"] = ex.api_key, ["idempotency-key"] = key }, json = j }
end

describe("exchange memory", function()
  it("keeps idempotency records for 24 hours by the exchange's clock, then forgets them", function()
    local ex, clock, cid = setup {}
    local r1 = order(ex, cid, nil, "k-1")
    assert.equal(200, r1.status)
    clock.t = T0 + 86399
    local again = order(ex, cid, nil, "k-1")
    assert.equal("true", again.headers["Idempotent-Replayed"])
    assert.equal(r1.body.order_id, again.body.order_id)
    assert.equal(1, ex:memory_stats().idempotency_records)
    clock.t = T0 + 86400
    local fresh = order(ex, cid, nil, "k-2")      -- a new record expires the day-old one
    assert.equal(200, fresh.status)
    assert.equal(1, ex:memory_stats().idempotency_records)
    local reused = order(ex, cid, nil, "k-1")     -- the key is free again: a new order
    assert.is_nil(reused.headers and reused.headers["Idempotent-Replayed"])
    assert.are_not.equal(r1.body.order_id, reused.body.order_id)
  end)

  it("keeps a refused order's answer as a small record, replayed as it was", function()
    local ex, _, cid = setup { tiers = { pro = { per_second = 1 << 40, per_minute = 1 << 40 } } }
    local first = order(ex, cid, { quantity = "1" }, "small-0")   -- below the minimum size
    assert.equal(400, first.status)
    collectgarbage("collect"); collectgarbage("collect")
    local h0 = collectgarbage("count")
    for i = 1, 2000 do assert.equal(400, order(ex, cid, { quantity = "1" }, "small-" .. i).status) end
    collectgarbage("collect"); collectgarbage("collect")
    local per = (collectgarbage("count") - h0) * 1024 / 2000
    -- the answer tables took 1.4 KB a record (+328 MB in the 5-minute soak); as text < 1 KB
    assert.is_true(per < 1000, ("%.0f bytes per refused order's record"):format(per))
    assert.equal(2001, ex:memory_stats().idempotency_records)
    local again = order(ex, cid, { quantity = "1" }, "small-0")
    assert.equal("true", again.headers["Idempotent-Replayed"])
    assert.equal(first.status, again.status)
    assert.equal(again.headers["x-request-id"], again.body.request_id)   -- the replay's own
    first.body.request_id, again.body.request_id = nil, nil
    assert.same(first.body, again.body)
    assert.equal(first.headers["X-Polysim-Code"], again.headers["X-Polysim-Code"])
  end)

  it("holds idempotency records for the window only, however many requests come", function()
    local ex, clock, cid = setup { idempotency_window = 60 }
    for i = 1, 600 do
      clock.t = T0 + i                            -- one keyed order a second for 10 minutes
      assert.equal(200, order(ex, cid, nil, "key-" .. i).status)
    end
    assert.equal(60, ex:memory_stats().idempotency_records)
  end)

  it("holds at most idempotency_max records per user inside the window, dropping the oldest", function()
    local ex, clock, cid = setup { idempotency_max = 50 }
    local first
    for i = 1, 200 do
      clock.t = T0 + i                            -- well inside the 24-hour window
      local r = order(ex, cid, nil, "key-" .. i)
      assert.equal(200, r.status)
      if i == 1 then first = r.body.order_id end
    end
    assert.equal(50, ex:memory_stats().idempotency_records)
    local newest = order(ex, cid, nil, "key-200")
    assert.equal("true", newest.headers["Idempotent-Replayed"])
    local oldest = order(ex, cid, nil, "key-1")   -- dropped by the cap: a new order
    assert.is_nil(oldest.headers and oldest.headers["Idempotent-Replayed"])
    assert.are_not.equal(first, oldest.body.order_id)
    assert.equal(50, ex:memory_stats().idempotency_records)
  end)

  it("compacts finished orders and trades beyond keep_finished; pending orders stay", function()
    local ex, clock, cid = setup { keep_finished = 10 }
    local pending = order(ex, cid, { order_type = "limit", price = "0.10" })
    assert.equal("PENDING", pending.body.status)
    for i = 1, 100 do
      clock.t = T0 + i
      assert.equal(200, order(ex, cid).status)
    end
    local st = ex:memory_stats()
    assert.is_true(st.orders <= 21, "orders held: " .. st.orders)
    assert.is_true(st.trades <= 20, "trades held: " .. st.trades)
    assert.equal(st.orders, st.orders_by_id)
    local got = ex:handle { method = "GET", path = "/v1/orders/" .. pending.body.order_id, query = {},
      headers = { ["x-api-key"] = ex.api_key } }
    assert.equal("PENDING", got.body.status)
    assert(ex:check_invariants())
    local port = ex:handle { method = "GET", path = "/v1/account/portfolio", query = {},
      headers = { ["x-api-key"] = ex.api_key } }
    assert.equal(100, port.body.total_trades)
  end)
end)
