-- Up/Down window markets of the local exchange: created on first use, deterministic from
-- the seed and the window, and their view.
local fixed = require "polysim.exchange.fixed"
local rngm = require "polysim.exchange.rng"
local util = require "polysim.exchange.util"
local sha256 = require "polysim.exchange.sha256"
local base = require "polysim.exchange.markets.base"
local walk = require "polysim.exchange.markets.walk"
local views = require "polysim.exchange.markets.views"

local _M = {}

local opt = util.opt
local fmt_price = fixed.price
local DAY = base.DAY
local FEE_BY_CATEGORY = base.FEE_BY_CATEGORY
local slugify, token_id, register, new_market = base.slugify, base.token_id, base.register, base.new_market
local sample = base.sample

_M.UPDOWN_ASSETS = { { "BTC", "Bitcoin" }, { "ETH", "Ethereum" }, { "SOL", "Solana" }, { "XRP", "XRP" } }
_M.UPDOWN_INTERVALS = { { "5M", 300 }, { "15M", 900 }, { "1H", 3600 }, { "4H", 14400 }, { "daily", DAY } }

--- updown_market(U, asset, name, interval, len, start, now): the window market, created on
--- first use (deterministic from the seed and the window).
function _M.updown_market(U, asset, name, interval, len, start, now)
  local key = U.seed .. "|updown|" .. asset .. "|" .. interval .. "|" .. start
  -- a backtest names its windows and their tokens as the recording does (U.window_ids,
  -- U.window_tokens: polysim.backtest.updown)
  local own = "0x" .. sha256.hex(key)
  local cid = U.window_ids and U.window_ids[asset .. "|" .. interval .. "|" .. start] or own
  local m = U.by_id[cid]
  if m then return m end
  local toks = U.window_tokens and U.window_tokens[cid] or {}
  m = cid ~= own and U.by_id[own]
  if m then
    -- asked for (listed ahead of its open) before its record came: it takes the recorded names
    U.by_id[own], U.by_id[cid], m.condition_id = nil, m, cid
    for i, o in ipairs(m.outcomes) do
      if toks[i] then U.by_token[o.token_id], o.token_id, U.by_token[toks[i]] = nil, toks[i], { m, i } end
    end
    return m
  end
  local r = rngm.new(key)
  local q = ("%s Up or Down - %s window %s"):format(name, interval,
    os.date("!%Y-%m-%d %H:%M UTC", start))
  m = new_market {
    condition_id = cid, slug = slugify(("%s-updown-%s-%d"):format(asset, interval, start)),
    question = q, category = "crypto", fee_bps = FEE_BY_CATEGORY.crypto, tick = 100,
    outcomes = {
      { label = "Up", token_id = token_id(r), price = 5000, bids = {}, asks = {} },
      { label = "Down", token_id = token_id(r), price = 5000, bids = {}, asks = {} },
    },
    end_date = start + len, is_hot = true, volume = r:range(100, 50000) * fixed.M,
    vol = U.spot and 0 or 40, updated_us = util.to_us(now), created_at = start - len,
    updown = { asset = asset, interval = interval, start = start, len = len, U = U,
               resolver = U.window_resolver },
  }
  m.rng = r
  -- the seeded ids are drawn all the same, so that the window's stream stays as it was
  for i, o in ipairs(m.outcomes) do if toks[i] then o.token_id = toks[i] end end
  base.rebuild_books(m, r)
  sample(m, now)
  register(U, m)
  if now >= start + len then walk.resolve_updown(m, U) end
  return m
end

--- updown_view(m, now): summary plus the window fields.
function _M.updown_view(m, now)
  local s = views.summary(m, now)
  local w = m.updown
  s.asset, s.interval = w.asset, w.interval
  s.window_start, s.window_end = util.iso(w.start), util.iso(w.start + w.len)
  s.up_price = fmt_price(m.outcomes[1].price)
  s.down_price = fmt_price(m.outcomes[2].price)
  if now >= w.start + w.len and not m.resolved_outcome then walk.resolve_updown(m, w.U) end
  s.resolved_outcome = opt(m.resolved_outcome)
  return s
end

return _M
