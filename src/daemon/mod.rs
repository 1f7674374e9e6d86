//! Daemon: the I/O edge around the engine. One single-threaded tokio
//! runtime (routers have one or two cores) waits on the queue socket,
//! conntrack destroy events, API queries, a housekeeping tick and signals
//! (SIGHUP reloads, SIGTERM/SIGINT stop). The engine is owned by this loop
//! alone, so no locks.
//!
//! Nothing here waits inside the loop for longer than one message's work:
//! conntrack dumps (every 5 s, and for queries that show byte counts) are
//! streamed a datagram at a time between queue bursts, and those queries
//! are answered when a dump that started after them ends. Dumps start at
//! most once a second (`MIN_DUMP_GAP`): a socket reader asking back to back
//! shares them instead of keeping the kernel dumping (each dump datagram
//! costs the kernel ~0.4 ms; the stall benchmark measured verdicts waiting
//! 13 ms at the median when every query had its own).
//!
//! Limits: re-marking connections after a reload and the neighbour-table
//! dump (when a device is unknown, at most every 5 s) are awaited inline;
//! both are bounded (the changed connections, the kernel's neighbour
//! table).

pub mod api;
mod clock;
mod dumps;
mod edges;
mod hook;

#[cfg(feature = "pcap")]
pub(crate) use clock::local_time;
pub use clock::local_time_now;
use clock::Clock;
use dumps::{rows_reply, DumpSchedule, Waiting};
use edges::NewOwnerLog;
use edges::{
    export_flows, ipfix_socket, mark_mode_name, mode_name, rejudge, reload, save_state, LeasesFile,
};
use hook::NewOwnerHook;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::engine::{Engine, Event};
use crate::policy::config::Config;
use crate::policy::firewall::MARK_MASK;
use crate::report::state;
use crate::report::stats::StatusRow;
use crate::wire::conntrack::{self, Conntrack, IPCTNL_MSG_CT_DELETE};
use crate::wire::neighbours::dump_neighbours;
use crate::wire::netlink;
use crate::wire::nfqueue::{proc_queue_row, Queue, QueueConfig, Verdicts};
use api::{Query, Reply};

/// Runs the daemon in the foreground until SIGTERM/SIGINT.
pub fn run(config_path: &Path) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Look for I/O readiness after every task poll, not every 61st:
        // with socket clients keeping tasks runnable, the queue socket's
        // packets otherwise waited for the reactor for tens of ms (the
        // stall benchmark: p99 setup 18 ms under a query flood, vs 0.2 ms).
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

/// A query waiting for its answer, and where the answer goes.
type Asked = (Query, tokio::sync::oneshot::Sender<Reply>);

/// The daemon between events: the engine and the I/O around it. Each
/// event the loop waits on has its handler here.
struct Daemon {
    cfg: Config,
    engine: Engine,
    clock: Clock,
    queue: Queue,
    verdicts: Verdicts,
    ct: Conntrack,
    /// Decisions to `watch` clients.
    decisions: tokio::sync::broadcast::Sender<Reply>,
    /// IPFIX: finished flows go out after every burst of events and tick.
    exporter: Option<(std::net::UdpSocket, std::net::SocketAddr)>,
    ipfix_sequence: u32,
    tmp_flushed: Instant,
    state_flushed: Instant,
    /// `PHONEHOME_CAPTURE`: a directory the first 2,000 queue datagrams
    /// are written to (for fixtures).
    capture: Option<PathBuf>,
    captured: u32,
    rejudged: u64,
    /// Queries a dump under way will answer (they came before it started).
    answered_by_dump: Waiting,
    /// Queries the next dump will answer.
    waiting_for_dump: Waiting,
    /// Answers to build, one per loop turn.
    answers_due: std::collections::VecDeque<Asked>,
    dumps: DumpSchedule,
    events_buf: Vec<u8>,
    /// The dnsmasq lease file, read when it changes.
    leases: LeasesFile,
    /// The engine asked for the neighbour table (dumped on the next tick).
    neighbours_wanted: bool,
    /// Finished-flow records for the IPFIX collector, sent after every
    /// burst of conntrack events and every tick.
    exports: Vec<crate::report::ipfix::FlowRecord>,
    /// The log lines for owners a device reaches for the first time.
    new_owners: NewOwnerLog,
    /// `option on_new_owner`: its runs, off the packet path.
    hook: NewOwnerHook,
}

