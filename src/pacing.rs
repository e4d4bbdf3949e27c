//! Client-side pacing of one account's API calls, and its declared maintenance windows. A
//! [`Limiter`] lets an account's calls out no faster than its `requests_per_minute` (evenly
//! spaced, no burst), holds them all while a pause is in force (a 429's `Retry-After` /
//! `X-RateLimit-Reset`, or an answer whose `X-RateLimit-Remaining` ran low) and while one of
//! its [`Windows`] is open. Waiting here never spends a job's retry attempts: the call is simply
//! not made yet. Each account has its own limiter, so one account's pause never delays another's
//! calls. Times come from the daemon's [`Clock`], which tests move forward; a wait re-reads the
//! clock at least every [`RECHECK`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// The longest a wait sleeps before it looks at the clock again (a test may have moved it).
pub const RECHECK: Duration = Duration::from_secs(1);

const DAY_MS: i64 = 86_400_000;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One declared maintenance window: `DAYS HH:MM-HH:MM ±HH:MM`, e.g.
/// `Mon-Fri 23:00-04:00 -08:00`. It opens at the start time on each of the days (in that UTC
/// offset) and closes at the end time, the next day when the end is not after the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    start_min: i64,
    length_min: i64,
    offset_min: i64,
}

/// Why a maintenance window entry does not parse: the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("'{0}' is not DAYS HH:MM-HH:MM ±HH:MM, e.g. \"Mon-Fri 23:00-04:00 -08:00\"")]
    Shape(String),
    #[error("'{0}' is not a day: Mon, Tue, Wed, Thu, Fri, Sat or Sun")]
    Day(String),
    #[error("'{0}' is not a time like 23:00")]
    Time(String),
    #[error("'{0}' is not a time range like 23:00-04:00")]
    Range(String),
    #[error("'{0}': the window must end at another time than it starts")]
    Empty(String),
    #[error("'{0}' is not a UTC offset like -08:00 or +01:00")]
    Offset(String),
}

/// The first of an account's maintenance windows that does not parse (`entry` is 1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry}: {error}")]
pub struct WindowsError {
    pub entry: usize,
    pub error: WindowError,
}

impl Window {
    /// Parses `DAYS HH:MM-HH:MM ±HH:MM`. DAYS is a day (`Mon`), a range (`Mon-Fri`, `Fri-Mon`
    /// wraps) or a comma list of either (`Sat,Sun`); names are case-insensitive.
    pub fn parse(s: &str) -> Result<Window, WindowError> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [days, times, offset] = parts[..] else {
            return Err(WindowError::Shape(s.to_string()));
        };
        let mut set = [false; 7];
        for item in days.split(',') {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (a, b) = (day(a)?, day(b)?);
            let mut d = a;
            loop {
                set[d] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| WindowError::Range(times.to_string()))?;
        let (start, end) = (clock_time(start)?, clock_time(end)?);
        if start == end {
            return Err(WindowError::Empty(times.to_string()));
        }
        let sign = match offset.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(WindowError::Offset(offset.to_string())),
        };
        let offset_min = clock_time(&offset[1..])
            .ok()
            .filter(|m| *m <= 14 * 60)
            .ok_or_else(|| WindowError::Offset(offset.to_string()))?;
        Ok(Window {
            days: set,
            start_min: start,
            length_min: (end - start).rem_euclid(24 * 60),
            offset_min: sign * offset_min,
        })
    }

    /// Every opening (start, end) in Unix ms whose start falls on one of the `back + 1` local
    /// days up to `now_ms`'s.
    fn openings(&self, now_ms: u64, back: i64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let offset_ms = self.offset_min * 60_000;
        let local = now_ms as i64 + offset_ms;
        let today = local.div_euclid(DAY_MS);
        (today - back..=today).filter_map(move |d| {
            // 1970-01-01 was a Thursday (index 3, Monday first).
            let weekday = (d + 3).rem_euclid(7) as usize;
            if !self.days[weekday] {
                return None;
            }
            let start = d * DAY_MS + self.start_min * 60_000 - offset_ms;
            let end = start + self.length_min * 60_000;
            Some((start.max(0) as u64, end.max(0) as u64))
        })
    }
}

fn day(name: &str) -> Result<usize, WindowError> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == lower)
        .ok_or_else(|| WindowError::Day(name.to_string()))
}

