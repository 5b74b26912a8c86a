//! Close-notify and request cancellation handles (SPEC.md#close-notify).
//!
//! Each is a one-shot latch: it fires once, with the first reason, and then stays fired.
//! The connection reader holds the request's latches only while the handler runs; a handle
//! owns nothing but its request's two latches (one allocation for both), so a handle kept
//! after the handler returned keeps no connection, request or response state alive.

use std::fmt;
#[cfg(not(loom))]
use std::time::Duration;

use crate::sync::{Arc, Condvar, Mutex};

/// Why a [`CloseNotify`] or [`Cancellation`] fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fired {
    /// The client closed or reset the connection while the handler ran.
    ClientGone,
    /// The handler returned; nothing will be watched for this request any more.
    HandlerDone,
    /// The server is shutting down (cancellation only).
    Shutdown,
}

#[derive(Debug, Default)]
struct Latch {
    state: Mutex<LatchState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct LatchState {
    fired: Option<Fired>,
    /// Threads blocked in `wait`: firing wakes only when there are some, since a wake-up is
    /// a system call and most latches (every request's, at handler return) have no waiter.
    waiters: usize,
}

/// A request's two latches, allocated together: one allocation per request, not two.
#[derive(Debug, Default)]
struct Latches {
    close_notify: Latch,
    cancel: Latch,
}

impl Latch {
    /// Fires with `reason` unless already fired. Returns whether this call fired it.
    fn fire(&self, reason: Fired) -> bool {
        let mut state = self.state.lock();
        if state.fired.is_some() {
            return false;
        }
        state.fired = Some(reason);
        let waiters = state.waiters > 0;
        drop(state);
        if waiters {
            self.wake.notify_all();
        }
        true
    }

    fn get(&self) -> Option<Fired> {
        self.state.lock().fired
    }

    fn wait(&self) -> Fired {
        let mut state = self.state.lock();
        loop {
            if let Some(reason) = state.fired {
                return reason;
            }
            state.waiters += 1;
            state = self.wake.wait(state);
            state.waiters -= 1;
        }
    }

    #[cfg(not(loom))]
    fn wait_timeout(&self, timeout: Duration) -> Option<Fired> {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.state.lock();
        loop {
            if state.fired.is_some() {
                return state.fired;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            state.waiters += 1;
            state = self.wake.wait_timeout(state, deadline - now);
            state.waiters -= 1;
        }
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $latch:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default)]
        pub struct $name(Arc<Latches>);

        impl $name {
            /// Why it fired, or `None` while it has not.
            pub fn fired(&self) -> Option<Fired> {
                self.0.$latch.get()
            }

            /// Blocks until it fires and returns why.
            pub fn wait(&self) -> Fired {
                self.0.$latch.wait()
            }

            /// Blocks until it fires or `timeout` passes.
            #[cfg(not(loom))]
            pub fn wait_timeout(&self, timeout: Duration) -> Option<Fired> {
                self.0.$latch.wait_timeout(timeout)
            }

            pub(crate) fn fire(&self, reason: Fired) -> bool {
                self.0.$latch.fire(reason)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.fired()).finish()
            }
        }
    };
}

handle!(
    /// Fires once when the client closes or resets the connection while the handler runs
    /// ([`Fired::ClientGone`]), or, if that never happened, when the handler returns
    /// ([`Fired::HandlerDone`]). A pipelined byte does not fire it. After a hijack the server
    /// no longer watches the stream, so only the handler's return fires it.
    /// Clonable and `Send`; obtained from [`crate::ResponseWriter::close_notify`].
    CloseNotify,
    close_notify
);

handle!(
    /// The request's cancellation token: fires on client close ([`Fired::ClientGone`]),
    /// handler return ([`Fired::HandlerDone`]) or server shutdown ([`Fired::Shutdown`]),
    /// whichever comes first. Obtained from [`crate::Request::cancellation`].
    Cancellation,
    cancel
);

/// The latches of the request whose handler is running, as the connection reader holds them.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    pub(crate) close_notify: CloseNotify,
    pub(crate) cancel: Cancellation,
}

impl Default for Watch {
    fn default() -> Self {
        let latches = Arc::new(Latches::default());
        Watch {
            close_notify: CloseNotify(latches.clone()),
            cancel: Cancellation(latches),
        }
    }
}

impl Watch {
    /// The client went away while the handler runs.
    pub(crate) fn client_gone(&self) {
        self.close_notify.fire(Fired::ClientGone);
        self.cancel.fire(Fired::ClientGone);
    }

    /// The handler returned: both latches reach their terminal state, waking every waiter.
    pub(crate) fn handler_done(&self) {
        self.close_notify.fire(Fired::HandlerDone);
        self.cancel.fire(Fired::HandlerDone);
    }
}
