//! The response writer and the hijack handover (SPEC.md#hijack-handover).
//!
//! [`ResponseWriter::hijack`] is the one place where a connection leaves the server: it
//! flushes what the handler wrote, stops the background read, and returns the stream with
//! every byte the server read but nobody consumed. It takes the writer by value, so writing
//! after a hijack, or hijacking twice, does not compile:
//!
//= SPEC.md#hijack-handover
//= type=test
//# A response writer MUST allow at most one hijack and no write after it.
//! ```compile_fail,E0382
//! # use hijack::{ResponseWriter, pipe::PipeEnd};
//! fn handler(w: ResponseWriter<'_, PipeEnd>) {
//!     let _parts = w.hijack();
//!     let _again = w.hijack(); // error: use of moved value `w`
//! }
//! ```
//!
//! ```compile_fail,E0382
//! # use hijack::{ResponseWriter, pipe::PipeEnd};
//! fn handler(mut w: ResponseWriter<'_, PipeEnd>) {
//!     let _parts = w.hijack();
//!     w.write_body(b"late"); // error: borrow of moved value `w`
//! }
//! ```
//!
//! Nor can a writer, a request or its body reader outlive the handler call:
//!
//= SPEC.md#parts
//= type=test
//# The request, its body reader and the response writer MUST NOT outlive the handler call
//# they were given to.
//! ```compile_fail,E0521
//! # use hijack::{ResponseWriter, pipe::PipeEnd};
//! static mut KEPT: Option<ResponseWriter<'static, PipeEnd>> = None;
//! fn handler(w: ResponseWriter<'_, PipeEnd>) {
//!     unsafe { KEPT = Some(w) }; // error: borrowed data escapes
//! }
//! ```
//!
//! ```compile_fail,E0521
//! # use hijack::Request;
//! static mut KEPT: Option<Request<'static>> = None;
//! fn handler(req: Request<'_>) {
//!     unsafe { KEPT = Some(req) }; // error: borrowed data escapes
//! }
//! ```
//!
//! ```compile_fail,E0597
//! # use hijack::{Body, Request};
//! static mut KEPT: Option<&'static mut Body<'static>> = None;
//! fn handler(mut req: Request<'_>) {
//!     unsafe { KEPT = Some(req.body()) }; // error: `req` does not live long enough
//! }
//! ```

use std::any::Any;
use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::conn::Conn;
use crate::signal::CloseNotify;
use crate::state::ConnEvent;
#[cfg(hijack_mutant = "keep_conn_after_exit")]
use crate::sync::Arc;
use crate::sync::Weak;
use crate::transport::Transport;

/// Writes the response to one request; valid for the handler call it was given to.
pub struct ResponseWriter<'c, T: Transport> {
    conn: &'c Conn<T>,
    headers: HeaderMap,
    close_notify: CloseNotify,
}

impl<'c, T: Transport> ResponseWriter<'c, T> {
    pub(crate) fn new(conn: &'c Conn<T>, close_notify: CloseNotify) -> Self {
        ResponseWriter {
            conn,
            headers: HeaderMap::new(),
            close_notify,
        }
    }

    /// The response headers, sent when the head is committed (first flush, more than 2 KiB of
    /// body, hijack, or handler return). `Content-Length` set here fixes the framing.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Sets the status. Only the first call counts (Go's `WriteHeader`); it also cancels a
    /// pending `100 Continue`.
    pub fn write_header(&mut self, status: StatusCode) {
        let mut w = self.conn.write.lock();
        if w.status_set {
            tracing::debug!(%status, "superfluous write_header ignored");
            return;
        }
        w.status_set = true;
        w.status = status;
        w.expect.cancel();
    }

