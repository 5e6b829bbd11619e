-- client:prices_stream / client:executions_stream (lua/polysim/stream.lua) against the local
-- exchange in-process: subscriptions, fills, the iterator form (blocking and in a task), and
-- reconnection (exchange restart with a gap event, expired tokens, limits).
-- luacheck: std +busted
local H = require "helper"
local ploop = require "polysim.loop"

local function wait(pred, secs) return ploop.run_until(pred, secs or 3) end

local function recorder()
  local r = { prices = {}, events = {} }
  r.on_price = function(m) r.prices[#r.prices + 1] = m end
  r.on_event = function(ev) r.events[#r.events + 1] = ev end
  function r.count(t)
    local n = 0
    for _, ev in ipairs(r.events) do if ev.type == t then n = n + 1 end end
    return n
  end
  function r.event(t, k)
    local n = 0
    for _, ev in ipairs(r.events) do
      if ev.type == t then n = n + 1; if n == (k or 1) then return ev end end
    end
  end
  function r.prices_for(id)
    local n = 0
    for _, m in ipairs(r.prices) do if m.market_id == id then n = n + 1 end end
    return n
  end
  return r
end

local function two_markets(ex)
  local a = assert(ex:pick_market { binary = true })
  for _, m in ipairs(ex.U.list) do
    if m.condition_id ~= a and m.binary and ex:set_price(m.condition_id, "0.40") then return a, m.condition_id end
  end
  error("need two binary markets")
end

describe("live streams", function()
  local srv, client
  before_each(function()
    srv = H.exchange()
    client = H.client(srv)
  end)
  after_each(function() srv:close() end)

  it("prices arrive for subscribed markets only, and stop after unsubscribe", function()
    local ex = srv.exchange
    local a, b = two_markets(ex)
    local r = recorder()
    local s <close> = client:prices_stream { markets = { a }, on_price = r.on_price, on_event = r.on_event }
    assert.is_true(wait(function() return r.count("subscribed") == 1 end))
    assert.equal(1, r.count("connected"))
    assert.is_true(wait(function() return r.prices_for(a) >= 1 end)) -- snapshot on subscribe
    local before = r.prices_for(a)
    assert(ex:set_price(a, "0.30"))
    assert(ex:set_price(b, "0.70"))
    assert.is_true(wait(function() return r.prices_for(a) > before end))
    assert.equal("0.30", r.prices[#r.prices].buy)
    assert.equal(0, r.prices_for(b))

    s:subscribe { b }
    assert.is_true(wait(function() return r.count("subscribed") == 2 end))
    assert(ex:set_price(b, "0.71"))
    assert.is_true(wait(function() return r.prices_for(b) >= 2 end))

    s:unsubscribe { a }
    assert.is_true(wait(function() return r.count("unsubscribed") == 1 end))
    local na = r.prices_for(a)
    assert(ex:set_price(a, "0.35"))
    assert(ex:set_price(b, "0.72"))
    assert.is_true(wait(function() return r.prices_for(b) >= 3 end))
    assert.equal(na, r.prices_for(a))
    assert.same({ b }, s:markets())
    s:close()
    assert.equal(1, r.count("closed"))
    assert.is_false(s:connected())
  end)

  it("executions arrive for a resting order that fills", function()
    local ex = srv.exchange
    local id = assert(ex:pick_market { binary = true })
    assert(ex:set_book(id, "Yes", { bids = { { "0.64", "100" } }, asks = { { "0.65", "100" } } }))
    local fills, r = {}, recorder()
    local s <close> = client:executions_stream { on_fill = function(m) fills[#fills + 1] = m end, on_event = r.on_event }
    assert.is_true(wait(function() return s:connected() end))
    local o = assert(client:place_order { market_id = id, side = "BUY", outcome = "Yes", quantity = 5,
      price = "0.60", order_type = "limit" })
    assert.equal(0, #fills)
    assert(ex:set_book(id, "Yes", { bids = { { "0.55", "100" } }, asks = { { "0.58", "100" } } }))
    ex:match()
    assert.is_true(wait(function() return #fills == 1 end))
    assert.equal(o.order_id or o.id, fills[1].order_id)
    assert.equal("fill", fills[1].type)
    assert.equal("BUY", fills[1].side)
    assert.equal("5", fills[1].quantity)
  end)

  it("is an iterator: blocking in plain Lua, suspending inside a task", function()
    local ex = srv.exchange
    local id = assert(ex:pick_market { binary = true })
    local s <close> = client:prices_stream { markets = { id } }
    local prices = { "0.21", "0.22", "0.23" }
    ploop.every(0.05, function()
      if #prices > 0 and s:connected() then ex:set_price(id, table.remove(prices, 1)) end
    end)
    local seen = {}
    for msg in s do
      seen[#seen + 1] = msg.buy
      if msg.buy == "0.23" then break end
    end
    assert.equal("0.23", seen[#seen])

    local got
    local task = ploop.spawn(function()
      local s2 <close> = client:prices_stream { markets = { id } }
      for msg in s2 do if msg.buy == "0.44" then got = msg.buy; break end end
    end)
    assert.is_true(wait(function()
      ex:set_price(id, "0.44")
      return task.done
    end))
    assert.is_nil(task.error)
    assert.equal("0.44", got)
    s:close()
    local left = 0
    while s() do left = left + 1 end -- a closed stream yields what it holds, then ends
    assert.is_nil(s())
  end)

  it("a callback may make blocking client calls outside a task; no message is lost or reordered", function()
    local ex = srv.exchange
    local id = assert(ex:pick_market { binary = true })
    local seen, balances = {}, 0
    local s <close> = client:prices_stream { markets = { id }, on_price = function(m)
      seen[#seen + 1] = m.buy
      if m.buy ~= "0.50" and assert(client:balance()) then balances = balances + 1 end -- steps the loop
    end }
    assert.is_true(wait(function() return s:connected() end))
    for i = 51, 70 do assert(ex:set_price(id, ("0.%02d"):format(i))) end
    assert.is_true(wait(function() return seen[#seen] == "0.70" end))
    local tail = {}
    for i = #seen - 19, #seen do tail[#tail + 1] = seen[i] end
    local want = {}
    for i = 51, 70 do want[#want + 1] = ("0.%02d"):format(i) end
    assert.same(want, tail)
    assert.is_true(balances >= 20)
  end)

  it("killing and restarting the exchange: reconnects, re-subscribes, reports the gap", function()
    local id = assert(srv.exchange:pick_market { binary = true })
    local port, key = srv.port, srv.api_key
    local r = recorder()
    local s <close> = client:prices_stream { markets = { id }, on_price = r.on_price, on_event = r.on_event,
      going_away_delay = 0.2, backoff_base = 0.05 }
    assert.is_true(wait(function() return r.count("subscribed") == 1 end))
    srv:close()
    assert.is_true(wait(function() return r.count("reconnecting") >= 1 end))
    assert.equal(1001, r.event("reconnecting").code)
    assert.is_false(s:connected())
    srv = H.exchange { port = port, api_key = key }
    assert.is_true(wait(function() return r.count("subscribed") == 2 end, 5))
    assert.equal(2, r.count("connected"))
    local gap = r.event("gap")
    assert.is_table(gap)
    assert.is_true(gap.seconds > 0 and gap.to > gap.from)
    local n = r.prices_for(id)
    assert(srv.exchange:set_price(id, "0.33"))
    assert.is_true(wait(function() return r.prices_for(id) > n end))
    assert.equal("0.33", r.prices[#r.prices].buy)
  end)

  it("an expired token: reconnects with a fresh one, backing off while it keeps failing", function()
    srv:close()
    srv = H.exchange { ws_token_ttl = 0 }
    client = H.client(srv)
    local r = recorder()
    local s <close> = client:executions_stream { on_event = r.on_event, backoff_base = 0.05, backoff_cap = 0.1 }
    assert.is_true(wait(function() return r.count("reconnecting") >= 3 end))
    assert.equal(4001, r.event("reconnecting").code)
    assert.equal(0, r.event("reconnecting", 1).delay)   -- first 4001: re-mint at once
    assert.is_true(r.event("reconnecting", 2).delay > 0) -- then back off
    assert.equal(0, r.count("connected"))
    srv.exchange.ws_token_ttl = 60
    assert.is_true(wait(function() return s:connected() end))
    assert.equal(1, r.count("connected"))
  end)

  it("a subscription over the limit is reported and backed off (4002)", function()
    local ids = {}
    for i = 1, 51 do ids[i] = ("0x%064x"):format(i) end
    local r = recorder()
    -- max_per_connection above the server's 50: one connection over the limit (by default
    -- the stream shards at 50, spec/stream_shard_spec.lua)
    local s <close> = client:prices_stream { markets = ids, on_event = r.on_event, backoff_base = 0.05,
      max_per_connection = 60 }
    assert.is_true(wait(function() return r.count("reconnecting") >= 2 end))
    local ev = r.event("reconnecting")
    assert.equal(4002, ev.code)
    assert.equal("SUBSCRIPTION_LIMIT", r.event("error").message.code)
    assert.is_true(r.event("reconnecting", 2).delay > r.event("reconnecting", 1).delay)
    s:unsubscribe { ids[51] }
  end)

  it("gives up on a handshake that never completes, and on a server that stops answering", function()
    local token_body = '{"token":"t","expires_in":60}'
    local mute = H.fixture(function(req)
      if req.path == "/v1/keys/ws-token" then return { status = 200, body = token_body } end
      if req.query.token and req.path == "/v1/ws/prices" then return { status = 200, delay = 30 } end
      return { upgrade = {} } -- executions: accepted, then silence
    end)
    local c = H.client(srv, { base_url = H.url(mute) })
    local r = recorder()
    local s <close> = c:prices_stream { markets = { "m" }, on_event = r.on_event, handshake_timeout = 0.2,
      backoff_base = 0.05 }
    assert.is_true(wait(function() return r.count("reconnecting") >= 1 end))
    assert.equal(1006, r.event("reconnecting").code)
    assert.equal("handshake timed out", r.event("reconnecting").reason)
    s:close()
    local r2 = recorder()
    local e <close> = c:executions_stream { on_event = r2.on_event, ping_interval = 0.1, backoff_base = 0.05 }
    assert.is_true(wait(function() return r2.count("reconnecting") >= 1 end))
    assert.matches("no answer from the server", r2.event("reconnecting").reason)
    assert.equal(0, r2.count("connected"))
    e:close()
    mute:close()
  end)

  it("stops for good when no token can be had (no key, bad key)", function()
    local r = recorder()
    local c = H.client(srv, { api_key = "ps_live_" .. ("0"):rep(64) })
    local s <close> = c:executions_stream { on_event = r.on_event }
    assert.is_true(wait(function() return r.count("closed") == 1 end))
    assert.equal(0, r.count("reconnecting"))
    assert.equal(401, r.event("closed").error.status)
    assert.is_nil(s())
  end)

  it("checks its arguments", function()
    H.raises("unknown option 'market'", client.prices_stream, client, { market = {} })
    H.raises("markets[1] must be a non-empty string", client.prices_stream, client, { markets = { 1 } })
    H.raises("make it without one to iterate", function()
      local s <close> = client:executions_stream { on_fill = function() end }
      for _ in s do end
    end)
    H.raises("only price streams", function()
      local s <close> = client:executions_stream {}
      s:subscribe { "x" }
    end)
  end)
end)
