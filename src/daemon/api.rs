//! Socket API: a Unix stream socket (mode 0660, group `socket_group`)
//! carrying CBOR messages, each framed by a 4-byte big-endian length. Every
//! request and response has a protocol `version`. Access: whoever can
//! connect may read; `reload` takes root or the `admin_group` (checked with
//! SO_PEERCRED). Limits guard the daemon: requests over `MAX_REQUEST`
//! bytes, undecodable requests and clients that stall past `CLIENT_TIMEOUT`
//! close that client only; at most `MAX_CLIENTS` at once, and when full the
//! client idle the longest is closed to make room, so slow or idle clients
//! cannot keep others out. `watch` streams count as idle (the oldest goes
//! first), and root and the admin group always get in: when every slot is
//! busy with a request, they take one of `PRIVILEGED_RESERVE` more.
//!
//! The daemon side is async (tokio) and forwards each query to the engine
//! over a channel; the client side is plain blocking std I/O for the CLI.
//!
//! Over 600 lines: the protocol's types and their wire form (`WireQuery`),
//! the server with its limits and the `watch` streams, and the client are
//! one protocol's two ends; a fifth is unit tests.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::report::stats::{
    DeviceRow, FlowRow, NewOwnerRow, OwnerRow, SeriesBy, StatusRow, TimeRange,
};

/// 3: a query is one flat CBOR map (`WireQuery`: `{"kind": "owners",
/// "device": ..., "since": ...}`), replies externally tagged maps
/// (`{"devices": [...]}`). Version 2's enum of struct variants for the
/// queries cost ~65 KB of decoder code on MIPS, version 1's internally
/// tagged enums ~90 KiB.
pub const PROTOCOL_VERSION: u32 = 3;
pub const MAX_REQUEST: usize = 64 * 1024;
pub const MAX_RESPONSE: usize = 256 << 20;
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CLIENTS: usize = 64;
/// Slots beyond `MAX_CLIENTS` that only root and the admin group may take.
pub const PRIVILEGED_RESERVE: usize = 8;

/// On the wire as a `WireQuery` (its `From`/`TryFrom` below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireQuery", into = "WireQuery")]
pub enum Query {
    Status,
    Devices {
        device: Option<String>,
        range: TimeRange,
    },
    Owners {
        device: Option<String>,
        range: TimeRange,
    },
    Flows {
        device: Option<String>,
    },
    /// Connections over time per owner, category or device: answered
    /// with the JSON text of `stats::SeriesRows` (`Reply::Json`).
    Series {
        device: Option<String>,
        range: TimeRange,
        by: SeriesBy,
        lines: u32,
    },
    /// The report document (docs/REPORT-DATA.md) as JSON text
    /// (`Reply::Json`), all of it from one moment of the daemon's state;
    /// with `before` and `after`, their comparison.
    Report {
        device: Option<String>,
        range: TimeRange,
        by: SeriesBy,
        lines: u32,
        before: Option<Side>,
        after: Option<Side>,
    },
    /// Streams decisions and first contacts as they happen until the
    /// client hangs up: only blocked decisions (`blocked`), or only first
    /// contacts (`new_owners`).
    Watch {
        device: Option<String>,
        blocked: bool,
        new_owners: bool,
    },
    Reload,
}

