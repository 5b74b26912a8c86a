//! Arbitrary client bytes served on the in-memory pipe (the `serve_bytes` target).
//!
//! Input: the first byte chooses the split points (0: whole; 1: one byte per write for the
//! first 64 bytes; otherwise chunk sizes from a generator seeded by it); the rest are the
//! client's bytes. The client writes each piece once the server has read the previous one,
//! then half-closes and reads the wire to its end. The client runs on the serving thread
//! (see [`Feeding`]): a read of the server's that finds the pipe empty first has the client
//! write its next piece (or half-close after the last), and from a split byte of 128 on, so
//! does a background read that starts on an empty pipe. No thread per input, no waiting:
//! one schedule of the threaded client's, the same for every run of an input. The server runs `serve_connection` on
//! this thread with a handler chosen by each request's path:
//!
//! - `/e...`: echo-hijack. With `Connection: upgrade` and `Upgrade: echo` it writes
//!   `101 Switching Protocols` first; it hijacks, checks a body read fails, and echoes every
//!   byte it reads from the parts (handed-over bytes, then the stream) until end of stream;
//! - `/r...`: body reader. Reads the body to its end and writes it back;
//! - any other path: writer. The rest of the path after its first two bytes is a program:
//!   digits set a number `n`; `b` writes `n` bytes of body, `f` flushes, `s` sets a status
//!   (`n` indexes 200 201 204 304 404 500), `l` declares `Content-Length: n`.
//!
//! The checks (see [`check`]) replay the client's bytes through the head parser and body
//! decoder to know where each request starts and ends, and read the wire strictly.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hijack::parse::{BodyKind, Verdict, parse_head};
use hijack_testkit::framing::{self, BodyEnd, HeadModel};
use hijack::pipe::{PipeEnd, pipe};
use hijack::transport::BackgroundRead;
use hijack::{Cancellation, CloseNotify, ConnProbe, Handover, Request, ResponseWriter, Transport};
use http::{HeaderValue, Method, StatusCode, Version, header};

use crate::wire::{CONTINUE, Framing, expect_end, is_rejection, read_response, rejection, show};
use crate::{alloc, guard};

/// At most this many client writes per input (the rest goes in the last one).
const MAX_PIECES: usize = 64;

/// Statuses the writer's `s` chooses from.
const STATUSES: [u16; 6] = [200, 201, 204, 304, 404, 500];

/// Which handler a path chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Echo,
    Reader,
    Writer,
}

fn kind(path: &str) -> Kind {
    if path.starts_with("/e") {
        Kind::Echo
    } else if path.starts_with("/r") {
        Kind::Reader
    } else {
        Kind::Writer
    }
}

#[derive(Debug)]
enum Outcome {
    Returned,
    Hijacked { upgraded: bool, read: Vec<u8> },
    HijackFailed,
}

/// One handler call, as the handler saw it.
#[derive(Debug)]
struct Call {
    method: Method,
    target: String,
    version: Version,
    kind: Kind,
    outcome: Outcome,
    /// The reader's body, if it read it to its end.
    body: Option<Vec<u8>>,
    /// Body bytes the writer wrote successfully.
    wrote: Vec<u8>,
}

/// What the handlers leave for the checks.
#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    probes: Vec<ConnProbe>,
    parts: Option<Handover<Feeding>>,
    latches: Vec<(CloseNotify, Cancellation)>,
}

