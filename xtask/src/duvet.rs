//! `cargo xtask duvet-check`: SPEC.md's requirements against the code and tests that cite them.
//!
//! Runs duvet (pinned to 0.4.3; configured in .duvet/config.toml) and fails when
//!   - a citation (`//= SPEC.md#section` + `//# quote`) names a section that does not exist or
//!     quotes text that is not in that section of SPEC.md (duvet reports these; and duvet
//!     accepts a quote within one edit of the spec text, so this check also demands every
//!     quote verbatim), or
//!   - a MUST or MUST NOT requirement is not fully quoted by at least one test citation: an
//!     annotation in tests/, model/ or fuzz/fuzz_targets/, or one marked `//= type=test`.
//!
//! SHOULD and MAY requirements are counted but not enforced. Writes
//! target/duvet/{report.html,report.json,snapshot.txt,summary.md} and prints a one-line summary.
//! Exit status: 0 all MUSTs tested, 1 a check failed, 2 duvet is missing and cannot be installed.

use crate::proc;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

const DUVET_VERSION: &str = "0.4.3";
const OUT: &str = "target/duvet";

pub const USAGE: &str = "usage: cargo xtask duvet-check [-v]   (-v, --verbose: list every requirement with its citations)";

pub fn main(args: &[String]) -> i32 {
    let mut verbose = false;
    for arg in args {
        match arg.as_str() {
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            _ => {
                eprintln!("xtask duvet-check: unrecognized argument '{arg}'\n{USAGE}");
                return 2;
            }
        }
    }

    let duvet = match proc::which("duvet") {
        Some(path) => path,
        None if proc::is_executable(&proc::cargo_bin().join("duvet")) => {
            proc::cargo_bin().join("duvet")
        }
        None => {
            eprintln!("duvet-check: duvet not found; installing duvet {DUVET_VERSION}");
            let installed = Command::new("cargo")
                .args(["install", "duvet", "--locked", "--version", DUVET_VERSION])
                .stdout(std::io::stderr())
                .status()
                .is_ok_and(|s| s.success());
            if !installed {
                return 2;
            }
            proc::cargo_bin().join("duvet")
        }
    };

    let out = Path::new(OUT);
    let prepared =
        fs::create_dir_all(out).and_then(|()| match fs::remove_file(out.join("report.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        });
    if let Err(e) = prepared {
        eprintln!("duvet-check: {OUT}: {e}");
        return 1;
    }
    // The extracted requirements are generated from SPEC.md on every run; stale ones (a renamed
    // or removed section) would otherwise linger and be reported against a section that is gone.
    let _ = fs::remove_dir_all(".duvet/requirements");

    // --ci=false: never compare the snapshot with a checked-in copy, even when CI is set.
    let log_path = out.join("duvet.log");
    let ran = fs::File::create(&log_path).and_then(|log| {
        Command::new(&duvet)
            .args(["report", "--ci=false"])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
    });
    if !ran.is_ok_and(|s| s.success()) {
        eprint!("{}", fs::read_to_string(&log_path).unwrap_or_default());
        eprintln!("duvet-check: FAIL: duvet could not match every citation to SPEC.md (see above)");
        return 1;
    }

    let report: Value = match fs::read_to_string(out.join("report.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("duvet-check: {OUT}/report.json: {e}");
            return 1;
        }
    };
    match check(&report, verbose, &|path| fs::read_to_string(path)) {
        Ok(check) => {
            if let Err(e) = fs::write(out.join("summary.md"), &check.summary) {
                eprintln!("duvet-check: {OUT}/summary.md: {e}");
                return 1;
            }
            print!("{}", check.verbose);
            eprint!("{}", check.problems);
            println!("{}", check.line);
            i32::from(check.failed)
        }
        Err(e) => {
            eprintln!("duvet-check: {e}");
            1
        }
    }
}

/// What the check prints and writes.
struct Check {
    summary: String,
    verbose: String,
    problems: String,
    line: String,
    failed: bool,
}

struct Requirement {
    section: String,
    level: String,
    quote: String,
    size: u64,
    cited: u64,
    tested: u64,
    tests: Vec<String>,
    code: Vec<String>,
}

/// Python's `str.split()` joined by single spaces.
fn squash(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => "None".into(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn num(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// `duvet`'s report judged: the requirements, the inexact quotes and the untested MUSTs.
fn check(
    report: &Value,
    verbose: bool,
    read: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<Check, String> {
    let empty = Vec::new();
    let annotations = report["annotations"].as_array().unwrap_or(&empty);
    let statuses = &report["statuses"];
    let field = |a: &Value, key: &str| a.get(key).and_then(Value::as_str).map(str::to_string);
    let kind = |i: usize| field(&annotations[i], "type");
    let section_of = |a: &Value| field(a, "target_section").unwrap_or_default();
    let where_ = |i: usize| {
        let a = &annotations[i];
        let line = match a.get("line") {
            None => "?".into(),
            some => text_of(some),
        };
        format!("{}:{line}", text_of(a.get("source")))
    };

    let mut reqs = Vec::new();
    for (i, a) in annotations.iter().enumerate() {
        if kind(i).as_deref() != Some("SPEC") {
            continue;
        }
        let st = statuses.get(i.to_string());
        let st_field = |key: &str| st.and_then(|s| s.get(key));
        let related: Vec<usize> = st_field("related")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_u64).map(|r| r as usize))
            .into_iter()
            .flatten()
            .filter(|&r| r != i && r < annotations.len())
            .collect();
        reqs.push(Requirement {
            section: section_of(a),
            level: field(a, "level").unwrap_or_else(|| "AUTO".into()),
            quote: squash(&field(a, "comment").unwrap_or_default()),
            size: num(st_field("spec")),
            cited: num(st_field("citation")),
            tested: num(st_field("test")),
            tests: related
                .iter()
                .filter(|&&r| kind(r).as_deref() == Some("TEST"))
                .map(|&r| where_(r))
                .collect(),
            code: related
                .iter()
                .filter(|&&r| !matches!(kind(r).as_deref(), Some("TEST" | "SPEC")))
                .map(|&r| where_(r))
                .collect(),
        });
    }
    let full = |n: u64, size: u64| size > 0 && n >= size;

    // duvet accepts a quote within one edit of the spec text (a fuzzy match). Be strict: every
    // citation's quote, whitespace collapsed, must occur verbatim in its section of SPEC.md.
    let mut sections = HashMap::new();
    if let Some(specs) = report["specifications"].as_object() {
        for spec in specs.values() {
            for sec in spec["sections"].as_array().unwrap_or(&empty) {
                let lines: Vec<String> = sec["lines"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .map(line_text)
                    .collect();
                sections.insert(text_of(sec.get("id")), squash(&lines.join(" ")));
            }
        }
    }

    let mut inexact = Vec::new();
    let mut sources: HashMap<String, String> = HashMap::new();
    for (i, a) in annotations.iter().enumerate() {
        let source = field(a, "source").unwrap_or_default();
        if kind(i).as_deref() == Some("SPEC") || !source.ends_with(".rs") {
            continue;
        }
        let line = a.get("line").and_then(Value::as_u64).unwrap_or(0);
        let quote = if line > 0 {
            if !sources.contains_key(&source) {
                let text = read(&source).map_err(|e| format!("{source}: {e}"))?;
                sources.insert(source.clone(), text);
            }
            quote_at(&sources[&source], line as usize)
        } else {
            String::new()
        };
        let section = section_of(a);
        let in_section = sections
            .get(&section)
            .is_some_and(|s: &String| s.contains(&quote));
        if !quote.is_empty() && !in_section {
            inexact.push(format!("  {}: SPEC.md#{section}: {quote}", where_(i)));
        }
    }

    let must: Vec<&Requirement> = reqs.iter().filter(|r| r.level == "MUST").collect();
    let untested: Vec<&&Requirement> = must.iter().filter(|r| !full(r.tested, r.size)).collect();
    let count = |level: &str| reqs.iter().filter(|r| r.level == level).count();

    let mut summary = String::from(
        "# SPEC.md traceability (generated by cargo xtask duvet-check)\n\n\
         | Section | Level | Code | Test | Requirement |\n|---|---|---|---|---|\n",
    );
    for r in &reqs {
        let mark = |n: u64| {
            if full(n, r.size) {
                "yes"
            } else if n > 0 {
                "part"
            } else {
                "no"
            }
        };
        let _ = writeln!(
            summary,
            "| [{0}](../../SPEC.md#{0}) | {1} | {2} | {3} | {4} |",
            r.section,
            r.level,
            mark(r.cited),
            mark(r.tested),
            r.quote
        );
    }

    let mut listing = String::new();
    if verbose {
        for r in &reqs {
            let _ = writeln!(listing, "SPEC.md#{} [{}] {}", r.section, r.level, r.quote);
            for t in &r.tests {
                let _ = writeln!(listing, "    test: {t}");
            }
            for c in &r.code {
                let _ = writeln!(listing, "    code: {c}");
            }
        }
    }

    let mut problems = String::new();
    if !inexact.is_empty() {
        let _ = writeln!(
            problems,
            "duvet-check: {} citation(s) whose quote is not verbatim in SPEC.md:\n{}",
            inexact.len(),
            inexact.join("\n")
        );
    }
    if !untested.is_empty() {
        let _ = writeln!(
            problems,
            "duvet-check: {} MUST/MUST NOT requirement(s) without a test citation:",
            untested.len()
        );
        for r in &untested {
            let part = if r.tested == 0 {
                String::new()
            } else {
                format!(" (test quotes only {}%)", 100 * r.tested / r.size.max(1))
            };
            let _ = writeln!(problems, "  SPEC.md#{}{part}: {}", r.section, r.quote);
        }
    }

    let levels: Vec<String> = ["MUST", "SHOULD", "MAY"]
        .iter()
        .filter(|l| count(l) > 0)
        .map(|l| format!("{} {l}", count(l)))
        .collect();
    let cited = must.iter().filter(|r| full(r.cited, r.size)).count();
    let tested = must.len() - untested.len();
    let failed = !untested.is_empty() || !inexact.is_empty();
    let line = format!(
        "duvet-check: {}: {} requirements ({}); MUST: {cited} cited by code, {tested}/{} tested{}; report {OUT}/report.html, summary {OUT}/summary.md",
        if failed { "FAIL" } else { "ok" },
        reqs.len(),
        levels.join(", "),
        must.len(),
        if inexact.is_empty() {
            String::new()
        } else {
            format!(", {} inexact quote(s)", inexact.len())
        },
    );
    Ok(Check {
        summary,
        verbose: listing,
        problems,
        line,
        failed,
    })
}

/// A section line: a string, or (when cited) a list of `[annotation ids, status, text]`.
fn line_text(line: &Value) -> String {
    match line {
        Value::String(s) => s.clone(),
        Value::Array(segments) => segments
            .iter()
            .map(|seg| match seg.as_array().and_then(|s| s.last()) {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            })
            .collect(),
        _ => String::new(),
    }
}

/// Python's `str.splitlines()`.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let breaks = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if breaks {
            out.push(&text[start..at]);
            let mut end = at + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                chars.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The quote of the annotation starting at `line` (1-based) of `source`: its `//#` lines.
fn quote_at(source: &str, line: usize) -> String {
    let mut parts = Vec::new();
    for text in split_lines(source).into_iter().skip(line - 1) {
        let text = text.trim();
        if let Some(quote) = text.strip_prefix("//#") {
            parts.push(quote.trim());
        } else if !text.starts_with("//=") || !parts.is_empty() {
            break; // the annotation ended, or the next one (stacked above one item) begins
        }
    }
    squash(&parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "fn a() {}\n//= SPEC.md#s\n//= type=test\n//# The server MUST\n//#   do it.\n//= SPEC.md#t\n//# other\n#[test]\n";

    fn report(quote_line: u64) -> Value {
        serde_json::json!({
            "annotations": [
                {"type": "SPEC", "target_section": "s", "level": "MUST", "comment": "The server MUST do it."},
                {"type": "TEST", "source": "x.rs", "line": quote_line, "target_section": "s"},
                {"type": "SPEC", "target_section": "s", "level": "MAY", "comment": "It MAY  rest."},
            ],
            "statuses": {"0": {"spec": 4, "citation": 0, "test": 4, "related": [0, 1]}, "2": {"spec": 2}},
            "specifications": {"SPEC.md": {"sections": [
                {"id": "s", "lines": ["The server MUST", [[[0, 1], "x", "do it."]], "It MAY rest."]}
            ]}},
        })
    }

    #[test]
    fn quote_at_reads_the_annotations_quote_lines() {
        assert_eq!(quote_at(SOURCE, 2), "The server MUST do it.");
        assert_eq!(quote_at(SOURCE, 6), "other");
    }

    #[test]
    fn a_fully_tested_must_passes_and_an_inexact_quote_fails() {
        let read = |_: &str| Ok(SOURCE.to_string());
        let ok = check(&report(2), true, &read).unwrap();
        assert!(!ok.failed, "{}", ok.problems);
        assert_eq!(
            ok.line,
            "duvet-check: ok: 2 requirements (1 MUST, 1 MAY); MUST: 0 cited by code, 1/1 tested; report target/duvet/report.html, summary target/duvet/summary.md"
        );
        assert!(ok.verbose.contains("    test: x.rs:2\n"), "{}", ok.verbose);
        assert!(
            ok.summary
                .contains("| [s](../../SPEC.md#s) | MUST | no | yes | The server MUST do it. |\n")
        );
        let bad = check(&report(6), false, &read).unwrap();
        assert!(bad.failed);
        assert!(bad.line.ends_with("1/1 tested, 1 inexact quote(s); report target/duvet/report.html, summary target/duvet/summary.md"), "{}", bad.line);
        assert!(
            bad.problems.contains("  x.rs:6: SPEC.md#s: other\n"),
            "{}",
            bad.problems
        );
    }
}
