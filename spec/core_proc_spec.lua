-- core.spawn / wait / kill / rusage / exe_path / ncpu (src/proc.c) and core.cwd / listdir /
-- isdir / mkdir_p (src/fs.c): what `polysim backtest --sweep` runs its workers with.
local core = require "polysim.core"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("core child processes", function()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(core.mkdir_p(dir))
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("runs argv without a shell, stdout and stderr to files, and reports the exit status", function()
    local pid = assert(core.spawn({ "/bin/sh", "-c", "echo out; echo err >&2; exit 7" },
      { stdout = dir .. "/o", stderr = dir .. "/e" }))
    assert.equal(7, core.wait(pid))
    assert.equal("out\n", slurp(dir .. "/o"))
    assert.equal("err\n", slurp(dir .. "/e"))
    -- an argument with shell syntax in it reaches the program as one string
    pid = assert(core.spawn({ "printf", "%s|", "a b", "$(id)", "';'" }, { stdout = dir .. "/p" }))
    assert.equal(0, core.wait(pid))
    assert.equal("a b|$(id)|';'|", slurp(dir .. "/p"))
  end)

  it("gives stdin /dev/null, and a child killed by a signal 128 + its number", function()
    local pid = assert(core.spawn({ "cat" }, { stdout = dir .. "/c" }))
    assert.equal(0, core.wait(pid))
    assert.equal("", slurp(dir .. "/c"))
    pid = assert(core.spawn({ "sleep", "30" }))
    assert.is_nil(core.wait(pid, true))                 -- still running
    assert.truthy(core.kill(pid, "TERM"))
    local code, sig = core.wait(pid)
    assert.equal(128 + 15, code)
    assert.equal(15, sig)
  end)

  it("returns nil and a message for a program that does not exist; raises on bad arguments", function()
    local pid, err = core.spawn({ dir .. "/no-such-program" })
    assert.is_nil(pid)
    assert.truthy(err:find("no-such-program", 1, true), err)
    assert.has_error(function() core.spawn({}) end)
    assert.has_error(function() core.spawn({ "true", 3 }) end)
    assert.has_error(function() core.spawn({ "true" }, { stdout = 1 }) end)
    assert.has_error(function() core.wait(0) end)
    assert.has_error(function() core.wait(1) end)       -- not our child
  end)

  it("counts the children's CPU once they are waited for; knows its executable and cores", function()
    local before = core.rusage("children")
    local pid = assert(core.spawn({ "/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done" }))
    assert.equal(0, core.wait(pid))
    local after = core.rusage("children")
    assert.truthy(after.user + after.sys > before.user + before.sys)
    assert.truthy(core.rusage("self").maxrss > 0)
    local exe = assert(core.exe_path())
    assert.equal("/", exe:sub(1, 1))
    assert.truthy(core.ncpu() >= 1)
  end)
end)

describe("core file-system calls", function()
  it("mkdir_p, isdir, listdir (sorted) and cwd", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(core.mkdir_p(dir .. "/b/x/"))
    assert(core.mkdir_p(dir .. "/a"))
    assert(core.mkdir_p(dir .. "/a"))                  -- already there: fine
    local f = assert(io.open(dir .. "/c", "w"))
    f:close()
    assert.same({ "a", "b", "c" }, core.listdir(dir))
    assert.truthy(core.isdir(dir .. "/b/x"))
    assert.falsy(core.isdir(dir .. "/c"))
    local ok, err = core.mkdir_p(dir .. "/c/d")
    assert.is_nil(ok)
    assert.truthy(err:find("Not a directory", 1, true), err)
    local none, why = core.listdir(dir .. "/zzz")
    assert.is_nil(none)
    assert.truthy(why:find("zzz", 1, true))
    assert.equal("/", core.cwd():sub(1, 1))
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
