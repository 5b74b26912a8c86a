//! Request framing: the request head and the request body (SPEC.md#bad-input).
//!
//! Pure functions over bytes, no I/O: [`parse_head`] turns a buffer into a request head or a
//! verdict, [`BodyDecoder`] decodes a Content-Length or chunked body incrementally. A head
//! that [`parse_head`] rejects never becomes a request. Stricter than RFC 9112 allows in a
//! few places (bare LF, Transfer-Encoding with Content-Length); SPEC.md says why.

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

/// The most header fields one request head may carry.
pub const MAX_HEADERS: usize = 128;

/// Why a request head or body was rejected, and the status the client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Malformed: 400 Bad Request.
    BadRequest(&'static str),
    /// The header section is over the limit: 431 Request Header Fields Too Large.
    HeadTooLarge,
    /// The request line does not end within the head limit: 414 URI Too Long.
    RequestLineTooLong,
    /// A transfer coding we do not implement: 501 Not Implemented.
    UnknownCoding,
    /// An `Expect` value other than `100-continue`: 417 Expectation Failed.
    UnknownExpectation,
}

impl Verdict {
    /// The status the server answers with before closing the connection.
    pub fn status(self) -> StatusCode {
        match self {
            Verdict::BadRequest(_) => StatusCode::BAD_REQUEST,
            Verdict::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Verdict::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            Verdict::UnknownCoding => StatusCode::NOT_IMPLEMENTED,
            Verdict::UnknownExpectation => StatusCode::EXPECTATION_FAILED,
        }
    }

    /// A short reason, for logs and the response body.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::BadRequest(why) => why,
            Verdict::HeadTooLarge => "request header section too large",
            Verdict::RequestLineTooLong => "request line too long",
            Verdict::UnknownCoding => "unsupported transfer coding",
            Verdict::UnknownExpectation => "unsupported expectation",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.status(), self.reason())
    }
}

impl std::error::Error for Verdict {}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request target exactly as sent (origin, absolute, authority or asterisk form).
    pub target: String,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields, names lower-cased, in order of arrival per name.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the client lets the connection stay open after this request.
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub expect_continue: bool,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: more bytes are needed (and `buf` is still under `max_head_bytes`).
/// `Ok(Some((head, n)))`: the head took the first `n` bytes. `Err`: the verdict.
///
/// A rejected head gets the verdict of its shortest rejected prefix, so the verdict does not
/// depend on how the bytes arrived: the server parses after every read, and a client sending
/// one byte per write makes it see every prefix (SPEC.md#bad-input, first fault wins).
pub fn parse_head(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<(RequestHead, usize)>, Verdict> {
    let verdict = match parse_prefix(buf, max_head_bytes) {
        Err(verdict) => verdict,
        decided => return decided,
    };
    //= SPEC.md#bad-input
    //# A request head with more than one fault MUST get the verdict of the shortest prefix of
    //# its bytes that is rejected, however its bytes were split across reads.
    // Once a prefix is rejected every longer one is (no later byte repairs a fault), so the
    // shortest rejected prefix is found by bisection: `ok` is never rejected, `bad` always.
    let (mut ok, mut bad) = (0, buf.len());
    let mut first = verdict;
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        match parse_prefix(&buf[..mid], max_head_bytes) {
            Err(verdict) => (bad, first) = (mid, verdict),
            _ => ok = mid,
        }
    }
    if cfg!(hijack_mutant = "verdict_of_whole_head") {
        return Err(verdict);
    }
    Err(first)
}

/// What the last parse of a partial head knows, so that the serving loop can skip parsing
/// again while the new bytes cannot change its outcome.
///
/// The serving loop parses the head after every read; a client trickling a long head one byte
/// per segment would make that quadratic. Bytes that are valid where they land (a token
/// character inside a method or field name, a field-value byte inside a value, a plain URI
/// character inside the target) leave a partial head partial: no fault, no end of line, no
/// new field. Only a read that brings any other byte, follows a CR, or reaches
/// `max_head_bytes` is parsed again, so the verdict and the read it comes at are unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PartialHead {
    /// Bytes of the buffer known to parse as a partial head.
    len: usize,
    /// Where the next byte lands.
    at: Position,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Position {
    /// Nothing known: parse.
    #[default]
    Unknown,
    Method,
    Target,
    Name,
    Value,
}

