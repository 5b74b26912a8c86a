//! Operation sequences run on the core and on the model ([`crate::model`]), compared step by
//! step: the driver of the `lifecycle` fuzz target and of the `lifecycle_follows_the_model`
//! property (tests/prop_lifecycle.rs), which generate the sequences, one from fuzz input bytes
//! ([`ops`]), the other with proptest's state machine over the same model ([`plan`]).
//!
//! A sequence has at most [`MAX_OPS`] operations: the client
//! sends a generated request (or a part of its body) or raw bytes, half-closes or resets; the
//! handler of the running request reads its body, sets a status, writes, flushes, subscribes
//! to close-notify, hijacks (with or without a 101 head), returns or panics. The core serves
//! one connection on the in-memory pipe on a thread of its own; its handler takes each
//! handler operation from the driver and answers with the result. After every operation the
//! driver waits (bounded) until the core reaches the state the model predicts and compares:
//! the handler calls that started, the connection's end, each operation's result, the bytes
//! still unread in the pipe, and the request's latches. At the end, the client's wire is read
//! against the model's responses, byte for byte, the hijacker's bytes against the client's,
//! and nothing may stay alive.

use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use hijack::pipe::{PipeEnd, pipe};
use hijack::state::CONN_TRANSITIONS;
use hijack::{
    Cancellation, CloseNotify, ConnProbe, ConnState, Fired, Handover, Request, ResponseWriter,
    ServerConfig,
};
use http::StatusCode;

use crate::model::{Blocked, Event, Framing, HeadInfo, Model, ReadResult, WireItem};
use crate::served::{DELIBERATE_PANIC, WAIT_LIMIT, check_parts, config, pattern, preset_deadlines};
use crate::wire::{self, CONTINUE, is_rejection, read_head, read_response, show};
use crate::{alloc, poll_until};

/// Waits (at most [`WAIT_LIMIT`]) until `cond` holds; returns whether it held.
fn wait_until(cond: impl FnMut() -> bool) -> bool {
    poll_until(WAIT_LIMIT, cond)
}

/// At most this many operations per input.
pub const MAX_OPS: usize = 48;

/// Statuses the handler's `Status` chooses from.
const STATUSES: [u16; 6] = [200, 201, 204, 304, 404, 500];

/// One step of a sequence.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// The client sends a generated request.
    Request(RequestSpec),
    /// The client sends raw bytes (at most 64): more body, pipelined or post-upgrade bytes.
    Raw(Vec<u8>),
    /// The client half-closes.
    HalfClose,
    /// The client resets the connection.
    Reset,
    /// The handler reads at most `1 + n % 4096` body bytes.
    ReadBody(u16),
    /// The handler sets a status (`n` indexes 200 201 204 304 404 500).
    Status(u8),
    /// The handler (or, after a hijack, the hijacker) writes `n % 3001` bytes.
    Write(u16),
    /// The handler (or hijacker) flushes.
    Flush,
    /// The handler subscribes to close-notify.
    Subscribe,
    /// The handler hijacks, writing a 101 head first with `upgrade`.
    Hijack {
        /// Write `101 Switching Protocols` first.
        upgrade: bool,
    },
    /// The handler returns.
    Return,
    /// The handler panics.
    Panic,
}

/// A request the client sends.
#[derive(Arbitrary, Clone, Debug)]
pub struct RequestSpec {
    /// GET, POST, HEAD or PUT (modulo 4).
    pub method: u8,
    /// An HTTP/1.0 request.
    pub http10: bool,
    /// Its body.
    pub body: BodySpec,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `Connection: close` (HTTP/1.1) or no `keep-alive` (HTTP/1.0).
    pub close: bool,
    /// `Connection: upgrade` and `Upgrade: echo`.
    pub upgrade: bool,
    /// How much of the body's wire bytes go out with the head (255: all of them).
    pub sent: u8,
}

/// A generated request's body.
#[derive(Arbitrary, Clone, Debug)]
pub enum BodySpec {
    /// No body.
    None,
    /// `Content-Length: len % 5000`, seeded bytes.
    Length(u16),
    /// `len % 5000` seeded bytes, chunked in pieces of `1 + chunk % 200`.
    Chunked {
        /// Data bytes.
        len: u16,
        /// Piece size.
        chunk: u8,
    },
}

