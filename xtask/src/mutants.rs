//! The seeded bugs (mutants) of the core: the one list the kill matrix and the fuzz column run,
//! and that the tests below hold Cargo.toml's check-cfg values, README.md's kill-matrix table,
//! fuzz/README.md's fuzz-mutants table and the `cfg(hijack_mutant = "...")` branches in the
//! core's sources to. Adding a mutant: a row here, its branch in the core, its name in the
//! check-cfg values, a row in each README table (`cargo test -p xtask` says what is missing).

/// One seeded bug: `HIJACK_MUTANT=<name>` compiles it in (the core's build.rs).
pub struct Mutant {
    pub name: &'static str,
    /// What it breaks, as the tables print it.
    pub bug: &'static str,
    /// A concurrency bug: the loom models must kill it.
    pub concurrency: bool,
    /// The integration tests (of the core package) its `tests` column runs instead of the whole
    /// suite, with the unit tests: a mutant that makes the whole suite run for many minutes.
    pub tests_only: Option<&'static [&'static str]>,
    /// Whether its `loom` column runs: false for a bug no model can reach (the parser's, and
    /// request bodies no model sends), whose loom runs would only add to test-all's time.
    pub loom: bool,
}

const fn mutant(name: &'static str, bug: &'static str, concurrency: bool) -> Mutant {
    Mutant {
        name,
        bug,
        concurrency,
        tests_only: None,
        loom: true,
    }
}

pub const MUTANTS: &[Mutant] = &[
    mutant(
        "lose_background_byte",
        "the background byte is not moved into the handover (Go #15224)",
        true,
    ),
    mutant(
        "abort_without_wait",
        "abort returns before the pending read completed (Go #20963)",
        true,
    ),
    mutant(
        "double_background_read",
        "a second background read can start (Go #18535)",
        true,
    ),
    mutant(
        "pipelined_fires_close_notify",
        "a caught pipelined byte fires close-notify (Go #23921)",
        true,
    ),
    mutant(
        "keep_conn_after_exit",
        "the parts keep the connection after handler exit (Go 1.24)",
        true,
    ),
    Mutant {
        // The handover tests probe the parts directly; the rest of the suite would only add
        // minutes to test-all's kill-matrix step (the proptest column runs the leak property).
        tests_only: Some(&["handover"]),
        ..mutant(
            "parts_keep_reader",
            "the parts keep the connection reader (an Arc of it) once the handler returned",
            false,
        )
    },
    mutant(
        "read_after_hijack",
        "a background read can start after the hijack (Go #20933, #27408)",
        true,
    ),
    mutant(
        "fresh_write_buffer",
        "the hijack allocates a new write buffer (PR #70756)",
        false,
    ),
    mutant(
        "keep_deadlines",
        "deadlines stay set on the handed-over stream (Go #8296)",
        false,
    ),
    Mutant {
        // No model sends a body behind a held byte and a hijack after a written head.
        loom: false,
        ..mutant(
            "take_byte_before_discard",
            "the hijack takes a held byte before its body discard",
            false,
        )
    },
    Mutant {
        // The parser: every model sends well-formed heads, whole.
        loom: false,
        ..mutant(
            "verdict_of_whole_head",
            "a multi-fault head's verdict depends on its chunking",
            false,
        )
    },
    Mutant {
        // Every trickled head turns quadratic: the whole tests suite would run for many minutes.
        tests_only: Some(&["bad_input"]),
        loom: false,
        ..mutant(
            "reparse_every_read",
            "the head is parsed again after every read: quadratic for a trickled head",
            false,
        )
    },
    mutant(
        "shutdown_misses_full_accept",
        "shutdown does not wake an accept loop waiting for room",
        false,
    ),
    Mutant {
        // The bad-input table's HTTP/1.0 row kills it (the hostile corpus's case too).
        tests_only: Some(&["bad_input"]),
        loom: false,
        ..mutant(
            "hosts_counted_in_http11_only",
            "two Host fields are refused only in HTTP/1.1 (the reference's bug found by --explore)",
            false,
        )
    },
    Mutant {
        // The hostile corpus's chunk-size-upper-hex case kills it; the rest of the suite
        // would only add minutes to test-all's kill-matrix step.
        tests_only: Some(&["hostile"]),
        loom: false,
        ..mutant(
            "chunk_size_letters_as_zero",
            "a chunk size's hex letters count as 0 (parser and server share it)",
            false,
        )
    },
    Mutant {
        // The TCP path's tests (the rest of the suite serves the pipe, where the watcher is
        // not): the loom model W2 is what kills it.
        tests_only: Some(&["tcp", "server"]),
        ..mutant(
            "watcher_skips_rearm",
            "a background read after a caught byte is never armed: close-notify never fires over TCP",
            false,
        )
    },
    Mutant {
        // The server's tests only: issue 16 saw a stress test catch this in 2 of 5 runs (a
        // FLAKY cell); the loom model W1 kills it every time.
        tests_only: Some(&["server"]),
        ..mutant(
            "watcher_recv_outside_lock",
            "the watcher receives a byte outside its lock: an interrupt racing it loses the byte",
            true,
        )
    },
    Mutant {
        // The TCP path's tests: the loom model S2 is what kills it.
        tests_only: Some(&["tcp", "server"]),
        ..mutant(
            "hijack_wakes_no_accept",
            "a hijack does not wake an accept loop waiting under max_connections",
            true,
        )
    },
    Mutant {
        // No model sends a malformed body.
        loom: false,
        ..mutant(
            "discard_malformed_as_done",
            "the discard of a malformed unread chunked body counts as success: the connection stays open",
            false,
        )
    },
];

