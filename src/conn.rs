//! One connection's state as the server serves it (SPEC.md#parts): the transport slot, the
//! connection reader, the read and write sides, the lifecycle, and the operations on the
//! stream every other part goes through (fill, flush, background read start and abort,
//! deadlines, close).
//!
//! It owns [`Conn`], [`ReadSide`] and the read-buffer pool, and decides nothing about
//! requests or responses: the serving loop is [`crate::serve`], request bodies are
//! [`crate::body`], response encoding is [`crate::encode`], the response writer
//! [`crate::response`], the hijack handover [`crate::handover`], and the background read
//! [`crate::conn_reader`]. It never imports those above it.
//!
//! A [`Conn`] is shared by reference with the handler's request and response writer for the
//! length of one handler call, and by `Arc` with a pending background read, nothing else.
//! Lock order: read side, then write side, then lifecycle, then transport, then connection
//! reader.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::config::ServerConfig;
use crate::conn_reader::ConnReader;
use crate::encode::WriteSide;
use crate::limits::READ_SIZE;
use crate::parse::{BodyDecoder, BodyKind, Verdict};
use crate::signal::Fired;
use crate::state::{ConnEvent, ConnState};
use crate::sync::atomic::AtomicBool;
use crate::sync::{Arc, Mutex, RwLock, Weak};
use crate::transport::Transport;

/// Read buffers of connections that ended, reused by new ones, as Go pools its `bufio.Reader`s:
/// serving a connection then costs no read-buffer allocation, and a hijacked connection keeps
/// none (the handover copies out the bytes nobody consumed). At most [`read_buffers::KEPT`]
/// idle buffers are kept. Loom models allocate fresh ones: a process-wide pool is not state
/// they model.
pub(crate) mod read_buffers {
    use bytes::BytesMut;

    use crate::limits::READ_SIZE;

    /// Idle buffers kept at most: 256 KiB.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const KEPT: usize = 64;

    #[cfg(not(loom))]
    use crate::sync::Mutex;

    #[cfg(not(loom))]
    static FREE: Mutex<Vec<BytesMut>> = Mutex::new(Vec::new());

    /// An empty read buffer of [`READ_SIZE`] bytes' capacity.
    pub(crate) fn take() -> BytesMut {
        #[cfg(not(loom))]
        if let Some(buf) = FREE.lock().pop() {
            return buf;
        }
        BytesMut::with_capacity(READ_SIZE)
    }

    /// Heap bytes held by idle buffers: leak checks count them as the pool's, not a leak.
    pub(crate) fn idle_bytes() -> usize {
        #[cfg(not(loom))]
        return FREE.lock().len() * READ_SIZE;
        #[cfg(loom)]
        0
    }

    /// Returns a connection's read buffer. One that grew (a head that took more than one
    /// read) is freed and a buffer of the pooled size takes its place, so that the pool
    /// holds what it held before the connection took from it.
    pub(crate) fn give_back(mut buf: BytesMut) {
        buf.clear();
        // Reclaims the room `advance` left before the start; allocates nothing.
        buf.reserve(READ_SIZE);
        if buf.capacity() != READ_SIZE {
            buf = BytesMut::with_capacity(READ_SIZE);
        }
        #[cfg(not(loom))]
        {
            let mut free = FREE.lock();
            if free.len() < KEPT {
                free.push(buf);
            }
        }
        #[cfg(loom)]
        drop(buf); // Loom models keep no pool: the buffer is freed.
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
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// This connection, for starting background reads from a `&Conn`.
    me: Weak<Conn<T>>,
    pub(crate) id: u64,
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
            write: Mutex::new(WriteSide::new()),
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
    pub(crate) fn abort_background_read(&self) {
        if let Some(t) = self.transport.read().as_ref() {
            self.reader.abort(t);
        }
    }

    /// Reads more bytes from the stream into the read buffer.
    pub(crate) fn fill(&self, side: &mut ReadSide) -> io::Result<usize> {
        let guard = self.transport.read();
        let t = guard.as_ref().ok_or_else(hijacked_error)?;
        let len = side.buf.len();
        // Every read asks for READ_SIZE bytes (SPEC.md#parts, `ReadSide`): how far the server
        // reads ahead decides which bytes are buffered at a hijack, so it must not depend on
        // the buffer's capacity. `resize` reuses the space `advance` left before the start.
        side.buf.resize(len + READ_SIZE, 0);
        let result = self.reader.read(t, &mut side.buf[len..]);
        side.buf.truncate(len + *result.as_ref().unwrap_or(&0));
        result
    }

    pub(crate) fn set_read_deadline(&self, timeout: Option<Duration>) {
        if let Some(t) = self.transport.read().as_ref() {
            let _ = t.set_read_deadline(timeout.map(|d| Instant::now() + d));
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

    /// The server is done with the connection.
    pub(crate) fn close(&self) {
        if let Some(t) = self.transport.read().as_ref() {
            t.close();
        }
        self.transition(ConnEvent::Close);
    }

    /// Signals shutdown to the running handler's cancellation.
    pub(crate) fn cancel_for_shutdown(&self) {
        self.reader.cancel(Fired::Shutdown);
    }
}

impl<T: Transport> Drop for Conn<T> {
    fn drop(&mut self) {
        read_buffers::give_back(std::mem::take(&mut self.read.lock().buf));
    }
}
