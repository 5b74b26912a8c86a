//! The suite: which cases there are (the built-in ones, the compiled-in hostile corpus, the
//! memory case, and any corpus files a user adds), which of them a run selects, and the run
//! itself against one target, case by case on a few threads. It judges nothing: each case is
//! judged by [`crate::runner`] or [`crate::memory`], and the results go into a
//! [`RunReport`].

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::preflight::Preflight;
use crate::report::{CaseResult, RunReport};
use crate::runner::{self, Miss, Target, Verdict};
use crate::vector::{Level, Vector};
use crate::{cases, hostile, memory, report};

/// A usage or setup error: a bad glob, an unreadable corpus file, an unreachable target. The
/// binary reports it with exit code 2; it is never a verdict on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A profile (SPEC.md#conformance-endpoints): one way a server hands a connection over, with
/// its endpoint and its cases, each a section of SPEC.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// `/echo` with `Upgrade: echo`, and every case of the endpoint contract that needs no
    /// other profile's endpoint (SPEC.md#conformance-endpoints).
    Raw,
    /// RFC 6455 on `/ws` (SPEC.md#websocket-profile).
    Websocket,
    /// CONNECT tunnels to the harness's echo listener (SPEC.md#connect-profile).
    Connect,
}

impl Profile {
    /// Every profile, in run order.
    pub const ALL: [Profile; 3] = [Profile::Raw, Profile::Websocket, Profile::Connect];

    /// `raw`, `websocket`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Raw => "raw",
            Profile::Websocket => "websocket",
            Profile::Connect => "connect",
        }
    }

    /// The profile named `name`.
    pub fn parse(name: &str) -> Result<Profile, Error> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                Error(format!(
                    "unknown profile {name:?} (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// The profile of a case: the one whose endpoint it needs, else `raw`.
    pub fn of(case: &Case) -> Profile {
        match case {
            Case::Bytes(v) if v.needs.contains(&crate::vector::Endpoint::Ws) => Profile::Websocket,
            Case::Bytes(v) if v.needs.contains(&crate::vector::Endpoint::Connect) => {
                Profile::Connect
            }
            _ => Profile::Raw,
        }
    }
}

/// One case of a suite: a byte-level vector, or the memory case (which measures `/stats`
/// across hundreds of held connections and has no vector).
#[derive(Debug, Clone)]
pub enum Case {
    /// A byte-level case, exportable as a portable vector (SPEC.md#conformance-vectors).
    Bytes(Vector),
    /// `memory/retained-per-hijack`.
    Memory,
}

impl Case {
    /// `group/name`, e.g. `handover/background-byte`.
    pub fn name(&self) -> &str {
        match self {
            Case::Bytes(v) => &v.name,
            Case::Memory => memory::NAME,
        }
    }
}

/// An ordered list of cases: every case there is ([`Suite::all`]), narrowed by
/// [`Suite::select`], extended by [`Suite::add_hostile_dir`].
#[derive(Debug, Clone)]
pub struct Suite {
    cases: Vec<Case>,
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The longest wait of one step of a case. A wait that runs out is reported as what it
    /// is (nothing arrived), never as a close.
    pub timeout: Duration,
    /// Byte-level cases run at once.
    pub jobs: usize,
    /// Connections the memory case holds.
    pub memory_conns: usize,
    /// Print one progress line per case to stderr.
    pub progress: bool,
    /// The target is an intermediary: a case with a [`Vector::per_hop`] reason is held at
    /// SHOULD (SPEC.md#conformance-endpoints).
    pub intermediary: bool,
    /// The profiles to run; empty: every profile the preflight finds the target offers.
    pub profiles: Vec<Profile>,
}

impl Default for RunOptions {
    /// 5 s per step, 8 cases at once, 500 held connections, progress on.
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(5),
            jobs: 8,
            memory_conns: 500,
            progress: true,
            intermediary: false,
            profiles: Vec::new(),
        }
    }
}

impl Suite {
    /// Every case: the built-in ones, one `hostile/NAME` case per file of the compiled-in
    /// corpus, and the memory case last.
    pub fn all() -> Suite {
        let mut cases: Vec<Case> = cases::all().into_iter().map(Case::Bytes).collect();
        cases.extend(hostile::builtin().into_iter().map(Case::Bytes));
        cases.extend(crate::websocket::cases().into_iter().map(Case::Bytes));
        cases.extend(crate::connect::cases().into_iter().map(Case::Bytes));
        cases.push(Case::Memory);
        Suite { cases }
    }

