//! Serving one connection for a property or a fuzz input: the server's limits there, the
//! deadline preset on the server's end, deliberate handler panics, seeded printable bytes,
//! and the checks every hijack's parts must pass.

use std::time::Duration;

use hijack::pipe::PipeEnd;
use hijack::{Handover, ServerConfig};

/// How long a bounded wait inside one run may take before it counts as a hang. Generous: it
/// runs out only when the invariant is already broken (or the machine is starved).
pub const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// The payload of a panic a handler raises on purpose.
pub const DELIBERATE_PANIC: &str = "hijack-testkit: the handler panics on purpose";

/// `len` bytes from a seeded generator (splitmix64), printable so that failures read well.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            b'a' + ((z ^ (z >> 31)) % 26) as u8
        })
        .collect()
}

/// The server's limits in these runs: the defaults, with idle and header timeouts long
/// enough never to fire, so that the server sets and clears deadlines as in production.
pub fn config() -> ServerConfig {
    ServerConfig {
        read_header_timeout: Some(Duration::from_secs(120)),
        idle_timeout: Some(Duration::from_secs(120)),
        ..ServerConfig::default()
    }
}

/// Gives the server's end a write deadline far in the future, as a listener might (the pipe
/// never blocks a write, so it never fires): the server never sets or clears a write
/// deadline itself, so only the hijack's clearing removes it.
pub fn preset_deadlines(server: &PipeEnd) {
    let far = std::time::Instant::now() + Duration::from_secs(3600);
    let _ = hijack::Transport::set_write_deadline(server, Some(far));
}

/// The checks of a successful hijack's parts: no deadline on the stream, the connection's
/// own (emptied) write buffer. `allocated`: the addresses the hijack call allocated;
/// `committed`: the hijack wrote a head (and may have allocated to do it).
///
/// # Panics
/// When a check fails.
pub fn check_parts(parts: &Handover<PipeEnd>, allocated: &[usize], committed: bool) {
    check_handover(parts, parts.stream.deadlines(), allocated, committed);
}

/// [`check_parts`] for parts over any stream on the pipe: `deadlines` are the stream's
/// `(read, write)` deadlines ([`PipeEnd::deadlines`]).
///
/// # Panics
/// When a check fails.
pub fn check_handover<S>(
    parts: &Handover<S>,
    deadlines: (Option<std::time::Instant>, Option<std::time::Instant>),
    allocated: &[usize],
    committed: bool,
) {
    //= SPEC.md#hijack-handover
    //= type=test
    //# The handed-over stream MUST have no read or write deadline set.
    assert_eq!(
        deadlines,
        (None, None),
        "deadlines on the handed-over stream"
    );
    //= SPEC.md#hijack-handover
    //= type=test
    //# The handed-over write buffer MUST be the connection's own write buffer, emptied, not a new allocation.
    if !committed && parts.write_buf.capacity() > 0 {
        assert!(
            !allocated.contains(&(parts.write_buf.as_ptr() as usize)),
            "the hijack allocated the handed-over write buffer"
        );
    }
    assert!(
        parts.write_buf.is_empty(),
        "the handed-over write buffer is not empty"
    );
}
