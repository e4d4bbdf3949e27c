//! Loading a configuration whole: the config file, every account's mapping and secrets, and
//! the alert addresses, checked together so `edi-bridge check` and start-up report every
//! problem at once. It lives above `config`, `mapping` and `alerts` so that `config` imports
//! neither: the mappings are read by `mapping` and the e-mail addresses are parsed by `alerts`
//! (the only module naming the mail library). `Config::load` is defined here.

use std::path::Path;

use crate::config::{AccountSecrets, AccountSettings, Config, ConfigError, Problem, Secrets};
use crate::mapping::{InboundPair, Mapping};
use crate::tomlfile::{parse_toml, read_source};

/// One account, loaded: its settings, its mapping and its secrets.
#[derive(Debug, Clone)]
pub struct LoadedAccount {
    pub account: AccountSettings,
    pub mapping: Mapping,
    pub secrets: AccountSecrets,
}

/// A fully loaded, validated configuration with its accounts' mappings and secrets.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Every account, in [`Config::accounts`]' order (at least one).
    pub accounts: Vec<LoadedAccount>,
    pub secrets: Secrets,
}

impl Loaded {
    /// The first account (`default` when `[ingram]` is set): what the commands that take one
    /// mapping use when no account is named.
    pub fn primary(&self) -> &LoadedAccount {
        &self.accounts[0]
    }
}

impl Config {
    /// Parses and validates a config file, then loads and validates its accounts' mappings and
    /// secrets. Every problem is reported, not only the first.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = read_source(path, "cannot read")?;
        Self::load_str(&text, path)
    }

    /// As [`Config::load`], from text already read (`path` names it in messages and anchors
    /// relative paths).
    pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
        let mut config: Config = parse_toml(text, path).map_err(|p| ConfigError(vec![p]))?;
        config.source = path.to_path_buf();
        let mut problems = config.validate(text);
        problems.extend(config.validate_accounts(text));
        problems.extend(crate::alerts::address_problems(&config, text));
        problems.extend(config.check_dirs(text));
        let accounts = config.accounts();
        let mut mappings = Vec::new();
        for a in &accounts {
            match Mapping::load(&config.resolve_path(&a.mapping)) {
                Ok(m) => mappings.push(m),
                Err(ConfigError(mut ps)) => problems.append(&mut ps),
            }
        }
        if mappings.len() == accounts.len() {
            problems.extend(check_pairs(&config, text, &accounts, &mappings));
        }
        let secrets = match config.resolve_secrets(text, &accounts) {
            Ok(s) => Some(s),
            Err(mut ps) => {
                problems.append(&mut ps);
                None
            }
        };
        match secrets {
            Some((secrets, per_account)) if problems.is_empty() => Ok(Loaded {
                accounts: accounts
                    .into_iter()
                    .zip(mappings)
                    .zip(per_account)
                    .map(|((account, mapping), secrets)| LoadedAccount {
                        account,
                        mapping,
                        secrets,
                    })
                    .collect(),
                config,
                secrets,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

/// Each account answers to its own interchange pair: an inbound file is routed by it.
fn check_pairs(
    config: &Config,
    text: &str,
    accounts: &[AccountSettings],
    mappings: &[Mapping],
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for (a, m) in accounts.iter().zip(mappings) {
        let pair = InboundPair::of(&m.interchange);
        if let Some(other) = seen.insert(pair.clone(), a.id.clone()) {
            out.push(Problem {
                file: config.source.clone(),
                line: a.line(text, "mapping"),
                key: a.key("mapping"),
                message: format!("the account '{}' has the same interchange ids as '{other}' ({pair}): an 855, 856 or 997 could not be told apart; give each account its own ISA or GS ids", a.id),
            });
        }
    }
    out
}
