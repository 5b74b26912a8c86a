//! The preflight of the endpoint contract (SPEC.md#conformance-endpoints): before any case,
//! one request of each kind the cases rely on, on a fresh connection each. It says what the
//! target offers and which rule it breaks, and the cases that rely on a broken rule are
//! UNSUPPORTED with that reason instead of failing for it. It also learns how the target
//! answers the follow-up request, so that the runner can tell that answer from others.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runner::{FollowUpAnswer, exchange, follow_up_request, names_request};
use crate::suite::Profile;
use crate::vector::{Endpoint, Step, Vector, latin1_bytes};
use crate::wire::{Response, WireLog};

/// What the contract lets a case rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// An endpoint of the vector's `needs`.
    Endpoint(Endpoint),
    /// Any other path answered 200 to GET.
    Get,
    /// Any other path answered 200 to POST with a Content-Length body.
    Post,
}

/// One probe of the preflight and what came of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ContractCheck {
    /// What was sent, e.g. `POST / with a 5-byte body`.
    pub probe: String,
    /// What came back, e.g. `200` or `501`.
    pub answer: String,
    /// Whether the answer is what the contract asks for.
    pub ok: bool,
    /// The rule broken, when not ok (`the contract needs 200 for any method`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Whether the contract lets a server lack it (the memory case's endpoints).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// What the preflight found.
#[derive(Clone, Debug, Default)]
pub struct Preflight {
    /// Every probe, in order.
    pub checks: Vec<ContractCheck>,
    /// The needs the target does not meet, each with the broken rule in words.
    pub broken: Vec<(Need, String)>,
    /// How the target answers the follow-up request.
    pub follow_up: FollowUpAnswer,
    /// The profiles whose endpoint the target serves (`raw` always: its cases judge a
    /// missing `/echo` themselves, as UNSUPPORTED).
    pub offered: Vec<Profile>,
}

impl Preflight {
    /// Probes the target at `addr`; `run` makes the ids unique to the run. The connect
    /// profile is not probed (see [`Preflight::run_with`]).
    pub fn run(addr: SocketAddr, timeout: Duration, run: &str) -> Preflight {
        Preflight::run_with(addr, timeout, run, None)
    }

