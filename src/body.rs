//! Request-body reading: the body reader's decode loop, the discard of an unread body, and
//! sending `100 Continue` when a body read first needs bytes (SPEC.md#serving-loop,
//! "Expect: 100-continue" and "Discard").
//!
//! It reads only through `Conn::fill`, so every byte still comes through the connection
//! reader; it never writes the stream except for the one `100 Continue`, and never decides
//! whether the connection stays open (the serving loop's) or hands over (the hijack's).

use std::io;

use crate::conn::{Conn, ReadSide, hijacked_error};
use crate::parse::{Decoded, Verdict};
use crate::request::BodySource;
use crate::transport::Transport;

impl<T: Transport> Conn<T> {
    /// Sends `100 Continue` if the request armed it and no response was started.
    pub(crate) fn send_continue(&self) {
        let mut w = self.write.lock();
        if !w.status_set && w.expect.send() {
            w.put_continue();
            let _ = self.flush_wire(&mut w);
        }
    }

    /// Reads and drops the rest of the request body, at most `limit` bytes.
    /// Returns whether the body ended within the limit.
    pub(crate) fn discard_body(&self, side: &mut ReadSide, limit: u64) -> bool {
        let mut scratch = [0u8; 1024];
        let mut seen = 0u64;
        while seen <= limit {
            match self.read_body_locked(side, &mut scratch) {
                Ok(0) => return true,
                Ok(n) => seen += n as u64,
                // The seeded bug of the kill matrix: a malformed body counts as discarded.
                Err(e) => {
                    return cfg!(hijack_mutant = "discard_malformed_as_done")
                        && e.kind() == io::ErrorKind::InvalidData;
                }
            }
        }
        false
    }

    pub(crate) fn read_body_locked(
        &self,
        side: &mut ReadSide,
        out: &mut [u8],
    ) -> io::Result<usize> {
        if self.reader.handed_over() {
            return Err(hijacked_error());
        }
        // A failed body stays failed: decoding on past a framing error would read garbage
        // as framing, and could wait for a chunk that never comes.
        if let Some(verdict) = side.framing_error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, verdict));
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let ReadSide { buf, body, .. } = side;
            match body.decode(buf, out) {
                Ok(Decoded::Data(n)) => return Ok(n),
                Ok(Decoded::End) => {
                    if !side.body_ended || cfg!(hijack_mutant = "double_background_read") {
                        side.body_ended = true;
                        //= SPEC.md#background-read
                        //# The background read MUST start only once the request body has been
                        //# read to its end (or the request has none) while the handler runs.
                        self.start_background_read();
                    }
                    return Ok(0);
                }
                Ok(Decoded::NeedMore) => {
                    self.send_continue();
                    match self.fill(side) {
                        Ok(0) => {
                            side.framing_error = Some(Verdict::BadRequest("body cut short"));
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(verdict) => {
                    side.framing_error = Some(verdict);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, verdict));
                }
            }
        }
    }
}

impl<T: Transport> BodySource for Conn<T> {
    fn read_body(&self, out: &mut [u8]) -> io::Result<usize> {
        let mut side = self.read.lock();
        self.read_body_locked(&mut side, out)
    }
}
