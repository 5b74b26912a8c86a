//! Reading what the server wrote, from the client's end of the wire, strictly framed: the one
//! client-side response reader and chunk decoder of the tests, the properties and the fuzz
//! harness (the conformance tool has its own, being the product).
//!
//! [`read_response`] takes one response off the front of the client's bytes and says how it
//! was framed and whether its framing completed before the wire ended. It rejects what a
//! strict client would: a malformed head, both Content-Length and Transfer-Encoding, chunked
//! framing in an HTTP/1.0 response, framing fields on a response that cannot have a body.

use hijack::parse::Verdict;

/// How a response's body was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: 1xx, 204, 304, or a response to HEAD.
    NoBody,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs to the end of the stream.
    CloseDelimited,
}

/// One response as read off the wire.
#[derive(Clone, Debug)]
pub struct Response {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The header fields, names lower-cased, in wire order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The bytes the head took.
    pub head_len: usize,
    /// How the body was delimited.
    pub framing: Framing,
    /// The body, decoded.
    pub body: Vec<u8>,
    /// The body as it was on the wire (chunk framing included).
    pub body_wire: Vec<u8>,
    /// The framing completed (for chunked: the zero-size chunk was read).
    pub complete: bool,
    /// The bytes the response took from the wire.
    pub len: usize,
}

impl Response {
    /// The value of the first field called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the field `name` has the token `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }
}

/// Reads one response from the front of `wire`. `head_request`: it answers a HEAD request.
/// A wire that ends inside the head is an error.
pub fn read_response(wire: &[u8], head_request: bool) -> Result<Response, String> {
    parse_response(wire, head_request)?
        .ok_or_else(|| format!("the wire ends inside a response head: {:?}", show(wire)))
}

/// Reads one response from the front of `wire`, `None` while its head is incomplete (a body
/// that is not complete yet says so in [`Response::complete`]).
pub fn parse_response(wire: &[u8], head_request: bool) -> Result<Option<Response>, String> {
    let Some(mut resp) = parse_head(wire)? else {
        return Ok(None);
    };
    read_body(wire, head_request, &mut resp)?;
    Ok(Some(resp))
}

/// Reads one response head from the front of `wire`; its body is not looked at (`len` is the
/// head's length). A wire that ends inside the head is an error.
pub fn read_head(wire: &[u8]) -> Result<Response, String> {
    parse_head(wire)?
        .ok_or_else(|| format!("the wire ends inside a response head: {:?}", show(wire)))
}

/// Reads one response head from the front of `wire`, `None` while it is incomplete.
pub fn parse_head(wire: &[u8]) -> Result<Option<Response>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    let head_len = match parsed.parse(wire) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head ({e}): {:?}", show(wire))),
    };
    let version = parsed.version.unwrap_or(1);
    let status = parsed.code.unwrap_or(0);
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    Ok(Some(Response {
        version,
        status,
        headers,
        head_len,
        framing: Framing::NoBody,
        body: Vec::new(),
        body_wire: Vec::new(),
        complete: true,
        len: head_len,
    }))
}

fn read_body(wire: &[u8], head_request: bool, resp: &mut Response) -> Result<(), String> {
    let (version, status, head_len) = (resp.version, resp.status, resp.head_len);
    let length = resp.header("content-length").map(<[u8]>::to_vec);
    let chunked = resp.header("transfer-encoding").map(<[u8]>::to_vec);
    if length.is_some() && chunked.is_some() {
        return Err(format!(
            "both Content-Length and Transfer-Encoding: {:?}",
            show(wire)
        ));
    }
    let no_body_status = status / 100 == 1 || status == 204 || status == 304;
    if no_body_status {
        //= SPEC.md#serving-loop
        //= type=test
        //# A response with status 1xx, 204 or 304 MUST NOT carry a body, a Content-Length or a
        //# Transfer-Encoding, and a body write for it MUST fail.
        if length.is_some() || chunked.is_some() {
            return Err(format!("framing fields on a {status} response"));
        }
        return Ok(());
    }
    if head_request {
        //= SPEC.md#serving-loop
        //= type=test
        //# A response to a HEAD request MUST NOT carry body bytes.
        return Ok(());
    }
    let body = &wire[head_len..];
    if let Some(te) = chunked {
        if te != b"chunked" {
            return Err(format!("Transfer-Encoding {:?}", show(&te)));
        }
        //= SPEC.md#serving-loop
        //= type=test
        //# A response to an HTTP/1.0 request MUST NOT use the chunked transfer coding, and
        //# without a Content-Length its end MUST be marked by closing the connection.
        if version == 0 {
            return Err("chunked framing in an HTTP/1.0 response".into());
        }
        resp.framing = Framing::Chunked;
        let (decoded, used, complete) = decode_chunks(body)?;
        resp.body = decoded;
        resp.body_wire = body[..used].to_vec();
        resp.complete = complete;
    } else if let Some(len) = length {
        let n: u64 = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("Content-Length {:?}", show(&len)))?;
        resp.framing = Framing::Length(n);
        let take = body.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        resp.body = body[..take].to_vec();
        resp.body_wire = resp.body.clone();
        resp.complete = take as u64 == n;
    } else {
        resp.framing = Framing::CloseDelimited;
        resp.body = body.to_vec();
        resp.body_wire = resp.body.clone();
    }
    resp.len = head_len + resp.body_wire.len();
    Ok(())
}

