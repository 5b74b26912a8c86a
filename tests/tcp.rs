//! The hijack handover, close-notify and the demo endpoints over loopback TCP, through
//! `hijack::Server` (SPEC.md#hijack-handover, #abort, #transport-contract): the TCP
//! transport's background read is an epoll registration on the server's watcher, so these
//! are the same scenarios as on the pipe with a real socket and a real interrupt.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use hijack::tcp::TcpConn;
use hijack::{Fired, Handler, Handover, Request, ResponseWriter, Server, ServerConfig};
use hijack_testkit::{read_response, recv, wait_until};
use http::StatusCode;

type Parts = Handover<TcpStream>;

fn serve<H: Handler<TcpConn>>(handler: H) -> Server {
    serve_with(ServerConfig::default(), handler)
}

fn serve_with<H: Handler<TcpConn>>(config: ServerConfig, handler: H) -> Server {
    Server::bind("127.0.0.1:0", config, handler).expect("bind 127.0.0.1:0")
}

/// A client connection; reads fail after 10 s rather than hang a broken test.
fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn read_to_end(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .expect("read to the end of stream");
    out
}

/// Reads a response head; returns it and the bytes read past it.
fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return (String::from_utf8(buf).unwrap(), rest);
        }
        let n = stream.read(&mut chunk).expect("read a response head");
        assert!(n > 0, "end of stream inside a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads exactly `n` bytes, starting with `pending`.
fn read_exact_after(stream: &mut TcpStream, mut pending: Vec<u8>, n: usize) -> Vec<u8> {
    let mut chunk = [0u8; 1024];
    while pending.len() < n {
        let k = stream.read(&mut chunk).expect("read");
        assert!(k > 0, "end of stream after {pending:?}");
        pending.extend_from_slice(&chunk[..k]);
    }
    pending
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

//= SPEC.md#abort
//= type=test
//# A byte the interrupted read already took MUST stay held after the abort, and a byte it
//# did not take MUST stay in the stream.
//
//= SPEC.md#transport-contract
//= type=test
//# A transport's background read MUST take at most one byte from the stream and MUST
//# report exactly one outcome: the byte, end of stream, an error, or aborted.
#[test]
fn background_byte_is_handed_over_and_visible_without_blocking_on_tcp() {
    let (in_handler_tx, in_handler) = mpsc::channel();
    let (caught_tx, caught) = mpsc::channel::<()>();
    let caught = Mutex::new(caught);
    let (result_tx, result) = mpsc::channel();
    let server = serve(move |req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
        in_handler_tx.send(()).unwrap();
        recv(&caught.lock().unwrap());
        let mut parts = w.hijack().unwrap();
        let buffered = parts.buffered.clone();
        let all = read_to_end(&mut parts);
        result_tx
            .send((buffered, all, req.cancellation().fired()))
            .unwrap();
    });
    let mut client = connect(&server);
    client.write_all(GET).unwrap();
    recv(&in_handler);
    assert_eq!(server.pending_background_reads(), 1);
    client.write_all(b"foo").unwrap();
    wait_until("the watcher caught a byte", || {
        server.pending_background_reads() == 0
    });
    client.shutdown(Shutdown::Write).unwrap();
    caught_tx.send(()).unwrap();
    let (buffered, all, cancelled) = recv(&result);
    assert_eq!(
        &buffered[..],
        b"f",
        "exactly the one background byte, handed over"
    );
    assert_eq!(
        all, b"foo",
        "the byte first, then the stream, nothing lost or doubled"
    );
    assert_eq!(cancelled, None, "a caught byte does not cancel the request");
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over bytes followed by every byte later read from the stream MUST equal the
//# bytes the client sent after the last byte consumed by the request head, the handler's
//# body reads and the server's body discard, in order, each exactly once.
#[test]
fn bytes_sent_right_after_the_head_are_handed_over_intact_on_tcp() {
    for size in [0usize, 1, 8 << 10, 100 << 10] {
        let (result_tx, result) = mpsc::channel();
        let server = serve(move |_req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
            let mut parts = w.hijack().unwrap();
            result_tx.send(read_to_end(&mut parts)).unwrap();
        });
        let trailing: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut client = connect(&server);
        let mut wire = GET.to_vec();
        wire.extend_from_slice(&trailing);
        client.write_all(&wire).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let got = recv(&result);
        assert_eq!(got.len(), trailing.len(), "{size} bytes");
        assert!(
            got == trailing,
            "{size} bytes: not the same bytes in the same order"
        );
    }
}

#[test]
fn handed_over_bytes_then_the_stream_are_what_followed_the_consumed_body_on_tcp() {
    for write_101 in [false, true] {
        let (result_tx, result) = mpsc::channel();
        let (more_tx, more) = mpsc::channel::<()>();
        let more = Mutex::new(more);
        let server = serve(
            move |mut req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
                let mut first = [0u8; 4];
                req.body().read_exact(&mut first).unwrap();
                if write_101 {
                    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                }
                let mut parts = w.hijack().unwrap();
                recv(&more.lock().unwrap());
                result_tx.send((first, read_to_end(&mut parts))).unwrap();
            },
        );
        let mut client = connect(&server);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789after")
            .unwrap();
        if write_101 {
            let (head, rest) = read_head(&mut client);
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
            assert!(rest.is_empty());
        }
        client.write_all(b"|more").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        more_tx.send(()).unwrap();
        let (first, rest) = recv(&result);
        assert_eq!(&first, b"0123");
        let expected: &[u8] = if write_101 {
            // The server discarded the rest of the body before the 101's new protocol.
            b"after|more"
        } else {
            b"456789after|more"
        };
        assert_eq!(rest, expected, "101 written: {write_101}");
    }
}

