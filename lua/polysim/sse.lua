--- The server-sent-events feed `GET /prices/stream`: what `client:spot_stream` returns.
--
-- The public server-sent-events feed GET /prices/stream (underlying spot ticks, and prices,
-- books and Up/Down window events for condition ids), reconnecting, on the polysim loop.
-- Follows the SDK's polysim_sdk/sse.py: query crypto / crypto_source / condition_ids /
-- background and a fresh `_` cache-buster per connection; a clean server close reconnects at
-- once; transport errors, a read gap over read_timeout and 425/429/5xx answers back off
-- (backoff_base doubling to backoff_cap) and count toward max_reconnects (nil: unbounded);
-- any other 4xx is permanent.
--
--    local s = client:spot_stream{ crypto = {"BTC"}, condition_ids = {cid},
--      on_spot = fn(tick), on_window = fn(msg), on_message = fn(ev), on_event = fn(ev) }
--    for ev in client:spot_stream{ crypto = {"BTC"} } do print(ev.event, ev.data) end
--    s:close()  (also <close>)
--
-- Messages: every SSE event is ev = { event = <name>, data = <decoded JSON, or the raw text> }
-- (names: crypto_price, crypto_price_batch, keepalive, snapshot, market_price, orderbook,
-- window, ...). on_message gets them all; on_spot gets each spot tick
-- {symbol, price, timestamp, source} (a crypto_price, or each update of a batch); on_window
-- gets the Up/Down lifecycle messages (event = "open"|"close"|"resolve"|"settle"). With none of
-- the three the stream is an iterator over ev (at most max_queue kept, oldest dropped).
-- on_event: { type = "connected", attempt = n }, { type = "reconnecting", reason =, delay = },
-- { type = "closed", reason =, error = } (after close(), a permanent error or exhausted
-- reconnects).
--
-- The core's transfers collect a body in C; this reads it while it runs (transfer:take()),
-- every poll_interval seconds (0.05).
-- @module polysim.sse
local core = require "polysim.core"
local ploop = require "polysim.loop"
local options = require "polysim.opts"
local errors = require "polysim.errors"

local _M = {}

local methods = {}
local mt = { __name = "polysim.SpotStream", __index = methods }
mt.__tostring = function(self)
  return "polysim.SpotStream (" .. (self.closed and "closed" or self.connected and "connected" or "connecting") .. ")"
end

local OPTIONS = { crypto = true, crypto_source = true, condition_ids = true, background = true,
  on_spot = true, on_window = true, on_message = true, on_event = true, max_reconnects = true,
  backoff_base = true, backoff_cap = true, read_timeout = true, connect_timeout = true,
  poll_interval = true, max_queue = true }

local RETRYABLE = { [425] = true, [429] = true }

local function str_list(fname, name, v)
  if v == nil then return nil end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then options.error(fname, name .. " must be an array of strings") end
  for i, s in ipairs(v) do
    if type(s) ~= "string" or s == "" or s:find("[,%c]") then
      options.error(fname, name .. "[" .. i .. "] must be a non-empty string without commas")
    end
  end
  return #v > 0 and table.concat(v, ",") or nil
end

local function num(fname, opts, name, dflt, lo)
  local v = opts[name]
  if v == nil then return dflt end
  if type(v) ~= "number" or v ~= v or v < lo then options.error(fname, name .. " must be a number >= " .. lo) end
  return v
end

local function fn_opt(fname, opts, name)
  local v = opts[name]
  if v ~= nil and type(v) ~= "function" then options.error(fname, name .. " must be a function") end
  return v
end

