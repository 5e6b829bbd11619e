-- Small shared helpers of the local exchange: JSON array marking and null, timestamps,
-- base64url.
local _M = {}

local ok, core = pcall(require, "polysim.core")
if not ok or type(core) ~= "table" then core = {} end

-- Arrays are marked with core.array_mt so that empty ones encode as [].  When the C core
-- does not provide it (yet), a private marker keeps the shape recognisable.
_M.array_mt = core.array_mt or { __name = "polysim.array" }
-- JSON null.
_M.null = core.null or setmetatable({}, { __name = "polysim.null", __tostring = function() return "null" end })

local array_mt, null = _M.array_mt, _M.null
local sformat, osdate, floor, tointeger = string.format, os.date, math.floor, math.tointeger

--- array(t): marks t (default {}) as a JSON array and returns it.
function _M.array(t) return setmetatable(t or {}, array_mt) end

--- is_array(t): true when t carries the array marker.
function _M.is_array(t) return type(t) == "table" and getmetatable(t) == array_mt end

--- opt(v): v, or JSON null when v is nil.
function _M.opt(v) if v == nil then return null end return v end

--- absent(v): true for nil and JSON null.
function _M.absent(v) return v == nil or v == null end

--- iso(sec): "2026-02-06T12:00:00Z".
-- perf (issue 13): a market's answer renders end_date and created_at on every GET, and
-- os.date was ~0.9 us each; UTC text is a pure function of the second, so it is kept (the
-- cache starts over past 4096 seconds).
local iso_cache, iso_n = {}, 0
function _M.iso(sec)
  local s = tointeger(floor(sec))
  if not s then return osdate("!%Y-%m-%dT%H:%M:%SZ", floor(sec)) end -- NaN, huge: os.date's error
  local v = iso_cache[s]
  if v then return v end
  v = osdate("!%Y-%m-%dT%H:%M:%SZ", s)
  if iso_n >= 4096 then iso_cache, iso_n = {}, 0 end
  iso_cache[s], iso_n = v, iso_n + 1
  return v
end

--- iso_us(us): microsecond timestamp -> "2026-02-06T12:00:00.123456Z".
local last_sec, last_prefix = nil, nil
function _M.iso_us(us)
  local sec = us // 1000000
  if sec ~= last_sec then last_sec, last_prefix = sec, osdate("!%Y-%m-%dT%H:%M:%S", sec) end
  return sformat("%s.%06dZ", last_prefix, us % 1000000)
end

--- to_us(seconds): float or integer seconds -> integer microseconds.
function _M.to_us(s)
  return tointeger(floor(s * 1000000)) or 0
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

--- b64url(s): unpadded base64url.
function _M.b64url(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k = (b and (c and 4 or 3)) or 2
    for j = 1, k do
      local idx = (v >> (18 - 6 * (j - 1))) & 63
      out[#out + 1] = B64:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

--- valid_utf8(s): true when s is well-formed UTF-8.
function _M.valid_utf8(s)
  return utf8.len(s) ~= nil
end

--- clean_utf8(s): s with every byte that is not part of well-formed UTF-8 replaced by "?".
function _M.clean_utf8(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8.len(s, i)
    if len then out[#out + 1] = s:sub(i); break end
    if bad > i then out[#out + 1] = s:sub(i, bad - 1) end
    out[#out + 1] = "?"
    i = bad + 1
  end
  return table.concat(out)
end

--- clean(v, depth): v with strings made valid UTF-8 and non-finite numbers replaced by
--- JSON null, recursively (tables are cleaned in place).
function _M.clean(v, depth)
  local t = type(v)
  if t == "string" then return _M.clean_utf8(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return null end
    return v
  end
  if t == "table" and v ~= null and (depth or 0) < 8 then
    for k, x in pairs(v) do
      local c = _M.clean(x, (depth or 0) + 1)
      if c ~= x then v[k] = c end
    end
  end
  return v
end

--- copy(t): a shallow copy.
function _M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return _M
