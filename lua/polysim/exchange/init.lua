-- polysim.exchange: the logic of a PolySimulator-compatible exchange that runs offline.
-- Pure Lua. The HTTP front door and JSON codec live elsewhere: handle() takes an already
-- parsed request and returns a response table.
--
--   local exchange = require "polysim.exchange"
--   local ex = assert(exchange.new{
--     seed = 1,            -- same seed: same universe, same price paths
--     markets = nil,       -- decoded --markets file (shape: see markets.lua header)
--     api_key = nil,       -- a ps_live_ key to register as the ready pro key
--     clock = nil,         -- function returning wall seconds (float, sub-second); default
--                          -- core.realtime (CLOCK_REALTIME), else monotime-anchored os.time
--     tiers = nil,         -- per-tier overrides {pro = {per_second=3, per_minute=10, batch=20, ws=10}}
--     ws_token_ttl = 60, max_body = 1 << 20,
--     closed_beta = false, -- or "CLOSED_BETA" / "API_PRO_COMING_SOON": key issuance gated
--     bootstrap_plan = "pro",  -- plan of the bootstrap user
--     idempotency_window = 86400, -- seconds an Idempotency-Key / client_order_id is remembered
--     idempotency_max = 100000,   -- records kept per user within the window (oldest dropped)
--     keep_finished = 10000,   -- finished orders (and trades) kept per user; older ones dropped
--     min_order_size = "5",    -- shares; books advertise it, smaller orders are refused
--   })
--   ex.api_key, ex.bootstrap_token, ex.user_token (dashboard JWT of the api_key's owner),
--   ex.user_id (owner of api_key)
--   ex:handle{method, path, query, headers (lowercased names), body, json, json_error,
--             clean?, text_ok?}
--     -> {status, headers, body (table to encode, or string), encoded?, content_type?, drop?, delay?}
--     clean: query and headers already hold only string -> string (header names lowercased)
--     and the path no query: the request is used as it is, not copied, and may be changed
--     (the front door's tables, made per request).
--     encoded: the JSON text of body, when the exchange had it already (an idempotency
--     record); with text_ok the answer may have encoded alone and no body (a kept market
--     detail): for callers that only pass the body on.
--   ex:tick(dt)  ex:on("price"|"fill", fn)  ex:off(event, fn)  ex:ws_authorize(token, channel)
--   ex:price_message(market_id) -> the WS price message now (snapshot on subscribe) or nil
--   ex.ws_connections: the WebSocket glue may keep a count here; GET /v1/status reports it
--
-- The house (one concern per file): request.lua (query/body/path parsing), api/*.lua (handlers
-- by resource), routes.lua (the route table), pipeline.lua (handle: auth, rate limit, faults,
-- response finishing), faults.lua (fault injection), sim.lua (tick, matching, listeners),
-- hooks.lua (test hooks, invariants); the domain model: markets, book, orders, accounts, keys.
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
local rngm = require "polysim.exchange.rng"
local markets = require "polysim.exchange.markets"
local keys = require "polysim.exchange.keys"
local accounts = require "polysim.exchange.accounts"
local orders = require "polysim.exchange.orders"
local fixed = require "polysim.exchange.fixed"

local _M = { _VERSION = require("polysim.core").VERSION } -- one version everywhere (src/internal.h)

local floor = math.floor

-- The default clock: wall time in sub-second precision. core.realtime (CLOCK_REALTIME) when
-- the C core has it; else os.time anchored to core.monotime; pure Lua without the core: os.time.
local function default_clock()
  local okc, core = pcall(require, "polysim.core")
  if okc and type(core) == "table" then
    if core.realtime then return core.realtime end
    if core.monotime then
      local t0 = os.time() - core.monotime()
      return function() return t0 + core.monotime() end
    end
  end
  return os.time
end

-- The exchange object's methods come from one module per concern.
local methods = {}
for _, part in ipairs { "pipeline", "faults", "sim", "hooks" } do
  for k, fn in pairs(require("polysim.exchange." .. part).methods) do
    assert(methods[k] == nil, "duplicate exchange method " .. k)
    methods[k] = fn
  end
end
local mt = { __name = "polysim.exchange", __index = methods,
             __tostring = function(self) return "polysim.exchange (seed " .. tostring(self.seed) .. ")" end }


--- new(opts): see the top of this file.
function _M.new(opts)
  opts = opts or {}
  assert(type(opts) == "table", "exchange.new: options must be a table")
  local clock = opts.clock or default_clock()
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
    idem_window = opts.idempotency_window or orders.IDEM_WINDOW,
    idem_max = opts.idempotency_max or orders.IDEM_MAX,
    keep_finished = opts.keep_finished or orders.KEEP_FINISHED,
    min_order_size = opts.min_order_size and assert(fixed.coerce(opts.min_order_size, 4),
      "exchange.new: min_order_size must be a decimal number of shares") or nil,
    snap_hour = floor(now / 3600),
  }, mt)
  local owner = keys.add_user(self.K, { plan = "pro", now = floor(now), email = "trader@example.com" })
  if opts.api_key ~= nil then
    assert(type(opts.api_key) == "string" and #opts.api_key == 72 and opts.api_key:match("^ps_live_[0-9a-f]+$"),
      "exchange.new: api_key must be ps_live_ + 64 lowercase hex")
  end
  local _, raw = keys.add_key(self.K, owner, { raw = opts.api_key, tier = "pro", name = "default" }, floor(now))
  accounts.ensure_wallet(owner, tiers, now)
  if self.min_order_size then
    for _, m in ipairs(U.all) do m.min_size = m.min_size or self.min_order_size end
  end
  local boot = keys.add_user(self.K, { plan = opts.bootstrap_plan or "pro", now = floor(now),
                                       email = "newcomer@example.com" })
  self.api_key, self.user_id, self.user_token = raw, owner.id, owner.jwt
  self.bootstrap_token, self.bootstrap_user_id = boot.jwt, boot.id
  return self
end

_M.methods = methods
_M.mt = mt
return _M
