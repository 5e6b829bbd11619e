-- Loading a strategy version: its file compiled in an environment of its own, with fresh
-- copies of the modules it requires from its own directory (so a reload picks up their
-- edits), and the checks of the strategy table's fields.
--
--   local ver = sandbox.compile(path, { warn = function(msg) end })
--   ver.mod, ver.env, ver.files (the files it loaded: what to watch), ver.budget, ver.conflate
local budget = require "polysim.budget"

local error, ipairs, loadfile, pairs, pcall, require, setmetatable, type =
  error, ipairs, loadfile, pairs, pcall, require, setmetatable, type

local _M = {}

_M.CALLBACKS = { on_start = true, on_price = true, on_fill = true, on_reload = true, on_stop = true }
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

-- The environment of one version.
local function new_env(ver, dir)
  local loaded = {}
  local env = setmetatable({}, { __index = _G })
  env._G = env
  env.os = setmetatable({
    exit = function() error("os.exit is not available to a strategy: use ctx:stop()", 2) end,
  }, { __index = os })
  env.require = function(name)
    if type(name) ~= "string" then return require(name) end
    local have = loaded[name]
    if have == LOADING then error("circular require of '" .. name .. "'", 2) end
    if have ~= nil then return have end
    local rel = name:gsub("%.", "/")
    for _, cand in ipairs { dir .. "/" .. rel .. ".lua", dir .. "/" .. rel .. "/init.lua" } do
      if exists(cand) then
        ver.files[#ver.files + 1] = cand
        local chunk = load_strategy_file(cand, env)
        loaded[name] = LOADING
        local ok, res = pcall(chunk, name, cand)
        if not ok then
          loaded[name] = nil
          error(res, 0)
        end
        if res == nil then res = true end
        loaded[name] = res
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
          "' (the runtime calls on_start, on_price, on_fill, on_reload, on_stop)")
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
