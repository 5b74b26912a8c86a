//! The client side of the wire: a connection to the server under test that keeps what it
//! received, reads with a deadline, parses responses, and logs every byte with a timestamp.
//! It never panics on what a peer sends: anything unexpected becomes an observation.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One line of a case's wire log.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct WireEntry {
    /// Milliseconds since the case started.
    pub t_ms: f64,
    /// Connection number (none for notes about the whole case).
    pub conn: Option<usize>,
    /// `send`, `recv` or `note`.
    pub dir: String,
    /// The bytes, escaped (see [`escape`]), or the note.
    pub data: String,
}

/// The wire log of one case.
#[derive(Debug)]
pub struct WireLog {
    start: Instant,
    /// Entries in time order.
    pub entries: Vec<WireEntry>,
}

/// The most entries a case logs; a 100 KiB echo read in small pieces would otherwise fill
/// reports with noise.
const MAX_ENTRIES: usize = 400;

impl WireLog {
    /// An empty log starting now.
    pub fn new() -> WireLog {
        WireLog {
            start: Instant::now(),
            entries: Vec::new(),
        }
    }

    fn push(&mut self, conn: Option<usize>, dir: &'static str, data: String) {
        if self.entries.len() == MAX_ENTRIES {
            self.entries.push(WireEntry {
                t_ms: self.ms(),
                conn: None,
                dir: "note".into(),
                data: "(log truncated)".into(),
            });
        }
        if self.entries.len() > MAX_ENTRIES {
            return;
        }
        let t_ms = self.ms();
        self.entries.push(WireEntry {
            t_ms,
            conn,
            dir: dir.into(),
            data,
        });
    }

    fn ms(&self) -> f64 {
        (self.start.elapsed().as_micros() as f64 / 1000.0 * 10.0).round() / 10.0
    }

    /// Logs bytes sent or received.
    pub fn bytes(&mut self, conn: usize, dir: &'static str, bytes: &[u8]) {
        self.push(Some(conn), dir, escape(bytes));
    }

    /// Logs a note.
    pub fn note(&mut self, conn: Option<usize>, note: impl Into<String>) {
        self.push(conn, "note", note.into());
    }
}

/// Bytes as text: printable ASCII as is, `\r` `\n` `\t` `\\`, others `\xNN`; long runs are
/// cut in the middle with the byte count.
pub fn escape(bytes: &[u8]) -> String {
    const HEAD: usize = 240;
    const TAIL: usize = 60;
    if bytes.len() > HEAD + TAIL + 40 {
        return format!(
            "{}...({} bytes)...{}",
            escape(&bytes[..HEAD]),
            bytes.len(),
            escape(&bytes[bytes.len() - TAIL..])
        );
    }
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// How a read ended when it did not return bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The server closed (end of stream).
    Eof,
    /// The server reset the connection (or another read error).
    Reset,
    /// Nothing arrived before the deadline.
    Timeout,
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadEnd::Eof => "closed (end of stream)",
            ReadEnd::Reset => "closed (reset)",
            ReadEnd::Timeout => "nothing more within the step's time",
        })
    }
}

/// A client connection to the server under test.
pub struct Client {
    /// Connection number in the case.
    pub id: usize,
    stream: Option<TcpStream>,
    /// Received bytes not yet consumed by an expectation.
    pub buf: Vec<u8>,
    /// Set once the server closed or reset.
    pub ended: Option<ReadEnd>,
    /// Every byte written on this connection, in order (what a smuggled request is found in).
    pub sent: Vec<u8>,
}

impl Client {
    /// Connects, within `timeout`.
    pub fn connect(id: usize, addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            id,
            stream: Some(stream),
            buf: Vec::new(),
            ended: None,
            sent: Vec::new(),
        })
    }

    /// Writes `bytes` in writes of `write_size` with `pause` between them. A failed write is
    /// logged, not fatal: a server may close early, and what it answered is still readable.
    pub fn send(&mut self, log: &mut WireLog, bytes: &[u8], write_size: usize, pause: Duration) {
        let Some(stream) = self.stream.as_mut() else {
            log.note(Some(self.id), "send on a closed connection: skipped");
            return;
        };
        self.sent.extend_from_slice(bytes);
        let size = write_size.max(1);
        let mut chunks = bytes.chunks(size).peekable();
        // One log entry per write when writing small pieces would flood the log.
        let log_each = bytes.len() / size <= 64;
        if !log_each {
            log.bytes(self.id, "send", bytes);
        }
        while let Some(chunk) = chunks.next() {
            if log_each {
                log.bytes(self.id, "send", chunk);
            }
            if let Err(e) = stream.write_all(chunk) {
                log.note(Some(self.id), format!("write failed: {e}"));
                return;
            }
            if chunks.peek().is_some() && !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }

    /// Half-closes.
    pub fn shutdown_write(&mut self, log: &mut WireLog) {
        log.note(Some(self.id), "shutdown(write)");
        if let Some(stream) = &self.stream
            && let Err(e) = stream.shutdown(Shutdown::Write)
        {
            log.note(Some(self.id), format!("shutdown failed: {e}"));
        }
    }

    /// Closes with a reset: SO_LINGER 0, then close.
    pub fn reset(&mut self, log: &mut WireLog) {
        log.note(Some(self.id), "reset (SO_LINGER 0, close)");
        if let Some(stream) = self.stream.take()
            && let Err(e) = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO))
        {
            log.note(Some(self.id), format!("SO_LINGER failed: {e}"));
        }
    }

    /// Closes normally.
    pub fn close(&mut self, log: &mut WireLog) {
        log.note(Some(self.id), "close");
        self.stream = None;
    }

    /// Reads once into `buf`, waiting until `deadline` at most. `Ok(n)` with n > 0, or how
    /// the read ended.
    pub fn fill(&mut self, log: &mut WireLog, deadline: Instant) -> Result<usize, ReadEnd> {
        if let Some(end) = self.ended {
            return Err(end);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadEnd::Eof);
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadEnd::Timeout);
        }
        // A zero timeout means "block forever" to set_read_timeout.
        let wait = (deadline - now).max(Duration::from_millis(1));
        if stream.set_read_timeout(Some(wait)).is_err() {
            return Err(ReadEnd::Reset);
        }
        let mut chunk = [0u8; 16 << 10];
        match stream.read(&mut chunk) {
            Ok(0) => {
                log.note(Some(self.id), "end of stream from server");
                self.ended = Some(ReadEnd::Eof);
                Err(ReadEnd::Eof)
            }
            Ok(n) => {
                log.bytes(self.id, "recv", &chunk[..n]);
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ReadEnd::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => {
                log.note(Some(self.id), format!("read error: {e}"));
                self.ended = Some(ReadEnd::Reset);
                Err(ReadEnd::Reset)
            }
        }
    }
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from its framing.
    pub body: Vec<u8>,
    /// The minor version of its status line: 1 for `HTTP/1.1`, 0 for `HTTP/1.0`.
    pub minor: u8,
}

