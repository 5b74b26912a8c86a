//! The built-in cases, as vectors, named `group/name` after the section of SPEC.md they
//! check (and the historic bug, where there is one). Bytes are spelled out: what a case
//! sends is what a reader of its vector sees.

use crate::rules;
use crate::vector::{Endpoint, Level, ResponseExpect, Step, Vector};

const HOST: &str = "Host: conform\r\n";

/// The upgrade request of `/echo`.
const ECHO: &str =
    "GET /echo HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

/// 64 distinct bytes: a lost or repeated byte shifts every later one.
pub(crate) const PATTERN: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

/// Why an intermediary may leave an upgrade request with a body unupgraded.
const PER_HOP_UPGRADE: &str = "RFC 9110 §7.8: \"A server MAY ignore a received Upgrade header field if it wishes to continue using the current protocol on that connection.\" (HAProxy before 3.1 drops Upgrade from a request with a body)";

/// Why an intermediary may not pass a client's close on while the origin's handler waits.
pub(crate) const PER_HOP_CLOSE: &str = "SPEC.md#close-notify binds the server whose handler runs; no RFC sentence requires a proxy to pass a client's close on before the response (HAProxy documents it as `option abortonclose`, off by default)";

/// Sent after a case's new-protocol bytes, echoed after them: bytes no case sends otherwise.
pub(crate) const END_MARK: &str = "#end of the echo#";

/// A request the server must never answer: it hides inside a body.
pub(crate) const HIDDEN: &str = "GET /smuggled HTTP/1.1\r\nHost: conform\r\n\r\n";

/// SPEC.md sentences the built-in cases of the conformance contract check, quoted.
pub(crate) const HANDED_OVER: &str = "SPEC.md#hijack-handover: \"The handed-over bytes followed by every byte later read from the stream MUST equal the bytes the client sent after the last byte consumed by the request head, the handler's body reads and the server's body discard, in order, each exactly once.\"";
pub(crate) const HANDED_OVER_ORDER: &str = "SPEC.md#hijack-handover: \"The handed-over bytes MUST be exactly the bytes the client sent after what the handler consumed that the server has read, in wire order: the read buffer, then the background byte.\"";
const DISCARD_BEFORE_HANDOVER: &str = "SPEC.md#hijack-handover: \"If the handler wrote a response head before hijacking, the server MUST read and discard the rest of the request body before the handover.\"";
pub(crate) const END_FIRES: &str = "SPEC.md#close-notify: \"End of stream or an error from the background read while the handler runs MUST fire close-notify and cancel the request.\"";
pub(crate) const BYTE_DOES_NOT_FIRE: &str = "SPEC.md#close-notify: \"A byte caught by the background read MUST NOT fire close-notify and MUST NOT cancel the request.\"";
const FIRES_ONCE: &str = "SPEC.md#close-notify: \"A close-notify or cancellation handle MUST fire at most once and MUST keep the reason it first fired with.\"";
const HIJACK_AFTER_SUBSCRIBING: &str = "SPEC.md#close-notify: \"Subscribing to close-notify MUST NOT prevent a later hijack on the same connection.\"";
pub(crate) const KEEP_OPEN: &str = "SPEC.md#serving-loop: \"In every other case the server MUST keep the connection open and serve the next request on it.\"";
pub(crate) const IN_ORDER: &str = "SPEC.md#serving-loop: \"The server MUST answer pipelined requests one at a time, in the order they arrived, and MUST NOT read the next request head before the current response is finished.\"";
pub(crate) const CLOSE_WHEN_NOT_KEPT: &str = "SPEC.md#serving-loop: \"The server MUST close the connection after the response when the request did not keep it alive, when the response is delimited by the close, when a write to the stream failed, when the request body failed, or when the server is shutting down.\"";

/// Builds one vector.
struct Case(Vector);

/// A case of the conformance contract: `cite` is the SPEC.md sentence it checks, quoted, and
/// its level is that sentence's.
fn case(name: &str, level: Level, spec: &str, description: &str, cite: &str) -> Case {
    Case(contract_vector(
        name,
        level,
        spec,
        description,
        cite,
        vec![],
    ))
}

