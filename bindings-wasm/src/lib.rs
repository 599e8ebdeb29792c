//! `tiernet-wasm`: the tiernet light client for browsers, published as the
//! npm package `@tiernet/light-client` (built by `scripts/wasm-pkg`).
//!
//! A thin wasm-bindgen shell over [`tiernet_light::LightClient`]: the same
//! sans-IO sync machine and verifier as the native client, driven by the
//! page's event loop, reaching full nodes over WebSocket and WebRTC-direct
//! (`libp2p-websocket-websys`, `libp2p-webrtc-websys`). Nothing unverified
//! is returned.
//!
//! ```js
//! import init, { LightClient } from '@tiernet/light-client';
//! await init();
//! const client = new LightClient({ networkId, bootstrap, genesis });
//! client.onEvent(ev => console.log(ev.type, ev));
//! const head = await client.start();          // verified chain proof to the head
//! const me = await client.lookupIdentity(hex); // proven record and tier, or undefined
//! ```
//!
//! Errors are JavaScript `Error`s named `TiernetError` with a `kind`:
//! `BadAddress`, `BadCheckpoint`, `BadInput`, `Network` or `NotStarted`.
//! Logs go to the browser console through `tracing-wasm` (`logLevel`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_light::{ClientError, ErrorKind, Event, TransportKind, VerifiedHead};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `new LightClient(...)`. */
export interface LightClientOptions {
  /** The network id, e.g. "tiernet-devnet". */
  networkId: string;
  /** Full nodes: multiaddrs ending in /p2p/<peer id>, over /ws or /webrtc-direct/certhash/... */
  bootstrap: string[];
  /** The genesis file's JSON text: where trust starts. */
  genesis: string;
  /** Console log level (default "warn"). */
  logLevel?: "error" | "warn" | "info" | "debug" | "trace";
  /** Hex from `exportCheckpoint()` of an earlier session: a warm start from there. */
  checkpoint?: string;
  /**
   * Hex of trust an earlier session saved (`exportCheckpoint()`, as the
   * package's `persist` option keeps it in IndexedDB): used only when it is
   * for this network and within the trusting period, else ignored (logged).
   */
  savedTrust?: string;
  /** Peers to keep connected, bootstrap plus learned (default 3). */
  minPeers?: number;
}
/** A verified head. Hashes are lowercase hex. */
export interface Head {
  height: number; hash: string; stateRoot: string;
  /** The header's time, ms since the Unix epoch. */
  timeMs: number;
  /** When this browser verified it (Date.now()). */
  verifiedAtMs: number;
}
/** A peer as the client sees it. */
export interface PeerInfo {
  peerId: string;
  state: "connected" | "rejected" | "disconnected";
  /** Transports of the open connections. */
  transports: Array<"websocket" | "webrtc-direct" | "tcp" | "other">;
  /** The last remote address, or "". */
  address: string;
  /** Why it was rejected, or "". */
  reason: string;
}
/** A ZSI identity's record, proven against a verified state root. */
export interface IdentityInfo {
  zsiId: string;
  tier: "TL0" | "TL1" | "TL2" | "TL3" | "TL4" | "TL5";
  uptimeMinutes: number; participation: number; score: number; slashed: boolean;
  /** The head whose state root the proof was checked against. */
  height: number; stateRoot: string;
}
/** A state value proven against a verified head's state root. */
export interface ProvenState {
    /** The value; undefined: the key is proven absent. */
    value: Uint8Array | undefined;
    /** The head whose state root the proof was checked against. */
    head: Head;
}
/** One snapshot chunk's state entries, verified, as `syncSnapshot` streams them. */
export interface VerifiedChunk {
    index: number;
    entries: Array<{ key: Uint8Array; value: Uint8Array }>;
    /** Chunks verified so far, of `total`. */
    done: number; total: number;
}
/** A snapshot downloaded with every chunk verified. */
export interface SnapshotInfo { height: number; chunks: number; entries: number; }
/** What the client reports. */
export type ClientEvent =
  | { type: "headVerified"; head: Head }
  | { type: "peerConnected"; peerId: string; address: string; transport: string }
  | { type: "peerDisconnected"; peerId: string }
  | { type: "peerRejected"; peerId: string; reason: string }
  | { type: "dialFailed"; peerId: string; reason: string }
  | { type: "syncProgress"; what: string; done: number; total: number }
  | { type: "status"; status: "syncing" | "current" | "no-peers" | "stale" | "expired" | "conflicting"; ageMs: number }
  | { type: "conflict"; height: number; ours: string; theirs: string; peerId: string }
  | { type: "stalled"; sinceMs: number };
