-- core.request over loopback, straight from C (no client layer): header checks, bodiless
-- methods, fresh connections, streaming and option conversions.
local core = require "polysim.core"
local H = require "helper"

local loop = core.loop()

-- Steps the loop until t is done (bounded), then returns t:result().
local function wait(t, limit)
  local deadline = core.monotime() + (limit or 5)
  while not t:done() and core.monotime() < deadline do loop:step(0.05) end
  assert(t:done(), "transfer did not finish")
  return t:result()
end

describe("core.request", function()
  local server, seen
  setup(function()
    server = H.fixture(function(req)
      seen[#seen + 1] = req
      return { status = 200, body = "ok" }
    end)
  end)
  teardown(function() server:close() end)
  before_each(function() seen = {} end)

  local function get(opts)
    opts.url = opts.url or H.url(server) .. "/x"
    return wait(core.request(opts))
  end

  it("lean = true: a 2xx answer keeps only the client's headers (none: no headers field)", function()
    local answer
    local srv <close> = H.fixture(function() return answer end)
    local url = H.url(srv) .. "/l"
    answer = { status = 200, body = "{}", headers = { ["X-Request-Id"] = "r-1", ["X-RateLimit-Tier"] = "pro",
      ["X-RateLimit-Remaining"] = "7", ["X-Other"] = "o", ["X-Request-Idx"] = "no" } }
    local r = wait(core.request { url = url, lean = true, decode = true })
    assert.same({ ["x-request-id"] = "r-1", ["x-ratelimit-tier"] = "pro", ["x-ratelimit-remaining"] = "7" }, r.headers)
    assert.same({}, r.data)
    assert.is_nil(r.http_version)
    assert.is_nil(r.time)
    assert.equal("integer", math.type(r.connects))
    -- the same answer without lean: every header
    r = wait(core.request { url = url, decode = true })
    assert.equal("1.1", r.http_version)
    assert.equal("number", type(r.time))
    assert.equal("o", r.headers["x-other"])
    assert.equal("no", r.headers["x-request-idx"])
    answer = { status = 200, body = "{}", headers = { ["X-Other"] = "o" } }
    r = wait(core.request { url = url, lean = true, decode = true })
    assert.is_nil(r.headers)
    assert.equal(200, r.status)
    -- not a 2xx: all of them, as the error path reads them
    answer = { status = 404, body = "{}", headers = { ["X-Other"] = "o", ["X-Request-Id"] = "r-2" } }
    r = wait(core.request { url = url, lean = true, decode = true })
    assert.equal("o", r.headers["x-other"])
    assert.equal("r-2", r.headers["x-request-id"])
    assert.equal("1.1", r.http_version)
  end)

  it("hands on_done the request's data with the transfer (nil without it)", function()
    local token, calls = {}, {}
    local function on_done(t, data) calls[#calls + 1] = { t = t, data = data } end
    local a = core.request { url = H.url(server) .. "/a", on_done = on_done, data = token }
    local b = core.request { url = H.url(server) .. "/b", on_done = on_done }
    wait(a)
    wait(b)
    assert.equal(2, #calls)
    for _, c in ipairs(calls) do
      if c.t == a then assert.equal(token, c.data) else assert.equal(b, c.t); assert.is_nil(c.data) end
    end
  end)

  -- Issue 8 bug 5: "abc\r\nX-Injected: yes" reached the server as a header of its own.
  it("refuses CR/LF in a header value, a header name and the user agent", function()
    H.raises("control character", core.request,
      { url = H.url(server), headers = { ["Idempotency-Key"] = "abc\r\nX-Injected: yes" } })
    H.raises("control character", core.request,
      { url = H.url(server), headers = { ["X-Client-Order-Id"] = "a\nb" } })
    H.raises("bad header name", core.request,
      { url = H.url(server), headers = { ["X-A\r\nX-Injected"] = "v" } })
    H.raises("user_agent", core.request, { url = H.url(server), user_agent = "ua\r\nX-Injected: yes" })
    H.raises("control character", core.request, { url = H.url(server), headers = { ["X-Z"] = "a\0b" } })
    loop:step(0)
    assert.equal(0, #seen)
  end)

  it("still sends tabs and ordinary values", function()
    local r = assert(get { headers = { ["X-Tab"] = "a\tb", ["Idempotency-Key"] = "k-1" }, user_agent = "ua/1" })
    assert.equal(200, r.status)
    assert.equal("a\tb", seen[1].headers["x-tab"])
    assert.equal("k-1", seen[1].headers["idempotency-key"])
    assert.equal("ua/1", seen[1].headers["user-agent"])
  end)

  -- Issue 13: pooled handles keep the options of a plain GET or POST; each request must still
  -- go out with its own method, body, headers and URL, whatever the handle ran before.
  it("sends each request's own method and body on reused handles", function()
    local json = { ["Content-Type"] = "application/json" }
    local function send(opts) -- closed when done, as polysim.loop does: its handle is pooled
      opts.url = opts.url or H.url(server) .. "/x"
      local t = core.request(opts)
      local r = wait(t)
      t:close()
      return r
    end
    assert(send { method = "POST", body = '{"n":1}', headers = { ["Content-Type"] = "application/json", ["X-A"] = "1" } })
    assert(send { method = "POST", body = '{"n":22}', headers = json })
    assert(send { url = H.url(server) .. "/y" })
    assert(send { method = "POST", body = "", headers = json })
    assert(send { method = "DELETE" })
    assert(send { method = "POST", body = '{"n":333}', headers = json })
    assert(send { method = "PUT", body = '{"n":4}', headers = json })
    assert.equal(7, #seen)
    local methods, bodies = {}, {}
    for i, r in ipairs(seen) do methods[i], bodies[i] = r.method, r.body or "" end
    assert.same({ "POST", "POST", "GET", "POST", "DELETE", "POST", "PUT" }, methods)
    assert.same({ '{"n":1}', '{"n":22}', "", "", "", '{"n":333}', '{"n":4}' }, bodies)
    assert.equal("1", seen[1].headers["x-a"])
    assert.is_nil(seen[2].headers["x-a"])
    assert.equal("/y", seen[3].path)
  end)

  -- Issue 13: our own Accept-Encoding line (curl skips printing its own) must be what curl
  -- sends for CURLOPT_ACCEPT_ENCODING "" (here: what the curl command's --compressed sends,
  -- the same libcurl), once; a caller's own header wins; answers are still decoded.
  it("sends curl's Accept-Encoding once, a caller's instead, and decodes a gzip answer", function()
    local zipped = assert(io.popen("printf '%s' '{\"a\":1}' | gzip -c")):read("a")
    local zserver = H.fixture(function() return { status = 200, body = zipped, headers = { ["Content-Encoding"] = "gzip" } } end)
    local ok, r = pcall(get, { url = H.url(zserver) .. "/z" })
    zserver:close()
    assert(ok, r)
    assert.equal('{"a":1}', r.body)
    assert(get {})
    assert(get { headers = { ["accept-encoding"] = "identity" } })
    local mine, caller = seen[1].headers["accept-encoding"], seen[2].headers["accept-encoding"]
    assert.is_string(mine)
    assert.is_nil(mine:find(",%s*$"))
    assert.equal("identity", caller)
    if os.execute("command -v curl >/dev/null 2>&1") then
      os.execute("curl -s --compressed -o /dev/null " .. H.url(server) .. "/cli >/dev/null 2>&1 &")
      local deadline = core.monotime() + 5
      while #seen < 3 and core.monotime() < deadline do loop:step(0.05) end
      assert.equal(3, #seen, "the curl command did not reach the fixture")
      assert.equal(seen[3].headers["accept-encoding"], mine)
    end
  end)

  -- Issue 13: a pooled handle keeps the header lines it sent and reuses them when the next
  -- request's are the same; any difference (a value, an empty value, a line less, a NUL that
  -- the kept line's text would hide) must still be sent or refused as without the reuse.
  it("sends each request's own headers on a handle that kept the last ones", function()
    local function send(h)
      local t = core.request { url = H.url(server) .. "/h", headers = h }
      local r = wait(t)
      t:close()
      return r
    end
    assert(send { ["X-Z"] = "a", ["X-Y"] = "1" })
    assert(send { ["X-Z"] = "a", ["X-Y"] = "1" })
    H.raises("control character", core.request, { url = H.url(server), headers = { ["X-Z"] = "a\0b", ["X-Y"] = "1" } })
    assert(send { ["X-Z"] = "b", ["X-Y"] = "1" })
    assert(send { ["X-Z"] = "", ["X-Y"] = "1" })
    assert(send { ["X-Y"] = "1" })
    assert(send { ["X-Y"] = "1", ["X-Z"] = "a", ["X-W"] = "w" })
    assert.equal(6, #seen)
    local z = {}
    for i, r in ipairs(seen) do z[i] = r.headers["x-z"] or "-" end
    assert.same({ "a", "a", "b", "", "-", "a" }, z)
    assert.equal("w", seen[6].headers["x-w"])
    for _, r in ipairs(seen) do assert.equal("1", r.headers["x-y"]) end
  end)

  -- Issue 8 bug 7: curl's POSTFIELDS path added "Content-Type: application/x-www-form-urlencoded"
  -- to bodiless DELETE/POST requests.
  it("sends bodiless DELETE and POST without a form Content-Type", function()
    assert(get { method = "DELETE" })
    assert(get { method = "POST" })
    assert(get { method = "POST", body = "{}", headers = { ["Content-Type"] = "application/json" } })
    assert.equal("DELETE", seen[1].method)
    assert.is_nil(seen[1].headers["content-type"])
    assert.equal("POST", seen[2].method)
    assert.is_nil(seen[2].headers["content-type"])
    assert.equal("application/json", seen[3].headers["content-type"])
  end)
end)

-- The known trap of TEAM.md: with CURLOPT_PIPEWAIT set, a REST call to a host that has a
-- CONNECT_ONLY WebSocket open (or opening) waited for that connection forever.
describe("core.request beside a WebSocket to the same host", function()
  local ploop = require "polysim.loop"
  it("completes while the WebSocket is opening and once it is open", function()
    local srv = H.exchange()
    local client = H.client(srv)
    local token = assert(client:ws_token()).token
    local opened, closed
    local ws = core.ws_connect {
      url = srv.base_url:gsub("^http", "ws") .. "/v1/ws/prices?token=" .. token,
      on_open = function() opened = true end,
      on_close = function(code) closed = code end,
    }
    -- Issued before the handshake has finished: same host, same loop.
    local early = core.request { url = srv.base_url .. "/v1/health" }
    assert.is_true(ploop.run_until(function() return early:done() end, 5))
    assert.equal(200, assert(early:result()).status)
    assert.is_true(ploop.run_until(function() return opened end, 5))
    local late = core.request { url = srv.base_url .. "/v1/health" }
    assert.is_true(ploop.run_until(function() return late:done() end, 5))
    assert.equal(200, assert(late:result()).status)
    assert.is_nil(closed)
    ws:close()
    srv:close()
  end)
end)

-- Issue 8 item 7: float-to-integer conversions of values from a server or a user were UB out
-- of range (make asan runs with -fsanitize=float-cast-overflow and stops on one).
describe("numbers out of an integer's range", function()
  it("X-RateLimit-Limit: 1e300 and friends decode without an integer cast", function()
    local rl = core.decode_ratelimit { ["x-ratelimit-limit"] = "1e300", ["x-ratelimit-remaining"] = "-1e300",
      ["x-ratelimit-reset"] = "9.3e18" }
    assert.equal(1e300, rl.limit)
    assert.equal(-1e300, rl.remaining)
    assert.equal(9.3e18, rl.reset)
    assert.equal(math.type(1), math.type(core.decode_ratelimit { ["x-ratelimit-limit"] = "100" }.limit))
    rl = core.decode_ratelimit { ["x-ratelimit-limit"] = "nan", ["x-ratelimit-remaining"] = "inf" }
    assert.is_true(rl.limit ~= rl.limit)
    assert.equal(math.huge, rl.remaining)
  end)

  it("max_size = -1 and NaN timeouts are argument errors; huge timeouts are clamped", function()
    H.raises("max_size must be a non-negative number", core.request, { url = "http://127.0.0.1:1", max_size = -1 })
    H.raises("max_size must be a non-negative number", core.request, { url = "http://127.0.0.1:1", max_size = 0 / 0 })
    H.raises("timeouts must be non-negative", core.request, { url = "http://127.0.0.1:1", timeout = -1 })
    H.raises("timeouts must be non-negative", core.request, { url = "http://127.0.0.1:1", connect_timeout = 0 / 0 })
    H.raises("max_message must be a non-negative number", core.ws_connect, { url = "ws://127.0.0.1:1", max_message = -1 })
    H.raises("connect_timeout must be", core.ws_connect, { url = "ws://127.0.0.1:1", connect_timeout = -5 })
    local server = H.fixture(function() return { status = 200, body = "ok" } end)
    local r = assert(wait(core.request { url = H.url(server), timeout = 1e300, connect_timeout = math.huge,
      max_size = 1e300 }))
    assert.equal("ok", r.body)
    server:close()
  end)

  it("loop:step with a huge timeout and a timer due in 1e300 s", function()
    local fired = false
    local id = loop:timer(1e300, function() fired = true end)
    loop:timer(0, function() end)
    loop:step(1e300)                       -- returns: the 0 s timer is due
    loop:cancel(id)
    assert.is_false(fired)
  end)
end)

-- Found by fuzz/error_fuzz.c: "Retry-After: inf" came out of decode_error as retry_after = inf.
describe("core.decode_error's Retry-After", function()
  it("drops non-finite values; keeps finite ones", function()
    for _, v in ipairs { "inf", "-inf", "nan", "1e999" } do
      assert.is_nil(core.decode_error(429, { ["retry-after"] = v }, "{}").retry_after, v)
    end
    assert.equal(2, core.decode_error(429, { ["retry-after"] = "2" }, "{}").retry_after)
  end)
end)
