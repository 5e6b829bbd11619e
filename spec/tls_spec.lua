-- TLS end to end: a socat TLS terminator (self-signed certificate for IP 127.0.0.1) in
-- front of the local exchange. REST over https:// with verification on, the same refused
-- without the CA, and a price stream over wss:// through the same proxy.
local polysim = require "polysim"
local H = require "helper"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("TLS", function()
  local srv, dir, port, pid, cert
  setup(function()
    srv = H.exchange()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    cert = dir .. "/cert.pem"
    local ok, out = sh(string.format("openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " ..
      "-keyout %s/key.pem -out %s -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1", dir, cert))
    assert(ok, out)
    -- A free port: bind one, note it, let it go.
    local probe = H.fixture(function() return { status = 200 } end)
    port = probe:port()
    probe:close()
    local started, text = sh(string.format(
      "socat OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s/key.pem,verify=0 " ..
      "TCP:127.0.0.1:%d > %s/socat.log 2>&1 & echo $!", port, cert, dir, srv.port, dir))
    assert(started, text)
    pid = text:match("%d+")
    -- Wait until the proxy answers (client calls drive the loop, so the exchange serves).
    local c = polysim.new { base_url = "https://127.0.0.1:" .. port, api_key = srv.api_key, cainfo = cert,
      max_retries = 0 }
    assert.is_true(polysim.loop.run_until(function() return c:health() ~= nil end, 10))
  end)
  teardown(function()
    if pid then os.execute("kill " .. pid) end
    os.execute("rm -rf " .. dir)
    srv:close()
  end)

  it("talks REST over https:// with certificate verification on", function()
    local c = polysim.new { base_url = "https://127.0.0.1:" .. port, api_key = srv.api_key, cainfo = cert }
    for _ = 1, 5 do assert.equal("USD", assert(c:balance()).currency) end
    assert.is_true(c:stats().connections_opened <= 1) -- the setup probe's connection may be reused
  end)

  it("refuses a certificate it cannot verify with TLS_ERROR", function()
    local c = polysim.new { base_url = "https://127.0.0.1:" .. port, api_key = srv.api_key, max_retries = 0 }
    local r, err = c:balance()
    assert.is_nil(r)
    assert.equal(0, err.status)
    assert.equal("TLS_ERROR", err.code)
  end)

  it("streams prices over wss://", function()
    local ex = srv.exchange
    local id = assert(ex:pick_market { binary = true, state = "open" })
    local c = polysim.new { base_url = "https://127.0.0.1:" .. port, api_key = srv.api_key, cainfo = cert }
    local prices, events = {}, {}
    local stream <close> = c:prices_stream { markets = { id },
      on_price = function(m) prices[#prices + 1] = m end,
      on_event = function(ev) events[#events + 1] = ev.type end }
    assert.is_true(polysim.loop.run_until(function() return #prices >= 1 end, 10), table.concat(events, ","))
    assert(ex:set_price(id, "0.33"))
    assert.is_true(polysim.loop.run_until(function() return prices[#prices].buy == "0.33" end, 10))
    assert.equal(id, prices[#prices].market_id)
    assert.is_true(stream:connected())
  end)
  -- The known trap of TEAM.md: with CURLOPT_PIPEWAIT, a REST call to a host with a
  -- CONNECT_ONLY WebSocket opening or open waited on that connection forever.
  it("a REST call completes beside a wss:// connection to the same host", function()
    local core = require "polysim.core"
    local c = polysim.new { base_url = "https://127.0.0.1:" .. port, api_key = srv.api_key, cainfo = cert }
    local token = assert(c:ws_token()).token
    local opened, closed
    local ws = core.ws_connect { url = "wss://127.0.0.1:" .. port .. "/v1/ws/prices?token=" .. token,
      cainfo = cert, on_open = function() opened = true end, on_close = function(code) closed = code end }
    local function rest()
      local t = core.request { url = "https://127.0.0.1:" .. port .. "/v1/health", cainfo = cert }
      assert.is_true(polysim.loop.run_until(function() return t:done() end, 10))
      return assert(t:result()).status
    end
    assert.equal(200, rest())
    assert.is_true(polysim.loop.run_until(function() return opened or closed end, 10))
    assert.is_true(opened)
    assert.equal(200, rest())
    ws:close()
  end)
end)
