//! Runs one vector against a server and judges it: every check is a PASS or a miss, a miss
//! at MUST level makes the case FAIL, one at SHOULD level NON-STRICT. The runner stops at
//! the first miss: what follows would be judged against a connection in an unknown state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::vector::{Level, ResponseExpect, Step, Vector, latin1_bytes};
use crate::wire::{Client, Parsed, ReadEnd, Response, WireLog, escape, parse_response};

/// The verdict of a case.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Every check held.
    #[serde(rename = "PASS")]
    Pass,
    /// A MUST-level check missed.
    #[serde(rename = "FAIL")]
    Fail,
    /// Only SHOULD-level checks missed.
    #[serde(rename = "NON-STRICT")]
    NonStrict,
    /// The server lacks an endpoint the case needs, or breaks the endpoint contract the
    /// case relies on (the preflight says which rule).
    #[serde(rename = "UNSUPPORTED")]
    Unsupported,
    /// Nothing decisive arrived within a step's time: no response, no close, no answer to
    /// the follow-up. Never a PASS or a FAIL; a longer `--timeout` may decide it.
    #[serde(rename = "INCONCLUSIVE")]
    Inconclusive,
}

impl Verdict {
    /// The verdict as the reports spell it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Unsupported => "UNSUPPORTED",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// A check that did not hold.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Miss {
    /// Index of the step in the vector.
    pub step: usize,
    /// The level it was held at.
    pub level: Level,
    /// What the case expected.
    pub expected: String,
    /// What the server did.
    pub observed: String,
}

/// The result of running one vector.
pub struct Outcome {
    /// PASS, FAIL or NON-STRICT (UNSUPPORTED is decided before running).
    pub verdict: Verdict,
    /// The misses, in order.
    pub misses: Vec<Miss>,
    /// Everything sent and received.
    pub wire: WireLog,
}

/// Where the server under test listens.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Its address.
    pub addr: SocketAddr,
}

/// How long to wait for more responses after the expected ones when a check limits their
/// number: a response to a smuggled request comes right after the first.
const QUIET: Duration = Duration::from_millis(250);

/// Runs `vector` with `run` substituted for the run token, each wait bounded by `timeout`.
pub fn run(vector: &Vector, target: Target, timeout: Duration, run: &str) -> Outcome {
    let mut ctx = Ctx {
        target,
        timeout,
        conns: HashMap::new(),
        wire: WireLog::new(),
        run: run.to_string(),
    };
    let mut misses = Vec::new();
    for (i, step) in vector.steps.iter().enumerate() {
        let step_misses = ctx.step(step, vector.level);
        let stop = !step_misses.is_empty();
        misses.extend(
            step_misses
                .into_iter()
                .map(|(level, expected, observed)| Miss {
                    step: i,
                    level,
                    expected,
                    observed,
                }),
        );
        if stop {
            ctx.wire.note(None, format!("stopped at step {i}"));
            break;
        }
    }
    let verdict = if misses.iter().any(|m| m.level == Level::Must) {
        Verdict::Fail
    } else if misses.is_empty() {
        Verdict::Pass
    } else {
        Verdict::NonStrict
    };
    Outcome {
        verdict,
        misses,
        wire: ctx.wire,
    }
}

type StepMiss = (Level, String, String);

struct Ctx {
    target: Target,
    timeout: Duration,
    conns: HashMap<usize, Client>,
    wire: WireLog,
    run: String,
}

impl Ctx {
    fn subst(&self, s: &str) -> String {
        s.replace(super::vector::RUN_TOKEN, &self.run)
    }

    fn bytes(&self, data: &str, repeat: Option<usize>) -> Vec<u8> {
        // Vectors are built by this harness or checked on load, so every char is Latin-1.
        latin1_bytes(&self.subst(data))
            .unwrap_or_default()
            .repeat(repeat.unwrap_or(1))
    }