/** Every error thrown or rejected is an Error named "TiernetError" with a kind. */
export interface TiernetError extends Error {
  kind: "BadAddress" | "BadCheckpoint" | "BadInput" | "Network" | "NoPeers" | "Invalid" | "NotEnoughTrust" | "NotStarted";
}
"#;

/// The kinds of `TiernetError`: the client's [`ErrorKind`]s plus bad
/// input from JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Client(ErrorKind),
    BadInput,
}

/// A JavaScript `Error` named `TiernetError` with a `kind` property.
fn error(kind: Kind, message: impl std::fmt::Display) -> JsValue {
    let kind = match kind {
        Kind::Client(kind) => format!("{kind:?}"),
        Kind::BadInput => "BadInput".to_owned(),
    };
    let error = js_sys::Error::new(&message.to_string());
    error.set_name("TiernetError");
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}

fn client_error(e: ClientError) -> JsValue {
    error(Kind::Client(e.kind()), e)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| error(Kind::BadInput, e))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Options {
    network_id: String,
    bootstrap: Vec<String>,
    genesis: String,
    log_level: Option<String>,
    /// Hex of `exportCheckpoint()` from an earlier session: start from it
    /// instead of the genesis (a warm start; the page keeps it, e.g. in
    /// IndexedDB). A bad one is a `BadCheckpoint` error.
    checkpoint: Option<String>,
    /// Hex of trust saved by an earlier session: unlike `checkpoint`, a bad
    /// or expired one is not an error (the checkpoint or genesis is used).
    saved_trust: Option<String>,
    /// Peers to keep connected.
    min_peers: Option<u32>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Head {
    height: u64,
    hash: String,
    state_root: String,
    time_ms: u64,
    verified_at_ms: f64,
}

impl Head {
    fn of(head: &VerifiedHead, verified_at_ms: f64) -> Self {
        Head {
            height: head.height,
            hash: head.hash.to_string(),
            state_root: head.state_root.to_string(),
            time_ms: head.time_ms,
            verified_at_ms,
        }
    }
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct PeerInfo {
    peer_id: String,
    state: &'static str,
    transports: Vec<&'static str>,
    address: String,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityInfo {
    zsi_id: String,
    tier: String,
    uptime_minutes: u64,
    participation: u64,
    score: u64,
    slashed: bool,
    height: u64,
    state_root: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotInfo {
    height: u64,
    chunks: u32,
    entries: usize,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
enum ClientEvent {
    HeadVerified {
        head: Head,
    },
    PeerConnected {
        peer_id: String,
        address: String,
        transport: &'static str,
    },
    PeerDisconnected {
        peer_id: String,
    },
    PeerRejected {
        peer_id: String,
        reason: String,
    },
    DialFailed {
        peer_id: String,
        reason: String,
    },
    SyncProgress {
        what: String,
        done: u64,
        total: u64,
    },
    /// `status`: syncing, current, no-peers, stale, expired, conflicting.
    Status {
        status: &'static str,
        age_ms: u64,
    },
    Conflict {
        height: u64,
        ours: String,
        theirs: String,
        peer_id: String,
    },
    Stalled {
        since_ms: u64,
    },
}

/// A status as JS sees it: its label and the head's age (0 when not stale).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    status: &'static str,
    age_ms: u64,
}

fn status_view(status: tiernet_light::SyncStatus) -> StatusView {
    let age_ms = match status {
        tiernet_light::SyncStatus::Stale { age_ms } | tiernet_light::SyncStatus::Expired { age_ms } => age_ms,
        _ => 0,
    };
    StatusView {
        status: status.label(),
        age_ms,
    }
}

/// State shared by the client object and its event task.
struct Shared {
    listener: RefCell<Option<Function>>,
    head: RefCell<Option<Head>>,
}

/// The tiernet light client (see the crate docs).
#[wasm_bindgen]
pub struct LightClient {
    inner: tiernet_light::LightClient,
    shared: Rc<Shared>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[wasm_bindgen]
extern "C" {
    /// `console.error`, for the panic hook.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

fn install_logging(level: Option<&str>) -> Result<(), JsValue> {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    let level = match level.unwrap_or("warn") {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        other => {
            return Err(error(
                Kind::BadInput,
                format!("logLevel {other:?}: expected error, warn, info, debug or trace"),
            ));
        }
    };
    // The first client's level holds for the page (one global subscriber).
    ONCE.call_once(|| {
        // A panic (a bug here or in a dependency) would otherwise surface
        // as a bare `RuntimeError: unreachable`: say where it happened.
        std::panic::set_hook(Box::new(|info| console_error(&format!("tiernet: panic: {info}"))));
        let config = tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(level)
            .set_report_logs_in_timings(false)
            .build();
        tracing_wasm::set_as_global_default_with_config(config);
    });
    Ok(())
}

#[wasm_bindgen]
impl LightClient {
    /// A client that trusts `options.genesis` and will connect to
    /// `options.bootstrap`. Throws a `TiernetError` on bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "LightClientOptions")] options: JsValue,
    ) -> Result<LightClient, JsValue> {
        let options: Options = serde_wasm_bindgen::from_value(options)
            .map_err(|e| error(Kind::BadInput, format!("LightClient options: {e}")))?;
        install_logging(options.log_level.as_deref())?;
        if options.bootstrap.is_empty() {
            return Err(error(Kind::Client(ErrorKind::BadAddress), "no bootstrap address"));
        }
        let (builder, genesis) = tiernet_light::LightClient::builder()
            .genesis_json(&options.network_id, &options.genesis)
            .map_err(client_error)?;
        // Hex of at most the largest trust accepted: bounded before decoding.
        let max_hex = 2 * tiernet_light::persist::MAX_TRUST_BYTES;
        let builder = match options.checkpoint.as_deref() {
            Some(text) if text.len() > max_hex => {
                return Err(error(
                    Kind::Client(ErrorKind::BadCheckpoint),
                    format!("checkpoint is {} hex digits; at most {max_hex}", text.len()),
                ));
            }
            Some(text) => {
                let bytes = hex::decode(text).map_err(|e| {
                    error(
                        Kind::Client(ErrorKind::BadCheckpoint),
                        format!("checkpoint is not hex: {e}"),
                    )
                })?;
                let checkpoint = tiernet_light::Checkpoint::from_bytes(&bytes, &genesis.network)
                    .map_err(|e| error(Kind::Client(ErrorKind::BadCheckpoint), e))?;
                builder.checkpoint(checkpoint)
            }
            None => builder,
        };
        let saved_trust = options.saved_trust.as_deref().filter(|text| {
            let fits = text.len() <= max_hex;
            if !fits {
                tracing::warn!(len = text.len(), "savedTrust is too long; starting from the checkpoint");
            }
            fits
        });
        let builder = match saved_trust.map(hex::decode) {
            Some(Ok(bytes)) => builder.saved_trust(bytes),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "savedTrust is not hex; starting from the checkpoint");
                builder
            }
            None => builder,
        };
        let builder = match options.min_peers {
            Some(0) => return Err(error(Kind::BadInput, "minPeers must be at least 1")),
            Some(n) => builder.min_peers(n as usize),
            None => builder,
        };
        let inner = builder.bootstrap(options.bootstrap).build().map_err(client_error)?;
        Ok(Self::with_inner(inner))
    }

    /// Sets the event listener (replacing an earlier one). Set it before
    /// `start()` to see the connections being made.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, #[wasm_bindgen(unchecked_param_type = "(event: ClientEvent) => void")] listener: Function) {
        *self.shared.listener.borrow_mut() = Some(listener);
    }

    /// Connects, then verifies a chain proof from the genesis to the latest
    /// head; resolves to that head. Afterwards the client follows `blocks`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Head>")]
    pub fn start(&self) -> Promise {
        let inner = self.inner.clone();
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let head = inner.start().await.map_err(client_error)?;
            to_js(&shared.head_or(&head))
        })
    }

    /// The latest verified head (height 0 before the first).
    #[wasm_bindgen(unchecked_return_type = "Head")]
    pub fn head(&self) -> Result<JsValue, JsValue> {
        let head = self.inner.head();
        to_js(&self.shared.head_or(&head))
    }

    /// The trusted state now, as hex: give it back as `options.checkpoint`
    /// on the next page load to start there (no chain proof from genesis).
    /// Throws before anything past the genesis is verified.
    #[wasm_bindgen(js_name = exportCheckpoint)]
    pub fn export_checkpoint(&self) -> Result<String, JsValue> {
        self.inner.export_trust().map(hex::encode).map_err(client_error)
    }

    /// The height of the saved trust this client started from (`savedTrust`
    /// within the trusting period), or undefined after a start from the
    /// checkpoint or genesis.
    #[wasm_bindgen(js_name = resumedFrom)]
    pub fn resumed_from(&self) -> Option<f64> {
        self.inner.resumed_from().map(|h| h as f64)
    }

    /// Resolves once the verified head reaches `height`.
    #[wasm_bindgen(js_name = waitForHeight, unchecked_return_type = "Promise<Head>")]
    pub fn wait_for_height(&self, height: f64) -> Promise {
        let inner = self.inner.clone();
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let head = inner
                .wait_for_height(height.max(0.0) as u64)
                .await
                .map_err(client_error)?;
            to_js(&shared.head_or(&head))
        })
    }

    /// Whether the head can be vouched for now: `{ status, ageMs }` with
    /// status `syncing`, `current`, `no-peers`, `stale` (the head is older
    /// than the maximum head age on the local clock), `expired` or
    /// `conflicting`.
    #[wasm_bindgen(unchecked_return_type = "{ status: string, ageMs: number }")]
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js(&status_view(self.inner.status()))
    }

    /// Every peer met so far.
    #[wasm_bindgen(unchecked_return_type = "PeerInfo[]")]
    pub fn peers(&self) -> Result<JsValue, JsValue> {
        let peers: Vec<PeerInfo> = self.inner.peer_infos().into_iter().map(PeerInfo::from).collect();
        to_js(&peers)
    }

    /// Asks the next peer in turn for a chain proof to its latest head.
    #[wasm_bindgen(js_name = syncToLatest, unchecked_return_type = "Promise<Head>")]
    pub fn sync_to_latest(&self) -> Promise {
        let inner = self.inner.clone();
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let head = inner.sync_to_latest().await.map_err(client_error)?;
            to_js(&shared.head_or(&head))
        })
    }

    /// The value of `key` in the state at the verified head, with that
    /// head: `{ value, head }` (`value` undefined: proven absent).
    #[wasm_bindgen(js_name = getState, unchecked_return_type = "Promise<ProvenState>")]
    pub fn get_state(&self, key: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let proven = inner.get_proven_state(key).await.map_err(client_error)?;
            let result = js_sys::Object::new();
            let value = proven
                .value
                .map_or(JsValue::UNDEFINED, |v| js_sys::Uint8Array::from(v.as_slice()).into());
            js_sys::Reflect::set(&result, &"value".into(), &value)?;
            js_sys::Reflect::set(&result, &"head".into(), &to_js(&shared.head_or(&proven.head))?)?;
            Ok(result.into())
        })
    }

    /// The record and tier of a ZSI identity (64 hex digits), proven against
    /// the verified head's state root; `undefined`: proven not registered.
    #[wasm_bindgen(js_name = lookupIdentity, unchecked_return_type = "Promise<IdentityInfo | undefined>")]
    pub fn lookup_identity(&self, zsi_id_hex: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id = parse_zsi(&zsi_id_hex)?;
            match inner.lookup_identity(id).await.map_err(client_error)? {
                None => Ok(JsValue::UNDEFINED),
                Some(proven) => to_js(&IdentityInfo::from(proven)),
            }
        })
    }

    /// Stops the client: connections close and no more events come; the
    /// verified head stays readable. `free()` stops it too.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Downloads the latest snapshot, every chunk verified against its
    /// manifest and a verified header; reports `syncProgress` per chunk and
    /// hands each chunk's verified entries to `onChunk` as it verifies.
    #[wasm_bindgen(js_name = syncSnapshot, unchecked_return_type = "Promise<SnapshotInfo>")]
    pub fn sync_snapshot(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(chunk: VerifiedChunk) => void")] on_chunk: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let sync = inner
                .sync_snapshot_with(|chunk| {
                    if let Some(on_chunk) = &on_chunk
                        && let Err(e) = on_chunk.call1(&JsValue::NULL, &chunk_to_js(&chunk))
                    {
                        tracing::warn!(error = ?e, "the onChunk callback threw");
                    }
                })
                .await
                .map_err(client_error)?;
            let (_, chunks) = sync.progress();
            to_js(&SnapshotInfo {
                height: sync.manifest().height,
                chunks,
                entries: sync.entries().len(),
            })
        })
    }
}

