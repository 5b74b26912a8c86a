//! `hijack conform --explore` (SPEC.md#explore) finds what it claims to (a harness test: the
//! kill matrix leaves it out, its broken servers run no core code): the reference and a
//! correct server of the test kit agree with the model; a server with one planted bug
//! (`hijack_testkit::broken`) is found within 1,000 exchanges, the failure shrunk to a vector of
//! a few hundred bytes that fails the broken server again when replayed and passes the
//! reference.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hijack_conform::explore::{ExploreOptions, ExploreReport, explore};
use hijack_conform::{RunOptions, Suite, Verdict, demo::Demo};
use hijack_testkit::broken::{BrokenServer, Bug};

fn reference() -> hijack::Server {
    let demo = Demo::default();
    let config = hijack::ServerConfig {
        on_state: Some(demo.state_hook()),
        ..Default::default()
    };
    hijack::Server::bind("127.0.0.1:0", config, demo).expect("bind the reference server")
}

fn options(
    exchanges: usize,
    max_findings: usize,
    out: Option<std::path::PathBuf>,
) -> ExploreOptions {
    ExploreOptions {
        exchanges,
        seed: 7,
        time: Duration::from_secs(300),
        jobs: 8,
        timeout: Duration::from_secs(5),
        max_findings,
        // A bug's test stops at its first kind of failure.
        stop_after: if max_findings == 1 { 1 } else { 0 },
        shrink_time: Duration::from_secs(60),
        out,
        intermediary: false,
        progress: false,
    }
}

fn explored(addr: SocketAddr, opts: &ExploreOptions) -> ExploreReport {
    explore(addr, "target", opts).expect("explore runs")
}

/// Every exchange passes, none is left unjudged by the model.
fn assert_agrees(report: &ExploreReport, exchanges: usize) {
    assert!(
        report.findings.is_empty(),
        "disagreements: {}",
        report.summary()
    );
    assert_eq!(report.exchanges, exchanges, "{}", report.summary());
    assert_eq!(
        report.verdicts.get("PASS").copied(),
        Some(exchanges),
        "{}",
        report.summary()
    );
    assert_eq!(report.not_judged, 0, "{}", report.summary());
}

//= SPEC.md#explore
//# Every request the model frames before the ending MUST be answered with 200, in order, each
//# response naming the request it answers when the target's bodies name requests.
#[test]
fn the_reference_agrees_with_the_model() {
    let server = reference();
    let report = explored(server.local_addr(), &options(1000, 10, None));
    assert_agrees(&report, 1000);
}

#[test]
fn the_correct_test_kit_server_agrees_with_the_model() {
    let server = BrokenServer::start(Bug::None).unwrap();
    let report = explored(server.addr(), &options(500, 10, None));
    assert_agrees(&report, 500);
}

