//! Property: request framing against an executable model (issue 5, point 3).
//!
//! `model` below is a small reference model of request framing written from SPEC.md's rules
//! (#bad-input, #serving-loop): pipelined requests, Content-Length, chunked, and the
//! verdicts 400, 414, 431, 501 and 417. It does not use `hijack::parse`.
//!
//! Invariant: for any sequence of requests (valid ones, and ones with exactly one defect),
//! delivered in any split, the server hands its handler the same requests (method, target,
//! version, fields, body) as the model, answers the same statuses, and closes the connection
//! where the model does, fed whole, one byte at a time, and at random split points. And
//! `hijack::parse::BodyDecoder` decodes any body, fed in random pieces into random output
//! sizes, as the model does.
//!
//! Splits are exact and deterministic: the server end of the pipe is wrapped so that no read
//! returns bytes across a split point (everything is written up front), and
//! `serve_connection` runs on the test's thread.

mod prop_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use hijack::parse::{BodyDecoder, BodyKind, Decoded};
use hijack::pipe::pipe;
use hijack::{Request, ResponseWriter, ServerConfig};
use hijack_testkit::tap::{Cuts, TappedPipe};
use http::StatusCode;
use prop_support::{config, parse_response};
use proptest::prelude::*;

/// The head limit the server is configured with here (small, so 431 is cheap to reach).
const MAX_HEAD: usize = 1024;
/// SPEC.md#bad-input: more header fields than this get 431.
const MAX_FIELDS: usize = 128;
/// SPEC.md#bad-input (request bodies): a chunk-size line or trailer section over this fails the body.
const MAX_CHUNK_LINE: usize = 4096;

// =======================================================================================
// The model
// =======================================================================================

/// A request as its handler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    http10: bool,
    /// Field name (lower case) -> values in order of arrival.
    fields: BTreeMap<String, Vec<String>>,
    /// The decoded body, or `None` when reading it failed.
    body: Option<Vec<u8>>,
}

/// What the server does with a byte stream that ends (the client half-closes) after it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Served {
    requests: Vec<Seen>,
    /// Statuses of the final responses, in order (a handler that read its body answers 204).
    statuses: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BodyModel {
    /// The body and the wire bytes it took.
    Complete(Vec<u8>, usize),
    /// The body is malformed.
    Fail,
    /// The bytes end first; the data bytes seen so far.
    Incomplete(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn trim(s: &[u8]) -> &[u8] {
    let s = &s[s.iter().take_while(|b| **b == b' ' || **b == b'\t').count()..];
    &s[..s.len()
        - s.iter()
            .rev()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count()]
}

/// Comma-separated list items, trimmed (SPEC.md#bad-input).
fn items(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|i| String::from_utf8(trim(i.as_bytes()).to_vec()).unwrap())
        .collect()
}

/// Decodes a body of `framing` from the start of `wire` (SPEC.md#bad-input, request bodies).
fn model_body(framing: Framing, wire: &[u8]) -> BodyModel {
    match framing {
        Framing::None => BodyModel::Complete(Vec::new(), 0),
        Framing::Length(n) => {
            let n = n as usize;
            if wire.len() >= n {
                BodyModel::Complete(wire[..n].to_vec(), n)
            } else {
                BodyModel::Incomplete(wire.to_vec())
            }
        }
        Framing::Chunked => model_chunked(wire),
    }
}

fn model_chunked(wire: &[u8]) -> BodyModel {
    let mut data = Vec::new();
    let mut at = 0;
    // Bytes of the current chunk-size line, or of the last-chunk line and trailer section.
    let mut line;
    let next = |at: &mut usize, line: &mut usize| -> Option<u8> {
        let b = *wire.get(*at)?;
        *at += 1;
        *line += 1;
        Some(b)
    };
    macro_rules! byte {
        () => {
            match next(&mut at, &mut line) {
                None => return BodyModel::Incomplete(data),
                Some(_) if line > MAX_CHUNK_LINE => return BodyModel::Fail,
                Some(b) => b,
            }
        };
    }
    loop {
        line = 0;
        // chunk-size: 1*HEXDIG, no overflow past 64 bits.
        let mut size: u128 = 0;
        let mut digits = 0;
        let mut b = byte!();
        while b.is_ascii_hexdigit() {
            size = size * 16 + (b as char).to_digit(16).unwrap() as u128;
            if size > u64::MAX as u128 {
                return BodyModel::Fail;
            }
            digits += 1;
            b = byte!();
        }
        if digits == 0 {
            return BodyModel::Fail;
        }
        // Whitespace, then an extension up to CR.
        while b == b' ' || b == b'\t' {
            b = byte!();
        }
        if b == b';' {
            loop {
                b = byte!();
                if b == b'\r' {
                    break;
                }
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    return BodyModel::Fail;
                }
            }
        }
        if b != b'\r' || byte!() != b'\n' {
            return BodyModel::Fail;
        }
        if size == 0 {
            break;
        }
        let size = size as usize;
        let take = size.min(wire.len() - at);
        data.extend_from_slice(&wire[at..at + take]);
        at += take;
        if take < size {
            return BodyModel::Incomplete(data);
        }
        line = 0;
        if byte!() != b'\r' || byte!() != b'\n' {
            return BodyModel::Fail;
        }
    }
    // Trailer section: field lines, then an empty line. No obs-fold, no empty name, no CTL.
    loop {
        let first = byte!();
        if first == b'\r' {
            return if byte!() == b'\n' {
                BodyModel::Complete(data, at)
            } else {
                BodyModel::Fail
            };
        }
        if first == b' ' || first == b'\t' || first == b':' {
            return BodyModel::Fail;
        }
        let mut b = first;
        loop {
            if b == b'\r' {
                if byte!() != b'\n' {
                    return BodyModel::Fail;
                }
                break;
            }
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                return BodyModel::Fail;
            }
            b = byte!();
        }
    }
}