fn handle(log: &Mutex<Log>, mut req: Request<'_>, mut w: ResponseWriter<'_, Feeding>) {
    let path = req.path().to_owned();
    let mut call = Call {
        method: req.method().clone(),
        target: req.target().to_owned(),
        version: req.version(),
        kind: kind(&path),
        outcome: Outcome::Returned,
        body: None,
        wrote: Vec::new(),
    };
    {
        let mut log = log.lock().unwrap();
        log.probes.push(w.connection_probe());
        log.latches.push((w.close_notify(), req.cancellation()));
    }
    match call.kind {
        Kind::Echo => {
            let upgraded = req.wants_upgrade("echo");
            if upgraded {
                w.write_header(StatusCode::SWITCHING_PROTOCOLS);
                w.headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("echo"));
                w.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            let (hijacked, allocated) = alloc::allocations_of(|| w.hijack());
            match hijacked {
                Ok(mut parts) => {
                    check_handover(&parts, parts.stream.end.deadlines(), &allocated, upgraded);
                    //= SPEC.md#hijack-handover
                    //= type=test
                    //# After a hijack, a read of the request body MUST fail and MUST NOT consume any byte.
                    // (Consuming nothing is checked by the exact handed-over bytes.)
                    assert!(
                        req.body().read(&mut [0u8; 16]).is_err(),
                        "a body read after the hijack did not fail"
                    );
                    let mut read = Vec::new();
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = parts.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        read.extend_from_slice(&buf[..n]);
                        if parts
                            .write_all(&buf[..n])
                            .and_then(|()| parts.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                    call.outcome = Outcome::Hijacked { upgraded, read };
                    log.lock().unwrap().parts = Some(parts);
                }
                Err(_) => call.outcome = Outcome::HijackFailed,
            }
        }
        Kind::Reader => {
            let mut body = Vec::new();
            let mut buf = [0u8; 1024];
            let ended = loop {
                match req.body().read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                    Err(_) => break false,
                }
            };
            if ended {
                let _ = w.write_body(&body);
                call.body = Some(body);
            }
        }
        Kind::Writer => write_program(&path, req.method() == Method::HEAD, &mut w, &mut call),
    }
    log.lock().unwrap().calls.push(call);
}

pub use hijack_testkit::served::{check_handover, config, preset_deadlines};

/// Runs the writer's program (see the module docs).
fn write_program(path: &str, head: bool, w: &mut ResponseWriter<'_, Feeding>, call: &mut Call) {
    let mut n: u64 = 0;
    let mut status: Option<u16> = None;
    // A Content-Length declared before anything was written or flushed fixes the framing.
    let mut declared: Option<u64> = None;
    let mut touched = false;
    for c in path.bytes().skip(2) {
        match c {
            b'0'..=b'9' => n = (n * 10 + u64::from(c - b'0')).min(6000),
            b'b' => {
                let data = guard::pattern(n, n as usize);
                let result = w.write_body(&data);
                let status = *status.get_or_insert(200);
                if status == 204 || status == 304 {
                    //= SPEC.md#serving-loop
                    //= type=test
                    //# A response with status 1xx, 204 or 304 MUST NOT carry a body, a Content-Length or a
                    //# Transfer-Encoding, and a body write for it MUST fail.
                    assert!(
                        result.is_err(),
                        "a body write for a {status} response succeeded"
                    );
                } else if let (Some(limit), false) = (declared, head) {
                    //= SPEC.md#serving-loop
                    //= type=test
                    //# A body write past a declared Content-Length MUST fail without writing any of
                    //# its bytes, and a response that ends short of its declared Content-Length MUST
                    //# be followed by closing the connection.
                    let past = call.wrote.len() as u64 + n > limit;
                    assert_eq!(
                        result.is_err(),
                        past,
                        "a write of {n} bytes after {} of a declared {limit}",
                        call.wrote.len()
                    );
                }
                if result.is_ok() {
                    call.wrote.extend_from_slice(&data);
                }
                touched = true;
                n = 0;
            }
            b'f' => {
                let _ = w.flush();
                status.get_or_insert(200);
                touched = true;
            }
            b's' => {
                let code = STATUSES[(n % STATUSES.len() as u64) as usize];
                w.write_header(StatusCode::from_u16(code).unwrap());
                status.get_or_insert(code);
                n = 0;
            }
            // Only before the first write or flush: a length declared after body bytes were
            // written would cut them at the commit, which no rule of SPEC.md speaks to.
            b'l' if !touched => {
                w.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
                declared = Some(n);
                n = 0;
            }
            _ => {}
        }
    }
}

/// The client's writes: see the module docs.
fn pieces(mode: u8, bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut state = u64::from(mode).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while !rest.is_empty() {
        let n = match mode {
            0 => rest.len(),
            _ if out.len() + 1 == MAX_PIECES => rest.len(),
            1 => 1,
            _ => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                1 + (state % (u64::from(mode) % 40 + 2)) as usize
            }
        };
        let (piece, next) = rest.split_at(n.min(rest.len()));
        out.push(piece);
        rest = next;
    }
    out
}

/// The client: its end of the pipe and the pieces it has yet to write.
struct Client {
    end: PipeEnd,
    pieces: Mutex<Pieces>,
}

struct Pieces {
    /// Where each piece ends in the client's bytes.
    ends: Vec<usize>,
    bytes: Vec<u8>,
    next: usize,
    /// Half-closed (after its last piece, or when a write failed).
    done: bool,
}

