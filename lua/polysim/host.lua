--- The strategy host in Lua: what `polysim run` and the C embedding API
-- (`include/polysim.h`) drive. Embed it in a Lua program's own loop:
--
--    local host = require "polysim.host"
--    local h = assert(host.new { local_exchange = "auto", hot_reload = true })
--    assert(h:load "examples/mean_reversion.lua")
--    while not h:done() do h:step(0.1) end      -- or poll h:fd() / h:timeout() yourself
--    h:close()
--
-- Without `live = true` and without a `base_url`, the host starts the local exchange in this
-- process, on the same loop, and trades against it (`POLYSIM_API_KEY` alone never selects
-- the real service). The doc comments of this module are gathered here, above the code.
-- @module polysim.host

--- Creates a host. An unknown option raises (with a did-you-mean).
-- @function new
-- @tparam[opt] table opts
-- @tparam[opt] string opts.api_key the key for the real service (default `$POLYSIM_API_KEY`)
-- @tparam[opt] string opts.base_url trade against this server
-- @tparam[opt=false] bool opts.live trade on the real service
-- @param[opt="auto"] opts.local_exchange `"auto"` (local unless `live` or `base_url`), true, false
-- @tparam[opt=1] int opts.seed the local exchange's seed
-- @tparam[opt=0.5] number opts.tick seconds between the local exchange's price moves (0 or
--   false freezes them)
-- @tparam[opt=0.5] number opts.budget seconds a callback may run without yielding (0 or
--   false: no limit)
-- @tparam[opt=true] bool opts.hot_reload reload the strategy when its files change
-- @tparam[opt] number opts.debounce seconds a burst of file changes is gathered before a reload
-- @tparam[opt] func opts.log_sink `function(line, level)` instead of stderr
-- @tparam[opt="info"] string opts.log_level `"debug"`, `"info"`, `"warn"` or `"error"`
-- @tparam[opt="text"] string opts.log_format `"text"` or `"json"` (one object a line: `time`,
--   `level`, `strategy`, `msg`; `polysim run --log-format json`)
-- @tparam[opt] string opts.log_file also append every log line to this file (`--log-file`)
-- @tparam[opt=false] bool opts.quiet keep info and debug lines out of the sink (warnings and
--   errors still show; `log_file` gets every line at `log_level`)
-- @param[opt] opts.status `"tty"`, `"plain"` or false: the status line (cash, P&L, positions)
-- @tparam[opt] number opts.status_interval seconds between status lines
-- @param[opt] opts.dashboard true or `{ port = 0, control = false }`: the live page (`h:open_dashboard`)
-- @return the host (`tostring` names its server, never the key)
-- @treturn[2] nil
-- @treturn[2] string why: the local exchange did not start, or the client options are wrong

--- Loads and starts the strategy file (its `on_start` has run when this returns); one per
-- host through `load`, more beside it with `add`.
-- @function h:load
-- @tparam string path the strategy file
-- @treturn true
-- @treturn[2] nil
-- @treturn[2] string the error (syntax, start-up, or "a strategy is already loaded")

--- Loads and starts one more strategy beside the others: its own context, state, orders,
-- P&L and reloads, so one strategy's error or reload touches no other.
-- @function h:add
-- @tparam string path the strategy file
-- @treturn true
-- @treturn[2] nil
-- @treturn[2] string the error

--- Serves the live dashboard of the (first) strategy on 127.0.0.1; sets `h.dashboard_url`
-- (with the per-run token when `control` is on).
-- @function h:open_dashboard
-- @tparam[opt] table cfg `{ port = 0, control = false }`
-- @return the dashboard
-- @treturn[2] nil
-- @treturn[2] string the error ("no strategy loaded", a busy port, …)

--- One turn of the loop, waiting at most `timeout` seconds (0: only what is ready now).
-- A callback still running at the deadline is suspended and resumed at the next step, so a
-- step returns within its timeout plus a small bound (inside the polysim command or the C
-- library, which preload the deadline hook).
-- @function h:step
-- @tparam[opt=0] number timeout seconds
-- @treturn true
-- @treturn[2] nil
-- @treturn[2] string the error of a loop callback (the host stays usable)

--- Whether every strategy has stopped (or none was loaded).
-- @function h:done
-- @treturn bool

