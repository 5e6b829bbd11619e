-- The simulated underlying spot prices of the local exchange (BTC, ETH, ... SPX, NDX): one
-- seeded random walk per asset on a one-second grid, in integer units of the asset's tick.
--
-- Reproducible: the walk starts at the UTC day boundary at or before the exchange's start
-- (t0) from a seeded base price, and takes one step per whole second from its own stream
-- (rng.lua fork "spot|<SYM>"), so spot at second t depends only on the seed, t0 and t. The
-- clock drives it: advance(S, now) walks up to floor(now) (ticks and reads both advance it).
-- Prices at every 300 s boundary (every Up/Down window's open and close) are kept for two
-- days, which is where window strikes and resolutions read them.
local rngm = require "polysim.exchange.rng"

local _M = {}

local floor = math.floor
local DAY, GRID = 86400, 300
local KEEP = 2 * DAY

-- {symbol, name, base price (whole units), decimals of the tick, step half-width (in
-- 1e-5 of the price, per second)}. The asset list follows the SDK's polysim_sdk/updown.py
-- ASSETS over shared/api/BRIEF.md (which lists only the four crypto assets).
_M.ASSETS = {
  { "BTC", "Bitcoin", 97000, 2, 12 },
  { "ETH", "Ethereum", 3400, 2, 16 },
  { "SOL", "Solana", 180, 3, 20 },
  { "XRP", "XRP", 2.3, 4, 20 },
  { "SPX", "S&P 500", 6000, 2, 6 },
  { "NDX", "Nasdaq 100", 21000, 2, 8 },
}
local BY_SYM = {}
for _, a in ipairs(_M.ASSETS) do BY_SYM[a[1]] = a end
_M.BY_SYM = BY_SYM

--- new(seed, now): the model, walked to floor(now).
function _M.new(seed, now)
  local root = rngm.new(seed or 1)
  local t0 = floor(now / DAY) * DAY
  local S = { t0 = t0, cur = t0, assets = {}, list = {} }
  for _, a in ipairs(_M.ASSETS) do
    local r = root:fork("spot|" .. a[1])
    local unit = 10 ^ a[4]
    -- base within +-5% of the nominal price, seeded
    local p = floor(a[3] * unit * (1 + (r:range(-500, 500)) / 10000) + 0.5)
    local st = { sym = a[1], name = a[2], dec = a[4], unit = unit, half = a[5], r = r, p = p,
                 open = p, at = { [t0] = p } }
    S.assets[a[1]] = st
    S.list[#S.list + 1] = st
  end
  _M.advance(S, now)
  return S
end

local function step(st)
  local p = st.p
  local k = st.r:range(-st.half, st.half)          -- rounded half away from zero: no drift
  local d = (p * (k < 0 and -k or k) + 50000) // 100000
  p = k < 0 and p - d or p + d
  if p < 1 then p = 1 end
  st.p = p
end

--- advance(S, now): walks every asset to second floor(now) (never backwards).
function _M.advance(S, now)
  if S.fed then return false end -- spot comes from elsewhere (feed below): no walk
  local target = floor(now)
  if target <= S.cur then return false end
  local from = S.cur
  for _, st in ipairs(S.list) do
    local at = st.at
    for t = from + 1, target do
      step(st)
      if t % GRID == 0 then at[t] = st.p end
    end
  end
  S.cur = target
  -- forget boundaries older than two days (at most once per grid step)
  local old = floor((target - KEEP) / GRID) * GRID
  if old > S.t0 and old // GRID ~= from // GRID then
    for _, st in ipairs(S.list) do
      for t in pairs(st.at) do if t < old then st.at[t] = nil end end
    end
  end
  return true
end

--- feed(S, sym, price, t): spot set from outside (a backtest's recorded tick of time t,
--- price a number or decimal string) instead of the walk, from then on (S.fed). A 300 s
--- boundary keeps the last tick at or before it, as the strike is the price in effect at the
--- window's open (SDK polysim_sdk/client.py get_price_to_beat: "the underlying-asset
--- reference price captured at the interval's open"; README: the feed can lag a second or two
--- at a boundary): the tick on it, else the one before, known once a later tick comes. False
--- for an unknown symbol or price.
function _M.feed(S, sym, price, t)
  local st = S.assets[sym]
  local v = tonumber(price)
  if not st or not v or v <= 0 then return false end
  S.fed = true
  local ft = st.ft
  if ft and t > ft then
    local b = floor(ft / GRID) * GRID + GRID
    local oldest = floor((t - KEEP) / GRID) * GRID
    if b < oldest then b = oldest end
    while b < t do st.at[b] = st.p; b = b + GRID end
  end
  if not ft or t > ft then st.ft = t end
  st.p = floor(v * st.unit + 0.5)
  if t % GRID == 0 then st.at[t] = st.p end
  local sec = floor(t)
  if sec > S.cur then S.cur = sec end
  return true
end

--- price(S, sym): the current price in tick units, or nil for an unknown symbol.
function _M.price(S, sym)
  local st = S.assets[sym]
  return st and st.p
end

--- at(S, sym, t): the price at boundary second t (a multiple of 300 at or before the walk's
--- current second and after the start), or nil (pending or unknown).
function _M.at(S, sym, t)
  local st = S.assets[sym]
  if not st or t > S.cur then return nil end
  return st.at[t]
end

--- number(S, sym, v): tick units as a JSON number (exact to the tick's decimals).
function _M.number(S, sym, v)
  local st = S.assets[sym]
  return tonumber(string.format("%." .. st.dec .. "f", v / st.unit))
end

--- text(S, sym, v): tick units as a decimal string.
function _M.text(S, sym, v)
  local st = S.assets[sym]
  return string.format("%." .. st.dec .. "f", v / st.unit)
end

return _M
