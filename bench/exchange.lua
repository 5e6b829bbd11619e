-- Local exchange throughput: market orders matched per second in-process (ex:handle, no
-- HTTP), and market orders per second through the client over loopback HTTP, against the
-- exchange that bench/run.sh started in its own process. Ratio: HTTP / in-process.
local polysim = require "polysim"
local core = require "polysim.core"
local exchange = require "polysim.exchange"

local N = tonumber(os.getenv "BENCH_N") or 3000

-- In-process: the matching path alone, with the request already parsed.
local clock = 1.7e9
local ex = assert(exchange.new { seed = 3, clock = function() return clock end,
  tiers = { pro = { per_second = 1 << 40, per_minute = 1 << 40 } } })
local id = ex:pick_market { binary = true, state = "open" }
ex:set_book(id, "Yes", { bids = { { "0.40", "1000000000" } }, asks = { { "0.60", "1000000000" } } },
  { keep_complement = true })
local headers = { ["x-api-key"] = ex.api_key }
local function order_req(i)
  local side = i % 2 == 0 and "BUY" or "SELL"
  local body = { market_id = id, side = side, outcome = "Yes", quantity = "5",
    price = side == "BUY" and "0.99" or "0.01" }
  return { method = "POST", path = "/v1/orders", query = {}, headers = headers, json = body }
end
assert(ex:handle(order_req(0)).status == 200, "warm-up order failed")
-- warm-up: whichever loop ran first paid for the heap and the tables growing (the first of
-- the two loops below measured 5,396 orders/s where the second, doing more, measured 8,200)
for i = 1, N // 2 do ex:handle(order_req(i)) end
local t0 = core.monotime()
for i = 1, N do
  local r = ex:handle(order_req(i))
  if r.status ~= 200 then error("order " .. i .. " failed: " .. core.json_encode(r.body)) end
end
local inproc_bare = N / (core.monotime() - t0)

-- The same with the answer's JSON text, which any answer over HTTP needs (serve.lua encodes
-- it; the GET row below counts its json_encode too): 37k of the ~250k instructions of an
-- unkeyed order in callgrind, so without it the in-process side did less work than the
-- HTTP side it is the reference for.
t0 = core.monotime()
for i = 1, N do
  local r = ex:handle(order_req(i))
  if r.status ~= 200 then error("order " .. i .. " failed: " .. core.json_encode(r.body)) end
  local _ = r.encoded or core.json_encode(r.body)
end
local inproc = N / (core.monotime() - t0)

-- In-process, the request the client sends: every order with an Idempotency-Key and a
-- client_order_id (client:place_order always sends both), so the exchange also keeps the
-- idempotency record that the HTTP path pays for.
local function keyed_req(i)
  local r = order_req(i)
  r.headers = { ["x-api-key"] = ex.api_key, ["idempotency-key"] = "bench-" .. i }
  r.json.client_order_id = "bench-" .. i
  return r
end
t0 = core.monotime()
for i = 1, N do
  local r = ex:handle(keyed_req(i))
  if r.status ~= 200 then error("keyed order " .. i .. " failed: " .. core.json_encode(r.body)) end
  local _ = r.encoded or core.json_encode(r.body) -- the idempotency record's text: no second encode
end
local inproc_keyed = N / (core.monotime() - t0)

-- In-process GET /v1/markets/{id}: the exchange's answer and its JSON text (what the front
-- door adds to it is the HTTP), the reference for wrk's rate below.
local get_req = { method = "GET", path = "/v1/markets/" .. id, query = {}, headers = headers }
local NG = N * 3
t0 = core.monotime()
for _ = 1, NG do
  local r = ex:handle(get_req)
  if r.status ~= 200 then error("GET failed: " .. core.json_encode(r.body)) end
  core.json_encode(r.body)
end
local inproc_get = NG / (core.monotime() - t0)

-- Over loopback HTTP through the client.
local info = assert(core.json_decode(assert(os.getenv "POLYSIM_BENCH_SERVER", "run through bench/run.sh")))
local client = polysim.new { base_url = info.base_url, api_key = info.api_key }
local m = assert(client:markets_page { limit = 50 })
local mid
for _, x in ipairs(m) do
  if x.outcomes and #x.outcomes == 2 then mid = x.condition_id break end
