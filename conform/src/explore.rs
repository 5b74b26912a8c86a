//! `hijack conform --explore N` (SPEC.md#explore): property-based conformance testing of any
//! server. Exchanges come from the test kit's strategy ([`hijack_testkit::exchange`]), seeded;
//! each is judged by the request framing model written from SPEC.md
//! ([`hijack_testkit::framing`]), which decides where every request ends, which one is
//! rejected and with what status, and which bytes an upgrade hands over; the rules of
//! [`crate::rules`] give the level of each rejection. The expectations become a vector
//! (SPEC.md#conformance-vectors) that the runner judges from what it observes, as it judges
//! the fixed cases. A failing exchange is shrunk with proptest's value tree, while it keeps
//! failing the same way, and written as a vector that `--vectors DIR` and
//! `tests/vectors/replay.py` replay.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use hijack_testkit::exchange::{self, Body, Exchange, Tail, Then};
use hijack_testkit::framing::{BodyEnd, HeadModel, decode_body, frame_head};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;

use crate::cases::{
    BYTE_DOES_NOT_FIRE, END_FIRES, END_MARK, HANDED_OVER_ORDER, IN_ORDER, PER_HOP_CLOSE,
};

/// What a reset connection leaves: the server goes on serving the others.
const SERVES_OTHERS: &str = "SPEC.md#conformance-endpoints: \"A request for any other path MUST be answered with 200 and a short text body after the server has read the whole request body.\"";
use crate::preflight::Preflight;
use crate::rules;
use crate::runner::{self, Miss, Target, Verdict};
use crate::suite::Error;
use crate::vector::{Endpoint, Level, RUN_TOKEN, ResponseExpect, Step, Vector, latin1_string};

/// How an exploration runs.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// Exchanges to run at most.
    pub exchanges: usize,
    /// The seed of the exchange sequence: the same seed, the same exchanges.
    pub seed: u64,
    /// Stop starting exchanges after this long (shrinking comes after).
    pub time: Duration,
    /// Exchanges run at once (one connection each, plus `/events` polls).
    pub jobs: usize,
    /// The longest wait of one step.
    pub timeout: Duration,
    /// Shrink and report at most this many distinct failures (FAIL or NON-STRICT), the first
    /// of each kind; later kinds are counted, not shrunk. Exploring goes on regardless.
    pub max_findings: usize,
    /// Stop starting exchanges once this many kinds of failure were seen (0: never).
    pub stop_after: usize,
    /// Longest time spent shrinking one finding.
    pub shrink_time: Duration,
    /// Where the shrunk vectors are written (`DIR/explore/NAME.json`); none: not written.
    pub out: Option<PathBuf>,
    /// The target is an intermediary (SPEC.md#conformance-endpoints).
    pub intermediary: bool,
    /// Print a progress line to stderr every two seconds.
    pub progress: bool,
}

impl Default for ExploreOptions {
    /// 1,000 exchanges, seed 0, 60 s, 8 at once, 5 s per step, 10 findings shrunk, no early
    /// stop, 60 s of shrinking each, no files, origin, progress on.
    fn default() -> Self {
        ExploreOptions {
            exchanges: 1000,
            seed: 0,
            time: Duration::from_secs(60),
            jobs: 8,
            timeout: Duration::from_secs(5),
            max_findings: 10,
            stop_after: 0,
            shrink_time: Duration::from_secs(60),
            out: None,
            intermediary: false,
            progress: true,
        }
    }
}

/// A failure the exploration found, shrunk.
#[derive(Serialize, Clone, Debug)]
pub struct Finding {
    /// `explore/SEED-INDEX`, the vector's name.
    pub name: String,
    /// How it fails: the verdict, the step that missed, the kind of miss and the rule.
    pub signature: String,
    /// FAIL or NON-STRICT.
    pub verdict: Verdict,
    /// The shrunk exchange's misses.
    pub misses: Vec<Miss>,
    /// Bytes the first failing exchange sent, and the shrunk one.
    pub bytes: (usize, usize),
    /// Shrinking steps that kept the failure.
    pub shrink_steps: usize,
    /// Where the vector was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The shrunk vector.
    pub vector: Vector,
}

/// What an exploration did.
#[derive(Serialize, Clone, Debug)]
pub struct ExploreReport {
    /// The server under test.
    pub target: String,
    /// The seed.
    pub seed: u64,
    /// Exchanges run.
    pub exchanges: usize,
    /// Exchanges the model did not judge (it found bytes it has no rule for): not run.
    pub not_judged: usize,
    /// Exchanges per verdict.
    pub verdicts: BTreeMap<String, usize>,
    /// Distinct failures, shrunk, in the order found.
    pub findings: Vec<Finding>,
    /// Every kind of failure seen (its signature) and how many exchanges failed so, shrunk
    /// or not.
    pub kinds: BTreeMap<String, usize>,
    /// The first few INCONCLUSIVE exchanges (nothing decisive arrived within a step's time):
    /// each vector's name and description, and the undecided check.
    pub inconclusive: Vec<(String, String, Miss)>,
    /// Seconds the exploration took, shrinking included.
    pub seconds: f64,
}

