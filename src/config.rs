//! A server's limits and hooks: [`ServerConfig`] and its [`StateHook`].
//!
//! Plain data, read by the serving loop and the TCP server; it owns no connection state and
//! never touches a connection.

use std::time::Duration;

use crate::state::ConnState;
use crate::sync::Arc;

/// A hook told of every connection state change: `(connection id, new state)`.
pub type StateHook = Arc<dyn Fn(u64, ConnState) + Send + Sync>;

/// Limits and hooks of a server (and of [`crate::serve_connection`]).
#[derive(Clone)]
pub struct ServerConfig {
    /// The most bytes a request head may take; more gets 431, or 414 when the request line
    /// does not end within them. Default 1 MiB (Go's).
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
