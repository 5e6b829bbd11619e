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

describe("make install (embedding)", function()
  local prefix = os.tmpname()
  os.remove(prefix)
  after_each(function() os.execute("rm -rf '" .. prefix .. "'") end)

  local test = have and it or pending
  test("installs polysim.h, libpolysim.a and polysim.pc; embed.c builds with pkg-config", function()
    local rc, out = sh("make -s install PREFIX='" .. prefix .. "'")
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
end)