    /// Adds every `*.http` file of `dir` as a `hostile/NAME` case; a file named as a
    /// compiled-in case replaces it. Returns how many files were read. A missing folder or a
    /// malformed file is an error naming it.
    pub fn add_hostile_dir(&mut self, dir: &Path) -> Result<usize, Error> {
        let added = hostile::load_dir(dir).map_err(Error)?;
        let n = added.len();
        for v in added {
            self.put(v);
        }
        Ok(n)
    }

    /// Adds `v`, replacing the case of its name; the memory case stays last (it runs alone,
    /// after the others).
    fn put(&mut self, v: Vector) {
        match self.cases.iter_mut().find(|c| c.name() == v.name) {
            Some(slot) => *slot = Case::Bytes(v),
            None => {
                let at = self
                    .cases
                    .iter()
                    .position(|c| matches!(c, Case::Memory))
                    .unwrap_or(self.cases.len());
                self.cases.insert(at, Case::Bytes(v));
            }
        }
    }

    /// Adds every vector file of `dir` (`*.json`, SPEC.md#conformance-vectors, in `dir` and
    /// its folders, as `--export` and `--explore` write them); a vector named as a case
    /// replaces it. Returns how many were read. A file that is not a vector of version 1, or
    /// has a byte above U+00FF, is an error naming it.
    pub fn add_vector_dir(&mut self, dir: &Path) -> Result<usize, Error> {
        let mut files = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| Error(format!("cannot read {}: {e}", d.display())))?;
            for e in entries.filter_map(Result::ok) {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|e| e == "json") {
                    files.push(p);
                }
            }
        }
        files.sort();
        for path in &files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error(format!("cannot read {}: {e}", path.display())))?;
            let v: Vector = serde_json::from_str(&text)
                .map_err(|e| Error(format!("{} is not a vector: {e}", path.display())))?;
            if v.version != 1 {
                return Err(Error(format!(
                    "{}: vector version {} (this harness reads version 1)",
                    path.display(),
                    v.version
                )));
            }
            let latin1 = v.steps.iter().all(|s| match s {
                crate::vector::Step::Send { data, .. }
                | crate::vector::Step::ExpectBytes { data, .. } => {
                    crate::vector::latin1_bytes(data).is_some()
                }
                _ => true,
            });
            if !latin1 {
                return Err(Error(format!(
                    "{}: a data string has a character above U+00FF (one char is one byte)",
                    path.display()
                )));
            }
            self.put(v);
        }
        Ok(files.len())
    }

    /// Keeps the cases whose name matches one of `include` (all when it is empty) and none
    /// of `exclude`; the patterns are globs such as `handover/*`.
    pub fn select<S: AsRef<str>>(&mut self, include: &[S], exclude: &[S]) -> Result<(), Error> {
        let include = globs(include)?;
        let exclude = globs(exclude)?;
        self.cases.retain(|c| {
            include.as_ref().is_none_or(|g| g.is_match(c.name()))
                && exclude.as_ref().is_none_or(|g| !g.is_match(c.name()))
        });
        Ok(())
    }

    /// Keeps the cases of `profiles` (all when it is empty).
    pub fn select_profiles(&mut self, profiles: &[Profile]) {
        if !profiles.is_empty() {
            self.cases.retain(|c| profiles.contains(&Profile::of(c)));
        }
    }

    /// The cases, in run order.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// Writes every byte-level case to `dir/GROUP/NAME.json`; returns how many.
    pub fn export(&self, dir: &Path) -> Result<usize, Error> {
        let mut n = 0;
        for c in &self.cases {
            let Case::Bytes(v) = c else { continue };
            let path = dir.join(format!("{}.json", v.name));
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    let json = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
                    std::fs::write(&path, json + "\n")
                });
            written.map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
            n += 1;
        }
        Ok(n)
    }

    /// Runs every case against the server at `addr` (named `target_name` in the report):
    /// first a connection and an endpoint probe (a server that cannot be reached is an
    /// [`Error`], not a FAIL), then the byte-level cases on `options.jobs` threads, then the
    /// memory case alone.
    pub fn run(
        &self,
        addr: SocketAddr,
        target_name: &str,
        options: &RunOptions,
    ) -> Result<RunReport, Error> {
        if self.cases.is_empty() {
            return Err(Error::new("no case selected"));
        }
        if options.jobs == 0 {
            return Err(Error::new("jobs must be at least 1"));
        }
        // The connect profile's tunnel target, for the preflight and the cases.
        let echo = crate::connect::EchoTarget::start()
            .map_err(|e| Error(format!("cannot start the CONNECT echo target: {e}")))?;
        let (run_token, preflight) = begin(addr, target_name, options.timeout, "", Some(&echo))?;
        let profiles = if options.profiles.is_empty() {
            preflight.offered.clone()
        } else {
            options.profiles.clone()
        };
        let selected: Vec<Case> = self
            .cases
            .iter()
            .filter(|c| profiles.contains(&Profile::of(c)))
            .cloned()
            .collect();
        let names = |ps: &[Profile]| ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
        let skipped: Vec<Profile> = Profile::ALL
            .into_iter()
            .filter(|p| !profiles.contains(p))
            .collect();
        if selected.is_empty() {
            return Err(Error(format!(
                "no selected case is of the profiles run ({}; not offered or not asked for: {})",
                names(&profiles),
                names(&skipped)
            )));
        }
        let target = Target {
            addr,
            follow_up: preflight.follow_up.clone(),
        };
        if options.progress {
            let _ = write!(
                std::io::stderr(),
                "{}",
                report::contract_text(&preflight.checks)
            );
            let _ = writeln!(
                std::io::stderr(),
                "hijack conform: {} cases of the profiles {}{} against {target_name}",
                selected.len(),
                names(&profiles),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (not run: {})", names(&skipped))
                }
            );
        }
        let started = Instant::now();
        let results = run_all(&selected, &target, options, &run_token, &preflight, &echo);
        let mut report = RunReport::new(target_name.to_string(), started.elapsed(), results);
        report.contract = preflight.checks;
        Ok(report)
    }
}

