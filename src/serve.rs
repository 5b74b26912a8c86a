//! The serving loop (SPEC.md#serving-loop): read a request head, prepare the request, run
//! the handler, release, finish the response, discard the unread body, and go on or close.
//!
//! It owns the order of those steps and the decision to keep the connection open, nothing
//! else: body reads are [`crate::body`]'s, the response's bytes [`crate::encode`]'s, the
//! handover [`crate::handover`]'s, and it never touches the stream but through
//! [`crate::conn::Conn`]'s operations.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Buf;
use http::Method;

use crate::config::ServerConfig;
use crate::conn::Conn;
use crate::expect::Continue;
use crate::handler::Handler;
use crate::parse::{BodyDecoder, BodyKind, PartialHead, RequestHead, Verdict, parse_head};
use crate::request::{BodySource, Request};
use crate::response::ResponseWriter;
use crate::signal::Watch;
use crate::state::ConnEvent;
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use crate::transport::Transport;

/// Serves one connection on `transport` until it closes or is hijacked, on this thread.
/// `id` names the connection to the state hook.
pub fn serve_connection<T: Transport, H: Handler<T>>(
    transport: T,
    handler: &H,
    config: &ServerConfig,
    id: u64,
) {
    let conn = Conn::new(transport, config.clone(), id, Default::default());
    conn.transition_new();
    conn.serve(handler);
}

impl<T: Transport> Conn<T> {
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
            w.start_response(
                Continue::for_request(head.expect_continue, body_kind != BodyKind::Empty),
                head.method == Method::HEAD,
                head.version,
                !head.keep_alive || self.shutting_down.load(Ordering::Acquire),
            );
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
        if let Some(verdict) = framing_error
            && w.uncommitted()
        {
            headers = w.answer_framing_error(verdict);
        }
        if framing_error.is_some() {
            w.close_after = true;
        }
        if w.uncommitted() {
            w.commit_head(&headers, true);
        }
        w.end_body();
        let flushed = self.flush_wire(&mut w).is_ok();
        flushed && !w.close_after && !w.broken
    }

    /// Answers a head that never became a request, then the connection closes.
    fn reject(&self, verdict: Verdict) {
        let mut w = self.write.lock();
        w.put_rejection(verdict);
        let _ = self.flush_wire(&mut w);
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
}

enum HeadError {
    Bad(Verdict),
    Io(io::Error),
}
