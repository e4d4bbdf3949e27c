//! Tidy checks over the source tree (rust-analyzer's `tidy.rs` habit): every `.rs` file opens
//! with a `//!` paragraph saying what it is responsible for, and the X12 codec imports nothing
//! from the rest of the crate.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | "data" | ".git") {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! paragraph: {missing:?}"
    );
}

#[test]
fn x12_imports_nothing_from_the_crate_and_does_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/x12");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // The golden-file runner (test-only code) reads its cases from disk; the codec does not.
        let golden_runner = f.file_name().is_some_and(|n| n == "tests.rs");
        let banned: &[&str] = if golden_runner {
            &["crate::"]
        } else {
            &["crate::", "std::fs", "std::net", "tokio", "async fn"]
        };
        for banned in banned {
            assert!(!text.contains(banned), "{} mentions {banned}", f.display());
        }
    }
}

/// The crate's top-level modules and what each imports (`crate::name`), from non-test code
/// (a file's text up to its first `#[cfg(test)]`; files named `tests.rs` are test-only).
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" || f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let deps = graph.entry(top.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                deps.insert(name);
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = module_graph();
    assert!(graph.len() > 15, "{graph:?}");
    // Depth-first search; a back edge is a cycle, reported as its path.
    fn visit(
        m: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = Default::default();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_bottom_layers_import_only_what_is_below_them() {
    let graph = module_graph();
    let allowed: &[(&str, &[&str])] = &[
        ("domain", &[]),
        ("text", &[]),
        ("events", &["domain"]),
        ("program", &["text"]),
        ("tomlfile", &[]),
        ("files", &["text"]),
        ("clock", &[]),
        ("store", &["domain", "clock", "files", "text"]),
    ];
    for (module, may) in allowed {
        let deps = graph.get(*module).cloned().unwrap_or_default();
        let extra: Vec<&String> = deps.iter().filter(|d| !may.contains(&d.as_str())).collect();
        assert!(extra.is_empty(), "{module} imports {extra:?}");
    }
}

#[test]
fn only_the_console_templates_write_html_and_nothing_bypasses_their_escaping() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        assert!(
            !text.contains("PreEscaped"),
            "{rel} uses PreEscaped: values must go through maud's escaping"
        );
        if rel != "src/console/pages.rs" && rel != "src/console/mod.rs" {
            assert!(!text.contains("maud"), "{rel} names maud");
        }
        // Test code may hold a server's HTML answer; shipped code outside the console may not.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
        let test_only = f.file_name().is_some_and(|n| n == "tests.rs");
        if !rel.starts_with("src/console/") && !test_only {
            assert!(
                !shipped.contains("<html") && !shipped.contains("<a href"),
                "{rel} writes HTML"
            );
        }
    }
}
