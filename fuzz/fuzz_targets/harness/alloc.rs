//! The counting global allocator of the test kit (`hijack_testkit::alloc`), installed here:
//! the heap bytes allocated and not yet freed, by every thread.
//!
//! The no-leak invariant of `serve_bytes` and `lifecycle` compares this count before an input
//! and after everything the input created was dropped. Background reads on the pipe run on
//! threads of their own that may still be exiting when the serving code returned, so the
//! check waits (bounded) for the count to come back. libFuzzer's own allocations are C++
//! `malloc`s and are not counted.

use std::time::{Duration, Instant};

/// Runs `f` and returns what it returned with the start addresses of the allocations it made
/// on this thread (the last 64).
pub fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, Vec<usize>) {
    let (result, recorded, _) = hijack_testkit::alloc::allocations_of(f);
    (result, recorded)
}

#[global_allocator]
static ALLOCATOR: hijack_testkit::alloc::Counting = hijack_testkit::alloc::Counting;

/// The heap bytes live now, less the server's idle pooled read buffers (they belong to the
/// pool, which an input may fill or drain, not to any connection).
pub fn live() -> isize {
    hijack_testkit::alloc::live_bytes() - hijack::idle_read_buffer_bytes() as isize
}

/// Waits (at most `limit`) until the live bytes are back at `before`. `Err(live - before)`
/// if they are not: something the input created is still reachable.
pub fn settle_to(before: isize, limit: Duration) -> Result<(), isize> {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = live();
        if now == before {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(now - before);
        }
        spins += 1;
        if spins < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
