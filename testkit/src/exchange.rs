//! The random exchanges of `hijack conform --explore` (SPEC.md#explore): what a client sends on
//! one connection, as data a proptest strategy generates and shrinks. An exchange is a few
//! requests (methods, targets, fields, Content-Length or chunked bodies with random chunk sizes,
//! extensions and trailers), pipelined and written in random pieces with pauses between them,
//! then an ending: the connection kept for a follow-up, an upgrade to `/echo` with bytes in the
//! head's write and after it, or a `/close-notify/{id}` request followed by a half-close, a reset
//! or a pipelined request. A share of exchanges carries one hostile mutation, a fault kind of the
//! corpus (`conform/hostile/`) applied to one request.
//!
//! This module says what is sent, never what must come back: the conformance tool judges each
//! exchange by the request framing of [`crate::framing`], written from SPEC.md alone.

use proptest::collection::vec;
use proptest::prelude::*;

/// The methods a generated request uses: any of them must be answered 200 by the contract
/// (SPEC.md#conformance-endpoints). HEAD is left out: its answer has no body to name it.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The methods a generated request sends content with (the others send none).
pub const BODY_METHODS: &[&str] = &["POST", "PUT", "PATCH"];

/// The `Host` every generated request carries (unless a fault removes it).
pub const HOST: &str = "explore";

/// A request hidden in a body or sent as new-protocol bytes: answering it is smuggling.
pub const BAIT: &[u8] = b"GET /explore/hidden HTTP/1.1\r\nHost: explore\r\n\r\n";

/// One request of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// One of [`METHODS`]; one of [`BODY_METHODS`] when it has a body.
    pub method: &'static str,
    /// The query after `/explore/N` (`?` and visible characters, or empty).
    pub query: String,
    /// Sent as HTTP/1.0 (only a last request: the server closes after it).
    pub http10: bool,
    /// `Connection: close` (only a last request).
    pub close: bool,
    /// Other fields, each a name and a value of visible characters and spaces.
    pub fields: Vec<(String, String)>,
    /// The body and its framing.
    pub body: Body,
}

/// A request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body, no framing field.
    None,
    /// `Content-Length` and these bytes.
    Length(Vec<u8>),
    /// `Transfer-Encoding: chunked`: these chunks (sizes in lower or upper case hex), the last
    /// chunk, these trailer fields.
    Chunked {
        /// The chunks: data and an extension (`;name` or `;name=value`, or none).
        chunks: Vec<(Vec<u8>, String)>,
        /// Upper-case hex chunk sizes.
        upper: bool,
        /// Trailer fields.
        trailers: Vec<(String, String)>,
    },
}

/// A hostile mutation: a fault kind of the corpus, named by the rule of
/// `conform/src/rules.rs` it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A second `Content-Length` with another value, at field position `at`.
    DifferingContentLength {
        /// Where among the fields it goes.
        at: usize,
    },
    /// `Transfer-Encoding: chunked` with a `Content-Length` (CL.TE and TE.CL).
    TeAndCl,
    /// A `Content-Length` that is not decimal digits (`+5`, `5.0`, `0x5`, `5 5`).
    InvalidContentLength {
        /// Which spelling.
        form: usize,
    },
    /// A `Transfer-Encoding` whose final coding is not chunked (`chunked, gzip`).
    TeFinalNotChunked,
    /// No `Host`, or two.
    HostMissingOrDuplicate {
        /// Two instead of none.
        duplicate: bool,
    },
    /// A chunk-size line that is not hex digits and extensions (`5g`, `zz`, `0x5`, `-1`).
    ChunkSizeInvalid {
        /// Which spelling.
        form: usize,
    },
    /// `Expect` with an expectation other than `100-continue`.
    ExpectUnknown,
    /// `Transfer-Encoding` in an HTTP/1.0 request.
    TeInHttp10,
}

impl Fault {
    /// The rule of `conform/src/rules.rs` the fault breaks.
    pub fn rule(self) -> &'static str {
        match self {
            Fault::DifferingContentLength { .. } => "differing-content-length",
            Fault::TeAndCl => "te-and-cl",
            Fault::InvalidContentLength { .. } => "invalid-content-length",
            Fault::TeFinalNotChunked => "te-final-not-chunked",
            Fault::HostMissingOrDuplicate { .. } => "host-missing-or-duplicate",
            Fault::ChunkSizeInvalid { .. } => "chunked-invalid",
            Fault::ExpectUnknown => "expect-unknown",
            Fault::TeInHttp10 => "te-in-http10",
        }
    }
}

