//! Bad input never becomes a request (SPEC.md#bad-input): every malformed head gets its
//! status, the exact rejection bytes and a closed connection, and a malformed request body
//! makes the body read fail and the connection close. Every case is fed twice, as h11's fuzz
//! harness does: whole, and one byte at a time (each byte read by the server on its own).

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use hijack::pipe::PipeEnd;
use hijack::{Request, ResponseWriter, ServerConfig};
use hijack_testkit::{read_response, recv, serve_pipe_with, wait_until};
use http::StatusCode;

/// How the client sends its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    /// One write.
    Whole,
    /// One byte per write, each written only once the server has read the previous one.
    ByteAtATime,
}

const FEEDS: [Feed; 2] = [Feed::Whole, Feed::ByteAtATime];

/// Waits (bounded) until the server has read everything the client wrote. A closed server
/// end drops unread bytes, so this also ends when the server closed the connection.
fn wait_drained(client: &PipeEnd) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut spins = 0u32;
    while client.peer_unread_len() > 0 {
        assert!(Instant::now() < deadline, "the server stopped reading");
        spins += 1;
        if spins < 200 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Sends `bytes` as `feed` says; stops early once the server closed the connection.
fn send(client: &PipeEnd, bytes: &[u8], feed: Feed) {
    match feed {
        Feed::Whole => {
            let _ = client.write_all(bytes);
        }
        Feed::ByteAtATime => {
            for b in bytes {
                if client.write_all(std::slice::from_ref(b)).is_err() {
                    return;
                }
                wait_drained(client);
            }
        }
    }
}

/// The rejection of SPEC.md#bad-input, built from its template.
fn rejection(status: StatusCode, reason_text: &str) -> Vec<u8> {
    hijack_testkit::wire::rejection_with(status, reason_text)
}

/// The requirement of SPEC.md#bad-input a malformed head falls under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Unparsable line or field, obs-fold, bad name or value, version, asterisk-form: 400.
    Malformed,
    /// Bare CR, bare LF, NUL: 400.
    ForbiddenByte,
    /// No Host in HTTP/1.1, or more than one in any request: 400.
    Host,
    /// Transfer-Encoding with Content-Length, differing or non-digit Content-Length: 400.
    ContentLength,
    /// Transfer-Encoding in HTTP/1.0, empty or malformed, chunked twice: 400.
    TransferEncoding,
    /// A coding other than chunked: 501.
    UnknownCoding,
    /// Over max_head_bytes or 128 fields: 431.
    TooLarge,
    /// A request line that does not end within max_head_bytes: 414.
    LineTooLong,
    /// Expect other than 100-continue: 417.
    Expectation,
    /// Two faults: the first in wire order decides (found by the request_head fuzz target).
    FirstFault,
}

struct HeadCase {
    rule: Rule,
    name: &'static str,
    input: Vec<u8>,
    status: u16,
    reason: &'static str,
    config: ServerConfig,
}

fn case(
    rule: Rule,
    name: &'static str,
    input: &[u8],
    status: u16,
    reason: &'static str,
) -> HeadCase {
    HeadCase {
        rule,
        name,
        input: input.to_vec(),
        status,
        reason,
        config: ServerConfig::default(),
    }
}

