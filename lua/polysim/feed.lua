-- Feeds: the one adapter between the strategy runtime and the price/fill streams.
--
-- open(rt) returns an object with subscribe(ids), unsubscribe(ids) and close(); it calls
-- rt:deliver(msg) for every price and fill message, and rt:feed_event(ev) for stream events.
-- It uses the WebSocket streams (client:prices_stream for subscribed markets, one
-- client:executions_stream for fills). When they are not available, or close for good (no
-- key, a rejected key), or feeds.poll_only is set, it polls instead: prices of subscribed
-- markets every second (POST /v1/prices/batch) and new fills (GET /v1/account/history).

local ploop = require "polysim.loop"

local ipairs, pairs, pcall, tostring, type = ipairs, pairs, pcall, tostring, type
local spawn = ploop.spawn

local feeds = { poll_only = false } -- poll_only: never use the streams (specs, restricted tiers)

function feeds.open(rt, poll_only)
  local client = rt.client
  if not client then return nil end
  if client.prices_stream and not (poll_only or feeds.poll_only) then
    local ok, feed = pcall(feeds.streams, rt)
    if ok and feed then return feed end
    rt:_log("warn", "feed", "streams unavailable (" .. tostring(feed) .. "); polling instead")
  end
  return feeds.poll(rt)
end

function feeds.streams(rt)
  local client = rt.client
  local feed = { prices = nil, fills = nil, fallback = nil, closing = false }
  local function on_msg(msg) rt:deliver(msg) end
  local function close_streams()
    feed.closing = true
    if feed.prices then feed.prices:close() end
    if feed.fills then feed.fills:close() end
  end
  -- A stream that closes for good on its own (no token to be had: no key, a bad key, a
  -- tier without streams) hands over to polling, so the strategy still gets its events.
  local function on_event(ev)
    if ev.type == "closed" then
      if feed.closing or feed.fallback then return end
      rt:_log("warn", "feed", "stream closed (" .. tostring(ev.error or ev.reason) .. "); polling instead")
      close_streams()
      feed.fallback = feeds.poll(rt)
      return
    end
    rt:feed_event(ev)
  end
  feed.fills = client:executions_stream { on_fill = on_msg, on_event = on_event }
  function feed.subscribe(_, ids)
    if feed.fallback then return feed.fallback:subscribe(ids) end
    if feed.prices then return feed.prices:subscribe(ids) end
    feed.prices = client:prices_stream { markets = ids, on_price = on_msg, on_event = on_event,
                                         on_window = function(msg) feeds.window(rt, msg) end }
  end
  function feed.unsubscribe(_, ids)
    if feed.fallback then return feed.fallback:unsubscribe(ids) end
    if feed.prices then return feed.prices:unsubscribe(ids) end
  end
  function feed.close()
    close_streams()
    if feed.fallback then feed.fallback:close() end
  end
  return feed
end

