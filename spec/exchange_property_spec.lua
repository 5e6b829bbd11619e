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

describe("exchange property", function()
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
