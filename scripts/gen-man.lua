-- Writes docs/polysim.1 (`make man`) from polysim.cli.options, the table the parser and
-- every --help use; backtest and record, which parse their own flags, from their --help.
-- spec/cli_flags_spec.lua checks the committed page is this script's output.
local options = require "polysim.cli.options"
local core = require "polysim.core"

local out = {}
local function w(s) out[#out + 1] = s end

-- roff: a backslash and a leading dot or quote are special
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("^([.'])", "\\&%1"))
end

w('.TH POLYSIM 1 "" "polysim ' .. core.VERSION .. '" "User Commands"')
w(".SH NAME")
w("polysim \\- PolySimulator strategies in Lua: run, serve a local exchange, backtest")
w(".SH SYNOPSIS")
for _, cmd in ipairs(options.COMMANDS) do
  w(".B polysim")
  w(esc(cmd.synopsis))
  w(".br")
end
w(".SH DESCRIPTION")
w("polysim runs trading strategies written in Lua 5.4 against PolySimulator (paper trading of " ..
  "Polymarket markets) or against a local exchange that speaks the same API offline. " ..
  "Orders go to the real service only with \\fB\\-\\-live\\fR or a \\fB\\-\\-base\\-url\\fR.")
w(".SH COMMANDS")
for _, cmd in ipairs(options.COMMANDS) do
  w(".SS polysim " .. esc(cmd.synopsis))
  if cmd.module then
    local ok, text = pcall(options.module_usage, cmd)
    w(esc(cmd.summary) .. ".")
    if ok then
      w(".PP")
      w(".nf")
      for line in text:gmatch("[^\n]*") do w(esc(line)) end
      w(".fi")
    end
  else
    for _, p in ipairs(cmd.about or { cmd.summary }) do
      w(".PP")
      w(esc(p))
    end
    for _, o in ipairs(cmd.options or {}) do
      w(".TP")
      w("\\fB\\-\\-" .. esc(o.name) .. "\\fR" .. (o.value and (" \\fI" .. esc(o.value) .. "\\fR") or ""))
      w(esc(o.help))
    end
    if cmd.options and #cmd.options > 0 then
      w(".TP")
      w("\\fB\\-h\\fR, \\fB\\-\\-help\\fR")
      w("print this command's help and exit")
    end
  end
end
w(".SH ENVIRONMENT")
w(".TP")
w(".B POLYSIM_API_KEY")
w("the real service's key (\\fBpolysim run \\-\\-live\\fR, \\fB\\-\\-base\\-url\\fR); never read by \\fBpolysim serve\\fR")
w(".TP")
w(".B POLYSIM_LOCAL_KEY")
w("the local exchange's key: \\fBpolysim serve\\fR accepts it (else \\fB\\-\\-api\\-key\\fR, else a new one), " ..
  "\\fBpolysim run \\-\\-base\\-url\\fR sends it to a loopback server")
w(".TP")
w(".B POLYSIM_BASE_URL")
w("the default server of polysim.new in a script")
w(".SH FILES")
w("The Lua API reference: \\fBmake doc\\fR writes build/doc/index.html.")
w(".SH SEE ALSO")
w("README.md, examples/README.md, include/polysim.h")
io.write(table.concat(out, "\n"), "\n")
