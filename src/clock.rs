//! Wall-clock helpers in one place: RFC 3339 UTC timestamps for records and `YYYY/MM/DD` archive
//! folders. Everything else takes instants as parameters, so translators stay pure. [`Clock`] is
//! the wall clock as a value, for logic that ages records (refused webhook event ids expire after
//! a day): the daemon uses the system time; a test moves its daemon's clock forward instead of
//! sleeping.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, as RFC 3339 UTC with seconds precision (`2026-11-23T10:00:00Z`).
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// `YYYY/MM/DD` of an RFC 3339 timestamp (today's when it does not parse).
pub fn date_path(rfc3339: &str) -> String {
    let at = OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap_or_else(|_| OffsetDateTime::now_utc());
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The wall clock, in milliseconds since the Unix epoch, plus an offset only tests change.
/// Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        system.saturating_add(self.offset_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves this clock (and its clones) forward by `by`: for tests of expiry.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms.fetch_add(
            u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// RFC 3339 UTC (seconds) of a [`Clock::now_ms`] value.
pub fn rfc3339_ms(ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_clock_moves_only_forward_and_clones_share_it() {
        let c = super::Clock::system();
        let twin = c.clone();
        let before = c.now_ms();
        c.advance(std::time::Duration::from_secs(86_400));
        assert!(twin.now_ms() >= before + 86_400_000);
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn date_path_is_utc() {
        assert_eq!(super::date_path("2026-11-23T23:30:00-05:00"), "2026/11/24");
        assert!(super::now_rfc3339().ends_with('Z'));
    }
}