impl RequestSpec {
    /// The request's bytes (what `sent` says of its body), its target `/n`.
    pub fn bytes(&self, n: usize) -> Vec<u8> {
        let method = ["GET", "POST", "HEAD", "PUT"][self.method as usize % 4];
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut head = format!("{method} /{n} {version}\r\nHost: fuzz\r\n");
        let mut connection = Vec::new();
        if self.close && !self.http10 {
            connection.push("close");
        }
        if !self.close && self.http10 {
            connection.push("keep-alive");
        }
        if self.upgrade {
            connection.push("upgrade");
            head.push_str("Upgrade: echo\r\n");
        }
        if !connection.is_empty() {
            head.push_str(&format!("Connection: {}\r\n", connection.join(", ")));
        }
        if self.expect_continue {
            head.push_str("Expect: 100-continue\r\n");
        }
        let mut body = Vec::new();
        match self.body {
            BodySpec::None => {}
            BodySpec::Length(len) => {
                let len = len as usize % 5000;
                head.push_str(&format!("Content-Length: {len}\r\n"));
                body = pattern(n as u64, len);
            }
            BodySpec::Chunked { len, chunk } => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                let data = pattern(n as u64, len as usize % 5000);
                for piece in data.chunks(chunk as usize % 200 + 1) {
                    body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    body.extend_from_slice(piece);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(b"0\r\n\r\n");
            }
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        let keep = if self.sent == 255 {
            body.len()
        } else {
            body.len() * self.sent as usize / 255
        };
        out.extend_from_slice(&body[..keep]);
        out
    }
}

/// Decodes an input into its operations.
pub fn ops(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(Op::Raw(mut bytes)) => {
                bytes.truncate(64);
                ops.push(Op::Raw(bytes));
            }
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// What the driver tells the handler.
#[derive(Debug)]
enum Cmd {
    ReadBody(usize),
    Status(u16),
    Write(Vec<u8>),
    Flush,
    Subscribe,
    /// Upgrade (write 101 first); whether the hijack commits a head (a status is set).
    Hijack(bool, bool),
    Return,
    Panic,
}

/// What the serving thread tells the driver, in order.
enum Report {
    Started {
        target: String,
        probe: ConnProbe,
        cancel: Cancellation,
    },
    Read(Result<Vec<u8>, ()>),
    Done(bool),
    Subscribed(CloseNotify),
    /// The handed-over bytes and the background reads the pipe saw started.
    Hijacked(Result<(Vec<u8>, u64), ()>),
    Leaving(Option<Handover<PipeEnd>>),
    ServerDone,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Started { target, .. } => write!(f, "Started({target})"),
            Report::Read(r) => write!(f, "Read({:?})", r.as_ref().map(|b| show(b))),
            Report::Done(ok) => write!(f, "Done({ok})"),
            Report::Subscribed(_) => write!(f, "Subscribed"),
            Report::Hijacked(r) => {
                write!(f, "Hijacked({:?})", r.as_ref().map(|(b, n)| (show(b), n)))
            }
            Report::Leaving(p) => write!(f, "Leaving(parts: {})", p.is_some()),
            Report::ServerDone => write!(f, "ServerDone"),
        }
    }
}

fn handle(
    cmds: &Mutex<Receiver<Cmd>>,
    reports: &Sender<Report>,
    mut req: Request<'_>,
    w: ResponseWriter<'_, PipeEnd>,
) {
    let send = |r: Report| {
        let _ = reports.send(r);
    };
    send(Report::Started {
        target: req.target().to_owned(),
        probe: w.connection_probe(),
        cancel: req.cancellation(),
    });
    let mut writer = Some(w);
    let mut parts: Option<Handover<PipeEnd>> = None;
    let cmds = cmds.lock().unwrap();
    loop {
        let Ok(cmd) = recv_spinning(&cmds, None) else {
            return;
        };
        match cmd {
            Cmd::ReadBody(n) => {
                let mut buf = vec![0u8; n];
                send(Report::Read(
                    req.body()
                        .read(&mut buf)
                        .map(|k| buf[..k].to_vec())
                        .map_err(drop),
                ));
            }
            Cmd::Status(code) => {
                if let Some(w) = &mut writer {
                    w.write_header(StatusCode::from_u16(code).unwrap());
                }
                send(Report::Done(true));
            }
            Cmd::Write(data) => {
                let ok = match (&mut writer, &mut parts) {
                    (Some(w), _) => w.write_body(&data).is_ok(),
                    (None, Some(p)) => std::io::Write::write_all(p, &data).is_ok(),
                    (None, None) => false,
                };
                send(Report::Done(ok));
            }
            Cmd::Flush => {
                let ok = match (&mut writer, &mut parts) {
                    (Some(w), _) => w.flush().is_ok(),
                    (None, Some(p)) => std::io::Write::flush(p).is_ok(),
                    (None, None) => false,
                };
                send(Report::Done(ok));
            }
            Cmd::Subscribe => {
                if let Some(w) = &writer {
                    send(Report::Subscribed(w.close_notify()));
                }
            }
            Cmd::Hijack(upgrade, committed) => {
                let Some(mut w) = writer.take() else { continue };
                if upgrade {
                    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                }
                let (hijacked, allocated, _) = alloc::allocations_of(|| w.hijack());
                match hijacked {
                    Ok(p) => {
                        check_parts(&p, &allocated, committed);
                        let started = p.stream.background_reads_started();
                        send(Report::Hijacked(Ok((p.buffered.to_vec(), started))));
                        parts = Some(p);
                    }
                    Err(_) => send(Report::Hijacked(Err(()))),
                }
            }
            Cmd::Return => {
                send(Report::Leaving(parts.take()));
                return;
            }
            Cmd::Panic => {
                send(Report::Leaving(parts.take()));
                std::panic::panic_any(DELIBERATE_PANIC);
            }
        }
    }
}

