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

/// A check that did not hold, or could not be decided.
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
    /// Nothing decisive arrived: the check is neither met nor missed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
}

/// The result of running one vector.
pub struct Outcome {
    /// PASS, FAIL, NON-STRICT or INCONCLUSIVE (UNSUPPORTED is decided before running).
    pub verdict: Verdict,
    /// The misses, in order.
    pub misses: Vec<Miss>,
    /// Everything sent and received.
    pub wire: WireLog,
}

/// Where the server under test listens, and what the preflight learnt of it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its address.
    pub addr: SocketAddr,
    /// How the server answers the follow-up request on a fresh connection.
    pub follow_up: FollowUpAnswer,
}

/// How the server answers the follow-up request (`GET /?follow-up=…`) on a fresh connection,
/// which tells its answer apart from an answer to anything else.
#[derive(Clone, Debug, Default)]
pub struct FollowUpAnswer {
    /// Its status (`None`: the preflight got no answer).
    pub status: Option<u16>,
    /// Whether the body names the request target (then the token identifies the answer).
    pub reflects: bool,
    /// Whether the body names method and target, `GET /?follow-up=…`, so that a follow-up
    /// read together with earlier bytes shows as another method.
    pub names_method: bool,
}

/// The follow-up request for the token `token`.
pub fn follow_up_request(token: &str) -> String {
    format!("GET /?follow-up={token} HTTP/1.1\r\nHost: conform\r\n\r\n")
}

/// Runs `vector` with `run` substituted for the run token, each wait bounded by `timeout`.
pub fn run(vector: &Vector, target: &Target, timeout: Duration, run: &str) -> Outcome {
    let mut ctx = Ctx {
        target: target.clone(),
        timeout,
        conns: HashMap::new(),
        wire: WireLog::new(),
        run: run.to_string(),
        case: vector.name.clone(),
    };
    let mut misses = Vec::new();
    for (i, step) in vector.steps.iter().enumerate() {
        let step_misses = ctx.step(step, vector.level);
        let stop = !step_misses.is_empty();
        misses.extend(step_misses.into_iter().map(|m| Miss {
            step: i,
            level: m.level,
            expected: m.expected,
            observed: m.observed,
            inconclusive: m.inconclusive,
        }));
        if stop {
            ctx.wire.note(None, format!("stopped at step {i}"));
            break;
        }
    }
    Outcome {
        verdict: verdict(&misses),
        misses,
        wire: ctx.wire,
    }
}

/// FAIL when a decided MUST check missed; else INCONCLUSIVE when a check could not be
/// decided (it might have been a MUST); else NON-STRICT when a SHOULD check missed.
pub fn verdict(misses: &[Miss]) -> Verdict {
    if misses
        .iter()
        .any(|m| !m.inconclusive && m.level == Level::Must)
    {
        Verdict::Fail
    } else if misses.iter().any(|m| m.inconclusive) {
        Verdict::Inconclusive
    } else if misses.is_empty() {
        Verdict::Pass
    } else {
        Verdict::NonStrict
    }
}

/// One check of a step that missed or stayed undecided.
struct StepMiss {
    level: Level,
    expected: String,
    observed: String,
    inconclusive: bool,
}

fn missed(level: Level, expected: impl Into<String>, observed: impl Into<String>) -> StepMiss {
    StepMiss {
        level,
        expected: expected.into(),
        observed: observed.into(),
        inconclusive: false,
    }
}

fn undecided(level: Level, expected: impl Into<String>, observed: impl Into<String>) -> StepMiss {
    StepMiss {
        inconclusive: true,
        ..missed(level, expected, observed)
    }
}

