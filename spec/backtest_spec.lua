-- polysim record / polysim backtest (issue 12): simulated time, the in-process exchange fed
-- by a recording, params, latency, determinism, bad data, the report (and its page).
local core = require "polysim.core"
local backtest = require "polysim.backtest"
local report = require "polysim.report"
local browser = require "browser"
local btdata = require "btdata"

local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)

local write, slurp = btdata.write, btdata.slurp

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local T0, A, B, market, dataset = btdata.T0, btdata.A, btdata.B, btdata.market, btdata.dataset

local STRAT = [[
local S = {}
function S.on_start(ctx)
  ctx.state.prices, ctx.state.ticks, ctx.state.orders = 0, 0, {}
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
  ctx:every(10, function() ctx.state.ticks = ctx.state.ticks + 1 end)
end
function S.on_price(ctx, msg)
  local st = ctx.state
  st.prices = st.prices + 1
  if st.prices % 20 == 0 then
    local q = tonumber(ctx.params.qty or "5")
    local t0 = ctx:now()
    local o = assert(ctx.client:place_order { market_id = msg.market_id, side = "BUY", outcome = "Yes",
      quantity = q, price = "0.99" })
    ctx:sleep(3)
    st.orders[#st.orders + 1] = { at = t0, slept = ctx:now() - t0, price = o.fill_price }
    ctx.client:place_order { market_id = msg.market_id, side = "SELL", outcome = "Yes", quantity = q, price = "0.01" }
  end
end
function S.on_stop(ctx)
  ctx.log.warn("RESULT prices=%d ticks=%d orders=%d now=%.1f", ctx.state.prices, ctx.state.ticks,
    #ctx.state.orders, ctx:now())
end
return S
]]

describe("polysim backtest", function()
  local data, strat = tmp .. "/data.jsonl", tmp .. "/s.lua"
  setup(function()
    write(data, dataset(120))
    write(strat, STRAT)
  end)

  local function run(o)
    local lines = {}
    o.strategy, o.data = o.strategy or strat, o.data or data
    o.log_sink = function(line) lines[#lines + 1] = line end
    local res = backtest.run(o)
    return res, table.concat(lines, "\n")
  end

  it("replays in simulated time: ctx:now, every and sleep follow the data clock", function()
    local res, logs = run {}
    assert.equal(240, res.events)
    local prices, ticks, n, now = logs:match("RESULT prices=(%d+) ticks=(%d+) orders=(%d+) now=([%d.]+)")
    -- 242 prices reach the strategy: A's and B's current price at subscribe (as the live
    -- stream sends them), then the 240 recorded; the last, B's at 119.5 s, waits behind B's
    -- callback asleep in the 12th order when the data ends
    assert.equal("241", prices)
    assert.equal("11", ticks) -- 119.5 s of data after on_start at T0: ticks at 10, 20, ... 110 s
    assert.equal("11", n) -- the 12th order's sleep(3) outlives the data: the run stops in it
    assert.equal(string.format("%.1f", T0 + 119.5), now)
    assert.equal(23, #res.trades)
    assert.equal(23, #res.orders)
    assert.equal(B, res.orders[1].market_id) -- the 20th price: B (A and B alternate, from the snapshots on)
    assert.equal("BUY", res.orders[1].side)
    assert.equal("SELL", res.orders[2].side)
    -- the sell went 3 s of data time after the buy
    assert.near(3, res.trades[2].t - res.trades[1].t, 1e-9)
  end)

  it("the equity samples do not spend the strategy's rate limit", function()
    -- the strategy uses every request its tier allows: before, the harness's own balance
    -- read at the 60 s sample got the 429 and the run died on it
    local greedy = tmp .. "/greedy.lua"
    write(greedy, [[
local S = {}
function S.on_start(ctx)
  ctx.state.ok, ctx.state.limited = 0, 0
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
end
function S.on_price(ctx)
  for _ = 1, 30 do
    local b, err = ctx.client:balance()
    if not b then
      assert(err.status == 429, tostring(err))
      ctx.state.limited = ctx.state.limited + 1
      return
    end
    ctx.state.ok = ctx.state.ok + 1
  end
end
function S.on_stop(ctx) ctx.log.warn("GREEDY ok=%d limited=%d", ctx.state.ok, ctx.state.limited) end
return S
]])
    local res, logs = run { strategy = greedy }
    assert.equal(240, res.events)
    local ok_n = tonumber(logs:match("GREEDY ok=(%d+)"))
    assert.is_true(ok_n > 2000, logs)
    assert.is_true(#res.equity >= 3)
  end)

  it("market orders walk the recorded book; ctx.params carries --param values", function()
    local res = run { params = { qty = "150" } }
    -- 150 shares against 100-share levels: two levels, VWAP between them
    local p = tonumber(res.trades[1].price)
    assert.equal("150", res.trades[1].quantity)
    assert.is_true(p > 0.4 and p < 0.7, tostring(p))
    assert.equal("150", res.orders[1].quantity)
  end)

  it("is deterministic: the same inputs give byte-identical reports", function()
    local d1, d2 = tmp .. "/r1", tmp .. "/r2"
    report.write(d1, (run {}))
    report.write(d2, (run {}))
    for _, f in ipairs { "report.json", "trades.csv", "equity.csv", "report.html" } do
      assert.equal(slurp(d1 .. "/" .. f), slurp(d2 .. "/" .. f), f)
    end
  end)

  it("--latency delays each order's arrival on the simulated clock", function()
    local r0 = run {}
    local r1 = run { latency_ms = 2000 }
    assert.near(2, r1.trades[1].t - r0.trades[1].t, 1e-9)
    assert.equal(2000, report.summary(r1).latency_ms)
  end)

  it("writes report.json, trades.csv, equity.csv and report.html from the command line", function()
    local dir = tmp .. "/cli"
    local out, code = sh(EXE .. " backtest " .. strat .. " --data " .. data .. " --param qty=7 --report " .. dir)
    assert.equal(0, code, out)
    local summary = core.json_decode(slurp(dir .. "/report.json"))
    assert.equal("7", summary.params.qty)
    assert.equal(23, summary.trades)
    assert.truthy(summary.sharpe_sampling:find("every 60 s", 1, true))
    for _, k in ipairs { "pnl", "return", "max_drawdown", "sharpe", "fees", "win_rate", "exposure", "data_span" } do
      assert.is_not_nil(summary[k], k)
    end
    assert.equal(T0, summary.data_span.from) -- the first book
    local trades = slurp(dir .. "/trades.csv")
    assert.equal(24, select(2, trades:gsub("\n", "")))
    assert.truthy(slurp(dir .. "/equity.csv"):find("^time,equity,cash,drawdown\n"))
    assert.truthy(slurp(dir .. "/report.html"):find("<svg", 1, true) or slurp(dir .. "/report.html"):find("PS.report", 1, true))
  end)

  describe("the progress bar", function()
    local progress = require "polysim.backtest.progress"

    it("draws nothing in the first second, then at most ten times a second", function()
      local now, out = 0, {}
      local sink = { write = function(_, ...) for _, v in ipairs { ... } do out[#out + 1] = v end end, flush = function() end }
      local bar = progress.new { out = sink, enabled = true, monotime = function() return now end }
      for i = 1, 90 do now = i * 0.01; bar:update(i * 100, i, 1000) end -- 0.9 s: nothing yet
      assert.equal(0, #out)
      for i = 100, 400 do now = i * 0.01; bar:update(i * 100, i, 1000) end -- 1.0 .. 4.0 s
      local text = table.concat(out)
      local draws = select(2, text:gsub("\r", ""))
      assert.is_true(draws >= 25 and draws <= 31, tostring(draws))
      bar:finish(40000, 400, 1000)
      text = table.concat(out)
      assert.truthy(text:find("40%,000 events", 1), text)
      assert.truthy(text:find(" 40%%"), text)
      assert.truthy(text:find("10,000 events/s", 1, true), text)
      assert.truthy(text:find("ETA 00:06", 1, true), text) -- 4 s for 40%: 6 s to go
      assert.equal("\n", text:sub(-1))
    end)

    it("--progress shows it on a long run; without it (no tty) or with --quiet, nothing", function()
      local path = tmp .. "/long.jsonl"
      local f = assert(io.open(path, "wb"))
      f:write(core.json_encode(market(A, "Market A?")), "\n")
      local n = 250000
      for i = 0, n - 1 do
        f:write(string.format('{"type":"price","t":%.2f,"msg":{"type":"price","market_id":"%s","buy":"0.%02d",' ..
          '"sell":"0.%02d"}}\n', T0 + i * 0.01, A, 40 + i % 20, 60 - i % 20))
      end
      f:close()
      local noop = tmp .. "/noop.lua"
      -- the first 150 prices cost 10 ms of CPU each: the run passes the bar's one second
      -- however fast the replay is (a no-op run got under it once replay got faster)
      write(noop, "local n = 0\nreturn { on_start = function(ctx) ctx:subscribe { '" .. A .. "' } end, " ..
        "on_price = function() n = n + 1; if n <= 150 then local c = os.clock() + 0.01; " ..
        "while os.clock() < c do end end end }")
      local cmd = EXE .. " backtest " .. noop .. " --data " .. path
      local t0 = core.monotime()
      local p = io.popen(cmd .. " --progress 2>&1 >/dev/null")
      local err = p:read("a")
      p:close()
      local took = core.monotime() - t0
      if took < 1.2 then return pending("the run took " .. took .. " s: too short for a bar") end
      assert.truthy(err:find("\r%[[#.]+%] +%d+%%  [%d,]+ events  [%d,]+ events/s  ETA %d%d:%d%d"), err)
      assert.truthy(err:find("100%%  250,000 events", 1), err) -- the last figures, then a newline
      assert.equal("\n", err:sub(-1))
      local draws = select(2, err:gsub("\r", ""))
      assert.is_true(draws <= took * 10 + 2, draws .. " draws in " .. took .. " s")
      p = io.popen(cmd .. " 2>&1 >/dev/null")
      assert.equal("", p:read("a"))
      p:close()
      p = io.popen(cmd .. " --progress --quiet 2>&1 >/dev/null")
      assert.equal("", p:read("a"))
      p:close()
    end)
  end)

  describe("bad data stops the run with the file and line, and no report", function()
    local cases = {
      { "not JSON", "{\"type\":\"price\", oops\n", "not JSON" },
      { "unknown market", core.json_encode { type = "price", t = T0 + 500, msg = { market_id = "0xdead" } } .. "\n",
        "unknown market 0xdead" },
      { "time backwards", core.json_encode { type = "price", t = T0 - 5, msg = { market_id = A, buy = "0.5" } } .. "\n",
        "time goes backwards" },
      { "crossed book", core.json_encode { type = "book", t = T0 + 500, market_id = A,
          books = { Yes = { bids = { { "0.60", "10" } }, asks = { { "0.55", "10" } } } } } .. "\n", "crossed book" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local path = tmp .. "/bad.jsonl"
        local good = dataset(5)
        local nlines = select(2, good:gsub("\n", ""))
        write(path, good .. c[2] .. dataset(1):match("\n(.-)$"))
        local dir = tmp .. "/badrep"
        os.execute("rm -rf " .. dir)
        local out, code = sh(EXE .. " backtest " .. strat .. " --data " .. path .. " --report " .. dir)
        assert.equal(2, code, out)
        assert.truthy(out:find(path .. ":" .. (nlines + 1) .. ": " .. c[3], 1, true), out)
        assert.is_nil(slurp(dir .. "/report.json"))
      end)
    end

    it("a half-written last line is skipped with a warning", function()
      local path = tmp .. "/half.jsonl"
      write(path, dataset(5) .. '{"type":"price","t":18')
      local out, code = sh(EXE .. " backtest " .. strat .. " --data " .. path)
      assert.equal(0, code, out)
      assert.truthy(out:find("half-written last line skipped", 1, true), out)
    end)
  end)

  it("polysim record writes a recording a backtest replays", function()
    local path = tmp .. "/rec.jsonl"
    local out, code = sh("env -u POLYSIM_API_KEY " .. EXE .. " record --duration 2 --books 1 --hot 2 --tick 0.2 -o " .. path)
    assert.equal(0, code, out)
    local kinds = {}
    for line in io.lines(path) do
      local rec = assert(core.json_decode(line))
      kinds[rec.type] = (kinds[rec.type] or 0) + 1
    end
    assert.equal(1, kinds.meta)
    assert.equal(2, kinds.market)
    assert.is_true((kinds.book or 0) >= 2)
    assert.is_true((kinds.price or 0) >= 1)
    local res = backtest.run { strategy = strat, data = path, log_sink = function() end }
    assert.equal(kinds.price, res.events)
  end)

  it("polysim run takes --param (ctx.params) and writes the same report at stop with --report", function()
    local p = tmp .. "/p.lua"
    write(p, [[return { on_start = function(ctx) ctx.log.info("PARAM n=%s", tostring(ctx.params.n)) end }]])
    local dir = tmp .. "/runrep"
    local out, code = sh("env -u POLYSIM_API_KEY " .. EXE .. " run " .. p ..
      " --param n=42 --duration 1 --no-status --no-reload --report " .. dir)
    assert.equal(0, code, out)
    assert.truthy(out:find("PARAM n=42", 1, true), out)
    local summary = core.json_decode(assert(slurp(dir .. "/report.json")))
    assert.equal("42", summary.params.n)
    assert.truthy(slurp(dir .. "/equity.csv"):find("^time,equity"))
    assert.is_not_nil(slurp(dir .. "/report.html"))
  end)

  describe("report.html in a browser", function()
    local b, why
    setup(function() b, why = browser.start() end)
    teardown(function() if b then b:close() end end)

    it("shows the equity curve and the summary's figures", function()
      if not b then return pending(why) end
      local dir = tmp .. "/html"
      local summary = report.write(dir, (run { sample = 5 }))
      local page = b:page()
      assert(page:navigate("file://" .. dir .. "/report.html"))
      local text = assert(page:eval("document.getElementById('summary').textContent"))
      assert.truthy(text:find(summary.sharpe, 1, true), text)
      assert.truthy(text:find(summary.win_rate, 1, true), text)
      local pts = page:eval("document.querySelector('#equity-chart svg').getAttribute('data-points')")
      assert.is_true(tonumber(pts) > 10, tostring(pts))
      assert.equal(23, page:eval("document.querySelectorAll('#trades tbody tr').length"))
    end)
  end)
end)
