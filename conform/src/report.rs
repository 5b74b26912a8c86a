//! The reports: the summary table on stdout, the JSON report (`--json`) and the JUnit XML
//! report (`--junit`, written by quick-junit). Each reads the results; none judges them.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use crate::memory::Figures;
use crate::preflight::ContractCheck;
use crate::runner::{Miss, Verdict};
use crate::vector::Level;
use crate::wire::WireEntry;

/// The result of one case.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CaseResult {
    /// `group/name`.
    pub name: String,
    /// The part before the slash.
    pub group: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// The requirement it checks.
    pub spec: String,
    /// What it checks.
    pub description: String,
    /// The sentence that sets its level, quoted with its section.
    #[serde(default)]
    pub cite: String,
    /// The verdict.
    pub verdict: Verdict,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// The checks that missed (empty on PASS).
    pub misses: Vec<Miss>,
    /// What was sent and received, with timestamps; kept for FAIL and NON-STRICT.
    pub wire: Vec<WireEntry>,
    /// The memory case's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
}

/// The whole run.
#[derive(Serialize, Deserialize, Debug)]
pub struct RunReport {
    /// The server tested (`in-process reference` or its URL).
    pub target: String,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
    /// Cases per verdict.
    pub totals: BTreeMap<String, usize>,
    /// Every case, in list order.
    pub cases: Vec<CaseResult>,
    /// The preflight of the endpoint contract: what the target offers and what it breaks.
    #[serde(default)]
    pub contract: Vec<ContractCheck>,
}

/// The preflight's lines: each probe, its answer, and the rule a wrong answer breaks.
pub fn contract_text(checks: &[ContractCheck]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("preflight of the endpoint contract (SPEC.md#conformance-endpoints):\n");
    for c in checks {
        let mark = match (c.ok, c.optional) {
            (true, _) => "ok  ",
            (false, true) => "--  ",
            (false, false) => "BAD ",
        };
        out.push_str(&format!("  {mark} {}: {}\n", c.probe, c.answer));
        if !c.ok && !c.rule.is_empty() {
            out.push_str(&format!("       {}\n", c.rule));
        }
    }
    out
}

/// Every verdict, in the order the tables show them.
pub const VERDICTS: [Verdict; 5] = [
    Verdict::Pass,
    Verdict::Fail,
    Verdict::NonStrict,
    Verdict::Inconclusive,
    Verdict::Unsupported,
];

impl RunReport {
    /// Assembles the report and its totals.
    pub fn new(target: String, duration: Duration, cases: Vec<CaseResult>) -> RunReport {
        let mut totals = BTreeMap::new();
        for v in VERDICTS {
            totals.insert(
                v.label().to_string(),
                cases.iter().filter(|c| c.verdict == v).count(),
            );
        }
        RunReport {
            target,
            duration_ms: duration.as_millis() as u64,
            totals,
            cases,
            contract: Vec::new(),
        }
    }

