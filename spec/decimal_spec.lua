-- Exact decimal arithmetic of polysim.core (src/decimal.c), public as polysim.decimal.
local core = require "polysim.core"
local decimal = core.decimal
local D = decimal.new

local MODES = { "half_even", "half_up", "down", "up", "floor", "ceiling" }
local MAX = "99999999999999999999999999999999999999" -- 38 nines: the largest coefficient

-- Asserts that f(...) raises an error containing every plain substring in `wants`.
local function raises(wants, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  err = tostring(err)
  for _, want in ipairs(type(wants) == "table" and wants or { wants }) do
    assert(err:find(want, 1, true), ("expected %q in error %q"):format(want, err))
  end
  return err
end

local function str(x) return tostring(x) end

describe("decimal", function()
  describe("construction", function()
    it("parses strings, preserving the scale", function()
      assert.equal("0.65", str(D("0.65")))
      assert.equal("6.50", str(D("6.50")))
      assert.equal("-12", str(D("-12")))
      assert.equal("1.50", str(D("+1.50")))
      assert.equal("7.50", str(D("007.50")))
      assert.equal("0.5", str(D(".5")))
      assert.equal("5", str(D("5.")))
      assert.equal(2, D("6.50"):scale())
      assert.equal(0, D("12"):scale())
    end)

    it("accepts exponents", function()
      assert.equal("0.001", str(D("1e-3")))
      assert.equal("150", str(D("1.5e2")))
      assert.equal("1.23", str(D("123E-2")))
      assert.equal("1200", str(D("12e+2")))
    end)

    it("normalises negative zero", function()
      assert.equal("0", str(D("-0")))
      assert.equal("0.00", str(D("-0.00")))
      assert.equal("0", str(-D("0")))
      assert.equal("0.0", str(D("-0.5") + "0.5"))
      assert.equal(0, D("-0"):sign())
      assert.equal("0", str(D("-0.001"):round(0, "half_even")))
      assert.equal("0.00", D("-0.001"):format(2))
    end)

    it("is callable as decimal(x) and returns decimals unchanged from new", function()
      assert.equal("1.5", str(decimal("1.5")))
      local d = D("2")
      assert.equal(d, D(d))
      assert.is_true(decimal.isdecimal(d))
      assert.is_false(decimal.isdecimal("2"))
      assert.is_false(decimal.isdecimal(2))
      assert.is_false(decimal.isdecimal(nil))
    end)

    it("takes Lua integers", function()
      assert.equal("42", str(D(42)))
      assert.equal("-9223372036854775808", str(D(math.mininteger)))
      assert.equal("9223372036854775807", str(D(math.maxinteger)))
    end)

    it("takes floats whose binary value is a decimal of at most 18 places", function()
      assert.equal("10", str(D(10.0)))
      assert.equal("0.5", str(D(0.5)))
      assert.equal("0.125", str(D(0.125)))
      assert.equal("-2.75", str(D(-2.75)))
      assert.equal("0.000003814697265625", str(D(2 ^ -18)))
      assert.equal("1152921504606846976", str(D(2.0 ^ 60)))
    end)

    it("rejects floats with no exact short decimal value, suggesting a string", function()
      raises({ "bad argument #1", "no exact decimal value", 'pass a string such as "0.68"' }, D, 0.68)
      raises({ "no exact decimal value", '"0.1"' }, D, 0.1)
      raises("no exact decimal value", D, 2 ^ -19)
      raises({ "bad argument #2", '"0.3"' }, decimal.add, D(1), 0.3)
      raises("not finite", D, 0 / 0)
      raises("not finite", D, math.huge)
      raises("overflow", D, 2.0 ^ 127)
    end)

    it("rejects bad strings, naming the argument", function()
      for _, s in ipairs { "", "abc", "1.2.3", "nan", "NaN", "inf", "-inf", " 1", "1 ", "1x", "0x10",
                           "--1", "+-1", ".", "-", "1e", "1e+", "e5", "1,5", "١" } do
        raises({ "bad argument #1", "invalid decimal" }, D, s)
      end
      raises({ "bad argument #2", 'invalid decimal "x"' }, decimal.add, "1", "x")
    end)

    it("rejects other types", function()
      raises({ "bad argument #1", "decimal, string or integer expected, got boolean" }, D, true)
      raises("got no value", D)
      raises("got table", D, {})
      raises("got FILE*", D, io.stdout)
    end)

    it("parse returns nil and a message instead of raising", function()
      assert.equal("1.25", str(decimal.parse("1.25")))
      local v, err = decimal.parse("1.2.3")
      assert.is_nil(v)
      assert.equal('invalid decimal "1.2.3": not a decimal number', err)
      v, err = decimal.parse(MAX .. "9")
      assert.is_nil(v)
      assert.matches("more than 38 significant digits", err)
      raises("string expected", decimal.parse, 12)
    end)
  end)

  describe("arithmetic", function()
    it("adds exactly: 0.1 + 0.2 == 0.3", function()
      local sum = D("0.1") + D("0.2")
      assert.equal("0.3", str(sum))
      assert.is_true(sum == D("0.3"))
      assert.equal(0, decimal.cmp(sum, "0.3"))
    end)

    it("keeps the larger scale in add and sub, the sum of scales in mul", function()
      assert.equal("1.50", str(D("1.5") + "0.00"))
      assert.equal("6.50", str(D("10.00") - "3.5"))
      assert.equal("13.00", str(D("6.50") * 2))
      assert.equal("0.4225", str(D("0.65") * "0.65"))
      assert.equal("-3.0", str(D("1.5") * -2))
    end)

    it("mixes operand types on either side", function()
      assert.equal("1.65", str("1" + D("0.65")))
      assert.equal("1.65", str(D("0.65") + "1"))
      assert.equal("6.50", str(10 * D("0.65")))
      assert.equal("1.15", str(D("0.65") + 0.5))
      assert.equal("0.35", str(1 - D("0.65")))
      assert.equal("-0.65", str(-D("0.65")))
    end)

    it("has method and function forms", function()
      local d = D("3.14")
      assert.equal("4.14", str(d:add(1)))
      assert.equal("3.00", str(d:sub("0.14")))
      assert.equal("6.28", str(d:mul(2)))
      assert.equal("4.14", str(decimal.add("3.14", 1)))
      assert.equal("-3.14", str(d:neg()))
      assert.equal("3.14", str(D("-3.14"):abs()))
      assert.equal(-1, D("-3.14"):sign())
      assert.equal(1, d:sign())
      assert.is_true(D("0.000"):is_zero())
      assert.is_false(d:is_zero())
      assert.equal("3.14", d:tostring())
      assert.equal("3.14", decimal.tostring("3.14"))
    end)

    it("concatenates as strings", function()
      assert.equal("price 0.65", "price " .. D("0.65"))
      assert.equal("0.65 USD", D("0.65") .. " USD")
      assert.equal("1.02.0", D("1.0") .. D("2.0"))
      assert.equal("30.5", 3 .. D("0.5"))
      raises("concatenate a table", function() return D(1) .. {} end)
    end)

    it("refuses '/' and '//', pointing at div", function()
      raises("decimal.div(a, b, scale, rounding)", function() return D(1) / 3 end)
      raises("decimal.div(a, b, scale, rounding)", function() return D(1) // 3 end)
    end)
  end)

  describe("division", function()
    it("divides to the requested scale", function()
      assert.equal("0.3333", str(decimal.div(1, 3, 4, "half_even")))
      assert.equal("0.6667", str(decimal.div(2, 3, 4, "half_up")))
      assert.equal("0.6666", str(decimal.div(2, 3, 4, "down")))
      assert.equal("-0.6667", str(decimal.div(-2, 3, 4, "half_up")))
      assert.equal("2.50", str(D("5"):div(2, 2, "down")))
      assert.equal("3", str(decimal.div("10", "3", 0, "half_even")))
      assert.equal("0.14285714285714285714285714285714285714", str(decimal.div(1, 7, 38, "half_even")))
      assert.equal("1.0000000000000000000000000000000000000",
        str(decimal.div(MAX, "99999999999999999999999999999999999998", 37, "half_even")))
    end)

    it("rounds each mode correctly on both signs", function()
      local want = {
        --            1/3@4     2/3@4     -2/3@4     -1/3@4
        half_even = { "0.3333", "0.6667", "-0.6667", "-0.3333" },
        half_up   = { "0.3333", "0.6667", "-0.6667", "-0.3333" },
        down      = { "0.3333", "0.6666", "-0.6666", "-0.3333" },
        up        = { "0.3334", "0.6667", "-0.6667", "-0.3334" },
        floor     = { "0.3333", "0.6666", "-0.6667", "-0.3334" },
        ceiling   = { "0.3334", "0.6667", "-0.6666", "-0.3333" },
      }
      for _, m in ipairs(MODES) do
        assert.equal(want[m][1], str(decimal.div(1, 3, 4, m)), m)
        assert.equal(want[m][2], str(decimal.div(2, 3, 4, m)), m)
        assert.equal(want[m][3], str(decimal.div(-2, 3, 4, m)), m)
        assert.equal(want[m][4], str(decimal.div(1, -3, 4, m)), m)
      end
    end)

    it("handles exact ties (1/8 to 2 places) per mode", function()
      local want = { half_even = "0.12", half_up = "0.13", down = "0.12", up = "0.13",
                     floor = "0.12", ceiling = "0.13" }
      for m, w in pairs(want) do
        assert.equal(w, str(decimal.div(1, 8, 2, m)), m)
      end
      assert.equal("-0.13", str(decimal.div(-1, 8, 2, "floor")))
      assert.equal("-0.12", str(decimal.div(-1, 8, 2, "half_even")))
    end)

    it("rounds results far below the last place", function()
      local tiny = "1e-38"
      assert.equal("0.00000000000000000000000000000000000001", str(decimal.div(tiny, MAX, 38, "up")))
      assert.equal("0.00000000000000000000000000000000000000", str(decimal.div(tiny, MAX, 38, "half_up")))
      assert.equal("0.00000000000000000000000000000000000002", str(decimal.div("15e-38", 10, 38, "half_even")))
      assert.equal("0.00000000000000000000000000000000000000", str(decimal.div("5e-38", 10, 38, "half_even")))
      assert.equal("-0.00000000000000000000000000000000000001",
        str(decimal.div(tiny, "-" .. MAX, 38, "floor")))
    end)

    it("requires a scale and a valid rounding mode", function()
      raises({ "bad argument #4", "rounding mode expected", "got no value" }, decimal.div, 1, 3, 2)
      raises({ "bad argument #4", "unknown rounding mode 'nearest'" }, decimal.div, 1, 3, 2, "nearest")
      raises({ "bad argument #4", "got number" }, decimal.div, 1, 3, 2, 1)
      raises({ "bad argument #3", "number expected" }, decimal.div, 1, 3)
      raises({ "bad argument #3", "scale must be between 0 and 38" }, decimal.div, 1, 3, 39, "down")
      raises({ "bad argument #3", "scale must be between 0 and 38" }, decimal.div, 1, 3, -1, "down")
    end)

    it("raises on division by zero", function()
      raises("division by zero", decimal.div, 1, 0, 2, "down")
      raises("division by zero", decimal.div, 1, "0.000", 2, "down")
    end)
  end)

  describe("rounding", function()
    it("rounds halves per mode on positive and negative values", function()
      local want = {
        --             2.5    -2.5   2.45   -2.45  2.55   -2.55
        half_even = { "2",   "-2",  "2.4", "-2.4", "2.6", "-2.6" },
        half_up   = { "3",   "-3",  "2.5", "-2.5", "2.6", "-2.6" },
        down      = { "2",   "-2",  "2.4", "-2.4", "2.5", "-2.5" },
        up        = { "3",   "-3",  "2.5", "-2.5", "2.6", "-2.6" },
        floor     = { "2",   "-3",  "2.4", "-2.5", "2.5", "-2.6" },
        ceiling   = { "3",   "-2",  "2.5", "-2.4", "2.6", "-2.5" },
      }
      for _, m in ipairs(MODES) do
        local w = want[m]
        assert.equal(w[1], str(decimal.round("2.5", 0, m)), m)
        assert.equal(w[2], str(decimal.round("-2.5", 0, m)), m)
        assert.equal(w[3], str(decimal.round("2.45", 1, m)), m)
        assert.equal(w[4], str(decimal.round("-2.45", 1, m)), m)
        assert.equal(w[5], str(D("2.55"):round(1, m)), m)
        assert.equal(w[6], str(D("-2.55"):round(1, m)), m)
      end
      assert.equal("4", str(decimal.round("3.5", 0, "half_even")))
    end)

    it("pads when the scale grows", function()
      assert.equal("2.500", str(decimal.round("2.5", 3, "down")))
      assert.equal(3, decimal.round("2.5", 3, "down"):scale())
    end)

    it("quantizes to the scale of another decimal", function()
      assert.equal("2.35", str(decimal.quantize("2.345", "0.01", "half_up")))
      assert.equal("2.34", str(D("2.345"):quantize(D("0.01"), "half_even")))
      assert.equal("2", str(D("2.345"):quantize(1, "down")))
    end)

    it("formats to fixed places (half_even unless told)", function()
      assert.equal("1.23", D("1.23456"):format(2))
      assert.equal("2.500", D("2.5"):format(3))
      assert.equal("2.34", D("2.345"):format(2))
      assert.equal("2.35", D("2.345"):format(2, "half_up"))
      assert.equal("-123.46", D("-123.455"):format(2, "half_up"))
      assert.equal("0", D("0.4"):format(0))
      raises("unknown rounding mode", function() return D(1):format(2, "nope") end)
    end)

    it("requires the rounding mode for round and quantize", function()
      raises({ "bad argument #3", "rounding mode expected" }, decimal.round, "2.5", 0)
      raises({ "bad argument #3", "rounding mode expected" }, decimal.quantize, "2.5", "0.1")
    end)
  end)

  describe("comparison", function()
    it("compares values across scales", function()
      assert.is_true(D("1.50") == D("1.5"))
      assert.is_true(D("1.5") == D("1.500000"))
      assert.is_false(D("1.5") == D("1.51"))
      assert.is_true(D("1.5") ~= D("-1.5"))
      assert.equal(0, decimal.cmp("1.50", "1.5"))
      assert.equal(-1, decimal.cmp("-2", "1"))
      assert.equal(1, decimal.cmp("0.001", 0))
      assert.equal(-1, decimal.cmp("-0.2", "-0.1"))
      assert.equal(1, decimal.cmp(MAX, "0." .. MAX:sub(2)))
      assert.equal(-1, decimal.cmp("0.00000000000000000000000000000000000001", MAX))
    end)

    it("orders with < and <= against decimals, strings and numbers", function()
      assert.is_true(D("0.65") < D("0.7"))
      assert.is_true(D("0.65") <= D("0.650"))
      assert.is_true(D("0.65") < 1)
      assert.is_true(0 < D("0.65"))
      assert.is_true(D("0.65") > "0.6")
      assert.is_true(D("-1") <= "-1.00")
      assert.is_false(D("2") < D("2.00"))
    end)

    it("is not equal to a non-decimal (Lua calls __eq only between two userdata)", function()
      assert.is_false(D("1") == 1)
      assert.is_false(D("1") == "1")
      assert.is_false(D("1") == io.stdout)
    end)

    it("raises on a float that is not exact", function()
      raises({ "bad argument #2", "no exact decimal value" }, function() return D(1) < 0.1 end)
    end)
  end)

  describe("limits", function()
    it("holds 38 significant digits and 38 places", function()
      assert.equal(MAX, str(D(MAX)))
      assert.equal("-" .. MAX, str(D("-" .. MAX)))
      assert.equal("0." .. MAX, str(D("0." .. MAX)))
      assert.equal("0.00000000000000000000000000000000000001", str(D("1e-38")))
      assert.equal("0.00000000000000000000000000000000000001", str(D("1.0e-38")))
      assert.equal(decimal.MAX_SCALE, 38)
      assert.equal(decimal.MAX_DIGITS, 38)
    end)

    it("raises on overflow instead of wrapping", function()
      raises("decimal overflow in add", decimal.add, MAX, 1)
      raises("decimal overflow in sub", decimal.sub, "-" .. MAX, 1)
      raises("decimal overflow in add", function() return D("1e37") + "0.1" end)
      raises("decimal overflow in mul", decimal.mul, math.maxinteger, D(math.maxinteger) * math.maxinteger)
      raises("decimal overflow in mul", decimal.mul, "1e-20", "1e-19") -- 39 places
      raises("decimal overflow in div", decimal.div, MAX, "0.3", 0, "down")
      raises("decimal overflow in round", decimal.round, MAX, 1, "down")
      assert.equal("100", str(decimal.round("99.99", 0, "up")))
    end)

    it("computes exactly right up to the limit", function()
      assert.equal("85070591730234615847396907784232501249", str(D(math.maxinteger) * math.maxinteger))
      assert.equal(MAX, str(D("99999999999999999999999999999999999998") + 1))
      assert.equal("0", str(D(MAX) - MAX))
      -- trailing zeros give way rather than overflow: the value stays exact
      assert.equal("1000000000000000000000000000000000000",
        str(D("1000000000000000000.0000000000000000000") * "1000000000000000000.0000000000000000000"))
      assert.equal("33333333333333333333333333333333333333", str(decimal.div(MAX, 3, 0, "down")))
    end)

    it("rejects text beyond the limits", function()
      raises("more than 38 significant digits", D, MAX .. "9")
      raises("more than 38 significant digits", D, "1e38")
      raises("more than 38 decimal places", D, "1e-39")
    end)
  end)

  describe("conversion", function()
    it("tonumber gives a float, explicitly lossy", function()
      assert.equal(0.65, D("0.65"):tonumber())
      assert.equal("float", math.type(D("1"):tonumber()))
      assert.equal(-0.125, decimal.tonumber("-0.125"))
    end)

    it("has the polysim.Decimal type name", function()
      assert.equal("polysim.Decimal", getmetatable(D(1)).__name)
      assert.equal(decimal, getmetatable(D(1)).__index)
    end)

    it("goes into JSON as an exact string", function()
      assert.equal('{"price":"0.65","qty":"10.00"}',
        core.json_encode({ price = D("0.65"), qty = D("10.00") }, { sort_keys = true }))
    end)
  end)
end)
