//! `tiernet-ffi`: the tiernet light client for Swift, Kotlin and Python,
//! through uniffi. A thin wrapper over `tiernet-light`: async methods run
//! on tokio, events reach a callback interface, and every error is one
//! [`FfiError`] with a `reason` (not `message`: Kotlin
//! exceptions already have one, and a field of that name does not compile).
//!
//! ```text
//! client = LightClient(network_id, bootstrap_addrs, genesis_json)
//! client.set_listener(listener)        # on_event(ClientEvent)
//! head = await client.start()          # verified head
//! value = await client.get_state(key)  # bytes proven against head.state_root, or None
//! await client.wait_for_height(h)      # cancellable
//! ```
//!
//! Cancelling a pending call on the foreign side (a Swift `Task`, a Kotlin
//! coroutine, a Python asyncio task) drops the Rust future: the request
//! stops, and [`LightClient::pending_calls`] counts it no more.
//!
//! `scripts/bindings` builds the library and generates the bindings.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tiernet_light::{ClientError, ErrorKind, Event, SyncStatus, VerifiedHead};

mod log;
pub use log::{LogListener, set_log_listener};

uniffi::setup_scaffolding!();

/// Every error the bindings raise: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FfiError {
    /// A bootstrap address is not a multiaddr (with `/p2p/<peer id>`).
    #[error("bad address: {reason}")]
    BadAddress {
        /// What is wrong.
        reason: String,
    },
    /// The network id or the checkpoint (genesis) is not usable.
    #[error("bad checkpoint: {reason}")]
    BadCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// No peer reachable, or none gave a verified answer.
    #[error("network: {reason}")]
    Network {
        /// What happened.
        reason: String,
    },
    /// No peer is connected (or every one was rejected).
    #[error("no peers: {reason}")]
    NoPeers {
        /// What happened.
        reason: String,
    },
    /// Peers served data that does not verify (they were dropped).
    #[error("invalid: {reason}")]
    Invalid {
        /// What did not verify.
        reason: String,
    },
    /// The trusted state cannot vouch for what peers served (start from a
    /// newer checkpoint).
    #[error("not enough trust: {reason}")]
    NotEnoughTrust {
        /// Why.
        reason: String,
    },
    /// An argument is not usable (e.g. a ZSI id that is not 64 hex digits,
    /// an unknown log level).
    #[error("bad input: {reason}")]
    BadInput {
        /// What is wrong.
        reason: String,
    },
    /// The call needs `start` first.
    #[error("not started: {reason}")]
    NotStarted {
        /// What was called.
        reason: String,
    },
}

impl From<ClientError> for FfiError {
    fn from(error: ClientError) -> Self {
        let reason = error.to_string();
        match error.kind() {
            ErrorKind::BadAddress => FfiError::BadAddress { reason },
            ErrorKind::BadCheckpoint => FfiError::BadCheckpoint { reason },
            ErrorKind::NotStarted => FfiError::NotStarted { reason },
            ErrorKind::Network => FfiError::Network { reason },
            ErrorKind::NoPeers => FfiError::NoPeers { reason },
            ErrorKind::Invalid => FfiError::Invalid { reason },
            ErrorKind::NotEnoughTrust => FfiError::NotEnoughTrust { reason },
        }
    }
}

/// A verified header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Head {
    /// Height (0: nothing past the checkpoint verified yet).
    pub height: u64,
    /// Header hash (hex).
    pub hash: String,
    /// State root after the block (hex).
    pub state_root: String,
    /// Block time, ms since the Unix epoch.
    pub time_ms: u64,
}