-- parse_block(text): one SSE event block -> { event, data } or nil (comments only), as the
-- SDK's _parse_event_block: data lines join with "\n", then JSON-decode (else the text).
function _M.parse_block(block)
  local event, data, saw = "message", {}, false
  for line in (block .. "\n"):gmatch("(.-)\r?\n") do
    if line ~= "" and line:sub(1, 1) ~= ":" then
      local field, value = line:match("^([^:]*):?(.*)$")
      if value:sub(1, 1) == " " then value = value:sub(2) end
      if field == "event" then event, saw = value, true
      elseif field == "data" then data[#data + 1] = value; saw = true end
    end
  end
  if not saw then return nil end
  local raw = table.concat(data, "\n")
  local decoded = raw
  if raw ~= "" then
    local v = core.json_decode(raw)
    if v ~= nil then decoded = v end
  else
    decoded = nil
  end
  return { event = event, data = decoded }
end

function methods:_event(ev) if self.on_event then self.on_event(ev) end end

function methods:_deliver(ev)
  local any = false
  if self.on_message then any = true; self.on_message(ev) end
  if self.on_spot then
    any = true
    local d = ev.data
    if ev.event == "crypto_price" and type(d) == "table" then self.on_spot(d)
    elseif ev.event == "crypto_price_batch" and type(d) == "table" and type(d.updates) == "table" then
      for _, u in ipairs(d.updates) do self.on_spot(u) end
    end
  end
  if self.on_window then
    any = true
    if ev.event == "window" and type(ev.data) == "table" then self.on_window(ev.data) end
  end
  if any then return end
  local q = self.queue
  q[#q + 1] = ev
  if #q > self.max_queue then table.remove(q, 1); self.dropped = self.dropped + 1 end
  self:_wake_readers()
end

function methods:_wake_readers()
  local w = self.readers
  self.readers = {}
  for _, wake in ipairs(w) do wake() end
end

-- Feeds received text through the SSE framing (blank line ends an event).
function methods:_feed(text)
  local buf = self.buf .. text
  while true do
    local s, e = buf:find("\r?\n\r?\n")
    if not s then break end
    local block = buf:sub(1, s - 1)
    buf = buf:sub(e + 1)
    local ev = _M.parse_block(block)
    if ev then self:_deliver(ev) end
    if self.closed then return end
  end
  self.buf = buf
end

function methods:_stop_transfer()
  if self.poller then self.poller(); self.poller = nil end
  if self.transfer then self.transfer:close(); self.transfer = nil end
end

-- The connection ended: why = "clean" | "error" (with err) | "permanent" (with err).
function methods:_ended(why, err)
  self:_stop_transfer()
  self.connected = false
  self.buf = ""
  if self.closed then return end
  if why == "permanent" then return self:close("error", err) end
  local delay = 0
  if why ~= "clean" then
    self.failures = self.failures + 1
    if self.max_reconnects and self.failures > self.max_reconnects then
      return self:close("reconnects exhausted", errors.new { status = err and err.status or 0,
        code = "SSE_RETRIES_EXHAUSTED", method = "GET", path = "/prices/stream", local_error = true,
        message = "SSE stream failed after exhausting reconnects" ..
          (err and err.status and err.status > 0 and (" (HTTP " .. err.status .. ")") or "") })
    end
    delay = math.min(self.backoff, self.backoff_cap)
    self.backoff = math.min(math.max(self.backoff, self.backoff_base) * 2, self.backoff_cap)
  end
  self:_event { type = "reconnecting", reason = why == "clean" and "server closed the stream" or
    (err and err.message or why), delay = delay, error = err }
  self.retry_timer = ploop.timer(delay, function() self.retry_timer = nil; self:_connect() end)
end

function methods:_connect()
  if self.closed then return end
  self.attempt = self.attempt + 1
  local url = self.url .. (self.query ~= "" and self.query .. "&" or "?") .. "_=" ..
    string.format("%x%04x", math.floor(core.monotime() * 1e6), self.attempt)   -- fresh per connection
  local errbody = {}
  local status = 0
  local last = core.monotime()
  local t
  local function poll()
    if not t or t ~= self.transfer then return end
    local chunk, st = t:take()
    if st ~= 0 then status = st end
    if chunk ~= "" then
      last = core.monotime()
      if status >= 200 and status < 300 then
        if not self.connected then
          self.connected = true
          self.backoff = self.backoff_base
          self:_event { type = "connected", attempt = self.attempt }
        end
        self:_feed(chunk)
      else
        errbody[#errbody + 1] = chunk
      end
    elseif status >= 200 and status < 300 and not self.connected then
      self.connected = true
      self.backoff = self.backoff_base
      self:_event { type = "connected", attempt = self.attempt }
    end
    if self.transfer == t and core.monotime() - last > self.read_timeout then
      self:_ended("error", errors.new { status = 0, code = "TIMEOUT", method = "GET", path = "/prices/stream",
        local_error = true, message = ("no data for %gs (keepalives stopped)"):format(self.read_timeout) })
    end
  end
  t = core.request {
    method = "GET", url = url, headers = self.headers, timeout = 0,
    connect_timeout = self.connect_timeout, http_version = "1.1", max_size = 16 * 1024 * 1024,
    on_done = function(tr)
      if tr ~= self.transfer then return end
      poll()
      if tr ~= self.transfer then return end
      local resp, terr = tr:result()
      if not resp then return self:_ended("error", terr) end
      local code = resp.status
      if code >= 200 and code < 300 then return self:_ended("clean") end
      local err = core.decode_error(code, resp.headers, table.concat(errbody) .. resp.body, "GET", "/prices/stream")
      if RETRYABLE[code] or code >= 500 then return self:_ended("error", err) end
      return self:_ended("permanent", err)
    end,
  }
  self.transfer = t
  self.poller = ploop.every(self.poll_interval, poll)
end

--- Stops the stream for good (idempotent; also its `__close`).
-- @tparam[opt] string reason reported in the `closed` event
-- @param[opt] err an error to report with it
function methods:close(reason, err)
  if self.closed then return end
  self.closed = true
  if self.retry_timer then ploop.cancel(self.retry_timer); self.retry_timer = nil end
  self:_stop_transfer()
  self.error = err
  self:_event { type = "closed", reason = reason or "closed by the client", error = err }
  self:_wake_readers()
end
mt.__close = function(self) self:close() end

-- Iterator: `for ev in stream do`. Returns nil once the stream is closed and drained.
mt.__call = function(self)
  if self.on_message or self.on_spot or self.on_window then
    error("this stream delivers to its callbacks; make it without on_message/on_spot/on_window to iterate", 2)
  end
  while true do
    local q = self.queue
    if #q > 0 then return table.remove(q, 1) end
    if self.closed then return nil end
    ploop.suspend(function(wake) self.readers[#self.readers + 1] = wake end)
  end
end

-- spot(client, opts, api_key): the stream (see the top of this file).
function _M.spot(client, opts, api_key)
  local fname = "spot_stream"
  opts = options.check(fname, opts or {}, OPTIONS)
  if client.transport then options.error(fname, "needs an HTTP client (not an in-process transport)") end
  local q = {}
  local function add(k, v) if v then q[#q + 1] = k .. "=" .. core.url_escape(v) end end
  add("crypto", str_list(fname, "crypto", opts.crypto))
  if opts.crypto_source ~= nil and opts.crypto_source ~= "chainlink" and opts.crypto_source ~= "binance" then
    options.error(fname, "crypto_source must be 'chainlink' or 'binance'")
  end
  add("crypto_source", opts.crypto_source)
  add("condition_ids", str_list(fname, "condition_ids", opts.condition_ids))
  if opts.background then add("background", "true") end
  local headers = { Accept = "text/event-stream", ["User-Agent"] = client.user_agent }
  if api_key then headers["X-API-Key"] = api_key end   -- public endpoint; the SDK sends it too
  local max_reconnects = opts.max_reconnects
  if max_reconnects ~= nil and (math.type(max_reconnects) ~= "integer" or max_reconnects < 0) then
    options.error(fname, "max_reconnects must be an integer >= 0")
  end
  local self = setmetatable({
    url = client.base_url .. "/prices/stream", query = #q > 0 and "?" .. table.concat(q, "&") or "",
    headers = headers,
    on_spot = fn_opt(fname, opts, "on_spot"), on_window = fn_opt(fname, opts, "on_window"),
    on_message = fn_opt(fname, opts, "on_message"), on_event = fn_opt(fname, opts, "on_event"),
    max_reconnects = max_reconnects,
    backoff_base = num(fname, opts, "backoff_base", 0.5, 0),
    backoff_cap = num(fname, opts, "backoff_cap", 30, 0),
    read_timeout = num(fname, opts, "read_timeout", 30, 0.01),
    connect_timeout = num(fname, opts, "connect_timeout", 5, 0.001),
    poll_interval = num(fname, opts, "poll_interval", 0.05, 0.001),
    max_queue = math.floor(num(fname, opts, "max_queue", 10000, 1)),
    queue = {}, readers = {}, dropped = 0, buf = "", attempt = 0, failures = 0,
    closed = false, connected = false,
  }, mt)
  self.backoff = self.backoff_base
  self:_connect()
  return self
end

_M.mt = mt
return _M
