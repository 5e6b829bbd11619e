-- WebSocket framing (src/ws.c): RFC 6455 §5.7 vectors, incremental parsing, every
-- protocol error class with its close code, UTF-8 edge cases, builders and the handshake.
-- luacheck: std +busted
local core = require "polysim.core"

local char, byte, rep, concat = string.char, string.byte, string.rep, table.concat

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x ", byte(c)) end))
end

-- Raw frame with any header bits, for frames the builders refuse to make.
-- b0: first byte (FIN/RSV/opcode); key: 4-byte mask or nil; len_override: header length
-- field to claim instead of #payload.
local function raw(b0, payload, key, len_override)
  local len = len_override or #payload
  local m = key and 0x80 or 0
  local h
  if len < 126 then
    h = char(b0, m | len)
  elseif len < 65536 then
    h = char(b0, m | 126) .. string.pack(">I2", len)
  else
    h = char(b0, m | 127) .. string.pack(">I8", len)
  end
  if key then
    local out = {}
    for i = 1, #payload do
      out[i] = char(byte(payload, i) ~ byte(key, (i - 1) % 4 + 1))
    end
    return h .. key .. concat(out)
  end
  return h .. payload
end

local function parser(role, max) return core.ws_parser { role = role, max_message = max } end

-- All events from feeding `stream` in one chunk (or in the given chunk sizes).
local function events(role, stream, max)
  local p = parser(role, max)
  local evs = p:feed(stream)
  p:close()
  return evs
end

