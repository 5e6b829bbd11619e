-- Test hooks: direct control of the simulated world for specs (books, prices, market state,
-- users, keys, balances, gates) and the invariant check. See the exchange's header.
local util = require "polysim.exchange.util"
local fixed = require "polysim.exchange.fixed"
local markets = require "polysim.exchange.markets"
local book = require "polysim.exchange.book"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"

local _M = {}
local methods = {}
_M.methods = methods
local null = util.null
local floor = math.floor

local function find_market(self, cid)
  local m = self.U.by_id[cid]
  if not m then return nil, "unknown market " .. tostring(cid) end
  return m
end

function methods:market(cid) return self.U.by_id[cid] end

function methods:set_book(cid, outcome, levels, opts)
  local m, err = find_market(self, cid)
  if not m then return nil, err end
  local idx = markets.outcome_index(m, outcome or m.outcomes[1].label)
  if not idx then return nil, "unknown outcome " .. tostring(outcome) end
  if type(levels) ~= "table" then return nil, "levels must be a table" end
  local bids, e1 = book.parse_levels(levels.bids, "bids")
  if not bids then return nil, e1 end
  local asks, e2 = book.parse_levels(levels.asks, "asks")
  if not asks then return nil, e2 end
  local o = m.outcomes[idx]
  o.bids, o.asks, o.pinned = bids, asks, true
  if m.binary and not (opts and opts.keep_complement) then
    local c = m.outcomes[3 - idx]
    c.bids, c.asks, c.pinned = {}, {}, true
  end
  local bb, ba = book.best(m, idx)
  local mid = (bb and ba) and ((bb + ba) // 2) or bb or ba
  if mid and mid > 0 and mid < fixed.P then
    if m.binary then
      m.outcomes[idx].price = mid
      m.outcomes[3 - idx].price = fixed.P - mid
    else
      o.price = mid
    end
  end
  m.updated_us = util.to_us(self.clock())
  self:_emit("price", m.condition_id, markets.ws_price(m))
  return true
end

function methods:set_price(cid, outcome, price)
  local m, err = find_market(self, cid)
  if not m then return nil, err end
  if price == nil then price, outcome = outcome, nil end
  local idx = markets.outcome_index(m, outcome or m.outcomes[1].label)
  if not idx then return nil, "unknown outcome " .. tostring(outcome) end
  local p = fixed.coerce(price, 4)
  if not p or p <= 0 or p >= fixed.P then return nil, "price must be in (0, 1)" end
  markets.set_price(m, idx, p, self.U.book_rng, self.clock())
  self:_emit("price", m.condition_id, markets.ws_price(m))
  return true
end

function methods:set_market(cid, fields)
  local m, err = find_market(self, cid)
  if not m then return nil, err end
  fields = fields or {}
  if fields.closed ~= nil then m.closed = fields.closed and true or false end
  if fields.active ~= nil then m.active = fields.active and true or false end
  if fields.is_hot ~= nil then m.is_hot = fields.is_hot and true or false end
  if fields.frozen ~= nil then m.frozen = fields.frozen and true or false end
  if fields.resolved_outcome ~= nil then
    if fields.resolved_outcome == false or fields.resolved_outcome == null then m.resolved_outcome = nil
    else
      local idx = markets.outcome_index(m, fields.resolved_outcome)
      if not idx then return nil, "unknown outcome" end
      m.resolved_outcome = m.outcomes[idx].label
      m.closed, m.frozen = true, true
      for _, o in ipairs(m.outcomes) do o.bids, o.asks = {}, {} end
    end
  end
  if fields.end_date ~= nil then
    local t = markets.parse_time(fields.end_date)
    if not t then return nil, "bad end_date" end
    m.end_date = t
  end
  if fields.new_for ~= nil then
    local secs = tonumber(fields.new_for)
    if not secs then return nil, "bad new_for" end
    m.visible_at = self.clock() + secs
  end
  if fields.fee_rate ~= nil then
    local bps = fixed.coerce(fields.fee_rate, 4)
    if not bps or bps < 0 or bps > fixed.P then return nil, "bad fee_rate" end
    m.fee_bps = bps
  end
  return true
end

function methods:pick_market(f)
  f = f or {}
  local now = self.clock()
  local want_state = f.state or "open"
  local fee = f.fee_rate and fixed.coerce(f.fee_rate, 4)
  for _, m in ipairs(self.U.list) do
    if (want_state == "any" or markets.state(m, now) == want_state)
      and (f.category == nil or m.category == f.category)
      and (f.binary == nil or m.binary == f.binary)
      and (fee == nil or m.fee_bps == fee)
      and (f.hot == nil or m.is_hot == f.hot) then
      return m.condition_id
    end
  end
  return nil, "no market matches"
end

function methods:add_user(opts)
  opts = opts or {}
  local plan = opts.plan or "pro"
  if not keys.TIER_RANK[plan] then return nil, "unknown plan " .. tostring(plan) end
  local user = keys.add_user(self.K, { plan = plan, email = opts.email, now = floor(self.clock()) })
  return { user_id = user.id, jwt = user.jwt, uuid = user.uuid }
end

local function user_of(self, who)
  if math.type(who) == "integer" then return self.K.users[who] end
  if type(who) == "string" then
    local key = self.K.by_hash[require("polysim.exchange.sha256").hex(who)]
    return key and key.user
  end
  return nil
end

function methods:add_key(opts)
  opts = opts or {}
  local user = self.K.users[opts.user_id or self.user_id]
  if not user then return nil, "unknown user" end
  local tier = opts.tier or user.plan
  if not keys.TIER_RANK[tier] then return nil, "unknown tier" end
  if opts.raw and not (type(opts.raw) == "string" and #opts.raw == 72 and opts.raw:match("^ps_live_[0-9a-f]+$")) then
    return nil, "raw key must be ps_live_ + 64 lowercase hex"
  end
  local _, raw = keys.add_key(self.K, user, { tier = tier, permissions = opts.permissions,
    name = opts.name, raw = opts.raw }, floor(self.clock()))
  accounts.ensure_wallet(user, self.tiers, self.clock())
  return raw
end

function methods:user_id_of(raw_key)
  local u = user_of(self, raw_key)
  return u and u.id
end

function methods:set_balance(who, amount)
  local user = user_of(self, who)
  if not user then return nil, "unknown user or key" end
  local v = fixed.coerce(amount, 8)
  if not v or v < 0 then return nil, "bad amount" end
  local w = user.wallet or accounts.ensure_wallet(user, self.tiers, self.clock())
  if not w then
    user.wallet = { cash = 0, reserved = 0, starting = 0, fees = 0, realized = 0 }
    w = user.wallet
  end
  local delta = v - w.cash
  w.cash = v
  w.starting = w.starting + delta
  return true
end

function methods:restrict_key(raw, flag)
  local key = self.K.by_hash[require("polysim.exchange.sha256").hex(tostring(raw))]
  if not key then return nil, "unknown key" end
  key.restricted = flag ~= false
  return true
end

function methods:expire_jwt(jwt)
  local user = self.K.jwts[jwt]
  if not user then return nil, "unknown jwt" end
  user.jwt_expires_at = self.clock()
  return true
end

function methods:set_closed_beta(v)
  if v == true then v = "CLOSED_BETA" end
  self.closed_beta = v or false
  return true
end


--- memory_stats(): what the exchange holds (issue 10 #8): idempotency records, orders,
--- trades over all users, and orders addressable by id.
function methods:memory_stats()
  local st = { idempotency_records = 0, orders = 0, trades = 0, orders_by_id = 0 }
  for _, user in pairs(self.K.users) do
    st.idempotency_records = st.idempotency_records + orders.idem_count(user)
    st.orders = st.orders + #user.orders
    st.trades = st.trades + #user.trades
  end
  for _ in pairs(self.O.by_id) do st.orders_by_id = st.orders_by_id + 1 end
  return st
end

function methods:check_invariants()
  for _, m in ipairs(self.U.all) do
    local okb, err = book.check(m)
    if not okb then return false, m.condition_id .. ": " .. err end
  end
  for _, user in pairs(self.K.users) do
    local oka, err = accounts.check(user)
    if not oka then return false, "user " .. user.id .. ": " .. err end
    local w = user.wallet
    if w then
      local reserved = 0
      local pos_res = {}
      for _, o in ipairs(user.orders) do
        if (o.status == "PENDING") ~= (user.open[o.id] == o) then
          return false, "order " .. o.id .. " open-set membership does not match its status"
        end
        if o.status == "PENDING" then
          if o.side == "BUY" then reserved = reserved + o.reserved_cash
          else pos_res[o.pos] = (pos_res[o.pos] or 0) + o.reserved_qty end
          if o.filled >= o.quantity then return false, "pending order " .. o.id .. " already filled" end
        elseif o.reserved_cash ~= 0 or o.reserved_qty ~= 0 then
          return false, "closed order " .. o.id .. " still holds a reservation"
        end
      end
      if reserved ~= w.reserved then
        return false, ("user %d: reserved cash %d ~= sum of pending BUYs %d"):format(user.id, w.reserved, reserved)
      end
      for _, pos in ipairs(user.pos_list) do
        if (pos_res[pos] or 0) ~= pos.reserved then
          return false, ("user %d: reserved shares do not match pending SELLs"):format(user.id)
        end
      end
    end
  end
  return true
end

return _M
