//! Property: the connection lifecycle as a state machine (issue 5, point 4), with
//! `proptest-state-machine`.
//!
//! The reference (`Model`) is an abstract server written from SPEC.md: the connection table
//! (`hijack::state::CONN_TRANSITIONS`), the serving loop, the background read, close-notify,
//! release and the hijack handover. Operations: the client sends the next bytes of its
//! script of requests, half-closes or resets; the handler reads some or all of the body,
//! writes, flushes, subscribes to close-notify, hijacks, returns or panics. The
//! implementation is stepped alongside: one connection on the in-memory pipe, the handler
//! running on the serving thread and driven by a command channel from the test, the states
//! observed through `ServerConfig::on_state`.
//!
//! Invariants after every step: the states reported equal the model's, and each change is a
//! row of the table; the handler running (and for which request) is the model's; the
//! request's close-notify and cancellation have fired exactly as the model says (and with
//! its reason); the background reads started and the bytes they caught are the model's;
//! every handler operation returns what the model says. At the end: the responses the
//! client received are the model's, and a hijacker reads exactly the bytes the model says.

mod prop_support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hijack::pipe::{PipeEnd, pipe};
use hijack::state::{CONN_TRANSITIONS, ConnState};
use hijack::transport::{BackgroundRead, Transport};
use hijack::{Cancellation, CloseNotify, Fired, Handover, Request, ResponseWriter, ServerConfig};
use prop_support::{decode_chunk_frames, parse_head, parse_response, pattern};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

// =======================================================================================
// The client's script
// =======================================================================================

#[derive(Clone, Debug)]
struct ScriptRequest {
    #[allow(dead_code)]
    start: usize,
    head_end: usize,
    body_end: usize,
    /// Decoded body.
    data: Vec<u8>,
    /// `after_data[k]`: the stream offset just past data byte `k`.
    after_data: Vec<usize>,
    /// `Connection: close`.
    close: bool,
}

#[derive(Clone, Debug)]
struct Script {
    bytes: Vec<u8>,
    requests: Vec<ScriptRequest>,
}

#[derive(Clone, Debug)]
enum BodyGen {
    Empty,
    Length(usize),
    Chunked(Vec<usize>),
}

