// Unit tests of render.js's pure helpers, and a scan of its source for what
// it must never use. Run: node tests/browser/render_helpers.test.js
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');

const file = path.join(__dirname, '../../openwrt-package/luci-app-phonehome/htdocs/luci-static/resources/phonehome/render.js');
const R = require(file);
let n = 0;
function test(name, fn) { fn(); n++; }

test('isRandomMac: the locally administered bit of the first octet', () => {
  for (const m of ['02:00:00:00:77:02', 'a6:1f:3c:52:9e:07', 'AE:00:00:00:00:01', 'x6-00-00-00-00-00'.replace('x', 'f')]) {
    assert.strictEqual(R.isRandomMac(m), true, m);
  }
  for (const m of ['00:16:3e:00:00:01', '3c:16:3e:00:00:00', 'a4:00:00:00:00:00', 'f1:00:00:00:00:00', '', null, undefined, 5,
    '2:00:00', 'zz:00:00:00:00:00', '"><svg onload=x>', '__proto__']) {
    assert.strictEqual(R.isRandomMac(m), false, String(m));
  }
});

test('phoneHomeShare: counts, shares and whole percentages adding up to 100', () => {
  const s = R.phoneHomeShare({ maker: 'Xiaomi', maker_from: 'config', maker_flows: 42, tracking_flows: 9, other_flows: 60 });
  assert.strictEqual(s.maker, 'Xiaomi');
  assert.strictEqual(s.guessed, false);
  assert.strictEqual(s.total, 111);
  assert.deepStrictEqual(s.parts.map((p) => p.key), ['maker', 'tracking', 'other']);
  assert.deepStrictEqual(s.parts.map((p) => p.flows), [42, 9, 60]);
  assert.deepStrictEqual(s.parts.map((p) => p.percent), [38, 8, 54]);
  assert.ok(Math.abs(s.parts[0].share - 42 / 111) < 1e-12);
  const g = R.phoneHomeShare({ maker: null, maker_from: 'traffic', maker_flows: 1, tracking_flows: 1, other_flows: 1 });
  assert.strictEqual(g.maker, null);
  assert.strictEqual(g.guessed, true);
  assert.deepStrictEqual(g.parts.map((p) => p.percent), [34, 33, 33]);
  for (const bad of [null, undefined, {}, 'x', { maker_flows: -5, tracking_flows: 'x', other_flows: NaN }]) {
    const e = R.phoneHomeShare(bad);
    assert.strictEqual(e.total, 0);
    assert.deepStrictEqual(e.parts.map((p) => [p.flows, p.percent, p.share]), [[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
  }
});

test('percents: largest remainder, always 100 in total', () => {
  assert.deepStrictEqual(R.percents([1, 1, 1]), [34, 33, 33]);
  assert.deepStrictEqual(R.percents([0, 0]), [0, 0]);
  assert.deepStrictEqual(R.percents([5]), [100]);
  for (let i = 0; i < 200; i++) {
    const v = [i * 7 % 13, i % 5, i * 3 % 11, 1];
    assert.strictEqual(R.percents(v).reduce((a, b) => a + b), 100);
  }
});

test('timeTicks: round times inside the range, at most max, labelled per step', () => {
  const since = 1765144800, until = 1765148400; // Sun 7 Dec 2025 22:00..23:00 UTC
  const m = R.timeTicks(since, until, 60, 8);
  assert.ok(m.length >= 2 && m.length <= 8, JSON.stringify(m));
  assert.deepStrictEqual(m.map((t) => t.label), ['22:00', '22:10', '22:20', '22:30', '22:40', '22:50', '23:00']);
  for (const t of m) assert.ok(t.t >= since && t.t <= until && t.t % 600 === 0);
  const h = R.timeTicks(until - 86400, until, 3600, 8);
  assert.ok(h.length <= 8 && h.length >= 3);
  assert.strictEqual(h[0].label, 'Sun 00:00');
  assert.ok(h.every((t) => t.t % 3600 === 0 && /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d\d:00$/.test(t.label)));
  const d = R.timeTicks(until - 30 * 86400, until, 86400, 8);
  assert.ok(d.length <= 8 && d.length >= 3);
  assert.ok(d.every((t) => t.t % 86400 === 0 && /^\d{1,2} (Nov|Dec)$/.test(t.label)), JSON.stringify(d));
  // A year of minutes still gives a handful of ticks.
  assert.ok(R.timeTicks(since - 365 * 86400, since, 60, 9).length <= 9);
});

test('formatting: thousands separators, bytes, niceCeil, cut', () => {
  assert.strictEqual(R.fmtInt(1234567), '1,234,567');
  assert.strictEqual(R.fmtInt(999), '999');
  assert.strictEqual(R.fmtInt('x'), '0');
  assert.strictEqual(R.fmtBytes(0), '0 B');
  assert.strictEqual(R.fmtBytes(1500), '1.5 kB');
  assert.strictEqual(R.fmtBytes(8000000), '8.0 MB');
  assert.strictEqual(R.fmtBytes(253000), '253 kB');
  assert.deepStrictEqual([0, 1, 3, 7, 11, 250].map(R.niceCeil), [1, 1, 5, 10, 20, 500]);
  assert.strictEqual(R.cut('abc', 60), 'abc');
  const long = 'W'.repeat(5000);
  assert.strictEqual(R.cut(long, 60), 'W'.repeat(59) + '\u2026');
  assert.strictEqual(R.cut('\u202egnp.exe', 60), '\ufffdgnp.exe');
  assert.strictEqual(R.cut('\u{1F600}'.repeat(70), 60).length, 59 * 2 + 1); // not cut inside a surrogate pair
});

test('deviceKey: the MAC, else the first address', () => {
  assert.strictEqual(R.deviceKey({ mac: 'a6:1f:3c:52:9e:07', ips: ['1.2.3.4'] }), 'a6:1f:3c:52:9e:07');
  assert.strictEqual(R.deviceKey({ mac: '', ips: ['192.168.1.5', 'fd00::5'] }), '192.168.1.5');
  assert.strictEqual(R.deviceKey({}), '');
  assert.strictEqual(R.deviceKey(null), '');
});

test('the source uses no markup sinks, code from strings or network', () => {
  const src = fs.readFileSync(file, 'utf8');
  const banned = [/innerHTML/, /outerHTML/, /insertAdjacentHTML/, /document\.write/, /\beval\s*\(/, /new\s+Function/,
    /\bfetch\s*\(/, /XMLHttpRequest/, /WebSocket/, /EventSource/, /sendBeacon/, /\bimport\s*\(/, /setAttribute\(\s*['"](href|src|xlink:href)/,
    /\.(href|src)\s*=/, /@import/, /url\(\s*['"]?(https?:|\/\/)/];
  for (const re of banned) assert.ok(!re.test(src), 'render.js matches ' + re);
  const urls = src.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"]*/gi) || [];
  assert.deepStrictEqual([...new Set(urls)], ['http://www.w3.org/2000/svg'], 'URLs in render.js');
  assert.ok(/^'use strict';/.test(src), 'starts with use strict');
});

test('its style sheet is one constant, every selector under .phonehome', () => {
  // A stand-in document that keeps the style element and stops at the first SVG.
  const style = {};
  const doc = { getElementById: () => null, createElement: () => style, head: { appendChild: () => {} },
    createElementNS: () => { throw new Error('stop'); } };
  assert.throws(() => R.draw({ ownerDocument: doc, firstChild: null, classList: { add() {} } }, {}), /stop/);
  const css = style.textContent;
  assert.ok(css.length > 1000 && style.id === 'phonehome-style');
  const selectors = [];
  css.replace(/(^|[{}])([^{}@]+)\{/g, (m, pre, sel) => { selectors.push(...sel.split(',').map((x) => x.trim())); });
  assert.ok(selectors.length > 50);
  for (const sel of selectors) assert.ok(sel === '.phonehome' || sel.startsWith('.phonehome '), 'unscoped selector: ' + sel);
  assert.ok(!/url\(|@import|@font-face|expression/.test(css), 'no fetches or fonts from CSS');
});

console.log('ok: ' + n + ' render.js helper tests');
