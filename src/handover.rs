//! The hijack handover (SPEC.md#hijack-handover): the steps that take a connection away
//! from the server, and what the hijacker receives.
//!
//! It owns [`Handover`], [`ConnProbe`] and the hijack steps (`Conn::hijack`, called only by
//! [`crate::response::ResponseWriter::hijack`]): flush what the handler wrote, stop the
//! background read, discard the rest of the body if a head was written, clear the deadlines,
//! and hand over the stream with every byte the server read but nobody consumed. It never
//! runs a handler, and after the handover nothing of the server touches the stream.

use std::any::Any;
use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::conn::{Conn, hijacked_error};
use crate::limits::WRITE_BUFFER;
use crate::state::ConnEvent;
#[cfg(hijack_mutant = "keep_conn_after_exit")]
use crate::sync::Arc;
use crate::sync::Weak;
use crate::transport::Transport;

impl<T: Transport> Conn<T> {
    //= SPEC.md#hijack-handover
    //# The hijack MUST flush everything the handler wrote before it returns the parts, so that
    //# the client receives it before any byte the hijacker writes.
    /// Takes the connection over for [`crate::response::ResponseWriter::hijack`], whose
    /// header map is `headers` (taken only once the head is to be written).
    pub(crate) fn hijack(&self, headers: &mut HeaderMap) -> io::Result<Handover<T::Stream>> {
        let mut read = self.read.lock();
        let (status_set, continue_unsent) = {
            let mut w = self.write.lock();
            w.expect.cancel();
            (w.status_set, w.expect.unsent())
        };
        // From here no background read starts, and a pending one has completed.
        match self.transport.read().as_ref() {
            Some(t) => self.reader.hijack(t),
            None => return Err(hijacked_error()),
        }
        // The seeded bug of the kill matrix: the held byte taken before the discard.
        let early_byte = if cfg!(hijack_mutant = "take_byte_before_discard") {
            self.reader.take_background_byte()
        } else {
            None
        };
        //= SPEC.md#hijack-handover
        //# If the handler wrote a response head before hijacking, the server MUST read
        //# and discard the rest of the request body before the handover.
        if status_set
            && !continue_unsent
            && !read.body_ended
            && !self.discard_body(&mut read, self.config.max_discard_bytes)
        {
            // The head is not on the wire yet: the server answers 500 and closes.
            let mut w = self.write.lock();
            w.status = StatusCode::INTERNAL_SERVER_ERROR;
            w.close_after = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body could not be discarded before the upgrade",
            ));
        }
        let mut w = self.write.lock();
        if status_set {
            let headers = std::mem::take(headers);

            w.commit_if_needed(&headers);
            self.flush_wire(&mut w)?;
        }
        let mut transport = self.transport.write();
        let Some(t) = transport.as_ref() else {
            return Err(hijacked_error());
        };
        //= SPEC.md#hijack-handover
        //# The handed-over stream MUST have no read or write deadline set.
        if !cfg!(hijack_mutant = "keep_deadlines") {
            let _ = t.set_read_deadline(None);
            let _ = t.set_write_deadline(None);
        }
        // After the discard: a held byte may have been the body's next byte.
        let background_byte = early_byte.or_else(|| self.reader.take_background_byte());
        self.reader.hand_over();

        //= SPEC.md#hijack-handover
        //# The handed-over bytes MUST be exactly the bytes the client sent after what the
        //# handler consumed that the server has read, in wire order: the read buffer, then
        //# the background byte.
        // Copied out at its exact size: the read buffer goes back to the pool rather than
        // being kept, 4 KiB and mostly empty, by every hijacked connection.
        let mut copy = Vec::with_capacity(read.buf.len() + usize::from(background_byte.is_some()));
        copy.extend_from_slice(&read.buf);
        copy.extend(background_byte);
        read.buf.clear();
        //= SPEC.md#hijack-handover
        //# The handed-over write buffer MUST be the connection's own write buffer, emptied,
        //# not a new allocation.
        let mut write_buf = if cfg!(hijack_mutant = "fresh_write_buffer") {
            BytesMut::with_capacity(WRITE_BUFFER)
        } else {
            std::mem::take(&mut w.buf)
        };
        write_buf.clear();
        let stream = match transport.take() {
            Some(t) => t.into_stream()?,
            None => return Err(hijacked_error()),
        };
        drop((transport, w, read));
        self.transition(ConnEvent::Hijack);
        Ok(Handover {
            stream,
            buffered: Bytes::from(copy),
            write_buf,
            #[cfg(hijack_mutant = "keep_conn_after_exit")]
            _retained: self.weak_any().upgrade(),
            #[cfg(hijack_mutant = "parts_keep_reader")]
            _reader: self.reader.clone(),
        })
    }
}