impl PartialHead {
    /// After `buf` parsed as a partial head.
    pub(crate) fn after(buf: &[u8]) -> PartialHead {
        let start = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buf.len());
        let rest = &buf[start..];
        let at = match rest.iter().rposition(|&b| b == b'\n') {
            None => match rest.iter().filter(|&&b| b == b' ').count() {
                0 => Position::Method,
                1 => Position::Target,
                _ => Position::Unknown,
            },
            // A field more would be one too many: let httparse say so at its first byte.
            Some(_) if rest.iter().filter(|&&b| b == b'\n').count() > MAX_HEADERS => {
                Position::Unknown
            }
            Some(nl) if rest[nl + 1..].contains(&b':') => Position::Value,
            Some(_) => Position::Name,
        };
        PartialHead { len: buf.len(), at }
    }

    /// Whether `buf` (the parsed bytes plus what arrived since) is still a partial head
    /// without parsing it: every new byte is valid where it lands.
    pub(crate) fn still_partial(&mut self, buf: &[u8], max_head_bytes: usize) -> bool {
        if cfg!(hijack_mutant = "reparse_every_read") {
            return false;
        }
        let known = self.at != Position::Unknown
            && self.len > 0
            && buf.len() > self.len
            && buf.len() < max_head_bytes
            && buf[self.len - 1] != b'\r'
            && buf[self.len..].iter().all(|&b| match self.at {
                Position::Method | Position::Name => is_token(std::slice::from_ref(&b)),
                Position::Target => b.is_ascii_alphanumeric() || b"-._~/?=&%+".contains(&b),
                Position::Value => b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80,
                Position::Unknown => false,
            });
        if known {
            self.len = buf.len();
        }
        known
    }
}

//= SPEC.md#bad-input
//# A request head whose request line does not end within max_head_bytes MUST be answered with
//# 414.
/// The verdict on a head that reached `max_head_bytes` without ending: 414 when its request
/// line (after the empty lines a client may send first) does not end within the limit either,
/// else 431. Only the first `max_head_bytes` bytes decide, so every longer prefix of the same
/// bytes gets the same verdict.
fn too_large(buf: &[u8], max_head_bytes: usize) -> Verdict {
    let head = &buf[..buf.len().min(max_head_bytes)];
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    if head[start..].contains(&b'\n') {
        Verdict::HeadTooLarge
    } else {
        Verdict::RequestLineTooLong
    }
}

/// The verdict on `buf` alone, without looking for a shorter rejected prefix.
fn parse_prefix(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<(RequestHead, usize)>, Verdict> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head_bytes => len,
        Ok(httparse::Status::Complete(_)) => return Err(too_large(buf, max_head_bytes)),
        Ok(httparse::Status::Partial) => {
            check_bytes(buf)?;
            return if buf.len() >= max_head_bytes {
                Err(too_large(buf, max_head_bytes))
            } else {
                Ok(None)
            };
        }
        Err(e) => {
            // httparse stops at a NUL or a bare CR with its own error; the table of
            // SPEC.md#bad-input gives those bytes their own reason.
            check_bytes(buf)?;
            return Err(match e {
                httparse::Error::TooManyHeaders => Verdict::HeadTooLarge,
                e => Verdict::BadRequest(parse_error(e)),
            });
        }
    };
    check_bytes(&buf[..len])?;

    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| Verdict::BadRequest("invalid method"))?;
    let target = req.path.unwrap_or_default().to_owned();
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Verdict::BadRequest("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| Verdict::BadRequest("invalid header value"))?;
        headers.append(name, value);
    }

    if target == "*" && method != Method::OPTIONS {
        return Err(Verdict::BadRequest("asterisk-form target outside OPTIONS"));
    }
    //= SPEC.md#bad-input
    //# An HTTP/1.1 request without a Host field, or any request with more than one, MUST be answered with 400.
    let hosts = headers.get_all(http::header::HOST).iter().count();
    // The mutant: the old rule, Host counted in HTTP/1.1 only (two in HTTP/1.0 accepted).
    let counted =
        !cfg!(hijack_mutant = "hosts_counted_in_http11_only") || version == Version::HTTP_11;
    if (counted && hosts > 1) || (version == Version::HTTP_11 && hosts == 0) {
        return Err(Verdict::BadRequest(
            "a request needs one Host field (HTTP/1.1) and at most one",
        ));
    }
    let body = body_kind(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, http::header::CONNECTION, "keep-alive"),
        _ => !has_token(&headers, http::header::CONNECTION, "close"),
    };
    let expect_continue = match headers.get(http::header::EXPECT) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => {
            version == Version::HTTP_11
        }
        Some(_) => return Err(Verdict::UnknownExpectation),
    };
    Ok(Some((
        RequestHead {
            method,
            target,
            version,
            headers,
            body,
            keep_alive,
            expect_continue,
        },
        len,
    )))
}