-- The polling fallback: prices of subscribed markets every `interval` seconds (an event per
-- market whose buy or sell price changed), new fills from the trade history.
function feeds.poll(rt, interval)
  interval = interval or 1
  local client = rt.client
  local last = {}       -- market id -> "buy/sell"
  local seen = nil      -- order ids already reported (nil until the first history read)
  local closed = false
  local busy
  local function poll_prices()
    local ids = rt:subscriptions()
    for i = 1, #ids, 20 do
      local chunk = { table.unpack(ids, i, math.min(i + 19, #ids)) }
      local list, err = client:prices(chunk)
      if closed then return end
      if not list then
        rt:_log("warn", "feed", "price poll failed: " .. tostring(err))
        return
      end
      for _, p in ipairs(list) do
        local id = p.condition_id or p.market_id
        if id and p.buy and p.sell then
          local key = tostring(p.buy) .. "/" .. tostring(p.sell)
          if last[id] ~= key then
            last[id] = key
            rt:deliver { type = "price", market_id = id, buy = p.buy, sell = p.sell,
              outcomes = p.outcomes, volume = p.volume, updated_at = p.updated_at, source = "poll" }
          end
        end
      end
    end
  end
  local function poll_fills(baseline)
    local cur = rt.current
    if not baseline and not (cur and cur.mod.on_fill) then return end
    local list, err = client:history_page { limit = 50 }
    if closed then return end
    if not list then
      rt:_log("debug", "feed", "fill poll failed: " .. tostring(err))
      return
    end
    local first = seen == nil
    seen = seen or {}
    for i = #list, 1, -1 do -- oldest first
      local h = list[i]
      local key = h.trade_id and ("t" .. tostring(h.trade_id))
        or (tostring(h.order_id or h.id) .. "@" .. tostring(h.filled_at) .. "#" .. tostring(h.quantity))
      if not seen[key] then
        seen[key] = true
        if not first then
          rt:deliver { type = "fill", order_id = h.order_id or h.id, market_id = h.market_id,
            side = h.side, outcome = h.outcome, price = h.price, quantity = h.quantity,
            filled_at = h.filled_at, client_order_id = h.client_order_id, fee = h.fee, source = "poll" }
        end
      end
    end
  end
  -- The fills already in the history are not news: read them once now, as the baseline.
  busy = true
  spawn(function()
    pcall(poll_fills, true)
    busy = false
  end)
  local cancel = ploop.every(interval, function()
    if busy or closed then return end
    busy = true
    spawn(function()
      local ok, err = pcall(function()
        if rt.nsubs > 0 then poll_prices() end
        poll_fills()
      end)
      busy = false
      if not ok then rt:_log("warn", "feed", "poll failed: " .. tostring(err)) end
    end)
  end)
  return {
    subscribe = function() end,
    unsubscribe = function(_, ids) for _, id in ipairs(ids) do last[id] = nil end end,
    close = function() closed = true; cancel() end,
  }
end

---------------------------------------------------------------------------------------------
-- Spot feeds (Up/Down bots): underlying prices and window lifecycle events.
--
-- A spot source is any object with subscribe(symbols), unsubscribe(symbols) and close(),
-- made by a factory source(on_message, rt); it calls on_message(ev) with SSE-shaped events
-- ev = { event = name, data = table } as GET /prices/stream sends them: crypto_price (data =
-- {symbol, price, timestamp, source}), crypto_price_batch (data.updates = {tick, ...}),
-- window (data.event = "open" | "close" | "resolve" | "settle"), keepalive, and others
-- (ignored). feeds.spot(rt, factory) wraps one and turns its events into rt:deliver calls
-- ({type = "spot", ...} and {type = "window", ...}). The default factory is
-- feeds.spot_stream_source: client:spot_stream (polysim.sse), reopened with the new symbol
-- set when the subscriptions change.

local function upper_list(set)
  local list = {}
  for sym in pairs(set) do list[#list + 1] = sym end
  table.sort(list)
  return list
end

function feeds.spot_stream_source(on_message, rt)
  local client = rt.client
  if not (client and client.spot_stream) then return nil, "the client has no spot_stream" end
  local src = { syms = {}, stream = nil }
  local function reopen()
    if src.stream then pcall(src.stream.close, src.stream) end
    src.stream = nil
    local list = upper_list(src.syms)
    if #list == 0 then return end
    -- the subscribed markets' windows too (GET /prices/stream takes at most 50 ids; the
    -- WebSocket feed brings the windows of all of them, feeds.window drops the duplicates)
    local ids = { table.unpack(rt:subscriptions(), 1, 50) }
    src.stream = client:spot_stream { crypto = list, condition_ids = #ids > 0 and ids or nil,
                                      on_message = on_message, on_event = function(ev) rt:feed_event(ev) end }
  end
  function src.subscribe(_, syms)
    for _, sym in ipairs(syms) do src.syms[sym] = true end
    reopen()
  end
  function src.unsubscribe(_, syms)
    for _, sym in ipairs(syms) do src.syms[sym] = nil end
    reopen()
  end
  function src.close()
    src.syms = {}
    reopen()
  end
  return src
end

-- Window messages' lifecycle names, as the exchange or the SDK may spell them.
local WINDOW_EVENTS = { open = "open", opened = "open", close = "close", closed = "close",
  resolve = "resolve", resolved = "resolve", settle = "settle", settled = "settle" }

-- Lifecycle events already delivered, per runtime: market id .. "|" .. event -> true (the
-- newest 256; a window's event may come over both the SSE and the WebSocket feed).
local delivered = setmetatable({}, { __mode = "k" })

--- window(rt, d): delivers one window message (as the exchange sends it: event, market_id,
--- condition_id, asset, ...) as {type = "window", event = open|close|resolve|settle,
--- market_id, symbol (the asset, upper case), ...}, once per window and event.
function feeds.window(rt, d)
  if type(d) ~= "table" then return end
  local kind = WINDOW_EVENTS[d.event or d.status]
  if not kind then return end
  local w = {}
  for k, v in pairs(d) do w[k] = v end
  w.type, w.event = "window", kind
  w.market_id = w.market_id or w.condition_id
  if w.symbol or w.asset then w.symbol = tostring(w.symbol or w.asset):upper() end
  if w.market_id ~= nil then
    local seen = delivered[rt]
    if not seen then seen = { n = 0, order = {} }; delivered[rt] = seen end
    local key = tostring(w.market_id) .. "|" .. kind
    if seen[key] then return end
    seen[key] = true
    seen.n = seen.n + 1
    seen.order[seen.n] = key
    if seen.n > 256 then
      seen[seen.order[seen.n - 256]] = nil
      seen.order[seen.n - 256] = nil
    end
  end
  rt:deliver(w)
end

function feeds.spot(rt, factory)
  factory = factory or feeds.spot_stream_source
  local function tick(d)
    if type(d) == "table" and d.symbol ~= nil and d.price ~= nil then
      rt:deliver { type = "spot", symbol = tostring(d.symbol):upper(), price = d.price,
                   timestamp = d.timestamp, source = d.source }
    end
  end
  local function on_message(ev)
    if type(ev) ~= "table" then return end
    local name, d = ev.event, ev.data
    if name == "crypto_price" then
      tick(d)
    elseif name == "crypto_price_batch" and type(d) == "table" then
      for _, u in ipairs(d.updates or d.prices or {}) do tick(u) end
    elseif name == "window" then
      feeds.window(rt, d)
    end
  end
  local ok, src, err = pcall(factory, on_message, rt)
  if not ok then src, err = nil, src end
  if not src then
    rt:_log("warn", "feed", "no spot feed (" .. tostring(err) .. "): on_spot and on_window get nothing")
    return nil
  end
  return src
end

return feeds
