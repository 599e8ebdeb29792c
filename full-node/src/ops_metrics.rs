//! Operations metrics: liveness, latencies, build and sync state.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `tiernet_build_info{version}` | gauge (1) | the running build |
//! | `tiernet_syncing` | gauge | 1 while the node is catching up to heights it saw announced |
//! | `tiernet_mempool_size` | gauge | proofs waiting in the mempool |
//! | `tiernet_best_known_height` | gauge | the highest height an online node reported in its heartbeat |
//! | `tiernet_liveness_nodes{state}` | gauge | nodes heard on `meta`, `online` or `offline` |
//! | `tiernet_liveness_offline_total` | counter | nodes reported offline |
//! | `tiernet_liveness_validators_offline` | gauge | members of the validator set reported offline |
//! | `tiernet_heartbeat_propagation_seconds` | histogram | heartbeat send time → receipt here |
//! | `tiernet_finality_seconds` | histogram | a height's header time → its decision here |
//! | `tiernet_sync_request_seconds` | histogram | our catch-up requests: sent → answered |
//! | `tiernet_sync_response_bytes` | histogram | size of the sync answers we serve |
//! | `tiernet_handshake_seconds` | histogram | connection established → handshake verified |
//! | `tiernet_uptime_attestations_total` | counter | attestations this node published |
//! | `tiernet_uptime_proofs_submitted_total` | counter | own uptime proofs submitted |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `tiernet_build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
}

/// Labels of `tiernet_liveness_nodes`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `online` or `offline`.
    pub state: &'static str,
}

/// The operations metrics (see the module docs for names).
#[derive(Debug, Clone)]
pub struct OpsMetrics {
    /// Build info (always 1).
    pub build_info: Family<BuildLabels, Gauge>,
    /// 1 while catching up.
    pub syncing: Gauge,
    /// Mempool entries.
    pub mempool_size: Gauge,
    /// Highest height reported by an online node.
    pub best_known_height: Gauge,
    /// Nodes heard, by state.
    pub liveness_nodes: Family<StateLabels, Gauge>,
    /// Offline reports.
    pub liveness_offline: Counter,
    /// Validators reported offline.
    pub validators_offline: Gauge,
    /// Heartbeat propagation delay, s.
    pub heartbeat_propagation: Histogram,
    /// Finality latency, s.
    pub finality: Histogram,
    /// Catch-up request duration, s.
    pub sync_request: Histogram,
    /// Sync answer size, bytes.
    pub sync_response_bytes: Histogram,
    /// Handshake duration, s.
    pub handshake: Histogram,
    /// Attestations published.
    pub attestations: Counter,
    /// Own uptime proofs submitted.
    pub uptime_proofs: Counter,
}

fn seconds() -> Histogram {
    // 1 ms … ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl OpsMetrics {
    /// Registers every metric (the registry's prefix is `tiernet`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            build_info: Family::default(),
            syncing: Gauge::default(),
            mempool_size: Gauge::default(),
            best_known_height: Gauge::default(),
            liveness_nodes: Family::default(),
            liveness_offline: Counter::default(),
            validators_offline: Gauge::default(),
            heartbeat_propagation: seconds(),
            finality: seconds(),
            sync_request: seconds(),
            sync_response_bytes: Histogram::new(exponential_buckets(256.0, 4.0, 10)),
            handshake: seconds(),
            attestations: Counter::default(),
            uptime_proofs: Counter::default(),
        };
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        for state in ["online", "offline"] {
            m.liveness_nodes.get_or_create(&StateLabels { state }).set(0);
        }
        registry.register("build_info", "The running build (always 1)", m.build_info.clone());
        registry.register("syncing", "1 while catching up to announced heights", m.syncing.clone());
        registry.register("mempool_size", "Proofs waiting in the mempool", m.mempool_size.clone());
        registry.register(
            "best_known_height",
            "Highest height an online node reported in its heartbeat",
            m.best_known_height.clone(),
        );
        registry.register(
            "liveness_nodes",
            "Nodes heard on meta, by state",
            m.liveness_nodes.clone(),
        );
        registry.register("liveness_offline", "Nodes reported offline", m.liveness_offline.clone());
        registry.register(
            "liveness_validators_offline",
            "Members of the validator set reported offline",
            m.validators_offline.clone(),
        );
        registry.register(
            "heartbeat_propagation_seconds",
            "Heartbeat send time to its receipt here",
            m.heartbeat_propagation.clone(),
        );
        registry.register(
            "finality_seconds",
            "A height's header time to its decision here",
            m.finality.clone(),
        );
        registry.register(
            "sync_request_seconds",
            "Catch-up requests from sent to answered",
            m.sync_request.clone(),
        );
        registry.register(
            "sync_response_bytes",
            "Size of the sync answers served",
            m.sync_response_bytes.clone(),
        );
        registry.register(
            "handshake_seconds",
            "Connection established to handshake verified",
            m.handshake.clone(),
        );
        registry.register(
            "uptime_attestations",
            "Uptime attestations published",
            m.attestations.clone(),
        );
        registry.register(
            "uptime_proofs_submitted",
            "Own uptime proofs submitted",
            m.uptime_proofs.clone(),
        );
        m
    }
}
