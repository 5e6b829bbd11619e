-- `polysim run STRATEGY.lua ...`: strategies in one polysim.host until --duration or
-- SIGINT/SIGTERM, then a summary line per strategy. Flags: the "run" command of
-- polysim.cli.options (--param and --report are taken out first by polysim.backtest.run,
-- --dashboard by polysim.dashboard).
local core = require "polysim.core"
local host = require "polysim.host"
local options = require "polysim.cli.options"

local _M = {}

local function die(msg)
  io.stderr:write("polysim run: ", msg, "\n(`polysim run --help` lists the flags)\n")
  return 2
end

local function parse(args)
  return require("polysim.cli").parse_options(args, 2, options.spec "run")
end

-- `polysim run STRATEGY.lua ...` (args[1] == "run"); returns the exit status.
function _M.main(args)
  local dashboard = require "polysim.dashboard"
  local dash_cfg, derr = dashboard.take_args(args, 2)
  if dash_cfg == nil then return die(derr) end
  local opts, pos = parse(args)
  if not opts then return die(pos) end
  if opts.help then
    io.stdout:write(options.usage "run")
    return 0
  end
  if #pos < 1 then return die("give a strategy file (or several)") end
  for _, p in ipairs(pos) do
    local f = io.open(p, "r")
    if not f then return die("cannot read " .. p) end
    f:close()
  end
  local path = table.concat(pos, ", ")
  if opts.live and (os.getenv "POLYSIM_API_KEY" or "") == "" then
    return die("--live needs the real service's key in POLYSIM_API_KEY")
  end
  -- --base-url on this machine (a `polysim serve`): its key is POLYSIM_LOCAL_KEY, so the
  -- local key never has to be exported as POLYSIM_API_KEY (the real service's)
  local api_key
  local url = opts["base-url"]
  if url and (url:match("^https?://127%.") or url:match("^https?://localhost[:/]") or url:match("^https?://localhost$")
      or url:match("^https?://%[::1%]")) and (os.getenv "POLYSIM_LOCAL_KEY" or "") ~= "" then
    api_key = os.getenv "POLYSIM_LOCAL_KEY"
  end
  local h, err = host.new {
    api_key = api_key,
    base_url = opts["base-url"], live = opts.live or nil, seed = opts.seed, tick = opts.tick, budget = opts.budget,
    hot_reload = not opts["no-reload"], status = ((opts.quiet or opts["no-status"]) and false) or nil,
    quiet = opts.quiet or nil, log_level = opts["log-level"], log_format = opts["log-format"],
    log_file = opts["log-file"],
  }
  if not h then
    io.stderr:write("polysim run: ", tostring(err), "\n")
    return 1
  end
  if h.srv then
    h.log.info(string.format("local exchange at %s (seed %d); --live trades on the real API",
      h.base_url, math.tointeger(opts.seed) or 1))
  else
    h.log.warn("LIVE: orders from this strategy go to " .. h.base_url .. ", not a local exchange")
  end
  require("polysim.cli").watch_signals(function(name) h.stop_reason = h.stop_reason or ("SIG" .. name) end)
  for _, p in ipairs(pos) do
    local ok, lerr = h:add(p)
    if not ok then
      h.log.error("cannot start " .. p .. ":\n" .. tostring(lerr))
      h:close()
      return 1
    end
  end
  if dash_cfg then
    local d, e = h:open_dashboard(dash_cfg)
    if not d then
      h.log.error("cannot start the dashboard: " .. tostring(e))
      h:close()
      return 1
    end
    -- printed whatever the log level: it is what the user asked for (and the token with it)
    if opts["log-format"] == "json" then     -- machines read stderr: every line JSON
      local log = require "polysim.log"
      io.stderr:write(log.json_line { t = log.wallclock(), level = "info", tag = "polysim", msg = "dashboard: " .. d.url },
        "\n")
    else
      io.stderr:write("dashboard: ", d.url, "\n")
    end
  end
  h.log.info(string.format("running %s%s; %s", path,
    opts.duration and string.format(" for %g s", opts.duration) or "",
    h.watcher and "edit it to reload, Ctrl-C to stop" or "Ctrl-C to stop"))
  local deadline = opts.duration and (core.monotime() + opts.duration)
  while not h.stop_reason and not h:done() do
    local wait = 0.5
    if deadline then
      local left = deadline - core.monotime()
      if left <= 0 then
        h.stop_reason = "duration"
        break
      end
      if left < wait then wait = left end
    end
    h:step(wait)
  end
  h.log.info("stopping (" .. tostring(h.stop_reason or "done") .. ")")
  local stopped = h:stop(h.stop_reason, 15)
  local snap = select(2, pcall(h._snapshot, h))
  local s = { delivered = 0, callbacks = 0, errors = 0, reloads = 0, failed_reloads = 0 }
  for _, rt in ipairs(h.rts) do
    for k in pairs(s) do s[k] = s[k] + rt.stats[k] end
    local own = rt.own:summary()
    local st = rt.stats
    h.log.info(string.format("%s: own orders %d placed, %d filled, %d cancelled, %d open; own P&L %s; " ..
      "%d events, %d errors, %d reloads (%d failed)", rt.name, own.placed, own.filled, own.cancelled, own.open,
      host.signed(host.dec(own.pnl)), st.delivered, st.errors, st.reloads, st.failed_reloads))
  end
  h.log.info(string.format("done: cash %s, P&L %s, %d open positions; %d events, %d callbacks, %d errors, " ..
    "%d reloads (%d failed)", host.money(type(snap) == "table" and snap.cash or nil),
    host.signed(type(snap) == "table" and snap.pnl or nil), type(snap) == "table" and snap.positions or 0,
    s.delivered, s.callbacks, s.errors, s.reloads, s.failed_reloads))
  h:close()
  return stopped and 0 or 1
end


return _M
