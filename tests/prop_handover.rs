//! Property: bytes survive a hijack (issue 5, point 1).
//!
//! A generated request (method, target, fields, a body framed by Content-Length or chunked
//! with random chunk sizes) is followed by 0-64 KiB of trailing bytes. The client's bytes are
//! cut into writes, and each write is delivered at one moment relative to the handler: before
//! it starts, at one of its three gates (start, after its body read, after its response), or
//! after the hijack. The handler reads none, some or all of the body, writes (and flushes)
//! some response or none, subscribes to close-notify or not, and hijacks.
//!
//! Invariant: the client reads the response the handler wrote (if any) and then exactly what
//! the hijacker wrote; the hijacker reads (handed-over bytes, then the stream to its end)
//! exactly the bytes the client sent after what the request head, the handler's body reads
//! and (when a response head was written) the server's body discard consumed.
//!
//! On the in-memory pipe every case is deterministic: the handler waits at its gates for the
//! test, and where a background read is pending the test waits until it caught its byte
//! (seen through a counting shim over the pipe), so shrinking replays the same schedule.

mod prop_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hijack::pipe::{PipeEnd, pipe};
use hijack::tcp::TcpConn;
use hijack::transport::Transport;
use hijack::{Cancellation, CloseNotify, Fired, Request, ResponseWriter, Server, ServerConfig};
use hijack_testkit::tap::{Cuts, TappedPipe};
use hijack_testkit::wait_until;
use http::{HeaderValue, StatusCode};
use prop_support::{decode_chunk_frames, parse_head, pattern};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The generated case
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum BodySpec {
    /// No body (sometimes with an explicit `Content-Length: 0`).
    Empty {
        explicit_zero: bool,
    },
    Length {
        len: usize,
        seed: u64,
    },
    /// `cuts` split the data into chunks of at least one byte; `ext` adds a chunk extension
    /// to every size line, `trailer` a trailer field.
    Chunked {
        len: usize,
        seed: u64,
        cuts: Vec<u16>,
        ext: bool,
        trailer: bool,
    },
}

#[derive(Clone, Debug)]
struct RequestSpec {
    method: &'static str,
    target: String,
    http10: bool,
    fields: Vec<(String, String)>,
    body: BodySpec,
}

/// The request on the wire, and where each decoded body byte ends in the body's wire bytes.
struct Wire {
    head: Vec<u8>,
    body: Vec<u8>,
    data: Vec<u8>,
    /// `after_data[k]`: the body wire offset just past the `k+1`-th data byte.
    after_data: Vec<usize>,
}

