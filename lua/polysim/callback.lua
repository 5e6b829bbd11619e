-- Running a strategy's callbacks: each call is a task of its own on the loop (so a client
-- call inside it yields), protected (an error is reported with its traceback, cut where the
-- runtime's frames begin, and goes no further), under the time budget (polysim.budget).
--
--   local rec = callback.invoke(rt, ver, "on_price", fn, ctx, msg)
--   if not rec.finished then rec.on_done = function(rec) ... end end   -- or callback.wait(rec)
--   rec.ok, rec.result: the outcome (result is the error text when ok is false)
local budget = require "polysim.budget"
local ploop = require "polysim.loop"

local core = require "polysim.core"

local coroutine, debug, math, pairs, rawget, tostring, type, xpcall =
  coroutine, debug, math, pairs, rawget, tostring, type, xpcall
local yield = coroutine.yield
local string_format, monotime = string.format, core.monotime

local _M = {}

-- Errors marked plain (compile errors) are shown without a traceback; others get one,
-- cut where the runtime's own frames begin.
local function handler(e)
  if type(e) == "table" and rawget(e, "plain") then return e.msg end
  local tb = debug.traceback(tostring(e), 2)
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end
_M.handler = handler

-- Error folding (issue 11): the first failure of a kind is reported in full (message and
-- traceback); identical repeats within FOLD_WINDOW seconds are counted, and reported as one
-- line "same error ×N in the last 10 s" when the window closes.
_M.FOLD_WINDOW = 10

local function flush_fold(rt, key)
  local f = rt._folds and rt._folds[key]
  if not f then return end
  rt._folds[key] = nil
  if f.timer then ploop.cancel(f.timer) end
  if f.n > 0 then
    -- a window cut short by a stop or a different error says how long it really was
    local span = math.min(_M.FOLD_WINDOW, math.max(0, monotime() - f.since))
    local secs = span >= _M.FOLD_WINDOW and string_format("%g", _M.FOLD_WINDOW) or string_format("%.1f", span)
    rt:_log("error", rt.name, string_format("%s failed: same error \u{d7}%d in the last %s s (%s)",
      f.label, f.n, secs, f.first_line))
  end
end
_M.flush_folds = function(rt)
  for key in pairs(rt._folds or {}) do flush_fold(rt, key) end
end

-- Runtime:stop begins: pending "same error" summaries are written now, and errors from here
-- on are reported each in full (no fold timer outlives the runtime). A stop by SIGINT/SIGTERM
-- is told to the watchdog (src/signals.c): from now on every callback runs under at most
-- budget.STOP_BUDGET, and the process ends a few seconds later whatever happens.
function _M.stopping(rt, reason)
  _M.flush_folds(rt)
  if type(reason) == "string" and reason:match("^SIG") then core.watchdog_stopping(reason) end
end

local function report(rt, rec)
  if rt.stopping then return rt:_callback_failed(rec) end
  local text = tostring(rec.result)
  local label = tostring(rec.label)
  local key = label .. "\0" .. text
  local folds = rt._folds
  if not folds then
    folds = {}
    rt._folds = folds
  end
  local f = folds[key]
  local now = monotime()
  if f and now - f.since < _M.FOLD_WINDOW then
    f.n = f.n + 1
    rt.stats.errors = rt.stats.errors + 1
    rt.last_error = text
    return
  end
  if f then flush_fold(rt, key) end
  f = { since = now, n = 0, label = label, first_line = text:match("^[^\n]*") }
  folds[key] = f
  f.timer = ploop.timer(_M.FOLD_WINDOW, function()
    f.timer = nil
    if folds[key] == f then flush_fold(rt, key) end
  end)
  rt:_callback_failed(rec)
end

local function complete(rec)
  if rec.finished then return end
  rec.finished = true
  local rt = rec.rt
  if rec.async then
    rt.inflight = rt.inflight - 1
    if rt.inflight == 0 and rt.idle_wake then
      local wake = rt.idle_wake
      rt.idle_wake = nil
      wake()
    end
  end
  if rec.ok == false and not rec.quiet then report(rt, rec) end
  local done = rec.on_done
  if done and rec.async then
    rec.on_done = nil
    done(rec)
  end
end

-- The task learns about a yield the loop does not understand (the task is over).
local function bad_yield(err, rec)
  rec.ok, rec.result = false, tostring(err)
  complete(rec)
end

local function on_expire(rec)
  local stats = rec.rt.stats
  stats.budget_kills = stats.budget_kills + 1
end

local function task_body(rec, fn, a, b)
  local ok, res = xpcall(fn, handler, a, b)
  rec.budget, rec.over = nil, true -- the callback is over: the runtime's bookkeeping runs unbudgeted
  if not ok and rec.expired and type(res) == "string" and not res:find(rec.expired, 1, true) then
    res = rec.expired .. "\n" .. res -- the strategy caught the interruption and raised its own error
  end
  rec.ok, rec.result = ok, res
  complete(rec)
end

-- Starts fn(a, b) as a task of its own and returns its record. rec.finished tells whether it
-- already ran to the end; otherwise set rec.on_done = function(rec) to hear when it does.
function _M.invoke(rt, ver, label, fn, a, b, quiet)
  local limit = rt.budget
  if ver and ver.budget ~= nil then limit = ver.budget end
  if rt.stopping and core.watchdog_signal() then -- a stop by signal (see stopping below)
    limit = math.min(limit or budget.STOP_BUDGET, budget.STOP_BUDGET)
  end
  -- the fields the loop and task_body add later are named here too (nil): the table is made
  -- at its final size once, not rehashed twice (perf, issue 12)
  local rec = { rt = rt, label = label, name = label, budget = limit or nil, quiet = quiet, finished = false,
                on_error = bad_yield, on_expire = on_expire, co = nil, since = nil, over = nil, ok = nil,
                result = nil, done = nil, results = nil, async = nil }
  rt.stats.callbacks = rt.stats.callbacks + 1
  ploop.spawn_task(rec, budget.install, task_body, rec, fn, a, b)
  if not rec.finished then -- it waits on something
    rec.async = true
    rt.inflight = rt.inflight + 1
  end
  return rec
end

-- Runners: the events' callbacks (on_price, on_fill, ...) run on kept tasks (loop.keep_task)
-- whose record and coroutine are reused while callbacks end without waiting, with the budget
-- hook left installed from one to the next, and the bookkeeping done outside the coroutine
-- (no hook there). The profile (callgrind, issue 12): a fresh record, the coroutine's
-- hand-over (the task table's weak entry, on_spawn), debug.sethook and the task body's frames
-- under the hook were ~20k of a no-op event's 43k instructions. A callback that waits keeps
-- its runner until it ends (it is an ordinary task meanwhile); the next event takes another.
-- Only deliver uses them: its callers read nothing of the record but whether it finished
-- (and set on_done), so a record going back to the pool is never read again.
local PARKED, finish_task, keep_task = ploop.PARKED, ploop.finish_task, ploop.keep_task
local co_resume = coroutine.resume
local free, free_n, FREE_MAX = {}, 0, 16
local wants_hook, rearm = budget.wants_hook, budget.rearm

-- A run is over (loop.rerun or the loop's resume, outside the coroutine): the outcome is
-- recorded and reported as task_body does, and the runner goes back to the pool.
local function park(R, ok, res)
  R.over = true
  if ok and not R.async then
    R.finished = true
  else
    if not ok and R.expired and type(res) == "string" and not res:find(R.expired, 1, true) then
      res = R.expired .. "\n" .. res -- the strategy caught the interruption and raised its own error
    end
    R.ok, R.result = ok, res
    complete(R)
    R.rt, R.result, R.on_done, R.async = nil, nil, nil, nil -- nothing kept alive by an idle runner
    if R.expired or R.overdue then -- the interruption changed the hook: back to the usual one
      R.expired, R.overdue = nil, nil
      rearm(R)
      if ploop.on_spawn then ploop.on_spawn(R) end
    end
  end
  if free_n < FREE_MAX then
    free_n = free_n + 1
    free[free_n] = R
  end
end

local function body(fn, a, b)
  while true do
    fn, a, b = yield(PARKED, xpcall(fn, handler, a, b))
  end
end

local function new_runner()
  local R = { rt = nil, label = nil, name = "callback", budget = nil, quiet = nil, finished = true, on_error = bad_yield,
              on_expire = on_expire, on_park = park, co = nil, since = nil, over = true, ok = nil, result = nil,
              done = true, async = nil, on_done = nil, hooked = false, expired = nil, overdue = nil }
  return keep_task(R, nil, body)
end

-- Runs fn(a, b) like invoke, on a runner. Returns nil when it ran to the end, else its record
-- (set rec.on_done to hear when it finishes).
function _M.deliver(rt, ver, label, fn, a, b)
  local limit = ver.budget
  if limit == nil then limit = rt.budget end
  if rt.stopping and core.watchdog_signal() then
    limit = math.min(limit or budget.STOP_BUDGET, budget.STOP_BUDGET)
  end
  local R
  if free_n > 0 then
    R = free[free_n]
    free[free_n] = nil
    free_n = free_n - 1
  else
    R = new_runner()
  end
  -- (async and on_done are nil here: park clears them after a run that waited)
  R.rt, R.label, R.budget, R.finished, R.over = rt, label, limit or nil, false, nil
  if not R.hooked and wants_hook(limit) then
    R.hooked = true
    rearm(R)
    if ploop.on_spawn then ploop.on_spawn(R) end
  end
  local stats = rt.stats
  stats.callbacks = stats.callbacks + 1
  -- loop.rerun written out, with park's common case (it ended without error or wait) inline:
  -- two calls fewer per event
  R.done = false
  if limit then R.since = monotime() end
  local ok, first, cok, res = co_resume(R.co, fn, a, b)
  if ok and first == PARKED then
    R.done = true
    if cok then
      R.finished, R.over = true, true
      if free_n < FREE_MAX then
        free_n = free_n + 1
        free[free_n] = R
      end
      return nil
    end
    park(R, cok, res)
  else
    finish_task(R, ok, first, cok, res)
  end
  if R.finished then return nil end
  R.async = true
  rt.inflight = rt.inflight + 1
  return R
end

-- Waits (yielding in a task, stepping the loop outside one) until rec has finished.
function _M.wait(rec)
  if rec.finished then return end
  ploop.suspend(function(wake) rec.on_done = wake end)
end

return _M
