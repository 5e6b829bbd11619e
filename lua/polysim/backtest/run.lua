-- `polysim run` with the backtest's options: --param NAME=VALUE (ctx.params) and --report DIR
-- (the backtest's report, written at stop from the fills and equity the runtime observed).
-- The other arguments go to polysim.host's `run` unchanged.
local core = require "polysim.core"

local _M = {}

function _M.main(args)
  local rest, params, dir = {}, {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--param" or a == "--report" then
      local v = args[i + 1]
      if v == nil then
        io.stderr:write("polysim run: ", a, " needs a value\n")
        return 2
      end
      if a == "--report" then dir = v
      else
        local k, val = v:match("^([%w_]+)=(.*)$")
        if not k then
          io.stderr:write("polysim run: --param needs NAME=VALUE\n")
          return 2
        end
        params[k] = val
      end
      i = i + 2
    else
      rest[#rest + 1] = a
      i = i + 1
    end
  end
  rest[0] = args[0]
  local strategy = require "polysim.strategy"
  strategy.default_params = params
  local res = { trades = {}, equity = {}, params = params, sample = 5, strategy = nil, events = 0 }
  local rt_seen, stop_sampling
  if dir then
    strategy.on_new = function(rt)
      rt_seen = rt
      rt:observe(function(kind, d)
        if kind == "fill" then
          res.trades[#res.trades + 1] = { t = rt.clock.now(), market_id = d.market_id, side = d.side,
            outcome = d.outcome, quantity = d.quantity, price = d.price, fee = d.fee, order_id = d.order_id }
        elseif kind == "equity" and d.equity then
          res.equity[#res.equity + 1] = { t = d.t, v = d.equity, cash = d.cash }
        end
      end)
      -- the equity curve: the account read every 5 s (and once at once)
      local ploop = require "polysim.loop"
      local function sample() ploop.spawn(function() if not rt.stopped then pcall(rt.refresh, rt) end end) end
      ploop.timer(0, sample)
      stop_sampling = ploop.every(5, sample)
    end
  end
  local status = require("polysim.host").main(rest)
  strategy.on_new, strategy.default_params = nil, nil
  if stop_sampling then stop_sampling() end
  if dir and rt_seen then
    res.strategy, res.events = rt_seen.path, rt_seen.stats.delivered
    if #res.equity > 0 then res.span = { from = res.equity[1].t, to = res.equity[#res.equity].t } end
    local ok, err = pcall(require("polysim.report").write, dir, res)
    if not ok then
      io.stderr:write("polysim run: report: ", tostring(err), "\n")
      return 1
    end
    io.stderr:write("polysim run: report written to ", dir, " (", core.json_encode(#res.trades), " fills)\n")
  end
  return status
end

return _M
