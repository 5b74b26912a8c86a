//! Small servers of the conformance contract (SPEC.md#conformance-endpoints) over TCP, each
//! with one deliberately planted bug, or none: what `hijack conform --explore` must find and
//! shrink (conform/tests/harness_explore.rs). They frame requests with [`crate::framing`], so that
//! without a bug they answer as the model does, and each bug changes exactly one thing.
//!
//! Not a server to copy: one thread per connection, a timer for the close-notify timeout,
//! at most 2,000 connections, then the accept loop ends.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::framing::{BodyEnd, HeadModel, decode_body, frame_head};

/// The bug planted in a [`BrokenServer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// None: the control, which answers as the model does.
    None,
    /// `/echo` loses the bytes that arrive while its handler runs, after the head was read
    /// and before the 101 (the background byte; Go #15224).
    LosesBackgroundByte,
    /// `/echo` drops the bytes read along with the upgrade head.
    DropsBytesWithHead,
    /// A byte pipelined while `/close-notify` waits fires close-notify (Go #23921).
    FiresCloseNotifyOnPipelinedByte,
    /// A second Content-Length that differs is ignored: the first one frames the body.
    AcceptsDifferingContentLength,
    /// Transfer-Encoding with Content-Length is framed by Transfer-Encoding, answered 200,
    /// and the connection kept (RFC 9112 §6.1 requires the close).
    KeepsConnectionAfterTeAndCl,
}

/// How long an `/echo` handler runs before it hijacks: the window of the background read.
const HANDLER_RUNS: Duration = Duration::from_millis(100);

/// A running broken server; dropping it ends its accept loop.
pub struct BrokenServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl BrokenServer {
    /// Starts a server with `bug` on a free port of 127.0.0.1.
    pub fn start(bug: Bug) -> std::io::Result<BrokenServer> {
        BrokenServer::start_for(bug, 2000)
    }

