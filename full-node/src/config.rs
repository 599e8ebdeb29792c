//! The node's configuration: one TOML file, every option with a default.
//!
//! [`NodeConfig`] is the file's shape (strings as written, so that errors can
//! quote them); [`NodeConfig::validate`] turns it into a [`ValidConfig`] with
//! typed values, or a [`ConfigError`] naming the key and what was expected.
//! [`default_config_toml`] renders the defaults as a commented document
//! (`tiernet-node print-config`).
//!
//! Decisions:
//! - Relative paths (`data_dir`) are relative to the working directory of the
//!   process, not to the config file.
//! - An empty `listen.tcp` is allowed: the node then only dials out.
//! - Bootstrap addresses must name the peer (`/p2p/<PeerId>`), so that the
//!   Noise handshake authenticates the node we meant to reach.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::Deserialize;
use tiernet_core::wire::NetworkId;

/// Default for `network_id`.
pub const DEFAULT_NETWORK_ID: &str = "devnet";
/// Default for `data_dir`.
pub const DEFAULT_DATA_DIR: &str = ".tiernet/node";
/// Default for `listen.tcp`.
pub const DEFAULT_TCP_LISTEN: &str = "/ip4/0.0.0.0/tcp/7700";
/// Default for `listen.ws`.
pub const DEFAULT_WS_LISTEN: &str = "/ip4/0.0.0.0/tcp/7701/ws";
/// Default for `listen.webrtc`.
pub const DEFAULT_WEBRTC_LISTEN: &str = "/ip4/0.0.0.0/udp/7702/webrtc-direct";
/// Default for `telemetry.listen`.
/// (7703: next to the default 7700–7702 listeners; 9100 is node_exporter's port.)
pub const DEFAULT_TELEMETRY_LISTEN: &str = "127.0.0.1:7703";
/// Default for `limits.max_peers`.
pub const DEFAULT_MAX_PEERS: usize = 1024;
/// Default for `limits.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 128;
/// Default for `limits.max_connections_per_peer`.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Default for `limits.idle_connection_timeout_secs`.
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT_SECS: u64 = 60;
/// Default for `snapshots.interval_blocks`.
pub const DEFAULT_SNAPSHOT_INTERVAL_BLOCKS: u64 = crate::snapshots::DEFAULT_INTERVAL_BLOCKS;
/// Default for `snapshots.kept`.
pub const DEFAULT_SNAPSHOTS_KEPT: usize = crate::snapshots::DEFAULT_KEPT;
/// Default for `snapshots.chunk_entries`.
pub const DEFAULT_SNAPSHOT_CHUNK_ENTRIES: usize = crate::snapshots::DEFAULT_CHUNK_ENTRIES;
/// Default for `log`.
pub const DEFAULT_LOG: &str = "info";
/// Default for `heartbeat.interval_ms`.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 10_000;
/// Default for `heartbeat.offline_after`.
pub const DEFAULT_OFFLINE_AFTER: u32 = 3;

/// The configuration file as written. Every field has a default; unknown
/// keys are an error (a typo must not silently fall back to a default).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The network this node belongs to; part of every topic name and of the
    /// handshake. 1 to 32 characters of `[a-z0-9-]`, not starting or ending
    /// with `-`. Default `"devnet"`.
    pub network_id: String,
    /// Directory for everything the node persists (node key, later the
    /// store). Created if missing. Relative paths are relative to the working
    /// directory. Default `".tiernet/node"`.
    pub data_dir: PathBuf,
    /// ZSI identity key file (see `tiernet-node init`). Empty: use
    /// `<data_dir>/zsi_key` if it exists, else the node has no ZSI and is TL0
    /// to its peers. A file named here must exist. Default `""`.
    pub identity_file: String,
    /// Genesis file (see `tiernet-node genesis`): the identity registry and
    /// chain parameters. Empty: use `<data_dir>/genesis.json` if it exists,
    /// else the registry is empty and every peer is TL0. A file named here
    /// must exist. Default `""`.
    pub genesis_file: String,
    /// Listen addresses, per transport.
    pub listen: ListenConfig,
    /// TLS certificate for `listen.tls_ws`.
    pub tls: TlsConfig,
    /// The HTTP endpoint for `/metrics` and `/peers`.
    pub telemetry: TelemetryConfig,
    /// Local reputation: decay and bans.
    pub reputation: ReputationConfig,
    /// Operator allow and block lists (reloaded on SIGHUP).
    pub peers: PeersConfig,
    /// Test-only switches; never enable them on a real network. Accepted
    /// only by a binary built with the cargo feature `testing` (tests and
    /// the devnet's forger); a release build refuses a config that has a
    /// `[testing]` section at all. Default: absent.
    pub testing: Option<TestingConfig>,
    /// Peers to dial on start, as multiaddrs ending in `/p2p/<PeerId>`.
    /// Default empty.
    pub bootstrap: Vec<String>,
    /// Connection limits.
    pub limits: LimitsConfig,
    /// State snapshots: how often, how many kept, chunk size.
    pub snapshots: SnapshotsConfig,
    /// Heartbeats on `meta` and the liveness table.
    pub heartbeat: HeartbeatConfig,
    /// The peer manager: target and maximum peers, per-IP and pending
    /// limits, the TL0 quota, reserved peers, redial and IP bans.
    pub connections: crate::peer_manager::ConnectionsConfig,
    /// Log filter for stderr, a `tracing` `EnvFilter` directive such as
    /// `"info"` or `"info,libp2p_swarm=debug"`; the `RUST_LOG` environment
    /// variable, when set, takes its place. Default `"info"`.
    pub log: String,
    /// Log line format on stderr: `"text"` or `"json"` (one object per
    /// line). Default `"text"`.
    pub log_format: crate::logging::LogFormat,
}

