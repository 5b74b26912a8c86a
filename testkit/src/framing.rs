//! Request framing written from SPEC.md#bad-input and its "Request bodies" rules alone, without
//! the core's parser (`hijack::parse`): where a request head ends, what its request line and
//! framing fields say, and where its body ends. The serving fuzz targets decide request
//! boundaries with it, so a framing bug shared by the core's parser and its server (both use
//! `parse_head` and `BodyDecoder`) shows up as a difference with this model.
//!
//! The byte grammar of a head (which byte httparse refuses where) is not modelled here: the
//! `request_head` target checks the core's verdicts against SPEC.md's rules on their own. A head
//! this model frames is one whose bytes it finds clean (tokens, visible targets, field values
//! without control bytes); for anything else it says [`HeadModel::Unsure`].

use hijack::parse::BodyKind;

/// What the model makes of the bytes at the start of a connection's unread input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadModel {
    /// No complete head yet (no empty line after the request line).
    Partial,
    /// A clean head the rules accept.
    Head(Framed),
    /// A clean head a whole-head rule rejects (Host, framing, Expect), with the status.
    Rejected(u16),
    /// Bytes the model does not judge (a byte-grammar question).
    Unsure,
}

/// A head as the model frames it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// Bytes of the head, empty lines before the request line included.
    pub len: usize,
    /// The request line's method.
    pub method: String,
    /// The request line's target.
    pub target: String,
    /// HTTP/1.1 (else HTTP/1.0).
    pub http11: bool,
    /// The body's framing.
    pub body: BodyKind,
    /// The connection stays open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The client waits for 100 Continue.
    pub expect_continue: bool,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The comma-separated items of every field named `name`, trimmed.
fn items<'a>(fields: &'a [(String, &'a [u8])], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    fields
        .iter()
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Frames the head at the start of `buf` (SPEC.md#bad-input, RFC 9112 §2.2, §3, §5, §6).
pub fn frame_head(buf: &[u8]) -> HeadModel {
    // Empty lines before the request line do not end it.
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let Some(end) = buf[start..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| start + i + 4)
    else {
        return HeadModel::Partial;
    };
    let head = &buf[start..end - 4];
    if head.contains(&0) || head.iter().any(|&b| b == b'\n' || b == b'\r') && !clean_lines(head) {
        return HeadModel::Unsure;
    }
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return HeadModel::Unsure;
    };
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return HeadModel::Unsure,
    };
    const METHODS: &[&[u8]] = &[
        b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
    ];
    if !METHODS.contains(&method)
        || target.is_empty()
        || !target.iter().all(|&b| (0x21..0x7f).contains(&b))
        || (target == b"*" && method != b"OPTIONS")
    {
        return HeadModel::Unsure;
    }
    let mut fields: Vec<(String, &[u8])> = Vec::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return HeadModel::Unsure;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name) || value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return HeadModel::Unsure;
        }
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let first = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
        let last = value.iter().rposition(|b| !ows(b)).map_or(first, |i| i + 1);
        let value = &value[first..last];
        fields.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value));
    }
    if fields.len() > hijack::parse::MAX_HEADERS {
        return HeadModel::Unsure;
    }
    let count = |name: &str| fields.iter().filter(|(n, _)| n == name).count();
    //= SPEC.md#bad-input
    //= type=test
    //# An HTTP/1.1 request without a Host field, or any request with more than one, MUST be answered with 400.
    if count("host") > 1 || (http11 && count("host") == 0) {
        return HeadModel::Rejected(400);
    }
    let body = match body_kind(&fields, http11) {
        Ok(body) => body,
        Err(status) => return HeadModel::Rejected(status),
    };
    let has = |name: &str, token: &str| {
        items(&fields, name).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
    };
    // Only the first Expect field is considered; HTTP/1.0's 100-continue is ignored.
    let expect_continue = match fields.iter().find(|(n, _)| n == "expect") {
        None => false,
        Some((_, v)) if v.eq_ignore_ascii_case(b"100-continue") => http11,
        //= SPEC.md#bad-input
        //= type=test
        //# An Expect field other than 100-continue MUST be answered with 417.
        Some(_) => return HeadModel::Rejected(417),
    };
    HeadModel::Head(Framed {
        len: end,
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        http11,
        body,
        keep_alive: if http11 {
            !has("connection", "close")
        } else {
            has("connection", "keep-alive")
        },
        expect_continue,
    })
}

