--- Write PolySimulator trading strategies in Lua: the entry module.
--
--    local polysim = require "polysim"
--    local client = polysim.new{ base_url = os.getenv "POLYSIM_LOCAL_URL",
--                                api_key = os.getenv "POLYSIM_LOCAL_KEY" }
--    local m = assert(client:markets{ hot_only = true }())
--    -- live_price.buy and .sell are the Yes and the No price (not bid and ask)
--    print(m.question, m.live_price.buy, m.live_price.sell)
--
-- **Calling convention.** A call that succeeds returns the decoded JSON answer as plain
-- tables. Numbers stay decimal strings (`"0.65"`), as the API sends them: use
-- `polysim.decimal` for arithmetic. JSON null is `polysim.null` (prints as `null`).
-- An expected failure (network, HTTP status, an answer that is not JSON) returns
-- `nil, err` with an `Error` object; a programmer error (a wrong argument type, an
-- unknown option, a missing field) raises at once, at the caller's line, naming the
-- argument. Paginated lists are iterators that raise their page's `Error`.
--
-- **Field meanings** that trip people up:
--
-- - `buy`, `sell` (a market's `live_price`, price events): the **Yes** and the **No** price
--   of a binary market, not a bid and an ask (the book's are `best_bid`, `best_ask`).
-- - `amount` (`place_order`, market BUY): money instead of a share count; shares = amount ÷
--   `price` (the limit: the worst price accepted), floored to 4 decimals, and a better fill
--   spends less (`amount = "10", price = "0.50"` buys 20 shares; the fee comes on top).
-- - `balance`, `account_balance`, `notional`, `fee`, P&L: money as decimal strings, not
--   rounded to cents: up to 6 decimals (USDC's precision; VWAP fills make sub-cent amounts
--   such as `"9994.546470"`), the local exchange up to 8 with trailing zeros trimmed. Show
--   cents with `polysim.decimal(v):format(2)`, compare with `polysim.decimal`.
-- - `quantity`, `price`: decimal strings; shares, and money per share (0 to 1).
-- - JSON null: `polysim.null`, the same value as `cjson.null`; `tostring` gives `"null"`.
-- @module polysim
local core = require "polysim.core"

local _M = {
  --- The version of polysim, a string such as `"0.2.0"`.
  -- @field VERSION
  VERSION = core.VERSION,
  _VERSION = "polysim " .. core.VERSION,
  --- JSON null in decoded answers: the NULL light userdata, the value lua-cjson uses for
  -- `cjson.null`. `tostring(polysim.null)` is `"null"`; `polysim.json.encode` writes it as
  -- `null`. Test with `v == polysim.null`.
  -- @field null
  null = core.null,
  --- Exact decimal arithmetic for money: see the `polysim.decimal` module.
  -- @field decimal
  decimal = core.decimal,
  --- `polysim.array([t])`: marks `t` (default a new table) as a JSON array, so that it
  -- encodes as `[]` even when empty; returns `t`. Raises when `t` has another metatable.
  -- Arrays polysim decodes carry the mark already.
  -- @field array
  array = core.array,
}

--- JSON: polysim.json.
-- It has the names lua-cjson uses (`encode`, `decode`, `null`), so code written for
-- cjson runs on it. Tables either library decodes encode with the other (`polysim.null` is
-- `cjson.null`); Debian's lua-cjson 2.1.0 writes an empty array as `{}` and keeps 14
-- significant digits of a number.
-- @section json

--- Encodes a Lua value as JSON text.
-- Strings must be UTF-8; a table with keys 1..n is an array, one with string keys an object;
-- a `polysim.decimal` (any userdata with `__tostring`) goes out as its exact string.
-- @function json.encode
-- @param v the value: table, string, number, boolean, `polysim.null` or a decimal
-- @tparam[opt] table opts `{ sort_keys = true }` writes object keys in byte order
--   (a canonical text: without it keys come in Lua's hash order)
-- @treturn string the JSON text
-- @raise `"json_encode: <what> (at $.path)"` for what JSON cannot carry: nil, NaN or an
--   infinity, a function, a cyclic or more than 100-deep table, a sparse array, a table
--   with both integer and string keys, invalid UTF-8; an unknown option in `opts`.

--- Decodes JSON text (RFC 8259).
-- Objects become tables, arrays tables marked as arrays (see `polysim.array`), null
-- `polysim.null`; a number without fraction or exponent that fits 64 bits is an integer,
-- any other a float. Unlike `cjson.decode`, bad JSON is returned, not raised.
-- @function json.decode
-- @tparam string text the JSON text
-- @return the value
-- @treturn[2] nil
-- @treturn[2] string `"bad JSON at byte N: <why>"`
-- @raise when `text` is not a string
_M.json = { encode = core.json_encode, decode = core.json_decode, null = core.null, array = core.array }

--- The client.
-- @section client

--- Creates a REST client (see `polysim.client` for its methods).
-- @tparam[opt] table opts the options; an unknown name raises
-- @tparam[opt] string opts.api_key the API key (default `$POLYSIM_API_KEY`); never printed
-- @tparam[opt] string opts.bearer a dashboard JWT, for `client:bootstrap`
-- @tparam[opt] string opts.base_url default `$POLYSIM_BASE_URL`, else
--   `https://api.polysimulator.com`; the local exchange prints its own
-- @tparam[opt=15] number opts.timeout seconds for one attempt
-- @tparam[opt=5] number opts.connect_timeout seconds to connect
-- @tparam[opt=3] int opts.max_retries retries after the first attempt
-- @tparam[opt=0.25] number opts.retry_base first back-off, seconds (doubled, with jitter)
-- @tparam[opt=8] number opts.retry_cap longest back-off, seconds
-- @tparam[opt=16777216] int opts.max_size largest answer accepted, bytes
-- @tparam[opt] string opts.user_agent default `polysim-lua/<version>`
-- @tparam[opt=false] bool opts.allow_insecure send the key over plain `http://` to a host
--   that is not loopback (refused otherwise)
-- @tparam[opt=false] bool opts.retry_not_found retry `MARKET_NOT_FOUND` (brand-new markets)
-- @tparam[opt] string opts.http_version `"1.1"` refuses HTTP/2
-- @tparam[opt] string opts.cainfo a CA bundle file (TLS verification is always on)
-- @tparam[opt] func opts.logger `function(level, message)` for retries and failures
-- @treturn polysim.client.Client the client; `tostring(client)` never shows the key
-- @raise an argument error for a wrong option, or for a key over `http://` to a remote host
-- @usage local client = polysim.new{ api_key = os.getenv "POLYSIM_API_KEY" }
function _M.new(opts)
  return require("polysim.client").new(opts)
end

--- Tasks.
-- See `polysim.loop`.
-- @section tasks

--- The task module, `polysim.loop`.
-- @field loop
_M.loop = require "polysim.loop"
--- The error helpers, `polysim.errors`.
-- @field errors
_M.errors = require "polysim.errors"

--- `polysim.spawn(fn, ...)`: runs `fn(...)` as a task (`polysim.loop.spawn`).
-- @field spawn
_M.spawn = _M.loop.spawn
--- `polysim.sleep(seconds)`: waits without blocking other tasks (`polysim.loop.sleep`).
-- @field sleep
_M.sleep = _M.loop.sleep
--- `polysim.wrap(fn)`: a coroutine of your own whose waits still reach the loop
-- (`polysim.loop.wrap`).
-- @field wrap
_M.wrap = _M.loop.wrap

return _M
