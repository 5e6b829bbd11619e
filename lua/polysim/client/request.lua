-- The client's request engine: base_url parsing, query strings, one attempt over HTTP
-- (core.request) or over an in-process transport, and the retry loop every call goes
-- through. It is handed the client's secret record per call (polysim.client keeps it),
-- so the key never sits on the client object.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local errors = require "polysim.errors"
local retry = require "polysim.retry"
local args = require "polysim.client.args"

local ipairs, next, pairs, pcall, tostring, type = ipairs, next, pairs, pcall, tostring, type
local math_type, string_format, table_concat, table_sort = math.type, string.format, table.concat, table.sort
local argerr, urlencode = args.argerr, args.urlencode

local _M = {}

local function query_string(q)
  if next(q) == nil then return "" end
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
local function parse_base_url(url)
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
local function proxy_for(host)
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

local function log(self, level, msg)
  if self.logger then self.logger(level, msg) end
end

local function uniform()
  local r = core.random_bytes(2)
  return (r:byte(1) * 256 + r:byte(2)) / 65535
end

-- perf (issue 13): one options table per client, refilled per attempt (core.request reads
-- it at once and keeps nothing of it, so tasks in flight side by side can share it; the
-- client's fields are read each time, as users may change them). It lives in the secret
-- record because it holds the headers, key and all, during a call.
local function http_attempt(self, secret, method, url, headers, body, fresh, decode)
  local opts = secret.opts
  if not opts then
    opts = { method = false, url = false, headers = false, body = false, timeout = false,
      connect_timeout = false, max_size = false, user_agent = false, http_version = false,
      cainfo = false, fresh = false, decode = false, lean = false, on_done = false, data = false }
    secret.opts = opts
  end
  opts.method, opts.url, opts.headers, opts.body, opts.fresh = method, url, headers, body, fresh
  -- lean: a 2xx answer's headers are only the ones read below (ratelimit, request id)
  opts.decode, opts.lean = decode, decode
  opts.timeout, opts.connect_timeout, opts.max_size = self.timeout, self.connect_timeout, self.max_size
  opts.user_agent, opts.http_version, opts.cainfo = self.user_agent, self.http_version, self.cainfo
  local resp, err = ploop.request(opts) -- sets on_done
  opts.headers, opts.body, opts.on_done = nil, nil, nil
  return resp, err
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
function _M.call(self, secret, method, path, spec)
  spec = spec or {}
  local pq = spec.query and path .. query_string(spec.query) or path
  local headers
  local auth = spec.auth or "key"
  local body, ikey = spec.body, spec.idempotency_key
  if auth == "key" or (auth == "either" and secret.api_key) then
    if not secret.api_key then
      return nil, errors.new { status = 0, code = "MISSING_API_KEY", method = method, path = path, local_error = true,
        message = "no API key: pass api_key to polysim.new or set POLYSIM_API_KEY" }
    end
    if body == nil and not ikey and not self.transport then
      -- perf (issue 13): the headers of a keyed call without a body, made once (core.request
      -- only reads them; a transport gets a table of its own, which it may change)
      headers = secret.key_headers
      if not headers then
        headers = { Accept = "application/json", ["X-API-Key"] = secret.api_key }
        secret.key_headers = headers
      end
    else
      headers = { Accept = "application/json", ["X-API-Key"] = secret.api_key }
    end
  elseif auth == "bearer" or auth == "either" then
    local token = spec.bearer or secret.bearer
    if not token then
      return nil, errors.new { status = 0, code = "MISSING_BEARER", method = method, path = path, local_error = true,
        message = "this call needs a Bearer token (the bearer option)" }
    end
    headers = { Accept = "application/json", Authorization = "Bearer " .. token }
  else
    headers = { Accept = "application/json" }
  end
  if body ~= nil then
    body = core.json_encode(body)
    headers["Content-Type"] = "application/json"
  end
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
    else resp, terr = http_attempt(self, secret, method, url, headers, body, fresh, not spec.raw) end
    if resp then
      stats.connections_opened = stats.connections_opened + (resp.connects or 0)
      local rh = resp.headers
      if rh then
        local rl = core.decode_ratelimit(rh)
        if rl then self.ratelimit = rl end
        self.last_request_id = rh["x-request-id"]
      else
        self.last_request_id = nil -- a lean 2xx answer (core.request) with none of them
      end
      local status = resp.status
      if status >= 200 and status < 300 then
        if spec.raw then return resp.body end
        -- decoded by core.request (decode = true) straight from its buffer, or here
        local data, jerr = resp.data, resp.decode_error
        if data ~= nil then return data end
        if not jerr then
          if resp.body == "" then return {} end
          data, jerr = core.json_decode(resp.body)
        end
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

_M.query_string, _M.is_loopback, _M.parse_base_url, _M.proxy_for = query_string, is_loopback, parse_base_url, proxy_for

return _M
