-- Exchange memory (issue 10 #8): bytes of Lua heap and of resident memory per order the
-- exchange retains, and that the held amount stops growing once idempotency records expire
-- and finished orders are compacted (keep_finished). In-process (ex:handle), simulated clock.
--   lua5.4 bench/exchange_memory.lua        (BENCH_N orders, default 20000)
local exchange = require "polysim.exchange"

local N = tonumber(os.getenv "BENCH_N") or 20000

local function rss()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local _, res = f:read("l"):match("^(%d+)%s+(%d+)")
  f:close()
  return tonumber(res) * 4096
end

local function heap()
  collectgarbage("collect"); collectgarbage("collect")
  return collectgarbage("count") * 1024
end

local function run(keep, window, pending)
  local clock = 1.7e9
  local ex = assert(exchange.new { seed = 3, clock = function() return clock end, keep_finished = keep,
    idempotency_window = window, tiers = { pro = { per_second = 1 << 40, per_minute = 1 << 40 } } })
  local id = ex:pick_market { binary = true, state = "open" }
  ex:set_book(id, "Yes", { bids = { { "0.40", "1000000000" } }, asks = { { "0.60", "1000000000" } } },
    { keep_complement = true })
  assert(ex:set_balance(ex.user_id, "1000000000"))
  local headers = { ["x-api-key"] = ex.api_key }
  local h0, r0 = heap(), pending and rss()
  for i = 1, N do
    clock = clock + 0.05               -- 20 orders a second
    headers["idempotency-key"] = "bench-" .. i
    local body = pending and { market_id = id, side = "BUY", outcome = "Yes", quantity = "5", price = "0.10",
      order_type = "limit" } or { market_id = id, side = "BUY", outcome = "Yes", quantity = "5", price = "0.99" }
    local r = ex:handle { method = "POST", path = "/v1/orders", query = {}, headers = headers, json = body }
    assert(r.status == 200, "order failed: " .. tostring(r.status))
  end
  local h1 = heap()
  return ex:memory_stats(), h1 - h0, r0 and (rss() - r0)
end

local function report(label, st, dh, dr)
  local held = math.max(st.orders, 1)
  print(string.format("%-44s orders held %6d  idem %6d  heap %7.0f B/order  rss %s",
    label, st.orders, st.idempotency_records, dh / held,
    dr and string.format("%7.0f B/order", dr / held) or "n/a"))
end

-- Every order retained (pending limits, nothing finishes): the cost of one order.
report("retained (pending limit orders)", run(nil, nil, true))
-- Filled orders, everything kept (window and keep larger than the run).
report("finished, all kept", run(N, 86400, false))
-- Filled orders with the defaults shrunk: memory held is bounded by keep and window.
local st, dh = run(1000, 60, false)
print(string.format("bounded (keep_finished=1000, window=60s): %d orders sent, %d held, %d idempotency"
  .. " records, heap held %.1f MB", N, st.orders, st.idempotency_records, dh / 1e6))