--- The loop's file descriptor, to poll in your own loop (readable: call `h:step(0)`).
-- @function h:fd
-- @treturn int

--- Seconds until the host needs a step even when its fd stays quiet.
-- @function h:timeout
-- @treturn number|nil seconds, or nil when nothing is scheduled

--- Stops the strategies (`on_stop`, cancels on request, feeds closed), stepping the loop
-- for at most `timeout` seconds.
-- @function h:stop
-- @tparam[opt="stop"] string reason passed to `on_stop`
-- @tparam[opt=15] number timeout seconds
-- @treturn bool true when they stopped in time

--- Stops the strategies if they run (at most `timeout` seconds), closes the file watchers,
-- the dashboard and the local exchange. Idempotent; also the host's `__close`.
-- @function h:close
-- @tparam[opt=5] number timeout seconds
local core = require "polysim.core"
local ploop = require "polysim.loop"
local strategy = require "polysim.strategy"
local reload = require "polysim.reload"
local check_options = require("polysim.opts").check

local ipairs, pairs, pcall, setmetatable, tostring, type =
  ipairs, pairs, pcall, setmetatable, tostring, type
local string_format = string.format
local monotime = core.monotime
local loop = ploop.core

-- The step deadline (include/polysim.h): present when polysim runs inside the polysim
-- command or the embedding library, which preload it; absent under a plain lua5.4.
local has_preempt, preempt = pcall(require, "polysim.preempt")
if not has_preempt then preempt = nil end
if preempt and not ploop.take_preempted then
  ploop.take_preempted = preempt.take
  local gethook = debug.gethook
  ploop.on_spawn = function(task)
    local fn, mask, count = gethook(task.co)
    preempt.install(task.co, type(fn) == "function" and fn or nil, mask or "", count or 0)
  end
end

local _M = { preemptive = preempt ~= nil }

---------------------------------------------------------------------------------------------
-- decimals for the status line

local decimal = core.decimal

local function dec(v)
  if v == nil or v == core.null then return nil end
  local ok, d = pcall(decimal.new, type(v) == "number" and tostring(v) or v)
  if ok then return d end
  return nil
end

local function money(d)
  if not d then return "?" end
  local s = tostring(d)
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  local int, frac = s:match("^(%d+)%.?(%d*)$")
  if not int then return (neg and "-" or "") .. s end
  frac = (frac .. "00"):sub(1, 2)
  int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (neg and "-" or "") .. int .. "." .. frac
end

local function signed(d)
  if not d then return "?" end
  local s = money(d)
  if s:sub(1, 1) ~= "-" then s = "+" .. s end
  return s
end

---------------------------------------------------------------------------------------------
-- the host object

local Host = {}
local mt = { __name = "polysim.Host", __index = Host }
mt.__tostring = function(self)
  return string_format("polysim.Host (%s%s)", self.base_url or "?", self.closed and ", closed" or "")
end
_M.methods = Host

local NEW_OPTIONS = {
  api_key = true, base_url = true, live = true, local_exchange = true, seed = true, tick = true, budget = true,
  hot_reload = true, log_sink = true, status = true, status_interval = true, debounce = true,
  log_level = true, log_format = true, log_file = true, quiet = true, dashboard = true,
}

