'use strict';
'require view';
'require dom';
'require poll';
'require fs';
'require ui';

/*
 * Connections: the recent and active flows of `phonehome flows --json`
 * (FlowRow in docs/REPORT-DATA.md) with their verdict and the rule that
 * decided, refreshed every 5 seconds, for all devices or one.
 *
 * Every value from the router goes into the page as text: E() children
 * are always arrays (a bare string child would be parsed as HTML).
 */

// The CLI the phonehome package installs (openwrt-package/Makefile).
var PHONEHOME = '/usr/sbin/phonehome';

// `phonehome ARGS...` through cgi-io, stderr folded into the output: JSON
// when it worked, else the CLI's message.
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

// Verdict badge: the text and its colour.
function badge(flow) {
	var v = String(flow.verdict || ''),
	    text = v, color = '#5cb85c';

	if (v == 'block' || v == 'reject') {
		color = '#d9534f';
		if (flow.enforced === false) {
			// observe mode: counted, let through
			text = _('would %s').format(v);
			color = '#f0ad4e';
		}
	}
	else if (v == 'pending') {
		color = '#999';
	}

	return E('span', {
		'class': 'label',
		'style': 'color:#fff;background:%s;padding:0 .4em;border-radius:3px'.format(color)
	}, [ text ]);
}

return view.extend({
	load: function() {
		return L.resolveDefault(phonehome([ 'devices', '--json' ]), []);
	},

	// The flows of the selected device (all when none).
	fetchFlows: function() {
		var mac = this.deviceSelect.value;

		if (isMac(mac))
			return phonehome([ 'flows', '--json', '--device', mac ]);

		return phonehome([ 'flows', '--json' ]);
	},

	// A device key (a MAC, or an address when the MAC is not known) as
	// people read it: hostname, key, "(random MAC)".
	deviceName: function(key) {
		var dev = (this.devices || []).filter(function(d) {
			return d.mac == key || (Array.isArray(d.ips) && d.ips.indexOf(key) >= 0);
		})[0];

		var name = (dev && dev.hostname) ? '%s (%s)'.format(dev.hostname, key) : String(key);

		return isRandomMac(key) ? '%s %s'.format(name, _('(random MAC)')) : name;
	},

	renderRow: function(f) {
		var owner = String(f.owner || ''),
		    dst = String(f.dst || '');

		if (dst.indexOf(':') >= 0)
			dst = '[%s]'.format(dst);

		if (f.parent && f.parent != f.owner)
			owner = '%s (%s)'.format(owner, f.parent);

		return E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td' }, [ this.deviceName(f.device) ]),
			E('td', { 'class': 'td' }, [ '%s %s:%d'.format(f.proto, dst, f.dport) ]),
			E('td', { 'class': 'td' }, [ f.domain || f.query || '-' ]),
			E('td', { 'class': 'td' }, [ owner, E('br'), E('small', [ f.host ? _('hosted by %s').format(f.host) : '' ]) ]),
			E('td', { 'class': 'td' }, [ f.category || '-' ]),
			E('td', { 'class': 'td' }, [ f.country || '-' ]),
			E('td', { 'class': 'td' }, [ badge(f), ' ', f.active ? _('active') : '' ]),
			E('td', { 'class': 'td' }, [ f.rule || '-' ]),
			E('td', { 'class': 'td' }, [ '%1024.1mB / %1024.1mB'.format(f.bytes_up || 0, f.bytes_down || 0) ])
		]);
	},

	// Fetches the flows and replaces the table body; the newest first.
	refresh: function() {
		var self = this;

		return this.fetchFlows().then(function(flows) {
			flows = Array.isArray(flows) ? flows.slice() : [];
			flows.sort(function(a, b) { return (b.last_seen || 0) - (a.last_seen || 0); });

			self.status.style.display = 'none';
			dom.content(self.tbody, flows.length ? flows.map(L.bind(self.renderRow, self)) : [
				E('tr', { 'class': 'tr placeholder' }, [
					E('td', { 'class': 'td', 'colspan': '9' }, [ _('No connections yet.') ])
				])
			]);
		}).catch(function(err) {
			// Shown in the page, not as a notification: it comes back
			// every 5 seconds while the daemon is down.
			self.status.style.display = '';
			dom.content(self.status, [ _('phonehome flows failed: %s').format(err.message || String(err)) ]);
		});
	},

	render: function(devices) {
		this.devices = Array.isArray(devices) ? devices : [];

		var self = this;

		this.deviceSelect = E('select', { 'class': 'cbi-input-select', 'change': function() { self.refresh(); } },
			[ E('option', { 'value': '' }, [ _('All devices') ]) ].concat(this.devices.filter(function(d) {
				return isMac(d.mac);
			}).map(function(d) {
				return E('option', { 'value': d.mac }, [ self.deviceName(d.mac) ]);
			})));

		this.status = E('div', { 'class': 'alert-message warning', 'style': 'display:none' }, []);
		this.tbody = E('tbody', {}, []);

		var titles = [ _('Device'), _('Destination'), _('Name'), _('Owner'), _('Category'),
			_('Country'), _('Verdict'), _('Rule'), _('Up / down') ];

		poll.add(L.bind(this.refresh, this), 5);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', [ _('Phonehome: connections') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('Recent and active connections with the verdict of the policy and the rule that decided it; refreshed every 5 seconds.')
			]),
			E('div', { 'class': 'cbi-section' }, [
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ _('Device') ]),
					E('div', { 'class': 'cbi-value-field' }, [ this.deviceSelect ])
				]),
				this.status,
				E('table', { 'class': 'table' }, [
					E('thead', {}, [
						E('tr', { 'class': 'tr table-titles' }, titles.map(function(t) {
							return E('th', { 'class': 'th' }, [ t ]);
						}))
					]),
					this.tbody
				])
			])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
