//! The shape of the code: the top-level modules of a crate import each other without a cycle.
//!
//! [`module_graph`] reads every `.rs` file under a crate's `src`, drops comments, string and
//! character literals and `#[cfg(test)]` items, and records an edge `a -> b` for each reference
//! from top-level module `a` (its file `a.rs` or folder `a/`) to `b` by `crate::b…`, a
//! `crate::{b…, …}` group, `$crate::b…` in a macro, or a `super::` chain that reaches the crate
//! root. A name at the root that is not a module is followed to where it is defined: a
//! `#[macro_export]` macro to its module, a `pub use b::…` in `lib.rs` to `b`, anything else to
//! the root itself (`crate`), whose own edges are the module paths `lib.rs` uses. [`find_cycle`]
//! then names a cycle, with the file and line that makes each of its edges.
//!
//! Each crate's check is a test function of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate root's node.
const ROOT: &str = "crate";

/// Edges between the top-level modules of one crate, each with the first place that makes it.
pub struct Graph {
    pub modules: BTreeSet<String>,
    pub edges: BTreeMap<String, BTreeMap<String, String>>,
}

/// One source file: its path (for messages), its path under `src`, and its text.
pub struct Source {
    pub shown: String,
    pub relative: PathBuf,
    pub text: String,
}

/// The `.rs` files under `src`, sorted by path.
pub fn read_sources(src: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(Source {
                    shown: path.display().to_string(),
                    relative: path.strip_prefix(src).expect("under src").to_path_buf(),
                    text: std::fs::read_to_string(&path).expect("read source"),
                });
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    out
}

/// The graph of a crate whose sources are `sources` (see the module docs).
pub fn module_graph(sources: &[Source]) -> Graph {
    let top = |s: &Source| -> String {
        let first = s
            .relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        match first.as_str() {
            "lib.rs" | "main.rs" => ROOT.to_owned(),
            f => f.trim_end_matches(".rs").to_owned(),
        }
    };
    let modules: BTreeSet<String> = sources.iter().map(top).filter(|m| m != ROOT).collect();
    let code: Vec<String> = sources.iter().map(|s| strip(&s.text)).collect();

    // Where each name at the crate root comes from.
    let mut root_names: BTreeMap<String, String> = BTreeMap::new();
    for (s, text) in sources.iter().zip(&code) {
        let m = top(s);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#[macro_export]") {
            rest = &rest[i + "#[macro_export]".len()..];
            if let Some(name) = rest
                .trim_start()
                .strip_prefix("macro_rules!")
                .map(|r| ident_at(r.trim_start()))
            {
                root_names.insert(name.to_owned(), m.clone());
            }
        }
        if m == ROOT {
            for stmt in text.split(';') {
                let stmt = stmt.trim();
                let Some(path) = stmt
                    .strip_prefix("pub use ")
                    .or_else(|| stmt.strip_prefix("pub(crate) use "))
                else {
                    continue;
                };
                let path = path
                    .trim()
                    .trim_start_matches("crate::")
                    .trim_start_matches("self::");
                let from = ident_at(path).to_owned();
                if !modules.contains(&from) {
                    continue;
                }
                for name in exported_names(path) {
                    root_names.insert(name, from.clone());
                }
            }
        }
    }

    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (s, text) in sources.iter().zip(&code) {
        let from = top(s);
        let depth = s.relative.components().count()
            - usize::from(s.relative.file_name().is_some_and(|f| f == "mod.rs"));
        for (offset, name) in root_references(text, depth, from == ROOT, &modules) {
            let to = if modules.contains(&name) {
                name
            } else {
                root_names
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| ROOT.to_owned())
            };
            if to != from {
                let line = text[..offset].matches('\n').count() + 1;
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("{}:{line}", s.shown));
            }
        }
    }
    Graph { modules, edges }
}

