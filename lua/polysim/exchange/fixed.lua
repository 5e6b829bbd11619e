-- Exact fixed-point money for the local exchange: Lua integers at a decimal scale.
--
-- Scales used by the exchange (never binary floats for money):
--   price, quantity  : 4 decimals  (P = 10^4)   "0.65" -> 6500, "10" -> 100000
--   money (cash, notional, fee, volume): 8 decimals (M = 10^8)
--     so notional = price_units * quantity_units is exact: 6500 * 100000 = 6.5e8 = "6.50"
--   fees are rounded to cents (10^6 money units), half-even (Python's Decimal default).
local _M = {}

local mtype, tointeger = math.type, math.tointeger
local MAXINT = math.maxinteger

_M.P = 10000          -- price / quantity scale
_M.M = 100000000      -- money scale
_M.CENT = 1000000     -- one cent in money units

local POW10 = {}
do local v = 1; for i = 0, 18 do POW10[i] = v; v = v * 10 end end
_M.POW10 = POW10

--- parse(s, dp): decimal string -> integer scaled by 10^dp.
--- Accepts "[+-]digits[.digits][e[+-]digits]". Returns nil, reason on failure where reason
--- is "format" (not a number), "precision" (more than dp significant decimals) or "range".
function _M.parse(s, dp)
  if type(s) ~= "string" or #s > 64 then return nil, "format" end
  local sign, body = s:match("^%s*([+-]?)(.-)%s*$")
  local mant, ex = body:match("^([%d%.]+)[eE]([+-]?%d+)$")
  if not mant then mant, ex = body, "0" end
  if #ex > 5 then return nil, "format" end
  local int, frac = mant:match("^(%d*)%.(%d*)$")
  if not int then int, frac = mant:match("^(%d+)$"), "" end
  if not int or (int == "" and frac == "") then return nil, "format" end
  local digits = (int .. frac):gsub("^0+", "")
  if digits == "" then return 0 end
  local shift = tonumber(ex) - #frac + dp
  local v
  if shift >= 0 then
    if #digits + shift > 18 then return nil, "range" end
    v = tointeger(tonumber(digits)) * POW10[shift]
  else
    local cut = -shift
    if cut >= #digits or digits:sub(#digits - cut + 1):find("[1-9]") then
      return nil, "precision"
    end
    digits = digits:sub(1, #digits - cut)
    if #digits > 18 then return nil, "range" end
    v = tointeger(tonumber(digits))
  end
  if sign == "-" then v = -v end
  return v
end

--- coerce(v, dp): a JSON value (string, integer, float) -> scaled integer, or nil, reason
--- ("type" for booleans, tables, nil and non-finite numbers).
function _M.coerce(v, dp)
  local t = type(v)
  if t == "string" then return _M.parse(v, dp) end
  if t == "number" then
    if mtype(v) == "integer" then
      if v > MAXINT // POW10[dp] or v < -(MAXINT // POW10[dp]) then return nil, "range" end
      return v * POW10[dp]
    end
    if v ~= v or v == math.huge or v == -math.huge then return nil, "type" end
    return _M.parse(string.format("%.10g", v), dp)
  end
  return nil, "type"
end

--- format(v, dp, min_dp): scaled integer -> decimal string with at most dp decimals, trailing
--- zeros trimmed down to min_dp decimals (default 0).
local FMT, ZEROS = {}, {}
for d = 0, 18 do FMT[d] = "%d.%0" .. d .. "d"; ZEROS[d] = d > 0 and ("." .. string.rep("0", d)) or "" end
local sformat = string.format

function _M.format(v, dp, min_dp)
  min_dp = min_dp or 0
  local sign = ""
  if v < 0 then sign = "-"; v = -v end
  local unit = POW10[dp]
  local ip, fp = v // unit, v % unit
  if fp == 0 then return sign .. ip .. ZEROS[min_dp] end
  local digits = dp
  if fp % 10000 == 0 then fp = fp // 10000; digits = digits - 4 end
  if fp % 100 == 0 then fp = fp // 100; digits = digits - 2 end
  if fp % 10 == 0 then fp = fp // 10; digits = digits - 1 end
  if fp % 10 == 0 then fp = fp // 10; digits = digits - 1 end
  if digits < min_dp then fp = fp * POW10[min_dp - digits]; digits = min_dp end
  return sign .. sformat(FMT[digits], ip, fp)
end

-- Common renderings.
-- perf (issue 13): prices repeat (a market answer formats five or six of them; 0.4 us
-- each): kept per value, starting over past 65536 values.
local price_cache, price_n = {}, 0
function _M.price(v)                                            -- "0.65", "0.6543"
  local s = price_cache[v]
  if s then return s end
  s = _M.format(v, 4, 2)
  if math.type(v) == "integer" then
    if price_n >= 65536 then price_cache, price_n = {}, 0 end
    price_cache[v], price_n = s, price_n + 1
  end
  return s
end
function _M.qty(v) return _M.format(v, 4, 0) end              -- "10", "10.5"
function _M.money(v) return _M.format(v, 8, 2) end            -- "9993.41", "6.50"

-- 128-bit helpers for a*b/d when a*b does not fit in 63 bits ---------------------------
local function umul128(a, b)      -- a, b >= 0: returns hi, lo (unsigned 64-bit halves)
  local a0, a1 = a & 0xffffffff, a >> 32
  local b0, b1 = b & 0xffffffff, b >> 32
  local p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
  local mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff)
  local lo = (p00 & 0xffffffff) | (mid << 32)
  local hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
  return hi, lo
end

local function udiv128(hi, lo, d)  -- (hi:lo) / d, d > 0, quotient assumed < 2^63
  local q, r = 0, 0
  for i = 127, 0, -1 do
    local bit
    if i >= 64 then bit = (hi >> (i - 64)) & 1 else bit = (lo >> i) & 1 end
    local carry = r < 0   -- top bit set before shift means r >= 2^63 > d after shift
    r = (r << 1) | bit
    q = q << 1
    if carry or not math.ult(r, d) then r = r - d; q = q | 1 end
  end
  return q, r
end

--- muldiv(a, b, d): floor(a*b/d) and the remainder, for a, b >= 0 and d > 0.
function _M.muldiv(a, b, d)
  if a == 0 or b == 0 then return 0, 0 end
  if a <= MAXINT // b then
    local p = a * b
    return p // d, p % d
  end
  local hi, lo = umul128(a, b)
  return udiv128(hi, lo, d)
end

--- round_div(n, d, mode): n / d rounded, n >= 0, d > 0; mode "floor", "ceil", "half_even"
--- (default) or "half_up". Also accepts (quotient, remainder) via round_qr.
function _M.round_qr(q, r, d, mode)
  if r == 0 or mode == "floor" then return q end
  if mode == "ceil" then return q + 1 end
  local twice = r * 2
  if r > MAXINT // 2 then twice = MAXINT end  -- d > MAXINT/2 means r*2 may overflow
  if twice > d or (twice == d and (mode == "half_up" or q % 2 == 1)) then return q + 1 end
  return q
end

function _M.round_div(n, d, mode)
  return _M.round_qr(n // d, n % d, d, mode)
end

function _M.muldiv_round(a, b, d, mode)
  local q, r = _M.muldiv(a, b, d)
  return _M.round_qr(q, r, d, mode)
end

--- taker_fee(sum_qpp, rate_bps): the fee in money units, rounded half-even to cents.
--- sum_qpp = sum over fills of q * p * (1 - p) in units of 1e-12 (q and p at 1e-4 each, and
--- (1-p) at 1e-4: q4 * p4 * (10000 - p4)); rate in basis points (1e-4).
--- fee = sum_qpp * 1e-12 * rate_bps * 1e-4 dollars = sum_qpp * rate_bps / 1e14 cents.
function _M.taker_fee(sum_qpp, rate_bps)
  if sum_qpp <= 0 or rate_bps <= 0 then return 0 end
  local cents = _M.muldiv_round(sum_qpp, rate_bps, 100000000000000, "half_even")
  return cents * _M.CENT
end

--- Convert between scales.
function _M.money_from_units(units, dp) -- units at 10^dp -> money units (10^8)
  return units * POW10[8 - dp]
end

return _M
