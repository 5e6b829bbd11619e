-- Live WebSocket feeds with automatic reconnection, on the loop.
--
--   local s = client:prices_stream{ markets = {id, ...}, on_price = fn(msg), on_event = fn(ev) }
--   local s = client:executions_stream{ on_fill = fn(msg), on_event = fn(ev) }
--   s:subscribe(ids)  s:unsubscribe(ids)  s:close()   (also <close>)
--   for msg in client:prices_stream{ markets = {...} } do ... end
--
-- A stream mints a single-use token (client:ws_token()), connects, subscribes, and on any
-- drop reconnects with a fresh token: back-off 1 s doubling to 30 s, reset after a good
-- connection (one the server answered: the pong of the ping sent on open, or an ack); close 4001 (bad/expired token) re-mints at
-- once (then backs off if it repeats); 1001 (going away) waits 1 s; 4002 (limits) backs off.
-- The server forgets subscriptions, so every connection re-subscribes. A quiet connection is
-- pinged every ping_interval (15 s) and dropped after two silent intervals; a handshake
-- slower than handshake_timeout (10 s) is abandoned. Options backoff_base, backoff_cap,
-- going_away_delay tune the delays above.
--
-- Events (on_event): { type = "connected", attempt = n }, { type = "reconnecting", code =,
-- reason =, delay = }, { type = "gap", from = t0, to = t1, seconds = }, after a reconnect:
-- messages between from and to were missed; { type = "closed", reason =, error = } (after
-- close(), or for good when no token can be had: no key, bad key); and the server's acks and
-- errors as { type = "subscribed" | "unsubscribed" | "error", message = decoded }.
--
-- Messages (decoded tables) go to on_price / on_fill. Without that callback the stream is
-- an iterator instead: `for msg in s do` yields them in order (at most max_queue kept,
-- oldest dropped), blocking by driving the loop in plain Lua, suspending inside a task, and
-- ends when the stream is closed. Everything runs from the loop: outside a task, drive it
-- (polysim.loop.run_until, loop:step, or iterate).
local core = require "polysim.core"
local ploop = require "polysim.loop"
local options = require "polysim.opts"
local queue = require "polysim.queue"

local error, ipairs, setmetatable, tostring, type = error, ipairs, setmetatable, tostring, type
local min, pcall = math.min, pcall

local _M = {}

local methods = {}
local mt = { __name = "polysim.Stream", __index = methods }
mt.__tostring = function(self)
  return ("polysim.Stream (%s, %s)"):format(self.kind, self.closed and "closed" or
    self.conn and self.conn:state() or "connecting")
end

local OPTIONS = {
  prices = { markets = true, on_price = true, on_event = true, backoff_base = true, backoff_cap = true,
    going_away_delay = true, max_queue = true, ping_interval = true, handshake_timeout = true },
  executions = { on_fill = true, on_event = true, backoff_base = true, backoff_cap = true,
    going_away_delay = true, max_queue = true, ping_interval = true, handshake_timeout = true },
}

local urlencode = core.url_escape

local function check_ids(fname, ids)
  if type(ids) ~= "table" then options.error(fname, "markets must be an array of market ids") end
  for i, id in ipairs(ids) do
    if type(id) ~= "string" or id == "" then options.error(fname, "markets[" .. i .. "] must be a non-empty string") end
  end
  return ids
end

function methods:_event(ev)
  if self.on_event then self.on_event(ev) end
end

function methods:_deliver(msg)
  if self.on_msg then return self.on_msg(msg) end
  local q = self.queue -- polysim.queue: dropping the oldest is O(1), not table.remove(q, 1)
  q:push(msg)
  if q:len() > self.max_queue then q:pop(); self.dropped = self.dropped + 1 end
  self:_wake_readers()
end

function methods:_wake_readers()
  local w = self.readers
  self.readers = {}
  for _, wake in ipairs(w) do wake() end
end

function methods:_send(t)
  local conn = self.conn
  if conn and conn:state() == "open" then return conn:send(core.json_encode(t)) end
end

