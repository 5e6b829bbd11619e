-- polysim's pages: one renderer (polysim.ui.js, plain JavaScript, inline SVG charts and
-- tables; polysim.ui.css) behind two uses.
--
--   local ui = require "polysim.ui"
--   local html = ui.render_report { title = "backtest", summary = {{ label = "P&L", value = "+12.30" }},
--     equity = {{ t = 1700000000, v = "10000.00" }, ...}, drawdown = {{ t = ..., v = "-0.5" }},
--     trades = {{ t = ..., market_id = ..., side = "BUY", outcome = "Yes", quantity = "20",
--                 price = "0.41", fee = "0.02" }} }
--   ui.dashboard_page { ws_path = "/ws", control = false }   -- the live page (polysim.dashboard)
--
-- Both return one self-contained HTML string: styles, script and data inline, nothing
-- fetched from anywhere (the dashboard only opens its WebSocket back to the page's own
-- host). t values are epoch seconds (numbers) or ISO timestamps; money values are decimal
-- strings (formatted by string digits, never through floats).
local core = require "polysim.core"

local type = type

local _M = {}

_M.script = require "polysim.ui.js"
_M.style = require "polysim.ui.css"

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
_M.escape = esc

-- JSON safe inside <script>: no "</" (a closing tag) and no "<!--".
local function script_json(v)
  local s = core.json_encode(v)
  return (s:gsub("</", "<\\/"):gsub("<!%-%-", "<\\!--"))
end
_M.script_json = script_json

local function page(title, body_script, data)
  return table.concat {
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    -- Nothing leaves the page: no fetch, image or script from another origin.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; ",
    "script-src 'unsafe-inline'; img-src data:; connect-src 'self'\">",
    "<title>", esc(title), "</title><style>", _M.style, "</style></head>\n<body><div id=\"app\"></div>\n",
    "<script id=\"data\" type=\"application/json\">", script_json(data), "</script>\n",
    "<script>", _M.script, "</script>\n<script>", body_script, "</script>\n</body></html>\n",
  }
end

local function list(v)
  if type(v) ~= "table" then return core.array {} end
  return core.array(v)
end

-- One self-contained HTML page for a backtest (or a run's) report. Raises on a non-table.
function _M.render_report(data)
  if type(data) ~= "table" then error("render_report: data must be a table", 2) end
  local d = {
    title = data.title or "polysim report", subtitle = data.subtitle,
    summary = list(data.summary), equity = list(data.equity), drawdown = list(data.drawdown),
    trades = list(data.trades),
  }
  return page(d.title, "PS.report(JSON.parse(document.getElementById('data').textContent), " ..
    "document.getElementById('app'));", d)
end

-- The live dashboard's page; cfg = { ws_path = "/ws", control = bool, max_points = n }.
function _M.dashboard_page(cfg)
  cfg = cfg or {}
  local c = { ws_path = cfg.ws_path or "/ws", control = cfg.control and true or false,
              max_points = cfg.max_points or 5000 }
  return page(cfg.title or "polysim dashboard",
    "PS.dashboard(JSON.parse(document.getElementById('data').textContent));", c)
end

return _M
