//! An in-memory duplex byte stream built only on the sync facade, so loom models, property
//! tests and fuzz targets drive the real serving code without sockets.
//!
//! [`pipe`] returns two [`PipeEnd`]s. Either end reads, writes, half-closes ([`PipeEnd::shutdown_write`]),
//! resets ([`PipeEnd::reset`]) or closes. Writes never block (the buffer grows), so a test's
//! client can send everything up front and replay a failing case exactly.
//! The server end implements [`Transport`]; it is also what a hijacker receives.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::transport::{BackgroundOutcome, BackgroundRead, Transport};

/// One direction of the pipe.
#[derive(Debug, Default)]
struct Direction {
    data: VecDeque<u8>,
    /// The writer half-closed: readers get end of stream once `data` is drained.
    write_closed: bool,
    /// The peer reset: readers get `ConnectionReset` and pending data is dropped.
    reset: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Index 0 carries bytes written by end 0 (the client), index 1 those of end 1.
    dirs: [Direction; 2],
    read_deadline: [Option<Instant>; 2],
    write_deadline: [Option<Instant>; 2],
    /// Set by `interrupt_background_read`, cleared when a background read starts.
    background_interrupted: bool,
    background_reads: u64,
    /// A background read of end `i` that found nothing to take when it started: completed by
    /// whichever call makes it ready (a write, half-close, reset, close or interrupt), on that
    /// caller's thread once the lock is released. A pending read costs no thread.
    pending: [Option<BackgroundRead>; 2],
}

impl State {
    /// Takes the pending background reads that can complete now, with their outcomes.
    fn ready_reads(&mut self) -> [Option<(BackgroundRead, BackgroundOutcome)>; 2] {
        let mut ready = [None, None];
        for (side, slot) in ready.iter_mut().enumerate() {
            if self.pending[side].is_none() {
                continue;
            }
            let outcome = if self.background_interrupted {
                BackgroundOutcome::Aborted
            } else {
                let mut byte = [0u8; 1];
                match try_read(self, side, &mut byte) {
                    Poll::Ready(Ok(1)) => BackgroundOutcome::Byte(byte[0]),
                    Poll::Ready(Ok(_)) => BackgroundOutcome::Eof,
                    Poll::Ready(Err(e)) => BackgroundOutcome::Error(e),
                    Poll::Pending => continue,
                }
            };
            if let Some(done) = self.pending[side].take() {
                *slot = Some((done, outcome));
            }
        }
        ready
    }
}

/// Releases the lock, wakes waiters, then completes the background reads that became ready:
/// never under the lock, which `interrupt_background_read` takes.
fn release(shared: &Shared, mut state: MutexGuard<'_, State>) {
    let ready = if state.pending.iter().any(Option::is_some) {
        state.ready_reads()
    } else {
        [None, None]
    };
    drop(state);
    shared.changed.notify_all();
    for (done, outcome) in ready.into_iter().flatten() {
        done.complete(outcome);
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// One end of an in-memory duplex stream.
#[derive(Debug)]
pub struct PipeEnd {
    shared: Arc<Shared>,
    side: usize,
}

/// Creates a connected pair: `(client, server)`.
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let shared = Arc::new(Shared::default());
    (
        PipeEnd {
            shared: shared.clone(),
            side: 0,
        },
        PipeEnd { shared, side: 1 },
    )
}

enum Poll {
    Ready(io::Result<usize>),
    Pending,
}

impl PipeEnd {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock()
    }

    fn try_read(&self, state: &mut State, buf: &mut [u8]) -> Poll {
        try_read(state, self.side, buf)
    }

    /// Reads into `buf`, blocking until data, end of stream, reset or the read deadline.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        loop {
            if let Poll::Ready(result) = self.try_read(&mut state, buf) {
                return result;
            }
            state = match state.read_deadline[self.side] {
                None => self.shared.changed.wait(state),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    self.shared.changed.wait_timeout(state, deadline - now)
                }
            };
        }
    }

    /// Appends `buf` to the peer's incoming bytes. Fails with `BrokenPipe` once this end
    /// shut down writing or closed, and with `ConnectionReset` once either end reset.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let side = self.side;
        if state.dirs[side].reset || state.dirs[1 - side].reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if state.dirs[side].write_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        state.dirs[side].data.extend(buf);
        release(&self.shared, state);
        Ok(buf.len())
    }

    /// Writes all of `buf`.
    pub fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.write(buf).map(drop)
    }

    /// Half-closes: the peer reads end of stream after the bytes already written.
    pub fn shutdown_write(&self) {
        let mut state = self.lock();
        state.dirs[self.side].write_closed = true;
        release(&self.shared, state);
    }

    /// Resets the stream: both ends' pending bytes are dropped; reads and writes fail.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.dirs[self.side].reset = true;
        state.dirs[self.side].data.clear();
        state.dirs[1 - self.side].data.clear();
        release(&self.shared, state);
    }

    /// Reads until end of stream (or an error, which ends the bytes collected).
    pub fn read_to_end(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Reads exactly `n` bytes, or fewer if the stream ends first.
    pub fn read_exact_or_eof(&self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            match self.read(&mut out[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => filled += k,
            }
        }
        out.truncate(filled);
        out
    }

    /// Whether this end has shut down writing (closed, from the peer's view).
    pub fn is_write_closed(&self) -> bool {
        self.lock().dirs[self.side].write_closed
    }

    /// The deadlines this end has set: `(read, write)`.
    pub fn deadlines(&self) -> (Option<Instant>, Option<Instant>) {
        let state = self.lock();
        (
            state.read_deadline[self.side],
            state.write_deadline[self.side],
        )
    }

    /// How many background reads this end has started (a test's witness for Go #18535).
    pub fn background_reads_started(&self) -> u64 {
        self.lock().background_reads
    }

    /// How many bytes this end wrote that the peer has not read yet.
    pub fn peer_unread_len(&self) -> usize {
        self.lock().dirs[self.side].data.len()
    }

    /// How many bytes the peer wrote that this end has not read yet.
    pub fn unread_len(&self) -> usize {
        self.lock().dirs[1 - self.side].data.len()
    }
}

