-- `make install` installs the embedding API: the header, the static library and polysim.pc,
-- so a program builds with `pkg-config --cflags --libs polysim` alone (issue 11). Installs
-- into a temporary PREFIX, compiles examples/embed/embed.c from there, and runs it briefly.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local have = sh("command -v pkg-config >/dev/null && command -v cc >/dev/null") == 0
-- The install runs as a user's would (H.MAKE: not with the flags of the make running this spec).
local MAKE = require("helper").MAKE

describe("make install (embedding)", function()
  local prefix = os.tmpname()
  os.remove(prefix)
  after_each(function() os.execute("rm -rf '" .. prefix .. "'") end)

  local test = have and it or pending
  test("installs polysim.h, libpolysim.a and polysim.pc; embed.c builds with pkg-config", function()
    local rc, out = sh(MAKE .. " install PREFIX='" .. prefix .. "'")
    assert.equal(0, rc, out)
    for _, f in ipairs { "/include/polysim.h", "/lib/libpolysim.a", "/lib/pkgconfig/polysim.pc" } do
      local fh = io.open(prefix .. f)
      assert.truthy(fh, f .. " not installed\n" .. out)
      fh:close()
    end
    local env = "PKG_CONFIG_PATH='" .. prefix .. "/lib/pkgconfig' "
    local flags
    rc, flags = sh(env .. "pkg-config --cflags --libs polysim")
    assert.equal(0, rc, flags)
    assert.truthy(flags:find("-lpolysim", 1, true), flags)
    assert.truthy(flags:find(prefix .. "/include", 1, true), flags)
    rc, out = sh("cc -std=c11 -o '" .. prefix .. "/embed' examples/embed/embed.c " .. flags:gsub("\n", ""))
    assert.equal(0, rc, out)
    -- The built program runs (the Lua files from this tree; no build path is compiled in).
    local _, ran = sh("POLYSIM_LUA_DIR=\"$PWD/lua\" '" .. prefix .. "/embed' examples/embed/strategy.lua 1")
    assert.truthy(ran:find("worst single polysim_host_step", 1, true), ran)
  end)

  -- Every Lua module is installed, sub-folders included (client/, strategy/, exchange/api/,
  -- backtest/, dashboard/, ui/): before, only lua/polysim/*.lua and exchange/*.lua were, and the
  -- installed command failed on its first require of a module in a folder.
  test("installs every Lua module: the installed polysim runs a strategy from another directory", function()
    local rc, out = sh(MAKE .. " install PREFIX='" .. prefix .. "'")
    assert.equal(0, rc, out)
    local n = 0
    local p = io.popen("cd lua && find polysim -name '*.lua'")
    for f in p:lines() do
      n = n + 1
      local fh = io.open(prefix .. "/share/lua/5.4/" .. f)
      assert.truthy(fh, f .. " not installed")
      fh:close()
    end
    p:close()
    assert.is_true(n > 50)
    -- the man page (issue 11): where man finds it, and the same as docs/polysim.1
    local man = io.open(prefix .. "/share/man/man1/polysim.1")
    assert.truthy(man, "share/man/man1/polysim.1 not installed")
    assert.equal(assert(io.open("docs/polysim.1")):read("a"), man:read("a"))
    man:close()
    local cwd = io.popen("pwd"):read("l")
    local _, ran = sh("cd /tmp && env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u POLYSIM_API_KEY LUA_CPATH_5_4='" ..
      prefix .. "/lib/lua/5.4/?.so;;' '" .. prefix .. "/bin/polysim' run '" .. cwd ..
      "/examples/mean_reversion.lua' --duration 1")
    assert.truthy(ran:find("stopped (duration)", 1, true), ran)
  end)
end)
