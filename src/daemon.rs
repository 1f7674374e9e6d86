//! Daemon: the I/O edge around the engine. Two threads share one engine
//! behind one mutex:
//! - the verdict thread waits in a blocking receive on the queue socket
//!   (engine not locked), then with the engine locked judges the burst,
//!   sends its verdicts and records its decisions (statistics, log lines,
//!   `watch` rows), so no one ever sees a decision unrecorded and a
//!   reload's re-marking never races a verdict in flight;
//! - a single-threaded tokio runtime (routers have one or two cores) waits
//!   on conntrack destroy events, API queries, a housekeeping tick and
//!   signals (SIGHUP reloads, SIGTERM/SIGINT stop), locking the engine per
//!   message; config files, dump requests, state files and the IPFIX
//!   export are read, sent and written outside the lock.
//!
//! Why two: a queued packet waiting for the event loop's wake-up, its
//! select and an empty read cost ~15 µs more than the smallest C loop's
//! blocking read (the connections benchmark: 0.75-0.84 of its connection
//! rate with one loop, 0.80-0.95 with the verdict thread, noisy). The lock is
//! uncontended unless both have work at once, and then one waits for the
//! other as a single loop would.
//!
//! Nothing here holds the engine for longer than one message's work (a
//! dump's end, which finishes every connection it no longer listed, is
//! the exception):
//! conntrack dumps (every 5 s, and for queries that show byte counts) are
//! streamed a datagram at a time (a burst of verdicts waits for one at
//! most), and those queries
//! are answered when a dump that started after them ends. Dumps start at
//! most once a second (`MIN_DUMP_GAP`): a socket reader asking back to back
//! shares them instead of keeping the kernel dumping (each dump datagram
//! costs the kernel ~0.4 ms; the stall benchmark measured verdicts waiting
//! 13 ms at the median when every query had its own).
//!
//! Limits: re-marking connections after a reload and the neighbour-table
//! dump (when a device is unknown, at most every 5 s) are awaited inline;
//! both are bounded (the changed connections, the kernel's neighbour
//! table). Under the lock still: log lines to stderr, the leases file's
//! check (a stat every 5 s, a re-read when it changed) and
//! PHONEHOME_CAPTURE's debugging writes. Verdict sends never wait for
//! buffer space (at most 3 retries 1 ms apart, see `netlink::send_on`). On
//! SIGTERM the verdict thread goes on judging until the process exits;
//! decisions after the final state save are not in it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::api::{self, Query, Reply};
use crate::config::{Config, LocalTime, Mode};
use crate::conntrack::{self, Conntrack, IPCTNL_MSG_CT_DELETE};
use crate::devices;
use crate::engine::{Engine, Now};
use crate::firewall::MARK_MASK;
use crate::netlink;
use crate::queue::{proc_queue_row, MarkMode, Queue, QueueConfig, Verdicts};
use crate::state;
use crate::stats::StatusRow;

#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Now {
            // +1 so that 0 can mean "never" in tables.
            mono: self.start.elapsed().as_secs() + 1,
            unix,
            local: local_time(unix),
        }
    }
}

