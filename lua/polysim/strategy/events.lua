-- The strategy runtime's event delivery: one queue per market for prices, one per underlying
-- for spot ticks, one for fills and one for window events; each delivers one event at a time
-- (the ordering guarantees of polysim.strategy's header). deliver() is the one entry point.
-- Methods of polysim.strategy's runtime (mixed in there), and the queue helpers it uses.
local queue = require "polysim.queue"
local callback = require "polysim.callback"

local pairs, tostring, type = pairs, tostring, type
local string_format = string.format
local run = callback.deliver -- runners: see polysim.callback

local _M = {}

local QUEUE_WARN = 10000     -- warn once when a queue grows this long

local Runtime = {}
_M.methods = Runtime

local pump

local function new_queue(rt, cb)
  local q = queue.new()
  q.busy, q.pumping, q.cb, q.warned = false, false, cb, false
  q.resume = function()
    q.busy = false
    pump(rt, q)
  end
  return q
end

function pump(rt, q)
  if q.busy or q.pumping then return end
  q.pumping = true
  local stats = rt.stats
  while rt.paused == 0 and not q:empty() do
    local ev = q:pop()
    local ver = rt.current
    local fn = ver.mod[q.cb]
    if fn then
      stats.delivered = stats.delivered + 1
      local rec = run(rt, ver, q.cb, fn, ver.ctx, ev)
      if rec then
        q.busy = true
        rec.on_done = q.resume
        break
      end
    else
      stats.unhandled = stats.unhandled + 1
    end
  end
  q.pumping = false
end

local function pump_all(rt)
  if rt.paused > 0 then return end
  pump(rt, rt.fq)
  pump(rt, rt.wq)
  for _, q in pairs(rt.pq) do
    if not q:empty() then pump(rt, q) end
  end
  for _, q in pairs(rt.sq) do
    if not q:empty() then pump(rt, q) end
  end
end

local function push(rt, q, ev)
  local n = q:push(ev)
  if not q.warned and n > QUEUE_WARN then
    q.warned = true
    rt:_log("warn", rt.name, string_format("%d %s events queued: the strategy is slower than its feed" ..
      " (set conflate = true to keep only the latest price per market)", n, q.cb))
  end
end

-- The one entry point of events: streams (and specs) call it for every price and fill.
-- Returns true when the event was queued for delivery, false when it was dropped.
function Runtime:deliver(ev)
  local stats = self.stats
  stats.received = stats.received + 1
  if self.stopping then
    stats.dropped = stats.dropped + 1
    return false
  end
  local kind = ev.type
  if kind == "price" then
    local id = ev.market_id
    if not self.subs[id] then
      stats.dropped = stats.dropped + 1
      return false
    end
    if self.own then self.own:mark(ev) end
    local q = self.pq[id]
    if not q then
      q = new_queue(self, "on_price")
      self.pq[id] = q
    end
    local cur = self.current
    if q.head > q.tail then
      if not q.busy and not q.pumping and self.paused == 0 then
        -- nothing queued or running for this market: handed over at once, as push + pump
        -- would (perf, issue 12: the queue's round trip was ~10% of a delivery)
        local fn = cur.mod.on_price
        if not fn then
          stats.unhandled = stats.unhandled + 1
          return true
        end
        stats.delivered = stats.delivered + 1
        q.pumping = true -- events for this market that arrive meanwhile queue up behind it
        local rec = run(self, cur, "on_price", fn, cur.ctx, ev)
        q.pumping = false
        if rec then
          q.busy = true
          rec.on_done = q.resume
        elseif q.head <= q.tail then
          pump(self, q)
        end
        return true
      end
    elseif cur and cur.conflate then
      q:replace_last(ev)
      stats.conflated = stats.conflated + 1
      return true
    end
    push(self, q, ev)
    pump(self, q)
  elseif kind == "spot" then
    local sym = ev.symbol
    if not self.spot_subs[sym] then
      stats.dropped = stats.dropped + 1
      return false
    end
    local q = self.sq[sym]
    if not q then
      q = new_queue(self, "on_spot")
      self.sq[sym] = q
    end
    local cur = self.current
    if cur and cur.conflate and not q:empty() then
      q:replace_last(ev)
      stats.conflated = stats.conflated + 1
      return true
    end
    push(self, q, ev)
    pump(self, q)
  elseif kind == "window" then
    if not (self.spot_subs[ev.symbol] or self.subs[ev.market_id]) then
      stats.dropped = stats.dropped + 1
      return false
    end
    push(self, self.wq, ev)
    pump(self, self.wq)
  elseif kind == "fill" then
    -- Only our own orders' fills: one carrying another client order id is somebody else's
    -- (a hand-placed order, another strategy in the same host).
    local own = self.own
    if own and not own:fill(ev) and type(ev.client_order_id) == "string" then
      stats.dropped = stats.dropped + 1
      stats.foreign_fills = stats.foreign_fills + 1
      return false
    end
    self.fills:push(ev)
    self:_notify("fill", ev)
    push(self, self.fq, ev)
    pump(self, self.fq)
  else
    stats.dropped = stats.dropped + 1
    return false
  end
  return true
end

-- Events queued and not yet handed to a callback.
function Runtime:pending()
  local n = self.fq:len() + self.wq:len()
  for _, q in pairs(self.pq) do n = n + q:len() end
  for _, q in pairs(self.sq) do n = n + q:len() end
  return n
end

-- True when nothing is queued and no callback is waiting on anything.
function Runtime:idle()
  return self.inflight == 0 and self:pending() == 0
end

-- Stream events ("connected", "reconnecting", "gap", "closed") from the feed.
function Runtime:feed_event(ev)
  local t = ev.type
  if t == "gap" then
    self:_log("warn", "feed", string_format("stream gap: %.1f s of messages missed while reconnecting",
      ev.seconds or 0))
  elseif t == "reconnecting" then
    self:_log("warn", "feed", string_format("stream dropped (%s %s); reconnecting in %.1f s",
      tostring(ev.code), tostring(ev.reason or ""), ev.delay or 0))
  elseif t == "error" then
    local m = ev.message
    self:_log("warn", "feed", "stream error: " ..
      (type(m) == "table" and tostring(m.message or m.error or m.code) or tostring(m)))
  else
    self:_log("debug", "feed", tostring(t))
  end
end

_M.new_queue, _M.pump, _M.pump_all, _M.push = new_queue, pump, pump_all, push

return _M
