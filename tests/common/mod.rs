//! The test network of docs/ARCHITECTURE.md, built for real with `ip netns` and veth:
//!
//! ```text
//!  phone 192.168.77.2 ── 192.168.77.1 router 198.51.100.1 ── 198.51.100.2 wan
//!        fd00:77::2        fd00:77::1      2001:db8:100::1    2001:db8:100::2
//!  (MAC 02:00:00:00:77:02)   (forwarding, NAT44, firewall,     dnsmasq .53 / ::53, openssl
//!                              the daemon, maybe dnsmasq)       s_server :443, HTTP :80,
//!                                                               203.0.113.x and
//!                                                               2001:db8:113::x per owner
//! ```
//!
//! Dual stack: IPv4 is NATed at the router, IPv6 routed (the wan knows
//! the LAN's ULA prefix), as on a router with a delegated prefix.
//!
//! Shared by the E2E tests, the benchmark and the demo. Every network gets
//! unique namespace names, so tests run in parallel; everything is torn
//! down on drop. Needs root (CI runs as root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PHONE_MAC: &str = "02:00:00:00:77:02";
pub const PHONE_IP: &str = "192.168.77.2";
pub const ROUTER_LAN_IP: &str = "192.168.77.1";
pub const WAN_DNS: &str = "198.51.100.53";
pub const PHONE_IP6: &str = "fd00:77::2";
pub const ROUTER_LAN_IP6: &str = "fd00:77::1";
pub const WAN_DNS6: &str = "2001:db8:100::53";

/// Destination addresses in `wan`, one per owner, with the names dnsmasq
/// there answers for them.
pub const XIAOMI_IP: &str = "203.0.113.10";
pub const GOOGLE_IP: &str = "203.0.113.20";
pub const NEUTRAL_IP: &str = "203.0.113.30";
pub const ALIYUN_IP: &str = "203.0.113.40";
/// The same owners' IPv6 addresses (dnsmasq answers AAAA with them).
pub const XIAOMI_IP6: &str = "2001:db8:113::10";
pub const GOOGLE_IP6: &str = "2001:db8:113::20";
pub const NEUTRAL_IP6: &str = "2001:db8:113::30";
pub const ALIYUN_IP6: &str = "2001:db8:113::40";
pub const OWNER_IPS: [(&str, &str); 4] = [
    (XIAOMI_IP, XIAOMI_IP6),
    (GOOGLE_IP, GOOGLE_IP6),
    (NEUTRAL_IP, NEUTRAL_IP6),
    (ALIYUN_IP, ALIYUN_IP6),
];

/// The IPv6 twin of an owner's IPv4 address.
pub fn v6_of(ip4: &str) -> &'static str {
    OWNER_IPS
        .iter()
        .find(|(v4, _)| *v4 == ip4)
        .map_or_else(|| panic!("no IPv6 twin for {ip4}"), |(_, v6)| *v6)
}

/// One address family of the dual-stack test network: the enforcement
/// tests run once per family (`V4`, `V6`), each with its own addresses,
/// resolver addresses, record type and sinkhole address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub v6: bool,
}

pub const V4: Family = Family { v6: false };
pub const V6: Family = Family { v6: true };

impl Family {
    /// An owner's address in this family (`ip4` is its IPv4 one).
    pub fn ip(self, ip4: &'static str) -> &'static str {
        if self.v6 {
            v6_of(ip4)
        } else {
            ip4
        }
    }
    pub fn phone(self) -> &'static str {
        if self.v6 {
            PHONE_IP6
        } else {
            PHONE_IP
        }
    }
    /// The wan's resolver.
    pub fn wan_dns(self) -> &'static str {
        if self.v6 {
            WAN_DNS6
        } else {
            WAN_DNS
        }
    }
    /// The router's own resolver (dnsmasq on the LAN address).
    pub fn router_dns(self) -> &'static str {
        if self.v6 {
            ROUTER_LAN_IP6
        } else {
            ROUTER_LAN_IP
        }
    }
    /// The address record type dig asks for.
    pub fn rtype(self) -> &'static str {
        if self.v6 {
            "AAAA"
        } else {
            "A"
        }
    }
    /// What a sinkholed address record holds.
    pub fn zero(self) -> &'static str {
        if self.v6 {
            "::"
        } else {
            "0.0.0.0"
        }
    }
}

