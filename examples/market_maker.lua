-- A market maker: quotes a resting BUY below the mid price and, once it holds shares, a
-- resting SELL above it, on a couple of markets. It re-quotes when the price moves, when one
-- of its orders fills, and every few seconds; its open orders are cancelled on stop.
--
--   polysim run examples/market_maker.lua
--
-- Quoting a market takes three requests (book, cancel, batch of new quotes); a flag per
-- market makes sure two re-quotes of the same market never interleave, while the other
-- markets, ticks and fills go on meanwhile.
local polysim = require "polysim"

local MARKETS = 2    -- markets to quote
local EDGE = 0.01    -- distance of each quote from the mid price
local SIZE = 20      -- shares per quote
local MOVE = 0.01    -- re-quote when the price moved this much since the last quote
local REFRESH = 5    -- seconds between routine re-quotes

local S = { name = "market_maker", cancel_on_stop = true }

-- Open binary markets with a price: the ones where "Yes" is an outcome.
local function tradable(m)
  if m.closed or m.live_price == polysim.null or type(m.outcomes) ~= "table" then return false end
  for _, o in ipairs(m.outcomes) do if o == "Yes" then return true end end
  return false
end

local function price_str(p)
  return string.format("%.2f", math.max(0.01, math.min(0.99, p)))
end

local function quote(ctx, id)
  local st = ctx.state
  local client = ctx.client
  local book, err = client:book(id, { outcome = "Yes", depth = 1 })
  if not book then
    ctx.log.warn("book %s: %s", id:sub(1, 10), tostring(err))
    return
  end
  local mid = tonumber(book.mid)
  if not mid or book.mid == polysim.null then return end
  local ok, cerr = client:cancel_market_orders(id)
  if not ok then ctx.log.warn("cancel %s: %s", id:sub(1, 10), tostring(cerr)) end
  local inv = st.inventory[id] or 0
  local orders = {
    { market_id = id, side = "BUY", outcome = "Yes", order_type = "limit", quantity = SIZE,
      price = price_str(mid - EDGE) },
  }
  if inv >= SIZE then
    orders[2] = { market_id = id, side = "SELL", outcome = "Yes", order_type = "limit", quantity = SIZE,
                  price = price_str(mid + EDGE) }
  end
  local res, perr = client:place_orders(orders)
  if not res then
    ctx.log.warn("quote %s: %s", id:sub(1, 10), tostring(perr))
    return
  end
  st.quotes = st.quotes + 1
  st.mid[id] = mid
  ctx.log.info("%s mid %.2f: bid %s%s, inventory %d", id:sub(1, 10), mid, orders[1].price,
    orders[2] and (", ask " .. orders[2].price) or "", inv)
end

-- Re-quotes id unless a re-quote of it is running; then that one goes again when done.
local function requote(ctx, id)
  local st = ctx.state
  if st.quoting[id] then
    st.again[id] = true
    return
  end
  st.quoting[id] = true
  repeat
    st.again[id] = false
    local ok, err = pcall(quote, ctx, id)
    if not ok then ctx.log.error("quoting %s: %s", id:sub(1, 10), tostring(err)) end
  until not st.again[id]
  st.quoting[id] = false
end

local function refresh(ctx)
  for _, id in ipairs(ctx.state.markets) do ctx:spawn(requote, ctx, id) end
end

function S.on_start(ctx)
  local st = ctx.state
  st.markets, st.inventory, st.mid = {}, {}, {}
  st.quoting, st.again, st.quotes, st.fills = {}, {}, 0, 0
  for m in ctx.client:markets { limit = 20 } do
    if tradable(m) then st.markets[#st.markets + 1] = m.condition_id end
    if #st.markets == MARKETS then break end
  end
  ctx:subscribe(st.markets)
  refresh(ctx)
  ctx:every(REFRESH, refresh)
end

function S.on_reload(ctx)
  -- A reload can land while a re-quote waits on the network: clear the flags so that the
  -- new version quotes afresh (the old task still finishes its own requests).
  ctx.state.quoting, ctx.state.again = {}, {}
  refresh(ctx)
  ctx:every(REFRESH, refresh)
end

function S.on_price(ctx, msg)
  local last = ctx.state.mid[msg.market_id]
  local p = tonumber(msg.buy)
  if last and p and math.abs(p - last) >= MOVE then requote(ctx, msg.market_id) end
end

function S.on_fill(ctx, fill)
  local st = ctx.state
  local id, qty = fill.market_id, tonumber(fill.quantity) or 0
  if fill.outcome == "Yes" and st.mid[id] then
    st.inventory[id] = (st.inventory[id] or 0) + (fill.side == "BUY" and qty or -qty)
    st.fills = st.fills + 1
    ctx.log.info("filled: %s %s x%s at %s", fill.side, id:sub(1, 10), tostring(fill.quantity), tostring(fill.price))
    ctx:spawn(requote, ctx, id)
  end
end

function S.on_stop(ctx, reason)
  local st = ctx.state
  ctx.log.info("stopping (%s): %d quotes, %d fills", reason, st.quotes, st.fills)
end

return S
