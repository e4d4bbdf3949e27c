//! Set-up mistakes stop at `check` (the unit's `ExecStartPre`), run as the real binary: a
//! missing ERP directory is refused by `check` and by `run`, naming it, and never created; every
//! missing secret is listed in one run; `--config` defaults to `$EDI_BRIDGE_CONFIG`, else
//! `/etc/edi-bridge/edi-bridge.toml`; the unit reloads with SIGHUP (`ExecReload=`), which the
//! daemon really handles.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::*;

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_config(ws: &Workspace, text: &str) -> std::path::PathBuf {
    let path = ws.path("edi-bridge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_and_run_refuse_a_missing_erp_directory_naming_it_and_never_create_it() {
    let ws = Workspace::new();
    let config = write_config(&ws, &ws.config_text(""));
    // A mistyped outbox: the ERP reads `outbox`, the config says `outbx`.
    std::fs::remove_dir(ws.path("outbox")).unwrap();
    let line = ws
        .config_text("")
        .lines()
        .position(|l| l.starts_with("outbox = "))
        .unwrap()
        + 1;
    let named = format!(
        "{}:{line}: paths.outbox: directory {} does not exist",
        config.display(),
        ws.path("outbox").display()
    );
    for cmd in ["check", "run"] {
        let out = edi_bridge_command()
            .arg(cmd)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{cmd}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&named),
            "{cmd}: want {named:?} in\n{stderr}"
        );
        assert!(!ws.path("outbox").exists(), "{cmd} created the outbox");
    }
    // Every missing directory at once.
    std::fs::remove_dir(ws.path("error")).unwrap();
    let out = edi_bridge_command()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("paths.outbox") && stderr.contains("paths.error"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_daemon_refuses_an_erp_directory_that_went_missing_and_creates_only_its_own() {
    let ws = Workspace::new();
    let path = write_config(&ws, &ws.config_text(""));
    let loaded = edi_bridge::config::Config::load(&path).unwrap();
    std::fs::remove_dir(ws.path("inbox")).unwrap();
    let err = match edi_bridge::daemon::start(loaded, Default::default()).await {
        Ok(_) => panic!("started without its inbox"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("paths.inbox") && err.contains(&ws.path("inbox").display().to_string()),
        "{err}"
    );
    assert!(!ws.path("inbox").exists());

    // With every directory there, the daemon adds only its own subdirectories.
    std::fs::create_dir(ws.path("inbox")).unwrap();
    let d = ws.start().await;
    d.stop().await;
    for dir in ERP_DIRS {
        assert!(ws.path(dir).is_dir(), "{dir}");
    }
    assert!(
        ws.path("state").is_dir(),
        "the state directory is the daemon's own"
    );
}

#[test]
fn check_lists_every_problem_in_one_run_secrets_included() {
    let ws = Workspace::new();
    // No webhook secret, no client secret, a console off loopback without a token, a missing
    // directory and a bad value: five problems, one run.
    let text: String = ws
        .config_text("[console]\nlisten = \"0.0.0.0:18081\"\n")
        .lines()
        .filter(|l| !l.contains("secret_file") && !l.contains("secret_previous_file"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("country_code = \"US\"", "country_code = \"USA\"");
    let config = write_config(&ws, &text);
    std::fs::remove_dir(ws.path("archive")).unwrap();
    let out = edi_bridge_command()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .env_remove(edi_bridge::config::ENV_CONSOLE_TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.webhook_secret_file",
        "ingram.client_secret_file",
        "console.token_file",
        "paths.archive",
        "ingram.country_code",
    ] {
        assert!(stderr.contains(key), "{key} missing from\n{stderr}");
    }
    assert!(stderr.contains("has 5 problem(s)"), "{stderr}");
}

#[test]
fn the_config_defaults_to_edi_bridge_config_then_etc() {
    let ws = Workspace::new();
    let config = write_config(&ws, &ws.config_text(""));
    let out = edi_bridge_command()
        .arg("check")
        .env(edi_bridge::config::ENV_CONFIG, &config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&config.display().to_string()),
        "{}",
        describe(&out)
    );
    // An operator command too (on the store, no daemon running).
    let out = edi_bridge_command()
        .arg("status")
        .env(edi_bridge::config::ENV_CONFIG, &config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    if !Path::new(edi_bridge::config::DEFAULT_CONFIG).exists() {
        let out = edi_bridge_command().arg("check").output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("/etc/edi-bridge/edi-bridge.toml"),
            "{}",
            describe(&out)
        );
    }
}

#[test]
fn the_config_path_in_a_hint_is_absolute_and_quoted_for_a_shell() {
    let c = edi_bridge::config::command(Path::new("/etc/edi bridge/it's.toml"), "retry", "17");
    assert_eq!(
        c,
        "edi-bridge retry --config '/etc/edi bridge/it'\\''s.toml' 17"
    );
    let c = edi_bridge::config::command(Path::new("cfg/e.toml"), "show", "PO-1");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        c,
        format!("edi-bridge show --config {}/cfg/e.toml PO-1", cwd.display())
    );
}

#[test]
fn the_unit_reloads_with_sighup_and_its_readme_says_so() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/edi-bridge.service")).unwrap();
    assert!(
        unit.lines()
            .any(|l| l.starts_with("ExecReload=") && l.contains("-HUP $MAINPID")),
        "{unit}"
    );
    let readme = std::fs::read_to_string(root.join("systemd/README.md")).unwrap();
    assert!(readme.contains("systemctl reload edi-bridge"), "{readme}");
    assert!(!readme.contains("no SIGHUP reload"), "{readme}");
}

#[tokio::test]
async fn sighup_makes_the_running_daemon_reload_its_mapping() {
    let ws = Workspace::new();
    let config = write_config(&ws, &ws.config_text(""));
    let mut child = edi_bridge_command()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let started = tee_stderr(&mut child, std::io::sink(), String::new(), move |l| {
        let _ = lines_tx.send(String::from_utf8_lossy(l).into_owned());
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let addr = tokio::time::timeout_at(deadline, started).await;
    assert!(matches!(addr, Ok(Ok(Some(_)))), "the daemon did not start");
    let pid = child.id().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(l)) if l.contains("Mapping reloaded.") => break,
            Ok(Some(_)) => {}
            other => {
                let _ = child.kill();
                panic!("no reload after SIGHUP: {other:?}");
            }
        }
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGHUP must not end the daemon");
}
