//! Request framing, whole versus one byte at a time (the `request_head` target).
//!
//! The server parses the head after every read of the stream, so a client that sends one
//! byte at a time makes it parse every prefix of the head: the first prefix with a verdict
//! decides. The body decoder likewise sees the body in whatever pieces the stream gives.
//! Both must decide exactly as they do on the whole input.

use bytes::BytesMut;
use hijack::parse::{BodyDecoder, BodyKind, Decoded, RequestHead, Verdict, parse_head};
use http::Version;

/// The server's default head limit (1 MiB): never reached by a fuzz input, so every verdict
/// here is about the bytes, not about how many arrived.
const MAX_HEAD: usize = 1 << 20;

/// What parsing decided, comparable across feeds.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadOutcome {
    /// More bytes needed.
    Partial,
    /// A head (its `Debug` form) that took this many bytes.
    Head(String, usize),
    /// Rejected.
    Rejected(Verdict),
}

fn outcome(result: Result<Option<(RequestHead, usize)>, Verdict>) -> HeadOutcome {
    match result {
        Ok(None) => HeadOutcome::Partial,
        Ok(Some((head, n))) => HeadOutcome::Head(format!("{head:?}"), n),
        Err(v) => HeadOutcome::Rejected(v),
    }
}

/// The verdict on `data` as one buffer.
pub fn head_whole(data: &[u8]) -> HeadOutcome {
    outcome(parse_head(data, MAX_HEAD))
}

/// The verdict on `data` arriving one byte at a time: the first prefix that decides.
///
/// Every prefix SPEC.md#bad-input says can change the verdict is judged: one that ends in a
/// CR or LF (a line, a field or the head ends, or a bare CR or LF), in the byte after a CR, or
/// in a byte outside the class of where it stands (a non-token byte in a method or field
/// name, a control byte in a target, version or field value: a byte httparse may refuse).
/// The others (a token byte in a name, a visible byte in a target, a value byte in a value)
/// cannot fault where they stand, end no line and start no field, so such a prefix decides
/// as the one before it. Since any rejected prefix gets the verdict of its shortest rejected
/// prefix and any accepting one the same head, judging fewer prefixes never raises a false
/// alarm; it only misses a parser that breaks that rule at a skipped prefix, so one in
/// [`SAMPLE`] of the skipped prefixes (which ones depends on the input) is judged anyway.
/// Re-parsing every prefix was quadratic in the head's length and took nine tenths of the
/// target's time.
pub fn head_byte_at_a_time(data: &[u8]) -> HeadOutcome {
    let mut scan = Scan::default();
    let salt = data
        .iter()
        .fold(data.len(), |h, &b| h.wrapping_mul(31) ^ b as usize);
    for end in 1..=data.len() {
        let inert = scan.step(data[end - 1]);
        if inert && (end ^ salt) % SAMPLE != 0 && end != data.len() {
            continue;
        }
        match outcome(parse_head(&data[..end], MAX_HEAD)) {
            HeadOutcome::Partial => continue,
            decided => return decided,
        }
    }
    HeadOutcome::Partial
}

/// One in this many prefixes that cannot decide is judged anyway.
pub const SAMPLE: usize = 32;

/// Where a byte lands in a head, by SPEC.md's grammar alone (RFC 9110 §5.6.2 tokens, §5.5
/// field values): enough to say which bytes cannot change a prefix's verdict.
#[derive(Default)]
struct Scan {
    at: Place,
    /// The request line has started (later lines are fields).
    seen_request_line: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// At a line's start (empty lines may come before the request line).
    #[default]
    LineStart,
    Method,
    Target,
    Version,
    Name,
    Value,
    /// After a CR: the next byte is judged.
    AfterCr,
    /// After anything unusual: nothing is skipped until the next line.
    Other,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Scan {
    /// Takes the next byte; says whether it cannot change the verdict of the prefix before it.
    fn step(&mut self, b: u8) -> bool {
        let visible = (0x21..0x7f).contains(&b);
        let (next, inert) = match (self.at, b) {
            (_, b'\n') => (Place::LineStart, false),
            (_, b'\r') => (Place::AfterCr, false),
            (Place::AfterCr | Place::Other, _) => (Place::Other, false),
            (Place::LineStart, _) if is_tchar(b) && self.seen_request_line => (Place::Name, true),
            (Place::LineStart, _) if is_tchar(b) => {
                self.seen_request_line = true;
                (Place::Method, true)
            }
            (Place::Method | Place::Name, _) if is_tchar(b) => (self.at, true),
            (Place::Method, b' ') => (Place::Target, true),
            (Place::Name, b':') => (Place::Value, true),
            (Place::Target, _) if visible => (Place::Target, true),
            (Place::Target, b' ') => (Place::Version, true),
            (Place::Version, _) if visible => (Place::Version, true),
            (Place::Value, _) if visible || b == b' ' || b == b'\t' || b >= 0x80 => {
                (Place::Value, true)
            }
            _ => (Place::Other, false),
        };
        self.at = next;
        inert
    }
}

/// How a body decode ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The body ended after this many input bytes.
    End(usize),
    /// The input ran out first.
    NeedMore,
    /// The framing is wrong.
    Failed(Verdict),
}