/// Every CR is followed by LF and every LF preceded by CR.
fn clean_lines(head: &[u8]) -> bool {
    head.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => head.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && head[i - 1] == b'\r',
        _ => true,
    })
}

fn body_kind(fields: &[(String, &[u8])], http11: bool) -> Result<BodyKind, u16> {
    let te = fields.iter().any(|(n, _)| n == "transfer-encoding");
    let cl = fields.iter().any(|(n, _)| n == "content-length");
    //= SPEC.md#bad-input
    //= type=test
    //# A request with both Transfer-Encoding and Content-Length, or with Content-Length values
    //# that differ or are not decimal digits, MUST be answered with 400.
    if te && cl {
        return Err(400);
    }
    if te {
        //= SPEC.md#bad-input
        //= type=test
        //# A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed
        //# Transfer-Encoding, or chunked applied more than once MUST be answered with 400.
        if !http11 {
            return Err(400);
        }
        let codings: Vec<&[u8]> = items(fields, "transfer-encoding")
            .filter(|c| !c.is_empty())
            .collect();
        if codings.is_empty() || !codings.iter().all(|c| is_token(c)) {
            return Err(400);
        }
        let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
        if codings.iter().filter(|c| chunked(c)).count() > 1 {
            return Err(400);
        }
        //= SPEC.md#bad-input
        //= type=test
        //# A Transfer-Encoding whose final coding is not chunked MUST be answered with 400.
        if !codings.last().is_some_and(chunked) {
            return Err(400);
        }
        //= SPEC.md#bad-input
        //= type=test
        //# A transfer coding other than chunked before a final chunked MUST be answered with 501.
        if codings.len() > 1 {
            return Err(501);
        }
        return Ok(BodyKind::Chunked);
    }
    let mut length: Option<u64> = None;
    for item in items(fields, "content-length") {
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(400);
        }
        let n = std::str::from_utf8(item)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(400u16)?;
        if length.is_some_and(|l| l != n) {
            return Err(400);
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => BodyKind::Empty,
        Some(n) => BodyKind::Length(n),
    })
}

/// How a body ends in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// After this many bytes of the input.
    End(usize),
    /// The input ran out first.
    NeedMore,
    /// The framing is wrong: the body read fails.
    Failed,
}

/// The most bytes a chunk-size line (with extensions) or the last chunk's line with the
/// trailer section may take (SPEC.md#bad-input, "Request bodies").
pub const MAX_CHUNK_LINE: usize = 4096;

/// The body of `kind` at the start of `input`: its bytes and how it ended.
pub fn decode_body(kind: BodyKind, input: &[u8]) -> (Vec<u8>, BodyEnd) {
    match kind {
        BodyKind::Empty => (Vec::new(), BodyEnd::End(0)),
        BodyKind::Length(n) => match usize::try_from(n) {
            Ok(n) if n <= input.len() => (input[..n].to_vec(), BodyEnd::End(n)),
            _ => (input.to_vec(), BodyEnd::NeedMore),
        },
        BodyKind::Chunked => chunked(input),
    }
}