fn script(bodies: &[(BodyGen, bool)]) -> Script {
    let mut bytes = Vec::new();
    let mut requests = Vec::new();
    for (i, (body, close)) in bodies.iter().enumerate() {
        let start = bytes.len();
        let mut head = format!("POST /r{i} HTTP/1.1\r\nHost: e.com\r\n");
        if *close {
            head.push_str("Connection: close\r\n");
        }
        let total: usize = match body {
            BodyGen::Empty => 0,
            BodyGen::Length(n) => *n,
            BodyGen::Chunked(sizes) => sizes.iter().sum(),
        };
        let data = pattern(i as u64, total);
        match body {
            BodyGen::Empty => {}
            BodyGen::Length(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            BodyGen::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        bytes.extend_from_slice(head.as_bytes());
        let head_end = bytes.len();
        let mut after_data = Vec::new();
        match body {
            BodyGen::Empty => {}
            BodyGen::Length(_) => {
                for &b in &data {
                    bytes.push(b);
                    after_data.push(bytes.len());
                }
            }
            BodyGen::Chunked(sizes) => {
                let mut at = 0;
                for &n in sizes {
                    bytes.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    for &b in &data[at..at + n] {
                        bytes.push(b);
                        after_data.push(bytes.len());
                    }
                    bytes.extend_from_slice(b"\r\n");
                    at += n;
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
        }
        requests.push(ScriptRequest {
            start,
            head_end,
            body_end: bytes.len(),
            data,
            after_data,
            close: *close,
        });
    }
    Script { bytes, requests }
}

// =======================================================================================
// The model
// =======================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Background {
    Off,
    Pending,
}

/// The running handler, as the model sees it.
#[derive(Clone, Debug)]
struct HandlerModel {
    req: usize,
    /// Decoded body bytes read.
    read: usize,
    ended: bool,
    failed: bool,
    /// Body bytes written (status 200 set by the first write).
    writes: usize,
    status_set: bool,
    flushed: bool,
    /// A write to the stream failed.
    broken: bool,
    /// Body bytes written since the last flush.
    pending: bool,
    /// `None`: no hijack tried; `Some(true)`: hijacked; `Some(false)`: the hijack failed.
    hijack: Option<bool>,
}

#[derive(Clone, Debug)]
enum Server {
    /// Reading the head of request `req`.
    Head {
        req: usize,
    },
    Handler(HandlerModel),
    /// After the handler returned: discarding the rest of the body of `h`.
    Discard(HandlerModel),
    /// `serve_connection` returned.
    Done,
}

/// A response the client must have received, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResponseModel {
    status: u16,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Model {
    script: Arc<Script>,
    /// Bytes the client sent.
    sent: usize,
    /// Bytes taken out of the pipe (foreground reads and background reads).
    taken: usize,
    /// Bytes of the stream consumed by the head parser, the body decoder or a discard.
    consumed: usize,
    /// A byte caught by a background read is held (it is byte `taken - 1`).
    held: bool,
    half_closed: bool,
    reset: bool,
    conn: ConnState,
    states: Vec<ConnState>,
    server: Server,
    background: Background,
    background_started: u64,
    background_caught: u64,
    /// Close-notify and cancellation of the last request whose handler started.
    latches: Option<(Option<Fired>, Option<Fired>)>,
    /// Request index of the last handler started.
    last_started: Option<usize>,
    responses: Vec<ResponseModel>,
    /// Where the hijacker's bytes start in the client's stream, once hijacked; and the
    /// response bytes (status set, body bytes) the hijack flushed first.
    hijacked_at: Option<(usize, Option<usize>)>,
    /// What the last handler operation must return.
    last: OpResult,
}

impl std::fmt::Debug for Model {
    /// Short: the script (what a counterexample needs) and where the connection is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let requests: Vec<String> = self
            .script
            .requests
            .iter()
            .map(|r| {
                format!(
                    "head {} B + body {} B ({} data B){}",
                    r.head_end - r.start,
                    r.body_end - r.head_end,
                    r.data.len(),
                    if r.close { ", Connection: close" } else { "" }
                )
            })
            .collect();
        f.debug_struct("Model")
            .field("script", &requests)
            .field("sent", &self.sent)
            .field("states", &self.states)
            .finish_non_exhaustive()
    }
}

impl Model {
    fn new(script: Script) -> Model {
        Model {
            script: Arc::new(script),
            sent: 0,
            taken: 0,
            consumed: 0,
            held: false,
            half_closed: false,
            reset: false,
            conn: ConnState::New,
            states: vec![ConnState::New],
            server: Server::Head { req: 0 },
            background: Background::Off,
            background_started: 0,
            background_caught: 0,
            latches: None,
            last_started: None,
            responses: Vec::new(),
            hijacked_at: None,
            last: OpResult::None,
        }
    }

    fn go(&mut self, next: ConnState) {
        self.conn = next;
        self.states.push(next);
    }

    /// Bytes in the read buffer (read from the pipe, not consumed), not counting a held byte.
    fn buffered(&self) -> usize {
        self.taken - usize::from(self.held) - self.consumed
    }

    fn in_pipe(&self) -> usize {
        if self.reset {
            0
        } else {
            self.sent - self.taken
        }
    }

    /// A foreground read: the held byte, else everything in the pipe (the script is shorter
    /// than one 4 KiB read). `Some(true)`: got bytes; `Some(false)`: end of stream or an
    /// error; `None`: it blocks.
    fn fill(&mut self) -> Option<bool> {
        if self.held {
            self.held = false;
            return Some(true);
        }
        if self.reset {
            return Some(false);
        }
        if self.in_pipe() > 0 {
            self.taken = self.sent;
            return Some(true);
        }
        if self.half_closed { Some(false) } else { None }
    }

    fn fire_client_gone(&mut self) {
        if let Some((notify, cancel)) = &mut self.latches {
            notify.get_or_insert(Fired::ClientGone);
            cancel.get_or_insert(Fired::ClientGone);
        }
    }

    /// Runs the server until it waits for the test (the handler), the client, or is done.
    fn settle(&mut self) {
        loop {
            match self.server.clone() {
                Server::Head { req } => {
                    // SPEC.md#serving-loop step 1: a buffered byte starts the request.
                    if self.buffered() > 0 && self.conn != ConnState::Active {
                        self.go(ConnState::Active);
                    }
                    let head = self.script.requests.get(req).map(|r| r.head_end);
                    if self.buffered() > 0
                        && let Some(head_end) = head
                        && self.consumed + self.buffered() >= head_end
                    {
                        self.consumed = head_end;
                        self.start_handler(req);
                        continue;
                    }
                    match self.fill() {
                        Some(true) => {
                            if self.conn != ConnState::Active {
                                self.go(ConnState::Active);
                            }
                        }
                        Some(false) => {
                            self.go(ConnState::Closed);
                            self.server = Server::Done;
                        }
                        None => return,
                    }
                }
                Server::Handler(_) => {
                    if self.background == Background::Pending {
                        if self.reset || (self.in_pipe() == 0 && self.half_closed) {
                            self.fire_client_gone();
                            self.background = Background::Off;
                        } else if self.in_pipe() > 0 {
                            self.taken += 1;
                            self.held = true;
                            self.background_caught += 1;
                            self.background = Background::Off;
                        }
                    }
                    return;
                }
                Server::Discard(h) => {
                    let r = &self.script.requests[h.req];
                    if self.consumed + self.buffered() >= r.body_end {
                        self.consumed = r.body_end;
                        self.after_discard(&h, true);
                        continue;
                    }
                    self.consumed += self.buffered();
                    match self.fill() {
                        Some(true) => {}
                        Some(false) => self.after_discard(&h, false),
                        None => return,
                    }
                }
                Server::Done => return,
            }
        }
    }

    fn start_handler(&mut self, req: usize) {
        let r = &self.script.requests[req];
        let empty = r.body_end == r.head_end;
        self.latches = Some((None, None));
        self.last_started = Some(req);
        self.server = Server::Handler(HandlerModel {
            req,
            read: 0,
            ended: empty,
            failed: false,
            writes: 0,
            status_set: false,
            flushed: false,
            broken: false,
            pending: false,
            hijack: None,
        });
        if empty {
            self.start_background();
        }
    }

    /// SPEC.md#background-read: starts unless a byte is held (or hijacked: never called).
    fn start_background(&mut self) {
        if !self.held {
            self.background = Background::Pending;
            self.background_started += 1;
        }
    }

    fn handler(&mut self) -> &mut HandlerModel {
        match &mut self.server {
            Server::Handler(h) => h,
            _ => panic!("no handler runs"),
        }
    }

    fn handler_ref(&self) -> Option<&HandlerModel> {
        match &self.server {
            Server::Handler(h) => Some(h),
            _ => None,
        }
    }

    /// Consumes stream bytes up to `to` (all sent), filling as the decoder does.
    fn consume_to(&mut self, to: usize) {
        while self.consumed + self.buffered() < to {
            assert_eq!(
                self.fill(),
                Some(true),
                "model: consume_to past what was sent"
            );
        }
        self.consumed = to;
    }

    /// Data bytes of the running request's body that were sent and not read yet.
    fn body_available(&self) -> usize {
        let Some(h) = self.handler_ref() else {
            return 0;
        };
        let r = &self.script.requests[h.req];
        r.after_data[h.read..]
            .iter()
            .take_while(|&&end| end <= self.sent)
            .count()
    }

    fn read_body(&mut self, k: usize) -> OpResult {
        let (req, read) = (self.handler().req, self.handler().read);
        let r = self.script.requests[req].clone();
        self.consume_to(r.after_data[read + k - 1]);
        self.handler().read += k;
        OpResult::Data(r.data[read..read + k].to_vec())
    }

    fn read_to_end(&mut self) -> OpResult {
        let h = self.handler().clone();
        if h.hijack == Some(true) || h.failed {
            return OpResult::Fail;
        }
        if h.ended {
            return OpResult::Data(Vec::new());
        }
        let r = self.script.requests[h.req].clone();
        if self.sent >= r.body_end {
            self.consume_to(r.body_end);
            let read_before = h.read;
            let h = self.handler();
            h.read = r.data.len();
            h.ended = true;
            self.start_background();
            return OpResult::Data(r.data[read_before..].to_vec());
        }
        // The client half-closed inside the body: the body fails, and an end of stream seen
        // by a foreground read while the handler runs fires close-notify and cancellation.
        self.taken = self.sent;
        self.consumed = self.taken;
        self.handler().failed = true;
        self.fire_client_gone();
        OpResult::Fail
    }

    fn hijack(&mut self) -> OpResult {
        let h = self.handler().clone();
        let r = self.script.requests[h.req].clone();
        self.handler().hijack = Some(false);
        if h.status_set && !h.ended {
            // SPEC.md#hijack-handover: a written head makes the hijack discard the body.
            if h.failed {
                return self.hijack_failed();
            }
            if self.sent >= r.body_end {
                self.consume_to(r.body_end);
            } else {
                // The stream ends inside the body: the discard fails. The connection is
                // hijacked from the hijack's first step, so nothing fires.
                self.taken = self.sent;
                self.consumed = self.taken;
                self.handler().failed = true;
                return self.hijack_failed();
            }
        }
        self.background = Background::Off;
        let h = self.handler();
        h.hijack = Some(true);
        let flushed = h.status_set.then_some(h.writes);
        self.hijacked_at = Some((self.consumed, flushed));
        self.go(ConnState::Hijacked);
        OpResult::Hijack(true)
    }

    fn hijack_failed(&mut self) -> OpResult {
        OpResult::Hijack(false)
    }

    /// The handler returned (or panicked).
    fn handler_returns(&mut self, panicked: bool) {
        let h = self.handler().clone();
        // SPEC.md#release: the latches reach their terminal state.
        if let Some((notify, cancel)) = &mut self.latches {
            notify.get_or_insert(Fired::HandlerDone);
            cancel.get_or_insert(Fired::HandlerDone);
        }
        if h.hijack == Some(true) {
            self.server = Server::Done;
            return;
        }
        self.background = Background::Off;
        if panicked {
            self.go(ConnState::Closed);
            self.server = Server::Done;
            return;
        }
        let r = &self.script.requests[h.req];
        let hijack_failed = h.hijack == Some(false);
        let (status, body) = if h.failed && !h.flushed {
            (400, b"400 Bad Request".to_vec())
        } else if hijack_failed && !h.flushed {
            (500, pattern(h.req as u64 + 100, h.writes))
        } else {
            (200, pattern(h.req as u64 + 100, h.writes))
        };
        let broken = h.broken || self.reset;
        if !self.reset {
            self.responses.push(ResponseModel { status, body });
        }
        let keep = !r.close && !h.failed && !hijack_failed && !broken;
        let h = HandlerModel { broken: !keep, ..h };
        if h.ended || h.failed {
            self.after_discard(&h, !h.failed);
        } else {
            self.server = Server::Discard(h);
        }
    }

    fn after_discard(&mut self, h: &HandlerModel, body_done: bool) {
        if body_done && !h.broken {
            self.go(ConnState::Idle);
            self.server = Server::Head { req: h.req + 1 };
        } else {
            self.go(ConnState::Closed);
            self.server = Server::Done;
        }
    }

    fn apply(&mut self, op: &Op) {
        self.last = OpResult::None;
        match *op {
            Op::Send(n) => self.sent += n.min(self.script.bytes.len() - self.sent),
            Op::HalfClose => self.half_closed = true,
            Op::Reset => self.reset = true,
            Op::ReadBody(k) => {
                let k = k.min(self.body_available());
                self.last = self.read_body(k);
            }
            Op::ReadToEnd => self.last = self.read_to_end(),
            Op::Write(n) => {
                let h = self.handler();
                h.writes += n;
                h.status_set = true;
                h.pending = true;
                self.last = OpResult::Ok;
            }
            Op::Flush => {
                let reset = self.reset;
                let h = self.handler();
                // A flush with nothing to write (head sent, no write since) writes nothing.
                let writes = !h.flushed || h.pending;
                h.status_set = true;
                h.flushed = true;
                h.pending = false;
                if reset && writes {
                    // SPEC.md#close-notify: a failed write cancels (close-notify does not fire).
                    h.broken = true;
                    if let Some((_, cancel)) = &mut self.latches {
                        cancel.get_or_insert(Fired::ClientGone);
                    }
                    self.last = OpResult::Fail;
                } else {
                    self.last = OpResult::Ok;
                }
            }
            Op::Subscribe => self.last = OpResult::Ok,
            Op::Hijack => self.last = self.hijack(),
            Op::Return => self.handler_returns(false),
            Op::Panic => self.handler_returns(true),
            Op::Pause => {}
        }
        self.settle();
    }

    /// Whether `op` can run now without blocking the test (and makes sense).
    fn allows(&self, op: &Op) -> bool {
        let client_open = !self.half_closed && !self.reset && self.conn != ConnState::Closed;
        let h = self.handler_ref();
        let writer = h.is_some_and(|h| h.hijack.is_none());
        match *op {
            Op::Send(n) => n > 0 && client_open && self.sent < self.script.bytes.len(),
            Op::HalfClose => client_open,
            Op::Reset => client_open && self.conn != ConnState::Hijacked,
            Op::ReadBody(k) => {
                k > 0
                    && !self.reset
                    && h.is_some_and(|h| h.hijack.is_none() && !h.failed && !h.ended)
                    && self.body_available() > 0
            }
            Op::ReadToEnd => h.is_some_and(|h| {
                let r = &self.script.requests[h.req];
                h.hijack.is_some()
                    || h.failed
                    || h.ended
                    || (!self.reset && (self.sent >= r.body_end || self.half_closed))
            }),
            Op::Write(_) | Op::Flush | Op::Subscribe => writer,
            Op::Hijack => h.is_some_and(|h| {
                let r = &self.script.requests[h.req];
                h.hijack.is_none()
                    && !self.reset
                    && (!h.status_set
                        || h.ended
                        || h.failed
                        || self.sent >= r.body_end
                        || self.half_closed)
            }),
            Op::Return | Op::Panic => h.is_some(),
            Op::Pause => true,
        }
    }

    /// What the test must observe now.
    fn observation(&self) -> Observed {
        Observed {
            states: self.states.clone(),
            running: self.handler_ref().map(|h| h.req),
            latches: self.latches,
            background_started: self.background_started,
            background_caught: (!self.reset && self.conn != ConnState::Closed)
                .then_some(self.background_caught),
            responses: (!self.reset).then_some(self.responses.len()),
            done: matches!(self.server, Server::Done),
        }
    }
}

/// What a handler operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OpResult {
    None,
    Ok,
    Fail,
    Data(Vec<u8>),
    Hijack(bool),
}

#[derive(Clone, Debug)]
enum Op {
    /// The client sends the next `n` bytes of its script.
    Send(usize),
    HalfClose,
    Reset,
    /// The handler reads exactly `k` body bytes (at most what was sent).
    ReadBody(usize),
    /// The handler reads the body to its end.
    ReadToEnd,
    Write(usize),
    Flush,
    Subscribe,
    Hijack,
    Return,
    Panic,
    /// Nothing (when nothing else is possible).
    Pause,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Observed {
    states: Vec<ConnState>,
    running: Option<usize>,
    latches: Option<(Option<Fired>, Option<Fired>)>,
    background_started: u64,
    /// Bytes background reads took from the pipe (unknown once the client reset or the
    /// server closed).
    background_caught: Option<u64>,
    /// Complete responses the client received (unknown once it reset).
    responses: Option<usize>,
    done: bool,
}

// =======================================================================================
// The reference state machine
// =======================================================================================

struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        let body = prop_oneof![
            Just(BodyGen::Empty),
            (1usize..24).prop_map(BodyGen::Length),
            prop::collection::vec(1usize..12, 1..4).prop_map(BodyGen::Chunked),
        ];
        let close = prop_oneof![5 => Just(false), 1 => Just(true)];
        prop::collection::vec((body, close), 1..5)
            .prop_map(|bodies| Model::new(script(&bodies)))
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        // Weighted towards progress: the client goes away rarely while it has bytes to send.
        let send = if state.sent < state.script.bytes.len() {
            20
        } else {
            1
        };
        let candidates: Vec<(u32, BoxedStrategy<Op>, Op)> = vec![
            (send, (1usize..80).prop_map(Op::Send).boxed(), Op::Send(1)),
            (1, Just(Op::HalfClose).boxed(), Op::HalfClose),
            (1, Just(Op::Reset).boxed(), Op::Reset),
            (
                3,
                (1usize..30).prop_map(Op::ReadBody).boxed(),
                Op::ReadBody(1),
            ),
            (4, Just(Op::ReadToEnd).boxed(), Op::ReadToEnd),
            (3, (1usize..64).prop_map(Op::Write).boxed(), Op::Write(1)),
            (2, Just(Op::Flush).boxed(), Op::Flush),
            (1, Just(Op::Subscribe).boxed(), Op::Subscribe),
            (3, Just(Op::Hijack).boxed(), Op::Hijack),
            (4, Just(Op::Return).boxed(), Op::Return),
            (1, Just(Op::Panic).boxed(), Op::Panic),
        ];
        // Every parameter of an allowed kind is allowed (sizes are clamped), so no filtering.
        let mut options: Vec<(u32, BoxedStrategy<Op>)> = candidates
            .into_iter()
            .filter(|(_, _, probe)| state.allows(probe))
            .map(|(weight, strategy, _)| (weight, strategy))
            .collect();
        if options.is_empty() {
            options.push((1, Just(Op::Pause).boxed()));
        }
        prop::strategy::Union::new_weighted(options).boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        state.allows(op)
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.apply(op);
        state
    }
}

