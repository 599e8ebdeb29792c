//! `tiernet-light`: a light client that follows a tiernet chain from a
//! trusted checkpoint and proves every root it reports.
//!
//! ```no_run
//! # async fn demo(genesis: tiernet_core::genesis::Genesis, addr: String) -> Result<(), tiernet_light::ClientError> {
//! use tiernet_light::{Checkpoint, LightClient};
//! let client = LightClient::builder()
//!     .network(genesis.network.clone())
//!     .bootstrap([addr])
//!     .checkpoint(Checkpoint::genesis(&genesis)?)
//!     .build()?;
//! client.start().await?; // connects, verifies a chain proof to the head
//! let head = client.head(); // the latest verified header
//! let record = client.get_state(b"params".to_vec()).await?; // proven against head.state_root
//! # let _ = (head, record); Ok(()) }
//! ```
//!
//! - [`sync::LightSync`] is the sans-IO state machine: it takes responses
//!   and gossiped blocks, verifies them with `tiernet_core::verify`, and
//!   says which peers misbehaved; [`snapshot::SnapshotSync`] does the same
//!   for a snapshot's chunks, resumable at any chunk.
//! - [`transport::Transport`] is how it reaches full nodes;
//!   [`transport::Libp2pTransport`] is the native one (TCP, Noise, Yamux,
//!   GossipSub on `blocks`, `/tiernet/sync/1`). The client joins as TL0.
//! - [`LightClient`] drives both on tokio: `start`, `head`, `events`,
//!   `get_state`, `sync_snapshot`.
//!
//! Nothing unverified is returned: a peer that serves data that does not
//! verify is reported ([`Event::PeerRejected`]), disconnected and not asked
//! again, and the request goes to another peer.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod rt;
pub mod snapshot;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use client::{ClientError, ErrorKind, LightClient, LightClientBuilder, ProvenValue};
pub use sync::{Checkpoint, Event, VerifiedHead};
