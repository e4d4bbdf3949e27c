//! The running daemon: opens the store, binds the webhook listener, spawns every worker on one
//! `TaskTracker`, tells systemd it is ready, and shuts down in order when the token is cancelled:
//! intake first (listener), then the workers finish the item they are on, bounded by
//! `shutdown_grace_secs`. A worker that dies early is a shutdown with a reason (exit non-zero,
//! systemd restarts). Tests drive this same code through [`start`] with their own token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::Event;
use crate::from_erp::deliver::Deliverer;
use crate::from_erp::inbox::Dirs;
use crate::from_erp::watcher::Inbox;
use crate::ingram::api::{ApiClient, ApiSettings};
use crate::load::Loaded;
use crate::mapping::SharedMapping;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::to_erp::outbox::Outbox;
use crate::to_erp::webhook::{self, WebhookState};

/// A started daemon.
pub struct Running {
    /// The address the webhook listener is bound to.
    pub addr: SocketAddr,
    /// The console's address, when `[console]` is set.
    pub console_addr: Option<SocketAddr>,
    /// Counts the batches of activity the console wrote to the store (when `[console]` is set):
    /// a wait for what the home page will show.
    pub console_recorded: Option<tokio::sync::watch::Receiver<u64>>,
    pub store: Store,
    pub mapping: SharedMapping,
    /// Progress events (850 written, …) for tests, the demo and operators' tooling.
    pub events: tokio::sync::broadcast::Sender<Event>,
    /// The clock the daemon ages records by (tests move it forward).
    pub clock: crate::clock::Clock,
    /// The workers' liveness stamps; with the store's health they decide the watchdog.
    pub liveness: Arc<crate::notify::Liveness>,
    /// Each account's bundle (limiter, mapping, client).
    pub accounts: crate::accounts::Accounts,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    failure: Arc<Mutex<Option<String>>>,
    grace: Duration,
}

/// Runs the daemon until `shutdown` is cancelled (or a task dies).
pub async fn run(loaded: Loaded, shutdown: CancellationToken) -> anyhow::Result<()> {
    // What the daemon creates without an explicit mode (the store's files, backups) is private;
    // everything it writes for the ERP is created with its mode set explicitly (`files`).
    crate::files::private_umask();
    start(loaded, shutdown).await?.wait().await
}

/// Starts everything and returns once the store is open and the listener bound.
pub async fn start(loaded: Loaded, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let Loaded {
        config,
        accounts,
        secrets,
    } = loaded;
    if let Some(days) = config.store.dedupe_days {
        tracing::warn!(dedupe_days = days, "[store] dedupe_days is ignored: accepted events and PO numbers are remembered for the life of the store.");
    }
    let sandbox = sandbox(&config)?;
    let clock = crate::clock::Clock::system();
    let accounts = bundles(&config, accounts, &sandbox, &clock)?;
    let client = accounts.primary().client.clone();
    let dirs = open_dirs(&config, &accounts)?;
    let store = open_store(&config).await?;
    check_continuity(&config, &accounts, &store).await?;
    let shared = TaskShared::new(&config, store, accounts, clock);
    let tasks = Tasks {
        tracker: TaskTracker::new(),
        shutdown,
        failure: Arc::default(),
    };

    let (addr, budget) = start_listener(&config, &shared, &tasks)?;
    let migration = shadow_state(&config);
    let console = start_console(
        &config, &secrets, &dirs, &client, &shared, &tasks, &migration,
    )?;
    let (console_addr, console_recorded) = console.unzip();
    start_outbox(&config, &dirs, &shared, &tasks)?;
    start_archive_retention(&config, dirs.archive.clone(), &shared, &tasks);
    start_inbox(&config, dirs, &shared, &tasks)?;
    if config.migration.send_calls {
        start_deliverer(&config, &shared, &tasks);
    }
    start_migration(&config, &shared, &tasks, migration)?;
    start_metrics(&config, &shared, &tasks);
    start_alerts(&config, &secrets, &shared, &tasks);
    start_pruner(&config, &shared, &tasks);
    start_admin(&config, &shared, &tasks)?;
    make_state_private(&config);

    let TaskShared {
        store,
        mapping,
        events,
        clock,
        liveness,
        accounts,
        ..
    } = shared;
    let Tasks {
        tracker,
        shutdown,
        failure,
    } = tasks;
    crate::notify::ready(&tracker, &shutdown, store.clone(), liveness.clone());
    tracing::info!(listen = %addr, max_connections = budget.connections, descriptor_limit = ?budget.soft, path = %config.server.webhook_path, state = %config.paths.state.display(), outbox = %config.paths.outbox.display(), "edi-bridge started.");
    if let Some(a) = console_addr {
        tracing::info!(console = %a, login = secrets.console_token.is_some(), "Console listening.");
    }
    Ok(Running {
        addr,
        console_addr,
        console_recorded,
        store,
        mapping,
        events,
        clock,
        liveness,
        accounts,
        tracker,
        shutdown,
        failure,
        grace: Duration::from_secs(config.shutdown_grace_secs),
    })
}

/// The mapping's programs run in worker processes under its `[limits]`, never on the runtime:
/// `program_worker` if a caller (an integration test) names one, else this executable.
fn sandbox(config: &crate::config::Config) -> anyhow::Result<crate::program::Sandbox> {
    Ok(match &config.program_worker {
        Some(exe) => crate::program::Sandbox::new(exe),
        None => crate::program::Sandbox::this_binary()
            .context("cannot find the edi-bridge executable for the program workers")?,
    })
}