/// `bug` is found within 1,000 exchanges as a FAIL whose signature has `kind`, shrunk to at
/// most `max_bytes` sent; its vector, replayed with `--vectors`, fails the broken server
/// again and passes the reference.
fn finds(bug: Bug, kind: &str, max_bytes: usize) {
    let server = BrokenServer::start(bug).unwrap();
    let dir = support::scratch(&format!("explore-{bug:?}"));
    let report = explored(server.addr(), &options(1000, 1, Some(dir.clone())));
    eprintln!("{bug:?}: {}", report.summary());
    let f = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("{bug:?} not found: {}", report.summary()));
    assert_eq!(f.verdict, Verdict::Fail, "{}", report.summary());
    assert!(
        f.signature.contains(kind),
        "{bug:?}: {} (wanted {kind})",
        f.signature
    );
    assert!(
        f.bytes.1 <= max_bytes,
        "{bug:?} shrunk to {} bytes only: {}",
        f.bytes.1,
        serde_json::to_string_pretty(&f.vector).unwrap()
    );
    let path = f.path.as_ref().expect("the vector was written");
    assert!(path.starts_with(&dir), "{}", path.display());
    // The vector replays: the same failure on the broken server, a PASS on the reference.
    let replay = |addr: SocketAddr| {
        let mut suite = Suite::all();
        suite.add_vector_dir(&dir).unwrap();
        suite.select(&["explore/*"], &[] as &[&str]).unwrap();
        let opts = RunOptions {
            timeout: Duration::from_secs(2),
            progress: false,
            ..RunOptions::default()
        };
        let report = suite.run(addr, "replay", &opts).unwrap();
        assert_eq!(report.cases.len(), 1);
        report.cases[0].verdict
    };
    assert_eq!(replay(server.addr()), Verdict::Fail, "{bug:?} replayed");
    let reference = reference();
    assert_eq!(
        replay(reference.local_addr()),
        Verdict::Pass,
        "{bug:?} on the reference"
    );
    // And so does the independent Python replayer.
    let python = |addr: SocketAddr| {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/vectors/replay.py"
            ))
            .arg(&dir)
            .arg(format!("http://{addr}"))
            .arg("5")
            .output()
            .expect("python3");
        let stdout = support::text(&out.stdout);
        (
            out.status.code(),
            stdout.trim().lines().last().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        python(server.addr()),
        (Some(1), "0 passed, 1 failed".to_string()),
        "{bug:?} replayed by replay.py"
    );
    assert_eq!(
        python(reference.local_addr()),
        (Some(0), "1 passed, 0 failed".to_string()),
        "{bug:?} replayed by replay.py on the reference"
    );
}

//= SPEC.md#explore
//# After an upgrade the echo MUST be exactly the bytes the client sent after the upgrade head,
//# those of the head's write first.
#[test]
fn finds_a_lost_background_byte() {
    finds(Bug::LosesBackgroundByte, "echo", 300);
}

#[test]
fn finds_dropped_bytes_sent_with_the_upgrade_head() {
    finds(Bug::DropsBytesWithHead, "echo", 300);
}

//= SPEC.md#explore
//# A half-close or a reset while `/close-notify/{id}` waits MUST fire close-notify, and a request
//# pipelined while it waits MUST NOT fire it and MUST be answered after it.
#[test]
fn finds_close_notify_fired_by_a_pipelined_byte() {
    finds(Bug::FiresCloseNotifyOnPipelinedByte, "close-notify", 300);
}

//= SPEC.md#explore
//# A request the model rejects MUST be answered with its rule's status or one the rule accepts,
//# and the server MUST NOT answer any byte the client sent after it.
#[test]
fn finds_a_second_content_length_that_differs_accepted() {
    finds(
        Bug::AcceptsDifferingContentLength,
        "differing-content-length",
        300,
    );
}

#[test]
fn finds_a_connection_kept_after_transfer_encoding_with_content_length() {
    finds(Bug::KeepsConnectionAfterTeAndCl, "te-and-cl", 300);
}

/// The shrunk vectors kept as reproductions of findings (peers/repro/explore, SPEC.md#peers)
/// still load and pass the reference: they fail the peers they name, not the model.
#[test]
fn the_kept_reproductions_pass_the_reference() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../peers/repro/explore");
    let mut suite = Suite::all();
    let n = suite.add_vector_dir(std::path::Path::new(dir)).unwrap();
    assert!(n >= 2, "{n} vectors in {dir}");
    suite.select(&["explore/*"], &[] as &[&str]).unwrap();
    let server = reference();
    let opts = RunOptions {
        progress: false,
        ..RunOptions::default()
    };
    let report = suite.run(server.local_addr(), "reference", &opts).unwrap();
    assert_eq!(report.cases.len(), n);
    for c in &report.cases {
        assert_eq!(c.verdict, Verdict::Pass, "{}: {:?}", c.name, c.misses);
    }
}

#[test]
fn a_target_that_goes_away_ends_the_run_with_a_clear_error() {
    // The preflight takes about ten connections; the server stops after a hundred.
    let server = BrokenServer::start_for(Bug::None, 100).unwrap();
    let e = explore(server.addr(), "target", &options(1000, 10, None)).expect_err("the run stops");
    let e = e.to_string();
    assert!(
        e.contains("stopped accepting connections") && e.contains("--jobs 1"),
        "{e}"
    );
}
