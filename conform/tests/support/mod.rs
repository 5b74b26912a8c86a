//! What the `hijack conform` end-to-end tests share: running the binary, reading its
//! reports, and small, deliberately broken HTTP/1.1 servers for the harness to catch.
#![allow(dead_code)] // each test file uses a part

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_hijack");

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hijack-conform-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn conform(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("conform")
        .args(args)
        .output()
        .expect("run hijack conform")
}

pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the JSON report parses")
}

/// `name → verdict` of a JSON report.
pub fn verdicts(report: &serde_json::Value) -> HashMap<String, String> {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The bug a small test server has.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// `/echo` answers 101 but drops the bytes it read along with the head.
    DropsHandedOverBytes,
    /// `/close-notify` sleeps out its timeout without watching the connection.
    NeverNoticesClose,
    /// Frames bodies by Content-Length only, ignoring Transfer-Encoding; answers 505 for
    /// versions other than 1.x.
    ContentLengthOnly,
    /// Correct about framing (400 with `Connection: close` for Transfer-Encoding, a bad
    /// Content-Length or version), but closes as nginx does: it lingers after its last
    /// response, reading and dropping what comes, until the client's end of stream or 5 s
    /// without a byte (nginx's `lingering_timeout`).
    Lingers,
    /// The same framing, but after a 400 it keeps the connection and drops what it had
    /// buffered, as a proxy answering per hop does; idle connections close after 5 s. And
    /// `Transfer-Encoding: chunked` alone it reads, with a Content-Length too (as Go does,
    /// RFC 9112 §6.1 allows it), answering 200 and keeping the connection (which §6.1
    /// forbids).
    KeepsOpenAfterError,
}

/// What [`Bug::Lingers`] and [`Bug::KeepsOpenAfterError`] reject: a Transfer-Encoding, a
/// Content-Length that is not all digits, a version other than HTTP/1.0 or 1.1.
pub fn rejects(version: &str, fields: &[(String, String)]) -> bool {
    !matches!(version, "HTTP/1.0" | "HTTP/1.1")
        || fields.iter().any(|(n, v)| {
            n == "transfer-encoding"
                || (n == "content-length"
                    && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit())))
        })
}

/// Reads a chunked body off the front of `buf` (reading more from `s` as needed) and drops
/// it, trailers included; `None` on end of stream or a malformed size line.
pub fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let mut line = |s: &mut TcpStream, buf: &mut Vec<u8>| -> Option<String> {
        loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                let l = text(&buf[..i]);
                buf.drain(..i + 2);
                return Some(l);
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    loop {
        let size_line = line(s, buf)?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            while !line(s, buf)?.is_empty() {}
            return Some(());
        }
        while buf.len() < size + 2 {
            let mut more = [0u8; 4096];
            match s.read(&mut more) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&more[..n]),
            }
        }
        buf.drain(..size + 2);
    }
}

/// Reads and drops until end of stream, an error, or `quiet` without a byte.
pub fn linger(s: &mut TcpStream, quiet: Duration) {
    let _ = s.set_read_timeout(Some(quiet));
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
    }
}

/// A small, deliberately broken HTTP/1.1 server on a free port. Its accept loop takes at
/// most 400 connections; each connection at most 100 requests, 10 s per read.
pub fn broken_server(bug: Bug) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let events: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(400) {
            let Ok(stream) = stream else { continue };
            let events = events.clone();
            std::thread::spawn(move || serve_broken(stream, bug, &events));
        }
    });
    addr
}

pub fn respond(s: &mut TcpStream, status: &str, body: &str, close: bool) {
    let conn = if close { "Connection: close\r\n" } else { "" };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{conn}\r\n{body}",
        body.len()
    );
}

