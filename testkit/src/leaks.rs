//! What a process holds, for leak checks: open descriptors (`/proc/self/fd`), threads
//! (`/proc/self/task`) and live heap bytes (from the `stats_alloc` global allocator the test
//! binary installs), and a bounded wait for them to come back to a baseline.

use std::alloc::System;
use std::fmt;
use std::time::{Duration, Instant};

use stats_alloc::StatsAlloc;

/// Descriptors, threads and live heap bytes at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Open descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// Live heap bytes.
    pub heap: isize,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fds, {} threads, {} B live heap",
            self.fds, self.threads, self.heap
        )
    }
}

fn entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Live heap bytes: allocated minus freed (reallocations are counted in both).
pub fn live_heap(alloc: &StatsAlloc<System>) -> isize {
    let stats = alloc.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// Threads of this process now.
pub fn threads() -> usize {
    entries("/proc/self/task")
}

/// What the process holds now. Reading `/proc/self/fd` opens one descriptor, in every
/// sample alike, and the directory listings' buffers are freed before the heap is read.
pub fn usage(alloc: &StatsAlloc<System>) -> Usage {
    let fds = entries("/proc/self/fd");
    let threads = threads();
    Usage {
        fds,
        threads,
        heap: live_heap(alloc),
    }
}

/// Polls until the usage equals `baseline` or `settle` has passed; returns the last sample.
/// Threads that were told to stop and descriptors closed by them take a moment to go.
pub fn settle(alloc: &StatsAlloc<System>, baseline: Usage, settle: Duration) -> Usage {
    let deadline = Instant::now() + settle;
    loop {
        let now = usage(alloc);
        if now == baseline || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
