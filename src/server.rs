//! The TCP server: accept loop, connection registry, limits and graceful shutdown
//! (SPEC.md#server). One thread per connection serves it; background reads go through one
//! [`Watcher`]. A hijacked connection leaves the registry at the hijack.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::conn::Conn;
use crate::tcp::{TcpConn, Watcher};
use crate::{ConnState, Handler, ServerConfig};

/// Stack size of a connection thread: handlers run on it.
const CONN_STACK: usize = 256 << 10;

#[derive(Default)]
struct Registry {
    /// Connections the server still owns (not hijacked, not closed).
    conns: HashMap<u64, Weak<Conn<TcpConn>>>,
}

struct Inner {
    config: ServerConfig,
    shutting_down: Arc<AtomicBool>,
    watcher: Arc<Watcher>,
    registry: Mutex<Registry>,
    changed: Condvar,
    wake: OwnedFd,
}

impl Inner {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running HTTP/1.1 server on a TCP listener.
pub struct Server {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// Shutdown's grace period ended with connections still active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownError {
    /// Connections still served when the grace period ended.
    pub remaining: usize,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown grace period ended with {} connection(s) still active",
            self.remaining
        )
    }
}

impl std::error::Error for ShutdownError {}

impl Server {
    /// Binds `addr` and starts serving with `handler` on background threads.
    pub fn bind<H: Handler<TcpConn>>(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        handler: H,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let inner = Arc::new(Inner {
            config,
            shutting_down: Arc::default(),
            watcher: Watcher::start()?,
            registry: Mutex::new(Registry::default()),
            changed: Condvar::new(),
            wake,
        });
        let accept_inner = inner.clone();
        let handler = Arc::new(handler);
        let accept = std::thread::Builder::new()
            .name("hijack-accept".into())
            .spawn(move || accept_loop(listener, accept_inner, handler))?;
        tracing::info!(%addr, "serving");
        Ok(Server {
            addr,
            inner,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections the server owns now (hijacked ones are not counted).
    pub fn connections(&self) -> usize {
        self.inner.registry().conns.len()
    }

    /// Background reads pending now (for checks that nothing is left behind).
    pub fn pending_background_reads(&self) -> usize {
        self.inner.watcher.pending_reads()
    }

    /// Graceful shutdown: stop accepting, close idle connections, fire every running
    /// request's cancellation with [`crate::Fired::Shutdown`], and wait up to `grace` for
    /// active ones to finish. Hijacked connections are not the server's and are left alone.
    pub fn shutdown(&self, grace: Duration) -> Result<(), ShutdownError> {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::Release);
        let _ = rustix::io::write(&inner.wake, &1u64.to_ne_bytes());
        if let Some(accept) = self.accept.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = accept.join();
        }
        let deadline = Instant::now() + grace;
        let mut cancelled = false;
        loop {
            let conns: Vec<Arc<Conn<TcpConn>>> = inner
                .registry()
                .conns
                .values()
                .filter_map(Weak::upgrade)
                .collect();
            if conns.is_empty() {
                break;
            }
            for conn in &conns {
                conn.close_if_idle();
                if !cancelled {
                    conn.cancel_for_shutdown();
                }
            }
            cancelled = true;
            drop(conns);
            let now = Instant::now();
            if now >= deadline {
                let remaining = inner.registry().conns.len();
                inner.watcher.stop();
                return Err(ShutdownError { remaining });
            }
            let registry = inner.registry();
            let wait = (deadline - now).min(Duration::from_millis(50));
            let _ = inner.changed.wait_timeout(registry, wait);
        }
        inner.watcher.stop();
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::ZERO);
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn accept_loop<H: Handler<TcpConn>>(listener: TcpListener, inner: Arc<Inner>, handler: Arc<H>) {
    let mut next_id = 0u64;
    loop {
        // Wait for a connection or the shutdown wake-up, without busy polling.
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::from_borrowed_fd(inner.wake.as_fd(), PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, None);
        if inner.shutting_down.load(Ordering::Acquire) {
            return;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        {
            let mut registry = inner.registry();
            while registry.conns.len() >= inner.config.max_connections
                && !inner.shutting_down.load(Ordering::Acquire)
            {
                registry = inner
                    .changed
                    .wait(registry)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        next_id += 1;
        let id = next_id;
        let mut config = inner.config.clone();
        let weak_inner = Arc::downgrade(&inner);
        let user_hook = config.on_state.take();
        config.on_state = Some(Arc::new(move |id, state| {
            if matches!(state, ConnState::Hijacked | ConnState::Closed)
                && let Some(inner) = weak_inner.upgrade()
            {
                inner.registry().conns.remove(&id);
                inner.changed.notify_all();
            }
            if let Some(hook) = &user_hook {
                hook(id, state);
            }
        }));
        let conn = Conn::new(
            TcpConn::new(stream, inner.watcher.clone()),
            config,
            id,
            inner.shutting_down.clone(),
        );
        inner.registry().conns.insert(id, Arc::downgrade(&conn));
        let handler = handler.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("hijack-conn-{id}"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                conn.transition_new();
                conn.serve(&*handler);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot spawn a connection thread");
            inner.registry().conns.remove(&id);
        }
    }
}
