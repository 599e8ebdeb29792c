//! Discovery: libp2p Kademlia on full nodes (issue 16).
//!
//! Each full node runs Kademlia in server mode on
//! `/tiernet/<network_id>/kad/1.0.0` (so networks never mix routing
//! tables), seeded with its bootstrap peers and the listen addresses that
//! connected peers announce (identify). While it has fewer peers than
//! `connections.target_peers` it runs a random walk (a closest-peers query
//! for a random key) every [`WALK_INTERVAL_LOW`], otherwise every
//! [`WALK_INTERVAL`]. The query dials the peers it learns of; the peer
//! manager admits those connections like any outbound ones.
//!
//! **Addresses learned are checked before they are kept**: the routing
//! table only takes a peer once a connection to it succeeded
//! (`BucketInserts::OnConnected`), and the peerstore keeps only the address
//! a successful outbound connection used (Noise proved the PeerId there).
//! What other peers merely claim never reaches the disk.
//!
//! **Nothing for free**: records and provider announcements are not stored
//! (`StoreInserts::FilterBoth`, and the node ignores them), so an outsider
//! cannot fill memory or disk through the DHT; Kademlia's own buckets and
//! query parallelism bound the rest.

use std::time::Duration;

use libp2p::kad::{self, BucketInserts, Mode, StoreInserts, store::MemoryStore};
use libp2p::{PeerId, StreamProtocol};
use tiernet_core::wire::NetworkId;

/// How often a node below its target peer count walks the DHT.
pub const WALK_INTERVAL_LOW: Duration = Duration::from_secs(5);
/// How often a node at its target walks the DHT.
pub const WALK_INTERVAL: Duration = Duration::from_secs(60);
/// How long one Kademlia query may run.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest Kademlia message, bytes.
pub const MAX_PACKET: usize = 16 * 1024;

/// The Kademlia protocol of `network`.
pub fn protocol(network: &NetworkId) -> Result<StreamProtocol, String> {
    StreamProtocol::try_from_owned(format!("/tiernet/{}/kad/1.0.0", network.as_str())).map_err(|e| e.to_string())
}

/// The Kademlia behaviour of a full node with `peer_id` on `network`.
pub fn behaviour(peer_id: PeerId, network: &NetworkId) -> Result<kad::Behaviour<MemoryStore>, String> {
    let mut config = kad::Config::new(protocol(network)?);
    config
        .set_kbucket_inserts(BucketInserts::OnConnected)
        .set_record_filtering(StoreInserts::FilterBoth)
        .set_query_timeout(QUERY_TIMEOUT)
        .set_max_packet_size(MAX_PACKET);
    let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), config);
    kad.set_mode(Some(Mode::Server));
    Ok(kad)
}