// =======================================================================================
// The implementation, stepped alongside
// =======================================================================================

/// A handler's report that it started.
struct Started {
    req: usize,
    notify: CloseNotify,
    cancel: Cancellation,
}

enum Cmd {
    ReadBody(usize),
    ReadToEnd,
    Write(usize),
    Flush,
    Subscribe,
    Hijack,
    Return,
    Panic,
}

enum Reply {
    Done(OpResult),
    Hijacked(Result<Handover<PipeEnd>, String>),
}

const PANIC: &str = "prop_lifecycle: the handler panics on purpose";

/// The pipe's server end, counting the bytes foreground reads took (the rest of what left
/// the pipe was taken by background reads).
struct CountingPipe {
    inner: PipeEnd,
    foreground: Arc<AtomicUsize>,
}

impl Transport for CountingPipe {
    type Stream = PipeEnd;
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = Transport::read(&self.inner, buf)?;
        self.foreground.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        Transport::write(&self.inner, buf)
    }
    fn set_read_deadline(&self, deadline: Option<Instant>) -> std::io::Result<()> {
        self.inner.set_read_deadline(deadline)
    }
    fn set_write_deadline(&self, deadline: Option<Instant>) -> std::io::Result<()> {
        self.inner.set_write_deadline(deadline)
    }
    fn start_background_read(&self, done: BackgroundRead) {
        self.inner.start_background_read(done)
    }
    fn interrupt_background_read(&self) {
        self.inner.interrupt_background_read()
    }
    fn close(&self) {
        self.inner.close()
    }
    fn shutdown(&self) {
        self.inner.shutdown()
    }
    fn into_stream(self) -> std::io::Result<PipeEnd> {
        Ok(self.inner)
    }
}