/// What one operation does, as the model decides it: what the driver does to the core and
/// what the core must answer.
#[derive(Debug)]
pub enum Plan {
    /// Nothing: the operation does not apply now (no handler runs, or it would block).
    Skip(&'static str),
    /// The client sends `bytes`; its write succeeds if `ok`.
    Send {
        /// The bytes.
        bytes: Vec<u8>,
        /// Whether the write succeeds.
        ok: bool,
    },
    /// The client half-closes.
    HalfClose,
    /// The client resets.
    Reset,
    /// The handler reads at most `n` body bytes and gets `expected`.
    Read {
        /// The most bytes asked for.
        n: usize,
        /// What the read returns.
        expected: ReadResult,
    },
    /// The handler sets this status.
    Status(u16),
    /// The handler writes `data`; the write succeeds if `expected`.
    Write {
        /// The bytes.
        data: Vec<u8>,
        /// Whether it succeeds.
        expected: bool,
    },
    /// The handler flushes; it succeeds if `expected`.
    Flush {
        /// Whether it succeeds.
        expected: bool,
    },
    /// The handler subscribes to close-notify.
    Subscribe,
    /// The handler hijacks: the handed-over bytes and the background reads started by then,
    /// or a failure.
    Hijack {
        /// A 101 head first.
        upgrade: bool,
        /// The hijack commits a head (a status was set or `upgrade`).
        committed: bool,
        /// The handed-over bytes and the background reads started, or a failure.
        expected: Result<(Vec<u8>, u64), ()>,
    },
    /// The handler returns or panics.
    Leave {
        /// It panics.
        panicked: bool,
    },
}

/// Advances `model` by `op`, the `seq`th operation of its sequence, and says what the core
/// must do; `events` receives what the serving thread reports meanwhile. The one place that
/// turns an operation into the model's step: the driver executes its plans, the property's
/// state machine generates the next operation from the model it leaves.
pub fn plan(model: &mut Model, op: &Op, seq: usize, events: &mut Vec<Event>) -> Plan {
    match op {
        Op::Request(spec) => {
            let bytes = spec.bytes(model.requests + seq);
            let ok = model.client_send(&bytes, events);
            Plan::Send { bytes, ok }
        }
        Op::Raw(bytes) => {
            let ok = model.client_send(bytes, events);
            Plan::Send {
                bytes: bytes.clone(),
                ok,
            }
        }
        Op::HalfClose => {
            model.client_half_close(events);
            Plan::HalfClose
        }
        Op::Reset => {
            model.client_reset(events);
            Plan::Reset
        }
        Op::ReadBody(n) if model.handler_runs() => {
            let n = 1 + *n as usize % 4096;
            match model.read_body(n) {
                Ok(expected) => Plan::Read { n, expected },
                Err(Blocked) => Plan::Skip("would block"),
            }
        }
        Op::Status(n) if model.writer_present() => {
            let code = STATUSES[*n as usize % STATUSES.len()];
            model.status(code);
            Plan::Status(code)
        }
        Op::Write(n) if model.writer_present() || model.holds_parts() => {
            let data = pattern(seq as u64, *n as usize % 3001);
            let expected = model.write(&data);
            Plan::Write { data, expected }
        }
        Op::Flush if model.writer_present() || model.holds_parts() => Plan::Flush {
            expected: model.flush(),
        },
        Op::Subscribe if model.writer_present() => {
            model.subscribe();
            Plan::Subscribe
        }
        Op::Hijack { upgrade } if model.writer_present() => {
            let committed = *upgrade || model.status_set();
            match model.hijack(*upgrade) {
                Ok(r) => Plan::Hijack {
                    upgrade: *upgrade,
                    committed,
                    expected: r.map(|bytes| (bytes, model.background_reads)),
                },
                Err(Blocked) => Plan::Skip("would block"),
            }
        }
        Op::Return | Op::Panic if model.handler_runs() => {
            let panicked = matches!(op, Op::Panic);
            model.handler_return(panicked, events);
            Plan::Leave { panicked }
        }
        _ => Plan::Skip("no handler runs"),
    }
}

/// The driver's side of one run: the client's end of the pipe, the serving thread, the
/// model, and what the core handed out (probes, handles, parts).
pub struct Driver {
    client: PipeEnd,
    /// Says once the serving job is over whether it ended without a panic.
    serving: Option<Receiver<bool>>,
    /// Operations planned so far (seeds the generated bytes).
    seq: usize,
    cmds: Sender<Cmd>,
    reports: Receiver<Report>,
    model: Model,
    probes: Vec<ConnProbe>,
    cancel: Option<Cancellation>,
    notify: Option<CloseNotify>,
    parts: Option<Handover<PipeEnd>>,
    /// What the state hook reported so far.
    states: Arc<Mutex<Vec<ConnState>>>,
    /// Operations so far, for failure messages.
    log: Vec<String>,
}

impl Driver {
    fn fail(&self, what: String) -> ! {
        panic!(
            "lifecycle: {what}\noperations:\n  {}\nmodel: {:?}",
            self.log.join("\n  "),
            self.model
        );
    }

