-- Client methods for Up/Down windows and spot prices (issue 9; shapes from the SDK's
-- polysim_sdk/client.py), mixed into the client's methods table by polysim.client (install).
local core = require "polysim.core"
local args = require "polysim.client.args"

local check_string, check_int, check_enum, check_table = args.check_string, args.check_int, args.check_enum, args.check_table
local check_keys, set, pathseg = args.check_keys, args.set, args.pathseg

local _M = {}

-- secret_of(client) -> the client's {api_key, bearer} record (polysim.client keeps it).
function _M.install(methods, secret_of)
  local UPDOWN_INTERVALS = { "5M", "15M", "1H", "4H", "daily" }
  function methods:updown(p)
    p = check_table("updown", "params", p, true)
    check_keys("updown", p, set { "asset", "interval", "limit" })
    return self:_call("GET", "/v1/markets/updown", { query = {
      asset = check_string("updown", "asset", p.asset, true),
      interval = check_enum("updown", "interval", p.interval, UPDOWN_INTERVALS, true),
      limit = check_int("updown", "limit", p.limit, 1, 500),
    } })
  end

  -- Up/Down and spot (issue 9; shapes from the SDK's polysim_sdk/client.py). updown{} above
  -- answers the payload object {markets, crypto_prices, available_assets, ...}.
  -- the public prices routes take the key when there is one (as the SDK sends it)
  local function public_auth(self) return secret_of(self).api_key and "key" or "none" end

  -- updown_windows{asset=, interval=, live=true} -> the payload's rows (live: open windows only)
  function methods:updown_windows(p)
    p = check_table("updown_windows", "params", p, true)
    check_keys("updown_windows", p, set { "asset", "interval", "limit", "live" })
    local live = p.live
    local q = { asset = p.asset, interval = p.interval, limit = p.limit }
    local payload, err = self:updown(q)
    if not payload then return nil, err end
    local rows = payload.markets or payload
    if not live then return rows end
    return core.array(require("polysim.updown").open_windows(rows))
  end

  -- spot("BTC") -> {symbol, price, timestamp, source, age_seconds, stale}
  function methods:spot(symbol)
    return self:_call("GET", "/prices/live/" .. pathseg("spot", "symbol", symbol), { auth = public_auth(self) })
  end

  -- spots() -> {prices = {SYM = spot}, supported_symbols, timestamp}
  function methods:spots() return self:_call("GET", "/prices/live", { auth = public_auth(self) }) end

  -- price_to_beat(condition_id | token_id) -> {price, asset, start_date, source}; nil and a
  -- status 404 error while the window has not opened (pending: retry shortly).
  function methods:price_to_beat(id)
    return self:_call("GET", "/prices/ptb/" .. pathseg("price_to_beat", "id", id), { auth = public_auth(self) })
  end

  -- spot_stream{crypto=, crypto_source=, condition_ids=, on_spot=, on_window=, on_message=,
  -- on_event=, ...} -> the SSE stream (polysim.sse)
  function methods:spot_stream(opts)
    return require("polysim.sse").spot(self, opts, secret_of(self).api_key)
  end
end

return _M
