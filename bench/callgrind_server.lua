-- Instructions per request on the server side of `polysim serve` (issue 13), deterministic
-- where bench/exchange.lua's rates are not: the exchange runs under callgrind, a client in
-- this process warms it up, callgrind_control zeroes the counts, N requests follow, and the
-- dump's total over N is the server's cost a request (start-up and warm-up excluded).
--   lua5.4 bench/callgrind_server.lua [N] [KIND ...]     KIND: get, order, order_unkeyed, health
-- Keeps the last dump of each kind in build/bench/cg_server.KIND (callgrind_annotate
-- --inclusive=yes shows where a request's instructions go).
local polysim = require "polysim"
local core = require "polysim.core"

local N = tonumber(arg[1]) or 500
local kinds = { table.unpack(arg, 2) }
if #kinds == 0 then kinds = { "get", "order", "order_unkeyed", "health" } end
local exe = os.getenv "POLYSIM_EXE" or "build/bin/polysim"
os.execute("mkdir -p build/bench")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function measure(kind)
  local out = "build/bench/cg_server.out"
  local file = "build/bench/cg_server." .. kind
  os.remove(out)
  os.remove(file)
  os.execute(string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s serve --port 0 --tick 0 " ..
    "--unlimited > %s 2> build/bench/cg_server.log & echo $! > build/bench/cg_server.pid", file, exe, out))
  local pid = assert(io.open("build/bench/cg_server.pid")):read("l")
  local line
  for _ = 1, 600 do
    local f = io.open(out)
    line = f and f:read("l")
    if f then f:close() end
    if line and line ~= "" then break end
    os.execute("sleep 0.05")
  end
  assert(line and line ~= "", "the exchange did not start under valgrind")
  local info = assert(core.json_decode(line))
  -- Generous timeouts: everything on the server side runs ~50x slower under callgrind.
  local client = polysim.new { base_url = info.base_url, api_key = info.api_key, timeout = 60 }
  local m = assert(client:markets_page { limit = 50 })
  local mid
  for _, x in ipairs(m) do
    if x.outcomes and #x.outcomes == 2 then mid = x.condition_id break end
  end
  local i = 0
  local one
  if kind == "get" then
    one = function() assert(client:market(mid)) end
  elseif kind == "health" then
    one = function() assert(client:health()) end
  else
    one = function()
      i = i + 1
      local side = i % 2 == 1 and "BUY" or "SELL" -- buys before it sells
      if kind == "order" then
        local o, err = client:place_order { market_id = mid, side = side, outcome = "Yes", quantity = 5,
          price = side == "BUY" and "0.99" or "0.01", time_in_force = "FAK" }
        assert(o or (err and err.status == 409), err and tostring(err))
      else -- the same order without Idempotency-Key and client_order_id
        local o, err = client:_call("POST", "/v1/orders", { body = { market_id = mid, side = side, outcome = "Yes",
          quantity = "5", price = side == "BUY" and "0.99" or "0.01", time_in_force = "FAK" } })
        assert(o or (err and err.status == 409), err and tostring(err))
      end
    end
  end
  for _ = 1, 100 do one() end
  sh("callgrind_control -z " .. pid)
  for _ = 1, N do one() end
  sh("callgrind_control -d " .. pid)
  os.execute("kill " .. pid)
  os.execute("sleep 0.5")
  -- the dump named <file>.<n>: the counts since the zeroing
  local dump = sh("ls -1 " .. file .. ".* | head -n 1"):match("[^\n]+")
  local total = assert(sh("callgrind_annotate " .. dump .. " | head -n 30"):match("([%d,]+)%s+%(100.0%%%)%s+PROGRAM TOTALS"),
    "no totals in " .. tostring(dump))
  total = tonumber((total:gsub(",", "")))
  os.rename(dump, file)
  return total / N
end

for _, kind in ipairs(kinds) do
  print(string.format("%-14s %9.0f instructions a request (server, %d requests)", kind, measure(kind), N))
end
