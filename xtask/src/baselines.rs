//! The peers' regression baselines (peers/baselines/NAME.txt, peers/README.md#baselines): each
//! peer's known verdicts, one line `CASE VERDICT` per case that did not PASS (PASS is implied
//! for every other case), written from a run by `cargo xtask conform-peers --update-baselines`.
//! A normal run compares each peer's JSON report with its baseline:
//!
//! - NEW: a case whose verdict is not PASS and differs from the baseline's (a new FAIL, a new
//!   NON-STRICT or UNSUPPORTED, or another non-PASS verdict than the baseline's);
//! - FIXED: a case the baseline lists that now PASSes;
//! - GONE: a case the baseline lists that the report does not have (renamed or removed).
//!
//! Each of them fails the run (a change in a peer or in the harness must show up), except a
//! change to or from INCONCLUSIVE: the harness could not decide that case, so the change is
//! reported and does not count.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Where the baselines live, one file per peer (the reference server too).
pub const DIR: &str = "peers/baselines";

const PASS: &str = "PASS";
const INCONCLUSIVE: &str = "INCONCLUSIVE";

/// A peer's known verdicts: case name → verdict, the non-PASS cases only.
pub type Baseline = BTreeMap<String, String>;

/// Reads a baseline file's text: `#` comments and blank lines skipped, every other line
/// `CASE VERDICT`. A PASS line is allowed (and means nothing); a case listed twice is an error.
pub fn parse(text: &str) -> Result<Baseline, String> {
    let mut baseline = Baseline::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [case, verdict] = fields[..] else {
            return Err(format!(
                "line {}: expected `CASE VERDICT`, got `{line}`",
                i + 1
            ));
        };
        if baseline
            .insert(case.to_string(), verdict.to_string())
            .is_some()
        {
            return Err(format!("line {}: {case} is listed twice", i + 1));
        }
    }
    baseline.retain(|_, verdict| verdict != PASS);
    Ok(baseline)
}

/// Every case of a `hijack conform --json` report with its verdict, in the report's order
/// (`cases[]` with `name` and `verdict`, src/conform/report.rs).
pub fn verdicts(report: &Value) -> Result<Vec<(String, String)>, String> {
    let cases = report["cases"].as_array().ok_or("no cases")?;
    cases
        .iter()
        .map(|c| match (c["name"].as_str(), c["verdict"].as_str()) {
            (Some(name), Some(verdict)) => Ok((name.to_string(), verdict.to_string())),
            _ => Err(format!("a case without a name or a verdict: {c}")),
        })
        .collect()
}

/// A baseline file's text for `peer` from its verdicts: a header, then the non-PASS cases
/// sorted by name.
pub fn render(peer: &str, verdicts: &[(String, String)]) -> String {
    let mut misses: Vec<&(String, String)> = verdicts.iter().filter(|(_, v)| v != PASS).collect();
    misses.sort();
    let mut out = format!(
        "# {peer}: the known verdicts of `hijack conform` (peers/README.md#baselines).\n\
         # One line `CASE VERDICT` per case that does not PASS; the other {} of {} cases PASS.\n\
         # Written by `cargo xtask conform-peers --update-baselines`; every run compares with it.\n",
        verdicts.len() - misses.len(),
        verdicts.len()
    );
    for (case, verdict) in misses {
        out.push_str(&format!("{case} {verdict}\n"));
    }
    out
}

/// How a case's verdict differs from its baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Not PASS now, and not what the baseline says (`was` is PASS for a case it does not list).
    New {
        case: String,
        verdict: String,
        was: String,
    },
    /// The baseline lists it (as `was`) and it PASSes now.
    Fixed { case: String, was: String },
    /// The baseline lists it (as `was`) and the report has no such case.
    Gone { case: String, was: String },
}

