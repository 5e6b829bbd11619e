--- The strategy API: the table a strategy file returns, the events its callbacks get,
-- and the context `ctx` every callback receives (one per loaded version; all versions of a
-- strategy share its client, state and subscriptions).
--
--    -- my_strategy.lua, run with `polysim run my_strategy.lua`
--    local S = { name = "demo", cancel_on_stop = true }
--    function S.on_start(ctx) ctx:subscribe(ctx.params.market or "0x…") end
--    function S.on_price(ctx, msg)          -- a task: client calls yield, not block
--      if tonumber(msg.buy) < 0.30 then
--        local o, err = ctx.client:place_order{ market_id = msg.market_id, side = "BUY",
--          outcome = "Yes", quantity = "5", price = "0.30" }
--        if not o then ctx.log.warn("order failed: %s", tostring(err)) end
--      end
--    end
--    return S
--
-- Every callback runs in a task of its own on one loop: a client call inside it yields and
-- other callbacks go on; price events of one market arrive in order, one at a time; fills
-- likewise in one queue; nothing is delivered before `on_start` returns or during a reload.
-- A callback that raises is reported with its traceback and the host goes on; one that runs
-- past its budget without yielding is interrupted. The full rules (reload, ordering,
-- budget) are at the top of `lua/polysim/strategy.lua`.
--
-- Fields of `ctx`:
--
-- - `ctx.client`: the client (`polysim.client`); orders placed through it carry a
--   `client_order_id` starting with `ctx.order_prefix`: the strategy's own orders, the only
--   ones `on_fill` hears about, `cancel_on_stop` cancels and the P&L line counts.
-- - `ctx.state`: a table that survives reloads (keep everything worth keeping here).
-- - `ctx.params`: the `--param NAME=VALUE` values of `polysim run` (strings), or `{}`.
-- - `ctx.log.info/warn/error(fmt, ...)`: timestamped lines on stderr (the API key redacted).
-- - `ctx.name`, `ctx.version`: the strategy's name; its version (1, then +1 per reload).
--
-- Misuse (`ctx.subscribe(...)` without the colon, a wrong argument type) raises
-- `"ctx:<name>: ..."` at the caller's line.
-- @module polysim.ctx
local callback = require "polysim.callback"

local error, ipairs, pairs, setmetatable, string_format, table, type =
  error, ipairs, pairs, setmetatable, string.format, table, type
local invoke = callback.invoke

local _M = {}

