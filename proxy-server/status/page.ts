// The status page's static assets: one HTML page, its stylesheet and its script (plain DOM and
// SVG, no framework, no build step). They are served as separate files so the page runs under a
// strict Content-Security-Policy (no inline script or style). The script renders with
// textContent only: names and messages from agents and clients are never parsed as HTML.

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fedtunnel hub status</title>
<link rel="icon" href="/status/favicon.svg">
<link rel="stylesheet" href="/status/app.css">
<script src="/status/app.js" defer></script>
</head>
<body>
<header>
  <h1>fedtunnel hub</h1>
  <span id="conn" class="conn connecting">connecting…</span>
  <span id="who"></span>
  <span id="updated"></span>
</header>
<main>
  <section>
    <h2>Replicas</h2>
    <table id="replicas"><thead><tr><th>instance</th><th>started</th><th>agent links</th><th></th></tr></thead><tbody></tbody></table>
    <p id="lease"></p>
  </section>
  <section>
    <h2>Clusters and agents</h2>
    <p id="no-clusters" class="muted">No cluster you may see has an agent or a recent error.</p>
    <table id="agents"><thead><tr><th>cluster</th><th>replica</th><th>agent</th><th>carrier</th><th>remote</th><th>connected</th><th>streams</th><th>RTT</th><th>from agent</th><th>to agent</th></tr></thead><tbody></tbody></table>
    <div id="errors"></div>
  </section>
  <section class="plots">
    <figure><figcaption>Keepalive RTT (ms), last 5 minutes</figcaption><svg id="plot-rtt" viewBox="0 0 640 180" role="img" aria-label="RTT per cluster"></svg></figure>
    <figure><figcaption>Throughput (bytes/s, both directions), last 5 minutes</figcaption><svg id="plot-bytes" viewBox="0 0 640 180" role="img" aria-label="throughput per cluster"></svg></figure>
    <div id="legend"></div>
  </section>
  <section>
    <h2>Federation</h2>
    <p id="federation-note" class="muted"></p>
    <div id="federation-tables">
    <h3>Member clusters</h3>
    <table id="health"><thead><tr><th>cluster</th><th>Ready</th><th>Offline</th><th>reason</th><th>message</th><th>last probe</th></tr></thead><tbody></tbody></table>
    <h3>Federated objects</h3>
    <table id="objects"><thead><tr><th>kind</th><th>namespace</th><th>name</th><th>propagation</th><th>clusters</th></tr></thead><tbody></tbody></table>
    </div>
  </section>
</main>
</body>
</html>
`;

export const STATUS_FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#2e8540"/></svg>`;

export const STATUS_CSS = `
body { font: 14px/1.4 "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { display: flex; gap: 1.2em; align-items: baseline; padding: 0.6em 1.2em; background: #1d2330; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
main { padding: 0 1.2em 2em; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 0.4em 1em 1em; margin-top: 1em; }
h2 { font-size: 1.05em; } h3 { font-size: 0.95em; margin-bottom: 0.3em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.2em 0.6em; border-bottom: 1px solid #eceef2; white-space: nowrap; }
td.msg { white-space: normal; }
th { font-weight: 600; color: #5a6272; font-size: 0.9em; }
.conn { padding: 0.1em 0.6em; border-radius: 1em; font-size: 0.85em; }
.conn.live { background: #2e8540; } .conn.connecting, .conn.reconnecting { background: #b26b00; }
.muted { color: #7a8190; }
.ok { color: #2e8540; font-weight: 600; } .bad { color: #c0392b; font-weight: 600; } .unknown { color: #b26b00; font-weight: 600; }
.chip { display: inline-block; margin: 0 0.3em 0.2em 0; padding: 0 0.5em; border-radius: 1em; border: 1px solid #ccd; font-size: 0.85em; }
.chip.ok { border-color: #2e8540; } .chip.bad { border-color: #c0392b; }
.errors { margin: 0.4em 0; } .errors li { font-family: monospace; font-size: 0.85em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; flex: 1 1 420px; } figcaption { font-size: 0.9em; color: #5a6272; }
svg { width: 100%; height: auto; background: #fbfcfd; border: 1px solid #eceef2; }
svg text { font-size: 11px; fill: #5a6272; }
#legend { flex-basis: 100%; } .swatch { display: inline-block; width: 0.8em; height: 0.8em; margin: 0 0.3em 0 1em; border-radius: 2px; }
.hidden { display: none; }
`;

