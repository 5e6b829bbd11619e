-- The endpoints and shapes the official SDK reads (issue 9, everything but Up/Down and spot),
-- through the Lua client against the local exchange over loopback.
local polysim = require "polysim"
local H = require "helper"

describe("SDK surface", function()
  local srv, ex, client, id, yes_tok, no_tok

  setup(function()
    srv = H.exchange()
    ex = srv.exchange
    client = H.client(srv)
    id = ex:pick_market { binary = true, state = "open" }
    assert(ex:set_book(id, "Yes", { bids = { { "0.40", "500" } }, asks = { { "0.45", "500" } } }))
    local m = assert(client:market(id))
    yes_tok, no_tok = m.tokens[1].token_id, m.tokens[2].token_id
  end)
  teardown(function() srv:close() end)

  it("health_live needs no key", function()
    local c = polysim.new { base_url = srv.base_url, api_key = "" }
    assert.equal("ok", assert(c:health_live()).status)
  end)

  it("markets-by-token answers condition_id, primary_token_id and outcome for Yes and No", function()
    local y = assert(client:market_by_token(yes_tok))
    assert.same({ id, yes_tok, "Yes" }, { y.condition_id, y.primary_token_id, y.outcome })
    local n = assert(client:market_by_token(no_tok))
    assert.same({ id, yes_tok, "No" }, { n.condition_id, n.primary_token_id, n.outcome })
    local _, err = client:market_by_token("123456789012345678901234567890")
    assert.equal(404, err.status)
    assert.equal("TOKEN_NOT_FOUND", err.code)
  end)

  it("the CLOB drop-in routes a No token to No and the colon form too", function()
    local r = assert(client:clob_order { token_id = no_tok, side = "BUY", price = "0.70", size = "5",
      order_type = "FOK" })
    assert.equal("No", r.order.outcome)
    r = assert(client:clob_order { token_id = id .. ":NO", side = "BUY", price = "0.70", size = "5",
      order_type = "FOK" })
    assert.equal("No", r.order.outcome)
    r = assert(client:clob_order { token_id = yes_tok, side = "BUY", price = "0.50", size = "5",
      order_type = "FOK" })
    assert.equal("Yes", r.order.outcome)
  end)

  it("the CLOB drop-in routes an Up/Down token to its outcome", function()
    local payload = assert(client:updown {})
    local rows = payload.markets or payload
    local row
    for _, u in ipairs(rows) do if u.tokens or u.token_ids or u.markets then row = u; break end end
    if not row then return pending("no Up/Down window listed on this branch") end
    local cid = row.condition_id or (row.markets and row.markets[1].condition_id)
    local m = assert(client:market(cid))
    local down = m.tokens[2]
    local b = assert(client:book_by_token(down.token_id))
    assert.equal(down.token_id, b.asset_id)
    local t = assert(client:market_by_token(down.token_id))
    assert.equal(down.outcome, t.outcome)
    assert.truthy(t.outcome:lower() == "down" or t.outcome:lower() == "no")
  end)

  it("books carry Polymarket's summary fields; /v1/book takes a condition id", function()
    local b = assert(client:book(id))
    assert.equal(id, b.market)
    assert.equal(yes_tok, b.asset_id)
    assert.equal("0.01", b.tick_size)
    assert.is_false(b.neg_risk)
    assert.equal("5", b.min_order_size:match("^5") and "5")
    assert.truthy(b.hash:match("^0x%x+$"))
    assert.truthy(b.timestamp:match("^%d+$") and #b.timestamp >= 13, "epoch ms")
    local bt = assert(client:book_by_token(id))
    assert.equal(yes_tok, bt.asset_id)
    local bn = assert(client:book_by_token(id .. ":NO"))
    assert.equal(no_tok, bn.asset_id)
    -- a trade happened on Yes above: its book and the market show the last trade price
    assert.equal("string", type(b.last_trade_price))
    local m = assert(client:market(id))
    assert.equal(id, m.id)
    assert.equal("string", type(m.last_trade_price))
  end)

  it("refuses orders below the book's min_order_size of 5 shares", function()
    assert.equal("5", assert(client:book(id)).min_order_size)
    local before = assert(client:balance()).balance
    local _, err = client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = "4.99",
      price = "0.99" }
    assert.equal(400, err.status)
    assert.equal("INVALID_ORDER_MIN_SIZE", err.code)
    assert.equal(before, assert(client:balance()).balance)
  end)

  it("/v1/me carries balance; orders carry id; status=OPEN lists pending orders", function()
    local me = assert(client:me())
    assert.equal(assert(client:balance()).balance, me.balance)
    local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = "5",
      price = "0.10", order_type = "limit" })
    assert.equal(o.order_id, o.id)
    local r = assert(client:orders_page { status = "OPEN" })
    assert.equal(o.order_id, r.orders[1].order_id)
  end)

  it("cancel-all needs a confirmation; answers canceled and a not_canceled map", function()
    local raw = assert(client:_call("GET", "/v1/orders", { query = { status = "PENDING" } }))
    assert.is_true(#raw.orders >= 1)
    local _, err = client:_call("POST", "/v1/cancel-all")
    assert.equal(400, err.status)
    assert.equal("CONFIRMATION_REQUIRED", err.code)
    local r = assert(client:cancel_all())
    assert.equal(#raw.orders, #r.canceled)
    assert.same({}, r.not_canceled)
  end)

  it("data_orders and data_trades walk the Polymarket envelope to LTE=", function()
    local page = assert(client:data_orders_page { limit = 1 })
    assert.equal(1, page.limit)
    assert.equal(1, page.count)
    assert.are_not.equal("LTE=", page.next_cursor)
    local n = 0
    for o in client:data_orders { page_size = 1, market = id } do
      n = n + 1
      assert.equal(id, o.market)
    end
    assert.equal(4, n)      -- three FOK fills and one cancelled limit
    local last = assert(client:data_orders_page { limit = 100 })
    assert.equal("LTE=", last.next_cursor)
    local trades = {}
    for t in client:data_trades { page_size = 2 } do trades[#trades + 1] = t end
    assert.equal(3, #trades)
    assert.equal(no_tok, trades[#trades].asset_id)
    assert.equal(0, #assert(client:data_trades_page { asset_id = "nope" }).data)
  end)

  it("prices_history answers {history = {{t, p}}}", function()
    local h = assert(client:prices_history(yes_tok, { interval = "1d" }))
    assert.is_true(#h.history >= 1)
    assert.equal("number", type(h.history[1].t))
    assert.equal("number", type(h.history[1].p))
    local _, err = client:prices_history("unknown-token")
    assert.equal(404, err.status)
  end)

  it("wallets: create, get, rename, reset, archive; rows have id", function()
    local list = assert(client:wallets())
    for _, w in ipairs(list) do assert.equal("string", type(w.id)) end
    local w = assert(client:create_wallet { label = "bot" })
    assert.equal("SANDBOX", w.wallet_type)
    assert.equal("bot", assert(client:wallet(w.id)).label)
    assert.equal("renamed", assert(client:rename_wallet(w.id, "renamed")).label)
    assert.equal(w.starting_balance, assert(client:reset_wallet(w.id)).balance)
    assert.is_true(assert(client:archive_wallet(w.id)).archived)
    local _, err = client:wallet(w.id)
    assert.equal(404, err.status)
    _, err = client:archive_wallet("main")
    assert.equal(400, err.status)
  end)

  it("CSV export honours market_id; equity honours limit; closed= filters markets", function()
    local csv = assert(client:export_trades { market_id = "none" })
    assert.equal(1, select(2, csv:gsub("\n", "")))     -- the header only
    csv = assert(client:export_trades { market_id = id })
    assert.equal(4, select(2, csv:gsub("\n", "")))
    local eq = assert(client:equity { limit = 1 })
    assert.equal(1, #eq)
    local closed = assert(client:markets_page { closed = true, limit = 500 })
    for _, m in ipairs(closed) do assert.is_true(m.closed) end
    local open = assert(client:_call("GET", "/v1/markets", { query = { closed = "false", limit = 500 } }))
    for _, m in ipairs(open) do assert.is_false(m.closed) end
    assert.is_true(#open > 0)
  end)

  describe("WebSocket", function()
    local core = require "polysim.core"
    local ploop = require "polysim.loop"
    local function wait(pred) return ploop.run_until(pred, 3) end
    local function connect(channel)
      local token = assert(client:ws_token()).token
      local r = { msgs = {} }
      r.conn = core.ws_connect {
        url = srv.base_url:gsub("^http", "ws") .. "/v1/ws/" .. channel .. "?token=" .. token,
        on_open = function() r.opened = true end,
        on_message = function(text) r.msgs[#r.msgs + 1] = assert(core.json_decode(text)) end,
        on_close = function(code) r.code = code end,
      }
      return r
    end
    local function price_of(r)
      for _, m in ipairs(r.msgs) do if m.type == "price" then return m end end
    end

    it("price frames carry emit_ts_ms, the last trade and per-outcome best bid/ask", function()
      local r = connect("prices")
      assert.is_true(wait(function() return r.opened end))
      r.conn:send(core.json_encode { action = "subscribe", conditions = core.array { id } })
      assert.is_true(wait(function() return price_of(r) end))
      local p = price_of(r)
      assert.equal(id, p.market_id)
      assert.equal("number", type(p.emit_ts_ms))
      assert.equal("string", type(p.last_trade))
      assert.equal("string", type(p.last_trade_size))
      assert.truthy(p.last_trade_side == "BUY" or p.last_trade_side == "SELL")
      assert.equal("0.40", p.outcomes[1].best_bid)
      assert.equal("0.45", p.outcomes[1].best_ask)
      assert.equal("string", type(p.outcomes[1].last_trade))
      r.conn:close()
    end)

    it("/v1/ws/market takes Polymarket's assets_ids; /v1/ws/user delivers fills", function()
      local r, u = connect("market"), connect("user")
      assert.is_true(wait(function() return r.opened and u.opened end))
      r.conn:send(core.json_encode { type = "market", assets_ids = core.array { no_tok } })
      assert.is_true(wait(function() return price_of(r) end))
      assert.equal(id, price_of(r).market_id)
      assert(client:clob_order { token_id = yes_tok, side = "BUY", price = "0.50", size = "5", order_type = "FOK" })
      assert.is_true(wait(function()
        for _, m in ipairs(u.msgs) do if m.type == "fill" then return true end end
      end))
      r.conn:close(); u.conn:close()
    end)
  end)
end)
