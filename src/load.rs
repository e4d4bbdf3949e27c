//! Loading a configuration whole: the config file, the mapping it names, its secrets and the
//! alert addresses, checked together so `edi-bridge check` and start-up report every problem
//! at once. It lives above `config`, `mapping` and `alerts` so that `config` imports neither:
//! the mapping is read by `mapping` and the e-mail addresses are parsed by `alerts` (the only
//! module naming the mail library). `Config::load` is defined here.

use std::path::Path;

use crate::config::{Config, ConfigError, Secrets};
use crate::mapping::Mapping;
use crate::tomlfile::{parse_toml, read_source};

/// A fully loaded, validated configuration with its mapping and secrets.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub mapping: Mapping,
    pub secrets: Secrets,
}

impl Config {
    /// Parses and validates a config file, then loads and validates its mapping and secrets.
    /// Every problem is reported, not only the first.
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
        problems.extend(crate::alerts::address_problems(&config, text));
        problems.extend(config.check_dirs(text));
        let mapping_path = config.mapping_path();
        let mapping = match Mapping::load(&mapping_path) {
            Ok(m) => Some(m),
            Err(ConfigError(mut ps)) => {
                problems.append(&mut ps);
                None
            }
        };
        let secrets = match config.resolve_secrets(text) {
            Ok(s) => Some(s),
            Err(mut ps) => {
                problems.append(&mut ps);
                None
            }
        };
        match (mapping, secrets) {
            (Some(mapping), Some(secrets)) if problems.is_empty() => Ok(Loaded {
                config,
                mapping,
                secrets,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}
