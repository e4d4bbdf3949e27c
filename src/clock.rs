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

/// The system's wall clock: the time since the Unix epoch (zero for a clock set before 1970).
/// The one place the crate reads it (`tests/tidy.rs`). For what must agree with the operating
/// system's or the network's own stamps (file mtimes, HTTP dates, cookie expiry, the emulator);
/// logic that ages records or schedules work takes a [`Clock`] instead, which tests move.
pub fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
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
        let system = since_epoch().as_millis() as u64;
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

/// A monotonic millisecond count from when it was made: for stamps kept in atomics that must
/// not jump with the wall clock (the store's heartbeat, [`BusySince`]).
#[derive(Debug, Clone, Copy)]
pub struct Monotonic(std::time::Instant);

impl Monotonic {
    /// Counting from now.
    pub fn start() -> Monotonic {
        Monotonic(std::time::Instant::now())
    }

    /// Milliseconds since [`Monotonic::start`].
    pub fn ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// Since when a loop has been busy with its current item (monotonic), readable from any thread:
/// the systemd watchdog and the store's health tell a stuck loop from an idle one by it. Clones
/// share the stamp.
#[derive(Debug, Clone)]
pub struct BusySince {
    epoch: Monotonic,
    /// Milliseconds since `epoch` (+1) when the current item began; 0 while idle.
    since_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for BusySince {
    fn default() -> BusySince {
        BusySince {
            epoch: Monotonic::start(),
            since_ms: Default::default(),
        }
    }
}

impl BusySince {
    /// Marks the loop busy until the guard drops.
    pub fn busy(&self) -> BusyGuard<'_> {
        let now = self.epoch.ms();
        self.since_ms
            .store(now + 1, std::sync::atomic::Ordering::Relaxed);
        BusyGuard(self)
    }

    /// How long the current item has taken so far; `None` while idle.
    pub fn busy_for(&self) -> Option<std::time::Duration> {
        let since = self.since_ms.load(std::sync::atomic::Ordering::Relaxed);
        let now = self.epoch.ms();
        (since != 0).then(|| std::time::Duration::from_millis(now.saturating_sub(since - 1)))
    }
}

/// See [`BusySince::busy`].
pub struct BusyGuard<'a>(&'a BusySince);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0
            .since_ms
            .store(0, std::sync::atomic::Ordering::Relaxed);
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
    fn busy_since_is_none_while_idle_and_shared_by_clones() {
        let b = super::BusySince::default();
        let twin = b.clone();
        assert_eq!(twin.busy_for(), None);
        let guard = b.busy();
        assert!(twin.busy_for().is_some());
        drop(guard);
        assert_eq!(twin.busy_for(), None);
    }

    #[test]
    fn date_path_is_utc() {
        assert_eq!(super::date_path("2026-11-23T23:30:00-05:00"), "2026/11/24");
        assert!(super::now_rfc3339().ends_with('Z'));
    }
}
