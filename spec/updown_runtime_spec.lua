-- luacheck: std +busted
-- on_spot / on_window end to end over loopback (issue 9): a strategy on the local exchange,
-- with a real client, gets spot ticks and one 5M window's open -> close -> resolve -> settle
-- through the real SSE stream (GET /prices/stream via client:spot_stream, polysim.feed's
-- spot source). The exchange's clock is advanced; nothing waits for the 5 minutes.
local strategy = require "polysim.strategy"
local ploop = require "polysim.loop"
local H = require "helper"

local T0 = 1790000000 - 1790000000 % 300 + 290    -- 10 s before a 5M boundary

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function write(name, src)
  local path = tmpdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

local function advance(srv, clock, seconds, pause)
  for _ = 1, seconds do
    clock.t = clock.t + 1
    srv.exchange:tick(1)
    ploop.run_until(function() return false end, pause or 0.002)
  end
end

local STRATEGY = [[
  return {
    on_start = function(ctx)
      ctx.state.ticks, ctx.state.windows, ctx.state.fields = 0, {}, {}
      -- asking for the series schedules its windows (as the real service always has them)
      local rows = assert(ctx.client:updown_windows { asset = "BTC", interval = "5M", limit = 2 })
      ctx.state.next = rows[2].condition_id
      ctx:subscribe_spot "BTC"
    end,
    on_spot = function(ctx, t)
      assert(t.type == "spot" and t.symbol == "BTC" and type(t.price) == "number", "bad tick")
      ctx.state.ticks = ctx.state.ticks + 1
    end,
    on_window = function(ctx, ev)
      if ev.market_id == ctx.state.next then
        table.insert(ctx.state.windows, ev.event)
        ctx.state.fields[ev.event] = ev
        ctx.log.info("window " .. ev.event .. " " .. ev.symbol .. " " .. tostring(ev.resolved_outcome))
        if ev.event == "settle" and ctx.params.stop_after_settle then ctx:stop("settled") end
      end
    end,
  }
]]

