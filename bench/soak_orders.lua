-- make soak, part 1: orders through the seeded fault proxy (spec/fault_proxy.c) in front of
-- the local exchange, then every order whose outcome was unknown settled through
-- polysim.reconcile; the exchange's own record is the judge. Half the orders go out
-- blocking (one after another, outside any task, settled in batches), half from concurrent
-- tasks through reconcile.wrap (the strategy host's path, settled inline).
-- Prints orders, the fault rate, duplicates (must be 0) and unresolved unknown outcomes
-- (must be 0); exits 1 otherwise.
--   SOAK_ORDERS (10000), SOAK_SEED (1), SOAK_RATE (0.45: the proxy's fault rate; 80 % of
--   its faults fail the request), SOAK_TASKS (16), SOAK_RETRIES (1: the client's max_retries)
local polysim = require "polysim"
local core = require "polysim.core"
local ploop = require "polysim.loop"
local serve = require "polysim.serve"
local reconcile = require "polysim.reconcile"
local fp = require "fault_proxy"

local N = tonumber(os.getenv "SOAK_ORDERS") or 10000
local SEED = tonumber(os.getenv "SOAK_SEED") or 1
local RATE = tonumber(os.getenv "SOAK_RATE") or 0.45
local TASKS = tonumber(os.getenv "SOAK_TASKS") or 16
local RETRIES = tonumber(os.getenv "SOAK_RETRIES") or 1
local BATCH = 100

if not fp.available() then
  io.stderr:write("soak: " .. fp.exe() .. " is missing (make build)\n")
  os.exit(1)
end

local BIG = 1 << 40
local srv = assert(serve.start { port = 0, seed = SEED, tick = false,
  tiers = { pro = { per_second = BIG, per_minute = BIG } } })
local ex = srv.exchange
assert(ex:set_balance(srv.api_key, "100000000"))
local market = ex:pick_market { binary = true, state = "open" }
-- A pinned book deep enough for the whole run: every order that arrives fills.
assert(ex:set_book(market, "Yes", { bids = { { "0.40", "1000000000" } }, asks = { { "0.60", "1000000000" } } },
  { keep_complement = true }))
local proxy = fp.start { upstream = srv, seed = SEED, rate = RATE, delay_ms = 20 }

local function client(retries)
  return polysim.new { base_url = proxy.base_url, api_key = srv.api_key, max_retries = retries,
    retry_base = 0.002, retry_cap = 0.05, timeout = 30 }
end
local orders_client = client(RETRIES)
local lookups = client(4)         -- the blocking half's settling: lookups ride the faults too

local n = {
  placed = 0, errors = 0, maybe_filled = 0, other_errors = 0, reconciled_filled = 0,
  reconciled_absent = 0, unresolved = 0, wrong = 0,
}
local results = {}                -- client order id -> "filled" | "absent" | "unknown"
local function order(coid)
  return { market_id = market, side = "BUY", outcome = "Yes", quantity = 5, price = "0.99",
           client_order_id = coid }
end

local function settle_one(err, after)
  local found = reconcile.settle(lookups, err, { pause = 0.01, after = after })
  if found then
    n.reconciled_filled = n.reconciled_filled + 1
    results[err.client_order_id] = "filled"
  elseif found == false then
    n.reconciled_absent = n.reconciled_absent + 1
    results[err.client_order_id] = "absent"
  else
    n.unresolved = n.unresolved + 1
    results[err.client_order_id] = "unknown"
  end
end

local t0 = core.monotime()

-- Blocking: one order after another; the unknown ones settled after each batch.
local half = N // 2
local pending, last_id = {}, nil   -- last_id: the last order that came back (older than the next)
for i = 1, half do
  local coid = "b-" .. i
  local r, err = orders_client:place_order(order(coid))
  if r then
    last_id = r.order_id
    n.placed = n.placed + 1
    results[coid] = "filled"
  else
    n.errors = n.errors + 1
    if err.maybe_filled then
      n.maybe_filled = n.maybe_filled + 1
      pending[#pending + 1] = { err = err, after = last_id }
    else
      n.other_errors = n.other_errors + 1
      results[coid] = "absent"
    end
  end
  if #pending > 0 and (i % BATCH == 0 or i == half) then
    for _, e in ipairs(pending) do settle_one(e.err, e.after) end
    pending = {}
  end
end
local t_blocking = core.monotime() - t0

-- Concurrent: TASKS tasks through reconcile.wrap, as a strategy's ctx.client.
local wrapped = reconcile.wrap(orders_client)
local rest, next_i = N - half, 0
local tasks = {}
local t1 = core.monotime()
for t = 1, TASKS do
  tasks[t] = ploop.spawn(function()
    while next_i < rest do
      next_i = next_i + 1
      local coid = "c-" .. next_i
      local r, err = wrapped:place_order(order(coid))
      if r then
        if r.reconciled then
          n.maybe_filled, n.errors = n.maybe_filled + 1, n.errors + 1
          n.reconciled_filled = n.reconciled_filled + 1
        else
          n.placed = n.placed + 1
        end
        results[coid] = "filled"
      else
        n.errors = n.errors + 1
        if err.reconciled == "not_found" then
          n.maybe_filled = n.maybe_filled + 1
          n.reconciled_absent = n.reconciled_absent + 1
          results[coid] = "absent"
        elseif err.maybe_filled then
          n.maybe_filled = n.maybe_filled + 1
          n.unresolved = n.unresolved + 1
          results[coid] = "unknown"
        else
          n.other_errors = n.other_errors + 1
          results[coid] = "absent"
        end
      end
    end
  end)
end
for _, t in ipairs(tasks) do ploop.join(t) end
local t_concurrent = core.monotime() - t1

-- The judge: the exchange's own record.
local ledger = fp.ledger(fp.user_of(ex))
local duplicates, on_books = 0, 0
for _, e in pairs(ledger) do
  on_books = on_books + 1
  if e.orders > 1 or e.fills > 1 then duplicates = duplicates + 1 end
end
local answered = 0
for coid, what in pairs(results) do
  answered = answered + 1
  local truth = ledger[coid]
  if (what == "filled") ~= (truth ~= nil and truth.fills == 1) and what ~= "unknown" then
    n.wrong = n.wrong + 1
  end
end
local st = proxy:stats()
proxy:close()
srv:close()

local failing = st.drop_after + st.drop_before + st.reset
print(string.format("soak orders: %d orders (%d blocking in %.1f s, %d from %d tasks in %.1f s), seed %d",
  N, half, t_blocking, N - half, TASKS, t_concurrent, SEED))
print(string.format("  proxy: %d requests, faults %.1f %% (%d drop_after, %d drop_before, %d reset) + %d delayed",
  st.requests, 100 * failing / math.max(1, st.requests), st.drop_after, st.drop_before, st.reset, st.delay))
print(string.format("  client: %d placed at once, %d errors (%d maybe_filled: %d reconciled filled, %d never arrived; %d other)",
  n.placed, n.errors, n.maybe_filled, n.reconciled_filled, n.reconciled_absent, n.other_errors))
print(string.format("  exchange: %d orders on the books for %d client order ids answered", on_books, answered))
print(string.format("  duplicates: %d", duplicates))
print(string.format("  unresolved unknown outcomes: %d", n.unresolved))
print(string.format("  answers contradicting the exchange's record: %d", n.wrong))
local ok = duplicates == 0 and n.unresolved == 0 and n.wrong == 0 and answered == N
  and failing / math.max(1, st.requests) >= 0.3
if not ok then
  print("soak orders: FAILED")
  os.exit(1)
end
print("soak orders: ok")