    fn step(&mut self, step: &Step, level: Level) -> Vec<StepMiss> {
        let deadline = Instant::now() + self.timeout;
        match step {
            Step::Connect { conn } => {
                match Client::connect(*conn, self.target.addr, self.timeout) {
                    Ok(c) => {
                        self.wire.note(Some(*conn), "connected");
                        self.conns.insert(*conn, c);
                        vec![]
                    }
                    Err(e) => vec![(Level::Must, "a connection".into(), format!("connect: {e}"))],
                }
            }
            Step::Send {
                conn,
                data,
                repeat,
                write_size,
                pause_ms,
            } => {
                let bytes = self.bytes(data, *repeat);
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                c.send(
                    &mut self.wire,
                    &bytes,
                    write_size.unwrap_or(bytes.len()),
                    Duration::from_millis(pause_ms.unwrap_or(0)),
                );
                vec![]
            }
            Step::Sleep { ms } => {
                std::thread::sleep(Duration::from_millis(*ms));
                vec![]
            }
            Step::ShutdownWrite { conn } | Step::Reset { conn } | Step::Close { conn } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                match step {
                    Step::ShutdownWrite { .. } => c.shutdown_write(&mut self.wire),
                    Step::Reset { .. } => c.reset(&mut self.wire),
                    _ => c.close(&mut self.wire),
                }
                vec![]
            }
            Step::ExpectResponses {
                conn,
                responses,
                close,
                close_level,
                max_responses,
                follow_up: _,
            } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                expect_responses(
                    c,
                    &mut self.wire,
                    deadline,
                    responses.as_deref(),
                    (*close, close_level.unwrap_or(level)),
                    *max_responses,
                    level,
                )
            }
            Step::ExpectBytes { conn, data, repeat } => {
                let want = self.bytes(data, *repeat);
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                expect_bytes(c, &mut self.wire, deadline, &want, level)
            }
            Step::ExpectClose { conn } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                let start = c.buf.len();
                let end = loop {
                    match c.fill(&mut self.wire, deadline) {
                        Ok(_) => {}
                        Err(end) => break end,
                    }
                };
                let extra = c.buf.split_off(start);
                if end == ReadEnd::Timeout || !extra.is_empty() {
                    let mut observed = end.to_string();
                    if !extra.is_empty() {
                        observed = format!(
                            "{} more bytes \"{}\", then {observed}",
                            extra.len(),
                            escape(&extra)
                        );
                    }
                    return vec![(level, "the server closes the connection".into(), observed)];
                }
                vec![]
            }
            Step::ExpectEvent {
                id,
                close_notify,
                within_ms,
            } => {
                let id = self.subst(id);
                self.expect_event(&id, close_notify, Duration::from_millis(*within_ms), level)
            }
        }
    }

    fn expect_event(
        &mut self,
        id: &str,
        want: &str,
        within: Duration,
        level: Level,
    ) -> Vec<StepMiss> {
        let deadline = Instant::now() + within;
        let expected = format!("/events/{id} reports close_notify \"{want}\"");
        let mut last;
        let mut polls = 0;
        loop {
            polls += 1;
            match event(self.target.addr, id, self.timeout) {
                Ok(Some(state)) if state != "pending" => {
                    self.wire.note(
                        None,
                        format!("/events/{id}: {last} after {polls} polls", last = state),
                    );
                    if state == want {
                        return vec![];
                    }
                    return vec![(level, expected, format!("close_notify \"{state}\""))];
                }
                Ok(Some(state)) => last = format!("close_notify \"{state}\""),
                Ok(None) => last = "404 (no record)".into(),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline || polls >= 1000 {
                self.wire
                    .note(None, format!("/events/{id}: {last} after {polls} polls"));
                return vec![(
                    level,
                    expected,
                    format!("{last} after {} ms", within.as_millis()),
                )];
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn no_conn(conn: usize) -> StepMiss {
    (
        Level::Must,
        format!("connection {conn} open"),
        "the vector never opened it".into(),
    )
}

/// `GET /events/{id}` on a fresh connection: `Some(close_notify)`, `None` for 404.
fn event(addr: SocketAddr, id: &str, timeout: Duration) -> Result<Option<String>, String> {
    let mut log = WireLog::new();
    let mut c = Client::connect(0, addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let req = format!("GET /events/{id} HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n");
    c.send(&mut log, req.as_bytes(), usize::MAX, Duration::ZERO);
    let resp = read_one(&mut c, &mut log, Instant::now() + timeout)?;
    match resp.status {
        404 => Ok(None),
        200 => {
            let v: serde_json::Value = serde_json::from_slice(&resp.body)
                .map_err(|e| format!("/events body is not JSON: {e}"))?;
            match v.get("close_notify").and_then(|s| s.as_str()) {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(format!("/events JSON without close_notify: {v}")),
            }
        }
        other => Err(format!("/events answered {other}")),
    }
}

/// Reads one complete response from `c`.
pub fn read_one(c: &mut Client, log: &mut WireLog, deadline: Instant) -> Result<Response, String> {
    loop {
        match parse_response(&c.buf, c.ended.is_some()) {
            Parsed::Complete(r, used) => {
                c.buf.drain(..used);
                return Ok(r);
            }
            Parsed::Invalid(e) => return Err(e),
            Parsed::Partial => {}
        }
        if let Err(end) = c.fill(log, deadline) {
            if end == ReadEnd::Eof && !c.buf.is_empty() {
                // A close-delimited body may be complete now.
                if let Parsed::Complete(r, used) = parse_response(&c.buf, true) {
                    c.buf.drain(..used);
                    return Ok(r);
                }
            }
            return Err(format!("no complete response: {end}"));
        }
    }
}

/// Reads responses and checks them; see `Step::ExpectResponses`.
fn expect_responses(
    c: &mut Client,
    log: &mut WireLog,
    deadline: Instant,
    want: Option<&[ResponseExpect]>,
    (close, close_level): (bool, Level),
    max_responses: Option<usize>,
    level: Level,
) -> Vec<StepMiss> {
    let mut got: Vec<Response> = Vec::new();
    let mut trouble: Option<String> = None;
    let mut end: Option<ReadEnd> = None;
    let mut quiet_until: Option<Instant> = None;
    loop {
        // Take every complete response out of the buffer; interim 1xx other than 101 are
        // not answers.
        loop {
            match parse_response(&c.buf, c.ended.is_some()) {
                Parsed::Complete(r, used) => {
                    c.buf.drain(..used);
                    if (100..200).contains(&r.status) && r.status != 101 {
                        log.note(Some(c.id), format!("interim {} skipped", r.status));
                        continue;
                    }
                    got.push(r);
                }
                Parsed::Invalid(e) if !c.buf.is_empty() => {
                    trouble = Some(format!("{e}: \"{}\"", escape(&c.buf)));
                    break;
                }
                _ => break,
            }
            // After a 101 the bytes are the new protocol's.
            if got.last().is_some_and(|r| r.status == 101) {
                break;
            }
        }
        if trouble.is_some() || got.last().is_some_and(|r| r.status == 101) {
            break;
        }
        if let Some(e) = c.ended {
            if !c.buf.is_empty() {
                trouble = Some(format!("closed inside a response: \"{}\"", escape(&c.buf)));
            }
            end = Some(e);
            break;
        }
        let enough = want.is_some_and(|w| got.len() >= w.len());
        let wait_until = if close {
            deadline
        } else if enough || want.is_none() {
            match max_responses {
                Some(m) if got.len() <= m => {
                    *quiet_until.get_or_insert_with(|| Instant::now() + QUIET)
                }
                _ if want.is_none() => *quiet_until.get_or_insert_with(|| Instant::now() + QUIET),
                _ => break,
            }
        } else {
            deadline
        };
        match c.fill(log, wait_until.min(deadline)) {
            Ok(_) => {}
            Err(ReadEnd::Timeout) => {
                end = Some(ReadEnd::Timeout);
                break;
            }
            Err(e) => {
                end = Some(e);
            }
        }
    }
    let observed = {
        let list: Vec<String> = got.iter().map(Response::describe).collect();
        let mut s = if list.is_empty() {
            "no response".to_string()
        } else {
            format!("responses {}", list.join(", "))
        };
        if let Some(t) = &trouble {
            s.push_str(&format!("; {t}"));
        }
        if let Some(e) = end {
            s.push_str(&format!("; then {e}"));
        }
        s
    };
    let mut misses = Vec::new();
    if let Some(m) = max_responses
        && got.len() > m
    {
        misses.push((
            Level::Must,
            format!("at most {m} response(s): more would answer a request hidden in a body"),
            observed.clone(),
        ));
    }
    let mut expected = match want {
        Some(w) => format!(
            "responses {}",
            w.iter()
                .map(|r| {
                    let mut s = r.status.to_string();
                    if !r.headers.is_empty() {
                        let f: Vec<String> =
                            r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                        s.push_str(&format!(" [{}]", f.join(", ")));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "any responses".to_string(),
    };
    if close {
        expected.push_str("; then closed");
    }
    let statuses_ok = want.is_none_or(|w| {
        w.len() == got.len()
            && w.iter().zip(&got).all(|(e, r)| {
                e.status == r.status && e.headers.iter().all(|(n, v)| r.has_token(n, v))
            })
    });
    let close_ok = !close || matches!(end, Some(ReadEnd::Eof | ReadEnd::Reset));
    if !close_ok && close_level == Level::Must && level != Level::Must {
        misses.push((
            Level::Must,
            format!("{expected} (the close at level must)"),
            observed.clone(),
        ));
    }
    if !statuses_ok || !close_ok || trouble.is_some() {
        misses.push((level, expected, observed));
    }
    misses
}

/// Reads exactly `want` and checks it.
fn expect_bytes(
    c: &mut Client,
    log: &mut WireLog,
    deadline: Instant,
    want: &[u8],
    level: Level,
) -> Vec<StepMiss> {
    let mut end = None;
    while c.buf.len() < want.len() && end.is_none() {
        if let Err(e) = c.fill(log, deadline) {
            end = Some(e);
        }
    }
    let n = want.len().min(c.buf.len());
    let got: Vec<u8> = c.buf.drain(..n).collect();
    if got == want {
        return vec![];
    }
    let first_diff = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(n);
    let from = first_diff.saturating_sub(16);
    let observed = format!(
        "{} of {} bytes{}; first difference at byte {first_diff}: got \"{}\"",
        got.len(),
        want.len(),
        end.map(|e| format!(", then {e}")).unwrap_or_default(),
        escape(&got[from.min(got.len())..(first_diff + 32).min(got.len())]),
    );
    let expected = format!(
        "{} bytes echoed: \"{}\"",
        want.len(),
        escape(&want[from..(first_diff + 32).min(want.len())])
    );
    vec![(level, expected, observed)]
}
