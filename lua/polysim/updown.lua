-- Pure helpers for Up/Down window rows (client:updown{}.markets, or client:updown_windows{}).
-- Their meaning follows the SDK's polysim_sdk/updown.py: they take the plain rows the server
-- sent, never fetch, and answer nil / false for a missing or malformed field rather than
-- raising.
--
--   local updown = require "polysim.updown"
--   updown.seconds_to_expiry(row[, now])   seconds until end_date (negative once expired)
--   updown.is_window_open(row)             active and neither closed nor resolved
--   updown.price_to_beat(row)              event_metadata_ptb, else group_item_threshold (> 0)
--   updown.ptb_distance(spot, ptb)         spot - ptb
--   updown.ptb_distance_bps(spot, ptb)     (spot - ptb) / ptb * 10000
--   updown.open_windows(rows)              the open rows, in order
--   updown.next_to_expire(rows[, now])     the open row with the smallest positive expiry
-- now is unix seconds (default os.time()).
local _M = {}

_M.ASSETS = { "BTC", "ETH", "SOL", "XRP", "SPX", "NDX" }
_M.INTERVALS = { "5M", "15M", "1H", "4H", "daily" }

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

--- parse_iso(s): ISO-8601 text (Z, +HH:MM offsets, or naive = UTC; fractions kept) -> unix
--- seconds, or nil.
function _M.parse_iso(v)
  if type(v) ~= "string" then return nil end
  v = v:match("^%s*(.-)%s*$")
  local y, mo, d, h, mi, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d)(.*)$")
  if not y then
    y, mo, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return nil end
    h, mi, rest = "0", "0", ""
  end
  local sec = 0
  local s, tail = rest:match("^:(%d%d%.?%d*)(.*)$")
  if s then sec, rest = tonumber(s), tail end
  local off
  if rest == "" or rest == "Z" or rest == "z" then off = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  y, mo, d, h, mi = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec >= 61 then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off
end

local function number(v)
  if type(v) == "number" then return v == v and v or nil end
  if type(v) == "string" then return tonumber(v) end
  return nil
end

local function field(row, k)
  if type(row) ~= "table" then return nil end
  local v = row[k]
  if type(v) == "userdata" then return nil end   -- polysim.null
  return v
end

function _M.seconds_to_expiry(row, now)
  local e = _M.parse_iso(field(row, "end_date"))
  if not e then return nil end
  return e - (now or os.time())
end

function _M.is_window_open(row)
  return (field(row, "active") == true and not field(row, "closed") and not field(row, "resolved")) or false
end

function _M.price_to_beat(row)
  for _, k in ipairs { "event_metadata_ptb", "group_item_threshold" } do
    local v = number(field(row, k))
    if v and v > 0 then return v end
  end
  return nil
end

function _M.ptb_distance(spot, ptb)
  local s, p = number(spot), number(ptb)
  if not s or not p then return nil end
  return s - p
end

function _M.ptb_distance_bps(spot, ptb)
  local s, p = number(spot), number(ptb)
  if not s or not p or p == 0 then return nil end
  return (s - p) / p * 10000
end

function _M.open_windows(rows)
  local out = {}
  for _, r in ipairs(type(rows) == "table" and rows or {}) do
    if _M.is_window_open(r) then out[#out + 1] = r end
  end
  return out
end

function _M.next_to_expire(rows, now)
  local best, best_s
  for _, r in ipairs(type(rows) == "table" and rows or {}) do
    if _M.is_window_open(r) then
      local sec = _M.seconds_to_expiry(r, now)
      if sec and sec > 0 and (not best_s or sec < best_s) then best, best_s = r, sec end
    end
  end
  return best
end

return _M
