-- Issue 10 item 4: curl re-sends a request by itself when it went out on a kept-alive
-- connection that died before any answer byte. A raw server (socat, one Lua process per
-- connection, no HTTP library) answers the first request of every connection and, on a
-- reused connection, records the request and hangs up without answering: the answer is lost.
-- Counting requests server-side shows curl's silent re-send, and that fresh=true stops it.
local core = require "polysim.core"
local H = require "helper"

local CONN = [[
local log = assert(io.open(arg[1], "a"))
local n = 0
while true do
  local line = io.read("l")
  if not line then break end
  local method = line:match("^(%u+) ")
  local len = 0
  for h in function() return io.read("l") end do
    if h == "\r" or h == "" then break end
    local v = h:lower():match("^content%-length:%s*(%d+)")
    if v then len = tonumber(v) end
  end
  if len > 0 then io.read(len) end
  n = n + 1
  log:write(method, " ", n, "\n")
  log:flush()
  if n > 1 then break end                       -- a reused connection: drop the answer
  io.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
  io.flush()
end
]]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  return p:close(), out
end

describe("fresh=true (issue 10 item 4)", function()
  if not sh("command -v socat >/dev/null") then
    it("needs socat", function() pending("socat is not installed") end)
    return
  end
  local loop = core.loop()
  local dir, port, pid, logfile

  local function wait(t)
    local deadline = core.monotime() + 10
    while not t:done() and core.monotime() < deadline do loop:step(0.05) end
    assert(t:done(), "transfer did not finish")
    return t:result()
  end

  local function posts()
    local f = io.open(logfile)
    if not f then return 0 end
    local n = 0
    for l in f:lines() do if l:match("^POST") then n = n + 1 end end
    f:close()
    return n
  end

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/conn.lua", "w"))
    f:write(CONN)
    f:close()
    local probe = H.fixture(function() return { status = 200 } end)
    port = probe:port()
    probe:close()
    local lua = os.getenv("LUA") or "lua5.4"
    local ok, out = sh(("socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork " ..
      "EXEC:'%s %s/conn.lua %s/log' >%s/socat.log 2>&1 & echo $!"):format(port, lua, dir, dir, dir))
    assert(ok, out)
    pid = out:match("%d+")
    -- Until socat listens: a GET on a connection of its own.
    local deadline = core.monotime() + 10
    repeat
      local r = wait(core.request { url = "http://127.0.0.1:" .. port .. "/ready", fresh = true })
    until (r and r.status == 200) or core.monotime() > deadline
  end)
  teardown(function()
    if pid then os.execute("kill " .. pid) end
    os.execute("rm -rf " .. dir)
  end)
  before_each(function()
    logfile = dir .. "/log" -- counts are taken as differences
  end)

  local function url(p) return "http://127.0.0.1:" .. port .. p end

  it("without it, a POST on a kept-alive connection whose answer is lost is sent twice", function()
    assert.equal(200, assert(wait(core.request { url = url("/warm") })).status) -- a connection to reuse
    local before = posts()
    local r = wait(core.request { method = "POST", url = url("/keys"), body = "{}" })
    -- The server got it twice: curl re-sent it on a new connection, which answered.
    assert.equal(2, posts() - before)
    assert.equal(200, r.status)
  end)

  it("with it, the POST goes out once, on a connection of its own", function()
    assert.equal(200, assert(wait(core.request { url = url("/warm") })).status)
    local before = posts()
    for _ = 1, 3 do
      local r = assert(wait(core.request { method = "POST", url = url("/keys"), body = "{}", fresh = true }))
      assert.equal(200, r.status)
      assert.equal(1, r.connects)
    end
    assert.equal(3, posts() - before)
  end)
end)