async fn run_loop(config_path: &Path) -> Result<(), String> {
    let (mut d, mut queries) = Daemon::start(config_path).await?;
    let sig = |kind| signal(kind).map_err(|e| format!("cannot install signal handler: {e}"));
    let mut hup = sig(SignalKind::hangup())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        d.drain_events();
        d.engine.set_watching(d.decisions.receiver_count() > 0);
        let dump_due = d.dumps.due;
        tokio::select! {
            r = d.queue.process_burst(&mut d.verdicts, |datagram, parsed, v| {
                if let Some(dir) = &d.capture {
                    if d.captured < 2000 {
                        d.captured += 1;
                        let name = format!("nfq-{:04}.bin", d.captured);
                        let _ = std::fs::write(dir.join(name), datagram);
                    }
                }
                match parsed {
                    Ok(queued) => {
                        let verdict = d.engine.on_queued(&queued, d.clock.now());
                        v.push_packet(&queued, verdict);
                    }
                    // Without a packet id there is nothing to answer; the
                    // kernel's queue timeout is not a thing, so log loudly.
                    Err(e) => {
                        let _ = d.engine.on_unreadable();
                        eprintln!("phonehome: unreadable queue message: {e}");
                    }
                }
            }) => {
                r.map_err(|e| format!("queue socket failed: {e}"))?;
                d.after_burst();
            }
            r = d.ct.events.recv(&mut d.events_buf) => d.on_conntrack_events(r),
            _ = std::future::ready(()), if !d.answers_due.is_empty() => d.answer_one(),
            r = d.ct.dumper.step(), if d.ct.dumper.dumping() => d.on_dump_step(r),
            Some(asked) = queries.recv() => d.on_query(asked).await,
            _ = tokio::time::sleep_until(dump_due.unwrap_or_else(Instant::now).into()), if dump_due.is_some() => {
                d.dumps.start(&mut d.ct, &mut d.engine, d.clock.now());
            }
            _ = tick.tick() => d.on_tick().await,
            _ = hup.recv() => d.on_hangup().await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    d.stop();
    Ok(())
}

impl Daemon {
    /// Loads the config and owner database, binds the queue, conntrack
    /// and the socket (its server runs as a task, sending queries to the
    /// receiver returned), and takes back the last run's statistics.
    async fn start(config_path: &Path) -> Result<(Daemon, mpsc::Receiver<Asked>), String> {
        let cfg = Config::load(config_path).map_err(|e| e.to_string())?;
        cfg.check_groups(|g| api::group_id(g).is_some())
            .map_err(|e| e.to_string())?;
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
        let verdicts = Verdicts::new(cfg.queue, queue.mode, MARK_MASK);
        let ct = Conntrack::open().map_err(|e| format!("cannot open ctnetlink: {e}"))?;
        let socket_gid = cfg.socket_group.as_deref().and_then(api::group_id);
        let listener = api::bind(&cfg.socket, socket_gid)
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.socket.display()))?;
        let (tx, rx) = mpsc::channel::<api::Pending>(64);
        let access = api::Access {
            admin_gid: cfg.admin_group.as_deref().and_then(api::group_id),
        };
        let (decisions, _) = tokio::sync::broadcast::channel::<Reply>(1024);
        tokio::spawn(api::serve(listener, tx, access, decisions.clone()));
        let exporter = match cfg.ipfix_collector {
            Some(addr) => Some(ipfix_socket(addr)?),
            None => None,
        };
        let clock = Clock {
            start: Instant::now(),
        };
        let mut engine = Engine::new(&cfg);
        let mut leases = LeasesFile::new(&cfg.leases);
        if let Some(text) = leases.changed() {
            engine.learn_leases(&text);
        }
        let dumps = DumpSchedule {
            last_start: None,
            due: None,
            at: clock.now(),
        };
        let mut d = Daemon {
            cfg,
            engine,
            clock,
            queue,
            verdicts,
            ct,
            decisions,
            exporter,
            ipfix_sequence: 0,
            tmp_flushed: Instant::now(),
            state_flushed: Instant::now(),
            capture: std::env::var_os("PHONEHOME_CAPTURE").map(PathBuf::from),
            captured: 0,
            rejudged: 0,
            answered_by_dump: Vec::new(),
            waiting_for_dump: Vec::new(),
            answers_due: std::collections::VecDeque::new(),
            dumps,
            events_buf: vec![0u8; 64 * 1024],
            leases,
            neighbours_wanted: false,
            exports: Vec::new(),
            new_owners: NewOwnerLog::default(),
            hook: NewOwnerHook::default(),
        };
        if d.restore_state() {
            // Taken back as they were decided: judged again under this config.
            d.rejudged += rejudge(&mut d.engine, &mut d.ct, &d.clock).await;
        }
        eprintln!(
            "phonehome: queue {} bound ({} verdicts), {} rules, {} mode, socket {}",
            d.cfg.queue,
            mark_mode_name(d.queue.mode),
            d.engine.policy().rule_count(),
            mode_name(d.cfg.mode),
            d.cfg.socket.display()
        );
        Ok((d, rx))
    }

    /// Statistics from the last run: the newest valid of the tmpfs and the
    /// persistent copy; a damaged file is reported and skipped. True when
    /// live connections were taken back.
    fn restore_state(&mut self) -> bool {
        let paths: Vec<&Path> = [self.cfg.state_tmp.as_deref(), self.cfg.state.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let (restored, problems) = state::load_newest(&paths);
        for p in problems {
            eprintln!("phonehome: state file skipped: {p}");
        }
        let Some((snapshot, saved_at)) = restored else {
            return false;
        };
        eprintln!(
            "phonehome: statistics restored ({} device × owner pairs, saved at {saved_at})",
            snapshot.pairs()
        );
        let live = snapshot.live.len();
        self.engine.restore(snapshot, self.clock.now());
        if live > 0 {
            eprintln!("phonehome: {live} live connections taken back");
        }
        live > 0
    }

    /// After a burst of queued packets: what the engine has to say.
    fn after_burst(&mut self) {
        self.drain_events();
    }

    /// Takes the engine's events: decisions to `watch` clients (none
    /// listening: none kept), finished flows for the exporter, the wish
    /// for the neighbour table, and owners a device reached for the first
    /// time (a log line each).
    fn drain_events(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Decided(row) => {
                    let _ = self.decisions.send(Reply::Decision(row));
                }
                Event::FlowFinished(record) => {
                    if self.exports.len() < crate::engine::MAX_EVENTS {
                        self.exports.push(record);
                    }
                }
                Event::NeedNeighbours => self.neighbours_wanted = true,
                Event::NewOwner(first) => {
                    self.new_owners.log(&first.device, &first.owner);
                    if let Some(hook) = &self.cfg.on_new_owner {
                        self.hook.offer(hook, &first, first.time / 60);
                    }
                    let _ = self.decisions.send(Reply::NewOwner(first));
                }
            }
        }
    }

    /// Conntrack destroy events: the flows they end are finished (and
    /// exported).
    fn on_conntrack_events(&mut self, r: std::io::Result<usize>) {
        match r {
            Ok(n) => {
                let now = self.clock.now();
                for msg in netlink::messages(&self.events_buf[..n]) {
                    if let Some((IPCTNL_MSG_CT_DELETE, body)) = conntrack::entry_of(&msg) {
                        self.engine
                            .on_ct_destroy(&conntrack::parse_entry(body), now);
                    }
                }
                self.export(now.unix);
            }
            Err(e) => eprintln!("phonehome: conntrack events: {e}"),
        }
    }

    /// Builds one answer a finished dump is due (one per loop turn, so
    /// building many replies never holds queued packets).
    fn answer_one(&mut self) {
        if let Some((query, reply_to)) = self.answers_due.pop_front() {
            let reply = rows_reply(query, &self.engine, &self.clock, &|| self.status());
            let _ = reply_to.send(reply);
        }
    }

    /// One datagram of a conntrack dump. A failed dump listed only part of
    /// the table: its end must not finish the flows it did not reach.
    fn on_dump_step(&mut self, r: std::io::Result<(Vec<conntrack::CtEntry>, bool)>) {
        let (done, complete) = match r {
            Ok((entries, done)) => {
                for entry in &entries {
                    self.engine.on_ct_entry(entry, self.dumps.at);
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
                self.engine.end_dump(self.clock.now());
            }
            self.answers_due.extend(self.answered_by_dump.drain(..));
            if !self.waiting_for_dump.is_empty() {
                std::mem::swap(&mut self.answered_by_dump, &mut self.waiting_for_dump);
                self.dumps
                    .want(&mut self.ct, &mut self.engine, self.clock.now());
            }
        }
    }

    /// A socket query. Byte counts are read fresh from conntrack for the
    /// row queries: the answer waits for a dump that starts after the query
    /// came, while the loop goes on.
    async fn on_query(&mut self, (query, reply_to): Asked) {
        if matches!(
            query,
            Query::Devices { .. }
                | Query::Owners { .. }
                | Query::Flows { .. }
                | Query::Series { .. }
                | Query::Report { .. }
        ) {
            if self.ct.dumper.dumping() {
                self.waiting_for_dump.push((query, reply_to));
            } else {
                // Answered by the next dump, now or when its turn comes.
                self.answered_by_dump.push((query, reply_to));
                self.dumps
                    .want(&mut self.ct, &mut self.engine, self.clock.now());
            }
            return;
        }
        let reply = match query {
            Query::Status => Reply::Status(self.status()),
            Query::Devices { .. }
            | Query::Owners { .. }
            | Query::Flows { .. }
            | Query::Series { .. }
            | Query::Report { .. } => {
                rows_reply(query, &self.engine, &self.clock, &|| self.status())
            }
            Query::Watch { .. } => Reply::Error {
                message: "watch is answered as a stream by the socket server".into(),
            },
            Query::Reload => {
                let reply = reload(&mut self.cfg, &mut self.engine);
                self.leases.set_path(&self.cfg.leases);
                if matches!(reply, Reply::Reloaded { .. }) {
                    self.rejudged += rejudge(&mut self.engine, &mut self.ct, &self.clock).await;
                }
                reply
            }
        };
        let _ = reply_to.send(reply);
    }

    fn status(&self) -> StatusRow {
        let engine = &self.engine;
        let kernel_queue = proc_queue_row(self.cfg.queue).unwrap_or_default();
        StatusRow {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: self.clock.start.elapsed().as_secs(),
            mode: mode_name(engine.policy().mode).to_string(),
            mark_mode: mark_mode_name(self.verdicts.mode()).to_string(),
            queue: self.cfg.queue,
            packets: engine.counters().packets,
            malformed: engine.counters().malformed,
            verdicts_accept: self.verdicts.accepted,
            verdicts_drop: self.verdicts.dropped,
            flows_active: engine.flow_count() as u64,
            flows_evicted: engine.flows_evicted(),
            dns_names: engine.dns_name_count() as u64,
            dns_sinkholed: engine.counters().sinkholed,
            gave_up: engine.counters().gave_up,
            nameless: engine.counters().nameless,
            dns_refused: engine.counters().dns_refused,
            pending_bytes: engine.pending_bytes() as u64,
            pending_overflow: engine.counters().pending_overflow,
            queue_dropped: kernel_queue.queue_dropped,
            queue_user_dropped: kernel_queue.user_dropped,
            rejudged: self.rejudged,
            new_owners: engine.new_owner_count(),
            rules: engine.policy().rule_count() as u64,
            rss_bytes: rss_bytes(),
        }
    }

    /// Every 5 s: a dump (byte counts), history expiry, export, the state
    /// files when due, the leases file and, when a device is unknown, the
    /// neighbour table.
    async fn on_tick(&mut self) {
        self.hook.reap();
        self.dumps
            .want(&mut self.ct, &mut self.engine, self.clock.now());
        let now = self.clock.now();
        self.engine.expire_history(now.unix);
        self.export(now.unix);
        if self.tmp_flushed.elapsed() >= Duration::from_secs(60) {
            self.tmp_flushed = Instant::now();
            save_state(self.cfg.state_tmp.as_deref(), &self.engine, now.unix);
        }
        if self.state_flushed.elapsed() >= Duration::from_secs(self.cfg.state_interval * 60) {
            self.state_flushed = Instant::now();
            save_state(self.cfg.state.as_deref(), &self.engine, now.unix);
        }
        if let Some(text) = self.leases.changed() {
            self.engine.learn_leases(&text);
        }
        if self.neighbours_wanted {
            match dump_neighbours().await {
                Ok(entries) => {
                    self.neighbours_wanted = false;
                    self.engine.learn_neighbours(entries);
                }
                // Tried again on the next tick (the engine asks only once).
                Err(e) => eprintln!("phonehome: neighbour table: {e}"),
            }
        }
    }

    /// SIGHUP: reload; a refused config is logged and the policy stays.
    async fn on_hangup(&mut self) {
        let reloaded = reload(&mut self.cfg, &mut self.engine);
        self.leases.set_path(&self.cfg.leases);
        match reloaded {
            Reply::Error { message } => eprintln!("phonehome: {message}"),
            _ => self.rejudged += rejudge(&mut self.engine, &mut self.ct, &self.clock).await,
        }
    }

    fn export(&mut self, now: u64) {
        self.drain_events();
        export_flows(
            &self.exporter,
            &mut self.exports,
            &mut self.ipfix_sequence,
            &self.cfg,
            now,
        );
    }

    /// SIGTERM/SIGINT: the socket goes, the statistics are saved.
    fn stop(&mut self) {
        let _ = std::fs::remove_file(&self.cfg.socket);
        let now = self.clock.now();
        save_state(self.cfg.state_tmp.as_deref(), &self.engine, now.unix);
        save_state(self.cfg.state.as_deref(), &self.engine, now.unix);
        eprintln!("phonehome: stopped");
    }
}
