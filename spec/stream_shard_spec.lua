-- luacheck: std +busted
-- Issue 10 #7: a price stream with more markets than one connection takes (the server allows
-- 50) shards them over several connections, within the tier's WebSocket connection limit;
-- past that limit it says so once (an error event) and keeps delivering what fits. Before,
-- 100 markets gave 0 price events: close 4002, reconnect, forever.
local ploop = require "polysim.loop"
local H = require "helper"

local function ids_of(client, n)
  local ids = {}
  for m in client:markets { limit = 100 } do
    ids[#ids + 1] = m.condition_id
    if #ids == n then break end
  end
  assert(#ids == n, "the exchange has " .. #ids .. " markets")
  return ids
end

local function start(ws)
  local srv = H.exchange { markets = { generate = 240 }, tiers = ws and { pro = { ws = ws } } or nil }
  return srv, H.client(srv)
end

describe("prices_stream over many markets", function()
  it("delivers all 100 subscribed markets over two connections", function()
    local srv, client = start()
    local all = ids_of(client, 130)
    local ids = { table.unpack(all, 1, 100) }
    local seen, n, events = {}, 0, {}
    local s = client:prices_stream { markets = ids,
      on_price = function(m) if not seen[m.market_id] then seen[m.market_id] = true; n = n + 1 end end,
      on_event = function(e) events[#events + 1] = e end }
    assert(ploop.run_until(function() return n >= 100 end, 15), "markets priced: " .. n)
    assert.equal(2, srv.exchange.ws_connections)
    assert.equal(2, srv.exchange.K.ws_count)              -- one token per connection: no reconnects
    for _, id in ipairs(ids) do assert.is_true(seen[id], id) end
    for _, e in ipairs(events) do assert.is_not.equal("error", e.type) end
    assert.equal(100, #s:markets())
    -- subscribing more later fills the room there is, then opens another connection
    s:subscribe { table.unpack(all, 101, 130) }
    assert(ploop.run_until(function() return n >= 130 end, 15), "markets priced: " .. n)
    assert.equal(3, srv.exchange.ws_connections)
    s:close()
    assert(ploop.run_until(function() return srv.exchange.ws_connections == 0 end, 5))
    srv:close()
  end)

  it("with a tier limit too small: one error event, the rest still deliver, no reconnect loop", function()
    local srv, client = start(2)
    local ids = ids_of(client, 150)
    local seen, n, errs, closed = {}, 0, {}, 0
    local s = client:prices_stream { markets = ids,
      on_price = function(m) if not seen[m.market_id] then seen[m.market_id] = true; n = n + 1 end end,
      on_event = function(e)
        if e.type == "error" then errs[#errs + 1] = e end
        if e.type == "closed" then closed = closed + 1 end
      end }
    assert(ploop.run_until(function() return n >= 100 and #errs >= 1 end, 15), "markets priced: " .. n)
    -- two good connections and one refused: three tokens; the refused shard's task has
    -- ended (nothing left to reconnect it) and the other two are the ones open
    assert.equal(3, srv.exchange.K.ws_count)
    assert.equal(1, #s.refused)
    assert.equal("dead", coroutine.status(s.refused[1].task.co))
    assert.equal(2, #s.shards)
    assert.equal(100, n)
    assert.equal(1, #errs)
    assert.equal("CONNECTION_LIMIT", errs[1].message.code)
    assert.truthy(errs[1].message.message:find("50 of 150 markets", 1, true), errs[1].message.message)
    assert.equal(0, closed)
    assert.equal(2, srv.exchange.ws_connections)
    -- room freed on a connection takes the markets that did not fit
    local waiting = {}
    for _, id in ipairs(ids) do if not seen[id] then waiting[#waiting + 1] = id end end
    assert.equal(50, #waiting)
    s:unsubscribe { table.unpack(ids, 1, 10) }
    assert(ploop.run_until(function() return n >= 110 end, 10), "markets priced: " .. n)
    assert.equal(1, #errs)
    s:close()
    srv:close()
  end)
end)
