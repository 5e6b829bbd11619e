-- Runs the local exchange (polysim.exchange) behind the C HTTP front door on the loop.
--   local srv = require("polysim.serve").start{ port = 0, seed = 1 }
--   srv.base_url, srv.api_key, srv.bootstrap_token, srv.exchange, srv:close()
local core = require "polysim.core"
local ploop = require "polysim.loop"
local markets = require "polysim.exchange.markets"
local check_options = require("polysim.opts").check

local pcall, setmetatable, tostring, type = pcall, setmetatable, tostring, type

local _M = {}

local methods = {}
local mt = { __name = "polysim.LocalExchange", __index = methods }
mt.__tostring = function(self)
  return "polysim.LocalExchange (" .. self.base_url .. (self.closed and ", closed" or "") .. ")"
end

local INTERNAL = core.json_encode { error = "INTERNAL_ERROR", message = "the local exchange failed on this request" }

-- WebSocket feeds ------------------------------------------------------------------------
-- /v1/ws/prices and /v1/ws/executions: the token is checked when the upgrade is accepted
-- (a bad one gets the 101 and then close 4001); the tier's connection limit and the 50
-- markets per connection close with 4002. Price events go to the connections subscribed to
-- the market, fill events to the executions connections of the order's user.
local MAX_MARKETS = 50
-- /v1/ws/market and /v1/ws/user are the PM-compat names of the same two channels (issue 9;
-- polysim_polymarket/streams/_stream_open.py opens market/user topics on prices/executions).
local WS_CHANNELS = { ["/v1/ws/prices"] = "prices", ["/v1/ws/executions"] = "executions",
  ["/v1/ws/market"] = "prices", ["/v1/ws/user"] = "executions" }

local function iso_now(ex)
  local t = ex.clock()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", math.floor((t % 1) * 1000))
end

