-- One version everywhere (issue 11: the code said 0.1.0, the rockspec scm-1): POLYSIM_VERSION
-- of src/internal.h is what `polysim version`, polysim.VERSION/_VERSION, the exchange
-- module, the rockspec's name and version, the CHANGELOG's newest release, the man page and
-- `make`'s POLYSIM_VERSION (pkg-config, dist) all say.
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function slurp(path)
  local f = assert(io.open(path), path)
  local s = f:read("a")
  f:close()
  return s
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local V = slurp("src/internal.h"):match('#define POLYSIM_VERSION "([^"]+)"')

describe("the version", function()
  it("is a release number in src/internal.h", function()
    assert.matches("^%d+%.%d+%.%d+$", V)
  end)

  it("is what the command, the module and the exchange say", function()
    assert.matches("^polysim " .. V:gsub("%.", "%%.") .. " %(", sh(EXE .. " version"))
    local polysim = require "polysim"
    assert.equal(V, polysim.VERSION)
    assert.equal("polysim " .. V, polysim._VERSION)
    assert.equal(V, require("polysim.exchange")._VERSION)
  end)

  it("names the one rockspec, whose version field agrees", function()
    local p = io.popen("ls rockspec/*.rockspec")
    local names = {}
    for l in p:lines() do names[#names + 1] = l end
    p:close()
    assert.same({ "rockspec/polysim-" .. V .. "-1.rockspec" }, names)
    local text = slurp(names[1])
    assert.equal(V .. "-1", text:match('\nversion = "([^"]+)"'))
    assert.equal("polysim-" .. V .. ".tar.gz", text:match('source = { url = "([^"]+)"'))
  end)

  it("is the one the README's install lines name", function()
    local readme = slurp("README.md")
    for name in readme:gmatch("polysim%-([%d%.]+)%-1%.") do assert.equal(V, name) end
    assert.truthy(readme:find("rockspec/polysim-" .. V .. "-1.rockspec", 1, true))
  end)

  it("is the CHANGELOG's newest release and the man page's", function()
    assert.equal(V, slurp("CHANGELOG.md"):match("\n## (%S+)"))
    assert.equal(V, slurp("docs/polysim.1"):match('^%.TH POLYSIM 1 "[^"]*" "polysim ([^"]+)"'))
  end)

  it("is make's POLYSIM_VERSION (pkg-config's polysim.pc, make dist)", function()
    assert.equal(V .. "\n", sh(require("helper").MAKE .. " --no-print-directory print-POLYSIM_VERSION"))
  end)
end)