/// The shadow run's state, for the console (empty unless `[outbox] shadow_dir` is set).
fn shadow_state(config: &crate::config::Config) -> crate::migrate::shadow::ShadowState {
    crate::migrate::shadow::ShadowState::configured(
        config
            .outbox
            .shadow_dir
            .as_ref()
            .map(|p| p.display().to_string()),
        config
            .migration
            .van_dir
            .as_ref()
            .map(|p| p.display().to_string()),
        config.migration.send_calls,
    )
}

/// What exists in the state directory once everything has started (the store, the key, the
/// socket; files an older version left open to others) is made private.
fn make_state_private(config: &crate::config::Config) {
    match crate::files::make_private(&config.paths.state) {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(entries = n, state = %config.paths.state.display(), "State directory entries made private (files 0600, directories 0700).")
        }
        Err(e) => {
            tracing::warn!(error = %e, state = %config.paths.state.display(), "Cannot make the state directory's entries private.")
        }
    }
}

/// What the tasks share.
struct TaskShared {
    store: Store,
    mapping: SharedMapping,
    metrics: Arc<Metrics>,
    events: tokio::sync::broadcast::Sender<Event>,
    clock: crate::clock::Clock,
    liveness: Arc<crate::notify::Liveness>,
    outbox_wake: Arc<Notify>,
    deliver_wake: Arc<Notify>,
    /// Every account's bundle.
    accounts: crate::accounts::Accounts,
}

impl TaskShared {
    /// The shared parts, with the metrics' alert thresholds from `[alerts]`.
    fn new(
        config: &crate::config::Config,
        store: Store,
        accounts: crate::accounts::Accounts,
        clock: crate::clock::Clock,
    ) -> TaskShared {
        let shared = TaskShared {
            metrics: Arc::new(Metrics::new(crate::metrics::Alerts {
                error_dir: Some(config.paths.error.clone()),
                config: Some(config.source.clone()),
                missing_997_hours: config.alerts.missing_997_hours,
                no_inbound_hours: config.alerts.no_inbound_hours,
                shadow: config.outbox.shadow_dir.is_some(),
                clock: clock.clone(),
            })),
            store,
            mapping: accounts.primary().mapping.clone(),
            events: tokio::sync::broadcast::channel(4096).0,
            clock,
            liveness: Arc::new(crate::notify::Liveness::default()),
            outbox_wake: Arc::new(Notify::new()),
            deliver_wake: Arc::new(Notify::new()),
            accounts,
        };
        shared.metrics.set_accounts(shared.accounts.clone());
        shared
    }
}

pub use crate::domain::DEFAULT_ACCOUNT;

/// Each account's bundle: its mapping (programs in worker processes under its `[limits]`),
/// API client, limiter and outbox.
fn bundles(
    config: &crate::config::Config,
    loaded: Vec<crate::load::LoadedAccount>,
    sandbox: &crate::program::Sandbox,
    clock: &crate::clock::Clock,
) -> anyhow::Result<crate::accounts::Accounts> {
    let mut out = Vec::new();
    for a in loaded {
        let id = a.account.id.clone();
        let client = api_client(&a.account, &a.secrets)
            .with_context(|| format!("account {id}"))?
            .with_clock(clock.clone());
        let outbox_dir = match &config.outbox.shadow_dir {
            // Shadow mode: every file the outbox worker writes goes there instead.
            Some(shadow) => shadow.clone(),
            None => config.outbox_of(&a.account),
        };
        out.push(crate::accounts::Account {
            limiter: Arc::new(crate::pacing::Limiter::new(
                &id,
                a.account.requests_per_minute,
                a.account.windows(),
                clock.clone(),
            )),
            mapping: SharedMapping::new(a.mapping.sandboxed(sandbox.clone())),
            mapping_path: config.resolve_path(&a.account.mapping),
            webhook_secrets: Arc::new(a.secrets.webhook.clone()),
            partner: Arc::new(client.clone()),
            client,
            outbox_dir,
            settings: a.account,
            id,
        });
    }
    Ok(crate::accounts::Accounts::new(out))
}

/// The ERP's directories, which must exist (never created: only the daemon's own
/// subdirectories inside them are); the workers reopen each one (`files::Root`) for every round
/// and reach what is inside only through that handle.
struct ErpDirs {
    /// Each account's outbox (the shadow directory in a shadow run), by account id.
    outboxes: std::collections::BTreeMap<String, crate::files::Root>,
    inbox: crate::files::Root,
    archive: crate::files::Root,
    error: crate::files::Root,
    temp_key: crate::files::TempKey,
}

