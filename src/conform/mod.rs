//! `hijack conform`: the conformance harness (SPEC.md#conformance-endpoints,
//! SPEC.md#conformance-vectors). It tests any HTTP/1.1 server that serves the conformance
//! endpoints, black-box over TCP, and knows nothing of the reference server beyond how to
//! start it: every byte-level case is a [`vector::Vector`], run by [`runner`] and exported
//! as is by `--export`. It owns the command line, the scheduling and the exit code.

mod cases;
mod hostile;
mod memory;
mod report;
mod runner;
mod vector;
mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};

use report::{CaseResult, RunReport};
use runner::{Target, Verdict};
use vector::{Endpoint, Level, Vector};

/// Options of `hijack conform`.
#[derive(clap::Args, Debug)]
pub struct ConformArgs {
    /// The server under test, `http://HOST:PORT`. Without it, the reference server is
    /// started in-process on 127.0.0.1 and tested.
    pub url: Option<String>,
    /// Run only the cases whose name matches GLOB (repeatable), e.g. 'handover/*'.
    #[arg(long = "case", value_name = "GLOB")]
    pub cases: Vec<String>,
    /// Skip the cases whose name matches GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Longest wait of one step of a case, e.g. 5s or 800ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Connections the memory case holds.
    #[arg(long, default_value_t = 500)]
    pub memory_conns: usize,
    /// Print the case names (after --case and --exclude) and exit.
    #[arg(long)]
    pub list: bool,
    /// Write every byte-level case as a JSON vector into DIR (DIR/GROUP/NAME.json) and exit.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Cases run at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// The hostile-input corpus (`*.http`); skipped if the folder is absent.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile"))]
    pub hostile: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1000.0,
        _ => return Err(format!("bad duration unit in {s:?} (use s or ms)")),
    };
    if !(secs > 0.0 && secs < 3600.0) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A usage or connection error: exit code 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("hijack conform: {msg}");
    ExitCode::from(2)
}

/// A case of the list: a vector, or the memory case.
enum Case {
    Bytes(Vector),
    Memory,
}