    fn recv(&mut self, waiting_for: &str) -> Report {
        match recv_spinning(&self.reports, Some(WAIT_LIMIT)) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => self.fail(format!(
                "the core hangs: no report while waiting for {waiting_for}"
            )),
            Err(RecvTimeoutError::Disconnected) => self.fail(format!(
                "the serving thread is gone while waiting for {waiting_for}"
            )),
        }
    }

    /// Waits for the events the model predicts, then for the pipe and latches to settle.
    fn settle(&mut self, events: Vec<Event>) {
        for event in events {
            let report = self.recv(&format!("{event:?}"));
            match (&event, report) {
                (
                    Event::Started(target),
                    Report::Started {
                        target: got,
                        probe,
                        cancel,
                    },
                ) => {
                    //= SPEC.md#serving-loop
                    //= type=test
                    //# The server MUST answer pipelined requests one at a time, in the order they arrived,
                    //# and MUST NOT read the next request head before the current response is finished.
                    if *target != got {
                        self.fail(format!(
                            "the handler was called for {got}, the model expects {target}"
                        ));
                    }
                    self.probes.push(probe);
                    self.cancel = Some(cancel);
                    self.notify = None;
                }
                (Event::ServerDone, Report::ServerDone) => {}
                (_, other) => self.fail(format!(
                    "the core reported {other:?}, the model expects {event:?}"
                )),
            }
        }
        // The serving thread is where the model says once its states are the model's (the
        // hook reports each change right after it happened).
        let (states, model_states) = (self.states.clone(), self.model.states.clone());
        if !wait_until(|| *states.lock().unwrap() == model_states) {
            self.fail(format!(
                "the state hook reported {:?}, the model expects {model_states:?}",
                states.lock().unwrap()
            ));
        }
        let expected = self.model.pipe_len();
        let client = &self.client;
        if !wait_until(|| client.peer_unread_len() == expected) {
            self.fail(format!(
                "{} bytes unread in the pipe, the model expects {expected}",
                client.peer_unread_len()
            ));
        }
        //= SPEC.md#background-read
        //= type=test
        //# A background read MUST NOT start while no handler runs.
        // (The pipe counts the background reads its server end started.)
        let expected = self.model.background_reads;
        if !wait_until(|| client.background_reads_started() >= expected)
            || client.background_reads_started() != expected
        {
            self.fail(format!(
                "{} background reads started, the model expects {expected}",
                client.background_reads_started()
            ));
        }
        if let Ok(r) = self.reports.try_recv() {
            self.fail(format!(
                "the core reported {r:?}, the model expects nothing"
            ));
        }
        self.check_latches();
    }

    /// The running request's latches against the model's.
    fn check_latches(&mut self) {
        let Some((cancel, notify)) = self.model.latches() else {
            return;
        };
        //= SPEC.md#close-notify
        //= type=test
        //# End of stream or an error from the background read while the handler runs MUST fire close-notify and cancel the request.
        //= SPEC.md#close-notify
        //= type=test
        //# A byte caught by the background read MUST NOT fire close-notify and MUST NOT cancel the request.
        //= SPEC.md#close-notify
        //= type=test
        //# After a hijack, the server MUST NOT fire close-notify or cancel the request because of anything that happens on the stream.
        let handle = self.cancel.clone().expect("a running request");
        self.check_latch("cancellation", &handle.fired(), cancel, || handle.fired());
        if let (Some(expected), Some(handle)) = (notify, self.notify.clone()) {
            self.check_latch("close-notify", &handle.fired(), expected, || handle.fired());
        }
    }

