-- Order books of the local exchange: per outcome token, levels {price, size} as integers at
-- 1e-4 (fixed.P). bids are sorted by price descending, asks ascending; sizes are > 0.
--
-- Binary markets merge the complement token's book (Polymarket's mint/merge): for outcome o
-- with complement c,
--   effective asks of o = o.asks  U  { 1 - b : b in c.bids }
--   effective bids of o = o.bids  U  { 1 - a : a in c.asks }
-- walk() consumes levels from both sources in price order and can apply the consumption.
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local sha256 = require "polysim.exchange.sha256"

local _M = {}

local ONE = fixed.P
local array = util.array
local fmt_price, fmt_qty = fixed.price, fixed.qty

-- The minimum order size in shares (fixed-point), as books advertise it: "commonly 5 shares"
-- (polysim_sdk scripts/01_balance_and_market.py).
_M.MIN_ORDER_SIZE = 5 * fixed.P

--- complement(m, idx): the complement outcome of a binary market, or nil.
function _M.complement(m, idx)
  if m.binary then return m.outcomes[3 - idx] end
  return nil
end

-- Drops the consumed (size 0) prefix of a level list.
local function compact(list)
  local n, k = #list, 1
  while k <= n and list[k][2] <= 0 do k = k + 1 end
  if k > 1 then
    table.move(list, k, n, 1)
    for i = n - k + 2, n do list[i] = nil end
  end
end

--- walk(m, idx, side, limit, qty, apply): walks the effective book of outcome idx.
--- side "BUY" consumes asks (lowest first, never above limit), "SELL" consumes bids (highest
--- first, never below limit); limit may be nil (no limit). Returns a result table:
---   filled     quantity filled (1e-4)
---   notional   sum of price*size over consumed levels (money units, 1e-8)
---   qpp        sum of size*p*(1-p) (1e-12 units) for the taker fee
---   levels     number of source levels touched
---   best       first effective price on that side (nil when the side is empty)
---   worst      last price consumed
---   limited    true when more liquidity existed but beyond the limit
--- With apply = true the consumed sizes are removed from the books.
function _M.walk(m, idx, side, limit, qty, apply)
  local o = m.outcomes[idx]
  local c = _M.complement(m, idx)
  local buy = side == "BUY"
  local A = buy and o.asks or o.bids
  local B = c and (buy and c.bids or c.asks) or nil
  local na, nb = #A, B and #B or 0
  local i, j = 1, 1
  local left = qty
  local filled, notional, qpp, levels = 0, 0, 0, 0
  local best, worst, limited
  local ia, ib = 0, 0         -- remaining size at the current level of each source (dry run)
  if na > 0 then ia = A[1][2] end
  if nb > 0 then ib = B[1][2] end
  while left > 0 do
    local pa = i <= na and A[i][1] or nil
    local pb = j <= nb and (ONE - B[j][1]) or nil
    local use_a
    if pa and pb then
      if buy then use_a = pa <= pb else use_a = pa >= pb end
    elseif pa then use_a = true
    elseif pb then use_a = false
    else break end
    local p = use_a and pa or pb
    if best == nil then best = p end
    if limit and ((buy and p > limit) or (not buy and p < limit)) then limited = true; break end
    local avail = use_a and ia or ib
    local take = avail < left and avail or left
    filled = filled + take
    notional = notional + p * take
    qpp = qpp + take * (p * (ONE - p))
    left = left - take
    worst = p
    levels = levels + 1
    if use_a then
      if apply then A[i][2] = A[i][2] - take end
      ia = ia - take
      if ia <= 0 then i = i + 1; ia = i <= na and A[i][2] or 0 end
    else
      if apply then B[j][2] = B[j][2] - take end
      ib = ib - take
      if ib <= 0 then j = j + 1; ib = j <= nb and B[j][2] or 0 end
    end
  end
  if best == nil then
    -- report the best price even when nothing could be taken
    local pa = na > 0 and A[1][1] or nil
    local pb = nb > 0 and (ONE - B[1][1]) or nil
    if pa and pb then
      if buy then best = pa < pb and pa or pb else best = pa > pb and pa or pb end
    else best = pa or pb end
  end
  if apply then
    compact(A)
    if B then compact(B) end
  end
  return { filled = filled, notional = notional, qpp = qpp, levels = levels,
           best = best, worst = worst, limited = limited or false }
end

--- best(m, idx): effective best bid and best ask of outcome idx (nil when empty).
function _M.best(m, idx)
  local o = m.outcomes[idx]
  local c = _M.complement(m, idx)
  local bb = o.bids[1] and o.bids[1][1]
  local ba = o.asks[1] and o.asks[1][1]
  if c then
    local cb = c.asks[1] and (ONE - c.asks[1][1])
    local ca = c.bids[1] and (ONE - c.bids[1][1])
    if cb and (not bb or cb > bb) then bb = cb end
    if ca and (not ba or ca < ba) then ba = ca end
  end
  return bb, ba
end

