//! The running node: its keys, its store, its swarm and the event loop.
//!
//! [`Node::new`] loads (or on first start creates) the node key, loads the
//! ZSI identity and the genesis registry if there are any, opens the store
//! and the peerstore, builds the transports (TCP, WebSocket, WebRTC-direct)
//! and opens the listeners. [`Node::run`] dials the bootstrap peers and the
//! best known peers from the peerstore, runs the handshake on every new
//! connection, and drives the swarm until the shutdown future completes;
//! then it closes the listeners and connections and flushes the peerstore.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod bans;
mod chain_flow;
mod gossip_flow;
mod ops_flow;
mod peers;
#[cfg(feature = "testing")]
pub mod probe;
pub mod register_flow;

#[cfg(feature = "testing")]
pub use gossip_flow::{RECEIVED_DATA_MAX, RECEIVED_KEPT};

use std::collections::VecDeque;

use libp2p::metrics::{Metrics as Libp2pMetrics, Recorder};
use prometheus_client::registry::Registry;
use tiernet_core::admission::AdmissionPolicy;
use tiernet_core::chain::ValidatorSet;
use tiernet_core::inbound::InboundPolicy;
use tiernet_core::ratelimit::{Limit, Limiter, Rate};
#[cfg(feature = "testing")]
use tiernet_core::wire::Topic;
use tokio::sync::mpsc;

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundFailure, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use tiernet_core::genesis::{Genesis, GenesisError};
use tiernet_core::identity::registry::PeerStanding;
use tiernet_core::identity::{KeyFileError, KeyOrigin, NodeKeypair, ZsiKeypair};
use tiernet_core::reputation::PeerEvent;
use tiernet_core::tier::Tier;
use tiernet_core::wire::proto::{self, handshake_response};
use tracing::{debug, info, trace, warn};

use crate::behaviour::{Behaviour, BehaviourEvent, Limits, agent_version};
use crate::config::ValidConfig;
use crate::gossip::Topics;
use crate::handshake::Handshake;
use crate::metrics::{NodeMetrics, TierLabels};
use crate::output::{Report, Reporter};
use crate::peerstore::Peerstore;
use crate::store::{Store, StoreError};
#[cfg(feature = "testing")]
use crate::telemetry::ReceivedView;
use crate::telemetry::{PeerView, StatusView, TelemetryError, TelemetryQuery, TelemetryServer};
use crate::transport::{self, TransportError, TransportOptions, transport_name};
use crate::webrtc_cert::{CertError, load_or_create_certificate};

/// Builds a node's transport from its libp2p key (see [`Node::with_transport`]).
pub type TransportFactory = Box<
    dyn FnOnce(
            &libp2p::identity::Keypair,
        )
            -> Result<libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>, TransportError>
        + Send,
>;

/// How long shutdown waits for listeners and connections to close cleanly
/// before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How often batched peerstore changes are written.
pub const PEERSTORE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// How many known peers from the peerstore are dialled on start.
pub const REDIAL_ON_START: usize = 32;

/// Milliseconds since the Unix epoch (0 if the clock is before it), plus
/// the test-only `testing.clock_offset_ms` in builds with the cargo feature
/// `testing`.
pub fn now_ms() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    #[cfg(feature = "testing")]
    let now = now.saturating_add_signed(CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::Relaxed));
    now
}

/// `testing.clock_offset_ms` of the (one) node in this process.
#[cfg(feature = "testing")]
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A node that could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// [`Node::new`] was called outside a Tokio runtime.
    #[error("the node must be started from within a Tokio runtime")]
    NoRuntime,
    /// The node key could not be loaded or created; the message names the
    /// file, and a corrupt file was left untouched.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The ZSI identity file could not be loaded.
    #[error("identity file {0} (identity_file or --identity) does not exist; create one with `tiernet-node init`")]
    MissingIdentity(PathBuf),
    /// The genesis file is missing, unreadable or invalid.
    #[error("genesis file {path}: {reason}")]
    Genesis {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store or the peerstore could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The WebRTC certificate could not be loaded or created.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// The transports could not be built.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The telemetry endpoint could not start.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// GossipSub could not be set up.
    #[error(transparent)]
    Gossip(#[from] crate::gossip::GossipError),
    /// The chain could not be opened from the store.
    #[error("chain: {0}")]
    Chain(String),
    /// A configured listen address could not be opened.
    #[error("cannot listen on {addr} (from listen.tcp or --listen): {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why, e.g. the address is in use.
        reason: String,
    },
}

/// The chain of `genesis` from `store`, and a consensus engine that
/// resumes after its last block. A node without a ZSI identity follows the
/// chain with a throwaway key (it is in no validator set, so never votes).
fn open_chain(
    store: &Store,
    genesis: &Genesis,
    identity: Option<&ZsiKeypair>,
) -> Result<(crate::consensus::chain::Chain, crate::consensus::engine::Engine), NodeError> {
    use crate::consensus::chain::Chain;
    use crate::consensus::engine::Engine;
    let me = identity.map(|i| i.zsi_id());
    let chain = Chain::open(store.clone(), genesis, me).map_err(|e| NodeError::Chain(e.to_string()))?;
    let key = match identity {
        Some(identity) => identity.identity_key().clone(),
        None => ed25519_dalek::SigningKey::from_bytes(&rand::random()),
    };
    let address = me.unwrap_or(tiernet_core::identity::ZsiId(tiernet_core::hash::Hash32::ZERO));
    let params = &genesis.consensus;
    let timeouts = crate::consensus::context::timeouts(params);
    let engine = Engine::new(
        chain.genesis().clone(),
        chain.start_point(),
        address,
        key,
        timeouts,
        Duration::from_millis(params.block_time_ms),
    )
    .map_err(|e| NodeError::Chain(e.to_string()))?;
    Ok((chain, engine))
}

