//! Loom models of the TCP transport's readiness watcher (`src/watcher.rs`): its own code, its
//! own thread, over a modelled readiness source (`model/net.rs`) in place of epoll.
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_watcher`.
#![cfg(loom)]

#[path = "net.rs"]
mod net;

use hijack::watcher::Watcher;
use net::{Got, Latch, Net};

//= SPEC.md#transport-contract
//= type=test
//# A transport's background read MUST take at most one byte from the stream and MUST report exactly one outcome: the byte, end of stream, an error, or aborted.
//
//= SPEC.md#transport-contract
//= type=test
//# Interrupting a background read MUST make it complete promptly whether or not any byte arrives, and MUST NOT close the stream or take a byte that it does not report.
/// Watcher model 1: a byte arrives while the server interrupts the pending read. Exactly one
/// outcome is reported (a second `put` panics, none deadlocks the wait), and it is either the
/// byte, taken from the socket, or Aborted with the byte still in the socket.
#[test]
fn completion_racing_interrupt_reports_one_outcome_and_never_loses_the_byte() {
    loom::model(|| {
        let net = Net::new();
        let sock = net.socket();
        let watcher = Watcher::start_with(net.clone()).unwrap();
        let key = watcher.new_key();
        let got = Latch::new();
        watcher.start_read(key, sock.clone(), got.completion());
        let client = {
            let (net, sock) = (net.clone(), sock.clone());
            loom::thread::spawn(move || net.send(&sock, b"x"))
        };
        watcher.interrupt(key);
        let outcome = got.wait();
        client.join().unwrap();
        // Whatever the watcher still does for this read is done once it stopped.
        watcher.stop();
        watcher.join();
        match outcome {
            Got::Byte(b'x') => assert_eq!(net.unread(&sock), b""),
            Got::Aborted => assert_eq!(net.unread(&sock), b"x", "the interrupt lost the byte"),
            other => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(watcher.pending_reads(), 0);
    });
}

//= SPEC.md#transport-contract
//= type=test
//# A background read started on a socket whose earlier background read completed MUST re-arm the socket's readiness registration.
/// Watcher model 2: on a keep-alive connection, the first request's background read catches
/// the next request's first byte; the next request's background read must still see the
/// client's close (its close-notify fires). A read that is never re-armed never completes:
/// the wait for it deadlocks.
#[test]
fn read_after_a_caught_byte_is_re_armed_and_sees_the_close() {
    loom::model(|| {
        let net = Net::new();
        let sock = net.socket();
        let watcher = Watcher::start_with(net.clone()).unwrap();
        let key = watcher.new_key();
        let client = {
            let (net, sock) = (net.clone(), sock.clone());
            loom::thread::spawn(move || {
                net.send(&sock, b"G");
                net.close(&sock);
            })
        };
        let first = Latch::new();
        watcher.start_read(key, sock.clone(), first.completion());
        assert_eq!(first.wait(), Got::Byte(b'G'));
        let second = Latch::new();
        watcher.start_read(key, sock.clone(), second.completion());
        assert_eq!(second.wait(), Got::Eof);
        client.join().unwrap();
        watcher.stop();
        watcher.join();
    });
}
