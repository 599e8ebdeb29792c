//! The request-response protocols and their codec (crate `tiernet-protocol`,
//! shared with the light client).

pub use tiernet_protocol::*;
