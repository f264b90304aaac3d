//! # layout — the direction of dependencies, checked
//!
//! The crates form layers, and a change that points a dependency the wrong
//! way (a page crate reaching for DataFusion, a service importing the HTTP
//! framework, two service modules importing each other) compiles fine and
//! is only noticed when the layers have already melted. `tests/rules.rs`
//! states the rules and fails on a breach; this crate reads the manifests
//! and sources to check them, with the standard library only, so the check
//! costs no build time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crates a manifest lists under `[dependencies]` (not dev or build
/// dependencies): the key before `=` or `.` of each entry.
pub fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// Module → the sibling top-level modules it names through `crate::`,
/// for the sources under `src` (a crate's `src` folder). A module is a
/// top-level file or folder of `src`; test code (`tests.rs`, `tests/`
/// folders and what follows `#[cfg(test)]`) is left out, since tests may
/// reach across modules.
pub fn module_graph(src: &Path) -> std::io::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    collect(src, src, &mut files)?;
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, texts) in &files {
        let mut uses = BTreeSet::new();
        for text in texts {
            for used in crate_paths(text) {
                if used != *module && modules.contains(&used) {
                    uses.insert(used);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    Ok(graph)
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<String>>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            if name != "tests" {
                collect(root, &path, files)?;
            }
            continue;
        }
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
        files.entry(top).or_default().push(code);
    }
    Ok(())
}

/// The first segment after each `crate::` in code (comments left out),
/// including each item of `crate::{a, b::c}`.
pub fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let inside_another_path = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        rest = &rest[i + "crate::".len()..];
        if inside_another_path {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The strongly connected components of `graph` with more than one
/// module (the import cycles), largest first.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    // Kosaraju: order by finish time, then collect on the reversed graph.
    fn visit<'a>(
        n: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<&'a str>,
        order: &mut Vec<&'a str>,
    ) {
        if !seen.insert(n) {
            return;
        }
        for m in graph.get(n).into_iter().flatten() {
            visit(m, graph, seen, order);
        }
        order.push(n);
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in graph.keys() {
        visit(n, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (n, uses) in graph {
        reversed.entry(n.clone()).or_default();
        for m in uses {
            reversed.entry(m.clone()).or_default().insert(n.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.into_iter().rev() {
        let mut component = Vec::new();
        visit(n, &reversed, &mut assigned, &mut component);
        if component.len() > 1 {
            out.push(component.into_iter().map(str::to_string).collect::<BTreeSet<_>>());
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dependencies_section_counts() {
        let manifest = r#"
[package]
name = "x"

[dependencies]
model.workspace = true
arrow = { workspace = true }
# datafusion.workspace = true
serde_json = "1"

[dev-dependencies]
tempfile.workspace = true
"#;
        let deps: Vec<String> = dependencies(manifest).into_iter().collect();
        assert_eq!(deps, ["arrow", "model", "serde_json"]);
    }

    #[test]
    fn crate_paths_include_groups_and_skip_comments_and_other_crates() {
        let text = "use crate::keys::Principal;\nuse crate::{audit, settings::load};\n\
                    // crate::commented\nlet x = services::crate::no; f(crate::tenant::parse(s));";
        let paths: Vec<String> = crate_paths(text).into_iter().collect();
        assert_eq!(paths, ["audit", "keys", "settings", "tenant"]);
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let graph = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
                g.entry(b.to_string()).or_default();
            }
            g
        };
        assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
        let found = cycles(&graph(&[
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d"),
        ]));
        let names: Vec<Vec<&str>> = found.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
        assert_eq!(names, vec![vec!["a", "b", "c"], vec!["d", "e"]]);
    }
}
