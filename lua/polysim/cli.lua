-- The `polysim` command: serve, run, version, help.
local core = require "polysim.core"

local _M = {}

local USAGE = [[
usage: polysim <command> [options]

  polysim serve [--host 127.0.0.1] [--port N] [--seed S] [--markets FILE] [--tick SECONDS]
                [--unlimited]
      Run the local exchange. The first line on stdout is a JSON object with base_url,
      api_key and bootstrap_token; logs go to stderr. --port 0 picks a free port.
      --tick 0 freezes prices; --unlimited turns rate limits off (benchmarks).
  polysim run STRATEGY.lua [--live] [--base-url URL] [--duration SECONDS] [--seed S]
                [--tick SECONDS] [--budget SECONDS] [--no-reload] [--quiet]
      Run a strategy. By default it trades against a local exchange started in the same
      process, whatever POLYSIM_API_KEY says. Orders go to the real API only with --live
      (key from POLYSIM_API_KEY) or to the server you name with --base-url; a LIVE banner
      says so before the first order. `polysim run --help` explains every flag.
  polysim version
  polysim help | --help | -h       this text; `polysim COMMAND --help` for one command
]]

local SERVE_USAGE = [[
usage: polysim serve [options]

  Runs the local exchange (a simulated PolySimulator API) until SIGINT/SIGTERM.
  The first line on stdout is a JSON object with base_url, api_key and bootstrap_token;
  logs go to stderr. Point a client at it with both:
    polysim.new{ base_url = <base_url>, api_key = <api_key> }
  (do not export that key as POLYSIM_API_KEY: that variable is for the real service).

  --host ADDR        address to bind (default 127.0.0.1; anything else is reachable by others)
  --port N           port (default 8000; 0 picks a free one)
  --seed S           seed of the generated markets (default 1)
  --markets FILE     JSON file of markets instead of generated ones
  --tick SECONDS     how often prices move (default 0.5; 0 freezes them)
  --unlimited        no rate limits (benchmarks)
  -h, --help         this text
]]

local function die(msg)
  io.stderr:write("polysim: ", msg, "\n")
  return 2
end

-- Parses "--name value" options (spec: name -> "string" | "number" | "flag") from
-- args[first..]; numbers must be >= 0. -h/--help sets opts.help. Returns opts, positional
-- arguments, or nil and a message. Shared by every subcommand.
function _M.parse_options(args, first, spec)
  local opts, pos = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w%-]+)$")
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif name then
      local kind = spec[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "flag" then
        opts[name] = true
      else
        local v = args[i + 1]
        if v == nil then return nil, "--" .. name .. " needs a value" end
        if kind == "number" then
          v = tonumber(v)
          if not v or v < 0 then return nil, "--" .. name .. " needs a number >= 0" end
        end
        opts[name] = v
        i = i + 1
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end
local parse = _M.parse_options

local function log(level, msg)
  io.stderr:write(os.date("!%H:%M:%S "), level, " ", msg, "\n")
end

local function read_markets(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local data, jerr = core.json_decode(text)
  if jerr then return nil, path .. ": " .. jerr end
  return data
end

-- Blocks the signals and returns a function telling whether one arrived.
function _M.watch_signals(on_signal)
  local ploop = require "polysim.loop"
  local fd = core.signal_fd { "INT", "TERM" }
  ploop.core:watch(fd, "r", function()
    local name = core.read_signal(fd)
    if name then on_signal(name) end
  end)
end

-- --unlimited: no rate limits, for benchmarks and load tests.
local BIG = 1 << 40
local UNLIMITED = {}
for _, tier in ipairs { "free", "pro", "pro_plus", "enterprise" } do
  UNLIMITED[tier] = { per_second = BIG, per_minute = BIG }
end

function _M.serve(args)
  local opts, pos = parse(args, 2, { host = "string", port = "number", seed = "number",
    markets = "string", tick = "number", unlimited = "flag" })
  if not opts then return die(pos) end
  if opts.help then
    io.stdout:write(SERVE_USAGE)
    return 0
  end
  if #pos > 0 then return die("serve takes no positional arguments") end
  local markets
  if opts.markets then
    local m, err = read_markets(opts.markets)
    if not m then return die("--markets: " .. err) end
    markets = m
  end
  local ploop = require "polysim.loop"
  local srv, err = require("polysim.serve").start {
    host = opts.host, port = math.tointeger(opts.port) or 8000, seed = math.tointeger(opts.seed) or 1,
    markets = markets, api_key = os.getenv "POLYSIM_API_KEY", logger = log,
    tick = (opts.tick == nil and 0.5) or (opts.tick > 0 and opts.tick) or false,
    tiers = opts.unlimited and UNLIMITED or nil,
  }
  if not srv then return die(err) end
  if srv.host ~= "127.0.0.1" and srv.host ~= "::1" then
    log("warn", "listening on " .. srv.host .. ": not loopback, anyone who can reach it can trade")
  end
  io.stdout:write(core.json_encode({ base_url = srv.base_url, api_key = srv.api_key,
    bootstrap_token = srv.bootstrap_token }, { sort_keys = true }), "\n")
  io.stdout:flush()
  log("info", "local exchange on " .. srv.base_url .. " (seed " .. (math.tointeger(opts.seed) or 1) .. ")")
  local stop
  _M.watch_signals(function(name) stop = name end)
  while not stop do ploop.core:step(1) end
  log("info", "SIG" .. stop .. ": stopping")
  srv:close()
  return 0
end

-- polysim exec SCRIPT [ARGS]: runs a Lua file in this interpreter, as `lua5.4 SCRIPT` would.
-- The ASan build runs the specs this way, so no child process inherits a preloaded runtime.
function _M.exec(args)
  local script = args[2]
  if not script then return die("exec needs a script") end
  local chunk, err = loadfile(script)
  if not chunk then return die(err) end
  local new = { [-1] = args[0] .. " exec", [0] = script }
  for i = 3, #args do new[i - 2] = args[i] end
  _G.arg = new
  chunk(table.unpack(new, 1, #new))
  return 0
end

function _M.main(args)
  local cmd = args[1]
  if cmd == "serve" then return _M.serve(args)
  elseif cmd == "exec" then
    if args[2] == "--help" or args[2] == "-h" then
      io.stdout:write("usage: polysim exec SCRIPT [ARGS]\n  Runs a Lua file in this interpreter, as `lua5.4 SCRIPT` would.\n")
      return 0
    end
    return _M.exec(args)
  elseif cmd == "run" then return require("polysim.backtest.run").main(args) -- --param/--report, then host
  elseif cmd == "backtest" then return require("polysim.backtest").main(args)
  elseif cmd == "record" then return require("polysim.backtest.record").main(args)
  elseif cmd == "version" or cmd == "--version" then
    if args[2] == "--help" or args[2] == "-h" then
      io.stdout:write("usage: polysim version\n  Prints the version and the libcurl it uses.\n")
      return 0
    end
    print("polysim " .. core.VERSION .. " (" .. core.curl_version .. ")")
    return 0
  elseif cmd == nil or cmd == "help" or cmd == "--help" or cmd == "-h" then
    io.stdout:write(USAGE)
    return cmd == nil and 2 or 0
  end
  return die("unknown command '" .. tostring(cmd) .. "'\n" .. USAGE)
end

return _M
