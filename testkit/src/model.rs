//! The executable model of one served connection, for the `lifecycle` fuzz target and the
//! lifecycle property (both through [`crate::lifecycle`]).
//!
//! It follows SPEC.md's serving loop, background read, abort, release, hijack handover and
//! close-notify rules over three byte pools: the pipe (sent by the client, not read by the
//! server), the server's read buffer, and the background byte. The server reads only when the
//! rules say it does, so the model knows exactly what a read returns: a read takes the
//! background byte if one is held, else everything the pipe holds, up to 4096 bytes. Request
//! heads and bodies are framed with the core's own `parse_head` and `BodyDecoder` (the
//! `request_head` target checks those on their own); everything else is the model's.
//!
//! An operation the real connection would block on (a body read with no bytes to come yet) is
//! reported as [`Blocked`], and the driver skips it on both sides.

use std::collections::VecDeque;

use bytes::BytesMut;
use hijack::limits::{BODY_HOLD, READ_SIZE, WRITE_BUFFER};
use hijack::parse::{BodyDecoder, BodyKind, Decoded, RequestHead, Verdict, parse_head};
use hijack::{ConnState, Fired};
use http::{Method, Version};

/// The discard limit, from the public configuration the run serves with.
fn max_discard() -> u64 {
    crate::served::config().max_discard_bytes
}

/// The operation would block the real connection: skip it.
#[derive(Debug)]
pub struct Blocked;

/// What the serving thread reports to the driver, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A handler was called for the request with this target.
    Started(String),
    /// `serve_connection` returned.
    ServerDone,
}

/// A response's framing, as committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Not decided yet.
    Uncommitted,
    /// No body (1xx, 204, 304, HEAD).
    NoBody,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends with the connection.
    CloseDelimited,
}

/// A committed response head, as the client must see it (the Date aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadInfo {
    /// The response's version (the request's).
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// How the body is framed.
    pub framing: Framing,
    /// The Connection field the server added: `close`, `keep-alive` or none.
    pub connection: Option<&'static str>,
}

