//! Operator commands (`status`, `show`, `retry`, `replay`, `close`, `reload`, `store backup`). sled allows one process
//! per database, so while the daemon runs these go through its admin endpoint: HTTP on the unix
//! socket `STATE/admin.sock` (mode 0600, never on the webhook listener). When no daemon answers,
//! the CLI opens the store itself and runs the same [`ops`].

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mapping::SharedMapping;
use crate::store::Store;

/// The socket's file name inside the state directory.
pub const SOCKET: &str = "admin.sock";

/// What the admin endpoint can reach.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    /// The configured accounts' ids (a PO number is looked up in each).
    pub accounts: Vec<String>,
    /// Each account's mapping and its file (`reload` reloads them all).
    pub mappings: Vec<(SharedMapping, PathBuf)>,
    /// The daemon's config file, named in the commands its answers suggest.
    pub config_path: PathBuf,
    pub outbox_wake: std::sync::Arc<tokio::sync::Notify>,
    pub deliver_wake: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusQuery {
    /// Only POs in this lifecycle state (`received`, `850_written`, `855_sent`, `856_sent`,
    /// `997_rejected`, `errors`).
    pub state: Option<String>,
    /// Only POs received at or after this RFC 3339 instant (or date).
    pub since: Option<String>,
    pub po: Option<String>,
    /// Show at most this many POs (the summary line still counts everything queued).
    pub limit: Option<usize>,
    /// Only this account's POs.
    pub account: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RetryQuery {
    pub job: Option<u64>,
    /// With every dead letter: only this account's.
    pub account: Option<String>,
}

/// Which account a PO number is looked up in (needed only when it is in several).
#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    pub account: Option<String>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/show/{po}", get(show))
        .route("/retry", post(retry))
        .route("/replay/{po}", post(replay))
        .route("/close/{po}", post(close))
        .route("/backup", post(backup))
        .route("/reload", post(reload))
        .with_state(state)
}

type TextReply = (StatusCode, String);

fn reply(r: anyhow::Result<String>) -> TextReply {
    match r {
        Ok(s) => (StatusCode::OK, s),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e:#}\n")),
    }
}

async fn status(State(s): State<AdminState>, Query(q): Query<StatusQuery>) -> TextReply {
    reply(blocking(move || ops::status(&s.store, &s.accounts, &q)).await)
}

async fn show(
    State(s): State<AdminState>,
    UrlPath(po): UrlPath<String>,
    Query(q): Query<AccountQuery>,
) -> TextReply {
    reply(
        blocking(move || {
            let key = ops::resolve(&s.store, &s.accounts, &po, q.account.as_deref())?;
            ops::show(&s.store, &key, &s.config_path)
        })
        .await,
    )
}

async fn retry(State(s): State<AdminState>, Query(q): Query<RetryQuery>) -> TextReply {
    let wake = s.deliver_wake.clone();
    let r = blocking(move || ops::retry(&s.store, &s.accounts, q.job, q.account.as_deref())).await;
    wake.notify_one();
    reply(r)
}

async fn replay(
    State(s): State<AdminState>,
    UrlPath(po): UrlPath<String>,
    Query(q): Query<AccountQuery>,
) -> TextReply {
    let wake = s.outbox_wake.clone();
    let r = blocking(move || {
        let key = ops::resolve(&s.store, &s.accounts, &po, q.account.as_deref())?;
        ops::replay(&s.store, &key)
    })
    .await;
    wake.notify_one();
    reply(r)
}

#[derive(Debug, Default, Deserialize)]
pub struct CloseQuery {
    pub reason: String,
    pub account: Option<String>,
}

