-- The strategy runtime: loads a strategy module, runs its callbacks as tasks on the loop,
-- delivers price and fill events to it, owns its timers, and swaps versions on reload.
--
-- THE STRATEGY CONTRACT
--
-- A strategy is a Lua file returning a table. Every field is optional:
--
--   return {
--     name = "mean_reversion",      -- shown in log lines (default: the file name)
--     cancel_on_stop = true,        -- cancel all open orders after on_stop (default false)
--     budget = 0.5,                 -- seconds a callback may run without yielding (false: none)
--     conflate = false,             -- true: a price event still queued for a market is replaced
--                                   --   by a newer one for the same market (latest price wins)
--     on_start  = function(ctx) end,             -- once, before any event is delivered
--     on_price  = function(ctx, msg) end,        -- a price update for a subscribed market
--     on_fill   = function(ctx, fill) end,       -- one of our orders (partly) filled
--     on_reload = function(ctx, old_state) end,  -- this version replaced a running one
--     on_stop   = function(ctx, reason) end,     -- the host is stopping ("SIGINT", "duration", ...)
--   }
--
-- msg  = { type = "price", market_id, buy, sell, best_bid, best_ask, volume, outcomes, updated_at }
-- fill = { type = "fill", order_id, market_id, side, outcome, price, quantity, filled_at }
-- (numbers are decimal strings, as everywhere in polysim)
--
-- The context (one per loaded version; all versions share client, state and subscriptions):
--   ctx.client                 the polysim client (polysim.new); its calls yield inside callbacks
--   ctx.state                  a table that survives reloads: keep everything worth keeping here
--   ctx.log.info/warn/error(...)   timestamped lines on stderr; the API key never appears
--   ctx.name, ctx.version      strategy name; version number (1, then +1 per successful reload)
--   ctx:subscribe(ids)         start price events for a market id or a list of them
--   ctx:unsubscribe(ids)       stop them
--   ctx:subscriptions()        the list of subscribed market ids
--   ctx:every(seconds, fn)     fn(ctx) every `seconds`; returns a timer with :cancel()
--   ctx:after(seconds, fn)     fn(ctx) once after `seconds`; returns a timer with :cancel()
--   ctx:spawn(fn, ...)         fn(...) as a task of its own (isolated and budgeted like a callback)
--   ctx:sleep(seconds)         waits without holding up anything else
--   ctx:now()                  wall-clock time, Unix seconds with a fraction
--   ctx:monotime()             monotonic seconds, for measuring durations
--   ctx:stop(reason)           asks the host to stop the strategy (on_stop runs as usual)
--
-- Reload: when the file (or a module it requires from its own directory) changes, the new
-- version is compiled and started beside the old one. Its on_reload(ctx, old_state) runs
-- (on_start when it has no on_reload); ctx.state is already the old state table, which
-- on_reload may update in place or replace by assigning ctx.state. Only when that returns
-- without error does the new version take over; a syntax or start-up error leaves the old
-- version running. Timers belong to the version that made them: the old version's timers
-- are cancelled at the swap (re-arm them in on_reload), subscriptions carry over.
--
-- Ordering guarantees:
--   * Every callback runs in a task (coroutine) of its own on the one loop, so a client call
--     inside it yields and other callbacks go on meanwhile; nothing runs in parallel, so code
--     between two yields is never interleaved with other strategy code.
--   * Price events of one market are delivered in arrival order, one at a time: on_price for
--     the next event of that market starts only after the previous one has returned (waits
--     included). Different markets do not wait for each other.
--   * Fill events are delivered in arrival order, one at a time, the same way (one queue for
--     all fills, independent of the price queues).
--   * No event is delivered before on_start has returned, and none while a reload is in
--     progress: they are queued, then delivered to the new version (or to the old one when
--     the reload failed). Each event is delivered exactly once, to exactly one version; an
--     event whose callback raised is not redelivered.
--   * Price events for markets not subscribed are dropped; after stop nothing is delivered.
--   * ctx:every does not overlap itself: a tick that comes while the previous run is still
--     going is skipped.
--
-- Isolation: a callback that raises is reported with its traceback and the host goes on.
-- A callback that runs longer than its budget without yielding is interrupted by a debug
-- hook with a message naming the callback and the line it was at. The budget is wall-clock
-- time since the callback last started or resumed after a wait: a callback that yields
-- often may run as long as it likes. This guards against mistakes (an endless loop), not
-- against hostile code.
local core = require "polysim.core"
local ploop = require "polysim.loop"

local coroutine, debug, error, ipairs, pairs, select, setmetatable, tostring, type =
  coroutine, debug, error, ipairs, pairs, select, setmetatable, tostring, type