fn open_dirs(
    config: &crate::config::Config,
    accounts: &crate::accounts::Accounts,
) -> anyhow::Result<ErpDirs> {
    let open = |key: &str, dir: &std::path::Path| {
        crate::files::Root::existing(dir).with_context(|| {
            format!(
                "paths.{key}: the ERP's directory {} must exist (edi-bridge never creates it)",
                dir.display()
            )
        })
    };
    if let Some(problem) = crate::files::state_dir_problem(&config.paths.state) {
        anyhow::bail!("{problem}");
    }
    let state_dir_handle =
        crate::files::Dir::open(&config.paths.state, crate::files::PRIVATE_DIR_MODE)
            .with_context(|| format!("cannot open {}", config.paths.state.display()))?;
    Ok(ErpDirs {
        outboxes: accounts
            .iter()
            .map(|a| {
                let key = match (&config.outbox.shadow_dir, &a.settings.outbox) {
                    (Some(_), _) => "outbox.shadow_dir".to_string(),
                    (None, Some(_)) => a.settings.key("outbox"),
                    (None, None) => "paths.outbox".to_string(),
                };
                let root = crate::files::Root::existing(&a.outbox_dir).with_context(|| {
                    format!(
                        "{key}: the directory {} must exist (edi-bridge never creates it)",
                        a.outbox_dir.display()
                    )
                })?;
                Ok((a.id.clone(), root))
            })
            .collect::<anyhow::Result<_>>()?,
        inbox: open("inbox", &config.paths.inbox)?,
        archive: open("archive", &config.paths.archive)?,
        error: open("error", &config.paths.error)?,
        temp_key: crate::files::TempKey::load_or_create(&state_dir_handle)
            .context("cannot read or create the outbox temp-name key in the state directory")?,
    })
}

/// Opens the store, waiting out a store that cannot open yet (a full disk).
async fn open_store(config: &crate::config::Config) -> anyhow::Result<Store> {
    let state_dir = config.paths.state.clone();
    let options = crate::store::StoreOptions {
        cache_bytes: config.store.cache_mib.saturating_mul(1024 * 1024),
    };
    tokio::task::spawn_blocking(move || Store::open_or_wait(&state_dir, options))
        .await?
        .with_context(|| {
            format!(
                "cannot open the state store in {}",
                config.paths.state.display()
            )
        })
}

/// Refuses to start on a store that has gone backwards (see [`crate::continuity`]): it would
/// hand out control numbers the ERP has already seen, or write a PO again.
async fn check_continuity(
    config: &crate::config::Config,
    accounts: &crate::accounts::Accounts,
    store: &Store,
) -> anyhow::Result<()> {
    let (outboxes, archive, st) = (
        config.outboxes(),
        config.paths.archive.clone(),
        store.clone(),
    );
    let pairs = accounts.pairs();
    let gaps = tokio::task::spawn_blocking(move || {
        let mut written =
            crate::continuity::gather(&outboxes, &archive, crate::continuity::Scope::Recent)?;
        crate::continuity::in_accounts(&mut written, &pairs);
        anyhow::Ok(crate::continuity::check(&st, &written))
    })
    .await??;
    let gaps = match gaps {
        Ok(g) => g,
        // A store that cannot be opened yet (a full disk) starts closed and failing; it is
        // checked when it can be read, at the next start.
        Err(crate::store::StoreError::Unavailable(why)) => {
            tracing::warn!(reason = %why, "The store's continuity check is skipped: it cannot be read yet.");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if gaps.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = gaps.iter().take(10).map(|g| format!("  - {g}")).collect();
    anyhow::bail!(
        "the state store in {} is behind what it already wrote to the outbox and the archive ({} finding(s); a torn disk, or a restore from an older backup):\n{}\nStarting would reuse control numbers or write POs again. Stop, then run `edi-bridge store repair --config {}`, which adopts what the outbox and the archive prove, and start again",
        config.paths.state.display(),
        gaps.len(),
        shown.join("\n"),
        config.source.display()
    )
}

/// Binds the public listener and serves the webhook router on it.
fn start_listener(
    config: &crate::config::Config,
    shared: &TaskShared,
    tasks: &Tasks,
) -> anyhow::Result<(SocketAddr, crate::listener::DescriptorBudget)> {
    let budget = crate::listener::descriptor_budget(config.server.max_connections);
    let listener = crate::listener::bind(config.listen_addr())
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let app = webhook::router(
        WebhookState {
            store: shared.store.clone(),
            accounts: shared.accounts.clone(),
            outbox_wake: shared.outbox_wake.clone(),
            metrics: shared.metrics.clone(),
            request_timeout: Duration::from_secs(config.server.request_timeout_secs),
            clock: shared.clock.clone(),
            bodies: webhook::BodyLimits {
                slots: Arc::new(tokio::sync::Semaphore::new(
                    config.server.max_concurrent_bodies,
                )),
                read_timeout: Duration::from_secs(config.server.body_read_timeout_secs),
                max_bytes: config.server.max_body_bytes,
            },
        },
        &config.server.webhook_path,
        config.server.max_body_bytes,
    );
    let limits = crate::listener::ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        max_connections: budget.connections,
        reclaim_waiting: false,
    };
    tasks.spawn(
        "webhook listener",
        crate::listener::serve(
            listener,
            app,
            limits,
            shared.metrics.clone(),
            tasks.shutdown.clone(),
        ),
    );
    Ok((addr, budget))
}

/// Binds the console's own listener (`[console]`) and serves it with small limits of its own.
fn start_console(
    config: &crate::config::Config,
    secrets: &crate::config::Secrets,
    dirs: &ErpDirs,
    client: &ApiClient,
    shared: &TaskShared,
    tasks: &Tasks,
    migration: &crate::migrate::shadow::ShadowState,
) -> anyhow::Result<Option<(SocketAddr, tokio::sync::watch::Receiver<u64>)>> {
    let Some(c) = &config.console else {
        return Ok(None);
    };
    let listener = crate::listener::bind(c.listen_addr())
        .with_context(|| format!("cannot listen on {} (console.listen)", c.listen))?;
    let addr = listener.local_addr()?;
    let token = secrets
        .console_token
        .as_ref()
        .map(|t| t.expose().to_string());
    if token.is_none() {
        tracing::warn!(console = %addr, "The console has no token: anyone who can reach this loopback address can use it. Set EDI_BRIDGE_CONSOLE_TOKEN, console.token_file or the credential console_token.");
    }
    let state = crate::console::ConsoleState::new(
        shared.store.clone(),
        crate::console::data::ConsoleDirs {
            inbox: dirs.inbox.clone(),
            error: dirs.error.clone(),
            archive: dirs.archive.clone(),
        },
        token.as_deref(),
        shared.events.clone(),
        Some(client.clone()),
        shared.deliver_wake.clone(),
        shared.clock.clone(),
        config.alerts.missing_997_hours,
        c.page_size,
        tasks.shutdown.clone(),
    )
    .with_migration(migration.clone())
    .with_accounts(shared.accounts.iter().map(|a| a.id.clone()).collect());
    let recorded = state.recorded.subscribe();
    tasks.spawn("console activity", crate::console::follow(state.clone()));
    let limits = crate::listener::ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        max_connections: CONSOLE_CONNECTIONS,
        // A small cap that idle or slow clients must not fill: the operator's page gets in.
        reclaim_waiting: true,
    };
    // Its connection counters are its own, so the webhook listener's metrics stay the webhook's.
    let listener_metrics = Arc::new(Metrics::new(crate::metrics::Alerts::default()));
    tasks.spawn(
        "console listener",
        crate::listener::serve(
            listener,
            crate::console::router(state),
            limits,
            listener_metrics,
            tasks.shutdown.clone(),
        ),
    );
    Ok(Some((addr, recorded)))
}

