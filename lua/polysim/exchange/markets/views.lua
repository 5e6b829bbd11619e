-- The API's views of a market: LivePrice, MarketSummary, MarketDetail, the WebSocket price
-- message, and candles from the minute samples.
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local book = require "polysim.exchange.book"
local base = require "polysim.exchange.markets.base"

local _M = {}

local ONE = fixed.P
local array, null, opt = util.array, util.null, util.opt
local fmt_price, fmt_money = fixed.price, fixed.money
local DAY = base.DAY


local function outcome_prices(m)
  local out = array()
  for i, o in ipairs(m.outcomes) do
    out[i] = { label = o.label, price = fmt_price(o.price), token_id = o.token_id }
  end
  return out
end

--- live_price(m): the LivePrice table.
function _M.live_price(m)
  local p1 = m.outcomes[1].price
  local sell = m.binary and m.outcomes[2].price or ONE - p1
  return {
    buy = fmt_price(p1), sell = fmt_price(sell), volume = fmt_money(m.volume),
    updated_at = util.iso_us(m.updated_us), source = "orderbook", outcomes = outcome_prices(m),
  }
end

local function tokens(m)
  local t = array()
  for i, o in ipairs(m.outcomes) do t[i] = { outcome = o.label, token_id = o.token_id } end
  return t
end

local function labels(m)
  local l = array()
  for i, o in ipairs(m.outcomes) do l[i] = o.label end
  return l
end

--- summary(m, now): the MarketSummary table.
function _M.summary(m, now)
  local st = base.state(m, now)
  local fee = fixed.format(m.fee_bps, 4, 2)
  return {
    id = m.condition_id, condition_id = m.condition_id, slug = m.slug, question = m.question,
    outcomes = labels(m),
    last_trade_price = m.last_trade and m.last_trade.price or null,
    active = m.active, closed = m.closed or st ~= "open", is_hot = m.is_hot,
    image_url = opt(m.image_url), live_price = _M.live_price(m),
    category = m.category, fee_rate = fee, end_date = m.end_date and util.iso(m.end_date) or null,
    event_group_id = opt(m.event_id), volume = fmt_money(m.volume),
    tokens = tokens(m),
  }
end

--- detail(m, now): the MarketDetail table.
function _M.detail(m, now)
  local d = _M.summary(m, now)
  d.event_title = opt(m.event_title)
  d.resolved_outcome = opt(m.resolved_outcome)
  d.description = m.description or ("This market resolves according to its question: " .. m.question)
  d.tick_size = fmt_price(m.tick)
  d.status = base.state(m, now)
  d.created_at = m.created_at and util.iso(m.created_at) or null
  d.neg_risk = not m.binary
  return d
end

-- The detail's JSON text, kept per market between changes (perf, issue 13: building the
-- table and encoding it were ~65k of the ~270k instructions of a GET over HTTP in callgrind).
-- The key is every value summary/detail read, so any change to the market, by whatever
-- path, is a miss: keep detail_key in step with the two functions above.
local encode = (function()
  local okc, core = pcall(require, "polysim.core")
  return okc and type(core) == "table" and core.json_encode or nil
end)()
local texts = setmetatable({}, { __mode = "k" })  -- market -> { key = {...}, text = "..." }