--- The table a strategy file returns; every field is optional.
-- @table Strategy
-- @field name shown in log lines (default: the file name)
-- @field cancel_on_stop after `on_stop`, cancel the open orders this strategy placed (never
--   the account's others; default false)
-- @field budget seconds a callback may run without yielding (default 0.5; false: none)
-- @field conflate true: a price event still queued for a market is replaced by a newer one
-- @field on_start `function(ctx)`: once, before any event is delivered
-- @field on_price `function(ctx, msg)`: a `PriceEvent` of a subscribed market
-- @field on_fill `function(ctx, fill)`: a `Fill` of one of this strategy's orders
-- @field on_spot `function(ctx, tick)`: a `SpotTick` of a subscribed underlying
-- @field on_window `function(ctx, ev)`: a `WindowEvent` (subscribed underlying or market)
-- @field on_reload `function(ctx, old_state)`: this version replaced a running one (default:
--   `on_start` runs); `ctx.state` is already the old state
-- @field on_stop `function(ctx, reason)`: the host is stopping (`"SIGINT"`, `"duration"`, …)

--- A price event (`on_price`); numbers are decimal strings.
-- @table PriceEvent
-- @field type `"price"`
-- @field market_id the market's condition id
-- @field buy the **Yes** price (not a bid)
-- @field sell the **No** price (not an ask)
-- @field best_bid,best_ask the Yes book's best levels
-- @field volume traded volume
-- @field outcomes `{ {label, price}, … }` (multi-outcome markets)
-- @field updated_at ISO-8601 time

--- A fill of one of the strategy's own orders (`on_fill`).
-- @table Fill
-- @field type `"fill"`
-- @field order_id,client_order_id the order
-- @field market_id,side,outcome what was traded (`"BUY"`/`"SELL"`, `"Yes"`/`"No"`/label)
-- @field price,quantity,fee the fill (decimal strings)
-- @field filled_at ISO-8601 time

--- A spot price tick (`on_spot`, after `ctx:subscribe_spot`).
-- @table SpotTick
-- @field type `"spot"`
-- @field symbol the underlying, e.g. `"BTC"`
-- @field price the spot price
-- @field timestamp ISO-8601 time of the price
-- @field source e.g. `"chainlink_rtds"`

--- An Up/Down window's lifecycle event (`on_window`).
-- @table WindowEvent
-- @field type `"window"`
-- @field event `"open"`, `"close"`, `"resolve"` or `"settle"`
-- @field market_id,symbol,interval the window
-- @field start_date,end_date ISO-8601 times
-- @field price_to_beat the strike; `close_price` the spot at the end
-- @field resolved_outcome `"Up"` or `"Down"` (resolve, settle)
-- @field payout what the winning shares paid (settle)

--- Methods of `ctx`.
-- @section ctx

local Ctx = {}
local ctx_mt = { __name = "polysim.StrategyContext", __index = Ctx }
ctx_mt.__tostring = function(self) return "polysim.StrategyContext (" .. self.name .. " v" .. self.version .. ")" end
_M.methods = Ctx

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

--- Starts price events (`on_price`) for markets; subscriptions carry over reloads.
-- @tparam string|{string,...} ids a market (condition) id or a list of them
function Ctx:subscribe(ids)
  local _, rt = check_ctx(self, "subscribe")
  return rt:subscribe(id_list("subscribe", ids))
end

--- Stops price events for markets.
-- @tparam string|{string,...} ids a market id or a list of them
function Ctx:unsubscribe(ids)
  local _, rt = check_ctx(self, "unsubscribe")
  return rt:unsubscribe(id_list("unsubscribe", ids))
end

local function sym_list(fname, syms)
  if type(syms) == "string" then syms = { syms } end
  if type(syms) ~= "table" then error("ctx:" .. fname .. ": symbols must be an underlying (\"BTC\") or a list", 3) end
  for i, sym in ipairs(syms) do
    if type(sym) ~= "string" or sym == "" then error("ctx:" .. fname .. ": symbols[" .. i .. "] must be a string", 3) end
  end
  return syms
end

--- Starts `on_spot` ticks, and `on_window` events of that underlying's windows.
-- @tparam string|{string,...} syms an underlying (`"BTC"`) or a list of them
function Ctx:subscribe_spot(syms)
  local _, rt = check_ctx(self, "subscribe_spot")
  return rt:subscribe_spot(sym_list("subscribe_spot", syms))
end

--- Stops spot ticks and window events of underlyings.
-- @tparam string|{string,...} syms an underlying or a list of them
function Ctx:unsubscribe_spot(syms)
  local _, rt = check_ctx(self, "unsubscribe_spot")
  return rt:unsubscribe_spot(sym_list("unsubscribe_spot", syms))
end

--- The subscribed underlyings.
-- @treturn {string,...}
function Ctx:spot_subscriptions()
  local _, rt = check_ctx(self, "spot_subscriptions")
  return rt:spot_subscriptions()
end

--- The subscribed market ids.
-- @treturn {string,...}
function Ctx:subscriptions()
  local _, rt = check_ctx(self, "subscriptions")
  return rt:subscriptions()
end

---------------------------------------------------------------------------------------------
-- timers: they belong to the version that made them (cancelled when it retires)

local Timer = {}
local timer_mt = { __name = "polysim.StrategyTimer", __index = Timer }

--- Cancels a timer from `ctx:every` or `ctx:after` (a no-op when already done).
function Timer:cancel()
  if self.cancelled then return end
  self.cancelled = true
  if self.handle then self.handle:cancel() end
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

--- Calls `fn(ctx)` once after `seconds`, as a task (isolated and budgeted like a callback).
-- Timers belong to the version that made them: a reload cancels them (re-arm in on_reload).
-- @tparam number seconds >= 0
-- @func fn `function(ctx)`
-- @treturn table a timer: `timer:cancel()`
function Ctx:after(seconds, fn)
  local ver, rt = check_ctx(self, "after")
  check_timer("after", seconds, fn, 0)
  local t = new_timer(ver, string_format("timer (after %g s)", seconds))
  if t.cancelled then return t end
  t.handle = rt.clock.after(seconds, function()
    if t.cancelled then return end
    t.cancelled = true
    ver.timers[t] = nil
    invoke(rt, ver, t.label, fn, ver.ctx)
  end)
  return t
end

--- Calls `fn(ctx)` every `seconds`, as a task; a tick that comes while the previous run is
-- still going is skipped (never overlaps). Cancelled by a reload, like `after`.
-- @tparam number seconds >= 0.001
-- @func fn `function(ctx)`
-- @treturn table a timer: `timer:cancel()`
function Ctx:every(seconds, fn)
  local ver, rt = check_ctx(self, "every")
  check_timer("every", seconds, fn, 0.001)
  local t = new_timer(ver, string_format("timer (every %g s)", seconds))
  if t.cancelled then return t end
  local function done() t.running = false end
  local function tick()
    if t.cancelled then return end
    t.handle = rt.clock.after(seconds, tick)
    if t.running then
      rt.stats.skipped_ticks = rt.stats.skipped_ticks + 1
      return
    end
    t.running = true
    local rec = invoke(rt, ver, t.label, fn, ver.ctx)
    if rec.finished then t.running = false else rec.on_done = done end
  end
  t.handle = rt.clock.after(seconds, tick)
  return t
end

-- Cancels every timer of a version (at its retirement).
function _M.cancel_timers(ver)
  for t in pairs(ver.timers) do t:cancel() end
end

---------------------------------------------------------------------------------------------

--- Runs `fn(...)` as a task of its own, isolated and budgeted like a callback.
-- @func fn the task's body
-- @param ... its arguments
function Ctx:spawn(fn, ...)
  local ver, rt = check_ctx(self, "spawn")
  if type(fn) ~= "function" then error("ctx:spawn: fn must be a function", 2) end
  local args = table.pack(...)
  invoke(rt, ver, "spawned task", function() return fn(table.unpack(args, 1, args.n)) end)
end

--- Waits `seconds` without holding up anything else (simulated time in a backtest).
-- @tparam number seconds >= 0
function Ctx:sleep(seconds)
  local _, rt = check_ctx(self, "sleep")
  return rt.clock.sleep(seconds)
end

--- Wall-clock time (the data's clock in a backtest).
-- @treturn number Unix seconds with a fraction
function Ctx:now()
  local _, rt = check_ctx(self, "now")
  return rt.clock.now()
end

--- Monotonic seconds, for measuring durations.
-- @treturn number
function Ctx:monotime()
  local _, rt = check_ctx(self, "monotime")
  return rt.clock.monotime()
end

--- Asks the host to stop the strategy (`on_stop` runs as usual).
-- @tparam[opt] string reason passed to `on_stop` (default `"strategy asked to stop"`)
function Ctx:stop(reason)
  local _, rt = check_ctx(self, "stop")
  rt:request_stop(reason or "strategy asked to stop")
end

function _M.new(rt, ver)
  local ctx = setmetatable({
    client = rt.strategy_client or rt.client, -- orders placed through it are tagged as ours
    order_prefix = rt.own and rt.own.prefix,
    state = rt.state,
    log = rt.strategy_log,
    name = rt.name,
    version = ver.n,
    params = rt.params,
  }, ctx_mt)
  owner[ctx] = ver
  return ctx
end

return _M
