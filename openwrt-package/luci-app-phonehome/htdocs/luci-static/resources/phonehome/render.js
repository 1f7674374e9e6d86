'use strict';
/*
 * phonehome report renderer.
 *
 * Draws a report document (docs/REPORT-DATA.md) into one element: a header
 * with a one-line headline, a card per device (its phone-home share, the
 * companies it talks to, their categories), the owners overall (by owner,
 * parent company and country), a stacked timeline, the recent decisions
 * (blocked ones first) and, when present, a before/after diff.
 *
 * `phonehome report` embeds this file (gzipped) in a self-contained HTML
 * page; the LuCI app's Overview loads it with a script element. It is
 * hand-written DOM and SVG: a charting library would not fit next to the
 * daemon on 16 MB flash routers, and bars, donuts and areas need none.
 *
 * Limits: 50 device cards, 15 owners per device, 20 owners overall, 10
 * parents and countries, 11 timeline lines, 50 decisions (25 blocked ones).
 * Times are UTC. No network access of any kind. Every string from the
 * document is hostile: it goes in only as text (textContent, title, data-*),
 * cut to about 60 characters with the full text in a title, bidi controls
 * shown as U+FFFD.
 *
 * Over 600 lines: one section per part of the report (header, devices,
 * owners, timeline, decisions, diff) with the SVG helpers they share.
 */
