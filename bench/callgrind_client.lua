-- Instructions per client:market(id) call (issue 13), deterministic where bench/client.lua's
-- timings are not: callgrind counts every instruction of the process; the difference of a
-- long and a short run, divided by the extra calls, cancels start-up.
--   lua5.4 bench/callgrind_client.lua [N1 N2]
--     starts bench/ref_server, prints instructions a call for client:market(id) incl. the
--     JSON decode, the plain libcurl easy loop and that loop with polysim's curl options
--     (bench/curl_raw.c; build both first: bench/run.sh or the cc lines in it)
--   lua5.4 bench/callgrind_client.lua options [N1 N2]
--     what each of polysim's curl options costs curl: the loop with the options, and with
--     one of them left out at a time (curl_raw's $CURL_RAW_WITHOUT)
--   lua5.4 bench/callgrind_client.lua run PORT N [PAR]   (what valgrind runs: N calls, or
--     N calls from each of PAR tasks in flight, as bench/client.lua's 64-task part)
local polysim = require "polysim"
local id = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
local key = string.rep("a", 64)

local port, n
if arg[1] == "run" then
  port, n = assert(tonumber(arg[2])), assert(tonumber(arg[3]))
  local client = polysim.new { base_url = "http://127.0.0.1:" .. port, api_key = key }
  local par = tonumber(arg[4])
  if not par then
    for _ = 1, n do assert(client:market(id)) end
    return
  end
  local ploop = require "polysim.loop"
  local done = 0
  for _ = 1, par do
    ploop.spawn(function()
      for _ = 1, n do assert(client:market(id)) end
      done = done + 1
    end)
  end
  assert(ploop.run_until(function() return done == par end, 600), "tasks timed out")
  return
end

local options = arg[1] == "options"
local n1, n2 = tonumber(arg[options and 2 or 1]) or 200, tonumber(arg[options and 3 or 2]) or 1200
os.remove("build/bench/cg_ref.port") -- else the wait below can read the last run's port
os.execute("build/bench/ref_server bench/market_594.json > build/bench/cg_ref.port & echo $! > build/bench/cg_ref.pid")
for _ = 1, 100 do
  local f = io.open("build/bench/cg_ref.port")
  port = f and tonumber(f:read("l") or "")
  if f then f:close() end
  if port then break end
  os.execute("sleep 0.02")
end
assert(port, "ref_server did not start (build/bench/ref_server)")

local function collected(cmd, env)
  local p = assert(io.popen((env or "") .. "valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  local ir = out:match("Collected : (%d+)")
  assert(ir, "valgrind failed: " .. out)
  return tonumber(ir)
end
local function per_call(fmt, par, env)
  par = par or 1
  local a, b = n1 // par, n2 // par
  return (collected(string.format(fmt, b), env) - collected(string.format(fmt, a), env)) / ((b - a) * par)
end

local url = "http://127.0.0.1:" .. port .. "/v1/markets/" .. id
local function stop_ref()
  local pf = io.open("build/bench/cg_ref.pid")
  if pf then os.execute("kill " .. pf:read("l") .. " 2>/dev/null"); pf:close() end
end
if options then
  local all = per_call("build/bench/curl_raw opts " .. url .. " " .. key .. " %d")
  print(string.format("instructions a call (callgrind, %d - %d calls), the loop with polysim's options: %.0f", n2, n1, all))
  print(string.format("%-44s %8s", "left out", "saves"))
  for _, name in ipairs { "accept_encoding", "user_agent", "accept", "expect", "timeouts", "keepalive",
    "protocols", "verify", "http_version" } do
    local v = per_call("build/bench/curl_raw opts " .. url .. " " .. key .. " %d", 1, "CURL_RAW_WITHOUT=" .. name .. " ")
    print(string.format("%-44s %8.0f", name, all - v))
  end
  stop_ref()
  return
end
local lua = per_call("lua5.4 bench/callgrind_client.lua run " .. port .. " %d")
local plain = per_call("build/bench/curl_raw easy " .. url .. " " .. key .. " %d")
local opts = per_call("build/bench/curl_raw opts " .. url .. " " .. key .. " %d")
local PAR = 64
local tasks = per_call("lua5.4 bench/callgrind_client.lua run " .. port .. " %d " .. PAR, PAR)
local multi = per_call("build/bench/curl_raw multi " .. url .. " " .. key .. " %d " .. PAR)
stop_ref()

print(string.format("instructions a call (callgrind, %d - %d calls)", n2, n1))
print(string.format("%-44s %8.0f", "client:market(id) incl. decode", lua))
print(string.format("%-44s %8.0f", "plain libcurl easy loop", plain))
print(string.format("%-44s %8.0f", "the same with polysim's curl options", opts))
print(string.format("%-44s %8.2fx  (%.2fx the loop with the options)", "ratio polysim / plain loop",
  lua / plain, lua / opts))
print(string.format("%-44s %8.0f", PAR .. " tasks in flight (client:market)", tasks))
print(string.format("%-44s %8.0f", "curl-multi loop, " .. PAR .. " transfers", multi))
print(string.format("%-44s %8.2fx", "ratio tasks / curl-multi", tasks / multi))
