//! `hijack conform` end to end (SPEC.md#conformance-endpoints, SPEC.md#conformance-vectors):
//! the reference server passes every case and its reports parse; the exported vectors
//! replay with the independent Python runner; and the harness catches servers with known
//! bugs (small broken servers built here), exits 2 when nothing listens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod support;
use support::*;

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /hold with Connection: Upgrade and Upgrade: hold MUST be answered with 101 Switching Protocols, Upgrade: hold and Connection: Upgrade, after which the server MUST keep every part the hijack handed over, without reading or writing them, until /release.

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /release MUST close and drop everything /hold kept and MUST be answered with 200 and a JSON object giving the number of connections released.

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /stats MUST be answered with 200 and a JSON object giving the live heap bytes and the connections the server holds.
#[test]
fn the_reference_server_passes_every_case_and_the_reports_parse() {
    let dir = scratch("reference");
    let (json, junit) = (dir.join("report.json"), dir.join("report.xml"));
    // A generous step timeout: a debug build on a loaded machine parses a 1 MiB head
    // slowly, and a passing case never waits for the timeout anyway.
    let out = conform(&[
        "--timeout",
        "30s",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );

    let listed = conform(&["--list"]);
    let names: Vec<String> = text(&listed.stdout).lines().map(str::to_string).collect();
    assert!(names.len() > 30, "{names:?}");
    for group in [
        "handover/",
        "close-notify/",
        "serving/",
        "bad-input/",
        "memory/",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(group)),
            "no {group} case"
        );
    }

    let report = report(&json);
    let verdicts = verdicts(&report);
    assert_eq!(
        verdicts.len(),
        names.len(),
        "every listed case is in the report"
    );
    let not_passed: Vec<_> = verdicts.iter().filter(|(_, v)| *v != "PASS").collect();
    assert!(not_passed.is_empty(), "{not_passed:?}\n{stdout}");
    assert_eq!(report["totals"]["PASS"].as_u64(), Some(names.len() as u64));
    let memory = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "memory/retained-per-hijack")
        .expect("the memory case ran");
    let per = memory["figures"]["bytes_per_connection"]
        .as_i64()
        .expect("a figure");
    println!("reference: {per} bytes retained per held hijacked connection");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("the JUnit report parses");
    assert_eq!(junit.tests, names.len(), "JUnit test count");
    assert_eq!((junit.failures, junit.errors), (0, 0));
    let in_suites: usize = junit.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(in_suites, names.len());
    // And with a standard XML parser, as CI tools read it.
    let py = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(len(r.findall('.//testcase')))",
            junit_path(&dir).to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    assert_eq!(
        text(&py.stdout).trim(),
        names.len().to_string(),
        "{}",
        text(&py.stderr)
    );
}

fn junit_path(dir: &Path) -> PathBuf {
    dir.join("report.xml")
}

/// `hijack serve` on a free port; killed on drop.
struct Serve(Child, SocketAddr);

impl Serve {
    fn start() -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hijack serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Serve(child, addr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exported_vectors_replay_against_hijack_serve_with_the_python_runner() {
    let dir = scratch("vectors");
    let out = conform(&["--export", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let count = walk(&dir);
    let listed = text(&conform(&["--list", "--exclude", "memory/*"]).stdout)
        .lines()
        .count();
    assert_eq!(count, listed, "one vector per byte-level case");

    let server = Serve::start();
    let replay = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/replay.py"
        ))
        .arg(&dir)
        .arg(format!("http://{}", server.1))
        .arg("30")
        .output()
        .expect("python3");
    let stdout = text(&replay.stdout);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&replay.stderr)
    );
    assert_eq!(
        stdout.trim().lines().last(),
        Some(format!("{count} passed, 0 failed").as_str()),
        "{stdout}"
    );
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "json"))
            }
        })
        .sum()
}

#[test]
fn a_server_that_drops_the_handed_over_bytes_fails_the_handover_cases() {
    let addr = broken_server(Bug::DropsHandedOverBytes);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "drops",
        &["handover/*", "close-notify/fires-on-close"],
    );
    assert_eq!(code, Some(1), "{stdout}");
    // The cases whose bytes go out in the same write as the head, so that the server reads
    // them with it and drops them every time (`8k-after-head` writes them separately: the
    // server may read the head alone, and then echoes them).
    for case in [
        "handover/bytes-with-head",
        "handover/first-bytes-not-lost",
        "handover/pipelined-request-after-upgrade",
    ] {
        assert_eq!(
            verdicts.get(case).map(String::as_str),
            Some("FAIL"),
            "{case}\n{stdout}"
        );
    }
    // /close-notify answers 404 here.
    assert_eq!(verdicts["close-notify/fires-on-close"], "UNSUPPORTED");
    assert!(
        stdout.contains("wire:") && stdout.contains("expected:"),
        "{stdout}"
    );
}