    fn check_latch(
        &self,
        what: &str,
        now: &Option<Fired>,
        expected: Option<Fired>,
        fired: impl Fn() -> Option<Fired>,
    ) {
        match expected {
            Some(reason) if !wait_until(|| fired().is_some()) || fired() != Some(reason) => self
                .fail(format!(
                    "the {what} is {:?}, the model expects {reason:?}",
                    fired()
                )),
            None if now.is_some() => self.fail(format!(
                "the {what} fired ({now:?}); the model expects it not to"
            )),
            Some(_) | None => {}
        }
    }

    /// After a handler returned: its latches reach the model's terminal state.
    fn check_returned(&mut self) {
        let Some((cancel, notify)) = self.model.returned_latches() else {
            return;
        };
        let handle = self
            .cancel
            .take()
            .expect("a request whose handler returned");
        //= SPEC.md#close-notify
        //= type=test
        //# When the handler returns, a close-notify or cancellation that has not fired MUST fire with HandlerDone and wake every waiter.
        //= SPEC.md#close-notify
        //= type=test
        //# A close-notify or cancellation handle MUST fire at most once and MUST keep the reason it first fired with.
        if !wait_until(|| handle.fired().is_some()) {
            self.fail("the cancellation is not terminal after the handler returned".into());
        }
        if handle.fired() != cancel {
            self.fail(format!(
                "the cancellation is {:?}, the model expects {cancel:?}",
                handle.fired()
            ));
        }
        if let (Some(expected), Some(n)) = (notify, self.notify.take())
            && (!wait_until(|| n.fired().is_some()) || n.fired() != expected)
        {
            self.fail(format!(
                "close-notify is {:?}, the model expects {expected:?}",
                n.fired()
            ));
        }
    }

    fn command(&mut self, cmd: Cmd) -> Report {
        let what = format!("{cmd:?}");
        if self.cmds.send(cmd).is_err() {
            self.fail(format!("the handler is gone: {what}"));
        }
        self.recv(&format!("the handler's answer to {what}"))
    }

    /// Runs one operation on the core and compares it with the model's plan for it.
    pub fn step(&mut self, op: &Op) {
        self.log.push(format!("{op:?}"));
        let mut events = Vec::new();
        let planned = plan(&mut self.model, op, self.seq, &mut events);
        self.seq += 1;
        match planned {
            Plan::Skip(why) => {
                self.log.push(format!("  ({why}: skipped)"));
                return;
            }
            Plan::Send {
                bytes,
                ok: expected,
            } => {
                let ok = self.client.write_all(&bytes).is_ok();
                if ok != expected {
                    self.fail(format!(
                        "the client's write {}",
                        if ok { "succeeded" } else { "failed" }
                    ));
                }
            }
            Plan::HalfClose => self.client.shutdown_write(),
            Plan::Reset => self.client.reset(),
            Plan::Read { n, expected } => {
                let got = match self.command(Cmd::ReadBody(n)) {
                    Report::Read(r) => r,
                    other => self.fail(format!("answer {other:?} to a body read")),
                };
                //= SPEC.md#hijack-handover
                //= type=test
                //# After a hijack, a read of the request body MUST fail and MUST NOT consume any byte.
                if got != expected {
                    self.fail(format!(
                        "the body read gave {:?}, the model {:?}",
                        got.as_ref().map(|b| show(b)),
                        expected.as_ref().map(|b| show(b))
                    ));
                }
            }
            Plan::Status(code) => {
                self.command(Cmd::Status(code));
            }
            Plan::Write { data, expected } => {
                let got = match self.command(Cmd::Write(data)) {
                    Report::Done(ok) => ok,
                    other => self.fail(format!("answer {other:?} to a write")),
                };
                //= SPEC.md#serving-loop
                //= type=test
                //# A response with status 1xx, 204 or 304 MUST NOT carry a body, a Content-Length or a
                //# Transfer-Encoding, and a body write for it MUST fail.
                if got != expected && self.model.results_predicted() {
                    self.fail(format!("the write gave {got}, the model {expected}"));
                }
            }
            Plan::Flush { expected } => match self.command(Cmd::Flush) {
                Report::Done(ok) if ok == expected || !self.model.results_predicted() => {}
                other => self.fail(format!("the flush gave {other:?}, the model {expected}")),
            },
            Plan::Subscribe => match self.command(Cmd::Subscribe) {
                Report::Subscribed(n) => self.notify = Some(n),
                other => self.fail(format!("answer {other:?} to a subscription")),
            },
            Plan::Hijack {
                upgrade,
                committed,
                expected,
            } => {
                let got = match self.command(Cmd::Hijack(upgrade, committed)) {
                    Report::Hijacked(r) => r,
                    other => self.fail(format!("answer {other:?} to a hijack")),
                };
                //= SPEC.md#background-read
                //= type=test
                //# A server MUST NOT have two background reads pending on one connection.
                //= SPEC.md#background-read
                //= type=test
                //# The background read MUST start only once the request body has been read to its end (or the request has none) while the handler runs.
                // (The pipe counts the background reads started: compared with the model's.)
                //= SPEC.md#close-notify
                //= type=test
                //# Subscribing to close-notify MUST NOT prevent a later hijack on the same connection.
                //= SPEC.md#hijack-handover
                //= type=test
                //# The handed-over bytes MUST be exactly the bytes the client sent after what the
                //# handler consumed that the server has read, in wire order: the read buffer, then
                //# the background byte.
                //= SPEC.md#hijack-handover
                //= type=test
                //# If the body cannot be discarded within the discard limit, or the flush fails, the hijack MUST fail and the connection MUST stay the server's, which closes it after the handler returns.
                if got != expected {
                    self.fail(format!(
                        "the hijack gave {:?} (bytes, background reads started), the model {:?}",
                        got.as_ref().map(|(b, n)| (show(b), n)),
                        expected.as_ref().map(|(b, n)| (show(b), n))
                    ));
                }
            }
            Plan::Leave { panicked } => {
                match self.command(if panicked { Cmd::Panic } else { Cmd::Return }) {
                    Report::Leaving(parts) => {
                        if parts.is_some() {
                            self.parts = parts;
                        }
                    }
                    other => self.fail(format!("answer {other:?} to the handler's return")),
                }
                // The core releases the request after the handler's last answer: wait for it
                // before the client does anything that a still-watching reader would see.
                self.check_returned();
            }
        }
        self.settle(events);
    }

