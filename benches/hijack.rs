//! Go's `BenchmarkServerHijack` (`src/net/http/serve_test.go`), on our in-memory transport:
//! serve one connection that sends `GET / HTTP/1.1\r\nHost: golang.org\r\n\r\n`, the handler
//! hijacks and closes the stream. Time, allocations and bytes per operation (divan's
//! `AllocProfiler` counts every allocation of the process during the measured call, the
//! background read's included).
//!
//! Go's fake connection (`rwTestConn`) is made once, outside the loop; each iteration points
//! its reader at the request (a `bytes.Reader`), writes go to `io.Discard` and deadlines are
//! no-ops. Likewise each of our iterations gets a pipe whose client sent the request, made
//! outside the measured call; the measured call serves it. Go serves on a new goroutine and
//! waits for `Close`; we serve on the bench thread (`serve_connection` returns once the
//! hijacking handler returned), which is how the in-memory transport is driven.
//!
//! One difference: Go's reader hits end of stream right after the request, so Go's background
//! read ends with EOF (and fires close-notify) before or while the handler hijacks; our
//! client stays open, as a client waiting for its upgrade does, so our background read is
//! pending and the hijack aborts it. Both start and end one background read per operation.
//! (A pipe whose client half-closed first completes that read on a thread, as a socket's
//! would race with the handler.) Run: `cargo bench --bench hijack`.

use hijack::pipe::{PipeEnd, pipe};
use hijack::{Request, ResponseWriter, ServerConfig, serve_connection};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

/// The request of Go's benchmark, byte for byte.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: golang.org\r\n\r\n";

fn main() {
    divan::main();
}

/// Go's handler: hijack, then close the connection (dropping the handover closes it).
fn hijack_and_close(_req: Request<'_>, w: ResponseWriter<'_, PipeEnd>) {
    match w.hijack() {
        Ok(parts) => drop(parts),
        Err(e) => panic!("hijack failed: {e}"),
    }
}

/// A connection whose client sent the request and waits.
fn connection() -> (PipeEnd, PipeEnd) {
    let (client, server) = pipe();
    client.write_all(REQUEST).unwrap();
    (client, server)
}

#[divan::bench(sample_count = 200, sample_size = 50)]
fn server_hijack(bencher: divan::Bencher) {
    let config = ServerConfig::default();
    bencher
        .with_inputs(connection)
        .bench_local_values(|(client, server)| {
            serve_connection(server, &hijack_and_close, &config, 1);
            // Returned, so the client end is dropped outside the measured call.
            client
        });
}

/// The same, counting the in-memory transport too (a new pipe per connection).
#[divan::bench(sample_count = 200, sample_size = 50)]
fn server_hijack_with_transport(bencher: divan::Bencher) {
    let config = ServerConfig::default();
    bencher.bench_local(|| {
        let (client, server) = connection();
        serve_connection(server, &hijack_and_close, &config, 1);
        client
    });
}
