-- API wallets, positions, trade history and equity snapshots of the local exchange.
--
-- wallet (money units, 1e-8): cash (available), reserved (held by resting BUY orders),
--   starting, fees (paid since the last reset), realized (sum of sale proceeds minus the
--   cost basis removed). Invariant, exact:
--     cash + reserved + sum(position.cost) = starting - fees + realized
-- position: qty and reserved (shares held by resting SELL orders) at 1e-4, cost (money,
--   the entry cost basis of qty), realized (money).
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local markets = require "polysim.exchange.markets"

local _M = {}

local ONE = fixed.P
local array, null = util.array, util.null
local fmt_money, fmt_qty = fixed.money, fixed.qty

--- value_price(m, idx): the price used to value a position (resolved: 1 or 0).
function _M.value_price(m, idx)
  if m.resolved_outcome then
    return m.outcomes[idx].label == m.resolved_outcome and ONE or 0
  end
  return m.outcomes[idx].price
end

--- avg_price(money, qty): money / qty as a price string with up to 6 decimals.
function _M.avg_price(money, qty)
  if qty <= 0 then return "0.00" end
  local v = fixed.muldiv_round(money, 100, qty, "half_even")   -- 1e-6 units
  return fixed.format(v, 6, 2)
end

function _M.snapshot(user, now)
  local w = user.wallet
  if not w then return end
  local posval = 0
  for _, pos in ipairs(user.pos_list) do
    if pos.qty > 0 then posval = posval + pos.qty * _M.value_price(pos.market, pos.idx) end
  end
  local cash = w.cash + w.reserved
  local eq = user.equity
  eq[#eq + 1] = { t = math.floor(now), cash = cash, posval = posval, total = cash + posval,
                  pnl = cash + posval - w.starting }
  if #eq > 24 * 120 then table.remove(eq, 1) end
end

--- ensure_wallet(user, tiers, now): the user's API wallet, created at the plan's baseline;
--- nil for plans without one (free).
function _M.ensure_wallet(user, tiers, now)
  if user.wallet then return user.wallet end
  local t = tiers[user.plan]
  if not t or t.wallet <= 0 then return nil end
  local base = t.wallet * fixed.M
  user.wallet = { cash = base, reserved = 0, starting = base, fees = 0, realized = 0 }
  _M.snapshot(user, now)
  return user.wallet
end