/// A parsed head: the request and how it continues.
struct HeadModel {
    seen: Seen,
    framing: Framing,
    keep_alive: bool,
}

/// Parses one complete head (its bytes, without the final CRLF CRLF) or gives the verdict.
fn model_head(head: &[u8]) -> Result<HeadModel, u16> {
    let text = head;
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(400);
    };
    if !is_token(method) || target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b))
    {
        return Err(400);
    }
    let http10 = match version {
        b"HTTP/1.0" => true,
        b"HTTP/1.1" => false,
        _ => return Err(400),
    };
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut count = 0;
    for line in lines {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(400); // obs-fold
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(400);
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if !is_token(name) {
            return Err(400);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(400);
        }
        count += 1;
        fields
            .entry(String::from_utf8(name.to_ascii_lowercase()).unwrap())
            .or_default()
            .push(String::from_utf8(value.to_vec()).unwrap());
    }
    if count > MAX_FIELDS {
        return Err(431);
    }
    if target == b"*" && method != b"OPTIONS" {
        return Err(400);
    }
    let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
    if get("host").len() > 1 || (!http10 && get("host").is_empty()) {
        return Err(400);
    }
    let te = get("transfer-encoding");
    let cl = get("content-length");
    let framing = if !te.is_empty() {
        if !cl.is_empty() || http10 {
            return Err(400);
        }
        let codings = items(&te);
        if codings.iter().all(|c| c.is_empty()) || !codings.iter().all(|c| is_token(c.as_bytes())) {
            return Err(400);
        }
        let codings: Vec<&String> = codings.iter().filter(|c| !c.is_empty()).collect();
        let chunked = |c: &&&String| c.eq_ignore_ascii_case("chunked");
        if codings.iter().filter(chunked).count() > 1
            || !codings.last().is_some_and(|c| chunked(&c))
        {
            return Err(400);
        }
        if codings.len() > 1 {
            return Err(501);
        }
        Framing::Chunked
    } else {
        let mut length: Option<u64> = None;
        for item in items(&cl) {
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(400);
            }
            let Ok(n) = item.parse::<u64>() else {
                return Err(400);
            };
            if length.is_some_and(|l| l != n) {
                return Err(400);
            }
            length = Some(n);
        }
        match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    if let Some(expect) = get("expect").first()
        && !expect.eq_ignore_ascii_case("100-continue")
    {
        return Err(417);
    }
    let connection = items(&get("connection"));
    let has = |token: &str| connection.iter().any(|c| c.eq_ignore_ascii_case(token));
    let keep_alive = if http10 {
        has("keep-alive")
    } else {
        !has("close")
    };
    Ok(HeadModel {
        seen: Seen {
            method: String::from_utf8(method.to_vec()).unwrap(),
            target: String::from_utf8(target.to_vec()).unwrap(),
            http10,
            fields,
            body: None,
        },
        framing,
        keep_alive,
    })
}