#[test]
fn a_server_that_never_notices_the_client_leaving_fails_the_close_notify_cases() {
    let addr = broken_server(Bug::NeverNoticesClose);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "never-notices",
        &[
            "close-notify/fires-*",
            "close-notify/pipelined-does-not-fire",
            "serving/hijack-after-close-notify",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    for case in [
        "close-notify/fires-on-close",
        "close-notify/fires-on-half-close",
        "close-notify/fires-on-reset",
    ] {
        assert_eq!(
            verdicts.get(case).map(String::as_str),
            Some("FAIL"),
            "{case}\n{stdout}"
        );
    }
    // Not firing on a pipelined request is right, even for this server.
    assert_eq!(
        verdicts["close-notify/pipelined-does-not-fire"], "PASS",
        "{stdout}"
    );
    // /echo answers 404 here.
    assert_eq!(verdicts["serving/hijack-after-close-notify"], "UNSUPPORTED");
}

#[test]
fn through_an_intermediary_what_binds_only_the_origin_is_held_at_should() {
    // A proxy that does not pass the client's close on (HAProxy's default) is such a server.
    let addr = broken_server(Bug::NeverNoticesClose);
    let cases = ["close-notify/fires-on-close", "bad-input/te-and-cl"];
    let run = |name: &str, extra: &[&str]| conform_against_with(addr, name, &cases, extra);
    let (code, origin, _, _) = run("origin", &[]);
    assert_eq!(
        (code, origin["close-notify/fires-on-close"].as_str()),
        (Some(1), "FAIL")
    );
    let (code, proxy, stdout, report) = run("intermediary", &["--intermediary"]);
    assert_eq!(
        proxy["close-notify/fires-on-close"], "NON-STRICT",
        "{stdout}"
    );
    let described = report["cases"].as_array().unwrap().iter().any(|c| {
        c["name"] == "close-notify/fires-on-close"
            && c["description"]
                .as_str()
                .unwrap()
                .contains("per hop, through an intermediary")
    });
    assert!(described, "the report says why");
    // Framing binds a proxy as it binds the origin: the same verdict either way.
    assert_eq!(proxy["bad-input/te-and-cl"], origin["bad-input/te-and-cl"]);
    assert_eq!(code, Some(i32::from(proxy.values().any(|v| v == "FAIL"))));
}

#[test]
fn smuggling_fails_and_a_safe_leniency_is_non_strict() {
    let addr = broken_server(Bug::ContentLengthOnly);
    let (code, verdicts, stdout) = conform_against(
        addr,
        "cl-only",
        &["bad-input/te-and-cl", "bad-input/bad-version"],
    );
    assert_eq!(code, Some(1), "{stdout}");
    // It answers the request hidden in the chunk: smuggling, whatever the case's level.
    assert_eq!(verdicts["bad-input/te-and-cl"], "FAIL", "{stdout}");
    // Said in those words, with where the smuggled request starts in what the client sent.
    assert!(
        stdout.contains("smuggling: ") && stdout.contains("byte 85: \"GET /smuggled HTTP/1.1\""),
        "{stdout}"
    );
    // 505 for HTTP/9.9 is not the reference's 400, but safe: a SHOULD-level miss.
    assert_eq!(verdicts["bad-input/bad-version"], "NON-STRICT", "{stdout}");
}

#[test]
fn nothing_listening_exits_2_with_a_clear_message() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = conform(&[&format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    let bad_glob = conform(&["--case", "a[", "--list"]);
    assert_eq!(
        bad_glob.status.code(),
        Some(2),
        "{}",
        text(&bad_glob.stderr)
    );
    let bad_url = conform(&["https://127.0.0.1:1"]);
    assert_eq!(bad_url.status.code(), Some(2));
}

#[test]
fn the_installed_binary_lists_every_compiled_in_case_from_any_folder() {
    // From `/`, as an installed binary would be run: the corpus is compiled in.
    let out = Command::new(BIN)
        .args(["conform", "--list"])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names = text(&out.stdout);
    let hostile = names.lines().filter(|n| n.starts_with("hostile/")).count();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/hostile"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "http")
        })
        .count();
    assert_eq!(hostile, files, "one hostile/ case per corpus file");
    assert!(names.lines().count() >= 177, "{names}");
}

