//! `hijack-testkit`: the support every test, property, fuzz harness, bench and example of the
//! workspace shares, once: serving a handler on the in-memory pipe, bounded waits, a
//! client-side response reader, the process's descriptors, threads and live heap
//! ([`leaks`]), and the hostile corpus as the tests see it ([`corpus`]). Never a dependency of
//! anything shipped. Under `--cfg loom` (the core's models) it is empty.
#![cfg(not(loom))]
#![deny(missing_docs)]

pub mod corpus;
pub mod leaks;

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

/// Waits until `cond` holds, failing the test after 10 s.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Receives from `rx`, failing the test after 10 s.
pub fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("timed out waiting for the handler")
}

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields, in order, values as Latin-1-lossy text.
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

/// Reads one response (head and body, by its framing). `pending` holds bytes read past the
/// previous response and receives those read past this one. `None` at end of stream.
pub fn read_response(
    src: &mut impl ByteSource,
    pending: &mut Vec<u8>,
    head_request: bool,
) -> Option<Response> {
    let mut chunk = [0u8; 8192];
    let (status, headers, head_len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(n) = resp.parse(pending).expect("malformed response head")
        {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect::<Vec<_>>();
            break (resp.code.unwrap(), headers, n);
        }
        let n = src.read_some(&mut chunk);
        if n == 0 {
            assert!(
                pending.is_empty(),
                "stream ended inside a response head: {pending:?}"
            );
            return None;
        }
        pending.extend_from_slice(&chunk[..n]);
    };
    pending.drain(..head_len);
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let mut fill = |pending: &mut Vec<u8>, need: usize| {
        while pending.len() < need {
            let n = src.read_some(&mut chunk);
            assert!(n > 0, "stream ended inside a response body");
            pending.extend_from_slice(&chunk[..n]);
        }
    };
    if head_request || status / 100 == 1 || status == 204 || status == 304 {
        return Some(resp);
    }
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().unwrap();
        fill(pending, len);
        resp.body = pending.drain(..len).collect();
    } else if resp.header("transfer-encoding").is_some() {
        loop {
            let line_end = loop {
                if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let have = pending.len();
                fill(pending, have + 1);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&pending[..line_end]).unwrap(), 16)
                    .unwrap();
            fill(pending, line_end + 2 + size + 2);
            resp.body
                .extend_from_slice(&pending[line_end + 2..line_end + 2 + size]);
            pending.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        loop {
            let n = src.read_some(&mut chunk);
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        resp.body = std::mem::take(pending);
    }
    Some(resp)
}
