-- WebSocket failure paths in src/wsconn.c that the happy-path specs never run (issue 8,
-- "Proof" and item 7): the peer's side is either a fixture server (core.serve's upgrade) or a
-- raw peer in another process.
-- luacheck: std +busted
local H = require "helper"
local core = require "polysim.core"
local ploop = require "polysim.loop"

local function wait(pred, secs) return ploop.run_until(pred, secs or 5) end

-- Runs a Lua script in the background (a peer that must not share our loop).
local function background(script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  os.execute((os.getenv "LUA" or "lua5.4") .. " " .. path .. " >/dev/null 2>&1 &")
  return path
end

describe("websocket failure paths", function()
  -- Issue 8 item 7: ps_wsconn_expire kept `next` across on_close, which may free it. Here the
  -- first connection to expire runs the loop in its on_close until the other one has ended
  -- (its peer went away) and collects garbage: the old loop then read the freed connection
  -- (ASan: heap use after free).
  it("an on_close that lets another connection end and be freed (ps_wsconn_expire)", function()
    local closed = {}
    local echo = H.fixture(function(req)
      return { upgrade = {
        on_message = function(conn) conn:close(4001, "bye") end,
        on_close = function(_, code, reason)
          closed[#closed + 1] = { req.path, code, reason }
          if #closed == 1 then
            ploop.run_until(function() return #closed == 2 end, 3)
            collectgarbage()
            collectgarbage()
          end
        end,
      } }
    end)
    -- One peer, two connections (/x first, /y second, so /y is nearer the list's head); it
    -- says one thing on /y, a second later on /x, never reads, and exits 1.5 s after that:
    -- /y's close times out (2 s) first, then /x sees the peer go.
    local path = background(([[
      local core = require "polysim.core"
      local loop = core.loop()
      local function open(p)
        local ok
        local c = core.ws_connect { url = "ws://127.0.0.1:%d" .. p, on_open = function() ok = true end }
        local t0 = core.monotime()
        while not ok and core.monotime() - t0 < 5 do loop:step(0.05) end
        return c
      end
      local x = open("/x")
      local y = open("/y")
      y:send("hi")
      os.execute("sleep 1")
      x:send("hi")
      os.execute("sleep 1.5")
    ]]):format(echo:port()))
    assert.is_true(wait(function() return #closed == 2 end, 10))
    os.remove(path)
    assert.equal("/y", closed[1][1])
    assert.equal("/x", closed[2][1])
    echo:close()
  end)
  -- An echo fixture whose server side records what it saw.
  local function echo_server(seen)
    return H.fixture(function(req)
      if req.path == "/refuse" then return { status = 403, body = "no" } end
      return { upgrade = {
        on_open = function() seen.opened = (seen.opened or 0) + 1 end,
        on_message = function(conn, text) conn:send("re:" .. text) end,
        on_close = function(_, code, reason) seen.code, seen.reason = code, reason end,
      } }
    end)
  end

  it("a refused handshake (HTTP 403) closes with 1006 and says so", function()
    local seen = {}
    local srv = echo_server(seen)
    local r = {}
    core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/refuse",
      on_open = function() r.opened = true end,
      on_close = function(code, reason) r.code, r.reason = code, reason end }
    assert.is_true(wait(function() return r.code end))
    assert.equal(1006, r.code)
    assert.matches("handshake refused", r.reason)
    assert.matches("403", r.reason)
    assert.is_nil(r.opened)
    assert.is_nil(seen.opened)
    srv:close()
  end)

  it("a callback that raises goes to loop:on_error; the connection keeps working", function()
    local seen = {}
    local srv = echo_server(seen)
    local errs, got, c = {}, {}, nil
    local old = ploop.on_error
    ploop.on_error = function(err) errs[#errs + 1] = tostring(err) end
    c = core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/x",
      on_open = function() c:send("one") end,
      on_message = function(t)
        got[#got + 1] = t
        if #got == 1 then error("boom in on_message") end
      end }
    local ok = wait(function() return #got >= 1 and #errs >= 1 end)
    if ok then
      c:send("two")
      ok = wait(function() return #got == 2 end)
    end
    ploop.on_error = old
    assert.is_true(ok)
    assert.matches("boom in on_message", errs[1])
    assert.same({ "re:one", "re:two" }, got)
    assert.equal("open", c:state())
    c:close()
    srv:close()
  end)

  it("the peer's EOF without a close frame is 1006, on both sides", function()
    -- Our server side: a peer process that connects and exits without closing.
    local seen = {}
    local srv = echo_server(seen)
    local path = background(([[
      local core = require "polysim.core"
      local loop = core.loop()
      local ok
      local c = core.ws_connect { url = "ws://127.0.0.1:%d/x", on_open = function() ok = true end }
      local t0 = core.monotime()
      while not ok and core.monotime() - t0 < 5 do loop:step(0.05) end
      os.exit(0)                              -- no close frame; the kernel closes the socket
    ]]):format(srv:port()))
    assert.is_true(wait(function() return seen.code end, 8))
    os.remove(path)
    assert.equal(1006, seen.code)
    srv:close()
    -- Our client side: a server process whose on_open exits without closing.
    local port_file = os.tmpname()
    path = background(([[
      local core = require "polysim.core"
      local loop = core.loop()
      local s = assert(core.serve { port = 0, handler = function()
        return { upgrade = { on_open = function() os.exit(0) end } }
      end })
      local f = io.open(%q, "w"); f:write(s:port()); f:close()
      local t0 = core.monotime()
      while core.monotime() - t0 < 8 do loop:step(0.05) end
    ]]):format(port_file))
    local port
    assert.is_true(wait(function()
      local f = io.open(port_file)
      port = f and tonumber(f:read("a"))
      if f then f:close() end
      return port ~= nil
    end, 8))
    os.remove(port_file)
    os.remove(path)
    local r = {}
    core.ws_connect { url = "ws://127.0.0.1:" .. port .. "/x",
      on_open = function() r.opened = true end,
      on_close = function(code, reason) r.code, r.reason = code, reason end }
    assert.is_true(wait(function() return r.code end, 8))
    assert.equal(1006, r.code)
  end)

  it("an upgrade the client abandons before it completes leaves the server serving", function()
    local seen = {}
    local srv = echo_server(seen)
    -- The upgrade request goes out and the client hangs up at once (socat ends at EOF).
    local req = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    local sh = ("printf '%s' | socat -t 0 - TCP:127.0.0.1:%d >/dev/null 2>&1 &"):format(
      req:gsub("\r", "\\r"):gsub("\n", "\\n"), srv:port())
    if not os.execute("command -v socat >/dev/null 2>&1") then
      srv:close()
      return pending("socat is not installed")
    end
    os.execute(sh)
    -- Whatever state it reached (pending 101 or upgraded), the connection ends and is
    -- reported at most once; then a normal client is served.
    ploop.run_until(function() return seen.code ~= nil end, 2)
    if seen.opened then assert.equal(1006, seen.code) end
    seen.code = nil
    local got, c = nil, nil
    c = core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/x",
      on_open = function() c:send("after") end, on_message = function(t) got = t end }
    assert.is_true(wait(function() return got end))
    assert.equal("re:after", got)
    c:close()
    srv:close()
  end)

  it("<close> closes the connection with 1000 at the end of its scope", function()
    local seen = {}
    local srv = echo_server(seen)
    local state
    do
      local opened
      local c <close> = core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/x",
        on_open = function() opened = true end }
      assert.is_true(wait(function() return opened end))
      state = function() return c:state() end
    end
    assert.equal("closed", state())
    assert.is_true(wait(function() return seen.code end))
    assert.equal(1000, seen.code)
    srv:close()
  end)

  it("send on a closed connection returns nil and a message; close again is harmless", function()
    local seen = {}
    local srv = echo_server(seen)
    local opened
    local c = core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/x",
      on_open = function() opened = true end }
    assert.is_true(wait(function() return opened end))
    c:close()
    local ok, err = c:send("late")
    assert.is_nil(ok)
    assert.equal("websocket is not open", err)
    c:close()
    assert.equal("closed", c:state())
    -- Before it ever opened, too.
    local d = core.ws_connect { url = "ws://127.0.0.1:" .. srv:port() .. "/x" }
    ok, err = d:send("early")
    assert.is_nil(ok)
    assert.equal("websocket is not open", err)
    d:close()
    srv:close()
  end)
end)