    /// Ends the run: the handler returns, the client half-closes, the server finishes.
    fn finish(&mut self) {
        // Pipelined requests may still be buffered: each gets a handler that returns.
        for _ in 0..1000 {
            if self.model.finished() {
                return;
            }
            if self.model.handler_runs() {
                self.step(&Op::Return);
            } else {
                self.step(&Op::HalfClose);
            }
        }
        self.fail("the connection is not over after 1000 returns and half-closes".into());
    }
}

/// Reads the client's wire against the model's responses.
fn check_wire(model: &Model, wire: &[u8]) -> Result<(), String> {
    let mut w = 0;
    for (i, item) in model.wire.iter().enumerate() {
        let rest = &wire[w..];
        match item {
            WireItem::Continue => {
                if !rest.starts_with(CONTINUE) {
                    return Err(format!(
                        "item {i}: expected 100 Continue, got {:?}",
                        show(rest)
                    ));
                }
                w += CONTINUE.len();
            }
            WireItem::Rejection(verdict) => {
                if !is_rejection(rest, *verdict) {
                    return Err(format!(
                        "item {i}: expected the rejection {:?}, got {:?}",
                        show(&wire::rejection(*verdict)),
                        show(rest)
                    ));
                }
                w = wire.len();
            }
            WireItem::Response {
                head,
                is_head,
                body_wire,
            } => {
                let resp = read_response(rest, *is_head).map_err(|e| format!("item {i}: {e}"))?;
                check_head(i, head, &resp)?;
                if !resp.complete {
                    return Err(format!("item {i}: the response is cut short"));
                }
                if resp.body_wire != *body_wire {
                    return Err(format!(
                        "item {i}: body {:?}, the model {:?}",
                        show(&resp.body_wire),
                        show(body_wire)
                    ));
                }
                w += resp.len;
            }
            WireItem::Partial { head, body_wire } => {
                if rest.is_empty() {
                    continue;
                }
                let Some(head) = head else {
                    return Err(format!(
                        "item {i}: bytes {:?} of a response never committed",
                        show(rest)
                    ));
                };
                let resp = read_head(rest).map_err(|e| format!("item {i}: {e}"))?;
                if resp.status != head.status {
                    return Err(format!(
                        "item {i}: status {}, the model {}",
                        resp.status, head.status
                    ));
                }
                let after = &rest[resp.head_len..];
                if !body_wire.starts_with(after) {
                    return Err(format!(
                        "item {i}: {:?} is no prefix of the body {:?}",
                        show(after),
                        show(body_wire)
                    ));
                }
                w = wire.len();
            }
            WireItem::Hijacked {
                head,
                body_wire,
                hijacker,
            } => {
                let mut at = 0;
                if let Some(head) = head {
                    let resp = read_head(rest).map_err(|e| format!("item {i}: {e}"))?;
                    check_head(i, head, &resp)?;
                    at = resp.head_len;
                }
                let mut expected = body_wire.clone();
                expected.extend_from_slice(hijacker);
                //= SPEC.md#hijack-handover
                //= type=test
                //# The hijack MUST flush everything the handler wrote before it returns the parts, so that the client receives it before any byte the hijacker writes.
                if rest[at..] != expected[..] {
                    return Err(format!(
                        "item {i}: after the hijack's head the client got {:?}, expected {:?}",
                        show(&rest[at..]),
                        show(&expected)
                    ));
                }
                w = wire.len();
            }
        }
    }
    wire::expect_end(wire, w)
}

