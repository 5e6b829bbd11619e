-- Client methods for Up/Down windows and spot prices (issue 9; shapes from the SDK's
-- polysim_sdk/client.py), mixed into the client's methods table by polysim.client (install).

--- Client methods of Up/Down windows and spot prices.
-- @submodule polysim.client
local core = require "polysim.core"
local args = require "polysim.client.args"

local check_string, check_int, check_enum, check_table = args.check_string, args.check_int, args.check_enum, args.check_table
local check_keys, set, pathseg = args.check_keys, args.set, args.pathseg

local _M = {}

-- secret_of(client) -> the client's {api_key, bearer} record (polysim.client keeps it).
function _M.install(methods, secret_of)
  local UPDOWN_INTERVALS = { "5M", "15M", "1H", "4H", "daily" }
  --- `GET /v1/markets/updown`: the Up/Down payload (short crypto and index windows).
  -- @tparam[opt] table p
  -- @tparam[opt] string p.asset `"BTC"`, `"ETH"`, `"SOL"`, `"XRP"`, `"SPX"` or `"NDX"`
  -- @tparam[opt] string p.interval `"5M"`, `"15M"`, `"1H"`, `"4H"` or `"daily"`
  -- @tparam[opt] int p.limit at most this many windows (1–500)
  -- @treturn Updown
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
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

  --- The window rows of `client:updown` (its `markets`).
  -- @tparam[opt] table p `asset`, `interval`, `limit` as for `updown`, and:
  -- @tparam[opt=false] bool p.live only the open windows (`polysim.updown.open_windows`)
  -- @treturn {polysim.updown.Window,...}
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
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

  --- `GET /prices/live/{symbol}`: the spot price of an underlying.
  -- @tparam string symbol e.g. `"BTC"`
  -- @treturn Spot
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:spot(symbol)
    return self:_call("GET", "/prices/live/" .. pathseg("spot", "symbol", symbol), { auth = public_auth(self) })
  end

  --- `GET /prices/live`: every underlying's spot price.
  -- @treturn table `{prices = {BTC = Spot, …}, supported_symbols = {…}, timestamp}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:spots() return self:_call("GET", "/prices/live", { auth = public_auth(self) }) end

  --- `GET /prices/ptb/{id}`: the strike of an Up/Down window (spot at its open).
  -- @tparam string id the window's condition id or a token id
  -- @treturn table `{price (a number), asset, condition_id, start_date, source}`
  -- @treturn[2] nil
  -- @treturn[2] Error err; `status = 404` until the window has opened (pending: ask again shortly)
  function methods:price_to_beat(id)
    return self:_call("GET", "/prices/ptb/" .. pathseg("price_to_beat", "id", id), { auth = public_auth(self) })
  end

  --- `GET /prices/stream` (server-sent events): spot ticks, and prices, books and window events of
  -- markets; reconnects by itself (a clean close at once; errors, 425, 429 and 5xx back off 0.5 s
  -- → 30 s, up to `max_reconnects`). With none of `on_spot`, `on_window`, `on_message` the stream
  -- is an iterator over its events. Outside a task, drive the loop
  -- (`polysim.loop.run_until`); close it with `s:close()` or `<close>`.
  -- @tparam table opts every option is listed at the top of `lua/polysim/sse.lua`
  -- @tparam[opt] {string,...} opts.crypto underlyings, e.g. `{"BTC"}`
  -- @tparam[opt] string opts.crypto_source the price source
  -- @tparam[opt] {string,...} opts.condition_ids markets whose prices and windows to stream
  -- @tparam[opt] func opts.on_spot `function(tick)`: `{symbol, price, timestamp, source}`
  -- @tparam[opt] func opts.on_window `function(msg)`: window lifecycle (`event` open / close /
  --   resolve / settle)
  -- @tparam[opt] func opts.on_message `function(ev)`: every event `{event = name, data = decoded}`
  -- @tparam[opt] func opts.on_event `function(ev)`: `connected`, `reconnecting`, `closed`
  -- @return the stream (`s:close()`)
  -- @raise an argument error for an unknown option
  -- @usage local s <close> = client:spot_stream{ crypto = {"BTC"}, on_spot = function(t) print(t.price) end }
  -- polysim.loop.run_until(function() return false end, 5)
  function methods:spot_stream(opts)
    return require("polysim.sse").spot(self, opts, secret_of(self).api_key)
  end
end

return _M
