-- Lua line coverage without luacov (not in Debian): loaded through LUA_INIT_5_4 by
-- `make coverage`, it counts the lines run in lua/polysim/ files and appends them to a file
-- of its own in $POLYSIM_LUACOV_DIR when the state closes or os.exit is called.
--
-- The counter is a C line hook (src/cov.c, loaded from core.so with package.loadlib): new
-- coroutines inherit it. Others' hooks chain with it: debug.sethook on a thread installs
-- their hook with "l" added, and a line event is counted before theirs is called (a tail
-- call, so their debug.getinfo levels are unchanged); debug.gethook answers with theirs;
-- removing theirs puts the counter back (a count hook is driven by line events). The time budget's specs run unchanged under it.
-- Without core.so (a lua5.4 that cannot find it) a Lua line hook counts, more slowly.
local dir = os.getenv("POLYSIM_LUACOV_DIR")
if not dir then return end
local getinfo, sethook, gethook = debug.getinfo, debug.sethook, debug.gethook
local type, running = type, coroutine.running

local cov
do
  local path = package.searchpath("polysim.core", package.cpath)
  local open = path and package.loadlib(path, "ps_coverage_open")
  cov = open and open()
end

local counts = {} -- the Lua fallback's
local here
if cov then
  here = cov.here
else
  local wanted = {}
  here = function(line)
    local src = getinfo(3, "S").source
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
end
local function lua_hook(_, line) here(line) end
local function attach(co)
  if cov then return cov.attach(co) end
  if co then return sethook(co, lua_hook, "l") end
  return sethook(lua_hook, "l")
end

-- thread -> { fn, mask, count } of the hook someone else set there
local theirs = setmetatable({}, { __mode = "k" })

debug.sethook = function(...) -- luacheck: ignore 122
  local co, fn, mask, n
  if type((...)) == "thread" then co, fn, mask, n = ... else fn, mask, n = ... end
  co = co or running()
  if fn == nil then
    theirs[co] = nil
    sethook(co)
    return attach(co)
  end
  mask, n = mask or "", n or 0
  theirs[co] = { fn, mask, n }
  local lines = mask:find("l", 1, true)
  -- Lua 5.4.4 delivers no count events to a hook that also has "l": a count of n is
  -- emulated with line events (about three VM instructions a line).
  local every = n > 0 and math.max(1, n // 3) or 0
  local left = every
  local function chained(event, line)
    if event == "line" then
      here(line)
      if every > 0 then
        left = left - 1
        if left <= 0 then
          left = every
          if lines then fn(event, line) end
          return fn("count")
        end
      end
      if not lines then return end
    end
    return fn(event, line)
  end
  return sethook(co, chained, lines and mask or mask .. "l")
end

debug.gethook = function(co) -- luacheck: ignore 122
  local t = theirs[co or running()]
  if t then return t[1], t[2], t[3] end
  if co then return gethook(co) end
  return gethook()
end

local flushed = false
local function flush()
  if flushed then return end
  flushed = true
  sethook()
  if cov then cov.detach(); counts = cov.dump() end
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
local keep = setmetatable({}, { __gc = flush })
-- The registry keeps it (and its __gc) alive until the state closes.
debug.getregistry()["polysim.coverage"] = keep
attach()