local string_format, table_concat = string.format, table.concat
local monotime = core.monotime

local _M = { DEFAULT_BUDGET = 0.5 }

local spawn, current = ploop.spawn, ploop.current

local HOOK_COUNT = 1000      -- VM instructions between budget checks
local QUEUE_WARN = 10000     -- warn once when a queue grows this long

local CALLBACKS = { on_start = true, on_price = true, on_fill = true, on_reload = true, on_stop = true }
local FIELDS = { name = "string", cancel_on_stop = "boolean", conflate = "boolean", budget = "number" }

---------------------------------------------------------------------------------------------
-- logging

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }
-- Wall-clock seconds with a fraction, from os.time() and the monotonic clock. The offset
-- starts as a lower bound and is raised whenever os.time() shows that a second began
-- before our estimate says, so it converges to within a few ms as the program runs.
local wall0 = os.time() - monotime()

local function wallclock()
  local m = monotime()
  local t = wall0 + m
  local s = os.time()
  if s > t then
    wall0 = s - m
    t = s
  end
  return t
end
_M.wallclock = wallclock

local function timestamp()
  local t = wallclock()
  return os.date("!%H:%M:%S", math.floor(t)) .. string_format(".%03d", math.floor((t % 1) * 1000))
end

local function plain_replace(s, what, with)
  local out, i = {}, 1
  while true do
    local a, b = s:find(what, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = with
    i = b + 1
  end
  if i == 1 then return s end
  out[#out + 1] = s:sub(i)
  return table_concat(out)
end

-- Anything that looks like a PolySimulator key, and the host's own key, become <redacted>.
local function redact(rt, s)
  s = s:gsub("ps_live_%x+", "ps_live_<redacted>")
  local secret = rt.secret
  if secret and #secret >= 8 then s = plain_replace(s, secret, "<redacted>") end
  return s
end

local function format_args(n, first, ...)
  if n == 0 then return "" end
  if n > 1 and type(first) == "string" and first:find("%", 1, true) then
    local ok, s = pcall(string_format, first, ...)
    if ok then return s end
  end
  local parts = { tostring(first) }
  for i = 1, n - 1 do parts[i + 1] = tostring((select(i, ...))) end
  return table_concat(parts, " ")
end

local function emit(rt, level, tag, n, ...)
  if LEVELS[level] < rt.log_level then return end
  local line = string_format("%s %-5s [%s] %s", timestamp(), level:upper(), tag, format_args(n, ...))
  rt.log_sink(redact(rt, line), level)
end

-- The logger: log.info("x", 1) or log.info("%d fills", n) or log:info(...).
local function new_logger(rt, tag)
  local log = {}
  for level in pairs(LEVELS) do
    log[level] = function(first, ...)
      if first == log then return emit(rt, level, tag, select("#", ...), ...) end
      return emit(rt, level, tag, select("#", ...) + 1, first, ...)
    end
  end
  return log
end

local function default_sink(line)
  io.stderr:write(line, "\n")
end

-- A logger outside any runtime: logger(tag, { sink = fn(line, level), level = "info",
-- api_key = redacted }) -> log with info/warn/error/debug.
function _M.logger(tag, opts)
  opts = opts or {}
  local cfg = { log_sink = opts.sink or default_sink, log_level = LEVELS[opts.level or "info"] or 20,
                secret = opts.api_key }
  return new_logger(cfg, tag)
end

---------------------------------------------------------------------------------------------
-- running callbacks: one task each, under a time budget

local recs = setmetatable({}, { __mode = "k" }) -- running coroutine -> its record

local handler, protected, task_body -- the budget hooks must recognise them

local function ours(f) return f == handler or f == protected or f == task_body end

local function expired_hook()
  if ours(debug.getinfo(2, "f").func) then return end
  local rec = recs[coroutine.running()]
  error(rec and rec.expired or "time budget exceeded", 0)
end

-- Count hook on a callback's coroutine: interrupts it once it has run `budget` seconds
-- since it last started or resumed. After that it raises at every instruction, so that a
-- pcall inside the strategy cannot swallow the interruption.
local function budget_hook()
  local rec = recs[coroutine.running()]
  if not rec then return end
  local run = monotime() - rec.since
  if run > rec.budget then
    local info = debug.getinfo(2, "fSl")
    if ours(info.func) then return end
    local where = info.currentline and info.currentline > 0 and (info.short_src .. ":" .. info.currentline)
      or info.short_src
    rec.expired = string_format("%s ran %.2f s without yielding, past its time budget of %g s; interrupted at %s",
      rec.label, run, rec.budget, where)
    rec.rt.stats.budget_kills = rec.rt.stats.budget_kills + 1
    debug.sethook(expired_hook, "", 1)
    error(rec.expired, 0)
  end
end

-- Errors marked plain (compile errors) are shown without a traceback; others get one,
-- cut where the runtime's own frames begin.
function handler(e)
  if recs[coroutine.running()] then debug.sethook() end
  if type(e) == "table" and rawget(e, "plain") then return e.msg end
  local tb = debug.traceback(tostring(e), 2)
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- Runs fn(a, b) in the running coroutine under the record's budget; stores the outcome.
function protected(rec, fn, a, b)
  local co = coroutine.running()
  if rec.budget then
    recs[co] = rec
    rec.since = monotime()
    debug.sethook(budget_hook, "", HOOK_COUNT)
  end
  local ok, res = xpcall(fn, handler, a, b)
  if rec.budget then
    debug.sethook()
    recs[co] = nil
  end
  rec.ok, rec.result = ok, res
  return ok
end

local function report(rt, rec)
  rt.stats.errors = rt.stats.errors + 1
  emit(rt, "error", rt.name, 1, rec.label .. " failed: " .. tostring(rec.result))
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
  local done = rec.done
  if done and rec.async then
    rec.done = nil
    done(rec)
  end
end

-- The task's record learns about a yield the loop does not understand (the task is over).
local function bad_yield(err, task)
  local rec = task.rec
  rec.ok, rec.result = false, tostring(err)
  complete(rec)
end

function task_body(rec, fn, a, b)
  local task = current()
  task.rec, task.name, task.on_error = rec, rec.label, bad_yield
  protected(rec, fn, a, b)
  complete(rec)
end

-- Once a budgeted callback has waited, the loop resumes it through this coroutine, which
-- resumes the callback's own and so sees the moment every wait ends: the clock restarts.
local function trampoline(rec, co)
  return coroutine.create(function(...)
    local r = table.pack(...)
    while true do
      rec.since = monotime()
      r = table.pack(coroutine.resume(co, table.unpack(r, 1, r.n)))
      if coroutine.status(co) == "dead" then
        if not r[1] then -- cannot happen short of a bug: task_body catches everything
          rec.ok, rec.result = false, r[2]
          complete(rec)
        end
        return
      end
      r = table.pack(coroutine.yield(table.unpack(r, 2, r.n)))
    end
  end)
end

-- Starts fn(a, b) as a task of its own and returns its record. rec.finished tells whether it
-- already ran to the end; otherwise set rec.done = function(rec) to hear when it does.
local function invoke(rt, ver, label, fn, a, b, quiet)
  local budget = rt.budget
  if ver and ver.budget ~= nil then budget = ver.budget end
  local rec = { rt = rt, label = label, budget = budget or nil, quiet = quiet, finished = false }
  rt.stats.callbacks = rt.stats.callbacks + 1
  local task = spawn(task_body, rec, fn, a, b)
  if not rec.finished then -- it waits on something
    rec.async = true
    rt.inflight = rt.inflight + 1
    if budget and not task.done then task.co = trampoline(rec, task.co) end
  end
  return rec
end

-- Waits (yielding in a task, stepping the loop outside one) until rec has finished.
local function wait(rec)
  if rec.finished then return end
  ploop.suspend(function(wake) rec.done = wake end)
end

---------------------------------------------------------------------------------------------
-- event queues

local pump

local function new_queue(rt, cb)
  local q = { head = 1, tail = 0, busy = false, pumping = false, cb = cb, warned = false }
  q.resume = function()
    q.busy = false
    pump(rt, q)
  end
  return q
end

function pump(rt, q)
  if q.busy or q.pumping then return end
  q.pumping = true
  local stats = rt.stats
  while q.head <= q.tail and rt.paused == 0 do
    local i = q.head
    local ev = q[i]
    q[i] = nil
    q.head = i + 1
    local ver = rt.current
    local fn = ver.mod[q.cb]
    if fn then
      stats.delivered = stats.delivered + 1
      local rec = invoke(rt, ver, q.cb, fn, ver.ctx, ev)
      if not rec.finished then
        q.busy = true
        rec.done = q.resume
        break
      end
    else
      stats.unhandled = stats.unhandled + 1
    end
  end
  if q.head > q.tail then q.head, q.tail = 1, 0 end
  q.pumping = false
end

local function pump_all(rt)
  if rt.paused > 0 then return end
  pump(rt, rt.fq)
  for _, q in pairs(rt.pq) do
    if q.head <= q.tail then pump(rt, q) end
  end
end

local function push(rt, q, ev)
  local t = q.tail + 1
  q.tail = t
  q[t] = ev
  if not q.warned and t - q.head >= QUEUE_WARN then
    q.warned = true
    emit(rt, "warn", rt.name, 1, string_format("%d %s events queued: the strategy is slower than its feed" ..
      " (set conflate = true to keep only the latest price per market)", t - q.head + 1, q.cb))
  end
end

---------------------------------------------------------------------------------------------
-- the context

local Ctx = {}
local ctx_mt = { __name = "polysim.StrategyContext", __index = Ctx }
ctx_mt.__tostring = function(self) return "polysim.StrategyContext (" .. self.name .. " v" .. self.version .. ")" end

local owner = setmetatable({}, { __mode = "k" }) -- ctx -> version record

local function check_ctx(self, fname)
  local ver = owner[self]
  if not ver then error("ctx:" .. fname .. ": call it with a colon (ctx:" .. fname .. "(...))", 3) end
  return ver, ver.rt
end

local function id_list(fname, ids)
  if type(ids) == "string" then return { ids } end
  if type(ids) ~= "table" then error("ctx:" .. fname .. ": ids must be a market id or a list of them", 3) end
  for i, id in ipairs(ids) do
    if type(id) ~= "string" or id == "" then error("ctx:" .. fname .. ": ids[" .. i .. "] must be a string", 3) end
  end
  return ids
end

function Ctx:subscribe(ids)
  local _, rt = check_ctx(self, "subscribe")
  return rt:subscribe(id_list("subscribe", ids))
end

function Ctx:unsubscribe(ids)
  local _, rt = check_ctx(self, "unsubscribe")
  return rt:unsubscribe(id_list("unsubscribe", ids))
end

function Ctx:subscriptions()
  local _, rt = check_ctx(self, "subscriptions")
  return rt:subscriptions()
end

local Timer = {}
local timer_mt = { __name = "polysim.StrategyTimer", __index = Timer }

function Timer:cancel()
  if self.cancelled then return end
  self.cancelled = true
  if self.id then ploop.cancel(self.id) end
  self.ver.timers[self] = nil
end

local function check_timer(fname, seconds, fn, min)
  if type(seconds) ~= "number" or seconds < min or seconds ~= seconds then
    error("ctx:" .. fname .. ": seconds must be a number >= " .. min, 3)
  end
  if type(fn) ~= "function" then error("ctx:" .. fname .. ": fn must be a function", 3) end
end

local function new_timer(ver, label)
  local t = setmetatable({ ver = ver, label = label, cancelled = false, running = false }, timer_mt)
  if ver.retired or ver.rt.stopping then
    t.cancelled = true -- a retired version's timers would run old code: never arm them
  else
    ver.timers[t] = true
  end
  return t
end

function Ctx:after(seconds, fn)
  local ver, rt = check_ctx(self, "after")
  check_timer("after", seconds, fn, 0)
  local t = new_timer(ver, string_format("timer (after %g s)", seconds))
  if t.cancelled then return t end
  t.id = ploop.timer(seconds, function()
    if t.cancelled then return end
    t.cancelled = true
    ver.timers[t] = nil
    invoke(rt, ver, t.label, fn, ver.ctx)
  end)
  return t
end

function Ctx:every(seconds, fn)
  local ver, rt = check_ctx(self, "every")
  check_timer("every", seconds, fn, 0.001)
  local t = new_timer(ver, string_format("timer (every %g s)", seconds))
  if t.cancelled then return t end
  local function done() t.running = false end
  local function tick()
    if t.cancelled then return end
    t.id = ploop.timer(seconds, tick)
    if t.running then
      rt.stats.skipped_ticks = rt.stats.skipped_ticks + 1
      return
    end
    t.running = true
    local rec = invoke(rt, ver, t.label, fn, ver.ctx)
    if rec.finished then t.running = false else rec.done = done end
  end
  t.id = ploop.timer(seconds, tick)
  return t
end

function Ctx:spawn(fn, ...)
  local ver, rt = check_ctx(self, "spawn")
  if type(fn) ~= "function" then error("ctx:spawn: fn must be a function", 2) end
  local args = table.pack(...)
  invoke(rt, ver, "spawned task", function() return fn(table.unpack(args, 1, args.n)) end)
end

function Ctx:sleep(seconds)
  check_ctx(self, "sleep")
  return ploop.sleep(seconds)
end

function Ctx:now()
  check_ctx(self, "now")
  return wallclock()
end

function Ctx:monotime()
  check_ctx(self, "monotime")
  return monotime()
end

function Ctx:stop(reason)
  local _, rt = check_ctx(self, "stop")
  rt:request_stop(reason or "strategy asked to stop")
end

local function new_ctx(rt, ver)
  local ctx = setmetatable({
    client = rt.client,
    state = rt.state,
    log = rt.strategy_log,
    name = rt.name,
    version = ver.n,
  }, ctx_mt)
  owner[ctx] = ver
  return ctx
end

---------------------------------------------------------------------------------------------
-- loading a version: a fresh environment and fresh copies of the strategy's own modules

local LOADING = setmetatable({}, { __tostring = function() return "(loading)" end })

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end
_M.dirname = dirname

local function basename(path)
  return path:match("([^/]*)$")
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function plain_error(msg) error({ plain = true, msg = msg }, 0) end

-- Runs inside the load task. Returns the version record (mod, env, files).
local function compile(rt, path)
  local ver = { rt = rt, path = path, files = { path }, timers = {}, retired = false }
  local dir = dirname(path)
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
        local chunk, err = loadfile(cand, "t", env)
        if not chunk then plain_error(err) end
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
  ver.env = env
  local chunk, err = loadfile(path, "t", env)
  if not chunk then plain_error(err) end
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
    elseif type(k) == "string" and k:match("^on_") then
      emit(rt, "warn", rt.name, 1, path .. ": unknown callback '" .. k ..
        "' (the runtime calls on_start, on_price, on_fill, on_reload, on_stop)")
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

local function retire(ver)
  ver.retired = true
  for t in pairs(ver.timers) do t:cancel() end
end

---------------------------------------------------------------------------------------------
-- the runtime

local Runtime = {}
local rt_mt = { __name = "polysim.Strategy", __index = Runtime }
rt_mt.__tostring = function(self)
  local v = self.current
  return string_format("polysim.Strategy (%s%s%s)", self.name, v and (" v" .. v.n) or "",
    self.stopped and ", stopped" or self.stopping and ", stopping" or "")
end
_M.methods = Runtime

local NEW_OPTIONS = {
  client = true, name = true, budget = true, feed = true, log_sink = true, log_level = true,
  api_key = true, on_stop_request = true, stop_grace = true,
}

-- new{ client = polysim client, name = "...", budget = 0.5 | false, feed = false | feed,
--      log_sink = function(line, level), log_level = "info", api_key = (redacted in logs),
--      on_stop_request = function(reason), stop_grace = 5 }
-- feed: nil opens the default adapter (_M.feeds.open); false means events come only
-- through rt:deliver; or an object with subscribe(ids), unsubscribe(ids), close().
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("strategy.new: options must be a table", 2) end
  for k in pairs(opts) do
    if not NEW_OPTIONS[k] then error("strategy.new: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local budget = opts.budget
  if budget == nil then budget = _M.DEFAULT_BUDGET end
  if budget ~= false and (type(budget) ~= "number" or budget <= 0) then
    error("strategy.new: budget must be a number > 0 or false", 2)
  end
  local level = opts.log_level or "info"
  if not LEVELS[level] then error("strategy.new: log_level must be debug, info, warn or error", 2) end
  local self = setmetatable({
    client = opts.client,
    name = opts.name,
    name_given = opts.name ~= nil,
    budget = budget,
    feed_opt = opts.feed,
    feed = nil,
    log_sink = opts.log_sink or default_sink,
    log_level = LEVELS[level],
    secret = opts.api_key,
    on_stop_request = opts.on_stop_request,
    stop_grace = opts.stop_grace or 5,
    path = nil,
    current = nil,        -- the version receiving events
    versions = 0,         -- versions loaded so far (the current one is usually the last)
    state = {},           -- handed from version to version
    subs = {}, nsubs = 0, -- subscribed market ids
    pq = {},              -- market id -> price queue
    fq = nil,             -- the fill queue
    paused = 1,           -- > 0: events queue up (before start, during reloads, after stop)
    inflight = 0,         -- callbacks waiting on something
    idle_wake = nil,
    installing = false,
    reload_pending = false,
    watch_files = {},     -- files a change of which should reload: path -> true
    started = false, stopping = false, stopped = false,
    stop_waiters = {},
    stats = {
      received = 0, delivered = 0, dropped = 0, conflated = 0, unhandled = 0, callbacks = 0,
      errors = 0, budget_kills = 0, skipped_ticks = 0, reloads = 0, failed_reloads = 0,
    },
  }, rt_mt)
  self.fq = new_queue(self, "on_fill")
  self.log = new_logger(self, "polysim")
  return self
end

-- A logger whose lines carry `tag` (the strategy's own is ctx.log).
function Runtime:logger(tag)
  return new_logger(self, tag)
end

function Runtime:subscribe(ids)
  local new = {}
  for _, id in ipairs(ids) do
    if not self.subs[id] then
      self.subs[id] = true
      self.nsubs = self.nsubs + 1
      new[#new + 1] = id
    end
  end
  if #new > 0 and self.feed then self.feed:subscribe(new) end
  return #new
end

function Runtime:unsubscribe(ids)
  local gone = {}
  for _, id in ipairs(ids) do
    if self.subs[id] then
      self.subs[id] = nil
      self.nsubs = self.nsubs - 1
      gone[#gone + 1] = id
    end
  end
  if #gone > 0 and self.feed then self.feed:unsubscribe(gone) end
  return #gone
end

function Runtime:subscriptions()
  local list = {}
  for id in pairs(self.subs) do list[#list + 1] = id end
  table.sort(list)
  return list
end

-- The one entry point of events: streams (and specs) call it for every price and fill.
-- Returns true when the event was queued for delivery, false when it was dropped.
function Runtime:deliver(ev)
  local stats = self.stats
  stats.received = stats.received + 1
  if self.stopping then
    stats.dropped = stats.dropped + 1
    return false
  end
  local kind = ev.type
  if kind == "price" then
    local id = ev.market_id
    if not self.subs[id] then
      stats.dropped = stats.dropped + 1
      return false
    end
    local q = self.pq[id]
    if not q then
      q = new_queue(self, "on_price")
      self.pq[id] = q
    end
    local cur = self.current
    if cur and cur.conflate and q.tail >= q.head then
      q[q.tail] = ev
      stats.conflated = stats.conflated + 1
      return true
    end
    push(self, q, ev)
    pump(self, q)
  elseif kind == "fill" then
    push(self, self.fq, ev)
    pump(self, self.fq)
  else
    stats.dropped = stats.dropped + 1
    return false
  end
  return true
end

-- Events queued and not yet handed to a callback.
function Runtime:pending()
  local n = self.fq.tail - self.fq.head + 1
  for _, q in pairs(self.pq) do n = n + q.tail - q.head + 1 end
  return n
end

-- True when nothing is queued and no callback is waiting on anything.
function Runtime:idle()
  return self.inflight == 0 and self:pending() == 0
end

-- Stream events ("connected", "reconnecting", "gap", "closed") from the feed.
function Runtime:feed_event(ev)
  local t = ev.type
  if t == "gap" then
    emit(self, "warn", "feed", 1, string_format("stream gap: %.1f s of messages missed while reconnecting",
      ev.seconds or 0))
  elseif t == "reconnecting" then
    emit(self, "warn", "feed", 1, string_format("stream dropped (%s %s); reconnecting in %.1f s",
      tostring(ev.code), tostring(ev.reason or ""), ev.delay or 0))
  elseif t == "error" then
    local m = ev.message
    emit(self, "warn", "feed", 1, "stream error: " ..
      (type(m) == "table" and tostring(m.message or m.error or m.code) or tostring(m)))
  else
    emit(self, "debug", "feed", 1, tostring(t))
  end
end

-- Compiles path and starts it (on_start, or on_reload when replacing a running version),
-- with events held back meanwhile. Returns the version record and the seconds it took, or
-- nil and the error message (file and line) with the running version left in place.
function Runtime:install(path)
  local t0 = monotime()
  local replacing = self.current
  self.installing = true
  self.paused = self.paused + 1
  local function finish(ok, err)
    self.installing = false
    self.paused = self.paused - 1
    pump_all(self)
    if self.reload_pending and not self.stopping then
      self.reload_pending = false
      spawn(function() self:reload() end)
    end
    if ok then return ok, monotime() - t0 end
    return nil, err
  end
  local rec = invoke(self, nil, "loading " .. basename(path), compile, self, path, true)
  wait(rec)
  if not rec.ok then
    for _, f in ipairs(self.last_files or {}) do self.watch_files[f] = true end
    return finish(nil, tostring(rec.result))
  end
  local ver = rec.result
  self.last_files = ver.files
  for _, f in ipairs(ver.files) do self.watch_files[f] = true end
  if self.stopping then return finish(nil, "stopping") end
  if not self.strategy_log then
    if not self.name_given and type(ver.mod.name) == "string" then self.name = ver.mod.name end
    self.strategy_log = new_logger(self, self.name)
  end
  ver.n = self.versions + 1
  ver.ctx = new_ctx(self, ver)
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
      return finish(nil, tostring(r.result))
    end
  end
  if self.stopping then
    retire(ver)
    return finish(nil, "stopped while starting")
  end
  if type(ver.ctx.state) == "table" then self.state = ver.ctx.state end
  self.versions = ver.n
  if replacing then retire(replacing) end
  self.current = ver
  return finish(ver)
end

-- Opens the feed and installs path as version 1. Returns true or nil, err.
function Runtime:start(path)
  if self.started then error("strategy:start: already started", 2) end
  if type(path) ~= "string" then error("strategy:start: path must be a string", 2) end
  self.started = true
  self.path = path
  self.name = self.name or (basename(path):gsub("%.lua$", ""))
  if self.feed_opt == nil then
    self.feed = _M.feeds.open(self)
  elseif self.feed_opt then
    self.feed = self.feed_opt
  end
  local ver, err = self:install(path)
  self.paused = self.paused - 1 -- the hold from new(): events may flow now
  if not ver then
    self:_close_feed()
    self.stopping, self.stopped = true, true
    self.paused = self.paused + 1
    return nil, err
  end
  emit(self, "info", self.name, 1, "started " .. path)
  pump_all(self)
  return true
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

function Runtime:request_stop(reason)
  if self.stopping then return end
  if self.on_stop_request then return self.on_stop_request(reason) end
  spawn(function() self:stop(reason) end)
end

function Runtime:_close_feed()
  local feed = self.feed
  self.feed = nil
  if feed then
    local ok, err = pcall(feed.close, feed)
    if not ok then emit(self, "warn", "feed", 1, "closing the feed failed: " .. tostring(err)) end
  end
end

-- Stops: no more events, timers cancelled, callbacks in flight get stop_grace seconds to
-- finish, then on_stop(ctx, reason), then open orders are cancelled when the strategy set
-- cancel_on_stop, then the feed closes. Waits until all that is done.
function Runtime:stop(reason)
  reason = reason or "stop"
  if self.stopped then return true end
  if self.stopping then
    ploop.suspend(function(wake) self.stop_waiters[#self.stop_waiters + 1] = wake end)
    return true
  end
  self.stopping = true
  self.paused = self.paused + 1
  local dropped = self:pending()
  self.stats.dropped = self.stats.dropped + dropped
  self.fq = new_queue(self, "on_fill")
  self.pq = {}
  local ver = self.current
  if ver then retire(ver) end
  if self.inflight > 0 then
    local deadline_id
    ploop.suspend(function(wake)
      self.idle_wake = wake
      deadline_id = ploop.timer(self.stop_grace, wake)
    end)
    ploop.cancel(deadline_id)
    self.idle_wake = nil
    if self.inflight > 0 then
      emit(self, "warn", self.name, 1, self.inflight .. " callback(s) still waiting after " .. self.stop_grace ..
        " s; stopping anyway")
    end
  end
  if ver and ver.mod.on_stop then
    local r = invoke(self, ver, "on_stop", ver.mod.on_stop, ver.ctx, reason)
    wait(r)
  end
  if ver and ver.mod.cancel_on_stop and self.client then
    local ok, res, err = pcall(self.client.cancel_all, self.client)
    if not ok then err = res end
    if ok and res then
      local n = type(res) == "table" and (res.cancelled_count or res.cancelled)
      if type(n) == "table" then n = #n end
      emit(self, "info", self.name, 1, "cancelled open orders" .. (n and (" (" .. tostring(n) .. ")") or ""))
    else
      emit(self, "error", self.name, 1, "cancelling open orders failed: " .. tostring(err))
    end
  end
  self:_close_feed()
  self.stopped = true
  emit(self, "info", self.name, 1, "stopped (" .. tostring(reason) .. ")")
  local waiters = self.stop_waiters
  self.stop_waiters = {}
  for _, wake in ipairs(waiters) do wake() end
  return true
end

---------------------------------------------------------------------------------------------
-- feeds: the one adapter between the runtime and the price/fill streams
--
-- open(rt) returns an object with subscribe(ids), unsubscribe(ids) and close(); it calls
-- rt:deliver(msg) for every price and fill message, and rt:feed_event(ev) for stream events.
-- It uses the WebSocket streams (client:prices_stream for subscribed markets, one
-- client:executions_stream for fills). When they are not available, or close for good (no
-- key, a rejected key), or _M.poll_only is set, it polls instead: prices of subscribed
-- markets every second (POST /v1/prices/batch) and new fills (GET /v1/account/history).

local feeds = {}
_M.feeds = feeds

function feeds.open(rt)
  local client = rt.client
  if not client then return nil end
  if client.prices_stream and not _M.poll_only then
    local ok, feed = pcall(feeds.streams, rt)
    if ok and feed then return feed end
    emit(rt, "warn", "feed", 1, "streams unavailable (" .. tostring(feed) .. "); polling instead")
  end
  return feeds.poll(rt)
end

function feeds.streams(rt)
  local client = rt.client
  local feed = { prices = nil, fills = nil, fallback = nil, closing = false }
  local function on_msg(msg) rt:deliver(msg) end
  local function close_streams()
    feed.closing = true
    if feed.prices then feed.prices:close() end
    if feed.fills then feed.fills:close() end
  end
  -- A stream that closes for good on its own (no token to be had: no key, a bad key, a
  -- tier without streams) hands over to polling, so the strategy still gets its events.
  local function on_event(ev)
    if ev.type == "closed" then
      if feed.closing or feed.fallback then return end
      emit(rt, "warn", "feed", 1, "stream closed (" .. tostring(ev.error or ev.reason) .. "); polling instead")
      close_streams()
      feed.fallback = feeds.poll(rt)
      return
    end
    rt:feed_event(ev)
  end
  feed.fills = client:executions_stream { on_fill = on_msg, on_event = on_event }
  function feed.subscribe(_, ids)
    if feed.fallback then return feed.fallback:subscribe(ids) end
    if feed.prices then return feed.prices:subscribe(ids) end
    feed.prices = client:prices_stream { markets = ids, on_price = on_msg, on_event = on_event }
  end
  function feed.unsubscribe(_, ids)
    if feed.fallback then return feed.fallback:unsubscribe(ids) end
    if feed.prices then return feed.prices:unsubscribe(ids) end
  end
  function feed.close()
    close_streams()
    if feed.fallback then feed.fallback:close() end
  end
  return feed
end

-- The polling fallback: prices of subscribed markets every `interval` seconds (an event per
-- market whose buy or sell price changed), new fills from the trade history.
function feeds.poll(rt, interval)
  interval = interval or 1
  local client = rt.client
  local last = {}       -- market id -> "buy/sell"
  local seen = nil      -- order ids already reported (nil until the first history read)
  local closed = false
  local busy
  local function poll_prices()
    local ids = rt:subscriptions()
    for i = 1, #ids, 20 do
      local chunk = { table.unpack(ids, i, math.min(i + 19, #ids)) }
      local list, err = client:prices(chunk)
      if closed then return end
      if not list then
        emit(rt, "warn", "feed", 1, "price poll failed: " .. tostring(err))
        return
      end
      for _, p in ipairs(list) do
        local id = p.condition_id or p.market_id
        if id and p.buy and p.sell then
          local key = tostring(p.buy) .. "/" .. tostring(p.sell)
          if last[id] ~= key then
            last[id] = key
            rt:deliver { type = "price", market_id = id, buy = p.buy, sell = p.sell,
              outcomes = p.outcomes, volume = p.volume, updated_at = p.updated_at, source = "poll" }
          end
        end
      end
    end
  end
  local function poll_fills(baseline)
    local cur = rt.current
    if not baseline and not (cur and cur.mod.on_fill) then return end
    local list, err = client:history_page { limit = 50 }
    if closed then return end
    if not list then
      emit(rt, "debug", "feed", 1, "fill poll failed: " .. tostring(err))
      return
    end
    local first = seen == nil
    seen = seen or {}
    for i = #list, 1, -1 do -- oldest first
      local h = list[i]
      local key = h.trade_id and ("t" .. tostring(h.trade_id))
        or (tostring(h.order_id or h.id) .. "@" .. tostring(h.filled_at) .. "#" .. tostring(h.quantity))
      if not seen[key] then
        seen[key] = true
        if not first then
          rt:deliver { type = "fill", order_id = h.order_id or h.id, market_id = h.market_id,
            side = h.side, outcome = h.outcome, price = h.price, quantity = h.quantity,
            filled_at = h.filled_at, source = "poll" }
        end
      end
    end
  end
  -- The fills already in the history are not news: read them once now, as the baseline.
  busy = true
  spawn(function()
    pcall(poll_fills, true)
    busy = false
  end)
  local cancel = ploop.every(interval, function()
    if busy or closed then return end
    busy = true
    spawn(function()
      local ok, err = pcall(function()
        if rt.nsubs > 0 then poll_prices() end
        poll_fills()
      end)
      busy = false
      if not ok then emit(rt, "warn", "feed", 1, "poll failed: " .. tostring(err)) end
    end)
  end)
  return {
    subscribe = function() end,
    unsubscribe = function(_, ids) for _, id in ipairs(ids) do last[id] = nil end end,
    close = function() closed = true; cancel() end,
  }
end

return _M