-- Merged, aggregated levels of one side for display: returns an array of {price, size}.
local function merged(m, idx, side, depth, raw)
  local o = m.outcomes[idx]
  local c = not raw and _M.complement(m, idx) or nil
  local buy_side = side == "bids"
  local A = o[side]
  local B = c and (buy_side and c.asks or c.bids) or nil
  local out = {}
  local i, j, na, nb = 1, 1, #A, B and #B or 0
  while #out < depth do
    local pa = i <= na and A[i][1] or nil
    local pb = j <= nb and (ONE - B[j][1]) or nil
    local p, q
    if pa and pb then
      if pa == pb then p, q = pa, A[i][2] + B[j][2]; i = i + 1; j = j + 1
      elseif (buy_side and pa > pb) or (not buy_side and pa < pb) then p, q = pa, A[i][2]; i = i + 1
      else p, q = pb, B[j][2]; j = j + 1 end
    elseif pa then p, q = pa, A[i][2]; i = i + 1
    elseif pb then p, q = pb, B[j][2]; j = j + 1
    else break end
    local last = out[#out]
    if last and last[1] == p then last[2] = last[2] + q else out[#out + 1] = { p, q } end
  end
  return out
end
_M.merged = merged

--- snapshot(m, idx, depth, raw, now_iso): the OrderBookSnapshot response table.
-- snapshot(m, idx, depth, raw, now): the book of one outcome. Besides polysim's own fields it
-- carries Polymarket's OrderBookSummary fields (market, asset_id, tick_size, neg_risk,
-- min_order_size, last_trade_price, hash, epoch-ms timestamp as a string), which
-- polysim_clob_client/client.py _order_book_summary reads.
function _M.snapshot(m, idx, depth, raw, now)
  local o = m.outcomes[idx]
  local bids, asks = merged(m, idx, "bids", depth, raw), merged(m, idx, "asks", depth, raw)
  local jb, ja = array(), array()
  local canon = {}
  for k = 1, #bids do
    jb[k] = { price = fmt_price(bids[k][1]), size = fmt_qty(bids[k][2]) }
    canon[#canon + 1] = "b" .. jb[k].price .. ":" .. jb[k].size
  end
  for k = 1, #asks do
    ja[k] = { price = fmt_price(asks[k][1]), size = fmt_qty(asks[k][2]) }
    canon[#canon + 1] = "a" .. ja[k].price .. ":" .. ja[k].size
  end
  local lt = o.last_trade
  local snap = {
    token_id = o.token_id, market_id = m.condition_id, outcome = o.label,
    market = m.condition_id, asset_id = o.token_id,
    tick_size = fmt_price(m.tick), neg_risk = not m.binary,
    min_order_size = fmt_qty(m.min_size or _M.MIN_ORDER_SIZE),
    last_trade_price = lt and lt.price or util.null,
    bids = jb, asks = ja,
    timestamp = string.format("%d", math.floor(now * 1000)),
    updated_at = util.iso_us(util.to_us(now)),
    spread = util.null, mid = util.null,
  }
  snap.hash = "0x" .. sha256.hex(m.condition_id .. "|" .. o.token_id .. "|" .. table.concat(canon, ","))
  local bb, ba = bids[1] and bids[1][1], asks[1] and asks[1][1]
  if bb and ba then
    snap.spread = fmt_price(ba - bb)
    snap.mid = fixed.format((ba + bb) * (fixed.M // ONE) // 2, 8, 2)
  end
  return snap
end

--- parse_levels(list, side): levels from {{"0.64","100"}, {price=..., size=...}, ...} into a
--- sorted, aggregated level list. Returns nil, message on bad input.
function _M.parse_levels(list, side)
  if list == nil or list == util.null then return {} end
  if type(list) ~= "table" then return nil, side .. " must be a list" end
  local agg, prices = {}, {}
  for k, lv in ipairs(list) do
    if type(lv) ~= "table" then return nil, side .. "[" .. k .. "] must be a level" end
    local ps, qs = lv.price or lv[1], lv.size or lv[2]
    local p = fixed.coerce(ps, 4)
    local q = fixed.coerce(qs, 4)
    if not p or p <= 0 or p >= ONE then return nil, side .. "[" .. k .. "].price out of (0,1)" end
    if not q or q <= 0 then return nil, side .. "[" .. k .. "].size must be > 0" end
    if not agg[p] then prices[#prices + 1] = p; agg[p] = 0 end
    agg[p] = agg[p] + q
  end
  if side == "bids" then table.sort(prices, function(x, y) return x > y end)
  else table.sort(prices) end
  local out = {}
  for k, p in ipairs(prices) do out[k] = { p, agg[p] } end
  return out
end

--- check(m): verifies every book of m is sorted strictly and has positive sizes;
--- returns true or false, message.
function _M.check(m)
  for _, o in ipairs(m.outcomes) do
    for k, lv in ipairs(o.bids) do
      if lv[2] <= 0 or lv[1] <= 0 or lv[1] >= ONE then return false, "bad bid level" end
      if k > 1 and o.bids[k - 1][1] <= lv[1] then return false, "bids not sorted" end
    end
    for k, lv in ipairs(o.asks) do
      if lv[2] <= 0 or lv[1] <= 0 or lv[1] >= ONE then return false, "bad ask level" end
      if k > 1 and o.asks[k - 1][1] >= lv[1] then return false, "asks not sorted" end
    end
  end
  return true
end

return _M
