-- The local exchange's front door under attack (issue 10 #5) and on a busy port (issue 11).
-- The attacker is spec/tools/frontdoor_attack.c, the exchange a process of its own, so the
-- attacker can block while the exchange keeps serving.

local BUILD = os.getenv "POLYSIM_BUILD" or "build"
local ATTACK = BUILD .. "/spec-tools/frontdoor_attack"
local have_cc = os.execute("mkdir -p " .. BUILD .. "/spec-tools && cc -std=c11 -O1 -o " .. ATTACK ..
  " spec/tools/frontdoor_attack.c 2>/dev/null")

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local kb = f:read("a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb)
end

local function start(args, keep_out)
  local out = os.tmpname()
  local pidfile = os.tmpname()
  os.execute(string.format("lua5.4 spec/tools/frontdoor_server.lua %s > %s 2>&1 & echo $! > %s",
    args or "", out, pidfile))
  local f = assert(io.open(pidfile))
  local pid = f:read("l")
  f:close()
  os.remove(pidfile)
  local port
  for _ = 1, 200 do
    f = io.open(out)
    local line = f and f:read("l")
    if f then f:close() end
    port = line and tonumber(line)
    if port then break end
    os.execute("sleep 0.05")
  end
  if not keep_out then os.remove(out) end
  assert(port, "the exchange did not start")
  return port, pid, out
end

local function attack(port, mode, n, secs)
  local p = assert(io.popen(string.format("%s %d %s %d %s", ATTACK, port, mode, n, secs)))
  local line = p:read("a")
  p:close()
  local opened, closed, health = line:match("opened (%d+) closed (%d+) health (%-?%d+)")
  assert(opened, "attacker said: " .. line)
  return tonumber(opened), tonumber(closed), tonumber(health)
end

describe("the front door", function()
  local port, pid
  after_each(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    pid = nil
  end)

  it("answers a health check while 1100 connections from one address hold partial requests", function()
    if not have_cc then return pending("needs cc for the attacker") end
    port, pid = start()
    local opened, closed, health = attack(port, "hold", 1100, 0.5)
    assert.are.equal(1100, opened)
    assert.are.equal(200, health)                -- failed before: no answer (MHD's 1020 limit)
    assert.is_true(closed >= 1100 - 256)         -- the per-address limit (256) turned the rest away
  end)

  it("closes slowloris connections at the header timeout", function()
    if not have_cc then return pending("needs cc for the attacker") end
    port, pid = start("header_timeout=1")
    local opened, closed, health = attack(port, "slow", 100, 2.5)
    assert.are.equal(100, opened)
    assert.are.equal(100, closed)                -- failed before: 0 closed (only an idle timeout)
    assert.are.equal(200, health)
  end)

  it("closes a WebSocket that floods pings and never reads with 1008; memory stays bounded", function()
    if not have_cc then return pending("needs cc for the attacker") end
    local out
    port, pid, out = start("ws", true)
    local before = rss_kb(pid)
    local p = assert(io.popen(string.format("%s %d wsping 64 10", ATTACK, port)))
    local line = p:read("a")
    p:close()
    local sent, closed, health = line:match("sent (%d+) closed (%d+) health (%-?%d+)")
    assert(sent, "attacker said: " .. line)
    local after = rss_kb(pid)
    local f = assert(io.open(out))
    local log = f:read("a")
    f:close()
    os.remove(out)
    assert.are.equal("1", closed)                -- failed before: 64 MiB of pings, never closed
    assert.truthy(log:find("closed 1008", 1, true), log)
    assert.are.equal("200", health)
    if before and after then assert.is_true(after - before < 16 * 1024, "RSS grew " .. (after - before) .. " kB") end
  end)

  it("honours per_ip", function()
    if not have_cc then return pending("needs cc for the attacker") end
    port, pid = start("per_ip=10")
    local opened, closed = attack(port, "hold", 30, 0.3)
    assert.are.equal(30, opened)
    assert.are.equal(20, closed)
  end)
end)

describe("a busy port", function()
  it("fails with 'address in use' instead of sharing the port", function()
    local serve = require "polysim.serve"
    local a = assert(serve.start { port = 0, tick = false })
    local b, err = serve.start { port = a.port, tick = false }
    a:close()
    if b then b:close() end
    assert.is_nil(b)                             -- failed before: SO_REUSEPORT bound it twice
    assert.matches("address in use", err, 1, true)
  end)

  it("frees the port on close", function()
    local serve = require "polysim.serve"
    local a = assert(serve.start { port = 0, tick = false })
    local p = a.port
    a:close()
    local b = assert(serve.start { port = p, tick = false })
    b:close()
  end)
end)

describe("core.siphash24", function()
  it("is SipHash-2-4 (the paper's vector) and agrees with the Lua version", function()
    local core = require "polysim.core"
    local sh = require "polysim.exchange.siphash"
    local key, msg = {}, {}
    for i = 0, 15 do key[#key + 1] = string.char(i) end
    for i = 0, 14 do msg[#msg + 1] = string.char(i) end
    local k0, k1 = string.unpack("<i8<i8", table.concat(key))
    assert.are.equal(string.format("%x", core.siphash24(k0, k1, table.concat(msg))), "a129ca6149be45e5")
    for n = 0, 40 do
      local s = core.random_bytes(n)
      assert.are.equal(sh.lua_hash(k0, n * 7919, s), core.siphash24(k0, n * 7919, s))
    end
  end)
end)

describe("core.uuid4", function()
  it("formats as the Lua version does, for any two integers", function()
    local core = require "polysim.core"
    local rng = require "polysim.exchange.rng"
    local r = rng.new(11)
    local edge = { 0, -1, 1, math.mininteger, math.maxinteger, 0x0123456789abcdef }
    for i = 1, 2000 do
      local a, b = edge[i], edge[#edge + 1 - i]
      if not a then a, b = r:next(), r:next() end
      local want = rng.uuid_text(a, b)
      assert.are.equal(want, core.uuid4(a, b))
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$", want)
    end
  end)
end)
