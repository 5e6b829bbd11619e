-- Sums the files spec/coverage.lua wrote (arg[1]: their directory) and prints Lua line
-- coverage of lua/polysim/: a line counts as code unless it is blank, a comment, or only
-- closes a block (end, else, }, ...), the same rule luacov's default reporter uses roughly.
local dir = assert(arg[1], "usage: coverage_report.lua DIR")
local hit = {}
local p = assert(io.popen("ls " .. dir .. "/*.cov 2>/dev/null"))
for name in p:lines() do
  for l in io.lines(name) do
    local file, line = l:match("^(.-)\t(%d+)\t")
    if file then
      hit[file] = hit[file] or {}
      hit[file][tonumber(line)] = true
    end
  end
end
p:close()
local function code(line)
  local s = line:gsub("%-%-.*$", ""):match("^%s*(.-)%s*$")
  if s == "" then return false end
  if s:match("^[%]})end,;%s]*$") and (s:match("^end") or not s:match("%w")) then return false end
  if s == "else" or s:match("^end[%s%),;%]}]*$") or s == "do" or s == "repeat" then return false end
  return true
end
local total, covered, rows = 0, 0, {}
local list = assert(io.popen("find lua/polysim -name '*.lua' | sort"))
for file in list:lines() do
  local t, c, in_long = 0, 0, false
  local n = 0
  for line in io.lines(file) do
    n = n + 1
    if in_long then
      if line:find("]]", 1, true) or line:find("]==]", 1, true) then in_long = false end
    elseif line:match("^%s*%-%-%[=*%[") then
      in_long = not (line:find("]]", 1, true) or line:find("]==]", 1, true))
    elseif code(line) or (hit[file] and hit[file][n]) then
      t = t + 1
      if hit[file] and hit[file][n] then c = c + 1 end
    end
  end
  total, covered = total + t, covered + c
  rows[#rows + 1] = ("%6.1f%%  %5d/%-5d %s"):format(t > 0 and 100 * c / t or 100, c, t, file)
end
list:close()
if os.getenv("COVERAGE_VERBOSE") then print(table.concat(rows, "\n")) end
print(("Lua line coverage (lua/polysim): %.1f%% (%d of %d lines)"):format(100 * covered / total, covered, total))
