-- Handlers: the Polymarket-shaped data API (/v1/data/orders, /v1/data/trades,
-- /v1/prices-history) and the wallets family (/v1/me/wallets...). Shapes follow the SDK:
-- polysim_sdk/client.py data_orders / data_trades / *_wallet and
-- polysim_polymarket/clients/public.py get_price_history.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local fixed = require "polysim.exchange.fixed"
local markets = require "polysim.exchange.markets"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"
local R = require "polysim.exchange.request"

local array, null = util.array, util.null
local q_str, q_int, ok = R.q_str, R.q_int, R.ok
local fmt_qty, fmt_price = fixed.qty, fixed.price

local H = {}

-- The end of a Polymarket cursor walk.
local END_CURSOR = "LTE="

-- Cursors are base64 of the decimal offset ("MA==" is 0), as Polymarket's are.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return B64:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
local function unb64(s)
  s = s:gsub("[^%w%+/=]", "")
  return (s:gsub(".", function(x)
    if x == "=" then return "" end
    local r, f = "", (B64:find(x, 1, true) - 1)
    for i = 6, 1, -1 do r = r .. (f % 2 ^ i - f % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end):gsub("%d%d%d?%d?%d?%d?%d?%d?", function(x)
    if #x ~= 8 then return "" end
    local c = 0
    for i = 1, 8 do c = c + (x:sub(i, i) == "1" and 2 ^ (8 - i) or 0) end
    return string.char(c)
  end))
end

local function cursor_offset(req)
  local c = q_str(req, "next_cursor") or q_str(req, "cursor")
  if not c or c == "" then return 0 end
  if c == END_CURSOR then return nil end
  local n = tonumber(unb64(c))
  if not n or n < 0 or math.type(n) ~= "integer" then
    errors.invalid({ "query", "next_cursor" }, "Invalid cursor", "value_error", c)
  end
  return n
end

local function ts_param(req, name)
  local v = q_str(req, name)
  if not v then return nil end
  local n = tonumber(v)
  if not n then errors.invalid({ "query", name }, "Input should be a unix timestamp", "int_parsing", v) end
  return n
end

-- {limit, count, next_cursor, data} over the matching rows (newest first).
local function envelope(req, rows)
  local limit = q_int(req, "limit", 100, 1, 500)
  local off = cursor_offset(req)
  local data = array()
  if off then
    for k = off + 1, math.min(#rows, off + limit) do data[#data + 1] = rows[k] end
  end
  local nxt = END_CURSOR
  if off and off + #data < #rows then nxt = b64(tostring(off + #data)) end
  return ok { limit = limit, count = #data, next_cursor = nxt, data = data }
end

local function match_market(req, m, idx)
  local market, asset = q_str(req, "market"), q_str(req, "asset_id")
  if market and m.condition_id ~= market then return false end
  if asset and m.outcomes[idx].token_id ~= asset then return false end
  return true
end

local function secs(us) return us // 1000000 end

local STATUS = { OPEN = "PENDING", LIVE = "PENDING", PENDING = "PENDING", FILLED = "FILLED",
  MATCHED = "FILLED", CANCELLED = "CANCELLED", CANCELED = "CANCELLED", EXPIRED = "EXPIRED" }

function H.data_orders(_, ctx, req)
  local id, st = q_str(req, "id"), q_str(req, "status")
  local want
  if st then
    want = STATUS[st:upper()]
    if not want then
      errors.invalid({ "query", "status" }, "Input should be 'OPEN', 'FILLED', 'CANCELLED' or 'EXPIRED'", "enum", st)
    end
  end
  local before, after = ts_param(req, "before"), ts_param(req, "after")
  local rows = array()
  local list = ctx.user.orders
  for k = #list, 1, -1 do
    local o = list[k]
    local v = orders.view(o)
    local t = secs(o.created_us or 0)
    if (not id or tostring(o.id) == id) and (not want or o.status == want)
      and match_market(req, o.market, o.idx)
      and (not before or t < before) and (not after or t > after) then
      v.market = o.market.condition_id
      v.asset_id = o.market.outcomes[o.idx].token_id
      v.original_size = fmt_qty(o.quantity)
      v.size_matched = fmt_qty(o.filled or 0)
      v.status = o.status == "PENDING" and "LIVE" or v.status
      rows[#rows + 1] = v
    end
  end
  return envelope(req, rows)
end

function H.data_trades(_, ctx, req)
  local before, after = ts_param(req, "before"), ts_param(req, "after")
  local rows = array()
  local list = ctx.user.trades
  for k = #list, 1, -1 do
    local t = list[k]
    local s = secs(t.us)
    if match_market(req, t.market, t.idx) and (not before or s < before) and (not after or s > after) then
      local v = accounts.trade_view(t)
      v.id = tostring(t.id)
      v.market = t.market.condition_id
      v.asset_id = t.market.outcomes[t.idx].token_id
      v.size = v.quantity
      v.status = "CONFIRMED"
      v.match_time = tostring(s)
      v.trader_side = t.maker and "MAKER" or "TAKER"
      v.taker_order_id = tostring(t.order_id)
      rows[#rows + 1] = v
    end
  end
  return envelope(req, rows)
end

-- ?market=<token id | condition id>&startTs=&endTs=&interval=&fidelity= (minutes).
local SPAN = { ["1m"] = 60, ["1h"] = 3600, ["6h"] = 21600, ["1d"] = 86400, ["1w"] = 7 * 86400 }
function H.prices_history(self, _, req, now)
  local tok = q_str(req, "market") or q_str(req, "token_id")
  if not tok then errors.invalid({ "query", "market" }, "Field required", "missing") end
  local m, idx = markets.resolve_token(self.U, tok)
  if not m then errors.fail(404, "TOKEN_NOT_FOUND", "No market has token_id " .. tok) end
  local interval = q_str(req, "interval")
  if interval and interval ~= "max" and not SPAN[interval] then
    errors.invalid({ "query", "interval" }, "Input should be '1m', '1h', '6h', '1d', '1w' or 'max'", "enum", interval)
  end
  local from, to = ts_param(req, "startTs"), ts_param(req, "endTs")
  if not from and interval and SPAN[interval] then from = now - SPAN[interval] end
  local step = (q_int(req, "fidelity", 1, 1, 1440)) * 60
  local ht = m.hist_t
  local hp = m.hist_p[(m.binary and 1) or idx]
  local invert = m.binary and idx == 2
  local out, last = array(), nil
  for k = 1, #ht do
    local t = ht[k]
    if (not from or t >= from) and (not to or t <= to) and (not last or t - last >= step) then
      local v = hp[k]
      if invert then v = fixed.P - v end
      out[#out + 1] = { t = t, p = tonumber(fmt_price(v)) }
      last = t
    end
  end
  return ok { history = out }
end

-- Wallets ---------------------------------------------------------------------------------
-- Rows carry id (the SDK addresses them by id); MAIN and API always exist, SANDBOX wallets are
-- created with POST (body {label, kind}), renamed with PATCH {label}, archived with DELETE
-- and reset to their starting balance with POST .../reset.

local KINDS = { SANDBOX = true, API = true, MAIN = true }

local function wallet_list(self, user, now)
  accounts.ensure_wallet(user, self.tiers, now)
  local w = user.wallet
  local list = user.wallets
  if not list then
    list = { { id = "main", wallet_type = "MAIN", label = "Main", cash = 1000 * fixed.M, starting = 1000 * fixed.M },
             { id = "api", wallet_type = "API", label = "API", api = true } }
    user.wallets, user.next_wallet = list, 1
  end
  local out = array()
  for _, r in ipairs(list) do
    if not r.archived then
      local cash = r.api and (w and w.cash or 0) or r.cash
      local start = r.api and (w and w.starting or 0) or r.starting
      out[#out + 1] = { id = r.id, wallet_id = r.id, wallet_type = r.wallet_type, kind = r.wallet_type,
        label = r.label, name = r.label, balance = fixed.money(cash), starting_balance = fixed.money(start),
        currency = "USD", created_at = r.created_at and util.iso(r.created_at) or null, archived = false }
    end
  end
  return out, list
end

local function find_wallet(self, user, now, id)
  local _, list = wallet_list(self, user, now)
  for _, r in ipairs(list) do
    if not r.archived and (r.id == id or r.wallet_type:lower() == id:lower()) then return r end
  end
  errors.fail(404, "WALLET_NOT_FOUND", "No wallet " .. id)
end

local function view_of(self, user, now, r)
  for _, v in ipairs((wallet_list(self, user, now))) do if v.id == r.id then return v end end
end

function H.wallets(self, ctx, req, now)
  local all = wallet_list(self, ctx.user, now)
  local limit, offset = q_int(req, "limit", 50, 1, 200), q_int(req, "offset", 0, 0)
  local out = array()
  for k = offset + 1, math.min(#all, offset + limit) do out[#out + 1] = all[k] end
  return ok(out)
end

function H.wallet(self, ctx, _, now, id)
  return ok(view_of(self, ctx.user, now, find_wallet(self, ctx.user, now, id)))
end

local function label_of(j, required)
  local l = type(j) == "table" and (j.label or j.name) or nil
  if l == nil and not required then return nil end
  if type(l) ~= "string" or l == "" or #l > 100 then
    errors.invalid({ "body", "label" }, "Input should be a non-empty string of at most 100 characters", "string_type")
  end
  return l
end

function H.wallet_create(self, ctx, req, now)
  local j = R.body_object(req)
  local label = label_of(j, true)
  local kind = j.kind == nil and "SANDBOX" or j.kind
  if kind ~= "SANDBOX" then
    errors.invalid({ "body", "kind" }, KINDS[kind] and "Only SANDBOX wallets can be created"
      or "Input should be 'SANDBOX'", "enum", kind)
  end
  local _, list = wallet_list(self, ctx.user, now)
  local user = ctx.user
  local start = self.tiers[user.plan].wallet * fixed.M
  local r = { id = "w" .. user.next_wallet, wallet_type = kind, label = label, cash = start, starting = start,
              created_at = now }
  user.next_wallet = user.next_wallet + 1
  list[#list + 1] = r
  return ok(view_of(self, user, now, r), 201)
end

function H.wallet_patch(self, ctx, req, now, id)
  local r = find_wallet(self, ctx.user, now, id)
  r.label = label_of(R.body_object(req), true)
  return ok(view_of(self, ctx.user, now, r))
end

function H.wallet_delete(self, ctx, _, now, id)
  local r = find_wallet(self, ctx.user, now, id)
  if r.wallet_type ~= "SANDBOX" then
    errors.fail(400, "WALLET_NOT_ARCHIVABLE", "Only SANDBOX wallets can be archived", { wallet_id = r.id })
  end
  local v = view_of(self, ctx.user, now, r)
  r.archived = true
  v.archived = true
  return ok(v)
end

function H.wallet_reset(self, ctx, _, now, id)
  local r = find_wallet(self, ctx.user, now, id)
  if r.api then
    return require("polysim.exchange.api.account").reset_balance(self, ctx, nil, now)
  end
  r.cash = r.starting
  return ok(view_of(self, ctx.user, now, r))
end

return H
