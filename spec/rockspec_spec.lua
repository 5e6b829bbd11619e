-- The rockspec is generated from the tree; this keeps the committed one in step, and
-- proves that `luarocks make` builds and installs a working module.
describe("rockspec", function()
  it("lists every Lua file and C source of the tree", function()
    local p = assert(io.popen("lua5.4 scripts/gen-rockspec.lua"))
    local fresh = p:read("a")
    p:close()
    local f = assert(io.open("rockspec/polysim-" .. require("polysim").VERSION .. "-1.rockspec"))
    local committed = f:read("a")
    f:close()
    assert.equal(fresh, committed, "run `make rockspec` and commit the result")
  end)

  it("builds and installs with luarocks make into a fresh tree", function()
    local tree = os.tmpname()
    os.remove(tree)
    local ok = os.execute("luarocks --lua-version=5.4 --tree=" .. tree ..
      " make rockspec/polysim-" .. require("polysim").VERSION .. "-1.rockspec > " .. tree .. ".log 2>&1")
    assert.is_true(ok, "luarocks make failed; see " .. tree .. ".log")
    local cmd = "cd / && LUA_PATH_5_4='" .. tree .. "/share/lua/5.4/?.lua;" .. tree ..
      "/share/lua/5.4/?/init.lua' LUA_CPATH_5_4='" .. tree .. "/lib/lua/5.4/?.so' " ..
      "lua5.4 -e 'print(require(\"polysim\").VERSION)'"
    local out = io.popen(cmd):read("a")
    os.execute("rm -rf " .. tree .. " " .. tree .. ".log; rm -rf src/*.o polysim") -- luarocks builds in place
    assert.equal(require("polysim").VERSION .. "\n", out)
  end)
end)
