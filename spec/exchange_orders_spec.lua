-- luacheck: std +busted
-- Order semantics of the local exchange (BRIEF.md "Order semantics"), through ex:handle.
local exchange = require "polysim.exchange"
local fixed = require "polysim.exchange.fixed"

local T0 = 1790000000

local function setup(opts)
  opts = opts or {}
  local clock = { t = T0 }
  opts.clock = function() return clock.t end
  opts.seed = opts.seed or 3
  -- These specs check the arithmetic on 1-share orders, so their exchange's minimum order
  -- size is 1 share (the default of 5, and its refusal, are specced in
  -- spec/exchange_sdk_surface_spec.lua).
  opts.min_order_size = opts.min_order_size or "1"
  local ex = assert(exchange.new(opts))
  local cid = assert(ex:pick_market { category = "politics", binary = true })
  return ex, clock, cid
end

local function call(ex, method, path, o)
  o = o or {}
  local headers = o.headers or {}
  headers["x-api-key"] = headers["x-api-key"] or o.key or ex.api_key
  return ex:handle { method = method, path = path, query = o.query or {}, headers = headers, json = o.json }
end

local function order(ex, fields, o)
  o = o or {}
  o.json = fields
  return call(ex, "POST", "/v1/orders", o)
end

local function balance(ex, key) return call(ex, "GET", "/v1/account/balance", { key = key }).body.balance end

local function code(r) return r.headers["X-Polysim-Code"] end

