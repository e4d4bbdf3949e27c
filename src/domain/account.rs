//! Which partner account a PO belongs to, and the store key that scopes a PO number to it. A
//! vendor may have several Ingram accounts (one per country); the same PO number in two of them
//! is two POs. The account `default` is the one the single-account config (`[ingram]`) names;
//! its PO keys are the bare PO number, exactly as stores written before accounts existed keep
//! them, so such a store opens unchanged. Every other account's PO key is its id, the unit
//! separator (0x1F, which no PO number contains: the webhook refuses control characters in it),
//! then the PO number.

use std::fmt;

/// The account of the single-account config (`[ingram]` + `[mapping]`).
pub const DEFAULT_ACCOUNT: &str = "default";

/// Joins an account id and a PO number in a key.
const SEPARATOR: char = '\u{1f}';

/// The longest account id (it appears in URLs, metric labels, file names and the CLI).
pub const MAX_ACCOUNT_ID: usize = 16;

/// Why an account id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountIdError {
    #[error("must be 1 to {MAX_ACCOUNT_ID} characters")]
    Length,
    #[error("'{0}' is not allowed: only a-z, 0-9 and '-'")]
    Character(char),
}

/// Checks an account id: `[a-z0-9-]`, 1 to 16 characters.
pub fn check_account_id(id: &str) -> Result<(), AccountIdError> {
    if id.is_empty() || id.len() > MAX_ACCOUNT_ID {
        return Err(AccountIdError::Length);
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(c) => Err(AccountIdError::Character(c)),
        None => Ok(()),
    }
}

/// A PO number in its account: what the store keys a PO by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoRef {
    pub account: String,
    pub po: String,
}

impl PoRef {
    pub fn new(account: &str, po: &str) -> PoRef {
        PoRef {
            account: account.to_owned(),
            po: po.to_owned(),
        }
    }

    /// The store key: the bare PO number for `default`, else `account` 0x1F `po`.
    pub fn key(&self) -> String {
        po_key(&self.account, &self.po)
    }

    /// The PO and account of a store key.
    pub fn from_key(key: &str) -> PoRef {
        let (account, po) = split_po_key(key);
        PoRef::new(account, po)
    }
}

/// For people: `PO` in the account `default`, `account/PO` in any other.
impl fmt::Display for PoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.account == DEFAULT_ACCOUNT {
            f.write_str(&self.po)
        } else {
            write!(f, "{}/{}", self.account, self.po)
        }
    }
}

/// The store key of `po` in `account` (see the module's text).
pub fn po_key(account: &str, po: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        po.to_owned()
    } else {
        format!("{account}{SEPARATOR}{po}")
    }
}

/// The account and PO number of a store key.
pub fn split_po_key(key: &str) -> (&str, &str) {
    key.split_once(SEPARATOR).unwrap_or((DEFAULT_ACCOUNT, key))
}

/// A store key for people (`PO`, or `account/PO`).
pub fn show_po_key(key: &str) -> String {
    PoRef::from_key(key).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_are_the_bare_po_number_and_others_are_scoped() {
        assert_eq!(po_key(DEFAULT_ACCOUNT, "PO-1"), "PO-1");
        assert_eq!(split_po_key("PO-1"), (DEFAULT_ACCOUNT, "PO-1"));
        let ca = po_key("ca", "PO-1");
        assert_ne!(ca, "PO-1");
        assert_eq!(split_po_key(&ca), ("ca", "PO-1"));
        assert_eq!(show_po_key(&ca), "ca/PO-1");
        assert_eq!(show_po_key("PO-1"), "PO-1");
    }

    #[test]
    fn account_ids_are_short_lowercase_words() {
        assert!(check_account_id("ca").is_ok());
        assert!(check_account_id("us-east-2").is_ok());
        assert_eq!(check_account_id(""), Err(AccountIdError::Length));
        assert_eq!(
            check_account_id("abcdefghijklmnopq"),
            Err(AccountIdError::Length)
        );
        assert_eq!(check_account_id("CA"), Err(AccountIdError::Character('C')));
        assert_eq!(check_account_id("c/a"), Err(AccountIdError::Character('/')));
    }
}