/// `[listen]`: the addresses the node accepts connections on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// TCP listen multiaddrs, `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>`
    /// (port 0 picks a free port). Default `["/ip4/0.0.0.0/tcp/7700"]`.
    pub tcp: Vec<String>,
    /// WebSocket listen multiaddrs for browsers, `/ip4/<ip>/tcp/<port>/ws`.
    /// Default `["/ip4/0.0.0.0/tcp/7701/ws"]`.
    pub ws: Vec<String>,
    /// Secure WebSocket listen multiaddrs, `/ip4/<ip>/tcp/<port>/tls/ws`; need
    /// `tls.cert_file` and `tls.key_file`. Default `[]`.
    pub tls_ws: Vec<String>,
    /// WebRTC-direct listen multiaddrs for browsers,
    /// `/ip4/<ip>/udp/<port>/webrtc-direct`. The certificate is kept in the
    /// store so the `/certhash` stays the same across restarts.
    /// Default `["/ip4/0.0.0.0/udp/7702/webrtc-direct"]`.
    pub webrtc: Vec<String>,
    /// Addresses to announce to peers besides the listen addresses (identify,
    /// and so the peerstores and light clients that learn from them): the
    /// public address behind NAT or a port forward, e.g.
    /// `/ip4/203.0.113.7/tcp/7700`, `/dns4/node.example.org/tcp/443/wss`, or a
    /// WebRTC-direct address with its `/certhash`. Default `[]`.
    pub announce: Vec<String>,
}

/// `[tls]`: certificate for secure WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Default `""`.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Default `""`.
    pub key_file: String,
}

/// `[reputation]`: local peer reputation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReputationConfig {
    /// Score at or below which a peer is banned (negative). Default -100.
    pub ban_threshold: i64,
    /// Length of a first ban in seconds; each repeat offence doubles it. Default 60.
    pub base_ban_secs: u64,
    /// Longest ban in seconds. Default 86400.
    pub max_ban_secs: u64,
    /// Half-life of the score's decay towards zero, in seconds. Default 600.
    pub half_life_secs: u64,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        let p = tiernet_core::reputation::ReputationParams::default();
        Self {
            ban_threshold: p.ban_threshold as i64,
            base_ban_secs: p.base_ban_ms / 1000,
            max_ban_secs: p.max_ban_ms / 1000,
            half_life_secs: p.half_life_ms / 1000,
        }
    }
}

/// `[peers]`: operator decisions about particular peers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeersConfig {
    /// PeerIds that are never banned for their local reputation. Default `[]`.
    pub allow: Vec<String>,
    /// PeerIds that are always refused and blacklisted. Default `[]`.
    pub block: Vec<String>,
}

/// `[testing]`: switches for tests and demos (builds with the cargo feature
/// `testing` only; see [`NodeConfig::testing`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Serve `POST /testing/publish`, `POST /testing/dial` and `GET
    /// /testing/received` on the telemetry endpoint, so tests can make the
    /// node publish on any topic (bypassing its own admission check) and see
    /// what it accepted. Default false.
    pub api: bool,
    /// Answer `/tiernet/sync/1` with forged data: the dishonest peer of the
    /// light-client tests. A comma-separated list of `headers` (corrupted
    /// commit signatures in headers, blocks and chain proofs), `state`
    /// (wrong state values) and `chunks` (altered snapshot chunks), or
    /// `all`; empty (the default) forges nothing.
    pub forge_sync: String,
    /// Added to the node's clock, in ms (may be negative): a node whose
    /// clock is off, for the tests of who pays for time-dependent refusals.
    /// Default 0.
    pub clock_offset_ms: i64,
    /// Never answer `/tiernet/sync/1` requests (hold them open): the silent
    /// peer of the catch-up tests. Default false.
    pub silent_sync: bool,
}

/// `[telemetry]`: the HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `ip:port` to serve `/metrics` (Prometheus) and `/peers` (JSON) on;
    /// empty disables it. Port 0 picks a free port (printed as
    /// `telemetry: http://…`). Default `"127.0.0.1:7703"` (9100 is node_exporter's).
    pub listen: String,
    /// Host names (no port) accepted in a request's `Host` header besides
    /// the bound address (and `localhost` on loopback): the names scrapers
    /// or a reverse proxy use. Requests for any other host are refused (the
    /// DNS-rebinding guard, see [`crate::telemetry::HostPolicy`]). Default `[]`.
    pub hosts: Vec<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_TELEMETRY_LISTEN.to_owned(),
            hosts: Vec::new(),
        }
    }
}

/// `[limits]`: bounds on connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most established connections of non-reserved peers (incoming and
    /// outgoing); reserved peers (see `[connections]`) are admitted beyond
    /// it. At least 1. Default 128.
    pub max_connections: u32,
    /// Most established connections to one peer. At least 1. Default 2.
    pub max_connections_per_peer: u32,
    /// Seconds a connection without any open stream is kept before it is
    /// closed. Default 60.
    pub idle_connection_timeout_secs: u64,
    /// Most peers remembered in the peerstore; beyond it the least valuable
    /// unbanned peer is forgotten. At least 1. Default 1024.
    pub max_peers: usize,
}

/// `[heartbeat]`: this node's heartbeats on `meta` and how it judges
/// others' silence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Milliseconds between this node's heartbeats, 100 to 600000. Uptime
    /// credit counts at most one heartbeat per genesis
    /// `uptime.heartbeat_interval_ms`, so a shorter interval earns nothing
    /// more. Default 10000.
    pub interval_ms: u64,
    /// A node not heard for this many intervals is reported offline (log
    /// line, `tiernet_liveness_nodes{state="offline"}`, `GET /alerts`).
    /// At least 1. Default 3.
    pub offline_after: u32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            offline_after: DEFAULT_OFFLINE_AFTER,
        }
    }
}

