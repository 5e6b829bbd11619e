-- `make dashboard-shot`: 20 s of make-run-like trading (examples/market_maker.lua on a local
-- exchange, prices moving every 0.2 s) with the dashboard open in headless Chromium, then a
-- full-page screenshot for a person to look at. Usage: dashboard-shot.lua EXE OUT.png [SECONDS]
local ploop = require "polysim.loop"
local browser = require "browser"

local exe, out, secs = arg[1], arg[2] or "build/dashboard.png", tonumber(arg[3] or "20")
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local log = os.tmpname()
local pidf = os.tmpname()
assert(os.execute(("setsid %s run examples/market_maker.lua --tick 0.2 --dashboard 0 --duration %d --no-reload " ..
  ">%s 2>&1 </dev/null & echo $! >%s"):format(q(exe), secs + 30, q(log), q(pidf))))
local function slurp(p) local f = io.open(p); if not f then return "" end; local s = f:read("a"); f:close(); return s end
local pid = tonumber(slurp(pidf))
local function finish(code, msg)
  if pid then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
  if msg then io.stderr:write("dashboard-shot: ", msg, "\n") end
  os.remove(log); os.remove(pidf)
  os.exit(code)
end
local url
ploop.run_until(function() url = slurp(log):match("dashboard: (%S+)"); return url ~= nil end, 15)
if not url then finish(1, "the run printed no dashboard URL:\n" .. slurp(log)) end
local b, why = browser.start { width = 1400, height = 1100 }
if not b then finish(1, why) end
local page = b:page()
page:navigate(url)
ploop.run_until(function() return false end, secs)
local ok, err = page:screenshot(out, true)
b:close()
if not ok then finish(1, tostring(err)) end
print("dashboard-shot: wrote " .. out .. " after " .. secs .. " s of trading")
finish(0)
