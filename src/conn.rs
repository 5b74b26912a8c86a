//! One connection as the server serves it: the serving loop, request bodies and the write
//! path (SPEC.md#serving-loop). The hijack handover itself is in [`crate::response`]; the
//! background read in [`crate::conn_reader`].
//!
//! A [`Conn`] is shared by reference with the handler's [`Request`] and [`ResponseWriter`]
//! for the length of one handler call, and by `Arc` with a pending background read, nothing
//! else. Lock order: read side, then write side, then transport, then connection reader.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};

use crate::conn_reader::ConnReader;
use crate::expect::Continue;
use crate::parse::{BodyDecoder, BodyKind, Decoded, PartialHead, RequestHead, Verdict, parse_head};
use crate::request::{BodySource, Request};
use crate::response::ResponseWriter;
use crate::signal::Watch;
use crate::state::{ConnEvent, ConnState};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex, RwLock, Weak};
use crate::transport::Transport;
use crate::{Handler, ServerConfig};

/// Bytes read from the stream per fill of the read buffer; also its initial capacity.
pub(crate) const READ_CHUNK: usize = 4096;
/// The connection's write buffer: wire bytes are written to the stream past this size.
pub(crate) const WRITE_BUF: usize = 4096;
/// Body bytes held back before the response head is committed, so that a short response
/// gets a Content-Length (Go's `bufferBeforeChunkingSize`).
pub(crate) const BODY_HOLD: usize = 2048;

/// Read buffers of connections that ended, reused by new ones, as Go pools its `bufio.Reader`s:
/// serving a connection then costs no read-buffer allocation, and a hijacked connection keeps
/// none (the handover copies out the bytes nobody consumed). At most [`read_buffers::KEPT`]
/// idle buffers are kept. Loom models allocate fresh ones: a process-wide pool is not state
/// they model.
pub(crate) mod read_buffers {
    use bytes::BytesMut;

    use super::READ_CHUNK;

    /// Idle buffers kept at most: 256 KiB.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const KEPT: usize = 64;

    #[cfg(not(loom))]
    static FREE: std::sync::Mutex<Vec<BytesMut>> = std::sync::Mutex::new(Vec::new());

    /// An empty read buffer of [`READ_CHUNK`] bytes' capacity.
    pub(crate) fn take() -> BytesMut {
        #[cfg(not(loom))]
        if let Some(buf) = FREE.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return buf;
        }
        BytesMut::with_capacity(READ_CHUNK)
    }

    /// Heap bytes held by idle buffers: leak checks count them as the pool's, not a leak.
    pub(crate) fn idle_bytes() -> usize {
        #[cfg(not(loom))]
        return FREE.lock().unwrap_or_else(|p| p.into_inner()).len() * READ_CHUNK;
        #[cfg(loom)]
        0
    }

    /// Returns a connection's read buffer. One that grew (a head that took more than one
    /// read) is freed and a buffer of the pooled size takes its place, so that the pool
    /// holds what it held before the connection took from it.
    pub(crate) fn give_back(mut buf: BytesMut) {
        buf.clear();
        // Reclaims the room `advance` left before the start; allocates nothing.
        buf.reserve(READ_CHUNK);
        if buf.capacity() != READ_CHUNK {
            buf = BytesMut::with_capacity(READ_CHUNK);
        }
        #[cfg(not(loom))]
        {
            let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
            if free.len() < KEPT {
                free.push(buf);
            }
        }
    }
}

/// The error a read of the request body gives after the connection was hijacked (Go's
/// `ErrHijacked`): the body steals nothing from the hijacker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hijacked;

impl std::fmt::Display for Hijacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection has been hijacked")
    }
}

impl std::error::Error for Hijacked {}

pub(crate) fn hijacked_error() -> io::Error {
    io::Error::other(Hijacked)
}

