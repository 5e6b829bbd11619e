-- The API's views of an order: the listed item, the OrderResponse of a placement or cancel,
-- the CLOB-shaped answer, and listing a user's orders (open, or filtered and paged).
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local accounts = require "polysim.exchange.accounts"

local _M = {}

local array, null, opt = util.array, util.null, util.opt
local fmt_price, fmt_qty, fmt_money = fixed.price, fixed.qty, fixed.money

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
