//! The connect profile (SPEC.md#connect-profile): CONNECT tunnels to a target the harness
//! runs, an echo listener on 127.0.0.1 ([`EchoTarget`]). A case names it with the tokens
//! [`ECHO_TOKEN`] and [`REFUSED_TOKEN`], replaced when the case runs; the `expect_tunnel` step
//! reads the 2xx head that opens a tunnel and leaves what follows to `expect_bytes`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::vector::{Endpoint, Level, ResponseExpect, Step, Vector, latin1_string};
use crate::wire::{Client, ReadEnd, WireLog, escape};

/// The section of SPEC.md this profile is.
pub const SPEC: &str = "SPEC.md#connect-profile";

/// Replaced in every `data` by `127.0.0.1:PORT` of the harness's echo listener.
pub const ECHO_TOKEN: &str = "${CONNECT_ECHO}";

/// Replaced in every `data` by `127.0.0.1:PORT` of a port on which nothing listens (bound,
/// then closed, by the harness): a CONNECT to it must be refused.
pub const REFUSED_TOKEN: &str = "${CONNECT_REFUSED}";

pub(crate) const TUNNELS: &str = "SPEC.md#connect-profile: \"A CONNECT request for 127.0.0.1:PORT of a listening port MUST be answered with a 2xx response without Content-Length or Transfer-Encoding, after which the server MUST relay every byte in both directions, in order, starting with the bytes the client sent with the request head, and MUST pass a half-close on in each direction.\"";
pub(crate) const REFUSES: &str = "SPEC.md#connect-profile: \"A CONNECT request that the server does not tunnel, for a port on which nothing listens or for a target that is not an authority, MUST be answered with a 4xx or 5xx response, after which the server MUST close the connection without reading the bytes that follow the request head as a request and without relaying them.\"";

/// What the echo listener sends after the end of stream, before its half-close: a tunnel
/// that ends on the client's half-close instead of passing it on loses it.
pub const HALF_CLOSE_SEEN: &str = "#the target saw the half-close#";

