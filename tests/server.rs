//! `hijack::Server` on loopback TCP (SPEC.md#server): max_connections, what a hijack takes
//! out of the server, graceful shutdown, the read-header and idle timeouts, and the
//! connection count.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hijack::tcp::TcpConn;
use hijack::{
    ConnState, Fired, Handler, Handover, Request, ResponseWriter, Server, ServerConfig,
    ShutdownError,
};
use hijack_testkit::{read_response, recv, wait_until};

type Parts = Handover<TcpStream>;
type States = Arc<Mutex<Vec<(u64, ConnState)>>>;

/// A config whose state hook records `(connection id, state)`.
fn recording(config: ServerConfig) -> (ServerConfig, States) {
    let states: States = Arc::default();
    let hook_states = states.clone();
    let config = ServerConfig {
        on_state: Some(Arc::new(move |id, state| {
            hook_states.lock().unwrap().push((id, state))
        })),
        ..config
    };
    (config, states)
}

fn serve<H: Handler<TcpConn>>(config: ServerConfig, handler: H) -> Server {
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

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// Sends a GET and reads its response body.
fn round_trip(client: &mut TcpStream, path: &str) -> Vec<u8> {
    client.write_all(&get(path)).unwrap();
    let mut pending = Vec::new();
    let resp = read_response(client, &mut pending, false).expect("a response");
    assert!(pending.is_empty());
    resp.body
}

/// Reads until the end of stream; the bytes received.
fn read_to_end(client: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .read_to_end(&mut out)
        .expect("the server closes the connection");
    out
}

/// Whether the server has sent anything on `client`, without waiting.
fn has_bytes(client: &TcpStream) -> bool {
    client.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let got = matches!(client.peek(&mut byte), Ok(n) if n > 0);
    client.set_nonblocking(false).unwrap();
    got
}

/// Waits until connection `id` reported Closed (after its close, which lingers).
fn wait_closed(states: &States, id: u64) {
    wait_until("the connection reported Closed", || {
        states_of(states, id).last() == Some(&ConnState::Closed)
    });
}

fn states_of(states: &States, id: u64) -> Vec<ConnState> {
    states
        .lock()
        .unwrap()
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|&(_, s)| s)
        .collect()
}

/// Long enough for a server that wrongly served a held connection to have answered it.
const GRACE_TO_MISBEHAVE: Duration = Duration::from_millis(300);

fn echo_path(req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>) {
    w.write_body(req.path().as_bytes()).unwrap();
}

//= SPEC.md#server
//= type=test
//# When max_connections connections are served, the server MUST NOT start serving another
//# until one closes or is hijacked.
#[test]
fn max_connections_holds_the_next_connection_until_one_closes() {
    let (config, states) = recording(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    });
    let server = serve(config, echo_path);
    let mut first = connect(&server);
    assert_eq!(round_trip(&mut first, "/first"), b"/first");
    // The first connection stays open, idle: it still counts.
    let mut second = connect(&server);
    second.write_all(&get("/second")).unwrap();
    std::thread::sleep(GRACE_TO_MISBEHAVE);
    assert!(!has_bytes(&second), "the second connection was served");
    assert_eq!(
        states_of(&states, 2),
        [],
        "the second connection was started"
    );
    assert_eq!(server.connections(), 1);
    drop(first);
    let mut pending = Vec::new();
    let resp =
        read_response(&mut second, &mut pending, false).expect("served once the first closed");
    assert_eq!(resp.body, b"/second");
}

