//! The seam between the workers and a distributor's API. The delivery worker holds each
//! account's [`Partner`] and knows nothing of who is behind it: it hands over a rendered call
//! and gets back a closed [`PartnerAnswer`] (accepted, throttled, failed with a retry
//! decision). Ingram is one implementation (`crate::ingram::partner`); a second distributor would be a sibling
//! module implementing the same trait, and the tests drive the worker with one that is not
//! Ingram. This module names no distributor.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::CallKind;
use crate::mapping::Mapping;

/// What a distributor answered to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerAnswer {
    /// Accepted (any 2xx): the job is done.
    Accepted { status: u16, rate: Rate },
    /// Too many calls: the account pauses (for `after` when the distributor said so) and the
    /// call goes again, no attempt spent.
    Throttled { after: Option<Duration> },
    /// Not accepted: what happened, and whether trying again can help.
    Failed {
        reason: String,
        status: Option<u16>,
        retry: Retry,
    },
}

/// Whether a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Later, not before `after` when the distributor said so.
    Later { after: Option<Duration> },
    /// Never as it is: the job becomes a dead letter.
    Never,
}

/// What an answer said of the account's rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    /// Calls left in the current window.
    pub remaining: Option<u64>,
    /// How long until the window resets.
    pub reset: Option<Duration>,
}

/// A boxed future, so that the trait stays object safe.
pub type Sending<'a> = Pin<Box<dyn Future<Output = PartnerAnswer> + Send + 'a>>;

/// A distributor's API, as the delivery worker uses it.
pub trait Partner: Send + Sync {
    /// Sends one call: `body` to `path` under the call's correlation id (the same for every
    /// attempt of one job).
    fn send<'a>(
        &'a self,
        path: &'a str,
        body: &'a serde_json::Value,
        correlation_id: &'a str,
    ) -> Sending<'a>;

    /// The request body of a call: its canonical body through the mapping's body program for
    /// `kind` (with the set's segments and the stored PO). Pure; may run a program.
    fn render_body(
        &self,
        mapping: &Mapping,
        kind: CallKind,
        canonical: &serde_json::Value,
        segments: &[Vec<String>],
        po: &serde_json::Value,
    ) -> Result<serde_json::Value, crate::program::BodyProgramError>;
}

/// Full-jitter exponential backoff for the `attempt`-th retry (0-based): a random wait between
/// zero and `base * 2^attempt`, capped at `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    use rand::Rng as _;
    let cap = base
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}
