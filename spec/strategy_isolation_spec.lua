-- Error containment and the budget's reach (issue 8, bugs 2 and 3): a loop callback's error
-- goes to its own handler, never out of an unrelated blocking call; install always releases
-- its hold on events; the budget interrupts only the strategy's own code.
local strategy = require "polysim.strategy"
local ploop = require "polysim.loop"
local H = require "helper"

local _, write = H.scratch("iso")

local grep = H.grep

describe("error containment", function()
  local server, client
  setup(function()
    server = H.fixture(function() return { status = 200, body = '{"ok":true}', delay = 0.1 } end)
    client = require("polysim").new { base_url = H.url(server), api_key = "k", max_retries = 0 }
  end)
  teardown(function() server:close() end)

  it("keeps a failing loop callback's error out of a blocking call made meanwhile", function()
    local saved, handled = ploop.on_error, {}
    ploop.on_error = function(err) handled[#handled + 1] = tostring(err) end
    ploop.core:timer(0.01, function() error("raw timer failure") end) -- straight on the C loop
    ploop.timer(0.02, function() error("wrapped timer failure") end)
    local ok, res = pcall(client.health, client) -- blocks outside any task while both fire
    ploop.on_error = saved
    assert.is_true(ok, tostring(res))
    assert.is_true(res.ok) -- its own answer, not somebody else's error
    assert.equal(2, #handled)
    assert.truthy(handled[1]:find("raw timer failure", 1, true) or handled[2]:find("raw timer failure", 1, true))
  end)

  it("releases the hold on events when installing fails outside a task", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "m"; ctx:sleep(0.05); ctx.state.started = true end,
        on_price = function(ctx) ctx.state.prices = (ctx.state.prices or 0) + 1 end,
      }
    ]]
    local saved = ploop.on_error
    ploop.on_error = function() end
    local rt = strategy.new { feed = false, log_sink = function() end }
    ploop.core:timer(0.01, function() error("unrelated failure during start") end)
    local ok, err = pcall(rt.start, rt, path) -- not in a task: start drives the loop itself
    ploop.on_error = saved
    assert.is_true(ok, tostring(err))
    assert.is_false(rt.installing)
    assert.equal(0, rt.paused)
    rt:deliver { type = "price", market_id = "m" }
    assert.is_true(ploop.run_until(function() return rt:idle() end, 2))
    assert.equal(1, rt.state.prices)
    assert.equal(2, (rt:reload()))
    rt:stop()
  end)
end)

describe("the time budget", function()
  it("never cuts polysim's own code in half: it raises at the next line of strategy code", function()
    -- The feed is runtime-side code; it outlasts the budget inside ctx:subscribe.
    local got, finished = {}, false
    local feed = {
      subscribe = function(_, ids)
        local t = require("polysim.core").monotime()
        while require("polysim.core").monotime() - t < 0.15 do end
        for _, id in ipairs(ids) do got[#got + 1] = id end
        finished = true
      end,
      unsubscribe = function() end, close = function() end,
    }
    local path = write [[
      return {
        budget = 0.05,
        on_start = function(ctx)
          ctx:subscribe { "a", "b" }
          ctx.state.after_subscribe = true -- line 5: interrupted here
        end,
      }
    ]]
    local lines = {}
    local rt = strategy.new { feed = feed, log_sink = function(l) lines[#lines + 1] = l end }
    local ok, err = rt:start(path)
    assert.is_nil(ok)
    assert.is_true(finished)
    assert.same({ "a", "b" }, got)
    assert.same({ "a", "b" }, rt:subscriptions())
    assert.truthy(err:find("past its time budget of 0.05 s; interrupted at " .. path .. ":5", 1, true), err)
    assert.is_nil(rt.state.after_subscribe)
    assert.is_nil(grep(lines, "polysim/strategy")) -- strategy.lua and strategy/*.lua
  end)
end)
