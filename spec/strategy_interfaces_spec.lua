-- The runtime's interfaces for hosts, backtests and the dashboard: an injected clock,
-- ctx.params, snapshot() and observe(), and the two-index event queues.
local strategy = require "polysim.strategy"
local queue = require "polysim.queue"
local ploop = require "polysim.loop"

local H = require "helper"
local _, write = H.scratch("i")

-- A simulated clock: time moves only when the spec says so.
local function fake_clock(t0)
  local c = { t = t0, timers = {} }
  c.now = function() return c.t end
  c.monotime = function() return c.t - t0 end
  c.after = function(seconds, fn)
    local h = { at = c.t + seconds, fn = fn }
    function h.cancel() h.cancelled = true end
    c.timers[#c.timers + 1] = h
    return h
  end
  function c.advance(dt)
    local target = c.t + dt
    while true do
      table.sort(c.timers, function(a, b) return a.at < b.at end)
      local h = c.timers[1]
      if not h or h.at > target then break end
      table.remove(c.timers, 1)
      c.t = h.at
      if not h.cancelled then h.fn() end
    end
    c.t = target
  end
  return c
end

describe("strategy runtime interfaces", function()
  it("takes its time from an injected clock: timers, sleep and ctx:now run on simulated time", function()
    local path = write [[
      return {
        on_start = function(ctx)
          ctx.state.t0 = ctx:now()
          ctx.state.ticks = 0
          ctx:every(60, function(c) c.state.ticks = c.state.ticks + 1 end)
          ctx:spawn(function() ctx:sleep(3600); ctx.state.woke = ctx:now() end)
        end,
      }
    ]]
    local clock = fake_clock(1.7e9)
    local rt = strategy.new { feed = false, clock = clock, log_sink = function() end }
    assert(rt:start(path))
    assert.equal(1.7e9, rt.state.t0)
    clock.advance(3600)
    assert.equal(60, rt.state.ticks) -- an hour of minutes, in no real time
    assert.equal(1.7e9 + 3600, rt.state.woke)
    rt:stop()
  end)

  it("hands opts.params to the strategy as ctx.params", function()
    local path = write "return { on_start = function(ctx) ctx.state.size = ctx.params.size end }"
    local rt = strategy.new { feed = false, params = { size = "5" }, log_sink = function() end }
    assert(rt:start(path))
    assert.equal("5", rt.state.size)
    rt:stop()
    assert.has_error(function() strategy.new { params = "size=5" } end, "strategy.new: params must be a table")
  end)

  it("tells observers about fills, log lines and reloads, and snapshots itself", function()
    local path = write [[
      return { name = "obs", on_start = function(ctx) ctx.log.info("hello") end,
               on_fill = function() end }
    ]]
    local seen = {}
    local rt = strategy.new { feed = false, log_sink = function() end }
    local remove = rt:observe(function(kind, data) seen[#seen + 1] = { kind, data } end)
    assert(rt:start(path))
    rt:deliver { type = "fill", order_id = "o1", market_id = "m", price = "0.5", quantity = "2" }
    assert(rt:reload())
    ploop.run_until(function() return rt:idle() end, 2)
    local kinds = {}
    for _, s in ipairs(seen) do kinds[s[1]] = (kinds[s[1]] or 0) + 1 end
    assert.is_true(kinds.log >= 2)
    assert.equal(1, kinds.fill)
    assert.equal(1, kinds.reload)
    local snap = rt:snapshot()
    assert.equal("obs", snap.name)
    assert.equal(2, snap.version)
    assert.is_number(snap.started_at)
    assert.equal("o1", snap.fills[1].order_id)
    assert.truthy(snap.log_tail[1]:find("hello", 1, true))
    assert.equal(1, #snap.reloads)
    assert.is_true(snap.reloads[1].ok)
    assert.is_number(snap.reloads[1].ms)
    assert.same({}, snap.positions)
    remove()
    local n = #seen
    rt.log.info("unobserved")
    assert.equal(n, #seen)
    rt:stop()
  end)

  it("queues without shifting: push and pop stay O(1) and the indexes restart when empty", function()
    local q = queue.new()
    for i = 1, 100000 do q:push(i) end
    for i = 1, 99999 do assert(q:pop() == i) end
    assert.equal(1, q:len())
    assert.equal(100000, q:pop())
    assert.is_nil(q:pop())
    assert.same({ 1, 0 }, { q.head, q.tail })
    local r = queue.ring(3)
    for i = 1, 5 do r:push(i) end
    assert.same({ 3, 4, 5 }, r:list())
  end)
end)
