//! The sections of the config file, one function each: the `phonehome`
//! section's options (`Config::set_main_option`), `device`, `group` and
//! `rule` sections. Every value is checked with the line it came from;
//! a rule criterion given nothing is refused (it would match everything).

use super::config::*;
use crate::owners::Category;

impl Config {
    /// One option of the `phonehome` section.
    pub(super) fn set_main_option(
        &mut self,
        k: &String,
        v: &String,
        line: &usize,
        err: &ErrAt<'_>,
    ) -> Result<(), ConfigError> {
        let cfg = self;
        let num = |max: u64| -> Result<u64, ConfigError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| err(*line, format!("{k}: '{v}' is not a number up to {max}")))
        };
        match k.as_str() {
                            "socket" => cfg.socket = v.into(),
                            "queue" => cfg.queue = num(65535)? as u16,
                            // Read by the OpenWrt init script, not the daemon.
                            "enabled" => {
                                parse_bool(v).ok_or_else(|| {
                                    err(*line, format!("enabled: '{v}' (expected 0 or 1)"))
                                })?;
                            }
                            "fail_closed" | "block_dot" | "block_doh" | "block_quic" => {
                                let b = parse_bool(v).ok_or_else(|| {
                                    err(*line, format!("{k}: '{v}' (expected 0 or 1)"))
                                })?;
                                match k.as_str() {
                                    "fail_closed" => cfg.fail_closed = b,
                                    "block_dot" => cfg.block_dot = b,
                                    "block_doh" => cfg.block_doh = b,
                                    _ => cfg.block_quic = b,
                                }
                            }
                            "sinkhole" => {
                                cfg.sinkhole = crate::inspect::sinkhole::SinkholeMode::parse(v)
                                    .ok_or_else(|| {
                                        err(
                                            *line,
                                            format!(
                                                "sinkhole: '{v}' (expected zero, nxdomain or off)"
                                            ),
                                        )
                                    })?
                            }
                            "default" | "undecided" => {
                                let a = parse_action(v)
                                    .filter(|a| *a != Action::Log)
                                    .ok_or_else(|| {
                                        err(
                                            *line,
                                            format!("{k}: '{v}' (expected allow, block or reject)"),
                                        )
                                    })?;
                                if k == "default" {
                                    cfg.default = a;
                                } else {
                                    cfg.undecided = a;
                                }
                            }
                            "decide_by" => {
                                cfg.decide_by = num(16)? as u32;
                                if cfg.decide_by == 0 {
                                    return Err(err(*line, "decide_by: 1 to 16 client segments".into()));
                                }
                            }
                            "max_pending" => {
                                let kib = num(1 << 20)?;
                                if kib < 64 {
                                    return Err(err(*line, "max_pending: at least 64 (KiB)".into()));
                                }
                                cfg.max_pending = kib as usize * 1024;
                            }
                            "mode" => {
                                cfg.mode = match v.as_str() {
                                    "enforce" => Mode::Enforce,
                                    "observe" => Mode::Observe,
                                    _ => {
                                        return Err(err(
                                            *line,
                                            format!("mode: '{v}' (expected enforce or observe)"),
                                        ))
                                    }
                                }
                            }
                            "copy_range" => {
                                cfg.copy_range = num(65535)? as u32;
                                if cfg.copy_range < 128 {
                                    return Err(err(
                                        *line,
                                        "copy_range: at least 128 bytes".into(),
                                    ));
                                }
                            }
                            "leases" => cfg.leases = v.into(),
                            "db" => cfg.db = Some(v.into()),
                            "state" => cfg.state = Some(v.into()),
                            "state_tmp" => cfg.state_tmp = Some(v.into()),
                            "ipfix_collector" => {
                                cfg.ipfix_collector = Some(v.parse().map_err(|_| {
                                    err(*line, format!("ipfix_collector: '{v}' (expected ADDRESS:PORT, e.g. 192.0.2.9:4739 or [2001:db8::9]:4739)"))
                                })?)
                            }
                            "on_new_owner" if v.starts_with('/') => cfg.on_new_owner = Some(v.into()),
                            "on_new_owner" => {
                                return Err(err(*line, format!("on_new_owner: '{v}' (expected an absolute path, e.g. /usr/libexec/phonehome-new-owner)")))
                            }
                            "ipfix_domain" => cfg.ipfix_domain = num(u32::MAX as u64)? as u32,
                            "socket_group" | "admin_group" => {
                                // Whether the group exists is the router's
                                // to say (`check_groups`, at start and
                                // reload): `policy check` of a router's
                                // config on a PC must not fail on it.
                                cfg.group_options.push((k.clone(), v.clone(), *line));
                                if k == "socket_group" {
                                    cfg.socket_group = Some(v.clone());
                                } else {
                                    cfg.admin_group = Some(v.clone());
                                }
                            }
                            "state_interval" => {
                                cfg.state_interval = num(1440)?;
                                if cfg.state_interval == 0 {
                                    return Err(err(
                                        *line,
                                        "state_interval: 1 to 1440 minutes".into(),
                                    ));
                                }
                            }
                            "max_flows" => cfg.max_flows = num(10_000_000)?.max(64) as usize,
                            "dns_cache_size" => cfg.dns_cache_size = num(10_000_000)? as usize,
                            _ => {
                                return Err(err(
                                    *line,
                                    format!("unknown option '{k}' in phonehome section"),
                                ))
                            }
                        }
        Ok(())
    }
}

