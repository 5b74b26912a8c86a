//! SPEC.md's lifecycle tables and diagrams are `src/state.rs`'s tables (SPEC.md#lifecycle):
//! the same rows in the same order, diagrams generated from those rows, and `next` answering
//! every row and rejecting every pair that is not one.

use hijack::state::{
    BACKGROUND_TRANSITIONS, BackgroundEvent, BackgroundState, CONN_TRANSITIONS, ConnEvent,
    ConnState, InvalidTransition,
};

const SPEC: &str = include_str!("../SPEC.md");

/// Every connection state; the match makes a new variant a compile error here.
fn all_conn_states() -> [ConnState; 5] {
    let all = [
        ConnState::New,
        ConnState::Active,
        ConnState::Idle,
        ConnState::Hijacked,
        ConnState::Closed,
    ];
    for s in all {
        match s {
            ConnState::New
            | ConnState::Active
            | ConnState::Idle
            | ConnState::Hijacked
            | ConnState::Closed => {}
        }
    }
    all
}

fn all_conn_events() -> [ConnEvent; 4] {
    let all = [
        ConnEvent::RequestStarted,
        ConnEvent::ResponseDone,
        ConnEvent::Hijack,
        ConnEvent::Close,
    ];
    for e in all {
        match e {
            ConnEvent::RequestStarted
            | ConnEvent::ResponseDone
            | ConnEvent::Hijack
            | ConnEvent::Close => {}
        }
    }
    all
}

fn all_background_states() -> [BackgroundState; 3] {
    let all = [
        BackgroundState::Off,
        BackgroundState::Reading,
        BackgroundState::Aborting,
    ];
    for s in all {
        match s {
            BackgroundState::Off | BackgroundState::Reading | BackgroundState::Aborting => {}
        }
    }
    all
}

fn all_background_events() -> [BackgroundEvent; 3] {
    let all = [
        BackgroundEvent::Start,
        BackgroundEvent::Abort,
        BackgroundEvent::Complete,
    ];
    for e in all {
        match e {
            BackgroundEvent::Start | BackgroundEvent::Abort | BackgroundEvent::Complete => {}
        }
    }
    all
}

/// The text between `<!-- {marker} -->` and `<!-- /{marker} -->`, which must occur once.
fn block(marker: &str) -> &'static str {
    let open = format!("<!-- {marker} -->");
    let close = format!("<!-- /{marker} -->");
    assert_eq!(
        SPEC.matches(&open).count(),
        1,
        "{open} must occur once in SPEC.md"
    );
    let start = SPEC.find(&open).unwrap() + open.len();
    let end = start + SPEC[start..].find(&close).expect("closing marker");
    &SPEC[start..end]
}

/// The rows of a markdown table `| State | Event | Next state |`, header checked.
fn table_rows(marker: &str) -> Vec<[String; 3]> {
    let mut lines = block(marker)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let cells = |line: &str| -> Vec<String> {
        assert!(
            line.starts_with('|') && line.ends_with('|'),
            "not a table row: {line}"
        );
        line[1..line.len() - 1]
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    assert_eq!(
        cells(lines.next().expect("header")),
        ["State", "Event", "Next state"]
    );
    let rule = cells(lines.next().expect("rule"));
    assert!(
        rule.iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':')),
        "{rule:?}"
    );
    lines
        .map(|line| {
            let row = cells(line);
            assert_eq!(row.len(), 3, "{line}");
            [row[0].clone(), row[1].clone(), row[2].clone()]
        })
        .collect()
}

/// The mermaid diagram SPEC.md must show for `rows`.
fn diagram(rows: &[[&str; 3]]) -> String {
    let mut out = String::from("```mermaid\nstateDiagram-v2\n");
    for [state, event, next] in rows {
        out.push_str(&format!("    {state} --> {next}: {event}\n"));
    }
    out.push_str("```");
    out
}

fn conn_rows() -> Vec<[&'static str; 3]> {
    CONN_TRANSITIONS
        .iter()
        .map(|&(s, e, n)| [s.name(), e.name(), n.name()])
        .collect()
}

fn background_rows() -> Vec<[&'static str; 3]> {
    BACKGROUND_TRANSITIONS
        .iter()
        .map(|&(s, e, n)| [s.name(), e.name(), n.name()])
        .collect()
}

#[test]
fn spec_connection_table_equals_conn_transitions_row_for_row() {
    let spec: Vec<[String; 3]> = table_rows("table:conn");
    let code: Vec<[String; 3]> = conn_rows().iter().map(|r| r.map(str::to_owned)).collect();
    assert_eq!(spec, code);
}