/// A tiernet full node.
pub struct Node {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    config: ValidConfig,
    reporter: Reporter,
    listeners: HashSet<ListenerId>,
    listen_addrs: Vec<Multiaddr>,
    shutting_down: bool,
    handshake: Handshake,
    peerstore: Peerstore,
    /// Connected peers: their connections (with the transport of each) and
    /// their standing once a handshake verified it.
    live: HashMap<PeerId, LivePeer>,
    /// Inbound handshakes we rejected: the peer is disconnected once the
    /// rejection has been sent.
    rejected: HashSet<InboundRequestId>,
    /// Peers to disconnect once their rejection grace period is over;
    /// bounded by the connection limit, since each needs a connection.
    delayed_disconnects: futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, PeerId>>,
    registry: Arc<Mutex<Registry>>,
    libp2p_metrics: Libp2pMetrics,
    metrics: NodeMetrics,
    queries: mpsc::Receiver<TelemetryQuery>,
    query_sender: mpsc::Sender<TelemetryQuery>,
    reloads: mpsc::Receiver<ValidConfig>,
    reload_sender: mpsc::Sender<ValidConfig>,
    topics: Topics,
    /// The current validator set (from genesis until the chain exists).
    validators: Option<ValidatorSet>,
    policy: AdmissionPolicy,
    /// The sans-IO decisions on inbound gossip.
    inbound: InboundPolicy,
    /// Where seen ids and replay windows are persisted (in batches).
    gossip_state: crate::gossip_state::GossipStateStore,
    /// Sync requests per peer.
    sync_limits: Limiter<chain_flow::SyncLimit>,
    /// Hellos per connection.
    hello_limits: Limiter<HelloLimit>,
    /// Banned peers and when their ban ends.
    bans: HashMap<PeerId, u64>,
    allow: std::collections::BTreeSet<PeerId>,
    block: std::collections::BTreeSet<PeerId>,
    heartbeat_sequence: u64,
    /// When validators joining make us send our votes again.
    join_rebroadcasts: peers::JoinRebroadcasts,
    /// When the DHT was last walked (ms).
    last_walk_ms: u64,
    /// Accepted messages for `/testing/received`.
    #[cfg(feature = "testing")]
    received: VecDeque<ReceivedMessage>,
    /// The chain (with a genesis).
    chain: Option<crate::consensus::chain::Chain>,
    /// The consensus engine (with a genesis).
    engine: Option<crate::consensus::engine::Engine>,
    /// Kept state snapshots (with a genesis).
    snapshots: Option<crate::snapshots::Snapshots>,
    /// Armed consensus timers.
    timers: futures::stream::FuturesUnordered<chain_flow::TimerFuture>,
    /// Sync requests held unanswered (`testing.silent_sync`).
    #[cfg(feature = "testing")]
    silent_requests: VecDeque<ResponseChannel<proto::SyncResponse>>,
    /// Catch-up: whom to ask for the next finalized block.
    catch_up: crate::catch_up::CatchUp<libp2p::request_response::OutboundRequestId>,
    /// Digests of our recent consensus messages (already published).
    published: VecDeque<[u8; 32]>,
    /// The latest decisions' finality latencies (bounded).
    finality: VecDeque<crate::telemetry::FinalitySample>,
    /// The network simulator's instrumentation.
    #[cfg(feature = "testing")]
    probe: Option<probe::Probe>,
    /// Nodes heard on `meta` (bounded).
    liveness: crate::liveness::LivenessTable,
    /// Witnessing, attestations and our own uptime proofs (with a chain).
    uptime: Option<crate::uptime::UptimeDuty>,
    /// Round-trip times to connected peers (ping), ms; bounded.
    rtts: HashMap<PeerId, u32>,
    /// When each connected peer's first connection was established (ms),
    /// until its handshake completes: the handshake histogram.
    handshake_started: HashMap<PeerId, u64>,
    /// The catch-up request in flight and when it was sent (ms).
    sync_sent_ms: Option<u64>,
    /// Operations metrics.
    ops: crate::ops_metrics::OpsMetrics,
    /// Verification budget for `stwo/v1` proofs (issue 19).
    stark_budget: tiernet_core::proof::stwo::VerifyBudget<register_flow::BudgetKey>,
    /// Our own pending registration (`tiernet-node register`).
    registration: Option<register_flow::PendingRegistration>,
}

/// What this node decided about a gossip message (kept for
/// `/testing/received`).
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
struct ReceivedMessage {
    topic: Topic,
    message_id: String,
    author: String,
    tier: &'static str,
    decision: &'static str,
    data: Vec<u8>,
}

/// How often a node publishes its heartbeat on `meta` by default
/// (`heartbeat.interval_ms`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// A node heard this many blocks below the highest height heard is listed
/// as falling behind in `GET /alerts` (the `TiernetFallingBehind` rule uses
/// the same margin).
pub const BEHIND_ALERT_BLOCKS: u64 = 10;

