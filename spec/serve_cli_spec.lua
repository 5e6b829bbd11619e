-- `polysim serve` as users run it: a separate process, its first stdout line, loopback
-- only, the seed's determinism, --markets, and a clean stop on SIGTERM.
local polysim = require "polysim"

local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

-- Starts `polysim serve ARGS` in the background; returns its first line (decoded), its pid
-- and the file its stderr goes to.
local function start(args, env)
  local out, log = os.tmpname(), os.tmpname()
  local pidfile = os.tmpname()
  os.execute(string.format("%s %s serve %s > %s 2> %s & echo $! > %s", env or "", EXE, args, out, log, pidfile))
  local pid = assert(io.open(pidfile)):read("l")
  os.remove(pidfile)
  local line
  for _ = 1, 400 do
    local f = io.open(out)
    line = f and f:read("l")
    if f then f:close() end
    if line then break end
    os.execute("sleep 0.05")
  end
  return line and assert(polysim.json.decode(line)), pid, log, out
end

local function stop(pid) os.execute("kill -TERM " .. pid .. " 2>/dev/null") end

local function wait_exit(pid)
  for _ = 1, 100 do
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then return true end
    os.execute("sleep 0.05")
  end
  return false
end

describe("polysim serve", function()
  it("prints base_url, api_key and bootstrap_token first, binds loopback, stops on SIGTERM", function()
    local info, pid, log = start("--port 0 --seed 5")
    assert.is_table(info)
    assert.matches("^http://127%.0%.0%.1:%d+$", info.base_url)
    assert.matches("^ps_live_%x+$", info.api_key)
    assert.equal(72, #info.api_key)
    assert.is_string(info.bootstrap_token)
    local c = polysim.new { base_url = info.base_url, api_key = info.api_key }
    assert.equal("10000.00", assert(c:balance()).starting_balance)
    stop(pid)
    assert.is_true(wait_exit(pid), "serve did not stop on SIGTERM")
    local text = assert(io.open(log)):read("a")
    assert.matches("SIGTERM", text)
    assert.is_nil(text:find(info.api_key, 1, true), "the key leaked into the log")
  end)

  it("uses POLYSIM_API_KEY as its ready key", function()
    local key = "ps_live_" .. ("ab"):rep(32)
    local info, pid = start("--port 0", "POLYSIM_API_KEY=" .. key)
    stop(pid)
    assert.equal(key, info.api_key)
  end)

  it("gives the same universe for the same seed and another for another seed", function()
    local function universe(seed)
      local info, pid = start("--port 0 --tick 0 --seed " .. seed)
      local c = polysim.new { base_url = info.base_url, api_key = info.api_key }
      local ids = {}
      for m in c:markets { active_only = false } do
        local lp = m.live_price -- its updated_at is wall-clock time: compare the prices
        ids[#ids + 1] = m.condition_id .. "=" .. polysim.json.encode({ lp.buy, lp.sell, lp.outcomes }, { sort_keys = true })
      end
      stop(pid)
      return table.concat(ids, ",")
    end
    local a, b, c = universe(11), universe(11), universe(12)
    assert.equal(a, b)
    assert.are_not.equal(a, c)
  end)

  it("loads markets from --markets FILE", function()
    local f = os.tmpname()
    local h = assert(io.open(f, "w"))
    local ok = pcall(function()
      -- A minimal file: see the header of lua/polysim/exchange/markets.lua for the shape.
      h:write(polysim.json.encode { markets = { {
        question = "Will the spec pass?", slug = "will-the-spec-pass", category = "tests",
        fee_rate = "0.04", outcomes = { "Yes", "No" }, prices = { "0.65", "0.35" },
      } } })
    end)
    h:close()
    assert.is_true(ok)
    local info, pid, log = start("--port 0 --tick 0 --markets " .. f)
    os.remove(f)
    if not info then error("serve failed: " .. assert(io.open(log)):read("a")) end
    local c = polysim.new { base_url = info.base_url, api_key = info.api_key }
    local m = assert(c:market_by_slug("will-the-spec-pass"))
    stop(pid)
    assert.equal("Will the spec pass?", m.question)
  end)

  it("refuses an unknown option with a clear message", function()
    local p = io.popen(EXE .. " serve --bogus 2>&1; echo rc=$?")
    local text = p:read("a")
    p:close()
    assert.matches("unknown option %-%-bogus", text)
    assert.matches("rc=2", text)
  end)
end)
