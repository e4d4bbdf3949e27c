//! The flow *to* the ERP: Ingram's purchase orders. A signed Ingram webhook is received,
//! verified and decoded ([`webhook`], with `ingram::order`), stored durably, then rendered by the
//! pure translator [`to_850`] and delivered exactly once into the ERP's outbox by the [`outbox`]
//! worker. (The public listener's accept loop is `crate::listener`.)

pub mod outbox;
pub mod to_850;
pub mod webhook;