describe("exchange market orders", function()
  local ex, clock, cid
  before_each(function()
    ex, clock, cid = setup()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "5" }, { "0.70", "5" } } }))
  end)

  it("need a price: 400 PRICE_REQUIRED", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1" })
    assert.are.equal(400, r.status)
    assert.are.equal("PRICE_REQUIRED", code(r))
  end)

  it("are FOK by default: all or nothing, 409 FOK_ORDER_NOT_FILLED_ERROR", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "11", price = "0.99" })
    assert.are.equal(409, r.status)
    assert.are.equal("FOK_ORDER_NOT_FILLED_ERROR", code(r))
    assert.are.equal("10000.00", balance(ex))
    assert.are.equal(50000, ex:market(cid).outcomes[1].asks[1][2])   -- nothing consumed
  end)

  it("never fill beyond the worst price: 409 LIMIT_PRICE_NOT_MET", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.64" })
    assert.are.equal(409, r.status)
    assert.are.equal("LIMIT_PRICE_NOT_MET", code(r))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "8", price = "0.66" })
    assert.are.equal("LIMIT_PRICE_NOT_MET", code(r))
    assert.are.equal("10000.00", balance(ex))
  end)

  it("FAK / IOC fill what is available within the limit", function()
    for _, tif in ipairs { "FAK", "IOC" } do
      assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "5" }, { "0.70", "5" } } }))
      local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "8", price = "0.66",
                            time_in_force = tif })
      assert.are.equal(200, r.status)
      assert.are.equal("FILLED", r.body.status)
      assert.are.equal("5", r.body.quantity)
      assert.are.equal("5", r.body.filled_quantity)
      assert.are.equal("8", r.body.requested_quantity)
      assert.are.equal("IOC", r.body.time_in_force)
    end
  end)

  it("override GTC to FOK", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "2", price = "0.65",
                          time_in_force = "GTC" })
    assert.are.equal(200, r.status)
    assert.are.equal("FOK", r.body.time_in_force)
  end)

  it("walk the book: VWAP over levels with diagnostics", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.70" })
    assert.are.equal(200, r.status)
    local b = r.body
    assert.are.equal("0.675", b.price)
    assert.are.equal("6.75", b.notional)
    assert.are.equal(2, b.book_walk_levels)
    assert.are.equal(385, b.slippage_bps)         -- (0.675 - 0.65) / 0.65
    assert.are.equal(800, b.spread_bps)           -- 0.05 / 0.625
    assert.are.equal(800, b.impact_bps)           -- (0.675 - 0.625) / 0.625
    assert.are.equal("orderbook", b.price_source)
    -- fee: 0.04 * (5*0.65*0.35 + 5*0.70*0.30) = 0.0875 -> 0.09
    assert.are.equal("0.09", b.fee)
    assert.are.equal("9993.16", b.account_balance)
    assert.are.equal(0, #ex:market(cid).outcomes[1].asks)      -- consumed
  end)

  it("merge the complement book in binary markets", function()
    assert(ex:set_book(cid, "No", { bids = { { "0.35", "10" } }, asks = { { "0.45", "10" } } }))
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "4", price = "0.65" })
    assert.are.equal(200, r.status)
    assert.are.equal("0.65", r.body.price)
    assert.are.equal("6", fixed.qty(ex:market(cid).outcomes[2].bids[1][2]))
  end)

  it("accept JSON numbers and strings alike", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = 2, price = 0.65 })
    assert.are.equal(200, r.status)
    assert.are.equal("2", r.body.quantity)
    assert.are.equal("0.65", r.body.price)
    r = order(ex, { market_id = cid, side = "BUY", outcome = "yes", quantity = 1.5, price = "0.65" })
    assert.are.equal("1.5", r.body.quantity)
  end)

  it("buy by USD amount: shares = amount / price floored to 4 decimals", function()
    assert(ex:set_book(cid, "Yes", { asks = { { "0.65", "1000" } } }))
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", amount = "10", price = "0.65" })
    assert.are.equal(200, r.status)
    assert.are.equal("15.3846", r.body.quantity)
    assert.are.equal("9.99999", r.body.notional)
    r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", amount = "1", price = "0.5" })
    assert.are.equal(422, r.status)
    assert.are.equal("INVALID_QUANTITY", code(r))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", amount = "0.00001", price = "0.65" })
    assert.are.equal(400, r.status)
    assert.are.equal("INVALID_QUANTITY", code(r))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", amount = "1", quantity = "1", price = "0.65" })
    assert.are.equal(422, r.status)
  end)

  it("check cash: 400 INSUFFICIENT_BALANCE", function()
    assert(ex:set_balance(ex.api_key, "3.00"))
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "5", price = "0.65" })
    assert.are.equal(400, r.status)
    assert.are.equal("INSUFFICIENT_BALANCE", code(r))
    assert.is_string(r.body.details.required)
  end)

  it("cannot sell shares not held: 400 INSUFFICIENT_BALANCE (insufficient_shares)", function()
    local r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "1", price = "0.01" })
    assert.are.equal(400, r.status)
    assert.are.equal("INSUFFICIENT_BALANCE", code(r))
    assert.are.equal("insufficient_shares", r.body.details.reason)
  end)

  it("sell what was bought, realizing PnL", function()
    order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "5", price = "0.65" })
    local r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "5", price = "0.55" })
    assert.are.equal(200, r.status)
    assert.are.equal("0.60", r.body.price)
    assert.are.equal("0", r.body.position.quantity)
    assert.are.equal("CLOSED", r.body.position.status)
    local pos = call(ex, "GET", "/v1/account/positions", { query = { status = "CLOSED" } }).body
    assert.are.equal(1, #pos)
    assert(ex:check_invariants())
  end)

  it("validate fields with 422 INVALID_PRICE / INVALID_QUANTITY / VALIDATION_ERROR", function()
    local base = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return order(ex, t)
    end
    for _, c in ipairs {
      { "price", "1.5", "INVALID_PRICE" }, { "price", "0", "INVALID_PRICE" }, { "price", "abc", "INVALID_PRICE" },
      { "price", "0.12345", "INVALID_PRICE" }, { "price", true, "INVALID_PRICE" },
      { "quantity", "-1", "INVALID_QUANTITY" }, { "quantity", "0", "INVALID_QUANTITY" },
      { "quantity", "0.00001", "INVALID_QUANTITY" }, { "quantity", {}, "INVALID_QUANTITY" },
      { "side", "buy", "VALIDATION_ERROR" }, { "order_type", "stop", "VALIDATION_ERROR" },
      { "time_in_force", "DAY", "VALIDATION_ERROR" }, { "market_id", 5, "VALIDATION_ERROR" },
      { "post_only", "perhaps", "VALIDATION_ERROR" },
    } do
      local r = with(c[1], c[2])
      assert.are.equal(422, r.status, c[1] .. "=" .. tostring(c[2]))
      assert.are.equal(c[3], code(r), c[1])
      assert.are.equal(c[1], r.body.detail[1].loc[2])
    end
    local r = with("outcome", "Maybe")
    assert.are.equal(400, r.status)
    assert.are.equal("INVALID_OUTCOME", code(r))
    r = with("market_id", "0x1234")
    assert.are.equal(404, r.status)
    assert.are.equal("MARKET_NOT_FOUND", code(r))
  end)

  it("refuse closed, resolved and expired markets (SELL may exit a closed one)", function()
    order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "2", price = "0.65" })
    assert(ex:set_market(cid, { closed = true }))
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.70" })
    assert.are.equal(400, r.status)
    assert.are.equal("MARKET_CLOSED", code(r))
    r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "1", price = "0.50" })
    assert.are.equal(200, r.status)
    assert(ex:set_market(cid, { closed = false, end_date = T0 - 10 }))
    assert.are.equal("MARKET_CLOSED", code(order(ex, { market_id = cid, side = "BUY", outcome = "Yes",
      quantity = "1", price = "0.70" })))
    assert(ex:set_market(cid, { resolved_outcome = "Yes" }))
    r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "1", price = "0.50" })
    assert.are.equal("MARKET_CLOSED", code(r))
    -- a resolved winner is valued at 1
    local pos = call(ex, "GET", "/v1/account/positions").body[1]
    assert.are.equal("1.00", pos.current_price)
    local _ = clock
  end)

  it("trade multi-outcome markets without a complement and pay no fee in 0% categories", function()
    local multi
    for _, m in ipairs(ex.U.list) do
      if not m.binary and not m.closed and m.active then multi = m; break end
    end
    assert(multi)
    assert(ex:set_market(multi.condition_id, { fee_rate = "0" }))
    local label = multi.outcomes[2].label
    assert(ex:set_book(multi.condition_id, label, { asks = { { "0.20", "50" } } }))
    local r = order(ex, { market_id = multi.condition_id, side = "BUY", outcome = label, quantity = "10",
        price = "0.2" })
    assert.are.equal(200, r.status)
    assert.are.equal("0.00", r.body.fee)
    assert.are.equal("9998.00", r.body.account_balance)
  end)