/// The start of a run against `addr`: a connection (a target that cannot be reached is an
/// [`Error`]), a token unique to the run (`prefix` and the process and clock), the preflight
/// (with the CONNECT echo target, when the connect profile may run).
pub(crate) fn begin(
    addr: SocketAddr,
    target_name: &str,
    timeout: Duration,
    prefix: &str,
    echo: Option<&crate::connect::EchoTarget>,
) -> Result<(String, Preflight), Error> {
    memory::reachable(addr, timeout)
        .map_err(|e| Error(format!("cannot connect to {target_name} ({addr}): {e}")))?;
    let run_token = format!(
        "{prefix}{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let preflight = Preflight::run_with(addr, timeout, &run_token, echo);
    Ok((run_token, preflight))
}

fn globs<S: AsRef<str>>(patterns: &[S]) -> Result<Option<GlobSet>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.as_ref();
        b.add(Glob::new(p).map_err(|e| Error(format!("bad glob {p:?}: {e}")))?);
    }
    b.build().map(Some).map_err(|e| Error(e.to_string()))
}

/// `http://HOST:PORT[/]` → an address (port 80 when none is given).
pub fn parse_url(url: &str) -> Result<SocketAddr, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error(format!("{url:?}: only http://HOST:PORT URLs are supported")))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.is_empty() {
        return Err(Error(format!(
            "{url:?}: give the server's root, http://HOST:PORT"
        )));
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
        .map_err(|e| Error(format!("{url:?}: {e}")))?
        .next()
        .ok_or_else(|| Error(format!("{url:?}: no address")))
}

fn group(name: &str) -> String {
    name.split('/').next().unwrap_or(name).to_string()
}