    /// Writes body bytes (status 200 if none was set). Fails for a status without a body and
    /// past a declared `Content-Length`.
    pub fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_header(StatusCode::OK);
        let mut w = self.conn.write.lock();
        if w.write_body(&self.headers, data)? {
            self.conn.flush_wire(&mut w)?;
        }
        Ok(())
    }

    /// Sends the head (chunked unless a `Content-Length` was set) and everything written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_header(StatusCode::OK);
        let mut w = self.conn.write.lock();
        w.commit_if_needed(&self.headers);
        self.conn.flush_wire(&mut w)
    }

    /// A handle that fires when the client goes away while the handler runs, and reaches its
    /// terminal state when the handler returns. Subscribing never prevents a hijack.
    pub fn close_notify(&self) -> CloseNotify {
        self.close_notify.clone()
    }

    /// A weak handle on the connection's state, for leak checks: it stops being alive once
    /// the server let go of the connection (after a hijacking handler returned, or after
    /// the connection closed).
    pub fn connection_probe(&self) -> ConnProbe {
        ConnProbe(self.conn.weak_any())
    }

    //= SPEC.md#hijack-handover
    //# The hijack MUST flush everything the handler wrote before it returns the parts, so that
    //# the client receives it before any byte the hijacker writes.
    /// Takes the connection over (Go's `Hijacker.Hijack`).
    ///
    /// Flushes what the handler wrote (discarding the rest of the request body first if a
    /// response head was written, so the new protocol starts after it), aborts the background
    /// read, clears deadlines and returns the [`Handover`]. From then on the server never
    /// reads, writes or closes the stream. Fails only if the flush or the body discard
    /// fails; the connection then stays the server's, which closes it.
    pub fn hijack(mut self) -> io::Result<Handover<T::Stream>> {
        let conn = self.conn;
        let mut read = conn.read.lock();
        let (status_set, continue_unsent) = {
            let mut w = conn.write.lock();
            w.expect.cancel();
            (w.status_set, w.expect.unsent())
        };
        // From here no background read starts, and a pending one has completed.
        match conn.transport.read().as_ref() {
            Some(t) => conn.reader.hijack(t),
            None => return Err(crate::conn::hijacked_error()),
        }
        // The seeded bug of the kill matrix: the held byte taken before the discard.
        let early_byte = if cfg!(hijack_mutant = "take_byte_before_discard") {
            conn.reader.take_background_byte()
        } else {
            None
        };
        //= SPEC.md#hijack-handover
        //# If the handler wrote a response head before hijacking, the server MUST read
        //# and discard the rest of the request body before the handover.
        if status_set
            && !continue_unsent
            && !read.body_ended
            && !conn.discard_body(&mut read, conn.config.max_discard_bytes)
        {
            // The head is not on the wire yet: the server answers 500 and closes.
            let mut w = conn.write.lock();
            w.status = StatusCode::INTERNAL_SERVER_ERROR;
            w.close_after = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body could not be discarded before the upgrade",
            ));
        }
        let mut w = conn.write.lock();
        if status_set {
            let headers = std::mem::take(&mut self.headers);

            w.commit_if_needed(&headers);
            conn.flush_wire(&mut w)?;
        }
        let mut transport = conn.transport.write();
        let Some(t) = transport.as_ref() else {
            return Err(crate::conn::hijacked_error());
        };
        //= SPEC.md#hijack-handover
        //# The handed-over stream MUST have no read or write deadline set.
        if !cfg!(hijack_mutant = "keep_deadlines") {
            let _ = t.set_read_deadline(None);
            let _ = t.set_write_deadline(None);
        }
        // After the discard: a held byte may have been the body's next byte.
        let background_byte = early_byte.or_else(|| conn.reader.take_background_byte());
        conn.reader.hand_over();

        //= SPEC.md#hijack-handover
        //# The handed-over bytes MUST be exactly the bytes the client sent after what the
        //# handler consumed that the server has read, in wire order: the read buffer, then
        //# the background byte.
        // Copied out at its exact size: the read buffer goes back to the pool rather than
        // being kept, 4 KiB and mostly empty, by every hijacked connection.
        let mut copy = Vec::with_capacity(read.buf.len() + usize::from(background_byte.is_some()));
        copy.extend_from_slice(&read.buf);
        copy.extend(background_byte);
        read.buf.clear();
        //= SPEC.md#hijack-handover
        //# The handed-over write buffer MUST be the connection's own write buffer, emptied,
        //# not a new allocation.
        let mut write_buf = if cfg!(hijack_mutant = "fresh_write_buffer") {
            BytesMut::with_capacity(crate::conn::WRITE_BUF)
        } else {
            std::mem::take(&mut w.buf)
        };
        write_buf.clear();
        let stream = match transport.take() {
            Some(t) => t.into_stream()?,
            None => return Err(crate::conn::hijacked_error()),
        };
        drop((transport, w, read));
        conn.transition(ConnEvent::Hijack);
        Ok(Handover {
            stream,
            buffered: Bytes::from(copy),
            write_buf,
            #[cfg(hijack_mutant = "keep_conn_after_exit")]
            _retained: conn.weak_any().upgrade(),
        })
    }
}

impl<T: Transport> Drop for ResponseWriter<'_, T> {
    fn drop(&mut self) {
        let headers = std::mem::take(&mut self.headers);
        self.conn.write.lock().final_headers = Some(headers);
    }
}

impl<T: Transport> Write for ResponseWriter<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_body(buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        ResponseWriter::flush(self)
    }
}

impl<T: Transport> std::fmt::Debug for ResponseWriter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseWriter")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// What a hijacker receives: the stream, the bytes the server read that nobody consumed, and
/// the connection's (empty) write buffer. Holds no reference to server state.
///
/// `Read` on a `Handover` yields `buffered` first, then the stream; `Write` buffers into
/// `write_buf` and writes it to the stream on `flush` or when it is full.
#[derive(Debug)]
pub struct Handover<S> {
    /// The connection's stream, blocking, with no deadline set.
    pub stream: S,
    /// Every byte the server read from the stream that no one consumed, in wire order:
    /// unread body, pipelined or post-upgrade bytes, the background byte.
    pub buffered: Bytes,
    /// The connection's write buffer, empty, reused rather than newly allocated.
    pub write_buf: BytesMut,
    #[cfg(hijack_mutant = "keep_conn_after_exit")]
    _retained: Option<Arc<dyn Any + Send + Sync>>,
}

impl<S: Read> Read for Handover<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buffered.is_empty() {
            let n = out.len().min(self.buffered.len());
            out[..n].copy_from_slice(&self.buffered[..n]);
            self.buffered.advance(n);
            return Ok(n);
        }
        self.stream.read(out)
    }
}

impl<S: Write> Write for Handover<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.write_buf.capacity().max(crate::conn::WRITE_BUF);
        if self.write_buf.len() + data.len() > room {
            self.flush()?;
        }
        if data.len() >= room {
            return self.stream.write(data);
        }
        self.write_buf.put_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.write_buf)?;
        self.write_buf.clear();
        self.stream.flush()
    }
}

/// A weak handle on a connection's server-side state; see [`ResponseWriter::connection_probe`].
#[derive(Clone, Debug)]
pub struct ConnProbe(Weak<dyn Any + Send + Sync>);

impl ConnProbe {
    /// Whether anything still holds the connection's state.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl<T: Transport> Conn<T> {
    pub(crate) fn weak_any(&self) -> Weak<dyn Any + Send + Sync> {
        let weak: Weak<Conn<T>> = self.me();
        weak
    }
}
