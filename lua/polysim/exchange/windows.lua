-- The Up/Down window lifecycle of the local exchange, on top of the spot model (spot.lua):
--   scheduled (start in the future; strike pending: /prices/ptb answers 404)
--   open      (start <= now < end; strike = spot at the start, exact)
--   closed    (end reached: no more trading, resting orders cancelled)
--   resolved  ("Up" when spot at the end >= the strike, else "Down"; never the market's own
--              price)
--   settled   (every holder's winning shares pay 1.00 each into cash, losing ones 0; the
--              positions close; the payout appears in history as a SETTLEMENT trade)
-- A series (asset + interval) that was asked for once keeps its current and next windows
-- scheduled on every tick. Listeners: "spot" fn(updates) with the crypto_price messages of one
-- tick; "window" fn(market_id, msg) with the lifecycle messages (also sent to the market's
-- price subscribers, see sim.lua).
local spot = require "polysim.exchange.spot"
local markets = require "polysim.exchange.markets"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"

local _M = {}

local ONE = fixed.P
local GRID = 300 -- seconds between window boundaries (every interval is a multiple)
local floor, exp, sqrt, log = math.floor, math.exp, math.sqrt, math.log
local null = util.null

_M.SOURCE = "chainlink_rtds"           -- SDK client.py get_spot: the preferred upstream name
_M.PTB_SOURCE = "polymarket_open_price" -- SDK client.py get_price_to_beat: an authoritative one

--- model(ex): the exchange's spot model (created on first use, walked to now).
function _M.model(ex, now)
  local U = ex.U
  local S = U.spot
  if not S then
    S = spot.new(ex.seed, ex.started_at or now)
    U.spot = S
    U.series = U.series or {}
    U.unsettled = U.unsettled or {}
    U.window_resolver = function(m) return _M.outcome(ex, m) end
  end
  spot.advance(S, now or ex.clock())
  return S
end

--- strike(ex, m): the window's strike in the asset's tick units, or nil while pending.
function _M.strike(ex, m)
  local w = m.updown
  if w.strike then return w.strike end
  local S = _M.model(ex, ex.clock())
  local v = spot.at(S, w.asset, w.start)
  w.strike = v
  return v
end

--- outcome(ex, m): "Up" / "Down" from spot at the window's end against its strike; nil when
--- either price is unknown (the window ended before the walk started).
function _M.outcome(ex, m)
  local w = m.updown
  local k = _M.strike(ex, m)
  local close = spot.at(ex.U.spot, w.asset, w.start + w.len)
  if not k or not close then return nil end
  w.close_price = close
  return close >= k and "Up" or "Down"
end

--- window(ex, asset, interval, start, now): the window market (created on first use, and its
--- series scheduled from then on).
function _M.window(ex, a, iv, start, now)
  _M.model(ex, now)
  local m = markets.updown_market(ex.U, a[1], a[2], iv[1], iv[2], start, now)
  m.updown.resolver = m.updown.resolver or ex.U.window_resolver
  local key = a[1] .. "|" .. iv[1]
  if not ex.U.series[key] then ex.U.series[key] = { a = a, iv = iv, last = -1 } end
  return m
end

--- phase(m, now): "scheduled" | "open" | "closed" | "resolved" | "settled".
function _M.phase(m, now)
  local w = m.updown
  if w.settled then return "settled" end
  if m.resolved_outcome then return "resolved" end
  if now >= w.start + w.len then return "closed" end
  if now >= w.start then return "open" end
  return "scheduled"
end

--- up_chance(st, k, tau): P(spot_end >= strike k) for the asset's state st (spot.lua) with tau
--- seconds left, under the walk's own volatility (logistic approximation of the normal).
function _M.up_chance(st, k, tau)
  local sigma = st.half / sqrt(3) * 1e-5 * sqrt(tau)
  local x = log(st.p / k) / sigma
  return 1 / (1 + exp(-1.702 * x))
end

-- The fair Up price of an open window: up_chance on the market's tick, within [tick, 1 - tick].
local function fair_up(ex, m, now)
  local w = m.updown
  local S = ex.U.spot
  local k = w.strike
  local tau = w.start + w.len - now
  if not k or tau <= 0 then return nil end
  local p = _M.up_chance(S.assets[w.asset], k, tau)
  local t = m.tick
  local v = floor(p * ONE / t + 0.5) * t
  if v < t then v = t elseif v > ONE - t then v = ONE - t end
  return v
end

--- message(ex, m, event, now): the lifecycle message (WS price channel and SSE "window").
function _M.message(ex, m, event, now)
  local w = m.updown
  local S = ex.U.spot
  local k = w.strike
  return {
    type = "window", event = event, market_id = m.condition_id, condition_id = m.condition_id,
    asset = w.asset, interval = w.interval,
    start_date = util.iso(w.start), end_date = util.iso(w.start + w.len),
    price_to_beat = k and spot.number(S, w.asset, k) or null,
    close_price = w.close_price and spot.number(S, w.asset, w.close_price) or null,
    resolved_outcome = util.opt(m.resolved_outcome),
    timestamp = util.iso(floor(now)),
  }
end

