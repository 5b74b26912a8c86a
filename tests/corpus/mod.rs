#![allow(dead_code)]
//! The hostile-input corpus (`conform/hostile/*.http`): its cases as the tests see them, and the
//! checker that runs one case against a connection and compares what came back with the case's verdict.
//!
//! The checker reads responses with a deadline and tells a timeout from an end of stream, so a
//! server that keeps a connection open when it must close it (or the reverse) is reported,
//! never mistaken for the right outcome.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use hijack_conform::Level;
use hijack_conform::hostile;

use hijack_testkit::wire;

/// One case of the corpus.
#[derive(Clone, Debug)]
pub struct Case {
    /// The file name without `.http`.
    pub name: String,
    /// What the reference server must do.
    pub expect: Verdict,
    /// What the case is and which rule decides it.
    pub note: String,
    /// The rule it checks (`conform/src/rules.rs`), which sets its levels.
    pub rule: &'static str,
    /// The level of the status checks, from the rule: `SHOULD` where the RFC lets a server
    /// choose (the reference takes the strict side).
    pub level: Level,
    /// The level of the close check, from the rule.
    pub close_level: Level,
    /// The request bytes, exactly as sent.
    pub raw: Vec<u8>,
}

/// The statuses of the responses, in order, and whether the connection closes after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The statuses of the responses, in order.
    pub statuses: Vec<u16>,
    /// The connection closes after them.
    pub close: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self.statuses.iter().map(u16::to_string).collect();
        if self.close {
            words.push("close".into());
        }
        if words.is_empty() {
            words.push("(no response, kept open)".into());
        }
        f.write_str(&words.join(" "))
    }
}

impl Verdict {
    /// Parses the value of an `expect:` line (statuses, then `close` or nothing) with the
    /// corpus parser of `hijack_conform::hostile`.
    pub fn parse(value: &str) -> Result<Verdict, String> {
        let file = format!("expect: {value}\nrule: valid-request\nnote: -\n---\n-");
        let case = hostile::parse(file.as_bytes())?;
        Ok(Verdict {
            statuses: case.statuses,
            close: case.close,
        })
    }
}

/// Parses one corpus file with the corpus parser of `hijack_conform::hostile` (the one the
/// conformance tool uses); any deviation from the format is an error naming the file.
pub fn parse_case(name: &str, bytes: &[u8]) -> Result<Case, String> {
    let parsed = hostile::parse(bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok(Case {
        name: name.to_string(),
        expect: Verdict {
            statuses: parsed.statuses,
            close: parsed.close,
        },
        rule: parsed.rule.id,
        level: parsed.rule.status_level(),
        close_level: parsed.rule.close_level(),
        note: parsed.note,
        raw: parsed.request,
    })
}

/// Every case of the corpus compiled into `hijack-conform` (`conform/hostile/*.http`), sorted
/// by name; fails loudly on a malformed one or a name that is not kebab-case.
pub fn load() -> Vec<Case> {
    hostile::builtin_files()
        .into_iter()
        .map(|(name, bytes)| {
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}.http: a case name is kebab-case"
            );
            parse_case(name, bytes).unwrap_or_else(|e| panic!("malformed corpus file {e}"))
        })
        .collect()
}

/// What one read of the client's side of a connection gave.
pub enum Got {
    /// This many bytes.
    Bytes(usize),
    /// The end of stream (or a reset).
    End,
    /// Nothing before the deadline.
    TimedOut,
}

/// The client's side of a connection, as the checker drives it.
pub trait Client {
    /// Sends bytes; an error means the server closed or reset the connection.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads what is there, waiting at most until `deadline`. A reset counts as the end.
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Got;
}

/// A request every server answers with 200 and then closes: sent after the expected
/// responses to tell a connection kept open from one closed.
pub const PROBE: &[u8] =
    b"GET /keep-alive-probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";

/// How a response read ended.
enum Read {
    Status(u16),
    End,
    TimedOut,
    Malformed(String),
}