export const STATUS_JS = String.raw`
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  var state = null;
  var history = [];
  var maxPoints = 300;
  var intervalMs = 1000;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) { tr.appendChild(c instanceof Node ? wrap(c) : el('td', c)); });
    return tr;
  }
  function wrap(node) { if (node.tagName === 'TD') return node; var td = document.createElement('td'); td.appendChild(node); return td; }
  function fill(tbody, rows) { while (tbody.firstChild) tbody.removeChild(tbody.firstChild); rows.forEach(function (r) { tbody.appendChild(r); }); }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
  }
  function since(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
  }
  function condition(v) { return el('span', v || '—', v === 'True' ? 'ok' : v === 'False' ? 'bad' : 'unknown'); }
  var colorOf = {};
  function color(name) {
    if (!colorOf[name]) colorOf[name] = COLORS[Object.keys(colorOf).length % COLORS.length];
    return colorOf[name];
  }

  function render() {
    $('who').textContent = 'signed in as ' + state.user;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    var links = {};
    state.clusters.forEach(function (c) { c.agents.forEach(function (a) { links[a.replica] = (links[a.replica] || 0) + 1; }); });
    fill($('replicas').tBodies[0], state.replicas.map(function (r) {
      // Peers (HA): their start time is not known here, their agent count is per cluster from their heartbeat.
      var agents = r.self ? (links[r.instance] || 0) : (r.agentClusters === undefined ? 0 : r.agentClusters + ' clusters');
      return row([r.instance, r.startedAt ? since(r.startedAt) : (r.address || ''), agents, r.self ? 'this replica' : '']);
    }));
    var lease = state.lease;
    $('lease').textContent = 'Federation controller: ' + (lease.holder ? 'runs on ' + lease.holder : 'not running') + ' — ' + lease.note;

    var agentRows = [];
    var errors = $('errors');
    while (errors.firstChild) errors.removeChild(errors.firstChild);
    state.clusters.forEach(function (c) {
      c.agents.forEach(function (a) {
        var tr = row([c.name, a.replica, a.instance, a.carrier, a.remoteAddress, since(a.connectedAt), a.streams,
          a.rttMs === null ? '—' : a.rttMs.toFixed(2) + ' ms', bytes(a.bytesIn), bytes(a.bytesOut)]);
        tr.dataset.cluster = c.name;
        tr.className = 'agent' + (a.draining ? ' muted' : '');
        agentRows.push(tr);
      });
      if (c.agents.length === 0) {
        var tr = row([c.name, '—', 'no agent connected', '', '', '', '', '', '', '']);
        tr.dataset.cluster = c.name;
        tr.className = 'no-agent muted';
        agentRows.push(tr);
      }
      if (c.errors.length > 0) {
        var box = el('div', null, 'errors');
        box.appendChild(el('strong', 'Latest dial failures of ' + c.name));
        var ul = el('ul');
        c.errors.forEach(function (e) { ul.appendChild(el('li', e.at + '  ' + e.code + '  ' + e.message + '  (' + e.replica + ')')); });
        box.appendChild(ul);
        errors.appendChild(box);
      }
    });
    fill($('agents').tBodies[0], agentRows);
    $('no-clusters').className = state.clusters.length === 0 ? 'muted' : 'hidden';

    var fed = state.federation;
    $('federation-note').textContent = !fed.enabled ? 'No embedded federation on this hub (--federation-listen off).'
      : fed.error ? 'Could not read the federation: ' + fed.error
      : fed.truncated ? 'Showing the first ' + fed.objects.length + ' federated objects; kubectl lists them all.' : '';
    $('federation-tables').className = fed.enabled ? '' : 'hidden';
    fill($('health').tBodies[0], fed.clusters.map(function (h) {
      var msg = el('td', h.message, 'msg');
      var tr = row([h.name, condition(h.ready), condition(h.offline), h.reason, msg, h.lastProbeTime ? since(h.lastProbeTime) : '—']);
      tr.dataset.cluster = h.name;
      return tr;
    }));
    fill($('objects').tBodies[0], fed.objects.map(function (o) {
      var chips = el('td');
      o.clusters.forEach(function (c) {
        var chip = el('span', c.cluster + (c.status ? ': ' + c.status : ''), 'chip ' + (c.status ? 'bad' : 'ok'));
        if (c.message) chip.title = c.message;
        chips.appendChild(chip);
      });
      return row([o.kind, o.namespace || '—', o.name, condition(o.propagation), chips]);
    }));
    renderPlots();
  }

  function renderPlots() {
    var names = {};
    history.forEach(function (s) { Object.keys(s.clusters).forEach(function (n) { names[n] = true; }); });
    var clusters = Object.keys(names).sort();
    plot($('plot-rtt'), clusters, function (p) { return p.rttMs; }, function (v) { return v.toFixed(2) + ' ms'; });
    plot($('plot-bytes'), clusters, function (p) { return p.inBps + p.outBps; }, function (v) { return bytes(v) + '/s'; });
    var legend = $('legend');
    while (legend.firstChild) legend.removeChild(legend.firstChild);
    clusters.forEach(function (n) {
      var sw = el('span', null, 'swatch');
      sw.style.background = color(n);
      legend.appendChild(sw);
      legend.appendChild(document.createTextNode(n));
    });
  }

  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function plot(svg, clusters, value, label) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 640, H = 180, L = 70, R = 10, T = 10, B = 22;
    var now = Date.now();
    var span = maxPoints * intervalMs;
    var max = 0;
    history.forEach(function (s) { clusters.forEach(function (n) { var p = s.clusters[n]; var v = p ? value(p) : null; if (v !== null && v > max) max = v; }); });
    var top = max > 0 ? max * 1.15 : 1;
    function x(t) { return L + (W - L - R) * (1 - (now - t) / span); }
    function y(v) { return T + (H - T - B) * (1 - v / top); }
    [0, 0.5, 1].forEach(function (f) {
      svg.appendChild(svgEl('line', { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), stroke: '#e3e6eb' }));
      svg.appendChild(svgEl('text', { x: L - 6, y: y(top * f) + 4, 'text-anchor': 'end' }, label(top * f)));
    });
    svg.appendChild(svgEl('text', { x: L, y: H - 6 }, '-' + Math.round(span / 60000) + ' min'));
    svg.appendChild(svgEl('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'));
    clusters.forEach(function (n) {
      var points = [];
      history.forEach(function (s) {
        var p = s.clusters[n];
        var v = p ? value(p) : null;
        if (v !== null && now - s.t <= span) points.push(x(s.t).toFixed(1) + ',' + y(v).toFixed(1));
      });
      if (points.length > 0) svg.appendChild(svgEl('polyline', { points: points.join(' '), fill: 'none', stroke: color(n), 'stroke-width': 1.8, 'data-cluster': n }));
    });
  }

  var source = new EventSource('/status/events');
  source.onopen = function () { $('conn').textContent = 'live'; $('conn').className = 'conn live'; };
  source.onerror = function () { $('conn').textContent = 'reconnecting…'; $('conn').className = 'conn reconnecting'; };
  source.addEventListener('snapshot', function (e) {
    var s = JSON.parse(e.data);
    intervalMs = s.sampleIntervalMs;
    history = s.history;
    state = s;
    render();
  });
  source.addEventListener('state', function (e) {
    if (!state) return;
    var s = JSON.parse(e.data);
    Object.keys(s).forEach(function (k) { state[k] = s[k]; });
    render();
  });
  source.addEventListener('sample', function (e) {
    if (!state) return;
    history.push(JSON.parse(e.data));
    while (history.length > maxPoints) history.shift();
    renderPlots();
  });
})();
`;
