-- Loading a strategy version: its file compiled in an environment of its own, with fresh
-- copies of the modules it requires from its own directory (so a reload picks up their
-- edits), and the checks of the strategy table's fields.
--
--   local ver = sandbox.compile(path, { warn = function(msg) end })
--   ver.mod, ver.env, ver.files (the files it loaded: what to watch), ver.budget, ver.conflate
local budget = require "polysim.budget"

local output = require "polysim.output"
local finalizer = require "polysim.finalizer"

local assert, collectgarbage, debug, error, getmetatable, ipairs, load, loadfile, os, package, pairs, pcall,
  rawget, rawset, require, setmetatable, tostring, type =
  assert, collectgarbage, debug, error, getmetatable, ipairs, load, loadfile, os, package, pairs, pcall,
  rawget, rawset, require, setmetatable, tostring, type
local _G = _G

local _M = {}

_M.CALLBACKS = { on_start = true, on_price = true, on_fill = true, on_reload = true, on_stop = true,
                 on_spot = true, on_window = true } -- on_spot, on_window: the host engineer (issue 9)
_M.FIELDS = { name = "string", cancel_on_stop = "boolean", conflate = "boolean", budget = "number" }
local CALLBACKS, FIELDS = _M.CALLBACKS, _M.FIELDS
local known_names
local function KNOWN_NAMES()
  if not known_names then
    known_names = {}
    for k in pairs(CALLBACKS) do known_names[#known_names + 1] = k end
    for k in pairs(FIELDS) do known_names[#known_names + 1] = k end
  end
  return known_names
end

local LOADING = setmetatable({}, { __tostring = function() return "(loading)" end })

function _M.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end
local dirname = _M.dirname

function _M.basename(path)
  return path:match("([^/]*)$")
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

-- A compile error is shown as it is, without a traceback.
local function plain_error(msg) error({ plain = true, msg = msg }, 0) end
_M.plain_error = plain_error

local function load_strategy_file(path, env)
  budget.register("@" .. path)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then plain_error(err) end
  return chunk
end

-- The environment of one version: its own copies of the standard libraries (so
-- `math.floor = nil` or `string.format = f` change the strategy's copy, never the host's),
-- a `require` that serves those copies and the strategy's own modules, `os.exit` that stops
-- the strategy instead of the process, a safe `debug` (no sethook: the budget's hook stays),
-- coroutines that stay under the budget, finalizers that run as budgeted tasks later, and
-- print/io.write/io.stderr:write going through the runtime's logger (so redacted).
-- What stays shared: package.loaded entries other than the libraries, the string metatable (`("x"):upper()` uses the real string table, which
-- the strategy cannot reach: getmetatable("") answers a copy), the polysim modules it
-- requires (polysim, polysim.decimal...), and the values a ctx hands it.
local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local BASE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
               "rawset", "select", "tonumber", "tostring", "type", "xpcall", "_VERSION", "warn" }
local LIBS = { "string", "math", "table", "utf8" }

-- os.exit raises a clear error in the strategy (its callback fails and is reported; the
-- host goes on); ctx:stop() is how a strategy ends itself.
local function exit_fn()
  return function(code)
    error("os.exit is not available to a strategy (called with " .. tostring(code) .. "): use ctx:stop()", 2)
  end
end

local function new_env(ver, dir)
  -- package.loaded: the version's own library copies and its own modules; other names read
  -- and write through to the host's (what the C embedding example's probe relies on; the
  -- host's own modules hold their libraries in locals, so this cannot reach them).
  local loaded = setmetatable({}, { __index = package.loaded, __newindex = package.loaded })
  local env = {}
  for _, k in ipairs(BASE) do env[k] = _G[k] end
  for _, k in ipairs(LIBS) do env[k] = copy(_G[k]) end
  env._G = env
  local os_copy = copy(os)
  os_copy.exit = exit_fn(ver)
  os_copy.setlocale = nil
  env.os = os_copy
  env.coroutine = budget.coroutine_lib()
  env.debug = { traceback = debug.traceback, getinfo = debug.getinfo,
                sethook = function() error("debug.sethook is not available to a strategy", 2) end,
                gethook = function() return nil end }
  output.install(env, ver)
  local string_mt = { __index = env.string }
  env.getmetatable = function(v)
    if type(v) == "string" then return string_mt end
    return getmetatable(v)
  end
  env.setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then finalizer.guard(ver, mt) end
    return setmetatable(t, mt)
  end
  env.collectgarbage = function(opt, ...)
    if opt == nil or opt == "collect" or opt == "count" or opt == "step" or opt == "isrunning" then
      return collectgarbage(opt, ...)
    end
    error("collectgarbage('" .. tostring(opt) .. "') is not available to a strategy", 2)
  end
  env.load = function(chunk, name, mode, e)
    if e == nil then e = env end
    return load(chunk, name, mode == "b" and "t" or mode or "t", e)
  end
  env.loadfile = function(p, _, e)
    if e == nil then e = env end
    return loadfile(p, "t", e)
  end
  env.dofile = function(p)
    local chunk = assert(loadfile(p, "t", env))
    return chunk()
  end
  local own = { string = env.string, math = env.math, table = env.table, utf8 = env.utf8, os = env.os,
                io = env.io, coroutine = env.coroutine, debug = env.debug, _G = env }
  local package_copy = { loaded = loaded, path = package.path, cpath = "", config = package.config,
                         preload = {} }
  own.package = package_copy
  env.package = package_copy
  for k, v in pairs(own) do rawset(loaded, k, v) end
  env.require = function(name)
    if type(name) ~= "string" then return require(name) end
    local have = rawget(loaded, name)
    if have == LOADING then error("circular require of '" .. name .. "'", 2) end
    if have ~= nil then return have end
    local rel = name:gsub("%.", "/")
    for _, cand in ipairs { dir .. "/" .. rel .. ".lua", dir .. "/" .. rel .. "/init.lua" } do
      if exists(cand) then
        ver.files[#ver.files + 1] = cand
        local chunk = load_strategy_file(cand, env)
        rawset(loaded, name, LOADING)
        local ok, res = pcall(chunk, name, cand)
        if not ok then
          rawset(loaded, name, nil)
          error(res, 0)
        end
        if res == nil then res = true end
        rawset(loaded, name, res)
        return res
      end
    end
    return require(name)
  end
  return env
end

-- Compiles and runs path (inside the load task). Returns the version record.
-- opts.warn(msg) hears about suspicious fields (an unknown on_* callback).
function _M.compile(path, opts)
  opts = opts or {}
  local ver = { path = path, files = { path }, timers = {}, retired = false }
  local env = new_env(ver, dirname(path))
  ver.env = env
  local chunk = load_strategy_file(path, env)
  local mod = chunk(path)
  if type(mod) ~= "table" then
    plain_error(path .. ": a strategy must return a table of callbacks (it returned " .. type(mod) .. ")")
  end
  for k, v in pairs(mod) do
    if CALLBACKS[k] then
      if type(v) ~= "function" then plain_error(path .. ": " .. k .. " must be a function") end
    elseif FIELDS[k] then
      local want = FIELDS[k]
      if type(v) ~= want and not (k == "budget" and v == false) then
        plain_error(path .. ": " .. k .. " must be a " .. want)
      end
    elseif type(k) == "string" and opts.warn then
      -- cli (issue 11): a misspelt field (cancel_on_stp) is named with the nearest known one.
      local near = require("polysim.opts").suggest(k, KNOWN_NAMES())
      if near then
        opts.warn(path .. ": unknown field '" .. k .. "' (did you mean '" .. near .. "'?)")
      elseif k:match("^on_") then
        opts.warn(path .. ": unknown callback '" .. k ..
          "' (the runtime calls on_start, on_price, on_fill, on_spot, on_window, on_reload, on_stop)")
      end
    end
  end
  if mod.budget ~= nil and mod.budget ~= false and mod.budget <= 0 then
    plain_error(path .. ": budget must be > 0 (or false for none)")
  end
  ver.mod = mod
  ver.budget = mod.budget
  ver.conflate = mod.conflate and true or false
  return ver
end

return _M
