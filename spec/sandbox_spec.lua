-- Hostile and careless strategies (issue 10 items 1, 6, 10; issue 11 error folding): the
-- budget reaches the strategy's own coroutines and finalizers and cannot be removed; each
-- version has its own os/string/math/... copies; its print/io output goes through the
-- logger and is redacted; repeated errors are folded after the first full report.
local strategy = require "polysim.strategy"
local callback = require "polysim.callback"
local ploop = require "polysim.loop"

local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local H = require "helper"
local tmpdir, write = H.scratch("sbx")

local function new(opts)
  local lines = {}
  local o = { feed = false, log_sink = function(line) lines[#lines + 1] = line end }
  for k, v in pairs(opts or {}) do o[k] = v end
  return strategy.new(o), lines
end

local grep = H.grep

local count = H.count

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

describe("the budget's reach (issue 10 #1)", function()
  it("interrupts an endless loop in a coroutine the strategy made itself", function()
    local path = write [[
      return {
        budget = 0.2,
        on_start = function(ctx) ctx:subscribe "m" end,
        on_price = function(ctx)
          ctx.state.entered = true
          coroutine.wrap(function() while true do end end)()
        end,
        on_stop = function(ctx) ctx.state.stopped = true end,
      }
    ]]
    local rt, lines = new()
    assert.is_true(rt:start(path))
    rt:deliver { type = "price", market_id = "m" }
    assert.is_true(ploop.run_until(function() return rt:idle() end, 10))
    assert.is_true(rt.state.entered)
    assert.equal(1, rt.stats.budget_kills)
    assert.truthy(grep(lines, "past its time budget"), table.concat(lines, "\n"))
    rt:stop()
    assert.is_true(rt.state.stopped)
  end)

  it("interrupts a loop in a coroutine made with coroutine.create and resumed by hand", function()
    local path = write [[
      return {
        budget = 0.2,
        on_start = function(ctx)
          local co = coroutine.create(function() local n = 0 while true do n = n + 1 end end)
          local ok, err = coroutine.resume(co)
          ctx.state.resumed = { ok, err }
        end,
      }
    ]]
    local rt, lines = new()
    local ok, err = rt:start(path)
    assert.is_nil(ok)
    assert.truthy(tostring(err):find("past its time budget", 1, true), err)
    assert.is_nil(grep(lines, "stopped ("))
  end)

  it("cannot be removed with debug.sethook()", function()
    local path = write [[
      return {
        budget = 0.2,
        on_start = function(ctx)
          ctx.state.sethook = { pcall(debug.sethook) }
          while true do end
        end,
      }
    ]]
    local rt = new()
    local ok, err = rt:start(path)
    assert.is_nil(ok)
    assert.truthy(tostring(err):find("past its time budget", 1, true), err)
    assert.is_false(rt.state.sethook[1])
  end)

  it("runs a finalizer as a budgeted task: an endless __gc loop is interrupted", function()
    local path = write [[
      return {
        budget = 0.2,
        on_start = function(ctx)
          setmetatable({}, { __gc = function() ctx.state.gc = true; while true do end end })
          collectgarbage()
          collectgarbage()
        end,
      }
    ]]
    local rt, lines = new()
    assert.is_true(rt:start(path))
    assert.is_true(ploop.run_until(function() return rt.stats.budget_kills > 0 end, 10))
    assert.is_true(rt.state.gc)
    assert.truthy(grep(lines, "__gc finalizer"), table.concat(lines, "\n"))
    rt:stop()
  end)

  it("ends `polysim run --duration 2` with on_stop when a strategy coroutine loops forever", function()
    local path = write [[
      return {
        on_start = function(ctx) ctx:after(0.2, function() coroutine.wrap(function() while true do end end)() end) end,
        on_stop = function(ctx, reason) ctx.log.info("on_stop saw " .. reason) end,
      }
    ]]
    local out = tmpdir .. "/dur.out"
    local rc = os.execute("unset POLYSIM_API_KEY POLYSIM_BASE_URL; timeout -k 5 60 " .. q(EXE) .. " run " ..
      q(path) .. " --duration 2 --no-status --no-reload > " .. q(out) .. " 2>&1")
    local text = slurp(out)
    assert.is_true(rc, text)
    assert.truthy(text:find("past its time budget", 1, true), text)
    assert.truthy(text:find("on_stop saw duration", 1, true), text)
    assert.truthy(text:find("stopped (duration)", 1, true), text)
  end)
end)

describe("a version's own environment (issue 10 #6)", function()
  it("keeps os.exit, require('os'), package.loaded and getmetatable away from the host", function()
    local path = write [[
      return {
        on_start = function(ctx)
          ctx:subscribe "m"
          ctx.state.same_os = require("os") == os and package.loaded.os == os
          ctx.state.os_mt = getmetatable(os)
          ctx.state.exit = { pcall(package.loaded.os.exit, 7) }
        end,
        on_price = function(ctx) ctx.state.n = (ctx.state.n or 0) + 1; require("os").exit(3) end,
      }
    ]]
    local rt, lines = new()
    assert.is_true(rt:start(path))
    for _ = 1, 2 do rt:deliver { type = "price", market_id = "m" } end
    assert.is_true(ploop.run_until(function() return rt:idle() end, 5))
    assert.is_true(rt.state.same_os)
    assert.is_nil(rt.state.os_mt)
    assert.is_false(rt.state.exit[1])
    assert.truthy(rt.state.exit[2]:find("os.exit is not available", 1, true), rt.state.exit[2])
    assert.equal(2, rt.state.n) -- the host went on
    assert.truthy(grep(lines, "os.exit is not available to a strategy (called with 3)"), table.concat(lines, "\n"))
    rt:stop()
  end)

  it("lets a strategy edit its own library tables without touching the host's", function()
    local floor, format, insert, upper = math.floor, string.format, table.insert, string.upper
    local path = write [[
      return {
        on_start = function(ctx)
          math.floor = nil
          string.format = function() return "hacked" end
          table.insert = nil
          getmetatable("").__index.upper = function() return "HACKED" end
          local s = require "string"
          ctx.state.own = s == string and string.format("%d", 1) == "hacked"
          ctx.state.env_load = load("return math.floor")() == nil
        end,
      }
    ]]
    local rt = new()
    assert.is_true(rt:start(path))
    assert.equal(floor, math.floor)
    assert.equal(format, string.format)
    assert.equal(insert, table.insert)
    assert.equal(upper, string.upper)
    assert.equal("X", ("x"):upper())
    assert.is_true(rt.state.own)
    assert.is_true(rt.state.env_load)
    rt.log.info("the host still formats %d", 42)
    rt:stop()
  end)
end)

describe("a strategy's output (issue 10 #10)", function()
  local key = "ps_live_" .. string.rep("0123456789abcdef", 4)
  local tail = key:sub(9)

  it("goes through the logger with the key redacted in every form", function()
    local path = write(([[
      local key, tail = %q, %q
      return {
        on_start = function(ctx)
          print("printed", key)
          print("tail alone " .. tail)
          print("upper " .. key:upper())
          io.write("half ", key:sub(1, 40), "\n")
          io.stderr:write("other half ", key:sub(41), "\n")
          io.stderr:write("partial ")
          io.stderr:write("line\n")
          io.stdout:write("via stdout\n")
        end,
      }
    ]]):format(key, tail))
    local rt, lines = new { api_key = key }
    assert.is_true(rt:start(path))
    local all = table.concat(lines, "\n")
    for _, l in ipairs(lines) do
      assert.falsy(l:lower():find(tail:sub(1, 16), 1, true), l)
      assert.falsy(l:lower():find(tail:sub(-16), 1, true), l)
    end
    assert.truthy(grep(lines, "printed"), all)
    assert.truthy(grep(lines, "tail alone <redacted>"), all)
    assert.truthy(grep(lines, "upper "), all)
    assert.truthy(grep(lines, "WARN  [sbx"), all)
    assert.truthy(grep(lines, "partial line"), all)
    assert.truthy(grep(lines, "via stdout"), all)
    rt:stop()
  end)
end)

describe("error folding (issue 11)", function()
  it("reports the first error in full, then folds identical repeats into one line", function()
    local saved = callback.FOLD_WINDOW
    callback.FOLD_WINDOW = 0.3
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "m" end,
        on_price = function(ctx, msg) error("bad price " .. tostring(msg.n > 100)) end,
      }
    ]]
    local rt, lines = new()
    assert.is_true(rt:start(path))
    for i = 1, 28 do rt:deliver { type = "price", market_id = "m", n = i } end
    assert.is_true(ploop.run_until(function() return rt:idle() end, 5))
    assert.equal(28, rt.stats.errors)
    assert.equal(1, count(lines, "stack traceback"))
    assert.equal(1, count(lines, "on_price failed: "))
    assert.is_true(ploop.run_until(function() return grep(lines, "same error") ~= nil end, 5))
    assert.truthy(grep(lines, "on_price failed: same error \u{d7}27 in the last 0.3 s"), table.concat(lines, "\n"))
    -- after the window, the next one is a full report again
    rt:deliver { type = "price", market_id = "m", n = 1 }
    assert.is_true(ploop.run_until(function() return rt:idle() end, 5))
    assert.equal(2, count(lines, "stack traceback"))
    callback.FOLD_WINDOW = saved
    rt:stop()
  end)

  it("writes a pending summary when the runtime stops, before its window closes", function()
    local saved = callback.FOLD_WINDOW
    callback.FOLD_WINDOW = 60
    local path = write [[
      return {
        on_start = function(ctx) ctx:subscribe "m" end,
        on_price = function() error("always bad") end,
      }
    ]]
    local rt, lines = new()
    assert.is_true(rt:start(path))
    for i = 1, 5 do rt:deliver { type = "price", market_id = "m", n = i } end
    assert.is_true(ploop.run_until(function() return rt:idle() end, 5))
    assert.equal(5, rt.stats.errors)
    assert.is_nil(grep(lines, "same error"))
    rt:stop()
    callback.FOLD_WINDOW = saved
    -- the window was cut short by the stop: the line says how long it was, not 60 s
    local line = grep(lines, "on_price failed: same error \u{d7}4 in the last")
    assert.truthy(line, table.concat(lines, "\n"))
    local secs = tonumber(line:match("in the last (%d+%.?%d*) s"))
    assert.truthy(secs and secs < 60, line)
  end)
end)
