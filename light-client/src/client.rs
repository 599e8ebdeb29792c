//! [`LightClient`]: the sync machine and a transport, driven on tokio
//! natively and on the page's event loop in a browser.
//!
//! The driver loop waits for one thing at a time (a transport event, an
//! answer to a request the machine planned, or a timer tick) and never
//! waits inside: requests run as futures beside the loop and their answers
//! come back as inputs ([`LightSync::handle_response`]). The [`Dialer`]
//! keeps the minimum peer count (bootstrap plus learned addresses) with
//! backoff and jitter; a stall ([`Event::Stalled`]) wakes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::{Multiaddr, PeerId};
use tiernet_core::genesis::Genesis;
use tiernet_core::identity::ZsiId;
use tiernet_core::tier::TierThresholds;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tokio::sync::broadcast;

use crate::dialer::{DEFAULT_MIN_PEERS, Dialer, dialable_here};
use crate::identity::{ProvenIdentity, UndecodableState, identity_from_record, thresholds_from_params};
use crate::peers::{PeerBook, PeerInfo};
use crate::rt;
use crate::snapshot::{SnapshotError, SnapshotSync};
use crate::sync::{
    Checkpoint, Event, Freshness, LightSync, RequestId, SyncError, SyncStatus, VerifiedHead, remote_or_unexpected,
};
use crate::transport::{Libp2pTransport, Transport, TransportError, TransportEvent};

/// How long `start` waits for a first peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Capacity of the event broadcast (a receiver that lags loses the oldest).
pub const EVENT_CAPACITY: usize = 1024;
/// The driver's timer: the machine's clock moves on at least this often.
pub const TICK: Duration = Duration::from_millis(200);

/// What a client call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The builder lacks something.
    #[error("cannot build a light client: {0}")]
    Build(&'static str),
    /// The checkpoint does not hold together.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),
    /// The transport failed to start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// No peer connected in time.
    #[error("no peer reachable within {0:?}")]
    NoPeers(Duration),
    /// No usable peer is connected to ask.
    #[error("no usable peer to ask for {what}")]
    NoUsablePeer {
        /// What was to be asked.
        what: &'static str,
    },
    /// Every peer that answered served data that does not verify (they are
    /// rejected); nothing unverified is returned.
    #[error("every answer for {what} was invalid; last: {last}")]
    Invalid {
        /// What was asked.
        what: &'static str,
        /// The last failure.
        last: String,
    },
    /// The answers are consistent but the trusted state cannot vouch for
    /// them (e.g. too old a checkpoint): start from a newer checkpoint.
    #[error("not enough trust for {what}; last: {last}")]
    NotEnoughTrust {
        /// What was asked.
        what: &'static str,
        /// The last failure.
        last: String,
    },
    /// Every peer was asked and none gave a verified answer (timeouts,
    /// errors, "not found").
    #[error("no peer gave a verified answer for {what}; last problem: {last}")]
    Exhausted {
        /// What was asked.
        what: &'static str,
        /// The last failure.
        last: String,
    },
    /// A snapshot failed.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// Proven state does not decode under this client's rules.
    #[error(transparent)]
    Undecodable(#[from] UndecodableState),
    /// `start` was not called (or the client has stopped).
    #[error("the client is not started")]
    NotStarted,
}

/// The few kinds of [`ClientError`] a caller acts on differently; the
/// bindings (uniffi, wasm) flatten errors into these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bootstrap address cannot be used.
    BadAddress,
    /// The network id, genesis or checkpoint is unusable (or the builder
    /// lacks one).
    BadCheckpoint,
    /// No verified answer from the network (timeouts, errors).
    Network,
    /// No peer connected (or every one was rejected).
    NoPeers,
    /// Peers served data that does not verify.
    Invalid,
    /// The trusted state cannot vouch for what peers served.
    NotEnoughTrust,
    /// `start` was not called, or the client was stopped.
    NotStarted,
}

impl ClientError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Transport(TransportError::Address { .. }) => ErrorKind::BadAddress,
            ClientError::Build(_) | ClientError::Checkpoint(_) => ErrorKind::BadCheckpoint,
            ClientError::NotStarted => ErrorKind::NotStarted,
            ClientError::NoPeers(_) | ClientError::NoUsablePeer { .. } => ErrorKind::NoPeers,
            ClientError::Invalid { .. } => ErrorKind::Invalid,
            ClientError::NotEnoughTrust { .. } => ErrorKind::NotEnoughTrust,
            ClientError::Transport(_)
            | ClientError::Exhausted { .. }
            | ClientError::Snapshot(_)
            | ClientError::Undecodable(_) => ErrorKind::Network,
        }
    }
}

impl From<tiernet_core::verify::VerifyError> for ClientError {
    fn from(error: tiernet_core::verify::VerifyError) -> Self {
        Self::Checkpoint(error.to_string())
    }
}

