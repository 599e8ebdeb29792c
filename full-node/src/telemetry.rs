//! The telemetry HTTP endpoint the node serves on `telemetry.listen`
//! (loopback by default; it is unauthenticated and read-only).
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | the Prometheus registry in the OpenMetrics text format |
//! | `GET /peers` | JSON array of [`PeerView`] |
//! | `GET /status` | JSON [`StatusView`] (height, version, syncing, peers) |
//! | `GET /liveness` | JSON array of [`NodeLiveness`]: every node heard on `meta` (height, head, agent, peer count, measured RTTs) |
//! | `GET /alerts` | JSON [`AlertsView`]: the nodes reported offline, and those falling behind |
//! | anything else | `404 Not Found` with a short text (`405` for another method on a known path) |
//!
//! The node's event loop owns the peer state; the handlers ask it over a
//! bounded channel of [`TelemetryQuery`] and wait at most [`QUERY_TIMEOUT`]
//! (sending and answering together). A node that does not answer in time, or
//! that has stopped, gives `503 Service Unavailable` with a message. No
//! request bodies are read; hyper's default header limits apply.
//!
//! ## Only requests addressed to this server (DNS rebinding)
//!
//! A web page can make a browser send requests to `127.0.0.1:7703` by
//! pointing a name of its own at that address ("DNS rebinding"); the
//! browser then sends that name in `Host`. Every request is therefore
//! checked against [`HostPolicy`] before it reaches a handler: its `Host`
//! must be the bound `ip:port`, `localhost:port` when bound to loopback
//! (or to all addresses), any IP literal with the right port when bound to
//! all addresses (`0.0.0.0`, `::`; an IP literal cannot be rebound), or a
//! name listed in `telemetry.hosts` (any port: for reverse proxies and
//! scrapers that use DNS names). Anything else, or no `Host` at all, gets
//! `421 Misdirected Request` with a body naming the accepted hosts.
//! Prometheus sends the target's `host:port`, so a scrape of the bound
//! address, or of a listed name, passes.
//!
//! ## Test endpoints
//!
//! Only a binary built with the cargo feature `testing` has the
//! `/testing/*` routes (publish, dial, received, submit-proof,
//! equivocate), and then only when `testing.api` is set. A release build
//! has no code for them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long a handler waits for the node to take and answer a query.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`TelemetryServer::shutdown`] waits for open requests to finish
/// before it aborts the server task.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A peer as /peers shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PeerView {
    /// The peer's PeerId.
    pub peer_id: String,
    /// Its proven ZSI id (hex), if its handshake succeeded with one.
    pub zsi_id: Option<String>,
    /// Its tier, `"TL0"` .. `"TL5"`.
    pub tier: String,
    /// Its local peer score.
    pub score: f64,
    /// End of its ban, ms since the Unix epoch, if banned.
    pub banned_until_ms: Option<u64>,
    /// Whether a connection to it is open.
    pub connected: bool,
    /// Transports of its open connections, e.g. `"tcp"`, `"ws"`, `"webrtc-direct"`.
    pub transports: Vec<String>,
    /// Its known addresses (multiaddrs).
    pub addrs: Vec<String>,
    /// Its agent version as identify reported it (empty if unknown).
    pub agent: String,
    /// When it was last seen, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// The node as /status shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StatusView {
    /// This node's PeerId.
    pub peer_id: String,
    /// The network id.
    pub network_id: String,
    /// This node's ZSI id (hex), if it has one.
    pub zsi_id: Option<String>,
    /// The addresses it listens on (multiaddrs).
    pub listen_addrs: Vec<String>,
    /// Number of peers with an open connection.
    pub connected_peers: usize,
    /// Last committed height (0 without a chain).
    #[serde(default)]
    pub height: u64,
    /// The agent version (`tiernet-node/<version>`).
    #[serde(default)]
    pub version: String,
    /// Whether the node is catching up to heights it saw announced.
    #[serde(default)]
    pub syncing: bool,
}

pub use crate::liveness::NodeLiveness;

