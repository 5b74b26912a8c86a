//! The demo and conformance endpoints of `hijack serve` (SPEC.md#conformance-endpoints).
//!
//! - `/echo` with `Connection: Upgrade` and `Upgrade: echo`: answers 101, hijacks, echoes
//!   every byte (the handed-over bytes first) until the client half-closes, then closes.
//! - `/close-notify/{id}` (and `/close-notify`): waits for the client to go away, or for
//!   `timeout_ms` (default 5000), and records which happened for `/events/{id}`.
//! - `/events/{id}`: what `/close-notify/{id}` recorded, as JSON.
//! - anything else: reads the request body, answers a short text.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode, header};

use crate::{Fired, Handler, Request, ResponseWriter, Transport};

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

/// The demo handler, with the events its `/close-notify/{id}` requests recorded.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    events: Arc<Mutex<HashMap<String, CloseNotifyEvent>>>,
}

impl Demo {
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
        let path = req.path().to_string();
        if path == "/echo" {
            return echo(req, w);
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
        let mut body = Vec::new();
        if let Err(e) = req.body().read_to_end(&mut body) {
            tracing::debug!(error = %e, "reading request body");
            return;
        }
        text(
            &mut w,
            "hijack reference server: try /echo (Upgrade: echo) or /close-notify/{id}\n",
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
pub fn echo<T: Transport>(req: Request<'_>, mut w: ResponseWriter<'_, T>) {
    w.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("echo"));
    w.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if !req.wants_upgrade("echo") {
        w.write_header(StatusCode::UPGRADE_REQUIRED);
        return text(&mut w, "send Connection: Upgrade and Upgrade: echo\n");
    }
    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
    let mut parts = match w.hijack() {
        Ok(parts) => parts,
        Err(e) => {
            tracing::warn!(error = %e, "hijack failed");
            return;
        }
    };
    drop(req);
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

impl Demo {
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
        w.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // A request target is visible ASCII, for which Rust's string escaping is JSON's.
        let json =
            format!("{{\"id\": {id:?}, \"close_notify\": \"{state}\", \"after_ms\": {after}}}\n");

        let _ = w.write_body(json.as_bytes());
    }
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
