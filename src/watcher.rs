//! The readiness watcher's logic: the table of pending background reads, readiness, completion,
//! interrupt and re-arm (SPEC.md#transport-contract), over a [`Poller`] seam. [`crate::tcp`]
//! plugs in epoll; the loom models (`model/loom_watcher.rs`) plug in a modelled readiness
//! source and run this same code.

use std::collections::HashMap;
use std::io;

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, Mutex, MutexGuard};
use crate::transport::{BackgroundOutcome, BackgroundRead};

/// What one non-blocking one-byte receive found.
#[derive(Debug)]
pub enum Recv {
    /// A byte, now taken from the socket.
    Byte(u8),
    /// End of stream.
    Eof,
    /// Nothing to read now (a spurious wake-up).
    WouldBlock,
    /// The receive failed.
    Error(io::Error),
}

/// The system calls the watcher makes: one-shot readiness registrations keyed by a `u64`, a
/// blocking wait for them, a wake-up, and a non-blocking one-byte receive.
pub trait Poller: Send + Sync + 'static {
    /// A socket as the poller registers it.
    type Socket: Send + Sync + 'static;

    /// Registers `socket` under `key` for one readiness event (readable or closed). Fails
    /// with [`io::ErrorKind::AlreadyExists`] if the socket is registered already (armed, or
    /// left disarmed by the event it reported).
    fn add(&self, key: u64, socket: &Self::Socket) -> io::Result<()>;

    /// Re-arms the registration of `socket`, under `key`, for one more event.
    fn modify(&self, key: u64, socket: &Self::Socket) -> io::Result<()>;

    /// Removes the registration of `socket`, if any.
    fn delete(&self, socket: &Self::Socket);

    /// Blocks until a registration reports an event or [`Poller::wake`] is called; pushes the
    /// keys that reported one (each event also disarms its registration).
    fn wait(&self, ready: &mut Vec<u64>) -> io::Result<()>;

    /// Makes a [`Poller::wait`], current or next, return.
    fn wake(&self);

    /// Receives one byte from `socket` without blocking.
    fn recv_byte(&self, socket: &Self::Socket) -> Recv;
}

struct Pending<S> {
    socket: Arc<S>,
    done: BackgroundRead,
}

/// The readiness watcher: one thread and one poller per server, and the table of pending
/// background reads under one mutex.
pub struct Watcher<P: Poller> {
    poller: P,
    pending: Mutex<HashMap<u64, Pending<P::Socket>>>,
    next_key: AtomicU64,
    stopping: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<P: Poller> std::fmt::Debug for Watcher<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl<P: Poller> Watcher<P> {
    /// Starts the watcher thread over `poller`. It stops when [`Watcher::stop`] is called.
    pub fn start_with(poller: P) -> io::Result<Arc<Watcher<P>>> {
        let watcher = Arc::new(Watcher {
            poller,
            pending: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let w = watcher.clone();
        let thread = thread::Builder::new()
            .name("hijack-watcher".into())
            .spawn(move || w.run())?;
        *watcher.thread.lock() = Some(thread);
        Ok(watcher)
    }

    /// A key no other socket of this watcher has: one per connection, for all its reads.
    pub fn new_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Stops the watcher thread; pending reads complete as aborted, and so does any read
    /// started afterwards.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.poller.wake();
    }

    /// Waits for the watcher thread to end (after [`Watcher::stop`]).
    pub fn join(&self) {
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Pending<P::Socket>>> {
        self.pending.lock()
    }

    fn run(&self) {
        let mut ready = Vec::new();
        loop {
            ready.clear();
            if let Err(e) = self.poller.wait(&mut ready) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "watcher wait failed; stopping");
                break;
            }
            for &key in &ready {
                self.ready(key);
            }
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
        }
        let all: Vec<Pending<P::Socket>> = self.lock().drain().map(|(_, p)| p).collect();
        for p in all {
            self.poller.delete(&p.socket);
            drop(p.socket);
            p.done.complete(BackgroundOutcome::Aborted);
        }
    }

    /// The socket under `key` is readable (or closed): take one byte if there is one.
    fn ready(&self, key: u64) {
        let mut pending = self.lock();
        let Some(p) = pending.get(&key) else { return };
        // The seeded bug of the kill matrix: the byte received outside the lock, where an
        // interrupt can remove the entry and report Aborted in between.
        let received = if cfg!(hijack_mutant = "watcher_recv_outside_lock") {
            let socket = p.socket.clone();
            drop(pending);
            let received = self.poller.recv_byte(&socket);
            pending = self.lock();
            received
        } else {
            self.poller.recv_byte(&p.socket)
        };
        let outcome = match received {
            Recv::Byte(b) => BackgroundOutcome::Byte(b),
            Recv::Eof => BackgroundOutcome::Eof,
            Recv::WouldBlock => {
                // A spurious wake-up: wait again.
                if let Some(p) = pending.get(&key) {
                    let _ = self.poller.modify(key, &p.socket);
                }
                return;
            }
            Recv::Error(e) => BackgroundOutcome::Error(e),
        };
        let Some(p) = pending.remove(&key) else {
            return;
        };
        drop(pending);
        // The registration stays, disarmed by its one event: none comes until `start_read`
        // re-arms it, and closing the socket removes it. Deleting it here would put a system
        // call between the client's close and the handler's wake-up.
        drop(p.socket);
        p.done.complete(outcome);
    }

    /// Starts a background read of one byte from `socket`, registered under `key`; `done`
    /// gets its one outcome.
    pub fn start_read(&self, key: u64, socket: Arc<P::Socket>, done: BackgroundRead) {
        let mut pending = self.lock();
        if self.stopping.load(Ordering::Acquire) {
            drop(pending);
            return done.complete(BackgroundOutcome::Aborted);
        }
        // Registered after the insert and outside the lock, which the watcher thread takes
        // for every event: no event can come for `key` before the registration.
        pending.insert(
            key,
            Pending {
                socket: socket.clone(),
                done,
            },
        );
        drop(pending);
        let registered = match self.poller.add(key, &socket) {
            //= SPEC.md#transport-contract
            //# A background read started on a socket whose earlier background read completed MUST re-arm the socket's readiness registration.
            // Left disarmed by a completed read, or by a read interrupted between its insert
            // and its registration: re-arm it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if cfg!(hijack_mutant = "watcher_skips_rearm") {
                    Ok(())
                } else {
                    self.poller.modify(key, &socket)
                }
            }
            other => other,
        };
        if let Err(e) = registered {
            // Unless an interrupt (or the watcher stopping) completed it meanwhile.
            let removed = self.lock().remove(&key);
            if let Some(p) = removed {
                drop(p.socket);
                p.done.complete(BackgroundOutcome::Error(e));
            }
        }
    }

    /// Interrupts the background read under `key`, if one is pending: it completes with
    /// [`BackgroundOutcome::Aborted`] on this thread. Does nothing if it already completed.
    pub fn interrupt(&self, key: u64) {
        let removed = self.lock().remove(&key);
        if let Some(p) = removed {
            self.poller.delete(&p.socket);
            drop(p.socket);
            p.done.complete(BackgroundOutcome::Aborted);
        }
    }

    /// Background reads pending now.
    pub fn pending_reads(&self) -> usize {
        self.lock().len()
    }
}