/// What `GET /alerts` shows.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AlertsView {
    /// Heartbeat intervals of silence after which a node is offline.
    pub offline_after_heartbeats: u32,
    /// The heartbeat interval, ms.
    pub heartbeat_interval_ms: u64,
    /// The nodes reported offline.
    pub offline: Vec<NodeLiveness>,
    /// Online nodes more than [`crate::node::BEHIND_ALERT_BLOCKS`] below the
    /// highest height heard (falling behind).
    #[serde(default)]
    pub behind: Vec<NodeLiveness>,
}

/// The chain as `/chain` shows it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ChainView {
    /// Last committed height (0 = genesis).
    pub height: u64,
    /// Hash of the last committed header (hex; empty at genesis).
    pub block_hash: String,
    /// State root after the last committed block (hex).
    pub state_root: String,
    /// The validator set of the next height.
    pub validators: Vec<ValidatorView>,
    /// Every registered identity with its on-chain reputation and tier.
    pub identities: Vec<IdentityView>,
    /// Content ids (hex) of the proofs in the mempool.
    pub mempool: Vec<String>,
    /// Equivocation evidence waiting for a block.
    pub pending_evidence: usize,
    /// Finality latency of the latest decisions here, oldest first (at
    /// most [`FINALITY_SAMPLES_KEPT`]).
    pub finality: Vec<FinalitySample>,
}

/// Decisions whose finality latency [`ChainView`] keeps.
pub const FINALITY_SAMPLES_KEPT: usize = 256;

/// One decision's finality latency: from the proposer's block time (header
/// `time_ms`) to the moment this node decided the height.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FinalitySample {
    /// The height.
    pub height: u64,
    /// Milliseconds from the header's time to the decision.
    pub latency_ms: u64,
}

/// A validator in [`ChainView`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ValidatorView {
    /// ZSI id (hex).
    pub zsi_id: String,
    /// Voting power.
    pub power: u64,
}

/// An identity in [`ChainView`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct IdentityView {
    /// ZSI id (hex).
    pub zsi_id: String,
    /// Tier from chain state.
    pub tier: String,
    /// Reputation score.
    pub score: u64,
    /// Credited uptime, minutes.
    pub uptime_minutes: u64,
    /// Included precommits.
    pub participation: u64,
    /// Slashed for equivocation.
    pub slashed: bool,
}

/// A finalized block as `/chain/block/{height}` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// Header hash (hex).
    pub hash: String,
    /// The encoded `FinalizedBlock` (hex): block and commit certificate.
    pub finalized: String,
}

