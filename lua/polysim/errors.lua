-- The error object every failed call returns as its second value. Built in C
-- (core.decode_error) for HTTP answers and transport failures; here for the few made in Lua.
-- Fields: status (0 for transport), code, message, request_id, details, retry_after,
-- retryable, method, path, attempts. tostring(err) is one readable line; it never holds
-- the API key (requests carry it in a header, and no header is ever copied into an error).
local core = require "polysim.core"

local setmetatable, getmetatable = setmetatable, getmetatable

local _M = {}

_M.mt = core.error_mt

function _M.new(fields)
  fields.retryable = fields.retryable or false
  return setmetatable(fields, core.error_mt)
end

function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

return _M