/// The echo listener a run's connect cases tunnel to: on 127.0.0.1, one thread per
/// connection, echoing every byte until the end of stream, then sending [`HALF_CLOSE_SEEN`]
/// and half-closing. Stopped when dropped.
pub struct EchoTarget {
    addr: SocketAddr,
    refused: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoTarget {
    /// Starts the listener, and finds a port on which nothing listens.
    pub fn start() -> std::io::Result<EchoTarget> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let refused = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = conn.write_all(HALF_CLOSE_SEEN.as_bytes());
                    let _ = conn.shutdown(Shutdown::Write);
                });
            }
        });
        Ok(EchoTarget {
            addr,
            refused,
            stop,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT` of the echo listener.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT` of a port on which nothing listens.
    pub fn refused_authority(&self) -> String {
        self.refused.to_string()
    }

    /// `v` with the tokens replaced.
    pub fn substitute(&self, v: &Vector) -> Vector {
        let mut v = v.clone();
        for s in &mut v.steps {
            if let Step::Send { data, .. } = s {
                *data = data
                    .replace(ECHO_TOKEN, &self.authority())
                    .replace(REFUSED_TOKEN, &self.refused_authority());
            }
        }
        v
    }
}

impl Drop for EchoTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The CONNECT request head for `authority`.
pub fn request(authority: &str) -> String {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
}

struct Case(Vector);

fn case(name: &str, description: &str, cite: &str) -> Case {
    Case(crate::cases::contract_vector(
        &format!("connect/{name}"),
        Level::Must,
        SPEC,
        description,
        cite,
        vec![Endpoint::Connect],
    ))
}

const END_MARK: &str = crate::cases::END_MARK;
use crate::cases::{HIDDEN, PATTERN};

impl Case {
    fn step(mut self, s: Step) -> Case {
        self.0.steps.push(s);
        self
    }
    fn send_in(self, data: &str, repeat: Option<usize>, write_size: Option<usize>) -> Case {
        self.step(Step::Send {
            conn: 0,
            data: data.into(),
            repeat,
            write_size,
            pause_ms: write_size.map(|_| 1),
        })
    }
    fn send(self, data: &str) -> Case {
        self.send_in(data, None, None)
    }
    fn tunnel(self) -> Case {
        self.step(Step::ExpectTunnel { conn: 0 })
    }
    fn bytes(self, data: &str, repeat: Option<usize>) -> Case {
        self.step(Step::ExpectBytes {
            conn: 0,
            data: data.into(),
            repeat,
        })
    }
    /// The echo to its end, as the raw profile's: an end mark after the bytes, then a
    /// half-close, which the tunnel passes on to the echo target, whose answer to it and
    /// close the tunnel passes back.
    fn echoed_to_end(self, data: &str, repeat: Option<usize>) -> Case {
        self.send(END_MARK)
            .bytes(data, repeat)
            .bytes(END_MARK, None)
            .half_closed()
    }
    /// A half-close, the echo target's answer to it, and the close.
    fn half_closed(self) -> Case {
        self.step(Step::ShutdownWrite { conn: 0 })
            .bytes(HALF_CLOSE_SEEN, None)
            .step(Step::ExpectClose { conn: 0 })
    }
    fn refused(self, first: ResponseExpect) -> Case {
        self.step(Step::ExpectResponses {
            conn: 0,
            responses: Some(vec![first]),
            close: true,
            close_level: Some(Level::Must),
            max_responses: Some(1),
            follow_up: true,
        })
    }
}

fn error_status(status: u16) -> ResponseExpect {
    let mut r = ResponseExpect::status(status);
    r.accept = vec!["4xx".into(), "5xx".into()];
    r
}

/// Every case of the profile, in run order.
pub fn cases() -> Vec<Vector> {
    let head = request(ECHO_TOKEN);
    vec![
        case(
            "bytes-with-head",
            "bytes sent in the same write as the CONNECT head are relayed first, after the 2xx",
            TUNNELS,
        )
        .send(&format!("{head}hello"))
        .tunnel()
        .echoed_to_end("hello", None),
        case(
            "tunnel-100k",
            "100 KiB sent after the 2xx come back exactly, in order",
            TUNNELS,
        )
        .send(&head)
        .tunnel()
        .send_in(PATTERN, Some(1600), None)
        .echoed_to_end(PATTERN, Some(1600)),
        case(
            "one-byte-at-a-time",
            "the CONNECT head and the first tunnel bytes written one byte per write are all relayed",
            TUNNELS,
        )
        .send_in(&format!("{head}hello"), None, Some(1))
        .tunnel()
        .echoed_to_end("hello", None),
        case(
            "half-close",
            "the client half-closes right after its bytes: the server passes the half-close on and still relays what the target sends after it (its echo, then what it sends when it sees the half-close), then the target's close",
            TUNNELS,
        )
        .send(&head)
        .tunnel()
        .send("last words")
        .step(Step::ShutdownWrite { conn: 0 })
        .bytes(&format!("last words{HALF_CLOSE_SEEN}"), None)
        .step(Step::ExpectClose { conn: 0 }),
        case(
            "refused-port",
            "a CONNECT to a port on which nothing listens, with a request in the same write: an error response, then the close; the request is never answered nor relayed (draft-ietf-httpbis-optimistic-upgrade)",
            REFUSES,
        )
        .send(&format!("{}{HIDDEN}", request(REFUSED_TOKEN)))
        .refused(error_status(502)),
        case(
            "malformed-authority",
            "a CONNECT whose target is not an authority (origin-form), with a request in the same write: 400 (or another error), then the close; the request is never answered",
            REFUSES,
        )
        .send(&format!(
            "CONNECT /not-an-authority HTTP/1.1\r\nHost: conform\r\n\r\n{HIDDEN}"
        ))
        .refused(error_status(400)),
    ]
    .into_iter()
    .map(|c| c.0)
    .collect()
}

/// The preflight's CONNECT: the request head to `echo`, then one byte after the response;
/// good when a 2xx head opens a tunnel and the byte comes back. Returns what came and whether it was good.
pub(crate) fn probe(
    addr: SocketAddr,
    timeout: std::time::Duration,
    echo: &EchoTarget,
) -> (String, bool) {
    let mut log = WireLog::new();
    let mut c = match Client::connect(0, addr, timeout) {
        Ok(c) => c,
        Err(e) => return (format!("connect: {e}"), false),
    };
    let deadline = Instant::now() + timeout;
    // The byte goes after the 2xx: a server that loses the bytes sent with the head offers
    // the profile, and `connect/bytes-with-head` finds the loss.
    let head = request(&echo.authority());
    c.send(
        &mut log,
        head.as_bytes(),
        usize::MAX,
        std::time::Duration::ZERO,
    );
    if let Some((_, _, observed)) = expect_tunnel(&mut c, &mut log, deadline) {
        c.shutdown_write(&mut log);
        return (observed, false);
    }
    c.send(&mut log, b"x", usize::MAX, std::time::Duration::ZERO);
    while c.buf.is_empty() && c.fill(&mut log, deadline).is_ok() {}
    c.shutdown_write(&mut log);
    if c.buf == b"x" {
        ("2xx, then the byte relayed back".into(), true)
    } else {
        let shown = &c.buf[..c.buf.len().min(40)];
        (format!("2xx, then \"{}\"", escape(shown)), false)
    }
}

/// Reads the response head that opens a tunnel: a 2xx (1xx skipped) without Content-Length
/// or Transfer-Encoding; what follows the head stays in `c.buf`, the tunnel's. `None` when
/// it came; else `(decided, expected, observed)`.
pub(crate) fn expect_tunnel(
    c: &mut Client,
    log: &mut WireLog,
    deadline: Instant,
) -> Option<(bool, String, String)> {
    let expected =
        "a 2xx response head without Content-Length or Transfer-Encoding, then the tunnel"
            .to_string();
    loop {
        let end = c.buf.windows(4).position(|w| w == b"\r\n\r\n");
        let Some(end) = end else {
            match c.fill(log, deadline) {
                Ok(_) => continue,
                Err(ReadEnd::Timeout) => {
                    return Some((
                        false,
                        expected,
                        format!(
                            "{} bytes of a head, then nothing within the step's time",
                            c.buf.len()
                        ),
                    ));
                }
                Err(e) => {
                    return Some((
                        true,
                        expected,
                        format!("{e} after \"{}\"", escape(&c.buf[..c.buf.len().min(80)])),
                    ));
                }
            }
        };
        let head: Vec<u8> = c.buf.drain(..end + 4).collect();
        let text = latin1_string(&head);
        let status: Option<u16> = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|_| text.starts_with("HTTP/1."));
        let first = text.lines().next().unwrap_or_default().to_string();
        match status {
            Some(100..=199) => continue,
            Some(200..=299) => {
                let framed = text.lines().skip(1).any(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("content-length:") || l.starts_with("transfer-encoding:")
                });
                if framed {
                    return Some((
                        true,
                        expected,
                        format!(
                            "{first} with a body framing field (RFC 9110 §9.3.6: a server MUST NOT send one in a 2xx to CONNECT): \"{}\"",
                            escape(&head)
                        ),
                    ));
                }
                return None;
            }
            _ => return Some((true, expected, format!("\"{}\"", escape(&head)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_target_echoes_then_passes_the_half_close_on_and_the_refused_port_refuses() {
        let echo = EchoTarget::start().unwrap();
        let mut s = TcpStream::connect(echo.authority()).unwrap();
        s.write_all(b"abc").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, format!("abc{HALF_CLOSE_SEEN}").as_bytes());
        assert_eq!(
            TcpStream::connect(echo.refused_authority())
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::ConnectionRefused
        );
    }

    #[test]
    fn every_token_is_replaced() {
        let echo = EchoTarget::start().unwrap();
        for v in cases() {
            let json = serde_json::to_string(&echo.substitute(&v)).unwrap();
            assert!(!json.contains("${CONNECT"), "{}", v.name);
        }
    }
}
