-- Argument checks for the client's methods: each names the function and the argument, and
-- raises at the caller's line (the first frame outside polysim's files). Also the small
-- helpers every endpoint group shares (set, pathseg, uuid4).
local core = require "polysim.core"
local options = require "polysim.opts"

local decimal = core.decimal
local ipairs, pcall, tostring, type = ipairs, pcall, tostring, type
local math_type, string_format, table_concat = math.type, string.format, table.concat

local _M = {}

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

-- perf (issue 13): hex by table lookup and one concatenation; string.format called
-- snprintf once per byte (12k instructions an order in the profile).
local HEX = {}
for i = 0, 255 do HEX[i] = string_format("%02x", i) end
local function uuid4()
  local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = core.random_bytes(16):byte(1, 16)
  b7 = (b7 & 0x0f) | 0x40
  b9 = (b9 & 0x3f) | 0x80
  return HEX[b1] .. HEX[b2] .. HEX[b3] .. HEX[b4] .. "-" .. HEX[b5] .. HEX[b6] .. "-" .. HEX[b7] .. HEX[b8] ..
    "-" .. HEX[b9] .. HEX[b10] .. "-" .. HEX[b11] .. HEX[b12] .. HEX[b13] .. HEX[b14] .. HEX[b15] .. HEX[b16]
end
_M.uuid4 = uuid4

-- One percent-encoder for paths, queries and the stream URL: curl's (core.url_escape).
local urlencode = core.url_escape

-- Header values are built from these strings: CR, LF or any other control character would
-- end the header line and start one of the caller's making (header injection).
local function check_header_value(fname, name, v)
  if type(v) == "string" and v:find("[%c\127]") then
    argerr(fname, name .. " must not contain control characters (CR, LF, ...)")
  end
  return v
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

_M.argerr = argerr
_M.check_string, _M.check_int, _M.check_enum, _M.check_number = check_string, check_int, check_enum, check_number
_M.check_table, _M.check_function, _M.check_bool, _M.check_keys = check_table, check_function, check_bool, check_keys
-- The two sides of an order (place_order, the order and history filters).
_M.SIDES = { "BUY", "SELL" }
_M.set, _M.urlencode, _M.check_header_value, _M.pathseg = set, urlencode, check_header_value, pathseg

return _M
