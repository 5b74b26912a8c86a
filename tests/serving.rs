//! The serving loop on the in-memory transport (SPEC.md#serving-loop): keep-alive,
//! pipelining, response framing, `Expect: 100-continue`, the unread-body discard, handler
//! panics and the state hook; and close-notify, cancellation and release as a handler sees
//! them.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use hijack::pipe::PipeEnd;
use hijack::state::CONN_TRANSITIONS;
use hijack::{Cancellation, CloseNotify, ConnState, Fired, Request, ResponseWriter, ServerConfig};
use hijack_testkit::{
    ByteSource, Response, read_response, recv, serve_pipe, serve_pipe_with, wait_until,
};
use http::{HeaderValue, StatusCode, header};

type States = Arc<Mutex<Vec<ConnState>>>;

/// A config whose state hook records every state of connection 1.
fn recording() -> (ServerConfig, States) {
    let states: States = Arc::default();
    let hook_states = states.clone();
    let config = ServerConfig {
        on_state: Some(Arc::new(move |id, state| {
            assert_eq!(id, 1);
            hook_states.lock().unwrap().push(state);
        })),
        ..ServerConfig::default()
    };
    (config, states)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// Answers with the request path as the body.
fn echo_path(req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>) {
    w.write_body(req.path().as_bytes()).unwrap();
}

/// Waits until the serving thread ended (the connection closed or was hijacked).
fn finished(server: JoinHandle<()>) {
    wait_until("the server stopped serving the connection", || {
        server.is_finished()
    });
    server.join().unwrap();
}

/// Bytes already received, as a [`ByteSource`] that then reports the end of stream.
struct Received<'a>(&'a [u8]);

impl ByteSource for Received<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        n
    }
}

/// Splits the raw response head off `wire`: (status line and fields, the rest).
fn split_head(wire: &[u8]) -> (String, &[u8]) {
    let end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head")
        + 4;
    (
        String::from_utf8_lossy(&wire[..end]).into_owned(),
        &wire[end..],
    )
}

/// Reads the responses to `count` requests, then checks the server closed right after.
fn responses_then_eof(client: &PipeEnd, count: usize) -> Vec<Response> {
    let mut pending = Vec::new();
    let out: Vec<Response> = (0..count)
        .map(|i| {
            read_response(&mut &*client, &mut pending, false)
                .unwrap_or_else(|| panic!("response {i} missing"))
        })
        .collect();
    pending.extend(client.read_to_end());
    assert!(
        pending.is_empty(),
        "bytes after the last response: {pending:?}"
    );
    out
}

// ---------------------------------------------------------------------------------------
// Keep-alive and pipelining

//= SPEC.md#serving-loop
//= type=test
//# In every other case the server MUST keep the connection open and serve the next
//# request on it.
//
//= SPEC.md#abort
//= type=test
//# After the handler returned, the server MUST abort a pending background read before it
//# discards the unread request body, reads the next request head or closes the
//# connection.
#[test]
fn keep_alive_connection_serves_the_next_request_after_aborting_the_background_read() {
    let (config, states) = recording();
    let (client, server) = serve_pipe_with(echo_path, config);
    let mut pending = Vec::new();
    for (i, path) in ["/one", "/two", "/three"].into_iter().enumerate() {
        // Each request is sent only after the previous response arrived: when its handler
        // returned, the background read was pending with nothing to catch.
        client.write_all(&get(path)).unwrap();
        let resp = read_response(&mut &client, &mut pending, false).unwrap();
        assert_eq!(resp.body, path.as_bytes());
        assert_eq!(resp.header("connection"), None);
        assert_eq!(client.background_reads_started(), i as u64 + 1);
    }
    client.shutdown_write();
    finished(server);
    use ConnState::*;
    assert_eq!(
        *states.lock().unwrap(),
        [New, Active, Idle, Active, Idle, Active, Idle, Closed]
    );
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST answer pipelined requests one at a time, in the order they arrived,
//# and MUST NOT read the next request head before the current response is finished.
#[test]
fn pipelined_requests_are_answered_one_at_a_time_in_order() {
    let (config, states) = recording();
    let in_flight = Arc::new(AtomicUsize::new(0));
    // (path, the states the hook reported when that request's handler ran)
    type Seen = Vec<(String, Vec<ConnState>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (handler_states, handler_seen) = (states.clone(), seen.clone());
    let (client, server) = serve_pipe_with(
        move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            assert_eq!(
                in_flight.fetch_add(1, Ordering::SeqCst),
                0,
                "two handlers at once"
            );
            let mut body = Vec::new();
            req.body().read_to_end(&mut body).unwrap();
            // The state hook so far: no later request has started.
            let so_far = handler_states.lock().unwrap().clone();
            handler_seen
                .lock()
                .unwrap()
                .push((req.path().to_owned(), so_far));
            w.write_body(req.path().as_bytes()).unwrap();
            w.write_body(&body).unwrap();
            in_flight.fetch_sub(1, Ordering::SeqCst);
        },
        config,
    );
    client
        .write_all(
            b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
              GET /2 HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
    let bodies: Vec<Vec<u8>> = responses_then_eof(&client, 3)
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(
        bodies,
        [b"/1abc".to_vec(), b"/2".to_vec(), b"/3de".to_vec()]
    );
    finished(server);
    use ConnState::*;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("/1".to_owned(), vec![New, Active]),
            ("/2".to_owned(), vec![New, Active, Idle, Active]),
            (
                "/3".to_owned(),
                vec![New, Active, Idle, Active, Idle, Active]
            ),
        ]
    );
    assert_eq!(
        *states.lock().unwrap(),
        [New, Active, Idle, Active, Idle, Active, Closed]
    );
}

