-- The test runner behind `make test`: busted over spec/ under this Lua, then the C-level
-- tests, then one closing line "N passed, N failed" made from the runners' own counts.
local lua = arg[-1] or "lua5.4"
local selected = {}
for i = 1, #arg do selected[#selected + 1] = arg[i] end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local passed, failed = 0, 0

local counts = os.tmpname()
local busted_cmd = string.format("POLYSIM_COUNTS=%s %s /usr/bin/busted -o spec/output.lua %s",
  sh_quote(counts), lua, #selected > 0 and table.concat(selected, " ") or "spec")
local ok = os.execute(busted_cmd)
local f = io.open(counts)
local line = f and f:read("l")
if f then f:close() end
os.remove(counts)
local s, fl, e = (line or ""):match("^(%d+) (%d+) (%d+)")
if s then
  passed = passed + tonumber(s)
  failed = failed + tonumber(fl) + tonumber(e)
else
  io.stderr:write("run.lua: busted ended without a summary\n")
  failed = failed + 1
end
if not ok and failed == 0 then failed = 1 end -- busted itself crashed

-- C-level tests and the fuzz smoke run: each prints its own "N passed, N failed" last.
if #selected == 0 then
  local list = io.popen("ls -d build/tests/* 2>/dev/null; echo 'sh fuzz/smoke.sh'")
  for name in list:lines() do
    local p = io.popen(name .. " 2>&1")
    local last
    -- Their count lines are folded into ours, not echoed: the run ends with one.
    for l in p:lines() do
      if l:match("%d+ passed, %d+ failed%s*$") then last = l else print(l) end
    end
    local cok = p:close()
    local cp, cf = (last or ""):match("(%d+) passed, (%d+) failed%s*$")
    if cp then
      passed, failed = passed + tonumber(cp), failed + tonumber(cf)
      if not cok and tonumber(cf) == 0 then failed = failed + 1 end
    else
      print(name .. ": no count line"); failed = failed + 1
    end
  end
  list:close()
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
