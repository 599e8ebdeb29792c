//! The peer manager: which connections the node keeps, refuses or prunes,
//! and which known peers it redials. A sans-IO state machine: every input
//! carries `now` (ms since the Unix epoch), every decision is a return value,
//! and the unit tests below drive it without a socket. [`gate`] is the libp2p
//! shell that feeds it swarm events and carries out its decisions.
//!
//! ## The rules, and who pays
//!
//! - **Reserved peers always get in.** Reserved are the configured
//!   `connections.reserved` peers and every PeerId that proved a validator's
//!   ZSI in a Hello (the node also feeds in the peerstore's validator
//!   records on start). They bypass every limit below except the hard cap
//!   `max_peers + reserved_slots`, and they are redialled whenever they are
//!   not connected. An outsider cannot become reserved: it would need a
//!   validator's ZSI keys. The IPs of reserved peers' known addresses are
//!   *reserved IPs*: before Noise has told us the PeerId (the pending stage)
//!   connections from them skip the IP checks, so a flood sharing a
//!   validator's host cannot keep the validator out; the PeerId checks at
//!   the established stage still apply to everyone else from that IP.
//! - **Pending inbound handshakes are bounded** (`max_pending_inbound` in
//!   total, `max_pending_per_ip` per IP): connections still in the Noise
//!   upgrade or established without a Hello. A silent peer holds such a
//!   slot only until the **Hello deadline** (`hello_deadline_ms`); then it
//!   is settled as TL0 (light clients send no Hello) and competes under the
//!   TL0 quota.
//! - **Per-IP limit** (`max_per_ip`): non-reserved peers connected from one
//!   IP. Fresh identities are free; IPs are not.
//! - **TL0 quota** (`tl0_quota`): inbound peers without a verified ZSI. When
//!   it is exceeded the least useful one is pruned: fewest useful deliveries
//!   (accepted gossip it was first to relay), then one past its grace period
//!   (`tl0_grace_secs`) before one still in it, then the longest connected.
//!   A silent sybil earns nothing and goes first; a newcomer gets the grace
//!   period to prove itself. Outbound peers are not in the quota: we chose
//!   them, an attacker cannot.
//! - **Maximum** (`max_peers` non-reserved peers; `limits.max_connections`
//!   connections): beyond it inbound strangers are refused.
//! - **Redial**: every `redial_interval_secs`, unconnected reserved peers,
//!   and known good peers while below `target_peers`, are dialled; each
//!   failure doubles that peer's backoff (`redial_backoff_base_secs` up to
//!   `redial_backoff_max_secs`).
//! - **IP bans**: PeerId bans are the peerstore's (local reputation). When
//!   `ip_ban_after_bans` PeerIds connected from one IP are banned within
//!   `ip_ban_window_secs`, the IP is banned for `ip_ban_secs`: its
//!   non-reserved connections are closed and new ones refused at the pending
//!   stage, before any Noise work. IP bans live in memory only.
//!
//! Every map is bounded: connections by the limits above, backoff and IP
//! records by [`MAX_TRACKED`] (oldest dropped first).

pub mod config;
pub mod gate;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tiernet_core::tier::Tier;

pub use config::{ConnectionsConfig, PeerManagerConfig};

/// Most entries in each auxiliary map (dial backoffs, IP offences, IP bans,
/// validator PeerIds, reserved IPs).
pub const MAX_TRACKED: usize = 4096;

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote dialled us.
    Inbound,
    /// We dialled the remote.
    Outbound,
}

