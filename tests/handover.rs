//! The hijack handover on the in-memory transport: ports of Go's serve_test.go scenarios.

use std::io::{Read, Write};
use std::sync::{Mutex, mpsc};

use hijack::pipe::{PipeEnd, pipe};
use hijack::{Fired, Handover, Request, ResponseWriter, ServerConfig};
use hijack_testkit::{read_response, recv, serve_pipe, wait_until};
use http::StatusCode;

type Parts = Handover<PipeEnd>;

/// Reads the handed-over bytes, then the stream, until `n` bytes or end of stream.
fn read_n(parts: &mut Parts, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut at = 0;
    while at < n {
        match parts.read(&mut out[at..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => at += k,
        }
    }
    out.truncate(at);
    out
}

fn read_all(parts: &mut Parts) -> Vec<u8> {
    let mut out = Vec::new();
    parts.read_to_end(&mut out).unwrap();
    out
}

//= SPEC.md#background-read
//= type=test
//# A byte caught by the background read MUST be kept and MUST be the first byte
//# of whatever reads the connection next.
#[test]
fn background_byte_is_handed_over_and_visible_without_blocking() {
    let (in_handler_tx, in_handler) = mpsc::channel();
    let (caught_tx, caught) = mpsc::channel::<()>();
    let caught = Mutex::new(caught);
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        in_handler_tx.send(()).unwrap();
        recv(&caught.lock().unwrap());
        let mut parts = w.hijack().unwrap();
        let buffered = parts.buffered.clone();
        let rest = read_all(&mut parts);
        result_tx
            .send((buffered, rest, req.cancellation().fired()))
            .unwrap();
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    recv(&in_handler);
    client.write_all(b"foo").unwrap();
    wait_until("the background read took a byte", || {
        client.peer_unread_len() == 2
    });
    client.shutdown_write();
    caught_tx.send(()).unwrap();
    let (buffered, rest, cancelled) = recv(&result);
    assert_eq!(
        &buffered[..],
        b"f",
        "the background byte is in the handed-over bytes"
    );
    assert_eq!(rest, b"foo");
    assert_eq!(cancelled, None, "a caught byte does not cancel the request");
    server.join().unwrap();
}

fn hijack_immediately_and_collect(trailing: &[u8], reads: usize) -> Vec<u8> {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        let mut parts = w.hijack().unwrap();
        result_tx.send(read_n(&mut parts, reads)).unwrap();
    });
    let mut request = b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n".to_vec();
    request.extend_from_slice(trailing);
    client.write_all(&request).unwrap();
    client.shutdown_write();
    let got = recv(&result);
    server.join().unwrap();
    got
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over bytes MUST be exactly the bytes the client sent after what the
//# handler consumed that the server has read, in wire order: the read buffer, then
//# the background byte.
#[test]
fn eight_kib_sent_with_the_head_is_handed_over_intact() {
    let trailing = vec![b'x'; 8 << 10];
    assert_eq!(hijack_immediately_and_collect(&trailing, 1 << 20), trailing);
}

#[test]
fn hundred_kib_sent_right_after_the_head_is_handed_over_intact() {
    let trailing: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(hijack_immediately_and_collect(&trailing, 1 << 20), trailing);
}

#[test]
fn hijack_before_reading_a_content_length_body_gets_the_body() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        let mut parts = w.hijack().unwrap();
        result_tx.send(read_all(&mut parts)).unwrap();
    });
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: e.com\r\nContent-Length: 10\r\n\r\n0123456789after")
        .unwrap();
    client.shutdown_write();
    assert_eq!(recv(&result), b"0123456789after");
    server.join().unwrap();
}

//= SPEC.md#hijack-handover
//= type=test
//# The hijack MUST flush everything the handler wrote before it returns the parts, so that
//# the client receives it before any byte the hijacker writes.
#[test]
fn headers_flushed_before_hijack_arrive_before_hijacker_bytes() {
    let (client, server) = serve_pipe(|_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        w.write_header(StatusCode::SWITCHING_PROTOCOLS);
        w.headers_mut().insert("upgrade", "test".parse().unwrap());
        w.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        let mut parts = w.hijack().unwrap();
        parts.write_all(b"from the hijacker").unwrap();
        parts.flush().unwrap();
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    server.join().unwrap();
    let mut pending = Vec::new();
    let resp = read_response(&mut &client, &mut pending, false).unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("upgrade"), Some("test"));
    pending.extend(client.read_to_end());
    assert_eq!(pending, b"from the hijacker");
}