    /// As [`Preflight::run`], and with `echo` a CONNECT to it (the connect profile).
    pub fn run_with(
        addr: SocketAddr,
        timeout: Duration,
        run: &str,
        tunnel: Option<&crate::connect::EchoTarget>,
    ) -> Preflight {
        let mut p = Preflight {
            offered: vec![Profile::Raw],
            ..Preflight::default()
        };
        let get = ask(
            addr,
            timeout,
            "GET / HTTP/1.1\r\nHost: conform\r\n\r\n",
            None,
        );
        p.record(Need::Get, "GET /", &get, |r| r.status == 200, "200");
        let post = ask(
            addr,
            timeout,
            "POST / HTTP/1.1\r\nHost: conform\r\nContent-Length: 5\r\n\r\nhello",
            None,
        );
        p.record(
            Need::Post,
            "POST / with a 5-byte body",
            &post,
            |r| r.status == 200,
            "200 for any method",
        );
        let chunked = ask(
            addr,
            timeout,
            "POST / HTTP/1.1\r\nHost: conform\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            None,
        );
        // Not a need of the contract: RFC 9112 §7.1 requires every recipient to parse
        // chunked, so the cases that send it judge a refusal themselves.
        p.record(
            None,
            "POST / with a chunked body",
            &chunked,
            |r| r.status == 200,
            "200 (RFC 9112 §7.1: \"A recipient MUST be able to parse the chunked transfer coding\"); the chunked cases judge it",
        );
        let token = format!("{run}-preflight");
        let fu = ask(addr, timeout, &follow_up_request(&token), None);
        if let Ok(r) = &fu {
            p.follow_up = FollowUpAnswer {
                status: Some(r.status),
                reflects: r.body.windows(token.len()).any(|w| w == token.as_bytes()),
                names_method: names_request(r, &token),
            };
        }
        p.checks.push(ContractCheck {
            probe: "GET /?follow-up=… (the follow-up request)".into(),
            answer: match (&fu, p.follow_up.reflects) {
                (Ok(r), true) if p.follow_up.names_method => {
                    format!("{}, the body names the method and target", r.status)
                }
                (Ok(r), true) => format!("{}, the body names the target", r.status),
                (Ok(r), false) => format!(
                    "{}, the body does not name the target (answers are told apart by status and order)",
                    r.status
                ),
                (Err(e), _) => e.clone(),
            },
            ok: fu.as_ref().is_ok_and(|r| r.status == 200),
            rule: if fu.as_ref().is_ok_and(|r| r.status == 200) {
                String::new()
            } else {
                "the contract needs 200 for any other path".into()
            },
            optional: false,
        });
        let echo = ask(
            addr,
            timeout,
            "GET /echo HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            Some(b"x"),
        );
        p.record(
            Need::Endpoint(Endpoint::Echo),
            "GET /echo with Upgrade: echo, then one byte",
            &echo,
            |r| {
                r.status == 101
                    && r.has_token("upgrade", "echo")
                    && r.has_token("connection", "upgrade")
                    && r.body == b"x"
            },
            "101 with Upgrade: echo and Connection: Upgrade, then the byte echoed",
        );
        let id = format!("{run}-preflight");
        let cn = ask(
            addr,
            timeout,
            &format!(
                "GET /close-notify/{id}?timeout_ms=1 HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n"
            ),
            None,
        );
        let ev = cn.as_ref().map_err(Clone::clone).and_then(|_| {
            ask(
                addr,
                timeout,
                &format!("GET /events/{id} HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n"),
                None,
            )
        });
        let recorded = |r: &Response| {
            r.status == 200
                && serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v.get("close_notify").cloned())
                    .is_some()
        };
        let both = match (&cn, &ev) {
            (Ok(c), Ok(e)) if c.status == 200 && recorded(e) => Ok(e.clone()),
            (Ok(c), _) if c.status != 200 => Ok(c.clone()),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e.clone()),
            (Ok(_), Ok(e)) => Ok(e.clone()),
        };
        p.record(
            Need::Endpoint(Endpoint::CloseNotify),
            "GET /close-notify/{id}?timeout_ms=1, then GET /events/{id}",
            &both,
            |r| r.status == 200 && recorded(r),
            "200 after the timeout, then 200 with a JSON record holding close_notify",
        );
        p.profile_probes(addr, timeout, tunnel);
        for path in ["/stats", "/hold"] {
            let req = if path == "/hold" {
                "GET /hold HTTP/1.1\r\nHost: conform\r\nConnection: Upgrade\r\nUpgrade: hold\r\n\r\n"
                    .to_string()
            } else {
                format!("GET {path} HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n")
            };
            let r = ask(addr, timeout, &req, None);
            p.checks.push(ContractCheck {
                probe: format!("GET {path} (optional: the memory case only)"),
                answer: describe(&r),
                ok: r
                    .as_ref()
                    .is_ok_and(|r| r.status == if path == "/hold" { 101 } else { 200 }),
                rule: String::new(),
                optional: true,
            });
        }
        if p.checks.last().is_some_and(|c| c.ok) {
            // `ask` closed its side of the held /hold connection: release it at once.
            let _ = ask(
                addr,
                timeout,
                "GET /release HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n",
                None,
            );
        }
        p
    }

    fn record(
        &mut self,
        need: impl Into<Option<Need>>,
        probe: &str,
        answer: &Result<Response, String>,
        ok: impl Fn(&Response) -> bool,
        wanted: &str,
    ) {
        let need: Option<Need> = need.into();
        let good = answer.as_ref().is_ok_and(&ok);
        let rule = if good {
            String::new()
        } else {
            let then = if need.is_some() {
                "; the cases that rely on it are UNSUPPORTED"
            } else {
                ""
            };
            format!(
                "{probe} answered {}: the contract needs {wanted}{then}",
                describe(answer)
            )
        };
        if let (false, Some(need)) = (good, need) {
            self.broken.push((need, rule.clone()));
        }
        self.checks.push(ContractCheck {
            probe: probe.into(),
            answer: describe(answer),
            ok: good,
            rule,
            optional: false,
        });
    }

    /// The endpoint of each profile but `raw` (SPEC.md#conformance-endpoints, Profiles): one
    /// that answers is offered; one that does not is "not offered", its profile not run
    /// unless asked for (`--profile`), and then its cases are UNSUPPORTED.
    fn profile_probes(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        echo: Option<&crate::connect::EchoTarget>,
    ) {
        let key = crate::websocket::KEY;
        let ws = ask(addr, timeout, &crate::websocket::handshake(key, "13"), None);
        let want = crate::websocket::upgraded(key);
        // Offered when it upgrades with the accept value; a close option on the 101 is for
        // the cases to judge (`websocket/frame-after-101`).
        let good = ws
            .as_ref()
            .is_ok_and(|r| r.status == 101 && want.headers.iter().all(|(n, v)| r.has_token(n, v)));
        self.profile(
            Profile::Websocket,
            Endpoint::Ws,
            "GET /ws with a WebSocket handshake (the websocket profile)",
            describe(&ws),
            good,
            "101 with Upgrade: websocket, Connection: Upgrade and the Sec-WebSocket-Accept of the key",
        );
        let Some(echo) = echo else { return };
        let (answer, good) = crate::connect::probe(addr, timeout, echo);
        self.profile(
            Profile::Connect,
            Endpoint::Connect,
            "CONNECT to the harness's echo listener, then one byte after the 2xx (the connect profile)",
            answer,
            good,
            "a 2xx without Content-Length or Transfer-Encoding, then the byte relayed back",
        );
    }

    fn profile(
        &mut self,
        profile: Profile,
        endpoint: Endpoint,
        probe: &str,
        answer: String,
        good: bool,
        wanted: &str,
    ) {
        if good {
            self.offered.push(profile);
        } else {
            self.broken.push((
                Need::Endpoint(endpoint),
                format!("{probe} answered {answer}: the profile needs {wanted}"),
            ));
        }
        self.checks.push(ContractCheck {
            probe: probe.into(),
            answer,
            ok: good,
            rule: if good {
                String::new()
            } else {
                format!(
                    "not offered: the {} profile is not run (--profile {} runs it, its cases then UNSUPPORTED)",
                    profile.name(),
                    profile.name()
                )
            },
            optional: true,
        });
    }

    /// The broken rule a vector relies on, if any.
    pub fn blocks(&self, v: &Vector) -> Option<&str> {
        let needs = needs(v);
        self.broken
            .iter()
            .find(|(n, _)| needs.contains(n))
            .map(|(_, why)| why.as_str())
    }
}

