//! The connection reader: the one place that reads a connection's stream for the server, and
//! the background read, abort and release protocol (SPEC.md#background-read).
//!
//! It owns the background-read sub-state, the background byte, the connection's one record
//! of being hijacked ([`Hijack`]) and the running handler's close-notify latches, all under
//! one mutex. It never touches the request or response buffers, and after
//! [`ConnReader::release`] it holds no request or response state at all.

use std::io;

use crate::signal::{Fired, Watch};
use crate::state::{BackgroundEvent, BackgroundState, InvalidTransition};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::transport::{BackgroundOutcome, BackgroundRead, Transport};

/// How far a hijack has got: the one record of "hijacked" (SPEC.md#hijack-handover). The
/// transport slot of the connection is empty exactly from [`Hijack::HandedOver`] on, and the
/// lifecycle reports [`crate::state::ConnState::Hijacked`] once the handover succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hijack {
    /// No hijack began: the connection is the server's.
    Serving,
    /// A hijack began: no background read starts and the stream's end or error fires nothing.
    /// The hijack's own body discard still reads.
    Begun,
    /// The transport was taken out of the connection: every body read fails with
    /// [`crate::Hijacked`] and reads nothing.
    HandedOver,
}

#[derive(Debug)]
struct ReaderState {
    background: BackgroundState,
    /// The byte a background read caught: the first byte of whatever reads next.
    background_byte: Option<u8>,
    /// Moved on by the hijack: to `Begun` before it aborts, to `HandedOver` when it takes the
    /// transport.
    hijack: Hijack,
    /// The running handler's latches; `None` outside a handler (after release).
    watch: Option<Watch>,
    /// Aborts waiting for the pending read to complete: a completion wakes only when there
    /// are some (a wake-up is a system call; most completions have no one waiting).
    abort_waiters: usize,
}

impl ReaderState {
    /// A hijack began: the server starts no background read and the stream fires nothing.
    /// The seeded bug `read_after_hijack` never stops them.
    fn stopped_by_hijack(&self) -> bool {
        self.hijack != Hijack::Serving && !cfg!(hijack_mutant = "read_after_hijack")
    }
}

/// The reader under a connection's read buffer. See the module docs.
#[derive(Debug)]
pub(crate) struct ConnReader {
    state: Mutex<ReaderState>,
    /// Signalled whenever a background read completes.
    completed: Condvar,
}

impl ConnReader {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(ReaderState {
                background: BackgroundState::Off,
                background_byte: None,
                hijack: Hijack::Serving,
                watch: None,
                abort_waiters: 0,
            }),
            completed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ReaderState> {
        self.state.lock()
    }

    /// A handler starts: its latches are watched until [`ConnReader::release`].
    pub(crate) fn watch(&self, watch: Watch) {
        self.lock().watch = Some(watch);
    }

    //= SPEC.md#background-read
    //# A server MUST NOT have two background reads pending on one connection.
    /// Starts the one-byte background read unless a byte is already held, the connection is
    /// hijacked, or a read is already pending. `done` is called with the outcome; it must
    /// call [`ConnReader::complete`].
    pub(crate) fn start_background_read<T: Transport>(
        &self,
        transport: &T,
        done: impl FnOnce(BackgroundOutcome) + Send + 'static,
    ) -> Result<(), InvalidTransition> {
        let mut state = self.lock();
        //= SPEC.md#background-read
        //# A background read MUST NOT start while no handler runs.
        if state.watch.is_none() || state.background_byte.is_some() || state.stopped_by_hijack() {
            return Ok(());
        }
        if state.background == BackgroundState::Reading
            && !cfg!(hijack_mutant = "double_background_read")
        {
            return Ok(());
        }
        state.background = state.background.next(BackgroundEvent::Start)?;
        drop(state);
        transport.start_background_read(BackgroundRead::new(done));
        Ok(())
    }

    /// Records how the background read ended and wakes any abort waiting for it.
    pub(crate) fn complete(&self, outcome: BackgroundOutcome) {
        let mut state = self.lock();
        match state.background.next(BackgroundEvent::Complete) {
            Ok(next) => state.background = next,
            Err(e) => tracing::error!(error = %e, "background read completed twice"),
        }
        match outcome {
            //= SPEC.md#background-read
            //# A byte caught by the background read MUST be kept and MUST be the first byte
            //# of whatever reads the connection next.
            BackgroundOutcome::Byte(byte) => {
                if cfg!(hijack_mutant = "pipelined_fires_close_notify")
                    && let Some(watch) = &state.watch
                {
                    watch.client_gone();
                }
                state.background_byte = Some(byte);
            }
            BackgroundOutcome::Eof | BackgroundOutcome::Error(_) => {
                //= SPEC.md#close-notify
                //# End of stream or an error from the background read while the handler runs
                //# MUST fire close-notify and cancel the request.
                if let (Some(watch), false) = (&state.watch, state.stopped_by_hijack()) {
                    watch.client_gone();
                }
            }

            BackgroundOutcome::Aborted => {}
        }
        let waiters = state.abort_waiters > 0;
        drop(state);
        if waiters {
            self.completed.notify_all();
        }
    }

