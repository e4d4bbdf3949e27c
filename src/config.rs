//! The daemon's TOML configuration: typed, defaulted, validated data. Loading reports *every*
//! problem at once, each with file, line and key, so `edi-bridge check` and start-up print the
//! same list. Secrets are never read from the TOML itself: they come from `*_file` paths, named
//! environment variables or systemd credentials (`$CREDENTIALS_DIRECTORY`), and are held in
//! [`Secret`], whose `Debug` prints nothing of the value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::tomlfile::{locate, parse_toml, read_source};
pub use crate::tomlfile::{ConfigError, Problem};

/// Environment variable holding the webhook secret.
pub const ENV_WEBHOOK_SECRET: &str = "EDI_BRIDGE_WEBHOOK_SECRET";
/// Environment variable holding the previous webhook secret during a key rotation.
pub const ENV_WEBHOOK_SECRET_PREVIOUS: &str = "EDI_BRIDGE_WEBHOOK_SECRET_PREVIOUS";
/// Environment variable holding the OAuth2 client secret.
pub const ENV_CLIENT_SECRET: &str = "EDI_BRIDGE_CLIENT_SECRET";
/// Environment variable holding the SMTP password for e-mailed alerts.
pub const ENV_SMTP_PASSWORD: &str = "EDI_BRIDGE_SMTP_PASSWORD";
/// Environment variable holding the web console's access token.
pub const ENV_CONSOLE_TOKEN: &str = "EDI_BRIDGE_CONSOLE_TOKEN";

/// The highest `requests_per_minute` an account may set (10,000 calls a second: far above any
/// published Ingram limit, so only the daemon's own capacity bounds a bench or an emulator run).
pub const MAX_REQUESTS_PER_MINUTE: u32 = 600_000;

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Webhook listener.
    #[serde(default)]
    pub server: Server,
    /// ERP directories and the state directory.
    pub paths: Paths,
    /// The single-account form: Ingram API endpoints and identities of the account `default`
    /// (with `[mapping]` and the `[server]` webhook secrets). `[[accounts]]` adds others.
    #[serde(default)]
    pub ingram: Option<Ingram>,
    /// Where the mapping TOML of the account `default` lives.
    #[serde(default)]
    pub mapping: MappingRef,
    /// Ingram accounts (one per country or API app), each with its own identities, secrets,
    /// mapping and webhook path (README "Several accounts").
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// How 850 files are named and delivered.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// How the inbox is watched.
    #[serde(default)]
    pub inbox: InboxConfig,
    /// Retry policy for Ingram API calls.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Logging.
    #[serde(default)]
    pub log: Log,
    /// Alert thresholds (metrics gauges and WARN logs).
    #[serde(default)]
    pub alerts: AlertConfig,
    /// The state store.
    #[serde(default)]
    pub store: StoreConfig,
    /// How long the files under `paths.archive` are kept (forever unless `keep_days` is set).
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// Moving from a VAN: where its 850s land and whether calls are sent (README "Moving from
    /// your VAN").
    #[serde(default)]
    pub migration: Migration,
    /// The operator's web console; off when the table is absent.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// How long a shutdown waits for workers to finish the item they are on.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Set by the loader: the file this came from (relative paths resolve against its directory).
    #[serde(skip)]
    pub source: PathBuf,
    /// Not a config key: the `edi-bridge` executable the program workers run. `None` is the
    /// running binary; a caller that is not `edi-bridge` (an integration test) names it.
    #[serde(skip)]
    pub program_worker: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Address the webhook listener binds, e.g. `127.0.0.1:8080`.
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// URL path Ingram posts purchase orders to.
    #[serde(default = "defaults::webhook_path")]
    pub webhook_path: String,
    /// Largest accepted webhook body; larger bodies get 413.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// File holding the webhook secret (else `EDI_BRIDGE_WEBHOOK_SECRET`, else the systemd
    /// credential `webhook_secret`).
    pub webhook_secret_file: Option<PathBuf>,
    /// File holding the previous webhook secret, accepted during a rotation (else
    /// `EDI_BRIDGE_WEBHOOK_SECRET_PREVIOUS`, else the credential `webhook_secret_previous`).
    pub webhook_secret_previous_file: Option<PathBuf>,
    /// Time allowed for one webhook request before 503.
    #[serde(default = "defaults::request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Time a client has to send a request's whole head (request line and headers), counted
    /// from the connection's accept, or from the first byte of a later request on a kept-alive
    /// connection; then the connection is closed without an answer.
    #[serde(default = "defaults::header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Time a webhook's whole body has to arrive once it holds one of the
    /// `max_concurrent_bodies` slots (then 408), and the longest wait for a slot (then 503 with
    /// `Retry-After`). Either way the connection is closed and nothing is stored.
    #[serde(default = "defaults::body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// Time a kept-alive connection may wait for its next request (or take to read a response)
    /// before the server closes it.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Most connections open at once. Lowered at start so that it plus the descriptors kept in
    /// reserve for the store, inbox and outbox fit the soft `RLIMIT_NOFILE` (a warning says so).
    /// At the cap the listener stops accepting; new clients wait in the kernel's backlog.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Most webhook bodies being read at once: body memory stays under this times
    /// `max_body_bytes`.
    #[serde(default = "defaults::max_concurrent_bodies")]
    pub max_concurrent_bodies: usize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: defaults::listen(),
            webhook_path: defaults::webhook_path(),
            max_body_bytes: defaults::max_body_bytes(),
            webhook_secret_file: None,
            webhook_secret_previous_file: None,
            request_timeout_secs: defaults::request_timeout_secs(),
            header_read_timeout_secs: defaults::header_read_timeout_secs(),
            body_read_timeout_secs: defaults::body_read_timeout_secs(),
            idle_timeout_secs: defaults::idle_timeout_secs(),
            max_connections: defaults::max_connections(),
            max_concurrent_bodies: defaults::max_concurrent_bodies(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// State directory: the sled store lives in `state/db`.
    pub state: PathBuf,
    /// 850s (and 997s) for the ERP.
    pub outbox: PathBuf,
    /// 855/856/997 from the ERP.
    pub inbox: PathBuf,
    /// Copies of everything sent and received, by date.
    pub archive: PathBuf,
    /// Inbox files that could not be processed, each with a `.reason.txt`.
    pub error: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingram {
    pub api_base_url: String,
    pub token_url: String,
    pub client_id: String,
    pub partner_id: String,
    pub country_code: String,
    pub sender_id: String,
    /// File holding the OAuth2 client secret (else `EDI_BRIDGE_CLIENT_SECRET`, else the systemd
    /// credential `client_secret`).
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "defaults::connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    #[serde(default = "defaults::api_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Refresh the token this long before it expires.
    #[serde(default = "defaults::token_refresh_margin_secs")]
    pub token_refresh_margin_secs: u64,
    /// The account's client-side pace: API calls are spaced evenly, at most this many a minute
    /// (Ingram limits each app and revokes "abusive" ones; POST limits are not published, GETs
    /// are 60 a minute). A 429 or a low `X-RateLimit-Remaining` also pauses the account's calls
    /// until Ingram's reset, without spending retry attempts.
    #[serde(default = "defaults::requests_per_minute")]
    pub requests_per_minute: u32,
    /// Declared maintenance windows, `DAYS HH:MM-HH:MM ±HH:MM` each (e.g.
    /// `"Mon-Fri 23:00-04:00 -08:00"`): calls wait through them without spending retry attempts
    /// or raising the `api_unreachable` alert.
    #[serde(default)]
    pub maintenance: Vec<String>,
}

/// One `[[accounts]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `[a-z0-9-]`, 1 to 16 characters: in the webhook's URL path, metric labels, the CLI.
    pub id: String,
    pub api_base_url: String,
    pub token_url: String,
    pub client_id: String,
    /// `IM-PartnerID`, e.g. `CA654321`.
    pub partner_id: String,
    /// `IM-CountryCode`, e.g. `CA`.
    pub country_code: String,
    /// `IM-SenderID`.
    pub sender_id: String,
    /// The account's mapping TOML, relative to the config file.
    pub mapping: PathBuf,
    /// File holding the OAuth2 client secret (else `EDI_BRIDGE_CLIENT_SECRET_<ID>`, else the
    /// systemd credential `client_secret_<id>`).
    pub client_secret_file: Option<PathBuf>,
    /// File holding the webhook secret (else `EDI_BRIDGE_WEBHOOK_SECRET_<ID>`, else the
    /// credential `webhook_secret_<id>`).
    pub webhook_secret_file: Option<PathBuf>,
    /// The previous webhook secret during a rotation (else
    /// `EDI_BRIDGE_WEBHOOK_SECRET_PREVIOUS_<ID>`, else `webhook_secret_previous_<id>`).
    pub webhook_secret_previous_file: Option<PathBuf>,
    /// Where this account's 850s go; unset: `[paths] outbox`.
    pub outbox: Option<PathBuf>,
    #[serde(default = "defaults::connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    #[serde(default = "defaults::api_timeout_secs")]
    pub request_timeout_secs: u64,
    #[serde(default = "defaults::token_refresh_margin_secs")]
    pub token_refresh_margin_secs: u64,
    /// As `[ingram] requests_per_minute`: this account's own pace.
    #[serde(default = "defaults::requests_per_minute")]
    pub requests_per_minute: u32,
    /// As `[ingram] maintenance`.
    #[serde(default)]
    pub maintenance: Vec<String>,
}

