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
//! Inside, one concern a module, each importing only those below it (never this root):
//! `sync`, `signal`, `state`, `transport`, `parse` and `expect` (the `100 Continue` state)
//! at the bottom; `config`; `conn_reader` (the background read and the one record of a
//! hijack); `encode` (response framing); `conn` (one connection's state and its operations
//! on the stream); `body` (request bodies, discard, sending `100 Continue`); `handover`
//! (the hijack steps); `response` (the writer); `handler`; `serve` (the serving loop);
//! `watcher` (the readiness watcher behind its poller seam); `tcp` (the TCP transport and
//! epoll); `server` (accept loop, registry, shutdown, over a listener seam).
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

mod body;
mod config;
mod conn;
mod conn_reader;
mod encode;
mod expect;
mod handler;
mod handover;
pub mod limits;
pub mod parse;
pub mod pipe;
mod request;
mod response;
mod serve;
mod signal;
pub mod state;
mod sync;
pub mod transport;

mod server;
pub mod tcp;
pub mod watcher;

pub use config::{ServerConfig, StateHook};
pub use conn::Hijacked;
pub use handler::Handler;
pub use handover::{ConnProbe, Handover};
pub use request::{Body, Request};
pub use response::ResponseWriter;
pub use serve::serve_connection;
pub use server::{Listener, Server, ShutdownError, TcpAcceptor};
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
