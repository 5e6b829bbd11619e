-- Handlers: health, readiness and status (public surface).
local util = require "polysim.exchange.util"
local R = require "polysim.exchange.request"

local ok = R.ok

local H = {}

function H.health(_, _, _, now)
  return ok { status = "ok", timestamp = util.iso(now), version = "1.0.0" }
end

-- Liveness (polysim_clob_client/client.py get_ok calls GET /v1/health/live).
function H.live(_, _, _, now)
  return ok { status = "ok", timestamp = util.iso(now) }
end

function H.ready(self, _, _, now)
  return ok { status = "ok", timestamp = util.iso(now), checks = {
    database = { status = "ok", latency_ms = 0 }, redis = { status = "ok", latency_ms = 0 },
    markets = { status = "ok", count = #self.U.list } } }
end

function H.status(self, _, _, now)
  local pending = 0
  for _, m in ipairs(self.O.rmarkets) do
    for _, r in pairs(m.resting) do pending = pending + #r.BUY + #r.SELL end
  end
  local hot = 0
  for _, m in ipairs(self.U.list) do if m.is_hot then hot = hot + 1 end end
  return ok {
    status = "operational", timestamp = util.iso(now), version = "1.0.0",
    uptime_seconds = now - self.started_at,
    database = { status = "ok", latency_ms = 0 }, redis = { status = "ok", latency_ms = 0 },
    matching_engine = { status = "ok", pending_orders = pending, mode = "local" },
    websocket = { status = "ok", connections = self.ws_connections or 0 },
    markets = { status = "ok", count = #self.U.list, hot = hot, seed = self.seed },
  }
end

return H