impl Client {
    /// If the server has read everything the client wrote: the client writes its next
    /// piece, or half-closes after the last one.
    fn feed(&self) {
        if self.end.peer_unread_len() != 0 {
            return;
        }
        let mut p = self.pieces.lock().unwrap();
        if p.done {
            return;
        }
        if p.next < p.ends.len() {
            let start = if p.next == 0 { 0 } else { p.ends[p.next - 1] };
            let end = p.ends[p.next];
            p.next += 1;
            if self.end.write_all(&p.bytes[start..end]).is_ok() {
                return;
            }
            // The server closed the connection: the client stops writing.
        }
        p.done = true;
        drop(p);
        self.end.shutdown_write();
    }
}

/// The server's end of the pipe, with the client behind it (see the module docs).
pub struct Feeding {
    end: PipeEnd,
    client: Arc<Client>,
    /// A background read on an empty pipe has the client write first.
    eager: bool,
}

impl Read for Feeding {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Transport::read(self, buf)
    }
}

impl Write for Feeding {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.end.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Feeding {
    type Stream = Feeding;

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.end.unread_len() == 0 {
            self.client.feed();
        }
        self.end.read(buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.end.write(buf)
    }

    fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        Transport::set_read_deadline(&self.end, deadline)
    }

    fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        Transport::set_write_deadline(&self.end, deadline)
    }

    fn start_background_read(&self, done: BackgroundRead) {
        // Written before the read starts, so that the pipe completes it on a thread of its
        // own (as it does for any read with a byte to take), never under the core's locks.
        if self.eager && self.end.unread_len() == 0 {
            self.client.feed();
        }
        self.end.start_background_read(done);
    }

    fn interrupt_background_read(&self) {
        self.end.interrupt_background_read();
    }

    fn close(&self) {
        Transport::close(&self.end);
    }

    fn into_stream(self) -> io::Result<Feeding> {
        Ok(self)
    }
}

/// Serves one input and checks it; returns with everything it created dropped.
fn run_case(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let log = Arc::new(Mutex::new(Log::default()));
    let (client, server) = pipe();
    crate::serve::preset_deadlines(&server);
    let mut ends = Vec::new();
    let mut at = 0;
    for piece in pieces(mode, bytes) {
        at += piece.len();
        ends.push(at);
    }
    let client = Arc::new(Client {
        end: client,
        pieces: Mutex::new(Pieces {
            ends,
            bytes: bytes.to_vec(),
            next: 0,
            done: false,
        }),
    });
    let server = Feeding {
        end: server,
        client: client.clone(),
        eager: mode >= 0x80,
    };
    let handler = {
        let log = log.clone();
        move |req: Request<'_>, w: ResponseWriter<'_, Feeding>| handle(&log, req, w)
    };
    hijack::serve_connection(server, &handler, &config(), 1);
    drop(handler);
    {
        let mut log = log.lock().unwrap();
        //= SPEC.md#release
        //= type=test
        //# After a hijacking handler returned, the server's connection state MUST NOT stay
        //# reachable from the handover parts.
        assert!(
            log.probes
                .iter()
                .all(|p| p.is_dead_within(std::time::Duration::from_secs(2))),
            "connection state reachable after serve_connection returned (hijacked: {})",
            log.parts.is_some()
        );
        //= SPEC.md#close-notify
        //= type=test
        //# When the handler returns, a close-notify or cancellation that has not fired MUST fire with HandlerDone and wake every waiter.
        for (notify, cancel) in &log.latches {
            assert!(
                notify.fired().is_some() && cancel.fired().is_some(),
                "a latch not terminal"
            );
        }
        // The hijacker lets go: the stream closes and the client reads its end.
        if let Some(mut parts) = log.parts.take() {
            let _ = parts.flush();
        }
    }
    let wire = client.end.read_to_end();
    drop(client);
    let log = std::mem::take(&mut *log.lock().unwrap());
    if let Err(e) = check(bytes, &log.calls, &wire) {
        panic!(
            "serve_bytes: {e}\nclient bytes: {:?}\ncalls: {:?}\nwire: {:?}",
            show(bytes),
            log.calls,
            show(&wire)
        );
    }
}