/// A query on the wire: its kind and every field any kind takes, all
/// optional, in one flat map. One struct of plain fields is what the
/// daemon decodes (small on MIPS); `Query` is what the code uses.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WireQuery {
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<u32>,
    #[serde(skip_serializing_if = "is_false")]
    blocked: bool,
    #[serde(skip_serializing_if = "is_false")]
    new_owners: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_label: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<Query> for WireQuery {
    fn from(q: Query) -> WireQuery {
        let mut w = WireQuery::default();
        let set_range = |w: &mut WireQuery, r: TimeRange| {
            w.since = r.since;
            w.until = r.until;
        };
        let by_name = |by: SeriesBy| match by {
            SeriesBy::Owner => "owner",
            SeriesBy::Category => "category",
            SeriesBy::Device => "device",
        };
        w.kind = match q {
            Query::Status => "status",
            Query::Reload => "reload",
            Query::Devices { device, range } => {
                w.device = device;
                set_range(&mut w, range);
                "devices"
            }
            Query::Owners { device, range } => {
                w.device = device;
                set_range(&mut w, range);
                "owners"
            }
            Query::Flows { device } => {
                w.device = device;
                "flows"
            }
            Query::Watch {
                device,
                blocked,
                new_owners,
            } => {
                w.device = device;
                w.blocked = blocked;
                w.new_owners = new_owners;
                "watch"
            }
            Query::Series {
                device,
                range,
                by,
                lines,
            } => {
                w.device = device;
                set_range(&mut w, range);
                w.by = Some(by_name(by).into());
                w.lines = Some(lines);
                "series"
            }
            Query::Report {
                device,
                range,
                by,
                lines,
                before,
                after,
            } => {
                w.device = device;
                set_range(&mut w, range);
                w.by = Some(by_name(by).into());
                w.lines = Some(lines);
                if let Some(b) = before {
                    (w.before_device, w.before_since, w.before_until) =
                        (b.device, b.range.since, b.range.until);
                    w.before_label = Some(b.label);
                }
                if let Some(a) = after {
                    (w.after_device, w.after_since, w.after_until) =
                        (a.device, a.range.since, a.range.until);
                    w.after_label = Some(a.label);
                }
                "report"
            }
        }
        .to_string();
        w
    }
}

impl TryFrom<WireQuery> for Query {
    type Error = String;

    fn try_from(w: WireQuery) -> Result<Query, String> {
        let range = TimeRange {
            since: w.since,
            until: w.until,
        };
        let by = match w.by.as_deref() {
            None => SeriesBy::Owner,
            Some(b) => SeriesBy::parse(b).ok_or_else(|| format!("unknown series key '{b}'"))?,
        };
        let side = |device, since, until, label: Option<String>| {
            label.map(|label| Side {
                device,
                range: TimeRange { since, until },
                label,
            })
        };
        Ok(match w.kind.as_str() {
            "status" => Query::Status,
            "reload" => Query::Reload,
            "devices" => Query::Devices {
                device: w.device,
                range,
            },
            "owners" => Query::Owners {
                device: w.device,
                range,
            },
            "flows" => Query::Flows { device: w.device },
            "watch" => Query::Watch {
                device: w.device,
                blocked: w.blocked,
                new_owners: w.new_owners,
            },
            "series" => Query::Series {
                device: w.device,
                range,
                by,
                lines: w.lines.unwrap_or(10),
            },
            "report" => Query::Report {
                device: w.device,
                range,
                by,
                lines: w.lines.unwrap_or(10),
                before: side(
                    w.before_device,
                    w.before_since,
                    w.before_until,
                    w.before_label,
                ),
                after: side(w.after_device, w.after_since, w.after_until, w.after_label),
            },
            other => return Err(format!("unknown query '{other}'")),
        })
    }
}

/// Only the version of a request, to answer another version's query.
#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

/// One side of a report's comparison: a device (or all), a range, and
/// what to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub device: Option<String>,
    pub range: TimeRange,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Status(StatusRow),
    Devices(Vec<DeviceRow>),
    Owners(Vec<OwnerRow>),
    Flows(Vec<FlowRow>),
    /// A document as JSON text (`series`, `report`): the daemon writes it,
    /// the CLI passes it on.
    Json(String),
    Reloaded {
        rules: u64,
    },
    /// One decision (a `watch` stream sends one per frame).
    Decision(FlowRow),
    /// A device reached an owner for the first time (`watch`).
    NewOwner(NewOwnerRow),
    /// A `watch` client fell behind; this many decisions were skipped.
    Skipped {
        decisions: u64,
    },
    Error {
        message: String,
    },
}

impl Reply {
    /// What kind of reply it is, for messages (without formatting its rows).
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Status(_) => "status",
            Reply::Devices(_) => "devices",
            Reply::Owners(_) => "owners",
            Reply::Flows(_) => "flows",
            Reply::Json(_) => "document",
            Reply::Reloaded { .. } => "reloaded",
            Reply::Decision(_) => "decision",
            Reply::NewOwner(_) => "new owner",
            Reply::Skipped { .. } => "skipped",
            Reply::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub reply: Reply,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(value, &mut body).expect("CBOR encoding to memory cannot fail");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    ciborium::from_reader(body).map_err(|e| format!("bad CBOR message: {e}"))
}

