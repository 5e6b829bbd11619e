-- The Up/Down side of a backtest: the recording's windows, spot ticks and window lifecycle
-- messages (updown, spot and window records, polysim.backtest.data) on the in-process
-- exchange and to the strategy.
--
-- The exchange keeps its own Up/Down code: the recorded windows become its window markets
-- (markets.updown_market, under the recorded condition ids: U.window_ids), its spot model is
-- fed the recorded ticks instead of walking (spot.feed), so GET /markets/updown, /prices/live
-- and /prices/ptb answer from the recording; a recorded resolve resolves the window with the
-- recorded outcome, a recorded settle pays it through the exchange's own settlement
-- (windows.after), as live. The exchange's tick never runs in a backtest: its fair-value
-- repricing and lifecycle clock stay out, the recorded prices and messages drive instead.
-- The strategy gets the ticks and messages through the runtime's spot feed (a spot_source),
-- the way the live SSE stream delivers them: only the subscribed underlyings'.
local spot = require "polysim.exchange.spot"
local windows = require "polysim.exchange.windows"
local markets = require "polysim.exchange.markets"
local walk = require "polysim.exchange.markets.walk"
local core = require "polysim.core"
local data = require "polysim.backtest.data"

local _M = {}

local LEN = {}
for _, iv in ipairs(markets.UPDOWN_INTERVALS) do LEN[iv[1]:upper()] = iv end

local function model(ex, t)
  local U = ex.U
  if not U.spot then
    windows.model(ex, t)
    U.spot.fed = true -- from the first Up/Down record on, spot is the recording's
    -- and so are the boundary prices: none of the walk's (its ticks were never recorded)
    for _, st in ipairs(U.spot.list) do st.at = {} end
  end
  U.window_ids = U.window_ids or {}
  return U.spot
end

local function units(S, asset, v)
  local st = S.assets[asset]
  v = tonumber(v)
  if not st or not v then return nil end
  return math.floor(v * st.unit + 0.5)
end

--- new(ex): the state of one backtest; B.source is the runtime's spot_source factory.
function _M.new(ex)
  local B = { ex = ex, syms = {}, on_message = nil, last = {} }
  local function tick(sym, rec)
    B.on_message { event = "crypto_price", data = { symbol = sym, price = rec.price, timestamp = rec.timestamp,
      source = rec.source } }
  end
  B.tick = tick
  function B.source(on_message)
    B.on_message = on_message
    return {
      -- subscribing delivers the underlying's current spot at once, as the live stream's
      -- first message does (a live btc_updown bet on it, the replay one tick later)
      subscribe = function(_, syms)
        for _, s in ipairs(syms) do
          s = s:upper()
          B.syms[s] = true
          if B.last[s] then tick(s, B.last[s]) end
        end
      end,
      unsubscribe = function(_, syms) for _, s in ipairs(syms) do B.syms[s:upper()] = nil end end,
      close = function() B.syms = {} end,
    }
  end
  return B
end

-- A JSON list, or the JSON text of one (the nested markets[] fields are strings: SDK
-- scripts/04_btc_updown.py reads them with json.loads).
local function list_of(v)
  if type(v) == "string" then
    local ok, d = pcall(core.json_decode, v)
    v = ok and d or nil
  end
  return type(v) == "table" and v or nil
end

-- The row's token ids as {Up's, Down's}: the nested market's token_ids (or clob_token_ids)
-- beside its outcomes, else the row's tokens [{outcome, token_id}] (the MarketSummary's);
-- {} without them.
local function tokens(w)
  local out = {}
  local nested = type(w.markets) == "table" and w.markets[1]
  local ids = type(nested) == "table" and (list_of(nested.token_ids) or list_of(nested.clob_token_ids))
  local labels = ids and list_of(nested.outcomes) or { "Up", "Down" }
  if not ids then
    ids, labels = {}, {}
    for i, o in ipairs(list_of(w.tokens) or {}) do
      if type(o) == "table" then ids[i], labels[i] = o.token_id, o.outcome end
    end
  end
  for i, label in ipairs(labels) do
    local k = tostring(label):lower() == "up" and 1 or tostring(label):lower() == "down" and 2
    local id = ids[i]
    if k and (type(id) == "string" or math.type(id) == "integer") then out[k] = tostring(id) end
  end
  return out
end

--- updown(B, rec, path, n): a recorded window becomes the exchange's window market, under its
--- recorded condition id and token ids.
function _M.updown(B, rec, path, n)
  local ex, w = B.ex, rec.window
  local S = model(ex, rec.t)
  local asset, iv = w.asset:upper(), LEN[w.interval:upper()]
  if not S.assets[asset] then data.fail(path, n, "unknown asset " .. w.asset) end
  if not iv then data.fail(path, n, "unknown interval " .. w.interval) end
  local start, stop = markets.parse_time(w.start_date), markets.parse_time(w.end_date)
  if not start or not stop or stop - start ~= iv[2] then
    data.fail(path, n, "window start_date/end_date do not span one " .. iv[1] .. " interval")
  end
  local U = ex.U
  U.window_ids[asset .. "|" .. iv[1] .. "|" .. start] = w.condition_id
  U.window_tokens = U.window_tokens or {}
  U.window_tokens[w.condition_id] = tokens(w)
  local name = spot.BY_SYM[asset][2]
  local m = markets.updown_market(U, asset, name, iv[1], iv[2], start, rec.t)
  local u = m.updown
  if w.price_to_beat ~= nil and w.price_to_beat ~= core.null then u.strike = units(S, asset, w.price_to_beat) end
  u.resolver = function() return u.recorded_outcome or windows.outcome(ex, m) end
  -- the recorded quotes, where the row has them (price records move them from then on)
  local up, down = tonumber(w.up_price), tonumber(w.down_price)
  if up and down and up > 0 and up < 1 then
    markets.set_price(m, 1, math.floor(up * 10000 + 0.5), m.rng, rec.t)
  end
  return m
end

--- spot(B, rec): one recorded tick: the exchange's spot, then the strategy's on_spot.
function _M.spot(B, rec, deliver)
  local ex = B.ex
  local S = model(ex, rec.t)
  local sym = rec.symbol:upper()
  local t = rec.timestamp and markets.parse_time(rec.timestamp) or rec.t
  spot.feed(S, sym, rec.price, t)
  B.last[sym] = rec
  if deliver and B.on_message and B.syms[sym] then B.tick(sym, rec) end
end

--- window(B, rec, deliver, rt): one recorded lifecycle message: the exchange resolves or
--- settles the window as live, then the strategy's on_window (subscribed underlying or market).
function _M.window(B, rec, deliver, rt)
  local ex, msg = B.ex, rec.msg
  local m = ex.U.by_id[msg.market_id]
  local u = m and m.updown
  if u then
    local S = model(ex, rec.t)
    if msg.price_to_beat ~= nil and msg.price_to_beat ~= core.null and not u.strike then
      u.strike = units(S, u.asset, msg.price_to_beat)
    end
    local ev = msg.event
    if ev == "resolve" or ev == "settle" then
      local out = msg.resolved_outcome
      if out ~= nil and out ~= core.null then u.recorded_outcome = out end
      if not m.resolved_outcome then walk.resolve_updown(m, ex.U) end
    end
    if ev == "settle" then windows.after(ex, rec.t) end
  end
  if not deliver or not B.on_message then return end
  local sym = tostring(msg.asset or msg.symbol or ""):upper()
  if B.syms[sym] or (rt and rt.subs and rt.subs[msg.market_id]) then
    B.on_message { event = "window", data = msg }
  end
end

return _M