impl Case {
    fn name(&self) -> &str {
        match self {
            Case::Bytes(v) => &v.name,
            Case::Memory => memory::NAME,
        }
    }
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("bad glob {p:?}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

/// `http://HOST:PORT[/]` → an address.
fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http://HOST:PORT URLs are supported"))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.is_empty() {
        return Err(format!("{url:?}: give the server's root, http://HOST:PORT"));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: no address"))
}

/// Runs `hijack conform`; `start_reference` starts the reference server for the no-URL form.
pub fn main(
    args: ConformArgs,
    start_reference: impl FnOnce() -> std::io::Result<hijack::Server>,
) -> ExitCode {
    let include = match globs(&args.cases) {
        Ok(g) => g,
        Err(e) => return usage(e),
    };
    let exclude = match globs(&args.exclude) {
        Ok(g) => g,
        Err(e) => return usage(e),
    };
    let hostile = match hostile::load(&args.hostile) {
        Ok(v) => v,
        Err(e) => return usage(format!("hostile corpus: {e}")),
    };
    let mut all: Vec<Case> = cases::all().into_iter().map(Case::Bytes).collect();
    all.extend(hostile.into_iter().map(Case::Bytes));
    all.push(Case::Memory);
    let selected: Vec<Case> = all
        .into_iter()
        .filter(|c| include.as_ref().is_none_or(|g| g.is_match(c.name())))
        .filter(|c| exclude.as_ref().is_none_or(|g| !g.is_match(c.name())))
        .collect();
    if args.list {
        for c in &selected {
            println!("{}", c.name());
        }
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &args.export {
        return export(dir, &selected);
    }
    if selected.is_empty() {
        return usage("no case matches --case / --exclude");
    }
    if args.jobs == 0 {
        return usage("--jobs must be at least 1");
    }

    // Keep the in-process server alive for the whole run.
    let mut _reference = None;
    let (addr, target_name) = match &args.url {
        Some(url) => match parse_url(url) {
            Ok(addr) => (addr, url.clone()),
            Err(e) => return usage(e),
        },
        None => match start_reference() {
            Ok(server) => {
                let addr = server.local_addr();
                _reference = Some(server);
                (addr, format!("in-process reference server (http://{addr})"))
            }
            Err(e) => return usage(format!("cannot start the reference server: {e}")),
        },
    };
    if let Err(e) = memory::reachable(addr, args.timeout) {
        return usage(format!("cannot connect to {target_name} ({addr}): {e}"));
    }
    let target = Target { addr };
    let run_token = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let unsupported = probe(target, args.timeout, &run_token);
    eprintln!(
        "hijack conform: {} cases against {target_name}",
        selected.len()
    );

    let started = Instant::now();
    let results = run_all(&selected, target, &args, &run_token, &unsupported);
    let report = RunReport::new(target_name, started.elapsed(), results);
    print!("{}", report.summary());

    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report.json())
    {
        return usage(format!("cannot write {}: {e}", path.display()));
    }
    if let Some(path) = &args.junit {
        let xml = match report.junit() {
            Ok(xml) => xml,
            Err(e) => return usage(format!("JUnit report: {e}")),
        };
        if let Err(e) = std::fs::write(path, xml) {
            return usage(format!("cannot write {}: {e}", path.display()));
        }
    }
    if report.cases.iter().any(|c| c.verdict == Verdict::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Which endpoints answer 404 (their cases are UNSUPPORTED).
fn probe(target: Target, timeout: Duration, run: &str) -> Vec<Endpoint> {
    let mut log = wire::WireLog::new();
    let mut status = |req: String| -> Option<u16> {
        let mut c = wire::Client::connect(0, target.addr, timeout).ok()?;
        c.send(&mut log, req.as_bytes(), usize::MAX, Duration::ZERO);
        let status = runner::read_one(&mut c, &mut log, Instant::now() + timeout)
            .ok()
            .map(|r| r.status);
        c.shutdown_write(&mut log);
        status
    };
    let mut missing = Vec::new();
    let echo =
        "GET /echo HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
    if status(echo.into()) == Some(404) {
        missing.push(Endpoint::Echo);
    }
    let cn = format!(
        "GET /close-notify/{run}-probe?timeout_ms=1 HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n"
    );
    if status(cn) == Some(404) {
        missing.push(Endpoint::CloseNotify);
    }
    missing
}

fn group(name: &str) -> String {
    name.split('/').next().unwrap_or(name).to_string()
}

/// Runs every byte-level case on `args.jobs` threads, then the memory case alone.
fn run_all(
    selected: &[Case],
    target: Target,
    args: &ConformArgs,
    run: &str,
    unsupported: &[Endpoint],
) -> Vec<CaseResult> {
    let total = selected.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new((0..total).map(|_| None).collect());
    let progress = |r: &CaseResult| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!(
            "[{n}/{total}] {} {} {} ms",
            r.name,
            r.verdict.label(),
            r.duration_ms
        );
    };
    let vectors: Vec<(usize, &Vector)> = selected
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            Case::Bytes(v) => Some((i, v)),
            Case::Memory => None,
        })
        .collect();
    let vectors = Arc::new(vectors);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(vectors.len()) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, v)) = vectors.get(k) else { break };
                    let r = run_vector(v, target, args.timeout, run, unsupported);
                    progress(&r);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    if let Some(i) = selected.iter().position(|c| matches!(c, Case::Memory)) {
        let started = Instant::now();
        let m = memory::run(target, args.memory_conns.max(1), args.timeout);
        let keep_wire = m.verdict != Verdict::Pass;
        let r = CaseResult {
            name: memory::NAME.into(),
            group: group(memory::NAME),
            level: Level::Should,
            spec: memory::SPEC.into(),
            description: "live heap bytes a server retains per hijacked connection held with every part, through /stats (Go PR #70756)".into(),
            verdict: m.verdict,
            duration_ms: started.elapsed().as_millis() as u64,
            misses: if m.verdict == Verdict::Pass {
                vec![]
            } else {
                vec![runner::Miss {
                    step: 0,
                    level: if m.verdict == Verdict::Fail { Level::Must } else { Level::Should },
                    expected: m.expected,
                    observed: m.observed,
                }]
            },
            wire: if keep_wire { m.wire.entries } else { vec![] },
            figures: m.figures,
        };
        progress(&r);
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
    }
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

fn run_vector(
    v: &Vector,
    target: Target,
    timeout: Duration,
    run: &str,
    unsupported: &[Endpoint],
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        name: v.name.clone(),
        group: group(&v.name),
        level: v.level,
        spec: v.spec.clone(),
        description: v.description.clone(),
        verdict: Verdict::Pass,
        duration_ms: 0,
        misses: vec![],
        wire: vec![],
        figures: None,
    };
    if let Some(e) = v.needs.iter().find(|e| unsupported.contains(e)) {
        result.verdict = Verdict::Unsupported;
        result.misses.push(runner::Miss {
            step: 0,
            level: v.level,
            expected: format!("the {e:?} endpoint"),
            observed: "it answered 404".into(),
        });
        return result;
    }
    let outcome = runner::run(v, target, timeout, run);
    result.verdict = outcome.verdict;
    result.misses = outcome.misses;
    if outcome.verdict != Verdict::Pass {
        result.wire = outcome.wire.entries;
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// Writes every selected vector to `dir/GROUP/NAME.json`.
fn export(dir: &Path, selected: &[Case]) -> ExitCode {
    let mut n = 0;
    for c in selected {
        let Case::Bytes(v) = c else { continue };
        let path = dir.join(format!("{}.json", v.name));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let json = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
                std::fs::write(&path, json + "\n")
            });
        if let Err(e) = written {
            return usage(format!("cannot write {}: {e}", path.display()));
        }
        n += 1;
    }
    eprintln!("hijack conform: wrote {n} vectors to {}", dir.display());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_durations() {
        assert_eq!(parse_url("http://127.0.0.1:8080/").unwrap().port(), 8080);
        assert!(parse_url("https://x:1").is_err());
        assert!(parse_url("http://127.0.0.1:1/echo").is_err());
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5m").is_err());
    }

    #[test]
    fn every_vector_round_trips_through_json() {
        for v in cases::all() {
            let json = serde_json::to_string(&v).unwrap();
            let back: Vector = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json, "{}", v.name);
        }
    }
}