impl ExploreReport {
    /// Whether a finding is a FAIL.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.verdict == Verdict::Fail)
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The summary a user reads: counts, then each finding with how to replay it.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "explore: {} exchanges against {} (seed {}) in {:.1} s:",
            self.exchanges, self.target, self.seed, self.seconds
        );
        for (v, n) in &self.verdicts {
            s.push_str(&format!(" {n} {v},"));
        }
        s.pop();
        s.push_str(&format!("; {} not judged by the model\n", self.not_judged));
        for f in &self.findings {
            s.push_str(&format!(
                "  {} {} ({}): {} bytes sent, shrunk to {} in {} steps\n",
                f.verdict.label(),
                f.name,
                f.signature,
                f.bytes.0,
                f.bytes.1,
                f.shrink_steps
            ));
            if let Some(m) = f.misses.iter().find(|m| !m.inconclusive) {
                s.push_str(&format!(
                    "    expected: {}\n    observed: {}\n",
                    m.expected, m.observed
                ));
            }
            if let Some(p) = &f.path {
                s.push_str(&format!("    vector: {}\n", p.display()));
            }
        }
        let unshrunk: Vec<String> = self
            .kinds
            .iter()
            .filter(|(k, _)| !self.findings.iter().any(|f| &f.signature == *k))
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        if !unshrunk.is_empty() {
            s.push_str(&format!(
                "  also failing, not shrunk (--max-findings {}): {}\n",
                self.findings.len(),
                unshrunk.join("; ")
            ));
        }
        for (name, description, m) in &self.inconclusive {
            s.push_str(&format!(
                "  INCONCLUSIVE {name} ({description}): {}; a longer --timeout may decide it\n",
                m.observed
            ));
        }
        if let Some(dir) = self.findings.iter().find_map(|f| f.path.as_ref()) {
            let dir = dir.parent().and_then(Path::parent).unwrap_or(dir);
            s.push_str(&format!(
                "replay them: hijack conform --vectors {} URL (or tests/vectors/replay.py {} URL)\n",
                dir.display(),
                dir.display()
            ));
        } else if self.findings.is_empty() {
            s.push_str(&format!(
                "no disagreement with the model; another seed explores other exchanges (--seed {})\n",
                self.seed.wrapping_add(1)
            ));
        }
        s
    }
}

/// Why the model does not judge an exchange.
#[derive(Debug)]
pub struct NotJudged(pub String);

/// The close-notify timeouts: long when the client goes away (a correct server fires at
/// once), short when it pipelines (the case waits it out).
const FIRES_WITHIN_MS: u64 = 3000;
const PIPELINED_TIMEOUT_MS: u64 = 400;