/// One input: served, checked, and then the live heap bytes are back where they were.
pub fn run(data: &[u8]) {
    guard::init("serve_bytes");
    let _watched = guard::watch();
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(warm_up);
    let before = alloc::live();
    run_case(data);
    if let Err(grown) = alloc::settle_to(before, guard::WAIT_LIMIT) {
        // A lazily initialized static of the process grows once; a leak grows every time.
        if std::env::var_os("HIJACK_FUZZ_DEBUG").is_some() {
            eprintln!("{grown} bytes live after the first run: running again");
        }
        let again = alloc::live();
        run_case(data);
        //= SPEC.md#release
        //= type=test
        //# When the handler returns, the connection reader MUST drop every reference to the
        //# request's and response's state, and the close-notify handle MUST reach its terminal
        //# state.
        if let Err(grown_again) = alloc::settle_to(again, guard::WAIT_LIMIT) {
            panic!("serve_bytes: {grown} then {grown_again} heap bytes still live after the input");
        }
    }
}

/// Every path once, so lazily initialized statics exist before anything is measured.
fn warm_up() {
    for input in [
        &b"\x00GET /w12bfs HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"\x01POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /w HTTP/1.0\r\n\r\n",
        b"\x07GET /e HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nhi",
        b"\x00GET /e HTTP/1.1\r\nHost: a\r\n\r\nraw",
        b"\x00GET / HTTP/1.1\r\n\r\n",
        b"\x00POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz",
    ] {
        run_case(input);
    }
}

