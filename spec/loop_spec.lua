-- Tasks on the loop: waits yield inside tasks and block outside; wrap passes waits through
-- a coroutine of the caller's own; join, sleep and bad yields.
local polysim = require "polysim"
local ploop = polysim.loop
local H = require "helper"

describe("loop tasks", function()
  local server, client
  setup(function()
    server = H.fixture(function() return { status = 200, body = '{"ok":true}', delay = 0.2 } end)
    client = polysim.new { base_url = H.url(server), api_key = "k", max_retries = 0 }
  end)
  teardown(function() server:close() end)

  it("runs calls of several tasks at once", function()
    local t0, done = ploop.now(), 0
    for _ = 1, 4 do ploop.spawn(function() assert(client:balance()); done = done + 1 end) end
    assert.is_true(ploop.run_until(function() return done == 4 end, 5))
    assert.is_true(ploop.now() - t0 < 0.6) -- four 0.2 s answers overlapped, not 0.8 s in a row
  end)

  it("lets a wrapped coroutine inside a task wait without blocking the task's loop", function()
    local other_ran, order = false, {}
    local task = ploop.spawn(function()
      local gen = ploop.wrap(function()
        coroutine.yield("first")
        order.in_task = ploop.current() ~= nil -- so the call below yields rather than blocks
        local r = assert(client:balance()) -- a wait: passes through to the loop
        coroutine.yield(r.ok and "second")
      end)
      order[#order + 1] = gen()
      order[#order + 1] = gen()
      return "done"
    end)
    ploop.spawn(function() ploop.sleep(0.05); other_ran = true end)
    assert.equal("done", select(1, ploop.join(task)))
    assert.is_true(order.in_task)
    order.in_task = nil
    assert.same({ "first", "second" }, order)
    assert.is_true(other_ran)
  end)

  it("join returns the error of a task that failed, and of one that yielded garbage", function()
    local saved = ploop.on_error
    ploop.on_error = function() end
    local bad = ploop.spawn(function() ploop.sleep(0.01); error("boom") end)
    local r, err = ploop.join(bad)
    assert.is_nil(r)
    assert.matches("boom", err)
    local weird = ploop.spawn(function() ploop.sleep(0.01); coroutine.yield("not the sentinel") end)
    r, err = ploop.join(weird)
    ploop.on_error = saved
    assert.is_nil(r)
    assert.matches("does not understand", err)
  end)

  it("refuses to resume a task with the sentinel", function()
    local saved = ploop.on_error
    ploop.on_error = function() end
    local co
    ploop.spawn(function()
      co = coroutine.running()
      ploop.sleep(0.01)
    end)
    local ok, err = coroutine.resume(co, ploop.SENTINEL)
    assert.is_false(ok)
    assert.matches("sentinel", err)
    ploop.run_until(function() return false end, 0.05)
    ploop.on_error = saved
  end)
end)
