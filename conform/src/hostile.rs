//! The hostile-input corpus (`conform/hostile/NAME.http`, compiled in): each file is a header of
//! `key: value` lines (`expect:`, `note:`, `level:`), a line `---`, and the raw request bytes
//! to the end of the file, sent in one write. This module parses the format and turns a file
//! into a vector; it never reads anything else.

use std::path::Path;

use crate::vector::{Level, ResponseExpect, Step, Vector, latin1_string};

/// One parsed corpus file.
#[derive(Debug, PartialEq, Eq)]
pub struct HostileCase {
    /// The statuses of the responses, in order.
    pub statuses: Vec<u16>,
    /// The server must close the connection after the last response.
    pub close: bool,
    /// What the file is about.
    pub note: String,
    /// MUST unless the file says `level: SHOULD`.
    pub level: Level,
    /// The level of the close check when the file sets one (`close-level: MUST`): RFC 9112
    /// requires the close after some requests whose status it leaves to the server.
    pub close_level: Option<Level>,
    /// The bytes to send.
    pub request: Vec<u8>,
}

/// Parses one corpus file.
pub fn parse(file: &[u8]) -> Result<HostileCase, String> {
    let mut rest = file;
    let mut statuses = None;
    let mut close = false;
    let mut note = None;
    let mut level = None;
    let mut close_level = None;
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
            "level" => level.replace(parse_level(value)?).is_none(),
            "close-level" => close_level.replace(parse_level(value)?).is_none(),
            // A misspelt key would silently change nothing: refuse it.
            _ => {
                return Err(format!(
                    "unknown key {key:?} (expect, note, level, close-level)"
                ));
            }
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
    if rest.is_empty() {
        return Err("no request bytes after `---`".into());
    }
    let level = level.unwrap_or(Level::Must);
    Ok(HostileCase {
        statuses,
        close,
        note,
        level,
        close_level,
        request: rest.to_vec(),
    })
}

fn parse_level(value: &str) -> Result<Level, String> {
    match value {
        "SHOULD" => Ok(Level::Should),
        "MUST" => Ok(Level::Must),
        other => Err(format!("bad level {other:?}")),
    }
}

impl HostileCase {
    /// The vector of corpus file `name` (without `.http`): one write, then the responses.
    /// More responses than listed would answer a request the server should not have seen.
    pub fn vector(&self, name: &str) -> Vector {
        Vector {
            version: 1,
            name: format!("hostile/{name}"),
            level: self.level,
            spec: "SPEC.md#bad-input".into(),
            description: self.note.clone(),
            cite: String::new(),
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
                    responses: Some(
                        self.statuses
                            .iter()
                            .map(|&s| ResponseExpect::status(s))
                            .collect(),
                    ),
                    close: self.close,
                    close_level: self.close_level,
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
        let file = b"expect: 200 400 close\nnote: CL.TE: both\nlevel: SHOULD\n---\nGET / HTTP/1.1\r\n\r\n\x00";
        let case = parse(file).unwrap();
        assert_eq!(
            case,
            HostileCase {
                statuses: vec![200, 400],
                close: true,
                note: "CL.TE: both".into(),
                level: Level::Should,
                close_level: None,
                request: b"GET / HTTP/1.1\r\n\r\n\x00".to_vec(),
            }
        );
        let plain = parse(b"expect: 400\nnote: n\n---\nX").unwrap();
        assert_eq!(
            (plain.level, plain.close, &plain.request[..]),
            (Level::Must, false, &b"X"[..])
        );
        assert!(
            parse(b"expect: 400\nGET / HTTP/1.1\r\n").is_err(),
            "no separator"
        );
        assert!(parse(b"note: x\n---\n").is_err(), "no expect");
        assert!(parse(b"expect: close 200\n---\n").is_err(), "close first");
        assert!(parse(b"expect: 2000\n---\n").is_err(), "not a status");
        assert!(
            parse(b"expect: 400\nlevel: MAY\n---\n").is_err(),
            "bad level"
        );
    }

    #[test]
    fn a_corpus_file_becomes_a_one_write_vector() {
        let parsed =
            parse(b"expect: 400 close\nnote: n\nlevel: SHOULD\nclose-level: MUST\n---\nAB")
                .unwrap();
        assert_eq!(
            (parsed.level, parsed.close_level),
            (Level::Should, Some(Level::Must))
        );
        let v = parsed.vector("x");
        assert_eq!(v.name, "hostile/x");
        assert!(matches!(&v.steps[1], Step::Send { data, write_size: None, .. } if data == "AB"));
        assert!(matches!(
            &v.steps[2],
            Step::ExpectResponses {
                close: true,
                close_level: Some(Level::Must),
                max_responses: Some(1),
                ..
            }
        ));
    }
}
