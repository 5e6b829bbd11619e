-- Hot reload: state hand-off, broken versions never replacing working ones, fresh copies of
-- the strategy's own modules, exactly-once delivery across 1,000 reloads, and the inotify
-- watcher with editor save patterns.
local strategy = require "polysim.strategy"
local reload = require "polysim.reload"
local ploop = require "polysim.loop"
local H = require "helper"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function write(path, src)
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
end

-- The way most editors save: a temporary file renamed over the original.
local function save_by_rename(path, src)
  write(path .. ".tmp~", src)
  assert(os.rename(path .. ".tmp~", path))
end

local function new(opts)
  local lines = {}
  local o = { feed = false, log_sink = function(line) lines[#lines + 1] = line end }
  for k, v in pairs(opts or {}) do o[k] = v end
  return strategy.new(o), lines
end

local grep = H.grep

local function settle(rt)
  assert(ploop.run_until(function() return rt:idle() end, 5), "runtime did not settle")
end

local function price(id, seq) return { type = "price", market_id = id, seq = seq } end

local function version_src(v, extra)
  return ([[
    local V = %d
    return {
      on_start = function(ctx)
        ctx:subscribe "m"
        ctx.state.starts = (ctx.state.starts or 0) + 1
        ctx.state.seen, ctx.state.by = ctx.state.seen or {}, ctx.state.by or {}
        ctx.state.timer = ctx:every(0.005, function(c) c.state.tick_v = V end)
      end,
      on_reload = function(ctx, old)
        assert(old == ctx.state)
        ctx.state.reloads = (old.reloads or 0) + 1
        ctx.state.timer = ctx:every(0.005, function(c) c.state.tick_v = V end)
        %s
      end,
      on_price = function(ctx, msg)
        ctx.state.seen[msg.seq] = (ctx.state.seen[msg.seq] or 0) + 1
        ctx.state.by[msg.seq] = V
      end,
    }
  ]]):format(v, extra or "")
end

describe("hot reload", function()
  after_each(function() collectgarbage() end)

  it("hands the state to the new version, re-arms its timers, keeps subscriptions", function()
    local path = tmpdir .. "/keep.lua"
    write(path, version_src(1))
    local rt, lines = new()
    assert(rt:start(path))
    rt:deliver(price("m", 1))
    ploop.run_until(function() return rt.state.tick_v == 1 end, 1)
    write(path, version_src(2))
    local n, took = reload.reload(rt)
    assert.equal(2, n)
    assert.is_number(took)
    assert.truthy(grep(lines, "v1 -> v2 in"))
    rt:deliver(price("m", 2))
    settle(rt)
    assert.equal(1, rt.state.starts)
    assert.equal(1, rt.state.reloads)
    assert.same({ 1, 2 }, rt.state.by)
    assert.same({ "m" }, rt:subscriptions())
    rt.state.tick_v = nil
    ploop.run_until(function() return rt.state.tick_v ~= nil end, 1)
    assert.equal(2, rt.state.tick_v) -- only the new version's timer runs
    assert.equal(2, rt.current.ctx.version)
    rt:stop()
  end)

  it("lets on_reload replace the state table, and calls on_start when there is no on_reload", function()
    local path = tmpdir .. "/swap.lua"
    write(path, "return { on_start = function(ctx) ctx.state.x = (ctx.state.x or 0) + 1 end }")
    local rt = new()
    assert(rt:start(path))
    write(path, "return { on_start = function(ctx) ctx.state.x = (ctx.state.x or 0) + 1 end }")
    assert.equal(2, (rt:reload()))
    assert.equal(2, rt.state.x)
    write(path, "return { on_reload = function(ctx, old) ctx.state = { y = old.x * 10 } end }")
    assert.equal(3, (rt:reload()))
    assert.same({ y = 20 }, rt.state)
    rt:stop()
  end)

  it("never replaces a working version with a broken one", function()
    local path = tmpdir .. "/broken.lua"
    write(path, version_src(1))
    local rt, lines = new()
    assert(rt:start(path))
    local broken = {
      { "return { on_price = function(ctx, msg) end end }", "broken.lua:1:" },  -- syntax
      { "local x = nil\nreturn x.y", "broken.lua:2:" },                        -- runtime, top level
      { "return 'not a table'", "must return a table" },
      { "return { on_price = 1 }", "on_price must be a function" },
      { version_src(9, "error('cannot start v9')"), "cannot start v9" },     -- on_reload fails
      { "return { budget = -1 }", "budget must be > 0" },
    }
    for i, case in ipairs(broken) do
      write(path, case[1])
      local n, err = reload.reload(rt)
      assert.is_nil(n)
      assert.truthy(err:find(case[2], 1, true), "case " .. i .. ": " .. err)
      assert.truthy(grep(lines, "reload failed, v1 keeps running"))
      assert.equal(1, rt.current.n)
      rt:deliver(price("m", i))
    end
    settle(rt)
    for i = 1, #broken do assert.equal(1, rt.state.by[i]) end
    -- the failed on_reload's timer was cancelled with its version; v1's still runs
    rt.state.tick_v = nil
    ploop.run_until(function() return rt.state.tick_v ~= nil end, 1)
    assert.equal(1, rt.state.tick_v)
    assert.equal(#broken, rt.stats.failed_reloads)
    write(path, version_src(2))
    assert.equal(2, (reload.reload(rt)))
    rt:stop()
  end)

  it("loads fresh copies of the strategy's own modules in a fresh environment", function()
    local dir = tmpdir .. "/mods"
    assert(os.execute("mkdir -p " .. dir .. "/lib"))
    write(dir .. "/lib/signal.lua", "return { k = 1 }")
    write(dir .. "/main.lua", [[
      local signal = require "lib.signal"
      local polysim = require "polysim"
      leaked_global = true
      return { on_start = function(ctx) ctx.state.k = signal.k; ctx.state.p = type(polysim.new) end,
               on_reload = function(ctx) ctx.state.k = signal.k end }
    ]])
    local rt = new()
    assert(rt:start(dir .. "/main.lua"))
    assert.same({ k = 1, p = "function" }, rt.state)
    assert.is_nil(rawget(_G, "leaked_global"))
    assert.is_nil(package.loaded["lib.signal"])
    write(dir .. "/lib/signal.lua", "return { k = 2 }")
    assert.equal(2, (rt:reload()))
    assert.equal(2, rt.state.k)
    assert.truthy(rt.watch_files[dir .. "/lib/signal.lua"])
    write(dir .. "/lib/signal.lua", "return { k = = 3 }")
    local n, err = rt:reload()
    assert.is_nil(n)
    assert.truthy(err:find("signal.lua:1:", 1, true), err)
    assert.equal(2, rt.state.k)
    rt:stop()
  end)

  it("loses and duplicates no event across 1,000 reloads while events stream", function()
    local path = tmpdir .. "/many.lua"
    local src = [[
      local V = %d
      return {
        on_start = function(ctx) ctx:subscribe { "a", "b", "c" }; ctx.state.seen = {}; ctx.state.n = 0 end,
        on_reload = function(ctx)
          if V %% 3 == 0 then ctx:sleep(0) end -- some reloads wait: events queue meanwhile
        end,
        on_price = function(ctx, msg)
          local s = ctx.state
          s.seen[msg.seq] = (s.seen[msg.seq] or 0) + 1
          s.n = s.n + 1
          if msg.seq %% 7 == 0 then ctx:sleep(0) end -- some callbacks are in flight at the swap
        end,
      }
    ]]
    write(path, src:format(0))
    local rt, lines = new()
    assert(rt:start(path))
    local seq, markets = 0, { "a", "b", "c" }
    local function burst(k)
      for _ = 1, k do
        seq = seq + 1
        rt:deliver(price(markets[seq % 3 + 1], seq))
      end
    end
    local reloads, failures = 0, 0
    local v = 0
    while reloads < 1000 do
      v = v + 1
      if v % 50 == 0 then
        write(path, "return { on_price = ") -- broken now and then
      else
        write(path, src:format(v))
      end
      local result
      local task = ploop.spawn(function() result = table.pack(rt:reload()) end)
      burst(3) -- during the reload (queued when it waits)
      assert(ploop.run_until(function() return task.done end, 5))
      if result[1] then reloads = reloads + 1 else failures = failures + 1 end
      burst(3) -- between reloads
    end
    settle(rt)
    assert.equal(1000, rt.stats.reloads)
    assert.equal(failures, rt.stats.failed_reloads)
    assert.is_true(failures >= 20)
    assert.equal(seq, rt.state.n)
    for i = 1, seq do
      if rt.state.seen[i] ~= 1 then error("event " .. i .. " delivered " .. tostring(rt.state.seen[i]) .. " times") end
    end
    assert.is_true(seq >= 6000)
    assert.equal(0, rt.stats.errors, grep(lines, "ERROR"))
    rt:stop()
  end)

  it("reloads on save through inotify: rename and in-place writes, debounced", function()
    local dir = tmpdir .. "/watched"
    assert(os.execute("mkdir -p " .. dir))
    local path = dir .. "/strat.lua"
    write(path, version_src(1))
    write(dir .. "/other.lua", "return 1")
    local rt, lines = new()
    assert(rt:start(path))
    local seen = {}
    local w = assert(reload.watch(rt, { on_reload = function(n) seen[#seen + 1] = n or false end }))
    save_by_rename(path, version_src(2))
    assert(ploop.run_until(function() return rt.current.n == 2 end, 2), table.concat(lines, "\n"))
    write(path, version_src(3))
    assert(ploop.run_until(function() return rt.current.n == 3 end, 2))
    -- unrelated files in the directory do not reload
    write(dir .. "/other.lua", "return 2")
    ploop.run_until(function() return false end, 0.05)
    assert.equal(3, rt.current.n)
    -- a burst of writes makes one reload
    for i = 4, 8 do write(path, version_src(i)) end
    assert(ploop.run_until(function() return rt.current.n >= 4 end, 2))
    ploop.run_until(function() return false end, 0.05)
    assert.equal(4, rt.current.n)
    rt.state.tick_v = nil
    ploop.run_until(function() return rt.state.tick_v ~= nil end, 1)
    assert.equal(8, rt.state.tick_v) -- the last write is the version that runs
    -- a broken save is reported, the next good one is picked up
    save_by_rename(path, "return {")
    assert(ploop.run_until(function() return seen[#seen] == false end, 2))
    save_by_rename(path, version_src(9))
    assert(ploop.run_until(function() return rt.current.n == 5 end, 2))
    assert.same({ 2, 3, 4, false, 5 }, seen)
    w:close()
    rt:stop()
  end)
end)