struct Sut {
    client: PipeEnd,
    sent: usize,
    states: Arc<Mutex<Vec<ConnState>>>,
    foreground: Arc<AtomicUsize>,
    started: Receiver<Started>,
    cmds: Sender<Cmd>,
    replies: Receiver<Reply>,
    running: Option<usize>,
    latches: Option<(CloseNotify, Cancellation)>,
    server: Option<std::thread::JoinHandle<()>>,
    parts: Option<Handover<PipeEnd>>,
    received: Vec<u8>,
    reset: bool,
}

fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC) {
                default(info);
            }
        }));
    });
}

fn handle(
    started: &Sender<Started>,
    cmds: &Mutex<Receiver<Cmd>>,
    replies: &Sender<Reply>,
    mut req: Request<'_>,
    w: ResponseWriter<'_, CountingPipe>,
) {
    let index: usize = req.path().trim_start_matches("/r").parse().unwrap();
    let _ = started.send(Started {
        req: index,
        notify: w.close_notify(),
        cancel: req.cancellation(),
    });
    let mut w = Some(w);
    let mut kept = None;
    let mut written = 0;
    let cmds = cmds.lock().unwrap();
    loop {
        let Ok(cmd) = cmds.recv() else { return };
        let reply = match cmd {
            Cmd::ReadBody(k) => {
                let mut buf = vec![0u8; k];
                Reply::Done(match req.body().read_exact(&mut buf) {
                    Ok(()) => OpResult::Data(buf),
                    Err(_) => OpResult::Fail,
                })
            }
            Cmd::ReadToEnd => {
                let mut buf = Vec::new();
                Reply::Done(match req.body().read_to_end(&mut buf) {
                    Ok(_) => OpResult::Data(buf),
                    Err(_) => OpResult::Fail,
                })
            }
            Cmd::Write(n) => {
                let w = w.as_mut().unwrap();
                let data = pattern(index as u64 + 100, written + n)[written..].to_vec();
                written += n;
                Reply::Done(if w.write_body(&data).is_ok() {
                    OpResult::Ok
                } else {
                    OpResult::Fail
                })
            }
            Cmd::Flush => Reply::Done(if w.as_mut().unwrap().flush().is_ok() {
                OpResult::Ok
            } else {
                OpResult::Fail
            }),
            Cmd::Subscribe => {
                kept = Some(w.as_ref().unwrap().close_notify());
                Reply::Done(OpResult::Ok)
            }
            Cmd::Hijack => Reply::Hijacked(w.take().unwrap().hijack().map_err(|e| e.to_string())),
            Cmd::Return => {
                let _ = replies.send(Reply::Done(OpResult::None));
                return;
            }
            Cmd::Panic => {
                let _ = replies.send(Reply::Done(OpResult::None));
                drop(cmds);
                std::panic::panic_any(PANIC);
            }
        };
        let _ = replies.send(reply);
        let _ = &kept;
    }
}

