//! The harness's verdicts do not depend on `--timeout` (SPEC.md#conformance-endpoints:
//! "Verdicts come from what was observed, never from a timer"): the same cases against a
//! server that lingers before it closes, as nginx does, and against one that keeps the
//! connection after a 400, with 3 s and with 30 s per step. No core code runs here (the
//! servers are the test's own), so the kill matrix leaves `harness_*` files out.

mod support;
use support::*;

use std::collections::HashMap;
use std::net::SocketAddr;

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
