//! The core's module layout (the workspace issue, "the core's seams"): no import circle among
//! the modules of `src/`, and nothing imported from the crate root (a module names the module
//! that defines what it uses, never a re-export of `lib.rs`). Test modules (`#[cfg(test)]` and
//! what follows) and comments are left out: they may use anything.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

/// The first path segment of every `crate::…` path in `code` (braced groups split).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's items at the commas outside nested braces.
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(first_segment(&item));
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A module's code without its test modules and comment lines.
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    let end = end.min(text.find("#[cfg(all(test").unwrap_or(text.len()));
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The import graph of `modules` (name, text), and the uses of anything that is not a module
/// (`module: crate::Item`).
fn graph(modules: &[(String, String)]) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let names: BTreeSet<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    let mut edges = BTreeMap::new();
    let mut upward = Vec::new();
    for (name, text) in modules {
        let out: &mut BTreeSet<String> = edges.entry(name.clone()).or_default();
        for target in crate_paths(&code_of(text)) {
            if names.contains(target.as_str()) {
                if target != *name {
                    out.insert(target);
                }
            } else {
                upward.push(format!("{name}: crate::{target}"));
            }
        }
    }
    (edges, upward)
}

/// A circle of imports, as the modules along it, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn core_modules() -> Vec<(String, String)> {
    let src = crate::proc::root().join("src");
    let mut modules: Vec<(String, String)> = std::fs::read_dir(&src)
        .expect("src/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".rs")?.to_string();
            (stem != "lib").then(|| (stem, std::fs::read_to_string(e.path()).unwrap()))
        })
        .collect();
    modules.sort();
    modules
}

#[test]
fn the_core_modules_import_no_circle_and_nothing_from_the_crate_root() {
    let modules = core_modules();
    assert!(modules.len() > 10, "read {} modules", modules.len());
    let (edges, upward) = graph(&modules);
    assert!(upward.is_empty(), "imports from the crate root: {upward:?}");
    assert_eq!(circle(&edges), None, "an import circle");
}

#[test]
fn the_check_sees_a_circle_and_an_upward_import() {
    let m = |n: &str, t: &str| (n.to_string(), t.to_string());
    let modules = [
        m("a", "use crate::b::X;\n// use crate::c::Y (a comment)"),
        m("b", "use crate::{c::{D, E}, sync::Arc};"),
        m(
            "c",
            "fn f() { crate::a::g(); }\n#[cfg(test)]\nmod tests { use crate::Fired; }",
        ),
        m("sync", "pub use std::sync::Arc;"),
        m("d", "use crate::Fired;"),
    ];
    let (edges, upward) = graph(&modules);
    assert_eq!(upward, ["d: crate::Fired"]);
    assert_eq!(
        edges["b"],
        BTreeSet::from(["c".to_string(), "sync".to_string()])
    );
    let c = circle(&edges).expect("a → b → c → a");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
    let (acyclic, _) = graph(&modules[1..]);
    assert_eq!(circle(&acyclic), None);
}