describe("on_spot and on_window over loopback", function()
  local srv, clock
  before_each(function()
    clock = { t = T0 }
    srv = H.exchange { clock = function() return clock.t end }
  end)
  after_each(function() srv:close(); collectgarbage() end)

  it("a strategy with a real client gets spot ticks and a window's whole lifecycle over SSE", function()
    local path = write("updown_e2e.lua", STRATEGY)
    local lines = {}
    local rt = strategy.new { client = H.client(srv), feed = false,
                              log_sink = function(l) lines[#lines + 1] = l end }
    assert(rt:start(path))
    assert(ploop.run_until(function() return rt.state.ticks >= 1 end, 10), "no first tick")
    advance(srv, clock, 315)
    assert(ploop.run_until(function() return #rt.state.windows >= 4 end, 10), table.concat(rt.state.windows, ","))
    assert.same({ "open", "close", "resolve", "settle" }, rt.state.windows)
    local f = rt.state.fields
    assert.equal("BTC", f.open.symbol)
    assert.equal("BTC", f.open.asset)
    assert.equal("5M", f.open.interval)
    assert.equal(rt.state.next, f.open.condition_id)
    assert.is_number(f.open.price_to_beat)
    local m = srv.exchange:market(rt.state.next)
    assert.equal(m.resolved_outcome, f.resolve.resolved_outcome)
    assert.is_number(f.resolve.close_price)
    assert.equal(f.resolve.close_price >= f.resolve.price_to_beat and "Up" or "Down", f.resolve.resolved_outcome)
    assert.equal("0.00", f.settle.payout)            -- nobody held a share
    assert.is_true(rt.state.ticks >= 100, "ticks " .. rt.state.ticks)
    assert.equal(0, rt.stats.errors)
    rt:stop("done")
  end)
end)

describe("polysim run with on_spot and on_window", function()
  local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"
  local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local function slurp(p)
    local f = io.open(p)
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
  end

  it("gets them from the exchange it is pointed at (this process's, its clock advanced)", function()
    local clock = { t = T0 }
    local srv = H.exchange { clock = function() return clock.t end }
    local path = write("updown_run.lua", STRATEGY)
    local out, rc = tmpdir .. "/run.out", tmpdir .. "/run.rc"
    os.remove(rc)
    assert(os.execute("(unset POLYSIM_BASE_URL; POLYSIM_API_KEY=" .. q(srv.api_key) .. " timeout -k 5 80 " .. q(EXE) ..
      " run " .. q(path) .. " --base-url " .. q(srv.base_url) .. " --duration 50 --param stop_after_settle=1 --no-reload > " .. q(out) ..
      " 2>&1; echo $? > " .. q(rc) .. ") &"))
    local function has(text) return slurp(out):find(text, 1, true) ~= nil end
    -- the child is up once its spot stream is (the first tick arrives at connect)
    assert(ploop.run_until(function() return srv.exchange.sse_sessions and next(srv.exchange.sse_sessions) ~= nil end, 20),
      slurp(out))
    advance(srv, clock, 315, 0.005)
    assert(ploop.run_until(function() return has("window settle BTC") end, 20), slurp(out))
    -- the strategy stops itself after the settlement; keep serving until the run has ended
    assert(ploop.run_until(function() return slurp(rc) ~= "" end, 60), slurp(out))
    srv:close()
    local text = slurp(out)
    assert.equal("0", slurp(rc):match "%d+", text)
    local order = {}
    for ev in text:gmatch("window (%a+) BTC") do order[#order + 1] = ev end
    assert.same({ "open", "close", "resolve", "settle" }, order)
    assert.truthy(text:find("window resolve BTC [UD][po]w?n?"), text)
    assert.truthy(text:find(", 0 errors", 1, true), text)
  end)
end)

describe("window frames on the WebSocket price stream", function()
  local srv, clock
  before_each(function()
    clock = { t = T0 }
    srv = H.exchange { clock = function() return clock.t end }
  end)
  after_each(function() srv:close(); collectgarbage() end)

  it("go to prices_stream's on_window, prices still to on_price", function()
    local client = H.client(srv)
    local w = assert(client:updown_windows { asset = "ETH", interval = "5M", limit = 2 })[2]
    local windows, prices, subscribed = {}, 0, false
    local s = client:prices_stream { markets = { w.condition_id },
      on_price = function(m) assert.equal("price", m.type); prices = prices + 1 end,
      on_window = function(m) windows[#windows + 1] = m.event .. " " .. m.market_id end,
      on_event = function(e) if e.type == "subscribed" then subscribed = true end end }
    assert(ploop.run_until(function() return subscribed end, 10))
    advance(srv, clock, 315)
    assert(ploop.run_until(function() return #windows >= 4 end, 10), table.concat(windows, ","))
    s:close()
    local id = w.condition_id
    assert.same({ "open " .. id, "close " .. id, "resolve " .. id, "settle " .. id }, windows)
    assert.is_true(prices >= 1)
  end)

  it("reach a strategy's on_window through its WebSocket feed, once each with the SSE one too", function()
    local path = write("ws_windows.lua", [[
      return {
        on_start = function(ctx)
          local rows = assert(ctx.client:updown_windows { asset = ctx.params.asset, interval = "5M", limit = 2 })
          ctx.state.next, ctx.state.windows = rows[2].condition_id, {}
          ctx:subscribe(rows[2].condition_id)
          if ctx.params.spot then ctx:subscribe_spot(ctx.params.asset) end
        end,
        on_price = function(ctx) ctx.state.priced = true end,
        on_spot = function(ctx) ctx.state.ticked = true end,
        on_window = function(ctx, ev)
          if ev.market_id == ctx.state.next then table.insert(ctx.state.windows, ev.event .. " " .. ev.symbol) end
        end,
      }
    ]])
    local rts = {}
    for i, p in ipairs { { asset = "SOL" }, { asset = "XRP", spot = true } } do
      rts[i] = strategy.new { client = H.client(srv), params = p, name = "s" .. i, log_sink = function() end }
      assert(rts[i]:start(path))
    end
    -- both feeds are up once the subscription's first price (and the first spot tick) arrived
    for _, rt in ipairs(rts) do
      assert(ploop.run_until(function() return rt.state.priced and (rt.state.ticked or not rt.params.spot) end, 10))
    end
    advance(srv, clock, 315)
    for i, rt in ipairs(rts) do
      assert(ploop.run_until(function() return #rt.state.windows >= 4 end, 10), i .. ": " .. table.concat(rt.state.windows, ","))
    end
    ploop.run_until(function() return false end, 0.3)          -- a late duplicate would show now
    assert.same({ "open SOL", "close SOL", "resolve SOL", "settle SOL" }, rts[1].state.windows)
    assert.same({ "open XRP", "close XRP", "resolve XRP", "settle XRP" }, rts[2].state.windows)
    for _, rt in ipairs(rts) do rt:stop("done") end
  end)
end)

describe("examples/btc_updown.lua", function()
  it("bets near a window's expiry and logs the settlement's P&L, to the cent", function()
    local clock = { t = T0 }
    local srv = H.exchange { clock = function() return clock.t end }
    local polysim = require "polysim"
    local client = H.client(srv)
    local bal0 = polysim.decimal(assert(client:balance()).balance)
    local lines = {}
    local rt = strategy.new { client = H.client(srv), params = { min_bps = "0", max_price = "0.99" },
                              log_sink = function(l) lines[#lines + 1] = l end }
    assert(rt:start("examples/btc_updown.lua"))
    local function find(pat)
      for _, l in ipairs(lines) do local a, b = l:match(pat); if a then return a, b end end
    end
    assert(ploop.run_until(function() return rt.state.spot ~= nil end, 10), table.concat(lines, "\n"))
    advance(srv, clock, 315)
    assert(ploop.run_until(function() return find("settled") ~= nil end, 10), table.concat(lines, "\n"))
    local side = assert(find("bet (%a+) on"), table.concat(lines, "\n"))
    local pnl = find("P&L (%-?[%d.]+) %(total")
    local bal = polysim.decimal(assert(client:balance()).balance)
    assert.equal(tostring(bal - bal0), tostring(polysim.decimal(pnl)))
    local won = find("resolved (%a+)")
    assert.equal(side == won, polysim.decimal(pnl) > polysim.decimal "0")
    assert.equal(0, rt.stats.errors)
    rt:stop("done")
    srv:close()
  end)
end)
