-- BTC Up/Down, 5-minute windows: bet late on the side spot is already on.
--
-- Each window asks: is BTC at the window's end at or above its strike (the "price to beat",
-- spot at the open)? This follows BTC spot (on_spot) and the windows' lifecycle (on_window).
-- In the last ENTRY_S seconds of a window, when spot is at least MIN_BPS basis points away
-- from the strike, it buys SIZE shares of the side spot is on (Up above the strike, Down
-- below), paying at most MAX_PRICE a share; once per window. When the window settles it logs
-- the window's P&L (the payout, 1.00 a winning share, minus what the shares cost with fees)
-- and the running total.
--
--   polysim run examples/btc_updown.lua                   (no key: the local exchange)
--   polysim run examples/btc_updown.lua --param min_bps=2 --param size=10
--   POLYSIM_API_KEY=... polysim run examples/btc_updown.lua --live
--
-- Time comes from the spot ticks' timestamps (the exchange's clock), so the same file runs
-- on the local exchange, on its simulated clock in specs, and on the real service.
local polysim = require "polysim"
local updown = require "polysim.updown"

local S = { name = "btc_updown", cancel_on_stop = true, conflate = true }

local function param(ctx, name, default)
  return tonumber(ctx.params[name]) or default
end

local function short(id) return tostring(id):sub(1, 10) end

-- The window to watch: the open BTC 5M window that expires next.
local function current(ctx)
  local rows, err = ctx.client:updown_windows { asset = "BTC", interval = "5M", limit = 4, live = true }
  if not rows then
    ctx.log.warn("cannot list BTC 5M windows: %s", tostring(err))
    return
  end
  local w = updown.next_to_expire(rows, ctx.state.now)
  if not w then return end
  ctx.state.window = { id = w.condition_id, end_date = w.end_date, strike = updown.price_to_beat(w) }
  -- a window picked in its first instant may not have its strike yet (it arrives with the
  -- window's open event)
  ctx.log.info("watching %s (%s), strike %s", short(w.condition_id), tostring(w.time_range),
    ctx.state.window.strike and tostring(ctx.state.window.strike) or "set when it opens")
end

function S.on_start(ctx)
  local st = ctx.state
  st.bets = st.bets or {}         -- condition id -> {side, qty, cost}
  st.pnl = st.pnl or polysim.decimal "0"
  st.windows = st.windows or 0
  -- until the first tick: the runtime's clock (a backtest's simulated one; os.time is the
  -- machine's, which in a backtest is past the windows being replayed)
  st.now = ctx:now()
  ctx:subscribe_spot "BTC"
  current(ctx)
end

local function bet(ctx, w, side, bps)
  local st = ctx.state
  st.bets[w.id] = { side = side, pending = true }
  local order, err = ctx.client:place_order { market_id = w.id, side = "BUY", outcome = side,
    order_type = "market", quantity = param(ctx, "size", 5),
    price = string.format("%.2f", param(ctx, "max_price", 0.95)) }
  local filled = order and polysim.decimal(order.filled_quantity or order.quantity or "0")
  if not order or filled == polysim.decimal "0" then
    st.bets[w.id] = { side = side, skipped = true }   -- no second try in this window
    ctx.log.warn("no %s bet on %s: %s", side, short(w.id), tostring(err or "nothing filled at the price cap"))
    return
  end
  local cost = polysim.decimal(order.notional or "0") + polysim.decimal(order.fee or "0")
  st.bets[w.id] = { side = side, qty = filled, cost = cost }
  ctx.log.info("bet %s on %s: %s shares at %s (fee %s), spot %.1f bps from the strike", side, short(w.id),
    tostring(filled), tostring(order.fill_price or order.price), tostring(order.fee), bps)
end

function S.on_spot(ctx, tick)
  local st = ctx.state
  st.now = updown.parse_iso(tick.timestamp) or st.now
  st.spot = tick.price
  local w = st.window
  if not w or not w.strike or st.bets[w.id] then return end
  local left = updown.seconds_to_expiry(w, st.now)
  if not left or left <= 0 or left > param(ctx, "entry_s", 60) then return end
  local bps = updown.ptb_distance_bps(tick.price, w.strike)
  if not bps or math.abs(bps) < param(ctx, "min_bps", 5) then return end
  bet(ctx, w, bps >= 0 and "Up" or "Down", bps)
end

function S.on_window(ctx, ev)
  if ev.symbol ~= "BTC" or ev.interval ~= "5M" then return end
  local st = ctx.state
  if ev.event == "open" then
    local strike = ev.price_to_beat ~= polysim.null and ev.price_to_beat or nil
    st.window = { id = ev.market_id, end_date = ev.end_date, strike = strike }
    ctx.log.info("window %s open until %s, strike %s", short(ev.market_id), tostring(ev.end_date), tostring(strike))
  elseif ev.event == "resolve" then
    ctx.log.info("window %s resolved %s (close %s vs strike %s)", short(ev.market_id),
      tostring(ev.resolved_outcome), tostring(ev.close_price), tostring(ev.price_to_beat))
    local b = st.bets[ev.market_id]
    if b then b.won = b.side == ev.resolved_outcome end
  elseif ev.event == "settle" then
    local b = st.bets[ev.market_id]
    st.bets[ev.market_id] = nil
    if not b or not b.qty then return end
    local pnl = (b.won and b.qty or polysim.decimal "0") - b.cost
    st.pnl = st.pnl + pnl
    st.windows = st.windows + 1
    ctx.log.info("settled %s: %s %s shares %s, P&L %s (total %s over %d windows)", short(ev.market_id),
      tostring(b.qty), b.side, b.won and "won" or "lost", tostring(pnl), tostring(st.pnl), st.windows)
  end
end

function S.on_stop(ctx, reason)
  local st = ctx.state
  ctx.log.info("stopping (%s): P&L %s over %d settled windows", reason, tostring(st.pnl), st.windows)
end

return S
