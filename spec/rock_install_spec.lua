-- The rock as a user installs it (issue 11, cli): `make dist` writes the versioned rockspec,
-- the source archive it names and the two in a .src.rock; `luarocks install` of those into
-- a fresh tree, with no network, gives a `polysim` command that runs a strategy and prints
-- serve's help from another directory, with only `luarocks path` set up. `make dist` runs
-- on a copy of the working tree's files (it reads the tracked ones). Pending without luarocks.
local have = os.execute("command -v luarocks > /dev/null 2>&1 && command -v zip > /dev/null 2>&1")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("a")
  local ok = p:close()
  return text, ok
end

describe("make dist + luarocks install", function()
  if not have then
    pending("luarocks or zip is not installed")
    return
  end

  local version = require("polysim").VERSION
  local tmp, root

  setup(function()
    tmp = sh("mktemp -d"):gsub("%s+$", "")
    root = sh("pwd"):gsub("%s+$", "")
  end)
  teardown(function() os.execute("rm -rf " .. tmp) end)

  -- the installed command, run from elsewhere with only `luarocks path` set (no offline
  -- network either: the rock needs none)
  local function check_tree(tree)
    local other = tmp .. "/elsewhere"
    assert(os.execute("mkdir -p " .. other))
    local env = "unset LUA_PATH_5_4 LUA_CPATH_5_4 LUA_PATH LUA_CPATH POLYSIM_API_KEY POLYSIM_EXE; " ..
      'eval "$(luarocks --lua-version 5.4 path --tree ' .. tree .. ')"; cd ' .. other .. " && "
    local text, ok = sh(env .. "timeout 60 " .. tree .. "/bin/polysim run " .. root ..
      "/examples/mean_reversion.lua --duration 3")
    assert.truthy(ok, text)
    assert.matches("local exchange at http://127%.0%.0%.1", text)
    assert.matches("done: cash", text)
    text, ok = sh(env .. "timeout 10 " .. tree .. "/bin/polysim serve --help")
    assert.truthy(ok, text)
    assert.matches("usage: polysim serve", text)
    text = sh(env .. tree .. "/bin/polysim version")
    assert.matches("^polysim " .. version:gsub("%.", "%%.") .. " ", text)
  end

  it("make dist writes the rockspec, the archive and the .src.rock, named by the version", function()
    local src = tmp .. "/src"
    assert(os.execute("mkdir -p " .. src))
    -- a git checkout of the working tree as it is now (make dist lists git's tracked files)
    assert(os.execute("cd " .. root .. " && git ls-files -co --exclude-standard -z | " ..
      "xargs -0 cp --parents -t " .. src .. " 2>/dev/null; cd " .. src ..
      " && git init -q && git add -A >/dev/null 2>&1; true"))
    local text, ok = sh("cd " .. src .. " && " .. require("helper").MAKE .. " --no-print-directory dist")
    assert.truthy(ok, text)
    for _, f in ipairs { "polysim-" .. version .. "-1.rockspec", "polysim-" .. version .. ".tar.gz",
                         "polysim-" .. version .. "-1.src.rock" } do
      assert.truthy(io.open(src .. "/build/dist/" .. f), f .. " missing: " .. text)
    end
  end)

  it("luarocks install of the .src.rock, from any directory, installs a working command", function()
    local tree = tmp .. "/tree1"
    local text, ok = sh("cd / && luarocks --lua-version 5.4 install --tree " .. tree .. " " .. tmp ..
      "/src/build/dist/polysim-" .. version .. "-1.src.rock")
    assert.truthy(ok, text)
    check_tree(tree)
  end)

  it("luarocks install of the rockspec beside its archive installs a working command", function()
    local tree = tmp .. "/tree2"
    local text, ok = sh("cd " .. tmp .. "/src/build/dist && luarocks --lua-version 5.4 install --tree " .. tree ..
      " polysim-" .. version .. "-1.rockspec")
    assert.truthy(ok, text)
    check_tree(tree)
  end)
end)
