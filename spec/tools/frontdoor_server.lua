-- A local exchange in its own process for spec/front_door_spec.lua: options as k=v
-- arguments (numbers), prints its port, serves for at most 60 s.
local o = { port = 0, tick = false, logger = function() end }
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=([%d.]+)$")
  if k then o[k] = tonumber(v) end
end
local s = assert(require("polysim.serve").start(o))
io.stdout:write(s.port, "\n")
io.stdout:flush()
require("polysim.loop").run_until(function() return false end, 60)
