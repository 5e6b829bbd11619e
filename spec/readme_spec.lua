-- The README's code runs as printed: the quick start against `polysim serve`, and the
-- complete strategy under `polysim run`.
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function readme_block(after)
  local text = assert(io.open("README.md")):read("a")
  local from = assert(text:find(after, 1, true), "README has no section " .. after)
  local s, e = text:find("```lua\n(.-)```", from)
  assert(s, "no Lua block after " .. after)
  return text:sub(s + 7, e - 3)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo rc=$?")
  local out = p:read("a")
  p:close()
  return out
end

describe("README", function()
  it("quick start runs against a local exchange", function()
    local script = os.tmpname()
    write(script, readme_block("## Quick start"))
    local out = run(string.format([[
      %s serve --port 0 --tick 0 > %s.srv 2>/dev/null & pid=$!
      for i in $(seq 100); do [ -s %s.srv ] && break; sleep 0.05; done
      line=$(head -n1 %s.srv)
      url=$(echo "$line" | sed 's/.*"base_url":"\([^"]*\)".*/\1/')
      key=$(echo "$line" | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
      POLYSIM_LOCAL_URL=$url POLYSIM_LOCAL_KEY=$key lua5.4 %s; kill $pid]], EXE, script, script, script, script))
    os.remove(script)
    os.remove(script .. ".srv")
    assert.matches("rc=0", out)
    assert.is_nil(out:find("polysim: ", 1, true), out) -- no error object printed
    assert.matches("FILLED", out)
    -- what it prints means something (issue 11): no table addresses, no nil fields, prices
    assert.is_nil(out:find("table: 0x", 1, true), out)
    assert.is_nil(out:find("%f[%w]nil%f[%W]"), out)
    assert.matches("Yes 0%.%d+%s+No 0%.%d+", out)
  end)

  it("the Up/Down example runs against a local exchange", function()
    local script = os.tmpname()
    write(script, readme_block("## Up/Down markets"))
    local out = run(string.format([[
      %s serve --port 0 > %s.srv 2>/dev/null & pid=$!
      for i in $(seq 100); do [ -s %s.srv ] && break; sleep 0.05; done
      line=$(head -n1 %s.srv)
      url=$(echo "$line" | sed 's/.*"base_url":"\([^"]*\)".*/\1/')
      key=$(echo "$line" | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
      POLYSIM_BASE_URL=$url POLYSIM_API_KEY=$key lua5.4 %s; kill $pid]], EXE, script, script, script, script))
    os.remove(script)
    os.remove(script .. ".srv")
    assert.matches("rc=0", out)
    assert.matches("FILLED", out)
    assert.matches("tick\tBTC", out)
    assert.is_nil(out:find("nil", 1, true), out)
  end)

  it("the complete strategy runs under polysim run without errors", function()
    local path = os.tmpname() .. ".lua"
    write(path, readme_block("A complete strategy:"))
    local out = run(string.format("env -u POLYSIM_API_KEY -u POLYSIM_BASE_URL %s run %s --duration 2", EXE, path))
    os.remove(path)
    assert.matches("rc=0", out)
    assert.matches("0 errors", out)
    assert.matches("stopping: duration", out)
  end)
end)
