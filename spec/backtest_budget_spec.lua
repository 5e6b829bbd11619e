-- A backtest's client calls run the in-process exchange without the callback's budget hook
-- (polysim.backtest.transport, issue 12): the hook must be back, as it was, when the call
-- returns or raises, so the budget still interrupts the strategy's own code after it.
local backtest = require "polysim.backtest"
local btdata = require "btdata"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))
local data = tmp .. "/rec.jsonl"
btdata.write(data, btdata.dataset(30))

local function strategy(body)
  local path = tmp .. "/s" .. tostring(math.random(1e9)) .. ".lua"
  btdata.write(path, body)
  return path
end

describe("backtest budget", function()
  it("interrupts a callback that runs past its budget after a client call", function()
    local lines = {}
    local res = backtest.run { data = data, log_sink = function(l) lines[#lines + 1] = l end,
      strategy = strategy(string.format([[
        return {
          budget = 0.02,
          on_start = function(ctx) ctx:subscribe { %q } end,
          on_price = function(ctx, msg)
            local m = assert(ctx.client:market(msg.market_id)) -- through the transport
            assert(m.condition_id == msg.market_id)
            ctx.state.calls = (ctx.state.calls or 0) + 1
            if ctx.state.calls == 3 then for _ = 1, 1e9 do end end -- interrupted (seconds of work otherwise)
            ctx.state.after = (ctx.state.after or 0) + 1
          end,
        }
      ]], btdata.A)) }
    assert.equal(1, res.stats.budget_kills, table.concat(lines, "\n"))
    local kill
    for _, l in ipairs(lines) do if l:find("past its time budget", 1, true) then kill = l end end
    assert.truthy(kill, table.concat(lines, "\n"))
    assert.truthy(kill:find("on_price", 1, true), kill)
    assert.equal(1, res.stats.errors)
    assert.is_true(res.stats.delivered >= 10) -- the events after it were delivered
  end)
end)