impl Sut {
    fn new() -> Sut {
        silence_panics();
        let (client, server_end) = pipe();
        let states = Arc::new(Mutex::new(Vec::new()));
        let foreground = Arc::new(AtomicUsize::new(0));
        let (started_tx, started) = channel();
        let (cmds, cmds_rx) = channel();
        let (replies_tx, replies) = channel();
        let cmds_rx = Mutex::new(cmds_rx);
        let handler = move |req: Request<'_>, w: ResponseWriter<'_, CountingPipe>| {
            handle(&started_tx, &cmds_rx, &replies_tx, req, w)
        };
        let hook_states = states.clone();
        let config = ServerConfig {
            on_state: Some(Arc::new(move |_, state| {
                hook_states.lock().unwrap().push(state)
            })),
            ..ServerConfig::default()
        };
        let transport = CountingPipe {
            inner: server_end,
            foreground: foreground.clone(),
        };
        let server =
            std::thread::spawn(move || hijack::serve_connection(transport, &handler, &config, 1));
        Sut {
            client,
            sent: 0,
            states,
            foreground,
            started,
            cmds,
            replies,
            running: None,
            latches: None,
            server: Some(server),
            parts: None,
            received: Vec::new(),
            reset: false,
        }
    }

    fn observe(&mut self) -> Observed {
        while let Ok(s) = self.started.try_recv() {
            self.running = Some(s.req);
            self.latches = Some((s.notify, s.cancel));
        }
        let done = self.server.as_ref().is_none_or(|s| s.is_finished());
        if !self.reset {
            let more = self.drain();
            self.received.extend(more);
        }
        let states = self.states.lock().unwrap().clone();
        // A reset, or the server's close, drops the bytes still in the pipe: from then on
        // what left the pipe is not known.
        let reset = self.reset || states.last() == Some(&ConnState::Closed);
        Observed {
            states,
            running: self.running,
            latches: self.latches.as_ref().map(|(n, c)| (n.fired(), c.fired())),
            background_started: self.client.background_reads_started(),
            background_caught: (!reset).then(|| {
                (self.sent - self.foreground.load(Ordering::SeqCst) - self.client.peer_unread_len())
                    as u64
            }),
            responses: (!self.reset).then(|| complete_responses(&self.received)),
            done,
        }
    }

