-- Backtests of Up/Down strategies: a recording's updown, spot and window records (README "The
-- recording") drive the in-process exchange's windows, spot and settlement, and the
-- strategy's on_spot / on_window, in simulated time. The recording here is written by hand in
-- the documented format (as another source would produce it): one BTC 5-minute window from
-- T0 to T0 + 300 with strike 97000.00, a spot tick a second that climbs 10 bps above the
-- strike in the window's last minute, and the window's lifecycle.
local core = require "polysim.core"
local backtest = require "polysim.backtest"
local btdata = require "btdata"

local T0, A = btdata.T0, btdata.A
local W = "0x" .. string.rep("c", 64)
local UP, DOWN = "1" .. string.rep("1", 76), "2" .. string.rep("2", 76)
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. btdata.q(tmp)))

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end
local function spot_at(s) return s < 240 and 97000 + (s % 3) or 97100 end

local function window_msg(event, t, extra)
  local m = { type = "window", event = event, market_id = W, condition_id = W, asset = "BTC", interval = "5M",
    start_date = iso(T0), end_date = iso(T0 + 300), price_to_beat = 97000, close_price = core.null,
    resolved_outcome = core.null, timestamp = iso(t) }
  for k, v in pairs(extra or {}) do m[k] = v end
  return m
end