/// The model: what a server does with `stream` followed by end of stream.
fn model(stream: &[u8]) -> Served {
    let mut served = Served::default();
    let mut at = 0;
    while at < stream.len() {
        let rest = &stream[at..];
        // The head: up to CRLF CRLF; a NUL, bare LF or bare CR anywhere in it is a 400.
        let mut end = None;
        for (i, &b) in rest.iter().enumerate() {
            let bad = b == 0
                || (b == b'\n' && (i == 0 || rest[i - 1] != b'\r'))
                || (b == b'\r' && rest.get(i + 1).is_some_and(|&n| n != b'\n'));
            if bad && end.is_none() && i < MAX_HEAD {
                served.statuses.push(400);
                return served;
            }
            if i >= 3 && &rest[i - 3..=i] == b"\r\n\r\n" {
                end = Some(i + 1);
                break;
            }
        }
        let head_len = match end {
            Some(len) if len <= MAX_HEAD => len,
            // No complete head within the limit: too large (or the stream ended inside it);
            // 414 when the request line does not end within it either.
            _ if rest.len() >= MAX_HEAD => {
                let head = &rest[..MAX_HEAD];
                let start = head.iter().position(|&b| b != b'\r' && b != b'\n');
                let line_ended = start.is_some_and(|i| head[i..].contains(&b'\n'));
                served.statuses.push(if line_ended { 431 } else { 414 });
                return served;
            }
            _ => return served,
        };
        let head = match model_head(&rest[..head_len - 4]) {
            Ok(head) => head,
            Err(status) => {
                served.statuses.push(status);
                return served;
            }
        };
        at += head_len;
        let mut seen = head.seen;
        match model_body(head.framing, &stream[at..]) {
            BodyModel::Complete(body, used) => {
                seen.body = Some(body);
                served.requests.push(seen);
                served.statuses.push(204);
                at += used;
                if !head.keep_alive {
                    return served;
                }
            }
            BodyModel::Fail | BodyModel::Incomplete(_) => {
                served.requests.push(seen);
                served.statuses.push(400);
                return served;
            }
        }
    }
    served
}

// =======================================================================================
// Generated request sequences
// =======================================================================================

#[derive(Clone, Debug)]
enum BodyGen {
    None,
    Length {
        data: Vec<u8>,
        twice: bool,
    },
    Chunked {
        data: Vec<u8>,
        cuts: Vec<u16>,
        ext: bool,
        ws: bool,
        upper: bool,
        trailer: bool,
    },
}

/// A defect a request may carry (at most one).
#[derive(Clone, Copy, Debug)]
enum Defect {
    Nul,
    BareLf,
    BareCr,
    BadMethod,
    BadVersion,
    ObsFold,
    BadFieldName,
    EmptyFieldName,
    ControlInValue,
    NoColon,
    AsteriskNotOptions,
    NoHost,
    TwoHosts,
    TeAndCl,
    TeIn10,
    TeEmpty,
    TeGzip,
    TeGzipChunked,
    ChunkedTwice,
    ClNotDigits,
    ClDiffer,
    ClEmpty,
    ClOverflow,
    ExpectOther,
    TooManyFields,
    HeadTooLarge,
    LineTooLong,
    ChunkSizeNotHex,
    ChunkSizeOverflow,
    ChunkDataNoCrlf,
    ChunkBareLf,
    ChunkExtControl,
    ChunkLineTooLong,
    TrailerObsFold,
    TrailerEmptyName,
    TrailerTooLong,
}

#[derive(Clone, Debug)]
struct ReqGen {
    method: &'static str,
    target: String,
    http10: bool,
    fields: Vec<(String, String)>,
    connection: Option<&'static str>,
    expect: bool,
    body: BodyGen,
    defect: Option<Defect>,
}

