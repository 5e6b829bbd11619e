-- polysim backtest --dashboard [PORT] [--speed X] (issues 12 and 14): the live page on a
-- replay, run as a user runs it (the executable, a child process), opened in headless
-- Chromium: the curve's times are the recording's, it follows the replay, and the equity at
-- the end is the report's to the cent. Without Chromium the page test is pending; the same
-- data is also checked over the page's WebSocket.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local browser = require "browser"
local bt = require "btdata"

local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
local T0 = bt.T0
local SPAN = 600           -- seconds of data
local LAST = T0 + SPAN - 0.5 -- the last price record's time

local STRAT = [[
local S = {}
function S.on_start(ctx)
  ctx.state.n = 0
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
end
function S.on_price(ctx, msg)
  local st = ctx.state
  st.n = st.n + 1
  if st.n % 15 == 0 then
    assert(ctx.client:place_order { market_id = msg.market_id, side = "BUY", outcome = "Yes", quantity = 20, price = "0.99" })
    ctx:sleep(4)
    ctx.client:place_order { market_id = msg.market_id, side = "SELL", outcome = "Yes", quantity = 20, price = "0.01" }
  end
end
return S
]]

local function cents(v) return tostring(core.decimal.new(tostring(v)):quantize("0.01", "half_up")) end

