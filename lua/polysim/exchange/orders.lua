-- Orders of the local exchange: validation, matching against the synthetic books, resting
-- limit orders with reservations, expiry, cancels, batch, the CLOB-shaped endpoint and
-- idempotency. Semantics follow BRIEF.md "Order semantics":
--
--   market orders : `price` is a required worst-price limit (400 PRICE_REQUIRED); TIF FOK by
--                   default (GTC/GTD are overridden to FOK); FAK = IOC fills what it can.
--   limit orders  : GTC by default: the marketable part fills at once as taker, the rest
--                   rests (BUY reserves limit*qty cash, SELL reserves shares); FOK/IOC act at
--                   once; GTD (or any expiration) expires on tick; post_only never takes.
--   immediate orders that fill nothing: 409 LIMIT_PRICE_NOT_MET when liquidity existed only
--                   beyond the limit, else 409 FOK_ORDER_NOT_FILLED_ERROR; a FOK that cannot
--                   fill entirely answers the same way (nothing executes).
--   resting fills : on tick, when the effective book crosses the limit, at the limit price,
--                   for the crossing size (consumed from the book), maker, fee 0.
--   fees          : taker fills pay round_half_even_cents(rate * sum(q * p * (1 - p))).
--   selling more shares than held (minus shares reserved by resting SELLs): 400
--                   INSUFFICIENT_BALANCE with details.reason = "insufficient_shares".
--
-- This file is the module surface; the parts live in polysim.exchange.orders.*: parse
-- (validation, fingerprint), match (placing, resting, fills, cancels, matching on tick),
-- views (order views, listing, the CLOB answer) and idem (idempotency, memory bounds).
local parse = require "polysim.exchange.orders.parse"
local match = require "polysim.exchange.orders.match"
local views = require "polysim.exchange.orders.views"
local idem = require "polysim.exchange.orders.idem"

local _M = {}

_M.STATUSES = { PENDING = true, FILLED = true, CANCELLED = true, EXPIRED = true }

_M.parse, _M.fingerprint = parse.parse, parse.fingerprint
_M.new, _M.stamp, _M.not_yet_visible, _M.place = match.new, match.stamp, match.not_yet_visible, match.place
_M.cancel, _M.match = match.cancel, match.match
_M.view, _M.response, _M.open_orders, _M.list = views.view, views.response, views.open_orders, views.list
_M.clob_response = views.clob_response
_M.IDEM_WINDOW, _M.IDEM_MAX, _M.KEEP_FINISHED = idem.IDEM_WINDOW, idem.IDEM_MAX, idem.KEEP_FINISHED
_M.idem_get, _M.idem_put, _M.idem_count = idem.idem_get, idem.idem_put, idem.idem_count
_M.compact, _M.submit = idem.compact, idem.submit

return _M
