//! The request a handler receives: head, body reader and cancellation token.
//!
//! A [`Request`] borrows its connection for one handler call; it cannot outlive the handler,
//! so it cannot keep connection state alive after the handler returned.

use std::io;

use http::{HeaderMap, Method, Version};

use crate::parse::{BodyKind, RequestHead};
use crate::signal::Cancellation;

/// Where a [`Body`] reads from: the connection's read side.
pub(crate) trait BodySource: Sync {
    fn read_body(&self, out: &mut [u8]) -> io::Result<usize>;
}

/// An HTTP/1.1 request, valid for the handler call it was given to.
pub struct Request<'c> {
    head: RequestHead,
    body: Body<'c>,
    cancel: Cancellation,
}

impl<'c> Request<'c> {
    pub(crate) fn new(head: RequestHead, source: &'c dyn BodySource, cancel: Cancellation) -> Self {
        Request {
            head,
            body: Body { source },
            cancel,
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The request target exactly as sent.
    pub fn target(&self) -> &str {
        &self.head.target
    }

    /// The path of the target: the target up to `?`.
    pub fn path(&self) -> &str {
        self.head.target.split('?').next().unwrap_or_default()
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// How the body is delimited.
    pub fn body_kind(&self) -> BodyKind {
        self.head.body
    }

    /// The body reader. After a hijack it fails with [`crate::Hijacked`] and reads nothing.
    pub fn body(&mut self) -> &mut Body<'c> {
        &mut self.body
    }

    /// The request's cancellation token (client close, handler return, server shutdown).
    pub fn cancellation(&self) -> Cancellation {
        self.cancel.clone()
    }

    /// Whether the request asks for a protocol upgrade to `protocol`: `Connection: upgrade`
    /// and `Upgrade: protocol` (tokens compared case-insensitively).
    pub fn wants_upgrade(&self, protocol: &str) -> bool {
        let has = |name: http::header::HeaderName, token: &str| {
            self.head.headers.get_all(name).iter().any(|v| {
                v.as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, protocol)
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// The request body: `Read` yields the decoded body (Content-Length or chunked) and then
/// end of stream. Reading it to the end starts the connection's background read.
pub struct Body<'c> {
    source: &'c dyn BodySource,
}

impl io::Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read_body(buf)
    }
}

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}
