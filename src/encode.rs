//! Response encoding: the write side's state, and how a response head and body are framed
//! into the connection's write buffer (SPEC.md#serving-loop: "Finish the response", the
//! framing rules, and the answer to a head that never became a request).
//!
//! It owns [`WriteSide`] and [`Framing`]: chunked, Content-Length, close-delimited or no
//! body, the held bytes before the head is committed, and the head's bytes. It never touches
//! the stream, the read side or the connection reader: writing the buffer out is
//! `Conn::flush_wire`'s, and deciding when to do so is the response writer's and the
//! serving loop's.

use std::io;

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, Version, header};

use crate::expect::Continue;
use crate::limits::{BODY_HOLD, WRITE_BUFFER};
use crate::parse::Verdict;

/// The response being written: its framing once the head is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The head is not on the wire yet.
    Uncommitted,
    /// No body may follow (HEAD, 1xx, 204, 304).
    NoBody,
    /// Exactly this many body bytes are left.
    Length(u64),
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 without a length).
    CloseDelimited,
}

/// The write side: the connection's write buffer and the response state.
#[derive(Debug)]
pub(crate) struct WriteSide {
    /// Wire bytes not yet written to the stream: the connection's write buffer.
    pub(crate) buf: BytesMut,
    /// Body bytes written before the head was committed.
    held: BytesMut,
    framing: Framing,
    /// `write_header` was called (Go's `wroteHeader`).
    pub(crate) status_set: bool,
    pub(crate) status: StatusCode,
    /// Headers handed over by the writer when the handler dropped it.
    pub(crate) final_headers: Option<HeaderMap>,
    /// The request's `100 Continue`.
    pub(crate) expect: Continue,
    is_head: bool,
    version: Version,
    /// The connection closes after this response.
    pub(crate) close_after: bool,
    /// A write to the stream failed.
    pub(crate) broken: bool,
}

/// The Content-Length the handler set, if it is a valid number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

impl WriteSide {
    /// The write side of a new connection: nothing buffered, no response yet.
    pub(crate) fn new() -> WriteSide {
        WriteSide {
            buf: BytesMut::new(),
            held: BytesMut::new(),
            framing: Framing::Uncommitted,
            status_set: false,
            status: StatusCode::OK,
            final_headers: None,
            expect: Continue::NotExpected,
            is_head: false,
            version: Version::HTTP_11,
            close_after: false,
            broken: false,
        }
    }

    /// Resets the per-response fields for the next request. The write buffer, the held bytes
    /// and whether a write failed carry over.
    pub(crate) fn start_response(
        &mut self,
        expect: Continue,
        is_head: bool,
        version: Version,
        close_after: bool,
    ) {
        self.framing = Framing::Uncommitted;
        self.status_set = false;
        self.status = StatusCode::OK;
        self.final_headers = None;
        self.expect = expect;
        self.is_head = is_head;
        self.version = version;
        self.close_after = close_after;
    }

    /// Whether the response head is still to be committed.
    pub(crate) fn uncommitted(&self) -> bool {
        self.framing == Framing::Uncommitted
    }

    /// Replaces the uncommitted response with the answer to the request body's framing
    /// error: its status, a text body, and a close. Returns the headers to commit.
    pub(crate) fn answer_framing_error(&mut self, verdict: Verdict) -> HeaderMap {
        self.status = verdict.status();
        self.status_set = true;
        self.held.clear();
        self.close_after = true;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.held.put_slice(verdict.status().to_string().as_bytes());
        headers
    }

    /// Ends the body after the handler returned (head already committed): moves held bytes
    /// behind the head and ends the framing; a body that cannot be ended on the wire
    /// (short of its Content-Length, or close-delimited) closes the connection.
    pub(crate) fn end_body(&mut self) {
        self.move_held();
        match self.framing {
            Framing::Chunked => self.buf.put_slice(b"0\r\n\r\n"),
            Framing::Length(left) if left > 0 && !self.is_head => self.close_after = true,
            Framing::CloseDelimited => self.close_after = true,
            _ => {}
        }
    }

