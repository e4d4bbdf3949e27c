//! Shadow mode, the parallel run before a cut-over from the VAN. With `[outbox] shadow_dir` the
//! daemon writes its 850s there (never into the ERP's outbox); with `[migration] van_dir` the
//! [`Shadow`] task watches both directories and compares each shadow 850 with the VAN's 850
//! for the same PO (BEG03) as soon as both exist: `edi_bridge_shadow_850s_total{result}` counts
//! the outcomes and the console's Migration page lists the differences. With `[migration]
//! send_calls = false` the [`Recorder`] takes the place of the delivery workers: each call the
//! ERP's 855/856 copies would make is rendered and recorded (the PO's timeline, the log, the
//! Migration page), and nothing is sent to Ingram.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::compare::{first_difference, Difference};
use super::X12File;
use crate::accounts::Accounts;
use crate::files::Root;
use crate::metrics::Metrics;
use crate::store::records::JobRecord;
use crate::store::Store;
use crate::text::Escaped;

/// The answer recorded for a call not sent in a shadow run.
pub const NOT_SENT: &str = "nothing: not sent, [migration] send_calls = false";

/// The calls the Migration page keeps (the newest).
const KEEP_CALLS: usize = 500;

/// The comparisons the Migration page keeps (the newest, one per PO); the counters count all.
const KEEP_COMPARISONS: usize = 2000;

/// Largest 850 file read (a PO with thousands of lines is far below it).
const MAX_850_BYTES: u64 = 64 * 1024 * 1024;

/// One shadow 850 compared with the VAN's.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub po: String,
    /// Our file in the shadow directory, and the VAN's.
    pub ours: String,
    pub van: String,
    /// `None`: identical.
    pub difference: Option<Difference>,
    pub at: String,
}

/// A call the bridge would have made.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowCall {
    pub po: String,
    pub method: &'static str,
    pub path: String,
    /// The body as it would have been sent, or why it could not be rendered.
    pub body: String,
    pub source: String,
    pub at: String,
}

/// What the Migration page shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Shadow mode is on (`[outbox] shadow_dir`), and where the VAN's copies are read.
    pub shadow_dir: Option<String>,
    pub van_dir: Option<String>,
    pub send_calls: bool,
    pub identical: u64,
    pub different: u64,
    /// Shadow 850s still waiting for the VAN's (PO numbers).
    pub waiting: usize,
    /// The latest comparison per PO (the newest `KEEP_COMPARISONS`), differences first.
    pub comparisons: Vec<Comparison>,
    /// Newest first.
    pub calls: Vec<ShadowCall>,
}

#[derive(Debug, Default)]
struct Findings {
    snapshot: Snapshot,
    /// Oldest first, one per PO.
    results: VecDeque<Comparison>,
    calls: VecDeque<ShadowCall>,
}

/// What the shadow run found, shared with the console.
#[derive(Debug, Clone, Default)]
pub struct ShadowState(Arc<Mutex<Findings>>);

impl ShadowState {
    /// The state for a daemon configured with these keys.
    pub fn configured(
        shadow_dir: Option<String>,
        van_dir: Option<String>,
        send_calls: bool,
    ) -> Self {
        let s = ShadowState::default();
        {
            let mut i = s.0.lock().expect("shadow lock");
            i.snapshot.shadow_dir = shadow_dir;
            i.snapshot.van_dir = van_dir;
            i.snapshot.send_calls = send_calls;
        }
        s
    }

    pub fn snapshot(&self) -> Snapshot {
        let i = self.0.lock().expect("shadow lock");
        let mut s = i.snapshot.clone();
        s.comparisons = i.results.iter().rev().cloned().collect();
        s.comparisons.sort_by_key(|c| c.difference.is_none());
        s.calls = i.calls.iter().rev().cloned().collect();
        s
    }

    fn record(&self, c: Comparison) {
        let mut i = self.0.lock().expect("shadow lock");
        match c.difference {
            None => i.snapshot.identical += 1,
            Some(_) => i.snapshot.different += 1,
        }
        i.results.retain(|r| r.po != c.po);
        if i.results.len() == KEEP_COMPARISONS {
            i.results.pop_front();
        }
        i.results.push_back(c);
    }

    fn waiting(&self, n: usize) {
        self.0.lock().expect("shadow lock").snapshot.waiting = n;
    }

