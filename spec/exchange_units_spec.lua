-- luacheck: std +busted
-- Building blocks of the local exchange: SHA-256, fixed-point money, the seeded RNG.
local sha256 = require "polysim.exchange.sha256"
local fixed = require "polysim.exchange.fixed"
local rng = require "polysim.exchange.rng"
local book = require "polysim.exchange.book"
local siphash = require "polysim.exchange.siphash"

describe("exchange sha256", function()
  it("matches the FIPS 180-4 / NIST vectors", function()
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sha256.hex(""))
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sha256.hex("abc"))
    assert.are.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      sha256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.are.equal("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
      sha256.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn" ..
                 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"))
    assert.are.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      sha256.hex(string.rep("a", 1000000)))
  end)

  it("handles every padding boundary (55, 56, 63, 64 bytes)", function()
    -- values from Python's hashlib
    assert.are.equal("9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318", sha256.hex(string.rep("a",
        55)))
    assert.are.equal("b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a", sha256.hex(string.rep("a",
        56)))
    assert.are.equal("7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34", sha256.hex(string.rep("a",
        63)))
    assert.are.equal("ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb", sha256.hex(string.rep("a",
        64)))
    assert.are.equal(32, #sha256.digest("x"))
  end)
end)

describe("exchange siphash", function()
  it("matches the SipHash-2-4 reference vectors (key 00..0f, messages 00..n-1)", function()
    local key = ""
    for i = 0, 15 do key = key .. string.char(i) end
    local k0, k1 = string.unpack("<i8i8", key)
    local want = { "726fdb47dd0e0e31", "74f839c593dc67fd", "0d6c8009d9a94f5a", "85676696d7fb7e2d",
                   "cf2794e0277187b7", "18765564cd99a68d", "cbc9466e58fee3ce", "ab0200f58b01d137",
                   "93f5f5799a932462", "9e0082df0ba9e4b0" }
    local msg = ""
    for n = 0, #want - 1 do
      assert.are.equal(want[n + 1], string.format("%016x", siphash.hash(k0, k1, msg)))
      msg = msg .. string.char(n)
    end
  end)
end)

describe("exchange fixed", function()
  it("parses decimal strings exactly at a scale", function()
    assert.are.equal(6500, fixed.parse("0.65", 4))
    assert.are.equal(100000, fixed.parse("10", 4))
    assert.are.equal(5000, fixed.parse(".5", 4))
    assert.are.equal(-12500, fixed.parse("-1.25", 4))
    assert.are.equal(1, fixed.parse("1e-4", 4))
    assert.are.equal(1, fixed.parse("0.00010", 4))
    assert.are.equal(1000000, fixed.parse("1E2", 4))
    for _, bad in ipairs { "", ".", "abc", "1.2.3", "0x10", "1_0", "inf", "nan", "--1", "1e" } do
      assert.is_nil(fixed.parse(bad, 4), bad)
    end
    assert.are.same({ nil, "precision" }, { fixed.parse("0.12345", 4) })
    assert.are.same({ nil, "range" }, { fixed.parse("99999999999999999999", 4) })
    assert.are.same({ nil, "range" }, { fixed.parse("1e300", 4) })
    assert.are.same({ nil, "precision" }, { fixed.parse("1e-300", 4) })
  end)

  it("coerces JSON numbers without binary drift", function()
    assert.are.equal(6500, fixed.coerce(0.65, 4))
    assert.are.equal(100000, fixed.coerce(10, 4))
    assert.are.equal(1234500, fixed.coerce(123.45, 4))
    assert.is_nil(fixed.coerce(true, 4))
    assert.is_nil(fixed.coerce({}, 4))
    assert.is_nil(fixed.coerce(0 / 0, 4))
    assert.is_nil(fixed.coerce(math.huge, 4))
  end)

  it("formats with trimmed zeros and a minimum of decimals", function()
    assert.are.equal("9993.41", fixed.money(999341000000))
    assert.are.equal("6.50", fixed.money(650000000))
    assert.are.equal("0.00", fixed.money(0))
    assert.are.equal("-0.00000005", fixed.money(-5))
    assert.are.equal("0.65", fixed.price(6500))
    assert.are.equal("0.6543", fixed.price(6543))
    assert.are.equal("10", fixed.qty(100000))
    assert.are.equal("10.5", fixed.qty(105000))
  end)

  it("computes the taker fee q*rate*p*(1-p) rounded half-even to cents", function()
    -- quick start: 10 * 0.04 * 0.65 * 0.35 = 0.091 -> 0.09
    assert.are.equal(9000000, fixed.taker_fee(100000 * 6500 * 3500, 400))
    -- 0.125 -> 0.12 (half-even), 0.135 -> 0.14
    assert.are.equal(12000000, fixed.taker_fee(3125000000000, 400))
    assert.are.equal(14000000, fixed.taker_fee(3375000000000, 400))
    assert.are.equal(0, fixed.taker_fee(0, 400))
    assert.are.equal(0, fixed.taker_fee(100000 * 6500 * 3500, 0))
  end)

  it("muldiv is exact beyond 64-bit products", function()
    local q, r = fixed.muldiv(123456789012345, 987654321, 1000000007)
    assert.are.equal(121932630271299, q)
    assert.are.equal(449693652, r)
    assert.are.equal(9000000000000000, (fixed.muldiv(9000000000000000000, 1000, 1000000)))
    assert.are.equal(3, fixed.round_div(5, 2, "half_up"))
    assert.are.equal(2, fixed.round_div(5, 2, "half_even"))
    assert.are.equal(4, fixed.round_div(7, 2, "half_even"))
    assert.are.equal(3, fixed.round_div(5, 2, "ceil"))
    assert.are.equal(2, fixed.round_div(5, 2, "floor"))
  end)
end)

