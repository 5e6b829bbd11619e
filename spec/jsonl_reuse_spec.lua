-- The recording reader reuses what repeats from line to line (issue 12): long strings (market
-- ids) come from a per-reader cache, objects are made at the size the last one at their depth
-- had. Neither may change a value: every msg must be what core.json_decode makes of it, line
-- after line, whatever the shapes and however many ids share a cache slot.
local core = require "polysim.core"
local decode, encode = core.json_decode, core.json_encode

local function sorted(v) return encode(v, { sort_keys = true }) end

describe("jsonl reader reuse", function()
  it("gives each line's msg exactly as json_decode does, across ids and changing shapes", function()
    local ids, lines = {}, {}
    for k = 1, 600 do ids[k] = "0x" .. string.format("%064x", k * 7919) end -- 600 ids > the 256 slots
    for i = 1, 3000 do
      local id = ids[(i * 37) % #ids + 1]
      local msg
      if i % 3 == 0 then
        msg = string.format('{"type":"price","market_id":"%s","buy":"0.%02d"}', id, i % 100)
      elseif i % 3 == 1 then
        msg = string.format('{"type":"price","market_id":"%s","buy":"0.%02d","sell":"0.5","volume":"12",' ..
          '"outcomes":[{"label":"Yes","price":"0.%02d","note":"%s"},{"label":"No","price":"0.5"}],' ..
          '"extra":{"a":{"b":{"c":"%s"}}},"updated_at":"2027-01-01T00:00:00Z"}', id, i % 100, i % 100, id, id)
      else
        msg = string.format('{"market_id":"%s","type":"price","buy":"0.1","buy":"0.%02d","o":{}}', id, i % 100)
      end
      lines[i] = string.format('{"type":"price","t":%d,"msg":%s}', 1800000000 + i, msg)
    end
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local r = assert(core.jsonl_open(path))
    for i = 1, #lines do
      local kind, n, t, msg = r:next()
      assert.equal("price", kind)
      assert.equal(i, n)
      local want = decode(lines[i])
      assert.equal(want.t, t)
      if sorted(msg) ~= sorted(want.msg) then
        assert.equal(sorted(want.msg), sorted(msg)) -- the line that differs, shown
      end
      assert.equal(want.msg.market_id, msg.market_id)
    end
    assert.is_nil(r:next())
    r:close()
    os.remove(path)
  end)
end)
