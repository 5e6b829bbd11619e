-- The PolySimulator REST client: one method per endpoint of BRIEF.md, argument checks that
-- name the argument, exact decimal strings for every number sent, retries with back-off,
-- and idempotency keys on everything that creates orders. Expected failures return
-- nil, err (an error object, see polysim.errors); misuse raises at once.
--
-- This file is construction and the module surface; the parts live in polysim.client.*:
-- args (argument checks), request (the request engine), market, updown, trading, account,
-- keys and data (the endpoint groups, mixed into the methods table below).

--- The REST client: one method per endpoint of the PolySimulator API (`polysim.new` makes
-- one).
--
--    local client = polysim.new{ api_key = os.getenv "POLYSIM_API_KEY" }
--    local m = assert(client:market(id))
--    local fill, err = client:place_order{ market_id = id, side = "BUY",
--      outcome = "Yes", quantity = "10", price = "0.70" }
--    -- err prints as: polysim: HTTP 409 LIMIT_PRICE_NOT_MET: …
--    if not fill then print(err) end
--
-- **Returns.** A call that succeeds returns the decoded answer as plain tables (the field
-- tables below list the main ones; the server may add fields). Numbers are decimal strings
-- (`"0.65"`) unless noted; JSON null is `polysim.null`. `buy`/`sell` are the **Yes** and
-- **No** prices, not a bid and an ask. Money is not rounded to cents (see `polysim`).
--
-- **Errors.** An expected failure returns `nil, err` (an `Error`, see `polysim.errors`):
-- network, HTTP status, an answer that is not JSON. Misuse raises at once, at the caller's
-- line, naming the argument (`place_order: side must be "BUY" or "SELL"`; an unknown option
-- gets a did-you-mean). Iterators raise their page's `Error` inside the loop.
--
-- **Retries.** Transient statuses (425, 429, 5xx) and transport errors are retried with
-- exponential back-off and jitter (`retry_base`, `retry_cap`, at most `max_retries`); 429
-- waits `Retry-After`. A POST is retried only when repeating it cannot do harm: orders carry
-- an idempotency key. `client.ratelimit` holds the last `X-RateLimit-*` headers.
--
-- **Tasks.** Inside the host (or a `polysim.spawn` task) a call yields until its answer is
-- in, so many calls can be in flight at once; in a plain script the same call blocks.
-- @module polysim.client