/// How often expired bans are lifted.
const BAN_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Most keys each rate limiter tracks.
const RATE_LIMIT_KEYS: usize = 8192;

/// Hellos one connection may send. A handshake needs one; a few more are
/// tolerated (a reconnecting client), a stream of them is refused before
/// any verification or store write.
#[derive(Debug)]
pub enum HelloLimit {}

impl Limit for HelloLimit {
    type Key = ConnectionId;
    const NAME: &'static str = "hello";
    fn rate(_: &ConnectionId) -> Rate {
        Rate::new(0.1, 3.0)
    }
}

/// Telemetry queries waiting for the event loop.
const TELEMETRY_QUEUE: usize = 16;

/// After a rejected handshake, the peer gets this long to read the rejection
/// before it is disconnected (closing at once can drop the answer in flight).
pub const REJECTION_GRACE: Duration = Duration::from_millis(500);

/// A connected peer.
#[derive(Debug, Default)]
struct LivePeer {
    connections: HashMap<ConnectionId, &'static str>,
    standing: Option<PeerStanding>,
    score_labels: Option<crate::metrics::PeerLabels>,
}

impl LivePeer {
    fn transports(&self) -> BTreeSet<&'static str> {
        self.connections.values().copied().collect()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .field("network_id", &self.config.network_id)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Loads or creates the node key (`<data_dir>/node_key`), reports
    /// `peer_id:`, builds the swarm and opens every configured listener.
    /// Must be called from within a Tokio runtime.
    pub fn new(config: ValidConfig, reporter: Reporter) -> Result<Self, NodeError> {
        Self::build(config, reporter, None)
    }

    /// Like [`Node::new`], but over the caller's transport instead of the
    /// configured TCP, WebSocket and WebRTC stack (the network simulator
    /// runs nodes over links with latency this way), listening on `listen`
    /// (addresses that transport understands) in addition to the configured
    /// listen addresses. `transport` gets the node's libp2p key: Noise must
    /// authenticate with it.
    pub fn with_transport(
        config: ValidConfig,
        reporter: Reporter,
        transport: TransportFactory,
        listen: Vec<Multiaddr>,
    ) -> Result<Self, NodeError> {
        Self::build(config, reporter, Some((transport, listen)))
    }