// ---------------------------------------------------------------------------------------
// Response framing

//= SPEC.md#serving-loop
//= type=test
//# A response whose handler returned after writing at most 2048 body bytes without
//# flushing, with no Content-Length set and a status that allows a body, MUST carry a
//# Content-Length equal to the number of bytes written.
#[test]
fn short_unflushed_response_gets_a_content_length_equal_to_the_bytes_written() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        let n: usize = req.path()[1..].parse().unwrap();
        let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        // In several writes: the length is the total, not the first write's.
        for part in body.chunks(700) {
            w.write_body(part).unwrap();
        }
        if n == 0 {
            w.write_header(StatusCode::CREATED);
        }
    });
    let sizes = [0usize, 1, 700, 2047, 2048];
    for n in sizes {
        client.write_all(&get(&format!("/{n}"))).unwrap();
    }
    client.shutdown_write();
    let resps = responses_then_eof(&client, sizes.len());
    for (n, resp) in sizes.into_iter().zip(resps) {
        assert_eq!(
            resp.header("content-length"),
            Some(n.to_string().as_str()),
            "{n} bytes"
        );
        assert_eq!(resp.header("transfer-encoding"), None, "{n} bytes");
        assert_eq!(resp.body.len(), n);
    }
    finished(server);
}

//= SPEC.md#serving-loop
//= type=test
//# Any other HTTP/1.1 response with a body and no Content-Length MUST use the chunked
//# transfer coding and MUST end with a zero-size chunk.
#[test]
fn longer_or_flushed_http11_response_is_chunked_and_ends_with_a_zero_size_chunk() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        match req.path() {
            "/long" => w.write_body(&[b'x'; 2049]).unwrap(),
            "/flushed" => {
                w.write_body(b"early").unwrap();
                w.flush().unwrap();
                w.write_body(b"late").unwrap();
            }
            _ => {
                // The handler's own Transfer-Encoding is replaced.
                w.headers_mut().insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("identity"),
                );
                w.write_body(&[b'y'; 5000]).unwrap();
            }
        }
    });
    let (cases, expected): ([&str; 3], [Vec<u8>; 3]) = (
        ["/long", "/flushed", "/identity"],
        [vec![b'x'; 2049], b"earlylate".to_vec(), vec![b'y'; 5000]],
    );
    for path in cases {
        client.write_all(&get(path)).unwrap();
    }
    client.shutdown_write();
    finished(server);
    let wire = client.read_to_end();
    let mut rest: &[u8] = &wire;
    for (path, body) in cases.into_iter().zip(expected) {
        let (head, after) = split_head(rest);
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{path}: {head}"
        );
        assert!(!head.contains("content-length"), "{path}: {head}");
        assert!(!head.contains("identity"), "{path}: {head}");
        // Decode the chunks, up to and including the zero-size chunk.
        let (decoded, used, complete) = hijack_testkit::wire::decode_chunks(after).unwrap();
        assert!(complete, "{path}: no zero-size chunk");
        let at = &after[used..];
        assert_eq!(decoded, body, "{path}");
        rest = at;
    }
    assert!(
        rest.is_empty(),
        "bytes after the last zero-size chunk: {rest:?}"
    );
}

//= SPEC.md#serving-loop
//= type=test
//# A response to an HTTP/1.0 request MUST NOT use the chunked transfer coding, and without
//# a Content-Length its end MUST be marked by closing the connection.
#[test]
fn http10_response_without_length_is_not_chunked_and_ends_with_the_close() {
    for keep_alive in [false, true] {
        let (config, states) = recording();
        let (client, server) = serve_pipe_with(
            |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                w.write_body(&[b'z'; 3000]).unwrap();
            },
            config,
        );
        let connection = if keep_alive {
            "Connection: keep-alive\r\n"
        } else {
            ""
        };
        client
            .write_all(
                format!("GET / HTTP/1.0\r\n{connection}\r\nGET /next HTTP/1.0\r\n\r\n").as_bytes(),
            )
            .unwrap();
        finished(server);
        let wire = client.read_to_end();
        let (head, body) = split_head(&wire);
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.0 200 ok\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(
            body, [b'z'; 3000],
            "the body runs to the close; /next is not answered"
        );
        assert_eq!(states.lock().unwrap().last(), Some(&ConnState::Closed));
    }
}