/// What the client must read, in order.
#[derive(Clone, Debug)]
pub enum WireItem {
    /// `HTTP/1.1 100 Continue`.
    Continue,
    /// The rejection of a head.
    Rejection(Verdict),
    /// A finished response: its head, its body bytes as framed on the wire, and for chunked
    /// framing the zero-size chunk.
    Response {
        /// The head.
        head: HeadInfo,
        /// It answers a HEAD request.
        is_head: bool,
        /// The body as framed on the wire.
        body_wire: Vec<u8>,
    },
    /// A response whose handler panicked: some prefix of this, possibly nothing.
    Partial {
        /// The head, if one was committed.
        head: Option<HeadInfo>,
        /// The most body bytes that may have reached the wire.
        body_wire: Vec<u8>,
    },
    /// The response of a hijacking handler (head only if a status was set), then exactly the
    /// hijacker's bytes.
    Hijacked {
        /// The head the hijack committed, if any.
        head: Option<HeadInfo>,
        /// Body bytes written before the hijack.
        body_wire: Vec<u8>,
        /// What the hijacker wrote.
        hijacker: Vec<u8>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bg {
    Off,
    Pending,
    Held(u8),
}

/// The response being written (the `WriteSide` of SPEC.md#parts, minus wire buffering).
#[derive(Clone, Debug)]
struct Resp {
    status_set: bool,
    status: u16,
    framing: Framing,
    held: Vec<u8>,
    head: Option<HeadInfo>,
    body_wire: Vec<u8>,
    continue_expected: bool,
    continue_sent: bool,
    continue_cancelled: bool,
    close_after: bool,
    /// Bytes in the connection's write buffer (written to the stream at 4096, on flush, on
    /// hijack and at the end of the response); the head's Date is always 29 bytes.
    buffered: usize,
    /// A write to the stream failed.
    broken: bool,
}

/// One request while its handler runs (and until its response is finished).
#[derive(Clone, Debug)]
struct Req {
    head: RequestHead,
    decoder: BodyDecoder,
    body_ended: bool,
    framing_error: bool,
    resp: Resp,
    /// The writer was consumed by a hijack (successful or not).
    writer_gone: bool,
    /// The connection reader's hijacked flag (set by any hijack, before its abort).
    hijack_marked: bool,
    /// The hijack succeeded: the handler holds the parts.
    parts: bool,
    /// Where the hijacker's bytes start in `Model::sent`, and what it wrote.
    cut: usize,
    hijacker: Vec<u8>,
    pub cancel: Option<Fired>,
    pub notify: Option<Fired>,
    subscribed: bool,
    returned: bool,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Reading a request head.
    Head,
    /// A handler runs.
    Handler(Box<Req>),
    /// The handler returned; the server discards the unread body.
    Discard {
        decoder: BodyDecoder,
        keep_alive: bool,
        seen: u64,
    },
    /// The server closed the connection.
    Closed,
    /// A hijacking handler returned: the connection is the hijacker's.
    Hijacked,
}

/// The model of one connection and its client.
#[derive(Clone, Debug)]
pub struct Model {
    /// Every byte the client sent.
    pub sent: Vec<u8>,
    pipe: VecDeque<u8>,
    half_closed: bool,
    /// The client reset: from here on what reaches the wire, and which write fails first,
    /// depend on buffering the model does not follow; see [`Model::loose`].
    pub reset: bool,
    server_closed: bool,
    buf: Vec<u8>,
    bg: Bg,
    phase: Phase,
    /// What the client must read.
    pub wire: Vec<WireItem>,
    /// Requests whose handler was called.
    pub requests: usize,
    /// Where the hijacker's bytes start in `sent`, once a hijack succeeded.
    pub hijack_cut: Option<usize>,
    /// The request whose handler returned last.
    last_returned: Option<Box<Req>>,
    /// The connection states the state hook must report, in order.
    pub states: Vec<ConnState>,
    /// Background reads started on the connection so far.
    pub background_reads: u64,
}

/// The outcome of a body read.
pub type ReadResult = Result<Vec<u8>, ()>;

fn body_allowed(status: u16) -> bool {
    !(status / 100 == 1 || status == 204 || status == 304)
}

impl Default for Model {
    fn default() -> Self {
        Model {
            sent: Vec::new(),
            pipe: VecDeque::new(),
            half_closed: false,
            reset: false,
            server_closed: false,
            buf: Vec::new(),
            bg: Bg::Off,
            phase: Phase::Head,
            wire: Vec::new(),
            requests: 0,
            hijack_cut: None,
            last_returned: None,
            states: vec![ConnState::New],
            background_reads: 0,
        }
    }
}

/// How a read of the stream by the server ended.
enum Fill {
    Filled,
    Eof,
    Error,
    Block,
}

impl Model {
    /// Bytes sent by the client that the server has not read.
    pub fn pipe_len(&self) -> usize {
        self.pipe.len()
    }

    /// Whether results that depend on the server's write buffering are no longer predicted
    /// (after a client reset).
    pub fn loose(&self) -> bool {
        self.reset
    }

    /// Whether the results of writes and flushes are predicted: always, except a hijacker's
    /// after a reset (whether its write fails depends on the handed-over buffer's capacity).
    pub fn results_predicted(&self) -> bool {
        !(self.reset && self.holds_parts())
    }

    /// Whether the running request's response has a status (so a hijack commits its head).
    pub fn status_set(&self) -> bool {
        matches!(&self.phase, Phase::Handler(r) if r.resp.status_set)
    }

    /// Whether a handler runs and waits for the next operation.
    pub fn handler_runs(&self) -> bool {
        matches!(&self.phase, Phase::Handler(r) if !r.returned)
    }

    /// Whether the handler's writer is still there (no hijack consumed it).
    pub fn writer_present(&self) -> bool {
        matches!(&self.phase, Phase::Handler(r) if !r.writer_gone)
    }

    /// Whether the handler holds the hijacked parts.
    pub fn holds_parts(&self) -> bool {
        matches!(&self.phase, Phase::Handler(r) if r.parts)
    }

    /// The running request's latches: (cancellation, close-notify if subscribed).
    pub fn latches(&self) -> Option<(Option<Fired>, Option<Option<Fired>>)> {
        match &self.phase {
            Phase::Handler(r) => Some((r.cancel, r.subscribed.then_some(r.notify))),
            _ => None,
        }
    }

    /// The final latches of the request whose handler returned last: (cancellation,
    /// close-notify if subscribed).
    pub fn returned_latches(&self) -> Option<(Option<Fired>, Option<Option<Fired>>)> {
        self.last_returned
            .as_ref()
            .map(|r| (r.cancel, r.subscribed.then_some(r.notify)))
    }

    /// Whether the connection is over: closed by the server, or hijacked and returned.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Hijacked)
    }

    fn req(&mut self) -> &mut Req {
        match &mut self.phase {
            Phase::Handler(r) => r,
            _ => unreachable!("no handler runs"),
        }
    }

    // -- the client --------------------------------------------------------------------

    /// The client writes `bytes`. Returns whether the write succeeded.
    pub fn client_send(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> bool {
        if self.reset || self.half_closed || self.server_closed {
            return false;
        }
        self.sent.extend_from_slice(bytes);
        self.pipe.extend(bytes);
        self.run_server(events);
        true
    }

    /// The client shuts down its sending side.
    pub fn client_half_close(&mut self, events: &mut Vec<Event>) {
        self.half_closed = true;
        self.run_server(events);
    }

    /// The client resets the stream: pending bytes in both directions are dropped.
    pub fn client_reset(&mut self, events: &mut Vec<Event>) {
        self.reset = true;
        self.pipe.clear();
        self.run_server(events);
    }

    // -- the server's reads --------------------------------------------------------------

    /// A foreground read into the read buffer (SPEC.md#background-read, foreground read).
    fn fill(&mut self) -> Fill {
        if let Bg::Held(b) = self.bg {
            self.bg = Bg::Off;
            self.buf.push(b);
            return Fill::Filled;
        }
        if self.reset {
            return Fill::Error;
        }
        if !self.pipe.is_empty() {
            let n = self.pipe.len().min(READ_SIZE);
            self.buf.extend(self.pipe.drain(..n));
            return Fill::Filled;
        }
        if self.half_closed || self.server_closed {
            return Fill::Eof;
        }
        Fill::Block
    }

    /// The server reports ClientGone, unless the hijack marked the connection: from the mark
    /// on, nothing the stream does fires anything (SPEC.md#close-notify).
    fn client_gone(req: &mut Req) {
        if !req.hijack_marked {
            req.cancel.get_or_insert(Fired::ClientGone);
            req.notify.get_or_insert(Fired::ClientGone);
        }
    }

    /// Starts the background read if the rules allow it.
    fn start_background_read(&mut self) {
        let Phase::Handler(req) = &self.phase else {
            return;
        };
        if req.returned || req.hijack_marked || self.bg != Bg::Off {
            return;
        }
        self.bg = Bg::Pending;
        self.background_reads += 1;
        self.background_progress();
    }

    /// A pending background read takes a byte, or sees end of stream or an error.
    fn background_progress(&mut self) {
        if self.bg != Bg::Pending {
            return;
        }
        let outcome = if self.reset {
            Fill::Error
        } else if let Some(b) = self.pipe.pop_front() {
            self.bg = Bg::Held(b);
            return;
        } else if self.half_closed {
            Fill::Eof
        } else {
            return;
        };
        let _ = outcome;
        self.bg = Bg::Off;
        if let Phase::Handler(req) = &mut self.phase
            && !req.returned
            && !req.hijack_marked
        {
            Self::client_gone(req);
        }
    }

    /// Advances the serving thread as far as it goes without the handler or the client.
    fn run_server(&mut self, events: &mut Vec<Event>) {
        loop {
            match &mut self.phase {
                Phase::Head => {
                    if !self.buf.is_empty() {
                        // RequestStarted: the first byte of a head is in the read buffer.
                        if self.states.last() != Some(&ConnState::Active) {
                            self.states.push(ConnState::Active);
                        }
                        match parse_head(&self.buf, 1 << 20) {
                            Ok(Some((head, n))) => {
                                self.buf.drain(..n);
                                self.start_request(head, events);
                                return;
                            }
                            Err(v) => {
                                self.wire.push(WireItem::Rejection(v));
                                self.close(events);
                                return;
                            }
                            Ok(None) => {}
                        }
                    }
                    match self.fill() {
                        Fill::Filled => {}
                        Fill::Block => return,
                        Fill::Eof | Fill::Error => {
                            self.close(events);
                            return;
                        }
                    }
                }
                Phase::Handler(_) => {
                    self.background_progress();
                    return;
                }
                Phase::Discard {
                    decoder,
                    keep_alive,
                    seen,
                } => {
                    let (mut decoder, keep_alive, mut seen) = (decoder.clone(), *keep_alive, *seen);
                    let mut scratch = [0u8; 1024];
                    let ended = loop {
                        if seen > max_discard() {
                            break false;
                        }
                        let mut input = BytesMut::from(&self.buf[..]);
                        let result = decoder.decode(&mut input, &mut scratch);
                        let used = self.buf.len() - input.len();
                        self.buf.drain(..used);
                        match result {
                            Ok(Decoded::Data(n)) => seen += n as u64,
                            Ok(Decoded::End) => break true,
                            Ok(Decoded::NeedMore) => match self.fill() {
                                Fill::Filled => {}
                                Fill::Block => {
                                    self.phase = Phase::Discard {
                                        decoder,
                                        keep_alive,
                                        seen,
                                    };
                                    return;
                                }
                                Fill::Eof | Fill::Error => break false,
                            },
                            Err(_) => break false,
                        }
                    };
                    if ended && keep_alive {
                        self.states.push(ConnState::Idle);
                        self.phase = Phase::Head;
                    } else {
                        self.close(events);
                        return;
                    }
                }
                Phase::Closed | Phase::Hijacked => return,
            }
        }
    }

    fn close(&mut self, events: &mut Vec<Event>) {
        self.states.push(ConnState::Closed);
        self.phase = Phase::Closed;
        self.server_closed = true;
        self.pipe.clear();
        events.push(Event::ServerDone);
    }

    fn start_request(&mut self, head: RequestHead, events: &mut Vec<Event>) {
        self.requests += 1;
        events.push(Event::Started(head.target.clone()));
        let body = head.body;
        let resp = Resp {
            status_set: false,
            status: 200,
            framing: Framing::Uncommitted,
            held: Vec::new(),
            head: None,
            body_wire: Vec::new(),
            continue_expected: head.expect_continue && body != BodyKind::Empty,
            continue_sent: false,
            continue_cancelled: false,
            close_after: !head.keep_alive,
            buffered: 0,
            broken: false,
        };
        self.phase = Phase::Handler(Box::new(Req {
            decoder: BodyDecoder::new(body),
            body_ended: body == BodyKind::Empty,
            framing_error: false,
            head,
            resp,
            writer_gone: false,
            hijack_marked: false,
            parts: false,
            cut: 0,
            hijacker: Vec::new(),
            cancel: None,
            notify: None,
            subscribed: false,
            returned: false,
        }));
        if body == BodyKind::Empty {
            self.start_background_read();
        }
    }

    /// One body read through the decoder, as `read_body_locked` does. `send_continue`: the
    /// handler's reads send `100 Continue` when they need the stream.
    fn read_body_once(&mut self, out_len: usize) -> Result<ReadResult, Blocked> {
        let mut out = vec![0u8; out_len];
        loop {
            let req = self.req();
            if req.framing_error || req.parts {
                return Ok(Err(()));
            }
            let mut input = BytesMut::from(&self.buf[..]);
            let result = self.req().decoder.decode(&mut input, &mut out);
            let used = self.buf.len() - input.len();
            self.buf.drain(..used);
            match result {
                Ok(Decoded::Data(n)) => return Ok(Ok(out[..n].to_vec())),
                Ok(Decoded::End) => {
                    if !self.req().body_ended {
                        self.req().body_ended = true;
                        self.start_background_read();
                    }
                    return Ok(Ok(Vec::new()));
                }
                Ok(Decoded::NeedMore) => {
                    self.send_continue();
                    match self.fill() {
                        Fill::Filled => {}
                        Fill::Block => return Err(Blocked),
                        Fill::Eof => {
                            let req = self.req();
                            req.framing_error = true;
                            Self::client_gone(req);
                            return Ok(Err(()));
                        }
                        Fill::Error => {
                            Self::client_gone(self.req());
                            return Ok(Err(()));
                        }
                    }
                }
                Err(_) => {
                    self.req().framing_error = true;
                    return Ok(Err(()));
                }
            }
        }
    }

    fn send_continue(&mut self) {
        let r = &mut self.req().resp;
        if r.continue_expected && !r.continue_sent && !r.continue_cancelled && !r.status_set {
            r.continue_sent = true;
            r.buffered += b"HTTP/1.1 100 Continue\r\n\r\n".len();
            self.wire.push(WireItem::Continue);
            let reset = self.reset;
            Self::flush_wire(self.req(), reset);
        }
    }

    // -- the handler -----------------------------------------------------------------------

    /// The handler reads at most `n` body bytes.
    pub fn read_body(&mut self, n: usize) -> Result<ReadResult, Blocked> {
        let mut next = self.clone();
        let result = next.read_body_once(n)?;
        *self = next;
        Ok(result)
    }

    fn write_header(resp: &mut Resp, status: u16) {
        if !resp.status_set {
            resp.status_set = true;
            resp.status = status;
            resp.continue_cancelled = true;
        }
    }

    /// The handler sets a status.
    pub fn status(&mut self, status: u16) {
        Self::write_header(&mut self.req().resp, status);
    }

    /// Writes the write buffer to the stream. A failed write (after a reset) marks the
    /// connection to close and, while the handler runs, cancels the request.
    fn flush_wire(req: &mut Req, reset: bool) -> bool {
        let r = &mut req.resp;
        if r.buffered == 0 {
            return true;
        }
        r.buffered = 0;
        if reset {
            r.broken = true;
            r.close_after = true;
            if !req.returned {
                req.cancel.get_or_insert(Fired::ClientGone);
            }
            return false;
        }
        true
    }

    /// The handler writes `data` as body (or, holding the parts, to the hijacked stream).
    /// Returns whether the write succeeded.
    pub fn write(&mut self, data: &[u8]) -> bool {
        let reset = self.reset;
        let req = self.req();
        if req.parts {
            // The hijacker's own writes: they fail only after a reset, and then depend on the
            // handed-over buffer's capacity (see `results_predicted`).
            req.hijacker.extend_from_slice(data);
            return true;
        }
        let (is_head, version) = (req.head.method == Method::HEAD, req.head.version);
        let r = &mut req.resp;
        Self::write_header(r, 200);
        if !body_allowed(r.status) {
            return false;
        }
        if r.framing == Framing::Uncommitted {
            r.held.extend_from_slice(data);
            if r.held.len() <= BODY_HOLD {
                return true;
            }
            Self::commit(r, is_head, version, false, false);
            Self::move_held(r, is_head);
        } else if !is_head {
            Self::frame(r, data, is_head);
        }
        if r.buffered >= WRITE_BUFFER {
            return Self::flush_wire(req, reset);
        }
        true
    }

    /// The handler flushes. Returns whether the flush succeeded.
    pub fn flush(&mut self) -> bool {
        let reset = self.reset;
        let req = self.req();
        if req.parts {
            return true;
        }
        let (is_head, version) = (req.head.method == Method::HEAD, req.head.version);
        let r = &mut req.resp;
        Self::write_header(r, 200);
        if r.framing == Framing::Uncommitted {
            Self::commit(r, is_head, version, false, false);
        }
        Self::move_held(r, is_head);
        Self::flush_wire(req, reset)
    }

    /// The handler subscribes to close-notify.
    pub fn subscribe(&mut self) {
        self.req().subscribed = true;
    }

    /// Commits the head (SPEC.md#serving-loop, response framing). `content_type`: the
    /// replacement 400 of a failed body carries one.
    fn commit(
        r: &mut Resp,
        is_head: bool,
        version: Version,
        handler_done: bool,
        content_type: bool,
    ) {
        r.framing = if !body_allowed(r.status) {
            Framing::NoBody
        } else if handler_done && (!is_head || !r.held.is_empty()) {
            Framing::Length(r.held.len() as u64)
        } else if is_head {
            Framing::NoBody
        } else if version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            Framing::CloseDelimited
        };
        if r.framing == Framing::CloseDelimited {
            r.close_after = true;
        }
        let upgrade = r.status == 101;
        let connection = if version == Version::HTTP_10 && !r.close_after && !upgrade {
            Some("keep-alive")
        } else if r.close_after && !upgrade {
            Some("close")
        } else {
            None
        };
        r.head = Some(HeadInfo {
            version,
            status: r.status,
            framing: r.framing,
            connection,
        });
        // The head's bytes: status line, fields, blank line.
        let reason = http::StatusCode::from_u16(r.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let field = |name: &str, value: &str| name.len() + 2 + value.len() + 2;
        let mut len = "HTTP/1.1 200 ".len() + reason.len() + 2 + field("date", &"x".repeat(29)) + 2;
        match r.framing {
            Framing::Length(n) => len += field("content-length", &n.to_string()),
            Framing::Chunked => len += field("transfer-encoding", "chunked"),
            _ => {}
        }
        if let Some(c) = connection {
            len += field("connection", c);
        }
        if content_type {
            len += field("content-type", "text/plain; charset=utf-8");
        }
        r.buffered += len;
    }

    fn frame(r: &mut Resp, data: &[u8], is_head: bool) {
        if data.is_empty() || is_head {
            return;
        }
        match r.framing {
            Framing::Chunked => {
                let size = format!("{:x}\r\n", data.len());
                r.buffered += size.len() + data.len() + 2;
                r.body_wire.extend_from_slice(size.as_bytes());
                r.body_wire.extend_from_slice(data);
                r.body_wire.extend_from_slice(b"\r\n");
            }
            Framing::Length(left) => {
                let n = data.len().min(left as usize);
                r.buffered += n;
                r.body_wire.extend_from_slice(&data[..n]);
                r.framing = Framing::Length(left - n as u64);
            }
            Framing::CloseDelimited => {
                r.buffered += data.len();
                r.body_wire.extend_from_slice(data);
            }
            Framing::NoBody | Framing::Uncommitted => {}
        }
    }

    fn move_held(r: &mut Resp, is_head: bool) {
        let held = std::mem::take(&mut r.held);
        Self::frame(r, &held, is_head);
    }

    /// The handler hijacks (writing `101 Switching Protocols` first if `upgrade`).
    /// `Ok(Ok(buffered))`: the handover; `Ok(Err(()))`: the hijack failed.
    pub fn hijack(&mut self, upgrade: bool) -> Result<Result<Vec<u8>, ()>, Blocked> {
        let mut next = self.clone();
        let result = next.hijack_inner(upgrade)?;
        *self = next;
        Ok(result)
    }

    fn hijack_inner(&mut self, upgrade: bool) -> Result<Result<Vec<u8>, ()>, Blocked> {
        let req = self.req();
        if upgrade {
            Self::write_header(&mut req.resp, 101);
        }
        req.resp.continue_cancelled = true;
        let status_set = req.resp.status_set;
        let continue_unsent = req.resp.continue_expected && !req.resp.continue_sent;
        req.writer_gone = true;
        // The mark comes before the abort: nothing the stream reports fires from here on.
        req.hijack_marked = true;
        // The abort: a pending read ends; a byte it caught stays held, and the body discard
        // below reads it first, as it is next in wire order (SPEC.md#hijack-handover).
        if self.bg == Bg::Pending {
            self.bg = Bg::Off;
        }
        let req = self.req();
        if status_set && !continue_unsent && !req.body_ended {
            let mut scratch = [0u8; 1024];
            let mut seen = 0u64;
            let ended = loop {
                if self.req().framing_error || seen > max_discard() {
                    break false;
                }
                let mut input = BytesMut::from(&self.buf[..]);
                let result = self.req().decoder.decode(&mut input, &mut scratch);
                let used = self.buf.len() - input.len();
                self.buf.drain(..used);
                match result {
                    Ok(Decoded::Data(n)) => seen += n as u64,
                    Ok(Decoded::End) => break true,
                    Ok(Decoded::NeedMore) => match self.fill() {
                        Fill::Filled => {}
                        Fill::Block => return Err(Blocked),
                        Fill::Eof => {
                            let req = self.req();
                            req.framing_error = true;
                            Self::client_gone(req);
                            break false;
                        }
                        Fill::Error => {
                            Self::client_gone(self.req());
                            break false;
                        }
                    },
                    Err(_) => {
                        self.req().framing_error = true;
                        break false;
                    }
                }
            };
            let req = self.req();
            if !ended {
                req.resp.status = 500;
                req.resp.close_after = true;
                return Ok(Err(()));
            }
            req.body_ended = true;
        }
        let reset = self.reset;
        let req = self.req();
        let (is_head, version) = (req.head.method == Method::HEAD, req.head.version);
        if status_set {
            let r = &mut req.resp;
            if r.framing == Framing::Uncommitted {
                Self::commit(r, is_head, version, false, false);
            }
            Self::move_held(r, is_head);
            if !Self::flush_wire(req, reset) {
                // The flush failed: the connection stays the server's and closes.
                return Ok(Err(()));
            }
        }
        let background_byte = match std::mem::replace(&mut self.bg, Bg::Off) {
            Bg::Held(b) => Some(b),
            Bg::Pending | Bg::Off => None,
        };
        let mut buffered = std::mem::take(&mut self.buf);
        buffered.extend(background_byte);
        let cut = self.sent.len() - self.pipe.len() - buffered.len();
        let req = self.req();
        req.parts = true;
        req.cut = cut;
        self.states.push(ConnState::Hijacked);
        self.hijack_cut = Some(cut);
        Ok(Ok(buffered))
    }

    /// The handler returns (`panicked`: by panicking). Fires the latches, then the serving
    /// loop goes on as far as it can.
    pub fn handler_return(&mut self, panicked: bool, events: &mut Vec<Event>) {
        let mut req = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Handler(req) => req,
            other => {
                self.phase = other;
                return;
            }
        };
        req.returned = true;
        // Release: the latches reach their terminal state.
        req.cancel.get_or_insert(Fired::HandlerDone);
        req.notify.get_or_insert(Fired::HandlerDone);
        let is_head = req.head.method == Method::HEAD;
        if req.parts {
            self.wire.push(WireItem::Hijacked {
                head: req.resp.head.clone(),
                body_wire: req.resp.body_wire.clone(),
                hijacker: req.hijacker.clone(),
            });
            self.phase = Phase::Hijacked;
            self.last_returned = Some(req);
            events.push(Event::ServerDone);
            return;
        }
        if panicked {
            self.wire.push(WireItem::Partial {
                head: req.resp.head.clone(),
                body_wire: req.resp.body_wire.clone(),
            });
            if self.bg == Bg::Pending {
                self.bg = Bg::Off;
            }
            self.last_returned = Some(req);
            self.close(events);
            return;
        }
        // Finish the response.
        let version = req.head.version;
        let framing_error = req.framing_error;
        let r = &mut req.resp;
        r.continue_cancelled = true;
        let continue_unsent = r.continue_expected && !r.continue_sent;
        if continue_unsent {
            r.close_after = true;
        }
        if framing_error && r.framing == Framing::Uncommitted {
            r.status = 400;
            r.status_set = true;
            r.held = b"400 Bad Request".to_vec();
            r.close_after = true;
        }
        if framing_error {
            r.close_after = true;
        }
        if r.framing == Framing::Uncommitted {
            Self::commit(r, is_head, version, true, framing_error);
        }
        Self::move_held(r, is_head);
        if r.framing == Framing::Chunked {
            r.buffered += 5;
            r.body_wire.extend_from_slice(b"0\r\n\r\n");
        }
        if matches!(r.framing, Framing::Length(left) if left > 0 && !is_head)
            || r.framing == Framing::CloseDelimited
        {
            r.close_after = true;
        }
        let flushed = Self::flush_wire(&mut req, self.reset);
        let r = &req.resp;
        let keep_alive = flushed && !r.close_after && !r.broken;
        self.wire.push(WireItem::Response {
            head: r.head.clone().expect("committed"),
            is_head,
            body_wire: r.body_wire.clone(),
        });
        // Abort the background read: a byte it took stays held, one it did not stays sent.
        if self.bg == Bg::Pending {
            self.bg = Bg::Off;
        }
        let body_ended = req.body_ended;
        let decoder = req.decoder.clone();
        self.last_returned = Some(req);
        self.phase = if framing_error {
            // A failed body stays failed: the discard fails at once.
            self.close(events);
            return;
        } else if body_ended {
            if keep_alive {
                self.states.push(ConnState::Idle);
                Phase::Head
            } else {
                self.close(events);
                return;
            }
        } else if continue_unsent {
            self.close(events);
            return;
        } else {
            Phase::Discard {
                decoder,
                keep_alive,
                seen: 0,
            }
        };
        self.run_server(events);
    }
}
