-- Placing and matching orders of the local exchange: the taker walk against the book,
-- resting limit orders with their reservations, fills and their events, cancels, expiry and
-- resting fills on tick (polysim.exchange.orders' header: the semantics).
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local book = require "polysim.exchange.book"
local markets = require "polysim.exchange.markets"
local accounts = require "polysim.exchange.accounts"
local views = require "polysim.exchange.orders.views"

local _M = {}

local array, null, opt = util.array, util.null, util.opt
local fmt_price, fmt_qty, fmt_money = fixed.price, fixed.qty, fixed.money

local SIDES = { "BUY", "SELL" }

--- new(): the order book-keeping state.
function _M.new()
  return { by_id = {}, next_id = 1, rmarkets = {}, last_us = 0, next_trade = 1 }
end

--- stamp(O, now): a unique, strictly increasing microsecond timestamp.
function _M.stamp(O, now)
  local us = util.to_us(now)
  if us <= O.last_us then us = O.last_us + 1 end
  O.last_us = us
  return us
end

-- Resting lists ------------------------------------------------------------------------------

local function resting_list(O, m, idx, side)
  local r = m.resting[idx]
  if not r then r = { BUY = {}, SELL = {} }; m.resting[idx] = r end
  if not m.in_rmarkets then
    m.in_rmarkets = true
    O.rmarkets[#O.rmarkets + 1] = m
  end
  return r[side]
end

local function insert_resting(O, o)
  o.user.open[o.id] = o
  local list = resting_list(O, o.market, o.idx, o.side)
  local buy = o.side == "BUY"
  local lo, hi = 1, #list + 1
  while lo < hi do            -- first position whose order has a worse price
    local mid = (lo + hi) // 2
    local lp = list[mid].limit
    local worse = buy and lp < o.limit or (not buy and lp > o.limit)
    if worse then hi = mid else lo = mid + 1 end
  end
  table.insert(list, lo, o)
end

local function remove_resting(o)
  o.user.open[o.id] = nil
  local r = o.market.resting[o.idx]
  local list = r and r[o.side]
  if not list then return end
  for k = 1, #list do
    if list[k] == o then table.remove(list, k); return end
  end
end

-- Fills ---------------------------------------------------------------------------------------

local function record_fill(ex, o, q, notional, fee, maker, now_us)
  local O = ex.O
  local user = o.user
  local t = {
    id = O.next_trade, order_id = o.id, market = o.market, idx = o.idx, side = o.side,
    price = accounts.avg_price(notional, q), qty = q, notional = notional, fee = fee, maker = maker,
    us = now_us, price_source = maker and "limit" or "orderbook", order_created_at = o.created_at,
  }
  O.next_trade = t.id + 1
  user.trades[#user.trades + 1] = t
  user.n_trades = (user.n_trades or 0) + 1
  o.market.volume = o.market.volume + notional
  -- The last trade, as books (last_trade_price) and WS price frames (last_trade*) report it.
  local lt = { idx = o.idx, price = t.price, qty = q, side = o.side, us = now_us }
  o.market.last_trade, o.market.outcomes[o.idx].last_trade = lt, lt
  if #ex.listeners.fill == 0 then return end
  ex:_emit("fill", user.id, {
    type = "fill", order_id = o.id, market_id = o.market.condition_id,
    token_id = o.market.outcomes[o.idx].token_id, side = o.side,
    outcome = o.market.outcomes[o.idx].label, price = t.price, quantity = fmt_qty(q),
    fee = fmt_money(fee), liquidity = maker and "MAKER" or "TAKER",
    status = (o.filled >= o.quantity) and "FILLED" or "PARTIALLY_FILLED",
    client_order_id = opt(o.client_order_id), filled_at = util.iso_us(now_us),
  })
end

local function bps(num, den)    -- round(num * 10000 / den), den > 0, num >= 0 or negative
  if den <= 0 then return 0 end
  local neg = num < 0
  if neg then num = -num end
  local v = fixed.muldiv_round(num, 10000, den, "half_up")
  return neg and -v or v
end

local function release(o)
  local w = o.user.wallet
  if o.side == "BUY" then
    w.reserved = w.reserved - o.reserved_cash
    w.cash = w.cash + o.reserved_cash
    o.reserved_cash = 0
  else
    local pos = o.pos
    pos.reserved = pos.reserved - o.reserved_qty
    o.reserved_qty = 0
    if pos.qty == 0 and pos.reserved == 0 then pos.status = "CLOSED" end
  end
end

--- not_yet_visible(m, now): the transient 404 of a brand-new market, or nil.
function _M.not_yet_visible(m, now)
  if m.visible_at and now < m.visible_at then
    return errors.api(404, "MARKET_NOT_FOUND", "Market not found yet (new markets appear within ~30 s)",
      { reason = "market_not_yet_available", transient = true,
        retry_after = math.max(1, math.ceil(m.visible_at - now)) })
  end
  return nil
end

--- place(ex, ctx, s, now): executes a validated spec; returns the response.
function _M.place(ex, ctx, s, now)
  local U, O = ex.U, ex.O
  local user = ctx.user
  if s.unknown_token then
    return errors.api(404, "MARKET_NOT_FOUND", "No market has token_id " .. s.unknown_token)
  end
  local m = U.by_id[s.market_id]
  if not m then return errors.api(404, "MARKET_NOT_FOUND", "Market not found: " .. s.market_id) end
  local nf = _M.not_yet_visible(m, now)
  if nf then return nf end
  local idx = markets.outcome_index(m, s.outcome)
  if not idx then
    local labels = array()
    for i, oc in ipairs(m.outcomes) do labels[i] = oc.label end
    return errors.api(400, "INVALID_OUTCOME", "Unknown outcome '" .. s.outcome .. "' for this market",
      { valid_outcomes = labels })
  end
  local st = markets.state(m, now)
  if st == "resolved" or (st == "closed" and s.side == "BUY") then
    return errors.api(400, "MARKET_CLOSED", "Market is " .. st
        .. (st == "closed" and "; only SELL orders can exit" or ""),
      { market_id = m.condition_id, state = st, resolved_outcome = opt(m.resolved_outcome) })
  end
  local w = accounts.ensure_wallet(user, ex.tiers, now)
  if not w then
    return errors.api(403, "TIER_REQUIRES_UPGRADE", "The free tier has no API wallet and is read-only",
      { tier = user.plan })
  end
  local pos = accounts.position(user, m, idx, false)
  local q, side, limit = s.quantity, s.side, s.price
  -- The minimum order size the book advertises (book.lua MIN_ORDER_SIZE, "commonly 5 shares":
  -- polysim_sdk scripts/01_balance_and_market.py); selling out a smaller whole position is allowed.
  local min = m.min_size or ex.min_order_size or book.MIN_ORDER_SIZE
  if q and q < min and not (side == "SELL" and pos and q == pos.qty - pos.reserved) then
    return errors.api(400, "INVALID_ORDER_MIN_SIZE",
      "Order size " .. fmt_qty(q) .. " is below the market's minimum order size of " .. fmt_qty(min) .. " shares",
      { min_order_size = fmt_qty(min), requested = fmt_qty(q) })
  end
  if side == "SELL" then
    local avail = pos and (pos.qty - pos.reserved) or 0
    if q > avail then
      return errors.api(400, "INSUFFICIENT_BALANCE", "Not enough shares to sell",
        { reason = "insufficient_shares", requested = fmt_qty(q), available = fmt_qty(avail),
          reserved = fmt_qty(pos and pos.reserved or 0) })
    end
  end
  local immediate = s.order_type == "market" or s.tif == "FOK" or s.tif == "IOC"
  local bb, ba = book.best(m, idx)
  local r = book.walk(m, idx, side, limit, q, false)
  if s.post_only and r.filled > 0 then
    return errors.api(400, "POST_ONLY_WOULD_CROSS", "post_only order would take liquidity",
      { best_price = r.best and fmt_price(r.best) or null, price = fmt_price(limit) })
  end
  if immediate and (r.filled == 0 or (s.tif == "FOK" and r.filled < q)) then
    local details = { requested = fmt_qty(q), fillable = fmt_qty(r.filled), limit_price = fmt_price(limit),
                      best_price = r.best and fmt_price(r.best) or null, time_in_force = s.tif }
    if r.limited then
      return errors.api(409, "LIMIT_PRICE_NOT_MET", side == "BUY" and
        "Best available ask is above your price limit" or "Best available bid is below your price limit", details)
    end
    return errors.api(409, "FOK_ORDER_NOT_FILLED_ERROR",
      "Order could not be filled " .. (s.tif == "FOK" and "in full" or "at all") .. " with the available liquidity",
          details)
  end
  local fee = fixed.taker_fee(r.qpp, m.fee_bps)
  local rest = immediate and 0 or (q - r.filled)
  local reserve = side == "BUY" and rest * limit or 0
  if side == "BUY" then
    local need = r.notional + fee + reserve
    if need > w.cash then
      return errors.api(400, "INSUFFICIENT_BALANCE", "Insufficient balance",
        { required = fmt_money(need), available = fmt_money(w.cash), notional = fmt_money(r.notional),
          fee = fmt_money(fee), reserved_for_limit = fmt_money(reserve) })
    end
  end
  -- execute
  local us = _M.stamp(O, now)
  local o = {
    id = O.next_id, user = user, market = m, idx = idx, side = side, order_type = s.order_type,
    tif = s.tif, limit = limit, quantity = q, filled = 0, notional = 0, fee = 0,
    status = "PENDING", client_order_id = s.client_order_id, created_us = us,
    created_at = util.iso_us(us), expiration = s.expiration, post_only = s.post_only,
    reserved_cash = 0, reserved_qty = 0, amount = s.amount,
  }
  O.next_id = o.id + 1
  O.by_id[o.id] = o
  user.orders[#user.orders + 1] = o
  if r.filled > 0 then pos = pos or accounts.position(user, m, idx, true) end
  o.pos = pos
  if r.filled > 0 then
    book.walk(m, idx, side, limit, q, true)
    if side == "BUY" then accounts.buy(w, pos, r.filled, r.notional, fee, false)
    else accounts.sell(w, pos, r.filled, r.notional, fee, false) end
    o.filled, o.notional, o.fee = r.filled, r.notional, fee
    o.filled_us = us
  end
  -- diagnostics
  local d = { levels = r.levels, best = r.best and fmt_price(r.best) or nil }
  if bb and ba then d.spread_bps = bps((ba - bb) * 2, ba + bb) end
  if r.filled > 0 then
    d.price_source = "orderbook"
    local vwap6 = fixed.muldiv_round(r.notional, 100, r.filled, "half_even")
    local best6 = r.best * 100
    d.slippage_bps = side == "BUY" and bps(vwap6 - best6, best6) or bps(best6 - vwap6, best6)
    if bb and ba then
      local mid6 = (bb + ba) * 50
      d.impact_bps = side == "BUY" and bps(vwap6 - mid6, mid6) or bps(mid6 - vwap6, mid6)
    end
  else
    d.price_source = "none"
  end
  o.diag = d
  if rest > 0 then
    if side == "BUY" then
      w.cash = w.cash - reserve
      w.reserved = w.reserved + reserve
      o.reserved_cash = reserve
    else
      pos.reserved = pos.reserved + rest
      o.reserved_qty = rest
      pos.status = "OPEN"
    end
    insert_resting(O, o)
  elseif r.filled > 0 then
    o.status = "FILLED"
  end
  if pos and pos.qty == 0 and pos.reserved == 0 then pos.status = "CLOSED" end
  if r.filled > 0 then record_fill(ex, o, r.filled, r.notional, fee, false, us) end
  return { status = 200, body = views.response(o, w, pos) }
end

--- cancel(ex, o, now, status): cancels (or expires) a pending order and releases what it holds.
function _M.cancel(ex, o, now, status)
  remove_resting(o)
  release(o)
  o.status = status or "CANCELLED"
  o.cancelled_us = _M.stamp(ex.O, now)
end

--- match(ex, now): expiry, closing and resting fills for every market with resting orders.
function _M.match(ex, now)
  local O = ex.O
  local keep = {}
  for _, m in ipairs(O.rmarkets) do
    local st = markets.state(m, now)
    local any = false
    for idx = 1, #m.outcomes do
      local r = m.resting[idx]
      for _, side in ipairs(SIDES) do
        local list = r and r[side]
        if list and #list > 0 then
          if st ~= "open" then
            while #list > 0 do _M.cancel(ex, list[#list], now, "CANCELLED") end
          else
            -- expiry
            local k = 1
            while k <= #list do
              local o = list[k]
              if o.expiration and now >= o.expiration then _M.cancel(ex, o, now, "EXPIRED")
              else k = k + 1 end
            end
            -- fills
            while #list > 0 do
              local o = list[1]
              local left = o.quantity - o.filled
              local res = book.walk(m, idx, side, o.limit, left, true)
              if res.filled <= 0 then break end
              local q = res.filled
              local notional = q * o.limit
              local w = o.user.wallet
              local us = _M.stamp(O, now)
              if side == "BUY" then
                o.pos = o.pos or accounts.position(o.user, m, idx, true)
                accounts.buy(w, o.pos, q, notional, 0, true)
                o.reserved_cash = o.reserved_cash - notional
              else
                accounts.sell(w, o.pos, q, notional, 0, true)
                o.reserved_qty = o.reserved_qty - q
              end
              o.filled = o.filled + q
              o.notional = o.notional + notional
              o.filled_us = us
              o.diag = o.diag or {}
              o.diag.price_source = "limit"
              if o.filled >= o.quantity then
                o.status = "FILLED"
                o.user.open[o.id] = nil
                table.remove(list, 1)
              end
              record_fill(ex, o, q, notional, 0, true, us)
              if o.status ~= "FILLED" then break end
            end
          end
          if #list > 0 then any = true end
        end
      end
    end
    if any then keep[#keep + 1] = m else m.in_rmarkets = nil end
  end
  O.rmarkets = keep
end

return _M