-- The values go in as they are (nil included: k.n counts them); same_key compares the same
-- values in the same order without building a key (a hit is the common case).
local function detail_key(m, now)
  local lt = m.last_trade
  local k = { m.condition_id, m.slug, m.question, lt, lt and lt.price,
    m.active, m.closed, base.state(m, now), m.is_hot, m.image_url,
    m.binary, m.volume, m.updated_us, m.category, m.fee_bps,
    m.end_date, m.event_id, m.event_title, m.resolved_outcome,
    m.description, m.tick, m.created_at, #m.outcomes }
  local n = 23
  for _, o in ipairs(m.outcomes) do
    k[n + 1], k[n + 2], k[n + 3] = o.label, o.price, o.token_id
    n = n + 3
  end
  k.n = n
  return k
end

local function same_key(k, m, now)
  local lt = m.last_trade
  if k[1] ~= m.condition_id or k[2] ~= m.slug or k[3] ~= m.question or k[4] ~= lt
    or k[5] ~= (lt and lt.price) or k[6] ~= m.active or k[7] ~= m.closed or k[8] ~= base.state(m, now)
    or k[9] ~= m.is_hot or k[10] ~= m.image_url or k[11] ~= m.binary or k[12] ~= m.volume
    or k[13] ~= m.updated_us or k[14] ~= m.category or k[15] ~= m.fee_bps or k[16] ~= m.end_date
    or k[17] ~= m.event_id or k[18] ~= m.event_title or k[19] ~= m.resolved_outcome
    or k[20] ~= m.description or k[21] ~= m.tick or k[22] ~= m.created_at then
    return false
  end
  local outs = m.outcomes
  local no = #outs
  if k[23] ~= no or k.n ~= 23 + 3 * no then return false end
  for i = 1, no do
    local o, j = outs[i], 20 + 3 * i
    if k[j + 1] ~= o.label or k[j + 2] ~= o.price or k[j + 3] ~= o.token_id then return false end
  end
  return true
end

--- detail_json(m, now): the JSON text of detail(m, now) (nil without the C core's encoder).
function _M.detail_json(m, now)
  if not encode then return nil end
  local c = texts[m]
  if c and same_key(c.key, m, now) then return c.text end
  local text = encode(_M.detail(m, now))
  texts[m] = { key = detail_key(m, now), text = text }
  return text
end

--- ws_price(m): the WebSocket price message. Besides the LivePrice fields it carries the
--- last trade (last_trade, last_trade_size, last_trade_side) and per outcome best_bid /
--- best_ask / last_trade, as the live service's frames do (polysim_sdk/ws.py,
--- polysim_polymarket/streams/). emit_ts_ms is stamped when it is sent (serve.lua).
function _M.ws_price(m)
  local lp = _M.live_price(m)
  local bb, ba = book.best(m, 1)
  lp.type = "price"
  lp.market_id = m.condition_id
  lp.condition_id = m.condition_id
  lp.best_bid = bb and fmt_price(bb) or null
  lp.best_ask = ba and fmt_price(ba) or null
  local lt = m.last_trade
  lp.last_trade = lt and lt.price or null
  lp.last_trade_size = lt and fixed.qty(lt.qty) or null
  lp.last_trade_side = lt and lt.side or null
  lp.last_trade_outcome = lt and m.outcomes[lt.idx].label or null
  for i, o in ipairs(lp.outcomes) do
    local ob, oa = book.best(m, i)
    local olt = m.outcomes[i].last_trade
    o.best_bid = ob and fmt_price(ob) or null
    o.best_ask = oa and fmt_price(oa) or null
    o.last_trade = olt and olt.price or null
  end
  return lp
end

-- Candles --------------------------------------------------------------------------------
local INTERVALS = {
  ["1h"] = { 3600, 60 }, ["6h"] = { 21600, 300 }, ["1d"] = { DAY, 3600 },
  ["1w"] = { 7 * DAY, 6 * 3600 }, ["max"] = { nil, DAY },
}
_M.INTERVALS = INTERVALS

--- candles(m, idx, interval, now): array of {t, o, h, l, c}; nil for an unknown interval.
function _M.candles(m, idx, interval, now)
  local spec = INTERVALS[interval]
  if not spec then return nil end
  local range, bucket = spec[1], spec[2]
  local ht = m.hist_t
  local hp = m.hist_p[(m.binary and 1) or idx]
  local invert = m.binary and idx == 2
  local from = range and (now - range) or -math.huge
  -- binary search for the first sample >= from
  local lo, hi = 1, #ht + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if ht[mid] < from then lo = mid + 1 else hi = mid end
  end
  local out = array()
  local cur, o, h, l, c
  for k = lo, #ht do
    local v = hp[k]
    if invert then v = ONE - v end
    local b = ht[k] // bucket * bucket
    if b ~= cur then
      if cur then out[#out + 1] = { t = cur, o = fmt_price(o), h = fmt_price(h), l = fmt_price(l),
          c = fmt_price(c) } end
      cur, o, h, l, c = b, v, v, v, v
    else
      if v > h then h = v end
      if v < l then l = v end
      c = v
    end
  end
  if cur then out[#out + 1] = { t = cur, o = fmt_price(o), h = fmt_price(h), l = fmt_price(l), c = fmt_price(c) } end
  return out
end

return _M