/// The start of a vector of a case of the contract (its profiles' too): no rule, no per-hop
/// reason, one connection opened.
pub(crate) fn contract_vector(
    name: &str,
    level: Level,
    spec: &str,
    description: &str,
    cite: &str,
    needs: Vec<Endpoint>,
) -> Vector {
    Vector {
        version: 1,
        name: name.into(),
        level,
        spec: spec.into(),
        description: description.into(),
        cite: cite.into(),
        rule: String::new(),
        per_hop: String::new(),
        needs,
        steps: vec![Step::Connect { conn: 0 }],
    }
}

fn upgraded() -> ResponseExpect {
    let mut r = ResponseExpect::status(101);
    r.headers.insert("upgrade".into(), "echo".into());
    r.headers.insert("connection".into(), "upgrade".into());
    r
}

fn statuses(list: &[u16]) -> Vec<ResponseExpect> {
    list.iter().map(|&s| ResponseExpect::status(s)).collect()
}

impl Case {
    /// What lets an intermediary differ here (see [`Vector::per_hop`]).
    fn per_hop(mut self, why: &str) -> Case {
        self.0.per_hop = why.into();
        self
    }
    fn needs(mut self, e: Endpoint) -> Case {
        self.0.needs.push(e);
        self
    }
    fn step(mut self, s: Step) -> Case {
        self.0.steps.push(s);
        self
    }
    fn send(self, data: &str) -> Case {
        self.send_repeat(data, None)
    }
    fn send_repeat(self, data: &str, repeat: Option<usize>) -> Case {
        self.step(Step::Send {
            conn: 0,
            data: data.into(),
            repeat,
            write_size: None,
            pause_ms: None,
        })
    }
    fn sleep(self, ms: u64) -> Case {
        self.step(Step::Sleep { ms })
    }
    fn expect(self, responses: Vec<ResponseExpect>, close: bool) -> Case {
        self.step(Step::ExpectResponses {
            conn: 0,
            responses: Some(responses),
            close,
            close_level: None,
            max_responses: None,
            follow_up: false,
        })
    }
    /// Responses as listed, and never more than `max` (more would answer a hidden request),
    /// then the follow-up that tells a close from a kept connection.
    fn expect_at_most(
        self,
        responses: Option<Vec<ResponseExpect>>,
        close: bool,
        max: usize,
    ) -> Case {
        self.step(Step::ExpectResponses {
            conn: 0,
            responses,
            close,
            close_level: None,
            max_responses: Some(max),
            follow_up: true,
        })
    }
    /// Holds the close check of the last `expect_responses` step at `level`.
    fn close_at(mut self, level: Level) -> Case {
        if let Some(Step::ExpectResponses { close_level, .. }) = self.0.steps.last_mut() {
            *close_level = Some(level);
        }
        self
    }
    fn expect_bytes(self, data: &str, repeat: Option<usize>) -> Case {
        self.step(Step::ExpectBytes {
            conn: 0,
            data: data.into(),
            repeat,
        })
    }
    /// The echo to its end: the end mark is sent after everything else, so the echo is
    /// exactly these bytes and then the mark, and a lost byte is decided when the mark
    /// arrives early; then a half-close and the server's close. (Half-closing before the
    /// echo is read would race proxies that end a tunnel on the client's half-close.)
    fn echoed_to_end(self, data: &str, repeat: Option<usize>) -> Case {
        self.send(END_MARK)
            .expect_bytes(data, repeat)
            .expect_bytes(END_MARK, None)
            .step(Step::ShutdownWrite { conn: 0 })
            .step(Step::ExpectClose { conn: 0 })
    }
    fn event(self, id: &str, close_notify: &str, within_ms: u64) -> Case {
        self.step(Step::ExpectEvent {
            id: id.into(),
            close_notify: close_notify.into(),
            within_ms,
        })
    }
}

/// `/close-notify/{id}` for this run, with a timeout.
fn close_notify(id: &str, timeout_ms: u64) -> String {
    format!("GET /close-notify/${{RUN}}-{id}?timeout_ms={timeout_ms} HTTP/1.1\r\n{HOST}\r\n")
}

fn event_id(id: &str) -> String {
    format!("${{RUN}}-{id}")
}

/// Every built-in byte-level case, in the order they are listed and run.
pub fn all() -> Vec<Vector> {
    let mut v = handover();
    v.extend(close_notify_cases());
    v.extend(serving());
    v.extend(bad_input());
    v.into_iter().map(|c| c.0).collect()
}

