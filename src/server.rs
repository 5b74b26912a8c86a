//! The TCP server: accept loop, connection registry, limits and graceful shutdown
//! (SPEC.md#server). One thread per connection serves it; background reads go through one
//! [`Watcher`]. A hijacked connection leaves the registry at the hijack.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::config::ServerConfig;
use crate::conn::Conn;
use crate::handler::Handler;
use crate::state::ConnState;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use crate::tcp::{TcpConn, Watcher};

/// Stack size of a connection thread: handlers run on it.
const CONN_STACK: usize = 256 << 10;
/// Connection threads kept waiting for a next connection once theirs ended, at most.
const IDLE_WORKERS: usize = 64;
/// How long an idle connection thread waits for a next connection before it ends.
const IDLE_WORKER_TIME: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// The connection threads: a thread whose connection ended (closed, or its hijacker
/// returned) waits a while to serve the next one, since starting a thread costs more than
/// serving a short connection. `idle` counts waiting threads not yet claimed by a job; the
/// accept loop claims one before it sends a job, so a sent job always has a thread. Idle
/// threads all wait on the one channel; a job wakes one of them.
struct Workers {
    jobs: Sender<Job>,
    queue: Receiver<Job>,
    idle: Arc<AtomicUsize>,
}

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

#[derive(Default)]
struct Registry {
    /// Connections the server still owns (not hijacked, not closed).
    conns: HashMap<u64, Weak<Conn<TcpConn>>>,
    /// Threads waiting on `Inner::changed` (shutdown, or the accept loop at the connection
    /// limit): a connection leaving wakes them only if there are some.
    waiting: usize,
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
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock()
    }

    /// Waits on `changed` (at most `timeout`), counted in `waiting` so that a connection
    /// leaving knows to wake it.
    fn wait_changed<'a>(
        &self,
        mut registry: MutexGuard<'a, Registry>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Registry> {
        registry.waiting += 1;
        let mut registry = match timeout {
            Some(t) => self.changed.wait_timeout(registry, t),
            None => self.changed.wait(registry),
        };
        registry.waiting -= 1;
        registry
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
        let accept = thread::Builder::new()
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
        // Wake the accept loop where it waits: in its poll, or for room in the registry (it
        // checks the flag under the registry's lock, so the wake-up cannot come too early).
        let _ = rustix::io::write(&inner.wake, &1u64.to_ne_bytes());
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
            let wait = (deadline - now).min(Duration::from_millis(50));
            drop(inner.wait_changed(inner.registry(), Some(wait)));
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
    // Dropped when this loop ends: idle connection threads then end too.
    let workers = Workers::new();
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
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
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
        let weak_inner = Arc::downgrade(&inner);
        let user_hook = config.on_state.take();
        config.on_state = Some(Arc::new(move |id, state| {
            if matches!(state, ConnState::Hijacked | ConnState::Closed)
                && let Some(inner) = weak_inner.upgrade()
            {
                let mut registry = inner.registry();
                registry.conns.remove(&id);
                if registry.waiting > 0 {
                    inner.changed.notify_all();
                }
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
