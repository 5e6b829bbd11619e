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

  it("takes its key from --api-key or POLYSIM_LOCAL_KEY, never from POLYSIM_API_KEY", function()
    -- POLYSIM_API_KEY is the real service's key: serve used it as its own before (issue 11)
    local real, loc, flag = "ps_live_" .. ("ab"):rep(32), "ps_live_" .. ("cd"):rep(32), "ps_live_" .. ("ef"):rep(32)
    local info, pid = start("--port 0", "POLYSIM_API_KEY=" .. real)
    stop(pid)
    assert.are_not.equal(real, info.api_key)
    info, pid = start("--port 0", "POLYSIM_API_KEY=" .. real .. " POLYSIM_LOCAL_KEY=" .. loc)
    stop(pid)
    assert.equal(loc, info.api_key)
    info, pid = start("--port 0 --api-key " .. flag, "POLYSIM_LOCAL_KEY=" .. loc)
    stop(pid)
    assert.equal(flag, info.api_key)
    local c = polysim.new { base_url = "http://127.0.0.1:1", api_key = flag }
    assert.truthy(tostring(c))
  end)

  it("refuses a malformed --api-key without echoing it, and applies the connection limits", function()
    local bad = "ps_live_NOTHEX" .. ("z"):rep(20)
    local out = os.tmpname()
    local ok = os.execute(EXE .. " serve --port 0 --api-key " .. bad .. " > " .. out .. " 2>&1")
    local text = assert(io.open(out)):read("a")
    os.remove(out)
    assert.is_not_true(ok)
    assert.truthy(text:find("--api-key must be ps_live_", 1, true), text)
    assert.is_nil(text:find(bad, 1, true), text)
    -- --per-ip 1: a second open connection from 127.0.0.1 is refused while the first is held
    local info, pid = start("--port 0 --per-ip 1 --header-timeout 5 --max-connections 16")
    local port = assert(info.base_url:match(":(%d+)$"))
    local held = io.popen("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port .. "; sleep 2'", "r")
    os.execute("sleep 0.3")
    local c = polysim.new { base_url = info.base_url, api_key = info.api_key, max_retries = 0 }
    local res, err = c:health()
    held:close()
    -- the server notices the held connection's close on its next loop turn: a request sent
    -- at once can still find the slot taken (seen once on a fresh clone), so ask a few times
    local again
    for _ = 1, 50 do
      again = c:health()
      if again then break end
      os.execute("sleep 0.05")
    end
    stop(pid)
    assert.is_nil(res, "the second connection was served despite --per-ip 1")
    assert.equal(0, err.status)
    assert.truthy(again, "after the first connection closed the server answers")
  end)

  it("refuses --per-ip and --max-connections that are not whole numbers >= 1", function()
    local out = os.tmpname()
    for _, flags in ipairs { "--per-ip 0", "--max-connections 1.5" } do
      local ok = os.execute(EXE .. " serve --port 0 " .. flags .. " > " .. out .. " 2>&1")
      local text = assert(io.open(out)):read("a")
      assert.is_not_true(ok)
      assert.truthy(text:find("needs a whole number >= 1", 1, true), text)
    end
    os.remove(out)
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
