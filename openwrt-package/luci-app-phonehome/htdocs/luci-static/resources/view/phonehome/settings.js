'use strict';
'require view';
'require form';
'require uci';

/*
 * Settings: /etc/config/phonehome, every option the daemon reads
 * (src/policy/config_sections.rs), each checked here as the daemon checks
 * it. "Save & Apply" commits the config; procd's reload trigger
 * (service_triggers in /etc/init.d/phonehome) then reloads the daemon,
 * which refuses a file with an error and keeps its running policy (the
 * reason is in the system log).
 *
 * tests/luci_app.rs feeds every option name and offered value below to
 * the daemon's config parser.
 */

var CATEGORIES = [ 'advertising', 'analytics', 'telemetry', 'social', 'cdn', 'cloud', 'services', 'unknown' ];
var WEEKDAYS = [ 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun' ];

// HH:MM or HH:MM:SS (fw4's start_time/stop_time).
function validateClock(section_id, value) {
	if (value == null || value == '')
		return true;

	var m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(value);

	if (!m || +m[1] > 23 || +m[2] > 59 || (m[3] != null && +m[3] > 59))
		return _('Expecting a time of day as HH:MM');

	return true;
}

// A two-letter ISO 3166-1 country code.
function validateCountry(section_id, value) {
	if (value == null || value == '')
		return true;

	if (!/^[A-Za-z]{2}$/.test(value))
		return _('Expecting a two-letter country code (ISO 3166-1), e.g. CN');

	if (/^uk$/i.test(value))
		return _('The United Kingdom is GB');

	if (/^el$/i.test(value))
		return _('Greece is GR');

	return true;
}

// An AS number, with or without "AS".
function validateAsn(section_id, value) {
	if (value == null || value == '')
		return true;

	var m = /^(?:AS|as)?(\d{1,10})$/.exec(value);

	if (!m || +m[1] > 4294967295)
		return _('Expecting an AS number, e.g. AS45102');

	return true;
}

// A domain as rules take it: no URL (the daemon refuses those too).
function validateDomain(section_id, value) {
	if (value == null || value == '')
		return true;

	if (/[\/@\s]/.test(value))
		return _('Expecting a domain such as miui.com, not a URL');

	return true;
}

// An absolute path.
function validatePath(section_id, value) {
	if (value == null || value == '' || /^\/\S*$/.test(value))
		return true;

	return _('Expecting an absolute path');
}

return view.extend({
	load: function() {
		return uci.load('phonehome');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('phonehome', _('Phonehome: settings'),
			_('The daemon re-reads this configuration when it is applied. A configuration with an error is refused and the running policy stays; the system log says why.'));

		/* config phonehome 'main' */
		s = m.section(form.NamedSection, 'main', 'phonehome', _('Service'));
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('enforcement', _('Enforcement'));
		s.tab('storage', _('Statistics and files'));
		s.tab('export', _('Export and access'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;

		o = s.taboption('general', form.ListValue, 'mode', _('Mode'),
			_('Observe counts what rules would block and lets everything through.'));
		o.value('enforce', _('Enforce'));
		o.value('observe', _('Observe'));
		o.default = 'enforce';

		o = s.taboption('general', form.ListValue, 'default', _('Default verdict'),
			_('For a device when no rule matches and neither it nor a group of it sets one.'));
		o.value('allow', _('Allow'));
		o.value('block', _('Block'));
		o.value('reject', _('Reject'));
		o.default = 'allow';

		o = s.taboption('general', form.Value, 'queue', _('NFQUEUE number'),
			_('Changing it regenerates the firewall include and restarts the service.'));
		o.datatype = 'and(uinteger,max(65535))';
		o.placeholder = '0';

		o = s.taboption('general', form.Flag, 'fail_closed', _('Fail closed'),
			_('Drop undecided traffic while the daemon is not running (else it passes).'));
		o.default = '0';
		o.rmempty = false;

		o = s.taboption('enforcement', form.ListValue, 'sinkhole', _('Blocked names in DNS answers'));
		o.value('zero', _('Answer 0.0.0.0 / ::'));
		o.value('nxdomain', _('Answer NXDOMAIN'));
		o.value('off', _('Leave the answer'));
		o.default = 'zero';

		o = s.taboption('enforcement', form.Flag, 'block_dot', _('Refuse DNS over TLS'),
			_('Port 853: apps fall back to plain DNS, whose names phonehome reads.'));
		o.default = '0';
		o.rmempty = false;

		o = s.taboption('enforcement', form.Flag, 'block_doh', _('Refuse DNS over HTTPS'),
			_('The well-known DNS-over-HTTPS servers, by name.'));
		o.default = '0';
		o.rmempty = false;

		o = s.taboption('enforcement', form.Flag, 'block_quic', _('Refuse QUIC'),
			_('UDP 443: apps fall back to TCP and TLS, whose server name phonehome reads.'));
		o.default = '0';
		o.rmempty = false;

		o = s.taboption('enforcement', form.Value, 'decide_by', _('Decide by packet'),
			_('A connection still without a name is decided at this queued packet (1 to 16).'));
		o.datatype = 'and(uinteger,range(1,16))';
		o.placeholder = '16';

		o = s.taboption('enforcement', form.ListValue, 'undecided', _('Undecided connections'),
			_('What a connection decided without a name gets when no rule decides it.'));
		o.value('allow', _('Allow'));
		o.value('block', _('Block'));
		o.value('reject', _('Reject'));
		o.default = 'allow';

		o = s.taboption('enforcement', form.Value, 'max_pending', _('Pending data (KiB)'),
			_('What all connections waiting for a name may hold together (64 to 1048576 KiB).'));
		o.datatype = 'and(uinteger,range(64,1048576))';
		o.placeholder = '4096';

		o = s.taboption('enforcement', form.Value, 'copy_range', _('Bytes copied per packet'),
			_('128 to 65535.'));
		o.datatype = 'and(uinteger,range(128,65535))';
		o.placeholder = '65535';

		o = s.taboption('storage', form.Value, 'max_flows', _('Connections tracked'),
			_('At most 10000000; below 64 counts as 64.'));
		o.datatype = 'and(uinteger,max(10000000))';
		o.placeholder = '16384';

		o = s.taboption('storage', form.Value, 'dns_cache_size', _('DNS answers remembered'));
		o.datatype = 'and(uinteger,max(10000000))';
		o.placeholder = '8192';

		o = s.taboption('storage', form.Value, 'state', _('Statistics on flash'),
			_('Written at most every interval below and at stop; empty: statistics are not kept across reboots.'));
		o.datatype = 'file';
		o.validate = validatePath;
		o.placeholder = '/etc/phonehome/state';

		o = s.taboption('storage', form.Value, 'state_tmp', _('Statistics in RAM'),
			_('Written every minute; kept across daemon restarts.'));
		o.datatype = 'file';
		o.validate = validatePath;
		o.placeholder = '/tmp/phonehome/state';

		o = s.taboption('storage', form.Value, 'state_interval', _('Flash write interval (minutes)'),
			_('1 to 1440.'));
		o.datatype = 'and(uinteger,range(1,1440))';
		o.placeholder = '60';

		o = s.taboption('storage', form.Value, 'db', _('Owner database'),
			_('The compiled owner database; changing it restarts the service.'));
		o.datatype = 'file';
		o.validate = validatePath;
		o.placeholder = '/usr/share/phonehome/owners.db';

		o = s.taboption('storage', form.Value, 'leases', _('DHCP leases'),
			_('Where device hostnames come from.'));
		o.datatype = 'file';
		o.validate = validatePath;
		o.placeholder = '/tmp/dhcp.leases';

		o = s.taboption('storage', form.Value, 'socket', _('Socket'),
			_('These pages reach the daemon at the command line\'s default socket, /var/run/phonehome.sock, which the service links to /var/run/phonehome/phonehome.sock: with another path they cannot.'));
		o.datatype = 'file';
		o.validate = validatePath;
		o.placeholder = '/var/run/phonehome/phonehome.sock';

		o = s.taboption('export', form.Value, 'ipfix_collector', _('IPFIX collector'),
			_('ADDRESS:PORT that finished connections are sent to, e.g. 192.0.2.9:4739 or [2001:db8::9]:4739.'));
		o.datatype = 'ipaddrport(1)';

		o = s.taboption('export', form.Value, 'ipfix_domain', _('IPFIX observation domain'));
		o.datatype = 'and(uinteger,max(4294967295))';
		o.placeholder = '1';

		o = s.taboption('export', form.Value, 'socket_group', _('Reader group'),
			_('A system group whose members may read the statistics over the socket.'));

		o = s.taboption('export', form.Value, 'admin_group', _('Admin group'),
			_('A system group whose members may also reload the policy over the socket.'));

		o = s.taboption('export', form.Value, 'on_new_owner', _('New-owner hook'),
			_('A program run as root (in the daemon\'s jail) when a device reaches an owner for the first time, with DEVICE OWNER CATEGORY [DOMAIN] as arguments (the domain is what the phone sent: never pass it to a shell). Changing it restarts the service.'));
		o.datatype = 'file';
		o.validate = validatePath;

		/* config device */
		s = m.section(form.GridSection, 'device', _('Devices'),
			_('Name devices and put them in groups. A phone with "private address" on has a MAC per network: read it from the Connections page.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.Value, 'mac', _('MAC address'));
		o.datatype = 'macaddr';
		o.rmempty = false;

		o = s.option(form.Value, 'name', _('Name'),
			_('How rules and pages name the device.'));

		o = s.option(form.DynamicList, 'group', _('Groups'));

		o = s.option(form.Value, 'maker', _('Maker'),
			_('Who made it, as an owner name (e.g. Xiaomi): the report counts what the device sends its maker apart from the rest.'));

		o = s.option(form.ListValue, 'default', _('Default verdict'),
			_('When no rule matches (else its groups\' default, else the service\'s).'));
		o.value('', _('(inherited)'));
		o.value('allow', _('Allow'));
		o.value('block', _('Block'));
		o.value('reject', _('Reject'));

		/* config group 'NAME' */
		s = m.section(form.GridSection, 'group', _('Groups'),
			_('A group named here can set the default verdict of its devices: with "block", its devices reach only what rules allow.'));
		s.anonymous = false;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.ListValue, 'default', _('Default verdict'));
		o.value('', _('(inherited)'));
		o.value('allow', _('Allow'));
		o.value('block', _('Block'));
		o.value('reject', _('Reject'));

		/* config rule 'NAME' */
		s = m.section(form.GridSection, 'rule', _('Rules'),
			_('The first matching rule with allow, block or reject decides (log records and goes on); drag to reorder. A rule matches when each criterion it has matches; the section name is the rule name the Connections page shows.'));
		s.anonymous = false;
		s.addremove = true;
		s.sortable = true;
		s.nodescriptions = true;

		// Device names, groups and MACs known to the config, as suggestions
		// (LuCI shows a choice's label as HTML: only plain names are offered).
		var devices = {};
		uci.sections('phonehome', 'device', function(d) {
			if (d.name) devices[d.name] = true;
			if (d.mac) devices[String(d.mac).toLowerCase()] = true;
			L.toArray(d.group).forEach(function(g) { devices[g] = true; });
		});
		uci.sections('phonehome', 'group', function(g) { devices[g['.name']] = true; });

		o = s.option(form.DynamicList, 'device', _('Devices'),
			_('Device names, groups or MAC addresses of the Devices list; none: every device.'));
		Object.keys(devices).sort().forEach(function(d) {
			if (/^[A-Za-z0-9_.:-]+$/.test(d))
				o.value(d);
		});

		o = s.option(form.DynamicList, 'owner', _('Owners'),
			_('Companies as phonehome names them (the Overview and Connections pages), e.g. Xiaomi.'));

		o = s.option(form.DynamicList, 'parent', _('Parent companies'),
			_('Every owner of these companies, e.g. Meta: Facebook, Instagram, WhatsApp.'));
		o.modalonly = true;

		o = s.option(form.MultiValue, 'category', _('Categories'));
		CATEGORIES.forEach(function(c) { o.value(c); });

		o = s.option(form.DynamicList, 'domain', _('Domains'),
			_('A domain and its subdomains, e.g. tracking.miui.com.'));
		o.validate = validateDomain;
		o.modalonly = true;

		o = s.option(form.DynamicList, 'country', _('Countries'),
			_('Destination countries (ISO 3166-1 codes, e.g. CN); needs an owner database with countries.'));
		o.validate = validateCountry;
		o.modalonly = true;

		o = s.option(form.DynamicList, 'asn', _('Networks (AS)'));
		o.validate = validateAsn;
		o.modalonly = true;

		o = s.option(form.ListValue, 'proto', _('Protocol'));
		o.value('', _('any'));
		o.value('tcp', 'TCP');
		o.value('udp', 'UDP');
		o.value('icmp', 'ICMP');
		o.value('icmpv6', 'ICMPv6');
		o.modalonly = true;

		o = s.option(form.DynamicList, 'port', _('Destination ports'),
			_('Ports or FIRST-LAST ranges; they need protocol TCP, UDP or any.'));
		o.datatype = 'portrange';
		o.modalonly = true;
		o.validate = function(section_id, value) {
			var proto = this.section.formvalue(section_id, 'proto');

			if (value != null && value != '' && (proto == 'icmp' || proto == 'icmpv6'))
				return _('Ports need protocol TCP, UDP or any');

			return true;
		};

		o = s.option(form.Value, 'start_time', _('From'),
			_('Time of day (HH:MM, router time); a window that ends before it starts runs over midnight.'));
		o.validate = validateClock;
		o.modalonly = true;

		o = s.option(form.Value, 'stop_time', _('Until'));
		o.validate = validateClock;
		o.modalonly = true;

		o = s.option(form.MultiValue, 'weekdays', _('Weekdays'),
			_('None: every day.'));
		WEEKDAYS.forEach(function(d) { o.value(d); });
		o.modalonly = true;

		o = s.option(form.ListValue, 'action', _('Action'));
		o.value('block', _('Block'));
		o.value('reject', _('Reject (tell the app at once)'));
		o.value('allow', _('Allow'));
		o.value('log', _('Log and go on'));
		o.default = 'block';
		o.rmempty = false;

		return m.render();
	}
});