--- A market (`client:market`, `client:markets` rows).
-- @table Market
-- @field condition_id the market's id (`id` is the same); pass it as `market_id`
-- @field question the question text
-- @field slug,category,description,event_title,image_url texts
-- @field outcomes `{"Yes", "No"}` (or a multi-outcome market's labels)
-- @field tokens `{ {outcome, token_id}, … }`
-- @field live_price `{buy, sell, outcomes = {{label, price, token_id}}, source, volume,
--   updated_at}`: `buy` is the **Yes** price, `sell` the **No** price
-- @field active,closed,is_hot,neg_risk booleans
-- @field status `"open"`, …; `resolved_outcome` (null until resolved)
-- @field end_date,created_at ISO-8601 times
-- @field volume,fee_rate,tick_size decimal strings (`fee_rate` `"0.04"`: the taker fee is
--   `quantity × rate × p × (1 − p)`)
-- @field last_trade_price a decimal string or `polysim.null`
-- @field event_group_id the event the market belongs to

--- An order book of one outcome (`client:book`).
-- @table Book
-- @field market_id,market the condition id
-- @field outcome,token_id,asset_id the outcome and its token
-- @field bids,asks `{ {price, size}, … }`, best first (decimal strings)
-- @field mid,spread from the best levels
-- @field tick_size,min_order_size the smallest price step and order (`"5"` shares)
-- @field last_trade_price a decimal string or `polysim.null`
-- @field timestamp milliseconds (a string); `updated_at` ISO-8601; `hash`

--- What `place_order` answers: the order as it stands after matching.
-- @table OrderResult
-- @field order_id the order's id (`id` is the same; an integer on the local exchange)
-- @field client_order_id yours, or the UUID polysim generated
-- @field status `"FILLED"`, `"PENDING"` (resting), `"PARTIALLY_FILLED"`, `"CANCELLED"`, …
-- @field market_id,token_id,side,outcome,order_type,time_in_force,post_only what was asked
-- @field requested_quantity,quantity,filled_quantity,remaining_quantity shares
-- @field price,fill_price the average fill price (`fill_price` null when nothing filled);
--   `limit_price` the limit sent; `best_price` the best level when it arrived
-- @field notional money spent or received; `fee` the taker fee; `fee_rate`
-- @field account_balance the cash after the order
-- @field position the position after it: `{market_id, outcome, quantity, avg_entry_price,
--   reserved_quantity, status}`
-- @field book_walk_levels,impact_bps,slippage_bps,spread_bps,price_source how it matched
--   (integers; null for an order that rests)
-- @field created_at,filled_at,cancelled_at,expiration times (null when not applicable)

--- An order as `client:order` and `client:orders` list it.
-- @table Order
-- @field order_id,client_order_id,status,market_id,token_id,side,outcome as in `OrderResult`
-- @field order_type,time_in_force,post_only,expiration
-- @field requested_quantity,quantity,filled_quantity,remaining_quantity shares
-- @field price,limit_price,fill_price,notional,fee decimal strings (`fill_price` may be null)
-- @field created_at,filled_at,cancelled_at ISO-8601 times or null

--- The API wallet (`client:balance`).
-- @table Balance
-- @field balance cash (not rounded to cents)
-- @field currency `"USD"`
-- @field starting_balance what `reset_balance` goes back to
-- @field reserved cash held by resting BUY orders
-- @field positions_value,total_value marked positions; cash + reserved + positions
-- @field unrealized_pnl,realized_pnl,fees_paid P&L (realized net of fees)
-- @field wallet,has_api_wallet which wallet (`"API"`)

--- The account (`client:me`).
-- @table Me
-- @field id,user_id,email,created_at the account
-- @field plan,tier e.g. `"pro"`
-- @field balance the API wallet's cash; `api_wallet = {balance, starting_balance}`
-- @field api_keys how many keys the account has (an integer)

--- A position (`client:positions` rows).
-- @table Position
-- @field market_id,market_question,outcome,token_id what is held
-- @field quantity,reserved_quantity shares (reserved: held by resting SELL orders)
-- @field avg_entry_price,cost_basis what it cost
-- @field current_price,market_value marked at the current price
-- @field unrealized_pnl,realized_pnl P&L
-- @field status `"OPEN"` or `"CLOSED"`

--- The Up/Down payload (`client:updown`).
-- @table Updown
-- @field markets `{polysim.updown.Window, …}`: the windows (see `polysim.updown` for their
--   fields and helpers); each also has `asset`, `interval`, `up_price`, `down_price`,
--   `price_to_beat` (a number), `window_start`, `window_end`, `status`
-- @field crypto_prices `{BTC = {symbol, price, change_24h, source, timestamp}, …}` (numbers)
-- @field available_assets,available_intervals lists of names
-- @field asset_counts,interval_counts `{BTC = 10}`, `{["5M"] = 10}`
-- @field grouped_by_asset,grouped_by_interval the windows by asset and by interval
-- @field total how many windows

--- A spot price (`client:spot`; `client:spots().prices.BTC`).
-- @table Spot
-- @field symbol the underlying, e.g. `"BTC"`
-- @field price a **number** (as the API sends it), e.g. `92454.4`
-- @field timestamp ISO-8601 time of the price
-- @field source e.g. `"chainlink_rtds"`
-- @field age_seconds,stale how old it is; true when too old to trust

--- Methods of a client.
-- @section client
local core = require "polysim.core"
local ploop = require "polysim.loop"
local retry = require "polysim.retry"
local args = require "polysim.client.args"
local request = require "polysim.client.request"

local pairs, setmetatable, type = pairs, setmetatable, type
local string_format = string.format
local argerr, check_string, check_function, check_keys, check_header_value, set =
  args.argerr, args.check_string, args.check_function, args.check_keys, args.check_header_value, args.set
local parse_base_url, proxy_for, is_loopback = request.parse_base_url, request.proxy_for, request.is_loopback

local _M = { VERSION = core.VERSION }

local DEFAULT_BASE_URL = "https://api.polysimulator.com"
local USER_AGENT = "polysim-lua/" .. core.VERSION

local methods = {}
local mt = { __name = "polysim.Client", __index = methods }

-- The key lives here, not in the object, so that no printer, serializer or pairs() over
-- a client can ever reveal it.
local secrets = setmetatable({}, { __mode = "k" })

mt.__tostring = function(self)
  local s = secrets[self]
  return string_format("polysim.Client (%s, %s)", self.base_url,
    s.api_key and "API key set" or s.bearer and "bearer token set" or "no key")
end

-- Handed only to the method modules that read the key (updown, keys); it never leaves them.
local function secret_of(self) return secrets[self] end

_M.uuid4 = args.uuid4

-- -----------------------------------------------------------------------------------------
-- construction

local NEW_OPTIONS = set {
  "api_key", "bearer", "base_url", "timeout", "connect_timeout", "max_retries", "retry_base",
  "retry_cap", "user_agent", "allow_insecure", "max_size", "logger", "retry_not_found",
  "http_version", "cainfo", "transport", "sleep", "deadline",
}

function _M.new(opts)
  opts = check_keys("new", opts or {}, NEW_OPTIONS)
  local api_key = opts.api_key
  if api_key == nil then api_key = os.getenv "POLYSIM_API_KEY" end
  if api_key == "" then api_key = nil end
  if api_key ~= nil and type(api_key) ~= "string" then argerr("new", "api_key must be a string") end
  if opts.bearer ~= nil and type(opts.bearer) ~= "string" then argerr("new", "bearer must be a string") end
  local base_url = opts.base_url or os.getenv "POLYSIM_BASE_URL" or DEFAULT_BASE_URL
  if type(base_url) ~= "string" then argerr("new", "base_url must be a string") end
  local host
  base_url, host = parse_base_url(base_url)
  if (api_key or opts.bearer) and not opts.allow_insecure and base_url:sub(1, 5) == "http:" then
    -- Decided on what curl connects to: the host as curl parsed it, or the proxy it uses.
    local via = proxy_for(host)
    if not is_loopback(host) or (via and not is_loopback(via)) then
      argerr("new", "refusing to send the API key over plain http:// to " .. (via and via .. " (a proxy)" or host) ..
        " (use https://, or set allow_insecure = true)")
    end
  end
  local function num(name, dflt, lo)
    local v = opts[name]
    if v == nil then return dflt end
    if type(v) ~= "number" or v ~= v or v < lo or v == math.huge then
      argerr("new", name .. " must be a finite number >= " .. lo)
    end
    return v
  end
  local self = {
    base_url = base_url,
    timeout = num("timeout", 15, 0.001),
    connect_timeout = num("connect_timeout", 5, 0.001),
    max_retries = retry.count(num("max_retries", 3, 0)),
    retry_base = num("retry_base", 0.25, 0),
    retry_cap = num("retry_cap", 8, 0),
    max_size = math.floor(num("max_size", 16 * 1024 * 1024, 1)),
    user_agent = opts.user_agent ~= nil and check_header_value("new", "user_agent",
      check_string("new", "user_agent", opts.user_agent)) or USER_AGENT,
    transport = opts.transport ~= nil and check_function("new", "transport", opts.transport) or nil,
    sleep = opts.sleep ~= nil and check_function("new", "sleep", opts.sleep) or ploop.sleep,
    deadline = opts.deadline ~= nil and num("deadline", nil, 0.001) or nil,
    retry_not_found = opts.retry_not_found and true or false,
    http_version = opts.http_version,
    cainfo = opts.cainfo,
    logger = opts.logger,
    ratelimit = nil,      -- the last X-RateLimit-* headers seen
    last_request_id = nil,
    _stats = { requests = 0, attempts = 0, retries = 0, connections_opened = 0, errors = 0 },
  }
  -- opts, key_headers: polysim.client.request's per-client tables (made on first use)
  secrets[self] = { api_key = api_key, bearer = opts.bearer, opts = false, key_headers = false }
  return setmetatable(self, mt)
end

--- Counters of this client: `requests`, `attempts`, `retries`, `connections_opened`, `errors`
-- (a copy).
-- @treturn table
function methods:stats()
  local s = {}
  for k, v in pairs(self._stats) do s[k] = v end
  return s
end

--- Whether the client has an API key (`opts.api_key` or `$POLYSIM_API_KEY`).
-- @treturn bool
function methods:has_key() return secrets[self].api_key ~= nil end

-- the request engine (polysim.client.request): every endpoint method calls this
function methods:_call(method, path, spec)
  return request.call(self, secrets[self], method, path, spec)
end

-- -----------------------------------------------------------------------------------------
-- the endpoint groups

require("polysim.client.market").install(methods)
require("polysim.client.updown").install(methods, secret_of)
require("polysim.client.trading").install(methods)
require("polysim.client.account").install(methods)
require("polysim.client.keys").install(methods, secret_of)

-- -----------------------------------------------------------------------------------------
-- live streams (polysim.stream): WebSocket feeds that reconnect by themselves

--- The WebSocket price feed of markets (more than 50 are spread over several connections).
-- The stream mints a token, connects, subscribes, and reconnects by itself (back-off 1 s
-- → 30 s); a gap is reported as an `on_event` `{type = "gap", from, to, seconds}`. Without its
-- message callback the stream is an iterator (`for msg in s do … end`). Outside a task, drive the
-- loop (`polysim.loop.run_until`); close it with `s:close()` or `<close>` (breaking out of the
-- iterator does not close it). Options (`ping_interval`, `handshake_timeout`, back-off) and
-- events are listed at the top of `lua/polysim/stream.lua`.
-- @tparam table opts
-- @tparam {string,...} opts.markets condition ids (`s:subscribe(ids)`, `s:unsubscribe(ids)` later)
-- @tparam[opt] func opts.on_price `function(msg)`: `{type = "price", market_id, buy, sell, …}`
--   (`buy`/`sell`: the Yes and No prices)
-- @tparam[opt] func opts.on_window `function(msg)`: Up/Down window lifecycle messages
-- @tparam[opt] func opts.on_event `function(ev)`: `connected`, `reconnecting`, `gap`, `closed`,
--   `subscribed`, `error`
-- @return the stream: `s:subscribe(ids)`, `s:unsubscribe(ids)`, `s:close()`
-- @raise an argument error for an unknown option
-- @usage local s <close> = client:prices_stream{ markets = { id }, on_price = function(msg) print(msg.buy) end }
-- polysim.loop.run_until(function() return false end, 10)
function methods:prices_stream(opts) return require("polysim.stream").prices(self, opts) end
--- The WebSocket feed of the account's fills.
-- The stream mints a token, connects, subscribes, and reconnects by itself (back-off 1 s
-- → 30 s); a gap is reported as an `on_event` `{type = "gap", from, to, seconds}`. Without its
-- message callback the stream is an iterator (`for msg in s do … end`). Outside a task, drive the
-- loop (`polysim.loop.run_until`); close it with `s:close()` or `<close>` (breaking out of the
-- iterator does not close it). Options (`ping_interval`, `handshake_timeout`, back-off) and
-- events are listed at the top of `lua/polysim/stream.lua`.
-- @tparam table opts
-- @tparam[opt] func opts.on_fill `function(msg)`: `{order_id, market_id, side, outcome, price,
--   quantity, …}`
-- @tparam[opt] func opts.on_event `function(ev)`
-- @return the stream (`s:close()`)
-- @raise an argument error for an unknown option
function methods:executions_stream(opts) return require("polysim.stream").executions(self, opts) end

-- data API (data_orders/data_trades iterators, prices_history) and wallets: polysim.client.data
require("polysim.client.data").install(methods, args)

_M.methods = methods
_M.mt = mt
return _M
