-- core.decode_error straight from C (no HTTP): bodies that stress its string building.
local core = require "polysim.core"
local json = require("polysim").json

describe("core.decode_error", function()
  -- Bug (issue 8.1): push_validation_message left values on the stack between luaL_Buffer
  -- calls; past LUAL_BUFFERSIZE the buffer box moved and the message was read from freed
  -- memory (garbage, a crash under ASan, or "attempt to index a nil value").
  it("builds a 422 message from a 3 KB msg intact", function()
    local msg = ("m"):rep(3000)
    local body = json.encode { detail = { { loc = { "body", "price" }, msg = msg, type = "x" } } }
    local err = core.decode_error(422, {}, body)
    assert.equal("VALIDATION_ERROR", err.code)
    assert.equal("body.price: " .. msg, err.message)
  end)

  it("builds a 422 message from five 300-byte locs", function()
    local detail, want = {}, {}
    for i = 1, 5 do
      local loc = { "body", ("l" .. i):rep(150) }
      detail[i] = { loc = loc, msg = "bad " .. i, type = "x" }
      want[i] = "body." .. loc[2] .. ": bad " .. i
    end
    local err = core.decode_error(422, {}, json.encode { detail = detail, extra = 1 })
    assert.equal(table.concat(want, "; "), err.message)
  end)

  it("keeps numeric loc parts and elides past five items", function()
    local detail = {}
    for i = 1, 7 do detail[i] = { loc = { "body", i }, msg = ("x"):rep(900) } end
    local err = core.decode_error(422, {}, json.encode { detail = detail })
    assert.matches("^body%.1: x+; body%.2: ", err.message)
    assert.matches("; %.%.%.$", err.message)
    assert.equal(5 * (#"body.1: " + 900) + 4 * 2 + #"; ...", #err.message)
  end)

  it("formats a long non-JSON body and a long tostring without corruption", function()
    local err = core.decode_error(502, {}, ("<html>"):rep(1000), ("M"):rep(3000), ("/p"):rep(2000))
    assert.matches("^HTTP 502 with a non%-JSON body: <html>", err.message)
    local s = tostring(err)
    assert.truthy(s:find(("M"):rep(3000) .. " " .. ("/p"):rep(2000), 1, true))
  end)
end)
