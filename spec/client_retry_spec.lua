-- The one retry policy (polysim.retry) over real loopback HTTP against fixture servers:
-- what is retried, how long it waits (counted through the client's sleep hook, never
-- timed), and the bugs of issue 8 that it fixes:
--   4. a Retry-After of inf, 1e9 or 86400 made a call sleep that long;
--   5. CR/LF in idempotency_key, client_order_id or user_agent became headers of their own;
--   7. pagination picked "the" array by pairs() order and stopped early when the server
--      capped limit.
local polysim = require "polysim"
local retry = require "polysim.retry"
local H = require "helper"

local KEY = "ps_live_" .. ("0"):rep(64)

describe("retry policy", function()
  local server, answer, calls, seen
  setup(function()
    server = H.fixture(function(req)
      calls = calls + 1
      seen[#seen + 1] = req
      local a = answer
      if type(a) == "function" then a = a(req, calls) end
      return a
    end)
  end)
  teardown(function() server:close() end)
  before_each(function() calls, seen = 0, {} end)

  local function client(opts)
    local slept = {}
    local o = { base_url = H.url(server), api_key = KEY, max_retries = 3, retry_base = 0.001,
      retry_cap = 5, sleep = function(s) slept[#slept + 1] = s end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return polysim.new(o), slept
  end

  describe("Retry-After (issue 8 bug 4)", function()
    for _, v in ipairs { "1e9", "86400" } do
      it("returns at once with retry_after set when the server asks for " .. v .. " s", function()
        answer = { status = 503, headers = { ["Retry-After"] = v }, body = '{"error":"BUSY"}' }
        local c, slept = client()
        local r, err = c:balance()
        assert.is_nil(r)
        assert.equal(tonumber(v), err.retry_after)
        assert.equal("retry_after", err.retry_stopped)
        assert.equal(0, #slept)
        assert.equal(1, calls)
      end)
    end

    it("rejects a non-finite Retry-After and backs off within retry_cap instead", function()
      for _, v in ipairs { "inf", "nan", "1e999" } do
        calls = 0
        answer = { status = 429, headers = { ["Retry-After"] = v }, body = '{"error":"RATE_LIMITED"}' }
        local c, slept = client()
        local _, err = c:balance()
        assert.is_nil(err.retry_after)
        assert.equal(4, calls)
        assert.equal(3, #slept)
        for _, s in ipairs(slept) do assert.is_true(s <= 5, "slept " .. s) end
      end
    end)

    it("waits a Retry-After within retry_cap, exactly", function()
      answer = function(_, n)
        if n == 1 then return { status = 429, headers = { ["Retry-After"] = "2" }, body = "{}" } end
        return { status = 200, body = '{"ok":true}' }
      end
      local c, slept = client()
      assert(c:balance())
      assert.same({ 2 }, slept)
    end)

    it("ends the call instead of sleeping past its deadline", function()
      answer = { status = 503, headers = { ["Retry-After"] = "3" }, body = "{}" }
      local c, slept = client { deadline = 1 }
      local _, err = c:balance()
      assert.equal("deadline", err.retry_stopped)
      assert.equal(3, err.retry_after)
      assert.equal(0, #slept)
    end)
  end)

  describe("what is repeated", function()
    it("repeats a GET after a 502 but a POST without a key only after a 429", function()
      answer = { status = 502, body = "" }
      local c = client()
      local _, err = c:balance()
      assert.equal(4, calls)
      assert.is_true(err.retryable)
      calls = 0
      _, err = c:reset_balance()
      assert.equal(1, calls)                      -- may have been processed: not repeated
      assert.is_true(err.retryable)
      calls = 0
      answer = function(_, n)
        if n == 1 then return { status = 429, body = "{}" } end
        return { status = 200, body = "{}" }
      end
      assert(c:reset_balance())                   -- a 429 was never processed: repeated
      assert.equal(2, calls)
    end)

    it("never repeats a 4xx", function()
      answer = { status = 400, body = '{"error":"INSUFFICIENT_BALANCE"}' }
      local _, err = client():balance()
      assert.equal(1, calls)
      assert.is_false(err.retryable)
    end)

    it("the policy table is the one place that decides", function()
      local e = { status = 0, code = "CONNECTION_REFUSED" }
      assert.is_true(retry.classify(e, false))    -- never sent: safe for anything
      e = { status = 0, code = "TIMEOUT" }
      assert.is_false(retry.classify(e, false))
      assert.is_true(e.retryable)
      assert.is_true(retry.classify({ status = 0, code = "TIMEOUT" }, true))
      assert.is_false(retry.classify({ status = 0, code = "TLS_ERROR" }, true))
      assert.is_false(retry.classify({ status = 404 }, true))
    end)

    it("sends a POST without an idempotency key on a fresh connection (issue 10 item 4)", function()
      answer = { status = 200, body = "{}" }
      local c = client()
      assert(c:balance())                         -- a connection to reuse
      local before = c:stats().connections_opened
      for _ = 1, 3 do assert(c:reset_balance()) end
      local fresh = c:stats().connections_opened - before
      if fresh == 0 then
        return pending("core's http.c does not implement the fresh request option yet")
      end
      assert.equal(3, fresh)
      before = c:stats().connections_opened
      for i = 1, 3 do assert(c:place_order { market_id = "m", side = "BUY", outcome = "Yes", quantity = 1,
        price = "0.5", idempotency_key = "k" .. i }) end
      assert.equal(0, c:stats().connections_opened - before)
    end)
  end)

  describe("header values (issue 8 bug 5)", function()
    local order = { market_id = "0xabc", side = "BUY", outcome = "Yes", quantity = 10, price = "0.5" }
    local function with(k, v)
      local o = {}
      for a, b in pairs(order) do o[a] = b end
      o[k] = v
      return o
    end
    before_each(function() answer = { status = 200, body = "{}" } end)

    it("rejects CR/LF and control characters, naming the argument, before any request", function()
      local c = client()
      H.raises("place_order: idempotency_key must not contain control characters",
        c.place_order, c, with("idempotency_key", "abc\r\nX-Injected: yes"))
      H.raises("place_order: client_order_id must not contain control characters",
        c.place_order, c, with("client_order_id", "abc\nX-Injected: yes"))
      H.raises("clob_order: client_order_id must not contain control characters", c.clob_order, c,
        { token_id = "t", side = "BUY", price = "0.5", size = "1", client_order_id = "a\0b" })
      H.raises("new: user_agent must not contain control characters", polysim.new,
        { base_url = H.url(server), user_agent = "ua\r\nX-Injected: yes" })
      assert.equal(0, calls)
    end)

    it("still sends ordinary values", function()
      assert(client():place_order(with("idempotency_key", "key-1 with spaces")))
      assert.equal("key-1 with spaces", seen[1].headers["idempotency-key"])
      assert.is_nil(seen[1].headers["x-injected"])
    end)
  end)

  describe("pagination (issue 8 bug 7)", function()
    -- 250 events; the server caps limit at 100 and wraps the list beside another array.
    local N = 250
    before_each(function()
      answer = function(req)
        local limit = math.min(tonumber(req.query.limit) or 20, 100)
        local offset = tonumber(req.query.offset) or 0
        local items = {}
        for i = offset + 1, math.min(N, offset + limit) do items[#items + 1] = { id = i } end
        return { status = 200, body = polysim.json.encode {
          aaa = polysim.array { "not", "the", "list" }, zzz = polysim.array { 1 },
          events = polysim.array(items) } }
      end
    end)

    it("does not stop when the server gives fewer than asked for", function()
      local ids = {}
      for ev in client():events { page_size = 200 } do ids[#ids + 1] = ev.id end
      assert.equal(N, #ids)
      for i = 1, N do assert.equal(i, ids[i]) end
    end)

    it("reads the named list, whatever pairs() would visit first", function()
      for _ = 1, 5 do
        local n = 0
        for ev in client():events { page_size = 50 } do
          assert.is_table(ev)
          n = n + 1
        end
        assert.equal(N, n)
      end
    end)
  end)
end)
