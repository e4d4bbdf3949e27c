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

/// The crate's top-level modules and what each imports (`crate::name`), from shipped code
/// (comments, strings and `#[cfg(test)]` items left out; files only tests compile skipped).
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let sources = crate_sources();
    let tests = test_only_files(&sources);
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for s in &sources {
        let module = module_of(&s.path);
        let top = module.split("::").next().unwrap_or_default().to_string();
        if top.is_empty() || tests.contains(&s.path) || s.path.ends_with("/tests.rs") {
            continue;
        }
        let code = shipped_only(&code_only(&s.text));
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
fn config_and_mapping_do_not_import_each_other_and_no_worker_imports_the_daemon() {
    let graph = module_graph();
    for (module, never) in [
        ("config", "mapping"),
        ("mapping", "config"),
        ("from_erp", "daemon"),
        ("to_erp", "daemon"),
    ] {
        let deps = graph.get(module).cloned().unwrap_or_default();
        assert!(!deps.contains(never), "{module} imports {never}");
    }
}

#[test]
fn the_delivery_worker_and_the_partner_seam_name_no_distributor() {
    // The delivery worker reaches a distributor only through `partner::Partner`; the seam
    // itself names none (Ingram implements it in `ingram::partner`).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in ["src/from_erp/deliver.rs", "src/partner.rs"] {
        let code = shipped_only(&code_only(
            &std::fs::read_to_string(root.join(rel)).unwrap(),
        ));
        let lines = lines_naming(&code, "ingram");
        assert!(
            lines.is_empty(),
            "{rel} names ingram at lines {lines:?}: go through partner::Partner"
        );
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

// ---------------------------------------------------------------------------------------------
// Who may name what. ARCHITECTURE.md states these rules under "Invariants" word for word
// (checked below), and this is the only place they are checked.

/// Each rule: a name (a crate, with its family: `hyper` covers `hyper_util`, `jaq` covers
/// `jaq_core`; or a path such as `SystemTime::now`) and the only modules whose shipped code may
/// name it (a module covers its submodules).
const ONLY_NAMED_IN: &[(&str, &[&str])] = &[
    ("sled", &["store"]),
    ("zstd", &["store::codec"]),
    (
        "axum",
        &["to_erp::webhook", "listener", "console", "admin", "sim"],
    ),
    ("hyper", &["listener"]),
    ("maud", &["console"]),
    ("reqwest", &["ingram::api"]),
    ("lettre", &["alerts"]),
    ("jaq", &["program"]),
    ("SystemTime::now", &["clock"]),
];

/// `text` with comments, string literals and character literals blanked (each character becomes
/// a space, newlines stay, so positions and line numbers still hold): what is left is code.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let blank = |out: &mut String, s: &[char]| {
        for &ch in s {
            out.push(if ch == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < c.len() {
        let rest = &c[i..];
        if rest.starts_with(&['/', '/']) {
            let end = rest.iter().position(|&ch| ch == '\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(&['/', '*']) {
            // Block comments nest.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))))
            && rest[1..]
                .iter()
                .position(|&ch| ch != '#')
                .is_some_and(|p| rest[1 + p] == '"')
        {
            // A raw string: r"…", r#"…"#, br"…".
            let hashes = rest[1..].iter().take_while(|&&ch| ch == '#').count();
            let mut close = vec!['"'];
            close.extend(std::iter::repeat_n('#', hashes));
            let body = 2 + hashes;
            let end = (body..rest.len())
                .find(|&j| rest[j..].starts_with(&close))
                .map_or(rest.len(), |j| j + close.len());
            out.push('r');
            blank(&mut out, &rest[1..end]);
            i += end;
        } else if c[i] == '"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if c[i] == '\'' && (rest.get(1) == Some(&'\\') || rest.get(2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
            let mut j = 1;
            while j < rest.len() && rest[j] != '\'' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// `code` (from [`code_only`]) with every `#[cfg(test)]` item blanked: the attribute and the
/// item after it, up to its first `;` or through its `{ … }` block.
fn shipped_only(code: &str) -> String {
    let mut out = code.to_string();
    let attr = "#[cfg(test)]";
    let mut from = 0;
    while let Some(at) = out[from..].find(attr).map(|p| p + from) {
        let bytes = out.as_bytes();
        let mut j = at + attr.len();
        while j < bytes.len() && bytes[j] != b';' && bytes[j] != b'{' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            let mut depth = 0usize;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        let end = (j + 1).min(bytes.len());
        let blanked: String = out[at..end]
            .chars()
            .map(|ch| if ch == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = end;
    }
    out
}

/// A source file: its path from the crate root (`src/store/codec.rs`) and its text.
struct Source {
    path: String,
    text: String,
}

/// Every `.rs` file under `src/`.
fn crate_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .iter()
        .map(|f| Source {
            path: f.strip_prefix(root).unwrap().display().to_string(),
            text: std::fs::read_to_string(f).unwrap(),
        })
        .collect()
}

/// The module path of a file under `src/` (`src/store/mod.rs` → `store`, `src/store/codec.rs`
/// → `store::codec`, `src/lib.rs` → ``).
fn module_of(path: &str) -> String {
    let rel = path
        .strip_prefix("src/")
        .unwrap_or(path)
        .trim_end_matches(".rs");
    let rel = rel.trim_end_matches("/mod");
    if matches!(rel, "lib" | "main") {
        return String::new();
    }
    rel.replace('/', "::")
}

/// The files compiled only for tests: those declared `#[cfg(test)] mod name;`.
fn test_only_files(sources: &[Source]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for s in sources {
        let code = code_only(&s.text);
        let dir = match s.path.rsplit_once('/') {
            Some((dir, file)) if file == "mod.rs" || file == "lib.rs" || file == "main.rs" => {
                dir.to_string()
            }
            _ => s.path.trim_end_matches(".rs").to_string(),
        };
        for (at, _) in code.match_indices("#[cfg(test)]") {
            let item: Vec<&str> = code[at + "#[cfg(test)]".len()..]
                .split(|ch: char| ch.is_whitespace() || ch == ';')
                .filter(|w| !w.is_empty())
                .take(2)
                .collect();
            if let ["mod", name] = item[..] {
                out.insert(format!("{dir}/{name}.rs"));
                out.insert(format!("{dir}/{name}/mod.rs"));
            }
        }
    }
    out
}

/// Does the identifier `word` name `name`: the same, or one of its family (`name_…`)?
fn names(word: &str, name: &str) -> bool {
    word == name || word.strip_prefix(name).is_some_and(|r| r.starts_with('_'))
}

/// Where `code` names `rule`: 1-based line numbers. A crate counts where it is a path segment
/// (`sled::Db`, `::sled::Db`, `crate::store::sled::Db`) or anywhere in a `use` or
/// `extern crate` item (`use sled;`); a path rule (`SystemTime::now`) where its segments
/// appear in order, joined by `::`.
fn lines_naming(code: &str, rule: &str) -> Vec<usize> {
    // Tokens: identifiers, `::`, and single punctuation characters, each with its line.
    let mut tokens: Vec<(String, usize)> = Vec::new();
    let mut line = 1;
    let c: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            tokens.push((c[start..i].iter().collect(), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            tokens.push(("::".into(), line));
            i += 2;
        } else {
            tokens.push((ch.to_string(), line));
            i += 1;
        }
    }
    let segments: Vec<&str> = rule.split("::").collect();
    let mut found = Vec::new();
    let mut in_use = false;
    for (k, (word, line)) in tokens.iter().enumerate() {
        let next = |n: usize| tokens.get(k + n).map(|t| t.0.as_str());
        if word == "use" || (word == "extern" && next(1) == Some("crate")) {
            in_use = true;
        } else if word == ";" {
            in_use = false;
        }
        let hit = if let [only] = segments[..] {
            names(word, only) && (in_use || next(1) == Some("::"))
        } else {
            word == segments[0]
                && segments[1..]
                    .iter()
                    .enumerate()
                    .all(|(n, s)| next(2 * n + 1) == Some("::") && next(2 * n + 2) == Some(s))
        };
        if hit {
            found.push(*line);
        }
    }
    found
}

/// Every place shipped code names something outside the modules [`ONLY_NAMED_IN`] allows, as
/// `path:line: names NAME (only MODULES may)`.
fn naming_violations(sources: &[Source]) -> Vec<String> {
    let tests = test_only_files(sources);
    let mut out = Vec::new();
    for s in sources {
        let module = module_of(&s.path);
        let test_only = tests.contains(&s.path) || s.path.ends_with("/tests.rs");
        if test_only {
            continue;
        }
        let code = shipped_only(&code_only(&s.text));
        for (rule, allowed) in ONLY_NAMED_IN {
            let inside = allowed
                .iter()
                .any(|m| module == *m || module.starts_with(&format!("{m}::")));
            if inside {
                continue;
            }
            for line in lines_naming(&code, rule) {
                out.push(format!(
                    "{}:{line}: names {rule} (only {} may)",
                    s.path,
                    allowed.join(", ")
                ));
            }
        }
    }
    out
}

/// How ARCHITECTURE.md states a rule of [`ONLY_NAMED_IN`].
fn stated(rule: &str, allowed: &[&str]) -> String {
    let modules: Vec<String> = allowed.iter().map(|m| format!("`{m}`")).collect();
    format!("- `{rule}`: only {}", modules.join(", "))
}

#[test]
fn only_the_allowed_modules_name_each_dependency() {
    let sources = crate_sources();
    assert!(sources.len() > 30);
    let found = naming_violations(&sources);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // Each rule is in use where it is allowed (a rule about nothing would be a stale rule).
    for (rule, allowed) in ONLY_NAMED_IN {
        let used = sources.iter().any(|s| {
            let m = module_of(&s.path);
            allowed
                .iter()
                .any(|a| m == *a || m.starts_with(&format!("{a}::")))
                && !lines_naming(&shipped_only(&code_only(&s.text)), rule).is_empty()
        });
        assert!(used, "nothing names {rule}: drop the rule");
    }
}

#[test]
fn architecture_md_states_exactly_these_naming_rules() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let want: Vec<String> = ONLY_NAMED_IN.iter().map(|(r, a)| stated(r, a)).collect();
    let have: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("- `") && l.contains("`: only `"))
        .collect();
    assert_eq!(
        have, want,
        "ARCHITECTURE.md's naming rules and tests/tidy.rs disagree"
    );
}

#[test]
fn a_planted_name_outside_its_modules_is_reported() {
    let file = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    // Every rule fails when broken: its name planted in a module it does not allow.
    for (rule, allowed) in ONLY_NAMED_IN {
        let planted = format!("fn f() {{\n    let _ = {rule}::Planted::new();\n}}\n");
        let found = naming_violations(&[file("src/text.rs", &planted)]);
        assert_eq!(
            found,
            [format!(
                "src/text.rs:2: names {rule} (only {} may)",
                allowed.join(", ")
            )],
            "{rule}"
        );
        // The same line inside an allowed module is fine.
        let inside = format!("src/{}.rs", allowed[0].replace("::", "/"));
        assert!(
            naming_violations(&[file(&inside, &planted)]).is_empty(),
            "{rule}"
        );
    }
    // The forms a name takes in code all count.
    for code in [
        "use sled;",
        "use sled::Db;",
        "use {std::fmt, sled as s};",
        "extern crate sled;",
        "use crate::store::sled::Db;",
        "fn f(d: &::sled::Db) {}",
        "fn f() -> crate::store::sled::Db { todo!() }",
        "let t: Vec<sled::IVec> = x;",
        "use hyper_util::rt::TokioIo;",
        "let s = std::time::SystemTime::now();",
    ] {
        let found = naming_violations(&[file("src/config.rs", code)]);
        assert_eq!(found.len(), 1, "{code}: {found:?}");
    }
    // Comments, doc text, strings and test code do not.
    for code in [
        "// sled::Db is the store's",
        "/// [`sled::Db`]\nfn f() {}",
        "//! Only `store` names sled::Db.",
        "/* sled::Db /* nested */ sled::Db */",
        "let s = \"sled::Db\";",
        "let s = r#\"sled::Db \"quoted\"\"#;",
        "let c = '\"'; let s = sled_like;",
        "let sled = 1; sled.to_string();",
        "#[cfg(test)]\nmod tests {\n    use sled::Db;\n}",
        "#[cfg(test)]\nuse sled::Db;",
        "fn f<'a>(x: &'a str) -> &'a str { x }",
    ] {
        let found = naming_violations(&[file("src/config.rs", code)]);
        assert!(found.is_empty(), "{code}: {found:?}");
    }
    // Shipped code after a test item still counts, and a file only tests compile does not.
    let after = "#[cfg(test)]\nmod tests {\n    use sled::Db;\n}\nuse lettre::Message;\n";
    assert_eq!(
        naming_violations(&[file("src/config.rs", after)]),
        ["src/config.rs:5: names lettre (only alerts may)"]
    );
    let tree = [
        file("src/sim/mod.rs", "#[cfg(test)]\nmod tests;\n"),
        file("src/sim/tests.rs", "use reqwest::Client;"),
        file("src/migrate/mod.rs", "#[cfg(test)]\nmod corpus_tests;\n"),
        file("src/migrate/corpus_tests.rs", "use reqwest::Client;"),
    ];
    assert!(naming_violations(&tree).is_empty());
}

#[test]
fn a_planted_name_in_a_copy_of_the_tree_is_reported() {
    // The real tree, with one real file changed the way a hurried edit would.
    let mut sources = crate_sources();
    let config = sources
        .iter_mut()
        .find(|s| s.path == "src/config.rs")
        .unwrap();
    let lines = config.text.lines().count();
    config
        .text
        .push_str("\nfn planted() -> sled::Db {\n    todo!()\n}\n");
    assert_eq!(
        naming_violations(&sources),
        [format!(
            "src/config.rs:{}: names sled (only store may)",
            lines + 2
        )]
    );
}
