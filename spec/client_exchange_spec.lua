-- Every client method against the local exchange over real loopback HTTP.
local polysim = require "polysim"
local D = polysim.decimal
local H = require "helper"

describe("client against the local exchange", function()
  local srv, ex, client, id, multi

  setup(function()
    srv = H.exchange()
    ex = srv.exchange
    client = H.client(srv)
    id = ex:pick_market { fee_rate = "0.04", binary = true, state = "open" }
    multi = ex:pick_market { binary = false, state = "open" }
  end)
  teardown(function() srv:close() end)
  before_each(function() ex:clear_faults() end)

  describe("health and market data", function()
    it("health, ready, status need no key", function()
      local c = polysim.new { base_url = srv.base_url, api_key = "" }
      assert.is_table(assert(c:health()))
      assert.is_table(assert(c:ready()))
      assert.is_table(assert(c:status()))
    end)

    it("markets iterates over every page and markets_page returns one", function()
      local all = {}
      for m in client:markets { page_size = 7, active_only = false } do all[#all + 1] = m end
      local page = assert(client:markets_page { limit = 500, active_only = false })
      assert.equal(#page, #all)
      assert.is_true(#all > 7)
      local seen = {}
      for _, m in ipairs(all) do
        assert.is_nil(seen[m.condition_id], "duplicate across pages")
        seen[m.condition_id] = true
        assert.equal("string", type(m.condition_id))
      end
    end)

    it("filters hot markets and searches", function()
      for m in client:markets { hot_only = true } do assert.is_true(m.is_hot or m.hot) end
      local m = ex:market(id)
      local found = false
      for r in client:markets { search = m.question:sub(1, 12), active_only = false } do
        if r.condition_id == id then found = true end
      end
      assert.is_true(found)
    end)

    it("market, by slug and by token agree", function()
      local m = assert(client:market(id))
      assert.equal(id, m.condition_id)
      local s = assert(client:market_by_slug(m.slug))
      assert.equal(id, s.condition_id)
      local token = m.outcomes and m.outcomes[1].token_id or m.tokens[1].token_id
      local t = assert(client:market_by_token(token))
      assert.equal(id, t.condition_id)
    end)

    it("unknown market is MARKET_NOT_FOUND with request id", function()
      local r, err = client:market("0x" .. ("0"):rep(64))
      assert.is_nil(r)
      assert.equal(404, err.status)
      assert.equal("MARKET_NOT_FOUND", err.code)
      assert.is_string(err.request_id)
    end)

    it("book by market and by token, with string prices", function()
      ex:set_price(id, "0.50")
      local b = assert(client:book(id, { outcome = "Yes", depth = 3 }))
      assert.is_true(#b.bids > 0 and #b.bids <= 3)
      assert.equal("string", type(b.bids[1].price))
      assert.is_true(D(b.bids[1].price) < D(b.asks[1].price))
      local bt = assert(client:book_by_token(b.token_id))
      assert.equal(b.token_id, bt.token_id)
    end)

    it("candles for every interval", function()
      for _, iv in ipairs { "1h", "6h", "1d", "1w", "max" } do
        local c = assert(client:candles(id, { interval = iv }))
        assert.is_table(c)
        if c[1] then assert.is_not_nil(c[1].o) end
      end
    end)

    it("prices batch: known ids priced, unknown ids bare", function()
      local unknown = "0x" .. ("f"):rep(64)
      local p = assert(client:prices { id, multi, unknown })
      assert.equal(3, #p)
      local by = {}
      for _, r in ipairs(p) do by[r.condition_id] = r end
      assert.equal("string", type(by[id].buy))
      assert.is_nil(by[unknown].buy)
    end)

    it("updown and events", function()
      assert.is_table(assert(client:updown { asset = "BTC", interval = "1H", limit = 3 }))
      local n = 0
      for e in client:events { page_size = 2 } do n = n + 1; assert.is_table(e) end
      assert.is_true(n >= 1)
    end)
  end)

  describe("trading", function()
    before_each(function()
      assert(ex:set_book(id, "Yes", { bids = { { "0.64", "100" } }, asks = { { "0.65", "100" } } }))
      assert(client:cancel_all())
    end)

    it("the quick start holds exactly: 10 Yes at 0.65 in a 4% category", function()
      local c = H.client(srv, { api_key = ex:add_key { user_id = ex:add_user { plan = "pro" }.user_id, tier = "pro" } })
      local f = assert(c:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 10, price = "0.70" })
      assert.equal("FILLED", f.status)
      assert.equal("6.50", f.notional)
      assert.equal("0.09", f.fee)
      assert.equal("9993.41", f.account_balance)
      assert.equal("9993.41", assert(c:balance()).balance)
      for _, k in ipairs { "price_source", "slippage_bps", "spread_bps", "impact_bps", "book_walk_levels", "position" } do
        assert.is_not_nil(f[k], k)
      end
    end)

    it("worst price not met is LIMIT_PRICE_NOT_MET and fills nothing", function()
      local before = assert(client:balance()).balance
      local r, err = client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.60" }
      assert.is_nil(r)
      assert.equal(409, err.status)
      assert.equal("LIMIT_PRICE_NOT_MET", err.code)
      assert.equal(before, assert(client:balance()).balance)
    end)

    it("FOK that cannot fill is FOK_ORDER_NOT_FILLED_ERROR; FAK fills part", function()
      local _, err = client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 500, price = "0.99" }
      assert.equal("FOK_ORDER_NOT_FILLED_ERROR", err.code)
      local f = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 500,
        price = "0.99", time_in_force = "FAK" })
      assert.equal(0, D(f.filled_quantity or f.quantity):cmp("100"))
    end)

    it("amount buys floor(amount / price) shares", function()
      local f = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", amount = "10", price = "0.70" })
      -- BRIEF: shares = amount / price (the worst-price limit), floored to 4 decimals.
      assert.equal(0, D(f.filled_quantity or f.quantity):cmp("14.2857"))
    end)

    it("limit orders rest, reserve cash, list, fetch, cancel and release", function()
      local bal0 = D(assert(client:balance()).balance)
      local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 10,
        price = "0.50", order_type = "limit" })
      assert.equal("PENDING", o.status)
      local oid = o.order_id or o.id
      assert.is_true(D(assert(client:balance()).balance) < bal0)
      local got = assert(client:order(oid))
      assert.equal("PENDING", got.status)
      local found = false
      for x in client:orders { status = "PENDING", market_id = id } do
        if (x.order_id or x.id) == oid then found = true end
      end
      assert.is_true(found)
      assert(client:cancel_order(oid))
      assert.equal(0, D(assert(client:balance()).balance):cmp(bal0))
      local _, err = client:cancel_order(oid)
      assert.equal("CANNOT_CANCEL", err.code)
      local _, err2 = client:order(999999)
      assert.equal("ORDER_NOT_FOUND", err2.code)
    end)

    it("a resting limit fills when the market crosses it, as a maker with no fee", function()
      local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5,
        price = "0.60", order_type = "limit" })
      assert(ex:set_book(id, "Yes", { bids = { { "0.55", "100" } }, asks = { { "0.58", "100" } } }))
      ex:match()
      local got = assert(client:order(o.order_id or o.id))
      assert.equal("FILLED", got.status)
      assert.equal(0, D(got.fee or "0"):cmp("0"))
    end)

    it("cancel_all and cancel_market_orders", function()
      for _ = 1, 3 do
        assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.10", order_type = "limit" })
      end
      assert(client:cancel_market_orders(id))
      local n = 0
      for _ in client:orders { status = "PENDING", market_id = id } do n = n + 1 end
      assert.equal(0, n)
      assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.10", order_type = "limit" })
      assert(client:cancel_all())
      n = 0
      for _ in client:orders { status = "PENDING" } do n = n + 1 end
      assert.equal(0, n)
    end)

    it("orders iterator follows next_cursor across pages", function()
      for _ = 1, 7 do
        assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.10", order_type = "limit" })
      end
      local ids = {}
      for o in client:orders { status = "PENDING", page_size = 2 } do
        local oid = o.order_id or o.id
        assert.is_nil(ids[oid], "order seen twice")
        ids[oid] = true
      end
      local n = 0
      for _ in pairs(ids) do n = n + 1 end
      assert.equal(7, n)
    end)

    it("batch orders give per-order results", function()
      local r = assert(client:place_orders {
        { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.70" },
        { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.01" },
      })
      assert.equal(1, r.succeeded)
      assert.equal(1, r.failed)
    end)

    it("the CLOB-compatible order answers in Polymarket's shape", function()
      local m = assert(client:market(id))
      local token = m.outcomes and m.outcomes[1].token_id or m.tokens[1].token_id
      local r = assert(client:clob_order { token_id = token, side = "BUY", price = "0.70", size = "5", order_type = "FOK" })
      assert.is_true(r.success)
      assert.is_not_nil(r.orderID)
    end)

    it("a closed market refuses a BUY with MARKET_CLOSED", function()
      local closed = ex:pick_market { state = "closed" }
      local _, err = client:place_order { market_id = closed, side = "BUY", outcome = "Yes", quantity = 5, price = "0.99" }
      assert.equal("MARKET_CLOSED", err.code)
      assert.equal(400, err.status)
    end)

    it("insufficient cash is INSUFFICIENT_BALANCE", function()
      local c = H.client(srv, { api_key = ex:add_key { user_id = ex:add_user { plan = "pro" }.user_id, tier = "pro" } })
      ex:set_balance(c == nil and "" or ex.user_id, "10000.00")
      local poor = ex:add_user { plan = "pro" }
      local key = ex:add_key { user_id = poor.user_id, tier = "pro" }
      ex:set_balance(key, "1.00")
      local pc = H.client(srv, { api_key = key })
      local _, err = pc:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 10, price = "0.70" }
      assert.equal("INSUFFICIENT_BALANCE", err.code)
    end)
  end)

  describe("idempotency and retries", function()
    before_each(function()
      assert(ex:set_book(id, "Yes", { bids = { { "0.64", "100" } }, asks = { { "0.65", "100" } } }))
    end)

    local function fills_of(c)
      local n = 0
      for _ in c:history { market_id = id } do n = n + 1 end
      return n
    end

    it("a lost answer after the fill is retried under the same key: exactly one fill", function()
      -- A fresh exchange, so the order goes out on a new connection: on a reused one curl
      -- itself resends a request whose connection died before any answer byte.
      local s2 = H.exchange()
      local e2 = s2.exchange
      local m2 = e2:pick_market { fee_rate = "0.04", binary = true, state = "open" }
      assert(e2:set_book(m2, "Yes", { bids = { { "0.64", "100" } }, asks = { { "0.65", "100" } } }))
      local c = H.client(s2)
      e2:inject { path = "/v1/orders", method = "POST", drop_after_processing = true }
      local f = assert(c:place_order { market_id = m2, side = "BUY", outcome = "Yes", quantity = 10, price = "0.70" })
      assert.equal("FILLED", f.status)
      assert.equal(2, c:stats().attempts)
      local n = 0
      for _ in c:history { market_id = m2 } do n = n + 1 end
      assert.equal(1, n)
      assert.equal("9993.41", assert(c:balance()).balance)
      s2:close()
    end)

    it("the same key with other parameters is IDEMPOTENCY_CONFLICT", function()
      assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.70", idempotency_key = "k-1" })
      local _, err = client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 6, price = "0.70", idempotency_key = "k-1" }
      assert.equal(409, err.status)
      assert.equal("IDEMPOTENCY_CONFLICT", err.code)
    end)

    it("transient 503s before processing are retried and the order fills once", function()
      local key = ex:add_key { user_id = ex:add_user { plan = "pro" }.user_id, tier = "pro" }
      local c = H.client(srv, { api_key = key })
      ex:inject { path = "/v1/orders", status = 503, times = 2 }
      assert(c:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.70" })
      assert.equal(3, c:stats().attempts)
      assert.equal(1, fills_of(c))
    end)

    it("429 with Retry-After is waited for", function()
      ex:inject { path = "/v1/account/balance", status = 429, retry_after = 1 }
      local t0 = polysim.loop.now()
      assert(client:balance())
      assert.is_true(polysim.loop.now() - t0 >= 0.9)
    end)

    it("the header code beats the body code; edge blocks and bad bodies decode", function()
      ex:inject { path = "/v1/account/balance", header_code = "HEADER_CODE", body_error = "BODY_CODE", status = 400 }
      local _, err = client:balance()
      assert.equal("HEADER_CODE", err.code)
      ex:inject { path = "/v1/account/balance", raw = { status = 403, body = "error code: 1020", content_type = "text/plain" } }
      _, err = client:balance()
      assert.equal("EDGE_BLOCKED", err.code)
      ex:inject { path = "/v1/account/balance", body = "not json", status = 400 }
      _, err = client:balance()
      assert.equal("HTTP_400", err.code)
    end)

    it("422 validation errors come back as VALIDATION_ERROR with the list", function()
      local _, err = client:_call("POST", "/v1/orders", { body = { side = "BUY" } })
      assert.equal(422, err.status)
      assert.is_table(err.details)
      assert.is_string(err.details[1].msg)
    end)
  end)

  describe("account", function()
    it("balance, positions, portfolio, history, equity, export, reset", function()
      local b = assert(client:balance())
      assert.equal("USD", b.currency)
      assert.is_table(assert(client:positions { status = "OPEN" }))
      local p = assert(client:portfolio())
      assert.is_table(p.balance)
      for h in client:history { page_size = 2 } do assert.is_string(h.price) end
      assert.is_table(assert(client:equity { days = 2 }))
      local csv = assert(client:export_trades())
      assert.equal("string", type(csv))
      assert(client:reset_balance())
      assert.equal(assert(client:balance()).starting_balance, assert(client:balance()).balance)
      assert.is_table(assert(client:me()))
      assert.is_table(assert(client:entitlements()))
    end)
  end)

  describe("keys", function()
    it("bootstrap with the Bearer JWT, then create, list, rename, rotate, revoke", function()
      local dash = polysim.new { base_url = srv.base_url, api_key = "" }
      local k = assert(dash:bootstrap { token = srv.bootstrap_token, name = "first" })
      assert.matches("^ps_live_%x+$", k.raw_key)
      assert.equal(72, #k.raw_key)
      assert.equal(k.raw_key:sub(1, 16), k.key_prefix)
      local _, again = dash:bootstrap { token = srv.bootstrap_token }
      assert.equal(400, again.status)

      local c = H.client(srv, { api_key = k.raw_key })
      local k2 = assert(c:create_key { name = "bot", tier = "pro" })
      local prefixes = {}
      for key in c:keys() do
        assert.is_nil(key.raw_key)
        prefixes[key.key_prefix] = true
      end
      assert.is_true(prefixes[k2.key_prefix])
      assert(c:rename_key(k2.id, "renamed"))
      local rot = assert(c:rotate_key(k2.id))
      assert.is_string(rot.raw_key)
      assert(c:revoke_key(rot.id))
      local _, bad = H.client(srv, { api_key = rot.raw_key }):balance()
      assert.equal(401, bad.status)
    end)

    it("a free key asking for trade is TIER_REQUIRES_UPGRADE; read-only keys cannot trade", function()
      local _, err = client:create_key { name = "x", tier = "free", permissions = { "read", "trade" } }
      assert.equal(403, err.status)
      assert.equal("TIER_REQUIRES_UPGRADE", err.code)
      local ro = assert(client:create_key { name = "ro", tier = "free" })
      local rc = H.client(srv, { api_key = ro.raw_key })
      local _, perr = rc:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5, price = "0.70" }
      assert.equal(403, perr.status)
      assert(client:revoke_key(ro.id))
    end)

    it("the trade surface rejects a Bearer JWT", function()
      local c = polysim.new { base_url = srv.base_url, api_key = "", bearer = ex.user_token }
      local _, err = c:_call("GET", "/v1/account/balance", { auth = "bearer" })
      assert.equal(401, err.status)
      assert.is_table(assert(c:me()))
    end)

    it("tiers and ws tokens", function()
      local tiers = assert(client:tiers())
      assert.is_true(#tiers >= 3)
      local t = assert(client:ws_token())
      assert.is_string(t.token)
      assert.equal(60, t.expires_in)
    end)
  end)
end)

describe("rate limits", function()
  it("answers 429 with Retry-After past the tier limit, and the client waits it out", function()
    local srv = H.exchange { tiers = { pro = { per_second = 3, per_minute = 1000 } } }
    local c = H.client(srv, { max_retries = 0 })
    local limited
    for _ = 1, 6 do
      local _, err = c:balance()
      if err then limited = err; break end
    end
    assert.is_not_nil(limited)
    assert.equal(429, limited.status)
    assert.equal("RATE_LIMITED", limited.code)
    assert.is_true(limited.retry_after >= 1)
    assert.equal("pro", c.ratelimit.tier)
    assert.is_true(math.type(c.ratelimit.limit) == "integer" and c.ratelimit.remaining < c.ratelimit.limit)
    local patient = H.client(srv, { max_retries = 2 })
    assert(patient:balance())
    srv:close()
  end)
end)