/// Connections the console serves at once (each open page holds one for its event stream); at
/// the cap the longest-waiting one is closed for a new client (`Limits::reclaim_waiting`).
const CONSOLE_CONNECTIONS: usize = 64;

fn start_outbox(
    config: &crate::config::Config,
    dirs: &ErpDirs,
    shared: &TaskShared,
    tasks: &Tasks,
) -> anyhow::Result<()> {
    let outbox = Outbox {
        store: shared.store.clone(),
        accounts: shared
            .accounts
            .iter()
            .map(|a| crate::to_erp::outbox::OutboxAccount {
                id: a.id.clone(),
                mapping: a.mapping.clone(),
                dir: dirs.outboxes[&a.id].clone(),
            })
            .collect(),
        archive_dir: config.outbox.archive_copy.then(|| dirs.archive.clone()),
        temp_key: dirs.temp_key.clone(),
        file_pattern: config.outbox.file_pattern.clone(),
        retry: Duration::from_secs(config.outbox.retry_secs.max(1)),
        wake: shared.outbox_wake.clone(),
        metrics: shared.metrics.clone(),
        events: shared.events.clone(),
        background: crate::background::Background::spawn("outbox", config.outbox.nice)
            .context("cannot start the outbox thread")?,
        live: shared.liveness.stamp("outbox worker"),
        paused: config.outbox.paused,
    };
    tasks.spawn("outbox worker", outbox.run(tasks.shutdown.clone()));
    Ok(())
}

fn start_inbox(
    config: &crate::config::Config,
    dirs: ErpDirs,
    shared: &TaskShared,
    tasks: &Tasks,
) -> anyhow::Result<()> {
    let inbox = Inbox {
        store: shared.store.clone(),
        accounts: shared.accounts.clone(),
        inbox: dirs.inbox,
        dirs: Dirs {
            archive: dirs.archive,
            error: dirs.error,
            max_file_bytes: config.inbox.max_file_bytes,
        },
        settle: Duration::from_millis(config.inbox.settle_ms),
        rescan: Duration::from_secs(config.inbox.rescan_secs.max(1)),
        incomplete_timeout: Duration::from_secs(config.inbox.incomplete_timeout_secs),
        ignore: config.inbox.ignore.clone(),
        deliver_wake: shared.deliver_wake.clone(),
        outbox_wake: shared.outbox_wake.clone(),
        events: shared.events.clone(),
        metrics: shared.metrics.clone(),
        live: shared.liveness.stamp("inbox watcher"),
    };
    // The watch starts before READY, so a file written right after it is seen.
    let watch = inbox.watch()?;
    tasks.spawn("inbox watcher", inbox.run(watch, tasks.shutdown.clone()));
    Ok(())
}

fn start_deliverer(config: &crate::config::Config, shared: &TaskShared, tasks: &Tasks) {
    // Each account gets its own lane.
    let deliverer = Deliverer {
        store: shared.store.clone(),
        accounts: shared
            .accounts
            .iter()
            .map(|a| crate::from_erp::deliver::DeliveryAccount {
                id: a.id.clone(),
                partner: a.partner.clone(),
                limiter: a.limiter.clone(),
                mapping: a.mapping.clone(),
            })
            .collect(),
        workers: config.delivery.workers,
        backoff_base: Duration::from_millis(config.delivery.backoff_base_ms),
        backoff_max: Duration::from_secs(config.delivery.backoff_max_secs.max(1)),
        wake: shared.deliver_wake.clone(),
        events: shared.events.clone(),
        live: shared.liveness.stamp("deliver worker"),
        clock: shared.clock.clone(),
    };
    tasks.spawn("deliver worker", deliverer.run(tasks.shutdown.clone()));
}

