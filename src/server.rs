//! The server: accept loop, connection registry, limits and graceful shutdown
//! (SPEC.md#server). One thread per connection serves it. A hijacked connection leaves the
//! registry at the hijack. The accept loop takes its connections from a [`Listener`]: a TCP
//! listener with its readiness [`Watcher`] ([`TcpAcceptor`]), or, in the loom models, a
//! modelled one; the logic here is the same for both.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

#[cfg(not(loom))]
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::config::ServerConfig;
use crate::conn::Conn;
use crate::handler::Handler;
use crate::state::ConnState;
#[cfg(not(loom))]
use crate::sync::atomic::AtomicUsize;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use crate::tcp::{TcpConn, Watcher};
use crate::transport::Transport;

/// Stack size of a connection thread: handlers run on it.
const CONN_STACK: usize = 256 << 10;
/// Connection threads kept waiting for a next connection once theirs ended, at most.
#[cfg(not(loom))]
const IDLE_WORKERS: usize = 64;
/// How long an idle connection thread waits for a next connection before it ends.
#[cfg(not(loom))]
const IDLE_WORKER_TIME: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// The connection threads: a thread whose connection ended (closed, or its hijacker
/// returned) waits a while to serve the next one, since starting a thread costs more than
/// serving a short connection. `idle` counts waiting threads not yet claimed by a job; the
/// accept loop claims one before it sends a job, so a sent job always has a thread. Idle
/// threads all wait on the one channel; a job wakes one of them.
#[cfg(not(loom))]
struct Workers {
    jobs: Sender<Job>,
    queue: Receiver<Job>,
    idle: Arc<AtomicUsize>,
}

#[cfg(not(loom))]
impl Workers {
    fn new() -> Workers {
        let (jobs, queue) = crossbeam_channel::unbounded();
        Workers {
            jobs,
            queue,
            idle: Arc::default(),
        }
    }

    /// Runs `job` on an idle connection thread, or on a new one.
    fn run(&self, job: Job) -> io::Result<()> {
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            return self
                .jobs
                .send(job)
                .map_err(|_| io::Error::other("no worker"));
        }
        let (queue, idle) = (self.queue.clone(), self.idle.clone());
        thread::Builder::new()
            .name("hijack-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || worker(job, &queue, &idle))
            .map(drop)
    }
}

#[cfg(not(loom))]
fn worker(first: Job, queue: &Receiver<Job>, idle: &AtomicUsize) {
    first();
    loop {
        if idle.fetch_add(1, Ordering::AcqRel) >= IDLE_WORKERS {
            // Enough are waiting: leave, unless a job was claimed for us meanwhile.
            if idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                return;
            }
        }
        let next = loop {
            match queue.recv_timeout(IDLE_WORKER_TIME) {
                Ok(job) => break Some(job),
                Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout) => {
                    // Unclaimed: leave. Claimed: a job is on its way, wait for it.
                    if idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        break None;
                    }
                }
            }
        };
        match next {
            Some(job) => job(),
            None => return,
        }
    }
}

/// Under loom a thread per connection, ended with it: loom runs threads it can see, and
/// the pool's timed channel wait is not one of them (the pool is not what the models check).
#[cfg(loom)]
struct Workers;

#[cfg(loom)]
impl Workers {
    fn new() -> Workers {
        Workers
    }

    fn run(&self, job: Job) -> io::Result<()> {
        thread::Builder::new()
            .name("hijack-conn".into())
            .stack_size(CONN_STACK)
            .spawn(job)
            .map(drop)
    }
}

/// Where the accept loop gets its connections: the seam between the server's logic (accept
/// loop, registry, limits, shutdown) and the system calls. [`TcpAcceptor`] is the TCP one.
pub trait Listener: Send + Sync + 'static {
    /// The transport of an accepted connection.
    type Conn: Transport;

    /// Waits for a connection or a wake-up: `Ok(Some)` with an accepted connection, `Ok(None)`
    /// when woken (or with nothing to accept).
    fn accept(&self) -> io::Result<Option<Self::Conn>>;

    /// Wakes the accept loop: the `accept` running now and every later one return at once.
    fn wake(&self);

    /// Stops listening, when the accept loop ended: connections not accepted yet are refused.
    fn close(&self);

    /// Shutdown is over: background reads still pending complete as aborted.
    fn stop(&self);

    /// Background reads pending now.
    fn pending_background_reads(&self) -> usize;
}