end)

describe("exchange limit orders", function()
  local ex, clock, cid
  before_each(function()
    ex, clock, cid = setup()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "100" } } }))
  end)

  it("rest with GTC, reserve cash, and release it on cancel", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.50",
                          order_type = "limit" })
    assert.are.equal(200, r.status)
    assert.are.equal("PENDING", r.body.status)
    assert.are.equal("GTC", r.body.time_in_force)
    assert.are.equal("9995.00", r.body.account_balance)
    assert.are.equal("9995.00", balance(ex))
    local id = r.body.order_id
    local g = call(ex, "GET", "/v1/orders/" .. id)
    assert.are.equal("PENDING", g.body.status)
    local d = call(ex, "DELETE", "/v1/orders/" .. id)
    assert.are.equal(200, d.status)
    assert.are.equal("CANCELLED", d.body.status)
    assert.are.equal("10000.00", balance(ex))
    local again = call(ex, "DELETE", "/v1/orders/" .. id)
    assert.are.equal(400, again.status)
    assert.are.equal("CANNOT_CANCEL", code(again))
    assert.are.equal("ORDER_NOT_FOUND", code(call(ex, "DELETE", "/v1/orders/99999")))
    assert.are.equal(422, call(ex, "DELETE", "/v1/orders/abc").status)
    assert(ex:check_invariants())
  end)

  it("fill on tick when the book crosses: maker, fee 0, fill event", function()
    local fills = {}
    ex:on("fill", function(uid, msg) fills[#fills + 1] = { uid, msg } end)
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.55",
                          order_type = "limit" })
    local id = r.body.order_id
    ex:tick(0)
    assert.are.equal("PENDING", call(ex, "GET", "/v1/orders/" .. id).body.status)
    assert(ex:set_book(cid, "Yes", { bids = { { "0.50", "100" } }, asks = { { "0.54", "100" } } }))
    clock.t = clock.t + 1
    ex:tick(1)
    local o = call(ex, "GET", "/v1/orders/" .. id).body
    assert.are.equal("FILLED", o.status)
    assert.are.equal("0.55", o.price)
    assert.are.equal("0.00", o.fee)
    assert.are.equal("limit", o.price_source)
    assert.are.equal("9994.50", balance(ex))
    assert.are.equal(1, #fills)
    assert.are.equal(ex.user_id, fills[1][1])
    assert.are.equal("fill", fills[1][2].type)
    assert.are.equal(id, fills[1][2].order_id)
    assert.are.equal("10", fills[1][2].quantity)
    local h = call(ex, "GET", "/v1/account/history").body
    assert.are.equal("0.00", h[1].fee)
    assert(ex:check_invariants())
  end)

  it("take the marketable part of a GTC at once and rest the rest", function()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "4" }, { "0.80", "100" } } }))
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.70",
                          order_type = "limit" })
    assert.are.equal("PENDING", r.body.status)
    assert.are.equal("4", r.body.filled_quantity)
    assert.are.equal("6", r.body.remaining_quantity)
    -- 2.60 notional + fee 0.04*4*0.65*0.35=0.0364 -> 0.04, reserve 6*0.70 = 4.20
    assert.are.equal("9993.16", r.body.account_balance)
    assert(ex:check_invariants())
  end)

  it("reserve shares for resting SELLs", function()
    order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.65" })
    local r = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "6", price = "0.90",
                          order_type = "limit" })
    assert.are.equal("PENDING", r.body.status)
    assert.are.equal("6", r.body.position.reserved_quantity)
    local r2 = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "5", price = "0.50" })
    assert.are.equal(400, r2.status)
    assert.are.equal("INSUFFICIENT_BALANCE", code(r2))
    assert.are.equal("4", r2.body.details.available)
    call(ex, "DELETE", "/v1/orders/" .. r.body.order_id)
    r2 = order(ex, { market_id = cid, side = "SELL", outcome = "Yes", quantity = "5", price = "0.50" })
    assert.are.equal(200, r2.status)
    assert(ex:check_invariants())
  end)

  it("honour post_only", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.66",
                          order_type = "limit", post_only = true })
    assert.are.equal(400, r.status)
    assert.are.equal("POST_ONLY_WOULD_CROSS", code(r))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.62",
                    order_type = "limit", post_only = true })
    assert.are.equal("PENDING", r.body.status)
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.62",
                    post_only = true })
    assert.are.equal(422, r.status)
  end)

  it("act at once with FOK / IOC limits", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "200", price = "0.65",
                          order_type = "limit", time_in_force = "FOK" })
    assert.are.equal("FOK_ORDER_NOT_FILLED_ERROR", code(r))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "200", price = "0.65",
                    order_type = "limit", time_in_force = "IOC" })
    assert.are.equal("FILLED", r.body.status)
    assert.are.equal("100", r.body.quantity)
  end)

  it("expire GTD orders on tick and release the reservation", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.50",
                          order_type = "limit", expiration = T0 + 30 })
    assert.are.equal("GTD", r.body.time_in_force)
    clock.t = T0 + 10; ex:tick(0)
    assert.are.equal("PENDING", call(ex, "GET", "/v1/orders/" .. r.body.order_id).body.status)
    clock.t = T0 + 31; ex:tick(0)
    assert.are.equal("EXPIRED", call(ex, "GET", "/v1/orders/" .. r.body.order_id).body.status)
    assert.are.equal("10000.00", balance(ex))
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.5",
                    order_type = "limit", expiration = T0 })
    assert.are.equal(422, r.status)
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.5",
                    order_type = "limit", time_in_force = "GTD" })
    assert.are.equal(422, r.status)
  end)

  it("are cancelled when their market closes", function()
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.50",
                          order_type = "limit" })
    assert(ex:set_market(cid, { closed = true }))
    ex:tick(0)
    assert.are.equal("CANCELLED", call(ex, "GET", "/v1/orders/" .. r.body.order_id).body.status)
    assert.are.equal("10000.00", balance(ex))
  end)

  it("cancel all, and cancel by market", function()
    local other = assert(ex:pick_market { binary = true, category = "sports" })
    assert(ex:set_book(other, "Yes", { bids = { { "0.20", "100" } }, asks = { { "0.30", "100" } } }))
    for _ = 1, 3 do
      order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.10",
          order_type = "limit" })
      order(ex, { market_id = other, side = "BUY", outcome = "Yes", quantity = "1", price = "0.10",
          order_type = "limit" })
    end
    local r = call(ex, "DELETE", "/v1/cancel-market-orders", { query = { market = cid } })
    assert.are.equal(200, r.status)
    assert.are.equal(3, #r.body.canceled)
    assert.are.same({}, r.body.not_canceled)
    assert.are.equal(422, call(ex, "DELETE", "/v1/cancel-market-orders").status)
    r = call(ex, "POST", "/v1/cancel-all")
    assert.are.equal(400, r.status)          -- no confirmation (polysim_sdk/client.py cancel_all)
    assert.are.equal("CONFIRMATION_REQUIRED", code(r))
    r = call(ex, "POST", "/v1/cancel-all", { headers = { ["x-confirm-cancel-all"] = "true" } })
    assert.are.equal(3, r.body.cancelled_count)
    assert.are.equal("10000.00", balance(ex))
    assert.are.equal(0, #call(ex, "GET", "/v1/orders", { query = { status = "PENDING" } }).body.orders)
  end)
end)

