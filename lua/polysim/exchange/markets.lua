-- The market universe of the local exchange: seeded synthetic markets (or a --markets data
-- file), prices that random-walk on tick, books rebuilt around the price, minute price
-- history for candles, events and the short-horizon crypto up/down windows.
--
-- A market (internal):
--   condition_id, slug, question, category, fee_bps, tick (price units), depth
--   outcomes[i] = { label, token_id, price (1e-4), bids = {{p,q}...}, asks = {{p,q}...} }
--   binary (two outcomes, complement merge), active, closed, resolved_outcome (label|nil),
--   end_date (unix s), is_hot, volume (money units), event_id, event_title, image_url,
--   frozen (no walk, no book rebuild), vol (move chance per step, percent),
--   hist_t / hist_p[i] (minute samples), updated_us, updown ({asset, interval, start}|nil)
--
-- The --markets file (decoded JSON; every field optional unless marked):
--   {
--     "generate": 0,                 -- also add N seeded synthetic markets (default 0)
--     "categories": {"politics": "0.04", ...},   -- taker fee rate per category
--     "markets": [ {
--         "question": "Will ...?",   -- required
--         "condition_id": "0x<64 hex>", "slug": "...", "category": "politics",
--         "fee_rate": "0.04",        -- overrides the category's rate
--         "outcomes": ["Yes","No"] or [{"label":"Yes","token_id":"...","price":"0.65"}, ...],
--         "prices": ["0.65","0.35"], -- parallel to outcomes
--         "tick_size": "0.01", "end_date": "2026-12-31T00:00:00Z" (or unix seconds),
--         "active": true, "closed": false, "resolved_outcome": null, "is_hot": false,
--         "event_id": "...", "event_title": "...", "image_url": "...", "volume": "1234.56",
--         "frozen": false,           -- default true when "books" are given
--         "books": {"Yes": {"bids": [["0.64","100"], {"price":"0.63","size":"50"}],
--                           "asks": [["0.66","80"]]}, "No": {...}}   -- keyed by label or token id;
--                           -- outcomes left out have empty books; given books never change on
--                           -- tick (the market is frozen unless "frozen": false)
--     } ],
--     "books": {"<token_id>": {"bids": [...], "asks": [...]}}   -- same, keyed by token id
--   }
--
-- This file is the module surface; the parts live in polysim.exchange.markets.*: base (the
-- record, registration, books, samples, lookups), text (synthetic questions), universe
-- (synthetic and file markets, events), walk (the price walk), views (API tables, candles)
-- and updown (window markets).
local base = require "polysim.exchange.markets.base"
local universe = require "polysim.exchange.markets.universe"
local walk = require "polysim.exchange.markets.walk"
local views = require "polysim.exchange.markets.views"
local updown = require "polysim.exchange.markets.updown"

local _M = {}

_M.CATEGORIES, _M.parse_time = base.CATEGORIES, base.parse_time
_M.rebuild_book, _M.rebuild_books, _M.sample = base.rebuild_book, base.rebuild_books, base.sample
_M.state, _M.outcome_index, _M.resolve_token = base.state, base.outcome_index, base.resolve_token
_M.new = universe.new
_M.resolve_updown, _M.walk, _M.set_price = walk.resolve_updown, walk.walk, walk.set_price
_M.live_price, _M.summary, _M.detail, _M.ws_price = views.live_price, views.summary, views.detail, views.ws_price
_M.detail_json = views.detail_json
_M.INTERVALS, _M.candles = views.INTERVALS, views.candles
_M.UPDOWN_ASSETS, _M.UPDOWN_INTERVALS = updown.UPDOWN_ASSETS, updown.UPDOWN_INTERVALS
_M.updown_market, _M.updown_view = updown.updown_market, updown.updown_view

return _M