/// What the HTTP handlers ask the node's event loop (which owns the state).
/// The event loop answers on the enclosed sender; dropping it unanswered
/// gives the client a 503.
#[derive(Debug)]
pub enum TelemetryQuery {
    /// All peers in the peerstore.
    Peers(oneshot::Sender<Vec<PeerView>>),
    /// The node's own status.
    Status(oneshot::Sender<StatusView>),
    /// The liveness table.
    Liveness(oneshot::Sender<Vec<NodeLiveness>>),
    /// The offline nodes.
    Alerts(oneshot::Sender<AlertsView>),
    /// Test API: publish a sample message on a topic (or the given bytes);
    /// answers the message id.
    #[cfg(feature = "testing")]
    Publish {
        /// The topic.
        topic: tiernet_core::wire::Topic,
        /// The payload to publish as it is (`data=<hex>`); a sample if absent.
        data: Option<Vec<u8>>,
        /// The answer.
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Test API: dial a multiaddr.
    #[cfg(feature = "testing")]
    Dial {
        /// The address.
        addr: String,
        /// The answer.
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Test API: GossipSub scores and meshes (the network simulator).
    #[cfg(feature = "testing")]
    Gossip(oneshot::Sender<crate::node::probe::GossipView>),
    /// Test API: the gossip messages accepted recently.
    #[cfg(feature = "testing")]
    Received(oneshot::Sender<Vec<ReceivedView>>),
    /// The chain's state.
    Chain(oneshot::Sender<Option<ChainView>>),
    /// A finalized block.
    Block {
        /// Its height.
        height: u64,
        /// The answer (`None`: not stored).
        reply: oneshot::Sender<Option<BlockView>>,
    },
    /// Test API: publish a proof envelope (hex of its encoding) as this node.
    #[cfg(feature = "testing")]
    SubmitProof {
        /// Hex of the encoded `ProofEnvelope`.
        envelope: String,
        /// The answer.
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Test API: sign and publish two conflicting prevotes (a double sign).
    #[cfg(feature = "testing")]
    Equivocate(oneshot::Sender<Result<String, String>>),
}

/// What the node decided about a gossip message, as `/testing/received`
/// shows it (the last [`crate::node::RECEIVED_KEPT`] messages).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ReceivedView {
    /// Topic name.
    pub topic: String,
    /// GossipSub message id (hex).
    pub message_id: String,
    /// The author: a ZSI id, `observer:<PeerId>` or `certified:<signers>`.
    pub author: String,
    /// The author's tier.
    pub tier: String,
    /// `accept`, or the reason it was ignored or rejected (the `decision`
    /// label of `tiernet_gossip_messages_total`).
    pub decision: String,
    /// The message's bytes (hex) if it is at most
    /// [`crate::node::RECEIVED_DATA_MAX`] bytes long, else empty.
    pub data: String,
}

/// The telemetry server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The address could not be bound.
    #[error("cannot listen for telemetry on {addr} (telemetry.listen); expected a free local ip:port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the local address of the telemetry listener bound to {addr}")]
    LocalAddr {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Mutex<Registry>>,
    queries: mpsc::Sender<TelemetryQuery>,
}

/// The running telemetry HTTP server: its bound address and its task.
/// Dropping it without [`shutdown`](TelemetryServer::shutdown) aborts the task.
#[derive(Debug)]
pub struct TelemetryServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TelemetryServer {
    /// Binds `addr` (port 0 picks a free port) and serves `GET /metrics`,
    /// `GET /peers` and `GET /status` (see the [module docs](self)).
    ///
    /// `registry` is behind a `std::sync::Mutex` so that the node may register
    /// metrics after the server has started; the lock is held only while one
    /// `/metrics` answer is encoded. `queries` is the bounded channel into the
    /// node's event loop. `testing` serves the `/testing/*` routes (only in a
    /// build with the cargo feature `testing`; ignored otherwise). `hosts`
    /// are the extra names accepted in `Host` (`telemetry.hosts`; see
    /// [`HostPolicy`]).
    pub async fn start(
        addr: SocketAddr,
        registry: Arc<Mutex<Registry>>,
        queries: mpsc::Sender<TelemetryQuery>,
        testing: bool,
        hosts: &[String],
    ) -> Result<TelemetryServer, TelemetryError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TelemetryError::LocalAddr { addr, source })?;
        let policy = Arc::new(HostPolicy::new(local_addr, hosts));
        let app = router(AppState { registry, queries }, testing)
            .layer(axum::middleware::from_fn_with_state(policy, check_host));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender is a stop too.
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(%local_addr, error = %e, "telemetry server failed");
            }
        });
        tracing::info!(%local_addr, "telemetry listening");
        Ok(TelemetryServer {
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits up to [`SHUTDOWN_TIMEOUT`] for
    /// open requests to finish; after that the server task is aborted.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err()
        {
            tracing::warn!(local_addr = %self.local_addr, "telemetry server did not stop in time; aborting it");
            task.abort();
        }
    }
}

impl Drop for TelemetryServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Which `Host` header values the telemetry server answers: the guard
/// against DNS rebinding (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    local: SocketAddr,
    names: Vec<String>,
}

/// Longest `Host` value echoed back in a refusal.
const MAX_ECHOED_HOST: usize = 100;

impl HostPolicy {
    /// The policy of a server bound to `local` (the address actually bound,
    /// not port 0) that also accepts the host names `names` on any port.
    pub fn new(local: SocketAddr, names: &[String]) -> Self {
        Self {
            local,
            names: names.iter().map(|n| normalise_name(n)).collect(),
        }
    }