#[test]
fn body_written_and_flushed_before_hijack_arrives_first() {
    let (client, server) = serve_pipe(|_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        w.write_body(b"abc").unwrap();
        w.flush().unwrap();
        w.write_body(b"def").unwrap();
        let mut parts = w.hijack().unwrap();
        parts.write_all(b"RAW").unwrap();
        parts.flush().unwrap();
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    server.join().unwrap();
    let wire = client.read_to_end();
    let text = String::from_utf8_lossy(&wire);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n3\r\nabc\r\n3\r\ndef\r\nRAW"),
        "{text}"
    );
}

//= SPEC.md#hijack-handover
//= type=test
//# If the handler wrote a response head before hijacking, the server MUST read
//# and discard the rest of the request body before the handover.
#[test]
fn upgrade_after_writing_101_discards_the_unread_chunked_body() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_header(StatusCode::SWITCHING_PROTOCOLS);
            let mut parts = w.hijack().unwrap();
            result_tx.send(read_all(&mut parts)).unwrap();
        },
    );
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: e.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nSPDY")
        .unwrap();
    client.shutdown_write();
    assert_eq!(
        recv(&result),
        b"SPDY",
        "the new protocol starts after the body (Go #61841)"
    );
    server.join().unwrap();
}

//= SPEC.md#close-notify
//= type=test
//# Subscribing to close-notify MUST NOT prevent a later hijack on the same connection.
#[test]
fn hijack_after_subscribing_to_close_notify_on_an_earlier_request() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            let notify = w.close_notify();
            if req.path() == "/first" {
                let _ = w.write_body(b"first");
                drop(notify);
                return;
            }
            let mut parts = w.hijack().expect("hijack after close-notify (Go #9763)");
            result_tx
                .send((notify.fired(), read_all(&mut parts)))
                .unwrap();
        },
    );
    client
        .write_all(b"GET /first HTTP/1.1\r\nHost: e.com\r\n\r\nGET /second HTTP/1.1\r\nHost: e.com\r\n\r\nrest")
        .unwrap();
    client.shutdown_write();
    let (fired, rest) = recv(&result);
    assert_eq!(fired, None);
    assert_eq!(rest, b"rest");
    server.join().unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"first"
    );
}

fn close_notify_case(subscribe_first: bool, reset: bool) {
    let (subscribed_tx, subscribed) = mpsc::channel();
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        if subscribe_first {
            let notify = w.close_notify();
            subscribed_tx.send(()).unwrap();
            result_tx
                .send((notify.wait(), req.cancellation().wait()))
                .unwrap();
        } else {
            // The client is gone before we look: the cancellation fired first.
            subscribed_tx.send(()).unwrap();
            req.cancellation().wait();
            result_tx
                .send((w.close_notify().wait(), req.cancellation().wait()))
                .unwrap();
        }
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    recv(&subscribed);
    if reset {
        client.reset();
    } else {
        client.shutdown_write();
    }
    assert_eq!(recv(&result), (Fired::ClientGone, Fired::ClientGone));
    server.join().unwrap();
}

//= SPEC.md#close-notify
//= type=test
//# End of stream or an error from the background read while the handler runs
//# MUST fire close-notify and cancel the request.
#[test]
fn close_notify_fires_on_client_close_subscribed_before() {
    close_notify_case(true, false);
}

#[test]
fn close_notify_fires_on_client_close_subscribed_after() {
    close_notify_case(false, false);
}

#[test]
fn close_notify_fires_on_client_reset() {
    close_notify_case(true, true);
}

//= SPEC.md#close-notify
//= type=test
//# A byte caught by the background read MUST NOT fire close-notify and MUST NOT cancel
//# the request.
#[test]
fn pipelined_request_fires_neither_close_notify_nor_cancellation() {
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            if req.path() == "/first" {
                started_tx.send(()).unwrap();
                recv(&go.lock().unwrap());
                result_tx
                    .send((w.close_notify().fired(), req.cancellation().fired()))
                    .unwrap();
            }
            w.write_body(req.path().as_bytes()).unwrap();
        },
    );
    client
        .write_all(b"GET /first HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    recv(&started);
    let second = b"GET /second HTTP/1.1\r\nHost: e.com\r\nConnection: close\r\n\r\n";
    client.write_all(second).unwrap();
    wait_until("the background read took a byte", || {
        client.peer_unread_len() == second.len() - 1
    });
    go_tx.send(()).unwrap();
    assert_eq!(recv(&result), (None, None), "Go #23921");
    server.join().unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"/first"
    );
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"/second"
    );
}