async fn close(
    State(s): State<AdminState>,
    UrlPath(po): UrlPath<String>,
    Query(q): Query<CloseQuery>,
) -> TextReply {
    reply(
        blocking(move || {
            let key = ops::resolve(&s.store, &s.accounts, &po, q.account.as_deref())?;
            ops::close(&s.store, &key, &q.reason)
        })
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct BackupQuery {
    pub dir: PathBuf,
}

async fn backup(State(s): State<AdminState>, Query(q): Query<BackupQuery>) -> TextReply {
    reply(blocking(move || ops::backup(&s.store, &q.dir)).await)
}

async fn reload(State(s): State<AdminState>) -> TextReply {
    // The new mapping's programs run on the samples first: off the runtime.
    reply(
        blocking(move || {
            for (mapping, path) in &s.mappings {
                crate::reload::reload(mapping, path)?;
            }
            Ok(match s.mappings.len() {
                1 => "mapping reloaded\n".to_string(),
                n => format!("{n} mappings reloaded\n"),
            })
        })
        .await,
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Binds `STATE/admin.sock` (mode 0600), replacing a stale socket from an earlier run.
pub fn bind(state_dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the admin router on a bound socket until `shutdown`, then removes the socket file.
pub async fn serve(
    listener: tokio::net::UnixListener,
    socket: PathBuf,
    state: AdminState,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Sends one request to a running daemon; `None` when no daemon answers on the socket.
pub async fn request(
    state_dir: &Path,
    method: &str,
    path_and_query: &str,
) -> Option<anyhow::Result<String>> {
    let mut stream = tokio::net::UnixStream::connect(state_dir.join(SOCKET))
        .await
        .ok()?;
    let req = format!("{method} {path_and_query} HTTP/1.1\r\nHost: edi-bridge\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let io = async {
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match io.await {
        Ok(b) => b,
        Err(e) => return Some(Err(e.into())),
    };
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ok = head.starts_with("HTTP/1.1 200");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some(if ok {
        Ok(body)
    } else {
        Err(anyhow::anyhow!("{}", body.trim()))
    })
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// The operations, on a store handle (the daemon's, or one the CLI opened).
pub mod ops {
    use std::fmt::Write as _;

    use anyhow::Context as _;

    use super::StatusQuery;
    use crate::domain::po_key;
    use crate::store::records::{ErpAck, Lifecycle, OrderRecord, Outbound850};
    use crate::store::Store;

    /// The PO's lifecycle as one word.
    pub fn lifecycle(o: &OrderRecord) -> &'static str {
        o.lifecycle().as_str()
    }

    /// The store key of PO number `po`: in `account` when named, else in the one account that
    /// has it (an error when several do).
    pub fn resolve(
        store: &Store,
        accounts: &[String],
        po: &str,
        account: Option<&str>,
    ) -> anyhow::Result<String> {
        if let Some(a) = account {
            if !accounts.iter().any(|x| x == a) {
                anyhow::bail!(
                    "no account '{}' (accounts: {})",
                    crate::text::escape(a),
                    accounts.join(", ")
                );
            }
            return Ok(po_key(a, po));
        }
        let mut found = Vec::new();
        for a in accounts {
            if store.order(&po_key(a, po))?.is_some() {
                found.push(a.as_str());
            }
        }
        match found.as_slice() {
            [one] => Ok(po_key(one, po)),
            [] => Ok(po_key(
                accounts
                    .first()
                    .map_or(crate::domain::DEFAULT_ACCOUNT, |a| a),
                po,
            )),
            several => anyhow::bail!(
                "PO {} is in {} accounts ({}): name one with --account",
                crate::text::escape(po),
                several.len(),
                several.join(", ")
            ),
        }
    }

    pub fn status(store: &Store, accounts: &[String], q: &StatusQuery) -> anyhow::Result<String> {
        let mut out = String::new();
        let po = match &q.po {
            Some(po) => Some(resolve(store, accounts, po, q.account.as_deref())?),
            None => None,
        };
        let dead: Vec<_> = store.dead_letters().collect::<Result<_, _>>()?;
        let jobs: Vec<_> = store.jobs().collect::<Result<_, _>>()?;
        let _ = writeln!(
            out,
            "{:<24} {:<13} {:<20} {:<28} {:>5} {:>5}  850 file",
            "PO", "state", "received", "997 from ERP", "jobs", "dead"
        );
        let mut shown = 0;
        // One PO is a key lookup, not a scan of the history.
        // `--since` reads the received-time index.
        let since_ms = q.since.as_deref().and_then(super::since_ms);
        // `--state` reads the state index (`errors`: the POs with a dead letter, and the two
        // rejected states).
        let in_state = match q.state.as_deref() {
            None | Some("errors") => None,
            Some(word) => Some(
                word.parse::<Lifecycle>()
                    .map_err(|e| anyhow::anyhow!("{e}, or errors"))?,
            ),
        };
        let orders: Box<dyn Iterator<Item = Result<_, crate::store::StoreError>>> =
            match (&po, in_state, q.state.as_deref(), since_ms) {
                (Some(po), _, _, _) => Box::new(store.order(po).transpose().into_iter()),
                (None, Some(state), _, ms) => {
                    Box::new(store.orders_in_state(state, ms.unwrap_or(0)))
                }
                // `errors`, the one word that names no lifecycle.
                (None, None, Some(_), ms) => {
                    Box::new(errors(store, &dead, ms.unwrap_or(0))?.into_iter().map(Ok))
                }
                (None, None, None, Some(ms)) => Box::new(store.orders_since(ms)),
                (None, None, None, None) => Box::new(store.orders()),
            };
        for o in orders {
            let o = o?;
            if q.account.as_deref().is_some_and(|a| a != o.account) {
                continue;
            }
            let key = o.key();
            let errors = dead.iter().filter(|d| d.job.po == key).count();
            let state = lifecycle(&o);
            if let Some(want) = &q.state {
                let hit = if want == "errors" {
                    errors > 0 || state == "997_rejected" || state == "ta1_rejected"
                } else {
                    want == state
                };
                if !hit {
                    continue;
                }
            }
            if q.since
                .as_deref()
                .is_some_and(|since| o.received_at.as_str() < since)
            {
                continue;
            }
            if po.as_deref().is_some_and(|p| p != key) {
                continue;
            }
            let file = match &o.outbound {
                Outbound850::Written { envelope, .. } | Outbound850::Allocated { envelope } => {
                    envelope.file_name.as_str()
                }
                Outbound850::Pending => "-",
            };
            let queued = jobs.iter().filter(|j| j.po == key).count();
            let _ = writeln!(
                out,
                "{:<24} {:<13} {:<20} {:<28} {:>5} {:>5}  {}",
                o.shown(),
                state,
                o.received_at,
                o.inbound.erp_997.map_or("-", ErpAck::as_str),
                queued,
                errors,
                file
            );
            shown += 1;
            if q.limit.is_some_and(|l| shown >= l) {
                let _ = writeln!(out, "… (--limit {shown} reached)");
                break;
            }
        }
        let unknown: usize = jobs.iter().filter(|j| j.unknown_po).count();
        let blocked = store.blocked_jobs()?.len();
        let _ = writeln!(
            out,
            "\n{shown} PO(s) shown; queued jobs {} ({} for POs never received, {} blocked behind a dead letter of their PO), dead letters {}, 850s waiting {}, held for review {}, pruned by retention {}",
            jobs.len(),
            unknown,
            blocked,
            dead.len(),
            store.outbox_depth(),
            store.review_count(),
            store.pruned_count()
        );
        Ok(out)
    }

    /// The POs `--state errors` lists: a dead-lettered call, or an 850 the ERP rejected;
    /// received at or after `since_ms`, oldest first.
    pub fn errors(
        store: &Store,
        dead: &[crate::store::records::DeadRecord],
        since_ms: u64,
    ) -> anyhow::Result<Vec<OrderRecord>> {
        let mut out: std::collections::BTreeMap<String, OrderRecord> = Default::default();
        for state in [Lifecycle::Rejected997, Lifecycle::RejectedTa1] {
            for o in store.orders_in_state(state, since_ms) {
                let o = o?;
                out.insert(o.key(), o);
            }
        }
        for d in dead {
            if out.contains_key(&d.job.po) {
                continue;
            }
            if let Some(o) = store.order(&d.job.po)? {
                if crate::store::rfc3339_ms(&o.received_at).unwrap_or(0) >= since_ms {
                    out.insert(o.key(), o);
                }
            }
        }
        let mut v: Vec<OrderRecord> = out.into_values().collect();
        v.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        Ok(v)
    }

    /// The PO's timeline; `config` is named in the commands it suggests (they work when
    /// copied).
    pub fn show(store: &Store, po: &str, config: &std::path::Path) -> anyhow::Result<String> {
        let o = store.order(po)?.with_context(|| {
            let po = crate::text::escape(&crate::domain::account::show_po_key(po));
            format!("no purchase order {po} (finished POs older than [store] retention_days are pruned; their files stay in archive/)")
        })?;
        let mut out = String::new();
        let _ = writeln!(out, "PO {}  ({})", o.shown(), lifecycle(&o));
        match (&o.inbound.closed, o.open(true)) {
            (Some(c), _) => {
                let _ = writeln!(out, "closed by an operator {}: {}", c.at, c.reason);
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "open: {why}");
            }
            (None, None) => {
                let _ = writeln!(out, "finished");
            }
        }
        let _ = writeln!(
            out,
            "webhook event {} received {}",
            o.event_id, o.received_at
        );
        if let Outbound850::Written {
            envelope,
            written_at,
        } = &o.outbound
        {
            let _ = writeln!(
                out,
                "850 {} written {}: ISA13 {:09} GS06 {} ST02 {:04}",
                envelope.file_name, written_at, envelope.isa13, envelope.gs06, envelope.st02
            );
        }
        let _ = writeln!(
            out,
            "997 from ERP: {}",
            o.inbound.erp_997.map_or("none yet", ErpAck::as_str)
        );
        let _ = writeln!(out, "shipped so far: {:?}", o.inbound.shipped);
        let _ = writeln!(out, "\ntimeline:");
        for h in &o.history {
            let _ = writeln!(out, "  {}  {}", h.at, h.what);
        }
        let jobs: Vec<_> = store
            .jobs()
            .filter_map(Result::ok)
            .filter(|j| j.po == po)
            .collect();
        let blocked = store.blocked_jobs()?;
        if !jobs.is_empty() {
            let _ = writeln!(out, "\nqueued API calls:");
            for j in jobs {
                let _ = writeln!(
                    out,
                    "  job {} {} {} attempts {} last error: {}",
                    j.id,
                    j.kind,
                    j.path,
                    j.attempts,
                    j.last_error.as_deref().unwrap_or("-")
                );
                if let Some((_, d)) = blocked.iter().find(|(b, _)| b.id == j.id) {
                    let _ = writeln!(
                        out,
                        "    blocked: waits for the dead-lettered {} (job {}); `{}` sends them in order",
                        d.job.kind,
                        d.job.id,
                        crate::config::command(config, "retry", &d.job.id.to_string())
                    );
                }
            }
        }
        let dead: Vec<_> = store
            .dead_letters()
            .filter_map(Result::ok)
            .filter(|d| d.job.po == po)
            .collect();
        if !dead.is_empty() {
            let _ = writeln!(out, "\ndead letters:");
            for d in dead {
                let _ = writeln!(
                    out,
                    "  job {} {} at {}: {}\n    retry: {}",
                    d.job.id,
                    d.job.kind.describe(),
                    d.at,
                    d.reason,
                    crate::config::command(config, "retry", &d.job.id.to_string())
                );
            }
        }
        Ok(out)
    }

    /// Puts dead letters back in the queue: one job, or every one (of `account` when named).
    pub fn retry(
        store: &Store,
        accounts: &[String],
        job: Option<u64>,
        account: Option<&str>,
    ) -> anyhow::Result<String> {
        let n = match (job, account) {
            (None, Some(a)) => {
                if !accounts.iter().any(|x| x == a) {
                    anyhow::bail!(
                        "no account '{}' (accounts: {})",
                        crate::text::escape(a),
                        accounts.join(", ")
                    );
                }
                let mine: Vec<u64> = store
                    .dead_letters()
                    .filter_map(Result::ok)
                    .filter(|d| crate::domain::split_po_key(&d.job.po).0 == a)
                    .map(|d| d.job.id)
                    .collect();
                let mut n = 0;
                for id in mine {
                    n += store.retry_dead(Some(id))?;
                }
                n
            }
            _ => store.retry_dead(job)?,
        };
        store.flush_blocking()?;
        if job.is_some() && n == 0 {
            anyhow::bail!("no dead-lettered job {}", job.unwrap_or_default());
        }
        Ok(format!("{n} job(s) put back in the queue\n"))
    }

    pub fn close(store: &Store, po: &str, reason: &str) -> anyhow::Result<String> {
        if reason.trim().is_empty() {
            anyhow::bail!("--reason is empty: say why the PO is closed (it goes in its timeline)");
        }
        let rec = store.close(po, reason, &crate::clock::now_rfc3339())?;
        store.flush_blocking()?;
        tracing::warn!(po = %crate::text::Escaped(&rec.shown()), reason = %crate::text::Escaped(reason), "PO closed by an operator.");
        let pending = rec.inbound.calls_pending;
        let po = rec.shown();
        Ok(if pending > 0 {
            format!("PO {po}: closed; {pending} call(s) to Ingram are still queued or dead-lettered and keep it in the store until they are done\n")
        } else {
            format!("PO {po}: closed\n")
        })
    }

    /// A consistent copy of the store in `dir/db` (see `store::backup`).
    pub fn backup(store: &Store, dir: &std::path::Path) -> anyhow::Result<String> {
        if !dir.is_absolute() {
            anyhow::bail!("the backup directory must be an absolute path");
        }
        let copied = store.backup_to(dir)?;
        tracing::info!(dir = %crate::text::Escaped(&dir.to_string_lossy()), entries = copied.entries, "Store backed up.");
        Ok(format!(
            "backed up {} entries in {} trees to {}\n",
            copied.entries,
            copied.trees,
            copied.path.display()
        ))
    }

    pub fn replay(store: &Store, po: &str) -> anyhow::Result<String> {
        store.requeue_850(po, &crate::clock::now_rfc3339())?;
        store.flush_blocking()?;
        let po = crate::domain::account::show_po_key(po);
        tracing::warn!(po = %crate::text::Escaped(&po), "850 replay requested by an operator: a new 850 with new control numbers will be written.");
        Ok(format!(
            "PO {po}: 850 queued again; it gets new control numbers\n"
        ))
    }
}

/// `--since` (an RFC 3339 instant or a date) as Unix ms.
pub(crate) fn since_ms(since: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            time::Date::parse(
                since,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
            .map(|d| d.midnight().assume_utc())
        })?;
    Some((t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use crate::store::{NewEvent, Store};

    fn accounts() -> Vec<String> {
        vec![crate::domain::DEFAULT_ACCOUNT.to_owned()]
    }

    #[test]
    fn status_pages_with_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let orders: Vec<_> = ["A", "B", "C"]
            .iter()
            .map(|n| crate::store::tests::po(n))
            .collect();
        store
            .record_event(&NewEvent {
                account: crate::domain::DEFAULT_ACCOUNT.into(),
                event_id: "E".into(),
                received_at: "2026-11-23T00:00:00Z".into(),
                headers: vec![],
                raw_body: "{}".into(),
                orders,
            })
            .unwrap();
        let q = super::StatusQuery {
            limit: Some(2),
            ..Default::default()
        };
        let out = super::ops::status(&store, &accounts(), &q).unwrap();
        assert!(out.contains("(--limit 2 reached)"), "{out}");
        assert!(out.contains("2 PO(s) shown"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("C ")), "{out}");
        let all = super::ops::status(&store, &accounts(), &super::StatusQuery::default()).unwrap();
        assert!(all.contains("3 PO(s) shown"), "{all}");
        // `--state` takes a lifecycle word or `errors`; another word is refused, naming them.
        let state = |w: &str| super::StatusQuery {
            state: Some(w.into()),
            ..Default::default()
        };
        let received = super::ops::status(&store, &accounts(), &state("received")).unwrap();
        assert!(received.contains("3 PO(s) shown"), "{received}");
        let errors = super::ops::status(&store, &accounts(), &state("errors")).unwrap();
        assert!(errors.contains("0 PO(s) shown"), "{errors}");
        let bad = super::ops::status(&store, &accounts(), &state("recieved")).unwrap_err();
        assert_eq!(
            format!("{bad:#}"),
            "unknown state \"recieved\"; use one of received, 850_written, 997_received, 855_sent, 856_sent, 997_rejected, ta1_rejected, finished, closed, or errors"
        );
    }

    #[test]
    fn status_since_reads_the_received_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (i, day) in ["2026-11-20", "2026-11-21", "2026-11-22"]
            .iter()
            .enumerate()
        {
            store
                .record_event(&NewEvent {
                    account: crate::domain::DEFAULT_ACCOUNT.into(),
                    event_id: format!("E{i}"),
                    received_at: format!("{day}T12:00:00Z"),
                    headers: vec![],
                    raw_body: "{}".into(),
                    orders: vec![crate::store::tests::po(&format!("P{i}"))],
                })
                .unwrap();
        }
        let q = super::StatusQuery {
            since: Some("2026-11-21".into()),
            ..Default::default()
        };
        let out = super::ops::status(&store, &accounts(), &q).unwrap();
        assert!(out.contains("2 PO(s) shown"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("P0 ")), "{out}");
        let via_index: Vec<String> = store
            .orders_since(0)
            .map(|o| o.unwrap().po_number)
            .collect();
        assert_eq!(via_index, ["P0", "P1", "P2"], "oldest first");
    }
}
