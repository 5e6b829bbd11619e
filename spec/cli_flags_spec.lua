-- One table of flags (polysim.cli.options) for the parser, `polysim --help`,
-- `polysim COMMAND --help`, the README and the man page (issue 11: `polysim --help` and the
-- README listed 2 of run's flags). Every flag of every subcommand must be in each of them.
local options = require "polysim.cli.options"
local cli = require "polysim.cli"

local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local function slurp(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- man writes "\-\-name": back to "--name" for the search
local man = slurp("docs/polysim.1"):gsub("\\%-", "-")
local readme = slurp("README.md")
local main_help = sh(EXE .. " --help")

-- Every command's flags: the table's, or what a module command's own --help names.
local function flags_of(cmd)
  local list = {}
  if cmd.module then
    for f in sh(EXE .. " " .. cmd.name .. " --help"):gmatch("%-%-([%a][%w%-]*)") do
      if f ~= "help" then list[#list + 1] = f end
    end
  else
    for _, o in ipairs(cmd.options) do list[#list + 1] = o.name end
  end
  return list
end

describe("polysim flags", function()
  it("run has every flag a user needs in the table (the logging ones included)", function()
    local names = {}
    for _, f in ipairs(flags_of(options.command "run")) do names[f] = true end
    for _, f in ipairs { "live", "base-url", "duration", "seed", "tick", "budget", "no-reload", "quiet",
                         "no-status", "log-file", "log-level", "log-format", "param", "report", "dashboard" } do
      assert.truthy(names[f], "--" .. f .. " missing from the run table")
    end
    local serve = {}
    for _, f in ipairs(flags_of(options.command "serve")) do serve[f] = true end
    for _, f in ipairs { "api-key", "per-ip", "header-timeout", "max-connections" } do
      assert.truthy(serve[f], "--" .. f .. " missing from the serve table")
    end
  end)

  for _, cmd in ipairs(options.COMMANDS) do
    it(cmd.name .. ": every flag is in its --help, polysim --help, the README and the man page", function()
      local own = sh(EXE .. " " .. cmd.name .. " --help")
      local flags = flags_of(cmd)
      for _, f in ipairs(flags) do
        local flag = "--" .. f
        assert.truthy(own:find(flag, 1, true), flag .. " missing from polysim " .. cmd.name .. " --help")
        assert.truthy(main_help:find(flag, 1, true), flag .. " (" .. cmd.name .. ") missing from polysim --help")
        assert.truthy(readme:find(flag, 1, true), flag .. " (" .. cmd.name .. ") missing from README.md")
        assert.truthy(man:find(flag, 1, true), flag .. " (" .. cmd.name .. ") missing from docs/polysim.1")
      end
      assert.truthy(man:find("polysim " .. cmd.synopsis, 1, true), cmd.name .. " missing from the man page")
    end)
  end

  it("the parser takes every flag of the table and refuses others with a suggestion", function()
    for _, name in ipairs { "serve", "run" } do
      for _, o in ipairs(options.command(name).options) do
        if not o.by then
          local args = { name, "--" .. o.name }
          if o.kind ~= "flag" then
            args[3] = o.choices and o.choices[1] or (o.kind == "number" and "1" or "x")
          end
          local opts, err = cli.parse_options(args, 2, options.spec(name))
          assert.truthy(opts, err)
          assert.is_not_nil(opts[o.name], o.name)
        end
      end
    end
    local opts, err = cli.parse_options({ "run", "--log-levl", "debug" }, 2, options.spec "run")
    assert.is_nil(opts)
    assert.equal("unknown option --log-levl (did you mean --log-level?)", err)
  end)

  it("docs/polysim.1 is what `make man` writes from the table (run `make man` after a change)", function()
    local fresh = sh("lua5.4 scripts/gen-man.lua")
    assert.equal(fresh, slurp("docs/polysim.1"))
  end)

  it("the README shows polysim --help as it prints", function()
    local block = readme:match("```text\n(usage: polysim <command>.-)```")
    assert.truthy(block, "no polysim --help block in README.md")
    assert.equal(main_help, block, "run `make man`: it rewrites the block")
  end)
end)
