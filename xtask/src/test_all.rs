//! `cargo xtask test-all`: every test of the project, from a fresh clone (what CI runs through
//! .ci/run and scripts/test-all). Installs what it needs, then runs
//!   1. cargo fmt --check and cargo clippy --all-targets -D warnings (the whole workspace)
//!   2. cargo test --workspace: unit, integration (in-memory and loopback TCP) and doc tests,
//!      and xtask's own (the mutant list against Cargo.toml, the READMEs and the sources)
//!   3. the loom models (model/) with LOOM_MAX_PREEMPTIONS=4 (see model/README.md)
//!   4. duvet-check: every MUST of SPEC.md cited by a test
//!   5. fuzz-check: every fuzz target (fuzz/) built, its corpus replayed, a 30 s smoke run
//!   6. cflite-check: .clusterfuzzlite/build.sh in a simulated ClusterFuzzLite builder, each
//!      target's binary, options, dictionary and seed zip in $OUT, one input run; the
//!      ClusterFuzzLite workflows checked against the GitHub workflow schema
//!   7. conform-peers: the conformance suite (`hijack conform`) against the reference server
//!      (every case must pass) and the peers under peers/, the comparison table
//!   8. html-check: the matrix page of those reports (target/conform/matrix.html) rendered in
//!      headless Chromium (installed when missing), its table checked against the reports, a
//!      screenshot (target/conform/matrix.png)
//!   9. soak: the bounded soak, reduced (10,000 hijacks, 1,000 held; `--full` by hand)
//!  10. kill-matrix --suite loom --suite tests: every seeded bug killed, each kill reproduced
//!      (a cell killed in some runs only is FLAKY and fails the step; the proptest and fuzz
//!      columns take ~20 min more and are run by hand: kill-matrix, fuzz-mutants)
//!
//! and closes with one line counting the tests that ran. Logs: target/test-all/.

use crate::kill_matrix::LOOM_ARGS;
use crate::proc;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const LOG: &str = "target/test-all";
/// The reference server's conformance report: its cases count as tests.
const REFERENCE_REPORT: &str = "target/conform/reference.json";

pub const USAGE: &str =
    "usage: cargo xtask test-all   (every test of the project; logs in target/test-all/)";

struct Steps {
    path: OsString,
    failed: Vec<&'static str>,
}

impl Steps {
    /// Runs one step: `shown` is how it is announced, its output goes to the terminal and to
    /// target/test-all/NAME.log.
    fn step(&mut self, name: &'static str, shown: &str, mut cmd: Command) {
        println!("==> {name}: {shown}");
        let t0 = Instant::now();
        cmd.env("PATH", &self.path);
        let log = Path::new(LOG).join(format!("{name}.log"));
        let ok = match proc::run_tee(&mut cmd, &log) {
            Ok(ok) => ok,
            Err(e) => {
                println!("test-all: {name}: {e}");
                false
            }
        };
        let verdict = if ok { "ok" } else { "FAILED" };
        println!("<== {name} {verdict} ({} s)", proc::whole_secs(t0));
        if !ok {
            self.failed.push(name);
        }
    }

    /// A step that runs `cargo ARGS`.
    fn cargo(&mut self, name: &'static str, args: &[&str]) {
        let mut cmd = Command::new("cargo");
        cmd.args(args);
        self.step(name, &format!("cargo {}", args.join(" ")), cmd);
    }

    /// A step that runs this program's `COMMAND ARGS`.
    fn xtask(&mut self, name: &'static str, args: &[&str]) {
        let exe = std::env::current_exe().unwrap_or_else(|_| "xtask".into());
        let mut cmd = Command::new(exe);
        cmd.args(args);
        self.step(name, &format!("cargo xtask {}", args.join(" ")), cmd);
    }
}

