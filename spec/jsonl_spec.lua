-- The backtest's recording reader (src/jsonl.c, core.jsonl_open) and the decoder's float fast
-- path (src/json.c): what they return must be what f:lines + core.json_decode return.
local core = require "polysim.core"
local decode, encode = core.json_decode, core.json_encode

local function sorted(v) return encode(v, { sort_keys = true }) end

local function write(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- Every result of a reader over text, as {kind, n, a, b} lists.
local function read_all(text)
  local path = write(text)
  local r = assert(core.jsonl_open(path))
  local out = {}
  while true do
    local kind, n, a, b = r:next()
    if kind == nil then break end
    out[#out + 1] = { kind, n, a, b }
    if kind == false then break end
  end
  local bytes = r:bytes()
  r:close()
  os.remove(path)
  return out, bytes
end

describe("jsonl reader", function()
  it("returns a price record's t and msg without the record, as json_decode decodes them", function()
    local line = '{"type":"price","t":1800000000.01,"msg":{"type":"price","market_id":"0xab","buy":"0.52",' ..
      '"outcomes":[{"label":"Yes","price":"0.52"},{"label":"No","price":"0.48"}]}}'
    local out = read_all(line .. "\n")
    assert.equal(1, #out)
    assert.equal("price", out[1][1])
    assert.equal(1, out[1][2])
    local rec = decode(line)
    assert.equal(rec.t, out[1][3])
    assert.equal(sorted(rec.msg), sorted(out[1][4]))
    assert.equal(core.array_mt, getmetatable(out[1][4].outcomes))
  end)

  it("takes the keys of a price record in any order, with whitespace", function()
    local out = read_all('{ "msg" : {"market_id":"m"} , "t" : 5, "type" : "price" }\n')
    assert.same({ "price", 1, 5, { market_id = "m" } }, out[1])
    assert.equal("integer", math.type(out[1][3]))
  end)

  it("returns any other line whole: other types, extra or repeated keys, a msg that is no object", function()
    local lines = {
      '{"type":"market","t":1,"market":{"condition_id":"a"}}',
      '{"type":"price","t":1,"msg":{"market_id":"m"},"extra":true}',
      '{"type":"price","t":1,"t":2,"msg":{}}',
      '{"type":"price","t":1,"msg":[1]}',
      '{"type":"book","t":"1","msg":{}}',
      '{"typ\\u0065":"price","t":1,"msg":{}}',
      '[1,2]',
      '"price"',
    }
    local out = read_all(table.concat(lines, "\n") .. "\n")
    assert.equal(#lines, #out)
    for i, line in ipairs(lines) do
      assert.equal("record", out[i][1], line)
      assert.equal(i, out[i][2])
      assert.equal(sorted(decode(line)), sorted(out[i][3]), line)
    end
  end)

  it("keeps json_decode's nesting limit for a price record's msg", function()
    local function rec(depth) -- the record itself is one level: msg and what it holds the rest
      return '{"type":"price","t":1,"msg":' .. string.rep("[", depth - 2) .. "{}" .. string.rep("]", depth - 2) .. "}"
    end
    for _, depth in ipairs { 199, 200, 201, 202 } do
      local line = rec(depth)
      local v, err = decode(line)
      local out = read_all(line .. "\n")
      if v == nil then
        assert.same({ false, 1, err, true }, out[1])
      else
        assert.equal("record", out[1][1]) -- msg is no object here: the ordinary decode
      end
    end
    -- record, msg and 198 arrays: 200 levels, the limit; one more is too deep either way
    local deep = '{"type":"price","t":1,"msg":{"a":' .. string.rep("[", 198) .. string.rep("]", 198) .. '}}'
    assert.is_table(decode(deep))
    assert.equal("price", read_all(deep .. "\n")[1][1])
    deep = '{"type":"price","t":1,"msg":{"a":' .. string.rep("[", 199) .. string.rep("]", 199) .. '}}'
    local v, err = decode(deep)
    assert.is_nil(v)
    assert.same({ false, 1, err, true }, read_all(deep .. "\n")[1])
  end)

  it("skips blank lines but counts them, and counts the bytes of every line", function()
    local text = '{"a":1}\n\n\r\n{"type":"price","t":2,"msg":{}}\r\n'
    local out, bytes = read_all(text)
    assert.equal(2, #out)
    assert.same({ "record", 1, { a = 1 } }, { out[1][1], out[1][2], out[1][3] })
    assert.equal("price", out[2][1])
    assert.equal(4, out[2][2])
    assert.equal(#text, bytes)
  end)

  it("returns a last line without its newline, and says when a bad line was cut short", function()
    local out = read_all('{"a":1}\n{"b":2}')
    assert.equal(2, #out)
    assert.same({ b = 2 }, out[2][3])
    out = read_all('{"a":1}\n{"type":"price","t":')
    assert.same({ false, 2 }, { out[2][1], out[2][2] })
    assert.matches("^bad JSON at byte %d+: ", out[2][3])
    assert.is_false(out[2][4])
    out = read_all('{"a":1}\n{"a":\n{"b":2}\n')
    assert.same({ false, 2 }, { out[2][1], out[2][2] })
    assert.is_true(out[2][4])
  end)

  it("reads lines longer than its block, and many lines across block boundaries", function()
    local big = string.rep("x", 700 * 1024)
    local parts = {}
    for i = 1, 20000 do parts[i] = '{"type":"price","t":' .. i .. ',"msg":{"i":' .. i .. '}}' end
    parts[#parts + 1] = encode { s = big }
    parts[#parts + 1] = '{"type":"price","t":0.5,"msg":{"i":0}}'
    local out = read_all(table.concat(parts, "\n") .. "\n")
    assert.equal(#parts, #out)
    for i = 1, 20000 do
      assert.equal(i, out[i][3])
      assert.equal(i, out[i][4].i)
    end
    assert.equal(#big, #out[20001][3].s)
    assert.same({ "price", 20002, 0.5, { i = 0 } }, out[20002])
  end)

  it("fails to open a missing file with its name, and refuses calls once closed", function()
    local r, err = core.jsonl_open("/nonexistent/rec.jsonl")
    assert.is_nil(r)
    assert.matches("^/nonexistent/rec.jsonl: ", err)
    local path = write("{}\n")
    r = assert(core.jsonl_open(path))
    r:close()
    r:close()
    assert.has_error(function() r:next() end)
    os.remove(path)
  end)
end)

describe("json float fast path", function()
  it("gives strtod's double, bit for bit", function()
    local cases = { "0.5", "0.01", "1800000000.01", "-0.0", "1e22", "1e23", "1.25e-3", "0.000123",
      "123456789012345.6", "1234567890123456.7", "9007199254740993.0", "1.7976931348623157e308",
      "4.9e-324", "0.1e-22", "0.30000000000000004", "5e-22", "1E+2", "-12.5E-1", "0.0" }
    math.randomseed(12)
    for _ = 1, 5000 do
      local digits = math.random(1, 17)
      local s = tostring(math.random(0, 9))
      for _ = 2, digits do s = s .. math.random(0, 9) end
      local dot = math.random(1, #s)
      s = s:sub(1, dot) .. "." .. s:sub(dot + 1) .. "0"
      if math.random() < 0.3 then s = s .. "e" .. math.random(-30, 30) end
      cases[#cases + 1] = (math.random() < 0.5 and "-" or "") .. s:gsub("^0+(%d)", "%1")
    end
    for _, s in ipairs(cases) do
      local v = decode(s)
      assert(math.type(v) == "float", s)
      assert(string.pack("d", v) == string.pack("d", tonumber(s)), s)
    end
  end)
end)
