//! The actix peer of `hijack conform`: the conformance endpoints of
//! SPEC.md#conformance-endpoints that actix-http 3, the HTTP layer of actix-web, can offer.
//!
//! `peer-actix [ADDR]` (default `127.0.0.1:0`; a bare port means `127.0.0.1:PORT`) prints
//! `listening on http://127.0.0.1:PORT` on stdout once it accepts connections.
//!
//! - `/echo`, `/hold`, `/release`, `/stats`: not offered (404). actix-http hands a connection
//!   over only for `Upgrade: websocket` (to the service of `HttpServiceBuilder::upgrade`, with
//!   the `Framed` connection, or as the request payload of a 101 response, as actix-web-actors
//!   does) and for CONNECT; a request with `Upgrade: echo` is an ordinary request, framed by its
//!   Content-Length, and what follows it is read as the next request. No API reaches the bytes
//!   after its head.
//! - `/close-notify/{id}`: actix-http has no close-notify signal; its HTTP/1 dispatcher keeps
//!   reading the connection while a request is served and, when the client is gone, drops the
//!   service future. A drop guard in the handler records that as "fired" (as the hyper peer).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_http::body::BoxBody;
use actix_http::{HttpService, Request, Response, StatusCode};
use actix_server::Server;
use actix_service::fn_service;
use futures_util::StreamExt as _;

/// What `/close-notify/{id}` recorded: (state, after_ms).
type Events = Arc<Mutex<HashMap<String, (&'static str, Option<u128>)>>>;

fn text(status: StatusCode, body: &str) -> Response<BoxBody> {
    let mut res = Response::build(status);
    res.insert_header(("content-type", "text/plain; charset=utf-8"));
    res.body(body.to_string()).map_into_boxed_body()
}

fn json(body: String) -> Response<BoxBody> {
    let mut res = Response::build(StatusCode::OK);
    res.insert_header(("content-type", "application/json"));
    res.body(body).map_into_boxed_body()
}

/// Records "fired" for its id when dropped before `done`: actix-http drops the service future
/// when the client goes away.
struct Watch {
    events: Events,
    id: String,
    started: Instant,
    done: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            let ms = self.started.elapsed().as_millis();
            self.events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(self.id.clone(), ("fired", Some(ms)));
        }
    }
}

async fn close_notify(req: &Request, events: Events, id: String) -> Response<BoxBody> {
    let timeout = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("timeout_ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000);
    events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), ("pending", None));
    let mut watch = Watch {
        events: events.clone(),
        id,
        started: Instant::now(),
        done: false,
    };
    actix_rt::time::sleep(Duration::from_millis(timeout)).await;
    watch.done = true;
    let ms = watch.started.elapsed().as_millis();
    events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(watch.id.clone(), ("timeout", Some(ms)));
    text(StatusCode::OK, "still here\n")
}

/// Every request.
async fn serve(mut req: Request, events: Events) -> Result<Response<BoxBody>, Infallible> {
    let target = req.uri().to_string();
    let path = req.uri().path().to_string();
    let res = match path.as_str() {
        "/echo" | "/hold" | "/release" | "/stats" => text(
            StatusCode::NOT_FOUND,
            "not offered: actix-http hands over only Upgrade: websocket and CONNECT
",
        ),
        p if p == "/close-notify" || p.starts_with("/close-notify/") => {
            let id = p["/close-notify".len()..]
                .trim_start_matches('/')
                .to_string();
            close_notify(&req, events, id).await
        }
        p if p.starts_with("/events/") => {
            let id = &p["/events/".len()..];
            match events.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                None => text(StatusCode::NOT_FOUND, "no such close-notify request\n"),
                Some((state, after)) => json(format!(
                    "{{\"id\": \"{}\", \"close_notify\": \"{state}\", \"after_ms\": {}}}\n",
                    id.replace('\\', "\\\\").replace('"', "\\\""),
                    after.map_or("null".to_string(), |ms| ms.to_string())
                )),
            }
        }
        _ => {
            // Any other path: read the whole body, then answer (400 and close when the body
            // cannot be read).
            let mut payload = req.take_payload();
            let mut failed = false;
            while let Some(chunk) = payload.next().await {
                if chunk.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                let mut res = text(StatusCode::BAD_REQUEST, "cannot read the request body\n");
                res.head_mut()
                    .set_connection_type(actix_http::ConnectionType::Close);
                res
            } else {
                // The body names the request it answers (SPEC.md#conformance-endpoints).
                text(
                    StatusCode::OK,
                    &format!(
                        "{} {target}: hijack conformance peer (actix-http 3)\n",
                        req.method()
                    ),
                )
            }
        }
    };
    Ok(res)
}

fn main() -> io::Result<()> {
    let mut addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if !addr.contains(':') {
        addr = format!("127.0.0.1:{addr}");
    }
    let listener = std::net::TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    let events: Events = Arc::default();
    actix_rt::System::new().block_on(async move {
        let server = Server::build()
            .disable_signals()
            .listen("peer", listener, move || {
                let events = events.clone();
                HttpService::build()
                    .h1(fn_service(move |req| serve(req, events.clone())))
                    .tcp()
            })?
            .run();
        println!("listening on http://{local}");
        server.await
    })
}
