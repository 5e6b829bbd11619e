-- The SIGINT/SIGTERM watchdog (issue 10 item 1, src/signals.c): `polysim run` stops within a
-- bounded time whatever its strategy is stuck in. A loop the hook can reach (budget off, in
-- the strategy's own coroutine, after it tried debug.sethook) is interrupted ("stopped by
-- SIGTERM"), then the host stops as usual: on_stop runs, the own orders are cancelled. A loop
-- no hook reaches (a __gc finalizer assigned after setmetatable) ends with the hard exit's
-- line. Only that it exits and what it printed are asserted, no timing beyond a generous cap.
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(name, src)
  local path = tmpdir .. "/" .. name .. ".lua"
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

-- The strategy places a resting order, then every 0.2 s runs `stuck` (Lua source) after
-- logging "stuck now"; on_stop says it ran.
local function strategy(stuck)
  return ([[
    return {
      cancel_on_stop = true,
      on_start = function(ctx)
        for m in ctx.client:markets { limit = 1 } do
          assert(ctx.client:place_order { market_id = m.condition_id, side = "BUY", outcome = m.outcomes[1],
            order_type = "limit", quantity = 5, price = "0.01" })
          break
        end
        ctx:every(0.2, function(c)
          c.log.info("stuck now")
          %s
        end)
      end,
      on_stop = function(ctx, reason) ctx.log.info("on_stop ran (" .. reason .. ")") end,
    }
  ]]):format(stuck)
end

-- Starts every case at once; once a case printed "stuck now", sends it SIGTERM; then gives
-- each 25 s to exit (the hard exit comes 10 s after the signal). Returns name -> { out =, status = n | nil (had to be killed) }.
local function run_all(cases)
  local script = { "cd " .. q(os.getenv("PWD") or "."), "unset POLYSIM_API_KEY POLYSIM_BASE_URL LD_PRELOAD" }
  for name, src in pairs(cases) do
    local out, rc = q(tmpdir .. "/" .. name .. ".out"), q(tmpdir .. "/" .. name .. ".rc")
    script[#script + 1] = ([[
(
  %s run %s --budget 0 --duration 30 --no-status > %s 2>&1 &
  pid=$!
  i=0; while [ $i -lt 200 ] && ! grep -qs 'stuck now' %s; do sleep 0.1; i=$((i+1)); done
  kill -TERM $pid
  i=0; while [ $i -lt 250 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  if kill -0 $pid 2>/dev/null; then kill -KILL $pid; wait $pid; echo hung > %s; else wait $pid; echo $? > %s; fi
) &]]):format(q(EXE), q(write(name, src)), out, out, rc, rc)
  end
  script[#script + 1] = "wait"
  assert(os.execute(table.concat(script, "\n")))
  local res = {}
  for name in pairs(cases) do
    res[name] = { out = slurp(tmpdir .. "/" .. name .. ".out"), status = tonumber(slurp(tmpdir .. "/" .. name .. ".rc")) }
  end
  return res
end

describe("polysim run and SIGTERM (the watchdog)", function()
  it("stops a strategy stuck where a hook reaches it: interrupted, on_stop runs, own orders cancelled", function()
    local r = run_all {
      budget_off = strategy "while true do end",
      own_coroutine = strategy "coroutine.wrap(function() while true do end end)()",
      after_sethook = strategy "c.log.info('sethook: ' .. tostring(pcall(debug.sethook))); while true do end",
      caught = strategy "while true do pcall(function() while true do end end) end",
    }
    for name, res in pairs(r) do
      assert.equal(0, res.status, name .. ":\n" .. res.out)
      assert.truthy(res.out:find("stuck now", 1, true), name .. ":\n" .. res.out)
      assert.truthy(res.out:find("stopped by SIGTERM", 1, true), name .. ":\n" .. res.out)
      assert.truthy(res.out:find("on_stop ran (SIGTERM)", 1, true), name .. ":\n" .. res.out)
      assert.truthy(res.out:find("cancelled open orders (1)", 1, true), name .. ":\n" .. res.out)
      assert.truthy(res.out:find("stopped (SIGTERM)", 1, true), name .. ":\n" .. res.out)
    end
    assert.truthy(r.after_sethook.out:find("sethook: false", 1, true), r.after_sethook.out)
  end)

  it("ends a strategy stuck where no hook reaches (a __gc assigned after setmetatable) with a line", function()
    local r = run_all {
      gc = strategy [[
        local mt = { __gc = true }
        setmetatable({}, mt)
        mt.__gc = function() while true do end end
        collectgarbage()
      ]],
    }
    assert.equal(128 + 15, r.gc.status, r.gc.out)
    assert.truthy(r.gc.out:find("stuck now", 1, true), r.gc.out)
    assert.truthy(r.gc.out:find("polysim: still running %d+ s after SIGTERM; exiting now"), r.gc.out)
  end)
end)