fn check_head(i: usize, head: &HeadInfo, resp: &wire::Response) -> Result<(), String> {
    let version = (head.version == http::Version::HTTP_11) as u8;
    if resp.status != head.status || resp.version != version {
        return Err(format!(
            "item {i}: HTTP/1.{} {}, the model HTTP/1.{version} {}",
            resp.version, resp.status, head.status
        ));
    }
    let framing_ok = match head.framing {
        Framing::Length(n) => resp.header("content-length") == Some(n.to_string().as_bytes()),
        Framing::Chunked => resp.header("transfer-encoding") == Some(b"chunked"),
        Framing::NoBody | Framing::CloseDelimited | Framing::Uncommitted => {
            resp.header("transfer-encoding").is_none()
        }
    };
    //= SPEC.md#serving-loop
    //= type=test
    //# Any other HTTP/1.1 response with a body and no Content-Length MUST use the chunked transfer coding and MUST end with a zero-size chunk.
    if !framing_ok {
        return Err(format!(
            "item {i}: framing fields {:?}, the model {:?}",
            resp.headers, head.framing
        ));
    }
    //= SPEC.md#serving-loop
    //= type=test
    //# The server MUST close the connection after the response when the request did not keep it alive, when the response is delimited by the close, when a write to the stream failed, when the request body failed, or when the server is shutting down.
    let connection = resp
        .header("connection")
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase());
    if connection.as_deref() != head.connection {
        return Err(format!(
            "item {i}: Connection {connection:?}, the model {:?}",
            head.connection
        ));
    }
    //= SPEC.md#serving-loop
    //= type=test
    //# The server MUST NOT add a Content-Type field to a handler's response.
    if resp.header("content-type").is_some() && resp.status != 400 {
        return Err(format!("item {i}: a Content-Type the handler did not set"));
    }
    Ok(())
}

/// Runs one sequence; returns with everything it created dropped.
///
/// # Panics
/// At the first difference between the core and the model, with the operations so far.
pub fn run_case(ops: &[Op]) {
    let mut driver = Driver::start();
    for op in ops {
        driver.step(op);
    }
    driver.end();
}

impl Driver {
    /// Starts one connection on the in-memory pipe, served on a thread of its own whose
    /// handler takes each handler operation from the driver.
    pub fn start() -> Driver {
        let (client, server) = pipe();
        preset_deadlines(&server);
        let (cmd_tx, cmd_rx) = channel::<Cmd>();
        let (report_tx, report_rx) = channel::<Report>();
        let cmd_rx = Arc::new(Mutex::new(cmd_rx));
        let states = Arc::new(Mutex::new(Vec::new()));
        let config = ServerConfig {
            on_state: Some({
                let states = states.clone();
                Arc::new(move |_, state| states.lock().unwrap().push(state))
            }),
            ..config()
        };
        let serving = on_serving_thread(move || {
            let reports = report_tx.clone();
            let handler = move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                handle(&cmd_rx, &reports, req, w)
            };
            hijack::serve_connection(server, &handler, &config, 1);
            drop(handler);
            let _ = report_tx.send(Report::ServerDone);
        });
        Driver {
            client,
            serving: Some(serving),
            seq: 0,
            cmds: cmd_tx,
            reports: report_rx,
            model: Model::default(),
            probes: Vec::new(),
            cancel: None,
            notify: None,
            parts: None,
            states,
            log: Vec::new(),
        }
    }

    /// The model as the operations so far left it.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Ends the run: the handler returns and the client half-closes until the server is done;
    /// then nothing of the connection may stay alive, a hijacker reads exactly what the
    /// client sent after the consumed bytes, the state hook reported the model's states and
    /// the client's wire is the model's responses.
    ///
    /// # Panics
    /// At the first difference.
    pub fn end(mut self) {
        self.finish();
        if self
            .serving
            .take()
            .is_some_and(|done| done.recv() != Ok(true))
        {
            self.fail("the serving thread panicked".into());
        }
        //= SPEC.md#release
        //= type=test
        //# After a hijacking handler returned, the server's connection state MUST NOT stay
        //# reachable from the handover parts.
        //= SPEC.md#hijack-handover
        //= type=test
        //# The parts MUST NOT hold any reference to the connection's, the request's or the response's state.
        if !self.probes.iter().all(|p| p.is_dead_within(crate::GUARD)) {
            self.fail(format!(
                "connection state alive after serve_connection returned (parts held: {})",
                self.parts.is_some()
            ));
        }
        if let Some(mut parts) = self.parts.take() {
            // The client is done: the hijacker reads to the end of the stream.
            self.client.shutdown_write();
            let mut read = Vec::new();
            let _ = parts.read_to_end(&mut read);
            let _ = std::io::Write::flush(&mut parts);
            drop(parts);
            if let (Some(cut), false) = (self.model.hijack_cut, self.model.loose()) {
                let expected = &self.model.sent[cut..];
                //= SPEC.md#hijack-handover
                //= type=test
                //# The handed-over bytes followed by every byte later read from the stream MUST equal the bytes the client sent after the last byte consumed by the request head, the handler's body reads and the server's body discard, in order, each exactly once.
                if read != expected {
                    self.fail(format!(
                        "the hijacker read {:?}, the client sent {:?} after the consumed bytes",
                        show(&read),
                        show(expected)
                    ));
                }
            }
        }
        //= SPEC.md#lifecycle
        //= type=test
        //# Every change of connection state MUST follow a row of the connection table, and every change of background-read state MUST follow a row of the background table.
        //= SPEC.md#lifecycle
        //= type=test
        //# The server MUST report the initial New state and then every connection state change, in order, to the state hook.
        let reported = std::mem::take(&mut *self.states.lock().unwrap());
        let rows_ok = reported.windows(2).all(|w| {
            CONN_TRANSITIONS
                .iter()
                .any(|&(from, _, to)| from == w[0] && to == w[1])
        });
        if !rows_ok || reported != self.model.states {
            self.fail(format!(
                "the state hook reported {reported:?}, the model expects {:?}",
                self.model.states
            ));
        }
        if !self.model.loose() {
            let wire = self.client.read_to_end();
            if let Err(e) = check_wire(&self.model, &wire) {
                self.fail(format!("{e}\nwire: {:?}", show(&wire)));
            }
        }
    }
}

