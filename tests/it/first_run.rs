//! What an admin meets first, run as the real binary: the demo ends with what happened in plain
//! words (never a Rust `Debug` value), and the hidden `generate-docs` writes the man pages and
//! completions the package ships while `--help` does not offer it.

use std::process::Output;

use crate::support::edi_bridge_command;

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_demo_says_what_happened_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = edi_bridge_command()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for words in [
        "IM-PO-1001.855: processed, 1 Ingram call(s) queued; the file is archived as archive/inbound/",
        "==> what happened",
        "Ingram's webhook for PO IM-PO-1001 was accepted, stored, and written to the ERP's outbox as the 850 IM-PO-1001.000000001.850.",
        "The ERP's answers were processed: IM-PO-1001.855 and IM-PO-1001.856.",
        "Ingram accepted the PO Response and the PO Status, and the ERP got 2 acknowledgment(s) (997) back.",
        "Nothing is left waiting: no queued call, no dead letter.",
    ] {
        assert!(stdout.contains(words), "{words:?} in\n{}", describe(&out));
    }
    // No Rust Debug value: no `Name { field: … }` or `Some(…)` anywhere.
    for debug in [
        "Archived {",
        "Rejected {",
        "{ jobs",
        "Some(",
        "archived: \"",
    ] {
        assert!(!stdout.contains(debug), "{debug:?} in\n{stdout}");
    }
}

#[test]
fn generate_docs_writes_the_packaged_man_pages_and_completions_and_stays_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let out = edi_bridge_command()
        .arg("generate-docs")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    // The paths Cargo.toml's [package.metadata.deb] assets name (under target/assets/).
    for rel in [
        "man/edi-bridge.1",
        "man/edi-bridge-run.1",
        "man/edi-bridge-store-restore.1",
        "completions/edi-bridge",
        "completions/_edi-bridge",
    ] {
        assert!(dir.path().join(rel).is_file(), "{rel}");
    }
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    for asset in [
        r#"["target/assets/man/*.1", "usr/share/man/man1/", "644"]"#,
        r#"["target/assets/completions/edi-bridge", "usr/share/bash-completion/completions/edi-bridge", "644"]"#,
        r#"["target/assets/completions/_edi-bridge", "usr/share/zsh/vendor-completions/_edi-bridge", "644"]"#,
    ] {
        assert!(manifest.contains(asset), "{asset}");
    }
    let help = edi_bridge_command().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("check") && !help.contains("generate-docs"),
        "{help}"
    );
}