/// `HH:MM` as minutes after midnight.
fn clock_time(t: &str) -> Result<i64, WindowError> {
    let bad = || WindowError::Time(t.to_string());
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || t.len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// An account's declared maintenance windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows(pub Vec<Window>);

impl Windows {
    /// Parses every entry; the first problem names the entry (1-based).
    pub fn parse(entries: &[String]) -> Result<Windows, WindowsError> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Window::parse(e).map_err(|error| WindowsError {
                    entry: i + 1,
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Windows)
    }

    /// When the window open at `now_ms` closes (the latest close, if several overlap); `None`
    /// when none is open.
    pub fn open_until(&self, now_ms: u64) -> Option<u64> {
        self.0
            .iter()
            .flat_map(|w| w.openings(now_ms, 1))
            .filter(|(s, e)| *s <= now_ms && now_ms < *e)
            .map(|(_, e)| e)
            .max()
    }

    /// When the last window that closed at or before `now_ms` closed (within a week).
    pub fn last_close(&self, now_ms: u64) -> Option<u64> {
        self.0
            .iter()
            .flat_map(|w| w.openings(now_ms, 8))
            .map(|(_, e)| e)
            .filter(|e| *e <= now_ms)
            .max()
    }
}

/// Why an account's calls wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseCause {
    /// Ingram answered 429.
    Throttled,
    /// An answer's `X-RateLimit-Remaining` was at or below the calls that may be in flight.
    LowRemaining,
}

/// What `/metrics` shows of a limiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimiterSnapshot {
    pub account: String,
    pub requests_per_minute: u32,
    /// Calls let through.
    pub allowed: u64,
    /// Calls that waited for their slot in the pace.
    pub paced: u64,
    /// Total time calls waited for the pace, pauses and windows, in milliseconds.
    pub waited_ms: u64,
    /// 429 answers (each pauses the account).
    pub throttled: u64,
    /// Pauses because `X-RateLimit-Remaining` ran low.
    pub low_remaining: u64,
    /// Calls that waited for a maintenance window to close.
    pub window_waits: u64,
    /// How long the current pause still lasts, in milliseconds (0: none).
    pub paused_ms: u64,
    /// Whether a declared maintenance window is open now.
    pub in_window: bool,
}

/// One account's pace, pause and windows. Shared (`Arc`) by the account's lane and `/metrics`.
#[derive(Debug)]
pub struct Limiter {
    account: String,
    requests_per_minute: u32,
    interval_us: u64,
    windows: Windows,
    clock: Clock,
    /// Microseconds (by the clock) before which the next call may not go.
    next_us: Mutex<u64>,
    paused_until_ms: AtomicU64,
    allowed: AtomicU64,
    paced: AtomicU64,
    waited_ms: AtomicU64,
    throttled: AtomicU64,
    low_remaining: AtomicU64,
    window_waits: AtomicU64,
    /// Woken whenever a counter changes (tests wait on it).
    changed: tokio::sync::Notify,
}