/// `[snapshots]`: state snapshots that syncing peers and light clients fetch
/// in verifiable chunks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// Take a snapshot at every height that is a multiple of this; 0 disables
    /// snapshots. Each one reads the whole state once. Default 100.
    pub interval_blocks: u64,
    /// How many of the most recent snapshots are kept and served. At least 1.
    /// Default 4.
    pub kept: usize,
    /// State entries per snapshot chunk, 1 to `MAX_CHUNK_ENTRIES` (4096).
    /// Default 1000.
    pub chunk_entries: usize,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        Self {
            interval_blocks: DEFAULT_SNAPSHOT_INTERVAL_BLOCKS,
            kept: DEFAULT_SNAPSHOTS_KEPT,
            chunk_entries: DEFAULT_SNAPSHOT_CHUNK_ENTRIES,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            network_id: DEFAULT_NETWORK_ID.to_owned(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            identity_file: String::new(),
            genesis_file: String::new(),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            telemetry: TelemetryConfig::default(),
            reputation: ReputationConfig::default(),
            peers: PeersConfig::default(),
            testing: None,
            bootstrap: Vec::new(),
            limits: LimitsConfig::default(),
            snapshots: SnapshotsConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            connections: crate::peer_manager::ConnectionsConfig::default(),
            log: DEFAULT_LOG.to_owned(),
            log_format: crate::logging::LogFormat::Text,
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            tcp: vec![DEFAULT_TCP_LISTEN.to_owned()],
            ws: vec![DEFAULT_WS_LISTEN.to_owned()],
            tls_ws: Vec::new(),
            webrtc: vec![DEFAULT_WEBRTC_LISTEN.to_owned()],
            announce: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            idle_connection_timeout_secs: DEFAULT_IDLE_CONNECTION_TIMEOUT_SECS,
            max_peers: DEFAULT_MAX_PEERS,
        }
    }
}

/// A configuration that passed validation, with typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidConfig {
    /// `network_id`.
    pub network_id: NetworkId,
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// `identity_file`, if set.
    pub identity_file: Option<PathBuf>,
    /// `genesis_file`, if set.
    pub genesis_file: Option<PathBuf>,
    /// `listen.tcp`.
    pub listen_tcp: Vec<Multiaddr>,
    /// `listen.ws`.
    pub listen_ws: Vec<Multiaddr>,
    /// `listen.tls_ws`.
    pub listen_tls_ws: Vec<Multiaddr>,
    /// `listen.webrtc`.
    pub listen_webrtc: Vec<Multiaddr>,
    /// `tls.cert_file` and `tls.key_file`, when both are set.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `telemetry.listen`, unless disabled.
    pub telemetry: Option<std::net::SocketAddr>,
    /// `telemetry.hosts`, lower case.
    pub telemetry_hosts: Vec<String>,
    /// `limits.max_peers`.
    pub max_peers: usize,
    /// `[reputation]`.
    pub reputation: tiernet_core::reputation::ReputationParams,
    /// `peers.allow`.
    pub allow: std::collections::BTreeSet<PeerId>,
    /// `peers.block`.
    pub block: std::collections::BTreeSet<PeerId>,
    /// `testing.api` (always false without the cargo feature `testing`).
    pub testing_api: bool,
    /// `testing.forge_sync` (always nothing without the cargo feature `testing`).
    pub testing_forge_sync: crate::sync_server::Forgeries,
    /// `testing.clock_offset_ms` (0 without the cargo feature `testing`).
    pub testing_clock_offset_ms: i64,
    /// `testing.silent_sync` (false without the cargo feature `testing`).
    pub testing_silent_sync: bool,
    /// `bootstrap`, each with the peer it names.
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// `limits.max_connections`.
    pub max_connections: u32,
    /// `limits.max_connections_per_peer`.
    pub max_connections_per_peer: u32,
    /// `limits.idle_connection_timeout_secs`.
    pub idle_connection_timeout: Duration,
    /// `[snapshots]`.
    pub snapshots: crate::snapshots::SnapshotPolicy,
    /// `heartbeat.interval_ms`.
    pub heartbeat_interval: Duration,
    /// `heartbeat.offline_after`.
    pub offline_after: u32,
    /// `listen.announce`.
    pub announce: Vec<Multiaddr>,
    /// `log_format`.
    pub log_format: crate::logging::LogFormat,
    /// `[connections]` (with `limits.max_connections`).
    pub connections: crate::peer_manager::PeerManagerConfig,
    /// `log`.
    pub log: String,
}

impl ValidConfig {
    /// Where the node key lives: `<data_dir>/node_key`.
    pub fn node_key_path(&self) -> PathBuf {
        self.data_dir.join("node_key")
    }

    /// The ZSI key file to load, and whether it must exist (it must when
    /// configured; the default `<data_dir>/zsi_key` is optional).
    pub fn identity_path(&self) -> (PathBuf, bool) {
        match &self.identity_file {
            Some(path) => (path.clone(), true),
            None => (self.data_dir.join("zsi_key"), false),
        }
    }

    /// The genesis file to load, and whether it must exist.
    pub fn genesis_path(&self) -> (PathBuf, bool) {
        match &self.genesis_file {
            Some(path) => (path.clone(), true),
            None => (self.data_dir.join("genesis.json"), false),
        }
    }

    /// Where the store lives: `<data_dir>/node.redb`.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("node.redb")
    }
}

/// A configuration that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type, or a key is
    /// unknown.
    #[error("config file {path}{detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what, as the TOML parser reports it.
        detail: Box<TomlErrorDetail>,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid configuration{}: {key}: {problem}", describe_origin(.path.as_deref()))]
    Invalid {
        /// The config file the value came from; `None` when it may come from
        /// the command line.
        path: Option<PathBuf>,
        /// The key, e.g. `listen.tcp[1]`.
        key: String,
        /// The value and what was expected instead.
        problem: String,
    },
}

fn describe_origin(path: Option<&Path>) -> String {
    path.map(|p| format!(" in {}", p.display())).unwrap_or_default()
}

/// Where a TOML error is and what it is, as the TOML parser reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlErrorDetail {
    /// The dotted key the parser names, when it names one.
    pub key: Option<String>,
    /// 1-based line of the error, when known.
    pub line: Option<usize>,
    /// 1-based column of the error, when known.
    pub column: Option<usize>,
    /// The text of that line, trimmed.
    pub line_text: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Renders as `, key `k`, line L, column C (`text`): message`, leaving out
