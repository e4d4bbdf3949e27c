//! `edi-bridge check --online` against the project's Ingram emulator on 127.0.0.1:0: every check
//! passes on a good setup (and the token never shows), a wrong client secret fails at the token
//! step and says so, a partner id the API refuses is named with its fix, and a missing ERP
//! directory stops at the configuration.

use crate::support::*;

/// Runs the check (a blocking child process) with the emulator's URLs.
async fn online(ws: &Workspace, sim: &edi_bridge::sim::SimHandle) -> (Option<i32>, String) {
    let config = ws.path("edi-bridge.toml");
    std::fs::write(
        &config,
        ws.config_text_for(&sim.base_url(), &sim.token_url(), ""),
    )
    .unwrap();
    tokio::task::spawn_blocking(move || run_check(&config))
        .await
        .unwrap()
}

fn run_check(config: &std::path::Path) -> (Option<i32>, String) {
    let out = edi_bridge_command()
        .args(["check", "--online", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn make_dirs(ws: &Workspace) {
    for d in ["state", "outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(ws.path(d)).unwrap();
    }
}

#[tokio::test]
async fn every_check_passes_against_the_emulator_and_the_token_never_shows() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "✓ access token",
        "✓ API base",
        "plain HTTP on loopback",
        "✓ partner id",
        "✓ webhook secret",
        "✓ outbox",
        "✓ error directory",
        "✓ descriptor limit",
        "✓ clock",
        "checks passed",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(out.contains("valid for"), "{out}");
    assert!(!out.contains(CLIENT_SECRET), "{out}");
    assert_eq!(sim.token_count(), 1, "one token fetched");
}

#[tokio::test]
async fn a_wrong_client_secret_fails_at_the_token_step_and_a_missing_directory_is_named() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    std::fs::write(ws.path("client.secret"), "not-the-secret").unwrap();
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(1), "{out}");
    let token_line = out.lines().find(|l| l.contains("access token")).unwrap();
    assert!(
        token_line.starts_with("✗") && token_line.contains("client secret"),
        "{out}"
    );
    assert!(!out.contains("not-the-secret"), "{out}");
    assert!(out.contains("checks failed"), "{out}");
    // A missing ERP directory stops at the configuration, before any connection, naming it.
    std::fs::remove_dir(ws.path("error")).unwrap();
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains("paths.error") && out.contains("does not exist: create it"),
        "{out}"
    );
}

#[tokio::test]
async fn a_partner_id_the_api_does_not_accept_fails_with_its_fix() {
    // The emulator knows US123456; the config says US999999.
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    let config = ws.path("edi-bridge.toml");
    std::fs::write(
        &config,
        ws.config_text_for(&sim.base_url(), &sim.token_url(), "")
            .replace("partner_id = \"US123456\"", "partner_id = \"US999999\""),
    )
    .unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || run_check(&config))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{out}");
    let line = out.lines().find(|l| l.contains("partner id")).unwrap();
    assert!(
        line.starts_with("✗") && line.contains("US999999") && line.contains("ingram.partner_id"),
        "{out}"
    );
    assert!(out.contains("✓ access token"), "{out}");
    assert!(out.contains("1 of "), "{out}");
}

#[tokio::test]
async fn an_unwritable_directory_fails_with_its_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    // Root writes anywhere: as root, the check runs as nobody (65534), so the workspace has to
    // be open to it; the archive alone is read-only (0555) to everyone.
    let mode = |p: std::path::PathBuf, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(ws.dir.path().to_path_buf(), 0o755);
    for d in ["outbox", "inbox", "error"] {
        mode(ws.path(d), 0o777);
    }
    // The state directory must be the checking user's and closed to others.
    mode(ws.path("state"), 0o700);
    if edi_bridge::files::my_uid() == 0 {
        std::os::unix::fs::chown(ws.path("state"), Some(65534), Some(65534)).unwrap();
    }
    mode(ws.path("archive"), 0o555);
    let config = ws.path("edi-bridge.toml");
    std::fs::write(
        &config,
        ws.config_text_for(&sim.base_url(), &sim.token_url(), ""),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = edi_bridge_command();
        cmd.args(["check", "--online", "--config"]).arg(&config);
        if edi_bridge::files::my_uid() == 0 {
            cmd.uid(65534).gid(65534);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_string()
    };
    let archive = line("archive");
    assert!(
        archive.starts_with("✗") && archive.contains("write access"),
        "{text}"
    );
    for ok in [
        "outbox ",
        "inbox ",
        "state directory",
        "error directory",
        "access token",
    ] {
        assert!(line(ok).starts_with("✓"), "{ok}: {text}");
    }
    assert!(text.contains("1 of "), "{text}");
}

