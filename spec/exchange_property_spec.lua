-- luacheck: std +busted
-- Property spec of the local exchange: seeded random sequences of market and limit orders,
-- cancels, batches, CLOB orders, price moves and ticks through ex:handle. After every step
-- the books are sorted and positive, nothing goes negative, and every wallet reconciles
-- exactly: cash + reserved + sum(position cost) = starting - fees + realized.
local exchange = require "polysim.exchange"
local fixed = require "polysim.exchange.fixed"
local rng = require "polysim.exchange.rng"

local T0 = 1790000000

local function money(s) return assert(fixed.parse(s, 8), s) end

local function call(ex, key, method, path, query, json)
  return ex:handle { method = method, path = path, query = query or {}, headers = { ["x-api-key"] = key }, json = json }
end

-- The reconciliation, from the API's own strings.
local function reconcile(ex, key)
  local bal = call(ex, key, "GET", "/v1/account/balance").body
  local positions = call(ex, key, "GET", "/v1/account/positions").body
  local cost = 0
  for _, p in ipairs(positions) do
    assert.is_true(fixed.parse(p.quantity, 4) >= 0, "negative position")
    assert.is_true(fixed.parse(p.reserved_quantity, 4) >= 0, "negative reserved shares")
    assert.is_true(fixed.parse(p.reserved_quantity, 4) <= fixed.parse(p.quantity, 4), "reserved > held")
    cost = cost + money(p.cost_basis)
  end
  local cash, reserved = money(bal.balance), money(bal.reserved)
  assert.is_true(cash >= 0, "negative cash " .. bal.balance)
  assert.is_true(reserved >= 0, "negative reserved " .. bal.reserved)
  -- realized_pnl = realized - fees
  assert.are.equal(money(bal.starting_balance) + money(bal.realized_pnl), cash + reserved + cost)
end

