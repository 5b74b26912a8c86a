//! The transport contract: the byte stream one connection serves (SPEC.md#transport-contract).
//!
//! The core needs blocking reads and writes, deadlines, and one thing plain sockets do not
//! give directly: a one-byte *background read* that another thread can interrupt without
//! consuming a byte or closing the stream (Go's "read deadline in the past"). This module
//! owns the trait only; [`crate::pipe`] and [`crate::tcp`] implement it.

use std::fmt;
use std::io;
use std::time::Instant;

/// How a background read ended. The transport reports exactly one per started read.
#[derive(Debug)]
pub enum BackgroundOutcome {
    /// One byte arrived and was consumed from the stream; the core keeps it.
    Byte(u8),
    /// The peer half-closed its sending side (or closed).
    Eof,
    /// The read failed (reset, or any other error).
    Error(io::Error),
    /// [`Transport::interrupt_background_read`] stopped the read before it took a byte.
    Aborted,
}

/// The completion of a background read: call [`BackgroundRead::complete`] exactly once.
pub struct BackgroundRead(Box<dyn FnOnce(BackgroundOutcome) + Send>);

impl BackgroundRead {
    pub(crate) fn new(done: impl FnOnce(BackgroundOutcome) + Send + 'static) -> Self {
        Self(Box::new(done))
    }

    /// Reports how the read ended. May run on any thread; must not be called while the
    /// transport holds a lock that [`Transport::interrupt_background_read`] takes.
    pub fn complete(self, outcome: BackgroundOutcome) {
        (self.0)(outcome)
    }
}

impl fmt::Debug for BackgroundRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackgroundRead")
    }
}

/// A connection's byte stream, as the core drives it.
///
/// All methods take `&self`: the serving thread reads and writes while a background read may
/// be pending elsewhere. The core guarantees that a foreground read never overlaps a
/// background read, and that at most one background read is pending.
pub trait Transport: Send + Sync + 'static {
    /// What a hijacker receives: the same stream, blocking, with no deadline set.
    type Stream: io::Read + io::Write + Send + 'static;

    /// Reads into `buf`, blocking until at least one byte, end of stream (`Ok(0)`), the read
    /// deadline (`ErrorKind::TimedOut`) or an error.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes from `buf`, blocking until at least one byte is written, the write deadline
    /// passes (`ErrorKind::TimedOut`) or an error.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Sets (or with `None` clears) the time after which foreground reads fail.
    fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()>;

    /// Sets (or with `None` clears) the time after which writes fail.
    fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()>;

    /// Starts a one-byte read that completes in the background, reporting through `done`.
    /// The read ignores the read deadline; it ends only with a byte, end of stream, an error
    /// or an interrupt.
    fn start_background_read(&self, done: BackgroundRead);

    /// Makes the pending background read, if any, complete promptly. A byte it has not yet
    /// taken stays in the stream; one it already took is reported as [`BackgroundOutcome::Byte`].
    /// Called without any lock of the core held, so `done` may run on the calling thread.
    fn interrupt_background_read(&self);

    /// Closes both directions: the server is done with the connection.
    fn close(&self);

    /// Gives the stream to a hijacker. Called once, after any background read completed.
    fn into_stream(self) -> io::Result<Self::Stream>;
}