impl Response {
    /// Whether field `name` (lower case) has `token` as one of its comma-separated items.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// Whether it tells the client the connection ends after it: `Connection: close`, or an
    /// HTTP/1.0 response without `keep-alive` (RFC 9112 §9.3).
    pub fn announces_close(&self) -> bool {
        self.has_token("connection", "close")
            || (self.minor == 0 && !self.has_token("connection", "keep-alive"))
    }

    /// A short description: status and the fields that matter for the cases.
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "connection" | "upgrade"))
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        if fields.is_empty() {
            self.status.to_string()
        } else {
            format!("{} [{}]", self.status, fields.join(", "))
        }
    }
}

/// What [`parse_response`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete response taking this many bytes.
    Complete(Response, usize),
    /// Not a response.
    Invalid(String),
}

/// Parses one response at the front of `buf`. `ended`: the server closed, so a response
/// delimited by the close is complete. After a 101 the rest is the new protocol's.
pub fn parse_response(buf: &[u8], ended: bool) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; 100];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => return Parsed::Invalid(format!("unparseable response head: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        minor: resp.version.unwrap_or(1),
    };
    let rest = &buf[head_len..];
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Parsed::Complete(response, head_len);
    }
    if response.has_token("transfer-encoding", "chunked") {
        return match decode_chunked(rest) {
            Ok(Some((body, used))) => {
                response.body = body;
                Parsed::Complete(response, head_len + used)
            }
            Ok(None) => Parsed::Partial,
            Err(e) => Parsed::Invalid(e),
        };
    }
    if let Some((_, cl)) = response.headers.iter().find(|(n, _)| n == "content-length") {
        let Ok(len) = cl.trim().parse::<usize>() else {
            return Parsed::Invalid(format!("bad Content-Length {cl:?}"));
        };
        if rest.len() < len {
            return Parsed::Partial;
        }
        response.body = rest[..len].to_vec();
        return Parsed::Complete(response, head_len + len);
    }
    if ended {
        response.body = rest.to_vec();
        return Parsed::Complete(response, buf.len());
    }
    Parsed::Partial
}

/// Decodes a chunked body: `Ok(None)` if incomplete, else the body and the bytes it took.
fn decode_chunked(mut buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let total = buf.len();
    let mut body = Vec::new();
    loop {
        let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[..line_end]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?} in response"))?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                buf = &buf[end + 2..];
                if end == 0 {
                    return Ok(Some((body, total - buf.len())));
                }
            }
        }
        // A peer may announce any size; checked so that a huge one cannot overflow.
        let Some(end) = size.checked_add(2) else {
            return Err(format!("chunk size {size_text:?} too large"));
        };
        if buf.len() < end {
            return Ok(None);
        }
        body.extend_from_slice(&buf[..size]);
        if &buf[size..end] != b"\r\n" {
            return Err("chunk data not followed by CRLF in response".into());
        }
        buf = &buf[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_upgrade_responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 101 S\r\nUpgrade: echo\r\n\r\nxyz";
        let Parsed::Complete(a, n) = parse_response(r, false) else {
            panic!()
        };
        assert_eq!((a.status, &a.body[..]), (200, &b"hi"[..]));
        let Parsed::Complete(b, m) = parse_response(&r[n..], false) else {
            panic!()
        };
        assert_eq!(b.status, 101);
        assert!(b.has_token("upgrade", "ECHO"));
        assert_eq!(&r[n + m..], b"xyz");
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        assert!(matches!(
            parse_response(&c[..c.len() - 1], false),
            Parsed::Partial
        ));
        let Parsed::Complete(c, n) = parse_response(c, false) else {
            panic!()
        };
        assert_eq!((&c.body[..], n), (&b"hi"[..], 59));
        assert!(matches!(
            parse_response(b"HTTP/1.0 200 OK\r\n\r\nbye", true),
            Parsed::Complete(_, 22)
        ));
        assert!(matches!(
            parse_response(b"\x00garbage\r\n\r\n", false),
            Parsed::Invalid(_)
        ));
    }

    #[test]
    fn escapes_bytes() {
        assert_eq!(escape(b"a\r\n\x00\\"), "a\\r\\n\\x00\\\\");
        assert!(escape(&[b'x'; 5000]).contains("(5000 bytes)"));
    }
}
