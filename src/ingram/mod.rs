//! Everything specific to Ingram Micro's vendor APIs: the webhook's signature
//! ([`signature`]), decoding its JSON into the domain PO ([`order`]), the builders of the
//! canonical PO Response and PO Status bodies from typed 855s and 856s ([`from_855`],
//! [`from_856`], with what they share in [`calls`]), and the OAuth2 API client with Ingram's
//! headers and error shapes ([`api`]), which is Ingram's [`crate::partner::Partner`]
//! ([`partner`]). Another Ingram country account is another account of this partner (its own
//! settings, secrets and mapping); another distributor would be a sibling module implementing
//! the same trait, not an edit of the workers, the store or the X12 codec.

pub mod api;
pub mod calls;
pub mod from_855;
pub mod from_856;
pub mod order;
pub mod partner;
pub mod signature;
