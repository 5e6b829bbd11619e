-- A local exchange in its own process for spec/front_door_spec.lua: options as k=v
-- arguments (numbers), prints its port, serves for at most 60 s. With the argument "ws" it
-- is a bare core.serve instead: /ws upgrades to a WebSocket whose close code it prints
-- ("closed CODE"), anything else answers 200.
local o = { port = 0, tick = false, logger = function() end }
local ws = false
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=([%d.]+)$")
  if k then o[k] = tonumber(v) end
  if a == "ws" then ws = true end
end
local port
if ws then
  local core = require "polysim.core"
  local srv = assert(core.serve { port = 0, handler = function(req)
    if req.path == "/ws" then
      return { upgrade = { on_close = function(_, code)
        io.stdout:write("closed ", tostring(code), "\n")
        io.stdout:flush()
      end } }
    end
    return { status = 200, body = "{}" }
  end })
  port = srv:port()
else
  port = assert(require("polysim.serve").start(o)).port
end
io.stdout:write(port, "\n")
io.stdout:flush()
require("polysim.loop").run_until(function() return false end, 60)
