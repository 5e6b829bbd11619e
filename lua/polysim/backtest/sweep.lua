-- `polysim backtest ... --sweep NAME=V1,V2,...`: a parameter grid, run in worker processes
-- (--jobs N), printed as one ranked table; `--plan` prints the workers' commands instead,
-- and `--merge DIR...` ranks the reports those commands wrote.
--
-- A worker is this executable again: `polysim backtest STRATEGY --data FILE ... --param
-- NAME=VALUE ... --quiet [--report DIR/<combo>]`, started with posix_spawn (core.spawn; no
-- shell), so a worker and a --plan command are the same command and give the same report.
-- Each combination is a separate process with the same seed, so the table does not depend
-- on --jobs or on the order workers finish in: rows are sorted by the metric, ties by the
-- next metric, then by the parameters' text.
local core = require "polysim.core"

local ipairs, pairs, tonumber, tostring, type = ipairs, pairs, tonumber, tostring, type
local string_format = string.format

local _M = {}

local MAX_COMBOS = 100000

local function fail(msg) error({ sweep_error = msg }, 0) end

-- "NAME=V1,V2" list -> { {name=, values={...}}, ... } in the order given.
function _M.parse(list, fixed)
  local out, seen = {}, {}
  for _, s in ipairs(list) do
    local name, vals = s:match("^([^=]*)=(.*)$")
    if not name then fail(string_format("--sweep %q: needs NAME=V1,V2,...", s)) end
    if not name:match("^[%w_]+$") then
      fail(string_format("--sweep %q: the name %q must be letters, digits and _", s, name))
    end
    if seen[name] then fail(string_format("--sweep %s: given twice", name)) end
    if fixed and fixed[name] ~= nil then fail(string_format("--sweep %s: also given as --param %s", name, name)) end
    seen[name] = true
    local values, dup = {}, {}
    for v in (vals .. ","):gmatch("([^,]*),") do
      if v == "" then fail(string_format("--sweep %s=%s: an empty value (two commas, or one at an end)", name, vals)) end
      if dup[v] then fail(string_format("--sweep %s: the value %q is listed twice", name, v)) end
      dup[v] = true
      values[#values + 1] = v
    end
    out[#out + 1] = { name = name, values = values }
  end
  return out
end

-- Sorted "k=v k2=v2": a combination's label and the table's tie-break.
local function label(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. tostring(params[k]) end
  return table.concat(parts, " ")
end
_M.label = label

-- A directory name for a combination: its index (grid order) and its values, made safe.
local function dir_name(i, width, sweeps, params)
  local parts = { string_format("%0" .. width .. "d", i) }
  for _, s in ipairs(sweeps) do
    parts[#parts + 1] = (s.name .. "-" .. params[s.name]):gsub("[^%w%.%-_]", "_")
  end
  local name = table.concat(parts, "_")
  if #name > 120 then name = name:sub(1, 120) end
  return name
end

-- The cartesian product, the last --sweep varying fastest.
function _M.grid(sweeps)
  local total = 1
  for _, s in ipairs(sweeps) do
    total = total * #s.values
    if total > MAX_COMBOS then fail(string_format("the grid has more than %d combinations", MAX_COMBOS)) end
  end
  local width = #tostring(total)
  local combos = {}
  for i = 1, total do
    local params, rest = {}, i - 1
    for k = #sweeps, 1, -1 do
      local s = sweeps[k]
      params[s.name] = s.values[rest % #s.values + 1]
      rest = rest // #s.values
    end
    combos[i] = { index = i, params = params, label = label(params), dir = dir_name(i, width, sweeps, params) }
  end
  return combos
end

local function absolute(path, cwd)
  if path:sub(1, 1) == "/" then return path end
  return (cwd .. "/" .. path):gsub("/%./", "/")
end

-- The executable to run: this one, unless this is a Lua interpreter (a spec calling the
-- command in-process), then $POLYSIM_EXE.
function _M.exe()
  local exe = core.exe_path()
  if not exe or exe:match("/lua[%d%.]*$") then exe = os.getenv("POLYSIM_EXE") end
  if not exe then fail("cannot tell which polysim executable to run workers with (set POLYSIM_EXE)") end
  return exe
end

-- Options of the parent that a worker does not get (the sweep's own), and those whose value
-- is a path (made absolute, so a --plan command runs from any directory).
local DROP = { sweep = true, jobs = true, rank = true, plan = true, report = true, out = true, quiet = true }
local PATHS = { data = true }

-- The worker's argv without its combination: args from index `first` of the command line.
function _M.base_argv(args, first, kinds, exe)
  local cwd = assert(core.cwd())
  local argv = { exe, "backtest" }
  local i = first
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w%-]+)$")
    local kind = name and kinds[name]
    if kind then
      local takes = kind ~= "flag"
      if not DROP[name] then
        argv[#argv + 1] = a
        if takes then argv[#argv + 1] = PATHS[name] and absolute(args[i + 1], cwd) or args[i + 1] end
      end
      i = i + (takes and 2 or 1)
    else
      argv[#argv + 1] = name and a or absolute(a, cwd)   -- the strategy file
      i = i + 1
    end
  end
  return argv, cwd
end

function _M.argv(base, combo, report_dir)
  local argv = {}
  for i, a in ipairs(base) do argv[i] = a end
  local keys = {}
  for k in pairs(combo.params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    argv[#argv + 1] = "--param"
    argv[#argv + 1] = k .. "=" .. combo.params[k]
  end
  if report_dir then
    argv[#argv + 1] = "--report"
    argv[#argv + 1] = report_dir .. "/" .. combo.dir
  end
  argv[#argv + 1] = "--quiet"
  return argv
end

local function shell_quote(s)
  if s:match("^[%w%./_%-=:,@%+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function _M.command(argv)
  local out = {}
  for i, a in ipairs(argv) do out[i] = shell_quote(a) end
  return table.concat(out, " ")
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function last_line(s)
  local last
  for l in (s or ""):gmatch("[^\n]+") do last = l end
  return last
end

-- Runs every combination, at most `jobs` at once; returns the results in grid order:
-- { combo, summary | nil, error | nil, seconds }. on_done(result, done, total) after each.
function _M.run(base, combos, jobs, report_dir, on_done)
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(core.mkdir_p(tmp))
  local results, running, next_i, done = {}, {}, 1, 0
  local n_running = 0
  local function start(combo)
    local out, err = tmp .. "/" .. combo.index .. ".out", tmp .. "/" .. combo.index .. ".err"
    local pid, why = core.spawn(_M.argv(base, combo, report_dir), { stdout = out, stderr = err })
    if not pid then fail(why) end
    running[pid] = { combo = combo, out = out, err = err, t0 = core.monotime() }
    n_running = n_running + 1
  end
  local function finish(pid, code)
    local r = running[pid]
    running[pid] = nil
    n_running = n_running - 1
    local res = { combo = r.combo, seconds = core.monotime() - r.t0 }
    local text = slurp(r.out)
    local summary = code == 0 and core.json_decode(last_line(text) or "")
    if type(summary) == "table" then res.summary = summary
    else
      -- the worker's own error line (a traceback may follow it), else its last line
      local err = slurp(r.err) or ""
      local msg = err:match("polysim backtest: ([^\n]+)") or last_line(err) or ("exit status " .. tostring(code))
      res.error = msg
    end
    os.remove(r.out)
    os.remove(r.err)
    results[r.combo.index] = res
    done = done + 1
    if on_done then on_done(res, done, #combos) end
  end
  local ok, err = pcall(function()
    while done < #combos do
      while n_running < jobs and next_i <= #combos do
        start(combos[next_i])
        next_i = next_i + 1
      end
      -- poll the running workers; a short sleep between rounds (10 ms) costs nothing
      -- beside backtests that take seconds, and waits only on our own children
      local any = false
      for pid in pairs(running) do
        local code = core.wait(pid, true)
        if code then finish(pid, code); any = true end
      end
      if not any then require("polysim.loop").core:step(0.01) end
    end
  end)
  if not ok then
    for pid in pairs(running) do core.kill(pid, "TERM"); core.wait(pid) end
  end
  os.remove(tmp)
  if not ok then error(err, 0) end
  return results
end

-- ---- ranking and the table ------------------------------------------------------------

local RANK = {
  sharpe = { { "sharpe", -1 }, { "pnl", -1 } },
  pnl = { { "pnl", -1 }, { "sharpe", -1 } },
  drawdown = { { "max_drawdown", 1 }, { "pnl", -1 } },
}
_M.RANKS = RANK

function _M.check_rank(r)
  if r ~= nil and not RANK[r] then fail(string_format("--rank %q: must be sharpe, pnl or drawdown", tostring(r))) end
  return r or "sharpe"
end

-- rows: { label=, summary= | error= } -> sorted copy: best first, failed ones last.
function _M.rank(rows, by)
  local keys = RANK[by]
  local sorted = {}
  for i, r in ipairs(rows) do sorted[i] = r end
  table.sort(sorted, function(a, b)
    if (a.summary == nil) ~= (b.summary == nil) then return a.summary ~= nil end
    if a.summary then
      for _, k in ipairs(keys) do
        local x, y = tonumber(a.summary[k[1]]) or 0, tonumber(b.summary[k[1]]) or 0
        if x ~= y then return (x - y) * k[2] < 0 end
      end
    end
    return a.label < b.label
  end)
  return sorted
end

local COLS = { { "sharpe", 10 }, { "pnl", 12 }, { "return", 10 }, { "max_drawdown", 12 }, { "trades", 7 },
               { "fees", 9 }, { "final_equity", 13 } }

function _M.table(sorted)
  local lines = {}
  local head = { string_format("%-5s", "rank") }
  for _, c in ipairs(COLS) do head[#head + 1] = string_format("%" .. c[2] .. "s", c[1]) end
  head[#head + 1] = "  params"
  lines[1] = table.concat(head, " ")
  for i, r in ipairs(sorted) do
    local row = { string_format("%-5d", i) }
    if r.summary then
      for _, c in ipairs(COLS) do row[#row + 1] = string_format("%" .. c[2] .. "s", tostring(r.summary[c[1]])) end
      row[#row + 1] = "  " .. r.label
    else
      row[#row + 1] = string_format("%-" .. 10 .. "s", "failed")
      row[#row + 1] = "  " .. r.label .. ": " .. tostring(r.error)
    end
    lines[#lines + 1] = table.concat(row, " ")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- The merged JSON: the ranking and every combination's report.
function _M.merged(sorted, by)
  local list = {}
  for i, r in ipairs(sorted) do
    list[i] = { rank = i, params = r.params or (r.summary and r.summary.params) or {}, label = r.label,
                dir = r.dir, report = r.summary, error = r.error }
  end
  return { rank_by = by, combinations = #list, results = core.array(list) }
end

local function write_json(path, t)
  local f, err = io.open(path, "wb")
  if not f then fail("cannot write " .. path .. ": " .. tostring(err)) end
  f:write(core.json_encode(t, { sort_keys = true }), "\n")
  f:close()
end
_M.write_json = write_json

-- ---- --merge --------------------------------------------------------------------------

-- The report directories under the arguments: a DIR with report.json is one; otherwise its
-- subdirectories that have one (sorted by name). Returns rows for rank().
function _M.collect(dirs)
  local rows = {}
  local function add(dir)
    local path = dir .. "/report.json"
    local text = slurp(path)
    if not text then return false end
    local summary, err = core.json_decode(text)
    if type(summary) ~= "table" then fail(path .. ": not a report (" .. tostring(err or "not an object") .. ")") end
    if type(summary.params) ~= "table" then fail(path .. ": not a backtest report (no params)") end
    rows[#rows + 1] = { summary = summary, label = label(summary.params), dir = dir, params = summary.params }
    return true
  end
  for _, d in ipairs(dirs) do
    d = d:gsub("/+$", "")
    if not core.isdir(d) then
      -- DIR/* also names the files there (sweep.json): said, and skipped
      local f = io.open(d, "rb")
      if not f then fail("--merge " .. d .. ": no such directory") end
      f:close()
      io.stderr:write("polysim backtest: --merge ", d, ": not a directory, skipped\n")
    elseif not add(d) then
      local names, err = core.listdir(d)
      if not names then fail("--merge " .. err) end
      local found = false
      for _, n in ipairs(names) do
        if core.isdir(d .. "/" .. n) and add(d .. "/" .. n) then found = true end
      end
      if not found then fail("--merge " .. d .. ": no report.json in it or in its subdirectories") end
    end
  end
  return rows
end

-- ---- the commands ---------------------------------------------------------------------

local function readable(path, what)
  local f, err = io.open(path, "rb")
  if not f then fail(what .. " " .. tostring(err)) end
  f:close()
end

-- polysim backtest STRATEGY --data F ... --sweep ... [--jobs N] [--rank R] [--plan]:
-- o and pos as backtest.cli's parse gave them; args the whole command line.
function _M.main(args, o, pos, kinds)
  local by = _M.check_rank(o.rank)
  if #pos ~= 1 then fail("needs one STRATEGY.lua") end
  if not o.data then fail("needs --data FILE") end
  readable(pos[1], "strategy:")
  readable(o.data, "--data")
  local sweeps = _M.parse(o.sweep, o.param)
  local combos = _M.grid(sweeps)
  local jobs = o.jobs or core.ncpu()
  if math.type(jobs) ~= "integer" and jobs ~= math.floor(jobs) or jobs < 1 then
    fail("--jobs " .. tostring(jobs) .. ": must be a whole number >= 1")
  end
  jobs = math.min(math.tointeger(jobs), #combos)
  local base, cwd = _M.base_argv(args, 2, kinds, _M.exe())
  local report_dir = o.report and absolute(o.report, cwd)
  if o.plan then
    if not report_dir then fail("--plan needs --report DIR (each command writes its report into DIR/<combination>)") end
    for _, c in ipairs(combos) do io.stdout:write(_M.command(_M.argv(base, c, report_dir)), "\n") end
    return 0
  end
  local quiet = o.quiet
  local t0 = core.monotime()
  local results = _M.run(base, combos, jobs, report_dir, function(r, done, total)
    if quiet then return end
    io.stderr:write(string_format("[%d/%d] %s: %s (%.1f s)\n", done, total, r.combo.label,
      r.summary and ("sharpe " .. tostring(r.summary.sharpe) .. ", pnl " .. tostring(r.summary.pnl)) or
      ("failed: " .. tostring(r.error)), r.seconds))
  end)
  local rows, failed = {}, 0
  for i, r in ipairs(results) do
    rows[i] = { label = r.combo.label, summary = r.summary, error = r.error, params = r.combo.params,
                dir = report_dir and (report_dir .. "/" .. r.combo.dir) }
    if not r.summary then failed = failed + 1 end
  end
  local sorted = _M.rank(rows, by)
  io.stdout:write(_M.table(sorted))
  local out = o.out or (report_dir and report_dir .. "/sweep.json")
  if out then
    if report_dir then assert(core.mkdir_p(report_dir)) end
    write_json(out, _M.merged(sorted, by))
  end
  if not quiet then
    local cpu = core.rusage("children")
    io.stderr:write(string_format("%d combinations, %d jobs: %.2f s wall, %.2f s CPU in workers%s\n", #combos, jobs,
      core.monotime() - t0, cpu.user + cpu.sys, failed > 0 and (", " .. failed .. " failed") or ""))
  end
  return failed > 0 and 1 or 0
end

-- polysim backtest --merge DIR... [--rank R] [--out FILE]
function _M.merge_main(o, pos)
  local by = _M.check_rank(o.rank)
  if #pos == 0 then fail("--merge needs one or more report directories") end
  local rows = _M.collect(pos)
  local sorted = _M.rank(rows, by)
  io.stdout:write(_M.table(sorted))
  local out = o.out
  if not out and #pos == 1 and not slurp(pos[1] .. "/report.json") then out = pos[1]:gsub("/+$", "") .. "/sweep.json" end
  if out then write_json(out, _M.merged(sorted, by)) end
  return 0
end

return _M