local function random_order(r, ex, cids)
  local cid = cids[r:range(1, #cids)]
  local m = ex:market(cid)
  local o = m.outcomes[r:range(1, #m.outcomes)]
  local side = r:chance(2, 3) and "BUY" or "SELL"
  local f = { market_id = cid, side = side, outcome = o.label }
  local price = math.max(1, math.min(9999, o.price + r:range(-800, 800)))
  if r:chance(1, 10) then price = r:range(1, 9999) end
  f.price = fixed.price(price)
  if r:chance(1, 6) then f.price = tonumber(f.price) end         -- JSON number
  if r:chance(1, 3) then
    f.order_type = "limit"
    f.price = fixed.price(math.max(1, math.min(9999, o.price + r:range(-300, 300))))
    f.time_in_force = r:pick { "GTC", "GTC", "GTD", "IOC", "FOK", "FAK" }
    if f.time_in_force == "GTD" then f.expiration = math.floor(ex:now()) + r:range(1, 20) end
    if r:chance(1, 5) and (f.time_in_force == "GTC" or f.time_in_force == "GTD") then f.post_only = true end
  else
    if r:chance(1, 3) then f.time_in_force = r:pick { "FOK", "FAK", "IOC", "GTC" } end
  end
  if side == "BUY" and f.order_type ~= "limit" and r:chance(1, 5) then
    f.amount = fixed.money(r:range(1, 20000) * 1000000)
  else
    local q = r:range(1, 400) * 1000 + (r:chance(1, 3) and r:range(1, 999) or 0)
    f.quantity = fixed.qty(q)
    if r:chance(1, 8) then f.quantity = q / 10000 end
  end
  if r:chance(1, 10) then f.client_order_id = "c" .. r:range(1, 30) end
  if r:chance(1, 30) then f.quantity = "garbage" end
  return f
end

local function run(seed, steps)
  local clock = { t = T0 }
  local ex = assert(exchange.new { seed = seed, clock = function() return clock.t end,
    tiers = { pro = { per_second = 1000000, per_minute = 1000000, batch = 8 },
              pro_plus = { per_second = 1000000, per_minute = 1000000, batch = 8 } } })
  local r = rng.new("property-" .. seed)
  local cids = {}
  local multi = false
  for _, m in ipairs(ex.U.list) do
    if not m.closed and m.active then
      if #cids < 5 and m.binary then cids[#cids + 1] = m.condition_id
      elseif not multi and not m.binary then cids[#cids + 1] = m.condition_id; multi = true end
    end
  end
  assert(multi and #cids == 6)
  local u2 = ex:add_user { plan = "pro_plus" }
  local keys = { ex.api_key, ex:add_key { user_id = u2.user_id } }
  local my_orders = { {}, {} }
  local stats = { filled = 0, pending = 0, rejected = 0, maker = 0 }
  ex:on("fill", function(_, msg) if msg.liquidity == "MAKER" then stats.maker = stats.maker + 1 end end)
  for step = 1, steps do
    local who = r:range(1, 2)
    local key = keys[who]
    local action = r:below(100)
    local resp
    if action < 45 then
      local f = random_order(r, ex, cids)
      local headers = { ["x-api-key"] = key }
      if r:chance(1, 10) then headers["idempotency-key"] = "idem-" .. r:range(1, 10) end
      resp = ex:handle { method = "POST", path = "/v1/orders", query = {}, headers = headers, json = f }
      if resp.status == 200 then
        local list = my_orders[who]
        list[#list + 1] = resp.body.order_id
        if resp.body.status == "FILLED" then stats.filled = stats.filled + 1 else stats.pending = stats.pending + 1 end
      else
        stats.rejected = stats.rejected + 1
      end
    elseif action < 55 then
      local list = my_orders[who]
      local id = #list > 0 and list[r:range(1, #list)] or 12345
      resp = call(ex, key, "DELETE", "/v1/orders/" .. id)
      assert.is_true(resp.status == 200 or resp.status == 400 or resp.status == 404)
    elseif action < 63 then
      local n = r:range(1, 10)
      local orders = {}
      for i = 1, n do orders[i] = random_order(r, ex, cids) end
      resp = call(ex, key, "POST", "/v1/orders/batch", nil, { orders = orders })
      if n <= 8 then
        assert.are.equal(200, resp.status)
        assert.are.equal(n, resp.body.succeeded + resp.body.failed)
        for _, res in ipairs(resp.body.results) do
          if not res.error then local list = my_orders[who]; list[#list + 1] = res.order_id end
        end
      else
        assert.are.equal(422, resp.status)
      end
    elseif action < 68 then
      local cid = cids[r:range(1, #cids)]
      local m = ex:market(cid)
      local f = random_order(r, ex, { cid })
      resp = call(ex, key, "POST", "/v1/clob/order", nil, {
        token_id = m.outcomes[r:range(1, #m.outcomes)].token_id, side = f.side, price = f.price,
        size = f.quantity or "1", order_type = r:pick { "GTC", "FOK", "IOC", "GTD" },
        expiration = math.floor(clock.t) + 5 })
      assert.is_true(resp.status == 200 or resp.status == 400 or resp.status == 409 or resp.status == 422)
    elseif action < 85 then
      local dt = r:range(0, 5)
      clock.t = clock.t + dt
      ex:tick(dt)
    elseif action < 88 then
      local cid = cids[r:range(1, #cids)]
      assert(ex:set_price(cid, fixed.price(r:range(5, 95) * 100)))
    elseif action < 90 then
      resp = call(ex, key, "POST", "/v1/cancel-all", { confirm = "true" })
      assert.are.equal(200, resp.status)
    elseif action < 91 then
      local cid = cids[r:range(1, #cids)]
      local m = ex:market(cid)
      local asks, bids = {}, {}
      local p = m.outcomes[1].price
      for k = 1, r:range(0, 4) do asks[k] = { fixed.price(math.min(9999, p + k * 100)), fixed.qty(r:range(1,
          50) * 10000) } end
      for k = 1, r:range(0, 4) do bids[k] = { fixed.price(math.max(1, p - k * 100)), fixed.qty(r:range(1,
          50) * 10000) } end
      assert(ex:set_book(cid, m.outcomes[1].label, { asks = asks, bids = bids }, { keep_complement = r:chance(1, 2) }))
    else
      resp = call(ex, key, "GET", "/v1/orders", { status = "PENDING", limit = "200" })
      assert.are.equal(200, resp.status)
      for _, o in ipairs(resp.body.orders) do assert.are.equal("PENDING", o.status) end
    end
    local ok, err = ex:check_invariants()
    assert(ok, ("seed %d step %d: %s"):format(seed, step, tostring(err)))
    if step % 10 == 0 or action >= 85 then
      reconcile(ex, keys[1])
      reconcile(ex, keys[2])
    end
  end
  return stats, ex
end

-- Up/Down windows: random trading in the live BTC/ETH 5M and 15M windows while the clock runs
-- through many windows, so that they open, close, resolve on spot and settle under open
-- positions and resting orders. Beyond the invariants above, the money is conserved from the
-- API's own history: cash + reserved = starting + sum(sells, settlements included) -
-- sum(buys) - fees, and every share held is bought minus sold (settled to the house).
local function history(ex, key)
  local all, off = {}, 0
  while true do
    local page = call(ex, key, "GET", "/v1/account/history", { limit = "200", offset = tostring(off) }).body
    for _, t in ipairs(page) do all[#all + 1] = t end
    if #page < 200 then return all end
    off = off + 200
  end
end

local function conserved(ex, key)
  local bal = call(ex, key, "GET", "/v1/account/balance").body
  local flow, held, payouts = 0, {}, 0
  for _, t in ipairs(history(ex, key)) do
    local n, fee, q = money(t.notional), money(t.fee), fixed.parse(t.quantity, 4)
    local k = t.market_id .. "/" .. t.outcome
    if t.side == "BUY" then flow = flow - n - fee; held[k] = (held[k] or 0) + q
    else flow = flow + n - fee; held[k] = (held[k] or 0) - q end
    if t.price_source == "settlement" then
      payouts = payouts + n
      assert.is_true(t.price == "1.00" and n == q * 10000 or t.price == "0.00" and n == 0)
    end
  end
  assert.are.equal(money(bal.starting_balance) + flow, money(bal.balance) + money(bal.reserved))
  for _, p in ipairs(call(ex, key, "GET", "/v1/account/positions").body) do
    local k = p.market_id .. "/" .. p.outcome
    assert.are.equal(held[k] or 0, fixed.parse(p.quantity, 4), k)
  end
  return payouts
end

local function run_updown(seed, steps)
  local clock = { t = T0 }
  local ex = assert(exchange.new { seed = seed, clock = function() return clock.t end,
    tiers = { pro = { per_second = 1000000, per_minute = 1000000, batch = 8 },
              pro_plus = { per_second = 1000000, per_minute = 1000000, batch = 8 } } })
  local r = rng.new("property-updown-" .. seed)
  local u2 = ex:add_user { plan = "pro_plus" }
  local keys = { ex.api_key, ex:add_key { user_id = u2.user_id } }
  local stats = { resolved = {}, settled = 0, filled = 0 }
  ex:on("window", function(id, msg)
    if msg.event == "resolve" then stats.resolved[id] = msg.resolved_outcome end
    if msg.event == "settle" then stats.settled = stats.settled + 1 end
  end)
  local cids = {}
  local function refresh()
    cids = {}
    for _, q in ipairs { { "BTC", "5M" }, { "ETH", "5M" }, { "BTC", "15M" } } do
      local rows = call(ex, keys[1], "GET", "/v1/markets/updown", { asset = q[1], interval = q[2], limit = "2" }).body.markets
      for _, w in ipairs(rows) do if not w.closed then cids[#cids + 1] = w.condition_id end end
    end
  end
  refresh()
  for step = 1, steps do
    local key = keys[r:range(1, 2)]
    local action = r:below(100)
    if action < 55 then
      local f = random_order(r, ex, cids)
      local resp = call(ex, key, "POST", "/v1/orders", nil, f)
      if resp.status == 200 and resp.body.status == "FILLED" then stats.filled = stats.filled + 1 end
    elseif action < 65 then
      assert.are.equal(200, call(ex, key, "POST", "/v1/cancel-all", { confirm = "true" }).status)
    else
      local dt = r:range(1, 40)
      clock.t = clock.t + dt
      ex:tick(dt)
      if r:chance(1, 4) then refresh() end
    end
    local ok, err = ex:check_invariants()
    assert(ok, ("updown seed %d step %d: %s"):format(seed, step, tostring(err)))
    if step % 25 == 0 then
      for _, k in ipairs(keys) do reconcile(ex, k); conserved(ex, k) end
    end
  end
  for _ = 1, 40 do clock.t = clock.t + 30; ex:tick(30) end   -- let every window traded settle
  local payouts = 0
  for _, k in ipairs(keys) do reconcile(ex, k); payouts = payouts + conserved(ex, k) end
  return stats, payouts
end

describe("exchange property", function()
  for _, seed in ipairs { 1, 2 } do
    it("conserves money across Up/Down resolutions and settlements (seed " .. seed .. ")", function()
      local stats, payouts = run_updown(seed, 400)
      assert.is_true(stats.filled > 20, "filled " .. stats.filled)
      assert.is_true(stats.settled > 5, "settled " .. stats.settled)
      assert.is_true(payouts > 0, "no winning shares were paid out")
      local ups, downs = 0, 0
      for _, o in pairs(stats.resolved) do if o == "Up" then ups = ups + 1 else downs = downs + 1 end end
      assert.is_true(ups > 0 and downs > 0, ("%d up, %d down"):format(ups, downs))
    end)
  end

  for _, seed in ipairs { 1, 2, 3 } do
    it("keeps books sorted and wallets reconciled exactly (seed " .. seed .. ")", function()
      local stats = run(seed, 500)
      -- the run exercised all paths
      assert.is_true(stats.filled > 20, "filled " .. stats.filled)
      assert.is_true(stats.pending > 5, "pending " .. stats.pending)
      assert.is_true(stats.rejected > 20, "rejected " .. stats.rejected)
      assert.is_true(stats.maker > 0, "maker fills " .. stats.maker)
    end)
  end
end)