impl Change {
    /// Whether the change fails the run: every change but one to or from INCONCLUSIVE.
    pub fn counts(&self) -> bool {
        let (now, was) = match self {
            Change::New { verdict, was, .. } => (verdict.as_str(), was.as_str()),
            Change::Fixed { was, .. } => (PASS, was.as_str()),
            Change::Gone { .. } => return true,
        };
        now != INCONCLUSIVE && was != INCONCLUSIVE
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = if self.counts() {
            ""
        } else {
            " (inconclusive: reported, not counted)"
        };
        match self {
            Change::New { case, verdict, was } => {
                write!(f, "NEW   {case} {verdict} (baseline {was}){note}")
            }
            Change::Fixed { case, was } => write!(f, "FIXED {case} PASS (baseline {was}){note}"),
            Change::Gone { case, was } => {
                write!(f, "GONE  {case} (baseline {was}; not in the report)")
            }
        }
    }
}

/// The changes of `verdicts` (one run's report) against `baseline`: in the report's order, then
/// the GONE cases in the baseline's.
pub fn compare(baseline: &Baseline, verdicts: &[(String, String)]) -> Vec<Change> {
    let mut changes = Vec::new();
    for (case, verdict) in verdicts {
        let was = baseline.get(case).map_or(PASS, String::as_str);
        if verdict == was {
            continue;
        }
        changes.push(if verdict == PASS {
            Change::Fixed {
                case: case.clone(),
                was: was.to_string(),
            }
        } else {
            Change::New {
                case: case.clone(),
                verdict: verdict.clone(),
                was: was.to_string(),
            }
        });
    }
    for (case, was) in baseline {
        if !verdicts.iter().any(|(c, _)| c == case) {
            changes.push(Change::Gone {
                case: case.clone(),
                was: was.clone(),
            });
        }
    }
    changes
}