    /// The details of every FAIL and NON-STRICT, then the group × verdict table.
    pub fn summary(&self) -> String {
        let mut out = contract_text(&self.contract);
        for c in &self.cases {
            if !matches!(
                c.verdict,
                Verdict::Fail | Verdict::NonStrict | Verdict::Inconclusive
            ) {
                continue;
            }
            out.push_str(&format!(
                "\n{} {} ({}, {})\n",
                c.verdict.label(),
                c.name,
                level(c.level),
                c.spec
            ));
            for m in &c.misses {
                out.push_str(&format!(
                    "  step {} [{}]\n    expected: {}\n    observed: {}\n",
                    m.step,
                    level(m.level),
                    m.expected,
                    m.observed
                ));
            }
            if c.verdict == Verdict::Fail {
                out.push_str("  wire:\n");
                for line in render(&c.wire).lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        let mut groups: Vec<&str> = Vec::new();
        for c in &self.cases {
            if !groups.contains(&c.group.as_str()) {
                groups.push(&c.group);
            }
        }
        out.push_str(&format!(
            "\n{:<14} {:>5} {:>5} {:>11} {:>13} {:>12} {:>6}\n",
            "group", "PASS", "FAIL", "NON-STRICT", "INCONCLUSIVE", "UNSUPPORTED", "total"
        ));
        let row = |name: &str, cases: Vec<&CaseResult>| {
            let n = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
            format!(
                "{:<14} {:>5} {:>5} {:>11} {:>13} {:>12} {:>6}\n",
                name,
                n(Verdict::Pass),
                n(Verdict::Fail),
                n(Verdict::NonStrict),
                n(Verdict::Inconclusive),
                n(Verdict::Unsupported),
                cases.len()
            )
        };
        for g in &groups {
            out.push_str(&row(
                g,
                self.cases.iter().filter(|c| c.group == *g).collect(),
            ));
        }
        out.push_str(&row("all", self.cases.iter().collect()));
        for c in &self.cases {
            if let Some(f) = &c.figures {
                out.push_str(&format!(
                    "\n{}: {} bytes per held connection ({:.1} KiB; threshold {:.0} KiB) over {} connections: {}\n",
                    c.name,
                    f.bytes_per_connection,
                    f.bytes_per_connection as f64 / 1024.0,
                    f.threshold as f64 / 1024.0,
                    f.connections,
                    c.verdict.label()
                ));
            }
        }
        out.push_str(&format!("\n{} in {} ms\n", self.target, self.duration_ms));
        // What to do next about the verdicts that are not about the server's HTTP.
        let count = |v: Verdict| self.cases.iter().filter(|c| c.verdict == v).count();
        let inconclusive = count(Verdict::Inconclusive);
        if inconclusive > 0 {
            out.push_str(&format!(
                "{inconclusive} INCONCLUSIVE: nothing decisive arrived within a step's time; run them again with a longer --timeout (--case NAME)\n"
            ));
        }
        let unsupported = count(Verdict::Unsupported);
        if unsupported > 0 {
            out.push_str(&format!(
                "{unsupported} UNSUPPORTED: the target breaks a rule of the endpoint contract those cases rely on (the preflight above says which; SPEC.md#conformance-endpoints has the contract)\n"
            ));
        }
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as JUnit XML: a suite per group, a test case per case; FAIL is a failure,
    /// UNSUPPORTED and INCONCLUSIVE skipped, NON-STRICT a success with a `verdict` property and its misses in
    /// system-out.
    pub fn junit(&self) -> Result<String, String> {
        let mut report = Report::new("hijack conform");
        let mut suites: Vec<TestSuite> = Vec::new();
        for c in &self.cases {
            let status = match c.verdict {
                Verdict::Pass | Verdict::NonStrict => TestCaseStatus::success(),
                Verdict::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(misses_line(&c.misses));
                    s.set_description(format!("{}\n{}", misses_text(&c.misses), render(&c.wire)));
                    s
                }
                Verdict::Unsupported | Verdict::Inconclusive => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(misses_line(&c.misses));
                    s
                }
            };
            let mut tc = TestCase::new(c.name.clone(), status);
            tc.set_classname(c.group.clone());
            tc.set_time(Duration::from_millis(c.duration_ms));
            tc.add_property(Property::new("verdict", c.verdict.label()));
            tc.add_property(Property::new("level", level(c.level)));
            tc.add_property(Property::new("spec", c.spec.clone()));
            if c.verdict == Verdict::NonStrict {
                tc.set_system_out(format!("NON-STRICT\n{}", misses_text(&c.misses)));
            }
            if let Some(f) = &c.figures {
                tc.add_property(Property::new(
                    "bytes_per_connection",
                    f.bytes_per_connection.to_string(),
                ));
            }
            match suites.iter_mut().find(|s| s.name.as_str() == c.group) {
                Some(s) => {
                    s.add_test_case(tc);
                }
                None => {
                    let mut s = TestSuite::new(c.group.clone());
                    s.add_test_case(tc);
                    suites.push(s);
                }
            }
        }
        report.add_test_suites(suites);
        report.set_time(Duration::from_millis(self.duration_ms));
        report.to_string().map_err(|e| e.to_string())
    }
}

/// MUST or SHOULD, as the reports spell it.
pub(crate) fn level(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
    }
}

fn misses_line(misses: &[Miss]) -> String {
    misses
        .first()
        .map(|m| format!("expected {}; observed {}", m.expected, m.observed))
        .unwrap_or_default()
}

fn misses_text(misses: &[Miss]) -> String {
    misses
        .iter()
        .map(|m| {
            format!(
                "step {} [{}]\n  expected: {}\n  observed: {}\n",
                m.step,
                level(m.level),
                m.expected,
                m.observed
            )
        })
        .collect()
}

/// A wire log as text.
pub fn render(wire: &[WireEntry]) -> String {
    let mut out = String::new();
    for e in wire {
        let conn = e.conn.map_or("-".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{:>9.1} ms  conn {conn}  {:<4}  {}\n",
            e.t_ms, e.dir, e.data
        ));
    }
    out
}
