//! The portable conformance vector (SPEC.md#conformance-vectors): one case as data, what to
//! send and what must be observed. The harness runs every byte-level case from its vector,
//! so `--export` is plain serialization. This module owns the schema only, not its meaning
//! at run time (that is `runner`).

use serde::{Deserialize, Serialize};

/// How strictly a case (or a check) is held.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A miss is a FAIL.
    Must,
    /// A miss is NON-STRICT: RFC 9112 allows the leniency.
    Should,
}

/// An endpoint of SPEC.md#conformance-endpoints that a case needs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `/echo` with `Upgrade: echo`.
    Echo,
    /// `/close-notify/{id}` and `/events/{id}`.
    CloseNotify,
    /// `/ws`, a WebSocket echo (SPEC.md#websocket-profile).
    Ws,
    /// CONNECT to the harness's echo listener (SPEC.md#connect-profile).
    Connect,
}

/// One case as data.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Vector {
    /// Schema version of this file.
    pub version: u32,
    /// `group/name`, the group named after a section of SPEC.md.
    pub name: String,
    /// MUST or SHOULD: how a miss of a check without its own level counts.
    pub level: Level,
    /// The requirement it checks, as `SPEC.md#section` (and an issue, if a historic bug).
    pub spec: String,
    /// What it checks, in a sentence.
    pub description: String,
    /// The sentence that sets the case's level, quoted with its source and section
    /// (`RFC 9112 §6.3: "…"` or `SPEC.md#hijack-handover: "…"`).
    #[serde(default)]
    pub cite: String,
    /// The rule of `conform/src/rules.rs` the case checks (`te-and-cl`), which sets its cite,
    /// levels and accepted statuses; empty for a case of the conformance contract, whose cite
    /// is the SPEC.md sentence it checks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Why an intermediary may differ here per hop, with the sentence that lets it
    /// (empty: the requirement binds a proxy as it binds the origin). With `--intermediary`
    /// such a case is held at SHOULD.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub per_hop: String,
    /// Endpoints the case needs; without one the case is UNSUPPORTED.
    #[serde(default)]
    pub needs: Vec<Endpoint>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Vector {
    /// The vector held at SHOULD, as through an intermediary: its level and every close
    /// level (smuggling stays MUST; the runner holds it so), the reason in the description.
    pub fn through_intermediary(&self) -> Vector {
        let mut v = self.clone();
        v.level = Level::Should;
        for s in &mut v.steps {
            if let Step::ExpectResponses { close_level, .. } = s {
                *close_level = Some(Level::Should);
            }
        }
        v.description = format!(
            "{} [per hop, through an intermediary: {}]",
            v.description, v.per_hop
        );
        v
    }
}

