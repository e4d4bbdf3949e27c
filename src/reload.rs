//! Mapping hot reload: an edited mapping file (seen by a `notify` watch on its directory, so
//! editors that replace the file are covered) or a SIGHUP makes the daemon load and validate
//! the file again and swap it in. An invalid edit is logged with file, line and key, and the
//! mapping already in force keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::mapping::{Mapping, SharedMapping};

/// Loads and validates `path`, runs its programs on the samples (in the daemon's workers, under
/// the new mapping's limits); on success swaps it in. Blocks for the sample runs: call it off the
/// async runtime.
pub fn reload(shared: &SharedMapping, path: &Path) -> anyhow::Result<()> {
    let loaded = Mapping::load(path).and_then(|mut m| {
        if let Some(sandbox) = shared.current().programs.runner.sandbox() {
            m.run_in(sandbox.clone());
        }
        let problems = crate::samples::check(&m);
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(crate::tomlfile::ConfigError(problems))
        }
    });
    match loaded {
        Ok(m) => {
            shared.replace(m);
            tracing::info!(mapping = %path.display(), "Mapping reloaded.");
            Ok(())
        }
        Err(e) => {
            for p in &e.0 {
                tracing::error!(problem = %p, "Mapping edit rejected; the previous mapping stays in force.");
            }
            Err(anyhow::anyhow!("{e}"))
        }
    }
}

/// The SIGHUP stream, registered by the caller before the daemon reports READY=1: from then on
/// a SIGHUP (`systemctl reload`) reloads the mapping, never ends the process.
pub fn hangup() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// Watches the mapping file and SIGHUP (`hup`, from [`hangup`]) until `shutdown`.
pub async fn run(
    shared: SharedMapping,
    path: PathBuf,
    mut hup: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let wake = Arc::new(Notify::new());
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let file_name = path.file_name().map(|n| n.to_os_string());
    let _watcher = {
        use notify::Watcher as _;
        let wake = wake.clone();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let ours = ev
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
                let change = !matches!(ev.kind, notify::EventKind::Access(_));
                if ours && change {
                    wake.notify_one();
                }
            }
        })?;
        match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch the mapping file; SIGHUP still reloads it.");
                None
            }
        }
    };
    loop {
        tokio::select! {
            _ = wake.notified() => {
                // Let an editor finish writing (several events arrive per save), then read once.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = hup.recv() => tracing::info!("SIGHUP received: reloading the mapping."),
            _ = shutdown.cancelled() => return Ok(()),
        }
        let (s, p) = (shared.clone(), path.clone());
        let _ = tokio::task::spawn_blocking(move || reload(&s, &p)).await;
    }
}
