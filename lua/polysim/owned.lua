-- The orders a strategy owns. Every order a strategy places through ctx.client carries a
-- client order id starting with its runtime's prefix ("ps-<8 hex>-<name>-", new for every
-- run and every strategy in it); the runtime counts those orders, follows their fills, works
-- out their P&L, and at stop (cancel_on_stop) cancels those alone: an order placed by hand,
-- by another program or by another strategy in the same host is never touched.
--
--   local own = owned.new(name)
--   ctx.client = own:wrap(client)     place_order / place_orders / clob_order tag and record
--   own:is_own(order_or_fill)         by client order id prefix, or a recorded order id
--   own:fill(ev)                      follows a fill of ours (true when it was ours)
--   own:mark(price_msg)               last prices, for the mark-to-market part of the P&L
--   own:summary()                     { prefix, placed, open, filled, cancelled, cash, pnl, open_orders }
--   own:cancel_open(client)           cancels our open orders -> cancelled, failed, errors
local core = require "polysim.core"

local ipairs, pairs, pcall, setmetatable, tostring, type = ipairs, pairs, pcall, setmetatable, tostring, type
local string_format = string.format
local decimal = core.decimal

local _M = {}

local Own = {}
local own_mt = { __name = "polysim.OwnedOrders", __index = Own }
_M.methods = Own

local function dec(v)
  if v == nil or v == core.null then return nil end
  local ok, d = pcall(decimal.new, tostring(v))
  return ok and d or nil
end

local seeded = false
local function token()
  if not seeded then
    math.randomseed(math.floor(core.monotime() * 1e6) ~ (os.time() << 20))
    seeded = true
  end
  return string_format("%08x", math.random(0, 0x7fffffff))
end

-- A prefix per runtime: short, header-safe (letters, digits, '-'), unique per run.
function _M.new(name)
  local tag = tostring(name or "s"):gsub("[^%w]", ""):sub(1, 16)
  if tag == "" then tag = "s" end
  return setmetatable({
    prefix = "ps-" .. token() .. "-" .. tag .. "-",
    seq = 0,
    orders = {},           -- order id -> { open, view, filled }
    placed = 0, filled = 0, cancelled = 0,
    cash = decimal.new "0", -- money out (buys) and in (sells), fees included
    held = {},             -- "market|outcome" -> { market_id, outcome, quantity }
    marks = {},            -- market id -> last price message
  }, own_mt)
end