fn head_cases() -> Vec<HeadCase> {
    use Rule::*;
    let too_many_fields = {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..hijack::parse::MAX_HEADERS {
            head.extend_from_slice(format!("f{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    };
    let too_many_fields_then_bare_lf = {
        let mut head = too_many_fields.clone();
        head.truncate(head.len() - 2);
        head.extend_from_slice(b"x: y\n\n");
        head
    };
    let line_over_max_head = {
        let mut head = b"GET /".to_vec();
        head.extend(std::iter::repeat_n(b'a', 300));
        head.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        head
    };
    let over_max_head = {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nBig: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 300));
        head.extend_from_slice(b"\r\n\r\n");
        head
    };
    vec![
        // Request line.
        case(Malformed, "bad token in method", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid token in request line"),
        case(Malformed, "two spaces in request line", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid token in request line"),
        case(Malformed, "HTTP/2.0 version", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400, "invalid HTTP version"),
        case(Malformed, "HTTP/1.2 version", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 400, "invalid HTTP version"),
        case(Malformed, "lower-case version", b"GET / http/1.1\r\nHost: x\r\n\r\n", 400, "invalid HTTP version"),
        case(Malformed, "asterisk-form with GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "asterisk-form target outside OPTIONS"),
        // Header fields.
        case(Malformed, "obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400, "invalid header name (or obs-fold)"),
        case(Malformed, "space in a field name", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "invalid header name (or obs-fold)"),
        case(Malformed, "space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "invalid header name (or obs-fold)"),
        case(Malformed, "DEL in a field value", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n", 400, "invalid byte in header value"),
        case(Malformed, "control byte in a field value", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\n\r\n", 400, "invalid byte in header value"),
        // Line endings and NUL.
        case(ForbiddenByte, "bare CR in the request line", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "bare CR in request head"),
        case(ForbiddenByte, "bare CR in a field value", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400, "bare CR in request head"),
        case(ForbiddenByte, "bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n", 400, "bare LF in request head"),
        case(ForbiddenByte, "bare LF ending the head", b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400, "bare LF in request head"),
        case(ForbiddenByte, "NUL in the target", b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "NUL byte in request head"),
        case(ForbiddenByte, "NUL in a field value", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\0c\r\n\r\n", 400, "NUL byte in request head"),
        // Host.
        case(Host, "HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "a request needs one Host field (HTTP/1.1) and at most one"),
        case(Host, "two Host fields", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "a request needs one Host field (HTTP/1.1) and at most one"),
        case(Host, "two Host fields in HTTP/1.0", b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400, "a request needs one Host field (HTTP/1.1) and at most one"),
        // Framing.
        case(ContentLength, "Transfer-Encoding and Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400, "both Transfer-Encoding and Content-Length"),
        case(ContentLength, "differing Content-Length fields", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde", 400, "differing Content-Length values"),
        case(ContentLength, "differing Content-Length list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nabcde", 400, "differing Content-Length values"),
        case(ContentLength, "non-digit Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1a\r\n\r\n", 400, "invalid Content-Length"),
        case(ContentLength, "signed Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde", 400, "invalid Content-Length"),
        case(ContentLength, "empty Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400, "invalid Content-Length"),
        case(ContentLength, "Content-Length over 2^64 - 1", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", 400, "invalid Content-Length"),
        case(TransferEncoding, "Transfer-Encoding in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Transfer-Encoding in an HTTP/1.0 request"),
        case(TransferEncoding, "Transfer-Encoding chunked, chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "chunked applied more than once"),
        case(TransferEncoding, "empty Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n", 400, "malformed Transfer-Encoding"),
        case(TransferEncoding, "Transfer-Encoding item not a token", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun ked\r\n\r\n", 400, "malformed Transfer-Encoding"),
        case(TransferEncoding, "Transfer-Encoding gzip", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "chunked is not the final transfer coding"),
        case(TransferEncoding, "Transfer-Encoding chunked, gzip", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "chunked is not the final transfer coding"),
        case(TransferEncoding, "Transfer-Encoding xchunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "chunked is not the final transfer coding"),
        case(UnknownCoding, "Transfer-Encoding gzip, chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported transfer coding"),
        // Size limits.
        HeadCase {
            rule: TooLarge,
            name: "head over max_head_bytes",
            input: over_max_head,
            status: 431,
            reason: "request header section too large",
            config: ServerConfig {
                max_head_bytes: 256,
                ..ServerConfig::default()
            },
        },
        case(TooLarge, "more than 128 header fields", &too_many_fields, 431, "request header section too large"),
        HeadCase {
            rule: LineTooLong,
            name: "request line over max_head_bytes",
            input: line_over_max_head,
            status: 414,
            reason: "request line too long",
            config: ServerConfig {
                max_head_bytes: 256,
                ..ServerConfig::default()
            },
        },
        // Expect.
        case(Expectation, "Expect other than 100-continue", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", 417, "unsupported expectation"),
        // Two faults (fuzz/regressions/request_head-*-depends-on-chunking and kin).
        case(FirstFault, "bad token, then a bare LF", b"(\xf6\n", 400, "invalid token in request line"),
        case(FirstFault, "129 fields, then a bare LF", &too_many_fields_then_bare_lf, 431, "request header section too large"),
        case(FirstFault, "NUL in the target, then obs-fold", b"GET /a\0b HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400, "NUL byte in request head"),
        case(FirstFault, "bad token, then a NUL", b"G@T / HTTP/1.1\r\nHost: x\r\nA: \0\r\n\r\n", 400, "invalid token in request line"),
        case(FirstFault, "bare LF, then TE with CL", b"POST / HTTP/1.1\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "bare LF in request head"),
        case(FirstFault, "space in a field name, then a bare CR", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\rw\r\n\r\n", 400, "invalid header name (or obs-fold)"),
    ]
}

/// Feeds `input` to a fresh connection whose handler must never run; returns every byte
/// the client received up to the end of stream, and whether a handler ran.
fn feed_head(input: &[u8], feed: Feed, config: ServerConfig) -> (Vec<u8>, bool) {
    let ran = Arc::new(AtomicBool::new(false));
    let ran_in_handler = ran.clone();
    let (client, server) = serve_pipe_with(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            ran_in_handler.store(true, Ordering::SeqCst);
            let _ = w.write_body(b"a handler ran");
        },
        config,
    );
    send(&client, input, feed);
    wait_until("the server closed the connection", || server.is_finished());
    // Reading to the end of stream: the rejection is everything, then the server closed.
    let received = client.read_to_end();
    server.join().unwrap();
    (received, ran.load(Ordering::SeqCst))
}

/// Feeds every case of `rules` (all of them when empty) whole and one byte at a time and
/// checks each: no handler ran, the client received exactly the template with the case's
/// status and reason text, then the end of stream. Returns the number of cases.
fn check_heads(rules: &[Rule]) -> usize {
    let cases: Vec<HeadCase> = head_cases()
        .into_iter()
        .filter(|c| rules.is_empty() || rules.contains(&c.rule))
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let status = StatusCode::from_u16(case.status).unwrap();
        let expected = rejection(status, case.reason);
        for feed in FEEDS {
            let (received, ran) = feed_head(&case.input, feed, case.config.clone());
            if ran || received != expected {
                failures.push(format!(
                    "{} ({feed:?}): handler ran: {ran}\n  expected {:?}\n  received {:?}",
                    case.name,
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&received),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

//= SPEC.md#bad-input
//= type=test
//# A rejected request head MUST NOT reach a handler, and the server MUST send its
//# rejection and then close the connection.
#[test]
fn rejected_heads_never_reach_a_handler_and_get_their_rejection_then_the_close() {
    assert!(check_heads(&[]) >= 25);
}

//= SPEC.md#bad-input
//= type=test
//# The rejection MUST be exactly the bytes of the template below, with the status code,
//# its canonical reason phrase, the reason text of the table and the body length in
//# decimal.
#[test]
fn every_rejection_is_exactly_the_template_bytes() {
    // check_heads compares whole byte strings built from the template; here, also the
    // template's own example.
    let example = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 40\r\nConnection: close\r\n\r\n400 Bad Request: bare LF in request head";
    assert_eq!(
        rejection(StatusCode::BAD_REQUEST, "bare LF in request head"),
        example
    );
    assert!(check_heads(&[]) >= 25);
}

//= SPEC.md#bad-input
//= type=test
//# A request line or header field that does not parse, an obs-fold, an invalid field
//# name or value, a version other than HTTP/1.0 or HTTP/1.1, or an asterisk-form target
//# with a method other than OPTIONS MUST be answered with 400.
#[test]
fn malformed_request_line_or_field_obs_fold_bad_version_or_asterisk_gets_400() {
    assert!(check_heads(&[Rule::Malformed]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with
//# 400.
#[test]
fn bare_cr_bare_lf_or_nul_in_a_head_gets_400() {
    assert!(check_heads(&[Rule::ForbiddenByte]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# An HTTP/1.1 request without a Host field, or any request with more than one, MUST be answered with 400.
#[test]
fn http11_without_exactly_one_host_gets_400() {
    assert!(check_heads(&[Rule::Host]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A request with both Transfer-Encoding and Content-Length, or with Content-Length
//# values that differ or are not decimal digits, MUST be answered with 400.
#[test]
fn te_with_cl_or_differing_or_non_digit_content_length_gets_400() {
    assert!(check_heads(&[Rule::ContentLength]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed
//# Transfer-Encoding, or chunked applied more than once MUST be answered with 400.
#[test]
fn te_in_http10_empty_malformed_or_chunked_twice_gets_400() {
    assert!(check_heads(&[Rule::TransferEncoding]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A Transfer-Encoding whose final coding is not chunked MUST be answered with 400.
#[test]
fn transfer_encoding_not_ending_in_chunked_gets_400() {
    let cases = head_cases();
    assert!(
        cases
            .iter()
            .filter(|c| c.reason == "chunked is not the final transfer coding")
            .count()
            >= 3
    );
    assert!(check_heads(&[Rule::TransferEncoding]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A transfer coding other than chunked before a final chunked MUST be answered with
//# 501.
#[test]
fn transfer_coding_before_a_final_chunked_gets_501() {
    assert!(check_heads(&[Rule::UnknownCoding]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A request head with more than one fault MUST get the verdict of the shortest prefix of
//# its bytes that is rejected, however its bytes were split across reads.
#[test]
fn a_head_with_two_faults_gets_the_verdict_of_its_first_whatever_the_chunking() {
    assert_eq!(check_heads(&[Rule::FirstFault]), 6);
}

//= SPEC.md#bad-input
//= type=test
//# A request head longer than max_head_bytes whose request line ends within them, or one
//# with more than 128 header fields, MUST be answered with 431.
#[test]
fn head_over_max_head_bytes_or_over_128_fields_gets_431() {
    assert!(check_heads(&[Rule::TooLarge]) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A request head whose request line does not end within max_head_bytes MUST be answered
//# with 414.
#[test]
fn a_request_line_over_max_head_bytes_gets_414() {
    assert!(check_heads(&[Rule::LineTooLong]) > 0);
}

#[test]
fn head_of_exactly_128_fields_or_at_max_head_bytes_is_accepted() {
    // The control cases of the 431 rule.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 1..hijack::parse::MAX_HEADERS {
        head.extend_from_slice(format!("f{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let config = ServerConfig {
        max_head_bytes: head.len(),
        ..ServerConfig::default()
    };
    for feed in FEEDS {
        let (client, server) = serve_pipe_with(
            |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| w.write_body(b"ok").unwrap(),
            config.clone(),
        );
        send(&client, &head, feed);
        client.shutdown_write();
        let mut pending = Vec::new();
        let resp = read_response(&mut &client, &mut pending, false).unwrap();
        assert_eq!((resp.status, &resp.body[..]), (200, &b"ok"[..]), "{feed:?}");
        server.join().unwrap();
    }
}

//= SPEC.md#bad-input
//= type=test
//# An Expect field other than 100-continue MUST be answered with 417.
#[test]
fn expect_other_than_100_continue_gets_417() {
    assert!(check_heads(&[Rule::Expectation]) > 0);
}

#[test]
fn an_http10_rejection_still_has_an_http11_status_line() {
    let expected = rejection(StatusCode::BAD_REQUEST, "bare LF in request head");
    for feed in FEEDS {
        let (received, ran) = feed_head(b"GET / HTTP/1.0\n\n", feed, ServerConfig::default());
        assert!(!ran);
        assert_eq!(
            String::from_utf8_lossy(&received),
            String::from_utf8_lossy(&expected)
        );
    }
}

//= SPEC.md#bad-input
//= type=test
//# A connection whose stream ends before or in the middle of a request head, or whose
//# head read fails or times out, MUST be closed without a response.
#[test]
fn a_stream_that_ends_before_or_inside_a_head_is_closed_without_a_response() {
    let inputs: [&[u8]; 4] = [
        b"",
        b"G",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
    ];
    for input in inputs {
        for feed in FEEDS {
            let ran = Arc::new(AtomicBool::new(false));
            let ran_in_handler = ran.clone();
            let (client, server) = serve_pipe_with(
                move |_req: Request<'_>, _w: ResponseWriter<'_, PipeEnd>| {
                    ran_in_handler.store(true, Ordering::SeqCst);
                },
                ServerConfig::default(),
            );
            send(&client, input, feed);
            client.shutdown_write();
            wait_until("the server closed the connection", || server.is_finished());
            assert_eq!(
                client.read_to_end(),
                b"",
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            server.join().unwrap();
            assert!(!ran.load(Ordering::SeqCst));
        }
    }
}

#[test]
fn a_head_read_that_fails_is_closed_without_a_response() {
    let ran = Arc::new(AtomicBool::new(false));
    let ran_in_handler = ran.clone();
    let (client, server) = serve_pipe_with(
        move |_req: Request<'_>, _w: ResponseWriter<'_, PipeEnd>| {
            ran_in_handler.store(true, Ordering::SeqCst);
        },
        ServerConfig::default(),
    );
    client.write_all(b"GET / HTT").unwrap();
    wait_drained(&client);
    // The client resets inside the head: the server's read fails.
    client.reset();
    wait_until("the server closed the connection", || server.is_finished());
    server.join().unwrap();
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(client.unread_len(), 0, "no response");
}

#[test]
fn a_head_read_that_times_out_is_closed_without_a_response() {
    let config = ServerConfig {
        read_header_timeout: Some(Duration::from_millis(50)),
        ..ServerConfig::default()
    };
    let (client, server) = serve_pipe_with(
        |_req: Request<'_>, _w: ResponseWriter<'_, PipeEnd>| panic!("no request"),
        config,
    );
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // No more bytes: the server gives up on its own, without answering.
    wait_until("the server closed the connection", || server.is_finished());
    assert_eq!(client.read_to_end(), b"");
    server.join().unwrap();
}

/// A chunked (or Content-Length) request whose body is malformed.
struct BodyCase {
    /// Under the first body rule (chunk size not hexadecimal or overflowing, data not
    /// followed by CRLF); otherwise under the second (every other framing error, truncation).
    size_or_crlf: bool,
    name: &'static str,
    /// The request head.
    head: &'static [u8],
    /// The body bytes as sent.
    body: Vec<u8>,
    /// The client half-closes after the body.
    then_eof: bool,
}

const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

fn body_case(size_or_crlf: bool, name: &'static str, body: &[u8]) -> BodyCase {
    BodyCase {
        size_or_crlf,
        name,
        head: CHUNKED,
        body: body.to_vec(),
        then_eof: false,
    }
}

fn body_cases() -> Vec<BodyCase> {
    let long_extension = {
        let mut body = b"1;".to_vec();
        body.extend(std::iter::repeat_n(
            b'e',
            hijack::parse::MAX_CHUNK_LINE + 10,
        ));
        body.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        body
    };
    let long_trailer = {
        let mut body = b"0\r\nT: ".to_vec();
        body.extend(std::iter::repeat_n(
            b't',
            hijack::parse::MAX_CHUNK_LINE + 10,
        ));
        body.extend_from_slice(b"\r\n\r\n");
        body
    };
    vec![
        body_case(
            true,
            "chunk size not hexadecimal",
            b"zz\r\nabc\r\n0\r\n\r\n",
        ),
        body_case(true, "chunk size with a sign", b"+3\r\nabc\r\n0\r\n\r\n"),
        body_case(
            true,
            "chunk size overflowing 64 bits",
            b"10000000000000000\r\nabc\r\n0\r\n\r\n",
        ),
        body_case(
            true,
            "chunk data not followed by CRLF",
            b"3\r\nabcX\r\n0\r\n\r\n",
        ),
        body_case(
            true,
            "chunk data followed by a bare LF",
            b"3\r\nabc\n0\r\n\r\n",
        ),
        body_case(
            false,
            "chunk-size line with a bare CR",
            b"3\rabc\r\n0\r\n\r\n",
        ),
        body_case(
            false,
            "chunk-size line with a bare LF",
            b"3\nabc\r\n0\r\n\r\n",
        ),
        body_case(
            false,
            "control byte in a chunk extension",
            b"3;a\x01b\r\nabc\r\n0\r\n\r\n",
        ),
        body_case(
            false,
            "control byte in a trailer field",
            b"0\r\nT: a\x01b\r\n\r\n",
        ),
        body_case(
            false,
            "obs-fold in the trailer section",
            b"0\r\nT: a\r\n b\r\n\r\n",
        ),
        body_case(false, "empty trailer field name", b"0\r\n: b\r\n\r\n"),
        body_case(false, "chunk-size line over 4096 bytes", &long_extension),
        body_case(false, "trailer section over 4096 bytes", &long_trailer),
        BodyCase {
            size_or_crlf: false,
            name: "chunked body cut short by the end of stream",
            head: CHUNKED,
            body: b"5\r\nab".to_vec(),
            then_eof: true,
        },
        BodyCase {
            size_or_crlf: false,
            name: "Content-Length body cut short by the end of stream",
            head: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
            body: b"abc".to_vec(),
            then_eof: true,
        },
    ]
}

/// Serves one request whose handler reads the whole body (after flushing a 200 head first
/// if `flush_first`) and reports whether the read failed. Returns the handler's result and
/// everything the client received up to the end of stream.
fn feed_body(case: &BodyCase, feed: Feed, flush_first: bool) -> (bool, Vec<u8>) {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe_with(
        move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            if flush_first {
                w.flush().unwrap();
            }
            let mut body = Vec::new();
            let failed = req.body().read_to_end(&mut body).is_err();
            result_tx.send(failed).unwrap();
            if flush_first {
                let _ = w.write_body(b"after");
            }
        },
        ServerConfig::default(),
    );
    client.write_all(case.head).unwrap();
    send(&client, &case.body, feed);
    if case.then_eof {
        client.shutdown_write();
    }
    let failed = recv(&result);
    wait_until("the server closed the connection", || server.is_finished());
    let received = client.read_to_end();
    server.join().unwrap();
    (failed, received)
}

/// Feeds every body case that `select` picks, whole and one byte at a time, to a handler
/// that reads the body without writing anything first, and checks each: the body read
/// failed, the response is the 400 of SPEC.md#bad-input with Connection: close, and the
/// connection closed right after it. Returns the number of cases.
fn check_bodies(select: impl Fn(&BodyCase) -> bool) -> usize {
    let cases: Vec<BodyCase> = body_cases().into_iter().filter(|c| select(c)).collect();
    let mut failures = Vec::new();
    for case in &cases {
        for feed in FEEDS {
            let (failed, received) = feed_body(case, feed, false);
            // only_response: exactly one response, then the end of stream.
            let ok = failed
                && only_response(&received).is_some_and(|r| {
                    r.status == 400
                        && r.header("connection") == Some("close")
                        && r.header("content-type") == Some("text/plain; charset=utf-8")
                        && r.header("content-length") == Some("15")
                        && r.header("date").is_some()
                        && r.body == b"400 Bad Request"
                });
            if !ok {
                failures.push(format!(
                    "{} ({feed:?}): body read failed: {failed}; received {:?}",
                    case.name,
                    String::from_utf8_lossy(&received)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

//= SPEC.md#bad-input
//= type=test
//# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not
//# followed by CRLF MUST make the body fail; the server MUST then close the connection.
#[test]
fn bad_chunk_size_or_chunk_data_without_crlf_fails_the_body_and_closes() {
    assert!(check_bodies(|c| c.size_or_crlf) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# A chunk-size line with a bare CR or LF, a control byte in a chunk extension or a
//# trailer field, an obs-fold or an empty field name in the trailer section, a chunk-size
//# line or trailer section over 4096 bytes, or a body cut short by the end of stream MUST
//# also make the body fail.
#[test]
fn other_chunk_framing_errors_and_a_truncated_body_fail_the_body() {
    assert!(check_bodies(|c| !c.size_or_crlf) > 0);
}

//= SPEC.md#bad-input
//= type=test
//# If the body fails before the response head was committed, the response MUST be 400
//# Bad Request with Connection: close.
#[test]
fn body_failure_before_the_head_was_committed_gets_400_with_connection_close() {
    assert!(check_bodies(|_| true) > 10);
}

#[test]
fn a_malformed_body_after_the_head_was_committed_closes_the_connection() {
    for case in body_cases() {
        for feed in FEEDS {
            let (failed, received) = feed_body(&case, feed, true);
            assert!(failed, "{}: the body read did not fail", case.name);
            // The handler's response stands (its head was on the wire), then the close.
            let resp = only_response(&received)
                .unwrap_or_else(|| panic!("{}: not exactly one response", case.name));
            assert_eq!(resp.status, 200, "{}", case.name);
            assert_eq!(resp.body, b"after", "{}", case.name);
        }
    }
}

#[test]
fn a_well_formed_chunked_body_with_extensions_and_trailers_is_accepted_either_way() {
    // The control case: everything the malformed cases break, done right.
    let body = b"3 ;name=value\t\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n";
    for feed in FEEDS {
        let (result_tx, result) = mpsc::channel();
        let (client, server) = serve_pipe_with(
            move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                let mut got = Vec::new();
                req.body().read_to_end(&mut got).unwrap();
                result_tx.send(got).unwrap();
                w.write_body(b"ok").unwrap();
            },
            ServerConfig::default(),
        );
        client.write_all(CHUNKED).unwrap();
        send(&client, body, feed);
        assert_eq!(recv(&result), b"abcde");
        let mut pending = Vec::new();
        let resp = read_response(&mut &client, &mut pending, false).unwrap();
        assert_eq!((resp.status, &resp.body[..]), (200, &b"ok"[..]));
        assert_eq!(resp.header("connection"), None, "the connection stays open");
        client.shutdown_write();
        server.join().unwrap();
    }
}

/// Bytes already received, as a [`hijack_testkit::ByteSource`] that then reports the end of stream.
struct Received<'a>(&'a [u8]);

impl hijack_testkit::ByteSource for Received<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        n
    }
}

/// Parses the one response `received` must hold; `None` if it holds none or bytes follow.
fn only_response(received: &[u8]) -> Option<hijack_testkit::Response> {
    let mut src = Received(received);
    let mut pending = Vec::new();
    let resp = read_response(&mut src, &mut pending, false)?;
    (pending.is_empty() && src.0.is_empty()).then_some(resp)
}

#[test]
fn bytes_of_a_rejected_connection_are_not_read_as_a_next_request() {
    // A valid request pipelined behind a rejected head is never served.
    let ran = Arc::new(AtomicBool::new(false));
    let ran_in_handler = ran.clone();
    let (client, server) = serve_pipe_with(
        move |_req: Request<'_>, _w: ResponseWriter<'_, PipeEnd>| {
            ran_in_handler.store(true, Ordering::SeqCst);
        },
        ServerConfig::default(),
    );
    client
        .write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_until("the server closed the connection", || server.is_finished());
    let received = client.read_to_end();
    server.join().unwrap();
    assert_eq!(
        received,
        rejection(
            StatusCode::BAD_REQUEST,
            "a request needs one Host field (HTTP/1.1) and at most one"
        )
    );
    assert!(!ran.load(Ordering::SeqCst));
}