impl Direction {
    /// `inbound` or `outbound` (a metric label).
    pub fn label(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// The remote IP is banned.
    #[error("the remote IP is banned")]
    IpBanned,
    /// Too many inbound connections are waiting for their handshake.
    #[error("too many pending inbound handshakes")]
    PendingFull,
    /// Too many inbound connections from this IP are waiting for their handshake.
    #[error("too many pending inbound handshakes from this IP")]
    PendingPerIp,
    /// Too many peers from this IP.
    #[error("too many peers from this IP")]
    PerIp,
    /// No room for another non-reserved peer.
    #[error("no room for another peer")]
    Full,
    /// Even reserved room is exhausted.
    #[error("the hard peer cap is reached")]
    HardCap,
}

impl Refusal {
    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::IpBanned => "ip_banned",
            Self::PendingFull => "pending_full",
            Self::PendingPerIp => "pending_per_ip",
            Self::PerIp => "per_ip",
            Self::Full => "full",
            Self::HardCap => "hard_cap",
        }
    }
}

/// Why a connected peer is disconnected by the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PruneReason {
    /// The TL0 quota was exceeded and this peer was the least useful.
    Tl0Quota,
    /// Its IP was banned.
    IpBanned,
}

impl PruneReason {
    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tl0Quota => "tl0_quota",
            Self::IpBanned => "ip_banned",
        }
    }
}

/// What the manager wants the node to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Disconnect the peer (every connection of it).
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: PruneReason,
    },
    /// Dial the peer at these addresses.
    Dial {
        /// The peer.
        peer: PeerId,
        /// Its known addresses.
        addrs: Vec<Multiaddr>,
    },
}

/// One established connection.
#[derive(Debug, Clone)]
struct Conn {
    peer: PeerId,
    ip: Option<IpAddr>,
}

/// What is known about a connected peer.
#[derive(Debug, Clone)]
struct Peer {
    connections: Vec<ConnectionId>,
    /// The direction of its first connection.
    direction: Direction,
    /// Its tier once a Hello was verified or the deadline settled it as TL0.
    tier: Option<Tier>,
    since_ms: u64,
    /// Accepted gossip it delivered first.
    useful: u64,
}

/// Per-peer dial backoff.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next_ms: u64,
}

/// A snapshot count for the connections metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionClass {
    /// `TL0`..`TL5`, or `pending` before the tier is known.
    pub tier: &'static str,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
}

/// The peer manager's state.
#[derive(Debug)]
pub struct PeerManager {
    config: PeerManagerConfig,
    /// Configured reserved peers.
    reserved: HashSet<PeerId>,
    /// PeerIds that proved a validator ZSI.
    validators: HashSet<PeerId>,
    /// IPs of reserved peers' known addresses.
    reserved_ips: HashSet<IpAddr>,
    /// Inbound connections in the upgrade (before the PeerId is known).
    upgrading: HashMap<ConnectionId, Option<IpAddr>>,
    conns: HashMap<ConnectionId, Conn>,
    peers: HashMap<PeerId, Peer>,
    /// Outbound dials we started, by peer, and when.
    dialing: HashMap<PeerId, u64>,
    backoff: HashMap<PeerId, Backoff>,
    /// Ban times of PeerIds seen from each IP (within the window).
    ip_offences: HashMap<IpAddr, VecDeque<u64>>,
    ip_bans: HashMap<IpAddr, u64>,
    last_redial_ms: u64,
}

/// The address group of a multiaddr's IP (its first component), if it has
/// one: what every per-IP rule (limits, IP bans, reserved IPs) counts
/// against. See [`address_group`].
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(address_group(IpAddr::V4(ip))),
        Protocol::Ip6(ip) => Some(address_group(IpAddr::V6(ip))),
        _ => None,
    }
}

/// The group an address counts in for per-IP rules: an IPv4 address
/// itself, an IPv6 address by its /64 prefix (the rest zeroed). One host
/// usually holds a whole /64 and picks any address in it, so per-address
/// IPv6 limits and bans were no limit at all: a new address per
/// connection took a fresh per-IP budget and shed every IP ban.
/// IPv4-mapped IPv6 addresses count as their IPv4 address; loopback (`::1`)
/// stays itself.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// The remote address of a connection.
pub fn remote_addr(endpoint: &ConnectedPoint) -> &Multiaddr {
    match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
    }
}

