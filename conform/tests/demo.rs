//! The conformance endpoints as the reference server serves them, on the in-memory pipe.

use hijack_conform::demo::{CloseNotifyEvent, Demo};
use hijack_testkit::{read_response, serve_pipe, wait_until};

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /echo with Connection: Upgrade and Upgrade: echo MUST be answered with 101 Switching Protocols, Upgrade: echo and Connection: Upgrade, after which the server MUST write back every byte the client sends, starting with the bytes it had already read, in order, until the client half-closes, and then close the connection.
#[test]
fn echo_upgrades_and_echoes_handed_over_bytes_first() {
    let (client, server) = serve_pipe(Demo::default());
    client
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello",
        )
        .unwrap();
    let mut pending = Vec::new();
    let resp = read_response(&mut &client, &mut pending, false).unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("upgrade"), Some("echo"));
    assert_eq!(resp.header("connection"), Some("Upgrade"));
    client.write_all(b" world").unwrap();
    client.shutdown_write();
    pending.extend(client.read_to_end());
    assert_eq!(pending, b"hello world");
    server.join().unwrap();
}

#[test]
fn echo_without_upgrade_fields_is_not_upgraded() {
    let (client, server) = serve_pipe(Demo::default());
    client
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut &client, &mut Vec::new(), false).unwrap();
    assert_eq!(resp.status, 426);
    server.join().unwrap();
}

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /close-notify/{id} MUST get no response until the server notices that the client went away or timeout_ms milliseconds (query parameter, default 5000) have passed, and the server MUST record for {id} which happened and after how many milliseconds.
#[test]
fn close_notify_endpoint_records_the_client_leaving() {
    let demo = Demo::default();
    let (client, server) = serve_pipe(demo.clone());
    client
        .write_all(b"GET /close-notify/a1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_until("the request is pending", || {
        demo.event("a1") == Some(CloseNotifyEvent::Pending)
    });
    assert_eq!(client.unread_len(), 0, "no response while waiting");
    client.shutdown_write();
    server.join().unwrap();
    assert!(matches!(demo.event("a1"), Some(CloseNotifyEvent::Fired(_))));
}

#[test]
fn close_notify_endpoint_times_out_and_answers() {
    let demo = Demo::default();
    let (client, server) = serve_pipe(demo.clone());
    client
        .write_all(
            b"GET /close-notify/t1?timeout_ms=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let resp = read_response(&mut &client, &mut Vec::new(), false).unwrap();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"still here\n"[..]));
    server.join().unwrap();
    match demo.event("t1") {
        Some(CloseNotifyEvent::Timeout(ms)) => assert!(ms >= 20, "timed out after {ms} ms"),
        other => panic!("recorded {other:?}"),
    }
}

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for /events/{id} MUST be answered with 200 and a JSON object recording the /close-notify/{id} request, or with 404 if there is none.
#[test]
fn events_endpoint_reports_what_close_notify_recorded() {
    let demo = Demo::default();
    let (client, server) = serve_pipe(demo.clone());
    client
        .write_all(b"GET /close-notify/e1?timeout_ms=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /events/e1 HTTP/1.1\r\nHost: x\r\n\r\nGET /events/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .status,
        200
    );
    let event = read_response(&mut &client, &mut pending, false).unwrap();
    assert_eq!(event.status, 200);
    assert_eq!(event.header("content-type"), Some("application/json"));
    let json = String::from_utf8(event.body).unwrap();
    let Some(CloseNotifyEvent::Timeout(ms)) = demo.event("e1") else {
        panic!("{json}")
    };
    assert_eq!(
        json,
        format!("{{\"id\": \"e1\", \"close_notify\": \"timeout\", \"after_ms\": {ms}}}\n")
    );
    assert_eq!(
        read_response(&mut &client, &mut pending, false)
            .unwrap()
            .status,
        404
    );
    server.join().unwrap();
}

//= SPEC.md#conformance-endpoints
//= type=test
//# A request for any other path MUST be answered with 200 and a short text body after the server has read the whole request body.
#[test]
fn other_paths_read_the_body_and_answer_text() {
    let (client, server) = serve_pipe(Demo::default());
    client
        .write_all(b"POST /anything HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut &client, &mut Vec::new(), false).unwrap();
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!resp.body.is_empty());
    server.join().unwrap();
}
