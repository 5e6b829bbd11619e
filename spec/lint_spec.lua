-- The Lua code stays luacheck clean (no globals, no unused values): checked on every run.
describe("luacheck", function()
  it("finds nothing in lua/, spec/, bench/ and examples/", function()
    local p = assert(io.popen("luacheck -q --no-color --formatter plain lua spec bench examples 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, "luacheck:\n" .. out)
  end)
end)
