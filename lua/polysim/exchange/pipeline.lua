-- The request pipeline: normalize the request, size check, faults, routing, authentication,
-- rate limit, permission, handler; then the common response headers (request id, rate limit),
-- HEAD, and error bodies. methods:handle never raises.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local keys = require "polysim.exchange.keys"
local routes = require "polysim.exchange.routes"
local faults = require "polysim.exchange.faults"

local _M = {}
local methods = {}
_M.methods = methods
local array = util.array
local parse_query, route_for = routes.parse_query, routes.route_for
local take_fault, fault_response = faults.take, faults.response

local function normalize(req)
  if type(req) ~= "table" then return nil end
  -- perf (issue 13): the front door's tables already have the normalized shape (server.c:
  -- lowercased header names, string values, the query apart from the path); copying them
  -- was a fifth of a GET's exchange time. Its request table is its own and made per request:
  -- it becomes the normalized request. A path that still holds a "?" (an escaped one that
  -- MHD unescaped) takes the copying way, whose precedence rules it then keeps.
  local path = req.path
  if req.clean and type(path) == "string" and type(req.query) == "table" and type(req.headers) == "table"
    and type(req.method) == "string" and not path:find("?", 1, true) then
    if #path > 1 and path:byte(-1) == 47 then req.path = path:sub(1, -2) end -- a trailing "/"
    req.method = req.method:upper()
    if type(req.body) ~= "string" then req.body = nil end
    req.too_large = req.too_large and true or nil
    if req.json_error ~= nil then req.json_error = tostring(req.json_error) end
    return req
  end
  local n = { query = {}, headers = {} }
  n.method = type(req.method) == "string" and req.method:upper() or ""
  path = type(path) == "string" and path or ""
  local qpos = path:find("?", 1, true)
  if qpos then
    parse_query(path:sub(qpos + 1), n.query)
    path = path:sub(1, qpos - 1)
  end
  if #path > 1 and path:sub(-1) == "/" then path = path:sub(1, -2) end
  n.path = path
  if type(req.query) == "table" then
    for k, v in pairs(req.query) do
      if type(k) == "string" then
        if type(v) == "table" then v = v[1] end
        if type(v) == "number" or type(v) == "boolean" then v = tostring(v) end
        if type(v) == "string" then n.query[k] = v end
      end
    end
  end
  if type(req.headers) == "table" then
    for k, v in pairs(req.headers) do
      if type(k) == "string" then
        if type(v) == "table" then v = v[1] end
        if type(v) == "number" then v = tostring(v) end
        if type(v) == "string" then n.headers[k:lower()] = v end
      end
    end
  end
  n.body = type(req.body) == "string" and req.body or nil
  n.too_large = req.too_large and true or nil
  n.json = req.json
  n.text_ok = req.text_ok
  if req.json_error ~= nil then n.json_error = tostring(req.json_error) end
  return n
end

-- One request through size check, faults, routing, auth, rate limit, permission, handler.
local function run(self, req, now, state)
  -- too_large: the front door stopped reading a body over its own cap.
  if req.too_large or (self.max_body and req.body and #req.body > self.max_body) then
    return errors.api(413, "PAYLOAD_TOO_LARGE", ("Request body exceeds %d bytes"):format(self.max_body),
      { max_body = self.max_body })
  end
  local f = #self.faults > 0 and take_fault(self, req.method, req.path) or nil
  if f then
    local fr = fault_response(f)
    if fr then return fr end
    state.fault = f
  end
  local route, caps = route_for(req.method == "HEAD" and "GET" or req.method, req.path)
  if req.method == "HEAD" then state.head = true end
  if not route then
    if caps == 405 then return errors.method_not_allowed() end
    return errors.not_found()
  end
  local ctx
  if route.surface ~= "public" then
    local err
    ctx, err = keys.authenticate(self.K, req.headers, route.surface, now)
    if not ctx then return err end
    state.ctx = ctx
    local limited = keys.rate(ctx, now)
    if limited then return limited end
    if route.perm and not ctx.perms[route.perm] then
      return errors.api(403, "INSUFFICIENT_PERMISSION",
        "This API key lacks the '" .. route.perm .. "' permission",
        { required = route.perm, granted = array(util.copy(ctx.key and ctx.key.permissions or {})),
          tier = ctx.key and ctx.key.tier or ctx.user.plan })
    end
  end
  return route.handler(self, ctx, req, now, caps[1], caps[2])
end

local function run_request(self, req, now, state)
  local n = normalize(req)
  if not n then return errors.api(400, "BAD_REQUEST", "Malformed request") end
  return run(self, n, now, state)
end

local function finish(self, resp, rid, state)
  if type(resp) ~= "table" or math.type(resp.status) ~= "integer" then
    self.last_error = "handler returned a malformed response"
    resp = errors.internal()
  end
  local h = resp.headers
  local rl = state.ctx and state.ctx.rl_headers
  -- the rate limit's own (per-request) table becomes the headers when the answer has none
  if type(h) ~= "table" then h = rl or {}; resp.headers = h end
  if resp.is_error and type(resp.body) == "table" then
    resp.encoded = nil        -- the body changes below: a text made before is stale
    if not resp.no_request_id_in_body and resp.body.request_id == nil then resp.body.request_id = rid end
    util.clean(resp.body)   -- messages and details may echo arbitrary request bytes
  end
  if rl and rl ~= h then
    for k, v in pairs(rl) do h[k] = v end
  end
  h["x-request-id"] = rid
  if not resp.content_type then resp.content_type = "application/json" end
  if state.head then resp.body, resp.encoded = "", nil end -- HEAD: a GET's status and headers, no body
  if state.fault then
    if state.fault.drop_after_processing then resp.drop = true end
    if state.fault.delay then resp.delay = state.fault.delay end
  end
  resp.is_error, resp.no_request_id_in_body, resp.raw = nil, nil, nil
  return resp
end

--- handle(req): one request in, one response table out. Never raises.
function methods:handle(req)
  local now = self.clock()
  local rid
  local hdrs = type(req) == "table" and type(req.headers) == "table" and req.headers or nil
  local given = hdrs and hdrs["x-request-id"]
  if type(given) == "string" and #given > 0 and #given <= 128 and given:match("^[%w%-_.:]+$") then
    rid = given
  else
    rid = self.id_rng:uuid()
  end
  local state = {}
  local okr, resp = xpcall(run_request, debug.traceback, self, req, now, state)
  if not okr then
    if errors.is_thrown(resp) then resp = resp.resp
    else
      self.last_error = tostring(resp)
      resp = errors.internal()
    end
  end
  local okf, out = pcall(finish, self, resp, rid, state)
  if not okf then
    self.last_error = tostring(out)
    out = finish(self, errors.internal(), rid, {})
  end
  return out
end

return _M
