//! Shared support of the proptest suites (tests/prop_*.rs, issue 5): seeded byte patterns,
//! the proptest configuration (case counts, regression files in `proptest-regressions/`),
//! bounded waits and a reader for responses on the wire.
#![allow(dead_code)]

use hijack_testkit::wire;

use proptest::test_runner::{Config, FailurePersistence, FileFailurePersistence, PersistedSeed};

/// The proptest configuration of one property: `cases` cases (fixed here, not read from
/// `PROPTEST_CASES`), failures persisted to `proptest-regressions/<file>.txt` (committed).
/// Under the kill matrix (`HIJACK_KILL_MATRIX` set) a failure is neither shrunk nor persisted:
/// the verdict is all it needs, and its runs of mutated code must not add to the committed
/// regression files (which it still replays).
pub fn config(cases: u32, regressions: &'static str) -> Config {
    let file = FileFailurePersistence::Direct(regressions);
    let kill_matrix = std::env::var_os("HIJACK_KILL_MATRIX").is_some();
    Config {
        cases,
        failure_persistence: Some(if kill_matrix {
            Box::new(ReadOnly(file))
        } else {
            Box::new(file)
        }),
        // A failing case of these suites can take seconds (a guarded wait runs out): bound
        // the shrinking so a kill-matrix run stays within its time limit.
        max_shrink_time: 120_000,
        max_shrink_iters: if kill_matrix {
            0
        } else {
            Config::default().max_shrink_iters
        },
        ..Config::default()
    }
}

/// A regression file that is read and never written.
#[derive(Clone, Debug, PartialEq)]
struct ReadOnly(FileFailurePersistence);

impl FailurePersistence for ReadOnly {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        self.0.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        _source_file: Option<&'static str>,
        _seed: PersistedSeed,
        _shrunken_value: &dyn std::fmt::Debug,
    ) {
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other.as_any().downcast_ref::<ReadOnly>() == Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
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

    fn of(r: &wire::Response) -> Head {
        Head {
            version: r.version,
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            len: r.head_len,
        }
    }
}

/// Parses a complete response head at the start of `wire`; `None` if incomplete.
pub fn parse_head(wire: &[u8]) -> Option<Head> {
    match wire::parse_head(wire) {
        Ok(head) => head.as_ref().map(Head::of),
        Err(e) => panic!("{e}"),
    }
}

/// Decodes chunk frames (`size CRLF data CRLF`) from the start of `wire` until `total` body
/// bytes were decoded; returns the body and the bytes the frames took. `None` if the frames
/// are malformed or end early (the zero-size chunk included).
pub fn decode_chunk_frames(wire: &[u8], total: usize) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    while body.len() < total {
        let wire::Frame::Data { data, next } = wire::chunk_frame(wire, at).ok()? else {
            return None;
        };
        body.extend_from_slice(&wire[data]);
        at = next;
    }
    (body.len() == total).then_some((body, at))
}

/// A complete response read from the start of `wire`: head, body, and where the next one
/// starts. A body without Content-Length or chunked framing runs to the end of `wire`.
pub fn parse_response(wire: &[u8], head_request: bool) -> Option<(Head, Vec<u8>, usize)> {
    parse_head(wire)?;
    let r = wire::read_response(wire, head_request).ok()?;
    r.complete.then(|| (Head::of(&r), r.body.clone(), r.len))
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