-- new{ api_key =, base_url =, live = false, local_exchange = "auto" | true | false, seed = 1, tick = 0.5,
--      budget = 0.5 | false, hot_reload = true, log_sink = fn(line, level),
--      status = "tty" | "plain" | false, status_interval = seconds, debounce = seconds,
--      dashboard = { port = 0, control = false } | true (the live page: Host:open_dashboard) }
-- -> host | nil, err
function _M.new(opts)
  opts = opts or {}
  check_options("host.new", opts, NEW_OPTIONS) -- polysim.opts: did-you-mean, at the caller's line
  local api_key = opts.api_key
  if api_key == nil then api_key = os.getenv "POLYSIM_API_KEY" end
  if api_key == "" then api_key = nil end
  local base_url = opts.base_url
  if base_url == "" then base_url = nil end
  local want_local = opts.local_exchange
  -- cli (issue 11): the real service is an explicit choice (live = true or a base_url), never
  -- implied by POLYSIM_API_KEY alone.
  if want_local == nil or want_local == "auto" then want_local = not base_url and not opts.live end
  local self = setmetatable({
    opts = opts, srv = nil, client = nil, rt = nil, rts = {}, watcher = nil, watchers = {}, base_url = nil,
    api_key = api_key, sink = nil, status_mode = opts.status, status_text = nil,
    stop_reason = nil, stopping_task = nil, closed = false, cancel_status = nil,
    started_at = monotime(), last_error = nil,
  }, mt)
  local user_sink = opts.log_sink
  local quiet = opts.quiet
  self.sink = function(line, level)
    -- quiet: info and debug lines go to the file (log_file) alone, whatever the sink
    if quiet and (level == "info" or level == "debug") then return end
    if user_sink then return user_sink(line, level) end
    if self.status_text then io.stderr:write("\r\27[K") end
    io.stderr:write(line, "\n")
    if self.status_text then io.stderr:write(self.status_text) end
  end
  if want_local then
    local ok, srv, err = pcall(require("polysim.serve").start, {
      -- tick 0 (or false) freezes prices, like `polysim serve --tick 0`
      port = 0, seed = math.tointeger(opts.seed) or 1,
      tick = (opts.tick == nil and 0.5) or (type(opts.tick) == "number" and opts.tick > 0 and opts.tick) or false,
      api_key = opts.api_key,
    })
    if not ok then err, srv = srv, nil end
    if not srv then return nil, "cannot start the local exchange: " .. tostring(err) end
    self.srv = srv
    self.api_key = srv.api_key
    self.base_url = srv.base_url
  else
    self.base_url = base_url
  end
  -- one log output for the host and every strategy: one level, format, file and redaction
  local lok, out = pcall(require("polysim.log").new, { sink = self.sink, api_key = self.api_key,
    level = opts.log_level, format = opts.log_format, file = opts.log_file })
  if not lok then
    if self.srv then self.srv:close() end
    return nil, (tostring(out):gsub("^.-log%.new: ", ""))
  end
  self.out = out
  self.log = out:logger("polysim")
  local ok, client = pcall(require("polysim").new, { api_key = self.api_key, base_url = self.base_url })
  if not ok then
    if self.srv then self.srv:close() end
    return nil, tostring(client):gsub("^.-: new: ", "")
  end
  self.client = client
  self.base_url = client.base_url
  _M.current = self
  return self
end