#[tokio::test]
async fn an_api_base_that_refuses_the_token_fails_with_its_fix() {
    // Tokens that expire as they are issued: the emulator refuses the one the check presents.
    let (sim, _t) = sim(|c| c.token_ttl_secs = 0).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(1), "{out}");
    let line = out.lines().find(|l| l.contains("API base")).unwrap();
    assert!(
        line.starts_with("✗") && line.contains("refused the token (HTTP 401)"),
        "{out}"
    );
}

#[tokio::test]
async fn the_outbox_check_links_a_temp_file_to_a_final_name_and_leaves_nothing() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(0), "{out}");
    let line = out.lines().find(|l| l.contains("outbox temp")).unwrap();
    assert!(line.starts_with("✓") && line.contains("hard link"), "{out}");
    for d in ["state", "outbox", "inbox", "archive", "error"] {
        assert_eq!(
            walk(&ws.path(d), true),
            Vec::<std::path::PathBuf>::new(),
            "{d}"
        );
    }
}

/// The README's first configuration: `samples/emulator.toml` as shipped passes `check` with the
/// walkthrough's secrets in the environment and its directories made where it is run, and
/// passes every step of `check --online` against an emulator that accepts what the sample says
/// (`sim-client`, the walkthrough's client secret); only the emulator's port differs.
#[tokio::test]
async fn the_emulator_sample_config_passes_check_and_the_connection_test() {
    const CLIENT: &str = "emulator-client-secret";
    const WEBHOOK: &str = "emulator-webhook-secret";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("samples/emulator.toml");
    let text = std::fs::read_to_string(&sample).unwrap();
    // The walkthrough in the sample's header sets these very values.
    for export in [
        format!("export EDI_BRIDGE_CLIENT_SECRET={CLIENT}"),
        format!("export EDI_BRIDGE_WEBHOOK_SECRET={WEBHOOK}"),
    ] {
        assert!(text.contains(&export), "{export}");
    }
    let cwd = tempfile::tempdir().unwrap();
    for d in ["state", "outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(cwd.path().join("emulator").join(d)).unwrap();
    }
    let check = |config: std::path::PathBuf, online: bool| {
        let cwd = cwd.path().to_path_buf();
        move || {
            let mut cmd = edi_bridge_command();
            cmd.current_dir(cwd)
                .env(edi_bridge::config::ENV_CLIENT_SECRET, CLIENT)
                .env(edi_bridge::config::ENV_WEBHOOK_SECRET, WEBHOOK)
                .args(["check", "--config"])
                .arg(config);
            if online {
                cmd.arg("--online");
            }
            let out = cmd.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.code(), text)
        }
    };
    let (code, out) = tokio::task::spawn_blocking(check(sample.clone(), false))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("client secret: set"), "{out}");

    let (sim, _t) = sim(|c| {
        c.client_id = "sim-client".into();
        c.client_secret = CLIENT.into();
        c.partner_id = None;
    })
    .await;
    let online = cwd.path().join("emulator.toml");
    std::fs::write(
        &online,
        text.replace("127.0.0.1:18443", &sim.addr().to_string())
            .replace(
                "\"../mappings/ingram.toml\"",
                &format!("\"{}\"", root.join("mappings/ingram.toml").display()),
            ),
    )
    .unwrap();
    let (code, out) = tokio::task::spawn_blocking(check(online, true))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checks passed") && !out.contains('✗'), "{out}");
    assert!(!out.contains(CLIENT), "{out}");
}

#[tokio::test]
async fn a_state_directory_not_made_yet_passes_when_the_daemon_can_make_it() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    make_dirs(&ws);
    // The daemon makes its state directory at its first start: the test says so, and passes.
    std::fs::remove_dir(ws.path("state")).unwrap();
    let (code, out) = online(&ws, &sim).await;
    assert_eq!(code, Some(0), "{out}");
    let line = out.lines().find(|l| l.contains("state directory")).unwrap();
    assert!(
        line.starts_with("✓") && line.contains("does not exist yet"),
        "{out}"
    );
    assert!(!ws.path("state").exists(), "the check made nothing");
}