/// The read side: bytes read ahead and the current request's body framing.
#[derive(Debug)]
pub(crate) struct ReadSide {
    /// Bytes read from the stream that nobody consumed yet, in wire order.
    pub(crate) buf: BytesMut,
    pub(crate) body: BodyDecoder,
    /// The body reached its end (and the background read was started once).
    pub(crate) body_ended: bool,
    /// A framing error made the body fail: the connection closes after the response.
    pub(crate) framing_error: Option<Verdict>,
}

/// The response being written: its framing once the head is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// The head is not on the wire yet.
    Uncommitted,
    /// No body may follow (HEAD, 1xx, 204, 304).
    NoBody,
    /// Exactly this many body bytes are left.
    Length(u64),
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 without a length).
    CloseDelimited,
}

/// The write side: the connection's write buffer and the response state.
#[derive(Debug)]
pub(crate) struct WriteSide {
    /// Wire bytes not yet written to the stream: the connection's write buffer.
    pub(crate) buf: BytesMut,
    /// Body bytes written before the head was committed.
    held: BytesMut,
    framing: Framing,
    /// `write_header` was called (Go's `wroteHeader`).
    pub(crate) status_set: bool,
    pub(crate) status: StatusCode,
    /// Headers handed over by the writer when the handler dropped it.
    pub(crate) final_headers: Option<HeaderMap>,
    /// The request's `100 Continue`.
    pub(crate) expect: Continue,
    is_head: bool,
    version: Version,
    /// The connection closes after this response.
    pub(crate) close_after: bool,
    /// A write to the stream failed.
    pub(crate) broken: bool,
}

/// One served connection. See the module docs.
pub(crate) struct Conn<T: Transport> {
    /// The stream; `None` once handed to a hijacker (from [`Hijack::HandedOver`] on, which
    /// the connection reader records).
    ///
    /// [`Hijack::HandedOver`]: crate::conn_reader::Hijack::HandedOver
    pub(crate) transport: RwLock<Option<T>>,
    /// Shared with a pending background read's completion, which holds nothing else of the
    /// connection: a completing read never keeps the connection alive.
    pub(crate) reader: Arc<ConnReader>,
    pub(crate) read: Mutex<ReadSide>,
    pub(crate) write: Mutex<WriteSide>,
    lifecycle: Mutex<ConnState>,
    pub(crate) config: ServerConfig,
    /// Set when the server shuts down: no further request is read.
    shutting_down: Arc<AtomicBool>,
    /// This connection, for starting background reads from a `&Conn`.
    me: Weak<Conn<T>>,
    id: u64,
}

