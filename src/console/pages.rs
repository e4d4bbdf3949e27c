//! The console's HTML, as maud templates: pure functions from what `data` read to markup. maud
//! escapes every interpolated value (PO numbers, file names, Ingram's messages, reason files);
//! nothing here builds HTML from strings or marks a string as already escaped. Links carry values from
//! outside percent-encoded as one path segment.

use maud::{html, Markup, DOCTYPE};

use super::data::{states, Counts, ErrorFile, ErrorFileView, ListQuery, PoPage, PoRow};
use crate::store::records::{DeadRecord, Outbound850};

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Home,
    Pos,
    Dead,
    Errors,
    Migration,
    None,
}

/// What every page's frame needs.
pub struct Frame<'a> {
    pub nav: Nav,
    /// The CSRF token for the logout form; `None` when no login is in use.
    pub logout_csrf: Option<&'a str>,
}

/// One line of recent activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub at: String,
    pub level: Level,
    pub text: String,
    /// The PO it is about, linked.
    pub po: Option<String>,
    /// For an operator's action: the client address it came from.
    pub client: Option<String>,
}

impl Activity {
    /// As the store's activity log keeps it.
    pub fn entry(self) -> crate::store::activity::ActivityEntry {
        crate::store::activity::ActivityEntry {
            at: self.at,
            level: self.level.name().into(),
            text: self.text,
            po: self.po,
            client: self.client,
        }
    }

