//! Shared support of the proptest suites (tests/prop_*.rs, issue 5): seeded byte patterns,
//! the proptest configuration (case counts, regression files in `proptest-regressions/`),
//! bounded waits and a reader for responses on the wire.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use proptest::test_runner::{Config, FileFailurePersistence};

/// The proptest configuration of one property: `cases` cases (fixed here, not read from
/// `PROPTEST_CASES`), failures persisted to `proptest-regressions/<file>.txt` (committed).
pub fn config(cases: u32, regressions: &'static str) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // A failing case of these suites can take seconds (a guarded wait runs out): bound
        // the shrinking so a kill-matrix run stays within its time limit.
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

/// `len` bytes from a seeded generator: shrinking changes `seed` and `len`, not each byte.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        for b in z.to_le_bytes() {
            if out.len() < len {
                out.push(b);
            }
        }
    }
    out
}

/// How long a guarded wait may take before the test fails. Generous: it only ever runs out
/// when the property is already broken.
pub const GUARD: Duration = Duration::from_secs(10);

/// Waits until `cond` holds; fails the test (with `what`) after [`GUARD`]. Polls by yielding
/// first, so the common, immediate case costs microseconds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        assert!(start.elapsed() < GUARD, "timed out waiting until {what}");
        spins += 1;
        if spins < 2000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// A response head as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version: u8,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Bytes the head took.
    pub len: usize,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a complete response head at the start of `wire`; `None` if incomplete.
pub fn parse_head(wire: &[u8]) -> Option<Head> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    match resp.parse(wire).expect("malformed response head") {
        httparse::Status::Complete(len) => Some(Head {
            version: resp.version.unwrap(),
            status: resp.code.unwrap(),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            len,
        }),
        httparse::Status::Partial => None,
    }
}

/// Decodes chunk frames (`size CRLF data CRLF`) from the start of `wire` until `total` body
/// bytes were decoded; returns the body and the bytes the frames took. `None` if the frames
/// are malformed or end early.
pub fn decode_chunk_frames(wire: &[u8], total: usize) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    while body.len() < total {
        let line_end = at + wire[at..].windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&wire[at..line_end]).ok()?, 16).ok()?;
        if size == 0 {
            return None;
        }
        let data = line_end + 2;
        body.extend_from_slice(wire.get(data..data + size)?);
        if wire.get(data + size..data + size + 2)? != b"\r\n" {
            return None;
        }
        at = data + size + 2;
    }
    (body.len() == total).then_some((body, at))
}

/// A complete response read from `wire` at `at`: head, body, and where the next one starts.
/// Handles Content-Length and complete chunked bodies (with the zero-size chunk).
pub fn parse_response(wire: &[u8], head_request: bool) -> Option<(Head, Vec<u8>, usize)> {
    let head = parse_head(wire)?;
    let rest = &wire[head.len..];
    if head_request || head.status / 100 == 1 || head.status == 204 || head.status == 304 {
        return Some((head.clone(), Vec::new(), head.len));
    }
    if let Some(len) = head.header("content-length") {
        let len: usize = len.trim().parse().ok()?;
        let body = rest.get(..len)?.to_vec();
        let end = head.len + len;
        return Some((head, body, end));
    }
    if head.header("transfer-encoding").is_some() {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + rest[at..].windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            let data = line_end + 2;
            body.extend_from_slice(rest.get(data..data + size)?);
            at = data + size + 2;
            if size == 0 {
                let end = head.len + at;
                return Some((head, body, end));
            }
        }
    }
    let end = wire.len();
    Some((head.clone(), rest.to_vec(), end))
}

/// How often each interesting situation came up, per test binary (printed with
/// `PROP_STATS=1 cargo test --test <file> -- --nocapture`): evidence that the generators reach
/// the cases the properties are about.
static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Counts one occurrence of `what`.
pub fn tally(what: impl Into<String>) {
    *TALLY.lock().unwrap().entry(what.into()).or_default() += 1;
}

/// Prints the counts whose names start with `prefix` (with `PROP_STATS` set).
pub fn print_tally(prefix: &str) {
    if std::env::var_os("PROP_STATS").is_none() {
        return;
    }
    for (what, n) in TALLY.lock().unwrap().iter() {
        if what.starts_with(prefix) {
            eprintln!("{what}: {n}");
        }
    }
}

/// Runs `test` on `cases` generated cases (regressions in `regressions`), then prints the
/// tally of `prefix`; panics with proptest's report (the shrunk case) on failure.
pub fn run_property<S: proptest::strategy::Strategy>(
    cases: u32,
    regressions: &'static str,
    prefix: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), proptest::test_runner::TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = proptest::test_runner::TestRunner::new(config(cases, regressions));
    let result = runner.run(&strategy, test);
    print_tally(prefix);
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
}
