//! `cargo xtask kill-matrix`: runs each test suite against each seeded bug (mutant) of the core.
//!
//! Every mutant is a `cfg(hijack_mutant = "...")` branch in the core, compiled in by its build.rs
//! when HIJACK_MUTANT is set. A suite kills a mutant when one of its tests fails (or it hangs
//! past its time limit). The matrix is printed as markdown and written to target/kill-matrix.md.
//! Fails when the unmutated code fails a suite, when a mutant survives every suite, when a
//! concurrency mutant survives the loom models, or when a cell is FLAKY. The mutants are
//! mutants.rs's list.
//!
//! Reproducible verdicts: a cell whose first run killed is run again, [`runs`] times in all,
//! each repeat only the first test that failed in the first run (in cargo's order: unit tests,
//! then the integration tests by name; `-- --exact NAME`, or the whole suite after a hang). It
//! is killed only if that test failed in every run; killed in some runs only, it is FLAKY. A
//! first run that survived is not repeated: a kill that shows in some runs only is then a
//! survival here, and the mutant needs a reproducible kill elsewhere. Loom cells run twice:
//! loom explores every interleaving within the bound, in the same order each time (only a
//! HashMap's per-process order could change it), so a second run only confirms that; test and
//! proptest cells three times, since their schedules are the machine's. Repeating one test
//! keeps a repeat to seconds: the build is done, and the other test binaries start and filter
//! everything out. A mutant no model can reach (`Mutant::loom` false: the parser's, and bodies
//! no model sends) is not run under loom.

use crate::mutants::{self, MUTANTS, Mutant};
use crate::proc;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// Layout: change these when packages move.
/// The package with the core's build.rs (HIJACK_MUTANT), the loom models and the proptest
/// suites.
pub const CORE_PACKAGE: &str = "hijack";
/// (package, its integration-test directory): the `tests` suite is their unit tests plus every
/// integration test that is not a `prop_*` one; the `proptest` suite is the `prop_*` ones.
pub const TEST_DIRS: &[(&str, &str)] = &[("hijack", "tests"), ("hijack-conform", "conform/tests")];

pub const USAGE: &str = "usage: cargo xtask kill-matrix [--suite NAME ...] [--mutant NAME ...]
  --suite: loom, tests, proptest (default: all three, in that order)
  --mutant: a seeded bug of xtask/src/mutants.rs (default: all)";

/// `cargo` arguments of the loom models (with RUSTFLAGS="--cfg loom"; model/README.md).
pub const LOOM_ARGS: &[&str] = &[
    "test",
    "-p",
    CORE_PACKAGE,
    "--release",
    "--target-dir",
    "target/loom",
    "--no-fail-fast",
    "--test",
    "loom_handover",
    "--test",
    "loom_close_notify",
    "--test",
    "loom_watcher",
    "--test",
    "loom_server",
];

/// The suites, in their default order.
pub const SUITES: &[&str] = &["loom", "tests", "proptest"];

/// How many times a cell whose first run killed is run in all (see the module docs).
pub fn runs(suite: &str) -> usize {
    if suite == "loom" { 2 } else { 3 }
}

/// The lifecycle property's case count in the tests column (10,000 in `cargo test`): enough
/// for it to reach the bugs only it sees, such as a bad chunked body discarded as good.
pub const LIFECYCLE_CASES: &str = "1000";