fn chunked_wire(
    data: &[u8],
    cuts: &[u16],
    ext: bool,
    ws: bool,
    upper: bool,
    trailer: bool,
) -> Vec<u8> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|&c| c as usize * data.len() / 65536)
        .filter(|&c| c > 0)
        .collect();
    bounds.push(data.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for end in bounds.into_iter().filter(|&e| e > 0) {
        let size = if upper {
            format!("{:X}", end - start)
        } else {
            format!("{:x}", end - start)
        };
        out.extend_from_slice(size.as_bytes());
        if ws {
            out.extend_from_slice(b" \t");
        }
        if ext {
            out.extend_from_slice(b";a=b;q=\"x\ty\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&data[start..end]);
        out.extend_from_slice(b"\r\n");
        start = end;
    }
    out.extend_from_slice(if upper { b"000\r\n" } else { b"0\r\n" });
    if trailer {
        out.extend_from_slice(b"x-sum: 1\r\nx-other:\tv\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl ReqGen {
    fn wire(&self) -> Vec<u8> {
        use Defect::*;
        let d = self.defect;
        let is = |x: Defect| matches!(d, Some(y) if std::mem::discriminant(&x) == std::mem::discriminant(&y));
        let method = if is(BadMethod) { "GE(T" } else { self.method };
        let long_target = format!("/{}", "t".repeat(MAX_HEAD));
        let target = if is(AsteriskNotOptions) {
            "*"
        } else if is(LineTooLong) {
            &long_target
        } else {
            &self.target
        };
        let version = if is(BadVersion) {
            "HTTP/1.2"
        } else if self.http10 || is(TeIn10) {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let mut lines: Vec<Vec<u8>> = vec![format!("{method} {target} {version}").into_bytes()];
        // An HTTP/1.0 request without other fields goes without Host too (it may).
        let host = !is(NoHost) && (!self.http10 || !self.fields.is_empty());
        if host {
            lines.push(b"Host: e.com".to_vec());
        }
        if is(TwoHosts) {
            lines.push(b"Host: f.com".to_vec());
        }
        for (name, value) in &self.fields {
            lines.push(format!("{name}: {value}").into_bytes());
        }
        if let Some(c) = self.connection {
            lines.push(format!("Connection: {c}").into_bytes());
        }
        if self.expect {
            lines.push(b"Expect: 100-Continue".to_vec());
        }
        let body = match &self.body {
            BodyGen::None => Vec::new(),
            BodyGen::Length { data, twice } => {
                if *twice {
                    lines.push(
                        format!("Content-Length: {}, {}", data.len(), data.len()).into_bytes(),
                    );
                } else {
                    lines.push(format!("Content-Length: {}", data.len()).into_bytes());
                }
                data.clone()
            }
            BodyGen::Chunked {
                data,
                cuts,
                ext,
                ws,
                upper,
                trailer,
            } => {
                lines.push(b"Transfer-Encoding: chunked".to_vec());
                chunked_wire(data, cuts, *ext, *ws, *upper, *trailer)
            }
        };
        match d {
            Some(Nul) => lines.push(b"x-nul: a\0b".to_vec()),
            Some(BareCr) => lines.push(b"x-cr: a\rb".to_vec()),
            Some(ObsFold) => lines.push(b" folded".to_vec()),
            Some(BadFieldName) => lines.push(b"x bad: v".to_vec()),
            Some(EmptyFieldName) => lines.push(b": v".to_vec()),
            Some(ControlInValue) => lines.push(b"x-ctl: a\x01b\x7f".to_vec()),
            Some(NoColon) => lines.push(b"x-no-colon".to_vec()),
            Some(TeAndCl) => {
                lines.push(b"Transfer-Encoding: chunked".to_vec());
                lines.push(b"Content-Length: 5".to_vec());
            }
            Some(TeIn10) | Some(ChunkedTwice) => {
                lines.push(b"Transfer-Encoding: chunked".to_vec());
                if is(ChunkedTwice) {
                    lines.push(b"Transfer-Encoding: chunked".to_vec());
                }
            }
            Some(TeEmpty) => lines.push(b"Transfer-Encoding: ".to_vec()),
            Some(TeGzip) => lines.push(b"Transfer-Encoding: gzip".to_vec()),
            Some(TeGzipChunked) => lines.push(b"Transfer-Encoding: gzip, chunked".to_vec()),
            Some(ClNotDigits) => lines.push(b"Content-Length: 1x".to_vec()),
            Some(ClDiffer) => lines.push(b"Content-Length: 5, 6".to_vec()),
            Some(ClEmpty) => lines.push(b"Content-Length:".to_vec()),
            Some(ClOverflow) => lines.push(b"Content-Length: 18446744073709551616".to_vec()),
            Some(ExpectOther) => lines.push(b"Expect: 200-ok".to_vec()),
            Some(TooManyFields) => {
                for i in 0..MAX_FIELDS {
                    lines.push(format!("x-f{i}: {i}").into_bytes());
                }
            }
            Some(HeadTooLarge) => {
                lines.push(format!("x-big: {}", "b".repeat(MAX_HEAD)).into_bytes())
            }
            _ => {}
        }
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            out.extend_from_slice(line);
            // A bare LF ends the request line.
            out.extend_from_slice(if i == 0 && is(BareLf) { b"\n" } else { b"\r\n" });
        }
        out.extend_from_slice(b"\r\n");
        // Body defects apply to a chunked body.
        let body = match (d, &self.body) {
            (Some(defect), BodyGen::Chunked { data, .. }) => {
                chunk_defect(defect, data).unwrap_or(body)
            }
            _ => body,
        };
        out.extend_from_slice(&body);
        out
    }
}

fn chunk_defect(defect: Defect, data: &[u8]) -> Option<Vec<u8>> {
    use Defect::*;
    let n = data.len().max(1);
    let data = if data.is_empty() {
        b"z".as_slice()
    } else {
        data
    };
    let mut out = Vec::new();
    match defect {
        ChunkSizeNotHex => out.extend_from_slice(b"zz\r\n"),
        ChunkSizeOverflow => out.extend_from_slice(b"10000000000000000\r\n"),
        ChunkDataNoCrlf => {
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"XX0\r\n\r\n");
        }
        ChunkBareLf => out.extend_from_slice(format!("{n:x}\n").as_bytes()),
        ChunkExtControl => out.extend_from_slice(format!("{n:x};a=\x01\r\n").as_bytes()),
        ChunkLineTooLong => {
            out.extend_from_slice(format!("{n:x};{}\r\n", "e".repeat(5000)).as_bytes())
        }
        TrailerObsFold => out.extend_from_slice(b"0\r\nx-t: 1\r\n folded\r\n\r\n"),
        TrailerEmptyName => out.extend_from_slice(b"0\r\n: v\r\n\r\n"),
        TrailerTooLong => {
            out.extend_from_slice(format!("0\r\nx-t: {}\r\n\r\n", "t".repeat(5000)).as_bytes())
        }
        _ => return None,
    }
    Some(out)
}

const HEAD_DEFECTS: &[Defect] = {
    use Defect::*;
    &[
        Nul,
        BareLf,
        BareCr,
        BadMethod,
        BadVersion,
        ObsFold,
        BadFieldName,
        EmptyFieldName,
        ControlInValue,
        NoColon,
        AsteriskNotOptions,
        NoHost,
        TwoHosts,
        TeAndCl,
        TeIn10,
        TeEmpty,
        TeGzip,
        TeGzipChunked,
        ChunkedTwice,
        ClNotDigits,
        ClDiffer,
        ClEmpty,
        ClOverflow,
        ExpectOther,
        TooManyFields,
        HeadTooLarge,
        LineTooLong,
    ]
};

const BODY_DEFECTS: &[Defect] = {
    use Defect::*;
    &[
        ChunkSizeNotHex,
        ChunkSizeOverflow,
        ChunkDataNoCrlf,
        ChunkBareLf,
        ChunkExtControl,
        ChunkLineTooLong,
        TrailerObsFold,
        TrailerEmptyName,
        TrailerTooLong,
    ]
};

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (any::<u64>(), 0usize..1500).prop_map(|(seed, len)| prop_support::pattern(seed, len)),
    ]
}

fn body_strategy() -> impl Strategy<Value = BodyGen> {
    prop_oneof![
        Just(BodyGen::None),
        (data_strategy(), any::<bool>()).prop_map(|(data, twice)| BodyGen::Length { data, twice }),
        (
            data_strategy(),
            prop::collection::vec(any::<u16>(), 0..5),
            any::<[bool; 4]>()
        )
            .prop_map(|(data, cuts, [ext, ws, upper, trailer])| BodyGen::Chunked {
                data,
                cuts,
                ext,
                ws,
                upper,
                trailer
            }),
    ]
}

fn request_strategy() -> impl Strategy<Value = ReqGen> {
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE",
    ]);
    let target = prop_oneof![
        8 => "/[a-zA-Z0-9._~!$&'()*+,;=:@%/-]{0,24}(\\?[a-z0-9=&]{0,10})?",
        1 => Just("*".to_string()),
    ];
    let fields = prop::collection::vec(
        (
            "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
            "([!-~]([ -~]{0,20}[!-~])?)?",
        ),
        0..5,
    )
    .prop_map(|fields| {
        fields
            .into_iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                ![
                    "host",
                    "content-length",
                    "transfer-encoding",
                    "expect",
                    "connection",
                ]
                .contains(&n.as_str())
            })
            .collect::<Vec<_>>()
    });
    let connection = prop::option::of(prop::sample::select(vec![
        "close",
        "keep-alive",
        "Keep-Alive, Upgrade",
        "upgrade",
    ]));
    let defect = prop_oneof![
        6 => Just(None),
        2 => prop::sample::select(HEAD_DEFECTS).prop_map(Some),
        1 => prop::sample::select(BODY_DEFECTS).prop_map(Some),
    ];
    (
        method,
        target,
        any::<bool>(),
        fields,
        connection,
        any::<bool>(),
        body_strategy(),
        defect,
    )
        .prop_map(
            |(method, target, http10, fields, connection, expect, body, defect)| {
                let mut r = ReqGen {
                    method,
                    target,
                    http10,
                    fields,
                    connection,
                    expect,
                    body,
                    defect,
                };
                // Only OPTIONS takes the asterisk form in a valid request.
                if r.target == "*" && r.method != "OPTIONS" {
                    r.target = "/".into();
                }
                // Chunked framing is HTTP/1.1's.
                if matches!(r.body, BodyGen::Chunked { .. }) {
                    r.http10 = false;
                }
                // Defects that add framing fields need a request without a body of its own;
                // a body defect needs a chunked body.
                use Defect::*;
                match r.defect {
                    Some(
                        TeAndCl | TeIn10 | TeEmpty | TeGzip | TeGzipChunked | ChunkedTwice
                        | ClNotDigits | ClDiffer | ClEmpty | ClOverflow,
                    ) => r.body = BodyGen::None,
                    Some(d)
                        if BODY_DEFECTS
                            .iter()
                            .any(|b| std::mem::discriminant(b) == std::mem::discriminant(&d)) =>
                    {
                        if !matches!(r.body, BodyGen::Chunked { .. }) {
                            r.body = BodyGen::Chunked {
                                data: b"abc".to_vec(),
                                cuts: vec![],
                                ext: false,
                                ws: false,
                                upper: false,
                                trailer: false,
                            };
                        }
                        r.http10 = false;
                    }
                    _ => {}
                }
                if matches!(r.defect, Some(TeIn10)) {
                    r.http10 = true;
                }
                // `Expect: 100-continue` is valid only without another Expect defect. With a
                // body, whether the connection stays open depends on whether `100 Continue`
                // went out, that is on how the body's bytes arrived (SPEC.md#serving-loop: no
                // 100 Continue sent, close): not a function of the bytes, so not generated.
                if matches!(r.defect, Some(ExpectOther)) || !matches!(r.body, BodyGen::None) {
                    r.expect = false;
                }
                r
            },
        )
}

