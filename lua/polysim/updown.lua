--- Helpers for Up/Down window rows (`client:updown{}.markets`, `client:updown_windows{}`).
-- Their meaning follows the official SDK's `polysim_sdk/updown.py`: they take the plain rows
-- the server sent, never fetch, and answer nil / false for a missing or malformed field
-- (`polysim.null` included) rather than raising. `now` is Unix seconds (default `os.time()`).
--
--    local updown = require "polysim.updown"
--    local p = assert(client:updown{ asset = "BTC", interval = "5M" })
--    local w = updown.next_to_expire(p.markets)
--    print(w.time_range, updown.price_to_beat(w), updown.seconds_to_expiry(w))
-- @module polysim.updown
local _M = {}

--- The underlyings of Up/Down series: `BTC ETH SOL XRP SPX NDX`.
_M.ASSETS = { "BTC", "ETH", "SOL", "XRP", "SPX", "NDX" }
--- Window lengths: `5M 15M 1H 4H daily`.
_M.INTERVALS = { "5M", "15M", "1H", "4H", "daily" }

--- A window row, as `client:updown{}.markets` and `client:updown_windows{}` list them (all
-- values as the server sent them: numbers are strings).
-- @table Window
-- @field condition_id the market id to trade (`place_order{ market_id = … }`)
-- @field time_range human text of the window, e.g. `"18:25-18:30 UTC"`
-- @field start_date ISO-8601 start
-- @field end_date ISO-8601 end (`seconds_to_expiry` reads it)
-- @field event_metadata_ptb the strike (price to beat), when known; else `group_item_threshold`
-- @field active,closed,resolved booleans (`is_window_open`)
-- @field markets `{ market }`: its `outcomes`, `outcome_prices`, `token_ids` are JSON strings
--   (`'["Up","Down"]'`): decode them with `polysim.json.decode`

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

--- Parses ISO-8601 time text (`Z`, `+HH:MM` offsets, or naive = UTC; fractions kept).
-- @param v the text
-- @treturn number|nil Unix seconds, or nil when `v` is not such text
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

--- Seconds until the window's `end_date`.
-- @tparam Window row a window row
-- @tparam[opt] number now Unix seconds
-- @treturn number|nil seconds (negative once expired), nil without a valid `end_date`
function _M.seconds_to_expiry(row, now)
  local e = _M.parse_iso(field(row, "end_date"))
  if not e then return nil end
  return e - (now or os.time())
end

--- Whether a window is open: `active`, and neither `closed` nor `resolved`.
-- @tparam Window row a window row
-- @treturn bool
function _M.is_window_open(row)
  return (field(row, "active") == true and not field(row, "closed") and not field(row, "resolved")) or false
end

--- The strike: `event_metadata_ptb`, else `group_item_threshold`, when positive.
-- Before the strike is known, ask `client:price_to_beat(row.condition_id)` (404 until the open).
-- @tparam Window row a window row
-- @treturn number|nil the strike, nil when the row has none yet
function _M.price_to_beat(row)
  for _, k in ipairs { "event_metadata_ptb", "group_item_threshold" } do
    local v = number(field(row, k))
    if v and v > 0 then return v end
  end
  return nil
end

--- Spot minus strike.
-- @tparam number|string spot the spot price
-- @tparam number|string ptb the strike
-- @treturn number|nil `spot - ptb`, nil when either is not a number
function _M.ptb_distance(spot, ptb)
  local s, p = number(spot), number(ptb)
  if not s or not p then return nil end
  return s - p
end

--- Spot's distance from the strike in basis points.
-- @tparam number|string spot the spot price
-- @tparam number|string ptb the strike
-- @treturn number|nil `(spot - ptb) / ptb * 10000`, nil when either is not a number or ptb is 0
function _M.ptb_distance_bps(spot, ptb)
  local s, p = number(spot), number(ptb)
  if not s or not p or p == 0 then return nil end
  return (s - p) / p * 10000
end

--- The open windows of a list, in order.
-- @tparam {Window,...} rows window rows (anything else counts as an empty list)
-- @treturn {Window,...} the rows for which `is_window_open` is true
function _M.open_windows(rows)
  local out = {}
  for _, r in ipairs(type(rows) == "table" and rows or {}) do
    if _M.is_window_open(r) then out[#out + 1] = r end
  end
  return out
end

--- The open window that ends soonest (and has not ended).
-- @tparam {Window,...} rows window rows
-- @tparam[opt] number now Unix seconds
-- @treturn Window|nil the open row with the smallest positive `seconds_to_expiry`
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
