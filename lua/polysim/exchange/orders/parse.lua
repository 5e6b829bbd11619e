-- Parsing and validating an order request (the JSON and CLOB shapes) into a normalized
-- spec, and its fingerprint for idempotency (polysim.exchange.orders' header: the semantics).
local fixed = require "polysim.exchange.fixed"
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local markets = require "polysim.exchange.markets"

local _M = {}

local ONE = fixed.P
local absent = util.absent
local fmt_price, fmt_money = fixed.price, fixed.money
local item = errors.item

local MAX_QTY = 10000000 * ONE          -- 10 million shares
local MAX_AMOUNT = 100000000 * fixed.M  -- $100 million

local TIFS = { GTC = "GTC", GTD = "GTD", FOK = "FOK", FAK = "IOC", IOC = "IOC" }

-- Validation -------------------------------------------------------------------------------

local function num_item(loc, v, reason, what)
  if reason == "type" then
    return item(loc, "Input should be a valid decimal string", "decimal_type", v)
  elseif reason == "precision" then
    return item(loc, "Decimal input should have no more than 4 decimal places", "decimal_max_places", v)
  elseif reason == "range" then
    return item(loc, what .. " is out of range", "less_than_equal", v)
  end
  return item(loc, "Input should be a valid decimal", "decimal_parsing", v)
end

local function str_field(j, name, items, opts, loc0)
  local v = j[name]
  if absent(v) then
    if opts.required then items[#items + 1] = item({ loc0, name }, "Field required", "missing") end
    return nil
  end
  if type(v) ~= "string" then
    items[#items + 1] = item({ loc0, name }, "Input should be a valid string", "string_type", v)
    return nil
  end
  if opts.max and #v > opts.max then
    items[#items + 1] = item({ loc0, name }, "String should have at most " .. opts.max .. " characters",
        "string_too_long")
    return nil
  end
  return v
end

local function code_for(items)
  local f = items[1] and items[1].loc[#items[1].loc]
  if f == "price" then return "INVALID_PRICE" end
  if f == "quantity" or f == "amount" or f == "size" then return "INVALID_QUANTITY" end
  return "VALIDATION_ERROR"
end

--- parse(j, now, clob): a normalized order spec from a decoded request body, or nil and a
--- 422/400 response. clob = true reads the CLOB shape (token_id, size, order_type GTC/...).
function _M.parse(j, now, U, clob)
  if type(j) ~= "table" or util.is_array(j) or j[1] ~= nil then
    return nil, errors.validation({ item({ "body" }, "Input should be a valid dictionary or object",
        "model_attributes_type") })
  end
  local items = {}
  local s = {}
  if clob then
    local tok = str_field(j, "token_id", items, { required = true, max = 256 }, "body")
    if tok then
      local m, idx = markets.resolve_token(U, tok)
      if m then s.market_id = m.condition_id; s.outcome = m.outcomes[idx].label
      else s.unknown_token = tok end
    end
  else
    s.market_id = str_field(j, "market_id", items, { required = true, max = 256 }, "body")
    s.outcome = str_field(j, "outcome", items, { required = true, max = 200 }, "body")
  end
  local side = j.side
  if absent(side) then items[#items + 1] = item({ "body", "side" }, "Field required", "missing")
  elseif side ~= "BUY" and side ~= "SELL" then
    items[#items + 1] = item({ "body", "side" }, "Input should be 'BUY' or 'SELL'", "enum", side)
  else s.side = side end
  -- order type and time in force
  if clob then
    local ot = j.order_type
    if absent(ot) then ot = "GTC" end
    if ot ~= "GTC" and ot ~= "FOK" and ot ~= "IOC" and ot ~= "GTD" and ot ~= "FAK" then
      items[#items + 1] = item({ "body", "order_type" }, "Input should be 'GTC', 'FOK', 'IOC' or 'GTD'", "enum", ot)
    else s.order_type, s.tif = "limit", TIFS[ot] end
  else
    local ot = j.order_type
    if absent(ot) then ot = "market" end
    if ot ~= "market" and ot ~= "limit" then
      items[#items + 1] = item({ "body", "order_type" }, "Input should be 'market' or 'limit'", "enum", ot)
    else s.order_type = ot end
    local tif = j.time_in_force
    if not absent(tif) then
      if type(tif) ~= "string" or not TIFS[tif] then
        items[#items + 1] = item({ "body", "time_in_force" },
          "Input should be 'GTC', 'GTD', 'FOK', 'FAK' or 'IOC'", "enum", tif)
      else s.tif = TIFS[tif] end
    end
  end
  -- price
  local pv = j.price
  if not absent(pv) then
    local p, why = fixed.coerce(pv, 4)
    if not p then items[#items + 1] = num_item({ "body", "price" }, pv, why, "price")
    elseif p <= 0 then items[#items + 1] = item({ "body", "price" }, "Input should be greater than 0", "greater_than",
        pv)
    elseif p >= ONE then items[#items + 1] = item({ "body", "price" }, "Input should be less than 1", "less_than", pv)
    else s.price = p end
  end
  -- quantity / size / amount
  local qname = "quantity"
  local qv = j.quantity
  if clob and absent(qv) then qv = j.size; qname = "size" end
  local av = (not clob) and j.amount or nil
  if not absent(qv) and not absent(av) then
    items[#items + 1] = item({ "body", "amount" }, "Send quantity or amount, not both", "value_error")
  elseif not absent(qv) then
    local q, why = fixed.coerce(qv, 4)
    if not q then items[#items + 1] = num_item({ "body", qname }, qv, why, "quantity")
    elseif q <= 0 then items[#items + 1] = item({ "body", qname }, "Input should be greater than 0", "greater_than", qv)
    elseif q > MAX_QTY then items[#items + 1] = item({ "body", qname },
        "Input should be less than or equal to 10000000", "less_than_equal", qv)
    else s.quantity = q end
  elseif not absent(av) then
    local a, why = fixed.coerce(av, 8)
    if not a then items[#items + 1] = num_item({ "body", "amount" }, av, why, "amount")
    elseif a <= 0 then items[#items + 1] = item({ "body", "amount" }, "Input should be greater than 0",
        "greater_than", av)
    elseif a > MAX_AMOUNT then items[#items + 1] = item({ "body", "amount" }, "amount is too large",
        "less_than_equal", av)
    else s.amount = a end
  else
    items[#items + 1] = item({ "body", qname }, "Field required", "missing")
  end
  -- flags
  local po = j.post_only
  if absent(po) or po == false or po == "false" then s.post_only = false
  elseif po == true or po == "true" then s.post_only = true
  else items[#items + 1] = item({ "body", "post_only" }, "Input should be a valid boolean", "bool_type", po) end
  local ex = j.expiration
  if not absent(ex) and ex ~= 0 and ex ~= "0" then
    local e = fixed.coerce(ex, 0)
    if not e then items[#items + 1] = item({ "body", "expiration" }, "Input should be a valid integer", "int_parsing",
        ex)
    else s.expiration = e end
  end
  local coid = j.client_order_id
  if not absent(coid) then
    if type(coid) ~= "string" and math.type(coid) ~= "integer" then
      items[#items + 1] = item({ "body", "client_order_id" }, "Input should be a valid string", "string_type", coid)
    elseif type(coid) == "string" and not util.valid_utf8(coid) then
      items[#items + 1] = item({ "body", "client_order_id" }, "Input should be a valid UTF-8 string", "string_unicode")
    elseif #tostring(coid) > 256 then
      items[#items + 1] = item({ "body", "client_order_id" }, "String should have at most 256 characters",
          "string_too_long")
    else s.client_order_id = tostring(coid) end
  end
  if #items > 0 then return nil, errors.validation(items, code_for(items)) end
  -- cross-field rules
  local market = s.order_type == "market"
  if not s.price then
    return nil, errors.api(400, "PRICE_REQUIRED", market and
      "Market orders need `price`: the worst price you accept (BUY never fills above it, SELL never below)"
      or "Limit orders need `price`")
  end
  if market then
    if s.tif == nil or s.tif == "GTC" or s.tif == "GTD" then s.tif = "FOK" end
  else
    s.tif = s.tif or "GTC"
    if s.expiration and s.tif == "GTC" then s.tif = "GTD" end
    if s.tif == "GTD" and not s.expiration then
      return nil, errors.validation({ item({ "body", "expiration" }, "GTD orders need an expiration (unix seconds)",
          "missing") })
    end
  end
  if s.expiration and s.tif == "GTD" and s.expiration <= now then
    return nil, errors.validation({ item({ "body", "expiration" }, "Expiration must be in the future", "greater_than",
        s.expiration) })
  end
  if s.amount then
    if not market or s.side ~= "BUY" then
      return nil, errors.validation({ item({ "body", "amount" }, "amount is accepted on market BUY orders only",
          "value_error") }, "INVALID_QUANTITY")
    end
    s.quantity = s.amount // s.price      -- money (1e-8) / price (1e-4) = shares at 1e-4, floored
    if s.quantity > MAX_QTY then
      return nil, errors.validation({ item({ "body", "amount" }, "amount buys more than 10000000 shares at this price",
        "less_than_equal") }, "INVALID_QUANTITY")
    end
    if s.quantity <= 0 then
      return nil, errors.api(400, "INVALID_QUANTITY", "amount buys less than 0.0001 shares at this price",
        { amount = fmt_money(s.amount), price = fmt_price(s.price) })
    end
  end
  if s.post_only and (s.tif == "FOK" or s.tif == "IOC" or market) then
    return nil, errors.validation({ item({ "body", "post_only" }, "post_only needs a GTC or GTD limit order",
        "value_error") })
  end
  return s
end

--- fingerprint(s): canonical text of the parameters, for idempotency.
-- perf (issue 13): one string.format, whose %s is tostring's text for every value (nil,
-- booleans and numbers included), so the text is the one table.concat of the tostrings made;
-- without the table and the five tostring calls it costs ~3.6k instructions where it cost
-- 8.6k (callgrind, in-process keyed orders).
local FP = ("%s|"):rep(10) .. "%s"
function _M.fingerprint(s)
  return FP:format(s.market_id or s.unknown_token or "", s.side, s.outcome or "", s.order_type,
    s.tif, s.price, s.quantity, s.amount or "", s.post_only, s.expiration or "", s.client_order_id or "")
end

return _M
