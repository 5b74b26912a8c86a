//! The tiny_http peer of `hijack conform`: the conformance endpoints of
//! SPEC.md#conformance-endpoints on tiny_http 0.12, handing over with `Request::upgrade`.
//!
//! `peer-tiny-http [ADDR]` (default `127.0.0.1:0`; a bare port means `127.0.0.1:PORT`) prints
//! `listening on http://127.0.0.1:PORT` on stdout once it accepts connections.
//!
//! - `/echo`: `Request::upgrade("echo", 101 response)` writes the 101 (tiny_http adds
//!   `Upgrade: echo` and `Connection: upgrade`) and returns the connection as one
//!   `Read + Write` stream, whose reader is tiny_http's buffered reader of the connection: the
//!   bytes it read past the head come first.
//! - `/close-notify/{id}` and `/events/{id}`: not offered (404). tiny_http hands a request to
//!   the application and reads nothing more from the connection until the response is
//!   written; it has no close-notify and exposes no socket to watch.
//! - `/hold` keeps the upgraded stream; `/release` drops them; `/stats`: live bytes from a
//!   counting global allocator (as the hyper peer), connections null (tiny_http keeps no count
//!   it exposes). Offered only with `PEER_TINY_HTTP_MEMORY=1` in the environment (404
//!   otherwise): after the suite's other cases tiny_http holds some `/hold` requests back in its
//!   connection pool, so the memory case's verdict depends on timing (SPEC.md#peers F59), and a
//!   verdict that changes from run to run cannot be a baseline.
//!
//! tiny_http answers each request through `Server::recv`; every request is handled on a thread
//! of its own, so a long echo does not hold up other connections.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tiny_http::{Header, ReadWrite, Request, Response, Server, StatusCode};

/// Counts the bytes live on the heap: `/stats` reports them.
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is updated.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Every stream a `/hold` upgrade handed over.
static HELD: Mutex<Vec<Box<dyn ReadWrite + Send>>> = Mutex::new(Vec::new());

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn json(body: String) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body).with_header(header("Content-Type", "application/json"))
}

/// Whether any value of the field `name` holds `token` (a comma-separated list, any case).
fn has_token(request: &Request, name: &'static str, token: &str) -> bool {
    request
        .headers()
        .iter()
        .filter(|h| h.field.equiv(name))
        .any(|h| {
            h.value
                .as_str()
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
}

fn wants_upgrade(request: &Request, protocol: &str) -> bool {
    has_token(request, "Connection", "upgrade") && has_token(request, "Upgrade", protocol)
}

fn echo(mut stream: Box<dyn ReadWrite + Send>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            // End of stream: the client half-closed.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream
                    .write_all(&buf[..n])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn serve(mut request: Request) {
    let target = request.url().to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let memory = std::env::var_os("PEER_TINY_HTTP_MEMORY").is_some_and(|v| v == "1");
    let _ = match path.as_str() {
        "/hold" | "/release" | "/stats" if !memory => request.respond(text(
            404,
            "not offered (PEER_TINY_HTTP_MEMORY=1 offers it; SPEC.md#peers F59)\n",
        )),
        "/echo" => {
            if !wants_upgrade(&request, "echo") {
                request.respond(text(426, "send Connection: Upgrade and Upgrade: echo\n"))
            } else {
                let stream = request.upgrade("echo", Response::empty(101));
                echo(stream);
                Ok(())
            }
        }
        "/hold" => {
            if request.method().as_str() != "GET" || !wants_upgrade(&request, "hold") {
                request.respond(text(
                    426,
                    "send GET with Connection: Upgrade and Upgrade: hold\n",
                ))
            } else {
                let stream = request.upgrade("hold", Response::empty(101));
                HELD.lock().unwrap_or_else(|p| p.into_inner()).push(stream);
                Ok(())
            }
        }
        "/release" => {
            let taken = std::mem::take(&mut *HELD.lock().unwrap_or_else(|p| p.into_inner()));
            let n = taken.len();
            drop(taken);
            request.respond(json(format!("{{\"released\": {n}}}\n")))
        }
        "/stats" => {
            let live = LIVE_BYTES.load(Ordering::Relaxed);
            request.respond(json(format!(
                "{{\"live_heap_bytes\": {live}, \"connections\": null}}\n"
            )))
        }
        _ if path == "/close-notify"
            || path.starts_with("/close-notify/")
            || path.starts_with("/events/") =>
        {
            request.respond(text(404, "no close-notify in tiny_http\n"))
        }
        _ => {
            // Any other path: read the whole body, then answer (400 and close when the body
            // cannot be read).
            if io::copy(request.as_reader(), &mut io::sink()).is_err() {
                request.respond(
                    text(400, "cannot read the request body\n")
                        .with_header(header("Connection", "close")),
                )
            } else {
                // The body names the request it answers (SPEC.md#conformance-endpoints).
                let body = format!(
                    "{} {}: hijack conformance peer (tiny_http 0.12)\n",
                    request.method(),
                    target
                );
                request.respond(text(200, &body))
            }
        }
    };
}

fn main() {
    let mut addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if !addr.contains(':') {
        addr = format!("127.0.0.1:{addr}");
    }
    let server = Server::http(&addr).unwrap_or_else(|e| {
        eprintln!("peer-tiny-http: cannot listen on {addr}: {e}");
        std::process::exit(1);
    });
    let local = server.server_addr().to_ip().expect("a TCP listener");
    println!("listening on http://{local}");
    loop {
        match server.recv() {
            Ok(request) => {
                std::thread::spawn(move || serve(request));
            }
            Err(e) => eprintln!("peer-tiny-http: {e}"),
        }
    }
}
