#!/usr/bin/python3
"""Opens a phonehome report page in real headless Chromium and checks what a
person sees. Run with Debian's /usr/bin/python3 (python3-selenium, chromium,
chromium-driver; scripts/install-deps).

    check_report.py page REPORT.html EXPECT --shot OUT.png
        EXPECT: a JSON file, or a name under tests/browser/expect/ (e.g.
        "one-device"). Exit status 0 when every check passes, else 1 with
        the failures on stderr.
    check_report.py make-many OUT.json
        Writes the 500-owner, 50-device document (deterministic).
    check_report.py dev-html DOC.json OUT.html [--renderer render.js]
        Builds the page the way `phonehome report` does (for working on the
        renderer without the Rust side).

The checks of `page`, besides the expectations (see expect/README.md):
the page renders (body[data-rendered=1]) with no SEVERE console entry; no
element or attribute came from the data (only the tags the renderer makes,
no on* attributes, no extra script, window.__pwned stays undefined); nothing
is wider than the window; the x axis labels do not overlap; what each
section shows agrees with the embedded document (owner bars, device cards,
timeline points, decisions, diff groups); the renderer survives malformed
documents; the Block buttons call back with the device key and owner;
and it prints how long drawing the document again took (a figure to
read, never a pass/fail: timings go in benchmarks).
"""
import base64
import gzip
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RENDERER = os.path.join(ROOT, 'openwrt-package/luci-app-phonehome/htdocs/luci-static/resources/phonehome/render.js')

# Tags the renderer (and the page template) make; anything else came from data.
TAGS = set('''html head body meta title style script div span p h1 h2 h3 h4 header section article ul li b small
button table thead tbody tr th td svg defs pattern rect circle path line text g'''.split())

BOOTSTRAP = r"""(function () {
  var root = document.getElementById('phonehome');
  function fail(e) {
    root.textContent = 'The report could not be drawn: ' + (e && e.message ? e.message : String(e));
    document.body.dataset.rendered = 'error';
  }
  try {
    var b = atob(document.getElementById('phonehome-renderer').textContent.trim());
    var u = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);
    new Response(new Blob([u]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function (code) {
      var s = document.createElement('script');
      s.textContent = code;
      document.head.appendChild(s);
      PhonehomeRender.draw(root, JSON.parse(document.getElementById('phonehome-data').textContent));
      document.body.dataset.rendered = '1';
    }).catch(fail);
  } catch (e) { fail(e); }
}());"""


def dev_html(doc_text, renderer_bytes):
    """The page `phonehome report` writes (src/report/report.html's shape)."""
    data = doc_text.replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026')
    code = base64.b64encode(gzip.compress(renderer_bytes, 9, mtime=0)).decode()
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; script-src \'unsafe-inline\'; '
            'style-src \'unsafe-inline\'; img-src data:">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>phonehome report</title></head>\n'
            '<body><div id="phonehome" class="phonehome"><p>Opening the report\u2026</p></div>\n'
            '<script id="phonehome-data" type="application/json">' + data + '</script>\n'
            '<script id="phonehome-renderer" type="application/octet-stream">' + code + '</script>\n'
            '<script>' + BOOTSTRAP + '</script>\n</body></html>\n')