/// A query waiting for the engine's answer.
pub type Pending = (Query, oneshot::Sender<Reply>);

/// Binds the socket: replaces a stale file, sets mode 0660 and, when
/// given, the group whose members may connect.
pub fn bind(path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = group {
        // Without CAP_CHOWN (ujail) this works only when the socket already
        // has the group, e.g. from a setgid directory (the OpenWrt init
        // script makes its run directory one).
        if let Err(e) = std::os::unix::fs::chown(path, None, Some(gid)) {
            eprintln!(
                "phonehome: warning: cannot give {} to group {gid}: {e} (only root can connect)",
                path.display()
            );
        }
    }
    Ok(listener)
}

/// Who may do what on the socket. The file's mode (0660) and group decide
/// who can connect at all; then the peer's credentials (SO_PEERCRED) decide
/// per request: everyone who connects may read, changing the policy
/// (`reload`) takes root or a member of the admin group.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub admin_gid: Option<u32>,
}

impl Access {
    fn may_change(&self, uid: u32, gid: u32, pid: Option<i32>) -> bool {
        if uid == 0 {
            return true;
        }
        let Some(admin) = self.admin_gid else {
            return false;
        };
        gid == admin || pid.is_some_and(|p| supplementary_groups(p).contains(&admin))
    }
}

/// The supplementary groups of a process (`Groups:` in /proc/PID/status).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// A group's id from /etc/group, or the number itself.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

/// Clients waiting for their next request, oldest first out when the
/// daemon is full: a slow or idle client never keeps a new one out.
#[derive(Default)]
struct Clients {
    next_id: u64,
    idle: std::collections::BTreeMap<u64, tokio::task::AbortHandle>,
    count: usize,
}

