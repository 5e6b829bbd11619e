-- Client methods that trade: placing (one, a batch, CLOB-shaped), reconciling an order whose
-- outcome is unknown, listing and cancelling orders. Mixed into the client's methods table by
-- polysim.client (install).

--- Client methods of orders.
-- @submodule polysim.client
local core = require "polysim.core"
local errors = require "polysim.errors"
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local error, ipairs, pairs, pcall, tostring, type = error, ipairs, pairs, pcall, tostring, type
local argerr, check_string, check_int, check_enum = args.argerr, args.check_string, args.check_int, args.check_enum
local check_number, check_table, check_bool, check_keys = args.check_number, args.check_table, args.check_bool, args.check_keys
local check_header_value, set, pathseg, uuid4 = args.check_header_value, args.set, args.pathseg, args.uuid4
local SIDES = args.SIDES

local _M = {}

function _M.install(methods)
  local ORDER_TYPES = { "market", "limit" }
  local TIFS = { "FOK", "FAK", "IOC", "GTC", "GTD" }
  local ORDER_FIELDS = set {
    "market_id", "side", "outcome", "quantity", "amount", "order_type", "price", "time_in_force",
    "post_only", "expiration", "client_order_id", "idempotency_key",
  }

  -- Validates one order table; returns the JSON body (numbers as exact strings).
  local function order_body(fname, o)
    check_table(fname, "order", o)
    check_keys(fname, o, ORDER_FIELDS)
    local body = {
      market_id = check_string(fname, "market_id", o.market_id),
      side = check_enum(fname, "side", o.side, SIDES),
      outcome = check_string(fname, "outcome", o.outcome),
      order_type = check_enum(fname, "order_type", o.order_type, ORDER_TYPES, true),
      time_in_force = check_enum(fname, "time_in_force", o.time_in_force, TIFS, true),
      post_only = check_bool(fname, "post_only", o.post_only),
      expiration = check_int(fname, "expiration", o.expiration, 0),
      client_order_id = check_header_value(fname, "client_order_id",
        check_string(fname, "client_order_id", o.client_order_id, true)),
      price = check_number(fname, "price", o.price, true),
      quantity = check_number(fname, "quantity", o.quantity, true),
      amount = check_number(fname, "amount", o.amount, true),
    }
    if (body.quantity == nil) == (body.amount == nil) then
      argerr(fname, "give exactly one of quantity and amount")
    end
    if body.amount and (body.side ~= "BUY" or (body.order_type or "market") ~= "market") then
      argerr(fname, "amount is for market BUY orders only; use quantity")
    end
    if body.price == nil then
      argerr(fname, "price is required (the worst price you accept, also for market orders)")
    end
    return body
  end

  --- `POST /v1/orders`: places an order. Numbers go out as exact strings; a float is accepted only
  -- when it is exactly a decimal (`0.5`; write `"0.68"`). Every order carries a `client_order_id`
  -- and is retried under one idempotency key, so a retry after a lost answer never fills twice;
  -- when the retries run out with the outcome unknown, the error has `maybe_filled = true` and
  -- `client:reconcile(err)` finds out.
  -- @tparam table o the order
  -- @tparam string o.market_id the market's condition id
  -- @tparam string o.side `"BUY"` or `"SELL"`
  -- @tparam string o.outcome `"Yes"`, `"No"`, or an outcome's label (`"Up"`)
  -- @param o.quantity shares (a decimal string, an integer or a `polysim.decimal`); or:
  -- @param o.amount money to spend (market BUY only): shares = amount ÷ `price`, floored to 4
  --   decimals; give exactly one of `quantity` and `amount`
  -- @param o.price required: the worst price per share you accept (also for market orders)
  -- @tparam[opt="market"] string o.order_type `"market"` or `"limit"`
  -- @tparam[opt] string o.time_in_force `"FOK"` (market default), `"FAK"`, `"IOC"`, `"GTC"`,
  --   `"GTD"` (with `expiration`)
  -- @tparam[opt] bool o.post_only a limit order that must rest (never take)
  -- @tparam[opt] int o.expiration Unix seconds (GTD)
  -- @tparam[opt] string o.client_order_id your id for the order (default: a UUID)
  -- @tparam[opt] string o.idempotency_key default: the `client_order_id`
  -- @treturn OrderResult
  -- @treturn[2] nil
  -- @treturn[2] Error err e.g. `LIMIT_PRICE_NOT_MET` (409), `INSUFFICIENT_BALANCE` (400),
  --   `MARKET_CLOSED`; `maybe_filled` when the outcome is unknown
  -- @raise an argument error: a missing field, both or neither of quantity/amount, amount on a
  --   limit or SELL order, an inexact float, an unknown field (did you mean …)
  -- @usage local fill, err = client:place_order{ market_id = id, side = "BUY", outcome = "Yes",
  --   quantity = "10", price = "0.70" }
  function methods:place_order(o)
    local body = order_body("place_order", o)
    local key = o.idempotency_key
    if key ~= nil then check_header_value("place_order", "idempotency_key", check_string("place_order", "idempotency_key", key)) end
    body.client_order_id = body.client_order_id or uuid4()
    key = key or body.client_order_id
    local r, err = self:_call("POST", "/v1/orders", { body = body, idempotency_key = key, order = body.client_order_id })
    if err and err.maybe_filled then err.market_id = body.market_id end
    return r, err
  end

  --- `POST /v1/orders/batch`: several orders in one call; each gets a `client_order_id` when it has
  -- none, so a retried batch executes each order at most once.
  -- @tparam {table,...} list orders as for `place_order`
  -- @treturn table `{results = {…}, succeeded, failed, total}`: HTTP 200 even when some orders
  --   fail (those results have `status = "REJECTED"` or `"ERROR"` and an `error` string)
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error naming the order (`orders[2]: …`)
  function methods:place_orders(list)
    check_table("place_orders", "orders", list)
    if #list == 0 then argerr("place_orders", "orders must not be empty") end
    local orders = core.array {}
    for i, o in ipairs(list) do
      local ok, body = pcall(order_body, "place_orders", o)
      if not ok then
        local msg = tostring(body):gsub("^.-:%d+: ", ""):gsub("^place_orders: ", "place_orders: orders[" .. i .. "]: ")
        argerr(nil, msg)
      end
      body.client_order_id = body.client_order_id or uuid4()
      orders[i] = body
    end
    return self:_call("POST", "/v1/orders/batch", { body = { orders = orders }, retry_safe = true })
  end

  --- Settles an order error whose outcome is unknown (`err.maybe_filled`): looks the order up by its
  -- client order id among the market's orders, newest first.
  -- (`require("polysim.reconcile").settle(client, err, opts)` asks several times for you.)
  -- @tparam Error err an order error carrying `client_order_id` (and `market_id`)
  -- @treturn Order the order as `orders()` lists it: it arrived; `status`, `filled_quantity`,
  --   `fill_price` say how it filled
  -- @treturn[2] false the exchange has no such order: it never arrived, nothing filled
  -- @treturn[3] nil the lookup failed: the outcome is still unknown (ask again later)
  -- @treturn[3] Error lookup_err
  -- @raise an argument error when `err` carries no `client_order_id`
  function methods:reconcile(err)
    if type(err) ~= "table" or type(err.client_order_id) ~= "string" then
      argerr("reconcile", "err must be an order error carrying client_order_id (err.maybe_filled)")
    end
    local coid, market = err.client_order_id, err.market_id
    local ok, found = pcall(function()
      for o in self:orders { market_id = market, page_size = 200 } do
        if o.client_order_id == coid then return o end
      end
      return false
    end)
    if not ok then
      if errors.is_error(found) then return nil, found end
      error(found, 0)
    end
    return found
  end

  --- `GET /v1/orders/{id}`: one order.
  -- @tparam string|int id the `order_id`
  -- @treturn Order
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:order(id)
    return self:_call("GET", "/v1/orders/" .. pathseg("order", "order_id", id, true))
  end

  local STATUSES = { "PENDING", "OPEN", "FILLED", "CANCELLED", "EXPIRED" }   -- OPEN = PENDING (polysim_sdk)
  local ORDERS_OPTS = set { "status", "market_id", "side", "limit", "offset", "cursor", "page_size" }

  --- `GET /v1/orders`: one page of the account's orders.
  -- @tparam[opt] table p
  -- @tparam[opt] string p.status `"PENDING"` (resting; `"OPEN"` is the same), `"FILLED"`,
  --   `"CANCELLED"`, `"EXPIRED"`
  -- @tparam[opt] string p.market_id one market's orders
  -- @tparam[opt] string p.side `"BUY"` or `"SELL"`
  -- @tparam[opt] int p.limit 1–200
  -- @tparam[opt] string p.cursor the page's `next_cursor`
  -- @treturn table `{orders = {Order,…}, next_cursor, …}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:orders_page(p)
    p = check_table("orders_page", "params", p, true)
    check_keys("orders_page", p, ORDERS_OPTS)
    return self:_call("GET", "/v1/orders", { query = {
      status = check_enum("orders_page", "status", p.status, STATUSES, true),
      market_id = check_string("orders_page", "market_id", p.market_id, true),
      side = check_enum("orders_page", "side", p.side, SIDES, true),
      limit = check_int("orders_page", "limit", p.limit, 1, 200),
      offset = check_int("orders_page", "offset", p.offset, 0),
      cursor = check_string("orders_page", "cursor", p.cursor, true),
    } })
  end

  --- Every order matching `p`, newest first, as an iterator (cursor paging).
  -- @tparam[opt] table p
  -- @tparam[opt] string p.status `"PENDING"` (resting; `"OPEN"` is the same), `"FILLED"`,
  --   `"CANCELLED"`, `"EXPIRED"`
  -- @tparam[opt] string p.market_id one market's orders
  -- @tparam[opt] string p.side `"BUY"` or `"SELL"`
  -- @tparam[opt=100] int p.page_size orders per request (1–200)
  -- @treturn func an iterator: `for x in client:orders{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  -- @usage for o in client:orders{ status = "PENDING" } do print(o.order_id, o.price) end
  function methods:orders(p)
    p = check_table("orders", "params", p, true)
    check_keys("orders", p, ORDERS_OPTS)
    local size = p.page_size or p.limit or 100
    check_int("orders", "page_size", size, 1, 200)
    return paginate.cursor(function(cursor)
      local q = {}
      for k, v in pairs(p) do q[k] = v end
      q.page_size, q.limit, q.cursor = nil, size, cursor or p.cursor
      return self:orders_page(q)
    end, "orders")
  end

  --- `DELETE /v1/orders/{id}`: cancels a resting order.
  -- @tparam string|int id the `order_id`
  -- @treturn Order the cancelled order (`status = "CANCELLED"`)
  -- @treturn[2] nil
  -- @treturn[2] Error err e.g. `CANNOT_CANCEL` (400) for a filled order
  function methods:cancel_order(id)
    return self:_call("DELETE", "/v1/orders/" .. pathseg("cancel_order", "order_id", id, true))
  end

  -- Cancelling everything twice is harmless, so these retry like idempotent calls.
  -- The server refuses cancel-all without a confirmation (polysim_sdk/client.py cancel_all sends
  -- X-Confirm-Cancel-All: true); ?confirm=true is the same confirmation in the query, which
  -- needs no header support in _call.

  --- `POST /v1/cancel-all?confirm=true`: cancels every resting order of the account (the server
  -- refuses without the confirmation, which this sends). Retried like an idempotent call:
  -- cancelling twice is harmless.
  -- @treturn table `{canceled = {order ids}, cancelled_count, not_canceled = {[id] = reason},
  --   account_balance}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:cancel_all()
    return self:_call("POST", "/v1/cancel-all", { retry_safe = true, query = { confirm = "true" } })
  end

  --- `DELETE /v1/cancel-market-orders?market=`: cancels the resting orders of one market.
  -- @tparam string market_id
  -- @treturn table as `cancel_all` answers
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:cancel_market_orders(market_id)
    check_string("cancel_market_orders", "market_id", market_id)
    return self:_call("DELETE", "/v1/cancel-market-orders", { query = { market = market_id } })
  end

  local CLOB_TYPES = { "GTC", "FOK", "IOC", "GTD" }
  --- `POST /v1/clob/order`: a Polymarket-shaped order on an outcome token. Retried under its
  -- `client_order_id` like `place_order` (`maybe_filled` likewise).
  -- @tparam table o the order
  -- @tparam string o.token_id the outcome token
  -- @tparam string o.side `"BUY"` or `"SELL"`
  -- @param o.price the limit price
  -- @param o.size shares (`o.quantity` is the same)
  -- @tparam[opt] string o.order_type `"GTC"`, `"FOK"`, `"IOC"` or `"GTD"`
  -- @tparam[opt] int o.expiration Unix seconds (GTD)
  -- @tparam[opt] string o.client_order_id default: a UUID
  -- @treturn table `{success, orderID, status, price, size, side, takingAmount, makingAmount,
  --   errorMsg}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:clob_order(o)
    check_table("clob_order", "order", o)
    check_keys("clob_order", o, set { "token_id", "side", "price", "size", "quantity", "order_type",
      "client_order_id", "expiration" })
    local size = o.size
    if size == nil then size = o.quantity end
    local body = {
      token_id = check_string("clob_order", "token_id", o.token_id),
      side = check_enum("clob_order", "side", o.side, SIDES),
      price = check_number("clob_order", "price", o.price),
      size = check_number("clob_order", "size", size),
      order_type = check_enum("clob_order", "order_type", o.order_type, CLOB_TYPES, true),
      client_order_id = check_header_value("clob_order", "client_order_id",
        check_string("clob_order", "client_order_id", o.client_order_id, true)) or uuid4(),
      expiration = check_int("clob_order", "expiration", o.expiration, 0),
    }
    return self:_call("POST", "/v1/clob/order", { body = body, idempotency_key = body.client_order_id,
      order = body.client_order_id })
  end
end

return _M
