-- The logger: levels, sinks, formats, redaction. Every line polysim writes about a strategy
-- (the runtime's own, ctx.log, a strategy's print() and io.stderr:write()) goes through here,
-- and the API key is removed from each line here, whatever called it.
--
--   local log = require "polysim.log"
--   local out = log.new { level = "info", format = "text" | "json", quiet = false,
--                         file = "run.log" | file handle, sink = function(line, level, rec) end,
--                         api_key = "ps_live_..." }
--   local l = out:logger("tag")
--   l.info("x", 1); l.info("%d fills", n); l:warn("also with a colon")
--   out:on_line(function(rec) end)      -- rec = { t, level, tag, msg, line } (redacted)
--
-- Sinks: `sink` (a function) when given, else stderr; `file` in addition (append). `quiet`
-- keeps info and debug lines off stderr (warnings and errors still show; files get all).
-- Formats: "text" is `HH:MM:SS.mmm LEVEL [tag] message`; "json" is one object a line,
-- {"t":unix seconds,"time":"ISO-8601","level":..,"tag":..,"strategy":..,"msg":..}
-- (strategy: the tag, left out of the host's own "polysim" lines).
-- Redaction: anything shaped like a PolySimulator key (ps_live_ + hex, any case), the key
-- itself in any case, its 64-hex tail alone, and pieces of that tail of 12+ hex digits (a
-- key split across two calls) become <redacted>.
local core = require "polysim.core"
local check_options = require("polysim.opts").check

local error, ipairs, pairs, pcall, select, setmetatable, tostring, type =
  error, ipairs, pairs, pcall, select, setmetatable, tostring, type
local string_format, table_concat = string.format, table.concat
local monotime = core.monotime

local _M = {}

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }
_M.LEVELS = LEVELS
local FORMATS = { text = true, json = true }

---------------------------------------------------------------------------------------------
-- wall-clock time

-- core.realtime (CLOCK_REALTIME) when the core has it; otherwise os.time() and the
-- monotonic clock: the offset starts as a lower bound and is raised whenever os.time()
-- shows that a second began before our estimate says, so it converges within a few ms.
local wall0 = os.time() - monotime()
local function wallclock()
  local m = monotime()
  local t = wall0 + m
  local s = os.time()
  if s > t then
    wall0 = s - m
    t = s
  end
  return t
end
if type(core.realtime) == "function" then wallclock = core.realtime end
_M.wallclock = wallclock

local function hms(t)
  return os.date("!%H:%M:%S", math.floor(t)) .. string_format(".%03d", math.floor((t % 1) * 1000))
end

---------------------------------------------------------------------------------------------
-- redaction

