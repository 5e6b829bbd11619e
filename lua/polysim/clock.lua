-- The runtime's clock: where strategy time comes from. The default is the real one, on the
-- loop; a backtest passes its own (simulated) clock as the runtime's opts.clock.
--
-- A clock is a table of functions, called with a dot (clock.now(), not clock:now()):
--   now()                 wall-clock time, Unix seconds with a fraction
--   monotime()            monotonic seconds, for measuring durations
--   after(seconds, fn)    calls fn() once after `seconds`; returns a handle with :cancel()
--   sleep(seconds)        optional: waits inside a task; default: a suspend on after()
-- The time budget and the stop grace always use the real monotonic clock: they are about
-- how long a callback holds the one thread, which simulated time does not change.
local core = require "polysim.core"
local log = require "polysim.log"
local ploop = require "polysim.loop"

local error, setmetatable, type = error, setmetatable, type

local _M = {}

local Handle = {}
local handle_mt = { __name = "polysim.ClockTimer", __index = Handle }
function Handle:cancel()
  if self.id then ploop.cancel(self.id) end
  self.id = nil
end

-- The real clock on polysim's loop.
_M.real = {
  now = log.wallclock,
  monotime = core.monotime,
  after = function(seconds, fn)
    local h = setmetatable({}, handle_mt)
    h.id = ploop.timer(seconds, function()
      h.id = nil
      fn()
    end)
    return h
  end,
  sleep = ploop.sleep,
}

-- Checks a clock given as an option and fills in sleep when it has none.
function _M.check(c, fname)
  if c == nil then return _M.real end
  if type(c) ~= "table" then error(fname .. ": clock must be a table of functions", 3) end
  for _, k in ipairs { "now", "monotime", "after" } do
    if type(c[k]) ~= "function" then error(fname .. ": clock." .. k .. " must be a function", 3) end
  end
  if c.sleep == nil then
    local after = c.after
    local wrapped = setmetatable({}, { __index = c })
    wrapped.sleep = function(seconds)
      if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
        error("sleep: seconds must be a number >= 0", 2)
      end
      ploop.suspend(function(wake) after(seconds, wake) end)
    end
    return wrapped
  end
  return c
end

return _M
