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

/// Watches every account's mapping file and SIGHUP (`hup`, from [`hangup`]) until `shutdown`;
/// a change to one file reloads that mapping, SIGHUP reloads them all.
pub async fn run(
    mappings: Vec<(SharedMapping, PathBuf)>,
    mut hup: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Which mappings changed since the last reload (by index), set by the watcher.
    let changed = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let wake = Arc::new(Notify::new());
    let mut dirs: Vec<PathBuf> = mappings
        .iter()
        .map(|(_, p)| {
            p.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let names: Vec<Option<std::ffi::OsString>> = mappings
        .iter()
        .map(|(_, p)| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let _watcher = {
        use notify::Watcher as _;
        let (wake, changed) = (wake.clone(), changed.clone());
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let hit: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        ev.paths
                            .iter()
                            .any(|p| p.file_name().map(|f| f.to_os_string()) == **n)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !hit.is_empty() {
                    changed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(hit);
                    wake.notify_one();
                }
            }
        })?;
        let mut watching = true;
        for dir in &dirs {
            if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(error = %e, dir = %dir.display(), "Cannot watch a mapping file's directory; SIGHUP still reloads it.");
                watching = false;
            }
        }
        watching.then_some(w)
    };
    loop {
        let which: Vec<usize> = tokio::select! {
            _ = wake.notified() => {
                // Let an editor finish writing (several events arrive per save), then read once.
                tokio::time::sleep(Duration::from_millis(200)).await;
                std::mem::take(&mut *changed.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect()
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP received: reloading the mappings.");
                (0..mappings.len()).collect()
            }
            _ = shutdown.cancelled() => return Ok(()),
        };
        for i in which {
            let (s, p) = mappings[i].clone();
            let _ = tokio::task::spawn_blocking(move || reload(&s, &p)).await;
        }
    }
}
