//! The demo and conformance endpoints of `hijack serve` (SPEC.md#conformance-endpoints).
//!
//! - `/echo` with `Connection: Upgrade` and `Upgrade: echo`: answers 101, hijacks, echoes
//!   every byte (the handed-over bytes first) until the client half-closes, then closes.
//! - `/close-notify/{id}` (and `/close-notify`): waits for the client to go away, or for
//!   `timeout_ms` (default 5000), and records which happened for `/events/{id}`.
//! - `/events/{id}`: what `/close-notify/{id}` recorded, as JSON.
//! - `/hold` with `Connection: Upgrade` and `Upgrade: hold`: answers 101, hijacks, and keeps
//!   every handed-over part in a server-wide list (the memory cases).
//! - `/release`: drops everything `/hold` kept, answers `{"released": N}`.
//! - `/stats`: `{"live_heap_bytes": N, "connections": M}`, from the probes the program gave
//!   ([`Demo::with_heap_probe`], [`Demo::state_hook`]); `null` for a figure without a probe.
//! - `/ws`: a WebSocket opening handshake (RFC 6455): answers 101, hijacks, and echoes every
//!   data message with tungstenite's protocol (SPEC.md#websocket-profile); a bad key or
//!   version gets 400 or 426 and the connection stays HTTP.
//! - `CONNECT 127.0.0.1:PORT`: hijacks, connects to the loopback address and relays both
//!   ways, passing half-closes on (SPEC.md#connect-profile); a target that is not a loopback
//!   address, or cannot be reached, gets an error response written over the hijacked
//!   connection, which then closes: the bytes after the head are never read.
//! - anything else: reads the request body, answers a short text.

use std::any::Any;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode, header};

use hijack::{ConnState, Fired, Handler, Handover, Request, ResponseWriter, StateHook, Transport};

/// How a `/close-notify/{id}` request ended, as `/events/{id}` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseNotifyEvent {
    /// Still waiting.
    Pending,
    /// The client went away; noticed after this many milliseconds.
    Fired(u64),
    /// Nothing noticed within the timeout (milliseconds).
    Timeout(u64),
}

/// Live heap bytes as the program measures them (for `/stats`): the library cannot count
/// the program's allocations itself, the program's global allocator can.
#[derive(Clone)]
pub struct HeapProbe(Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for HeapProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeapProbe")
    }
}

/// The demo handler, with the events its `/close-notify/{id}` requests recorded and the
/// parts its `/hold` requests kept.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    events: Arc<Mutex<HashMap<String, CloseNotifyEvent>>>,
    /// Every `Handover` a `/hold` request took, type-erased: nothing reads or writes them.
    held: Arc<Mutex<Vec<Box<dyn Any + Send>>>>,
    heap_probe: Option<HeapProbe>,
    /// Connections the server serves (New to Hijacked or Closed), counted by the state hook.
    served: Arc<AtomicI64>,
    /// Connections an `/echo` handler is echoing on (hijacked, still open).
    echoing: Arc<AtomicI64>,
    /// Whether [`Demo::state_hook`] was handed out, so that `served` means something.
    counting: Arc<AtomicBool>,
}

impl Demo {
    /// The demo handler whose `/stats` reports `probe()` as its live heap bytes.
    pub fn with_heap_probe(probe: impl Fn() -> u64 + Send + Sync + 'static) -> Demo {
        Demo {
            heap_probe: Some(HeapProbe(Arc::new(probe))),
            ..Demo::default()
        }
    }

    /// A state hook for the server's `ServerConfig::on_state` that counts the connections it
    /// serves, so that `/stats` can report them (with the hijacked ones this handler holds).
    pub fn state_hook(&self) -> StateHook {
        self.counting.store(true, Ordering::Relaxed);
        let served = self.served.clone();
        Arc::new(move |_id, state| match state {
            ConnState::New => {
                served.fetch_add(1, Ordering::Relaxed);
            }
            ConnState::Hijacked | ConnState::Closed => {
                served.fetch_sub(1, Ordering::Relaxed);
            }
            ConnState::Active | ConnState::Idle => {}
        })
    }

