//! The operator's web console (`[console] listen`): server-rendered pages over the store and the
//! ERP directories — home counts and recent activity, the PO list and search, each PO's page,
//! dead letters with Retry, error files with Requeue — on a listener of its own, never the
//! webhook port, served by the same hardened accept loop (`outbound::listener`: connection cap,
//! header and idle deadlines) with small bodies only. Access is decided by `auth` (token login,
//! or loopback only), every form carries a CSRF token and a cross-origin POST is refused; pages
//! refresh through server-sent events (`/events`). Everything shown is escaped by the templates
//! (`pages`); what is read or moved goes through `data`.

pub mod auth;
pub mod data;
pub mod pages;

use std::collections::VecDeque;
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
/// Lines of recent activity kept in memory.
const RECENT: usize = 100;
/// An events stream ends after this long (below the listener's idle deadline); the browser
/// reconnects on its own.
const SSE_LIFETIME: Duration = Duration::from_secs(45);
/// How long the home counts are reused: many open pages refreshing at once read the store once.
const COUNTS_TTL: Duration = Duration::from_secs(5);
/// Failed logins allowed per minute, for all clients together.
const LOGIN_FAILURES_PER_MINUTE: u32 = 10;

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    pub store: Store,
    pub dirs: data::Dirs,
    pub auth: Arc<Auth>,
    pub events: tokio::sync::broadcast::Sender<Event>,
    pub recent: Arc<Recent>,
    pub deliver_wake: Arc<tokio::sync::Notify>,
    pub clock: crate::clock::Clock,
    pub missing_997_hours: u64,
    pub page_size: usize,
    pub shutdown: CancellationToken,
    logins: Arc<Mutex<(u64, u32)>>,
    counts: Arc<Mutex<Option<(std::time::Instant, data::Counts)>>>,
}

impl ConsoleState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        dirs: data::Dirs,
        token: Option<&str>,
        events: tokio::sync::broadcast::Sender<Event>,
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
            recent: Arc::default(),
            deliver_wake,
            clock,
            missing_997_hours,
            page_size,
            shutdown,
            logins: Arc::default(),
            counts: Arc::default(),
        }
    }
}

/// The last [`RECENT`] things that happened, for the home page.
#[derive(Default)]
pub struct Recent(Mutex<VecDeque<Activity>>);

impl Recent {
    fn push(&self, a: Activity) {
        let mut q = self.0.lock().expect("recent lock");
        if q.len() == RECENT {
            q.pop_front();
        }
        q.push_back(a);
    }

    fn snapshot(&self) -> Vec<Activity> {
        self.0
            .lock()
            .expect("recent lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Keeps the recent-activity list from the daemon's event stream until shutdown.
pub async fn follow(state: ConsoleState) -> anyhow::Result<()> {
    let mut rx = state.events.subscribe();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => {
                    if let Some(a) = activity(&ev) {
                        state.recent.push(a);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => state.recent.push(Activity {
                    at: crate::clock::now_rfc3339(),
                    level: Level::Warn,
                    text: format!("{n} events not shown (too many at once)"),
                    po: None,
                }),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = state.shutdown.cancelled() => return Ok(()),
        }
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
                format!("{kind:?} accepted by Ingram ({status})"),
                Some(po.clone()),
            ),
            Delivery::Retry { reason, .. } => (
                Level::Warn,
                format!("{kind:?} will be retried: {}", first_line(reason)),
                Some(po.clone()),
            ),
            Delivery::Rejected { reason, .. } | Delivery::ProgramFailed { reason } => (
                Level::Error,
                format!("{kind:?} dead-lettered: {}", first_line(reason)),
                Some(po.clone()),
            ),
        },
    };
    Some(Activity {
        at,
        level,
        text,
        po,
    })
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

fn access(headers: &HeaderMap, state: &ConsoleState) -> Access {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    state
        .auth
        .check(get(header::COOKIE), get(header::HOST), unix_now())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    let counts = match cached {
        Some(c) => Ok(Ok(c)),
        None => blocking(move || data::counts(&store, &dirs, now, hours)).await,
    };
    if let Ok(Ok(c)) = &counts {
        *s.counts.lock().expect("counts lock") = Some((std::time::Instant::now(), c.clone()));
    }
    match counts {
        Ok(Ok(c)) => page(pages::home(
            &session.frame(Nav::Home),
            &c,
            &s.recent.snapshot(),
            s.missing_997_hours,
        )),
        Ok(Err(e)) => failed(&session, Nav::Home, e),
        Err(e) => failed(&session, Nav::Home, e),
    }
}

async fn po_list(
    State(s): State<ConsoleState>,
    session: Session,
    Query(q): Query<data::ListQuery>,
) -> Response {
    let (store, size, q2) = (s.store.clone(), s.page_size, q.clone());
    match blocking(move || data::list(&store, &q2, size)).await {
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

async fn po_page(
    State(s): State<ConsoleState>,
    session: Session,
    Path(po): Path<String>,
) -> Response {
    let (store, dirs, po2) = (s.store.clone(), s.dirs.clone(), po.clone());
    match blocking(move || data::po_page(&store, &dirs, &po2)).await {
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
            tracing::info!(job, "Dead letter put back in the queue from the console.");
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
    let dirs = s.dirs.clone();
    match blocking(move || data::error_files(&dirs)).await {
        Ok(Ok((files, total))) => (
            status,
            page(pages::errors_page(
                &session.frame(Nav::Errors),
                &files,
                total,
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
    headers: HeaderMap,
    Form(f): Form<RequeueForm>,
) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
    let dirs = s.dirs.clone();
    let name = f.file.clone();
    match blocking(move || data::requeue(&dirs, &name)).await {
        Ok(Ok(to)) => {
            tracing::info!(file = %crate::text::Escaped(&f.file), inbox_name = %crate::text::Escaped(&to), "Error file moved back to the inbox from the console.");
            Redirect::to(&format!(
                "/errors?done=requeued&file={}&to={}",
                pages::seg(&f.file),
                pages::seg(&to)
            ))
            .into_response()
        }
        Ok(Err(e @ data::RequeueError::Io(_))) => failed(&session, Nav::Errors, e),
        Ok(Err(e)) => {
            errors_page(
                &s,
                &session,
                None,
                Some(&e.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => failed(&session, Nav::Errors, e),
    }
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

async fn login(State(s): State<ConsoleState>, Form(f): Form<LoginForm>) -> Response {
    if !s.auth.required() {
        return Redirect::to("/").into_response();
    }
    let now = unix_now();
    {
        let mut w = s.logins.lock().expect("login lock");
        if now / 60 != w.0 {
            *w = (now / 60, 0);
        }
        if w.1 >= LOGIN_FAILURES_PER_MINUTE {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                page(pages::login(Some(
                    "Too many failed logins in the last minute; wait a minute and try again.",
                ))),
            )
                .into_response();
        }
    }
    if !s.auth.token_matches(&f.token) {
        s.logins.lock().expect("login lock").1 += 1;
        tracing::warn!("A console login failed: wrong token.");
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
    tracing::info!("Console login.");
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

async fn logout(session: Session, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = check_post(&headers, &session, &f.csrf) {
        return r;
    }
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
