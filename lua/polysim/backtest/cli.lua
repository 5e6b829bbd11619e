-- `polysim backtest` and `polysim record`: argument parsing and output.
local core = require "polysim.core"

local _M = {}

local USAGE = [==[
usage: polysim backtest STRATEGY.lua --data FILE [--from T] [--to T] [--balance 10000]
                        [--tier pro] [--latency MS] [--seed S] [--param NAME=VALUE ...]
                        [--report DIR] [--quiet] [--progress] [--dashboard [PORT] [--speed X]
                        [--dashboard-control]]
       polysim backtest STRATEGY.lua --data FILE ... --sweep NAME=V1,V2,... [--sweep ...]
                        [--jobs N] [--rank sharpe|pnl|drawdown] [--report DIR] [--plan]
       polysim backtest --merge DIR... [--rank sharpe|pnl|drawdown] [--out FILE]
  Replays the recording FILE (see `polysim record`) through the strategy in simulated time,
  against an in-process exchange; prints the summary as JSON; --report DIR writes
  report.json, trades.csv, equity.csv and report.html there.
  --dashboard [PORT] serves the live page on 127.0.0.1 during the replay (the curve in data
  time), paced at --speed X times real time (default: as fast as it goes), and keeps it up
  after the end until Ctrl-C; --dashboard-control gives the page its Stop and Cancel
  buttons (token and Origin checked, as for polysim run).
  --sweep runs the grid (every combination of the values) in N worker processes (default:
  the number of cores) and prints one row per combination, best first by --rank (default
  sharpe); with --report DIR each combination's report goes to DIR/<combination>/ and the
  ranking to DIR/sweep.json (or --out FILE). --plan prints one shell command per
  combination instead (each writes its report into DIR/<combination>/), and --merge ranks
  such reports.
]==]

local function die(msg)
  io.stderr:write("polysim backtest: ", msg, "\n")
  return 2
end

local KINDS = { data = "s", from = "n", to = "n", balance = "n", tier = "s", latency = "n", seed = "n",
                report = "s", param = "multi", quiet = "flag", sample = "n", progress = "flag",
                sweep = "list", jobs = "n", rank = "s", plan = "flag", merge = "flag", out = "s", speed = "n" }
_M.KINDS = KINDS

function _M.parse(args, first)
  local o, pos, i = { param = {}, sweep = {} }, {}, first
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w%-]+)$")
    if a == "-h" or a == "--help" then o.help = true
    elseif name then
      local kind = KINDS[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "flag" then o[name] = true
      else
        local v = args[i + 1]
        if v == nil then return nil, "--" .. name .. " needs a value" end
        i = i + 1
        if kind == "n" then
          local nv = tonumber(v)
          if not nv then return nil, "--" .. name .. " needs a number" end
          o[name] = nv
        elseif kind == "multi" then
          local k, val = v:match("^([%w_]+)=(.*)$")
          if not k then return nil, "--param needs NAME=VALUE" end
          o.param[k] = val
        elseif kind == "list" then
          local list = o[name]
          list[#list + 1] = v
        else o[name] = v end
      end
    else pos[#pos + 1] = a end
    i = i + 1
  end
  return o, pos
end

function _M.main(args)
  local dash, derr = require("polysim.dashboard").take_args(args, 2)
  if dash == nil then return die(derr) end
  local o, pos = _M.parse(args, 2)
  if not o then return die(pos) end
  if o.help then io.stdout:write(USAGE); return 0 end
  if o.speed and not dash then return die("--speed paces a --dashboard replay: add --dashboard") end
  if o.merge or #o.sweep > 0 then
    if dash then return die("--dashboard watches one backtest, not a --sweep or --merge") end
    local sweep = require "polysim.backtest.sweep"
    if o.merge and #o.sweep > 0 then return die("--merge combines reports: it takes no --sweep") end
    local ok, status = pcall(function()
      if o.merge then return sweep.merge_main(o, pos) end
      return sweep.main(args, o, pos, KINDS)
    end)
    if ok then return status end
    return die(type(status) == "table" and status.sweep_error or tostring(status))
  end
  if o.plan or o.jobs or o.rank or o.out then return die("--plan, --jobs, --rank and --out go with --sweep") end
  if o.speed and (o.speed ~= o.speed or o.speed <= 0) then return die("--speed must be a number > 0") end
  if #pos ~= 1 then return die("needs one STRATEGY.lua\n" .. USAGE) end
  if not o.data then return die("needs --data FILE") end
  local bt = require "polysim.backtest"
  local bars = require "polysim.backtest.progress"
  local bar = bars.new { enabled = bars.wanted(o) }
  local function progress(n, bytes, total) bar:update(n, bytes, total) end
  local function progress_done(n, bytes, total) bar:finish(n, bytes, total) end
  local run_opts = { strategy = pos[1], data = o.data, from = o.from, to = o.to,
    balance = o.balance, tier = o.tier, latency_ms = o.latency, seed = math.tointeger(o.seed),
    params = o.param, sample = o.sample, progress = progress, progress_done = progress_done }
  local watch
  if dash then
    watch = require("polysim.backtest.watch").new { port = dash.port, control = dash.control,
      speed = o.speed, opts = run_opts }
    run_opts.watch = watch
  end
  local ok, res = pcall(bt.run, run_opts)
  bar:finish()
  if not ok then
    if watch then watch.close() end
    local msg = type(res) == "table" and res.data_error or tostring(res)
    return die(msg .. " (no report written)")
  end
  local report = require "polysim.report"
  local summary
  if o.report then summary = report.write(o.report, res) else summary = report.summary(res) end
  io.stdout:write(core.json_encode(summary, { sort_keys = true }), "\n")
  io.stdout:flush()
  if watch and watch.d then
    watch.finish()
    io.stderr:write("polysim backtest: replay done; the dashboard stays up at ", watch.url, " until Ctrl-C\n")
    io.stderr:flush()
    watch.wait_for_signal()
  end
  return 0
end

return _M