/// The vector of exchange `ex`, its expectations from the framing model; `name` names it and
/// `id` its close-notify request (`${RUN}` in it is the run token).
pub fn vector_of(ex: &Exchange, name: &str, id: &str) -> Result<Vector, NotJudged> {
    let timeout_ms = match ex.tail {
        Tail::CloseNotify(Then::Pipelined) => PIPELINED_TIMEOUT_MS,
        _ => FIRES_WITHIN_MS,
    };
    let stream = ex.stream((id, timeout_ms));
    let not = |why: String| Err(NotJudged(why));
    // Walk the stream as the model frames it.
    let mut at = 0;
    let mut expected: Vec<ResponseExpect> = Vec::new();
    let mut ended: Option<(&'static rules::Rule, Option<u16>)> = None;
    for _ in &ex.requests {
        match frame_head(&stream[at..]) {
            HeadModel::Head(f) => match decode_body(f.body, &stream[at + f.len..]) {
                (_, BodyEnd::End(n)) => {
                    let mut r = ResponseExpect::status(200);
                    r.names = Some(format!("{} {}", f.method, f.target));
                    expected.push(r);
                    at += f.len + n;
                    if !f.keep_alive {
                        let rule = if f.http11 {
                            "connection-close"
                        } else {
                            "http10-close"
                        };
                        ended = Some((rule_named(rule)?, None));
                        break;
                    }
                }
                (_, BodyEnd::Failed) => {
                    ended = Some((fault_rule(ex, 400)?, Some(400)));
                    break;
                }
                (_, BodyEnd::NeedMore) => return not("a body the model sees cut short".into()),
            },
            HeadModel::Rejected(status) => {
                ended = Some((fault_rule(ex, status)?, Some(status)));
                break;
            }
            HeadModel::Partial => return not("a head the model sees cut short".into()),
            HeadModel::Unsure => return not("bytes the model has no rule for".into()),
        }
    }
    let n = expected.len();
    let mut v = Vector {
        version: 1,
        name: name.to_string(),
        level: Level::Must,
        spec: "SPEC.md#explore".into(),
        description: describe(ex),
        cite: IN_ORDER.into(),
        rule: String::new(),
        per_hop: String::new(),
        needs: Vec::new(),
        steps: vec![Step::Connect { conn: 0 }],
    };
    if let Some((rule, Some(_))) = ended
        && rule.close_level() == Level::Should
        && let Some((i, _)) = ex.fault
    {
        // A rejection whose close the RFC leaves to the server (the framing is not in
        // doubt): the requests after the faulty one are not sent, so that a server that
        // keeps the connection is judged by the follow-up alone, at the close's level.
        let upto = Exchange {
            requests: ex.requests[..=i.min(ex.requests.len() - 1)].to_vec(),
            tail: Tail::Open,
            ..ex.clone()
        };
        let end = upto.stream((id, timeout_ms)).len();
        send_pieces(&mut v.steps, &stream[..end], ex);
    } else if let (Tail::Reset(share), None) = (&ex.tail, &ended) {
        // The first share/256 of the bytes (at least one), then the reset.
        let upto = (stream.len() * usize::from(*share) / 256).max(1);
        send_pieces(&mut v.steps, &stream[..upto], ex);
    } else {
        send_pieces(&mut v.steps, &stream, ex);
    }
    if let Some((rule, status)) = ended {
        // A rejection, or a close the last request asked for: nothing after it is answered.
        if let Some(status) = status {
            expected.push(rule.expect(status));
            v.level = rule.status_level();
        }
        v.rule = rule.id.into();
        v.cite = rule.cite();
        let k = expected.len();
        v.steps.push(Step::ExpectResponses {
            conn: 0,
            responses: Some(expected),
            close: true,
            close_level: Some(rule.close_level()),
            max_responses: Some(k),
            follow_up: true,
        });
        return Ok(v);
    }
    let tail = frame_head(&stream[at..]);
    match (&ex.tail, tail) {
        (Tail::HalfClose, HeadModel::Partial) if at == stream.len() => {
            // Half-closed after the requests: each is answered, then the server closes.
            v.per_hop = PER_HOP_CLOSE.into();
            v.steps.push(Step::ShutdownWrite { conn: 0 });
            v.steps.push(Step::ExpectResponses {
                conn: 0,
                responses: Some(expected),
                close: true,
                close_level: None,
                max_responses: Some(n),
                follow_up: false,
            });
        }
        (Tail::Reset(_), HeadModel::Partial) if at == stream.len() => {
            // Reset somewhere in the requests: nothing can be read on that connection; the
            // server goes on serving others.
            v.cite = SERVES_OTHERS.into();
            v.steps.push(Step::Reset { conn: 0 });
            v.steps.push(Step::Connect { conn: 1 });
            v.steps.push(Step::Send {
                conn: 1,
                data: "GET /explore/after-reset HTTP/1.1\r\nHost: explore\r\n\r\n".into(),
                repeat: None,
                write_size: None,
                pause_ms: None,
            });
            let mut r = ResponseExpect::status(200);
            r.names = Some("GET /explore/after-reset".into());
            v.steps.push(Step::ExpectResponses {
                conn: 1,
                responses: Some(vec![r]),
                close: false,
                close_level: None,
                max_responses: Some(1),
                follow_up: true,
            });
        }
        (Tail::Open, HeadModel::Partial) if at == stream.len() => {
            v.steps.push(Step::ExpectResponses {
                conn: 0,
                responses: Some(expected),
                close: false,
                close_level: None,
                max_responses: Some(n),
                follow_up: true,
            });
        }
        (
            Tail::Upgrade {
                pause_ms, later, ..
            },
            HeadModel::Head(f),
        ) if f.target == "/echo" && f.keep_alive => {
            v.cite = HANDED_OVER_ORDER.into();
            v.needs = vec![Endpoint::Echo];
            let mut handed = stream[at + f.len..].to_vec();
            if !later.is_empty() {
                if *pause_ms > 0 {
                    v.steps.push(Step::Sleep { ms: *pause_ms });
                }
                v.steps.push(send(later));
                handed.extend_from_slice(later);
            }
            let mut up = ResponseExpect::status(101);
            up.headers.insert("upgrade".into(), "echo".into());
            up.headers.insert("connection".into(), "upgrade".into());
            expected.push(up);
            v.steps.push(Step::ExpectResponses {
                conn: 0,
                responses: Some(expected),
                close: false,
                close_level: None,
                max_responses: Some(n + 1),
                follow_up: false,
            });
            v.steps.push(send(END_MARK.as_bytes()));
            if !handed.is_empty() {
                v.steps.push(Step::ExpectBytes {
                    conn: 0,
                    data: latin1_string(&handed),
                    repeat: None,
                });
            }
            v.steps.push(Step::ExpectBytes {
                conn: 0,
                data: END_MARK.into(),
                repeat: None,
            });
            v.steps.push(Step::ShutdownWrite { conn: 0 });
            v.steps.push(Step::ExpectClose { conn: 0 });
        }
        (Tail::CloseNotify(then), HeadModel::Head(f))
            if f.target.starts_with("/close-notify/") && at + f.len == stream.len() =>
        {
            v.needs = vec![Endpoint::CloseNotify];
            let event = id.to_string();
            match then {
                Then::HalfClose | Then::Reset => {
                    v.cite = END_FIRES.into();
                    v.per_hop = PER_HOP_CLOSE.into();
                    if n > 0 {
                        v.steps.push(Step::ExpectResponses {
                            conn: 0,
                            responses: Some(expected),
                            close: false,
                            close_level: None,
                            max_responses: None,
                            follow_up: false,
                        });
                    }
                    v.steps.push(Step::Sleep { ms: 100 });
                    v.steps.push(if *then == Then::Reset {
                        Step::Reset { conn: 0 }
                    } else {
                        Step::ShutdownWrite { conn: 0 }
                    });
                    v.steps.push(Step::ExpectEvent {
                        id: event,
                        close_notify: "fired".into(),
                        within_ms: FIRES_WITHIN_MS + 2000,
                    });
                }
                Then::Pipelined => {
                    v.cite = BYTE_DOES_NOT_FIRE.into();
                    v.steps.push(Step::Sleep { ms: 100 });
                    v.steps.push(send(Exchange::pipelined().as_bytes()));
                    expected.push(ResponseExpect::status(200));
                    let mut p = ResponseExpect::status(200);
                    p.names = Some("GET /explore/pipelined".into());
                    expected.push(p);
                    v.steps.push(Step::ExpectResponses {
                        conn: 0,
                        responses: Some(expected),
                        close: false,
                        close_level: None,
                        max_responses: Some(n + 2),
                        follow_up: false,
                    });
                    v.steps.push(Step::ExpectEvent {
                        id: event,
                        close_notify: "timeout".into(),
                        within_ms: PIPELINED_TIMEOUT_MS + 3000,
                    });
                }
            }
        }
        (_, other) => return not(format!("the ending's request framed as {other:?}")),
    }
    Ok(v)
}

fn rule_named(id: &str) -> Result<&'static rules::Rule, NotJudged> {
    rules::find(id).ok_or_else(|| NotJudged(format!("no rule {id}")))
}