/// Makes the error of a line.
pub(super) type ErrAt<'a> = dyn Fn(usize, String) -> ConfigError + 'a;

/// `option default` of a device or group: a verdict, not `log`.
pub(super) fn default_action(v: &str, line: usize, err: &ErrAt<'_>) -> Result<Action, ConfigError> {
    parse_action(v)
        .filter(|a| *a != Action::Log)
        .ok_or_else(|| {
            err(
                line,
                format!("default: '{v}' (expected allow, block or reject)"),
            )
        })
}

/// A `device` section.
pub(super) fn device_section(s: &Section, err: &ErrAt<'_>) -> Result<DeviceConfig, ConfigError> {
    let mut mac = None;
    let mut dev_name = None;
    let mut groups = Vec::new();
    let mut maker = None;
    let mut default = None;
    for (k, v, line) in &s.options {
        match k.as_str() {
            "default" => default = Some(default_action(v, *line, err)?),
            "mac" => {
                mac = Some(
                    parse_mac(v)
                        .ok_or_else(|| err(*line, format!("mac: '{v}' is not a MAC address")))?,
                )
            }
            "name" => dev_name = Some(v.clone()),
            "group" => groups.push(v.clone()),
            "maker" if !v.trim().is_empty() => maker = Some(v.trim().to_string()),
            "maker" => {
                return Err(err(
                    *line,
                    "maker: empty (an owner name, e.g. 'Xiaomi')".into(),
                ))
            }
            _ => {
                return Err(err(
                    *line,
                    format!("unknown option '{k}' in device section"),
                ))
            }
        }
    }
    let mac = mac.ok_or_else(|| err(s.line, "device section without 'option mac'".into()))?;
    Ok(DeviceConfig {
        mac,
        name: dev_name.or_else(|| s.name.clone()),
        groups,
        maker,
        default,
    })
}

/// A `group` section.
pub(super) fn group_section(s: &Section, err: &ErrAt<'_>) -> Result<GroupConfig, ConfigError> {
    let name = s.name.clone().ok_or_else(|| {
        err(
            s.line,
            "group section without a name (config group 'NAME')".into(),
        )
    })?;
    let mut default = None;
    for (k, v, line) in &s.options {
        match k.as_str() {
            "default" => default = Some(default_action(v, *line, err)?),
            _ => return Err(err(*line, format!("unknown option '{k}' in group section"))),
        }
    }
    Ok(GroupConfig { name, default })
}

