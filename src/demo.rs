//! The demo endpoints of `hijack serve` (SPEC.md#conformance-endpoints).
//!
//! - `/echo` with `Connection: Upgrade` and `Upgrade: echo`: answers 101, hijacks, echoes
//!   every byte (the handed-over bytes first) until the client half-closes, then closes.
//! - `/close-notify`: waits for the client to go away and logs when it noticed.
//! - anything else: reads the request body, answers a short text.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode, header};

use crate::{Fired, Request, ResponseWriter, Transport};

/// The demo handler.
pub fn handler<T: Transport>(mut req: Request<'_>, mut w: ResponseWriter<'_, T>) {
    match req.path() {
        "/echo" => echo(req, w),
        "/close-notify" => close_notify(req, w),
        _ => {
            let mut body = Vec::new();
            if let Err(e) = req.body().read_to_end(&mut body) {
                tracing::debug!(error = %e, "reading request body");
                return;
            }
            w.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            let _ = w.write_body(
                b"hijack reference server: try /echo (Upgrade: echo) or /close-notify\n",
            );
        }
    }
}

/// `/echo`: upgrade, then echo until the client half-closes.
pub fn echo<T: Transport>(req: Request<'_>, mut w: ResponseWriter<'_, T>) {
    if !req.wants_upgrade("echo") {
        w.write_header(StatusCode::UPGRADE_REQUIRED);
        w.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("echo"));
        w.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let _ = w.write_body(b"send Connection: Upgrade and Upgrade: echo\n");
        return;
    }
    w.write_header(StatusCode::SWITCHING_PROTOCOLS);
    w.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("echo"));
    w.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
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
            Ok(0) => break,
            Ok(n) => {
                if parts
                    .write_all(&buf[..n])
                    .and_then(|()| parts.flush())
                    .is_err()
                {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // Dropping the parts closes the stream: the hijacker owns it now.
}

/// `/close-notify`: wait for the client to leave, log when it was noticed.
pub fn close_notify<T: Transport>(req: Request<'_>, w: ResponseWriter<'_, T>) {
    let started = Instant::now();
    let notify = w.close_notify();
    let fired = loop {
        if let Some(fired) = notify.wait_timeout(Duration::from_secs(60)) {
            break Some(fired);
        }
        if req.cancellation().fired().is_some() {
            break None;
        }
    };
    tracing::info!(
        ?fired,
        after_ms = started.elapsed().as_millis() as u64,
        "close-notify"
    );
    if fired != Some(Fired::ClientGone) {
        let mut w = w;
        let _ = w.write_body(b"still here\n");
    }
}
