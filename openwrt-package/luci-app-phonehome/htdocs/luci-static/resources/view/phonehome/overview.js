'use strict';
'require view';
'require dom';
'require fs';
'require ui';
'require uci';

/*
 * Overview: the report document of `phonehome report --json`
 * (docs/REPORT-DATA.md) drawn by the renderer the HTML report uses
 * (phonehome/render.js, a plain script defining window.PhonehomeRender).
 * Users with write access get a "block" action per device and owner,
 * which adds a `config rule` and applies it (the init script's reload
 * trigger reloads the daemon).
 *
 * Every value from the router goes into the page as text: E() children
 * are always arrays (a bare string child would be parsed as HTML).
 */

// The CLI the phonehome package installs (openwrt-package/Makefile).
var PHONEHOME = '/usr/sbin/phonehome';

// The ranges offered; the ACL (acl.d/luci-app-phonehome.json) grants
// exactly these `--since` values.
var RANGES = [ '1h', '24h', '7d' ];

var isReadonlyView = !L.hasViewPermission() || null;

// `phonehome ARGS...` through cgi-io (no ubus message size limit, and the
// whole command line is checked against the ACL, unlike rpcd's file.exec),
// stderr folded into the output: JSON when it worked, else the CLI's
// message.
function phonehome(args) {
	return fs.exec_direct(PHONEHOME, args, 'text', false, true).then(function(out) {
		try {
			return JSON.parse(out);
		}
		catch (e) {
			// (cgi-io versions without the stderr option drop the message)
			throw new Error(String(out || '').trim() ||
				_('no answer from "phonehome %s": is the phonehome service running?').format(args.join(' ')));
		}
	});
}

function isMac(s) {
	return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(String(s || ''));
}

// Locally administered (second-lowest bit of the first octet): a phone's
// randomised "private address".
function isRandomMac(mac) {
	return isMac(mac) && (parseInt(mac.substr(0, 2), 16) & 2) != 0;
}

// A UCI section name ([A-Za-z0-9_]) for the rule blocking OWNER for MAC:
// block_Xiaomi_020000007702. An owner name with other characters gets a
// hash of its own, so that two owners never share a name.
function ruleName(owner, mac) {
	var o = String(owner),
	    s = o.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').substr(0, 40);

	if (s != o) {
		var h = 5381;
		for (var i = 0; i < o.length; i++)
			h = ((h * 33) ^ o.charCodeAt(i)) >>> 0;
		s = (s ? s + '_' : '') + ('0000000' + h.toString(16)).slice(-8);
	}

	return 'block_%s_%s'.format(s, mac.replace(/:/g, ''));
}

// The renderer, loaded once per page.
var renderer = null;
function loadRenderer() {
	if (window.PhonehomeRender)
		return Promise.resolve(window.PhonehomeRender);

	if (renderer == null) {
		renderer = new Promise(function(resolveFn, rejectFn) {
			var src = L.resource('phonehome/render.js');

			if (L.env.resource_version)
				src += '?v=' + L.env.resource_version;

			document.querySelector('head').appendChild(E('script', {
				'src': src,
				'load': function() {
					if (window.PhonehomeRender)
						resolveFn(window.PhonehomeRender);
					else
						rejectFn(new Error(_('%s does not define PhonehomeRender').format(src)));
				},
				'error': function() {
					renderer = null;
					rejectFn(new Error(_('Cannot load %s').format(src)));
				}
			}));
		});
	}

	return renderer;
}

function notifyError(what, err) {
	ui.addNotification(null, E('p', [ '%s: %s'.format(what, err.message || String(err)) ]), 'error');
}

