-- Handler: GET /prices/stream, the public server-sent-events feed (SDK polysim_sdk/sse.py;
-- the event names and query follow it, shared/api/BRIEF.md has no SSE). Pure Lua: the answer
-- carries `sse`, a session the front door (polysim.serve) attaches to a streamed response;
-- ex:handle alone answers the headers and an empty body.
--
-- Query: crypto=BTC,ETH (default all), crypto_source=chainlink|binance (the simulated feed
-- answers under the source asked for), condition_ids=<id>,<id> (at most 50; unknown ids are
-- listed in the snapshot's `unknown`), background=true (accepted, no effect), _=<anything>.
-- Events (`event:` name, `data:` one JSON object):
--   crypto_price        {type, symbol, price, timestamp, source}  one symbol moved this tick
--   crypto_price_batch  {updates = [crypto_price...], count}      several symbols moved
--   snapshot            {markets = [market_price...], orderbooks = [orderbook...], unknown, timestamp}
--                       first, when condition_ids were given
--   market_price        the WebSocket price message of a subscribed market
--   orderbook           {market, asset_id, outcome, bids, asks, timestamp} per outcome, with it
--   window              the Up/Down lifecycle message (windows.lua): subscribed markets, and
--                       every window of the crypto filter's assets
--   keepalive           {ts, n} (the front door sends one every 5 s)
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local spot = require "polysim.exchange.spot"
local book = require "polysim.exchange.book"
local markets = require "polysim.exchange.markets"
local windows = require "polysim.exchange.windows"
local R = require "polysim.exchange.request"

local array = util.array
local H = {}

local function list_param(req, name)
  local v = R.q_str(req, name)
  if not v or v == "" then return nil end
  local out = {}
  for item in v:gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    if item ~= "" then out[#out + 1] = item end
  end
  return out
end

local session = {}
session.__index = session

local function frame(event, data, encode)
  return "event: " .. event .. "\ndata: " .. encode(data) .. "\n\n"
end

-- One market's orderbook events.
local function books(m, now)
  local now_iso = util.iso_us(util.to_us(now))
  local out = {}
  for idx, o in ipairs(m.outcomes) do
    local b = book.snapshot(m, idx, 10, false, now)
    out[#out + 1] = { market = m.condition_id, condition_id = m.condition_id, asset_id = o.token_id,
                      outcome = o.label, bids = b.bids, asks = b.asks, timestamp = now_iso }
  end
  return out
end

--- session:attach(write, encode, finish): starts the feed; write(text) -> false once the
--- client is gone; encode(table) -> JSON text; finish() ends the response (after what is
--- written). Sends the snapshot and the current spot prices. Open sessions are the keys of
--- ex.sse_sessions (weak).
function session:attach(write, encode, finish)
  local ex = self.ex
  self.write, self.encode, self.finish_fn = write, encode, finish
  ex.sse_sessions = ex.sse_sessions or setmetatable({}, { __mode = "k" })
  ex.sse_sessions[self] = true
  local now = ex.clock()
  local now_iso = util.iso_us(util.to_us(now))
  if self.cids then
    local snap = { markets = array(), orderbooks = array(), unknown = array(), timestamp = now_iso }
    for _, id in ipairs(self.cids) do
      local m = ex.U.by_id[id]
      if m then
        snap.markets[#snap.markets + 1] = markets.ws_price(m)
        for _, b in ipairs(books(m, now)) do snap.orderbooks[#snap.orderbooks + 1] = b end
      else
        snap.unknown[#snap.unknown + 1] = id
      end
    end
    self:send("snapshot", snap)
  end
  local S = windows.model(ex, now)
  local ups = {}
  for _, st in ipairs(S.list) do
    ups[#ups + 1] = { type = "crypto_price", symbol = st.sym, price = spot.number(S, st.sym, st.p),
                      timestamp = util.iso(S.cur), source = windows.SOURCE }
  end
  self:on_spot(ups)
  self.fns = {
    spot = function(u) self:on_spot(u) end,
    price = function(id, msg) self:on_price(id, msg) end,
    window = function(id, msg) self:on_window(id, msg) end,
  }
  for ev, fn in pairs(self.fns) do ex:on(ev, fn) end
end

function session:send(event, data)
  if self.closed then return false end
  if self.write(frame(event, data, self.encode)) == false then self:detach(); return false end
  return true
end

function session:on_spot(ups)
  local list = {}
  for _, u in ipairs(ups) do
    if not self.crypto or self.crypto[u.symbol] then
      list[#list + 1] = self.source and { type = u.type, symbol = u.symbol, price = u.price,
        timestamp = u.timestamp, source = self.source } or u
    end
  end
  if #list == 1 then self:send("crypto_price", list[1])
  elseif #list > 1 then self:send("crypto_price_batch", { updates = array(list), count = #list }) end
end

function session:on_price(id, msg)
  if not self.cid_set or not self.cid_set[id] then return end
  if msg.type == "window" then return self:send("window", msg) end
  if not self:send("market_price", msg) then return end
  local m = self.ex.U.by_id[id]
  if m then
    for _, b in ipairs(books(m, self.ex.clock())) do self:send("orderbook", b) end
  end
end

function session:on_window(id, msg)
  if self.cid_set and self.cid_set[id] then return end      -- already sent as a price event
  if self.crypto and not self.crypto[msg.asset] then return end
  self:send("window", msg)
end

function session:keepalive()
  self.n = self.n + 1
  return self:send("keepalive", { ts = util.iso(math.floor(self.ex.clock())), n = self.n })
end

--- session:finish(): the server ends this stream cleanly (the client reconnects).
function session:finish()
  local fn = self.finish_fn
  self:detach()
  if fn then fn() end
end

--- session:detach(): stops the feed (idempotent).
function session:detach()
  if self.closed then return end
  self.closed = true
  if self.ex.sse_sessions then self.ex.sse_sessions[self] = nil end
  if self.fns then for ev, fn in pairs(self.fns) do self.ex:off(ev, fn) end end
end

local SOURCES = { chainlink = "chainlink_rtds", binance = "binance" }

function H.prices_stream(self, _, req)
  local crypto
  local syms = list_param(req, "crypto")
  if syms then
    crypto = {}
    for _, s in ipairs(syms) do
      local u = s:upper()
      if not spot.BY_SYM[u] then
        errors.invalid({ "query", "crypto" }, "Unknown symbol '" .. s:sub(1, 16) .. "'", "enum", s)
      end
      crypto[u] = true
    end
  end
  local source = R.q_str(req, "crypto_source")
  if source and not SOURCES[source:lower()] then
    errors.invalid({ "query", "crypto_source" }, "Input should be 'chainlink' or 'binance'", "enum", source)
  end
  local cids = list_param(req, "condition_ids")
  if cids and #cids > 50 then
    errors.invalid({ "query", "condition_ids" }, "At most 50 condition ids", "too_long", #cids)
  end
  local cid_set
  if cids then cid_set = {}; for _, id in ipairs(cids) do cid_set[id] = true end end
  local sse = setmetatable({ ex = self, crypto = crypto, source = source and SOURCES[source:lower()],
                             cids = cids, cid_set = cid_set, n = 0 }, session)
  return { status = 200, content_type = "text/event-stream", body = "",
           headers = { ["Cache-Control"] = "no-cache", ["X-Accel-Buffering"] = "no" }, sse = sse }
end

return H
