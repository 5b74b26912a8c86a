//! The hyper peer of `hijack conform`: the conformance endpoints of
//! SPEC.md#conformance-endpoints on hyper 1.x's HTTP/1 server, handing over with
//! `hyper::upgrade`.
//!
//! `peer-hyper [ADDR]` (default `127.0.0.1:0`; a bare port means `127.0.0.1:PORT`) prints
//! `listening on http://127.0.0.1:PORT` on stdout once it accepts connections.
//!
//! - `/echo`: the 101 response is returned, `hyper::upgrade::on` resolves to an `Upgraded`,
//!   which is downcast to its `Parts`: `read_buf` (the bytes hyper read past the request) is
//!   echoed first, explicitly, then the raw stream.
//! - `/close-notify/{id}`: hyper has no close-notify. While a request's service future runs,
//!   its HTTP/1 dispatcher keeps reading the connection (unless `half_close` is set); on end
//!   of stream the connection fails and the in-flight service future is dropped. A drop guard
//!   in the handler records that as "fired". A byte that arrives instead (a pipelined request)
//!   stops that watching.
//! - `/hold` keeps the `Upgraded` (which owns its parts); `/release` drops them.
//! - `/stats`: live bytes from a counting global allocator (no collector to run), and the
//!   open connections counted by a wrapper around each accepted stream.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

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
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Open connections, hijacked (upgraded) ones included.
static CONNECTIONS: AtomicI64 = AtomicI64::new(0);

/// An accepted stream that counts itself in `CONNECTIONS` until it is dropped, wherever it
/// ends up (the connection task, or an `Upgraded`).
struct Counted(TcpStream);

impl Counted {
    fn new(stream: TcpStream) -> Self {
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        Counted(stream)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// How a `/close-notify/{id}` request ended, as `/events/{id}` reports it.
#[derive(Clone, Copy)]
enum CloseNotifyEvent {
    Pending,
    Fired(u128),
    Timeout(u128),
}

/// What the endpoints share: the close-notify records and the held upgrades.
#[derive(Default)]
struct State {
    events: Mutex<HashMap<String, CloseNotifyEvent>>,
    held: Mutex<Vec<Upgraded>>,
}

impl State {
    fn record(&self, id: &str, event: CloseNotifyEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), event);
    }
}

type Resp = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: &str) -> Resp {
    response(status, "text/plain; charset=utf-8", body.to_string())
}