return view.extend({
	load: function() {
		return Promise.all([
			// A renderer that fails to load is shown as the error it is.
			loadRenderer().catch(function(err) { return err; }),
			// Device names for the selector; the page works without them.
			L.resolveDefault(phonehome([ 'devices', '--json' ]), []),
			uci.load('phonehome')
		]);
	},

	// The report for the chosen range and device.
	fetchReport: function(range, mac) {
		if (RANGES.indexOf(range) < 0)
			range = '24h';

		if (isMac(mac))
			return phonehome([ 'report', '--json', '--since', range, '--device', mac ]);

		return phonehome([ 'report', '--json', '--since', range ]);
	},

	deviceLabel: function(mac) {
		var dev = (this.devices || []).filter(function(d) { return d.mac == mac; })[0],
		    name = null;

		uci.sections('phonehome', 'device', function(s) {
			if (String(s.mac || '').toLowerCase() == mac && s.name)
				name = s.name;
		});

		name = name || (dev && dev.hostname) || mac;

		if (name != mac)
			name = '%s (%s)'.format(name, mac);

		return isRandomMac(mac) ? '%s %s'.format(name, _('(random MAC)')) : name;
	},

	// Adds (locally) the rule blocking OWNER for MAC, first among the rules
	// so that it decides before them; returns its section name, or null
	// when it exists already.
	addBlockRule: function(mac, owner) {
		var name = ruleName(owner, mac),
		    rules = uci.sections('phonehome', 'rule');

		if (uci.get('phonehome', name) != null)
			return null;

		uci.add('phonehome', 'rule', name);
		uci.set('phonehome', name, 'device', mac);
		uci.set('phonehome', name, 'owner', [ owner ]);
		uci.set('phonehome', name, 'action', 'block');

		if (rules.length)
			uci.move('phonehome', name, rules[0]['.name']);

		return name;
	},

	handleBlockConfirm: function(mac, owner, ev) {
		var name = this.addBlockRule(mac, owner);

		if (name == null) {
			ui.hideModal();
			ui.addNotification(null, E('p', [
				_('The rule %s exists already: see Settings.').format(ruleName(owner, mac))
			]), 'info');
			return Promise.resolve();
		}

		return uci.save().then(function() {
			ui.hideModal();
			// Commit with rollback protection; procd's reload trigger of
			// the phonehome service then reloads the daemon.
			ui.changes.apply(true);
		}).catch(function(err) {
			ui.hideModal();
			notifyError(_('Could not save the rule'), err);
		});
	},

	// The renderer's block action: DEVICE is the device key (a MAC when
	// known), OWNER the owner name. Also takes one {device, owner} object.
	handleBlock: function(device, owner) {
		if (L.isObject(device)) {
			owner = device.owner;
			device = device.device;
		}

		var mac = String(device || '').toLowerCase();

		if (!isMac(mac) || !owner) {
			ui.addNotification(null, E('p', [
				_('Only a device known by its MAC address can get a rule (%s).').format(String(device))
			]), 'warning');
			return;
		}

		ui.showModal(_('Block an owner'), [
			E('p', [ _('Block every connection of %s to %s?').format(this.deviceLabel(mac), owner) ]),
			E('p', [ _('This adds the rule %s (device %s, owner %s, action block) before the other rules and applies the configuration; phonehome reloads it.')
				.format(ruleName(owner, mac), mac, owner) ]),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'btn', 'click': ui.hideModal }, [ _('Cancel') ]),
				' ',
				E('button', {
					'class': 'btn cbi-button-negative important',
					'click': ui.createHandlerFn(this, 'handleBlockConfirm', mac, owner)
				}, [ _('Block') ])
			])
		]);
	},

	// Fetches and draws the report of the selected range and device.
	refresh: function() {
		var range = this.rangeSelect.value,
		    mac = this.deviceSelect.value,
		    container = this.container,
		    opts = {};

		if (!isReadonlyView)
			opts.onBlock = L.bind(this.handleBlock, this);

		dom.content(container, [ E('p', { 'class': 'spinning' }, [ _('Loading the report…') ]) ]);

		return this.fetchReport(range, mac).then(function(doc) {
			dom.content(container, []);
			window.PhonehomeRender.draw(container, doc, opts);
		}).catch(function(err) {
			dom.content(container, [ E('p', { 'class': 'alert-message warning' }, [ err.message || String(err) ]) ]);
			notifyError(_('phonehome report failed'), err);
		});
	},

	render: function(data) {
		if (data[0] instanceof Error)
			return E('div', { 'class': 'alert-message warning' }, [ data[0].message ]);

		this.devices = Array.isArray(data[1]) ? data[1] : [];

		var self = this,
		    macs = this.devices.map(function(d) { return String(d.mac || '').toLowerCase(); }).filter(isMac);

		this.rangeSelect = E('select', { 'class': 'cbi-input-select', 'change': function() { self.refresh(); } },
			RANGES.map(function(r) {
				return E('option', { 'value': r, 'selected': (r == '24h') ? '' : null }, [
					{ '1h': _('Last hour'), '24h': _('Last 24 hours'), '7d': _('Last 7 days') }[r]
				]);
			}));

		this.deviceSelect = E('select', { 'class': 'cbi-input-select', 'change': function() { self.refresh(); } },
			[ E('option', { 'value': '' }, [ _('All devices') ]) ].concat(macs.map(function(mac) {
				return E('option', { 'value': mac }, [ self.deviceLabel(mac) ]);
			})));

		this.container = E('div', { 'class': 'phonehome-report' }, []);

		var page = E('div', { 'class': 'cbi-map' }, [
			E('h2', [ _('Phonehome: who your devices talk to') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('The companies (owners) each device connected to, what was blocked, and how much of it went to the phone maker or to trackers.')
			]),
			E('div', { 'class': 'cbi-section' }, [
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ _('Range') ]),
					E('div', { 'class': 'cbi-value-field' }, [ this.rangeSelect ])
				]),
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ _('Device') ]),
					E('div', { 'class': 'cbi-value-field' }, [ this.deviceSelect ])
				])
			]),
			this.container
		]);

		this.refresh();

		return page;
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