/// Accepts clients forever, each in its own task.
pub async fn serve(
    listener: UnixListener,
    engine: mpsc::Sender<Pending>,
    access: Access,
    decisions: broadcast::Sender<Reply>,
) {
    let clients = Arc::new(std::sync::Mutex::new(Clients::default()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let privileged = stream
            .peer_cred()
            .is_ok_and(|cred| access.may_change(cred.uid(), cred.gid(), cred.pid()));
        let id = {
            let mut c = clients.lock().unwrap_or_else(|p| p.into_inner());
            if c.count >= MAX_CLIENTS {
                // Full: the client idle the longest (or the oldest watch
                // stream) makes room.
                match c.idle.pop_first() {
                    Some((_, handle)) => {
                        handle.abort();
                        c.count -= 1;
                    }
                    // All busy with requests: root and the admin group take
                    // a reserved slot, others are turned away.
                    None if privileged && c.count < MAX_CLIENTS + PRIVILEGED_RESERVE => {}
                    None => {
                        drop(stream);
                        continue;
                    }
                }
            }
            c.count += 1;
            c.next_id += 1;
            c.next_id
        };
        let engine = engine.clone();
        let access = access.clone();
        let decisions = decisions.clone();
        let registry = clients.clone();
        let task = tokio::spawn({
            let registry = registry.clone();
            async move {
                let _ = handle_client(stream, engine, access, decisions, id, &registry).await;
                // Ended on its own (an evicted task never gets here: it is
                // dropped at its await, and the eviction counted it).
                let mut c = registry.lock().unwrap_or_else(|p| p.into_inner());
                c.idle.remove(&id);
                c.count = c.count.saturating_sub(1);
            }
        });
        let mut c = registry.lock().unwrap_or_else(|p| p.into_inner());
        if !task.is_finished() {
            c.idle.insert(id, task.abort_handle());
        }
    }
}

fn set_idle(registry: &std::sync::Mutex<Clients>, id: u64, idle: Option<tokio::task::AbortHandle>) {
    let mut c = registry.lock().unwrap_or_else(|p| p.into_inner());
    match idle {
        Some(h) => {
            c.idle.insert(id, h);
        }
        None => {
            c.idle.remove(&id);
        }
    }
}

async fn handle_client(
    mut stream: UnixStream,
    engine: mpsc::Sender<Pending>,
    access: Access,
    decisions: broadcast::Sender<Reply>,
    id: u64,
    registry: &std::sync::Mutex<Clients>,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let may_change = access.may_change(cred.uid(), cred.gid(), cred.pid());
    loop {
        let mut len = [0u8; 4];
        match tokio::time::timeout(CLIENT_TIMEOUT, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()), // closed, broken or idle
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_REQUEST {
            return Ok(());
        }
        let mut body = vec![0u8; len];
        match tokio::time::timeout(CLIENT_TIMEOUT, stream.read_exact(&mut body)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let Ok(request) = decode::<Request>(&body) else {
            // Another protocol version's query (its shape differs): say
            // so, then close. Garbage: just close.
            if let Ok(Versioned { version }) = decode::<Versioned>(&body) {
                if version != PROTOCOL_VERSION {
                    let message = format!(
                        "protocol version {version} not supported (daemon speaks {PROTOCOL_VERSION}): \
                         use the phonehome that came with this daemon"
                    );
                    let _ = write_reply(&mut stream, Reply::Error { message }).await;
                }
            }
            return Ok(());
        };
        // Working on a request: not to be evicted until it is answered.
        let handle = {
            let mut c = registry.lock().unwrap_or_else(|p| p.into_inner());
            c.idle.remove(&id)
        };
        if let (
            PROTOCOL_VERSION,
            Query::Watch {
                device,
                blocked,
                new_owners,
            },
        ) = (request.version, &request.query)
        {
            // A stream waits on the daemon, not the other way round: it
            // counts as idle, with its place in line from when it came.
            set_idle(registry, id, handle);
            let only = WatchFilter {
                device: device.clone(),
                blocked: *blocked,
                new_owners: *new_owners,
            };
            return stream_decisions(stream, decisions.subscribe(), only).await;
        }
        let reply = if request.version != PROTOCOL_VERSION {
            Reply::Error {
                message: format!(
                    "protocol version {} not supported (daemon speaks {PROTOCOL_VERSION})",
                    request.version
                ),
            }
        } else if request.query.changes_policy() && !may_change {
            Reply::Error {
                message: format!(
                    "permission denied: uid {} may read but not change the policy \
                     (root or the admin group may)",
                    cred.uid()
                ),
            }
        } else {
            let (tx, rx) = oneshot::channel();
            if engine.send((request.query, tx)).await.is_err() {
                return Ok(());
            }
            rx.await.unwrap_or(Reply::Error {
                message: "daemon is shutting down".into(),
            })
        };
        write_reply(&mut stream, reply).await?;
        set_idle(registry, id, handle);
    }
}

/// What a `watch` client asked to see.
struct WatchFilter {
    device: Option<String>,
    blocked: bool,
    new_owners: bool,
}

impl WatchFilter {
    fn wants(&self, reply: &Reply) -> bool {
        let device = match reply {
            Reply::Decision(row) if !self.new_owners => {
                if self.blocked && row.verdict == "allow" {
                    return false;
                }
                &row.device
            }
            Reply::NewOwner(first) if !self.blocked => &first.device,
            _ => return false,
        };
        self.device
            .as_deref()
            .is_none_or(|d| d.eq_ignore_ascii_case(device))
    }
}

/// Sends every decision and first contact (matching the filters) until the
/// client hangs up.
async fn stream_decisions(
    mut stream: UnixStream,
    mut rx: broadcast::Receiver<Reply>,
    only: WatchFilter,
) -> io::Result<()> {
    let mut probe = [0u8; 1];
    loop {
        let reply = tokio::select! {
            r = rx.recv() => match r {
                Ok(reply) if only.wants(&reply) => reply,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => Reply::Skipped { decisions: n },
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // Anything from the client (or its hang-up) ends the stream.
            _ = stream.read(&mut probe) => return Ok(()),
        };
        write_reply(&mut stream, reply).await?;
    }
}

/// Sends one reply frame; a client that does not take it within
/// `CLIENT_TIMEOUT` is dropped.
async fn write_reply(stream: &mut UnixStream, reply: Reply) -> io::Result<()> {
    let frame = encode(&Response {
        version: PROTOCOL_VERSION,
        reply,
    });
    tokio::time::timeout(CLIENT_TIMEOUT, stream.write_all(&frame))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Connects to the daemon and sends one request (blocking; for the CLI);
/// `timeout` bounds every read and write on the connection.
fn send_request(
    socket: &Path,
    query: Query,
    timeout: Option<Duration>,
) -> Result<std::os::unix::net::UnixStream, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to {}: {e} (is `phonehome run` up? use --socket PATH)",
            socket.display()
        )
    })?;
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let frame = encode(&Request {
        version: PROTOCOL_VERSION,
        query,
    });
    stream
        .write_all(&frame)
        .map_err(|e| format!("sending to {}: {e}", socket.display()))?;
    Ok(stream)
}

