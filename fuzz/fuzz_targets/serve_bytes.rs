//! Invariant: whatever bytes a client sends, in whatever pieces, the server neither panics
//! nor hangs; every response on the wire is well framed and answers the request it belongs
//! to, in order; a rejected head gets exactly its rejection; a hijacker reads exactly the
//! bytes the client sent after what was consumed, and the client gets exactly what the
//! hijacker wrote; and once the handler returned and the hijacker dropped its parts, nothing
//! of the connection is alive (`ConnProbe`) and the live heap bytes are back where they were.
//!
//! Input: one byte choosing the split points, then the client's bytes; the request path
//! chooses the handler (`/e`: echo-hijack, `/r`: body reader, else: writer). See
//! `harness/serve.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hijack_fuzz::serve::run(data));