/// what is unknown.
impl std::fmt::Display for TomlErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
        }
        if let Some(text) = self.line_text.as_deref().filter(|t| !t.is_empty()) {
            write!(f, " (`{text}`)")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl NodeConfig {
    /// Reads, parses and validates the config file at `path`. Errors name the
    /// file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::from_toml_str(&text, path)?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, problem, .. } => ConfigError::Invalid {
                path: Some(path.to_owned()),
                key,
                problem,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses TOML text (not yet validated); `path` is only used in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| parse_error(text, path, &e))
    }

    /// Checks every value and converts it to its typed form. Errors name the
    /// key and what was expected.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let invalid = |key: String, problem: String| ConfigError::Invalid {
            path: None,
            key,
            problem,
        };
        let network_id = NetworkId::new(&self.network_id).map_err(|e| {
            invalid(
                "network_id".into(),
                format!(
                    "{:?} is not a network id ({}); expected 1 to 32 characters of a-z, 0-9 and '-'",
                    self.network_id, e.reason
                ),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir".into(), "is empty; expected a directory path".into()));
        }
        let listen = |name: &str, texts: &[String], kind: ListenKind| {
            texts
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    parse_listen_addr(kind, text).map_err(|problem| invalid(format!("listen.{name}[{i}]"), problem))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let listen_tcp = listen("tcp", &self.listen.tcp, ListenKind::Tcp)?;
        let listen_ws = listen("ws", &self.listen.ws, ListenKind::Ws)?;
        let listen_tls_ws = listen("tls_ws", &self.listen.tls_ws, ListenKind::TlsWs)?;
        let listen_webrtc = listen("webrtc", &self.listen.webrtc, ListenKind::WebRtc)?;
        let announce = self
            .listen
            .announce
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<Multiaddr>().map_err(|e| {
                    invalid(
                        format!("listen.announce[{i}]"),
                        format!("{text:?} is not a multiaddr: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match (self.tls.cert_file.is_empty(), self.tls.key_file.is_empty()) {
            (true, true) => None,
            (false, false) => Some((PathBuf::from(&self.tls.cert_file), PathBuf::from(&self.tls.key_file))),
            _ => {
                return Err(invalid(
                    "tls".into(),
                    "only one of cert_file and key_file is set; expected both or neither".into(),
                ));
            }
        };
        if !listen_tls_ws.is_empty() && tls.is_none() {
            return Err(invalid(
                "listen.tls_ws".into(),
                "is set but tls.cert_file and tls.key_file are not; expected a certificate for secure WebSocket".into(),
            ));
        }
        let telemetry = if self.telemetry.listen.is_empty() {
            None
        } else {
            Some(self.telemetry.listen.parse::<std::net::SocketAddr>().map_err(|e| {
                invalid(
                    "telemetry.listen".into(),
                    format!(
                        "{:?} is not an ip:port ({e}); expected e.g. \"127.0.0.1:7703\", or \"\" to disable",
                        self.telemetry.listen
                    ),
                )
            })?)
        };
        let mut telemetry_hosts = Vec::with_capacity(self.telemetry.hosts.len());
        for (i, name) in self.telemetry.hosts.iter().enumerate() {
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !name.starts_with(['.', '-']);
            if !valid {
                return Err(invalid(
                    format!("telemetry.hosts[{i}]"),
                    format!(
                        "{name:?} is not a host name; expected a DNS name without port or scheme, e.g. \"node1.example.org\""
                    ),
                ));
            }
            telemetry_hosts.push(name.trim_end_matches('.').to_ascii_lowercase());
        }
        if self.limits.max_peers == 0 {
            return Err(invalid("limits.max_peers".into(), "is 0; expected at least 1".into()));
        }
        let optional_path = |text: &str| (!text.is_empty()).then(|| PathBuf::from(text));
        let peer_list = |name: &str, list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(i, text)| {
                    text.parse::<PeerId>()
                        .map_err(|e| invalid(format!("peers.{name}[{i}]"), format!("{text:?} is not a PeerId ({e})")))
                })
                .collect::<Result<std::collections::BTreeSet<_>, _>>()
        };
        let allow = peer_list("allow", &self.peers.allow)?;
        let block = peer_list("block", &self.peers.block)?;
        let r = &self.reputation;
        if r.ban_threshold >= 0 {
            return Err(invalid(
                "reputation.ban_threshold".into(),
                format!("is {}; expected a negative score", r.ban_threshold),
            ));
        }
        if r.base_ban_secs == 0 || r.max_ban_secs < r.base_ban_secs || r.half_life_secs == 0 {
            return Err(invalid(
                "reputation".into(),
                "expected base_ban_secs ≥ 1, max_ban_secs ≥ base_ban_secs and half_life_secs ≥ 1".into(),
            ));
        }
        let reputation = tiernet_core::reputation::ReputationParams {
            ban_threshold: r.ban_threshold as f64,
            base_ban_ms: r.base_ban_secs.saturating_mul(1000),
            max_ban_ms: r.max_ban_secs.saturating_mul(1000),
            half_life_ms: r.half_life_secs.saturating_mul(1000),
            ..Default::default()
        };
        let mut bootstrap = Vec::with_capacity(self.bootstrap.len());
        for (i, text) in self.bootstrap.iter().enumerate() {
            let key = format!("bootstrap[{i}]");
            let addr: Multiaddr = text
                .parse()
                .map_err(|e| invalid(key.clone(), format!("{text:?} is not a multiaddr ({e})")))?;
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(invalid(
                    key,
                    format!("{text:?} does not end in /p2p/<PeerId>; expected the address and the peer it belongs to"),
                ));
            };
            bootstrap.push((peer, addr));
        }
        if self.limits.max_connections == 0 {
            return Err(invalid(
                "limits.max_connections".into(),
                "is 0; expected at least 1".into(),
            ));
        }
        if self.limits.max_connections_per_peer == 0 {
            return Err(invalid(
                "limits.max_connections_per_peer".into(),
                "is 0; expected at least 1".into(),
            ));
        }
        let (testing_api, testing_forge_sync) = self
            .testing_switches()
            .map_err(|(key, problem)| invalid(key.into(), problem))?;
        let snapshots = crate::snapshots::SnapshotPolicy {
            interval_blocks: self.snapshots.interval_blocks,
            kept: self.snapshots.kept,
            chunk_entries: self.snapshots.chunk_entries,
        };
        snapshots
            .validate()
            .map_err(|e| invalid(format!("snapshots.{}", e.key), e.problem))?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| {
            invalid(
                "log".into(),
                format!(
                    "{:?} is not a tracing filter directive ({e}); expected e.g. \"info\" or \"info,libp2p_swarm=debug\"",
                    self.log
                ),
            )
        })?;
        if !(100..=600_000).contains(&self.heartbeat.interval_ms) {
            return Err(invalid(
                "heartbeat.interval_ms".into(),
                format!("{} is out of range; expected 100 to 600000", self.heartbeat.interval_ms),
            ));
        }
        if self.heartbeat.offline_after == 0 {
            return Err(invalid(
                "heartbeat.offline_after".into(),
                "is 0; expected at least 1".into(),
            ));
        }
        let connections = self
            .connections
            .validate(self.limits.max_connections as usize)
            .map_err(|e| invalid(format!("connections.{}", e.key), e.problem))?;
        Ok(ValidConfig {
            connections,
            network_id,
            data_dir: self.data_dir.clone(),
            identity_file: optional_path(&self.identity_file),
            genesis_file: optional_path(&self.genesis_file),
            listen_tcp,
            listen_ws,
            listen_tls_ws,
            listen_webrtc,
            announce,
            tls,
            telemetry,
            max_peers: self.limits.max_peers,
            reputation,
            allow,
            block,
            telemetry_hosts,
            testing_api,
            testing_forge_sync,
            testing_clock_offset_ms: self.testing.as_ref().map_or(0, |t| t.clock_offset_ms),
            testing_silent_sync: self.testing.as_ref().is_some_and(|t| t.silent_sync),
            bootstrap,
            max_connections: self.limits.max_connections,
            max_connections_per_peer: self.limits.max_connections_per_peer,
            idle_connection_timeout: Duration::from_secs(self.limits.idle_connection_timeout_secs),
            snapshots,
            heartbeat_interval: Duration::from_millis(self.heartbeat.interval_ms),
            offline_after: self.heartbeat.offline_after,
            log: self.log.clone(),
            log_format: self.log_format,
        })
    }
}

