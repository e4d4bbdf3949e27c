//! The operator's web console (`[console] listen`): server-rendered pages over the store and the
//! ERP directories — home counts and recent activity, the PO list and search, each PO's page,
//! dead letters with Retry, error files with Requeue — on a listener of its own, never the
//! webhook port, served by the same hardened accept loop (`listener`: connection cap,
//! header and idle deadlines) with small bodies only; at its small cap the connection that has
//! waited longest without a request being handled is closed to let the next one in, so idle or
//! slow clients cannot keep the operator out. Access is decided by `auth` (token login,
//! or loopback only), every form carries a CSRF token and a cross-origin POST is refused; pages
//! refresh through server-sent events (`/events`). Everything shown is escaped by the templates
//! (`pages`); what is read or moved goes through `data`.

pub mod auth;
pub mod data;
pub mod pages;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use self::auth::{Access, Auth};
use self::pages::{Activity, Frame, Level, Nav};
use crate::events::{Delivery, Event, Outcome};
use crate::store::Store;

/// Largest form body accepted (a login or one button).
const MAX_FORM_BYTES: usize = 8 * 1024;
/// Lines of recent activity the home page shows (the store keeps more).
const RECENT: usize = 100;
/// Activity lines written to the store in one go at most.
const ACTIVITY_BATCH: usize = 256;
/// An events stream ends after this long (below the listener's idle deadline); the browser
/// reconnects on its own.
const SSE_LIFETIME: Duration = Duration::from_secs(45);
/// How long the home counts are reused: many open pages refreshing at once read the store once.
const COUNTS_TTL: Duration = Duration::from_secs(5);
/// Wrong tokens answered 401 (and logged) per minute, for all clients together; past it they
/// get 429. The right token is never throttled.
const LOGIN_FAILURES_PER_MINUTE: u32 = 10;

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    pub store: Store,
    pub dirs: data::ConsoleDirs,
    pub auth: Arc<Auth>,
    pub events: tokio::sync::broadcast::Sender<Event>,
    /// The Ingram client, for the health line (when Ingram last answered, the token's state).
    pub api: Option<crate::ingram::api::ApiClient>,
    /// How many batches of activity were written to the store (tests and tools wait on it).
    pub recorded: Arc<tokio::sync::watch::Sender<u64>>,
    pub deliver_wake: Arc<tokio::sync::Notify>,
    pub clock: crate::clock::Clock,
    pub missing_997_hours: u64,
    pub page_size: usize,
    pub shutdown: CancellationToken,
    /// The shadow run's comparisons and recorded calls (the Migration page).
    pub migration: crate::migrate::shadow::ShadowState,
    /// The accounts' ids: a PO number is looked up in each; the PO list filters by them.
    pub accounts: Arc<Vec<String>>,
    logins: Arc<Mutex<(u64, u32)>>,
    counts: Arc<Mutex<Option<(std::time::Instant, data::Counts)>>>,
}

impl ConsoleState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        dirs: data::ConsoleDirs,
        token: Option<&str>,
        events: tokio::sync::broadcast::Sender<Event>,
        api: Option<crate::ingram::api::ApiClient>,
        deliver_wake: Arc<tokio::sync::Notify>,
        clock: crate::clock::Clock,
        missing_997_hours: u64,
        page_size: usize,
        shutdown: CancellationToken,
    ) -> ConsoleState {
        ConsoleState {
            store,
            dirs,
            auth: Arc::new(Auth::new(token)),
            events,
            api,
            recorded: Arc::new(tokio::sync::watch::Sender::new(0)),
            deliver_wake,
            clock,
            missing_997_hours,
            page_size,
            shutdown,
            migration: Default::default(),
            accounts: Arc::new(vec![crate::domain::DEFAULT_ACCOUNT.to_owned()]),
            logins: Arc::default(),
            counts: Arc::default(),
        }
    }
}