/// One chunk frame as [`chunk_frame`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `size CRLF data CRLF` with `size > 0`: the data's place in the wire, and where the next
    /// frame starts.
    Data {
        /// Where the chunk's data is.
        data: std::ops::Range<usize>,
        /// Where the next frame starts.
        next: usize,
    },
    /// The zero-size chunk `0 CRLF`; `next` is where the trailer section (or its final CRLF)
    /// starts.
    Last {
        /// Where the trailer section starts.
        next: usize,
    },
    /// The wire ends inside the size line.
    PartialLine,
    /// The wire ends inside a chunk's data or its CRLF; `data` is the part that arrived.
    PartialData {
        /// The data that arrived.
        data: std::ops::Range<usize>,
    },
}

/// The chunk frame at `at` of `wire`, as the server writes them (`{size:x}\r\n{data}\r\n`,
/// no extensions). A malformed size line, or data not followed by CRLF, is an error.
pub fn chunk_frame(wire: &[u8], at: usize) -> Result<Frame, String> {
    let Some(eol) = wire[at..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(Frame::PartialLine);
    };
    let line = &wire[at..at + eol];
    let size = std::str::from_utf8(line)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok())
        .ok_or_else(|| format!("bad chunk size line {:?}", show(line)))?;
    let data = at + eol + 2;
    if size == 0 {
        return Ok(Frame::Last { next: data });
    }
    if wire.len() < data + size + 2 {
        return Ok(Frame::PartialData {
            data: data..wire.len().min(data + size),
        });
    }
    if &wire[data + size..data + size + 2] != b"\r\n" {
        return Err("chunk data not followed by CRLF".into());
    }
    Ok(Frame::Data {
        data: data..data + size,
        next: data + size + 2,
    })
}

/// Decodes chunks as the server writes them (`{size:x}\r\n{data}\r\n`, ended by
/// `0\r\n\r\n`). Returns the data, the bytes used and whether the last chunk was read.
pub fn decode_chunks(wire: &[u8]) -> Result<(Vec<u8>, usize, bool), String> {
    let mut at = 0;
    let mut data = Vec::new();
    loop {
        match chunk_frame(wire, at)? {
            Frame::Data { data: d, next } => {
                data.extend_from_slice(&wire[d]);
                at = next;
            }
            Frame::PartialData { data: d } => {
                data.extend_from_slice(&wire[d]);
                return Ok((data, wire.len(), false));
            }
            Frame::PartialLine => return Ok((data, wire.len(), false)),
            Frame::Last { next } => {
                if wire.len() < next + 2 {
                    return Ok((data, wire.len(), false));
                }
                if &wire[next..next + 2] != b"\r\n" {
                    return Err("the last chunk is not followed by CRLF".into());
                }
                return Ok((data, next + 2, true));
            }
        }
    }
}

/// The exact rejection of SPEC.md#bad-input for `verdict`.
pub fn rejection(verdict: Verdict) -> Vec<u8> {
    rejection_with(verdict.status(), verdict.reason())
}

/// Whether `got` is exactly the rejection for `verdict` (the verdict of the head's first
/// fault, whatever the chunking: SPEC.md#bad-input).
pub fn is_rejection(got: &[u8], verdict: Verdict) -> bool {
    got == rejection(verdict)
}

/// The rejection template with `status` and `reason`.
pub fn rejection_with(status: http::StatusCode, reason: &str) -> Vec<u8> {
    let phrase = status.canonical_reason().unwrap_or("");
    let body = format!("{} {}: {}", status.as_u16(), phrase, reason);
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status.as_u16(),
        phrase,
        body.len(),
        body
    )
    .into_bytes()
}

/// The interim response the server sends for `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Whether the wire ends at `w`, where the last expected response ended: bytes after it
/// are an answer nobody asked for.
pub fn expect_end(wire: &[u8], w: usize) -> Result<(), String> {
    if w != wire.len() {
        return Err(format!(
            "{} bytes after the last response: {:?}",
            wire.len() - w,
            show(&wire[w..])
        ));
    }
    Ok(())
}

/// Bytes for a failure message: lossy text, cut at 300 bytes.
pub fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(300)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > 300 {
        s.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    s
}
