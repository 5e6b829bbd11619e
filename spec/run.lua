-- The test runner behind `make test`: busted over spec/ under this Lua, then the C-level
-- tests of the build directory and the fuzz smoke runs, then one closing line
-- "N passed, N failed, N skipped" made from the runners' own counts (busted's pending
-- specs are the skipped ones: a spec that cannot run here is never counted as passed).
--   lua spec/run.lua [--build=DIR] [--c-only] [spec files...]
-- DIR (default "build") holds the C tests in DIR/tests/; `make asan` passes build-asan so
-- the ASan-linked tests run. A missing or empty DIR/tests is a failure, never "0 failed".
local lua = arg[-1] or "lua5.4"
local build = "build"
local selected, c_only = {}, false
for i = 1, #arg do
  local b = arg[i]:match("^%-%-build=(.+)$")
  if b then build = b
  elseif arg[i] == "--c-only" then c_only = true -- the C tests alone (spec/core_runner_spec.lua)
  else selected[#selected + 1] = arg[i] end
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local passed, failed, skipped = 0, 0, 0

if not c_only then
  local counts = os.tmpname()
  -- --cpath names the build under test: .busted's own cpath (build/lib, for plain `busted`)
  -- would otherwise come first, and `make asan` / `make coverage` would load the plain build's
  -- core.so into every in-process spec, unsanitized and uncounted.
  -- --ignore-lua likewise: .busted's lua = "lua5.4" made busted re-run itself under plain
  -- lua5.4, not under the ASan-linked `polysim exec` that make asan gives as the interpreter.
  local busted_cmd = string.format(
    "POLYSIM_COUNTS=%s POLYSIM_SPEC_LUA=%s %s /usr/bin/busted --ignore-lua --cpath=%s -o spec/output.lua %s",
    sh_quote(counts), sh_quote(lua), lua, sh_quote(build .. "/lib/?.so"),
    #selected > 0 and table.concat(selected, " ") or "spec")
  local ok = os.execute(busted_cmd)
  local f = io.open(counts)
  local line = f and f:read("l")
  if f then f:close() end
  os.remove(counts)
  local s, fl, e, p = (line or ""):match("^(%d+) (%d+) (%d+) (%d+)")
  if s then
    passed = passed + tonumber(s)
    failed = failed + tonumber(fl) + tonumber(e)
    skipped = skipped + tonumber(p)
  else
    io.stderr:write("run.lua: busted ended without a summary\n")
    failed = failed + 1
  end
  if not ok and failed == 0 then failed = 1 end -- busted itself crashed
end

-- Runs one command whose last count line is "N passed, N failed[, N skipped]"; folds it into
-- ours (not echoed: the run ends with one count line).
local function run_counted(name)
  local pipe = io.popen(name .. " 2>&1")
  local last
  for l in pipe:lines() do
    if l:match("%d+ passed, %d+ failed$") or l:match("%d+ passed, %d+ failed, %d+ skipped$") then
      last = l
    else
      print(l)
    end
  end
  local cok = pipe:close()
  local cp, cf = (last or ""):match("(%d+) passed, (%d+) failed")
  if cp then
    passed, failed = passed + tonumber(cp), failed + tonumber(cf)
    skipped = skipped + tonumber(last:match("(%d+) skipped") or 0)
    if not cok and tonumber(cf) == 0 then failed = failed + 1 end
  else
    print(name .. ": no count line"); failed = failed + 1
  end
end

-- C-level tests and the fuzz smoke runs (only for a whole run, not for selected specs).
if #selected == 0 then
  local list = io.popen("ls -d " .. sh_quote(build .. "/tests") .. "/* 2>/dev/null")
  local n = 0
  for name in list:lines() do
    n = n + 1
    run_counted(sh_quote(name))
  end
  list:close()
  if n == 0 then
    print("run.lua: no C tests in " .. build .. "/tests (not built?)")
    failed = failed + 1
  end
  if not c_only then run_counted("sh fuzz/smoke.sh") end
end

print(string.format("%d passed, %d failed, %d skipped", passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
