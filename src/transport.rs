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
    /// A completion that calls `done` with the outcome (the core's, or a model's).
    pub fn new(done: impl FnOnce(BackgroundOutcome) + Send + 'static) -> Self {
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

    /// Closes both directions: the server is done with the connection. May wait a little
    /// for the client to read the last response (see [`crate::tcp`]).
    fn close(&self);

    /// Closes both directions at once, without waiting: an idle connection at server
    /// shutdown, with no response in flight. Defaults to [`Transport::close`].
    fn shutdown(&self) {
        self.close()
    }

    /// Gives the stream to a hijacker. Called once, after any background read completed.
    fn into_stream(self) -> io::Result<Self::Stream>;
}

/// Checks of the transport contract, run against every transport of the crate.
#[cfg(all(test, not(loom)))]
pub(crate) mod contract {
    use std::sync::Arc;
    use std::sync::mpsc::{Receiver, channel};
    use std::time::{Duration, Instant};

    use super::{BackgroundOutcome, BackgroundRead, Transport};

    const GUARD: Duration = Duration::from_secs(10);

    fn start<T: Transport>(t: &Arc<T>) -> Receiver<BackgroundOutcome> {
        let (tx, rx) = channel();
        t.start_background_read(BackgroundRead::new(move |outcome| {
            let _ = tx.send(outcome);
        }));
        rx
    }

    fn read_exact<T: Transport>(t: &T, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut at = 0;
        while at < n {
            let k = t.read(&mut out[at..]).unwrap();
            assert!(k > 0, "stream ended early");
            at += k;
        }
        out
    }

    //= SPEC.md#transport-contract
    //= type=test
    //# A transport's background read MUST take at most one byte from the stream and MUST report exactly one outcome: the byte, end of stream, an error, or aborted.
    pub(crate) fn takes_one_byte_and_reports_once<T: Transport>(t: Arc<T>, send: impl Fn(&[u8])) {
        send(b"ab");
        let rx = start(&t);
        assert!(matches!(
            rx.recv_timeout(GUARD).unwrap(),
            BackgroundOutcome::Byte(b'a')
        ));
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "a second outcome"
        );
        assert_eq!(read_exact(&*t, 1), b"b");
    }

    //= SPEC.md#transport-contract
    //= type=test
    //# A background read MUST ignore the read deadline.
    pub(crate) fn ignores_the_read_deadline<T: Transport>(t: Arc<T>, send: impl Fn(&[u8])) {
        t.set_read_deadline(Some(Instant::now())).unwrap();
        let rx = start(&t);
        std::thread::sleep(Duration::from_millis(30));
        send(b"x");
        assert!(matches!(
            rx.recv_timeout(GUARD).unwrap(),
            BackgroundOutcome::Byte(b'x')
        ));
        t.set_read_deadline(None).unwrap();
    }

    //= SPEC.md#transport-contract
    //= type=test
    //# Interrupting a background read MUST make it complete promptly whether or not any byte arrives, and MUST NOT close the stream or take a byte that it does not report.
    //
    //= SPEC.md#transport-contract
    //= type=test
    //# The interrupt MUST NOT depend on a clock.
    pub(crate) fn interrupt_completes_without_taking_a_byte<T: Transport>(
        t: Arc<T>,
        send: impl Fn(&[u8]),
    ) {
        // No deadline is set anywhere: the interrupt alone must end the read.
        let rx = start(&t);
        std::thread::sleep(Duration::from_millis(20));
        t.interrupt_background_read();
        assert!(matches!(
            rx.recv_timeout(GUARD).unwrap(),
            BackgroundOutcome::Aborted
        ));
        send(b"y");
        assert_eq!(
            read_exact(&*t, 1),
            b"y",
            "the stream is open and the byte still in it"
        );
        // Interrupting with nothing pending changes nothing.
        t.interrupt_background_read();
        let rx = start(&t);
        send(b"z");
        assert!(matches!(
            rx.recv_timeout(GUARD).unwrap(),
            BackgroundOutcome::Byte(b'z')
        ));
    }

    //= SPEC.md#transport-contract
    //= type=test
    //# A transport MUST NOT call a completion while it holds a lock that its interrupt takes.
    pub(crate) fn completion_may_call_the_interrupt<T: Transport>(t: Arc<T>, send: impl Fn(&[u8])) {
        for interrupt in [false, true] {
            let (tx, rx) = channel();
            let again = t.clone();
            t.start_background_read(BackgroundRead::new(move |outcome| {
                again.interrupt_background_read(); // deadlocks if called under the lock
                let _ = tx.send(outcome);
            }));
            if interrupt {
                t.interrupt_background_read();
            } else {
                send(b"q");
            }
            match rx.recv_timeout(GUARD).expect("completion deadlocked") {
                BackgroundOutcome::Byte(b'q') | BackgroundOutcome::Aborted => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }
}