impl From<VerifiedHead> for Head {
    fn from(head: VerifiedHead) -> Self {
        Self {
            height: head.height,
            hash: head.hash.to_string(),
            state_root: head.state_root.to_string(),
            time_ms: head.time_ms,
        }
    }
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ClientEvent {
    /// A new head was verified.
    HeadVerified {
        /// The head.
        head: Head,
    },
    /// A peer connected.
    PeerConnected {
        /// Its PeerId.
        peer: String,
    },
    /// A peer disconnected.
    PeerDisconnected {
        /// Its PeerId.
        peer: String,
    },
    /// A peer served data that does not verify and was dropped.
    PeerRejected {
        /// Its PeerId.
        peer: String,
        /// What did not verify.
        reason: String,
    },
    /// A dial failed.
    DialFailed {
        /// The PeerId dialled, or empty when unknown.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The status changed: `syncing`, `current`, `no-peers`, `stale` (the
    /// head is older than the maximum head age on the local clock),
    /// `expired` or `conflicting`.
    Status {
        /// The status label.
        status: String,
        /// The head's age in ms when stale or expired, else 0.
        age_ms: u64,
    },
    /// Two verified headers at one height differ (evidence of a fork).
    Conflict {
        /// The height.
        height: u64,
        /// The hash the client had verified (hex).
        ours: String,
        /// The other verified hash (hex).
        theirs: String,
        /// The peer that served it.
        peer: String,
    },
    /// No verified head for `since_ms`: the client redials.
    Stalled {
        /// Ms since the last verified head.
        since_ms: u64,
    },
    /// Progress of long work.
    SyncProgress {
        /// What.
        what: String,
        /// Steps done.
        done: u64,
        /// Steps in all.
        total: u64,
    },
}

impl From<Event> for ClientEvent {
    fn from(event: Event) -> Self {
        match event {
            Event::HeadVerified(head) => ClientEvent::HeadVerified { head: head.into() },
            Event::PeerConnected(peer) => ClientEvent::PeerConnected { peer: peer.to_string() },
            Event::PeerDisconnected(peer) => ClientEvent::PeerDisconnected { peer: peer.to_string() },
            Event::PeerRejected { peer, reason } => ClientEvent::PeerRejected {
                peer: peer.to_string(),
                reason,
            },
            Event::DialFailed { peer, reason } => ClientEvent::DialFailed {
                peer: peer.map(|p| p.to_string()).unwrap_or_default(),
                reason,
            },
            Event::SyncProgress { what, done, total } => ClientEvent::SyncProgress { what, done, total },
            Event::Status(status) => ClientEvent::Status {
                status: status.label().to_owned(),
                age_ms: age_of(status),
            },
            Event::Conflict {
                height,
                ours,
                theirs,
                peer,
            } => ClientEvent::Conflict {
                height,
                ours: ours.to_string(),
                theirs: theirs.to_string(),
                peer: peer.to_string(),
            },
            Event::Stalled { since_ms } => ClientEvent::Stalled { since_ms },
        }
    }
}

/// The head's age of a stale or expired status, else 0.
fn age_of(status: SyncStatus) -> u64 {
    match status {
        SyncStatus::Stale { age_ms } | SyncStatus::Expired { age_ms } => age_ms,
        _ => 0,
    }
}

/// A state value (or its proven absence) and the head it was proven at.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProvenState {
    /// The value; `None`: the key is proven absent.
    pub value: Option<Vec<u8>>,
    /// The verified head whose state root the proof was checked against.
    pub head: Head,
}

/// A ZSI identity's record, proven against a verified head's state root.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IdentityInfo {
    /// The ZSI id (hex).
    pub zsi_id: String,
    /// `TL1` … `TL5` under the chain's thresholds.
    pub tier: String,
    /// Credited uptime in minutes.
    pub uptime_minutes: u64,
    /// Precommits included in commits.
    pub participation: u64,
    /// Reputation score.
    pub score: u64,
    /// Whether it was slashed.
    pub slashed: bool,
    /// The head the record was proven at.
    pub head: Head,
}

impl From<tiernet_light::ProvenIdentity> for IdentityInfo {
    fn from(p: tiernet_light::ProvenIdentity) -> Self {
        Self {
            zsi_id: p.id.to_string(),
            tier: p.tier.to_string(),
            uptime_minutes: p.reputation.uptime_minutes,
            participation: p.reputation.participation,
            score: p.reputation.score,
            slashed: p.reputation.slashed,
            head: p.head.into(),
        }
    }
}

/// A peer as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer_id: String,
    /// `connected`, `disconnected` or `rejected`.
    pub state: String,
    /// Transports of its open connections: `websocket`, `webrtc-direct`, `tcp`, `other`.
    pub transports: Vec<String>,
    /// The last remote address, or empty.
    pub address: String,
    /// Why it was rejected, or empty.
    pub reason: String,
}

