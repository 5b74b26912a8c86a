//! The peers' regression baselines (peers/baselines/NAME.txt, peers/README.md#baselines): each
//! peer's known verdicts, one line `CASE VERDICT FINDING` per case that did not PASS (PASS is
//! implied for every other case), written from a run by `cargo xtask conform-peers
//! --update-baselines`. FINDING is the finding of SPEC.md#peers that explains the case (`F7`),
//! or `F?` for a case no one has explained yet; `--update-baselines` keeps the finding of a case
//! whose verdict is unchanged and writes `F?` for the others. A normal run compares each peer's
//! JSON report with its baseline (the verdicts only; the finding plays no part):
//!
//! - NEW: a case whose verdict is not PASS and differs from the baseline's (a new FAIL, a new
//!   NON-STRICT or UNSUPPORTED, or another non-PASS verdict than the baseline's);
//! - FIXED: a case the baseline lists that now PASSes;
//! - GONE: a case the baseline lists that the report does not have (renamed or removed).
//!
//! Each of them fails the run (a change in a peer or in the harness must show up), except a
//! change to or from INCONCLUSIVE: the harness could not decide that case, so the change is
//! reported and does not count.
//!
//! [`check_findings`] checks the mapping against SPEC.md#peers (a unit test runs it on the
//! committed files): no `F?`, no finding SPEC.md does not define, none used for a peer its row
//! does not name, and no row naming a peer none of whose lines uses it.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Where the baselines live, one file per peer (the reference server too).
pub const DIR: &str = "peers/baselines";

const PASS: &str = "PASS";
const INCONCLUSIVE: &str = "INCONCLUSIVE";
/// The finding of a case no one has explained yet.
pub const UNEXPLAINED: &str = "F?";

/// A case's known verdict and the finding of SPEC.md#peers that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub verdict: String,
    pub finding: String,
}

/// A peer's known verdicts: case name → verdict and finding, the non-PASS cases only.
pub type Baseline = BTreeMap<String, Known>;

