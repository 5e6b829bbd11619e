-- A strategy's own output: print(), io.write(), io.stdout:write() and io.stderr:write() in
-- its environment go through the runtime's logger (so they are timestamped, tagged with the
-- strategy's name, and the API key is redacted), one log line per line of text. Partial
-- lines wait for their newline (or for the next line of the other stream).
--
--   output.install(env, ver)   -- env.print, env.io (a copy of io with stdout/stderr replaced)
local ploop = require "polysim.loop"

local error, io, pairs, select, setmetatable, tostring, type = error, io, pairs, select, setmetatable, tostring, type
local table_concat = table.concat

local _M = {}

-- The runtime the text belongs to: the version's, or (while its file is being loaded) the
-- one whose task is running.
local function runtime(ver)
  if ver.rt then return ver.rt end
  local task = ploop.current()
  return task and task.rt
end

local function emit(ver, level, text)
  local rt = runtime(ver)
  if rt and rt._log then
    rt:_log(level, rt.name or "strategy", text)
  else
    io.stderr:write(text, "\n")
  end
end

-- A stream-like object: :write(...) buffers and logs whole lines; :flush() logs the rest.
local function stream(ver, level)
  local self = { buf = "" }
  local function flush_lines()
    local buf = self.buf
    local start = 1
    while true do
      local nl = buf:find("\n", start, true)
      if not nl then break end
      emit(ver, level, buf:sub(start, nl - 1))
      start = nl + 1
    end
    self.buf = buf:sub(start)
  end
  function self.write(s, ...)
    local first = 1
    if s == self then first = 2 end
    local args = { s, ... }
    local parts = {}
    for i = first, select("#", s, ...) do
      local v = args[i]
      if type(v) ~= "string" and type(v) ~= "number" then
        error("bad argument #" .. (i - first + 1) .. " to 'write' (string expected, got " .. type(v) .. ")", 2)
      end
      parts[#parts + 1] = tostring(v)
    end
    self.buf = self.buf .. table_concat(parts)
    flush_lines()
    return self
  end
  function self.flush()
    if #self.buf > 0 then
      local rest = self.buf
      self.buf = ""
      emit(ver, level, rest)
    end
    return self
  end
  function self.close() return self.flush() end
  function self.setvbuf() return true end
  function self.lines() error("cannot read from the strategy's output stream", 2) end
  function self.read() return nil, "cannot read from the strategy's output stream" end
  return setmetatable(self, { __name = "polysim.StrategyOutput",
                              __tostring = function() return "file (strategy " .. level .. " output)" end })
end
_M.stream = stream

function _M.install(env, ver)
  local out, err = stream(ver, "info"), stream(ver, "warn")
  env.print = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = env.tostring((select(i, ...))) end
    out.write(table_concat(parts, "\t") .. "\n")
  end
  local io_copy = {}
  for k, v in pairs(io) do io_copy[k] = v end
  io_copy.stdout, io_copy.stderr = out, err
  io_copy.write = function(...) return out.write(...) end
  io_copy.output = function(f)
    if f ~= nil then error("io.output is not available to a strategy", 2) end
    return out
  end
  env.io = io_copy
  ver.output = { out = out, err = err }
end

return _M
