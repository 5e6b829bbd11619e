-- Request parsing shared by the exchange's handlers: query parameters, JSON bodies and path
-- parameters with FastAPI-shaped 422s, and the lookups every resource needs (a visible
-- market, an outcome). Each helper raises the error response (errors.throw) on bad input.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local markets = require "polysim.exchange.markets"
local orders = require "polysim.exchange.orders"

local _M = {}
local array, absent = util.array, util.absent

local function q_str(req, name)
  local v = req.query[name]
  if v == nil or v == "" then return nil end
  return v
end

local function q_int(req, name, default, lo, hi)
  local v = q_str(req, name)
  if v == nil then return default end
  local n = v:match("^%s*([+-]?%d+)%s*$")
  n = n and math.tointeger(tonumber(n))
  if not n then
    errors.invalid({ "query", name }, "Input should be a valid integer, unable to parse string as an integer",
        "int_parsing", v)
  end
  if lo and n < lo then
    errors.invalid({ "query", name }, "Input should be greater than or equal to " .. lo, "greater_than_equal", v)
  end
  if hi and n > hi then
    errors.invalid({ "query", name }, "Input should be less than or equal to " .. hi, "less_than_equal", v)
  end
  return n
end

local TRUE = { ["true"] = true, ["1"] = true, yes = true, on = true, t = true, y = true }
local FALSE = { ["false"] = true, ["0"] = true, no = true, off = true, f = true, n = true }

local function q_bool(req, name, default)
  local v = q_str(req, name)
  if v == nil then return default end
  local l = v:lower()
  if TRUE[l] then return true end
  if FALSE[l] then return false end
  errors.invalid({ "query", name }, "Input should be a valid boolean, unable to interpret input", "bool_parsing", v)
end

local function q_enum(req, name, allowed, upper)
  local v = q_str(req, name)
  if v == nil then return nil end
  local k = upper and v:upper() or v
  if not allowed[k] then
    local list = {}
    for a in pairs(allowed) do list[#list + 1] = "'" .. a .. "'" end
    table.sort(list)
    errors.invalid({ "query", name }, "Input should be " .. table.concat(list, ", "), "enum", v)
  end
  return k
end

-- The JSON body of a request: an object, or a thrown 422.
local function body_object(req, optional)
  if req.json_error then
    errors.invalid({ "body", 0 }, "JSON decode error: " .. tostring(req.json_error), "json_invalid")
  end
  local j = req.json
  if absent(j) then
    if optional then return {} end
    errors.invalid({ "body" }, "Field required", "missing")
  end
  if type(j) ~= "table" or util.is_array(j) or (j[1] ~= nil) then
    errors.invalid({ "body" }, "Input should be a valid dictionary or object", "model_attributes_type")
  end
  return j
end

-- The required list field `name` of a JSON body object (422 when missing or not a list).
local function body_list(j, name)
  local v = j[name]
  if absent(v) then errors.invalid({ "body", name }, "Field required", "missing") end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    errors.invalid({ "body", name }, "Input should be a valid list", "list_type")
  end
  return v
end

local function path_int(v, name)
  local n = type(v) == "string" and v:match("^%d+$") and math.tointeger(tonumber(v))
  if not n then
    errors.invalid({ "path", name }, "Input should be a valid integer, unable to parse string as an integer",
        "int_parsing", v)
  end
  return n
end

local function ok(body, status) return { status = status or 200, body = body } end

local function market_or_404(self, cid, now)
  local m = self.U.by_id[cid]
  if not m then errors.fail(404, "MARKET_NOT_FOUND", "Market not found: " .. tostring(cid)) end
  local nf = orders.not_yet_visible(m, now)
  if nf then errors.throw(nf) end
  return m
end

local function outcome_or_fail(m, label)
  if label == nil then return 1 end
  local idx = markets.outcome_index(m, label)
  if not idx then
    local labels = array()
    for i, o in ipairs(m.outcomes) do labels[i] = o.label end
    errors.fail(400, "INVALID_OUTCOME", "Unknown outcome '" .. label .. "'", { valid_outcomes = labels })
  end
  return idx
end

local function idem_header(req)
  local v = req.headers["idempotency-key"]
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

_M.q_str = q_str
_M.q_int = q_int
_M.q_bool = q_bool
_M.q_enum = q_enum
_M.body_object = body_object
_M.body_list = body_list
_M.path_int = path_int
_M.ok = ok
_M.market_or_404 = market_or_404
_M.outcome_or_fail = outcome_or_fail
_M.idem_header = idem_header
return _M