//= SPEC.md#server
//= type=test
//# Shutdown MUST stop accepting, close idle connections, and wait up to its grace period
//# for active connections to finish, and MUST fail with the number still active if the
//# grace period ends first.
#[test]
fn shutdown_returns_while_a_connection_waits_for_room_under_max_connections() {
    let server = Arc::new(serve(
        ServerConfig {
            max_connections: 1,
            ..ServerConfig::default()
        },
        echo_path,
    ));
    let mut idle = connect(&server);
    assert_eq!(round_trip(&mut idle, "/first"), b"/first");
    // Accepted, but the accept loop waits for room: the idle connection holds the one slot.
    let mut waiting = connect(&server);
    waiting.write_all(&get("/second")).unwrap();
    std::thread::sleep(GRACE_TO_MISBEHAVE);

    let (done_tx, done) = mpsc::channel();
    let shutting_down = server.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(shutting_down.shutdown(Duration::from_secs(10)));
    });
    let result = done.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        result,
        Ok(Ok(())),
        "shutdown did not return while the accept loop waited for room"
    );
    assert_eq!(
        read_to_end(&mut idle),
        b"",
        "the idle connection was closed"
    );
    // Closed with its request unread, so the close may come as a reset: no byte either way.
    let mut got = Vec::new();
    match waiting.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert_eq!(got, b"", "the waiting connection was never served");
}

//= SPEC.md#server
//= type=test
//# A hijacked connection MUST leave the server at the hijack: it MUST NOT count toward
//# max_connections, and shutdown MUST NOT wait for it or close it.
#[test]
fn hijacked_connection_leaves_the_server_frees_its_slot_and_survives_shutdown() {
    let (parts_tx, parts_rx) = mpsc::channel();
    let parts_tx = Mutex::new(parts_tx);
    let server = serve(
        ServerConfig {
            max_connections: 1,
            ..ServerConfig::default()
        },
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            if req.path() == "/hijack" {
                let parts = w.hijack().unwrap();
                parts_tx.lock().unwrap().send(parts).unwrap();
            } else {
                w.write_body(b"served").unwrap();
            }
        },
    );
    let mut hijacked = connect(&server);
    hijacked.write_all(&get("/hijack")).unwrap();
    let mut parts: Parts = recv(&parts_rx);
    // The hijacker holds the connection; the slot is free for another one.
    wait_until("the hijacked connection left the registry", || {
        server.connections() == 0
    });
    let mut other = connect(&server);
    assert_eq!(round_trip(&mut other, "/"), b"served");
    drop(other);
    // Shutdown neither waits for nor closes the hijacked connection.
    let started = Instant::now();
    assert_eq!(server.shutdown(Duration::from_secs(30)), Ok(()));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "shutdown waited out its grace"
    );
    parts.write_all(b"after shutdown").unwrap();
    parts.flush().unwrap();
    let mut got = [0u8; 14];
    hijacked.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after shutdown");
    hijacked.write_all(b"ping").unwrap();
    let mut ping = [0u8; 4];
    parts.read_exact(&mut ping).unwrap();
    assert_eq!(&ping, b"ping");
}

//= SPEC.md#server
//= type=test
//# Shutdown MUST stop accepting, close idle connections, and wait up to its grace period
//# for active connections to finish, and MUST fail with the number still active if the
//# grace period ends first.
//
//= SPEC.md#close-notify
//= type=test
//# Server shutdown MUST cancel every running request with Shutdown.
#[test]
fn shutdown_stops_accepting_closes_idle_connections_and_waits_for_active_ones() {
    let (running_tx, running) = mpsc::channel();
    let running_tx = Mutex::new(running_tx);
    let (config, states) = recording(ServerConfig::default());
    let server = Arc::new(serve(
        config,
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            if req.path() == "/slow" {
                running_tx.lock().unwrap().send(()).unwrap();
                let fired = req.cancellation().wait_timeout(Duration::from_secs(10));
                w.write_body(format!("{fired:?}").as_bytes()).unwrap();
            } else {
                w.write_body(b"quick").unwrap();
            }
        },
    ));
    let addr = server.local_addr();
    let mut idle = connect(&server);
    assert_eq!(round_trip(&mut idle, "/"), b"quick");
    let mut fresh = connect(&server);
    let mut active = connect(&server);
    active.write_all(&get("/slow")).unwrap();
    recv(&running);
    wait_until("three connections are served", || server.connections() == 3);

    let shutting_down = server.clone();
    let shutdown = std::thread::spawn(move || shutting_down.shutdown(Duration::from_secs(10)));
    // The running request is cancelled with Shutdown, answers, and its connection closes.
    let mut pending = Vec::new();
    let resp = read_response(&mut active, &mut pending, false).unwrap();
    assert_eq!(resp.body, b"Some(Shutdown)");
    assert_eq!(read_to_end(&mut active), b"");
    // Idle connections (and one that never sent a byte) are closed without a response.
    assert_eq!(read_to_end(&mut idle), b"");
    assert_eq!(read_to_end(&mut fresh), b"");
    assert_eq!(shutdown.join().unwrap(), Ok(()));
    assert_eq!(server.connections(), 0);
    // No longer accepting.
    assert!(
        TcpStream::connect(addr).is_err(),
        "a connection was accepted after shutdown"
    );
    for id in 1..=3 {
        wait_closed(&states, id);
    }
    let closed = states
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| *s == ConnState::Closed)
        .count();
    assert_eq!(closed, 3);
}

