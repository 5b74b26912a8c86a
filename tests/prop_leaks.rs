//! Property: no reference leaks (issue 5, point 2).
//!
//! One connection per case on the in-memory pipe, served by `serve_connection` on the test's
//! own thread (so the handler runs, and the parts are dropped, on that thread). The handler
//! reads some of the body or none, writes or not, subscribes to close-notify or not, and then
//! returns, panics, or hijacks (and maybe panics after the hijack), giving the parts to the
//! test. Invariants:
//! - once `serve_connection` returned, the connection's `ConnProbe` (a `Weak` to the
//!   connection, and through it the request's and response's state) is dead, even while the
//!   hijacker still holds every part and close-notify and cancellation handles are kept;
//! - the handed-over write buffer is the connection's own: when the handler set no status (so
//!   the hijack commits no head), its memory was not allocated by the hijack;
//! - with a counting global allocator, once the hijacker dropped every part (and the test
//!   its handles), the live heap bytes are back where they were before the case; and after a
//!   warm-up, 1,000 cases leave the live heap bytes exactly at the baseline.
//!
//! One `#[test]` in this binary, so nothing else allocates while it measures.

use hijack_testkit::leaks;
mod prop_support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, Once};

use hijack::pipe::{PipeEnd, pipe};
use hijack::{
    Cancellation, CloseNotify, ConnProbe, Handover, Request, ResponseWriter, ServerConfig,
};
use hijack_testkit::alloc::live_bytes as live;
use hijack_testkit::wait_until;
use leaks::threads;
use prop_support::{config, pattern};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

#[global_allocator]
static ALLOCATOR: hijack_testkit::alloc::Counting = hijack_testkit::alloc::Counting;

/// Runs `f`, returning the start addresses of the allocations it made on this thread.
fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, Vec<usize>) {
    let (result, recorded, n) = hijack_testkit::alloc::allocations_of(f);
    assert!(n <= recorded.len(), "too many allocations to record");
    (result, recorded)
}

/// The threads of the test before any case ran: libtest's and this test's.
static TEST_THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Waits until every thread a case started (a pipe background read that could complete at
/// once runs on one) has exited. A thread frees its own bookkeeping (its handle, its result
/// slot, its closure) as it exits, which may be after its case returned: measured meanwhile,
/// one case's exiting thread offsets the next one's, and a case without a thread then sees
/// the live bytes drop below its start and never return.
fn wait_for_case_threads() {
    let test_threads = *TEST_THREADS.get().expect("TEST_THREADS set at the start");
    wait_until("the threads of earlier cases exited", || {
        threads() == test_threads
    });
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    Length(usize),
    Chunked(usize),
}

#[derive(Clone, Copy, Debug)]
enum End {
    Return,
    Panic,
    Hijack {
        panic_after: bool,
        hijacker_reads: bool,
    },
}

#[derive(Clone, Debug)]
struct LeakCase {
    /// Requests answered normally before the one this case is about (keep-alive).
    earlier: usize,
    body: Body,
    trailing: usize,
    seed: u64,
    /// Body bytes the handler reads (capped at the body length; `usize::MAX`: to its end).
    read: usize,
    write: Option<usize>,
    flush: bool,
    subscribe: bool,
    end: End,
}

fn case_strategy() -> impl Strategy<Value = LeakCase> {
    let body = prop_oneof![
        Just(Body::Empty),
        (1usize..3000).prop_map(Body::Length),
        (1usize..3000).prop_map(Body::Chunked),
    ];
    let end = prop_oneof![
        Just(End::Return),
        Just(End::Panic),
        (any::<bool>(), any::<bool>()).prop_map(|(panic_after, hijacker_reads)| End::Hijack {
            panic_after,
            hijacker_reads
        }),
    ];
    (
        0usize..3,
        body,
        prop_oneof![0usize..64, 0usize..10_000],
        any::<u64>(),
        prop_oneof![Just(0usize), 0usize..3000, Just(usize::MAX)],
        prop::option::of(0usize..5000),
        any::<bool>(),
        any::<bool>(),
        end,
    )
        .prop_map(
            |(earlier, body, trailing, seed, read, write, flush, subscribe, end)| LeakCase {
                earlier,
                body,
                trailing,
                seed,
                read,
                write,
                flush,
                subscribe,
                end,
            },
        )
}

/// What the handler of the case's last request leaves for the test.
#[derive(Default)]
struct Stash {
    probes: Vec<ConnProbe>,
    parts: Option<Handover<PipeEnd>>,
    handles: Vec<(Option<CloseNotify>, Cancellation)>,
    /// Whether the handed-over write buffer's memory was allocated by the hijack.
    write_buf_is_new: Option<bool>,
}

/// The panic of a case's handler (silenced in the panic hook).
const CASE_PANIC: &str = "prop_leaks: the handler panics on purpose";

fn silence_case_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&CASE_PANIC) {
                default(info);
            }
        }));
    });
}

