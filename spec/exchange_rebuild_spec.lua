-- The synthetic book rebuild (polysim.exchange.markets.base.rebuild_book) draws its level sizes
-- with the generator's step written out: it must give the books and leave the generator state
-- that the method-call form (r:range(10, 600) * 10000 + r:below(100) * 100 a level) gives.
local rng = require "polysim.exchange.rng"
local base = require "polysim.exchange.markets.base"
local fixed = require "polysim.exchange.fixed"
local encode = require("polysim.core").json_encode

local ONE = fixed.P

local function reference(m, idx, r)
  local o = m.outcomes[idx]
  o.bids, o.asks = {}, {}
  local t = m.tick
  local half = t * r:range(1, 2)
  local a, b = o.price + half, o.price - half
  for _ = 1, m.depth do
    if a < ONE then o.asks[#o.asks + 1] = { a, r:range(10, 600) * 10000 + r:below(100) * 100 } end
    if b > 0 then o.bids[#o.bids + 1] = { b, r:range(10, 600) * 10000 + r:below(100) * 100 } end
    a, b = a + t, b - t
  end
end

describe("exchange book rebuild", function()
  it("draws the same sizes in the same order as r:range/r:below, near both ends of the price range", function()
    local r1, r2 = rng.new(7), rng.new(7)
    for k = 1, 2000 do
      local price = (k * 37) % (ONE // 100) * 100
      local m1 = { tick = 100, depth = k % 25, outcomes = { { price = price } } }
      local m2 = { tick = 100, depth = k % 25, outcomes = { { price = price } } }
      reference(m1, 1, r1)
      base.rebuild_book(m2, 1, r2)
      assert.equal(encode(m1.outcomes[1].asks), encode(m2.outcomes[1].asks))
      assert.equal(encode(m1.outcomes[1].bids), encode(m2.outcomes[1].bids))
      assert.equal(r1:next(), r2:next())
    end
  end)

  it("leaves a resolved market's book empty without drawing", function()
    local r1, r2 = rng.new(3), rng.new(3)
    local m = { tick = 100, depth = 5, resolved_outcome = 1, outcomes = { { price = 5000 } } }
    base.rebuild_book(m, 1, r1)
    assert.same({}, m.outcomes[1].asks)
    assert.same({}, m.outcomes[1].bids)
    assert.equal(r2:next(), r1:next())
  end)
end)
