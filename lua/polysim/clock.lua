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

-- A simulated clock for backtests: time moves only when advance(t) is called, which runs
-- every timer due up to t in time order (ties: the order they were armed), so nothing
-- really sleeps and a run is deterministic. sim(t0) -> clock with now, monotime, after,
-- sleep (from check), advance(t), next_due() -> time of the next timer or nil.
local SimHandle = {}
local sim_handle_mt = { __name = "polysim.SimTimer", __index = SimHandle }
function SimHandle:cancel() self.fn = nil end

function _M.sim(t0)
  local now, seq = t0 or 0, 0
  local heap = {} -- binary heap of handles by (at, seq)
  local function less(a, b) return a.at < b.at or (a.at == b.at and a.seq < b.seq) end
  local function push(h)
    local i = #heap + 1
    heap[i] = h
    while i > 1 do
      local p = i // 2
      if less(heap[i], heap[p]) then heap[i], heap[p] = heap[p], heap[i]; i = p else break end
    end
  end
  local function pop()
    local top, n = heap[1], #heap
    heap[1] = heap[n]
    heap[n] = nil
    n = n - 1
    local i = 1
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if l <= n and less(heap[l], heap[m]) then m = l end
      if r <= n and less(heap[r], heap[m]) then m = r end
      if m == i then break end
      heap[i], heap[m] = heap[m], heap[i]
      i = m
    end
    return top
  end
  local c = {}
  function c.now() return now end
  function c.monotime() return now end
  function c.after(seconds, fn)
    seq = seq + 1
    local h = setmetatable({ at = now + seconds, seq = seq, fn = fn }, sim_handle_mt)
    push(h)
    return h
  end
  function c.next_due()
    while heap[1] and not heap[1].fn do pop() end
    return heap[1] and heap[1].at
  end
  -- (next_due written out: a backtest calls this once per event, and most find no timer due)
  function c.advance(t)
    while true do
      local h = heap[1]
      if not h then break end
      local fn = h.fn
      if not fn then
        pop() -- cancelled
      else
        local at = h.at
        if at > t then break end
        pop()
        if at > now then now = at end
        h.fn = nil
        fn()
      end
    end
    if t > now then now = t end
  end
  return _M.check(c, "clock.sim")
end

return _M
