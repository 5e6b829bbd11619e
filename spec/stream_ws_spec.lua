-- WebSocket connections on the loop (src/wsconn.c) against the local exchange's
-- /v1/ws/prices and /v1/ws/executions (lua/polysim/serve.lua): handshake, acks, close codes
-- 4001 / 4002 / 1001 / 1002, and a generic echo server through core.serve's upgrade answer.
-- luacheck: std +busted
local H = require "helper"
local core = require "polysim.core"
local ploop = require "polysim.loop"

local function wait(pred, secs) return ploop.run_until(pred, secs or 3) end

-- A raw connection to a channel of srv with a fresh token; records everything.
local function connect(srv, client, channel, token)
  if not token then token = assert(client:ws_token()).token end
  local r = { msgs = {}, opened = false }
  r.conn = core.ws_connect {
    url = srv.base_url:gsub("^http", "ws") .. "/v1/ws/" .. channel .. "?token=" .. token,
    on_open = function() r.opened = true end,
    on_message = function(text) r.msgs[#r.msgs + 1] = assert(core.json_decode(text)) end,
    on_close = function(code, reason) r.code, r.reason = code, reason end,
  }
  return r
end

local function find(list, t)
  for _, m in ipairs(list) do if m.type == t then return m end end
end

describe("websocket connections", function()
  local srv, client
  before_each(function()
    srv = H.exchange()
    client = H.client(srv)
  end)
  after_each(function() srv:close() end)

  it("echo through core.serve's upgrade answer, both ways, large messages included", function()
    local seen = {}
    local echo = H.fixture(function(req)
      if req.path ~= "/echo" then return { status = 404, body = "{}" } end
      return { upgrade = {
        on_message = function(conn, text) seen[#seen + 1] = text; conn:send("re:" .. text) end,
        on_close = function(_, code) seen.closed = code end,
      } }
    end)
    local got, c = {}, nil
    c = core.ws_connect { url = "ws://127.0.0.1:" .. echo:port() .. "/echo",
      on_open = function() c:send("hello"); c:send(("é"):rep(40000)) end,
      on_message = function(t) got[#got + 1] = t end }
    assert.is_true(wait(function() return #got == 2 end))
    assert.equal("re:hello", got[1])
    assert.equal("re:" .. ("é"):rep(40000), got[2])
    assert.equal("open", c:state())
    c:close(1000, "done")
    assert.is_true(wait(function() return seen.closed ~= nil end))
    assert.equal(1000, seen.closed)
    assert.equal("closed", c:state())
    echo:close()
  end)

  it("a plain GET on a websocket path is refused with 400, not upgraded", function()
    local resp = ploop.await(function(done)
      core.request { url = srv.base_url .. "/v1/ws/prices?token=x", on_done = done }
    end)
    assert.equal(400, resp.status)
  end)

  it("subscribe, unsubscribe and ping are acknowledged", function()
    local id = assert(srv.exchange:pick_market())
    local r = connect(srv, client, "prices")
    assert.is_true(wait(function() return r.opened end))
    r.conn:send(core.json_encode { action = "subscribe", markets = core.array { id } })
    assert.is_true(wait(function() return find(r.msgs, "subscribed") end))
    assert.same({ id }, find(r.msgs, "subscribed").markets)
    r.conn:send(core.json_encode { action = "ping" })
    assert.is_true(wait(function() return find(r.msgs, "pong") end))
    assert.is_number(find(r.msgs, "pong").ts)
    r.conn:send(core.json_encode { action = "unsubscribe", markets = core.array { id } })
    assert.is_true(wait(function() return find(r.msgs, "unsubscribed") end))
    r.conn:send(core.json_encode { action = "dance" })
    assert.is_true(wait(function() return find(r.msgs, "error") end))
    assert.equal("UNKNOWN_ACTION", find(r.msgs, "error").code)
    assert.equal(1, srv.exchange.ws_connections)
    r.conn:close()
    assert.is_true(wait(function() return srv.exchange.ws_connections == 0 end))
  end)

  it("a bad token and an expired token close with 4001", function()
    local r = connect(srv, client, "prices", "nonsense")
    assert.is_true(wait(function() return r.code end))
    assert.equal(4001, r.code)
    srv:close()
    srv = H.exchange { ws_token_ttl = 0 }
    client = H.client(srv)
    r = connect(srv, client, "executions")
    assert.is_true(wait(function() return r.code end))
    assert.equal(4001, r.code)
    assert.matches("expired", r.reason)
  end)

  it("a token is single use", function()
    local token = assert(client:ws_token()).token
    local a = connect(srv, client, "prices", token)
    assert.is_true(wait(function() return a.opened end))
    local b = connect(srv, client, "prices", token)
    assert.is_true(wait(function() return b.code end))
    assert.equal(4001, b.code)
    assert.equal("open", a.conn:state())
    a.conn:close()
  end)

  it("more than 50 markets on one connection closes with 4002", function()
    local r = connect(srv, client, "prices")
    assert.is_true(wait(function() return r.opened end))
    local ids = {}
    for i = 1, 51 do ids[i] = ("0x%064x"):format(i) end
    r.conn:send(core.json_encode { action = "subscribe", markets = core.array(ids) })
    assert.is_true(wait(function() return r.code end))
    assert.equal(4002, r.code)
    assert.equal("SUBSCRIPTION_LIMIT", find(r.msgs, "error").code)
  end)

  it("the tier's connection limit closes the extra connection with 4002", function()
    srv:close()
    srv = H.exchange { tiers = { pro = { ws = 2 } } }
    client = H.client(srv)
    local a, b = connect(srv, client, "prices"), connect(srv, client, "executions")
    assert.is_true(wait(function() return a.opened and b.opened end))
    local c = connect(srv, client, "prices")
    assert.is_true(wait(function() return c.code end))
    assert.equal(4002, c.code)
    assert.is_nil(a.code)
    a.conn:close()
    assert.is_true(wait(function() return srv.exchange.ws_connections == 1 end))
    local d = connect(srv, client, "prices")
    assert.is_true(wait(function() return d.opened end))
    -- not closed: a round trip on d that the server answers after any close it would send
    -- (no sleep for "never happens")
    d.conn:send(core.json_encode { action = "ping" })
    assert.is_true(wait(function() return find(d.msgs, "pong") or d.code end))
    assert.truthy(find(d.msgs, "pong"))
    assert.is_nil(d.code)
  end)

  it("a malformed frame from the client is answered with close 1002", function()
    local r = connect(srv, client, "prices")
    assert.is_true(wait(function() return r.opened end))
    -- An unmasked text frame: clients must mask (RFC 6455 5.1).
    r.conn:send_raw(string.char(0x81, 0x02) .. "hi")
    assert.is_true(wait(function() return r.code end))
    assert.equal(1002, r.code)
    assert.is_true(wait(function() return srv.exchange.ws_connections == 0 end))
  end)

  it("the client side answers a server's protocol error with 1002 and answers pings", function()
    local srv_closed
    local bad = H.fixture(function(req)
      return { upgrade = {
        on_open = function(conn)
          conn:send_raw(core.ws_frame("ping", "are you there"))
          conn:send("fine")
          if req.path == "/masked" then conn:send_raw(core.ws_frame("text", "hi", true, "abcd")) end
        end,
        on_close = function(_, code) srv_closed = code end,
      } }
    end)
    local r = {}
    core.ws_connect { url = "ws://127.0.0.1:" .. bad:port() .. "/masked",
      on_message = function(t) r.msg = t end,
      on_close = function(code, reason) r.code, r.reason = code, reason end }
    assert.is_true(wait(function() return r.code and srv_closed end))
    assert.equal("fine", r.msg)      -- the ping in between did not disturb the stream
    assert.equal(1002, r.code)
    assert.equal(1002, srv_closed)   -- the server saw our close frame
    bad:close()
  end)

  it("closing the exchange sends 1001 going away", function()
    local r = connect(srv, client, "prices")
    assert.is_true(wait(function() return r.opened end))
    srv:close()
    assert.is_true(wait(function() return r.code end))
    assert.equal(1001, r.code)
  end)

  it("a server-started close is given up on after 2 s when the peer never echoes it", function()
    local closed
    local echo = H.fixture(function()
      return { upgrade = {
        on_message = function(conn) conn:close(4001, "bye") end,
        on_close = function(_, code, reason) closed = { code, reason, core.monotime() } end,
      } }
    end)
    -- A peer in another process that says one thing and then stops reading (sleeps).
    local script = ([[
      local core = require "polysim.core"
      local loop = core.loop()
      local c, open
      c = core.ws_connect { url = "ws://127.0.0.1:%d/x", on_open = function() open = true end }
      local t0 = core.monotime()
      while not open and core.monotime() - t0 < 5 do loop:step(0.05) end
      c:send("hi")
      os.execute("sleep 4")
    ]]):format(echo:port())
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write(script); f:close()
    local t0 = core.monotime()
    os.execute((os.getenv "LUA" or "lua5.4") .. " " .. path .. " >/dev/null 2>&1 &")
    assert.is_true(wait(function() return closed ~= nil end, 6))
    os.remove(path)
    assert.equal(4001, closed[1])
    assert.equal("the peer did not answer the close", closed[2])
    assert.is_true(closed[3] - t0 >= 2)
    echo:close()
  end)

  it("a refused connection reports 1006", function()
    local port = srv.port
    srv:close()
    local r = { }
    core.ws_connect { url = "ws://127.0.0.1:" .. port .. "/v1/ws/prices",
      on_close = function(code, reason) r.code, r.reason = code, reason end }
    assert.is_true(wait(function() return r.code end))
    assert.equal(1006, r.code)
    assert.matches("connect failed", r.reason)
  end)

  it("prices are pushed to subscribers; fills to the order owner's executions feed", function()
    local ex = srv.exchange
    local id = assert(ex:pick_market { binary = true })
    local p = connect(srv, client, "prices")
    local e = connect(srv, client, "executions")
    assert.is_true(wait(function() return p.opened and e.opened end))
    p.conn:send(core.json_encode { action = "subscribe", markets = core.array { id } })
    assert.is_true(wait(function() return find(p.msgs, "subscribed") end))
    assert(ex:set_book(id, "Yes", { bids = { { "0.64", "100" } }, asks = { { "0.65", "100" } } }))
    local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5,
      price = "0.60", order_type = "limit" })
    assert(ex:set_book(id, "Yes", { bids = { { "0.55", "100" } }, asks = { { "0.58", "100" } } }))
    ex:match()
    assert.is_true(wait(function() return find(e.msgs, "fill") end))
    local f = find(e.msgs, "fill")
    assert.equal(o.order_id or o.id, f.order_id)
    assert.equal(id, f.market_id)
    assert.is_true(wait(function() return find(p.msgs, "price") end))
    assert.equal(id, find(p.msgs, "price").market_id)
  end)
end)
