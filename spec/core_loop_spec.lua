-- The C loop's error containment (issue 8 bug 2): a callback's error goes to that
-- callback's own handler, else to loop:on_error, else to stderr; it never comes out of an
-- unrelated step() (where it used to be raised, losing e.g. a blocking call's answer).
local core = require "polysim.core"
local H = require "helper"

local loop = core.loop()

local function step_until(cond, limit)
  local deadline = core.monotime() + (limit or 5)
  while not cond() and core.monotime() < deadline do loop:step(0.02) end
  return cond()
end

describe("core loop callback errors", function()
  local saved
  before_each(function() saved = loop:on_error(function(e) error("unexpected: " .. tostring(e)) end) end)
  after_each(function() loop:on_error(saved) end)

  it("hands a failing timer's error to its own handler; step() returns normally", function()
    local got = {}
    loop:timer(0, function() error("timer boom") end, function(e) got[#got + 1] = e end)
    local ran = 0
    loop:timer(0, function() ran = ran + 1 end)
    assert.has_no.errors(function() step_until(function() return #got == 1 and ran == 1 end) end)
    assert.equal(1, #got)
    assert.matches("timer boom", got[1])
    assert.matches("traceback", got[1])
    assert.equal(1, ran)
  end)

  it("sends errors of callbacks without a handler to loop:on_error, which can be replaced", function()
    local got = {}
    local prev = loop:on_error(function(e) got[#got + 1] = e end)
    assert.is_function(prev)
    loop:timer(0, function() error({ code = "OBJ" }) end)
    step_until(function() return #got == 1 end)
    assert.same({ code = "OBJ" }, got[1]) -- error objects pass through unchanged
  end)

  it("does not let a timer's error escape from a blocking request's step and lose its answer", function()
    local server = H.fixture(function() return { status = 200, body = "answer", delay = 0.05 } end)
    local errors, resp = {}, nil
    loop:on_error(function(e) errors[#errors + 1] = e end)
    core.request { url = H.url(server), on_done = function(t) resp = t:result() end }
    loop:timer(0, function() error("unrelated") end)
    local ok = pcall(step_until, function() return resp ~= nil end)
    server:close()
    assert.is_true(ok)
    assert.equal("answer", resp.body)
    assert.equal(1, #errors)
    assert.matches("unrelated", errors[1])
  end)

  it("gives a transfer's on_done error to the request's on_error", function()
    local server = H.fixture(function() return { status = 200, body = "x" } end)
    local got
    core.request { url = H.url(server), on_done = function() error("done boom") end,
      on_error = function(e) got = e end }
    step_until(function() return got ~= nil end)
    server:close()
    assert.matches("done boom", got)
  end)

  it("gives a watch callback's error to the watch's handler", function()
    local got, calls = nil, 0
    -- An inotify descriptor made readable by a write: stdout may be a regular file (CI
    -- redirects it), which epoll refuses.
    local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir " .. dir))
    local w = assert(core.fswatch())
    assert(w:add(dir))
    local id = loop:watch(w:fd(), "r", function() calls = calls + 1; error("watch boom") end,
      function(e) got = e end)
    local f = assert(io.open(dir .. "/touch", "w")); f:write("x"); f:close()
    step_until(function() return got ~= nil end)
    loop:cancel(id)
    w:close(); os.remove(dir .. "/touch"); os.remove(dir)
    assert.matches("watch boom", got)
    assert.is_true(calls >= 1)
  end)

  it("prints an unhandled error on stderr when no handler is set", function()
    local exe = os.getenv("POLYSIM_EXE")
    local cmd = exe and (exe .. " exec") or "lua5.4"
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local core = require "polysim.core"
      local loop = core.loop()
      loop:on_error(nil)
      local after = false
      loop:timer(0, function() error("nobody listens") end)
      loop:timer(0, function() after = true end)
      for _ = 1, 5 do loop:step(0) end
      io.stdout:write(after and "stepped-on\n" or "stuck\n")
    ]])
    f:close()
    local p = io.popen(cmd .. " " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.matches("loop callback failed: .*nobody listens", out)
    assert.matches("stepped%-on", out)
  end)
end)
