-- The strategy runtime's versions: compiling a file in its sandbox, starting it beside the
-- running version (on_start / on_reload) with events held back, swapping it in, and
-- reload(). Methods of polysim.strategy's runtime (mixed in there), and retire().
local core = require "polysim.core"
local ploop = require "polysim.loop"
local callback = require "polysim.callback"
local sandbox = require "polysim.sandbox"
local context = require "polysim.ctx"
local events = require "polysim.strategy.events"
local TAIL = require("polysim.strategy.observe").TAIL

local ipairs, pcall, tostring, type = ipairs, pcall, tostring, type
local monotime = core.monotime
local invoke, wait = callback.invoke, callback.wait
local spawn = ploop.spawn
local basename = sandbox.basename
local pump_all = events.pump_all

local _M = {}

local Runtime = {}
_M.methods = Runtime

local function retire(ver)
  ver.retired = true
  context.cancel_timers(ver)
end

local function compile(rt, path)
  local ver = sandbox.compile(path, { warn = function(msg) rt:_log("warn", rt.name, msg) end })
  ver.rt = rt
  return ver
end

-- Compiles path and starts it (on_start, or on_reload when replacing a running version),
-- with events held back meanwhile. Returns the version record and the seconds it took, or
-- nil and the error message (file and line) with the running version left in place.
-- Whatever fails on the way (even outside a task), the hold on events is released.
function Runtime:install(path)
  local t0 = monotime()
  local replacing = self.current
  self.installing = true
  self.paused = self.paused + 1
  local ok, ver, err = pcall(self._install, self, path, replacing)
  if not ok then ver, err = nil, tostring(ver) end
  self.installing = false
  self.paused = self.paused - 1
  local took = monotime() - t0
  if replacing then
    local r = { at = self.clock.now(), ms = took * 1000, ok = ver and true or false, error = not ver and err or nil }
    local list = self.reload_history
    list[#list + 1] = r
    if #list > TAIL then table.remove(list, 1) end
    self:_notify("reload", r)
  end
  pump_all(self)
  if self.reload_pending and not self.stopping then
    self.reload_pending = false
    spawn(function() self:reload() end)
  end
  if ver then return ver, took end
  return nil, err
end

function Runtime:_install(path, replacing)
  local rec = invoke(self, nil, "loading " .. basename(path), compile, self, path, true)
  wait(rec)
  if not rec.ok then
    for _, f in ipairs(self.last_files or {}) do self.watch_files[f] = true end
    return nil, tostring(rec.result)
  end
  local ver = rec.result
  self.last_files = ver.files
  for _, f in ipairs(ver.files) do self.watch_files[f] = true end
  if self.stopping then return nil, "stopping" end
  if not self.strategy_log then
    if not self.name_given and type(ver.mod.name) == "string" then self.name = ver.mod.name end
    self.strategy_log = self:logger(self.name)
  end
  ver.n = self.versions + 1
  ver.ctx = context.new(self, ver)
  local fn, label, arg
  if replacing and ver.mod.on_reload then
    fn, label, arg = ver.mod.on_reload, "on_reload", self.state
  else
    fn, label = ver.mod.on_start, "on_start"
  end
  if fn then
    local r = invoke(self, ver, label .. " (v" .. ver.n .. ")", fn, ver.ctx, arg, true)
    wait(r)
    if not r.ok then
      retire(ver)
      return nil, tostring(r.result)
    end
  end
  if self.stopping then
    retire(ver)
    return nil, "stopped while starting"
  end
  if type(ver.ctx.state) == "table" then self.state = ver.ctx.state end
  self.versions = ver.n
  if replacing then retire(replacing) end
  self.current = ver
  return ver
end

-- Loads the strategy file again and swaps it in when it compiles and starts. Returns the
-- version number and the seconds it took, or nil and the error (the old version runs on).
function Runtime:reload()
  if not self.current or self.stopping then return nil, "not running" end
  if self.installing then
    self.reload_pending = true
    return nil, "a reload is in progress; another one will follow it"
  end
  local ver, took = self:install(self.path)
  if not ver then
    self.stats.failed_reloads = self.stats.failed_reloads + 1
    return nil, took
  end
  self.stats.reloads = self.stats.reloads + 1
  return ver.n, took
end
_M.retire = retire

return _M