#[test]
fn http10_keep_alive_request_with_a_short_response_stays_open() {
    let (client, server) = serve_pipe(echo_path);
    client
        .write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
        .unwrap();
    let resps = responses_then_eof(&client, 2);
    assert_eq!(resps[0].header("connection"), Some("keep-alive"));
    assert_eq!(resps[0].header("content-length"), Some("2"));
    assert_eq!(resps[0].body, b"/a");
    assert_eq!(resps[1].header("connection"), Some("close"));
    assert_eq!(resps[1].body, b"/b");
    finished(server);
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST close the connection after the response when the request did not keep
//# it alive, when the response is delimited by the close, when a write to the stream
//# failed, when the request body failed, or when the server is shutting down.
#[test]
fn connection_closes_after_a_response_that_must_close_it() {
    let requests: [(&str, &[u8]); 5] = [
        (
            "HTTP/1.1 with Connection: close",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        ("HTTP/1.0 without keep-alive", b"GET / HTTP/1.0\r\n\r\n"),
        (
            "response delimited by the close",
            b"GET /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ),
        (
            "request body failed",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
        (
            "unread request body failed in the server's discard",
            b"POST /unread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
    ];
    for (what, request) in requests {
        let (config, states) = recording();
        let (client, server) = serve_pipe_with(
            |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                if req.path() != "/unread" {
                    let _ = req.body().read_to_end(&mut Vec::new());
                }
                if req.path() == "/flush" {
                    w.flush().unwrap();
                }
                let _ = w.write_body(b"done");
            },
            config,
        );
        let mut wire = request.to_vec();
        // A well-formed request behind it that must not be answered.
        wire.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        client.write_all(&wire).unwrap();
        finished(server);
        let received = client.read_to_end();
        let mut pending = Vec::new();
        let mut src = Received(&received);
        assert!(
            read_response(&mut src, &mut pending, false).is_some(),
            "{what}: no response"
        );
        assert!(
            read_response(&mut src, &mut pending, false).is_none(),
            "{what}: the next request was answered"
        );
        use ConnState::*;
        assert_eq!(*states.lock().unwrap(), [New, Active, Closed], "{what}");
    }
}

//= SPEC.md#serving-loop
//= type=test
//# A response to a HEAD request MUST NOT carry body bytes.
#[test]
fn head_response_carries_no_body_bytes() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if req.path() == "/flushed" {
            w.flush().unwrap();
        }
        let _ = w.write_body(b"hello");
        if req.path() == "/big" {
            let _ = w.write_body(&[b'b'; 5000]);
        }
    });
    client
        .write_all(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
              HEAD /flushed HTTP/1.1\r\nHost: x\r\n\r\n\
              HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    finished(server);
    let wire = client.read_to_end();
    let mut rest: &[u8] = &wire;
    for path in ["/", "/flushed", "/big"] {
        let (head, after) = split_head(rest);
        // The next response's status line follows the head directly: no body bytes.
        assert!(after.starts_with(b"HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        rest = after;
    }
    let (head, body) = split_head(rest);
    assert!(
        head.to_ascii_lowercase().contains("content-length: 5\r\n"),
        "{head}"
    );
    assert_eq!(body, b"hello");
}

//= SPEC.md#serving-loop
//= type=test
//# A response with status 1xx, 204 or 304 MUST NOT carry a body, a Content-Length or a
//# Transfer-Encoding, and a body write for it MUST fail.
#[test]
fn no_body_statuses_carry_no_body_length_or_coding_and_body_writes_fail() {
    let write_failed = Arc::new(Mutex::new(Vec::new()));
    let failed = write_failed.clone();
    let (client, server) = serve_pipe(
        move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            if req.path() == "/after" {
                w.write_body(b"after").unwrap();
                return;
            }
            let status: u16 = req.path()[1..].parse().unwrap();
            w.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
            w.headers_mut().insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            w.write_header(StatusCode::from_u16(status).unwrap());
            let error = w.write_body(b"hello").is_err();
            let flushed_error = {
                w.flush().unwrap();
                w.write_body(b"again").is_err()
            };
            failed
                .lock()
                .unwrap()
                .push((status, error && flushed_error));
        },
    );
    let statuses = [204u16, 304, 103];
    for status in statuses {
        client.write_all(&get(&format!("/{status}"))).unwrap();
    }
    client
        .write_all(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    finished(server);
    let wire = client.read_to_end();
    let mut rest: &[u8] = &wire;
    for status in statuses {
        let (head, after) = split_head(rest);
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with(&format!("http/1.1 {status} ")), "{head}");
        assert!(!lower.contains("content-length"), "{head}");
        assert!(!lower.contains("transfer-encoding"), "{head}");
        assert!(
            after.starts_with(b"HTTP/1.1 "),
            "{status}: body bytes follow the head"
        );
        rest = after;
    }
    let (_, body) = split_head(rest);
    assert_eq!(body, b"after");
    assert_eq!(
        *write_failed.lock().unwrap(),
        statuses.map(|s| (s, true)),
        "every body write failed"
    );
}

//= SPEC.md#serving-loop
//= type=test
//# A body write past a declared Content-Length MUST fail without writing any of its bytes,
//# and a response that ends short of its declared Content-Length MUST be followed by
//# closing the connection.
#[test]
fn body_write_past_a_declared_content_length_fails_without_writing_any_byte() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        w.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        w.write_body(b"abc").unwrap();
        if req.path() == "/flushed" {
            w.flush().unwrap();
        }
        assert!(w.write_body(b"def").is_err(), "past the declared length");
        w.write_body(b"de").unwrap();
        assert!(w.write_body(b"!").is_err(), "past the declared length");
    });
    client.write_all(&get("/held")).unwrap();
    client.write_all(&get("/flushed")).unwrap();
    client.shutdown_write();
    for resp in responses_then_eof(&client, 2) {
        assert_eq!(resp.header("content-length"), Some("5"));
        assert_eq!(resp.body, b"abcde");
    }
    finished(server);
}

