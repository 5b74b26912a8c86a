//! `cargo xtask fuzz-check` (the test command's fuzz step) and `cargo xtask fuzz-mutants` (the
//! fuzz column of the kill matrix). Owns how the cargo-fuzz targets of fuzz/ are built and run;
//! the targets themselves live in fuzz/fuzz_targets.

use crate::mutants::{self, MUTANTS, Mutant};
use crate::proc;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// Layout: change these when the fuzz crate moves.
/// The cargo-fuzz crate (its own workspace; it depends on the core by path).
pub const FUZZ_DIR: &str = "fuzz";
/// Where fuzz-mutants builds the targets, one mutant at a time.
const MUTANTS_TARGET_DIR: &str = "fuzz/target/mutants";
/// The target triple cargo fuzz builds for.
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
/// The serving targets, run by default; request_head (the parser alone) on request.
const TARGETS: &[&str] = &["serve_bytes", "lifecycle"];
const ALL_TARGETS: &[&str] = &["serve_bytes", "lifecycle", "request_head"];
/// The markers around the fuzz-mutants table in fuzz/README.md.
pub const README_MARKERS: (&str, &str) =
    ("<!-- fuzz-mutants:begin -->", "<!-- fuzz-mutants:end -->");

pub const CHECK_USAGE: &str = "usage: cargo xtask fuzz-check
  The fuzz step of the test command (fuzz/README.md): installs cargo-fuzz where absent, builds
  every fuzz target (cargo +nightly fuzz build), replays the committed corpora (every input must
  pass), then a smoke run of each target for FUZZ_SMOKE_SECONDS (30 s by default, at most 60)
  into target/fuzz-smoke/<target>. Closes with
    fuzz: N targets built, M corpus inputs replayed, smoke ok";

pub const MUTANTS_USAGE: &str = "usage: cargo xtask fuzz-mutants [--mutant NAME ...] [--target NAME ...] [--seconds N] [--no-readme]
  Fuzz column of the kill matrix: for each seeded bug, builds the fuzz targets with
  HIJACK_MUTANT=<mutant>, runs serve_bytes and lifecycle (--target: also request_head) for at
  most --seconds (120) each from the committed corpus, niced, one job, and records when each
  crashed. Prints a markdown table, writes target/fuzz-mutants.md and, for a full 120 s run of
  the default targets, fuzz/README.md's table (--mutant: only those rows). Slow: not part of
  the test command.";

fn nice(args: &[&str]) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"]).args(args);
    cmd
}

/// Runs `cmd` with its output going to ours; its exit code when it failed (`set -e`).
fn checked(cmd: &mut Command) -> Result<(), i32> {
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(proc::code(s)),
        Err(e) => {
            eprintln!("fuzz-check: {cmd:?}: {e}");
            Err(127)
        }
    }
}

fn quiet_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