/// The mutant named `name`.
pub fn find(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// The names, sorted (the choices a `--mutant` flag accepts).
pub fn sorted_names() -> Vec<&'static str> {
    let mut names: Vec<_> = MUTANTS.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    //! The places that name the mutants besides this list. The README tables carry the results
    //! of runs (dated, some by hand), so they are not generated from this list: the bar is that
    //! they name exactly the listed mutants, each once.

    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The directories whose `.rs` files hold the `cfg(hijack_mutant = "...")` branches.
    const MUTANT_SOURCES: &[&str] = &["src"];

    fn read(path: &str) -> String {
        let full = crate::proc::root().join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
    }

    fn listed() -> BTreeSet<String> {
        MUTANTS.iter().map(|m| m.name.to_string()).collect()
    }

    /// The set of `names`, failing on a name that occurs twice.
    fn once_each(what: &str, names: Vec<String>) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for name in names {
            assert!(set.insert(name.clone()), "{what} names `{name}` twice");
        }
        set
    }

    /// The first cells (backticks removed) of the rows of the first markdown table in `text`,
    /// without its header and separator rows.
    fn table_rows(text: &str) -> Vec<String> {
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert!(rows.len() >= 2, "no markdown table in:\n{text}");
        assert!(rows[1].starts_with("|---"), "no separator row: {}", rows[1]);
        rows[2..]
            .iter()
            .map(|row| {
                row.split('|')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .trim_matches('`')
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_list_names_each_mutant_once() {
        once_each(
            "mutants.rs",
            MUTANTS.iter().map(|m| m.name.to_string()).collect(),
        );
        for m in MUTANTS {
            assert!(
                !m.bug.contains('|'),
                "{}: a `|` would split its table cell",
                m.name
            );
        }
    }

    #[test]
    fn every_concurrency_mutant_runs_under_loom() {
        for m in MUTANTS.iter().filter(|m| m.concurrency) {
            assert!(
                m.loom,
                "{}: a concurrency mutant must meet the models",
                m.name
            );
        }
    }

    #[test]
    fn cargo_toml_check_cfg_values_are_the_listed_mutants() {
        let toml = read("Cargo.toml");
        let start = "cfg(hijack_mutant, values(";
        let at = toml
            .find(start)
            .expect("Cargo.toml declares cfg(hijack_mutant, values(...))");
        let values = &toml[at + start.len()..];
        let values = &values[..values.find(')').expect("values(...) is closed")];
        let names = values
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(once_each("Cargo.toml's check-cfg", names), listed());
    }

    #[test]
    fn readme_kill_matrix_table_names_the_listed_mutants() {
        let readme = read("README.md");
        let at = readme
            .find("\n## Kill matrix\n")
            .expect("README.md has ## Kill matrix");
        let names = table_rows(&readme[at..]);
        assert_eq!(once_each("README.md's kill-matrix table", names), listed());
    }

    #[test]
    fn fuzz_readme_fuzz_mutants_table_names_the_listed_mutants() {
        let readme = read("fuzz/README.md");
        let (begin, end) = crate::fuzz::README_MARKERS;
        let start = readme
            .find(begin)
            .expect("fuzz/README.md has the begin marker");
        let stop = readme.find(end).expect("fuzz/README.md has the end marker");
        let names = table_rows(&readme[start..stop]);
        assert_eq!(
            once_each("fuzz/README.md's fuzz-mutants table", names),
            listed()
        );
    }

    fn rust_files(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).expect("readable source"));
            }
        }
    }

    #[test]
    fn every_listed_mutant_has_a_branch_in_the_sources() {
        let mut sources = Vec::new();
        for dir in MUTANT_SOURCES {
            rust_files(&crate::proc::root().join(dir), &mut sources);
        }
        for m in MUTANTS {
            let cfg = format!("hijack_mutant = \"{}\"", m.name);
            assert!(
                sources.iter().any(|s| s.contains(&cfg)),
                "no `{cfg}` in {MUTANT_SOURCES:?}"
            );
        }
    }
}