/// One step of a vector. `conn` numbers the case's connections from 0.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Open connection `conn` to the server.
    Connect {
        /// Connection number.
        conn: usize,
    },
    /// Write `data` (Latin-1: one char per byte) repeated `repeat` times; in writes of
    /// `write_size` bytes with `pause_ms` between them, or in one write if `write_size` is
    /// absent.
    Send {
        /// Connection number.
        conn: usize,
        /// The bytes, one char (U+0000 to U+00FF) per byte.
        data: String,
        /// How many times `data` is repeated (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<usize>,
        /// Bytes per write; all at once if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        write_size: Option<usize>,
        /// Pause between two writes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pause_ms: Option<u64>,
    },
    /// Wait.
    Sleep {
        /// Milliseconds.
        ms: u64,
    },
    /// Shut down the sending side of `conn` (half-close).
    ShutdownWrite {
        /// Connection number.
        conn: usize,
    },
    /// Close `conn` with a reset (SO_LINGER 0, then close).
    Reset {
        /// Connection number.
        conn: usize,
    },
    /// Close `conn` normally.
    Close {
        /// Connection number.
        conn: usize,
    },
    /// Read responses from `conn` and check them. See SPEC.md#conformance-vectors.
    ExpectResponses {
        /// Connection number.
        conn: usize,
        /// The responses expected, in order; absent: any number, any status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responses: Option<Vec<ResponseExpect>>,
        /// The server must close the connection after the last one.
        #[serde(default)]
        close: bool,
        /// The level the `close` check is held at, when it differs from the case's (RFC 9112
        /// makes the close a MUST where the status is left to the server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_level: Option<Level>,
        /// Always MUST, whatever the case level: no more than this many responses (a response
        /// to a request hidden in a body is smuggling).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_responses: Option<usize>,
        /// After the responses, send a follow-up request (`GET /?follow-up=${RUN}`), half-close
        /// and read to the end: the connection was closed if it ends unanswered, kept open if
        /// the follow-up is answered, and a response to anything else answers bytes the client
        /// sent as body or head (smuggling). Only on a connection's last step.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        follow_up: bool,
    },
    /// Read exactly these bytes (Latin-1, repeated) from `conn`, such as an echo.
    ExpectBytes {
        /// Connection number.
        conn: usize,
        /// The bytes, one char per byte.
        data: String,
        /// How many times `data` is repeated (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<usize>,
    },
    /// The server closes `conn` (end of stream or reset) with no further byte.
    ExpectClose {
        /// Connection number.
        conn: usize,
    },
    /// Read WebSocket frames from `conn` (SPEC.md#websocket-profile): server frames, unmasked,
    /// fragments reassembled, each message compared with the next of `messages`.
    ExpectWsMessages {
        /// Connection number.
        conn: usize,
        /// The messages expected, in order.
        messages: Vec<WsMessage>,
    },
    /// Read the response head that opens a CONNECT tunnel: a 2xx without Content-Length or
    /// Transfer-Encoding (SPEC.md#connect-profile); what follows is the tunnel's.
    ExpectTunnel {
        /// Connection number.
        conn: usize,
    },
    /// Poll `GET /events/{id}` on fresh connections until `close_notify` is no longer
    /// `"pending"` or `within_ms` passed, then compare.
    ExpectEvent {
        /// The close-notify id.
        id: String,
        /// `"fired"` or `"timeout"`.
        close_notify: String,
        /// How long to poll.
        within_ms: u64,
    },
}

/// One WebSocket message a server must send (SPEC.md#websocket-profile).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WsMessage {
    /// `text`, `binary`, `pong` or `close`.
    pub kind: String,
    /// The payload (Latin-1, one char per byte) repeated `repeat` times; for `close` not
    /// compared (RFC 6455 lets the server choose its status code).
    #[serde(default)]
    pub data: String,
    /// How many times `data` is repeated (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<usize>,
}

/// One expected response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ResponseExpect {
    /// The status code.
    pub status: u16,
    /// Fields that must be present: lower-case name → a token that must be one of the
    /// field's comma-separated items (case-insensitive).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Other statuses as good as `status`, where the RFC leaves the choice to the server:
    /// `"413"` for one code, `"4xx"` for a class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<String>,
    /// The request it answers, `METHOD TARGET`, which its body must name when the
    /// preflight found that the target's bodies name the requests they answer (only the
    /// target when they name only that): so that a response to another request, or responses
    /// out of order, are caught.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
    /// Fields that must not hold a token: lower-case name → the token (`connection` →
    /// `close` on a 101).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lacks: std::collections::BTreeMap<String, String>,
}

impl ResponseExpect {
    /// A response with this status and no field checked.
    pub fn status(status: u16) -> ResponseExpect {
        ResponseExpect {
            status,
            headers: Default::default(),
            accept: Vec::new(),
            names: None,
            lacks: Default::default(),
        }
    }

    /// Whether `status` is the expected one or one of `accept`.
    pub fn allows(&self, status: u16) -> bool {
        status == self.status
            || self.accept.iter().any(|a| match a.as_bytes() {
                [c, b'x', b'x'] => u16::from(c.wrapping_sub(b'0')) == status / 100,
                _ => a.parse() == Ok(status),
            })
    }

    /// `400`, or `400 (or 4xx)` when other statuses are accepted.
    pub fn describe(&self) -> String {
        let mut s = if self.accept.is_empty() {
            self.status.to_string()
        } else {
            format!("{} (or {})", self.status, self.accept.join(", "))
        };
        if let Some(r) = &self.names {
            s.push_str(&format!(" to {r}"));
        }
        s
    }
}

/// The literal replaced, in every `data` and `id`, by a token unique to the run, so that
/// close-notify ids do not collide between runs against one server.
pub const RUN_TOKEN: &str = "${RUN}";

/// Latin-1 string → bytes; `None` if a char is above U+00FF.
pub fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Bytes → Latin-1 string (every byte one char).
pub fn latin1_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}