/// "5 s" or "800 ms".
fn secs(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

struct Ctx {
    target: Target,
    timeout: Duration,
    conns: HashMap<usize, Client>,
    wire: WireLog,
    run: String,
    case: String,
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
                    Err(e) => vec![missed(Level::Must, "a connection", format!("connect: {e}"))],
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
                follow_up,
            } => {
                let token = format!("{}-{}-{conn}", self.run, self.case.replace('/', "-"));
                let follow_up = follow_up.then(|| (token, self.target.follow_up.clone()));
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                let expect = Expect {
                    want: responses.as_deref(),
                    close: *close,
                    close_level: close_level.unwrap_or(if follow_up.is_some() {
                        // Where the case names no level for the close, a connection kept
                        // open after an answered follow-up is NON-STRICT at most.
                        Level::Should
                    } else {
                        level
                    }),
                    max_responses: *max_responses,
                    level,
                    timeout: self.timeout,
                    naming: self.target.follow_up.clone(),
                };
                expect.check(c, &mut self.wire, deadline, follow_up)
            }
            Step::ExpectBytes { conn, data, repeat } => {
                let want = self.bytes(data, *repeat);
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                expect_bytes(c, &mut self.wire, deadline, &want, level, self.timeout)
            }
            Step::ExpectClose { conn } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                let start = c.buf.len();
                let end = loop {
                    if let Err(end) = c.fill(&mut self.wire, deadline) {
                        break end;
                    }
                };
                let extra = c.buf.split_off(start);
                let expected = "the server closes the connection";
                if !extra.is_empty() {
                    let observed = format!(
                        "{} more bytes \"{}\", then {end}",
                        extra.len(),
                        escape(&extra)
                    );
                    return vec![missed(level, expected, observed)];
                }
                if end == ReadEnd::Timeout {
                    return vec![undecided(
                        level,
                        expected,
                        format!("no close within {}", secs(self.timeout)),
                    )];
                }
                vec![]
            }
            Step::ExpectWsMessages { conn, messages } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                judged(
                    level,
                    crate::websocket::expect_messages(c, &mut self.wire, deadline, messages),
                )
            }
            Step::ExpectTunnel { conn } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return vec![no_conn(*conn)];
                };
                judged(
                    level,
                    crate::connect::expect_tunnel(c, &mut self.wire, deadline),
                )
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
                    return vec![missed(level, expected, format!("close_notify \"{state}\""))];
                }
                Ok(Some(state)) => last = format!("close_notify \"{state}\""),
                Ok(None) => last = "404 (no record)".into(),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline || polls >= 1000 {
                self.wire
                    .note(None, format!("/events/{id}: {last} after {polls} polls"));
                // Still pending: the record has not been decided either way yet.
                return vec![undecided(
                    level,
                    expected,
                    format!("{last} after {} ms", within.as_millis()),
                )];
            }
            // 20 ms, growing to 200 ms: a server that records slowly is not flooded.
            std::thread::sleep(Duration::from_millis((20 * polls).min(200)));
        }
    }
}

/// A profile step's check (`None`: it held; else whether it was decided, what was expected,
/// what was observed) as the step's misses.
fn judged(level: Level, check: Option<(bool, String, String)>) -> Vec<StepMiss> {
    match check {
        None => vec![],
        Some((true, expected, observed)) => vec![missed(level, expected, observed)],
        Some((false, expected, observed)) => vec![undecided(level, expected, observed)],
    }
}

fn no_conn(conn: usize) -> StepMiss {
    missed(
        Level::Must,
        format!("connection {conn} open"),
        "the vector never opened it",
    )
}

/// `GET /events/{id}` on a fresh connection: `Some(close_notify)`, `None` for 404.
fn event(addr: SocketAddr, id: &str, timeout: Duration) -> Result<Option<String>, String> {
    let req = format!("GET /events/{id} HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n");
    let (_, resp) = exchange(addr, timeout, &req, &mut WireLog::new())?;
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

/// Sends `req` on a fresh connection and reads one response, each within `timeout`; the
/// connection, for what follows, and the response.
pub fn exchange(
    addr: SocketAddr,
    timeout: Duration,
    req: &str,
    log: &mut WireLog,
) -> Result<(Client, Response), String> {
    let mut c = Client::connect(0, addr, timeout).map_err(|e| format!("connect: {e}"))?;
    c.send(log, req.as_bytes(), usize::MAX, Duration::ZERO);
    let resp = read_one(&mut c, log, Instant::now() + timeout)?;
    Ok((c, resp))
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
            return Err(match end {
                ReadEnd::Timeout => "no complete response within the time allowed".into(),
                end => format!("no complete response: {end}"),
            });
        }
    }
}