impl NodeConfig {
    /// `testing.api` and `testing.forge_sync`, checked; `Err((key, problem))`.
    #[cfg(feature = "testing")]
    fn testing_switches(&self) -> Result<(bool, crate::sync_server::Forgeries), (&'static str, String)> {
        let Some(testing) = &self.testing else {
            return Ok((false, crate::sync_server::Forgeries::default()));
        };
        let forge = crate::sync_server::Forgeries::parse(&testing.forge_sync).map_err(|p| ("testing.forge_sync", p))?;
        Ok((testing.api, forge))
    }

    /// Without the cargo feature `testing` there are no test switches: a
    /// `[testing]` section is refused, whatever it sets.
    #[cfg(not(feature = "testing"))]
    fn testing_switches(&self) -> Result<(bool, crate::sync_server::Forgeries), (&'static str, String)> {
        match &self.testing {
            None => Ok((false, crate::sync_server::Forgeries::default())),
            Some(_) => Err(("[testing]", TESTING_FEATURE_MISSING.to_owned())),
        }
    }
}

/// Why a build without the cargo feature `testing` refuses `[testing]`.
pub const TESTING_FEATURE_MISSING: &str = "is only accepted by a tiernet-node built with the cargo feature `testing` \
     (tests and the devnet's forger: cargo build -p tiernet-node --features testing); this build has no test \
     switches; remove the [testing] section";

/// The transports a listen address can be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    /// `/ip4|ip6/<ip>/tcp/<port>`.
    Tcp,
    /// `/ip4|ip6/<ip>/tcp/<port>/ws`.
    Ws,
    /// `/ip4|ip6/<ip>/tcp/<port>/tls/ws`.
    TlsWs,
    /// `/ip4|ip6/<ip>/udp/<port>/webrtc-direct`.
    WebRtc,
}

impl ListenKind {
    fn shape(self) -> &'static str {
        match self {
            ListenKind::Tcp => "/ip4/<ip>/tcp/<port>",
            ListenKind::Ws => "/ip4/<ip>/tcp/<port>/ws",
            ListenKind::TlsWs => "/ip4/<ip>/tcp/<port>/tls/ws",
            ListenKind::WebRtc => "/ip4/<ip>/udp/<port>/webrtc-direct",
        }
    }
}

/// Parses a listen address of one transport. The error quotes the input and
/// says what was expected.
pub fn parse_listen_addr(kind: ListenKind, text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = text.parse().map_err(|e| format!("{text:?} is not a multiaddr ({e})"))?;
    let parts: Vec<Protocol<'_>> = addr.iter().collect();
    let ip = matches!(parts.first(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)));
    let ok = ip
        && matches!(
            (kind, &parts[1..]),
            (ListenKind::Tcp, [Protocol::Tcp(_)])
                | (ListenKind::Ws, [Protocol::Tcp(_), Protocol::Ws(_)])
                | (ListenKind::TlsWs, [Protocol::Tcp(_), Protocol::Tls, Protocol::Ws(_)])
                | (ListenKind::WebRtc, [Protocol::Udp(_), Protocol::WebRTCDirect])
        );
    if !ok {
        return Err(format!(
            "{text:?} is not a {kind:?} listen address; expected {} (or /ip6/…)",
            kind.shape()
        ));
    }
    Ok(addr)
}

