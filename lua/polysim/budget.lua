-- The time budget: a callback that runs longer than its budget without yielding is
-- interrupted. The clock is the loop's: polysim.loop restarts task.since whenever it
-- starts or resumes a task with a budget (task.budget, seconds), so a callback that waits
-- often may run as long as it likes. This module installs the hook that enforces it.
--
-- Only strategy code is interrupted: the hook raises only when the frame it lands in comes
-- from one of the strategy's own files (registered here by the sandbox). When the budget
-- runs out inside polysim's own code (ctx:subscribe, the client, a feed), the task is
-- flagged and the error is raised at the next hook in strategy code, so the runtime's own
-- updates are never cut in half. Once interrupted, the hook raises at every instruction of
-- strategy code, so a pcall inside the strategy cannot swallow the interruption.
--
-- The same hook stops a strategy that keeps the host from taking SIGINT/SIGTERM (src/signals.c,
-- the watchdog): once the loop is stuck on a signal it has not taken, strategy code running
-- raises "stopped by SIGTERM", by the same rule, budget or not (so while the watchdog runs,
-- a task without a budget carries the hook too).
local core = require "polysim.core"
local ploop = require "polysim.loop"

local coroutine, debug, error, pairs, setmetatable, string_format, type =
  coroutine, debug, error, pairs, setmetatable, string.format, type
local monotime, task_of, stuck, signaled = core.monotime, ploop.task_of, core.watchdog_stuck, core.watchdog_signal

local _M = { HOOK_COUNT = 1000, -- VM instructions between budget checks
             STOP_BUDGET = 1 }  -- seconds: the budget of every callback once a signal stops the host

-- Chunk names ("@path") of strategy code: the only frames the budget interrupts.
local sources = {}
_M.sources = sources

local watchdog -- whether src/signals.c's thread watches SIGINT/SIGTERM (started with the first strategy)

function _M.register(source)
  sources[source] = true
  if watchdog == nil then watchdog = core.watchdog_start() end
end
function _M.is_strategy(source) return sources[source] == true end

local getinfo, sethook, running = debug.getinfo, debug.sethook, coroutine.running

-- Coroutines a strategy made itself (coroutine.create/wrap in its environment) -> the task
-- that last resumed them: their time counts against that task's budget.
local owners = setmetatable({}, { __mode = "k" })
_M.owners = owners

local hook

-- The budget ran out while polysim's own code was running: watch returns, and switch to
-- checking every instruction as soon as control is back in strategy code.
local function overdue(task)
  task.overdue = true
  sethook(hook, "r", _M.HOOK_COUNT)
end

local function interrupt(task, level)
  local info = getinfo(level, "Sl")
  local where = info.currentline and info.currentline > 0 and (info.short_src .. ":" .. info.currentline)
    or info.short_src
  local msg = string_format("%s ran %.2f s without yielding, past its time budget of %g s; interrupted at %s",
    task.label or task.name or "callback", monotime() - task.since, task.budget, where)
  task.expired = msg
  if task.on_expire then task.on_expire(task) end
  sethook(hook, "", 1)
  -- the coroutines between here and the task (the strategy's own) raise at their next line too
  local co, seen = running(), 0
  while owners[co] and seen < 100 do
    co, seen = owners[co], seen + 1
    sethook(co, hook, "", 1)
  end
  error(msg, 0)
end

local function task_here(co)
  co = co or running()
  local task = task_of(co)
  if task then return task end
  local seen = 0
  while not task and owners[co] and seen < 100 do
    co, seen = owners[co], seen + 1
    task = task_of(co)
  end
  return task
end
_M.task_here = task_here

-- The loop is stuck on a signal it has not taken (core.watchdog_stuck): the running task
-- is stopped like an expired one, without counting as a budget kill.
local function halt(task, sig)
  local info = getinfo(3, "Sl")
  local where = info.currentline and info.currentline > 0 and (info.short_src .. ":" .. info.currentline)
    or info.short_src
  local msg = string_format("stopped by %s: %s interrupted at %s", sig, task.label or task.name or "callback", where)
  task.expired = msg
  sethook(hook, "", 1)
  local co, seen = running(), 0
  while owners[co] and seen < 100 do
    co, seen = owners[co], seen + 1
    sethook(co, hook, "", 1)
  end
  return msg
end

function hook(event)
  local task = task_here()
  if not task or task.over then return end
  local msg = task.expired
  if not msg then
    local sig = watchdog and stuck()
    if sig then
      msg = halt(task, sig)
    elseif not task.budget then
      -- a stop by signal is under way: no strategy code runs more than STOP_BUDGET from now
      -- without yielding (a loop the host took the signal around, then preempted in slices)
      if not (watchdog and signaled()) then return end
      task.budget, task.since = _M.STOP_BUDGET, monotime()
    end
  end
  if msg then
    if sources[getinfo(2, "S").source] then error(msg, 0) end
    return
  end
  if event == "return" then
    -- a function returns: when its caller is strategy code, check every instruction from now
    local caller = getinfo(3, "S")
    if caller and sources[caller.source] then sethook(hook, "", 1) end
    return
  end
  if not task.overdue and monotime() - task.since <= task.budget then return end
  if not sources[getinfo(2, "S").source] then return overdue(task) end
  interrupt(task, 3) -- not a tail call: level 3 is the interrupted function
end

-- setup for ploop.spawn_task: the hook on a budgeted task's coroutine.
-- Without a budget too when the watchdog runs (the hook then only looks at core.watchdog_stuck).
-- True when it installed the hook.
function _M.install(task)
  if task.budget or watchdog then
    sethook(task.co, hook, "", _M.HOOK_COUNT)
    return true
  end
  return false
end

-- polysim.callback's runners keep their hook from callback to callback: whether one with
-- this budget needs it (installed once), and the hook put back as install puts it (after an
-- interruption changed it).
function _M.wants_hook(limit) return (limit or watchdog) and true or false end
function _M.rearm(task) sethook(task.co, hook, "", _M.HOOK_COUNT) end

-- The coroutine library of a strategy's environment: what it creates carries the budget
-- hook, and its time counts against the task that resumes it.
function _M.coroutine_lib()
  local lib = {}
  for k, v in pairs(coroutine) do lib[k] = v end
  local create, resume, status = coroutine.create, coroutine.resume, coroutine.status
  local function arm(co)
    if type(co) == "thread" then sethook(co, hook, "", _M.HOOK_COUNT) end
    return co
  end
  lib.create = function(fn) return arm(create(fn)) end
  local function own_resume(co, ...)
    if type(co) == "thread" and status(co) == "suspended" then owners[co] = running() end
    return resume(co, ...)
  end
  lib.resume = own_resume
  lib.wrap = function(fn)
    local co = arm(create(fn))
    local function pass(ok, ...)
      if not ok then
        local err = ...
        error(err, 0)
      end
      return ...
    end
    return function(...) return pass(own_resume(co, ...)) end
  end
  return lib
end

-- Whether the running code is inside a task whose budget interrupted it.
function _M.expired(task) return task and task.expired end

return _M
