-- The stylesheet of polysim's pages (report.html and the live dashboard), inlined by
-- polysim.ui: plain CSS, no web fonts, no network.
return [==[
:root {
  --bg: #0f1419; --panel: #161d26; --line: #243040; --text: #d8e0ea; --dim: #8a98a8;
  --up: #3fb68b; --down: #e5534b; --accent: #4c9aff; --warn: #d9a53c;
  --mono: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.4 system-ui, "DejaVu Sans", "Segoe UI", sans-serif; }
header { display: flex; align-items: center; gap: 14px; padding: 14px 22px;
  border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .meta { color: var(--dim); font-size: 13px; }
header .spacer { flex: 1; }
.badge { font-size: 12px; padding: 2px 8px; border-radius: 10px; border: 1px solid var(--line);
  color: var(--dim); white-space: nowrap; }
.badge.live { color: var(--up); border-color: var(--up); }
.badge.off { color: var(--down); border-color: var(--down); }
.badge.warn { color: var(--warn); border-color: var(--warn); }
main { padding: 18px 22px 30px; display: grid; gap: 16px; max-width: 1500px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--dim); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font: 600 21px/1.3 var(--mono); margin-top: 2px; white-space: nowrap; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  min-width: 0; }
.panel h2 { font-size: 13px; margin: 0 0 8px; color: var(--dim); font-weight: 600;
  text-transform: uppercase; letter-spacing: .05em; display: flex; gap: 8px; align-items: baseline; }
.panel h2 .count { color: var(--text); font-weight: 400; text-transform: none; letter-spacing: 0; }
.row2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 900px) { .row2 { grid-template-columns: 1fr; } }
.up { color: var(--up); } .down { color: var(--down); } .dim { color: var(--dim); }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; color: var(--dim); font-weight: 500; padding: 4px 8px; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
td { padding: 4px 8px; border-bottom: 1px solid #1c2530; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; max-width: 340px; }
td.num, th.num { text-align: right; font-family: var(--mono); }
tr:last-child td { border-bottom: none; }
.empty { color: var(--dim); padding: 8px; font-style: italic; }
.scroll { max-height: 330px; overflow: auto; }
.chart svg { display: block; width: 100%; }
.chart .axis { stroke: var(--line); stroke-width: 1; }
.chart .grid { stroke: #1e2834; stroke-width: 1; }
.chart text { fill: var(--dim); font: 11px var(--mono); }
.chart .tip { fill: var(--text); font: 600 12px var(--mono); }
.log { font: 12px/1.45 var(--mono); background: #0b1015; border-radius: 6px; padding: 8px 10px;
  max-height: 300px; overflow: auto; white-space: pre-wrap; word-break: break-all; margin: 0; }
.log .l-warn { color: var(--warn); } .log .l-error { color: var(--down); } .log .l-debug { color: var(--dim); }
.side-BUY { color: var(--up); } .side-SELL { color: var(--down); }
button { font: 600 13px system-ui, sans-serif; color: var(--text); background: #202a36;
  border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.danger { border-color: var(--down); color: var(--down); }
button:disabled { opacity: .5; cursor: default; }
.note { color: var(--dim); font-size: 12px; }
footer { color: var(--dim); font-size: 12px; text-align: center; padding: 0 0 20px; }
]==]