#[test]
fn response_short_of_its_declared_content_length_is_followed_by_the_close() {
    for flush in [false, true] {
        let (client, server) = serve_pipe(
            move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                w.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
                w.write_body(b"abc").unwrap();
                if flush {
                    w.flush().unwrap();
                }
            },
        );
        let mut wire = get("/short");
        wire.extend_from_slice(&get("/next"));
        client.write_all(&wire).unwrap();
        finished(server);
        let received = client.read_to_end();
        let (head, body) = split_head(&received);
        assert!(
            head.to_ascii_lowercase().contains("content-length: 10\r\n"),
            "{head}"
        );
        assert_eq!(
            body, b"abc",
            "three bytes, then the close; /next is not answered"
        );
    }
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST add a Date field unless the handler set one.
#[test]
fn date_field_is_added_unless_the_handler_set_one() {
    const SET: &str = "Tue, 15 Nov 1994 08:12:31 GMT";
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if req.path() == "/own" {
            w.headers_mut()
                .insert(header::DATE, HeaderValue::from_static(SET));
        }
        if req.path() == "/chunked" {
            w.flush().unwrap();
        }
        w.write_body(b"x").unwrap();
    });
    for path in ["/plain", "/chunked", "/own"] {
        client.write_all(&get(path)).unwrap();
    }
    client.shutdown_write();
    let resps = responses_then_eof(&client, 3);
    for resp in &resps[..2] {
        let dates: Vec<_> = resp
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
            .collect();
        assert_eq!(dates.len(), 1, "{resp:?}");
        httpdate::parse_http_date(&dates[0].1).expect("an HTTP date");
    }
    let dates: Vec<_> = resps[2]
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
        .collect();
    assert_eq!(dates.len(), 1);
    assert_eq!(dates[0].1, SET);
    finished(server);
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST NOT add a Content-Type field to a handler's response.
#[test]
fn no_content_type_is_added_to_a_handlers_response() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if req.path() == "/typed" {
            w.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-mine"),
            );
        }
        // Bytes a sniffer would call HTML.
        w.write_body(b"<!DOCTYPE html><html><body>hi</body></html>")
            .unwrap();
        if req.path() == "/chunked" {
            w.flush().unwrap();
        }
    });
    for path in ["/plain", "/chunked", "/typed"] {
        client.write_all(&get(path)).unwrap();
    }
    client.shutdown_write();
    let resps = responses_then_eof(&client, 3);
    assert_eq!(resps[0].header("content-type"), None);
    assert_eq!(resps[1].header("content-type"), None);
    let types: Vec<_> = resps[2]
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(types, ["application/x-mine"]);
    finished(server);
}

// ---------------------------------------------------------------------------------------
// Expect: 100-continue

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A handler that says when it is about to read the body, waits for `go`, then echoes the
/// body. With `set_status`, it sets a status before reading.
fn continue_handler(
    set_status: bool,
) -> (
    impl Fn(Request<'_>, ResponseWriter<'_, PipeEnd>) + Send + Sync + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (ready_tx, ready) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let handler = move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if set_status {
            w.write_header(StatusCode::ACCEPTED);
        }
        ready_tx.send(()).unwrap();
        recv(&go_rx.lock().unwrap());
        let mut body = Vec::new();
        req.body().read_to_end(&mut body).unwrap();
        w.write_body(&body).unwrap();
    };
    (handler, ready, go)
}

//= SPEC.md#serving-loop
//= type=test
//# For an HTTP/1.1 request with Expect: 100-continue and a body, the server MUST send 100
//# Continue before its first read of body bytes from the stream, and MUST NOT send it once
//# a response status was set.
#[test]
fn continue_is_sent_on_the_first_body_read_and_only_then() {
    let (handler, ready, go) = continue_handler(false);
    let (client, server) = serve_pipe(handler);
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    recv(&ready);
    assert_eq!(
        client.unread_len(),
        0,
        "100 Continue before the handler read the body"
    );
    go.send(()).unwrap();
    // The client waits for 100 Continue before it sends the body, as a client should.
    assert_eq!(client.read_exact_or_eof(CONTINUE.len()), CONTINUE);
    client.write_all(b"hello").unwrap();
    client.shutdown_write();
    let resps = responses_then_eof(&client, 1);
    assert_eq!((resps[0].status, &resps[0].body[..]), (200, &b"hello"[..]));
    finished(server);
}

#[test]
fn continue_is_not_sent_once_a_status_was_set() {
    let (handler, ready, go) = continue_handler(true);
    let (client, server) = serve_pipe(handler);
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    recv(&ready);
    go.send(()).unwrap();
    // The handler now waits in its body read, having set a status first.
    client.write_all(b"hello").unwrap();
    client.shutdown_write();
    let resps = responses_then_eof(&client, 1);
    assert_eq!((resps[0].status, &resps[0].body[..]), (202, &b"hello"[..]));
    finished(server);
}

