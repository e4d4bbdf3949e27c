//! `edi-bridge check --online`: the live connection test an admin runs after editing the
//! config. A checklist, one line per check (the account's checks once per account, named
//! `access token (ca)` when there are several), ✓ or ✗ with the fix for each ✗: an access token is
//! fetched (its lifetime shown, never the token), the API base answers over TLS with it and
//! does not refuse the partner id (`IM-PartnerID`), the webhook secret is present, every directory exists and is writable, the outbox's temp files
//! and final names share a filesystem, the descriptor limit is adequate, and the clock agrees
//! with the server's. Exit 0 only when every line is ✓.

use std::fmt::Write as _;
use std::time::Duration;

use crate::ingram::api::ApiClient;
use crate::load::Loaded;

/// Largest clock difference from Ingram's `Date` header that passes.
const MAX_SKEW: Duration = Duration::from_secs(60);

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found (✓) or what to do (✗).
    pub detail: String,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }
    fn fail(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Runs every check; the network ones against the configured Ingram endpoints.
pub async fn run(loaded: &Loaded) -> Vec<Check> {
    let config = &loaded.config;
    let mut out = Vec::new();
    let several = loaded.accounts.len() > 1;
    for la in &loaded.accounts {
        let mut checks = account_checks(la).await;
        if several {
            for c in &mut checks {
                c.name = format!("{} ({})", c.name, la.account.id);
            }
        }
        out.extend(checks);
    }
    let p = &config.paths;
    for (name, dir) in [
        ("state directory", &p.state),
        ("outbox", &p.outbox),
        ("inbox", &p.inbox),
        ("archive", &p.archive),
        ("error directory", &p.error),
    ] {
        let unsafe_state = (dir == &p.state)
            .then(|| crate::files::state_dir_problem(dir))
            .flatten();
        if let Some(problem) = unsafe_state {
            out.push(Check::fail(name, problem));
            continue;
        }
        if dir == &p.state {
            if let Some(check) = state_to_create(dir) {
                out.push(check);
                continue;
            }
        }
        out.push(match crate::files::probe_writable(dir) {
            Ok(()) => Check::pass(name, format!("{} is writable", dir.display())),
            Err(e) => Check::fail(
                name,
                format!(
                    "{}: {e}: create it and give the service user write access",
                    dir.display()
                ),
            ),
        });
    }
    out.push(match crate::files::probe_link(&p.outbox) {
        Ok(()) => Check::pass(
            "outbox temp files",
            "a hidden temp file in the outbox took a final name by hard link (one filesystem, links supported)",
        ),
        Err(e) => Check::fail(
            "outbox temp files",
            format!(
                "{}: cannot hard-link a temp file to a final name: {e}: put the outbox on a local filesystem with hard links (ext4, xfs; not a FAT or SMB mount)",
                p.outbox.display()
            ),
        ),
    });
    let budget = crate::listener::descriptor_budget(config.server.max_connections);
    out.push(if budget.connections >= config.server.max_connections {
        Check::pass(
            "descriptor limit",
            format!(
                "{} allows server.max_connections = {}",
                budget.soft.map_or("unlimited".into(), |s| s.to_string()),
                config.server.max_connections
            ),
        )
    } else {
        Check::fail(
            "descriptor limit",
            format!(
                "{} allows only {} of server.max_connections = {}: raise LimitNOFILE (the unit sets 65536) or lower max_connections",
                budget.soft.map_or("unlimited".into(), |s| s.to_string()),
                budget.connections,
                config.server.max_connections
            ),
        )
    });
    out
}

/// One account's checks: its token, API base, partner id and clock, and its webhook secret.
async fn account_checks(la: &crate::load::LoadedAccount) -> Vec<Check> {
    let a = &la.account;
    let mut out = Vec::new();
    match crate::daemon::api_client(a, &la.secrets) {
        Err(e) => {
            let (env, credential) =
                a.secret_sources(crate::config::ENV_CLIENT_SECRET, "client_secret");
            out.push(Check::fail(
                "access token",
                format!(
                    "{e:#}: set the client secret ({}, {env} or the credential {credential})",
                    a.key("client_secret_file")
                ),
            ))
        }
        Ok(client) => network(&client, a, &mut out).await,
    }
    if la.secrets.webhook.is_empty() {
        let (env, credential) =
            a.secret_sources(crate::config::ENV_WEBHOOK_SECRET, "webhook_secret");
        out.push(Check::fail(
            "webhook secret",
            format!(
                "none: set {}, {env} or the credential {credential}",
                a.key("webhook_secret_file")
            ),
        ));
    } else {
        out.push(Check::pass(
            "webhook secret",
            format!("{} configured", la.secrets.webhook.len()),
        ));
    }
    out
}

/// The token, the API base and the clock, in that order (each needs the one before).
async fn network(
    client: &ApiClient,
    config: &crate::config::AccountSettings,
    out: &mut Vec<Check>,
) {
    let token_url = &config.token_url;
    match client.probe_token().await {
        Ok(expires) => out.push(Check::pass(
            "access token",
            format!("fetched from {token_url}, valid for {}", human(expires)),
        )),
        Err(e) => {
            out.push(Check::fail(
                "access token",
                format!("{token_url}: {e}: check {} and the client secret, and that the token URL is right", config.key("client_id")),
            ));
            out.push(Check::fail("API base", "not tried without a token"));
            out.push(Check::fail("clock", "not tried without a token"));
            return;
        }
    }
    let base = &config.api_base_url;
    let tls = base.starts_with("https://");
    let loopback = ["http://127.", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| base.starts_with(p));
    match client.probe_api().await {
        Ok(answer) => {
            let refused = matches!(answer.status, 401 | 403);
            if refused {
                out.push(Check::fail(
                    "API base",
                    format!("{base} refused the token (HTTP {}): check {} and that the API credentials are enabled for the vendor APIs", answer.status, config.key("partner_id")),
                ));
            } else if !tls && !loopback {
                out.push(Check::fail(
                    "API base",
                    format!("{base} answered over plain HTTP: use the https:// address"),
                ));
            } else {
                let how = if tls {
                    "over TLS"
                } else {
                    "over plain HTTP on loopback (a local emulator)"
                };
                out.push(Check::pass(
                    "API base",
                    format!(
                        "{base} answered {how} with the token (HTTP {})",
                        answer.status
                    ),
                ));
            }
            out.push(if refused {
                Check::fail("partner id", "not tried without an accepted token")
            } else {
                partner(config, &answer)
            });
            out.push(clock(answer.date.as_deref()));
        }
        Err(e) => {
            out.push(Check::fail(
                "API base",
                format!(
                    "{base}: {e}: check {} and that this host may reach it (proxy, firewall)",
                    config.key("api_base_url")
                ),
            ));
            out.push(Check::fail("partner id", "not tried without an answer"));
            out.push(Check::fail("clock", "not tried without an answer"));
        }
    }
}

/// Whether the API accepted `IM-PartnerID` on the connection test's GET (harmless: it reads
/// nothing and changes nothing). Ingram refuses an unknown partner id with a 4xx whose message
/// names it ("Invalid partner id"); any other answer means it was not refused.
fn partner(
    config: &crate::config::AccountSettings,
    answer: &crate::ingram::api::ApiAnswer,
) -> Check {
    let id = crate::text::escape(&config.partner_id);
    let base = &config.api_base_url;
    let message = answer.message.as_deref().unwrap_or_default();
    if (400..500).contains(&answer.status) && message.to_ascii_lowercase().contains("partner") {
        Check::fail(
            "partner id",
            format!(
                "{base} refused IM-PartnerID '{id}' (HTTP {}: {}): set {} to the partner id Ingram registered for this account",
                answer.status,
                crate::text::clip(&crate::text::escape(message), 200),
                config.key("partner_id")
            ),
        )
    } else {
        Check::pass(
            "partner id",
            format!("'{id}' accepted by {base} (HTTP {})", answer.status),
        )
    }
}

/// The clock against the server's `Date` header.
fn clock(date: Option<&str>) -> Check {
    let Some(date) = date else {
        return Check::fail("clock", "the server sent no Date header to compare with");
    };
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let Ok(server) = time::PrimitiveDateTime::parse(date.trim(), &format) else {
        return Check::fail(
            "clock",
            format!(
                "cannot read the server's Date header '{}'",
                crate::text::escape(date)
            ),
        );
    };
    let skew = (time::OffsetDateTime::now_utc() - server.assume_utc()).abs();
    let skew = Duration::from_secs(skew.whole_seconds().unsigned_abs());
    if skew <= MAX_SKEW {
        Check::pass(
            "clock",
            format!(
                "within {} of the server's",
                human(skew.max(Duration::from_secs(1)))
            ),
        )
    } else {
        Check::fail(
            "clock",
            format!(
                "{} away from the server's: enable time sync (timedatectl set-ntp true)",
                human(skew)
            ),
        )
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The checklist as printed.
pub fn render(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        let _ = writeln!(
            s,
            "{} {:<18} {}",
            if c.ok { "✓" } else { "✗" },
            c.name,
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        let _ = writeln!(s, "all {} checks passed", checks.len());
    } else {
        let _ = writeln!(s, "{failed} of {} checks failed", checks.len());
    }
    s
}

/// The state directory's check when it does not exist yet (the daemon creates it at its first
/// start): whether its nearest existing parent lets the daemon create it. `None` when it exists.
fn state_to_create(dir: &std::path::Path) -> Option<Check> {
    let missing = |p: &std::path::Path| matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if !missing(dir) {
        return None;
    }
    let parent = dir.ancestors().skip(1).find(|a| !missing(a))?;
    Some(match crate::files::probe_writable(parent) {
        Ok(()) => Check::pass(
            "state directory",
            format!(
                "{} does not exist yet; the daemon creates it at its first start ({} is writable)",
                dir.display(),
                parent.display()
            ),
        ),
        Err(e) => Check::fail(
            "state directory",
            format!(
                "{} does not exist and {} is not writable ({e}): create it for the service user (mode 700), or let systemd's StateDirectory= make it",
                dir.display(),
                parent.display()
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_check_reads_http_dates() {
        let now = time::OffsetDateTime::now_utc();
        let f = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        assert!(clock(Some(&now.format(&f).unwrap())).ok);
        let old = now - time::Duration::minutes(10);
        let c = clock(Some(&old.format(&f).unwrap()));
        assert!(!c.ok && c.detail.contains("10 min away"), "{c:?}");
        assert!(!clock(None).ok);
        assert!(!clock(Some("yesterday")).ok);
    }
}
