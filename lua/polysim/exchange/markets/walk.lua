-- The price walk of the local exchange: random-walk steps on tick, up/down windows resolved
-- when their end passes, and set_price (the hooks' way to move a market).
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local base = require "polysim.exchange.markets.base"

local _M = {}

local ONE = fixed.P
local floor = math.floor
local set_binary_prices, sample = base.set_binary_prices, base.sample


local function clamp(v, t)
  if v < t then return t elseif v > ONE - t then return ONE - t end
  return v
end

--- resolve_updown(m, U): resolves an up/down window whose end has passed: on spot against the
--- strike when the window has a resolver (windows.lua), else "Up" when the Up price is at
--- least 0.50; books empty, prices 1 / 0; queued on U.unsettled for settlement (windows.lua).
function _M.resolve_updown(m, U)
  local fn = m.updown.resolver
  m.resolved_outcome = (fn and fn(m)) or (m.outcomes[1].price >= 5000 and "Up" or "Down")
  m.frozen, m.closed = true, true
  if U and U.unsettled then U.unsettled[#U.unsettled + 1] = m end
  for _, o in ipairs(m.outcomes) do
    o.bids, o.asks = {}, {}
    o.price = o.label == m.resolved_outcome and ONE or 0
  end
end

--- walk(U, dt, now): advances every open, non-frozen market by a random walk of dt seconds
--- and rebuilds unpinned books. Returns the list of markets whose price changed.
function _M.walk(U, dt, now)
  local changed = {}
  local steps = dt > 0 and math.max(1, math.min(16, math.tointeger(floor(dt + 0.5)) or 1)) or 0
  local drop = false
  for _, m in ipairs(U.all) do
    -- up/down windows walk on their own streams, so that asking for them never shifts the
    -- price paths of the seeded universe
    local r, br = m.rng or U.walk_rng, m.rng or U.book_rng
    if m.updown and not m.resolved_outcome and now >= m.end_date then
      _M.resolve_updown(m, U)
      changed[#changed + 1] = m
    end
    if m.updown and m.resolved_outcome then drop = true end
    local moved = false
    if steps > 0 and not m.frozen and base.state(m, now) == "open" then
      local t = m.tick
      if m.binary then
        local p = m.outcomes[1].price
        for _ = 1, steps do
          local x = r:below(200)
          if x < m.vol then p = p - t elseif x < 2 * m.vol then p = p + t end
        end
        p = clamp(p, t)
        if p ~= m.outcomes[1].price then set_binary_prices(m, p); moved = true end
      else
        for _, o in ipairs(m.outcomes) do
          local p = o.price
          for _ = 1, steps do
            local x = r:below(200)
            if x < m.vol then p = p - t elseif x < 2 * m.vol then p = p + t end
          end
          p = clamp(p, t)
          if p ~= o.price then o.price = p; moved = true end
        end
      end
    end
    if not m.resolved_outcome then base.rebuild_books(m, br) end
    if moved then
      m.updated_us = util.to_us(now)
      sample(m, now)
      changed[#changed + 1] = m
    end
  end
  if drop then            -- settled windows stay findable by id but are no longer walked
    local keep = {}
    for _, m in ipairs(U.all) do
      if not (m.updown and m.resolved_outcome) then keep[#keep + 1] = m end
    end
    U.all = keep
  end
  return changed
end

--- set_price(m, idx, p, r): sets outcome idx's price (binary: the complement follows),
--- unpins and rebuilds the books.
function _M.set_price(m, idx, p, r, now)
  if m.binary then
    set_binary_prices(m, idx == 1 and p or ONE - p)
  else
    m.outcomes[idx].price = p
  end
  for _, o in ipairs(m.outcomes) do o.pinned = nil end
  base.rebuild_books(m, r)
  m.updated_us = util.to_us(now)
  sample(m, now)
end

return _M