/// The rule of the exchange's fault, which the model's `status` must agree with.
fn fault_rule(ex: &Exchange, status: u16) -> Result<&'static rules::Rule, NotJudged> {
    let Some((_, fault)) = ex.fault else {
        return Err(NotJudged(format!(
            "the model rejects ({status}) an exchange without a fault"
        )));
    };
    let rule = rule_named(fault.rule())?;
    if rule.status != status && !rule.expect(rule.status).allows(status) {
        return Err(NotJudged(format!(
            "the model answers {status} where rule {} answers {}",
            rule.id, rule.status
        )));
    }
    Ok(rule)
}

fn send(bytes: &[u8]) -> Step {
    Step::Send {
        conn: 0,
        data: latin1_string(bytes),
        repeat: None,
        write_size: None,
        pause_ms: None,
    }
}

/// The stream in the exchange's pieces, a pause after each, then the rest at once. No piece
/// ends inside the run token (`${RUN}`), which is replaced in each `send` on its own.
fn send_pieces(steps: &mut Vec<Step>, stream: &[u8], ex: &Exchange) {
    let token = RUN_TOKEN.as_bytes();
    let mut at = 0;
    for p in &ex.pieces {
        if at >= stream.len() {
            break;
        }
        let mut end = (at + p.size).min(stream.len());
        if let Some(i) = (end.saturating_sub(token.len() - 1)..end)
            .find(|&i| stream[i..].starts_with(token) && i + token.len() > end)
        {
            end = i + token.len();
        }
        steps.push(send(&stream[at..end]));
        if p.pause_ms > 0 {
            steps.push(Step::Sleep { ms: p.pause_ms });
        }
        at = end;
    }
    if at < stream.len() {
        steps.push(send(&stream[at..]));
    }
}