/// How an exchange ends, after its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Nothing more: the connection is probed with the follow-up request.
    Open,
    /// `GET /echo` upgraded to the echo protocol: `with_head` in the head's write, then
    /// `later` after `pause_ms` (5 to 29 ms: long enough that they arrive in a read of their
    /// own, short enough to arrive while a handler that takes its time still runs).
    Upgrade {
        /// Bytes in the same write as the upgrade head (after the request pieces).
        with_head: Vec<u8>,
        /// Milliseconds between the head's write and `later`.
        pause_ms: u64,
        /// Bytes sent after the pause.
        later: Vec<u8>,
    },
    /// `GET /close-notify/{id}`, then what the client does while the handler waits.
    CloseNotify(Then),
    /// The client half-closes right after its requests: they are answered, then the
    /// connection closes.
    HalfClose,
    /// The client resets the connection after this share (in 256ths) of its bytes; then a
    /// request on a new connection is still answered.
    Reset(u8),
}

/// What the client does while a `/close-notify/{id}` handler waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Half-closes: close-notify fires.
    HalfClose,
    /// Resets: close-notify fires.
    Reset,
    /// Pipelines a GET: close-notify does not fire, and both are answered in order.
    Pipelined,
}

/// One piece of the client's writes: `size` bytes, then a pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Bytes in this write.
    pub size: usize,
    /// Milliseconds before the next write.
    pub pause_ms: u64,
}

/// One generated exchange on one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The requests before the ending, in order.
    pub requests: Vec<Request>,
    /// A hostile mutation of request `.0`.
    pub fault: Option<(usize, Fault)>,
    /// The ending.
    pub tail: Tail,
    /// How the bytes up to the ending's are written: these pieces, then the rest at once.
    pub pieces: Vec<Piece>,
}

/// The ending's request, as [`Exchange::stream`] writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TailRequest {
    /// None: the tail is [`Tail::Open`].
    None,
    /// The upgrade head.
    Upgrade,
    /// The close-notify request for this id and timeout.
    CloseNotify {
        /// The id in the target.
        id: String,
        /// Its `timeout_ms`.
        timeout_ms: u64,
    },
}

