//! The conformance suite from a Rust server author's own `cargo test`, through the library's
//! public API only (README.md#the-conformance-suite): a server started in-process with the
//! core library and the demo endpoints, every byte-level case run against it.

use hijack_conform::{Case, RunOptions, Suite, Verdict, demo::Demo};

#[test]
fn a_server_started_in_process_passes_the_suite_through_the_library() {
    let demo = Demo::default();
    let config = hijack::ServerConfig {
        on_state: Some(demo.state_hook()),
        ..Default::default()
    };
    let server = hijack::Server::bind("127.0.0.1:0", config, demo).unwrap();

    let mut suite = Suite::all();
    // The memory case needs a heap probe (`/stats`), which only the `hijack` binary's
    // counting allocator gives.
    suite.select::<&str>(&[], &["memory/*"]).unwrap();
    let n = suite.cases().len();
    assert!(n >= 176, "{n} cases");
    assert!(suite.cases().iter().all(|c| matches!(c, Case::Bytes(_))));

    let options = RunOptions {
        progress: false,
        ..RunOptions::default()
    };
    let report = suite
        .run(server.local_addr(), "in-process server", &options)
        .unwrap();
    let not_passed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .collect();
    assert!(not_passed.is_empty(), "{}", report.summary());
    assert_eq!(report.cases.len(), n);
    server.shutdown(std::time::Duration::from_secs(1)).unwrap();
}

#[test]
fn an_unreachable_server_is_an_error_not_a_verdict() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let err = Suite::all()
        .run(addr, "nothing", &RunOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}
