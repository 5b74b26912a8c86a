//! The connection lifecycle and the background-read sub-state, as transition tables
//! (SPEC.md#lifecycle).
//!
//! Every state change of a connection goes through [`ConnState::next`] or
//! [`BackgroundState::next`]; a pair not in the table is a bug in the core and is reported as
//! [`InvalidTransition`]. SPEC.md's tables and diagram are checked against these arrays by
//! `tests/spec_tables.rs`, so prose and code cannot drift.

use std::fmt;

/// Where a connection is in its life, as reported to [`crate::ServerConfig::on_state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Accepted; no byte of a request yet.
    New,
    /// A request is being read or its handler runs.
    Active,
    /// Between requests on a keep-alive connection.
    Idle,
    /// Handed to a hijacker: no longer the server's. Terminal.
    Hijacked,
    /// Closed by the server. Terminal.
    Closed,
}

/// What happens to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnEvent {
    /// The first byte of a request head arrived.
    RequestStarted,
    /// A response finished and the connection stays open for the next request.
    ResponseDone,
    /// The handler hijacked the connection.
    Hijack,
    /// The server closes the connection: end of stream, error, timeout, bad input, a response
    /// that must close, a handler panic, or shutdown.
    Close,
}

/// Every transition of the connection lifecycle: `(state, event, next state)`.
pub const CONN_TRANSITIONS: &[(ConnState, ConnEvent, ConnState)] = {
    use ConnEvent::*;
    use ConnState::*;
    &[
        (New, RequestStarted, Active),
        (New, Close, Closed),
        (Active, ResponseDone, Idle),
        (Active, Hijack, Hijacked),
        (Active, Close, Closed),
        (Idle, RequestStarted, Active),
        (Idle, Close, Closed),
    ]
};

/// Whether a background read is pending on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackgroundState {
    /// No background read pending.
    Off,
    /// A one-byte background read is pending.
    Reading,
    /// An abort interrupted the pending read and waits for it to complete.
    Aborting,
}

/// What happens to the background read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackgroundEvent {
    /// Start a background read (only when no byte is held and the connection is not hijacked).
    Start,
    /// Abort: interrupt the pending read and wait for it.
    Abort,
    /// The transport completed the read (byte, end of stream, error or aborted).
    Complete,
}

/// Every transition of the background read: `(state, event, next state)`.
pub const BACKGROUND_TRANSITIONS: &[(BackgroundState, BackgroundEvent, BackgroundState)] = {
    use BackgroundEvent::*;
    use BackgroundState::*;
    &[
        (Off, Start, Reading),
        (Off, Abort, Off),
        (Reading, Abort, Aborting),
        (Reading, Complete, Off),
        (Aborting, Complete, Off),
    ]
};

/// A `(state, event)` pair that is not in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state, as its `Debug` name.
    pub state: &'static str,
    /// The event, as its `Debug` name.
    pub event: &'static str,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no transition for event {} in state {}",
            self.event, self.state
        )
    }
}

impl std::error::Error for InvalidTransition {}

fn lookup<S: Copy + PartialEq + fmt::Debug, E: Copy + PartialEq + fmt::Debug>(
    table: &[(S, E, S)],
    state: S,
    event: E,
    names: fn(S, E) -> (&'static str, &'static str),
) -> Result<S, InvalidTransition> {
    table
        .iter()
        .find(|(s, e, _)| *s == state && *e == event)
        .map(|&(_, _, next)| next)
        .ok_or_else(|| {
            let (state, event) = names(state, event);
            InvalidTransition { state, event }
        })
}

impl ConnState {
    /// The state after `event`, or the error for a pair the table does not list.
    pub fn next(self, event: ConnEvent) -> Result<ConnState, InvalidTransition> {
        lookup(CONN_TRANSITIONS, self, event, |s, e| (s.name(), e.name()))
    }

    /// The state's name as SPEC.md writes it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::New => "New",
            ConnState::Active => "Active",
            ConnState::Idle => "Idle",
            ConnState::Hijacked => "Hijacked",
            ConnState::Closed => "Closed",
        }
    }
}

impl ConnEvent {
    /// The event's name as SPEC.md writes it.
    pub fn name(self) -> &'static str {
        match self {
            ConnEvent::RequestStarted => "RequestStarted",
            ConnEvent::ResponseDone => "ResponseDone",
            ConnEvent::Hijack => "Hijack",
            ConnEvent::Close => "Close",
        }
    }
}

impl BackgroundState {
    /// The state after `event`, or the error for a pair the table does not list.
    pub fn next(self, event: BackgroundEvent) -> Result<BackgroundState, InvalidTransition> {
        lookup(BACKGROUND_TRANSITIONS, self, event, |s, e| {
            (s.name(), e.name())
        })
    }

    /// The state's name as SPEC.md writes it.
    pub fn name(self) -> &'static str {
        match self {
            BackgroundState::Off => "Off",
            BackgroundState::Reading => "Reading",
            BackgroundState::Aborting => "Aborting",
        }
    }
}

impl BackgroundEvent {
    /// The event's name as SPEC.md writes it.
    pub fn name(self) -> &'static str {
        match self {
            BackgroundEvent::Start => "Start",
            BackgroundEvent::Abort => "Abort",
            BackgroundEvent::Complete => "Complete",
        }
    }
}
