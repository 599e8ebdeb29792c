//! [`LightClient`]: the sync machine and a transport, driven on tokio
//! natively and on the page's event loop in a browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId};
use tiernet_core::genesis::Genesis;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tokio::sync::broadcast;

use crate::rt;
use crate::snapshot::{SnapshotError, SnapshotSync};
use crate::sync::{Checkpoint, Event, LightSync, SyncError, VerifiedHead, remote_or_unexpected};
use crate::transport::{Libp2pTransport, Transport, TransportError, TransportEvent};

/// How long `start` waits for a first peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Capacity of the event broadcast (a receiver that lags loses the oldest).
pub const EVENT_CAPACITY: usize = 1024;

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
    /// Every peer was asked and none gave a verified answer.
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
    /// No verified answer from the network.
    Network,
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
            ClientError::Transport(_)
            | ClientError::NoPeers(_)
            | ClientError::Exhausted { .. }
            | ClientError::Snapshot(_) => ErrorKind::Network,
        }
    }
}

impl From<tiernet_core::verify::VerifyError> for ClientError {
    fn from(error: tiernet_core::verify::VerifyError) -> Self {
        Self::Checkpoint(error.to_string())
    }
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
        Ok((self.network(network).checkpoint(checkpoint), genesis))
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
        for address in &self.bootstrap {
            address.parse::<Multiaddr>().map_err(|e| TransportError::Address {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        }
        let checkpoint = self
            .checkpoint
            .ok_or(ClientError::Build("no checkpoint: trust must start somewhere"))?;
        if self.bootstrap.is_empty() && self.transport.is_none() {
            return Err(ClientError::Build("no bootstrap address and no transport"));
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(LightClient {
            inner: Arc::new(Inner {
                machine: Mutex::new(LightSync::new(network, checkpoint)),
                supplied: Mutex::new(self.transport),
                transport: Mutex::new(None),
                bootstrap: self.bootstrap,
                events,
                turn: std::sync::atomic::AtomicUsize::new(0),
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }
}

struct Inner {
    machine: Mutex<LightSync>,
    supplied: Mutex<Option<Box<dyn Transport>>>,
    transport: Mutex<Option<Arc<dyn Transport>>>,
    bootstrap: Vec<String>,
    events: broadcast::Sender<Event>,
    turn: std::sync::atomic::AtomicUsize,
    /// Remote addresses of the open connections, per peer.
    connections: Mutex<HashMap<PeerId, Vec<Multiaddr>>>,
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
        let supplied = lock(&self.inner.supplied).take();
        let mut transport: Box<dyn Transport> = match supplied {
            Some(t) => t,
            None => {
                let network = lock(&self.inner.machine).network().clone();
                Box::new(Libp2pTransport::start(&network, &self.inner.bootstrap)?)
            }
        };
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

    /// The client's events (a receiver that falls more than
    /// [`EVENT_CAPACITY`] behind loses the oldest).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Connected peers that may be asked.
    pub fn peers(&self) -> Vec<PeerId> {
        lock(&self.inner.machine).usable_peers()
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
            if let Event::PeerRejected { peer, reason } = &event {
                tracing::warn!(%peer, %reason, "peer rejected");
                if let Ok(transport) = self.transport() {
                    transport.disconnect(*peer);
                }
            }
            let _ = self.inner.events.send(event);
        }
        result
    }

    async fn drive(
        self,
        mut events: futures::stream::BoxStream<'static, TransportEvent>,
        connected: tokio::sync::watch::Sender<usize>,
    ) {
        while let Some(event) = events.next().await {
            match event {
                TransportEvent::Connected { peer, address } => {
                    let first = {
                        let mut connections = lock(&self.inner.connections);
                        let addrs = connections.entry(peer).or_default();
                        addrs.push(address);
                        addrs.len() == 1
                    };
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
                    if remaining == 0 {
                        self.with_machine(|m| m.handle_disconnected(peer));
                    }
                }
                TransportEvent::DialFailed { peer, reason } => {
                    tracing::debug!(?peer, %reason, "dial failed");
                    let _ = self.inner.events.send(Event::DialFailed { peer, reason });
                }
                TransportEvent::Block { from, block } => {
                    let result = self.with_machine(|m| m.handle_block(from, &block));
                    if let Err(SyncError::Behind { .. } | SyncError::NotEnoughTrust { .. }) = result {
                        // A gap (missed blocks, a set change): bridge it.
                        if let Err(error) = self.sync_to_latest().await {
                            tracing::debug!(%error, "catching up after a gap failed");
                        }
                    }
                }
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
        let mut last = "no usable peer".to_owned();
        for peer in self.peers_in_turn() {
            match transport.request(peer, request.clone()).await {
                Ok(response) => match answer(self, peer, response) {
                    Ok(value) => return Ok(value),
                    Err(error) => last = error.to_string(),
                },
                Err(error) => last = error.to_string(),
            }
        }
        Err(ClientError::Exhausted { what, last })
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

    /// Downloads the latest snapshot a peer offers, every chunk verified
    /// against the manifest and the verified header at its height; peers
    /// that fail are dropped and the download goes on from the next chunk
    /// with another. Progress is reported as [`Event::SyncProgress`].
    pub async fn sync_snapshot(&self) -> Result<SnapshotSync, ClientError> {
        let mut sync = self.prepare_snapshot().await?;
        self.fetch_chunks(&mut sync, None).await?;
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
                return Err(ClientError::Exhausted {
                    what: "snapshot chunks",
                    last: format!("no usable peer left at chunk {} ({last})", request.index),
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
                match sync.handle_chunk(&chunk) {
                    Ok(()) => {
                        let (done, total) = sync.progress();
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
