-- The backtest's progress bar on stderr: events done, the share of the file read, events/s
-- and the time left (from the bytes read against the file's size). Nothing is drawn in the
-- first second (short runs stay quiet), and it is redrawn at most ten times a second.
--
--   local bar = progress.new { out = io.stderr, enabled = true, monotime = core.monotime }
--   bar:update(events, bytes, total_bytes)  -- as often as liked
--   bar:finish(events, bytes, total_bytes)  -- the last figures and a newline, if it drew
local core = require "polysim.core"

local floor, format = math.floor, string.format

local _M = {}

_M.DELAY = 1        -- seconds before the first draw
_M.INTERVAL = 0.1   -- seconds between draws
_M.WIDTH = 24       -- characters of the bar itself

local Bar = {}
Bar.__index = Bar

-- Whether a bar is wanted: --progress forces it, --quiet silences it, else only on a tty.
function _M.wanted(o)
  if o.quiet then return false end
  if o.progress then return true end
  return core.isatty ~= nil and core.isatty(2) == true
end

local function clock_text(s)
  if s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = floor(s + 0.5)
  if s >= 3600 then return format("%d:%02d:%02d", s // 3600, s // 60 % 60, s % 60) end
  return format("%02d:%02d", s // 60, s % 60)
end

local function thousands(n)
  local s = format("%d", n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

-- The line for these figures (no carriage return): "[#####.....]  42%  1,234,567 events
-- 345,678 events/s  ETA 00:12".
function _M.line(events, bytes, total, elapsed)
  local frac = (total and total > 0) and math.min(1, bytes / total) or 0
  local fill = floor(frac * _M.WIDTH + 0.5)
  local rate = elapsed > 0 and events / elapsed or 0
  local eta = frac > 0 and elapsed * (1 - frac) / frac or math.huge
  return format("[%s%s] %3d%%  %s events  %s events/s  ETA %s", string.rep("#", fill),
    string.rep(".", _M.WIDTH - fill), floor(frac * 100), thousands(events), thousands(floor(rate)),
    clock_text(eta))
end

function _M.new(o)
  local now = o.monotime or core.monotime
  return setmetatable({ out = o.out or io.stderr, enabled = o.enabled, now = now, t0 = now(),
    last = nil, drawn = false, width = 0 }, Bar)
end

function Bar:update(events, bytes, total, force)
  if not self.enabled then return end
  local t = self.now()
  local elapsed = t - self.t0
  if not force and elapsed < _M.DELAY then return end
  if not force and self.last and t - self.last < _M.INTERVAL then return end
  self.last = t
  local text = _M.line(events, bytes, total, elapsed)
  local pad = self.width > #text and string.rep(" ", self.width - #text) or ""
  self.width = #text
  self.out:write("\r", text, pad)
  self.out:flush()
  self.drawn = true
end

function Bar:finish(events, bytes, total)
  if self.drawn then
    if events then self:update(events, bytes, total, true) end
    self.drawn = false
    self.out:write("\n")
    self.out:flush()
  end
end

return _M
