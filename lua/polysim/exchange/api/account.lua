-- Handlers: balance, positions, portfolio, history, equity, CSV export, /v1/me, wallets.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local fixed = require "polysim.exchange.fixed"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"
local R = require "polysim.exchange.request"

local array, null = util.array, util.null
local q_str, q_int, q_enum = R.q_str, R.q_int, R.q_enum
local ok = R.ok
local SIDES = { BUY = true, SELL = true }

local H = {}

function H.balance(self, ctx, _, now)
  accounts.ensure_wallet(ctx.user, self.tiers, now)
  return ok(accounts.balance_view(ctx.user))
end

local POS_STATUS = { OPEN = true, CLOSED = true }

function H.positions(_, ctx, req)
  return ok(accounts.positions_view(ctx.user, q_enum(req, "status", POS_STATUS, true)))
end

function H.portfolio(self, ctx, _, now)
  accounts.ensure_wallet(ctx.user, self.tiers, now)
  return ok(accounts.portfolio_view(ctx.user))
end

function H.history(_, ctx, req)
  return ok(accounts.history_view(ctx.user, {
    market_id = q_str(req, "market_id"), side = q_enum(req, "side", SIDES, true),
    limit = q_int(req, "limit", 50, 1, 200), offset = q_int(req, "offset", 0, 0) }))
end

function H.equity(self, ctx, req, now)
  local days = q_int(req, "days", 7, 1, 90)
  local limit = q_int(req, "limit", nil, 1, 10000)
  accounts.ensure_wallet(ctx.user, self.tiers, now)
  local pts = accounts.equity_view(ctx.user, days, now)
  if limit and #pts > limit then           -- the newest `limit` points
    local out = array()
    table.move(pts, #pts - limit + 1, #pts, 1, out)
    pts = out
  end
  return ok(pts)
end

function H.reset_balance(self, ctx, _, now)
  local user = ctx.user
  local w = accounts.ensure_wallet(user, self.tiers, now)
  if not w then
    errors.fail(403, "TIER_REQUIRES_UPGRADE", "The free tier has no API wallet", { tier = user.plan })
  end
  for _, o in ipairs(orders.open_orders(user)) do orders.cancel(self, o, now, "CANCELLED") end
  user.positions, user.pos_list = {}, {}
  local base = self.tiers[user.plan].wallet * fixed.M
  w.cash, w.reserved, w.starting, w.fees, w.realized = base, 0, base, 0, 0
  accounts.snapshot(user, now)
  local b = accounts.balance_view(user)
  b.message = "API wallet reset"
  return ok(b)
end

function H.export_csv(_, ctx, req)
  return { status = 200, body = accounts.trades_csv(ctx.user, q_str(req, "market_id")), content_type = "text/csv",
           headers = { ["Content-Disposition"] = 'attachment; filename="trades.csv"' } }
end

local function me_view(self, user, now)
  accounts.ensure_wallet(user, self.tiers, now)
  local w = user.wallet
  return {
    id = user.uuid, user_id = user.id, email = user.email, tier = user.plan, plan = user.plan,
    created_at = util.iso(user.created_at), api_keys = keys.active_count(user),
    -- the API wallet's cash (polysim_sdk scripts/01_balance_and_market.py prints me.balance)
    balance = w and fixed.money(w.cash) or "0.00",
    api_wallet = w and { balance = fixed.money(w.cash), starting_balance = fixed.money(w.starting) } or null,
  }
end

function H.me(self, ctx, _, now) return ok(me_view(self, ctx.user, now)) end

function H.entitlements(self, ctx)
  local t = self.tiers[ctx.user.plan]
  return ok {
    tier = ctx.user.plan, plan = ctx.user.plan, api_access = self.closed_beta == false,
    can_trade = ctx.user.plan ~= "free", max_api_keys = keys.MAX_ACTIVE_KEYS,
    rate_limits = keys.tier_info(t), max_ws_connections = t.ws, max_batch_size = t.batch,
    api_wallet_starting_balance = string.format("%d.00", t.wallet),
    features = array { "rest", "websocket", "paper_trading" },
  }
end

-- The wallets family lives in api/data.lua.

return H
