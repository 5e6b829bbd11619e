-- Client methods for the Polymarket-shaped data API and the wallets family, mixed into the
-- client's methods table by polysim.client (install). Calls follow the official SDK:
-- polysim_sdk/client.py data_orders / data_trades / *_wallet,
-- polysim_polymarket/clients/public.py get_price_history.

--- Client methods of the Polymarket-shaped data API and of wallets.
-- @submodule polysim.client
local paginate = require "polysim.paginate"

local _M = {}

-- The end of a Polymarket cursor walk.
_M.END_CURSOR = "LTE="

function _M.install(methods, h)
  local check_string, check_int, check_table, check_keys, set, pathseg, check_enum =
    h.check_string, h.check_int, h.check_table, h.check_keys, h.set, h.pathseg, h.check_enum

  local function ts(fname, name, v)
    if v == nil then return nil end
    if math.type(v) == "integer" then return v end
    return check_string(fname, name, v)
  end

  local function finished(c) return c == _M.END_CURSOR end

  -- data_orders_page{ id, market, asset_id, before, after, status, next_cursor, limit }: one
  -- envelope {limit, count, next_cursor, data}.
  local ORDERS_OPTS = set { "id", "market", "asset_id", "before", "after", "status", "next_cursor", "limit",
    "page_size" }
  --- `GET /v1/data/orders` (Polymarket-shaped): one page.
  -- @tparam[opt] table p
  -- @param[opt] p.id one order
  -- @tparam[opt] string p.market a condition id
  -- @tparam[opt] string p.asset_id a token id
  -- @param[opt] p.before Unix seconds (an integer or a string)
  -- @param[opt] p.after Unix seconds
  -- @tparam[opt] string p.status `"OPEN"`, `"LIVE"`, `"FILLED"`, `"MATCHED"`, `"CANCELLED"`, `"EXPIRED"`
  -- @tparam[opt] string p.next_cursor the previous page's cursor
  -- @tparam[opt] int p.limit 1–500 (`page_size` is the same)
  -- @treturn table `{limit, count, next_cursor, data = {…}}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:data_orders_page(p)
    p = check_table("data_orders_page", "params", p, true)
    check_keys("data_orders_page", p, ORDERS_OPTS)
    return self:_call("GET", "/v1/data/orders", { query = {
      id = p.id ~= nil and tostring(p.id) or nil,
      market = check_string("data_orders_page", "market", p.market, true),
      asset_id = check_string("data_orders_page", "asset_id", p.asset_id, true),
      before = ts("data_orders_page", "before", p.before), after = ts("data_orders_page", "after", p.after),
      status = check_enum("data_orders_page", "status", p.status,
        { "OPEN", "LIVE", "FILLED", "MATCHED", "CANCELLED", "CANCELED", "EXPIRED" }, true),
      next_cursor = check_string("data_orders_page", "next_cursor", p.next_cursor, true),
      limit = check_int("data_orders_page", "limit", p.page_size or p.limit, 1, 500),
    } })
  end

  --- Every matching order of the data API, walking `next_cursor` until `"LTE="`.
  -- @tparam[opt] table p as for `data_orders_page`
  -- @treturn func an iterator: `for x in client:data_orders{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  function methods:data_orders(p)
    p = check_table("data_orders", "params", p, true)
    check_keys("data_orders", p, ORDERS_OPTS)
    return paginate.cursor(function(cursor)
      local q = {}
      for k, v in pairs(p) do q[k] = v end
      q.next_cursor = cursor or p.next_cursor
      return self:data_orders_page(q)
    end, "data", finished)
  end

  local TRADES_OPTS = set { "market", "asset_id", "before", "after", "next_cursor", "limit", "page_size" }
  --- `GET /v1/data/trades` (Polymarket-shaped): one page.
  -- @tparam[opt] table p
  -- @tparam[opt] string p.market a condition id
  -- @tparam[opt] string p.asset_id a token id
  -- @param[opt] p.before Unix seconds (an integer or a string)
  -- @param[opt] p.after Unix seconds
  -- @tparam[opt] string p.next_cursor
  -- @tparam[opt] int p.limit 1–500 (`page_size` is the same)
  -- @treturn table `{limit, count, next_cursor, data = {…}}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:data_trades_page(p)
    p = check_table("data_trades_page", "params", p, true)
    check_keys("data_trades_page", p, TRADES_OPTS)
    return self:_call("GET", "/v1/data/trades", { query = {
      market = check_string("data_trades_page", "market", p.market, true),
      asset_id = check_string("data_trades_page", "asset_id", p.asset_id, true),
      before = ts("data_trades_page", "before", p.before), after = ts("data_trades_page", "after", p.after),
      next_cursor = check_string("data_trades_page", "next_cursor", p.next_cursor, true),
      limit = check_int("data_trades_page", "limit", p.page_size or p.limit, 1, 500),
    } })
  end

  --- Every matching trade of the data API, walking `next_cursor` until `"LTE="`.
  -- @tparam[opt] table p as for `data_trades_page`
  -- @treturn func an iterator: `for x in client:data_trades{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  function methods:data_trades(p)
    p = check_table("data_trades", "params", p, true)
    check_keys("data_trades", p, TRADES_OPTS)
    return paginate.cursor(function(cursor)
      local q = {}
      for k, v in pairs(p) do q[k] = v end
      q.next_cursor = cursor or p.next_cursor
      return self:data_trades_page(q)
    end, "data", finished)
  end

  --- `GET /v1/prices-history`: a token's price history.
  -- @tparam string token_id
  -- @tparam[opt] table p
  -- @tparam[opt] int p.start_ts Unix seconds
  -- @tparam[opt] int p.end_ts Unix seconds
  -- @tparam[opt] string p.interval `"1m"`, `"1h"`, `"6h"`, `"1d"`, `"1w"` or `"max"`
  -- @tparam[opt] int p.fidelity minutes per point (1–1440)
  -- @treturn table `{history = {{t = unix seconds, p = price}, …}}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:prices_history(token_id, p)
    check_string("prices_history", "token_id", token_id)
    p = check_table("prices_history", "params", p, true)
    check_keys("prices_history", p, set { "start_ts", "end_ts", "interval", "fidelity" })
    return self:_call("GET", "/v1/prices-history", { query = {
      market = token_id,
      startTs = check_int("prices_history", "start_ts", p.start_ts, 0),
      endTs = check_int("prices_history", "end_ts", p.end_ts, 0),
      interval = check_enum("prices_history", "interval", p.interval, { "1m", "1h", "6h", "1d", "1w", "max" }, true),
      fidelity = check_int("prices_history", "fidelity", p.fidelity, 1, 1440),
    } })
  end

  -- wallets

  --- `GET /v1/me/wallets`: the account's wallets.
  -- @tparam[opt] table p `limit` (1–200), `offset`
  -- @treturn table
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:wallets(p)
    p = check_table("wallets", "params", p, true)
    check_keys("wallets", p, set { "limit", "offset" })
    return self:_call("GET", "/v1/me/wallets", { auth = "either", query = {
      limit = check_int("wallets", "limit", p.limit, 1, 200), offset = check_int("wallets", "offset", p.offset, 0) } })
  end

  --- `GET /v1/me/wallets/{id}`.
  -- @tparam string id the wallet's id
  -- @treturn table
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:wallet(id)
    return self:_call("GET", "/v1/me/wallets/" .. pathseg("wallet", "wallet_id", id), { auth = "either" })
  end

  --- `POST /v1/me/wallets`: a sandbox wallet (the body field is `label`, as the official SDK
  -- sends it).
  -- @tparam table p
  -- @tparam string p.label its name
  -- @tparam[opt="SANDBOX"] string p.kind
  -- @treturn table the wallet
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:create_wallet(p)
    p = check_table("create_wallet", "params", p)
    check_keys("create_wallet", p, set { "label", "kind" })
    return self:_call("POST", "/v1/me/wallets", { auth = "either", body = {
      label = check_string("create_wallet", "label", p.label),
      kind = check_enum("create_wallet", "kind", p.kind, { "SANDBOX" }, true) or "SANDBOX" } })
  end

  --- `PATCH /v1/me/wallets/{id}`.
  -- @tparam string id
  -- @tparam string label the new name
  -- @treturn table the wallet
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:rename_wallet(id, label)
    local seg = pathseg("rename_wallet", "wallet_id", id)
    return self:_call("PATCH", "/v1/me/wallets/" .. seg, { auth = "either",
      body = { label = check_string("rename_wallet", "label", label) } })
  end

  --- `DELETE /v1/me/wallets/{id}`.
  -- @tparam string id
  -- @treturn table the answer
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:archive_wallet(id)
    return self:_call("DELETE", "/v1/me/wallets/" .. pathseg("archive_wallet", "wallet_id", id), { auth = "either" })
  end

  --- `POST /v1/me/wallets/{id}/reset`: back to its starting balance.
  -- @tparam string id
  -- @treturn table the wallet
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:reset_wallet(id)
    return self:_call("POST", "/v1/me/wallets/" .. pathseg("reset_wallet", "wallet_id", id) .. "/reset",
      { auth = "either", body = {} })
  end
end

return _M
