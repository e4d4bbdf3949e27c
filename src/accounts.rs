//! The accounts the daemon serves, each as one bundle: its settings, mapping (hot-reloaded),
//! webhook secrets, API client, limiter and outbox. The webhook finds an account by the id in
//! its URL path, the outbox by the account of each queued PO, the inbox by the interchange pair
//! an 855/856/997 answers ([`Accounts::route`]), the delivery worker runs one lane per
//! account. This is where an account's partner client is built; the workers see it only
//! through [`crate::partner::Partner`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Secret;
use crate::ingram::api::ApiClient;
use crate::mapping::{InboundPair, SharedMapping};
use crate::pacing::Limiter;
use crate::partner::Partner;

/// One account's bundle.
#[derive(Clone)]
pub struct Account {
    /// `default` for `[ingram]`, else the `[[accounts]]` id.
    pub id: String,
    pub settings: crate::config::AccountSettings,
    pub mapping: SharedMapping,
    /// The mapping file, resolved (watched for changes, reloaded on SIGHUP).
    pub mapping_path: PathBuf,
    /// Current and (during a rotation) previous webhook secret: only this account's.
    pub webhook_secrets: Arc<Vec<Secret>>,
    /// The account's API client (health, the connection test, the console).
    pub client: ApiClient,
    /// The same client as the delivery worker sees it.
    pub partner: Arc<dyn Partner>,
    pub limiter: Arc<Limiter>,
    /// Where its 850s and 997s go (its own `outbox`, else `[paths] outbox`; the shadow
    /// directory in a shadow run).
    pub outbox_dir: PathBuf,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("mapping_path", &self.mapping_path)
            .field("outbox_dir", &self.outbox_dir)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The pair an inbound file answering this account's 850s carries (from the mapping in
    /// force now).
    pub fn inbound_pair(&self) -> InboundPair {
        InboundPair::of(&self.mapping.current().interchange)
    }
}

/// Every account, in the config's order. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Accounts(Arc<Vec<Account>>);

/// Which account an inbound interchange belongs to.
#[derive(Debug)]
pub enum AccountRoute<'a> {
    Account(&'a Account),
    /// No account has this pair: the reason names the pairs the bridge knows.
    Unknown(String),
}

impl Accounts {
    pub fn new(accounts: Vec<Account>) -> Accounts {
        Accounts(Arc::new(accounts))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The account `id`.
    pub fn get(&self, id: &str) -> Option<&Account> {
        self.0.iter().find(|a| a.id == id)
    }

    /// Each account's outbound pair key (`ISA05:ISA06/ISA07:ISA08`, as the store keys its
    /// control numbers) with the account's id.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|a| (a.mapping.current().interchange.pair_key(), a.id.clone()))
            .collect()
    }

    /// Which accounts' ERPs answer 850s with 997s (their mappings' `[ack997] expect_from_erp`,
    /// as they are now); none does in a shadow run.
    pub fn expect_997(&self, shadow: bool) -> crate::store::Expect997 {
        crate::store::Expect997 {
            without: self
                .0
                .iter()
                .filter(|a| shadow || !a.mapping.current().ack997.expect_from_erp)
                .map(|a| a.id.clone())
                .collect(),
            none: false,
        }
    }

    /// The first account: the one commands use when none is named.
    pub fn primary(&self) -> &Account {
        &self.0[0]
    }

    /// The account a file from the ERP belongs to, by its first interchange (and group). A bare
    /// transaction set (no ISA) can only be the one account's.
    pub fn route_file(&self, bytes: &[u8]) -> AccountRoute<'_> {
        let mut isa = None;
        for ev in crate::x12::Reader::new(bytes, &crate::x12::ReadOptions::default()) {
            match ev {
                crate::x12::ReadEvent::InterchangeStart {
                    header, synthetic, ..
                } => {
                    if synthetic {
                        break;
                    }
                    isa = Some(header);
                }
                crate::x12::ReadEvent::GroupStart { header, .. } => {
                    if let Some(h) = &isa {
                        return self.route(
                            &h.sender_id,
                            &h.receiver_id,
                            Some((&header.app_sender, &header.app_receiver)),
                        );
                    }
                    break;
                }
                crate::x12::ReadEvent::Transaction(_) => break,
                _ => {}
            }
        }
        match (isa, self.0.as_slice()) {
            (Some(h), _) => self.route(&h.sender_id, &h.receiver_id, None),
            (None, [only]) => AccountRoute::Account(only),
            (None, _) => AccountRoute::Unknown(
                "the file has no ISA interchange header, so its account cannot be told: with several accounts, each file from the ERP must be an interchange (ISA/IEA) addressed with that account's ids".into(),
            ),
        }
    }

    /// The account whose 850s an interchange from the ERP answers: its ISA06/ISA08 (and, when
    /// two accounts share those, the first group's GS02/GS03).
    pub fn route(&self, isa06: &str, isa08: &str, gs: Option<(&str, &str)>) -> AccountRoute<'_> {
        let pairs: Vec<(&Account, InboundPair)> =
            self.0.iter().map(|a| (a, a.inbound_pair())).collect();
        let by_isa: Vec<&(&Account, InboundPair)> = pairs
            .iter()
            .filter(|(_, p)| p.matches_isa(isa06, isa08))
            .collect();
        let found = match (by_isa.as_slice(), gs) {
            ([(a, _)], _) => Some(*a),
            (several, Some((gs02, gs03))) if several.len() > 1 => several
                .iter()
                .find(|(_, p)| p.matches_gs(gs02, gs03))
                .map(|(a, _)| *a),
            _ => None,
        };
        match found {
            Some(a) => AccountRoute::Account(a),
            None => {
                let known: Vec<String> = pairs
                    .iter()
                    .map(|(a, p)| format!("{p} (account {})", a.id))
                    .collect();
                let esc = |s: &str| crate::text::escape(s.trim());
                let gs = gs.map_or(String::new(), |(g2, g3)| {
                    format!(" (GS02 {} / GS03 {})", esc(g2), esc(g3))
                });
                AccountRoute::Unknown(format!(
                    "no account answers ISA06 {} / ISA08 {}{gs}: the bridge knows {}",
                    esc(isa06),
                    esc(isa08),
                    known.join("; ")
                ))
            }
        }
    }
}
