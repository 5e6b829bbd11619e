-- The local exchange's front door under bad input, over real loopback HTTP: malformed JSON,
-- oversized bodies, unknown routes, a thousand random requests and raw truncated ones. It
-- must answer each with a well-formed error and keep its books consistent.
local polysim = require "polysim"
local core = require "polysim.core"
local H = require "helper"

local BIG = 1 << 40

local raw = H.raw

describe("local exchange front door", function()
  local srv, ex, key
  setup(function()
    srv = H.exchange { tiers = { pro = { per_second = BIG, per_minute = BIG } } }
    ex = srv.exchange
    key = srv.api_key
  end)
  teardown(function() srv:close() end)

  local function assert_error_shape(resp, status, code)
    assert.equal(status, resp.status)
    assert.is_string(resp.headers["x-request-id"])
    local body = assert(core.json_decode(resp.body))
    if code then
      assert.equal(code, resp.headers["x-polysim-code"])
    end
    return body
  end

  it("answers malformed JSON with 422 and a detail list", function()
    local resp = assert(raw(srv.base_url, "POST", "/v1/orders",
      { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }, '{"market_id": "0x1", "side": '))
    local body = assert_error_shape(resp, 422)
    assert.is_table(body.detail)
    assert.is_string(body.detail[1].msg)
  end)

  it("answers wrong types and missing fields with 422 naming the field", function()
    local resp = assert(raw(srv.base_url, "POST", "/v1/orders", { ["X-API-Key"] = key },
      core.json_encode { market_id = 5, side = "BUY", outcome = "Yes", price = "0.5" }))
    local body = assert_error_shape(resp, 422)
    local locs = {}
    for _, d in ipairs(body.detail) do locs[#locs + 1] = table.concat(d.loc, ".") end
    assert.matches("market_id", table.concat(locs, " "))
  end)

  it("answers an oversized body with 413 and keeps serving", function()
    local resp = assert(raw(srv.base_url, "POST", "/v1/orders", { ["X-API-Key"] = key },
      '{"pad":"' .. ("x"):rep(2 * 1024 * 1024) .. '"}'))
    assert_error_shape(resp, 413, "PAYLOAD_TOO_LARGE")
    assert(H.client(srv):health())
  end)

  -- The connection's memory pool (server.c CONN_POOL) bounds a request's header block: 14 KB
  -- of headers, or 7 KB of cookies (MHD keeps a parsed copy), still get their answer; 64 KB
  -- gets 431 and the server goes on.
  it("answers a request with 14 KB of headers or 7 KB of cookies; 431 for 64 KB", function()
    local resp = assert(raw(srv.base_url, "GET", "/v1/health", { ["X-Pad"] = ("p"):rep(14 * 1024) }))
    assert.equal(200, resp.status)
    resp = assert(raw(srv.base_url, "GET", "/v1/health", { Cookie = ("c"):rep(7 * 1024) }))
    assert.equal(200, resp.status)
    resp = raw(srv.base_url, "GET", "/v1/health", { Cookie = ("c"):rep(64 * 1024) })
    assert.equal(431, resp and resp.status)
    assert(H.client(srv):health())
  end)

  -- server.c sends an answer's Lua string as it is, held by a registry ref until MHD is
  -- done with it: after the answers are out, none of them is still held.
  it("holds no answer body once it is sent", function()
    local function held()
      local n = 0
      for k, v in pairs(debug.getregistry()) do
        if math.type(k) == "integer" and type(v) == "string" and v:find('"condition_id"', 1, true) then n = n + 1 end
      end
      return n
    end
    local id = ex:pick_market { binary = true, state = "open" }
    local c = H.client(srv)
    assert(c:market(id))
    local before = held()
    for _ = 1, 200 do assert(c:market(id)) end
    assert(c:health())                           -- one more turn of the server after the last
    assert.is_true(held() - before < 5, "bodies still held: " .. held() - before)
  end)

  it("answers an unknown route with a JSON 404", function()
    local resp = assert(raw(srv.base_url, "GET", "/v1/no/such/thing", { ["X-API-Key"] = key }))
    assert.equal(404, resp.status)
    assert.is_table(core.json_decode(resp.body))
    assert.is_string(resp.headers["x-request-id"])
  end)

  it("survives a thousand random requests with well-formed answers and consistent books", function()
    -- A small seeded generator: the same garbage every run, so a failure reproduces.
    local state = 12345
    local function rnd(n)
      state = (state * 1103515245 + 12345) % 2147483648
      return state % n + 1
    end
    local function pick(t) return t[rnd(#t)] end
    local id = ex:pick_market { binary = true, state = "open" }
    local methods = { "GET", "POST", "DELETE", "PATCH", "PUT", "HEAD", "OPTIONS", "POST", "GET" }
    local paths = { "/v1/orders", "/v1/orders/batch", "/v1/orders/1", "/v1/orders/%ff", "/v1/markets",
      "/v1/markets/" .. id, "/v1/markets/" .. id .. "/book", "/v1/markets/" .. id .. "/candles",
      "/v1/prices/batch", "/v1/account/balance", "/v1/account/history", "/v1/keys", "/v1/keys/1",
      "/v1/keys/1/rotate", "/v1/keys/bootstrap", "/v1/keys/ws-token", "/v1/clob/order", "/v1/cancel-all",
      "/v1/cancel-market-orders", "/v1/book", "/v1/../etc/passwd", "/", "/v1/markets?limit=-3",
      "/v1/markets?limit=abc&offset=-1", "/v1/orders?cursor=%00&limit=9999", "/v1/account/equity?days=1000" }
    local bodies = {
      function() return nil end,
      function() return "" end,
      function() return "{" end,
      function() return "[1,2,3]" end,
      function() return "null" end,
      function() return '{"orders": 5}' end,
      function() return '{"orders": [{"side": 1}, "x", null]}' end,
      function() return core.json_encode { market_id = id, side = pick { "BUY", "SELL", "HOLD", 7 },
        outcome = pick { "Yes", "No", "Maybe" }, quantity = pick { "1", "-1", "0", "1e9", "abc", 2, 0.5 },
        price = pick { "0.5", "2", "-0.1", "0.99", 0.3 }, order_type = pick { "market", "limit", "stop" },
        time_in_force = pick { "GTC", "FOK", "IOC", "FAK", "NEVER" } } end,
      function()
        local t = {}
        for i = 1, rnd(64) do t[i] = string.char(rnd(256) - 1) end
        return table.concat(t)
      end,
      function() return '{"market_ids": ["' .. id .. '", 5, null]}' end,
      function() return '{"name": "' .. ("n"):rep(rnd(300)) .. '", "tier": "gold", "permissions": "all"}' end,
    }
    local keys = { key, key, key, "ps_live_" .. ("0"):rep(64), "garbage", nil }
    local seen = {}
    for i = 1, 1000 do
      local method = pick(methods)
      local headers = {}
      local k = keys[rnd(#keys)]
      if k then headers[pick { "X-API-Key", "Poly-API-Key", "POLY_API_KEY" }] = k end
      if rnd(5) == 1 then headers["Authorization"] = pick { "Bearer x.y.z", "Bearer " .. key, "Basic abc" } end
      local body = pick(bodies)()
      if method == "GET" or method == "HEAD" then body = nil end
      local resp, err = raw(srv.base_url, method, pick(paths), headers, body)
      assert.is_nil(err, "request " .. i .. " failed at the transport level: " .. tostring(err))
      assert.is_true(resp.status >= 200 and resp.status < 600)
      seen[resp.status] = (seen[resp.status] or 0) + 1
      assert.is_string(resp.headers["x-request-id"], "request " .. i .. " has no x-request-id")
      if method ~= "HEAD" and resp.headers["content-type"] == "application/json" then
        local decoded, jerr = core.json_decode(resp.body)
        assert.is_nil(jerr, "request " .. i .. " answered bad JSON")
        assert.is_not_nil(decoded)
      end
      if resp.status >= 400 and method ~= "HEAD" then
        assert.is_string(resp.headers["x-polysim-code"], "request " .. i .. " " .. resp.status .. " without a code")
      end
    end
    assert.is_true((seen[422] or 0) > 0 and (seen[404] or 0) > 0 and (seen[401] or 0) > 0)
    assert.is_nil(seen[500], "the exchange failed on some request")
    assert.is_true(ex:check_invariants())
    -- The garbage may have revoked or rotated the ready key (DELETE /v1/keys/1): use a new one.
    local fresh = ex:add_key { user_id = ex:add_user { plan = "pro" }.user_id, tier = "pro" }
    assert(H.client(srv, { api_key = fresh }):balance())
  end)

  it("survives truncated and garbage requests on raw connections", function()
    local port = srv.port
    local payloads = {
      "POST /v1/orders HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 500\\r\\n\\r\\n{\\\"market_id\\\"",
      "GET /v1/mark",
      "\\x00\\x01\\x02\\xff\\xfe garbage\\r\\n\\r\\n",
      "GET /v1/health HTTP/1.1\\r\\nHost: x\\r\\nX-Long: " .. ("a"):rep(20000) .. "\\r\\n\\r\\n",
      "POST /v1/orders HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\n",
      "GET / HTTP/9.9\\r\\n\\r\\n",
    }
    local done = os.tmpname()
    local script = {}
    for round = 1, 5 do
      for i, p in ipairs(payloads) do
        script[#script + 1] = string.format(
          "(exec 3<>/dev/tcp/127.0.0.1/%d && printf '%s' >&3 && sleep 0.0%d; exec 3>&-) 2>/dev/null &",
          port, p, (i + round) % 10)
      end
    end
    script[#script + 1] = "wait; echo ok > " .. done
    local f = assert(io.open(done .. ".sh", "w"))
    f:write(table.concat(script, "\n"), "\n")
    f:close()
    os.execute("bash " .. done .. ".sh &")
    -- Keep serving while the raw clients talk to us.
    local finished = polysim.loop.run_until(function()
      local h = io.open(done)
      local text = h and h:read("a")
      if h then h:close() end
      return text == "ok\n"
    end, 20)
    os.remove(done)
    os.remove(done .. ".sh")
    assert.is_true(finished)
    assert(H.client(srv):health())
    assert.is_true(ex:check_invariants())
  end)
end)