//= SPEC.md#hijack-handover
//= type=test
//# After a hijack, a read of the request body MUST fail and MUST NOT consume any byte.
#[test]
fn reading_the_old_body_after_hijack_steals_nothing() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |mut req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
            let mut parts = w.hijack().unwrap();
            let mut buf = [0u8; 64];
            let err = req
                .body()
                .read(&mut buf)
                .expect_err("body read after hijack");
            let hijacked = err.get_ref().is_some_and(|e| e.is::<hijack::Hijacked>());
            result_tx.send((hijacked, read_all(&mut parts))).unwrap();
        },
    );
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: e.com\r\nContent-Length: 5\r\n\r\nhelloWORLD")
        .unwrap();
    client.shutdown_write();
    assert_eq!(recv(&result), (true, b"helloWORLD".to_vec()), "Go #20933");
    server.join().unwrap();
}

//= SPEC.md#background-read
//= type=test
//# A background read MUST NOT start after the connection was hijacked.
#[test]
fn body_read_to_end_then_hijack_then_read_again_starts_no_read() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |mut req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
            let mut body = Vec::new();
            req.body().read_to_end(&mut body).unwrap();
            let mut parts = w.hijack().unwrap();
            let mut buf = [0u8; 8];
            let again = req.body().read(&mut buf).is_err();
            result_tx.send((body, again, read_all(&mut parts))).unwrap();
        },
    );
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: e.com\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    wait_until("the background read started", || {
        client.background_reads_started() == 1
    });
    client
        .write_all(b"GET /next HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    client.shutdown_write();
    let (body, again, rest) = recv(&result);
    assert_eq!(body, b"hello");
    assert!(again);
    assert_eq!(
        rest, b"GET /next HTTP/1.1\r\nHost: e.com\r\n\r\n",
        "Go #27408"
    );
    assert_eq!(client.background_reads_started(), 1);
    server.join().unwrap();
}

//= SPEC.md#background-read
//= type=test
//# A server MUST NOT have two background reads pending on one connection.
#[test]
fn a_second_background_read_never_starts() {
    let (client, server) =
        serve_pipe(|mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            let mut body = Vec::new();
            req.body().read_to_end(&mut body).unwrap();
            let mut buf = [0u8; 8];
            for _ in 0..5 {
                assert_eq!(req.body().read(&mut buf).unwrap(), 0);
            }
            w.write_body(b"ok").unwrap();
        });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"ok"
    );
    assert_eq!(client.background_reads_started(), 1, "Go #18535");
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: e.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        )
        .unwrap();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"ok"
    );
    server.join().unwrap();
    assert_eq!(client.background_reads_started(), 2, "one per request");
}

//= SPEC.md#hijack-handover
//= type=test
//# After a hijack the server MUST NOT read, write or close the stream, even if the
//# handler panics.
#[test]
fn handler_panic_after_hijack_leaves_the_stream_open() {
    let (parts_tx, parts_rx) = mpsc::channel();
    let (client, server) = serve_pipe(move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        parts_tx.send(w.hijack().unwrap()).unwrap();
        panic!("handler panics after hijack");
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    let mut parts: Parts = recv(&parts_rx);
    server.join().unwrap();
    assert!(!client.is_write_closed());
    parts.write_all(b"still mine").unwrap();
    parts.flush().unwrap();
    assert_eq!(client.read_exact_or_eof(10), b"still mine");
    client.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut parts, 4), b"ping");
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over stream MUST have no read or write deadline set.
#[test]
fn deadlines_are_cleared_on_the_handed_over_stream() {
    let config = ServerConfig {
        read_header_timeout: Some(std::time::Duration::from_secs(30)),
        idle_timeout: Some(std::time::Duration::from_secs(60)),
        ..ServerConfig::default()
    };
    let (result_tx, result) = mpsc::channel();
    let handler = move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        let parts = w.hijack().unwrap();
        result_tx.send(parts.stream.deadlines()).unwrap();
    };
    let (client, server_end) = pipe();
    // A write deadline already on the stream (as a server's write timeout would set), and the
    // head read under the idle and header deadlines: the hijack must clear them all.
    let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    hijack::Transport::set_write_deadline(&server_end, Some(later)).unwrap();
    let server =
        std::thread::spawn(move || hijack::serve_connection(server_end, &handler, &config, 1));
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    assert_eq!(recv(&result), (None, None), "Go #8296");
    server.join().unwrap();
}