/// How long the connection must stay silent before the follow-up is sent (at most ten times
/// this in all).
const SETTLE: Duration = Duration::from_millis(100);

/// What an `expect_responses` step holds the server to.
struct Expect<'a> {
    want: Option<&'a [ResponseExpect]>,
    close: bool,
    close_level: Level,
    max_responses: Option<usize>,
    level: Level,
    timeout: Duration,
    /// How the target's bodies name the requests they answer (the preflight's finding).
    naming: FollowUpAnswer,
}

/// What the reads of one step saw.
#[derive(Default)]
struct Seen {
    /// Final responses, in order (interim 1xx other than 101 are skipped).
    got: Vec<Response>,
    /// Bytes that are not a response.
    trouble: Option<String>,
    /// The status of a response the close cut short (its status line arrived, not its end).
    truncated: Option<u16>,
    /// The follow-up was answered as part of a request that began with earlier bytes.
    merged: Option<String>,
    /// How the reading ended: `None` when it stopped because it had enough.
    end: Option<ReadEnd>,
}

impl Seen {
    fn upgraded(&self) -> bool {
        self.got.last().is_some_and(|r| r.status == 101)
    }

    /// Reads until `enough(got)`, a 101, bytes that are no response, the server's close, or
    /// `deadline`.
    fn read(
        &mut self,
        c: &mut Client,
        log: &mut WireLog,
        deadline: Instant,
        enough: impl Fn(&[Response]) -> bool,
    ) {
        loop {
            loop {
                match parse_response(&c.buf, c.ended.is_some()) {
                    Parsed::Complete(r, used) => {
                        c.buf.drain(..used);
                        if (100..200).contains(&r.status) && r.status != 101 {
                            log.note(Some(c.id), format!("interim {} skipped", r.status));
                            continue;
                        }
                        self.got.push(r);
                    }
                    Parsed::Invalid(e) if !c.buf.is_empty() => {
                        self.trouble = Some(format!("{e}: \"{}\"", escape(&c.buf)));
                        return;
                    }
                    _ => break,
                }
                // After a 101 the bytes are the new protocol's.
                if self.upgraded() {
                    return;
                }
            }
            if let Some(e) = c.ended {
                if !c.buf.is_empty() {
                    self.trouble =
                        Some(format!("closed inside a response: \"{}\"", escape(&c.buf)));
                    self.truncated = status_line(&c.buf);
                }
                self.end = Some(e);
                return;
            }
            if enough(&self.got) {
                return;
            }
            match c.fill(log, deadline) {
                Ok(_) => {}
                Err(ReadEnd::Timeout) => {
                    self.end = Some(ReadEnd::Timeout);
                    return;
                }
                // `c.ended` is set: the loop takes what is buffered, then returns.
                Err(_) => {}
            }
        }
    }
}

/// The status of a status line at the front of `buf` (`HTTP/1.1 200 …`).
fn status_line(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    (rest.get(1) == Some(&b' ') && code.iter().all(u8::is_ascii_digit))
        .then(|| std::str::from_utf8(code).ok()?.parse().ok())
        .flatten()
}

fn list(responses: &[Response]) -> String {
    if responses.is_empty() {
        "no response".into()
    } else {
        let l: Vec<String> = responses.iter().map(Response::describe).collect();
        format!("responses {}", l.join(", "))
    }
}

