//! Everything specific to Ingram Micro's vendor APIs: the webhook's signature
//! ([`signature`]), decoding its JSON into the domain PO ([`order`]), and the OAuth2 API client
//! with Ingram's headers and error shapes ([`api`]). A second partner (another Ingram country
//! account, another distributor) would be a sibling module with the same parts, not an edit of
//! the workers, the store or the X12 codec.

pub mod api;
pub mod order;
pub mod signature;