pub fn main(args: &[String]) -> i32 {
    if let Some(code) = proc::no_arguments("test-all", USAGE, args) {
        return code;
    }
    let _ = std::fs::create_dir_all(LOG);
    let started = Instant::now();
    let _ = std::fs::remove_file(REFERENCE_REPORT); // counted at the end: only this run's
    let mut steps = Steps {
        path: proc::path_with_cargo_bin(),
        failed: Vec::new(),
    };

    // What a fresh machine lacks: duvet (crates.io). Everything else is the Rust toolchain.
    if proc::which("duvet").is_none() && !proc::is_executable(&proc::cargo_bin().join("duvet")) {
        steps.cargo(
            "install-duvet",
            &["install", "duvet", "--locked", "--version", "0.4.3"],
        );
    }

    steps.cargo("fmt", &["fmt", "--all", "--", "--check"]);
    steps.cargo(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    steps.cargo("cargo-test", &["test", "--workspace", "--no-fail-fast"]);
    let loom = LOOM_ARGS;
    let mut cmd = Command::new("cargo");
    cmd.args(loom)
        .env("RUSTFLAGS", "--cfg loom")
        .env("LOOM_MAX_PREEMPTIONS", "4");
    steps.step(
        "loom",
        &format!(
            "env RUSTFLAGS=\"--cfg loom\" LOOM_MAX_PREEMPTIONS=4 cargo {}",
            loom.join(" ")
        ),
        cmd,
    );
    steps.xtask("duvet", &["duvet-check"]);
    steps.xtask("fuzz", &["fuzz-check"]);
    steps.xtask("cflite", &["cflite-check"]);
    steps.xtask("conform-peers", &["conform-peers"]);
    steps.xtask("html-check", &["html-check"]);
    steps.xtask("soak", &["soak"]);
    steps.xtask(
        "kill-matrix",
        &["kill-matrix", "--suite", "loom", "--suite", "tests"],
    );

    let failed_steps = if steps.failed.is_empty() {
        "none".to_string()
    } else {
        steps.failed.join(" ")
    };
    println!(
        "test-all: {} s; failed steps: {failed_steps}",
        proc::whole_secs(started)
    );
    let (mut passed, mut failed) = count_logs(Path::new(LOG));
    // The conformance cases run against the reference server are tests too (the peers' results
    // are findings, not failures).
    let (p, f) = count_report(Path::new(REFERENCE_REPORT));
    passed += p;
    failed += f;
    println!(
        "tests: {passed} passed, {} failed",
        failed + steps.failed.len() as u64
    );
    if failed > 0 || !steps.failed.is_empty() {
        1
    } else {
        0
    }
}

/// The sums of every `test result: WORD. N passed; M failed` in the logs of `dir`, but the kill
/// matrix's (its runs are the mutated code, counted in its own table).
fn count_logs(dir: &Path) -> (u64, u64) {
    let (mut passed, mut failed) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".log") || name.starts_with('.') || name == "kill-matrix.log" {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let (p, f) = count_results(&String::from_utf8_lossy(&bytes));
        passed += p;
        failed += f;
    }
    (passed, failed)
}

/// `test result: \w+\. (\d+) passed; (\d+) failed`, summed over `text`.
pub(crate) fn count_results(text: &str) -> (u64, u64) {
    let (mut passed, mut failed) = (0, 0);
    for (at, _) in text.match_indices("test result: ") {
        let rest = &text[at + "test result: ".len()..];
        let word_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if word_end == 0 {
            continue;
        }
        let Some(rest) = rest[word_end..].strip_prefix(". ") else {
            continue;
        };
        let Some((p, rest)) = number_then(rest, " passed; ") else {
            continue;
        };
        let Some((f, _)) = number_then(rest, " failed") else {
            continue;
        };
        passed += p;
        failed += f;
    }
    (passed, failed)
}

/// Digits at the start of `text` followed by `then`: the number and what follows.
fn number_then<'a>(text: &'a str, then: &str) -> Option<(u64, &'a str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n = text[..end].parse().ok()?;
    Some((n, text[end..].strip_prefix(then)?))
}

/// PASS and FAIL cases of a conformance report (none when it is missing or unreadable).
fn count_report(path: &Path) -> (u64, u64) {
    let Some(report) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return (0, 0);
    };
    let cases = report["cases"].as_array().cloned().unwrap_or_default();
    let verdicts = |v: &str| cases.iter().filter(|c| c["verdict"] == v).count() as u64;
    (verdicts("PASS"), verdicts("FAIL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_results_sums_cargo_test_summaries() {
        let text = "test result: ok. 12 passed; 0 failed; 1 ignored\n\
                    test result: FAILED. 3 passed; 2 failed; 0 ignored\n\
                    test result: ok 4 passed; 9 failed\n\
                    test result: ok. 5 passed; 0 failed";
        assert_eq!(count_results(text), (20, 2));
    }
}
