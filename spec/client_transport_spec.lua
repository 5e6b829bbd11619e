-- polysim.new{ transport = fn }: every client method, error object and retry rule works
-- through an in-process transport, with no socket (the backtest's way in).
local polysim = require "polysim"
local inproc = require "inproc"
local H = require "helper"

describe("in-process transport", function()
  local ex, client, calls
  setup(function()
    ex = require("polysim.exchange").new { seed = 3 }
  end)
  before_each(function()
    calls = {}
    client = polysim.new { api_key = ex.api_key, transport = inproc.transport(ex, calls),
      retry_base = 0, retry_cap = 1, sleep = function() end }
  end)

  it("reads markets and places an order that fills, without a socket", function()
    local id = ex:pick_market { binary = true, state = "open" }
    local m = assert(client:market(id))
    assert.equal(id, m.condition_id)
    local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", amount = "10", price = "0.99" })
    assert.equal("FILLED", o.status)
    local bal = assert(client:balance())
    assert.is_string(bal.balance or bal.cash or bal.available)
    assert.equal("/v1/markets/" .. id, calls[1].path)
    assert.equal(ex.api_key, calls[1].headers["X-API-Key"])
  end)

  it("passes the query string and iterates pages", function()
    local n = 0
    for _ in client:markets { page_size = 5, active_only = false } do n = n + 1 end
    assert.is_true(n > 5)
    assert.matches("^/v1/markets%?", calls[1].path)
    assert.matches("limit=5", calls[1].path)
  end)

  it("turns error answers into error objects", function()
    local r, err = client:market("0xnope")
    assert.is_nil(r)
    assert.equal(404, err.status)
    assert.equal("MARKET_NOT_FOUND", err.code)
    assert.is_false(err.retryable)
  end)

  it("retries a transport failure under the same policy", function()
    local n = 0
    local flaky = inproc.transport(ex)
    local c = polysim.new { api_key = ex.api_key, retry_base = 0, sleep = function() end,
      transport = function(...)
        n = n + 1
        if n < 3 then return nil, "CONNECTION_RESET", "reset by the test" end
        return flaky(...)
      end }
    assert(c:health())
    assert.equal(3, n)
    n = -10
    local _, err = c:health()
    assert.equal("CONNECTION_RESET", err.code)
    assert.equal(0, err.status)
    assert.is_true(err.retryable)
    assert.equal(4, err.attempts)
  end)

  it("reports a transport that raises or answers nonsense as an error object", function()
    local c = polysim.new { api_key = "k", transport = function() error("boom") end }
    local _, err = c:health()
    assert.equal("TRANSPORT_ERROR", err.code)
    assert.matches("boom", err.message)
    c = polysim.new { api_key = "k", transport = function() return "200" end }
    _, err = c:health()
    assert.equal("TRANSPORT_ERROR", err.code)
    H.raises("new: transport must be a function", polysim.new, { transport = 1 })
  end)
end)