//= SPEC.md#bad-input
//= type=test
//# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not followed by CRLF MUST make the body fail; the server MUST then close the connection.
//= SPEC.md#bad-input
//= type=test
//# A chunk-size line with a bare CR or LF, a control byte in a chunk extension or a trailer field, an obs-fold or an empty field name in the trailer section, a chunk-size line or trailer section over 4096 bytes, or a body cut short by the end of stream MUST also make the body fail.
fn chunked(input: &[u8]) -> (Vec<u8>, BodyEnd) {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        // The chunk-size line: hex digits, optional SP/HTAB, optional `;` extensions, CRLF.
        let line_start = at;
        let Some(lf) = input[at..].iter().position(|&b| b == b'\n').map(|i| at + i) else {
            return (body, short_or_failed(&input[at..]));
        };
        let line = &input[at..lf];
        if lf + 1 - line_start > MAX_CHUNK_LINE {
            return (body, BodyEnd::Failed);
        }
        let Some(line) = line.strip_suffix(b"\r") else {
            return (body, BodyEnd::Failed);
        };
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return (body, BodyEnd::Failed);
        }
        let mut size: u64 = 0;
        for &d in &line[..digits] {
            let Some(next) = size.checked_mul(16) else {
                return (body, BodyEnd::Failed);
            };
            size = next + u64::from((d as char).to_digit(16).unwrap_or(0));
        }
        let rest = &line[digits..];
        let ws = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let rest = &rest[ws..];
        let ok = rest.is_empty()
            || (rest[0] == b';'
                && rest[1..]
                    .iter()
                    .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)));
        if !ok {
            return (body, BodyEnd::Failed);
        }
        at = lf + 1;
        if size == 0 {
            return trailer(input, at, line_start, body);
        }
        let Ok(size) = usize::try_from(size) else {
            return (body, BodyEnd::Failed);
        };
        if input.len() - at < size {
            body.extend_from_slice(&input[at..]);
            return (body, BodyEnd::NeedMore);
        }
        body.extend_from_slice(&input[at..at + size]);
        at += size;
        match &input[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [] | [b'\r'] => return (body, BodyEnd::NeedMore),
            _ => return (body, BodyEnd::Failed),
        }
    }
}

/// An incomplete size line: more may come unless it already holds a fault.
fn short_or_failed(rest: &[u8]) -> BodyEnd {
    let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if rest.is_empty() {
        return BodyEnd::NeedMore;
    }
    if digits == 0 || rest.len() > MAX_CHUNK_LINE {
        return BodyEnd::Failed;
    }
    let tail = &rest[digits..];
    let ws = tail
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let tail = &tail[ws..];
    let ok = match tail {
        [] | [b'\r'] => true,
        [b';', ext @ ..] => {
            let ext = ext.strip_suffix(b"\r").unwrap_or(ext);
            ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        }
        _ => false,
    };
    // An overflowing size fails as soon as its 17th significant digit arrives.
    let significant = rest[..digits].iter().skip_while(|&&b| b == b'0').count();
    if !ok || significant > 16 {
        BodyEnd::Failed
    } else {
        BodyEnd::NeedMore
    }
}

/// The trailer section after the last chunk's line (which starts at `line_start`): field
/// lines (a token name, a colon, no control byte but HTAB), then an empty line.
fn trailer(input: &[u8], mut at: usize, line_start: usize, body: Vec<u8>) -> (Vec<u8>, BodyEnd) {
    loop {
        let rest = &input[at..];
        let lf = rest.iter().position(|&b| b == b'\n');
        let line = match lf {
            Some(i) => &rest[..i],
            None => rest,
        };
        let complete = lf.is_some();
        let used = at + line.len() + usize::from(complete) - line_start;
        if used > MAX_CHUNK_LINE {
            return (body, BodyEnd::Failed);
        }
        let (text, cr) = match line.strip_suffix(b"\r") {
            Some(text) => (text, true),
            None => (line, false),
        };
        if complete && !cr {
            return (body, BodyEnd::Failed); // a bare LF
        }
        if text.contains(&b'\r') {
            return (body, BodyEnd::Failed); // a bare CR
        }
        if text.is_empty() {
            if complete {
                return (body, BodyEnd::End(at + line.len() + 1));
            }
            return (body, BodyEnd::NeedMore);
        }
        if text[0] == b' ' || text[0] == b'\t' || text[0] == b':' {
            return (body, BodyEnd::Failed); // obs-fold, empty name
        }
        let colon = text.iter().position(|&b| b == b':');
        let name = &text[..colon.unwrap_or(text.len())];
        if !name.iter().all(|&b| is_tchar(b)) {
            return (body, BodyEnd::Failed);
        }
        if let Some(c) = colon
            && text[c + 1..]
                .iter()
                .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return (body, BodyEnd::Failed);
        }
        if colon.is_none() && cr {
            return (body, BodyEnd::Failed); // a field line without a colon
        }
        if !complete {
            return (body, BodyEnd::NeedMore);
        }
        at += line.len() + 1;
    }
}
