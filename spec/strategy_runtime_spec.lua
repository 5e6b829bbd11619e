-- The strategy runtime: the contract, ordering guarantees, isolation and the time budget.
-- Events are pushed through rt:deliver, the path the streams use.
local strategy = require "polysim.strategy"
local ploop = require "polysim.loop"
local core = require "polysim.core"

local H = require "helper"
local _, write = H.scratch("s")

local function new(opts)
  local lines = {}
  local o = { feed = false, log_sink = function(line) lines[#lines + 1] = line end }
  for k, v in pairs(opts or {}) do o[k] = v end
  local rt = strategy.new(o)
  return rt, lines
end

local function settle(rt, timeout)
  assert(ploop.run_until(function() return rt:idle() end, timeout or 5), "runtime did not settle")
end

local grep = H.grep

local function price(id, seq) return { type = "price", market_id = id, buy = "0.51", sell = "0.49", seq = seq } end

describe("strategy runtime", function()
  after_each(function() collectgarbage() end)

  it("runs on_start before any event and hands ctx its fields", function()
    local path = write [[
      return {
        name = "probe",
        on_start = function(ctx)
          ctx.state.order = { "start" }
          ctx.state.fields = { type(ctx.client), type(ctx.log.info), ctx.name, ctx.version,
                               type(ctx:now()), type(ctx:monotime()) }
          ctx:subscribe { "m1" }
          ctx:sleep(0.02) -- events arriving meanwhile must wait
          table.insert(ctx.state.order, "start done")
        end,
        on_price = function(ctx, msg) table.insert(ctx.state.order, "price " .. msg.seq) end,
      }
    ]]
    local rt = new { client = {} }
    local started
    ploop.spawn(function() started = assert(rt:start(path)) end)
    rt:deliver(price("m1", 1)) -- on_start is still sleeping: queued
    assert.equal(1, rt:pending())
    settle(rt)
    assert.is_true(started)
    assert.same({ "start", "start done", "price 1" }, rt.state.order)
    local f = rt.state.fields
    assert.same({ "table", "function", "probe", 1 }, { f[1], f[2], f[3], f[4] })
    assert.same({ "number", "number" }, { f[5], f[6] })
    assert.near(os.time(), rt.current.ctx:now(), 2)
    rt:stop()
  end)

  it("delivers one market's prices in order, one at a time, without holding up other markets", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe { "a", "b" }; ctx.state.log = {} end,
        on_price = function(ctx, msg)
          local log = ctx.state.log
          log[#log + 1] = msg.market_id .. msg.seq .. "+"
          if msg.market_id == "a" then ctx:sleep(0.01) end
          log[#log + 1] = msg.market_id .. msg.seq .. "-"
        end,
      }
    ]]
    local rt = new()
    assert(rt:start(path))
    rt:deliver(price("a", 1))
    rt:deliver(price("a", 2))
    rt:deliver(price("b", 1))
    rt:deliver(price("b", 2))
    settle(rt)
    -- b ran to completion while a1 slept; a2 started only after a1 ended
    assert.same({ "a1+", "b1+", "b1-", "b2+", "b2-", "a1-", "a2+", "a2-" }, rt.state.log)
    rt:stop()
  end)

  it("delivers fills in order on their own queue and drops prices of unsubscribed markets", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "x"; ctx.state.got = {} end,
        on_price = function(ctx, msg) ctx:sleep(0.01); table.insert(ctx.state.got, "p" .. msg.seq) end,
        on_fill = function(ctx, f) table.insert(ctx.state.got, "f" .. f.order_id) end,
      }
    ]]
    local rt = new()
    assert(rt:start(path))
    assert.is_true(rt:deliver(price("x", 1)))
    assert.is_false(rt:deliver(price("y", 1)))
    for i = 1, 3 do rt:deliver { type = "fill", order_id = tostring(i) } end
    settle(rt)
    assert.same({ "f1", "f2", "f3", "p1" }, rt.state.got)
    assert.equal(1, rt.stats.dropped)
    rt.current.ctx:unsubscribe { "x" }
    assert.is_false(rt:deliver(price("x", 2)))
    assert.same({}, rt.current.ctx:subscriptions())
    rt:stop()
  end)

  it("reports a callback's error with file, line and traceback, and keeps going", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe { "ok", "bad" }; ctx.state.done = {} end,
        on_price = function(ctx, msg)
          if msg.market_id == "ok" then
            ctx:sleep(0.02)
            table.insert(ctx.state.done, msg.seq)
          else
            local t = nil
            return t.field -- line 9
          end
        end,
      }
    ]]
    local rt, lines = new()
    assert(rt:start(path))
    rt:deliver(price("ok", 1))
    rt:deliver(price("bad", 1))
    rt:deliver(price("bad", 2))
    rt:deliver(price("ok", 2))
    settle(rt)
    assert.same({ 1, 2 }, rt.state.done) -- the sleeping coroutine was not disturbed
    assert.equal(2, rt.stats.errors)
    local l = assert(grep(lines, "on_price failed"))
    assert.truthy(l:find(path .. ":9:", 1, true), l)
    assert.truthy(l:find("stack traceback", 1, true))
    assert.falsy(l:find("xpcall", 1, true)) -- the runtime's own frames are cut off
    rt:stop()
  end)

  it("survives a callback that yields to the wrong scheduler, and one that calls os.exit", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "m"; ctx.state.n = 0 end,
        on_price = function(ctx, msg)
          if msg.seq == 1 then coroutine.yield("not for the loop") end
          if msg.seq == 2 then os.exit(3) end
          ctx.state.n = ctx.state.n + 1
        end,
      }
    ]]
    local rt, lines = new()
    assert(rt:start(path))
    for i = 1, 3 do rt:deliver(price("m", i)) end
    settle(rt)
    assert.equal(1, rt.state.n) -- the queue was not wedged by event 1
    assert.truthy(grep(lines, "does not understand"))
    assert.truthy(grep(lines, "os.exit is not available"))
    rt:stop()
  end)

  it("interrupts a callback that runs past its budget, even through pcall", function()
    local path = write [[
      return {
        budget = 0.1,
        on_start = function(ctx) ctx:subscribe "m"; ctx.state.after = 0 end,
        on_price = function(ctx, msg)
          if msg.seq == 1 then
            local x = 0
            while true do x = x + 1 end -- line 7
          elseif msg.seq == 2 then
            for _ = 1, 100 do pcall(function() while true do end end) end
          end
          ctx.state.after = ctx.state.after + 1
        end,
      }
    ]]
    local rt, lines = new()
    assert(rt:start(path))
    local t0 = core.monotime()
    rt:deliver(price("m", 1))
    local took = core.monotime() - t0
    assert.is_true(took >= 0.1 and took < 0.6, "interrupted after " .. took)
    rt:deliver(price("m", 2))
    rt:deliver(price("m", 3))
    settle(rt)
    assert.equal(1, rt.state.after)
    assert.equal(2, rt.stats.budget_kills)
    local l = assert(grep(lines, "past its time budget of 0.1 s"))
    assert.truthy(l:find("interrupted at " .. path .. ":7", 1, true), l)
    rt:stop()
  end)

  it("restarts the budget clock at every wait, so busy callbacks that yield are left alone", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "m" end,
        on_price = function(ctx)
          for _ = 1, 6 do
            local t = ctx:monotime()
            while ctx:monotime() - t < 0.03 do end -- 30 ms of work, 180 ms in all
            ctx:sleep(0)
          end
          ctx.state.finished = true
        end,
      }
    ]]
    local rt, lines = new { budget = 0.06 }
    assert(rt:start(path))
    rt:deliver(price("m", 1))
    settle(rt)
    assert.is_true(rt.state.finished, table.concat(lines, "\n"))
    assert.equal(0, rt.stats.budget_kills)
    rt:stop()
  end)

  it("runs timers as isolated callbacks, never overlapping, cancelled on stop", function()
    local path = write [[
      return {
        on_start = function(ctx)
          ctx.state.ticks, ctx.state.once = 0, 0
          ctx.state.t = ctx:every(0.01, function(c)
            c.state.ticks = c.state.ticks + 1
            c:sleep(0.035) -- longer than the period: ticks meanwhile are skipped
          end)
          ctx:after(0, function(c) c.state.once = c.state.once + 1; error("timer error") end)
          local cancelled = ctx:after(0.01, function(c) c.state.once = 100 end)
          cancelled:cancel()
        end,
      }
    ]]
    local rt, lines = new()
    assert(rt:start(path))
    ploop.run_until(function() return false end, 0.2)
    assert.equal(1, rt.state.once)
    assert.truthy(grep(lines, "timer (after 0 s) failed"))
    local ticks = rt.state.ticks
    assert.is_true(ticks >= 2 and ticks <= 6, "ticks " .. ticks)
    assert.is_true(rt.stats.skipped_ticks > 0)
    rt:stop()
    local at_stop = rt.state.ticks
    assert.is_true(rt.state.t.cancelled)
    -- a loop timer due after five tick periods has run: every tick due before it had its turn
    local later = false
    ploop.spawn(function() ploop.sleep(0.05); later = true end)
    assert.is_true(ploop.run_until(function() return later end, 10))
    assert.equal(at_stop, rt.state.ticks)
  end)

  it("runs ctx:spawn tasks isolated, and ctx:stop asks the host to stop", function()
    local path = write [[
      return {
        on_start = function(ctx)
          ctx:spawn(function(a, b) ctx:sleep(0.01); ctx.state.sum = a + b end, 2, 3)
          ctx:spawn(function() error("spawned failure") end)
          ctx:stop("enough")
        end,
      }
    ]]
    local asked
    local rt, lines = new { on_stop_request = function(reason) asked = reason end }
    assert(rt:start(path))
    settle(rt)
    assert.equal(5, rt.state.sum)
    assert.equal("enough", asked)
    assert.truthy(grep(lines, "spawned task failed"))
    rt:stop()
  end)

  it("stops cleanly: on_stop with the reason, open orders cancelled on request, nothing after", function()
    local path = write [[
      return {
        cancel_on_stop = true,
        on_start = function(ctx) ctx:subscribe "m"; ctx.state.n = 0 end,
        on_price = function(ctx) ctx:sleep(0.02); ctx.state.n = ctx.state.n + 1 end,
        on_stop = function(ctx, reason) ctx.state.stopped = reason .. " after " .. ctx.state.n end,
      }
    ]]
    local cancels, rt = {}, nil
    local client = {
      cancel_all = function() error("cancel_all must not be called: it cancels other programs' orders") end,
      orders = function()
        local list = { { order_id = "a", client_order_id = rt.own.prefix .. "1" },
                       { order_id = "hand", client_order_id = "placed-by-hand" },
                       { order_id = "b", client_order_id = rt.own.prefix .. "2" } }
        local i = 0
        return function() i = i + 1; return list[i] end
      end,
      cancel_order = function(_, id) cancels[#cancels + 1] = id; return { order_id = id, status = "CANCELLED" } end,
    }
    local closed = 0
    local feed = { subscribe = function() end, unsubscribe = function() end,
                   close = function() closed = closed + 1 end }
    local lines
    rt, lines = new { client = client, feed = feed }
    assert(rt:start(path))
    rt:deliver(price("m", 1)) -- in flight when stop comes: it may finish
    rt:deliver(price("m", 2)) -- queued when stop comes: dropped
    rt:stop("SIGTERM")
    assert.equal("SIGTERM after 1", rt.state.stopped)
    assert.same({ "a", "b" }, cancels) -- the strategy's own orders, not the one placed by hand
    assert.equal(1, closed)
    assert.truthy(grep(lines, "cancelled open orders (2)"))
    assert.is_false(rt:deliver(price("m", 3)))
    assert.equal(1, rt.state.n)
  end)

  it("conflates queued prices of a market when the strategy asks for it", function()
    local path = write [[
      return {
        conflate = true,
        on_start = function(ctx) ctx:subscribe "m"; ctx.state.seen = {} end,
        on_price = function(ctx, msg) table.insert(ctx.state.seen, msg.seq); ctx:sleep(0.01) end,
      }
    ]]
    local rt = new()
    assert(rt:start(path))
    for i = 1, 10 do rt:deliver(price("m", i)) end
    settle(rt)
    assert.same({ 1, 10 }, rt.state.seen)
    assert.equal(8, rt.stats.conflated)
    rt:stop()
  end)

  it("never logs the API key", function()
    local key = "ps_live_" .. string.rep("ab", 32)
    local path = write([[
      return { on_start = function(ctx) ctx.log.info("key is " .. os.getenv("X_KEY_FOR_SPEC")) end }
    ]])
    local rt, lines = new { api_key = "custom-secret-key" }
    local env_getenv = os.getenv
    _G.os.getenv = function(n) if n == "X_KEY_FOR_SPEC" then return key end return env_getenv(n) end
    local ok = rt:start(path)
    _G.os.getenv = env_getenv
    assert.is_true(ok)
    rt.log.warn("custom-secret-key and %s", key)
    for _, l in ipairs(lines) do
      assert.falsy(l:find(key, 1, true))
      assert.falsy(l:find("custom-secret-key", 1, true))
    end
    assert.truthy(grep(lines, "ps_live_<redacted>"))
    assert.truthy(lines[1]:match("^%d%d:%d%d:%d%d%.%d%d%d INFO  %[s%d+%] key is"), lines[1])
    rt:stop()
  end)

  it("refuses a broken strategy at start with the file and line", function()
    local rt = new()
    local ok, err = rt:start(write "return { on_start = function(ctx) end,, }")
    assert.is_nil(ok)
    assert.truthy(err:find("s%d+%.lua:1:"), err)
    local rt2 = new()
    ok, err = rt2:start(write "return 42")
    assert.is_nil(ok)
    assert.truthy(err:find("must return a table of callbacks", 1, true), err)
    local rt3 = new()
    ok, err = rt3:start(write "return { on_start = function() error('no markets') end }")
    assert.is_nil(ok)
    assert.truthy(err:find("no markets", 1, true), err)
    assert.has_error(function() strategy.new { nonsense = 1 } end, "strategy.new: unknown option 'nonsense'")
  end)
end)