/// The expected course of the connection, from the client's bytes, against the handler calls
/// and the wire.
fn check(client: &[u8], calls: &[Call], wire: &[u8]) -> Result<(), String> {
    let mut at = 0; // where the next request head starts in the client's bytes
    let mut w = 0; // where the next response starts on the wire
    for (i, call) in calls.iter().enumerate() {
        let last = i + 1 == calls.len();
        let head = match next_request(&client[at..])? {
            Next::Head(head) => head,
            other => {
                return Err(format!(
                    "call {i} ({} {}) for bytes at {at} that are no request head: {other:?}",
                    call.method, call.target
                ));
            }
        };
        //= SPEC.md#serving-loop
        //= type=test
        //# The server MUST answer pipelined requests one at a time, in the order they arrived,
        //# and MUST NOT read the next request head before the current response is finished.
        if (&call.method, call.target.as_str(), call.version)
            != (&head.method, head.target.as_str(), head.version)
        {
            return Err(format!(
                "call {i} is {} {}, the request at {at} is {} {}",
                call.method, call.target, head.method, head.target
            ));
        }
        let head_end = at + head.len;
        let (body, end) = framing::decode_body(head.body, &client[head_end..]);
        let body_end = match end {
            BodyEnd::End(k) => Some(head_end + k),
            _ => None,
        };
        let continue_unsent = head.expect_continue && head.body != BodyKind::Empty;

        if let Outcome::Hijacked { upgraded, read } = &call.outcome {
            if !last {
                return Err(format!("call {} after the hijack of call {i}", i + 1));
            }
            //= SPEC.md#hijack-handover
            //= type=test
            //# If the handler wrote a response head before hijacking, the server MUST read
            //# and discard the rest of the request body before the handover.
            //= SPEC.md#hijack-handover
            //= type=test
            //# If the request asked for 100 Continue and none was sent, the hijack MUST NOT read the request body.
            let cut = if *upgraded && !continue_unsent {
                body_end.ok_or("a hijack with a written head whose body cannot end succeeded")?
            } else {
                head_end
            };
            //= SPEC.md#hijack-handover
            //= type=test
            //# The handed-over bytes followed by every byte later read from the stream MUST equal the bytes the client sent after the last byte consumed by the request head, the handler's body reads and the server's body discard, in order, each exactly once.
            if read[..] != client[cut..] {
                return Err(format!(
                    "the hijacker read {:?}, the client sent {:?} after the consumed bytes",
                    show(read),
                    show(&client[cut..])
                ));
            }
            if *upgraded {
                let resp = read_response(&wire[w..], false)?;
                if resp.status != 101 {
                    return Err(format!("the upgrade got status {}", resp.status));
                }
                w += resp.len;
            }
            //= SPEC.md#hijack-handover
            //= type=test
            //# The hijack MUST flush everything the handler wrote before it returns the parts, so that the client receives it before any byte the hijacker writes.
            if wire[w..] != read[..] {
                return Err(format!(
                    "after the hijack the client got {:?}, the hijacker wrote {:?}",
                    show(&wire[w..]),
                    show(read)
                ));
            }
            return Ok(());
        }

        if wire[w..].starts_with(CONTINUE) {
            //= SPEC.md#serving-loop
            //= type=test
            //# The server MUST NOT send 100 Continue for an HTTP/1.0 request or for a request without a body.
            if !continue_unsent {
                return Err(format!(
                    "100 Continue for call {i}, which did not expect it"
                ));
            }
            w += CONTINUE.len();
        }
        let resp = read_response(&wire[w..], head.method == Method::HEAD)
            .map_err(|e| format!("response to call {i}: {e}"))?;
        w += resp.len;
        if resp.version != (head.version == Version::HTTP_11) as u8 {
            return Err(format!("response to call {i} is HTTP/1.{}", resp.version));
        }
        //= SPEC.md#serving-loop
        //= type=test
        //# The server MUST add a Date field unless the handler set one.
        if resp.header("date").is_none() {
            return Err(format!("response to call {i} has no Date"));
        }
        let body_allowed = !(resp.status / 100 == 1 || resp.status == 204 || resp.status == 304)
            && head.method != Method::HEAD;
        let expected_body = match (&call.outcome, call.kind) {
            (Outcome::Returned, Kind::Reader) => call.body.clone(),
            (Outcome::Returned, Kind::Writer) => Some(call.wrote.clone()),
            _ => None,
        };
        if let (Some(expected), true, true) = (&expected_body, body_allowed, resp.status != 400)
            && resp.body != *expected
        {
            return Err(format!(
                "response to call {i} carries {:?}, the handler wrote {:?}",
                show(&resp.body),
                show(expected)
            ));
        }
        //= SPEC.md#bad-input
        //= type=test
        //# A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not followed by CRLF MUST make the body fail; the server MUST then close the connection.
        if call.kind == Kind::Reader
            && call.outcome_returned()
            && call.body.is_some() != matches!(end, BodyEnd::End(_))
        {
            return Err(format!(
                "call {i}'s body read {}, the model's body {end:?}",
                if call.body.is_some() { "ended" } else { "failed" }
            ));
        }
        if call.kind == Kind::Reader && call.outcome_returned() {
            // The body the handler read is the body the client sent, however it arrived.
            if let (Some(read), BodyEnd::End(_)) = (&call.body, &end)
                && *read != body
            {
                return Err(format!(
                    "call {i} read the body {:?}, the client sent {:?}",
                    show(read),
                    show(&body)
                ));
            }
        }
        //= SPEC.md#serving-loop
        //= type=test
        //# A response whose handler returned after writing at most 2048 body bytes without flushing, with no Content-Length set and a status that allows a body, MUST carry a Content-Length equal to the number of bytes written.
        if call.kind == Kind::Reader
            && body_allowed
            && resp.status == 200
            && let Some(read) = &call.body
            && read.len() <= hijack::limits::BODY_HOLD
            && resp.framing != Framing::Length(read.len() as u64)
        {
            return Err(format!(
                "response to call {i} ({} bytes) framed {:?}",
                read.len(),
                resp.framing
            ));
        }
        let closes = resp.has_token("connection", "close")
            || !resp.complete
            || resp.framing == Framing::CloseDelimited;
        if closes && !last {
            return Err(format!(
                "call {} after a response that closes the connection",
                i + 1
            ));
        }
        if !resp.complete && w != wire.len() {
            return Err(format!("response to call {i} cut short, then more bytes"));
        }
        let body_consumed = match call.kind {
            Kind::Reader => call.body.is_some(),
            _ => !continue_unsent && body_end.is_some(),
        };
        //= SPEC.md#serving-loop
        //= type=test
        //# In every other case the server MUST keep the connection open and serve the next request on it.
        let goes_on = head.keep_alive
            && !closes
            && matches!(call.outcome, Outcome::Returned)
            && body_consumed
            && resp.status != 400;
        if !goes_on {
            if !last {
                return Err(format!("call {} after call {i}, which should close", i + 1));
            }
            return expect_end(wire, w);
        }
        at = body_end.expect("a consumed body ended");
        if last {
            return after_last(&client[at..], wire, w);
        }
    }
    after_last(&client[at..], wire, w)
}

impl Call {
    fn outcome_returned(&self) -> bool {
        matches!(self.outcome, Outcome::Returned)
    }
}