//= SPEC.md#serving-loop
//= type=test
//# The server MUST NOT send 100 Continue for an HTTP/1.0 request or for a request without
//# a body.
#[test]
fn continue_is_not_sent_for_http10_or_a_request_without_a_body() {
    let heads: [&[u8]; 3] = [
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ];
    for head in heads {
        let (handler, ready, go) = continue_handler(false);
        let (client, server) = serve_pipe(handler);
        client.write_all(head).unwrap();
        recv(&ready);
        go.send(()).unwrap();
        if head.starts_with(b"POST / HTTP/1.0") {
            client.write_all(b"hello").unwrap();
        }
        client.shutdown_write();
        let resps = responses_then_eof(&client, 1);
        assert_eq!(resps[0].status, 200, "{}", String::from_utf8_lossy(head));
        finished(server);
    }
}

//= SPEC.md#serving-loop
//= type=test
//# If no 100 Continue was sent, the server MUST NOT read the request body after the
//# handler returns and MUST close the connection after the response.
#[test]
fn without_continue_sent_the_body_is_not_read_after_the_handler_and_the_connection_closes() {
    let (config, states) = recording();
    let (client, server) = serve_pipe_with(
        |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_header(StatusCode::PAYLOAD_TOO_LARGE);
            w.write_body(b"no thanks").unwrap();
        },
        config,
    );
    // The client waits for 100 Continue and never sends its body: a server that waited for
    // it would never finish.
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    finished(server);
    let resps = responses_then_eof(&client, 1);
    assert_eq!(resps[0].status, 413);
    assert_eq!(resps[0].header("connection"), Some("close"));
    use ConnState::*;
    assert_eq!(*states.lock().unwrap(), [New, Active, Closed]);
}

//= SPEC.md#hijack-handover
//= type=test
//# If the request asked for 100 Continue and none was sent, the hijack MUST NOT read the
//# request body.
#[test]
fn hijack_after_a_status_without_continue_sent_leaves_the_body_to_the_hijacker() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_header(StatusCode::SWITCHING_PROTOCOLS);
            let mut parts = w.hijack().expect("hijack");
            let mut got = Vec::new();
            parts.read_to_end(&mut got).unwrap();
            result_tx.send(got).unwrap();
        },
    );
    // An eager client sends its body without waiting for 100 Continue.
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap();
    client.shutdown_write();
    assert_eq!(
        recv(&result),
        b"hello",
        "the body is the hijacker's, not discarded"
    );
    finished(server);
    let wire = client.read_to_end();
    let (head, rest) = split_head(&wire);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(rest.is_empty());
}

//= SPEC.md#hijack-handover
//= type=test
//# After a hijack the server MUST NOT send 100 Continue.
#[test]
fn no_continue_is_sent_after_a_hijack() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |mut req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
            let mut parts = w.hijack().expect("hijack");
            // A body read after the hijack fails without sending 100 Continue or reading.
            let failed = req.body().read(&mut [0u8; 8]).is_err();
            std::io::Write::write_all(&mut parts, b"raw").unwrap();
            std::io::Write::flush(&mut parts).unwrap();
            let mut got = Vec::new();
            parts.read_to_end(&mut got).unwrap();
            result_tx.send((failed, got)).unwrap();
        },
    );
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    assert_eq!(client.read_exact_or_eof(3), b"raw");
    client.write_all(b"hello").unwrap();
    client.shutdown_write();
    assert_eq!(recv(&result), (true, b"hello".to_vec()));
    finished(server);
    assert_eq!(
        client.read_to_end(),
        b"",
        "nothing but the hijacker's bytes"
    );
}

// ---------------------------------------------------------------------------------------
// Unread body

fn post_with_body(len: usize, path: &str) -> Vec<u8> {
    let mut wire =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    wire.extend((0..len).map(|i| (i % 251) as u8));
    wire
}

//= SPEC.md#serving-loop
//= type=test
//# After the handler returned, the server MUST read and discard an unread request body of
//# at most max_discard_bytes (256 KiB by default), and MUST close the connection after the
//# response if the body does not end within that limit.
#[test]
fn unread_body_within_the_discard_limit_is_discarded_and_the_connection_kept() {
    let (client, server) = serve_pipe(echo_path);
    let limit = ServerConfig::default().max_discard_bytes as usize;
    assert_eq!(limit, 256 << 10);
    let mut wire = post_with_body(limit, "/unread");
    wire.extend_from_slice(&get("/next"));
    client.write_all(&wire).unwrap();
    client.shutdown_write();
    let resps = responses_then_eof(&client, 2);
    assert_eq!(resps[0].body, b"/unread");
    assert_eq!(
        resps[1].body, b"/next",
        "the body was discarded, the next request read"
    );
    finished(server);
}

#[test]
fn unread_body_over_the_discard_limit_closes_the_connection() {
    let (config, states) = recording();
    let (client, server) = serve_pipe_with(echo_path, config);
    let limit = ServerConfig::default().max_discard_bytes as usize;
    let mut wire = post_with_body(limit + 1, "/unread");
    wire.extend_from_slice(&get("/next"));
    client.write_all(&wire).unwrap();
    finished(server);
    let resps = responses_then_eof(&client, 1);
    assert_eq!(resps[0].body, b"/unread");
    use ConnState::*;
    assert_eq!(*states.lock().unwrap(), [New, Active, Closed]);
}

