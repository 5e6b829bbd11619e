--- Live WebSocket feeds with automatic reconnection, on the loop: what
-- `client:prices_stream` and `client:executions_stream` return.
--
--   local s = client:prices_stream{ markets = {id, ...}, on_price = fn(msg), on_window = fn(msg),
--                                   on_event = fn(ev) }
--   local s = client:executions_stream{ on_fill = fn(msg), on_event = fn(ev) }
--   s:subscribe(ids)  s:unsubscribe(ids)  s:close()   (also <close>)
--   for msg in client:prices_stream{ markets = {...} } do ... end
--
-- A stream mints a single-use token (client:ws_token()), connects, subscribes, and on any
-- drop reconnects with a fresh token: back-off 1 s doubling to 30 s, reset after a good
-- connection (one the server answered: the pong of the ping sent on open, or an ack); close 4001 (bad/expired token) re-mints at
-- once (then backs off if it repeats); 1001 (going away) waits 1 s; 4002 (limits) backs off.
-- The server forgets subscriptions, so every connection re-subscribes. A connection takes at
-- most 50 markets (the server's limit; option max_per_connection): a price stream with more
-- shards them over further connections (each reconnecting on its own, delivering to the same
-- callbacks). A shard the server refuses with 4002 before it ever worked (the tier's
-- max_ws_connections is reached) is given up: one { type = "error", message = { code =
-- "CONNECTION_LIMIT", message = } } event, the markets that did not fit wait, and take the
-- room that unsubscribing frees on the other connections; nothing reconnects in a loop. A quiet connection is
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
-- Messages (decoded tables) go to on_price / on_fill; a price stream's Up/Down lifecycle
-- frames ({type = "window", event = "open"|"close"|"resolve"|"settle", market_id, ...}, see
-- exchange/windows.lua) go to on_window (dropped without it). Without that callback the stream is
-- an iterator instead: `for msg in s do` yields them in order (at most max_queue kept,
-- oldest dropped), blocking by driving the loop in plain Lua, suspending inside a task, and
-- ends when the stream is closed. Everything runs from the loop: outside a task, drive it
-- (polysim.loop.run_until, loop:step, or iterate). `for msg in s:messages() do` closes the
-- stream when the loop ends, by break or error (the for's closing value); breaking out of
-- the bare `for msg in s do` leaves it open: close it (`local s <close> = …`).
-- @usage local s <close> = client:prices_stream{ markets = { id },
--   on_price = function(msg) print(msg.market_id, msg.buy, msg.sell) end }
-- s:subscribe{ id2 }
-- polysim.loop.run_until(function() return false end, 10)   -- the loop delivers
-- @module polysim.stream
local core = require "polysim.core"
local ploop = require "polysim.loop"
local options = require "polysim.opts"
local queue = require "polysim.queue"

local error, ipairs, setmetatable, tostring, type = error, ipairs, setmetatable, tostring, type
local min, pcall = math.min, pcall

local _M = {}

local MAX_PER_CONNECTION = 50   -- the server's markets per connection (serve.lua; 4002 past it)

local methods = {}
local mt = { __name = "polysim.Stream", __index = methods }
mt.__tostring = function(self)
  return ("polysim.Stream (%s, %s)"):format(self.kind, self.closed and "closed" or
    self.conn and self.conn:state() or "connecting")
end

local OPTIONS = {
  prices = { markets = true, on_price = true, on_window = true, on_event = true, max_per_connection = true, backoff_base = true, backoff_cap = true,
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
  if t == "window" and self.kind == "prices" then
    self:_confirm()
    if self.on_window then self.on_window(msg) end
    return
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
  if not self.worked and self.kind == "prices" then
    self.worked = true
    local first = self.parent or self
    if first.shards then first:_grow() end
  end
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
    for _, id in ipairs(self.mine) do list[#list + 1] = id end
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
      if code == 4002 and self.parent and not self.good then  -- the tier's connection limit
        return self.parent:_refused(self, reason)
      end
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

local function new(client, kind, opts, parent)
  local fname = kind .. "_stream"
  if not parent then opts = options.check(fname, opts or {}, OPTIONS[kind]) end
  local on_msg = kind == "prices" and opts.on_price or opts.on_fill
  if on_msg ~= nil and type(on_msg) ~= "function" then options.error(fname, "the message callback must be a function") end
  if opts.on_event ~= nil and type(opts.on_event) ~= "function" then options.error(fname, "on_event must be a function") end
  if opts.on_window ~= nil and type(opts.on_window) ~= "function" then options.error(fname, "on_window must be a function") end
  local per = opts.max_per_connection or MAX_PER_CONNECTION
  if math.type(per) ~= "integer" or per < 1 then options.error(fname, "max_per_connection must be an integer >= 1") end
  local base = client.base_url:gsub("^http", "ws")
  local self = setmetatable({
    client = client, kind = kind, base = base,
    msg_type = kind == "prices" and "price" or "fill",
    on_msg = on_msg, on_event = opts.on_event, on_window = opts.on_window,
    backoff_base = opts.backoff_base or 1, backoff_cap = opts.backoff_cap or 30,
    going_away_delay = opts.going_away_delay or 1,
    ping_interval = opts.ping_interval or 15, handshake_timeout = opts.handshake_timeout or 10,
    max_queue = opts.max_queue or 10000,
    order = {}, set = {}, queue = queue.new(), readers = {}, dropped = 0,
    failures = 0, connections = 0, closed = false,
    -- shards: mine = the markets on this connection (mine_set, nmine); the first stream also
    -- keeps shards = {itself, further shards...}, shard_of = id -> shard, waiting = ids that fit nowhere
    mine = {}, mine_set = {}, nmine = 0, per = per, parent = parent,
  }, mt)
  if kind == "prices" and not parent then
    self.shards, self.shard_of, self.waiting = { self }, {}, {}
    if opts.markets ~= nil then
      for _, id in ipairs(check_ids(fname, opts.markets)) do
        if not self.set[id] then self.set[id] = true; self.order[#self.order + 1] = id; self:_place(id) end
      end
    end
  end
  self.task = ploop.spawn(function() self:_run() end)
  return self
end

-- Sharding (price streams; self is the first stream) ---------------------------------------

-- A further connection for markets that do not fit: delivers to the first stream's
-- callbacks; its own events go out with shard = n (its "closed" is the first stream's).
function methods:_new_shard()
  local n = #self.shards + 1
  local parent = self
  local sh = new(self.client, "prices", {
    backoff_base = self.backoff_base, backoff_cap = self.backoff_cap, going_away_delay = self.going_away_delay,
    ping_interval = self.ping_interval, handshake_timeout = self.handshake_timeout, max_per_connection = self.per,
    on_price = function(msg) parent:_deliver(msg) end,
    on_window = self.on_window and function(msg) parent.on_window(msg) end,
    on_event = function(ev)
      if ev.type == "closed" then return end
      ev.shard = n
      parent:_event(ev)
    end,
  }, self)
  self.shards[n] = sh
  return sh
end

-- Puts a market on a connection with room; returns that shard, or nil when the market waits
-- (for _grow, or for room that unsubscribing frees). The caller sends the subscription.
function methods:_place(id)
  for _, sh in ipairs(self.shards) do
    if sh.nmine < self.per then
      sh.mine_set[id] = true
      sh.mine[#sh.mine + 1] = id
      sh.nmine = sh.nmine + 1
      self.shard_of[id] = sh
      return sh
    end
  end
  self.waiting[#self.waiting + 1] = id
  return nil
end

-- Places ids, one subscribe message per shard that is open.
function methods:_place_all(ids)
  local by_shard = {}
  for _, id in ipairs(ids) do
    local sh = self:_place(id)
    if sh then
      local l = by_shard[sh] or {}
      by_shard[sh] = l
      l[#l + 1] = id
    end
  end
  for sh, l in pairs(by_shard) do sh:_send { action = "subscribe", markets = core.array(l) } end
end

-- Opens one more connection for the waiting markets, once the newest one has worked (one
-- at a time: the server's connection limit then refuses the newest, never the first).
function methods:_grow()
  if self.limit_reached or self.closed or #self.waiting == 0 then return end
  if not self.shards[#self.shards].worked then return end
  local sh = self:_new_shard()
  local waiting = self.waiting
  self.waiting = {}
  self:_place_all(waiting)
  return sh
end

-- A shard the server refused (4002 before it ever answered): give it up, say so once, and
-- keep its markets waiting for room.
function methods:_refused(sh, reason)
  sh.closed = true
  self.refused = self.refused or {}
  self.refused[#self.refused + 1] = sh     -- kept for inspection (its task has ended)
  for i, x in ipairs(self.shards) do if x == sh then table.remove(self.shards, i); break end end
  self.limit_reached = true
  for _, id in ipairs(sh.mine) do self.shard_of[id] = nil; self.waiting[#self.waiting + 1] = id end
  local waiting = self.waiting
  self.waiting = {}
  self:_place_all(waiting)
  if not self.limit_said then
    self.limit_said = true
    self:_event { type = "error", message = { type = "error", code = "CONNECTION_LIMIT",
      message = ("the server refused another WebSocket connection (%s): %d of %d markets get no prices " ..
        "(%d connections of %d markets each)"):format(tostring(reason), #self.waiting, #self.order,
        #self.shards, self.per) } }
  end
end

function _M.prices(client, opts) return new(client, "prices", opts) end
function _M.executions(client, opts) return new(client, "executions", opts) end

--- Adds markets to a price stream (subscribed on every connection from now on).
-- @tparam {string,...} ids condition ids
-- @return the stream
-- @raise on an executions stream, or for ids that are not strings
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
  self:_place_all(new_ids)
  self:_grow()
  return self
end

--- Removes markets from a price stream; the room freed takes markets that waited for it.
-- @tparam {string,...} ids condition ids
-- @return the stream
-- @raise on an executions stream, or for ids that are not strings
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
  local by_shard, freed = {}, 0
  for _, id in ipairs(gone) do
    local sh = self.shard_of[id]
    self.shard_of[id] = nil
    if sh then
      sh.mine_set[id] = nil
      sh.nmine = sh.nmine - 1
      freed = freed + 1
      local l = by_shard[sh] or {}
      by_shard[sh] = l
      l[#l + 1] = id
    end
  end
  for sh, l in pairs(by_shard) do
    local mine = {}
    for _, id in ipairs(sh.mine) do if sh.mine_set[id] then mine[#mine + 1] = id end end
    sh.mine = mine
    sh:_send { action = "unsubscribe", markets = core.array(l) }
  end
  -- the room freed takes markets that waited for it
  local waiting = {}
  for _, id in ipairs(self.waiting) do if self.set[id] then waiting[#waiting + 1] = id end end
  self.waiting = {}
  self:_place_all(waiting)
  return self
end

--- The subscribed markets, in the order they were added.
-- @treturn {string,...}
function methods:markets()
  local out = {}
  for i, id in ipairs(self.order) do out[i] = id end
  return out
end

--- Whether the (first) connection is open and the server has answered on it.
-- @treturn bool
function methods:connected() return self.good and self.conn ~= nil and self.conn:state() == "open" end

--- Closes the stream for good (idempotent; also its `__close`): an `on_event`
-- `{type = "closed"}` follows, and an iterator ends once drained.
function methods:close() return self:_close() end

function methods:_close(reason, err)
  if self.closed then return end
  self.closed = true
  local conn = self.conn
  self.conn = nil
  if conn then conn:close(1000, "closed by the client") end
  if self.wake_conn then self.wake_conn(1000, "closed by the client") end
  if self.wake_sleep then self.wake_sleep() end
  if self.shards then
    for i = 2, #self.shards do self.shards[i]:_close(reason, err) end
  end
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

--- The iterator form that closes the stream when the loop is left, by `break`, `return`
-- or an error: `for msg in s:messages() do … break end` (Lua 5.4's generic `for` closes its
-- fourth value). `for msg in s do` iterates too, but leaves the stream open after a break.
-- @return the stream as the iterator, nil, nil, and the stream as the closing value
-- @usage for msg in client:prices_stream{ markets = { id } }:messages() do
--   print(msg.market_id, msg.buy); break          -- the socket is closed here
-- end
function methods:messages()
  if self.on_msg then
    error("this stream delivers to its " .. (self.kind == "prices" and "on_price" or "on_fill") ..
      " callback; make it without one to iterate", 2)
  end
  return self, nil, nil, self
end

_M.mt = mt
return _M