impl ConsoleState {
    /// The same console, its Migration page showing `migration`.
    pub fn with_migration(mut self, migration: crate::migrate::shadow::ShadowState) -> Self {
        self.migration = migration;
        self
    }

    /// The same console, for these accounts.
    pub fn with_accounts(mut self, accounts: Vec<String>) -> Self {
        self.accounts = Arc::new(accounts);
        self
    }
}

/// Writes the daemon's events to the store's activity log (and the last inbound file) until
/// shutdown, so the home page's recent activity survives a restart. Events that arrive together
/// are written in one go, off the runtime's threads.
pub async fn follow(state: ConsoleState) -> anyhow::Result<()> {
    let mut rx = state.events.subscribe();
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = state.shutdown.cancelled() => return Ok(()),
        };
        let mut got = vec![first];
        while got.len() < ACTIVITY_BATCH {
            match rx.try_recv() {
                Ok(e) => got.push(Ok(e)),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    got.push(Err(tokio::sync::broadcast::error::RecvError::Lagged(n)))
                }
                Err(_) => break,
            }
        }
        let mut entries = Vec::new();
        let mut last_inbound = None;
        for r in got {
            match r {
                Ok(ev) => {
                    if let Event::InboxFile { file, outcome } = &ev {
                        let outcome = match outcome {
                            Outcome::Archived { .. } => Some("archived"),
                            Outcome::Rejected { .. } => Some("rejected"),
                            Outcome::Duplicate { .. } => Some("duplicate"),
                            Outcome::Changing { .. } => None,
                        };
                        if let Some(outcome) = outcome {
                            last_inbound = Some(crate::store::activity::LastInbound {
                                file: file.clone(),
                                at: crate::clock::now_rfc3339(),
                                outcome: outcome.into(),
                            });
                        }
                    }
                    entries.extend(activity(&ev).map(|a| a.entry()));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => entries.push(
                    Activity {
                        at: crate::clock::now_rfc3339(),
                        level: Level::Warn,
                        text: format!("{n} events not shown (too many at once)"),
                        po: None,
                        client: None,
                    }
                    .entry(),
                ),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
        let store = state.store.clone();
        let written = blocking(move || -> Result<(), crate::store::StoreError> {
            store.log_activity(&entries)?;
            if let Some(l) = &last_inbound {
                store.set_last_inbound(l)?;
            }
            Ok(())
        })
        .await?;
        // A store that cannot write loses these lines only: the pipeline reports its own state.
        if let Err(e) = written {
            tracing::debug!(error = %e, "Console activity not recorded.");
        }
        state.recorded.send_modify(|n| *n += 1);
    }
}

/// An event as a line of activity (`None` for what an operator need not see).
pub fn activity(ev: &Event) -> Option<Activity> {
    let at = crate::clock::now_rfc3339();
    let first_line = |s: &str| {
        s.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (level, text, po) = match ev {
        Event::Written850 { po, file } => (
            Level::Ok,
            format!("850 written as {file}"),
            Some(po.clone()),
        ),
        Event::WrittenFile { file } => (Level::Ok, format!("{file} written to the outbox"), None),
        Event::Shadow850 { po, identical } => match identical {
            true => (
                Level::Ok,
                "shadow 850 identical to the VAN's".into(),
                Some(po.clone()),
            ),
            false => (
                Level::Warn,
                "shadow 850 differs from the VAN's (see Migration)".into(),
                Some(po.clone()),
            ),
        },
        Event::CallRecorded { .. } => return None,
        Event::ArchivePruned {
            days,
            files,
            problems,
            ..
        } => archive_pruned(*days, *files, *problems),
        Event::InboxFile { file, outcome } => match outcome {
            Outcome::Archived { jobs, .. } => (
                Level::Ok,
                format!("{file} processed: {jobs} API call(s) queued"),
                None,
            ),
            Outcome::Rejected { reason, .. } => (
                Level::Error,
                format!("{file} moved to error/: {}", first_line(reason)),
                None,
            ),
            Outcome::Duplicate { .. } => (
                Level::Warn,
                format!("{file} repeats an interchange already processed"),
                None,
            ),
            Outcome::Changing { .. } => return None,
        },
        Event::Delivery {
            po, kind, outcome, ..
        } => match outcome {
            Delivery::Delivered { status } => (
                Level::Ok,
                format!("{} accepted by Ingram ({status})", kind.describe()),
                Some(po.clone()),
            ),
            Delivery::Retry { reason, .. } => (
                Level::Warn,
                format!(
                    "{} will be retried: {}",
                    kind.describe(),
                    first_line(reason)
                ),
                Some(po.clone()),
            ),
            Delivery::Rejected { reason, .. } | Delivery::ProgramFailed { reason } => (
                Level::Error,
                format!(
                    "{} is a dead letter: {}",
                    kind.describe(),
                    first_line(reason)
                ),
                Some(po.clone()),
            ),
        },
    };
    Some(Activity {
        at,
        level,
        text,
        po,
        client: None,
    })
}

/// The activity line of an archive retention round.
fn archive_pruned(days: usize, files: u64, problems: usize) -> (Level, String, Option<String>) {
    let what = format!(
        "archive retention removed {days} day director{} ({files} files)",
        if days == 1 { "y" } else { "ies" }
    );
    match problems {
        0 => (Level::Ok, what, None),
        n => (
            Level::Warn,
            format!("{what}; {n} could not be removed (see the log)"),
            None,
        ),
    }
}

/// The console's routes.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/pos", get(po_list))
        .route("/pos/{po}", get(po_page))
        .route("/dead", get(dead))
        .route("/dead/retry", post(retry))
        .route("/errors", get(errors))
        .route("/errors/requeue", post(requeue))
        .route("/errors/view", get(error_view))
        .route("/errors/dismiss", post(dismiss))
        .route("/migration", get(migration))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/events", get(events))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// A request the console let in.
struct Session {
    csrf: String,
    /// A login is in use (the page shows Log out).
    login: bool,
}

impl Session {
    fn frame(&self, nav: Nav) -> Frame<'_> {
        Frame {
            nav,
            logout_csrf: self.login.then_some(self.csrf.as_str()),
        }
    }
}

impl FromRequestParts<ConsoleState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ConsoleState,
    ) -> Result<Self, Response> {
        match access(&parts.headers, state) {
            Access::Granted { csrf } => Ok(Session {
                csrf,
                login: state.auth.required(),
            }),
            Access::LoginNeeded if parts.method == axum::http::Method::GET => {
                Err(Redirect::to("/login").into_response())
            }
            Access::LoginNeeded => Err((
                StatusCode::UNAUTHORIZED,
                "log in first: the session is missing or has expired\n",
            )
                .into_response()),
            Access::ForeignHost => Err((
                StatusCode::MISDIRECTED_REQUEST,
                "this console without a token answers only to localhost, 127.0.0.1 or [::1]\n",
            )
                .into_response()),
        }
    }
}

