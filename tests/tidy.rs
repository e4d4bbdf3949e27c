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

/// The tokens of `code` (from [`code_only`]): identifiers, `::`, and single punctuation
/// characters, each with its 1-based line.
fn tokens(code: &str) -> Vec<(String, usize)> {
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
    tokens
}

/// Where `code` names `rule`: 1-based line numbers. A crate counts where it is a path segment
/// (`sled::Db`, `::sled::Db`, `crate::store::sled::Db`) or anywhere in a `use` or
/// `extern crate` item (`use sled;`); a path rule (`SystemTime::now`) where its segments
/// appear in order, joined by `::`.
fn lines_naming(code: &str, rule: &str) -> Vec<usize> {
    let tokens = tokens(code);
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

// ---------------------------------------------------------------------------------------------
// Shapes a newcomer can follow: one name per type, and no function too long to read.

/// The longest a function in shipped code may be, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 120;

/// Each shipped file (test-only files skipped) as its path, module and code (comments,
/// strings and `#[cfg(test)]` items blanked).
fn shipped_code(sources: &[Source]) -> Vec<(&str, String, String)> {
    let tests = test_only_files(sources);
    sources
        .iter()
        .filter(|s| !tests.contains(&s.path) && !s.path.ends_with("/tests.rs"))
        .map(|s| {
            let code = shipped_only(&code_only(&s.text));
            (s.path.as_str(), module_of(&s.path), code)
        })
        .collect()
}

/// Every type name shipped code defines (`struct`, `enum`, `trait`, `type`; an associated type
/// in an `impl` or `trait` block is not a definition), with where: `src/a.rs:12`.
fn type_definitions(sources: &[Source]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (path, _, code) in shipped_code(sources) {
        let tokens = tokens(&code);
        // Per open `{`: is it an `impl` or `trait` body? And the item keyword that opened the
        // current item, if any (the first of these since the last `;`, `{` or `}`).
        let mut blocks: Vec<bool> = Vec::new();
        let mut item: Option<&str> = None;
        for (k, (word, line)) in tokens.iter().enumerate() {
            match word.as_str() {
                "{" => {
                    blocks.push(matches!(item, Some("impl" | "trait")));
                    item = None;
                }
                "}" => {
                    blocks.pop();
                    item = None;
                }
                ";" => item = None,
                "struct" | "enum" | "trait" | "type" => {
                    let name = tokens.get(k + 1).map(|t| t.0.as_str()).unwrap_or_default();
                    let named = name.starts_with(|c: char| c.is_alphabetic() || c == '_');
                    let raw = k > 0 && tokens[k - 1].0 == "#";
                    let associated = word == "type" && blocks.last() == Some(&true);
                    if named && !raw && !associated {
                        out.entry(name.to_string())
                            .or_default()
                            .push(format!("{path}:{line}"));
                    }
                    item = item.or(Some(word.as_str()));
                }
                "fn" | "impl" | "mod" => item = item.or(Some(word.as_str())),
                _ => {}
            }
        }
    }
    out
}

/// Every type name defined more than once, as `Name: src/a.rs:3, src/b.rs:9`.
fn duplicate_types(sources: &[Source]) -> Vec<String> {
    type_definitions(sources)
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| format!("{name}: {}", at.join(", ")))
        .collect()
}

#[test]
fn no_type_name_is_defined_twice() {
    let sources = crate_sources();
    let found = duplicate_types(&sources);
    assert!(
        found.is_empty(),
        "type names defined twice (rename one so each reads on its own):\n{}",
        found.join("\n")
    );
    let defined = type_definitions(&sources);
    assert!(defined.len() > 100, "found only {} types", defined.len());
}

#[test]
fn a_planted_duplicate_type_name_is_reported() {
    let file = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    // Any two definitions of one name, public or private, of any kind.
    for (a, b) in [
        ("pub struct Planted {\n    x: u8,\n}\n", "struct Planted;"),
        (
            "enum Planted {\n    A,\n}\n",
            "pub(crate) type Planted = u8;",
        ),
        ("pub trait Planted {}", "struct Planted(u8);"),
        (
            "fn f() {\n    struct Planted;\n}\n",
            "impl X {\n    fn g() {}\n}\npub enum Planted {}",
        ),
    ] {
        let found = duplicate_types(&[file("src/a.rs", a), file("src/b/c.rs", b)]);
        assert_eq!(found.len(), 1, "{a} / {b}: {found:?}");
        assert!(found[0].starts_with("Planted: src/a.rs:"), "{found:?}");
        assert!(found[0].contains(", src/b/c.rs:"), "{found:?}");
    }
    let found = duplicate_types(&[
        file("src/a.rs", "\n\nstruct Planted;"),
        file("src/b.rs", "\nstruct Planted;"),
    ]);
    assert_eq!(found, ["Planted: src/a.rs:3, src/b.rs:2"]);
    // Associated types, comments, strings and test code are not definitions.
    for other in [
        "impl Iterator for X {\n    type Item = u8;\n    fn next(&mut self) -> Option<u8> { None }\n}",
        "impl<T: Into<u8>> Service<T> for X where T: Copy {\n    type Planted = u8;\n}",
        "pub trait Other {\n    type Planted;\n}",
        "// struct Planted;",
        "/// struct Planted;\nfn f() {}",
        "let s = \"struct Planted;\";",
        "#[cfg(test)]\nmod tests {\n    struct Planted;\n}",
        "#[cfg(test)]\nstruct Planted;",
    ] {
        let found = duplicate_types(&[file("src/a.rs", "struct Planted;"), file("src/b.rs", other)]);
        assert!(found.is_empty(), "{other}: {found:?}");
    }
    let tree = [
        file("src/a.rs", "struct Planted;"),
        file("src/sim/mod.rs", "#[cfg(test)]\nmod tests;\n"),
        file("src/sim/tests.rs", "struct Planted;"),
    ];
    assert!(duplicate_types(&tree).is_empty());
    // The real tree with one real file given a second `Store`.
    let mut sources = crate_sources();
    let config = sources
        .iter_mut()
        .find(|s| s.path == "src/config.rs")
        .unwrap();
    let lines = config.text.lines().count();
    config.text.push_str("\npub struct Store;\n");
    let found: Vec<String> = duplicate_types(&sources)
        .into_iter()
        .filter(|d| d.starts_with("Store: "))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(&format!("src/config.rs:{}", lines + 2))
            && found[0].contains("src/store/mod.rs:"),
        "{found:?}"
    );
}

