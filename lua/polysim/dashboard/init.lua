-- The live dashboard of a running strategy: one self-contained page (polysim.ui) served on
-- 127.0.0.1, with its data pushed over a WebSocket on the same port.
--
--   local dashboard = require "polysim.dashboard"
--   local d = assert(dashboard.start {
--     port = 0,                      -- 0: any free port
--     control = false,               -- true: the page gets Stop / Cancel buttons
--     collect = function() return snapshot end,   -- runs in a loop task; may block on REST
--     on_stop = function() end, on_cancel_all = function() return "3 orders cancelled" end,
--   })
--   print(d.url)                     -- carries the per-run token when control is on
--   d:refresh()                      -- collect and push now (a fill, a reload)
--   d:close()
--
-- Why the checks: any web page the user visits can make the browser send requests to
-- 127.0.0.1. Reading is guarded by the Host check (DNS rebinding) and the WebSocket Origin
-- check (a foreign page cannot read positions through its own socket); acting additionally
-- needs a POST that carries the per-run token in a header (a cross-site form cannot set one,
-- and a cross-site fetch with a custom header is refused by Origin) and comes from the
-- page's own origin. A GET never acts.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local ui = require "polysim.ui"
local options = require "polysim.opts"

local ipairs, pairs, pcall, setmetatable, tostring, type = ipairs, pairs, pcall, setmetatable, tostring, type
local string_format = string.format

local _M = {}

local methods = {}
local mt = { __name = "polysim.Dashboard", __index = methods }
mt.__tostring = function(self)
  -- the token stays out of tostring: it is a credential while control is on
  return string_format("polysim.Dashboard (http://127.0.0.1:%d/%s)", self.port, self.closed and ", closed" or "")
end

local START_OPTIONS = {
  port = "number", control = "boolean", collect = "function", on_stop = "function",
  on_cancel_all = "function", interval = "number", idle_interval = "number", title = "string",
  max_points = "number", log = "function", clock = "function",
}

local function token_hex(n)
  return (core.random_bytes(n):gsub(".", function(c) return string_format("%02x", c:byte()) end))
end

-- Equal-time comparison: the token is a secret, so no early exit on the first difference.
local function same(a, b)
  if type(a) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

local function header(req, name)
  local h = req.headers or {}
  local v = h[name]
  if v then return v end
  name = name:lower()
  for k, val in pairs(h) do if k:lower() == name then return val end end
  return nil
end

local function json(status, t, extra)
  local headers = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return { status = status, headers = headers, body = core.json_encode(t) }
end

local function refuse(status, code, msg) return json(status, { error = code, message = msg }) end

function _M.start(opts)
  opts = opts or {}
  if type(opts) ~= "table" then options.error("dashboard.start", "options must be a table") end
  options.check("dashboard.start", opts, START_OPTIONS)
  for k, v in pairs(opts) do
    if type(v) ~= START_OPTIONS[k] then
      options.error("dashboard.start", k .. " must be a " .. START_OPTIONS[k])
    end
  end
  local self = setmetatable({
    port = 0, control = opts.control and true or false, closed = false, token = token_hex(16),
    clients = {}, n_clients = 0, curve = {}, snapshot = nil, seq = 0, busy = false,
    opts = opts, max_points = opts.max_points or 5000, collects = 0,
  }, mt)
  local page = ui.dashboard_page { ws_path = "/ws", control = self.control, title = opts.title,
                                   max_points = self.max_points }

  local function own_host(req)
    local h = header(req, "Host")
    return h == "127.0.0.1:" .. self.port or h == "localhost:" .. self.port
  end
  local function own_origin(o)
    return o == "http://127.0.0.1:" .. self.port or o == "http://localhost:" .. self.port
  end

  local function handler(req)
    if not own_host(req) then
      return refuse(403, "FORBIDDEN_HOST", "the dashboard answers only to 127.0.0.1 and localhost")
    end
    local path, method = req.path, req.method
    if path == "/" or path == "/index.html" then
      if method ~= "GET" and method ~= "HEAD" then return refuse(405, "METHOD_NOT_ALLOWED", "GET only") end
      return { status = 200, body = page, headers = {
        ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store",
        ["X-Frame-Options"] = "DENY", ["Referrer-Policy"] = "no-referrer",
        ["X-Content-Type-Options"] = "nosniff" } }
    end
    if path == "/ws" then
      local origin = header(req, "Origin")
      if origin and not own_origin(origin) then
        return refuse(403, "FORBIDDEN_ORIGIN", "cross-site WebSocket refused")
      end
      return { upgrade = {
        on_open = function(conn) self:_join(conn) end,
        on_message = function() end,                 -- the page only listens
        on_close = function(conn) self:_leave(conn) end,
      } }
    end
    local action = path == "/api/stop" and "stop" or path == "/api/cancel-all" and "cancel_all" or nil
    if action then
      if method ~= "POST" then return refuse(405, "METHOD_NOT_ALLOWED", "actions are POST only") end
      if not own_origin(header(req, "Origin")) then
        return refuse(403, "FORBIDDEN_ORIGIN", "actions must come from the dashboard's own page")
      end
      if not self.control then return refuse(403, "CONTROL_DISABLED", "start with --dashboard-control to act") end
      if not same(header(req, "X-Polysim-Token"), self.token) then
        return refuse(403, "BAD_TOKEN", "missing or wrong dashboard token")
      end
      return self:_act(action)
    end
    return refuse(404, "NOT_FOUND", "no such page")
  end

  local server, err = core.serve { host = "127.0.0.1", port = opts.port or 0, max_body = 4096,
                                   handler = handler }
  if not server then return nil, err end
  self.server = server
  self.port = server:port()
  self.url = "http://127.0.0.1:" .. self.port .. "/" .. (self.control and "#token=" .. self.token or "")
  -- While a page is open: a fresh snapshot every `interval`; otherwise the curve is still
  -- sampled, slowly, so a tab opened later sees the run's history.
  local interval, idle = opts.interval or 1, opts.idle_interval or 5
  local since = 0
  self.cancel_timer = ploop.every(interval, function()
    since = since + interval
    if self.n_clients > 0 or since >= idle then
      since = 0
      self:refresh()
    end
  end)
  return self
