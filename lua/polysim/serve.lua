-- Runs the local exchange (polysim.exchange) behind the C HTTP front door on the loop.
--   local srv = require("polysim.serve").start{ port = 0, seed = 1 }
--   srv.base_url, srv.api_key, srv.bootstrap_token, srv.exchange, srv:close()
local core = require "polysim.core"
local ploop = require "polysim.loop"

local pcall, setmetatable, tostring, type = pcall, setmetatable, tostring, type

local _M = {}

local methods = {}
local mt = { __name = "polysim.LocalExchange", __index = methods }
mt.__tostring = function(self)
  return "polysim.LocalExchange (" .. self.base_url .. (self.closed and ", closed" or "") .. ")"
end

local INTERNAL = core.json_encode { error = "INTERNAL_ERROR", message = "the local exchange failed on this request" }

-- The HTTP handler: decode the body, ask the exchange, encode its answer.
local function make_handler(ex, log)
  return function(req)
    if req.body and not req.too_large then
      local v, err = core.json_decode(req.body)
      if err then req.json_error = err else req.json = v end
    end
    local ok, resp = pcall(ex.handle, ex, req)
    if not ok then
      if log then log("error", "exchange failed on " .. req.method .. " " .. req.path .. ": " .. tostring(resp)) end
      return { status = 500, headers = { ["X-Polysim-Code"] = "INTERNAL_ERROR" }, body = INTERNAL }
    end
    if resp.drop then return { drop = true } end
    local headers = resp.headers or {}
    local body = resp.body
    if type(body) == "table" then
      body = core.json_encode(body)
    elseif body == nil then
      body = ""
    end
    if resp.content_type then headers["Content-Type"] = resp.content_type end
    return { status = resp.status or 200, headers = headers, body = body, delay = resp.delay }
  end
end

local START_OPTIONS = {
  host = true, port = true, seed = true, markets = true, api_key = true, tiers = true,
  tick = true, max_body = true, logger = true, ws_token_ttl = true, clock = true,
}

-- start{ host = "127.0.0.1", port = 0, seed = 1, markets = table, api_key = , tiers = ,
--        tick = 0.5 (seconds between price moves; false: only on ex:tick()), logger = fn }
function _M.start(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not START_OPTIONS[k] then error("serve.start: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local exchange = require "polysim.exchange"
  local t0 = os.time() - core.monotime()
  local ex = exchange.new {
    seed = opts.seed or 1,
    markets = opts.markets,
    api_key = opts.api_key,
    tiers = opts.tiers,
    ws_token_ttl = opts.ws_token_ttl,
    max_body = opts.max_body,
    clock = opts.clock or function() return t0 + core.monotime() end,
  }
  local host = opts.host or "127.0.0.1"
  local server, err = core.serve {
    host = host, port = opts.port or 0, max_body = opts.max_body or (1 << 20),
    handler = make_handler(ex, opts.logger),
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