/// Parses a TCP listen address (`--listen`).
pub fn parse_tcp_listen_addr(text: &str) -> Result<Multiaddr, String> {
    parse_listen_addr(ListenKind::Tcp, text)
}

/// Turns a toml error into [`ConfigError::Parse`] with the key, line and
/// column it points at.
fn parse_error(text: &str, path: &Path, error: &toml::de::Error) -> ConfigError {
    // The key path is private to the error; its Display shows it as
    // "in `a.b`" when no input is attached.
    let mut bare = error.clone();
    bare.set_input(None);
    let key = bare
        .to_string()
        .lines()
        .filter_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .next_back()
        .map(str::to_owned);
    let (line, column, line_text) = match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            let line_text = text[line_start..].lines().next().unwrap_or("").trim().to_owned();
            (Some(line), Some(column), Some(line_text))
        }
        None => (None, None, None),
    };
    ConfigError::Parse {
        path: path.to_owned(),
        detail: Box::new(TomlErrorDetail {
            key,
            line,
            column,
            line_text,
            message: error.message().trim().to_owned(),
        }),
    }
}

/// The default configuration as a commented TOML document; it parses back to
/// [`NodeConfig::default`].
pub fn default_config_toml() -> String {
    use tiernet_core::wire::limits::{MAX_CHUNK_ENTRIES, MAX_SNAPSHOT_CHUNKS};
    let mut document = format!(
        r#"# tiernet-node configuration.
# Every key is optional: a missing key takes the default shown here.
# Unknown keys are an error. Command-line flags override this file.

# The network this node belongs to. Part of every gossip topic name and of the
# handshake; peers on another network are not served.
# 1 to 32 characters of a-z, 0-9 and '-', not starting or ending with '-'.
network_id = "{DEFAULT_NETWORK_ID}"

# Directory for everything the node keeps across restarts; the node key is
# <data_dir>/node_key (created on first start, mode 0600, never replaced).
# Relative paths are relative to the working directory.
data_dir = "{DEFAULT_DATA_DIR}"

# ZSI identity key file (tiernet-node init writes <data_dir>/zsi_key). Empty:
# use <data_dir>/zsi_key if it exists, else this node has no ZSI (TL0).
identity_file = ""

# Genesis file (tiernet-node genesis writes one): the identity registry that
# gives peers their tiers. Empty: use <data_dir>/genesis.json if it exists,
# else every peer is TL0.
genesis_file = ""

# Peers to dial on start: multiaddrs ending in /p2p/<PeerId>, e.g.
# bootstrap = ["/ip4/192.0.2.10/tcp/7700/p2p/12D3KooW..."]
bootstrap = []

# Log filter for stderr (a tracing EnvFilter directive), e.g. "debug" or
# "info,libp2p_swarm=debug". The RUST_LOG environment variable, when set,
# takes its place.
log = "{DEFAULT_LOG}"

# Log line format on stderr: "text", or "json" (one object per line with
# timestamp_ms, level, target, spans and fields) for log shippers.
log_format = "text"

[listen]
# TCP listen addresses: /ip4/<ip>/tcp/<port> or /ip6/<ip>/tcp/<port>.
# Port 0 picks a free port; an empty list means the node only dials out.
tcp = ["{DEFAULT_TCP_LISTEN}"]
# WebSocket for browsers: /ip4/<ip>/tcp/<port>/ws.
ws = ["{DEFAULT_WS_LISTEN}"]
# Secure WebSocket: /ip4/<ip>/tcp/<port>/tls/ws (needs [tls]).
tls_ws = []
# WebRTC-direct for browsers: /ip4/<ip>/udp/<port>/webrtc-direct. The
# certificate is kept in the store, so the /certhash survives restarts.
webrtc = ["{DEFAULT_WEBRTC_LISTEN}"]
# Addresses announced to peers besides the listen addresses: the public
# address behind NAT or a port forward (needed for browser peers), e.g.
# ["/ip4/203.0.113.7/tcp/7700", "/dns4/node.example.org/tcp/443/wss"].
announce = []

[tls]
# PEM certificate chain and private key for listen.tls_ws.
cert_file = ""
key_file = ""

[telemetry]
# ip:port serving /metrics (Prometheus) and /peers (JSON); "" disables it.
listen = "{DEFAULT_TELEMETRY_LISTEN}"
# Host names (no port) accepted in the Host header besides the bound address
# (and localhost when bound to loopback), e.g. ["node1.example.org"] for a
# scraper or reverse proxy that uses a DNS name. Other hosts get 421: a guard
# against DNS rebinding from web pages.
hosts = []

[reputation]
# Local peer reputation: invalid or unauthorised messages, replays, rate-limit
# breaches and failed handshakes cost points; the score decays towards zero.
# At ban_threshold the peer is banned for base_ban_secs, doubling with each
# repeat offence up to max_ban_secs.
ban_threshold = -100
base_ban_secs = 60
max_ban_secs = 86400
half_life_secs = 600

[peers]
# PeerIds never banned for reputation, and PeerIds always refused.
# Edit and send SIGHUP to apply without a restart.
allow = []
block = []

[limits]
# Most established connections, incoming and outgoing, of peers that are not
# reserved (validators and [connections] reserved peers are admitted beyond it;
# at least 1).
max_connections = {DEFAULT_MAX_CONNECTIONS}
# Most established connections to one peer (at least 1).
max_connections_per_peer = {DEFAULT_MAX_CONNECTIONS_PER_PEER}
# Seconds a connection with no open stream is kept before it is closed.
idle_connection_timeout_secs = {DEFAULT_IDLE_CONNECTION_TIMEOUT_SECS}
# Most peers remembered in the peerstore (the least valuable unbanned one is
# forgotten first).
max_peers = {DEFAULT_MAX_PEERS}

[snapshots]
# A snapshot of the state is taken at every height that is a multiple of
# interval_blocks (0 disables snapshots); each one reads the whole state once.
# Peers and light clients fetch it in chunks, each proven against the
# state root; TL2+ nodes announce the snapshots they keep.
interval_blocks = {DEFAULT_SNAPSHOT_INTERVAL_BLOCKS}
# How many of the most recent snapshots are kept and served (at least 1).
kept = {DEFAULT_SNAPSHOTS_KEPT}
# State entries per chunk, 1 to {MAX_CHUNK_ENTRIES}. Larger states need larger
# chunks: a snapshot has at most {MAX_SNAPSHOT_CHUNKS} chunks.
chunk_entries = {DEFAULT_SNAPSHOT_CHUNK_ENTRIES}

[heartbeat]
# Milliseconds between this node's signed heartbeats on meta (height, head,
# agent, peer count, measured round-trip times), 100 to 600000. Uptime credit
# counts at most one heartbeat per genesis uptime.heartbeat_interval_ms.
interval_ms = {DEFAULT_HEARTBEAT_INTERVAL_MS}
# A node not heard for this many intervals is reported offline (a log line,
# tiernet_liveness_nodes{{state="offline"}}, GET /alerts). At least 1.
offline_after = {DEFAULT_OFFLINE_AFTER}
"#
    );
    document.push_str(&crate::peer_manager::config::default_section());
    if cfg!(feature = "testing") {
        document.push_str(TESTING_SECTION);
    }
    document
}