/// After the last handler call on a connection that stayed open: the rest of the client's
/// bytes are no complete request head.
fn after_last(rest: &[u8], wire: &[u8], w: usize) -> Result<(), String> {
    match next_request(rest)? {
        Next::Head(head) => Err(format!(
            "no handler ran for the complete request {} {}",
            head.method, head.target
        )),
        //= SPEC.md#bad-input
        //= type=test
        //# The rejection MUST be exactly the bytes of the template below, with the status code, its canonical reason phrase, the reason text of the table and the body length in decimal.
        //= SPEC.md#bad-input
        //= type=test
        //# A rejected request head MUST NOT reach a handler, and the server MUST send its rejection and then close the connection.
        Next::Rejected(verdict) => {
            if !is_rejection(&wire[w..], verdict) {
                return Err(format!(
                    "expected the rejection {:?}, got {:?}",
                    show(&rejection(verdict)),
                    show(&wire[w..])
                ));
            }
            Ok(())
        }
        //= SPEC.md#bad-input
        //= type=test
        //# A connection whose stream ends before or in the middle of a request head, or whose head read fails or times out, MUST be closed without a response.
        Next::Partial => expect_end(wire, w),
    }
}

/// A request head as the checks use it.
#[derive(Debug)]
struct Head {
    method: Method,
    target: String,
    version: Version,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    /// Its bytes.
    len: usize,
}

/// What the client's bytes at some point begin with.
#[derive(Debug)]
enum Next {
    Head(Head),
    Rejected(Verdict),
    /// No complete head.
    Partial,
}

/// Verdicts of rules that judge the whole head (Host, framing, Expect): the model's.
fn whole_head_verdict(v: Verdict) -> bool {
    matches!(v, Verdict::UnknownCoding | Verdict::UnknownExpectation)
        || matches!(
            v.reason(),
            "a request needs one Host field (HTTP/1.1) and at most one"
                | "both Transfer-Encoding and Content-Length"
                | "Transfer-Encoding in an HTTP/1.0 request"
                | "malformed Transfer-Encoding"
                | "chunked applied more than once"
                | "chunked is not the final transfer coding"
                | "invalid Content-Length"
                | "differing Content-Length values"
        )
}

/// The request at the start of `rest`, framed by the test kit's model
/// (`hijack_testkit::framing`, from SPEC.md without the core's parser), which must agree with
/// the core's `parse_head` on every head whose bytes it judges; where it does not judge the
/// bytes (the byte grammar, which `request_head` checks), the core's framing.
fn next_request(rest: &[u8]) -> Result<Next, String> {
    let core = parse_head(rest, config().max_head_bytes);
    let model = framing::frame_head(rest);
    let disagree = |core: &dyn std::fmt::Debug| {
        Err(format!(
            "the core's parser says {core:?}, the model of SPEC.md {model:?}, for {:?}",
            show(rest)
        ))
    };
    match (core, &model) {
        (Ok(Some((h, n))), HeadModel::Head(f)) => {
            let same = f.len == n
                && f.method == h.method.as_str()
                && f.target == h.target
                && f.http11 == (h.version == Version::HTTP_11)
                && f.body == h.body
                && f.keep_alive == h.keep_alive
                && f.expect_continue == h.expect_continue;
            if !same {
                return disagree(&(h, n));
            }
            Ok(Next::Head(Head {
                method: h.method,
                target: f.target.clone(),
                version: h.version,
                body: f.body,
                keep_alive: f.keep_alive,
                expect_continue: f.expect_continue,
                len: f.len,
            }))
        }
        (Ok(Some((h, n))), HeadModel::Unsure) => Ok(Next::Head(Head {
            method: h.method,
            target: h.target,
            version: h.version,
            body: h.body,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
            len: n,
        })),
        (Ok(Some(parsed)), _) => disagree(&parsed),
        (Err(v), HeadModel::Rejected(status)) if whole_head_verdict(v) => {
            if v.status().as_u16() != *status {
                return disagree(&v);
            }
            Ok(Next::Rejected(v))
        }
        (Err(v), HeadModel::Head(_)) if whole_head_verdict(v) => disagree(&v),
        (Err(v), _) => Ok(Next::Rejected(v)),
        (Ok(None), HeadModel::Head(_) | HeadModel::Rejected(_)) => disagree(&"incomplete"),
        (Ok(None), _) => Ok(Next::Partial),
    }
}