/// One line counting `changes` by kind, e.g. `2 NEW, 1 FIXED (1 of them inconclusive)`.
pub fn summary(changes: &[Change]) -> String {
    let count = |kind: fn(&Change) -> bool| changes.iter().filter(|c| kind(c)).count();
    let new = count(|c| matches!(c, Change::New { .. }));
    let fixed = count(|c| matches!(c, Change::Fixed { .. }));
    let gone = count(|c| matches!(c, Change::Gone { .. }));
    let mut parts = Vec::new();
    for (n, kind) in [(new, "NEW"), (fixed, "FIXED"), (gone, "GONE")] {
        if n > 0 {
            parts.push(format!("{n} {kind}"));
        }
    }
    let uncounted = count(|c| !c.counts());
    let mut out = parts.join(", ");
    if uncounted > 0 {
        out.push_str(&format!(" ({uncounted} of them inconclusive, not counted)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect()
    }

    fn baseline(text: &str) -> Baseline {
        parse(text).unwrap()
    }

    #[test]
    fn parse_skips_comments_blank_lines_and_pass() {
        let b = baseline("# header\n\nh/a FAIL\n  x/b   NON-STRICT  \nx/c PASS\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b["h/a"], "FAIL");
        assert_eq!(b["x/b"], "NON-STRICT");
    }

    #[test]
    fn parse_refuses_malformed_and_duplicate_lines() {
        assert!(parse("h/a\n").unwrap_err().contains("line 1"));
        assert!(parse("h/a FAIL extra\n").is_err());
        assert!(
            parse("# c\nh/a FAIL\nh/a NON-STRICT\n")
                .unwrap_err()
                .contains("line 3: h/a is listed twice")
        );
    }

    #[test]
    fn render_lists_the_misses_sorted_and_parses_back() {
        let v = run(&[("z/1", "FAIL"), ("a/1", "PASS"), ("b/2", "NON-STRICT")]);
        let text = render("node", &v);
        assert!(text.starts_with("# node: the known verdicts of `hijack conform`"));
        assert!(text.contains("the other 1 of 3 cases PASS"));
        assert!(text.ends_with("\nb/2 NON-STRICT\nz/1 FAIL\n"));
        assert_eq!(compare(&parse(&text).unwrap(), &v), vec![]);
    }

    #[test]
    fn the_same_verdicts_are_no_change() {
        let b = baseline("h/a FAIL\nx/b UNSUPPORTED\n");
        let v = run(&[("h/a", "FAIL"), ("h/z", "PASS"), ("x/b", "UNSUPPORTED")]);
        assert!(compare(&b, &v).is_empty());
        assert!(compare(&Baseline::new(), &run(&[("h/a", "PASS")])).is_empty());
    }

    #[test]
    fn a_new_fail_or_non_pass_is_new_and_counts() {
        let b = baseline("x/b NON-STRICT\n");
        let v = run(&[("h/a", "FAIL"), ("x/b", "FAIL"), ("m/c", "UNSUPPORTED")]);
        let changes = compare(&b, &v);
        let new = |case: &str, verdict: &str, was: &str| Change::New {
            case: case.into(),
            verdict: verdict.into(),
            was: was.into(),
        };
        assert_eq!(
            changes,
            vec![
                new("h/a", "FAIL", "PASS"),
                new("x/b", "FAIL", "NON-STRICT"),
                new("m/c", "UNSUPPORTED", "PASS"),
            ]
        );
        assert!(changes.iter().all(Change::counts));
        assert_eq!(summary(&changes), "3 NEW");
        assert_eq!(
            changes[1].to_string(),
            "NEW   x/b FAIL (baseline NON-STRICT)"
        );
    }

    #[test]
    fn a_baseline_miss_that_passes_is_fixed_and_counts() {
        let b = baseline("h/a FAIL\nx/b NON-STRICT\n");
        let changes = compare(&b, &run(&[("h/a", "PASS"), ("x/b", "NON-STRICT")]));
        assert_eq!(
            changes,
            vec![Change::Fixed {
                case: "h/a".into(),
                was: "FAIL".into()
            }]
        );
        assert!(changes[0].counts());
        assert_eq!(changes[0].to_string(), "FIXED h/a PASS (baseline FAIL)");
    }

    #[test]
    fn a_change_to_or_from_inconclusive_is_reported_but_does_not_count() {
        let b = baseline("h/was-inconclusive INCONCLUSIVE\nh/other INCONCLUSIVE\n");
        let v = run(&[
            ("h/now-inconclusive", "INCONCLUSIVE"),
            ("h/was-inconclusive", "PASS"),
            ("h/other", "FAIL"),
        ]);
        let changes = compare(&b, &v);
        assert_eq!(changes.len(), 3);
        assert!(changes.iter().all(|c| !c.counts()));
        assert_eq!(
            summary(&changes),
            "2 NEW, 1 FIXED (3 of them inconclusive, not counted)"
        );
        assert_eq!(
            changes[0].to_string(),
            "NEW   h/now-inconclusive INCONCLUSIVE (baseline PASS) (inconclusive: reported, not counted)"
        );
        // The same INCONCLUSIVE as the baseline is no change at all.
        assert!(compare(&b, &run(&[("h/other", "INCONCLUSIVE")])).len() == 1);
    }

    #[test]
    fn a_baseline_case_missing_from_the_report_is_gone_and_counts() {
        let b = baseline("h/renamed FAIL\n");
        let changes = compare(&b, &run(&[("h/new-name", "FAIL")]));
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[0], Change::New { case, .. } if case == "h/new-name"));
        assert_eq!(
            changes[1],
            Change::Gone {
                case: "h/renamed".into(),
                was: "FAIL".into()
            }
        );
        assert!(changes[1].counts());
        assert_eq!(summary(&changes), "1 NEW, 1 GONE");
    }

    #[test]
    fn verdicts_reads_the_report_in_order() {
        let report: Value = serde_json::from_str(
            r#"{"cases":[{"name":"h/1","group":"h","verdict":"PASS"},{"name":"x/1","verdict":"FAIL"}]}"#,
        )
        .unwrap();
        assert_eq!(
            verdicts(&report).unwrap(),
            run(&[("h/1", "PASS"), ("x/1", "FAIL")])
        );
        assert!(verdicts(&serde_json::json!({})).is_err());
        assert!(verdicts(&serde_json::json!({"cases": [{"name": "h/1"}]})).is_err());
    }
}