-- The lines of the recording: n seconds of it (the window's lifecycle ends at T0 + 301).
local function recording(n, bad)
  local enc = core.json_encode
  local mk = btdata.market(A, "Market A?")
  mk.t = T0
  local lines = { enc { type = "meta", version = 1, started_at = T0 - 1 }, enc(mk) }
  lines[#lines + 1] = enc { type = "updown", t = T0, window = { condition_id = W, asset = "BTC", interval = "5M",
    start_date = iso(T0), end_date = iso(T0 + 300), price_to_beat = core.null, up_price = "0.50", down_price = "0.50",
    -- the nested market's list fields are JSON text, as the service sends them
    markets = { { condition_id = W, outcomes = '["Up","Down"]', token_ids = '["' .. UP .. '","' .. DOWN .. '"]' } } } }
  lines[#lines + 1] = bad or enc { type = "window", t = T0 + 0.05, msg = window_msg("open", T0) }
  for s = 0, n - 1 do
    local up = s < 240 and "0.50" or "0.80"
    lines[#lines + 1] = enc { type = "price", t = T0 + s + 0.1, msg = { type = "price", market_id = W, buy = up,
      sell = string.format("%.2f", 1 - tonumber(up)),
      outcomes = { { label = "Up", price = up }, { label = "Down", price = string.format("%.2f", 1 - tonumber(up)) } } } }
    lines[#lines + 1] = enc { type = "spot", t = T0 + s + 0.3, symbol = "BTC", price = spot_at(s) + 0.25,
      timestamp = iso(T0 + s), source = "chainlink_rtds" }
    if s == 300 then
      lines[#lines + 1] = enc { type = "window", t = T0 + s + 0.4, msg = window_msg("close", T0 + s) }
      lines[#lines + 1] = enc { type = "window", t = T0 + s + 0.4,
        msg = window_msg("resolve", T0 + s, { close_price = 97100.25, resolved_outcome = "Up" }) }
      lines[#lines + 1] = enc { type = "window", t = T0 + s + 0.4,
        msg = window_msg("settle", T0 + s, { close_price = 97100.25, resolved_outcome = "Up" }) }
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function run(strategy_text, opts)
  local data, strat = tmp .. "/ud.jsonl", tmp .. "/ud.lua"
  btdata.write(data, recording(opts and opts.n or 310, opts and opts.bad))
  local path = strategy_text
  if not strategy_text:match("%.lua$") then btdata.write(strat, strategy_text); path = strat end
  local lines = {}
  local res = backtest.run { strategy = path, data = data, from = opts and opts.from, params = opts and opts.params,
    log_sink = function(l) lines[#lines + 1] = l end, log_level = "info" }
  return res, table.concat(lines, "\n")
end

describe("backtest of an Up/Down recording", function()
  it("on_spot gets the recorded ticks of subscribed underlyings, at their simulated time", function()
    local _, logs = run([[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_spot(ctx, tick)
  ctx.state.n = (ctx.state.n or 0) + 1
  if ctx.state.n <= 2 then ctx.log.warn("SPOT %s %s %s at %.1f", tick.symbol, tostring(tick.price), tick.timestamp, ctx:now()) end
end
function S.on_stop(ctx) ctx.log.warn("TICKS %d", ctx.state.n or 0) end
return S
]], { n = 20 })
    assert.truthy(logs:find(("SPOT BTC 97000.25 %s at %.1f"):format(iso(T0), T0 + 0.3), 1, true), logs)
    assert.truthy(logs:find(("SPOT BTC 97001.25 %s at %.1f"):format(iso(T0 + 1), T0 + 1.3), 1, true), logs)
    assert.truthy(logs:find("TICKS 20", 1, true), logs)
  end)

  it("the exchange answers windows, strike and spot from the recording", function()
    local _, logs = run([[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_spot(ctx)
  if ctx.state.done or ctx:now() < ]] .. (T0 + 10) .. [[ then return end
  ctx.state.done = true
  local rows = assert(ctx.client:updown_windows { asset = "BTC", interval = "5M", limit = 2, live = true })
  local w = rows[1]
  ctx.log.warn("ROW %s ptb=%s status=%s", w.condition_id, tostring(w.price_to_beat), tostring(w.status))
  local ptb = assert(ctx.client:price_to_beat(w.condition_id))
  ctx.log.warn("PTB %s", tostring(ptb.price))
  local sp = assert(ctx.client:spot "BTC")
  ctx.log.warn("SPOT %s", tostring(sp.price))
end
return S
]], { n = 20 })
    assert.truthy(logs:find("ROW " .. W .. " ptb=97000 status=open", 1, true), logs)
    assert.truthy(logs:find("PTB 97000", 1, true), logs)
    -- the tick of T0 + 10 (97000 + 10 % 3, + 0.25)
    assert.truthy(logs:find("SPOT 97001.25", 1, true), logs)
  end)

  it("btc_updown bets on the side recorded spot is on, and the window settles as live", function()
    local res, logs = run("examples/btc_updown.lua")
    -- its last minute starts at T0 + 240, with spot 10.3 bps above the strike: Up at 0.80
    assert.truthy(logs:find("bet Up on " .. W:sub(1, 10) .. ": 5 shares at 0.8", 1, true), logs)
    assert.truthy(logs:find("window " .. W:sub(1, 10) .. " resolved Up", 1, true), logs)
    assert.truthy(logs:find("settled " .. W:sub(1, 10) .. ": 5 Up shares won", 1, true), logs)
    local ex = res.exchange
    local user = ex.K.users[ex.user_id]
    -- the payout: 5 shares at 1.00 into cash, as a SETTLEMENT trade; the position closed
    local settled
    for _, tr in ipairs(user.trades) do if tr.settlement then settled = tr end end
    assert(settled, "no settlement trade")
    assert.equal("1.00", settled.price)
    local pos = require("polysim.exchange.accounts").position(user, ex.U.by_id[W], 1, false)
    assert.equal("CLOSED", pos.status)
    -- 10000 - 5 x 0.80 - fee + 5.00: the P&L the strategy logged, in the report
    local pnl = logs:match("P&L (%-?[%d.]+) %(total")
    assert(pnl, logs)
    assert.equal(tonumber(pnl), tonumber(require("polysim.report").summary(res).pnl))
  end)

  it("the strategy sees the recorded token ids of a window (its row, its market, a token's price)", function()
    local _, logs = run([[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_spot(ctx)
  if ctx.state.done or ctx:now() < ]] .. (T0 + 10) .. [[ then return end
  ctx.state.done = true
  local rows = assert(ctx.client:updown_windows { asset = "BTC", interval = "5M", limit = 1 })
  local m = assert(ctx.client:market(rows[1].condition_id))
  local ptb = assert(ctx.client:price_to_beat("]] .. DOWN .. [["))
  ctx.log.warn("IDS %s %s %s %s ptb_of_token=%s", rows[1].condition_id, rows[1].markets[1].token_ids,
    m.tokens[1].token_id, m.tokens[2].token_id, ptb.condition_id)
end
return S
]], { n = 20 })
    assert.truthy(logs:find(('IDS %s ["%s","%s"] %s %s ptb_of_token=%s'):format(W, UP, DOWN, UP, DOWN, W), 1, true), logs)
  end)

  it("a window listed before its record came takes the recorded names: one market per window", function()
    -- the next window's record comes at its open (as polysim record writes a window that
    -- opens mid-recording); the strategy lists it earlier, while it is scheduled
    local W2 = "0x" .. string.rep("e", 64)
    local UP2, DOWN2 = "3" .. string.rep("3", 76), "4" .. string.rep("4", 76)
    local rec2 = core.json_encode { type = "updown", t = T0 + 300.2, window = { condition_id = W2, asset = "BTC",
      interval = "5M", start_date = iso(T0 + 300), end_date = iso(T0 + 600), price_to_beat = 97100.25,
      markets = { { outcomes = '["Up","Down"]', token_ids = '["' .. UP2 .. '","' .. DOWN2 .. '"]' } } } }
    local lines = {}
    for line in recording(306):gmatch("[^\n]+") do
      if rec2 and (core.json_decode(line).t or 0) > T0 + 300.2 then lines[#lines + 1] = rec2; rec2 = nil end
      lines[#lines + 1] = line
    end
    local data, strat = tmp .. "/next.jsonl", tmp .. "/next.lua"
    btdata.write(data, table.concat(lines, "\n") .. "\n")
    btdata.write(strat, [[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_spot(ctx)
  local now = ctx:now()
  local at = (now > ]] .. (T0 + 303) .. [[ and 2) or (now > ]] .. (T0 + 10) .. [[ and 1) or nil
  if not at or ctx.state[at] then return end
  ctx.state[at] = true
  local rows = assert(ctx.client:updown_windows { asset = "BTC", interval = "5M", limit = 2 })
  local w = at == 1 and rows[2] or rows[1]
  ctx.log.warn("NEXT%d %s %s %s", at, w.start_date, w.condition_id, w.markets[1].token_ids)
end
return S
]])
    local out = {}
    local res = backtest.run { strategy = strat, data = data, log_sink = function(l) out[#out + 1] = l end }
    local logs = table.concat(out, "\n")
    assert.truthy(logs:find(('NEXT2 %s %s ["%s","%s"]'):format(iso(T0 + 300), W2, UP2, DOWN2), 1, true), logs)
    local n = 0
    for _, m in ipairs(res.exchange.U.all) do
      if m.updown and m.updown.start == T0 + 300 and m.updown.asset == "BTC" and m.updown.interval == "5M" then n = n + 1 end
    end
    assert.equal(1, n)
  end)

  it("without a tick in a boundary's second, the strike and close are the last ticks at or before it", function()
    -- no lifecycle records (so nothing recorded resolves it) and no tick at T0 or T0 + 300:
    -- the strike is T0 - 1's tick, the close T0 + 299's (Up); the tick after the close
    -- (T0 + 301, far below the strike) must not decide it
    local enc = core.json_encode
    local mk = btdata.market(A, "Market A?")
    mk.t = T0 - 3
    local lines = { enc { type = "meta", version = 1, started_at = T0 - 3 }, enc(mk) }
    lines[#lines + 1] = enc { type = "updown", t = T0 - 3, window = { condition_id = W, asset = "BTC", interval = "5M",
      start_date = iso(T0), end_date = iso(T0 + 300), price_to_beat = core.null } }
    for s = -3, 303 do
      if s ~= 0 and s ~= 300 then
        local p = s < 0 and 96990 + s or s < 300 and 97000 + s % 7 or 96000
        if s == 299 then p = 97050.5 end
        lines[#lines + 1] = enc { type = "spot", t = T0 + s + 0.3, symbol = "BTC", price = p, timestamp = iso(T0 + s) }
      end
    end
    local data, strat = tmp .. "/gap.jsonl", tmp .. "/gap.lua"
    btdata.write(data, table.concat(lines, "\n") .. "\n")
    btdata.write(strat, [[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_spot(ctx)
  if ctx.state.done or ctx:now() < ]] .. (T0 + 5) .. [[ then return end
  ctx.state.done = true
  local ptb, err = ctx.client:price_to_beat("]] .. W .. [[")
  ctx.log.warn("PTB %s", ptb and tostring(ptb.price) or tostring(err))
end
return S
]])
    local out = {}
    local res = backtest.run { strategy = strat, data = data, log_sink = function(l) out[#out + 1] = l end }
    local logs = table.concat(out, "\n")
    assert.truthy(logs:find("PTB 96989", 1, true), logs)
    local ex = res.exchange
    local windows, spot = require "polysim.exchange.windows", require "polysim.exchange.spot"
    local m = ex.U.by_id[W]
    assert.equal("Up", windows.outcome(ex, m))
    assert.equal(97050.5, spot.number(ex.U.spot, "BTC", m.updown.close_price))
  end)

  it("btc_updown started mid-window picks that window on the simulated clock (a recording from the past)", function()
    -- its first window came from os.time(): in a backtest the machine's clock, past every
    -- window of a recording made before it, so it watched nothing until the next open
    local saved = T0
    T0 = (os.time() // 300 - 1000) * 300
    local ok, res, logs = pcall(run, "examples/btc_updown.lua", { from = T0 + 30 })
    T0 = saved
    assert(ok, tostring(res))
    assert.truthy(logs:find("watching " .. W:sub(1, 10), 1, true), logs)
    assert.truthy(logs:find("bet Up on " .. W:sub(1, 10) .. ": 5 shares at 0.8", 1, true), logs)
  end)

  it("a bad Up/Down record names the file and the line", function()
    for _, case in ipairs {
      { core.json_encode { type = "spot", t = T0, price = 1 }, "spot record without symbol" },
      { core.json_encode { type = "spot", t = T0, symbol = "BTC" }, "spot record without a price" },
      { core.json_encode { type = "window", t = T0, msg = window_msg("open", T0, { market_id = A:gsub("a", "d") }) },
        "unknown window 0xddd" },
      { core.json_encode { type = "window", t = T0, msg = { market_id = W } }, "window record without msg.event" },
    } do
      local ok, err = pcall(run, "examples/btc_updown.lua", { n = 5, bad = case[1] })
      assert.is_false(ok)
      assert.equal("table", type(err), tostring(err))
      assert.truthy(err.data_error:find(tmp .. "/ud.jsonl:4: " .. case[2], 1, true), err.data_error)
    end
  end)
end)