end
mid = mid or m[1].condition_id
local first = assert(client:place_order { market_id = mid, side = "BUY", outcome = "Yes", quantity = 5, price = "0.99" })
local n_http = math.min(N, 1000)
-- 5-share orders (the exchange's minimum) can exhaust the served book's depth: a 409 "not
-- filled" is still a full answer from the front door, which is what this measures.
local function answered(err) return err and err.status == 409 end
t0 = core.monotime()
for i = 1, n_http do
  local side = i % 2 == 0 and "BUY" or "SELL"
  local o, err = client:place_order { market_id = mid, side = side, outcome = "Yes", quantity = 5,
    price = side == "BUY" and "0.99" or "0.01", time_in_force = "FAK" }
  assert(o or answered(err), err and tostring(err))
end
local http = n_http / (core.monotime() - t0)
assert(first)

-- 16 connections: 16 tasks placing orders at once.
local ploop = require "polysim.loop"
local TASKS, per = 16, math.max(1, n_http // 8)
local done, failed = 0, nil
t0 = core.monotime()
for _ = 1, TASKS do
  ploop.spawn(function()
    for i = 1, per do
      local side = i % 2 == 1 and "BUY" or "SELL" -- each task buys before it sells
      local o, err = client:place_order { market_id = mid, side = side, outcome = "Yes", quantity = 5,
        price = side == "BUY" and "0.99" or "0.01", time_in_force = "FAK" }
      if not o and not answered(err) then failed = failed or err end
    end
    done = done + 1
  end)
end
assert(ploop.run_until(function() return done == TASKS end, 120), "16-task run timed out")
assert(not failed, failed and tostring(failed))
local http16 = TASKS * per / (core.monotime() - t0)

-- GET /v1/markets/{id} from wrk (a standard load tool) at 64 connections, when present.
local wrk_rate
if os.execute("command -v wrk > /dev/null 2>&1") then
  local p = assert(io.popen(string.format("wrk -t2 -c64 -d5s -H 'X-API-Key: %s' %s/v1/markets/%s 2>&1",
    info.api_key, info.base_url, mid)))
  local out = p:read("a")
  p:close()
  wrk_rate = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local non2xx = out:match("Non%-2xx or 3xx responses:%s*(%d+)")
  if non2xx then print("wrk: " .. non2xx .. " answers were not 2xx") end
end

print(string.format("orders matched in-process   %9.0f orders/s  (%d market orders, ex:handle + the answer's JSON text)",
  inproc, N))
print(string.format("the same without the text   %9.0f orders/s  (the reference before issue 13's second round)", inproc_bare))
print(string.format("market orders over HTTP     %9.0f orders/s  (%d through client:place_order)", http, n_http))
print(string.format("market orders, 16 conns     %9.0f orders/s  (%d through 16 tasks)", http16, TASKS * per))
print(string.format("orders in-process, keyed    %9.0f orders/s  (the client's request: Idempotency-Key, client_order_id)", inproc_keyed))
print(string.format("ratio 1 conn / in-process   %9.3f  (goal >= 0.60; %.3f to the keyed in-process rate, %.3f without the text)",
  http / inproc, http / inproc_keyed, http / inproc_bare))
print(string.format("ratio 16 conns / in-process %9.3f  (%.3f to the keyed rate)", http16 / inproc, http16 / inproc_keyed))
print(string.format("GET /v1/markets/{id} in-process %5.0f req/s     (ex:handle + json_encode, %d)", inproc_get, NG))
if wrk_rate then
  print(string.format("GET /v1/markets/{id}, wrk   %9.0f req/s     (64 connections, 5 s; goal >= 20000)", wrk_rate))
  print(string.format("ratio wrk / in-process GET  %9.3f", wrk_rate / inproc_get))
else
  print("GET /v1/markets/{id}, wrk   (wrk not installed: skipped)")
end