/// An address as it goes in a URL or `--resolve`: IPv6 in brackets.
pub fn bracketed(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

impl Net {
    /// dig from the phone for `name`'s address in `family`.
    pub fn dig_family(&self, family: Family, server: &str, name: &str) -> String {
        self.dig_with(server, name, family.rtype(), "")
    }
}

pub const DNS_RECORDS: &[(&str, &str)] = &[
    ("tracking.miui.com", XIAOMI_IP),
    ("api.ad.xiaomi.com", XIAOMI_IP),
    ("data.mistat.xiaomi.com", XIAOMI_IP),
    ("www.google-analytics.com", GOOGLE_IP),
    ("www.google.com", GOOGLE_IP),
    ("files.example.org", NEUTRAL_IP),
    ("oss.aliyuncs.com", ALIYUN_IP),
];
/// The config several enforcement tests share: Xiaomi rejected, and DNS
/// answers passed as they are (the tests are about the connections).
pub const REJECT_XIAOMI: &str = "config phonehome 'dns'\n\toption sinkhole 'off'\n\n\
     config rule 'xiaomi'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n";

/// `cdn.innocent.test` is a CNAME to a Xiaomi tracker (cloaking).
pub const CNAMES: &[(&str, &str)] = &[("cdn.innocent.test", "tracking.miui.com")];

/// Waits up to `secs` for `path` to exist (a test tool's "done" or
/// "ready" file); panics with `what` when it does not.
pub fn wait_for_file(path: &Path, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The firewall backend the E2E tests install: `$PHONEHOME_TEST_BACKEND`
/// (iptables, nft or fw4; iptables when unset). scripts/vm-test runs the
/// suite with each on a stock kernel.
pub fn backend() -> String {
    let backend = std::env::var("PHONEHOME_TEST_BACKEND").unwrap_or_else(|_| "iptables".into());
    assert!(
        ["iptables", "nft", "fw4"].contains(&backend.as_str()),
        "PHONEHOME_TEST_BACKEND={backend}: iptables, nft or fw4"
    );
    backend
}

/// OpenWrt's `table inet fw4` as fw4 generates it for a lan and a wan
/// zone, cut to what forwarding needs, with `include` (phonehome's chains)
/// at the end as fw4 places table-post includes: forwarding drops what no
/// zone rule accepts; lan may go to wan; IPv4 is masqueraded to wan.
///
/// With `offload` rules, also fw4's flowtable (`flow_offloading '1'`) over
/// the router's two links, counting bytes as fw4's does, and those rules
/// first in the forward chain where fw4 puts its `flow offload` rule.
pub fn fw4_standin(include: &str, offload: &[String]) -> String {
    let (flowtable, offload) = if offload.is_empty() {
        (String::new(), String::new())
    } else {
        (
            "\tflowtable ft {\n\t\thook ingress priority 0;\n\t\tdevices = { \"lan0\", \"wan0\" };\n\t\tcounter;\n\t}\n".to_string(),
            offload.iter().map(|r| format!("\t\t{r}\n")).collect(),
        )
    };
    format!(
        "table inet fw4 {{\n{flowtable}\
         \tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy drop;\n\
         {offload}\
         \t\tct state vmap {{ established : accept, related : accept }}\n\
         \t\tiifname \"lan0\" jump forward_lan\n\t}}\n\
         \tchain forward_lan {{\n\t\toifname \"wan0\" accept\n\t}}\n\
         \tchain srcnat {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"wan0\" meta nfproto ipv4 masquerade\n\t}}\n\
         {include}}}\n"
    )
}

pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PHONEHOME_BIN") {
        return p.into();
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_phonehome") {
        return p.into();
    }
    // examples: target/<profile>/examples/demo → target/<profile>/phonehome
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("phonehome")
}

