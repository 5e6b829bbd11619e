-- The `polysim` command: serve, run, version, help.
local core = require "polysim.core"

local _M = {}

local options = require "polysim.cli.options"
_M.options = options

local function die(msg)
  io.stderr:write("polysim: ", msg, "\n")
  return 2
end

-- Parses "--name value" options from args[first..]. spec: name -> "string" | "number" |
-- "flag", or name -> an option record of polysim.cli.options ({ kind, choices }); numbers
-- must be >= 0. -h/--help sets opts.help. Returns opts, positional arguments, or nil and a
-- message (an unknown flag names the nearest known one). Shared by every subcommand.
function _M.parse_options(args, first, spec)
  local opts, pos = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w%-]+)$")
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif name then
      local o = spec[name]
      if not o then
        local msg = "unknown option --" .. name
        local near = require("polysim.opts").suggest(name, spec)
        if near then msg = msg .. " (did you mean --" .. near .. "?)" end
        return nil, msg
      end
      local kind = type(o) == "table" and o.kind or o
      if kind == "flag" then
        opts[name] = true
      else
        local v = args[i + 1]
        if v == nil then return nil, "--" .. name .. " needs a value" end
        if kind == "number" then
          v = tonumber(v)
          if not v or v < 0 then return nil, "--" .. name .. " needs a number >= 0" end
        end
        if type(o) == "table" and o.choices then
          local ok = false
          for _, c in ipairs(o.choices) do ok = ok or c == v end
          if not ok then return nil, "--" .. name .. " must be " .. table.concat(o.choices, ", ") end
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
-- Blocks the signals and returns a function telling whether one arrived.
function _M.watch_signals(on_signal)
  local ploop = require "polysim.loop"
  local fd = core.signal_fd { "INT", "TERM" }
  ploop.core:watch(fd, "r", function()
    local name = core.read_signal(fd)
    if name then on_signal(name) end
  end)
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
  if cmd == "serve" then return require("polysim.cli.serve").main(args)
  elseif cmd == "exec" then
    if args[2] == "--help" or args[2] == "-h" then
      io.stdout:write(options.usage "exec")
      return 0
    end
    return _M.exec(args)
  elseif cmd == "run" then return require("polysim.backtest.run").main(args) -- --param/--report, then host
  elseif cmd == "backtest" then return require("polysim.backtest").main(args)
  elseif cmd == "record" then return require("polysim.backtest.record").main(args)
  elseif cmd == "version" or cmd == "--version" then
    if args[2] == "--help" or args[2] == "-h" then
      io.stdout:write(options.usage "version")
      return 0
    end
    print("polysim " .. core.VERSION .. " (" .. core.curl_version .. ")")
    return 0
  elseif cmd == nil or cmd == "help" or cmd == "--help" or cmd == "-h" then
    io.stdout:write(options.main_usage())
    return cmd == nil and 2 or 0
  end
  local names = {}
  for _, c in ipairs(options.COMMANDS) do names[#names + 1] = c.name end
  local near = require("polysim.opts").suggest(cmd, names)
  return die("unknown command '" .. tostring(cmd) .. "'" .. (near and (" (did you mean `" .. near .. "`?)") or "") ..
    "\n" .. options.main_usage())
end

return _M