/// Whether `s` is a finding's id (`F` and digits) or [`UNEXPLAINED`].
fn is_finding(s: &str) -> bool {
    s == UNEXPLAINED
        || s.strip_prefix('F')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads a baseline file's text: `#` comments and blank lines skipped, every other line
/// `CASE VERDICT FINDING`. A PASS line is allowed (and means nothing); a case listed twice is an
/// error.
pub fn parse(text: &str) -> Result<Baseline, String> {
    let mut baseline = Baseline::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [case, verdict, finding] = fields[..] else {
            return Err(format!(
                "line {}: expected `CASE VERDICT FINDING`, got `{line}`",
                i + 1
            ));
        };
        if !is_finding(finding) {
            return Err(format!(
                "line {}: `{finding}` is not a finding (`F7`, or `{UNEXPLAINED}`)",
                i + 1
            ));
        }
        let known = Known {
            verdict: verdict.to_string(),
            finding: finding.to_string(),
        };
        if baseline.insert(case.to_string(), known).is_some() {
            return Err(format!("line {}: {case} is listed twice", i + 1));
        }
    }
    baseline.retain(|_, known| known.verdict != PASS);
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

/// A baseline file's text for `peer` from its verdicts: a header, then the non-PASS cases sorted
/// by name, each with the finding `old` (the baseline being replaced) gives it when its verdict
/// there is the same, else [`UNEXPLAINED`].
pub fn render(peer: &str, verdicts: &[(String, String)], old: Option<&Baseline>) -> String {
    let mut misses: Vec<&(String, String)> = verdicts.iter().filter(|(_, v)| v != PASS).collect();
    misses.sort();
    let mut out = format!(
        "# {peer}: the known verdicts of `hijack conform` (peers/README.md#baselines).\n\
         # One line `CASE VERDICT FINDING` per case that does not PASS; the other {} of {} cases\n\
         # PASS. FINDING is the finding of SPEC.md#peers that explains the case ({UNEXPLAINED}: not yet).\n\
         # Written by `cargo xtask conform-peers --update-baselines`; every run compares with it.\n",
        verdicts.len() - misses.len(),
        verdicts.len()
    );
    for (case, verdict) in misses {
        let finding = old
            .and_then(|old| old.get(case))
            .filter(|known| &known.verdict == verdict)
            .map_or(UNEXPLAINED, |known| known.finding.as_str());
        out.push_str(&format!("{case} {verdict} {finding}\n"));
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
        let was = baseline
            .get(case)
            .map_or(PASS, |known| known.verdict.as_str());
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
    for (case, known) in baseline {
        if !verdicts.iter().any(|(c, _)| c == case) {
            changes.push(Change::Gone {
                case: case.clone(),
                was: known.verdict.clone(),
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

/// The findings SPEC.md#peers defines, from its tables: id → the peers its row names. A row is
/// `| F7 | `peer`, `peer` | kind | what happens |`: the first cell the id, the second the peers,
/// each as its baseline's name in backticks. The section runs from `## Peers` to the next `## `.
pub fn spec_findings(spec: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let start = spec
        .find("\n## Peers\n")
        .ok_or("SPEC.md has no `## Peers` section")?;
    let section = &spec[start + 1..];
    let section = section[3..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 3]);
    let mut findings = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| F7 | peers | ... |` splits into "", "F7", "peers", ...
        let (Some(id), Some(peers)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        if !(id.starts_with('F') && is_finding(id)) || *id == UNEXPLAINED {
            continue;
        }
        let names: BTreeSet<String> = peers
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return Err(format!(
                "SPEC.md#peers: {id} names no peer (`name` in backticks)"
            ));
        }
        if findings.insert(id.to_string(), names).is_some() {
            return Err(format!("SPEC.md#peers: {id} is defined twice"));
        }
    }
    if findings.is_empty() {
        return Err("SPEC.md#peers defines no finding".into());
    }
    Ok(findings)
}

/// What is wrong with the mapping of the baselines (peer → baseline) onto the findings of
/// SPEC.md#peers ([`spec_findings`]): a case still `F?`, a finding SPEC.md does not define, a
/// finding used for a peer its row does not name, and a row naming a peer none of whose lines
/// uses the finding (stale). Empty when the mapping holds.
pub fn check_findings(
    baselines: &BTreeMap<String, Baseline>,
    findings: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut used: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (peer, baseline) in baselines {
        for (case, known) in baseline {
            let finding = known.finding.as_str();
            match findings.get(finding) {
                _ if finding == UNEXPLAINED => errors.push(format!(
                    "{peer}: {case} {} is not explained ({UNEXPLAINED}): give it a finding of SPEC.md#peers",
                    known.verdict
                )),
                None => errors.push(format!(
                    "{peer}: {case} names {finding}, which SPEC.md#peers does not define"
                )),
                Some(peers) if !peers.contains(peer) => errors.push(format!(
                    "{peer}: {case} names {finding}, whose row in SPEC.md#peers does not name {peer}"
                )),
                Some(_) => {
                    used.insert((finding, peer));
                }
            }
        }
    }
    for (finding, peers) in findings {
        for peer in peers {
            if !baselines.contains_key(peer) {
                errors.push(format!(
                    "SPEC.md#peers: {finding} names {peer}, which has no baseline"
                ));
            } else if !used.contains(&(finding.as_str(), peer.as_str())) {
                errors.push(format!(
                    "SPEC.md#peers: {finding} names {peer}, but no line of its baseline uses {finding} (stale)"
                ));
            }
        }
    }
    errors
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

    /// A baseline from `CASE VERDICT` lines, each given the finding F1.
    fn baseline(text: &str) -> Baseline {
        let lines: String = text.lines().map(|l| format!("{l} F1\n")).collect();
        parse(&lines).unwrap()
    }

    #[test]
    fn parse_skips_comments_blank_lines_and_pass() {
        let b = parse("# header\n\nh/a FAIL F7\n  x/b   NON-STRICT  F?\nx/c PASS F1\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b["h/a"].verdict, "FAIL");
        assert_eq!(b["h/a"].finding, "F7");
        assert_eq!(b["x/b"].verdict, "NON-STRICT");
        assert_eq!(b["x/b"].finding, UNEXPLAINED);
    }

    #[test]
    fn parse_refuses_malformed_and_duplicate_lines() {
        assert!(parse("h/a\n").unwrap_err().contains("line 1"));
        assert!(
            parse("h/a FAIL\n")
                .unwrap_err()
                .contains("CASE VERDICT FINDING")
        );
        assert!(parse("h/a FAIL F1 extra\n").is_err());
        for bad in ["7", "F", "Fx", "F7a", "f7", "?"] {
            let e = parse(&format!("h/a FAIL {bad}\n")).unwrap_err();
            assert!(e.contains("is not a finding"), "{bad}: {e}");
        }
        assert!(
            parse("# c\nh/a FAIL F1\nh/a NON-STRICT F2\n")
                .unwrap_err()
                .contains("line 3: h/a is listed twice")
        );
    }

    #[test]
    fn render_lists_the_misses_sorted_and_parses_back() {
        let v = run(&[("z/1", "FAIL"), ("a/1", "PASS"), ("b/2", "NON-STRICT")]);
        let text = render("node", &v, None);
        assert!(text.starts_with("# node: the known verdicts of `hijack conform`"));
        assert!(text.contains("the other 1 of 3 cases\n# PASS"));
        assert!(text.ends_with("\nb/2 NON-STRICT F?\nz/1 FAIL F?\n"));
        assert_eq!(compare(&parse(&text).unwrap(), &v), vec![]);
    }

    #[test]
    fn render_keeps_the_finding_of_an_unchanged_case_only() {
        let old = parse("a/same FAIL F7\nb/changed NON-STRICT F8\nc/fixed FAIL F9\n").unwrap();
        let v = run(&[
            ("a/same", "FAIL"),
            ("b/changed", "FAIL"),
            ("c/fixed", "PASS"),
            ("d/new", "NON-STRICT"),
        ]);
        let text = render("node", &v, Some(&old));
        assert!(
            text.ends_with("\na/same FAIL F7\nb/changed FAIL F?\nd/new NON-STRICT F?\n"),
            "{text}"
        );
        // The finding is no part of the comparison.
        let new = parse(&text).unwrap();
        assert_eq!(compare(&new, &v), vec![]);
        assert_eq!(compare(&old, &v).len(), 3);
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

    fn findings(rows: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        rows.iter()
            .map(|(id, peers)| {
                (
                    id.to_string(),
                    peers.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn spec_findings_reads_the_rows_of_the_peers_section_only() {
        let spec = "# S\n\n## Other\n\n| F9 | `x` | k | w |\n\n## Peers\n\ntext\n\n\
                    | # | peers | kind | what happens |\n|---|---|---|---|\n\
                    | F1 | `go-1.24.11`, `node` | peer bug | what `code` does |\n\
                    | F2 | `hyper` | deliberate | x |\n\n## After\n\n| F3 | `node` | k | w |\n";
        let f = spec_findings(spec).unwrap();
        assert_eq!(
            f,
            findings(&[("F1", &["go-1.24.11", "node"]), ("F2", &["hyper"])])
        );
        assert!(spec_findings("# S\n").is_err());
        assert!(
            spec_findings("x\n## Peers\n| F1 | Go | k | w |\n")
                .unwrap_err()
                .contains("F1 names no peer")
        );
        assert!(
            spec_findings("x\n## Peers\n| F1 | `a` | k |\n| F1 | `b` | k |\n")
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn check_findings_finds_unexplained_undefined_misattributed_and_stale() {
        let spec = findings(&[("F1", &["node", "hyper"]), ("F2", &["node"])]);
        let mut baselines = BTreeMap::new();
        baselines.insert(
            "node".to_string(),
            parse("a/1 FAIL F1\na/2 FAIL F2\n").unwrap(),
        );
        baselines.insert("hyper".to_string(), parse("a/1 FAIL F1\n").unwrap());
        assert_eq!(check_findings(&baselines, &spec), Vec::<String>::new());

        baselines.insert(
            "hyper".to_string(),
            parse("a/1 FAIL F?\na/2 FAIL F3\na/3 NON-STRICT F2\n").unwrap(),
        );
        let errors = check_findings(&baselines, &spec);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains("hyper: a/1 FAIL is not explained (F?)"));
        assert!(errors[1].contains("a/2 names F3, which SPEC.md#peers does not define"));
        assert!(errors[2].contains("a/3 names F2, whose row in SPEC.md#peers does not name hyper"));
        assert!(errors[3].contains("F1 names hyper, but no line of its baseline uses F1 (stale)"));

        let spec = findings(&[("F1", &["node", "hyper"]), ("F2", &["node", "apache-2.4"])]);
        baselines.insert("hyper".to_string(), parse("a/1 FAIL F1\n").unwrap());
        assert_eq!(
            check_findings(&baselines, &spec),
            vec!["SPEC.md#peers: F2 names apache-2.4, which has no baseline".to_string()]
        );
    }

    /// The committed mapping: every line of peers/baselines/*.txt names a finding of
    /// SPEC.md#peers that names its peer, none is `F?`, and no finding names a peer none of whose
    /// lines uses it.
    #[test]
    fn every_baseline_line_is_explained_by_a_finding_of_spec_peers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = std::fs::read_to_string(root.join("SPEC.md")).unwrap();
        let findings = spec_findings(&spec).unwrap();
        let mut baselines = BTreeMap::new();
        for entry in std::fs::read_dir(root.join(DIR)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "txt") {
                let peer = path.file_stem().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                let baseline = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                baselines.insert(peer, baseline);
            }
        }
        assert!(baselines.len() > 1, "no baselines in {DIR}");
        let errors = check_findings(&baselines, &findings);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
}