/// Compiles an owner database at `out` with the daemon's own `db compile`
/// and `args` (`--psl FILE`, `KIND:PATH` sources); panics with its error.
pub fn compile_owner_db(out: &Path, args: &[String]) {
    let done = std::process::Command::new(bin())
        .args(["db", "compile", "--out"])
        .arg(out)
        .args(args)
        .output()
        .expect("run phonehome db compile");
    assert!(
        done.status.success(),
        "db compile {args:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The namespace E2E tests are `#[ignore = "needs root and network
/// namespaces"]`: `cargo test` leaves them out (and says so), `-- --include-ignored`
/// (scripts/test, scripts/test-vm) runs them, and then not being root is a
/// failure with the reason, never a silent pass.
pub fn can_run() -> bool {
    assert!(
        is_root(),
        "the namespace E2E tests need root (ip netns, veth, iptables/nft): run them as root"
    );
    true
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn check(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Net {
    pub phone: String,
    pub router: String,
    pub wan: String,
    pub dir: PathBuf,
    children: Vec<(String, Child)>,
    pub socket: PathBuf,
    /// fw4's offload rules for the fw4 stand-in (none: offloading off).
    pub offload: Vec<String>,
}

impl Net {
    /// Builds the three namespaces, links, addresses, routes and NAT.
    pub fn new() -> Net {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("ph{}x{n}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("phonehome-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let net = Net {
            phone: format!("{tag}-phone"),
            router: format!("{tag}-router"),
            wan: format!("{tag}-wan"),
            socket: dir.join("phonehome.sock"),
            dir,
            children: Vec::new(),
            offload: Vec::new(),
        };
        for ns in [&net.phone, &net.router, &net.wan] {
            check(Command::new("ip").args(["netns", "add", ns]));
        }
        let (p, r, w) = (&net.phone, &net.router, &net.wan);
        let ip = |ns: &str, args: &str| {
            let mut c = Command::new("ip");
            c.args(["-n", ns]).args(args.split_whitespace());
            check(&mut c);
        };
        for ns in [p, r, w] {
            // No router advertisements or duplicate address detection,
            // set before the links exist so they inherit it (link-local
            // addresses too: neighbour discovery needs them at once).
            net.sh(
                ns,
                "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                 net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0",
            );
        }
        ip(
            p,
            &format!("link add ph0 address {PHONE_MAC} type veth peer name lan0 netns {r}"),
        );
        ip(
            r,
            &format!("link add wan0 type veth peer name up0 netns {w}"),
        );
        ip(p, "addr add 192.168.77.2/24 dev ph0");
        ip(r, "addr add 192.168.77.1/24 dev lan0");
        ip(r, "addr add 198.51.100.1/24 dev wan0");
        ip(w, "addr add 198.51.100.2/24 dev up0");
        ip(w, &format!("addr add {WAN_DNS}/32 dev up0"));
        ip(p, &format!("-6 addr add {PHONE_IP6}/64 dev ph0 nodad"));
        ip(
            r,
            &format!("-6 addr add {ROUTER_LAN_IP6}/64 dev lan0 nodad"),
        );
        ip(r, "-6 addr add 2001:db8:100::1/64 dev wan0 nodad");
        ip(w, "-6 addr add 2001:db8:100::2/64 dev up0 nodad");
        ip(w, &format!("-6 addr add {WAN_DNS6}/128 dev up0 nodad"));
        for (owner_ip, owner_ip6) in OWNER_IPS {
            ip(w, &format!("addr add {owner_ip}/32 dev up0"));
            ip(w, &format!("-6 addr add {owner_ip6}/128 dev up0 nodad"));
        }
        for (ns, dev) in [(p, "ph0"), (r, "lan0"), (r, "wan0"), (w, "up0")] {
            ip(ns, &format!("link set {dev} up"));
            ip(ns, "link set lo up");
        }
        ip(p, "route add default via 192.168.77.1");
        ip(r, "route add default via 198.51.100.2");
        ip(p, &format!("-6 route add default via {ROUTER_LAN_IP6}"));
        ip(r, "-6 route add default via 2001:db8:100::2");
        ip(w, "-6 route add fd00:77::/64 via 2001:db8:100::1");
        net.sh(
            r,
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
        );
        // Neighbour discovery along the IPv6 path now, not during the
        // first connection of a test (its SYN would wait out a 1 s RTO).
        net.sh(p, "ping -6 -c1 -w5 -i0.2 2001:db8:100::2 >/dev/null");
        if backend() == "fw4" {
            // fw4 NATs in its own table: no iptables on this router at all.
            net.firewall_down();
        } else {
            net.sh(r, "iptables -w -t nat -A POSTROUTING -o wan0 -j MASQUERADE");
        }
        net
    }

    /// Runs a shell command inside a namespace and returns its output.
    pub fn sh_out(&self, ns: &str, script: &str) -> Output {
        run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", script]))
    }

    /// Like `sh_out`, but panics on failure.
    pub fn sh(&self, ns: &str, script: &str) -> String {
        let out = self.sh_out(ns, script);
        assert!(
            out.status.success(),
            "[{ns}] {script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running process in a namespace (killed on drop).
    pub fn spawn(&mut self, name: &str, ns: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Sends a signal (e.g. "KILL", "TERM", "HUP") to a spawned process;
    /// after KILL or TERM it is reaped and forgotten.
    pub fn signal(&mut self, name: &str, sig: &str) {
        let stopping = sig == "KILL" || sig == "TERM";
        let mut kept = Vec::new();
        for (n, mut child) in std::mem::take(&mut self.children) {
            if n != name {
                kept.push((n, child));
                continue;
            }
            // `ip netns exec` execs the program, so the pid is its own.
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &child.id().to_string()])
                .status();
            if stopping {
                let _ = child.wait();
            } else {
                kept.push((n, child));
            }
        }
        self.children = kept;
    }

    /// dnsmasq as the upstream resolver, TLS on 443 and HTTP on 80 in `wan`.
    pub fn start_wan_services(&mut self) {
        let mut records = vec!["--local-ttl=60".to_string()];
        for (name, ip) in DNS_RECORDS {
            records.push(format!("--host-record={name},{ip},{}", v6_of(ip)));
        }
        records.push(format!("--listen-address={WAN_DNS6}"));
        for (alias, target) in CNAMES {
            records.push(format!("--cname={alias},{target}"));
        }
        let wan = self.wan.clone();
        self.spawn_dnsmasq("dnsmasq-wan", &wan, WAN_DNS, &records);

        let (cert, key) = (self.dir.join("cert.pem"), self.dir.join("key.pem"));
        check(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-subj",
                    "/CN=phonehome-test",
                    "-days",
                    "2",
                    "-keyout",
                    key.to_str().unwrap(),
                    "-out",
                    cert.to_str().unwrap(),
                ])
                .stderr(Stdio::null()),
        );
        // One TLS server per owner address: s_server serves one connection
        // at a time, and a connection blocked after its handshake stalls it.
        for (owner_ip, owner_ip6) in OWNER_IPS {
            self.spawn_tls_server(&format!("https-{owner_ip}"), &format!("{owner_ip}:443"));
            self.spawn_tls_server(&format!("https-{owner_ip6}"), &format!("[{owner_ip6}]:443"));
        }
        let www = self.dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "hello from wan\n").unwrap();
        let big = vec![0x5au8; 10 << 20];
        std::fs::write(www.join("10mb.bin"), big).unwrap();
        self.spawn(
            "http",
            &wan,
            &[
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                "::",
                "--directory",
                www.to_str().unwrap(),
            ],
        );
        self.wait_for(
            &wan,
            &format!(
                "ss -ltn | grep -q '{XIAOMI_IP6}\\]:443 ' && ss -ltn | grep -q ':80 ' && ss -lun | grep -q '{WAN_DNS6}\\]:53 '"
            ),
        );
    }

    /// `openssl s_server -www` in wan on `accept` (ADDR:PORT) with this
    /// network's certificate (made by `start_wan_services`).
    pub fn spawn_tls_server(&mut self, name: &str, accept: &str) {
        let (cert, key) = (self.dir.join("cert.pem"), self.dir.join("key.pem"));
        let wan = self.wan.clone();
        self.spawn(
            name,
            &wan,
            &[
                "openssl",
                "s_server",
                "-quiet",
                "-accept",
                accept,
                "-www",
                "-cert",
                cert.to_str().unwrap(),
                "-key",
                key.to_str().unwrap(),
            ],
        );
    }

    /// tcpdump on the router's LAN side (what the phone sends and gets),
    /// whole packets, each written as it comes (a 32 MB buffer, so a
    /// download at veth speed loses none), into `file` in this network's
    /// directory; `stop_lan_capture` ends it.
    pub fn start_lan_capture(&mut self, file: &str) -> PathBuf {
        let pcap = self.dir.join(file);
        let router = self.router.clone();
        self.spawn(
            "tcpdump",
            &router,
            &[
                "tcpdump",
                "-i",
                "lan0",
                "--immediate-mode",
                "-B",
                "32768",
                "-s",
                "0",
                "-U",
                "-w",
                pcap.to_str().unwrap(),
            ],
        );
        self.wait_for(&router, &format!("test -s {}", pcap.display()));
        pcap
    }

    /// Lets the last packets in, then stops tcpdump (the file is complete).
    pub fn stop_lan_capture(&mut self) {
        std::thread::sleep(Duration::from_millis(500));
        self.signal("tcpdump", "TERM");
    }

    /// dnsmasq on the router, forwarding to the wan resolver.
    pub fn start_router_dns(&mut self) {
        let router = self.router.clone();
        let upstream = format!("--server={WAN_DNS}");
        let v6 = format!("--listen-address={ROUTER_LAN_IP6}");
        self.spawn_dnsmasq("dnsmasq-router", &router, ROUTER_LAN_IP, &[upstream, v6]);
        self.wait_for(&router, "ss -lun | grep -q '192.168.77.1:53 '");
    }

    /// dnsmasq in namespace `ns`, in the foreground, on `listen` only,
    /// with no config, resolv.conf or hosts file of the machine's, and
    /// `options` on top.
    pub fn spawn_dnsmasq(&mut self, name: &str, ns: &str, listen: &str, options: &[String]) {
        let listen = format!("--listen-address={listen}");
        let mut args = vec![
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &listen,
            "--pid-file=",
            "--user=root",
        ];
        args.extend(options.iter().map(String::as_str));
        self.spawn(name, ns, &args);
    }

    /// Polls a shell condition for up to 30 s (a stock kernel under TCG,
    /// scripts/test-vm, starts the wan services in ~10 s).
    pub fn wait_for(&self, ns: &str, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.sh_out(ns, condition).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("[{ns}] timed out waiting for: {condition}");
    }

    /// Writes the daemon's config: this network's socket, queue 0, leases
    /// file and the phone as device `phone`, then `extra_config`.
    pub fn write_config(&self, extra_config: &str) {
        let config = format!(
            "config phonehome 'main'\n\toption socket '{}'\n\toption queue '0'\n\toption leases '{}'\n\n\
             config device\n\toption mac '{PHONE_MAC}'\n\toption name 'phone'\n\n{extra_config}",
            self.socket.display(),
            self.dir.join("dhcp.leases").display(),
        );
        std::fs::write(self.config_path(), config).unwrap();
    }

    /// Writes a config (see `write_config`) and starts the daemon in the
    /// router with the firewall rules installed.
    pub fn start_daemon(&mut self, extra_config: &str, fail_closed: bool) {
        self.write_config(extra_config);
        self.firewall_up(fail_closed);
        self.start_daemon_process();
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("phonehome.conf")
    }

    /// Appends UCI text to the daemon's config (then reload or restart).
    pub fn append_config(&self, text: &str) {
        let path = self.config_path();
        let mut config = std::fs::read_to_string(&path).unwrap();
        config.push_str(text);
        std::fs::write(&path, config).unwrap();
    }

    /// Installs phonehome's rules in the router with the backend the run
    /// asks for (`backend()`): `firewall up` for iptables and nft; for fw4,
    /// the include inside a stand-in of OpenWrt's `table inet fw4` (a
    /// forward chain that drops what no zone rule accepts, and the NAT),
    /// loaded with `nft -f` as fw4 loads it.
    pub fn firewall_up(&self, fail_closed: bool) {
        let bin = bin();
        let flag = if fail_closed { " --fail-closed" } else { "" };
        match backend().as_str() {
            "fw4" => {
                let include = self.sh(
                    &self.router,
                    &format!(
                        "{} firewall print --backend fw4 --queue 0{flag}",
                        bin.display()
                    ),
                );
                self.load_fw4(&include);
            }
            backend => {
                self.sh(
                    &self.router,
                    &format!(
                        "{} firewall up --backend {backend} --queue 0{flag}",
                        bin.display()
                    ),
                );
            }
        }
    }

    /// Replaces the router's `table inet fw4` with the stand-in holding
    /// `include` (and `self.offload`), in one nft transaction.
    pub fn load_fw4(&self, include: &str) {
        let ruleset = format!(
            "table inet fw4\ndelete table inet fw4\n{}",
            fw4_standin(include, &self.offload)
        );
        let path = self.dir.join("fw4.nft");
        std::fs::write(&path, ruleset).unwrap();
        self.sh(&self.router, &format!("nft -f {}", path.display()));
    }

    /// Removes phonehome's rules (`firewall down`, or for fw4 the include:
    /// the stand-in table without it).
    pub fn firewall_down(&self) {
        match backend().as_str() {
            "fw4" => {
                self.load_fw4("");
            }
            backend => {
                self.sh(
                    &self.router,
                    &format!("{} firewall down --backend {backend}", bin().display()),
                );
            }
        }
    }

    pub fn start_daemon_process(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let router = self.router.clone();
        let bin = bin();
        let config = self.config_path();
        self.spawn(
            "daemon",
            &router,
            &[bin.to_str().unwrap(), "run", "-c", config.to_str().unwrap()],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        // Listening, not just bound: the socket file appears at bind(2),
        // a moment before listen(2), and a connect between the two is
        // refused.
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                self.log("daemon")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // scripts/test-vm: on a stock kernel the queue must bind with
        // ct-mark verdicts, never fall back unnoticed.
        if let Ok(want) = std::env::var("PHONEHOME_EXPECT_VERDICTS") {
            let mut log = self.log("daemon");
            while !log.contains(" verdicts)") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                log = self.log("daemon");
            }
            assert!(
                log.contains(&format!("({want} verdicts)")),
                "the daemon did not bind with {want} verdicts: {log}"
            );
        }
    }

    /// Runs the CLI against this network's daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        run(Command::new(bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args))
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "phonehome {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("valid JSON")
    }

    /// curl from the phone to `url`, with the URL's host pinned to `ip`
    /// (`--resolve`, so curl itself does no DNS); returns whether it
    /// fetched the page.
    pub fn curl(&self, url: &str, ip: &str, max_time: f32) -> bool {
        self.curl_exit(url, ip, max_time) == 0
    }

    /// curl's exit code for a fetch from the phone, as `curl` makes it:
    /// 0 fetched, 7 refused (a reset or an ICMP unreachable), 28 timed
    /// out.
    pub fn curl_exit(&self, url: &str, ip: &str, max_time: f32) -> i32 {
        let (scheme, rest) = url.split_once("://").expect("URL with a scheme");
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port): (&str, u16) = match authority.split_once(':') {
            Some((host, port)) => (host, port.parse().expect("a port number")),
            None => (authority, if scheme == "https" { 443 } else { 80 }),
        };
        let ip = bracketed(ip);
        self.sh_out(
            &self.phone,
            &format!(
                "curl -sk -o /dev/null --max-time {max_time} --resolve {host}:{port}:{ip} {url}"
            ),
        )
        .status
        .code()
        .unwrap_or(-1)
    }

    /// SYNs the kernel in `ns` has sent again (TcpExt TCPSynRetrans in
    /// /proc/net/netstat): a connection refused at its first SYN adds none,
    /// one whose first SYN was dropped adds one, whatever the machine's
    /// speed.
    pub fn syn_retransmits(&self, ns: &str) -> u64 {
        let netstat = self.sh(ns, "cat /proc/net/netstat");
        let mut rows = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
        let (names, values) = (
            rows.next().expect("TcpExt names"),
            rows.next().expect("TcpExt values"),
        );
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "TCPSynRetrans")
            .and_then(|(_, value)| value.parse().ok())
            .expect("TCPSynRetrans in /proc/net/netstat")
    }

    /// tests/tools/http_sink.py in wan on `port`: an HTTP server that
    /// reads any number of headers (Python's http.server answers 431 after
    /// 100, which would end a request early).
    pub fn start_http_sink(&mut self, port: u16) {
        let sink = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/http_sink.py");
        let wan = self.wan.clone();
        let port = port.to_string();
        self.spawn(
            &format!("http-sink-{port}"),
            &wan,
            &["python3", sink.to_str().unwrap(), &port],
        );
        self.wait_for(&wan, &format!("ss -ltn | grep -q ':{port} '"));
    }

    /// tests/tools/late_name_client.py from the phone to `addr`:`port`
    /// (`args`: how late the name comes); "refused ..." or "open ...".
    pub fn late_name(&self, addr: &str, port: u16, args: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/late_name_client.py");
        self.sh(
            &self.phone,
            &format!(
                "python3 {} --addr {addr} --port {port} {args}",
                script.display()
            ),
        )
    }

    /// dig from the phone against `server`; returns the answer lines.
    pub fn dig(&self, server: &str, name: &str) -> String {
        self.dig_with(server, name, "A", "")
    }

    /// dig from the phone: record type `rtype`, extra dig options (`+tcp`,
    /// `-b ADDR`...); returns the short answer lines (empty when the lookup
    /// failed or had no answer).
    pub fn dig_with(&self, server: &str, name: &str, rtype: &str, options: &str) -> String {
        let out = self.sh_out(
            &self.phone,
            &format!("dig +short +time=2 +tries=1 {options} @{server} {name} {rtype}"),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(';'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A plain TCP connect from the phone (no TLS, no HTTP: no name in
    /// it) to `ip`:`port`: whether the handshake completed within `secs`.
    /// A connection that only a DNS answer names is decided at its SYN.
    pub fn tcp_connects(&self, ip: &str, port: u16, secs: f32) -> bool {
        let script = format!(
            "import socket\nsocket.create_connection(('{ip}',{port}),timeout={secs}).close()\n"
        );
        self.sh_out(&self.phone, &format!("python3 -c \"{script}\""))
            .status
            .success()
    }

    /// Packets handed to user space by queue 0 in the router so far.
    pub fn queued_packets(&self) -> u64 {
        let text = self.sh(&self.router, "cat /proc/net/netfilter/nfnetlink_queue");
        phonehome::wire::nfqueue::proc_queue_rows(&text)
            .into_iter()
            .find(|r| r.queue == 0)
            .map_or(0, |r| r.id_sequence)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.phone, &self.router, &self.wan] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("PHONEHOME_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The usual network with dnsmasq on the router too (forwarding to the
/// wan's): None when the test cannot run here (not root).
pub fn network_with_router_dns(config: &str) -> Option<Net> {
    if !can_run() {
        return None;
    }
    let mut net = Net::new();
    net.start_wan_services();
    net.start_router_dns();
    net.start_daemon(config, false);
    Some(net)
}

/// The phone's TCP client for the connection benchmarks: N connects to
/// ADDR PORT, each timed, closed with a reset; prints the elapsed seconds
/// and the p50, p99 and worst setup times in microseconds.
pub const CONNECT_CLIENT_PY: &str = "import socket,sys,time
n=int(sys.argv[1]); lat=[]
t0=time.perf_counter()
for i in range(n):
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
    a=time.perf_counter(); s.connect((sys.argv[2], int(sys.argv[3]))); lat.append(time.perf_counter()-a); s.close()
el=time.perf_counter()-t0; lat.sort()
print(el, lat[len(lat)//2]*1e6, lat[int(len(lat)*0.99)]*1e6, lat[-1]*1e6)
";

/// The wan's server for the connection benchmarks: accepts and closes, as
/// fast as it can (ADDR PORT).
pub const ACCEPT_SERVER_PY: &str = "import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4096)
while True:
    c,_=s.accept(); c.close()
";

/// One round of `CONNECT_CLIENT_PY`: connections per second and setup
/// times in microseconds.
pub struct Setups {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub worst: f64,
}

impl Net {
    /// `ACCEPT_SERVER_PY` in wan on `addr`:`port`, ready when this returns.
    pub fn start_accept_server(&mut self, addr: &str, port: u16) {
        let wan = self.wan.clone();
        self.spawn(
            &format!("accept-{addr}-{port}"),
            &wan,
            &["python3", "-c", ACCEPT_SERVER_PY, addr, &port.to_string()],
        );
        self.wait_for(&wan, &format!("ss -ltn | grep -q ':{port} '"));
    }

    /// `n` timed connects from the phone to `addr`:`port`.
    pub fn connect_setups(&self, n: usize, addr: &str, port: u16) -> Setups {
        let out = self.sh(
            &self.phone,
            &format!("python3 -c \"{CONNECT_CLIENT_PY}\" {n} {addr} {port}"),
        );
        let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        Setups {
            rate: n as f64 / v[0],
            p50: v[1],
            p99: v[2],
            worst: v[3],
        }
    }
}

/// The usual network: wan services up, the daemon started with `config`
/// (fail-open); None when the test cannot run here (not root).
pub fn network(config: &str) -> Option<Net> {
    if !can_run() {
        return None;
    }
    let mut net = Net::new();
    net.start_wan_services();
    net.start_daemon(config, false);
    Some(net)
}

/// The real WhoTracks.me dump (see `shared_data`).
pub fn whotracksme_dump() -> PathBuf {
    shared_data("whotracksme-trackerdb-2022-08.sql")
}

/// A file or folder of the test data other projects published:
/// `../shared/data/` beside the checkout (docs/ARCHITECTURE.md),
/// `/work/shared/data/`, or `$PHONEHOME_SHARED_DATA`; panics naming the
/// places when none has it.
pub fn shared_data(name: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("PHONEHOME_SHARED_DATA") {
        candidates.push(PathBuf::from(dir).join(name));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data")
            .join(name),
    );
    candidates.push(PathBuf::from("/work/shared/data").join(name));
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!("{name} is not at any of {candidates:?} (set PHONEHOME_SHARED_DATA)")
        })
}

/// The middle value (benchmarks report medians of their rounds).
/// A benchmark's knob from the environment (`ROUNDS=5`), or `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Builds bench/c/nfq_accept.c (the C NFQUEUE loop the benchmarks compare
/// with) into a temporary file named after `tag`; returns its path.
pub fn build_c_loop(tag: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("phonehome-{tag}-{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/c/nfq_accept.c");
    let built = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-lnetfilter_queue")
        .status()
        .expect("gcc (scripts/install-deps installs it and libnetfilter-queue-dev)");
    assert!(built.success(), "building {}", src.display());
    out
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A state file as the daemon writes it, holding yesterday's traffic of
/// the phone: 3 flows to Xiaomi (one blocked) and 5 to Meta at noon.
pub fn yesterdays_state(path: &std::path::Path) {
    let mut s = phonehome::report::stats::Stats::default();
    let yesterday = unix_now() - 86_400;
    for (owner, n, blocked) in [("Xiaomi", 3, 1), ("Meta", 5, 0)] {
        for i in 0..n {
            s.on_decided(
                &phonehome::report::stats::FlowEvent {
                    device: PHONE_MAC,
                    mac: Some(PHONE_MAC),
                    ip: PHONE_IP.into(),
                    owner,
                    category: "telemetry",
                    domain: None,
                    country: None,
                    blocked: i < blocked,
                },
                yesterday,
            );
        }
        s.add_bytes(PHONE_MAC, owner, 1000, 20_000, yesterday);
    }
    phonehome::report::state::save(path, &s.snapshot(), yesterday).unwrap();
}
