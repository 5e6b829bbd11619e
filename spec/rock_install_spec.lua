-- The rock as a user installs it (issue 11, cli): `luarocks make` into a fresh tree installs
-- a `polysim` command that runs a strategy and prints serve's help from another directory,
-- with only `luarocks path` set up. Built from a copy of the tracked files (luarocks builds
-- in the source directory). Pending without luarocks.
local have = os.execute("command -v luarocks > /dev/null 2>&1")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("a")
  local ok = p:close()
  return text, ok
end

describe("luarocks make", function()
  if not have then
    pending("luarocks is not installed")
    return
  end

  it("installs a polysim command that runs a strategy and serve --help", function()
    local tmp = sh("mktemp -d"):gsub("%s+$", "")
    local root = sh("pwd"):gsub("%s+$", "")
    local src, tree, other = tmp .. "/src", tmp .. "/tree", tmp .. "/elsewhere"
    assert(os.execute("mkdir -p " .. src .. " " .. other))
    -- the working tree's tracked files as they are now (git stash create would miss new files)
    assert(os.execute("cd " .. root .. " && git ls-files -co --exclude-standard -z | " ..
      "xargs -0 cp --parents -t " .. src .. " 2>/dev/null; true"))
    local text, ok = sh("cd " .. src .. " && luarocks --lua-version 5.4 make --tree " .. tree ..
      " rockspec/polysim-scm-1.rockspec")
    assert.truthy(ok, text)
    local env = 'eval "$(luarocks --lua-version 5.4 path --tree ' .. tree .. ')" && unset LUA_PATH_5_4 ' ..
      'LUA_CPATH_5_4 POLYSIM_API_KEY; eval "$(luarocks --lua-version 5.4 path --tree ' .. tree .. ')"; cd ' .. other .. " && "
    text, ok = sh(env .. "timeout 60 " .. tree .. "/bin/polysim run " .. root ..
      "/examples/mean_reversion.lua --duration 3 --no-status")
    assert.truthy(ok, text)
    assert.matches("local exchange at http://127%.0%.0%.1", text)
    assert.matches("done: cash", text)
    text, ok = sh(env .. "timeout 10 " .. tree .. "/bin/polysim serve --help")
    assert.truthy(ok, text)
    assert.matches("usage: polysim serve", text)
    os.execute("rm -rf " .. tmp)
  end)
end)