/// `{ index, entries: [{ key, value }], done, total }` for `onChunk`.
fn chunk_to_js(chunk: &tiernet_light::VerifiedChunk<'_>) -> JsValue {
    let entries = js_sys::Array::new();
    for entry in chunk.entries {
        let pair = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&pair, &"key".into(), &js_sys::Uint8Array::from(entry.key.as_slice()));
        let _ = js_sys::Reflect::set(
            &pair,
            &"value".into(),
            &js_sys::Uint8Array::from(entry.value.as_slice()),
        );
        entries.push(&pair);
    }
    let out = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&out, &"index".into(), &chunk.index.into());
    let _ = js_sys::Reflect::set(&out, &"entries".into(), &entries);
    let _ = js_sys::Reflect::set(&out, &"done".into(), &chunk.done.into());
    let _ = js_sys::Reflect::set(&out, &"total".into(), &chunk.total.into());
    out.into()
}

/// The state key of a ZSI identity's record (`id/` ‖ 32 bytes), for
/// `getState`.
#[wasm_bindgen(js_name = identityStateKey)]
pub fn identity_state_key(zsi_id_hex: String) -> Result<Vec<u8>, JsValue> {
    Ok(tiernet_core::state::identity_key(&parse_zsi(&zsi_id_hex)?).to_vec())
}