describe("polysim backtest --dashboard", function()
  local tmp, data, strat, n = nil, nil, nil, 0
  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(core.mkdir_p(tmp))
    data, strat = tmp .. "/data.jsonl", tmp .. "/s.lua"
    bt.write(data, bt.dataset(SPAN))
    bt.write(strat, STRAT)
  end)
  teardown(function() os.execute("rm -rf " .. bt.q(tmp)) end)

  -- Starts `polysim backtest s.lua --data data.jsonl --report DIR ARGS...` as a child.
  local function launch(...)
    n = n + 1
    local dir = tmp .. "/run" .. n
    assert(core.mkdir_p(dir))
    local argv = { EXE, "backtest", strat, "--data", data, "--report", dir .. "/report", ... }
    local pid = assert(core.spawn(argv, { stdout = dir .. "/out", stderr = dir .. "/err" }))
    local child = { pid = pid, dir = dir }
    function child.err() return bt.slurp(dir .. "/err") or "" end
    function child.url()
      local u
      ploop.run_until(function()
        u = child.err():match("dashboard: (http://127%.0%.0%.1:%d+/)")
        return u ~= nil or core.wait(pid, true) ~= nil
      end, 20)
      assert(u, "no dashboard URL printed:\n" .. child.err())
      return u
    end
    function child.wait_done()
      assert(ploop.run_until(function() return child.err():find("replay done", 1, true) ~= nil end, 60),
        "the replay did not finish:\n" .. child.err())
    end
    function child.stop()
      if child.code then return child.code end
      core.kill(pid, "TERM")
      local code
      ploop.run_until(function() code = core.wait(pid, true); return code ~= nil end, 10)
      if not code then core.kill(pid, "KILL"); code = core.wait(pid) end
      child.code = code
      return code
    end
    function child.report() return assert(core.json_decode(assert(bt.slurp(dir .. "/report/report.json")))) end
    return child
  end

  it("in a browser: the curve follows the replay in data time; the final equity is the report's", function()
    local b, why = browser.start()
    if not b then return pending(why) end
    finally(function() b:close() end)
    -- 600 s of data at 30x: about 20 s of replay, time to watch it
    local child = launch("--dashboard", "0", "--speed", "30", "--quiet")
    finally(function() child.stop() end)
    local page = b:page()
    assert(page:navigate(child.url()))
    local function now() return tonumber(page:eval("document.body.getAttribute('data-now')")) end
    local function state() return page:eval("document.getElementById('state').textContent") end
    -- while it runs: the page's clock is the data's, and it moves
    assert(page:wait("Number(document.body.getAttribute('data-now')) > " .. (T0 + 30), 20), child.err())
    local n1, s1 = now(), state()
    assert(page:wait("Number(document.body.getAttribute('data-now')) > " .. n1, 10), child.err())
    local n2 = now()
    assert.equal("live", s1)
    assert.truthy(n1 >= T0 and n2 > n1 and n2 <= LAST, n1 .. " " .. n2)
    assert.equal("backtest", (page:eval("document.getElementById('mode').textContent"):gsub("^%W+", "")))
    -- the end: the runtime stopped, the report written
    assert(page:wait("document.getElementById('state').textContent === 'stopped'", 60), child.err())
    child.wait_done()
    local report = child.report()
    local xs = page:eval("(function () { var s = document.querySelector('#equity-chart svg[data-chart]');" ..
      " return PS._charts[s.getAttribute('data-chart')].xs; })()")
    local ys = page:eval("(function () { var s = document.querySelector('#equity-chart svg[data-chart]');" ..
      " return PS._charts[s.getAttribute('data-chart')].ys; })()")
    assert.truthy(#xs >= SPAN / 60, "only " .. #xs .. " curve points")
    for i, x in ipairs(xs) do
      assert.truthy(x >= T0 and x <= LAST, "point " .. i .. " at " .. x .. " is not a data time")
      if i > 1 then assert.truthy(x >= xs[i - 1], "the curve goes back in time at point " .. i) end
    end
    assert.near(LAST, xs[#xs], 1e-6)
    assert.equal(report.final_equity, cents(ys[#ys]))
    -- the equity card, to the cent, and the fills the report counted
    local shown = page:eval("document.getElementById('equity').getAttribute('data-value')")
    assert.equal(report.final_equity, cents(shown))
    assert.equal(report.final_equity, (page:eval("document.getElementById('equity').textContent"):gsub("[$,%s]", "")))
    assert.equal(tostring(report.trades), page:eval("document.querySelector('#n-fills .value, #n-fills').textContent"):match("%d+"))
    -- the x axis labels are data times (2027-01-15 08:00 UTC onwards), not the wall clock
    local labels = page:eval("Array.prototype.map.call(document.querySelectorAll('#equity-chart svg > text'), " ..
      "function (t) { return t.textContent; }).join(' ')")
    assert.truthy(labels:find(os.date("!%H:%M", T0), 1, true), labels)
    assert.equal(0, child.stop())
  end)

  it("over the page's WebSocket: the whole curve in data time, the final snapshot equal to the report", function()
    local child = launch("--dashboard", "0")             -- no --speed: as fast as it goes
    finally(function() child.stop() end)
    local url = child.url()
    child.wait_done()
    local hello, closed
    local ws = core.ws_connect { url = url:gsub("^http", "ws") .. "ws", max_message = 16 << 20,
      headers = "Origin: " .. url:gsub("/$", "") .. "\r\n",
      on_message = function(text) hello = hello or core.json_decode(text) end,
      on_close = function() closed = true end }
    assert(ploop.run_until(function() return hello ~= nil or closed end, 10), "no hello from the page's socket")
    ws:close()
    assert.equal("hello", hello.type)
    local report = child.report()
    local snap = hello.snapshot
    assert.equal("backtest", snap.mode)
    assert.equal(true, snap.stopped)
    assert.near(LAST, snap.now, 1e-6)
    assert.equal(report.final_equity, cents(snap.equity))
    local curve = hello.curve
    assert.truthy(#curve >= SPAN / 60)
    assert.equal(T0, curve[1].t)                         -- the first sample: the data's start
    for i, p in ipairs(curve) do
      assert.truthy(p.t >= T0 and p.t <= LAST, "point " .. i .. " at " .. p.t)
      if i > 1 then assert.truthy(p.t >= curve[i - 1].t) end
    end
    assert.equal(report.final_equity, cents(curve[#curve].v))
    -- the summary on stdout is the report's; TERM ends the wait with status 0
    assert.equal(0, child.stop())
    local out = core.json_decode(bt.slurp(child.dir .. "/out"))
    assert.equal(report.final_equity, out.final_equity)
    assert.truthy(child.err():find("until Ctrl-C", 1, true))
  end)

  it("with --dashboard-control, Stop from the page (token, own Origin) ends the replay early", function()
    local child = launch("--dashboard", "0", "--dashboard-control", "--speed", "20", "--quiet")
    finally(function() child.stop() end)
    local url
    ploop.run_until(function()
      url = child.err():match("dashboard: (http://127%.0%.0%.1:%d+/#token=%x+)")
      return url ~= nil
    end, 20)
    assert(url, child.err())
    local base, token = url:match("^(http://[^/]+)/#token=(%x+)$")
    local function post(headers)
      local task = ploop.spawn(function()
        return ploop.await(function(on_done)
          core.request { method = "POST", url = base .. "/api/stop", headers = headers, timeout = 5, on_done = on_done }
        end)
      end)
      assert(ploop.run_until(function() return task.done end, 10))
      return task.results[1]
    end
    assert.equal(403, post({ Origin = base }).status)                          -- no token
    assert.equal(403, post({ Origin = "http://evil.example", ["X-Polysim-Token"] = token }).status)
    assert.equal(202, post({ Origin = base, ["X-Polysim-Token"] = token }).status)
    child.wait_done()
    local report = child.report()
    assert.truthy(report.data_span.to < LAST, "the replay ran to the end: " .. tostring(report.data_span.to))
    assert.equal(0, child.stop())
  end)

  describe("bad options: a clear error naming it, exit 2", function()
    local cases = {
      { { "--speed", "10" }, "--speed paces a --dashboard replay: add --dashboard" },
      { { "--dashboard", "--speed", "0" }, "--speed must be a number > 0" },
      { { "--dashboard", "--speed", "-3" }, "--speed must be a number > 0" },
      { { "--dashboard", "--speed", "fast" }, "--speed needs a number" },
      { { "--dashboard", "70000" }, "--dashboard: port must be 0..65535" },
    }
    for _, c in ipairs(cases) do
      it(table.concat(c[1], " "), function()
        local child = launch(table.unpack(c[1]))
        local code = core.wait(child.pid)
        child.code = code
        assert.equal(2, code, child.err())
        assert.truthy(child.err():find(c[2], 1, true), child.err())
        assert.is_nil(io.open(child.dir .. "/report/report.json"))
      end)
    end
  end)
end)
