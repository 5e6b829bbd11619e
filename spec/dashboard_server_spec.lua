-- polysim.dashboard over real loopback HTTP, in this process: the page, the pushed
-- snapshots, and the guards on acting (per-run token, own Origin, POST only, own Host).
local core = require "polysim.core"
local ploop = require "polysim.loop"
local dashboard = require "polysim.dashboard"
local strategy = require "polysim.strategy"
local H = require "helper"

-- One raw request, headers exactly as given (nothing added but what curl must send).
local function request(method, url, headers)
  local r = ploop.await(function(on_done)
    core.request { method = method, url = url, headers = headers or {}, timeout = 5, on_done = on_done }
  end)
  return r
end

local function run(fn)
  local task = ploop.spawn(fn)
  local ok = ploop.run_until(function() return task.done end, 20)
  assert(ok, "the spec's task did not finish")
  if task.error then error(task.error, 0) end
  return task.result
end

describe("polysim.dashboard", function()
  local srv, client, d, stops, cancels
  before_each(function()
    srv = H.exchange()
    client = H.client(srv)
    stops, cancels = 0, 0
    d = assert(dashboard.start { port = 0, control = true, collect = function() return { name = "spec" } end,
      on_stop = function() stops = stops + 1 end,
      on_cancel_all = function() cancels = cancels + 1; return "0 orders cancelled" end })
  end)
  after_each(function() d:close(); srv:close() end)

  local function base() return "http://127.0.0.1:" .. d.port end

  it("binds 127.0.0.1 and prints a URL carrying the token only when control is on", function()
    assert.truthy(d.url:find("^http://127%.0%.0%.1:%d+/#token=" .. d.token .. "$"), d.url)
    assert.equal(32, #d.token)
    assert.falsy(tostring(d):find(d.token, 1, true), "the token leaks through tostring")
  end)

  it("serves one self-contained page", function()
    run(function()
      local r = assert(request("GET", base() .. "/"))
      assert.equal(200, r.status)
      assert.truthy(r.body:find("PS.dashboard", 1, true))
      assert.falsy(r.body:find("https?://"), "the page names an address")
      assert.falsy(r.body:find(d.token, 1, true), "the token is baked into the page")
    end)
  end)

  it("refuses an action without the token, with a foreign Origin, or as a GET, and does nothing", function()
    run(function()
      local own = base()
      local cases = {
        { "POST", "/api/stop", { Origin = own } },                                  -- no token
        { "POST", "/api/stop", { Origin = own, ["X-Polysim-Token"] = (d.token:sub(1, 1) == "0" and "1" or "0") .. d.token:sub(2) } },
        { "POST", "/api/stop", { Origin = "http://evil.example", ["X-Polysim-Token"] = d.token } },
        { "POST", "/api/stop", { ["X-Polysim-Token"] = d.token } },                  -- no Origin
        { "POST", "/api/cancel-all", { Origin = "null", ["X-Polysim-Token"] = d.token } },
        { "POST", "/api/stop", { Origin = own, ["X-Polysim-Token"] = d.token, Host = "evil.example:80" } },
      }
      for i, c in ipairs(cases) do
        local r = assert(request(c[1], own .. c[2], c[3]))
        assert.equal(403, r.status, "case " .. i .. ": " .. tostring(r.body))
      end
      local g = assert(request("GET", own .. "/api/stop?token=" .. d.token, { Origin = own }))
      assert.equal(405, g.status)
      assert.equal(0, stops)
      assert.equal(0, cancels)
      local ok = assert(request("POST", own .. "/api/cancel-all", { Origin = own, ["X-Polysim-Token"] = d.token }))
      assert.equal(202, ok.status, ok.body)
      ploop.sleep(0.05)
      assert.equal(1, cancels)
      assert.equal(0, stops)
    end)
  end)

  it("refuses a cross-site WebSocket and a page opened under another host name", function()
    run(function()
      local r = assert(request("GET", base() .. "/ws", { Origin = "http://evil.example", Connection = "Upgrade",
        Upgrade = "websocket", ["Sec-WebSocket-Version"] = "13", ["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==" }))
      assert.equal(403, r.status)
      local h = assert(request("GET", base() .. "/", { Host = "rebound.example:" .. d.port }))
      assert.equal(403, h.status)
    end)
  end)

  it("a dashboard without control refuses actions even with the token", function()
    local ro = assert(dashboard.start { port = 0, collect = function() return {} end })
    finally(function() ro:close() end)
    assert.falsy(ro.url:find("token", 1, true))
    run(function()
      local own = "http://127.0.0.1:" .. ro.port
      local r = assert(request("POST", own .. "/api/stop", { Origin = own, ["X-Polysim-Token"] = ro.token }))
      assert.equal(403, r.status)
    end)
  end)

  it("collects nothing while no page is open, beyond the slow curve sample", function()
    -- 1 s refresh with a page open, 5 s idle sampling: 2.5 s with no page collects nothing
    ploop.run_until(function() return false end, 2.5)
    assert.equal(0, d.collects)
  end)

  it("attached to a runtime, pushes the API's figures: equity = total_value, cash = balance", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "w"))
    f:write("return { name = 'spec-dash', on_start = function() end }\n")
    f:close()
    local rt = strategy.new { client = client, budget = false, log_sink = function() end }
    assert(rt:start(path))
    local a = assert(dashboard.attach(rt, { port = 0, mode = "local exchange" }))
    finally(function() a:close(); rt:stop("spec") end)
    local snap
    run(function()
      local m = client:markets { limit = 1 }()
      assert(client:place_order { market_id = m.condition_id, side = "BUY", outcome = "Yes",
                                  order_type = "market", amount = "25", price = "0.99" })
      a:refresh()
    end)
    assert(ploop.run_until(function() return a.snapshot ~= nil end, 5))
    snap = a.snapshot
    run(function()
      local bal = assert(client:balance())
      assert.equal(bal.balance, snap.cash)
      assert.equal(bal.total_value, snap.equity)
      assert.equal("spec-dash", snap.name)
      assert.equal("local exchange", snap.mode)
      assert.equal(1, #snap.positions)
      assert.equal(1, #a.curve)
    end)
  end)

  it("rejects bad options by name", function()
    H.raises("unknown option 'contrl'", dashboard.start, { contrl = true })
    H.raises("port must be a number", dashboard.start, { port = "80" })
  end)
end)
