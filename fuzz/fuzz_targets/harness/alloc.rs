//! A counting global allocator: the heap bytes allocated and not yet freed, by every thread.
//!
//! The no-leak invariant of `serve_bytes` and `lifecycle` compares this count before an input
//! and after everything the input created was dropped. Background reads on the pipe run on
//! threads of their own that may still be exiting when the serving code returned, so the
//! check waits (bounded) for the count to come back. libFuzzer's own allocations are C++
//! `malloc`s and are not counted.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Forwards to [`System`] and keeps [`LIVE`] up to date.
pub struct Counting;

/// Heap bytes allocated and not yet freed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialized, without destructors: safe to touch from the allocator.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static RECORDED: Cell<[usize; 64]> = const { Cell::new([0; 64]) };
    static RECORDED_LEN: Cell<usize> = const { Cell::new(0) };
}

fn note(ptr: *mut u8, size: usize) {
    LIVE.fetch_add(size as isize, Ordering::SeqCst);
    if RECORDING.try_with(Cell::get).unwrap_or(false) {
        let n = RECORDED_LEN.with(Cell::get);
        let mut all = RECORDED.with(Cell::get);
        all[n % 64] = ptr as usize;
        RECORDED.with(|r| r.set(all));
        RECORDED_LEN.with(|c| c.set(n + 1));
    }
}

/// Runs `f` and returns what it returned with the start addresses of the allocations it made
/// on this thread (the last 64).
pub fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, Vec<usize>) {
    RECORDED_LEN.with(|c| c.set(0));
    RECORDING.with(|c| c.set(true));
    let result = f();
    RECORDING.with(|c| c.set(false));
    let n = RECORDED_LEN.with(Cell::get).min(64);
    (result, RECORDED.with(Cell::get)[..n].to_vec())
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping (an atomic add, const thread-locals without
// destructors) allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
            note(p, new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap bytes live now, less the server's idle pooled read buffers (they belong to the
/// pool, which an input may fill or drain, not to any connection).
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst) - hijack::idle_read_buffer_bytes() as isize
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
