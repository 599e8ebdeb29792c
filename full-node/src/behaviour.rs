//! The node's libp2p behaviour: the peer manager's gate (which connections
//! are admitted, pruned and redialled), the per-peer connection limit, a
//! block list for banned and blocklisted peers, identify, ping, the `/tiernet/handshake/1`
//! request-response protocol and GossipSub.

use std::convert::Infallible;
use std::time::Duration;

use libp2p::identity::PublicKey;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, gossipsub, identify, kad, ping};
use tiernet_core::wire::proto;

use crate::protocol::{HANDSHAKE_PROTOCOL, HandshakeCodec, SYNC_PROTOCOL, SyncCodec};

/// How long a handshake may take before it fails.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent handshake streams per connection (one is normal).
pub const HANDSHAKE_MAX_STREAMS: usize = 4;

/// How long a sync request may take.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent sync streams per connection.
pub const SYNC_MAX_STREAMS: usize = 8;

/// Protocol version announced by identify.
pub const IDENTIFY_PROTOCOL: &str = "/tiernet/id/1.0.0";

/// The agent string announced by identify: `tiernet-node/<crate version>`.
pub fn agent_version() -> String {
    format!("tiernet-node/{}", env!("CARGO_PKG_VERSION"))
}

/// Limits that [`Behaviour`] enforces on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most established connections of non-reserved peers (enforced by the
    /// peer manager's gate, which lets reserved peers beyond it).
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
}

/// The combined behaviour driven by the node's swarm.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "BehaviourEvent")]
pub struct Behaviour {
    /// The peer manager: admits, refuses, prunes and redials (first, so it
    /// sees every connection before the others).
    pub gate: crate::peer_manager::gate::Gate,
    /// Denies connections beyond the per-peer limit.
    pub limits: connection_limits::Behaviour,
    /// Refuses connections from banned and blocklisted peers.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Exchanges protocol version, agent, listen addresses and keys.
    pub identify: identify::Behaviour,
    /// Measures round-trip times and detects dead connections.
    pub ping: ping::Behaviour,
    /// `/tiernet/handshake/1`: Hello ↔ Hello.
    pub handshake: request_response::Behaviour<HandshakeCodec>,
    /// `/tiernet/sync/1`: blocks, headers, proofs for catch-up and light clients.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// The five topics.
    pub gossipsub: gossipsub::Behaviour,
    /// Discovery: Kademlia (see [`crate::discovery`]).
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
}

impl Behaviour {
    /// The behaviour for a node with this public key, these limits and
    /// this peer manager gate.
    pub fn new(
        local_key: PublicKey,
        limits: Limits,
        gate: crate::peer_manager::gate::Gate,
        gossipsub: gossipsub::Behaviour,
        kad: kad::Behaviour<kad::store::MemoryStore>,
    ) -> Self {
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(limits.max_connections_per_peer));
        Self {
            gate,
            limits: connection_limits::Behaviour::new(connection_limits),
            blocked: allow_block_list::Behaviour::default(),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), local_key).with_agent_version(agent_version()),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            handshake: request_response::Behaviour::new(
                [(HANDSHAKE_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(HANDSHAKE_TIMEOUT)
                    .with_max_concurrent_streams(HANDSHAKE_MAX_STREAMS),
            ),
            sync: request_response::Behaviour::new(
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(SYNC_TIMEOUT)
                    .with_max_concurrent_streams(SYNC_MAX_STREAMS),
            ),
            gossipsub,
            kad,
        }
    }
}

/// Events from [`Behaviour`] to the node's event loop.
#[derive(Debug)]
pub enum BehaviourEvent {
    /// An identify event.
    Identify(Box<identify::Event>),
    /// A ping event.
    Ping(ping::Event),
    /// A handshake event.
    Handshake(Box<request_response::Event<proto::Hello, proto::HandshakeResponse>>),
    /// A sync event.
    Sync(Box<request_response::Event<proto::SyncRequest, proto::SyncResponse>>),
    /// A GossipSub event.
    Gossipsub(Box<gossipsub::Event>),
    /// A Kademlia event.
    Kad(Box<kad::Event>),
}

impl From<kad::Event> for BehaviourEvent {
    fn from(event: kad::Event) -> Self {
        Self::Kad(Box::new(event))
    }
}

impl From<gossipsub::Event> for BehaviourEvent {
    fn from(event: gossipsub::Event) -> Self {
        Self::Gossipsub(Box::new(event))
    }
}

impl From<request_response::Event<proto::Hello, proto::HandshakeResponse>> for BehaviourEvent {
    fn from(event: request_response::Event<proto::Hello, proto::HandshakeResponse>) -> Self {
        Self::Handshake(Box::new(event))
    }
}

impl From<request_response::Event<proto::SyncRequest, proto::SyncResponse>> for BehaviourEvent {
    fn from(event: request_response::Event<proto::SyncRequest, proto::SyncResponse>) -> Self {
        Self::Sync(Box::new(event))
    }
}

impl From<identify::Event> for BehaviourEvent {
    fn from(event: identify::Event) -> Self {
        Self::Identify(Box::new(event))
    }
}

impl From<ping::Event> for BehaviourEvent {
    fn from(event: ping::Event) -> Self {
        Self::Ping(event)
    }
}

impl From<Infallible> for BehaviourEvent {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