/// One account as the daemon uses it, from `[ingram]` (the account `default`) or an
/// `[[accounts]]` table: its settings (an [`AccountConfig`], read through `Deref`), and where
/// they are written, for messages and for where its secrets come from.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub settings: AccountConfig,
    /// `None`: `[ingram]`; `Some(i)`: the `i`-th `[[accounts]]` table.
    pub table: Option<usize>,
}

impl std::ops::Deref for AccountSettings {
    type Target = AccountConfig;
    fn deref(&self) -> &AccountConfig {
        &self.settings
    }
}

impl AccountSettings {
    /// The declared maintenance windows (validated at load; an entry that does not parse is
    /// left out).
    pub fn windows(&self) -> crate::pacing::Windows {
        crate::pacing::Windows(
            self.maintenance
                .iter()
                .filter_map(|m| crate::pacing::Window::parse(m).ok())
                .collect(),
        )
    }

    /// The config key of one of this account's settings, as messages name it
    /// (`ingram.client_id`, `accounts[ca].client_id`).
    pub fn key(&self, key: &str) -> String {
        match self.table {
            None if key == "mapping" => "mapping.file".into(),
            None if key.starts_with("webhook_secret") => format!("server.{key}"),
            None => format!("ingram.{key}"),
            Some(_) => format!("accounts[{}].{key}", self.id),
        }
    }

    /// The 1-based line where one of this account's keys is written.
    pub fn line(&self, text: &str, key: &str) -> Option<usize> {
        match self.table {
            None if key == "mapping" => locate(text, "mapping", "file"),
            None if key.starts_with("webhook_secret") => locate(text, "server", key),
            None => locate(text, "ingram", key),
            Some(i) => crate::tomlfile::locate_nth(text, "accounts", i, key),
        }
    }

    /// The environment variable and systemd credential holding one of its secrets when no file
    /// is named: `EDI_BRIDGE_CLIENT_SECRET` / `client_secret` for `default` from `[ingram]`,
    /// `EDI_BRIDGE_CLIENT_SECRET_CA` / `client_secret_ca` for the account `ca`.
    pub fn secret_sources(&self, env: &str, credential: &str) -> (String, String) {
        match self.table {
            None => (env.to_owned(), credential.to_owned()),
            Some(_) => (
                format!("{env}_{}", self.id.to_ascii_uppercase().replace('-', "_")),
                format!("{credential}_{}", self.id),
            ),
        }
    }

    /// The URL path its webhook is posted to.
    pub fn webhook_path(&self) -> String {
        format!("/webhooks/ingram/{}/purchase-orders", self.id)
    }
}