/// A cycle as `a -> b -> … -> a`, each edge followed by the place that makes it; None when the
/// graph has none.
pub fn find_cycle(graph: &Graph) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.edges.get(node).into_iter().flat_map(|e| e.keys()) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let start = path
                        .iter()
                        .position(|p| p == next)
                        .expect("open is on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    let nodes: BTreeSet<&String> = graph.edges.keys().chain(graph.modules.iter()).collect();
    for node in nodes {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
                let steps: Vec<String> = cycle
                    .windows(2)
                    .map(|w| format!("{} -> {} ({})", w[0], w[1], graph.edges[&w[0]][&w[1]]))
                    .collect();
                return Some(format!("{}\n  {}", cycle.join(" -> "), steps.join("\n  ")));
            }
        }
    }
    None
}

/// Fails naming the cycle when the top-level modules of the crate at `crate_dir` (relative to
/// the workspace root) import each other in one.
pub fn assert_no_module_cycle(crate_dir: &str) -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("src");
    let graph = module_graph(&read_sources(&src));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the modules of {crate_dir} import each other in a cycle: {cycle}");
    }
    graph
}

fn has_edge(graph: &Graph, from: &str, to: &str) -> bool {
    graph.edges.get(from).is_some_and(|e| e.contains_key(to))
}

#[test]
fn the_api_modules_import_each_other_without_a_cycle() {
    let graph = assert_no_module_cycle("crates/api");
    // The graph is read, not empty: these imports exist.
    for (from, to) in [
        ("v1", "error"),
        ("v1", "route_table"),
        ("routes", "v1"),
        ("tracking", "schemas"),
    ] {
        assert!(has_edge(&graph, from, to), "no edge {from} -> {to} found");
    }
}

#[test]
fn the_runtime_modules_import_each_other_without_a_cycle() {
    let graph = assert_no_module_cycle("crates/runtime");
    for (from, to) in [
        ("state", "delivery"),
        ("ingest", "delivery"),
        ("delivery", "metrics"),
        (ROOT, "state"),
    ] {
        assert!(has_edge(&graph, from, to), "no edge {from} -> {to} found");
    }
}

/// The check fails on a cycle, whichever way the modules reach each other.
#[test]
fn the_check_names_a_cycle() {
    let source = |path: &str, text: &str| Source {
        shown: path.to_owned(),
        relative: PathBuf::from(path),
        text: text.to_owned(),
    };
    let acyclic = [
        source("lib.rs", "pub mod a;\npub mod b;\npub use b::Thing;\n"),
        source("a.rs", "use crate::b::Thing;\n// crate::c in a comment is no import\n"),
        source("b.rs", "pub struct Thing;\nconst S: &str = \"crate::a\";\nconst C: char = '{';\n#[cfg(test)]\nmod tests { use crate::a; }\n"),
        source("c.rs", "fn f() -> crate::Thing { crate::b::Thing }\n"),
    ];
    let graph = module_graph(&acyclic);
    assert!(find_cycle(&graph).is_none(), "{:?}", graph.edges);
    assert!(has_edge(&graph, "a", "b"));
    // `crate::Thing` is `b`'s, re-exported at the root.
    assert!(has_edge(&graph, "c", "b"));
    assert!(!has_edge(&graph, "c", ROOT));

    let cases: [&[Source]; 4] = [
        // Directly, through a `use` group.
        &[
            source("a.rs", "use crate::{b::X, c};\n"),
            source("b/mod.rs", "pub mod inner;\n"),
            source("b/inner.rs", "fn f() { crate::a::g() }\n"),
        ],
        // Through `super::super` from a nested file.
        &[
            source("a.rs", "use crate::b;\n"),
            source("b/inner.rs", "use super::super::a;\n"),
        ],
        // Through a macro exported at the root.
        &[
            source(
                "a.rs",
                "#[macro_export]\nmacro_rules! table { () => { $crate::b::X }; }\n",
            ),
            source("b.rs", "crate::table!();\n"),
        ],
        // Through an item defined in `lib.rs`, which uses the module.
        &[
            source("lib.rs", "pub mod a;\npub fn all() { a::f() }\n"),
            source("a.rs", "fn f() { crate::all() }\n"),
        ],
    ];
    for (i, sources) in cases.iter().enumerate() {
        let cycle = find_cycle(&module_graph(sources));
        assert!(cycle.is_some(), "case {i}: no cycle found");
        let cycle = cycle.unwrap_or_default();
        assert!(cycle.contains(" -> "), "case {i}: {cycle}");
    }
}