impl From<tiernet_light::PeerInfo> for PeerInfo {
    fn from(p: tiernet_light::PeerInfo) -> Self {
        Self {
            peer_id: p.peer.to_string(),
            state: p.state.label().to_owned(),
            transports: p.transports.iter().map(|t| t.label().to_owned()).collect(),
            address: p.address.map(|a| a.to_string()).unwrap_or_default(),
            reason: p.reason.unwrap_or_default(),
        }
    }
}

/// One entry of the state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StateEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// A snapshot downloaded with every chunk verified.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SnapshotInfo {
    /// The height of the state it holds.
    pub height: u64,
    /// Its chunks.
    pub chunks: u32,
    /// Its entries.
    pub entries: u64,
}

/// Receives a snapshot's verified entries, chunk by chunk (called on the
/// calling task, between chunk downloads).
#[uniffi::export(callback_interface)]
pub trait SnapshotListener: Send + Sync {
    /// One verified chunk's entries; `done` of `total` chunks verified.
    fn on_chunk(&self, entries: Vec<StateEntry>, done: u32, total: u32);
}

/// How far the head can be vouched for.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Status {
    /// `syncing`, `current`, `no-peers`, `stale`, `expired` or `conflicting`.
    pub status: String,
    /// The head's age in ms when stale or expired, else 0.
    pub age_ms: u64,
}

/// Receives the client's events (called from a background thread).
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: ClientEvent);
}

/// Counts a call while its future lives (a cancelled call is dropped).
struct Pending<'a>(&'a AtomicU64);

impl<'a> Pending<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The light client.
#[derive(uniffi::Object)]
pub struct LightClient {
    inner: tiernet_light::LightClient,
    pending: AtomicU64,
}

#[uniffi::export(async_runtime = "tokio")]
impl LightClient {
    /// A client for `network_id` that trusts the genesis in `genesis_json`
    /// and connects to `bootstrap` (multiaddrs with `/p2p/<peer id>`).
    #[uniffi::constructor]
    pub fn new(network_id: String, bootstrap: Vec<String>, genesis_json: String) -> Result<Arc<Self>, FfiError> {
        let (builder, _) = tiernet_light::LightClient::builder().genesis_json(&network_id, &genesis_json)?;
        let inner = builder.bootstrap(bootstrap).build()?;
        Ok(Arc::new(Self {
            inner,
            pending: AtomicU64::new(0),
        }))
    }

    /// A client that trusts `checkpoint` (bytes from
    /// [`LightClient::export_checkpoint`]) instead of the genesis.
    #[uniffi::constructor]
    pub fn from_checkpoint(
        network_id: String,
        bootstrap: Vec<String>,
        checkpoint: Vec<u8>,
    ) -> Result<Arc<Self>, FfiError> {
        let network = tiernet_core::wire::NetworkId::new(&network_id).map_err(|e| FfiError::BadCheckpoint {
            reason: format!("network id {network_id:?}: {}", e.reason),
        })?;
        let checkpoint = tiernet_light::Checkpoint::from_bytes(&checkpoint, &network)
            .map_err(|e| FfiError::BadCheckpoint { reason: e.to_string() })?;
        let inner = tiernet_light::LightClient::builder()
            .network(network)
            .checkpoint(checkpoint)
            .bootstrap(bootstrap)
            .build()?;
        Ok(Arc::new(Self {
            inner,
            pending: AtomicU64::new(0),
        }))
    }

    /// Saves the trusted state to `path` (a file the app owns) after each
    /// verified head, and starts from it when it is within the trusting
    /// period. Call before `start`.
    pub fn set_trust_file(&self, path: String) {
        self.inner.set_trust_file(path);
    }

    /// The trusted state now (verified head and the validator set after
    /// it) as bytes, for [`LightClient::from_checkpoint`].
    pub fn export_checkpoint(&self) -> Result<Vec<u8>, FfiError> {
        Ok(self.inner.export_trust()?)
    }

    /// The height of the saved trust (trust file) this client started
    /// from, or none after a start from the checkpoint (`resumedFrom` in JS).
    pub fn resumed_from(&self) -> Option<u64> {
        self.inner.resumed_from()
    }

    /// Connects and verifies a chain proof to the latest head.
    pub async fn start(&self) -> Result<Head, FfiError> {
        let _pending = Pending::new(&self.pending);
        Ok(self.inner.start().await?.into())
    }

