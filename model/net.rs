//! The modelled system calls of the TCP path: a readiness source for the core's watcher
//! ([`Net`], its [`Poller`]) and a listener for the core's server ([`Backlog`], its
//! [`Listener`]). They stand in for epoll, sockets and `accept`; the watcher's and the
//! server's logic run unchanged on top. Everything here is loom's Mutex and Condvar.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io;

use hijack::pipe::{PipeEnd, pipe};
use hijack::transport::{BackgroundOutcome, BackgroundRead};
use hijack::watcher::{Poller, Recv};
use loom::sync::{Arc, Condvar, Mutex};

/// One socket's receive side.
#[derive(Default)]
struct Socket {
    bytes: VecDeque<u8>,
    eof: bool,
}

/// A one-shot registration, as epoll's with `EPOLLONESHOT`: one event disarms it.
struct Registration {
    key: u64,
    armed: bool,
}

#[derive(Default)]
struct State {
    sockets: Vec<Socket>,
    registrations: HashMap<usize, Registration>,
    woken: bool,
}

/// The modelled network: sockets' receive buffers and the readiness registrations on them.
#[derive(Clone, Default)]
pub struct Net(Arc<(Mutex<State>, Condvar)>);

/// A socket of [`Net`], as the watcher holds it.
#[derive(Debug)]
pub struct Sock(usize);

impl Net {
    pub fn new() -> Net {
        Net::default()
    }

    fn state(&self) -> loom::sync::MutexGuard<'_, State> {
        self.0.0.lock().unwrap()
    }

    /// A new socket (the server's end of an accepted connection).
    pub fn socket(&self) -> std::sync::Arc<Sock> {
        let mut state = self.state();
        state.sockets.push(Socket::default());
        std::sync::Arc::new(Sock(state.sockets.len() - 1))
    }

    /// The client sends `bytes`.
    pub fn send(&self, sock: &Sock, bytes: &[u8]) {
        self.state().sockets[sock.0].bytes.extend(bytes);
        self.0.1.notify_all();
    }

    /// The client half-closes.
    pub fn close(&self, sock: &Sock) {
        self.state().sockets[sock.0].eof = true;
        self.0.1.notify_all();
    }

    /// The bytes still unread in `sock`.
    pub fn unread(&self, sock: &Sock) -> Vec<u8> {
        self.state().sockets[sock.0].bytes.iter().copied().collect()
    }
}

impl Poller for Net {
    type Socket = Sock;

    fn add(&self, key: u64, sock: &Sock) -> io::Result<()> {
        let mut state = self.state();
        if state.registrations.contains_key(&sock.0) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        state
            .registrations
            .insert(sock.0, Registration { key, armed: true });
        drop(state);
        self.0.1.notify_all();
        Ok(())
    }

    fn modify(&self, key: u64, sock: &Sock) -> io::Result<()> {
        let mut state = self.state();
        let registration = state
            .registrations
            .get_mut(&sock.0)
            .ok_or(io::ErrorKind::NotFound)?;
        *registration = Registration { key, armed: true };
        drop(state);
        self.0.1.notify_all();
        Ok(())
    }

    fn delete(&self, sock: &Sock) {
        self.state().registrations.remove(&sock.0);
    }

    fn wait(&self, ready: &mut Vec<u64>) -> io::Result<()> {
        let mut state = self.state();
        loop {
            let State {
                sockets,
                registrations,
                woken,
            } = &mut *state;
            for (sock, registration) in registrations.iter_mut() {
                let socket = &sockets[*sock];
                if registration.armed && (socket.eof || !socket.bytes.is_empty()) {
                    registration.armed = false;
                    ready.push(registration.key);
                }
            }
            if std::mem::take(woken) || !ready.is_empty() {
                return Ok(());
            }
            state = self.0.1.wait(state).unwrap();
        }
    }

    fn wake(&self) {
        self.state().woken = true;
        self.0.1.notify_all();
    }

    fn recv_byte(&self, sock: &Sock) -> Recv {
        let mut state = self.state();
        let socket = &mut state.sockets[sock.0];
        match socket.bytes.pop_front() {
            Some(b) => Recv::Byte(b),
            None if socket.eof => Recv::Eof,
            None => Recv::WouldBlock,
        }
    }
}

/// How a background read ended, as the models compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    Byte(u8),
    Eof,
    Error,
    Aborted,
}

/// A value one thread puts and another waits for.
pub struct Latch<T>(Arc<(Mutex<Option<T>>, Condvar)>);

impl<T> Clone for Latch<T> {
    fn clone(&self) -> Self {
        Latch(self.0.clone())
    }
}

impl<T> Latch<T> {
    pub fn new() -> Latch<T> {
        Latch(Arc::new((Mutex::new(None), Condvar::new())))
    }

    /// Puts the value; a second put is a bug of the code under test.
    pub fn put(&self, value: T) {
        let mut slot = self.0.0.lock().unwrap();
        assert!(slot.is_none(), "put twice");
        *slot = Some(value);
        self.0.1.notify_all();
    }

    /// Waits for the value and takes it.
    pub fn wait(&self) -> T {
        let mut slot = self.0.0.lock().unwrap();
        loop {
            if let Some(value) = slot.take() {
                return value;
            }
            slot = self.0.1.wait(slot).unwrap();
        }
    }
}

impl Latch<Got> {
    /// A background read's completion that puts its outcome here.
    pub fn completion(&self) -> BackgroundRead {
        let latch = self.clone();
        BackgroundRead::new(move |outcome| {
            latch.put(match outcome {
                BackgroundOutcome::Byte(b) => Got::Byte(b),
                BackgroundOutcome::Eof => Got::Eof,
                BackgroundOutcome::Error(_) => Got::Error,
                BackgroundOutcome::Aborted => Got::Aborted,
            })
        })
    }
}

#[derive(Default)]
struct Queue {
    conns: VecDeque<PipeEnd>,
    woken: bool,
    closed: bool,
}

/// A listening socket's backlog: the model connects, the server's accept loop accepts. Its
/// connections are in-memory pipes. Closing it drops the connections never accepted, as
/// closing a listener resets them.
#[derive(Clone, Default)]
pub struct Backlog(Arc<(Mutex<Queue>, Condvar)>);

impl Backlog {
    pub fn new() -> Backlog {
        Backlog::default()
    }

    /// A client connects: returns its end (closed at once if the listener is).
    pub fn connect(&self) -> PipeEnd {
        let (client, server) = pipe();
        let mut queue = self.0.0.lock().unwrap();
        if queue.closed {
            drop(queue);
            drop(server);
        } else {
            queue.conns.push_back(server);
            drop(queue);
            self.0.1.notify_all();
        }
        client
    }
}

impl hijack::Listener for Backlog {
    type Conn = PipeEnd;

    fn accept(&self) -> io::Result<Option<PipeEnd>> {
        let mut queue = self.0.0.lock().unwrap();
        loop {
            // The wake-up stays readable, as the server's eventfd does.
            if queue.woken {
                return Ok(None);
            }
            if let Some(conn) = queue.conns.pop_front() {
                return Ok(Some(conn));
            }
            queue = self.0.1.wait(queue).unwrap();
        }
    }

    fn wake(&self) {
        self.0.0.lock().unwrap().woken = true;
        self.0.1.notify_all();
    }

    fn close(&self) {
        let mut queue = self.0.0.lock().unwrap();
        queue.closed = true;
        let refused = std::mem::take(&mut queue.conns);
        drop(queue);
        drop(refused);
    }

    fn stop(&self) {}

    fn pending_background_reads(&self) -> usize {
        0
    }
}
