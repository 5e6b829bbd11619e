-- `polysim serve`: the local exchange on 127.0.0.1 until SIGINT/SIGTERM. Flags: the "serve"
-- command of polysim.cli.options.
local core = require "polysim.core"
local options = require "polysim.cli.options"

local _M = {}

local function die(msg)
  io.stderr:write("polysim serve: ", msg, "\n")
  return 2
end

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

-- --unlimited: no rate limits, for benchmarks and load tests.
local BIG = 1 << 40
local UNLIMITED = {}
for _, tier in ipairs { "free", "pro", "pro_plus", "enterprise" } do
  UNLIMITED[tier] = { per_second = BIG, per_minute = BIG }
end

local KEY_SHAPE = "^ps_live_" .. ("[0-9a-f]"):rep(64) .. "$"

function _M.main(args)
  local cli = require "polysim.cli"
  local opts, pos = cli.parse_options(args, 2, options.spec "serve")
  if not opts then return die(pos) end
  if opts.help then
    io.stdout:write(options.usage "serve")
    return 0
  end
  if #pos > 0 then return die("serve takes no positional arguments") end
  local markets
  if opts.markets then
    local m, err = read_markets(opts.markets)
    if not m then return die("--markets: " .. err) end
    markets = m
  end
  -- The local key: --api-key, else POLYSIM_LOCAL_KEY; never POLYSIM_API_KEY, which names the
  -- real service's key (a user who exported it must not find it served locally, nor the
  -- local one sent to the real service).
  local key, from = opts["api-key"], "--api-key"
  if key == nil then key, from = os.getenv "POLYSIM_LOCAL_KEY", "POLYSIM_LOCAL_KEY" end
  if key == "" then key = nil end
  if key and not key:match(KEY_SHAPE) then
    return die(from .. " must be ps_live_ followed by 64 lowercase hex digits")
  end
  local function count(name, min)
    local v = opts[name]
    if v == nil then return nil end
    if math.tointeger(v) == nil or v < min then error(("--%s needs a whole number >= %d"):format(name, min), 0) end
    return math.tointeger(v)
  end
  local ok, per_ip, max_conn = pcall(function() return count("per-ip", 1), count("max-connections", 1) end)
  if not ok then return die(per_ip) end
  local ploop = require "polysim.loop"
  local srv, err = require("polysim.serve").start {
    host = opts.host, port = math.tointeger(opts.port) or 8000, seed = math.tointeger(opts.seed) or 1,
    markets = markets, api_key = key, logger = log,
    tick = (opts.tick == nil and 0.5) or (opts.tick > 0 and opts.tick) or false,
    tiers = opts.unlimited and UNLIMITED or nil,
    per_ip = per_ip, max_connections = max_conn, header_timeout = opts["header-timeout"],
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
  cli.watch_signals(function(name) stop = name end)
  while not stop do ploop.core:step(1) end
  log("info", "SIG" .. stop .. ": stopping")
  srv:close()
  return 0
end

return _M
