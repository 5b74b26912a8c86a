//! The HTML report (`hijack conform --html FILE`, `hijack report --html OUT REPORT.json...`):
//! one self-contained page, inline CSS and a little inline JS, nothing fetched. Implementations
//! are columns, cases rows (grouped by group); each cell is coloured by its verdict and says it,
//! and opens a panel with the case's misses, its wire log, its requirement and cite. Like the
//! other reports it reads the results and judges none.
//!
//! The markup is stable, for tests and tools that read it:
//! - `<table id="totals">`: a row per verdict (`<tr data-verdict="V">`), a cell per
//!   implementation with its count (`<td data-impl="NAME" data-verdict="V">N</td>`); the
//!   `data-verdict="ALL"` row counts every case of the report.
//! - `<table id="matrix">`: a header cell per implementation (`<th data-impl="NAME"
//!   data-target="TARGET">`), a `<tbody data-group="G">` per group, a row per case
//!   (`<tr data-case="group/name">`) and in it a cell per implementation (`<td
//!   data-case="group/name" data-impl="NAME" data-verdict="V">`) whose `<span class="v">` is the
//!   verdict's label; [`NOT_RUN`] when that report lacks the case.
//! - Once its script has run, the page's `<body>` has `data-js="ready"`.

use std::collections::HashMap;
use std::fmt::Write;

use crate::report::{CaseResult, RunReport, VERDICTS, level, render};
use crate::runner::Verdict;

/// The verdict attribute of a cell whose report lacks the case.
pub const NOT_RUN: &str = "NOT-RUN";

/// The page for one run: one column, named by its target.
pub fn page_of(report: &RunReport) -> String {
    page(&[(report.target.as_str(), report)])
}

