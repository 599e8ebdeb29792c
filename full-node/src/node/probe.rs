//! Instrumentation for the network simulator (cargo feature `testing`
//! only): a [`Probe`] callback that sees what the node publishes, receives,
//! decides and bans, with the time of each, and [`GossipView`], the node's
//! GossipSub scores and mesh sizes. A release build has neither.
//!
//! The callback runs on the node's event loop: it must be quick (the
//! simulator appends to a vector) and must not block.

use std::sync::Arc;

use libp2p::PeerId;
use tiernet_core::inbound::Acceptance;
use tiernet_core::wire::Topic;

use super::Node;

/// What the node reports to its probe.
#[derive(Debug, Clone)]
pub enum ProbeEvent {
    /// The node published a message of its own.
    Published {
        /// The topic.
        topic: Topic,
        /// What it is: `proposal` or `finalized` on `blocks`, else the topic name.
        kind: &'static str,
        /// The GossipSub message id (content-addressed, see `crate::gossip`).
        id: Vec<u8>,
        /// Payload size.
        bytes: usize,
        /// When (ms since the Unix epoch).
        at_ms: u64,
    },
    /// A message reached the node for the first time (GossipSub drops
    /// later copies before the node sees them).
    Received {
        /// The topic (`None`: not one of ours).
        topic: Option<Topic>,
        /// The GossipSub message id.
        id: Vec<u8>,
        /// The peer that relayed it to us.
        relay: PeerId,
        /// The signed GossipSub source, if any.
        publisher: Option<PeerId>,
        /// Payload size.
        bytes: usize,
        /// Our verdict.
        acceptance: Acceptance,
        /// Its reason: the inbound policy's metric label (`accept`, or why not).
        label: &'static str,
        /// When.
        at_ms: u64,
    },
    /// A height was decided here.
    Decided {
        /// The height.
        height: u64,
        /// The decided block's header hash.
        hash: [u8; 32],
        /// The block's time (its proposer's clock).
        proposed_ms: u64,
        /// When.
        at_ms: u64,
    },
    /// The node banned a peer for its local reputation.
    Banned {
        /// The peer.
        peer: PeerId,
        /// When.
        at_ms: u64,
    },
}

/// What a message of ours on `topic` is: `proposal` or `finalized` on
/// `blocks` (a finalized block is an announcement to our neighbours, who
/// drop it if they decided the height already), else the topic's name.
pub fn message_kind(topic: Topic, data: &[u8]) -> &'static str {
    use tiernet_core::wire::proto::{BlocksMessage, blocks_message};
    match topic {
        Topic::Blocks => match tiernet_core::wire::decode::<BlocksMessage>(data).map(|m| m.kind) {
            Ok(Some(blocks_message::Kind::Finalized(_))) => "finalized",
            Ok(Some(blocks_message::Kind::Proposal(_))) => "proposal",
            _ => "blocks",
        },
        other => other.name(),
    }
}

/// A probe callback (see the module docs).
pub type Probe = Arc<dyn Fn(ProbeEvent) + Send + Sync>;

/// The node's GossipSub view, for `TelemetryQuery::Gossip`.
#[derive(Debug, Clone, Default)]
pub struct GossipView {
    /// Every connected peer with its GossipSub score (`None`: scoring has
    /// no entry for it).
    pub scores: Vec<(PeerId, Option<f64>)>,
    /// Mesh peers per topic.
    pub mesh: Vec<(Topic, Vec<PeerId>)>,
}

impl Node {
    /// The node's metrics registry (what `/metrics` serves).
    pub fn metrics_registry(&self) -> Arc<std::sync::Mutex<prometheus_client::registry::Registry>> {
        self.registry.clone()
    }

    /// Installs the simulator's probe (replacing any earlier one).
    pub fn set_probe(&mut self, probe: Probe) {
        self.probe = Some(probe);
    }

    /// Reports to the probe, if one is installed.
    pub(super) fn probe(&self, event: impl FnOnce() -> ProbeEvent) {
        if let Some(probe) = &self.probe {
            probe(event());
        }
    }

    /// The GossipSub scores of connected peers and the mesh of each topic.
    pub(super) fn gossip_view(&self) -> GossipView {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        GossipView {
            scores: self
                .swarm
                .connected_peers()
                .map(|peer| (*peer, gossipsub.peer_score(peer)))
                .collect(),
            mesh: self
                .topics
                .iter()
                .map(|(topic, ident)| (topic, gossipsub.mesh_peers(&ident.hash()).copied().collect()))
                .collect(),
        }
    }
}
