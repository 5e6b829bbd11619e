-- Error responses of the local exchange, in the shapes BRIEF.md documents:
--   ApiError      {error = CODE, message = human, request_id = uuid, details = {...}?}
--                 with header X-Polysim-Code = CODE
--   validation    422 {detail = [{loc, msg, type}], error, message, request_id}
--                 (FastAPI's shape, plus the ApiError fields so either decoder works)
--   detail        {detail = "text"} with X-Polysim-Code HTTP_<status> (FastAPI HTTPException paths:
--                 unknown route, wrong method, bad bootstrap JWT)
-- handle() fills request_id and x-request-id.
local util = require "polysim.exchange.util"

local _M = {}

local array = util.array

--- api(status, code, message, details): an ApiError response.
function _M.api(status, code, message, details)
  return {
    status = status,
    headers = { ["X-Polysim-Code"] = code },
    body = { error = code, message = message or code, details = details },
    is_error = true,
  }
end

--- human(status, code, message, details): an ApiError whose body `error` is the human
--- message and whose machine code lives only in the header (the CLOSED_BETA shape).
function _M.human(status, code, message, details)
  local r = _M.api(status, code, message, details)
  r.body.error = message
  return r
end

--- item(loc, msg, typ, input): one FastAPI validation item.
function _M.item(loc, msg, typ, input)
  local it = { loc = array(loc), msg = msg, type = typ }
  if input ~= nil and type(input) ~= "table" then it.input = input end
  return it
end

--- validation(items, code): a 422 with FastAPI's detail list; code defaults to
--- VALIDATION_ERROR (INVALID_PRICE / INVALID_QUANTITY for those fields).
function _M.validation(items, code)
  code = code or "VALIDATION_ERROR"
  local first = items[1]
  local msg = first and (table.concat(first.loc, ".") .. ": " .. first.msg) or "Validation error"
  local r = _M.api(422, code, msg)
  r.body.detail = array(items)
  return r
end

--- detail(status, text, code): FastAPI HTTPException body {detail = text}. The header
--- code is always sent (every error carries one): HTTP_<status> unless one is given.
function _M.detail(status, text, code)
  return {
    status = status,
    headers = { ["X-Polysim-Code"] = code or ("HTTP_" .. status) },
    body = { detail = text },
    is_error = true, no_request_id_in_body = true,
  }
end

function _M.not_found() return _M.detail(404, "Not Found") end
function _M.method_not_allowed() return _M.detail(405, "Method Not Allowed") end

function _M.internal(msg)
  return _M.api(500, "INTERNAL_ERROR", msg or "Internal server error")
end

-- Raising an error response from deep inside a handler: throw(resp) unwinds to handle(),
-- which returns resp. Anything else raised is a bug and becomes a 500.
local thrown_mt = { __name = "polysim.exchange.thrown" }

function _M.throw(resp) error(setmetatable({ resp = resp }, thrown_mt), 0) end
function _M.is_thrown(e) return type(e) == "table" and getmetatable(e) == thrown_mt end

--- Shorthands that throw.
function _M.fail(status, code, message, details) _M.throw(_M.api(status, code, message, details)) end
function _M.invalid(loc, msg, typ, input, code)
  _M.throw(_M.validation({ _M.item(loc, msg, typ, input) }, code))
end

return _M
