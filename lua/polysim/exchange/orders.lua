-- Orders of the local exchange: validation, matching against the synthetic books, resting
-- limit orders with reservations, expiry, cancels, batch, the CLOB-shaped endpoint and
-- idempotency. Semantics follow BRIEF.md "Order semantics":
--
--   market orders : `price` is a required worst-price limit (400 PRICE_REQUIRED); TIF FOK by
--                   default (GTC/GTD are overridden to FOK); FAK = IOC fills what it can.
--   limit orders  : GTC by default: the marketable part fills at once as taker, the rest
--                   rests (BUY reserves limit*qty cash, SELL reserves shares); FOK/IOC act at
--                   once; GTD (or any expiration) expires on tick; post_only never takes.
--   immediate orders that fill nothing: 409 LIMIT_PRICE_NOT_MET when liquidity existed only
--                   beyond the limit, else 409 FOK_ORDER_NOT_FILLED_ERROR; a FOK that cannot
--                   fill entirely answers the same way (nothing executes).
--   resting fills : on tick, when the effective book crosses the limit, at the limit price,
--                   for the crossing size (consumed from the book), maker, fee 0.
--   fees          : taker fills pay round_half_even_cents(rate * sum(q * p * (1 - p))).
--   selling more shares than held (minus shares reserved by resting SELLs): 400
--                   INSUFFICIENT_BALANCE with details.reason = "insufficient_shares".
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local book = require "polysim.exchange.book"
local markets = require "polysim.exchange.markets"
local accounts = require "polysim.exchange.accounts"

local _M = {}

local ONE = fixed.P
local array, null, opt, absent = util.array, util.null, util.opt, util.absent
local fmt_price, fmt_qty, fmt_money = fixed.price, fixed.qty, fixed.money
local item = errors.item
local MAX_QTY = 10000000 * ONE          -- 10 million shares
local MAX_AMOUNT = 100000000 * fixed.M  -- $100 million

local SIDES = { "BUY", "SELL" }
local TIFS = { GTC = "GTC", GTD = "GTD", FOK = "FOK", FAK = "IOC", IOC = "IOC" }
_M.STATUSES = { PENDING = true, FILLED = true, CANCELLED = true, EXPIRED = true }

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

-- Validation -------------------------------------------------------------------------------

local function num_item(loc, v, reason, what)
  if reason == "type" then
    return item(loc, "Input should be a valid decimal string", "decimal_type", v)
  elseif reason == "precision" then
    return item(loc, "Decimal input should have no more than 4 decimal places", "decimal_max_places", v)
  elseif reason == "range" then
    return item(loc, what .. " is out of range", "less_than_equal", v)
  end
  return item(loc, "Input should be a valid decimal", "decimal_parsing", v)
end

