-- Argument errors are reported at the caller's line, not inside the library, and a
-- misspelled option names the nearest known one (issue 11). polysim.opts is the one
-- implementation the client, the streams, the runtime and the cli share.
local polysim = require "polysim"
local opts = require "polysim.opts"
local H = require "helper"

-- Calls fn and returns its error message and the line fn's raising call was on.
local function error_of(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function here() return debug.getinfo(2, "l").currentline end

describe("polysim.opts", function()
  it("suggests the nearest known name for a near miss", function()
    assert.equal("quantity", opts.suggest("quantiy", { "quantity", "price", "side" }))
    assert.equal("cancel_on_stop", opts.suggest("cancel_on_stp", { cancel_on_stop = true, name = true }))
    assert.equal("price", opts.suggest("prcie", { "quantity", "price" }))
    assert.is_nil(opts.suggest("zebra", { "quantity", "price" }))
  end)

  it("check raises at the level given, counted from its caller", function()
    local line
    local function api(t) opts.check("api", t, { quantity = true }, 2) end
    local err = error_of(function() line = here(); api { quantiy = 1 } end)
    assert.matches("client_opts_spec.lua:" .. line .. ": api: unknown option 'quantiy' %(did you mean `quantity`%?%)", err)
  end)

  it("check takes a list of known names and rejects a non-table", function()
    assert.has_no.errors(function() opts.check("f", { a = 1 }, { "a", "b" }) end)
    assert.has_no.errors(function() opts.check("f", nil, { "a" }) end)
    H.raises("f: options must be a table, got number", opts.check, "f", 5, { "a" })
    H.raises("f: unknown option 'zz'", opts.check, "f", { zz = 1 }, { "a" })
  end)
end)

describe("client argument errors", function()
  local client = polysim.new { base_url = "http://127.0.0.1:9", api_key = "k", max_retries = 0 }
  local order = { market_id = "0xabc", side = "BUY", outcome = "Yes", quantiy = 10, price = "0.5" }

  it("point at the caller's line, with a suggestion", function()
    local line
    local err = error_of(function() line = here(); client:place_order(order) end)
    assert.matches("^[^\n]*client_opts_spec.lua:" .. line .. ": place_order: unknown option 'quantiy' %(did you mean `quantity`%?%)$", err)
  end)

  it("point at the caller's line for checks made deep inside (values, batches, new)", function()
    local line
    local bad = { market_id = "m", side = "buy", outcome = "Yes", quantity = 1, price = "0.5" }
    local err = error_of(function() line = here(); client:place_order(bad) end)
    assert.matches("client_opts_spec.lua:" .. line .. ": place_order: side must be", err)
    err = error_of(function() line = here(); client:place_orders { { market_id = "m", side = "HOLD" } } end)
    assert.matches("client_opts_spec.lua:" .. line .. ": place_orders: orders%[1%]: side must be", err)
    err = error_of(function() line = here(); polysim.new { apikey = "x" } end)
    assert.matches("client_opts_spec.lua:" .. line .. ": new: unknown option 'apikey' %(did you mean `api_key`%?%)", err)
    err = error_of(function() line = here(); client:prices_stream { market = { "a" } } end)
    assert.matches("client_opts_spec.lua:" .. line .. ": prices_stream: unknown option 'market' %(did you mean `markets`%?%)", err)
  end)

  it("client:market(42) is an argument error, not an index error", function()
    local line
    local err = error_of(function() line = here(); client:market(42) end)
    assert.matches("client_opts_spec.lua:" .. line .. ": market: condition_id must be a non%-empty string", err)
    H.raises("order: order_id must be a non-empty string or an integer", client.order, client, {})
  end)
end)
