-- Lua line coverage without luacov (not in Debian): loaded through LUA_INIT_5_4 by
-- `make coverage`, it counts the lines run in lua/polysim/ files (a debug.sethook line
-- hook; coroutines made afterwards inherit it) and appends them to a file of its own in
-- $POLYSIM_LUACOV_DIR when the state closes or os.exit is called.
local dir = os.getenv("POLYSIM_LUACOV_DIR")
if not dir then return end
local getinfo, sethook = debug.getinfo, debug.sethook
local counts, wanted = {}, {}

local function hook(_, line)
  local src = getinfo(2, "S").source
  local w = wanted[src]
  if w == nil then
    w = src:match("lua/polysim/.*%.lua$") or false
    wanted[src] = w
  end
  if w then
    local t = counts[w]
    if not t then t = {}; counts[w] = t end
    t[line] = (t[line] or 0) + 1
  end
end

local flushed = false
local function flush()
  if flushed then return end
  flushed = true
  sethook()
  local name = ("%s/%d-%06d.cov"):format(dir, os.time(), math.random(0, 999999))
  local f = io.open(name, "w")
  if not f then return end
  for file, t in pairs(counts) do
    for line, n in pairs(t) do f:write(file, "\t", line, "\t", n, "\n") end
  end
  f:close()
end

local exit = os.exit
os.exit = function(...) flush(); return exit(...) end -- luacheck: ignore 122
setmetatable(counts, { __gc = flush })
-- The registry keeps counts (and its __gc) alive until the state closes.
debug.getregistry()["polysim.coverage"] = counts
sethook(hook, "l")
