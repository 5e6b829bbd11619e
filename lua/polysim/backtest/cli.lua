-- `polysim backtest` and `polysim record`: argument parsing and output.
local core = require "polysim.core"

local _M = {}

local USAGE = [[
usage: polysim backtest STRATEGY.lua --data FILE [--from T] [--to T] [--balance 10000]
                        [--tier pro] [--latency MS] [--seed S] [--param NAME=VALUE ...]
                        [--report DIR] [--quiet] [--progress]
  Replays the recording FILE (see `polysim record`) through the strategy in simulated time,
  against an in-process exchange; prints the summary as JSON; --report DIR writes
  report.json, trades.csv, equity.csv and report.html there.
]]

local function die(msg)
  io.stderr:write("polysim backtest: ", msg, "\n")
  return 2
end

local KINDS = { data = "s", from = "n", to = "n", balance = "n", tier = "s", latency = "n", seed = "n",
                report = "s", param = "multi", quiet = "flag", sample = "n", progress = "flag" }

function _M.parse(args, first)
  local o, pos, i = { param = {} }, {}, first
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
        else o[name] = v end
      end
    else pos[#pos + 1] = a end
    i = i + 1
  end
  return o, pos
end

function _M.main(args)
  local o, pos = _M.parse(args, 2)
  if not o then return die(pos) end
  if o.help then io.stdout:write(USAGE); return 0 end
  if #pos ~= 1 then return die("needs one STRATEGY.lua\n" .. USAGE) end
  if not o.data then return die("needs --data FILE") end
  local bt = require "polysim.backtest"
  local bars = require "polysim.backtest.progress"
  local bar = bars.new { enabled = bars.wanted(o) }
  local function progress(n, bytes, total) bar:update(n, bytes, total) end
  local function progress_done(n, bytes, total) bar:finish(n, bytes, total) end
  local ok, res = pcall(bt.run, { strategy = pos[1], data = o.data, from = o.from, to = o.to,
    balance = o.balance, tier = o.tier, latency_ms = o.latency, seed = math.tointeger(o.seed),
    params = o.param, sample = o.sample, progress = progress, progress_done = progress_done })
  bar:finish()
  if not ok then
    local msg = type(res) == "table" and res.data_error or tostring(res)
    return die(msg .. " (no report written)")
  end
  local report = require "polysim.report"
  local summary
  if o.report then summary = report.write(o.report, res) else summary = report.summary(res) end
  io.stdout:write(core.json_encode(summary, { sort_keys = true }), "\n")
  return 0
end

return _M