impl<T: Transport> Conn<T> {
    pub(crate) fn new(
        transport: T,
        config: ServerConfig,
        id: u64,
        shutting_down: Arc<AtomicBool>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Conn {
            transport: RwLock::new(Some(transport)),
            reader: Arc::new(ConnReader::new()),
            read: Mutex::new(ReadSide {
                buf: read_buffers::take(),
                body: BodyDecoder::new(BodyKind::Empty),
                body_ended: true,
                framing_error: None,
            }),
            write: Mutex::new(WriteSide {
                buf: BytesMut::new(),
                held: BytesMut::new(),
                framing: Framing::Uncommitted,
                status_set: false,
                status: StatusCode::OK,
                final_headers: None,
                expect: Continue::NotExpected,
                is_head: false,
                version: Version::HTTP_11,
                close_after: false,
                broken: false,
            }),
            lifecycle: Mutex::new(ConnState::New),
            config,
            shutting_down,
            me: me.clone(),
            id,
        })
    }

    /// Moves the lifecycle through `event` and reports the new state to the hook.
    pub(crate) fn transition(&self, event: ConnEvent) {
        let mut state = self.lifecycle.lock();
        match state.next(event) {
            Ok(next) => {
                *state = next;
                drop(state);
                if let Some(hook) = &self.config.on_state {
                    hook(self.id, next);
                }
            }
            Err(e) => tracing::error!(conn = self.id, error = %e, "invalid connection transition"),
        }
    }

    /// Reports the initial state to the hook.
    pub(crate) fn transition_new(&self) {
        if let Some(hook) = &self.config.on_state {
            hook(self.id, ConnState::New);
        }
    }

    /// A weak reference to this connection.
    pub(crate) fn me(&self) -> Weak<Conn<T>> {
        self.me.clone()
    }

    /// Closes the stream if the connection is idle (server shutdown).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn close_if_idle(&self) {
        let state = *self.lifecycle.lock();
        if matches!(state, ConnState::Idle | ConnState::New)
            && let Some(t) = self.transport.read().as_ref()
        {
            t.shutdown();
        }
    }

    /// Starts the background read; its completion holds only the connection reader.
    pub(crate) fn start_background_read(&self) {
        let guard = self.transport.read();
        let Some(t) = guard.as_ref() else { return };
        let reader = self.reader.clone();
        let done = move |outcome| reader.complete(outcome);

        if let Err(e) = self.reader.start_background_read(t, done) {
            tracing::error!(conn = self.id, error = %e, "background read not started");
        }
    }

    /// Aborts a pending background read (response finished, or connection closing).
    fn abort_background_read(&self) {
        if let Some(t) = self.transport.read().as_ref() {
            self.reader.abort(t);
        }
    }

    /// Reads more bytes from the stream into the read buffer.
    fn fill(&self, side: &mut ReadSide) -> io::Result<usize> {
        let guard = self.transport.read();
        let t = guard.as_ref().ok_or_else(hijacked_error)?;
        let len = side.buf.len();
        // Every read asks for READ_CHUNK bytes (SPEC.md#parts, `ReadSide`): how far the server
        // reads ahead decides which bytes are buffered at a hijack, so it must not depend on
        // the buffer's capacity. `resize` reuses the space `advance` left before the start.
        side.buf.resize(len + READ_CHUNK, 0);
        let result = self.reader.read(t, &mut side.buf[len..]);
        side.buf.truncate(len + *result.as_ref().unwrap_or(&0));
        result
    }

    fn set_read_deadline(&self, timeout: Option<Duration>) {
        if let Some(t) = self.transport.read().as_ref() {
            let _ = t.set_read_deadline(timeout.map(|d| Instant::now() + d));
        }
    }

    /// Reads the next request head. `Ok(None)`: the client closed between requests.
    fn read_head(&self) -> Result<Option<RequestHead>, HeadError> {
        let mut side = self.read.lock();
        let mut started = false;
        // Linear in the head's length however it is split (see `PartialHead`).
        let mut partial = PartialHead::default();
        if side.buf.is_empty() {
            self.set_read_deadline(self.config.idle_timeout);
        }
        loop {
            if !side.buf.is_empty() {
                if !started {
                    started = true;
                    self.transition(ConnEvent::RequestStarted);
                    self.set_read_deadline(self.config.read_header_timeout);
                }
                // Parsed again only when the new bytes could decide something.
                if !partial.still_partial(&side.buf, self.config.max_head_bytes) {
                    match parse_head(&side.buf, self.config.max_head_bytes) {
                        Ok(Some((head, len))) => {
                            // `advance`, not `split_to`: no shared representation to allocate.
                            side.buf.advance(len);
                            self.set_read_deadline(None);
                            return Ok(Some(head));
                        }
                        Ok(None) => partial = PartialHead::after(&side.buf),
                        Err(verdict) => return Err(HeadError::Bad(verdict)),
                    }
                }
            }
            match self.fill(&mut side) {
                Ok(0) if side.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) => return Err(HeadError::Io(e)),
            }
        }
    }

    /// Sends `100 Continue` if the request armed it and no response was started.
    fn send_continue(&self) {
        let mut w = self.write.lock();
        if !w.status_set && w.expect.send() {
            w.buf.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let _ = self.flush_wire(&mut w);
        }
    }

    /// Writes the write buffer to the stream.
    pub(crate) fn flush_wire(&self, w: &mut WriteSide) -> io::Result<()> {
        if w.buf.is_empty() {
            return Ok(());
        }
        let guard = self.transport.read();
        let t = guard.as_ref().ok_or_else(hijacked_error)?;
        let mut at = 0;
        let result = loop {
            if at == w.buf.len() {
                break Ok(());
            }
            match t.write(&w.buf[at..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        w.buf.clear();
        if result.is_err() {
            w.broken = true;
            w.close_after = true;
            self.reader.write_failed();
        }
        result
    }

    /// Reads and drops the rest of the request body, at most `limit` bytes.
    /// Returns whether the body ended within the limit.
    pub(crate) fn discard_body(&self, side: &mut ReadSide, limit: u64) -> bool {
        let mut scratch = [0u8; 1024];
        let mut seen = 0u64;
        while seen <= limit {
            match self.read_body_locked(side, &mut scratch) {
                Ok(0) => return true,
                Ok(n) => seen += n as u64,
                Err(_) => return false,
            }
        }
        false
    }

    fn read_body_locked(&self, side: &mut ReadSide, out: &mut [u8]) -> io::Result<usize> {
        if self.reader.handed_over() {
            return Err(hijacked_error());
        }
        // A failed body stays failed: decoding on past a framing error would read garbage
        // as framing, and could wait for a chunk that never comes.
        if let Some(verdict) = side.framing_error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, verdict));
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let ReadSide { buf, body, .. } = side;
            match body.decode(buf, out) {
                Ok(Decoded::Data(n)) => return Ok(n),
                Ok(Decoded::End) => {
                    if !side.body_ended || cfg!(hijack_mutant = "double_background_read") {
                        side.body_ended = true;
                        //= SPEC.md#background-read
                        //# The background read MUST start only once the request body has been
                        //# read to its end (or the request has none) while the handler runs.
                        self.start_background_read();
                    }
                    return Ok(0);
                }
                Ok(Decoded::NeedMore) => {
                    self.send_continue();
                    match self.fill(side) {
                        Ok(0) => {
                            side.framing_error = Some(Verdict::BadRequest("body cut short"));
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(verdict) => {
                    side.framing_error = Some(verdict);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, verdict));
                }
            }
        }
    }

    /// Serves requests until the connection closes or is hijacked.
    pub(crate) fn serve<H: Handler<T>>(self: Arc<Self>, handler: &H) {
        loop {
            let head = match self.read_head() {
                Ok(Some(head)) => head,
                Ok(None) => return self.close(),
                Err(HeadError::Bad(verdict)) => {
                    tracing::debug!(conn = self.id, %verdict, "bad request");
                    self.reject(verdict);
                    return self.close();
                }
                Err(HeadError::Io(e)) => {
                    tracing::debug!(conn = self.id, error = %e, "reading request head");
                    return self.close();
                }
            };
            if !self.serve_one(head, handler) {
                return;
            }
        }
    }

    /// Runs the handler for one request. Returns whether to read another.
    fn serve_one<H: Handler<T>>(&self, head: RequestHead, handler: &H) -> bool {
        let watch = Watch::default();
        let body_kind = head.body;
        {
            let mut side = self.read.lock();
            side.body = BodyDecoder::new(body_kind);
            side.body_ended = false;
            side.framing_error = None;
        }
        {
            let mut w = self.write.lock();
            w.framing = Framing::Uncommitted;
            w.status_set = false;
            w.status = StatusCode::OK;
            w.final_headers = None;
            w.expect = Continue::for_request(head.expect_continue, body_kind != BodyKind::Empty);
            w.is_head = head.method == Method::HEAD;
            w.version = head.version;
            w.close_after = !head.keep_alive || self.shutting_down.load(Ordering::Acquire);
        }
        self.reader.watch(watch.clone());
        if body_kind == BodyKind::Empty {
            self.read.lock().body_ended = true;
            self.start_background_read();
        }
        let request = Request::new(head, self as &dyn BodySource, watch.cancel.clone());
        let writer = ResponseWriter::new(self, watch.close_notify.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| handler.serve(request, writer)));
        //= SPEC.md#release
        //# When the handler returns, the connection reader MUST drop every reference to the
        //# request's and response's state, and the close-notify handle MUST reach its terminal
        //# state.
        self.reader.release();
        //= SPEC.md#hijack-handover
        //# After a hijack the server MUST NOT read, write or close the stream, even if the
        //# handler panics.
        if self.reader.handed_over() {
            return false;
        }
        if let Err(panic) = outcome {
            if cfg!(loom) {
                // A loom model failing inside a handler: let loom report it.
                std::panic::resume_unwind(panic);
            }
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(conn = self.id, panic = %what, "handler panicked; closing connection");
            self.abort_background_read();
            self.close();
            return false;
        }
        let keep_alive = self.finish_response();
        self.abort_background_read();
        let body_done = {
            let mut side = self.read.lock();
            let continue_unsent = self.write.lock().expect.unsent();
            side.body_ended
                || (!continue_unsent && self.discard_body(&mut side, self.config.max_discard_bytes))
        };
        if !keep_alive || !body_done || self.shutting_down.load(Ordering::Acquire) {
            self.close();
            return false;
        }
        self.transition(ConnEvent::ResponseDone);
        true
    }

    /// Writes what is left of the response after the handler returned. Returns whether the
    /// connection may serve another request.
    fn finish_response(&self) -> bool {
        let framing_error = self.read.lock().framing_error;
        let mut w = self.write.lock();
        w.expect.cancel();
        if w.expect.unsent() {
            //= SPEC.md#serving-loop
            //# If no 100 Continue was sent, the server MUST NOT read the request body after
            //# the handler returns and MUST close the connection after the response.
            w.close_after = true;
        }
        let mut headers = w.final_headers.take().unwrap_or_default();
        if let (Some(verdict), Framing::Uncommitted) = (framing_error, w.framing) {
            w.status = verdict.status();
            w.status_set = true;
            w.held.clear();
            w.close_after = true;
            headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            w.held.put_slice(verdict.status().to_string().as_bytes());
        }
        if framing_error.is_some() {
            w.close_after = true;
        }
        if w.framing == Framing::Uncommitted {
            w.commit_head(&headers, true);
        }
        w.move_held();
        match w.framing {
            Framing::Chunked => w.buf.put_slice(b"0\r\n\r\n"),
            Framing::Length(left) if left > 0 && !w.is_head => w.close_after = true,
            Framing::CloseDelimited => w.close_after = true,
            _ => {}
        }
        let flushed = self.flush_wire(&mut w).is_ok();
        flushed && !w.close_after && !w.broken
    }

    /// Answers a head that never became a request, then the connection closes.
    fn reject(&self, verdict: Verdict) {
        let status = verdict.status();
        let body = format!("{status}: {}", verdict.reason());
        let mut w = self.write.lock();
        w.buf.put_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                body.len()
            )
            .as_bytes(),
        );
        let _ = self.flush_wire(&mut w);
    }

    /// The server is done with the connection.
    fn close(&self) {
        if let Some(t) = self.transport.read().as_ref() {
            t.close();
        }
        self.transition(ConnEvent::Close);
    }

    /// Signals shutdown to the running handler's cancellation.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn cancel_for_shutdown(&self) {
        self.reader.cancel(crate::Fired::Shutdown);
    }
}