-- Loads and starts the strategy (its on_start runs before this returns). true | nil, err
-- One strategy per host through load (the C API's contract); add runs more beside it.
function Host:load(path)
  if self.rt then return nil, "a strategy is already loaded" end
  return self:add(path)
end

-- Loads and starts one more strategy in this host: its own runtime (context, state, orders,
-- P&L, reloads, feed), so that one strategy's error or reload touches no other.
-- true | nil, err
function Host:add(path)
  local opts = self.opts
  local budget = opts.budget
  if budget == 0 then budget = false end
  local rt
  rt = strategy.new {
    client = self.client, budget = budget, log = self.out, api_key = self.api_key,
    -- ctx:stop(): the host stops with its only strategy; beside others, that one stops alone.
    on_stop_request = function(reason)
      if #self.rts <= 1 then
        self.stop_reason = self.stop_reason or reason
      else
        ploop.spawn(function() rt:stop(reason) end)
      end
    end,
  }
  local ok, err = rt:start(path)
  if not ok then return nil, err end
  local rts = self.rts
  rts[#rts + 1] = rt
  self.rt = self.rt or rt
  if opts.hot_reload ~= false then
    local w, werr = reload.watch(rt, { debounce = opts.debounce })
    if w then
      self.watchers[#self.watchers + 1] = w
      self.watcher = self.watcher or w
    else
      self.log.warn("hot reload off: " .. tostring(werr))
    end
  end
  if #rts == 1 then self:_start_status() end
  if #rts == 1 and opts.dashboard then
    local d, derr = self:open_dashboard(opts.dashboard == true and {} or opts.dashboard)
    if not d then self.log.error("cannot start the dashboard: " .. tostring(derr)) end
  end
  return true
end

-- The live page of this host's (first) strategy on 127.0.0.1 (polysim.dashboard):
-- cfg = { port = 0, control = false }. Sets self.dashboard and self.dashboard_url (which
-- carries the per-run token when control is on). -> dashboard | nil, err
function Host:open_dashboard(cfg)
  if self.dashboard then return self.dashboard end
  if not self.rt then return nil, "no strategy loaded" end
  local d, err = require("polysim.dashboard").for_host(self, cfg or {})
  if not d then return nil, err end
  self.dashboard, self.dashboard_url = d, d.url
  return d
end

-- True when every strategy of the host has stopped.
function Host:_all_stopped()
  for _, rt in ipairs(self.rts) do
    if not rt.stopped then return false end
  end
  return true
end

function Host:_close_watchers()
  for _, w in ipairs(self.watchers) do w:close() end
  self.watchers = {}
  self.watcher = nil
end

-- One turn of the loop, waiting at most timeout seconds (0: only what is ready now).
-- Returns true, or nil and the error of a loop callback (the host stays usable).
-- A callback still running at the deadline (timeout after the step began) is suspended
-- and resumed at the next step, before anything else runs.
function Host:step(timeout)
  if self.stop_reason and not self.stopping_task and self.rt then self:_begin_stop(self.stop_reason) end
  timeout = timeout or 0
  local ok, err
  if preempt then preempt.set_deadline(timeout >= 0 and timeout or nil) end
  if #ploop.preempted > 0 then
    ok, err = pcall(ploop.resume_preempted)
  else
    ok, err = pcall(loop.step, loop, timeout)
  end
  if preempt then preempt.set_deadline(nil) end
  if not ok then
    self.last_error = tostring(err)
    self.log.error("loop: " .. self.last_error)
    return nil, self.last_error
  end
  return true
end

-- step for the C API: 0, 1 once the strategy has stopped, or -1 and the error.
function Host:c_step(timeout)
  local ok, err = self:step(timeout)
  if not ok then return -1, err end
  if self.rt and self:_all_stopped() then return 1 end
  return 0
end

-- The snapshot of the C API (polysim_host_snapshot): the first strategy's rt:snapshot(),
-- flattened; the account part is refreshed in the background at most once a second.
function Host:c_snapshot()
  local rt = self.rt
  if not rt then return { version = 0, running = false, positions = {}, open_orders = {}, errors = 0, reloads = 0 } end
  local now = monotime()
  if not rt.stopping and not rt.refreshing and (not self.refreshed_at or now - self.refreshed_at >= 1) then
    self.refreshed_at = now
    ploop.spawn(function() pcall(rt.refresh, rt) end)
  end
  local snap = rt:snapshot()
  local own = snap.own or {}
  local function strings(list) -- C reads strings only
    local out = {}
    for i, row in ipairs(list) do
      local r = {}
      for k, v in pairs(row) do
        if v ~= core.null and type(v) ~= "table" then r[k] = tostring(v) end
      end
      out[i] = r
    end
    return out
  end
  return {
    name = snap.name, version = snap.version, running = not rt.stopped,
    cash = snap.cash, equity = snap.equity, pnl = snap.pnl,
    own_pnl = own.pnl, own_placed = own.placed or 0, own_filled = own.filled or 0,
    positions = strings(snap.positions), open_orders = strings(snap.open_orders),
    errors = snap.errors, reloads = rt.stats.reloads, last_error = snap.last_error,
  }
end

-- True once the strategy has stopped (or never started).
function Host:done()
  return not self.rt or self:_all_stopped()
end

function Host.fd(_) return loop:fd() end

-- Seconds until the host needs a step even when its fd stays quiet, or nil.
function Host.timeout(_)
  if #ploop.preempted > 0 then return 0 end -- a suspended callback goes on at the next step
  return loop:timeout()
end

function Host:_begin_stop(reason)
  if self.stopping_task or not self.rt then return end
  self.stop_reason = self.stop_reason or reason
  self:_stop_status()
  self:_close_watchers()
  local tasks = {}
  for i, rt in ipairs(self.rts) do tasks[i] = ploop.spawn(function() rt:stop(self.stop_reason) end) end
  self.stopping_task = tasks
end

-- Stops the strategy (on_stop, cancel on request, feeds closed), stepping the loop for at
-- most timeout seconds. true when it finished in time.
function Host:stop(reason, timeout)
  if not self.rt then return true end
  self:_begin_stop(reason or "stop")
  local deadline = monotime() + (timeout or 15)
  while not self:_all_stopped() and monotime() < deadline do
    self:step(math.min(0.1, math.max(0, deadline - monotime())))
  end
  return self:_all_stopped()
end

-- Stops the strategy if it runs (for at most timeout seconds, default 5), closes the watcher
-- and the local exchange. Idempotent.
function Host:close(timeout)
  if self.closed then return end
  if self.rt and not self:_all_stopped() then self:stop("close", timeout or 5) end
  self.closed = true
  self:_stop_status()
  if self.dashboard then self.dashboard:close() end
  self:_close_watchers()
  if self.srv then self.srv:close() end
  if self.out then self.out:close() end
end
mt.__close = Host.close

-- the status line: cash, P&L, positions, every second on a terminal

function Host:_snapshot()
  local client = self.client
  local p = client:portfolio()
  local bal, positions
  if p and type(p.balance) == "table" then
    bal, positions = p.balance, p.positions
  else
    local err
    bal, err = client:balance()
    if not bal then return nil, err end
    positions = client:positions { status = "OPEN" }
  end
  local cash = dec(bal.balance)
  local total, start = dec(bal.total_value), dec(bal.starting_balance)
  local pnl = total and start and (total - start) or dec(bal.unrealized_pnl)
  local open = 0
  if type(positions) == "table" then
    for _, pos in ipairs(positions) do
      if pos.status == nil or pos.status == "OPEN" then open = open + 1 end
    end
  end
  return { cash = cash, pnl = pnl, positions = open }
end

function Host:_status_line(snap, rt)
  rt = rt or self.rt
  local s = rt.stats
  local v = rt.current and rt.current.n or 0
  if #self.rts > 1 then -- several strategies: each line is that strategy's own orders
    local own = rt.own and rt.own:summary()
    return string_format("%s v%d | own P&L %s | open orders %d | fills %d | events %d | errors %d | reloads %d",
      rt.name, v, signed(own and dec(own.pnl)), own and own.open or 0, own and own.filled or 0,
      s.delivered, s.errors, s.reloads)
  end
  return string_format("%s v%d | cash %s | P&L %s | positions %d | events %d | errors %d | reloads %d",
    rt.name, v, money(snap and snap.cash), signed(snap and snap.pnl), snap and snap.positions or 0,
    s.delivered, s.errors, s.reloads)
end

function Host:_start_status()
  local mode = self.status_mode
  if mode == nil then
    mode = core.isatty and core.isatty(2) and "tty" or "plain"
  end
  if not mode then return end
  local interval = self.opts.status_interval or (mode == "tty" and 1 or 10)
  local busy = false
  self.cancel_status = ploop.every(interval, function()
    if busy or not self.rt or self.rt.stopping then return end
    busy = true
    ploop.spawn(function()
      local ok, snap = pcall(self._snapshot, self)
      busy = false
      if not ok or not snap or not self.cancel_status then return end
      if mode == "tty" then
        local line = self:_status_line(snap)
        if #self.rts > 1 then -- one line for all: name, version, own P&L, errors each
          local parts = {}
          for i, rt in ipairs(self.rts) do
            local own = rt.own and rt.own:summary()
            parts[i] = string_format("%s v%d %s e%d", rt.name, rt.current and rt.current.n or 0,
              signed(own and dec(own.pnl)), rt.stats.errors)
          end
          line = "cash " .. money(snap and snap.cash) .. " | " .. table.concat(parts, " | ")
        end
        self.status_text = line
        io.stderr:write("\r\27[K", line)
        io.stderr:flush()
      else
        for _, rt in ipairs(self.rts) do self.log.info(self:_status_line(snap, rt)) end
      end
    end)
  end)
end

function Host:_stop_status()
  if self.cancel_status then self.cancel_status() end
  self.cancel_status = nil
  if self.status_text then
    io.stderr:write("\r\27[K")
    self.status_text = nil
  end
end

-- the status line's number formats, for polysim.cli.run's summary lines
_M.dec, _M.money, _M.signed = dec, money, signed

-- `polysim run` (polysim.cli.run); polysim.backtest.run calls it here.
function _M.main(args) return require("polysim.cli.run").main(args) end

return _M
