-- The simulation's clock-driven side: price walk on tick, resting-order matching, hourly
-- equity snapshots, and the listeners ("price", "fill") the WebSocket glue attaches to.
local markets = require "polysim.exchange.markets"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"
local windows = require "polysim.exchange.windows"

local _M = {}
local methods = {}
_M.methods = methods
local floor = math.floor

function methods:_emit(event, a, b)
  local list = self.listeners[event]
  if not list then return end
  for _, fn in ipairs(list) do
    local okc, err = pcall(fn, a, b)
    if not okc then self.last_listener_error = tostring(err) end
  end
end

local EVENTS = { price = true, fill = true, spot = true, window = true }

--- on(event, fn): "price" -> fn(market_id, msg); "fill" -> fn(user_id, msg);
--- "spot" -> fn(updates) (the crypto_price messages of one tick, windows.lua);
--- "window" -> fn(market_id, msg) (Up/Down lifecycle: open, close, resolve, settle; the same
--- messages also go to the market's "price" listeners).
function methods:on(event, fn)
  assert(EVENTS[event], "on: event must be 'price', 'fill', 'spot' or 'window'")
  assert(type(fn) == "function", "on: fn must be a function")
  local list = self.listeners[event] or {}
  self.listeners[event] = list
  list[#list + 1] = fn
  return fn
end

--- off(event, fn): removes a listener.
function methods:off(event, fn)
  local list = self.listeners[event] or {}
  for i = #list, 1, -1 do if list[i] == fn then table.remove(list, i) end end
end

--- tick(dt): advances prices by dt seconds (random walk from the seeded stream), rebuilds
--- books, expires and fills resting orders, emits price events, takes hourly equity snapshots.
function methods:tick(dt)
  dt = tonumber(dt) or 1
  if dt < 0 then dt = 0 end
  local now = self.clock()
  local spots, repriced = windows.before(self, now)
  local changed = markets.walk(self.U, dt, now)
  orders.match(self, now)
  local lifecycle = windows.after(self, now)
  local seen = {}
  for _, m in ipairs(changed) do seen[m] = true end
  for _, m in ipairs(repriced) do
    if not seen[m] then changed[#changed + 1] = m end
  end
  for _, m in ipairs(changed) do self:_emit("price", m.condition_id, markets.ws_price(m)) end
  for _, ev in ipairs(lifecycle) do
    self:_emit("window", ev[1], ev[2])
    self:_emit("price", ev[1], ev[2])
  end
  if spots then self:_emit("spot", spots) end
  local hour = floor(now / 3600)
  if hour > self.snap_hour then
    self.snap_hour = hour
    for _, user in pairs(self.K.users) do
      if user.wallet then accounts.snapshot(user, hour * 3600) end
    end
  end
  return #changed
end

function methods:match()
  orders.match(self, self.clock())
end

--- ws_authorize(token, channel): consumes a ws token; returns the context or nil, reason.
function methods:ws_authorize(token, channel)
  return keys.ws_authorize(self.K, token, channel, self.clock())
end

function methods:now() return self.clock() end

--- price_message(market_id): the current WebSocket price message of a market (for a snapshot
--- on subscribe), or nil for an unknown id.
function methods:price_message(cid)
  local m = self.U.by_id[cid]
  return m and markets.ws_price(m) or nil
end

return _M