-- Pays out one resolved window to every holder: cancels what still rests there (closing
-- releases reservations), then sells each position to the house at 1.00 / 0.00, fee 0.
local function settle(ex, m, now)
  local users = {}
  for _, u in pairs(ex.K.users) do users[#users + 1] = u end
  table.sort(users, function(a, b) return a.id < b.id end)
  local paid = 0
  for _, user in ipairs(users) do
    for _, o in pairs(user.open) do
      if o.market == m then orders.cancel(ex, o, now, "CANCELLED"); user.open[o.id] = nil end
    end
    local w = user.wallet
    local settled_user = false
    for idx = 1, #m.outcomes do
      local pos = w and accounts.position(user, m, idx, false)
      if pos and pos.qty > 0 then
        local q = pos.qty
        local px = accounts.value_price(m, idx)
        local notional = q * px
        accounts.sell(w, pos, q, notional, 0, false)
        pos.status = "CLOSED"
        local O = ex.O
        local us = orders.stamp(O, now)
        user.trades[#user.trades + 1] = {
          id = O.next_trade, order_id = null, market = m, idx = idx, side = "SELL",
          price = px == ONE and "1.00" or "0.00", qty = q, notional = notional, fee = 0,
          maker = false, us = us, price_source = "settlement", order_created_at = null,
          settlement = true,
        }
        O.next_trade = O.next_trade + 1
        paid = paid + notional
        settled_user = true
      end
    end
    if settled_user then accounts.snapshot(user, now) end   -- the payout shows in equity at once
  end
  m.updown.settled = true
  m.updown.payout = paid
end

--- before(ex, now): before the walk: advance spot, keep series scheduled, move the open
--- windows' prices to their fair value. Returns the spot updates of this tick (nil when spot
--- did not move) and the windows whose price moved.
function _M.before(ex, now)
  local U = ex.U
  if not U.spot then return nil, {} end
  local S = U.spot
  spot.advance(S, now)
  -- every second the walk reached since the last tick's updates is news, whoever walked it
  -- (a request between two ticks walks it too: its second went unpublished)
  local from = U.published or S.cur - 1
  local moved = S.cur > from
  U.published = S.cur
  for _, s in pairs(U.series) do
    local len = s.iv[2]
    local cur = floor(now / len) * len
    if cur ~= s.last then
      s.last = cur
      _M.window(ex, s.a, s.iv, cur, now)
      _M.window(ex, s.a, s.iv, cur + len, now)
    end
  end
  local moved_windows = {}
  for _, m in ipairs(U.all) do
    local w = m.updown
    if w and not m.resolved_outcome and now >= w.start and now < w.start + w.len then
      if not w.strike then _M.strike(ex, m) end
      local v = fair_up(ex, m, now)
      if v and v ~= m.outcomes[1].price then
        markets.set_price(m, 1, v, m.rng, now)
        moved_windows[#moved_windows + 1] = m
      end
    end
  end
  if not moved then return nil, moved_windows end
  local ups = {}
  local function add(t, pick)
    local ts = util.iso(t)
    for _, st in ipairs(S.list) do
      local p = pick(st)
      if p then
        ups[#ups + 1] = { type = "crypto_price", symbol = st.sym, price = spot.number(S, st.sym, p),
                          timestamp = ts, source = _M.SOURCE }
      end
    end
  end
  -- a late tick that walked over a window boundary sends the boundary's price first: the
  -- stream then has the tick every strike and close price is (the last one at or before the
  -- boundary, as a recording replays them: spot.feed)
  local b = floor(from / GRID) * GRID + GRID
  if b < S.cur - 2 * GRID then b = floor((S.cur - 2 * GRID) / GRID) * GRID end
  while b < S.cur do
    add(b, function(st) return st.at[b] end)
    b = b + GRID
  end
  add(S.cur, function(st) return st.p end)
  return ups, moved_windows
end

--- after(ex, now): after the walk and matching: settle what resolved; returns the lifecycle
--- messages {market_id, msg} of this tick, in order.
function _M.after(ex, now)
  local U = ex.U
  if not U.spot then return {} end
  local events = {}
  local function note(m, ev) events[#events + 1] = { m.condition_id, _M.message(ex, m, ev, now) } end
  for _, m in ipairs(U.all) do
    local w = m.updown
    if w and not m.resolved_outcome then
      local ph = _M.phase(m, now)
      if ph ~= (w.seen or "scheduled") then
        if ph == "open" or ph == "closed" then
          if (w.seen or "scheduled") == "scheduled" then note(m, "open") end
          if ph == "closed" then note(m, "close") end
        end
        w.seen = ph
      end
    end
  end
  local pending = U.unsettled
  U.unsettled = {}
  for _, m in ipairs(pending) do
    local w = m.updown
    if w.seen ~= "closed" then
      if w.seen ~= "open" and now >= w.start then note(m, "open") end
      note(m, "close")
    end
    note(m, "resolve")
    settle(ex, m, now)
    w.seen = "settled"
    local msg = _M.message(ex, m, "settle", now)
    msg.payout = fixed.money(w.payout)
    events[#events + 1] = { m.condition_id, msg }
  end
  return events
end

return _M
