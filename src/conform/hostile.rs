//! The hostile-input corpus (`tests/hostile/NAME.http`): each file is a header of
//! `key: value` lines (`expect:`, `note:`, `level:`), a line `---`, and the raw request bytes
//! to the end of the file, sent in one write. This module parses the format and turns a file
//! into a vector; it never reads anything else.

use std::path::Path;

use super::vector::{Level, ResponseExpect, Step, Vector, latin1_string};

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
    let mut note = String::new();
    let mut level = Level::Must;
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
        let value = value.trim();
        match key.trim() {
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
                statuses = Some(list);
            }
            "note" => note = value.to_string(),
            "level" => level = parse_level(value)?,
            "close-level" => close_level = Some(parse_level(value)?),
            // Unknown keys are for humans or for later.
            _ => {}
        }
    }
    let statuses = statuses.ok_or("no `expect:` line")?;
    if statuses.is_empty() && !close {
        return Err("`expect:` names nothing".into());
    }
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
                },
            ],
        }
    }
}

/// Every `*.http` file of `dir` as a vector, sorted by name; none if `dir` is absent.
pub fn load(dir: &Path) -> Result<Vec<Vector>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(vec![]);
    };
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
        let plain = parse(b"expect: 400\n---\nX").unwrap();
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
            parse(b"expect: 400 close\nlevel: SHOULD\nclose-level: MUST\n---\nAB").unwrap();
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
