-- A strategy's __gc finalizers. Lua 5.4 runs finalizers with debug hooks off, so a loop in
-- one could never be interrupted. The strategy's setmetatable (polysim.sandbox) replaces a
-- __gc function with one that only queues the object; the queue is run soon after on the
-- loop, each finalizer as a budgeted callback task of the strategy's runtime.
-- Remains open: a metatable whose __gc is assigned after setmetatable (a placeholder first)
-- bypasses this; the SIGINT/SIGTERM watchdog's hard stop is the backstop there.
local ploop = require "polysim.loop"

local ipairs, rawget, rawset, require, setmetatable, type = ipairs, rawget, rawset, require, setmetatable, type

local _M = {}

local pending, ticking = {}, false
local INTERVAL = 0.05 -- how often the queue is looked at (finalizers create no timers: they may run in lua_close)
local wrapped = setmetatable({}, { __mode = "k" }) -- our wrappers

local function run_pending()
  if #pending == 0 then return end
  local list = pending
  pending = {}
  local callback = require "polysim.callback"
  for _, item in ipairs(list) do
    local ver, fn, obj = item[1], item[2], item[3]
    local rt = ver.rt
    if rt and not rt.stopped then
      callback.invoke(rt, ver, "__gc finalizer", fn, obj)
    end
  end
end

function _M.guard(ver, mt)
  local fn = rawget(mt, "__gc")
  if type(fn) ~= "function" or wrapped[fn] then return end
  local function deferred(obj)
    pending[#pending + 1] = { ver, fn, obj }
  end
  if not ticking then
    ticking = true
    ploop.every(INTERVAL, run_pending)
  end
  wrapped[deferred] = true
  rawset(mt, "__gc", deferred)
end

return _M
