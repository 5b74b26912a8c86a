//! `cargo xtask conform-peers`: runs the conformance suite (`hijack conform URL`) against the
//! reference server and every peer (peers/README.md), keeps the reports and prints the
//! comparison table. Building and starting one peer stay in peers/build and peers/start (shell
//! launchers, the one place of that logic); the table is `table` below (it was peers/report.py).
//!
//! Reports: target/conform/NAME.json and NAME.xml (the harness's), NAME.log (its output),
//! NAME.server.log (the peer's stdout and stderr), table.md (the table printed at the end),
//! baselines.txt (the comparison with the baselines); NAME.explore.json and .log, explore.md and
//! explore/NAME/ (the exploration with seed 1, `peers_explore`, and its shrunk vectors).
//! Each report is compared with the peer's baseline (peers/baselines/NAME.txt, `baselines`);
//! `--update-baselines` writes the baselines from the run instead.
//! Exit status: non-zero when the reference server has a FAIL, a peer could not be built,
//! started or tested (no report), or a report differs from its baseline (a NEW, FIXED or GONE
//! case that counts); a peer's FAILs as such are findings (SPEC.md#peers, peers/FINDINGS.md).

use crate::baselines;
use crate::peers_explore;
use crate::proc::{self, Stoppable};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// Layout: change these when the conformance tool moves.
/// `cargo` arguments that build the `hijack` binary (`hijack conform`, `hijack serve`).
pub const BUILD_HIJACK: &[&str] = &[
    "build",
    "--release",
    "--quiet",
    "-p",
    "hijack-conform",
    "--bin",
    "hijack",
];
/// Where that build puts it.
pub const HIJACK_BIN: &str = "target/release/hijack";

const DEFAULT_PEERS: &[&str] = &[
    "go-1.24.11",
    "go-1.27.3",
    "node",
    "hyper",
    "gunicorn",
    "tornado",
    "bun",
    "deno",
    "tiny-http",
    "actix",
    "libmicrohttpd",
    // Proxies in front of the reference server (SPEC.md#peers).
    "nginx-1.22",
    "haproxy-2.6",
    "haproxy-2.6-abortonclose",
    "apache-2.4",
];
const OUT: &str = "target/conform";

pub const USAGE: &str = "usage: cargo xtask conform-peers [--update-baselines] [NAME...]
  NAME: go-1.24.11, go-1.27.3, node, hyper, gunicorn, tornado, bun, deno, tiny-http, actix,
  libmicrohttpd, nginx-1.22, haproxy-2.6, haproxy-2.6-abortonclose, apache-2.4 (default all of them); the reference server is always tested first. Reports in
  target/conform/. Each report is compared with its baseline, peers/baselines/NAME.txt: a NEW,
  FIXED or GONE case fails the run (one to or from INCONCLUSIVE is only reported).
  --update-baselines: write the baselines of the peers run from their reports instead.";

