-- WebSocket failure paths in src/wsconn.c that the happy-path specs never run (issue 8,
-- "Proof" and item 7): the peer's side is either a fixture server (core.serve's upgrade) or a
-- raw peer in another process.
-- luacheck: std +busted
local H = require "helper"
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
end)