def make_many():
    """50 devices, 500 owners, a week of hourly buckets, 500 decisions."""
    rnd = random.Random(500)
    gen = 1765148400
    cats = ['advertising', 'analytics', 'telemetry', 'social', 'cdn', 'cloud', 'services', 'unknown']
    parents = ['Alphabet', 'Alibaba', 'Tencent', 'Amazon', 'Meta', 'ByteDance', None, None, None]
    countries = ['US', 'CN', 'SG', 'DE', 'IE', 'NL', 'JP', 'IN', 'HK', 'FR', 'GB', 'KR']
    owners = []
    for i in range(500):
        f = max(1, int(4000 / (i + 3) ** 1.1 * rnd.uniform(.7, 1.3)))
        cat = cats[rnd.randrange(len(cats))]
        b = f if cat in ('advertising', 'analytics') and rnd.random() < .5 else rnd.randrange(f // 4 + 1)
        o = {'owner': 'Owner %03d %s' % (i, rnd.choice(['Networks', 'Analytics', 'Cloud', 'Ads', 'Labs', 'Mobile'])),
             'category': cat, 'flows': f, 'blocked': b, 'bytes_up': f * 800, 'bytes_down': f * 9000,
             'domains': ['api%d.owner%03d.example' % (k, i) for k in range(rnd.randrange(1, 5))],
             'countries': [{'country': c, 'flows': f // 2 + 1} for c in rnd.sample(countries, 2)]}
        p = parents[rnd.randrange(len(parents))]
        if p:
            o['parent'] = p
        owners.append(o)
    owners.sort(key=lambda o: -o['flows'])
    devices, device_owners, phone_home = [], {}, {}
    for d in range(50):
        mac = '%02x:16:3e:%02x:%02x:%02x' % (rnd.choice([0x02, 0x00, 0xa6, 0x3c]), d, rnd.randrange(256), rnd.randrange(256))
        mine = sorted(rnd.sample(owners, 40), key=lambda o: -o['flows'])
        rows = [dict(o, flows=max(1, o['flows'] // 20), blocked=min(o['blocked'], max(1, o['flows'] // 20))) for o in mine]
        flows = sum(r['flows'] for r in rows)
        devices.append({'mac': mac, 'ips': ['192.168.1.%d' % (10 + d)], 'hostname': 'device-%02d' % d if d % 3 else None,
                        'flows': flows, 'blocked': sum(r['blocked'] for r in rows), 'bytes_up': flows * 700,
                        'bytes_down': flows * 8000, 'first_seen': gen - 7 * 86400, 'last_seen': gen - d * 60,
                        'countries': [{'country': c, 'flows': flows // (k + 2)} for k, c in enumerate(countries[:4])],
                        'new_owners': d % 7})
        device_owners[mac] = rows
        t = sum(r['flows'] for r in rows if r['category'] in ('advertising', 'analytics', 'telemetry'))
        phone_home[mac] = {'maker': rnd.choice(['Xiaomi', 'Samsung', None]), 'maker_from': rnd.choice(['config', 'traffic']),
                           'maker_flows': rows[0]['flows'], 'tracking_flows': t, 'other_flows': max(0, flows - t - rows[0]['flows'])}
    devices.sort(key=lambda d: -d['flows'])
    since = gen - 7 * 86400
    lines = []
    for i, o in enumerate(owners[:10] + [{'owner': '(other)'}]):
        pts = []
        for h in range(168):  # a daily rhythm: quiet nights, busy evenings
            f = int((30 - 2 * i) * max(0, math.sin((h % 24 - 6) * math.pi / 18)) * rnd.uniform(.6, 1.4))
            if f:
                pts.append([since + h * 3600, f, f if i in (1, 4) else 0, f * 1000])
        lines.append({'key': o['owner'], 'points': pts})
    flows = []
    for i in range(500):
        o, d = rnd.choice(owners[:60]), rnd.choice(devices)
        v = 'block' if rnd.random() < .2 else 'allow'
        flows.append({'device': d['mac'], 'proto': 'tcp', 'src': d['ips'][0], 'sport': 30000 + i, 'dst': '203.0.113.%d' % (i % 250),
                      'dport': 443, 'domain': o['domains'][0], 'name_source': 'sni', 'owner': o['owner'], 'parent': o.get('parent'),
                      'host': None, 'country': 'US', 'query': None, 'category': o['category'], 'verdict': v,
                      'rule': 'rule_%d' % (i % 9) if v == 'block' else None, 'enforced': True, 'active': False,
                      'bytes_up': 100, 'bytes_down': 1000, 'first_seen': since + i * 1200, 'last_seen': since + i * 1200 + 5})
    return {'format': 'phonehome-report/1', 'generated': gen, 'source': 'router', 'name': 'busy-household',
            'device': None, 'range': {'since': since, 'until': gen}, 'status': None, 'capture': None,
            'devices': devices, 'owners': owners, 'device_owners': device_owners, 'phone_home': phone_home,
            'series': {'by': 'owner', 'step': 3600, 'since': since, 'until': gen, 'lines': lines},
            'flows': flows, 'diff': None}


# Runs in the page: everything the checks need, in one round trip.
COLLECT = r"""
var WIDE = @@WIDE@@;
var root = document.getElementById('phonehome');
function rows(sel) {
  return Array.from(root.querySelectorAll(sel)).map(function (r) {
    return {owner: r.getAttribute('data-owner'), flows: Number(r.getAttribute('data-flows')),
            blocked: Number(r.getAttribute('data-blocked'))};
  });
}
var tags = {}, onattrs = [];
document.querySelectorAll('*').forEach(function (e) {
  var t = e.tagName.toLowerCase(); tags[t] = (tags[t] || 0) + 1;
  for (var i = 0; i < e.attributes.length; i++) if (/^on/i.test(e.attributes[i].name)) onattrs.push(t + ' ' + e.attributes[i].name);
});
var urls = Array.from(document.querySelectorAll('[href],[src],[xlink\\:href]')).map(function (e) { return e.tagName; });
var cards = Array.from(root.querySelectorAll('[data-section=device]')).map(function (c) {
  return [c.getAttribute('data-device'), rows2(c)];
});
function rows2(c) { return Array.from(c.querySelectorAll('.ph-row[data-owner]')).map(function (r) {
  return {owner: r.getAttribute('data-owner'), flows: Number(r.getAttribute('data-flows')), blocked: Number(r.getAttribute('data-blocked'))}; }); }
var axis = Array.from(root.querySelectorAll('[data-section=timeline] svg > text')).map(function (t) {
  var b = t.getBBox(); return [b.x, b.y, b.width, b.height, t.textContent]; });
var points = Array.from(root.querySelectorAll('[data-section=timeline] circle[data-t]')).map(function (c) {
  return [Number(c.getAttribute('data-t')), Number(c.getAttribute('data-flows'))]; });
var diff = Array.from(root.querySelectorAll('[data-change]')).map(function (r) {
  return [r.getAttribute('data-change'), r.getAttribute('data-owner')]; });
var titles = Array.from(root.querySelectorAll('[title]')).map(function (e) { return e.getAttribute('title'); })
  .concat(Array.from(root.querySelectorAll('title')).map(function (e) { return e.textContent; }));
var sections = Array.from(root.querySelectorAll('[data-section]')).map(function (e) { return e.getAttribute('data-section'); });
var wide = WIDE(root);
return JSON.stringify({text: document.body.innerText, tags: tags, onattrs: onattrs, urls: urls, pwned: typeof window.__pwned,
  owners: rows('[data-section=owners] > .ph-row[data-owner]'), cards: cards, axis: axis, points: points, diff: diff,
  titles: titles, sections: sections, wide: wide, buttons: root.querySelectorAll('button').length,
  scripts: document.scripts.length, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  flowRows: root.querySelectorAll('[data-section=recent] tbody tr').length,
  blockedRows: root.querySelectorAll('[data-section=blocked] tbody tr').length,
  blockedVerdicts: Array.from(root.querySelectorAll('[data-section=blocked] tbody tr')).map(function (r) { return r.getAttribute('data-verdict'); }),
  randomised: (document.body.innerText.match(/randomised MAC/g) || []).length});
"""

# Elements that stick out of the window where a person sees them: not
# clipped by an ancestor that hides its overflow (a cut name's ellipsis).
WIDE = r"""function (root) {
  var w = document.documentElement.clientWidth;
  return Array.from(root.querySelectorAll('*')).filter(function (e) {
    var r = e.getBoundingClientRect();
    if (!(r.width > 0 && r.right > w + 1)) return false;
    for (var a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= w + 1) return false;
    }
    return true;
  }).slice(0, 5).map(function (e) { return e.tagName + '.' + (e.getAttribute('class') || '') + ' ' + Math.round(e.getBoundingClientRect().right); });
}"""

# Runs in the page: what sticks out of the window.
NARROW = r"""
var WIDE = @@WIDE@@;
var wide = WIDE(document.getElementById('phonehome'));
return JSON.stringify({wide: wide, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth});
"""

# Runs in the page: malformed documents, the Block buttons, the drawing time.
EXERCISE = r"""
var out = {errors: [], clicks: [], buttons: 0, ms: 0};
var scratch = document.createElement('div');
document.body.appendChild(scratch);
var bad = [{}, null, [], 'x', 5, {devices: 'x', owners: {}, flows: 7, series: [], diff: 'x'},
  {devices: [null, 1, 'x', {mac: 5, ips: 'x', flows: 'many'}, {mac: '', ips: []}], owners: [null, {flows: 'x', countries: 'x', domains: [null, 5]}],
   device_owners: [], phone_home: null, series: {step: 0, since: 'x', lines: [null, {points: [null, [1, 'a'], 'x', [NaN]]}, {key: 5, points: 'x'}]},
   flows: [null, 3, {verdict: 5, first_seen: -1}], diff: {changes: [null, {}, {change: 'grew', flows_before: -5}]}, status: {}, capture: {}},
  {series: {step: 60, since: 0, until: 1e12, lines: [{key: 'a', points: [[0, 1], [1e12, 1]]}]}},
  {generated: 1e300, range: {since: -5, until: 'x'}, series: {step: 60, since: 0, until: 1e300, lines: [{key: 'a', points: [[0, 1], [1.7e308, 1], [-1e308, 1]]}]}},
  {devices: [{mac: '__proto__'}], device_owners: {'__proto__': [{owner: 'x', flows: 1}]}, phone_home: {'__proto__': {maker_flows: 1}}}];
bad.forEach(function (d, i) {
  try { PhonehomeRender.draw(scratch, d); } catch (e) { out.errors.push(i + ': ' + e); }
  if (scratch.querySelector('.ph-err')) out.errors.push(i + ': ' + scratch.querySelector('.ph-err').textContent);
});
var doc = JSON.parse(document.getElementById('phonehome-data').textContent);
PhonehomeRender.draw(scratch, doc, {onBlock: function (k, o) { out.clicks.push([k, o]); }});
out.buttons = scratch.querySelectorAll('button').length;
var b = scratch.querySelector('[data-section=device] .ph-row button');
if (b) b.click();
var t0 = performance.now();
for (var n = 0; n < 3; n++) PhonehomeRender.draw(scratch, doc);
out.ms = (performance.now() - t0) / 3;
scratch.remove();
return out;
"""


COLLECT = COLLECT.replace('@@WIDE@@', WIDE)
NARROW = NARROW.replace('@@WIDE@@', WIDE)


def fail_missing(what):
    sys.exit('check_report.py: %s is missing: run scripts/install-deps (chromium, chromium-driver, python3-selenium)' % what)


def browser(user_dir):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        fail_missing('python3-selenium')
    for p in ('/usr/bin/chromium', '/usr/bin/chromedriver'):
        if not os.path.exists(p):
            fail_missing(p)
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
              '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--user-data-dir=' + user_dir, '--window-size=1280,2000'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)


def embedded_document(html):
    """The report document as the page embeds it."""
    with open(html, encoding='utf-8') as f:
        page = f.read()
    start = page.index('>', page.index('id="phonehome-data"')) + 1
    return json.loads(page[start:page.index('</script>', start)])


def load_expect(arg):
    path = arg if os.path.exists(arg) else os.path.join(HERE, 'expect', arg + '.json')
    with open(path) as f:
        return json.load(f)


def check_page(html, expect, shot):
    problems = []
    user_dir = tempfile.mkdtemp(prefix='phonehome-chromium-')
    drv = browser(user_dir)
    try:
        drv.set_window_size(1280, 2000)
        drv.get('file://' + os.path.abspath(html))
        state, deadline = None, time.time() + 30
        while time.time() < deadline:
            state = drv.execute_script('return document.body && document.body.dataset.rendered')
            if state in ('1', 'error'):
                break
            time.sleep(0.1)
        if state != '1':
            text = drv.execute_script('return document.body ? document.body.innerText : ""')
            logs = drv.get_log('browser')
            return ['not rendered (%s): %s; console: %s' % (state, text[:2000], logs)]
        time.sleep(0.5)  # an injected onerror/onload would have run by now
        got = json.loads(drv.execute_script(COLLECT))
        got['doc'] = embedded_document(html)
        got['cards'] = dict(got['cards'])
        diff = {}
        for change, owner in got['diff']:
            diff.setdefault(change, []).append(owner)
        got['diff'] = diff
        ex = drv.execute_script(EXERCISE)
        problems += check(got, ex, expect)
        print('%s: drawn again in %.0f ms' % (os.path.basename(html), ex['ms']))
        height = min(8000, drv.execute_script('return document.body.scrollHeight') + 40)
        drv.set_window_size(1280, height)
        time.sleep(0.3)
        if shot:
            os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
            drv.save_screenshot(shot)
        # A phone-sized or LuCI-pane-sized window: still nothing wider than it.
        drv.set_window_size(700, 2000)
        time.sleep(0.3)
        narrow = json.loads(drv.execute_script(NARROW))
        if narrow['scrollWidth'] > narrow['innerWidth'] + 1 or narrow['wide']:
            problems.append('wider than a 700 px window (%s > %s): %s' % (narrow['scrollWidth'], narrow['innerWidth'], narrow['wide']))
        severe = [e for e in drv.get_log('browser') if e.get('level') == 'SEVERE']
        problems += ['console: %s' % e.get('message') for e in severe]
    finally:
        drv.quit()
        shutil.rmtree(user_dir, ignore_errors=True)
    return problems


def check(got, ex, expect):
    p = []
    doc, text = got['doc'] if isinstance(got['doc'], dict) else {}, got['text']

    def need(cond, msg):
        if not cond:
            p.append(msg)

    # Nothing from the data became markup.
    need(got['pwned'] == 'undefined', 'window.__pwned was set: data ran as code')
    extra = sorted(set(got['tags']) - TAGS)
    need(not extra, 'elements the renderer does not make (from data?): %s' % extra)
    need(not got['onattrs'], 'event handler attributes: %s' % got['onattrs'][:5])
    need(not got['urls'], 'elements with href/src: %s' % got['urls'][:5])
    need(got['scripts'] <= 4, '%d script elements (4 expected)' % got['scripts'])
    # Layout: nothing wider than the window, axis labels apart.
    need(got['scrollWidth'] <= got['innerWidth'] + 1 and not got['wide'],
         'wider than the window (%s > %s): %s' % (got['scrollWidth'], got['innerWidth'], got['wide']))
    ax = sorted([a for a in got['axis'] if a[1] > 200], key=lambda a: a[0])  # the x labels (bottom row)
    for a, b in zip(ax, ax[1:]):
        need(a[0] + a[2] <= b[0] + 0.5, 'x axis labels overlap: %r %r' % (a[4], b[4]))
    # The renderer survives malformed documents; Block buttons call back; speed.
    need(not ex['errors'], 'malformed documents: %s' % ex['errors'])
    need(got['buttons'] == 0, 'Block buttons without onBlock: %d' % got['buttons'])
    devices = [d for d in doc.get('devices') or [] if isinstance(d, dict)][:50]

    def key(d):
        return d.get('mac') or (d.get('ips') or [''])[0]
    want_buttons = sum(min(15, len((doc.get('device_owners') or {}).get(key(d)) or [])) for d in devices)
    need(ex['buttons'] == want_buttons, 'Block buttons with onBlock: %d, want %d' % (ex['buttons'], want_buttons))
    if want_buttons:
        first = devices[[i for i, d in enumerate(devices) if (doc.get('device_owners') or {}).get(key(d))][0]]
        top = max(doc['device_owners'][key(first)], key=lambda o: o.get('flows', 0))
        need(ex['clicks'] == [[key(first), top['owner']]], 'Block click called back %r, want %r' % (ex['clicks'], [key(first), top['owner']]))

    # What each section shows agrees with the document.
    owners = {o.get('owner'): o for o in doc.get('owners') or []}
    need(len(got['owners']) == min(20, len(owners)), 'owner bars: %d, want %d' % (len(got['owners']), min(20, len(owners))))
    for r in got['owners']:
        o = owners.get(r['owner'])
        need(o is not None and (r['flows'], r['blocked']) == (o['flows'], o['blocked']), 'owner bar %r: %r vs %r' % (r['owner'][:80], r, o and (o['flows'], o['blocked'])))
    need(len(got['cards']) == len(devices), 'device cards: %d, want %d' % (len(got['cards']), len(devices)))
    lines = ((doc.get('series') or {}).get('lines') or [])[:11]
    pts = {}
    for ln in lines:
        for t, f in [(q[0], q[1]) for q in ln['points']]:
            pts[(ln['key'], t)] = pts.get((ln['key'], t), 0) + f
    need(len(got['points']) == len(pts), 'timeline points: %d, want %d' % (len(got['points']), len(pts)))
    need(sum(f for _, f in got['points']) == sum(pts.values()), 'timeline flows: %d, want %d' % (sum(f for _, f in got['points']), sum(pts.values())))
    flows = [f for f in doc.get('flows') or [] if isinstance(f, dict)]
    nblocked = len([f for f in flows if f.get('verdict') in ('block', 'reject')])
    need(got['flowRows'] == min(50, len(flows)), 'recent decisions: %d, want %d' % (got['flowRows'], min(50, len(flows))))
    need(got['blockedRows'] == min(25, nblocked), 'blocked decisions: %d, want %d' % (got['blockedRows'], min(25, nblocked)))
    need(all(v in ('block', 'reject') for v in got['blockedVerdicts']), 'an allowed decision among the blocked')
    if doc.get('diff'):
        for g in ('appeared', 'vanished', 'grew', 'shrank'):
            want = [c['owner'] for c in doc['diff'].get('changes') or [] if c.get('change') == g]
            need(sorted(got['diff'].get(g, [])) == sorted(want)[:30] or len(want) > 30, 'diff %s: %r, want %r' % (g, got['diff'].get(g), want))

    # The expectations file: what a person should see.
    low = text.lower()  # headings may be shown in capitals
    for s in expect.get('text', []):
        need(s.lower() in low, 'not visible: %r' % s)
    for s in expect.get('absent_text', []):
        need(s.lower() not in low, 'visible but should not be: %r' % s)
    for s in expect.get('titles', []):
        need(s in got['titles'], 'no element has the full text as its title: %r' % s[:80])
    for s in expect.get('sections', []):
        need(s in got['sections'], 'no section %r' % s)
    for name, (f, b) in expect.get('owners', {}).items():
        rows = [r for r in got['owners'] if r['owner'] == name]
        need(rows and (rows[0]['flows'], rows[0]['blocked']) == (f, b), 'owner %r: %r, want %r' % (name, rows, (f, b)))
    for dev, want in expect.get('device_owners', {}).items():
        rows = {r['owner']: (r['flows'], r['blocked']) for r in got['cards'].get(dev, [])}
        for name, (f, b) in want.items():
            need(rows.get(name) == (f, b), 'device %s owner %r: %r, want %r' % (dev, name, rows.get(name), (f, b)))
    for k, g in (('devices', lambda: len(got['cards'])), ('timeline_points', lambda: len(got['points'])),
                 ('randomised_mac', lambda: got['randomised']), ('recent_rows', lambda: got['flowRows']),
                 ('blocked_rows', lambda: got['blockedRows'])):
        if k in expect:
            need(g() == expect[k], '%s: %r, want %r' % (k, g(), expect[k]))
    for g, want in expect.get('diff', {}).items():
        need(sorted(got['diff'].get(g, [])) == sorted(want), 'diff %s: %r, want %r' % (g, got['diff'].get(g), want))
    return p


def main(argv):
    if len(argv) >= 2 and argv[0] == 'make-many':
        with open(argv[1], 'w') as f:
            json.dump(make_many(), f)
        return 0
    if len(argv) >= 3 and argv[0] == 'dev-html':
        renderer = argv[argv.index('--renderer') + 1] if '--renderer' in argv else RENDERER
        with open(argv[1]) as f, open(renderer, 'rb') as r:
            page = dev_html(f.read(), r.read())
        with open(argv[2], 'w') as f:
            f.write(page)
        return 0
    if len(argv) >= 3 and argv[0] == 'page':
        shot = argv[argv.index('--shot') + 1] if '--shot' in argv else None
        problems = check_page(argv[1], load_expect(argv[2]), shot)
        for x in problems:
            print('FAIL %s: %s' % (os.path.basename(argv[1]), x), file=sys.stderr)
        if not problems:
            print('ok %s%s' % (argv[1], ' (screenshot %s)' % shot if shot else ''))
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