pub fn main(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let update = args.iter().any(|a| a == "--update-baselines");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--update-baselines").collect();
    if let Some(flag) = args.iter().find(|a| a.starts_with('-')) {
        eprintln!("xtask conform-peers: unrecognized argument '{flag}'\n{USAGE}");
        return 2;
    }
    let names: Vec<&str> = if args.is_empty() {
        DEFAULT_PEERS.to_vec()
    } else {
        args.iter().map(|a| a.as_str()).collect()
    };
    let started = Instant::now();
    let out = Path::new(OUT);
    let _ = fs::create_dir_all(out);
    let mut errors = Vec::new();

    eprintln!("conform-peers: building hijack and the peers");
    if !Command::new("cargo")
        .args(BUILD_HIJACK)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("conform-peers: cargo {} failed", BUILD_HIJACK.join(" "));
        return 1;
    }
    let mut peers = Vec::new();
    for name in names {
        if Command::new("peers/build")
            .arg(name)
            .status()
            .is_ok_and(|s| s.success())
        {
            peers.push(name);
        } else {
            errors.push(format!("{name}: build failed"));
        }
    }
    eprintln!("conform-peers: built in {} s", proc::whole_secs(started));

    let mut reference_rc = 0;
    let all: Vec<&str> = std::iter::once("reference")
        .chain(peers.iter().copied())
        .collect();
    for &name in &all {
        let json = out.join(format!("{name}.json"));
        let _ = fs::remove_file(&json);
        let _ = fs::remove_file(out.join(format!("{name}.xml")));
        let t0 = Instant::now();
        let server_log = out.join(format!("{name}.server.log"));
        let mut peer = match start(name, &server_log) {
            Ok(peer) => peer,
            Err(e) => {
                errors.push(format!("{name}: did not start ({e})"));
                continue;
            }
        };
        // At most 30 s, most of it only when start has to build.
        let mut url = None;
        for _ in 0..300 {
            url = listening_url(&fs::read_to_string(&server_log).unwrap_or_default());
            if url.is_some() || peer.exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let Some(url) = url else {
            errors.push(format!(
                "{name}: did not start (see {OUT}/{name}.server.log)"
            ));
            peer.stop();
            continue;
        };
        eprintln!("conform-peers: {name} at {url}");
        let log = out.join(format!("{name}.log"));
        let rc = run_conform(
            &url,
            is_proxy(name),
            &json,
            &out.join(format!("{name}.xml")),
            &log,
        );
        // The same seeded exchanges for everyone (SPEC.md#explore), while it still runs.
        if let Err(e) = peers_explore::run(name, &url, is_proxy(name), out) {
            errors.push(e);
        }
        peer.stop();
        for line in fs::read_to_string(&log).unwrap_or_default().lines() {
            if line.starts_with("all ") || line.starts_with("memory/") {
                eprintln!("conform-peers: {name}: {line}");
            }
        }
        eprintln!(
            "conform-peers: {name}: exit {rc} in {} s",
            proc::whole_secs(t0)
        );
        if !non_empty(&json) {
            errors.push(format!(
                "{name}: no report (hijack conform exit {rc}, see {OUT}/{name}.log)"
            ));
        } else if name == "reference" && rc != 0 {
            reference_rc = rc;
            errors.push(format!(
                "reference: hijack conform exit {rc} (a FAIL; see {OUT}/reference.log)"
            ));
        } else if name == "reference" {
            // The reference passes every case: an INCONCLUSIVE or NON-STRICT there is a
            // harness or reference bug, not a finding.
            let not_pass = not_passing(&json);
            if !not_pass.is_empty() {
                reference_rc = 1;
                errors.push(format!("reference: not PASS: {}", not_pass.join(", ")));
            }
        }
    }

    let reports: Vec<PathBuf> = all
        .iter()
        .map(|name| out.join(format!("{name}.json")))
        .filter(|p| non_empty(p))
        .collect();
    if !reports.is_empty() {
        match table(&reports) {
            Ok(table) => {
                println!("{table}");
                if let Err(e) = fs::write(out.join("table.md"), format!("{table}\n")) {
                    eprintln!("conform-peers: {OUT}/table.md: {e}");
                }
            }
            Err(e) => eprintln!("conform-peers: the table: {e}"),
        }
    }
    let explored: Vec<PathBuf> = all
        .iter()
        .map(|name| out.join(format!("{name}.explore.json")))
        .filter(|p| non_empty(p))
        .collect();
    if !explored.is_empty() {
        match peers_explore::table(&explored) {
            Ok(table) => {
                println!("{table}");
                if let Err(e) = fs::write(out.join("explore.md"), &table) {
                    eprintln!("conform-peers: {OUT}/explore.md: {e}");
                }
            }
            Err(e) => eprintln!("conform-peers: the explore table: {e}"),
        }
    }
    if !reports.is_empty() {
        // The matrix page of every report, a column each (SPEC.md#conformance-endpoints).
        let page = out.join("matrix.html");
        let ok = Command::new(HIJACK_BIN)
            .args(["report", "--html"])
            .arg(&page)
            .args(&reports)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            eprintln!("conform-peers: the matrix: {}", page.display());
        } else {
            errors.push(format!(
                "the matrix: hijack report --html {} failed",
                page.display()
            ));
        }
    }
    let mut lines = Vec::new();
    for &name in &all {
        let json = out.join(format!("{name}.json"));
        if !non_empty(&json) {
            continue;
        }
        match check_baseline(name, &json, Path::new(baselines::DIR), update, &mut lines) {
            Ok(()) => {}
            Err(e) => errors.push(e),
        }
    }
    lines.extend(findings_notes(
        Path::new(baselines::DIR),
        Path::new("SPEC.md"),
    ));
    for line in &lines {
        eprintln!("conform-peers: {line}");
    }
    if let Err(e) = fs::write(out.join("baselines.txt"), lines.join("\n") + "\n") {
        eprintln!("conform-peers: {OUT}/baselines.txt: {e}");
    }
    eprintln!(
        "conform-peers: total {} s; reports in {OUT}/",
        proc::whole_secs(started)
    );
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("conform-peers: ERROR {e}");
        }
        return 1;
    }
    reference_rc
}

