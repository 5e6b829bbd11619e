-- Error decoding over real loopback HTTP: a fixture server answers each documented error
-- shape and the client must turn each into the right error object.
local polysim = require "polysim"
local H = require "helper"

describe("error decoding", function()
  local server, client, answer, calls
  setup(function()
    server = H.fixture(function(req)
      calls = calls + 1
      local a = answer
      if type(a) == "function" then a = a(req, calls) end
      return a
    end)
    client = polysim.new { base_url = H.url(server), api_key = "ps_live_" .. ("0"):rep(64),
      max_retries = 2, retry_base = 0.001, retry_cap = 0.01 }
  end)
  teardown(function() server:close() end)
  before_each(function() calls = 0 end)

  local function get()
    return client:_call("GET", "/v1/account/balance")
  end

  it("takes the code from X-Polysim-Code over the body", function()
    answer = { status = 403, headers = { ["X-Polysim-Code"] = "CLOSED_BETA", ["x-request-id"] = "req-9" },
      body = '{"error": "API access is in closed beta. New keys are issued to approved cohorts only."}' }
    local r, err = get()
    assert.is_nil(r)
    assert.equal("CLOSED_BETA", err.code)
    assert.equal(403, err.status)
    assert.matches("closed beta", err.message)
    assert.equal("req-9", err.request_id)
    assert.is_false(err.retryable)
    assert.equal("GET", err.method)
    assert.equal("/v1/account/balance", err.path)
  end)

  it("decodes {error, message, request_id, details}", function()
    answer = { status = 400, body = polysim.json.encode { error = "INSUFFICIENT_BALANCE",
      message = "need 6.59, have 1.00", request_id = "abc", details = { needed = "6.59" } } }
    local _, err = get()
    assert.equal("INSUFFICIENT_BALANCE", err.code)
    assert.equal("need 6.59, have 1.00", err.message)
    assert.equal("abc", err.request_id)
    assert.equal("6.59", err.details.needed)
  end)

  it("prefers the x-request-id header over the body's", function()
    answer = { status = 404, headers = { ["x-request-id"] = "from-header" },
      body = '{"error":"ORDER_NOT_FOUND","message":"no such order","request_id":"from-body"}' }
    local _, err = get()
    assert.equal("from-header", err.request_id)
    assert.equal("ORDER_NOT_FOUND", err.code)
  end)

  it("decodes FastAPI {detail: string}", function()
    answer = { status = 401, body = '{"detail": "Invalid API key"}' }
    local _, err = get()
    assert.equal("HTTP_401", err.code)
    assert.equal("Invalid API key", err.message)
  end)

  it("decodes 422 {detail: [{loc, msg, type}]}", function()
    answer = { status = 422, body = '{"detail":[{"loc":["body","quantity"],"msg":"field required","type":"value_error.missing"},' ..
      '{"loc":["body","price"],"msg":"not a number","type":"type_error"}]}' }
    local _, err = get()
    assert.equal("VALIDATION_ERROR", err.code)
    assert.equal(422, err.status)
    assert.matches("body.quantity: field required", err.message, 1, true)
    assert.matches("body.price: not a number", err.message, 1, true)
    assert.equal("value_error.missing", err.details[1].type)
  end)

  it("decodes a non-JSON body", function()
    answer = { status = 500, headers = { ["Content-Type"] = "text/html" }, body = "<html>Internal Server Error</html>" }
    local _, err = get()
    assert.equal("HTTP_500", err.code)
    assert.truthy(err.message:find("non-JSON body", 1, true))
    assert.matches("Internal Server Error", err.message)
    assert.equal(3, calls) -- 500 is transient: first try + max_retries
    assert.equal(3, err.attempts)
  end)

  it("decodes an empty body", function()
    answer = { status = 502, body = "" }
    local _, err = get()
    assert.equal("HTTP_502", err.code)
    assert.matches("empty body", err.message)
    assert.is_true(err.retryable)
  end)

  it("reports a CDN edge block as such, not as an API error", function()
    answer = { status = 403, headers = { ["Content-Type"] = "text/plain" }, body = "error code: 1010" }
    local _, err = get()
    assert.equal("EDGE_BLOCKED", err.code)
    assert.equal(1010, err.details.edge_code)
    assert.matches("not an API error", err.message)
  end)

  it("keeps a body code when no header is sent", function()
    answer = { status = 409, body = '{"error":"IDEMPOTENCY_CONFLICT","message":"key reused"}' }
    local _, err = get()
    assert.equal("IDEMPOTENCY_CONFLICT", err.code)
  end)

  it("decodes Retry-After and waits for it on 429", function()
    answer = function(_, n)
      if n == 1 then
        return { status = 429, headers = { ["Retry-After"] = "0", ["X-Polysim-Code"] = "RATE_LIMITED" },
          body = '{"error":"RATE_LIMITED","message":"slow down"}' }
      end
      return { status = 200, body = '{"balance":"1.00"}' }
    end
    local r = assert(get())
    assert.equal("1.00", r.balance)
    assert.equal(2, calls)
  end)

  it("gives up on 429 after max_retries with retry_after set", function()
    answer = { status = 429, headers = { ["Retry-After"] = "0" }, body = '{"error":"RATE_LIMITED","message":"x"}' }
    local _, err = get()
    assert.equal("RATE_LIMITED", err.code)
    assert.equal(0, err.retry_after)
    assert.equal(3, calls)
  end)

  it("reads the X-RateLimit-* headers into client.ratelimit", function()
    answer = { status = 200, headers = { ["X-RateLimit-Limit"] = "20", ["X-RateLimit-Remaining"] = "7",
      ["X-RateLimit-Reset"] = "1700000000", ["X-RateLimit-Tier"] = "pro" }, body = "{}" }
    assert(get())
    assert.same({ limit = 20, remaining = 7, reset = 1700000000, tier = "pro" }, client.ratelimit)
  end)

  it("keeps the last answer's X-Request-Id, and the last X-RateLimit-* seen", function()
    answer = { status = 200, headers = { ["X-Request-Id"] = "req-1", ["X-RateLimit-Limit"] = "20",
      ["X-RateLimit-Remaining"] = "7" }, body = "{}" }
    assert(get())
    assert.equal("req-1", client.last_request_id)
    assert.same({ limit = 20, remaining = 7 }, client.ratelimit)
    answer = { status = 200, headers = { ["X-Other"] = "x" }, body = "{}" }
    assert(get())
    assert.is_nil(client.last_request_id)
    assert.same({ limit = 20, remaining = 7 }, client.ratelimit)
    answer = { status = 400, headers = { ["X-Request-Id"] = "req-3" }, body = '{"error":"MARKET_CLOSED","message":"closed"}' }
    local _, err = get()
    assert.equal("req-3", client.last_request_id)
    assert.equal("req-3", err.request_id)
  end)

  it("does not retry 4xx answers", function()
    answer = { status = 400, body = '{"error":"MARKET_CLOSED","message":"closed"}' }
    local _, err = get()
    assert.equal("MARKET_CLOSED", err.code)
    assert.equal(1, calls)
  end)

  it("backs off and recovers from transient 503s", function()
    answer = function(_, n)
      if n < 3 then return { status = 503, body = "" } end
      return { status = 200, body = '{"ok":true}' }
    end
    local r = assert(get())
    assert.is_true(r.ok)
    assert.equal(3, calls)
    assert.equal(2, client:stats().retries >= 2 and 2 or -1)
  end)

  it("turns an invalid success body into DECODE_ERROR", function()
    answer = { status = 200, body = "{not json" }
    local r, err = get()
    assert.is_nil(r)
    assert.equal("DECODE_ERROR", err.code)
    assert.equal(200, err.status)
    -- issue 13: decoded in C from the receive buffer now; the same message as json_decode's
    assert.equal("response is not valid JSON: " .. select(2, require("polysim.core").json_decode("{not json")), err.message)
    answer = { status = 200, body = "" }
    assert.same({}, assert(get()))
    answer = { status = 200, body = "null" }
    assert.equal(polysim.null, get())
  end)

  it("formats tostring(err) as one line without the key", function()
    answer = { status = 401, headers = { ["X-Polysim-Code"] = "INVALID_API_KEY" }, body = '{"error":"INVALID_API_KEY","message":"bad key"}' }
    local _, err = get()
    local s = tostring(err)
    assert.equal("polysim: HTTP 401 INVALID_API_KEY: bad key (GET /v1/account/balance)", s)
    assert.is_nil(s:find("ps_live_", 1, true))
  end)
end)

