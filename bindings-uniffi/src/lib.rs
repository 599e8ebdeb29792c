//! `tiernet-ffi`: the tiernet light client for Swift, Kotlin and Python,
//! through uniffi. A thin wrapper over `tiernet-light`: async methods run
//! on tokio, events reach a callback interface, and every error is one
//! [`FfiError`] with a message.
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
use std::time::Duration;

use tiernet_light::{ClientError, ErrorKind, Event, VerifiedHead};

uniffi::setup_scaffolding!();

/// Every error the bindings raise: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FfiError {
    /// A bootstrap address is not a multiaddr (with `/p2p/<peer id>`).
    #[error("bad address: {message}")]
    BadAddress {
        /// What is wrong.
        message: String,
    },
    /// The network id or the checkpoint (genesis) is not usable.
    #[error("bad checkpoint: {message}")]
    BadCheckpoint {
        /// What is wrong.
        message: String,
    },
    /// No peer reachable, or none gave a verified answer.
    #[error("network: {message}")]
    Network {
        /// What happened.
        message: String,
    },
    /// The call needs `start` first.
    #[error("not started: {message}")]
    NotStarted {
        /// What was called.
        message: String,
    },
}

impl From<ClientError> for FfiError {
    fn from(error: ClientError) -> Self {
        let message = error.to_string();
        match error.kind() {
            ErrorKind::BadAddress => FfiError::BadAddress { message },
            ErrorKind::BadCheckpoint => FfiError::BadCheckpoint { message },
            ErrorKind::NotStarted => FfiError::NotStarted { message },
            ErrorKind::Network => FfiError::Network { message },
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
        }
    }
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

    /// Connects and verifies a chain proof to the latest head.
    pub async fn start(&self) -> Result<Head, FfiError> {
        let _pending = Pending::new(&self.pending);
        Ok(self.inner.start().await?.into())
    }

    /// The latest verified head.
    pub fn head(&self) -> Head {
        self.inner.head().into()
    }

    /// The value of `key` in the state at the verified head (`None`:
    /// proven absent).
    pub async fn get_state(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, FfiError> {
        let _pending = Pending::new(&self.pending);
        Ok(self.inner.get_state(key).await?)
    }

    /// Waits until the verified head reaches `height`; returns it.
    pub async fn wait_for_height(&self, height: u64) -> Result<Head, FfiError> {
        let _pending = Pending::new(&self.pending);
        loop {
            let head = self.inner.head();
            if head.height >= height {
                return Ok(head.into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

    /// Connected peers that may be asked (PeerIds).
    pub fn peers(&self) -> Vec<String> {
        self.inner.peers().iter().map(ToString::to_string).collect()
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
    let bytes = hex::decode(&zsi_id_hex).map_err(|e| FfiError::BadCheckpoint {
        message: format!("zsi id {zsi_id_hex:?} is not hex: {e}"),
    })?;
    let id = tiernet_core::identity::ZsiId::from_slice(&bytes).ok_or_else(|| FfiError::BadCheckpoint {
        message: format!("zsi id {zsi_id_hex:?} is not 32 bytes"),
    })?;
    Ok(tiernet_core::state::identity_key(&id).to_vec())
}