local function feed_split(role, stream, sizes, max)
  local p = parser(role, max)
  local all, pos, k = {}, 1, 1
  while pos <= #stream do
    local n = sizes[(k - 1) % #sizes + 1]
    for _, ev in ipairs(p:feed(stream:sub(pos, pos + n - 1))) do all[#all + 1] = ev end
    pos, k = pos + n, k + 1
  end
  p:close()
  return all
end

local function the_error(role, stream, max)
  local evs = events(role, stream, max)
  assert.are.equal(1, #evs, "expected exactly one event")
  assert.are.equal("error", evs[1].type)
  return evs[1].code, evs[1].reason
end

local KEY = "\x37\xfa\x21\x3d"

describe("ws framing: RFC 6455 §5.7 examples", function()
  it("single-frame unmasked text 'Hello'", function()
    local wire = "\x81\x05\x48\x65\x6c\x6c\x6f"
    assert.are.equal(hex(wire), hex(core.ws_frame(1, "Hello")))
    assert.are.equal(hex(wire), hex(core.ws_frame("text", "Hello", true, nil)))
    assert.are.same({ { type = "text", data = "Hello" } }, events("client", wire))
  end)

  it("single-frame masked text 'Hello'", function()
    local wire = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert.are.equal(hex(wire), hex(core.ws_frame(1, "Hello", true, KEY)))
    assert.are.same({ { type = "text", data = "Hello" } }, events("server", wire))
  end)

  it("fragmented unmasked text 'Hel' + 'lo'", function()
    local f1, f2 = "\x01\x03\x48\x65\x6c", "\x80\x02\x6c\x6f"
    assert.are.equal(hex(f1), hex(core.ws_frame("text", "Hel", false)))
    assert.are.equal(hex(f2), hex(core.ws_frame("continuation", "lo", true)))
    assert.are.same({ { type = "text", data = "Hello" } }, events("client", f1 .. f2))
  end)

  it("unmasked ping and masked pong", function()
    local ping = "\x89\x05\x48\x65\x6c\x6c\x6f"
    local pong = "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert.are.equal(hex(ping), hex(core.ws_frame("ping", "Hello")))
    assert.are.equal(hex(pong), hex(core.ws_frame("pong", "Hello", true, KEY)))
    assert.are.same({ { type = "ping", data = "Hello" } }, events("client", ping))
    assert.are.same({ { type = "pong", data = "Hello" } }, events("server", pong))
  end)

  it("256 bytes binary in a single unmasked frame (16-bit length)", function()
    local data = rep("\xab", 256)
    local wire = core.ws_frame("binary", data)
    assert.are.equal(hex("\x82\x7e\x01\x00"), hex(wire:sub(1, 4)))
    assert.are.equal(4 + 256, #wire)
    assert.are.same({ { type = "binary", data = data } }, events("client", wire))
  end)

  it("64 KiB binary in a single unmasked frame (64-bit length)", function()
    local data = rep("0123456789abcdef", 4096)
    local wire = core.ws_frame("binary", data)
    assert.are.equal(hex("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), hex(wire:sub(1, 10)))
    assert.are.equal(10 + 65536, #wire)
    assert.are.same({ { type = "binary", data = data } }, events("client", wire))
  end)

  it("uses the minimal length encoding at 125/126/65535/65536", function()
    assert.are.equal(2 + 125, #core.ws_frame(2, rep("a", 125)))
    assert.are.equal(4 + 126, #core.ws_frame(2, rep("a", 126)))
    assert.are.equal(4 + 65535, #core.ws_frame(2, rep("a", 65535)))
    assert.are.equal(10 + 65536, #core.ws_frame(2, rep("a", 65536)))
    assert.are.equal(8 + 126, #core.ws_frame(2, rep("a", 126), true, KEY))
  end)
end)

-- A stream exercising most paths: fragments with an interleaved ping, 16-bit lengths,
-- empty frames, a multi-byte text split across fragments, and a final close.
local function sample_stream(mask)
  local function f(op, data, fin) return core.ws_frame(op, data, fin, mask and KEY or nil) end
  return concat {
    f("text", "Hello"),
    f("text", "Hel", false), f("ping", "p1"), f("continuation", "lo", true),
    f("binary", rep("\0\1\2\255", 100)),
    f("text", ""),
    f("binary", "", false), f("continuation", "", false), f("pong", ""),
    f("continuation", "x", true),
    f("text", "caf\xc3", false), f("continuation", "\xa9 \xf0\x9f", false),
    f("continuation", "\x98\x80!", true),
    f("binary", rep("z", 70000)),
    core.ws_close_frame(1000, "bye", mask and KEY or nil),
  }
end

local SAMPLE_EVENTS = {
  { type = "text", data = "Hello" },
  { type = "ping", data = "p1" },
  { type = "text", data = "Hello" },
  { type = "binary", data = rep("\0\1\2\255", 100) },
  { type = "text", data = "" },
  { type = "pong", data = "" },
  { type = "binary", data = "x" },
  { type = "text", data = "caf\xc3\xa9 \xf0\x9f\x98\x80!" },
  { type = "binary", data = rep("z", 70000) },
  { type = "close", code = 1000, reason = "bye" },
}

describe("ws parser: incremental feeding", function()
  for _, role in ipairs { "client", "server" } do
    local stream = sample_stream(role == "server")

    it(role .. ": one chunk gives the expected events", function()
      assert.are.same(SAMPLE_EVENTS, events(role, stream))
    end)

    it(role .. ": byte-by-byte feeding equals one chunk", function()
      assert.are.same(SAMPLE_EVENTS, feed_split(role, stream, { 1 }))
    end)

    it(role .. ": assorted split sizes equal one chunk", function()
      for _, sizes in ipairs { { 2 }, { 3, 1 }, { 7, 13, 1 }, { 125, 1, 4096 }, { 65536 } } do
        assert.are.same(SAMPLE_EVENTS, feed_split(role, stream, sizes))
      end
    end)
  end

  it("delivers control frames interleaved in a fragmented message in order", function()
    local stream = core.ws_frame("text", "Hel", false) .. core.ws_frame("ping", "are you there")
      .. core.ws_frame("pong", "") .. core.ws_frame("continuation", "lo")
    assert.are.same({
      { type = "ping", data = "are you there" },
      { type = "pong", data = "" },
      { type = "text", data = "Hello" },
    }, events("client", stream))
  end)

  it("reports nothing until a frame is complete, and keeps state across feeds", function()
    local p = parser("client")
    local wire = core.ws_frame("text", "Hello")
    assert.are.same({}, p:feed(wire:sub(1, 1)))
    assert.are.same({}, p:feed(""))
    assert.are.same({}, p:feed(wire:sub(2, 6)))
    assert.are.same({ { type = "text", data = "Hello" } }, p:feed(wire:sub(7) .. wire:sub(1, 3)))
    assert.are.same({ { type = "text", data = "Hello" } }, p:feed(wire:sub(4)))
    assert.are.equal("open", p:state())
    p:close()
  end)

  it("round-trips random payloads through the builders, masked and unmasked", function()
    math.randomseed(6455)
    for _ = 1, 40 do
      local n = ({ 0, 1, 125, 126, 127, 65535, 65536, 70001 })[math.random(8)]
      local t = {}
      for i = 1, n % 4096 do t[i] = char(math.random(0, 255)) end
      local data = rep(concat(t), n // math.max(1, n % 4096) + 1):sub(1, n)
      assert.are.same({ { type = "binary", data = data } },
        events("server", core.ws_frame(2, data, true, true)))
      assert.are.same({ { type = "binary", data = data } }, events("client", core.ws_frame(2, data)))
    end
  end)
end)

describe("ws parser: protocol errors", function()
  it("RSV bits set -> 1002", function()
    for _, rsv in ipairs { 0x40, 0x20, 0x10 } do
      assert.are.equal(1002, (the_error("client", raw(0x81 | rsv, "Hello"))))
    end
  end)

  it("unknown opcodes -> 1002", function()
    for _, op in ipairs { 3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF } do
      assert.are.equal(1002, (the_error("client", raw(0x80 | op, ""))))
    end
  end)

  it("masking wrong for the role -> 1002", function()
    local code, reason = the_error("client", core.ws_frame(1, "Hello", true, KEY))
    assert.are.equal(1002, code)
    assert.matches("masked", reason)
    code, reason = the_error("server", core.ws_frame(1, "Hello"))
    assert.are.equal(1002, code)
    assert.matches("unmasked", reason)
  end)

  it("continuation without a message -> 1002", function()
    assert.are.equal(1002, (the_error("client", core.ws_frame("continuation", "lo"))))
    -- also right after a complete message
    local evs = events("client", core.ws_frame("text", "a") .. core.ws_frame(0, "b"))
    assert.are.equal("text", evs[1].type)
    assert.are.same({ type = "error", code = 1002 }, { type = evs[2].type, code = evs[2].code })
  end)

  it("new data frame inside a fragmented message -> 1002", function()
    local evs = events("client", core.ws_frame("text", "Hel", false) .. core.ws_frame("text", "lo"))
    assert.are.equal(1, #evs)
    assert.are.equal(1002, evs[1].code)
    evs = events("client", core.ws_frame("binary", "a", false) .. core.ws_frame("text", "b", false))
    assert.are.equal(1002, evs[1].code)
  end)

  it("control frames: over 125 bytes or fragmented -> 1002", function()
    assert.are.equal(1002, (the_error("client", raw(0x89, rep("a", 126)))))
    assert.are.equal(1002, (the_error("client", raw(0x8a, rep("a", 200)))))
    assert.are.equal(1002, (the_error("client", raw(0x09, "ping"))))
    assert.are.equal(1002, (the_error("client", raw(0x08, ""))))
  end)

  it("64-bit length with the high bit set -> 1002, reported at the header", function()
    local hdr = "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01"
    assert.are.equal(1002, (the_error("client", hdr)))
    assert.are.equal(1002, (the_error("client", hdr .. "more bytes")))
  end)

  it("message over max_message -> 1009, before the payload arrives", function()
    -- the header alone is enough: a forged huge length allocates nothing
    local code = the_error("client", "\x82\x7f\x40\x00\x00\x00\x00\x00\x00\x00")
    assert.are.equal(1009, code)
    assert.are.equal(1009, (the_error("client", "\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x01")))
    assert.are.equal(1009, (the_error("client", raw(0x82, "", nil, 11), 10)))
    -- exactly max is fine
    assert.are.same({ { type = "binary", data = rep("a", 10) } },
      events("client", core.ws_frame(2, rep("a", 10)), 10))
  end)

  it("fragmented message growing over max_message -> 1009", function()
    local stream = core.ws_frame("text", rep("a", 6), false) .. core.ws_frame(0, rep("b", 4), false)
      .. core.ws_frame(0, "c")
    local evs = events("client", stream, 10)
    assert.are.equal(1, #evs)
    assert.are.equal("error", evs[1].type)
    assert.are.equal(1009, evs[1].code)
    -- control frames do not count towards the limit
    evs = events("client", core.ws_frame("text", rep("a", 10), false) .. core.ws_frame(9, rep("p", 100))
      .. core.ws_frame(0, ""), 10)
    assert.are.equal("ping", evs[1].type)
    assert.are.same({ type = "text", data = rep("a", 10) }, evs[2])
  end)

  it("1009 at the default max_message of 1 MiB", function()
    local big = rep("x", 1024 * 1024)
    assert.are.same({ { type = "binary", data = big } }, events("client", core.ws_frame(2, big)))
    assert.are.equal(1009, (the_error("client", core.ws_frame(2, big .. "x"))))
  end)

  it("close payload of one byte -> 1002", function()
    assert.are.equal(1002, (the_error("client", raw(0x88, "\x03"))))
  end)

  it("invalid close codes -> 1002; valid ones are reported", function()
    for _, code in ipairs { 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535 } do
      local c = the_error("client", raw(0x88, string.pack(">I2", code)))
      assert.are.equal(1002, c, "close code " .. code)
    end
    for _, code in ipairs { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
      1014, 3000, 3999, 4000, 4001, 4002, 4999 } do
      assert.are.same({ { type = "close", code = code, reason = "" } },
        events("client", raw(0x88, string.pack(">I2", code))))
    end
  end)

  it("close with no payload reports 1005, with a reason reports it", function()
    assert.are.same({ { type = "close", code = 1005, reason = "" } }, events("client", "\x88\x00"))
    assert.are.same({ { type = "close", code = 4001, reason = "token expired \xe2\x9c\x93" } },
      events("server", core.ws_close_frame(4001, "token expired \xe2\x9c\x93", KEY)))
  end)

  it("close reason that is not UTF-8 -> 1002", function()
    assert.are.equal(1002, (the_error("client", raw(0x88, "\x03\xe8\xff"))))
    assert.are.equal(1002, (the_error("client", raw(0x88, "\x03\xe8ok\xc3"))))
  end)

  it("ignores everything after an error or a close", function()
    local p = parser("client")
    local evs = p:feed(core.ws_frame("text", "a") .. raw(0xC1, "x") .. core.ws_frame("text", "b"))
    assert.are.equal(2, #evs)
    assert.are.equal("failed", p:state())
    assert.are.same({}, p:feed(core.ws_frame("text", "c")))
    p:close()

    p = parser("client")
    evs = p:feed(core.ws_close_frame(1000) .. core.ws_frame("text", "after"))
    assert.are.same({ { type = "close", code = 1000, reason = "" } }, evs)
    assert.are.equal("closed", p:state())
    assert.are.same({}, p:feed(core.ws_frame("ping", "")))
    p:close()
  end)

  it("every error event carries a reason usable in a close frame", function()
    for _, wire in ipairs { raw(0xC1, ""), raw(0x83, ""), raw(0x80, ""), raw(0x88, "\1"),
      raw(0x81, "\xff"), "\x82\x7f\x80\0\0\0\0\0\0\0" } do
      local code, reason = the_error("client", wire)
      assert.is_true(#reason > 0 and #reason <= 123)
      assert.is_string(core.ws_close_frame(code, reason))
    end
  end)
end)

describe("ws parser: UTF-8 in text messages", function()
  local function text_result(role, ...)
    local frames, n = {}, select("#", ...)
    for i = 1, n do
      frames[i] = core.ws_frame(i == 1 and "text" or "continuation", (select(i, ...)), i == n,
        role == "server" and KEY or nil)
    end
    return events(role, concat(frames))
  end

  local valid = {
    ["ASCII"] = "plain ascii",
    ["2-byte"] = "\xc2\xa9 \xdf\xbf",
    ["3-byte"] = "\xe2\x82\xac \xef\xbf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80",
    ["4-byte U+1F600"] = "\xf0\x9f\x98\x80",
    ["U+10000 and U+10FFFF"] = "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
    ["NUL"] = "a\0b",
  }
  for name, s in pairs(valid) do
    it("accepts " .. name, function()
      for _, role in ipairs { "client", "server" } do
        assert.are.same({ { type = "text", data = s } }, text_result(role, s))
      end
    end)
  end

  local invalid = {
    ["overlong 2-byte '/'"] = "\xc0\xaf",
    ["overlong C1"] = "\xc1\xbf",
    ["overlong 3-byte"] = "\xe0\x80\xaf",
    ["overlong 3-byte max"] = "\xe0\x9f\xbf",
    ["overlong 4-byte"] = "\xf0\x80\x80\xaf",
    ["overlong 4-byte max"] = "\xf0\x8f\xbf\xbf",
    ["high surrogate U+D800"] = "\xed\xa0\x80",
    ["low surrogate U+DFFF"] = "\xed\xbf\xbf",
    ["above U+10FFFF"] = "\xf4\x90\x80\x80",
    ["F5 lead byte"] = "\xf5\x80\x80\x80",
    ["FF byte"] = "ok\xff",
    ["lone continuation byte"] = "a\x80b",
    ["truncated at the end"] = "abc\xe2\x82",
    ["ASCII inside a sequence"] = "\xe2a\x82",
    ["invalid after a long ASCII run"] = rep("a", 1000) .. "\xc0\x80" .. rep("b", 10),
  }
  for name, s in pairs(invalid) do
    it("rejects " .. name .. " with 1007", function()
      for _, role in ipairs { "client", "server" } do
        local evs = text_result(role, s)
        assert.are.equal(1, #evs)
        assert.are.same({ "error", 1007 }, { evs[1].type, evs[1].code })
      end
    end)
  end

  it("accepts a 4-byte character split across fragments at every point", function()
    local s = "\xf0\x9f\x98\x80"
    for cut = 1, 3 do
      assert.are.same({ { type = "text", data = s } }, text_result("client", s:sub(1, cut), s:sub(cut + 1)))
    end
    assert.are.same({ { type = "text", data = s } }, text_result("server", "\xf0", "\x9f", "\x98", "\x80"))
  end)

  it("rejects an invalid sequence split across fragments", function()
    local evs = text_result("client", "ok\xed", "\xa0\x80")
    assert.are.same({ "error", 1007 }, { evs[1].type, evs[1].code })
    evs = text_result("client", "\xf0\x9f", "\x98")          -- truncated at the final fragment
    assert.are.same({ "error", 1007 }, { evs[1].type, evs[1].code })
  end)

  it("fails fast: invalid first fragment is reported before the message ends", function()
    local p = parser("client")
    local evs = p:feed(core.ws_frame("text", "\xff", false))
    assert.are.same({ "error", 1007 }, { evs[1] and evs[1].type, evs[1] and evs[1].code })
    p:close()
  end)

  it("does not check binary messages", function()
    assert.are.same({ { type = "binary", data = "\xff\xc0\x80" } },
      events("client", core.ws_frame("binary", "\xff\xc0\x80")))
  end)
end)

describe("ws frame builders", function()
  it("refuse frames that may not be sent", function()
    assert.has_error(function() core.ws_frame("ping", rep("a", 126)) end)
    assert.has_error(function() core.ws_frame("close", "", false) end)
    assert.has_error(function() core.ws_frame(3, "") end)
    assert.has_error(function() core.ws_frame("bogus", "") end)
    assert.has_error(function() core.ws_frame(1, "x", true, "abc") end)
  end)

  it("masks with a random key when mask is true", function()
    local a, b = core.ws_frame(1, rep("a", 32), true, true), core.ws_frame(1, rep("a", 32), true, true)
    assert.are.equal(0x80, byte(a, 2) & 0x80)
    assert.are_not.equal(a, b) -- 2^-32 chance of a false failure
    assert.are.same({ { type = "text", data = rep("a", 32) } }, events("server", a))
  end)

  it("builds close frames", function()
    assert.are.equal(hex("\x88\x00"), hex(core.ws_close_frame()))
    assert.are.equal(hex("\x88\x05\x03\xe8bye"), hex(core.ws_close_frame(1000, "bye")))
    assert.are.equal(hex("\x88\x82" .. KEY .. "\x34\x12"), hex(core.ws_close_frame(1000, nil, KEY)))
    assert.are.same({ { type = "close", code = 4002, reason = rep("r", 123) } },
      events("client", core.ws_close_frame(4002, rep("r", 123))))
    assert.has_error(function() core.ws_close_frame(1005) end)
    assert.has_error(function() core.ws_close_frame(65536 + 1000) end)
    assert.has_error(function() core.ws_close_frame(1000, rep("r", 124)) end)
    assert.has_error(function() core.ws_close_frame(1000, "\xff") end)
    assert.has_error(function() core.ws_close_frame(nil, "reason without code") end)
  end)
end)

describe("ws parser userdata", function()
  it("has a named metatable, __tostring, and an idempotent close", function()
    local p = parser("server", 100)
    assert.matches("^polysim.WsParser %(server, open%)", tostring(p))
    p:close()
    p:close()
    assert.matches("closed", tostring(p))
    assert.has_error(function() p:feed("") end)
    assert.has_error(function() p:state() end)
    local ok, err = pcall(core.ws_parser({}).feed, {}, "")
    assert.is_false(ok)
    assert.matches("polysim.WsParser expected", err)
  end)

  it("defaults to the client role and supports <close>", function()
    do
      local p <close> = core.ws_parser()
      assert.matches("client", tostring(p))
      assert.are.same({ { type = "text", data = "x" } }, p:feed(core.ws_frame(1, "x")))
    end
    collectgarbage()
  end)

  it("validates its options", function()
    assert.has_error(function() core.ws_parser { role = "peer" } end)
    assert.has_error(function() core.ws_parser { max_message = 0 } end)
    assert.has_error(function() core.ws_parser { max_message = 1.5 } end)
    assert.has_error(function() core.ws_parser "client" end)
  end)

  it("frees buffers when collected mid-message", function()
    for _ = 1, 20 do
      local p = parser("client")
      p:feed(core.ws_frame("binary", rep("a", 200000), false))
    end
    collectgarbage()
    collectgarbage()
  end)
end)

describe("ws handshake", function()
  it("computes the RFC 6455 example accept key", function()
    assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", core.ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
  end)

  it("builds the client request with a fresh 16-byte key", function()
    local req, key = core.ws_client_handshake("api.polysimulator.com", "/v1/ws/prices?token=abc")
    assert.matches("^[A-Za-z0-9+/]+==$", key)
    assert.are.equal(24, #key)
    assert.are.equal("GET /v1/ws/prices?token=abc HTTP/1.1\r\n", req:match("^[^\n]*\n"))
    assert.truthy(req:find("\r\nHost: api.polysimulator.com\r\n", 1, true))
    assert.truthy(req:find("\r\nUpgrade: websocket\r\n", 1, true))
    assert.truthy(req:find("\r\nConnection: Upgrade\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Key: " .. key .. "\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Version: 13\r\n", 1, true))
    assert.are.equal("\r\n\r\n", req:sub(-4))
    local _, key2 = core.ws_client_handshake("h", "/")
    assert.are_not.equal(key, key2)
  end)

  it("adds extra headers and refuses injection", function()
    local req = core.ws_client_handshake("localhost:8000", "/", { ["User-Agent"] = "polysim/0.1" })
    assert.truthy(req:find("\r\nUser-Agent: polysim/0.1\r\n\r\n", 1, true))
    assert.has_error(function() core.ws_client_handshake("h", "/", { ["X"] = "a\r\nEvil: 1" }) end)
    assert.has_error(function() core.ws_client_handshake("h", "/", { ["Bad Name"] = "v" }) end)
    assert.has_error(function() core.ws_client_handshake("h", "/", { host = "other" }) end)
    assert.has_error(function() core.ws_client_handshake("h\r\nX: y", "/") end)
    assert.has_error(function() core.ws_client_handshake("h", "/a b") end)
    assert.has_error(function() core.ws_client_handshake("h", "nopath") end)
  end)

  local KEY_RFC = "dGhlIHNhbXBsZSBub25jZQ=="
  local function response(lines)
    return "HTTP/1.1 101 Switching Protocols\r\n" .. concat(lines, "\r\n") .. "\r\n\r\n"
  end
  local GOOD = response {
    "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
  }

  it("accepts a good 101 and reports the header length", function()
    assert.are.same({ true, #GOOD }, { core.ws_check_handshake(GOOD, KEY_RFC) })
    local tolerant = response {
      "server: x", "upgrade:WebSocket", "connection: keep-alive, UPGRADE",
      "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  ", "Sec-WebSocket-Extensions:",
    }
    assert.are.same({ true, #tolerant }, { core.ws_check_handshake(tolerant, KEY_RFC) })
  end)

  it("preserves the bytes after the header as frame data", function()
    local frames = core.ws_frame("text", "first") .. core.ws_frame("ping", "")
    local data = GOOD .. frames
    local ok, hlen = core.ws_check_handshake(data, KEY_RFC)
    assert.is_true(ok)
    assert.are.equal(frames, data:sub(hlen + 1))
    assert.are.same({ { type = "text", data = "first" }, { type = "ping", data = "" } },
      events("client", data:sub(hlen + 1)))
  end)

  it("asks for more bytes while the header is incomplete", function()
    for cut = 0, #GOOD - 1 do
      assert.is_false(core.ws_check_handshake(GOOD:sub(1, cut), KEY_RFC))
    end
  end)

  it("rejects a wrong accept key", function()
    local ok, err, code, status = core.ws_check_handshake(GOOD, "AAAAAAAAAAAAAAAAAAAAAA==")
    assert.is_nil(ok)
    assert.matches("Sec%-WebSocket%-Accept", err)
    assert.are.equal("WS_HANDSHAKE", code)
    assert.are.equal(101, status)
  end)

  it("rejects a status other than 101 as soon as the status line is in", function()
    local ok, err, code, status = core.ws_check_handshake("HTTP/1.1 403 Forbidden\r\nCont", KEY_RFC)
    assert.is_nil(ok)
    assert.matches("101", err)
    assert.are.equal("WS_HANDSHAKE", code)
    assert.are.equal(403, status)
    local ok2, _, _, status2 = core.ws_check_handshake(GOOD:gsub("101 Switching", "200 OK"), KEY_RFC)
    assert.is_nil(ok2)
    assert.are.equal(200, status2)
  end)

  it("rejects missing or wrong Upgrade/Connection and other bad headers", function()
    local accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    local bad = {
      response { "Connection: Upgrade", accept },
      response { "Upgrade: h2c", "Connection: Upgrade", accept },
      response { "Upgrade: websocket", accept },
      response { "Upgrade: websocket", "Connection: keep-alive", accept },
      response { "Upgrade: websocket", "Connection: Upgrade" },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, accept },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: x" },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: p" },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, " folded" },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, "no colon" },
      response { "Upgrade: websocket", "Connection: Upgrade", accept, "Bad Name: v" },
      "HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" .. accept .. "\r\nX: a\rb\r\n\r\n",
      "HTTX/1.1 101 Switching Protocols\r\n\r\n",
      "HTTP/1.1 1O1 Switching Protocols\r\n\r\n",
      "SSH-2.0-OpenSSH\r\n",
    }
    for i, resp in ipairs(bad) do
      local ok, err, code = core.ws_check_handshake(resp, KEY_RFC)
      assert.is_nil(ok, "case " .. i)
      assert.is_string(err)
      assert.are.equal("WS_HANDSHAKE", code)
    end
    -- a bare status line with no reason phrase is fine
    local ok = core.ws_check_handshake("HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      .. accept .. "\r\n\r\n", KEY_RFC)
    assert.is_true(ok)
  end)

  it("refuses a header that never ends", function()
    local ok, err = core.ws_check_handshake("HTTP/1.1 101 OK\r\nX: " .. rep("a", 20000), KEY_RFC)
    assert.is_nil(ok)
    assert.matches("too large", err)
  end)
end)
