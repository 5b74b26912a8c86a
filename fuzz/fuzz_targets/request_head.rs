//! Invariant: the request head parser and the body decoder reach the same verdict on any
//! bytes whether they get them whole or one byte at a time (as a client that sends one byte
//! per write makes the server parse every prefix), never panic, and accept no head the rules
//! of SPEC.md#bad-input reject.
//!
//! Input: raw client bytes (a head, then whatever follows it as the body).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hijack_fuzz::head::check(data));