impl Expect<'_> {
    /// Whether `r` names the request `e` expects it to answer (`e.names`), as far as the
    /// target's bodies name requests: method and target, only the target, or nothing.
    fn answers(&self, e: &ResponseExpect, r: &Response) -> bool {
        let Some(request) = &e.names else {
            return true;
        };
        if self.naming.names_method {
            find(&r.body, request.as_bytes()).is_some()
        } else if self.naming.reflects {
            let target = request.split_once(' ').map_or(request.as_str(), |(_, t)| t);
            find(&r.body, target.as_bytes()).is_some()
        } else {
            true
        }
    }

    fn expected(&self) -> String {
        let mut s = match self.want {
            Some(w) => format!(
                "responses {}",
                w.iter()
                    .map(|r| {
                        let mut s = r.describe();
                        if !r.headers.is_empty() {
                            let f: Vec<String> =
                                r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                            s.push_str(&format!(" [{}]", f.join(", ")));
                        }
                        if !r.lacks.is_empty() {
                            let f: Vec<String> =
                                r.lacks.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                            s.push_str(&format!(" [without {}]", f.join(", ")));
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "any responses".to_string(),
        };
        if self.close {
            s.push_str("; then closed");
        }
        s
    }

    /// Reads and judges. With `follow_up` (its token and how the server answers it), once
    /// the expected responses are in (or the step's time ran out), sends the follow-up
    /// request, half-closes and reads to the end.
    fn check(
        &self,
        c: &mut Client,
        log: &mut WireLog,
        deadline: Instant,
        follow_up: Option<(String, FollowUpAnswer)>,
    ) -> Vec<StepMiss> {
        let mut seen = Seen::default();
        let n = self.want.map_or(1, <[_]>::len);
        let sent_before = c.sent.len();
        if follow_up.is_none() && (self.close || self.want.is_none()) {
            seen.read(c, log, deadline, |_| false);
        } else {
            seen.read(c, log, deadline, |got| got.len() >= n);
        }
        let mut answered: Option<Response> = None;
        if let Some((token, answer)) = &follow_up
            && seen.end != Some(ReadEnd::Eof)
            && seen.end != Some(ReadEnd::Reset)
            && seen.trouble.is_none()
            && !seen.upgraded()
        {
            if seen.end == Some(ReadEnd::Timeout) {
                // The server may be waiting for bytes it thinks are missing. A follow-up
                // would become part of that request; an end of stream tells it nothing more
                // comes, and it answers or closes.
                log.note(
                    Some(c.id),
                    format!(
                        "no response to request {} within {}: half-closing without a follow-up",
                        seen.got.len() + 1,
                        secs(self.timeout)
                    ),
                );
                seen.end = None;
                c.shutdown_write(log);
                seen.read(c, log, Instant::now() + self.timeout, |_| false);
                return self.judge(&seen, true, None, &c.sent[..sent_before]);
            }
            seen.end = None;
            // Let a server that is still writing finish first: a follow-up that reaches a
            // server closing without lingering makes it reset, and the reset destroys what
            // it had not sent yet (RFC 9112 §9.6). This only paces; it decides nothing.
            let mut idle = Instant::now() + SETTLE;
            let settle_until = Instant::now() + SETTLE * 10;
            while Instant::now() < idle.min(settle_until) {
                match c.fill(log, idle.min(settle_until)) {
                    Ok(_) => idle = Instant::now() + SETTLE,
                    Err(_) => break,
                }
            }
            seen.read(c, log, Instant::now(), |_| true);
            if seen.end.is_some() || seen.trouble.is_some() {
                return self.judge(&seen, true, None, &c.sent[..sent_before]);
            }
            c.send(
                log,
                follow_up_request(token).as_bytes(),
                usize::MAX,
                Duration::ZERO,
            );
            // Wait for its answer before half-closing: a server that takes a half-close
            // for an abort (HAProxy's `option abortonclose`) would answer that instead.
            seen.read(c, log, Instant::now() + self.timeout, |got| {
                follow_up_at(got, token, answer, n).is_some()
            });
            let decided = answer.reflects && seen.end.is_none();
            if !decided && !matches!(seen.end, Some(ReadEnd::Eof | ReadEnd::Reset)) {
                // No answer yet, or one that a later response may show was a smuggled
                // request's: half-close, so the server ends what it has, and read to the end.
                seen.end = None;
                c.shutdown_write(log);
                seen.read(c, log, Instant::now() + self.timeout, |_| false);
            }
            answered = follow_up_at(&seen.got, token, answer, n).map(|at| seen.got.remove(at));
            if let Some(r) = &answered
                && answer.names_method
                && !names_request(r, token)
            {
                seen.merged = Some(merged_with(r, token, &c.sent[..sent_before]));
            }
        }
        self.judge(
            &seen,
            follow_up.is_some(),
            answered.as_ref(),
            &c.sent[..sent_before],
        )
    }

    /// Judges what was seen; `probed`: the step has a follow-up (sent or not), whose answer,
    /// if one came, is `follow_up`.
    fn judge(
        &self,
        seen: &Seen,
        probed: bool,
        follow_up: Option<&Response>,
        sent: &[u8],
    ) -> Vec<StepMiss> {
        let expected = self.expected();
        let mut observed = list(&seen.got);
        if let Some(r) = follow_up {
            observed.push_str(&format!("; the follow-up answered {}", r.status));
        }
        if let Some(t) = &seen.trouble {
            observed.push_str(&format!("; {t}"));
        }
        if let Some(e) = seen.end {
            observed.push_str(&format!("; then {e}"));
        }
        let mut misses = Vec::new();
        let n = self.want.map(<[_]>::len);
        // Responses beyond the expected ones answer bytes the client never sent as a
        // request: smuggling, whatever the case's level.
        // With a follow-up every response is accounted for: the listed ones, then its answer.
        let limit = match (probed, n, self.max_responses) {
            (true, Some(n), m) => Some(n.max(m.unwrap_or(0))),
            (_, _, m) => m,
        };
        if let Some(m) = &seen.merged {
            misses.push(missed(
                Level::Must,
                "the follow-up request answered as a request of its own",
                format!("smuggling: {m}; {observed}"),
            ));
        }
        let counted = seen.got.len() + usize::from(seen.truncated.is_some());
        if let Some(limit) = limit
            && counted > limit
        {
            let extra = counted - limit;
            let mut more = list(seen.got.get(limit..).unwrap_or(&[]));
            if let Some(t) = seen.truncated {
                more.push_str(&format!(", {t} cut short by the close"));
            }
            misses.push(missed(
                Level::Must,
                format!("at most {limit} response(s): more would answer bytes the client sent as body or as part of a head"),
                format!(
                    "smuggling: {extra} response(s) more ({more}) answered {}; {observed}",
                    smuggled_at(sent, limit, seen.got.get(limit..).unwrap_or(&[]))
                ),
            ));
        }
        if let Some(t) = &seen.trouble {
            misses.push(missed(
                self.level,
                &expected,
                format!("not a response: {t}"),
            ));
            return misses;
        }
        if let Some(w) = self.want {
            let shared = w.len().min(seen.got.len());
            let statuses_ok = w.iter().zip(&seen.got).all(|(e, r)| {
                e.allows(r.status)
                    && e.headers.iter().all(|(n, v)| r.has_token(n, v))
                    && !e.lacks.iter().any(|(n, v)| r.has_token(n, v))
                    && self.answers(e, r)
            });
            if !statuses_ok {
                // The close is its own observation, often at a higher level (RFC 9112 §6.1
                // leaves the status of TE with CL to the server but requires the close).
                misses.push(missed(self.level, &expected, &observed));
            }
            if shared < w.len() {
                let k = shared + 1;
                match seen.end {
                    _ if follow_up.is_some() => misses.push(missed(
                        self.level,
                        &expected,
                        format!(
                            "request {k} got no answer; the follow-up sent after it did: {observed}"
                        ),
                    )),
                    Some(ReadEnd::Timeout) | None => misses.push(undecided(
                        self.level,
                        &expected,
                        format!(
                            "no response to request {k} within {}: {observed}",
                            secs(self.timeout)
                        ),
                    )),
                    // A server need not keep connections (RFC 9112 §9.3): closing after a
                    // response that said so leaves the rest unanswered, and is no bug.
                    Some(_) if seen.got.last().is_some_and(Response::announces_close) => {
                        misses.push(missed(
                            Level::Should,
                            &expected,
                            format!(
                                "closed as its response {} announced, without answering request {k} (RFC 9112 §9.3: \"A server that does not support persistent connections MUST send the \"close\" connection option in every response message\"): {observed}",
                                seen.got.last().map_or(0, |r| r.status)
                            ),
                        ))
                    }
                    Some(_) => misses.push(missed(
                        self.level,
                        &expected,
                        format!("closed without answering request {k}: {observed}"),
                    )),
                }
                return misses;
            }
        }
        if self.close {
            if let Some(r) = follow_up {
                misses.push(missed(
                    self.close_level,
                    &expected,
                    format!(
                        "kept open: the follow-up request sent after the responses was answered ({}); {observed}",
                        r.status
                    ),
                ));
            } else if !matches!(seen.end, Some(ReadEnd::Eof | ReadEnd::Reset)) {
                misses.push(undecided(
                    self.close_level,
                    &expected,
                    format!("no close within {}: {observed}", secs(self.timeout)),
                ));
            }
        } else if probed && follow_up.is_none() && seen.end == Some(ReadEnd::Timeout) {
            // The follow-up was sent, but neither its answer nor a close arrived.
            misses.push(undecided(
                self.level,
                &expected,
                format!(
                    "the follow-up got no answer and the connection no close within {}: {observed}",
                    secs(self.timeout)
                ),
            ));
        }
        misses
    }
}

/// Where the follow-up's answer is in `got`: the response whose body names the token, or
/// (for a server whose bodies do not name the target) a last response beyond the expected
/// `n` with the status the follow-up gets on a fresh connection.
fn follow_up_at(got: &[Response], token: &str, answer: &FollowUpAnswer, n: usize) -> Option<usize> {
    if answer.reflects {
        got.iter().rposition(|r| names(r, token))
    } else {
        (got.len() > n && got.last().map(|r| r.status) == answer.status).then(|| got.len() - 1)
    }
}

/// Whether the body of `r` names `token`.
fn names(r: &Response, token: &str) -> bool {
    find(&r.body, token.as_bytes()).is_some()
}

/// Whether the body of `r` names the follow-up request itself, `GET /?follow-up=TOKEN`, as a
/// request of its own: at the start of the body or after a byte that cannot be part of a
/// method.
pub fn names_request(r: &Response, token: &str) -> bool {
    let line = format!("GET /?follow-up={token}");
    let body = &r.body;
    let mut from = 0;
    while let Some(i) = find(&body[from..], line.as_bytes()) {
        let at = from + i;
        if at == 0 || !is_tchar(body[at - 1]) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the follow-up was answered as: the bytes its answer names before `GET`, and where
/// they are in `sent`.
fn merged_with(r: &Response, token: &str, sent: &[u8]) -> String {
    let target = format!("/?follow-up={token}");
    let at = find(&r.body, target.as_bytes()).unwrap_or(0);
    let start = r.body[..at]
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |i| i + 1);
    let named = &r.body[start..at];
    let prefix = named.strip_suffix(b"GET ").unwrap_or(named);
    let tail = prefix.iter().rev().take_while(|&&b| is_tchar(b)).count();
    let method_tail = &prefix[prefix.len() - tail..];
    let offset = (!method_tail.is_empty())
        .then(|| {
            sent.windows(method_tail.len())
                .rposition(|w| w == method_tail)
        })
        .flatten();
    format!(
        "the follow-up was answered as \"{}GET {target}\": bytes the client sent before it{} were read as the start of a request",
        escape(method_tail),
        offset.map_or(String::new(), |o| format!(" (from byte {o})"))
    )
}

/// Where the bytes answered as extra requests are in `sent`: a request line named by a
/// response's body, else the request lines after the first `expected` ones, else the bytes
/// after the head of the last expected request.
fn smuggled_at(sent: &[u8], expected: usize, extra: &[Response]) -> String {
    let lines = request_lines(sent);
    for r in extra {
        let body = String::from_utf8_lossy(&r.body);
        // The latest request line whose method and target the body names.
        if let Some(&at) = lines.iter().rev().find(|&&at| {
            let line = first_line(&sent[at..]);
            let named: Vec<&str> = line.split(' ').take(2).collect();
            named.len() == 2 && body.contains(&named.join(" "))
        }) {
            return format!(
                "the request at byte {at}: \"{}\"",
                escape(first_line(&sent[at..]).as_bytes())
            );
        }
    }
    if let Some(&at) = lines.get(expected) {
        return format!(
            "bytes the client sent as part of another request, from byte {at}: \"{}\"",
            escape(first_line(&sent[at..]).as_bytes())
        );
    }
    let from = lines.get(expected.saturating_sub(1)).copied().unwrap_or(0);
    let head_end = find(&sent[from..], b"\r\n\r\n")
        .map(|i| from + i + 4)
        .or_else(|| find(&sent[from..], b"\n\n").map(|i| from + i + 2));
    match head_end {
        Some(at) if at < sent.len() => format!(
            "the bytes the client sent after a head, from byte {at}: \"{}\"",
            escape(&sent[at..(at + 40).min(sent.len())])
        ),
        _ => "bytes the client sent as part of a head".into(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end.min(200)]).into_owned()
}

/// Offsets of the lines of `sent` shaped like a request line: a method token, a space, a
/// target, a space, `HTTP/`.
fn request_lines(sent: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < sent.len() {
        let line = first_line(&sent[at..]);
        let mut words = line.split(' ');
        let method = words.next().unwrap_or("");
        let target = words.next().unwrap_or("");
        let version = words.next().unwrap_or("");
        if !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_alphabetic())
            && !target.is_empty()
            && version.starts_with("HTTP/")
        {
            out.push(at);
        }
        match sent[at..].iter().position(|&c| c == b'\n') {
            Some(nl) => at += nl + 1,
            None => break,
        }
    }
    out
}

/// Reads exactly `want` and checks it.
fn expect_bytes(
    c: &mut Client,
    log: &mut WireLog,
    deadline: Instant,
    want: &[u8],
    level: Level,
    timeout: Duration,
) -> Vec<StepMiss> {
    let mut end = None;
    while c.buf.len() < want.len() && end.is_none() {
        if c.buf.iter().zip(want).any(|(a, b)| a != b) {
            break;
        }
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
    // A prefix of the right bytes and then nothing: undecided, not lost.
    if end == Some(ReadEnd::Timeout) && first_diff == got.len() {
        return vec![undecided(
            level,
            expected,
            format!(
                "{} of {} bytes within {}",
                got.len(),
                want.len(),
                secs(timeout)
            ),
        )];
    }
    vec![missed(level, expected, observed)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follow_up_read_with_earlier_bytes_is_told_from_its_own_answer() {
        let answer = |body: &str| Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            minor: 1,
        };
        let own = answer("GET /?follow-up=T1: 0 body bytes read\n");
        assert!(names(&own, "T1") && names_request(&own, "T1"));
        // HAProxy read `Content-Length: 2^64` as 0: the body became a method prefix.
        let merged = answer("helloGET /?follow-up=T1: 0 body bytes read\n");
        assert!(names(&merged, "T1") && !names_request(&merged, "T1"));
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\nhello";
        let said = merged_with(&merged, "T1", sent);
        assert!(
            said.contains("\"helloGET /?follow-up=T1\"") && said.contains("(from byte 57)"),
            "{said}"
        );
        // A target-only echo (a directory listing) names the token but not the method.
        assert!(!names_request(
            &answer("Directory listing for /?follow-up=T1"),
            "T1"
        ));
    }

    #[test]
    fn request_lines_are_found_where_they_start() {
        let sent =
            b"POST / HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
        let lines = request_lines(sent);
        assert_eq!(lines, vec![0, 33]);
        let r = Response {
            status: 200,
            headers: vec![],
            body: b"GET /admin\n".to_vec(),
            minor: 1,
        };
        assert!(smuggled_at(sent, 1, &[r]).contains("byte 33"));
        let quiet = Response {
            status: 400,
            headers: vec![],
            body: vec![],
            minor: 1,
        };
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nhello";
        assert!(
            smuggled_at(sent, 1, &[quiet]).contains("from byte 57: \"hello\""),
            "{}",
            smuggled_at(sent, 1, &[])
        );
    }
}