    fn call(&self, c: ShadowCall) {
        let mut i = self.0.lock().expect("shadow lock");
        if i.calls.len() == KEEP_CALLS {
            i.calls.pop_front();
        }
        i.calls.push_back(c);
    }
}

/// The comparer: indexes the shadow and VAN directories by BEG03 and compares each pair once.
#[derive(Clone)]
pub struct Shadow {
    pub shadow_dir: Root,
    pub van_dir: Root,
    /// Every account: an 850 is compared under the mapping of the account that wrote it.
    pub accounts: Accounts,
    pub metrics: Arc<Metrics>,
    pub state: ShadowState,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    /// How often the VAN directory is looked at (the shadow directory is looked at whenever an
    /// 850 is written, too).
    pub rescan: Duration,
}

/// The files of one directory by PO: file name → BEG03 (`None`: not an 850), kept across scans
/// so that each file is read once.
#[derive(Default)]
struct Index {
    /// File name → the BEG03 of each of its transaction sets (none: not an 850).
    files: BTreeMap<OsString, Vec<String>>,
}

impl Index {
    /// Reads the files not seen before; returns PO → (file name, newest first by name).
    fn update(&mut self, root: &Root) -> std::io::Result<BTreeMap<String, OsString>> {
        let dir = root.open()?;
        let names = dir.names()?;
        self.files.retain(|n, _| names.contains(n));
        for name in names {
            if name.to_string_lossy().starts_with('.') || self.files.contains_key(&name) {
                continue;
            }
            let pos = match dir.open_regular(&name) {
                Ok((mut file, _)) => crate::files::read_limited(&mut file, MAX_850_BYTES)
                    .ok()
                    .flatten()
                    .and_then(|b| X12File::parse(&b).ok())
                    .map(|f| f.split().into_iter().map(|(po, _)| po).collect())
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            self.files.insert(name, pos);
        }
        let mut by_po = BTreeMap::new();
        for (name, pos) in &self.files {
            for po in pos.iter().filter(|p| !p.is_empty()) {
                by_po.insert(po.clone(), name.clone());
            }
        }
        Ok(by_po)
    }
}

impl Shadow {
    /// The mapping of the account whose 850 `ours` is (by its ISA06/ISA08, the reverse of the
    /// pair the ERP answers with); the first account's when none matches.
    fn mapping_of(&self, ours: &X12File) -> std::sync::Arc<crate::mapping::Mapping> {
        let isa = |n| {
            ours.first("ISA")
                .map(|s| X12File::value(s, n).trim().to_string())
                .unwrap_or_default()
        };
        match self.accounts.route(&isa(8), &isa(6), None) {
            crate::accounts::AccountRoute::Account(a) => a.mapping.current(),
            crate::accounts::AccountRoute::Unknown(_) => self.accounts.primary().mapping.current(),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut rx = self.events.subscribe();
        let indexes = Arc::new(Mutex::new((Index::default(), Index::default())));
        let mut compared: BTreeMap<String, (OsString, OsString)> = BTreeMap::new();
        let mut tick = tokio::time::interval(self.rescan);
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(crate::events::Event::Written850 { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            let (me, ix, done) = (self.clone(), indexes.clone(), compared.clone());
            let found = tokio::task::spawn_blocking(move || me.scan(&ix, &done)).await?;
            match found {
                Ok(new) => compared.extend(new),
                Err(e) => {
                    tracing::warn!(error = %Escaped(&e.to_string()), "Shadow run: cannot read the shadow or VAN directory; tried again.")
                }
            }
        }
    }

    /// One round: the pairs not compared yet are compared and recorded.
    #[allow(clippy::type_complexity)]
    fn scan(
        &self,
        indexes: &Mutex<(Index, Index)>,
        done: &BTreeMap<String, (OsString, OsString)>,
    ) -> std::io::Result<Vec<(String, (OsString, OsString))>> {
        let (ours, vans) = {
            let mut ix = indexes.lock().expect("index lock");
            let ours = ix.0.update(&self.shadow_dir)?;
            let vans = ix.1.update(&self.van_dir)?;
            (ours, vans)
        };
        let mut new = Vec::new();
        let mut waiting = 0;
        for (po, our_name) in &ours {
            let Some(van_name) = vans.get(po) else {
                waiting += 1;
                continue;
            };
            let pair = (our_name.clone(), van_name.clone());
            if done.get(po) == Some(&pair) {
                continue;
            }
            let read = |root: &Root, name: &OsString| -> Result<X12File, String> {
                let dir = root.open().map_err(|e| e.to_string())?;
                let (mut f, _) = dir.open_regular(name).map_err(|e| format!("{e:?}"))?;
                let bytes = crate::files::read_limited(&mut f, MAX_850_BYTES)
                    .map_err(|e| e.to_string())?
                    .ok_or("too large")?;
                // The PO's own transaction set, when the file holds several.
                X12File::parse(&bytes)
                    .map_err(|e| e.to_string())?
                    .split()
                    .into_iter()
                    .find(|(p, _)| p == po)
                    .map(|(_, one)| one)
                    .ok_or_else(|| format!("no BEG03 {po} in it any more"))
            };
            let (o, v) = match (
                read(&self.shadow_dir, our_name),
                read(&self.van_dir, van_name),
            ) {
                (Ok(o), Ok(v)) => (o, v),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(po = %Escaped(po), error = %Escaped(&e), "Shadow run: cannot read an 850 to compare.");
                    continue;
                }
            };
            let mapping = self.mapping_of(&o);
            let difference = first_difference(&v, &o, &mapping);
            self.metrics.shadow_850(difference.is_none());
            match &difference {
                None => tracing::info!(po = %Escaped(po), "Shadow 850 identical to the VAN's."),
                Some(d) => {
                    tracing::warn!(po = %Escaped(po), difference = %Escaped(&d.to_string()), "Shadow 850 differs from the VAN's.")
                }
            }
            let _ = self.events.send(crate::events::Event::Shadow850 {
                po: po.clone(),
                identical: difference.is_none(),
            });
            self.state.record(Comparison {
                po: po.clone(),
                ours: our_name.to_string_lossy().into_owned(),
                van: van_name.to_string_lossy().into_owned(),
                difference,
                at: crate::clock::now_rfc3339(),
            });
            new.push((po.clone(), pair));
        }
        self.state.waiting(waiting);
        Ok(new)
    }
}

/// Stands in for the delivery workers when `[migration] send_calls = false`: each due call is
/// rendered as it would be sent, recorded, and completed with the answer [`NOT_SENT`], so it is
/// never sent, neither now nor after the cut-over.
#[derive(Clone)]
pub struct Recorder {
    pub store: Store,
    /// Every account: a call is rendered by its own account's partner and mapping.
    pub accounts: Accounts,
    pub state: ShadowState,
    pub wake: Arc<tokio::sync::Notify>,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
}

impl Recorder {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let me = self.clone();
            let round = tokio::task::spawn_blocking(move || me.round()).await?;
            let recorded = match round {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "Shadow run: cannot record the calls; tried again.");
                    0
                }
            };
            if recorded > 0 {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    fn round(&self) -> Result<usize, crate::store::StoreError> {
        let due = self.store.due_jobs(None, u64::MAX, 64)?;
        for job in &due.jobs {
            let body = self.body(job);
            tracing::info!(po = %Escaped(&job.po), path = %Escaped(&job.path), "Shadow run: call recorded, not sent ([migration] send_calls = false).");
            self.state.call(ShadowCall {
                po: job.po.clone(),
                method: "POST",
                path: job.path.clone(),
                body,
                source: job.source.clone(),
                at: crate::clock::now_rfc3339(),
            });
            self.store
                .record_unsent_job(job, NOT_SENT, &crate::clock::now_rfc3339())?;
        }
        self.store.flush_blocking()?;
        for job in &due.jobs {
            let _ = self.events.send(crate::events::Event::CallRecorded {
                po: job.po.clone(),
                job: job.id,
            });
        }
        Ok(due.jobs.len())
    }

    fn body(&self, job: &JobRecord) -> String {
        let account_id = crate::domain::split_po_key(&job.po).0;
        let Some(account) = self.accounts.get(account_id) else {
            return format!("(no account {account_id} in the configuration)");
        };
        let mapping = account.mapping.current();
        let canonical: serde_json::Value = match serde_json::from_str(&job.body) {
            Ok(v) => v,
            Err(e) => return format!("(the stored body is not JSON: {e})"),
        };
        let po = self
            .store
            .order(&job.po)
            .ok()
            .flatten()
            .map_or(serde_json::Value::Null, |o| {
                crate::domain::canonical::po_json(&o.order)
            });
        match account
            .partner
            .render_body(&mapping, job.kind, &canonical, &job.segments, &po)
        {
            Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
            Err(reason) => format!("(would fail: {reason})"),
        }
    }
}
