//! Identities: the libp2p node key, the ZSI identity, and the handshake.
//!
//! - [`NodeKeypair`]: the Ed25519 key behind a node's PeerId, kept in the
//!   data directory (`node_key`, mode 0600). Created on first start, loaded
//!   afterwards; a file that exists but does not parse is an error naming the
//!   path, and is never replaced.
//! - [`ZsiKeypair`]: the long-lived on-chain identity, an Ed25519 identity key
//!   plus an sr25519 VRF key; `zsi_id = BLAKE3("tiernet/zsi/v1" ‖ identity_pk ‖ vrf_pk)`.
//! - [`hello`]: the `/tiernet/handshake/1` `Hello`, signed by the identity key
//!   and carrying a VRF proof over `H(network_id ‖ sender PeerId ‖ receiver
//!   PeerId ‖ epoch)`, so it cannot be replayed to another peer or epoch.
//! - [`registry`]: looking a verified ZSI up in the identity registry (the
//!   genesis file now, chain state later) to learn its tier.

pub mod hello;
mod keyfile;
mod node_key;
pub mod registry;
mod zsi;

pub use keyfile::{KeyFileError, KeyOrigin, ParseError as KeyParseError};
pub use libp2p_identity::PeerId;
pub use node_key::NodeKeypair;
pub use zsi::{VrfError, ZsiId, ZsiKeypair, ZsiPublic};