describe("transport failures", function()
  it("reports a refused connection as status 0 CONNECTION_REFUSED", function()
    -- Bind a port, then close it: nothing listens there now.
    local s = H.fixture(function() return { status = 200, body = "{}" } end)
    local url = H.url(s)
    s:close()
    local c = polysim.new { base_url = url, api_key = "k", max_retries = 1, retry_base = 0.001 }
    local r, err = c:health()
    assert.is_nil(r)
    assert.equal(0, err.status)
    assert.equal("CONNECTION_REFUSED", err.code)
    assert.equal(2, err.attempts)
  end)

  it("reports a reset connection as EMPTY_REPLY and retries GETs", function()
    local n = 0
    local s = H.fixture(function() n = n + 1; return { drop = true } end)
    local c = polysim.new { base_url = H.url(s), api_key = "k", max_retries = 2, retry_base = 0.001 }
    local _, err = c:balance()
    s:close()
    assert.equal(0, err.status)
    assert.equal("EMPTY_REPLY", err.code)
    assert.equal(3, n)
  end)

  it("reports a timeout as TIMEOUT", function()
    local s = H.fixture(function() return { status = 200, body = "{}", delay = 1 } end)
    local c = polysim.new { base_url = H.url(s), api_key = "k", timeout = 0.2, max_retries = 0 }
    local _, err = c:balance()
    s:close()
    assert.equal("TIMEOUT", err.code)
    assert.equal(0, err.status)
  end)

  it("reports an unresolvable host as DNS_FAILURE", function()
    local c = polysim.new { base_url = "https://no-such-host.invalid", api_key = "k", max_retries = 0 }
    local _, err = c:balance()
    assert.equal("DNS_FAILURE", err.code)
  end)

  it("reports a TLS failure as TLS_ERROR (https to a plain HTTP port)", function()
    local s = H.fixture(function() return { status = 200, body = "{}" } end)
    local c = polysim.new { base_url = "https://127.0.0.1:" .. s:port(), api_key = "k", max_retries = 0 }
    local _, err = c:balance()
    s:close()
    assert.equal("TLS_ERROR", err.code)
  end)

  it("caps the response size", function()
    local s = H.fixture(function() return { status = 200, body = '"' .. ("x"):rep(100000) .. '"' } end)
    local c = polysim.new { base_url = H.url(s), api_key = "k", max_size = 1000, max_retries = 0 }
    local _, err = c:balance()
    s:close()
    assert.equal("RESPONSE_TOO_LARGE", err.code)
  end)
end)