impl<T: Transport> Drop for Conn<T> {
    fn drop(&mut self) {
        read_buffers::give_back(std::mem::take(&mut self.read.lock().buf));
    }
}

impl<T: Transport> BodySource for Conn<T> {
    fn read_body(&self, out: &mut [u8]) -> io::Result<usize> {
        let mut side = self.read.lock();
        self.read_body_locked(&mut side, out)
    }
}

enum HeadError {
    Bad(Verdict),
    Io(io::Error),
}

/// The Content-Length the handler set, if it is a valid number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

impl WriteSide {
    /// Commits the response head to the write buffer and fixes the body framing.
    /// `handler_done`: the handler returned, so the held bytes are the whole body.
    pub(crate) fn commit_head(&mut self, headers: &HeaderMap, handler_done: bool) {
        let status = self.status;
        let mut headers = headers.clone();
        let declared = declared_length(&headers);
        if declared.is_none() && headers.remove(header::CONTENT_LENGTH).is_some() {
            tracing::warn!("handler set an invalid Content-Length; ignored");
        }
        self.framing = if !body_allowed(status) {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::TRANSFER_ENCODING);
            Framing::NoBody
        } else if let Some(n) = declared {
            headers.remove(header::TRANSFER_ENCODING);
            Framing::Length(n)
        } else if handler_done && (!self.is_head || !self.held.is_empty()) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.held.len()));
            Framing::Length(self.held.len() as u64)
        } else if self.is_head {
            Framing::NoBody
        } else if self.version == Version::HTTP_11 {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Framing::Chunked
        } else {
            Framing::CloseDelimited
        };
        if self.framing == Framing::CloseDelimited {
            self.close_after = true;
        }
        let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
        if self.version == Version::HTTP_10 && !self.close_after && !upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        } else if self.close_after && !upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !headers.contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            if let Ok(date) = HeaderValue::from_str(&date) {
                headers.insert(header::DATE, date);
            }
        }
        let version = if self.version == Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let buf = &mut self.buf;
        // One allocation for the whole head rather than a doubling per line.
        let fields: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        buf.reserve(32 + fields + 2);
        buf.put_slice(version.as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        buf.put_slice(b"\r\n");
        for (name, value) in &headers {
            buf.put_slice(name.as_str().as_bytes());
            buf.put_slice(b": ");
            buf.put_slice(value.as_bytes());
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b"\r\n");
    }

    /// Commits the head (not final: the body may go on) and moves held bytes behind it.
    pub(crate) fn commit_if_needed(&mut self, headers: &HeaderMap) {
        if self.framing == Framing::Uncommitted {
            self.commit_head(headers, false);
        }
        self.move_held();
    }

    /// Frames `data` as body bytes into the write buffer (head already committed).
    fn frame(&mut self, data: &[u8]) {
        if data.is_empty() || self.is_head {
            return;
        }
        match self.framing {
            Framing::Chunked => {
                self.buf
                    .put_slice(format!("{:x}\r\n", data.len()).as_bytes());
                self.buf.put_slice(data);
                self.buf.put_slice(b"\r\n");
            }
            Framing::Length(left) => {
                let n = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.buf.put_slice(&data[..n]);
                self.framing = Framing::Length(left - n as u64);
            }
            Framing::CloseDelimited => self.buf.put_slice(data),
            Framing::NoBody | Framing::Uncommitted => {}
        }
    }

    /// Moves held body bytes behind the committed head.
    pub(crate) fn move_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.frame(&held);
        self.held = held;
        self.held.clear();
    }

    /// Buffers body bytes. Returns whether the write buffer should go to the stream now.
    pub(crate) fn write_body(&mut self, headers: &HeaderMap, data: &[u8]) -> io::Result<bool> {
        if !body_allowed(self.status) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "status does not allow a body",
            ));
        }
        let left = match self.framing {
            Framing::Length(left) => Some(left),
            Framing::Uncommitted => {
                declared_length(headers).map(|n| n.saturating_sub(self.held.len() as u64))
            }
            _ => None,
        };
        if let Some(left) = left
            && data.len() as u64 > left
            && !self.is_head
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write exceeds declared Content-Length",
            ));
        }
        if self.framing == Framing::Uncommitted {
            self.held.put_slice(data);
            if self.held.len() <= BODY_HOLD {
                return Ok(false);
            }
            self.commit_head(headers, false);
            self.move_held();
        } else if !self.is_head {
            self.frame(data);
        }
        Ok(self.buf.len() >= WRITE_BUF)
    }
}
