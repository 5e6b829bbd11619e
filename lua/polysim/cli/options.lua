-- The one table of the `polysim` command's subcommands and flags (issue 11). The parser
-- (polysim.cli.parse_options), `polysim --help`, `polysim COMMAND --help`, the README's
-- flag lists and the man page (docs/polysim.1, `make man`) are all made from it, and
-- spec/cli_flags_spec.lua checks each of them names every flag.
--
-- A command: { name, synopsis (after "polysim "), about (paragraphs), options = {...},
-- module = "polysim.x" (its own parser and help: backtest, record) }.
-- An option: { name, value = "METAVAR" (nil: a flag), kind = "string" | "number" |
-- "flag", choices = { ... }, help, by = "who parses it" (flags another module takes out
-- of the arguments before the table's parser sees them; listed here for the help) }.
local _M = {}

local LEVELS = { "debug", "info", "warn", "error" }

_M.COMMANDS = {
  {
    name = "serve",
    synopsis = "serve [options]",
    summary = "run the local exchange (a simulated PolySimulator API) on 127.0.0.1",
    about = {
      "Runs the local exchange until SIGINT/SIGTERM. The first line on stdout is a JSON object " ..
      "with base_url, api_key and bootstrap_token; logs go to stderr. Point a client at it with " ..
      "both: polysim.new{ base_url = <base_url>, api_key = <api_key> }. Do not export that key " ..
      "as POLYSIM_API_KEY: that variable is for the real service, and serve never reads it.",
    },
    options = {
      { name = "host", value = "ADDR", kind = "string",
        help = "address to bind (default 127.0.0.1; anything else is reachable by others)" },
      { name = "port", value = "N", kind = "number", help = "port (default 8000; 0 picks a free one; a busy port fails)" },
      { name = "seed", value = "S", kind = "number", help = "seed of the generated markets (default 1)" },
      { name = "markets", value = "FILE", kind = "string", help = "JSON file of markets instead of generated ones" },
      { name = "tick", value = "SECONDS", kind = "number", help = "how often prices move (default 0.5; 0 freezes them)" },
      { name = "unlimited", kind = "flag", help = "no rate limits (benchmarks)" },
      { name = "api-key", value = "KEY", kind = "string",
        help = "the key the exchange accepts (ps_live_ + 64 hex; default $POLYSIM_LOCAL_KEY, else a new one)" },
      { name = "per-ip", value = "N", kind = "number", help = "open connections allowed from one address (default 256)" },
      { name = "header-timeout", value = "SECONDS", kind = "number",
        help = "time a new connection gets to send its request headers (default 10)" },
      { name = "max-connections", value = "N", kind = "number", help = "open connections in all (default 8192)" },
    },
  },
  {
    name = "run",
    synopsis = "run STRATEGY.lua [STRATEGY.lua ...] [options]",
    summary = "run strategies (local exchange unless --live or --base-url)",
    about = {
      "Runs strategies, reloading each when its files change. By default they trade against a " ..
      "local exchange started in the same process, whatever POLYSIM_API_KEY says. Orders go to " ..
      "the real API only with --live (key from POLYSIM_API_KEY) or to the server named by " ..
      "--base-url; a LIVE banner says so before the first order.",
      "Several files run side by side in one host, each with its own context, state, orders, " ..
      "P&L line and reloads; one strategy's error or reload touches no other.",
    },
    options = {
      { name = "live", kind = "flag",
        help = "trade on the real API (key from POLYSIM_API_KEY); without --live or --base-url the " ..
               "strategy trades on a local exchange started in this process" },
      { name = "base-url", value = "URL", kind = "string",
        help = "trade against this server (key from POLYSIM_API_KEY; for a loopback URL such as a " ..
               "`polysim serve`, POLYSIM_LOCAL_KEY when set)" },
      { name = "duration", value = "SECONDS", kind = "number", help = "stop after this long (default: until SIGINT/SIGTERM)" },
      { name = "seed", value = "S", kind = "number", help = "seed of the local exchange's markets (default 1)" },
      { name = "tick", value = "SECONDS", kind = "number",
        help = "how often the local exchange moves prices (default 0.5; 0 freezes them)" },
      { name = "budget", value = "SECONDS", kind = "number",
        help = "time a callback may run without yielding (default 0.5; 0: no limit)" },
      { name = "no-reload", kind = "flag", help = "do not reload a strategy when its files change" },
      { name = "quiet", kind = "flag",
        help = "no status line and no info or debug lines (warnings and errors still show; --log-file gets all)" },
      { name = "no-status", kind = "flag", help = "no status line (the log lines stay)" },
      { name = "log-file", value = "FILE", kind = "string", help = "also append every log line to FILE" },
      { name = "log-level", value = "LEVEL", kind = "string", choices = LEVELS,
        help = "lowest level logged: debug, info (default), warn or error" },
      { name = "log-format", value = "FORMAT", kind = "string", choices = { "text", "json" },
        help = "text (default) or json: one object a line with time, level, strategy and msg" },
      { name = "param", value = "NAME=VALUE", kind = "string", by = "polysim.backtest.run",
        help = "a value for ctx.params (repeatable)" },
      { name = "report", value = "DIR", kind = "string", by = "polysim.backtest.run",
        help = "write the backtest-style report (fills, equity curve) to DIR at stop" },
      { name = "dashboard", value = "[PORT]", kind = "string", by = "polysim.dashboard",
        help = "serve a live page of the run on 127.0.0.1 (PORT 0 or none: any free port)" },
      { name = "dashboard-control", kind = "flag", by = "polysim.dashboard",
        help = "the page gets Stop and Cancel buttons (needs the token in the printed URL)" },
    },
  },
  { name = "backtest", synopsis = "backtest STRATEGY.lua --data FILE [options]", module = "polysim.backtest",
    summary = "replay a recording through a strategy in simulated time" },
  { name = "record", synopsis = "record [options] -o FILE", module = "polysim.backtest.record",
    summary = "record prices and books from a server into a file for backtests" },
  { name = "version", synopsis = "version", summary = "print the version and the libcurl it uses", options = {} },
  { name = "exec", synopsis = "exec SCRIPT [ARGS]",
    summary = "run a Lua file in this interpreter, as `lua5.4 SCRIPT` would", options = {} },
  { name = "help", synopsis = "help | --help | -h", summary = "this text; `polysim COMMAND --help` for one command",
    options = {} },
}

local by_name = {}
for _, c in ipairs(_M.COMMANDS) do by_name[c.name] = c end

-- The command record named `name`, or nil.
function _M.command(name) return by_name[name] end

-- The parser's spec for a command: name -> option record, for the options this table's
-- parser takes (not those another module removes from the arguments first).
function _M.spec(name)
  local spec = {}
  for _, o in ipairs(by_name[name].options or {}) do
    if not o.by then spec[o.name] = o end
  end
  return spec
end

---------------------------------------------------------------------------------------------
-- help text

local function wrap(text, width, indent)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if #line > 0 and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = #line > 0 and (line .. " " .. word) or word
    end
  end
  if #line > 0 then lines[#lines + 1] = line end
  return indent .. table.concat(lines, "\n" .. indent)
end
_M.wrap = wrap

local function flag_text(o)
  return "--" .. o.name .. (o.value and (" " .. o.value) or "")
end
_M.flag_text = flag_text

-- "[--a X] [--b]" for every option of a command, wrapped under "polysim NAME".
function _M.synopsis_flags(cmd)
  local parts = {}
  for _, o in ipairs(cmd.options or {}) do parts[#parts + 1] = "[" .. flag_text(o) .. "]" end
  return table.concat(parts, " ")
end

-- The `polysim COMMAND --help` text of a command of this table.
function _M.usage(name)
  local cmd = by_name[name]
  local out = { "usage: polysim " .. cmd.synopsis, "" }
  for _, p in ipairs(cmd.about or { cmd.summary }) do
    out[#out + 1] = wrap(p, 88, "  ")
    out[#out + 1] = ""
  end
  local w = 0
  for _, o in ipairs(cmd.options or {}) do w = math.max(w, #flag_text(o)) end
  w = math.min(w, 22)
  for _, o in ipairs(cmd.options or {}) do
    local f = flag_text(o)
    local pad = #f > w and ("\n" .. (" "):rep(w + 4)) or (" "):rep(w - #f + 2)
    local help = wrap(o.help, 90 - w - 4, (" "):rep(w + 4)):sub(w + 5)
    out[#out + 1] = "  " .. f .. pad .. help
  end
  out[#out + 1] = "  " .. ("-h, --help"):gsub("$", (" "):rep(math.max(2, w - 8))) .. "this text"
  return table.concat(out, "\n") .. "\n"
end

-- The help a command with its own module prints (backtest, record): its main is called with
-- --help while io.stdout collects what it writes.
function _M.module_usage(cmd)
  if type(cmd) == "string" then cmd = by_name[cmd] end
  local buf, real = {}, io.stdout
  rawset(io, "stdout", { write = function(self, ...)
    for i = 1, select("#", ...) do buf[#buf + 1] = tostring((select(i, ...))) end
    return self
  end, flush = function() end })
  local ok, err = pcall(function() return require(cmd.module).main { cmd.name, "--help" } end)
  rawset(io, "stdout", real)
  if not ok then error(err, 0) end
  return table.concat(buf)
end

-- `polysim --help`: every command with every flag.
function _M.main_usage()
  local out = { "usage: polysim <command> [options]", "" }
  for _, cmd in ipairs(_M.COMMANDS) do
    local head = "  polysim " .. cmd.synopsis
    if cmd.module then
      -- its own module's parser: the usage lines of its help (every flag)
      local ok, text = pcall(_M.module_usage, cmd)
      local lines = {}
      for l in (ok and text or ""):gmatch("[^\n]+") do
        if l:match("^usage:") or l:match("^%s+polysim ") then
          lines[#lines + 1] = "  " .. (l:gsub("^usage: ", ""):gsub("^%s+", ""))
        elseif #lines > 0 and l:match("^%s+%[") then
          lines[#lines + 1] = "        " .. l:gsub("^%s+", "")
        elseif #lines > 0 then break end
      end
      out[#out + 1] = #lines > 0 and table.concat(lines, "\n") or head
    else
      out[#out + 1] = head
      local flags = _M.synopsis_flags(cmd)
      if #flags > 0 then out[#out + 1] = wrap(flags, 80, "        ") end
    end
    out[#out + 1] = wrap(cmd.summary, 86, "      ")
  end
  out[#out + 1] = ""
  out[#out + 1] = "`polysim COMMAND --help` explains each flag; `man polysim` has them all."
  return table.concat(out, "\n") .. "\n"
end

return _M
