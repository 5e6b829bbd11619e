-- polysim.exchange: the logic of a PolySimulator-compatible exchange that runs offline.
-- Pure Lua. The HTTP front door and JSON codec live elsewhere: handle() takes an already
-- parsed request and returns a response table.
--
--   local exchange = require "polysim.exchange"
--   local ex = assert(exchange.new{
--     seed = 1,            -- same seed: same universe, same price paths
--     markets = nil,       -- decoded --markets file (shape: see markets.lua header)
--     api_key = nil,       -- a ps_live_ key to register as the ready pro key
--     clock = nil,         -- function returning seconds (float); default os.time
--     tiers = nil,         -- per-tier overrides {pro = {per_second=3, per_minute=10, batch=20, ws=10}}
--     ws_token_ttl = 60, max_body = 1 << 20,
--     closed_beta = false, -- or "CLOSED_BETA" / "API_PRO_COMING_SOON": key issuance gated
--     bootstrap_plan = "pro",  -- plan of the bootstrap user
--   })
--   ex.api_key, ex.bootstrap_token, ex.user_token (dashboard JWT of the api_key's owner),
--   ex.user_id (owner of api_key)
--   ex:handle{method, path, query, headers (lowercased names), body, json, json_error}
--     -> {status, headers, body (table to encode, or string), content_type?, drop?, delay?}
--   ex:tick(dt)  ex:on("price"|"fill", fn)  ex:off(event, fn)  ex:ws_authorize(token, channel)
--   ex:price_message(market_id) -> the WS price message now (snapshot on subscribe) or nil
--   ex.ws_connections: the WebSocket glue may keep a count here; GET /v1/status reports it
--
-- new() returns nil, message when the markets data is invalid; it raises on option misuse.
--
-- Choices where BRIEF.md leaves room (clients may rely on these):
--   * Money is exact: prices/quantities at 1e-4, money at 1e-8 (balances print with at least
--     2 decimals: "9993.41", "9.99999"); taker fee = round_half_even_cents(rate*sum(q*p*(1-p))).
--   * Order responses: `quantity` is the filled quantity once FILLED (a FAK that filled 5 of 8
--     is FILLED with quantity "5", requested_quantity "8"), else the order's quantity;
--     `price` is the VWAP of fills, or the limit price before any fill. GTC limits take what
--     crosses at once (taker) and rest the rest; resting orders fill on tick at their limit
--     price (maker, fee 0) for as much as the effective book crosses.
--   * GET .../book and /v1/book return the effective book (own levels merged with the binary
--     complement, the book orders walk); `raw=true` gives the token's own levels.
--   * Codes beyond BRIEF's table: 400 INVALID_OUTCOME, 400 POST_ONLY_WOULD_CROSS,
--     400 KEYS_ALREADY_EXIST (bootstrap), 400 MAX_KEYS_REACHED, 400 INVALID_TIER,
--     400 INVALID_PERMISSION, 404 KEY_NOT_FOUND, 404 WALLET_NOT_FOUND, 413 PAYLOAD_TOO_LARGE,
--     422 VALIDATION_ERROR (other 422s carry INVALID_PRICE / INVALID_QUANTITY).
--   * Selling more shares than held (minus shares reserved by resting SELLs): 400
--     INSUFFICIENT_BALANCE, details.reason = "insufficient_shares". Keys without `trade`
--     (free keys included) get 403 INSUFFICIENT_PERMISSION on trading routes.
--   * A Bearer JWT on the trade surface: 401 INVALID_API_KEY. Bootstrap without or with a bad
--     JWT: 401 {detail = "..."} with X-Polysim-Code HTTP_401 (FastAPI's HTTPException shape), as are
--     unknown routes (404 {detail = "Not Found"}) and wrong methods (405).
--   * Rate-limit headers describe the per-minute window: X-RateLimit-Limit = requests per
--     minute, -Remaining = left in the sliding minute, -Reset = seconds until the oldest
--     counted request leaves it; 429 carries Retry-After (integer seconds >= 1).
--   * Idempotency: a repeated key with the same parameters replays the first answer (also
--     4xx ones) with header Idempotent-Replayed: true; keys are per user; the header wins over
--     client_order_id. A batch may carry its own Idempotency-Key.
--   * An incoming x-request-id (letters, digits, - _ . : up to 128) is echoed; else a UUID.
--
-- Test hooks (all return nil, message on bad input):
--   ex:set_book(market_id, outcome, {bids={{"0.64","100"},...}, asks={...}}, {keep_complement=bool})
--       sets the token's book exactly and pins it (tick never rebuilds it; prices stay);
--       in binary markets the complement token's book is emptied unless keep_complement,
--       so the given levels are exactly what can be traded. The outcome price becomes the mid.
--   ex:set_price(market_id, [outcome,] "0.65")  sets a price, unpins, rebuilds books around it
--   ex:set_market(market_id, {closed=, active=, resolved_outcome=, end_date=, is_hot=,
--       frozen=, fee_rate="0.04", new_for=30})
--       new_for: the market answers 404 MARKET_NOT_FOUND (details.reason =
--       "market_not_yet_available", details.retry_after) on detail/book/candles/orders for that
--       many seconds, like a brand-new market on the real service
--   ex:pick_market{category=, binary=true|false, state="open", fee_rate=, hot=} -> condition_id
--   ex:market(market_id) -> the internal market table (read only)
--   ex:add_user{plan="pro", email=} -> {user_id, jwt}
--   ex:add_key{user_id=, tier=, permissions=, name=, raw=} -> raw key (no beta/plan gates)
--   ex:set_balance(user_id_or_raw_key, "123.45")  sets the API wallet's cash and starting balance
--   ex:restrict_key(raw_key, true)    -> 403 ACCESS_RESTRICTED on every use
--   ex:expire_jwt(jwt)                -> 401 on bootstrap/dashboard
--   ex:set_closed_beta(false | "CLOSED_BETA" | "API_PRO_COMING_SOON")
--   ex:check_invariants() -> true | false, message  (wallets reconcile, books sorted, ...)
--   ex:match()  runs expiry and resting fills without moving prices (tick(0) does the same)
--
-- Fault injection (ex:inject(fault), ex:clear_faults()): a fault applies to the next
-- `times` (default 1) requests matching `path` (exact; or `path_pattern`, a Lua pattern) and
-- `method` (both optional):
--   {status = 503[, code=, message=]}        error response, nothing processed
--   {status = 429, retry_after = 1}          RATE_LIMITED with Retry-After
--   {raw = {status=502, body="error code: 1020", content_type="text/plain", headers={}}}
--   {body = "not json", status = 500}        the body string as is (content type JSON)
--   {header_code = "X", body_error = "Y"[, status = 400]}   header and body codes differ
--   {drop_after_processing = true}           processed fully, then resp.drop = true
--   {delay = seconds}                        processed, resp.delay = seconds
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local fixed = require "polysim.exchange.fixed"
local rngm = require "polysim.exchange.rng"
local markets = require "polysim.exchange.markets"
local book = require "polysim.exchange.book"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"

local _M = { _VERSION = "0.1.0" }

local array, null, opt, absent = util.array, util.null, util.opt, util.absent
local item = errors.item
local floor = math.floor

local methods = {}
local mt = { __name = "polysim.exchange", __index = methods,
             __tostring = function(self) return "polysim.exchange (seed " .. tostring(self.seed) .. ")" end }

-- Request helpers ------------------------------------------------------------------------------

local function q_str(req, name)
  local v = req.query[name]
  if v == nil or v == "" then return nil end
  return v
end

local function q_int(req, name, default, lo, hi)
  local v = q_str(req, name)
  if v == nil then return default end
  local n = v:match("^%s*([+-]?%d+)%s*$")
  n = n and math.tointeger(tonumber(n))
  if not n then
    errors.invalid({ "query", name }, "Input should be a valid integer, unable to parse string as an integer",
        "int_parsing", v)
  end
  if lo and n < lo then
    errors.invalid({ "query", name }, "Input should be greater than or equal to " .. lo, "greater_than_equal", v)
  end
  if hi and n > hi then
    errors.invalid({ "query", name }, "Input should be less than or equal to " .. hi, "less_than_equal", v)
  end
  return n
end

local TRUE = { ["true"] = true, ["1"] = true, yes = true, on = true, t = true, y = true }
local FALSE = { ["false"] = true, ["0"] = true, no = true, off = true, f = true, n = true }

local function q_bool(req, name, default)
  local v = q_str(req, name)
  if v == nil then return default end
  local l = v:lower()
  if TRUE[l] then return true end
  if FALSE[l] then return false end
  errors.invalid({ "query", name }, "Input should be a valid boolean, unable to interpret input", "bool_parsing", v)
end

local function q_enum(req, name, allowed, upper)
  local v = q_str(req, name)
  if v == nil then return nil end
  local k = upper and v:upper() or v
  if not allowed[k] then
    local list = {}
    for a in pairs(allowed) do list[#list + 1] = "'" .. a .. "'" end
    table.sort(list)
    errors.invalid({ "query", name }, "Input should be " .. table.concat(list, ", "), "enum", v)
  end
  return k
end

-- The JSON body of a request: an object, or a thrown 422.
local function body_object(req, optional)
  if req.json_error then
    errors.invalid({ "body", 0 }, "JSON decode error: " .. tostring(req.json_error), "json_invalid")
  end
  local j = req.json
  if absent(j) then
    if optional then return {} end
    errors.invalid({ "body" }, "Field required", "missing")
  end
  if type(j) ~= "table" or util.is_array(j) or (j[1] ~= nil) then
    errors.invalid({ "body" }, "Input should be a valid dictionary or object", "model_attributes_type")
  end
  return j
end

-- The required list field `name` of a JSON body object (422 when missing or not a list).
local function body_list(j, name)
  local v = j[name]
  if absent(v) then errors.invalid({ "body", name }, "Field required", "missing") end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    errors.invalid({ "body", name }, "Input should be a valid list", "list_type")
  end
  return v
end

local function path_int(v, name)
  local n = type(v) == "string" and v:match("^%d+$") and math.tointeger(tonumber(v))
  if not n then
    errors.invalid({ "path", name }, "Input should be a valid integer, unable to parse string as an integer",
        "int_parsing", v)
  end
  return n
end

local function ok(body, status) return { status = status or 200, body = body } end

local function market_or_404(self, cid, now)
  local m = self.U.by_id[cid]
  if not m then errors.fail(404, "MARKET_NOT_FOUND", "Market not found: " .. tostring(cid)) end
  local nf = orders.not_yet_visible(m, now)
  if nf then errors.throw(nf) end
  return m
end

local function outcome_or_fail(m, label)
  if label == nil then return 1 end
  local idx = markets.outcome_index(m, label)
  if not idx then
    local labels = array()
    for i, o in ipairs(m.outcomes) do labels[i] = o.label end
    errors.fail(400, "INVALID_OUTCOME", "Unknown outcome '" .. label .. "'", { valid_outcomes = labels })
  end
  return idx
end

-- Health -----------------------------------------------------------------------------------

local H = {}

function H.health(_, _, _, now)
  return ok { status = "ok", timestamp = util.iso(now), version = "1.0.0" }
end

function H.ready(self, _, _, now)
  return ok { status = "ok", timestamp = util.iso(now), checks = {
    database = { status = "ok", latency_ms = 0 }, redis = { status = "ok", latency_ms = 0 },
    markets = { status = "ok", count = #self.U.list } } }
end

function H.status(self, _, _, now)
  local pending = 0
  for _, m in ipairs(self.O.rmarkets) do
    for _, r in pairs(m.resting) do pending = pending + #r.BUY + #r.SELL end
  end
  local hot = 0
  for _, m in ipairs(self.U.list) do if m.is_hot then hot = hot + 1 end end
  return ok {
    status = "operational", timestamp = util.iso(now), version = "1.0.0",
    uptime_seconds = now - self.started_at,
    database = { status = "ok", latency_ms = 0 }, redis = { status = "ok", latency_ms = 0 },
    matching_engine = { status = "ok", pending_orders = pending, mode = "local" },
    websocket = { status = "ok", connections = self.ws_connections or 0 },
    markets = { status = "ok", count = #self.U.list, hot = hot, seed = self.seed },
  }
end

-- Market data --------------------------------------------------------------------------------

function H.markets(self, _, req, now)
  local limit = q_int(req, "limit", 50, 1, 500)
  local offset = q_int(req, "offset", 0, 0)
  local hot = q_bool(req, "hot_only", false)
  local active = q_bool(req, "active_only", true)
  local search = q_str(req, "search") or q_str(req, "q")
  local category = q_str(req, "category")
  search = search and search:lower()
  local out, skipped = array(), 0
  for _, m in ipairs(self.U.list) do
    if (not hot or m.is_hot) and (not active or markets.state(m, now) == "open")
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

local function detail(_, m, req, now)
  local nf = orders.not_yet_visible(m, now)
  if nf then return nf end
  local d = markets.detail(m, now)
  if q_bool(req, "include_book", false) then
    d.book = book.snapshot(m, 1, 10, false, util.iso_us(util.to_us(now)))
  end
  return ok(d)
end

function H.market(self, _, req, now, cid) return detail(self, market_or_404(self, cid, now), req, now) end

function H.market_by_slug(self, _, req, now, slug)
  local m = self.U.by_slug[slug]
  if not m then errors.fail(404, "MARKET_NOT_FOUND", "No market with slug " .. slug) end
  return detail(self, m, req, now)
end

function H.market_by_token(self, _, req, now, tok)
  local hit = self.U.by_token[tok]
  if not hit then errors.fail(404, "MARKET_NOT_FOUND", "No market has token_id " .. tok) end
  return detail(self, hit[1], req, now)
end

function H.book(self, _, req, now, cid)
  local m = market_or_404(self, cid, now)
  local idx = outcome_or_fail(m, q_str(req, "outcome"))
  local depth = q_int(req, "depth", 10, 1, 50)
  return ok(book.snapshot(m, idx, depth, q_bool(req, "raw", false), util.iso_us(util.to_us(now))))
end

function H.book_by_token(self, _, req, now)
  local tok = q_str(req, "token_id")
  if not tok then errors.invalid({ "query", "token_id" }, "Field required", "missing") end
  local hit = self.U.by_token[tok]
  if not hit then errors.fail(404, "MARKET_NOT_FOUND", "No market has token_id " .. tok) end
  local nf = orders.not_yet_visible(hit[1], now)
  if nf then return nf end
  local depth = q_int(req, "depth", 10, 1, 50)
  return ok(book.snapshot(hit[1], hit[2], depth, q_bool(req, "raw", false), util.iso_us(util.to_us(now))))
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

local UPDOWN_ASSETS = {}
for _, a in ipairs(markets.UPDOWN_ASSETS) do UPDOWN_ASSETS[a[1]] = a end
local UPDOWN_IV_UPPER = {}
for _, iv in ipairs(markets.UPDOWN_INTERVALS) do UPDOWN_IV_UPPER[iv[1]:upper()] = iv end

function H.updown(self, _, req, now)
  local asset = q_enum(req, "asset", UPDOWN_ASSETS, true)
  local iv = q_str(req, "interval")
  if iv and not UPDOWN_IV_UPPER[iv:upper()] then
    errors.invalid({ "query", "interval" }, "Input should be '5M', '15M', '1H', '4H' or 'daily'", "enum", iv)
  end
  local limit = q_int(req, "limit", 10, 1, 100)
  local rows = {}
  for _, a in ipairs(markets.UPDOWN_ASSETS) do
    if not asset or a[1] == asset then
      for _, ivl in ipairs(markets.UPDOWN_INTERVALS) do
        if not iv or ivl[1]:upper() == iv:upper() then
          local len = ivl[2]
          local start = floor(now / len) * len
          for k = 0, limit - 1 do
            rows[#rows + 1] = { a, ivl, start + k * len }
          end
        end
      end
    end
  end
  table.sort(rows, function(x, y)
    local ex, ey = x[3] + x[2][2], y[3] + y[2][2]
    if ex ~= ey then return ex < ey end
    if x[2][2] ~= y[2][2] then return x[2][2] < y[2][2] end
    return x[1][1] < y[1][1]
  end)
  local out = array()
  for k = 1, math.min(limit, #rows) do
    local row = rows[k]
    local m = markets.updown_market(self.U, row[1][1], row[1][2], row[2][1], row[2][2], row[3], now)
    out[k] = markets.updown_view(m, now)
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

-- Trading ------------------------------------------------------------------------------------

local function idem_header(req)
  local v = req.headers["idempotency-key"]
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

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
    local rec = ctx.user.idem["b:" .. hkey]
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
  if hkey then ctx.user.idem["b:" .. hkey] = { fp = fp, body = body } end
  return ok(body)
end

local ORDER_STATUS = { PENDING = true, FILLED = true, CANCELLED = true, EXPIRED = true }
local SIDES = { BUY = true, SELL = true }

function H.orders_list(_, ctx, req)
  local f = {
    status = q_enum(req, "status", ORDER_STATUS, true),
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
  return ok { cancelled = ids, cancelled_count = #ids, not_cancelled = array(),
              account_balance = ctx.user.wallet and fixed.money(ctx.user.wallet.cash) or null }
end

function H.cancel_all(self, ctx, _, now)
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

-- Account ----------------------------------------------------------------------------------------

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
  accounts.ensure_wallet(ctx.user, self.tiers, now)
  return ok(accounts.equity_view(ctx.user, days, now))
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

function H.export_csv(_, ctx)
  return { status = 200, body = accounts.trades_csv(ctx.user), content_type = "text/csv",
           headers = { ["Content-Disposition"] = 'attachment; filename="trades.csv"' } }
end

local function me_view(self, user, now)
  accounts.ensure_wallet(user, self.tiers, now)
  local w = user.wallet
  return {
    id = user.uuid, user_id = user.id, email = user.email, tier = user.plan, plan = user.plan,
    created_at = util.iso(user.created_at), api_keys = keys.active_count(user),
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

local function wallets(self, user, now)
  accounts.ensure_wallet(user, self.tiers, now)
  local w = user.wallet
  return array {
    { wallet_type = "MAIN", balance = "1000.00", currency = "USD" },
    { wallet_type = "API", balance = w and fixed.money(w.cash) or "0.00", currency = "USD",
      starting_balance = w and fixed.money(w.starting) or "0.00" },
  }
end

function H.wallets(self, ctx, _, now) return ok(wallets(self, ctx.user, now)) end

function H.wallet(self, ctx, _, now, kind)
  for _, w in ipairs(wallets(self, ctx.user, now)) do
    if w.wallet_type:lower() == kind:lower() then return ok(w) end
  end
  errors.fail(404, "WALLET_NOT_FOUND", "No wallet " .. kind)
end

-- Keys ---------------------------------------------------------------------------------------

local function beta_gate(self, user)
  if not self.closed_beta then return end
  local code = "CLOSED_BETA"
  if self.closed_beta == "API_PRO_COMING_SOON" and user.plan ~= "free" then code = "API_PRO_COMING_SOON" end
  errors.throw(errors.human(403, code, code == "CLOSED_BETA" and
    ("API access is in closed beta. New keys are issued to approved cohorts only. " ..
     "Apply via the waitlist; we'll email you when a cohort opens.")
    or "Pro API access is rolling out in cohorts. Check /account/billing."))
end

local PERMS = { read = true, trade = true }

local function create_key(self, user, j, now)
  local items = {}
  local name = j.name
  if absent(name) then name = nil
  elseif type(name) ~= "string" then items[#items + 1] = item({ "body", "name" }, "Input should be a valid string",
      "string_type", name)
  elseif not util.valid_utf8(name) then
    items[#items + 1] = item({ "body", "name" }, "Input should be a valid UTF-8 string", "string_unicode")
  elseif #name > 100 then items[#items + 1] = item({ "body", "name" }, "String should have at most 100 characters",
      "string_too_long") end
  local tier = j.tier
  if absent(tier) then tier = nil
  elseif type(tier) ~= "string" then items[#items + 1] = item({ "body", "tier" }, "Input should be a valid string",
      "string_type", tier) end
  local perms = j.permissions
  if absent(perms) then perms = nil
  elseif type(perms) ~= "table" or (next(perms) ~= nil and perms[1] == nil) then
    items[#items + 1] = item({ "body", "permissions" }, "Input should be a valid list", "list_type")
  else
    for i, p in ipairs(perms) do
      if type(p) ~= "string" then items[#items + 1] = item({ "body", "permissions", i - 1 },
          "Input should be a valid string", "string_type", p) end
    end
  end
  if #items > 0 then errors.throw(errors.validation(items)) end
  tier = tier or user.plan
  if not keys.TIER_RANK[tier] then
    errors.fail(400, "INVALID_TIER", "Unknown tier '" .. tier .. "'; see GET /v1/keys/tiers",
      { valid_tiers = array { "free", "pro", "pro_plus", "enterprise" } })
  end
  local list
  if perms then
    list = {}
    local seen = {}
    for _, p in ipairs(perms) do
      if p == "admin" then errors.fail(403, "PERMISSION_DENIED",
          "The admin permission cannot be granted to API keys") end
      if not PERMS[p] then errors.fail(400, "INVALID_PERMISSION", "Unknown permission '" .. p .. "'",
          { valid = array { "read", "trade" } }) end
      if not seen[p] then seen[p] = true; list[#list + 1] = p end
    end
    if #list == 0 then list = nil end
  end
  if tier == "free" and list then
    for _, p in ipairs(list) do
      if p == "trade" then
        errors.fail(403, "TIER_REQUIRES_UPGRADE", "Free-tier keys are read-only: drop 'trade' or use a paid tier",
          { tier = "free", requested = array(util.copy(list)) })
      end
    end
  end
  if keys.TIER_RANK[tier] > keys.TIER_RANK[user.plan] then
    errors.fail(403, "TIER_REQUIRES_UPGRADE", "Your plan (" .. user.plan .. ") does not include " .. tier .. " keys",
      { plan = user.plan, requested_tier = tier })
  end
  if keys.active_count(user) >= keys.MAX_ACTIVE_KEYS then
    errors.fail(400, "MAX_KEYS_REACHED", "Maximum of 5 active API keys reached; revoke one first",
      { max_keys = keys.MAX_ACTIVE_KEYS })
  end
  local key, raw = keys.add_key(self.K, user, { name = name, tier = tier, permissions = list }, now)
  accounts.ensure_wallet(user, self.tiers, now)
  return ok(keys.created_view(key, raw), 201)
end

function H.keys_list(_, ctx, _, now)
  local out = array()
  for _, k in ipairs(ctx.user.keys) do
    if not k.revoked then out[#out + 1] = keys.key_info(k, now) end
  end
  return ok(out)
end

function H.keys_create(self, ctx, req, now)
  local j = body_object(req, true)
  beta_gate(self, ctx.user)
  return create_key(self, ctx.user, j, now)
end

function H.bootstrap(self, ctx, req, now)
  local j = body_object(req, true)
  beta_gate(self, ctx.user)
  for _, k in ipairs(ctx.user.keys) do
    if not k.revoked then
      errors.fail(400, "KEYS_ALREADY_EXIST", "You already have API key(s): use POST /v1/keys with X-API-Key instead")
    end
  end
  return create_key(self, ctx.user, j, now)
end

local function own_key(self, ctx, id)
  local k = self.K.by_id[path_int(id, "key_id")]
  if not k or k.user ~= ctx.user or k.revoked then errors.fail(404, "KEY_NOT_FOUND", "API key not found: " .. id) end
  return k
end

function H.key_delete(self, ctx, _, _, id)
  local k = own_key(self, ctx, id)
  k.is_active = false
  k.revoked = true
  return ok { message = "Key revoked successfully", id = k.id }
end

function H.key_rotate(self, ctx, _, now, id)
  local old = own_key(self, ctx, id)
  if not old.is_active then errors.fail(400, "KEY_INACTIVE", "Only active keys can be rotated") end
  local key, raw = keys.add_key(self.K, ctx.user,
    { name = old.name, tier = old.tier, permissions = util.copy(old.permissions) }, now)
  local exp = now + keys.ROTATE_OVERLAP
  if not old.expires_at or old.expires_at > exp then old.expires_at = exp end
  local v = keys.created_view(key, raw)
  v.rotated_from = old.id
  v.old_key_expires_at = util.iso(old.expires_at)
  return ok(v, 201)
end

function H.key_patch(self, ctx, req, now, id)
  local k = own_key(self, ctx, id)
  local j = body_object(req)
  local name = j.name
  if absent(name) then name = nil
  elseif type(name) ~= "string" then errors.invalid({ "body", "name" }, "Input should be a valid string",
      "string_type", name)
  elseif not util.valid_utf8(name) then
    errors.invalid({ "body", "name" }, "Input should be a valid UTF-8 string", "string_unicode")
  elseif #name > 100 then errors.invalid({ "body", "name" }, "String should have at most 100 characters",
      "string_too_long") end
  k.name = name
  return ok(keys.key_info(k, now))
end

function H.tiers(self)
  local out = array()
  for i, name in ipairs(keys.TIER_ORDER) do out[i] = keys.tier_info(self.tiers[name]) end
  return ok(out)
end

function H.ws_token(self, ctx, _, now)
  return ok { token = keys.mint_ws_token(self.K, ctx, now, self.ws_token_ttl), expires_in = self.ws_token_ttl }
end

-- Routes -------------------------------------------------------------------------------------
-- {method, path (with {param} placeholders), handler, surface, permission}
local ROUTES = {
  { "GET", "/v1/health", H.health, "public" },
  { "GET", "/v1/health/ready", H.ready, "public" },
  { "GET", "/v1/status", H.status, "public" },
  { "GET", "/v1/markets", H.markets, "trade", "read" },
  { "GET", "/v1/markets/updown", H.updown, "trade", "read" },
  { "GET", "/v1/markets/by-slug/{slug}", H.market_by_slug, "trade", "read" },
  { "GET", "/v1/markets/{condition_id}", H.market, "trade", "read" },
  { "GET", "/v1/markets/{condition_id}/book", H.book, "trade", "read" },
  { "GET", "/v1/markets/{condition_id}/candles", H.candles, "trade", "read" },
  { "GET", "/v1/markets-by-token/{token_id}", H.market_by_token, "trade", "read" },
  { "GET", "/v1/book", H.book_by_token, "trade", "read" },
  { "POST", "/v1/prices/batch", H.prices_batch, "trade", "read" },
  { "GET", "/v1/events", H.events, "trade", "read" },
  { "POST", "/v1/orders", H.orders_post, "trade", "trade" },
  { "GET", "/v1/orders", H.orders_list, "trade", "read" },
  { "POST", "/v1/orders/batch", H.orders_batch, "trade", "trade" },
  { "GET", "/v1/orders/{order_id}", H.order_get, "trade", "read" },
  { "DELETE", "/v1/orders/{order_id}", H.order_delete, "trade", "trade" },
  { "POST", "/v1/cancel-all", H.cancel_all, "trade", "trade" },
  { "DELETE", "/v1/cancel-all", H.cancel_all, "trade", "trade" },
  { "DELETE", "/v1/cancel-market-orders", H.cancel_market, "trade", "trade" },
  { "POST", "/v1/clob/order", H.clob_order, "trade", "trade" },
  { "GET", "/v1/account/balance", H.balance, "trade", "read" },
  { "GET", "/v1/account/positions", H.positions, "trade", "read" },
  { "GET", "/v1/account/portfolio", H.portfolio, "trade", "read" },
  { "GET", "/v1/account/history", H.history, "trade", "read" },
  { "GET", "/v1/account/equity", H.equity, "trade", "read" },
  { "POST", "/v1/account/reset-api-balance", H.reset_balance, "trade", "trade" },
  { "GET", "/v1/export/trades.csv", H.export_csv, "trade", "read" },
  { "GET", "/v1/me", H.me, "dashboard", "read" },
  { "GET", "/v1/account/me/entitlements", H.entitlements, "dashboard", "read" },
  { "GET", "/v1/me/wallets", H.wallets, "dashboard", "read" },
  { "GET", "/v1/me/wallets/{wallet}", H.wallet, "dashboard", "read" },
  { "POST", "/v1/keys/bootstrap", H.bootstrap, "bootstrap" },
  { "GET", "/v1/keys/tiers", H.tiers, "dashboard", "read" },
  { "POST", "/v1/keys/ws-token", H.ws_token, "dashboard", "read" },
  { "GET", "/v1/keys", H.keys_list, "dashboard", "read" },
  { "POST", "/v1/keys", H.keys_create, "dashboard", "trade" },
  { "DELETE", "/v1/keys/{key_id}", H.key_delete, "dashboard", "trade" },
  { "PATCH", "/v1/keys/{key_id}", H.key_patch, "dashboard", "trade" },
  { "POST", "/v1/keys/{key_id}/rotate", H.key_rotate, "dashboard", "trade" },
}

local STATIC, DYNAMIC = {}, {}
for _, r in ipairs(ROUTES) do
  local route = { method = r[1], handler = r[3], surface = r[4], perm = r[5], path = r[2] }
  if r[2]:find("{", 1, true) then
    local pat = "^" .. r[2]:gsub("%-", "%%-"):gsub("%.", "%%."):gsub("{[%w_]+}", "([^/]+)") .. "$"
    local entry
    for _, d in ipairs(DYNAMIC) do if d.pattern == pat then entry = d end end
    if not entry then entry = { pattern = pat, methods = {} }; DYNAMIC[#DYNAMIC + 1] = entry end
    entry.methods[r[1]] = route
  else
    STATIC[r[2]] = STATIC[r[2]] or {}
    STATIC[r[2]][r[1]] = route
  end
end

local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_query(qs, into)
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = url_decode((k:gsub("+", " ")))
    v = url_decode((v:gsub("+", " ")))
    if into[k] == nil then into[k] = v end
  end
end

-- Returns route, captures or nil, "404"/"405".
local function route_for(method, path)
  local s = STATIC[path]
  if s then
    local r = s[method]
    if r then return r, {} end
    return nil, 405
  end
  for _, d in ipairs(DYNAMIC) do
    local caps = { path:match(d.pattern) }
    if caps[1] then
      local r = d.methods[method]
      if r then
        for i = 1, #caps do caps[i] = url_decode(caps[i]) end
        return r, caps
      end
      return nil, 405
    end
  end
  return nil, 404
end

-- Faults -------------------------------------------------------------------------------------

local DEFAULT_CODES = { [500] = "INTERNAL_ERROR", [502] = "BAD_GATEWAY", [503] = "SERVICE_UNAVAILABLE",
  [504] = "GATEWAY_TIMEOUT", [425] = "TOO_EARLY", [429] = "RATE_LIMITED" }

local function take_fault(self, method, path)
  for i, f in ipairs(self.faults) do
    if (f.path == nil or f.path == path) and (f.method == nil or f.method == method)
      and (f.path_pattern == nil or path:find(f.path_pattern)) then
      f.left = f.left - 1
      if f.left <= 0 then table.remove(self.faults, i) end
      return f
    end
  end
  return nil
end

local function fault_response(f)
  if f.raw then
    local r = f.raw
    local h = {}
    for k, v in pairs(r.headers or {}) do h[k] = v end
    return { status = r.status or 502, body = r.body or "", content_type = r.content_type or "text/plain",
             headers = h, raw = true }
  end
  if f.header_code or f.body_error then
    local status = f.status or 400
    local r = errors.api(status, f.header_code, f.message or "Injected fault")
    r.body.error = f.body_error or f.header_code
    if f.retry_after then r.headers["Retry-After"] = tostring(f.retry_after) end
    return r
  end
  if f.body ~= nil then
    return { status = f.status or 500, body = f.body, content_type = f.content_type or "application/json",
             headers = {}, raw = true }
  end
  if f.status then
    local code = f.code or DEFAULT_CODES[f.status] or ("HTTP_" .. f.status)
    local r = errors.api(f.status, code, f.message or ("Injected " .. f.status))
    if f.status == 429 or f.retry_after then
      r.headers["Retry-After"] = tostring(f.retry_after or 1)
    end
    return r
  end
  return nil
end

-- handle -----------------------------------------------------------------------------------

local function normalize(req)
  local n = { query = {}, headers = {} }
  if type(req) ~= "table" then return nil end
  n.method = type(req.method) == "string" and req.method:upper() or ""
  local path = type(req.path) == "string" and req.path or ""
  local qpos = path:find("?", 1, true)
  if qpos then
    parse_query(path:sub(qpos + 1), n.query)
    path = path:sub(1, qpos - 1)
  end
  if #path > 1 and path:sub(-1) == "/" then path = path:sub(1, -2) end
  n.path = path
  if type(req.query) == "table" then
    for k, v in pairs(req.query) do
      if type(k) == "string" then
        if type(v) == "table" then v = v[1] end
        if type(v) == "number" or type(v) == "boolean" then v = tostring(v) end
        if type(v) == "string" then n.query[k] = v end
      end
    end
  end
  if type(req.headers) == "table" then
    for k, v in pairs(req.headers) do
      if type(k) == "string" then
        if type(v) == "table" then v = v[1] end
        if type(v) == "number" then v = tostring(v) end
        if type(v) == "string" then n.headers[k:lower()] = v end
      end
    end
  end
  n.body = type(req.body) == "string" and req.body or nil
  n.too_large = req.too_large and true or nil
  n.json = req.json
  if req.json_error ~= nil then n.json_error = tostring(req.json_error) end
  return n
end

-- One request through size check, faults, routing, auth, rate limit, permission, handler.
local function run(self, req, now, state)
  -- too_large: the front door stopped reading a body over its own cap.
  if req.too_large or (self.max_body and req.body and #req.body > self.max_body) then
    return errors.api(413, "PAYLOAD_TOO_LARGE", ("Request body exceeds %d bytes"):format(self.max_body),
      { max_body = self.max_body })
  end
  local f = #self.faults > 0 and take_fault(self, req.method, req.path) or nil
  if f then
    local fr = fault_response(f)
    if fr then return fr end
    state.fault = f
  end
  local route, caps = route_for(req.method == "HEAD" and "GET" or req.method, req.path)
  if req.method == "HEAD" then state.head = true end
  if not route then
    if caps == 405 then return errors.method_not_allowed() end
    return errors.not_found()
  end
  local ctx
  if route.surface ~= "public" then
    local err
    ctx, err = keys.authenticate(self.K, req.headers, route.surface, now)
    if not ctx then return err end
    state.ctx = ctx
    local limited = keys.rate(ctx, now)
    if limited then return limited end
    if route.perm and not ctx.perms[route.perm] then
      return errors.api(403, "INSUFFICIENT_PERMISSION",
        "This API key lacks the '" .. route.perm .. "' permission",
        { required = route.perm, granted = array(util.copy(ctx.key and ctx.key.permissions or {})),
          tier = ctx.key and ctx.key.tier or ctx.user.plan })
    end
  end
  return route.handler(self, ctx, req, now, caps[1], caps[2])
end

local function run_request(self, req, now, state)
  local n = normalize(req)
  if not n then return errors.api(400, "BAD_REQUEST", "Malformed request") end
  return run(self, n, now, state)
end

local function finish(self, resp, rid, state)
  if type(resp) ~= "table" or math.type(resp.status) ~= "integer" then
    self.last_error = "handler returned a malformed response"
    resp = errors.internal()
  end
  local h = resp.headers
  if type(h) ~= "table" then h = {}; resp.headers = h end
  h["x-request-id"] = rid
  if resp.is_error and type(resp.body) == "table" then
    if not resp.no_request_id_in_body and resp.body.request_id == nil then resp.body.request_id = rid end
    util.clean(resp.body)   -- messages and details may echo arbitrary request bytes
  end
  if state.ctx and state.ctx.rl_headers then
    for k, v in pairs(state.ctx.rl_headers) do h[k] = v end
  end
  if not resp.content_type then resp.content_type = "application/json" end
  if state.head then resp.body = "" end       -- HEAD: a GET's status and headers, no body
  if state.fault then
    if state.fault.drop_after_processing then resp.drop = true end
    if state.fault.delay then resp.delay = state.fault.delay end
  end
  resp.is_error, resp.no_request_id_in_body, resp.raw = nil, nil, nil
  return resp
end

--- handle(req): one request in, one response table out. Never raises.
function methods:handle(req)
  local now = self.clock()
  local rid
  local hdrs = type(req) == "table" and type(req.headers) == "table" and req.headers or nil
  local given = hdrs and hdrs["x-request-id"]
  if type(given) == "string" and #given > 0 and #given <= 128 and given:match("^[%w%-_.:]+$") then
    rid = given
  else
    rid = self.id_rng:uuid()
  end
  local state = {}
  local okr, resp = xpcall(run_request, debug.traceback, self, req, now, state)
  if not okr then
    if errors.is_thrown(resp) then resp = resp.resp
    else
      self.last_error = tostring(resp)
      resp = errors.internal()
    end
  end
  local okf, out = pcall(finish, self, resp, rid, state)
  if not okf then
    self.last_error = tostring(out)
    out = finish(self, errors.internal(), rid, {})
  end
  return out
end

-- Simulation -----------------------------------------------------------------------------------

function methods:_emit(event, a, b)
  local list = self.listeners[event]
  if not list then return end
  for _, fn in ipairs(list) do
    local okc, err = pcall(fn, a, b)
    if not okc then self.last_listener_error = tostring(err) end
  end
end

--- on(event, fn): "price" -> fn(market_id, msg); "fill" -> fn(user_id, msg).
function methods:on(event, fn)
  assert(event == "price" or event == "fill", "on: event must be 'price' or 'fill'")
  assert(type(fn) == "function", "on: fn must be a function")
  local list = self.listeners[event]
  list[#list + 1] = fn
  return fn
end

--- off(event, fn): removes a listener.
function methods:off(event, fn)
  local list = self.listeners[event] or {}
  for i = #list, 1, -1 do if list[i] == fn then table.remove(list, i) end end
end

--- tick(dt): advances prices by dt seconds (random walk from the seeded stream), rebuilds
--- books, expires and fills resting orders, emits price events, takes hourly equity snapshots.
function methods:tick(dt)
  dt = tonumber(dt) or 1
  if dt < 0 then dt = 0 end
  local now = self.clock()
  local changed = markets.walk(self.U, dt, now)
  orders.match(self, now)
  for _, m in ipairs(changed) do self:_emit("price", m.condition_id, markets.ws_price(m)) end
  local hour = floor(now / 3600)
  if hour > self.snap_hour then
    self.snap_hour = hour
    for _, user in pairs(self.K.users) do
      if user.wallet then accounts.snapshot(user, hour * 3600) end
    end
  end
  return #changed
end

function methods:match()
  orders.match(self, self.clock())
end

--- ws_authorize(token, channel): consumes a ws token; returns the context or nil, reason.
function methods:ws_authorize(token, channel)
  return keys.ws_authorize(self.K, token, channel, self.clock())
end

function methods:now() return self.clock() end

--- price_message(market_id): the current WebSocket price message of a market (for a snapshot
--- on subscribe), or nil for an unknown id.
function methods:price_message(cid)
  local m = self.U.by_id[cid]
  return m and markets.ws_price(m) or nil
end

-- Test hooks -------------------------------------------------------------------------------------

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

function methods:inject(fault)
  assert(type(fault) == "table", "inject: fault must be a table")
  local f = util.copy(fault)
  f.left = math.tointeger(f.times) or 1
  if f.times == math.huge then f.left = math.maxinteger end
  self.faults[#self.faults + 1] = f
  return true
end

function methods:clear_faults() self.faults = {} end

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

-- Constructor ------------------------------------------------------------------------------

--- new(opts): see the top of this file.
function _M.new(opts)
  opts = opts or {}
  assert(type(opts) == "table", "exchange.new: options must be a table")
  local clock = opts.clock or os.time
  assert(type(clock) == "function", "exchange.new: clock must be a function")
  local seed = opts.seed or 1
  assert(math.type(seed) == "integer" or type(seed) == "string", "exchange.new: seed must be an integer or string")
  local now = clock()
  local U, err = markets.new { seed = seed, now = now, data = opts.markets }
  if not U then return nil, "markets: " .. tostring(err) end
  local root = rngm.new(seed)
  local tiers = keys.tiers(opts.tiers)
  local self = setmetatable({
    seed = seed, clock = clock, U = U, O = orders.new(), tiers = tiers,
    K = keys.new { rng = root:fork("keys"), tiers = tiers },
    id_rng = root:fork("request-ids"),
    ws_token_ttl = opts.ws_token_ttl or 60, max_body = opts.max_body or (1 << 20),
    faults = {}, listeners = { price = {}, fill = {} },
    closed_beta = opts.closed_beta or false, started_at = now,
    snap_hour = floor(now / 3600),
  }, mt)
  local owner = keys.add_user(self.K, { plan = "pro", now = floor(now), email = "trader@example.com" })
  if opts.api_key ~= nil then
    assert(type(opts.api_key) == "string" and #opts.api_key == 72 and opts.api_key:match("^ps_live_[0-9a-f]+$"),
      "exchange.new: api_key must be ps_live_ + 64 lowercase hex")
  end
  local _, raw = keys.add_key(self.K, owner, { raw = opts.api_key, tier = "pro", name = "default" }, floor(now))
  accounts.ensure_wallet(owner, tiers, now)
  local boot = keys.add_user(self.K, { plan = opts.bootstrap_plan or "pro", now = floor(now),
                                       email = "newcomer@example.com" })
  self.api_key, self.user_id, self.user_token = raw, owner.id, owner.jwt
  self.bootstrap_token, self.bootstrap_user_id = boot.jwt, boot.id
  return self
end

_M.methods = methods
_M.mt = mt
return _M