/// The identifier `text` starts with.
fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The names a `use` path makes visible: `m::X`, `m::{X, y::Z as W}`, `m::*` (nothing known).
fn exported_names(path: &str) -> Vec<String> {
    let path = path.trim();
    if let Some(open) = path.find('{') {
        let inner = path[open + 1..].trim_end().trim_end_matches('}');
        return split_top_level(inner)
            .into_iter()
            .flat_map(|item| exported_names(&item))
            .collect();
    }
    let last = path.rsplit("::").next().unwrap_or(path);
    let name = match last.split_once(" as ") {
        Some((_, alias)) => alias.trim(),
        None => last.trim(),
    };
    if name.is_empty() || name == "*" || name == "self" {
        Vec::new()
    } else {
        vec![name.to_owned()]
    }
}

/// The items of a `{…}` group, split at its top-level commas.
fn split_top_level(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut item = String::new();
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    out.push(item);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The first segment after the crate root of every path in `code` that reaches it, with its
/// offset. In `lib.rs` (`is_root`) a path that starts with a module's name reaches it too.
fn root_references(
    code: &str,
    depth: usize,
    is_root: bool,
    modules: &BTreeSet<String>,
) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let boundary =
        |i: usize| i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
    let mut i = 0;
    while i < code.len() {
        if !boundary(i) || !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let after = if let Some(r) = rest.strip_prefix("crate::") {
            Some(r)
        } else if rest.starts_with("super::") {
            let mut r = rest;
            let mut ups = 0;
            while let Some(next) = r.strip_prefix("super::") {
                ups += 1;
                r = next.trim_start();
            }
            (ups >= depth).then_some(r)
        } else if is_root {
            let name = ident_at(rest);
            let follows = &rest[name.len()..];
            let before = code[..i].trim_end();
            // Not `mod a;`, nor a path of another crate (`other::a::…`).
            let own = !before.ends_with("mod") && !before.ends_with("::");
            (modules.contains(name) && follows.starts_with("::") && own).then_some(rest)
        } else {
            None
        };
        if let Some(r) = after {
            let r = r.trim_start();
            if let Some(group) = r.strip_prefix('{') {
                let end = matching_brace(group).unwrap_or(group.len());
                for item in split_top_level(&group[..end]) {
                    out.push((i, ident_at(&item).to_owned()));
                }
            } else {
                let name = ident_at(r);
                if !name.is_empty() {
                    out.push((i, name.to_owned()));
                }
            }
            i += 1;
            continue;
        }
        i += 1;
    }
    out
}

/// The offset of the `}` that closes a group whose `{` came just before `text`.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `code` without comments, string and character literals (each replaced by a space, newlines
/// kept so line numbers hold) and without `#[cfg(test)]` items.
fn strip(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&ch) => {
                        out.push(blank(ch));
                        j += 1;
                    }
                }
            }
            out.push(' ');
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'); a lifetime ('a) is kept.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push(' ');
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push(' ');
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    drop_test_items(&out)
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` without the items under `#[cfg(test)]` (up to their `;` or their closing brace).
fn drop_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find('{'), item.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                open + 1 + matching_brace(&item[open + 1..]).unwrap_or(item.len() - open - 1) + 1
            }
            (_, Some(semi)) => semi + 1,
            _ => item.len(),
        };
        let end = end.min(item.len());
        out.extend(item[..end].chars().filter(|c| *c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}
