-- Memcheck on the paths a run ends through: a loop collected with Lua watches still open
-- (each watch was definitely lost at exit before l_gc freed them), and a short
-- `polysim run` on the in-process exchange. Only "definite" leaks and memory errors count:
-- Lua and libcurl keep process-lifetime allocations that valgrind calls "possibly lost" or
-- "still reachable". Pending without valgrind. `make valgrind` runs the C tests too.
local have = os.execute("command -v valgrind > /dev/null 2>&1")
local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
-- memcheck cannot run a sanitizer build (make asan runs this file with its own polysim)
local sanitized = os.execute("ldd " .. EXE .. " 2>/dev/null | grep -q libasan")
local VG = "valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("a")
  local ok, _, code = p:close()
  return ok, code, text
end

describe("under valgrind", function()
  if not have then
    pending("valgrind is not installed")
    return
  end
  if sanitized then
    pending("the polysim under test is an ASan build (memcheck cannot run it)")
    return
  end

  it("a loop dropped with watches open loses no memory", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local core = require "polysim.core"
      local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir " .. dir))
      local loop = core.loop()
      local ws = {}
      for i = 1, 3 do
        ws[i] = assert(core.fswatch())
        loop:watch(ws[i]:fd(), "r", function() end)
      end
      loop = nil
      collectgarbage(); collectgarbage()
      os.execute("rmdir " .. dir)
    ]])
    f:close()
    local ok, code, text = sh(VG .. EXE .. " exec " .. script)
    os.remove(script)
    assert.truthy(ok, ("exit %s:\n%s"):format(tostring(code), text))
  end)

  it("a short polysim run on the in-process exchange loses no memory", function()
    local ok, code, text = sh(VG .. EXE .. " run examples/mean_reversion.lua --duration 2 --quiet")
    assert.truthy(ok, ("exit %s:\n%s"):format(tostring(code), text))
  end)
end)
