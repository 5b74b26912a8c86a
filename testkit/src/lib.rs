//! `hijack-testkit`: the support every test, property, fuzz harness, bench and example of the
//! workspace shares, once: serving a handler on the in-memory pipe, bounded waits, a
//! client-side response reader and chunk decoder ([`wire`]), the counting allocator
//! ([`alloc`]), the process's descriptors, threads and live heap ([`leaks`]), the one
//! executable model of a served connection ([`model`]) with the driver that runs operation
//! sequences on it and on the core side by side ([`lifecycle`]), for the lifecycle property and
//! the lifecycle fuzz target, the request framing written from SPEC.md alone ([`framing`]), the
//! random exchanges of `hijack conform --explore` ([`exchange`]) and the deliberately broken
//! servers that show it finds what it claims to ([`broken`]). The conformance tool depends on
//! it for [`framing`] and [`exchange`]; the core never does. Under `--cfg loom` (the core's
//! models) it is empty.
#![cfg(not(loom))]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod alloc;
pub mod broken;
#[cfg(feature = "explore")]
pub mod exchange;
pub mod framing;
pub mod leaks;
pub mod lifecycle;
pub mod model;
pub mod served;
pub mod tap;
pub mod wire;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hijack::pipe::{PipeEnd, pipe};
use hijack::{Handler, ServerConfig};

/// Serves `handler` on one in-memory connection on a new thread; returns the client end.
pub fn serve_pipe<H: Handler<PipeEnd>>(handler: H) -> (PipeEnd, JoinHandle<()>) {
    serve_pipe_with(handler, ServerConfig::default())
}

/// As [`serve_pipe`], with a config.
pub fn serve_pipe_with<H: Handler<PipeEnd>>(
    handler: H,
    config: ServerConfig,
) -> (PipeEnd, JoinHandle<()>) {
    let (client, server) = pipe();
    let thread = std::thread::spawn(move || hijack::serve_connection(server, &handler, &config, 1));
    (client, thread)
}

/// How long a guarded wait may take before the test fails. Generous: it only ever runs out
/// when what the test checks is already broken.
pub const GUARD: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or `limit` passed; returns whether it held. Yields first, so
/// the common, immediate case costs microseconds, then sleeps 100 µs between polls.
pub fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        spins += 1;
        if spins < 2000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    true
}

/// Waits until `cond` holds; fails the test (with `what`) after [`GUARD`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    assert!(poll_until(GUARD, cond), "timed out waiting until {what}");
}

/// Receives from `rx`, failing the test after [`GUARD`].
pub fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(GUARD)
        .expect("timed out waiting for the handler")
}

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields, in order, names lower-cased, values as lossy UTF-8 text.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Something bytes can be read from, for [`read_response`].
pub trait ByteSource {
    /// Reads some bytes into `buf`; 0 at end of stream (or on an error).
    fn read_some(&mut self, buf: &mut [u8]) -> usize;
}

impl ByteSource for &PipeEnd {
    fn read_some(&mut self, buf: &mut [u8]) -> usize {
        self.read(buf).unwrap_or(0)
    }
}

impl ByteSource for std::net::TcpStream {
    fn read_some(&mut self, buf: &mut [u8]) -> usize {
        std::io::Read::read(self, buf).unwrap_or(0)
    }
}

/// Reads one response (head and body, by its framing, with [`wire::read_response`]).
/// `pending` holds bytes read past the previous response and receives those read past this
/// one. `None` at end of stream.
///
/// # Panics
/// On a malformed or wrongly framed response, or a stream that ends inside one.
pub fn read_response(
    src: &mut impl ByteSource,
    pending: &mut Vec<u8>,
    head_request: bool,
) -> Option<Response> {
    let mut chunk = [0u8; 8192];
    let mut ended = false;
    loop {
        let parsed = wire::parse_response(pending, head_request).unwrap_or_else(|e| panic!("{e}"));
        match parsed {
            Some(r) if r.complete && (r.framing != wire::Framing::CloseDelimited || ended) => {
                pending.drain(..r.len);
                return Some(Response {
                    status: r.status,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                        .collect(),
                    body: r.body,
                });
            }
            _ if ended => {
                assert!(
                    pending.is_empty(),
                    "stream ended inside a response: {}",
                    wire::show(pending)
                );
                return None;
            }
            _ => {}
        }
        let n = src.read_some(&mut chunk);
        if n == 0 {
            ended = true;
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}