#[test]
fn discard_limit_is_the_configured_one() {
    let config = ServerConfig {
        max_discard_bytes: 10,
        ..ServerConfig::default()
    };
    for (len, kept) in [(10, true), (11, false)] {
        let (client, server) = serve_pipe_with(echo_path, config.clone());
        let mut wire = post_with_body(len, "/unread");
        wire.extend_from_slice(&get("/next"));
        client.write_all(&wire).unwrap();
        client.shutdown_write();
        let count = if kept { 2 } else { 1 };
        assert_eq!(
            responses_then_eof(&client, count).len(),
            count,
            "{len} bytes"
        );
        finished(server);
    }
}

// ---------------------------------------------------------------------------------------
// Handler panics

//= SPEC.md#serving-loop
//= type=test
//# A handler panic MUST close the connection unless it was hijacked, and MUST NOT stop the
//# server from serving other connections.
#[test]
fn handler_panic_closes_the_connection_and_the_serving_thread_returns() {
    let (config, states) = recording();
    let (client, server) = serve_pipe_with(
        |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_body(b"partial").unwrap();
            if req.path() == "/panic" {
                panic!("handler panics on purpose");
            }
        },
        config,
    );
    let mut wire = get("/ok");
    wire.extend_from_slice(&get("/panic"));
    wire.extend_from_slice(&get("/never"));
    client.write_all(&wire).unwrap();
    // serve_connection returns normally: the panic stayed inside the handler call.
    finished(server);
    let resps = responses_then_eof(&client, 1);
    assert_eq!(resps[0].body, b"partial");
    use ConnState::*;
    assert_eq!(*states.lock().unwrap(), [New, Active, Idle, Active, Closed]);
    // Another connection on the same handler type is served as usual.
    let (client, server) = serve_pipe(echo_path);
    client.write_all(&get("/other")).unwrap();
    client.shutdown_write();
    assert_eq!(responses_then_eof(&client, 1)[0].body, b"/other");
    finished(server);
}

// ---------------------------------------------------------------------------------------
// The state hook

//= SPEC.md#lifecycle
//= type=test
//# The server MUST report the initial New state and then every connection state change,
//# in order, to the state hook.
#[test]
fn state_hook_sees_new_then_every_change_in_order() {
    use ConnState::*;
    let scenarios: [(&str, Vec<u8>, bool, Vec<ConnState>); 5] = [
        (
            "closed before a request",
            Vec::new(),
            true,
            vec![New, Closed],
        ),
        (
            "keep-alive, then close",
            [
                get("/a"),
                b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            ]
            .concat(),
            false,
            vec![New, Active, Idle, Active, Closed],
        ),
        (
            "keep-alive, then end of stream",
            get("/a"),
            true,
            vec![New, Active, Idle, Closed],
        ),
        (
            "hijack",
            [get("/a"), get("/hijack")].concat(),
            true,
            vec![New, Active, Idle, Active, Hijacked],
        ),
        (
            "rejected head",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            false,
            vec![New, Active, Closed],
        ),
    ];
    for (what, wire, eof, expected) in scenarios {
        let (config, states) = recording();
        let (parts_tx, parts_rx) = mpsc::channel();
        let (client, server) = serve_pipe_with(
            move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                if req.path() == "/hijack" {
                    parts_tx.send(w.hijack().unwrap()).unwrap();
                } else {
                    w.write_body(b"ok").unwrap();
                }
            },
            config,
        );
        client.write_all(&wire).unwrap();
        if eof {
            client.shutdown_write();
        }
        finished(server);
        let seen = states.lock().unwrap().clone();
        assert_eq!(seen, expected, "{what}");
        // Each change is a row of the connection table.
        for pair in seen.windows(2) {
            assert!(
                CONN_TRANSITIONS
                    .iter()
                    .any(|&(s, _, n)| s == pair[0] && n == pair[1]),
                "{what}: {:?} -> {:?} is not a row",
                pair[0],
                pair[1]
            );
        }
        drop(parts_rx);
    }
}

// ---------------------------------------------------------------------------------------
// The background read, close-notify, cancellation and release

//= SPEC.md#background-read
//= type=test
//# The background read MUST start only once the request body has been read to its end
//# (or the request has none) while the handler runs.
#[test]
fn background_read_starts_only_once_the_body_was_read_to_its_end() {
    let (step_tx, step) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let (client, server) = serve_pipe(
        move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            let go_rx = go_rx.lock().unwrap();
            if req.path() == "/none" {
                step_tx.send("no body").unwrap();
                recv(&go_rx);
                return w.write_body(b"ok").unwrap();
            }
            let mut half = [0u8; 5];
            req.body().read_exact(&mut half).unwrap();
            step_tx.send("half read").unwrap();
            recv(&go_rx);
            let mut rest = Vec::new();
            req.body().read_to_end(&mut rest).unwrap();
            step_tx.send("read to the end").unwrap();
            recv(&go_rx);
            w.write_body(b"ok").unwrap();
        },
    );
    client
        .write_all(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    assert_eq!(recv(&step), "half read");
    assert_eq!(
        client.background_reads_started(),
        0,
        "started while body bytes were unread"
    );
    client.write_all(b"56789").unwrap();
    go.send(()).unwrap();
    assert_eq!(recv(&step), "read to the end");
    assert_eq!(client.background_reads_started(), 1);
    go.send(()).unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"ok"
    );
    // No body: started before the handler runs.
    client.write_all(&get("/none")).unwrap();
    assert_eq!(recv(&step), "no body");
    assert_eq!(client.background_reads_started(), 2);
    go.send(()).unwrap();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"ok"
    );
    client.shutdown_write();
    finished(server);
}

