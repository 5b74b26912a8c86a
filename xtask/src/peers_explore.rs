//! The exploration part of `cargo xtask conform-peers` (SPEC.md#explore): while each
//! implementation runs, `hijack conform URL --explore N` with a fixed seed, so that the same
//! exchanges reach every peer, and the table of what each one disagreed on, with the shrunk
//! vectors (`target/conform/explore/NAME/explore/*.json`).
//!
//! The reference runs 10,000 exchanges and must agree on all of them (no finding, no
//! INCONCLUSIVE, none unjudged): anything else is a harness, model or reference bug. A peer runs
//! a bounded budget (below: the first four kinds of failure shrunk, the others counted); its
//! disagreements are listed, never baselined, because the budget
//! is partly a time budget and the first exchange of each kind depends on the order runs finish.
//! Those worth it become findings in SPEC.md#peers and fixed cases.

use crate::peers::HIJACK_BIN;
use crate::proc;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The seed every implementation is explored with.
pub const SEED: &str = "1";
/// The reference's exchanges, all of which must pass.
const REFERENCE_EXCHANGES: &str = "10000";
/// A peer's budget: exchanges, time to start them in, kinds of failure shrunk, time to shrink
/// each.
const PEER_BUDGET: &[&str] = &[
    "--explore",
    "150",
    "--time",
    "15s",
    "--max-findings",
    "4",
    "--shrink-time",
    "5s",
];