/// Receives from `rx`, spinning a little before it blocks (at most `limit`): the driver and
/// the serving thread hand each operation back and forth, and a blocking receive costs a
/// futex wake and two context switches per hand-off, most of the target's time, where the
/// answer usually comes within microseconds.
fn recv_spinning<T>(rx: &Receiver<T>, limit: Option<Duration>) -> Result<T, RecvTimeoutError> {
    for _ in 0..SPINS {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
    match limit {
        Some(limit) => rx.recv_timeout(limit),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    }
}

/// How many times [`recv_spinning`] looks before it blocks (some tens of microseconds).
const SPINS: u32 = 2000;

/// A job for a serving thread, and where it says whether it ended without a panic.
type Job = (Box<dyn FnOnce() + Send>, Sender<bool>);

/// Serving threads waiting for their next job.
static IDLE: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());

/// Runs `job` on a serving thread: an idle one left by an earlier run, or a new one. A thread
/// per run cost a quarter of the `lifecycle` target's time (its stack mapped and unmapped,
/// the sanitizer's bookkeeping) and checked nothing; a run's connection state is its own
/// either way (the leak check sees it dropped when the job ends).
fn on_serving_thread(job: impl FnOnce() + Send + 'static) -> Receiver<bool> {
    let (done_tx, done_rx) = channel();
    let mut job: Job = (Box::new(job), done_tx);
    loop {
        let idle = IDLE.lock().unwrap().pop();
        let Some(worker) = idle else { break };
        match worker.send(job) {
            Ok(()) => return done_rx,
            Err(std::sync::mpsc::SendError(back)) => job = back,
        }
    }
    let (tx, rx) = channel::<Job>();
    tx.send(job).expect("a new serving thread's queue");
    std::thread::Builder::new()
        .name("serving".into())
        .spawn(move || {
            for (job, done) in rx.iter() {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_ok();
                // Idle before it says it is done, so that the next run finds it.
                IDLE.lock().unwrap().push(tx.clone());
                let _ = done.send(ok);
            }
        })
        .expect("a serving thread");
    done_rx
}

/// Sequences that take every path once: run before measuring anything, so that lazily
/// initialized statics exist.
pub fn warm_up_sequences() -> Vec<Vec<Op>> {
    let get = |upgrade| {
        Op::Request(RequestSpec {
            method: 0,
            http10: false,
            body: BodySpec::Length(10),
            expect_continue: false,
            close: false,
            upgrade,
            sent: 255,
        })
    };
    vec![
        vec![get(false), Op::ReadBody(100), Op::Write(3000), Op::Return],
        vec![
            get(true),
            Op::Subscribe,
            Op::Hijack { upgrade: true },
            Op::Write(5),
            Op::Return,
        ],
        vec![get(false), Op::Panic],
        vec![get(false), Op::Reset],
        vec![Op::Raw(b"\0\r\n\r\n".to_vec())],
    ]
}