    /// The latest verified head.
    pub fn head(&self) -> Head {
        self.inner.head().into()
    }

    /// Whether the head is current, stale (older than the maximum head age
    /// on the local clock), … now.
    pub fn status(&self) -> Status {
        let status = self.inner.status();
        Status {
            status: status.label().to_owned(),
            age_ms: age_of(status),
        }
    }

    /// The value of `key` in the state at the verified head (`value` is
    /// `None`: proven absent), with that head.
    pub async fn get_state(&self, key: Vec<u8>) -> Result<ProvenState, FfiError> {
        let _pending = Pending::new(&self.pending);
        let proven = self.inner.get_proven_state(key).await?;
        Ok(ProvenState {
            value: proven.value,
            head: proven.head.into(),
        })
    }

    /// The record and tier of a ZSI identity (64 hex digits), proven
    /// against the verified head (`None`: proven not registered).
    pub async fn lookup_identity(&self, zsi_id_hex: String) -> Result<Option<IdentityInfo>, FfiError> {
        let _pending = Pending::new(&self.pending);
        let id = parse_zsi(&zsi_id_hex)?;
        Ok(self.inner.lookup_identity(id).await?.map(IdentityInfo::from))
    }

    /// Downloads the latest snapshot, every chunk verified against its
    /// manifest and a verified header; each chunk's entries go to
    /// `listener` as soon as they verify.
    pub async fn sync_snapshot(&self, listener: Option<Box<dyn SnapshotListener>>) -> Result<SnapshotInfo, FfiError> {
        let _pending = Pending::new(&self.pending);
        let sync = self
            .inner
            .sync_snapshot_with(|chunk| {
                if let Some(listener) = &listener {
                    let entries = chunk
                        .entries
                        .iter()
                        .map(|e| StateEntry {
                            key: e.key.clone(),
                            value: e.value.clone(),
                        })
                        .collect();
                    listener.on_chunk(entries, chunk.done, chunk.total);
                }
            })
            .await?;
        let (_, chunks) = sync.progress();
        Ok(SnapshotInfo {
            height: sync.manifest().height,
            chunks,
            entries: sync.entries().len() as u64,
        })
    }

    /// Waits until the verified head reaches `height`; returns it.
    pub async fn wait_for_height(&self, height: u64) -> Result<Head, FfiError> {
        let _pending = Pending::new(&self.pending);
        Ok(self.inner.wait_for_height(height).await?.into())
    }

    /// Sends every later event to `listener`, from a background thread
    /// (each call adds one listener).
    pub fn set_listener(&self, listener: Box<dyn EventListener>) {
        let mut events = self.inner.events();
        // A plain thread: the foreign caller needs no runtime of ours.
        let spawned = std::thread::Builder::new()
            .name("tiernet-events".into())
            .spawn(move || {
                loop {
                    match events.blocking_recv() {
                        Ok(event) => listener.on_event(event.into()),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        if let Err(error) = spawned {
            eprintln!("tiernet-ffi: cannot start the event thread: {error}");
        }
    }

    /// Calls of this client in progress (a cancelled call is not counted).
    pub fn pending_calls(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    /// Every peer met so far, with its state, transports, last address
    /// and why it was rejected.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peer_infos().into_iter().map(PeerInfo::from).collect()
    }

    /// Stops the client: its connections close and later calls fail with
    /// `NotStarted`; `head` stays readable.
    pub fn stop(&self) {
        self.inner.stop();
    }
}

/// The state key of an identity record (`id/<zsi id>`), for `get_state`.
#[uniffi::export]
pub fn identity_state_key(zsi_id_hex: String) -> Result<Vec<u8>, FfiError> {
    Ok(tiernet_core::state::identity_key(&parse_zsi(&zsi_id_hex)?).to_vec())
}

fn parse_zsi(zsi_id_hex: &str) -> Result<tiernet_core::identity::ZsiId, FfiError> {
    let bytes = hex::decode(zsi_id_hex.trim()).map_err(|e| FfiError::BadInput {
        reason: format!("zsi id {zsi_id_hex:?} is not hex: {e}"),
    })?;
    tiernet_core::identity::ZsiId::from_slice(&bytes).ok_or_else(|| FfiError::BadInput {
        reason: format!("zsi id {zsi_id_hex:?} is not 32 bytes"),
    })
}