impl Exchange {
    /// Every byte written before the ending's own steps: the requests (the fault applied) and
    /// the ending's request, with `with_head` for an upgrade. `close_notify` names the
    /// close-notify request's id and timeout.
    pub fn stream(&self, close_notify: (&str, u64)) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, r) in self.requests.iter().enumerate() {
            let fault = self.fault.filter(|(at, _)| *at == i).map(|(_, f)| f);
            r.write(i, fault, &mut out);
        }
        match &self.tail {
            Tail::Open | Tail::HalfClose | Tail::Reset(_) => {}
            Tail::Upgrade { with_head, .. } => {
                out.extend_from_slice(
                    format!(
                        "GET /echo HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(with_head);
            }
            Tail::CloseNotify(_) => {
                let (id, timeout_ms) = close_notify;
                out.extend_from_slice(
                    format!(
                        "GET /close-notify/{id}?timeout_ms={timeout_ms} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        }
        out
    }

    /// The request a [`Then::Pipelined`] ending sends while the handler waits.
    pub fn pipelined() -> &'static str {
        "GET /explore/pipelined HTTP/1.1\r\nHost: explore\r\n\r\n"
    }
}

impl Request {
    /// The target of request `i`: `/explore/i` and the query.
    pub fn target(&self, i: usize) -> String {
        format!("/explore/{i}{}", self.query)
    }

    /// Writes request `i` with `fault` applied.
    fn write(&self, i: usize, fault: Option<Fault>, out: &mut Vec<u8>) {
        let http10 = self.http10 || fault == Some(Fault::TeInHttp10);
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut fields: Vec<(String, String)> = Vec::new();
        match fault {
            Some(Fault::HostMissingOrDuplicate { duplicate: false }) => {}
            Some(Fault::HostMissingOrDuplicate { duplicate: true }) => {
                fields.push(("Host".into(), HOST.into()));
                fields.push(("Host".into(), "other.explore".into()));
            }
            _ => fields.push(("Host".into(), HOST.into())),
        }
        fields.extend(self.fields.iter().cloned());
        if self.close && !http10 {
            fields.push(("Connection".into(), "close".into()));
        }
        if fault == Some(Fault::ExpectUnknown) {
            fields.push(("Expect".into(), "explore-this".into()));
        }
        let mut body = Vec::new();
        match &self.body {
            Body::None => {
                if fault == Some(Fault::TeInHttp10) {
                    fields.push(("Transfer-Encoding".into(), "chunked".into()));
                    body.extend_from_slice(b"0\r\n\r\n");
                }
            }
            Body::Length(data) => {
                let n = data.len();
                let value = match fault {
                    Some(Fault::InvalidContentLength { form }) => match form % 4 {
                        0 => format!("+{n}"),
                        1 => format!("{n}.0"),
                        2 => format!("0x{n:x}"),
                        _ => format!("{n} {n}"),
                    },
                    _ => n.to_string(),
                };
                fields.push(("Content-Length".into(), value));
                if let Some(Fault::DifferingContentLength { at }) = fault {
                    let at = 1 + at % fields.len();
                    fields.insert(at, ("Content-Length".into(), (n + 1).to_string()));
                }
                if matches!(fault, Some(Fault::TeAndCl | Fault::TeInHttp10)) {
                    fields.push(("Transfer-Encoding".into(), "chunked".into()));
                }
                body.extend_from_slice(data);
            }
            Body::Chunked {
                chunks,
                upper,
                trailers,
            } => {
                let coding = if fault == Some(Fault::TeFinalNotChunked) {
                    "chunked, gzip"
                } else {
                    "chunked"
                };
                fields.push(("Transfer-Encoding".into(), coding.into()));
                let mut encoded = Vec::new();
                for (k, (data, ext)) in chunks.iter().enumerate() {
                    let size = if *upper {
                        format!("{:X}", data.len())
                    } else {
                        format!("{:x}", data.len())
                    };
                    let size = match fault {
                        Some(Fault::ChunkSizeInvalid { form }) if k == 0 => match form % 4 {
                            0 => format!("{size}g"),
                            1 => "zz".into(),
                            2 => format!("0x{size}"),
                            _ => format!("-{size}"),
                        },
                        _ => size,
                    };
                    encoded.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    encoded.extend_from_slice(data);
                    encoded.extend_from_slice(b"\r\n");
                }
                encoded.extend_from_slice(b"0\r\n");
                for (n, v) in trailers {
                    encoded.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
                }
                encoded.extend_from_slice(b"\r\n");
                if fault == Some(Fault::TeAndCl) {
                    fields.push(("Content-Length".into(), encoded.len().to_string()));
                }
                body = encoded;
            }
        }
        out.extend_from_slice(
            format!("{} {} {version}\r\n", self.method, self.target(i)).as_bytes(),
        );
        for (n, v) in &fields {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
    }
}

/// Visible characters and spaces, as a field value (no leading or trailing space).
fn value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,20}[!-~])?"
}

/// An extra field: a name that changes nothing about framing or the connection.
fn field() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "Accept",
            "User-Agent",
            "X-Explore",
            "Cookie",
            "Cache-Control",
            "X-Forwarded-For",
        ]),
        value(),
    )
        .prop_map(|(n, v)| (n.to_string(), v))
}

/// Body bytes: any bytes, or a request hidden in them (smuggling bait).
fn data(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 1..max),
        1 => vec(any::<u8>(), 0..8).prop_map(|mut v| {
            v.extend_from_slice(BAIT);
            v
        }),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    let ext = prop::sample::select(vec!["", "", ";explore", ";a=b", ";name=\"quoted value\""])
        .prop_map(str::to_string);
    prop_oneof![
        2 => Just(Body::None),
        2 => data(300).prop_map(Body::Length),
        2 => (
            vec((data(120), ext), 1..4),
            any::<bool>(),
            vec(
                (Just("X-Trailer".to_string()), value()),
                0..2
            ),
        )
            .prop_map(|(chunks, upper, trailers)| Body::Chunked {
                chunks,
                upper,
                trailers,
            }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(METHODS.to_vec()),
        prop_oneof![Just(String::new()), "\\?[a-z0-9=&%._~-]{1,16}"],
        vec(field(), 0..3),
        body(),
    )
        .prop_map(|(method, query, fields, body)| Request {
            method,
            query,
            http10: false,
            close: false,
            fields,
            // Content only where the method defines it: RFC 9110 §9.3.1, §9.3.5 let a server
            // reject a GET or DELETE with content, and §9.3.7 has an OPTIONS request with
            // content carry a Content-Type.
            body: if BODY_METHODS.contains(&method) {
                body
            } else {
                Body::None
            },
        })
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0usize..4).prop_map(|at| Fault::DifferingContentLength { at }),
        Just(Fault::TeAndCl),
        (0usize..4).prop_map(|form| Fault::InvalidContentLength { form }),
        Just(Fault::TeFinalNotChunked),
        any::<bool>().prop_map(|duplicate| Fault::HostMissingOrDuplicate { duplicate }),
        (0usize..4).prop_map(|form| Fault::ChunkSizeInvalid { form }),
        Just(Fault::ExpectUnknown),
        Just(Fault::TeInHttp10),
    ]
}