/// One line: the requests, the fault, the ending, the pieces.
fn describe(ex: &Exchange) -> String {
    let reqs: Vec<String> = ex
        .requests
        .iter()
        .map(|r| {
            let body = match &r.body {
                Body::None => "",
                Body::Length(_) => " with Content-Length",
                Body::Chunked { .. } => " chunked",
            };
            let end = if r.http10 {
                " (HTTP/1.0)"
            } else if r.close {
                " (Connection: close)"
            } else {
                ""
            };
            format!("{}{body}{end}", r.method)
        })
        .collect();
    let mut s = format!("explored: {}", reqs.join(", "));
    if let Some((i, f)) = ex.fault {
        s.push_str(&format!("; request {} breaks {}", i + 1, f.rule()));
    }
    s.push_str(match ex.tail {
        Tail::Open => "; then a follow-up",
        Tail::HalfClose => "; then a half-close",
        Tail::Reset(_) => "; reset part way, then a request on a new connection",
        Tail::Upgrade { .. } => "; then an upgrade to /echo",
        Tail::CloseNotify(Then::HalfClose) => "; then /close-notify and a half-close",
        Tail::CloseNotify(Then::Reset) => "; then /close-notify and a reset",
        Tail::CloseNotify(Then::Pipelined) => "; then /close-notify and a pipelined request",
    });
    if !ex.pieces.is_empty() {
        s.push_str(&format!("; written in {} pieces first", ex.pieces.len()));
    }
    s
}

/// Bytes a vector sends.
pub fn bytes_sent(v: &Vector) -> usize {
    v.steps
        .iter()
        .map(|s| match s {
            Step::Send { data, repeat, .. } => data.chars().count() * repeat.unwrap_or(1),
            _ => 0,
        })
        .sum()
}

/// How an outcome fails, to tell the same failure from another while shrinking: the
/// verdict, the operation of the step that missed, the kind of miss, the rule.
fn signature(v: &Vector, verdict: Verdict, misses: &[Miss]) -> String {
    let m = misses.iter().find(|m| !m.inconclusive).or(misses.first());
    let (op, kind) = match m {
        None => ("-", "-"),
        Some(m) => {
            let op = match v.steps.get(m.step) {
                Some(Step::ExpectResponses { .. }) => "responses",
                Some(Step::ExpectBytes { .. }) => "echo",
                Some(Step::ExpectClose { .. }) => "close",
                Some(Step::ExpectEvent { .. }) => "close-notify",
                _ => "other",
            };
            let kind = if m.observed.contains("smuggling:") {
                "smuggling"
            } else if m.observed.starts_with("kept open") {
                "kept-open"
            } else {
                "mismatch"
            };
            (op, kind)
        }
    };
    let rule = if v.rule.is_empty() {
        "contract"
    } else {
        &v.rule
    };
    format!("{} {op} {kind} ({rule})", verdict.label())
}

/// One run of an exchange: its vector (or why the model does not judge it), and the verdict,
/// misses and signature.
struct Ran {
    vector: Vector,
    verdict: Verdict,
    misses: Vec<Miss>,
    signature: String,
}

/// A generated exchange with its shrinking state.
type Tree = Box<dyn ValueTree<Value = Exchange>>;

struct Explorer<'a> {
    target: Target,
    preflight: &'a Preflight,
    options: &'a ExploreOptions,
    run_token: String,
    attempts: AtomicUsize,
}

impl Explorer<'_> {
    fn run_one(&self, ex: &Exchange, index: usize) -> Result<Ran, NotJudged> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let name = format!("explore/{}-{index}", self.options.seed);
        // Fixed widths: the bytes a vector sends do not grow with the attempt count, so that
        // shrinking compares sizes fairly.
        let id = format!("${{RUN}}-x{index:06}-{attempt:06}");
        let vector = vector_of(ex, &name, &id)?;
        if self.preflight.blocks(&vector).is_some() {
            return Ok(Ran {
                signature: "UNSUPPORTED".into(),
                vector,
                verdict: Verdict::Unsupported,
                misses: Vec::new(),
            });
        }
        let judged = if self.options.intermediary && !vector.per_hop.is_empty() {
            vector.through_intermediary()
        } else {
            vector.clone()
        };
        let run = format!("{}-{attempt}", self.run_token);
        let outcome = runner::run(&judged, &self.target, self.options.timeout, &run);
        Ok(Ran {
            signature: signature(&judged, outcome.verdict, &outcome.misses),
            vector,
            verdict: outcome.verdict,
            misses: outcome.misses,
        })
    }
}