fn handover() -> Vec<Case> {
    use Level::Must;
    let spec = "SPEC.md#hijack-handover";
    let echo = |name: &str, cite: &str, description: &str| {
        case(name, Must, spec, description, cite).needs(Endpoint::Echo)
    };
    vec![
        echo(
            "handover/bytes-with-head",
            HANDED_OVER,
            "bytes sent in the same write as the upgrade head are handed over and echoed first (TestServerHijackGetsBackgroundByte)",
        )
        .send(&format!("{ECHO}hello"))
        .expect(vec![upgraded()], false)
        .echoed_to_end("hello", None),
        echo(
            "handover/background-byte",
            HANDED_OVER_ORDER,
            "bytes that arrive while the handler runs, after the head, are handed over in order (Go #15224, #18535)",
        )
        .send(ECHO)
        .sleep(100)
        .send("ping")
        .expect(vec![upgraded()], false)
        .echoed_to_end("ping", None),
        echo(
            "handover/one-byte-at-a-time",
            HANDED_OVER,
            "the upgrade head and the first bytes of the new protocol written one byte per write are all handed over",
        )
        .step(Step::Send {
            conn: 0,
            data: format!("{ECHO}hello"),
            repeat: None,
            write_size: Some(1),
            pause_ms: Some(1),
        })
        .expect(vec![upgraded()], false)
        .echoed_to_end("hello", None),
        echo(
            "handover/8k-after-head",
            HANDED_OVER,
            "8 KiB sent with the upgrade head (more than one read buffer) come back exactly, in order",
        )
        .send(ECHO)
        .send_repeat(PATTERN, Some(128))
        .expect(vec![upgraded()], false)
        .echoed_to_end(PATTERN, Some(128)),
        echo(
            "handover/100k-after-head",
            HANDED_OVER,
            "100 KiB sent right after the upgrade head come back exactly, in order",
        )
        .send(ECHO)
        .send_repeat(PATTERN, Some(1600))
        .expect(vec![upgraded()], false)
        .echoed_to_end(PATTERN, Some(1600)),
        echo(
            "handover/full-body-100k",
            DISCARD_BEFORE_HANDOVER,
            "an upgrade request with a 100 KiB Content-Length body: after the 101 the server discards the body, and the new protocol starts exactly after it (Go #61841, #27408)",
        )
        .per_hop(PER_HOP_UPGRADE)
        .send(&format!(
            "POST /echo HTTP/1.1\r\n{HOST}Connection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 102400\r\n\r\n"
        ))
        .send_repeat(PATTERN, Some(1600))
        .send("after the body")
        .expect(vec![upgraded()], false)
        .echoed_to_end("after the body", None),
        echo(
            "handover/chunked-body-discarded",
            DISCARD_BEFORE_HANDOVER,
            "an upgrade request with a chunked body: its terminating 0\\r\\n\\r\\n is not read as the new protocol (Go #61841)",
        )
        .per_hop(PER_HOP_UPGRADE)
        .send(&format!(
            "POST /echo HTTP/1.1\r\n{HOST}Connection: Upgrade\r\nUpgrade: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nnew protocol"
        ))
        .expect(vec![upgraded()], false)
        .echoed_to_end("new protocol", None),
        echo(
            "handover/body-then-pipelined-request",
            DISCARD_BEFORE_HANDOVER,
            "an upgrade request with a Content-Length body and a second request in the same write: the body is discarded and the second request is the new protocol's first bytes (Go #27408, #20933)",
        )
        .per_hop(PER_HOP_UPGRADE)
        .send(&format!(
            "POST /echo HTTP/1.1\r\n{HOST}Connection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n{HOST}\r\n"
        ))
        .expect(vec![upgraded()], false)
        .echoed_to_end(&format!("GET / HTTP/1.1\r\n{HOST}\r\n"), None),
        echo(
            "handover/pipelined-request-after-upgrade",
            HANDED_OVER,
            "a request pipelined after an upgrade request is the new protocol's bytes: echoed verbatim, never answered as HTTP",
        )
        .send(&format!("{ECHO}GET / HTTP/1.1\r\n{HOST}\r\n"))
        .expect(vec![upgraded()], false)
        .echoed_to_end(&format!("GET / HTTP/1.1\r\n{HOST}\r\n"), None),
        case(
            "handover/request-before-upgrade",
            Must,
            spec,
            "a GET, then an upgrade request with bytes after its head, in one write: the GET is answered 200 first, then the 101, then the echo (found by --explore: Node 20 answers only the upgrade)",
            IN_ORDER,
        )
        .needs(Endpoint::Echo)
        .send(&format!("GET / HTTP/1.1\r\n{HOST}\r\n{ECHO}hello"))
        .expect(vec![ResponseExpect::status(200), upgraded()], false)
        .echoed_to_end("hello", None),
        echo(
            "handover/first-bytes-not-lost",
            HANDED_OVER,
            "the first bytes of the new protocol, sent with the head, come before the bytes sent after the 101 (Caddy, Kubernetes, Moby)",
        )
        .send(&format!("{ECHO}first,"))
        .expect(vec![upgraded()], false)
        .send("second")
        .echoed_to_end("first,second", None),
    ]
}