/// How the stream is split into reads.
#[derive(Clone, Debug)]
enum Split {
    Whole,
    OneByte,
    At(Vec<u16>),
}

#[derive(Clone, Debug)]
struct FramingCase {
    requests: Vec<ReqGen>,
    /// Cut the stream short by this fraction of the last request (65536: not at all).
    truncate_last: u32,
    cuts: Vec<u16>,
}

impl FramingCase {
    fn stream(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let n = self.requests.len();
        for (i, r) in self.requests.iter().enumerate() {
            let wire = r.wire();
            if i + 1 == n && self.truncate_last < 65536 {
                let keep = (wire.len() as u64 * self.truncate_last as u64 / 65536) as usize;
                out.extend_from_slice(&wire[..keep]);
            } else {
                out.extend_from_slice(&wire);
            }
        }
        out
    }
}

fn case_strategy() -> impl Strategy<Value = FramingCase> {
    (
        prop::collection::vec(request_strategy(), 1..5),
        prop_oneof![4 => Just(65536u32), 1 => 0u32..65536],
        prop::collection::vec(any::<u16>(), 0..12),
    )
        .prop_map(|(mut requests, truncate_last, cuts)| {
            // A head cut short by the end of stream closes without a response, and one with
            // a defect gets its verdict; SPEC.md does not say which wins when both hold, so
            // only a request without a defect is cut short.
            if truncate_last < 65536 {
                requests.last_mut().unwrap().defect = None;
            }
            FramingCase {
                requests,
                truncate_last,
                cuts,
            }
        })
}

