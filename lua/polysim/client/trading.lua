-- Client methods that trade: placing (one, a batch, CLOB-shaped), reconciling an order whose
-- outcome is unknown, listing and cancelling orders. Mixed into the client's methods table by
-- polysim.client (install).
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

  -- place_order{ market_id, side, outcome, quantity | amount, price, order_type, ... }
  -- Every order carries a client_order_id (a UUID when none is given) and is retried under one
  -- idempotency key (idempotency_key, else the client_order_id), so a retry after a lost
  -- answer can never fill twice; when the retries run out with the outcome unknown, the error
  -- says maybe_filled = true and client:reconcile(err) finds out.
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

  -- place_orders{ order, order, ... }: one batch call; every order without a client_order_id
  -- gets one, so that a retried batch executes each order at most once.
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

  -- reconcile(err): settles an order error whose outcome is unknown (err.maybe_filled) by
  -- looking the order up by its client order id among the market's orders (newest first).
  -- Returns the order (its status says whether and how it filled), or false when the
  -- exchange has no such order (it never arrived: nothing filled), or nil, lookup_err when the
  -- lookup itself failed (the outcome is still unknown; call again later).
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

  function methods:order(id)
    return self:_call("GET", "/v1/orders/" .. pathseg("order", "order_id", id, true))
  end

  local STATUSES = { "PENDING", "OPEN", "FILLED", "CANCELLED", "EXPIRED" }   -- OPEN = PENDING (polysim_sdk)
  local ORDERS_OPTS = set { "status", "market_id", "side", "limit", "offset", "cursor", "page_size" }

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

  -- Iterates over every order matching p, following next_cursor.
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

  function methods:cancel_order(id)
    return self:_call("DELETE", "/v1/orders/" .. pathseg("cancel_order", "order_id", id, true))
  end

  -- Cancelling everything twice is harmless, so these retry like idempotent calls.
  -- The server refuses cancel-all without a confirmation (polysim_sdk/client.py cancel_all sends
  -- X-Confirm-Cancel-All: true); ?confirm=true is the same confirmation in the query, which
  -- needs no header support in _call.
  function methods:cancel_all()
    return self:_call("POST", "/v1/cancel-all", { retry_safe = true, query = { confirm = "true" } })
  end

  function methods:cancel_market_orders(market_id)
    check_string("cancel_market_orders", "market_id", market_id)
    return self:_call("DELETE", "/v1/cancel-market-orders", { query = { market = market_id } })
  end

  local CLOB_TYPES = { "GTC", "FOK", "IOC", "GTD" }
  -- clob_order{ token_id, side, price, size, order_type, client_order_id }: Polymarket-shaped.
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