#[test]
fn shutdown_fails_with_the_number_still_active_when_the_grace_period_ends() {
    let (running_tx, running) = mpsc::channel();
    let running_tx = Mutex::new(running_tx);
    let (release_tx, release) = mpsc::channel::<()>();
    let release = Arc::new(Mutex::new(release));
    let (seen_tx, seen) = mpsc::channel();
    let seen_tx = Mutex::new(seen_tx);
    let server = serve(
        ServerConfig::default(),
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            running_tx.lock().unwrap().send(()).unwrap();
            // A handler that ignores its cancellation until the test lets it go.
            recv(&release.lock().unwrap());
            seen_tx
                .lock()
                .unwrap()
                .send(req.cancellation().fired())
                .unwrap();
            w.write_body(b"late").unwrap();
        },
    );
    let mut clients: Vec<TcpStream> = (0..2).map(|_| connect(&server)).collect();
    for client in &mut clients {
        client.write_all(&get("/")).unwrap();
        recv(&running);
    }
    let result = server.shutdown(Duration::from_millis(200));
    assert_eq!(result, Err(ShutdownError { remaining: 2 }));
    for _ in 0..2 {
        release_tx.send(()).unwrap();
        assert_eq!(recv(&seen), Some(Fired::Shutdown));
    }
    for client in &mut clients {
        let mut pending = Vec::new();
        assert_eq!(
            read_response(client, &mut pending, false).unwrap().body,
            b"late"
        );
    }
    wait_until("the late connections closed", || server.connections() == 0);
}