/// The TCP listener: a bound socket, the eventfd that wakes the accept loop, and the
/// readiness watcher of the accepted connections' background reads.
pub struct TcpAcceptor {
    addr: SocketAddr,
    /// Taken by `close`; only the accept loop's thread locks it.
    listener: Mutex<Option<TcpListener>>,
    wake: OwnedFd,
    watcher: Arc<Watcher>,
}

impl TcpAcceptor {
    /// Binds `addr` and starts the watcher.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpAcceptor> {
        let listener = TcpListener::bind(addr)?;
        Ok(TcpAcceptor {
            addr: listener.local_addr()?,
            listener: Mutex::new(Some(listener)),
            wake: rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            watcher: Watcher::start()?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Debug for TcpAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpAcceptor")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Listener for TcpAcceptor {
    type Conn = TcpConn;

    fn accept(&self) -> io::Result<Option<TcpConn>> {
        let listener = self.listener.lock();
        let Some(listener) = listener.as_ref() else {
            return Ok(None);
        };
        // Wait for a connection or the shutdown wake-up, without busy polling.
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::from_borrowed_fd(self.wake.as_fd(), PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, None);
        if !fds[1].revents().is_empty() || fds[0].revents().is_empty() {
            return Ok(None);
        }
        let (stream, _) = listener.accept()?;
        let _ = stream.set_nodelay(true);
        Ok(Some(TcpConn::new(stream, self.watcher.clone())))
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn close(&self) {
        drop(self.listener.lock().take());
    }

    fn stop(&self) {
        self.watcher.stop();
    }

    fn pending_background_reads(&self) -> usize {
        self.watcher.pending_reads()
    }
}

struct Registry<T: Transport> {
    /// Connections the server still owns (not hijacked, not closed).
    conns: HashMap<u64, Weak<Conn<T>>>,
    /// Threads waiting on `Inner::changed` (shutdown, or the accept loop at the connection
    /// limit): a connection leaving wakes them only if there are some.
    waiting: usize,
}

impl<T: Transport> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            conns: HashMap::new(),
            waiting: 0,
        }
    }
}

struct Inner<L: Listener> {
    config: ServerConfig,
    shutting_down: Arc<AtomicBool>,
    listener: L,
    registry: Mutex<Registry<L::Conn>>,
    changed: Condvar,
}

impl<L: Listener> Inner<L> {
    fn registry(&self) -> MutexGuard<'_, Registry<L::Conn>> {
        self.registry.lock()
    }

    /// Waits on `changed` (at most `timeout`), counted in `waiting` so that a connection
    /// leaving knows to wake it.
    fn wait_changed<'a>(
        &self,
        mut registry: MutexGuard<'a, Registry<L::Conn>>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Registry<L::Conn>> {
        registry.waiting += 1;
        let mut registry = match timeout {
            Some(t) => self.changed.wait_timeout(registry, t),
            None => self.changed.wait(registry),
        };
        registry.waiting -= 1;
        registry
    }
}

/// A running HTTP/1.1 server on a [`Listener`], TCP by default.
pub struct Server<L: Listener = TcpAcceptor> {
    inner: Arc<Inner<L>>,
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
        let listener = TcpAcceptor::bind(addr)?;
        let addr = listener.local_addr();
        let server = Server::serve(listener, config, handler)?;
        tracing::info!(%addr, "serving");
        Ok(server)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.listener.local_addr()
    }
}

