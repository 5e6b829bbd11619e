-- The events' callbacks run on reused tasks (polysim.callback's runners, issue 12): the
-- record, the coroutine and the budget hook of one callback serve the next. What one callback
-- did to its runner (an interruption, an error, a wait) must not reach the next one.
local strategy = require "polysim.strategy"
local ploop = require "polysim.loop"

local H = require "helper"
local _, write = H.scratch("run")

local function runtime(path, opts)
  local lines = {}
  opts = opts or {}
  opts.feed = false
  opts.log_sink = function(line) lines[#lines + 1] = line end
  local rt = strategy.new(opts)
  assert(rt:start(path))
  return rt, lines
end

local count = H.count

local function price(id, buy) return { type = "price", market_id = id, buy = buy, sell = "0.5" } end

describe("callback runners", function()
  it("run the callback after a budget interruption normally (the hook is put back)", function()
    local rt, lines = runtime(write [[
      return {
        budget = 0.05,
        on_start = function(ctx) ctx:subscribe { "m" } end,
        on_price = function(ctx, msg)
          if msg.buy == "spin" then while true do end end
          local s = 0
          for i = 1, 20000 do s = s + i end
          ctx.state.done = (ctx.state.done or 0) + 1
          ctx.state.sum = s
        end,
      }
    ]])
    rt:deliver(price("m", "spin"))
    for _ = 1, 5 do rt:deliver(price("m", "0.5")) end
    assert.equal(1, rt.stats.budget_kills)
    assert.equal(1, count(lines, "past its time budget"))
    assert.equal(5, rt.state.done)
    assert.equal(200010000, rt.state.sum)
    assert.equal(1, rt.stats.errors)
    rt:stop("test")
  end)

  it("report each error with its traceback, and the next callback runs", function()
    local rt, lines = runtime(write [[
      local function inner(msg) error("bad price " .. msg.buy) end
      return {
        on_start = function(ctx) ctx:subscribe { "m" } end,
        on_price = function(ctx, msg)
          if msg.buy ~= "0.5" then inner(msg) end
          ctx.state.ok = (ctx.state.ok or 0) + 1
        end,
      }
    ]])
    rt:deliver(price("m", "x1"))
    rt:deliver(price("m", "0.5"))
    rt:deliver(price("m", "x2"))
    rt:deliver(price("m", "0.5"))
    assert.equal(2, rt.state.ok)
    assert.equal(2, rt.stats.errors)
    local full
    for _, l in ipairs(lines) do if l:find("bad price x1", 1, true) then full = l end end
    assert.truthy(full, table.concat(lines, "\n"))
    assert.truthy(full:find("in upvalue 'inner'", 1, true) or full:find("in local 'inner'", 1, true)
      or full:find("in function 'inner'", 1, true), full)
    assert.falsy(full:find("polysim/callback.lua", 1, true), full) -- cut where the runtime begins
    rt:stop("test")
  end)

  it("keep a waiting callback's runner while other markets' events run, in order per market", function()
    local rt = runtime(write [[
      return {
        on_start = function(ctx) ctx:subscribe { "a", "b" }; ctx.state.seen = {} end,
        on_price = function(ctx, msg)
          local seen = ctx.state.seen
          seen[#seen + 1] = msg.market_id .. msg.buy .. ">"
          if msg.market_id == "a" then ctx:sleep(0.02) end
          seen[#seen + 1] = msg.market_id .. msg.buy .. "<"
        end,
      }
    ]])
    rt:deliver(price("a", "1"))
    rt:deliver(price("a", "2"))
    rt:deliver(price("b", "1"))
    rt:deliver(price("b", "2"))
    assert.is_true(ploop.run_until(function() return rt:idle() end, 5))
    assert.same({ "a1>", "b1>", "b1<", "b2>", "b2<", "a1<", "a2>", "a2<" }, rt.state.seen)
    rt:stop("test")
  end)

  it("do not let a callback's own coroutine yield end its runner's next callbacks", function()
    local rt, lines = runtime(write [[
      return {
        on_start = function(ctx) ctx:subscribe { "m" } end,
        on_price = function(ctx, msg)
          if msg.buy == "yield" then coroutine.yield("mine") end
          ctx.state.n = (ctx.state.n or 0) + 1
        end,
      }
    ]])
    rt:deliver(price("m", "yield"))
    for _ = 1, 3 do rt:deliver(price("m", "0.5")) end
    assert.equal(3, rt.state.n)
    assert.equal(1, count(lines, "does not understand"))
    rt:stop("test")
  end)
end)
