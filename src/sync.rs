//! The one synchronization facade of the core: std normally, loom under `--cfg loom`.
//!
//! Library code takes Mutex, Condvar, RwLock, atomics and thread spawns only from here, so that
//! the models in `model/` run the served code unchanged. It owns no state of its own.
//! `Arc`/`Weak` are std's under both configurations: loom has no `Weak`, and reference counts
//! are not among the races we model (leaks are checked with `Weak` probes instead).

pub(crate) use std::sync::{Arc, Weak};

#[cfg(loom)]
pub(crate) use loom::{sync::atomic, thread};
#[cfg(not(loom))]
pub(crate) use std::{sync::atomic, thread};

#[cfg(loom)]
use loom::sync as imp;
#[cfg(not(loom))]
use std::sync as imp;

pub(crate) use imp::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// A mutex whose `lock` returns the guard: a panic while holding it does not poison it,
/// because every critical section of the core leaves its state consistent before it can panic.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    /// `const` under std, so that a process-wide pool can be a `static`; loom's is not.
    #[cfg(not(loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    #[cfg(loom)]
    pub(crate) fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A condition variable paired with [`Mutex`]; `wait` returns the guard.
#[derive(Debug, Default)]
pub(crate) struct Condvar(imp::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        Self(imp::Condvar::new())
    }

    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits at most `timeout`; loom has no clock, so there this is a plain `wait`.
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        #[cfg(loom)]
        {
            let _ = timeout;
            self.wait(guard)
        }
        #[cfg(not(loom))]
        {
            match self.0.wait_timeout(guard, timeout) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            }
        }
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all()
    }
}

/// A reader-writer lock whose guards are returned directly, as with [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(imp::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(imp::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