function Own:is_own(t)
  if type(t) ~= "table" then return false end
  local coid = t.client_order_id
  if type(coid) == "string" and coid:sub(1, #self.prefix) == self.prefix then return true end
  local id = t.order_id or t.id
  return id ~= nil and self.orders[tostring(id)] ~= nil
end

function Own:_next_id(given)
  if type(given) == "string" and given ~= "" then
    if given:sub(1, #self.prefix) == self.prefix then return given end
    return self.prefix .. given
  end
  self.seq = self.seq + 1
  return self.prefix .. self.seq .. "-" .. token()
end

local function view_of(r)
  return { order_id = r.order_id or r.id, client_order_id = r.client_order_id, market_id = r.market_id,
           side = r.side, outcome = r.outcome, price = r.limit_price or r.price, quantity = r.quantity,
           status = r.status }
end

function Own:_record(r)
  if type(r) ~= "table" then return end
  local id = r.order_id or r.id
  if id == nil or id == core.null then return end
  id = tostring(id)
  local o = self.orders[id]
  if not o then
    o = { view = view_of(r) }
    self.orders[id] = o
    self.placed = self.placed + 1
  end
  o.view.status = r.status or o.view.status
  o.open = o.view.status == nil or o.view.status == "PENDING" or o.view.status == "OPEN"
    or o.view.status == "PARTIALLY_FILLED" or o.view.status == "LIVE"
end

-- A proxy of client whose order placements carry our prefix and are recorded; every other
-- method is the client's own.
function Own:wrap(client)
  if type(client) ~= "table" then return client end
  local own = self
  local proxy = {}
  local function copy(o)
    local c = {}
    for k, v in pairs(o) do c[k] = v end
    return c
  end
  local over = {
    place_order = function(_, o)
      if type(o) ~= "table" then return client:place_order(o) end
      local c = copy(o)
      c.client_order_id = own:_next_id(o.client_order_id)
      local r, err = client:place_order(c)
      if r then own:_record(r) end
      return r, err
    end,
    place_orders = function(_, list)
      if type(list) ~= "table" then return client:place_orders(list) end
      local tagged = {}
      for i, o in ipairs(list) do
        tagged[i] = type(o) == "table" and copy(o) or o
        if type(o) == "table" then tagged[i].client_order_id = own:_next_id(o.client_order_id) end
      end
      local r, err = client:place_orders(tagged)
      if type(r) == "table" then
        for _, item in ipairs(r.orders or r.results or r) do
          if type(item) == "table" then own:_record(item.order or item) end
        end
      end
      return r, err
    end,
    clob_order = function(_, o)
      if type(o) ~= "table" then return client:clob_order(o) end
      local c = copy(o)
      c.client_order_id = own:_next_id(o.client_order_id)
      return client:clob_order(c)
    end,
    cancel_order = function(_, id)
      local r, err = client:cancel_order(id)
      local o = id ~= nil and own.orders[tostring(id)]
      if r and o and o.open then
        o.open = false
        o.view.status = "CANCELLED"
        own.cancelled = own.cancelled + 1
      end
      return r, err
    end,
  }
  return setmetatable(proxy, {
    __name = "polysim.Client (strategy)",
    __index = function(_, k)
      local f = over[k]
      if f and client[k] then return f end
      local v = client[k]
      if type(v) ~= "function" then return v end
      return function(self_, ...)
        if self_ == proxy then return v(client, ...) end
        return v(self_, ...)
      end
    end,
    __tostring = function() return tostring(client) end,
  })
end

-- A fill event: when it is one of ours, follow it (quantity held, cash, the order's state).
function Own:fill(ev)
  if not self:is_own(ev) then return false end
  local id = ev.order_id and tostring(ev.order_id)
  local o = id and self.orders[id]
  if not o and id then
    o = { view = view_of(ev), open = true }
    o.view.status = nil
    self.orders[id] = o
    self.placed = self.placed + 1
  end
  if o then
    if not o.filled then self.filled = self.filled + 1 end
    o.filled = true
    if ev.status == "FILLED" or ev.status == nil then o.open = false end
    o.view.status = ev.status or "FILLED"
  end
  local q, p = dec(ev.quantity), dec(ev.price)
  if q and p then
    local notional = q * p
    if ev.side == "SELL" then
      self.cash = self.cash + notional
      q = -q
    else
      self.cash = self.cash - notional
    end
    local fee = dec(ev.fee)
    if fee then self.cash = self.cash - fee end
    local key = tostring(ev.market_id) .. "|" .. tostring(ev.outcome)
    local h = self.held[key]
    if not h then
      h = { market_id = ev.market_id, outcome = ev.outcome, quantity = decimal.new "0", last = p }
      self.held[key] = h
    end
    h.quantity = h.quantity + q
    h.last = p
  end
  return true
end

function Own:mark(msg)
  if type(msg) == "table" and msg.market_id then self.marks[msg.market_id] = msg end
end

-- The mark of an outcome: the outcome's price in the last price message (buy is the first
-- outcome's price — Yes, Up —, sell the second's), else the last fill price.
local function mark_of(h, msg)
  if type(msg) == "table" then
    local outs = msg.outcomes
    if type(outs) == "table" then
      for i, o in ipairs(outs) do
        local label = type(o) == "table" and (o.outcome or o.label or o.name) or o
        if label == h.outcome then
          local p = type(o) == "table" and dec(o.price or o.buy) or nil
          if p then return p end
          if i == 1 and dec(msg.buy) then return dec(msg.buy) end
          if i == 2 and dec(msg.sell) then return dec(msg.sell) end
        end
      end
    end
    if (h.outcome == "Yes" or h.outcome == "Up") and dec(msg.buy) then return dec(msg.buy) end
    if (h.outcome == "No" or h.outcome == "Down") and dec(msg.sell) then return dec(msg.sell) end
  end
  return h.last
end

-- P&L of our own orders: the cash they moved plus what we hold from them at the mark.
function Own:summary()
  local pnl = self.cash
  for _, h in pairs(self.held) do
    pnl = pnl + h.quantity * mark_of(h, self.marks[h.market_id])
  end
  local open = {}
  for _, o in pairs(self.orders) do
    if o.open then open[#open + 1] = o.view end
  end
  table.sort(open, function(a, b) return tostring(a.order_id) < tostring(b.order_id) end)
  return { prefix = self.prefix, placed = self.placed, open = #open, filled = self.filled,
           cancelled = self.cancelled, cash = tostring(self.cash), pnl = tostring(pnl), open_orders = open }
end

-- Cancels our open orders: the account's open orders that carry our prefix (so an order
-- whose placement answer was lost is found too) and those we recorded. Never cancel_all.
-- Returns the number cancelled, the number that failed, and the first error.
function Own:cancel_open(client)
  local ids, seen = {}, {}
  local function add(id)
    id = tostring(id)
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  local first_err, listed = nil, false
  if client.orders then
    local ok, err = pcall(function()
      for o in client:orders { status = "PENDING" } do
        if self:is_own(o) then add(o.order_id or o.id) end
      end
    end)
    if ok then listed = true else first_err = err end
  end
  for id, o in pairs(self.orders) do
    if o.open then
      if not listed then add(id)
      elseif not seen[id] then o.open = false end -- no longer open on the account
    end
  end
  local n, failed = 0, 0
  for _, id in ipairs(ids) do
    local ok, r, err = pcall(client.cancel_order, client, id)
    if not ok then r, err = nil, r end
    local o = self.orders[id]
    if r then
      n = n + 1
      if o then
        o.open = false
        o.view.status = "CANCELLED"
      end
    else
      failed = failed + 1
      first_err = first_err or err
    end
  end
  self.cancelled = self.cancelled + n
  return n, failed, first_err
end

return _M
