--- Tasks on the event loop: the OpenResty cosocket model.
-- Code running in a task (a coroutine made by `spawn`) that waits on the network yields to
-- the loop, which resumes it when its answer is in; code outside any task waits by driving
-- the loop itself. The same client method therefore blocks in a plain script and yields
-- under the host (`polysim run`), where every callback already runs in a task.
--
-- A plain script that starts streams or tasks must drive the loop until it has what it
-- wants: `run_until(pred, timeout)`.
--
--    local loop = require "polysim.loop"
--    local a = loop.spawn(function() return client:market(id1) end)
--    local b = loop.spawn(function() return client:market(id2) end)
--    local m1, m2 = loop.join(a), loop.join(b)      -- both requests were in flight at once
--
-- A task that raises reports its error (with traceback) to `task.on_error`, else
-- `loop.on_error` (default: a line on stderr); it never escapes into unrelated code.
-- @module polysim.loop
local core = require "polysim.core"

local coroutine, error, setmetatable, table = coroutine, error, setmetatable, table
local ipairs, pcall, tostring, type, xpcall = ipairs, pcall, tostring, type, xpcall
local monotime = core.monotime
local co_resume = coroutine.resume

local _M = {}

local loop = core.loop()
_M.core = loop

-- Yielded by a task that waits for the loop; anything else yielded to the loop is a bug.
local SENTINEL = setmetatable({}, { __tostring = function() return "polysim.loop.SENTINEL" end })
_M.SENTINEL = SENTINEL

local tasks = setmetatable({}, { __mode = "k" }) -- coroutine -> task record

--- Where the errors of tasks and loop callbacks go: `function(err, task)`, replaceable.
-- Default: one line on stderr naming the task.
-- @function on_error
local function default_error_handler(err, task)
  io.stderr:write(string.format("polysim: task %s failed: %s\n", task.name or "?", tostring(err)))
end
_M.on_error = default_error_handler
-- Errors of callbacks put straight on the C loop without a handler of their own (issue 8
-- bug 2) reach the same place as a task's: whatever _M.on_error is at that moment.
loop:on_error(function(err) _M.on_error(err, { name = "loop callback" }) end)

local function wake_joiners(task)
  if task.joiners then
    for _, wake in ipairs(task.joiners) do wake() end
    task.joiners = nil
  end
end

-- spawn_task's coroutines are pooled: a worker runs one task's body, then yields FREE and
-- waits for the next (the profile of the strategy runtime's deliver had a coroutine, its
-- weak-table entry and its collection per event among the largest costs).
local FREE = setmetatable({}, { __tostring = function() return "polysim.loop.FREE" end })
local NO_RESULTS = table.pack()
local pool, pool_n, POOL_MAX = {}, 0, 32
local yield = coroutine.yield
local function worker(fn, ...)
  fn(...)
  return worker(yield(FREE))
end