/// Runs an exploration against `addr` (named `target_name`): preflight, then exchanges on
/// `options.jobs` threads until `options.exchanges` or `options.time`, then the first
/// exchange of each kind of failure shrunk (at most `options.max_findings` of them).
pub fn explore(
    addr: SocketAddr,
    target_name: &str,
    options: &ExploreOptions,
) -> Result<ExploreReport, Error> {
    if options.jobs == 0 {
        return Err(Error::new("jobs must be at least 1"));
    }
    let started = Instant::now();
    let (run_token, preflight) =
        crate::suite::begin(addr, target_name, options.timeout, "e", None)?;
    if preflight.follow_up.status.is_none() {
        return Err(Error::new(format!(
            "{target_name} did not answer the preflight's follow-up request (GET /?follow-up=…): nothing can be judged"
        )));
    }
    let explorer = Explorer {
        target: Target {
            addr,
            follow_up: preflight.follow_up.clone(),
        },
        preflight: &preflight,
        options,
        run_token,
        attempts: AtomicUsize::new(0),
    };
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&options.seed.to_le_bytes());
    let mut generator = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = exchange::exchange().boxed();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_judged = 0;
    let mut ran = 0;
    let mut inconclusive = Vec::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut gone: Option<usize> = None;
    // The first failing tree of each signature, to shrink.
    let mut failing: Vec<(usize, String, Tree, Ran)> = Vec::new();
    let mut last_progress = Instant::now();
    // Workers take exchanges from `jobs` and send their runs back; the trees stay here, kept
    // until their exchange's run is in (and beyond, for the first of each failing kind).
    let (job_tx, job_rx) = mpsc::channel::<(usize, Exchange)>();
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Ran, NotJudged>)>();
    let job_rx = Mutex::new(job_rx);
    let mut in_flight: HashMap<usize, Tree> = HashMap::new();
    let mut generated = 0;
    std::thread::scope(|s| -> Result<(), Error> {
        for _ in 0..options.jobs {
            let (job_rx, done_tx, explorer) = (&job_rx, done_tx.clone(), &explorer);
            s.spawn(move || {
                loop {
                    let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((index, ex)) = job else { break };
                    if done_tx.send((index, explorer.run_one(&ex, index))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let job_tx = job_tx;
        loop {
            while gone.is_none()
                && in_flight.len() < options.jobs * 2
                && generated < options.exchanges
                && started.elapsed() < options.time
                && (options.stop_after == 0 || kinds.len() < options.stop_after)
            {
                let tree = strategy
                    .new_tree(&mut generator)
                    .map_err(|e| Error::new(format!("generating an exchange: {e}")))?;
                if job_tx.send((generated, tree.current())).is_err() {
                    break;
                }
                in_flight.insert(generated, tree);
                generated += 1;
            }
            if in_flight.is_empty() {
                break;
            }
            let Ok((index, r)) = done_rx.recv() else {
                break;
            };
            let Some(tree) = in_flight.remove(&index) else {
                continue;
            };
            // A connection refused: if the target no longer accepts any, stop here (what
            // follows would all fail alike) and say so.
            if let Ok(r) = &r
                && r.misses.iter().any(|m| m.expected == "a connection")
                && crate::memory::reachable(addr, options.timeout).is_err()
            {
                gone = Some(index);
                break;
            }
            match r {
                Ok(r) => {
                    ran += 1;
                    *verdicts.entry(r.verdict.label().to_string()).or_default() += 1;
                    if r.verdict == Verdict::Inconclusive
                        && inconclusive.len() < 3
                        && let Some(m) = r.misses.iter().find(|m| m.inconclusive)
                    {
                        inconclusive.push((
                            r.vector.name.clone(),
                            r.vector.description.clone(),
                            m.clone(),
                        ));
                    }
                    if matches!(r.verdict, Verdict::Fail | Verdict::NonStrict) {
                        let seen = kinds.entry(r.signature.clone()).or_insert(0);
                        *seen += 1;
                        if *seen == 1 && failing.len() < options.max_findings {
                            failing.push((index, r.signature.clone(), tree, r));
                        }
                    }
                }
                Err(_) => not_judged += 1,
            }
            if options.progress && last_progress.elapsed() >= Duration::from_secs(2) {
                last_progress = Instant::now();
                let secs = started.elapsed().as_secs_f64();
                let _ = writeln!(
                    std::io::stderr(),
                    "explore: {ran}/{} exchanges, {:.0}/s, {} failing kinds, {} not judged",
                    options.exchanges,
                    ran as f64 / secs.max(0.001),
                    kinds.len(),
                    not_judged
                );
            }
        }
        Ok(())
    })?;
    if let Some(index) = gone {
        return Err(Error::new(format!(
            "{target_name} stopped accepting connections during exchange {index} of seed {} \
             ({ran} exchanges judged before): one of the exchanges then in flight may have \
             crashed it; rerun with --seed {} --jobs 1 and --explore {} to find which",
            options.seed,
            options.seed,
            index + 1
        )));
    }
    let mut findings = Vec::new();
    for (index, signature, tree, first) in failing {
        if options.progress {
            let _ = writeln!(
                std::io::stderr(),
                "explore: shrinking {} ({signature})",
                first.vector.name
            );
        }
        findings.push(explorer.shrink(index, &signature, tree, first)?);
    }
    Ok(ExploreReport {
        target: target_name.to_string(),
        seed: options.seed,
        exchanges: ran,
        not_judged,
        verdicts,
        findings,
        kinds,
        inconclusive,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Explorer<'_> {
    /// Shrinks a failing exchange while it fails with the same signature (proptest's
    /// simplify/complicate walk), within the shrink time; writes the result's vector.
    fn shrink(
        &self,
        index: usize,
        signature: &str,
        mut tree: Tree,
        first: Ran,
    ) -> Result<Finding, Error> {
        let original = bytes_sent(&first.vector);
        let mut best = first;
        let mut steps = 0;
        let deadline = Instant::now() + self.options.shrink_time;
        let mut more = tree.simplify();
        while more && Instant::now() < deadline {
            // The same failure, and no more bytes than the best so far (a simpler value that
            // sends more counts as not failing, so the walk goes another way).
            let same = match self.run_one(&tree.current(), index) {
                Ok(r)
                    if r.signature == signature
                        && bytes_sent(&r.vector) <= bytes_sent(&best.vector) =>
                {
                    Some(r)
                }
                _ => None,
            };
            more = match same {
                Some(r) => {
                    best = r;
                    steps += 1;
                    tree.simplify()
                }
                None => tree.complicate(),
            };
        }
        let mut vector = best.vector;
        vector.description = format!(
            "{} [found by hijack conform --explore, seed {}, exchange {index}: {signature}]",
            vector.description, self.options.seed
        );
        let path = match &self.options.out {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{}.json", vector.name));
                let written = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| {
                        let json =
                            serde_json::to_string_pretty(&vector).map_err(std::io::Error::other)?;
                        std::fs::write(&path, json + "\n")
                    });
                written.map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
                Some(path)
            }
        };
        Ok(Finding {
            name: vector.name.clone(),
            signature: signature.to_string(),
            verdict: best.verdict,
            misses: best.misses,
            bytes: (original, bytes_sent(&vector)),
            shrink_steps: steps,
            path,
            vector,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hijack_testkit::exchange::{Fault, Piece, Request};

    fn get(i: usize) -> Request {
        Request {
            method: if i == 0 { "GET" } else { "POST" },
            query: String::new(),
            http10: false,
            close: false,
            fields: Vec::new(),
            body: if i == 0 {
                Body::None
            } else {
                Body::Length(b"hello".to_vec())
            },
        }
    }

    fn exchange(n: usize, fault: Option<(usize, Fault)>, tail: Tail) -> Exchange {
        Exchange {
            requests: (0..n).map(get).collect(),
            fault,
            tail,
            pieces: Vec::new(),
        }
    }

    fn sent(v: &Vector) -> String {
        v.steps
            .iter()
            .filter_map(|s| match s {
                Step::Send { data, .. } => Some(data.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The first `expect_responses` step: (status, names) of each response, close,
    /// max_responses, follow_up.
    type Expected = (Vec<(u16, Option<String>)>, bool, Option<usize>, bool);

    fn responses(v: &Vector) -> Expected {
        v.steps
            .iter()
            .find_map(|s| match s {
                Step::ExpectResponses {
                    responses,
                    close,
                    max_responses,
                    follow_up,
                    ..
                } => Some((
                    responses
                        .as_ref()
                        .unwrap()
                        .iter()
                        .map(|r| (r.status, r.names.clone()))
                        .collect(),
                    *close,
                    *max_responses,
                    *follow_up,
                )),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn requests_the_model_frames_are_answered_in_order_and_the_connection_probed() {
        let v = vector_of(&exchange(2, None, Tail::Open), "explore/0-0", "id").unwrap();
        assert_eq!(
            responses(&v),
            (
                vec![
                    (200, Some("GET /explore/0".into())),
                    (200, Some("POST /explore/1".into()))
                ],
                false,
                Some(2),
                true
            )
        );
        assert_eq!(v.level, Level::Must);
    }

    #[test]
    fn a_rejection_whose_framing_is_in_doubt_leaves_the_later_bytes_unanswered() {
        let ex = exchange(3, Some((1, Fault::TeAndCl)), Tail::Open);
        let v = vector_of(&ex, "explore/0-1", "id").unwrap();
        let (got, close, max, follow_up) = responses(&v);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [200, 400]);
        assert!(close && follow_up);
        assert_eq!(max, Some(2));
        assert_eq!(v.rule, "te-and-cl");
        // Sent: the third request too, whose answer would be smuggling.
        assert!(sent(&v).contains("POST /explore/2"), "{}", sent(&v));
        assert!(v.steps.iter().any(|s| matches!(
            s,
            Step::ExpectResponses {
                close_level: Some(Level::Must),
                ..
            }
        )));
    }

    #[test]
    fn a_rejection_whose_close_is_the_servers_choice_sends_nothing_after_it() {
        let ex = exchange(
            3,
            Some((1, Fault::HostMissingOrDuplicate { duplicate: false })),
            Tail::Open,
        );
        let v = vector_of(&ex, "explore/0-2", "id").unwrap();
        assert_eq!(
            responses(&v).0.iter().map(|r| r.0).collect::<Vec<_>>(),
            [200, 400]
        );
        assert!(!sent(&v).contains("/explore/2"), "{}", sent(&v));
    }

    #[test]
    fn an_upgrade_echoes_the_bytes_of_the_heads_write_then_the_later_ones() {
        let tail = Tail::Upgrade {
            with_head: b"first".to_vec(),
            pause_ms: 7,
            later: b"-second".to_vec(),
        };
        let v = vector_of(&exchange(1, None, tail), "explore/0-3", "id").unwrap();
        let echoed: Vec<&str> = v
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::ExpectBytes { data, .. } => Some(data.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(echoed, ["first-second", END_MARK]);
        assert_eq!(v.needs, [Endpoint::Echo]);
        assert!(v.steps.iter().any(|s| matches!(s, Step::Sleep { ms: 7 })));
    }

    #[test]
    fn close_notify_endings_expect_the_event_the_model_says() {
        for (then, want) in [
            (Then::HalfClose, "fired"),
            (Then::Reset, "fired"),
            (Then::Pipelined, "timeout"),
        ] {
            let v = vector_of(
                &exchange(1, None, Tail::CloseNotify(then)),
                "explore/0-4",
                "the-id",
            )
            .unwrap();
            let event = v.steps.iter().find_map(|s| match s {
                Step::ExpectEvent {
                    id, close_notify, ..
                } => Some((id.as_str(), close_notify.as_str())),
                _ => None,
            });
            assert_eq!(event, Some(("the-id", want)), "{then:?}");
            assert!(sent(&v).contains("/close-notify/the-id?timeout_ms="));
        }
    }

    #[test]
    fn a_half_close_after_the_requests_expects_their_answers_then_the_close() {
        let v = vector_of(&exchange(2, None, Tail::HalfClose), "explore/0-6", "id").unwrap();
        let (got, close, max, follow_up) = responses(&v);
        assert_eq!(got.len(), 2);
        assert!(close && !follow_up);
        assert_eq!(max, Some(2));
        assert!(!v.per_hop.is_empty());
        let shut = v
            .steps
            .iter()
            .position(|s| matches!(s, Step::ShutdownWrite { .. }));
        let read = v
            .steps
            .iter()
            .position(|s| matches!(s, Step::ExpectResponses { .. }));
        assert!(shut < read, "the half-close comes before the reading");
    }

    #[test]
    fn a_reset_part_way_sends_a_prefix_then_checks_a_new_connection() {
        let ex = exchange(2, None, Tail::Reset(128));
        let whole = ex.stream(("id", 1)).len();
        let v = vector_of(&ex, "explore/0-7", "id").unwrap();
        assert_eq!(
            sent(&v).len() - "GET /explore/after-reset HTTP/1.1\r\nHost: explore\r\n\r\n".len(),
            whole / 2
        );
        assert!(v.steps.iter().any(|s| matches!(s, Step::Reset { conn: 0 })));
        assert!(v.steps.iter().any(|s| matches!(
            s,
            Step::ExpectResponses {
                conn: 1,
                follow_up: true,
                ..
            }
        )));
    }

    #[test]
    fn no_piece_ends_inside_the_run_token() {
        let mut ex = exchange(0, None, Tail::CloseNotify(Then::HalfClose));
        let stream = ex.stream(("${RUN}-x", 1));
        let at = stream.windows(6).position(|w| w == b"${RUN}").unwrap();
        // A piece that would end two bytes into the token.
        ex.pieces = vec![Piece {
            size: at + 2,
            pause_ms: 0,
        }];
        let v = vector_of(&ex, "explore/0-5", "${RUN}-x").unwrap();
        for s in &v.steps {
            if let Step::Send { data, .. } = s {
                assert_eq!(
                    data.matches("${RUN}").count(),
                    data.matches('$').count(),
                    "{data:?}"
                );
            }
        }
    }
}