local function str_field(j, name, items, opts, loc0)
  local v = j[name]
  if absent(v) then
    if opts.required then items[#items + 1] = item({ loc0, name }, "Field required", "missing") end
    return nil
  end
  if type(v) ~= "string" then
    items[#items + 1] = item({ loc0, name }, "Input should be a valid string", "string_type", v)
    return nil
  end
  if opts.max and #v > opts.max then
    items[#items + 1] = item({ loc0, name }, "String should have at most " .. opts.max .. " characters",
        "string_too_long")
    return nil
  end
  return v
end

local function code_for(items)
  local f = items[1] and items[1].loc[#items[1].loc]
  if f == "price" then return "INVALID_PRICE" end
  if f == "quantity" or f == "amount" or f == "size" then return "INVALID_QUANTITY" end
  return "VALIDATION_ERROR"
end

--- parse(j, now, clob): a normalized order spec from a decoded request body, or nil and a
--- 422/400 response. clob = true reads the CLOB shape (token_id, size, order_type GTC/...).
function _M.parse(j, now, U, clob)
  if type(j) ~= "table" or util.is_array(j) or j[1] ~= nil then
    return nil, errors.validation({ item({ "body" }, "Input should be a valid dictionary or object",
        "model_attributes_type") })
  end
  local items = {}
  local s = {}
  if clob then
    local tok = str_field(j, "token_id", items, { required = true, max = 256 }, "body")
    if tok then
      local m, idx = markets.resolve_token(U, tok)
      if m then s.market_id = m.condition_id; s.outcome = m.outcomes[idx].label
      else s.unknown_token = tok end
    end
  else
    s.market_id = str_field(j, "market_id", items, { required = true, max = 256 }, "body")
    s.outcome = str_field(j, "outcome", items, { required = true, max = 200 }, "body")
  end
  local side = j.side
  if absent(side) then items[#items + 1] = item({ "body", "side" }, "Field required", "missing")
  elseif side ~= "BUY" and side ~= "SELL" then
    items[#items + 1] = item({ "body", "side" }, "Input should be 'BUY' or 'SELL'", "enum", side)
  else s.side = side end
  -- order type and time in force
  if clob then
    local ot = j.order_type
    if absent(ot) then ot = "GTC" end
    if ot ~= "GTC" and ot ~= "FOK" and ot ~= "IOC" and ot ~= "GTD" and ot ~= "FAK" then
      items[#items + 1] = item({ "body", "order_type" }, "Input should be 'GTC', 'FOK', 'IOC' or 'GTD'", "enum", ot)
    else s.order_type, s.tif = "limit", TIFS[ot] end
  else
    local ot = j.order_type
    if absent(ot) then ot = "market" end
    if ot ~= "market" and ot ~= "limit" then
      items[#items + 1] = item({ "body", "order_type" }, "Input should be 'market' or 'limit'", "enum", ot)
    else s.order_type = ot end
    local tif = j.time_in_force
    if not absent(tif) then
      if type(tif) ~= "string" or not TIFS[tif] then
        items[#items + 1] = item({ "body", "time_in_force" },
          "Input should be 'GTC', 'GTD', 'FOK', 'FAK' or 'IOC'", "enum", tif)
      else s.tif = TIFS[tif] end
    end
  end
  -- price
  local pv = j.price
  if not absent(pv) then
    local p, why = fixed.coerce(pv, 4)
    if not p then items[#items + 1] = num_item({ "body", "price" }, pv, why, "price")
    elseif p <= 0 then items[#items + 1] = item({ "body", "price" }, "Input should be greater than 0", "greater_than",
        pv)
    elseif p >= ONE then items[#items + 1] = item({ "body", "price" }, "Input should be less than 1", "less_than", pv)
    else s.price = p end
  end
  -- quantity / size / amount
  local qname = "quantity"
  local qv = j.quantity
  if clob and absent(qv) then qv = j.size; qname = "size" end
  local av = (not clob) and j.amount or nil
  if not absent(qv) and not absent(av) then
    items[#items + 1] = item({ "body", "amount" }, "Send quantity or amount, not both", "value_error")
  elseif not absent(qv) then
    local q, why = fixed.coerce(qv, 4)
    if not q then items[#items + 1] = num_item({ "body", qname }, qv, why, "quantity")
    elseif q <= 0 then items[#items + 1] = item({ "body", qname }, "Input should be greater than 0", "greater_than", qv)
    elseif q > MAX_QTY then items[#items + 1] = item({ "body", qname },
        "Input should be less than or equal to 10000000", "less_than_equal", qv)
    else s.quantity = q end
  elseif not absent(av) then
    local a, why = fixed.coerce(av, 8)
    if not a then items[#items + 1] = num_item({ "body", "amount" }, av, why, "amount")
    elseif a <= 0 then items[#items + 1] = item({ "body", "amount" }, "Input should be greater than 0",
        "greater_than", av)
    elseif a > MAX_AMOUNT then items[#items + 1] = item({ "body", "amount" }, "amount is too large",
        "less_than_equal", av)
    else s.amount = a end
  else
    items[#items + 1] = item({ "body", qname }, "Field required", "missing")
  end
  -- flags
  local po = j.post_only
  if absent(po) or po == false or po == "false" then s.post_only = false
  elseif po == true or po == "true" then s.post_only = true
  else items[#items + 1] = item({ "body", "post_only" }, "Input should be a valid boolean", "bool_type", po) end
  local ex = j.expiration
  if not absent(ex) and ex ~= 0 and ex ~= "0" then
    local e = fixed.coerce(ex, 0)
    if not e then items[#items + 1] = item({ "body", "expiration" }, "Input should be a valid integer", "int_parsing",
        ex)
    else s.expiration = e end
  end
  local coid = j.client_order_id
  if not absent(coid) then
    if type(coid) ~= "string" and math.type(coid) ~= "integer" then
      items[#items + 1] = item({ "body", "client_order_id" }, "Input should be a valid string", "string_type", coid)
    elseif type(coid) == "string" and not util.valid_utf8(coid) then
      items[#items + 1] = item({ "body", "client_order_id" }, "Input should be a valid UTF-8 string", "string_unicode")
    elseif #tostring(coid) > 256 then
      items[#items + 1] = item({ "body", "client_order_id" }, "String should have at most 256 characters",
          "string_too_long")
    else s.client_order_id = tostring(coid) end
  end
  if #items > 0 then return nil, errors.validation(items, code_for(items)) end
  -- cross-field rules
  local market = s.order_type == "market"
  if not s.price then
    return nil, errors.api(400, "PRICE_REQUIRED", market and
      "Market orders need `price`: the worst price you accept (BUY never fills above it, SELL never below)"
      or "Limit orders need `price`")
  end
  if market then
    if s.tif == nil or s.tif == "GTC" or s.tif == "GTD" then s.tif = "FOK" end
  else
    s.tif = s.tif or "GTC"
    if s.expiration and s.tif == "GTC" then s.tif = "GTD" end
    if s.tif == "GTD" and not s.expiration then
      return nil, errors.validation({ item({ "body", "expiration" }, "GTD orders need an expiration (unix seconds)",
          "missing") })
    end
  end
  if s.expiration and s.tif == "GTD" and s.expiration <= now then
    return nil, errors.validation({ item({ "body", "expiration" }, "Expiration must be in the future", "greater_than",
        s.expiration) })
  end
  if s.amount then
    if not market or s.side ~= "BUY" then
      return nil, errors.validation({ item({ "body", "amount" }, "amount is accepted on market BUY orders only",
          "value_error") }, "INVALID_QUANTITY")
    end
    s.quantity = s.amount // s.price      -- money (1e-8) / price (1e-4) = shares at 1e-4, floored
    if s.quantity > MAX_QTY then
      return nil, errors.validation({ item({ "body", "amount" }, "amount buys more than 10000000 shares at this price",
        "less_than_equal") }, "INVALID_QUANTITY")
    end
    if s.quantity <= 0 then
      return nil, errors.api(400, "INVALID_QUANTITY", "amount buys less than 0.0001 shares at this price",
        { amount = fmt_money(s.amount), price = fmt_price(s.price) })
    end
  end
  if s.post_only and (s.tif == "FOK" or s.tif == "IOC" or market) then
    return nil, errors.validation({ item({ "body", "post_only" }, "post_only needs a GTC or GTD limit order",
        "value_error") })
  end
  return s
end

--- fingerprint(s): canonical text of the parameters, for idempotency.
function _M.fingerprint(s)
  return table.concat({ s.market_id or s.unknown_token or "", s.side, s.outcome or "", s.order_type,
    s.tif, tostring(s.price), tostring(s.quantity), tostring(s.amount or ""), tostring(s.post_only),
    tostring(s.expiration or ""), s.client_order_id or "" }, "|")
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

-- Views -------------------------------------------------------------------------------------

local function avg_fill(o)
  if o.filled <= 0 then return nil end
  return accounts.avg_price(o.notional, o.filled)
end

--- view(o): the order as GET /v1/orders lists it (PendingOrderItem plus fields).
function _M.view(o)
  local m = o.market
  local fp = avg_fill(o)
  return {
    id = o.id, order_id = o.id, market_id = m.condition_id, token_id = m.outcomes[o.idx].token_id,
    side = o.side, outcome = m.outcomes[o.idx].label, order_type = o.order_type,
    limit_price = fmt_price(o.limit), price = fp or fmt_price(o.limit),
    quantity = fmt_qty(o.status == "FILLED" and o.filled or o.quantity),
    requested_quantity = fmt_qty(o.quantity), filled_quantity = fmt_qty(o.filled),
    remaining_quantity = fmt_qty(o.status == "PENDING" and (o.quantity - o.filled) or 0),
    time_in_force = o.tif, status = o.status, client_order_id = opt(o.client_order_id),
    post_only = o.post_only, expiration = opt(o.expiration),
    notional = fmt_money(o.notional), fee = fmt_money(o.fee),
    created_at = o.created_at, filled_at = o.filled_us and util.iso_us(o.filled_us) or null,
    fill_price = opt(fp), cancelled_at = o.cancelled_us and util.iso_us(o.cancelled_us) or null,
  }
end

--- response(o, w, pos): the OrderResponse of a placement or cancel.
function _M.response(o, w, pos)
  local r = _M.view(o)
  local d = o.diag or {}
  r.price_source = opt(d.price_source)
  r.slippage_bps = opt(d.slippage_bps)
  r.spread_bps = opt(d.spread_bps)
  r.impact_bps = opt(d.impact_bps)
  r.book_walk_levels = d.levels or 0
  r.best_price = opt(d.best)
  r.fee_rate = fixed.format(o.market.fee_bps, 4, 2)
  r.account_balance = w and fmt_money(w.cash) or null
  r.position = pos and accounts.position_brief(pos) or null
  if o.amount then r.amount = fmt_money(o.amount) end
  return r
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
  return { status = 200, body = _M.response(o, w, pos) }
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

-- Listing -------------------------------------------------------------------------------------

--- open_orders(user): the user's PENDING orders, oldest first.
function _M.open_orders(user)
  local list = {}
  for _, o in pairs(user.open) do list[#list + 1] = o end
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

--- list(user, f): {orders, next_cursor, has_more}, newest first. f: status, market_id, side,
--- limit, offset, cursor (ISO created_at; items strictly older are returned).
function _M.list(user, f)
  local orders = user.orders
  local start = #orders
  if f.cursor then
    local lo, hi = 1, #orders + 1          -- first index with created_at >= cursor
    while lo < hi do
      local mid = (lo + hi) // 2
      if orders[mid].created_at < f.cursor then lo = mid + 1 else hi = mid end
    end
    start = lo - 1
  end
  local out = array()
  local skipped, has_more = 0, false
  for k = start, 1, -1 do
    local o = orders[k]
    if (not f.status or o.status == f.status) and (not f.market_id or o.market.condition_id == f.market_id)
      and (not f.side or o.side == f.side) then
      if skipped < f.offset then skipped = skipped + 1
      elseif #out >= f.limit then has_more = true; break
      else out[#out + 1] = _M.view(o) end
    end
  end
  return { orders = out, next_cursor = (has_more and #out > 0) and out[#out].created_at or null,
           has_more = has_more, total_hint = null }
end

-- Request-level entry points (idempotency) ----------------------------------------------------

local function replay(resp)
  local h = {}
  for k, v in pairs(resp.headers or {}) do h[k] = v end
  h["Idempotent-Replayed"] = "true"
  return { status = resp.status, headers = h, body = resp.body, is_error = resp.is_error }
end

-- Memory bounds (issue 10 #8) -------------------------------------------------------------
-- Idempotency records are kept for ex.idem_window seconds (24 h unless exchange.new says
-- otherwise), measured on the exchange's clock; each user's records expire oldest first
-- from a FIFO of {key, at}. Finished orders and trades beyond the newest ex.keep_finished
-- per user are dropped (pending orders always stay), so a long soak holds a bounded amount.
_M.IDEM_WINDOW = 86400
-- perf2 (issue 10 #8): and at most ex.idem_max per user (the oldest go first), so that a
-- fast client cannot fill memory inside the window (the 5-minute soak at 1,500 req/s).
_M.IDEM_MAX = 100000
_M.KEEP_FINISHED = 10000

--- idem_get(ex, user, key, now): the live record under key, or nil (an expired one is gone).
function _M.idem_get(ex, user, key, now)
  local rec = user.idem[key]
  if rec and now - rec.at >= (ex.idem_window or _M.IDEM_WINDOW) then
    user.idem[key] = nil
    return nil
  end
  return rec
end

--- idem_put(ex, user, key, rec, now): stores rec under key and expires the old ones.
function _M.idem_put(ex, user, key, rec, now)
  local window = ex.idem_window or _M.IDEM_WINDOW
  rec.at = now
  user.idem[key] = rec
  local q = user.idem_q
  if not q then q = { first = 1, last = 0 }; user.idem_q = q end
  q.last = q.last + 1
  q[q.last] = { key, now }
  local max = ex.idem_max or _M.IDEM_MAX
  while q.first <= q.last do
    local e = q[q.first]
    if now - e[2] < window and q.last - q.first < max then break end
    local cur = user.idem[e[1]]
    if cur and cur.at == e[2] then user.idem[e[1]] = nil end
    q[q.first] = nil
    q.first = q.first + 1
  end
end

--- idem_count(user): the number of idempotency records held.
function _M.idem_count(user)
  local q = user.idem_q
  return q and (q.last - q.first + 1) or 0
end

-- Drops the oldest finished orders (and trades) beyond keep, amortised: only once the list
-- has grown to twice that.
local function compact(ex, user)
  local keep = ex.keep_finished or _M.KEEP_FINISHED
  local list = user.orders
  if #list > 2 * keep then
    local finished = 0
    for k = #list, 1, -1 do if list[k].status ~= "PENDING" then finished = finished + 1 end end
    local drop = finished - keep
    local out = {}
    for _, o in ipairs(list) do
      if drop > 0 and o.status ~= "PENDING" then
        drop = drop - 1
        ex.O.by_id[o.id] = nil
      else
        out[#out + 1] = o
      end
    end
    user.orders = out
  end
  local tr = user.trades
  if #tr > 2 * keep then
    local out = {}
    table.move(tr, #tr - keep + 1, #tr, 1, out)
    user.trades = out
  end
end
_M.compact = compact

--- submit(ex, ctx, s, idem_key, now): idempotency around place().
function _M.submit(ex, ctx, s, idem_key, now)
  local key = idem_key and ("h:" .. idem_key) or (s.client_order_id and ("c:" .. s.client_order_id))
  local user = ctx.user
  local fp
  if key then
    fp = _M.fingerprint(s)
    local rec = _M.idem_get(ex, user, key, now)
    if rec then
      if rec.fp == fp then return replay(rec.resp) end
      return errors.api(409, "IDEMPOTENCY_CONFLICT",
        "This idempotency key was already used with different parameters",
        { idempotency_key = idem_key or s.client_order_id, original_order_id = opt(rec.order_id) })
    end
  end
  local resp = _M.place(ex, ctx, s, now)
  if key and resp.status < 500 then
    _M.idem_put(ex, user, key, { fp = fp, resp = resp, order_id = resp.body and resp.body.order_id }, now)
  end
  compact(ex, user)
  return resp
end

--- clob_response(resp): the Polymarket-shaped view of a placement.
function _M.clob_response(resp)
  local b = resp.body
  if resp.status ~= 200 then
    b.success = false
    b.errorMsg = b.message or b.error
    b.orderID = ""
    b.status = "rejected"
    return resp
  end
  local status = ({ FILLED = "matched", PENDING = "live", CANCELLED = "unmatched",
      EXPIRED = "unmatched" })[b.status] or "unmatched"
  if b.status == "PENDING" and b.filled_quantity ~= "0" then status = "live" end
  local filled = fixed.parse(b.filled_quantity, 4)
  local notional = b.notional
  local taking, making
  if b.side == "BUY" then taking, making = fmt_qty(filled), notional
  else taking, making = notional, fmt_qty(filled) end
  return { status = 200, headers = resp.headers, body = {
    success = true, orderID = tostring(b.order_id), status = status, transactID = null,
    errorMsg = "", price = b.limit_price, size = b.requested_quantity, side = b.side,
    takingAmount = taking, makingAmount = making, order = b,
  } }
end

return _M