describe("exchange order listing", function()
  it("pages by cursor exactly, newest first, with filters", function()
    local ex, clock, cid = setup()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "100" } } }))
    local ids = {}
    for i = 1, 7 do
      local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1",
                            price = "0.5" .. i, order_type = "limit" })
      ids[#ids + 1] = r.body.order_id
    end
    order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" })
    local seen, cursor, pages = {}, nil, 0
    repeat
      local r = call(ex, "GET", "/v1/orders", { query = { status = "PENDING", limit = "3", cursor = cursor } })
      assert.are.equal(200, r.status)
      pages = pages + 1
      for _, o in ipairs(r.body.orders) do
        assert.is_nil(seen[o.order_id])
        seen[o.order_id] = true
        assert.are.equal("PENDING", o.status)
      end
      if r.body.has_more then
        assert.are.equal(r.body.orders[#r.body.orders].created_at, r.body.next_cursor)
        cursor = r.body.next_cursor
      end
    until not r.body.has_more
    assert.are.equal(3, pages)
    for _, id in ipairs(ids) do assert.is_true(seen[id]) end
    local first = call(ex, "GET", "/v1/orders", { query = { limit = "1" } }).body.orders[1]
    assert.are.equal("FILLED", first.status)
    assert.are.equal(422, call(ex, "GET", "/v1/orders", { query = { status = "DONE" } }).status)
    assert.are.equal(422, call(ex, "GET", "/v1/orders", { query = { limit = "201" } }).status)
    local offs = call(ex, "GET", "/v1/orders", { query = { limit = "2", offset = "6" } }).body
    assert.are.equal(2, #offs.orders)
    local _ = clock
  end)
end)

describe("exchange batch and CLOB orders", function()
  local ex, cid
  before_each(function()
    local _
    ex, _, cid = setup { tiers = { pro = { batch = 3 } } }
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "100" } } }))
  end)

  it("always answer 200 with per-order results", function()
    local r = call(ex, "POST", "/v1/orders/batch", { json = { orders = {
      { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" },
      { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1" },
      { market_id = cid, side = "BUY", outcome = "Yes", quantity = "abc", price = "0.65", client_order_id = "x" },
    } } })
    assert.are.equal(200, r.status)
    assert.are.equal(1, r.body.succeeded)
    assert.are.equal(2, r.body.failed)
    local res = r.body.results
    assert.are.equal("FILLED", res[1].status)
    assert.are.equal("REJECTED", res[2].status)
    assert.are.equal("PRICE_REQUIRED", res[2].error)
    assert.are.equal("REJECTED", res[3].status)
    assert.are.equal("INVALID_QUANTITY", res[3].error)
    assert.are.equal("x", res[3].client_order_id)
  end)

  it("enforce the tier batch size", function()
    local four = {}
    for i = 1, 4 do four[i] = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" } end
    assert.are.equal(422, call(ex, "POST", "/v1/orders/batch", { json = { orders = four } }).status)
    assert.are.equal(422, call(ex, "POST", "/v1/orders/batch", { json = { orders = {} } }).status)
    assert.are.equal(422, call(ex, "POST", "/v1/orders/batch", { json = {} }).status)
  end)

  it("answer the CLOB endpoint in Polymarket's shape", function()
    local tok = ex:market(cid).outcomes[1].token_id
    local r = call(ex, "POST", "/v1/clob/order", { json = { token_id = tok, side = "BUY", price = "0.65", size = "3",
                                                           order_type = "FOK" } })
    assert.are.equal(200, r.status)
    local b = r.body
    assert.is_true(b.success)
    assert.are.equal("matched", b.status)
    assert.is_string(b.orderID)
    assert.are.equal("3", b.takingAmount)
    assert.are.equal("1.95", b.makingAmount)
    assert.are.equal("0.65", b.price)
    assert.are.equal("3", b.size)
    r = call(ex, "POST", "/v1/clob/order", { json = { token_id = tok, side = "BUY", price = "0.50", quantity = "3" } })
    assert.are.equal("live", r.body.status)
    r = call(ex, "POST", "/v1/clob/order", { json = { token_id = "123", side = "BUY", price = "0.50", size = "3" } })
    assert.are.equal(404, r.status)
    assert.is_false(r.body.success)
    assert.is_string(r.body.errorMsg)
  end)
end)

describe("exchange idempotency", function()
  local ex, cid
  before_each(function()
    local _
    ex, _, cid = setup()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "100" } } }))
  end)

  it("replays the first result for a repeated Idempotency-Key, without a second execution", function()
    local f = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.65" }
    local a = order(ex, f, { headers = { ["idempotency-key"] = "k1" } })
    local b = order(ex, f, { headers = { ["idempotency-key"] = "k1" } })
    assert.are.equal(200, b.status)
    assert.are.same(a.body, b.body)
    assert.are.equal("9993.41", balance(ex))
    assert.are.equal(1, #call(ex, "GET", "/v1/account/history").body)
    local c = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "11", price = "0.65" },
      { headers = { ["idempotency-key"] = "k1" } })
    assert.are.equal(409, c.status)
    assert.are.equal("IDEMPOTENCY_CONFLICT", code(c))
  end)

  it("uses client_order_id when no header is sent, scoped per user", function()
    local f = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65",
        client_order_id = "c-1" }
    local a = order(ex, f)
    local b = order(ex, f)
    assert.are.equal(a.body.order_id, b.body.order_id)
    local u = ex:add_user { plan = "pro" }
    local k2 = ex:add_key { user_id = u.user_id }
    local c = order(ex, f, { key = k2 })
    assert.are.equal(200, c.status)
    assert.are_not.equal(a.body.order_id, c.body.order_id)
    f.quantity = "2"
    assert.are.equal("IDEMPOTENCY_CONFLICT", code(order(ex, f)))
  end)

  it("replays failures too (same key, same parameters)", function()
    local f = { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1000", price = "0.65" }
    local a = order(ex, f, { headers = { ["idempotency-key"] = "k2" } })
    assert.are.equal(409, a.status)
    assert(ex:set_book(cid, "Yes", { asks = { { "0.65", "5000" } } }))
    local b = order(ex, f, { headers = { ["idempotency-key"] = "k2" } })
    assert.are.equal(409, b.status)
    assert.are.equal("10000.00", balance(ex))
  end)
end)