-- A case-insensitive plain replacement of `what` (lower case) in s.
local function ireplace(s, what, with)
  if #what == 0 then return s end
  local low = s:lower()
  local a, b = low:find(what, 1, true)
  if not a then return s end
  local out, i = {}, 1
  while a do
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = with
    i = b + 1
    a, b = low:find(what, i, true)
  end
  out[#out + 1] = s:sub(i)
  return table_concat(out)
end

local MIN_PIECE = 12

-- redact(s, secrets) -> s with keys removed. secrets: a list of strings (the host's key...).
function _M.redact(s, secrets)
  s = s:gsub("[Pp][Ss]_[Ll][Ii][Vv][Ee]_%x+", "ps_live_<redacted>")
  if secrets then
    for _, secret in ipairs(secrets) do
      local low = secret:lower()
      if #low >= 8 then s = ireplace(s, low, "<redacted>") end
      local tail = low:match("(%x+)$")
      if tail and #tail >= 32 then
        s = ireplace(s, tail, "<redacted>")
        -- pieces of the tail: a key split over two log calls, or cut by a line break
        s = s:gsub("%x+", function(run)
          if #run >= MIN_PIECE and tail:find(run:lower(), 1, true) then return "<redacted>" end
        end)
      end
    end
  end
  return s
end
local redact = _M.redact

---------------------------------------------------------------------------------------------
-- formatting

-- log.info("%d fills", n) formats when the first argument has a % and the rest fit;
-- otherwise the arguments are joined with spaces.
local function format_args(n, first, ...)
  if n == 0 then return "" end
  if n > 1 and type(first) == "string" and first:find("%", 1, true) then
    local ok, s = pcall(string_format, first, ...)
    if ok then return s end
  end
  local parts = { tostring(first) }
  for i = 1, n - 1 do parts[i + 1] = tostring((select(i, ...))) end
  return table_concat(parts, " ")
end
_M.format_args = format_args

local function text_line(rec)
  return string_format("%s %-5s [%s] %s", hms(rec.t), rec.level:upper(), rec.tag, rec.msg)
end

local function json_line(rec)
  local t = rec.t
  local iso = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string_format(".%03dZ", math.floor((t % 1) * 1000))
  -- strategy: the strategy the line is about (its tag); the host's own lines have none
  return core.json_encode({ t = t, time = iso, level = rec.level, tag = rec.tag, msg = rec.msg,
    strategy = rec.tag ~= "polysim" and rec.tag or nil }, { sort_keys = true })
end

_M.json_line = json_line -- for a line written outside a log output (polysim run's dashboard URL)

---------------------------------------------------------------------------------------------
-- the output object

local Out = {}
local out_mt = { __name = "polysim.Log", __index = Out }
out_mt.__tostring = function(self) return "polysim.Log (" .. self.format .. ")" end
_M.methods = Out

local function stderr_sink(line) io.stderr:write(line, "\n") end

local NEW_OPTIONS = { level = true, format = true, quiet = true, file = true, sink = true, api_key = true,
                      secrets = true }

function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("log.new: options must be a table", 2) end
  check_options("log.new", opts, NEW_OPTIONS) -- polysim.opts: did-you-mean, at the caller's line
  local level = opts.level or "info"
  if not LEVELS[level] then error("log.new: level must be debug, info, warn or error", 2) end
  local format = opts.format or "text"
  if not FORMATS[format] then error("log.new: format must be \"text\" or \"json\"", 2) end
  local self = setmetatable({
    level = LEVELS[level], format = format, quiet = opts.quiet and true or false,
    sink = opts.sink, file = nil, own_file = false, secrets = {}, observers = nil,
  }, out_mt)
  if opts.api_key then self:add_secret(opts.api_key) end
  for _, s in ipairs(opts.secrets or {}) do self:add_secret(s) end
  if type(opts.file) == "string" then
    local f, err = io.open(opts.file, "a")
    if not f then error("log.new: cannot open log file: " .. tostring(err), 2) end
    f:setvbuf("line")
    self.file, self.own_file = f, true
  elseif opts.file then
    self.file = opts.file
  end
  return self
end

-- Another string to keep out of every line (a second key...).
function Out:add_secret(s)
  if type(s) == "string" and #s >= 8 then self.secrets[#self.secrets + 1] = s end
end

function Out:set_level(level)
  if not LEVELS[level] then error("log: level must be debug, info, warn or error", 2) end
  self.level = LEVELS[level]
end

function Out:enabled(level) return LEVELS[level] >= self.level end

-- fn(rec) for every line written, rec = { t, level, tag, msg, line } with msg redacted.
function Out:on_line(fn)
  self.observers = self.observers or {}
  self.observers[#self.observers + 1] = fn
end

-- Writes one message (already a string) at level with tag; returns its record (nil when
-- the level is filtered out).
function Out:emit(level, tag, msg)
  if LEVELS[level] < self.level then return end
  local rec = { t = wallclock(), level = level, tag = tag, msg = redact(tostring(msg), self.secrets) }
  local line = (self.format == "json" and json_line or text_line)(rec)
  rec.line = line
  if self.sink then
    self.sink(line, level, rec)
  elseif not self.quiet or LEVELS[level] >= LEVELS.warn then
    stderr_sink(line)
  end
  if self.file then self.file:write(line, "\n") end
  local obs = self.observers
  if obs then for _, fn in ipairs(obs) do fn(rec) end end
  return rec
end

-- A tagged logger: l.info("x", 1), l.info("%d fills", n), l:info(...) all work.
function Out:logger(tag)
  local l = {}
  for level in pairs(LEVELS) do
    l[level] = function(first, ...)
      if first == l then return self:emit(level, tag, format_args(select("#", ...), ...)) end
      return self:emit(level, tag, format_args(select("#", ...) + 1, first, ...))
    end
  end
  return l
end

function Out:close()
  if self.own_file and self.file then self.file:close() end
  self.file = nil
end

-- Compatibility: logger(tag, { sink = fn(line, level), level = "info", api_key = ... }).
function _M.logger(tag, opts)
  opts = opts or {}
  return _M.new { sink = opts.sink, level = opts.level, api_key = opts.api_key, format = opts.format,
                  quiet = opts.quiet, file = opts.file }:logger(tag)
end

return _M
