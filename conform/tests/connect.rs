//! The connect profile (SPEC.md#connect-profile): the reference passes every case, and a
//! CONNECT with a seeded bug fails the case written for it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use hijack::{Handler, Request, ResponseWriter, Server, ServerConfig, Transport};
use hijack_conform::demo::Demo;
use hijack_conform::{Profile, RunOptions, RunReport, Suite, Verdict};
use http::StatusCode;

/// A bug seeded into CONNECT; everything else is the reference's.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bug {
    /// The reference.
    None,
    /// The bytes sent with the CONNECT head (the handover's buffer) are dropped.
    DropHeadBytes,
    /// A refusal is an ordinary response: the connection stays HTTP and the bytes after the
    /// head are read as the next request.
    RefuseAndKeepReading,
    /// The client's half-close ends the whole tunnel (what the target sends after it is lost).
    CloseOnHalfClose,
}

#[derive(Clone)]
struct Seeded {
    demo: Demo,
    bug: Bug,
}

impl<T: Transport> Handler<T> for Seeded
where
    T::Stream: Read + Write,
{
    fn serve(&self, req: Request<'_>, mut w: ResponseWriter<'_, T>) {
        if req.method() != http::Method::CONNECT || self.bug == Bug::None {
            return Handler::<T>::serve(&self.demo, req, w);
        }
        let upstream = req
            .target()
            .parse::<SocketAddr>()
            .ok()
            .and_then(|a| TcpStream::connect(a).ok());
        let Some(mut upstream) = upstream else {
            if self.bug == Bug::RefuseAndKeepReading {
                w.write_header(StatusCode::BAD_GATEWAY);
                let _ = w.write_body(b"no tunnel\n");
                return;
            }
            // The other bugs refuse as the reference does.
            return hijack_conform::demo::connect(req, w);
        };
        drop(req);
        let Ok(parts) = w.hijack() else { return };
        let stream: Box<dyn std::any::Any> = Box::new(parts.stream);
        let Ok(client) = stream.downcast::<TcpStream>() else {
            return;
        };
        let mut client = *client;
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .unwrap();
        if self.bug != Bug::DropHeadBytes {
            upstream.write_all(&parts.buffered).unwrap();
        }
        let mut client_in = client.try_clone().unwrap();
        let mut upstream_out = upstream.try_clone().unwrap();
        let bug = self.bug;
        let closing = client.try_clone().unwrap();
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut client_in, &mut upstream_out);
            if bug == Bug::CloseOnHalfClose {
                let _ = closing.shutdown(Shutdown::Both);
            }
            let _ = upstream_out.shutdown(Shutdown::Write);
        });
        let _ = std::io::copy(&mut upstream, &mut client);
        let _ = client.shutdown(Shutdown::Write);
        let _ = up.join();
    }
}

fn serve(bug: Bug) -> Server {
    Server::bind(
        "127.0.0.1:0",
        ServerConfig::default(),
        Seeded {
            demo: Demo::default(),
            bug,
        },
    )
    .unwrap()
}

fn run(bug: Bug) -> RunReport {
    let server = serve(bug);
    let suite = Suite::all();
    let options = RunOptions {
        timeout: Duration::from_secs(5),
        progress: false,
        profiles: vec![Profile::Connect],
        ..RunOptions::default()
    };
    suite.run(server.local_addr(), "seeded", &options).unwrap()
}

fn verdict(report: &RunReport, name: &str) -> Verdict {
    report
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} did not run:\n{}", report.summary()))
        .verdict
}

//= SPEC.md#connect-profile
//= type=test
//# A CONNECT request for 127.0.0.1:PORT of a listening port MUST be answered with a 2xx response without Content-Length or Transfer-Encoding, after which the server MUST relay every byte in both directions, in order, starting with the bytes the client sent with the request head, and MUST pass a half-close on in each direction.
//= SPEC.md#connect-profile
//= type=test
//# A CONNECT request that the server does not tunnel, for a port on which nothing listens or for a target that is not an authority, MUST be answered with a 4xx or 5xx response, after which the server MUST close the connection without reading the bytes that follow the request head as a request and without relaying them.
#[test]
fn the_reference_passes_every_case_of_the_connect_profile() {
    let report = run(Bug::None);
    assert_eq!(report.cases.len(), 6, "{}", report.summary());
    assert!(report.cases.iter().all(|c| c.name.starts_with("connect/")));
    assert!(
        report.cases.iter().all(|c| c.verdict == Verdict::Pass),
        "{}",
        report.summary()
    );
}