describe("exchange permissions", function()
  it("needs the trade permission; free keys are read-only", function()
    local ex, _, cid = setup()
    local ro = ex:add_key { permissions = { "read" } }
    local r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" },
        { key = ro })
    assert.are.equal(403, r.status)
    assert.are.equal("INSUFFICIENT_PERMISSION", code(r))
    assert.are.equal(200, call(ex, "GET", "/v1/markets", { key = ro }).status)
    local u = ex:add_user { plan = "free" }
    local fk = ex:add_key { user_id = u.user_id }
    r = order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "1", price = "0.65" }, { key = fk })
    assert.are.equal(403, r.status)
    assert.are.equal("INSUFFICIENT_PERMISSION", code(r))
    assert.are.equal("0.00", balance(ex, fk))
  end)
end)

describe("exchange account views", function()
  it("reports positions, portfolio, history, equity, CSV and resets the wallet", function()
    local ex, clock, cid = setup()
    assert(ex:set_book(cid, "Yes", { bids = { { "0.60", "100" } }, asks = { { "0.65", "100" } } }))
    order(ex, { market_id = cid, side = "BUY", outcome = "Yes", quantity = "10", price = "0.65" })
    local pos = call(ex, "GET", "/v1/account/positions").body
    assert.are.equal(1, #pos)
    assert.are.equal("10", pos[1].quantity)
    assert.are.equal("0.65", pos[1].avg_entry_price)
    assert.are.equal("OPEN", pos[1].status)
    assert.are.equal("0.625", pos[1].current_price)   -- mid of 0.60 / 0.65
    assert.are.equal("6.25", pos[1].market_value)
    assert.are.equal("-0.25", pos[1].unrealized_pnl)
    local pf = call(ex, "GET", "/v1/account/portfolio").body
    assert.are.equal(1, pf.total_trades)
    assert.are.equal("9993.41", pf.balance.balance)
    local h = call(ex, "GET", "/v1/account/history", { query = { side = "BUY" } }).body
    assert.are.equal(1, #h)
    assert.are.equal("6.50", h[1].notional)
    assert.are.equal(0, #call(ex, "GET", "/v1/account/history", { query = { side = "SELL" } }).body)
    for _ = 1, 3 do clock.t = clock.t + 3600; ex:tick(1) end
    local eq = call(ex, "GET", "/v1/account/equity", { query = { days = "1" } }).body
    assert.is_true(#eq >= 3)
    assert.is_string(eq[#eq].total_value)
    assert.are.equal(422, call(ex, "GET", "/v1/account/equity", { query = { days = "91" } }).status)
    local csv = call(ex, "GET", "/v1/export/trades.csv")
    assert.are.equal("text/csv", csv.content_type)
    assert.is_truthy(csv.body:find("^trade_id,order_id"))
    assert.are.equal(2, select(2, csv.body:gsub("\n", "")))
    local rs = call(ex, "POST", "/v1/account/reset-api-balance")
    assert.are.equal(200, rs.status)
    assert.are.equal("10000.00", rs.body.balance)
    assert.are.equal(0, #call(ex, "GET", "/v1/account/positions").body)
    assert(ex:check_invariants())
  end)
end)