/// Decodes `input` fed in pieces of `piece` bytes, reading into buffers of `out_len` bytes.
/// Returns the body bytes and how the decode ended.
pub fn decode_body(
    kind: BodyKind,
    input: &[u8],
    piece: usize,
    out_len: usize,
) -> (Vec<u8>, BodyEnd) {
    let mut decoder = BodyDecoder::new(kind);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut body = Vec::new();
    let mut out = vec![0u8; out_len];
    loop {
        match decoder.decode(&mut buf, &mut out) {
            Ok(Decoded::Data(n)) => body.extend_from_slice(&out[..n]),
            Ok(Decoded::End) => return (body, BodyEnd::End(fed - buf.len())),
            Ok(Decoded::NeedMore) if fed < input.len() => {
                let next = fed.saturating_add(piece).min(input.len());
                buf.extend_from_slice(&input[fed..next]);
                fed = next;
            }
            Ok(Decoded::NeedMore) => return (body, BodyEnd::NeedMore),
            Err(v) => return (body, BodyEnd::Failed(v)),
        }
    }
}

/// The `request_head` invariant on one input: the head, and the body after it, decide the
/// same whole and one byte at a time; an accepted head is one the rules accept.
pub fn check(data: &[u8]) {
    let whole = parse_head(data, MAX_HEAD);
    let outcome_whole = outcome(whole.clone());
    let outcome_bytes = head_byte_at_a_time(data);
    //= SPEC.md#bad-input
    //= type=test
    //# A request head with more than one fault MUST get the verdict of the shortest prefix of
    //# its bytes that is rejected, however its bytes were split across reads.
    assert_eq!(
        outcome_bytes, outcome_whole,
        "the head's verdict depends on how its bytes arrive"
    );
    let Ok(Some((head, n))) = whole else { return };
    check_accepted(&head, &data[..n]);

    let rest = &data[n..];
    let (body, end) = decode_body(head.body, rest, rest.len().max(1), 4096);
    for (piece, out_len) in [(1, 1), (1, 4096), (3, 7)] {
        assert_eq!(
            decode_body(head.body, rest, piece, out_len),
            (body.clone(), end_clone(&end)),
            "the body decodes differently in pieces of {piece} byte(s) into {out_len}-byte reads"
        );
    }
}

fn end_clone(end: &BodyEnd) -> BodyEnd {
    match end {
        BodyEnd::End(n) => BodyEnd::End(*n),
        BodyEnd::NeedMore => BodyEnd::NeedMore,
        BodyEnd::Failed(v) => BodyEnd::Failed(*v),
    }
}

/// What an accepted head cannot contain.
fn check_accepted(head: &RequestHead, bytes: &[u8]) {
    //= SPEC.md#bad-input
    //= type=test
    //# A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with 400.
    for (i, &b) in bytes.iter().enumerate() {
        assert_ne!(b, 0, "an accepted head holds a NUL byte");
        if b == b'\n' {
            assert!(
                i > 0 && bytes[i - 1] == b'\r',
                "an accepted head holds a bare LF"
            );
        }
        if b == b'\r' {
            assert_eq!(
                bytes.get(i + 1),
                Some(&b'\n'),
                "an accepted head holds a bare CR"
            );
        }
    }
    //= SPEC.md#bad-input
    //= type=test
    //# An HTTP/1.1 request without a Host field, or any request with more than one, MUST be answered with 400.
    let hosts = head.headers.get_all(http::header::HOST).iter().count();
    assert!(
        hosts <= 1 && (head.version != Version::HTTP_11 || hosts == 1),
        "an accepted head with {hosts} Host fields"
    );
    //= SPEC.md#bad-input
    //= type=test
    //# A request with both Transfer-Encoding and Content-Length, or with Content-Length values
    //# that differ or are not decimal digits, MUST be answered with 400.
    let te = head.headers.contains_key(http::header::TRANSFER_ENCODING);
    assert!(
        !(te && head.headers.contains_key(http::header::CONTENT_LENGTH)),
        "an accepted head with both Transfer-Encoding and Content-Length"
    );
    let mut length: Option<u64> = None;
    for value in head.headers.get_all(http::header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            assert!(
                !item.is_empty() && item.iter().all(u8::is_ascii_digit),
                "an accepted head with a Content-Length that is not decimal digits"
            );
            let n = std::str::from_utf8(item)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            let n = n.expect("an accepted head with a Content-Length over 2^64 - 1");
            assert!(
                length.is_none_or(|l| l == n),
                "an accepted head with differing Content-Length values"
            );
            length = Some(n);
        }
    }
    if let Some(n) = length {
        let expected = if n == 0 {
            BodyKind::Empty
        } else {
            BodyKind::Length(n)
        };
        assert_eq!(
            head.body, expected,
            "an accepted head's body is not its Content-Length"
        );
    }
    //= SPEC.md#bad-input
    //= type=test
    //# A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed
    //# Transfer-Encoding, or chunked applied more than once MUST be answered with 400.
    if te {
        assert_eq!(
            head.version,
            Version::HTTP_11,
            "Transfer-Encoding accepted in HTTP/1.0"
        );
        assert_eq!(
            head.body,
            BodyKind::Chunked,
            "an accepted Transfer-Encoding is chunked"
        );
    }
}