fn json(body: String) -> Resp {
    response(StatusCode::OK, "application/json", body)
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a comma-separated header field holds `token`, case-insensitively.
fn has_token(req: &Request<Incoming>, name: hyper::header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

fn wants_upgrade(req: &Request<Incoming>, protocol: &str) -> bool {
    has_token(req, CONNECTION, "upgrade") && has_token(req, UPGRADE, protocol)
}

fn switching(protocol: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.headers_mut()
        .insert(UPGRADE, HeaderValue::from_static(protocol));
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    r
}

/// Echoes until the client half-closes: the `read_buf` of the parts first, then the stream.
async fn echo(upgraded: Upgraded) {
    let (mut io, first) = match upgraded.downcast::<TokioIo<Counted>>() {
        Ok(parts) => (parts.io.into_inner(), parts.read_buf),
        Err(_) => {
            eprintln!("echo: the upgraded stream is not TokioIo<Counted>");
            return;
        }
    };
    if io.write_all(&first).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    // Dropping the stream closes it.
}

/// Records "fired" for a `/close-notify/{id}` whose handler future hyper dropped before it
/// finished: the connection ended under it.
struct CloseNotifyWatch {
    state: Arc<State>,
    id: String,
    started: Instant,
    finished: bool,
}

impl Drop for CloseNotifyWatch {
    fn drop(&mut self) {
        if !self.finished {
            let ms = self.started.elapsed().as_millis();
            self.state.record(&self.id, CloseNotifyEvent::Fired(ms));
        }
    }
}

fn query<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

async fn close_notify(state: Arc<State>, id: String, req: Request<Incoming>) -> Resp {
    let timeout_ms = query(&req, "timeout_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000u64);
    state.record(&id, CloseNotifyEvent::Pending);
    let mut watch = CloseNotifyWatch {
        state: state.clone(),
        id,
        started: Instant::now(),
        finished: false,
    };
    tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
    watch.finished = true;
    let ms = watch.started.elapsed().as_millis();
    state.record(&watch.id, CloseNotifyEvent::Timeout(ms));
    text(StatusCode::OK, "still here\n")
}

fn events(state: &State, id: &str) -> Resp {
    let event = state
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .copied();
    let Some(event) = event else {
        return text(StatusCode::NOT_FOUND, "no such close-notify request\n");
    };
    let (name, after) = match event {
        CloseNotifyEvent::Pending => ("pending", "null".to_string()),
        CloseNotifyEvent::Fired(ms) => ("fired", ms.to_string()),
        CloseNotifyEvent::Timeout(ms) => ("timeout", ms.to_string()),
    };
    json(format!(
        "{{\"id\": {}, \"close_notify\": \"{name}\", \"after_ms\": {after}}}\n",
        json_string(id)
    ))
}

async fn serve(state: Arc<State>, mut req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/echo" {
        if !wants_upgrade(&req, "echo") {
            return Ok(text(
                StatusCode::UPGRADE_REQUIRED,
                "send Connection: Upgrade and Upgrade: echo\n",
            ));
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => echo(upgraded).await,
                Err(e) => eprintln!("echo: upgrade failed: {e}"),
            }
        });
        return Ok(switching("echo"));
    }
    if path == "/hold" {
        if req.method() != Method::GET || !wants_upgrade(&req, "hold") {
            return Ok(text(
                StatusCode::UPGRADE_REQUIRED,
                "send GET with Connection: Upgrade and Upgrade: hold\n",
            ));
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => state
                    .held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(upgraded),
                Err(e) => eprintln!("hold: upgrade failed: {e}"),
            }
        });
        return Ok(switching("hold"));
    }
    if path == "/close-notify" || path.starts_with("/close-notify/") {
        let id = path["/close-notify".len()..]
            .trim_start_matches('/')
            .to_string();
        return Ok(close_notify(state, id, req).await);
    }
    if let Some(id) = path.strip_prefix("/events/") {
        return Ok(events(&state, id));
    }
    if path == "/release" {
        let taken = std::mem::take(&mut *state.held.lock().unwrap_or_else(|p| p.into_inner()));
        let n = taken.len();
        drop(taken);
        return Ok(json(format!("{{\"released\": {n}}}\n")));
    }
    if path == "/stats" {
        return Ok(json(format!(
            "{{\"live_heap_bytes\": {}, \"connections\": {}}}\n",
            LIVE_BYTES.load(Ordering::Relaxed),
            CONNECTIONS.load(Ordering::Relaxed)
        )));
    }
    // Any other path: read the whole body, then answer, naming the request
    // (SPEC.md#conformance-endpoints).
    let named = format!("{} {}", req.method(), req.uri());
    // A body hyper cannot read (bad chunked framing) is left to the service: answer 400, as
    // an application that checks the error does; hyper closes the connection after it.
    if let Err(e) = req.into_body().collect().await {
        eprintln!("reading request body: {e}");
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "cannot read the request body\n",
        ));
    }
    Ok(text(
        StatusCode::OK,
        &format!("{named}: hijack conformance peer (hyper 1.x http1)\n"),
    ))
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let mut addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if !addr.contains(':') {
        addr = format!("127.0.0.1:{addr}");
    }
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let io = TokioIo::new(Counted::new(stream));
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(state.clone(), req));
            let conn = http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades();
            if let Err(e) = conn.await {
                eprintln!("connection: {e}");
            }
        });
    }
}