/// Shadow mode (README "Moving from your VAN"): the comparer of shadow and VAN 850s when
/// `[migration] van_dir` is set, and the call recorder in place of the delivery workers when
/// `[migration] send_calls = false`.
fn start_migration(
    config: &crate::config::Config,
    shared: &TaskShared,
    tasks: &Tasks,
    state: crate::migrate::shadow::ShadowState,
) -> anyhow::Result<()> {
    if let (Some(shadow), Some(van)) = (&config.outbox.shadow_dir, &config.migration.van_dir) {
        let root = |key: &str, p: &std::path::Path| {
            crate::files::Root::existing(p)
                .with_context(|| format!("{key}: the directory {} must exist", p.display()))
        };
        let comparer = crate::migrate::shadow::Shadow {
            shadow_dir: root("outbox.shadow_dir", shadow)?,
            van_dir: root("migration.van_dir", van)?,
            accounts: shared.accounts.clone(),
            metrics: shared.metrics.clone(),
            state: state.clone(),
            events: shared.events.clone(),
            rescan: Duration::from_secs(config.inbox.rescan_secs.clamp(1, 60)),
        };
        tasks.spawn("shadow comparer", comparer.run(tasks.shutdown.clone()));
    }
    if !config.migration.send_calls {
        let recorder = crate::migrate::shadow::Recorder {
            store: shared.store.clone(),
            accounts: shared.accounts.clone(),
            state,
            wake: shared.deliver_wake.clone(),
            events: shared.events.clone(),
        };
        tasks.spawn("call recorder", recorder.run(tasks.shutdown.clone()));
    }
    Ok(())
}

/// Metrics follow the event stream; alerts are checked on a timer.
fn start_metrics(config: &crate::config::Config, shared: &TaskShared, tasks: &Tasks) {
    let mut rx = shared.events.subscribe();
    let (m, stop, st) = (
        shared.metrics.clone(),
        tasks.shutdown.clone(),
        shared.store.clone(),
    );
    let alert_every = Duration::from_secs(config.alerts.check_interval_secs.max(1));
    tasks.spawn("metrics", async move {
        let mut tick = tokio::time::interval(alert_every);
        tick.tick().await;
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Ok(e) => m.observe(&e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "Metrics fell behind the event stream."),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tick.tick() => {
                    let (m, st) = (m.clone(), st.clone());
                    tokio::task::spawn_blocking(move || m.check_alerts(&st)).await?;
                }
                _ = stop.cancelled() => return Ok(()),
            }
        }
    });
}

/// Alerts: events that call for one are raised at once; conditions are looked at on the alert
/// timer and raised when first seen. The sender runs on its own task and never blocks these.
fn start_alerts(
    config: &crate::config::Config,
    secrets: &crate::config::Secrets,
    shared: &TaskShared,
    tasks: &Tasks,
) {
    let alerts = crate::alerts::AlertSender::with_counts(shared.metrics.alert_channel.clone());
    let email = config.alerts.smtp.as_ref().map(|s| crate::alerts::Email {
        host: s.host.clone(),
        port: s.port,
        tls: s.tls,
        credentials: s.user.clone().zip(secrets.smtp_password.clone()),
        from: s.from.clone(),
        to: s.to.clone(),
    });
    let channel =
        (config.alerts.webhook_url.is_some() || email.is_some()).then(|| crate::alerts::Channel {
            webhook_url: config.alerts.webhook_url.clone(),
            email,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(2),
        });
    tasks.spawn(
        "alert sender",
        crate::alerts::run(alerts.clone(), channel, tasks.shutdown.clone()),
    );
    let every = Duration::from_secs(config.alerts.check_interval_secs.max(1));
    let watcher = AlertWatcher::new(config, shared, alerts, every);
    let rx = shared.events.subscribe();
    tasks.spawn(
        "alert watcher",
        watcher.run(rx, every, tasks.shutdown.clone()),
    );
}

/// The longest wait for more dead letters of one cause before their alert goes out.
const DEAD_LETTER_QUIET: Duration = Duration::from_secs(30);

/// The alert watcher task: what it raises alerts through, what it reads, its thresholds, and
/// what it has seen so far. One method per kind of wake-up.
struct AlertWatcher {
    alerts: crate::alerts::AlertSender,
    ctx: crate::alerts::Context,
    /// Every account's id: alerts about the whole bridge name every account; one about a PO, a
    /// call or an API names its own.
    all: String,
    metrics: Arc<Metrics>,
    store: Store,
    clock: crate::clock::Clock,
    accounts: crate::accounts::Accounts,
    /// Shadow 850s never reach the ERP: no 997 comes back for them, and none is overdue.
    shadow: bool,
    /// Dead letters of one cause are collected until none came for this long, then sent as one.
    quiet: Duration,
    unreachable_ms: u64,
    hours_997: u64,
    hours_inbound: u64,
    open_days: u64,
    conditions: crate::alerts::Conditions,
    dead: crate::alerts::DeadLetters,
    /// Each account's API is down or up on its own.
    outages: Vec<crate::alerts::Outage>,
    /// The ERP's rejections of 850s are counted; a new one is an event alert, raised when the
    /// inbox file that carried it is processed.
    rejected_before: std::collections::BTreeSet<String>,
}

