-- The host: `polysim run` as a user runs it (a child process of the built command), and
-- the Lua host object behind it and behind the C embedding API.
local ploop = require "polysim.loop"

local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(path, src)
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a shell script; returns a table of name -> { out = text, status = n } for every
-- `run NAME ARGS...` it made (output of both streams in tmpdir/NAME.out).
local function sh(script)
  local prelude = "cd " .. q(os.getenv("PWD") or ".") .. "\n" ..
    "unset POLYSIM_API_KEY POLYSIM_BASE_URL LD_PRELOAD\n" ..
    "run() { name=$1; shift; timeout --preserve-status -k 5 60 " .. q(EXE) .. " run \"$@\" > " .. q(tmpdir) .. "/$name.out 2>&1; " ..
    "echo $? > " .. q(tmpdir) .. "/$name.rc; }\n"
  assert(os.execute(prelude .. script))
  return setmetatable({}, { __index = function(_, name)
    return { out = slurp(tmpdir .. "/" .. name .. ".out"), status = tonumber(slurp(tmpdir .. "/" .. name .. ".rc")) }
  end })
end

describe("polysim run", function()
  it("runs every example against the local exchange, without errors", function()
    local r = sh [[
      run mr examples/mean_reversion.lua --duration 3 --no-status &
      run mm examples/market_maker.lua --duration 3 --no-status &
      run rb examples/rebalancer.lua --duration 3 --no-status &
      run ud examples/btc_updown.lua --duration 3 --no-status &
      wait
    ]]
    for _, name in ipairs { "mr", "mm", "rb", "ud" } do
      local res = r[name]
      assert.equal(0, res.status, res.out)
      assert.truthy(res.out:find("local exchange at http://127.0.0.1:", 1, true), res.out)
      assert.truthy(res.out:find("stopped (duration)", 1, true), res.out)
      assert.truthy(res.out:find("done: cash [%d,.]+, P&L [-+][%d,.]+, %d+ open positions; %d+ events, %d+ callbacks, 0 errors"),
        res.out)
      -- an error-level line (the level column), not any "ERROR" in a message: a bet in a
      -- window's last minute may be refused as FOK_ORDER_NOT_FILLED_ERROR, which btc_updown
      -- logs as a warning
      assert.falsy(res.out:find("%d ERROR "), res.out)
    end
    assert.truthy(r.mm.out:find("mid 0.%d+: bid"), r.mm.out)
    assert.truthy(r.rb.out:find("round 1: %d+ orders sent"), r.rb.out)
    -- started on a 5-minute boundary, the window it watches has no strike yet (a run at
    -- 08:50:00.119 printed "strike nil" and failed)
    assert.truthy(r.ud.out:find("watching 0x%x+ %(.-%), strike [%d.]+") or
      r.ud.out:find("watching 0x%x+ %(.-%), strike set when it opens"), r.ud.out)
    assert.falsy(r.ud.out:find("strike nil", 1, true), r.ud.out)
  end)

  it("stops cleanly on SIGTERM and SIGINT: on_stop runs, open orders are cancelled", function()
    local src = [[
      return {
        cancel_on_stop = true,
        on_start = function(ctx)
          for m in ctx.client:markets { limit = 1 } do
            assert(ctx.client:place_order { market_id = m.condition_id, side = "BUY", outcome = m.outcomes[1],
              order_type = "limit", quantity = 5, price = "0.01" })
            break
          end
          ctx.log.info("order resting")
        end,
        on_stop = function(ctx, reason) ctx.log.info("on_stop saw " .. reason) end,
      }
    ]]
    local term = write(tmpdir .. "/resting_term.lua", src)
    local int = write(tmpdir .. "/resting_int.lua", src)
    local r = sh(([[
      run term %s --no-status &
      run int %s --no-status &
      sleep 1.5
      pkill -TERM -f '^[^ ]*/polysim run .*/resting_term.lua'
      pkill -INT -f '^[^ ]*/polysim run .*/resting_int.lua'
      wait
    ]]):format(q(term), q(int)))
    for name, sig in pairs { term = "SIGTERM", int = "SIGINT" } do
      local res = r[name]
      assert.equal(0, res.status, res.out)
      assert.truthy(res.out:find("order resting", 1, true), res.out)
      assert.truthy(res.out:find("on_stop saw " .. sig, 1, true), res.out)
      assert.truthy(res.out:find("cancelled open orders (1)", 1, true), res.out)
      assert.truthy(res.out:find("stopped (" .. sig .. ")", 1, true), res.out)
    end
  end)

  it("runs several strategies in one host: own state, orders, P&L line; one's errors touch no other", function()
    local function src(name, price, extra)
      return ([[
        return {
          name = %q, cancel_on_stop = true,
          on_start = function(ctx)
            for m in ctx.client:markets { limit = 1 } do
              ctx.state.order = assert(ctx.client:place_order { market_id = m.condition_id, side = "BUY",
                outcome = m.outcomes[1], order_type = "limit", quantity = 5, price = %q })
              break
            end
            ctx.state.ticks = 0
            ctx:every(0.1, function(c) c.state.ticks = c.state.ticks + 1 %s end)
          end,
          on_stop = function(ctx) ctx.log.info("%%s ticked %%d", ctx.name, ctx.state.ticks) end,
        }
      ]]):format(name, price, extra)
    end
    local a = write(tmpdir .. "/multi_a.lua", src("alpha", "0.01", "error('alpha breaks')"))
    local b = write(tmpdir .. "/multi_b.lua", src("beta", "0.02", ""))
    local r = sh(([[run multi %s %s --duration 2 --no-status]]):format(q(a), q(b)))
    local out = r.multi.out
    assert.equal(0, r.multi.status, out)
    assert.truthy(out:find("[alpha] started", 1, true), out)
    assert.truthy(out:find("[beta] started", 1, true), out)
    assert.truthy(out:find("alpha breaks", 1, true), out)
    assert.truthy(out:find("beta ticked [1-9]%d*"), out) -- beta's timers went on beside alpha's errors
    assert.truthy(out:find("%[alpha%] cancelled open orders %(1%)"), out)
    assert.truthy(out:find("%[beta%] cancelled open orders %(1%)"), out)
    assert.truthy(out:find("alpha: own orders 1 placed, 0 filled, 1 cancelled, 0 open; own P&L [-+][%d.,]+; %d+ events, [1-9]%d* errors"), out)
    assert.truthy(out:find("beta: own orders 1 placed, 0 filled, 1 cancelled, 0 open; own P&L [-+][%d.,]+; %d+ events, 0 errors"), out)
  end)

  it("reloads one of several strategies without touching the others", function()
    local a = write(tmpdir .. "/multi_ra.lua", [[
      return { name = "ra", on_start = function(ctx) ctx.state.n = 1 end,
               on_reload = function(ctx, old) ctx.state.n = old.n + 1; ctx.log.info("ra reloaded: n = %d", ctx.state.n) end }
    ]])
    local b = write(tmpdir .. "/multi_rb.lua", [[
      return { name = "rb", on_start = function(ctx) ctx.state.n = 0; ctx:every(0.1, function(c) c.state.n = c.state.n + 1 end) end,
               on_stop = function(ctx) ctx.log.info("rb v%d ticked %d", ctx.version, ctx.state.n) end }
    ]])
    local r = sh(([[
      run mr %s %s --duration 3 --no-status &
      sleep 1.2
      printf 'return {' > %s.tmp && mv %s.tmp %s
      sleep 0.5
      printf 'return { name = "ra", on_reload = function(ctx, old) ctx.log.info("ra v3 from n = %%%%d", old.n) end }' > %s.tmp && mv %s.tmp %s
      wait
    ]]):format(q(a), q(b), q(a), q(a), q(a), q(a), q(a), q(a)))
    local out = r.mr.out
    assert.equal(0, r.mr.status, out)
    assert.truthy(out:find("ra v3 from n = 1", 1, true), out)   -- the broken save left v1 running
    assert.truthy(out:find("rb v1 ticked [1-9]"), out)           -- rb never reloaded, kept ticking
    local line = "%s: own orders 0 placed, 0 filled, 0 cancelled, 0 open; own P&L [-+][%%d.,]+; %%d+ events, " ..
      "0 errors, %s reloads %%(%s failed%%)"
    assert.truthy(out:find(line:format("rb", 0, 0)), out)
    assert.truthy(out:find(line:format("ra", 1, 1)), out)
  end)

  it("reloads the strategy when it is saved, keeping its state", function()
    local path = tmpdir .. "/live.lua"
    local src = [[
      return {
        on_start = function(ctx) ctx.state.n = 1; ctx.log.info("v1 started") end,
        on_reload = function(ctx, old) ctx.state.n = old.n + 1; ctx.log.info("%s: n = %d", WHO, ctx.state.n) end,
      }
    ]]
    write(path, src)
    local r = sh(([[
      run live %s --duration 3 --no-status &
      sleep 1.2
      printf '%%s' "WHO = 'second'" > %s.tmp && cat %s >> %s.tmp && mv %s.tmp %s
      wait
    ]]):format(q(path), q(path), q(path), q(path), q(path), q(path)))
    local res = r.live
    assert.equal(0, res.status, res.out)
    assert.truthy(res.out:find("v1 %-> v2 in %d+%.%d ms"), res.out)
    assert.truthy(res.out:find("second: n = 2", 1, true), res.out)
  end)

  it("refuses bad usage (2) and broken strategies (1) with a clear message", function()
    local broken = write(tmpdir .. "/broken.lua", "return {\n  on_start = function(ctx) end end\n}\n")
    local r = sh(([[
      run none
      run unknown x.lua --frobnicate 1
      run missing /nonexistent/strategy.lua
      run broken %s --no-status
    ]]):format(q(broken)))
    assert.equal(2, r.none.status)
    assert.truthy(r.none.out:find("give a strategy file (or several)", 1, true), r.none.out)
    assert.equal(2, r.unknown.status)
    assert.truthy(r.unknown.out:find("unknown option --frobnicate", 1, true))
    assert.equal(2, r.missing.status)
    assert.equal(1, r.broken.status, r.broken.out)
    assert.truthy(r.broken.out:find("broken.lua:2:", 1, true), r.broken.out)
  end)
end)