//= SPEC.md#close-notify
//= type=test
//# End of stream or an error from a foreground read of the stream while the handler runs
//# MUST fire close-notify and cancel the request.
#[test]
fn end_of_stream_or_error_in_a_body_read_fires_close_notify_and_cancels() {
    for reset in [false, true] {
        let (read_some_tx, read_some) = mpsc::channel();
        let (result_tx, result) = mpsc::channel();
        let (client, server) = serve_pipe(
            move |mut req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let notify = w.close_notify();
                let mut first = [0u8; 3];
                req.body().read_exact(&mut first).unwrap();
                read_some_tx.send(()).unwrap();
                // The rest never comes: the client goes away in the middle of the body.
                let failed = req.body().read_to_end(&mut Vec::new()).is_err();
                result_tx
                    .send((failed, notify.fired(), req.cancellation().fired()))
                    .unwrap();
            },
        );
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        recv(&read_some);
        if reset {
            client.reset();
        } else {
            client.shutdown_write();
        }
        assert_eq!(
            recv(&result),
            (true, Some(Fired::ClientGone), Some(Fired::ClientGone)),
            "reset: {reset}"
        );
        finished(server);
    }
}

//= SPEC.md#close-notify
//= type=test
//# A close-notify or cancellation handle MUST fire at most once and MUST keep the reason it
//# first fired with.
#[test]
fn close_notify_and_cancellation_keep_the_first_reason() {
    let (handles_tx, handles) = mpsc::channel();
    let (client, server) = serve_pipe(move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        let notify = w.close_notify();
        let cancel = req.cancellation();
        handles_tx.send((notify.clone(), cancel.clone())).unwrap();
        // The client goes away: both fire with ClientGone; the handler's return comes later.
        assert_eq!(notify.wait(), Fired::ClientGone);
        assert_eq!(cancel.wait(), Fired::ClientGone);
    });
    client.write_all(&get("/")).unwrap();
    let (notify, cancel): (CloseNotify, Cancellation) = recv(&handles);
    client.shutdown_write();
    finished(server);
    // The handler returned (HandlerDone would be next) and the connection closed.
    assert_eq!(notify.fired(), Some(Fired::ClientGone));
    assert_eq!(cancel.fired(), Some(Fired::ClientGone));
    assert_eq!(notify.wait(), Fired::ClientGone);
}

//= SPEC.md#close-notify
//= type=test
//# When the handler returns, a close-notify or cancellation that has not fired MUST fire
//# with HandlerDone and wake every waiter.
//
//= SPEC.md#release
//= type=test
//# When the handler returns, the connection reader MUST drop every reference to the
//# request's and response's state, and the close-notify handle MUST reach its terminal
//# state.
#[test]
fn handler_return_fires_handler_done_and_wakes_every_waiter() {
    let (handles_tx, handles) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let (client, server) = serve_pipe(
        move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            handles_tx
                .send((w.close_notify(), req.cancellation()))
                .unwrap();
            recv(&go_rx.lock().unwrap());
            w.write_body(b"bye").unwrap();
        },
    );
    client.write_all(&get("/")).unwrap();
    let (notify, cancel): (CloseNotify, Cancellation) = recv(&handles);
    let (woke_tx, woke) = mpsc::channel();
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let (notify, cancel, woke_tx) = (notify.clone(), cancel.clone(), woke_tx.clone());
            std::thread::spawn(move || {
                let fired = if i % 2 == 0 {
                    notify.wait()
                } else {
                    cancel.wait()
                };
                woke_tx.send(fired).unwrap();
            })
        })
        .collect();
    assert_eq!(notify.fired(), None, "nothing fires while the handler runs");
    assert_eq!(cancel.fired(), None);
    go.send(()).unwrap();
    for _ in 0..8 {
        assert_eq!(recv(&woke), Fired::HandlerDone);
    }
    for waiter in waiters {
        waiter.join().unwrap();
    }
    // The connection is still open, idle: what the stream does now reaches no handle.
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"bye"
    );
    client.reset();
    finished(server);
    assert_eq!(notify.fired(), Some(Fired::HandlerDone));
    assert_eq!(cancel.fired(), Some(Fired::HandlerDone));
}

