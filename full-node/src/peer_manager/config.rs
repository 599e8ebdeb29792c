//! `[connections]`: the peer manager's settings in the config file, their
//! defaults, validation and the commented section of the default document.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::Deserialize;

/// Default for `connections.target_peers`.
pub const DEFAULT_TARGET_PEERS: usize = 16;
/// Default for `connections.max_peers`.
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Default for `connections.reserved_slots`.
pub const DEFAULT_RESERVED_SLOTS: usize = 32;
/// Default for `connections.max_per_ip`.
pub const DEFAULT_MAX_PER_IP: usize = 4;
/// Default for `connections.max_pending_inbound`.
pub const DEFAULT_MAX_PENDING_INBOUND: usize = 16;
/// Default for `connections.max_pending_per_ip`.
pub const DEFAULT_MAX_PENDING_PER_IP: usize = 4;
/// Default for `connections.hello_deadline_ms`.
pub const DEFAULT_HELLO_DEADLINE_MS: u64 = 5_000;
/// Default for `connections.handshake_timeout_ms`.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Least `connections.handshake_timeout_ms` accepted.
pub const MIN_HANDSHAKE_TIMEOUT_MS: u64 = 100;
/// Default for `connections.tl0_quota`.
pub const DEFAULT_TL0_QUOTA: usize = 24;
/// Default for `connections.tl0_grace_secs`.
pub const DEFAULT_TL0_GRACE_SECS: u64 = 30;
/// Default for `connections.redial_interval_secs`.
pub const DEFAULT_REDIAL_INTERVAL_SECS: u64 = 10;
/// Default for `connections.redial_backoff_base_secs`.
pub const DEFAULT_BACKOFF_BASE_SECS: u64 = 5;
/// Default for `connections.redial_backoff_max_secs`.
pub const DEFAULT_BACKOFF_MAX_SECS: u64 = 600;
/// Default for `connections.ip_ban_after_bans`.
pub const DEFAULT_IP_BAN_AFTER: u32 = 3;
/// Default for `connections.ip_ban_window_secs`.
pub const DEFAULT_IP_BAN_WINDOW_SECS: u64 = 3600;
/// Default for `connections.ip_ban_secs`.
pub const DEFAULT_IP_BAN_SECS: u64 = 3600;

/// `[connections]` as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Peers the node dials towards while it has fewer. Default 16.
    pub target_peers: usize,
    /// Most non-reserved peers. Default 64.
    pub max_peers: usize,
    /// Extra room only reserved peers (validators, `reserved`) may use. Default 32.
    pub reserved_slots: usize,
    /// Most non-reserved peers connected from one IP. Default 4.
    pub max_per_ip: usize,
    /// Most inbound connections waiting for their handshake. Default 16.
    pub max_pending_inbound: usize,
    /// Most inbound connections from one IP waiting for their handshake. Default 4.
    pub max_pending_per_ip: usize,
    /// Milliseconds a connection has for its transport handshake (Noise and
    /// the multiplexer; ICE, DTLS and Noise on WebRTC) before it is dropped,
    /// inbound and outbound. Default 10000.
    pub handshake_timeout_ms: u64,
    /// Milliseconds an inbound peer has to send its Hello before it is
    /// treated as TL0. Default 5000.
    pub hello_deadline_ms: u64,
    /// Most inbound TL0 peers; beyond it the least useful is pruned. Default 24.
    pub tl0_quota: usize,
    /// Seconds a new TL0 peer is protected from pruning by older idle ones. Default 30.
    pub tl0_grace_secs: u64,
    /// Seconds between redial rounds. Default 10.
    pub redial_interval_secs: u64,
    /// First redial backoff after a failed dial, doubling per failure. Default 5.
    pub redial_backoff_base_secs: u64,
    /// Longest redial backoff. Default 600.
    pub redial_backoff_max_secs: u64,
    /// Bans of PeerIds from one IP (within the window) that ban the IP. Default 3.
    pub ip_ban_after_bans: u32,
    /// The window for `ip_ban_after_bans`, seconds. Default 3600.
    pub ip_ban_window_secs: u64,
    /// How long an IP ban lasts, seconds. Default 3600.
    pub ip_ban_secs: u64,
    /// Whether the per-IP limits and IP bans also apply to loopback
    /// addresses (127.0.0.0/8, ::1). Off by default: processes on the same
    /// host (a devnet, a local light client) share one IP. Default false.
    pub limit_loopback: bool,
    /// Trusted peers, multiaddrs ending in `/p2p/<PeerId>`: always admitted
    /// (reserved room) and always redialled. Default empty.
    pub reserved: Vec<String>,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            target_peers: DEFAULT_TARGET_PEERS,
            max_peers: DEFAULT_MAX_PEERS,
            reserved_slots: DEFAULT_RESERVED_SLOTS,
            max_per_ip: DEFAULT_MAX_PER_IP,
            max_pending_inbound: DEFAULT_MAX_PENDING_INBOUND,
            max_pending_per_ip: DEFAULT_MAX_PENDING_PER_IP,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            hello_deadline_ms: DEFAULT_HELLO_DEADLINE_MS,
            tl0_quota: DEFAULT_TL0_QUOTA,
            tl0_grace_secs: DEFAULT_TL0_GRACE_SECS,
            redial_interval_secs: DEFAULT_REDIAL_INTERVAL_SECS,
            redial_backoff_base_secs: DEFAULT_BACKOFF_BASE_SECS,
            redial_backoff_max_secs: DEFAULT_BACKOFF_MAX_SECS,
            ip_ban_after_bans: DEFAULT_IP_BAN_AFTER,
            ip_ban_window_secs: DEFAULT_IP_BAN_WINDOW_SECS,
            ip_ban_secs: DEFAULT_IP_BAN_SECS,
            limit_loopback: false,
            reserved: Vec::new(),
        }
    }
}

