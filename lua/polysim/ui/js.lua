-- The one renderer of polysim's pages, as plain JavaScript inlined by polysim.ui: number
-- formatting on decimal strings (no float rounding of money), an SVG line chart, tables,
-- and the two pages built from them: PS.report(data) for a backtest's report.html and
-- PS.dashboard(cfg) for the live page of a running strategy. No library, no network.
-- luacheck: no max line length
return [==[
(function () {
  "use strict";
  var PS = {};
  window.PS = PS;

  // ---- formatting ------------------------------------------------------------------------
  var ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  function esc(s) { return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  PS.esc = esc;

  // A decimal string (or number) rounded half away from zero to `places`, by string digits.
  function round(v, places) {
    var s = typeof v === "number" ? (isFinite(v) ? v.toFixed(Math.max(places + 4, 8)) : "") : String(v == null ? "" : v).trim();
    var m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s);
    if (!m || (m[2] === "" && !m[3])) return null;
    var neg = m[1] === "-", ip = m[2] || "0", fp = (m[3] || "") + new Array(places + 2).join("0");
    var digits = (ip + fp.slice(0, places)).split("");
    if (fp.charCodeAt(places) >= 53) {                       // >= "5": carry upwards
      var k = digits.length - 1;
      while (k >= 0 && digits[k] === "9") { digits[k] = "0"; k--; }
      if (k < 0) digits.unshift("1"); else digits[k] = String.fromCharCode(digits[k].charCodeAt(0) + 1);
    }
    var all = digits.join("");
    var int = all.slice(0, all.length - places).replace(/^0+(?=\d)/, "") || "0";
    var frac = places > 0 ? all.slice(all.length - places) : "";
    if (/^0*$/.test(int + frac)) neg = false;                // no "-0.00"
    return { neg: neg, int: int, frac: frac };
  }
  function group(int) { return int.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  PS.fixed = function (v, places, signed) {
    var r = round(v, places);
    if (!r) return "\u2013";
    var zero = /^0*$/.test(r.int + r.frac);
    return (r.neg ? "-" : (signed && !zero ? "+" : "")) + group(r.int) + (places > 0 ? "." + r.frac : "");
  };
  PS.money = function (v) { return PS.fixed(v, 2, false); };
  PS.signed = function (v) { return PS.fixed(v, 2, true); };
  PS.sign = function (v) {
    var r = round(typeof v === "string" ? v.replace(/[,%\s]/g, "") : v, 8);
    if (!r || /^0*$/.test(r.int + r.frac)) return 0;
    return r.neg ? -1 : 1;
  };
  PS.cls = function (v) { var s = PS.sign(v); return s > 0 ? "up" : s < 0 ? "down" : ""; };
  // Quantities and prices as given, trailing zeros dropped ("20.000000" -> "20").
  PS.plain = function (v) {
    if (v == null || v === "") return "\u2013";
    var s = String(v);
    if (/^-?\d+\.\d*$/.test(s)) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s;
  };
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  PS.time = function (t) {
    var d = new Date(+t * 1000);
    if (isNaN(d)) return "\u2013";
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  };
  PS.date = function (t) {
    var d = new Date(+t * 1000);
    if (isNaN(d)) return "\u2013";
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  };
  PS.datetime = function (t) { return PS.date(t) + " " + PS.time(t) + " UTC"; };
  PS.duration = function (s) {
    s = Math.max(0, Math.floor(+s || 0));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, x = s % 60;
    if (d > 0) return d + "d " + pad(h) + "h " + pad(m) + "m";
    if (h > 0) return h + "h " + pad(m) + "m " + pad(x) + "s";
    return m + "m " + pad(x) + "s";
  };
  // An ISO timestamp or epoch seconds -> epoch seconds.
  PS.epoch = function (v) {
    if (typeof v === "number") return v;
    if (v == null) return NaN;
    if (/^\d+(\.\d+)?$/.test(String(v))) return +v;
    var ms = Date.parse(v);
    return isNaN(ms) ? NaN : ms / 1000;
  };

  // ---- the chart -------------------------------------------------------------------------
  function niceStep(span, n) {
    var raw = span / n, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }
  function axisLabel(v, step) {
    var places = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log(step) / Math.LN10));
    return PS.fixed(v, places, false);
  }
  // At most ~2 points per pixel column: the first, lowest, highest and last of each bucket.
  function thin(xs, ys, cols) {
    if (xs.length <= cols * 2) return [xs, ys];
    var ox = [], oy = [], x0 = xs[0], span = (xs[xs.length - 1] - x0) || 1, b = -1, lo, hi;
    function flush() {
      if (b < 0) return;
      var a = [lo, hi].sort(function (p, q) { return xs[p] - xs[q]; });
      for (var k = 0; k < 2; k++) { ox.push(xs[a[k]]); oy.push(ys[a[k]]); }
    }
    for (var i = 0; i < xs.length; i++) {
      var nb = Math.floor((xs[i] - x0) / span * cols);
      if (nb !== b) { flush(); b = nb; lo = hi = i; }
      if (ys[i] < ys[lo]) lo = i;
      if (ys[i] > ys[hi]) hi = i;
    }
    flush();
    ox.push(xs[xs.length - 1]); oy.push(ys[ys.length - 1]);
    return [ox, oy];
  }
  // pts: [{t, v}], v a decimal string or number. o: {height, color, area, zero, fmt}
  // Returns SVG markup; PS.hover(el) adds the crosshair afterwards.
  PS.chart = function (pts, o) {
    o = o || {};
    var W = o.width || 1000, H = o.height || 240, L = 70, R = 16, T = 12, B = 26;
    var xs = [], ys = [];
    (pts || []).forEach(function (p) {
      var t = PS.epoch(p.t), v = parseFloat(p.v);
      if (isFinite(t) && isFinite(v)) { xs.push(t); ys.push(v); }
    });
    var head = '<svg viewBox="0 0 ' + W + " " + H + '" role="img"';
    if (xs.length === 0) {
      return head + '><text x="' + W / 2 + '" y="' + H / 2 + '" text-anchor="middle">no data yet</text></svg>';
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    var y0 = Infinity, y1 = -Infinity;
    ys.forEach(function (v) { if (v < y0) y0 = v; if (v > y1) y1 = v; });
    if (o.zero) { y0 = Math.min(y0, 0); y1 = Math.max(y1, 0); }
    if (y1 - y0 < 1e-9) { var padv = Math.max(Math.abs(y1) * 0.0005, 0.01); y0 -= padv; y1 += padv; }
    var step = niceStep(y1 - y0, 4);
    y0 = Math.floor(y0 / step) * step; y1 = Math.ceil(y1 / step) * step;
    var pw = W - L - R, ph = H - T - B;
    function sx(t) { return L + (t - x0) / (x1 - x0) * pw; }
    function sy(v) { return T + (y1 - v) / (y1 - y0) * ph; }
    var th = thin(xs, ys, pw);
    var d = "";
    for (var i = 0; i < th[0].length; i++) d += (i ? "L" : "M") + sx(th[0][i]).toFixed(1) + " " + sy(th[1][i]).toFixed(1);
    var color = o.color || "var(--accent)";
    var out = [head + ' data-points="' + xs.length + '">'];
    for (var g = y0; g <= y1 + step / 2; g += step) {
      var gy = sy(g).toFixed(1);
      out.push('<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + gy + '" y2="' + gy + '"/>');
      out.push('<text x="' + (L - 6) + '" y="' + gy + '" dy="4" text-anchor="end">' + esc((o.fmt || axisLabel)(g, step)) + "</text>");
    }
    var span = x1 - x0, tf = span >= 3 * 86400 ? PS.date : PS.time;
    for (var k = 0; k <= 4; k++) {
      var tx = x0 + span * k / 4, px = sx(tx);
      out.push('<text x="' + px.toFixed(1) + '" y="' + (H - 6) + '" text-anchor="' + (k === 0 ? "start" : k === 4 ? "end" : "middle") + '">' +
        esc(tf(tx)) + "</text>");
    }
    out.push('<line class="axis" x1="' + L + '" x2="' + L + '" y1="' + T + '" y2="' + (T + ph) + '"/>');
    if (o.area) {
      var base = sy(o.zero ? 0 : y0).toFixed(1);
      out.push('<path d="' + d + "L" + sx(th[0][th[0].length - 1]).toFixed(1) + " " + base + "L" + sx(th[0][0]).toFixed(1) + " " + base +
        'Z" fill="' + color + '" fill-opacity="0.13" stroke="none"/>');
    }
    out.push('<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="1.8" vector-effect="non-scaling-stroke" stroke-linejoin="round"/>');
    var lx = sx(xs[xs.length - 1]), ly = sy(ys[ys.length - 1]);
    out.push('<circle cx="' + lx.toFixed(1) + '" cy="' + ly.toFixed(1) + '" r="3" fill="' + color + '"/>');
    out.push('<g class="hover" style="display:none"><line class="axis" y1="' + T + '" y2="' + (T + ph) + '"/>' +
      '<circle r="3.5" fill="' + color + '"/><text class="tip" y="' + (T + 12) + '"></text></g>');
    out.push("</svg>");
    PS._charts = PS._charts || {};
    var id = "c" + (PS._nextChart = (PS._nextChart || 0) + 1);
    PS._charts[id] = { xs: xs, ys: ys, sx: sx, sy: sy, W: W, L: L, R: R, fmt: o.tip || function (v) { return PS.fixed(v, 2); } };
    out[0] = out[0].replace("<svg ", '<svg data-chart="' + id + '" ');
    return out.join("");
  };
  // The crosshair: nearest point under the mouse, its time and value.
  PS.hover = function (el) {
    var svg = el.querySelector("svg[data-chart]");
    if (!svg) return;
    var c = PS._charts[svg.getAttribute("data-chart")], g = svg.querySelector("g.hover");
    if (!c || !g) return;
    svg.addEventListener("mousemove", function (e) {
      var r = svg.getBoundingClientRect(), x = (e.clientX - r.left) / r.width * c.W;
      var lo = 0, hi = c.xs.length - 1;
      while (lo < hi) { var mid = (lo + hi) >> 1; if (c.sx(c.xs[mid]) < x) lo = mid + 1; else hi = mid; }
      if (lo > 0 && Math.abs(c.sx(c.xs[lo - 1]) - x) < Math.abs(c.sx(c.xs[lo]) - x)) lo--;
      var px = c.sx(c.xs[lo]), py = c.sy(c.ys[lo]), line = g.querySelector("line"), dot = g.querySelector("circle"), t = g.querySelector("text");
      line.setAttribute("x1", px); line.setAttribute("x2", px);
      dot.setAttribute("cx", px); dot.setAttribute("cy", py);
      t.textContent = PS.time(c.xs[lo]) + "  " + c.fmt(c.ys[lo]);
      var right = px > c.W * 0.6;
      t.setAttribute("x", right ? px - 8 : px + 8); t.setAttribute("text-anchor", right ? "end" : "start");
      g.style.display = "";
    });
    svg.addEventListener("mouseleave", function () { g.style.display = "none"; });
  };

  // ---- tables and cards ------------------------------------------------------------------
  // cols: [{key, label, num, fmt(v, row), cls(v, row)}]
  PS.table = function (cols, rows, empty) {
    if (rows && !Array.isArray(rows)) rows = Object.keys(rows).map(function (k) { return rows[k]; });
    if (!rows || rows.length === 0) return '<div class="empty">' + esc(empty || "none") + "</div>";
    var h = ["<table><thead><tr>"];
    cols.forEach(function (c) { h.push("<th" + (c.num ? ' class="num"' : "") + ">" + esc(c.label) + "</th>"); });
    h.push("</tr></thead><tbody>");
    rows.forEach(function (r) {
      h.push("<tr>");
      cols.forEach(function (c) {
        var v = typeof c.key === "function" ? c.key(r) : r[c.key];
        var cls = [c.num ? "num" : "", c.cls ? c.cls(v, r) : ""].join(" ").trim();
        var text = c.fmt ? c.fmt(v, r) : (v == null ? "\u2013" : v);
        h.push("<td" + (cls ? ' class="' + esc(cls) + '"' : "") + ' title="' + esc(text) + '">' + esc(text) + "</td>");
      });
      h.push("</tr>");
    });
    h.push("</tbody></table>");
    return h.join("");
  };
  // list: [{id, label, value, cls}]
  PS.cards = function (list) {
    return list.map(function (c) {
      return '<div class="card"><div class="label">' + esc(c.label) + '</div><div class="value ' + esc(c.cls || "") + '"' +
        (c.id ? ' id="' + esc(c.id) + '"' : "") + (c.raw != null ? ' data-value="' + esc(c.raw) + '"' : "") + ">" + esc(c.value) + "</div></div>";
    }).join("");
  };
  function short(id) { id = String(id == null ? "" : id); return id.length > 14 ? id.slice(0, 10) + "\u2026" + id.slice(-4) : id; }
  PS.short = short;
  function sideCls(v) { return "side-" + v; }

  var TRADE_COLS = [
    { key: "t", label: "time", fmt: function (v) { return PS.datetime(PS.epoch(v)); } },
    { key: "market_id", label: "market", fmt: short },
    { key: "side", label: "side", cls: sideCls },
    { key: "outcome", label: "outcome" },
    { key: "quantity", label: "qty", num: true, fmt: PS.plain },
    { key: "price", label: "price", num: true, fmt: PS.plain },
    { key: "fee", label: "fee", num: true, fmt: function (v) { return PS.fixed(v, 4); } },
  ];
  PS.TRADE_COLS = TRADE_COLS;

  function panel(title, body, id, count) {
    return '<section class="panel"' + (id ? ' id="' + id + '"' : "") + "><h2>" + esc(title) +
      (count != null ? ' <span class="count">' + esc(count) + "</span>" : "") + "</h2>" + body + "</section>";
  }
  PS.panel = panel;

  // ---- report.html -----------------------------------------------------------------------
  var MAX_TRADES = 2000;
  PS.report = function (data, root) {
    root = root || document.body;
    data = data || {};
    var trades = data.trades || [], shown = trades.slice(0, MAX_TRADES);
    var summary = (data.summary || []).map(function (s) {
      var v = s.value, looksSigned = /p&l|pnl|return|drawdown/i.test(s.label || "");
      return { label: s.label, value: v == null ? "\u2013" : String(v), cls: looksSigned ? PS.cls(v) : "" };
    });
    document.title = data.title || "polysim report";
    root.innerHTML =
      "<header><h1>" + esc(data.title || "polysim report") + '</h1><span class="meta">' + esc(data.subtitle || "") +
      '</span><span class="spacer"></span><span class="badge">polysim</span></header><main>' +
      '<div class="cards" id="summary">' + PS.cards(summary) + "</div>" +
      panel("Equity", '<div class="chart" id="equity-chart">' + PS.chart(data.equity, { area: true, height: 260 }) + "</div>") +
      panel("Drawdown", '<div class="chart" id="drawdown-chart">' + PS.chart(data.drawdown, { area: true, zero: true, height: 140, color: "var(--down)" }) + "</div>") +
      panel("Trades", '<div class="scroll" id="trades">' + PS.table(TRADE_COLS, shown, "no trades") + "</div>" +
        (trades.length > shown.length ? '<p class="note">the first ' + shown.length + " of " + trades.length + " trades; trades.csv has all</p>" : ""),
        null, trades.length) +
      "</main><footer>written by polysim \u00b7 self-contained page, no network</footer>";
    PS.hover(document.getElementById("equity-chart"));
    PS.hover(document.getElementById("drawdown-chart"));
  };

  // ---- the live dashboard ----------------------------------------------------------------
  var POS_COLS = [
    { key: "market_id", label: "market", fmt: short },
    { key: "outcome", label: "outcome" },
    { key: "quantity", label: "qty", num: true, fmt: PS.plain },
    { key: "avg_price", label: "avg price", num: true, fmt: PS.plain },
    { key: "mark", label: "mark", num: true, fmt: PS.plain },
    { key: "unrealized", label: "unrealised P&L", num: true, fmt: PS.signed, cls: PS.cls },
  ];
  var ORDER_COLS = [
    { key: "created_at", label: "placed", fmt: function (v) { return PS.time(PS.epoch(v)); } },
    { key: "market_id", label: "market", fmt: short },
    { key: "side", label: "side", cls: sideCls },
    { key: "outcome", label: "outcome" },
    { key: "order_type", label: "type" },
    { key: "quantity", label: "qty", num: true, fmt: PS.plain },
    { key: "filled_quantity", label: "filled", num: true, fmt: PS.plain },
    { key: "price", label: "limit", num: true, fmt: PS.plain },
  ];
  var FILL_COLS = [
    { key: "t", label: "time", fmt: function (v) { return PS.time(PS.epoch(v)); } },
    { key: "market_id", label: "market", fmt: short },
    { key: "side", label: "side", cls: sideCls },
    { key: "outcome", label: "outcome" },
    { key: "quantity", label: "qty", num: true, fmt: PS.plain },
    { key: "price", label: "price", num: true, fmt: PS.plain },
  ];
  var RELOAD_COLS = [
    { key: "at", label: "when", fmt: function (v) { return PS.time(PS.epoch(v)); } },
    { key: "version", label: "version", fmt: function (v) { return v == null ? "\u2013" : "v" + v; } },
    { key: "ms", label: "took", num: true, fmt: function (v) { return v == null ? "\u2013" : PS.fixed(v, 1) + " ms"; } },
    { key: "ok", label: "result", fmt: function (v, r) { return v ? "ok" : "failed: " + (r.error || "?"); },
      cls: function (v) { return v ? "up" : "down"; } },
  ];

  function logLine(l) {
    var m = /^\S+\s+(DEBUG|INFO|WARN|ERROR)\b/.exec(l);
    var cls = m ? "l-" + m[1].toLowerCase() : "";
    return '<div class="' + cls + '">' + esc(l) + "</div>";
  }

  PS.dashboard = function (cfg) {
    var root = document.getElementById("app");
    var token = (/[#&?]token=([A-Za-z0-9_-]+)/.exec(location.hash + location.search) || [])[1] || "";
    var snap = null, curve = [], got_at = 0, ws = null, retry = 1, live = false;
    root.innerHTML =
      '<header><h1 id="name">polysim</h1><span class="meta" id="version"></span><span class="meta" id="mode"></span>' +
      '<span class="meta">running <b id="running">\u2013</b></span><span class="spacer"></span>' +
      '<span class="badge" id="state">connecting</span>' +
      (cfg.control ? '<button id="cancel-all">Cancel all orders</button> <button class="danger" id="stop">Stop strategy</button>' : "") +
      '</header><main><div class="cards" id="cards"></div>' +
      panel("Equity", '<div class="chart" id="equity-chart"></div>') +
      '<div class="row2">' + panel("Positions", '<div class="scroll" id="positions"></div>', null, "") +
      panel("Open orders", '<div class="scroll" id="orders"></div>', null, "") + "</div>" +
      '<div class="row2">' + panel("Last fills", '<div class="scroll" id="fills"></div>', null, "") +
      panel("Reloads", '<div class="scroll" id="reloads"></div>', null, "") + "</div>" +
      panel("Log", '<pre class="log" id="log"></pre>') +
      '<p class="note" id="note"></p></main>';
    function $(id) { return document.getElementById(id); }
    function count(id, n) { var h = $(id).parentNode.querySelector("h2 .count"); if (h) h.textContent = n; }

    function render() {
      if (!snap) return;
      var s = snap;
      document.title = (s.name || "strategy") + " \u00b7 polysim";
      $("name").textContent = s.name || "strategy";
      $("version").textContent = s.version != null ? "v" + s.version : "";
      $("mode").textContent = s.mode ? "\u00b7 " + s.mode : "";
      $("cards").innerHTML = PS.cards([
        { id: "equity", label: "equity", value: PS.money(s.equity), raw: s.equity },
        { id: "cash", label: "cash", value: PS.money(s.cash), raw: s.cash },
        { id: "pnl", label: "P&L", value: PS.signed(s.pnl), raw: s.pnl, cls: PS.cls(s.pnl) },
        { id: "unrealized", label: "unrealised", value: PS.signed(s.unrealized), raw: s.unrealized, cls: PS.cls(s.unrealized) },
        { id: "n-positions", label: "positions", value: String((s.positions || []).length) },
        { id: "n-fills", label: "fills", value: String(s.fill_count != null ? s.fill_count : (s.fills || []).length) },
      ]);
      var el = $("equity-chart");
      el.innerHTML = PS.chart(curve, { area: true, height: 250 });
      PS.hover(el);
      $("positions").innerHTML = PS.table(POS_COLS, s.positions, "no positions");
      count("positions", (s.positions || []).length);
      $("orders").innerHTML = PS.table(ORDER_COLS, s.open_orders, "no open orders");
      count("orders", (s.open_orders || []).length);
      var fills = (s.fills || []).slice().reverse();
      $("fills").innerHTML = PS.table(FILL_COLS, fills, "no fills yet");
      count("fills", fills.length);
      var reloads = (s.reloads || []).slice().reverse();
      $("reloads").innerHTML = PS.table(RELOAD_COLS, reloads, "no reloads yet");
      count("reloads", reloads.length);
      var log = $("log"), atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.innerHTML = (s.log_tail || []).map(logLine).join("");
      if (atEnd) log.scrollTop = log.scrollHeight;
      document.body.setAttribute("data-now", String(s.now));
      document.body.setAttribute("data-seq", String(s.seq || 0));
      tick();
    }
    function tick() {
      if (!snap) return;
      var extra = (live && !snap.stopped && snap.mode !== "backtest") ? Date.now() / 1000 - got_at : 0;
      $("running").textContent = PS.duration(PS.epoch(snap.now) - PS.epoch(snap.started_at) + extra);
      var st = $("state");
      if (snap.stopped) { st.textContent = "stopped"; st.className = "badge warn"; }
      else if (live) { st.textContent = "live"; st.className = "badge live"; }
    }
    setInterval(tick, 1000);                               // the clock only; data is pushed

    function connect() {
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.ws_path;
      ws = new WebSocket(url);
      ws.onopen = function () { live = true; retry = 1; $("note").textContent = ""; };
      ws.onmessage = function (e) {
        var m = JSON.parse(e.data);
        if (m.type === "hello") curve = m.curve || [];
        if (m.points) for (var i = 0; i < m.points.length; i++) curve.push(m.points[i]);
        if (curve.length > cfg.max_points) curve.splice(0, curve.length - cfg.max_points);
        if (m.snapshot) { snap = m.snapshot; got_at = Date.now() / 1000; }
        render();
      };
      ws.onclose = function () {
        live = false;
        var st = $("state");
        st.textContent = "disconnected"; st.className = "badge off";
        $("note").textContent = "connection to polysim closed; retrying in " + retry + " s";
        setTimeout(connect, retry * 1000);
        retry = Math.min(retry * 2, 30);
      };
    }
    connect();

    function act(path, label, button) {
      if (!window.confirm(label + "?")) return;
      button.disabled = true;
      fetch(path, { method: "POST", headers: { "X-Polysim-Token": token }, credentials: "omit" })
        .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
        .then(function (a) { $("note").textContent = label + ": " + (a[1].message || a[0]); })
        .catch(function (e) { $("note").textContent = label + " failed: " + e; })
        .then(function () { button.disabled = false; });
    }
    if (cfg.control) {
      if (!token) $("note").textContent = "open the URL polysim printed (it carries the token) to use the buttons";
      $("stop").onclick = function () { act("/api/stop", "Stop the strategy", this); };
      $("cancel-all").onclick = function () { act("/api/cancel-all", "Cancel all open orders", this); };
    }
  };
})();
]==]
