-- Handlers: the underlying spot prices and window strikes (public, like the real service's
-- prices router): GET /prices/live, /prices/live/{symbol}, /prices/ptb/{condition_id|token_id}.
-- Shapes from the SDK (polysim_sdk/client.py get_spot / get_spots / get_price_to_beat and the
-- fixtures in tests/test_native_client.py); shared/api/BRIEF.md has none of these.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local spot = require "polysim.exchange.spot"
local windows = require "polysim.exchange.windows"

local array = util.array

local H = {}

local function spot_view(S, st, now)
  local age = now - S.cur
  if age < 0 then age = 0 end
  return { symbol = st.sym, price = spot.number(S, st.sym, st.p), timestamp = util.iso(S.cur),
           source = windows.SOURCE, age_seconds = math.floor(age * 1000 + 0.5) / 1000,
           stale = age > 30 }
end

function H.spot_live(self, _, _, now)
  local S = windows.model(self, now)
  local prices, syms = {}, array()
  for _, st in ipairs(S.list) do
    prices[st.sym] = spot_view(S, st, now)
    syms[#syms + 1] = st.sym
  end
  return { status = 200, headers = { ["Cache-Control"] = "no-cache" },
           body = { prices = prices, supported_symbols = syms, timestamp = util.iso(math.floor(now)) } }
end

function H.spot_symbol(self, _, _, now, symbol)
  local S = windows.model(self, now)
  local st = S.assets[tostring(symbol):upper()]
  if not st then
    return errors.human(404, "SYMBOL_NOT_FOUND", "Unknown symbol: " .. tostring(symbol):sub(1, 32))
  end
  return { status = 200, headers = { ["Cache-Control"] = "no-cache" }, body = spot_view(S, st, now) }
end

function H.ptb(self, _, _, now, id)
  local U = self.U
  local m = U.by_id[id]
  if not m and U.by_token[id] then m = U.by_token[id][1] end
  if not m or not m.updown then
    return errors.human(404, "MARKET_NOT_FOUND", "Market not found: " .. tostring(id):sub(1, 80))
  end
  local S = windows.model(self, now)
  local k = windows.strike(self, m)
  if not k then
    -- SDK tests/test_native_client.py: a 404 while pending means "retry shortly"
    return errors.human(404, "PTB_NOT_AVAILABLE", "Price-to-beat not yet available for this market",
      { reason = "pending", start_date = util.iso(m.updown.start) })
  end
  local w = m.updown
  return { status = 200, body = { price = spot.number(S, w.asset, k), asset = w.asset,
    start_date = util.iso(w.start), source = windows.PTB_SOURCE, condition_id = m.condition_id } }
end

return H
