//! `memory/retained-per-hijack`: live heap bytes a server keeps per hijacked connection,
//! through `/stats`, `/hold` and `/release` (SPEC.md#conformance-endpoints). Not a vector:
//! it measures rather than compares bytes. The harness runs it alone, after every other
//! case, because against the in-process server the harness's own allocations are counted
//! too; for the same reason it allocates nothing that stays live between its two readings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::runner::{Verdict, exchange};
use crate::wire::WireLog;

/// The case's name.
pub const NAME: &str = "memory/retained-per-hijack";

/// Where its requirement lives.
pub const SPEC: &str = "SPEC.md#release";

/// The sentence the case checks (a SHOULD-level figure: it measures, it does not prove).
pub const CITE: &str = "SPEC.md#release: \"After a hijacking handler returned, the server's connection state MUST NOT stay reachable from the handover parts.\"";

/// Bytes per held connection above which the case is NON-STRICT: a stream plus the 4 KiB
/// read and 4 KiB write buffers a hijacker keeps come to about 9 KiB.
pub const THRESHOLD: u64 = 12 << 10;

/// What the case measured.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct Figures {
    /// Connections held.
    pub connections: usize,
    /// `live_heap_bytes` before.
    pub before: u64,
    /// `live_heap_bytes` with every connection held.
    pub after: u64,
    /// (after − before) / connections, in bytes.
    pub bytes_per_connection: i64,
    /// The threshold, in bytes.
    pub threshold: u64,
    /// `connections` as `/stats` reported it while they were held.
    pub server_connections: Option<u64>,
    /// What `/release` reported.
    pub released: Option<u64>,
}

/// The result: a verdict, what was expected and observed, the figures if measured.
pub struct Measured {
    /// PASS, NON-STRICT, FAIL or UNSUPPORTED.
    pub verdict: Verdict,
    /// What the case expected.
    pub expected: String,
    /// What it observed.
    pub observed: String,
    /// The figures, when it got that far.
    pub figures: Option<Figures>,
    /// Notes and the `/stats` exchanges.
    pub wire: WireLog,
}

const HOLD: &[u8] =
    b"GET /hold HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: hold\r\n\r\n";

/// `GET path` on a fresh connection: status and JSON body (`Null` if not JSON).
fn get_json(
    target: SocketAddr,
    path: &str,
    timeout: Duration,
    log: &mut WireLog,
) -> Result<(u16, serde_json::Value), String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n");
    let (_, resp) = exchange(target, timeout, &req, log)?;
    let json = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    Ok((resp.status, json))
}

fn stats(
    target: SocketAddr,
    timeout: Duration,
    log: &mut WireLog,
) -> Result<Option<(u64, Option<u64>)>, String> {
    let (status, json) = get_json(target, "/stats", timeout, log)?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(format!("/stats answered {status}"));
    }
    let heap = json.get("live_heap_bytes").and_then(|v| v.as_u64());
    let conns = json.get("connections").and_then(|v| v.as_u64());
    Ok(heap.map(|h| (h, conns)))
}

/// Reads one response head into a stack buffer and returns its status.
fn read_head_status(stream: &mut TcpStream, deadline: Instant) -> Result<u16, String> {
    let mut head = [0u8; 2048];
    let mut len = 0;
    while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == head.len() {
            return Err("response head over 2 KiB".into());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err("no response head before the timeout".into());
        }
        stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut head[len..]) {
            Ok(0) => return Err("closed before a response head".into()),
            Ok(n) => len += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no response head before the timeout".into());
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    // "HTTP/1.1 101 ..." : the three digits after the first space.
    let line = &head[..len];
    let space = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or("no status line")?;
    std::str::from_utf8(line.get(space + 1..space + 4).ok_or("short status line")?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "bad status line".to_string())
}

/// One hold-and-release cycle: live heap bytes before and while `n` connections are held,
/// `/stats`'s connection count while held, and what `/release` reported.
struct Cycle {
    before: u64,
    after: u64,
    server_connections: Option<u64>,
    released: Option<u64>,
}

