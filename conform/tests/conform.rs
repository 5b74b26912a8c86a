//! `hijack conform` end to end (SPEC.md#conformance-endpoints, SPEC.md#conformance-vectors):
//! the reference server passes every case and its reports parse; the exported vectors
//! replay with the independent Python runner; and the harness catches servers with known
//! bugs (small broken servers built here), exits 2 when nothing listens.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_hijack");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hijack-conform-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn conform(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("conform")
        .args(args)
        .output()
        .expect("run hijack conform")
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the JSON report parses")
}

/// `name → verdict` of a JSON report.
fn verdicts(report: &serde_json::Value) -> HashMap<String, String> {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /hold with Connection: Upgrade and Upgrade: hold MUST be answered with 101 Switching Protocols, Upgrade: hold and Connection: Upgrade, after which the server MUST keep every part the hijack handed over, without reading or writing them, until /release.

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /release MUST close and drop everything /hold kept and MUST be answered with 200 and a JSON object giving the number of connections released.

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /stats MUST be answered with 200 and a JSON object giving the live heap bytes and the connections the server holds.
#[test]
fn the_reference_server_passes_every_case_and_the_reports_parse() {
    let dir = scratch("reference");
    let (json, junit) = (dir.join("report.json"), dir.join("report.xml"));
    // A generous step timeout: a debug build on a loaded machine parses a 1 MiB head
    // slowly, and a passing case never waits for the timeout anyway.
    let out = conform(&[
        "--timeout",
        "30s",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );

    let listed = conform(&["--list"]);
    let names: Vec<String> = text(&listed.stdout).lines().map(str::to_string).collect();
    assert!(names.len() > 30, "{names:?}");
    for group in [
        "handover/",
        "close-notify/",
        "serving/",
        "bad-input/",
        "memory/",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(group)),
            "no {group} case"
        );
    }

    let report = report(&json);
    let verdicts = verdicts(&report);
    assert_eq!(
        verdicts.len(),
        names.len(),
        "every listed case is in the report"
    );
    let not_passed: Vec<_> = verdicts.iter().filter(|(_, v)| *v != "PASS").collect();
    assert!(not_passed.is_empty(), "{not_passed:?}\n{stdout}");
    assert_eq!(report["totals"]["PASS"].as_u64(), Some(names.len() as u64));
    let memory = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "memory/retained-per-hijack")
        .expect("the memory case ran");
    let per = memory["figures"]["bytes_per_connection"]
        .as_i64()
        .expect("a figure");
    println!("reference: {per} bytes retained per held hijacked connection");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("the JUnit report parses");
    assert_eq!(junit.tests, names.len(), "JUnit test count");
    assert_eq!((junit.failures, junit.errors), (0, 0));
    let in_suites: usize = junit.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(in_suites, names.len());
    // And with a standard XML parser, as CI tools read it.
    let py = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(len(r.findall('.//testcase')))",
            junit_path(&dir).to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    assert_eq!(
        text(&py.stdout).trim(),
        names.len().to_string(),
        "{}",
        text(&py.stderr)
    );
}

fn junit_path(dir: &Path) -> PathBuf {
    dir.join("report.xml")
}

/// `hijack serve` on a free port; killed on drop.
struct Serve(Child, SocketAddr);

impl Serve {
    fn start() -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hijack serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Serve(child, addr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exported_vectors_replay_against_hijack_serve_with_the_python_runner() {
    let dir = scratch("vectors");
    let out = conform(&["--export", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let count = walk(&dir);
    let listed = text(&conform(&["--list", "--exclude", "memory/*"]).stdout)
        .lines()
        .count();
    assert_eq!(count, listed, "one vector per byte-level case");

    let server = Serve::start();
    let replay = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/replay.py"
        ))
        .arg(&dir)
        .arg(format!("http://{}", server.1))
        .arg("30")
        .output()
        .expect("python3");
    let stdout = text(&replay.stdout);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&replay.stderr)
    );
    assert_eq!(
        stdout.trim().lines().last(),
        Some(format!("{count} passed, 0 failed").as_str()),
        "{stdout}"
    );
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "json"))
            }
        })
        .sum()
}