impl RequestSpec {
    fn wire(&self) -> Wire {
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut head = format!(
            "{} {} {version}\r\nHost: e.com\r\n",
            self.method, self.target
        );
        for (name, value) in &self.fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let (mut body, mut data, mut after_data) = (Vec::new(), Vec::new(), Vec::new());
        match &self.body {
            BodySpec::Empty { explicit_zero } => {
                if *explicit_zero {
                    head.push_str("Content-Length: 0\r\n");
                }
            }
            BodySpec::Length { len, seed } => {
                head.push_str(&format!("Content-Length: {len}\r\n"));
                data = pattern(*seed, *len);
                body = data.clone();
                after_data = (1..=*len).collect();
            }
            BodySpec::Chunked {
                len,
                seed,
                cuts,
                ext,
                trailer,
            } => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                data = pattern(*seed, *len);
                let mut bounds: Vec<usize> = cuts
                    .iter()
                    .map(|&c| c as usize * *len / 65536)
                    .filter(|&c| c > 0 && c < *len)
                    .collect();
                bounds.push(*len);
                bounds.sort_unstable();
                bounds.dedup();
                let mut start = 0;
                for end in bounds.into_iter().filter(|&e| e > 0) {
                    body.extend_from_slice(format!("{:x}", end - start).as_bytes());
                    if *ext {
                        body.extend_from_slice(b";name=\"v a l\"");
                    }
                    body.extend_from_slice(b"\r\n");
                    for &b in &data[start..end] {
                        body.push(b);
                        after_data.push(body.len());
                    }
                    body.extend_from_slice(b"\r\n");
                    start = end;
                }
                body.extend_from_slice(b"0\r\n");
                if *trailer {
                    body.extend_from_slice(b"x-checksum: abc\r\n");
                }
                body.extend_from_slice(b"\r\n");
            }
        }
        head.push_str("\r\n");
        Wire {
            head: head.into_bytes(),
            body,
            data,
            after_data,
        }
    }

    fn data_len(&self) -> usize {
        match &self.body {
            BodySpec::Empty { .. } => 0,
            BodySpec::Length { len, .. } | BodySpec::Chunked { len, .. } => *len,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum ReadPlan {
    None,
    /// Exactly this many body bytes (1..=body length).
    Some(usize),
    /// To the end of the body.
    All,
}

#[derive(Clone, Debug)]
enum Respond {
    /// No status set: the hijack writes nothing.
    Nothing,
    /// `write_header(status)` only.
    Status(u16),
    /// Body writes (status 200), an optional flush after write `flush_after`, and an optional
    /// Content-Length equal to their total.
    Body {
        writes: Vec<usize>,
        seed: u64,
        flush_after: Option<usize>,
        content_length: bool,
    },
}

impl Respond {
    fn sets_status(&self) -> bool {
        !matches!(self, Respond::Nothing)
    }
}

#[derive(Clone, Debug)]
struct HandlerPlan {
    subscribe: bool,
    read: ReadPlan,
    respond: Respond,
    hijacker_out: (u64, usize),
}

/// When a write of the client is delivered.
const BEFORE: u8 = 0;
const AT_START: u8 = 1;
const AFTER_READ: u8 = 2;
const AFTER_RESPOND: u8 = 3;
const AFTER_HIJACK: u8 = 4;

#[derive(Clone, Debug)]
struct Case {
    request: RequestSpec,
    trailing: (u64, usize),
    /// Cut points (as fractions of the client's bytes) with a delivery moment each.
    cuts: Vec<(u16, u8)>,
    plan: HandlerPlan,
    /// The transport carries a (far) write deadline before the server starts.
    preset_write_deadline: bool,
}

/// What the model says about one case.
struct Expected {
    /// Everything the client sends, cut into `(bytes, moment)` writes in order.
    writes: Vec<(Vec<u8>, u8)>,
    /// The bytes the hijacker must read.
    hijacker_reads: Vec<u8>,
    wire: Wire,
    /// The first delivery moment at which a background read is pending (the body has no
    /// bytes: from the handler's start; the handler reads it to its end: after the read).
    background_from: Option<u8>,
}

fn model(case: &Case) -> Expected {
    let wire = case.request.wire();
    let mut client = wire.head.clone();
    client.extend_from_slice(&wire.body);
    client.extend_from_slice(&pattern(case.trailing.0, case.trailing.1));
    let head_len = wire.head.len();
    let body_len = wire.body.len();

    // Wire bytes the handler's read consumes.
    let read_consumes = match case.plan.read {
        ReadPlan::None => 0,
        ReadPlan::Some(k) => wire.after_data[k - 1],
        ReadPlan::All => body_len,
    };
    let body_ends_in_handler =
        matches!(case.plan.read, ReadPlan::All) || wire.data.is_empty() && body_len == 0;
    //= SPEC.md#hijack-handover
    //= type=test
    //# If the handler wrote a response head before hijacking, the server MUST read
    //# and discard the rest of the request body before the handover.
    let consumed = if case.plan.respond.sets_status() {
        head_len + body_len
    } else {
        head_len + read_consumes
    };

    // Delivery moments: non-decreasing, and never later than the handler needs the bytes.
    let limit = |start: usize| -> u8 {
        if start < head_len {
            BEFORE
        } else if start < head_len + read_consumes {
            AT_START
        } else if case.plan.respond.sets_status() && start < head_len + body_len {
            AFTER_RESPOND
        } else {
            AFTER_HIJACK
        }
    };
    let mut points: Vec<usize> = case
        .cuts
        .iter()
        .map(|&(f, _)| f as usize * client.len() / 65536)
        .filter(|&p| p > 0 && p < client.len())
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut moments: Vec<u8> = case.cuts.iter().map(|&(_, m)| m).collect();
    moments.sort_unstable();
    let mut writes = Vec::new();
    let mut start = 0;
    for (i, end) in points.iter().copied().chain([client.len()]).enumerate() {
        if end == start {
            continue;
        }
        let wanted = if i == 0 {
            BEFORE
        } else {
            moments[(i - 1).min(moments.len() - 1)]
        };
        writes.push((client[start..end].to_vec(), wanted.min(limit(start))));
        start = end;
    }
    let background_from = if wire.body.is_empty() {
        Some(AT_START)
    } else if body_ends_in_handler {
        Some(AFTER_READ)
    } else {
        None
    };
    Expected {
        writes,
        hijacker_reads: client[consumed..].to_vec(),
        wire,
        background_from,
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn request_strategy() -> impl Strategy<Value = RequestSpec> {
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
    ]);
    let target =
        ("[a-z0-9/._~-]{0,20}", prop::option::of("[a-z0-9=&%]{0,12}")).prop_map(|(path, query)| {
            match query {
                Some(q) => format!("/{path}?{q}"),
                None => format!("/{path}"),
            }
        });
    let fields = prop::collection::vec(("x-[a-z0-9-]{1,10}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6);
    let len = prop_oneof![4 => 0usize..16, 3 => 0usize..600, 1 => 0usize..6000];
    let body = prop_oneof![
        any::<bool>().prop_map(|explicit_zero| BodySpec::Empty { explicit_zero }),
        (len.clone(), any::<u64>()).prop_map(|(len, seed)| BodySpec::Length { len, seed }),
        (
            len,
            any::<u64>(),
            prop::collection::vec(any::<u16>(), 0..8),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(len, seed, cuts, ext, trailer)| BodySpec::Chunked {
                len,
                seed,
                cuts,
                ext,
                trailer
            }),
    ];
    (method, target, any::<bool>(), fields, body).prop_map(
        |(method, target, http10, fields, body)| {
            // Chunked framing is HTTP/1.1 only (HTTP/1.0 with Transfer-Encoding is bad input).
            let http10 = http10 && !matches!(body, BodySpec::Chunked { .. });
            RequestSpec {
                method,
                target,
                http10,
                fields,
                body,
            }
        },
    )
}

fn respond_strategy() -> impl Strategy<Value = Respond> {
    prop_oneof![
        Just(Respond::Nothing),
        prop::sample::select(vec![101u16, 200, 204]).prop_map(Respond::Status),
        (
            prop::collection::vec(
                prop_oneof![4 => 0usize..64, 2 => 0usize..1500, 1 => 0usize..3000],
                1..4
            ),
            any::<u64>(),
            prop::option::of(0usize..4),
            any::<bool>(),
        )
            .prop_map(
                |(writes, seed, flush_after, content_length)| Respond::Body {
                    writes,
                    seed,
                    flush_after,
                    content_length,
                }
            ),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let trailing_len = prop_oneof![3 => 0usize..64, 2 => 0usize..4096, 1 => 0usize..=65536];
    (
        request_strategy(),
        (any::<u64>(), trailing_len),
        prop::collection::vec((any::<u16>(), BEFORE..=AFTER_HIJACK), 0..8),
        (
            any::<bool>(),
            any::<u16>(),
            prop_oneof![Just(0u8), Just(1), Just(2)],
            respond_strategy(),
        ),
        (any::<u64>(), 0usize..2048),
        any::<bool>(),
    )
        .prop_map(
            |(request, trailing, cuts, (subscribe, k, read, respond), hijacker_out, preset)| {
                let len = request.data_len();
                let read = match read {
                    1 if len > 0 => ReadPlan::Some(1 + k as usize % len),
                    2 => ReadPlan::All,
                    _ => ReadPlan::None,
                };
                Case {
                    request,
                    trailing,
                    cuts,
                    plan: HandlerPlan {
                        subscribe,
                        read,
                        respond,
                        hijacker_out,
                    },
                    preset_write_deadline: preset,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------
// The handler, generic over the transport
// ---------------------------------------------------------------------------------------

enum Event {
    /// The handler waits at gate `n` (0: start, 1: after the read, 2: after the response,
    /// 3: after the hijack).
    Gate(u8),
    Done(Box<Outcome>),
}

struct Outcome {
    body_read: Result<Vec<u8>, String>,
    fired_before_hijack: (Option<Fired>, Option<Fired>),
    fired_after_hijacker: (Option<Fired>, Option<Fired>),
    hijack: Result<(), String>,
    hijacker_read: Vec<u8>,
    deadlines_clear: bool,
    write_buf_empty: bool,
    handles: (Option<CloseNotify>, Cancellation),
}

struct Gates {
    events: Sender<Event>,
    go: Mutex<Receiver<()>>,
}

impl Gates {
    fn wait(&self, gate: u8) {
        self.events.send(Event::Gate(gate)).unwrap();
        self.go
            .lock()
            .unwrap()
            .recv_timeout(hijack_testkit::GUARD)
            .expect("the test never opened the gate");
    }
}

fn serve_plan<T: Transport>(
    plan: &HandlerPlan,
    gates: &Gates,
    mut req: Request<'_>,
    mut w: ResponseWriter<'_, T>,
    deadlines_clear: impl Fn(&T::Stream) -> bool,
) where
    T::Stream: Read + Write,
{
    gates.wait(0);
    let notify = plan.subscribe.then(|| w.close_notify());
    let cancel = req.cancellation();
    let body_read = match plan.read {
        ReadPlan::None => Ok(Vec::new()),
        ReadPlan::Some(k) => {
            let mut buf = vec![0u8; k];
            req.body()
                .read_exact(&mut buf)
                .map(|()| buf)
                .map_err(|e| e.to_string())
        }
        ReadPlan::All => {
            let mut buf = Vec::new();
            req.body()
                .read_to_end(&mut buf)
                .map(|_| buf)
                .map_err(|e| e.to_string())
        }
    };
    gates.wait(1);
    match &plan.respond {
        Respond::Nothing => {}
        Respond::Status(code) => w.write_header(StatusCode::from_u16(*code).unwrap()),
        Respond::Body {
            writes,
            seed,
            flush_after,
            content_length,
        } => {
            let total: usize = writes.iter().sum();
            if *content_length {
                w.headers_mut()
                    .insert("content-length", HeaderValue::from(total));
            }
            let data = pattern(*seed, total);
            let mut at = 0;
            for (i, n) in writes.iter().enumerate() {
                w.write_body(&data[at..at + n]).expect("body write");
                at += n;
                if *flush_after == Some(i) {
                    w.flush().expect("flush");
                }
            }
        }
    }
    gates.wait(2);
    let fired_before_hijack = (notify.as_ref().and_then(CloseNotify::fired), cancel.fired());
    let mut outcome = Outcome {
        body_read,
        fired_before_hijack,
        fired_after_hijacker: (None, None),
        hijack: Ok(()),
        hijacker_read: Vec::new(),
        deadlines_clear: false,
        write_buf_empty: false,
        handles: (notify.clone(), cancel.clone()),
    };
    match w.hijack() {
        Err(e) => {
            outcome.hijack = Err(e.to_string());
            gates.events.send(Event::Done(Box::new(outcome))).unwrap();
        }
        Ok(mut parts) => {
            outcome.deadlines_clear = deadlines_clear(&parts.stream);
            outcome.write_buf_empty = parts.write_buf.is_empty();
            gates.wait(3);
            parts
                .write_all(&pattern(plan.hijacker_out.0, plan.hijacker_out.1))
                .unwrap();
            parts.flush().unwrap();
            let mut got = Vec::new();
            let _ = parts.read_to_end(&mut got);
            outcome.hijacker_read = got;
            outcome.fired_after_hijacker =
                (notify.as_ref().and_then(CloseNotify::fired), cancel.fired());
            gates.events.send(Event::Done(Box::new(outcome))).unwrap();
            drop(parts);
        }
    }
}

/// Counts the situations a case covers (see `prop_support::tally`).
fn tally_case(prefix: &str, case: &Case, expected: &Expected) {
    let count = |what: &str| prop_support::tally(format!("{prefix} {what}"));
    count("cases");
    let body = expected.wire.body.len();
    let read_all = matches!(case.plan.read, ReadPlan::All);
    if case.plan.respond.sets_status() && body > 0 && !read_all {
        count("the hijack discarded an unread body");
    }
    if !case.plan.respond.sets_status() && body > 0 && !read_all {
        count("unread body bytes were handed over");
    }
    if matches!(case.request.body, BodySpec::Chunked { .. }) {
        count("chunked body");
    }
    if matches!(
        case.plan.respond,
        Respond::Body {
            flush_after: Some(_),
            ..
        }
    ) {
        count("a response was flushed before the hijack");
    }
    if expected.writes.iter().any(|(_, m)| *m == AFTER_HIJACK) {
        count("bytes arrived after the hijack");
    }
    if expected
        .writes
        .iter()
        .any(|(_, m)| (AT_START..AFTER_HIJACK).contains(m))
    {
        count("bytes arrived while the handler ran");
    }
    if case.trailing.1 > 16 << 10 {
        count("more than 16 KiB of trailing bytes");
    }
}

/// Checks what the client received: the handler's response (if it set a status), then
/// exactly the hijacker's bytes.
fn check_client_wire(case: &Case, wire: &[u8]) -> Result<(), TestCaseError> {
    let out = pattern(case.plan.hijacker_out.0, case.plan.hijacker_out.1);
    let rest = match &case.plan.respond {
        Respond::Nothing => wire,
        respond => {
            let head = parse_head(wire);
            prop_assert!(
                head.is_some(),
                "no response head before the hijacker's bytes"
            );
            let head = head.unwrap();
            let version = if case.request.http10 { 0 } else { 1 };
            prop_assert_eq!(head.version, version);
            let rest = &wire[head.len..];
            let no_body = case.request.method == "HEAD";
            match respond {
                Respond::Status(code) => {
                    prop_assert_eq!(head.status, *code);
                    rest
                }
                Respond::Body {
                    writes,
                    seed,
                    content_length,
                    ..
                } => {
                    prop_assert_eq!(head.status, 200);
                    let total: usize = writes.iter().sum();
                    let data = pattern(*seed, total);
                    if no_body {
                        rest
                    } else if *content_length || case.request.http10 {
                        prop_assert!(rest.len() >= total, "response body cut short");
                        prop_assert_eq!(&rest[..total], &data[..], "response body");
                        &rest[total..]
                    } else {
                        prop_assert_eq!(head.header("transfer-encoding"), Some("chunked"));
                        let frames = decode_chunk_frames(rest, total);
                        prop_assert!(
                            frames.is_some(),
                            "malformed chunks: {:?}",
                            String::from_utf8_lossy(rest)
                        );
                        let (body, used) = frames.unwrap();
                        prop_assert_eq!(&body[..], &data[..], "response body");
                        &rest[used..]
                    }
                }
                Respond::Nothing => unreachable!(),
            }
        }
    };
    prop_assert_eq!(rest.len(), out.len(), "client: bytes after the response");
    prop_assert!(rest == &out[..], "client: the hijacker's bytes differ");
    Ok(())
}

fn check_outcome(case: &Case, expected: &Expected, o: &Outcome) -> Result<(), TestCaseError> {
    let data = &expected.wire.data;
    match (case.plan.read, &o.body_read) {
        (_, Err(e)) => prop_assert!(false, "body read failed: {}", e),
        (ReadPlan::None, Ok(got)) => prop_assert!(got.is_empty()),
        (ReadPlan::Some(k), Ok(got)) => prop_assert_eq!(&got[..], &data[..k]),
        (ReadPlan::All, Ok(got)) => prop_assert_eq!(&got[..], &data[..]),
    }
    //= SPEC.md#close-notify
    //= type=test
    //# A byte caught by the background read MUST NOT fire close-notify and MUST NOT cancel
    //# the request.
    prop_assert_eq!(
        o.fired_before_hijack,
        (None, None),
        "fired before the hijack"
    );
    prop_assert_eq!(&o.hijack, &Ok(()));
    //= SPEC.md#hijack-handover
    //= type=test
    //# The handed-over stream MUST have no read or write deadline set.
    prop_assert!(o.deadlines_clear, "the handed-over stream has a deadline");
    prop_assert!(
        o.write_buf_empty,
        "the handed-over write buffer is not empty"
    );
    //= SPEC.md#hijack-handover
    //= type=test
    //# The handed-over bytes followed by every byte later read from the stream MUST equal
    //# the bytes the client sent after the last byte consumed by the request head, the
    //# handler's body reads and the server's body discard, in order, each exactly once.
    prop_assert_eq!(
        o.hijacker_read.len(),
        expected.hijacker_reads.len(),
        "hijacker: length"
    );
    prop_assert!(
        o.hijacker_read == expected.hijacker_reads,
        "hijacker: bytes differ"
    );
    //= SPEC.md#close-notify
    //= type=test
    //# After a hijack, the server MUST NOT fire close-notify or cancel the request because
    //# of anything that happens on the stream.
    prop_assert_eq!(
        o.fired_after_hijacker,
        (None, None),
        "fired after the hijack"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// In-memory transport
// ---------------------------------------------------------------------------------------

fn run_pipe_case(case: &Case) -> Result<(), TestCaseError> {
    let expected = model(case);
    let (client, server_end) = pipe();
    if case.preset_write_deadline {
        server_end
            .set_write_deadline(Some(Instant::now() + Duration::from_secs(3600)))
            .unwrap();
    }
    let transport = TappedPipe::new(server_end, Cuts::None);
    let foreground = transport.foreground();
    let mut delivered = 0usize;
    let deliver = |moment: u8, delivered: &mut usize| {
        for (bytes, _) in expected.writes.iter().filter(|(_, m)| *m == moment) {
            client.write_all(bytes).unwrap();
            *delivered += bytes.len();
        }
    };
    deliver(BEFORE, &mut delivered);

    let (events_tx, events) = channel();
    let (go, go_rx) = channel();
    let gates = Gates {
        events: events_tx,
        go: Mutex::new(go_rx),
    };
    let plan = case.plan.clone();
    let handler = move |req: Request<'_>, w: ResponseWriter<'_, TappedPipe>| {
        serve_plan(&plan, &gates, req, w, |s: &PipeEnd| {
            s.deadlines() == (None, None)
        });
    };
    let server = std::thread::spawn(move || {
        hijack::serve_connection(transport, &handler, &ServerConfig::default(), 1)
    });

    // Bytes a background read caught: delivered, minus foreground reads, minus still unread.
    let caught = |delivered: usize| {
        delivered as i64
            - foreground.load(Ordering::SeqCst) as i64
            - client.peer_unread_len() as i64
    };
    let mut held = false;
    let outcome = loop {
        match events
            .recv_timeout(hijack_testkit::GUARD)
            .expect("the handler stopped")
        {
            Event::Gate(gate) => {
                deliver(gate + 1, &mut delivered);
                if gate == 3 {
                    client.shutdown_write();
                } else if expected.background_from.is_some_and(|g| gate + 1 >= g) {
                    //= SPEC.md#background-read
                    //= type=test
                    //# A byte caught by the background read MUST be kept and MUST be the first
                    //# byte of whatever reads the connection next.
                    if !held && client.peer_unread_len() > 0 {
                        wait_until("the background read caught a byte", || {
                            caught(delivered) == 1
                        });
                        held = true;
                    }
                } else {
                    prop_assert_eq!(caught(delivered), 0, "a byte was read in the background");
                }
                go.send(()).unwrap();
            }
            Event::Done(outcome) => break outcome,
        }
    };
    server.join().expect("the serving thread panicked");
    tally_case("pipe:", case, &expected);
    if held {
        prop_support::tally("pipe: a background read caught a byte before the hijack");
    }
    check_outcome(case, &expected, &outcome)?;
    //= SPEC.md#background-read
    //= type=test
    //# A background read MUST NOT start after the connection was hijacked.
    let expected_reads = u64::from(expected.background_from.is_some());
    prop_assert_eq!(
        client.background_reads_started(),
        expected_reads,
        "background reads started"
    );
    prop_assert_eq!(
        outcome.handles.0.as_ref().and_then(CloseNotify::fired),
        case.plan.subscribe.then_some(Fired::HandlerDone)
    );
    prop_assert_eq!(outcome.handles.1.fired(), Some(Fired::HandlerDone));
    //= SPEC.md#hijack-handover
    //= type=test
    //# The hijack MUST flush everything the handler wrote before it returns the parts, so
    //# that the client receives it before any byte the hijacker writes.
    check_client_wire(case, &client.read_to_end())
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over bytes followed by every byte later read from the stream MUST equal
//# the bytes the client sent after the last byte consumed by the request head, the
//# handler's body reads and the server's body discard, in order, each exactly once.
/// Bytes survive a hijack on the in-memory pipe.
#[test]
fn bytes_survive_hijack_on_the_pipe() {
    prop_support::run_property(
        10_000,
        "proptest-regressions/prop_handover.txt",
        "pipe:",
        case_strategy(),
        |case| run_pipe_case(&case),
    );
}

// ---------------------------------------------------------------------------------------
// TCP (loopback): the same property on the real transport, fewer cases
// ---------------------------------------------------------------------------------------

struct TcpCase {
    plan: HandlerPlan,
    gates: Gates,
}

/// The case the loopback server's handler serves next (cases run one at a time).
static TCP_CASE: Mutex<Option<TcpCase>> = Mutex::new(None);

fn tcp_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let handler = |req: Request<'_>, w: ResponseWriter<'_, TcpConn>| {
            let case = TCP_CASE.lock().unwrap().take().expect("no case to serve");
            serve_plan(&case.plan, &case.gates, req, w, |s: &TcpStream| {
                matches!((s.read_timeout(), s.write_timeout()), (Ok(None), Ok(None)))
            });
        };
        Server::bind("127.0.0.1:0", ServerConfig::default(), handler).unwrap()
    })
}

fn deliver_tcp(client: &mut TcpStream, expected: &Expected, moment: u8) {
    for (bytes, _) in expected.writes.iter().filter(|(_, m)| *m == moment) {
        client.write_all(bytes).unwrap();
    }
}

fn run_tcp_case(case: &Case) -> Result<(), TestCaseError> {
    let expected = model(case);
    let server = tcp_server();
    let (events_tx, events) = channel();
    let (go, go_rx) = channel();
    *TCP_CASE.lock().unwrap() = Some(TcpCase {
        plan: case.plan.clone(),
        gates: Gates {
            events: events_tx,
            go: Mutex::new(go_rx),
        },
    });
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(hijack_testkit::GUARD))
        .unwrap();
    deliver_tcp(&mut client, &expected, BEFORE);
    let outcome = loop {
        match events
            .recv_timeout(hijack_testkit::GUARD)
            .expect("the handler stopped")
        {
            Event::Gate(gate) => {
                deliver_tcp(&mut client, &expected, gate + 1);
                if gate == 3 {
                    client.shutdown(std::net::Shutdown::Write).unwrap();
                }
                go.send(()).unwrap();
            }
            Event::Done(outcome) => break outcome,
        }
    };
    tally_case("tcp:", case, &expected);
    check_outcome(case, &expected, &outcome)?;
    let mut wire = Vec::new();
    client.read_to_end(&mut wire).unwrap();
    check_client_wire(case, &wire)
}

//= SPEC.md#hijack-handover
//= type=test
//# The handed-over bytes followed by every byte later read from the stream MUST equal
//# the bytes the client sent after the last byte consumed by the request head, the
//# handler's body reads and the server's body discard, in order, each exactly once.
/// Bytes survive a hijack on loopback TCP (fewer cases: each is a real connection).
#[test]
fn bytes_survive_hijack_on_tcp() {
    prop_support::run_property(
        300,
        "proptest-regressions/prop_handover_tcp.txt",
        "tcp:",
        case_strategy(),
        |case| run_tcp_case(&case),
    );
}
