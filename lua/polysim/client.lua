-- The PolySimulator REST client: one method per endpoint of BRIEF.md, argument checks that
-- name the argument, exact decimal strings for every number sent, retries with back-off,
-- and idempotency keys on everything that creates orders. Expected failures return
-- nil, err (an error object, see polysim.errors); misuse raises at once.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local errors = require "polysim.errors"
local paginate = require "polysim.paginate"
local retry = require "polysim.retry"
local options = require "polysim.opts"

local decimal = core.decimal
local error, ipairs, pairs, pcall, setmetatable, tostring, type = error, ipairs, pairs, pcall, setmetatable, tostring, type
local math_type, string_format, table_concat, table_sort = math.type, string.format, table.concat, table.sort

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

---------------------------------------------------------------------------------------------
-- argument helpers

-- Argument errors point at the caller's line (the first frame outside polysim's files).
local argerr = options.error

local function check_string(fname, name, v, optional)
  if v == nil and optional then return nil end
  if type(v) ~= "string" or v == "" then argerr(fname, name .. " must be a non-empty string") end
  return v
end

local function check_int(fname, name, v, lo, hi)
  if v == nil then return nil end
  if math_type(v) ~= "integer" then argerr(fname, name .. " must be an integer") end
  if (lo and v < lo) or (hi and v > hi) then
    argerr(fname, string_format("%s must be between %d and %d", name, lo, hi))
  end
  return v
end

local function check_enum(fname, name, v, allowed, optional)
  if v == nil and optional then return nil end
  for _, a in ipairs(allowed) do if v == a then return v end end
  local quoted = {}
  for i, a in ipairs(allowed) do quoted[i] = '"' .. a .. '"' end
  local list = #quoted == 2 and quoted[1] .. " or " .. quoted[2] or "one of " .. table_concat(quoted, ", ")
  argerr(fname, name .. " must be " .. list)
end

-- Any number the API takes: a decimal string, an integer, a Decimal, or a float that is
-- exactly a decimal (0.5). Returns the exact string sent on the wire.
local function check_number(fname, name, v, optional)
  if v == nil then
    if optional then return nil end
    argerr(fname, name .. " is required")
  end
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" and not decimal.isdecimal(v) then
    argerr(fname, name .. " must be a decimal string, an integer or a polysim.decimal")
  end
  if tv == "string" then
    local d, e = decimal.parse(v)
    if not d then argerr(fname, name .. " is not a decimal number: " .. tostring(e)) end
    return tostring(d)
  end
  local ok, d = pcall(decimal.new, v)
  if not ok then
    argerr(fname, name .. ": " .. tostring(d):gsub("^.-: ", ""))
  end
  return tostring(d)
end

local function check_table(fname, name, v, optional)
  if v == nil and optional then return {} end
  if type(v) ~= "table" then argerr(fname, name .. " must be a table") end
  return v
end

local function check_function(fname, name, v)
  if type(v) ~= "function" then argerr(fname, name .. " must be a function") end
  return v
end

local function check_bool(fname, name, v)
  if v ~= nil and type(v) ~= "boolean" then argerr(fname, name .. " must be a boolean") end
  return v
end

