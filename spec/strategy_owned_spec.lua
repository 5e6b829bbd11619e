-- A strategy owns the orders it placed (issue 11): cancel_on_stop cancels those alone, on_fill
-- hears only their fills, and the P&L line counts them. Over loopback, against the local
-- exchange, with a second client placing orders by hand on the same account.
local H = require "helper"
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

local function first_market(client)
  for m in client:markets { limit = 5 } do
    if type(m.outcomes) == "table" and m.outcomes[1] == "Yes" and not m.closed then return m.condition_id end
  end
end

describe("a strategy's own orders", function()
  local srv, hand
  before_each(function()
    srv = H.exchange()
    hand = H.client(srv)
  end)
  after_each(function()
    srv:close()
    collectgarbage()
  end)

  it("cancel_on_stop leaves a GTC order placed by hand from another client alone", function()
    local id = assert(first_market(hand))
    local by_hand = assert(hand:place_order { market_id = id, side = "BUY", outcome = "Yes", order_type = "limit",
                                              quantity = 5, price = "0.02" })
    assert.equal("PENDING", by_hand.status)
    local path = write("resting.lua", ([[
      return {
        cancel_on_stop = true,
        on_start = function(ctx)
          ctx.state.order = assert(ctx.client:place_order { market_id = %q, side = "BUY", outcome = "Yes",
            order_type = "limit", quantity = 5, price = "0.01" })
        end,
      }
    ]]):format(id))
    local lines = {}
    local rt = strategy.new { client = H.client(srv), feed = false, log_sink = function(l) lines[#lines + 1] = l end }
    assert(rt:start(path))
    local mine = rt.state.order
    assert.equal(rt.own.prefix, mine.client_order_id:sub(1, #rt.own.prefix))
    assert.equal(1, #rt:snapshot().open_orders)
    rt:stop("done")
    assert.equal("CANCELLED", assert(hand:order(mine.order_id)).status)
    assert.equal("PENDING", assert(hand:order(by_hand.order_id)).status, "the hand-placed order was cancelled")
    local found
    for _, l in ipairs(lines) do found = found or l:find("cancelled open orders (1)", 1, true) end
    assert.truthy(found, table.concat(lines, "\n"))
    assert.equal(0, rt:snapshot().own.open)
  end)

  it("hears only its own fills and reports their P&L", function()
    local id = assert(first_market(hand))
    local path = write("filler.lua", ([[
      return {
        on_start = function(ctx)
          ctx.state.fills = {}
          ctx:spawn(function() -- once the spec says the fill stream is up (it saw the hand's fill)
            while not ctx.state.go do ctx:sleep(0.02) end
            ctx.state.order = assert(ctx.client:place_order { market_id = %q, side = "BUY", outcome = "Yes",
              order_type = "market", quantity = 5, price = "0.99" })
          end)
        end,
        on_fill = function(ctx, fill) table.insert(ctx.state.fills, fill.order_id) end,
      }
    ]]):format(id))
    local rt = strategy.new { client = H.client(srv), log_sink = function() end }
    assert(rt:start(path))
    assert.truthy(ploop.run_until(function() return rt.feed.fills and rt.feed.fills:connected() end, 10),
      "the fill stream did not connect")
    local theirs = assert(hand:place_order { market_id = id, side = "BUY", outcome = "Yes", order_type = "market",
                                             quantity = 5, price = "0.99" })
    assert.truthy(ploop.run_until(function() return rt.stats.foreign_fills >= 1 end, 10), "no fill stream")
    rt.state.go = true
    assert.truthy(ploop.run_until(function() return #rt.state.fills >= 1 end, 10),
      "fills did not arrive: " .. #rt.state.fills .. " own, " .. rt.stats.foreign_fills .. " foreign, " .. rt.stats.received .. " received")
    assert.same({ rt.state.order.order_id }, rt.state.fills)
    assert.are_not.equal(theirs.order_id, rt.state.fills[1])
    local own = rt:snapshot().own
    assert.equal(1, own.placed)
    assert.equal(1, own.filled)
    assert.truthy(own.pnl:match("^%-?%d+%.?%d*$"), own.pnl)
    rt:stop("done")
  end)
end)
