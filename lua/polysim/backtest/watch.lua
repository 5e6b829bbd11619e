-- `polysim backtest ... --dashboard [PORT] [--speed X]`: the live dashboard page
-- (polysim.dashboard) on a backtest replay. The page is the one `polysim run --dashboard`
-- serves; its equity curve is the backtest's own equity samples, in data time, plus the
-- account at each push, so the x axis is the recording's clock, not the wall's.
--
--   local watch = require("polysim.backtest.watch").new { port = 0, speed = 60, control = false,
--                                                         opts = backtest_options }
--   backtest_options.watch = watch          -- polysim.backtest.run calls started() and event(t)
--   local res = backtest.run(backtest_options)
--   watch:finish()                          -- the final figures pushed; then wait_for_signal()
--
-- Pacing: with --speed X, an event of data time t is replayed no earlier than (t - t0) / X
-- wall seconds after the first; without it the replay runs as fast as it goes. Either way
-- the page's server is served (the loop stepped) every 50 ms of wall time at most, and the
-- page gets at most ~10 pushes a second, so a fast replay is not slowed by its watcher.
local core = require "polysim.core"
local ploop = require "polysim.loop"

local math_min, monotime = math.min, core.monotime

local _M = {}

local SERVE_EVERY = 0.05 -- wall seconds between loop steps during the replay
local PUSH_EVERY = 0.1   -- wall seconds between pushes to the page (at most)

function _M.new(cfg)
  local w = { cfg = cfg, speed = cfg.speed, d = nil, url = nil }
  local loop = ploop.core
  local wall0, t0, next_serve = nil, nil, 0
  local samples, sent = nil, 0

  -- The backtest's equity samples not yet on the page, and the account now.
  local function new_points(snap)
    local pts = {}
    if samples then
      for i = sent + 1, #samples do
        local p = samples[i]
        pts[#pts + 1] = { t = p.t, v = p.v }
      end
      sent = #samples
    end
    local last = pts[#pts]
    if snap.equity and snap.now and not (last and last.t >= snap.now) then
      pts[#pts + 1] = { t = snap.now, v = snap.equity }
    end
    return pts
  end

  function w.started(rt, _, _, equity)
    samples = equity
    local dashboard = require "polysim.dashboard"
    local opts = cfg.opts
    local d, err = dashboard.attach(rt, {
      port = cfg.port or 0, control = cfg.control or false, mode = "backtest",
      title = (rt.name or "strategy") .. " \u{b7} backtest \u{b7} polysim",
      interval = PUSH_EVERY, idle_interval = 1,
      on_stop = function()
        w.page_stop = true
        opts.stop_reason = opts.stop_reason or "dashboard"
        return "stopping the replay: on_stop runs, then the report is written"
      end,
      on_cancel_all = function()
        local n = 0
        if rt.own and rt.client then n = tonumber(rt.own:cancel_open(rt.client)) or 0 end
        return tostring(n) .. " orders of the strategy cancelled"
      end,
    })
    if not d then error("--dashboard: " .. tostring(err), 0) end
    w.d, w.url = d, d.url
    -- the fills so far (the snapshot keeps only the last ones), for the page's count
    local fills = 0
    local unobserve = rt:observe(function(kind) if kind == "fill" then fills = fills + 1 end end)
    local close = d.close
    d.close = function(self)
      if unobserve then unobserve(); unobserve = nil end
      return close(self)
    end
    -- every collect carries the new curve points (dashboard.start takes snap.points)
    local collect = d.opts.collect
    d.opts.collect = function()
      local snap = collect()
      snap.points = new_points(snap)
      snap.fill_count = fills
      return snap
    end
    -- at most PUSH_EVERY apart, whoever asks (the timer, a fill, a reload); finish() forces
    local refresh, last = d.refresh, -math.huge
    d.refresh = function(self, force)
      local now = monotime()
      if not force and now - last < PUSH_EVERY then return end
      last = now
      return refresh(self)
    end
    io.stderr:write("dashboard: ", d.url, "\n")
    io.stderr:flush()
    if cfg.on_url then cfg.on_url(d.url) end
  end

  function w.event(t)
    local now = monotime()
    if not wall0 then wall0, t0 = now, t end
    local speed = w.speed
    if speed then
      local due = wall0 + (t - t0) / speed
      while now < due do
        loop:step(math_min(due - now, SERVE_EVERY))
        now = monotime()
      end
      next_serve = now + SERVE_EVERY
      return
    end
    if now >= next_serve then
      next_serve = now + SERVE_EVERY
      loop:step(0)
    end
  end

  -- After the replay: the final figures (the runtime has stopped: the page says so).
  function w.finish()
    if not w.d then return end
    -- nothing changes any more: no more periodic collects (a page opened later gets the
    -- last snapshot and the whole curve in its hello; Cancel pushes by itself)
    if w.d.cancel_timer then w.d.cancel_timer(); w.d.cancel_timer = nil end
    w.d:refresh(true)
    loop:step(0)
  end

  -- Serves the page until SIGINT/SIGTERM (or opts.stop_reason is set by the page's Stop).
  function w.wait_for_signal()
    if not w.d then return end
    local got
    w.page_stop = false
    require("polysim.cli").watch_signals(function(name) got = name end)
    ploop.run_until(function() return got ~= nil or w.page_stop end)
    w.d:close()
  end

  function w.close()
    if w.d then w.d:close() end
  end

  return w
end

return _M
