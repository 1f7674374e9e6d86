//! Socket API: a Unix stream socket (mode 0660) carrying CBOR messages,
//! each framed by a 4-byte big-endian length. Every request and response
//! has a protocol `version`. Limits guard the daemon: requests over
//! `MAX_REQUEST` bytes, undecodable requests and clients that stall past
//! `CLIENT_TIMEOUT` close that client only; at most `MAX_CLIENTS` at once.
//!
//! The daemon side is async (tokio) and forwards each query to the engine
//! over a channel; the client side is plain blocking std I/O for the CLI.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::stats::{DeviceRow, FlowRow, OwnerRow, StatusRow, TimeRange};

/// 2: queries and replies are externally tagged CBOR maps
/// (`{"devices": {"device": null}}`, `{"devices": [...]}`); version 1's
/// internally/adjacently tagged enums cost ~90 KiB of decoder code on MIPS.
pub const PROTOCOL_VERSION: u32 = 2;
pub const MAX_REQUEST: usize = 64 * 1024;
pub const MAX_RESPONSE: usize = 256 << 20;
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CLIENTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    Status,
    Devices {
        device: Option<String>,
        #[serde(default)]
        range: TimeRange,
    },
    Owners {
        device: Option<String>,
        #[serde(default)]
        range: TimeRange,
    },
    Flows {
        device: Option<String>,
    },
    Reload,
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
    Reloaded { rules: u64 },
    Error { message: String },
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

/// Binds the socket: replaces a stale file, sets mode 0660.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
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
    Ok(listener)
}

/// Accepts clients forever, each in its own task.
pub async fn serve(listener: UnixListener, engine: mpsc::Sender<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream); // too many clients: this one is turned away
            continue;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let _ = handle_client(stream, engine).await;
            drop(permit);
        });
    }
}

async fn handle_client(mut stream: UnixStream, engine: mpsc::Sender<Pending>) -> io::Result<()> {
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
            return Ok(()); // garbage: drop this client
        };
        let reply = if request.version != PROTOCOL_VERSION {
            Reply::Error {
                message: format!(
                    "protocol version {} not supported (daemon speaks {PROTOCOL_VERSION})",
                    request.version
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
        let frame = encode(&Response {
            version: PROTOCOL_VERSION,
            reply,
        });
        tokio::time::timeout(CLIENT_TIMEOUT, stream.write_all(&frame))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    }
}

/// Sends one query and waits for the reply (blocking; for the CLI).
pub fn query(socket: &Path, query: Query) -> Result<Reply, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to {}: {e} (is `phonehome run` up? use --socket PATH)",
            socket.display()
        )
    })?;
    let timeout = Some(Duration::from_secs(30));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let frame = encode(&Request {
        version: PROTOCOL_VERSION,
        query,
    });
    stream
        .write_all(&frame)
        .map_err(|e| format!("sending to {}: {e}", socket.display()))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
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
    Ok(response.reply)
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
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Request>(b"\xff\x00garbage").is_err());
        assert!(decode::<Request>(&[]).is_err());
    }
}