end

function methods:_log(level, msg)
  if self.opts.log then pcall(self.opts.log, level, msg) end
end

function methods:_send(conn, t)
  local ok, err = pcall(conn.send, conn, core.json_encode(t))
  if not ok then self:_log("debug", "dashboard: send failed: " .. tostring(err)) end
end

function methods:_join(conn)
  self.clients[conn] = true
  self.n_clients = self.n_clients + 1
  self:_send(conn, { type = "hello", curve = core.array(self.curve), snapshot = self.snapshot })
  if not self.snapshot then self:refresh() end
end

function methods:_leave(conn)
  if self.clients[conn] then
    self.clients[conn] = nil
    self.n_clients = self.n_clients - 1
  end
end

-- The handler runs inside the HTTP server's callback, where nothing may block: the action
-- runs in a task of its own (it may call the API) and the answer says it was accepted.
function methods:_act(action)
  local fn = action == "stop" and self.opts.on_stop or self.opts.on_cancel_all
  if not fn then return refuse(501, "NOT_AVAILABLE", "this host offers no " .. action) end
  self.actions = (self.actions or 0) + 1
  self:_log("info", "dashboard: " .. action .. " requested from the page")
  ploop.spawn(function()
    local ok, msg = pcall(fn)
    if not ok then self:_log("error", "dashboard " .. action .. " failed: " .. tostring(msg))
    elseif type(msg) == "string" then self:_log("info", "dashboard: " .. msg) end
    self:refresh()
  end)
  return json(202, { ok = true, message = action == "stop" and "stop requested" or "cancel requested" })
end