    fn build(
        config: ValidConfig,
        reporter: Reporter,
        injected: Option<(TransportFactory, Vec<Multiaddr>)>,
    ) -> Result<Self, NodeError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NodeError::NoRuntime);
        }
        #[cfg(feature = "testing")]
        if config.testing_clock_offset_ms != 0 {
            warn!(
                offset_ms = config.testing_clock_offset_ms,
                "test switch: this node's clock is off"
            );
            CLOCK_OFFSET_MS.store(config.testing_clock_offset_ms, std::sync::atomic::Ordering::Relaxed);
        }
        let key_path = config.node_key_path();
        let (key, origin) = NodeKeypair::load_or_create(&key_path)?;
        let peer_id = key.peer_id();
        match origin {
            KeyOrigin::Created => info!(%peer_id, path = %key_path.display(), "created a new node key"),
            KeyOrigin::Loaded => info!(%peer_id, path = %key_path.display(), "loaded the node key"),
        }
        reporter.report(Report::PeerId(peer_id));

        let identity = load_identity(&config)?;
        if let Some(identity) = &identity {
            info!(zsi_id = %identity.zsi_id(), "loaded the ZSI identity");
            reporter.report(Report::ZsiId(identity.zsi_id()));
        } else {
            info!("no ZSI identity: this node is an observer (TL0) to its peers");
        }
        let genesis = load_genesis(&config)?;
        match &genesis {
            Some(g) => info!(
                identities = g.registry.len(),
                validators = g.validators.validators.len(),
                "loaded genesis"
            ),
            None => warn!("no genesis file: the identity registry is empty and every peer is TL0"),
        }
        let validators = match &genesis {
            Some(g) => Some(ValidatorSet::new(g.validators.clone()).map_err(|e| NodeError::Genesis {
                path: config.genesis_path().0,
                reason: format!("validator set: {e}"),
            })?),
            None => None,
        };
        let handshake = Handshake::new(
            config.network_id.clone(),
            peer_id,
            identity,
            genesis.as_ref(),
            agent_version(),
        );

        let store = Store::open(&config.store_path())?;
        let (chain, engine) = match &genesis {
            Some(genesis) => {
                let (chain, engine) = open_chain(&store, genesis, handshake.identity())?;
                (Some(chain), Some(engine))
            }
            None => (None, None),
        };
        let snapshots = match &chain {
            Some(_) => Some(
                crate::snapshots::Snapshots::open(store.clone(), config.snapshots)
                    .map_err(|e| NodeError::Chain(e.to_string()))?,
            ),
            None => None,
        };
        // Validators' records are evicted last (see peerstore::eviction_victim).
        let protected = chain
            .as_ref()
            .map(|c| c.validators())
            .or(validators.as_ref())
            .map(|set| set.iter().map(|v| v.zsi_id).collect())
            .unwrap_or_default();
        let peerstore =
            Peerstore::open_protecting(store.clone(), config.max_peers, config.reputation, protected, now_ms())?;
        info!(known_peers = peerstore.len(), "opened the peerstore");
        let webrtc_certificate = if config.listen_webrtc.is_empty() {
            None
        } else {
            let (certificate, created) = load_or_create_certificate(&store)?;
            info!(created, fingerprint = ?certificate.fingerprint(), "WebRTC certificate");
            Some(certificate)
        };
        let websocket_tls = match &config.tls {
            Some((cert, key)) => Some(transport::load_websocket_tls(cert, key)?),
            None => None,
        };
        let libp2p_key = key.to_libp2p();
        let (transport, extra_listen) = match injected {
            // The simulator's in-process links: their timing is simulated,
            // and many nodes share a few cores.
            Some((factory, listen)) => (factory(&libp2p_key)?, listen),
            None => {
                // A connection whose handshake is not done in time is dropped,
                // so a peer that connects and says nothing frees its pending slot.
                use libp2p::Transport as _;
                let built = transport::build(
                    &libp2p_key,
                    TransportOptions {
                        webrtc_certificate,
                        websocket_tls,
                    },
                )?;
                let timeout = Duration::from_millis(config.connections.handshake_timeout_ms);
                (
                    libp2p::core::transport::timeout::TransportTimeout::new(built, timeout).boxed(),
                    Vec::new(),
                )
            }
        };
        let limits = Limits {
            max_connections: config.max_connections,
            max_connections_per_peer: config.max_connections_per_peer,
        };
        let mut registry = Registry::with_prefix("tiernet");
        let libp2p_metrics = Libp2pMetrics::new(registry.sub_registry_with_prefix("libp2p"));
        let metrics = NodeMetrics::register(&mut registry);
        let ops = crate::ops_metrics::OpsMetrics::register(&mut registry);
        let uptime = chain.as_ref().map(|c| {
            crate::uptime::UptimeDuty::new(
                config.network_id.clone(),
                handshake.zsi_id(),
                *c.ledger().uptime(),
                c.ledger().consensus().block_time_ms,
            )
        });
        let liveness = crate::liveness::LivenessTable::new(
            crate::liveness::DEFAULT_MAX_NODES,
            u64::try_from(config.heartbeat_interval.as_millis()).unwrap_or(u64::MAX),
            config.offline_after,
        );
        let topics = Topics::new(&config.network_id);
        let gossipsub = crate::gossip::behaviour(&libp2p_key, &topics, registry.sub_registry_with_prefix("gossipsub"))?;
        let gate = crate::peer_manager::gate::Gate::new(
            config.connections.clone(),
            crate::peer_manager::gate::PeerMetrics::register(&mut registry),
        );
        let kad = crate::discovery::behaviour(peer_id, &config.network_id).map_err(NodeError::Chain)?;
        let behaviour = Behaviour::new(libp2p_key.public(), limits, gate, gossipsub, kad);
        let swarm = Swarm::new(
            transport,
            behaviour,
            peer_id,
            libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(config.idle_connection_timeout),
        );

        let (query_sender, queries) = mpsc::channel(TELEMETRY_QUEUE);
        let (reload_sender, reloads) = mpsc::channel(1);
        let allow = config.allow.clone();
        let block = config.block.clone();
        let mut node = Self {
            registry: Arc::new(Mutex::new(registry)),
            libp2p_metrics,
            metrics,
            reloads,
            reload_sender,
            topics,
            validators,
            policy: AdmissionPolicy::default(),
            inbound: InboundPolicy::default(),
            gossip_state: crate::gossip_state::GossipStateStore::new(store.clone()),
            sync_limits: Limiter::new(RATE_LIMIT_KEYS),
            hello_limits: Limiter::new(RATE_LIMIT_KEYS),
            bans: HashMap::new(),
            allow: std::collections::BTreeSet::new(),
            block: std::collections::BTreeSet::new(),
            heartbeat_sequence: now_ms(),
            join_rebroadcasts: peers::JoinRebroadcasts::default(),
            last_walk_ms: 0,
            #[cfg(feature = "testing")]
            received: VecDeque::new(),
            chain,
            engine,
            snapshots,
            timers: futures::stream::FuturesUnordered::new(),
            catch_up: Default::default(),
            #[cfg(feature = "testing")]
            silent_requests: VecDeque::new(),
            published: VecDeque::new(),
            finality: VecDeque::new(),
            #[cfg(feature = "testing")]
            probe: None,
            liveness,
            uptime,
            rtts: HashMap::new(),
            handshake_started: HashMap::new(),
            sync_sent_ms: None,
            ops,
            stark_budget: register_flow::new_budget(),
            registration: None,
            queries,
            query_sender,
            swarm,
            peer_id,
            config,
            reporter,
            listeners: HashSet::new(),
            listen_addrs: Vec::new(),
            shutting_down: false,
            handshake,
            peerstore,
            live: HashMap::new(),
            rejected: HashSet::new(),
            delayed_disconnects: futures::stream::FuturesUnordered::new(),
        };
        // libp2p-tcp binds its listeners with SO_REUSEPORT, so a port that
        // another process (e.g. a second node) listens on would be shared
        // silently. Probe each fixed port with a plain bind first, before any
        // of our own listeners exist, to turn that into an error.
        let all_listen: Vec<Multiaddr> = [
            &node.config.listen_tcp,
            &node.config.listen_ws,
            &node.config.listen_tls_ws,
            &node.config.listen_webrtc,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        for addr in &all_listen {
            probe_tcp_port(addr).map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        }
        for addr in all_listen.iter().cloned().chain(extra_listen.iter().cloned()) {
            let id = node.swarm.listen_on(addr.clone()).map_err(|e| NodeError::Listen {
                reason: transport_error_reason(&e),
                addr,
            })?;
            node.listeners.insert(id);
        }
        if all_listen.is_empty() && extra_listen.is_empty() {
            warn!("no listen addresses configured: this node only dials out");
        }
        for addr in node.config.announce.clone() {
            info!(address = %addr, "announcing an external address");
            node.swarm.add_external_address(addr);
        }
        node.apply_peer_lists(allow, block);
        node.restore_bans(now_ms());
        node.seed_reserved_peers();
        node.restore_gossip_state();
        Ok(node)
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A sender for telemetry queries: what the `/status`, `/peers` and
    /// (with the cargo feature `testing`) `/testing/*` endpoints ask, for
    /// callers in the same process.
    pub fn query_sender(&self) -> mpsc::Sender<TelemetryQuery> {
        self.query_sender.clone()
    }

    /// A sender for reloaded configurations (SIGHUP): the node applies the
    /// new `[peers]` allow and block lists at once; other changes need a restart.
    pub fn reload_sender(&self) -> mpsc::Sender<ValidConfig> {
        self.reload_sender.clone()
    }

    /// Dials the bootstrap peers, then drives the swarm until `shutdown`
    /// completes; then closes the listeners and connections (waiting at most
    /// [`SHUTDOWN_GRACE`]) and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        info!(peer_id = %self.peer_id, network_id = %self.config.network_id, "node running");
        for (peer, addr) in self.config.bootstrap.clone() {
            if peer == self.peer_id {
                warn!(%addr, "bootstrap address is this node itself; skipped");
                continue;
            }
            self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            let opts = DialOpts::peer_id(peer).addresses(vec![addr.clone()]).build();
            match self.swarm.dial(opts) {
                Ok(()) => info!(%peer, %addr, "dialing bootstrap peer"),
                Err(e) => warn!(%peer, %addr, error = %e, "cannot dial bootstrap peer"),
            }
        }

        self.redial_known_peers();
        let telemetry = match self.config.telemetry {
            Some(addr) => {
                let server = TelemetryServer::start(
                    addr,
                    self.registry.clone(),
                    self.query_sender.clone(),
                    self.config.testing_api,
                    &self.config.telemetry_hosts,
                )
                .await?;
                self.reporter.report(Report::Telemetry(server.local_addr()));
                Some(server)
            }
            None => None,
        };

        let mut shutdown = std::pin::pin!(shutdown);
        let mut flush = tokio::time::interval(PEERSTORE_FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ban_check = tokio::time::interval(BAN_CHECK_INTERVAL);
        ban_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut walk = tokio::time::interval(crate::discovery::WALK_INTERVAL_LOW);
        walk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.start_consensus();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                event = futures::StreamExt::select_next_some(&mut self.swarm) => self.handle_event(event),
                _ = flush.tick() => {
                    self.flush_peerstore();
                    self.flush_gossip_state();
                }
                Some(query) = self.queries.recv() => self.answer(query),
                _ = ban_check.tick() => {
                    self.lift_expired_bans(now_ms());
                    self.peer_manager_tick(now_ms());
                    self.rebroadcast_for_late_joiners(now_ms());
                    self.poll_catch_up();
                    self.liveness_tick();
                    self.drive_registration(now_ms());
                }
                _ = heartbeat.tick() => {
                    self.publish_heartbeat();
                    self.liveness_tick();
                }
                _ = walk.tick() => self.walk_dht(),
                Some(config) = self.reloads.recv() => {
                    info!("configuration reloaded: applying [peers] allow and block lists");
                    self.apply_peer_lists(config.allow, config.block);
                }
                Some(peer) = futures::StreamExt::next(&mut self.delayed_disconnects) => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Some((timeout, generation)) = futures::StreamExt::next(&mut self.timers) => {
                    self.drive(crate::consensus::engine::EngineInput::Timeout { timeout, generation });
                }
            }
        }
        info!("shutting down");
        if let Some(telemetry) = telemetry {
            telemetry.shutdown().await;
        }
        self.close().await;
        self.flush_peerstore();
        self.flush_gossip_state();
        info!("shut down");
        Ok(())
    }

    /// Closes the listeners and connections and drives the swarm until they
    /// are gone or [`SHUTDOWN_GRACE`] has passed.
    async fn close(&mut self) {
        self.shutting_down = true;
        for id in self.listeners.iter().copied().collect::<Vec<_>>() {
            self.swarm.remove_listener(id);
        }
        for peer in self.swarm.connected_peers().copied().collect::<Vec<_>>() {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let deadline = tokio::time::sleep(SHUTDOWN_GRACE);
        let mut deadline = std::pin::pin!(deadline);
        while !self.listeners.is_empty() || self.swarm.network_info().connection_counters().num_established() > 0 {
            tokio::select! {
                () = &mut deadline => {
                    warn!(
                        listeners = self.listeners.len(),
                        connections = self.swarm.network_info().connection_counters().num_established(),
                        "listeners or connections did not close in time; dropping them"
                    );
                    break;
                }
                event = futures::StreamExt::select_next_some(&mut self.swarm) => self.handle_event(event),
            }
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listen_addrs.push(address.clone());
                let full = address.with_p2p(self.peer_id).unwrap_or_else(|a| a);
                info!(address = %full, "listening");
                self.reporter.report(Report::Listening(full));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
                info!(%address, "listen address expired");
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                self.listeners.remove(&listener_id);
                let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                match reason {
                    Ok(()) => debug!(?addresses, "listener closed"),
                    Err(e) => warn!(?addresses, error = %e, "listener failed"),
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                warn!(?listener_id, error = %error, "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                info!(
                    peer = %peer_id,
                    address = %endpoint.get_remote_address(),
                    direction = if endpoint.is_dialer() { "outbound" } else { "inbound" },
                    connections = num_established.get(),
                    "connection established"
                );
                if num_established.get() == 1 {
                    self.reporter.report(Report::Connected(peer_id));
                }
                if self.shutting_down {
                    self.swarm.close_connection(connection_id);
                    return;
                }
                self.on_connection(peer_id, connection_id, &endpoint);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                cause,
                ..
            } => {
                let cause = cause.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                info!(
                    peer = %peer_id,
                    address = %endpoint.get_remote_address(),
                    connections = num_established,
                    %cause,
                    "connection closed"
                );
                if let Some(live) = self.live.get_mut(&peer_id) {
                    live.connections.remove(&connection_id);
                }
                if num_established == 0 {
                    if let Some(labels) = self.live.remove(&peer_id).and_then(|l| l.score_labels) {
                        self.metrics.peer_score.remove(&labels);
                    }
                    self.update_tier_gauge();
                    self.forget_rtt(&peer_id);
                    self.handshake_started.remove(&peer_id);
                    self.peerstore.observe(peer_id, now_ms());
                    self.reporter.report(Report::Disconnected(peer_id));
                }
            }
            SwarmEvent::IncomingConnection { send_back_addr, .. } => {
                debug!(from = %send_back_addr, "incoming connection");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr, error, ..
            } => match error {
                ListenError::Denied { cause } => info!(from = %send_back_addr, %cause, "incoming connection denied"),
                error => info!(from = %send_back_addr, error = %error, "incoming connection failed"),
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                warn!(peer = ?peer_id, error = %error, "outgoing connection failed");
            }
            SwarmEvent::Dialing { peer_id, .. } => debug!(peer = ?peer_id, "dialing"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.handle_identify(*event),
            SwarmEvent::Behaviour(BehaviourEvent::Handshake(event)) => self.handle_handshake(*event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync(*event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.libp2p_metrics.record(&*event);
                self.handle_gossipsub(*event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.record_ping(&event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.handle_kad(*event),
            other => trace!(event = ?other, "swarm event"),
        }
    }
}

impl Node {
    /// A new connection: refuse banned peers, remember the peer, and (as the
    /// dialer, once per peer) start the handshake.
    fn on_connection(&mut self, peer: PeerId, connection: ConnectionId, endpoint: &ConnectedPoint) {
        let now = now_ms();
        if let Some(until_ms) = self.peerstore.banned_until(&peer, now) {
            info!(%peer, until_ms, "banned peer connected; closing the connection");
            self.swarm.close_connection(connection);
            return;
        }
        let address = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address,
            ConnectedPoint::Listener { local_addr, .. } => local_addr,
        };
        if endpoint.is_dialer() && is_dialable(address) {
            // Checked: Noise proved the peer at this address.
            self.peerstore.add_addresses(peer, [address.clone()], now);
        }
        let live = self.live.entry(peer).or_default();
        live.connections.insert(connection, transport_name(address));
        let first = live.connections.len() == 1;
        self.peerstore.observe(peer, now);
        if first {
            self.refresh_score(peer);
            self.update_tier_gauge();
            if self.handshake_started.len() < self.config.max_connections as usize {
                self.handshake_started.insert(peer, now);
            }
        }
        let needs_handshake = self.live.get(&peer).is_some_and(|l| l.standing.is_none());
        if endpoint.is_dialer() && needs_handshake && first {
            let hello = self.handshake.hello_for(&peer, now);
            self.swarm.behaviour_mut().handshake.send_request(&peer, hello);
        }
    }

    fn handle_identify(&mut self, event: identify::Event) {
        self.libp2p_metrics.record(&event);
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                info!(
                    peer = %peer_id,
                    agent = %info.agent_version,
                    protocol = %info.protocol_version,
                    "peer identified"
                );
                let dialable: Vec<Multiaddr> = info.listen_addrs.into_iter().filter(is_dialable).collect();
                let kad = &mut self.swarm.behaviour_mut().kad;
                for addr in &dialable {
                    kad.add_address(&peer_id, addr.clone());
                }
                self.peerstore.add_addresses(peer_id, dialable, now_ms());
            }
            identify::Event::Error { peer_id, error, .. } => debug!(peer = %peer_id, error = %error, "identify failed"),
            other => trace!(event = ?other, "identify"),
        }
    }

    fn handle_handshake(&mut self, event: request_response::Event<proto::Hello, proto::HandshakeResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.on_hello_request(peer, connection_id, request_id, &request, channel),
                request_response::Message::Response { response, .. } => self.on_hello_response(peer, response),
            },
            request_response::Event::OutboundFailure { peer, error, .. } => match error {
                OutboundFailure::UnsupportedProtocols => {
                    info!(%peer, "peer does not speak /tiernet/handshake/1; it stays TL0");
                }
                error => debug!(%peer, %error, "handshake request failed"),
            },
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "inbound handshake failed");
                if self.rejected.remove(&request_id) {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            request_response::Event::ResponseSent { peer, request_id, .. } => {
                if self.rejected.remove(&request_id) {
                    info!(%peer, "disconnecting after a rejected handshake");
                    self.delayed_disconnects.push(Box::pin(async move {
                        tokio::time::sleep(REJECTION_GRACE).await;
                        peer
                    }));
                }
            }
        }
    }

    /// A peer sent its Hello: verify it, answer with ours or a rejection.
    fn on_hello_request(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request_id: InboundRequestId,
        hello: &proto::Hello,
        channel: ResponseChannel<proto::HandshakeResponse>,
    ) {
        let _span = tracing::info_span!("handshake", %peer, side = "listener").entered();
        let now = now_ms();
        if !self.hello_limits.check(&connection, now) {
            // Refused before any verification or store write.
            debug!(%peer, "too many Hellos on one connection");
            self.metrics.hellos_refused.inc();
            self.penalise(peer, PeerEvent::RateLimitBreach, now);
            let response = proto::HandshakeResponse {
                result: Some(handshake_response::Result::Rejected(
                    "too many Hellos on this connection".to_owned(),
                )),
            };
            let _ = self.swarm.behaviour_mut().handshake.send_response(channel, response);
            return;
        }
        let response = match self.handshake.check(&peer, hello, now) {
            Ok((verified, standing)) => {
                self.accept_standing(peer, standing, &verified.agent, now);
                handshake_response::Result::Hello(self.handshake.hello_for(&peer, now))
            }
            Err(error) => {
                warn!(%peer, %error, "rejected a Hello");
                self.penalise(peer, PeerEvent::FailedHandshake, now);
                self.rejected.insert(request_id);
                handshake_response::Result::Rejected(error.to_string())
            }
        };
        let response = proto::HandshakeResponse { result: Some(response) };
        if self
            .swarm
            .behaviour_mut()
            .handshake
            .send_response(channel, response)
            .is_err()
        {
            debug!(%peer, "handshake response channel closed before the answer");
            self.rejected.remove(&request_id);
        }
    }

    /// The answer to our Hello.
    fn on_hello_response(&mut self, peer: PeerId, response: proto::HandshakeResponse) {
        let _span = tracing::info_span!("handshake", %peer, side = "dialer").entered();
        let now = now_ms();
        match response.result {
            Some(handshake_response::Result::Hello(hello)) => match self.handshake.check(&peer, &hello, now) {
                Ok((verified, standing)) => self.accept_standing(peer, standing, &verified.agent, now),
                Err(error) => {
                    warn!(%peer, %error, "peer answered with an invalid Hello; disconnecting");
                    self.penalise(peer, PeerEvent::FailedHandshake, now);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            },
            Some(handshake_response::Result::Rejected(reason)) => {
                warn!(%peer, %reason, "peer rejected our Hello");
            }
            None => debug!(%peer, "empty handshake response"),
        }
    }

    fn accept_standing(&mut self, peer: PeerId, standing: PeerStanding, agent: &str, now: u64) {
        info!(%peer, tier = %standing.tier, zsi_id = ?standing.zsi_id, basis = ?standing.basis, "handshake verified");
        if let Some(started) = self.handshake_started.remove(&peer) {
            self.ops.handshake.observe(now.saturating_sub(started) as f64 / 1_000.0);
        }
        if let Err(error) = self
            .peerstore
            .set_identity(peer, standing.zsi_id, standing.tier, agent, now)
        {
            warn!(%peer, %error, "cannot persist the peer's identity");
        }
        self.reporter.report(Report::Handshake {
            peer,
            tier: standing.tier,
            zsi_id: standing.zsi_id,
        });
        self.tell_manager_hello(peer, &standing, now);
        self.live.entry(peer).or_default().standing = Some(standing);
        self.refresh_score(peer);
        self.update_tier_gauge();
    }

    /// Sets the connected-peers-by-tier gauge.
    fn update_tier_gauge(&mut self) {
        let mut counts = [0i64; 6];
        for peer in self.live.keys() {
            counts[self.tier_of(peer) as usize] += 1;
        }
        for tier in Tier::ALL {
            self.metrics
                .peers
                .get_or_create(&TierLabels { tier: tier.label() })
                .set(counts[tier as usize]);
        }
    }

    /// The peer's tier now: from its verified standing, TL0 otherwise.
    pub fn tier_of(&self, peer: &PeerId) -> Tier {
        self.live
            .get(peer)
            .and_then(|l| l.standing.as_ref())
            .map_or(Tier::TL0, |s| s.tier)
    }

    /// Dials the best known peers from the peerstore.
    fn redial_known_peers(&mut self) {
        let bootstrap: HashSet<PeerId> = self.config.bootstrap.iter().map(|(p, _)| *p).collect();
        for (peer, addrs) in self.peerstore.dial_candidates(now_ms(), REDIAL_ON_START) {
            if peer == self.peer_id || bootstrap.contains(&peer) {
                continue;
            }
            let count = addrs.len();
            match self.swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build()) {
                Ok(()) => info!(%peer, addresses = count, "redialling a known peer"),
                Err(error) => debug!(%peer, %error, "cannot redial a known peer"),
            }
        }
    }

    /// Answers a telemetry query from the current state.
    fn answer(&mut self, query: TelemetryQuery) {
        let now = now_ms();
        match query {
            TelemetryQuery::Peers(reply) => {
                let peers = self
                    .peerstore
                    .iter()
                    .map(|record| {
                        let live = self.live.get(&record.peer_id);
                        PeerView {
                            peer_id: record.peer_id.to_string(),
                            zsi_id: record.zsi_id.map(|z| z.to_string()),
                            tier: record.tier.label().to_owned(),
                            score: record.reputation.score(now, self.peerstore.params()),
                            banned_until_ms: record.reputation.banned_until(now),
                            connected: live.is_some(),
                            transports: live
                                .map(|l| l.transports().into_iter().map(str::to_owned).collect())
                                .unwrap_or_default(),
                            addrs: record.addrs.iter().map(ToString::to_string).collect(),
                            agent: record.agent.clone(),
                            last_seen_ms: record.last_seen_ms,
                        }
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::Publish { topic, data, reply } => {
                let result = match data {
                    Some(data) => self.publish(topic, data),
                    None => self.publish_sample(topic),
                };
                let _ = reply.send(result);
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::Gossip(reply) => {
                let _ = reply.send(self.gossip_view());
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::Dial { addr, reply } => {
                let _ = reply.send(self.dial_address(&addr));
            }
            TelemetryQuery::Chain(reply) => {
                let _ = reply.send(self.chain_view());
            }
            TelemetryQuery::Block { height, reply } => {
                let _ = reply.send(self.block_view(height));
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::SubmitProof { envelope, reply } => {
                let _ = reply.send(self.submit_own_proof(&envelope));
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::Equivocate(reply) => {
                let _ = reply.send(self.equivocate());
            }
            #[cfg(feature = "testing")]
            TelemetryQuery::Received(reply) => {
                let _ = reply.send(
                    self.received
                        .iter()
                        .map(|m| ReceivedView {
                            topic: m.topic.name().to_owned(),
                            message_id: m.message_id.clone(),
                            author: m.author.clone(),
                            tier: m.tier.to_owned(),
                            decision: m.decision.to_owned(),
                            data: hex::encode(&m.data),
                        })
                        .collect(),
                );
            }
            TelemetryQuery::Status(reply) => {
                let _ = reply.send(StatusView {
                    peer_id: self.peer_id.to_string(),
                    network_id: self.config.network_id.to_string(),
                    zsi_id: self.handshake.zsi_id().map(|z| z.to_string()),
                    listen_addrs: self.listen_addrs.iter().map(ToString::to_string).collect(),
                    connected_peers: self.live.len(),
                    height: self.chain.as_ref().map_or(0, |c| c.ledger().height()),
                    version: agent_version(),
                    syncing: self
                        .chain
                        .as_ref()
                        .is_some_and(|c| self.catch_up.target() > c.ledger().height()),
                });
            }
            TelemetryQuery::Liveness(reply) => {
                let _ = reply.send(self.liveness.view(now));
            }
            TelemetryQuery::Alerts(reply) => {
                let _ = reply.send(self.alerts_view());
            }
        }
    }

    fn flush_peerstore(&mut self) {
        match self.peerstore.flush() {
            Ok(0) => {}
            Ok(n) => trace!(records = n, "peerstore flushed"),
            Err(error) => warn!(%error, "cannot flush the peerstore"),
        }
    }
}

/// Whether an address another peer announced is worth dialling later.
fn is_dialable(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified(),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => true,
        _ => false,
    }
}

/// Loads the ZSI identity, if configured or present at the default path.
fn load_identity(config: &ValidConfig) -> Result<Option<ZsiKeypair>, NodeError> {
    let (path, required) = config.identity_path();
    match ZsiKeypair::load(&path)? {
        Some(identity) => Ok(Some(identity)),
        None if required => Err(NodeError::MissingIdentity(path)),
        None => Ok(None),
    }
}

/// Loads the genesis file, if configured or present at the default path, and
/// checks that it is for the configured network.
fn load_genesis(config: &ValidConfig) -> Result<Option<Genesis>, NodeError> {
    let (path, required) = config.genesis_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(NodeError::Genesis {
                path,
                reason: e.to_string(),
            });
        }
    };
    let genesis = Genesis::from_json(&text).map_err(|e: GenesisError| NodeError::Genesis {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if genesis.network != config.network_id {
        return Err(NodeError::Genesis {
            path,
            reason: format!(
                "it is for network {:?} but this node is configured for {:?} (network_id)",
                genesis.network.as_str(),
                config.network_id.as_str()
            ),
        });
    }
    Ok(Some(genesis))
}

/// The error text of a transport error (whose own Display is empty for I/O
/// errors).
fn transport_error_reason(error: &libp2p::TransportError<std::io::Error>) -> String {
    match error {
        libp2p::TransportError::MultiaddrNotSupported(_) => "no transport supports this address".to_owned(),
        libp2p::TransportError::Other(e) => e.to_string(),
    }
}

/// Binds and at once drops a plain socket on a `/ip4|ip6/<ip>/tcp/<port>`
/// address with a fixed port: fails with "address in use" if anything
/// listens there already. Port 0 and other addresses pass.
fn probe_tcp_port(addr: &Multiaddr) -> std::io::Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => std::net::TcpListener::bind((ip, port)).map(drop),
        _ => Ok(()),
    }
}
