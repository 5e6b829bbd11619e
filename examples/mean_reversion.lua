-- Mean reversion on the price stream.
--
-- Follows the Yes price of a few active markets with an exponential moving average. When
-- the price falls BAND below its average it buys SIZE shares of Yes; when it rises BAND
-- above while we hold some, it sells them. Open orders are cancelled when the host stops.
--
--   polysim run examples/mean_reversion.lua      (no key: runs against a local exchange)
--   make run                                     (the same, for DURATION seconds)
--
-- Edit the constants below while it runs: the host reloads the file and the averages,
-- holdings and trade count carry over in ctx.state.
local polysim = require "polysim"

local MARKETS = 5   -- how many markets to follow
local ALPHA = 0.3   -- weight of the newest price in the average
local BAND = 0.01   -- distance from the average that triggers a trade
local SIZE = 10     -- shares per trade
local WARMUP = 4    -- prices seen before the first trade

local S = { name = "mean_reversion", cancel_on_stop = true }

-- Open binary markets with a price: the ones where "Yes" is an outcome.
local function tradable(m)
  if m.closed or m.live_price == polysim.null or type(m.outcomes) ~= "table" then return false end
  for _, o in ipairs(m.outcomes) do if o == "Yes" then return true end end
  return false
end

local function yes_price(msg)
  for _, o in ipairs(msg.outcomes or {}) do
    if o.label == "Yes" then return tonumber(o.price) end
  end
  return tonumber(msg.buy)
end

local function report(ctx)
  local st = ctx.state
  local held = 0
  for _, q in pairs(st.held) do if q > 0 then held = held + 1 end end
  ctx.log.info("%d prices, %d trades, holding in %d markets", st.prices, st.trades, held)
end

local function trade(ctx, id, side, p)
  local st = ctx.state
  local worst = side == "BUY" and math.min(0.99, p + 0.03) or math.max(0.01, p - 0.03)
  local qty = side == "BUY" and SIZE or st.held[id]
  local order, err = ctx.client:place_order {
    market_id = id, side = side, outcome = "Yes", quantity = qty, price = string.format("%.2f", worst),
  }
  if not order then
    ctx.log.warn("%s %s failed: %s", side, id:sub(1, 10), tostring(err))
    return
  end
  local filled = tonumber(order.filled_quantity or order.quantity) or 0
  st.held[id] = (st.held[id] or 0) + (side == "BUY" and filled or -filled)
  st.trades = st.trades + 1
  ctx.log.info("%s %s Yes x%s at %s (average %.3f)", side, id:sub(1, 10), tostring(filled),
    tostring(order.fill_price or order.price), st.mean[id])
end

function S.on_start(ctx)
  local st = ctx.state
  st.mean, st.seen, st.held = st.mean or {}, st.seen or {}, st.held or {}
  st.trades, st.prices = st.trades or 0, st.prices or 0
  local ids = {}
  for m in ctx.client:markets { limit = 50 } do
    if tradable(m) then ids[#ids + 1] = m.condition_id end
    if #ids == MARKETS then break end
  end
  ctx:subscribe(ids)
  ctx.log.info("following %d markets", #ids)
  ctx:every(10, report)
end

function S.on_reload(ctx, old)
  ctx.log.info("new version: kept %d averages and %d trades", #ctx:subscriptions(), old.trades)
  ctx:every(10, report) -- timers belong to the version that made them
end

-- Runs once per price update; updates of one market come one at a time, so an order in
-- flight for a market is never doubled by the next tick of the same market.
function S.on_price(ctx, msg)
  local st, id = ctx.state, msg.market_id
  local p = yes_price(msg)
  if not p then return end
  st.prices = st.prices + 1
  local mean = st.mean[id]
  st.seen[id] = (st.seen[id] or 0) + 1
  if not mean then
    st.mean[id] = p
    return
  end
  st.mean[id] = mean + ALPHA * (p - mean)
  if st.seen[id] < WARMUP then return end
  local held = st.held[id] or 0
  if held <= 0 and p < mean - BAND and p > 0.05 then
    trade(ctx, id, "BUY", p)
  elseif held > 0 and p > mean + BAND then
    trade(ctx, id, "SELL", p)
  end
end

function S.on_fill(ctx, fill)
  ctx.log.info("fill: %s %s x%s at %s", fill.side, tostring(fill.market_id):sub(1, 10),
    tostring(fill.quantity), tostring(fill.price))
end

function S.on_stop(ctx, reason)
  report(ctx)
  ctx.log.info("stopping (%s)", reason)
end

return S