impl<L: Listener> Server<L> {
    /// Starts serving the connections `listener` accepts with `handler`, on background
    /// threads.
    pub fn serve<H: Handler<L::Conn>>(
        listener: L,
        config: ServerConfig,
        handler: H,
    ) -> io::Result<Server<L>> {
        let inner = Arc::new(Inner {
            config,
            shutting_down: Arc::default(),
            listener,
            registry: Mutex::new(Registry::default()),
            changed: Condvar::new(),
        });
        let accept_inner = inner.clone();
        let handler = Arc::new(handler);
        let accept = thread::Builder::new()
            .name("hijack-accept".into())
            .spawn(move || accept_loop(accept_inner, handler))?;
        Ok(Server {
            inner,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// Connections the server owns now (hijacked ones are not counted).
    pub fn connections(&self) -> usize {
        self.inner.registry().conns.len()
    }

    /// Background reads pending now (for checks that nothing is left behind).
    pub fn pending_background_reads(&self) -> usize {
        self.inner.listener.pending_background_reads()
    }

    /// Graceful shutdown: stop accepting, close idle connections, fire every running
    /// request's cancellation with [`crate::Fired::Shutdown`], and wait up to `grace` for
    /// active ones to finish. Hijacked connections are not the server's and are left alone.
    pub fn shutdown(&self, grace: Duration) -> Result<(), ShutdownError> {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::Release);
        // Wake the accept loop where it waits: in its poll, or for room in the registry (it
        // checks the flag under the registry's lock, so the wake-up cannot come too early).
        inner.listener.wake();
        if !cfg!(hijack_mutant = "shutdown_misses_full_accept") {
            drop(inner.registry());
            inner.changed.notify_all();
        }
        if let Some(accept) = self.accept.lock().take() {
            let _ = accept.join();
        }
        let deadline = Instant::now() + grace;
        let mut cancelled = false;
        loop {
            let (conns, seen) = {
                let registry = inner.registry();
                let conns: Vec<Arc<Conn<L::Conn>>> =
                    registry.conns.values().filter_map(Weak::upgrade).collect();
                (conns, registry.conns.len())
            };
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
                inner.listener.stop();
                return Err(ShutdownError { remaining });
            }
            // Nothing joins the registry now, so an unchanged size is an unchanged registry:
            // a connection that left since the look above is not waited for.
            let wait = (deadline - now).min(Duration::from_millis(50));
            let registry = inner.registry();
            if registry.conns.len() == seen {
                drop(inner.wait_changed(registry, Some(wait)));
            }
        }
        inner.listener.stop();
        Ok(())
    }
}

impl<L: Listener> Drop for Server<L> {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::ZERO);
    }
}

impl<L: Listener + fmt::Debug> fmt::Debug for Server<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.inner.listener)
            .finish_non_exhaustive()
    }
}

fn accept_loop<L: Listener, H: Handler<L::Conn>>(inner: Arc<Inner<L>>, handler: Arc<H>) {
    accept_until_shutdown(&inner, &handler);
    inner.listener.close();
}

fn accept_until_shutdown<L: Listener, H: Handler<L::Conn>>(
    inner: &Arc<Inner<L>>,
    handler: &Arc<H>,
) {
    let mut next_id = 0u64;
    // Dropped when this loop ends: idle connection threads then end too.
    let workers = Workers::new();
    loop {
        let accepted = inner.listener.accept();
        if inner.shutting_down.load(Ordering::Acquire) {
            // A connection accepted as shutdown began: never served, closed as it drops.
            return;
        }
        let transport = match accepted {
            Ok(Some(transport)) => transport,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        {
            let mut registry = inner.registry();
            while registry.conns.len() >= inner.config.max_connections
                && !inner.shutting_down.load(Ordering::Acquire)
            {
                registry = inner.wait_changed(registry, None);
            }
        }
        if inner.shutting_down.load(Ordering::Acquire) {
            // Accepted while the server was full: never served, closed as it drops.
            return;
        }
        next_id += 1;
        let id = next_id;
        let mut config = inner.config.clone();
        let weak_inner = Arc::downgrade(inner);
        let user_hook = config.on_state.take();
        config.on_state = Some(Arc::new(move |id, state| {
            if matches!(state, ConnState::Hijacked | ConnState::Closed)
                && let Some(inner) = weak_inner.upgrade()
            {
                let mut registry = inner.registry();
                registry.conns.remove(&id);
                //= SPEC.md#server
                //# A connection that leaves the server, closed or hijacked, MUST wake the accept loop waiting for room.
                // The seeded bug of the kill matrix: only a close wakes the waiting.
                let wakes =
                    !cfg!(hijack_mutant = "hijack_wakes_no_accept") || state == ConnState::Closed;
                if registry.waiting > 0 && wakes {
                    inner.changed.notify_all();
                }
            }
            if let Some(hook) = &user_hook {
                hook(id, state);
            }
        }));
        let conn = Conn::new(transport, config, id, inner.shutting_down.clone());
        inner.registry().conns.insert(id, Arc::downgrade(&conn));
        let handler = handler.clone();
        let spawned = workers.run(Box::new(move || {
            conn.transition_new();
            conn.serve(&*handler);
        }));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot spawn a connection thread");
            inner.registry().conns.remove(&id);
        }
    }
}
