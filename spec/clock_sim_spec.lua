-- The backtest's simulated clock (polysim.clock.sim): advance(t) runs every timer due up to t
-- in time order (ties in the order they were armed), skips cancelled ones, runs the ones armed
-- meanwhile when they fall due before t, and leaves now() at t.
local clock = require "polysim.clock"

describe("clock.sim", function()
  it("runs due timers in time order, ties in arming order, and moves now to each", function()
    local c = clock.sim(100)
    local seen = {}
    local function at(tag) return function() seen[#seen + 1] = tag .. "@" .. c.now() end end
    c.after(5, at("b"))
    c.after(1, at("a"))
    c.after(5, at("c"))
    c.after(20, at("late"))
    c.advance(110)
    assert.same({ "a@101", "b@105", "c@105" }, seen)
    assert.equal(110, c.now())
    assert.equal(120, c.next_due())
  end)

  it("skips cancelled timers, also at the top of the heap, and runs timers armed while advancing", function()
    local c = clock.sim(0)
    local seen = {}
    local h1 = c.after(1, function() seen[#seen + 1] = "cancelled" end)
    c.after(2, function()
      seen[#seen + 1] = "two"
      c.after(1, function() seen[#seen + 1] = "three@" .. c.now() end)
      c.after(10, function() seen[#seen + 1] = "twelve" end)
    end)
    local h2 = c.after(4, function() seen[#seen + 1] = "cancelled too" end)
    h1:cancel()
    h2:cancel()
    c.advance(5)
    assert.same({ "two", "three@3" }, seen)
    assert.equal(5, c.now())
    c.advance(4) -- time never goes back
    assert.equal(5, c.now())
    assert.equal(12, c.next_due())
  end)

  it("does not move now past t when nothing is due, and a timer runs once", function()
    local c = clock.sim(0)
    local n = 0
    c.after(3, function() n = n + 1 end)
    c.advance(2)
    assert.equal(0, n)
    assert.equal(2, c.now())
    c.advance(3)
    c.advance(9)
    assert.equal(1, n)
    assert.is_nil(c.next_due())
  end)
end)
