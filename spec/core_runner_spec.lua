-- spec/run.lua's C-test part (issue 8 bug 6): the build directory is passed through, and a
-- missing or empty test directory is a failure, never "0 failed".
-- The interpreter of this run: the (maybe ASan-linked) polysim under make, else lua5.4.
local lua = os.getenv("POLYSIM_EXE") and (os.getenv("POLYSIM_EXE") .. " exec") or "lua5.4"

local function run(dir)
  local p = io.popen(string.format("%s spec/run.lua --c-only --build=%q 2>&1", lua, dir))
  local out = p:read("a")
  local ok = p:close()
  return ok, out:match("([^\n]*)\n?$"), out
end

local function tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

describe("spec/run.lua", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function add_test(name, script)
    os.execute("mkdir -p '" .. dir .. "/tests'")
    local f = assert(io.open(dir .. "/tests/" .. name, "w"))
    f:write("#!/bin/sh\n", script, "\n")
    f:close()
    os.execute("chmod +x '" .. dir .. "/tests/" .. name .. "'")
  end

  it("fails when the build has no tests directory", function()
    local ok, last, out = run(dir)
    assert.falsy(ok)
    assert.equal("0 passed, 1 failed, 0 skipped", last)
    assert.matches("no C tests in", out)
  end)

  it("fails when the tests directory is empty", function()
    os.execute("mkdir -p '" .. dir .. "/tests'")
    local ok, last = run(dir)
    assert.falsy(ok)
    assert.equal("0 passed, 1 failed, 0 skipped", last)
  end)

  it("runs the tests of the given build and folds their counts", function()
    add_test("a", 'echo "hello"; echo "3 passed, 0 failed"')
    add_test("b", 'echo "1 passed, 0 failed, 2 skipped"')
    local ok, last, out = run(dir)
    assert.truthy(ok)
    assert.equal("4 passed, 0 failed, 2 skipped", last)
    assert.matches("hello", out)
  end)

  it("counts a test that exits non-zero with no failures as failed", function()
    add_test("a", 'echo "3 passed, 0 failed"; exit 1')
    add_test("b", 'echo "no count"')
    local ok, last = run(dir)
    assert.falsy(ok)
    assert.equal("3 passed, 2 failed, 0 skipped", last)
  end)
end)

-- The specs of a run load the core of the build under test: under `make asan` the ASan build's
-- core.so, under `make coverage` the counted one. .busted's cpath (build/lib, for a plain
-- `busted`) came first before run.lua named the build, so those runs tested the plain build.
describe("the build under test", function()
  it("is the one whose core.so this process loaded", function()
    local exe = os.getenv("POLYSIM_EXE")
    if not exe then pending("POLYSIM_EXE is not set (run through make)") return end
    local function real(p)
      local h = io.popen("realpath -m '" .. p:gsub("'", "'\\''") .. "'")
      local r = h:read("l")
      h:close()
      return r
    end
    local loaded = package.searchpath("polysim.core", package.cpath)
    assert.truthy(loaded, "polysim.core is not on package.cpath")
    local build = exe:match("^(.*)/bin/[^/]+$")
    assert.equal(real(build .. "/lib/polysim/core.so"), real(loaded))
  end)

  it("runs the specs in the interpreter spec/run.lua was given (make asan: the ASan polysim)", function()
    local want = os.getenv("POLYSIM_SPEC_LUA")
    if not want then pending("not run through spec/run.lua") return end
    local exe = want:match("^(%S+)")
    local h = io.popen("command -v '" .. exe .. "' || echo '" .. exe .. "'")
    local path = h:read("l")
    h:close()
    h = io.popen("realpath '" .. path .. "'")
    local expected = h:read("l")
    h:close()
    local f = io.open("/proc/self/stat")
    local pid = f:read("l"):match("^(%d+)")       -- this busted process (self, opened from Lua)
    f:close()
    h = io.popen("readlink /proc/" .. pid .. "/exe")
    local ran = h:read("l")
    h:close()
    assert.equal(expected, ran)
  end)
end)