fn client_bytes(case: &LeakCase) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..case.earlier {
        out.extend_from_slice(b"GET /earlier HTTP/1.1\r\nHost: e.com\r\n\r\n");
    }
    let data = |len| pattern(case.seed, len);
    match case.body {
        Body::Empty => out.extend_from_slice(b"POST /case HTTP/1.1\r\nHost: e.com\r\n\r\n"),
        Body::Length(len) => {
            out.extend_from_slice(
                format!("POST /case HTTP/1.1\r\nHost: e.com\r\nContent-Length: {len}\r\n\r\n")
                    .as_bytes(),
            );
            out.extend_from_slice(&data(len));
        }
        Body::Chunked(len) => {
            out.extend_from_slice(
                b"POST /case HTTP/1.1\r\nHost: e.com\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let body = data(len);
            for chunk in body.chunks(700) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    out.extend_from_slice(&pattern(!case.seed, case.trailing));
    out
}

fn handle(
    case: &LeakCase,
    stash: &Mutex<Stash>,
    mut req: Request<'_>,
    mut w: ResponseWriter<'_, PipeEnd>,
) {
    stash.lock().unwrap().probes.push(w.connection_probe());
    if req.path() == "/earlier" {
        let _ = w.write_body(b"earlier");
        return;
    }
    let notify = case.subscribe.then(|| w.close_notify());
    stash
        .lock()
        .unwrap()
        .handles
        .push((notify, req.cancellation()));
    if case.read > 0 {
        let mut buf = vec![0u8; case.read.min(1 << 16)];
        let mut left = case.read;
        while left > 0 {
            match req.body().read(&mut buf[..left.min(1 << 16)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
    if let Some(n) = case.write {
        let _ = w.write_body(&pattern(case.seed, n));
    }
    if case.flush {
        let _ = w.flush();
    }
    match case.end {
        End::Return => {}
        End::Panic => std::panic::panic_any(CASE_PANIC),
        End::Hijack { panic_after, .. } => {
            let (parts, allocated) = allocations_of(|| w.hijack());
            let mut stash = stash.lock().unwrap();
            if let Ok(parts) = &parts {
                stash.write_buf_is_new =
                    Some(allocated.contains(&(parts.write_buf.as_ptr() as usize)));
            }
            stash.parts = parts.ok();
            drop(stash);
            if panic_after {
                std::panic::panic_any(CASE_PANIC);
            }
        }
    }
}

/// Runs one case on this thread; returns with everything it created dropped.
fn run_case(case: &LeakCase) -> Result<(), TestCaseError> {
    let (client, server) = pipe();
    client.write_all(&client_bytes(case)).unwrap();
    client.shutdown_write();
    let stash = Arc::new(Mutex::new(Stash::default()));
    let handler = {
        let (case, stash) = (case.clone(), stash.clone());
        move |req: Request<'_>, w: ResponseWriter<'_, PipeEnd>| handle(&case, &stash, req, w)
    };
    hijack::serve_connection(server, &handler, &ServerConfig::default(), 1);
    drop(handler);
    let Stash {
        probes,
        parts,
        handles,
        write_buf_is_new,
    } = std::mem::take(&mut *stash.lock().unwrap());
    prop_assert_eq!(probes.len(), case.earlier + 1, "every request was served");

    //= SPEC.md#release
    //= type=test
    //# After a hijacking handler returned, the server's connection state MUST NOT stay
    //# reachable from the handover parts.
    //= SPEC.md#parts
    //= type=test
    //# A close-notify or cancellation handle MUST hold nothing but its own latch, so that a
    //# handle kept after the handler returned keeps no connection, request or response
    //# state alive.
    prop_assert!(
        probes
            .iter()
            .all(|p| p.is_dead_within(hijack_testkit::GUARD)),
        "connection state is reachable after serve_connection returned"
    );
    drop(probes);

    //= SPEC.md#hijack-handover
    //= type=test
    //# The handed-over write buffer MUST be the connection's own write buffer, emptied,
    //# not a new allocation.
    // Only when the handler set no status: otherwise the hijack commits the response head,
    // and the connection's own buffer may first grow right then.
    if let (Some(is_new), None, false) = (write_buf_is_new, case.write, case.flush) {
        prop_assert!(
            !is_new,
            "the handed-over write buffer was allocated by the hijack"
        );
    }

    //= SPEC.md#release
    //= type=test
    //# When the handler returns, the connection reader MUST drop every reference to the
    //# request's and response's state, and the close-notify handle MUST reach its terminal
    //# state.
    for (notify, cancel) in &handles {
        if let Some(notify) = notify {
            prop_assert!(notify.fired().is_some(), "close-notify not terminal");
        }
        prop_assert!(cancel.fired().is_some(), "cancellation not terminal");
    }
    drop(handles);
    if let Some(mut parts) = parts {
        if matches!(
            case.end,
            End::Hijack {
                hijacker_reads: true,
                ..
            }
        ) {
            let mut rest = Vec::new();
            let _ = parts.read_to_end(&mut rest);
            let _ = parts.write_all(b"bye");
            let _ = parts.flush();
        }
        drop(parts);
    } else {
        prop_assert!(!matches!(case.end, End::Hijack { .. }), "the hijack failed");
    }
    drop(client);
    Ok(())
}

/// Runs a case and checks the live heap bytes return to where they were before it.
fn run_case_counted(case: &LeakCase) -> Result<(), TestCaseError> {
    wait_for_case_threads();
    let before = live();
    run_case(case)?;
    wait_for_case_threads();
    wait_until(
        "the live heap bytes returned to their level before the case",
        || live() == before,
    );
    Ok(())
}

fn warm_up() {
    // Every path once, so lazily initialized statics (thread-local keys, panic machinery,
    // the first thread spawns) are in place before anything is measured.
    for earlier in 0..2 {
        for body in [Body::Empty, Body::Length(10), Body::Chunked(1500)] {
            for end in [
                End::Return,
                End::Panic,
                End::Hijack {
                    panic_after: false,
                    hijacker_reads: true,
                },
                End::Hijack {
                    panic_after: true,
                    hijacker_reads: false,
                },
            ] {
                for (read, write, flush) in [
                    (0, None, false),
                    (usize::MAX, Some(3000), true),
                    (5, Some(10), false),
                ] {
                    let case = LeakCase {
                        earlier,
                        body,
                        trailing: 100,
                        seed: 1,
                        read,
                        write,
                        flush,
                        subscribe: true,
                        end,
                    };
                    run_case(&case).unwrap();
                }
            }
        }
    }
}

//= SPEC.md#release
//= type=test
//# After a hijacking handler returned, the server's connection state MUST NOT stay
//# reachable from the handover parts.
#[test]
fn no_reference_leaks() {
    TEST_THREADS.get_or_init(threads);
    silence_case_panics();
    warm_up();
    wait_for_case_threads();

    // 1,000 cases after the warm-up leave the live heap bytes exactly at the baseline.
    let strategy = case_strategy();
    let mut runner = TestRunner::deterministic();
    let baseline = live();
    for _ in 0..1_000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        run_case(&case).unwrap_or_else(|e| panic!("{e}: {case:?}"));
    }
    wait_for_case_threads();
    wait_until(
        "the live heap bytes returned to the baseline after 1,000 cases",
        || live() == baseline,
    );
    assert_eq!(live(), baseline, "growth over 1,000 cases");
    drop(runner);

    // Then the property, case by case.
    let mut runner = TestRunner::new(config(10_000, "proptest-regressions/prop_leaks.txt"));
    let result = runner.run(&strategy, |case| run_case_counted(&case));
    if let Err(e) = result {
        panic!("{e}");
    }
}