impl Config {
    /// `[ingram]` (with `[mapping]` and the `[server]` webhook secrets) as the account `default`.
    fn default_account(&self, i: &Ingram) -> AccountSettings {
        AccountSettings {
            settings: AccountConfig {
                id: crate::domain::DEFAULT_ACCOUNT.into(),
                api_base_url: i.api_base_url.clone(),
                token_url: i.token_url.clone(),
                client_id: i.client_id.clone(),
                partner_id: i.partner_id.clone(),
                country_code: i.country_code.clone(),
                sender_id: i.sender_id.clone(),
                mapping: self.mapping.file.clone(),
                client_secret_file: i.client_secret_file.clone(),
                webhook_secret_file: self.server.webhook_secret_file.clone(),
                webhook_secret_previous_file: self.server.webhook_secret_previous_file.clone(),
                outbox: None,
                connect_timeout_secs: i.connect_timeout_secs,
                request_timeout_secs: i.request_timeout_secs,
                token_refresh_margin_secs: i.token_refresh_margin_secs,
                requests_per_minute: i.requests_per_minute,
                maintenance: i.maintenance.clone(),
            },
            table: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRef {
    /// The mapping TOML; relative paths resolve against the config file's directory.
    #[serde(default = "defaults::mapping_file")]
    pub file: PathBuf,
}

impl Default for MappingRef {
    fn default() -> Self {
        MappingRef {
            file: defaults::mapping_file(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// File name pattern; placeholders `{po}`, `{isa13}`, `{gs06}`, `{st02}`, `{date}`,
    /// `{account}`. Must contain `{isa13}` so every interchange gets its own name (and
    /// `{account}` when several accounts share an outbox).
    #[serde(default = "defaults::file_pattern")]
    pub file_pattern: String,
    /// Keep a copy of each 850 in `archive/outbound/YYYY/MM/DD/`.
    #[serde(default = "defaults::yes")]
    pub archive_copy: bool,
    /// Wait between attempts when writing to the outbox fails (disk full, permissions).
    #[serde(default = "defaults::outbox_retry_secs")]
    pub retry_secs: u64,
    /// How much lower than the daemon's the CPU priority of the outbox's thread is (added to
    /// its nice value, 0 to 19): 850s wait a little on a busy machine, webhooks do not.
    #[serde(default = "defaults::outbox_nice")]
    pub nice: i32,
    /// Shadow mode: the 850s (and 997s) go to this directory, never to `paths.outbox`; no 997
    /// is expected for them and none is overdue. Unset (the default) after the cut-over.
    #[serde(default)]
    pub shadow_dir: Option<PathBuf>,
    /// `true`: no 850 or 997 is written; webhooks are still accepted and stored, and their 850s
    /// wait in the queue until the daemon runs with `false` again (ERP maintenance).
    #[serde(default)]
    pub paused: bool,
}

/// `[migration]`: the parallel run beside the VAN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Where the ERP's copies of the VAN's 850s land: each is compared with the shadow 850 for
    /// the same PO (needs `[outbox] shadow_dir`).
    #[serde(default)]
    pub van_dir: Option<PathBuf>,
    /// `false`: the 855/856 in the inbox are read and the calls they would make are recorded,
    /// never sent (the VAN still carries them to Ingram).
    #[serde(default = "defaults::yes")]
    pub send_calls: bool,
}

impl Default for Migration {
    fn default() -> Self {
        Migration {
            van_dir: None,
            send_calls: true,
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            file_pattern: defaults::file_pattern(),
            archive_copy: true,
            retry_secs: defaults::outbox_retry_secs(),
            nice: defaults::outbox_nice(),
            shadow_dir: None,
            paused: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// A file is taken once its size and mtime have not changed for this long.
    #[serde(default = "defaults::settle_ms")]
    pub settle_ms: u64,
    /// Full rescan interval (the source of truth; events only wake the scanner early).
    #[serde(default = "defaults::rescan_secs")]
    pub rescan_secs: u64,
    /// A file still incomplete (no IEA closing the last ISA) after this long goes to `error/`.
    #[serde(default = "defaults::incomplete_timeout_secs")]
    pub incomplete_timeout_secs: u64,
    /// File name patterns never taken (`*` wildcard); hidden files are always ignored.
    #[serde(default = "defaults::ignore")]
    pub ignore: Vec<String>,
    /// The largest inbox file read; a bigger one goes to `error/` with the reason (memory stays
    /// bounded whatever lands in the inbox).
    #[serde(default = "defaults::max_file_bytes")]
    pub max_file_bytes: u64,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            settle_ms: defaults::settle_ms(),
            rescan_secs: defaults::rescan_secs(),
            incomplete_timeout_secs: defaults::incomplete_timeout_secs(),
            ignore: defaults::ignore(),
            max_file_bytes: defaults::max_file_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// First retry delay; doubles per attempt, with full jitter.
    #[serde(default = "defaults::backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Longest delay between two attempts.
    #[serde(default = "defaults::backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// Jobs delivered concurrently (different POs only; one PO's jobs stay in order).
    #[serde(default = "defaults::workers")]
    pub workers: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            backoff_base_ms: defaults::backoff_base_ms(),
            backoff_max_secs: defaults::backoff_max_secs(),
            workers: defaults::workers(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// sled's page cache, MiB: what bounds the daemon's memory as the history grows.
    #[serde(default = "defaults::cache_mib")]
    pub cache_mib: u64,
    /// POs received longer ago than this, with their 850 written and no call pending, are
    /// pruned from the store (their files stay in the archive).
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u64,
    /// No longer used: a pruned PO's event id and PO number are remembered for the life of the
    /// store, so a redelivery is always recognised. Still accepted, so a configuration written
    /// for an older version loads; the daemon logs that it is ignored.
    #[serde(default)]
    pub dedupe_days: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mib: defaults::cache_mib(),
            retention_days: defaults::retention_days(),
            dedupe_days: None,
        }
    }
}

/// The fewest days `[archive] keep_days` may keep: the start-up continuity check reads the
/// newest two days of `archive/outbound/` (`continuity::Scope::Recent`).
pub const MIN_ARCHIVE_KEEP_DAYS: u64 = 2;

/// `[archive]`: retention of the files under `paths.archive`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Unset (the default): every archived file is kept forever. Set: a background task removes
    /// each day directory (`outbound/`, `inbound/`, `duplicates/`, `dismissed/` `YYYY/MM/DD`)
    /// once all of that day is older than this many days, by the daemon's clock; the newest two
    /// days of `outbound/` stay whatever their age. At least [`MIN_ARCHIVE_KEEP_DAYS`].
    #[serde(default)]
    pub keep_days: Option<u64>,
}

impl ArchiveConfig {
    /// For `check` and the logs: "kept forever" or "kept 30 days".
    pub fn describe(&self) -> String {
        match self.keep_days {
            None => "kept forever".into(),
            Some(1) => "kept 1 day".into(),
            Some(n) => format!("kept {n} days"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Warn about 850s with no 997 from the ERP after this many hours.
    #[serde(default = "defaults::missing_997_hours")]
    pub missing_997_hours: u64,
    /// Warn when no 855/856/997 arrived for this many hours.
    #[serde(default = "defaults::no_inbound_hours")]
    pub no_inbound_hours: u64,
    /// Warn about POs still open (not finished, not closed) this many days after they were
    /// received: retention never removes them, so someone has to look.
    #[serde(default = "defaults::open_po_days")]
    pub open_po_days: u64,
    /// How often the conditions are checked and logged.
    #[serde(default = "defaults::check_interval_secs")]
    pub check_interval_secs: u64,
    /// One alert when Ingram has not answered (no HTTP answer, or only 5xx) for this many
    /// minutes while calls were waiting, and one when it answers again.
    #[serde(default = "defaults::api_unreachable_minutes")]
    pub api_unreachable_minutes: u64,
    /// Where alerts are POSTed as JSON (with a `text` field for Slack and Teams). Only its host
    /// is ever logged; unset, alerts go to the log only.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// E-mail for alerts too, when set.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

/// `[alerts.smtp]`: e-mailed alerts. The password comes from `password_file`,
/// `EDI_BRIDGE_SMTP_PASSWORD` or the credential `smtp_password`, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "defaults::smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a local relay only).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login user; without it no authentication is attempted.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            missing_997_hours: defaults::missing_997_hours(),
            no_inbound_hours: defaults::no_inbound_hours(),
            open_po_days: defaults::open_po_days(),
            check_interval_secs: defaults::check_interval_secs(),
            api_unreachable_minutes: defaults::api_unreachable_minutes(),
            webhook_url: None,
            smtp: None,
        }
    }
}

/// `[console]`: the operator's web console, on a listener of its own (never the webhook port).
/// Its token comes from `token_file`, `EDI_BRIDGE_CONSOLE_TOKEN` or the credential
/// `console_token`, never from this file; it is required unless `listen` is a loopback address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address the console binds, e.g. `127.0.0.1:8081`.
    pub listen: String,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How many POs a list page shows.
    #[serde(default = "defaults::console_page_size")]
    pub page_size: usize,
    /// The console's address as operators reach it (`https://edi.example.com/console`), for the
    /// links in alerts; without it alerts carry no link.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl ConsoleConfig {
    /// The parsed listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .expect("console listen address validated at load")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `text` (journald-friendly) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, e.g. `info` or `edi_bridge=debug`.
    pub filter: Option<String>,
}

mod defaults {
    use std::path::PathBuf;
    pub(super) fn listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub(super) fn webhook_path() -> String {
        "/webhooks/ingram/purchase-orders".into()
    }
    pub(super) fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub(super) fn request_timeout_secs() -> u64 {
        30
    }
    pub(super) fn header_read_timeout_secs() -> u64 {
        10
    }
    pub(super) fn body_read_timeout_secs() -> u64 {
        30
    }
    pub(super) fn idle_timeout_secs() -> u64 {
        60
    }
    pub(super) fn max_connections() -> usize {
        512
    }
    pub(super) fn max_concurrent_bodies() -> usize {
        64
    }
    pub(super) fn connect_timeout_secs() -> u64 {
        10
    }
    pub(super) fn api_timeout_secs() -> u64 {
        30
    }
    pub(super) fn token_refresh_margin_secs() -> u64 {
        300
    }
    pub(super) fn requests_per_minute() -> u32 {
        60
    }
    pub(super) fn mapping_file() -> PathBuf {
        "mappings/ingram.toml".into()
    }
    pub(super) fn file_pattern() -> String {
        "{po}.{isa13}.850".into()
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn outbox_retry_secs() -> u64 {
        5
    }
    pub(super) fn outbox_nice() -> i32 {
        10
    }
    pub(super) fn settle_ms() -> u64 {
        1000
    }
    pub(super) fn rescan_secs() -> u64 {
        10
    }
    pub(super) fn incomplete_timeout_secs() -> u64 {
        600
    }
    pub(super) fn max_file_bytes() -> u64 {
        256 * 1024 * 1024
    }
    pub(super) fn ignore() -> Vec<String> {
        vec!["*.tmp".into(), "*.part".into()]
    }
    pub(super) fn backoff_base_ms() -> u64 {
        1000
    }
    pub(super) fn backoff_max_secs() -> u64 {
        600
    }
    pub(super) fn workers() -> usize {
        4
    }
    pub(super) fn missing_997_hours() -> u64 {
        24
    }
    pub(super) fn no_inbound_hours() -> u64 {
        48
    }
    pub(super) fn smtp_port() -> u16 {
        587
    }
    pub(super) fn open_po_days() -> u64 {
        30
    }
    pub(super) fn check_interval_secs() -> u64 {
        300
    }
    pub(super) fn api_unreachable_minutes() -> u64 {
        15
    }
    pub(super) fn cache_mib() -> u64 {
        crate::store::DEFAULT_CACHE_MIB
    }
    pub(super) fn retention_days() -> u64 {
        90
    }
    pub(super) fn console_page_size() -> usize {
        50
    }
    pub(super) fn shutdown_grace_secs() -> u64 {
        20
    }
}

/// Secrets resolved at start-up from files, environment or systemd credentials.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The SMTP password for e-mailed alerts, when `[alerts.smtp]` names a user.
    pub smtp_password: Option<Secret>,
    /// The web console's token (`[console]`); `None` is only allowed on a loopback listener.
    pub console_token: Option<Secret>,
}

/// One account's secrets.
#[derive(Debug, Clone)]
pub struct AccountSecrets {
    /// Current and (during a rotation) previous webhook secret.
    pub webhook: Vec<Secret>,
    pub client: Option<Secret>,
}

impl Config {
    /// Every account: `default` from `[ingram]` (with `[mapping]` and the `[server]` webhook
    /// secrets) first when it is set, then each `[[accounts]]` table in order.
    pub fn accounts(&self) -> Vec<AccountSettings> {
        let mut out = Vec::new();
        if let Some(i) = &self.ingram {
            out.push(self.default_account(i));
        }
        out.extend(
            self.accounts
                .iter()
                .enumerate()
                .map(|(i, a)| AccountSettings {
                    settings: a.clone(),
                    table: Some(i),
                }),
        );
        out
    }

    /// Every directory 850s are written to: each account's outbox, or the shadow directory.
    pub fn outboxes(&self) -> Vec<PathBuf> {
        if let Some(shadow) = &self.outbox.shadow_dir {
            return vec![shadow.clone()];
        }
        let mut out: Vec<PathBuf> = self.accounts().iter().map(|a| self.outbox_of(a)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Where an account's 850s go: its own `outbox`, else `[paths] outbox`.
    pub fn outbox_of(&self, account: &AccountSettings) -> PathBuf {
        account
            .outbox
            .clone()
            .unwrap_or_else(|| self.paths.outbox.clone())
    }

    /// Reads only the config file (no mapping, no secrets), for operator commands that need
    /// nothing but the paths. The whole load (mapping, secrets, alert addresses) is
    /// [`Config::load`], in [`crate::load`], so that this module imports neither `mapping`
    /// nor `alerts`.
    pub fn load_paths(path: &Path) -> Result<Config, ConfigError> {
        let text = read_source(path, "cannot read")?;
        let mut c: Config = parse_toml(&text, path).map_err(|p| ConfigError(vec![p]))?;
        c.source = path.to_path_buf();
        Ok(c)
    }

    /// The ERP's directories (outbox, inbox, archive, error) must exist: edi-bridge creates
    /// only its own subdirectories inside them, never the directories themselves, so a
    /// mistyped path is refused here instead of receiving 850s the ERP never reads. One problem
    /// per directory, naming it. (The state directory is the daemon's own: created when absent.)
    pub(crate) fn check_dirs(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        // The shadow run's directories (README "Moving from your VAN") must exist as well.
        let shadow = [
            ("outbox", "shadow_dir", self.outbox.shadow_dir.as_ref()),
            ("migration", "van_dir", self.migration.van_dir.as_ref()),
        ];
        for (section, key, p) in shadow.into_iter().filter_map(|(s, k, p)| Some((s, k, p?))) {
            if !p.is_dir() {
                out.push(Problem {
                    file: self.source.clone(),
                    line: locate(text, section, key),
                    key: format!("{section}.{key}"),
                    message: format!("{} is not an existing directory", p.display()),
                });
            }
        }
        for (key, p) in [
            ("outbox", &self.paths.outbox),
            ("inbox", &self.paths.inbox),
            ("archive", &self.paths.archive),
            ("error", &self.paths.error),
        ] {
            if p.as_os_str().is_empty() {
                continue;
            }
            let message = match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => format!("{} is not a directory", p.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                    "directory {} does not exist: create it (edi-bridge never creates the ERP's directories; see systemd/README.md)",
                    p.display()
                ),
                Err(e) => format!("cannot look at directory {}: {e}", p.display()),
            };
            out.push(Problem {
                file: self.source.clone(),
                line: locate(text, "paths", key),
                key: format!("paths.{key}"),
                message,
            });
        }
        out
    }

    /// An `edi-bridge` command line for an operator to copy: `sub`, this config file (as an
    /// absolute path, quoted for a POSIX shell when it needs it), then `args`.
    pub fn command(&self, sub: &str, args: &str) -> String {
        command(&self.source, sub, args)
    }

    /// The first account's mapping file, resolved against the config file's directory.
    pub fn mapping_path(&self) -> PathBuf {
        match self.accounts().first() {
            Some(a) => self.resolve_path(&a.mapping),
            None => self.resolve_path(&self.mapping.file),
        }
    }

    /// A path from the config file, resolved against the config file's directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.source.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// The parsed listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .expect("listen address validated at load")
    }

    pub(crate) fn validate(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |section: &str, key: &str, message: String| {
            out.push(Problem {
                file: self.source.clone(),
                line: locate(text, section, key),
                key: format!("{section}.{key}"),
                message,
            })
        };
        self.validate_listen_and_console(&mut bad);
        self.validate_alerts(&mut bad);
        self.validate_store(&mut bad);
        self.validate_server(&mut bad);
        self.validate_outbox_and_inbox(&mut bad);
        self.validate_delivery(&mut bad);
        self.validate_paths(&mut bad);
        out
    }

    /// The webhook listener's address, then `[console]`: its own address (never the webhook port),
    /// page size and public URL.
    fn validate_listen_and_console(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if self.server.listen.parse::<SocketAddr>().is_err() {
            bad(
                "server",
                "listen",
                format!(
                    "'{}' is not an address like 127.0.0.1:8080",
                    self.server.listen
                ),
            );
        }
        if let Some(c) = &self.console {
            match c.listen.parse::<SocketAddr>() {
                Err(_) => bad(
                    "console",
                    "listen",
                    format!("'{}' is not an address like 127.0.0.1:8081", c.listen),
                ),
                Ok(a)
                    if a.port() != 0
                        && self.server.listen.parse::<SocketAddr>().is_ok_and(|w| {
                            w.port() == a.port()
                                && (w.ip() == a.ip()
                                    || w.ip().is_unspecified()
                                    || a.ip().is_unspecified())
                        }) =>
                {
                    bad(
                    "console",
                    "listen",
                    "must differ from server.listen: the console is a listener of its own, never the webhook port".into(),
                    )
                }
                Ok(_) => {}
            }
            if c.page_size == 0 || c.page_size > 1000 {
                bad("console", "page_size", "must be 1 to 1000".into());
            }
            if let Some(url) = &c.public_url {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if rest.is_none_or(|r| {
                    r.is_empty() || r.contains(['?', '#']) || r.contains(char::is_whitespace)
                }) {
                    bad(
                        "console",
                        "public_url",
                        format!(
                            "'{url}' is not an http:// or https:// URL without query or fragment"
                        ),
                    );
                }
            }
        }
    }

    /// `[alerts]`: SMTP recipients, the webhook URL, the API-unreachable threshold.
    fn validate_alerts(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if let Some(smtp) = &self.alerts.smtp {
            if smtp.to.is_empty() {
                bad("alerts.smtp", "to", "needs at least one address".into());
            }
        }
        if let Some(url) = &self.alerts.webhook_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
                bad(
                    "alerts",
                    "webhook_url",
                    "must be an http:// or https:// URL".into(),
                );
            }
        }
        if self.alerts.api_unreachable_minutes == 0 {
            bad(
                "alerts",
                "api_unreachable_minutes",
                "must be at least 1".into(),
            );
        }
    }

    /// `[store]`: retention and cache size.
    fn validate_store(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if self.store.retention_days == 0 {
            bad("store", "retention_days", "must be at least 1".into());
        }
        if let Some(days) = self
            .archive
            .keep_days
            .filter(|d| *d < MIN_ARCHIVE_KEEP_DAYS)
        {
            bad(
                "archive",
                "keep_days",
                format!("{days} is too few: at least {MIN_ARCHIVE_KEEP_DAYS} (the start-up continuity check reads the newest two days of archive/outbound/); leave it unset to keep the archive forever"),
            );
        }
        if !(1..=65536).contains(&self.store.cache_mib) {
            bad(
                "store",
                "cache_mib",
                format!("{} must be between 1 and 65536 (MiB)", self.store.cache_mib),
            );
        }
    }

    /// `[server]`: the webhook path, the body limit, the timeouts and connection caps.
    fn validate_server(&self, bad: &mut impl FnMut(&str, &str, String)) {
        let path = &self.server.webhook_path;
        if !path.starts_with('/') {
            bad("server", "webhook_path", "must start with '/'".into());
        } else if path.contains(['{', '}', '*', '?', '#'])
            || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str())
            || (path.starts_with("/webhooks/ingram/")
                && path.ends_with("/purchase-orders")
                && path.matches('/').count() == 4)
        {
            bad(
                "server",
                "webhook_path",
                format!("'{path}' is taken: a plain path that is not /healthz, /readyz, /metrics or an account's /webhooks/ingram/ID/purchase-orders"),
            );
        }
        if self.server.max_body_bytes < 1024 {
            bad("server", "max_body_bytes", "must be at least 1024".into());
        }
        for (key, value) in [
            (
                "header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            ("body_read_timeout_secs", self.server.body_read_timeout_secs),
            ("idle_timeout_secs", self.server.idle_timeout_secs),
            ("max_connections", self.server.max_connections as u64),
            (
                "max_concurrent_bodies",
                self.server.max_concurrent_bodies as u64,
            ),
        ] {
            if value == 0 {
                bad("server", key, "must be at least 1".into());
            }
        }
    }

    /// `[outbox]`, `[inbox]` and `[migration]`: the file pattern, the file size limit, the shadow
    /// directory and the VAN directory that needs it, the outbox's nice level.
    fn validate_outbox_and_inbox(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if !self.outbox.file_pattern.contains("{isa13}") {
            bad(
                "outbox",
                "file_pattern",
                "must contain {isa13} so every interchange gets its own file name".into(),
            );
        }
        if let Err(e) = check_pattern(&self.outbox.file_pattern) {
            bad("outbox", "file_pattern", e.to_string());
        }
        if self.inbox.max_file_bytes < 1024 {
            bad("inbox", "max_file_bytes", "must be at least 1024".into());
        }
        if self.outbox.shadow_dir.as_ref() == Some(&self.paths.outbox) {
            bad(
                "outbox",
                "shadow_dir",
                "must not be paths.outbox: the shadow 850s must never reach the ERP".into(),
            );
        }
        if self.migration.van_dir.is_some() && self.outbox.shadow_dir.is_none() {
            bad(
                "migration",
                "van_dir",
                "needs [outbox] shadow_dir: only shadow 850s are compared with the VAN's".into(),
            );
        }
        if !(0..=19).contains(&self.outbox.nice) {
            bad("outbox", "nice", "must be 0 to 19".into());
        }
    }

    /// `[delivery]`: workers and backoff.
    fn validate_delivery(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if self.delivery.workers == 0 {
            bad("delivery", "workers", "must be at least 1".into());
        }
        if self.delivery.backoff_base_ms == 0 {
            bad("delivery", "backoff_base_ms", "must be at least 1".into());
        }
    }

    /// `[paths]`: none empty.
    fn validate_paths(&self, bad: &mut impl FnMut(&str, &str, String)) {
        for (key, p) in [
            ("state", &self.paths.state),
            ("outbox", &self.paths.outbox),
            ("inbox", &self.paths.inbox),
            ("archive", &self.paths.archive),
            ("error", &self.paths.error),
        ] {
            if p.as_os_str().is_empty() {
                bad("paths", key, "must not be empty".into());
            }
        }
    }

    /// The accounts: at least one; ids well formed and unique; each one's endpoints, identities
    /// and pace; a shared outbox names each account's files apart.
    pub(crate) fn validate_accounts(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let accounts = self.accounts();
        if accounts.is_empty() {
            out.push(Problem {
                file: self.source.clone(),
                line: None,
                key: "accounts".into(),
                message: "no Ingram account: set [ingram] (the account default) or one [[accounts]] table per account".into(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &accounts {
            let mut bad = |key: &str, message: String| {
                out.push(Problem {
                    file: self.source.clone(),
                    line: a.line(text, key),
                    key: a.key(key),
                    message,
                })
            };
            if a.table.is_some() {
                if let Err(e) = crate::domain::account::check_account_id(&a.id) {
                    bad("id", format!("'{}': {e}", a.id));
                }
            }
            if !seen.insert(a.id.clone()) {
                bad(
                    "id",
                    match a.id.as_str() {
                        crate::domain::DEFAULT_ACCOUNT => "the account default is [ingram]'s: give this one another id, or move [ingram] into this table".into(),
                        id => format!("the account '{id}' is configured twice"),
                    },
                );
            }
            for (key, value) in [
                ("api_base_url", &a.api_base_url),
                ("token_url", &a.token_url),
            ] {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    bad(key, format!("'{value}' is not an http(s) URL"));
                }
            }
            for (key, value) in [("client_id", &a.client_id), ("partner_id", &a.partner_id)] {
                if value.trim().is_empty() {
                    bad(key, "must not be empty".into());
                }
            }
            if a.country_code.len() != 2 || !a.country_code.chars().all(|c| c.is_ascii_alphabetic())
            {
                bad("country_code", "must be two letters, e.g. US".into());
            }
            if !(1..=MAX_REQUESTS_PER_MINUTE).contains(&a.requests_per_minute) {
                bad(
                    "requests_per_minute",
                    format!("must be 1 to {MAX_REQUESTS_PER_MINUTE}"),
                );
            }
            if let Err(e) = crate::pacing::Windows::parse(&a.maintenance) {
                bad("maintenance", e.to_string());
            }
            let sender = a.sender_id.trim();
            if sender.is_empty() || sender.len() > 32 {
                bad("sender_id", "must be 1 to 32 characters".into());
            }
        }
        // Each account numbers its own interchanges: without the account in the name, two
        // accounts' 850s would meet under one name (in a shared outbox, and in the archive).
        if accounts.len() > 1 && !self.outbox.file_pattern.contains("{account}") {
            out.push(Problem {
                file: self.source.clone(),
                line: locate(text, "outbox", "file_pattern"),
                key: "outbox.file_pattern".into(),
                message: "with several accounts the pattern must contain {account}: each account numbers its own interchanges, so their 850s would meet under one name in the outbox or the archive".into(),
            });
        }
        out
    }

    /// Every check of the file's own values (not of the directories, mappings or secrets).
    #[cfg(test)]
    fn validate_all(&self, text: &str) -> Vec<Problem> {
        let mut out = self.validate(text);
        out.extend(self.validate_accounts(text));
        out
    }

    pub(crate) fn resolve_secrets(
        &self,
        text: &str,
        accounts: &[AccountSettings],
    ) -> Result<(Secrets, Vec<AccountSecrets>), Vec<Problem>> {
        let mut reader = SecretReader {
            config: self,
            credentials: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            problems: Vec::new(),
        };
        let (per_account, missing) = self.account_secrets(&mut reader, text, accounts);
        let smtp = self.alerts.smtp.as_ref();
        let smtp_password = match smtp.filter(|s| s.user.is_some()) {
            Some(s) => reader.read(
                "alerts.smtp.password_file".into(),
                locate(text, "alerts.smtp", "password_file"),
                &s.password_file,
                ENV_SMTP_PASSWORD,
                "smtp_password",
            ),
            None => None,
        };
        let console_token = match &self.console {
            Some(c) => reader.read(
                "console.token_file".into(),
                locate(text, "console", "token_file"),
                &c.token_file,
                ENV_CONSOLE_TOKEN,
                "console_token",
            ),
            None => None,
        };
        let mut problems = reader.problems;
        self.require_console_token(text, console_token.is_some(), &mut problems);
        for (key, message) in missing {
            if !named(&problems, &key) {
                problems.push(Problem {
                    file: self.source.clone(),
                    line: None,
                    key,
                    message,
                });
            }
        }
        if smtp.is_some_and(|s| s.user.is_some())
            && smtp_password.is_none()
            && !named(&problems, "alerts.smtp.password_file")
        {
            problems.push(Problem {
                file: self.source.clone(),
                line: locate(text, "alerts.smtp", "user"),
                key: "alerts.smtp.password_file".into(),
                message: format!(
                    "no SMTP password for alerts.smtp.user: set {ENV_SMTP_PASSWORD}, alerts.smtp.password_file, or the systemd credential smtp_password"
                ),
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((
            Secrets {
                smtp_password,
                console_token,
            },
            per_account,
        ))
    }

    /// Each account's webhook secrets (current, then previous) and client secret, and for each
    /// required secret found nowhere, its key and the message saying where to set it.
    fn account_secrets(
        &self,
        reader: &mut SecretReader<'_>,
        text: &str,
        accounts: &[AccountSettings],
    ) -> (Vec<AccountSecrets>, Vec<(String, String)>) {
        let mut per_account = Vec::new();
        let mut missing = Vec::new();
        for a in accounts {
            let mut secret = |key: &str, file: &Option<PathBuf>, env: &str, credential: &str| {
                let (env, credential) = a.secret_sources(env, credential);
                reader.read(a.key(key), a.line(text, key), file, &env, &credential)
            };
            let current = secret(
                "webhook_secret_file",
                &a.webhook_secret_file,
                ENV_WEBHOOK_SECRET,
                "webhook_secret",
            );
            let previous = secret(
                "webhook_secret_previous_file",
                &a.webhook_secret_previous_file,
                ENV_WEBHOOK_SECRET_PREVIOUS,
                "webhook_secret_previous",
            );
            let client = secret(
                "client_secret_file",
                &a.client_secret_file,
                ENV_CLIENT_SECRET,
                "client_secret",
            );
            let (webhook_env, webhook_credential) =
                a.secret_sources(ENV_WEBHOOK_SECRET, "webhook_secret");
            let (client_env, client_credential) =
                a.secret_sources(ENV_CLIENT_SECRET, "client_secret");
            if current.is_none() {
                missing.push((
                    a.key("webhook_secret_file"),
                    format!("no webhook secret for the account {}: set {webhook_env}, {}, or the systemd credential {webhook_credential}", a.id, a.key("webhook_secret_file")),
                ));
            }
            if client.is_none() {
                missing.push((
                    a.key("client_secret_file"),
                    format!("no OAuth2 client secret for the account {}: set {client_env}, {}, or the systemd credential {client_credential}", a.id, a.key("client_secret_file")),
                ));
            }
            per_account.push(AccountSecrets {
                webhook: current.into_iter().chain(previous).collect(),
                client,
            });
        }
        (per_account, missing)
    }

    /// A console on an address other than loopback needs a token (unless reading the token
    /// already failed, which is reported).
    fn require_console_token(&self, text: &str, have_token: bool, problems: &mut Vec<Problem>) {
        let Some(c) = &self.console else {
            return;
        };
        let loopback = c
            .listen
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback && !have_token && !named(problems, "console.token_file") {
            problems.push(Problem {
                file: self.source.clone(),
                line: locate(text, "console", "listen"),
                key: "console.token_file".into(),
                message: format!(
                    "the console listens on {}, not a loopback address, so it needs a token: set {ENV_CONSOLE_TOKEN}, console.token_file, or the systemd credential console_token",
                    c.listen
                ),
            });
        }
    }
}

/// Reads secrets for [`Config::resolve_secrets`], collecting the problems: a secret comes from
/// its `*_file` setting if set (a file that is empty or cannot be read is a problem), else its
/// environment variable, else its systemd credential.
struct SecretReader<'a> {
    config: &'a Config,
    /// `$CREDENTIALS_DIRECTORY`, where systemd puts the unit's credentials.
    credentials: Option<PathBuf>,
    problems: Vec<Problem>,
}

impl SecretReader<'_> {
    /// One secret; `key` names the setting in messages, `line` where it is written.
    fn read(
        &mut self,
        key: String,
        line: Option<usize>,
        file: &Option<PathBuf>,
        env: &str,
        credential: &str,
    ) -> Option<Secret> {
        if let Some(f) = file {
            let f = self.config.resolve_path(f);
            let message = match std::fs::read_to_string(&f) {
                Ok(s) if !s.trim().is_empty() => return Some(Secret::new(s.trim())),
                Ok(_) => format!("{} is empty", f.display()),
                Err(e) => format!("cannot read {}: {e}", f.display()),
            };
            self.problems.push(Problem {
                file: self.config.source.clone(),
                line,
                key,
                message,
            });
            return None;
        }
        if let Ok(v) = std::env::var(env) {
            if !v.trim().is_empty() {
                return Some(Secret::new(v.trim()));
            }
        }
        let path = self.credentials.as_ref()?.join(credential);
        let s = std::fs::read_to_string(path).ok()?;
        (!s.trim().is_empty()).then(|| Secret::new(s.trim()))
    }
}

/// The default config file, when neither `--config` nor `$EDI_BRIDGE_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "/etc/edi-bridge/edi-bridge.toml";
/// Environment variable naming the config file (the default of `--config`).
pub const ENV_CONFIG: &str = "EDI_BRIDGE_CONFIG";

/// `edi-bridge SUB --config PATH ARGS`, with `config` made absolute and shell-quoted, so the
/// line works when copied whatever the reader's directory or environment.
pub fn command(config: &Path, sub: &str, args: &str) -> String {
    let path = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let path = shell_quote(&path.to_string_lossy());
    let args = if args.is_empty() {
        String::new()
    } else {
        format!(" {args}")
    };
    format!("edi-bridge {sub} --config {path}{args}")
}

/// A word for a POSIX shell: as is when it holds only safe characters, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Whether a problem was already reported for `key` (an unreadable `*_file` is one problem, not
/// two).
fn named(problems: &[Problem], key: &str) -> bool {
    problems.iter().any(|p| p.key == key)
}

/// Why `outbox.file_pattern` is not a usable file name pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PatternError {
    #[error("unclosed '{{'")]
    Unclosed,
    #[error("unknown placeholder {{{0}}}; use {{po}}, {{isa13}}, {{gs06}}, {{st02}}, {{date}}, {{account}}")]
    Placeholder(String),
    #[error("must be a plain file name (no '/', not hidden)")]
    NotPlain,
}

fn check_pattern(p: &str) -> Result<(), PatternError> {
    let mut rest = p;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            return Err(PatternError::Unclosed);
        };
        let name = &rest[start + 1..start + end];
        if !["po", "isa13", "gs06", "st02", "date", "account"].contains(&name) {
            return Err(PatternError::Placeholder(name.to_string()));
        }
        rest = &rest[start + end + 1..];
    }
    if p.contains('/') || p.starts_with('.') {
        return Err(PatternError::NotPlain);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_rules() {
        assert!(check_pattern("{po}.{isa13}.850").is_ok());
        assert!(check_pattern("{po}.{bogus}").is_err());
        assert!(check_pattern("a/{isa13}").is_err());
        assert!(check_pattern("{isa13").is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn the_single_account_webhook_path_cannot_take_another_route() {
        let base = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                    [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                    partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n";
        for (path, ok) in [
            ("/webhooks/ingram/purchase-orders", true),
            ("/hooks/po", true),
            ("/metrics", false),
            ("/webhooks/ingram/ca/purchase-orders", false),
            ("/webhooks/{x}", false),
        ] {
            let text = format!("[server]\nwebhook_path = \"{path}\"\n{base}");
            let c: Config = parse_toml(&text, Path::new("c.toml")).unwrap();
            let refused = c
                .validate(&text)
                .iter()
                .any(|p| p.key == "server.webhook_path");
            assert_eq!(refused, !ok, "{path}");
        }
    }

    #[test]
    fn listener_limits_must_be_positive_and_are_reported_at_their_line() {
        let t = "[server]\nheader_read_timeout_secs = 0\nmax_connections = 0\n\
                 max_concurrent_bodies = 0\nbody_read_timeout_secs = 0\nidle_timeout_secs = 0\n\
                 [paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                 [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                 partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n";
        let c: Config = parse_toml(t, Path::new("c.toml")).unwrap();
        let problems: Vec<(Option<usize>, String)> =
            c.validate(t).into_iter().map(|p| (p.line, p.key)).collect();
        for (line, key) in [
            (2, "server.header_read_timeout_secs"),
            (3, "server.max_connections"),
            (4, "server.max_concurrent_bodies"),
            (5, "server.body_read_timeout_secs"),
            (6, "server.idle_timeout_secs"),
        ] {
            assert!(
                problems.contains(&(Some(line), key.to_string())),
                "{key} at line {line} in {problems:?}"
            );
        }
        let d = Server::default();
        assert_eq!(
            (
                d.header_read_timeout_secs,
                d.body_read_timeout_secs,
                d.idle_timeout_secs,
                d.max_connections,
                d.max_concurrent_bodies
            ),
            (10, 30, 60, 512, 64)
        );
    }

    #[test]
    fn the_archive_is_kept_forever_by_default_and_keep_days_is_checked_at_its_line() {
        let base = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                    [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                    partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n";
        let c: Config = parse_toml(base, Path::new("c.toml")).unwrap();
        assert_eq!(c.archive.keep_days, None);
        assert_eq!(c.archive.describe(), "kept forever");
        for (days, ok) in [(0, false), (1, false), (2, true), (400, true)] {
            let t = format!("{base}[archive]\nkeep_days = {days}\n");
            let c: Config = parse_toml(&t, Path::new("c.toml")).unwrap();
            let problems = c.validate(&t);
            assert_eq!(problems.is_empty(), ok, "{days}: {problems:?}");
            if let Some(p) = problems.first() {
                // The file is the loader's to fill in; the line and key are validate's.
                assert_eq!((p.line, p.key.as_str()), (Some(15), "archive.keep_days"));
                assert!(
                    p.message.contains("at least 2") && p.message.contains("continuity"),
                    "{p}"
                );
            }
        }
        let t = format!("{base}[archive]\nkeep_days = 30\n");
        let c: Config = parse_toml(&t, Path::new("c.toml")).unwrap();
        assert_eq!(c.archive.describe(), "kept 30 days");
        let t = format!("{base}[archive]\nkeep = 30\n");
        assert!(
            parse_toml::<Config>(&t, Path::new("c.toml")).is_err(),
            "unknown key"
        );
    }

    #[test]
    fn the_store_cache_is_bounded_by_default_and_checked() {
        assert_eq!(StoreConfig::default().cache_mib, 16);
        let t = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                 [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                 partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n[store]\ncache_mib = 0\n";
        let c: Config = parse_toml(t, Path::new("c.toml")).unwrap();
        let problems: Vec<(Option<usize>, String)> =
            c.validate(t).into_iter().map(|p| (p.line, p.key)).collect();
        assert!(
            problems.contains(&(Some(15), "store.cache_mib".to_string())),
            "{problems:?}"
        );
    }

    #[test]
    fn pace_and_maintenance_windows_default_and_are_checked_at_their_line() {
        let base = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                    [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                    partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n";
        let c: Config = parse_toml(base, Path::new("c.toml")).unwrap();
        assert_eq!(c.accounts()[0].requests_per_minute, 60);
        assert!(c.accounts()[0].maintenance.is_empty() && c.validate_all(base).is_empty());
        let t = format!(
            "{base}requests_per_minute = 0\nmaintenance = [\"Mon-Fri 23:00-04:00 -08:00\", \"Sun 25:00-01:00 +00:00\"]\n"
        );
        let c: Config = parse_toml(&t, Path::new("c.toml")).unwrap();
        let problems = c.validate_all(&t);
        let found: Vec<(Option<usize>, &str, &str)> = problems
            .iter()
            .map(|p| (p.line, p.key.as_str(), p.message.as_str()))
            .collect();
        assert!(
            found.contains(&(
                Some(14),
                "ingram.requests_per_minute",
                "must be 1 to 600000"
            )),
            "{found:?}"
        );
        assert!(
            found.contains(&(
                Some(15),
                "ingram.maintenance",
                "entry 2: '25:00' is not a time like 23:00"
            )),
            "{found:?}"
        );
        let ok = format!("{base}maintenance = [\"Mon-Fri 23:00-04:00 -08:00\", \"Sat,Sun 18:00-05:00 -08:00\"]\n");
        let c: Config = parse_toml(&ok, Path::new("c.toml")).unwrap();
        assert!(c.validate_all(&ok).is_empty());
        assert_eq!(c.accounts()[0].windows().0.len(), 2);
    }

    #[test]
    fn accounts_are_checked_at_their_table_and_name_their_own_secrets() {
        let base = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                    [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                    partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n";
        let table = |id: &str| {
            format!("[[accounts]]\nid = \"{id}\"\napi_base_url = \"http://y\"\ntoken_url = \"http://y\"\nclient_id = \"c\"\npartner_id = \"CA1\"\ncountry_code = \"CAN\"\nsender_id = \"S\"\nmapping = \"m.toml\"\n")
        };
        let text = format!("{base}{}{}{}", table("ca"), table("ca"), table("Mx"));
        let c: Config = parse_toml(&text, Path::new("c.toml")).unwrap();
        let found: Vec<(Option<usize>, String, String)> = c
            .validate_all(&text)
            .into_iter()
            .map(|p| (p.line, p.key, p.message))
            .collect();
        let has = |line: usize, key: &str, msg: &str| {
            found
                .iter()
                .any(|(l, k, m)| *l == Some(line) && k == key && m.contains(msg))
        };
        assert!(
            has(20, "accounts[ca].country_code", "two letters"),
            "{found:?}"
        );
        assert!(has(24, "accounts[ca].id", "configured twice"), "{found:?}");
        assert!(
            has(33, "accounts[Mx].id", "'M' is not allowed"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(_, k, m)| k == "outbox.file_pattern" && m.contains("{account}")),
            "{found:?}"
        );
        // `default` is [ingram]'s.
        let text = format!("{base}{}", table("default"));
        let c: Config = parse_toml(&text, Path::new("c.toml")).unwrap();
        assert!(c
            .validate_all(&text)
            .iter()
            .any(|p| p.key == "accounts[default].id"));
        // Each account's secrets come from its own variable and credential.
        let a = &c.accounts()[1];
        assert_eq!(
            a.secret_sources(ENV_CLIENT_SECRET, "client_secret"),
            (
                "EDI_BRIDGE_CLIENT_SECRET_DEFAULT".into(),
                "client_secret_default".into()
            )
        );
        let ingram = &c.accounts()[0];
        assert_eq!(
            ingram.secret_sources(ENV_WEBHOOK_SECRET, "webhook_secret"),
            (ENV_WEBHOOK_SECRET.to_string(), "webhook_secret".to_string())
        );
        assert_eq!(
            ingram.key("webhook_secret_file"),
            "server.webhook_secret_file"
        );
        assert_eq!(a.webhook_path(), "/webhooks/ingram/default/purchase-orders");
    }

    #[test]
    fn the_shadow_run_keys_are_checked_at_their_line() {
        let t = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                 [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                 partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n\
                 [outbox]\nshadow_dir = \"o\"\n[migration]\nvan_dir = \"/nonexistent/van\"\nsend_calls = false\n";
        let c: Config = parse_toml(t, Path::new("c.toml")).unwrap();
        assert!(!c.migration.send_calls);
        let problems: Vec<(Option<usize>, String)> =
            c.validate(t).into_iter().map(|p| (p.line, p.key)).collect();
        assert!(
            problems.contains(&(Some(15), "outbox.shadow_dir".to_string())),
            "{problems:?}"
        );
        let dirs: Vec<String> = c.check_dirs(t).into_iter().map(|p| p.to_string()).collect();
        assert!(
            dirs.iter().any(|p| p
                .contains(":17: migration.van_dir: /nonexistent/van is not an existing directory")),
            "{dirs:?}"
        );
        let t = t.replace("shadow_dir = \"o\"\n", "");
        let c: Config = parse_toml(&t, Path::new("c.toml")).unwrap();
        let problems: Vec<String> = c.validate(&t).into_iter().map(|p| p.to_string()).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("migration.van_dir: needs [outbox] shadow_dir")),
            "{problems:?}"
        );
        assert!(Migration::default().send_calls);
    }
}
