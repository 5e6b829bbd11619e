-- The backtest's client transport: requests go to an in-process polysim.exchange's handler
-- (no socket), shaped as the HTTP front door would shape them. opts.latency (seconds): an
-- order's arrival at the exchange is delayed that long on the simulated clock (the caller's
-- task waits on it). opts.orders: a list that gets {t, market_id, side, outcome, quantity,
-- status, fill_price} per order placed.
local core = require "polysim.core"
local ploop = require "polysim.loop"

local error, pcall, type = error, pcall, type
local gethook, sethook = debug.gethook, debug.sethook

local _M = {}

-- fn(a, b) without the running coroutine's Lua hook (a callback's: the budget's count hook),
-- put back as it was afterwards however fn ends. A count hook makes Lua trap on every VM
-- instruction; the in-process exchange is polysim's own code, which the budget never
-- interrupts (it only flags the task and raises at the next line of strategy code, which the
-- hook, back, still does; a signal's stop the same way). perf, issue 12 (callgrind):
-- luaG_traceexec was ~9k of examples/mean_reversion's ~77k instructions an event.
local function unhooked(fn, a, b)
  local hook, mask, count = gethook()
  if type(hook) ~= "function" then return fn(a, b) end -- none, or a C hook (the host's preempt)
  sethook()
  local ok, r1, r2, r3 = pcall(fn, a, b)
  sethook(hook, mask, count)
  if not ok then error(r1, 0) end
  return r1, r2, r3
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function _M.new(ex, opts)
  opts = opts or {}
  local latency, clock, seen = opts.latency or 0, opts.clock, opts.orders
  local before = opts.before
  local function handle(req)
    if before then before() end
    return ex:handle(req)
  end
  return function(method, pq, headers, body)
    local path, qs = pq:match("^([^?]*)%??(.*)$")
    local is_order = method == "POST" and path == "/v1/orders"
    if is_order and latency > 0 and ploop.current() then
      ploop.suspend(function(wake) clock.after(latency, wake) end)
    end
    local query = {}
    for k, v in qs:gmatch("([^&=]+)=([^&]*)") do query[unescape(k)] = unescape(v) end
    local h = {}
    for k, v in pairs(headers) do h[k:lower()] = v end
    local req = { method = method, path = path, query = query, headers = h, body = body }
    if body then
      local v, err = core.json_decode(body)
      if err then req.json_error = err else req.json = v end
    end
    local resp = unhooked(handle, req)
    local rbody = resp.body
    if is_order and seen and req.json then
      local j, r = req.json, type(rbody) == "table" and rbody or {}
      seen[#seen + 1] = { t = clock and clock.now(), market_id = j.market_id, side = j.side, outcome = j.outcome,
        quantity = tostring(j.quantity), status = r.status or resp.status, fill_price = r.fill_price }
    end
    if type(rbody) == "table" then rbody = core.json_encode(rbody) end
    local rh = resp.headers or {}
    if resp.content_type then rh["Content-Type"] = resp.content_type end
    return resp.status or 200, rh, rbody or ""
  end
end

return _M