/// New-protocol bytes: any bytes, or a request (never to be answered as HTTP).
fn protocol_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..64),
        1 => Just(BAIT.to_vec()),
    ]
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![
        4 => Just(Tail::Open),
        3 => (protocol_bytes(), 5u64..30, protocol_bytes()).prop_map(|(with_head, pause_ms, later)| {
            Tail::Upgrade { with_head, pause_ms, later }
        }),
        2 => prop_oneof![Just(Then::HalfClose), Just(Then::Reset), Just(Then::Pipelined)]
            .prop_map(Tail::CloseNotify),
        1 => Just(Tail::HalfClose),
        1 => any::<u8>().prop_map(Tail::Reset),
    ]
}

/// The strategy of an exchange: one to four requests (a fault on one of them in a quarter
/// of the exchanges; the last one sometimes HTTP/1.0 or `Connection: close` when the ending
/// is [`Tail::Open`]), an ending, and up to four write pieces of 1 to 64 bytes with pauses
/// of up to 5 ms. It shrinks towards fewer, shorter requests, no fault, no pieces.
pub fn exchange() -> impl Strategy<Value = Exchange> {
    // The ending first: shrinking tries the simplest ending (no upgrade, no close-notify
    // wait) before it works on the requests.
    (
        tail(),
        vec(request(), 1..5),
        prop::option::weighted(0.25, (any::<prop::sample::Index>(), fault())),
        0u8..4,
        vec(
            (1usize..64, 0u64..6).prop_map(|(size, pause_ms)| Piece { size, pause_ms }),
            0..5,
        ),
    )
        .prop_map(|(tail, mut requests, fault, last, pieces)| {
            let fault = fault.map(|(i, f)| (i.index(requests.len()), f));
            if let Some((i, f)) = fault {
                fit_body(&mut requests[i], f);
            }
            if tail == Tail::Open
                && let Some(r) = requests.last_mut()
            {
                match last {
                    1 => r.close = true,
                    2 if !matches!(r.body, Body::Chunked { .. }) => r.http10 = true,
                    _ => {}
                }
            }
            Exchange {
                requests,
                fault,
                tail,
                pieces,
            }
        })
}

/// Gives the faulty request the body its fault needs (a Content-Length fault needs one).
fn fit_body(r: &mut Request, f: Fault) {
    let chunked = || Body::Chunked {
        chunks: vec![(b"hello".to_vec(), String::new())],
        upper: false,
        trailers: Vec::new(),
    };
    // A fault that frames content goes on a method that has content.
    if !BODY_METHODS.contains(&r.method) {
        r.method = "POST";
    }
    match f {
        Fault::DifferingContentLength { .. } | Fault::InvalidContentLength { .. }
            if !matches!(r.body, Body::Length(_)) =>
        {
            r.body = Body::Length(b"hello".to_vec())
        }
        Fault::TeFinalNotChunked | Fault::ChunkSizeInvalid { .. }
            if !matches!(r.body, Body::Chunked { .. }) =>
        {
            r.body = chunked()
        }
        Fault::TeAndCl if r.body == Body::None => r.body = chunked(),
        Fault::TeInHttp10 => r.body = Body::None,
        _ => {}
    }
    r.http10 = false;
    r.close = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{BodyEnd, HeadModel, decode_body, frame_head};
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// Every request an exchange without a fault writes is one the framing model frames, and
    /// its body ends where the next request starts.
    #[test]
    fn generated_requests_are_clean_for_the_model() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..500 {
            let mut ex = exchange().new_tree(&mut runner).unwrap().current();
            ex.fault = None;
            ex.tail = Tail::Open;
            let stream = ex.stream(("x", 1));
            let mut at = 0;
            for _ in &ex.requests {
                let HeadModel::Head(f) = frame_head(&stream[at..]) else {
                    panic!("not framed: {:?}", String::from_utf8_lossy(&stream[at..]));
                };
                let (_, end) = decode_body(f.body, &stream[at + f.len..]);
                let BodyEnd::End(n) = end else {
                    panic!("body not ended: {end:?}")
                };
                at += f.len + n;
            }
            assert_eq!(at, stream.len());
        }
    }
}