/// The client's address, as the listener accepted it (for the log of operator actions).
struct Client(String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Infallible> {
        Ok(Client(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |c| c.0.to_string()),
        ))
    }
}

/// Logs an operator's action with its time and client address: a log line and a line of the
/// store's activity log (flushed, so it is there after a restart).
async fn log_action(
    s: &ConsoleState,
    client: &Client,
    level: Level,
    text: String,
    po: Option<String>,
) {
    tracing::info!(client = %client.0, action = %crate::text::Escaped(&text), "Console action.");
    let entry = Activity {
        at: crate::clock::now_rfc3339(),
        level,
        text,
        po,
        client: Some(client.0.clone()),
    }
    .entry();
    let store = s.store.clone();
    let r = blocking(move || {
        store.log_activity(&[entry])?;
        store.flush_blocking()
    })
    .await;
    if let Ok(Err(e)) = r {
        tracing::warn!(error = %e, "A console action could not be recorded in the activity log.");
    }
}

fn access(headers: &HeaderMap, state: &ConsoleState) -> Access {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    state.auth.check(
        get(header::COOKIE),
        get(header::HOST),
        state.clock.now_ms() / 1000,
    )
}

/// A POST must come from the console's own pages: its `Origin`, when sent, names the `Host`,
/// and its CSRF field matches the session. The refusal, if any.
fn check_post(headers: &HeaderMap, session: &Session, csrf: &str) -> Option<Response> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, rest)| rest))
            .is_some_and(|o| Some(o) == host);
        if !same {
            return Some(forbidden("a form from another site is refused"));
        }
    }
    if !auth::same(csrf, &session.csrf) {
        return Some(forbidden(
            "the form's csrf token is missing or stale: reload the page and try again",
        ));
    }
    None
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
}

