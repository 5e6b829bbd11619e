-- Misuse raises at once and names the argument; secrets stay secret; the transport
-- reuses its connection. Runs against a fixture server on loopback.
local polysim = require "polysim"
local H = require "helper"

local KEY = "ps_live_" .. ("5e"):rep(32)

describe("client arguments", function()
  local server, client, seen
  setup(function()
    server = H.fixture(function(req)
      seen[#seen + 1] = req
      return { status = 200, body = '{"ok":true}' }
    end)
    client = polysim.new { base_url = H.url(server), api_key = KEY, max_retries = 0 }
  end)
  teardown(function() server:close() end)
  before_each(function() seen = {} end)

  local order = { market_id = "0xabc", side = "BUY", outcome = "Yes", quantity = 10, price = "0.65" }
  local function with(changes)
    local o = {}
    for k, v in pairs(order) do o[k] = v end
    for k, v in pairs(changes) do o[k] = v end
    return o
  end

  it("names a bad side", function()
    H.raises('place_order: side must be "BUY" or "SELL"', client.place_order, client, with { side = "buy" })
  end)
  it("names a missing market_id", function()
    H.raises("place_order: market_id must be a non-empty string", client.place_order, client, with { market_id = false })
  end)
  it("requires a worst price on every order", function()
    local o = with {}
    o.price = nil
    H.raises("place_order: price is required", client.place_order, client, o)
  end)
  it("rejects inexact floats and names the field", function()
    H.raises("place_order: price", client.place_order, client, with { price = 0.65 })
  end)
  it("rejects garbage numbers", function()
    H.raises("place_order: quantity is not a decimal number", client.place_order, client, with { quantity = "ten" })
  end)
  it("rejects quantity and amount together", function()
    H.raises("give exactly one of quantity and amount", client.place_order, client, with { amount = "5" })
  end)
  it("rejects unknown options", function()
    H.raises("place_order: unknown option 'qty'", client.place_order, client, with { qty = 1 })
    H.raises("new: unknown option 'apikey'", polysim.new, { apikey = "x" })
  end)
  it("checks enum and range parameters", function()
    H.raises('candles: interval must be one of "1h", "6h", "1d", "1w", "max"', client.candles, client, "0xabc", { interval = "2h" })
    H.raises("markets_page: limit must be between 1 and 500", client.markets_page, client, { limit = 501 })
    H.raises("equity: days must be between 1 and 90", client.equity, client, { days = 0 })
    H.raises("prices: market_ids must hold 1 to 50 ids", client.prices, client, {})
  end)
  it("names the failing order of a batch", function()
    H.raises("place_orders: orders[2]: side must be", client.place_orders, client, { order, with { side = "HOLD" } })
  end)
  it("sends no request for a bad argument", function()
    pcall(client.place_order, client, with { side = "x" })
    assert.equal(0, #seen)
  end)

  it("sends numbers as exact strings", function()
    assert(client:place_order(with { quantity = 10, price = polysim.decimal "0.650" }))
    local body = polysim.json.decode(seen[1].body)
    assert.equal("10", body.quantity)
    assert.equal("0.650", body.price)
    assert(client:place_order(with { quantity = 0.5 }))
    assert.equal("0.5", polysim.json.decode(seen[2].body).quantity)
  end)

  it("always sends an Idempotency-Key with an order, the client_order_id when given", function()
    assert(client:place_order(order))
    assert(client:place_order(with { client_order_id = "mine-1" }))
    assert(client:place_order(with { idempotency_key = "idem-7" }))
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", seen[1].headers["idempotency-key"])
    assert.equal("mine-1", seen[2].headers["idempotency-key"])
    assert.equal("idem-7", seen[3].headers["idempotency-key"])
  end)

  it("sends the polysim User-Agent and the key header", function()
    assert(client:balance())
    assert.equal("polysim-lua/" .. polysim.VERSION, seen[1].headers["user-agent"])
    assert.equal(KEY, seen[1].headers["x-api-key"])
  end)

  it("sends no Expect: 100-continue, even with a large body", function()
    local names = {}
    for i = 1, 50 do names[i] = "0x" .. ("ab"):rep(32) end
    assert(client:prices(names))
    assert.is_nil(seen[1].headers["expect"])
    assert.is_true(#seen[1].body > 1024)
  end)

  it("reuses one connection for 100 sequential calls", function()
    local fresh = H.fixture(function() return { status = 200, body = "{}" } end)
    local c = polysim.new { base_url = H.url(fresh), api_key = KEY }
    for _ = 1, 100 do assert(c:balance()) end
    fresh:close()
    assert.equal(100, c:stats().requests)
    assert.equal(1, c:stats().connections_opened)
  end)
end)

describe("secrets", function()
  it("keeps the key out of tostring(client) and of the object's fields", function()
    local c = polysim.new { base_url = "http://127.0.0.1:9", api_key = KEY }
    assert.is_nil(tostring(c):find(KEY:sub(9, 24), 1, true))
    for k, v in pairs(c) do
      assert.is_falsy(type(v) == "string" and v:find(KEY, 1, true), "field " .. k .. " holds the key")
    end
  end)

  it("keeps the key out of errors", function()
    local c = polysim.new { base_url = "http://127.0.0.1:9", api_key = KEY, max_retries = 0 }
    local _, err = c:balance()
    assert.is_nil(tostring(err):find(KEY:sub(9), 1, true))
    for _, v in pairs(err) do
      assert.is_falsy(type(v) == "string" and v:find(KEY:sub(9), 1, true))
    end
  end)

  it("reads POLYSIM_API_KEY when no api_key is given", function()
    local c = polysim.new { base_url = "http://127.0.0.1:9", api_key = nil }
    assert.equal(os.getenv("POLYSIM_API_KEY") ~= nil and os.getenv("POLYSIM_API_KEY") ~= "", c:has_key())
  end)

  it("refuses to send a key over plain http to a non-loopback host", function()
    H.raises("refusing to send the API key over plain http://", polysim.new,
      { base_url = "http://example.com", api_key = KEY })
    assert.truthy(polysim.new { base_url = "http://example.com", api_key = KEY, allow_insecure = true })
    assert.truthy(polysim.new { base_url = "http://localhost:8000", api_key = KEY })
    assert.truthy(polysim.new { base_url = "https://example.com", api_key = KEY })
  end)

  it("answers MISSING_API_KEY without a request when no key is set", function()
    local c = polysim.new { base_url = "http://127.0.0.1:9", api_key = "" }
    local _, err = c:balance()
    assert.equal("MISSING_API_KEY", err.code)
  end)
end)
