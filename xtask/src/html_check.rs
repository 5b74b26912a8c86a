//! `cargo xtask html-check`: the conformance matrix page as a browser renders it. Takes
//! target/conform/matrix.html (built from the JSON reports target/conform/*.json with
//! `hijack report --html` when it is absent or older than one of them), renders it in headless
//! Chromium (Debian's, installed at a pinned version when missing), and checks the DOM Chromium
//! dumps against the reports: the page's script ran, one column per report, one row per case,
//! each cell with its report's verdict as attribute and text, the totals; then takes a
//! screenshot, target/conform/matrix.png.
//!
//! Each check prints a line as `cargo test` does and the step closes with `test result: ...
//! N passed; M failed`, so test-all counts them. Exit status 1 when a check fails, 2 on a
//! usage error.

use crate::peers::{BUILD_HIJACK, HIJACK_BIN};
use crate::proc;
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const OUT: &str = "target/conform";
const MATRIX: &str = "target/conform/matrix.html";
const SCREENSHOT: &str = "target/conform/matrix.png";
/// The screenshot's window: 1400×2000, wider when the columns need it.
const WINDOW: (u32, u32) = (1400, 2000);

/// The window for `columns` implementations: the case column, then about 140 px each.
fn window(columns: usize) -> (u32, u32) {
    let wide = 440 + 140 * u32::try_from(columns).unwrap_or(u32::MAX / 256);
    (WINDOW.0.max(wide), WINDOW.1)
}

/// Debian's Chromium, pinned at the version `apt-cache policy chromium` gave as its candidate
/// when this was written. Debian's security archive keeps only the newest build: when this one
/// is gone the candidate is installed instead, and the log says so (then update this).
const CHROMIUM_VERSION: &str = "156.0.8078.114-1~deb12u1";
const CHROMIUM: &str = "/usr/bin/chromium";
/// As root, in a closed network (.library/env/machines/rust.md); a fresh profile each run.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];
/// The longest one Chromium run may take.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(120);

/// The verdicts a report can give, as the page's totals count them.
const VERDICTS: &[&str] = &["PASS", "FAIL", "NON-STRICT", "INCONCLUSIVE", "UNSUPPORTED"];
/// The verdict attribute of a cell whose report lacks the case (hijack_conform::html::NOT_RUN).
const NOT_RUN: &str = "NOT-RUN";

