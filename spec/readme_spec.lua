-- Every Lua code block of README.md and examples/README.md runs as printed (issue 11): a
-- block that returns a strategy table runs under `polysim run`, any other as a script
-- against a `polysim serve` (POLYSIM_LOCAL_URL / POLYSIM_LOCAL_KEY from its first line, as
-- the quick start says). What each prints must mean something: no `table: 0x…`, no
-- `userdata: 0x…`, no bare `nil`, no error object; the stream block must see a price.
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function slurp(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
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

-- { file, line, section, code } for every ```lua block of the file
local function lua_blocks(file)
  local text = slurp(file)
  local list, section = {}, "?"
  local line_no, in_block, start, buf = 0, false, 0, nil
  for line in (text .. "\n"):gmatch("(.-)\n") do
    line_no = line_no + 1
    if in_block then
      if line == "```" then
        list[#list + 1] = { file = file, line = start, section = section, code = table.concat(buf, "\n") .. "\n" }
        in_block = false
      else
        buf[#buf + 1] = line
      end
    elseif line == "```lua" then
      in_block, start, buf = true, line_no, {}
    elseif line:match("^##+ ") then
      section = line:gsub("^#+ ", "")
    end
  end
  return list
end

local BLOCKS = {}
for _, f in ipairs { "README.md", "examples/README.md" } do
  for _, b in ipairs(lua_blocks(f)) do BLOCKS[#BLOCKS + 1] = b end
end

local function meaningful(out, where)
  assert.is_nil(out:find("table: 0x", 1, true), where .. " printed a table address:\n" .. out)
  assert.is_nil(out:find("userdata: 0x", 1, true), where .. " printed a userdata address:\n" .. out)
  assert.is_nil(out:find("%f[%w]nil%f[%W]"), where .. " printed nil:\n" .. out)
  assert.is_nil(out:find("polysim: ", 1, true), where .. " printed an error:\n" .. out)
end

-- Runs a script block against a fresh `polysim serve` (tick 0: the quick start's limit price
-- holds; ticking: prices move, so streams see updates).
local function run_script(code, tick)
  local script = os.tmpname()
  write(script, code)
  local out = run(string.format([[
    %s serve --port 0 --tick %s > %s.srv 2>/dev/null & pid=$!
    for i in $(seq 100); do [ -s %s.srv ] && break; sleep 0.05; done
    line=$(head -n1 %s.srv)
    url=$(echo "$line" | sed 's/.*"base_url":"\([^"]*\)".*/\1/')
    key=$(echo "$line" | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
    env -u POLYSIM_API_KEY -u POLYSIM_BASE_URL POLYSIM_LOCAL_URL=$url POLYSIM_LOCAL_KEY=$key timeout 60 lua5.4 %s
    rc=$?; kill $pid; (exit $rc)]], EXE, tick, script, script, script, script))
  os.remove(script)
  os.remove(script .. ".srv")
  return out
end

describe("README code blocks", function()
  it("there are blocks to run in both files", function()
    local n = {}
    for _, b in ipairs(BLOCKS) do n[b.file] = (n[b.file] or 0) + 1 end
    assert.truthy((n["README.md"] or 0) >= 6, "README.md Lua blocks: " .. tostring(n["README.md"]))
    assert.truthy((n["examples/README.md"] or 0) >= 1)
  end)

  for _, b in ipairs(BLOCKS) do
    local where = ("%s:%d (%s)"):format(b.file, b.line, b.section)
    if b.code:find("\nreturn S%s*$") then
      it(where .. ": the strategy runs under polysim run without errors", function()
        local path = os.tmpname() .. ".lua"
        write(path, b.code)
        local out = run(("env -u POLYSIM_API_KEY -u POLYSIM_BASE_URL timeout 60 %s run %s --duration 3 --no-status")
          :format(EXE, path))
        os.remove(path)
        assert.matches("rc=0", out)
        assert.matches("[^%d]0 errors", out)
        assert.matches("stopping: duration", out)
        assert.is_nil(out:find("table: 0x", 1, true), out)
        assert.is_nil(out:find("userdata: 0x", 1, true), out)
      end)
    else
      it(where .. ": runs as printed and prints something meaningful", function()
        local quick = b.section == "Quick start"
        local out = run_script(b.code, quick and "0" or "0.2")
        assert.matches("rc=0", out)
        meaningful(out, where)
        if quick then
          assert.matches("FILLED", out)
          assert.matches("Yes 0%.%d+%s+No 0%.%d+", out)
        elseif b.section:find("Live streams", 1, true) then
          -- a price arrives through the callback and through the iterator
          assert.matches("0x%x+%s+Yes 0%.%d+%s+No 0%.%d+", out)
          assert.matches("first from the iterator:%s+0x%x+%s+Yes 0%.%d+", out)
        elseif b.section:find("Up/Down", 1, true) then
          -- a refusal only in the window's last 2 minutes, where the fair price of the side
          -- spot is on can reach the 0.99 cap (this spec failed there once in several runs)
          if not out:find("FILLED", 1, true) then
            assert.matches("not filled:%s+FOK_ORDER_NOT_FILLED_ERROR", out)
            assert.truthy(tonumber(out:match("closes in (%d+)s")) < 120, out)
          end
          assert.matches("tick\tBTC", out)
        end
      end)
    end
  end
end)
