-- Handlers: market data (markets, detail by id/slug/token, books, candles, batch prices, events).
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local fixed = require "polysim.exchange.fixed"
local markets = require "polysim.exchange.markets"
local book = require "polysim.exchange.book"
local orders = require "polysim.exchange.orders"
local R = require "polysim.exchange.request"

local array, null = util.array, util.null
local q_str, q_int, q_bool = R.q_str, R.q_int, R.q_bool
local body_object, body_list, ok = R.body_object, R.body_list, R.ok
local market_or_404, outcome_or_fail = R.market_or_404, R.outcome_or_fail

local H = {}

function H.markets(self, _, req, now)
  local limit = q_int(req, "limit", 50, 1, 500)
  local offset = q_int(req, "offset", 0, 0)
  local hot = q_bool(req, "hot_only", false)
  local active = q_bool(req, "active_only", true)
  local search = q_str(req, "search") or q_str(req, "q")
  local category = q_str(req, "category")
  -- closed=true lists only closed markets, closed=false only open ones (and lifts active_only).
  local closed = q_str(req, "closed") and q_bool(req, "closed", false)
  if closed ~= nil then active = false end
  search = search and search:lower()
  local out, skipped = array(), 0
  for _, m in ipairs(self.U.list) do
    local open = markets.state(m, now) == "open"
    if (not hot or m.is_hot) and (not active or open) and (closed == nil or closed ~= open)
      and (not category or m.category == category)
      and (not search or m.question:lower():find(search, 1, true) or m.slug:find(search, 1, true)
           or m.category == search) then
      if skipped < offset then skipped = skipped + 1
      else
        out[#out + 1] = markets.summary(m, now)
        if #out >= limit then break end
      end
    end
  end
  return ok(out)
end

-- text: the caller only passes the body on, so the front door (req.text_ok) may have the
-- kept JSON text instead of a table (markets.detail_json).
local function detail(_, m, req, now, text)
  local nf = orders.not_yet_visible(m, now)
  if nf then return nf end
  local with_book = q_bool(req, "include_book", false)
  if text and req.text_ok and not with_book then
    local json = markets.detail_json(m, now)
    if json then return { status = 200, encoded = json } end
  end
  local d = markets.detail(m, now)
  if with_book then
    d.book = book.snapshot(m, 1, 10, false, now)
  end
  return ok(d)
end

function H.market(self, _, req, now, cid) return detail(self, market_or_404(self, cid, now), req, now, true) end

function H.market_by_slug(self, _, req, now, slug)
  local m = self.U.by_slug[slug]
  if not m then errors.fail(404, "MARKET_NOT_FOUND", "No market with slug " .. slug) end
  return detail(self, m, req, now, true)
end

-- {condition_id, primary_token_id, outcome} (polysim_sdk/client.py get_market_by_token), with
-- the market's detail alongside; an unknown token is 404 TOKEN_NOT_FOUND.
function H.market_by_token(self, _, req, now, tok)
  local m, idx = markets.resolve_token(self.U, tok)
  if not m then errors.fail(404, "TOKEN_NOT_FOUND", "No market has token_id " .. tok) end
  local r = detail(self, m, req, now)
  if r.status == 200 then
    r.body.primary_token_id = m.outcomes[1].token_id
    r.body.token_id = m.outcomes[idx].token_id
    r.body.outcome = m.outcomes[idx].label
  end
  return r
end

function H.book(self, _, req, now, cid)
  local m = market_or_404(self, cid, now)
  local idx = outcome_or_fail(m, q_str(req, "outcome"))
  local depth = q_int(req, "depth", 10, 1, 50)
  return ok(book.snapshot(m, idx, depth, q_bool(req, "raw", false), now))
end

-- token_id may be an outcome token, a condition id or "condition_id:NO"
-- (polysim_clob_client/client.py _book_for_token).
function H.book_by_token(self, _, req, now)
  local tok = q_str(req, "token_id")
  if not tok then errors.invalid({ "query", "token_id" }, "Field required", "missing") end
  local m, idx = markets.resolve_token(self.U, tok)
  if not m then errors.fail(404, "MARKET_NOT_FOUND", "No market has token_id " .. tok) end
  local nf = orders.not_yet_visible(m, now)
  if nf then return nf end
  local depth = q_int(req, "depth", 10, 1, 50)
  return ok(book.snapshot(m, idx, depth, q_bool(req, "raw", false), now))
end

function H.candles(self, _, req, now, cid)
  local m = market_or_404(self, cid, now)
  local idx = outcome_or_fail(m, q_str(req, "outcome"))
  local interval = q_str(req, "interval") or "1h"
  local out = markets.candles(m, idx, interval, now)
  if not out then
    errors.invalid({ "query", "interval" }, "Input should be '1h', '6h', '1d', '1w' or 'max'", "enum", interval)
  end
  return ok(out)
end

function H.prices_batch(self, ctx, req)
  local j = body_object(req)
  local ids = body_list(j, "market_ids")
  local max = math.min(50, ctx.tier.batch)
  if #ids < 1 then errors.invalid({ "body", "market_ids" },
      "List should have at least 1 item after validation, not 0", "too_short") end
  if #ids > max then
    errors.invalid({ "body", "market_ids" },
        ("List should have at most %d items after validation, not %d"):format(max, #ids), "too_long")
  end
  local out = array()
  for i, id in ipairs(ids) do
    if type(id) ~= "string" then
      errors.invalid({ "body", "market_ids", i - 1 }, "Input should be a valid string", "string_type", id)
    end
    local m = self.U.by_id[id]
    if m and not m.resolved_outcome then
      local lp = markets.live_price(m)
      out[i] = { condition_id = id, buy = lp.buy, sell = lp.sell, outcomes = lp.outcomes,
                 source = lp.source, updated_at = lp.updated_at }
    else
      out[i] = { condition_id = util.clean_utf8(id) }
    end
  end
  return ok(out)
end

function H.events(self, _, req, now)
  local limit = q_int(req, "limit", 20, 1, 100)
  local offset = q_int(req, "offset", 0, 0)
  local out = array()
  for k = offset + 1, math.min(#self.U.events, offset + limit) do
    local ev = self.U.events[k]
    local ms, vol, open, last_end = array(), 0, false, nil
    for i, m in ipairs(ev.markets) do
      ms[i] = markets.summary(m, now)
      vol = vol + m.volume
      if markets.state(m, now) == "open" then open = true end
      if m.end_date and (not last_end or m.end_date > last_end) then last_end = m.end_date end
    end
    out[#out + 1] = {
      id = ev.id, event_group_id = ev.id, title = ev.title, slug = (ev.title:lower():gsub("[^%w]+", "-")),
      category = ev.category, markets = ms, market_count = #ms, volume = fixed.money(vol),
      active = open, closed = not open, end_date = last_end and util.iso(last_end) or null,
    }
  end
  return ok(out)
end

return H
