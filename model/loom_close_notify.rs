//! Loom models of close-notify and cancellation racing the background read and handler exit.
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_close_notify`.
#![cfg(loom)]

#[path = "common.rs"]
mod common;

use common::{put, serve, slot, take};
use hijack::pipe::PipeEnd;
use hijack::{Fired, Request, ResponseWriter};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Close-notify fires for a client that half-closes while the handler waits.
#[test]
fn smoke() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            GET,
            move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                put(&r, w.close_notify().wait())
            },
            |client| client.shutdown_write(),
        );
        assert_eq!(take(&result), Fired::ClientGone);
    });
}

//= SPEC.md#close-notify
//= type=test
//# End of stream or an error from the background read while the handler runs
//# MUST fire close-notify and cancel the request.
/// Model 2: end of stream races the handler subscribing: the notification is never lost
/// (a lost one deadlocks the waiting handler) and fires once, with the client's reason.
#[test]
fn end_of_stream_racing_subscription_is_never_lost() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            GET,
            move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                let notify = w.close_notify();
                let cancel = req.cancellation();
                put(&r, (notify.wait(), cancel.wait(), notify.fired()));
            },
            |client| client.shutdown_write(),
        );
        let (notified, cancelled, again) = take(&result);
        assert_eq!(notified, Fired::ClientGone);
        assert_eq!(cancelled, Fired::ClientGone);
        assert_eq!(again, Some(Fired::ClientGone), "fired once, reason kept");
    });
}

//= SPEC.md#release
//= type=test
//# When the handler returns, the connection reader MUST drop every reference to the
//# request's and response's state, and the close-notify handle MUST reach its terminal
//# state.
/// Model 3: the client closes around handler exit. A handle kept past the handler reaches a
/// terminal state, nothing deadlocks, and the connection state is gone once served.
#[test]
fn close_after_handler_exit_fires_nothing_and_terminates() {
    loom::model(|| {
        let result = slot();
        let r = result.clone();
        serve(
            GET,
            move |_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| {
                put(&r, (w.close_notify(), w.connection_probe()));
            },
            |client| client.shutdown_write(),
        );
        let (notify, probe) = take(&result);
        let fired = notify.wait();
        assert!(matches!(fired, Fired::ClientGone | Fired::HandlerDone));
        assert!(!probe.is_alive());
    });
}

//= SPEC.md#close-notify
//= type=test
//# A byte caught by the background read MUST NOT fire close-notify and MUST NOT cancel
//# the request.
//= SPEC.md#abort
//= type=test
//# After the handler returned, the server MUST abort a pending background read before it
//# discards the unread request body, reads the next request head or closes the connection.
/// Model 5: a pipelined request arrives while the first handler runs. Finishing the first
/// response aborts the background read; its byte is the second request's first byte, and it
/// fired neither close-notify nor cancellation.
#[test]
fn pipelined_byte_becomes_the_next_requests_first_byte() {
    loom::model(|| {
        let seen = slot::<Vec<(String, Option<Fired>)>>();
        put(&seen, Vec::new());
        let s = seen.clone();
        serve(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            move |req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
                let fired = w.close_notify().fired().or(req.cancellation().fired());
                s.lock()
                    .unwrap()
                    .as_mut()
                    .unwrap()
                    .push((req.path().to_string(), fired));
                w.write_body(b"ok").unwrap();
            },
            |client| {
                client
                    .write_all(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
            },
        );
        let seen = take(&seen);
        assert_eq!(
            seen,
            vec![("/a".to_string(), None), ("/b".to_string(), None)]
        );
    });
}
