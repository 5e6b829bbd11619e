-- The report of a backtest (or a run): report.json, trades.csv, equity.csv, report.html.
--
--   local report = require "polysim.report"
--   local summary = report.summary(res)       -- the figures (report.json's content)
--   report.write(dir, res)                    -- the four files; returns the summary
--
-- res = { equity = {{t, v}}, trades = {{t, market_id, side, outcome, quantity, price, fee}},
--         params, span = {from, to}, sample (seconds between equity samples), latency_ms, ... }
-- Sharpe: mean / standard deviation of the per-sample returns of the equity curve sampled
-- every `sample` seconds of data time, times sqrt(samples per year); 0 when undefined.
local core = require "polysim.core"

local tonumber, tostring = tonumber, tostring
local string_format = string.format

local _M = {}

local YEAR = 365 * 24 * 3600

local function r2(x) return string_format("%.2f", x) end

function _M.summary(res)
  local eq = res.equity or {}
  local start = tonumber(eq[1] and eq[1].v) or 0
  local last = tonumber(eq[#eq] and eq[#eq].v) or start
  local peak, maxdd = start, 0
  local rets = {}
  for i, p in ipairs(eq) do
    local v = tonumber(p.v) or 0
    if v > peak then peak = v end
    if peak > 0 and (peak - v) / peak > maxdd then maxdd = (peak - v) / peak end
    if i > 1 then
      local prev = tonumber(eq[i - 1].v) or 0
      if prev > 0 then rets[#rets + 1] = v / prev - 1 end
    end
  end
  local mean, sd = 0, 0
  for _, r in ipairs(rets) do mean = mean + r end
  if #rets > 0 then mean = mean / #rets end
  for _, r in ipairs(rets) do sd = sd + (r - mean) ^ 2 end
  if #rets > 1 then sd = math.sqrt(sd / (#rets - 1)) end
  local sample = res.sample or 60
  local sharpe = (sd > 0) and mean / sd * math.sqrt(YEAR / sample) or 0
  -- trades: fees, round trips (a SELL closing a position) for the win rate
  local fees, wins, closes = 0, 0, 0
  local cost = {} -- market/outcome -> {qty, avg}
  for _, t in ipairs(res.trades or {}) do
    fees = fees + (tonumber(t.fee) or 0)
    local key = tostring(t.market_id) .. "/" .. tostring(t.outcome)
    local q, p = tonumber(t.quantity) or 0, tonumber(t.price) or 0
    local c = cost[key] or { qty = 0, avg = 0 }
    cost[key] = c
    if t.side == "BUY" then
      c.avg = (c.avg * c.qty + p * q) / (c.qty + q)
      c.qty = c.qty + q
    else
      closes = closes + 1
      if p > c.avg then wins = wins + 1 end
      c.qty = math.max(0, c.qty - q)
    end
  end
  -- exposure: the share of samples with money in positions
  local exposed = 0
  for _, p in ipairs(eq) do
    if p.cash and tonumber(p.cash) and math.abs((tonumber(p.v) or 0) - tonumber(p.cash)) > 1e-9 then exposed = exposed + 1 end
  end
  local span = res.span or {}
  return {
    pnl = r2(last - start), ["return"] = string_format("%.6f", start > 0 and (last - start) / start or 0),
    starting_equity = r2(start), final_equity = r2(last),
    max_drawdown = string_format("%.6f", maxdd), sharpe = string_format("%.4f", sharpe),
    sharpe_sampling = string_format("per-sample returns of equity sampled every %g s of data time, " ..
      "annualised by sqrt(%g samples per year)", sample, YEAR / sample),
    fees = r2(fees), trades = #(res.trades or {}), round_trips = closes,
    win_rate = string_format("%.4f", closes > 0 and wins / closes or 0),
    exposure = string_format("%.4f", #eq > 0 and exposed / #eq or 0),
    params = res.params or {}, latency_ms = res.latency_ms or 0, events = res.events or 0,
    data_span = { from = span.from, to = span.to }, strategy = res.strategy, data = res.data,
    tier = res.tier,
  }
end

local function csv_field(v)
  v = tostring(v == nil and "" or v)
  if v:find('[,"\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then error("report: " .. tostring(err), 0) end
  f:write(text)
  f:close()
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string_format("%.3fZ", t % 1):sub(2) end

function _M.write(dir, res, summary)
  summary = summary or _M.summary(res)
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  write_file(dir .. "/report.json", core.json_encode(summary, { sort_keys = true }) .. "\n")
  local lines = { "time,market_id,side,outcome,quantity,price,fee,order_id" }
  for _, t in ipairs(res.trades or {}) do
    lines[#lines + 1] = table.concat({ csv_field(iso(t.t)), csv_field(t.market_id), csv_field(t.side), csv_field(t.outcome),
      csv_field(t.quantity), csv_field(t.price), csv_field(t.fee), csv_field(t.order_id) }, ",")
  end
  write_file(dir .. "/trades.csv", table.concat(lines, "\n") .. "\n")
  lines = { "time,equity,cash,drawdown" }
  local peak = 0
  local dd = {}
  for i, p in ipairs(res.equity or {}) do
    local v = tonumber(p.v) or 0
    if v > peak then peak = v end
    local d = peak > 0 and (v - peak) / peak * 100 or 0
    dd[i] = { t = p.t, v = string_format("%.4f", d) }
    lines[#lines + 1] = table.concat({ iso(p.t), p.v, p.cash or "", dd[i].v }, ",")
  end
  write_file(dir .. "/equity.csv", table.concat(lines, "\n") .. "\n")
  local ui = require "polysim.ui"
  local rows = {}
  for _, k in ipairs { "pnl", "return", "max_drawdown", "sharpe", "fees", "trades", "win_rate", "exposure",
                       "final_equity", "events", "latency_ms" } do
    rows[#rows + 1] = { label = k, value = tostring(summary[k]) }
  end
  local tl = {}
  for i, t in ipairs(res.trades or {}) do
    tl[i] = { t = t.t, market_id = t.market_id, side = t.side, outcome = t.outcome, quantity = t.quantity,
              price = t.price, fee = t.fee }
  end
  write_file(dir .. "/report.html", ui.render_report { title = "polysim report: " .. tostring(res.strategy or ""),
    subtitle = summary.sharpe_sampling, summary = rows, equity = res.equity, drawdown = dd, trades = tl })
  return summary
end

return _M