    //= SPEC.md#abort
    //# Abort MUST interrupt a pending background read and MUST NOT return before that read
    //# has completed.
    /// Interrupts a pending background read and waits until it completed. A byte it caught
    /// stays held.
    pub(crate) fn abort<T: Transport>(&self, transport: &T) {
        let mut state = self.lock();
        if state.background == BackgroundState::Off {
            return;
        }
        state.background = match state.background.next(BackgroundEvent::Abort) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "invalid abort");
                return;
            }
        };
        drop(state);
        // Without our lock: the transport may complete the read on this thread.
        transport.interrupt_background_read();
        if cfg!(hijack_mutant = "abort_without_wait") {
            return;
        }
        let mut state = self.lock();
        while state.background != BackgroundState::Off {
            state.abort_waiters += 1;
            state = self.completed.wait(state);
            state.abort_waiters -= 1;
        }
    }

    /// Marks the connection hijacked (no background read starts from now on), then aborts
    /// the pending one. A byte it caught stays held: the hijack's body discard may still
    /// need it, then [`ConnReader::take_background_byte`] hands it over.
    pub(crate) fn hijack<T: Transport>(&self, transport: &T) {
        if !cfg!(hijack_mutant = "read_after_hijack") {
            self.lock().hijack = Hijack::Begun;
        }
        self.abort(transport);
    }

    /// The hijack takes the transport out of the connection (under its write lock).
    pub(crate) fn hand_over(&self) {
        self.lock().hijack = Hijack::HandedOver;
    }

    /// Whether the transport was handed to a hijacker.
    pub(crate) fn handed_over(&self) -> bool {
        self.lock().hijack == Hijack::HandedOver
    }

    /// The held background byte, which now belongs to the hijacker.
    pub(crate) fn take_background_byte(&self) -> Option<u8> {
        let byte = self.lock().background_byte.take();
        if cfg!(hijack_mutant = "lose_background_byte") {
            return None;
        }
        byte
    }

    /// Reads for the server in the foreground: the background byte first, then the stream.
    /// End of stream or an error while a handler runs fires its close-notify.
    pub(crate) fn read<T: Transport>(&self, transport: &T, buf: &mut [u8]) -> io::Result<usize> {
        {
            let mut state = self.lock();
            if state.background != BackgroundState::Off {
                return Err(io::Error::other(
                    "foreground read while a background read is pending",
                ));
            }
            if let (Some(byte), Some(slot)) = (state.background_byte, buf.first_mut()) {
                *slot = byte;
                state.background_byte = None;
                return Ok(1);
            }
        }
        let result = transport.read(buf);
        if matches!(result, Ok(0) | Err(_)) && !buf.is_empty() {
            let state = self.lock();
            if let (Some(watch), false) = (&state.watch, state.stopped_by_hijack()) {
                watch.client_gone();
            }
        }

        result
    }

    /// A write to the client failed while the handler runs: cancel the request.
    pub(crate) fn write_failed(&self) {
        if let Some(watch) = &self.lock().watch {
            watch.cancel.fire(Fired::ClientGone);
        }
    }

    /// Fires the running handler's cancellation with `reason` (server shutdown).
    pub(crate) fn cancel(&self, reason: Fired) {
        if let Some(watch) = &self.lock().watch {
            watch.cancel.fire(reason);
        }
    }

    //= SPEC.md#release
    //# When the handler returns, the connection reader MUST drop every reference to the
    //# request's and response's state, and the close-notify handle MUST reach its terminal
    //# state.
    /// The handler returned: drop its latches after moving them to their terminal state, so
    /// nothing the stream does from now on reaches this request.
    pub(crate) fn release(&self) {
        let watch = self.lock().watch.take();
        if let Some(watch) = watch {
            watch.handler_done();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::ConnReader;
    use crate::pipe::{PipeEnd, pipe};
    use crate::signal::Watch;

    /// A reader watching a running handler, on a pipe whose client end is returned.
    fn running() -> (Arc<ConnReader>, PipeEnd, PipeEnd) {
        let reader = Arc::new(ConnReader::new());
        reader.watch(Watch::default());
        let (client, server) = pipe();
        (reader, client, server)
    }

    fn start(reader: &Arc<ConnReader>, server: &PipeEnd) {
        let r = reader.clone();
        reader
            .start_background_read(server, move |outcome| r.complete(outcome))
            .unwrap();
    }

    fn wait_until(mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    //= SPEC.md#background-read
    //= type=test
    //# A background read MUST NOT start while a byte caught by an earlier one is held.
    #[test]
    fn no_background_read_starts_while_a_caught_byte_is_held() {
        let (reader, client, server) = running();
        start(&reader, &server);
        client.write_all(b"ab").unwrap();
        wait_until(|| client.peer_unread_len() == 1 && reader.lock().background_byte.is_some());
        start(&reader, &server);
        assert_eq!(client.background_reads_started(), 1);
        assert_eq!(client.peer_unread_len(), 1, "no second byte was taken");
        let mut buf = [0u8; 4];
        assert_eq!(reader.read(&server, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'a', "the held byte reads first");
    }

    //= SPEC.md#background-read
    //= type=test
    //# A foreground read of the stream MUST NOT be issued while a background read is pending.
    #[test]
    fn a_foreground_read_fails_while_a_background_read_is_pending() {
        let (reader, client, server) = running();
        start(&reader, &server);
        let mut buf = [0u8; 4];
        assert!(reader.read(&server, &mut buf).is_err());
        reader.abort(&server);
        client.write_all(b"x").unwrap();
        assert_eq!(client.peer_unread_len(), 1, "the failed read took nothing");
        assert_eq!(reader.read(&server, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'x');
    }
}
