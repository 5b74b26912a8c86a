//! The websocket profile (SPEC.md#websocket-profile) and the profile mechanism
//! (SPEC.md#conformance-endpoints, Profiles): the reference passes every case; a `/ws` with a
//! seeded bug fails the case written for it; a server without `/ws` is not tested on the
//! profile unless asked for.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use hijack::{Handler, Request, ResponseWriter, Server, ServerConfig, Transport};
use hijack_conform::demo::{self, Demo};
use hijack_conform::{Profile, RunOptions, RunReport, Suite, Verdict};
use http::{HeaderValue, StatusCode, header};

/// A bug seeded into `/ws`; every other path is the reference's.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bug {
    /// The reference.
    None,
    /// The frames sent with the handshake are dropped (tokio-tungstenite, Bun).
    DropHeadBytes,
    /// The 101 carries `Connection: Upgrade, close` (actix).
    CloseOnUpgrade,
    /// Any key is upgraded, even one that is not 16 bytes.
    AnyKey,
    /// No `/ws`: the path is answered as any other.
    NoWs,
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
        if req.path() != "/ws" || matches!(self.bug, Bug::None) {
            return Handler::<T>::serve(&self.demo, req, w);
        }
        match self.bug {
            Bug::DropHeadBytes => {
                if let Some(mut parts) = demo::ws_accept(&req, w) {
                    parts.buffered.clear();
                    demo::ws_echo(parts);
                }
            }
            Bug::CloseOnUpgrade | Bug::AnyKey => {
                let key = req
                    .headers()
                    .get("sec-websocket-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
                let connection = if self.bug == Bug::CloseOnUpgrade {
                    "Upgrade, close"
                } else {
                    "Upgrade"
                };
                let h = w.headers_mut();
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static(connection));
                h.insert(
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).unwrap(),
                );
                w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                if let Ok(parts) = w.hijack() {
                    drop(req);
                    demo::ws_echo(parts);
                }
            }
            Bug::NoWs => {
                // Path `/ws` is not served: answer as the contract's "any other path".
                let _ = w.write_body(b"GET /ws: no WebSocket here\n");
            }
            Bug::None => unreachable!(),
        }
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

fn run(addr: SocketAddr, include: &[&str], profiles: &[Profile]) -> RunReport {
    let mut suite = Suite::all();
    suite.select(include, &["memory/*"]).unwrap();
    let options = RunOptions {
        timeout: Duration::from_secs(5),
        progress: false,
        profiles: profiles.to_vec(),
        ..RunOptions::default()
    };
    suite.run(addr, "seeded", &options).unwrap()
}

fn verdict(report: &RunReport, name: &str) -> Verdict {
    report
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} did not run:\n{}", report.summary()))
        .verdict
}

//= SPEC.md#websocket-profile
//= type=test
//# A request for /ws that is a valid WebSocket opening handshake MUST be answered with 101 Switching Protocols carrying Upgrade: websocket, Connection: Upgrade without the close option and the Sec-WebSocket-Accept derived from its Sec-WebSocket-Key, after which the server MUST echo every data message it receives as one message of the same type and payload, starting with the frames sent with the handshake, in order.
//= SPEC.md#websocket-profile
//= type=test
//# The server MUST answer a Ping with a Pong carrying the same payload, and a Close with a Close, after which it MUST close the connection.
//= SPEC.md#websocket-profile
//= type=test
//# An opening handshake for /ws whose Sec-WebSocket-Key is not 16 bytes in base64, or whose Sec-WebSocket-Version is not 13, MUST be refused with a 4xx status and no upgrade, after which the server MUST read the connection as HTTP: a request pipelined after the refused handshake is answered as a request or the connection is closed, never read as WebSocket frames.
#[test]
fn the_reference_passes_every_case_of_the_websocket_profile() {
    let server = serve(Bug::None);
    let report = run(server.local_addr(), &[], &[Profile::Websocket]);
    assert_eq!(report.cases.len(), 11, "{}", report.summary());
    assert!(
        report
            .cases
            .iter()
            .all(|c| c.name.starts_with("websocket/")),
        "--profile websocket runs only that profile"
    );
    assert!(
        report.cases.iter().all(|c| c.verdict == Verdict::Pass),
        "{}",
        report.summary()
    );
}

