-- luacheck: std +busted
-- The --markets data file, brand-new-market 404s and up/down windows of the local exchange.
local exchange = require "polysim.exchange"

local T0 = 1790000000

local function setup(opts)
  opts = opts or {}
  local clock = { t = T0 }
  opts.clock = function() return clock.t end
  opts.seed = opts.seed or 5
  local ex, err = exchange.new(opts)
  return ex, clock, err
end

local function call(ex, method, path, o)
  o = o or {}
  return ex:handle { method = method, path = path, query = o.query or {}, json = o.json,
                     headers = { ["x-api-key"] = o.key or ex.api_key } }
end

local CID = "0x" .. string.rep("ab", 32)

local DATA = {
  categories = { politics = "0.04" },
  markets = {
    { condition_id = CID, question = "Will the test pass?", category = "politics",
      outcomes = { { label = "Yes", token_id = "111", price = "0.65" }, { label = "No", token_id = "222" } },
      end_date = "2030-01-01T00:00:00Z", is_hot = true, volume = "1234.5",
      books = { Yes = { bids = { { "0.64", "100" } }, asks = { { "0.66", "50" }, { price = "0.67",
          size = "25.5" } } } } },
    { question = "Which colour wins?", outcomes = { "Red", "Green", "Blue" }, prices = { "0.5", "0.3", "0.2" },
      category = "culture", slug = "colour" },
    { question = "Already over?", closed = true, resolved_outcome = "No" },
  },
}

describe("exchange markets file", function()
  it("loads markets, outcomes, prices, fees and books exactly", function()
    local ex = assert(setup { markets = DATA })
    assert.are.equal(3, #ex.U.list)
    local m = ex:market(CID)
    assert.are.equal(400, m.fee_bps)
    assert.are.equal("111", m.outcomes[1].token_id)
    assert.are.equal(3500, m.outcomes[2].price)
    local r = call(ex, "GET", "/v1/markets/" .. CID)
    assert.are.equal(200, r.status)
    assert.are.equal("Will the test pass?", r.body.question)
    assert.are.equal("2030-01-01T00:00:00Z", r.body.end_date)
    assert.are.equal("1234.50", r.body.volume)
    local b = call(ex, "GET", "/v1/book", { query = { token_id = "111" } }).body
    assert.are.same({ { price = "0.66", size = "50" }, { price = "0.67", size = "25.5" } }, b.asks)
    local c0 = call(ex, "GET", "/v1/markets/by-slug/colour").body
    assert.are.equal("0.30", c0.live_price.outcomes[2].price)
    -- books given in the file are pinned: ticks do not move or rebuild them
    for _ = 1, 10 do ex:tick(5) end
    local b2 = call(ex, "GET", "/v1/book", { query = { token_id = "111" } }).body
    assert.are.same(b.asks, b2.asks)
    local c = call(ex, "GET", "/v1/markets/by-slug/colour").body
    assert.are.same({ "Red", "Green", "Blue" }, { c.outcomes[1], c.outcomes[2], c.outcomes[3] })
    local closed = call(ex, "GET", "/v1/markets", { query = { active_only = "false", q = "over" } }).body[1]
    assert.is_true(closed.closed)
    -- trading against the file's book
    local o = call(ex, "POST", "/v1/orders", { json = { market_id = CID, side = "BUY", outcome = "Yes",
                                                        quantity = "60", price = "0.67" } })
    assert.are.equal(200, o.status)
    assert.are.equal("39.70", o.body.notional)      -- 50 * 0.66 + 10 * 0.67
  end)

  it("adds seeded markets with generate", function()
    local data = { generate = 5, markets = { { question = "Only one?" } } }
    local ex = assert(setup { markets = data })
    assert.are.equal(6, #ex.U.list)
  end)

  it("rejects invalid data with a message", function()
    for _, bad in ipairs {
      "nope", { markets = "x" }, { markets = { { outcomes = { "A", "B" } } } },
      { markets = { { question = "q", outcomes = { "A" } } } },
      { markets = { { question = "q", end_date = "tomorrow" } } },
      { markets = { { question = "q", books = { Maybe = {} } } } },
      { markets = { { question = "q", books = { Yes = { asks = { { "1.5", "1" } } } } } } },
      { markets = { { question = "q", condition_id = CID }, { question = "r", condition_id = CID } } },
      { books = { ["999"] = { bids = {} } } },
    } do
      local ex, _, err = setup { markets = bad }
      assert.is_nil(ex)
      assert.is_string(err)
    end
  end)
end)

describe("exchange brand-new markets", function()
  it("answer 404 MARKET_NOT_FOUND (transient) for new_for seconds", function()
    local ex, clock = setup()
    local cid = ex:pick_market { binary = true }
    assert(ex:set_market(cid, { new_for = 30 }))
    local r = call(ex, "GET", "/v1/markets/" .. cid)
    assert.are.equal(404, r.status)
    assert.are.equal("MARKET_NOT_FOUND", r.headers["X-Polysim-Code"])
    assert.are.equal("market_not_yet_available", r.body.details.reason)
    assert.are.equal(30, r.body.details.retry_after)
    local o = call(ex, "POST", "/v1/orders", { json = { market_id = cid, side = "BUY", outcome = "Yes",
                                                        quantity = "1", price = "0.99" } })
    assert.are.equal(404, o.status)
    clock.t = clock.t + 31
    assert.are.equal(200, call(ex, "GET", "/v1/markets/" .. cid).status)
  end)
end)

describe("exchange up/down windows", function()
  it("settle at the end of their window and never shift the seeded price paths", function()
    local a, ca = setup { seed = 8 }
    local b, cb = setup { seed = 8 }
    local w = call(a, "GET", "/v1/markets/updown", { query = { asset = "ETH", interval = "5M", limit = "1" } }).body.markets[1]
    assert.are.equal("ETH", w.asset)
    local m = a:market(w.condition_id)
    for _ = 1, 400 do
      ca.t = ca.t + 1; cb.t = cb.t + 1
      a:tick(1); b:tick(1)
    end
    for i, x in ipairs(a.U.list) do assert.are.equal(x.outcomes[1].price, b.U.list[i].outcomes[1].price) end
    assert.is_string(m.resolved_outcome)
    local d = call(a, "GET", "/v1/markets/" .. w.condition_id).body
    assert.are.equal(m.resolved_outcome, d.resolved_outcome)
    local o = call(a, "POST", "/v1/orders", { json = { market_id = w.condition_id, side = "BUY", outcome = "Up",
                                                       quantity = "1", price = "0.99" } })
    assert.are.equal("MARKET_CLOSED", o.headers["X-Polysim-Code"])
  end)
end)