impl PeerManager {
    /// A manager with `config`; the configured reserved peers' addresses
    /// make their IPs reserved.
    pub fn new(config: PeerManagerConfig) -> Self {
        let mut manager = Self {
            reserved: config.reserved.iter().map(|(p, _)| *p).collect(),
            validators: HashSet::new(),
            reserved_ips: HashSet::new(),
            upgrading: HashMap::new(),
            conns: HashMap::new(),
            peers: HashMap::new(),
            dialing: HashMap::new(),
            backoff: HashMap::new(),
            ip_offences: HashMap::new(),
            ip_bans: HashMap::new(),
            last_redial_ms: 0,
            config,
        };
        let ips: Vec<IpAddr> = manager.config.reserved.iter().filter_map(|(_, a)| ip_of(a)).collect();
        for ip in ips {
            manager.add_reserved_ip(ip);
        }
        manager
    }

    /// The configuration.
    pub fn config(&self) -> &PeerManagerConfig {
        &self.config
    }

    /// Whether `peer` proved a validator's ZSI.
    pub fn is_validator(&self, peer: &PeerId) -> bool {
        self.validators.contains(peer)
    }

    /// Whether `peer` is reserved (configured, or a proven validator).
    pub fn is_reserved(&self, peer: &PeerId) -> bool {
        self.reserved.contains(peer) || self.validators.contains(peer)
    }

    /// Notes that `peer` proved a validator's ZSI (in a Hello now, or in
    /// one recorded in the peerstore), with its known addresses: it becomes
    /// reserved and their IPs reserved IPs.
    pub fn add_validator(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        if self.validators.len() < MAX_TRACKED || self.validators.contains(&peer) {
            self.validators.insert(peer);
        }
        for ip in addrs.iter().filter_map(ip_of) {
            self.add_reserved_ip(ip);
        }
    }

    fn add_reserved_ip(&mut self, ip: IpAddr) {
        if self.reserved_ips.len() < MAX_TRACKED {
            self.reserved_ips.insert(ip);
        }
    }

    /// `ip` if the per-IP rules apply to it (loopback only with `limit_loopback`).
    fn limited(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        ip.filter(|ip| self.config.limit_loopback || !ip.is_loopback())
    }

    fn ip_banned(&self, ip: Option<IpAddr>, now: u64) -> bool {
        ip.and_then(|ip| self.ip_bans.get(&ip))
            .is_some_and(|until| *until > now)
    }

    /// Inbound connections that are waiting for a handshake: in the upgrade,
    /// or established without a Hello (non-reserved peers only).
    fn pending_inbound(&self, ip: Option<IpAddr>) -> usize {
        let upgrading = self.upgrading.values().filter(|i| ip.is_none() || **i == ip).count();
        let established = self
            .peers
            .iter()
            .filter(|(peer, p)| p.tier.is_none() && p.direction == Direction::Inbound && !self.is_reserved(peer))
            .filter(|(_, p)| {
                ip.is_none()
                    || p.connections
                        .iter()
                        .any(|c| self.conns.get(c).is_some_and(|c| c.ip == ip))
            })
            .count();
        upgrading + established
    }

    /// Non-reserved peers.
    fn ordinary_peers(&self) -> usize {
        self.peers.keys().filter(|p| !self.is_reserved(p)).count()
    }

    /// An inbound connection from `remote` is about to be upgraded (the
    /// PeerId is not known yet). Refused here costs no Noise handshake.
    pub fn on_pending_inbound(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
        now: u64,
    ) -> Result<(), Refusal> {
        let ip = ip_of(remote);
        let reserved_ip = ip.is_some_and(|ip| self.reserved_ips.contains(&ip));
        let limited = self.limited(ip);
        if !reserved_ip {
            if self.ip_banned(limited, now) {
                return Err(Refusal::IpBanned);
            }
            if self.pending_inbound(None) >= self.config.max_pending_inbound {
                return Err(Refusal::PendingFull);
            }
            if limited.is_some() && self.pending_inbound(limited) >= self.config.max_pending_per_ip {
                return Err(Refusal::PendingPerIp);
            }
        }
        self.upgrading.insert(connection, ip);
        Ok(())
    }