//= SPEC.md#close-notify
//= type=test
//# After a hijack, the server MUST NOT fire close-notify or cancel the request because of
//# anything that happens on the stream.
#[test]
fn nothing_on_the_stream_fires_close_notify_or_cancels_after_a_hijack() {
    for reset in [false, true] {
        let (hijacked_tx, hijacked) = mpsc::channel();
        let (result_tx, result) = mpsc::channel();
        let (handles_tx, handles) = mpsc::channel();
        let (client, server) =
            serve_pipe(move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let notify = w.close_notify();
                let cancel = req.cancellation();
                handles_tx.send((notify.clone(), cancel.clone())).unwrap();
                let mut parts = w.hijack().unwrap();
                hijacked_tx.send(()).unwrap();
                // Read until the client's close or reset reaches the hijacker.
                let mut sink = Vec::new();
                let ended = parts.read_to_end(&mut sink);
                result_tx
                    .send((ended.is_ok(), sink, notify.fired(), cancel.fired()))
                    .unwrap();
            });
        client.write_all(&get("/")).unwrap();
        recv(&hijacked);
        if reset {
            client.reset();
        } else {
            client.write_all(b"bye").unwrap();
            client.shutdown_write();
        }
        let (clean_eof, sink, fired, cancelled) = recv(&result);
        assert_eq!(clean_eof, !reset);
        if !reset {
            assert_eq!(sink, b"bye");
        }
        assert_eq!((fired, cancelled), (None, None), "reset: {reset}");
        finished(server);
        let (notify, cancel): (CloseNotify, Cancellation) = recv(&handles);
        assert_eq!(notify.fired(), Some(Fired::HandlerDone));
        assert_eq!(cancel.fired(), Some(Fired::HandlerDone));
    }
}

//= SPEC.md#close-notify
//= type=test
//# A failed write to the client while the handler runs MUST cancel the request.
#[test]
fn failed_write_to_the_client_cancels_the_request() {
    let (read_tx, read) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            // Half the body: no background read is pending, so only the write can notice.
            let mut half = [0u8; 5];
            req.body().read_exact(&mut half).unwrap();
            read_tx.send(()).unwrap();
            recv(&go_rx.lock().unwrap());
            let cancel = req.cancellation();
            assert_eq!(cancel.fired(), None);
            let wrote = w.write_body(&[b'w'; 3000]).and_then(|()| w.flush());
            result_tx
                .send((wrote.is_err(), cancel.fired(), w.close_notify().fired()))
                .unwrap();
        },
    );
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    recv(&read);
    client.reset();
    go.send(()).unwrap();
    // Cancelled with ClientGone; close-notify does not fire for a failed write, as in Go.
    assert_eq!(recv(&result), (true, Some(Fired::ClientGone), None));
    finished(server);
}

//= SPEC.md#parts
//= type=test
//# A close-notify or cancellation handle MUST hold nothing but its own latch, so that a
//# handle kept after the handler returned keeps no connection, request or response state
//# alive.
#[test]
fn close_notify_and_cancellation_handles_hold_only_their_latch() {
    // One pointer each: the shared latch and nothing beside it.
    assert_eq!(
        std::mem::size_of::<CloseNotify>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<Cancellation>(),
        std::mem::size_of::<usize>()
    );
    for hijack in [false, true] {
        let (kept_tx, kept) = mpsc::channel();
        let (client, server) = serve_pipe(
            move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                let probe = w.connection_probe();
                let handles = (w.close_notify(), req.cancellation());
                if hijack {
                    let parts = w.hijack().unwrap();
                    kept_tx.send((probe, handles, Some(parts))).unwrap();
                } else {
                    w.write_body(b"bye").unwrap();
                    kept_tx.send((probe, handles, None)).unwrap();
                }
            },
        );
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (probe, (notify, cancel), parts) = recv(&kept);
        finished(server);
        assert!(
            probe.is_dead_within(hijack_testkit::GUARD),
            "a kept handle keeps the connection alive (hijack: {hijack})"
        );
        assert_eq!(notify.fired(), Some(Fired::HandlerDone));
        assert_eq!(cancel.fired(), Some(Fired::HandlerDone));
        drop(parts);
    }
}

//= SPEC.md#hijack-handover
//= type=test
//# If the body cannot be discarded within the discard limit, or the flush fails, the
//# hijack MUST fail and the connection MUST stay the server's, which closes it after the
//# handler returns.
#[test]
fn hijack_that_cannot_discard_the_body_or_flush_fails_and_the_server_closes_the_connection() {
    for flush_fails in [false, true] {
        let (config, states) = recording();
        let config = ServerConfig {
            max_discard_bytes: 16,
            ..config
        };
        let (ready_tx, ready) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        let (result_tx, result) = mpsc::channel();
        let (client, server) = serve_pipe_with(
            move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                ready_tx.send(()).unwrap();
                recv(&go_rx.lock().unwrap());
                w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                result_tx.send(w.hijack().is_err()).unwrap();
            },
            config,
        );
        if flush_fails {
            client.write_all(&get("/upgrade")).unwrap();
            recv(&ready);
            client.reset();
        } else {
            // 100 body bytes, over the discard limit of 16.
            client.write_all(&post_with_body(100, "/upgrade")).unwrap();
            recv(&ready);
        }
        go.send(()).unwrap();
        assert!(
            recv(&result),
            "the hijack must fail (flush fails: {flush_fails})"
        );
        finished(server);
        use ConnState::*;
        assert_eq!(
            *states.lock().unwrap(),
            [New, Active, Closed],
            "the connection stayed the server's (flush fails: {flush_fails})"
        );
    }
}