fn cycle(
    target: SocketAddr,
    n: usize,
    timeout: Duration,
    wire: &mut WireLog,
) -> Result<Cycle, (Verdict, String)> {
    let before = match stats(target, timeout, wire) {
        Ok(Some((heap, _))) => heap,
        Ok(None) => {
            return Err((
                Verdict::Unsupported,
                "/stats answered 404 or no live_heap_bytes".into(),
            ));
        }
        Err(e) => return Err((Verdict::Fail, e)),
    };
    // Allocated before the baseline is taken, so that holding the streams allocates nothing.
    let mut held: Vec<TcpStream> = Vec::with_capacity(n);
    let deadline = Instant::now() + timeout.max(Duration::from_secs(10));
    let mut failure: Option<(Verdict, String)> = None;
    for _ in 0..n {
        match TcpStream::connect_timeout(&target, timeout) {
            Ok(mut s) => {
                if let Err(e) = s.write_all(HOLD) {
                    failure = Some((Verdict::Fail, format!("writing /hold: {e}")));
                    break;
                }
                held.push(s);
            }
            Err(e) => {
                failure = Some((
                    Verdict::Fail,
                    format!("connection {} of {n}: {e}", held.len() + 1),
                ));
                break;
            }
        }
    }
    if failure.is_none() {
        for (i, s) in held.iter_mut().enumerate() {
            match read_head_status(s, deadline) {
                Ok(101) => {}
                Ok(404) => {
                    failure = Some((Verdict::Unsupported, "/hold answered 404".into()));
                    break;
                }
                Ok(status) => {
                    failure = Some((
                        Verdict::Fail,
                        format!("/hold answered {status} on connection {i}"),
                    ));
                    break;
                }
                Err(e) => {
                    failure = Some((Verdict::Fail, format!("/hold on connection {i}: {e}")));
                    break;
                }
            }
        }
    }
    let measured = if failure.is_none() {
        // Let the server finish the handlers that hijacked (a thread or goroutine each).
        std::thread::sleep(Duration::from_millis(200));
        Some(stats(target, timeout, wire))
    } else {
        None
    };
    // Released whatever happened, so that a failed cycle does not keep the server's memory.
    let released = get_json(target, "/release", timeout, wire)
        .ok()
        .and_then(|(_, j)| j.get("released").and_then(|v| v.as_u64()));
    drop(held);
    if let Some(f) = failure {
        return Err(f);
    }
    match measured {
        Some(Ok(Some((after, server_connections)))) => Ok(Cycle {
            before,
            after,
            server_connections,
            released,
        }),
        Some(Ok(None)) => Err((Verdict::Unsupported, "/stats stopped answering".into())),
        Some(Err(e)) => Err((Verdict::Fail, e)),
        None => Err((Verdict::Fail, "not measured".into())),
    }
}

/// Runs the case with `n` held connections: one cycle to warm up (a server's tables grow
/// once to hold `n` connections; that is not retained per connection), one measured.
pub fn run(target: SocketAddr, n: usize, timeout: Duration) -> Measured {
    let mut wire = WireLog::new();
    let expected = format!(
        "at most {THRESHOLD} live heap bytes retained per held hijacked connection ({n} connections)"
    );
    let out = |verdict, observed: String, figures, wire| Measured {
        verdict,
        expected: expected.clone(),
        observed,
        figures,
        wire,
    };
    let measured = cycle(target, n, timeout, &mut wire).and_then(|warm_up| {
        wire.note(
            None,
            format!(
                "warm-up: {} -> {} live heap bytes",
                warm_up.before, warm_up.after
            ),
        );
        cycle(target, n, timeout, &mut wire)
    });
    let Cycle {
        before,
        after,
        server_connections,
        released,
    } = match measured {
        Ok(c) => c,
        Err((verdict, observed)) => return out(verdict, observed, None, wire),
    };
    let per = (after as i64 - before as i64) / n.max(1) as i64;
    let figures = Figures {
        connections: n,
        before,
        after,
        bytes_per_connection: per,
        threshold: THRESHOLD,
        server_connections,
        released,
    };
    wire.note(None, format!("{figures:?}"));
    let observed = format!(
        "{per} bytes per connection ({:.1} KiB; {before} -> {after} live heap bytes over {n} held connections)",
        per as f64 / 1024.0
    );
    let verdict = if per <= THRESHOLD as i64 {
        Verdict::Pass
    } else {
        Verdict::NonStrict
    };
    out(verdict, observed, Some(figures), wire)
}

/// Connects to `addr` once, to tell a connection error (exit 2) from a failing case.
pub fn reachable(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    TcpStream::connect_timeout(&addr, timeout).map(drop)
}
