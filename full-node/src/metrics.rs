//! The node's own Prometheus metrics (libp2p and GossipSub register theirs
//! beside them). Every admission decision, reputation change and ban is
//! counted here and also logged as a structured `tracing` event.
//!
//! | metric | labels |
//! |---|---|
//! | `tiernet_gossip_messages_total` | `topic`, `tier` (of the author), `decision` (`accept`, a reject or ignore reason) |
//! | `tiernet_reputation_events_total` | `event` |
//! | `tiernet_bans_total` | — |
//! | `tiernet_peer_score` | `peer`, `tier` (connected peers only) |
//! | `tiernet_peers` | `tier` (connected peers) |
//! | `tiernet_chain_height` | — (last committed height) |
//! | `tiernet_finality_ms` | — (start of the last height to its decision, ms) |
//! | `tiernet_proofs_included_total` | — |
//!
//! Liveness, latency histograms, build info and sync state are in
//! [`crate::ops_metrics`].

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a gossip decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GossipLabels {
    /// Topic name.
    pub topic: &'static str,
    /// Tier of the author (`TL0`..`TL5`, `certified` for validator-certified content, `-` when unknown).
    pub tier: &'static str,
    /// `accept`, or the reason of a reject or ignore.
    pub decision: &'static str,
}

/// Labels of a reputation event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The event's label.
    pub event: &'static str,
}

/// Labels of a catch-up answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    /// `applied`, `unusable`, `not_found`, `invalid`, `failed` or `silent`.
    pub answer: &'static str,
}

/// Labels of a per-peer gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// PeerId.
    pub peer: String,
    /// Its tier.
    pub tier: &'static str,
}

/// Labels of a per-tier gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// `TL0`..`TL5`.
    pub tier: &'static str,
}

/// The node's metrics.
#[derive(Debug, Default, Clone)]
pub struct NodeMetrics {
    /// Gossip validation decisions.
    pub gossip: Family<GossipLabels, Counter>,
    /// Local reputation events.
    pub reputation_events: Family<EventLabels, Counter>,
    /// Bans imposed.
    pub bans: Counter,
    /// Local score of each connected peer.
    pub peer_score: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    /// Connected peers by tier.
    pub peers: Family<TierLabels, Gauge>,
    /// Last committed height.
    pub chain_height: Gauge,
    /// Milliseconds from the start of the last height to its decision.
    pub finality_ms: Gauge,
    /// Proofs included in committed blocks.
    pub proofs_included: Counter,
    /// Hellos refused before verification (over the per-connection budget).
    pub hellos_refused: Counter,
    /// Catch-up requests by how they ended.
    pub catch_up: Family<AnswerLabels, Counter>,
}

impl NodeMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "gossip_messages",
            "Gossip messages validated, by topic, author tier and decision",
            metrics.gossip.clone(),
        );
        registry.register(
            "reputation_events",
            "Local reputation events, by kind",
            metrics.reputation_events.clone(),
        );
        registry.register("bans", "Peers banned for their local reputation", metrics.bans.clone());
        registry.register(
            "peer_score",
            "Local reputation score of each connected peer",
            metrics.peer_score.clone(),
        );
        registry.register("peers", "Connected peers by tier", metrics.peers.clone());
        registry.register("chain_height", "Last committed height", metrics.chain_height.clone());
        registry.register(
            "finality_ms",
            "Milliseconds from the start of the last height to its decision",
            metrics.finality_ms.clone(),
        );
        registry.register(
            "proofs_included",
            "Proofs included in committed blocks",
            metrics.proofs_included.clone(),
        );
        registry.register(
            "hellos_refused",
            "Hellos refused before verification: over the per-connection budget",
            metrics.hellos_refused.clone(),
        );
        registry.register(
            "catch_up_answers",
            "Catch-up requests for finalized blocks, by how they ended (silent: the deadline passed)",
            metrics.catch_up.clone(),
        );
        metrics
    }
}