impl AlertWatcher {
    fn new(
        config: &crate::config::Config,
        shared: &TaskShared,
        alerts: crate::alerts::AlertSender,
        every: Duration,
    ) -> AlertWatcher {
        let all = shared
            .accounts
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        AlertWatcher {
            alerts,
            ctx: crate::alerts::Context {
                account: all.clone(),
                config: config.source.clone(),
                console_url: config.console.as_ref().and_then(|c| c.public_url.clone()),
            },
            all,
            metrics: shared.metrics.clone(),
            store: shared.store.clone(),
            clock: shared.clock.clone(),
            accounts: shared.accounts.clone(),
            shadow: config.outbox.shadow_dir.is_some(),
            quiet: every.min(DEAD_LETTER_QUIET),
            unreachable_ms: config.alerts.api_unreachable_minutes.saturating_mul(60_000),
            hours_997: config.alerts.missing_997_hours,
            hours_inbound: config.alerts.no_inbound_hours,
            open_days: config.alerts.open_po_days,
            conditions: Default::default(),
            dead: Default::default(),
            outages: shared.accounts.iter().map(|_| Default::default()).collect(),
            rejected_before: Default::default(),
        }
    }

    /// Watches events and timers until shutdown (or the event stream closes).
    async fn run(
        mut self,
        mut rx: tokio::sync::broadcast::Receiver<Event>,
        every: Duration,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(every);
        // The store's health is a published snapshot, cheap to read: watched every few seconds,
        // not at the (minutes-long) check interval, which a watchdog restart would cut short.
        let mut health_tick = tokio::time::interval(crate::alerts::STORE_HEALTH_EVERY);
        let mut group_tick = tokio::time::interval(self.quiet);
        let st = self.store.clone();
        self.rejected_before = tokio::task::spawn_blocking(move || st.erp_rejected_pos())
            .await?
            .unwrap_or_default();
        loop {
            let mut check_outage = false;
            let check_rejections = tokio::select! {
                e = rx.recv() => match e {
                    Ok(e) => {
                        self.on_event(&e);
                        check_outage = matches!(e, crate::events::Event::Delivery { .. });
                        matches!(e, crate::events::Event::InboxFile { .. })
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "Alerts fell behind the event stream.");
                        true
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = group_tick.tick() => {
                    self.send_dead_letters();
                    false
                }
                _ = health_tick.tick() => {
                    self.check_store_health();
                    check_outage = true;
                    false
                }
                _ = tick.tick() => {
                    self.check_conditions().await?;
                    true
                }
                _ = stop.cancelled() => return Ok(()),
            };
            if check_outage {
                self.check_outages();
            }
            if check_rejections {
                self.check_rejections().await?;
            }
        }
    }

    /// An event: its own alert, if it calls for one; a dead letter is collected.
    fn on_event(&mut self, e: &Event) {
        if let Some(a) = crate::alerts::for_event(e, &self.ctx.with_account(&self.all)) {
            self.alerts.raise(a);
        }
        if let Some(d) = crate::alerts::DeadLetter::of(e) {
            self.dead.add(d, self.clock.now_ms());
        }
    }

    /// The dead letters whose cause has gone quiet, one alert per cause.
    fn send_dead_letters(&mut self) {
        if self.dead.is_empty() {
            return;
        }
        let quiet_ms = self.quiet.as_millis() as u64;
        for a in self.dead.due(self.clock.now_ms(), quiet_ms, &self.ctx) {
            self.alerts.raise(a);
        }
    }

    /// The store failing or stuck.
    fn check_store_health(&mut self) {
        let problem = self
            .store
            .health()
            .problem(crate::alerts::STORE_STUCK_AFTER);
        let holds = problem.is_some();
        let text = format!(
            "edi-bridge, account {}: the state store {}; intake answers 503 until it recovers",
            self.ctx.account,
            problem.unwrap_or_default()
        );
        if let Some(a) = self.conditions.observe("store", holds, text) {
            self.alerts.raise(a);
        }
    }

    /// The conditions looked at on the alert timer: POs open too long, overdue 997s, no inbound
    /// files.
    async fn check_conditions(&mut self) -> anyhow::Result<()> {
        let (ctx, open_days, hours_997, hours_inbound) = (
            &self.ctx,
            self.open_days,
            self.hours_997,
            self.hours_inbound,
        );
        let (m, st) = (self.metrics.clone(), self.store.clone());
        let values = tokio::task::spawn_blocking(move || m.alert_values(&st)).await?;
        let crate::metrics::AlertValues {
            missing_997: overdue,
            secs_since_inbound: since,
            ..
        } = values;
        let (st, cutoff) = (
            self.store.clone(),
            self.clock.now_ms().saturating_sub(open_days * 86_400_000),
        );
        let expect_997 = self.accounts.expect_997(self.shadow);
        let open = tokio::task::spawn_blocking(move || st.open_before(cutoff, expect_997, 3))
            .await?
            .unwrap_or_default();
        let oldest: Vec<String> = open
            .oldest
            .iter()
            .map(|(o, why)| format!("{} ({why})", crate::text::escape(&o.shown())))
            .collect();
        for (kind, holds, text) in [
            ("open_pos", open.count > 0, format!("edi-bridge, account {}: {} PO(s) still open after {open_days} days, oldest: {}.\nWhat each waits for: {}\nOne that will never finish: {}", ctx.account, open.count, oldest.join(", "), ctx.command("show", "PO"), ctx.command("close", "PO --reason 'why'"))),
            ("overdue_997", overdue > 0, format!("edi-bridge, account {}: {overdue} 850(s) have no 997 from the ERP after {hours_997} h.\nWhich: {}", ctx.account, ctx.command("status", "--state 850_written"))),
            ("no_inbound", since >= hours_inbound * 3600, format!("edi-bridge, account {}: no 855, 856 or 997 from the ERP for {} h.\nIs the ERP still writing its files to the inbox? Recent files: {}", ctx.account, since / 3600, ctx.command("status", "--limit 20"))),
        ] {
            if let Some(a) = self.conditions.observe(kind, holds, text) {
                self.alerts.raise(a);
            }
        }
        Ok(())
    }

    /// Each account's API: unreachable for too long, or back.
    fn check_outages(&mut self) {
        for (account, outage) in self.accounts.iter().zip(self.outages.iter_mut()) {
            let mut reach = account.client.health().snapshot();
            let now = self.clock.now_ms();
            // A declared maintenance window is no outage: none is alerted while one is
            // open, and one that began before it counts from its close.
            let counted = match reach.unanswered_since_ms {
                Some(since) => account.limiter.outage_counts_from(since, now).map(Some),
                None => Some(None),
            };
            if let Some(since) = counted {
                reach.unanswered_since_ms = since;
                let queued = if since.is_some() {
                    self.store.job_count()
                } else {
                    0
                };
                let ctx = self.ctx.with_account(&account.id);
                if let Some(a) = outage.observe(&reach, now, self.unreachable_ms, queued, &ctx) {
                    self.alerts.raise(a);
                }
            }
        }
    }

    /// Each PO the ERP newly refused is named, with what refused it.
    async fn check_rejections(&mut self) -> anyhow::Result<()> {
        let (st, before) = (self.store.clone(), self.rejected_before.clone());
        let found = tokio::task::spawn_blocking(move || {
            let now = st.erp_rejected_pos()?;
            let new: Vec<(String, String)> = now
                .difference(&before)
                .map(|po| {
                    let detail = st
                        .order(po)
                        .ok()
                        .flatten()
                        .and_then(|o| {
                            o.history
                                .iter()
                                .rev()
                                .find(|h| {
                                    h.what.starts_with("997 from ERP")
                                        || h.what.starts_with("TA1 from ERP")
                                })
                                .map(|h| h.what.clone())
                        })
                        .unwrap_or_else(|| "rejected".into());
                    (po.clone(), detail)
                })
                .collect();
            Ok::<_, crate::store::StoreError>((now, new))
        })
        .await?;
        match found {
            Ok((now, new)) => {
                for (po, detail) in new {
                    self.alerts
                        .raise(crate::alerts::erp_rejected(&po, &detail, &self.ctx));
                }
                self.rejected_before = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the ERP's rejections for alerts; tried again at the next check.")
            }
        }
        Ok(())
    }
}

/// Retention: prunes old, finished POs in small batches (one short transaction each), once
/// an hour and once soon after start, by the daemon's clock.
fn start_pruner(config: &crate::config::Config, shared: &TaskShared, tasks: &Tasks) {
    let shadow = config.outbox.shadow_dir.is_some();
    // Small transactions with a pause between them, so intake (which needs the same trees)
    // never waits long behind one: 250 POs a second, far above any daily volume.
    const BATCH: usize = 25;
    const PAUSE: Duration = Duration::from_millis(100);
    let (store, clock, stop, accounts) = (
        shared.store.clone(),
        shared.clock.clone(),
        tasks.shutdown.clone(),
        shared.accounts.clone(),
    );
    let day = Duration::from_secs(86_400);
    let retention = day * config.store.retention_days.min(100_000) as u32;
    tasks.spawn("retention", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            loop {
                let (st, now) = (store.clone(), clock.now_ms());
                let expect_997 = accounts.expect_997(shadow);
                let round = tokio::task::spawn_blocking(move || {
                    st.prune(now, retention, expect_997, BATCH)
                })
                .await?;
                match round {
                    Ok(p) if p.orders > 0 => {
                        tracing::info!(pos = p.orders, "Retention pruned finished POs.");
                        if p.orders < BATCH {
                            break;
                        }
                    }
                    Ok(_) => break,
                    // A store that cannot write now is retried at the next round.
                    Err(e) => {
                        tracing::warn!(error = %e, "Retention round failed; tried again in an hour.");
                        break;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(PAUSE) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        }
    });
}

/// Archive retention (`[archive] keep_days`; nothing runs when it is unset): once soon after
/// start, then hourly, by the daemon's clock, on a blocking thread. Logs each day directory it
/// removed, and publishes [`Event::ArchivePruned`] for a round that found something.
fn start_archive_retention(
    config: &crate::config::Config,
    archive: crate::files::Root,
    shared: &TaskShared,
    tasks: &Tasks,
) {
    let Some(keep_days) = config.archive.keep_days else {
        return;
    };
    let (clock, events, stop) = (
        shared.clock.clone(),
        shared.events.clone(),
        tasks.shutdown.clone(),
    );
    tasks.spawn("archive retention", async move {
        let mut tick = tokio::time::interval(crate::archive::INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            let (root, now) = (archive.clone(), clock.now_ms());
            let round =
                tokio::task::spawn_blocking(move || crate::archive::prune(&root, now, keep_days))
                    .await?;
            match round {
                Ok(p) => log_archive_round(&p, keep_days, &events),
                // An archive that cannot be read now is tried again at the next round.
                Err(e) => {
                    tracing::warn!(error = %e, "Archive retention round failed; tried again in an hour.")
                }
            }
        }
    });
}

fn log_archive_round(
    p: &crate::archive::PrunedDays,
    keep_days: u64,
    events: &tokio::sync::broadcast::Sender<Event>,
) {
    for (day, r) in &p.days {
        tracing::info!(day = %day, files = r.files, bytes = r.bytes, other = r.other, keep_days, "Archive retention removed a day directory.");
    }
    for problem in &p.problems {
        tracing::warn!(problem = %crate::text::escape(problem), "Archive retention could not remove a day directory; tried again in an hour.");
    }
    if !p.days.is_empty() || !p.problems.is_empty() {
        let total = p.total();
        let _ = events.send(Event::ArchivePruned {
            days: p.days.len(),
            files: total.files,
            bytes: total.bytes,
            problems: p.problems.len(),
        });
    }
}

/// The operators' admin socket and the mapping's hot reload.
fn start_admin(
    config: &crate::config::Config,
    shared: &TaskShared,
    tasks: &Tasks,
) -> anyhow::Result<()> {
    let admin_state = crate::admin::AdminState {
        store: shared.store.clone(),
        accounts: shared.accounts.iter().map(|a| a.id.clone()).collect(),
        mappings: shared
            .accounts
            .iter()
            .map(|a| (a.mapping.clone(), a.mapping_path.clone()))
            .collect(),
        config_path: config.source.clone(),
        outbox_wake: shared.outbox_wake.clone(),
        deliver_wake: shared.deliver_wake.clone(),
    };
    let admin_listener = crate::admin::bind(&config.paths.state).with_context(|| {
        format!(
            "cannot bind the admin socket in {}",
            config.paths.state.display()
        )
    })?;
    let socket = config.paths.state.join(crate::admin::SOCKET);
    let stop = tasks.shutdown.clone();
    tasks.spawn("admin socket", async move {
        crate::admin::serve(admin_listener, socket, admin_state, stop).await
    });
    // Registered here, before READY=1: a `systemctl reload` right after start is a reload,
    // never SIGHUP's default action (the end of the process). One SIGHUP reloads every
    // account's mapping.
    let hup = crate::reload::hangup().context("cannot install the SIGHUP handler")?;
    tasks.spawn(
        "mapping reload",
        crate::reload::run(
            shared
                .accounts
                .iter()
                .map(|a| (a.mapping.clone(), a.mapping_path.clone()))
                .collect(),
            hup,
            tasks.shutdown.clone(),
        ),
    );
    Ok(())
}

/// An account's Ingram API client from its settings and secrets.
pub fn api_client(
    account: &crate::config::AccountSettings,
    secrets: &crate::config::AccountSecrets,
) -> anyhow::Result<ApiClient> {
    let secret = secrets.client.as_ref().with_context(|| {
        format!(
            "no OAuth2 client secret ({})",
            account.key("client_secret_file")
        )
    })?;
    let i = account;
    ApiClient::new(ApiSettings {
        api_base_url: i.api_base_url.clone(),
        token_url: i.token_url.clone(),
        client_id: i.client_id.clone(),
        client_secret: secret.expose().to_string(),
        partner_id: i.partner_id.clone(),
        country_code: i.country_code.clone(),
        sender_id: i.sender_id.clone(),
        connect_timeout: Duration::from_secs(i.connect_timeout_secs),
        request_timeout: Duration::from_secs(i.request_timeout_secs),
        token_refresh_margin: Duration::from_secs(i.token_refresh_margin_secs),
    })
    .context("invalid Ingram API settings")
}

/// The tracker every task runs on, the shutdown token, and the first failure's reason.
struct Tasks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    failure: Arc<Mutex<Option<String>>>,
}

impl Tasks {
    /// Spawns a task on the tracker; an error (or an early end while not shutting down)
    /// records a reason and triggers shutdown.
    fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        self.tracker.spawn(async move {
            let result = fut.await;
            let reason = match result {
                Err(e) => Some(format!("{name}: {e:#}")),
                Ok(()) if !shutdown.is_cancelled() => Some(format!("{name} stopped unexpectedly")),
                Ok(()) => None,
            };
            if let Some(reason) = reason {
                tracing::error!(task = name, reason = %reason, "Task died; shutting down.");
                failure.lock().expect("failure lock").get_or_insert(reason);
                shutdown.cancel();
            }
        });
    }
}

impl Running {
    /// Waits for shutdown, drains within the grace period, flushes the store. Everything after
    /// the cancellation, the final flush included, ends within the grace period: nothing waits
    /// for a failing store or a hung committer beyond it.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        let deadline = tokio::time::Instant::now() + self.grace;
        crate::notify::stopping();
        tracing::info!(
            grace_secs = self.grace.as_secs(),
            "Shutting down: intake stopped, draining workers."
        );
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = self.tracker.len(),
                "Workers did not finish within the grace period."
            );
        }
        // At least a moment for the final flush, even when draining used up the grace period.
        let flush_by = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
        let final_flush = match tokio::time::timeout_at(flush_by, self.store.flush()).await {
            Ok(r) => r.context("final flush of the state store"),
            Err(_) => Err(anyhow::anyhow!(
                "final flush of the state store did not finish within the grace period"
            )),
        };
        if let Err(e) = final_flush {
            let mut failure = self.failure.lock().expect("failure lock");
            failure.get_or_insert(format!("{e:#}"));
        }
        match self.failure.lock().expect("failure lock").take() {
            Some(reason) => anyhow::bail!(reason),
            None => {
                tracing::info!("edi-bridge stopped.");
                Ok(())
            }
        }
    }

    /// Requests shutdown.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}