/// Reads one reply frame; None when the daemon closed (or broke) the
/// connection before a frame began.
fn read_reply(
    stream: &mut std::os::unix::net::UnixStream,
    socket: &Path,
) -> Result<Option<Reply>, String> {
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_RESPONSE {
        return Err(format!("response of {len} bytes is over the limit"));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    let response: Response = decode(&body)?;
    if response.version != PROTOCOL_VERSION {
        return Err(format!(
            "daemon speaks protocol version {}, this client {PROTOCOL_VERSION}",
            response.version
        ));
    }
    Ok(Some(response.reply))
}

/// Reads a stream of replies (`watch`), handing each to `each` until it
/// returns false or the daemon closes (blocking; for the CLI).
pub fn stream(
    socket: &Path,
    query: Query,
    mut each: impl FnMut(Reply) -> bool,
) -> Result<(), String> {
    let mut stream = send_request(socket, query, None)?;
    while let Some(reply) = read_reply(&mut stream, socket)? {
        if !each(reply) {
            break;
        }
    }
    Ok(())
}

impl Query {
    /// Requests that change what the daemon enforces.
    pub fn changes_policy(&self) -> bool {
        matches!(self, Query::Reload)
    }
}

/// Sends one query and waits for the reply (blocking; for the CLI).
pub fn query(socket: &Path, query: Query) -> Result<Reply, String> {
    let mut stream = send_request(socket, query, Some(Duration::from_secs(30)))?;
    read_reply(&mut stream, socket)?.ok_or_else(|| {
        format!(
            "reading from {}: the daemon closed the connection without a reply",
            socket.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_cbor() {
        for q in [
            Query::Status,
            Query::Devices {
                device: Some("02:00:00:00:77:02".into()),
                range: TimeRange {
                    since: Some(1),
                    until: None,
                },
            },
            Query::Flows { device: None },
            Query::Series {
                device: None,
                range: TimeRange::default(),
                by: SeriesBy::Category,
                lines: 10,
            },
            Query::Watch {
                device: None,
                blocked: false,
                new_owners: true,
            },
            Query::Reload,
        ] {
            let frame = encode(&Request {
                version: PROTOCOL_VERSION,
                query: q.clone(),
            });
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - 4);
            let back: Request = decode(&frame[4..]).unwrap();
            assert_eq!(back.query, q);
        }
    }

    #[test]
    fn watch_filters_decisions_and_first_contacts() {
        let first = Reply::NewOwner(NewOwnerRow {
            device: "02:00:00:00:77:02".into(),
            owner: "Umeng".into(),
            category: "analytics".into(),
            domain: None,
            time: 1,
        });
        let only = |device: Option<&str>, blocked, new_owners| WatchFilter {
            device: device.map(str::to_string),
            blocked,
            new_owners,
        };
        assert!(only(None, false, false).wants(&first));
        assert!(only(Some("02:00:00:00:77:02"), false, true).wants(&first));
        assert!(!only(Some("02:00:00:00:77:03"), false, true).wants(&first));
        assert!(
            !only(None, true, false).wants(&first),
            "--blocked: decisions only"
        );
        assert!(!only(None, false, false).wants(&Reply::Reloaded { rules: 1 }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Request>(b"\xff\x00garbage").is_err());
        assert!(decode::<Request>(&[]).is_err());
    }
}