    /// Whether a request whose `Host` header is `host` is addressed to this
    /// server. A `Host` without a port means port 80.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        // `Authority` accepts userinfo ("a@b"); a Host header never has one.
        if authority.as_str().contains('@') {
            return false;
        }
        let name = normalise_name(authority.host());
        if self.names.contains(&name) {
            return true;
        }
        if authority.port_u16().unwrap_or(80) != self.local.port() {
            return false;
        }
        let bound = self.local.ip();
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<std::net::IpAddr>() {
            Ok(ip) => bound.is_unspecified() || ip == bound,
            Err(_) => name == "localhost" && (bound.is_loopback() || bound.is_unspecified()),
        }
    }

    /// What the server accepts, for the refusal's text.
    fn describe(&self) -> String {
        let port = self.local.port();
        let bound = self.local.ip();
        let mut accepted = Vec::new();
        if bound.is_unspecified() {
            accepted.push(format!("any IP address with port {port}"));
        } else {
            accepted.push(self.local.to_string());
        }
        if bound.is_loopback() || bound.is_unspecified() {
            accepted.push(format!("localhost:{port}"));
        }
        accepted.extend(self.names.iter().cloned());
        accepted.join(", ")
    }
}

/// Lower case, without a trailing dot.
fn normalise_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Refuses requests whose `Host` is not this server (see [`HostPolicy`]).
async fn check_host(State(policy): State<Arc<HostPolicy>>, request: Request, next: Next) -> Response {
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok().map(str::to_owned),
        None => request.uri().authority().map(|a| a.as_str().to_owned()),
    };
    match host {
        Some(host) if policy.allows(&host) => next.run(request).await,
        Some(host) => {
            let shown: String = host.chars().take(MAX_ECHOED_HOST).collect();
            tracing::debug!(host = %shown, "telemetry request for another host refused");
            (
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "refused: Host {shown:?} is not this telemetry server; it answers requests for {} \
                     (DNS-rebinding guard; add a name to telemetry.hosts to accept it)\n",
                    policy.describe()
                ),
            )
                .into_response()
        }
        None => (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "refused: the request has no readable Host header; this telemetry server answers requests for {}\n",
                policy.describe()
            ),
        )
            .into_response(),
    }
}

fn router(state: AppState, testing: bool) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/peers", get(peers))
        .route("/status", get(status))
        .route("/liveness", get(liveness))
        .route("/alerts", get(alerts))
        .route("/chain", get(chain))
        .route("/chain/block/{height}", get(block));
    #[cfg(feature = "testing")]
    let router = if testing { testing_routes(router) } else { router };
    #[cfg(not(feature = "testing"))]
    let _ = testing;
    router.fallback(not_found).with_state(state)
}

/// The `/testing/*` routes (builds with the cargo feature `testing` only).
#[cfg(feature = "testing")]
fn testing_routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/testing/publish", axum::routing::post(testing_publish))
        .route("/testing/dial", axum::routing::post(testing_dial))
        .route("/testing/received", get(testing_received))
        .route("/testing/submit-proof", axum::routing::post(testing_submit_proof))
        .route("/testing/equivocate", axum::routing::post(testing_equivocate))
}

/// Query string of the test endpoints.
#[cfg(feature = "testing")]
#[derive(Debug, serde::Deserialize)]
struct TestingParams {
    topic: Option<String>,
    data: Option<String>,
    addr: Option<String>,
    envelope: Option<String>,
}

async fn chain(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "chain", TelemetryQuery::Chain).await {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "this node has no chain (no genesis)\n").into_response(),
        Err(response) => response,
    }
}

async fn block(State(state): State<AppState>, axum::extract::Path(height): axum::extract::Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return bad_request("height must be a number\n".into());
    };
    match ask(&state.queries, "block", |reply| TelemetryQuery::Block { height, reply }).await {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no block at height {height}\n")).into_response(),
        Err(response) => response,
    }
}

#[cfg(feature = "testing")]
async fn testing_submit_proof(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<TestingParams>,
) -> Response {
    let Some(envelope) = params.envelope else {
        return bad_request("envelope=<hex> is missing\n".into());
    };
    match ask(&state.queries, "submit-proof", |reply| TelemetryQuery::SubmitProof {
        envelope,
        reply,
    })
    .await
    {
        Ok(result) => answer(result),
        Err(response) => response,
    }
}