    /// How many connections `/hold` keeps.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// What `/close-notify/{id}` recorded for `id`.
    pub fn event(&self, id: &str) -> Option<CloseNotifyEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn record(&self, id: &str, event: CloseNotifyEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), event);
    }
}

impl<T: Transport> Handler<T> for Demo
where
    T::Stream: Read + Write,
{
    fn serve(&self, mut req: Request<'_>, mut w: ResponseWriter<'_, T>) {
        if req.method() == http::Method::CONNECT {
            return connect(req, w);
        }
        let path = req.path().to_string();
        if path == "/echo" {
            return echo_counted(req, w, Some(self.echoing.clone()));
        }
        if path == "/ws" {
            if let Some(parts) = ws_accept(&req, w) {
                drop(req);
                let _echoing = Echoing::start(self.echoing.clone());
                ws_echo(parts);
            }
            return;
        }
        if path == "/close-notify" || path.starts_with("/close-notify/") {
            let id = path
                .trim_start_matches("/close-notify")
                .trim_start_matches('/');
            return self.close_notify(id, req, w);
        }
        if let Some(id) = path.strip_prefix("/events/") {
            return self.events(id, w);
        }
        match path.as_str() {
            "/hold" => return self.hold(req, w),
            "/release" => return self.release(w),
            "/stats" => return self.stats(w),
            _ => {}
        }
        // The body names the request it answers, so a client can tell which request a
        // response belongs to (SPEC.md#conformance-endpoints).
        let named = format!("{} {}", req.method(), req.target());
        let mut body = Vec::new();
        if let Err(e) = req.body().read_to_end(&mut body) {
            tracing::debug!(error = %e, "reading request body");
            return;
        }
        text(
            &mut w,
            &format!(
                "{named}: {} body bytes read by the hijack reference server; try /echo (Upgrade: echo) or /close-notify/{{id}}\n",
                body.len()
            ),
        );
    }
}

fn text<T: Transport>(w: &mut ResponseWriter<'_, T>, body: &str) {
    w.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let _ = w.write_body(body.as_bytes());
}

/// `/echo`: upgrade, then echo until the client half-closes.
pub fn echo<T: Transport>(req: Request<'_>, w: ResponseWriter<'_, T>) {
    echo_counted(req, w, None)
}

/// Counts a connection in `/stats` while its `/echo` runs.
struct Echoing(Arc<AtomicI64>);

impl Echoing {
    fn start(count: Arc<AtomicI64>) -> Echoing {
        count.fetch_add(1, Ordering::Relaxed);
        Echoing(count)
    }
}

impl Drop for Echoing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers 101 with `Upgrade: protocol` and hijacks, or 426 when the request does not ask for
/// `protocol`. `None` when there is nothing to hand over.
fn upgrade<T: Transport>(
    req: &Request<'_>,
    mut w: ResponseWriter<'_, T>,
    protocol: &'static str,
) -> Option<Handover<T::Stream>> {
    w.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(protocol));
    w.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if !req.wants_upgrade(protocol) {
        w.write_header(StatusCode::UPGRADE_REQUIRED);
        text(
            &mut w,
            &format!("send Connection: Upgrade and Upgrade: {protocol}\n"),
        );
        return None;
    }
    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
    w.hijack()
        .map_err(|e| tracing::warn!(error = %e, "hijack failed"))
        .ok()
}