pub fn serve_broken(mut s: TcpStream, bug: Bug, events: &Mutex<HashMap<String, String>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    for _ in 0..100 {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = text(&buf[..head_end]);
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let (target, version) = (
            request_line.nth(1).unwrap_or("").to_string(),
            request_line.next().unwrap_or("").to_string(),
        );
        let fields: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let chunked_only = fields
            .iter()
            .filter(|(n, _)| n == "transfer-encoding")
            .map(|(_, v)| v.as_str())
            .eq(["chunked"]);
        if bug == Bug::KeepsOpenAfterError
            && chunked_only
            && matches!(version.as_str(), "HTTP/1.0" | "HTTP/1.1")
        {
            // Framed by Transfer-Encoding; the connection stays.
            if read_chunked(&mut s, &mut buf).is_none() {
                return;
            }
            respond(&mut s, "200 OK", "ok\n", false);
            continue;
        }
        if matches!(bug, Bug::Lingers | Bug::KeepsOpenAfterError) && rejects(&version, &fields) {
            if bug == Bug::Lingers {
                respond(&mut s, "400 Bad Request", "", true);
                return linger(&mut s, Duration::from_secs(5));
            }
            respond(&mut s, "400 Bad Request", "", false);
            buf.clear();
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            continue;
        }
        if !version.starts_with("HTTP/1.") {
            return respond(&mut s, "505 HTTP Version Not Supported", "", true);
        }
        let close = version == "HTTP/1.0"
            || field("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let length: usize = field("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        let path = target.split('?').next().unwrap_or("").to_string();
        if path == "/echo" && bug == Bug::DropsHandedOverBytes {
            let _ = s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
            );
            // The bug: `buf` (bytes read with the head) is never echoed.
            for _ in 0..10_000 {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&chunk[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            return;
        }
        if let (Some(id), Bug::NeverNoticesClose) = (path.strip_prefix("/close-notify/"), bug) {
            let timeout_ms: u64 = target
                .split("timeout_ms=")
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(5000);
            events
                .lock()
                .unwrap()
                .insert(id.to_string(), "pending".into());
            // The bug: nothing watches the connection while the handler waits.
            std::thread::sleep(Duration::from_millis(timeout_ms));
            events
                .lock()
                .unwrap()
                .insert(id.to_string(), "timeout".into());
            respond(&mut s, "200 OK", "still here\n", close);
        } else if let (Some(id), Bug::NeverNoticesClose) = (path.strip_prefix("/events/"), bug) {
            match events.lock().unwrap().get(id) {
                Some(state) => {
                    let after = if state == "pending" { "null" } else { "1" };
                    let json = format!(
                        "{{\"id\": \"{id}\", \"close_notify\": \"{state}\", \"after_ms\": {after}}}"
                    );
                    respond(&mut s, "200 OK", &json, close);
                }
                None => respond(&mut s, "404 Not Found", "", close),
            }
        } else if path == "/echo"
            || path.starts_with("/close-notify")
            || path.starts_with("/events/")
        {
            respond(&mut s, "404 Not Found", "", close);
        } else {
            respond(&mut s, "200 OK", "ok\n", close);
        }
        if close {
            if bug == Bug::Lingers {
                linger(&mut s, Duration::from_secs(5));
            }
            return;
        }
    }
}

/// Runs `hijack conform` against `addr` with `cases`; exit code and verdicts.
pub fn conform_against(
    addr: SocketAddr,
    name: &str,
    cases: &[&str],
) -> (Option<i32>, HashMap<String, String>, String) {
    let (code, verdicts, stdout, _) = conform_against_with(addr, name, cases, &[]);
    (code, verdicts, stdout)
}

/// [`conform_against`] with `extra` arguments, and the JSON report too (null without one).
pub fn conform_against_with(
    addr: SocketAddr,
    name: &str,
    cases: &[&str],
    extra: &[&str],
) -> (
    Option<i32>,
    HashMap<String, String>,
    String,
    serde_json::Value,
) {
    let dir = scratch(name);
    let json = dir.join("report.json");
    let url = format!("http://{addr}");
    let mut args = vec![
        url.as_str(),
        "--timeout",
        "1s",
        "--json",
        json.to_str().unwrap(),
    ];
    for c in cases {
        args.extend(["--case", c]);
    }
    args.extend(extra);
    let out = conform(&args);
    let report = if json.exists() {
        report(&json)
    } else {
        serde_json::Value::Null
    };
    let verdicts = if report.is_null() {
        HashMap::new()
    } else {
        verdicts(&report)
    };
    (out.status.code(), verdicts, text(&out.stdout), report)
}
