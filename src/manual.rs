//! The package's man pages and shell completions, written from the CLI definition in
//! [`crate::cli`] so that they say what `--help` says. The hidden `edi-bridge generate-docs DIR`
//! writes them (`scripts/deb` runs it before `cargo deb`): `DIR/man/edi-bridge.1` with one page
//! per subcommand beside it (`edi-bridge-check.1`, the pages the first one's SUBCOMMANDS refer
//! to; cargo-deb gzips them into `usr/share/man/man1/`), `DIR/completions/edi-bridge` (bash) and
//! `DIR/completions/_edi-bridge` (zsh). The asset list in Cargo.toml names these paths.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};

use crate::cli::Cli;

/// The binary's name: the man page's title and the completions' command.
const BIN: &str = "edi-bridge";

/// The top page's DESCRIPTION (`--help` keeps its one line).
const DESCRIPTION: &str = "edi-bridge sits between Ingram Micro's vendor API and an ERP that \
reads and writes X12 flat files. The daemon (edi-bridge run, started by the edi-bridge systemd \
unit) receives Ingram's signed purchase-order webhooks, stores each order durably and writes it \
as an X12 850 into the ERP's outbox; it turns the ERP's 855 and 856 files into Ingram PO Response \
and PO Status API calls, and answers each file with a 997.

The other subcommands check the configuration (check, check --online), preview a mapping \
(translate, mapping test), look at files (inspect), and let an operator see and act on the \
orders (status, show, retry, replay, close, store backup). Each has its own page, \
edi-bridge-COMMAND(1), and its --help.";

/// One generated file: its name and its bytes.
#[derive(Debug)]
pub struct Page {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The CLI as an admin sees it: without the hidden subcommands (the program worker and this
/// generator), which would otherwise be offered by the completions.
fn visible_cli() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd.long_about(DESCRIPTION).disable_help_subcommand(true)
}

/// The man pages: `edi-bridge.1` first, then one per visible subcommand (nested ones too, as
/// `edi-bridge-store-backup.1`).
pub fn man_pages() -> anyhow::Result<Vec<Page>> {
    let mut cmd = visible_cli();
    cmd.build();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut top)
        .context("cannot render the man page")?;
    footer()
        .to_writer(&mut top)
        .context("cannot render the man page")?;
    let mut pages = vec![Page {
        name: format!("{BIN}.1"),
        bytes: top,
    }];
    subcommand_pages(&cmd, &mut pages)?;
    Ok(pages)
}

/// The pages of `cmd`'s subcommands, depth first.
fn subcommand_pages(cmd: &clap::Command, pages: &mut Vec<Page>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = clap_mangen::Man::new(sub.clone());
        let mut bytes = Vec::new();
        man.render(&mut bytes)
            .with_context(|| format!("cannot render the man page of {}", sub.get_name()))?;
        pages.push(Page {
            name: man.get_filename(),
            bytes,
        });
        subcommand_pages(sub, pages)?;
    }
    Ok(())
}

/// What the top page adds to clap's sections: exit status, environment, files, see also.
fn footer() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success"),
        (
            "64",
            "a configuration or usage error (every problem is listed with its file, line and key)",
        ),
        ("1", "a runtime failure"),
    ] {
        roff.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", [])
        .text([bold(crate::config::ENV_CONFIG)])
        .text([roman("the config file when no --config is given")]);
    roff.control("SH", ["FILES"]);
    roff.control("TP", [])
        .text([italic(crate::config::DEFAULT_CONFIG)])
        .text([roman("the daemon's configuration (TOML)")]);
    roff.control("TP", [])
        .text([italic("/etc/edi-bridge/mappings/ingram.toml")])
        .text([roman(
            "the Ingram mapping: identities, qualifiers, code lists, jq programs",
        )]);
    roff.control("TP", [])
        .text([italic("/var/lib/edi-bridge")])
        .text([roman("the state store and the admin socket")]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "/usr/share/doc/edi-bridge/README.md (install, configuration, runbook), \
         mapping.md (the mapping reference) and systemd.md (the service)",
    )]);
    roff
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = visible_cli();
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut bytes);
    bytes
}

/// Writes the man pages into `dir/man/` and the completions into `dir/completions/`; the paths
/// written.
pub fn generate(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (man, completions) = (dir.join("man"), dir.join("completions"));
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = man_pages()?
        .into_iter()
        .map(|p| (man.join(p.name), p.bytes))
        .collect();
    files.push((completions.join(BIN), completion(Shell::Bash)));
    files.push((completions.join(format!("_{BIN}")), completion(Shell::Zsh)));
    for (path, bytes) in &files {
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn the_man_page_names_every_visible_subcommand_and_no_hidden_one() {
        let pages = man_pages().unwrap();
        assert_eq!(pages[0].name, "edi-bridge.1");
        let raw = text(&pages[0].bytes);
        assert!(
            raw.starts_with(".ie") && raw.contains(".TH edi-bridge 1"),
            "{raw}"
        );
        // The whatis entry `name \- description`, as lintian's bad-whatis-entry wants it.
        assert!(
            raw.contains(".SH NAME\nedi\\-bridge \\- Ingram Micro"),
            "{raw}"
        );
        // roff writes every other hyphen as `\-` too.
        let top = raw.replace("\\-", "-");
        for sub in Cli::command().get_subcommands() {
            let reference = format!("edi-bridge-{}(1)", sub.get_name());
            assert_eq!(
                top.contains(&reference),
                !sub.is_hide_set(),
                "{reference} in the man page"
            );
        }
        for section in [
            "SUBCOMMANDS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "SEE ALSO",
        ] {
            assert!(
                top.contains(&format!(".SH \"{section}\""))
                    || top.contains(&format!(".SH {section}")),
                "{section}"
            );
        }
        // Every page the top one refers to is there, nested subcommands too.
        let names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        for name in [
            "edi-bridge-run.1",
            "edi-bridge-check.1",
            "edi-bridge-store-backup.1",
            "edi-bridge-sim-send-webhook.1",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("program-worker")
                || n.contains("generate-docs")
                || n.contains("help")),
            "{names:?}"
        );
        let check = text(
            &pages
                .iter()
                .find(|p| p.name == "edi-bridge-check.1")
                .unwrap()
                .bytes,
        );
        assert!(
            check.contains("\\-\\-online") && check.contains("\\-\\-config"),
            "{check}"
        );
    }

    #[test]
    fn bash_and_zsh_completions_offer_the_subcommands_and_their_options() {
        let bash = text(&completion(Shell::Bash));
        assert!(bash.contains("complete -F _edi__bridge"), "{bash}");
        assert!(
            !bash.starts_with("#!"),
            "lintian: bash-completion-with-hashbang"
        );
        let zsh = text(&completion(Shell::Zsh));
        assert!(zsh.starts_with("#compdef edi-bridge"), "{zsh}");
        for script in [&bash, &zsh] {
            for word in [
                "check",
                "translate",
                "status",
                "store",
                "backup",
                "--online",
                "--config",
            ] {
                assert!(script.contains(word), "{word}");
            }
            assert!(!script.contains("program-worker") && !script.contains("generate-docs"));
        }
    }

    #[test]
    fn generate_writes_the_files_the_package_ships() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path()).unwrap();
        for rel in [
            "man/edi-bridge.1",
            "man/edi-bridge-check.1",
            "completions/edi-bridge",
            "completions/_edi-bridge",
        ] {
            let path = dir.path().join(rel);
            assert!(written.contains(&path), "{rel}");
            assert!(std::fs::metadata(&path).unwrap().len() > 100, "{rel}");
        }
    }
}
