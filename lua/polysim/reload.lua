-- Hot reload: watches a running strategy's files (the strategy and the modules it requires
-- from its own directory) with inotify and swaps in the new version when one changes.
--
--   local w = require("polysim.reload").watch(rt, { debounce = 0.01 })
--   ...
--   w:close()
--
-- Directories are watched rather than files, so editors that save by writing a temporary
-- file and renaming it over the original are seen like any other save. Changes are
-- debounced: a reload starts once no change has come for `debounce` seconds (at most
-- 10 x debounce after the first), so a burst of writes makes one reload. The swap itself is
-- strategy.lua's Runtime:install: the new version compiles and starts beside the old one,
-- events wait meanwhile, and a broken version never replaces a working one.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local strategy = require "polysim.strategy"

local ipairs, pairs, setmetatable, string_format = ipairs, pairs, setmetatable, string.format
local monotime = core.monotime

local _M = { DEBOUNCE = 0.01 }

local function logger(rt)
  rt.reload_log = rt.reload_log or rt:logger("reload")
  return rt.reload_log
end

-- Reloads rt now and logs the outcome with its duration. Returns the new version number and
-- the seconds the reload took, or nil and the error (the running version stays).
function _M.reload(rt)
  local log = logger(rt)
  local old = rt.current and rt.current.n
  local n, took = rt:reload()
  if n then
    log.info(string_format("%s: v%d -> v%d in %.1f ms", rt.path, old or 0, n, took * 1000))
  elseif rt.reload_pending then
    log.debug(took)
  else
    log.error(string_format("%s: reload failed, v%s keeps running:\n%s", rt.path, tostring(old), tostring(took)))
  end
  return n, took
end

local Watcher = {}
local mt = { __name = "polysim.ReloadWatcher", __index = Watcher }
mt.__tostring = function(self)
  local n = 0
  for _ in pairs(self.dirs) do n = n + 1 end
  return string_format("polysim.ReloadWatcher (%d directories%s)", n, self.closed and ", closed" or "")
end

local function normal(path)
  if not path:find("/", 1, true) then return "./" .. path end
  return path
end

-- Watches the directories of every file the runtime depends on (new ones after each reload).
function Watcher:sync()
  for f in pairs(self.rt.watch_files) do
    self.files[normal(f)] = true
    local dir = strategy.dirname(normal(f))
    if self.dirs[dir] == nil then
      local ok, err = self.fw:add(dir)
      self.dirs[dir] = ok or false
      if not ok then logger(self.rt).warn("cannot watch " .. dir .. ": " .. tostring(err)) end
    end
  end
end

function Watcher:_fire()
  self.timer = nil
  if self.closed then return end
  if self.busy then
    self.again = true
    return
  end
  self.busy = true
  ploop.spawn(function()
    repeat
      self.again = false
      local seen = self.first_change
      self.first_change = nil
      local n, took = _M.reload(self.rt)
      self:sync()
      self.reloads = self.reloads + 1
      if self.on_reload then self.on_reload(n, took, seen) end
    until not self.again or self.closed or self.rt.stopping
    self.busy = false
  end)
end

function Watcher:_changed()
  local paths, overflow = self.fw:read()
  local hit = overflow
  for _, p in ipairs(paths) do
    if self.files[p] then hit = true end
  end
  if not hit or self.closed then return end
  local now = monotime()
  self.first_change = self.first_change or now
  if self.timer then
    if now - self.first_change >= 10 * self.debounce then return end -- let it fire
    ploop.cancel(self.timer)
  end
  self.timer = ploop.timer(self.debounce, function() self:_fire() end)
end

-- watch(rt, { debounce = seconds, on_reload = function(version|nil, seconds|err, changed_at) })
-- -> watcher | nil, err
function _M.watch(rt, opts)
  opts = opts or {}
  local fw, err = core.fswatch()
  if not fw then return nil, err end
  local self = setmetatable({
    rt = rt, fw = fw, dirs = {}, files = {}, debounce = opts.debounce or _M.DEBOUNCE,
    on_reload = opts.on_reload, timer = nil, first_change = nil, busy = false, again = false,
    reloads = 0, closed = false, watch_id = nil,
  }, mt)
  self:sync()
  self.watch_id = ploop.core:watch(fw:fd(), "r", function() self:_changed() end)
  return self
end

function Watcher:close()
  if self.closed then return end
  self.closed = true
  if self.timer then ploop.cancel(self.timer) end
  self.timer = nil
  ploop.cancel(self.watch_id)
  self.fw:close()
end
mt.__close = Watcher.close

return _M
