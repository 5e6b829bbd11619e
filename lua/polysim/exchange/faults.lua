-- Fault injection: ex:inject(fault) queues a fault for the next matching requests (see the
-- exchange's header for the shapes); the pipeline takes one per request and turns it into a
-- response, or marks the processed response to be dropped or delayed.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"

local _M = {}
local methods = {}
_M.methods = methods

local DEFAULT_CODES = { [500] = "INTERNAL_ERROR", [502] = "BAD_GATEWAY", [503] = "SERVICE_UNAVAILABLE",
  [504] = "GATEWAY_TIMEOUT", [425] = "TOO_EARLY", [429] = "RATE_LIMITED" }

local function take_fault(self, method, path)
  for i, f in ipairs(self.faults) do
    if (f.path == nil or f.path == path) and (f.method == nil or f.method == method)
      and (f.path_pattern == nil or path:find(f.path_pattern)) then
      f.left = f.left - 1
      if f.left <= 0 then table.remove(self.faults, i) end
      return f
    end
  end
  return nil
end

local function fault_response(f)
  if f.raw then
    local r = f.raw
    local h = {}
    for k, v in pairs(r.headers or {}) do h[k] = v end
    return { status = r.status or 502, body = r.body or "", content_type = r.content_type or "text/plain",
             headers = h, raw = true }
  end
  if f.header_code or f.body_error then
    local status = f.status or 400
    local r = errors.api(status, f.header_code, f.message or "Injected fault")
    r.body.error = f.body_error or f.header_code
    if f.retry_after then r.headers["Retry-After"] = tostring(f.retry_after) end
    return r
  end
  if f.body ~= nil then
    return { status = f.status or 500, body = f.body, content_type = f.content_type or "application/json",
             headers = {}, raw = true }
  end
  if f.status then
    local code = f.code or DEFAULT_CODES[f.status] or ("HTTP_" .. f.status)
    local r = errors.api(f.status, code, f.message or ("Injected " .. f.status))
    if f.status == 429 or f.retry_after then
      r.headers["Retry-After"] = tostring(f.retry_after or 1)
    end
    return r
  end
  return nil
end

function methods:inject(fault)
  assert(type(fault) == "table", "inject: fault must be a table")
  local f = util.copy(fault)
  f.left = math.tointeger(f.times) or 1
  if f.times == math.huge then f.left = math.maxinteger end
  self.faults[#self.faults + 1] = f
  return true
end

function methods:clear_faults() self.faults = {} end

_M.take = take_fault
_M.response = fault_response
return _M
