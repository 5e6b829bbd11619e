-- Breaking out of a stream's iterator (issue 11): `for msg in s:messages() do … break end`
-- closes the WebSocket, counted on the server (the local exchange's open connections);
-- the bare `for msg in s do` form leaves it open until s:close(), as documented.
-- luacheck: std +busted, ignore 512 (loops that break at once are the point)
local H = require "helper"
local ploop = require "polysim.loop"

describe("a stream's iterator and its socket", function()
  local srv, client, id
  setup(function()
    srv = H.exchange()
    client = H.client(srv)
    id = assert(srv.exchange:pick_market { binary = true })
  end)
  teardown(function() srv:close() end)

  local function open_on_server() return srv.exchange.ws_connections end
  local function settle(pred) return ploop.run_until(pred, 3) end

  it("s:messages(): break closes the socket (the server sees it go)", function()
    assert.equal(0, open_on_server())
    local got
    for msg in client:prices_stream { markets = { id } }:messages() do
      got = msg                                         -- the snapshot on subscribe
      assert.equal(1, open_on_server())
      break
    end
    assert.equal(id, got.market_id)
    assert.is_true(settle(function() return open_on_server() == 0 end), "the socket stayed open after break")
  end)

  it("s:messages(): an error in the loop body closes it too", function()
    local ok = pcall(function()
      for _ in client:prices_stream { markets = { id } }:messages() do error("boom") end
    end)
    assert.is_false(ok)
    assert.is_true(settle(function() return open_on_server() == 0 end))
  end)

  it("the bare form stays open after break until closed", function()
    local s = client:prices_stream { markets = { id } }
    for _ in s do break end
    assert.is_nil(ploop.run_until(function() return open_on_server() == 0 end, 1) or nil)
    s:close()
    assert.is_true(settle(function() return open_on_server() == 0 end))
  end)

  it("s:messages() on a stream with on_price is an argument error", function()
    local s <close> = client:prices_stream { markets = { id }, on_price = function() end }
    H.raises("make it without one to iterate", function() s:messages() end)
  end)
end)
