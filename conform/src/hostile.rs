//! The hostile-input corpus (`conform/hostile/NAME.http`, compiled in): each file is a header of
//! `key: value` lines (`expect:`, `rule:`, `note:`), a line `---`, and the raw request bytes to
//! the end of the file, sent in one write. The file's rule (`conform/src/rules.rs`) sets its
//! levels, cite and accepted statuses. This module parses the format and turns a file into a
//! vector; it never reads anything else.

use std::path::Path;

use crate::rules::{self, Rule};
use crate::vector::{Level, ResponseExpect, Step, Vector, latin1_string};

/// One parsed corpus file.
#[derive(Debug, PartialEq, Eq)]
pub struct HostileCase {
    /// The statuses of the responses, in order: the strict ones.
    pub statuses: Vec<u16>,
    /// The server must close the connection after the last response.
    pub close: bool,
    /// What the file is about.
    pub note: String,
    /// The condition it checks, which sets its levels: it applies to the faulty request (the
    /// last one not answered 200), or to every request of a control case.
    pub rule: &'static Rule,
    /// The bytes to send.
    pub request: Vec<u8>,
}

/// Parses one corpus file.
pub fn parse(file: &[u8]) -> Result<HostileCase, String> {
    let mut rest = file;
    let mut statuses = None;
    let mut close = false;
    let mut note = None;
    let mut rule = None;
    loop {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err("no `---` line".into());
        };
        let line = std::str::from_utf8(&rest[..nl])
            .map_err(|_| "a header line is not UTF-8".to_string())?
            .trim_end_matches('\r');
        rest = &rest[nl + 1..];
        if line == "---" {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("not a `key: value` line: {line:?}"));
        };
        let (key, value) = (key.trim(), value.trim());
        let fresh = match key {
            "expect" => {
                let mut list = Vec::new();
                for word in value.split_whitespace() {
                    if word == "close" {
                        close = true;
                    } else if close {
                        return Err(format!("`close` must come last: {value:?}"));
                    } else {
                        let status: u16 = word
                            .parse()
                            .ok()
                            .filter(|s| (100..600).contains(s))
                            .ok_or_else(|| format!("bad status {word:?} in expect"))?;
                        list.push(status);
                    }
                }
                statuses.replace(list).is_none()
            }
            "note" => note.replace(value.to_string()).is_none(),
            "rule" => {
                let found = rules::find(value).ok_or_else(|| {
                    format!("unknown rule {value:?} (known: {})", rules::known_ids())
                })?;
                rule.replace(found).is_none()
            }
            "level" | "close-level" => {
                return Err(format!(
                    "`{key}:` is not a key any more: a case's levels come from its rule \
                     (conform/src/rules.rs), derived from the RFC sentence it quotes"
                ));
            }
            // A misspelt key would silently change nothing: refuse it.
            _ => return Err(format!("unknown key {key:?} (expect, rule, note)")),
        };
        if !fresh {
            return Err(format!("`{key}` given twice"));
        }
    }
    let statuses = statuses.ok_or("no `expect:` line")?;
    if statuses.is_empty() && !close {
        return Err("`expect:` names nothing".into());
    }
    let note = note.filter(|n| !n.is_empty()).ok_or("no `note:` line")?;
    let rule = rule.ok_or_else(|| format!("no `rule:` line (one of: {})", rules::known_ids()))?;
    if rest.is_empty() {
        return Err("no request bytes after `---`".into());
    }
    Ok(HostileCase {
        statuses,
        close,
        note,
        rule,
        request: rest.to_vec(),
    })
}

impl HostileCase {
    /// The level of the status checks: the rule's.
    pub fn level(&self) -> Level {
        self.rule.status_level()
    }

    /// The level of the close check: the rule's.
    pub fn close_level(&self) -> Level {
        self.rule.close_level()
    }

    /// Which response the rule judges: the last one that is not a 200, or the last one when
    /// all are (a control case). `None` when no response is expected.
    pub fn faulty(&self) -> Option<usize> {
        self.statuses
            .iter()
            .rposition(|&s| s != 200)
            .or(self.statuses.len().checked_sub(1))
    }

    /// The expected responses: the faulty one with the rule's accepted statuses, the others
    /// exact.
    pub fn responses(&self) -> Vec<ResponseExpect> {
        let faulty = self.faulty();
        self.statuses
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if Some(i) == faulty {
                    self.rule.expect(s)
                } else {
                    ResponseExpect::status(s)
                }
            })
            .collect()
    }

    /// The vector of corpus file `name` (without `.http`): one write, then the responses.
    /// More responses than listed would answer a request the server should not have seen.
    pub fn vector(&self, name: &str) -> Vector {
        Vector {
            version: 1,
            name: format!("hostile/{name}"),
            level: self.level(),
            spec: "SPEC.md#bad-input".into(),
            description: self.note.clone(),
            cite: self.rule.cite(),
            rule: self.rule.id.into(),
            per_hop: String::new(),
            needs: vec![],
            steps: vec![
                Step::Connect { conn: 0 },
                Step::Send {
                    conn: 0,
                    data: latin1_string(&self.request),
                    repeat: None,
                    write_size: None,
                    pause_ms: None,
                },
                Step::ExpectResponses {
                    conn: 0,
                    responses: Some(self.responses()),
                    close: self.close,
                    close_level: Some(self.close_level()),
                    max_responses: Some(self.statuses.len()),
                    follow_up: true,
                },
            ],
        }
    }
}