--- position(user, m, idx, create): the user's position in outcome idx of market m.
function _M.position(user, m, idx, create)
  local key = m.condition_id .. "\0" .. idx
  local pos = user.positions[key]
  if not pos and create then
    local ids = user.ids
    ids.pos = ids.pos + 1
    pos = { id = ids.pos, market = m, idx = idx, qty = 0, reserved = 0, cost = 0,
            realized = 0, status = "OPEN", trades = 0 }
    user.positions[key] = pos
    user.pos_list[#user.pos_list + 1] = pos
  end
  return pos
end

--- buy(w, pos, q, notional, fee, from_reserve): shares in, money out.
function _M.buy(w, pos, q, notional, fee, from_reserve)
  if from_reserve then w.reserved = w.reserved - notional else w.cash = w.cash - notional end
  w.cash = w.cash - fee
  w.fees = w.fees + fee
  pos.qty = pos.qty + q
  pos.cost = pos.cost + notional
  pos.realized = pos.realized - fee
  pos.status = "OPEN"
  pos.trades = pos.trades + 1
end

--- sell(w, pos, q, notional, fee, from_reserve): shares out, money in.
function _M.sell(w, pos, q, notional, fee, from_reserve)
  if from_reserve then pos.reserved = pos.reserved - q end
  local removed
  if q >= pos.qty then removed = pos.cost else removed = fixed.muldiv(pos.cost, q, pos.qty) end
  pos.qty = pos.qty - q
  pos.cost = pos.cost - removed
  w.cash = w.cash + notional - fee
  w.fees = w.fees + fee
  w.realized = w.realized + notional - removed
  pos.realized = pos.realized + notional - removed - fee
  pos.trades = pos.trades + 1
  if pos.qty == 0 and pos.reserved == 0 then pos.status = "CLOSED" end
end

-- Views --------------------------------------------------------------------------------

function _M.position_view(pos)
  local m = pos.market
  local price = _M.value_price(m, pos.idx)
  local value = pos.qty * price
  return {
    id = pos.id, market_id = m.condition_id, outcome = m.outcomes[pos.idx].label,
    token_id = m.outcomes[pos.idx].token_id,
    quantity = fmt_qty(pos.qty), reserved_quantity = fmt_qty(pos.reserved),
    avg_entry_price = _M.avg_price(pos.cost, pos.qty), cost_basis = fmt_money(pos.cost),
    current_price = fixed.price(price), market_value = fmt_money(value),
    unrealized_pnl = fmt_money(value - pos.cost), realized_pnl = fmt_money(pos.realized),
    status = pos.status, market_question = m.question,
  }
end

--- position_brief(pos): the `position` block of an order response.
function _M.position_brief(pos)
  return {
    id = pos.id, market_id = pos.market.condition_id, outcome = pos.market.outcomes[pos.idx].label,
    quantity = fmt_qty(pos.qty), reserved_quantity = fmt_qty(pos.reserved),
    avg_entry_price = _M.avg_price(pos.cost, pos.qty), status = pos.status,
  }
end

function _M.positions_view(user, status)
  local out = array()
  for _, pos in ipairs(user.pos_list) do
    if not status or pos.status == status then out[#out + 1] = _M.position_view(pos) end
  end
  return out
end

function _M.balance_view(user)
  local w = user.wallet
  if not w then
    return { balance = "0.00", currency = "USD", starting_balance = "0.00", unrealized_pnl = "0.00",
             total_value = "0.00", reserved = "0.00", wallet = "API", has_api_wallet = false }
  end
  local unreal, posval = 0, 0
  for _, pos in ipairs(user.pos_list) do
    if pos.qty > 0 then
      local v = pos.qty * _M.value_price(pos.market, pos.idx)
      posval = posval + v
      unreal = unreal + v - pos.cost
    end
  end
  return {
    balance = fmt_money(w.cash), currency = "USD", starting_balance = fmt_money(w.starting),
    unrealized_pnl = fmt_money(unreal), total_value = fmt_money(w.cash + w.reserved + posval),
    reserved = fmt_money(w.reserved), positions_value = fmt_money(posval),
    realized_pnl = fmt_money(w.realized - w.fees), fees_paid = fmt_money(w.fees),
    wallet = "API", has_api_wallet = true,
  }
end

function _M.portfolio_view(user)
  local wins, closed = 0, 0
  for _, pos in ipairs(user.pos_list) do
    if pos.status == "CLOSED" and pos.trades > 0 then
      closed = closed + 1
      if pos.realized > 0 then wins = wins + 1 end
    end
  end
  local win_rate = null
  if closed > 0 then win_rate = fixed.format(wins * 10000 // closed, 4, 2) end
  return {
    balance = _M.balance_view(user), positions = _M.positions_view(user, "OPEN"),
    total_trades = user.n_trades or #user.trades, win_rate = win_rate,
    open_positions = (function()
      local n = 0
      for _, pos in ipairs(user.pos_list) do if pos.status == "OPEN" then n = n + 1 end end
      return n
    end)(),
  }
end

function _M.trade_view(t)
  return {
    trade_id = t.id, order_id = t.order_id, market_id = t.market.condition_id,
    outcome = t.market.outcomes[t.idx].label, side = t.side, price = t.price,
    quantity = fmt_qty(t.qty), notional = fmt_money(t.notional), fee = fmt_money(t.fee),
    status = "FILLED", price_source = t.price_source, price_age_ms = 0,
    liquidity = t.maker and "MAKER" or "TAKER",
    filled_at = util.iso_us(t.us), created_at = t.order_created_at,
  }
end

function _M.history_view(user, f)
  local out = array()
  local skipped = 0
  for k = #user.trades, 1, -1 do
    local t = user.trades[k]
    if (not f.market_id or t.market.condition_id == f.market_id) and (not f.side or t.side == f.side) then
      if skipped < f.offset then skipped = skipped + 1
      else
        out[#out + 1] = _M.trade_view(t)
        if #out >= f.limit then break end
      end
    end
  end
  return out
end

local function csv_field(s)
  s = tostring(s)
  if s:find('[,"\n\r]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function _M.trades_csv(user, market_id)
  local lines = { "trade_id,order_id,market_id,question,outcome,side,price,quantity,notional,fee,liquidity,filled_at" }
  for _, t in ipairs(user.trades) do
    if market_id and t.market.condition_id ~= market_id then goto continue end
    local v = _M.trade_view(t)
    lines[#lines + 1] = table.concat({
      v.trade_id, v.order_id, v.market_id, csv_field(t.market.question), csv_field(v.outcome), v.side,
      v.price, v.quantity, v.notional, v.fee, v.liquidity, v.filled_at }, ",")
    ::continue::
  end
  return table.concat(lines, "\n") .. "\n"
end

function _M.equity_view(user, days, now)
  local out = array()
  local from = now - days * 86400
  for _, s in ipairs(user.equity) do
    if s.t >= from then
      out[#out + 1] = { timestamp = util.iso(s.t), cash_balance = fmt_money(s.cash),
        position_value = fmt_money(s.posval), total_value = fmt_money(s.total), pnl = fmt_money(s.pnl) }
    end
  end
  return out
end

--- check(user): verifies the wallet/position invariants; true or false, message.
function _M.check(user)
  local w = user.wallet
  if not w then return true end
  if w.cash < 0 then return false, "negative cash" end
  if w.reserved < 0 then return false, "negative reserved cash" end
  local cost = 0
  for _, pos in ipairs(user.pos_list) do
    if pos.qty < 0 then return false, "negative position" end
    if pos.reserved < 0 or pos.reserved > pos.qty then return false, "bad reserved shares" end
    if pos.cost < 0 then return false, "negative cost basis" end
    if pos.qty == 0 and pos.cost ~= 0 then return false, "cost without shares" end
    cost = cost + pos.cost
  end
  if w.cash + w.reserved + cost ~= w.starting - w.fees + w.realized then
    return false,
        string.format("wallet does not reconcile: cash %d + reserved %d + cost %d ~= start %d - fees %d + realized %d",
      w.cash, w.reserved, cost, w.starting, w.fees, w.realized)
  end
  return true
end

_M.state = markets.state
return _M