/// Reads what the peer of `side` wrote: data first, then end of stream or reset.
fn try_read(state: &mut State, side: usize, buf: &mut [u8]) -> Poll {
    if state.dirs[1 - side].reset || state.dirs[side].reset {
        return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
    }
    let dir = &mut state.dirs[1 - side];
    if !dir.data.is_empty() {
        let n = buf.len().min(dir.data.len());
        for (slot, byte) in buf.iter_mut().zip(dir.data.drain(..n)) {
            *slot = byte;
        }
        return Poll::Ready(Ok(n));
    }
    if dir.write_closed || buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    Poll::Pending
}

impl io::Read for PipeEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        PipeEnd::read(self, buf)
    }
}

impl io::Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        PipeEnd::write(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for PipeEnd {
    type Stream = PipeEnd;

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        PipeEnd::read(self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        PipeEnd::write(self, buf)
    }

    fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.lock().read_deadline[self.side] = deadline;
        self.shared.changed.notify_all();
        Ok(())
    }

    fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.lock().write_deadline[self.side] = deadline;
        Ok(())
    }

    fn start_background_read(&self, done: BackgroundRead) {
        {
            let mut state = self.lock();
            state.background_interrupted = false;
            state.background_reads += 1;
            // Nothing to take yet: the call that changes that completes the read, so no
            // thread waits. (Loom models keep the thread: its race with an abort is what
            // they model. A read that can complete at once keeps it too, so it still races
            // with the handler as a socket's would.)
            let side = self.side;
            let (incoming, reset) = (&state.dirs[1 - side], state.dirs[side].reset);
            if !cfg!(loom)
                && !reset
                && !incoming.reset
                && incoming.data.is_empty()
                && !incoming.write_closed
            {
                state.pending[side] = Some(done);
                return;
            }
        }
        let (shared, side) = (self.shared.clone(), self.side);
        crate::sync::thread::spawn(move || {
            let outcome = background_read(&shared, side);
            drop(shared);
            done.complete(outcome);
        });
    }

    fn interrupt_background_read(&self) {
        let mut state = self.lock();
        state.background_interrupted = true;
        release(&self.shared, state);
    }

    fn close(&self) {
        let mut state = self.lock();
        state.dirs[self.side].write_closed = true;
        // Bytes the peer sent that we never read are dropped, as a closed socket drops them.
        state.dirs[1 - self.side].data.clear();
        state.dirs[1 - self.side].write_closed = true;
        release(&self.shared, state);
    }

    fn into_stream(self) -> io::Result<PipeEnd> {
        Ok(self)
    }
}

/// The one-byte read `start_background_read` runs on its own thread.
fn background_read(shared: &Shared, side: usize) -> BackgroundOutcome {
    let mut state = shared.state.lock();
    loop {
        if state.background_interrupted {
            return BackgroundOutcome::Aborted;
        }
        let mut byte = [0u8; 1];
        match try_read(&mut state, side, &mut byte) {
            Poll::Ready(Ok(1)) => return BackgroundOutcome::Byte(byte[0]),
            Poll::Ready(Ok(_)) => return BackgroundOutcome::Eof,
            Poll::Ready(Err(e)) => return BackgroundOutcome::Error(e),
            Poll::Pending => state = shared.changed.wait(state),
        }
    }
}

impl Drop for PipeEnd {
    /// Dropping an end closes it, as closing a socket does.
    fn drop(&mut self) {
        Transport::close(self);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sync::Arc;
    use crate::transport::contract;

    fn pair() -> (Arc<super::PipeEnd>, impl Fn(&[u8])) {
        let (client, server) = super::pipe();
        (Arc::new(server), move |bytes: &[u8]| {
            client.write_all(bytes).unwrap()
        })
    }

    #[test]
    fn pipe_background_read_takes_one_byte_and_reports_once() {
        let (t, send) = pair();
        contract::takes_one_byte_and_reports_once(t, send);
    }

    #[test]
    fn pipe_background_read_ignores_the_read_deadline() {
        let (t, send) = pair();
        contract::ignores_the_read_deadline(t, send);
    }

    #[test]
    fn pipe_interrupt_completes_without_taking_a_byte() {
        let (t, send) = pair();
        contract::interrupt_completes_without_taking_a_byte(t, send);
    }

    #[test]
    fn pipe_completion_may_call_the_interrupt() {
        let (t, send) = pair();
        contract::completion_may_call_the_interrupt(t, send);
    }
}
