-- A rebalancer: keeps about TARGET dollars of Yes shares in each of a few markets. Every
-- PERIOD seconds it reads all their prices in one batch call and the open positions, and
-- sends every trade needed to get back within TOLERANCE of the targets as one batch order.
--
--   polysim run examples/rebalancer.lua
--
-- It needs no price stream: timers and batch calls only.
local polysim = require "polysim"

local MARKETS = 4      -- markets to hold
local TARGET = 100     -- dollars of Yes per market
local TOLERANCE = 0.1  -- trade when a holding is off its target by more than this fraction
local PERIOD = 5       -- seconds between rebalances
local SLIPPAGE = 0.03  -- worst price accepted, away from the current price

local S = { name = "rebalancer" }

-- Open binary markets with a price: the ones where "Yes" is an outcome.
local function tradable(m)
  if m.closed or m.live_price == polysim.null or type(m.outcomes) ~= "table" then return false end
  for _, o in ipairs(m.outcomes) do if o == "Yes" then return true end end
  return false
end

local function held_yes(ctx)
  local held = {}
  local positions, err = ctx.client:positions { status = "OPEN" }
  if not positions then return nil, err end
  for _, p in ipairs(positions) do
    if p.outcome == "Yes" then held[p.market_id] = (held[p.market_id] or 0) + (tonumber(p.quantity) or 0) end
  end
  return held
end

local function rebalance(ctx)
  local st = ctx.state
  local prices, err = ctx.client:prices(st.markets)
  if not prices then return ctx.log.warn("prices: %s", tostring(err)) end
  local held, perr = held_yes(ctx)
  if not held then return ctx.log.warn("positions: %s", tostring(perr)) end
  local orders = {}
  for _, p in ipairs(prices) do
    local price = tonumber(p.buy)
    if price and price > 0.02 and price < 0.98 then
      local id = p.condition_id
      local want = math.floor(TARGET / price)
      local have = held[id] or 0
      local delta = want - have
      if math.abs(delta) > want * TOLERANCE and math.abs(delta) >= 5 then   -- 5 shares: the minimum order size
        local buy = delta > 0
        orders[#orders + 1] = {
          market_id = id, side = buy and "BUY" or "SELL", outcome = "Yes",
          quantity = math.floor(math.abs(delta)),
          price = string.format("%.2f", buy and math.min(0.99, price + SLIPPAGE) or math.max(0.01, price - SLIPPAGE)),
          order_type = "market", time_in_force = "FAK",
        }
      end
    end
  end
  st.rounds = st.rounds + 1
  if #orders == 0 then
    ctx.log.info("round %d: within %d%% of every target", st.rounds, TOLERANCE * 100)
    return
  end
  local res, oerr = ctx.client:place_orders(orders)
  if not res then return ctx.log.warn("batch of %d orders: %s", #orders, tostring(oerr)) end
  st.orders = st.orders + (res.succeeded or 0)
  ctx.log.info("round %d: %d orders sent, %s filled, %s failed", st.rounds, #orders,
    tostring(res.succeeded), tostring(res.failed))
  for i, r in ipairs(res.results or {}) do
    if r.error and r.error ~= polysim.null then
      ctx.log.warn("  %s %s: %s", orders[i].side, orders[i].market_id:sub(1, 10), tostring(r.message or r.error))
    end
  end
end

function S.on_start(ctx)
  local st = ctx.state
  st.markets, st.rounds, st.orders = {}, 0, 0
  for m in ctx.client:markets { limit = 50 } do
    if tradable(m) then st.markets[#st.markets + 1] = m.condition_id end
    if #st.markets == MARKETS then break end
  end
  ctx.log.info("holding $%d of Yes in each of %d markets", TARGET, #st.markets)
  rebalance(ctx)
  ctx:every(PERIOD, rebalance)
end

function S.on_reload(ctx)
  ctx:every(PERIOD, rebalance)
end

function S.on_stop(ctx, reason)
  ctx.log.info("stopping (%s) after %d rounds, %d orders; positions stay open", reason,
    ctx.state.rounds, ctx.state.orders)
end

return S
