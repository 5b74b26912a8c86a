//! Property: the connection lifecycle as a state machine (issue 5, point 4), with
//! `proptest-state-machine`, over the one executable model of a served connection
//! (`hijack_testkit::model`, written from SPEC.md), the model the `lifecycle` fuzz target
//! drives too.
//!
//! The reference state machine is that model: each next operation is generated from where the
//! model stands (handler operations while a handler runs), and applied to it by the test kit's
//! `lifecycle::plan`, the same step the driver takes. Operations: the client sends a
//! generated request (all of its body or part of it) or raw bytes, half-closes or resets; the
//! handler reads its body, sets a status, writes, flushes, subscribes to close-notify, hijacks
//! (with or without a 101 head), returns or panics. The implementation is stepped alongside by
//! `hijack_testkit::lifecycle::Driver`: one connection on the in-memory pipe, the handler
//! running on the serving thread and driven by a command channel.
//!
//! Invariants after every step (checked by the driver): the handler calls that started, and
//! for which request; each operation's result (body bytes, write, flush and hijack results,
//! handed-over bytes); the background reads started; the bytes left unread in the pipe; the
//! states reported to the state hook, each change a row of the table; the request's
//! close-notify and cancellation, fired exactly as the model says and with its reason. At the
//! end: nothing of the connection stays alive, the client's wire is the model's responses
//! byte for byte, and a hijacker reads exactly what the client sent after the consumed bytes.
//! A failure shrinks to a short sequence of operations.

mod prop_support;

use hijack::state::ConnState;
use hijack_testkit::lifecycle::{BodySpec, Driver, Op, RequestSpec, plan};
use hijack_testkit::model::{Model, WireItem};
use hijack_testkit::served::DELIBERATE_PANIC;
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

/// So that the driver can tell the hijack's own write buffer from a fresh allocation.
#[global_allocator]
static ALLOCATOR: hijack_testkit::alloc::Counting = hijack_testkit::alloc::Counting;

/// The reference: the model, and how many operations it has taken (seeds their bytes).
#[derive(Clone, Debug)]
struct Reference {
    model: Model,
    seq: usize,
}

/// A request as the client sends it: mostly small bodies, sent whole, on a keep-alive
/// HTTP/1.1 connection, so that pipelining, body reads, discards and hijacks meet.
fn request() -> impl Strategy<Value = RequestSpec> {
    let body = prop_oneof![
        2 => Just(BodySpec::None),
        3 => (1u16..24).prop_map(BodySpec::Length),
        2 => (1u16..40, 0u8..12).prop_map(|(len, chunk)| BodySpec::Chunked { len, chunk }),
    ];
    let sent = prop_oneof![4 => Just(255u8), 1 => any::<u8>()];
    (
        0u8..4,
        prop::bool::weighted(0.1),
        body,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        sent,
    )
        .prop_map(
            |(method, http10, body, expect_continue, close, upgrade, sent)| RequestSpec {
                method,
                http10,
                body,
                expect_continue,
                close,
                upgrade,
                sent,
            },
        )
}

struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = Reference;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Reference> {
        Just(Reference {
            model: Model::default(),
            seq: 0,
        })
        .boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Op> {
        let m = &state.model;
        let runs = m.handler_runs();
        let mut options: Vec<(u32, BoxedStrategy<Op>)> = vec![
            (
                if runs { 4 } else { 12 },
                request().prop_map(Op::Request).boxed(),
            ),
            (
                2,
                prop::collection::vec(any::<u8>(), 1..12)
                    .prop_map(Op::Raw)
                    .boxed(),
            ),
            (1, Just(Op::HalfClose).boxed()),
            (1, Just(Op::Reset).boxed()),
        ];
        if runs {
            options.extend([
                (5, (0u16..48).prop_map(Op::ReadBody).boxed()),
                (2, (0u8..6).prop_map(Op::Status).boxed()),
                (3, (0u16..200).prop_map(Op::Write).boxed()),
                (2, Just(Op::Flush).boxed()),
                (1, Just(Op::Subscribe).boxed()),
                (
                    3,
                    any::<bool>()
                        .prop_map(|upgrade| Op::Hijack { upgrade })
                        .boxed(),
                ),
                (4, Just(Op::Return).boxed()),
                (1, Just(Op::Panic).boxed()),
            ]);
        }
        prop::strategy::Union::new_weighted(options).boxed()
    }

    fn apply(mut state: Reference, op: &Op) -> Reference {
        plan(&mut state.model, op, state.seq, &mut Vec::new());
        state.seq += 1;
        state
    }
}

impl StateMachineTest for Lifecycle {
    type SystemUnderTest = Driver;
    type Reference = Lifecycle;

    fn init_test(_: &Reference) -> Driver {
        Driver::start()
    }

    /// The driver plans the operation on its own copy of the model (with the same
    /// `lifecycle::plan`), runs it on the core and checks every invariant of the step.
    fn apply(mut driver: Driver, _: &Reference, op: Op) -> Driver {
        driver.step(&op);
        driver
    }

    fn teardown(driver: Driver, _: Reference) {
        tally_run(driver.model());
        driver.end();
    }
}

/// Lets the handler's deliberate panics unwind quietly; every other panic is reported.
fn silence_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE_PANIC) {
                report(info);
            }
        }));
    });
}

//= SPEC.md#lifecycle
//= type=test
//# Every change of connection state MUST follow a row of the connection table, and every
//# change of background-read state MUST follow a row of the background table.
//= SPEC.md#background-read
//= type=test
//# A background read MUST NOT start while no handler runs.
/// The implementation steps through the lifecycle as the model does (`prop_state_machine!`
/// spelled out, so the tally can be printed after the run).
#[test]
fn lifecycle_follows_the_model() {
    const REGRESSIONS: &str = "proptest-regressions/prop_lifecycle.txt";
    silence_deliberate_panics();
    let cases = cases();
    prop_support::run_property(
        cases,
        REGRESSIONS,
        "lifecycle:",
        Lifecycle::sequential_strategy(1..32),
        |(initial, transitions, seen)| {
            Lifecycle::test_sequential(
                prop_support::config(cases, REGRESSIONS),
                initial,
                transitions,
                seen,
            );
            Ok(())
        },
    );
}

/// The case count: 10,000, or `HIJACK_LIFECYCLE_CASES` (the kill matrix's tests column runs
/// the property with fewer, xtask/src/kill_matrix.rs).
fn cases() -> u32 {
    std::env::var("HIJACK_LIFECYCLE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Counts what a finished run covered (see `prop_support::tally`).
fn tally_run(model: &Model) {
    let count = |what: &str| prop_support::tally(format!("lifecycle: {what}"));
    count("runs");
    if model.hijack_cut.is_some() {
        count("hijacked");
    }
    if model.background_reads > 0 {
        count("a background read started");
    }
    if model.states.contains(&ConnState::Idle) {
        count("keep-alive: a later request on the connection");
    }
    if model.requests > 1 {
        count("more than one handler called");
    }
    for item in &model.wire {
        count(match item {
            WireItem::Continue => "100 Continue",
            WireItem::Rejection(_) => "a head rejected",
            WireItem::Response { .. } => "a response",
            WireItem::Partial { .. } => "a panicking handler's response",
            WireItem::Hijacked { .. } => "a hijacked response",
        });
    }
    if model.states.last() == Some(&ConnState::Closed) {
        count("closed by the server");
    }
}