/// The validated settings the [`super::PeerManager`] runs with (times in ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerManagerConfig {
    /// `target_peers`.
    pub target_peers: usize,
    /// `max_peers`.
    pub max_peers: usize,
    /// `reserved_slots`.
    pub reserved_slots: usize,
    /// `limits.max_connections`: most connections of non-reserved peers.
    pub max_connections: usize,
    /// `max_per_ip`.
    pub max_per_ip: usize,
    /// `max_pending_inbound`.
    pub max_pending_inbound: usize,
    /// `max_pending_per_ip`.
    pub max_pending_per_ip: usize,
    /// `handshake_timeout_ms`.
    pub handshake_timeout_ms: u64,
    /// `hello_deadline_ms`.
    pub hello_deadline_ms: u64,
    /// `tl0_quota`.
    pub tl0_quota: usize,
    /// `tl0_grace_secs`, in ms.
    pub tl0_grace_ms: u64,
    /// `redial_interval_secs`, in ms.
    pub redial_interval_ms: u64,
    /// `redial_backoff_base_secs`, in ms.
    pub backoff_base_ms: u64,
    /// `redial_backoff_max_secs`, in ms.
    pub backoff_max_ms: u64,
    /// `ip_ban_after_bans`.
    pub ip_ban_after: u32,
    /// `ip_ban_window_secs`, in ms.
    pub ip_ban_window_ms: u64,
    /// `ip_ban_secs`, in ms.
    pub ip_ban_ms: u64,
    /// `limit_loopback`.
    pub limit_loopback: bool,
    /// `reserved`, each with the peer it names.
    pub reserved: Vec<(PeerId, Multiaddr)>,
}

impl Default for PeerManagerConfig {
    fn default() -> Self {
        ConnectionsConfig::default().typed(crate::config::DEFAULT_MAX_CONNECTIONS as usize, Vec::new())
    }
}

/// A `[connections]` value that is not acceptable: `(key, problem)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connections.{key}: {problem}")]
pub struct ConnectionsError {
    /// The key under `connections.`.
    pub key: String,
    /// What is wrong and what was expected.
    pub problem: String,
}