    pub fn from_entry(e: crate::store::activity::ActivityEntry) -> Activity {
        Activity {
            at: e.at,
            level: match e.level.as_str() {
                "ok" => Level::Ok,
                "warn" => Level::Warn,
                _ => Level::Error,
            },
            text: e.text,
            po: e.po,
            client: e.client,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Error,
}

impl Level {
    fn class(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Error => "bad",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The home page's health line.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// What the API client saw of Ingram (`None` when there is no client).
    pub ingram: Option<crate::ingram::api::health::Reachability>,
    /// Now, by the daemon's clock (the times above are by it too).
    pub now_ms: u64,
    pub last_inbound: Option<crate::store::activity::LastInbound>,
    pub version: &'static str,
}

/// "3 min ago", "2 h 5 min ago".
fn ago(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h {} min ago", s / 3600, (s % 3600) / 60),
    }
}

impl Health {
    /// (Ingram, whether that is bad).
    fn ingram(&self) -> (String, bool) {
        use crate::ingram::api::health::Reachability;
        match &self.ingram {
            None => ("not used".into(), false),
            Some(Reachability {
                unanswered_since_ms: Some(since),
                last_problem,
                ..
            }) => (
                format!(
                    "not answering since {} ({}): {}",
                    crate::clock::rfc3339_ms(*since),
                    ago(self.now_ms, *since),
                    last_problem.as_deref().unwrap_or("no answer")
                ),
                true,
            ),
            Some(Reachability {
                last_answer_ms: Some(at),
                ..
            }) => (
                format!(
                    "last answered {} ({})",
                    crate::clock::rfc3339_ms(*at),
                    ago(self.now_ms, *at)
                ),
                false,
            ),
            Some(_) => ("not called since the daemon started".into(), false),
        }
    }

    /// (the token's state, whether that is bad).
    fn token(&self) -> (String, bool) {
        use crate::ingram::api::health::TokenState;
        match self.ingram.as_ref().map(|r| &r.token) {
            None | Some(TokenState::None) => ("none fetched yet".into(), false),
            Some(TokenState::Valid { renew_by_ms }) => (
                format!("valid, renewed by {}", crate::clock::rfc3339_ms(*renew_by_ms)),
                false,
            ),
            Some(TokenState::Refused {
                at_ms,
                status,
                message,
            }) => (
                format!(
                    "refused by the token endpoint {} (HTTP {status}: {message}): check ingram.client_id and the client secret",
                    ago(self.now_ms, *at_ms)
                ),
                true,
            ),
        }
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of the PO a store key names.
fn key_href(key: &str) -> String {
    let (account, po) = crate::domain::split_po_key(key);
    po_href(po, account)
}

/// A store key for people (`PO`, or `account/PO`).
fn shown(key: &str) -> String {
    crate::domain::account::show_po_key(key)
}

fn po_href(po: &str, account: &str) -> String {
    match account {
        crate::domain::DEFAULT_ACCOUNT => format!("/pos/{}", seg(po)),
        a => format!("/pos/{}?account={}", seg(po), seg(a)),
    }
}

fn layout(title: &str, frame: &Frame<'_>, body: Markup) -> Markup {
    let item = |nav: Nav, href: &str, label: &str| {
        html! { a href=(href) class=[(frame.nav == nav).then_some("active")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · edi-bridge" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                header {
                    strong.brand { "edi-bridge" }
                    nav {
                        (item(Nav::Home, "/", "Home"))
                        (item(Nav::Pos, "/pos", "Purchase orders"))
                        (item(Nav::Dead, "/dead", "Dead letters"))
                        (item(Nav::Errors, "/errors", "Error files"))
                        (item(Nav::Migration, "/migration", "Migration"))
                    }
                    @if let Some(csrf) = frame.logout_csrf {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn home(
    frame: &Frame<'_>,
    c: &Counts,
    health: &Health,
    recent: &[Activity],
    missing_997_hours: u64,
) -> Markup {
    let tile = |label: &str, n: usize, href: &str, alarm: bool| {
        html! {
            a.tile.alarm[alarm && n > 0] href=(href) {
                span.n { (n) }
                span.label { (label) }
            }
        }
    };
    let (ingram, ingram_bad) = health.ingram();
    let (token, token_bad) = health.token();
    layout(
        "Home",
        frame,
        html! {
            h1 { "Today" }
            section.tiles id="counts" {
                (tile("POs received today (UTC)", c.received_today, "/pos", false))
                (tile("850s written for them", c.written_today, "/pos?state=850_written", false))
                (tile("waiting for an 855", c.waiting_855, "/pos?state=850_written", false))
                (tile("waiting for an 856", c.waiting_856, "/pos?state=855_sent", false))
                (tile("API calls queued", c.queued_jobs, "/pos", false))
                (tile("dead letters", c.dead_letters, "/dead", true))
                (tile("calls held behind a dead letter of their PO", c.blocked_calls, "/dead", true))
                (tile("files in error/", c.error_files, "/errors", true))
                (tile("inbox files waiting to be complete", c.inbox_waiting, "/errors", false))
                (tile("850s the ERP rejected (997 or TA1)", c.erp_rejected, "/pos?state=errors", true))
                (tile(&format!("850s without a 997 after {missing_997_hours} h"), c.overdue_997, "/pos?state=850_written", true))
            }
            section.health id="health" {
                h2 { "Health" }
                ul {
                    li class=[ingram_bad.then_some("bad")] { "Ingram: " (ingram) }
                    li class=[token_bad.then_some("bad")] { "Access token: " (token) }
                    li {
                        "Last inbound file: "
                        @match &health.last_inbound {
                            Some(l) => { (l.file) " (" (l.outcome) ") at " time { (l.at) } }
                            None => { "none yet" }
                        }
                    }
                    li { "edi-bridge " (health.version) }
                }
            }
            h2 { "Recent activity" }
            @if recent.is_empty() {
                p.empty { "Nothing yet." }
            } @else {
                ul.activity id="activity" {
                    @for a in recent {
                        li class=(a.level.class()) {
                            time { (a.at) }
                            " "
                            @if let Some(po) = &a.po {
                                a href=(key_href(po)) { "PO " (shown(po)) }
                                ": "
                            }
                            (a.text)
                            @if let Some(c) = &a.client {
                                " (from " (c) ")"
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn po_list(
    frame: &Frame<'_>,
    rows: &[PoRow],
    q: &ListQuery,
    more: bool,
    problem: Option<&str>,
) -> Markup {
    let page_href = |page: usize| {
        format!(
            "/pos?po={}&state={}&since={}&account={}&page={page}",
            seg(&q.po),
            seg(&q.state),
            seg(&q.since),
            seg(&q.account)
        )
    };
    layout(
        "Purchase orders",
        frame,
        html! {
            h1 { "Purchase orders" }
            form.search method="get" action="/pos" {
                label { "PO number " input type="search" name="po" value=(q.po) autocomplete="off"; }
                label { "State "
                    select name="state" {
                        option value="" selected[q.state.is_empty()] { "any" }
                        @for s in states() {
                            option value=(s) selected[q.state == s] { (s) }
                        }
                    }
                }
                label { "Received since " input type="date" name="since" value=(q.since); }
                label { "Account " input type="search" name="account" value=(q.account) autocomplete="off" size="8"; }
                button type="submit" { "Search" }
            }
            @if let Some(p) = problem {
                p.problem role="alert" { (p) }
            }
            @if rows.is_empty() && problem.is_none() {
                p.empty { "No purchase order matches." }
            } @else if !rows.is_empty() {
                table.list id="pos" {
                    thead { tr { th { "PO" } th { "Account" } th { "State" } th { "Received" } th { "850 file" } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { a href=(po_href(&r.po, &r.account)) { (r.po) } }
                                td.account { (r.account) }
                                td { span class={"state s-" (r.state)} { (r.state) } }
                                td { (r.received_at) }
                                td.file { (r.file.as_deref().unwrap_or("-")) }
                            }
                        }
                    }
                }
            }
            nav.pages {
                @if q.page > 0 { a href=(page_href(q.page - 1)) { "← previous page" } }
                @if more { a href=(page_href(q.page + 1)) { "next page →" } }
            }
        },
    )
}

pub fn po_page(frame: &Frame<'_>, p: &PoPage, csrf: &str) -> Markup {
    let o = &p.order;
    layout(
        &format!("PO {}", o.shown()),
        frame,
        html! {
            h1 { "PO " span.po { (o.shown()) } " " span class={"state s-" (p.state)} { (p.state) } }
            (po_facts(p))
            (po_lines(p))
            h2 { "Timeline" }
            ol.timeline id="timeline" {
                @for h in &o.history {
                    li { time { (h.at) } " " (h.what) }
                }
            }
            (po_documents(p))
            @if !p.dead.is_empty() {
                h2 { "Refused by Ingram" }
                @for d in &p.dead {
                    (dead_item(d, csrf))
                }
            }
            (po_jobs(p))
            @if let Some(x) = &p.x850 {
                h2 { "850 as written" }
                @match x {
                    Ok(text) => { pre.x12 id="x850" { (one_segment_per_line(text)) } }
                    Err(e) => { p.problem { (e) } }
                }
            }
        },
    )
}

/// The PO page's facts: received, identifiers, total, the ERP's 997, open or not, the 850.
fn po_facts(p: &PoPage) -> Markup {
    let o = &p.order;
    let order = &o.order;
    html! {
        dl.facts {
            dt { "Received" } dd { (o.received_at) }
            dt { "Webhook event" } dd { (o.event_id) }
            dt { "Reseller order" } dd { (order.reseller_order_number) }
            dt { "Order type" } dd { (order.order_type) }
            @if let Some(d) = &order.po_date { dt { "PO date" } dd { (d) } }
            dt { "Total" } dd { (order.total()) " " (order.currency.as_deref().unwrap_or("")) }
            dt { "997 from the ERP" } dd { (o.inbound.erp_997.map_or("none yet", |a| a.as_str())) }
            dt { "Open" } dd {
                @match (&o.inbound.closed, o.open(true)) {
                    (Some(c), _) => { "closed by an operator " (c.at) ": " (c.reason) }
                    (None, Some(why)) => { "waits: " (why.to_string()) }
                    (None, None) => { "finished" }
                }
            }
            @match &o.outbound {
                Outbound850::Written { envelope, written_at } => {
                    dt { "850" } dd { (envelope.file_name) " written " (written_at) ", ISA13 " (format!("{:09}", envelope.isa13)) ", GS06 " (envelope.gs06) }
                }
                Outbound850::Allocated { envelope } => {
                    dt { "850" } dd { (envelope.file_name) " allocated, not yet written" }
                }
                Outbound850::Pending => { dt { "850" } dd { "waiting for the outbox" } }
            }
        }
    }
}

/// The PO's lines with what was shipped of each.
fn po_lines(p: &PoPage) -> Markup {
    let o = &p.order;
    let order = &o.order;
    html! {
        h2 { "Lines" }
        table.list {
            thead { tr { th { "Line" } th { "Part" } th { "Description" } th { "Qty" } th { "Price" } th { "Shipped" } } }
            tbody {
                @for l in &order.lines {
                    tr {
                        td { (l.ingram_line_number) }
                        td { (l.vendor_part_number.as_deref().or(l.ingram_part_number.as_deref()).unwrap_or("-")) }
                        td { (l.description.as_deref().unwrap_or("")) }
                        td { (l.quantity) " " (l.unit_of_measure) }
                        td { @if let Some(pr) = &l.unit_price { (pr) } }
                        td { (o.inbound.shipped.get(&l.ingram_line_number).copied().unwrap_or(0)) }
                    }
                }
            }
        }
    }
}

/// The 855s and 856s Ingram accepted for the PO, with their segments and bodies.
fn po_documents(p: &PoPage) -> Markup {
    html! {
        @if !p.documents.is_empty() {
            h2 { "855 and 856 from the ERP, accepted by Ingram" }
            @for d in &p.documents {
                section.doc {
                    p {
                        strong { (match d.kind { crate::domain::CallKind::PoResponse => "855", crate::domain::CallKind::PoStatus => "856" }) }
                        " from " (d.source) ", accepted " (d.accepted_at)
                    }
                    p.answer { "Ingram answered: " (d.answer) }
                    details { summary { "segments" } pre.x12 { (segments_text(&d.segments)) } }
                    details { summary { (d.kind.label()) " body sent to " code { (d.path) } } pre { (d.body) } }
                }
            }
        }
    }
}

/// The PO's calls still waiting for Ingram (and the refused one a call waits behind).
fn po_jobs(p: &PoPage) -> Markup {
    html! {
        @if !p.jobs.is_empty() {
            h2 { "Calls waiting for Ingram" }
            @for j in &p.jobs {
                section.job {
                    p { (j.kind.label()) " " code { (j.path) } ", " (j.attempts) " attempt(s)"
                        @if let Some(e) = &j.last_error { ", last error: " (e) } }
                    @if let Some(d) = p.dead.iter().filter(|d| (d.job.kind, d.job.id) < (j.kind, j.id)).min_by_key(|d| (d.job.kind, d.job.id)) {
                        p.problem { "Blocked: waits for the refused " (d.job.kind.label()) " (job " (d.job.id) "). Retry it and both go to Ingram in order." }
                    }
                    p.source { "from " (j.source) }
                    details { summary { "body" } pre { (j.body) } }
                    @if !j.segments.is_empty() {
                        details { summary { "segments it came from" } pre { (segments_text(&j.segments)) } }
                    }
                }
            }
        }
    }
}

fn dead_item(d: &DeadRecord, csrf: &str) -> Markup {
    html! {
        section.dead {
            p {
                strong { (d.job.kind.label()) } " for "
                a href=(key_href(&d.job.po)) { "PO " (shown(&d.job.po)) }
                " (job " (d.job.id) ") at " (d.at)
            }
            p.reason { "Ingram said: " (d.reason) }
            details { summary { "body" } pre { (d.job.body) } }
            @if !d.job.segments.is_empty() {
                details { summary { "segments it came from" } pre { (segments_text(&d.job.segments)) } }
            }
            form method="post" action="/dead/retry" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="job" value=(d.job.id);
                button type="submit" { "Retry" }
            }
        }
    }
}

fn segments_text(segments: &[Vec<String>]) -> String {
    segments
        .iter()
        .map(|s| s.join("*"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An interchange shown with one segment per line (its terminator kept).
fn one_segment_per_line(text: &str) -> String {
    let terminator = text.as_bytes().get(105).copied().map(char::from);
    match terminator {
        Some(t) if text.starts_with("ISA") && !text.contains('\n') => {
            text.replace(t, &format!("{t}\n"))
        }
        _ => text.to_string(),
    }
}

pub fn dead_page(
    frame: &Frame<'_>,
    items: &[DeadRecord],
    csrf: &str,
    flash: Option<&str>,
) -> Markup {
    layout(
        "Dead letters",
        frame,
        html! {
            h1 { "Dead letters" }
            p.note { "Calls Ingram refused for good. Fix the cause (the mapping, or the PO at Ingram), then Retry: the call goes back in the queue and is rendered again with the current mapping." }
            @if let Some(f) = flash { p.flash role="status" { (f) } }
            @if items.is_empty() {
                p.empty { "No dead letters." }
            }
            @for d in items { (dead_item(d, csrf)) }
        },
    )
}

pub fn errors_page(
    frame: &Frame<'_>,
    files: &[ErrorFile],
    total: usize,
    waiting: &[crate::store::inbound::WaitingFile],
    csrf: &str,
    flash: Option<&str>,
    problem: Option<&str>,
) -> Markup {
    layout(
        "Error files",
        frame,
        html! {
            h1 { "Files in error/" }
            p.note { "Inbox files that could not be processed, each with its reason. Fix the file or the mapping, then Requeue: the file moves back to the inbox and is read again." }
            @if let Some(f) = flash { p.flash role="status" { (f) } }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            @if !waiting.is_empty() {
                h2 { "Inbox files waiting to be complete" }
                p.note { "Each could still grow into a whole interchange (an ERP still writing it); it goes to error/ once it has waited its timeout, counted from its last change." }
                @for w in waiting {
                    section.waiting {
                        p { strong.file { (w.name) } " · " (w.size) " bytes · changed " (w.modified_at) " · waited " (w.waited_secs) " s of " (w.timeout_secs) " s" }
                        @if !w.reader.is_empty() { pre.reason { (w.reader) } }
                    }
                }
                h2 { "Files in error/" }
            }
            @if files.is_empty() {
                p.empty { "No files in error/." }
            }
            @if total > files.len() {
                p.note { "The oldest " (files.len()) " of " (total) " files are listed; requeue or remove them to see the rest." }
            }
            @for f in files {
                section.errfile {
                    p { strong.file { (f.name) } " · " (f.size) " bytes · " (f.kind) }
                    pre.reason { (f.reason) }
                    p { a href={"/errors/view?file=" (seg(&f.name))} { "View the file" } }
                    form method="post" action="/errors/requeue" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="file" value=(f.name);
                        button type="submit" { "Requeue" }
                    }
                    (dismiss_form(&f.name, csrf))
                }
            }
        },
    )
}

/// Dismiss: the file goes to the archive, with the reason given logged.
fn dismiss_form(name: &str, csrf: &str) -> Markup {
    html! {
        form.dismiss method="post" action="/errors/dismiss" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="file" value=(name);
            label { "Reason " input type="text" name="reason" required maxlength="500" autocomplete="off"; }
            button type="submit" { "Dismiss into the archive" }
        }
    }
}

/// One file in `error/`: its reason and its first bytes (escaped), with Requeue and Dismiss.
pub fn error_file_page(frame: &Frame<'_>, v: &ErrorFileView, csrf: &str) -> Markup {
    layout(
        &v.name,
        frame,
        html! {
            h1 { "error/" (v.name) }
            p { (v.size) " bytes" @if v.truncated { " · only the first " (super::data::MAX_VIEW_BYTES / 1024) " KiB are shown" } }
            h2 { "Why it is here" }
            pre.reason { (v.reason) }
            h2 { "The file" }
            p.note { "Control characters and bytes that are not UTF-8 are shown escaped (\\xNN)." }
            pre.x12 id="content" { @for l in &v.lines { (l) "\n" } }
            form method="post" action="/errors/requeue" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="file" value=(v.name);
                button type="submit" { "Requeue" }
            }
            (dismiss_form(&v.name, csrf))
            p { a href="/errors" { "All error files" } }
        },
    )
}

pub fn login(problem: Option<&str>) -> Markup {
    layout(
        "Log in",
        &Frame {
            nav: Nav::None,
            logout_csrf: None,
        },
        html! {
            h1 { "Log in" }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            form.login method="post" action="/login" {
                label { "Console token " input type="password" name="token" autocomplete="current-password" autofocus; }
                button type="submit" { "Log in" }
            }
            p.note { "The token is the one in EDI_BRIDGE_CONSOLE_TOKEN, console.token_file or the credential console_token." }
        },
    )
}

pub fn message(frame: &Frame<'_>, title: &str, text: &str) -> Markup {
    layout(
        title,
        frame,
        html! {
            h1 { (title) }
            p { (text) }
        },
    )
}

/// The shadow run beside the VAN: each shadow 850 compared with the VAN's (differences first),
/// and the calls recorded instead of sent.
pub fn migration_page(frame: &Frame<'_>, m: &crate::migrate::shadow::Snapshot) -> Markup {
    let compared = m.identical + m.different;
    layout(
        "Migration",
        frame,
        html! {
            h1 { "Moving from the VAN" }
            @match &m.shadow_dir {
                None => p.note { "Shadow mode is off: 850s go to the ERP's outbox. (It is on while [outbox] shadow_dir is set; see the README's \"Moving from your VAN\".)" },
                Some(dir) => p.note { "Shadow mode: 850s go to " code { (dir) } ", never to the ERP's outbox." },
            }
            @if let Some(van) = &m.van_dir {
                p { "Compared with the VAN's 850s in " code { (van) } ": "
                    strong { (m.identical) " of " (compared) " identical" }
                    @if m.waiting > 0 { " (" (m.waiting) " shadow 850s wait for the VAN's)" } }
            }
            @if !m.send_calls {
                p.note { "[migration] send_calls = false: the calls below were recorded, not sent to Ingram." }
            }
            @if m.comparisons.is_empty() {
                p.empty { "Nothing compared yet." }
            } @else {
                table {
                    thead { tr { th { "PO" } th { "Result" } th { "Segment" } th { "Element" } th { "VAN" } th { "Ours" } th { "Mapping key" } th { "Files" } } }
                    tbody {
                        @for c in &m.comparisons {
                            tr {
                                td { a href=(key_href(&c.po)) { (shown(&c.po)) } }
                                @match &c.difference {
                                    None => { td { "identical" } td {} td {} td {} td {} td {} }
                                    Some(d) => {
                                        td.bad { "different" }
                                        td { (d.position) " " (d.segment) }
                                        td { (d.element) }
                                        td { code { (d.van) } }
                                        td { code { (d.ours) } }
                                        td { code { (d.key) } }
                                    }
                                }
                                td { (c.ours) " / " (c.van) }
                            }
                        }
                    }
                }
            }
            @if !m.calls.is_empty() {
                h2 { "Calls recorded, not sent" }
                table {
                    thead { tr { th { "PO" } th { "Call" } th { "Body" } th { "From" } th { "At" } } }
                    tbody {
                        @for c in &m.calls {
                            tr {
                                td { a href=(key_href(&c.po)) { (shown(&c.po)) } }
                                td { (c.method) " " (c.path) }
                                td { code { (c.body) } }
                                td { (c.source) }
                                td { (c.at) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{Envelope850, OrderRecord, SCHEMA_VERSION};

    const HOSTILE: &str = r#"<script>alert("x")</script>&'"/../%2e"#;

    fn frame() -> Frame<'static> {
        Frame {
            nav: Nav::Pos,
            logout_csrf: Some("tok\"en"),
        }
    }

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>alert"), "raw script tag in {html}");
        assert!(!html.contains("\"x\")</script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert("), "{html}");
    }

    #[test]
    fn hostile_po_numbers_are_escaped_in_text_and_encoded_in_links() {
        let rows = vec![PoRow {
            po: HOSTILE.into(),
            account: "default".into(),
            state: "received",
            received_at: "2026-12-04T00:00:00Z".into(),
            file: Some(format!("{HOSTILE}.850")),
        }];
        let q = ListQuery {
            po: HOSTILE.into(),
            ..Default::default()
        };
        let html = po_list(&frame(), &rows, &q, true, Some(HOSTILE)).into_string();
        assert_escaped(&html);
        // In a link the value is one path segment: no '/', no quote, no '<'.
        assert!(html.contains(
            "href=\"/pos/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%26%27%22%2F..%2F%252e\""
        ));
        // The search box gets the value back, as an attribute.
        assert!(html.contains(
            "value=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'&quot;/../%2e\""
        ));
        assert!(html.contains("name=\"csrf\" value=\"tok&quot;en\""));
    }

    #[test]
    fn hostile_values_on_the_po_page_are_escaped() {
        let mut order = crate::store::tests::po(HOSTILE);
        order.lines[0].description = Some(HOSTILE.into());
        let rec = OrderRecord {
            schema_version: SCHEMA_VERSION,
            account: crate::domain::DEFAULT_ACCOUNT.into(),
            po_number: HOSTILE.into(),
            event_id: HOSTILE.into(),
            received_at: "2026-12-04T00:00:00Z".into(),
            payload_hash: "h".into(),
            order,
            outbound: Outbound850::Written {
                envelope: Envelope850 {
                    isa13: 1,
                    gs06: 1,
                    st02: 1,
                    created_at: "2026-12-04T00:00:00Z".into(),
                    file_name: HOSTILE.into(),
                },
                written_at: "2026-12-04T00:00:01Z".into(),
            },
            history: vec![crate::store::records::HistoryEntry {
                at: "2026-12-04T00:00:00Z".into(),
                what: HOSTILE.into(),
            }],
            inbound: Default::default(),
        };
        let page = PoPage {
            state: "850_written",
            order: rec,
            jobs: vec![],
            dead: vec![],
            documents: vec![crate::store::records::DocumentRecord {
                kind: crate::domain::CallKind::PoResponse,
                source: HOSTILE.into(),
                segments: vec![vec!["BAK".into(), HOSTILE.into()]],
                path: HOSTILE.into(),
                body: HOSTILE.into(),
                correlation_id: "c".into(),
                accepted_at: "t".into(),
                answer: HOSTILE.into(),
            }],
            x850: Some(Ok(format!("ISA*{HOSTILE}~"))),
        };
        let html = po_page(&frame(), &page, "c").into_string();
        assert_escaped(&html);
        assert_eq!(html.matches("&lt;script&gt;").count(), 12, "{html}");
    }

    #[test]
    fn hostile_file_names_and_reasons_are_escaped_on_the_error_page() {
        let files = vec![ErrorFile {
            name: HOSTILE.into(),
            size: 3,
            kind: "a regular file",
            modified_ms: 0,
            reason: format!("reason: {HOSTILE}"),
        }];
        let waiting = vec![crate::store::inbound::WaitingFile {
            name: HOSTILE.into(),
            size: 1,
            modified_at: "t".into(),
            waited_secs: 1,
            timeout_secs: 600,
            reader: HOSTILE.into(),
        }];
        let html = errors_page(
            &frame(),
            &files,
            1,
            &waiting,
            "c",
            Some(HOSTILE),
            Some(HOSTILE),
        )
        .into_string();
        assert_escaped(&html);
        assert!(html.contains("name=\"file\" value=\"&lt;script&gt;"));
        assert!(html.contains("Inbox files waiting to be complete"));
    }

    #[test]
    fn activity_and_home_escape_what_came_from_outside() {
        let recent = vec![Activity {
            at: "t".into(),
            level: Level::Error,
            text: HOSTILE.into(),
            po: Some(HOSTILE.into()),
            client: Some(HOSTILE.into()),
        }];
        let health = Health {
            last_inbound: Some(crate::store::activity::LastInbound {
                file: HOSTILE.into(),
                at: "t".into(),
                outcome: "rejected".into(),
            }),
            ..Health::default()
        };
        let html = home(&frame(), &Counts::default(), &health, &recent, 24).into_string();
        assert_escaped(&html);
        assert!(html.contains("href=\"/pos/%3Cscript"));
    }
}