#[test]
fn a_ws_that_drops_the_frames_sent_with_the_handshake_fails_the_cases_that_send_them() {
    let server = serve(Bug::DropHeadBytes);
    let report = run(server.local_addr(), &["websocket/*"], &[]);
    for name in [
        "websocket/frame-with-handshake",
        "websocket/100k-message",
        "websocket/fragmented-message",
        "websocket/ping-pong",
    ] {
        assert_eq!(verdict(&report, name), Verdict::Fail, "{name}");
    }
    // A frame sent after the 101, or one byte at a time (the head is read before the
    // frame arrives), is not in the handover: the bug does not touch it.
    for name in ["websocket/frame-after-101", "websocket/one-byte-at-a-time"] {
        assert_eq!(verdict(&report, name), Verdict::Pass, "{name}");
    }
}

#[test]
fn connection_close_on_the_101_fails_frame_after_101() {
    let server = serve(Bug::CloseOnUpgrade);
    let report = run(server.local_addr(), &["websocket/frame-after-101"], &[]);
    assert_eq!(verdict(&report, "websocket/frame-after-101"), Verdict::Fail);
    let misses = format!("{:?}", report.cases[0].misses);
    assert!(misses.contains("close"), "{misses}");
}

#[test]
fn upgrading_a_bad_key_fails_bad_key_refused() {
    let server = serve(Bug::AnyKey);
    let report = run(server.local_addr(), &["websocket/bad-key-*"], &[]);
    assert_eq!(
        verdict(&report, "websocket/bad-key-refused"),
        Verdict::Fail,
        "{}",
        report.summary()
    );
}

#[test]
fn a_server_without_ws_is_not_tested_on_the_profile_unless_asked_for() {
    let server = serve(Bug::NoWs);
    let addr = server.local_addr();
    // By default: the raw profile only, exactly the cases it had before profiles (the
    // baselines of peers without /ws do not change), and the preflight says why.
    let report = run(addr, &[], &[]);
    let mut raw = Suite::all();
    raw.select(&[] as &[&str], &["memory/*"]).unwrap();
    raw.select_profiles(&[Profile::Raw]);
    let ran = |profile: &str| {
        report
            .cases
            .iter()
            .filter(|c| c.name.starts_with(profile))
            .count()
    };
    // The seeded server is the reference for CONNECT, so the connect profile runs too.
    assert_eq!(report.cases.len() - ran("connect/"), raw.cases().len());
    assert!(
        report
            .cases
            .iter()
            .all(|c| !c.name.starts_with("websocket/"))
    );
    let check = report
        .contract
        .iter()
        .find(|c| c.probe.contains("/ws"))
        .expect("a preflight check of /ws");
    assert!(!check.ok && check.optional, "{check:?}");
    assert!(check.rule.contains("not offered"), "{check:?}");
    // Asked for: every case of the profile runs and is UNSUPPORTED (never FAIL).
    let report = run(addr, &[], &[Profile::Websocket]);
    assert_eq!(report.cases.len(), 11);
    assert!(
        report
            .cases
            .iter()
            .all(|c| c.verdict == Verdict::Unsupported),
        "{}",
        report.summary()
    );
    // Only websocket cases selected, and the profile not offered: nothing to run, an error.
    let mut suite = Suite::all();
    suite.select(&["websocket/*"], &[] as &[&str]).unwrap();
    let options = RunOptions {
        progress: false,
        ..RunOptions::default()
    };
    let err = suite.run(addr, "seeded", &options).unwrap_err();
    assert!(err.to_string().contains("not offered"), "{err}");
}

#[test]
fn profiles_parse_by_name() {
    assert_eq!(Profile::parse("websocket").unwrap(), Profile::Websocket);
    assert_eq!(Profile::parse("raw").unwrap(), Profile::Raw);
    assert!(
        Profile::parse("ws")
            .unwrap_err()
            .to_string()
            .contains("raw, websocket")
    );
}

/// `tests/vectors/replay.py` judges the exported websocket vectors as the harness does: all
/// pass on the reference, and the lost-first-frame bug fails them.
#[test]
fn replay_py_passes_the_reference_and_catches_the_dropped_frames() {
    let dir = std::env::temp_dir().join(format!("hijack-ws-vectors-{}", std::process::id()));
    let mut suite = Suite::all();
    suite.select(&["websocket/*"], &[] as &[&str]).unwrap();
    assert_eq!(suite.export(&dir).unwrap(), 11);
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
        Some("11 passed, 0 failed"),
        "{good}"
    );
    let bad = replay(Bug::DropHeadBytes);
    for name in [
        "websocket/frame-with-handshake",
        "websocket/100k-message",
        "websocket/ping-pong",
    ] {
        assert!(bad.contains(&format!("FAIL {name}:")), "{name}: {bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