    /// Waits until what the test observes is what the model says (bounded), then checks it.
    fn settle(&mut self, model: &Model) {
        let expected = model.observation();
        let start = Instant::now();
        let mut observed = self.observe();
        while observed != expected && start.elapsed() < SETTLE {
            std::thread::yield_now();
            std::thread::sleep(Duration::from_micros(50));
            observed = self.observe();
        }
        assert_eq!(observed, expected, "implementation and model disagree");
        // Every state change is a row of the table.
        assert_eq!(observed.states.first(), Some(&ConnState::New));
        for pair in observed.states.windows(2) {
            assert!(
                CONN_TRANSITIONS
                    .iter()
                    .any(|&(from, _, to)| from == pair[0] && to == pair[1]),
                "{:?} -> {:?} is not a row of the connection table",
                pair[0],
                pair[1]
            );
        }
    }

    fn drain(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while self.client.unread_len() > 0 {
            match self.client.read(&mut buf) {
                Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        out
    }

    fn command(&mut self, cmd: Cmd) -> Reply {
        self.cmds.send(cmd).unwrap();
        self.replies
            .recv_timeout(hijack_testkit::GUARD)
            .expect("the handler did not answer")
    }
}

/// How many complete responses `wire` starts with.
fn complete_responses(wire: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < wire.len() {
        match std::panic::catch_unwind(|| parse_response(&wire[at..], false)) {
            Ok(Some((head, _, used)))
                if head.header("transfer-encoding").is_none() || used > head.len =>
            {
                at += used;
                n += 1;
            }
            _ => break,
        }
    }
    n
}

/// The bound of one settle wait: generous, it runs out only when the property is broken.
const SETTLE: Duration = Duration::from_secs(5);

impl StateMachineTest for Lifecycle {
    type SystemUnderTest = Sut;
    type Reference = Lifecycle;

    fn init_test(_: &Model) -> Sut {
        Sut::new()
    }

    //= SPEC.md#lifecycle
    //= type=test
    //# Every change of connection state MUST follow a row of the connection table, and every
    //# change of background-read state MUST follow a row of the background table.
    //= SPEC.md#lifecycle
    //= type=test
    //# The server MUST report the initial New state and then every connection state change,
    //# in order, to the state hook.
    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        let name = format!("{op:?}");
        let name = name.split('(').next().unwrap_or_default();
        prop_support::tally(format!("lifecycle: op {name}"));
        match op {
            Op::Send(_) => {
                let upto = model.sent;
                sut.client
                    .write_all(&model.script.bytes[sut.sent..upto])
                    .unwrap();
                sut.sent = upto;
            }
            Op::HalfClose => sut.client.shutdown_write(),
            Op::Pause => {}
            Op::Reset => {
                sut.received.extend(sut.drain());
                sut.client.reset();
                sut.reset = true;
            }
            Op::Return | Op::Panic => {
                let cmd = if matches!(op, Op::Return) {
                    Cmd::Return
                } else {
                    Cmd::Panic
                };
                sut.command(cmd);
                sut.running = None;
            }
            Op::Hijack => match sut.command(Cmd::Hijack) {
                Reply::Hijacked(Ok(parts)) => {
                    assert_eq!(model.last, OpResult::Hijack(true), "the hijack succeeded");
                    //= SPEC.md#hijack-handover
                    //= type=test
                    //# The handed-over stream MUST have no read or write deadline set.
                    assert_eq!(parts.stream.deadlines(), (None, None));
                    sut.parts = Some(parts);
                }
                Reply::Hijacked(Err(e)) => {
                    assert_eq!(
                        model.last,
                        OpResult::Hijack(false),
                        "the hijack failed: {e}"
                    )
                }
                Reply::Done(_) => unreachable!(),
            },
            op => {
                let cmd = match op {
                    Op::ReadBody(_) => {
                        let OpResult::Data(d) = &model.last else {
                            panic!("model")
                        };
                        Cmd::ReadBody(d.len())
                    }
                    Op::ReadToEnd => Cmd::ReadToEnd,
                    Op::Write(n) => Cmd::Write(n),
                    Op::Flush => Cmd::Flush,
                    Op::Subscribe => Cmd::Subscribe,
                    _ => unreachable!(),
                };
                let Reply::Done(result) = sut.command(cmd) else {
                    unreachable!()
                };
                assert_eq!(result, model.last, "handler operation {op:?}");
            }
        }
        sut.settle(model);
        sut
    }

    //= SPEC.md#close-notify
    //= type=test
    //# End of stream or an error from the background read while the handler runs MUST fire
    //# close-notify and cancel the request.
    //= SPEC.md#close-notify
    //= type=test
    //# When the handler returns, a close-notify or cancellation that has not fired MUST fire
    //# with HandlerDone and wake every waiter.
    //= SPEC.md#background-read
    //= type=test
    //# A server MUST NOT have two background reads pending on one connection.
    //= SPEC.md#serving-loop
    //= type=test
    //# A handler panic MUST close the connection unless it was hijacked, and MUST NOT stop
    //# the server from serving other connections.
    fn check_invariants(sut: &Sut, model: &Model) {
        // The responses received so far are the model's, complete ones in order; a flushed
        // response still in progress may follow.
        if model.reset {
            return;
        }
        let wire = &sut.received;
        let mut at = 0;
        for expected in &model.responses {
            let parsed = parse_response(&wire[at..], false);
            assert!(
                parsed.is_some(),
                "missing response {expected:?} in {:?}",
                String::from_utf8_lossy(wire)
            );
            let (head, body, used) = parsed.unwrap();
            assert_eq!((head.status, &body), (expected.status, &expected.body));
            at += used;
        }
        let in_progress = model.handler_ref().is_some_and(|h| h.flushed)
            || model.hijacked_at.is_some()
            || matches!(model.server, Server::Done) && model.conn == ConnState::Closed;
        if !in_progress {
            assert_eq!(
                at,
                wire.len(),
                "unexpected bytes after the responses: {:?}",
                String::from_utf8_lossy(&wire[at..])
            );
        }
    }

    fn teardown(mut sut: Sut, model: Model) {
        tally_run(&model);
        // Let the server finish: end handlers, close the client's side.
        if model.handler_ref().is_some() {
            sut.command(Cmd::Return);
            sut.running = None;
        }
        if !model.half_closed && !model.reset {
            sut.client.shutdown_write();
        }
        let start = Instant::now();
        loop {
            while let Ok(_started) = sut.started.try_recv() {
                sut.command(Cmd::Return);
            }
            if sut.server.as_ref().unwrap().is_finished() {
                break;
            }
            assert!(
                start.elapsed() < hijack_testkit::GUARD,
                "the server did not finish"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        sut.server.take().unwrap().join().unwrap();
        let states = sut.states.lock().unwrap().clone();
        assert!(matches!(
            states.last(),
            Some(ConnState::Closed | ConnState::Hijacked)
        ));
        // The hijacker reads exactly the client's bytes after what the server consumed, and
        // the client gets the flushed response, then exactly what the hijacker wrote.
        //= SPEC.md#hijack-handover
        //= type=test
        //# The handed-over bytes followed by every byte later read from the stream MUST equal
        //# the bytes the client sent after the last byte consumed by the request head, the
        //# handler's body reads and the server's body discard, in order, each exactly once.
        if let (Some(mut parts), Some((at, flushed))) = (sut.parts.take(), model.hijacked_at) {
            parts.write_all(b"hijacker").unwrap();
            parts.flush().unwrap();
            let mut got = Vec::new();
            parts.read_to_end(&mut got).unwrap();
            assert_eq!(
                got,
                model.script.bytes[at..model.sent],
                "the hijacker's bytes"
            );
            drop(parts);
            let mut wire = std::mem::take(&mut sut.received);
            wire.extend(sut.client.read_to_end());
            let mut rest = &wire[..];
            for _ in &model.responses {
                let (_, _, used) = parse_response(rest, false).unwrap();
                rest = &rest[used..];
            }
            if let Some(writes) = flushed {
                let head = parse_head(rest).expect("the response head before the hijacker's bytes");
                rest = &rest[head.len..];
                let (body, used) = decode_chunk_frames(rest, writes).expect("chunks");
                let h = model.hijacked_request().unwrap();
                assert_eq!(body, pattern(h as u64 + 100, writes));
                rest = &rest[used..];
            }
            assert_eq!(rest, b"hijacker");
        }
    }
}

impl Model {
    fn hijacked_request(&self) -> Option<usize> {
        self.hijacked_at.and(self.last_started)
    }
}

//= SPEC.md#lifecycle
//= type=test
//# Every change of connection state MUST follow a row of the connection table, and every
//# change of background-read state MUST follow a row of the background table.
//= SPEC.md#background-read
//= type=test
//# A background read MUST NOT start while no handler runs.
/// The implementation steps through the lifecycle as the model does (`prop_state_machine!`
/// spelled out, so the tally can be printed after the run).
#[test]
fn lifecycle_follows_the_model() {
    const REGRESSIONS: &str = "proptest-regressions/prop_lifecycle.txt";
    prop_support::run_property(
        10_000,
        REGRESSIONS,
        "lifecycle:",
        Lifecycle::sequential_strategy(1..32),
        |(initial, transitions, seen)| {
            Lifecycle::test_sequential(
                prop_support::config(10_000, REGRESSIONS),
                initial,
                transitions,
                seen,
            );
            Ok(())
        },
    );
}

/// Counts what a finished run covered (see `prop_support::tally`).
fn tally_run(model: &Model) {
    let count = |what: &str| prop_support::tally(format!("lifecycle: {what}"));
    count("runs");
    if model.hijacked_at.is_some() {
        count("hijacked");
    }
    if model.background_caught > 0 {
        count("a background read caught a byte");
    }
    if let Some((notify, cancel)) = model.latches {
        if notify == Some(Fired::ClientGone) {
            count("close-notify fired: client gone");
        }
        if cancel == Some(Fired::ClientGone) && notify != Some(Fired::ClientGone) {
            count("cancelled (not close-notify): a write failed");
        }
    }
    if model.states.contains(&ConnState::Idle) {
        count("keep-alive: a later request on the connection");
    }
    for r in &model.responses {
        count(&format!("response {}", r.status));
    }
    if model.conn == ConnState::Closed {
        count("closed by the server");
    }
}