describe("exchange rng", function()
  it("is deterministic per seed, and forks are independent of draws", function()
    local a, b = rng.new(42), rng.new(42)
    for _ = 1, 100 do assert.are.equal(a:next(), b:next()) end
    local c = rng.new(43)
    assert.are_not.equal(rng.new(42):next(), c:next())
    local f1 = rng.new(1):fork("x")
    local f2 = rng.new(1):fork("x")
    assert.are.equal(f1:next(), f2:next())
    assert.are_not.equal(rng.new(1):fork("x"):next(), rng.new(1):fork("y"):next())
  end)

  it("draws in range and makes uuids and hex", function()
    local r = rng.new(7)
    for _ = 1, 1000 do
      local v = r:range(3, 9)
      assert.is_true(v >= 3 and v <= 9)
    end
    assert.is_truthy(r:uuid():match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"))
    assert.are.equal(64, #r:hex(64))
    assert.is_truthy(r:hex(64):match("^[0-9a-f]+$"))
  end)
end)

describe("exchange book walk", function()
  local function market(yes_bids, yes_asks, no_bids, no_asks)
    return { binary = true, outcomes = {
      { label = "Yes", bids = yes_bids, asks = yes_asks },
      { label = "No", bids = no_bids, asks = no_asks } } }
  end

  it("merges the complement: effective ask = 1 - complement bid", function()
    local m = market({}, { { 6600, 100000 } }, { { 3500, 50000 } }, {})
    local r = book.walk(m, 1, "BUY", nil, 120000, false)
    -- 5 shares at 0.65 (complement of No bid 0.35), then 7 at 0.66
    assert.are.equal(120000, r.filled)
    assert.are.equal(6500 * 50000 + 6600 * 70000, r.notional)
    assert.are.equal(2, r.levels)
    assert.are.equal(6500, r.best)
    assert.are.equal(6600, r.worst)
    -- dry run consumed nothing
    assert.are.equal(50000, m.outcomes[2].bids[1][2])
    book.walk(m, 1, "BUY", nil, 120000, true)
    assert.are.equal(0, #m.outcomes[2].bids)
    assert.are.equal(30000, m.outcomes[1].asks[1][2])
  end)

  it("stops at the limit and reports it", function()
    local m = market({ { 6000, 10000 } }, { { 6500, 10000 }, { 7000, 10000 } }, {}, {})
    local r = book.walk(m, 1, "BUY", 6800, 20000, false)
    assert.are.equal(10000, r.filled)
    assert.is_true(r.limited)
    local s = book.walk(m, 1, "SELL", 6100, 10000, false)
    assert.are.equal(0, s.filled)
    assert.is_true(s.limited)
    assert.are.equal(6000, s.best)
    local bb, ba = book.best(m, 2)
    assert.are.equal(3500, bb)   -- 1 - 0.65
    assert.are.equal(4000, ba)   -- 1 - 0.60
  end)
end)
