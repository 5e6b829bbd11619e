-- Handlers: orders (single, CLOB drop-in, batch), order lookup and cancels.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local fixed = require "polysim.exchange.fixed"
local orders = require "polysim.exchange.orders"
local R = require "polysim.exchange.request"

local array, null, opt = util.array, util.null, util.opt
local q_str, q_int, q_enum = R.q_str, R.q_int, R.q_enum
local body_object, body_list, path_int, ok = R.body_object, R.body_list, R.path_int, R.ok
local market_or_404, outcome_or_fail, idem_header = R.market_or_404, R.outcome_or_fail, R.idem_header

local H = {}

function H.orders_post(self, ctx, req, now)
  local j = body_object(req)
  local s, err = orders.parse(j, now, self.U, false)
  if not s then return err end
  return orders.submit(self, ctx, s, idem_header(req), now)
end

function H.clob_order(self, ctx, req, now)
  local j = body_object(req)
  local s, err = orders.parse(j, now, self.U, true)
  if not s then return orders.clob_response(err) end
  return orders.clob_response(orders.submit(self, ctx, s, idem_header(req), now))
end

local function batch_failure(resp, index, s)
  local b = type(resp.body) == "table" and resp.body or {}
  local code = (resp.headers and resp.headers["X-Polysim-Code"]) or b.error or ("HTTP_" .. resp.status)
  return {
    index = index, status = resp.status >= 500 and "ERROR" or "REJECTED", error = code,
    message = b.message or (type(b.detail) == "string" and b.detail) or code, http_status = resp.status,
    details = b.details or (type(b.detail) == "table" and { detail = b.detail }) or nil,
    client_order_id = opt(s and s.client_order_id),
  }
end

function H.orders_batch(self, ctx, req, now)
  local j = body_object(req)
  local list = body_list(j, "orders")
  local max = ctx.tier.batch
  if #list < 1 then errors.invalid({ "body", "orders" }, "List should have at least 1 item after validation, not 0",
      "too_short") end
  if #list > max then
    errors.invalid({ "body", "orders" },
        ("List should have at most %d items after validation, not %d (tier %s)"):format(max, #list, ctx.tier.name),
            "too_long")
  end
  local hkey = idem_header(req)
  local fp
  if hkey then
    local parts = {}
    for i, oj in ipairs(list) do
      local s = type(oj) == "table" and orders.parse(oj, now, self.U, false)
      parts[i] = s and orders.fingerprint(s) or "?"
    end
    fp = "batch|" .. table.concat(parts, "\n")
    local rec = orders.idem_get(self, ctx.user, "b:" .. hkey, now)
    if rec then
      if rec.fp == fp then
        return { status = 200, body = rec.body, headers = { ["Idempotent-Replayed"] = "true" } }
      end
      return errors.api(409, "IDEMPOTENCY_CONFLICT", "This idempotency key was already used with different parameters",
        { idempotency_key = hkey })
    end
  end
  local results, succeeded, failed = array(), 0, 0
  for i, oj in ipairs(list) do
    local s, err = orders.parse(oj, now, self.U, false)
    local res
    if not s then
      local coid = type(oj) == "table" and oj.client_order_id
      res = batch_failure(err, i - 1, { client_order_id = type(coid) == "string" and coid or nil })
    else
      local okp, resp = pcall(orders.submit, self, ctx, s, nil, now)
      if not okp then
        if errors.is_thrown(resp) then resp = resp.resp
        else self.last_error = tostring(resp); resp = errors.internal() end
      end
      if resp.status == 200 then res = resp.body else res = batch_failure(resp, i - 1, s) end
    end
    if res.error then failed = failed + 1 else succeeded = succeeded + 1 end
    results[i] = res
  end
  local body = { results = results, succeeded = succeeded, failed = failed, total = #list }
  if hkey then orders.idem_put(self, ctx.user, "b:" .. hkey, { fp = fp, body = body }, now) end
  return ok(body)
end

-- OPEN is the live service's name for PENDING (polysim_sdk/client.py data_orders status).
local ORDER_STATUS = { PENDING = true, OPEN = true, FILLED = true, CANCELLED = true, EXPIRED = true }
local SIDES = { BUY = true, SELL = true }

function H.orders_list(_, ctx, req)
  local f = {
    status = (function(st) return st == "OPEN" and "PENDING" or st end)(q_enum(req, "status", ORDER_STATUS, true)),
    market_id = q_str(req, "market_id"),
    side = q_enum(req, "side", SIDES, true),
    limit = q_int(req, "limit", 50, 1, 200),
    offset = q_int(req, "offset", 0, 0),
    cursor = q_str(req, "cursor"),
  }
  if f.cursor and not f.cursor:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%dZ+:%-]*$") then
    errors.invalid({ "query", "cursor" }, "Invalid cursor: expected the ISO-8601 created_at of the last order seen",
      "value_error", f.cursor)
  end
  return ok(orders.list(ctx.user, f))
end

local function own_order(self, ctx, id)
  local o = self.O.by_id[path_int(id, "order_id")]
  if not o or o.user ~= ctx.user then errors.fail(404, "ORDER_NOT_FOUND", "Order not found: " .. id) end
  return o
end

function H.order_get(self, ctx, _, _, id)
  local o = own_order(self, ctx, id)
  return ok(orders.response(o, ctx.user.wallet, o.pos))
end

function H.order_delete(self, ctx, _, now, id)
  local o = own_order(self, ctx, id)
  if o.status ~= "PENDING" then
    errors.fail(400, "CANNOT_CANCEL", "Only PENDING orders can be cancelled; this one is " .. o.status,
      { order_id = o.id, status = o.status })
  end
  orders.cancel(self, o, now, "CANCELLED")
  return ok(orders.response(o, ctx.user.wallet, o.pos))
end

local function cancel_where(self, ctx, now, pred)
  local ids = array()
  for _, o in ipairs(orders.open_orders(ctx.user)) do
    if pred(o) then
      orders.cancel(self, o, now, "CANCELLED")
      ids[#ids + 1] = o.id
    end
  end
  -- canceled / not_canceled {order_id: reason} as the live service answers
  -- (polysim_clob_client/client.py cancel_all / cancel_market_orders).
  return ok { canceled = ids, cancelled_count = #ids, not_canceled = {},
              account_balance = ctx.user.wallet and fixed.money(ctx.user.wallet.cash) or null }
end

-- The footgun guard of polysim_sdk/client.py cancel_all: ?confirm=true or
-- X-Confirm-Cancel-All: true, else 400.
function H.cancel_all(self, ctx, req, now)
  local hv = req.headers and req.headers["x-confirm-cancel-all"]
  if q_str(req, "confirm") ~= "true" and not (hv and hv:lower() == "true") then
    errors.fail(400, "CONFIRMATION_REQUIRED",
      "cancel-all cancels every open order: send ?confirm=true or X-Confirm-Cancel-All: true")
  end
  return cancel_where(self, ctx, now, function() return true end)
end

function H.cancel_market(self, ctx, req, now)
  local cid = q_str(req, "market") or q_str(req, "market_id")
  if not cid then errors.invalid({ "query", "market" }, "Field required", "missing") end
  local m = market_or_404(self, cid, now)
  local idx
  local oc = q_str(req, "outcome") or q_str(req, "asset_id")
  if oc then idx = outcome_or_fail(m, oc) end
  return cancel_where(self, ctx, now, function(o) return o.market == m and (not idx or o.idx == idx) end)
end

return H