/// What is wrong with the mapping of every baseline in `dir` onto the findings of `spec`
/// (SPEC.md#peers, `baselines::check_findings`): one line each, after a note saying what to do.
/// Printed with the comparison; it does not fail the run (the xtask test
/// `every_baseline_line_is_explained_by_a_finding_of_spec_peers` does).
fn findings_notes(dir: &Path, spec: &Path) -> Vec<String> {
    let findings = match fs::read_to_string(spec)
        .map_err(|e| e.to_string())
        .and_then(|text| baselines::spec_findings(&text))
    {
        Ok(findings) => findings,
        Err(e) => return vec![format!("findings: {}: {e}", spec.display())],
    };
    let mut all = std::collections::BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![format!("findings: cannot read {}", dir.display())];
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let (Some(stem), Some("txt")) =
            (path.file_stem(), path.extension().and_then(|e| e.to_str()))
        else {
            continue;
        };
        match fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| baselines::parse(&text))
        {
            Ok(b) => {
                all.insert(stem.to_string_lossy().into_owned(), b);
            }
            Err(e) => return vec![format!("findings: {}: {e}", path.display())],
        }
    }
    let problems = baselines::check_findings(&all, &findings);
    if problems.is_empty() {
        return problems;
    }
    let mut notes = vec![format!(
        "findings: {} problem(s) in the mapping of {}/*.txt onto {}#peers (give each case its \
         finding; see peers/README.md#baselines):",
        problems.len(),
        dir.display(),
        spec.display()
    )];
    notes.extend(problems.into_iter().map(|p| format!("  {p}")));
    notes
}