/// The corpus compiled into this crate: `conform/hostile/*.http`.
static CORPUS: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/hostile");

/// Every file of the compiled-in corpus as `(name without .http, bytes)`, sorted by name.
pub fn builtin_files() -> Vec<(&'static str, &'static [u8])> {
    let mut files: Vec<(&'static str, &'static [u8])> = CORPUS
        .files()
        .filter_map(|f| {
            let name = f.path().to_str()?.strip_suffix(".http")?;
            Some((name, f.contents()))
        })
        .collect();
    files.sort();
    files
}

/// Every case of the compiled-in corpus as a vector, sorted by name.
///
/// # Panics
/// When a compiled-in file is malformed: the crate's own tests parse each one, so that is a
/// build of a broken tree.
pub fn builtin() -> Vec<Vector> {
    builtin_files()
        .into_iter()
        .map(|(name, bytes)| match parse(bytes) {
            Ok(case) => case.vector(name),
            Err(e) => panic!("compiled-in corpus file {name}.http: {e}"),
        })
        .collect()
}

/// Every `*.http` file of `dir` as a vector, sorted by name. A missing or unreadable folder is
/// an error, as is a malformed file (naming it).
pub fn load_dir(dir: &Path) -> Result<Vec<Vector>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let case = parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            Ok(case.vector(&name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_corpus_format() {
        let file = b"expect: 200 400 close\nrule: te-and-cl\nnote: CL.TE: both\n---\nGET / HTTP/1.1\r\n\r\n\x00";
        let case = parse(file).unwrap();
        assert_eq!(
            case,
            HostileCase {
                statuses: vec![200, 400],
                close: true,
                note: "CL.TE: both".into(),
                rule: rules::find("te-and-cl").unwrap(),
                request: b"GET / HTTP/1.1\r\n\r\n\x00".to_vec(),
            }
        );
        assert_eq!(
            (case.level(), case.close_level()),
            (Level::Should, Level::Must)
        );
        let plain = parse(b"expect: 400\nrule: invalid-content-length\nnote: n\n---\nX").unwrap();
        assert_eq!(
            (plain.level(), plain.close, &plain.request[..]),
            (Level::Must, false, &b"X"[..])
        );
        let refused = |file: &[u8]| parse(file).unwrap_err();
        assert!(
            parse(b"expect: 400\nrule: bare-lf\nGET / HTTP/1.1\r\n").is_err(),
            "no separator"
        );
        assert!(refused(b"rule: bare-lf\nnote: x\n---\nX").contains("expect"));
        assert!(refused(b"expect: close 200\nrule: bare-lf\n---\nX").contains("last"));
        assert!(refused(b"expect: 2000\n---\nX").contains("status"));
        let no_rule = refused(b"expect: 400\nnote: n\n---\nX");
        assert!(
            no_rule.contains("no `rule:`") && no_rule.contains("te-and-cl"),
            "{no_rule}"
        );
        let unknown = refused(b"expect: 400\nrule: bogus\nnote: n\n---\nX");
        assert!(
            unknown.contains("\"bogus\"") && unknown.contains("obs-fold"),
            "{unknown}"
        );
        for key in ["level: SHOULD", "close-level: MUST"] {
            let file = format!("expect: 400\nrule: bare-lf\nnote: n\n{key}\n---\nX");
            let e = refused(file.as_bytes());
            assert!(e.contains("levels come from its rule"), "{e}");
        }
        assert!(
            refused(b"expect: 400\nrule: bare-lf\nrule: bare-cr\nnote: n\n---\nX")
                .contains("twice")
        );
    }

    #[test]
    fn a_corpus_file_becomes_a_one_write_vector() {
        let parsed =
            parse(b"expect: 200 400 close\nrule: content-length-too-large\nnote: n\n---\nAB")
                .unwrap();
        let v = parsed.vector("x");
        assert_eq!(v.name, "hostile/x");
        assert_eq!(
            (v.level, v.rule.as_str()),
            (Level::Must, "content-length-too-large")
        );
        assert_eq!(v.cite, parsed.rule.cite());
        assert!(matches!(&v.steps[1], Step::Send { data, write_size: None, .. } if data == "AB"));
        let Step::ExpectResponses {
            responses: Some(responses),
            close: true,
            close_level: Some(Level::Should),
            max_responses: Some(2),
            ..
        } = &v.steps[2]
        else {
            panic!("{:?}", v.steps[2])
        };
        // Earlier responses are exact; the rule's accepted statuses go to the faulty one.
        assert_eq!(responses[0], ResponseExpect::status(200));
        assert_eq!(
            (responses[1].status, &responses[1].accept[..]),
            (400, &["413".to_string()][..])
        );
    }

    #[test]
    fn every_corpus_file_s_statuses_match_its_rule() {
        for (name, bytes) in builtin_files() {
            let case = parse(bytes).unwrap_or_else(|e| panic!("{name}.http: {e}"));
            let rule = case.rule;
            let faulty = case.faulty().map(|i| case.statuses[i]);
            assert!(
                faulty.is_some_and(|s| s == rule.status || rule.expect(rule.status).allows(s)),
                "{name}.http: expect {:?} but rule {} answers {} (or {:?})",
                case.statuses,
                rule.id,
                rule.status,
                rule.accept
            );
            // Before the faulty request, every one is a valid request answered 200.
            let i = case.faulty().unwrap();
            assert!(case.statuses[..i].iter().all(|&s| s == 200), "{name}.http");
        }
    }
}