    /// A connection was established with `peer` (after Noise). `Err` means:
    /// close it at once.
    pub fn on_established(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        direction: Direction,
        now: u64,
    ) -> Result<(), Refusal> {
        self.upgrading.remove(&connection);
        let ip = ip_of(remote);
        if let Some(existing) = self.peers.get_mut(&peer) {
            // Another connection of a peer we already admitted (the per-peer
            // connection limit bounds these).
            existing.connections.push(connection);
            self.conns.insert(connection, Conn { peer, ip });
            return Ok(());
        }
        let reserved = self.is_reserved(&peer);
        let hard_cap = self.config.max_peers.saturating_add(self.config.reserved_slots);
        if self.peers.len() >= hard_cap {
            return Err(Refusal::HardCap);
        }
        if !reserved {
            if self.ip_banned(self.limited(ip), now) {
                return Err(Refusal::IpBanned);
            }
            if self.conns.len() >= self.config.max_connections || self.ordinary_peers() >= self.config.max_peers {
                return Err(Refusal::Full);
            }
            if let Some(ip) = self.limited(ip) {
                let from_ip = self
                    .peers
                    .iter()
                    .filter(|(p, _)| !self.is_reserved(p))
                    .filter(|(_, p)| {
                        p.connections
                            .iter()
                            .any(|c| self.conns.get(c).is_some_and(|c| c.ip == Some(ip)))
                    })
                    .count();
                if from_ip >= self.config.max_per_ip {
                    return Err(Refusal::PerIp);
                }
            }
            if direction == Direction::Inbound && self.pending_inbound(None) >= self.config.max_pending_inbound {
                return Err(Refusal::PendingFull);
            }
        }
        self.dialing.remove(&peer);
        self.backoff.remove(&peer);
        self.conns.insert(connection, Conn { peer, ip });
        self.peers.insert(
            peer,
            Peer {
                connections: vec![connection],
                direction,
                tier: None,
                since_ms: now,
                useful: 0,
            },
        );
        Ok(())
    }

    /// A pending connection failed or was denied before it was established
    /// (or by another behaviour right after this one admitted it).
    pub fn on_connection_failed(&mut self, connection: ConnectionId) {
        self.upgrading.remove(&connection);
        self.on_closed(connection);
    }

    /// A connection closed.
    pub fn on_closed(&mut self, connection: ConnectionId) {
        let Some(conn) = self.conns.remove(&connection) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(&conn.peer) {
            peer.connections.retain(|c| *c != connection);
            if peer.connections.is_empty() {
                self.peers.remove(&conn.peer);
            }
        }
    }

    /// We started dialling `peer`.
    pub fn on_dialing(&mut self, peer: PeerId, now: u64) {
        if self.dialing.len() < MAX_TRACKED {
            self.dialing.insert(peer, now);
        }
    }

    /// A dial of `peer` failed: its backoff doubles.
    pub fn on_dial_failed(&mut self, peer: PeerId, now: u64) {
        self.dialing.remove(&peer);
        if self.backoff.len() >= MAX_TRACKED && !self.backoff.contains_key(&peer) {
            // Drop the entry that would allow a dial soonest.
            if let Some(oldest) = self.backoff.iter().min_by_key(|(_, b)| b.next_ms).map(|(p, _)| *p) {
                self.backoff.remove(&oldest);
            }
        }
        let base = self.config.backoff_base_ms;
        let max = self.config.backoff_max_ms;
        let entry = self.backoff.entry(peer).or_insert(Backoff {
            failures: 0,
            next_ms: 0,
        });
        entry.failures = entry.failures.saturating_add(1);
        let delay = base
            .saturating_mul(1u64 << entry.failures.saturating_sub(1).min(32))
            .min(max);
        entry.next_ms = now.saturating_add(delay);
    }