//= SPEC.md#server
//= type=test
//# A request head not complete within read_header_timeout of its first byte, and a
//# connection that waits idle_timeout for the first byte of a request, MUST be closed
//# without a response.
#[test]
fn read_header_timeout_closes_a_slow_head_without_a_response() {
    let (config, states) = recording(ServerConfig {
        read_header_timeout: Some(Duration::from_millis(100)),
        ..ServerConfig::default()
    });
    let server = serve(config, echo_path);
    let mut slow = connect(&server);
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_eq!(read_to_end(&mut slow), b"", "closed without a response");
    wait_closed(&states, 1);
    assert_eq!(
        states_of(&states, 1),
        [ConnState::New, ConnState::Active, ConnState::Closed]
    );
    // The timeout runs from a head's first byte, not from the accept: a client that waits
    // before it starts is served.
    let mut late = connect(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(round_trip(&mut late, "/late"), b"/late");
}

#[test]
fn idle_timeout_closes_a_connection_waiting_for_a_request_without_a_response() {
    let (config, states) = recording(ServerConfig {
        idle_timeout: Some(Duration::from_millis(100)),
        ..ServerConfig::default()
    });
    let server = serve(config, echo_path);
    // A new connection that never sends a byte.
    let mut silent = connect(&server);
    assert_eq!(read_to_end(&mut silent), b"");
    // A keep-alive connection after its first response.
    let mut kept = connect(&server);
    assert_eq!(round_trip(&mut kept, "/once"), b"/once");
    assert_eq!(
        read_to_end(&mut kept),
        b"",
        "closed without another response"
    );
    wait_closed(&states, 1);
    wait_closed(&states, 2);
    use ConnState::*;
    assert_eq!(states_of(&states, 1), [New, Closed]);
    assert_eq!(states_of(&states, 2), [New, Active, Idle, Closed]);
}

#[test]
fn connections_counts_what_the_server_owns() {
    let (parts_tx, parts_rx) = mpsc::channel();
    let parts_tx = Mutex::new(parts_tx);
    let server = serve(
        ServerConfig::default(),
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            if req.path() == "/hijack" {
                parts_tx.lock().unwrap().send(w.hijack().unwrap()).unwrap();
            } else {
                w.write_body(b"ok").unwrap();
            }
        },
    );
    assert_eq!(server.connections(), 0);
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(&server)).collect();
    for client in &mut clients {
        assert_eq!(round_trip(client, "/"), b"ok");
    }
    wait_until("three connections", || server.connections() == 3);
    clients[0].write_all(&get("/hijack")).unwrap();
    let parts: Parts = recv(&parts_rx);
    wait_until("a hijacked connection is not counted", || {
        server.connections() == 2
    });
    clients[1].shutdown(Shutdown::Write).unwrap();
    wait_until("a closed connection is not counted", || {
        server.connections() == 1
    });
    drop(clients);
    wait_until("no connections", || server.connections() == 0);
    drop(parts);
}

#[test]
fn shutdown_answers_the_running_request_and_reads_no_next_one() {
    let (running_tx, running) = mpsc::channel();
    let running_tx = Mutex::new(running_tx);
    let (release_tx, release) = mpsc::channel::<()>();
    let release = Mutex::new(release);
    let server = Arc::new(serve(
        ServerConfig::default(),
        move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            if req.path() == "/hold" {
                running_tx.lock().unwrap().send(()).unwrap();
                recv(&release.lock().unwrap());
            }
            w.write_body(req.path().as_bytes()).unwrap();
        },
    ));
    let mut client = connect(&server);
    // A keep-alive client pipelines a second request behind one that is still running.
    client
        .write_all(&[get("/hold"), get("/next")].concat())
        .unwrap();
    recv(&running);
    let shutting_down = server.clone();
    let shutdown = std::thread::spawn(move || shutting_down.shutdown(Duration::from_secs(10)));
    wait_until("no longer accepting", || {
        TcpStream::connect(server.local_addr()).is_err()
    });
    release_tx.send(()).unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut client, &mut pending, false)
            .unwrap()
            .body,
        b"/hold"
    );
    // The server shuts down: /next is not read, and the connection closes.
    pending.extend(read_to_end(&mut client));
    assert_eq!(pending, b"");
    assert_eq!(shutdown.join().unwrap(), Ok(()));
}

#[test]
fn a_request_that_starts_during_shutdown_is_answered_and_its_connection_closed() {
    let server = Arc::new(serve(ServerConfig::default(), echo_path));
    let mut client = connect(&server);
    // The head has started (the connection is active, not idle) when shutdown begins.
    client.write_all(b"GET /late HTTP/1.1\r\n").unwrap();
    wait_until("the connection is served", || server.connections() == 1);
    let shutting_down = server.clone();
    let shutdown = std::thread::spawn(move || shutting_down.shutdown(Duration::from_secs(10)));
    wait_until("no longer accepting", || {
        TcpStream::connect(server.local_addr()).is_err()
    });
    client.write_all(b"Host: x\r\n\r\n").unwrap();
    let mut pending = Vec::new();
    let resp = read_response(&mut client, &mut pending, false).unwrap();
    assert_eq!(resp.body, b"/late");
    assert_eq!(resp.header("connection"), Some("close"));
    pending.extend(read_to_end(&mut client));
    assert_eq!(pending, b"");
    assert_eq!(shutdown.join().unwrap(), Ok(()));
}