/// A suite's command line (after `cargo`), extra environment and time limit.
struct Suite {
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    limit: Duration,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The integration tests of `dir` (file stems of `dir/*.rs`, sorted) for which `keep` holds.
fn tests_in(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(proc::root().join(dir))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    stems.sort();
    stems.retain(|s| keep(s));
    stems
}

/// `cargo test --no-fail-fast` over the packages of TEST_DIRS that have a test `keep` holds for
/// (all of them with `lib`), `--lib` when `lib`, and `--test NAME` for each such test.
fn test_command(lib: bool, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut packages = Vec::new();
    let mut tests = Vec::new();
    for (package, dir) in TEST_DIRS {
        let found = tests_in(dir, &keep);
        if lib || !found.is_empty() {
            packages.extend(["-p".to_string(), package.to_string()]);
        }
        tests.extend(found.into_iter().flat_map(|t| ["--test".to_string(), t]));
    }
    let mut args = strings(&["test", "--no-fail-fast"]);
    args.extend(packages);
    if lib {
        args.push("--lib".into());
    }
    args.extend(tests);
    args
}

/// The integration tests of the tests column: all but the proptest suites (their own column;
/// the lifecycle property runs here too, with [`LIFECYCLE_CASES`] cases) and the harness's own
/// tests against servers they build (`harness_*`: no core code runs there, so no core mutant
/// could be killed).
fn in_tests_column(test: &str) -> bool {
    test == "prop_lifecycle" || (!test.starts_with("prop_") && !test.starts_with("harness_"))
}

fn suite(name: &str, mutant: Option<&Mutant>) -> Suite {
    match name {
        "loom" => Suite {
            args: strings(LOOM_ARGS),
            env: vec![("RUSTFLAGS", "--cfg loom"), ("LOOM_MAX_PREEMPTIONS", "3")],
            limit: Duration::from_secs(600),
        },
        "tests" => {
            let args = match mutant.and_then(|m| m.tests_only) {
                Some(only) => {
                    let mut args =
                        strings(&["test", "--no-fail-fast", "-p", CORE_PACKAGE, "--lib"]);
                    args.extend(
                        only.iter()
                            .flat_map(|t| ["--test".to_string(), t.to_string()]),
                    );
                    args
                }
                None => test_command(true, in_tests_column),
            };
            Suite {
                args,
                env: vec![
                    ("HIJACK_LIFECYCLE_CASES", LIFECYCLE_CASES),
                    ("HIJACK_KILL_MATRIX", "1"),
                ],
                limit: Duration::from_secs(600),
            }
        }
        // The proptest suites only (prop_*.rs).
        "proptest" => Suite {
            args: test_command(false, |t| t.starts_with("prop_")),
            env: vec![("HIJACK_KILL_MATRIX", "1")],
            limit: Duration::from_secs(900),
        },
        _ => unreachable!("suite names are checked when parsed"),
    }
}

/// A suite's verdict on one build of the core.
struct Run {
    verdict: &'static str,
    failed: Vec<String>,
    secs: f64,
    text: String,
}

/// One run of suite `name` against `mutant`; with `only`, of those tests alone.
fn run_suite(name: &str, mutant: Option<&Mutant>, only: &[String]) -> Run {
    let Suite {
        mut args,
        env,
        limit,
    } = suite(name, mutant);
    if !only.is_empty() {
        args.extend(["--".to_string(), "--exact".to_string()]);
        args.extend(only.iter().cloned());
    }
    let mut cmd = Command::new("cargo");
    cmd.args(&args)
        .envs(env)
        .env("HIJACK_MUTANT", mutant.map_or("", |m| m.name));
    let start = Instant::now();
    let out = match proc::run_captured(&mut cmd, limit) {
        Ok(out) => out,
        Err(e) => {
            return Run {
                verdict: "error",
                failed: vec![],
                secs: start.elapsed().as_secs_f64(),
                text: format!("cargo {}: {e}", args.join(" ")),
            };
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let Some(status) = out.status else {
        return Run {
            verdict: "killed",
            failed: vec![format!("(hang past {} s)", limit.as_secs())],
            secs,
            text: String::new(),
        };
    };
    let text = out.stdout + &out.stderr;
    let failed = failed_tests(&text);
    let verdict = if text.lines().any(is_error_line) && text.contains("could not compile") {
        return Run {
            verdict: "build failed",
            failed: vec![],
            secs,
            text,
        };
    } else if !status.success() && failed.is_empty() {
        "error"
    } else if failed.is_empty() {
        "survived"
    } else {
        "killed"
    };
    Run {
        verdict,
        failed: if verdict == "error" { vec![] } else { failed },
        secs,
        text,
    }
}

/// The names in `test NAME ... FAILED` lines, in order, then those of the loom models that
/// reported a deadlock (`thread 'NAME' (ID) panicked at` followed by `deadlock; threads`):
/// unwinding a deadlocked model can abort its test binary before libtest prints a verdict.
fn failed_tests(text: &str) -> Vec<String> {
    let mut failed: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .map(str::to_string)
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.windows(2) {
        let name = pair[0]
            .strip_prefix("thread '")
            .and_then(|rest| rest.split_once('\''))
            .filter(|(_, rest)| rest.contains(" panicked at "))
            .map(|(name, _)| name);
        if let Some(name) = name
            && pair[1].starts_with("deadlock; threads")
            && !name.contains(char::is_whitespace)
            && !failed.iter().any(|f| f == name)
        {
            failed.push(name.to_string());
        }
    }
    failed
}

/// A cell's verdict after its runs: the first run's, unless it killed and a repeat of its
/// first failed test did not (FLAKY). The tests shown are the first run's, the repeated first.
fn cell(name: &str, mutant: &Mutant) -> Run {
    let first = run_suite(name, Some(mutant), &[]);
    if first.verdict != "killed" {
        return first;
    }
    let mut killed_in = 1;
    let mut secs = first.secs;
    let hung = first.failed.iter().any(|f| f.starts_with('('));
    let only = if hung {
        vec![]
    } else {
        first.failed[..1].to_vec()
    };
    for _ in 1..runs(name) {
        let again = run_suite(name, Some(mutant), &only);
        secs += again.secs;
        if again.verdict == "killed" && (hung || again.failed.contains(&only[0])) {
            killed_in += 1;
        }
    }
    let n = runs(name);
    Run {
        verdict: if killed_in == n { "killed" } else { "FLAKY" },
        failed: if killed_in == n {
            first.failed
        } else {
            vec![format!(
                "`{}` failed in {killed_in} of {n} runs",
                first.failed[0]
            )]
        },
        secs,
        text: first.text,
    }
}

/// `error:` or `error[E0123]:` at the start of a line (rustc's errors).
fn is_error_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("error") else {
        return false;
    };
    if rest.starts_with(':') {
        return true;
    }
    rest.strip_prefix("[E")
        .and_then(|r| r.split_once("]:"))
        .is_some_and(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Python's repr of a list of strings, as the baseline failure line printed it.
fn list_repr(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

struct Options {
    suites: Vec<&'static str>,
    mutants: Vec<&'static Mutant>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut suites = Vec::new();
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "--suite" | "--mutant" => {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().ok_or(format!("{flag} needs a value"))?.clone(),
                };
                if flag == "--suite" {
                    let s = SUITES.iter().find(|s| **s == value).ok_or(format!(
                        "--suite: invalid choice '{value}' (choose from {})",
                        sorted(SUITES).join(", ")
                    ))?;
                    suites.push(*s);
                } else {
                    let m = mutants::find(&value).ok_or(format!(
                        "--mutant: invalid choice '{value}' (choose from {})",
                        mutants::sorted_names().join(", ")
                    ))?;
                    chosen.push(m);
                }
            }
            _ => return Err(format!("unrecognized argument '{arg}'")),
        }
    }
    Ok(Options {
        suites: if suites.is_empty() {
            SUITES.to_vec()
        } else {
            suites
        },
        mutants: if chosen.is_empty() {
            MUTANTS.iter().collect()
        } else {
            chosen
        },
    })
}

fn sorted(items: &[&'static str]) -> Vec<&'static str> {
    let mut v = items.to_vec();
    v.sort_unstable();
    v
}

pub fn main(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let opts = match parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("xtask kill-matrix: {e}\n{USAGE}");
            return 2;
        }
    };
    let suites = &opts.suites;
    let mutants = &opts.mutants;

    for suite in suites {
        println!("kill-matrix: baseline {suite} ...");
        let run = run_suite(suite, None, &[]);
        if run.verdict != "survived" {
            println!("{}", proc::tail_chars(&run.text, 4000));
            println!(
                "kill-matrix: the unmutated code fails suite {suite}: {} {}",
                run.verdict,
                list_repr(&run.failed)
            );
            return 1;
        }
    }

    let mut ok = true;
    let mut rows = Vec::new();
    for (n, mutant) in mutants.iter().enumerate() {
        let mut cells = Vec::new();
        for suite in suites {
            print!(
                "kill-matrix: [{}/{}] {} x {suite} ... ",
                n + 1,
                mutants.len(),
                mutant.name
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let run = if *suite == "loom" && !mutant.loom {
                Run {
                    verdict: "not run",
                    failed: vec![],
                    secs: 0.0,
                    text: String::new(),
                }
            } else {
                cell(suite, mutant)
            };
            if run.verdict == "build failed" || run.verdict == "error" {
                println!("{}", proc::tail_chars(&run.text, 4000));
                ok = false;
            }
            if run.verdict == "FLAKY" {
                ok = false;
            }
            let failed = if run.failed.is_empty() {
                String::new()
            } else {
                format!(": {}", run.failed.join(", "))
            };
            let repeated = if run.verdict == "killed" {
                format!(", {} runs", runs(suite))
            } else {
                String::new()
            };
            println!("{} ({:.0} s{repeated}){failed}", run.verdict, run.secs);
            cells.push((run.verdict, run.failed));
        }
        let killed = |suite: &str| {
            suites
                .iter()
                .zip(&cells)
                .any(|(s, (verdict, _))| *s == suite && *verdict == "killed")
        };
        if !cells.iter().any(|(verdict, _)| *verdict == "killed") {
            ok = false;
        }
        if mutant.concurrency && suites.contains(&"loom") && !killed("loom") {
            ok = false;
        }
        rows.push((mutant, cells));
    }

    let mut lines = vec![
        format!("| mutant | bug | {} |", suites.join(" | ")),
        format!("|---|---|{}", "---|".repeat(suites.len())),
    ];
    for (mutant, cells) in &rows {
        let out: Vec<String> = cells
            .iter()
            .map(|(verdict, failed)| {
                if *verdict == "killed" {
                    let shown: Vec<String> =
                        failed.iter().take(2).map(|t| format!("`{t}`")).collect();
                    let more = if failed.len() > 2 {
                        format!(" +{}", failed.len() - 2)
                    } else {
                        String::new()
                    };
                    format!("killed by {}{more}", shown.join(", "))
                } else if *verdict == "FLAKY" {
                    format!("**FLAKY** ({})", failed.join(", "))
                } else if *verdict == "not run" {
                    "not run (no model reaches it)".to_string()
                } else {
                    format!("**{verdict}**")
                }
            })
            .collect();
        let kind = if mutant.concurrency {
            " (concurrency)"
        } else {
            ""
        };
        lines.push(format!(
            "| `{}` | {}{kind} | {} |",
            mutant.name,
            mutant.bug,
            out.join(" | ")
        ));
    }
    let table = lines.join("\n");
    let target = Path::new("target");
    let _ = std::fs::create_dir_all(target);
    if let Err(e) = std::fs::write(target.join("kill-matrix.md"), format!("{table}\n")) {
        eprintln!("kill-matrix: target/kill-matrix.md: {e}");
        return 1;
    }
    println!("{table}");
    let killed = rows
        .iter()
        .filter(|(_, cells)| cells.iter().any(|(v, _)| *v == "killed"))
        .count();
    println!(
        "kill-matrix: {killed} of {} mutants killed{}",
        rows.len(),
        if ok { "" } else { " -- FAIL" }
    );
    if ok { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_tests_reads_cargo_test_failure_lines() {
        let text = "test a::b ... ok\ntest c ... FAILED\ntest d e ... FAILED\ntest f ... FAILED\n";
        assert_eq!(failed_tests(text), ["c", "f"]);
    }

    #[test]
    fn failed_tests_reads_loom_deadlocks_of_an_aborted_binary() {
        let text = "test a ... ok\n\
            thread 'm::model_one' (2013) panicked at /x/loom-0.7.3/src/rt/execution.rs:215:13:\n\
            deadlock; threads = [(Id(0), Blocked(Location(None)))]\n\
            thread 'm::model_one' (2013) panicked at /x/loom-0.7.3/src/rt/thread.rs:276:39:\n\
            called `Option::unwrap()` on a `None` value\n\
            thread 'other' (7) panicked at src/x.rs:1:1:\nassertion failed\n";
        assert_eq!(failed_tests(text), ["m::model_one"]);
    }

    #[test]
    fn loom_cells_run_twice_and_the_others_three_times() {
        assert_eq!(runs("loom"), 2);
        assert_eq!(runs("tests"), 3);
        assert_eq!(runs("proptest"), 3);
    }

    #[test]
    fn error_lines_are_rustc_errors() {
        assert!(is_error_line("error: could not compile `hijack`"));
        assert!(is_error_line("error[E0425]: cannot find value"));
        assert!(!is_error_line("error[E]: x"));
        assert!(!is_error_line("  error: indented"));
        assert!(!is_error_line("errors: 3"));
    }

    #[test]
    fn the_tests_suite_is_every_non_proptest_integration_test_with_the_unit_tests() {
        let args = test_command(true, in_tests_column);
        assert!(args.starts_with(&strings(&[
            "test",
            "--no-fail-fast",
            "-p",
            "hijack",
            "-p",
            "hijack-conform",
            "--lib"
        ])));
        for test in ["handover", "conform"] {
            assert!(args.windows(2).any(|w| w == ["--test", test]), "{args:?}");
        }
        let props: Vec<&String> = args.iter().filter(|a| a.starts_with("prop_")).collect();
        assert_eq!(props, ["prop_lifecycle"], "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("harness_")), "{args:?}");
        let prop = test_command(false, |t| t.starts_with("prop_"));
        assert!(
            prop.windows(2).any(|w| w == ["--test", "prop_lifecycle"]),
            "{prop:?}"
        );
        assert!(!prop.contains(&"--lib".to_string()));
    }

    #[test]
    fn tests_only_names_integration_tests_of_the_core() {
        let core_dir = TEST_DIRS
            .iter()
            .find(|(p, _)| *p == CORE_PACKAGE)
            .map(|(_, d)| *d)
            .expect("the core package has a tests directory");
        for m in MUTANTS {
            for t in m.tests_only.unwrap_or_default() {
                let path = proc::root().join(core_dir).join(format!("{t}.rs"));
                assert!(path.is_file(), "{}: no {}", m.name, path.display());
            }
        }
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(parse(&["--suit".into(), "tests".into()]).is_err());
        assert!(parse(&["--suite".into(), "nope".into()]).is_err());
        assert!(parse(&["--mutant".into()]).is_err());
        let opts = parse(&[
            "--suite=tests".into(),
            "--mutant".into(),
            "keep_deadlines".into(),
        ])
        .expect("valid");
        assert_eq!(opts.suites, ["tests"]);
        assert_eq!(opts.mutants[0].name, "keep_deadlines");
    }
}
