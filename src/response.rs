//! The response writer: the handler's one way to answer a request, or to take the
//! connection over.
//!
//! It owns the writer's header map and its borrow of the connection for one handler call. It
//! frames nothing itself (that is [`crate::encode`]'s) and performs no hijack step (those are
//! [`crate::handover`]'s): [`ResponseWriter::hijack`] is the one place where a connection
//! leaves the server, and it takes the writer by value, so writing after a hijack, or
//! hijacking twice, does not compile:
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

use std::io::{self, Write};

use http::{HeaderMap, StatusCode};

use crate::conn::Conn;
use crate::handover::{ConnProbe, Handover};
use crate::signal::CloseNotify;
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
        self.conn.probe()
    }

    /// Takes the connection over (Go's `Hijacker.Hijack`).
    ///
    /// Flushes what the handler wrote (discarding the rest of the request body first if a
    /// response head was written, so the new protocol starts after it), aborts the background
    /// read, clears deadlines and returns the [`Handover`]. From then on the server never
    /// reads, writes or closes the stream. Fails only if the flush or the body discard
    /// fails; the connection then stays the server's, which closes it.
    pub fn hijack(mut self) -> io::Result<Handover<T::Stream>> {
        self.conn.hijack(&mut self.headers)
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
