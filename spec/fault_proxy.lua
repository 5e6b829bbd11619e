-- The seeded fault proxy (spec/fault_proxy.c, built as BUILD/bin/fault_proxy) from Lua: starts
-- it in front of an upstream port, reads its counters, and stops it. Used by the failure
-- specs and `make soak` (bench/soak_orders.lua).
--   local fp = require "fault_proxy"
--   local p = fp.start { upstream = srv, seed = 7, rate = 0.4, delay_ms = 20 }
--   p.base_url, p.port, p:stats() -> { requests, forwarded, drop_after, drop_before, reset,
--   delay, rate }, p:set_rate(0), p:close()
local core = require "polysim.core"
local ploop = require "polysim.loop"

local _M = {}

local P = {}
local mt = { __index = P, __close = function(p) p:close() end }

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The proxy's executable: next to polysim's (POLYSIM_EXE), else build/bin.
function _M.exe()
  local e = os.getenv "POLYSIM_FAULT_PROXY"
  if e then return e end
  local polysim = os.getenv "POLYSIM_EXE"
  local dir = polysim and polysim:match("^(.*)/[^/]+$") or "build/bin"
  return dir .. "/fault_proxy"
end

function _M.available()
  local f = io.open(_M.exe(), "rb")
  if f then f:close() end
  return f ~= nil
end

local function port_of(upstream)
  if type(upstream) == "number" then return upstream end
  if type(upstream) == "table" then
    if upstream.port then return upstream.port end
    upstream = upstream.base_url
  end
  return tonumber(tostring(upstream):match(":(%d+)/?$"))
end

-- start{ upstream = port | srv | url, seed = 1, rate = 0.3, delay_ms = 50 }
function _M.start(o)
  local up = assert(port_of(o.upstream), "fault_proxy.start: upstream port unknown")
  local cmd = string.format("echo $$; exec %s %d %d %s %d", sh_quote(_M.exe()), up, o.seed or 1,
    string.format("%.6f", o.rate or 0.3), o.delay_ms or 50)
  local h = assert(io.popen(cmd, "r"))
  local pid = tonumber(h:read("l"))
  local line = h:read("l") or ""
  local port = tonumber(line:match("^PORT (%d+)"))
  if not (pid and port) then
    h:close()
    error("fault_proxy did not start (" .. _M.exe() .. "): " .. line)
  end
  return setmetatable({ pid = pid, port = port, base_url = "http://127.0.0.1:" .. port, handle = h }, mt)
end

local function control(self, method, path)
  local resp, err = ploop.await(function(on_done)
    core.request { method = method, url = self.base_url .. path, timeout = 10, connect_timeout = 5,
      fresh = true, on_done = on_done }
  end)
  if not resp then error("fault_proxy " .. path .. ": " .. tostring(err and err.message)) end
  return resp
end

function P:stats()
  return assert(core.json_decode(control(self, "GET", "/__proxy/stats").body))
end

function P:set_rate(r)
  control(self, "PUT", string.format("/__proxy/rate/%.6f", r))
end

function P:close()
  if not self.handle then return end
  os.execute("kill " .. math.floor(self.pid) .. " 2>/dev/null")
  self.handle:close()
  self.handle = nil
end

-- The exchange's own record of a user's orders: for each client order id, how many orders
-- carry it and how many fills (trades) those orders made. ex: srv.exchange; user: the
-- exchange's user table (see _M.user_of).
function _M.ledger(user)
  local by_coid, orders_by_id = {}, {}
  for _, o in ipairs(user.orders) do
    orders_by_id[o.id] = o
    local coid = o.client_order_id
    if coid then
      local e = by_coid[coid]
      if not e then e = { orders = 0, fills = 0, order = o }; by_coid[coid] = e end
      e.orders = e.orders + 1
    end
  end
  for _, t in ipairs(user.trades) do
    local o = orders_by_id[t.order_id]
    local e = o and o.client_order_id and by_coid[o.client_order_id]
    if e then e.fills = e.fills + 1 end
  end
  return by_coid
end

-- The exchange's user record behind the bootstrap API key.
function _M.user_of(ex)
  return ex.K.users[ex.user_id]
end

return _M
