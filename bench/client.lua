-- The client against the libcurl floor (issue 13). Reference: bench/ref_server.c, which
-- answers every request with the same canned bytes (the exchange's own answer to
-- GET /v1/markets/{id}), so the figures are the client's cost, not a server's.
--   sequential: client:market(id) incl. JSON decode into a table vs a plain libcurl easy loop
--   64 in flight: 64 tasks calling client:market(id) vs a curl-multi loop with 64 transfers
-- CPU per call is this process's user + system time (os.clock: CLOCK_PROCESS_CPUTIME_ID),
-- the same accounting as the C loop's getrusage. Ratios are within this one run.
local polysim = require "polysim"
local core = require "polysim.core"
local ploop = require "polysim.loop"

local N = tonumber(os.getenv "BENCH_N") or 20000
local NM = tonumber(os.getenv "BENCH_NM") or 40000
local PAR = 64

-- The canned bytes: bench/market_594.json, a 594-byte market JSON like the one issue 13
-- measured (nginx serving one market), served by ref_server for every request.
local info = assert(core.json_decode(assert(os.getenv "POLYSIM_BENCH_SERVER", "run through bench/run.sh")))
local id = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
local f
os.remove("build/bench/ref.port") -- else the wait below can read the last run's port
os.execute("build/bench/ref_server bench/market_594.json > build/bench/ref.port & echo $! > build/bench/ref.pid")
local port
for _ = 1, 100 do
  f = io.open("build/bench/ref.port")
  port = f and tonumber(f:read("l") or "")
  if f then f:close() end
  if port then break end
  os.execute("sleep 0.02")
end
assert(port, "ref_server did not start")
local function stop_ref()
  local pf = io.open("build/bench/ref.pid")
  if pf then os.execute("kill " .. pf:read("l") .. " 2>/dev/null"); pf:close() end
end
local ref = "http://127.0.0.1:" .. port
local key = info.api_key
local client = polysim.new { base_url = ref, api_key = key }

local function raw(args)
  local p = assert(io.popen("build/bench/curl_raw " .. args))
  local out = p:read("a")
  p:close()
  local w, c, bytes, rate = out:match("^(%S+) (%S+) (%d+) (%S+)")
  assert(w, "curl_raw failed: " .. out)
  return tonumber(w), tonumber(c), tonumber(bytes), tonumber(rate)
end

-- The machine is shared and noisy: each figure is the best of ROUNDS rounds, the rounds of
-- polysim and of the references interleaved, so a burst of someone else's load hits both.
local ROUNDS = tonumber(os.getenv "BENCH_ROUNDS") or 5
local n, nm = N // ROUNDS, NM // ROUNDS
local url = ref .. "/v1/markets/" .. id
local function best(t, v) return (t == nil or v < t) and v or t end
local function most(t, v) return (t == nil or v > t) and v or t end

for _ = 1, 200 do assert(client:market(id)) end -- warm up
local opened = 0 -- by the sequential calls
local lua_w, lua_c, raw_w, raw_c, opt_w, opt_c, bytes, lua_rate, raw_rate
local per = nm // PAR
for _ = 1, ROUNDS do
  -- sequential
  local w0, c0 = core.monotime(), os.clock()
  local opened0 = client:stats().connections_opened
  for _ = 1, n do assert(client:market(id)) end
  opened = opened + client:stats().connections_opened - opened0
  lua_w, lua_c = best(lua_w, (core.monotime() - w0) / n * 1e6), best(lua_c, (os.clock() - c0) / n * 1e6)
  local w, c
  w, c, bytes = raw(string.format("easy %s %s %d", url, key, n))
  raw_w, raw_c = best(raw_w, w), best(raw_c, c)
  -- The second reference: the same easy loop with polysim's options set as a libcurl user
  -- would (what those options cost curl itself; the goal stays against the plain loop).
  w, c = raw(string.format("opts %s %s %d", url, key, n))
  opt_w, opt_c = best(opt_w, w), best(opt_c, c)

  -- 64 in flight; first one untimed call each, as the C loop warms up: the connections
  -- curl closed while one handle ran (its cache shrinks to fit) open again
  local done, failed = 0, nil
  for _ = 1, PAR do ploop.spawn(function() assert(client:market(id)); done = done + 1 end) end
  assert(ploop.run_until(function() return done == PAR end, 120), "64-task warm-up timed out")
  done = 0
  w0 = core.monotime()
  for _ = 1, PAR do
    ploop.spawn(function()
      for _ = 1, per do
        local m, err = client:market(id)
        if not m then failed = failed or err end
      end
      done = done + 1
    end)
  end
  assert(ploop.run_until(function() return done == PAR end, 120), "64-task run timed out")
  assert(not failed, failed and tostring(failed))
  lua_rate = most(lua_rate, per * PAR / (core.monotime() - w0))
  local _, _, _, rate = raw(string.format("multi %s %s %d %d", url, key, per * PAR, PAR))
  raw_rate = most(raw_rate, rate)
end
stop_ref()

print(string.format("reference: bench/ref_server.c, %d-byte market JSON, keep-alive, loopback", bytes))
print(string.format("best of %d interleaved rounds (of %d sequential calls and %d with 64 in flight)",
  ROUNDS, n, per * PAR))
print(string.format("%-40s %9s %9s", "sequential", "CPU/call", "wall/call"))
print(string.format("%-40s %7.1fus %7.1fus  (%d new connections)", "client:market(id) incl. decode",
  lua_c, lua_w, opened))
print(string.format("%-40s %7.1fus %7.1fus", "plain libcurl easy loop", raw_c, raw_w))
print(string.format("%-40s %7.1fus %7.1fus", "the same with polysim's curl options", opt_c, opt_w))
print(string.format("%-40s %8.2fx %8.2fx  (goal <= 1.25x CPU, <= 1.15x wall)", "ratio polysim / libcurl",
  lua_c / raw_c, lua_w / raw_w))
print(string.format("%-40s %8.2fx %8.2fx", "ratio polysim / libcurl with its options",
  lua_c / opt_c, lua_w / opt_w))
print(string.format("%-40s %9.0f calls/s", PAR .. " tasks in flight (client:market)", lua_rate))
print(string.format("%-40s %9.0f calls/s", "curl-multi, " .. PAR .. " transfers", raw_rate))
print(string.format("%-40s %8.0f%%  (goal >= 80%%)", "polysim / curl-multi", lua_rate / raw_rate * 100))