fn page(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn failed(session: &Session, nav: Nav, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %crate::text::Escaped(&e.to_string()), "A console page failed.");
    let m = pages::message(
        &session.frame(nav),
        "Something failed",
        &format!("{e}; the daemon's log has the details"),
    );
    (StatusCode::INTERNAL_SERVER_ERROR, page(m)).into_response()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

async fn home(State(s): State<ConsoleState>, session: Session) -> Response {
    let (store, dirs, now, hours) = (
        s.store.clone(),
        s.dirs.clone(),
        s.clock.now_ms(),
        s.missing_997_hours,
    );
    let cached = s
        .counts
        .lock()
        .expect("counts lock")
        .as_ref()
        .filter(|(at, _)| at.elapsed() < COUNTS_TTL)
        .map(|(_, c)| c.clone());
    let read = blocking(move || -> Result<_, crate::store::StoreError> {
        let counts = match cached {
            Some(c) => c,
            None => data::counts(&store, &dirs, now, hours)?,
        };
        let recent: Vec<Activity> = store
            .recent_activity(RECENT)?
            .into_iter()
            .map(Activity::from_entry)
            .collect();
        let last_inbound = store.last_inbound()?;
        Ok((counts, recent, last_inbound))
    })
    .await;
    match read {
        Ok(Ok((c, recent, last_inbound))) => {
            *s.counts.lock().expect("counts lock") = Some((std::time::Instant::now(), c.clone()));
            let health = pages::Health {
                ingram: s.api.as_ref().map(|a| a.health().snapshot()),
                now_ms: s.clock.now_ms(),
                last_inbound,
                version: env!("CARGO_PKG_VERSION"),
            };
            page(pages::home(
                &session.frame(Nav::Home),
                &c,
                &health,
                &recent,
                s.missing_997_hours,
            ))
        }
        Ok(Err(e)) => failed(&session, Nav::Home, e),
        Err(e) => failed(&session, Nav::Home, e),
    }
}

async fn po_list(
    State(s): State<ConsoleState>,
    session: Session,
    Query(q): Query<data::ListQuery>,
) -> Response {
    let (store, size, q2, accounts) = (s.store.clone(), s.page_size, q.clone(), s.accounts.clone());
    match blocking(move || data::list(&store, &accounts, &q2, size)).await {
        Ok(Ok((rows, more))) => page(pages::po_list(
            &session.frame(Nav::Pos),
            &rows,
            &q,
            more,
            None,
        )),
        Ok(Err(data::ListError::Query(problem))) => (
            StatusCode::BAD_REQUEST,
            page(pages::po_list(
                &session.frame(Nav::Pos),
                &[],
                &q,
                false,
                Some(&problem),
            )),
        )
            .into_response(),
        Ok(Err(e)) => failed(&session, Nav::Pos, e),
        Err(e) => failed(&session, Nav::Pos, e),
    }
}

/// Which account's PO a page shows (absent: the account default).
#[derive(Debug, Default, Deserialize)]
struct AccountParam {
    #[serde(default)]
    account: String,
}

async fn po_page(
    State(s): State<ConsoleState>,
    session: Session,
    Path(po): Path<String>,
    Query(a): Query<AccountParam>,
) -> Response {
    let account = match a.account.as_str() {
        "" => crate::domain::DEFAULT_ACCOUNT,
        other => other,
    };
    let key = crate::domain::po_key(account, &po);
    let (store, dirs) = (s.store.clone(), s.dirs.clone());
    match blocking(move || data::po_page(&store, &dirs, &key)).await {
        Ok(Ok(Some(p))) => page(pages::po_page(&session.frame(Nav::Pos), &p, &session.csrf)),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            page(pages::message(
                &session.frame(Nav::Pos),
                "No such PO",
                &format!("No purchase order {po} is stored. POs older than [store] retention_days are pruned; their files stay in archive/."),
            )),
        )
            .into_response(),
        Ok(Err(e)) => failed(&session, Nav::Pos, e),
        Err(e) => failed(&session, Nav::Pos, e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
    #[serde(default)]
    job: Option<u64>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

async fn dead(
    State(s): State<ConsoleState>,
    session: Session,
    Query(done): Query<Done>,
) -> Response {
    let store = s.store.clone();
    match blocking(move || store.dead_letters().collect::<Result<Vec<_>, _>>()).await {
        Ok(Ok(items)) => {
            let flash = (done.done == "retried")
                .then(|| format!("Job {} is back in the queue.", done.job.unwrap_or_default()));
            page(pages::dead_page(
                &session.frame(Nav::Dead),
                &items,
                &session.csrf,
                flash.as_deref(),
            ))
        }
        Ok(Err(e)) => failed(&session, Nav::Dead, e),
        Err(e) => failed(&session, Nav::Dead, e),
    }
}

#[derive(Debug, Deserialize)]
struct RetryForm {
    csrf: String,
    job: u64,
}

async fn retry(
    State(s): State<ConsoleState>,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<RetryForm>,
) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
    let store = s.store.clone();
    let job = f.job;
    let r = blocking(move || -> anyhow::Result<usize> {
        let n = store.retry_dead(Some(job))?;
        store.flush_blocking()?;
        Ok(n)
    })
    .await;
    match r {
        Ok(Ok(0)) => (
            StatusCode::NOT_FOUND,
            page(pages::message(
                &session.frame(Nav::Dead),
                "No such dead letter",
                &format!("Job {job} is not a dead letter (it may have been retried already)."),
            )),
        )
            .into_response(),
        Ok(Ok(_)) => {
            s.deliver_wake.notify_one();
            log_action(
                &s,
                &client,
                Level::Ok,
                format!("Retry: job {job} put back in the queue"),
                None,
            )
            .await;
            Redirect::to(&format!("/dead?done=retried&job={job}")).into_response()
        }
        Ok(Err(e)) => failed(&session, Nav::Dead, format!("{e:#}")),
        Err(e) => failed(&session, Nav::Dead, e),
    }
}

async fn errors(
    State(s): State<ConsoleState>,
    session: Session,
    Query(done): Query<Done>,
) -> Response {
    let flash = match (done.done.as_str(), &done.file, &done.to) {
        ("requeued", Some(f), Some(to)) if f == to => Some(format!("{f} is back in the inbox.")),
        ("requeued", Some(f), Some(to)) => Some(format!(
            "{f} is back in the inbox, as {to} (the name was taken)."
        )),
        ("dismissed", Some(f), Some(to)) => Some(format!(
            "{f} is dismissed: moved to archive/{to}, with your reason in the activity log."
        )),
        _ => None,
    };
    errors_page(&s, &session, flash.as_deref(), None, StatusCode::OK).await
}

async fn errors_page(
    s: &ConsoleState,
    session: &Session,
    flash: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let (dirs, store) = (s.dirs.clone(), s.store.clone());
    match blocking(move || {
        let waiting = store.inbox_waiting().unwrap_or_default();
        data::error_files(&dirs).map(|(files, total)| (files, total, waiting))
    })
    .await
    {
        Ok(Ok((files, total, waiting))) => (
            status,
            page(pages::errors_page(
                &session.frame(Nav::Errors),
                &files,
                total,
                &waiting,
                &session.csrf,
                flash,
                problem,
            )),
        )
            .into_response(),
        Ok(Err(e)) => failed(session, Nav::Errors, e),
        Err(e) => failed(session, Nav::Errors, e),
    }
}

#[derive(Debug, Deserialize)]
struct RequeueForm {
    csrf: String,
    file: String,
}

async fn requeue(
    State(s): State<ConsoleState>,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<RequeueForm>,
) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
    let dirs = s.dirs.clone();
    let name = f.file.clone();
    let moved = blocking(move || data::requeue(&dirs, &name)).await;
    after_move(&s, &session, &client, &f.file, moved, "requeued", |to| {
        (
            Level::Ok,
            format!(
                "Requeue: error/{} moved back to the inbox as {}",
                crate::text::escape(&f.file),
                crate::text::escape(to)
            ),
        )
    })
    .await
}

/// The answer to a move out of `error/` (Requeue, Dismiss): the action logged and a redirect
/// to the error page saying where the file went (`done`), or the page again saying why not.
async fn after_move(
    s: &ConsoleState,
    session: &Session,
    client: &Client,
    file: &str,
    moved: anyhow::Result<Result<String, data::RequeueError>>,
    done: &str,
    logged: impl FnOnce(&str) -> (Level, String),
) -> Response {
    match moved {
        Ok(Ok(to)) => {
            let (level, text) = logged(&to);
            log_action(s, client, level, text, None).await;
            Redirect::to(&format!(
                "/errors?done={done}&file={}&to={}",
                pages::seg(file),
                pages::seg(&to)
            ))
            .into_response()
        }
        Ok(Err(e @ data::RequeueError::Io(_))) => failed(session, Nav::Errors, e),
        Ok(Err(e)) => {
            errors_page(s, session, None, Some(&e.to_string()), StatusCode::CONFLICT).await
        }
        Err(e) => failed(session, Nav::Errors, e),
    }
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    #[serde(default)]
    file: String,
}

/// One file in `error/`: its reason and its first bytes, escaped.
async fn error_view(
    State(s): State<ConsoleState>,
    session: Session,
    Query(q): Query<FileQuery>,
) -> Response {
    let dirs = s.dirs.clone();
    let name = q.file.clone();
    match blocking(move || data::view_error_file(&dirs, &name)).await {
        Ok(Ok(v)) => page(pages::error_file_page(
            &session.frame(Nav::Errors),
            &v,
            &session.csrf,
        )),
        Ok(Err(e @ data::RequeueError::Io(_))) => failed(&session, Nav::Errors, e),
        Ok(Err(e)) => (
            StatusCode::NOT_FOUND,
            page(pages::message(
                &session.frame(Nav::Errors),
                "No such error file",
                &e.to_string(),
            )),
        )
            .into_response(),
        Err(e) => failed(&session, Nav::Errors, e),
    }
}

#[derive(Debug, Deserialize)]
struct DismissForm {
    csrf: String,
    file: String,
    #[serde(default)]
    reason: String,
}

/// Moves a file out of `error/` into `archive/dismissed/DAY/`, with the operator's reason in
/// the log and the activity log.
async fn dismiss(
    State(s): State<ConsoleState>,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<DismissForm>,
) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
    let reason = f.reason.trim().to_string();
    if reason.is_empty() {
        return errors_page(
            &s,
            &session,
            None,
            Some("say why the file is dismissed: the reason is logged"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let reason = crate::text::clip(&reason, data::MAX_DISMISS_REASON);
    let dirs = s.dirs.clone();
    let name = f.file.clone();
    let day = crate::clock::date_path(&crate::clock::now_rfc3339());
    let moved = blocking(move || data::dismiss(&dirs, &name, &day)).await;
    after_move(&s, &session, &client, &f.file, moved, "dismissed", |to| {
        (
            Level::Warn,
            format!(
                "Dismiss: error/{} moved to archive/{}; reason: {}",
                crate::text::escape(&f.file),
                crate::text::escape(to),
                crate::text::escape(&reason)
            ),
        )
    })
    .await
}

async fn migration(State(s): State<ConsoleState>, session: Session) -> Response {
    page(pages::migration_page(
        &session.frame(Nav::Migration),
        &s.migration.snapshot(),
    ))
}

async fn login_form(State(s): State<ConsoleState>) -> Response {
    if !s.auth.required() {
        return Redirect::to("/").into_response();
    }
    page(pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(s): State<ConsoleState>,
    client: Client,
    Form(f): Form<LoginForm>,
) -> Response {
    if !s.auth.required() {
        return Redirect::to("/").into_response();
    }
    let now = s.clock.now_ms() / 1000;
    // The token is checked first (in constant time, over a form of at most MAX_FORM_BYTES): the
    // right token logs in whatever was guessed before, from any address. Only wrong guesses are
    // counted and throttled; a token of 32 random characters cannot be guessed at any rate, so
    // the throttle bounds the noise (log lines, 401 pages), not the operator.
    if !s.auth.token_matches(&f.token) {
        let failures = {
            let mut w = s.logins.lock().expect("login lock");
            if now / 60 != w.0 {
                *w = (now / 60, 0);
            }
            w.1 = w.1.saturating_add(1);
            w.1
        };
        if failures > LOGIN_FAILURES_PER_MINUTE {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                page(pages::login(Some(
                    "Too many failed logins in the last minute; wait a minute and try again.",
                ))),
            )
                .into_response();
        }
        log_action(
            &s,
            &client,
            Level::Warn,
            format!("A console login failed: wrong token (failures past {LOGIN_FAILURES_PER_MINUTE} a minute get 429 and are not logged; this is failure {failures} this minute)"),
            None,
        )
        .await;
        return (
            StatusCode::UNAUTHORIZED,
            page(pages::login(Some("That is not the console token."))),
        )
            .into_response();
    }
    let Some(session) = s.auth.new_session(now) else {
        return Redirect::to("/").into_response();
    };
    let cookie = format!(
        "{}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        auth::COOKIE,
        auth::SESSION_SECS
    );
    log_action(&s, &client, Level::Ok, "Console login".into(), None).await;
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, "/".into())],
    )
        .into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(s): State<ConsoleState>,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
    log_action(&s, &client, Level::Ok, "Console logout".into(), None).await;
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        auth::COOKIE
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/login".into()),
        ],
    )
        .into_response()
}

/// Server-sent events: one `activity` event per thing that happened (its text), so open pages
/// refresh. Ends after [`SSE_LIFETIME`] or at shutdown; the browser reconnects.
async fn events(State(s): State<ConsoleState>, _session: Session) -> impl IntoResponse {
    let rx = s.events.subscribe();
    let deadline = tokio::time::Instant::now() + SSE_LIFETIME;
    let stream =
        futures_util::stream::unfold((rx, s.shutdown.clone()), move |(mut rx, stop)| async move {
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(ev) => {
                            if let Some(a) = activity(&ev) {
                                let e = SseEvent::default().event("activity").data(a.text);
                                return Some((Ok::<_, Infallible>(e), (rx, stop)));
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let e = SseEvent::default().event("activity").data("(several)");
                            return Some((Ok(e), (rx, stop)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep_until(deadline) => return None,
                    _ = stop.cancelled() => return None,
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("console.js"),
    )
        .into_response()
}

async fn not_found(session: Session) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(pages::message(
            &session.frame(Nav::None),
            "Not found",
            "There is no such page.",
        )),
    )
        .into_response()
}