//= SPEC.md#transport-contract
//= type=test
//# Interrupting a background read MUST make it complete promptly whether or not any byte
//# arrives, and MUST NOT close the stream or take a byte that it does not report.
//
//= SPEC.md#abort
//= type=test
//# A byte the interrupted read already took MUST stay held after the abort, and a byte it
//# did not take MUST stay in the stream.
#[test]
fn hijack_interrupts_a_pending_background_read_without_a_byte_and_keeps_the_stream() {
    let (ready_tx, ready) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let (parts_tx, parts_rx) = mpsc::channel();
    let server = serve(move |_req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
        ready_tx.send(()).unwrap();
        recv(&go.lock().unwrap());
        parts_tx.send(w.hijack().unwrap()).unwrap();
    });
    let mut client = connect(&server);
    client.write_all(GET).unwrap();
    recv(&ready);
    assert_eq!(
        server.pending_background_reads(),
        1,
        "a background read is pending"
    );
    go_tx.send(()).unwrap();
    // No byte ever arrives for it: the hijack's interrupt alone completes it.
    let mut parts: Parts = recv(&parts_rx);
    assert_eq!(server.pending_background_reads(), 0);
    assert!(parts.buffered.is_empty());
    // The stream is open both ways, and the bytes sent now are all the hijacker's.
    parts.write_all(b"hello").unwrap();
    parts.flush().unwrap();
    assert_eq!(read_exact_after(&mut client, Vec::new(), 5), b"hello");
    client.write_all(b"xyz").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut parts), b"xyz");
}

//= SPEC.md#abort
//= type=test
//# Abort MUST interrupt a pending background read and MUST NOT return before that read
//# has completed.
#[test]
fn hijacks_racing_client_bytes_lose_and_double_nothing_on_tcp() {
    let (ready_tx, ready) = mpsc::channel();
    let (result_tx, result) = mpsc::channel();
    let server = serve(move |_req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
        ready_tx.send(()).unwrap();
        // Hijack at once: the client's bytes arrive before, during or after the abort.
        let outcome = w.hijack().map(|mut parts| read_to_end(&mut parts));
        result_tx.send(outcome.map_err(|e| e.to_string())).unwrap();
    });
    for round in 0..50 {
        let mut client = connect(&server);
        client.write_all(GET).unwrap();
        recv(&ready);
        client.write_all(b"abcdefgh").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            recv(&result).as_deref(),
            Ok(&b"abcdefgh"[..]),
            "round {round}"
        );
    }
    wait_until("no background read is left", || {
        server.pending_background_reads() == 0
    });
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over stream MUST have no read or write deadline set.
#[test]
fn deadlines_are_cleared_on_the_handed_over_tcp_stream() {
    let config = ServerConfig {
        read_header_timeout: Some(Duration::from_secs(30)),
        idle_timeout: Some(Duration::from_secs(60)),
        ..ServerConfig::default()
    };
    let (result_tx, result) = mpsc::channel();
    let server = serve_with(
        config,
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            if req.path() != "/hijack" {
                return w.write_body(b"first").unwrap();
            }
            let parts = w.hijack().unwrap();
            let timeouts = (
                parts.stream.read_timeout().unwrap(),
                parts.stream.write_timeout().unwrap(),
            );
            result_tx.send(timeouts).unwrap();
        },
    );
    let mut client = connect(&server);
    // Two requests: the second head is read under the idle and the header deadline.
    client.write_all(GET).unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut client, &mut pending, false)
            .unwrap()
            .body,
        b"first"
    );
    client
        .write_all(b"GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(recv(&result), (None, None), "Go #8296");
}

