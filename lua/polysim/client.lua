-- The PolySimulator REST client: one method per endpoint of BRIEF.md, argument checks that
-- name the argument, exact decimal strings for every number sent, retries with back-off,
-- and idempotency keys on everything that creates orders. Expected failures return
-- nil, err (an error object, see polysim.errors); misuse raises at once.
--
-- This file is construction and the module surface; the parts live in polysim.client.*:
-- args (argument checks), request (the request engine), market, updown, trading, account,
-- keys and data (the endpoint groups, mixed into the methods table below).
local core = require "polysim.core"
local ploop = require "polysim.loop"
local retry = require "polysim.retry"
local args = require "polysim.client.args"
local request = require "polysim.client.request"

local pairs, setmetatable, type = pairs, setmetatable, type
local string_format = string.format
local argerr, check_string, check_function, check_keys, check_header_value, set =
  args.argerr, args.check_string, args.check_function, args.check_keys, args.check_header_value, args.set
local parse_base_url, proxy_for, is_loopback = request.parse_base_url, request.proxy_for, request.is_loopback

local _M = { VERSION = core.VERSION }

local DEFAULT_BASE_URL = "https://api.polysimulator.com"
local USER_AGENT = "polysim-lua/" .. core.VERSION

local methods = {}
local mt = { __name = "polysim.Client", __index = methods }

-- The key lives here, not in the object, so that no printer, serializer or pairs() over
-- a client can ever reveal it.
local secrets = setmetatable({}, { __mode = "k" })

mt.__tostring = function(self)
  local s = secrets[self]
  return string_format("polysim.Client (%s, %s)", self.base_url,
    s.api_key and "API key set" or s.bearer and "bearer token set" or "no key")
end

-- Handed only to the method modules that read the key (updown, keys); it never leaves them.
local function secret_of(self) return secrets[self] end

_M.uuid4 = args.uuid4

---------------------------------------------------------------------------------------------
-- construction

local NEW_OPTIONS = set {
  "api_key", "bearer", "base_url", "timeout", "connect_timeout", "max_retries", "retry_base",
  "retry_cap", "user_agent", "allow_insecure", "max_size", "logger", "retry_not_found",
  "http_version", "cainfo", "transport", "sleep", "deadline",
}

function _M.new(opts)
  opts = check_keys("new", opts or {}, NEW_OPTIONS)
  local api_key = opts.api_key
  if api_key == nil then api_key = os.getenv "POLYSIM_API_KEY" end
  if api_key == "" then api_key = nil end
  if api_key ~= nil and type(api_key) ~= "string" then argerr("new", "api_key must be a string") end
  if opts.bearer ~= nil and type(opts.bearer) ~= "string" then argerr("new", "bearer must be a string") end
  local base_url = opts.base_url or os.getenv "POLYSIM_BASE_URL" or DEFAULT_BASE_URL
  if type(base_url) ~= "string" then argerr("new", "base_url must be a string") end
  local host
  base_url, host = parse_base_url(base_url)
  if (api_key or opts.bearer) and not opts.allow_insecure and base_url:sub(1, 5) == "http:" then
    -- Decided on what curl connects to: the host as curl parsed it, or the proxy it uses.
    local via = proxy_for(host)
    if not is_loopback(host) or (via and not is_loopback(via)) then
      argerr("new", "refusing to send the API key over plain http:// to " .. (via and via .. " (a proxy)" or host) ..
        " (use https://, or set allow_insecure = true)")
    end
  end
  local function num(name, dflt, lo)
    local v = opts[name]
    if v == nil then return dflt end
    if type(v) ~= "number" or v ~= v or v < lo or v == math.huge then
      argerr("new", name .. " must be a finite number >= " .. lo)
    end
    return v
  end
  local self = {
    base_url = base_url,
    timeout = num("timeout", 15, 0.001),
    connect_timeout = num("connect_timeout", 5, 0.001),
    max_retries = retry.count(num("max_retries", 3, 0)),
    retry_base = num("retry_base", 0.25, 0),
    retry_cap = num("retry_cap", 8, 0),
    max_size = math.floor(num("max_size", 16 * 1024 * 1024, 1)),
    user_agent = opts.user_agent ~= nil and check_header_value("new", "user_agent",
      check_string("new", "user_agent", opts.user_agent)) or USER_AGENT,
    transport = opts.transport ~= nil and check_function("new", "transport", opts.transport) or nil,
    sleep = opts.sleep ~= nil and check_function("new", "sleep", opts.sleep) or ploop.sleep,
    deadline = opts.deadline ~= nil and num("deadline", nil, 0.001) or nil,
    retry_not_found = opts.retry_not_found and true or false,
    http_version = opts.http_version,
    cainfo = opts.cainfo,
    logger = opts.logger,
    ratelimit = nil,      -- the last X-RateLimit-* headers seen
    last_request_id = nil,
    _stats = { requests = 0, attempts = 0, retries = 0, connections_opened = 0, errors = 0 },
  }
  secrets[self] = { api_key = api_key, bearer = opts.bearer }
  return setmetatable(self, mt)
end

function methods:stats()
  local s = {}
  for k, v in pairs(self._stats) do s[k] = v end
  return s
end

function methods:has_key() return secrets[self].api_key ~= nil end

-- the request engine (polysim.client.request): every endpoint method calls this
function methods:_call(method, path, spec)
  return request.call(self, secrets[self], method, path, spec)
end

---------------------------------------------------------------------------------------------
-- the endpoint groups

require("polysim.client.market").install(methods)
require("polysim.client.updown").install(methods, secret_of)
require("polysim.client.trading").install(methods)
require("polysim.client.account").install(methods)
require("polysim.client.keys").install(methods, secret_of)

---------------------------------------------------------------------------------------------
-- live streams (polysim.stream): WebSocket feeds that reconnect by themselves

-- prices_stream{ markets = {ids}, on_price = fn(msg), on_event = fn(ev) } -> stream
function methods:prices_stream(opts) return require("polysim.stream").prices(self, opts) end
-- executions_stream{ on_fill = fn(msg), on_event = fn(ev) } -> stream
function methods:executions_stream(opts) return require("polysim.stream").executions(self, opts) end

-- data API (data_orders/data_trades iterators, prices_history) and wallets: polysim.client.data
require("polysim.client.data").install(methods, args)

_M.methods = methods
_M.mt = mt
return _M
