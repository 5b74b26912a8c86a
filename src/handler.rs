//! What serves a request: the [`Handler`] trait.
//!
//! It owns the handler's signature and nothing else; what the request and response writer
//! may do is theirs ([`crate::request`], [`crate::response`]).

use crate::request::Request;
use crate::response::ResponseWriter;
use crate::transport::Transport;

/// Serves requests on one connection. Implemented for every
/// `Fn(Request<'_>, ResponseWriter<'_, T>) + Send + Sync + 'static`.
pub trait Handler<T: Transport>: Send + Sync + 'static {
    /// Answers one request. Returning ends the request; a hijacked connection is the
    /// handler's (or whoever it gave the [`crate::Handover`] to) from the hijack on.
    fn serve(&self, req: Request<'_>, w: ResponseWriter<'_, T>);
}

impl<T: Transport, F> Handler<T> for F
where
    F: Fn(Request<'_>, ResponseWriter<'_, T>) + Send + Sync + 'static,
{
    fn serve(&self, req: Request<'_>, w: ResponseWriter<'_, T>) {
        self(req, w)
    }
}