pub const USAGE: &str = "usage: cargo xtask html-check
  Renders target/conform/matrix.html (built from target/conform/*.json when absent or older)
  in headless Chromium, checks the rendered table against the reports and takes a screenshot,
  target/conform/matrix.png.";

/// The checks, printed as `cargo test` prints its tests.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    /// Records one check; `Ok` carries a note, `Err` the reason.
    fn record(&mut self, name: &str, result: &Result<String, String>) -> bool {
        match result {
            Ok(note) => {
                self.passed += 1;
                println!("test html-check::{name} ... ok{}", suffix(note));
                true
            }
            Err(why) => {
                self.failed += 1;
                println!("test html-check::{name} ... FAILED");
                for line in why.lines() {
                    println!("    {line}");
                }
                false
            }
        }
    }

    /// The closing line, as `cargo test` words it (test-all counts these).
    fn summary(&self) -> String {
        let word = if self.failed == 0 { "ok" } else { "FAILED" };
        format!(
            "test result: {word}. {} passed; {} failed; 0 ignored",
            self.passed, self.failed
        )
    }

    fn close(&self) -> i32 {
        println!("\n{}", self.summary());
        i32::from(self.failed > 0)
    }
}

fn suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    }
}

pub fn main(args: &[String]) -> i32 {
    if let Some(code) = proc::no_arguments("html-check", USAGE, args) {
        return code;
    }
    let mut tally = Tally::default();
    let root = proc::root();

    let reports = read_reports(Path::new(OUT));
    if !tally.record(
        "reports",
        &reports
            .as_ref()
            .map(|r| format!("{} in {OUT}", r.len()))
            .map_err(Clone::clone),
    ) {
        return tally.close();
    }
    let reports = reports.unwrap_or_default();
    if !tally.record("matrix-page", &matrix_page(&reports)) {
        return tally.close();
    }
    let chromium = chromium();
    if !tally.record("chromium", &chromium) {
        return tally.close();
    }
    let url = file_url(&root.join(MATRIX));
    let dom = dump_dom(&url);
    if !tally.record(
        "render",
        &dom.as_ref()
            .map(|d| format!("{} KiB of DOM", d.len() / 1024))
            .map_err(Clone::clone),
    ) {
        return tally.close();
    }
    let want = expected(&reports);
    for (name, result) in check_dom(dom.as_deref().unwrap_or_default(), &want) {
        tally.record(name, &result);
    }
    tally.record(
        "screenshot",
        &screenshot(&url, &root.join(SCREENSHOT), window(reports.len())),
    );
    tally.close()
}

/// A JSON report of target/conform: its column name (the file stem, as `hijack report` names
/// it), its path and its contents.
struct Report {
    name: String,
    path: PathBuf,
    json: Value,
}

/// The conformance reports (`*.json` with a `target` and `cases`) of `dir`, by file name.
fn read_reports(dir: &Path) -> Result<Vec<Report>, String> {
    let entries = fs::read_dir(dir).map_err(|e| {
        format!(
            "{}: {e} (cargo xtask conform-peers writes the reports)",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut reports = Vec::new();
    for path in paths {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if !(json["target"].is_string() && json["cases"].is_array()) {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        reports.push(Report { name, path, json });
    }
    if reports.is_empty() {
        return Err(format!(
            "no conformance report (JSON of hijack conform --json) in {} \
             (cargo xtask conform-peers writes them)",
            dir.display()
        ));
    }
    Ok(reports)
}

/// target/conform/matrix.html, built with `hijack report --html` from every report when it is
/// absent or older than one of them (a page of an earlier run).
fn matrix_page(reports: &[Report]) -> Result<String, String> {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let newest = reports
        .iter()
        .filter_map(|r| modified(&r.path))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if modified(Path::new(MATRIX)).is_some_and(|m| m >= newest) {
        return Ok(format!("{MATRIX}, newer than every report"));
    }
    let built = Command::new("cargo")
        .args(BUILD_HIJACK)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !built.success() {
        return Err(format!("cargo {} failed", BUILD_HIJACK.join(" ")));
    }
    let mut cmd = Command::new(HIJACK_BIN);
    cmd.args(["report", "--html", MATRIX])
        .args(reports.iter().map(|r| &r.path));
    let out = proc::run_captured(&mut cmd, Duration::from_secs(60))
        .map_err(|e| format!("{HIJACK_BIN}: {e}"))?;
    match out.status {
        Some(s) if s.success() => Ok(format!(
            "built from {} reports with hijack report --html",
            reports.len()
        )),
        status => Err(format!(
            "{HIJACK_BIN} report --html {MATRIX} ...: {}\n{}",
            status.map_or("timed out".to_string(), |s| format!(
                "exit {}",
                proc::code(s)
            )),
            out.stderr.trim_end()
        )),
    }
}

/// Debian's Chromium: there, or installed with apt-get at CHROMIUM_VERSION (the candidate when
/// that is gone). Its version.
fn chromium() -> Result<String, String> {
    if !proc::is_executable(Path::new(CHROMIUM)) {
        println!("html-check: {CHROMIUM} is missing: apt-get install chromium={CHROMIUM_VERSION}");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let pinned = format!("chromium={CHROMIUM_VERSION}");
        let install = ["install", "-y", "--no-install-recommends"];
        if !apt(&["update"]) {
            return Err("apt-get update failed (as root? with Debian's archive reachable?)".into());
        }
        if !apt(&[&install[..], &[pinned.as_str()]].concat()) {
            println!(
                "html-check: chromium {CHROMIUM_VERSION} is not in the archive any more: \
                 installing the candidate (update CHROMIUM_VERSION in xtask/src/html_check.rs \
                 to what `apt-cache policy chromium` gives)"
            );
            if !apt(&[&install[..], &["chromium"]].concat()) {
                return Err(format!(
                    "apt-get install chromium failed: no {CHROMIUM}, nothing to render with"
                ));
            }
        }
    }
    let out = proc::run_captured(Command::new(CHROMIUM).arg("--version"), CHROMIUM_LIMIT)
        .map_err(|e| format!("{CHROMIUM}: {e}"))?;
    match out.status {
        Some(s) if s.success() => Ok(out.stdout.trim().to_string()),
        _ => Err(format!(
            "{CHROMIUM} --version failed\n{}",
            proc::tail_chars(&out.stderr, 2000)
        )),
    }
}

/// Runs Chromium headless on `url` with `extra` flags and a fresh profile: its stdout.
fn run_chromium(url: &str, extra: &[String]) -> Result<String, String> {
    let profile = std::env::temp_dir().join(format!("xtask-html-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&profile);
    let mut cmd = Command::new(CHROMIUM);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url);
    let out = proc::run_captured(&mut cmd, CHROMIUM_LIMIT);
    let _ = fs::remove_dir_all(&profile);
    let out = out.map_err(|e| format!("{CHROMIUM}: {e}"))?;
    match out.status {
        Some(s) if s.success() => Ok(out.stdout),
        status => Err(format!(
            "chromium {} {url}: {}\n{}",
            extra.join(" "),
            status.map_or(
                format!("killed after {} s", CHROMIUM_LIMIT.as_secs()),
                |s| format!("exit {}", proc::code(s))
            ),
            proc::tail_chars(&out.stderr, 2000).trim_end()
        )),
    }
}

/// The DOM Chromium built from the page, its scripts run.
fn dump_dom(url: &str) -> Result<String, String> {
    let dom = run_chromium(url, &["--dump-dom".to_string()])?;
    if !dom.contains("<body") {
        return Err(format!(
            "chromium --dump-dom printed no document:\n{}",
            proc::tail_chars(&dom, 500)
        ));
    }
    Ok(dom)
}

/// The screenshot: a PNG of the window's size.
fn screenshot(url: &str, png: &Path, window: (u32, u32)) -> Result<String, String> {
    let _ = fs::remove_file(png);
    run_chromium(
        url,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", window.0, window.1),
        ],
    )?;
    let bytes = fs::read(png).map_err(|e| format!("no screenshot: {}: {e}", png.display()))?;
    let size = png_size(&bytes).ok_or(format!("{} is not a PNG", png.display()))?;
    if size != window {
        return Err(format!(
            "{}: {}×{}, not {}×{}",
            png.display(),
            size.0,
            size.1,
            window.0,
            window.1
        ));
    }
    Ok(format!(
        "{SCREENSHOT}, {}×{}, {} KiB",
        size.0,
        size.1,
        bytes.len() / 1024
    ))
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Some((be(16), be(20)))
}

/// `file://` and the path, each byte outside `A-Za-z0-9/-._~` percent-encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// What the page must show, from the reports.
#[derive(Debug, Default)]
struct Expected {
    /// Column name → the report's target.
    targets: BTreeMap<String, String>,
    /// Column name → verdict → count, `ALL` the case count.
    totals: BTreeMap<String, BTreeMap<String, u64>>,
    /// Case → its group.
    groups: BTreeMap<String, String>,
    /// (case, column) → verdict, NOT-RUN when the column's report lacks the case.
    cells: BTreeMap<(String, String), String>,
}

fn expected(reports: &[Report]) -> Expected {
    let mut want = Expected::default();
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for r in reports {
        want.targets
            .insert(r.name.clone(), str_of(&r.json["target"]));
        let cases = r.json["cases"].as_array().cloned().unwrap_or_default();
        let mut totals: BTreeMap<String, u64> =
            VERDICTS.iter().map(|v| (v.to_string(), 0)).collect();
        totals.insert("ALL".into(), cases.len() as u64);
        for c in &cases {
            let verdict = str_of(&c["verdict"]);
            *totals.entry(verdict.clone()).or_default() += 1;
            want.groups
                .entry(str_of(&c["name"]))
                .or_insert_with(|| str_of(&c["group"]));
            want.cells
                .insert((str_of(&c["name"]), r.name.clone()), verdict);
        }
        want.totals.insert(r.name.clone(), totals);
    }
    for case in want.groups.keys() {
        for name in want.targets.keys() {
            want.cells
                .entry((case.clone(), name.clone()))
                .or_insert_with(|| NOT_RUN.to_string());
        }
    }
    want
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

fn attr(e: &ElementRef, name: &str) -> String {
    e.value().attr(name).unwrap_or_default().to_string()
}

fn text(e: &ElementRef) -> String {
    e.text().collect::<String>().trim().to_string()
}

/// At most 12 of `problems`, one a line, and how many more.
fn problems(list: Vec<String>) -> Result<String, String> {
    if list.is_empty() {
        return Ok(String::new());
    }
    let mut out: Vec<String> = list.iter().take(12).cloned().collect();
    if list.len() > 12 {
        out.push(format!("... and {} more", list.len() - 12));
    }
    Err(out.join("\n"))
}

/// The checks of a rendered DOM against the reports, each named.
fn check_dom(dom: &str, want: &Expected) -> Vec<(&'static str, Result<String, String>)> {
    let page = Html::parse_document(dom);
    let mut out = Vec::new();

    let body = page.select(&sel("body")).next();
    out.push((
        "script",
        match body.map(|b| attr(&b, "data-js")) {
            Some(v) if v == "ready" => Ok("body data-js=ready".into()),
            v => Err(format!(
                "the page's script did not run to its end: body data-js={v:?}, not \"ready\""
            )),
        },
    ));

    let Some(matrix) = page.select(&sel("table#matrix")).next() else {
        out.push(("matrix", Err("no <table id=\"matrix\">".into())));
        return out;
    };

    // One column per report, named and targeted as the report.
    let mut bad = Vec::new();
    let heads: Vec<ElementRef> = matrix
        .select(&sel(":scope > thead > tr > th[data-impl]"))
        .collect();
    let mut seen = BTreeSet::new();
    for th in &heads {
        let name = attr(th, "data-impl");
        if !seen.insert(name.clone()) {
            bad.push(format!("column {name:?} twice"));
        }
        match want.targets.get(&name) {
            None => bad.push(format!("column {name:?}: no such report")),
            Some(target) if *target != attr(th, "data-target") => bad.push(format!(
                "column {name:?}: data-target {:?}, the report's target {target:?}",
                attr(th, "data-target")
            )),
            Some(_) => {}
        }
        let shown = th.select(&sel(".name")).next().map(|e| text(&e));
        if shown.as_deref() != Some(name.as_str()) {
            bad.push(format!("column {name:?} is headed {shown:?}"));
        }
    }
    for name in want.targets.keys() {
        if !seen.contains(name) {
            bad.push(format!("no column for the report {name:?}"));
        }
    }
    out.push((
        "columns",
        problems(bad).map(|_| format!("{} columns, one per report", heads.len())),
    ));

    // One row per case, in its group's tbody.
    let mut bad = Vec::new();
    let rows: Vec<ElementRef> = matrix
        .select(&sel(":scope > tbody > tr[data-case]"))
        .collect();
    let mut seen = BTreeSet::new();
    for tr in &rows {
        let case = attr(tr, "data-case");
        if !seen.insert(case.clone()) {
            bad.push(format!("row {case:?} twice"));
        }
        let group = tr
            .parent()
            .and_then(ElementRef::wrap)
            .map(|tbody| attr(&tbody, "data-group"));
        match want.groups.get(&case) {
            None => bad.push(format!("row {case:?}: in no report")),
            Some(g) if Some(g) != group.as_ref() => bad.push(format!(
                "row {case:?} is under group {group:?}, its group is {g:?}"
            )),
            Some(_) => {}
        }
    }
    for case in want.groups.keys() {
        if !seen.contains(case) {
            bad.push(format!("no row for the case {case:?}"));
        }
    }
    out.push((
        "rows",
        problems(bad).map(|_| format!("{} rows, one per case", rows.len())),
    ));

    // Each row: a cell per column with the report's verdict, as attribute, class and text.
    let mut bad = Vec::new();
    let mut cells = 0;
    let shown_sel = sel(":scope > details > summary > .v");
    for tr in &rows {
        let case = attr(tr, "data-case");
        let mut seen = BTreeSet::new();
        for td in tr.select(&sel(":scope > td")) {
            cells += 1;
            let name = attr(&td, "data-impl");
            if attr(&td, "data-case") != case {
                bad.push(format!(
                    "{case} × {name}: data-case {:?}",
                    attr(&td, "data-case")
                ));
            }
            if !seen.insert(name.clone()) {
                bad.push(format!("{case} × {name}: two cells"));
            }
            let Some(verdict) = want.cells.get(&(case.clone(), name.clone())) else {
                bad.push(format!("{case}: a cell for {name:?}, no such report"));
                continue;
            };
            let got = attr(&td, "data-verdict");
            if got != *verdict {
                bad.push(format!(
                    "{case} × {name}: data-verdict {got:?}, the report says {verdict:?}"
                ));
            }
            let shown = td.select(&shown_sel).next().map(|e| text(&e));
            let label = if verdict == NOT_RUN {
                "not run"
            } else {
                verdict.as_str()
            };
            if shown.as_deref() != Some(label) {
                bad.push(format!("{case} × {name}: shows {shown:?}, not {label:?}"));
            }
            let class = attr(&td, "class");
            if !class
                .split_whitespace()
                .any(|c| c == format!("v-{verdict}"))
            {
                bad.push(format!(
                    "{case} × {name}: class {class:?} lacks v-{verdict}"
                ));
            }
        }
        for name in want.targets.keys() {
            if !seen.contains(name) && want.groups.contains_key(&case) {
                bad.push(format!("{case}: no cell for {name:?}"));
            }
        }
    }
    out.push((
        "cells",
        problems(bad).map(|_| format!("{cells} cells, each with its report's verdict")),
    ));

    // The totals per implementation.
    let mut bad = Vec::new();
    for (name, totals) in &want.totals {
        for (verdict, n) in totals {
            let cell = page
                .select(&sel(&format!(
                    "table#totals td[data-impl=\"{}\"][data-verdict=\"{verdict}\"]",
                    name.replace('\\', "\\\\").replace('"', "\\\"")
                )))
                .next();
            let Some(cell) = cell else {
                bad.push(format!("no {verdict} total for {name:?}"));
                continue;
            };
            let t = text(&cell);
            let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
            if digits != n.to_string() {
                bad.push(format!(
                    "{name:?}: {verdict} total {t:?}, the report has {n}"
                ));
            }
        }
    }
    out.push((
        "totals",
        problems(bad).map(|_| format!("{} implementations", want.totals.len())),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hijack_conform::RunReport;
    use serde_json::json;

    fn case(name: &str, verdict: &str) -> Value {
        let group = name.split('/').next().unwrap();
        let failing = verdict == "FAIL";
        json!({
            "name": name, "group": group, "level": "MUST", "spec": "SPEC.md#hijack-handover",
            "description": "what it checks", "cite": "", "verdict": verdict, "duration_ms": 3,
            "misses": if failing {
                json!([{"step": 1, "level": "MUST", "expected": "<101>", "observed": "\"200\" & closed"}])
            } else { json!([]) },
            "wire": if failing {
                json!([{"t_ms": 0.5, "conn": 0, "dir": "send", "data": "GET /echo HTTP/1.1\\r\\n</td>"}])
            } else { json!([]) },
        })
    }

    fn report(name: &str, target: &str, cases: Vec<Value>) -> Report {
        Report {
            name: name.into(),
            path: PathBuf::from(format!("{name}.json")),
            json: json!({"target": target, "duration_ms": 10, "totals": {}, "cases": cases}),
        }
    }

    /// Two reports, the second lacking a case, and the page the conformance tool renders of
    /// them with its script's mark on the body, as Chromium dumps it.
    fn fixture() -> (Vec<Report>, String) {
        let reports = vec![
            report(
                "reference",
                "in-process reference server (http://127.0.0.1:1)",
                vec![
                    case("handover/a", "PASS"),
                    case("handover/b", "PASS"),
                    case("bad-input/c", "PASS"),
                ],
            ),
            report(
                "go",
                "http://127.0.0.1:2",
                vec![
                    case("handover/a", "FAIL"),
                    case("bad-input/c", "NON-STRICT"),
                ],
            ),
        ];
        let parsed: Vec<(String, RunReport)> = reports
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    serde_json::from_value(r.json.clone()).unwrap(),
                )
            })
            .collect();
        let columns: Vec<(&str, &RunReport)> =
            parsed.iter().map(|(n, r)| (n.as_str(), r)).collect();
        let page = hijack_conform::html::page(&columns);
        assert!(page.contains("<body>"));
        (
            reports,
            page.replacen("<body>", "<body data-js=\"ready\">", 1),
        )
    }

    fn failed(dom: &str, reports: &[Report]) -> Vec<(&'static str, String)> {
        check_dom(dom, &expected(reports))
            .into_iter()
            .filter_map(|(name, r)| r.err().map(|e| (name, e)))
            .collect()
    }

    /// The cell of `case` × `name` in `page`: its start and end.
    fn cell_span(page: &str, case: &str, name: &str) -> (usize, usize) {
        let start = page
            .find(&format!("<td data-case=\"{case}\" data-impl=\"{name}\""))
            .expect("the cell");
        let end = start + page[start..].find("</details></td>").unwrap() + "</details></td>".len();
        (start, end)
    }

    #[test]
    fn the_rendered_page_passes() {
        let (reports, page) = fixture();
        assert_eq!(failed(&page, &reports), []);
        let checks: Vec<_> = check_dom(&page, &expected(&reports))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(checks, ["script", "columns", "rows", "cells", "totals"]);
    }

    #[test]
    fn a_wrong_verdict_fails_the_cells() {
        let (reports, page) = fixture();
        let (start, end) = cell_span(&page, "handover/a", "go");
        let cell = page[start..end].replace("data-verdict=\"FAIL\"", "data-verdict=\"PASS\"");
        let dom = format!("{}{cell}{}", &page[..start], &page[end..]);
        let missed = failed(&dom, &reports);
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert_eq!(missed[0].0, "cells");
        assert!(
            missed[0]
                .1
                .contains("handover/a × go: data-verdict \"PASS\""),
            "{missed:?}"
        );

        // The attribute right, the text wrong.
        let cell = page[start..end].replace(
            "<span class=\"v\">FAIL</span>",
            "<span class=\"v\">PASS</span>",
        );
        let dom = format!("{}{cell}{}", &page[..start], &page[end..]);
        let missed = failed(&dom, &reports);
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert!(
            missed[0].1.contains("shows Some(\"PASS\"), not \"FAIL\""),
            "{missed:?}"
        );
    }

    #[test]
    fn a_missing_cell_fails_the_cells() {
        let (reports, page) = fixture();
        let (start, end) = cell_span(&page, "handover/b", "go");
        assert!(page[start..end].contains("data-verdict=\"NOT-RUN\""));
        let dom = format!("{}{}", &page[..start], &page[end..]);
        let missed = failed(&dom, &reports);
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert_eq!(missed[0].0, "cells");
        assert!(
            missed[0].1.contains("handover/b: no cell for \"go\""),
            "{missed:?}"
        );
    }

    #[test]
    fn a_missing_row_column_total_or_script_fails() {
        let (reports, page) = fixture();
        // A row gone.
        let start = page.find("<tr data-case=\"bad-input/c\"").unwrap();
        let end = start + page[start..].find("</tr>\n").unwrap() + "</tr>\n".len();
        let dom = format!("{}{}", &page[..start], &page[end..]);
        let names: Vec<_> = failed(&dom, &reports).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["rows"]);
        // A report more than the page has columns.
        let mut more = fixture().0;
        more.push(report(
            "node",
            "http://127.0.0.1:3",
            vec![case("handover/a", "PASS")],
        ));
        let names: Vec<_> = failed(&page, &more).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["columns", "cells", "totals"]);
        // A wrong total.
        let dom = page.replacen(
            "data-impl=\"go\" data-verdict=\"FAIL\" class=\"\">1<",
            "data-impl=\"go\" data-verdict=\"FAIL\" class=\"\">2<",
            1,
        );
        assert_ne!(dom, page);
        let failed_totals = failed(&dom, &reports);
        assert_eq!(failed_totals.len(), 1, "{failed_totals:?}");
        assert!(
            failed_totals[0].1.contains("FAIL total \"2\""),
            "{failed_totals:?}"
        );
        // The script did not run.
        let dom = page.replacen("<body data-js=\"ready\">", "<body>", 1);
        let names: Vec<_> = failed(&dom, &reports).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["script"]);
        // Not the page at all.
        let names: Vec<_> = failed("<html><body data-js=\"ready\"></body></html>", &reports)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["matrix"]);
    }

    #[test]
    fn test_all_counts_the_checks() {
        let mut tally = Tally::default();
        tally.record("a", &Ok(String::new()));
        tally.record("b", &Ok("note".into()));
        tally.record("c", &Err("why".into()));
        assert_eq!(
            tally.summary(),
            "test result: FAILED. 2 passed; 1 failed; 0 ignored"
        );
        assert_eq!(crate::test_all::count_results(&tally.summary()), (2, 1));
    }

    #[test]
    fn reads_png_sizes_and_makes_file_urls() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(1400u32.to_be_bytes());
        png.extend(2000u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1400, 2000)));
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(
            file_url(Path::new("/work/a b/m#1.html")),
            "file:///work/a%20b/m%231.html"
        );
    }
}