describe("host object", function()
  it("loads, steps, stops and closes a strategy on an in-process exchange", function()
    local host = require "polysim.host"
    local lines = {}
    local h = assert(host.new { local_exchange = true, status = "plain", status_interval = 0.1, hot_reload = false,
      log_sink = function(line) lines[#lines + 1] = line end })
    assert.truthy(h.base_url:find("^http://127%.0%.0%.1:%d+$"))
    assert.equal("integer", math.type(h:fd()))
    local path = write(tmpdir .. "/obj.lua", [[
      return { on_start = function(ctx) ctx.state.bal = assert(ctx.client:balance()).balance end }
    ]])
    assert.is_true(h:load(path))
    assert.equal("10000.00", h.rt.state.bal)
    local n = #lines
    ploop.run_until(function()
      h:step(0.05)
      for i = n + 1, #lines do if lines[i]:find("cash 10,000.00 | P&L +0.00 | positions 0", 1, true) then return true end end
    end, 3)
    assert.truthy(lines[#lines]:find("cash 10,000.00", 1, true), lines[#lines])
    assert.is_number(h:timeout())
    assert.equal(0, (h:c_step(0)))
    assert.is_true(h:stop("spec", 5))
    assert.equal(1, (h:c_step(0)))
    assert.is_true(h:done())
    h:close()
    h:close()
  end)

  for _, mode in ipairs { "streams", "polling" } do
    it("feeds prices and fills to the strategy through " .. mode, function()
      local strategy = require "polysim.strategy"
      strategy.poll_only = mode == "polling"
      local host = require "polysim.host"
      local h = assert(host.new { local_exchange = true, status = false, hot_reload = false, tick = 0.1,
        log_sink = function() end })
      local path = write(tmpdir .. "/feed_" .. mode .. ".lua", [[
        return {
          on_start = function(ctx)
            ctx.state.prices, ctx.state.fills = 0, 0
            local ids = {}
            for m in ctx.client:markets { limit = 10 } do
              if m.outcomes[1] == "Yes" then ids[#ids + 1] = m.condition_id end
              if #ids == 5 then break end
            end
            ctx:subscribe(ids)
            ctx:after(0.3, function(c)
              assert(c.client:place_order { market_id = ids[1], side = "BUY", outcome = "Yes",
                quantity = 5, price = "0.99" })
            end)
          end,
          on_price = function(ctx, msg)
            assert(msg.type == "price" and msg.market_id and msg.buy)
            ctx.state.prices = ctx.state.prices + 1
          end,
          on_fill = function(ctx, fill)
            assert(fill.type == "fill" and fill.side == "BUY" and fill.quantity)
            ctx.state.fills = ctx.state.fills + 1
          end,
        }
      ]])
      local ok, err = pcall(function()
        assert(h:load(path))
        local st = h.rt.state
        ploop.run_until(function() return st.prices >= 3 and st.fills >= 1 end, 8)
        assert.is_true(st.prices >= 3, "price events: " .. st.prices)
        assert.equal(1, st.fills)
      end)
      strategy.poll_only = nil
      h:close()
      assert(ok, err)
    end)
  end
end)