/// Runs every byte-level case on `options.jobs` threads, then the memory case alone.
fn run_all(
    selected: &[Case],
    target: &Target,
    options: &RunOptions,
    run: &str,
    preflight: &Preflight,
    echo: &crate::connect::EchoTarget,
) -> Vec<CaseResult> {
    let total = selected.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new((0..total).map(|_| None).collect());
    let progress = |r: &CaseResult| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if options.progress {
            let _ = writeln!(
                std::io::stderr(),
                "[{n}/{total}] {} {} {} ms",
                r.name,
                r.verdict.label(),
                r.duration_ms
            );
        }
    };
    let vectors: Vec<(usize, &Vector)> = selected
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            Case::Bytes(v) => Some((i, v)),
            Case::Memory => None,
        })
        .collect();
    std::thread::scope(|s| {
        for _ in 0..options.jobs.min(vectors.len()) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, v)) = vectors.get(k) else { break };
                    let r = run_vector(v, target, options, run, preflight, echo);
                    progress(&r);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    if let Some(i) = selected.iter().position(|c| matches!(c, Case::Memory)) {
        let started = Instant::now();
        let m = memory::run(target.addr, options.memory_conns.max(1), options.timeout);
        let keep_wire = m.verdict != Verdict::Pass;
        let r = CaseResult {
            name: memory::NAME.into(),
            group: group(memory::NAME),
            level: Level::Should,
            spec: memory::SPEC.into(),
            description: "live heap bytes a server retains per hijacked connection held with every part, through /stats (Go PR #70756)".into(),
            cite: memory::CITE.into(),
            verdict: m.verdict,
            duration_ms: started.elapsed().as_millis() as u64,
            misses: if m.verdict == Verdict::Pass {
                vec![]
            } else {
                vec![Miss {
                    step: 0,
                    level: if m.verdict == Verdict::Fail { Level::Must } else { Level::Should },
                    expected: m.expected,
                    observed: m.observed,
                    inconclusive: false,
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
    target: &Target,
    options: &RunOptions,
    run: &str,
    preflight: &Preflight,
    echo: &crate::connect::EchoTarget,
) -> CaseResult {
    // Through an intermediary, what binds only the origin is held at SHOULD (smuggling
    // stays MUST: the runner holds it so whatever the case's level).
    let per_hop;
    let v = if options.intermediary && !v.per_hop.is_empty() {
        per_hop = v.through_intermediary();
        &per_hop
    } else {
        v
    };
    let started = Instant::now();
    let mut result = CaseResult {
        name: v.name.clone(),
        group: group(&v.name),
        level: v.level,
        spec: v.spec.clone(),
        description: v.description.clone(),
        cite: v.cite.clone(),
        verdict: Verdict::Pass,
        duration_ms: 0,
        misses: vec![],
        wire: vec![],
        figures: None,
    };
    if let Some(why) = preflight.blocks(v) {
        result.verdict = Verdict::Unsupported;
        result.misses.push(Miss {
            step: 0,
            level: v.level,
            expected: "the endpoint contract this case relies on (SPEC.md#conformance-endpoints)"
                .into(),
            observed: format!("preflight: {why}"),
            inconclusive: false,
        });
        return result;
    }
    let substituted = echo.substitute(v);
    let outcome = runner::run(&substituted, target, options.timeout, run);
    result.verdict = outcome.verdict;
    result.misses = outcome.misses;
    if outcome.verdict != Verdict::Pass {
        result.wire = outcome.wire.entries;
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(parse_url("http://127.0.0.1:8080/").unwrap().port(), 8080);
        assert!(parse_url("https://x:1").is_err());
        assert!(parse_url("http://127.0.0.1:1/echo").is_err());
    }

    #[test]
    fn every_vector_round_trips_through_json() {
        for c in Suite::all().cases() {
            let Case::Bytes(v) = c else { continue };
            let json = serde_json::to_string(v).unwrap();
            let back: Vector = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json, "{}", v.name);
        }
    }

    #[test]
    fn a_corpus_folder_adds_and_replaces_cases_before_the_memory_case() {
        let dir = std::env::temp_dir().join(format!("hijack-suite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cl-negative.http"),
            "expect: 400 close\nrule: invalid-content-length\nnote: replaced\n---\nX",
        )
        .unwrap();
        std::fs::write(
            dir.join("zz-new.http"),
            "expect: 400\nrule: invalid-request-line\nnote: added\n---\nY",
        )
        .unwrap();
        let mut suite = Suite::all();
        let before = suite.cases().len();
        assert_eq!(suite.add_hostile_dir(&dir).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(suite.cases().len(), before + 1);
        assert!(matches!(suite.cases().last(), Some(Case::Memory)));
        let find = |name: &str| {
            suite.cases().iter().find_map(|c| match c {
                Case::Bytes(v) if v.name == name => Some(v.description.clone()),
                _ => None,
            })
        };
        assert_eq!(find("hostile/cl-negative").as_deref(), Some("replaced"));
        assert_eq!(find("hostile/zz-new").as_deref(), Some("added"));
        assert!(
            suite
                .add_hostile_dir(Path::new("/nonexistent-hijack-corpus"))
                .is_err(),
            "a missing folder is an error, not zero cases"
        );
    }

    #[test]
    fn select_keeps_matches_and_rejects_bad_globs() {
        let mut suite = Suite::all();
        suite.select(&["handover/*"], &["*100k*"]).unwrap();
        assert!(!suite.cases().is_empty());
        assert!(
            suite
                .cases()
                .iter()
                .all(|c| c.name().starts_with("handover/") && !c.name().contains("100k"))
        );
        assert!(Suite::all().select(&["a["], &[]).is_err());
    }
}