    /// As [`BrokenServer::start`], but the server stops listening after `connections`
    /// connections: a server that goes away in the middle of a run.
    pub fn start_for(bug: Bug, connections: usize) -> std::io::Result<BrokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let events: Events = Arc::default();
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let events = events.clone();
                std::thread::spawn(move || {
                    Conn {
                        s: stream,
                        bug,
                        events,
                    }
                    .serve()
                });
            }
        });
        Ok(BrokenServer { addr, stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BrokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `/close-notify/{id}` records: id → (state, milliseconds).
type Events = Arc<Mutex<HashMap<String, (&'static str, Option<u128>)>>>;

struct Conn {
    s: TcpStream,
    bug: Bug,
    events: Events,
}

impl Conn {
    fn read_more(&mut self, buf: &mut Vec<u8>) -> bool {
        let mut chunk = [0u8; 16 << 10];
        match self.s.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn respond(&mut self, status: &str, body: &str, close: bool) {
        let conn = if close { "Connection: close\r\n" } else { "" };
        let _ = write!(
            self.s,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{conn}\r\n{body}",
            body.len()
        );
    }

    /// Closes after a last response: half-close, then read until the client's end of stream
    /// (or 2 s), so that unread bytes do not make the close a reset that destroys it.
    fn close(&mut self) {
        let _ = self.s.shutdown(Shutdown::Write);
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut sink = Vec::new();
        while self.read_more(&mut sink) {
            sink.clear();
        }
    }

    /// The head at the front of `buf` as this server's bug sees it.
    fn frame(&self, buf: &[u8]) -> HeadModel {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
            return HeadModel::Partial;
        };
        let lines: Vec<&[u8]> = buf[..end - 4]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        let named = |l: &[u8], n: &str| {
            l.len() > n.len()
                && l[..n.len()].eq_ignore_ascii_case(n.as_bytes())
                && l[n.len()] == b':'
        };
        if !matches!(
            self.bug,
            Bug::AcceptsDifferingContentLength | Bug::KeepsConnectionAfterTeAndCl
        ) {
            return frame_head(buf);
        }
        let first_length = lines.iter().position(|l| named(l, "content-length"));
        let has_te = lines.iter().any(|l| named(l, "transfer-encoding"));
        // The bug: the lines this server does not see.
        let drop_line = |i: usize, l: &[u8]| match self.bug {
            Bug::AcceptsDifferingContentLength => {
                named(l, "content-length") && Some(i) != first_length
            }
            _ => has_te && named(l, "content-length"),
        };
        let mut head: Vec<u8> = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if !drop_line(i, l) {
                head.extend_from_slice(l);
                head.extend_from_slice(b"\r\n");
            }
        }
        head.extend_from_slice(b"\r\n");
        match frame_head(&head) {
            HeadModel::Head(mut f) => {
                f.len = end;
                HeadModel::Head(f)
            }
            other => other,
        }
    }

    fn serve(mut self) {
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = Vec::new();
        for _ in 0..1000 {
            let framed = loop {
                match self.frame(&buf) {
                    HeadModel::Partial => {
                        if !self.read_more(&mut buf) {
                            return;
                        }
                    }
                    HeadModel::Head(f) => break f,
                    HeadModel::Rejected(status) => {
                        self.respond(&format!("{status} Rejected"), "", true);
                        return self.close();
                    }
                    HeadModel::Unsure => {
                        self.respond("400 Bad Request", "", true);
                        return self.close();
                    }
                }
            };
            let (body, used) = loop {
                match decode_body(framed.body, &buf[framed.len..]) {
                    (body, BodyEnd::End(n)) => break (body, n),
                    (_, BodyEnd::NeedMore) => {
                        if !self.read_more(&mut buf) {
                            return;
                        }
                    }
                    (_, BodyEnd::Failed) => {
                        self.respond("400 Bad Request", "", true);
                        return self.close();
                    }
                }
            };
            let head = String::from_utf8_lossy(&buf[..framed.len]).to_ascii_lowercase();
            buf.drain(..framed.len + used);
            let close = !framed.keep_alive;
            let path = framed.target.split('?').next().unwrap_or("").to_string();
            if path == "/echo" && head.contains("\nupgrade: echo") {
                return self.echo(buf);
            }
            if let Some(id) = path.strip_prefix("/close-notify/") {
                if !self.close_notify(id, &framed.target, &mut buf, close) {
                    return;
                }
            } else if let Some(id) = path.strip_prefix("/events/") {
                let record = self.events.lock().unwrap().get(id).copied();
                match record {
                    Some((state, after)) => {
                        let after = after.map_or("null".to_string(), |ms| ms.to_string());
                        let json = format!(
                            "{{\"id\": \"{id}\", \"close_notify\": \"{state}\", \"after_ms\": {after}}}"
                        );
                        self.respond("200 OK", &json, close);
                    }
                    None => self.respond("404 Not Found", "", close),
                }
            } else {
                let text = format!(
                    "{} {}: {} body bytes read by a broken server\n",
                    framed.method,
                    framed.target,
                    body.len()
                );
                self.respond("200 OK", &text, close);
            }
            if close {
                return self.close();
            }
        }
    }

    /// `/echo`: the handler runs a moment (a background read catches what arrives), then
    /// answers 101 and echoes what it was handed and everything after, until end of stream.
    fn echo(mut self, mut handed: Vec<u8>) {
        if self.bug == Bug::DropsBytesWithHead {
            handed.clear();
        }
        let _ = self.s.set_read_timeout(Some(HANDLER_RUNS));
        let mut caught = Vec::new();
        let start = Instant::now();
        while start.elapsed() < HANDLER_RUNS {
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => caught.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(_) => break,
            }
        }
        if self.bug != Bug::LosesBackgroundByte {
            handed.extend_from_slice(&caught);
        }
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = self.s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
        );
        if self.s.write_all(&handed).is_err() {
            return;
        }
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if self.s.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = self.s.shutdown(Shutdown::Both);
    }

    /// `/close-notify/{id}`: waits for the client's end of stream or the timeout; a byte
    /// caught while waiting does not fire (without the bug) and ends the watching. Returns
    /// whether the connection goes on.
    fn close_notify(&mut self, id: &str, target: &str, buf: &mut Vec<u8>, close: bool) -> bool {
        let timeout = Duration::from_millis(
            target
                .split("timeout_ms=")
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(5000),
        );
        let record = |events: &Events, state, after: Option<u128>| {
            events
                .lock()
                .unwrap()
                .insert(id.to_string(), (state, after));
        };
        record(&self.events, "pending", None);
        let start = Instant::now();
        let mut watching = buf.is_empty();
        while start.elapsed() < timeout {
            if !watching {
                std::thread::sleep(timeout - start.elapsed());
                break;
            }
            let _ = self.s.set_read_timeout(Some(timeout - start.elapsed()));
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => {
                    record(&self.events, "fired", Some(start.elapsed().as_millis()));
                    return false;
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if self.bug == Bug::FiresCloseNotifyOnPipelinedByte {
                        record(&self.events, "fired", Some(start.elapsed().as_millis()));
                        let _ = self.s.set_read_timeout(Some(Duration::from_secs(10)));
                        self.respond("200 OK", "canceled\n", close);
                        return true;
                    }
                    watching = false;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(_) => {
                    record(&self.events, "fired", Some(start.elapsed().as_millis()));
                    return false;
                }
            }
        }
        record(&self.events, "timeout", Some(start.elapsed().as_millis()));
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(10)));
        self.respond("200 OK", "still here\n", close);
        true
    }
}