/// The package's version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn parse_zsi(hex_id: &str) -> Result<ZsiId, JsValue> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id.trim(), &mut bytes)
        .map_err(|e| error(Kind::BadInput, format!("a ZSI id is 64 hex digits ({hex_id:?}: {e})")))?;
    Ok(ZsiId(Hash32(bytes)))
}

impl From<tiernet_light::ProvenIdentity> for IdentityInfo {
    fn from(proven: tiernet_light::ProvenIdentity) -> Self {
        IdentityInfo {
            zsi_id: proven.id.to_string(),
            tier: proven.tier.to_string(),
            uptime_minutes: proven.reputation.uptime_minutes,
            participation: proven.reputation.participation,
            score: proven.reputation.score,
            slashed: proven.reputation.slashed,
            height: proven.head.height,
            state_root: proven.head.state_root.to_string(),
        }
    }
}

impl From<tiernet_light::PeerInfo> for PeerInfo {
    fn from(peer: tiernet_light::PeerInfo) -> Self {
        PeerInfo {
            peer_id: peer.peer.to_string(),
            state: peer.state.label(),
            transports: peer.transports.iter().map(|t| t.label()).collect(),
            address: peer.address.map(|a| a.to_string()).unwrap_or_default(),
            reason: peer.reason.unwrap_or_default(),
        }
    }
}