// =======================================================================================
// The implementation, fed at split points
// =======================================================================================

fn seen(req: &mut Request<'_>) -> Seen {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        fields
            .entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut body = Vec::new();
    let body = req.body().read_to_end(&mut body).ok().map(|_| body);
    Seen {
        method: req.method().as_str().to_string(),
        target: req.target().to_string(),
        http10: req.version() == http::Version::HTTP_10,
        fields,
        body,
    }
}

/// Serves `stream` (then end of stream) split as `split`; returns what the handler saw and
/// the statuses on the wire, and checks that the server closed the connection.
fn serve(stream: &[u8], split: &Split) -> Result<Served, TestCaseError> {
    let (client, server) = pipe();
    client.write_all(stream).unwrap();
    client.shutdown_write();
    let mut points: Vec<usize> = match split {
        Split::At(cuts) => cuts
            .iter()
            .map(|&c| c as usize * stream.len() / 65536)
            .collect(),
        _ => Vec::new(),
    };
    points.sort_unstable();
    let cuts = match split {
        Split::OneByte => Cuts::OneByte,
        _ => Cuts::At {
            points,
            total: stream.len(),
        },
    };
    let transport = TappedPipe::new(server, cuts);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let requests = requests.clone();
        move |mut req: Request<'_>, mut w: ResponseWriter<'_, TappedPipe>| {
            let seen = seen(&mut req);
            let ok = seen.body.is_some();
            requests.lock().unwrap().push(seen);
            if ok {
                w.write_header(StatusCode::NO_CONTENT);
            }
        }
    };
    let config = ServerConfig {
        max_head_bytes: MAX_HEAD,
        ..ServerConfig::default()
    };
    hijack::serve_connection(transport, &handler, &config, 1);
    let requests = std::mem::take(&mut *requests.lock().unwrap());

    //= SPEC.md#bad-input
    //= type=test
    //# A rejected request head MUST NOT reach a handler, and the server MUST send its
    //# rejection and then close the connection.
    let wire = client.read_to_end();
    let mut statuses = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        // The final response number `k` answers request `k` (a HEAD one has no body); a
        // rejection follows the last request served.
        let head_request = requests
            .get(statuses.len())
            .is_some_and(|r: &Seen| r.method == "HEAD");
        let parsed = parse_response(&wire[at..], head_request);
        prop_assert!(
            parsed.is_some(),
            "malformed response at {}: {:?}",
            at,
            String::from_utf8_lossy(&wire[at..])
        );
        let (head, _, used) = parsed.unwrap();
        at += used;
        if head.status == 100 {
            continue;
        }
        if head.status >= 400 {
            prop_assert_eq!(
                head.header("connection"),
                Some("close"),
                "a rejection closes"
            );
            prop_assert_eq!(at, wire.len(), "nothing follows a rejection");
        }
        statuses.push(head.status);
    }
    Ok(Served { requests, statuses })
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST answer pipelined requests one at a time, in the order they arrived, and
//# MUST NOT read the next request head before the current response is finished.
//= SPEC.md#bad-input
//= type=test
//# A request line or header field that does not parse, an obs-fold, an invalid field name
//# or value, a version other than HTTP/1.0 or HTTP/1.1, or an asterisk-form target with a
//# method other than OPTIONS MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# An HTTP/1.1 request without a Host field, or any request with more than one, MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A request with both Transfer-Encoding and Content-Length, or with Content-Length values
//# that differ or are not decimal digits, MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed
//# Transfer-Encoding, or chunked applied more than once MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding whose final coding is not chunked MUST be answered with 400.
//= SPEC.md#bad-input
//= type=test
//# A transfer coding other than chunked before a final chunked MUST be answered with
//# 501.
//= SPEC.md#bad-input
//= type=test
//# A request head longer than max_head_bytes whose request line ends within them, or one
//# with more than 128 header fields, MUST be answered with 431.
//= SPEC.md#bad-input
//= type=test
//# A request head whose request line does not end within max_head_bytes MUST be answered with
//# 414.
//= SPEC.md#bad-input
//= type=test
//# An Expect field other than 100-continue MUST be answered with 417.
//= SPEC.md#bad-input
//= type=test
//# A connection whose stream ends before or in the middle of a request head, or whose head
//# read fails or times out, MUST be closed without a response.
//= SPEC.md#bad-input
//= type=test
//# If the body fails before the response head was committed, the response MUST be 400 Bad
//# Request with Connection: close.
fn check_framing(case: &FramingCase) -> Result<(), TestCaseError> {
    let stream = case.stream();
    let expected = model(&stream);
    let count = |what: String| prop_support::tally(format!("framing: {what}"));
    count("cases".into());
    count(format!("{} request(s) served", expected.requests.len()));
    for status in &expected.statuses {
        count(format!("response {status}"));
    }
    if case.truncate_last < 65536 {
        count("the stream ends inside the last request".into());
    }
    for split in [Split::Whole, Split::OneByte, Split::At(case.cuts.clone())] {
        let got = serve(&stream, &split)?;
        prop_assert_eq!(&got, &expected, "split {:?}", split);
    }
    Ok(())
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST answer pipelined requests one at a time, in the order they arrived,
//# and MUST NOT read the next request head before the current response is finished.
/// The server frames requests as the model does, whatever the split.
#[test]
fn server_frames_requests_as_the_model() {
    prop_support::run_property(
        10_000,
        "proptest-regressions/prop_framing.txt",
        "framing:",
        case_strategy(),
        |case| check_framing(&case),
    );
}

proptest! {
    #![proptest_config(config(10_000, "proptest-regressions/prop_framing_decoder.txt"))]

    //= SPEC.md#bad-input
    //= type=test
    //# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not
    //# followed by CRLF MUST make the body fail; the server MUST then close the connection.
    /// `BodyDecoder` decodes bodies as the model does, fed in any pieces.
    #[test]
    fn body_decoder_matches_the_model(
        body in body_strategy(),
        defect in prop::option::of(prop::sample::select(BODY_DEFECTS)),
        trailing in prop::collection::vec(any::<u8>(), 0..16),
        truncate in prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)],
        pieces in prop::collection::vec(1usize..64, 1..32),
        outs in prop::collection::vec(1usize..64, 1..8),
    ) {
        check_decoder(body, defect, trailing, truncate, pieces, outs)?;
    }
}

