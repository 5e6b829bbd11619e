-- Client methods for the account (balance, positions, portfolio, history, equity, export),
-- mixed into the client's methods table by polysim.client (install).
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local check_string, check_int, check_enum, check_table = args.check_string, args.check_int, args.check_enum, args.check_table
local check_keys, set, SIDES = args.check_keys, args.set, args.SIDES

local _M = {}

function _M.install(methods)
  function methods:balance() return self:_call("GET", "/v1/account/balance") end

  function methods:positions(p)
    p = check_table("positions", "params", p, true)
    check_keys("positions", p, set { "status" })
    return self:_call("GET", "/v1/account/positions",
      { query = { status = check_enum("positions", "status", p.status, { "OPEN", "CLOSED" }, true) } })
  end

  function methods:portfolio() return self:_call("GET", "/v1/account/portfolio") end

  local HISTORY_OPTS = set { "market_id", "side", "limit", "offset", "page_size" }
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

  function methods:history(p)
    p = check_table("history", "params", p, true)
    check_keys("history", p, HISTORY_OPTS)
    return paginate.offset(function(offset, limit)
      return self:history_page { market_id = p.market_id, side = p.side, offset = offset, limit = limit }
    end, p.offset or 0, p.page_size or p.limit or 100, { "history", "trades", "items" })
  end

  function methods:equity(p)
    p = check_table("equity", "params", p, true)
    check_keys("equity", p, set { "days", "limit" })
    return self:_call("GET", "/v1/account/equity", { query = { days = check_int("equity", "days", p.days, 1, 90),
      limit = check_int("equity", "limit", p.limit, 1, 10000) } })
  end

  function methods:reset_balance()
    return self:_call("POST", "/v1/account/reset-api-balance")
  end

  function methods:me() return self:_call("GET", "/v1/me", { auth = "either" }) end
  function methods:entitlements() return self:_call("GET", "/v1/account/me/entitlements", { auth = "either" }) end

  -- The trade history as CSV text; p.market_id keeps one market's trades.
  function methods:export_trades(p)
    p = check_table("export_trades", "params", p, true)
    check_keys("export_trades", p, set { "market_id" })
    return self:_call("GET", "/v1/export/trades.csv", { raw = true,
      query = { market_id = check_string("export_trades", "market_id", p.market_id, true) } })
  end
end

return _M
