-- Sweep scaling: 8 combinations of a parameter grid, run one by one (8 `polysim backtest
-- --param ...` processes, one after the other: the reference) and as one `polysim backtest
-- --sweep ... --jobs 2`, on the same recording in the same run. Prints both wall times,
-- their ratio (goal <= 0.6 on two free cores) and the CPU the children used (getrusage), with
-- the load average before the run (other processes on the cores stretch the --jobs wall time)
-- and the sweep's wall against its CPU-bound floor (its CPU / 2: what two free cores allow).
-- lua5.4 bench/sweep.lua [EVENTS]   (LUA_PATH/LUA_CPATH and POLYSIM_EXE as `make bench` sets)
local core = require "polysim.core"

local N = tonumber(arg[1]) or 20000
local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
local dir = os.tmpname()
os.remove(dir)
assert(core.mkdir_p(dir))

local function write(path, text) local f = assert(io.open(path, "wb")); f:write(text); f:close() end

-- N price events over 5 markets (a sine wave each, in its own phase), 0.1 s apart.
local data = dir .. "/data.jsonl"
dofile((arg[0]:match("^(.*)/") or ".") .. "/recording.lua")(data, N, { step = 0.1, phase = true })

-- Mean reversion with its band and size as parameters.
local strat = dir .. "/strategy.lua"
write(strat, [[
local S = {}
function S.on_start(ctx)
  ctx.state.avg, ctx.state.held = {}, {}
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
end
function S.on_price(ctx, msg)
  local band, size = tonumber(ctx.params.band), tonumber(ctx.params.size)
  local st, p = ctx.state, tonumber(msg.buy)
  local a = st.avg[msg.market_id] or p
  st.avg[msg.market_id] = 0.8 * a + 0.2 * p
  local held = st.held[msg.market_id] or 0
  if p < a - band and held == 0 then
    if ctx.client:place_order { market_id = msg.market_id, side = "BUY", outcome = "Yes", quantity = size, price = "0.99" } then
      st.held[msg.market_id] = size
    end
  elseif p > a + band and held > 0 then
    if ctx.client:place_order { market_id = msg.market_id, side = "SELL", outcome = "Yes", quantity = held, price = "0.01" } then
      st.held[msg.market_id] = 0
    end
  end
end
return S
]])

local BANDS, SIZES = { "0.005", "0.01", "0.02", "0.04" }, { "5", "20" }

local function cpu()
  local r = core.rusage("children")
  return r.user + r.sys
end

local function run(argv, out)
  local pid = assert(core.spawn(argv, { stdout = out or "/dev/null", stderr = dir .. "/stderr" }))
  local code = core.wait(pid)
  if code ~= 0 then
    local f = io.open(dir .. "/stderr")
    error("bench/sweep: " .. table.concat(argv, " ") .. " exited " .. code .. ": " .. (f and f:read("a") or ""), 0)
  end
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l")
  if f then f:close() end
  return s and s:match("^(%S+ %S+ %S+)") or "n/a"
end
local load0 = loadavg()

-- one by one
local c0, t0 = cpu(), core.monotime()
for _, b in ipairs(BANDS) do
  for _, s in ipairs(SIZES) do
    run { EXE, "backtest", strat, "--data", data, "--param", "band=" .. b, "--param", "size=" .. s, "--quiet" }
  end
end
local serial, serial_cpu = core.monotime() - t0, cpu() - c0

-- the sweep
local table_out = dir .. "/table.txt"
c0, t0 = cpu(), core.monotime()
run({ EXE, "backtest", strat, "--data", data, "--sweep", "band=" .. table.concat(BANDS, ","),
      "--sweep", "size=" .. table.concat(SIZES, ","), "--jobs", "2", "--quiet" }, table_out)
local swept, swept_cpu = core.monotime() - t0, cpu() - c0
local f = assert(io.open(table_out))
local rows = select(2, f:read("a"):gsub("\n", "")) - 1
f:close()
assert(rows == 8, "bench/sweep: the sweep printed " .. rows .. " rows")

print(string.format("sweep: 8 combinations x %d events, %d cores online, load average %s before, %s after",
  N, core.ncpu(), load0, loadavg()))
print(string.format("  one by one   %6.2f s wall  %6.2f s CPU (children, getrusage)", serial, serial_cpu))
print(string.format("  --jobs 2     %6.2f s wall  %6.2f s CPU (children, getrusage)", swept, swept_cpu))
print(string.format("  ratio        %6.2f (goal <= 0.60)", swept / serial))
print(string.format("  --jobs 2 wall / (its CPU / 2)  %6.2f (1.00: both cores busy all along)", swept / (swept_cpu / 2)))
os.execute("rm -rf '" .. dir .. "'")
