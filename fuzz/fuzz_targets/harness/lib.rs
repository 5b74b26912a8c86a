//! The shared harness of the fuzz targets in `fuzz_targets/` (see `fuzz/README.md`).
//!
//! Each target is a few lines over this crate: it builds its input, calls one entry point
//! here, and states its invariant at the top. This crate owns the checks; it never touches
//! the core's internals, only its public API (`hijack::parse`, `hijack::pipe`,
//! `hijack::serve_connection`), so that every target runs the served code unchanged.
//!
//! - [`alloc`]: a counting global allocator (live heap bytes) for the no-leak checks;
//! - [`guard`]: the watchdog, bounded waits, deliberate handler panics, seeded patterns;
//! - [`head`]: request head and body framing, whole versus one byte at a time;
//! - [`wire`]: reading responses off the client's end of the wire, strictly framed (the test
//!   kit's);
//! - [`serve`]: arbitrary client bytes served by path-chosen handlers (`serve_bytes`);
//! - [`lifecycle`]: operation sequences run on the core and on [`model`], step by step (the
//!   driver is the test kit's, `hijack_testkit::lifecycle`, shared with the lifecycle property);
//! - [`model`]: the executable model of one served connection (the test kit's).

pub mod alloc;
pub mod guard;
pub mod head;
pub mod lifecycle;
pub mod serve;
pub use hijack_testkit::{model, wire};
