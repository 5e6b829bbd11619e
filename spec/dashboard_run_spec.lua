-- `polysim run examples/market_maker.lua --dashboard 0` as a user runs it (a child process),
-- trading on a local exchange in this process, its page open in headless Chromium: the first
-- fill reaches the DOM, the equity shown is the account's to the cent, and the page's
-- actions refuse requests without the run's token or from another origin.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local browser = require "browser"
local H = require "helper"

local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function run(fn)
  local task = ploop.spawn(fn)
  assert(ploop.run_until(function() return task.done end, 20), "the spec's task did not finish")
  if task.error then error(task.error, 0) end
end

local function request(method, url, headers)
  return ploop.await(function(on_done)
    core.request { method = method, url = url, headers = headers or {}, timeout = 5, on_done = on_done }
  end)
end

-- "$10,012.34" or "-$3.10" -> "10012.34" / "-3.10"
local function plain(money) return (money:gsub("[$,%s]", "")) end

local function cents(dec)
  return tostring(core.decimal.new(dec):quantize("0.01", "half_up"))
end

describe("polysim run --dashboard", function()
  local srv, client, dir, pid
  setup(function()
    srv = H.exchange { tick = 0.1 }
    client = H.client(srv)
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir)))
    local cmd = ("cd %s && POLYSIM_API_KEY=%s setsid %s run examples/market_maker.lua --base-url %s " ..
      "--dashboard 0 --dashboard-control --duration 120 --no-reload >%s 2>&1 </dev/null & echo $! >%s")
      :format(q(os.getenv("PWD") or "."), q(srv.api_key), q(EXE), q(srv.base_url),
              q(dir .. "/run.log"), q(dir .. "/pid"))
    assert(os.execute(cmd))
    pid = tonumber(slurp(dir .. "/pid"))
  end)
  teardown(function()
    if pid then os.execute("kill -TERM -" .. pid .. " 2>/dev/null; kill -TERM " .. pid .. " 2>/dev/null") end
    srv:close()
  end)

  local function url()
    local u
    ploop.run_until(function()
      u = slurp(dir .. "/run.log"):match("dashboard: (http://127%.0%.0%.1:%d+/#token=%x+)")
      return u ~= nil
    end, 15)
    assert(u, "no dashboard URL printed:\n" .. slurp(dir .. "/run.log"))
    return u
  end

  it("shows the first fill and the account's equity to the cent, in a real browser", function()
    local b, why = browser.start()
    if not b then return pending(why) end
    finally(function() b:close() end)
    local page = b:page()
    page:navigate(url())
    assert(page:wait("document.querySelector('#fills tbody tr') !== null", 40),
      "no fill reached the page:\n" .. slurp(dir .. "/run.log"))
    -- freeze prices, then wait for two more pushes so the page shows the frozen account
    srv.stop_ticking()
    local seq = tonumber(page:eval("document.body.getAttribute('data-seq')"))
    assert(page:wait("Number(document.body.getAttribute('data-seq')) >= " .. (seq + 2), 10))
    local shown = page:eval("document.getElementById('equity').getAttribute('data-value')")
    local text = page:eval("document.getElementById('equity').textContent")
    run(function()
      local bal = assert(client:balance())
      local positions = assert(client:positions { status = "OPEN" })
      -- equity = cash + reserved + marked positions, from the API's own figures
      local sum = core.decimal.new(bal.balance) + core.decimal.new(bal.reserved)
      for _, p in ipairs(positions) do sum = sum + core.decimal.new(p.market_value) end
      assert.equal(cents(bal.total_value), cents(sum))
      assert.equal(cents(bal.total_value), cents(shown))
      assert.equal(cents(bal.total_value), plain(text))
    end)
    local fills = tonumber(page:eval("document.querySelectorAll('#fills tbody tr').length"))
    assert.truthy(fills >= 1)
  end)

  it("refuses actions without the token or from a foreign Origin, and changes nothing", function()
    local u = url()
    local base, token = u:match("^(http://[^/]+)/#token=(%x+)$")
    run(function()
      local before = 0
      for _ in client:orders { status = "PENDING" } do before = before + 1 end
      local cases = {
        { Origin = base },
        { Origin = "http://evil.example", ["X-Polysim-Token"] = token },
        { ["X-Polysim-Token"] = token },
      }
      for i, h in ipairs(cases) do
        for _, path in ipairs { "/api/cancel-all", "/api/stop" } do
          local r = assert(request("POST", base .. path, h))
          assert.equal(403, r.status, "case " .. i .. " " .. path)
        end
      end
      local g = assert(request("GET", base .. "/api/stop", { Origin = base, ["X-Polysim-Token"] = token }))
      assert.equal(405, g.status)
      local after = 0
      for _ in client:orders { status = "PENDING" } do after = after + 1 end
      assert.equal(before, after)
    end)
    assert.truthy(os.execute("kill -0 " .. pid .. " 2>/dev/null"), "the run stopped")
    assert.falsy(slurp(dir .. "/run.log"):find("requested from the page", 1, true))
  end)

  it("Cancel from the page cancels the strategy's own orders, never a foreign one", function()
    local u = url()
    local base, token = u:match("^(http://[^/]+)/#token=(%x+)$")
    local mine
    run(function()
      local m = client:markets { limit = 1 }()
      mine = assert(client:place_order { market_id = m.condition_id, side = "BUY", outcome = "Yes",
        order_type = "limit", quantity = 5, price = "0.01" })
      local r = assert(request("POST", base .. "/api/cancel-all", { Origin = base, ["X-Polysim-Token"] = token }))
      assert.equal(202, r.status)
    end)
    assert(ploop.run_until(function() return slurp(dir .. "/run.log"):find("strategies cancelled", 1, true) end, 10),
      slurp(dir .. "/run.log"))
    run(function()
      local o = assert(client:order(mine.order_id))
      assert.equal("PENDING", o.status)
    end)
  end)

  it("stops the run from the page's own origin with the token (on_stop runs)", function()
    local u = url()
    local base, token = u:match("^(http://[^/]+)/#token=(%x+)$")
    run(function()
      local r = assert(request("POST", base .. "/api/stop", { Origin = base, ["X-Polysim-Token"] = token }))
      assert.equal(202, r.status)
    end)
    assert(ploop.run_until(function() return not os.execute("kill -0 " .. pid .. " 2>/dev/null") end, 20),
      "the run did not stop")
    local log = slurp(dir .. "/run.log")
    assert.truthy(log:find("stopping (dashboard)", 1, true), log)
    assert.truthy(log:find("stopped (dashboard)", 1, true), log)
    assert.falsy(log:find(srv.api_key, 1, true), "the API key is in the output")
    pid = nil
  end)
end)
