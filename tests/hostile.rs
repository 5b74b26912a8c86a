//! The hostile-input corpus (`conform/hostile/*.http`, SPEC.md#bad-input): request smuggling
//! and malformed requests, each with the statuses the reference server must answer and whether
//! it must close the connection. Every case runs against the demo handler of `hijack serve`
//! (which reads the whole body and answers 200) three ways: on the in-memory pipe sent whole,
//! on the pipe one byte at a time (each byte read by the server before the next is sent), and
//! once over loopback TCP against a `Server`. The conformance harness runs the same files
//! against other servers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hijack::pipe::{PipeEnd, pipe};
use hijack::{Server, ServerConfig, Transport};
use hijack_conform::Level;
use hijack_conform::demo::Demo;
mod corpus;
use corpus::{Case, Client, Got, Outcome, Verdict, check, load, observe};

/// How long the checker waits for each response before it calls the connection kept open.
const WAIT: Duration = Duration::from_secs(5);
/// Past this many bytes, a one-byte-at-a-time feed sends the rest in pieces of this size:
/// the server parses the whole buffered head after every read, so a 1 MiB head sent byte by
/// byte would cost it about 5 * 10^11 byte comparisons.
const BYTEWISE_LIMIT: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Whole,
    ByteAtATime,
}

struct PipeClient(PipeEnd);

impl Client for PipeClient {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Got {
        let _ = self.0.set_read_deadline(Some(deadline));
        match self.0.read(buf) {
            Ok(0) => Got::End,
            Ok(n) => Got::Bytes(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Got::TimedOut,
            Err(_) => Got::End,
        }
    }
}

struct TcpClient(TcpStream);

impl Client for TcpClient {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Got {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Got::TimedOut;
        }
        let _ = self.0.set_read_timeout(Some(left));
        match self.0.read(buf) {
            Ok(0) => Got::End,
            Ok(n) => Got::Bytes(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Got::TimedOut
            }
            // A reset ends the connection as a close does.
            Err(_) => Got::End,
        }
    }
}

/// Waits (bounded) until the server has read everything the client wrote; false if it
/// stopped reading. A closed server end drops unread bytes, so a close also ends the wait.
fn wait_drained(client: &PipeEnd) -> bool {
    hijack_testkit::poll_until(hijack_testkit::GUARD, || client.peer_unread_len() == 0)
}

/// Sends `bytes` as `feed` says; stops early once the server closed the connection.
fn feed_pipe(client: &PipeEnd, bytes: &[u8], feed: Feed) -> Result<(), String> {
    match feed {
        Feed::Whole => {
            let _ = client.write_all(bytes);
        }
        Feed::ByteAtATime => {
            let mut at = 0;
            while at < bytes.len() {
                let piece = if at < BYTEWISE_LIMIT {
                    1
                } else {
                    BYTEWISE_LIMIT
                };
                let end = (at + piece).min(bytes.len());
                if client.write_all(&bytes[at..end]).is_err() {
                    return Ok(());
                }
                if !wait_drained(client) {
                    return Err(format!("the server stopped reading at byte {at}"));
                }
                at = end;
            }
        }
    }
    Ok(())
}