impl LightClient {
    /// Wraps a built client and starts forwarding its events to the
    /// listener (also used by the tests, with an in-memory transport).
    pub fn with_inner(inner: tiernet_light::LightClient) -> LightClient {
        let shared = Rc::new(Shared {
            listener: RefCell::new(None),
            head: RefCell::new(None),
        });
        let mut events = inner.events();
        let task_shared = Rc::downgrade(&shared);
        let task_inner = inner.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the event listener fell behind");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                // The JS object was freed: stop forwarding.
                let Some(shared) = task_shared.upgrade() else { return };
                shared.forward(&task_inner, event);
            }
        });
        LightClient { inner, shared }
    }
}

impl Drop for LightClient {
    /// `free()` from JavaScript: the networking stops with the object.
    fn drop(&mut self) {
        self.inner.stop();
    }
}

impl Shared {
    /// `head` with the time it was first seen verified.
    fn head_or(&self, head: &VerifiedHead) -> Head {
        let mut current = self.head.borrow_mut();
        match current.as_ref() {
            Some(h) if h.height == head.height && h.hash == head.hash.to_string() => h.clone(),
            _ => {
                let fresh = Head::of(head, now_ms());
                if head.height > 0 {
                    *current = Some(fresh.clone());
                }
                fresh
            }
        }
    }