/// `docs/config.md`: every option with its default and meaning, generated
/// from [`default_config_toml`] of a build without test switches (the
/// document operators get). A test fails when the committed file drifts;
/// `TIERNET_UPDATE_DOCS=1 cargo test -p tiernet-node config_doc` rewrites it.
pub fn config_markdown() -> String {
    let mut document = default_config_toml();
    if let Some(at) = document.find(TESTING_SECTION) {
        document.truncate(at);
    }
    format!(
        "# tiernet-node configuration\n\n\
         Generated from the config types (`tiernet_node::config::config_markdown`); a test \
         fails when this file drifts from the code. `tiernet-node print-config` prints the same \
         document. Every key is optional; flags (`tiernet-node --help`) and their environment \
         variables override the file. `run` reads `--config`, else `<data_dir>/config.toml` \
         when it exists.\n\n```toml\n{}```\n",
        document
    )
}

/// The `[testing]` section, commented out, in the default document of a
/// build with the cargo feature `testing` (a release build has none).
const TESTING_SECTION: &str = r#"
# [testing]: only in a tiernet-node built with the cargo feature `testing`
# (tests and the devnet's forger); a release build refuses this section.
# Never enable these on a real network.
# [testing]
# Test-only HTTP endpoints on the telemetry port (/testing/...).
# api = false
# Answer sync requests with forged data (the light-client tests' dishonest
# peer): "headers", "state", "chunks" (comma-separated) or "all"; "" forges nothing.
# forge_sync = ""
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::from_toml_str(text, Path::new("/etc/tiernet/node.toml"))
    }

    fn invalid(text: &str) -> String {
        let config = parse(text).unwrap();
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        err.to_string()
    }

    #[test]
    fn default_document_parses_back_to_the_defaults() {
        let config = parse(&default_config_toml()).unwrap();
        assert_eq!(config, NodeConfig::default());
        let valid = config.validate().unwrap();
        assert_eq!(valid.network_id.as_str(), "devnet");
        assert_eq!(
            valid.listen_tcp,
            vec!["/ip4/0.0.0.0/tcp/7700".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(valid.node_key_path(), Path::new(".tiernet/node/node_key"));
        assert_eq!(valid.idle_connection_timeout, Duration::from_secs(60));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), NodeConfig::default());
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config = parse("network_id = \"testnet-3\"\n[limits]\nmax_connections = 16\n").unwrap();
        assert_eq!(config.network_id, "testnet-3");
        assert_eq!(config.limits.max_connections, 16);
        assert_eq!(config.limits.max_connections_per_peer, 2);
        assert_eq!(config.listen, ListenConfig::default());
    }

    #[test]
    fn unknown_key_names_the_file_key_and_line() {
        let err = parse("network_id = \"devnet\"\n[limits]\nmax_conections = 3\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/etc/tiernet/node.toml"), "{message}");
        assert!(message.contains("max_conections"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_key_and_line() {
        let err = parse("[limits]\nmax_connections = \"many\"\n").unwrap_err();
        let ConfigError::Parse { detail, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(detail.key.as_deref(), Some("limits.max_connections"));
        assert_eq!(detail.line, Some(2));
        let message = err.to_string();
        assert!(message.contains("limits.max_connections"), "{message}");
        assert!(message.contains("/etc/tiernet/node.toml"), "{message}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse("network_id = \"devnet\"\nlog = \n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn bad_listen_address_names_the_index() {
        let message = invalid("[listen]\ntcp = [\"/ip4/127.0.0.1/tcp/0\", \"foo\"]\n");
        assert!(
            message.contains("listen.tcp[1]: \"foo\" is not a multiaddr"),
            "{message}"
        );
    }

    #[test]
    fn non_tcp_listen_address_is_rejected() {
        let message = invalid("[listen]\ntcp = [\"/ip4/127.0.0.1/udp/7700\"]\n");
        assert!(message.contains("listen.tcp[0]"), "{message}");
        assert!(message.contains("not a Tcp listen address"), "{message}");
        let message = invalid("[listen]\nws = [\"/ip4/127.0.0.1/tcp/7701\"]\n");
        assert!(
            message.contains("listen.ws[0]") && message.contains("/tcp/<port>/ws"),
            "{message}"
        );
        let message = invalid("[listen]\nwebrtc = [\"/ip4/127.0.0.1/udp/1/quic-v1\"]\n");
        assert!(message.contains("listen.webrtc[0]"), "{message}");
        let message = invalid("[listen]\ntls_ws = [\"/ip4/127.0.0.1/tcp/1/tls/ws\"]\n");
        assert!(message.contains("tls.cert_file"), "{message}");
        let message = invalid("[tls]\ncert_file = \"a.pem\"\n");
        assert!(message.contains("tls: only one"), "{message}");
        let message = invalid("[telemetry]\nlisten = \"localhost\"\n");
        assert!(message.contains("telemetry.listen"), "{message}");
    }

    #[test]
    fn bootstrap_needs_a_peer_id() {
        let message = invalid("bootstrap = [\"/ip4/127.0.0.1/tcp/7700\"]\n");
        assert!(message.contains("bootstrap[0]"), "{message}");
        assert!(message.contains("/p2p/<PeerId>"), "{message}");
        let peer = PeerId::random();
        let config = parse(&format!("bootstrap = [\"/ip4/127.0.0.1/tcp/7700/p2p/{peer}\"]\n")).unwrap();
        let valid = config.validate().unwrap();
        assert_eq!(valid.bootstrap[0].0, peer);
    }

    #[test]
    fn bad_network_id_is_rejected() {
        let message = invalid("network_id = \"Dev Net\"\n");
        assert!(message.contains("network_id"), "{message}");
        assert!(message.contains("Dev Net"), "{message}");
    }

    #[test]
    fn zero_limits_are_rejected() {
        let message = invalid("[limits]\nmax_connections = 0\n");
        assert!(message.contains("limits.max_connections: is 0"), "{message}");
        let message = invalid("[limits]\nmax_connections_per_peer = 0\n");
        assert!(message.contains("limits.max_connections_per_peer"), "{message}");
    }

    #[test]
    fn snapshot_defaults_and_bad_values() {
        let valid = NodeConfig::default().validate().unwrap();
        assert_eq!(
            valid.snapshots,
            crate::snapshots::SnapshotPolicy {
                interval_blocks: 100,
                kept: 4,
                chunk_entries: 1000,
            }
        );
        let config = parse("[snapshots]\ninterval_blocks = 0\nkept = 1\nchunk_entries = 4096\n").unwrap();
        let valid = config.validate().unwrap();
        assert_eq!(valid.snapshots.interval_blocks, 0, "0 disables snapshots");
        assert!(!valid.snapshots.is_due(100));
        assert_eq!((valid.snapshots.kept, valid.snapshots.chunk_entries), (1, 4096));

        let message = invalid("[snapshots]\nkept = 0\n");
        assert!(
            message.contains("snapshots.kept: is 0; expected at least 1"),
            "{message}"
        );
        let message = invalid("[snapshots]\nchunk_entries = 0\n");
        assert!(
            message.contains("snapshots.chunk_entries: is 0; expected 1 to 4096"),
            "{message}"
        );
        let message = invalid("[snapshots]\nchunk_entries = 4097\n");
        assert!(message.contains("snapshots.chunk_entries: is 4097"), "{message}");
        let err = parse("[snapshots]\ninterval_blocks = -1\n").unwrap_err();
        assert!(err.to_string().contains("snapshots.interval_blocks"), "{err}");
        let err = parse("[snapshots]\nintervals = 5\n").unwrap_err();
        assert!(err.to_string().contains("intervals"), "{err}");
    }

    #[test]
    fn bad_log_filter_is_rejected() {
        let message = invalid("log = \"info,=[\"\n");
        assert!(message.contains("log:"), "{message}");
    }

    #[test]
    fn load_names_the_file_in_read_and_validation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let message = NodeConfig::load(&missing).unwrap_err().to_string();
        assert!(message.contains(&missing.display().to_string()), "{message}");

        let path = dir.path().join("node.toml");
        std::fs::write(&path, "[listen]\ntcp = [\"foo\"]\n").unwrap();
        let message = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("listen.tcp[0]: \"foo\" is not a multiaddr"),
            "{message}"
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn testing_switches_in_a_testing_build() {
        let valid = parse("[testing]\napi = true\nforge_sync = \"headers,state\"\n")
            .unwrap()
            .validate()
            .unwrap();
        assert!(valid.testing_api);
        assert!(valid.testing_forge_sync.headers && valid.testing_forge_sync.state);
        assert!(!valid.testing_forge_sync.chunks);
        let message = invalid("[testing]\nforge_sync = \"votes\"\n");
        assert!(message.contains("testing.forge_sync"), "{message}");
        // No section: no switches.
        let valid = parse("").unwrap().validate().unwrap();
        assert!(!valid.testing_api);
        assert_eq!(valid.testing_forge_sync, crate::sync_server::Forgeries::default());
        // The default document mentions the section only as a comment.
        assert!(default_config_toml().contains("\n# forge_sync = \"\""));
    }

    /// Compiled only without the cargo feature `testing` (`make test` checks
    /// the release binary the same way in `scripts/check-release-build`).
    #[cfg(not(feature = "testing"))]
    #[test]
    fn a_release_build_refuses_any_testing_section() {
        for text in [
            "[testing]\napi = true\n",
            "[testing]\n",
            "[testing]\nforge_sync = \"all\"\n",
        ] {
            let message = invalid(text);
            assert!(message.contains("[testing]"), "{message}");
            assert!(message.contains("cargo feature `testing`"), "{message}");
        }
        assert!(!default_config_toml().contains("testing"));
    }

    #[test]
    fn telemetry_hosts_are_names() {
        let valid = parse("[telemetry]\nhosts = [\"Node1.Example.org.\", \"metrics\"]\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(valid.telemetry_hosts, vec!["node1.example.org", "metrics"]);
        for bad in ["node1.example.org:9100", "http://node1", "", ".example", "a b"] {
            let message = invalid(&format!("[telemetry]\nhosts = [\"ok.example\", {bad:?}]\n"));
            assert!(message.contains("telemetry.hosts[1]"), "{bad}: {message}");
        }
    }

    #[test]
    fn config_doc_matches_the_config_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
        let expected = config_markdown();
        if std::env::var_os("TIERNET_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "docs/config.md drifted from the config types; run TIERNET_UPDATE_DOCS=1 cargo test -p tiernet-node config_doc"
        );
    }
}
