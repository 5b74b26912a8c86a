//! Loom models of the hijack handover racing the background read, on the core's own code.
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_handover`.
#![cfg(loom)]

#[path = "common.rs"]
mod common;

use std::io::Read;

use common::{Hijacked, put, read_all, serve, slot, take};
use hijack::pipe::PipeEnd;
use hijack::{Request, ResponseWriter};
use http::StatusCode;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A plain request and response: the models' scaffolding works.
#[test]
fn smoke() {
    loom::model(|| {
        let client = serve(
            GET,
            |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                w.write_body(b"ok").unwrap();
            },
            |client| client.shutdown_write(),
        );
        let wire = client.read_to_end();
        assert!(wire.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(wire.ends_with(b"\r\n\r\nok"));
    });
}

//= SPEC.md#abort
//= type=test
//# Abort MUST interrupt a pending background read and MUST NOT return before that read
//# has completed.
//= SPEC.md#background-read
//= type=test
//# A byte caught by the background read MUST be kept and MUST be the first byte
//# of whatever reads the connection next.
//
//= SPEC.md#hijack-handover
//= type=test
//# The handed-over stream MUST have no read or write deadline set.
//
//= SPEC.md#hijack-handover
//= type=test
//# The handed-over write buffer MUST be the connection's own write buffer, emptied,
//# not a new allocation.
/// Model 1: a background read that catches a byte races the hijack's abort. The byte

/// reaches the hijacker exactly once, in order; if it was caught, it is in `buffered`.
#[test]
fn background_byte_reaches_the_hijacker_exactly_once() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            GET,
            move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let probe = w.connection_probe();
                put(
                    &r,
                    Hijacked {
                        probe,
                        parts: w.hijack().unwrap(),
                    },
                );
            },
            |client| {
                client.write_all(b"x").unwrap();
                client.shutdown_write();
            },
        );
        let Hijacked { probe, mut parts } = take(&result);
        let buffered = parts.buffered.clone();
        assert!(!probe.is_alive(), "the parts keep connection state alive");
        assert_eq!(
            parts.stream.deadlines(),
            (None, None),
            "deadlines left on the stream"
        );
        // Nothing was written, so the connection's own write buffer was never allocated.
        assert_eq!(
            parts.write_buf.capacity(),
            0,
            "the hijack allocated a new write buffer"
        );

        assert!(buffered.is_empty() || &buffered[..] == b"x");
        assert_eq!(read_all(&mut parts), b"x");
    });
}

//= SPEC.md#release
//= type=test
//# After a hijacking handler returned, the server's connection state MUST NOT stay
//# reachable from the handover parts.
/// Models 4 and 8: the hijacker reads on its own thread while the server releases the
/// connection; every byte arrives once and no connection state outlives the handler.
#[test]
fn hijacker_thread_reads_while_the_server_releases() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            GET,
            move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let probe = w.connection_probe();
                let mut parts = w.hijack().unwrap();
                let reader = loom::thread::spawn(move || read_all(&mut parts));
                put(&r, (probe, reader));
            },
            |client| {
                client.write_all(b"yz").unwrap();
                client.shutdown_write();
            },
        );
        let (probe, reader) = take(&result);
        assert!(!probe.is_alive());
        assert_eq!(reader.join().unwrap(), b"yz");
    });
}

//= SPEC.md#background-read
//= type=test
//# A background read MUST NOT start after the connection was hijacked.
/// Model 6 (Go #20933, #27408): the hijack discards the rest of the body, whose end would
/// start a background read; no read of the stream by the server follows the hijack.
#[test]
fn body_end_during_hijack_starts_no_background_read() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
            move |mut req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                let mut parts = w.hijack().unwrap();
                let mut scratch = [0u8; 4];
                assert!(
                    req.body().read(&mut scratch).is_err(),
                    "the old body reads nothing"
                );
                put(&r, read_all(&mut parts));
            },
            |client| {
                client.write_all(b"Z").unwrap();
                client.shutdown_write();
            },
        );
        assert_eq!(take(&result), b"Z");
    });
}

//= SPEC.md#background-read
//= type=test
//# A server MUST NOT have two background reads pending on one connection.
/// Model 7 (Go #18535): the request without a body starts the background read, and the
/// handler's body read reaches the end again; only one read is ever pending.
#[test]
fn two_paths_never_start_two_background_reads() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        let client = serve(
            GET,
            move |mut req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let mut scratch = [0u8; 4];
                assert_eq!(req.body().read(&mut scratch).unwrap(), 0);
                assert_eq!(req.body().read(&mut scratch).unwrap(), 0);
                let mut parts = w.hijack().unwrap();
                put(&r, read_all(&mut parts));
            },
            |client| {
                client.write_all(b"ab").unwrap();
                client.shutdown_write();
            },
        );
        assert_eq!(take(&result), b"ab");
        assert_eq!(client.background_reads_started(), 1);
    });
}