fn close_notify_cases() -> Vec<Case> {
    use Level::Must;
    let spec = "SPEC.md#close-notify";
    let cn = |name: &str, cite: &str, description: &str| {
        case(name, Must, spec, description, cite).needs(Endpoint::CloseNotify)
    };
    vec![
        cn("close-notify/fires-on-close", END_FIRES, "the client closes while the handler waits: close-notify fires")
        .per_hop(PER_HOP_CLOSE)
            .send(&close_notify("close", 4000))
            .sleep(150)
            .step(Step::Close { conn: 0 })
            .event(&event_id("close"), "fired", 6000),
        cn(
            "close-notify/fires-on-half-close",
            END_FIRES,
            "the client half-closes while the handler waits: close-notify fires (a half-close counts as going away, as in Go)",
        )
        .per_hop(PER_HOP_CLOSE)
        .send(&close_notify("half-close", 4000))
        .sleep(150)
        .step(Step::ShutdownWrite { conn: 0 })
        .event(&event_id("half-close"), "fired", 6000),
        cn("close-notify/fires-on-reset", END_FIRES, "the client resets while the handler waits: close-notify fires")
        .per_hop(PER_HOP_CLOSE)
            .send(&close_notify("reset", 4000))
            .sleep(150)
            .step(Step::Reset { conn: 0 })
            .event(&event_id("reset"), "fired", 6000),
        cn(
            "close-notify/pipelined-does-not-fire",
            BYTE_DOES_NOT_FIRE,
            "a request pipelined while the handler waits does not fire close-notify, and both requests are answered in order (Go #23921)",
        )
        .send(&close_notify("pipelined", 600))
        .sleep(150)
        .send(&format!("GET / HTTP/1.1\r\n{HOST}\r\n"))
        .expect(statuses(&[200, 200]), false)
        .event(&event_id("pipelined"), "timeout", 3000),
        cn(
            "close-notify/pipelined-then-half-close",
            END_FIRES,
            "a request pipelined in the same write, then a half-close: close-notify fires, and the connection closes after the answers (Go #13165)",
        )
        .per_hop(PER_HOP_CLOSE)
        .send(&format!("{}GET / HTTP/1.1\r\n{HOST}\r\n", close_notify("pipelined-half-close", 4000)))
        .sleep(150)
        .step(Step::ShutdownWrite { conn: 0 })
        .event(&event_id("pipelined-half-close"), "fired", 6000)
        .step(Step::ExpectResponses {
            conn: 0,
            responses: None,
            close: true,
            close_level: None,
            max_responses: Some(2),
            follow_up: false,
        }),
        cn(
            "close-notify/not-after-handler-returned",
            FIRES_ONCE,
            "a close after the response was sent fires nothing: the record stays \"timeout\"",
        )
        .send(&close_notify("after-return", 100))
        .expect(statuses(&[200]), false)
        .step(Step::Close { conn: 0 })
        .sleep(200)
        .event(&event_id("after-return"), "timeout", 2000),
    ]
}

