-- Handlers: the crypto Up/Down windows, GET /v1/markets/updown. The answer is the payload
-- object the SDK reads (polysim_sdk/client.py get_updown / list_updown, scripts/04_btc_updown.py),
-- followed over shared/api/BRIEF.md's bare array: markets[], crypto_prices, available_assets,
-- available_intervals, interval_counts, asset_counts, grouped_by_asset, grouped_by_interval,
-- total.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local markets = require "polysim.exchange.markets"
local spot = require "polysim.exchange.spot"
local windows = require "polysim.exchange.windows"
local fixed = require "polysim.exchange.fixed"
local R = require "polysim.exchange.request"

local array, null = util.array, util.null
local floor = math.floor
local q_str, q_int, q_enum, ok = R.q_str, R.q_int, R.q_enum, R.ok

local H = {}

local ASSETS = {}
for _, a in ipairs(spot.ASSETS) do ASSETS[a[1]] = a end
local IV_UPPER = {}
for _, iv in ipairs(markets.UPDOWN_INTERVALS) do IV_UPPER[iv[1]:upper()] = iv end

local function json_list(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = '"' .. v .. '"' end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function hhmm(t) return os.date("!%H:%M", t) end

--- row(ex, m, now): one window as the SDK reads it.
function H.updown_row(ex, m, now)
  local s = markets.updown_view(m, now)
  local w = m.updown
  local S = ex.U.spot
  local k = windows.strike(ex, m)
  local ph = windows.phase(m, now)
  s.id = m.condition_id
  s.start_date, s.end_date = util.iso(w.start), util.iso(w.start + w.len)
  s.time_range = w.len >= 86400 and (os.date("!%Y-%m-%d", w.start) .. " UTC")
    or (hhmm(w.start) .. "-" .. hhmm(w.start + w.len) .. " UTC")
  s.resolved = m.resolved_outcome ~= nil
  s.active = m.active and not s.resolved
  s.closed = s.closed or ph ~= "open" and ph ~= "scheduled"
  s.status = ph
  s.event_metadata_ptb = k and spot.number(S, w.asset, k) or null
  s.group_item_threshold = k and spot.text(S, w.asset, k) or null
  s.price_to_beat = s.event_metadata_ptb
  local labels, prices, tokens = {}, {}, {}
  for i, o in ipairs(m.outcomes) do
    labels[i], prices[i], tokens[i] = o.label, fixed.price(o.price), o.token_id
  end
  s.markets = array { {
    id = m.condition_id, condition_id = m.condition_id, question = m.question, slug = m.slug,
    outcomes = json_list(labels), outcome_prices = json_list(prices), token_ids = json_list(tokens),
    clob_token_ids = json_list(tokens), active = s.active, closed = s.closed,
    group_item_threshold = s.group_item_threshold,
  } }
  return s
end

--- crypto_prices(ex, now): {SYM = {symbol, price, source, timestamp, change_24h}}.
function H.crypto_prices(ex, now)
  local S = windows.model(ex, now)
  local out = {}
  for _, st in ipairs(S.list) do
    local ref = spot.at(S, st.sym, floor((now - 86400) / 300) * 300) or st.open
    out[st.sym] = { symbol = st.sym, price = spot.number(S, st.sym, st.p), source = windows.SOURCE,
      timestamp = util.iso(S.cur),
      change_24h = floor((st.p - ref) * 10000 / ref + 0.5) / 100 }
  end
  return out
end

function H.updown(self, _, req, now)
  local asset = q_enum(req, "asset", ASSETS, true)
  local iv = q_str(req, "interval")
  if iv and not IV_UPPER[iv:upper()] then
    errors.invalid({ "query", "interval" }, "Input should be '5M', '15M', '1H', '4H' or 'daily'", "enum", iv)
  end
  local limit = q_int(req, "limit", 10, 1, 100)
  windows.model(self, now)
  local rows = {}
  for _, a in ipairs(spot.ASSETS) do
    if not asset or a[1] == asset then
      for _, ivl in ipairs(markets.UPDOWN_INTERVALS) do
        if not iv or ivl[1]:upper() == iv:upper() then
          local len = ivl[2]
          local start = floor(now / len) * len
          for k = 0, limit - 1 do
            rows[#rows + 1] = { a, ivl, start + k * len }
          end
        end
      end
    end
  end
  table.sort(rows, function(x, y)
    local ex, ey = x[3] + x[2][2], y[3] + y[2][2]
    if ex ~= ey then return ex < ey end
    if x[2][2] ~= y[2][2] then return x[2][2] < y[2][2] end
    return x[1][1] < y[1][1]
  end)
  local out = array()
  local by_asset, by_iv, a_counts, iv_counts = {}, {}, {}, {}
  for k = 1, math.min(limit, #rows) do
    local row = rows[k]
    local m = windows.window(self, row[1], row[2], row[3], now)
    local v = H.updown_row(self, m, now)
    out[k] = v
    local an, ivn = row[1][1], row[2][1]
    by_asset[an] = by_asset[an] or array(); table.insert(by_asset[an], v)
    by_iv[ivn] = by_iv[ivn] or array(); table.insert(by_iv[ivn], v)
    a_counts[an] = (a_counts[an] or 0) + 1
    iv_counts[ivn] = (iv_counts[ivn] or 0) + 1
  end
  local av_assets, av_ivs = array(), array()
  for _, a in ipairs(spot.ASSETS) do if a_counts[a[1]] then av_assets[#av_assets + 1] = a[1] end end
  for _, ivl in ipairs(markets.UPDOWN_INTERVALS) do
    if iv_counts[ivl[1]] then av_ivs[#av_ivs + 1] = ivl[1] end
  end
  return ok {
    markets = out, total = #out, crypto_prices = H.crypto_prices(self, now),
    available_assets = av_assets, available_intervals = av_ivs,
    asset_counts = a_counts, interval_counts = iv_counts,
    grouped_by_asset = by_asset, grouped_by_interval = by_iv,
  }
end

return H
