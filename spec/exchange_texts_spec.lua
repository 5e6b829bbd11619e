-- The front door's kept JSON texts (issue 13): a market's detail is encoded once and kept
-- until any value it shows changes; a placement's answer goes out as the text its
-- idempotency record holds. Over real loopback HTTP, every answer must still be what the
-- exchange's tables say at that moment.
local core = require "polysim.core"
local markets = require "polysim.exchange.markets"
local H = require "helper"

local BIG = 1 << 40

local raw = H.raw

describe("front door texts", function()
  local srv, ex, key, now, id
  setup(function()
    now = 1.7e9
    srv = H.exchange { clock = function() return now end,
      tiers = { pro = { per_second = BIG, per_minute = BIG } } }
    ex = srv.exchange
    key = srv.api_key
    id = ex:pick_market { binary = true, state = "open" }
  end)
  teardown(function() srv:close() end)

  -- The answer over HTTP, decoded, against the exchange's own table for the same moment.
  local function check_detail(what)
    local resp = assert(raw(srv.base_url, "GET", "/v1/markets/" .. id, { ["X-API-Key"] = key }))
    assert.equal(200, resp.status)
    local want = core.json_decode(core.json_encode(markets.detail(ex:market(id), now)))
    assert.same(want, core.json_decode(resp.body), what)
    return want
  end

  it("a market's detail follows every change to the market", function()
    local first = check_detail("first")
    check_detail("unchanged")
    ex:set_book(id, "Yes", { bids = { { "0.40", "1000" } }, asks = { { "0.60", "1000" } } }, { keep_complement = true })
    check_detail("set_book")
    local c = H.client(srv)
    assert(c:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 10, price = "0.99" })
    local traded = check_detail("after a fill")
    assert.are_not.same(first.volume, traded.volume)
    ex:set_price(id, "Yes", "0.71")
    check_detail("set_price")
    assert(ex:set_market(id, { is_hot = not first.is_hot }))
    check_detail("is_hot")
    assert(ex:set_market(id, { fee_rate = "0.05" }))
    check_detail("fee_rate")
    -- the state depends on the clock alone once end_date is set: open, then closed
    assert(ex:set_market(id, { end_date = math.floor(now) + 10 }))
    assert.equal("open", check_detail("end_date ahead").status)
    now = now + 20
    local closed = check_detail("end_date passed")
    assert.equal("closed", closed.status)
    assert.is_true(closed.closed)
    assert(ex:set_market(id, { resolved_outcome = "Yes" }))
    assert.equal("resolved", check_detail("resolved").status)
  end)

  it("HEAD has no body; include_book and by-token answers are built fresh", function()
    local other = ex:pick_market { binary = true, state = "open" }
    local h = { ["X-API-Key"] = key }
    assert.equal(200, assert(raw(srv.base_url, "GET", "/v1/markets/" .. other, h)).status)
    local head = assert(raw(srv.base_url, "HEAD", "/v1/markets/" .. other, h))
    assert.equal(200, head.status)
    assert.equal("", head.body or "")
    local with_book = core.json_decode(assert(raw(srv.base_url, "GET", "/v1/markets/" .. other .. "?include_book=true", h)).body)
    assert.is_table(with_book.book)
    local m = ex:market(other)
    local tok = m.outcomes[2].token_id
    local by_token = core.json_decode(assert(raw(srv.base_url, "GET", "/v1/markets-by-token/" .. tok, h)).body)
    assert.equal(tok, by_token.token_id)
    assert.equal(m.outcomes[2].label, by_token.outcome)
    assert.equal(other, by_token.condition_id)
  end)

  it("a replayed placement answers the first body; a replayed refusal its own request id", function()
    local other = ex:pick_market { binary = true, state = "open" }
    ex:set_book(other, "Yes", { bids = { { "0.40", "1000" } }, asks = { { "0.60", "1000" } } }, { keep_complement = true })
    local h = { ["X-API-Key"] = key, ["Content-Type"] = "application/json", ["Idempotency-Key"] = "texts-1" }
    local body = core.json_encode { market_id = other, side = "BUY", outcome = "Yes", quantity = "5", price = "0.99" }
    local a = assert(raw(srv.base_url, "POST", "/v1/orders", h, body))
    local b = assert(raw(srv.base_url, "POST", "/v1/orders", h, body))
    assert.equal(200, a.status)
    assert.equal(200, b.status)
    assert.is_nil(a.headers["idempotent-replayed"])
    assert.equal("true", b.headers["idempotent-replayed"])
    assert.same(core.json_decode(a.body), core.json_decode(b.body))
    assert.are_not.equal(a.headers["x-request-id"], b.headers["x-request-id"])
    -- a refusal (more shares than held) replays with the request id of the replay
    h["Idempotency-Key"] = "texts-2"
    body = core.json_encode { market_id = other, side = "SELL", outcome = "No", quantity = "50", price = "0.01" }
    local r1 = assert(raw(srv.base_url, "POST", "/v1/orders", h, body))
    local r2 = assert(raw(srv.base_url, "POST", "/v1/orders", h, body))
    assert.equal(400, r1.status)
    assert.equal(400, r2.status)
    assert.equal("true", r2.headers["idempotent-replayed"])
    local e1, e2 = core.json_decode(r1.body), core.json_decode(r2.body)
    assert.equal(r1.headers["x-request-id"], e1.request_id)
    assert.equal(r2.headers["x-request-id"], e2.request_id)
    e1.request_id, e2.request_id = nil, nil
    assert.same(e1, e2)
  end)
end)