var PhonehomeRender = (function () {
  const SVGNS = 'http://www.w3.org/2000/svg', HATCH = 'phonehome-hatch';
  const CATS = { advertising: '#e8590c', analytics: '#f59f00', telemetry: '#d6336c', social: '#7048e8',
    cdn: '#1c7ed6', cloud: '#0c8599', services: '#37b24d', unknown: '#adb5bd' };
  const PALETTE = ['#1c7ed6', '#e8590c', '#2f9e44', '#d6336c', '#7048e8', '#0c8599', '#f59f00', '#5c940d', '#862e9c', '#364fc7'];
  const OTHER = '#adb5bd', BLOCK = '#e03131', SHARE = ['#1c7ed6', '#e8590c', '#ced4da'];
  const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' '), DAYS = 'Sun Mon Tue Wed Thu Fri Sat'.split(' ');

  // Every selector below is put under .phonehome (& is .phonehome itself).
  const CSS = `&{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#212529;background:#f4f6f8;padding:16px;margin:0 auto;max-width:1240px;text-align:left;overflow-wrap:anywhere}
*{box-sizing:border-box}
h1{font-size:26px;margin:2px 0 6px;font-weight:700}
h2{font-size:19px;margin:0 0 4px;font-weight:650}
h3{font-size:18px;margin:0;font-weight:650;min-width:0;max-width:100%}
h4{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#6c757d;margin:18px 0 8px;font-weight:600}
p{margin:4px 0}
.ph-sec,.ph-card{background:#fff;border:1px solid #e1e5ea;border-radius:12px;padding:18px 20px;margin:0 0 16px;box-shadow:0 1px 3px rgba(0,0,0,.05);min-width:0;container-type:inline-size}
.ph-kicker{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:#1c7ed6;font-weight:600}
.ph-headline{font-size:18px;margin:6px 0 12px}
.ph-lead{color:#495057;margin:0 0 10px}
.ph-mute,.ph-none{color:#6c757d}
.ph-none{font-style:italic}
.ph-name{unicode-bidi:isolate;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:100%;display:inline-block;vertical-align:bottom}
.ph-facts{display:flex;flex-wrap:wrap;gap:4px 22px;color:#495057;font-size:13px;margin:0 0 12px}
.ph-facts b{color:#212529;font-weight:600}
.ph-tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.ph-tile{background:#f8f9fa;border-radius:10px;padding:10px 12px;min-width:0}
.ph-tile b{display:block;font-size:22px;font-weight:700}
.ph-tile span{font-size:12px;color:#6c757d}
.ph-bad b{color:#c92a2a}
.ph-card-h{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px;min-width:0;margin-bottom:10px}
.ph-mac{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;color:#495057}
.ph-badge{display:inline-block;font-size:11px;font-weight:600;border-radius:999px;padding:1px 8px;background:#e7f5ff;color:#1864ab;white-space:nowrap}
.ph-b-block,.ph-b-reject{background:#ffe3e3;color:#c92a2a}
.ph-b-allow{background:#ebfbee;color:#2b8a3e}
.ph-b-pending{background:#f1f3f5;color:#495057}
.ph-cols{display:grid;grid-template-columns:minmax(0,2.2fr) minmax(0,1fr);gap:0 28px}
.ph-cols2{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0 28px}
@container (max-width:720px){.ph-cols,.ph-cols2{grid-template-columns:minmax(0,1fr)}}
.ph-row{display:grid;grid-template-columns:minmax(0,38%) minmax(60px,1fr) 92px auto;gap:10px;align-items:center;padding:5px 0;border-bottom:1px solid #f1f3f5}
.ph-row:last-child{border-bottom:0}
.ph-lbl{min-width:0}
.ph-lbl>.ph-name{font-weight:600}
.ph-meta{font-size:12px;color:#6c757d;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.ph-meta>span{margin-right:8px;unicode-bidi:isolate}
.ph-dot{flex:none;display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:4px}
.ph-bar{display:block;width:100%;height:16px;border-radius:3px;background:#f1f3f5}
.ph-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;font-size:13px}
.ph-num small{display:block;color:#6c757d;font-size:11px}
.ph-num small.ph-red{color:#c92a2a;font-weight:600}
.ph-btn{font:inherit;font-size:12px;padding:2px 10px;border:1px solid #e03131;color:#c92a2a;background:#fff;border-radius:6px;cursor:pointer}
.ph-btn:hover{background:#fff5f5}
.ph-more{color:#6c757d;font-size:13px;margin:6px 0 0}
.ph-share{display:block;width:100%;height:24px;border-radius:6px}
.ph-legend{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px;margin:6px 0 0;padding:0;list-style:none;min-width:0}
.ph-legend li{display:flex;align-items:center;min-width:0;max-width:100%;white-space:nowrap}
.ph-legend li>*{flex:none}
.ph-legend li>.ph-name{flex:0 1 auto;min-width:0}
.ph-legend li>.ph-mute{margin-left:4px}
.ph-col{flex-direction:column}
.ph-rules{margin:0 0 10px}
.ph-rules .ph-name{margin-left:6px}
.ph-sw{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:6px}
.ph-donut{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:center;min-width:0}
.ph-donut svg{flex:none;width:120px;height:120px}
.ph-donut ul{flex:1 1 130px}
.ph-chart{display:block;width:100%;height:auto}
.ph-chart text{font-size:12px;fill:#6c757d}
table{width:100%;border-collapse:collapse;table-layout:fixed;font-size:13px}
th{text-align:left;font-weight:600;color:#6c757d;font-size:12px;padding:6px 8px;border-bottom:1px solid #dee2e6}
td{padding:6px 8px;border-bottom:1px solid #f1f3f5;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
tr.ph-blocked td{background:#fff5f5}
td .ph-name{display:inline}
.ph-groups{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.ph-group{background:#f8f9fa;border-radius:10px;padding:10px 12px;min-width:0}
.ph-group h4{margin:0 0 6px}
.ph-chg{display:flex;align-items:center;gap:4px 8px;font-size:13px;padding:2px 0}
.ph-chg .ph-name{flex:1 1 auto;min-width:0}
.ph-chg b{white-space:nowrap;font-variant-numeric:tabular-nums}
.ph-mirror{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,200px) minmax(0,1fr);gap:8px;align-items:center;padding:3px 0;font-size:13px}
.ph-mirror .ph-lbl{text-align:center}
.ph-err{color:#c92a2a;font-weight:600}
.ph-empty{color:#6c757d;font-size:15px;padding:18px 0;text-align:center}`
    .replace(/(^|[{}\n])([^{}@\n]+)\{/g, (m, pre, sel) => pre + sel.split(',').map((x) => x.trim() === '&' ? '.phonehome' : '.phonehome ' + x.trim()).join(',') + '{');

  let D; // the document being drawn into (set by draw)

  /* ---- values from untrusted JSON ---- */
  const num = (v) => { v = Number(v); return isFinite(v) && v > 0 ? v : 0; };
  const str = (v) => typeof v === 'string' ? v : typeof v === 'number' && isFinite(v) ? String(v) : '';
  const arr = (v) => Array.isArray(v) ? v : [];
  const isObj = (v) => !!v && typeof v === 'object' && !Array.isArray(v);
  const obj = (v) => isObj(v) ? v : {};
  const rows = (v) => arr(v).filter(isObj);
  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
  const catOf = (c) => own(CATS, str(c)) ? str(c) : 'unknown';
  const deviceKey = (d) => str(obj(d).mac) || str(arr(obj(d).ips)[0]);
  const sum = (list, f) => list.reduce((s, x) => s + f(x), 0);
  const byFlows = (a, b) => num(b.flows) - num(a.flows);
  const isBlocked = (f) => f.verdict === 'block' || f.verdict === 'reject';

  /* ---- formatting ---- */
  const fmtInt = (n) => {
    n = Math.round(Number(n) || 0);
    return (n < 0 ? '-' : '') + String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  };
  function fmtBytes(n) {
    n = num(n);
    const u = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (n >= 1000 && i < 5) { n /= 1000; i++; }
    return (i && n < 10 ? n.toFixed(1) : fmtInt(n)) + ' ' + u[i];
  }
  const plural = (n, one, many) => fmtInt(n) + ' ' + (n === 1 ? one : many);
  const pct = (a, b) => b ? ' (' + Math.round(a * 100 / b) + '%)' : '';
  // Shown text: bidi overrides and isolates (which could reverse or hide
  // what follows them) become U+FFFD; past n characters it is cut.
  function cut(s, n) {
    n = n || 60;
    s = s.replace(/[\u202a-\u202e\u2066-\u2069]/g, '\ufffd');
    if (s.length <= n) return s;
    const a = Array.from(s);
    return a.length <= n ? s : a.slice(0, n - 1).join('') + '\u2026';
  }
  const pad = (n) => (n < 10 ? '0' : '') + n;
  const utc = (t) => new Date(Math.min(num(t), 8e12) * 1000);
  const hhmm = (d) => pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
  const dayMonth = (d) => d.getUTCDate() + ' ' + MONTHS[d.getUTCMonth()];
  const fmtDate = (t, d = utc(t)) => DAYS[d.getUTCDay()] + ' ' + dayMonth(d) + ' ' + d.getUTCFullYear() + ', ' + hhmm(d) + ' UTC';
  const fmtStamp = (t, d = utc(t)) => dayMonth(d) + ' ' + hhmm(d) + ':' + pad(d.getUTCSeconds());
  function fmtDuration(s) {
    s = Math.floor(num(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + ' d ' + h + ' h' : h ? h + ' h ' + m + ' min' : m + ' min';
  }
  const tickLabel = (t, step, d = utc(t)) => step >= 86400 ? dayMonth(d) : step >= 3600 ? DAYS[d.getUTCDay()] + ' ' + hhmm(d) : hhmm(d);
  const stepName = (step) => step === 60 ? 'minute' : step === 86400 ? 'day' : 'hour';

  /* ---- pure helpers (exported for the unit tests) ---- */

  // A MAC whose first octet has the locally administered bit (0x02) set.
  function isRandomMac(mac) {
    const m = /^([0-9a-f]{2})[:-]/i.exec(str(mac));
    return !!m && (parseInt(m[1], 16) & 2) === 2;
  }

  // Whole percentages of `values` that add up to 100 (largest remainder).
  function percents(values) {
    const total = sum(values, Number);
    if (!(total > 0)) return values.map(() => 0);
    const exact = values.map((v) => v * 100 / total), out = exact.map(Math.floor);
    let left = 100 - sum(out, Number);
    exact.map((x, i) => [x - out[i], i]).sort((a, b) => b[0] - a[0]).forEach((r) => { if (left-- > 0) out[r[1]]++; });
    return out;
  }

  // PhoneHome -> its three parts (maker, tracking, other) with counts and percentages.
  function phoneHomeShare(ph) {
    ph = obj(ph);
    const v = [num(ph.maker_flows), num(ph.tracking_flows), num(ph.other_flows)], p = percents(v), total = sum(v, Number);
    return { maker: str(ph.maker) || null, guessed: ph.maker_from === 'traffic', total: total,
      parts: ['maker', 'tracking', 'other'].map((k, i) => ({ key: k, flows: v[i], share: total ? v[i] / total : 0, percent: p[i] })) };
  }

  // x axis ticks: fewer than `max`, on round multiples of the step.
  const NICE = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000];
  function timeTicks(since, until, step, max) {
    max = max || 8; step = num(step) || 3600;
    const out = [];
    let every = step;
    for (const e of NICE) {
      if (e >= step && e % step === 0) { every = e; if ((until - since) / e < max) break; }
    }
    while ((until - since) / every >= max) every *= 2;
    for (let t = Math.ceil(since / every) * every; t <= until; t += every) out.push({ t: t, label: tickLabel(t, step) });
    return out;
  }

  // 1, 2, 5 x 10^k at or above x.
  function niceCeil(x) {
    if (!(x > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(x))), f = x / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  /* ---- DOM building: elements are made and appended to `p` in one call ---- */
  function h(p, tag, cls, text) {
    const e = D.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return p ? p.appendChild(e) : e;
  }
  function s(p, tag, attrs, text) {
    const e = D.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return p ? p.appendChild(e) : e;
  }
  function data(e, o) { for (const k in o) e.setAttribute('data-' + k, o[k]); return e; }
  // A string from the data shown as text: cut, with the full text as title.
  function name(p, v, n, cls) {
    v = str(v);
    const e = h(p, 'span', 'ph-name' + (v ? '' : ' ph-none') + (cls ? ' ' + cls : ''), v ? cut(v, n) : '(no name)');
    if (v) e.title = v;
    return e;
  }
  function chip(p, cls, color) { const e = h(p, 'span', cls); e.style.background = color; return e; }
  function section(root, id, title, lead) {
    const e = data(h(root, 'section', 'ph-sec'), { section: id });
    e.id = 'ph-' + id;
    h(e, 'h2', '', title);
    if (lead) h(e, 'p', 'ph-lead', lead);
    return e;
  }
  const empty = (p, text) => h(p, 'p', 'ph-empty', text);
  function tile(p, value, label, bad) {
    const t = h(p, 'div', 'ph-tile' + (bad ? ' ph-bad' : ''));
    h(t, 'b', '', value); h(t, 'span', '', label);
  }
  function fact(p, label, value) { h(h(p, 'span', '', label + ' '), 'b', '', value); }
  function legendItem(p, color, label, value) {
    const li = h(p, 'li');
    chip(li, 'ph-sw', color); name(li, label, 40);
    if (value) h(li, 'span', 'ph-mute', value);
    return li;
  }
  const countText = (f, b) => plural(f, 'connection', 'connections') + (b ? ', ' + fmtInt(b) + ' blocked' : '');

  // Allowed then blocked (hatched) part of a horizontal bar, in % of `max`;
  // `mirror` grows it from the right.
  function bar(p, flows, blocked, max, color, mirror) {
    const e = s(p, 'svg', { 'class': 'ph-bar', role: 'img' });
    blocked = Math.min(blocked, flows);
    let a = max ? (flows - blocked) * 100 / max : 0, b = max ? blocked * 100 / max : 0;
    if (a > 0) a = Math.max(a, 0.6);
    if (b > 0) b = Math.max(b, 0.6);
    const x0 = mirror ? 100 - a - b : 0;
    if (a) s(e, 'rect', { x: (mirror ? x0 + b : 0) + '%', y: 0, width: a + '%', height: '100%', fill: color });
    if (b) s(e, 'rect', { x: (mirror ? x0 : a) + '%', y: 0, width: b + '%', height: '100%', fill: 'url(#' + HATCH + ')' });
    s(e, 'title', {}, countText(flows, blocked));
  }

  // One bar row: label (name, "(sub)", meta line), bar, numbers, button.
  function barRow(p, o) {
    const r = data(h(p, 'div', 'ph-row'), o.data), l = h(r, 'div', 'ph-lbl');
    name(l, o.label, 60);
    if (o.sub) { h(l, 'span', '', ' '); name(l, '(' + o.sub + ')', 40, 'ph-mute'); }
    if (o.meta) l.appendChild(o.meta);
    bar(r, o.flows, o.blocked, o.max, o.color);
    const n = h(r, 'div', 'ph-num', fmtInt(o.flows));
    h(n, 'small', o.blocked ? 'ph-red' : '', o.blocked ? fmtInt(o.blocked) + ' blocked' : 'connections');
    if (o.bytes) n.title = o.bytes;
    h(r, 'div').appendChild(o.button || D.createTextNode(''));
    return r;
  }

  function ownerRow(p, o, max, onBlock, key) {
    const cat = catOf(o.category), owner = str(o.owner), meta = h(null, 'div', 'ph-meta');
    const c = h(meta, 'span');
    chip(c, 'ph-dot', CATS[cat]); c.appendChild(D.createTextNode(cut(str(o.category) || 'unknown', 20)));
    const cs = rows(o.countries).sort(byFlows).slice(0, 3), ds = arr(o.domains).map(str).filter(Boolean);
    if (cs.length) h(meta, 'span', '', cs.map((x) => cut(str(x.country) || '?', 8) + ' ' + fmtInt(num(x.flows))).join(' \u00b7 '));
    if (ds.length) h(meta, 'span', '', cut(ds[0], 40) + (ds.length > 1 ? ' +' + (ds.length - 1) : '')).title = ds.slice(0, 20).join('\n');
    let button = null;
    if (onBlock) {
      button = h(null, 'button', 'ph-btn', 'Block');
      button.type = 'button';
      button.title = 'Block ' + cut(owner, 60) + ' for this device';
      button.addEventListener('click', () => onBlock(key, owner));
    }
    barRow(p, { label: owner, sub: str(o.parent), meta: meta, flows: num(o.flows), blocked: num(o.blocked), max: max,
      color: CATS[cat], button: button, bytes: fmtBytes(o.bytes_up) + ' up, ' + fmtBytes(o.bytes_down) + ' down',
      data: { owner: owner, flows: num(o.flows), blocked: num(o.blocked), category: cat } });
  }

  function ownerBars(p, owners, limit, onBlock, key) {
    const list = owners.slice().sort(byFlows), top = list.slice(0, limit), max = top.length ? num(top[0].flows) : 0;
    top.forEach((o) => ownerRow(p, o, max, onBlock, key));
    if (list.length > limit) h(p, 'p', 'ph-more', plural(list.length - limit, 'more owner', 'more owners') + ' not shown');
  }

  // A donut of parts [{label, value, color}] with its legend beside it.
  function donut(p, parts, centre) {
    const box = h(p, 'div', 'ph-donut'), e = s(box, 'svg', { viewBox: '0 0 42 42', role: 'img' });
    const total = sum(parts, (x) => x.value), r = 100 / (2 * Math.PI), pc = percents(parts.map((x) => x.value));
    let acc = 0;
    s(e, 'circle', { cx: 21, cy: 21, r: r, fill: 'none', stroke: '#f1f3f5', 'stroke-width': 7 });
    parts.forEach((x, i) => {
      if (!total || !x.value) return;
      const len = x.value * 100 / total;
      s(s(e, 'circle', { cx: 21, cy: 21, r: r, fill: 'none', stroke: x.color, 'stroke-width': 7,
        'stroke-dasharray': len + ' ' + (100 - len), 'stroke-dashoffset': 25 - acc }), 'title', {}, cut(x.label) + ': ' + fmtInt(x.value));
      acc += len;
    });
    s(e, 'text', { x: 21, y: 23.5, 'text-anchor': 'middle', 'font-size': 7, 'font-weight': 700, fill: '#212529' }, centre);
    const ul = h(box, 'ul', 'ph-legend ph-col');
    parts.forEach((x, i) => legendItem(ul, x.color, x.label, fmtInt(x.value) + ' \u00b7 ' + pc[i] + '%'));
  }

  // Rows summed by a key: [{key, flows, blocked, n}], most flows first.
  function group(list, keyOf, flowsOf, blockedOf) {
    const m = new Map();
    list.forEach((r) => {
      const k = keyOf(r);
      let g = m.get(k);
      if (!g) m.set(k, g = { key: k, flows: 0, blocked: 0, n: 0 });
      g.flows += flowsOf(r); g.blocked += blockedOf ? blockedOf(r) : 0; g.n++;
    });
    return Array.from(m.values()).sort(byFlows);
  }

  /* ---- a. header ---- */
  // Counts of all (a router's document lists at most 1,000 owners and 50
  // devices, and says how many there were), else of what is listed.
  const ownerCount = (doc, owners) => num(doc.owner_count) || owners.length;
  const blockedCount = (doc, owners) => num(doc.owners_blocked) || owners.filter((o) => num(o.blocked) > 0).length;
  const deviceCount = (doc, devices) => num(doc.device_count) || devices.length;
  const headline = (who, owners, doc) => who + ' talked to ' + plural(doc ? ownerCount(doc, owners) : owners.length, 'company', 'companies') + '; ' +
    fmtInt(doc ? blockedCount(doc, owners) : owners.filter((o) => num(o.blocked) > 0).length) + ' blocked.';

  function drawHeader(root, doc, devices, owners) {
    const e = data(h(root, 'header', 'ph-sec'), { section: 'header' });
    const capture = doc.source === 'capture', st = obj(doc.status), cap = obj(doc.capture), rg = obj(doc.range);
    e.id = 'ph-header';
    h(e, 'div', 'ph-kicker', 'phonehome' + (capture ? ' \u00b7 capture analysis' : doc.source === 'router' ? ' \u00b7 router report' : ' report'));
    name(h(e, 'h1'), str(doc.name) || 'phonehome report', 80);
    const nd = deviceCount(doc, devices);
    const who = nd === 1 && devices.length ? cut(str(devices[0].hostname), 40) || 'This phone' : plural(nd, 'device', 'devices');
    if (devices.length || owners.length) h(e, 'p', 'ph-headline', headline(who, owners, doc));
    const f = h(e, 'div', 'ph-facts');
    fact(f, capture ? 'Capture' : 'Range', (rg.since ? fmtDate(rg.since) : capture ? 'whole file' : 'since the start') +
      (rg.until ? ' \u2013 ' + fmtDate(rg.until) : rg.since ? ' \u2013 now' : ''));
    if (doc.generated) fact(f, 'Generated', fmtDate(doc.generated));
    if (str(doc.device)) fact(f, 'Device', cut(str(doc.device)));
    if (isObj(doc.status)) {
      fact(f, 'Mode', st.mode === 'observe' ? 'observe (nothing is blocked)' : cut(str(st.mode), 20) || 'unknown');
      fact(f, 'Up', fmtDuration(st.uptime_s));
      if (str(st.version)) fact(f, 'Version', cut(str(st.version), 30));
    }
    if (isObj(doc.capture)) fact(f, 'Packets', fmtInt(num(cap.packets)) + ' (' + fmtBytes(cap.bytes) + ')');
    const counted = devices.length ? devices : owners;
    let flows = sum(counted, (d) => num(d.flows)), blocked = sum(counted, (d) => num(d.blocked));
    if (isObj(doc.capture)) { flows = num(cap.flows) || flows; blocked = num(cap.blocked) || blocked; }
    const t = h(e, 'div', 'ph-tiles');
    tile(t, fmtInt(nd), nd === 1 ? 'device' : 'devices');
    tile(t, fmtInt(ownerCount(doc, owners)), ownerCount(doc, owners) === 1 ? 'company' : 'companies');
    tile(t, fmtInt(flows), 'connections');
    tile(t, fmtInt(blocked), 'blocked' + pct(blocked, flows), blocked > 0);
    if (isObj(doc.capture)) tile(t, fmtInt(num(cap.packets)), 'packets');
  }

  /* ---- b. one card per device ---- */
  function drawShare(card, ph) {
    const sh = phoneHomeShare(ph), maker = sh.maker ? cut(sh.maker, 40) : null, p = sh.parts;
    h(card, 'h4', '', 'Phone-home share');
    if (!sh.total) return h(card, 'p', 'ph-mute', 'No connections to count.');
    h(card, 'p', '', maker
      ? p[0].percent + '% of its connections go to its maker ' + maker + (sh.guessed ? ' (guessed from traffic)' : '') + ', ' +
        p[1].percent + '% to ad, analytics and telemetry companies.'
      : 'Maker unknown; ' + p[1].percent + '% of its connections go to ad, analytics and telemetry companies.');
    const e = s(card, 'svg', { 'class': 'ph-share', role: 'img', 'data-share': 'phone-home' });
    let x = 0;
    p.forEach((part, i) => {
      if (!part.flows) return;
      const w = part.share * 100;
      s(s(e, 'rect', { x: x + '%', y: 0, width: w + '%', height: '100%', fill: SHARE[i], 'data-part': part.key, 'data-flows': part.flows }),
        'title', {}, part.key + ': ' + fmtInt(part.flows));
      if (w >= 7) s(e, 'text', { x: (x + w / 2) + '%', y: 16, 'text-anchor': 'middle', 'font-size': 12, 'font-weight': 600, fill: i < 2 ? '#fff' : '#343a40' }, part.percent + '%');
      x += w;
    });
    const ul = h(card, 'ul', 'ph-legend');
    const labels = [maker ? maker + ' (maker' + (sh.guessed ? ', guessed from traffic)' : ')') : 'maker unknown', 'ads, analytics, telemetry', 'everything else'];
    p.forEach((part, i) => legendItem(ul, SHARE[i], labels[i], fmtInt(part.flows) + ' \u00b7 ' + part.percent + '%'));
  }

  function drawDevice(p, d, doc, onBlock, several) {
    const key = deviceKey(d), mac = str(d.mac), ips = arr(d.ips).map(str).filter(Boolean);
    const owners = rows(own(obj(doc.device_owners), key)), flows = num(d.flows), blocked = num(d.blocked);
    const card = data(h(p, 'article', 'ph-card'), { section: 'device', device: key }), top = h(card, 'div', 'ph-card-h');
    const title = str(d.hostname) || mac || ips[0] || '';
    name(h(top, 'h3'), title || 'Unknown device', 50);
    if (mac && title !== mac) name(top, mac, 40, 'ph-mac');
    if (isRandomMac(mac)) h(top, 'span', 'ph-badge', 'randomised MAC').title = 'Locally administered: a private address instead of the real MAC';
    if (ips.length) name(top, ips.slice(0, 4).join(', ') + (ips.length > 4 ? ' +' + (ips.length - 4) : ''), 80, 'ph-mute');
    if (several) h(card, 'p', 'ph-headline', headline(cut(str(d.hostname), 40) || 'This device', owners));
    const t = h(card, 'div', 'ph-tiles');
    tile(t, fmtInt(flows), 'connections');
    tile(t, fmtInt(blocked), 'blocked' + pct(blocked, flows), blocked > 0);
    tile(t, fmtBytes(d.bytes_up), 'sent');
    tile(t, fmtBytes(d.bytes_down), 'received');
    if (d.new_owners != null) tile(t, fmtInt(num(d.new_owners)), 'new companies');
    if (d.last_seen) tile(t, hhmm(utc(d.last_seen)), 'last seen ' + dayMonth(utc(d.last_seen)) + ' UTC');
    const ph = own(obj(doc.phone_home), key);
    if (ph) drawShare(card, ph);
    const cols = h(card, 'div', 'ph-cols'), left = h(cols, 'div'), right = h(cols, 'div');
    h(left, 'h4', '', 'Who it talks to');
    if (owners.length) ownerBars(left, owners, 15, onBlock, key);
    else h(left, 'p', 'ph-mute', 'No companies seen.');
    h(right, 'h4', '', 'Categories');
    const cats = group(owners, (o) => catOf(o.category), (o) => num(o.flows));
    if (cats.length) donut(right, cats.map((g) => ({ label: g.key, value: g.flows, color: CATS[g.key] })), fmtInt(sum(cats, (g) => g.flows)));
    else h(right, 'p', 'ph-mute', 'None.');
    const cs = rows(d.countries).sort(byFlows);
    if (cs.length) {
      h(right, 'h4', '', 'Countries');
      const ul = h(right, 'ul', 'ph-legend ph-col');
      cs.slice(0, 6).forEach((c, i) => legendItem(ul, PALETTE[i], str(c.country) || '?', fmtInt(num(c.flows))));
    }
  }

  function drawDevices(root, doc, devices, onBlock) {
    const all = Math.max(deviceCount(doc, devices), devices.length);
    const e = section(root, 'devices', devices.length === 1 && all === 1 ? 'The device' : 'Devices',
      all > Math.min(devices.length, 50) ? 'The ' + Math.min(devices.length, 50) + ' devices with the most connections, of ' + fmtInt(all) + '.' : '');
    if (!devices.length) return empty(e, 'No devices seen in this range.');
    devices.slice(0, 50).forEach((d) => drawDevice(e, d, doc, onBlock, devices.length > 1));
  }

  /* ---- c. owners overall ---- */
  function drawOwners(root, owners, doc) {
    const e = section(root, 'owners', 'Companies', owners.length ? plural(ownerCount(doc, owners), 'company', 'companies') +
      ' received connections; ' + fmtInt(blockedCount(doc, owners)) + ' of them had some blocked.' +
      (ownerCount(doc, owners) > owners.length ? ' The ' + fmtInt(owners.length) + ' with the most connections are listed.' : '') : '');
    if (!owners.length) return empty(e, 'No companies seen in this range.');
    ownerBars(e, owners, 20);
    const cols = h(e, 'div', 'ph-cols2'), a = data(h(cols, 'div'), { section: 'parents' }), b = data(h(cols, 'div'), { section: 'countries' });
    h(a, 'h4', '', 'By parent company');
    const ps = group(owners, (o) => str(o.parent) || str(o.owner), (o) => num(o.flows), (o) => num(o.blocked));
    ps.slice(0, 10).forEach((g) => barRow(a, { label: g.key, flows: g.flows, blocked: g.blocked, max: ps[0].flows, color: '#4263eb',
      meta: g.n > 1 ? h(null, 'div', 'ph-meta', plural(g.n, 'brand', 'brands')) : null, data: { parent: g.key, flows: g.flows, blocked: g.blocked } }));
    h(b, 'h4', '', 'By country');
    const cs = group(owners.reduce((all, o) => all.concat(rows(o.countries)), []), (c) => str(c.country) || '?', (c) => num(c.flows));
    if (!cs.length) h(b, 'p', 'ph-mute', 'No countries known.');
    cs.slice(0, 10).forEach((g) => barRow(b, { label: g.key, flows: g.flows, blocked: 0, max: cs[0].flows, color: '#12b886',
      data: { country: g.key, flows: g.flows } }));
  }

  /* ---- d. timeline: stacked areas, a point per line and bucket with traffic ---- */
  function drawTimeline(root, series) {
    let step = num(series.step) || 3600;
    const lines = rows(series.lines).slice(0, 11), ts = [];
    const e = section(root, 'timeline', 'Over time', 'Connections per ' + (cut(str(series.by), 20) || 'key') + ', every ' +
      ([60, 3600, 86400].includes(step) ? stepName(step) : fmtInt(step) + ' s') + ', stacked (UTC).');
    lines.forEach((l) => arr(l.points).forEach((p) => { if (Array.isArray(p) && p[0] !== null && Math.abs(p[0]) < 1e11) ts.push(Number(p[0])); }));
    if (!ts.length) return empty(e, 'No connections in this range.');
    const lo = ts.reduce((a, b) => Math.min(a, b)), hi = ts.reduce((a, b) => Math.max(a, b));
    const since = series.since != null && isFinite(series.since) ? Math.min(Number(series.since), lo) : lo;
    const until = series.until != null && isFinite(series.until) ? Math.max(Number(series.until), hi + step) : hi + step;
    while ((until - since) / step > 3000) step *= 2; // bad data: keep the drawing bounded
    const n = Math.max(1, Math.ceil((until - since) / step));
    let base = new Array(n).fill(0);
    const lns = lines.map((l, i) => {
      const v = new Array(n).fill(0), b = new Array(n).fill(0), key = str(l.key), below = base;
      arr(l.points).forEach((p) => {
        const k = Array.isArray(p) ? Math.floor((Number(p[0]) - since) / step) : -1;
        if (k >= 0 && k < n) { v[k] += num(p[1]); b[k] += num(p[2]); }
      });
      base = base.map((x, k) => x + v[k]);
      return { key: key, v: v, b: b, lo: below, hi: base, total: sum(v, Number),
        color: key === '(other)' ? OTHER : series.by === 'category' && own(CATS, key) ? CATS[key] : PALETTE[i % 10] };
    });
    const most = base.reduce((a, b) => Math.max(a, b), 0), tick = niceCeil(most / 4), ymax = Math.max(tick, Math.ceil(most / tick) * tick);
    const W = 960, H = 270, L = 52, R = 14, T = 12, ph = H - T - 30, pw = W - L - R;
    // Up to 90 buckets: stacked columns, blocked parts hatched; more: stacked areas.
    const cols = n <= 90, bw = Math.min(48, pw / n * 0.72);
    const x = (k) => (L + (k + 0.5) * pw / n).toFixed(1), y = (v) => (T + ph - v * ph / ymax).toFixed(1);
    const svg = s(e, 'svg', { 'class': 'ph-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    for (let gv = 0; gv <= ymax; gv += tick) {
      s(svg, 'line', { x1: L, x2: W - R, y1: y(gv), y2: y(gv), stroke: gv ? '#eceff1' : '#ced4da' });
      s(svg, 'text', { x: L - 8, y: Number(y(gv)) + 4, 'text-anchor': 'end' }, fmtInt(gv));
    }
    timeTicks(since, since + (n - 1) * step, step, 9).forEach((tk) => {
      const tx = Number(x((tk.t - since) / step));
      s(svg, 'line', { x1: tx, x2: tx, y1: T + ph, y2: T + ph + 5, stroke: '#adb5bd' });
      s(svg, 'text', { x: tx, y: H - 8, 'text-anchor': tx < L + 30 ? 'start' : tx > W - R - 30 ? 'end' : 'middle' }, tk.label);
    });
    lns.forEach((d) => {
      const g = s(svg, 'g', { 'data-key': d.key });
      if (cols) {
        for (let k = 0; k < n; k++) {
          if (!d.v[k]) continue;
          const x0 = (x(k) - bw / 2).toFixed(1), top = Number(y(d.hi[k])), hgt = Number(y(d.lo[k])) - top;
          s(g, 'rect', { x: x0, y: top, width: bw.toFixed(1), height: hgt.toFixed(1), fill: d.color });
          if (d.b[k]) s(g, 'rect', { x: x0, y: top, width: bw.toFixed(1), height: (hgt * Math.min(1, d.b[k] / d.v[k])).toFixed(1), fill: 'url(#' + HATCH + '-s)' });
        }
        return;
      }
      let up = '', down = '';
      for (let k = 0; k < n; k++) up += (k ? 'L' : 'M') + x(k) + ' ' + y(d.hi[k]);
      for (let k = n - 1; k >= 0; k--) down += 'L' + x(k) + ' ' + y(d.lo[k]);
      s(g, 'path', { d: up + down + 'Z', fill: d.color, 'fill-opacity': 0.55 });
      s(g, 'path', { d: up, fill: 'none', stroke: d.color, 'stroke-width': 1.5, 'stroke-linejoin': 'round' });
    });
    const r = cols ? Math.min(2.4, bw / 4) : n > 200 ? 1.5 : 2.5, ring = n > 200 ? 1 : 2;
    lns.forEach((d) => {
      const g = s(svg, 'g', { 'data-key': d.key });
      for (let k = 0; k < n; k++) {
        if (!d.v[k] && !d.b[k]) continue;
        const t = since + k * step, bl = d.b[k];
        const ringed = bl && !cols;
        s(s(g, 'circle', { cx: x(k), cy: y(d.hi[k]), r: ringed ? r + 0.6 : r, fill: ringed || cols ? '#fff' : d.color,
          stroke: ringed ? BLOCK : cols ? d.color : '#fff', 'stroke-width': ringed ? ring : cols ? 1.2 : 0.8, 'data-t': t, 'data-flows': d.v[k], 'data-blocked': bl }),
          'title', {}, cut(d.key) + ' \u00b7 ' + tickLabel(t, Math.min(step, 3600)) + ' \u00b7 ' + countText(d.v[k], bl));
      }
    });
    const ul = h(e, 'ul', 'ph-legend');
    lns.forEach((d) => data(legendItem(ul, d.color, d.key, fmtInt(d.total)), { key: d.key }));
    h(e, 'p', 'ph-more', cols ? 'Red stripes: blocked.' : 'Points ringed in red: some of that ' + stepName(step) + '\u2019s connections were blocked.');
  }

  /* ---- e. recent decisions ---- */
  function drawFlows(root, flows, devices) {
    const e = section(root, 'flows', 'Recent decisions');
    if (!flows.length) return empty(e, 'No decisions recorded.');
    const names = new Map(devices.filter((d) => str(d.hostname)).map((d) => [deviceKey(d), str(d.hostname)]));
    const list = flows.map((f, i) => [f, i]).sort((a, b) => num(b[0].first_seen) - num(a[0].first_seen) || b[1] - a[1]).map((p) => p[0]);
    const opt = { names: names, device: new Set(list.map((f) => str(f.device))).size > 1 };
    const blocked = list.filter(isBlocked), sub = data(h(e, 'div'), { section: 'blocked' });
    h(sub, 'h4', '', 'Blocked (' + fmtInt(blocked.length) + ')');
    if (!blocked.length) h(sub, 'p', 'ph-mute', 'Nothing was blocked.');
    else {
      const ul = h(sub, 'ul', 'ph-legend ph-rules');
      group(blocked, (f) => str(f.rule), () => 1).slice(0, 12).forEach((g) => {
        const li = data(h(ul, 'li'), { rule: g.key });
        h(li, 'span', 'ph-badge ph-b-block', fmtInt(g.flows));
        if (g.key) name(li, g.key, 40); else h(li, 'span', 'ph-name ph-none', 'no rule');
      });
      table(sub, blocked.slice(0, 25), opt);
      if (blocked.length > 25) h(sub, 'p', 'ph-more', plural(blocked.length - 25, 'more blocked decision', 'more blocked decisions') + ' not shown');
    }
    const all = data(h(e, 'div'), { section: 'recent' });
    h(all, 'h4', '', 'Latest ' + fmtInt(Math.min(50, list.length)) + ', newest first');
    table(all, list.slice(0, 50), opt);
  }

  function table(p, flows, opt) {
    const t = h(p, 'table'), hr = h(h(t, 'thead'), 'tr'), tb = h(t, 'tbody');
    const cols = [['Time', 13], ['Device', 15], ['Destination', 26], ['Owner', 18], ['Verdict', 9], ['Rule', 19]];
    if (!opt.device) cols.splice(1, 1);
    cols.forEach((c) => { h(hr, 'th', '', c[0]).style.width = c[1] + '%'; });
    flows.forEach((f) => {
      const v = str(f.verdict) || 'pending', dev = str(f.device);
      const tr = data(h(tb, 'tr', isBlocked(f) ? 'ph-blocked' : ''), { verdict: v, owner: str(f.owner) });
      h(tr, 'td', 'ph-mute', f.first_seen ? fmtStamp(f.first_seen) : '');
      if (opt.device) name(h(tr, 'td'), opt.names.get(dev) || dev, 30);
      let td = h(tr, 'td');
      name(td, str(f.domain) || str(f.dst) + (f.dport ? ':' + num(f.dport) : ''), 50);
      if (str(f.proto)) h(td, 'span', 'ph-mute', ' ' + cut(str(f.proto), 6));
      td = h(tr, 'td');
      chip(td, 'ph-dot', CATS[catOf(f.category)]); name(td, f.owner, 40);
      h(h(tr, 'td'), 'span', 'ph-badge ph-b-' + (/^(block|reject|allow)$/.test(v) ? v : 'pending'), cut(v, 10));
      td = h(tr, 'td');
      if (str(f.rule)) name(td, f.rule, 40);
    });
  }

  /* ---- f. diff ---- */
  function drawDiff(root, diff) {
    const e = section(root, 'diff', 'What changed'), f = h(e, 'div', 'ph-facts');
    fact(f, 'Before', cut(str(diff.before)) || '?');
    fact(f, 'After', cut(str(diff.after)) || '?');
    if (str(diff.device)) fact(f, 'Device', cut(str(diff.device)));
    const changes = rows(diff.changes), fb = (c) => num(c.flows_before), fa = (c) => num(c.flows_after);
    if (!changes.length) return empty(e, 'No connections in either range.');
    const gs = h(e, 'div', 'ph-groups');
    ['appeared', 'vanished', 'grew', 'shrank'].forEach((g) => {
      const list = changes.filter((c) => c.change === g).sort((a, b) => Math.abs(fa(b) - fb(b)) - Math.abs(fa(a) - fb(a)));
      const box = data(h(gs, 'div', 'ph-group'), { group: g });
      h(box, 'h4', '', g + ' (' + fmtInt(list.length) + ')');
      if (!list.length) h(box, 'p', 'ph-mute', 'none');
      list.slice(0, 30).forEach((c) => {
        const r = data(h(box, 'div', 'ph-chg'), { change: g, owner: str(c.owner) });
        chip(r, 'ph-dot', CATS[catOf(c.category)]); name(r, c.owner, 40);
        h(r, 'b', '', fmtInt(fb(c)) + ' \u2192 ' + fmtInt(fa(c)));
      });
      if (list.length > 30) h(box, 'p', 'ph-more', fmtInt(list.length - 30) + ' more');
    });
    const same = changes.filter((c) => c.change === 'same').length;
    if (same) h(e, 'p', 'ph-more', plural(same, 'company', 'companies') + ' unchanged.');
    h(e, 'h4', '', 'Before \u2190 connections \u2192 after');
    const top = changes.slice().sort((a, b) => Math.max(fb(b), fa(b)) - Math.max(fb(a), fa(a))).slice(0, 20);
    const max = Math.max(fb(top[0]), fa(top[0])), m = data(h(e, 'div'), { section: 'diff-chart' });
    top.forEach((c) => {
      const r = data(h(m, 'div', 'ph-mirror'), { owner: str(c.owner) });
      bar(r, fb(c), num(c.blocked_before), max, OTHER, true);
      const l = h(r, 'div', 'ph-lbl');
      name(l, c.owner, 30);
      h(l, 'div', 'ph-meta', fmtInt(fb(c)) + ' \u2192 ' + fmtInt(fa(c)));
      bar(r, fa(c), num(c.blocked_after), max, CATS[catOf(c.category)]);
    });
  }

  /* ---- entry point ---- */
  function safely(root, what, fn) {
    try { fn(); } catch (e) {
      if (typeof console !== 'undefined') console.error('phonehome: drawing the ' + what + ' failed', e);
      h(root, 'p', 'ph-err', 'The ' + what + ' could not be drawn: ' + (e && e.message));
    }
  }

  // Clears `root` and draws `doc` into it. options: {onBlock(deviceKey, owner), document}.
  function draw(root, doc, options) {
    options = obj(options);
    D = options.document || root.ownerDocument;
    doc = obj(doc);
    if (!D.getElementById('phonehome-style')) {
      const st = D.createElement('style');
      st.id = 'phonehome-style';
      st.textContent = CSS;
      (D.head || root).appendChild(st);
    }
    while (root.firstChild) root.removeChild(root.firstChild);
    root.classList.add('phonehome');
    // The hatching every blocked part of a bar is filled with.
    const defs = s(root, 'svg', { width: 0, height: 0, 'aria-hidden': 'true' });
    defs.style.position = 'absolute';
    const pat = s(s(defs, 'defs', {}), 'pattern', { id: HATCH, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
    s(pat, 'rect', { width: 6, height: 6, fill: BLOCK });
    s(pat, 'rect', { width: 2, height: 6, fill: '#fff', 'fill-opacity': 0.5 });
    // Red stripes alone, over the owner's colour in the timeline's columns.
    s(s(pat.parentNode, 'pattern', { id: HATCH + '-s', width: 5, height: 5, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }),
      'rect', { width: 2, height: 5, fill: BLOCK });

    const devices = rows(doc.devices), owners = rows(doc.owners), flows = rows(doc.flows), series = obj(doc.series);
    const diff = isObj(doc.diff) ? doc.diff : null, onBlock = typeof options.onBlock === 'function' ? options.onBlock : null;
    safely(root, 'header', () => drawHeader(root, doc, devices, owners));
    if (!devices.length && !owners.length && !flows.length && !arr(series.lines).length && !diff) {
      empty(section(root, 'nodata', 'Nothing to show yet'),
        'No device has made a connection in this range. Leave the phone on the network for a while and look again.');
      return root;
    }
    if (diff) safely(root, 'diff', () => drawDiff(root, diff));
    safely(root, 'devices', () => drawDevices(root, doc, devices, onBlock));
    safely(root, 'companies', () => drawOwners(root, owners, doc));
    safely(root, 'timeline', () => drawTimeline(root, series));
    safely(root, 'decisions', () => drawFlows(root, flows, devices));
    return root;
  }

  return { draw: draw, isRandomMac: isRandomMac, phoneHomeShare: phoneHomeShare, percents: percents, timeTicks: timeTicks,
    niceCeil: niceCeil, fmtInt: fmtInt, fmtBytes: fmtBytes, deviceKey: deviceKey, cut: cut };
}());
if (typeof module === 'object' && module.exports) module.exports = PhonehomeRender;
