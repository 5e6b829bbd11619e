-- The error object every failed call returns as its second value. Built in C
-- (core.decode_error) for HTTP answers and transport failures; here for the few made in Lua.
-- Fields: status (0 for transport), code, message, request_id, details, retry_after,
-- retryable, method, path, attempts. tostring(err) is one readable line; it never holds
-- the API key (requests carry it in a header, and no header is ever copied into an error).
local core = require "polysim.core"

local setmetatable, getmetatable = setmetatable, getmetatable

local _M = {}

--- The error object every failed call returns as its second value (`nil, err`).
-- Built in C (`core.decode_error`) for HTTP answers and transport failures; here for the few
-- made in Lua. `tostring(err)` is one line:
-- `polysim: HTTP 409 LIMIT_PRICE_NOT_MET: … (POST /v1/orders, request_id …)`. It never holds
-- the API key (requests carry it in a header, and no header is ever copied into an error).
-- (This module's doc comments are gathered here, above the code.)
-- @module polysim.errors

--- The fields of an error object.
-- @table Error
-- @field status the HTTP status, or 0 for a transport failure
-- @field code a stable machine code: the `X-Polysim-Code` header when sent, else the body's
--   `error`; `VALIDATION_ERROR` (422), `EDGE_BLOCKED` (a CDN block), `HTTP_<status>`;
--   transport: `CONNECTION_REFUSED`, `CONNECTION_RESET`, `EMPTY_REPLY`, `TIMEOUT`,
--   `DNS_FAILURE`, `TLS_ERROR`, `RESPONSE_TOO_LARGE`, `BAD_URL`; `DECODE_ERROR` for a 2xx
--   that is not JSON
-- @field message human text
-- @field request_id the `x-request-id` header, else the body's `request_id`
-- @field details the body's `details`, or the 422 `detail` list
-- @field retry_after seconds from `Retry-After`
-- @field retryable true for 425/429/500/502/503/504 and transient transport failures
-- @field method,path,attempts the call and how many tries it took
-- @field kind `"configuration"` for a call refused before anything was sent, because the
--   client lacks what it needs (`MISSING_API_KEY`, `MISSING_BEARER`); `tostring` then says
--   "configuration error" instead of "transport error"
-- @field maybe_filled true when an order's outcome is unknown (`place_order`, `clob_order`:
--   the retries ran out after a failure that may have come after the exchange took it); then
--   `client_order_id`, `idempotency_key` and `market_id` say which (`client:reconcile(err)`)

--- The metatable of error objects (`getmetatable(err) == errors.mt`).
-- @field mt

--- Makes an error object from a table of fields (`retryable` defaults to false).
-- @function new
-- @tparam table fields the `Error` fields
-- @treturn Error the same table, with the error metatable

--- Whether `v` is an error object.
-- @function is_error
-- @param v any value
-- @treturn bool

_M.mt = core.error_mt

-- Errors of the client's own set-up, not of the network: nothing was sent. tostring says
-- "configuration error" for them (a "transport error" sent users looking at the network).
local CONFIGURATION = { MISSING_API_KEY = true, MISSING_BEARER = true }

function _M.new(fields)
  fields.retryable = fields.retryable or false
  if fields.kind == nil and CONFIGURATION[fields.code] then fields.kind = "configuration" end
  return setmetatable(fields, core.error_mt)
end

function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

return _M