-- Yielded (first, before the run's outcome) by a kept task (keep_task below) whose run is
-- over: it is done, and its coroutine stays with its record for the next run.
local PARKED = setmetatable({}, { __tostring = function() return "polysim.loop.PARKED" end })
_M.PARKED = PARKED

local function parked(task, _, ...)
  task.done = true
  if task.joiners then wake_joiners(task) end
  return task.on_park(task, ...)
end

local function finish(task, ok, ...)
  local co = task.co
  if ok and (...) == PARKED then return parked(task, ...) end
  if ok and (...) == FREE then
    tasks[co] = nil
    task.done = true
    task.results = NO_RESULTS
    if pool_n < POOL_MAX then
      pool_n = pool_n + 1
      pool[pool_n] = co
    end
    return wake_joiners(task)
  end
  if coroutine.status(co) == "dead" then
    tasks[co] = nil
    task.done = true
    if ok then
      task.results = table.pack(...)
    else
      local err = ...
      task.error = type(err) == "string" and debug.traceback(co, err) or err
      ;(task.on_error or _M.on_error)(task.error, task)
    end
    return wake_joiners(task)
  end
  -- (the preempting hook yields no values; a caller that passes a fixed number of them, as
  -- polysim.callback's runners do, passes nils: take_preempted tells which it was)
  if ok and (...) == nil and _M.take_preempted and _M.take_preempted() == co then
    -- Suspended by the step deadline's hook (polysim.preempt, host only): parked until the
    -- host's next step resumes it; its budget counts only the time it ran.
    task.used = task.since and (monotime() - task.since)
    _M.preempted[#_M.preempted + 1] = task
    return
  end
  if ok and (...) ~= SENTINEL then
    -- A yield meant for some other scheduler reached ours: stop the task loudly.
    task.done = true
    task.error = "task yielded a value the loop does not understand (" .. tostring((...)) ..
      "); use polysim.loop.wrap for coroutines inside tasks"
    tasks[co] = nil
    ;(task.on_error or _M.on_error)(task.error, task)
    wake_joiners(task)
  end
end

-- A task with a time budget (task.budget, seconds) has its clock restarted here, at every
-- start and every resume after a wait: the loop is the one place that sees both. The hook
-- that enforces it is polysim.budget's.
local function resume(task, ...)
  if task.done then return end
  if task.budget then task.since = monotime() end
  return finish(task, coroutine.resume(task.co, ...))
end
_M.resume_task = resume

-- Tasks suspended at a step deadline (see finish), in order; the host resumes them with
-- resume_preempted() before anything else runs, so no other strategy code runs in between.
-- on_spawn(task), when set (by the host), runs after a spawn_task's setup.
_M.preempted = {}
function _M.resume_preempted()
  local list = _M.preempted
  _M.preempted = {}
  for i, task in ipairs(list) do
    if not task.done then
      if task.budget then task.since = monotime() - (task.used or 0) end
      finish(task, coroutine.resume(task.co))
    end
    if #_M.preempted > 0 and i < #list then -- the deadline passed again: keep the order
      for j = i + 1, #list do _M.preempted[#_M.preempted + 1] = list[j] end
      return
    end
  end
end

--- Starts `fn(...)` as a task now; it runs until its first wait.
-- @func fn the task's body
-- @param ... its arguments
-- @treturn table the task record: `done` (finished), `results` (a packed table), `error`;
--   set `name` and `on_error(err, task)` on it to label or handle its failure
-- @raise when `fn` is not a function
function _M.spawn(fn, ...)
  if type(fn) ~= "function" then error("spawn: fn must be a function", 2) end
  local task = { co = coroutine.create(fn) }
  tasks[task.co] = task
  resume(task, ...)
  return task
end

-- Like spawn, with a task record of the caller's own (fields it may set: name, on_error,
-- budget, and anything else it wants to find again through task_of). setup(task), when
-- given, runs after the coroutine exists and before it first runs (to install a hook); it
-- returns true when it installed one (which replaces the last task's).
function _M.spawn_task(task, setup, fn, ...)
  if type(fn) ~= "function" then error("spawn_task: fn must be a function", 2) end
  local co
  local reused = pool_n > 0
  if reused then
    co = pool[pool_n]
    pool[pool_n] = nil
    pool_n = pool_n - 1
  else
    co = coroutine.create(worker)
  end
  task.co = co
  tasks[co] = task
  -- the last task's hooks (budget, preempt) go with it: cleared unless setup replaced them
  -- (perf, issue 12: each debug.sethook is ~1000 instructions, two per delivered event)
  if not (setup and setup(task)) and reused then debug.sethook(co) end
  if _M.on_spawn then _M.on_spawn(task) end
  -- resume(task, fn, ...) written out (a task just made cannot be done): one call and one
  -- vararg pass fewer per delivered event
  if task.budget then task.since = monotime() end
  finish(task, co_resume(co, fn, ...))
  return task
end

-- A task that keeps its coroutine and its record from run to run (polysim.callback's
-- runners: a callback that ends without waiting costs no new record, no coroutine hand-over
-- and no hook installation; perf, issue 12). body is the coroutine's function: it gets the
-- first run's arguments, and ends each run with `yield(loop.PARKED, ...)`, which returns
-- the next run's. Its owner resumes it for each run (coroutine.resume, task.done false, since
-- set as resume sets it) and hands what that returned to finish_task unless it parked; when
-- a run that waited ends, the loop calls task.on_park(task, ...) with the rest of what it
-- yielded (outside the coroutine). A run that waits is an ordinary task meanwhile. setup(task)
-- as in spawn_task.
function _M.keep_task(task, setup, body)
  local co = coroutine.create(body)
  task.co = co
  tasks[co] = task
  if setup then setup(task) end
  if _M.on_spawn then _M.on_spawn(task) end
  return task
end

-- What the loop does with what a task's resume returned (ok, ...): for a kept task's own
-- resume of its next run when that did not park (it waits, was preempted, or went wrong).
_M.finish_task = finish

-- The task record of a coroutine (nil when it is not a task).
function _M.task_of(co) return tasks[co] end

--- The running task.
-- @treturn table|nil the task record, nil outside any task
function _M.current()
  local co, main = coroutine.running()
  if main then return nil end
  return tasks[co]
end

-- Waits until register(wake) calls wake(...), and returns those values.
function _M.suspend(register)
  local task = _M.current()
  if task then
    -- wake may run at once (inside register) or later from the loop: handle both.
    local state, early = "registering", nil
    register(function(...)
      if state == "registering" then
        state, early = "early", table.pack(...)
      elseif state == "waiting" then
        state = "woken"
        resume(task, ...)
      end
    end)
    if state == "early" then return table.unpack(early, 1, early.n) end
    state = "waiting"
    local function rest(first, ...)
      if first == SENTINEL then error("a task was resumed with the loop's sentinel", 2) end
      return first, ...
    end
    return rest(coroutine.yield(SENTINEL))
  end
  local done, results = false, nil
  register(function(...)
    if done then return end
    done, results = true, table.pack(...)
  end)
  while not done do
    -- A callback that raised during this step is somebody else's failure: report it to the
    -- handler and go on waiting, never raise it out of this (unrelated) call.
    local ok, err = pcall(loop.step, loop, 1)
    if not ok then _M.on_error(err, { name = "loop callback" }) end
  end
  return table.unpack(results, 1, results.n)
end

-- Waits for core.request(opts) (opts without on_done and data; this sets them) and returns
-- transfer:result(). The same wait as await/suspend, written out for the two values of a
-- result: perf (issue 13), the client's every call comes here. A task's transfer carries
-- the task (opts.data) to one shared on_done (no closure and upvalues per call); outside a
-- task the loop is stepped until the transfer is done, with no on_done at all. A transfer
-- never ends inside core.request (curl reports it from a loop step), so there is no early
-- answer to catch. perf (issue 13): a table keyed by transfers (the waiting tasks) was
-- rehashed at almost every insert with 64 in flight (a full 64-slot node part whose dead
-- keys only a rehash frees: callgrind, luaH_resize ~16k instructions a call of 178k).
local function check_resumed(first, ...)
  if first == SENTINEL then error("a task was resumed with the loop's sentinel", 2) end
  return first, ...
end
local function wake_waiting(transfer, task)
  local resp, err = transfer:result()
  transfer:close() -- the connection stays in curl's cache; the buffers can go now
  resume(task, resp, err)
end
function _M.request(opts)
  local task = _M.current()
  if task then
    opts.on_done, opts.data = wake_waiting, task
    core.request(opts)
    opts.data = nil -- the transfer holds the task; the caller's table need not
    return check_resumed(yield(SENTINEL))
  end
  opts.on_done, opts.data = nil, nil
  local transfer = core.request(opts)
  repeat -- never done before a step: curl reports the end from one
    -- as in suspend: a callback that raised during this step is somebody else's failure
    local ok, err = pcall(loop.step, loop, 1)
    if not ok then _M.on_error(err, { name = "loop callback" }) end
  until transfer:done()
  local resp, err = transfer:result()
  transfer:close()
  return resp, err
end

-- Waits for a core transfer made with on_done = nil; returns transfer:result().
function _M.await(make_request)
  return _M.suspend(function(wake)
    make_request(function(transfer)
      local resp, err = transfer:result()
      transfer:close() -- the connection stays in curl's cache; the buffers can go now
      wake(resp, err)
    end)
  end)
end

--- Waits `seconds`: yields inside a task, drives the loop outside one.
-- @tparam number seconds >= 0
-- @raise when `seconds` is not a number >= 0
function _M.sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
    error("sleep: seconds must be a number >= 0", 2)
  end
  _M.suspend(function(wake) loop:timer(seconds, wake) end)
end

--- A coroutine of your own (a generator, say) whose client calls still wait on the loop:
-- like `coroutine.wrap`, except that the loop's waits pass through to the task that resumes
-- it; your own yields come back to you as usual.
-- @func fn the coroutine's body
-- @treturn func the resume function (raises the coroutine's error)
function _M.wrap(fn)
  local co = coroutine.create(fn)
  local function step(ok, first, ...)
    if not ok then error(first, 0) end
    if first == SENTINEL then
      return step(coroutine.resume(co, coroutine.yield(SENTINEL, ...)))
    end
    return first, ...
  end
  return function(...)
    -- Waits inside co belong to the task that resumes it (none: they block).
    tasks[co] = _M.current()
    return step(coroutine.resume(co, ...))
  end
end

--- Waits for a task to end.
-- @tparam table task a record from `spawn`
-- @return the task's results
-- @treturn[2] nil
-- @treturn[2] string|table its error (a string with traceback, or the value it raised)
function _M.join(task)
  if not task.done then
    _M.suspend(function(wake)
      task.joiners = task.joiners or {}
      task.joiners[#task.joiners + 1] = wake
    end)
  end
  if task.error then return nil, task.error end
  return table.unpack(task.results, 1, task.results.n)
end

--- Drives the loop until `pred()` is true (checked after every step) or `timeout` seconds
-- pass: how a plain script waits for streams and tasks.
-- @func pred `function() -> bool`
-- @tparam[opt] number timeout seconds (default: no limit)
-- @treturn bool true when `pred` held, false on timeout
-- @usage loop.run_until(function() return #prices >= 3 end, 10)
function _M.run_until(pred, timeout)
  local deadline = timeout and core.monotime() + timeout
  while not pred() do
    local wait = 0.25
    if deadline then
      local left = deadline - core.monotime()
      if left <= 0 then return false end
      if left < wait then wait = left end
    end
    loop:step(wait)
  end
  return true
end

-- Loop callbacks made here run protected: an error goes to on_error(err) (default: the
-- loop's handler), never out of whatever loop:step happens to be running.
local function traceback(e) return debug.traceback(tostring(e), 2) end
local function protect(fn, on_error, name)
  return function(...)
    local ok, err = xpcall(fn, traceback, ...)
    if not ok then (on_error or _M.on_error)(err, { name = name or "timer" }) end
  end
end
_M.protect = protect

--- Calls `fn()` once after `seconds`, on the loop and outside any task (spawn one from it
-- to make client calls).
-- @tparam number seconds delay
-- @func fn the callback; an error goes to `on_error(err)`, else `loop.on_error`
-- @func[opt] on_error its handler
-- @return a timer id for `cancel`
function _M.timer(seconds, fn, on_error) return loop:timer(seconds, protect(fn, on_error)) end
--- Cancels a timer from `timer`.
-- @param id the timer id
function _M.cancel(id) return loop:cancel(id) end
--- Monotonic seconds, for measuring durations.
-- @treturn number
function _M.now() return core.monotime() end

--- Calls `fn()` every `seconds` until the returned function is called.
-- @tparam number seconds the period
-- @func fn the callback, outside any task (spawn one from it to make client calls)
-- @func[opt] on_error handler of its errors (default `loop.on_error`)
-- @treturn func cancel: stops the calls
function _M.every(seconds, fn, on_error)
  local id, stopped
  local function arm()
    id = loop:timer(seconds, function()
      if stopped then return end
      arm()
      local ok, err = xpcall(fn, traceback)
      if not ok then (on_error or _M.on_error)(err, { name = "timer (every)" }) end
    end)
  end
  arm()
  return function() stopped = true; loop:cancel(id) end
end

return _M