fn serving() -> Vec<Case> {
    use Level::Must;
    vec![
        case(
            "serving/keep-alive-after-close-notify",
            Must,
            "SPEC.md#close-notify",
            "a keep-alive connection serves more requests after one that waited on close-notify",
            KEEP_OPEN,
        )
        .needs(Endpoint::CloseNotify)
        .send(&close_notify("keep-alive", 100))
        .expect(statuses(&[200]), false)
        .send(&format!("GET / HTTP/1.1\r\n{HOST}\r\n"))
        .expect(statuses(&[200]), false)
        .send(&format!("GET / HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n"))
        .expect(statuses(&[200]), true),
        case(
            "serving/hijack-after-close-notify",
            Must,
            "SPEC.md#close-notify",
            "a hijack on a keep-alive connection after a request that subscribed to close-notify works (Go #9763)",
            HIJACK_AFTER_SUBSCRIBING,
        )
        .needs(Endpoint::CloseNotify)
        .needs(Endpoint::Echo)
        .send(&close_notify("then-hijack", 100))
        .expect(statuses(&[200]), false)
        .send(&format!("{ECHO}ping"))
        .expect(vec![upgraded()], false)
        .echoed_to_end("ping", None),
        case(
            "serving/pipelined-in-order",
            Must,
            "SPEC.md#serving-loop",
            "three pipelined requests in one write, one with a body, are answered in order, then the connection closes as the last asked",
            IN_ORDER,
        )
        .send(&format!(
            "GET /a HTTP/1.1\r\n{HOST}\r\nPOST /b HTTP/1.1\r\n{HOST}Content-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n"
        ))
        .expect(statuses(&[200, 200, 200]), true),
        case(
            "serving/http10-closes",
            Must,
            "SPEC.md#serving-loop",
            "an HTTP/1.0 request without keep-alive is answered and the connection closed",
            CLOSE_WHEN_NOT_KEPT,
        )
        .send("GET / HTTP/1.0\r\n\r\n")
        .expect(statuses(&[200]), true),
    ]
}

