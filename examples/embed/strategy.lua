-- The strategy examples/embed/embed.c runs inside its 60 fps loop. It keeps a few requests
-- in flight most of the time (prices, balance, book, a limit order placed and cancelled),
-- so the frame times the program reports are measured with network work going on.
local polysim = require "polysim"

local RATE = 0.25  -- seconds between bursts
local BURST = 3    -- requests per burst (about 12 a second: inside the pro tier's 20/s)
local SLOW = 0.04  -- seconds of computation in the slow callback, once a second

local S = { name = "embed_demo", cancel_on_stop = true }

-- Open binary markets with a price: the ones where "Yes" is an outcome.
local function tradable(m)
  if m.closed or m.live_price == polysim.null or type(m.outcomes) ~= "table" then return false end
  for _, o in ipairs(m.outcomes) do if o == "Yes" then return true end end
  return false
end

local function request(ctx, n)
  local st, client = ctx.state, ctx.client
  st.inflight = st.inflight + 1
  if st.inflight > st.max_inflight then st.max_inflight = st.inflight end
  local id = st.markets[n % #st.markets + 1]
  local kind = n % 4
  local ok, err
  if kind == 0 then
    ok, err = client:prices(st.markets)
  elseif kind == 1 then
    ok, err = client:balance()
  elseif kind == 2 then
    ok, err = client:book(id, { outcome = "Yes", depth = 5 })
  else
    local order
    order, err = client:place_order { market_id = id, side = "BUY", outcome = "Yes", order_type = "limit",
                                      quantity = 5, price = "0.01" }
    ok = order and client:cancel_order(order.order_id)
  end
  st.inflight = st.inflight - 1
  st.requests = st.requests + 1
  if not ok then
    st.failed = st.failed + 1
    if st.failed <= 3 then ctx.log.warn("request failed: %s", tostring(err)) end
  end
end

function S.on_start(ctx)
  local st = ctx.state
  st.requests, st.failed, st.inflight, st.max_inflight, st.prices, st.n = 0, 0, 0, 0, 0, 0
  st.markets = {}
  for m in ctx.client:markets { limit = 20 } do
    if tradable(m) then st.markets[#st.markets + 1] = m.condition_id end
    if #st.markets == 5 then break end
  end
  ctx:subscribe(st.markets)
  -- Deliberately slow: every second, 40 ms of computation without a single yield (inside
  -- the 0.5 s budget). The host suspends it at each step's deadline and resumes it at the
  -- next, so no frame is held for those 40 ms (embed.c prints the worst frame).
  st.slow_runs = 0
  ctx:every(1, function(c)
    local t, x = c:monotime(), 0
    while c:monotime() - t < SLOW do x = x + 1 end
    st.slow_runs = st.slow_runs + 1
  end)
  ctx:every(RATE, function(c)
    for _ = 1, BURST do
      st.n = st.n + 1
      c:spawn(request, c, st.n)
    end
  end)
end

function S.on_price(ctx)
  ctx.state.prices = ctx.state.prices + 1
end

function S.on_stop(ctx)
  local st = ctx.state
  ctx.log.info("%d requests (%d failed, at most %d in flight at once), %d price events, %d slow runs",
    st.requests, st.failed, st.max_inflight, st.prices, st.slow_runs)
end

return S