//= SPEC.md#bad-input
//= type=test
//# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not
//# followed by CRLF MUST make the body fail; the server MUST then close the connection.
//= SPEC.md#bad-input
//= type=test
//# A chunk-size line with a bare CR or LF, a control byte in a chunk extension or a trailer
//# field, an obs-fold or an empty field name in the trailer section, a chunk-size line or
//# trailer section over 4096 bytes, or a body cut short by the end of stream MUST also make
//# the body fail.
fn check_decoder(
    body: BodyGen,
    defect: Option<Defect>,
    trailing: Vec<u8>,
    truncate: Option<u16>,
    pieces: Vec<usize>,
    outs: Vec<usize>,
) -> Result<(), TestCaseError> {
    let (kind, framing, mut wire) = match &body {
        BodyGen::None => (BodyKind::Empty, Framing::None, Vec::new()),
        BodyGen::Length { data, .. } if data.is_empty() => {
            (BodyKind::Empty, Framing::None, Vec::new())
        }
        BodyGen::Length { data, .. } => (
            BodyKind::Length(data.len() as u64),
            Framing::Length(data.len() as u64),
            data.clone(),
        ),
        BodyGen::Chunked {
            data,
            cuts,
            ext,
            ws,
            upper,
            trailer,
        } => {
            let wire = defect
                .and_then(|d| chunk_defect(d, data))
                .unwrap_or_else(|| chunked_wire(data, cuts, *ext, *ws, *upper, *trailer));
            (BodyKind::Chunked, Framing::Chunked, wire)
        }
    };
    wire.extend_from_slice(&trailing);
    if let Some(t) = truncate {
        wire.truncate(wire.len() * t as usize / 65536);
    }
    let expected = model_body(framing, &wire);

    let mut decoder = BodyDecoder::new(kind);
    let mut input = BytesMut::new();
    let mut fed = 0;
    let mut piece = pieces.iter().cycle();
    let mut out_size = outs.iter().cycle();
    let mut data = Vec::new();
    let got = loop {
        let mut out = vec![0u8; *out_size.next().unwrap()];
        match decoder.decode(&mut input, &mut out) {
            Ok(Decoded::Data(n)) => {
                prop_assert!(n > 0 && n <= out.len());
                data.extend_from_slice(&out[..n]);
            }
            Ok(Decoded::End) => break BodyModel::Complete(data, fed - input.len()),
            Ok(Decoded::NeedMore) => {
                prop_assert!(input.is_empty() || !matches!(framing, Framing::Length(_)));
                if fed == wire.len() {
                    break BodyModel::Incomplete(data);
                }
                let n = (*piece.next().unwrap()).min(wire.len() - fed);
                input.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
            }
            Err(_) => break BodyModel::Fail,
        }
    };
    prop_assert_eq!(got, expected);
    Ok(())
}