impl ConnectionsConfig {
    /// Checks the values; `max_connections` is `limits.max_connections`.
    pub fn validate(&self, max_connections: usize) -> Result<PeerManagerConfig, ConnectionsError> {
        let err = |key: &str, problem: String| ConnectionsError {
            key: key.to_owned(),
            problem,
        };
        for (key, value) in [
            ("max_peers", self.max_peers),
            ("max_per_ip", self.max_per_ip),
            ("max_pending_inbound", self.max_pending_inbound),
            ("max_pending_per_ip", self.max_pending_per_ip),
        ] {
            if value == 0 {
                return Err(err(key, "is 0; expected at least 1".into()));
            }
        }
        if self.tl0_quota > self.max_peers {
            return Err(err(
                "tl0_quota",
                format!(
                    "is {} but max_peers is {}; expected at most max_peers",
                    self.tl0_quota, self.max_peers
                ),
            ));
        }
        if self.handshake_timeout_ms < MIN_HANDSHAKE_TIMEOUT_MS {
            return Err(err(
                "handshake_timeout_ms",
                format!(
                    "is {}; expected at least {MIN_HANDSHAKE_TIMEOUT_MS}",
                    self.handshake_timeout_ms
                ),
            ));
        }
        if self.redial_interval_secs == 0 {
            return Err(err("redial_interval_secs", "is 0; expected at least 1".into()));
        }
        if self.redial_backoff_base_secs > self.redial_backoff_max_secs {
            return Err(err(
                "redial_backoff_base_secs",
                "is above redial_backoff_max_secs; expected at most that".into(),
            ));
        }
        let mut reserved = Vec::with_capacity(self.reserved.len());
        for (i, text) in self.reserved.iter().enumerate() {
            let key = format!("reserved[{i}]");
            let addr: Multiaddr = text
                .parse()
                .map_err(|e| err(&key, format!("{text:?} is not a multiaddr ({e})")))?;
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(err(&key, format!("{text:?} does not end in /p2p/<PeerId>")));
            };
            reserved.push((peer, addr));
        }
        Ok(self.typed(max_connections, reserved))
    }

    /// The typed settings, without checks.
    fn typed(&self, max_connections: usize, reserved: Vec<(PeerId, Multiaddr)>) -> PeerManagerConfig {
        let ms = |secs: u64| secs.saturating_mul(1000);
        PeerManagerConfig {
            target_peers: self.target_peers,
            max_peers: self.max_peers,
            reserved_slots: self.reserved_slots,
            max_connections,
            max_per_ip: self.max_per_ip,
            max_pending_inbound: self.max_pending_inbound,
            max_pending_per_ip: self.max_pending_per_ip,
            handshake_timeout_ms: self.handshake_timeout_ms,
            hello_deadline_ms: self.hello_deadline_ms,
            tl0_quota: self.tl0_quota,
            tl0_grace_ms: ms(self.tl0_grace_secs),
            redial_interval_ms: ms(self.redial_interval_secs),
            backoff_base_ms: ms(self.redial_backoff_base_secs),
            backoff_max_ms: ms(self.redial_backoff_max_secs),
            ip_ban_after: self.ip_ban_after_bans,
            ip_ban_window_ms: ms(self.ip_ban_window_secs),
            ip_ban_ms: ms(self.ip_ban_secs),
            limit_loopback: self.limit_loopback,
            reserved,
        }
    }
}

/// The `[connections]` section of the default config document.
pub fn default_section() -> String {
    format!(
        r#"
[connections]
# The peer manager. Reserved peers (validators that proved their ZSI, and the
# peers listed in `reserved`) always get in and are always redialled; the
# limits below apply to everyone else. "One IP" is an IPv4 address or an IPv6
# /64 (a host picks any address in its /64).
# Peers the node dials towards while it has fewer.
target_peers = {DEFAULT_TARGET_PEERS}
# Most non-reserved peers, and the extra room only reserved peers may use.
max_peers = {DEFAULT_MAX_PEERS}
reserved_slots = {DEFAULT_RESERVED_SLOTS}
# Most non-reserved peers from one IP address.
max_per_ip = {DEFAULT_MAX_PER_IP}
# Inbound connections still waiting for their handshake, in total and per IP.
max_pending_inbound = {DEFAULT_MAX_PENDING_INBOUND}
max_pending_per_ip = {DEFAULT_MAX_PENDING_PER_IP}
# A connection whose transport handshake (Noise and the multiplexer; ICE,
# DTLS and Noise on WebRTC) is not done after this long is dropped: a peer
# that says nothing holds a pending slot no longer than this.
handshake_timeout_ms = {DEFAULT_HANDSHAKE_TIMEOUT_MS}
# An inbound peer without a Hello after this long is treated as TL0.
hello_deadline_ms = {DEFAULT_HELLO_DEADLINE_MS}
# Most inbound TL0 peers (at most max_peers); beyond it the least useful one
# is disconnected. A new one is protected for tl0_grace_secs.
tl0_quota = {DEFAULT_TL0_QUOTA}
tl0_grace_secs = {DEFAULT_TL0_GRACE_SECS}
# Known good peers are redialled every redial_interval_secs; a failed dial
# waits redial_backoff_base_secs, doubling up to redial_backoff_max_secs.
redial_interval_secs = {DEFAULT_REDIAL_INTERVAL_SECS}
redial_backoff_base_secs = {DEFAULT_BACKOFF_BASE_SECS}
redial_backoff_max_secs = {DEFAULT_BACKOFF_MAX_SECS}
# After ip_ban_after_bans PeerIds from one IP are banned within
# ip_ban_window_secs, the IP itself is banned for ip_ban_secs.
ip_ban_after_bans = {DEFAULT_IP_BAN_AFTER}
ip_ban_window_secs = {DEFAULT_IP_BAN_WINDOW_SECS}
ip_ban_secs = {DEFAULT_IP_BAN_SECS}
# Whether max_per_ip, max_pending_per_ip and IP bans also apply to loopback
# addresses (off: local processes such as a devnet share one IP).
limit_loopback = false
# Trusted peers: multiaddrs ending in /p2p/<PeerId>.
reserved = []
"#
    )
}