fn bad_input() -> Vec<Case> {
    let spec = "SPEC.md#bad-input";
    let chunk = format!("{:x}\r\n{HIDDEN}\r\n0\r\n\r\n", HIDDEN.len());
    let bad_chunk_size = format!(
        "POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    );
    // (name, rule, description, bytes): the rule (conform/src/rules.rs) sets the status, the
    // accepted ones, both levels and the cite.
    let rows: Vec<(&str, &str, &str, String)> = vec![
        (
            "te-and-cl",
            "te-and-cl",
            "Transfer-Encoding: chunked with Content-Length: 400 and close; answering the request hidden in the chunk is smuggling",
            format!(
                "POST / HTTP/1.1\r\n{HOST}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
            ),
        ),
        (
            "te-in-http10",
            "te-in-http10",
            "Transfer-Encoding in an HTTP/1.0 request: 400 and close (faulty framing); answering the hidden request is smuggling",
            format!("POST / HTTP/1.0\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n{chunk}"),
        ),
        (
            "differing-content-length",
            "differing-content-length",
            "two Content-Length fields that differ: 400 and close",
            format!(
                "POST / HTTP/1.1\r\n{HOST}Content-Length: 3\r\nContent-Length: {}\r\n\r\nabc{HIDDEN}",
                3 + HIDDEN.len()
            ),
        ),
        (
            "invalid-content-length",
            "invalid-content-length",
            "a Content-Length that is not all digits: 400 and close",
            format!("POST / HTTP/1.1\r\n{HOST}Content-Length: 3x\r\n\r\nabc"),
        ),
        (
            "bare-lf",
            "bare-lf",
            "a head with bare LF line ends: 400 and close (a recipient may accept it)",
            format!("GET / HTTP/1.1\n{}\n", HOST.replace("\r\n", "\n")),
        ),
        (
            "bare-cr",
            "bare-cr",
            "a bare CR in a field value: 400 and close (a recipient may replace it with SP)",
            format!("GET / HTTP/1.1\r\n{HOST}X-A: a\rb\r\n\r\n"),
        ),
        (
            "obs-fold",
            "obs-fold",
            "an obs-fold line: 400 and close (a server may replace it with SP)",
            format!("GET / HTTP/1.1\r\n{HOST}X-A: a\r\n b\r\n\r\n"),
        ),
        (
            "nul-in-value",
            "nul-in-field-value",
            "a NUL byte in a field value: 400 and close (a recipient may replace it with SP)",
            format!("GET / HTTP/1.1\r\n{HOST}X-A: a\0b\r\n\r\n"),
        ),
        (
            "space-before-colon",
            "space-before-colon",
            "whitespace between a field name and the colon: 400 and close",
            format!("GET / HTTP/1.1\r\n{HOST}X-A : b\r\n\r\n"),
        ),
        (
            "missing-host",
            "host-missing-or-duplicate",
            "an HTTP/1.1 request without Host: 400 and close",
            "GET / HTTP/1.1\r\n\r\n".to_string(),
        ),
        (
            "two-hosts",
            "host-missing-or-duplicate",
            "an HTTP/1.1 request with two Host fields: 400 and close",
            format!("GET / HTTP/1.1\r\n{HOST}Host: other\r\n\r\n"),
        ),
        (
            "bad-chunk-size-400",
            "chunked-invalid",
            "a chunk size that is not hexadecimal: 400 and close",
            bad_chunk_size.clone(),
        ),
        (
            "unknown-transfer-coding",
            "te-unknown-coding",
            "a transfer coding other than chunked before a final chunked: 501 and close",
            format!("POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "final-coding-not-chunked",
            "te-final-not-chunked",
            "a Transfer-Encoding whose final coding is not chunked: 400 and close",
            format!("POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: foo\r\n\r\nabc"),
        ),
        (
            "chunked-twice",
            "te-chunked-twice",
            "chunked applied twice: 400 (or 501) and close",
            format!(
                "POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "bad-version",
            "version-unsupported",
            "version HTTP/9.9: 400 and close (Go answers 505)",
            format!("GET / HTTP/9.9\r\n{HOST}\r\n"),
        ),
        (
            "unknown-expectation",
            "expect-unknown",
            "Expect other than 100-continue: 417 and close",
            format!("GET / HTTP/1.1\r\n{HOST}Expect: teapot\r\n\r\n"),
        ),
        (
            "head-too-large",
            "header-section-too-long",
            "a head over 1 MiB (Go's and the reference's default limit): 431 (or another 4xx) and close",
            format!(
                "GET / HTTP/1.1\r\n{HOST}X-Big: {}\r\n\r\n",
                "a".repeat((1 << 20) + (8 << 10))
            ),
        ),
    ];
    let ruled = |name: &str, id: &str, description: &str| {
        let rule = rules::find(id).unwrap_or_else(|| panic!("no rule {id}"));
        let mut c = case(
            &format!("bad-input/{name}"),
            rule.status_level(),
            spec,
            description,
            &rule.cite(),
        );
        c.0.rule = rule.id.into();
        (c, rule)
    };
    let mut out: Vec<Case> = rows
        .into_iter()
        .map(|(name, id, description, bytes)| {
            let (case, rule) = ruled(name, id, description);
            case.send(&bytes)
                .expect_at_most(Some(vec![rule.expect(rule.status)]), true, 1)
                .close_at(rule.close_level())
        })
        .collect();
    let (case, rule) = ruled(
        "bad-chunk-size-closes",
        "chunked-invalid",
        "a chunk size that is not hexadecimal: at most one response, then the connection closes (the body cannot be framed)",
    );
    out.push(
        case.send(&bad_chunk_size)
            .expect_at_most(None, true, 1)
            .close_at(rule.close_level()),
    );
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_grouped_by_spec_section() {
        let cases = all();
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate case names");
        for c in &cases {
            let group = c.name.split('/').next().unwrap_or("");
            assert!(
                ["handover", "close-notify", "serving", "bad-input"].contains(&group),
                "{}",
                c.name
            );
            assert!(c.spec.starts_with("SPEC.md#"), "{}", c.name);
        }
    }

    #[test]
    fn every_event_is_polled_past_its_close_notify_timeout() {
        // Polling must outlast the endpoint's own timeout, or a server that never notices
        // the close would leave the record "pending" (undecided) instead of "timeout".
        for v in all() {
            let mut timeouts = std::collections::HashMap::new();
            for s in &v.steps {
                match s {
                    Step::Send { data, .. } if data.contains("/close-notify/") => {
                        let id = data.split("/close-notify/").nth(1).unwrap();
                        let (id, rest) = id.split_once('?').unwrap();
                        let ms: u64 = rest
                            .trim_start_matches("timeout_ms=")
                            .split(' ')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap();
                        timeouts.insert(id.to_string(), ms);
                    }
                    Step::ExpectEvent { id, within_ms, .. } => {
                        let t = timeouts[id.as_str()];
                        assert!(
                            *within_ms >= t + 1000,
                            "{}: {within_ms} ms vs {t} ms",
                            v.name
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_hidden_request_is_framed_as_one_chunk() {
        // The te-and-cl vector's chunk must be exactly the hidden request, or the case
        // would test nothing.
        let v = all()
            .into_iter()
            .find(|v| v.name == "bad-input/te-and-cl")
            .unwrap();
        let Step::Send { data, .. } = &v.steps[1] else {
            panic!()
        };
        let body = data
            .split("\r\n\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\r\n\r\n");
        assert!(
            body.starts_with(&format!("{:x}\r\n{HIDDEN}", HIDDEN.len())),
            "{body:?}"
        );
    }
}