/// What a hijacker receives: the stream, the bytes the server read that nobody consumed, and
/// the connection's (empty) write buffer. Holds no reference to server state.
///
/// `Read` on a `Handover` yields `buffered` first, then the stream; `Write` buffers into
/// `write_buf` and writes it to the stream on `flush` or when it is full.
#[derive(Debug)]
pub struct Handover<S> {
    /// The connection's stream, blocking, with no deadline set.
    pub stream: S,
    /// Every byte the server read from the stream that no one consumed, in wire order:
    /// unread body, pipelined or post-upgrade bytes, the background byte.
    pub buffered: Bytes,
    /// The connection's write buffer, empty, reused rather than newly allocated.
    pub write_buf: BytesMut,
    #[cfg(hijack_mutant = "keep_conn_after_exit")]
    _retained: Option<Arc<dyn Any + Send + Sync>>,
    #[cfg(hijack_mutant = "parts_keep_reader")]
    _reader: crate::sync::Arc<crate::conn_reader::ConnReader>,
}

impl<S: Read> Read for Handover<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buffered.is_empty() {
            let n = out.len().min(self.buffered.len());
            out[..n].copy_from_slice(&self.buffered[..n]);
            self.buffered.advance(n);
            return Ok(n);
        }
        self.stream.read(out)
    }
}

impl<S: Write> Write for Handover<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.write_buf.capacity().max(WRITE_BUFFER);
        if self.write_buf.len() + data.len() > room {
            self.flush()?;
        }
        if data.len() >= room {
            return self.stream.write(data);
        }
        self.write_buf.put_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.write_buf)?;
        self.write_buf.clear();
        self.stream.flush()
    }
}

/// Weak handles on a connection's server-side state, each allocation of it shared by
/// reference count: the connection (`Conn`, and through it the request's and response's state
/// and buffers) and its connection reader (the background read, the watch of latches, the
/// hijack's record), which a pending background read's completion also holds. See
/// [`crate::ResponseWriter::connection_probe`].
#[derive(Clone, Debug)]
pub struct ConnProbe(Vec<Weak<dyn Any + Send + Sync>>);

impl ConnProbe {
    /// Whether anything still holds any of the connection's state.
    pub fn is_alive(&self) -> bool {
        self.0.iter().any(|w| w.strong_count() > 0)
    }

    /// Whether the state is freed within `limit`: a background read's completion holds the
    /// connection reader until its call returns, a moment after the read ended (and after
    /// the abort that waited for it returned), so a check made right after `serve_connection`
    /// returned waits for that. Returns at once when nothing holds the state; a reference that
    /// stays is reported after `limit`.
    pub fn is_dead_within(&self, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        while self.is_alive() {
            if start.elapsed() > limit {
                return false;
            }
            spins += 1;
            if spins < 1000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        true
    }
}

impl<T: Transport> Conn<T> {
    /// Weak handles on this connection's state; see [`ConnProbe`].
    pub(crate) fn probe(&self) -> ConnProbe {
        let reader: Weak<crate::conn_reader::ConnReader> =
            crate::sync::Arc::downgrade(&self.reader);
        ConnProbe(vec![self.weak_any(), reader])
    }

    pub(crate) fn weak_any(&self) -> Weak<dyn Any + Send + Sync> {
        let weak: Weak<Conn<T>> = self.me();
        weak
    }
}
