//! Ingram as a [`Partner`]: the delivery worker's calls go through [`ApiClient::post_json`],
//! and Ingram's answers and errors become the partner's closed [`PartnerAnswer`] (a 429 is
//! `Throttled`; the retry decision is `Error::retry_action`). Bodies render through the
//! mapping's body programs ([`crate::ingram::calls::render_body`]).

use crate::domain::CallKind;
use crate::ingram::api::{ApiClient, RetryAction};
use crate::mapping::Mapping;
use crate::partner::{Partner, PartnerAnswer, Rate, Retry, Sending};

impl Partner for ApiClient {
    fn send<'a>(
        &'a self,
        path: &'a str,
        body: &'a serde_json::Value,
        correlation_id: &'a str,
    ) -> Sending<'a> {
        Box::pin(async move {
            match self.post_json(path, body, correlation_id).await {
                Ok(d) => PartnerAnswer::Accepted {
                    status: d.status,
                    rate: Rate {
                        remaining: d.rate.remaining,
                        reset: d.rate.reset,
                    },
                },
                Err(e) => match e.throttled() {
                    Some(after) => PartnerAnswer::Throttled { after },
                    None => PartnerAnswer::Failed {
                        reason: e.to_string(),
                        status: e.status(),
                        retry: match e.retry_action() {
                            RetryAction::Retry { after } => Retry::Later { after },
                            RetryAction::Reject => Retry::Never,
                        },
                    },
                },
            }
        })
    }

    fn render_body(
        &self,
        mapping: &Mapping,
        kind: CallKind,
        canonical: &serde_json::Value,
        segments: &[Vec<String>],
        po: &serde_json::Value,
    ) -> Result<serde_json::Value, crate::program::BodyProgramError> {
        crate::ingram::calls::render_body(mapping, kind, canonical, segments, po)
    }
}