#[test]
fn a_closed_stdout_ends_the_list_quietly() {
    // The reading end is closed before the program writes: its write fails with EPIPE
    // every time (Rust ignores SIGPIPE), as it does under `hijack conform --list | head -1`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["conform", "--list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn report_paths_and_corpus_folders_are_checked_before_the_run() {
    let out = conform(&["--json", "/nonexistent-hijack-dir/r.json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/r.json"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cases against"),
        "ran before failing: {stderr}"
    );
    let out = conform(&["--junit", "/nonexistent-hijack-dir/r.xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Every case would take seconds; failing on the HTML path takes none of them.
    let t0 = std::time::Instant::now();
    let out = conform(&["--html", "/nonexistent-hijack-dir/r.html"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/r.html"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cases against"),
        "ran before failing: {stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let out = conform(&["--hostile", "/nonexistent-hijack-corpus", "--list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent-hijack-corpus"), "{stderr}");
}

#[test]
fn help_documents_every_default() {
    let out = Command::new(BIN)
        .args(["conform", "--help"])
        .output()
        .unwrap();
    // clap wraps long lines: compare with the whitespace collapsed.
    let help = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(out.status.code(), Some(0));
    for default in [
        "[default: 5s]",
        "[default: 500]",
        "[default: 8]",
        "[default: the reference server",
        "[default: every case]",
        "[default: none]",
        "[default: only the compiled-in corpus]",
        "[default: 60s]",
        "[default: 10]",
        "[default: hijack-explore]",
        "[default: loopback only]",
        "[default: from the clock, printed]",
    ] {
        assert!(help.contains(default), "no {default:?} in\n{help}");
    }
}

#[test]
fn a_duration_without_a_unit_is_refused_before_anything_runs() {
    let out = conform(&["--timeout", "5", "--list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no unit: write 5s or 5ms"), "{stderr}");
}

#[test]
fn a_redirected_server_log_carries_no_colour_codes() {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One request, so the server logs something, then stop it.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = text(&out.stderr);
    assert!(!log.is_empty(), "the server logged nothing");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a redirected log: {log:?}"
    );
}

fn hijack(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run hijack")
}

/// `(data-impl, data-verdict)` of the cells of the row of `case`, and their shown verdicts.
fn cells(page: &scraper::Html, case: &str) -> Vec<(String, String, String)> {
    let sel = scraper::Selector::parse(&format!("#matrix tr[data-case=\"{case}\"] > td")).unwrap();
    let v = scraper::Selector::parse("summary > .v").unwrap();
    page.select(&sel)
        .map(|td| {
            let a = |n: &str| td.value().attr(n).unwrap_or("").to_string();
            let shown = td
                .select(&v)
                .next()
                .map(|e| e.text().collect())
                .unwrap_or_default();
            (a("data-impl"), a("data-verdict"), shown)
        })
        .collect()
}

#[test]
fn the_html_report_is_a_matrix_of_the_json_reports() {
    let dir = scratch("html");
    // The reference on two groups; a server that drops the handed-over bytes on one.
    let (good, bad) = (dir.join("reference.json"), dir.join("drops.json"));
    let single = dir.join("single.html");
    let out = conform(&[
        "--case",
        "handover/*",
        "--case",
        "serving/*",
        "--timeout",
        "30s",
        "--json",
        good.to_str().unwrap(),
        "--html",
        single.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let addr = broken_server(Bug::DropsHandedOverBytes);
    let out = conform(&[
        &format!("http://{addr}"),
        "--case",
        "handover/*",
        "--timeout",
        "1s",
        "--json",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let html = dir.join("matrix.html");
    let out = hijack(&[
        "report",
        "--html",
        html.to_str().unwrap(),
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let source = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    for fetch in ["<link", " src=", "href=\"http", "@import", "url("] {
        assert!(!source.contains(fetch), "{fetch:?} in the page");
    }
    let page = scraper::Html::parse_document(&source);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let heads: Vec<_> = page
        .select(&sel("#matrix > thead th[data-impl]"))
        .map(|th| th.value().attr("data-impl").unwrap().to_string())
        .collect();
    assert_eq!(
        heads,
        ["reference", "drops"],
        "a column per report, named by its file"
    );

    let (good, bad) = (verdicts(&report(&good)), verdicts(&report(&bad)));
    let rows = page.select(&sel("#matrix tr[data-case]")).count();
    assert_eq!(rows, good.len(), "a row per case of either report");
    for (case, verdict) in &good {
        let row = cells(&page, case);
        let theirs = bad.get(case).map_or("NOT-RUN", String::as_str);
        let shown = if theirs == "NOT-RUN" {
            "not run"
        } else {
            theirs
        };
        assert_eq!(
            row,
            [
                ("reference".into(), verdict.clone(), verdict.clone()),
                ("drops".into(), theirs.to_string(), shown.to_string()),
            ],
            "{case}"
        );
    }
    assert!(bad.len() < good.len() && bad.values().any(|v| v == "FAIL"));
    // A FAIL opens its misses and its wire log, escaped.
    let fail = page
        .select(&sel(
            "#matrix td[data-impl=\"drops\"][data-verdict=\"FAIL\"]",
        ))
        .next()
        .expect("a FAIL cell");
    let inner = fail.inner_html();
    assert!(inner.contains("table class=\"misses\""), "{inner}");
    let wire: String = fail
        .select(&sel("pre.wire"))
        .next()
        .expect("a wire log")
        .text()
        .collect();
    assert!(wire.contains("GET /echo HTTP/1.1\\r\\n"), "{wire}");
    assert!(wire.contains("send") && wire.contains("recv"), "{wire}");
    // Totals per implementation.
    let count = |imp: &str, v: &str| -> String {
        page.select(&sel(&format!(
            "#totals td[data-impl=\"{imp}\"][data-verdict=\"{v}\"]"
        )))
        .next()
        .map(|td| td.text().collect())
        .unwrap_or_default()
    };
    let fails = bad.values().filter(|v| *v == "FAIL").count();
    assert_eq!(count("drops", "FAIL"), fails.to_string());
    assert_eq!(count("reference", "PASS"), good.len().to_string());

    // The run's own page: one column, named by its target.
    let single = scraper::Html::parse_document(&std::fs::read_to_string(&single).unwrap());
    let heads: Vec<_> = single
        .select(&sel("#matrix > thead th[data-impl]"))
        .map(|th| th.value().attr("data-impl").unwrap().to_string())
        .collect();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with("in-process reference server"),
        "{heads:?}"
    );
    assert_eq!(
        single
            .select(&sel("#matrix td[data-verdict=\"PASS\"]"))
            .count(),
        good.len()
    );
}

#[test]
fn hijack_report_refuses_missing_and_malformed_reports() {
    let dir = scratch("report-errors");
    let out_path = dir.join("out.html");
    std::fs::write(&out_path, "before").unwrap();
    let missing = dir.join("missing.json");
    let out = hijack(&[
        "report",
        "--html",
        out_path.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", missing.display())),
        "{stderr}"
    );
    for (name, body) in [("bad.json", "{\"target\": "), ("other.json", "{\"a\": 1}")] {
        let bad = dir.join(name);
        std::fs::write(&bad, body).unwrap();
        let out = hijack(&[
            "report",
            "--html",
            out_path.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{} is not a conformance report", bad.display())),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "before",
        "a bad report leaves OUT as it was"
    );
    let empty = dir.join("empty.json");
    std::fs::write(
        &empty,
        r#"{"target": "x", "duration_ms": 1, "totals": {}, "cases": []}"#,
    )
    .unwrap();
    let out = hijack(&[
        "report",
        "--html",
        "/nonexistent-hijack-dir/m.html",
        empty.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-hijack-dir/m.html"),
        "{stderr}"
    );
    // No report at all is a usage error too.
    let out = hijack(&["report", "--html", out_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn explore_runs_against_the_reference_and_writes_its_report() {
    let dir = scratch("explore-cli");
    let json = dir.join("explore.json");
    let out_dir = dir.join("found");
    let out = conform(&[
        "--explore",
        "60",
        "--seed",
        "3",
        "--json",
        json.to_str().unwrap(),
        "--explore-out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("seed 3 (rerun them with --seed 3)"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("explore: 60 exchanges") && stdout.contains("60 PASS"),
        "{stdout}"
    );
    let r = report(&json);
    assert_eq!(r["seed"], 3);
    assert_eq!(r["exchanges"], 60);
    assert_eq!(r["findings"].as_array().map(Vec::len), Some(0));
    assert!(!out_dir.exists(), "nothing to write, nothing written");
}

#[test]
fn explore_refuses_what_it_cannot_do_before_it_sends_anything() {
    let remote = conform(&["http://192.0.2.1:80", "--explore", "10"]);
    let stderr = text(&remote.stderr);
    assert_eq!(remote.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    let junit = conform(&["--explore", "10", "--junit", "/tmp/x.xml"]);
    assert_eq!(junit.status.code(), Some(2));
    assert!(text(&junit.stderr).contains("with --explore use --json"));
    let seed_alone = conform(&["--seed", "4", "--list"]);
    assert_eq!(seed_alone.status.code(), Some(2));
    assert!(text(&seed_alone.stderr).contains("--explore"));
    let zero = conform(&["--explore", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn vectors_that_are_not_vectors_are_refused_by_name() {
    let dir = scratch("bad-vectors");
    std::fs::write(dir.join("broken.json"), "{\"version\": 1}").unwrap();
    let out = conform(&["--vectors", dir.to_str().unwrap(), "--list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.json is not a vector"), "{stderr}");
    let exported = scratch("good-vectors");
    let out = conform(&[
        "--export",
        exported.to_str().unwrap(),
        "--case",
        "handover/*",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = conform(&[
        "--vectors",
        exported.to_str().unwrap(),
        "--list",
        "--case",
        "handover/*",
    ]);
    let listed = text(&out.stdout).lines().count();
    assert_eq!(
        listed,
        walk(&exported),
        "a read vector replaces the case of its name"
    );
}
