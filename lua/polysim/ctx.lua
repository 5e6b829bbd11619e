-- The context a strategy's callbacks receive (one per loaded version): the API of the
-- strategy contract (see polysim/strategy.lua's header), and the timers it owns.
local callback = require "polysim.callback"

local error, ipairs, pairs, setmetatable, string_format, table, type =
  error, ipairs, pairs, setmetatable, string.format, table, type
local invoke = callback.invoke

local _M = {}

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

function Ctx:subscribe(ids)
  local _, rt = check_ctx(self, "subscribe")
  return rt:subscribe(id_list("subscribe", ids))
end

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

function Ctx:subscribe_spot(syms)
  local _, rt = check_ctx(self, "subscribe_spot")
  return rt:subscribe_spot(sym_list("subscribe_spot", syms))
end

function Ctx:unsubscribe_spot(syms)
  local _, rt = check_ctx(self, "unsubscribe_spot")
  return rt:unsubscribe_spot(sym_list("unsubscribe_spot", syms))
end

function Ctx:spot_subscriptions()
  local _, rt = check_ctx(self, "spot_subscriptions")
  return rt:spot_subscriptions()
end

function Ctx:subscriptions()
  local _, rt = check_ctx(self, "subscriptions")
  return rt:subscriptions()
end

---------------------------------------------------------------------------------------------
-- timers: they belong to the version that made them (cancelled when it retires)

local Timer = {}
local timer_mt = { __name = "polysim.StrategyTimer", __index = Timer }

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

function Ctx:spawn(fn, ...)
  local ver, rt = check_ctx(self, "spawn")
  if type(fn) ~= "function" then error("ctx:spawn: fn must be a function", 2) end
  local args = table.pack(...)
  invoke(rt, ver, "spawned task", function() return fn(table.unpack(args, 1, args.n)) end)
end

function Ctx:sleep(seconds)
  local _, rt = check_ctx(self, "sleep")
  return rt.clock.sleep(seconds)
end

function Ctx:now()
  local _, rt = check_ctx(self, "now")
  return rt.clock.now()
end

function Ctx:monotime()
  local _, rt = check_ctx(self, "monotime")
  return rt.clock.monotime()
end

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
