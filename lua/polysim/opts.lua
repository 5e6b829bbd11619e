-- Options checking shared by every polysim entry point (client, streams, runtime, cli).
--
--   opts.check(fname, given, known, level)
--
-- raises "fname: unknown option 'quantiy' (did you mean `quantity`?)" for a key of `given`
-- that is not in `known` (a set {name = true} or a list {"name", ...}); `given` may be nil
-- (nothing to check) and must otherwise be a table. `level` is the error level as for
-- error(), counted from the function that calls opts.check (2: its caller). Without a level
-- the error points at the first stack frame outside polysim's own Lua files, so a misspelled
-- option is reported at the user's line however deep inside the library it was found.
local error, ipairs, pairs, tostring, type = error, ipairs, pairs, tostring, type
local getinfo, sort = debug.getinfo, table.sort

local _M = {}

-- The directory holding polysim's Lua files ("@/path/lua/polysim/"), from this file's name.
local LIBDIR = (getinfo(1, "S").source or ""):match("^(@.*[/\\])[^/\\]*$")

-- For a function F calling _M.level: the level (as error() counts it in F) of the first
-- frame outside polysim's files, looking from F's level `from` (default 2: F's caller).
function _M.level(from)
  local l = (from or 2) + 1
  while true do
    local info = getinfo(l, "S")
    if not info then return l - 1 end
    local src = info.source
    -- C frames (pcall, xpcall) are looked through: they have no line of their own.
    if info.what ~= "C" and not (LIBDIR and src:sub(1, #LIBDIR) == LIBDIR) then return l - 1 end
    l = l + 1
  end
end

-- Raises "fname: msg" at `level` (counted like error()'s from the function calling
-- _M.error), or at the first frame outside polysim's files when level is nil.
function _M.error(fname, msg, level)
  local text = fname and (fname .. ": " .. msg) or msg
  if level then error(text, level + 1) end
  error(text, _M.level(2))
end

-- Optimal string alignment distance (Levenshtein plus adjacent transpositions).
local function distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local d = prev[j] + 1
      if cur[j - 1] + 1 < d then d = cur[j - 1] + 1 end
      if prev[j - 1] + cost < d then d = prev[j - 1] + cost end
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb and prev2[j - 2] + 1 < d then
        d = prev2[j - 2] + 1
      end
      cur[j] = d
    end
    prev2, prev, cur = prev, cur, prev2
  end
  return prev[lb]
end
_M.distance = distance

local function names(known)
  local list = {}
  if known[1] ~= nil then
    for i, k in ipairs(known) do list[i] = k end
  else
    for k in pairs(known) do list[#list + 1] = k end
  end
  sort(list, function(x, y) return tostring(x) < tostring(y) end)
  return list
end

-- The known name nearest to `name` when it is close enough to be a typo, else nil.
function _M.suggest(name, known)
  if type(name) ~= "string" then return nil end
  local lname = name:lower()
  local best, bestd
  for _, k in ipairs(names(known)) do
    if type(k) == "string" then
      local d = distance(lname, k:lower())
      if lname ~= k:lower() and (k:sub(1, #lname) == lname or lname:sub(1, #k) == k) and #lname >= 3 then
        d = 1                                          -- a prefix or an extension: a near miss
      end
      if not bestd or d < bestd then best, bestd = k, d end
    end
  end
  if not best then return nil end
  local limit = #name <= 4 and 1 or #name <= 8 and 2 or 3
  if bestd <= limit then return best end
  return nil
end

local function is_known(known, k)
  if known[k] then return true end
  if known[1] ~= nil then
    for _, n in ipairs(known) do if n == k then return true end end
  end
  return false
end

function _M.check(fname, given, known, level)
  if given == nil then return given end
  local lvl = level and level + 1 or nil
  if type(given) ~= "table" then
    _M.error(fname, "options must be a table, got " .. type(given), lvl or _M.level(2))
  end
  for k in pairs(given) do
    if not is_known(known, k) then
      local msg = "unknown option '" .. tostring(k) .. "'"
      local near = _M.suggest(k, known)
      if near then msg = msg .. " (did you mean `" .. near .. "`?)" end
      _M.error(fname, msg, lvl or _M.level(2))
    end
  end
  return given
end

return _M