#[test]
fn spec_background_table_equals_background_transitions_row_for_row() {
    let spec: Vec<[String; 3]> = table_rows("table:background");
    let code: Vec<[String; 3]> = background_rows()
        .iter()
        .map(|r| r.map(str::to_owned))
        .collect();
    assert_eq!(spec, code);
}

#[test]
fn spec_diagrams_are_generated_from_the_tables() {
    assert_eq!(block("diagram:conn").trim(), diagram(&conn_rows()));
    assert_eq!(
        block("diagram:background").trim(),
        diagram(&background_rows())
    );
}

#[test]
fn names_are_distinct_and_each_state_and_event_appears_in_its_table() {
    let names = |v: Vec<&str>| {
        let mut sorted = v.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), v.len(), "duplicate names: {v:?}");
    };
    names(all_conn_states().iter().map(|s| s.name()).collect());
    names(all_conn_events().iter().map(|e| e.name()).collect());
    names(all_background_states().iter().map(|s| s.name()).collect());
    names(all_background_events().iter().map(|e| e.name()).collect());
    for s in all_conn_states() {
        assert!(
            CONN_TRANSITIONS.iter().any(|&(a, _, b)| a == s || b == s),
            "{s:?}"
        );
    }
    for e in all_conn_events() {
        assert!(CONN_TRANSITIONS.iter().any(|&(_, x, _)| x == e), "{e:?}");
    }
    for s in all_background_states() {
        assert!(
            BACKGROUND_TRANSITIONS
                .iter()
                .any(|&(a, _, b)| a == s || b == s),
            "{s:?}"
        );
    }
    for e in all_background_events() {
        assert!(
            BACKGROUND_TRANSITIONS.iter().any(|&(_, x, _)| x == e),
            "{e:?}"
        );
    }
}

//= SPEC.md#lifecycle
//= type=test
//# Every change of connection state MUST follow a row of the connection table, and every
//# change of background-read state MUST follow a row of the background table.
#[test]
fn next_follows_every_row_and_rejects_every_other_pair() {
    for s in all_conn_states() {
        for e in all_conn_events() {
            let row = CONN_TRANSITIONS.iter().find(|&&(a, x, _)| a == s && x == e);
            match (row, s.next(e)) {
                (Some(&(_, _, n)), Ok(next)) => assert_eq!(next, n, "{s:?} {e:?}"),
                (None, Err(err)) => assert_eq!(
                    err,
                    InvalidTransition {
                        state: s.name(),
                        event: e.name()
                    }
                ),
                (row, got) => panic!("{s:?} {e:?}: row {row:?}, next {got:?}"),
            }
        }
    }
    for s in all_background_states() {
        for e in all_background_events() {
            let row = BACKGROUND_TRANSITIONS
                .iter()
                .find(|&&(a, x, _)| a == s && x == e);
            match (row, s.next(e)) {
                (Some(&(_, _, n)), Ok(next)) => assert_eq!(next, n, "{s:?} {e:?}"),
                (None, Err(err)) => assert_eq!(
                    err,
                    InvalidTransition {
                        state: s.name(),
                        event: e.name()
                    }
                ),
                (row, got) => panic!("{s:?} {e:?}: row {row:?}, next {got:?}"),
            }
        }
    }
}

#[test]
fn the_invariants_the_spec_states_about_the_tables_hold() {
    use ConnState::*;
    // "There is no row out of Hijacked or Closed, and none into New."
    assert!(
        CONN_TRANSITIONS
            .iter()
            .all(|&(s, _, _)| s != Hijacked && s != Closed)
    );
    assert!(CONN_TRANSITIONS.iter().all(|&(_, _, n)| n != New));
    // "There is no Idle → Hijacked row: only a running handler can hijack."
    assert!(Idle.next(ConnEvent::Hijack).is_err());
    // "Complete in Off ... Start in Aborting ... are reported as InvalidTransition."
    assert!(
        BackgroundState::Off
            .next(BackgroundEvent::Complete)
            .is_err()
    );
    assert!(
        BackgroundState::Aborting
            .next(BackgroundEvent::Start)
            .is_err()
    );
    // At most one row per (state, event): the tables are functions.
    for (i, a) in CONN_TRANSITIONS.iter().enumerate() {
        assert!(
            CONN_TRANSITIONS[i + 1..]
                .iter()
                .all(|b| (a.0, a.1) != (b.0, b.1))
        );
    }
    for (i, a) in BACKGROUND_TRANSITIONS.iter().enumerate() {
        assert!(
            BACKGROUND_TRANSITIONS[i + 1..]
                .iter()
                .all(|b| (a.0, a.1) != (b.0, b.1))
        );
    }
}