#[test]
fn a_tunnel_that_drops_the_bytes_sent_with_the_head_fails_bytes_with_head() {
    let report = run(Bug::DropHeadBytes);
    assert_eq!(verdict(&report, "connect/bytes-with-head"), Verdict::Fail);
    // Bytes sent after the 2xx are not in the handover: the bug does not touch them.
    assert_eq!(verdict(&report, "connect/tunnel-100k"), Verdict::Pass);
}

#[test]
fn a_refusal_that_keeps_reading_http_fails_as_smuggling() {
    let report = run(Bug::RefuseAndKeepReading);
    assert_eq!(verdict(&report, "connect/refused-port"), Verdict::Fail);
    let case = report
        .cases
        .iter()
        .find(|c| c.name == "connect/refused-port")
        .unwrap();
    let misses = format!("{:?}", case.misses);
    assert!(misses.contains("smuggling"), "{misses}");
}

#[test]
fn a_tunnel_that_ends_on_the_client_s_half_close_fails_half_close() {
    let report = run(Bug::CloseOnHalfClose);
    assert_eq!(
        verdict(&report, "connect/half-close"),
        Verdict::Fail,
        "{}",
        report.summary()
    );
}

#[test]
fn a_server_that_answers_connect_as_any_request_does_not_offer_the_profile() {
    // The in-process server of hijack's own demo answers CONNECT; a server that answers it
    // as any other request (200 with a body) is not offered the profile by default.
    struct Plain;
    impl<T: Transport> Handler<T> for Plain {
        fn serve(&self, _req: Request<'_>, mut w: ResponseWriter<'_, T>) {
            let _ = w.write_body(b"hello\n");
        }
    }
    let server = Server::bind("127.0.0.1:0", ServerConfig::default(), Plain).unwrap();
    let mut suite = Suite::all();
    suite
        .select(&["connect/*", "bad-input/te-and-cl"], &[] as &[&str])
        .unwrap();
    let options = RunOptions {
        progress: false,
        ..RunOptions::default()
    };
    let report = suite.run(server.local_addr(), "plain", &options).unwrap();
    assert!(report.cases.iter().all(|c| !c.name.starts_with("connect/")));
    let check = report
        .contract
        .iter()
        .find(|c| c.probe.starts_with("CONNECT"))
        .unwrap();
    assert!(!check.ok && check.rule.contains("not offered"), "{check:?}");
}

/// `tests/vectors/replay.py` runs the exported connect vectors with its own echo listener:
/// all pass on the reference, and the seeded bugs fail theirs.
#[test]
fn replay_py_passes_the_reference_and_catches_the_seeded_bugs() {
    let dir = std::env::temp_dir().join(format!("hijack-connect-vectors-{}", std::process::id()));
    let mut suite = Suite::all();
    suite.select(&["connect/*"], &[] as &[&str]).unwrap();
    assert_eq!(suite.export(&dir).unwrap(), 6);
    let replay = |bug: Bug| {
        let server = serve(bug);
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/vectors/replay.py"
            ))
            .arg(&dir)
            .arg(format!("http://{}", server.local_addr()))
            .arg("10")
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let good = replay(Bug::None);
    assert_eq!(
        good.trim().lines().last(),
        Some("6 passed, 0 failed"),
        "{good}"
    );
    for (bug, case) in [
        (Bug::DropHeadBytes, "connect/bytes-with-head"),
        (Bug::RefuseAndKeepReading, "connect/refused-port"),
        (Bug::CloseOnHalfClose, "connect/half-close"),
    ] {
        let out = replay(bug);
        assert!(out.contains(&format!("FAIL {case}:")), "{bug:?}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
