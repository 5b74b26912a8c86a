//! Retained bytes per hijacked connection: 2,000 loopback TCP connections, each hijacked by a
//! handler that keeps every part of the handover (stream, buffered bytes, write buffer) in a
//! list and returns. Measured with a counting allocator (`stats_alloc`) once every handler
//! returned and its connection thread ended: live heap bytes after minus before, divided by
//! the connections. The clients are in this process, as in Go's reference figure (a std
//! `TcpStream` owns no heap memory, so the client side adds nothing here; the figure is the
//! server's). A first round, released before measuring, warms up the server's registry and
//! read-buffer pool, as `benches/go retained` does for Go's.
//!
//! Run: `cargo bench --bench retained [-- N]` (default 2,000). Prints
//! `retained N BYTES_PER_CONN HANDED_OVER_BYTES_PER_CONN`.

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hijack::tcp::TcpConn;
use hijack::{Handover, Request, ResponseWriter, Server, ServerConfig};
use http::{HeaderValue, StatusCode, header};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const REQUEST: &[u8] =
    b"GET /hold HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: hold\r\n\r\n";

type Held = Arc<Mutex<Vec<Handover<std::net::TcpStream>>>>;

/// Live heap bytes now (`stats_alloc` counts a `realloc`'s growth as allocated and its
/// shrinking as deallocated already).
fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Opens `n` connections that each got the 101 head of a hijack.
fn dial(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    let mut buf = [0u8; 1024];
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(REQUEST).expect("send");
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let k = c.read(&mut buf).expect("read head");
            assert!(k > 0, "server closed before the head");
            got.extend_from_slice(&buf[..k]);
        }
        conns.push(c);
    }
    conns
}

/// Waits until `n` handovers are held and the server let go of every connection, then until
/// the live heap stops moving (connection threads ending).
fn settle(server: &Server, held: &Held, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.lock().unwrap().len() < n || server.connections() > 0 {
        assert!(Instant::now() < deadline, "connections never settled");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut last = live();
    let mut still = 0;
    while still < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let now = live();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let held: Held = Arc::default();
    let keep = held.clone();
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::default(),
        move |_req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
            w.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("hold"));
            w.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            w.write_header(StatusCode::SWITCHING_PROTOCOLS);
            if let Ok(parts) = w.hijack() {
                keep.lock().unwrap().push(parts);
            }
        },
    )
    .expect("bind");
    let addr = server.local_addr();

    // Warm-up round, released. The list of held parts is freed too, so it regrows in the
    // measured round as Go's does.
    let conns = dial(addr, n);
    settle(&server, &held, n);
    *held.lock().unwrap() = Vec::new();
    drop(conns);
    std::thread::sleep(Duration::from_millis(50));

    let before = live();
    let conns = dial(addr, n);
    settle(&server, &held, n);
    let after = live();
    let handed_over: usize = held.lock().unwrap().iter().map(|h| h.buffered.len()).sum();
    let per_conn = (after - before) / n as i64;
    let write_cap: usize = held
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.write_buf.capacity())
        .sum();
    println!(
        "retained {n} {per_conn} {} write_buf_capacity={} handover_size={}",
        handed_over / n,
        write_cap / n,
        std::mem::size_of::<Handover<TcpStream>>()
    );
    drop(conns);
    held.lock().unwrap().clear();
    let _ = server.shutdown(Duration::from_secs(1));
}