    fn forward(&self, inner: &tiernet_light::LightClient, event: Event) {
        let out = match event {
            Event::HeadVerified(head) => ClientEvent::HeadVerified {
                head: self.head_or(&head),
            },
            Event::PeerConnected(peer) => {
                let address = inner
                    .connections()
                    .into_iter()
                    .find(|(p, _)| *p == peer)
                    .and_then(|(_, addrs)| addrs.last().cloned());
                ClientEvent::PeerConnected {
                    peer_id: peer.to_string(),
                    transport: address.as_ref().map_or(TransportKind::Other, TransportKind::of).label(),
                    address: address.as_ref().map(ToString::to_string).unwrap_or_default(),
                }
            }
            Event::PeerDisconnected(peer) => ClientEvent::PeerDisconnected {
                peer_id: peer.to_string(),
            },
            Event::PeerRejected { peer, reason } => ClientEvent::PeerRejected {
                peer_id: peer.to_string(),
                reason,
            },
            Event::DialFailed { peer, reason } => ClientEvent::DialFailed {
                peer_id: peer.map(|p| p.to_string()).unwrap_or_default(),
                reason,
            },
            Event::SyncProgress { what, done, total } => ClientEvent::SyncProgress { what, done, total },
            Event::Status(status) => {
                let view = status_view(status);
                ClientEvent::Status {
                    status: view.status,
                    age_ms: view.age_ms,
                }
            }
            Event::Conflict {
                height,
                ours,
                theirs,
                peer,
            } => ClientEvent::Conflict {
                height,
                ours: ours.to_string(),
                theirs: theirs.to_string(),
                peer_id: peer.to_string(),
            },
            Event::Stalled { since_ms } => ClientEvent::Stalled { since_ms },
        };
        let listener = self.listener.borrow().clone();
        if let Some(listener) = listener {
            match to_js(&out) {
                Ok(value) => {
                    if let Err(e) = listener.call1(&JsValue::NULL, &value) {
                        tracing::warn!(error = ?e, "the event listener threw");
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "an event could not be converted"),
            }
        }
    }
}
