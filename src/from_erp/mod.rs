//! The flow *from* the ERP: its answers, on their way to Ingram. The [`watcher`] finds settled
//! files in the inbox and claims them; [`inbox`] parses each claimed file, turns its 855s and
//! 856s into API jobs ([`set`] reads and translates each transaction set through the pure
//! translators `ingram::from_855` and `ingram::from_856`, for the inbox and the admin's
//! [`preview`] alike), records 997s, writes 997s back, and commits all of it to the store before
//! archiving the file; [`deliver`] sends the jobs to Ingram until Ingram accepts them.

pub mod deliver;
pub mod inbox;
pub mod preview;
pub mod set;
pub mod watcher;

/// What a transaction set is, by ST01 (never by GS01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentKind {
    Ack855,
    Asn856,
    Ack997,
    Unknown(String),
}

impl DocumentKind {
    pub fn of(st01: &str) -> DocumentKind {
        match st01.trim() {
            "855" => DocumentKind::Ack855,
            "856" => DocumentKind::Asn856,
            "997" => DocumentKind::Ack997,
            other => DocumentKind::Unknown(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_route_on_st01() {
        assert_eq!(DocumentKind::of("855"), DocumentKind::Ack855);
        assert_eq!(DocumentKind::of("810"), DocumentKind::Unknown("810".into()));
    }
}
