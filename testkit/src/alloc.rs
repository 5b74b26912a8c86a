//! The one counting global allocator of the tests and the fuzz harness. It forwards every call
//! to [`System`] and keeps three counts: the heap bytes live in the whole process
//! ([`live_bytes`]), the bytes one closure allocates on its thread ([`allocated_by`]), and the
//! start addresses of the allocations one closure makes on its thread ([`allocations_of`]).
//!
//! A test binary installs it with
//! `#[global_allocator] static A: hijack_testkit::alloc::Counting = hijack_testkit::alloc::Counting;`.
//! Without that line the counts stay at zero.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Forwards to [`System`] and keeps the counts of this module.
pub struct Counting;

/// How many allocation addresses [`allocations_of`] keeps (the last ones).
pub const RECORDED_MAX: usize = 64;

/// Heap bytes allocated and not yet freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialized, without destructors: safe to touch from the allocator, which also
    // runs while thread-locals are torn down (hence `try_with`).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNTED: Cell<usize> = const { Cell::new(0) };
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static RECORDED: Cell<[usize; RECORDED_MAX]> = const { Cell::new([0; RECORDED_MAX]) };
    static RECORDED_LEN: Cell<usize> = const { Cell::new(0) };
}

/// A block of `size` bytes at `ptr` came to life; `grown` of them are new to this thread's
/// count (a reallocation counts only its growth there).
fn note(ptr: *mut u8, size: usize, grown: usize) {
    LIVE.fetch_add(size as isize, Ordering::SeqCst);
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNTED.try_with(|c| c.set(c.get() + grown));
    }
    if RECORDING.try_with(Cell::get).unwrap_or(false) {
        let n = RECORDED_LEN.with(Cell::get);
        let mut all = RECORDED.with(Cell::get);
        all[n % RECORDED_MAX] = ptr as usize;
        RECORDED.with(|r| r.set(all));
        RECORDED_LEN.with(|c| c.set(n + 1));
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping (an atomic add, const thread-locals without
// destructors) allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(p, layout.size(), layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(p, layout.size(), layout.size());
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
            note(p, new_size, new_size.saturating_sub(layout.size()));
        }
        p
    }
}

/// Heap bytes allocated and not yet freed by the whole process, now.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Runs `f` on this thread and returns what it returned and the bytes it allocated here (a
/// reallocation counts its growth).
pub fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNTED.with(|b| b.set(0));
    COUNTING.with(|e| e.set(true));
    let result = f();
    COUNTING.with(|e| e.set(false));
    (result, COUNTED.with(Cell::get))
}

/// Runs `f` and returns what it returned, the start addresses of the allocations it made on
/// this thread (the last [`RECORDED_MAX`]), and how many it made in all.
pub fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, Vec<usize>, usize) {
    RECORDED_LEN.with(|c| c.set(0));
    RECORDING.with(|c| c.set(true));
    let result = f();
    RECORDING.with(|c| c.set(false));
    let n = RECORDED_LEN.with(Cell::get);
    let kept = n.min(RECORDED_MAX);
    (result, RECORDED.with(Cell::get)[..kept].to_vec(), n)
}