    /// Puts the answer to a head that never became a request in the write buffer.
    pub(crate) fn put_rejection(&mut self, verdict: Verdict) {
        let status = verdict.status();
        let body = format!("{status}: {}", verdict.reason());
        self.buf.put_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                body.len()
            )
            .as_bytes(),
        );
    }

    /// Puts `100 Continue` in the write buffer (empty then: no status was set).
    pub(crate) fn put_continue(&mut self) {
        self.buf.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    /// Commits the response head to the write buffer and fixes the body framing.
    /// `handler_done`: the handler returned, so the held bytes are the whole body.
    pub(crate) fn commit_head(&mut self, headers: &HeaderMap, handler_done: bool) {
        let status = self.status;
        let mut headers = headers.clone();
        let declared = declared_length(&headers);
        if declared.is_none() && headers.remove(header::CONTENT_LENGTH).is_some() {
            tracing::warn!("handler set an invalid Content-Length; ignored");
        }
        self.framing = if !body_allowed(status) {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::TRANSFER_ENCODING);
            Framing::NoBody
        } else if let Some(n) = declared {
            headers.remove(header::TRANSFER_ENCODING);
            Framing::Length(n)
        } else if handler_done && (!self.is_head || !self.held.is_empty()) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.held.len()));
            Framing::Length(self.held.len() as u64)
        } else if self.is_head {
            Framing::NoBody
        } else if self.version == Version::HTTP_11 {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Framing::Chunked
        } else {
            Framing::CloseDelimited
        };
        if self.framing == Framing::CloseDelimited {
            self.close_after = true;
        }
        let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
        if self.version == Version::HTTP_10 && !self.close_after && !upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        } else if self.close_after && !upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !headers.contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            if let Ok(date) = HeaderValue::from_str(&date) {
                headers.insert(header::DATE, date);
            }
        }
        let version = if self.version == Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let buf = &mut self.buf;
        // One allocation for the whole head rather than a doubling per line.
        let fields: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        buf.reserve(32 + fields + 2);
        buf.put_slice(version.as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        buf.put_slice(b"\r\n");
        for (name, value) in &headers {
            buf.put_slice(name.as_str().as_bytes());
            buf.put_slice(b": ");
            buf.put_slice(value.as_bytes());
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b"\r\n");
    }

    /// Commits the head (not final: the body may go on) and moves held bytes behind it.
    pub(crate) fn commit_if_needed(&mut self, headers: &HeaderMap) {
        if self.framing == Framing::Uncommitted {
            self.commit_head(headers, false);
        }
        self.move_held();
    }

    /// Frames `data` as body bytes into the write buffer (head already committed).
    fn frame(&mut self, data: &[u8]) {
        if data.is_empty() || self.is_head {
            return;
        }
        match self.framing {
            Framing::Chunked => {
                self.buf
                    .put_slice(format!("{:x}\r\n", data.len()).as_bytes());
                self.buf.put_slice(data);
                self.buf.put_slice(b"\r\n");
            }
            Framing::Length(left) => {
                let n = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.buf.put_slice(&data[..n]);
                self.framing = Framing::Length(left - n as u64);
            }
            Framing::CloseDelimited => self.buf.put_slice(data),
            Framing::NoBody | Framing::Uncommitted => {}
        }
    }

    /// Moves held body bytes behind the committed head.
    pub(crate) fn move_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.frame(&held);
        self.held = held;
        self.held.clear();
    }

    /// Buffers body bytes. Returns whether the write buffer should go to the stream now.
    pub(crate) fn write_body(&mut self, headers: &HeaderMap, data: &[u8]) -> io::Result<bool> {
        if !body_allowed(self.status) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "status does not allow a body",
            ));
        }
        let left = match self.framing {
            Framing::Length(left) => Some(left),
            Framing::Uncommitted => {
                declared_length(headers).map(|n| n.saturating_sub(self.held.len() as u64))
            }
            _ => None,
        };
        if let Some(left) = left
            && data.len() as u64 > left
            && !self.is_head
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write exceeds declared Content-Length",
            ));
        }
        if self.framing == Framing::Uncommitted {
            self.held.put_slice(data);
            if self.held.len() <= BODY_HOLD {
                return Ok(false);
            }
            self.commit_head(headers, false);
            self.move_held();
        } else if !self.is_head {
            self.frame(data);
        }
        Ok(self.buf.len() >= WRITE_BUFFER)
    }
}
