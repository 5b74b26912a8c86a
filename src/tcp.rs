//! TCP as a [`Transport`]: blocking reads and writes on the socket, and background reads
//! performed by one readiness watcher per server, so a pending background read costs no
//! thread and no polling (SPEC.md#transport-contract).
//!
//! The socket stays in blocking mode; the watcher reads with `MSG_DONTWAIT` once epoll says
//! the socket is readable. It owns the pending reads and nothing else; a hijacked stream
//! keeps no reference to it. The watcher's logic is [`crate::watcher`]; this module gives it
//! its system calls ([`Epoll`]). Linux only (epoll).

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, epoll};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex};
use crate::transport::{BackgroundRead, Transport};
use crate::watcher::{Poller, Recv};

/// The epoll key of the watcher's own wake-up descriptor.
const WAKE_KEY: u64 = u64::MAX;
/// How long `close` waits for the client to finish after our FIN (Go's rstAvoidanceDelay).
const LINGER: Duration = Duration::from_millis(500);

/// The TCP server's readiness watcher: [`crate::watcher::Watcher`] over epoll.
pub type Watcher = crate::watcher::Watcher<Epoll>;

/// The watcher's system calls on Linux: one epoll instance and an eventfd to wake it.
pub struct Epoll {
    epoll: OwnedFd,
    wake: OwnedFd,
}

impl std::fmt::Debug for Epoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoll").finish_non_exhaustive()
    }
}

impl Epoll {
    /// A new epoll instance with its wake-up descriptor registered.
    pub fn new() -> io::Result<Epoll> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            epoll::EventData::new_u64(WAKE_KEY),
            epoll::EventFlags::IN,
        )?;
        Ok(Epoll { epoll, wake })
    }
}

impl Watcher {
    /// Starts a watcher thread over a new epoll instance.
    pub fn start() -> io::Result<Arc<Watcher>> {
        Watcher::start_with(Epoll::new()?)
    }
}

fn interest() -> epoll::EventFlags {
    epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT
}

impl Poller for Epoll {
    type Socket = TcpStream;

    fn add(&self, key: u64, socket: &TcpStream) -> io::Result<()> {
        let data = epoll::EventData::new_u64(key);
        Ok(epoll::add(&self.epoll, socket.as_fd(), data, interest())?)
    }

    fn modify(&self, key: u64, socket: &TcpStream) -> io::Result<()> {
        let data = epoll::EventData::new_u64(key);
        Ok(epoll::modify(
            &self.epoll,
            socket.as_fd(),
            data,
            interest(),
        )?)
    }

    fn delete(&self, socket: &TcpStream) {
        let _ = epoll::delete(&self.epoll, socket.as_fd());
    }

    fn wait(&self, ready: &mut Vec<u64>) -> io::Result<()> {
        let mut buf = [MaybeUninit::<epoll::Event>::uninit(); 256];
        let events = match epoll::wait(&self.epoll, &mut buf, None) {
            Ok((events, _)) => events,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for event in events.iter() {
            let key = event.data.u64();
            if key == WAKE_KEY {
                let mut buf = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut buf);
            } else {
                ready.push(key);
            }
        }
        Ok(())
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn recv_byte(&self, socket: &TcpStream) -> Recv {
        let mut byte = [0u8; 1];
        match rustix::net::recv(socket.as_fd(), &mut byte, RecvFlags::DONTWAIT) {
            Ok((1, _)) => Recv::Byte(byte[0]),
            Ok(_) => Recv::Eof,
            Err(Errno::AGAIN | Errno::INTR) => Recv::WouldBlock,
            Err(e) => Recv::Error(e.into()),
        }
    }
}

/// A TCP connection as the server serves it.
#[derive(Debug)]
pub struct TcpConn {
    stream: Arc<TcpStream>,
    watcher: Arc<Watcher>,
    key: u64,
    read_deadline: Mutex<Option<Instant>>,
    write_deadline: Mutex<Option<Instant>>,
    /// Whether the socket has a read (write) timeout set now: without a deadline, reads and
    /// writes then make no `setsockopt` call.
    read_timeout_set: AtomicBool,
    write_timeout_set: AtomicBool,
}

impl TcpConn {
    /// Wraps an accepted stream; background reads go through `watcher`.
    pub fn new(stream: TcpStream, watcher: Arc<Watcher>) -> TcpConn {
        let key = watcher.new_key();
        TcpConn {
            stream: Arc::new(stream),
            watcher,
            key,
            read_deadline: Mutex::new(None),
            write_deadline: Mutex::new(None),
            read_timeout_set: AtomicBool::new(false),
            write_timeout_set: AtomicBool::new(false),
        }
    }
}

/// Sets the socket timeout `set_timeout` sets to `left`, unless both it and `left` are none.
fn apply_timeout(
    is_set: &AtomicBool,
    left: Option<Duration>,
    set_timeout: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if left.is_some() || is_set.load(Ordering::Acquire) {
        set_timeout(left)?;
        is_set.store(left.is_some(), Ordering::Release);
    }
    Ok(())
}

/// The time left until `deadline`, for a socket timeout; `Err(TimedOut)` once it passed.
fn time_left(deadline: &Mutex<Option<Instant>>) -> io::Result<Option<Duration>> {
    let deadline = *deadline.lock();
    match deadline {
        None => Ok(None),
        Some(at) => match at.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::ErrorKind::TimedOut.into()
    } else {
        e
    }
}

impl Transport for TcpConn {
    type Stream = TcpStream;

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let left = time_left(&self.read_deadline)?;
        apply_timeout(&self.read_timeout_set, left, |t| {
            self.stream.set_read_timeout(t)
        })?;
        (&*self.stream).read(buf).map_err(timed_out)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let left = time_left(&self.write_deadline)?;
        apply_timeout(&self.write_timeout_set, left, |t| {
            self.stream.set_write_timeout(t)
        })?;
        (&*self.stream).write(buf).map_err(timed_out)
    }

    fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        *self.read_deadline.lock() = deadline;
        if deadline.is_none() {
            apply_timeout(&self.read_timeout_set, None, |t| {
                self.stream.set_read_timeout(t)
            })?;
        }
        Ok(())
    }

    fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        *self.write_deadline.lock() = deadline;
        if deadline.is_none() {
            apply_timeout(&self.write_timeout_set, None, |t| {
                self.stream.set_write_timeout(t)
            })?;
        }
        Ok(())
    }

    fn start_background_read(&self, done: BackgroundRead) {
        self.watcher.start_read(self.key, self.stream.clone(), done);
    }

    fn interrupt_background_read(&self) {
        self.watcher.interrupt(self.key);
    }

    fn close(&self) {
        // Half-close first, then let the client read what we sent: closing with unread input
        // would send a reset that can destroy our last response at the client.
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self.stream.set_read_timeout(Some(LINGER));
        self.read_timeout_set.store(true, Ordering::Release);
        let deadline = Instant::now() + LINGER;
        let mut scratch = [0u8; 4096];
        let mut drained = 0usize;
        while Instant::now() < deadline && drained < (256 << 10) {
            match (&*self.stream).read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn into_stream(self) -> io::Result<TcpStream> {
        let stream = Arc::try_unwrap(self.stream)
            .map_err(|_| io::Error::other("background read still holds the stream"))?;
        apply_timeout(&self.read_timeout_set, None, |t| stream.set_read_timeout(t))?;
        apply_timeout(&self.write_timeout_set, None, |t| {
            stream.set_write_timeout(t)
        })?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::{TcpConn, Watcher};
    use crate::sync::{Arc, Mutex};
    use crate::transport::contract;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (Arc<TcpConn>, impl Fn(&[u8])) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let conn = TcpConn::new(server, Watcher::start().unwrap());
        let client = Mutex::new(client);
        (Arc::new(conn), move |bytes: &[u8]| {
            client.lock().write_all(bytes).unwrap()
        })
    }

    #[test]
    fn tcp_background_read_takes_one_byte_and_reports_once() {
        let (t, send) = pair();
        contract::takes_one_byte_and_reports_once(t, send);
    }

    #[test]
    fn tcp_background_read_ignores_the_read_deadline() {
        let (t, send) = pair();
        contract::ignores_the_read_deadline(t, send);
    }

    #[test]
    fn tcp_interrupt_completes_without_taking_a_byte() {
        let (t, send) = pair();
        contract::interrupt_completes_without_taking_a_byte(t, send);
    }

    #[test]
    fn tcp_completion_may_call_the_interrupt() {
        let (t, send) = pair();
        contract::completion_may_call_the_interrupt(t, send);
    }
}
