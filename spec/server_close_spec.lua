-- A server closed from inside one of its WebSocket's on_close (issue 8 review: reported to
-- abort inside libmicrohttpd, "Failed to lock mutex"): the close finishes and the process
-- goes on, however the connection ended (client close, server close, protocol error).
local H = require "helper"
local core = require "polysim.core"
local ploop = require "polysim.loop"

local function wait(f) return ploop.run_until(f, 5) end

local cases = {
  { "the client closes", nil, function(c) c:close(1000, "bye") end },
  { "the server closes", function(conn) conn:close(1000, "srv") end, function() end },
  { "a malformed frame (1002)", nil, function(c) c:send_raw("\255\255\255\255") end },
}

describe("closing a server from a WebSocket's on_close", function()
  for _, case in ipairs(cases) do
    it("works when " .. case[1], function()
      local srv, closed
      srv = H.fixture(function()
        return { upgrade = { on_open = case[2], on_close = function() closed = true; srv:close() end } }
      end)
      local port, c = srv:port(), nil
      c = core.ws_connect { url = "ws://127.0.0.1:" .. port .. "/x", on_open = function() case[3](c) end }
      assert.is_true(wait(function() return closed end))
      assert.is_true(wait(function() return c:state() == "closed" end))
      -- the server is gone: a new connection to its port is refused
      local refused = false
      local d = core.ws_connect { url = "ws://127.0.0.1:" .. port .. "/x", on_close = function() refused = true end }
      assert.is_true(wait(function() return refused or d:state() == "closed" end))
    end)
  end
end)