//= SPEC.md#release
//= type=test
//# After a hijacking handler returned, the server's connection state MUST NOT stay
//# reachable from the handover parts.

#[test]
fn connection_state_is_unreachable_after_handler_returns_while_hijacker_holds_parts() {
    let (parts_tx, parts_rx) = mpsc::channel();
    let (client, server) = serve_pipe(move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
        let probe = w.connection_probe();
        assert!(probe.is_alive());
        parts_tx.send((probe, w.hijack().unwrap())).unwrap();
    });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\n\r\n")
        .unwrap();
    let (probe, parts): (_, Parts) = recv(&parts_rx);
    server.join().unwrap();
    assert!(
        probe.is_dead_within(hijack_testkit::GUARD),
        "the parts keep the connection alive (Go 1.24 behaviour)"
    );
    drop(parts);
}

#[test]
fn close_notify_handle_kept_after_handler_returns_reaches_handler_done() {
    let (notify_tx, notify_rx) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            notify_tx.send(w.close_notify()).unwrap();
            w.write_body(b"bye").unwrap();
        },
    );
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: e.com\r\nConnection: close\r\n\r\n")
        .unwrap();
    let notify = recv(&notify_rx);
    server.join().unwrap();
    assert_eq!(notify.wait(), Fired::HandlerDone);
    client.shutdown_write();
    assert_eq!(
        notify.fired(),
        Some(Fired::HandlerDone),
        "nothing fires after the handler"
    );
}

//= SPEC.md#background-read
//= type=test
//# A background read MUST NOT start while no handler runs.
#[test]
fn discarding_an_unread_body_after_the_handler_starts_no_background_read() {
    let (client, server) = serve_pipe(|req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        w.write_body(req.path().as_bytes()).unwrap();
    });
    client
        .write_all(b"POST /first HTTP/1.1\r\nHost: e.com\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"/first"
    );
    assert_eq!(
        client.background_reads_started(),
        0,
        "the body ended during the discard"
    );
    client
        .write_all(b"GET /second HTTP/1.1\r\nHost: e.com\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .body,
        b"/second"
    );
    server.join().unwrap();
    assert_eq!(client.background_reads_started(), 1);
}

//= SPEC.md#hijack-handover
//= type=test
//# If the handler wrote a response head before hijacking, the server MUST read
//# and discard the rest of the request body before the handover.
/// Found by the lifecycle property (tests/prop_lifecycle.rs): request `/a` has no body;
/// request `/b`'s head arrives with it, so it is buffered when `/a`'s background read catches
/// the first byte of `/b`'s body. `/b` writes a 101 head and hijacks: the body is discarded
/// first, so the held byte must count as the body's first byte, and the hijacker reads exactly
/// what follows the body (mutant `take_byte_before_discard` takes the byte out first).
#[test]
fn hijack_discard_keeps_a_held_background_byte() {
    let (client, server_end) = pipe();
    let (started_tx, started) = mpsc::channel::<()>();
    let (go_tx, go) = mpsc::channel::<()>();
    let (got_tx, got) = mpsc::channel();
    let go = Mutex::new(go);
    let handler = move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if req.path() == "/a" {
            started_tx.send(()).unwrap();
            go.lock().unwrap().recv().unwrap();
            return;
        }
        w.write_header(http::StatusCode::SWITCHING_PROTOCOLS);
        let mut parts = w.hijack().expect("hijack");
        let mut rest = Vec::new();
        parts.read_to_end(&mut rest).unwrap();
        got_tx.send(rest).unwrap();
    };
    let server = std::thread::spawn(move || {
        hijack::serve_connection(server_end, &handler, &ServerConfig::default(), 1)
    });
    client
        .write_all(b"GET /a HTTP/1.1\r\nHost: e\r\n\r\nPOST /b HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    started.recv().unwrap();
    client.write_all(b"helloAFTER").unwrap();
    wait_until("the background read caught a byte", || {
        client.unread_len() == 0 && client.peer_unread_len() == 9
    });
    go_tx.send(()).unwrap();
    client.shutdown_write();
    let rest = got
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    server.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&rest), "AFTER");
}
