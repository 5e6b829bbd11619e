-- An in-process transport onto a polysim.exchange object: polysim.new{ transport = ... }
-- then talks to the exchange without a socket (what a backtest does). It shapes the
-- request as the HTTP front door (serve.lua) would: lower-case header names, a decoded
-- query table, the JSON body decoded.
local core = require "polysim.core"

local M = {}

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.transport(ex, calls)
  return function(method, pq, headers, body)
    if calls then calls[#calls + 1] = { method = method, path = pq, headers = headers, body = body } end
    local path, qs = pq:match("^([^?]*)%??(.*)$")
    local query = {}
    for k, v in qs:gmatch("([^&=]+)=([^&]*)") do query[unescape(k)] = unescape(v) end
    local h = {}
    for k, v in pairs(headers) do h[k:lower()] = v end
    local req = { method = method, path = path, query = query, headers = h, body = body }
    if body then
      local v, err = core.json_decode(body)
      if err then req.json_error = err else req.json = v end
    end
    local resp = ex:handle(req)
    local rbody = resp.body
    if type(rbody) == "table" then rbody = core.json_encode(rbody) end
    local rh = resp.headers or {}
    if resp.content_type then rh["Content-Type"] = resp.content_type end
    if resp.drop then return nil, "EMPTY_REPLY", "the exchange dropped the answer" end
    return resp.status or 200, rh, rbody or ""
  end
end

return M
