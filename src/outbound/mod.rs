//! Outbound: traffic *to* the ERP. A signed Ingram webhook is verified and decoded
//! ([`webhook`], with `ingram::order`), stored durably, then rendered by the pure translator [`to_850`] and
//! delivered exactly once into the outbox by the [`outbox`] worker. The public listener's accept
//! loop, connection cap and timeouts are in [`listener`].

pub mod listener;
pub mod outbox;
pub mod to_850;
pub mod webhook;