-- Collects a snapshot in a task (collect may block on REST calls) and pushes it with the
-- new curve point to every open page. One collection at a time.
function methods:refresh()
  if self.closed or self.busy or not self.opts.collect then return end
  self.busy = true
  ploop.spawn(function()
    local ok, snap = pcall(self.opts.collect)
    self.busy = false
    if self.closed then return end
    if not ok or type(snap) ~= "table" then
      if not ok then self:_log("warn", "dashboard: snapshot failed: " .. tostring(snap)) end
      return
    end
    self.collects = self.collects + 1
    self.seq = self.seq + 1
    snap.seq = self.seq
    self.snapshot = snap
    -- the new curve points: the snapshot's own list when collect gives one (a backtest
    -- replay: its equity samples in data time), else the snapshot's equity at its time
    local points = snap.points
    snap.points = nil
    if type(points) ~= "table" then points = snap.equity and { { t = snap.now, v = snap.equity } } or {} end
    local c = self.curve
    for _, p in ipairs(points) do c[#c + 1] = p end
    -- trimmed in halves, not one by one: table.remove(c, 1) at every point is O(n^2)
    if #c > 2 * self.max_points then
      local n = #c - self.max_points
      table.move(c, n + 1, #c, 1)
      for i = #c, self.max_points + 1, -1 do c[i] = nil end
    end
    if self.n_clients == 0 then return end
    local msg = { type = "update", points = core.array(points), snapshot = snap }
    for conn in pairs(self.clients) do self:_send(conn, msg) end
  end)
end

function methods:close()
  if self.closed then return end
  self.closed = true
  if self.cancel_timer then self.cancel_timer() end
  for conn in pairs(self.clients) do pcall(conn.close, conn, 1001, "dashboard closed") end
  self.clients, self.n_clients = {}, 0
  self.server:close()
end
mt.__close = methods.close

_M.same = same

-- The dashboard of a strategy runtime (polysim.strategy): its snapshot() is the page's data,
-- refreshed from the account (rt:refresh) before each push; a fill or a reload pushes at
-- once. opts as for start, plus mode = "local exchange" | "live" | "backtest" (shown on the
-- page). Closing the dashboard stops observing the runtime.
function _M.attach(rt, opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do if k ~= "mode" then o[k] = v end end
  local mode = opts.mode
  o.collect = function()
    rt:refresh()
    local snap = rt:snapshot()
    snap.mode = mode
    snap.stopped = rt.stopped or nil
    -- lists stay JSON arrays when empty (an empty Lua table would encode as {})
    local unreal = nil
    for _, p in ipairs(snap.positions or {}) do
      local ok, u = pcall(core.decimal.new, p.unrealized)
      if ok then unreal = (unreal or core.decimal.new(0)) + u end
    end
    snap.unrealized = snap.unrealized or (unreal and tostring(unreal)) or nil
    -- A runtime that does not track its own orders shows the account's resting orders.
    if rt.own == nil and #(snap.open_orders or {}) == 0 and rt.client then
      local page = rt.client:orders_page { status = "PENDING", limit = 100 }
      local list = type(page) == "table" and (page.orders or page.data or page) or {}
      local open = {}
      for _, ord in ipairs(list) do
        open[#open + 1] = { created_at = ord.created_at, market_id = ord.market_id, side = ord.side,
          outcome = ord.outcome, order_type = ord.order_type, quantity = ord.requested_quantity or ord.quantity,
          filled_quantity = ord.filled_quantity, price = ord.limit_price or ord.price }
      end
      snap.open_orders = open
    end
    local fills = {}
    for i, f in ipairs(snap.fills or {}) do
      fills[i] = { t = f.t or f.filled_at or f.timestamp, market_id = f.market_id, side = f.side,
                   outcome = f.outcome, quantity = f.quantity, price = f.price, fee = f.fee }
    end
    snap.fills = fills
    for _, k in ipairs { "positions", "open_orders", "fills", "log_tail", "reloads" } do
      snap[k] = core.array(snap[k] or {})
    end
    return snap
  end
  local d, err = _M.start(o)
  if not d then return nil, err end
  local unobserve = rt:observe(function(kind)
    if kind == "fill" or kind == "reload" or kind == "order" then d:refresh() end
  end)
  local close = d.close
  d.close = function(self)
    if unobserve then unobserve(); unobserve = nil end
    return close(self)
  end
  return d
end

-- Takes `--dashboard [PORT]` and `--dashboard-control` out of a command line (args from
-- index `first`), so that the command's own parser never sees them. Returns the dashboard
-- config ({ port =, control = }) or false when not asked for; nil, message on a bad port.
function _M.take_args(args, first)
  local cfg, i = false, first or 1
  while i <= #args do
    local a = args[i]
    if a == "--dashboard" then
      cfg = cfg or { port = 0 }
      table.remove(args, i)
      local v = args[i]
      if v and v:match("^%d+$") then
        local port = math.tointeger(tonumber(v))
        if not port or port > 65535 then return nil, "--dashboard: port must be 0..65535" end
        cfg.port = port
        table.remove(args, i)
      end
    elseif a == "--dashboard-control" then
      cfg = cfg or { port = 0 }
      cfg.control = true
      table.remove(args, i)
    elseif a == "--" then
      break
    else
      i = i + 1
    end
  end
  return cfg
end

-- The dashboard of a polysim.host: its runtime's figures, Stop asks the host to stop (as
-- SIGTERM would: on_stop runs), Cancel cancels the orders this strategy placed (when the
-- runtime can tell them; else every open order of the account, said so in the answer).
function _M.for_host(h, cfg)
  local rt = h.rt
  return _M.attach(rt, {
    port = cfg.port or 0, control = cfg.control or false,
    mode = h.srv and "local exchange" or (cfg.mode or "live"),
    title = rt.name and (rt.name .. " \u{b7} polysim") or nil,
    log = function(level, msg) local f = h.log and h.log[level]; if f then f(msg) end end,
    on_stop = function()
      h.stop_reason = h.stop_reason or "dashboard"
      return "stopping: on_stop runs, then the host exits"
    end,
    on_cancel_all = function()
      -- only the orders this run's strategies placed (polysim.owned), never the account's
      local total = 0
      for _, r in ipairs(h.rts or { rt }) do
        if r.own and r.client then
          local n = r.own:cancel_open(r.client)
          total = total + (tonumber(n) or 0)
        end
      end
      return tostring(total) .. " orders of this run's strategies cancelled"
    end,
  })
end

return _M
