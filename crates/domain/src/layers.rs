//! The capability folders' order (see the crate's documentation), checked against the source:
//! a module may use the modules before it in [`ORDER`] and never one after it, so no two
//! folders import each other in a circle.

/// Lowest first.
const ORDER: &[&str] = &[
    "error",
    "ids",
    "states",
    "schema",
    "text",
    "conditions",
    "store",
    "secrets",
    "mail",
    "tenancy",
    "events",
    "tracking",
    "platforms",
    "delivery",
    "ingest",
    "admin",
    "stats",
    "export",
];

/// Every `crate::<module>` a file names outside comments, with its line.
fn uses(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            found.push((n + 1, name));
            rest = after;
        }
    }
    found
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_one_above_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in &all {
        let rel = path.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "layers" {
            continue;
        }
        let Some(rank) = ORDER.iter().position(|m| *m == top) else {
            wrong.push(format!(
                "{}: module {top} is not in layers::ORDER",
                rel.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(path).expect("read");
        for (line, used) in uses(&source) {
            match ORDER.iter().position(|m| *m == used) {
                Some(r) if r > rank => wrong.push(format!(
                    "{}:{line}: {top} uses {used}, which comes after it",
                    rel.display()
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_use_against_the_order() {
    let found = uses("use crate::ingest::store; // crate::admin\nlet x = crate::delivery::body();");
    assert_eq!(
        found,
        vec![(1, "ingest".to_owned()), (2, "delivery".to_owned())]
    );
}