/// Compares `name`'s report with its baseline `dir/NAME.txt` (adding what it prints to
/// `lines`), or with `update` writes the baseline from the report. Err: what fails the run.
fn check_baseline(
    name: &str,
    json: &Path,
    dir: &Path,
    update: bool,
    lines: &mut Vec<String>,
) -> Result<(), String> {
    let report: Value = fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| format!("{name}: {}: {e}", json.display()))?;
    let verdicts =
        baselines::verdicts(&report).map_err(|e| format!("{name}: {}: {e}", json.display()))?;
    let path = dir.join(format!("{name}.txt"));
    let old = match fs::read_to_string(&path) {
        Ok(text) => {
            Some(baselines::parse(&text).map_err(|e| format!("{name}: {}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{name}: {}: {e}", path.display())),
    };
    let changes = old
        .as_ref()
        .map(|old| baselines::compare(old, &verdicts))
        .unwrap_or_default();
    let misses = verdicts.iter().filter(|(_, v)| v != "PASS").count();
    if update {
        let _ = fs::create_dir_all(dir);
        fs::write(&path, baselines::render(name, &verdicts, old.as_ref()))
            .map_err(|e| format!("{name}: {}: {e}", path.display()))?;
        let what = match &old {
            None => "new".to_string(),
            Some(_) if changes.is_empty() => "unchanged".to_string(),
            Some(_) => baselines::summary(&changes),
        };
        lines.push(format!(
            "baseline {name}: wrote {} ({misses} non-PASS of {}; {what})",
            path.display(),
            verdicts.len()
        ));
        lines.extend(changes.iter().map(|c| format!("  {name}: {c}")));
        return Ok(());
    }
    if old.is_none() {
        lines.push(format!(
            "baseline {name}: none ({} is missing)",
            path.display()
        ));
        return Err(format!(
            "{name}: no baseline {} (cargo xtask conform-peers --update-baselines {name} writes it)",
            path.display()
        ));
    }
    if changes.is_empty() {
        lines.push(format!(
            "baseline {name}: as {} ({misses} non-PASS of {})",
            path.display(),
            verdicts.len()
        ));
        return Ok(());
    }
    lines.push(format!(
        "baseline {name}: {} against {}",
        baselines::summary(&changes),
        path.display()
    ));
    lines.extend(changes.iter().map(|c| format!("  {name}: {c}")));
    let counted = changes.iter().filter(|c| c.counts()).count();
    if counted == 0 {
        return Ok(());
    }
    Err(format!(
        "{name}: {counted} case(s) differ from {} (see above; if the change is expected, \
         cargo xtask conform-peers --update-baselines {name} accepts it)",
        path.display()
    ))
}

/// `case VERDICT` of every case of the JSON report at `json` that did not PASS.
fn not_passing(json: &Path) -> Vec<String> {
    let report: Value = fs::read_to_string(json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    match report["cases"].as_array() {
        Some(cases) => cases
            .iter()
            .filter(|c| c["verdict"] != "PASS")
            .map(|c| {
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap_or("?"),
                    c["verdict"].as_str().unwrap_or("?")
                )
            })
            .collect(),
        None => vec!["the report has no cases".into()],
    }
}

fn non_empty(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.len() > 0)
}

/// `peers/start NAME 127.0.0.1:0` with its stdout and stderr in `log`.
fn start(name: &str, log: &Path) -> std::io::Result<Stoppable> {
    let file = fs::File::create(log)?;
    let child = Command::new("peers/start")
        .args([name, "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    Ok(Stoppable(Some(child)))
}

/// The URL of the first `listening on http://...` line.
fn listening_url(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let rest = l.strip_prefix("listening on http://")?;
        let end = rest.find(' ').unwrap_or(rest.len());
        Some(format!("http://{}", &rest[..end]))
    })
}