/// The page for `columns`: each an implementation's name (its column heading, the `data-impl`
/// of its cells) and its report. A name given twice gets ` #2`, ` #3`... so columns stay
/// distinct. Rows are the cases of every report, in the order they first appear, grouped by
/// group.
pub fn page(columns: &[(&str, &RunReport)]) -> String {
    let names = distinct(columns.iter().map(|(n, _)| *n));
    let reports: Vec<&RunReport> = columns.iter().map(|(_, r)| *r).collect();
    let by_name: Vec<HashMap<&str, &CaseResult>> = reports
        .iter()
        .map(|r| r.cases.iter().map(|c| (c.name.as_str(), c)).collect())
        .collect();

    // Every case once, in the order of first appearance, then grouped.
    let mut cases: Vec<&CaseResult> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &reports {
        for c in &r.cases {
            if seen.insert(c.name.as_str()) {
                cases.push(c);
            }
        }
    }
    let mut groups: Vec<&str> = Vec::new();
    for c in &cases {
        if !groups.contains(&c.group.as_str()) {
            groups.push(&c.group);
        }
    }
    let any_not_run = cases
        .iter()
        .any(|c| by_name.iter().any(|m| !m.contains_key(c.name.as_str())));

    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "hijack conform: {} implementation{} × {} cases",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        cases.len()
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = write!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"sub\">Each cell is one case against one \
         implementation; click it for what was expected and observed, the wire log and the \
         requirement (SPEC.md#conformance-endpoints). \
         <label><input type=\"checkbox\" id=\"only-open\"> only cases that are not PASS \
         everywhere</label></p>\n</header>\n",
        esc(&title)
    );

    // Totals, one row per verdict: the legend too.
    out.push_str("<table id=\"totals\">\n<thead><tr><th>verdict</th><th>meaning</th>");
    for n in &names {
        let _ = write!(out, "<th data-impl=\"{0}\">{0}</th>", esc(n));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut legend: Vec<(&str, &str)> = VERDICTS.iter().map(|v| (v.label(), meaning(*v))).collect();
    if any_not_run {
        legend.push((NOT_RUN, "the case is not in this implementation's report"));
    }
    for (label, what) in &legend {
        let _ = write!(
            out,
            "<tr data-verdict=\"{label}\"><th><span class=\"chip v-{label}\">{}</span></th>\
             <td class=\"meaning\">{}</td>",
            shown(label),
            esc(what)
        );
        for (i, n) in names.iter().enumerate() {
            let count = if *label == NOT_RUN {
                cases
                    .iter()
                    .filter(|c| !by_name[i].contains_key(c.name.as_str()))
                    .count()
            } else {
                reports[i]
                    .cases
                    .iter()
                    .filter(|c| c.verdict.label() == *label)
                    .count()
            };
            let _ = write!(
                out,
                "<td data-impl=\"{}\" data-verdict=\"{label}\" class=\"{}\">{count}</td>",
                esc(n),
                if count == 0 { "zero" } else { "" }
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("<tr data-verdict=\"ALL\" class=\"all\"><th>all</th><td class=\"meaning\">cases in the report, and the run's wall time</td>");
    for (i, n) in names.iter().enumerate() {
        let _ = write!(
            out,
            "<td data-impl=\"{}\" data-verdict=\"ALL\">{}<small> in {:.1} s</small></td>",
            esc(n),
            reports[i].cases.len(),
            reports[i].duration_ms as f64 / 1000.0
        );
    }
    out.push_str("</tr>\n</tbody>\n</table>\n");

    // The preflight of the endpoint contract: a row per probe, what each target answered.
    let mut probes: Vec<&str> = Vec::new();
    for r in &reports {
        for c in &r.contract {
            if !probes.contains(&c.probe.as_str()) {
                probes.push(&c.probe);
            }
        }
    }
    if !probes.is_empty() {
        out.push_str(
            "<table id=\"contract\">\n<thead><tr><th>preflight of the endpoint contract</th>",
        );
        for n in &names {
            let _ = write!(out, "<th data-impl=\"{0}\">{0}</th>", esc(n));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for p in &probes {
            let _ = write!(out, "<tr><th>{}</th>", esc(p));
            for (i, n) in names.iter().enumerate() {
                match reports[i].contract.iter().find(|c| c.probe == *p) {
                    Some(c) => {
                        let class = match (c.ok, c.optional) {
                            (true, _) => "v-PASS",
                            (false, true) => "v-UNSUPPORTED",
                            (false, false) => "v-FAIL",
                        };
                        let _ = write!(
                            out,
                            "<td data-impl=\"{}\" class=\"{class}\" title=\"{}\">{}</td>",
                            esc(n),
                            esc(&c.rule),
                            esc(&c.answer)
                        );
                    }
                    None => {
                        let _ = write!(out, "<td data-impl=\"{}\"></td>", esc(n));
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }

    // The matrix.
    out.push_str("<table id=\"matrix\">\n<thead><tr><th class=\"case\">case</th>");
    for (i, n) in names.iter().enumerate() {
        let target = &reports[i].target;
        let _ = write!(
            out,
            "<th data-impl=\"{}\" data-target=\"{}\"><span class=\"name\">{}</span>",
            esc(n),
            esc(target),
            esc(n)
        );
        if target != n {
            let _ = write!(out, "<span class=\"target\">{}</span>", esc(target));
        }
        out.push_str("</th>");
    }
    out.push_str("</tr></thead>\n");
    for g in &groups {
        let in_group: Vec<&CaseResult> = cases.iter().copied().filter(|c| c.group == *g).collect();
        let open_rows = in_group.iter().filter(|c| !all_pass(c, &by_name)).count();
        let _ = write!(
            out,
            "<tbody data-group=\"{0}\"{1}>\n<tr class=\"group\"><th colspan=\"{2}\">{0} \
             <small>{3} case{4}{5}</small></th></tr>\n",
            esc(g),
            if open_rows == 0 {
                " class=\"all-pass\""
            } else {
                ""
            },
            names.len() + 1,
            in_group.len(),
            if in_group.len() == 1 { "" } else { "s" },
            if open_rows == 0 {
                String::new()
            } else {
                format!(", {open_rows} not PASS everywhere")
            }
        );
        for c in in_group {
            row(&mut out, c, &names, &by_name);
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n");
    let _ = write!(
        out,
        "<footer>hijack-conform {}: <code>hijack report --html</code> or \
         <code>hijack conform --html</code>. Escape or × closes a panel.</footer>\n\
         <script>{JS}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// One case's row: its heading (the requirement) and a cell per implementation.
fn row(out: &mut String, c: &CaseResult, names: &[String], by_name: &[HashMap<&str, &CaseResult>]) {
    let short = c
        .name
        .strip_prefix(&format!("{}/", c.group))
        .unwrap_or(&c.name);
    let _ = write!(
        out,
        "<tr data-case=\"{}\"{}><th scope=\"row\" class=\"case\"><details><summary>\
         <span class=\"cname\">{}</span> <span class=\"lvl lvl-{}\">{}</span></summary>\
         <div class=\"panel\"><button type=\"button\" class=\"close\" aria-label=\"close\">×</button>\
         <h2>{}</h2>",
        esc(&c.name),
        if all_pass(c, by_name) {
            " class=\"all-pass\""
        } else {
            ""
        },
        esc(short),
        level(c.level),
        level(c.level),
        esc(&c.name)
    );
    requirement(out, c);
    out.push_str("<h3>verdicts</h3><ul class=\"verdicts\">");
    for (i, n) in names.iter().enumerate() {
        let label = by_name[i]
            .get(c.name.as_str())
            .map_or(NOT_RUN, |r| r.verdict.label());
        let _ = write!(
            out,
            "<li><span class=\"chip v-{label}\">{}</span> {}</li>",
            shown(label),
            esc(n)
        );
    }
    out.push_str("</ul></div></details></th>");
    for (i, n) in names.iter().enumerate() {
        cell(out, c, n, by_name[i].get(c.name.as_str()).copied());
    }
    out.push_str("</tr>\n");
}

/// One implementation's result of one case: its verdict, and the panel it opens.
fn cell(out: &mut String, case: &CaseResult, name: &str, result: Option<&CaseResult>) {
    let label = result.map_or(NOT_RUN, |r| r.verdict.label());
    let _ = write!(
        out,
        "<td data-case=\"{}\" data-impl=\"{}\" data-verdict=\"{label}\" class=\"cell v-{label}\">\
         <details><summary><span class=\"v\">{}</span>",
        esc(&case.name),
        esc(name),
        shown(label)
    );
    if let Some(f) = result.and_then(|r| r.figures.as_ref()) {
        let _ = write!(
            out,
            " <small class=\"fig\">{:.1} KiB</small>",
            f.bytes_per_connection as f64 / 1024.0
        );
    }
    let _ = write!(
        out,
        "</summary><div class=\"panel\"><button type=\"button\" class=\"close\" \
         aria-label=\"close\">×</button><h2>{}</h2><p class=\"who\">{}: <span class=\"chip \
         v-{label}\">{}</span>",
        esc(&case.name),
        esc(name),
        shown(label)
    );
    let Some(r) = result else {
        out.push_str(" (the case is not in this implementation's report)</p>");
        requirement(out, case);
        out.push_str("</div></details></td>");
        return;
    };
    let _ = write!(out, " in {} ms</p>", r.duration_ms);
    requirement(out, r);
    out.push_str("<h3>misses</h3>");
    if r.misses.is_empty() {
        out.push_str("<p class=\"none\">none</p>");
    } else {
        out.push_str(
            "<table class=\"misses\"><thead><tr><th>step</th><th>level</th><th>expected</th>\
             <th>observed</th></tr></thead><tbody>",
        );
        for m in &r.misses {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                m.step,
                level(m.level),
                esc(&m.expected),
                esc(&m.observed)
            );
        }
        out.push_str("</tbody></table>");
    }
    if let Some(f) = &r.figures {
        let _ = write!(
            out,
            "<h3>memory</h3><p>{} bytes ({:.1} KiB) retained per held hijacked connection over \
             {} connections; the threshold is {:.0} KiB.</p>",
            f.bytes_per_connection,
            f.bytes_per_connection as f64 / 1024.0,
            f.connections,
            f.threshold as f64 / 1024.0
        );
    }
    out.push_str("<h3>wire log</h3>");
    if r.wire.is_empty() {
        out.push_str("<p class=\"none\">not in the report (kept for FAIL and NON-STRICT)</p>");
    } else {
        let _ = write!(out, "<pre class=\"wire\">{}</pre>", esc(&render(&r.wire)));
    }
    out.push_str("</div></details></td>");
}

/// The case's requirement: its spec, level, what it checks and the sentence it cites.
fn requirement(out: &mut String, c: &CaseResult) {
    let _ = write!(
        out,
        "<dl class=\"req\"><dt>requirement</dt><dd><code>{}</code> ({})</dd>\
         <dt>checks</dt><dd>{}</dd><dt>cite</dt><dd>",
        esc(&c.spec),
        level(c.level),
        esc(&c.description)
    );
    if c.cite.trim().is_empty() {
        out.push_str("<span class=\"none\">no citation recorded</span>");
    } else {
        let _ = write!(
            out,
            "<blockquote class=\"cite\">{}</blockquote>",
            esc(&c.cite)
        );
    }
    out.push_str("</dd></dl>");
}

/// Whether every implementation passed `c`.
fn all_pass(c: &CaseResult, by_name: &[HashMap<&str, &CaseResult>]) -> bool {
    by_name.iter().all(|m| {
        m.get(c.name.as_str())
            .is_some_and(|r| r.verdict == Verdict::Pass)
    })
}

/// What a verdict means, for the legend.
fn meaning(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "every check held",
        Verdict::Fail => "a MUST-level check missed",
        Verdict::NonStrict => {
            "only SHOULD-level checks missed: an answer RFC 9112 allows, not the reference's"
        }
        Verdict::Inconclusive => {
            "nothing decisive arrived within a step's time; a longer --timeout may decide"
        }
        Verdict::Unsupported => "the server lacks an endpoint the case needs",
    }
}

/// How a verdict label is shown in a cell.
fn shown(label: &str) -> &str {
    if label == NOT_RUN { "not run" } else { label }
}

/// `names`, each one that was already given suffixed ` #2`, ` #3`...
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let mut name = n.to_string();
        let mut k = 1;
        while out.contains(&name) {
            k += 1;
            name = format!("{n} #{k}");
        }
        out.push(name);
    }
    out
}

/// `s` as HTML text or attribute value: `& < > " '` as references, and control characters
/// (which HTML cannot carry) but tab and newline as `\xNN`.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(ch),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --line: #d0d5dc; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
body { margin: 0; padding: 12px 16px 40px; font-size: 13px; color: #1f2328; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
.sub { margin: 0 0 10px; color: #57606a; }
.sub label { margin-left: 12px; color: #1f2328; white-space: nowrap; }
table { border-collapse: separate; border-spacing: 0; }
#totals { margin-bottom: 14px; }
#contract { margin-bottom: 14px; font-size: 12px; }
#contract th, #contract td { padding: 2px 8px; border-bottom: 1px solid var(--line); text-align: left; }
#contract thead th { background: #f6f8fa; font-weight: 600; }
#totals > * > tr > th, #totals > * > tr > td { padding: 2px 8px; border-bottom: 1px solid var(--line); text-align: left; }
#totals thead th { background: #f6f8fa; font-weight: 600; }
#totals td[data-impl], #totals th[data-impl] { text-align: right; font-variant-numeric: tabular-nums; min-width: 5em; white-space: nowrap; }
#totals td.zero { color: #a0a7b0; }
#totals tr.all td, #totals tr.all th { font-weight: 600; border-bottom: 0; }
#totals .meaning { color: #57606a; max-width: 46em; }
#matrix { font-size: 12.5px; }
#matrix > thead > tr > th { position: sticky; top: 0; z-index: 3; background: #f6f8fa; border-bottom: 2px solid #8c959f; padding: 4px 6px; text-align: center; vertical-align: bottom; }
#matrix > thead > tr > th.case { text-align: left; }
#matrix > thead .name { display: block; font-weight: 600; }
#matrix > thead .target { display: block; font-weight: 400; font-size: 11px; color: #57606a; overflow-wrap: break-word; }
#matrix > thead > tr > th[data-impl] { width: 11em; min-width: 11em; max-width: 11em; }
#matrix > tbody > tr.group > th { text-align: left; padding: 8px 6px 2px; font-size: 13px; border-bottom: 1px solid #8c959f; background: #fff; }
#matrix > tbody > tr.group small { font-weight: 400; color: #57606a; margin-left: 6px; }
#matrix > tbody > tr > th.case { text-align: left; font-weight: 400; white-space: nowrap; border-bottom: 1px solid #eaeef2; padding: 0; min-width: 22em; }
#matrix > tbody > tr:hover > th.case { background: #eef3f9; }
#matrix > tbody > tr > td.cell { padding: 0; border-bottom: 1px solid #fff; border-right: 1px solid #fff; text-align: center; white-space: nowrap; }
summary { list-style: none; cursor: pointer; padding: 1px 6px; line-height: 18px; }
summary::-webkit-details-marker { display: none; }
summary:hover { outline: 1px solid #57606a; outline-offset: -1px; }
details[open] > summary { outline: 2px solid #0969da; outline-offset: -2px; }
.lvl { font-size: 10px; color: #57606a; border: 1px solid #d0d5dc; border-radius: 3px; padding: 0 3px; }
.lvl-SHOULD { border-style: dashed; }
.fig { font-size: 10.5px; opacity: .85; }
.v-PASS { background: #dcf3e3; color: #0f5132; }
.v-FAIL { background: #f9c9c9; color: #7a0e0e; font-weight: 700; }
.v-NON-STRICT { background: #fdefbd; color: #6b4400; font-weight: 600; }
.v-INCONCLUSIVE { background: #dfe3fb; color: #2f2a7a; font-weight: 600; }
.v-UNSUPPORTED { background: #eceef1; color: #3c4450; }
.v-NOT-RUN { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #f1f2f4 4px, #f1f2f4 8px); color: #6e7781; font-style: italic; }
.chip { display: inline-block; padding: 0 6px; border-radius: 3px; line-height: 18px; min-width: 7em; text-align: center; }
#matrix.only-open > tbody.all-pass, #matrix.only-open > tbody > tr.all-pass { display: none; }
details[open] > .panel { position: fixed; top: 0; right: 0; bottom: 0; width: min(760px, 58vw); overflow: auto; z-index: 10; background: #fff; color: #1f2328; font-weight: 400; font-style: normal; text-align: left; white-space: normal; box-shadow: -4px 0 18px rgba(0,0,0,.25); border-left: 1px solid #8c959f; padding: 10px 16px 24px; cursor: auto; }
.panel h2 { font-size: 15px; margin: 4px 30px 6px 0; overflow-wrap: anywhere; }
.panel h3 { font-size: 13px; margin: 14px 0 4px; }
.panel .close { position: absolute; top: 6px; right: 8px; font-size: 18px; line-height: 1; border: 1px solid #d0d5dc; background: #f6f8fa; border-radius: 4px; cursor: pointer; padding: 2px 8px; }
.panel dl.req { display: grid; grid-template-columns: 7em 1fr; gap: 2px 10px; margin: 6px 0; }
.panel dt { color: #57606a; }
.panel dd { margin: 0; }
.panel blockquote { margin: 0; padding: 2px 8px; border-left: 3px solid #8c959f; background: #f6f8fa; }
.panel .none { color: #6e7781; font-style: italic; }
.panel ul.verdicts { list-style: none; padding: 0; margin: 0; }
.panel ul.verdicts li { margin: 2px 0; }
table.misses { width: 100%; border: 1px solid var(--line); }
table.misses th, table.misses td { border-bottom: 1px solid var(--line); padding: 3px 6px; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
table.misses th { background: #f6f8fa; }
pre.wire { font-size: 11.5px; background: #f6f8fa; border: 1px solid var(--line); padding: 6px 8px; overflow-x: auto; white-space: pre; margin: 0; }
footer { margin-top: 16px; color: #6e7781; font-size: 12px; }
"#;

const JS: &str = r#"
(function () {
  "use strict";
  // One panel open at a time; Escape or its button closes it.
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (!(d instanceof HTMLDetailsElement) || !d.open) return;
    document.querySelectorAll("details[open]").forEach(function (o) {
      if (o !== d) o.open = false;
    });
  }, true);
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest(".panel .close");
    if (b) b.closest("details").open = false;
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      document.querySelectorAll("details[open]").forEach(function (o) { o.open = false; });
    }
  });
  var only = document.getElementById("only-open");
  var matrix = document.getElementById("matrix");
  function filter() { matrix.classList.toggle("only-open", only.checked); }
  only.addEventListener("change", filter);
  filter();
  document.body.dataset.js = "ready";
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>\u{0}\r\n\t"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\\x00\\x0d\n\t"
        );
    }

    #[test]
    fn report_text_cannot_break_out_of_the_page() {
        let evil = "</pre></td><script>alert(1)</script>\"'&";
        let case = serde_json::json!({
            "name": "handover/x", "group": "handover", "level": "MUST", "spec": evil,
            "description": evil, "cite": evil, "verdict": "FAIL", "duration_ms": 1,
            "misses": [{"step": 0, "level": "SHOULD", "expected": evil, "observed": evil}],
            "wire": [{"t_ms": 0.0, "conn": 0, "dir": "recv", "data": evil}],
        });
        let report: RunReport = serde_json::from_value(serde_json::json!({
            "target": evil, "duration_ms": 1, "totals": {}, "cases": [case],
        }))
        .unwrap();
        let page = page(&[(evil, &report)]);
        assert!(!page.contains("<script>alert"), "{page}");
        assert_eq!(page.matches("<script>").count(), 1, "only the page's own");
        assert_eq!(page.matches("</pre>").count(), 1, "only the wire log's own");
        assert!(page.contains(
            "&lt;/pre&gt;&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"
        ));
        // Nothing fetched.
        for fetch in ["<link", " src=", "href=", "@import", "url("] {
            assert!(!page.contains(fetch), "{fetch:?}");
        }
    }

    #[test]
    fn repeated_names_are_made_distinct() {
        assert_eq!(
            distinct(["a", "b", "a", "a"].into_iter()),
            ["a", "b", "a #2", "a #3"]
        );
    }
}
