-- The Up/Down part of the strategy contract (issue 9): on_spot for subscribed underlyings and
-- on_window for window lifecycle events, through the spot-source adapter of polysim.feed.
-- The source here is an in-process fake with the adapter's interface (subscribe,
-- unsubscribe, close; events shaped as GET /prices/stream sends them): the exchange's SSE
-- stream and client:spot_stream are being built in parallel (the updown engineer); the
-- loopback test against them comes at integration.
local strategy = require "polysim.strategy"
local ploop = require "polysim.loop"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function write(name, src)
  local path = tmpdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

local function fake_factory()
  local src = { subscribed = {}, calls = {}, closed = 0 }
  local function factory(on_message)
    src.emit = on_message
    return {
      subscribe = function(_, syms)
        src.calls[#src.calls + 1] = "subscribe " .. table.concat(syms, ",")
        for _, s in ipairs(syms) do src.subscribed[s] = true end
      end,
      unsubscribe = function(_, syms)
        src.calls[#src.calls + 1] = "unsubscribe " .. table.concat(syms, ",")
        for _, s in ipairs(syms) do src.subscribed[s] = nil end
      end,
      close = function() src.closed = src.closed + 1 end,
    }
  end
  return src, factory
end

describe("on_spot and on_window", function()
  after_each(function() collectgarbage() end)

  it("delivers spot ticks of subscribed underlyings and window events, in order, isolated", function()
    local path = write("updown.lua", [[
      return {
        on_start = function(ctx)
          ctx.state.ticks, ctx.state.windows = {}, {}
          ctx:subscribe_spot { "btc" }
          ctx:subscribe "cond-eth-5m"
        end,
        on_spot = function(ctx, t)
          if t.price == "bad" then error("bad tick") end
          table.insert(ctx.state.ticks, t.symbol .. "=" .. t.price)
        end,
        on_window = function(ctx, ev)
          table.insert(ctx.state.windows, ev.event .. " " .. tostring(ev.market_id))
          if ev.event == "settle" then ctx:unsubscribe_spot "BTC" end
        end,
      }
    ]])
    local src, factory = fake_factory()
    local lines = {}
    local rt = strategy.new { feed = false, spot_source = factory, log_sink = function(l) lines[#lines + 1] = l end }
    assert(rt:start(path))
    assert.same({ "subscribe BTC" }, src.calls)
    assert.same({ "BTC" }, rt:spot_subscriptions())
    src.emit { event = "crypto_price", data = { symbol = "BTC", price = "97000.5", source = "sim" } }
    src.emit { event = "crypto_price", data = { symbol = "ETH", price = "3100" } } -- not subscribed
    src.emit { event = "keepalive", data = {} }
    src.emit { event = "crypto_price", data = { symbol = "BTC", price = "bad" } } -- raises: reported, goes on
    src.emit { event = "crypto_price_batch", data = { updates = {
      { symbol = "BTC", price = "97001" }, { symbol = "ETH", price = "3101" }, { symbol = "BTC", price = "97002" } } } }
    src.emit { event = "window", data = { event = "open", condition_id = "cond-btc-5m", symbol = "BTC", strike = "97000.5" } }
    src.emit { event = "window", data = { event = "close", condition_id = "cond-eth-5m", symbol = "ETH" } } -- subscribed market
    src.emit { event = "window", data = { event = "resolve", condition_id = "cond-sol-5m", symbol = "SOL" } } -- neither
    src.emit { event = "window", data = { event = "settle", condition_id = "cond-btc-5m", symbol = "BTC" } }
    src.emit { event = "crypto_price", data = { symbol = "BTC", price = "97003" } } -- after unsubscribe_spot
    assert.truthy(ploop.run_until(function() return rt:idle() end, 5))
    assert.same({ "BTC=97000.5", "BTC=97001", "BTC=97002" }, rt.state.ticks)
    assert.same({ "open cond-btc-5m", "close cond-eth-5m", "settle cond-btc-5m" }, rt.state.windows)
    assert.same({ "subscribe BTC", "unsubscribe BTC" }, src.calls)
    assert.equal(1, rt.stats.errors)
    local found
    for _, l in ipairs(lines) do found = found or l:find("bad tick", 1, true) end
    assert.truthy(found)
    rt:stop("done")
    assert.equal(1, src.closed)
  end)

  it("without a spot source (no client:spot_stream) says so once and delivers nothing", function()
    local path = write("nospot.lua", [[
      return { on_start = function(ctx) ctx:subscribe_spot { "BTC", "ETH" } end,
               on_spot = function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end }
    ]])
    local lines = {}
    local rt = strategy.new { feed = false, client = {}, log_sink = function(l) lines[#lines + 1] = l end }
    assert(rt:start(path))
    local n = 0
    for _, l in ipairs(lines) do if l:find("no spot feed", 1, true) then n = n + 1 end end
    assert.equal(1, n)
    assert.is_nil(rt.state.n)
    rt:stop()
  end)
end)