/// Every shipped function over `max` lines, as `(name, path:line: name is N lines)`, the name
/// with its module path (`inbound::inbox::process`; `main` in `main.rs`).
fn long_functions(sources: &[Source], max: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, module, code) in shipped_code(sources) {
        let tokens = tokens(&code);
        for (k, (word, line)) in tokens.iter().enumerate() {
            let Some(name) = tokens.get(k + 1).map(|t| t.0.as_str()) else {
                continue;
            };
            if word != "fn" || !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                continue;
            }
            // The body: the first `{` outside parentheses and brackets (`[u8; 4]` has a `;`),
            // unless a `;` ends a declaration first.
            let (mut nest, mut j) = (0i32, k + 2);
            while j < tokens.len() {
                match tokens[j].0.as_str() {
                    "(" | "[" => nest += 1,
                    ")" | "]" => nest -= 1,
                    "{" | ";" if nest == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            if tokens.get(j).is_none_or(|t| t.0 != "{") {
                continue;
            }
            let mut depth = 0usize;
            let mut end = *line;
            for (w, l) in &tokens[j..] {
                match w.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            end = *l;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let lines = end - line + 1;
            if lines > max {
                let full = if module.is_empty() {
                    name.to_string()
                } else {
                    format!("{module}::{name}")
                };
                let said = format!("{path}:{line}: {full} is {lines} lines");
                out.push((full, said));
            }
        }
    }
    out
}

#[test]
fn no_shipped_function_is_over_the_limit() {
    let long = long_functions(&crate_sources(), MAX_FN_LINES);
    let found: Vec<&str> = long.iter().map(|(_, said)| said.as_str()).collect();
    assert!(
        found.is_empty(),
        "functions over {MAX_FN_LINES} lines (split each into named steps):\n{}",
        found.join("\n")
    );
}

#[test]
fn a_planted_long_function_is_reported() {
    let file = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    // `fn` line, `body` lines, closing brace.
    let planted = |head: &str, body: usize| {
        let mut s = format!("{head} {{\n");
        for n in 0..body {
            s.push_str(&format!("    let _x{n} = {{ \"}}\" }}; // }}\n"));
        }
        s.push_str("}\n");
        s
    };
    let long = planted("fn planted(a: [u8; 4]) -> u8", 10);
    assert_eq!(
        long_functions(&[file("src/store/codec.rs", &long)], 11),
        [(
            "store::codec::planted".to_string(),
            "src/store/codec.rs:1: store::codec::planted is 12 lines".to_string()
        )]
    );
    assert!(long_functions(&[file("src/store/codec.rs", &long)], 12).is_empty());
    // A method, after a declaration without a body; in `main.rs`, a bare name.
    let method = format!(
        "trait T {{\n    fn short(&self);\n}}\nimpl X {{\n{}}}\n",
        planted(
            "    pub async fn planted<T: Into<u8>>(&self) -> Result<(), ()> where T: Copy",
            10
        )
    );
    assert_eq!(
        long_functions(&[file("src/main.rs", &method)], 11),
        [(
            "planted".to_string(),
            "src/main.rs:5: planted is 12 lines".to_string()
        )]
    );
    // Test code does not count.
    for test in [
        format!("#[cfg(test)]\nmod tests {{\n{long}}}\n"),
        format!("#[cfg(test)]\n{long}"),
    ] {
        assert!(long_functions(&[file("src/a.rs", &test)], 11).is_empty());
    }
    // The real tree with one real file given a long function.
    let mut sources = crate_sources();
    let config = sources
        .iter_mut()
        .find(|s| s.path == "src/config.rs")
        .unwrap();
    let lines = config.text.lines().count();
    config
        .text
        .push_str(&format!("\n{}", planted("fn planted()", MAX_FN_LINES)));
    let found: Vec<String> = long_functions(&sources, MAX_FN_LINES)
        .into_iter()
        .map(|(_, said)| said)
        .collect();
    assert_eq!(
        found,
        [format!(
            "src/config.rs:{}: config::planted is {} lines",
            lines + 2,
            MAX_FN_LINES + 2
        )]
    );
}