fn echo_counted<T: Transport>(
    req: Request<'_>,
    w: ResponseWriter<'_, T>,
    echoing: Option<Arc<AtomicI64>>,
) {
    let Some(mut parts) = upgrade(&req, w, "echo") else {
        return;
    };
    drop(req);
    let _echoing = echoing.map(Echoing::start);
    let mut buf = [0u8; 16 << 10];
    loop {
        match parts.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if parts
                    .write_all(&buf[..n])
                    .and_then(|()| parts.flush())
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    // Dropping the parts closes the stream: the hijacker owns it now.
}

/// The handshake of `/ws` (RFC 6455 §4.2): 101 with `Upgrade: websocket`, `Connection:
/// Upgrade` and the `Sec-WebSocket-Accept` of the key, then the hijack; 400 for a key that is
/// not 16 bytes in base64 or a request that is not a WebSocket handshake, 426 with
/// `Sec-WebSocket-Version: 13` for another version. `None` when there is nothing to hand
/// over; after a refusal the connection stays HTTP (the core serves the next request).
pub fn ws_accept<T: Transport>(
    req: &Request<'_>,
    mut w: ResponseWriter<'_, T>,
) -> Option<Handover<T::Stream>> {
    let field = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let key = field("sec-websocket-key").filter(|k| {
        data_encoding::BASE64
            .decode(k.as_bytes())
            .is_ok_and(|nonce| nonce.len() == 16)
    });
    let refuse = |mut w: ResponseWriter<'_, T>, status: StatusCode, why: &str| {
        w.write_header(status);
        text(&mut w, why);
    };
    if req.method() != http::Method::GET || !req.wants_upgrade("websocket") {
        refuse(
            w,
            StatusCode::BAD_REQUEST,
            "send a WebSocket opening handshake\n",
        );
        return None;
    }
    if field("sec-websocket-version") != Some("13") {
        w.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        refuse(
            w,
            StatusCode::UPGRADE_REQUIRED,
            "Sec-WebSocket-Version: 13 only\n",
        );
        return None;
    }
    let Some(key) = key else {
        refuse(
            w,
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be 16 bytes in base64\n",
        );
        return None;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let headers = w.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
    w.hijack()
        .map_err(|e| tracing::warn!(error = %e, "hijack failed"))
        .ok()
}

/// The WebSocket echo over a hijacked connection, with tungstenite's server side: every
/// text or binary message echoed as one message of its type, the bytes handed over with the
/// handshake read first (they are the handover's); Pings answered, a Close answered, then the
/// connection closed when `parts` drops.
pub fn ws_echo<S: Read + Write>(parts: Handover<S>) {
    use tungstenite::{Message, protocol::Role};
    let mut ws = tungstenite::WebSocket::from_raw_socket(parts, Role::Server, None);
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    break;
                }
            }
            // tungstenite queued the Pong (or the Close reply): write it now.
            Ok(_) => {
                if ws.flush().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // After the Close reply tungstenite writes its buffer out and ends (ConnectionClosed)
    // without flushing the stream: the handover's write buffer still holds the reply.
    let _ = ws.get_mut().flush();
}

/// CONNECT over the hijack (SPEC.md#connect-profile): the handler hijacks before writing any
/// response, so that the response is its own bytes on the stream: `200 Connection
/// Established` with no framing field (RFC 9110 §9.3.6), or an error with `Connection: close`
/// after which the connection closes and the bytes after the head, in the handover's buffer,
/// are dropped unread (draft-ietf-httpbis-optimistic-upgrade). Only literal loopback
/// addresses are tunnelled to, and only over TCP (the relay needs a second handle on the
/// stream).
pub fn connect<T: Transport>(req: Request<'_>, w: ResponseWriter<'_, T>) {
    let target = req.target().to_string();
    drop(req);
    let Ok(parts) = w.hijack() else { return };
    let Handover {
        stream, buffered, ..
    } = parts;
    let stream: Box<dyn Any> = Box::new(stream);
    let Ok(client) = stream.downcast::<std::net::TcpStream>() else {
        // Not TCP: there is no second handle to relay with; the stream closes on drop.
        return;
    };
    let mut client = *client;
    let refuse = |mut client: std::net::TcpStream, status: &str, why: &str| {
        let body = format!("CONNECT {target}: {why}\n");
        let _ = write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.flush();
        // Dropping it closes the connection: the bytes after the head are never read.
    };
    let Ok(addr) = target.parse::<std::net::SocketAddr>() else {
        return refuse(client, "400 Bad Request", "the target must be IP:PORT");
    };
    if !addr.ip().is_loopback() {
        return refuse(
            client,
            "403 Forbidden",
            "only loopback addresses are tunnelled to",
        );
    }
    let mut upstream = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(u) => u,
        Err(e) => return refuse(client, "502 Bad Gateway", &e.to_string()),
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .is_err()
        || upstream.write_all(&buffered).is_err()
    {
        return;
    }
    drop(buffered);
    let (Ok(mut client_in), Ok(mut upstream_out)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    // Client to target, then the client's half-close on to the target.
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(std::net::Shutdown::Write);
    });
    // Target to client, then the target's half-close on to the client.
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