/// The router's local time now.
pub fn local_time_now() -> LocalTime {
    local_time(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The router's local time (TZ / /etc/localtime, as the C library reads
/// them; OpenWrt's musl reads /etc/TZ) for rule schedules.
///
/// On 32-bit musl targets the libc crate still declares the old 32-bit
/// `time_t` (deprecated there) and links musl's 32-bit compatibility
/// `localtime_r`, which is correct until 2038; the allow is for that.
#[allow(deprecated)]
pub(crate) fn local_time(unix: u64) -> LocalTime {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        let day = unix / 86_400;
        return LocalTime {
            minute_of_day: ((unix % 86_400) / 60) as u16,
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            weekday: ((day + 3) % 7) as u8,
        };
    }
    LocalTime {
        minute_of_day: (tm.tm_hour * 60 + tm.tm_min) as u16,
        // tm_wday: 0 = Sunday.
        weekday: ((tm.tm_wday + 6) % 7) as u8,
    }
}

/// Runs the daemon in the foreground until SIGTERM/SIGINT.
pub fn run(config_path: &Path) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Look for I/O readiness after every task poll, not every 61st:
        // with socket clients keeping tasks runnable, conntrack events and
        // dump datagrams otherwise waited for the reactor for tens of ms
        // (when the queue socket was read here too, the stall benchmark
        // measured p99 setup 18 ms under a query flood, vs 0.2 ms).
        .event_interval(1)
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(run_loop(config_path))
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The least time between the starts of two conntrack dumps.
const MIN_DUMP_GAP: Duration = Duration::from_secs(1);

/// When conntrack dumps run: at most one every `MIN_DUMP_GAP`, and one
/// wanted sooner waits for its turn (`due`).
struct DumpSchedule {
    last_start: Option<Instant>,
    due: Option<Instant>,
    /// When the dump under way started: the time its entries count at.
    at: Now,
}

impl DumpSchedule {
    /// Asks for a dump: started now when its turn has come, else due then.
    fn want(&mut self, ct: &mut Conntrack, engine: &Mutex<Engine>, now: Now) {
        if ct.dumper.dumping() {
            return;
        }
        let turn = self
            .last_start
            .map_or_else(Instant::now, |t| t + MIN_DUMP_GAP);
        if turn <= Instant::now() {
            self.start(ct, engine, now);
        } else {
            self.due = Some(self.due.map_or(turn, |d| d.min(turn)));
        }
    }

    /// Starts a conntrack dump (its entries arrive in the loop's dump
    /// branch).
    /// The request is sent (the kernel fills the first datagram inside
    /// that send) without the engine locked.
    fn start(&mut self, ct: &mut Conntrack, engine: &Mutex<Engine>, now: Now) {
        self.due = None;
        if ct.dumper.dumping() {
            return;
        }
        self.last_start = Some(Instant::now());
        self.at = now;
        match ct.dumper.start() {
            Ok(()) => lock(engine).begin_dump(),
            Err(e) => eprintln!("phonehome: conntrack dump failed: {e}"),
        }
    }
}

/// The rows a query that shows byte counts asks for (after a dump).
fn rows_reply(query: Query, engine: &Engine, clock: &Clock) -> Reply {
    match query {
        Query::Devices { device, range } => {
            Reply::Devices(engine.device_rows(device.as_deref(), range, clock.now()))
        }
        Query::Owners { device, range } => {
            Reply::Owners(engine.owner_rows(device.as_deref(), range, clock.now()))
        }
        Query::Flows { device } => Reply::Flows(engine.flow_rows(device.as_deref())),
        _ => Reply::Error {
            message: "not a query for rows".into(),
        },
    }
}

/// Queries waiting for byte counts: the ones a dump under way will answer
/// (they came before it started) and the ones the next dump will.
type Waiting = Vec<(Query, tokio::sync::oneshot::Sender<Reply>)>;

async fn run_loop(config_path: &Path) -> Result<(), String> {
    let mut cfg = Config::load(config_path).map_err(|e| e.to_string())?;
    if let Some(path) = &cfg.db {
        let db = crate::owners::db::OwnerDb::load(path)
            .map_err(|e| format!("owner database refused: {e}"))?;
        eprintln!(
            "phonehome: owner database {}: {} domains, {} + {} address ranges, {} bytes",
            path.display(),
            db.domain_count(),
            db.range_count().0,
            db.range_count().1,
            db.file_size()
        );
        crate::owners::install_database(db);
    }
    for w in cfg.warnings() {
        eprintln!("phonehome: warning: {w}");
    }
    if let Err(e) = conntrack::enable_accounting() {
        eprintln!(
            "phonehome: warning: cannot enable conntrack accounting ({e}); byte counts stay 0"
        );
    }
    let queue = Queue::bind(QueueConfig {
        queue: cfg.queue,
        copy_range: cfg.copy_range,
        max_len: 4096,
        want_conntrack: true,
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut ct = Conntrack::open().map_err(|e| format!("cannot open ctnetlink: {e}"))?;
    let socket_gid = cfg.socket_group.as_deref().and_then(api::group_id);
    let listener = api::bind(&cfg.socket, socket_gid)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.socket.display()))?;
    let (tx, mut rx) = mpsc::channel::<api::Pending>(64);
    let access = api::Access {
        admin_gid: cfg.admin_group.as_deref().and_then(api::group_id),
    };
    let (decisions, _) = tokio::sync::broadcast::channel::<crate::stats::FlowRow>(1024);
    tokio::spawn(api::serve(listener, tx, access, decisions.clone()));

    let clock = Clock {
        start: Instant::now(),
    };
    let mut engine = Engine::new(&cfg);
    engine.defer_records = true;
    engine.devices.refresh_leases();
    // Statistics from the last run: the newest valid of the tmpfs and the
    // persistent copy; a damaged file is reported and skipped.
    let state_paths: Vec<&Path> = [cfg.state_tmp.as_deref(), cfg.state.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let mut restored_live = false;
    let (restored, problems) = state::load_newest(&state_paths);
    for p in problems {
        eprintln!("phonehome: state file skipped: {p}");
    }
    if let Some((snapshot, saved_at)) = restored {
        eprintln!(
            "phonehome: statistics restored ({} device × owner pairs, saved at {saved_at})",
            snapshot.pairs()
        );
        let live = snapshot.live.len();
        engine.restore(snapshot, clock.now());
        if live > 0 {
            eprintln!("phonehome: {live} live connections taken back");
        }
        restored_live = live > 0;
    }
    // IPFIX: finished flows go out after every burst of events and tick.
    let exporter = match cfg.ipfix_collector {
        Some(addr) => {
            let bind: std::net::SocketAddr = if addr.is_ipv6() {
                "[::]:0".parse().expect("address")
            } else {
                "0.0.0.0:0".parse().expect("address")
            };
            let socket =
                std::net::UdpSocket::bind(bind).map_err(|e| format!("IPFIX socket: {e}"))?;
            socket
                .set_nonblocking(true)
                .map_err(|e| format!("IPFIX socket: {e}"))?;
            eprintln!("phonehome: exporting finished flows over IPFIX to {addr}");
            Some((socket, addr))
        }
        None => None,
    };
    let mut ipfix_sequence = 0u32;
    let mut tmp_flushed = Instant::now();
    let mut state_flushed = Instant::now();
    let sig = |kind| signal(kind).map_err(|e| format!("cannot install signal handler: {e}"));
    let mut hup = sig(SignalKind::hangup())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut events_buf = vec![0u8; 64 * 1024];
    let mut rejudged = 0u64;
    let mut answered_by_dump: Waiting = Vec::new();
    let mut answers_due: std::collections::VecDeque<(Query, tokio::sync::oneshot::Sender<Reply>)> =
        std::collections::VecDeque::new();
    let mut dumps = DumpSchedule {
        last_start: None,
        due: None,
        at: clock.now(),
    };
    let mut waiting_for_dump: Waiting = Vec::new();

    let engine = Arc::new(Mutex::new(engine));
    if restored_live {
        // Taken back as they were decided: judged again under this config.
        rejudged += rejudge(&engine, &mut ct, &clock).await;
    }
    let rules = lock(&engine).policy.rule_count();
    let mark_mode = queue.mode;
    let verdicts = Verdicts::new(cfg.queue, queue.mode, MARK_MASK);
    let queue = queue
        .into_blocking()
        .map_err(|e| format!("queue socket: {e}"))?;
    let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::Builder::new()
        .name("verdicts".into())
        .stack_size(256 << 10)
        .spawn({
            let (engine, decisions) = (engine.clone(), decisions.clone());
            move || {
                let e = verdict_thread(queue, verdicts, &engine, clock, &decisions);
                let _ = failed_tx.send(e);
            }
        })
        .map_err(|e| format!("cannot start the verdict thread: {e}"))?;
    eprintln!(
        "phonehome: queue {} bound ({} verdicts), {} rules, {} mode, socket {}",
        cfg.queue,
        mark_mode_name(mark_mode),
        rules,
        mode_name(cfg.mode),
        cfg.socket.display()
    );

    loop {
        tokio::select! {
            r = &mut failed_rx => {
                let _ = std::fs::remove_file(&cfg.socket);
                let now = clock.now();
                save_state(cfg.state_tmp.as_deref(), &engine, now.unix);
                save_state(cfg.state.as_deref(), &engine, now.unix);
                return Err(r.unwrap_or_else(|_| "the verdict thread stopped".into()));
            }
            r = ct.events.recv(&mut events_buf) => {
                match r {
                    Ok(n) => {
                        let now = clock.now();
                        let mut engine = lock(&engine);
                        for msg in netlink::messages(&events_buf[..n]) {
                            if let Some((IPCTNL_MSG_CT_DELETE, body)) = conntrack::entry_of(&msg) {
                                engine.on_ct_destroy(&conntrack::parse_entry(body), now);
                            }
                        }
                        send_decided(&mut engine, &decisions);
                        let records = take_exports(&exporter, &mut engine);
                        drop(engine);
                        export_flows(&exporter, records, &mut ipfix_sequence, &cfg, now.unix);
                    }
                    Err(e) => eprintln!("phonehome: conntrack events: {e}"),
                }
            }
            _ = std::future::ready(()), if !answers_due.is_empty() => {
                if let Some((query, reply_to)) = answers_due.pop_front() {
                    let reply = rows_reply(query, &lock(&engine), &clock);
                    let _ = reply_to.send(reply);
                }
            }
            r = ct.dumper.step(), if ct.dumper.dumping() => {
                let mut guard = lock(&engine);
                // A failed dump listed only part of the table: its end
                // must not finish the flows it did not reach.
                let (done, complete) = match r {
                    Ok((entries, done)) => {
                        for entry in &entries {
                            guard.on_ct_entry(entry, dumps.at);
                        }
                        (done, done)
                    }
                    Err(e) => {
                        eprintln!("phonehome: conntrack dump failed: {e}");
                        (true, false)
                    }
                };
                if done {
                    if complete {
                        guard.end_dump(clock.now());
                        send_decided(&mut guard, &decisions);
                    }
                    drop(guard);
                    // Answered one per loop turn (below), so building many
                    // replies never holds the engine long.
                    answers_due.extend(answered_by_dump.drain(..));
                    if !waiting_for_dump.is_empty() {
                        std::mem::swap(&mut answered_by_dump, &mut waiting_for_dump);
                        dumps.want(&mut ct, &engine, clock.now());
                    }
                }
            }
            Some((query, reply_to)) = rx.recv() => {
                // Byte counts are read fresh from conntrack for these: the
                // answer waits for a dump that starts after the query came,
                // while the loop goes on.
                if matches!(query, Query::Devices { .. } | Query::Owners { .. } | Query::Flows { .. }) {
                    if ct.dumper.dumping() {
                        waiting_for_dump.push((query, reply_to));
                    } else {
                        // Answered by the next dump, now or when its turn comes.
                        answered_by_dump.push((query, reply_to));
                        dumps.want(&mut ct, &engine, clock.now());
                    }
                    continue;
                }
                let reply = match query {
                    Query::Status => {
                        let kernel_queue = proc_queue_row(cfg.queue).unwrap_or_default();
                        let rss = rss_bytes();
                        let engine = lock(&engine);
                        Reply::Status(StatusRow {
                            version: env!("CARGO_PKG_VERSION").to_string(),
                            uptime_s: clock.start.elapsed().as_secs(),
                            mode: mode_name(engine.policy.mode).to_string(),
                            mark_mode: mark_mode_name(mark_mode).to_string(),
                            queue: cfg.queue,
                            packets: engine.counters.packets,
                            malformed: engine.counters.malformed,
                            verdicts_accept: engine.counters.verdicts_accept,
                            verdicts_drop: engine.counters.verdicts_drop,
                            flows_active: engine.flows.len() as u64,
                            flows_evicted: engine.flows.evicted,
                            dns_names: engine.names.len() as u64,
                            dns_sinkholed: engine.counters.sinkholed,
                            gave_up: engine.counters.gave_up,
                            nameless: engine.counters.nameless,
                            dns_refused: engine.counters.dns_refused,
                            pending_bytes: engine.flows.pending_bytes() as u64,
                            pending_overflow: engine.counters.pending_overflow,
                            queue_dropped: kernel_queue.queue_dropped,
                            queue_user_dropped: kernel_queue.user_dropped,
                            rejudged,
                            rules: engine.policy.rule_count() as u64,
                            rss_bytes: rss,
                        })
                    }
                    Query::Devices { .. } | Query::Owners { .. } | Query::Flows { .. } => {
                        rows_reply(query, &lock(&engine), &clock)
                    }
                    Query::Watch { .. } => Reply::Error {
                        message: "watch is answered as a stream by the socket server".into(),
                    },
                    Query::Reload => {
                        let reply = reload(&mut cfg, &engine);
                        if matches!(reply, Reply::Reloaded { .. }) {
                            rejudged += rejudge(&engine, &mut ct, &clock).await;
                        }
                        reply
                    }
                };
                let _ = reply_to.send(reply);
            }
            _ = tokio::time::sleep_until(dumps.due.unwrap_or_else(Instant::now).into()), if dumps.due.is_some() => {
                dumps.start(&mut ct, &engine, clock.now());
            }
            _ = tick.tick() => {
                let now = clock.now();
                dumps.want(&mut ct, &engine, now);
                let (records, want_neighbours) = {
                    let mut engine = lock(&engine);
                    engine.stats.expire(now.unix);
                    engine.devices.refresh_leases();
                    (take_exports(&exporter, &mut engine), engine.want_neighbours)
                };
                export_flows(&exporter, records, &mut ipfix_sequence, &cfg, now.unix);
                if tmp_flushed.elapsed() >= Duration::from_secs(60) {
                    tmp_flushed = Instant::now();
                    save_state(cfg.state_tmp.as_deref(), &engine, now.unix);
                }
                if state_flushed.elapsed() >= Duration::from_secs(cfg.state_interval * 60) {
                    state_flushed = Instant::now();
                    save_state(cfg.state.as_deref(), &engine, now.unix);
                }
                if want_neighbours {
                    match devices::dump_neighbours().await {
                        Ok(entries) => lock(&engine).learn_neighbours(entries),
                        Err(e) => eprintln!("phonehome: neighbour table: {e}"),
                    }
                }
            }
            _ = hup.recv() => {
                let reply = reload(&mut cfg, &engine);
                match reply {
                    Reply::Error { message } => eprintln!("phonehome: {message}"),
                    _ => rejudged += rejudge(&engine, &mut ct, &clock).await,
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let now = clock.now();
    save_state(cfg.state_tmp.as_deref(), &engine, now.unix);
    save_state(cfg.state.as_deref(), &engine, now.unix);
    eprintln!("phonehome: stopped");
    Ok(())
}

/// The engine, shared by the event loop and the verdict thread. A panic
/// while holding it aborts the daemon (release builds), so a poisoned lock
/// is only ever seen in tests; its data is used as it is.
fn lock(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}

/// The verdict thread: receives each burst of queued packets (the engine
/// not locked while it waits), then with the engine locked judges it,
/// sends its verdicts, records the burst's decisions and hands them to
/// `watch` clients. Returns only when the queue socket fails, with the
/// reason.
fn verdict_thread(
    mut queue: crate::queue::VerdictQueue,
    mut verdicts: Verdicts,
    engine: &Mutex<Engine>,
    clock: Clock,
    decisions: &tokio::sync::broadcast::Sender<crate::stats::FlowRow>,
) -> String {
    let capture: Option<PathBuf> = std::env::var_os("PHONEHOME_CAPTURE").map(PathBuf::from);
    let mut captured = 0u32;
    loop {
        if let Err(e) = queue.receive() {
            return format!("queue socket failed: {e}");
        }
        let now = clock.now();
        let mut engine = lock(engine);
        engine.watching = decisions.receiver_count() > 0;
        queue.each_packet(|datagram, parsed| {
            if let Some(dir) = &capture {
                if captured < 2000 {
                    captured += 1;
                    let _ = std::fs::write(dir.join(format!("nfq-{captured:04}.bin")), datagram);
                }
            }
            match parsed {
                Ok(pkt) => {
                    let verdict = engine.on_packet(&pkt, now);
                    verdicts.push_packet(&pkt, verdict);
                }
                // Without a packet id there is nothing to answer; the
                // kernel's queue timeout is not a thing, so log loudly.
                Err(e) => {
                    engine.counters.malformed += 1;
                    eprintln!("phonehome: unreadable queue message: {e}");
                }
            }
        });
        // Sent with the engine still locked: a reload's re-marking
        // (`rejudge`) then never races a verdict of the old policy in
        // flight, and nothing sees a decision before it is recorded.
        queue.send(&mut verdicts);
        // The burst's verdicts are out: now its bookkeeping.
        engine.counters.verdicts_accept = verdicts.accepted;
        engine.counters.verdicts_drop = verdicts.dropped;
        engine.record_decided();
        send_decided(&mut engine, decisions);
    }
}

/// Decisions to `watch` clients (none listening: none kept). Connections
/// that end undecided are decided on the event loop's side.
fn send_decided(
    engine: &mut Engine,
    decisions: &tokio::sync::broadcast::Sender<crate::stats::FlowRow>,
) {
    for row in engine.decided.drain(..) {
        let _ = decisions.send(row);
    }
}

/// The finished flows waiting for the IPFIX exporter (none kept without
/// one).
fn take_exports(
    exporter: &Option<(std::net::UdpSocket, std::net::SocketAddr)>,
    engine: &mut Engine,
) -> Vec<crate::ipfix::FlowRecord> {
    let records = std::mem::take(&mut engine.exports);
    if exporter.is_none() {
        return Vec::new();
    }
    records
}

/// Sends finished flows to the IPFIX collector.
/// A send that fails (no route, buffer full) loses those records, as UDP
/// export does; the sequence number tells the collector.
fn export_flows(
    exporter: &Option<(std::net::UdpSocket, std::net::SocketAddr)>,
    records: Vec<crate::ipfix::FlowRecord>,
    sequence: &mut u32,
    cfg: &Config,
    now: u64,
) {
    let Some((socket, addr)) = exporter else {
        return;
    };
    if records.is_empty() {
        return;
    }
    for datagram in crate::ipfix::encode(&records, sequence, now as u32, cfg.ipfix_domain) {
        if let Err(e) = socket.send_to(&datagram, addr) {
            eprintln!("phonehome: IPFIX to {addr}: {e}");
        }
    }
}

/// Writes the statistics to `path` (when configured): the snapshot is taken
/// under the lock, the file written outside it. A failure is logged, the
/// daemon goes on.
fn save_state(path: Option<&Path>, engine: &Mutex<Engine>, now: u64) {
    if let Some(path) = path {
        let snapshot = lock(engine).snapshot();
        if let Err(e) = state::save(path, &snapshot, now) {
            eprintln!("phonehome: cannot save statistics: {e}");
        }
    }
}

/// After a reload: live connections whose verdict changed get their new
/// ct mark, so the kernel enforces it from their next packet. Returns how
/// many changed. The engine is locked only to list them.
async fn rejudge(engine: &Mutex<Engine>, ct: &mut Conntrack, clock: &Clock) -> u64 {
    let changed = lock(engine).rejudge(clock.now());
    let mut n = 0;
    for (tuple, bits) in &changed {
        match ct.control.set_mark(tuple, *bits, MARK_MASK).await {
            Ok(()) => n += 1,
            // Gone meanwhile (ENOENT) is fine; anything else is worth a line.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => eprintln!("phonehome: cannot re-mark {tuple}: {e}"),
        }
    }
    if n > 0 {
        eprintln!("phonehome: {n} live connections re-judged under the new policy");
    }
    n
}

/// Re-reads the config (the file read and parsed without the engine
/// locked); a bad one is refused and the running policy stays.
fn reload(cfg: &mut Config, engine: &Mutex<Engine>) -> Reply {
    match Config::load(&cfg.path) {
        Ok(new) => {
            if new.queue != cfg.queue
                || new.socket != cfg.socket
                || new.copy_range != cfg.copy_range
                || new.db != cfg.db
            {
                eprintln!(
                    "phonehome: queue, socket, copy_range and db changes take effect on restart"
                );
            }
            for w in new.warnings() {
                eprintln!("phonehome: warning: {w}");
            }
            let rules = {
                let mut engine = lock(engine);
                engine.reload(&new);
                engine.policy.rule_count() as u64
            };
            eprintln!("phonehome: reloaded {}: {rules} rules", new.path.display());
            *cfg = Config {
                queue: cfg.queue,
                socket: cfg.socket.clone(),
                copy_range: cfg.copy_range,
                db: cfg.db.clone(),
                ..new
            };
            Reply::Reloaded { rules }
        }
        Err(e) => Reply::Error {
            message: format!("config refused, keeping the running policy: {e}"),
        },
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Observe => "observe",
    }
}

fn mark_mode_name(mode: MarkMode) -> &'static str {
    match mode {
        MarkMode::Conntrack => "conntrack",
        MarkMode::Repeat => "repeat",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        // POSIX; glibc's localtime_r does not re-read TZ by itself.
        fn tzset();
    }

    fn set_tz(tz: &str) {
        std::env::set_var("TZ", tz);
        // SAFETY: no other test touches TZ or the C library's zone state.
        unsafe { tzset() };
    }

    /// Also run under qemu for the 32-bit targets, where the C library's
    /// 32-bit compatibility `localtime_r` is the one called.
    #[test]
    fn local_time_reads_the_c_librarys_zone() {
        set_tz("UTC0");
        // 1970-01-05 was a Monday.
        let t = local_time(4 * 86_400 + 13 * 3600 + 7 * 60);
        assert_eq!((t.weekday, t.minute_of_day), (0, 13 * 60 + 7));
        set_tz("CET-1");
        let t = local_time(4 * 86_400 + 23 * 3600 + 30 * 60);
        assert_eq!(
            (t.weekday, t.minute_of_day),
            (1, 30),
            "Tuesday 00:30 in CET"
        );
        // 2026-11-26, a Thursday (32-bit time_t holds it until 2038).
        set_tz("UTC0");
        assert_eq!(local_time(1_795_651_200).weekday, 3);
    }
}