/// Reads one response (head, and body by its framing, with [`wire::read_response`]) from
/// `pending` + the client; bytes read past it stay in `pending`.
fn read_response(client: &mut dyn Client, pending: &mut Vec<u8>, wait: Duration) -> Read {
    let deadline = Instant::now() + wait;
    let mut chunk = [0u8; 16 << 10];
    let mut fill = |pending: &mut Vec<u8>| -> Option<Read> {
        match client.recv(&mut chunk, deadline) {
            Got::Bytes(n) => {
                pending.extend_from_slice(&chunk[..n]);
                None
            }
            Got::End => Some(Read::End),
            Got::TimedOut => Some(Read::TimedOut),
        }
    };
    loop {
        let r = match wire::parse_response(pending, false) {
            Err(e) => return Read::Malformed(e),
            Ok(Some(r)) => r,
            Ok(None) => match fill(pending) {
                None => continue,
                Some(Read::End) if !pending.is_empty() => {
                    return Read::Malformed(format!(
                        "stream ended inside a response head: {}",
                        wire::show(pending)
                    ));
                }
                Some(end) => return end,
            },
        };
        if r.framing == wire::Framing::CloseDelimited {
            // Delimited by the close.
            loop {
                pending.clear();
                match fill(pending) {
                    None => {}
                    Some(Read::End) => return Read::Status(r.status),
                    Some(other) => return other,
                }
            }
        }
        if r.complete {
            pending.drain(..r.len);
            return Read::Status(r.status);
        }
        if fill(pending).is_some() {
            return Read::Malformed("stream ended inside a response body".into());
        }
    }
}

/// What the server did with one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The statuses of the responses, in order.
    pub statuses: Vec<u16>,
    /// The connection ended after them (end of stream or reset).
    pub closed: bool,
    /// Why the run could not read a well-formed outcome, if it could not.
    pub trouble: Option<String>,
}

impl Outcome {
    /// The outcome in the words of an `expect:` line.
    pub fn as_verdict(&self) -> Verdict {
        Verdict {
            statuses: self.statuses.clone(),
            close: self.closed,
        }
    }
}

/// Reads the responses to a case whose bytes were sent, and tells whether the connection
/// stayed open: after the expected number of responses, a case that must close has to end
/// the stream, and one that must stay open has to answer the probe. `wait` bounds every
/// read, so a wrong server costs at most a few `wait`s, never a hang.
pub fn observe(client: &mut dyn Client, expect: &Verdict, wait: Duration) -> Outcome {
    let mut outcome = Outcome {
        statuses: Vec::new(),
        closed: false,
        trouble: None,
    };
    let mut pending = Vec::new();
    // At most a few responses past the expected ones, to show what a wrong server sent.
    let most = expect.statuses.len() + 4;
    while outcome.statuses.len() < most {
        if outcome.statuses.len() == expect.statuses.len() && !expect.close {
            break;
        }
        match read_response(client, &mut pending, wait) {
            Read::Status(code) => outcome.statuses.push(code),
            Read::End => {
                outcome.closed = true;
                return outcome;
            }
            // Nothing more within `wait`, and the stream did not end: kept open.
            Read::TimedOut => return outcome,
            Read::Malformed(why) => {
                outcome.trouble = Some(why);
                return outcome;
            }
        }
    }
    if outcome.statuses.len() == most {
        return outcome;
    }
    // The expected responses came, and the connection must stay open: probe it.
    if client.send(PROBE).is_err() {
        outcome.closed = true;
        return outcome;
    }
    match read_response(client, &mut pending, wait) {
        Read::Status(200) => {}
        Read::Status(code) => {
            // The probe was answered with something else: the connection was not ready for
            // a new request, e.g. a body was still being read.
            outcome.trouble = Some(format!("the keep-alive probe got {code}"));
        }
        Read::End => outcome.closed = true,
        Read::TimedOut => outcome.trouble = Some("the keep-alive probe got no answer".into()),
        Read::Malformed(why) => outcome.trouble = Some(format!("probe: {why}")),
    }
    outcome
}

/// Compares an outcome with the case's verdict; the error says what differed.
pub fn check(case: &Case, outcome: &Outcome) -> Result<(), String> {
    let got = outcome.as_verdict();
    if got == case.expect && outcome.trouble.is_none() {
        return Ok(());
    }
    let mut msg = format!("{}: expected `{}`, got `{}`", case.name, case.expect, got);
    if !got.close && got.statuses.len() != case.expect.statuses.len() {
        msg.push_str(" (then nothing within the deadline, stream still open)");
    }
    if let Some(trouble) = &outcome.trouble {
        msg.push_str(&format!(" ({trouble})"));
    }
    msg.push_str(&format!("\n    note: {}", case.note));
    Err(msg)
}
