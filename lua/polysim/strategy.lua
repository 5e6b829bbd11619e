-- The strategy runtime: loads a strategy, runs its callbacks as tasks on the loop, delivers
-- price and fill events to it, owns its timers, and swaps versions on reload. This file is
-- the lifecycle (new, subscriptions, start, stop); the parts live in
--   polysim.strategy.events   deliver(), the event queues and their pumps
--   polysim.strategy.install  compiling, starting and swapping versions; reload()
--   polysim.strategy.observe  observe(), refresh(), snapshot() (P&L)
--   polysim.log       levels, sinks, formats, redaction      polysim.queue    event queues
--   polysim.callback  one protected task per callback         polysim.budget   the time budget
--   polysim.sandbox   loading a version in its environment    polysim.ctx      the ctx API
--   polysim.clock     real (or injected) time                 polysim.feed     stream/poll adapter
--
-- THE STRATEGY CONTRACT
--
-- A strategy is a Lua file returning a table. Every field is optional:
--
--   return {
--     name = "mean_reversion",      -- shown in log lines (default: the file name)
--     cancel_on_stop = true,        -- after on_stop, cancel the open orders THIS strategy placed
--                                   --   (never the account's others; default false)
--     budget = 0.5,                 -- seconds a callback may run without yielding (false: none)
--     conflate = false,             -- true: a price event still queued for a market is replaced
--                                   --   by a newer one for the same market (latest price wins)
--     on_start  = function(ctx) end,             -- once, before any event is delivered
--     on_price  = function(ctx, msg) end,        -- a price update for a subscribed market
--     on_fill   = function(ctx, fill) end,       -- one of our orders (partly) filled
--     on_spot   = function(ctx, tick) end,       -- a spot price of a subscribed underlying
--     on_window = function(ctx, ev) end,         -- an Up/Down window opened, closed, resolved
--                                                --   or settled (subscribed underlying/market)
--     on_reload = function(ctx, old_state) end,  -- this version replaced a running one
--     on_stop   = function(ctx, reason) end,     -- the host is stopping ("SIGINT", "duration", ...)
--   }
--
-- msg  = { type = "price", market_id, buy, sell, best_bid, best_ask, volume, outcomes, updated_at }
-- fill = { type = "fill", order_id, market_id, side, outcome, price, quantity, filled_at,
--          client_order_id, fee }
-- tick = { type = "spot", symbol ("BTC"), price, timestamp, source }
-- ev   = { type = "window", event = "open" | "close" | "resolve" | "settle", market_id, symbol,
--          ... the exchange's window fields (strike, start/end, winner, payout) as sent }
-- (numbers are decimal strings, as everywhere in polysim)
--
-- The context (one per loaded version; all versions share client, state and subscriptions):
--   ctx.client                 the polysim client (polysim.new); its calls yield inside callbacks.
--                              Orders placed through it carry a client order id starting with
--                              ctx.order_prefix (per run and strategy; one given is prefixed):
--                              they are the strategy's own orders, the only ones on_fill hears
--                              about, cancel_on_stop cancels, and the P&L line counts
--   ctx.state                  a table that survives reloads: keep everything worth keeping here
--   ctx.params                 `--param NAME=VALUE` values of `polysim run` (strings), or {}
--   ctx.log.info/warn/error(...)   timestamped lines on stderr; the API key never appears
--   ctx.name, ctx.version      strategy name; version number (1, then +1 per successful reload)
--   ctx:subscribe(ids)         start price events for a market id or a list of them
--   ctx:unsubscribe(ids)       stop them
--   ctx:subscriptions()        the list of subscribed market ids
--   ctx:subscribe_spot(syms)   start on_spot ticks (and on_window events) for an underlying
--                              ("BTC") or a list; ctx:unsubscribe_spot(syms) stops them;
--                              ctx:spot_subscriptions() lists them. Window events also come
--                              for markets subscribed with ctx:subscribe.
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
--     between two yields is never interleaved with other strategy code. (An event's task may
--     reuse the coroutine of one that has ended: polysim.callback's runners.)
--   * Price events of one market are delivered in arrival order, one at a time: on_price for
--     the next event of that market starts only after the previous one has returned (waits
--     included). Different markets do not wait for each other.
--   * Fill events are delivered in arrival order, one at a time, the same way (one queue for
--     all fills, independent of the price queues). Spot ticks: one queue per underlying, like
--     prices (conflate applies too); window events: one queue, in arrival order.
--   * No event is delivered before on_start has returned, and none while a reload is in
--     progress: they are queued, then delivered to the new version (or to the old one when
--     the reload failed). Each event is delivered exactly once, to exactly one version; an
--     event whose callback raised is not redelivered.
--   * Price events for markets not subscribed are dropped; after stop nothing is delivered.
--   * ctx:every does not overlap itself: a tick that comes while the previous run is still
--     going is skipped.
--
-- Isolation: a callback that raises is reported with its traceback and the host goes on.
-- A callback that runs longer than its budget without yielding is interrupted with a
-- message naming the callback and the line it was at. The budget is wall-clock time since
-- the callback last started or resumed after a wait (the loop restarts it): a callback that
-- yields often may run as long as it likes. Only the strategy's own code is interrupted:
-- when the budget runs out inside polysim's code, the error is raised at the next line of
-- strategy code. This guards against mistakes (an endless loop), not against hostile code.
--
-- THE RUNTIME (for hosts, specs and backtests)
--
--   local rt = strategy.new { client =, clock =, params =, budget =, feed =, log =, ... }
--   rt:start(path)        -> true | nil, err        loads version 1 (on_start has returned)
--   rt:deliver(ev)        -> queued?                every price and fill event enters here
--   rt:feed_event(ev)                               stream events (gap, reconnecting, ...)
--   rt:reload()           -> version, seconds | nil, err
--   rt:stop(reason)                                 on_stop, cancel on request, feed closed
--   rt:snapshot()         -> { name, version, started_at, now, cash, equity, pnl,
--                              positions = {{market_id, outcome, quantity, avg_price, mark,
--                              unrealized}}, open_orders, fills, log_tail, reloads = {{at, ms,
--                              ok, error}}, errors, last_error, own = {prefix, placed, open,
--                              filled, cancelled, cash, pnl} }   (numbers: decimal strings;
--                              open_orders and own: this strategy's own orders only)
--   rt:refresh()          reads the account into the snapshot (in a task); emits "equity"
--   rt:observe(fn)        fn(kind, data) on "fill", "order", "log", "reload", "equity";
--                         returns a function that removes fn (nothing is done when unobserved)
-- opts.clock: a table of functions now(), monotime(), after(seconds, fn) -> handle:cancel(),
-- sleep(seconds) (optional), called with a dot (see polysim.clock); default the real loop.
-- opts.client: any object with the client's methods. opts.params becomes ctx.params.
-- opts.log: a polysim.log output to write to; otherwise one is made from log_sink,
-- log_level, log_format, log_file, quiet and api_key (see polysim.log).
local ploop = require "polysim.loop"
local log = require "polysim.log"
local queue = require "polysim.queue"
local callback = require "polysim.callback"
local sandbox = require "polysim.sandbox"
local clock_mod = require "polysim.clock"
local feed_mod = require "polysim.feed"
local owned = require "polysim.owned"
local check_options = require("polysim.opts").check
local events = require "polysim.strategy.events"
local install = require "polysim.strategy.install"
local observe = require "polysim.strategy.observe"

local error, ipairs, pairs, pcall, select, setmetatable, tostring, type =
  error, ipairs, pairs, pcall, select, setmetatable, tostring, type
local string_format = string.format
local invoke, wait = callback.invoke, callback.wait
local spawn = ploop.spawn
local new_queue, pump_all, retire = events.new_queue, events.pump_all, install.retire

local _M = { DEFAULT_BUDGET = 0.5 }
_M.feeds = feed_mod
_M.wallclock = log.wallclock
_M.dirname = sandbox.dirname
_M.logger = log.logger

local TAIL = observe.TAIL
local basename = sandbox.basename

---------------------------------------------------------------------------------------------
-- logging: one polysim.log output per runtime (or the one given), tagged loggers on it

local Runtime = {}
local rt_mt = { __name = "polysim.Strategy", __index = Runtime }
rt_mt.__tostring = function(self)
  local v = self.current
  return string_format("polysim.Strategy (%s%s%s)", self.name, v and (" v" .. v.n) or "",
    self.stopped and ", stopped" or self.stopping and ", stopping" or "")
end
_M.methods = Runtime

-- Writes one line through the runtime's log output (redacted there).
function Runtime:_log(level, tag, msg)
  local rec = self.out:emit(level, tag, msg)
  if rec then
    self.log_tail:push(rec.line)
    if #self.observers > 0 then self:_notify("log", rec) end
  end
end

-- A logger whose lines carry `tag` (the strategy's own is ctx.log).
function Runtime:logger(tag)
  local l = {}
  local format_args, LEVELS = log.format_args, log.LEVELS
  for level in pairs(LEVELS) do
    local n = LEVELS[level]
    l[level] = function(first, ...)
      -- a line below the output's level is dropped before it is formatted (perf, issue 12: a
      -- backtest logs at warn, and examples/mean_reversion's info lines were formatted anyway)
      if n < self.out.level then return end
      if first == l then return self:_log(level, tag, format_args(select("#", ...), ...)) end
      return self:_log(level, tag, format_args(select("#", ...) + 1, first, ...))
    end
  end
  return l
end

-- A callback raised: report it (the callback layer calls this).
function Runtime:_callback_failed(rec)
  self.stats.errors = self.stats.errors + 1
  self.last_error = tostring(rec.result)
  self:_log("error", self.name, rec.label .. " failed: " .. tostring(rec.result))
end

-- observation (polysim.strategy.observe), event delivery (polysim.strategy.events) and
-- versions (polysim.strategy.install) are methods of the runtime too
for _, part in ipairs { observe, events, install } do
  for k, fn in pairs(part.methods) do Runtime[k] = fn end
end

---------------------------------------------------------------------------------------------
-- the runtime

local NEW_OPTIONS = {
  client = true, name = true, budget = true, feed = true, log_sink = true, log_level = true,
  api_key = true, on_stop_request = true, stop_grace = true, clock = true, params = true,
  log = true, log_format = true, log_file = true, quiet = true, spot_source = true,
}

-- new{ client =, name =, budget = 0.5 | false, feed = nil | false | feed, clock =, params =,
--      log = polysim.log output | log_sink = fn(line, level), log_level =, log_format =,
--      log_file =, quiet =, api_key =, on_stop_request = fn(reason), stop_grace = 5 }
-- (see the header above for what each means)
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("strategy.new: options must be a table", 2) end
  check_options("strategy.new", opts, NEW_OPTIONS) -- polysim.opts: did-you-mean, at the caller's line
  local budget = opts.budget
  if budget == nil then budget = _M.DEFAULT_BUDGET end
  if budget ~= false and (type(budget) ~= "number" or budget <= 0) then
    error("strategy.new: budget must be a number > 0 or false", 2)
  end
  local level = opts.log_level or "info"
  if not log.LEVELS[level] then error("strategy.new: log_level must be debug, info, warn or error", 2) end
  if opts.params ~= nil and type(opts.params) ~= "table" then error("strategy.new: params must be a table", 2) end
  local out = opts.log
  if out == nil then
    out = log.new { sink = opts.log_sink, level = level, format = opts.log_format, file = opts.log_file,
                    quiet = opts.quiet, api_key = opts.api_key }
  elseif opts.api_key then
    out:add_secret(opts.api_key)
  end
  local self = setmetatable({
    client = opts.client,
    name = opts.name,
    name_given = opts.name ~= nil,
    budget = budget,
    clock = clock_mod.check(opts.clock, "strategy.new"),
    params = opts.params or _M.default_params or {}, -- default_params: `polysim run --param`
    feed_opt = opts.feed,
    feed = nil,
    out = out,
    on_stop_request = opts.on_stop_request,
    stop_grace = opts.stop_grace or 5,
    path = nil,
    current = nil,        -- the version receiving events
    versions = 0,         -- versions loaded so far (the current one is usually the last)
    state = {},           -- handed from version to version
    subs = {}, nsubs = 0, -- subscribed market ids
    spot_subs = {},       -- subscribed underlyings ("BTC")
    spot_factory = opts.spot_source, spot_feed = nil,
    sq = {},              -- symbol -> spot queue
    wq = nil,             -- the window-event queue
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
    observers = {},
    fills = queue.ring(TAIL), log_tail = queue.ring(TAIL), reload_history = {},
    account = nil, last_error = nil, started_at = nil,
    stats = {
      received = 0, delivered = 0, dropped = 0, conflated = 0, unhandled = 0, callbacks = 0,
      errors = 0, budget_kills = 0, skipped_ticks = 0, reloads = 0, failed_reloads = 0, foreign_fills = 0,
    },
  }, rt_mt)
  self.fq = new_queue(self, "on_fill")
  self.wq = new_queue(self, "on_window")
  self.log = self:logger("polysim")
  self.client = require("polysim.reconcile").wrap(opts.client, self.log) -- maybe_filled orders settled
  if _M.on_new then _M.on_new(self) end -- `polysim run --report` observes the runtime
  return self
end

-- Underlyings (Up/Down): spot ticks for them go to on_spot, their windows' events to
-- on_window. The spot feed opens at the first subscription (opts.spot_source, default
-- client:spot_stream; see polysim.feed).
function Runtime:subscribe_spot(syms)
  local new = {}
  for _, sym in ipairs(syms) do
    sym = sym:upper()
    if not self.spot_subs[sym] then
      self.spot_subs[sym] = true
      new[#new + 1] = sym
    end
  end
  if #new == 0 or self.stopping then return #new end
  if not self.spot_feed and self.spot_feed ~= false then
    self.spot_feed = feed_mod.spot(self, self.spot_factory) or false
  end
  if self.spot_feed then self.spot_feed:subscribe(new) end
  return #new
end

function Runtime:unsubscribe_spot(syms)
  local gone = {}
  for _, sym in ipairs(syms) do
    sym = sym:upper()
    if self.spot_subs[sym] then
      self.spot_subs[sym] = nil
      gone[#gone + 1] = sym
    end
  end
  if #gone > 0 and self.spot_feed then self.spot_feed:unsubscribe(gone) end
  return #gone
end

function Runtime:spot_subscriptions()
  local list = {}
  for sym in pairs(self.spot_subs) do list[#list + 1] = sym end
  table.sort(list)
  return list
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

-- Opens the feed and installs path as version 1. Returns true or nil, err.
function Runtime:start(path)
  if self.started then error("strategy:start: already started", 2) end
  if type(path) ~= "string" then error("strategy:start: path must be a string", 2) end
  self.started = true
  self.started_at = self.clock.now()
  self.path = path
  self.name = self.name or (basename(path):gsub("%.lua$", ""))
  self.own = owned.new(self.name)
  self.strategy_client = self.own:wrap(self.client)
  if self.feed_opt == nil then
    self.feed = feed_mod.open(self, _M.poll_only)
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
  self:_log("info", self.name, "started " .. path)
  pump_all(self)
  return true
end

function Runtime:request_stop(reason)
  if self.stopping then return end
  if self.on_stop_request then return self.on_stop_request(reason) end
  spawn(function() self:stop(reason) end)
end

function Runtime:_close_feed()
  local spot = self.spot_feed
  self.spot_feed = false
  if spot then
    local ok, err = pcall(spot.close, spot)
    if not ok then self:_log("warn", "feed", "closing the spot feed failed: " .. tostring(err)) end
  end
  local feed = self.feed
  self.feed = nil
  if feed then
    local ok, err = pcall(feed.close, feed)
    if not ok then self:_log("warn", "feed", "closing the feed failed: " .. tostring(err)) end
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
  callback.stopping(self, reason) -- pending error summaries out; a signal told to the watchdog
  self.paused = self.paused + 1
  local dropped = self:pending()
  self.stats.dropped = self.stats.dropped + dropped
  self.fq = new_queue(self, "on_fill")
  self.wq = new_queue(self, "on_window")
  self.pq, self.sq = {}, {}
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
      self:_log("warn", self.name, self.inflight .. " callback(s) still waiting after " .. self.stop_grace ..
        " s; stopping anyway")
    end
  end
  if ver and ver.mod.on_stop then
    local r = invoke(self, ver, "on_stop", ver.mod.on_stop, ver.ctx, reason)
    wait(r)
  end
  if ver and ver.mod.cancel_on_stop and self.client and self.own then
    -- Our own orders only (their client order id prefix): never the account's others.
    local ok, n, failed, err = pcall(self.own.cancel_open, self.own, self.client)
    if not ok then n, failed, err = 0, 1, n end
    if failed == 0 then
      self:_log("info", self.name, string_format("cancelled open orders (%d) placed by this strategy", n))
    else
      self:_log("error", self.name, string_format("cancelling open orders: %d cancelled, %d failed: %s",
        n, failed, tostring(err)))
    end
  end
  self:_close_feed()
  self.stopped = true
  self:_log("info", self.name, "stopped (" .. tostring(reason) .. ")")
  local waiters = self.stop_waiters
  self.stop_waiters = {}
  for _, wake in ipairs(waiters) do wake() end
  return true
end

return _M