/// The bug a small test server has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bug {
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
fn rejects(version: &str, fields: &[(String, String)]) -> bool {
    !matches!(version, "HTTP/1.0" | "HTTP/1.1")
        || fields.iter().any(|(n, v)| {
            n == "transfer-encoding"
                || (n == "content-length"
                    && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit())))
        })
}

/// Reads a chunked body off the front of `buf` (reading more from `s` as needed) and drops
/// it, trailers included; `None` on end of stream or a malformed size line.
fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
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
fn linger(s: &mut TcpStream, quiet: Duration) {
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
fn broken_server(bug: Bug) -> SocketAddr {
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

fn respond(s: &mut TcpStream, status: &str, body: &str, close: bool) {
    let conn = if close { "Connection: close\r\n" } else { "" };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{conn}\r\n{body}",
        body.len()
    );
}

fn serve_broken(mut s: TcpStream, bug: Bug, events: &Mutex<HashMap<String, String>>) {
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
fn conform_against(
    addr: SocketAddr,
    name: &str,
    cases: &[&str],
) -> (Option<i32>, HashMap<String, String>, String) {
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
    let out = conform(&args);
    let verdicts = if json.exists() {
        verdicts(&report(&json))
    } else {
        HashMap::new()
    };
    (out.status.code(), verdicts, text(&out.stdout))
}

#[test]
fn a_server_that_drops_the_handed_over_bytes_fails_the_handover_cases() {
    let addr = broken_server(Bug::DropsHandedOverBytes);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "drops",
        &["handover/*", "close-notify/fires-on-close"],
    );
    assert_eq!(code, Some(1), "{stdout}");
    for case in [
        "handover/bytes-with-head",
        "handover/first-bytes-not-lost",
        "handover/pipelined-request-after-upgrade",
        "handover/8k-after-head",
    ] {
        assert_eq!(
            verdicts.get(case).map(String::as_str),
            Some("FAIL"),
            "{case}\n{stdout}"
        );
    }
    // /close-notify answers 404 here.
    assert_eq!(verdicts["close-notify/fires-on-close"], "UNSUPPORTED");
    assert!(
        stdout.contains("wire:") && stdout.contains("expected:"),
        "{stdout}"
    );
}

#[test]
fn a_server_that_never_notices_the_client_leaving_fails_the_close_notify_cases() {
    let addr = broken_server(Bug::NeverNoticesClose);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "never-notices",
        &[
            "close-notify/fires-*",
            "close-notify/pipelined-does-not-fire",
            "serving/hijack-after-close-notify",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    for case in [
        "close-notify/fires-on-close",
        "close-notify/fires-on-half-close",
        "close-notify/fires-on-reset",
    ] {
        assert_eq!(
            verdicts.get(case).map(String::as_str),
            Some("FAIL"),
            "{case}\n{stdout}"
        );
    }
    // Not firing on a pipelined request is right, even for this server.
    assert_eq!(
        verdicts["close-notify/pipelined-does-not-fire"], "PASS",
        "{stdout}"
    );
    // /echo answers 404 here.
    assert_eq!(verdicts["serving/hijack-after-close-notify"], "UNSUPPORTED");
}

#[test]
fn smuggling_fails_and_a_safe_leniency_is_non_strict() {
    let addr = broken_server(Bug::ContentLengthOnly);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "cl-only",
        &["bad-input/te-and-cl", "bad-input/bad-version"],
    );
    assert_eq!(code, Some(1), "{stdout}");
    // It answers the request hidden in the chunk: smuggling, whatever the case's level.
    assert_eq!(verdicts["bad-input/te-and-cl"], "FAIL", "{stdout}");
    // Said in those words, with where the smuggled request starts in what the client sent.
    assert!(
        stdout.contains("smuggling: ") && stdout.contains("byte 85: \"GET /smuggled HTTP/1.1\""),
        "{stdout}"
    );
    // 505 for HTTP/9.9 is not the reference's 400, but safe: a SHOULD-level miss.
    assert_eq!(verdicts["bad-input/bad-version"], "NON-STRICT", "{stdout}");
}

/// PASS and FAIL cases of a run, and the INCONCLUSIVE ones.
fn decided(verdicts: &HashMap<String, String>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let pick = |v: &str| {
        let mut l: Vec<String> = verdicts
            .iter()
            .filter(|(_, x)| x.as_str() == v)
            .map(|(c, _)| c.clone())
            .collect();
        l.sort();
        l
    };
    (pick("PASS"), pick("FAIL"), pick("INCONCLUSIVE"))
}

fn conform_with_timeout(
    addr: SocketAddr,
    name: &str,
    timeout: &str,
) -> (HashMap<String, String>, serde_json::Value) {
    let dir = scratch(name);
    let json = dir.join("report.json");
    let url = format!("http://{addr}");
    let out = conform(&[
        url.as_str(),
        "--timeout",
        timeout,
        "--json",
        json.to_str().unwrap(),
        // The framing cases whose close the RFC requires or leaves open, and controls.
        "--case",
        "hostile/cl-*",
        "--case",
        "hostile/te-*",
        "--case",
        "hostile/*pipelined*",
        "--case",
        "bad-input/*",
    ]);
    assert!(json.exists(), "{}", text(&out.stderr));
    let r = report(&json);
    (verdicts(&r), r)
}

/// The observed texts of a case's misses.
fn observed(report: &serde_json::Value, case: &str) -> String {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == case)
        .flat_map(|c| c["misses"].as_array().unwrap().clone())
        .map(|m| m["observed"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn verdicts_do_not_depend_on_the_timeout_against_a_lingering_server() {
    // A server that lingers 5 s before it closes, as nginx does, and one that keeps the
    // connection after a 400: with 3 s and with 30 s per step, the same PASS and FAIL sets.
    for bug in [Bug::Lingers, Bug::KeepsOpenAfterError] {
        let addr = broken_server(bug);
        let name = if bug == Bug::Lingers {
            "linger"
        } else {
            "keeps-open"
        };
        let (short, report) = conform_with_timeout(addr, &format!("{name}-3s"), "3s");
        let (long, _) = conform_with_timeout(addr, &format!("{name}-30s"), "30s");
        let (pass3, fail3, inconclusive3) = decided(&short);
        let (pass30, fail30, _) = decided(&long);
        assert_eq!(pass3, pass30, "{name}: PASS differs between 3 s and 30 s");
        assert_eq!(fail3, fail30, "{name}: FAIL differs between 3 s and 30 s");
        assert!(inconclusive3.is_empty(), "{name}: {inconclusive3:?}");
        // Decided by what the follow-up met: a close read for the lingering server, an
        // answer for the other, where RFC 9112 §6.1 requires the close...
        let expect = if bug == Bug::Lingers { "PASS" } else { "FAIL" };
        assert_eq!(short["hostile/cl-te-basic"], expect, "{name}");
        let seen = observed(&report, "bad-input/te-and-cl");
        assert_eq!(short["bad-input/te-and-cl"], expect, "{name}: {seen}");
        // ...named as what it is: kept open, and no request hidden in the chunk answered.
        if bug == Bug::KeepsOpenAfterError {
            assert!(seen.contains("kept open"), "{seen}");
        }
        assert!(!seen.contains("smuggling"), "{name}: {seen}");
    }
}

#[test]
fn nothing_listening_exits_2_with_a_clear_message() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = conform(&[&format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    let bad_glob = conform(&["--case", "a[", "--list"]);
    assert_eq!(
        bad_glob.status.code(),
        Some(2),
        "{}",
        text(&bad_glob.stderr)
    );
    let bad_url = conform(&["https://127.0.0.1:1"]);
    assert_eq!(bad_url.status.code(), Some(2));
}

#[test]
fn the_installed_binary_lists_every_compiled_in_case_from_any_folder() {
    // From `/`, as an installed binary would be run: the corpus is compiled in.
    let out = Command::new(BIN)
        .args(["conform", "--list"])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names = text(&out.stdout);
    let hostile = names.lines().filter(|n| n.starts_with("hostile/")).count();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/hostile"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "http")
        })
        .count();
    assert_eq!(hostile, files, "one hostile/ case per corpus file");
    assert!(names.lines().count() >= 177, "{names}");
}

#[test]
fn a_closed_stdout_ends_the_list_quietly() {
    // The reading end is closed before the program writes: its write fails with EPIPE
    // every time (Rust ignores SIGPIPE), as it does under `hijack conform --list | head -1`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["conform", "--list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn report_paths_and_corpus_folders_are_checked_before_the_run() {
    let out = conform(&["--json", "/nonexistent-hijack-dir/r.json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/r.json"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cases against"),
        "ran before failing: {stderr}"
    );
    let out = conform(&["--junit", "/nonexistent-hijack-dir/r.xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Every case would take seconds; failing on the HTML path takes none of them.
    let t0 = std::time::Instant::now();
    let out = conform(&["--html", "/nonexistent-hijack-dir/r.html"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/r.html"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cases against"),
        "ran before failing: {stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let out = conform(&["--hostile", "/nonexistent-hijack-corpus", "--list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent-hijack-corpus"), "{stderr}");
}

#[test]
fn help_documents_every_default() {
    let out = Command::new(BIN)
        .args(["conform", "--help"])
        .output()
        .unwrap();
    // clap wraps long lines: compare with the whitespace collapsed.
    let help = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(out.status.code(), Some(0));
    for default in [
        "[default: 5s]",
        "[default: 500]",
        "[default: 8]",
        "[default: the reference server",
        "[default: every case]",
        "[default: none]",
        "[default: only the compiled-in corpus]",
    ] {
        assert!(help.contains(default), "no {default:?} in\n{help}");
    }
}

#[test]
fn a_duration_without_a_unit_is_refused_before_anything_runs() {
    let out = conform(&["--timeout", "5", "--list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no unit: write 5s or 5ms"), "{stderr}");
}

#[test]
fn a_redirected_server_log_carries_no_colour_codes() {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One request, so the server logs something, then stop it.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = text(&out.stderr);
    assert!(!log.is_empty(), "the server logged nothing");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a redirected log: {log:?}"
    );
}

fn hijack(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run hijack")
}

/// `(data-impl, data-verdict)` of the cells of the row of `case`, and their shown verdicts.
fn cells(page: &scraper::Html, case: &str) -> Vec<(String, String, String)> {
    let sel = scraper::Selector::parse(&format!("#matrix tr[data-case=\"{case}\"] > td")).unwrap();
    let v = scraper::Selector::parse("summary > .v").unwrap();
    page.select(&sel)
        .map(|td| {
            let a = |n: &str| td.value().attr(n).unwrap_or("").to_string();
            let shown = td
                .select(&v)
                .next()
                .map(|e| e.text().collect())
                .unwrap_or_default();
            (a("data-impl"), a("data-verdict"), shown)
        })
        .collect()
}

#[test]
fn the_html_report_is_a_matrix_of_the_json_reports() {
    let dir = scratch("html");
    // The reference on two groups; a server that drops the handed-over bytes on one.
    let (good, bad) = (dir.join("reference.json"), dir.join("drops.json"));
    let single = dir.join("single.html");
    let out = conform(&[
        "--case",
        "handover/*",
        "--case",
        "serving/*",
        "--timeout",
        "30s",
        "--json",
        good.to_str().unwrap(),
        "--html",
        single.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let addr = broken_server(Bug::DropsHandedOverBytes);
    let out = conform(&[
        &format!("http://{addr}"),
        "--case",
        "handover/*",
        "--timeout",
        "1s",
        "--json",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let html = dir.join("matrix.html");
    let out = hijack(&[
        "report",
        "--html",
        html.to_str().unwrap(),
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let source = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    for fetch in ["<link", " src=", "href=\"http", "@import", "url("] {
        assert!(!source.contains(fetch), "{fetch:?} in the page");
    }
    let page = scraper::Html::parse_document(&source);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let heads: Vec<_> = page
        .select(&sel("#matrix > thead th[data-impl]"))
        .map(|th| th.value().attr("data-impl").unwrap().to_string())
        .collect();
    assert_eq!(
        heads,
        ["reference", "drops"],
        "a column per report, named by its file"
    );

    let (good, bad) = (verdicts(&report(&good)), verdicts(&report(&bad)));
    let rows = page.select(&sel("#matrix tr[data-case]")).count();
    assert_eq!(rows, good.len(), "a row per case of either report");
    for (case, verdict) in &good {
        let row = cells(&page, case);
        let theirs = bad.get(case).map_or("NOT-RUN", String::as_str);
        let shown = if theirs == "NOT-RUN" {
            "not run"
        } else {
            theirs
        };
        assert_eq!(
            row,
            [
                ("reference".into(), verdict.clone(), verdict.clone()),
                ("drops".into(), theirs.to_string(), shown.to_string()),
            ],
            "{case}"
        );
    }
    assert!(bad.len() < good.len() && bad.values().any(|v| v == "FAIL"));
    // A FAIL opens its misses and its wire log, escaped.
    let fail = page
        .select(&sel(
            "#matrix td[data-impl=\"drops\"][data-verdict=\"FAIL\"]",
        ))
        .next()
        .expect("a FAIL cell");
    let inner = fail.inner_html();
    assert!(inner.contains("table class=\"misses\""), "{inner}");
    let wire: String = fail
        .select(&sel("pre.wire"))
        .next()
        .expect("a wire log")
        .text()
        .collect();
    assert!(wire.contains("GET /echo HTTP/1.1\\r\\n"), "{wire}");
    assert!(wire.contains("send") && wire.contains("recv"), "{wire}");
    // Totals per implementation.
    let count = |imp: &str, v: &str| -> String {
        page.select(&sel(&format!(
            "#totals td[data-impl=\"{imp}\"][data-verdict=\"{v}\"]"
        )))
        .next()
        .map(|td| td.text().collect())
        .unwrap_or_default()
    };
    let fails = bad.values().filter(|v| *v == "FAIL").count();
    assert_eq!(count("drops", "FAIL"), fails.to_string());
    assert_eq!(count("reference", "PASS"), good.len().to_string());

    // The run's own page: one column, named by its target.
    let single = scraper::Html::parse_document(&std::fs::read_to_string(&single).unwrap());
    let heads: Vec<_> = single
        .select(&sel("#matrix > thead th[data-impl]"))
        .map(|th| th.value().attr("data-impl").unwrap().to_string())
        .collect();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with("in-process reference server"),
        "{heads:?}"
    );
    assert_eq!(
        single
            .select(&sel("#matrix td[data-verdict=\"PASS\"]"))
            .count(),
        good.len()
    );
}

#[test]
fn hijack_report_refuses_missing_and_malformed_reports() {
    let dir = scratch("report-errors");
    let out_path = dir.join("out.html");
    std::fs::write(&out_path, "before").unwrap();
    let missing = dir.join("missing.json");
    let out = hijack(&[
        "report",
        "--html",
        out_path.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", missing.display())),
        "{stderr}"
    );
    for (name, body) in [("bad.json", "{\"target\": "), ("other.json", "{\"a\": 1}")] {
        let bad = dir.join(name);
        std::fs::write(&bad, body).unwrap();
        let out = hijack(&[
            "report",
            "--html",
            out_path.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{} is not a conformance report", bad.display())),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "before",
        "a bad report leaves OUT as it was"
    );
    let empty = dir.join("empty.json");
    std::fs::write(
        &empty,
        r#"{"target": "x", "duration_ms": 1, "totals": {}, "cases": []}"#,
    )
    .unwrap();
    let out = hijack(&[
        "report",
        "--html",
        "/nonexistent-hijack-dir/m.html",
        empty.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/m.html"),
        "{stderr}"
    );
    // No report at all is a usage error too.
    let out = hijack(&["report", "--html", out_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