/// One snapshot chunk's entries, verified against the manifest and a
/// verified header, with the download's progress.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedChunk<'a> {
    /// The chunk's index.
    pub index: u32,
    /// Its state entries.
    pub entries: &'a [proto::StateEntry],
    /// Chunks verified so far.
    pub done: u32,
    /// Chunks in the snapshot.
    pub total: u32,
}

/// A state value (or its proven absence) and the head it was proven at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenValue {
    /// The value; `None`: the key is proven absent.
    pub value: Option<Vec<u8>>,
    /// The verified head whose state root the proof was checked against.
    pub head: VerifiedHead,
}

/// Builds a [`LightClient`]; it refuses to build without a checkpoint.
#[derive(Default)]
pub struct LightClientBuilder {
    network: Option<NetworkId>,
    bootstrap: Vec<String>,
    checkpoint: Option<Checkpoint>,
    transport: Option<Box<dyn Transport>>,
    freshness: Option<Freshness>,
    min_peers: Option<usize>,
    trust_file: Option<std::path::PathBuf>,
    saved_trust: Option<Vec<u8>>,
    thresholds: Option<TierThresholds>,
}

impl std::fmt::Debug for LightClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClientBuilder")
            .field("network", &self.network)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl LightClientBuilder {
    /// The network to follow.
    pub fn network(mut self, network: NetworkId) -> Self {
        self.network = Some(network);
        self
    }

    /// Full nodes to connect to (multiaddrs with `/p2p/<peer id>`).
    pub fn bootstrap(mut self, addrs: impl IntoIterator<Item = String>) -> Self {
        self.bootstrap.extend(addrs);
        self
    }

    /// Where trust starts (required).
    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Starts from the genesis in `genesis_json`, which must be for
    /// `network_id`: sets the network and the checkpoint, and returns the
    /// genesis too (its tier thresholds, for reading tiers from state).
    pub fn genesis_json(self, network_id: &str, genesis_json: &str) -> Result<(Self, Genesis), ClientError> {
        let network = NetworkId::new(network_id)
            .map_err(|e| ClientError::Checkpoint(format!("network id {network_id:?}: {}", e.reason)))?;
        let genesis = Genesis::from_json(genesis_json).map_err(|e| ClientError::Checkpoint(format!("genesis: {e}")))?;
        if genesis.network != network {
            return Err(ClientError::Checkpoint(format!(
                "the genesis is for network {}, not {network}",
                genesis.network
            )));
        }
        let checkpoint = Checkpoint::genesis(&genesis)?;
        let builder = self
            .network(network)
            .checkpoint(checkpoint)
            .thresholds(genesis.thresholds);
        Ok((builder, genesis))
    }

    /// The chain's tier thresholds, for [`LightClient::lookup_identity`]
    /// (set by [`Self::genesis_json`]; without them the client proves the
    /// chain parameters from state once).
    pub fn thresholds(mut self, thresholds: TierThresholds) -> Self {
        self.thresholds = Some(thresholds);
        self
    }

    /// The clock rules (maximum head age, trusting period, agreement, stall).
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// Saves the trusted state to `path` after each verified head and starts
    /// from it next time when it is within the trusting period (native and
    /// mobile; a browser keeps [`LightClient::export_trust`] in IndexedDB).
    pub fn trust_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trust_file = Some(path.into());
        self
    }

    /// Trust saved by an earlier session (the bytes of
    /// [`LightClient::export_trust`], kept by the app — IndexedDB in a
    /// browser): used as the trust file is, only when it is for this
    /// network, above the checkpoint and within the trusting period;
    /// anything else is logged and the checkpoint used. A trust file, when
    /// set, wins.
    pub fn saved_trust(mut self, bytes: Vec<u8>) -> Self {
        self.saved_trust = Some(bytes);
        self
    }

    /// Peers to keep connected (bootstrap plus learned); default
    /// [`DEFAULT_MIN_PEERS`].
    pub fn min_peers(mut self, min_peers: usize) -> Self {
        self.min_peers = Some(min_peers);
        self
    }

    /// A transport of the caller's (the default is [`Libp2pTransport`]
    /// over the bootstrap addresses, started by [`LightClient::start`]).
    pub fn transport(mut self, transport: Box<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The client, not yet connected; every bootstrap address is parsed
    /// here.
    pub fn build(self) -> Result<LightClient, ClientError> {
        let network = self.network.ok_or(ClientError::Build("no network id"))?;
        let mut addrs = Vec::with_capacity(self.bootstrap.len());
        for address in &self.bootstrap {
            addrs.push(address.parse::<Multiaddr>().map_err(|e| TransportError::Address {
                address: address.clone(),
                reason: e.to_string(),
            })?);
        }
        let checkpoint = self
            .checkpoint
            .ok_or(ClientError::Build("no checkpoint: trust must start somewhere"))?;
        if self.bootstrap.is_empty() && self.transport.is_none() {
            return Err(ClientError::Build("no bootstrap address and no transport"));
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let seed = rt::now_ms() ^ (addrs.len() as u64).rotate_left(32);
        let dialer = Dialer::new(addrs, self.min_peers.unwrap_or(DEFAULT_MIN_PEERS), seed).with_filter(dialable_here);
        Ok(LightClient {
            inner: Arc::new(Inner {
                machine: Mutex::new(
                    LightSync::new(network, checkpoint).with_freshness(self.freshness.unwrap_or_default()),
                ),
                dialer: Mutex::new(dialer),
                supplied: Mutex::new(self.transport),
                transport: Mutex::new(None),
                bootstrap: self.bootstrap,
                events,
                turn: std::sync::atomic::AtomicUsize::new(0),
                connections: Mutex::new(HashMap::new()),
                local_peer: Mutex::new(None),
                trust_file: Mutex::new(self.trust_file),
                saved_trust: Mutex::new(self.saved_trust),
                resumed_from: std::sync::atomic::AtomicU64::new(0),
                #[cfg(not(target_arch = "wasm32"))]
                saved_height: std::sync::atomic::AtomicU64::new(0),
                peer_book: Mutex::new(PeerBook::default()),
                thresholds: Mutex::new(self.thresholds),
            }),
        })
    }
}

struct Inner {
    machine: Mutex<LightSync>,
    dialer: Mutex<Dialer>,
    supplied: Mutex<Option<Box<dyn Transport>>>,
    transport: Mutex<Option<Arc<dyn Transport>>>,
    bootstrap: Vec<String>,
    events: broadcast::Sender<Event>,
    turn: std::sync::atomic::AtomicUsize,
    /// Remote addresses of the open connections, per peer.
    connections: Mutex<HashMap<PeerId, Vec<Multiaddr>>>,
    local_peer: Mutex<Option<PeerId>>,
    /// Where the trusted state is saved (native and mobile).
    trust_file: Mutex<Option<std::path::PathBuf>>,
    /// Saved trust handed over by the app (taken by `start`).
    saved_trust: Mutex<Option<Vec<u8>>>,
    /// The height the client resumed from saved trust (0: it did not).
    resumed_from: std::sync::atomic::AtomicU64,
    /// The height last saved (the trust file is native only).
    #[cfg(not(target_arch = "wasm32"))]
    saved_height: std::sync::atomic::AtomicU64,
    /// The peers met, for [`LightClient::peer_infos`].
    peer_book: Mutex<PeerBook>,
    /// The chain's tier thresholds, once known.
    thresholds: Mutex<Option<TierThresholds>>,
}

/// A light client (cheap to clone; clones share one client).
#[derive(Clone)]
pub struct LightClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LightClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LightClient {
    /// A builder.
    pub fn builder() -> LightClientBuilder {
        LightClientBuilder::default()
    }

    /// Connects, waits for a peer, and verifies a chain proof from the
    /// checkpoint to the latest head; then follows `blocks` in the
    /// background. Natively it must run inside a tokio runtime.
    pub async fn start(&self) -> Result<VerifiedHead, ClientError> {
        if lock(&self.inner.transport).is_some() {
            return Err(ClientError::Build("start may be called once"));
        }
        self.load_trust();
        let supplied = lock(&self.inner.supplied).take();
        let mut transport: Box<dyn Transport> = match supplied {
            Some(t) => t,
            None => {
                let network = lock(&self.inner.machine).network().clone();
                let transport = Libp2pTransport::start(&network, &self.inner.bootstrap)?;
                // It dialled the bootstrap list already: those dials are in flight.
                let _ = lock(&self.inner.dialer).due(rt::now_ms());
                Box::new(transport)
            }
        };
        *lock(&self.inner.local_peer) = transport.local_peer_id();
        let events = transport
            .events()
            .ok_or(ClientError::Build("the transport's events are taken"))?;
        let transport: Arc<dyn Transport> = Arc::from(transport);
        *lock(&self.inner.transport) = Some(Arc::clone(&transport));
        let (connected_tx, mut connected) = tokio::sync::watch::channel(0usize);
        let client = self.clone();
        rt::spawn(async move { client.drive(events, connected_tx).await });
        let deadline = rt::Instant::now() + CONNECT_TIMEOUT;
        rt::timeout_at(deadline, connected.wait_for(|n| *n > 0))
            .await
            .map_err(|_| ClientError::NoPeers(CONNECT_TIMEOUT))?
            .map_err(|_| ClientError::NotStarted)?;
        // The first peers may all be dishonest (they are dropped): keep
        // trying as others connect, until the deadline.
        loop {
            match self.sync_to_latest().await {
                Ok(head) => return Ok(head),
                Err(error) if rt::Instant::now() >= deadline => return Err(error),
                Err(error) => {
                    tracing::debug!(%error, "no verified head yet; waiting for more peers");
                    rt::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// The latest verified head.
    pub fn head(&self) -> VerifiedHead {
        lock(&self.inner.machine).head()
    }

    /// How far the head can be vouched for now: current, stale, … (see
    /// [`SyncStatus`]).
    pub fn status(&self) -> SyncStatus {
        lock(&self.inner.machine).status(rt::now_ms())
    }

    /// Waits until the verified head reaches `height`; returns it.
    pub async fn wait_for_height(&self, height: u64) -> Result<VerifiedHead, ClientError> {
        let mut events = self.events();
        loop {
            let head = self.head();
            if head.height >= height {
                return Ok(head);
            }
            if lock(&self.inner.transport).is_none() {
                return Err(ClientError::NotStarted);
            }
            // An event or a tick, whichever first (a lagging receiver just
            // looks again).
            let _ = rt::timeout_at(rt::Instant::now() + TICK, events.recv()).await;
        }
    }

    /// Sets the trust file (see [`LightClientBuilder::trust_file`]); call it
    /// before [`LightClient::start`].
    pub fn set_trust_file(&self, path: impl Into<std::path::PathBuf>) {
        *lock(&self.inner.trust_file) = Some(path.into());
    }

    /// The trusted state now (verified head, next validator set, peers that
    /// answered well) as bytes: keep them and give them back as a
    /// checkpoint ([`Checkpoint::from_bytes`]) or trust file. Fails before
    /// anything past the genesis is verified.
    pub fn export_trust(&self) -> Result<Vec<u8>, ClientError> {
        let state = lock(&self.inner.machine).trusted().clone();
        let peers: Vec<String> = {
            let usable = lock(&self.inner.machine).usable_peers();
            let connections = lock(&self.inner.connections);
            usable
                .iter()
                .filter_map(|p| {
                    connections.get(p).and_then(|a| a.first()).map(|a| {
                        let mut a = a.clone();
                        if crate::dialer::peer_of(&a).is_none() {
                            a.push(libp2p::multiaddr::Protocol::P2p(*p));
                        }
                        a.to_string()
                    })
                })
                .collect()
        };
        crate::persist::encode(&state, &peers).map_err(|e| ClientError::Checkpoint(e.to_string()))
    }

    /// Starts from the trust file (or the saved trust the app handed over)
    /// when it holds a state above the checkpoint, for this network, within
    /// the trusting period; anything else (nothing saved, corrupt, expired)
    /// leaves the checkpoint.
    fn load_trust(&self) {
        let network = lock(&self.inner.machine).network().clone();
        let handed_over = lock(&self.inner.saved_trust).take();
        let loaded = match self.trust_file_contents(&network) {
            Some(loaded) => loaded,
            None => match handed_over {
                Some(bytes) => crate::persist::decode(&bytes, &network).map(Some),
                None => return,
            },
        };
        let saved = match loaded {
            Ok(Some(saved)) => saved,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "saved trust not used; starting from the checkpoint");
                return;
            }
        };
        let mut machine = lock(&self.inner.machine);
        if !machine.within_trusting_period(&saved.state, rt::now_ms()) {
            tracing::info!(
                height = saved.state.height(),
                "saved trust is past the trusting period; starting from the checkpoint"
            );
            return;
        }
        let height = saved.state.height();
        if machine.resume(saved.state) {
            tracing::info!(height, "starting from saved trust");
            drop(machine);
            self.inner
                .resumed_from
                .store(height, std::sync::atomic::Ordering::Relaxed);
            #[cfg(not(target_arch = "wasm32"))]
            self.inner
                .saved_height
                .store(height, std::sync::atomic::Ordering::Relaxed);
            lock(&self.inner.dialer).learn(saved.peers);
        }
    }

    /// What the trust file holds (`None`: no trust file is set; always
    /// `None` in a browser, which has no files).
    fn trust_file_contents(
        &self,
        network: &tiernet_core::wire::NetworkId,
    ) -> Option<Result<Option<crate::persist::SavedTrust>, crate::persist::PersistError>> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let path = lock(&self.inner.trust_file).clone()?;
            Some(crate::persist::load_file(&path, network))
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = network;
            None
        }
    }

    /// The height of the saved trust this client started from, if it
    /// started from saved trust (no chain proof from the checkpoint).
    pub fn resumed_from(&self) -> Option<u64> {
        match self.inner.resumed_from.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            height => Some(height),
        }
    }

    /// Saves the trusted state when the head moved since the last save.
    fn save_trust(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let height = self.head().height;
            if height <= self.inner.saved_height.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let Some(path) = lock(&self.inner.trust_file).clone() else {
                return;
            };
            match self
                .export_trust()
                .map_err(|e| e.to_string())
                .and_then(|bytes| crate::persist::save_file(&path, &bytes).map_err(|e| e.to_string()))
            {
                Ok(()) => self
                    .inner
                    .saved_height
                    .store(height, std::sync::atomic::Ordering::Relaxed),
                Err(error) => tracing::warn!(%error, "cannot save the trusted state"),
            }
        }
    }

    /// This client's PeerId on the network (once started, with a transport
    /// that has one).
    pub fn local_peer_id(&self) -> Option<PeerId> {
        *lock(&self.inner.local_peer)
    }

    /// The addresses the client keeps peers from: bootstrap first, then
    /// those learned from full nodes.
    pub fn known_addresses(&self) -> Vec<Multiaddr> {
        lock(&self.inner.dialer)
            .addresses()
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    }

    /// The client's events (a receiver that falls more than
    /// [`EVENT_CAPACITY`] behind loses the oldest).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Connected peers that may be asked.
    pub fn peers(&self) -> Vec<PeerId> {
        lock(&self.inner.machine).usable_peers()
    }

    /// Every peer met so far: state, transports of its open connections,
    /// last address, and why it was rejected (bounded, see [`PeerBook`]).
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        lock(&self.inner.peer_book).list()
    }

    /// Every peer with open connections, with their remote addresses (which
    /// say the transport), rejected peers included until they disconnect.
    pub fn connections(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut all: Vec<_> = lock(&self.inner.connections)
            .iter()
            .map(|(peer, addrs)| (*peer, addrs.clone()))
            .collect();
        all.sort_by_key(|(peer, _)| peer.to_bytes());
        all
    }

    /// Whether `peer` served data that did not verify (it is never asked
    /// again).
    pub fn is_rejected(&self, peer: &PeerId) -> bool {
        lock(&self.inner.machine).peer_status(peer) == Some(crate::sync::PeerStatus::Rejected)
    }

    /// Stops the client: the transport is released, so (once calls in
    /// flight finish) the swarm closes its connections and the background
    /// task that follows `blocks` ends. Later calls fail with
    /// [`ClientError::NotStarted`]; the verified head stays readable.
    pub fn stop(&self) {
        lock(&self.inner.transport).take();
    }

    fn transport(&self) -> Result<Arc<dyn Transport>, ClientError> {
        lock(&self.inner.transport).clone().ok_or(ClientError::NotStarted)
    }

    /// Runs `f` on the machine, then publishes its events and disconnects
    /// the peers it rejected.
    fn with_machine<R>(&self, f: impl FnOnce(&mut LightSync) -> R) -> R {
        let (result, events) = {
            let mut machine = lock(&self.inner.machine);
            let result = f(&mut machine);
            let mut events = Vec::new();
            while let Some(event) = machine.poll_event() {
                events.push(event);
            }
            (result, events)
        };
        for event in events {
            match &event {
                Event::PeerRejected { peer, reason } => {
                    tracing::warn!(%peer, %reason, "peer rejected");
                    lock(&self.inner.peer_book).rejected(*peer, reason);
                    lock(&self.inner.dialer).ban(*peer);
                    if let Ok(transport) = self.transport() {
                        transport.disconnect(*peer);
                    }
                }
                Event::Stalled { since_ms } => {
                    tracing::info!(since_ms, "no verified head for a while: redialling");
                    lock(&self.inner.dialer).wake(rt::now_ms());
                }
                Event::Status(status) => tracing::debug!(?status, "status"),
                Event::Conflict { height, peer, .. } => {
                    tracing::warn!(height, %peer, "conflicting verified headers (evidence)");
                }
                _ => {}
            }
            let _ = self.inner.events.send(event);
        }
        result
    }

    /// The event loop: waits for one input at a time, never inside.
    async fn drive(
        self,
        mut events: futures::stream::BoxStream<'static, TransportEvent>,
        connected: tokio::sync::watch::Sender<usize>,
    ) {
        type Answer = (RequestId, Result<proto::SyncResponse, TransportError>);
        let mut in_flight: FuturesUnordered<futures::future::BoxFuture<'static, Answer>> = FuturesUnordered::new();
        let mut next_tick = 0u64;
        loop {
            // Stopped: release the transport (its task ends with it).
            let Ok(transport) = self.transport() else {
                return;
            };
            let now = rt::now_ms();
            if now >= next_tick {
                next_tick = now.saturating_add(TICK.as_millis() as u64);
                self.with_machine(|m| m.tick(now));
            }
            self.save_trust();
            let planned = self.with_machine(|m| std::iter::from_fn(|| m.poll_request(now)).collect::<Vec<_>>());
            for p in planned {
                let request = transport.request(p.peer, p.request);
                let id = p.id;
                in_flight.push(async move { (id, request.await) }.boxed());
            }
            let learned = lock(&self.inner.machine).take_learned();
            let dials = {
                let mut dialer = lock(&self.inner.dialer);
                if !learned.is_empty() {
                    let new = dialer.learn(learned);
                    tracing::debug!(new, "addresses learned from full nodes");
                }
                dialer.due(now)
            };
            for address in dials {
                tracing::debug!(%address, "dialling");
                transport.dial(address);
            }
            drop(transport);
            let tick = rt::sleep(TICK).fuse();
            futures::pin_mut!(tick);
            futures::select! {
                event = events.next().fuse() => match event {
                    Some(event) => self.on_transport_event(event, &connected),
                    None => return,
                },
                answer = in_flight.select_next_some() => {
                    let (id, result) = answer;
                    let result = result.map_err(|e| e.to_string());
                    self.with_machine(|m| m.handle_response(id, result, rt::now_ms()));
                }
                () = tick => {}
            }
        }
    }

    /// One transport event, handled without waiting.
    fn on_transport_event(&self, event: TransportEvent, connected: &tokio::sync::watch::Sender<usize>) {
        let now = rt::now_ms();
        match event {
            TransportEvent::Connected { peer, address } => {
                let first = {
                    let mut connections = lock(&self.inner.connections);
                    let addrs = connections.entry(peer).or_default();
                    addrs.push(address.clone());
                    addrs.len() == 1
                };
                lock(&self.inner.dialer).connected(peer, &address);
                lock(&self.inner.peer_book).connected(peer, &address);
                if first {
                    let n = self.with_machine(|m| {
                        m.handle_connected(peer);
                        m.usable_peers().len()
                    });
                    let _ = connected.send(n);
                }
            }
            TransportEvent::Disconnected {
                peer,
                address,
                remaining,
            } => {
                {
                    let mut connections = lock(&self.inner.connections);
                    if let Some(addrs) = connections.get_mut(&peer) {
                        if let Some(i) = addrs.iter().position(|a| *a == address) {
                            addrs.remove(i);
                        }
                        if remaining == 0 {
                            connections.remove(&peer);
                        }
                    }
                }
                lock(&self.inner.peer_book).disconnected(peer, &address, remaining);
                if remaining == 0 {
                    lock(&self.inner.dialer).disconnected(peer, now);
                    self.with_machine(|m| m.handle_disconnected(peer));
                }
            }
            TransportEvent::DialFailed { peer, reason } => {
                tracing::debug!(?peer, %reason, "dial failed");
                lock(&self.inner.dialer).failed(peer, now);
                let _ = self.inner.events.send(Event::DialFailed { peer, reason });
            }
            TransportEvent::Block { from, block } => {
                self.with_machine(|m| m.handle_gossip(from, &block, now));
            }
            TransportEvent::Gossip { from, id, block } => {
                let verdict = self.with_machine(|m| m.handle_gossip(from, &block, now));
                if let Ok(transport) = self.transport() {
                    transport.report_gossip(id, from, verdict);
                }
            }
            TransportEvent::Garbage { from, reason } => {
                self.with_machine(|m| m.handle_garbage(from, reason));
            }
        }
    }

    /// The usable peers, starting at a different one on each call (round
    /// robin), so consecutive questions spread over the peers.
    fn peers_in_turn(&self) -> Vec<PeerId> {
        let mut peers = lock(&self.inner.machine).usable_peers();
        if !peers.is_empty() {
            let turn = self.inner.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % peers.len();
            peers.rotate_left(turn);
        }
        peers
    }

    /// Asks peers in turn until `answer` takes one's response.
    async fn ask<T>(
        &self,
        what: &'static str,
        request: proto::SyncRequest,
        mut answer: impl FnMut(&Self, PeerId, proto::SyncResponse) -> Result<T, SyncError>,
    ) -> Result<T, ClientError> {
        let transport = self.transport()?;
        let peers = self.peers_in_turn();
        if peers.is_empty() {
            return Err(ClientError::NoUsablePeer { what });
        }
        let mut last = String::new();
        let (mut invalid, mut untrusted, mut other) = (0usize, 0usize, 0usize);
        for peer in peers {
            match transport.request(peer, request.clone()).await {
                Ok(response) => match answer(self, peer, response) {
                    Ok(value) => return Ok(value),
                    Err(error) => {
                        match &error {
                            SyncError::Invalid { .. } | SyncError::Malformed { .. } | SyncError::Unexpected { .. } => {
                                invalid += 1
                            }
                            SyncError::NotEnoughTrust { .. } => untrusted += 1,
                            _ => other += 1,
                        }
                        last = error.to_string();
                    }
                },
                Err(error) => {
                    other += 1;
                    last = error.to_string();
                }
            }
        }
        Err(if invalid > 0 && untrusted == 0 && other == 0 {
            ClientError::Invalid { what, last }
        } else if untrusted > 0 && other == 0 {
            ClientError::NotEnoughTrust { what, last }
        } else {
            ClientError::Exhausted { what, last }
        })
    }

    /// Verifies a chain proof from the trusted head to the latest block.
    pub async fn sync_to_latest(&self) -> Result<VerifiedHead, ClientError> {
        let trusted = self.head().height;
        let request = proto::SyncRequest {
            kind: Some(sync_request::Kind::ChainProof(proto::ChainProofRequest {
                trusted_height: trusted,
                target_height: 0,
            })),
        };
        self.ask("a chain proof", request, |client, peer, response| {
            match &response.kind {
                // Nothing newer than our head at this peer: we are up to date with it.
                Some(sync_response::Kind::Error(e))
                    if e.code == proto::SyncErrorCode::NotFound as i32 && trusted > 0 =>
                {
                    Ok(false)
                }
                _ => match client.with_machine(|m| m.handle_chain_proof(peer, response)) {
                    // Our head moved on while asking (a gossiped block):
                    // nothing to take from this answer.
                    Err(SyncError::Superseded { .. }) => Ok(false),
                    other => other,
                },
            }
        })
        .await?;
        Ok(self.head())
    }

    /// The value of `key` (or `None`: proven absent) in the state at the
    /// verified head.
    pub async fn get_state(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.get_proven_state(key).await?.value)
    }

    /// The value of `key` with the verified head whose state root it was
    /// proven against.
    pub async fn get_proven_state(&self, key: Vec<u8>) -> Result<ProvenValue, ClientError> {
        for _ in 0..3 {
            let head = self.head().height;
            let request = proto::SyncRequest {
                kind: Some(sync_request::Kind::State(proto::StateRequest {
                    key: key.clone(),
                    height: head,
                })),
            };
            let result = self
                .ask("a state value", request, |client, peer, response| {
                    client.with_machine(|m| {
                        let value = m.handle_state(peer, &key, response)?;
                        Ok(ProvenValue { value, head: m.head() })
                    })
                })
                .await;
            match result {
                Ok(value) => return Ok(value),
                // The head moved while asking: ask again at the new one.
                Err(ClientError::Exhausted { .. }) if self.head().height != head => continue,
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::Exhausted {
            what: "a state value",
            last: "the head kept moving".into(),
        })
    }

    /// The record and tier of a ZSI identity, proven against the verified
    /// head's state root (`None`: proven not registered). The tier uses the
    /// chain's thresholds: the genesis's when the client was built from it,
    /// else the chain parameters proven from state once (they are written
    /// at genesis and never change).
    pub async fn lookup_identity(&self, id: ZsiId) -> Result<Option<ProvenIdentity>, ClientError> {
        let known = *lock(&self.inner.thresholds);
        let thresholds = match known {
            Some(thresholds) => thresholds,
            None => {
                let params = self
                    .get_proven_state(tiernet_core::state::params_key().to_vec())
                    .await?
                    .value
                    .ok_or_else(|| UndecodableState {
                        what: "chain parameters",
                        reason: "absent from the state".into(),
                    })?;
                let thresholds = thresholds_from_params(&params)?;
                *lock(&self.inner.thresholds) = Some(thresholds);
                thresholds
            }
        };
        let proven = self
            .get_proven_state(tiernet_core::state::identity_key(&id).to_vec())
            .await?;
        match proven.value {
            None => Ok(None),
            Some(bytes) => Ok(Some(identity_from_record(id, &bytes, &thresholds, proven.head)?)),
        }
    }

    /// Downloads the latest snapshot a peer offers, every chunk verified
    /// against the manifest and the verified header at its height; peers
    /// that fail are dropped and the download goes on from the next chunk
    /// with another. Progress is reported as [`Event::SyncProgress`].
    pub async fn sync_snapshot(&self) -> Result<SnapshotSync, ClientError> {
        self.sync_snapshot_with(|_| {}).await
    }

    /// [`Self::sync_snapshot`], handing each chunk's verified entries to
    /// `on_chunk` as soon as the chunk verifies (a stream with progress).
    pub async fn sync_snapshot_with(
        &self,
        mut on_chunk: impl FnMut(VerifiedChunk<'_>),
    ) -> Result<SnapshotSync, ClientError> {
        let mut sync = self.prepare_snapshot().await?;
        self.fetch_chunks_with(&mut sync, None, &mut on_chunk).await?;
        Ok(sync)
    }

    /// The latest snapshot's manifest, verified against the header at its
    /// height (proven from the checkpoint), ready for [`Self::fetch_chunks`].
    pub async fn prepare_snapshot(&self) -> Result<SnapshotSync, ClientError> {
        let manifest_request = proto::SyncRequest {
            kind: Some(sync_request::Kind::SnapshotManifest(proto::SnapshotManifestRequest {
                height: 0,
            })),
        };
        let manifest = self
            .ask(
                "a snapshot manifest",
                manifest_request,
                |_, peer, response| match response.kind {
                    Some(sync_response::Kind::SnapshotManifest(m)) => Ok(m),
                    other => Err(remote_or_unexpected(peer, other, "snapshot manifest")),
                },
            )
            .await?;
        // The header at the snapshot's height, proven from the checkpoint.
        let checkpoint = lock(&self.inner.machine).checkpoint().clone();
        let proof_request = proto::SyncRequest {
            kind: Some(sync_request::Kind::ChainProof(proto::ChainProofRequest {
                trusted_height: checkpoint.height(),
                target_height: manifest.height,
            })),
        };
        let network = lock(&self.inner.machine).network().clone();
        let header = self
            .ask("the snapshot's header", proof_request, |client, peer, response| {
                let proof = match response.kind {
                    Some(sync_response::Kind::ChainProof(p)) => p,
                    other => return Err(remote_or_unexpected(peer, other, "chain proof")),
                };
                match tiernet_core::verify::verify_chain_proof(&checkpoint, &proof, &network) {
                    Ok(state) if state.height() == manifest.height => {
                        state.header().cloned().ok_or(SyncError::NoVerifiedHead)
                    }
                    Ok(_) => Err(SyncError::Malformed {
                        peer,
                        what: "chain proof ends at another height than asked",
                    }),
                    Err(error) => Err(client.with_machine(|m| m.judge(peer, error))),
                }
            })
            .await?;
        SnapshotSync::new(&header, manifest).map_err(|e| ClientError::Snapshot(e.to_string()))
    }

    /// Fetches and verifies chunks from `sync`'s next one on, at most
    /// `limit` of them (`None`: to the end). `sync` keeps what is verified,
    /// so after a failure (every peer gone) call it again to resume.
    pub async fn fetch_chunks(&self, sync: &mut SnapshotSync, limit: Option<u32>) -> Result<(), ClientError> {
        self.fetch_chunks_with(sync, limit, &mut |_| {}).await
    }

    /// [`Self::fetch_chunks`], handing each chunk's verified entries to `on_chunk`.
    pub async fn fetch_chunks_with(
        &self,
        sync: &mut SnapshotSync,
        limit: Option<u32>,
        on_chunk: &mut (impl FnMut(VerifiedChunk<'_>) + ?Sized),
    ) -> Result<(), ClientError> {
        let transport = self.transport()?;
        let mut last = String::new();
        let mut fetched = 0u32;
        while let Some(request) = sync.next_request() {
            if limit.is_some_and(|l| fetched >= l) {
                break;
            }
            fetched += 1;
            let peers = self.peers_in_turn();
            if peers.is_empty() {
                tracing::debug!(chunk = request.index, %last, "no usable peer left");
                return Err(ClientError::NoUsablePeer {
                    what: "snapshot chunks",
                });
            }
            let mut progressed = false;
            for peer in peers {
                let response = transport
                    .request(
                        peer,
                        proto::SyncRequest {
                            kind: Some(sync_request::Kind::SnapshotChunk(request)),
                        },
                    )
                    .await;
                let chunk = match response {
                    Ok(proto::SyncResponse {
                        kind: Some(sync_response::Kind::SnapshotChunk(chunk)),
                    }) => chunk,
                    Ok(other) => {
                        last = remote_or_unexpected(peer, other.kind, "snapshot chunk").to_string();
                        continue;
                    }
                    Err(error) => {
                        last = error.to_string();
                        continue;
                    }
                };
                let before = sync.entries().len();
                match sync.handle_chunk(&chunk) {
                    Ok(()) => {
                        let (done, total) = sync.progress();
                        on_chunk(VerifiedChunk {
                            index: request.index,
                            entries: sync.entries().get(before..).unwrap_or_default(),
                            done,
                            total,
                        });
                        self.with_machine(|m| m.progress("snapshot chunks", u64::from(done), u64::from(total)));
                        progressed = true;
                        break;
                    }
                    Err(SnapshotError::Verify(error)) => {
                        last = self.with_machine(|m| m.judge(peer, error)).to_string();
                    }
                    Err(error) => {
                        last = error.to_string();
                        self.with_machine(|m| m.reject(peer, error.to_string()));
                    }
                }
            }
            if !progressed {
                return Err(ClientError::Exhausted {
                    what: "snapshot chunks",
                    last: format!("chunk {}: {last}", request.index),
                });
            }
        }
        Ok(())
    }
}