function methods:_on_text(text)
  self.last_rx = core.monotime()
  local msg = core.json_decode(text)
  if type(msg) ~= "table" then return end
  local t = msg.type
  if t == self.msg_type then
    self:_confirm()
    return self:_deliver(msg)
  end
  if t == "subscribed" or t == "unsubscribed" or t == "pong" then self:_confirm() end
  if t == "subscribed" or t == "unsubscribed" or t == "error" then
    self:_event { type = t, message = msg }
  end
end

-- The server accepts the upgrade before it checks the token (a bad one gets close 4001
-- right after), so a connection counts as made at its first answer: the ping's pong, the
-- subscription's ack, or a message.
function methods:_confirm()
  if self.good then return end
  self.good = true
  self.connections = self.connections + 1
  self:_event { type = "connected", attempt = self.connections }
  if self.dropped_at then
    local now = core.monotime()
    self:_event { type = "gap", from = self.dropped_at, to = now, seconds = now - self.dropped_at }
    self.dropped_at = nil
  end
end

function methods:_on_open()
  self.opened_at = core.monotime()
  self.last_rx = self.opened_at
  if self.kind == "prices" then
    local list = {}
    for _, id in ipairs(self.order) do list[#list + 1] = id end
    if #list > 0 then self:_send { action = "subscribe", markets = core.array(list) } end
  end
  self:_send { action = "ping" }
end

-- One connection: returns its close code and reason when it ends. A watchdog gives up on
-- a handshake slower than handshake_timeout, pings a quiet connection every ping_interval
-- and drops one that stays silent for two intervals (1006): a peer that vanished without
-- closing is noticed, not waited on forever.
function methods:_connect(token)
  local url = self.base .. "/v1/ws/" .. self.kind .. "?token=" .. urlencode(token)
  self.good, self.opened_at, self.last_rx = false, nil, nil
  local started, stop_watchdog = core.monotime(), nil
  local code, reason = ploop.suspend(function(wake)
    self.wake_conn = wake
    local ok, conn = pcall(core.ws_connect, {
      url = url,
      connect_timeout = self.client.connect_timeout,
      cainfo = self.client.cainfo,
      on_open = function() self:_on_open() end,
      on_message = function(text) self:_on_text(text) end,
      on_close = function(c, r) wake(c, r) end,
    })
    if not ok then return wake(1006, tostring(conn)) end
    self.conn = conn
    local function abort(why)
      conn:close(1000, why)
      wake(1006, why)
    end
    local tick = min(self.ping_interval, self.handshake_timeout) / 2
    stop_watchdog = ploop.every(tick, function()
      local now = core.monotime()
      if not self.opened_at then
        if now - started > self.handshake_timeout then abort("handshake timed out") end
      elseif now - self.last_rx > 2 * self.ping_interval then
        abort("no answer from the server for " .. 2 * self.ping_interval .. " s")
      elseif now - self.last_rx >= self.ping_interval and now - (self.pinged or 0) >= self.ping_interval then
        self.pinged = now
        self:_send { action = "ping" }
      end
    end)
  end)
  if stop_watchdog then stop_watchdog() end
  return code, reason
end

function methods:_sleep(seconds)
  if seconds <= 0 or self.closed then return end
  ploop.suspend(function(wake)
    local id = ploop.timer(seconds, wake)
    self.wake_sleep = function() ploop.cancel(id); wake() end
  end)
  self.wake_sleep = nil
end

function methods:_backoff()
  self.failures = self.failures + 1
  return min(self.backoff_cap, self.backoff_base * 2 ^ (self.failures - 1))
end

function methods:_run()
  local auth_failures = 0
  while not self.closed do
    local tok, err = self.client:ws_token()
    if self.closed then break end
    local code, reason, delay
    if not tok or type(tok.token) ~= "string" then
      code, reason = 0, "cannot mint a token: " .. tostring(err and (err.message or err.code) or "no token")
      if err and not err.retryable and (err.status == 401 or err.status == 403 or err.status == 0) then
        return self:_close(reason, err)                -- no key, bad key, no permission: final
      end
      delay = self:_backoff()
    else
      code, reason = self:_connect(tok.token)
      self.conn, self.wake_conn = nil, nil
      if self.closed then break end
      if self.good then                                -- a good connection resets the back-off
        self.dropped_at = self.dropped_at or core.monotime()
        self.failures = 0
      end
      if code == 4001 then
        auth_failures = auth_failures + 1
        delay = auth_failures == 1 and 0 or self:_backoff()
      else
        auth_failures = 0
        if code == 1001 then delay = self.going_away_delay
        else delay = self:_backoff() end
      end
    end
    self:_event { type = "reconnecting", code = code, reason = reason, delay = delay }
    self:_sleep(delay)
  end
end

local function new(client, kind, opts)
  local fname = kind .. "_stream"
  opts = options.check(fname, opts or {}, OPTIONS[kind])
  local on_msg = kind == "prices" and opts.on_price or opts.on_fill
  if on_msg ~= nil and type(on_msg) ~= "function" then options.error(fname, "the message callback must be a function") end
  if opts.on_event ~= nil and type(opts.on_event) ~= "function" then options.error(fname, "on_event must be a function") end
  local base = client.base_url:gsub("^http", "ws")
  local self = setmetatable({
    client = client, kind = kind, base = base,
    msg_type = kind == "prices" and "price" or "fill",
    on_msg = on_msg, on_event = opts.on_event,
    backoff_base = opts.backoff_base or 1, backoff_cap = opts.backoff_cap or 30,
    going_away_delay = opts.going_away_delay or 1,
    ping_interval = opts.ping_interval or 15, handshake_timeout = opts.handshake_timeout or 10,
    max_queue = opts.max_queue or 10000,
    order = {}, set = {}, queue = queue.new(), readers = {}, dropped = 0,
    failures = 0, connections = 0, closed = false,
  }, mt)
  if kind == "prices" and opts.markets ~= nil then
    for _, id in ipairs(check_ids(fname, opts.markets)) do
      if not self.set[id] then self.set[id] = true; self.order[#self.order + 1] = id end
    end
  end
  self.task = ploop.spawn(function() self:_run() end)
  return self
end

function _M.prices(client, opts) return new(client, "prices", opts) end
function _M.executions(client, opts) return new(client, "executions", opts) end

function methods:subscribe(ids)
  if self.kind ~= "prices" then options.error("subscribe", "only price streams take subscriptions") end
  check_ids("subscribe", ids)
  local new_ids = {}
  for _, id in ipairs(ids) do
    if not self.set[id] then
      self.set[id] = true
      self.order[#self.order + 1] = id
      new_ids[#new_ids + 1] = id
    end
  end
  if #new_ids > 0 then self:_send { action = "subscribe", markets = core.array(new_ids) } end
  return self
end

function methods:unsubscribe(ids)
  if self.kind ~= "prices" then options.error("unsubscribe", "only price streams take subscriptions") end
  check_ids("unsubscribe", ids)
  local gone = {}
  for _, id in ipairs(ids) do
    if self.set[id] then self.set[id] = nil; gone[#gone + 1] = id end
  end
  if #gone == 0 then return self end
  local keep = {}
  for _, id in ipairs(self.order) do if self.set[id] then keep[#keep + 1] = id end end
  self.order = keep
  self:_send { action = "unsubscribe", markets = core.array(gone) }
  return self
end

function methods:markets()
  local out = {}
  for i, id in ipairs(self.order) do out[i] = id end
  return out
end

function methods:connected() return self.good and self.conn ~= nil and self.conn:state() == "open" end

function methods:close() return self:_close() end

function methods:_close(reason, err)
  if self.closed then return end
  self.closed = true
  local conn = self.conn
  self.conn = nil
  if conn then conn:close(1000, "closed by the client") end
  if self.wake_conn then self.wake_conn(1000, "closed by the client") end
  if self.wake_sleep then self.wake_sleep() end
  self:_event { type = "closed", reason = reason, error = err }
  self:_wake_readers()
end
mt.__close = methods.close

-- Iterator: `for msg in stream do`. Returns nil once the stream is closed and drained.
mt.__call = function(self)
  if self.on_msg then
    error("this stream delivers to its " .. (self.kind == "prices" and "on_price" or "on_fill") ..
      " callback; make it without one to iterate", 2)
  end
  while true do
    local q = self.queue
    if not q:empty() then return q:pop() end
    if self.closed then return nil end
    ploop.suspend(function(wake) self.readers[#self.readers + 1] = wake end)
  end
end

_M.mt = mt
return _M