/// Waits (bounded) for a serving thread to end and joins it.
fn join_bounded(thread: JoinHandle<()>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return Err("the serving thread did not end after the client left".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    thread
        .join()
        .map_err(|_| "the serving thread panicked".to_string())
}

/// Runs one case against the core on a fresh in-memory connection.
fn run_on_pipe(case: &Case, expect: &Verdict, feed: Feed, wait: Duration) -> Outcome {
    let (client, server) = pipe();
    let config = ServerConfig::default();
    let thread = std::thread::spawn(move || {
        hijack::serve_connection(server, &Demo::default(), &config, 1);
    });
    let fed = feed_pipe(&client, &case.raw, feed);
    let mut client = PipeClient(client);
    let mut outcome = observe(&mut client, expect, wait);
    // The client leaves; a server still waiting for bytes sees the end and stops.
    client.0.shutdown_write();
    drop(client);
    let joined = join_bounded(thread);
    if let Some(trouble) = fed.err().or(joined.err()) {
        outcome.trouble.get_or_insert(trouble);
    }
    outcome
}

/// Runs one case on a fresh loopback TCP connection to `server`, sent whole.
fn run_on_tcp(server: &Server, case: &Case) -> Outcome {
    let stream = match TcpStream::connect(server.local_addr()) {
        Ok(stream) => stream,
        Err(e) => {
            return Outcome {
                statuses: Vec::new(),
                closed: false,
                trouble: Some(format!("connect: {e}")),
            };
        }
    };
    let _ = stream.set_nodelay(true);
    let mut client = TcpClient(stream);
    // A server that rejects early may close while the rest is still being sent: the
    // rejection is still there to be read.
    let _ = client.0.write_all(&case.raw);
    observe(&mut client, &case.expect, WAIT)
}

fn corpus() -> Vec<Case> {
    load()
}

/// Runs every case with `run`, prints the one-line summary, and fails with every mismatch.
fn run_all(how: &str, run: impl Fn(&Case) -> Outcome) {
    let cases = corpus();
    let started = Instant::now();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case, &run(case)).err())
        .collect();
    println!(
        "hostile corpus ({how}): {} cases, {} as expected, {} failed, {:.1} s",
        cases.len(),
        cases.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases ({how}) got a wrong verdict:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_has_at_least_60_well_formed_cases() {
    let cases = corpus();
    let should = cases.iter().filter(|c| c.level == Level::Should).count();
    let closing = cases.iter().filter(|c| c.expect.close).count();
    println!(
        "hostile corpus: {} cases ({} must close, {} kept open, {} at level SHOULD)",
        cases.len(),
        closing,
        cases.len() - closing,
        should
    );
    assert!(cases.len() >= 60, "only {} cases", cases.len());
}

//= SPEC.md#bad-input
//= type=test
//# A request with both Transfer-Encoding and Content-Length, or with Content-Length values
//# that differ or are not decimal digits, MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed
//# Transfer-Encoding, or chunked applied more than once MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding whose final coding is not chunked MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A transfer coding other than chunked before a final chunked MUST be answered with
//# 501.
//= SPEC.md#bad-input
//= type=test
//# A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not
//# followed by CRLF MUST make the body fail; the server MUST then close the connection.
#[test]
fn every_case_gets_its_verdict_on_the_pipe_sent_whole() {
    run_all("pipe, whole", |case| {
        run_on_pipe(case, &case.expect, Feed::Whole, WAIT)
    });
}

#[test]
fn every_case_gets_its_verdict_on_the_pipe_one_byte_at_a_time() {
    run_all("pipe, one byte at a time", |case| {
        run_on_pipe(case, &case.expect, Feed::ByteAtATime, WAIT)
    });
}

#[test]
fn every_case_gets_its_verdict_over_loopback_tcp() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default(), Demo::default())
        .expect("binding a loopback server");
    run_all("loopback TCP", |case| run_on_tcp(&server, case));
    server
        .shutdown(Duration::from_secs(5))
        .expect("the server shuts down with no connection left");
}

// The checker's own mutants: a wrong expectation must be reported, in each direction.

fn case_named(name: &str) -> Case {
    corpus()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// Runs `name` on the pipe against a deliberately wrong expectation; returns the report.
fn mismatch_of(name: &str, wrong: &str) -> String {
    let mut case = case_named(name);
    case.expect = Verdict::parse(wrong).unwrap();
    let outcome = run_on_pipe(&case, &case.expect, Feed::Whole, Duration::from_millis(300));
    check(&case, &outcome).expect_err("the checker accepted a wrong expectation")
}

#[test]
fn checker_reports_a_wrong_status() {
    let report = mismatch_of("cl-te-basic", "200 close");
    assert!(
        report.contains("expected `200 close`, got `400 close`"),
        "{report}"
    );
}

#[test]
fn checker_reports_a_kept_open_connection_that_must_close() {
    let report = mismatch_of("pipelined-two-valid", "200 200 close");
    assert!(
        report.contains("expected `200 200 close`, got `200 200`"),
        "{report}"
    );
}

#[test]
fn checker_reports_a_closed_connection_that_must_stay_open() {
    let report = mismatch_of("http11-connection-close", "200");
    assert!(
        report.contains("expected `200`, got `200 close`"),
        "{report}"
    );
}

#[test]
fn checker_reports_a_missing_response() {
    let report = mismatch_of("garbage-after-valid", "200 400 400 close");
    assert!(
        report.contains("expected `200 400 400 close`, got `200 400 close`"),
        "{report}"
    );
}

#[test]
fn malformed_corpus_files_are_refused() {
    let good = b"expect: 400 close\nrule: te-and-cl\nnote: n\n---\nGET";
    let case = corpus::parse_case("good", good).unwrap();
    // The levels are the rule's: RFC 9112 6.1 lets the server choose the status of TE with
    // CL and requires the close.
    assert_eq!(
        (case.rule, case.level, case.close_level),
        ("te-and-cl", Level::Should, Level::Must)
    );
    let bad: [&[u8]; 10] = [
        b"expect: 400 close\nrule: bare-lf\nnote: n\nGET", // no separator
        b"expect: 400 close\nrule: bare-lf\nnote: n\n---\n", // no request bytes
        b"rule: bare-lf\nnote: n\n---\nGET",               // no expect
        b"expect: 400 close\nrule: bare-lf\n---\nGET",     // no note
        b"expect: 400 close\nnote: n\n---\nGET",           // no rule
        b"expect: 400\nrule: no-such-rule\nnote: n\n---\nGET", // unknown rule
        b"expect: close 400\nrule: bare-lf\nnote: n\n---\nGET", // close not last
        b"expect: 4000\nrule: bare-lf\nnote: n\n---\nGET", // not a status
        b"expect: 400\nrule: bare-lf\nnote: n\nlevel: SHOULD\n---\nGET", // levels are the rule's
        b"expect: 400\nrule: bare-lf\nnote: n\nexpected: 200\n---\nGET", // unknown key
    ];
    for bytes in bad {
        assert!(
            corpus::parse_case("bad", bytes).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}