#[cfg(feature = "testing")]
async fn testing_equivocate(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "equivocate", TelemetryQuery::Equivocate).await {
        Ok(result) => answer(result),
        Err(response) => response,
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

#[cfg(feature = "testing")]
fn answer(result: Result<String, String>) -> Response {
    match result {
        Ok(text) => (StatusCode::OK, text + "\n").into_response(),
        Err(text) => (StatusCode::CONFLICT, text + "\n").into_response(),
    }
}

#[cfg(feature = "testing")]
async fn testing_publish(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<TestingParams>,
) -> Response {
    let name = params.topic.unwrap_or_default();
    let Some(topic) = tiernet_core::wire::Topic::ALL.into_iter().find(|t| t.name() == name) else {
        return bad_request(format!(
            "topic={name:?} is not one of blocks, votes, proofs, snapshots, meta\n"
        ));
    };
    let data = match params.data.as_deref().map(hex::decode).transpose() {
        Ok(data) => data,
        Err(error) => return bad_request(format!("data is not hex: {error}\n")),
    };
    match ask(&state.queries, "publish", |reply| TelemetryQuery::Publish {
        topic,
        data,
        reply,
    })
    .await
    {
        Ok(result) => answer(result),
        Err(response) => response,
    }
}

#[cfg(feature = "testing")]
async fn testing_dial(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<TestingParams>,
) -> Response {
    let Some(addr) = params.addr else {
        return bad_request("addr=<multiaddr> is missing\n".into());
    };
    match ask(&state.queries, "dial", |reply| TelemetryQuery::Dial { addr, reply }).await {
        Ok(result) => answer(result),
        Err(response) => response,
    }
}

#[cfg(feature = "testing")]
async fn testing_received(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "received", TelemetryQuery::Received).await {
        Ok(received) => axum::Json(received).into_response(),
        Err(response) => response,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    let encoded = match state.registry.lock() {
        Ok(registry) => prometheus_client::encoding::text::encode(&mut body, &registry),
        // A panic while holding the lock does not corrupt the registry.
        Err(poisoned) => prometheus_client::encoding::text::encode(&mut body, &poisoned.into_inner()),
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode the metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n").into_response()
        }
    }
}

/// Sends a query built around a fresh oneshot and waits for the answer,
/// all within [`QUERY_TIMEOUT`].
async fn ask<T>(
    queries: &mpsc::Sender<TelemetryQuery>,
    what: &str,
    make: impl FnOnce(oneshot::Sender<T>) -> TelemetryQuery,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let exchange = async {
        queries.send(make(tx)).await.map_err(|_| "the node has stopped")?;
        rx.await.map_err(|_| "the node dropped the query")
    };
    match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(reason)) => Err(unavailable(format!("{what}: {reason}\n"))),
        Err(_) => Err(unavailable(format!(
            "{what}: the node did not answer within {} ms\n",
            QUERY_TIMEOUT.as_millis()
        ))),
    }
}

fn unavailable(message: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
}

async fn peers(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "peers", TelemetryQuery::Peers).await {
        Ok(peers) => axum::Json(peers).into_response(),
        Err(response) => response,
    }
}

async fn status(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "status", TelemetryQuery::Status).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(response) => response,
    }
}

async fn liveness(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "liveness", TelemetryQuery::Liveness).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(response) => response,
    }
}

async fn alerts(State(state): State<AppState>) -> Response {
    match ask(&state.queries, "alerts", TelemetryQuery::Alerts).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(response) => response,
    }
}

