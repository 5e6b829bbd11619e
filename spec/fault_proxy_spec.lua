-- Orders through a seeded fault proxy (spec/fault_proxy.c) in front of the local exchange
-- (issue 10 item 3): answers lost after the order was forwarded, connections closed before
-- it was, resets half-way through an answer, delays. The exchange's own record (orders and
-- trades per client order id) is the truth every client-side answer is checked against.
local H = require "helper"
local fp = require "fault_proxy"
local polysim = require "polysim"
local ploop = require "polysim.loop"
local reconcile = require "polysim.reconcile"
local strategy = require "polysim.strategy"

local BIG = 1e9
local ORDER = { side = "BUY", outcome = "Yes", quantity = 5, price = "0.99" }

local function order(market, extra)
  local o = { market_id = market }
  for k, v in pairs(ORDER) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local describe_fp = fp.available() and describe or pending

describe_fp("orders through a fault proxy", function()
  local srv, ex, market, proxy

  before_each(function()
    srv = H.exchange { tick = 0.2, tiers = { pro = { per_second = BIG, per_minute = BIG } } }
    ex = srv.exchange
    assert(ex:set_balance(srv.api_key, "10000000"))
    market = ex:pick_market { binary = true, state = "open" }
  end)

  after_each(function()
    if proxy then proxy:close(); proxy = nil end
    srv:close()
    collectgarbage()
  end)

  local function client(opts)
    local o = { base_url = proxy.base_url, api_key = srv.api_key, retry_base = 0.001, retry_cap = 0.01,
                timeout = 10 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return polysim.new(o)
  end

  -- Checks the exchange's record: no client order id has two orders or two fills.
  local function no_duplicates(ledger)
    local n = 0
    for coid, e in pairs(ledger) do
      n = n + 1
      assert(e.orders == 1, coid .. " has " .. e.orders .. " orders")
      assert(e.fills <= 1, coid .. " filled " .. e.fills .. " times")
    end
    return n
  end

  it("errors say maybe_filled, and reconcile resolves each to the exchange's record", function()
    proxy = fp.start { upstream = srv, seed = 11, rate = 0.5, delay_ms = 5 }
    local c = client { max_retries = 0 } -- every fault reaches the caller
    local errs, placed = {}, 0
    for _ = 1, 120 do
      local r, err = c:place_order(order(market))
      if r then placed = placed + 1
      else
        assert.is_true(err.maybe_filled, tostring(err))
        assert.is_string(err.client_order_id)
        assert.equal(err.client_order_id, err.idempotency_key)
        assert.equal(market, err.market_id)
        errs[#errs + 1] = err
      end
    end
    local st = proxy:stats()
    assert.is_true(st.drop_after > 0 and st.drop_before > 0 and st.reset > 0 and st.delay > 0)
    assert.is_true(#errs > 0 and placed > 0)
    local ledger = fp.ledger(fp.user_of(ex))
    local filled, absent = 0, 0
    local lookups = client { max_retries = 6 } -- lookups go through the faults too
    for _, err in ipairs(errs) do
      local found, lerr
      for _ = 1, 10 do -- client:reconcile itself; nil: the lookup failed, ask again
        found, lerr = lookups:reconcile(err)
        if found ~= nil then break end
      end
      assert(found ~= nil, tostring(lerr))
      local truth = ledger[err.client_order_id]
      if truth then
        filled = filled + 1
        assert.equal(err.client_order_id, found.client_order_id)
        assert.equal(truth.order.id, found.order_id)
        assert.equal("FILLED", found.status)
        assert.equal(1, truth.fills)
      else
        absent = absent + 1
        assert.is_false(found)
      end
    end
    -- The seed gives both kinds: answers lost after the order filled, and orders never sent.
    assert.is_true(filled > 0, "no maybe_filled error had filled")
    assert.is_true(absent > 0, "every maybe_filled error had filled")
    assert.equal(placed + filled, no_duplicates(ledger))
  end)

  it("never fills an order twice, however often its retries go out (concurrent tasks)", function()
    proxy = fp.start { upstream = srv, seed = 5, rate = 0.4, delay_ms = 5 }
    local c = client { max_retries = 4 }
    local results, tasks = {}, {}
    for t = 1, 8 do
      tasks[t] = ploop.spawn(function()
        for i = 1, 25 do
          local coid = string.format("t%d-%d", t, i)
          local r, err = c:place_order(order(market, { client_order_id = coid }))
          results[coid] = { r = r, err = err }
        end
      end)
    end
    for _, t in ipairs(tasks) do ploop.join(t) end
    assert.is_true(c:stats().retries > 0)
    local ledger = fp.ledger(fp.user_of(ex))
    local arrived, lookups = 0, client { max_retries = 6 }
    for coid, res in pairs(results) do
      local truth = ledger[coid]
      if truth then arrived = arrived + 1 end
      if res.r then
        assert(truth, coid)
        assert.equal(1, truth.fills, coid)
        assert.equal(truth.order.id, res.r.order_id)
      else
        assert.is_true(res.err.maybe_filled, tostring(res.err))
        local found, lerr = reconcile.settle(lookups, res.err, { pause = 0.001 })
        assert(found ~= nil, tostring(lerr))
        if truth then assert.equal(truth.order.id, found.order_id) else assert.is_false(found) end
      end
    end
    assert.equal(arrived, no_duplicates(ledger))
  end)

  it("the strategy host reports a failed order only when it never arrived", function()
    proxy = fp.start { upstream = srv, seed = 23, rate = 0.6, delay_ms = 5 }
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local path = dir .. "/orders.lua"
    local f = assert(io.open(path, "w"))
    f:write [[
      return {
        name = "orders",
        on_start = function(ctx)
          local out = {}
          ctx.state.results = out
          for i = 1, tonumber(ctx.params.n) do
            local r, err = ctx.client:place_order { market_id = ctx.params.market, side = "BUY",
              outcome = "Yes", quantity = 5, price = "0.99", client_order_id = "o" .. i }
            out[i] = r and { ok = true, coid = r.client_order_id, status = r.status, id = r.order_id }
              or { ok = false, coid = err.client_order_id, maybe_filled = err.maybe_filled,
                   reconciled = err.reconciled, code = err.code }
          end
          ctx.state.done = true
        end,
      }
    ]]
    f:close()
    local lines = {}
    local rt = strategy.new { client = client { max_retries = 0 }, feed = false, budget = false,
      params = { market = market, n = "400" }, log_sink = function(line) lines[#lines + 1] = line end }
    -- The host's lookups share the strategy's client (no retries here, so every fault shows):
    -- more of them and shorter pauses than by default, so that none stays unknown.
    local pause, attempts = reconcile.PAUSE, reconcile.ATTEMPTS
    reconcile.PAUSE, reconcile.ATTEMPTS = 0.005, 20
    ploop.spawn(function() assert(rt:start(path)) end)
    local done = ploop.run_until(function() return rt.state.done end, 120)
    reconcile.PAUSE, reconcile.ATTEMPTS = pause, attempts
    assert(done, "the strategy did not finish")
    rt:stop()
    os.remove(path)
    os.remove(dir)
    local ledger = fp.ledger(fp.user_of(ex))
    local reported, failures = 0, 0
    for i, r in ipairs(rt.state.results) do
      assert.is_string(r.coid, "result " .. i)
      local truth = ledger[r.coid]
      if r.ok then
        reported = reported + 1
        assert(truth, r.coid .. " was returned as an order but the exchange has none")
        assert.equal(truth.order.id, r.id)
      else
        failures = failures + 1
        assert(not truth, r.coid .. " arrived (and filled) but was reported to the strategy as failed")
        assert.is_false(r.maybe_filled)
        assert.equal("not_found", r.reconciled)
      end
    end
    assert.equal(400, reported + failures)
    assert.is_true(failures > 0, "the seed should have kept some orders from arriving")
    assert.equal(reported, no_duplicates(ledger))
    -- and it did settle some orders whose answers were lost
    local settled = 0
    for _, l in ipairs(lines) do
      if l:find("but the order arrived", 1, true) then settled = settled + 1 end
    end
    assert.is_true(settled > 0, "no lost answer was reconciled")
  end)
end)

describe("maybe_filled", function()
  local server, calls
  before_each(function()
    calls = 0
    server = H.fixture(function()
      calls = calls + 1
      if calls == 1 then return { drop = true } end -- the first answer is lost: it may have filled
      return { status = 429, headers = { ["Retry-After"] = "0" }, body = '{"error":"RATE_LIMITED"}' }
    end)
  end)
  after_each(function() server:close() end)

  it("is kept when the last try was refused with a 429 after an earlier answer was lost", function()
    local c = polysim.new { base_url = H.url(server), api_key = "ps_live_" .. ("0"):rep(64), max_retries = 1,
      retry_base = 0.001, sleep = function() end }
    local r, err = c:place_order { market_id = "m1", side = "BUY", outcome = "Yes", quantity = 5, price = "0.5" }
    assert.is_nil(r)
    assert.equal(2, calls)
    assert.equal(429, err.status)
    assert.is_true(err.maybe_filled) -- the 429 says only that the second try did nothing
    assert.is_string(err.client_order_id)
  end)
end)