local function make_ws(ex, log)
  local W = {
    conns = {},       -- conn -> { channel, ctx, markets = {id = true}, n }
    by_market = {},   -- market id -> { conn = true }
    by_user = {},     -- user id -> { conn = true } (executions)
    counts = {},      -- user id -> open connections (both channels)
  }
  ex.ws_connections = 0

  local function send(conn, t) conn:send(core.json_encode(t)) end

  -- Takes conn out of the market's subscriber set (dropping the set when it empties).
  local function leave(conn, id)
    local set = W.by_market[id]
    if set then
      set[conn] = nil
      if next(set) == nil then W.by_market[id] = nil end
    end
  end

  local function forget(conn)
    local st = W.conns[conn]
    if not st then return end
    W.conns[conn] = nil
    for id in pairs(st.markets) do leave(conn, id) end
    local uid = st.ctx.user_id
    if W.by_user[uid] then W.by_user[uid][conn] = nil end
    W.counts[uid] = (W.counts[uid] or 1) - 1
    ex.ws_connections = ex.ws_connections - 1
  end

  -- "markets" or "conditions" (polysim_sdk/ws.py subscribes with either) or both.
  local function ids_of(msg)
    local list = msg.markets
    if type(msg.conditions) == "table" then
      if type(list) ~= "table" then list = msg.conditions
      else
        local both = {}
        for _, v in ipairs(list) do both[#both + 1] = v end
        for _, v in ipairs(msg.conditions) do both[#both + 1] = v end
        list = both
      end
    end
    -- Polymarket's market channel subscribes with {"assets_ids": [token ids], "type": "market"}.
    if type(list) ~= "table" and type(msg.assets_ids) == "table" then
      list = {}
      for i, tok in ipairs(msg.assets_ids) do
        local m = type(tok) == "string" and markets.resolve_token(ex.U, tok)
        if not m then return nil, "assets_ids[" .. i .. "] is not a known token id" end
        list[#list + 1] = m.condition_id
      end
    end
    if type(list) ~= "table" then return nil, "'markets' must be an array of market ids" end
    local out = {}
    for i, id in ipairs(list) do
      if type(id) ~= "string" then return nil, "markets[" .. i .. "] must be a string" end
      out[#out + 1] = id
    end
    return out
  end

  local function on_message(conn, text)
    local st = W.conns[conn]
    if not st then return end
    local msg = core.json_decode(text)
    if type(msg) ~= "table" then
      return send(conn, { type = "error", code = "INVALID_MESSAGE", message = "messages must be JSON objects" })
    end
    local action = msg.action
    if action == nil and (msg.assets_ids or msg.markets or msg.conditions) then action = "subscribe" end
    if action == "ping" then
      return send(conn, { type = "pong", ts = ex.clock(), timestamp = iso_now(ex) })
    end
    if st.channel ~= "prices" or (action ~= "subscribe" and action ~= "unsubscribe") then
      return send(conn, { type = "error", code = "UNKNOWN_ACTION",
        message = "unknown action '" .. tostring(action) .. "' on the " .. st.channel .. " channel" })
    end
    local ids, err = ids_of(msg)
    if not ids then return send(conn, { type = "error", code = "INVALID_MESSAGE", message = err }) end
    if action == "subscribe" then
      local new = 0
      for _, id in ipairs(ids) do if not st.markets[id] then new = new + 1 end end
      if st.n + new > MAX_MARKETS then
        send(conn, { type = "error", code = "SUBSCRIPTION_LIMIT",
          message = ("at most %d markets per connection (%d subscribed, %d more asked)"):format(MAX_MARKETS, st.n, new) })
        return conn:close(4002, "subscription limit")
      end
      for _, id in ipairs(ids) do
        if not st.markets[id] then
          st.markets[id], st.n = true, st.n + 1
          local set = W.by_market[id] or {}
          W.by_market[id] = set
          set[conn] = true
        end
      end
      send(conn, { type = "subscribed", markets = core.array(ids) })
      -- The current price of each newly known market at once: no wait for the next move.
      if ex.price_message then
        for _, id in ipairs(ids) do
          local snap = ex:price_message(id)
          if snap then
            snap.emit_ts_ms = math.floor(ex.clock() * 1000)
            send(conn, snap)
          end
        end
      end
      return
    end
    for _, id in ipairs(ids) do
      if st.markets[id] then
        st.markets[id], st.n = nil, st.n - 1
        leave(conn, id)
      end
    end
    return send(conn, { type = "unsubscribed", markets = core.array(ids) })
  end

  function W.upgrade(req, channel)
    local ctx, why = ex:ws_authorize(req.query and req.query.token, channel)
    return { upgrade = {
      on_open = function(conn)
        if not ctx then return conn:close(4001, tostring(why or "invalid token")) end
        local uid = ctx.user_id
        local n = W.counts[uid] or 0
        if ctx.max_ws_connections and n >= ctx.max_ws_connections then
          return conn:close(4002, "connection limit (" .. ctx.max_ws_connections .. ") reached for tier " .. tostring(ctx.tier))
        end
        W.counts[uid] = n + 1
        ex.ws_connections = ex.ws_connections + 1
        W.conns[conn] = { channel = channel, ctx = ctx, markets = {}, n = 0 }
        if channel == "executions" then
          local set = W.by_user[uid] or {}
          W.by_user[uid] = set
          set[conn] = true
        end
      end,
      on_message = function(conn, text)
        local ok, err = pcall(on_message, conn, text)
        if not ok and log then log("error", "websocket message failed: " .. tostring(err)) end
      end,
      on_close = function(conn) forget(conn) end,
    } }
  end

  ex:on("price", function(market_id, msg)
    local set = W.by_market[market_id]
    if not set then return end
    msg.emit_ts_ms = math.floor(ex.clock() * 1000)
    local text = core.json_encode(msg)
    for conn in pairs(set) do conn:send(text) end
  end)
  ex:on("fill", function(user_id, msg)
    local set = W.by_user[user_id]
    if not set then return end
    local text = core.json_encode(msg)
    for conn in pairs(set) do conn:send(text) end
  end)

  return W
end

-- Server-sent events (GET /prices/stream, the updown engineer's): the exchange answers a
-- session (exchange/api/stream.lua); the front door streams it (core.serve's `stream` answer)
-- with a keepalive every 5 s until the client goes or the server closes.
local function sse_answer(resp)
  local sess = resp.sse
  local headers = resp.headers or {}
  headers["Content-Type"] = resp.content_type or "text/event-stream"
  local stop
  return { status = resp.status or 200, headers = headers, stream = {
    on_open = function(st)
      sess:attach(function(text) return st:write(text) end, core.json_encode, function() st:close() end)
      stop = ploop.every(5, function() if not sess:keepalive() then st:close() end end)
    end,
    on_close = function()
      sess:detach()
      if stop then stop(); stop = nil end
    end,
  } }
end

-- The HTTP handler: decode the body, ask the exchange, encode its answer.
local function make_handler(ex, log, ws)
  return function(req)
    local channel = WS_CHANNELS[req.path]
    if channel then return ws.upgrade(req, channel) end
    if req.body and not req.too_large then
      local v, err = core.json_decode(req.body)
      if err then req.json_error = err else req.json = v end
    end
    -- server.c's tables have the normalized shape, and this handler only passes the body on:
    -- the exchange skips its copies and may answer with JSON text (resp.encoded).
    req.clean, req.text_ok = true, true
    local ok, resp = pcall(ex.handle, ex, req)
    if not ok then
      if log then log("error", "exchange failed on " .. req.method .. " " .. req.path .. ": " .. tostring(resp)) end
      return { status = 500, headers = { ["X-Polysim-Code"] = "INTERNAL_ERROR" }, body = INTERNAL }
    end
    if resp.drop then return { drop = true } end
    if resp.sse then return sse_answer(resp) end
    local headers = resp.headers or {}
    local body = resp.body
    if type(body) == "table" then
      body = resp.encoded or core.json_encode(body)
    elseif body == nil then
      body = resp.encoded or ""
    end
    if resp.content_type then headers["Content-Type"] = resp.content_type end
    return { status = resp.status or 200, headers = headers, body = body, delay = resp.delay }
  end
end

local START_OPTIONS = {
  host = true, port = true, seed = true, markets = true, api_key = true, tiers = true,
  tick = true, max_body = true, logger = true, ws_token_ttl = true, clock = true,
  header_timeout = true, per_ip = true, max_connections = true, -- front door (server.c)
}

-- start{ host = "127.0.0.1", port = 0, seed = 1, markets = table, api_key = , tiers = ,
--        tick = 0.5 (seconds between price moves; false: only on ex:tick()), logger = fn }
function _M.start(opts)
  opts = opts or {}
  check_options("serve.start", opts, START_OPTIONS) -- polysim.opts: did-you-mean, at the caller's line
  local exchange = require "polysim.exchange"
  local ex = exchange.new {
    seed = opts.seed or 1,
    markets = opts.markets,
    api_key = opts.api_key,
    tiers = opts.tiers,
    ws_token_ttl = opts.ws_token_ttl,
    max_body = opts.max_body,
    clock = opts.clock,          -- default: the exchange's sub-second wall clock
  }
  local host = opts.host or "127.0.0.1"
  local server, err = core.serve {
    host = host, port = opts.port or 0, max_body = opts.max_body or (1 << 20),
    header_timeout = opts.header_timeout, per_ip = opts.per_ip, max_connections = opts.max_connections,
    handler = make_handler(ex, opts.logger, make_ws(ex, opts.logger)),
  }
  if not server then return nil, err end
  local self = setmetatable({
    exchange = ex,
    server = server,
    host = host,
    port = server:port(),
    api_key = ex.api_key,
    bootstrap_token = ex.bootstrap_token,
    closed = false,
  }, mt)
  local shown = host:find(":", 1, true) and "[" .. host .. "]" or host
  self.base_url = "http://" .. shown .. ":" .. self.port
  local tick = opts.tick
  if tick == nil then tick = 0.5 end
  if tick then
    self.stop_ticking = ploop.every(tick, function() ex:tick(tick) end)
  end
  return self
end

function methods:close()
  if self.closed then return end
  self.closed = true
  if self.stop_ticking then self.stop_ticking() end
  self.server:close()
end
mt.__close = methods.close

return _M