async fn not_found(uri: Uri) -> Response {
    let path: String = uri.path().chars().take(200).collect();
    (
        StatusCode::NOT_FOUND,
        format!("not found: {path}; try /metrics, /peers or /status\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct HttpResponse {
        status: u16,
        headers: String,
        body: String,
    }

    async fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
        http_for(addr, Some(&addr.to_string()), method, path).await
    }

    /// A request with `Host: host` (`None`: no Host header at all).
    async fn http_for(addr: SocketAddr, host: Option<&str>, method: &str, path: &str) -> HttpResponse {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
        let request = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("response within 10 s")
            .unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        HttpResponse {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    fn sample_peer() -> PeerView {
        PeerView {
            peer_id: "12D3KooWtest".into(),
            zsi_id: Some("ab".repeat(32)),
            tier: "TL3".into(),
            score: -1.5,
            banned_until_ms: None,
            connected: true,
            transports: vec!["tcp".into(), "webrtc-direct".into()],
            addrs: vec!["/ip4/127.0.0.1/tcp/7700".into()],
            agent: "tiernet-node/0.1.0".into(),
            last_seen_ms: 1_764_000_000_000,
        }
    }

    fn sample_status() -> StatusView {
        StatusView {
            peer_id: "12D3KooWself".into(),
            network_id: "devnet".into(),
            zsi_id: None,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/7700".into()],
            connected_peers: 1,
            height: 7,
            version: "tiernet-node/0.1.0".into(),
            syncing: false,
        }
    }

    fn registry_with_counter() -> Arc<Mutex<Registry>> {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        counter.inc_by(3);
        registry.register("test_events", "Events seen by the test", counter);
        Arc::new(Mutex::new(registry))
    }

    async fn start(queries: mpsc::Sender<TelemetryQuery>, testing: bool) -> TelemetryServer {
        TelemetryServer::start(
            "127.0.0.1:0".parse().unwrap(),
            registry_with_counter(),
            queries,
            testing,
            &[],
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn testing_routes_exist_only_when_enabled_in_a_testing_build() {
        for testing in [false, true] {
            let (tx, rx) = mpsc::channel(4);
            let _responder = responder(rx);
            let server = start(tx, testing).await;
            let addr = server.local_addr();
            let publish = http(addr, "POST", "/testing/publish?topic=votes").await;
            let bad_topic = http(addr, "POST", "/testing/publish?topic=nope").await;
            let dial = http(addr, "POST", "/testing/dial?addr=/ip4/1.2.3.4/tcp/1").await;
            let received = http(addr, "GET", "/testing/received").await;
            if testing && cfg!(feature = "testing") {
                assert_eq!((publish.status, publish.body.as_str()), (200, "published on votes\n"));
                assert_eq!(bad_topic.status, 400);
                assert_eq!(dial.status, 409);
                assert_eq!((received.status, received.body.as_str()), (200, "[]"));
            } else {
                for response in [publish, bad_topic, dial, received] {
                    assert_eq!(response.status, 404);
                }
            }
            server.shutdown().await;
        }
    }

    /// A fake event loop that answers every query.
    fn responder(mut rx: mpsc::Receiver<TelemetryQuery>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(query) = rx.recv().await {
                match query {
                    TelemetryQuery::Peers(tx) => {
                        let _ = tx.send(vec![sample_peer()]);
                    }
                    TelemetryQuery::Status(tx) => {
                        let _ = tx.send(sample_status());
                    }
                    TelemetryQuery::Liveness(tx) => {
                        let _ = tx.send(vec![]);
                    }
                    TelemetryQuery::Alerts(tx) => {
                        let _ = tx.send(AlertsView::default());
                    }
                    #[cfg(feature = "testing")]
                    TelemetryQuery::Publish { topic, reply, .. } => {
                        let _ = reply.send(Ok(format!("published on {topic}")));
                    }
                    #[cfg(feature = "testing")]
                    TelemetryQuery::Dial { addr, reply } => {
                        let _ = reply.send(Err(format!("cannot dial {addr}")));
                    }
                    #[cfg(feature = "testing")]
                    TelemetryQuery::Received(reply) => {
                        let _ = reply.send(vec![]);
                    }
                    #[cfg(feature = "testing")]
                    TelemetryQuery::Gossip(reply) => {
                        let _ = reply.send(Default::default());
                    }
                    TelemetryQuery::Chain(reply) => {
                        let _ = reply.send(None);
                    }
                    TelemetryQuery::Block { reply, .. } => {
                        let _ = reply.send(None);
                    }
                    #[cfg(feature = "testing")]
                    TelemetryQuery::SubmitProof { reply, .. } | TelemetryQuery::Equivocate(reply) => {
                        let _ = reply.send(Err("not here".into()));
                    }
                }
            }
        })
    }

    #[tokio::test]
    async fn serves_metrics_peers_status_and_404() {
        let (tx, rx) = mpsc::channel(8);
        let _responder = responder(rx);
        let server = start(tx, false).await;
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let metrics = http(addr, "GET", "/metrics").await;
        assert_eq!(metrics.status, 200, "{}", metrics.body);
        assert!(
            metrics
                .headers
                .contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}")),
            "{}",
            metrics.headers
        );
        assert!(metrics.body.contains("test_events_total 3"), "{}", metrics.body);
        assert!(metrics.body.ends_with("# EOF\n"), "{}", metrics.body);

        let peers = http(addr, "GET", "/peers").await;
        assert_eq!(peers.status, 200, "{}", peers.body);
        assert!(
            peers.headers.contains("content-type: application/json"),
            "{}",
            peers.headers
        );
        let parsed: Vec<PeerView> = serde_json::from_str(&peers.body).unwrap();
        assert_eq!(parsed, vec![sample_peer()]);

        let status = http(addr, "GET", "/status").await;
        assert_eq!(status.status, 200, "{}", status.body);
        let parsed: StatusView = serde_json::from_str(&status.body).unwrap();
        assert_eq!(parsed, sample_status());

        let missing = http(addr, "GET", "/nope").await;
        assert_eq!(missing.status, 404);
        assert!(missing.body.contains("not found: /nope"), "{}", missing.body);

        let wrong_method = http(addr, "POST", "/peers").await;
        assert_eq!(wrong_method.status, 405);

        server.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "closed after shutdown"
        );
    }

    #[tokio::test]
    async fn a_node_that_does_not_answer_gives_503() {
        // The receiver is kept but never read: the query waits in the channel.
        let (tx, _rx) = mpsc::channel(8);
        let server = start(tx, false).await;
        let addr = server.local_addr();
        let started = std::time::Instant::now();
        let response = http(addr, "GET", "/peers").await;
        assert_eq!(response.status, 503, "{}", response.body);
        assert!(
            response.body.contains("did not answer within 2000 ms"),
            "{}",
            response.body
        );
        assert!(started.elapsed() >= QUERY_TIMEOUT);
        // /metrics does not need the node.
        assert_eq!(http(addr, "GET", "/metrics").await.status, 200);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_stopped_node_gives_503_at_once() {
        let (tx, rx) = mpsc::channel(8);
        drop(rx);
        let server = start(tx, false).await;
        let response = http(server.local_addr(), "GET", "/status").await;
        assert_eq!(response.status, 503);
        assert!(response.body.contains("the node has stopped"), "{}", response.body);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_taken_port_is_a_bind_error_naming_the_address() {
        let (tx, _rx) = mpsc::channel(1);
        let first = TelemetryServer::start(
            "127.0.0.1:0".parse().unwrap(),
            registry_with_counter(),
            tx.clone(),
            false,
            &[],
        )
        .await
        .unwrap();
        let err = TelemetryServer::start(first.local_addr(), registry_with_counter(), tx, false, &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&first.local_addr().to_string()), "{err}");
        first.shutdown().await;
    }

    #[tokio::test]
    async fn a_request_for_another_host_is_refused_dns_rebinding() {
        let (tx, rx) = mpsc::channel(8);
        let _responder = responder(rx);
        let server = start(tx, false).await;
        let addr = server.local_addr();
        let port = addr.port();

        let evil = http_for(addr, Some(&format!("evil.example:{port}")), "GET", "/status").await;
        assert_eq!(evil.status, 421, "{}", evil.body);
        assert!(evil.body.contains("\"evil.example:"), "{}", evil.body);
        assert!(
            evil.body.contains(&addr.to_string()),
            "names what it accepts: {}",
            evil.body
        );
        assert!(evil.body.contains("telemetry.hosts"), "{}", evil.body);
        // Every path is guarded, /metrics and unknown ones included.
        for path in ["/metrics", "/peers", "/chain", "/nope"] {
            let response = http_for(addr, Some(&format!("evil.example:{port}")), "GET", path).await;
            assert_eq!(response.status, 421, "{path}: {}", response.body);
        }
        let missing = http_for(addr, None, "GET", "/status").await;
        assert_eq!(missing.status, 421, "{}", missing.body);
        assert!(missing.body.contains("no readable Host"), "{}", missing.body);
        let other_port = http_for(
            addr,
            Some(&format!("127.0.0.1:{}", port.wrapping_add(1))),
            "GET",
            "/status",
        )
        .await;
        assert_eq!(other_port.status, 421, "{}", other_port.body);

        for host in [
            addr.to_string(),
            format!("localhost:{port}"),
            format!("LocalHost.:{port}"),
        ] {
            let ok = http_for(addr, Some(&host), "GET", "/status").await;
            assert_eq!(ok.status, 200, "{host}: {}", ok.body);
            assert_eq!(serde_json::from_str::<StatusView>(&ok.body).unwrap(), sample_status());
        }
        let metrics = http_for(addr, Some(&format!("localhost:{port}")), "GET", "/metrics").await;
        assert_eq!(metrics.status, 200, "{}", metrics.body);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_name_in_telemetry_hosts_is_accepted_on_any_port() {
        let (tx, rx) = mpsc::channel(8);
        let _responder = responder(rx);
        let server = TelemetryServer::start(
            "127.0.0.1:0".parse().unwrap(),
            registry_with_counter(),
            tx,
            false,
            &["Metrics.Example".to_owned()],
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        for host in ["metrics.example:443", "metrics.example", "METRICS.example."] {
            let ok = http_for(addr, Some(host), "GET", "/status").await;
            assert_eq!(ok.status, 200, "{host}: {}", ok.body);
        }
        let other = http_for(addr, Some("evil.example"), "GET", "/status").await;
        assert_eq!(other.status, 421, "{}", other.body);
        assert!(other.body.contains("metrics.example"), "{}", other.body);
        server.shutdown().await;
    }

    #[test]
    fn host_policy_by_bound_address() {
        let names: &[String] = &[];
        let loopback = HostPolicy::new("127.0.0.1:9100".parse().unwrap(), names);
        assert!(loopback.allows("127.0.0.1:9100"));
        assert!(loopback.allows("localhost:9100"));
        for refused in [
            "127.0.0.2:9100",
            "10.0.0.1:9100",
            "localhost:9101",
            "localhost",
            "127.0.0.1",
            "rebind.evil.example:9100",
            "127.0.0.1.nip.io:9100",
            "user@127.0.0.1:9100",
            "",
            ":9100",
            "127.0.0.1:9100/x",
        ] {
            assert!(!loopback.allows(refused), "{refused:?}");
        }

        let public = HostPolicy::new("192.0.2.7:9100".parse().unwrap(), names);
        assert!(public.allows("192.0.2.7:9100"));
        assert!(!public.allows("localhost:9100"), "not bound to loopback");
        assert!(!public.allows("192.0.2.8:9100"));

        let any = HostPolicy::new("0.0.0.0:9100".parse().unwrap(), names);
        assert!(any.allows("192.0.2.7:9100"));
        assert!(any.allows("[2001:db8::1]:9100"));
        assert!(any.allows("localhost:9100"));
        assert!(!any.allows("node.example:9100"), "names need telemetry.hosts");
        assert!(!any.allows("192.0.2.7:9101"));

        let v6 = HostPolicy::new("[::1]:80".parse().unwrap(), names);
        assert!(v6.allows("[::1]:80"));
        assert!(v6.allows("[::1]"), "no port is port 80");
        assert!(v6.allows("localhost"));
        assert!(!v6.allows("127.0.0.1:80"));

        let named = HostPolicy::new("0.0.0.0:9100".parse().unwrap(), &["node.example.".to_owned()]);
        assert!(named.allows("node.example:9100"));
        assert!(named.allows("Node.Example:8443"));
        assert!(!named.allows("evil.node.example:9100"));
    }
}
