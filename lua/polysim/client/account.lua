-- Client methods for the account (balance, positions, portfolio, history, equity, export),
-- mixed into the client's methods table by polysim.client (install).

--- Client methods of the account.
-- @submodule polysim.client
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local check_string, check_int, check_enum, check_table = args.check_string, args.check_int, args.check_enum, args.check_table
local check_keys, set, SIDES = args.check_keys, args.set, args.SIDES

local _M = {}

function _M.install(methods)
  --- `GET /v1/account/balance`: the API wallet's cash and value.
  -- @treturn Balance
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:balance() return self:_call("GET", "/v1/account/balance") end

  --- `GET /v1/account/positions`.
  -- @tparam[opt] table p
  -- @tparam[opt] string p.status `"OPEN"` or `"CLOSED"`
  -- @treturn {Position,...}
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:positions(p)
    p = check_table("positions", "params", p, true)
    check_keys("positions", p, set { "status" })
    return self:_call("GET", "/v1/account/positions",
      { query = { status = check_enum("positions", "status", p.status, { "OPEN", "CLOSED" }, true) } })
  end

  --- `GET /v1/account/portfolio`: balance and positions in one call.
  -- @treturn table `{balance = Balance, positions = {Position,…}, total_trades, win_rate}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:portfolio() return self:_call("GET", "/v1/account/portfolio") end

  local HISTORY_OPTS = set { "market_id", "side", "limit", "offset", "page_size" }
  --- `GET /v1/account/history`: one page of the account's trades (fills and settlements, which
  -- have `price_source = "settlement"`).
  -- @tparam[opt] table p
  -- @tparam[opt] string p.market_id one market's trades
  -- @tparam[opt] string p.side `"BUY"` or `"SELL"`
  -- @tparam[opt] int p.limit 1–500
  -- @tparam[opt] int p.offset
  -- @treturn table the page
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:history_page(p)
    p = check_table("history_page", "params", p, true)
    check_keys("history_page", p, HISTORY_OPTS)
    return self:_call("GET", "/v1/account/history", { query = {
      market_id = check_string("history_page", "market_id", p.market_id, true),
      side = check_enum("history_page", "side", p.side, SIDES, true),
      limit = check_int("history_page", "limit", p.limit, 1, 500),
      offset = check_int("history_page", "offset", p.offset, 0),
    } })
  end

  --- Every trade of the account, as an iterator (offset paging).
  -- @tparam[opt] table p
  -- @tparam[opt] string p.market_id one market's trades
  -- @tparam[opt] string p.side `"BUY"` or `"SELL"`
  -- @tparam[opt=100] int p.page_size
  -- @treturn func an iterator: `for x in client:history{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  function methods:history(p)
    p = check_table("history", "params", p, true)
    check_keys("history", p, HISTORY_OPTS)
    return paginate.offset(function(offset, limit)
      return self:history_page { market_id = p.market_id, side = p.side, offset = offset, limit = limit }
    end, p.offset or 0, p.page_size or p.limit or 100, { "history", "trades", "items" })
  end

  --- `GET /v1/account/equity`: hourly equity snapshots.
  -- @tparam[opt] table p
  -- @tparam[opt=7] int p.days 1–90
  -- @tparam[opt] int p.limit
  -- @treturn table rows `{timestamp, cash_balance, position_value, total_value, pnl}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:equity(p)
    p = check_table("equity", "params", p, true)
    check_keys("equity", p, set { "days", "limit" })
    return self:_call("GET", "/v1/account/equity", { query = { days = check_int("equity", "days", p.days, 1, 90),
      limit = check_int("equity", "limit", p.limit, 1, 10000) } })
  end

  --- `POST /v1/account/reset-api-balance`: resets the API wallet to its starting balance. Sent
  -- once on a fresh connection (never repeated by curl or polysim: not idempotent).
  -- @treturn table the answer
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:reset_balance()
    return self:_call("POST", "/v1/account/reset-api-balance")
  end

  --- `GET /v1/me`: the account.
  -- @treturn Me
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:me() return self:_call("GET", "/v1/me", { auth = "either" }) end
  --- `GET /v1/account/me/entitlements`: what the account's plan allows.
  -- @treturn table
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:entitlements() return self:_call("GET", "/v1/account/me/entitlements", { auth = "either" }) end

  --- `GET /v1/export/trades.csv`: the trade history as CSV.
  -- @tparam[opt] table p
  -- @tparam[opt] string p.market_id one market's trades
  -- @treturn string the CSV text
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:export_trades(p)
    p = check_table("export_trades", "params", p, true)
    check_keys("export_trades", p, set { "market_id" })
    return self:_call("GET", "/v1/export/trades.csv", { raw = true,
      query = { market_id = check_string("export_trades", "market_id", p.market_id, true) } })
  end
end

return _M