fn log_to(cmd: &mut Command, log: &Path) -> std::io::Result<bool> {
    let file = fs::File::create(log)?;
    let status = cmd.stdout(file.try_clone()?).stderr(file).status()?;
    Ok(status.success())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn check(args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            println!("{CHECK_USAGE}");
            return 0;
        }
        eprintln!("xtask fuzz-check: unrecognized argument '{arg}'\n{CHECK_USAGE}");
        return 2;
    }
    match run_check() {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn run_check() -> Result<(), i32> {
    let smoke = match std::env::var("FUZZ_SMOKE_SECONDS") {
        Ok(s) if !s.is_empty() => s.parse::<u64>().map_err(|_| {
            eprintln!("fuzz-check: FAIL: FUZZ_SMOKE_SECONDS={s} is not a number of seconds");
            1
        })?,
        _ => 30,
    }
    .min(60);
    let path = proc::path_with_cargo_bin();
    let cmd = |program: &str| {
        let mut c = Command::new(program);
        c.env("PATH", &path);
        c
    };
    if !quiet_ok(cmd("rustup").args(["run", "nightly", "rustc", "--version"])) {
        eprintln!(
            "fuzz-check: FAIL: no nightly toolchain (cargo fuzz needs one: rustup toolchain install nightly)"
        );
        return Err(1);
    }
    if !quiet_ok(cmd("cargo").args(["fuzz", "--version"])) {
        println!("fuzz-check: installing cargo-fuzz");
        checked(cmd("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }

    let root = proc::root();
    let target = root.join("target");
    let _ = fs::create_dir_all(&target);
    let fuzz = root.join(FUZZ_DIR);
    let list = cmd("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(&fuzz)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            eprintln!("fuzz-check: cargo +nightly fuzz list: {e}");
            1
        })?;
    if !list.status.success() {
        return Err(proc::code(list.status));
    }
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    let targets: Vec<&str> = listed.split_whitespace().collect();
    println!(
        "fuzz-check: building {} targets: {}",
        targets.len(),
        targets.join(" ")
    );
    let nice_cmd = |args: &[&str]| {
        let mut c = nice(args);
        c.env("PATH", &path).current_dir(&fuzz);
        c
    };
    checked(&mut nice_cmd(&["cargo", "+nightly", "fuzz", "build"]))?;

    let mut replayed = 0;
    for t in &targets {
        let corpus = format!("corpus/{t}");
        let n = count_files(&fuzz.join(&corpus));
        println!("fuzz-check: replaying {n} inputs of {corpus}");
        let log = target.join(format!("fuzz-replay-{t}.log"));
        let passed = log_to(
            &mut nice_cmd(&[
                "cargo",
                "+nightly",
                "fuzz",
                "run",
                t,
                &corpus,
                "--",
                "-runs=0",
                "-timeout=60",
            ]),
            &log,
        )
        .unwrap_or(false);
        if !passed {
            println!(
                "{}",
                last_lines(&fs::read_to_string(&log).unwrap_or_default(), 60)
            );
            eprintln!(
                "fuzz-check: FAIL: an input of {corpus} fails (log: target/fuzz-replay-{t}.log)"
            );
            return Err(1);
        }
        replayed += n;
    }

    for t in &targets {
        let work = target.join("fuzz-smoke").join(t);
        let _ = fs::remove_dir_all(&work);
        let _ = fs::create_dir_all(&work);
        println!("fuzz-check: smoke run of {t} for {smoke} s");
        let work_s = work.to_string_lossy().into_owned();
        let corpus = format!("corpus/{t}");
        let max_time = format!("-max_total_time={smoke}");
        let mut args = vec![
            "cargo",
            "+nightly",
            "fuzz",
            "run",
            t,
            &work_s,
            &corpus,
            "--",
            &max_time,
            "-timeout=60",
            "-rss_limit_mb=4096",
        ];
        // lifecycle's input is an `arbitrary` encoding: HTTP tokens do not help it.
        if *t != "lifecycle" {
            args.push("-dict=http.dict");
        }
        let log = target.join(format!("fuzz-smoke-{t}.log"));
        let passed = log_to(&mut nice_cmd(&args), &log).unwrap_or(false);
        let text = fs::read_to_string(&log).unwrap_or_default();
        if !passed {
            let kept: Vec<&str> = text.lines().filter(|l| !is_stack_frame(l)).collect();
            println!("{}", last_lines(&kept.join("\n"), 80));
            eprintln!(
                "fuzz-check: FAIL: the smoke run of {t} crashed (log: target/fuzz-smoke-{t}.log; input in fuzz/artifacts/{t}/)"
            );
            return Err(1);
        }
        for line in text.lines().filter(|l| is_done_line(l)) {
            println!("fuzz-check: {t}: {line}");
        }
    }

    println!(
        "fuzz: {} targets built, {replayed} corpus inputs replayed, smoke ok",
        targets.len()
    );
    Ok(())
}

/// A sanitizer stack frame, `^ *#[0-9]* 0x`.
fn is_stack_frame(line: &str) -> bool {
    line.trim_start_matches(' ')
        .strip_prefix('#')
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        .is_some_and(|r| r.starts_with(" 0x"))
}

/// libFuzzer's closing line, `^#[0-9]+[[:space:]]+DONE`.
fn is_done_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('#') else {
        return false;
    };
    let after_digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let after_space = after_digits.trim_start_matches(|c: char| c.is_ascii_whitespace());
    after_digits.len() < rest.len()
        && after_space.len() < after_digits.len()
        && after_space.starts_with("DONE")
}

struct MutantsOptions {
    mutants: Vec<&'static Mutant>,
    targets: Vec<&'static str>,
    targets_given: bool,
    seconds: u64,
    readme: bool,
}

fn parse_mutants(args: &[String]) -> Result<MutantsOptions, String> {
    let mut opts = MutantsOptions {
        mutants: vec![],
        targets: vec![],
        targets_given: false,
        seconds: 120,
        readme: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || match inline.clone() {
            Some(v) => Ok(v),
            None => it.next().cloned().ok_or(format!("{flag} needs a value")),
        };
        match flag {
            "--mutant" => {
                let v = value()?;
                opts.mutants.push(mutants::find(&v).ok_or(format!(
                    "--mutant: invalid choice '{v}' (choose from {})",
                    mutants::sorted_names().join(", ")
                ))?);
            }
            "--target" => {
                let v = value()?;
                let t = ALL_TARGETS.iter().find(|t| **t == v).ok_or(format!(
                    "--target: invalid choice '{v}' (choose from {})",
                    ALL_TARGETS.join(", ")
                ))?;
                opts.targets.push(t);
                opts.targets_given = true;
            }
            "--seconds" => {
                let v = value()?;
                opts.seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: invalid number '{v}'"))?;
            }
            "--no-readme" if inline.is_none() => opts.readme = false,
            _ => return Err(format!("unrecognized argument '{arg}'")),
        }
    }
    if opts.mutants.is_empty() {
        opts.mutants = MUTANTS.iter().collect();
    }
    if opts.targets.is_empty() {
        opts.targets = TARGETS.to_vec();
    }
    opts.seconds = opts.seconds.min(120);
    Ok(opts)
}

/// Builds `targets` with `mutant` compiled in; the seconds it took.
fn build(mutant: &Mutant, targets: &[&str]) -> Result<f64, String> {
    let start = Instant::now();
    // Absolute: cargo fuzz runs in fuzz/, and `run` looks for the binaries under the root.
    let target_dir = proc::root().join(MUTANTS_TARGET_DIR);
    for target in targets {
        let out = nice(&["cargo", "+nightly", "fuzz", "build", "--target-dir"])
            .arg(&target_dir)
            .arg(target)
            .current_dir(proc::root().join(FUZZ_DIR))
            .env("HIJACK_MUTANT", mutant.name)
            .output()
            .map_err(|e| format!("fuzz-mutants: cargo fuzz build: {e}"))?;
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprint!(
                "{}{}",
                proc::tail_chars(&stdout, 3000),
                proc::tail_chars(&stderr, 3000)
            );
            return Err(format!(
                "fuzz-mutants: building {target} with {} failed",
                mutant.name
            ));
        }
        let binary = target_dir.join(TRIPLE).join("release").join(target);
        if !binary.is_file() {
            return Err(format!(
                "fuzz-mutants: cargo fuzz build left no {}",
                binary.display()
            ));
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The line that says which check fired.
fn first_failure(log: &str) -> String {
    type Finder = fn(&str) -> Option<usize>;
    let patterns: [Finder; 4] = [
        |l| {
            ["serve_bytes: ", "lifecycle: ", "request_head: "]
                .iter()
                .any(|p| l.starts_with(p))
                .then_some(0)
        },
        |l| l.find("panicked at "),
        |l| l.find("ERROR: libFuzzer: "),
        |l| l.find("ALARM: "),
    ];
    let lines: Vec<&str> = log.split('\n').collect();
    for (n, pattern) in patterns.iter().enumerate() {
        let found = lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| pattern(l).map(|at| (i, &l[at..])));
        if let Some((i, matched)) = found {
            let mut line = matched;
            if n == 1 {
                // The panic message is the next non-empty line.
                if let Some(next) = lines[i + 1..].iter().find(|l| !l.is_empty()) {
                    line = next;
                }
            }
            return line.trim().chars().take(90).collect();
        }
    }
    "crashed".into()
}

/// Runs `target` (built with `mutant`) for at most `seconds` from a copy of its corpus:
/// (seconds to the first crash if it crashed, seconds it ran, the check that fired).
fn run(mutant: &Mutant, target: &str, seconds: u64) -> (Option<f64>, f64, String) {
    let root = proc::root();
    let fuzz = root.join(FUZZ_DIR);
    let binary = root
        .join(MUTANTS_TARGET_DIR)
        .join(TRIPLE)
        .join("release")
        .join(target);
    let artifacts = fuzz.join("artifacts").join("mutants");
    let _ = fs::create_dir_all(&artifacts);
    let corpus = temp_corpus(&fuzz.join("corpus").join(target), target);
    let mut cmd = nice(&[]);
    cmd.arg(&binary)
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=30", "-rss_limit_mb=4096", "-max_len=4096"])
        .arg(format!(
            "-artifact_prefix={}/{}-{target}-",
            artifacts.display(),
            mutant.name
        ))
        .current_dir(&fuzz);
    if target != "lifecycle" {
        cmd.arg(format!("-dict={}", fuzz.join("http.dict").display()));
    }
    let start = Instant::now();
    let (log, ok) = match proc::run_captured(&mut cmd, Duration::from_secs(seconds + 120)) {
        Ok(out) => (
            out.stdout + &out.stderr,
            out.status.is_some_and(|s| s.success()),
        ),
        Err(e) => (format!("{e}"), false),
    };
    let secs = start.elapsed().as_secs_f64();
    let _ = fs::remove_dir_all(&corpus);
    if ok {
        return (None, secs, String::new());
    }
    let replay = if log.contains("INITED") {
        ""
    } else {
        "corpus replay: "
    };
    (Some(secs), secs, format!("{replay}{}", first_failure(&log)))
}

/// A fresh temporary directory holding a copy of the files of `corpus`.
fn temp_corpus(corpus: &Path, target: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fuzz-{target}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::create_dir_all(&dir);
    if let Ok(entries) = fs::read_dir(corpus) {
        for entry in entries.flatten() {
            let _ = fs::copy(entry.path(), dir.join(entry.file_name()));
        }
    }
    dir
}

/// Writes the table into fuzz/README.md (see `merged_readme`).
fn write_readme(lines: &[String], partial: bool) {
    let path = proc::root().join(FUZZ_DIR).join("README.md");
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    if let Some(new) = merged_readme(&text, lines, partial, &proc::utc_date())
        && let Err(e) = fs::write(&path, new)
    {
        eprintln!("fuzz-mutants: {}: {e}", path.display());
    }
}

/// `readme` with the table `lines` between its markers, and the notes that followed the old
/// table kept; `partial`: only some mutants ran, so their rows replace the same rows of the
/// table already there (None: no markers, or a table with other columns).
fn merged_readme(readme: &str, lines: &[String], partial: bool, stamp: &str) -> Option<String> {
    let (begin, end) = README_MARKERS;
    let (head, rest) = readme.split_once(begin)?;
    let (old, tail) = rest.split_once(end)?;
    let key = |l: &str| l.split('|').nth(1).unwrap_or("").trim().to_string();
    let mut lines = lines.to_vec();
    if partial {
        let mut new_rows: Vec<(String, String)> =
            lines[2..].iter().map(|l| (key(l), l.clone())).collect();
        let old_lines: Vec<&str> = old.lines().filter(|l| l.starts_with('|')).collect();
        if old_lines.len() < 3 || old_lines[0] != lines[0] {
            return None;
        }
        let mut merged = Vec::new();
        for l in old_lines {
            match new_rows.iter().position(|(k, _)| *k == key(l)) {
                Some(at) => merged.push(new_rows.remove(at).1),
                None => merged.push(l.to_string()),
            }
        }
        merged.extend(new_rows.into_iter().map(|(_, l)| l));
        lines = merged;
    }
    let table = lines.join("\n");
    // What follows the old table's last row (notes written by hand) stays.
    let mut notes = "";
    let mut at = 0;
    for line in old.split_inclusive('\n') {
        at += line.len();
        if line.starts_with('|') {
            notes = &old[at..];
        }
    }
    Some(format!(
        "{head}{begin}\nMeasured {stamp} by `cargo xtask fuzz-mutants`:\n\n{table}\n{notes}{end}{tail}"
    ))
}

pub fn mutants_main(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{MUTANTS_USAGE}");
        return 0;
    }
    let opts = match parse_mutants(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("xtask fuzz-mutants: {e}\n{MUTANTS_USAGE}");
            return 2;
        }
    };
    let seconds = opts.seconds;
    let targets = &opts.targets;
    let mut rows = Vec::new();
    for (n, mutant) in opts.mutants.iter().enumerate() {
        let built = match build(mutant, targets) {
            Ok(secs) => secs,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        println!(
            "fuzz-mutants: [{}/{}] {}: built in {built:.0} s",
            n + 1,
            opts.mutants.len(),
            mutant.name
        );
        let mut cells = Vec::new();
        for target in targets {
            let (found, secs, what) = run(mutant, target, seconds);
            let verdict = match found {
                Some(found) => format!("found in {found:.0} s: {what}"),
                None => format!("survived {secs:.0} s"),
            };
            println!("fuzz-mutants:   {target}: {verdict}");
            cells.push((found, what));
        }
        rows.push((mutant, cells));
    }

    let mut lines = vec![
        format!("| mutant | bug | {} |", targets.join(" | ")),
        format!("|---|---|{}", "---|".repeat(targets.len())),
    ];
    for (mutant, cells) in &rows {
        let out: Vec<String> = cells
            .iter()
            .map(|(found, how)| match found {
                None => format!("survived {seconds} s"),
                Some(found) => format!("**{found:.0} s**: {}", how.replace('|', "/")),
            })
            .collect();
        lines.push(format!(
            "| `{}` | {} | {} |",
            mutant.name,
            mutant.bug,
            out.join(" | ")
        ));
    }
    let table = lines.join("\n");
    let target_dir = proc::root().join("target");
    let _ = fs::create_dir_all(&target_dir);
    if let Err(e) = fs::write(target_dir.join("fuzz-mutants.md"), format!("{table}\n")) {
        eprintln!("fuzz-mutants: target/fuzz-mutants.md: {e}");
        return 1;
    }
    println!("{table}");
    let found = rows
        .iter()
        .filter(|(_, cells)| cells.iter().any(|(f, _)| f.is_some()))
        .count();
    println!(
        "fuzz-mutants: {found} of {} mutants found within {seconds} s",
        rows.len()
    );
    if opts.readme && !opts.targets_given && seconds == 120 {
        write_readme(
            &lines,
            args.iter()
                .any(|a| a == "--mutant" || a.starts_with("--mutant=")),
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_prefers_the_targets_own_line_then_the_panic_message() {
        let log = "INFO: x\nthread 'main' panicked at src/a.rs:1:2:\n\nassertion failed\nlifecycle: the hijack gave Ok(\"\")\n";
        assert_eq!(first_failure(log), "lifecycle: the hijack gave Ok(\"\")");
        let log = "thread 'main' panicked at src/a.rs:1:2:\n\nassertion failed: x\n";
        assert_eq!(first_failure(log), "assertion failed: x");
        assert_eq!(
            first_failure("==1== ERROR: libFuzzer: deadly signal"),
            "ERROR: libFuzzer: deadly signal"
        );
        assert_eq!(first_failure("nothing"), "crashed");
        assert_eq!(
            first_failure(&format!("serve_bytes: {}", "x".repeat(200)))
                .chars()
                .count(),
            90
        );
    }

    #[test]
    fn log_line_filters_match_the_scripts_patterns() {
        assert!(is_stack_frame("    #12 0x55d in foo"));
        assert!(is_stack_frame("# 0x1"));
        assert!(!is_stack_frame("#12 DONE"));
        assert!(is_done_line("#123\tDONE   cov: 1"));
        assert!(is_done_line("#1 DONE"));
        assert!(!is_done_line("#DONE"));
        assert!(!is_done_line("#12DONE"));
    }

    #[test]
    fn a_partial_run_replaces_only_its_rows() {
        let readme = "intro\n<!-- fuzz-mutants:begin -->\nMeasured 2026-01-01 by x:\n\n| mutant | bug | a |\n|---|---|---|\n| `m1` | b1 | old |\n| `m2` | b2 | old |\n\nnote\n<!-- fuzz-mutants:end -->\nafter\n";
        let lines: Vec<String> = [
            "| mutant | bug | a |",
            "|---|---|---|",
            "| `m2` | b2 | new |",
            "| `m3` | b3 | new |",
        ]
        .map(String::from)
        .to_vec();
        let merged = merged_readme(readme, &lines, true, "2026-12-01").unwrap();
        assert_eq!(
            merged,
            "intro\n<!-- fuzz-mutants:begin -->\nMeasured 2026-12-01 by `cargo xtask fuzz-mutants`:\n\n| mutant | bug | a |\n|---|---|---|\n| `m1` | b1 | old |\n| `m2` | b2 | new |\n| `m3` | b3 | new |\n\nnote\n<!-- fuzz-mutants:end -->\nafter\n"
        );
        let other_columns = ["| mutant | bug | b |".to_string(), "|---|---|---|".into()];
        assert_eq!(merged_readme(readme, &other_columns, true, "x"), None);
        assert_eq!(merged_readme("no markers", &lines, false, "x"), None);
    }

    #[test]
    fn a_partial_run_on_fuzz_readme_changes_only_its_row_and_the_date() {
        let readme = fs::read_to_string(proc::root().join(FUZZ_DIR).join("README.md")).unwrap();
        let row = "| `keep_deadlines` | deadlines stay set on the handed-over stream (Go #8296) | new | new |";
        let lines = [
            "| mutant | bug | serve_bytes | lifecycle |".to_string(),
            "|---|---|---|---|".into(),
            row.into(),
        ];
        let merged = merged_readme(&readme, &lines, true, "2099-01-01").expect("the table fits");
        let changed: Vec<(&str, &str)> = readme
            .lines()
            .zip(merged.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(readme.lines().count(), merged.lines().count());
        assert_eq!(changed.len(), 2, "{changed:#?}");
        assert!(
            changed[0]
                .1
                .starts_with("Measured 2099-01-01 by `cargo xtask fuzz-mutants`:")
        );
        assert!(changed[1].0.starts_with("| `keep_deadlines` |"));
        assert_eq!(changed[1].1, row);
    }

    #[test]
    fn fuzz_mutants_arguments() {
        assert!(parse_mutants(&["--target".into(), "nope".into()]).is_err());
        assert!(parse_mutants(&["--bogus".into()]).is_err());
        let o = parse_mutants(&["--seconds".into(), "500".into(), "--no-readme".into()]).unwrap();
        assert_eq!(o.seconds, 120);
        assert!(!o.readme);
        assert_eq!(o.targets, TARGETS);
        assert_eq!(o.mutants.len(), MUTANTS.len());
    }
}
