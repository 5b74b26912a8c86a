//! The websocket profile (SPEC.md#websocket-profile): RFC 6455 on `/ws`, an echo of every
//! data message. Its cases, as vectors whose client frames (masked, as RFC 6455 §5.3 requires
//! of a client) are computed here when the case is built with tungstenite's protocol types,
//! and the `expect_ws_messages` step, which parses the server's frames with the same types
//! (a server may fragment an echo, so its frames are not compared as bytes).

use std::io::Cursor;
use std::time::Instant;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

use crate::vector::{
    Endpoint, Level, ResponseExpect, Step, Vector, WsMessage, latin1_bytes, latin1_string,
};
use crate::wire::{Client, ReadEnd, WireLog, escape};

/// The section of SPEC.md this profile is.
pub const SPEC: &str = "SPEC.md#websocket-profile";

/// The `Sec-WebSocket-Key` of RFC 6455 §1.3 ("the sample nonce").
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The 4-byte masking key of the client frames: RFC 6455 §5.7's examples use it. (RFC 6455
/// wants it unpredictable against proxies' cache poisoning; a test vector must be exact.)
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The SPEC.md sentences the cases check, quoted.
pub(crate) const ECHOES: &str = "SPEC.md#websocket-profile: \"A request for /ws that is a valid WebSocket opening handshake MUST be answered with 101 Switching Protocols carrying Upgrade: websocket, Connection: Upgrade without the close option and the Sec-WebSocket-Accept derived from its Sec-WebSocket-Key, after which the server MUST echo every data message it receives as one message of the same type and payload, starting with the frames sent with the handshake, in order.\"";
pub(crate) const CONTROL: &str = "SPEC.md#websocket-profile: \"The server MUST answer a Ping with a Pong carrying the same payload, and a Close with a Close, after which it MUST close the connection.\"";
pub(crate) const REFUSED: &str = "SPEC.md#websocket-profile: \"An opening handshake for /ws whose Sec-WebSocket-Key is not 16 bytes in base64, or whose Sec-WebSocket-Version is not 13, MUST be refused with a 4xx status and no upgrade, after which the server MUST read the connection as HTTP: a request pipelined after the refused handshake is answered as a request or the connection is closed, never read as WebSocket frames.\"";

/// The opening handshake of `/ws` with `key` and `version`.
pub fn handshake(key: &str, version: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// `frame` as a client sends it: masked with [`MASK`].
pub fn client_frame(mut frame: Frame) -> Vec<u8> {
    frame.header_mut().mask = Some(MASK);
    let mut out = Vec::new();
    // Formatting into a Vec cannot fail.
    let _ = frame.format(&mut out);
    out
}

/// A masked client text or binary frame.
pub fn data_frame(payload: &[u8], binary: bool, opcode_continue: bool, fin: bool) -> Vec<u8> {
    let data = if opcode_continue {
        Data::Continue
    } else if binary {
        Data::Binary
    } else {
        Data::Text
    };
    client_frame(Frame::message(payload.to_vec(), OpCode::Data(data), fin))
}

/// A masked client Close with status 1000 (normal closure).
pub fn close_frame() -> Vec<u8> {
    client_frame(Frame::close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    })))
}

/// The 101 a valid handshake with `key` gets.
pub fn upgraded(key: &str) -> ResponseExpect {
    let mut r = ResponseExpect::status(101);
    r.headers.insert("upgrade".into(), "websocket".into());
    r.headers.insert("connection".into(), "upgrade".into());
    r.headers.insert(
        "sec-websocket-accept".into(),
        tungstenite::handshake::derive_accept_key(key.as_bytes()),
    );
    r.lacks.insert("connection".into(), "close".into());
    r
}

fn message(kind: &str, data: &[u8], repeat: Option<usize>) -> WsMessage {
    WsMessage {
        kind: kind.into(),
        data: latin1_string(data),
        repeat,
    }
}

struct Case(Vector);

fn case(name: &str, description: &str, cite: &str) -> Case {
    Case(crate::cases::contract_vector(
        &format!("websocket/{name}"),
        Level::Must,
        SPEC,
        description,
        cite,
        vec![Endpoint::Ws],
    ))
}