impl Demo {
    /// `/hold`: upgrade, hijack, and keep every part until `/release`.
    fn hold<T: Transport>(&self, req: Request<'_>, w: ResponseWriter<'_, T>) {
        // The hijack flushed the 101; the parts stay as the handover left them.
        if let Some(parts) = upgrade(&req, w, "hold") {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Box::new(parts));
        }
    }

    /// `/release`: close and drop everything `/hold` kept.
    fn release<T: Transport>(&self, mut w: ResponseWriter<'_, T>) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        let released = held.len();
        drop(held);
        json(&mut w, &format!("{{\"released\": {released}}}\n"));
    }

    /// `/stats`: live heap bytes and connections held, `null` where this program cannot tell.
    fn stats<T: Transport>(&self, mut w: ResponseWriter<'_, T>) {
        let heap = match &self.heap_probe {
            Some(HeapProbe(probe)) => probe().to_string(),
            None => "null".to_string(),
        };
        let connections = if self.counting.load(Ordering::Relaxed) {
            let n = self.served.load(Ordering::Relaxed)
                + self.echoing.load(Ordering::Relaxed)
                + self.held() as i64;
            n.max(0).to_string()
        } else {
            "null".to_string()
        };
        json(
            &mut w,
            &format!("{{\"live_heap_bytes\": {heap}, \"connections\": {connections}}}\n"),
        );
    }

    /// `/close-notify/{id}`: wait for the client to leave or the timeout, record which.
    fn close_notify<T: Transport>(&self, id: &str, req: Request<'_>, mut w: ResponseWriter<'_, T>) {
        let timeout_ms = query(req.target(), "timeout_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000u64);
        self.record(id, CloseNotifyEvent::Pending);
        let started = Instant::now();
        let fired = w
            .close_notify()
            .wait_timeout(Duration::from_millis(timeout_ms));
        let after_ms = started.elapsed().as_millis() as u64;
        tracing::info!(id, ?fired, after_ms, "close-notify");
        if fired == Some(Fired::ClientGone) {
            self.record(id, CloseNotifyEvent::Fired(after_ms));
        } else {
            self.record(id, CloseNotifyEvent::Timeout(after_ms));
            text(&mut w, "still here\n");
        }
    }

    /// `/events/{id}`: the record of `/close-notify/{id}` as JSON, or 404.
    fn events<T: Transport>(&self, id: &str, mut w: ResponseWriter<'_, T>) {
        let Some(event) = self.event(id) else {
            w.write_header(StatusCode::NOT_FOUND);
            return text(&mut w, "no such close-notify request\n");
        };
        let (state, after) = match event {
            CloseNotifyEvent::Pending => ("pending", "null".to_string()),
            CloseNotifyEvent::Fired(ms) => ("fired", ms.to_string()),
            CloseNotifyEvent::Timeout(ms) => ("timeout", ms.to_string()),
        };
        // A request target is visible ASCII, for which Rust's string escaping is JSON's.
        let json =
            format!("{{\"id\": {id:?}, \"close_notify\": \"{state}\", \"after_ms\": {after}}}\n");
        self::json(&mut w, &json);
    }
}

fn json<T: Transport>(w: &mut ResponseWriter<'_, T>, body: &str) {
    w.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let _ = w.write_body(body.as_bytes());
}

/// The value of `name` in the target's query string.
fn query<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == name => Some(value),
            _ => None,
        })
}