/// A `rule` section, the `rule_no`-th.
pub(super) fn rule_section(
    s: &Section,
    rule_no: usize,
    err: &ErrAt<'_>,
) -> Result<RuleConfig, ConfigError> {
    let mut rule = RuleConfig {
        name: s.name.clone().unwrap_or_else(|| format!("rule#{rule_no}")),
        line: s.line,
        devices: Vec::new(),
        owners: Vec::new(),
        parents: Vec::new(),
        categories: Vec::new(),
        domains: Vec::new(),
        asns: Vec::new(),
        countries: Vec::new(),
        proto: None,
        ports: Vec::new(),
        schedule: None,
        action: Action::Allow,
    };
    let mut action = None;
    let mut schedule = Schedule {
        start: None,
        stop: None,
        weekdays: 0,
    };
    let mut scheduled = false;
    for (k, v, line) in &s.options {
        // A criterion given nothing (`list country ''`)
        // would add no condition: the rule would match
        // every connection, not none.
        if v.trim().is_empty()
            && matches!(
                k.as_str(),
                "device"
                    | "group"
                    | "owner"
                    | "parent"
                    | "asn"
                    | "country"
                    | "port"
                    | "dest_port"
                    | "weekdays"
            )
        {
            return Err(err(*line, format!("{k}: empty (a rule criterion needs a value; leave the option out to match any)")));
        }
        match k.as_str() {
                            "name" => rule.name = v.clone(),
                            "device" | "group" => rule.devices.push(v.clone()),
                            "owner" => rule.owners.push(v.clone()),
                            "parent" => rule.parents.push(v.clone()),
                            "category" => rule.categories.push(Category::parse(v).ok_or_else(|| {
                                err(*line, format!("category: unknown '{v}' (advertising, analytics, telemetry, social, cdn, cloud, services)"))
                            })?),
                            "domain" => rule.domains.push(rule_domain(v).map_err(|m| err(*line, m))?),
                            "action" | "target" => {
                                action = Some(parse_action(v).ok_or_else(|| err(*line, format!("action: '{v}' (expected allow, block, reject or log)")))?)
                            }
                            "asn" => {
                                for a in v.split_whitespace() {
                                    let n = a.strip_prefix("AS").or_else(|| a.strip_prefix("as")).unwrap_or(a);
                                    rule.asns.push(n.parse().map_err(|_| err(*line, format!("asn: '{a}' is not an AS number")))?);
                                }
                            }
                            "country" => {
                                for c in v.split_whitespace() {
                                    rule.countries.push(country_code(c).map_err(|m| err(*line, m))?);
                                }
                            }
                            "proto" => {
                                rule.proto = match v.to_ascii_lowercase().as_str() {
                                    "tcp" => Some(6),
                                    "udp" => Some(17),
                                    "icmp" => Some(1),
                                    "icmpv6" | "ipv6-icmp" => Some(58),
                                    "any" | "all" => None,
                                    _ => return Err(err(*line, format!("proto: '{v}' (expected tcp, udp, icmp or any)"))),
                                }
                            }
                            "port" | "dest_port" => {
                                for p in v.split_whitespace() {
                                    rule.ports.push(parse_port_range(p).ok_or_else(|| err(*line, format!("{k}: '{p}' is not a port or FIRST-LAST range")))?);
                                }
                            }
                            "start_time" | "stop_time" => {
                                let m = parse_clock(v).ok_or_else(|| err(*line, format!("{k}: '{v}' (expected HH:MM)")))?;
                                scheduled = true;
                                if k == "start_time" { schedule.start = Some(m) } else { schedule.stop = Some(m) }
                            }
                            "weekdays" => {
                                for d in v.split_whitespace() {
                                    let i = parse_weekday(d).ok_or_else(|| err(*line, format!("weekdays: '{d}' (expected Mon..Sun)")))?;
                                    schedule.weekdays |= 1 << i;
                                    scheduled = true;
                                }
                            }
                            _ => return Err(err(*line, format!("unknown option '{k}' in rule section"))),
                        }
    }
    rule.action = action.ok_or_else(|| err(s.line, "rule without 'option action'".into()))?;
    if scheduled {
        rule.schedule = Some(schedule);
    }
    if !rule.ports.is_empty() && !matches!(rule.proto, None | Some(6) | Some(17)) {
        return Err(err(
            s.line,
            format!("rule '{}': ports need proto tcp, udp or any", rule.name),
        ));
    }
    Ok(rule)
}