impl Limiter {
    pub fn new(account: &str, requests_per_minute: u32, windows: Windows, clock: Clock) -> Limiter {
        let rpm = u64::from(requests_per_minute.max(1));
        Limiter {
            account: account.to_owned(),
            requests_per_minute: requests_per_minute.max(1),
            interval_us: 60_000_000 / rpm,
            windows,
            clock,
            next_us: Mutex::new(0),
            paused_until_ms: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            paced: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            low_remaining: AtomicU64::new(0),
            window_waits: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Waits until this account may make one call: no window open, no pause in force, and its
    /// slot in the pace reached. `false` when `shutdown` came first (no call may be made).
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        let started = tokio::time::Instant::now();
        let mut counted_window = false;
        let mut counted_pace = false;
        let ok = loop {
            let now = self.clock.now_ms();
            let blocked_until = match self.windows.open_until(now) {
                Some(end) => {
                    if !counted_window {
                        counted_window = true;
                        self.window_waits.fetch_add(1, Relaxed);
                        self.changed.notify_waiters();
                    }
                    Some(end)
                }
                None => Some(self.paused_until_ms.load(Relaxed)).filter(|p| *p > now),
            };
            let wait = match blocked_until {
                Some(until) => Duration::from_millis(until - now).min(RECHECK),
                None => {
                    let now_us = now.saturating_mul(1000);
                    let slot = {
                        let mut next = self.next_us.lock().unwrap_or_else(|e| e.into_inner());
                        let slot = (*next).max(now_us);
                        *next = slot + self.interval_us;
                        slot
                    };
                    if slot <= now_us {
                        break true;
                    }
                    if !counted_pace {
                        counted_pace = true;
                        self.paced.fetch_add(1, Relaxed);
                    }
                    // The slot is this call's: after the wait it goes unless a pause or a window
                    // began meanwhile (then it queues again).
                    let wait = Duration::from_micros(slot - now_us);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => break false,
                    }
                    let now = self.clock.now_ms();
                    if self.windows.open_until(now).is_none()
                        && self.paused_until_ms.load(Relaxed) <= now
                    {
                        break true;
                    }
                    continue;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break false,
            }
        };
        self.waited_ms
            .fetch_add(started.elapsed().as_millis() as u64, Relaxed);
        if ok {
            self.allowed.fetch_add(1, Relaxed);
            self.changed.notify_waiters();
        }
        ok
    }

    /// Holds every call of this account for `for_` (a longer pause already in force stays).
    pub fn pause(&self, for_: Duration, cause: PauseCause) {
        let until = self.clock.now_ms().saturating_add(for_.as_millis() as u64);
        self.paused_until_ms.fetch_max(until, Relaxed);
        match cause {
            PauseCause::Throttled => &self.throttled,
            PauseCause::LowRemaining => &self.low_remaining,
        }
        .fetch_add(1, Relaxed);
        self.changed.notify_waiters();
    }

    /// Whether a declared window is open now.
    pub fn in_window(&self) -> bool {
        self.windows.open_until(self.clock.now_ms()).is_some()
    }

    /// When an outage that began at `since_ms` counts from for alerts: time inside a declared
    /// window does not count, so the count restarts when the last window closed. `None` while a
    /// window is open (no outage alert then).
    pub fn outage_counts_from(&self, since_ms: u64, now_ms: u64) -> Option<u64> {
        if self.windows.open_until(now_ms).is_some() {
            return None;
        }
        Some(since_ms.max(self.windows.last_close(now_ms).unwrap_or(0)))
    }

    /// Waits until a counter changes (for tests and tools; no polling).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    pub fn snapshot(&self) -> LimiterSnapshot {
        let now = self.clock.now_ms();
        LimiterSnapshot {
            account: self.account.clone(),
            requests_per_minute: self.requests_per_minute,
            allowed: self.allowed.load(Relaxed),
            paced: self.paced.load(Relaxed),
            waited_ms: self.waited_ms.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            low_remaining: self.low_remaining.load(Relaxed),
            window_waits: self.window_waits.load(Relaxed),
            paused_ms: self.paused_until_ms.load(Relaxed).saturating_sub(now),
            in_window: self.windows.open_until(now).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07 (a Monday) at `h:m` UTC, in Unix ms.
    fn monday_utc(h: u64, m: u64) -> u64 {
        1_796_601_600_000 + (h * 60 + m) * 60_000
    }

    #[test]
    fn the_reference_date_is_a_monday() {
        let t =
            time::OffsetDateTime::from_unix_timestamp((monday_utc(0, 0) / 1000) as i64).unwrap();
        assert_eq!(t.weekday(), time::Weekday::Monday);
        assert_eq!((t.hour(), t.minute()), (0, 0));
    }

    #[test]
    fn a_window_crosses_midnight_in_its_own_offset() {
        let w = Windows::parse(&["Mon-Fri 23:00-04:00 -08:00".into()]).unwrap();
        // Monday 23:00 at -08:00 is Tuesday 07:00 UTC; it closes Tuesday 12:00 UTC.
        let tue = monday_utc(24 + 7, 0);
        assert_eq!(w.open_until(tue - 60_000), None);
        assert_eq!(w.open_until(tue), Some(monday_utc(24 + 12, 0)));
        assert_eq!(
            w.open_until(monday_utc(24 + 11, 59)),
            Some(monday_utc(36, 0))
        );
        assert_eq!(w.open_until(monday_utc(36, 0)), None);
        assert_eq!(w.last_close(monday_utc(40, 0)), Some(monday_utc(36, 0)));
        // Friday night's window runs into Saturday morning; Saturday night has none.
        let sat_utc_8 = monday_utc(5 * 24 + 8, 0);
        assert!(w.open_until(sat_utc_8).is_some());
        assert_eq!(w.open_until(monday_utc(6 * 24 + 8, 0)), None);
        // Monday 07:00 UTC is Sunday 23:00 at -08:00: no window on Sunday.
        assert_eq!(w.open_until(monday_utc(7, 30)), None);
    }

    #[test]
    fn day_lists_ranges_and_bad_entries() {
        let w = Window::parse("sat,SUN 18:00-05:00 +00:00").unwrap();
        assert_eq!(w.days, [false, false, false, false, false, true, true]);
        let w = Window::parse("Fri-Mon 01:00-02:00 +05:30").unwrap();
        assert_eq!(w.days, [true, false, false, false, true, true, true]);
        assert_eq!(w.offset_min, 330);
        for (bad, says) in [
            ("Mon-Fri 23:00-04:00", "is not DAYS HH:MM-HH:MM"),
            ("Monday 23:00-04:00 -08:00", "is not a day"),
            ("Mon 24:00-04:00 -08:00", "is not a time"),
            ("Mon 23:00 -08:00", "is not a time range"),
            ("Mon 23:00-23:00 -08:00", "must end at another time"),
            ("Mon 23:00-04:00 08:00", "is not a UTC offset"),
            ("Mon 23:00-04:00 -15:00", "is not a UTC offset"),
        ] {
            let e = Window::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = Windows::parse(&["Mon 01:00-02:00 +00:00".into(), "x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("entry 2: "), "{e}");
    }

    #[test]
    fn window_errors_keep_their_texts() {
        let text = |s: &str| Window::parse(s).unwrap_err().to_string();
        assert_eq!(
            text("Mon 23:00-04:00"),
            "'Mon 23:00-04:00' is not DAYS HH:MM-HH:MM ±HH:MM, e.g. \"Mon-Fri 23:00-04:00 -08:00\""
        );
        assert_eq!(
            text("Mon 23:00-23:00 -08:00"),
            "'23:00-23:00': the window must end at another time than it starts"
        );
        assert_eq!(
            text("Mon 9:00-10:00 +00:00"),
            "'9:00' is not a time like 23:00"
        );
        let e = Windows::parse(&["x".into()]).unwrap_err();
        assert_eq!(e.entry, 1);
        assert_eq!(e.error, WindowError::Shape("x".into()));
    }

    #[tokio::test]
    async fn a_window_holds_calls_until_the_clock_leaves_it_and_pauses_add_up() {
        let clock = Clock::system();
        let now = clock.now_ms();
        // A window open now (UTC): it started a minute ago, lasts two hours.
        let start = (now / 60_000 - 1) * 60_000;
        let t = time::OffsetDateTime::from_unix_timestamp((start / 1000) as i64).unwrap();
        let end = t + time::Duration::hours(2);
        let spec = format!(
            "{} {:02}:{:02}-{:02}:{:02} +00:00",
            &format!("{:?}", t.weekday())[..3],
            t.hour(),
            t.minute(),
            end.hour(),
            end.minute()
        );
        let limiter = std::sync::Arc::new(Limiter::new(
            "default",
            6000,
            Windows::parse(&[spec]).unwrap(),
            clock.clone(),
        ));
        assert!(limiter.in_window());
        assert_eq!(limiter.outage_counts_from(0, now), None);
        let stop = CancellationToken::new();
        let l = limiter.clone();
        let s = stop.clone();
        let waiting = tokio::spawn(async move { l.acquire(&s).await });
        while limiter.snapshot().window_waits == 0 {
            tokio::time::timeout(Duration::from_secs(5), limiter.changed())
                .await
                .ok();
        }
        assert_eq!(limiter.snapshot().allowed, 0);
        clock.advance(Duration::from_secs(2 * 3600 + 60));
        assert!(tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap());
        let after = clock.now_ms();
        assert_eq!(
            limiter.outage_counts_from(0, after),
            Some(start + 2 * 3_600_000),
            "the outage counts from the window's close"
        );
        limiter.pause(Duration::from_secs(30), PauseCause::Throttled);
        limiter.pause(Duration::from_secs(5), PauseCause::LowRemaining);
        let snap = limiter.snapshot();
        assert!(
            snap.paused_ms > 25_000 && snap.paused_ms <= 30_000,
            "{snap:?}"
        );
        assert_eq!(
            (snap.throttled, snap.low_remaining, snap.allowed),
            (1, 1, 1)
        );
        stop.cancel();
        assert!(!limiter.acquire(&stop).await, "shutdown ends a wait");
    }
}