/// What a vector relies on: its endpoints, GET, and POST when it sends one.
pub fn needs(v: &Vector) -> Vec<Need> {
    let mut out: Vec<Need> = v.needs.iter().map(|&e| Need::Endpoint(e)).collect();
    out.push(Need::Get);
    for s in &v.steps {
        let Step::Send { data, .. } = s else { continue };
        let bytes = latin1_bytes(data).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        if text.contains("\npost ") || text.starts_with("post ") {
            out.push(Need::Post);
        }
    }
    out.dedup();
    out
}

fn describe(r: &Result<Response, String>) -> String {
    match r {
        Ok(r) => r.status.to_string(),
        Err(e) => e.clone(),
    }
}

/// Sends `req` on a fresh connection and reads one response; after a 101, `then` is sent and
/// as many bytes read back into the response's body.
fn ask(
    addr: SocketAddr,
    timeout: Duration,
    req: &str,
    then: Option<&[u8]>,
) -> Result<Response, String> {
    let mut log = WireLog::new();
    let (mut c, mut r) = exchange(addr, timeout, req, &mut log)?;
    let deadline = Instant::now() + timeout;
    if let (101, Some(then)) = (r.status, then) {
        c.send(&mut log, then, usize::MAX, Duration::ZERO);
        while c.buf.len() < then.len() {
            if c.fill(&mut log, deadline).is_err() {
                break;
            }
        }
        r.body = c.buf.clone();
    }
    c.shutdown_write(&mut log);
    Ok(r)
}
