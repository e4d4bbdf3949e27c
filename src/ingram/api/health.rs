//! What the client has seen of Ingram lately, for the console's health line and the "Ingram is
//! down" alert: when Ingram last answered (any HTTP answer below 500, from the API or its token
//! endpoint), since when it has not (a timeout, a refused or broken connection, a 5xx; cleared
//! by the next answer), the last such problem, and the access token's state. Times come from the
//! daemon's [`Clock`], so tests move them forward instead of waiting. Nothing here holds a token
//! or a secret.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::clock::Clock;

/// The access token as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenState {
    /// None fetched yet (no call needed one).
    #[default]
    None,
    /// A token was issued; it is replaced before `renew_by_ms`.
    Valid { renew_by_ms: u64 },
    /// The token endpoint refused the credentials (HTTP `status`, with its message).
    Refused {
        at_ms: u64,
        status: u16,
        message: String,
    },
}

/// A snapshot of [`ApiHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reachability {
    /// Clock ms of the last answer; `None` when none since start.
    pub last_answer_ms: Option<u64>,
    /// Clock ms of the first failure since the last answer; `None` while Ingram answers (or
    /// nothing was tried).
    pub unanswered_since_ms: Option<u64>,
    /// The last failure's description (no URL beyond the host, no token).
    pub last_problem: Option<String>,
    pub token: TokenState,
}

/// Shared by every clone of an `ApiClient`.
#[derive(Debug)]
pub struct ApiHealth {
    clock: Clock,
    last_answer_ms: AtomicU64,
    unanswered_since_ms: AtomicU64,
    detail: Mutex<(Option<String>, TokenState)>,
}

impl ApiHealth {
    pub fn new(clock: Clock) -> ApiHealth {
        ApiHealth {
            clock,
            last_answer_ms: AtomicU64::new(0),
            unanswered_since_ms: AtomicU64::new(0),
            detail: Mutex::default(),
        }
    }

    /// The clock these times are read from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// An HTTP status arrived from Ingram: below 500 it answered; 5xx counts as no answer.
    pub(crate) fn status(&self, status: u16, what: &str) {
        if status < 500 {
            self.answered();
        } else {
            self.unanswered(format!("{what} answered {status}"));
        }
    }

    pub(crate) fn answered(&self) {
        self.last_answer_ms
            .store(self.clock.now_ms().max(1), Relaxed);
        self.unanswered_since_ms.store(0, Relaxed);
    }

    /// No answer (timeout, connection refused or broken).
    pub(crate) fn unanswered(&self, problem: String) {
        let now = self.clock.now_ms().max(1);
        let _ = self
            .unanswered_since_ms
            .compare_exchange(0, now, Relaxed, Relaxed);
        self.lock().0 = Some(problem);
    }

    pub(crate) fn token(&self, state: TokenState) {
        self.lock().1 = state;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<String>, TokenState)> {
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Reachability {
        let nonzero = |v: u64| (v != 0).then_some(v);
        let (problem, token) = self.lock().clone();
        Reachability {
            last_answer_ms: nonzero(self.last_answer_ms.load(Relaxed)),
            unanswered_since_ms: nonzero(self.unanswered_since_ms.load(Relaxed)),
            last_problem: problem,
            token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_5xx_or_no_answer_starts_the_outage_and_an_answer_ends_it() {
        let h = ApiHealth::new(Clock::system());
        assert_eq!(h.snapshot().unanswered_since_ms, None);
        h.unanswered("connection failed".into());
        let since = h.snapshot().unanswered_since_ms.unwrap();
        h.clock.advance(std::time::Duration::from_secs(60));
        h.status(503, "the API");
        assert_eq!(h.snapshot().unanswered_since_ms, Some(since), "kept");
        assert_eq!(
            h.snapshot().last_problem.as_deref(),
            Some("the API answered 503")
        );
        h.status(404, "the API");
        let s = h.snapshot();
        assert_eq!(s.unanswered_since_ms, None);
        assert!(s.last_answer_ms.unwrap() >= since + 60_000);
    }
}
