//! `hijack`: the reference implementation of HTTP/1.1 connection hijacking.
//!
//! A small, real HTTP/1.1 server core with Go's `net/http` hijack semantics (Go 1.25 and
//! later): a handler can take the live connection over with every byte the server already
//! read ([`ResponseWriter::hijack`]), close-notify and cancellation follow Go's rules, and
//! nothing of the server's state outlives the handler. SPEC.md is the normative text; the
//! code cites it.
//!
//! - [`Server`] serves TCP on loopback or anywhere else; [`serve_connection`] serves any
//!   [`Transport`], such as the in-memory [`pipe`] used by tests, fuzzers and loom models.
//! - `sync` is the one synchronization facade (std, or loom under `--cfg loom`).
//!
//! An echo server that upgrades and hands every byte back, the handed-over bytes first:
//!
//! ```
//! use std::io::{Read, Write};
//! use hijack::{Request, ResponseWriter, Server, ServerConfig, tcp::TcpConn};
//!
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default(),
//!     |_req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
//!         w.write_header(http::StatusCode::SWITCHING_PROTOCOLS);
//!         w.headers_mut().insert("upgrade", "echo".parse().unwrap());
//!         w.headers_mut().insert("connection", "Upgrade".parse().unwrap());
//!         let Ok(mut parts) = w.hijack() else { return };
//!         // `parts.buffered`: every byte the server read that nobody consumed, in wire
//!         // order. Reading `parts` yields those first, then the stream.
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n) = parts.read(&mut buf) {
//!             if n == 0 || parts.write_all(&buf[..n]).and_then(|()| parts.flush()).is_err() {
//!                 break;
//!             }
//!         }
//!     })?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown(std::time::Duration::from_secs(1)).unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod conn;
mod conn_reader;
mod expect;
pub mod parse;
pub mod pipe;
mod request;
mod response;
mod signal;
pub mod state;
mod sync;
pub mod transport;

#[cfg(not(loom))]
pub mod demo;
#[cfg(not(loom))]
mod server;
#[cfg(not(loom))]
pub mod tcp;

use std::time::Duration;

pub use conn::Hijacked;
pub use request::{Body, Request};
pub use response::{ConnProbe, Handover, ResponseWriter};
#[cfg(not(loom))]
pub use server::{Server, ShutdownError};
pub use signal::{Cancellation, CloseNotify, Fired};
pub use state::ConnState;
pub use transport::Transport;

/// Heap bytes held by idle read buffers that ended connections left for new ones (the server
/// pools them as Go pools its `bufio.Reader`s). A leak check that compares live heap bytes
/// before and after a connection subtracts these: they belong to the pool, not to any
/// connection.
pub fn idle_read_buffer_bytes() -> usize {
    conn::read_buffers::idle_bytes()
}

use sync::Arc;

/// Serves requests on one connection. Implemented for every
/// `Fn(Request<'_>, ResponseWriter<'_, T>) + Send + Sync + 'static`.
pub trait Handler<T: Transport>: Send + Sync + 'static {
    /// Answers one request. Returning ends the request; a hijacked connection is the
    /// handler's (or whoever it gave the [`Handover`] to) from the hijack on.
    fn serve(&self, req: Request<'_>, w: ResponseWriter<'_, T>);
}

impl<T: Transport, F> Handler<T> for F
where
    F: Fn(Request<'_>, ResponseWriter<'_, T>) + Send + Sync + 'static,
{
    fn serve(&self, req: Request<'_>, w: ResponseWriter<'_, T>) {
        self(req, w)
    }
}

/// A hook told of every connection state change: `(connection id, new state)`.
pub type StateHook = Arc<dyn Fn(u64, ConnState) + Send + Sync>;

/// Limits and hooks of a server (and of [`serve_connection`]).
#[derive(Clone)]
pub struct ServerConfig {
    /// The most bytes a request head may take; more gets 431. Default 1 MiB (Go's).
    pub max_head_bytes: usize,
    /// Time allowed from the first byte of a request head to its end. Default none.
    pub read_header_timeout: Option<Duration>,
    /// Time a keep-alive connection may wait for the next request. Default none.
    pub idle_timeout: Option<Duration>,
    /// The most connections served at once; accepting waits past it. Hijacked connections
    /// no longer count. Default 10,000.
    pub max_connections: usize,
    /// The most unread request-body bytes discarded after the handler to keep the
    /// connection open; past it the connection closes. Default 256 KiB (Go's).
    pub max_discard_bytes: u64,
    /// Told of every connection state change.
    pub on_state: Option<StateHook>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_head_bytes: 1 << 20,
            read_header_timeout: None,
            idle_timeout: None,
            max_connections: 10_000,
            max_discard_bytes: 256 << 10,
            on_state: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_head_bytes", &self.max_head_bytes)
            .field("read_header_timeout", &self.read_header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_discard_bytes", &self.max_discard_bytes)
            .field("on_state", &self.on_state.is_some())
            .finish()
    }
}

/// Serves one connection on `transport` until it closes or is hijacked, on this thread.
/// `id` names the connection to the state hook.
pub fn serve_connection<T: Transport, H: Handler<T>>(
    transport: T,
    handler: &H,
    config: &ServerConfig,
    id: u64,
) {
    let conn = conn::Conn::new(transport, config.clone(), id, Default::default());
    conn.transition_new();
    conn.serve(handler);
}
