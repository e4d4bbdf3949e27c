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