impl Case {
    fn step(mut self, s: Step) -> Case {
        self.0.steps.push(s);
        self
    }
    fn send_in(self, bytes: &[u8], repeat: Option<usize>, write_size: Option<usize>) -> Case {
        self.step(Step::Send {
            conn: 0,
            data: latin1_string(bytes),
            repeat,
            write_size,
            pause_ms: write_size.map(|_| 1),
        })
    }
    fn send(self, bytes: &[u8]) -> Case {
        self.send_in(bytes, None, None)
    }
    fn expect(self, responses: Vec<ResponseExpect>) -> Case {
        self.step(Step::ExpectResponses {
            conn: 0,
            responses: Some(responses),
            close: false,
            close_level: None,
            max_responses: None,
            follow_up: false,
        })
    }
    fn messages(self, messages: Vec<WsMessage>) -> Case {
        self.step(Step::ExpectWsMessages { conn: 0, messages })
    }
    /// The echo of `messages`, then of an end mark sent after them, so that a lost message
    /// is decided when the end mark comes first.
    fn echoed(self, mut messages: Vec<WsMessage>) -> Case {
        messages.push(message("text", END_MARK.as_bytes(), None));
        self.send(&data_frame(END_MARK.as_bytes(), false, false, true))
            .messages(messages)
    }
    /// The close handshake: a Close, the server's Close, the server's close.
    fn closed(self) -> Case {
        self.send(&close_frame())
            .messages(vec![message("close", b"", None)])
            .step(Step::ExpectClose { conn: 0 })
    }
}

/// The text message sent after a case's messages, echoed after them.
const END_MARK: &str = crate::cases::END_MARK;

/// 64 distinct bytes: a lost or repeated byte shifts every later one.
const PATTERN: &[u8] = crate::cases::PATTERN.as_bytes();

/// Every case of the profile, in run order.
pub fn cases() -> Vec<Vector> {
    let hs = handshake(KEY, "13");
    let hello = data_frame(b"hello", false, false, true);
    let with = |a: &str, b: &[u8]| [a.as_bytes(), b].concat();
    // 100 KiB in one binary frame: the header, then the masked payload, which repeats
    // every 64 bytes because the mask repeats every 4.
    let big = data_frame(&PATTERN.repeat(1600), true, false, true);
    let big_head = big.len() - 1600 * PATTERN.len();
    let second_key = "x3JJHMbDL1EzLkh9GBhXDw==";
    let refused_version = {
        let mut r = ResponseExpect::status(426);
        r.accept.push("4xx".into());
        r.headers
            .insert("sec-websocket-version".into(), "13".into());
        r
    };
    let mut bad_key = ResponseExpect::status(400);
    bad_key.accept.push("4xx".into());
    let mut after = ResponseExpect::status(200);
    after.names = Some("GET /?after-refused".into());
    let refused = |c: Case, r: Vec<ResponseExpect>, max: usize| {
        c.step(Step::ExpectResponses {
            conn: 0,
            responses: Some(r),
            close: false,
            close_level: None,
            max_responses: Some(max),
            follow_up: true,
        })
    };
    vec![
        case(
            "frame-with-handshake",
            "a text frame sent in the same write as the opening handshake is echoed (tokio-tungstenite's and Bun's lost first message)",
            ECHOES,
        )
        .send(&with(&hs, &hello))
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("text", b"hello", None)])
        .closed(),
        case(
            "frame-right-after-handshake",
            "a text frame written right after the handshake, before the 101 arrived, is echoed (gorilla/websocket closing when the client spoke first)",
            ECHOES,
        )
        .send(hs.as_bytes())
        .send(&hello)
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("text", b"hello", None)])
        .closed(),
        case(
            "frame-after-101",
            "a handshake with another key gets its own Sec-WebSocket-Accept and Connection: Upgrade without close (actix's Connection: close on a 101); a frame sent after the 101 is echoed",
            ECHOES,
        )
        .send(handshake(second_key, "13").as_bytes())
        .expect(vec![upgraded(second_key)])
        .send(&hello)
        .echoed(vec![message("text", b"hello", None)])
        .closed(),
        case(
            "one-byte-at-a-time",
            "the handshake and a frame written one byte per write are all handed over and the frame echoed",
            ECHOES,
        )
        .send_in(&with(&hs, &hello), None, Some(1))
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("text", b"hello", None)])
        .closed(),
        case(
            "100k-message",
            "a 100 KiB binary message sent right after the handshake comes back exactly (tungstenite's into_inner() dropping its read buffer)",
            ECHOES,
        )
        .send(&with(&hs, &big[..big_head]))
        .send_in(&big[big_head..big_head + PATTERN.len()], Some(1600), None)
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("binary", PATTERN, Some(1600))])
        .closed(),
        case(
            "fragmented-message",
            "a text message in three fragments (text, continuation, final continuation) is echoed as one message",
            ECHOES,
        )
        .send(&with(
            &hs,
            &[
                data_frame(b"frag", false, false, false),
                data_frame(b"ment", false, true, false),
                data_frame(b"ed", false, true, true),
            ]
            .concat(),
        ))
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("text", b"fragmented", None)])
        .closed(),
        case(
            "ping-pong",
            "a Ping sent with the handshake is answered by a Pong with its payload, before the echo of a text message sent after the 101",
            CONTROL,
        )
        .send(&with(
            &hs,
            &client_frame(Frame::ping(b"are you there?".to_vec())),
        ))
        .expect(vec![upgraded(KEY)])
        .echoed(vec![message("pong", b"are you there?", None)])
        .closed(),
        case(
            "close-handshake",
            "a Close right after the handshake is answered by a Close, then the server closes the connection",
            CONTROL,
        )
        .send(hs.as_bytes())
        .expect(vec![upgraded(KEY)])
        .closed(),
        refused(
            case(
                "bad-key-refused",
                "a Sec-WebSocket-Key of 5 bytes (base64 of \"short\") is refused with a 4xx and no upgrade",
                REFUSED,
            )
            .send(handshake("c2hvcnQ=", "13").as_bytes()),
            vec![bad_key],
            1,
        ),
        refused(
            case(
                "bad-version-refused",
                "Sec-WebSocket-Version: 12 is refused with 426 (or another 4xx) naming version 13, and no upgrade",
                REFUSED,
            )
            .send(handshake(KEY, "12").as_bytes()),
            vec![refused_version.clone()],
            1,
        ),
        refused(
            case(
                "pipelined-after-refused",
                "a request pipelined after a refused handshake (bad version) is answered as HTTP, never read as frames (kemal)",
                REFUSED,
            )
            .send(
                format!(
                    "{}GET /?after-refused HTTP/1.1\r\nHost: conform\r\n\r\n",
                    handshake(KEY, "12")
                )
                .as_bytes(),
            ),
            vec![refused_version, after],
            2,
        ),
    ]
    .into_iter()
    .map(|c| c.0)
    .collect()
}

