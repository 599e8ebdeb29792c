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
//!   `wait_for_height`, `get_proven_state` (the value and the head it was
//!   proven at), `lookup_identity` ([`identity`]), `sync_snapshot_with`
//!   (verified entries chunk by chunk, with progress), `peer_infos`
//!   ([`peers`]), `export_trust`, `stop`. The bindings (wasm, uniffi) are
//!   thin wrappers that offer the same calls under the same names.
//!
//! Nothing unverified is returned: a peer that serves data that does not
//! verify is reported ([`Event::PeerRejected`]), disconnected and not asked
//! again, and the request goes to another peer.
//!
//! For wallets that stay open for hours:
//!
//! - **Staying connected.** [`dialer::Dialer`] redials lost peers after
//!   250 ms, backs off ×2 per failure up to 30 s with ±25 % jitter, and keeps
//!   [`LightClientBuilder::min_peers`] peers from the bootstrap list plus
//!   addresses learned from full nodes (the `Peers` sync request). A stall
//!   (no verified head for [`Freshness::stall_after_ms`]) redials at once.
//! - **Eclipse and staleness.** GossipSub validation is on: only blocks the
//!   client verified are forwarded, undecodable bytes are rejected and their
//!   sender dropped, anything it cannot judge is ignored. A head older than
//!   [`Freshness::max_head_age_ms`] on the local clock is
//!   [`SyncStatus::Stale`]; [`SyncStatus::Current`] needs two peers to vouch
//!   for the head with verified data when two are connected; conflicting
//!   verified headers are [`Event::Conflict`]. See [`sync`].
//! - **Persisted trust.** [`LightClientBuilder::trust_file`] saves the
//!   trusted state after each verified head and starts from it within the
//!   trusting period; [`LightClient::export_trust`] and
//!   [`Checkpoint::from_bytes`] export and import checkpoints ([`persist`]).
//! - **Errors** keep [`ErrorKind::Invalid`], [`ErrorKind::NotEnoughTrust`]
//!   and [`ErrorKind::NoPeers`] apart from [`ErrorKind::Network`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod dialer;
pub mod identity;
pub mod peers;
pub mod persist;
pub mod rt;
pub mod snapshot;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use client::{ClientError, ErrorKind, LightClient, LightClientBuilder, ProvenValue, VerifiedChunk};
pub use identity::ProvenIdentity;
pub use peers::{PeerInfo, PeerState, TransportKind};
pub use sync::{Checkpoint, Event, Freshness, GossipVerdict, SyncStatus, VerifiedHead};
