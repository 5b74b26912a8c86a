//! The hijack hands over the connection's own write buffer (SPEC.md#hijack-handover, Go PR
//! #70756): measured with a counting global allocator whose counters are per thread, so only
//! the handler thread's allocations during `hijack` are counted.

use std::io::Write;
use std::sync::mpsc;

use hijack::pipe::PipeEnd;
use hijack::{Request, ResponseWriter};
use hijack_testkit::alloc::allocated_by;
use hijack_testkit::{recv, serve_pipe};
use http::{HeaderValue, StatusCode, header};

#[global_allocator]
static ALLOCATOR: hijack_testkit::alloc::Counting = hijack_testkit::alloc::Counting;

/// Less than a fresh write buffer (4096 bytes), more than the bookkeeping a hijack may need.
const HIJACK_BUDGET: usize = 1024;

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over write buffer MUST be the connection's own write buffer, emptied, not a
//# new allocation.
#[test]
fn hijack_after_a_flushed_101_head_reuses_the_write_buffer_instead_of_allocating() {
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_header(StatusCode::SWITCHING_PROTOCOLS);
            w.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("test"));
            w.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            // The head goes through the write buffer to the stream: the buffer has grown.
            w.flush().unwrap();
            let (parts, bytes) = allocated_by(|| w.hijack());
            let mut parts = parts.unwrap();
            let (empty, capacity) = (parts.write_buf.is_empty(), parts.write_buf.capacity());
            parts.write_all(b"new protocol").unwrap();
            parts.flush().unwrap();
            result_tx.send((bytes, empty, capacity)).unwrap();
        },
    );
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (bytes, empty, capacity) = recv(&result);
    server.join().unwrap();
    let wire = client.read_to_end();
    let head_len = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(wire.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert_eq!(&wire[head_len..], b"new protocol");
    assert!(empty, "the handed-over write buffer is emptied");
    assert!(
        capacity >= head_len,
        "the handed-over buffer ({capacity} bytes) is not the one that held the {head_len}-byte head"
    );
    assert!(
        bytes < HIJACK_BUDGET,
        "hijack allocated {bytes} bytes on the handler thread: a new write buffer?"
    );
}

#[test]
fn hijack_that_writes_the_head_itself_allocates_no_new_write_buffer() {
    // The hijack commits and flushes the 101 head: the buffer grows for the head (part of
    // writing the response, not of the handover), and the handover hands that same buffer on.
    let (result_tx, result) = mpsc::channel();
    let (client, server) = serve_pipe(
        move |_req: Request<'_>, mut w: ResponseWriter<'_, PipeEnd>| {
            w.write_header(StatusCode::SWITCHING_PROTOCOLS);
            let (parts, bytes) = allocated_by(|| w.hijack());
            let parts = parts.unwrap();
            result_tx
                .send((
                    bytes,
                    parts.write_buf.is_empty(),
                    parts.write_buf.capacity(),
                ))
                .unwrap();
        },
    );
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (bytes, empty, capacity) = recv(&result);
    server.join().unwrap();
    let wire = client.read_to_end();
    let head_len = wire.len();
    assert!(wire.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(empty);
    assert!(capacity >= head_len, "{capacity} < {head_len}");
    // Committing the head (its fields, its date, the buffer's amortized growth to at most
    // twice its length) plus the handover's bookkeeping, and not a fresh buffer on top.
    assert!(
        bytes < 2 * head_len + 2 * HIJACK_BUDGET,
        "hijack allocated {bytes} bytes for a {head_len}-byte head: a new write buffer?"
    );
}