-- Raises for option names the function does not know, so that typos are caught.
local check_keys = options.check

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local function uuid4()
  local b = { core.random_bytes(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  return string_format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(b))
end
_M.uuid4 = uuid4

-- One percent-encoder for paths, queries and the stream URL: curl's (core.url_escape).
local urlencode = core.url_escape

local parse_base_url, proxy_for    -- (below)

local function query_string(q)
  local keys = {}
  for k, v in pairs(q) do
    if v ~= nil then keys[#keys + 1] = k end
  end
  if #keys == 0 then return "" end
  table_sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "boolean" then v = v and "true" or "false" end
    parts[i] = urlencode(k) .. "=" .. urlencode(tostring(v))
  end
  return "?" .. table_concat(parts, "&")
end

local function is_loopback(host)
  return host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "[::1]"
end

-- Parses base_url once, with curl's URL API (core.url_parse), and returns the URL the
-- client uses (no trailing slash) and the host curl will connect to. A user name or
-- password in it is refused: "http://localhost:8080@10.9.9.9:8080" is a connection to
-- 10.9.9.9 whose user name happens to read "localhost".
function parse_base_url(url)
  local u, e = core.url_parse(url)
  if not u then argerr("new", "base_url is not a URL: " .. tostring(e)) end
  if u.scheme ~= "http" and u.scheme ~= "https" then
    argerr("new", "base_url must be an http:// or https:// URL")
  end
  if u.user or u.password or u.options then
    argerr("new", "base_url must not contain a user name or password (the part before '@')")
  end
  if u.query or u.fragment then argerr("new", "base_url must not contain a query or a fragment") end
  return (u.url:gsub("/+$", "")), u.host
end

-- The proxy host curl would send a plain-http request for `host` through (its environment
-- variables), or nil.
function proxy_for(host)
  local p = os.getenv "http_proxy" or os.getenv "all_proxy" or os.getenv "ALL_PROXY"
  if not p or p == "" then return nil end
  local np = os.getenv "no_proxy" or os.getenv "NO_PROXY" or ""
  for entry in np:gmatch("[^,%s]+") do
    if entry == "*" then return nil end
    entry = entry:gsub("^%.", "")
    if host == entry or host:sub(-#entry - 1) == "." .. entry then return nil end
  end
  local u = core.url_parse(p:find("://", 1, true) and p or "http://" .. p)
  return u and u.host or p
end

---------------------------------------------------------------------------------------------
-- construction

local NEW_OPTIONS = set {
  "api_key", "bearer", "base_url", "timeout", "connect_timeout", "max_retries", "retry_base",
  "retry_cap", "user_agent", "allow_insecure", "max_size", "logger", "retry_not_found",
  "http_version", "cainfo", "transport", "sleep", "deadline",
}

-- Header values are built from these strings: CR, LF or any other control character would
-- end the header line and start one of the caller's making (header injection).
local function check_header_value(fname, name, v)
  if type(v) == "string" and v:find("[%c\127]") then
    argerr(fname, name .. " must not contain control characters (CR, LF, ...)")
  end
  return v
end

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

---------------------------------------------------------------------------------------------
-- the request engine

local function log(self, level, msg)
  if self.logger then self.logger(level, msg) end
end

local function uniform()
  local r = core.random_bytes(2)
  return (r:byte(1) * 256 + r:byte(2)) / 65535
end

local function http_attempt(self, method, url, headers, body, fresh)
  return ploop.await(function(on_done)
    core.request {
      method = method, url = url, headers = headers, body = body,
      timeout = self.timeout, connect_timeout = self.connect_timeout, max_size = self.max_size,
      user_agent = self.user_agent, http_version = self.http_version, cainfo = self.cainfo,
      fresh = fresh, on_done = on_done,
    }
  end)
end

-- The in-process transport: fn(method, path_with_query, headers, body) -> status, headers,
-- body | nil, errcode, message. Its answer is shaped like core.request's (header names in
-- lower case) so that everything after it runs unchanged.
local function transport_attempt(self, method, pq, headers, body)
  local ok, status, rh, rbody = pcall(self.transport, method, pq, headers, body)
  if not ok then
    return nil, errors.new { status = 0, code = "TRANSPORT_ERROR", message = "transport raised: " .. tostring(status) }
  end
  if status == nil then
    return nil, errors.new { status = 0, code = type(rh) == "string" and rh or "TRANSPORT_ERROR",
      message = type(rbody) == "string" and rbody or "the transport failed" }
  end
  if math_type(status) ~= "integer" then
    return nil, errors.new { status = 0, code = "TRANSPORT_ERROR",
      message = "transport returned a status that is not an integer: " .. tostring(status) }
  end
  local h = {}
  if type(rh) == "table" then
    for k, v in pairs(rh) do
      if type(k) == "string" then h[k:lower()] = tostring(v) end
    end
  end
  if type(rbody) == "table" then rbody = core.json_encode(rbody) end
  return { status = status, headers = h, body = type(rbody) == "string" and rbody or "" }
end

-- spec: { query=, body= (table, JSON-encoded), auth = "key"|"bearer"|"either"|"none",
--         idempotency_key=, retry_safe = true (repeating it cannot do harm),
--         raw = true (return the body string), order = client_order_id (the call creates
--         an order: a failure whose outcome is unknown says maybe_filled) }
function methods:_call(method, path, spec)
  spec = spec or {}
  local secret = secrets[self]
  local pq = spec.query and path .. query_string(spec.query) or path
  local headers = { Accept = "application/json" }
  local auth = spec.auth or "key"
  if auth == "key" or (auth == "either" and secret.api_key) then
    if not secret.api_key then
      return nil, errors.new { status = 0, code = "MISSING_API_KEY", method = method, path = path, local_error = true,
        message = "no API key: pass api_key to polysim.new or set POLYSIM_API_KEY" }
    end
    headers["X-API-Key"] = secret.api_key
  elseif auth == "bearer" or auth == "either" then
    local token = spec.bearer or secret.bearer
    if not token then
      return nil, errors.new { status = 0, code = "MISSING_BEARER", method = method, path = path, local_error = true,
        message = "this call needs a Bearer token (the bearer option)" }
    end
    headers["Authorization"] = "Bearer " .. token
  end
  local body
  if spec.body ~= nil then
    body = core.json_encode(spec.body)
    headers["Content-Type"] = "application/json"
  end
  local ikey = spec.idempotency_key
  if ikey then headers["Idempotency-Key"] = ikey end
  local may_repeat = retry.idempotent[method] or ikey ~= nil or spec.retry_safe or false
  -- Not safe to repeat: a fresh connection, so that curl never re-sends it by itself.
  local fresh = not may_repeat or nil
  local transport, url = self.transport, nil
  if not transport then url = self.base_url .. pq end

  local stats = self._stats
  stats.requests = stats.requests + 1
  local started = self.deadline and core.monotime()
  local attempt, maybe_sent, err = 0, false
  while true do
    attempt = attempt + 1
    stats.attempts = stats.attempts + 1
    local resp, terr
    if transport then resp, terr = transport_attempt(self, method, pq, headers, body)
    else resp, terr = http_attempt(self, method, url, headers, body, fresh) end
    if resp then
      stats.connections_opened = stats.connections_opened + (resp.connects or 0)
      local rh = resp.headers
      local rl = core.decode_ratelimit(rh)
      if rl then self.ratelimit = rl end
      self.last_request_id = rh["x-request-id"]
      local status = resp.status
      if status >= 200 and status < 300 then
        if spec.raw then return resp.body end
        if resp.body == "" then return {} end
        local data, jerr = core.json_decode(resp.body)
        if data == nil and jerr then
          stats.errors = stats.errors + 1
          return nil, errors.new { status = status, code = "DECODE_ERROR", method = method,
            path = path, request_id = self.last_request_id,
            message = "response is not valid JSON: " .. jerr }
        end
        return data
      end
      err = core.decode_error(status, rh, resp.body, method, path)
      err.retry_after = retry.retry_after(err.retry_after)
      if not retry.status_not_processed[status] and status >= 500 then maybe_sent = true end
    else
      err = terr
      err.method, err.path = method, path
      local t = retry.transport[err.code]
      if not (t and t.unsent) then maybe_sent = true end
    end
    err.attempts = attempt
    local again = retry.classify(err, may_repeat)
    if err.status == 404 and self.retry_not_found and err.code == "MARKET_NOT_FOUND" then
      err.retryable, again = true, true
    end
    if not again or attempt > self.max_retries then break end
    local left = started and self.deadline - (core.monotime() - started)
    local delay, why = retry.delay(err, attempt, self, uniform(), left)
    if not delay then
      err.retry_stopped = why            -- "retry_after": the server asked for longer than retry_cap
      break
    end
    stats.retries = stats.retries + 1
    log(self, "info", string_format("retrying %s %s after %s (%.2fs)", method, path, err.code, delay))
    self.sleep(delay)
  end
  if spec.order and maybe_sent and (err.status == 0 or err.status >= 500 or retry.status_not_processed[err.status]) then
    -- The order may have reached the exchange and filled: nobody knows. reconcile(err) asks.
    -- (A last try refused with 429/425 did nothing; an earlier one may have.)
    err.maybe_filled = true
    err.idempotency_key = ikey
    err.client_order_id = spec.order
  end
  stats.errors = stats.errors + 1
  return nil, err
end

-- A path segment: a non-empty string; ids the server itself numbers (orders, keys) may also
-- be integers.
local function pathseg(fname, name, v, int_ok)
  if int_ok and math_type(v) == "integer" then return tostring(v) end
  if type(v) ~= "string" or v == "" then
    argerr(fname, name .. " must be a non-empty string" .. (int_ok and " or an integer" or ""))
  end
  return urlencode(v)
end

---------------------------------------------------------------------------------------------
-- health

function methods:health() return self:_call("GET", "/v1/health", { auth = "none" }) end
function methods:health_live() return self:_call("GET", "/v1/health/live", { auth = "none" }) end
function methods:ready() return self:_call("GET", "/v1/health/ready", { auth = "none" }) end
function methods:status() return self:_call("GET", "/v1/status", { auth = "none" }) end

---------------------------------------------------------------------------------------------
-- market data

local MARKETS_OPTS = set { "limit", "offset", "hot_only", "search", "active_only", "page_size", "closed",
  "category" }

function methods:markets_page(p)
  p = check_table("markets_page", "params", p, true)
  check_keys("markets_page", p, MARKETS_OPTS)
  return self:_call("GET", "/v1/markets", { query = {
    limit = check_int("markets_page", "limit", p.limit, 1, 500),
    offset = check_int("markets_page", "offset", p.offset, 0),
    hot_only = check_bool("markets_page", "hot_only", p.hot_only),
    search = check_string("markets_page", "search", p.search, true),
    active_only = check_bool("markets_page", "active_only", p.active_only),
    closed = check_bool("markets_page", "closed", p.closed),
    category = check_string("markets_page", "category", p.category, true),
  } })
end

-- Iterates over every market matching p, fetching pages of p.page_size (default 100).
function methods:markets(p)
  p = check_table("markets", "params", p, true)
  check_keys("markets", p, MARKETS_OPTS)
  return paginate.offset(function(offset, limit)
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    q.page_size, q.offset, q.limit = nil, offset, limit
    return self:markets_page(q)
  end, p.offset or 0, p.page_size or p.limit or 100, { "markets", "items" })
end

function methods:market(id, p)
  local seg = pathseg("market", "condition_id", id)
  p = check_table("market", "params", p, true)
  check_keys("market", p, set { "include_book" })
  return self:_call("GET", "/v1/markets/" .. seg,
    { query = { include_book = check_bool("market", "include_book", p.include_book) } })
end

function methods:market_by_slug(slug)
  return self:_call("GET", "/v1/markets/by-slug/" .. pathseg("market_by_slug", "slug", slug))
end

function methods:market_by_token(token_id)
  return self:_call("GET", "/v1/markets-by-token/" .. pathseg("market_by_token", "token_id", token_id))
end

function methods:book(id, p)
  local seg = pathseg("book", "condition_id", id)
  p = check_table("book", "params", p, true)
  check_keys("book", p, set { "outcome", "depth" })
  return self:_call("GET", "/v1/markets/" .. seg .. "/book", { query = {
    outcome = check_string("book", "outcome", p.outcome, true),
    depth = check_int("book", "depth", p.depth, 1, 1000),
  } })
end

function methods:book_by_token(token_id)
  check_string("book_by_token", "token_id", token_id)
  return self:_call("GET", "/v1/book", { query = { token_id = token_id } })
end

local INTERVALS = { "1h", "6h", "1d", "1w", "max" }
function methods:candles(id, p)
  local seg = pathseg("candles", "condition_id", id)
  p = check_table("candles", "params", p, true)
  check_keys("candles", p, set { "interval" })
  return self:_call("GET", "/v1/markets/" .. seg .. "/candles",
    { query = { interval = check_enum("candles", "interval", p.interval, INTERVALS, true) } })
end

-- prices{ id, id, ... } -> { {condition_id, buy, sell, outcomes, source}, ... }
function methods:prices(ids)
  check_table("prices", "market_ids", ids)
  if #ids == 0 or #ids > 50 then argerr("prices", "market_ids must hold 1 to 50 ids") end
  local list = core.array {}
  for i, id in ipairs(ids) do list[i] = check_string("prices", "market_ids[" .. i .. "]", id) end
  return self:_call("POST", "/v1/prices/batch", { body = { market_ids = list } })
end

local UPDOWN_INTERVALS = { "5M", "15M", "1H", "4H", "daily" }
function methods:updown(p)
  p = check_table("updown", "params", p, true)
  check_keys("updown", p, set { "asset", "interval", "limit" })
  return self:_call("GET", "/v1/markets/updown", { query = {
    asset = check_string("updown", "asset", p.asset, true),
    interval = check_enum("updown", "interval", p.interval, UPDOWN_INTERVALS, true),
    limit = check_int("updown", "limit", p.limit, 1, 500),
  } })
end

-- Up/Down and spot (issue 9; shapes from the SDK's polysim_sdk/client.py). updown{} above
-- answers the payload object {markets, crypto_prices, available_assets, ...}.
-- the public prices routes take the key when there is one (as the SDK sends it)
local function public_auth(self) return secrets[self].api_key and "key" or "none" end

-- updown_windows{asset=, interval=, live=true} -> the payload's rows (live: open windows only)
function methods:updown_windows(p)
  p = check_table("updown_windows", "params", p, true)
  check_keys("updown_windows", p, set { "asset", "interval", "limit", "live" })
  local live = p.live
  local q = { asset = p.asset, interval = p.interval, limit = p.limit }
  local payload, err = self:updown(q)
  if not payload then return nil, err end
  local rows = payload.markets or payload
  if not live then return rows end
  return core.array(require("polysim.updown").open_windows(rows))
end

-- spot("BTC") -> {symbol, price, timestamp, source, age_seconds, stale}
function methods:spot(symbol)
  return self:_call("GET", "/prices/live/" .. pathseg("spot", "symbol", symbol), { auth = public_auth(self) })
end

-- spots() -> {prices = {SYM = spot}, supported_symbols, timestamp}
function methods:spots() return self:_call("GET", "/prices/live", { auth = public_auth(self) }) end

-- price_to_beat(condition_id | token_id) -> {price, asset, start_date, source}; nil and a
-- status 404 error while the window has not opened (pending: retry shortly).
function methods:price_to_beat(id)
  return self:_call("GET", "/prices/ptb/" .. pathseg("price_to_beat", "id", id), { auth = public_auth(self) })
end

-- spot_stream{crypto=, crypto_source=, condition_ids=, on_spot=, on_window=, on_message=,
-- on_event=, ...} -> the SSE stream (polysim.sse)
function methods:spot_stream(opts)
  return require("polysim.sse").spot(self, opts, secrets[self].api_key)
end

function methods:events_page(p)
  p = check_table("events_page", "params", p, true)
  check_keys("events_page", p, set { "limit", "offset" })
  return self:_call("GET", "/v1/events", { query = {
    limit = check_int("events_page", "limit", p.limit, 1, 500),
    offset = check_int("events_page", "offset", p.offset, 0),
  } })
end

function methods:events(p)
  p = check_table("events", "params", p, true)
  check_keys("events", p, set { "limit", "offset", "page_size" })
  return paginate.offset(function(offset, limit)
    return self:events_page { offset = offset, limit = limit }
  end, p.offset or 0, p.page_size or p.limit or 100, { "events", "items" })
end

---------------------------------------------------------------------------------------------
-- trading

local SIDES = { "BUY", "SELL" }
local ORDER_TYPES = { "market", "limit" }
local TIFS = { "FOK", "FAK", "IOC", "GTC", "GTD" }
local ORDER_FIELDS = set {
  "market_id", "side", "outcome", "quantity", "amount", "order_type", "price", "time_in_force",
  "post_only", "expiration", "client_order_id", "idempotency_key",
}

-- Validates one order table; returns the JSON body (numbers as exact strings).
local function order_body(fname, o)
  check_table(fname, "order", o)
  check_keys(fname, o, ORDER_FIELDS)
  local body = {
    market_id = check_string(fname, "market_id", o.market_id),
    side = check_enum(fname, "side", o.side, SIDES),
    outcome = check_string(fname, "outcome", o.outcome),
    order_type = check_enum(fname, "order_type", o.order_type, ORDER_TYPES, true),
    time_in_force = check_enum(fname, "time_in_force", o.time_in_force, TIFS, true),
    post_only = check_bool(fname, "post_only", o.post_only),
    expiration = check_int(fname, "expiration", o.expiration, 0),
    client_order_id = check_header_value(fname, "client_order_id",
      check_string(fname, "client_order_id", o.client_order_id, true)),
    price = check_number(fname, "price", o.price, true),
    quantity = check_number(fname, "quantity", o.quantity, true),
    amount = check_number(fname, "amount", o.amount, true),
  }
  if (body.quantity == nil) == (body.amount == nil) then
    argerr(fname, "give exactly one of quantity and amount")
  end
  if body.amount and (body.side ~= "BUY" or (body.order_type or "market") ~= "market") then
    argerr(fname, "amount is for market BUY orders only; use quantity")
  end
  if body.price == nil then
    argerr(fname, "price is required (the worst price you accept, also for market orders)")
  end
  return body
end

-- place_order{ market_id, side, outcome, quantity | amount, price, order_type, ... }
-- Every order carries a client_order_id (a UUID when none is given) and is retried under one
-- idempotency key (idempotency_key, else the client_order_id), so a retry after a lost
-- answer can never fill twice; when the retries run out with the outcome unknown, the error
-- says maybe_filled = true and client:reconcile(err) finds out.
function methods:place_order(o)
  local body = order_body("place_order", o)
  local key = o.idempotency_key
  if key ~= nil then check_header_value("place_order", "idempotency_key", check_string("place_order", "idempotency_key", key)) end
  body.client_order_id = body.client_order_id or uuid4()
  key = key or body.client_order_id
  local r, err = self:_call("POST", "/v1/orders", { body = body, idempotency_key = key, order = body.client_order_id })
  if err and err.maybe_filled then err.market_id = body.market_id end
  return r, err
end

-- place_orders{ order, order, ... }: one batch call; every order without a client_order_id
-- gets one, so that a retried batch executes each order at most once.
function methods:place_orders(list)
  check_table("place_orders", "orders", list)
  if #list == 0 then argerr("place_orders", "orders must not be empty") end
  local orders = core.array {}
  for i, o in ipairs(list) do
    local ok, body = pcall(order_body, "place_orders", o)
    if not ok then
      local msg = tostring(body):gsub("^.-:%d+: ", ""):gsub("^place_orders: ", "place_orders: orders[" .. i .. "]: ")
      argerr(nil, msg)
    end
    body.client_order_id = body.client_order_id or uuid4()
    orders[i] = body
  end
  return self:_call("POST", "/v1/orders/batch", { body = { orders = orders }, retry_safe = true })
end

-- reconcile(err): settles an order error whose outcome is unknown (err.maybe_filled) by
-- looking the order up by its client order id among the market's orders (newest first).
-- Returns the order (its status says whether and how it filled), or false when the
-- exchange has no such order (it never arrived: nothing filled), or nil, lookup_err when the
-- lookup itself failed (the outcome is still unknown; call again later).
function methods:reconcile(err)
  if type(err) ~= "table" or type(err.client_order_id) ~= "string" then
    argerr("reconcile", "err must be an order error carrying client_order_id (err.maybe_filled)")
  end
  local coid, market = err.client_order_id, err.market_id
  local ok, found = pcall(function()
    for o in self:orders { market_id = market, page_size = 200 } do
      if o.client_order_id == coid then return o end
    end
    return false
  end)
  if not ok then
    if errors.is_error(found) then return nil, found end
    error(found, 0)
  end
  return found
end

function methods:order(id)
  return self:_call("GET", "/v1/orders/" .. pathseg("order", "order_id", id, true))
end

local STATUSES = { "PENDING", "OPEN", "FILLED", "CANCELLED", "EXPIRED" }   -- OPEN = PENDING (polysim_sdk)
local ORDERS_OPTS = set { "status", "market_id", "side", "limit", "offset", "cursor", "page_size" }

function methods:orders_page(p)
  p = check_table("orders_page", "params", p, true)
  check_keys("orders_page", p, ORDERS_OPTS)
  return self:_call("GET", "/v1/orders", { query = {
    status = check_enum("orders_page", "status", p.status, STATUSES, true),
    market_id = check_string("orders_page", "market_id", p.market_id, true),
    side = check_enum("orders_page", "side", p.side, SIDES, true),
    limit = check_int("orders_page", "limit", p.limit, 1, 200),
    offset = check_int("orders_page", "offset", p.offset, 0),
    cursor = check_string("orders_page", "cursor", p.cursor, true),
  } })
end

-- Iterates over every order matching p, following next_cursor.
function methods:orders(p)
  p = check_table("orders", "params", p, true)
  check_keys("orders", p, ORDERS_OPTS)
  local size = p.page_size or p.limit or 100
  check_int("orders", "page_size", size, 1, 200)
  return paginate.cursor(function(cursor)
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    q.page_size, q.limit, q.cursor = nil, size, cursor or p.cursor
    return self:orders_page(q)
  end, "orders")
end

function methods:cancel_order(id)
  return self:_call("DELETE", "/v1/orders/" .. pathseg("cancel_order", "order_id", id, true))
end

-- Cancelling everything twice is harmless, so these retry like idempotent calls.
-- The server refuses cancel-all without a confirmation (polysim_sdk/client.py cancel_all sends
-- X-Confirm-Cancel-All: true); ?confirm=true is the same confirmation in the query, which
-- needs no header support in _call.
function methods:cancel_all()
  return self:_call("POST", "/v1/cancel-all", { retry_safe = true, query = { confirm = "true" } })
end

function methods:cancel_market_orders(market_id)
  check_string("cancel_market_orders", "market_id", market_id)
  return self:_call("DELETE", "/v1/cancel-market-orders", { query = { market = market_id } })
end

local CLOB_TYPES = { "GTC", "FOK", "IOC", "GTD" }
-- clob_order{ token_id, side, price, size, order_type, client_order_id }: Polymarket-shaped.
function methods:clob_order(o)
  check_table("clob_order", "order", o)
  check_keys("clob_order", o, set { "token_id", "side", "price", "size", "quantity", "order_type",
    "client_order_id", "expiration" })
  local size = o.size
  if size == nil then size = o.quantity end
  local body = {
    token_id = check_string("clob_order", "token_id", o.token_id),
    side = check_enum("clob_order", "side", o.side, SIDES),
    price = check_number("clob_order", "price", o.price),
    size = check_number("clob_order", "size", size),
    order_type = check_enum("clob_order", "order_type", o.order_type, CLOB_TYPES, true),
    client_order_id = check_header_value("clob_order", "client_order_id",
      check_string("clob_order", "client_order_id", o.client_order_id, true)) or uuid4(),
    expiration = check_int("clob_order", "expiration", o.expiration, 0),
  }
  return self:_call("POST", "/v1/clob/order", { body = body, idempotency_key = body.client_order_id,
    order = body.client_order_id })
end

---------------------------------------------------------------------------------------------
-- account

function methods:balance() return self:_call("GET", "/v1/account/balance") end

function methods:positions(p)
  p = check_table("positions", "params", p, true)
  check_keys("positions", p, set { "status" })
  return self:_call("GET", "/v1/account/positions",
    { query = { status = check_enum("positions", "status", p.status, { "OPEN", "CLOSED" }, true) } })
end

function methods:portfolio() return self:_call("GET", "/v1/account/portfolio") end

local HISTORY_OPTS = set { "market_id", "side", "limit", "offset", "page_size" }
function methods:history_page(p)
  p = check_table("history_page", "params", p, true)
  check_keys("history_page", p, HISTORY_OPTS)
  return self:_call("GET", "/v1/account/history", { query = {
    market_id = check_string("history_page", "market_id", p.market_id, true),
    side = check_enum("history_page", "side", p.side, SIDES, true),
    limit = check_int("history_page", "limit", p.limit, 1, 500),
    offset = check_int("history_page", "offset", p.offset, 0),
  } })
end

function methods:history(p)
  p = check_table("history", "params", p, true)
  check_keys("history", p, HISTORY_OPTS)
  return paginate.offset(function(offset, limit)
    return self:history_page { market_id = p.market_id, side = p.side, offset = offset, limit = limit }
  end, p.offset or 0, p.page_size or p.limit or 100, { "history", "trades", "items" })
end

function methods:equity(p)
  p = check_table("equity", "params", p, true)
  check_keys("equity", p, set { "days", "limit" })
  return self:_call("GET", "/v1/account/equity", { query = { days = check_int("equity", "days", p.days, 1, 90),
    limit = check_int("equity", "limit", p.limit, 1, 10000) } })
end

function methods:reset_balance()
  return self:_call("POST", "/v1/account/reset-api-balance")
end

function methods:me() return self:_call("GET", "/v1/me", { auth = "either" }) end
function methods:entitlements() return self:_call("GET", "/v1/account/me/entitlements", { auth = "either" }) end

-- The trade history as CSV text; p.market_id keeps one market's trades.
function methods:export_trades(p)
  p = check_table("export_trades", "params", p, true)
  check_keys("export_trades", p, set { "market_id" })
  return self:_call("GET", "/v1/export/trades.csv", { raw = true,
    query = { market_id = check_string("export_trades", "market_id", p.market_id, true) } })
end

---------------------------------------------------------------------------------------------
-- keys

local TIERS = { "free", "pro", "pro_plus", "enterprise" }
local PERMISSIONS = { "read", "trade" }

function methods:keys_page(p)
  p = check_table("keys_page", "params", p, true)
  check_keys("keys_page", p, set { "limit", "offset" })
  return self:_call("GET", "/v1/keys", { auth = "either", query = {
    limit = check_int("keys_page", "limit", p.limit, 1, 100),
    offset = check_int("keys_page", "offset", p.offset, 0),
  } })
end

-- Iterates over the account's keys: one page (an account holds at most a handful; the
-- server answers them all at once).
function methods:keys(p)
  p = check_table("keys", "params", p, true)
  check_keys("keys", p, set { "page_size" })
  local page, err = self:keys_page { limit = check_int("keys", "page_size", p.page_size, 1, 100) or 100 }
  if not page then error(err, 2) end
  local list, i = paginate.list_of(page, { "keys", "items" }), 0
  return function()
    i = i + 1
    return list[i]
  end
end

local function key_body(fname, p)
  check_keys(fname, p, set { "name", "tier", "permissions" })
  local body = {
    name = check_string(fname, "name", p.name, true),
    tier = check_enum(fname, "tier", p.tier, TIERS, true),
  }
  if p.permissions ~= nil then
    check_table(fname, "permissions", p.permissions)
    body.permissions = core.array {}
    for i, perm in ipairs(p.permissions) do
      body.permissions[i] = check_enum(fname, "permissions[" .. i .. "]", perm, PERMISSIONS)
    end
  end
  return body
end

function methods:create_key(p)
  p = check_table("create_key", "params", p, true)
  return self:_call("POST", "/v1/keys", { auth = "either", body = key_body("create_key", p) })
end

-- bootstrap{ token = <Bearer JWT>, name = } creates the first key of an account.
function methods:bootstrap(p)
  p = check_table("bootstrap", "params", p)
  check_keys("bootstrap", p, set { "token", "name" })
  local token = p.token or secrets[self].bearer
  check_string("bootstrap", "token", token)
  return self:_call("POST", "/v1/keys/bootstrap", { auth = "bearer", bearer = token,
    body = { name = check_string("bootstrap", "name", p.name, true) } })
end

function methods:revoke_key(id)
  return self:_call("DELETE", "/v1/keys/" .. pathseg("revoke_key", "key_id", id, true), { auth = "either" })
end

function methods:rotate_key(id)
  return self:_call("POST", "/v1/keys/" .. pathseg("rotate_key", "key_id", id, true) .. "/rotate", { auth = "either" })
end

function methods:rename_key(id, name)
  local seg = pathseg("rename_key", "key_id", id, true)
  return self:_call("PATCH", "/v1/keys/" .. seg,
    { auth = "either", body = { name = check_string("rename_key", "name", name) } })
end

function methods:tiers() return self:_call("GET", "/v1/keys/tiers", { auth = "either" }) end
function methods:ws_token() return self:_call("POST", "/v1/keys/ws-token", { auth = "either" }) end

---------------------------------------------------------------------------------------------
-- live streams (polysim.stream): WebSocket feeds that reconnect by themselves

-- prices_stream{ markets = {ids}, on_price = fn(msg), on_event = fn(ev) } -> stream
function methods:prices_stream(opts) return require("polysim.stream").prices(self, opts) end
-- executions_stream{ on_fill = fn(msg), on_event = fn(ev) } -> stream
function methods:executions_stream(opts) return require("polysim.stream").executions(self, opts) end

-- data API (data_orders/data_trades iterators, prices_history) and wallets: polysim.client.data
require("polysim.client.data").install(methods, { check_string = check_string, check_int = check_int,
  check_table = check_table, check_keys = check_keys, set = set, pathseg = pathseg, check_enum = check_enum })

_M.methods = methods
_M.mt = mt
return _M