/// Explores the implementation `name` at `url`; writes `out/NAME.explore.json`, its log and
/// its vectors. Err: the run did not produce a report, or (for the reference) it disagreed.
pub fn run(name: &str, url: &str, intermediary: bool, out: &Path) -> Result<(), String> {
    let json = out.join(format!("{name}.explore.json"));
    let log = out.join(format!("{name}.explore.log"));
    let vectors = out.join("explore").join(name);
    let _ = fs::remove_file(&json);
    let _ = fs::remove_dir_all(&vectors);
    let mut cmd = Command::new(HIJACK_BIN);
    cmd.args(["conform", url, "--seed", SEED, "--json"])
        .arg(&json)
        .arg("--explore-out")
        .arg(&vectors)
        .args(intermediary.then_some("--intermediary"));
    if name == "reference" {
        cmd.args([
            "--explore",
            REFERENCE_EXCHANGES,
            "--jobs",
            "16",
            "--time",
            "600s",
        ]);
    } else {
        cmd.args(PEER_BUDGET);
    }
    let mut attempt = || {
        let status = fs::File::create(&log)
            .and_then(|file| cmd.stdout(file.try_clone()?).stderr(file).status());
        let rc = status.map(proc::code).unwrap_or(127);
        read(&json).map(|r| (rc, r)).map_err(|e| {
            let why = fs::read_to_string(&log)
                .ok()
                .and_then(|l| {
                    l.lines()
                        .rev()
                        .find(|l| l.starts_with("hijack conform:"))
                        .map(str::to_string)
                })
                .unwrap_or_default();
            format!(
                "no report ({e}; hijack conform exit {rc}: {why}; see {})",
                log.display()
            )
        })
    };
    // A peer just out of the fixed cases (the memory case's 500 connections among them) may
    // still be busy: one more try after a pause. The reference gets none.
    let (rc, report) = match attempt() {
        Ok(r) => r,
        Err(e) if name == "reference" => return Err(format!("{name}: explore: {e}")),
        Err(_) => {
            std::thread::sleep(std::time::Duration::from_secs(3));
            match attempt() {
                Ok(r) => r,
                Err(e) => {
                    // Listed as not explored, with the reason; the fixed cases and their
                    // baseline still decide the run.
                    eprintln!("conform-peers: {name}: explore: not explored: {e}");
                    let note = serde_json::json!({ "not_explored": e });
                    let _ = fs::write(&json, note.to_string());
                    return Ok(());
                }
            }
        }
    };
    let line = summary_line(name, &report);
    eprintln!("conform-peers: {line}");
    if name == "reference" {
        let passed = count(&report, "PASS");
        let exchanges = report["exchanges"].as_u64().unwrap_or(0);
        if rc != 0 || passed != exchanges || report["not_judged"].as_u64() != Some(0) {
            return Err(format!(
                "reference: explore: not every exchange passed ({line}; see {})",
                log.display()
            ));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn count(report: &Value, verdict: &str) -> u64 {
    report["verdicts"][verdict].as_u64().unwrap_or(0)
}

fn summary_line(name: &str, report: &Value) -> String {
    format!(
        "{name}: explore: {} exchanges (seed {}): {} PASS, {} FAIL, {} NON-STRICT, {} INCONCLUSIVE, {} UNSUPPORTED, {} not judged; {} kind(s) of disagreement, {} shrunk",
        report["exchanges"].as_u64().unwrap_or(0),
        report["seed"],
        count(report, "PASS"),
        count(report, "FAIL"),
        count(report, "NON-STRICT"),
        count(report, "INCONCLUSIVE"),
        count(report, "UNSUPPORTED"),
        report["not_judged"].as_u64().unwrap_or(0),
        report["kinds"].as_object().map_or(0, |k| k.len()),
        report["findings"].as_array().map_or(0, Vec::len)
    )
}

/// The markdown table of the `NAME.explore.json` reports in `paths`: a row per
/// implementation with its counts, then each disagreement with its signature, sizes and vector.
pub fn table(paths: &[PathBuf]) -> Result<String, String> {
    let mut s = format!(
        "## Explore (seed {SEED})\n\n| implementation | exchanges | PASS | FAIL | NON-STRICT | INCONCLUSIVE | UNSUPPORTED | kinds of disagreement | shrunk |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    let mut details = String::new();
    for path in paths {
        let report = read(path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".explore.json"))
            .unwrap_or("?");
        if let Some(why) = report["not_explored"].as_str() {
            s.push_str(&format!("| {name} | not explored: {why} | | | | | | | |\n"));
            continue;
        }
        let findings = report["findings"].as_array().cloned().unwrap_or_default();
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            report["exchanges"].as_u64().unwrap_or(0),
            count(&report, "PASS"),
            count(&report, "FAIL"),
            count(&report, "NON-STRICT"),
            count(&report, "INCONCLUSIVE"),
            count(&report, "UNSUPPORTED"),
            report["kinds"].as_object().map_or(0, |k| k.len()),
            findings.len()
        ));
        for f in &findings {
            details.push_str(&format!(
                "- {name}: {} `{}`, {} bytes shrunk to {}: {}\n",
                f["signature"].as_str().unwrap_or("?"),
                f["name"].as_str().unwrap_or("?"),
                f["bytes"][0],
                f["bytes"][1],
                f["path"].as_str().unwrap_or("(not written)")
            ));
        }
    }
    if !details.is_empty() {
        s.push_str("\nDisagreements (replay one: `hijack conform --vectors DIR URL`):\n\n");
        s.push_str(&details);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_counts_and_every_disagreement() {
        let dir = std::env::temp_dir().join(format!("xtask-explore-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("reference.explore.json");
        let b = dir.join("node.explore.json");
        fs::write(
            &a,
            r#"{"seed":1,"exchanges":3,"not_judged":0,"verdicts":{"PASS":3},"findings":[],"kinds":{}}"#,
        )
        .unwrap();
        fs::write(&b, r#"{"seed":1,"exchanges":3,"not_judged":0,"verdicts":{"PASS":2,"FAIL":1},"findings":[{"signature":"FAIL echo mismatch (contract)","name":"explore/1-2","bytes":[500,120],"path":"x/explore/1-2.json"}],"kinds":{"FAIL echo mismatch (contract)":1,"FAIL close-notify mismatch (contract)":1}}"#).unwrap();
        let c = dir.join("slow.explore.json");
        fs::write(&c, r#"{"not_explored":"no report (busy)"}"#).unwrap();
        let t = table(&[a, b, c]).unwrap();
        assert!(
            t.contains("| slow | not explored: no report (busy) |"),
            "{t}"
        );
        assert!(
            t.contains("| reference | 3 | 3 | 0 | 0 | 0 | 0 | 0 | 0 |"),
            "{t}"
        );
        assert!(
            t.contains("| node | 3 | 2 | 1 | 0 | 0 | 0 | 2 | 1 |"),
            "{t}"
        );
        assert!(
            t.contains("- node: FAIL echo mismatch (contract) `explore/1-2`, 500 bytes shrunk to 120: x/explore/1-2.json"),
            "{t}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