    /// When `peer` may be dialled again (0: now).
    pub fn next_dial_ms(&self, peer: &PeerId) -> u64 {
        self.backoff.get(peer).map_or(0, |b| b.next_ms)
    }

    /// A Hello from `peer` was verified: its tier, and whether its ZSI is a
    /// validator's. Returns the peers to prune (the TL0 quota).
    pub fn on_hello(
        &mut self,
        peer: PeerId,
        tier: Tier,
        validator: bool,
        addrs: &[Multiaddr],
        now: u64,
    ) -> Vec<Action> {
        if validator {
            self.add_validator(peer, addrs);
        }
        match self.peers.get_mut(&peer) {
            Some(p) => p.tier = Some(tier),
            None => return Vec::new(),
        }
        self.enforce_tl0_quota(now)
    }

    /// `peer` delivered something useful (accepted gossip it relayed first).
    pub fn mark_useful(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.useful = p.useful.saturating_add(1);
        }
    }

    /// `peer` (if connected) was banned at `now`: the IPs it is connected
    /// from get an offence; an IP with `ip_ban_after` offences within the
    /// window is banned and its non-reserved peers disconnected.
    pub fn on_peer_banned(&mut self, peer: &PeerId, now: u64) -> Vec<Action> {
        let Some(p) = self.peers.get(peer) else {
            return Vec::new();
        };
        let ips: HashSet<IpAddr> = p
            .connections
            .iter()
            .filter_map(|c| self.limited(self.conns.get(c).and_then(|c| c.ip)))
            .collect();
        let mut actions = Vec::new();
        for ip in ips {
            if self.ip_offences.len() >= MAX_TRACKED
                && !self.ip_offences.contains_key(&ip)
                && let Some(oldest) = self
                    .ip_offences
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied().unwrap_or(0))
                    .map(|(ip, _)| *ip)
            {
                self.ip_offences.remove(&oldest);
            }
            let window = self.config.ip_ban_window_ms;
            let limit = self.config.ip_ban_after.max(1) as usize;
            let times = self.ip_offences.entry(ip).or_default();
            times.push_back(now);
            while times.front().is_some_and(|t| t.saturating_add(window) <= now) || times.len() > limit {
                times.pop_front();
            }
            if times.len() >= limit {
                times.clear();
                actions.extend(self.ban_ip(ip, now));
            }
        }
        actions
    }

    /// Bans `ip` until `now + ip_ban_ms` and returns the disconnections of
    /// its non-reserved peers.
    pub fn ban_ip(&mut self, ip: IpAddr, now: u64) -> Vec<Action> {
        if self.ip_bans.len() >= MAX_TRACKED && !self.ip_bans.contains_key(&ip) {
            self.ip_bans.retain(|_, until| *until > now);
            if self.ip_bans.len() >= MAX_TRACKED {
                return Vec::new();
            }
        }
        self.ip_bans.insert(ip, now.saturating_add(self.config.ip_ban_ms));
        let mut victims: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(peer, _)| !self.is_reserved(peer))
            .filter(|(_, p)| {
                p.connections
                    .iter()
                    .any(|c| self.conns.get(c).is_some_and(|c| c.ip == Some(ip)))
            })
            .map(|(peer, _)| *peer)
            .collect();
        victims.sort();
        victims
            .into_iter()
            .map(|peer| Action::Disconnect {
                peer,
                reason: PruneReason::IpBanned,
            })
            .collect()
    }

    /// Whether `ip` (its address group, see [`address_group`]) is banned at `now`.
    pub fn is_ip_banned(&self, ip: &IpAddr, now: u64) -> bool {
        self.ip_banned(Some(address_group(*ip)), now)
    }

    /// The periodic step: Hello deadlines (late peers are settled as TL0),
    /// the TL0 quota, expired IP bans, and redials. `candidates` are the
    /// known good peers, best first (from the peerstore).
    pub fn tick(&mut self, now: u64, candidates: &[(PeerId, Vec<Multiaddr>)]) -> Vec<Action> {
        let deadline = self.config.hello_deadline_ms;
        for p in self.peers.values_mut() {
            if p.tier.is_none() && p.since_ms.saturating_add(deadline) <= now {
                p.tier = Some(Tier::TL0);
            }
        }
        self.ip_bans.retain(|_, until| *until > now);
        self.ip_offences.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| t.saturating_add(self.config.ip_ban_window_ms) > now)
        });
        self.dialing
            .retain(|_, since| since.saturating_add(self.config.redial_interval_ms.saturating_mul(3)) > now);
        let mut actions = self.enforce_tl0_quota(now);
        if self.redial_due(now) {
            self.last_redial_ms = now;
            actions.extend(self.redial(now, candidates));
        }
        actions
    }

    /// Whether the next [`PeerManager::tick`] at `now` runs a redial round
    /// (so the caller gathers candidates only then).
    pub fn redial_due(&self, now: u64) -> bool {
        now >= self.last_redial_ms.saturating_add(self.config.redial_interval_ms)
    }

    /// Dials unconnected reserved peers, and other candidates while below
    /// the target, each only when its backoff allows.
    fn redial(&mut self, now: u64, candidates: &[(PeerId, Vec<Multiaddr>)]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut planned = self.peers.len() + self.dialing.len();
        let configured: Vec<(PeerId, Vec<Multiaddr>)> = self
            .config
            .reserved
            .iter()
            .map(|(p, a)| (*p, vec![a.clone()]))
            .collect();
        let mut seen = HashSet::new();
        for (peer, addrs) in configured.iter().chain(candidates) {
            if !seen.insert(*peer) || addrs.is_empty() {
                continue;
            }
            if self.peers.contains_key(peer) || self.dialing.contains_key(peer) || self.next_dial_ms(peer) > now {
                continue;
            }
            let reserved = self.is_reserved(peer);
            if !reserved && planned >= self.config.target_peers {
                continue;
            }
            planned += 1;
            self.on_dialing(*peer, now);
            actions.push(Action::Dial {
                peer: *peer,
                addrs: addrs.clone(),
            });
        }
        actions
    }

    /// Prunes inbound TL0 peers beyond the quota, least useful first.
    fn enforce_tl0_quota(&mut self, now: u64) -> Vec<Action> {
        let grace = self.config.tl0_grace_ms;
        let mut tl0: Vec<(u64, bool, u64, PeerId)> = self
            .peers
            .iter()
            .filter(|(peer, p)| {
                p.tier == Some(Tier::TL0) && p.direction == Direction::Inbound && !self.is_reserved(peer)
            })
            .map(|(peer, p)| (p.useful, p.since_ms.saturating_add(grace) > now, p.since_ms, *peer))
            .collect();
        if tl0.len() <= self.config.tl0_quota {
            return Vec::new();
        }
        tl0.sort();
        let excess = tl0.len() - self.config.tl0_quota;
        tl0.into_iter()
            .take(excess)
            .map(|(.., peer)| {
                // Forgotten at once: the disconnection's close events find nothing.
                if let Some(p) = self.peers.remove(&peer) {
                    for c in p.connections {
                        self.conns.remove(&c);
                    }
                }
                Action::Disconnect {
                    peer,
                    reason: PruneReason::Tl0Quota,
                }
            })
            .collect()
    }

    /// Connected peers.
    pub fn connected(&self) -> usize {
        self.peers.len()
    }

    /// Whether `peer` is connected (admitted).
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Connected peers by tier (`pending` before it is known) and the
    /// direction of their first connection.
    pub fn classes(&self) -> HashMap<ConnectionClass, i64> {
        let mut counts = HashMap::new();
        for p in self.peers.values() {
            let class = ConnectionClass {
                tier: p.tier.map_or("pending", Tier::label),
                direction: p.direction.label(),
            };
            *counts.entry(class).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests;