//= SPEC.md#hijack-handover
//= type=test
//# The parts MUST NOT hold any reference to the connection's, the request's or the
//# response's state.
#[test]
fn weak_probe_fails_after_the_handler_returns_while_the_hijacker_holds_every_part_on_tcp() {
    let (parts_tx, parts_rx) = mpsc::channel();
    let server = serve(move |_req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
        let probe = w.connection_probe();
        assert!(probe.is_alive());
        parts_tx.send((probe, w.hijack().unwrap())).unwrap();
    });
    let mut client = connect(&server);
    client.write_all(GET).unwrap();
    let (probe, mut parts): (_, Parts) = recv(&parts_rx);
    wait_until("the connection state is freed", || !probe.is_alive());
    assert_eq!(
        server.connections(),
        0,
        "a hijacked connection is not the server's"
    );
    // Every part still works.
    parts.write_all(b"still mine").unwrap();
    parts.flush().unwrap();
    assert_eq!(read_exact_after(&mut client, Vec::new(), 10), b"still mine");
    client.write_all(b"ping").unwrap();
    let mut ping = [0u8; 4];
    parts.read_exact(&mut ping).unwrap();
    assert_eq!(&ping, b"ping");
}

//= SPEC.md#close-notify
//= type=test
//# End of stream or an error from the background read while the handler runs MUST fire
//# close-notify and cancel the request.
#[test]
fn close_notify_fires_on_client_close_over_tcp() {
    for half_close in [false, true] {
        let (subscribed_tx, subscribed) = mpsc::channel();
        let (result_tx, result) = mpsc::channel();
        let server = serve(move |req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
            let notify = w.close_notify();
            subscribed_tx.send(()).unwrap();
            let fired = notify.wait_timeout(Duration::from_secs(10));
            let cancelled = req.cancellation().wait_timeout(Duration::from_secs(10));
            result_tx.send((fired, cancelled)).unwrap();
        });
        let mut client = connect(&server);
        client.write_all(GET).unwrap();
        recv(&subscribed);
        if half_close {
            client.shutdown(Shutdown::Write).unwrap();
        } else {
            drop(client);
        }
        assert_eq!(
            recv(&result),
            (Some(Fired::ClientGone), Some(Fired::ClientGone)),
            "half-close: {half_close}"
        );
    }
}

//= SPEC.md#serving-loop
//= type=test
//# A handler panic MUST close the connection unless it was hijacked, and MUST NOT stop the
//# server from serving other connections.
#[test]
fn server_keeps_serving_after_a_handler_panic() {
    let server = serve(|req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
        if req.path() == "/panic" {
            panic!("handler panics on purpose");
        }
        w.write_body(b"fine").unwrap();
    });
    for _ in 0..3 {
        let mut client = connect(&server);
        client
            .write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_to_end(&mut client),
            b"",
            "closed, and the next request not served"
        );
        let mut other = connect(&server);
        other
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut pending = Vec::new();
        let resp = read_response(&mut other, &mut pending, false).unwrap();
        assert_eq!((resp.status, &resp.body[..]), (200, &b"fine"[..]));
    }
    wait_until("every connection is closed", || server.connections() == 0);
}

// ---------------------------------------------------------------------------------------
// The demo server's acceptance checks (issue 2), without curl.

fn echo_round_trip(delay: Option<Duration>) {
    let server = serve(hijack_conform::demo::Demo::default());
    let mut client = connect(&server);
    let head = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
    match delay {
        None => client.write_all(&[&head[..], b"hello"].concat()).unwrap(),
        Some(delay) => {
            client.write_all(head).unwrap();
            std::thread::sleep(delay);
            client.write_all(b"hello").unwrap();
        }
    }
    let (head, rest) = read_head(&mut client);
    let lower = head.to_ascii_lowercase();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(lower.contains("\r\nupgrade: echo\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert_eq!(read_exact_after(&mut client, rest, 5), b"hello");
    client.write_all(b" again").unwrap();
    assert_eq!(read_exact_after(&mut client, Vec::new(), 6), b" again");
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        read_to_end(&mut client),
        b"",
        "the echo closes after the half-close"
    );
}

#[test]
fn demo_echo_answers_hello_sent_in_the_same_write_as_the_head() {
    echo_round_trip(None);
}

#[test]
fn demo_echo_answers_hello_sent_200_ms_after_the_head() {
    echo_round_trip(Some(Duration::from_millis(200)));
}

#[test]
fn demo_root_answers_a_short_text() {
    let server = serve(hijack_conform::demo::Demo::default());
    let mut client = connect(&server);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let resp = read_response(&mut client, &mut pending, false).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = String::from_utf8(resp.body).unwrap();
    // It names the request it answers (SPEC.md#conformance-endpoints), then says what it is.
    assert!(text.starts_with("GET /: "), "{text}");
    assert!(text.contains("hijack reference server"), "{text}");
    assert!(text.ends_with('\n'));
}