/// One complete message the server sent.
struct Got {
    kind: &'static str,
    payload: Vec<u8>,
}

fn describe(kind: &str, payload: &[u8]) -> String {
    let shown = &payload[..payload.len().min(48)];
    format!(
        "{kind} message of {} bytes \"{}\"{}",
        payload.len(),
        escape(shown),
        if shown.len() < payload.len() {
            "…"
        } else {
            ""
        }
    )
}

fn close_code(payload: &[u8]) -> String {
    match payload {
        [a, b, ..] => format!("code {}", u16::from_be_bytes([*a, *b])),
        _ => "no code".into(),
    }
}

/// Reads server frames from `c` until `want` is complete. `None` when every message came as
/// expected; else `(decided, expected, observed)`: a wrong frame or message, or the end of
/// the connection, is decided; nothing more within the step's time is not.
pub(crate) fn expect_messages(
    c: &mut Client,
    log: &mut WireLog,
    deadline: Instant,
    want: &[WsMessage],
) -> Option<(bool, String, String)> {
    let expected_of = |i: usize| {
        let w = &want[i];
        if w.kind == "close" {
            format!("message {} of {}: a close frame", i + 1, want.len())
        } else {
            let data = latin1_bytes(&w.data)
                .unwrap_or_default()
                .repeat(w.repeat.unwrap_or(1));
            format!(
                "message {} of {}: {}",
                i + 1,
                want.len(),
                describe(&w.kind, &data)
            )
        }
    };
    let mut next = 0;
    let mut partial: Option<(&'static str, Vec<u8>)> = None;
    while next < want.len() {
        let mut cur = Cursor::new(&c.buf[..]);
        let parsed = match FrameHeader::parse(&mut cur) {
            Ok(p) => p,
            Err(e) => {
                return Some((
                    true,
                    expected_of(next),
                    format!(
                        "bytes that are not a WebSocket frame ({e}): \"{}\"",
                        escape(&c.buf[..c.buf.len().min(32)])
                    ),
                ));
            }
        };
        let frame = parsed.and_then(|(h, len)| {
            let start = cur.position() as usize;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            (c.buf.len() >= end).then_some((h, start, end))
        });
        let Some((h, start, end)) = frame else {
            match c.fill(log, deadline) {
                Ok(_) => continue,
                Err(ReadEnd::Timeout) => {
                    return Some((
                        false,
                        expected_of(next),
                        format!(
                            "{} bytes of an incomplete frame, then nothing within the step's time",
                            c.buf.len()
                        ),
                    ));
                }
                Err(end) => {
                    return Some((
                        true,
                        expected_of(next),
                        format!("{end} after {} bytes of an incomplete frame", c.buf.len()),
                    ));
                }
            }
        };
        let payload = c.buf[start..end].to_vec();
        c.buf.drain(..end);
        let wrong = |why: String| Some((true, expected_of(next), why));
        if h.mask.is_some() {
            return wrong("a masked frame: RFC 6455 §5.1, a server MUST NOT mask".into());
        }
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return wrong("a frame with a reserved bit set (no extension was negotiated)".into());
        }
        let done = match (h.opcode, partial.take()) {
            (OpCode::Data(Data::Continue), Some((kind, mut so_far))) => {
                so_far.extend_from_slice(&payload);
                if h.is_final {
                    Got {
                        kind,
                        payload: so_far,
                    }
                } else {
                    partial = Some((kind, so_far));
                    continue;
                }
            }
            (OpCode::Data(Data::Continue), None) => {
                return wrong("a continuation frame with no message to continue".into());
            }
            (OpCode::Data(d @ (Data::Text | Data::Binary)), None) => {
                let kind = if d == Data::Text { "text" } else { "binary" };
                if h.is_final {
                    Got { kind, payload }
                } else {
                    partial = Some((kind, payload));
                    continue;
                }
            }
            (OpCode::Data(Data::Text | Data::Binary), Some(_)) => {
                return wrong("a new data frame inside a fragmented message".into());
            }
            (OpCode::Control(ctl), p) => {
                partial = p;
                if !h.is_final || payload.len() > 125 {
                    return wrong("a fragmented or over-long control frame".into());
                }
                match ctl {
                    // A server may ping; an unsolicited Pong needs no answer (RFC 6455 §5.5.3).
                    Control::Ping => continue,
                    Control::Pong if want[next].kind != "pong" => continue,
                    Control::Pong => Got {
                        kind: "pong",
                        payload,
                    },
                    Control::Close => Got {
                        kind: "close",
                        payload,
                    },
                    Control::Reserved(n) => return wrong(format!("reserved opcode {n}")),
                }
            }
            (OpCode::Data(Data::Reserved(n)), _) => {
                return wrong(format!("reserved opcode {n}"));
            }
        };
        let w = &want[next];
        let data = latin1_bytes(&w.data)
            .unwrap_or_default()
            .repeat(w.repeat.unwrap_or(1));
        let good = done.kind == w.kind && (w.kind == "close" || done.payload == data);
        if !good {
            let observed = if done.kind == "close" {
                format!("a close frame ({})", close_code(&done.payload))
            } else if done.kind == w.kind {
                let at = done
                    .payload
                    .iter()
                    .zip(&data)
                    .position(|(a, b)| a != b)
                    .unwrap_or(done.payload.len().min(data.len()));
                format!(
                    "{}; first difference at byte {at}",
                    describe(done.kind, &done.payload)
                )
            } else {
                describe(done.kind, &done.payload)
            };
            return wrong(observed);
        }
        next += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_and_frames_are_rfc_6455_s_examples() {
        // RFC 6455 §1.3: the sample nonce and its accept value.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(KEY.as_bytes()),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        // RFC 6455 §5.7: "A single-frame masked text message" of "Hello".
        assert_eq!(
            data_frame(b"Hello", false, false, true),
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        // RFC 6455 §5.7: "A masked Pong response" of "Hello".
        assert_eq!(
            client_frame(Frame::pong(b"Hello".to_vec())),
            [
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        // RFC 6455 §5.2: a 65536-byte payload takes the 8-byte length.
        let big = data_frame(&[0u8; 65536], true, false, true);
        assert_eq!(&big[..10], [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn the_100k_case_sends_one_frame_whose_masked_payload_repeats() {
        let v = cases()
            .into_iter()
            .find(|v| v.name == "websocket/100k-message")
            .unwrap();
        let mut sent = Vec::new();
        for s in &v.steps {
            if let Step::Send { data, repeat, .. } = s {
                sent.extend(latin1_bytes(data).unwrap().repeat(repeat.unwrap_or(1)));
            }
        }
        let at = sent.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let frame = data_frame(&PATTERN.repeat(1600), true, false, true);
        // The frame, then the end mark and the close handshake's Close.
        assert!(sent[at..].starts_with(&frame), "the 100 KiB frame differs");
        let end = data_frame(END_MARK.as_bytes(), false, false, true);
        assert_eq!(
            &sent[at + frame.len()..],
            &[end, close_frame()].concat()[..]
        );
    }
}
