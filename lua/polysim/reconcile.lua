--- Settling orders whose outcome is unknown (`err.maybe_filled`).
--
-- (Issue 10 item 3.) When the client's retries of
-- an order run out and the order may have reached the exchange, place_order returns
-- nil, err with err.maybe_filled = true (and err.client_order_id, err.idempotency_key);
-- client:reconcile(err) looks the order up by its client order id. This module asks it a
-- bounded number of times and is what the strategy host puts between a strategy and its
-- client, so that a strategy hears of a failed order only when the order never arrived.
--
--    local reconcile = require "polysim.reconcile"
--    reconcile.settle(client, err [, opts]) -> order | false | nil, err
--       order: the exchange's record of it (it arrived: its status says how it filled);
--       false: the exchange has no such order (it never arrived, nothing filled);
--       nil, err: every lookup failed, the outcome is still unknown.
--       opts: attempts (5), pause (0.25 s, doubled after each failed lookup), sleep
--       (default: the client's own sleep, else polysim.loop.sleep), page_attempts (3: each
--       page of the search is asked for this often), after (the id of an order in the same
--       market known to be older, because its answer came back before this order was sent:
--       the search ends there instead of reading every order of the market)
--   reconcile.wrap(client [, log]) -> a client whose place_order and clob_order settle a
--       maybe_filled error before they return (log: a table of info/warn/error functions,
--       like ctx.log): an order that in fact arrived is returned as if the call had
--       succeeded (as orders() lists it, with reconciled = true on it); one that never arrived
--       comes back as nil, err with err.maybe_filled = false and err.reconciled =
--       "not_found"; when the lookups failed, err keeps maybe_filled = true and gains
--       err.reconcile_error. Every other method and field is the client's own. The search of
--       an order ends at the last order of its market that came back through the wrapper.
-- @module polysim.reconcile
local ploop = require "polysim.loop"
local errors = require "polysim.errors"
local paginate = require "polysim.paginate"

local error, pairs, pcall, setmetatable, tostring, type = error, pairs, pcall, setmetatable, tostring, type
local string_format = string.format

local _M = { ATTEMPTS = 5, PAUSE = 0.25, PAGE_ATTEMPTS = 3 }

local function say(log, level, msg)
  if type(log) == "table" and type(log[level]) == "function" then log[level](msg) end
end

-- One lookup: client:reconcile's search (the market's orders, newest first, by client order
-- id), with each page retried on its own and an end: opts.after, the id of an order of the
-- same market whose answer came back before this one was sent, so is older than it.
local function find(client, err, opts, sleep, pause)
  if type(client.orders_page) ~= "function" then return client:reconcile(err) end
  local coid, stop = err.client_order_id, opts.after ~= nil and tostring(opts.after) or nil
  local page_attempts = opts.page_attempts or _M.PAGE_ATTEMPTS
  local function fetch(cursor)
    local p, e
    for i = 1, page_attempts do
      p, e = client:orders_page { market_id = err.market_id, limit = 200, cursor = cursor }
      if p then return p end
      if i < page_attempts then sleep(pause) end
    end
    return nil, e
  end
  local ok, found = pcall(function()
    for o in paginate.cursor(fetch, "orders") do
      if o.client_order_id == coid then return o end
      if stop and tostring(o.order_id) == stop then return false end
    end
    return false
  end)
  if not ok then
    if errors.is_error(found) then return nil, found end
    error(found, 0)
  end
  return found
end

--- Asks `client:reconcile(err)` until it knows: a bounded number of lookups.
-- @tparam polysim.client client the client that placed the order
-- @tparam polysim.errors.Error err the order's error (`maybe_filled`, `client_order_id`)
-- @tparam[opt] table opts
-- @tparam[opt=5] int opts.attempts lookups
-- @tparam[opt=0.25] number opts.pause seconds before the second lookup, doubled after each
-- @tparam[opt=3] int opts.page_attempts tries of each page of the search
-- @param[opt] opts.after the id of an older order of the same market (its answer came back
--   before this order was sent): the search ends there
-- @func[opt] opts.sleep `function(seconds)` (default: the client's, else `polysim.loop.sleep`)
-- @return the order as `client:orders()` lists it: it arrived (`status` says how it filled)
-- @treturn[2] false the exchange has no such order: nothing filled
-- @treturn[3] nil every lookup failed: the outcome is still unknown
-- @treturn[3] polysim.errors.Error the last lookup's error
function _M.settle(client, err, opts)
  opts = opts or {}
  local attempts = opts.attempts or _M.ATTEMPTS
  local pause = opts.pause or _M.PAUSE
  local sleep = opts.sleep or (type(client.sleep) == "function" and client.sleep) or ploop.sleep
  local last
  for i = 1, attempts do
    local found, lerr = find(client, err, opts, sleep, pause)
    if found ~= nil then return found end
    last = lerr
    if i < attempts then
      sleep(pause)
      pause = pause * 2
    end
  end
  return nil, last
end

local function settled(client, log, after, r, err)
  if r or type(err) ~= "table" or not err.maybe_filled or type(client.reconcile) ~= "function" then
    return r, err
  end
  local coid = tostring(err.client_order_id)
  local found, lerr = _M.settle(client, err, { after = after })
  if found then
    say(log, "info", string_format("order %s: the answer was lost (%s) but the order arrived (%s); reconciled",
      coid, tostring(err.code), tostring(found.status)))
    found.reconciled = true
    return found
  end
  if found == false then
    err.maybe_filled = false
    err.reconciled = "not_found"
    say(log, "warn", string_format("order %s failed (%s); the exchange has no such order: nothing filled",
      coid, tostring(err.code)))
    return nil, err
  end
  err.reconcile_error = lerr
  say(log, "error", string_format("order %s: outcome unknown (%s); looking it up failed: %s",
    coid, tostring(err.code), tostring(lerr and lerr.message or lerr)))
  return nil, err
end

local SETTLED = { place_order = true, clob_order = true }

--- A client whose `place_order` and `clob_order` settle a `maybe_filled` error before they
-- return (what the strategy host gives `ctx.client`): an order that arrived comes back as if
-- the call had succeeded, with `reconciled = true`; one that never arrived as `nil, err` with
-- `maybe_filled = false` and `reconciled = "not_found"`; when the lookups failed, `err` keeps
-- `maybe_filled = true` and gains `reconcile_error`.
-- @tparam polysim.client client
-- @tparam[opt] table log `info`, `warn`, `error` functions (like `ctx.log`)
-- @return the wrapping client (every other method and field is the client's own)
function _M.wrap(client, log)
  if type(client) ~= "table" then return client end
  local bound = {}
  local last = {}     -- market id -> the id of the last order placed through us that came back
  return setmetatable({}, {
    __name = "polysim.Client (reconciling)",
    __tostring = function() return tostring(client) end,
    __pairs = function() return pairs(client) end,
    __index = function(_, k)
      local v = client[k]
      if type(v) ~= "function" then return v end
      local f = bound[k]
      if not f then
        if SETTLED[k] then
          f = function(_, o, ...)
            local market = type(o) == "table" and o.market_id or ""
            local after = last[market]         -- answered before this order goes out: older
            local r, err = settled(client, log, after, v(client, o, ...))
            if type(r) == "table" and r.order_id ~= nil then last[market] = r.order_id end
            return r, err
          end
        else
          f = function(_, ...) return v(client, ...) end
        end
        bound[k] = f
      end
      return f
    end,
    __newindex = function(_, k, v) client[k] = v end,
  })
end

return _M
