//! Loom models of the server (`src/server.rs`): its accept loop, registry, `max_connections`
//! and shutdown, on its own threads, taking connections from a modelled listener
//! (`model/net.rs`) whose connections are in-memory pipes served by the real serving loop.
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_server`.
//!
//! The requests carry a body their handler does not read: such a request starts no
//! background read, and the pipe spends a thread on each (loom allows five in all).
#![cfg(loom)]

#[path = "net.rs"]
mod net;

use std::time::Duration;

use hijack::pipe::PipeEnd;
use hijack::{Handover, Request, ResponseWriter, Server, ServerConfig};
use net::{Backlog, Latch};

/// A request whose handler leaves its body unread, and which asks for the close.
const POST_CLOSE: &[u8] =
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
/// A request whose handler hijacks.
const POST_HIJACK: &[u8] = b"POST /hijack HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
/// A keep-alive request whose handler leaves its body unread.
const POST_KEEP: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
/// The preemption bound of these models, at most: see model/README.md#bound.
const BOUND: usize = 3;

/// `loom::model` with the preemption bound of `LOOM_MAX_PREEMPTIONS` capped at [`BOUND`].
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(BOUND, |b| b.min(BOUND)));
    builder.check(f);
}

/// Long enough that no model ever reaches it (loom has no clock: the waits are plain waits).
const GRACE: Duration = Duration::from_secs(3600);

fn one_connection() -> ServerConfig {
    ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    }
}

/// Answers `ok`, or for `/hijack` hijacks and puts the parts in `hijacked`.
fn handler(
    hijacked: Latch<Handover<PipeEnd>>,
) -> impl Fn(Request<'_>, ResponseWriter<'_, PipeEnd>) + Send + Sync + 'static {
    move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
        if req.path() == "/hijack" {
            hijacked.put(w.hijack().unwrap());
        } else {
            w.write_body(b"ok").unwrap();
        }
    }
}

fn answered(wire: &[u8]) -> bool {
    wire.starts_with(b"HTTP/1.1 200 OK\r\n") && wire.ends_with(b"\r\n\r\nok")
}

/// Two clients connect to a server that serves one connection at a time; the first sends
/// `first`. The second is answered (else the model deadlocks), then the server shuts down.
fn second_is_served_after_the_first(first: &'static [u8]) {
    model(move || {
        let backlog = Backlog::new();
        let hijacked = Latch::new();
        let server =
            Server::serve(backlog.clone(), one_connection(), handler(hijacked.clone())).unwrap();
        let one = backlog.connect();
        one.write_all(first).unwrap();
        let two = backlog.connect();
        two.write_all(POST_CLOSE).unwrap();
        drop(backlog);
        assert!(answered(&two.read_to_end()));
        if first == POST_HIJACK {
            // The hijacker still has the stream: shutdown leaves it alone.
            let parts = hijacked.wait();
            server.shutdown(GRACE).unwrap();
            parts.stream.write_all(b"bye").unwrap();
            assert_eq!(one.read_exact_or_eof(3), b"bye");
        } else {
            assert!(answered(&one.read_to_end()));
            server.shutdown(GRACE).unwrap();
        }
        assert_eq!(server.connections(), 0);
    });
}

//= SPEC.md#server
//= type=test
//# A connection that leaves the server, closed or hijacked, MUST wake the accept loop waiting for room.
/// Server model 1: at `max_connections`, the accept loop waits for room; the first
/// connection's close makes it, and the second connection is served.
#[test]
fn accept_loop_at_the_limit_is_woken_by_a_close() {
    second_is_served_after_the_first(POST_CLOSE);
}

//= SPEC.md#server
//= type=test
//# A connection that leaves the server, closed or hijacked, MUST wake the accept loop waiting for room.
//
//= SPEC.md#server
//= type=test
//# A hijacked connection MUST leave the server at the hijack: it MUST NOT count toward max_connections, and shutdown MUST NOT wait for it or close it.
/// Server model 2: as model 1, but the first connection is hijacked (and its hijacker keeps
/// the stream past the server's shutdown).
#[test]
fn accept_loop_at_the_limit_is_woken_by_a_hijack() {
    second_is_served_after_the_first(POST_HIJACK);
}

//= SPEC.md#server
//= type=test
//# Shutdown MUST stop accepting, close idle connections, and wait up to its grace period for active connections to finish, and MUST fail with the number still active if the grace period ends first.
/// Server model 3: shutdown races the accept loop (a second client connecting while the one
/// connection allowed is busy) and a hijack (the busy handler hijacks once shutdown cancels
/// its request). Shutdown returns, the server owns no connection, the hijacked stream still
/// works, and the second client is never answered: its connection is closed unserved.
#[test]
fn shutdown_races_accept_and_a_hijack() {
    model(|| {
        let backlog = Backlog::new();
        let started = Latch::new();
        let hijacked = Latch::new();
        let (s, h) = (started.clone(), hijacked.clone());
        let server = Server::serve(
            backlog.clone(),
            one_connection(),
            move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let cancel = req.cancellation();
                s.put(());
                cancel.wait();
                h.put(w.hijack().unwrap());
            },
        )
        .unwrap();
        let one = backlog.connect();
        one.write_all(POST_KEEP).unwrap();
        let two = backlog.connect();
        two.write_all(POST_KEEP).unwrap();
        drop(backlog);
        started.wait();
        server.shutdown(GRACE).unwrap();
        assert_eq!(server.connections(), 0);
        let parts = hijacked.wait();
        parts.stream.write_all(b"bye").unwrap();
        assert_eq!(one.read_exact_or_eof(3), b"bye");
        drop(server);
        assert_eq!(
            two.read_to_end(),
            b"",
            "a connection accepted at shutdown was served"
        );
    });
}