//= SPEC.md#bad-input
//# A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with 400.
/// Bytes httparse lets through that we refuse anywhere in a head: NUL, and LF without CR.
fn check_bytes(head: &[u8]) -> Result<(), Verdict> {
    if head.contains(&0) {
        return Err(Verdict::BadRequest("NUL byte in request head"));
    }
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' && (i == 0 || head[i - 1] != b'\r') {
            return Err(Verdict::BadRequest("bare LF in request head"));
        }
        if b == b'\r' && head.get(i + 1).is_some_and(|&next| next != b'\n') {
            return Err(Verdict::BadRequest("bare CR in request head"));
        }
    }
    Ok(())
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name (or obs-fold)",
        httparse::Error::HeaderValue => "invalid byte in header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token in request line",
        httparse::Error::Version => "invalid HTTP version",
        _ => "malformed request head",
    }
}

fn list_items(headers: &HeaderMap, name: http::header::HeaderName) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|item| item.trim_ascii())
}

fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    list_items(headers, name).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

fn is_token(item: &[u8]) -> bool {
    !item.is_empty()
        && item
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

//= SPEC.md#bad-input
//# A request with both Transfer-Encoding and Content-Length, or with Content-Length values
//# that differ or are not decimal digits, MUST be answered with 400.
fn body_kind(headers: &HeaderMap, version: Version) -> Result<BodyKind, Verdict> {
    let has_te = headers.contains_key(http::header::TRANSFER_ENCODING);
    let has_cl = headers.contains_key(http::header::CONTENT_LENGTH);
    if has_te {
        if has_cl {
            return Err(Verdict::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(Verdict::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        let codings: Vec<&[u8]> = list_items(headers, http::header::TRANSFER_ENCODING)
            .filter(|item| !item.is_empty())
            .collect();
        if codings.is_empty() || !codings.iter().all(|c| is_token(c)) {
            return Err(Verdict::BadRequest("malformed Transfer-Encoding"));
        }
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        if codings.iter().filter(|c| chunked(c)).count() > 1 {
            return Err(Verdict::BadRequest("chunked applied more than once"));
        }
        //= SPEC.md#bad-input
        //# A Transfer-Encoding whose final coding is not chunked MUST be answered with 400.
        if !codings.last().is_some_and(|c| chunked(c)) {
            return Err(Verdict::BadRequest(
                "chunked is not the final transfer coding",
            ));
        }
        //= SPEC.md#bad-input
        //# A transfer coding other than chunked before a final chunked MUST be answered with
        //# 501.
        if codings.len() > 1 {
            return Err(Verdict::UnknownCoding);
        }
        return Ok(BodyKind::Chunked);
    }
    let mut length = None;
    for item in list_items(headers, http::header::CONTENT_LENGTH) {
        let n = parse_decimal(item).ok_or(Verdict::BadRequest("invalid Content-Length"))?;
        if length.is_some_and(|prev| prev != n) {
            return Err(Verdict::BadRequest("differing Content-Length values"));
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => BodyKind::Empty,
        Some(n) => BodyKind::Length(n),
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The most bytes a chunk-size line (with extensions) or the trailer section may take.
pub const MAX_CHUNK_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `digits` so far.
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeSpace {
        size: u64,
    },
    /// Inside chunk extensions, up to CR.
    Extension {
        size: u64,
    },
    /// CR seen after the size line; expecting LF.
    SizeLf {
        size: u64,
    },
    /// Chunk data left.
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section; `at_line_start`, whether the field name is still being read
    /// (`in_name`: no colon yet), and bytes in the current line.
    Trailer {
        at_line_start: bool,
        in_name: bool,
        line: usize,
    },
    TrailerLf {
        end: bool,
    },
}

/// Incremental request body decoder: Content-Length or chunked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyDecoder {
    state: Decoding,
    line_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoding {
    Length(u64),
    Chunked(Chunk),
    Done,
}

/// What one [`BodyDecoder::decode`] step produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// This many body bytes were copied out (at least one).
    Data(usize),
    /// The input is used up; more bytes are needed.
    NeedMore,
    /// The body is complete.
    End,
}

impl BodyDecoder {
    /// A decoder for a body of `kind`.
    pub fn new(kind: BodyKind) -> Self {
        let state = match kind {
            BodyKind::Empty | BodyKind::Length(0) => Decoding::Done,
            BodyKind::Length(n) => Decoding::Length(n),
            BodyKind::Chunked => Decoding::Chunked(Chunk::Size { size: 0, digits: 0 }),
        };
        Self {
            state,
            line_bytes: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == Decoding::Done
    }

    /// Consumes framing and data from the front of `input`, copying body bytes into `out`.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut [u8]) -> Result<Decoded, Verdict> {
        loop {
            match self.state {
                Decoding::Done => return Ok(Decoded::End),
                Decoding::Length(left) => {
                    let n = take_data(input, out, left);
                    if n == 0 {
                        return Ok(Decoded::NeedMore);
                    }
                    self.state = if left == n as u64 {
                        Decoding::Done
                    } else {
                        Decoding::Length(left - n as u64)
                    };
                    return Ok(Decoded::Data(n));
                }
                Decoding::Chunked(Chunk::Data { left }) => {
                    let n = take_data(input, out, left);
                    if n == 0 {
                        return Ok(Decoded::NeedMore);
                    }
                    let left = left - n as u64;
                    self.state = Decoding::Chunked(if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { left }
                    });
                    return Ok(Decoded::Data(n));
                }
                Decoding::Chunked(chunk) => {
                    if input.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let byte = input.get_u8();
                    self.line_bytes += 1;
                    if self.line_bytes > MAX_CHUNK_LINE {
                        return Err(Verdict::BadRequest(
                            "chunk line or trailer section too long",
                        ));
                    }
                    self.state = match chunk_step(chunk, byte)? {
                        Some(next) => Decoding::Chunked(next),
                        None => Decoding::Done,
                    };
                    if matches!(
                        self.state,
                        Decoding::Chunked(Chunk::Data { .. } | Chunk::Size { digits: 0, .. })
                    ) {
                        self.line_bytes = 0;
                    }
                }
            }
        }
    }
}

fn take_data(input: &mut BytesMut, out: &mut [u8], left: u64) -> usize {
    let n = input
        .len()
        .min(out.len())
        .min(usize::try_from(left).unwrap_or(usize::MAX));
    out[..n].copy_from_slice(&input[..n]);
    input.advance(n);
    n
}

//= SPEC.md#bad-input
//# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not
//# followed by CRLF MUST make the body fail; the server MUST then close the connection.
/// One framing byte of a chunked body. `None`: the body ended.
fn chunk_step(chunk: Chunk, b: u8) -> Result<Option<Chunk>, Verdict> {
    const BAD_SIZE: Verdict = Verdict::BadRequest("invalid chunk size");
    const BAD_LINE: Verdict = Verdict::BadRequest("invalid chunk framing");
    Ok(Some(match chunk {
        Chunk::Size { size, digits } => match b {
            _ if b.is_ascii_hexdigit() => {
                if size > u64::MAX >> 4 {
                    return Err(BAD_SIZE);
                }
                let d = if cfg!(hijack_mutant = "chunk_size_letters_as_zero")
                    && b.is_ascii_alphabetic()
                {
                    0
                } else {
                    (b as char).to_digit(16).unwrap_or(0)
                };
                Chunk::Size {
                    size: size << 4 | u64::from(d),
                    digits: digits + 1,
                }
            }
            _ if digits == 0 => return Err(BAD_SIZE),
            b' ' | b'\t' => Chunk::SizeSpace { size },
            b';' => Chunk::Extension { size },
            b'\r' => Chunk::SizeLf { size },
            _ => return Err(BAD_SIZE),
        },
        Chunk::SizeSpace { size } => match b {
            b' ' | b'\t' => Chunk::SizeSpace { size },
            b';' => Chunk::Extension { size },
            b'\r' => Chunk::SizeLf { size },
            _ => return Err(BAD_SIZE),
        },
        Chunk::Extension { size } => match b {
            b'\r' => Chunk::SizeLf { size },
            b'\t' => Chunk::Extension { size },
            0..=0x1f | 0x7f => return Err(Verdict::BadRequest("control byte in chunk extension")),
            _ => Chunk::Extension { size },
        },
        Chunk::SizeLf { size } => match (b, size) {
            (b'\n', 0) => Chunk::Trailer {
                at_line_start: true,
                in_name: true,
                line: 0,
            },
            (b'\n', left) => Chunk::Data { left },
            _ => return Err(BAD_LINE),
        },
        Chunk::Data { .. } => unreachable_data(),
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return Err(BAD_LINE),
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size { size: 0, digits: 0 },
            _ => return Err(BAD_LINE),
        },
        Chunk::Trailer {
            at_line_start,
            in_name,
            line,
        } => match b {
            b'\r' if at_line_start => Chunk::TrailerLf { end: true },
            // A trailer line is a field line (RFC 9112 7.1.2): a line without a colon, or
            // with a name that is not a token, is not one; "0\r\n" followed by a request
            // line would otherwise swallow that request as a trailer.
            b'\r' if in_name => {
                return Err(Verdict::BadRequest("trailer field line without a colon"));
            }
            b'\r' => Chunk::TrailerLf { end: false },
            b' ' | b'\t' if at_line_start => {
                return Err(Verdict::BadRequest("obs-fold in trailer"));
            }
            b':' if at_line_start => return Err(Verdict::BadRequest("empty trailer field name")),
            b':' if in_name => Chunk::Trailer {
                at_line_start: false,
                in_name: false,
                line: line + 1,
            },
            b'\t' if !in_name => Chunk::Trailer {
                at_line_start: false,
                in_name,
                line: line + 1,
            },
            0..=0x1f | 0x7f => return Err(Verdict::BadRequest("control byte in trailer")),
            _ if in_name && !is_token(&[b]) => {
                return Err(Verdict::BadRequest("invalid trailer field name"));
            }
            _ => Chunk::Trailer {
                at_line_start: false,
                in_name,
                line: line + 1,
            },
        },
        Chunk::TrailerLf { end } => match (b, end) {
            (b'\n', true) => return Ok(None),
            (b'\n', false) => Chunk::Trailer {
                at_line_start: true,
                in_name: true,
                line: 0,
            },
            _ => return Err(BAD_LINE),
        },
    }))
}

/// Data is copied in bulk by `decode`, never stepped byte by byte.
fn unreachable_data() -> Chunk {
    Chunk::DataCr
}

#[cfg(test)]
mod partial_head_tests {
    use super::*;

    /// Feeds `head` one byte at a time as the serving loop does; returns how many times it
    /// parsed, stopping past `limit` (`skipping_never_changes_a_verdict_or_its_byte` checks
    /// the skips are exact).
    fn parses_one_byte_at_a_time(head: &[u8], max: usize, limit: usize) -> usize {
        let mut partial = PartialHead::default();
        let mut parses = 0;
        for end in 1..=head.len() {
            if partial.still_partial(&head[..end], max) {
                continue;
            }
            parses += 1;
            if parses > limit {
                return parses;
            }
            match parse_head(&head[..end], max) {
                Ok(None) => partial = PartialHead::after(&head[..end]),
                _ => return parses,
            }
        }
        parses
    }

    #[test]
    fn a_trickled_long_head_is_parsed_a_bounded_number_of_times() {
        let mut head = b"GET /".to_vec();
        head.extend(std::iter::repeat_n(b'a', 64 << 10));
        head.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nX-Long: ");
        head.extend(std::iter::repeat_n(b"v w ".iter().copied(), 16 << 10).flatten());
        head.extend_from_slice(b"\r\nLong-Name-");
        head.extend(std::iter::repeat_n(b'n', 64 << 10));
        head.extend_from_slice(b": v\r\n\r\n");
        let parses = parses_one_byte_at_a_time(&head, 1 << 20, 40);
        assert!(parses < 40, "{parses} parses of a {}-byte head", head.len());
    }

    //= SPEC.md#bad-input
    //= type=test
    //# A request head with more than one fault MUST get the verdict of the shortest prefix of
    //# its bytes that is rejected, however its bytes were split across reads.
    #[test]
    fn skipping_never_changes_a_verdict_or_its_byte() {
        let mut many_fields = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many_fields.extend_from_slice(format!("f{i}: v\r\n").as_bytes());
        }
        many_fields.extend_from_slice(b"more: v\r\n\r\n");
        let heads: Vec<Vec<u8>> = vec![
            b"GET /a?b=c&d%20 HTTP/1.1\r\nHost: x\r\nA: b c\t\x80\r\n\r\n".to_vec(),
            b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n".to_vec(),
            b"G@T / HTTP/1.1\r\n\r\n".to_vec(),
            b"GET /a\0b HTTP/1.1\r\n\r\n".to_vec(),
            many_fields,
        ];
        for head in &heads {
            // Whole, the verdict; trickled with skips, the same verdict at the same byte.
            let first = (1..=head.len())
                .find(|&end| !matches!(parse_head(&head[..end], 1 << 20), Ok(None)))
                .unwrap_or(head.len());
            let mut partial = PartialHead::default();
            for end in 1..=head.len() {
                if partial.still_partial(&head[..end], 1 << 20) {
                    assert!(end < first, "skipped the deciding byte of {head:?}");
                    continue;
                }
                match parse_head(&head[..end], 1 << 20) {
                    Ok(None) => partial = PartialHead::after(&head[..end]),
                    _ => {
                        assert_eq!(end, first, "decided at another byte: {head:?}");
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn a_head_at_max_head_bytes_is_parsed() {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nA: ".to_vec();
        head.extend(std::iter::repeat_n(b'v', 300));
        let mut partial = PartialHead::after(&head[..40]);
        assert!(!partial.still_partial(&head[..256], 256));
    }
}

#[cfg(test)]
mod too_large_tests {
    use super::*;

    fn verdict(buf: &[u8], max: usize) -> Verdict {
        parse_head(buf, max).expect_err("a rejected head")
    }

    //= SPEC.md#bad-input
    //= type=test
    //# A request head whose request line does not end within max_head_bytes MUST be answered with
    //# 414.
    #[test]
    fn a_request_line_past_the_limit_gets_414_and_a_longer_head_431() {
        let mut long_target = b"GET /".to_vec();
        long_target.extend(std::iter::repeat_n(b'a', 300));
        let partial = long_target.clone();
        long_target.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(verdict(&partial, 256), Verdict::RequestLineTooLong);
        assert_eq!(verdict(&long_target, 256), Verdict::RequestLineTooLong);
        assert_eq!(
            Verdict::RequestLineTooLong.status(),
            StatusCode::URI_TOO_LONG
        );
        // Empty lines before the request line are not its end.
        let mut leading = b"\r\n\r\n".to_vec();
        leading.extend_from_slice(&partial);
        assert_eq!(verdict(&leading, 256), Verdict::RequestLineTooLong);
        // The request line ends within the limit, the head does not: 431.
        let mut long_field = b"GET / HTTP/1.1\r\nHost: x\r\nA: ".to_vec();
        long_field.extend(std::iter::repeat_n(b'v', 300));
        assert_eq!(verdict(&long_field, 256), Verdict::HeadTooLarge);
        long_field.extend_from_slice(b"\r\n\r\n");
        assert_eq!(verdict(&long_field, 256), Verdict::HeadTooLarge);
        // A request line that ends exactly at the limit has ended: the head is what is long.
        let mut at_limit = b"GET /".to_vec();
        at_limit.extend(std::iter::repeat_n(b'a', 256 - 16));
        at_limit.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(at_limit.len(), 256);
        at_limit.extend_from_slice(b"Host: x\r\n\r\n");
        assert_eq!(verdict(&at_limit, 256), Verdict::HeadTooLarge);
    }
}