/// Whether peer `name` is a proxy in front of the reference server (peers/README.md#proxies):
/// it is tested with `--intermediary`.
fn is_proxy(name: &str) -> bool {
    ["nginx-", "haproxy-", "apache-"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn run_conform(url: &str, intermediary: bool, json: &Path, xml: &Path, log: &Path) -> i32 {
    let status = fs::File::create(log).and_then(|file| {
        Command::new(HIJACK_BIN)
            .arg("conform")
            .arg(url)
            .args(intermediary.then_some("--intermediary"))
            .arg("--json")
            .arg(json)
            .arg("--junit")
            .arg(xml)
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
    });
    match status {
        Ok(status) => proc::code(status),
        Err(e) => {
            let _ = fs::write(log, format!("{HIJACK_BIN}: {e}\n"));
            127
        }
    }
}

const VERDICTS: &[&str] = &["PASS", "FAIL", "NON-STRICT", "INCONCLUSIVE", "UNSUPPORTED"];

/// The comparison table (markdown) of `hijack conform --json` reports, each named by its file
/// stem: one row per implementation, one column per case group, each cell
/// PASS/FAIL/NON-STRICT/INCONCLUSIVE/UNSUPPORTED counts, then the memory figure; then every case that did not
/// PASS, per implementation. Reads the report's fields (src/conform/report.rs): `cases[]` with
/// `name`, `group`, `verdict`, `figures.bytes_per_connection`; it judges nothing itself.
pub fn table(paths: &[PathBuf]) -> Result<String, String> {
    let mut reports = Vec::new();
    for path in paths {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cases = report["cases"]
            .as_array()
            .ok_or(format!("{}: no cases", path.display()))?
            .clone();
        reports.push((name, cases));
    }
    let s = |c: &Value, key: &str| c[key].as_str().unwrap_or("").to_string();
    let mut groups: Vec<String> = Vec::new();
    for (_, cases) in &reports {
        for c in cases {
            let g = s(c, "group");
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let cell = |cases: &[&Value]| {
        if cases.is_empty() {
            return "–".to_string();
        }
        VERDICTS
            .iter()
            .map(|v| {
                cases
                    .iter()
                    .filter(|c| s(c, "verdict") == *v)
                    .count()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let memory = |cases: &[Value]| {
        for c in cases {
            let f = &c["figures"];
            if f.as_object().is_some_and(|o| !o.is_empty()) {
                return format!(
                    "{} B ({})",
                    thousands(&f["bytes_per_connection"]),
                    s(c, "verdict")
                );
            }
        }
        // No figures: the case was UNSUPPORTED, or absent from the run.
        cases
            .iter()
            .find(|c| s(c, "group") == "memory")
            .map_or("–".to_string(), |c| s(c, "verdict"))
    };

    let mut out = vec![
        "Each cell: PASS/FAIL/NON-STRICT/INCONCLUSIVE/UNSUPPORTED cases. Memory: live heap bytes retained \
         per held hijacked connection (`memory/retained-per-hijack`)."
            .to_string(),
        String::new(),
        format!(
            "| implementation | {} | all | retained per hijack |",
            groups.join(" | ")
        ),
        format!("|---|{}", "---|".repeat(groups.len() + 2)),
    ];
    for (name, cases) in &reports {
        let cells: Vec<String> = groups
            .iter()
            .map(|g| {
                let in_group: Vec<&Value> = cases.iter().filter(|c| s(c, "group") == *g).collect();
                cell(&in_group)
            })
            .collect();
        let every: Vec<&Value> = cases.iter().collect();
        out.push(format!(
            "| {name} | {} | {} | {} |",
            cells.join(" | "),
            cell(&every),
            memory(cases)
        ));
    }
    out.push(String::new());
    for (name, cases) in &reports {
        let misses: Vec<String> = cases
            .iter()
            .filter(|c| s(c, "verdict") != "PASS")
            .map(|c| format!("`{}` {}", s(c, "name"), s(c, "verdict")))
            .collect();
        if misses.is_empty() {
            continue;
        }
        out.push(format!("{name}: {}", misses.join(", ")));
        out.push(String::new());
    }
    Ok(out.join("\n").trim_end().to_string())
}

/// A number with thousands separators (Python's `f"{n:,}"`).
fn thousands(n: &Value) -> String {
    let text = n.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = match digits.find(['.', 'e', 'E']) {
        Some(at) => digits.split_at(at),
        None => (digits, ""),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_like_python() {
        assert_eq!(thousands(&serde_json::json!(1234567)), "1,234,567");
        assert_eq!(thousands(&serde_json::json!(-1234)), "-1,234");
        assert_eq!(thousands(&serde_json::json!(999)), "999");
        assert_eq!(thousands(&serde_json::json!(1234.5)), "1,234.5");
    }

    #[test]
    fn listening_url_takes_the_first_announcement() {
        let log = "building\nlistening on http://127.0.0.1:4000 (pid 3)\nlistening on http://x\n";
        assert_eq!(listening_url(log).as_deref(), Some("http://127.0.0.1:4000"));
        assert_eq!(listening_url("nothing\n"), None);
    }

    #[test]
    fn findings_notes_say_what_the_mapping_lacks() {
        let dir = std::env::temp_dir().join(format!("xtask-findings-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let spec = dir.join("SPEC.md");
        fs::write(&spec, "# S\n\n## Peers\n\n| F1 | `node` | peer bug | x |\n").unwrap();
        fs::write(dir.join("node.txt"), "h/1 FAIL F1\n").unwrap();
        assert_eq!(findings_notes(&dir, &spec), Vec::<String>::new());
        fs::write(dir.join("node.txt"), "h/1 FAIL F1\nh/2 FAIL F?\n").unwrap();
        let notes = findings_notes(&dir, &spec);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("findings: 1 problem(s)"), "{notes:?}");
        assert!(
            notes[1].contains("node: h/2 FAIL is not explained"),
            "{notes:?}"
        );
    }

    #[test]
    fn check_baseline_writes_then_compares() {
        let dir = std::env::temp_dir().join(format!("xtask-baseline-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let json = dir.join("node.json");
        let report = |second: &str| {
            format!(
                r#"{{"cases":[{{"name":"h/1","verdict":"PASS"}},{{"name":"h/2","verdict":"{second}"}}]}}"#
            )
        };
        let mut lines = Vec::new();
        // No baseline yet: the run fails and says how to write one.
        fs::write(&json, report("FAIL")).unwrap();
        let e = check_baseline("node", &json, &dir, false, &mut lines).unwrap_err();
        assert!(e.contains("--update-baselines node"), "{e}");
        // --update-baselines writes it; then the same report is no change.
        check_baseline("node", &json, &dir, true, &mut lines).unwrap();
        let text = fs::read_to_string(dir.join("node.txt")).unwrap();
        assert!(text.ends_with("\nh/2 FAIL F?\n"), "{text}");
        check_baseline("node", &json, &dir, false, &mut lines).unwrap();
        // A FIXED case fails the run; an INCONCLUSIVE one is only reported.
        fs::write(&json, report("PASS")).unwrap();
        let e = check_baseline("node", &json, &dir, false, &mut lines).unwrap_err();
        assert!(e.contains("1 case(s) differ"), "{e}");
        fs::write(&json, report("INCONCLUSIVE")).unwrap();
        check_baseline("node", &json, &dir, false, &mut lines).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l == "  node: FIXED h/2 PASS (baseline FAIL)"),
            "{lines:?}"
        );
    }

    #[test]
    fn table_counts_verdicts_per_group_and_lists_the_misses() {
        let dir = std::env::temp_dir().join(format!("xtask-table-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("reference.json");
        let b = dir.join("node.json");
        fs::write(&a, r#"{"cases":[{"name":"h/1","group":"h","verdict":"PASS"},{"name":"memory/r","group":"memory","verdict":"PASS","figures":{"bytes_per_connection":12345}}]}"#).unwrap();
        fs::write(&b, r#"{"cases":[{"name":"h/1","group":"h","verdict":"FAIL"},{"name":"x/1","group":"x","verdict":"NON-STRICT"},{"name":"memory/r","group":"memory","verdict":"UNSUPPORTED","figures":null}]}"#).unwrap();
        let t = table(&[a, b]).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let expected = "Each cell: PASS/FAIL/NON-STRICT/INCONCLUSIVE/UNSUPPORTED cases. Memory: live heap bytes retained per held hijacked connection (`memory/retained-per-hijack`).

| implementation | h | memory | x | all | retained per hijack |
|---|---|---|---|---|---|
| reference | 1/0/0/0/0 | 1/0/0/0/0 | – | 2/0/0/0/0 | 12,345 B (PASS) |
| node | 0/1/0/0/0 | 0/0/0/0/1 | 0/0/1/0/0 | 0/1/1/0/1 | UNSUPPORTED |

node: `h/1` FAIL, `x/1` NON-STRICT, `memory/r` UNSUPPORTED";
        assert_eq!(t, expected);
    }
}
