//! Invariant: any sequence of client operations (send a request or raw bytes, half-close,
//! reset) and handler operations (read the body, set a status, write, flush, subscribe to
//! close-notify, hijack, return, panic) does on the core exactly what it does on the model
//! (harness/model.rs), step by step: the same handler calls, body bytes, write and hijack
//! results, handed-over bytes, bytes left unread, latch reasons and connection end; at the
//! end the client's wire is the model's responses byte for byte, the hijacker read exactly
//! what the client sent after the consumed bytes, and nothing of the connection is alive.
//!
//! Input: decoded with `arbitrary` into at most 48 operations. See `harness/lifecycle.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hijack_fuzz::lifecycle::run(data));
