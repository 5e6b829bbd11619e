-- make soak, part 2: the local exchange (`polysim serve`, its own process, rate limits off)
-- under SOAK_SECONDS (300) of steady traffic from SOAK_TASKS (8) concurrent client tasks:
-- market orders (buys and sells), balance, order pages, books, market pages. Prints the
-- server's resident memory (VmRSS of /proc/PID/status) at the start and at the end, and
-- this process's own, with the request rate.
local polysim = require "polysim"
local core = require "polysim.core"
local ploop = require "polysim.loop"

local SECONDS = tonumber(os.getenv "SOAK_SECONDS") or 300
local TASKS = tonumber(os.getenv "SOAK_TASKS") or 8
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function rss_kb(pid)
  local f = io.open("/proc/" .. tostring(pid) .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function mb(kb) return kb and string.format("%.1f MB", kb / 1024) or "?" end

local h = assert(io.popen("echo $$; exec " .. sh_quote(EXE) ..
  " serve --port 0 --tick 0.5 --unlimited 2>/dev/null", "r"))
local pid = tonumber(h:read("l"))
local info = core.json_decode(h:read("l") or "")
if not (pid and type(info) == "table" and info.base_url) then
  io.stderr:write("soak: the exchange did not start\n")
  os.exit(1)
end

local client = polysim.new { base_url = info.base_url, api_key = info.api_key, retry_base = 0.01 }
local market
for m in client:markets { page_size = 100 } do
  if m.outcomes and #m.outcomes == 2 and m.active ~= false and m.closed ~= true then market = m.condition_id break end
end
assert(market, "no binary market")

local rss0 = rss_kb(pid)
local self0 = rss_kb("self")
print(string.format("soak exchange: %d s, %d tasks, server pid %d; RSS at start: server %s, client %s",
  SECONDS, TASKS, pid, mb(rss0), mb(self0)))

local n = { requests = 0, orders = 0, rejected = 0, errors = 0 }
local t0 = core.monotime()
local stop_at = t0 + SECONDS
local next_report = t0 + 60
local function count(r, err)
  n.requests = n.requests + 1
  if not r then
    if err and err.status and err.status >= 400 and err.status < 500 then n.rejected = n.rejected + 1
    else n.errors = n.errors + 1 end
  end
  return r
end

local tasks = {}
for t = 1, TASKS do
  tasks[t] = ploop.spawn(function()
    local i = 0
    while core.monotime() < stop_at do
      i = i + 1
      local k = i % 6
      if k == 0 or k == 3 then
        local buy = k == 0
        if count(client:place_order { market_id = market, side = buy and "BUY" or "SELL", outcome = "Yes",
            quantity = 5, price = buy and "0.99" or "0.01" }) then n.orders = n.orders + 1 end
      elseif k == 1 then count(client:balance())
      elseif k == 2 then count(client:orders_page { limit = 50 })
      elseif k == 4 then count(client:book(market))
      else count(client:markets_page { limit = 20 }) end
      if t == 1 and core.monotime() >= next_report then
        next_report = next_report + 60
        print(string.format("  %4.0f s: %d requests, server RSS %s", core.monotime() - t0, n.requests,
          mb(rss_kb(pid))))
      end
    end
  end)
end
for _, t in ipairs(tasks) do ploop.join(t) end
local elapsed = core.monotime() - t0
local rss1 = rss_kb(pid)
local self1 = rss_kb("self")
os.execute("kill " .. math.floor(pid) .. " 2>/dev/null")
h:close()

print(string.format("  %d requests in %.0f s (%.0f/s): %d orders filled, %d rejected (4xx), %d failed",
  n.requests, elapsed, n.requests / elapsed, n.orders, n.rejected, n.errors))
print(string.format("  RSS at end: server %s (start %s, %+.1f MB), client %s (start %s)",
  mb(rss1), mb(rss0), ((rss1 or 0) - (rss0 or 0)) / 1024, mb(self1), mb(self0)))
if n.errors > 0 then
  print("soak exchange: FAILED (requests failed)")
  os.exit(1)
end
print("soak exchange: ok")
