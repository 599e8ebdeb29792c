//! Staying connected, sans-IO: which addresses to dial and when.
//!
//! The [`Dialer`] knows the bootstrap addresses and the ones learned from
//! full nodes ("get peers"), and keeps at least [`Dialer::min_peers`]
//! peers connected: every address of a peer that is not connected is
//! dialled when it is due. A lost peer is due again after
//! [`FIRST_RETRY_MS`]; each failed dial doubles the wait up to
//! [`MAX_BACKOFF_MS`] — [`ISOLATED_MAX_BACKOFF_MS`] while no peer at all is
//! connected, so that a wallet cut off reconnects within seconds of a peer
//! becoming reachable — with ±25 % jitter so that many clients do not redial
//! in step. [`Dialer::wake`] (a stall, a network change) makes everything
//! due now. Time is an input (`now_ms`).

use std::collections::BTreeSet;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Wait before redialling a peer that was just lost.
pub const FIRST_RETRY_MS: u64 = 250;
/// Longest wait between two dials of one address.
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// Longest wait between two dials of one address while no peer is
/// connected: a client with no peer cannot follow the chain, so it keeps
/// trying often (a failed dial to a dead address costs one connection
/// attempt; at most [`MAX_LEARNED`] learned plus the bootstrap addresses).
pub const ISOLATED_MAX_BACKOFF_MS: u64 = 2_000;
/// A dial with no outcome after this long counts as failed.
pub const DIAL_TIMEOUT_MS: u64 = 10_000;
/// Most learned addresses kept (bootstrap addresses are always kept).
pub const MAX_LEARNED: usize = 64;
/// Default minimum number of connected peers.
pub const DEFAULT_MIN_PEERS: usize = 3;

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Given by the app.
    Bootstrap,
    /// Learned from a full node (unverified hint).
    Learned,
}

#[derive(Debug, Clone)]
struct Entry {
    address: Multiaddr,
    peer: Option<PeerId>,
    source: Source,
    /// When a dial started and has no outcome yet.
    dialing_since: Option<u64>,
    failures: u32,
    next_ms: u64,
}

/// Which addresses to dial, and when.
#[derive(Debug, Clone)]
pub struct Dialer {
    entries: Vec<Entry>,
    connected: BTreeSet<PeerId>,
    banned: BTreeSet<PeerId>,
    min_peers: usize,
    rng: u64,
    /// Which transports this client can use (a browser has no TCP).
    usable: fn(&Multiaddr) -> bool,
}

/// The peer an address names with `/p2p/…`, if any.
pub fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// Whether this build's transport can dial `address`: TCP (not WebSocket,
/// not WebRTC) natively; WebSocket or WebRTC-direct in a browser.
pub fn dialable_here(address: &Multiaddr) -> bool {
    let has = |f: fn(&Protocol<'_>) -> bool| address.iter().any(|p| f(&p));
    let ws = has(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_)));
    let webrtc = has(|p| matches!(p, Protocol::WebRTCDirect | Protocol::Certhash(_)));
    let tcp = has(|p| matches!(p, Protocol::Tcp(_)));
    if cfg!(target_arch = "wasm32") {
        ws || webrtc
    } else {
        tcp && !ws && !webrtc
    }
}

impl Dialer {
    /// A dialer for `bootstrap`, keeping `min_peers` connected; `seed`
    /// seeds the jitter.
    pub fn new(bootstrap: impl IntoIterator<Item = Multiaddr>, min_peers: usize, seed: u64) -> Self {
        let mut dialer = Self {
            entries: Vec::new(),
            connected: BTreeSet::new(),
            banned: BTreeSet::new(),
            min_peers: min_peers.max(1),
            rng: seed | 1,
            usable: |_| true,
        };
        for address in bootstrap {
            dialer.add(address, Source::Bootstrap);
        }
        dialer
    }

    /// Only addresses `usable` accepts are learned (e.g. [`dialable_here`]).
    pub fn with_filter(mut self, usable: fn(&Multiaddr) -> bool) -> Self {
        self.usable = usable;
        self
    }

    /// The minimum number of connected peers.
    pub fn min_peers(&self) -> usize {
        self.min_peers
    }

    /// Addresses known, bootstrap first.
    pub fn addresses(&self) -> Vec<(Multiaddr, Source)> {
        self.entries.iter().map(|e| (e.address.clone(), e.source)).collect()
    }

    fn add(&mut self, address: Multiaddr, source: Source) -> bool {
        if self.entries.iter().any(|e| e.address == address) {
            return false;
        }
        let peer = peer_of(&address);
        if peer.is_some_and(|p| self.banned.contains(&p)) {
            return false;
        }
        if source == Source::Learned {
            if peer.is_none() || !(self.usable)(&address) {
                return false;
            }
            let learned = self.entries.iter().filter(|e| e.source == Source::Learned).count();
            if learned >= MAX_LEARNED {
                return false;
            }
        }
        self.entries.push(Entry {
            address,
            peer,
            source,
            dialing_since: None,
            failures: 0,
            next_ms: 0,
        });
        true
    }

    /// Addresses a full node told us about (text; bad ones are skipped);
    /// how many were new.
    pub fn learn(&mut self, addresses: impl IntoIterator<Item = String>) -> usize {
        addresses
            .into_iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
            .filter(|a| self.add(a.clone(), Source::Learned))
            .count()
    }

    fn jitter(&mut self, ms: u64) -> u64 {
        // xorshift64: cheap, good enough to spread redials.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let quarter = ms / 4;
        let spread = if quarter == 0 { 0 } else { self.rng % (2 * quarter + 1) };
        ms - quarter + spread
    }

    fn backoff_ms(&mut self, failures: u32) -> u64 {
        let base = FIRST_RETRY_MS.saturating_mul(1u64 << failures.min(16));
        let cap = if self.connected.is_empty() {
            ISOLATED_MAX_BACKOFF_MS
        } else {
            MAX_BACKOFF_MS
        };
        self.jitter(base.min(cap))
    }

    /// Addresses to dial now. Nothing while at least the minimum number of
    /// peers is connected (then only missing bootstrap peers are redialled,
    /// as they are the app's choice).
    pub fn due(&mut self, now_ms: u64) -> Vec<Multiaddr> {
        // Dials that never got an outcome count as failed.
        for i in 0..self.entries.len() {
            if let Some(since) = self.entries[i].dialing_since
                && now_ms.saturating_sub(since) > DIAL_TIMEOUT_MS
            {
                let failures = self.entries[i].failures + 1;
                let wait = self.backoff_ms(failures);
                let entry = &mut self.entries[i];
                entry.dialing_since = None;
                entry.failures = failures;
                entry.next_ms = now_ms + wait;
            }
        }
        let enough = self.connected.len() >= self.min_peers;
        let mut out = Vec::new();
        let mut peers_dialled = BTreeSet::new();
        for entry in &mut self.entries {
            let connected = entry.peer.is_some_and(|p| self.connected.contains(&p));
            let banned = entry.peer.is_some_and(|p| self.banned.contains(&p));
            if connected || banned || entry.dialing_since.is_some() || now_ms < entry.next_ms {
                continue;
            }
            if enough && entry.source == Source::Learned {
                continue;
            }
            // One address per peer at a time.
            if let Some(p) = entry.peer
                && !peers_dialled.insert(p)
            {
                continue;
            }
            entry.dialing_since = Some(now_ms);
            out.push(entry.address.clone());
        }
        out
    }

    /// When the next dial may be due (for the driver's timer).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| !e.peer.is_some_and(|p| self.connected.contains(&p)))
            .map(|e| e.dialing_since.map_or(e.next_ms, |s| s + DIAL_TIMEOUT_MS))
            .min()
    }

    /// `peer` connected over `address`.
    pub fn connected(&mut self, peer: PeerId, address: &Multiaddr) {
        self.connected.insert(peer);
        for entry in &mut self.entries {
            if entry.peer == Some(peer) || (entry.peer.is_none() && entry.address == *address) {
                entry.dialing_since = None;
                entry.failures = 0;
            }
        }
    }

    /// Every connection to `peer` closed: redial soon.
    pub fn disconnected(&mut self, peer: PeerId, now_ms: u64) {
        self.connected.remove(&peer);
        let wait = self.jitter(FIRST_RETRY_MS);
        for entry in &mut self.entries {
            if entry.peer == Some(peer) {
                entry.dialing_since = None;
                entry.next_ms = now_ms + wait;
            }
        }
    }

    /// A dial to `peer` (or to an address without a peer id) failed.
    pub fn failed(&mut self, peer: Option<PeerId>, now_ms: u64) {
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            let matches = match peer {
                Some(p) => entry.peer == Some(p),
                None => entry.peer.is_none() && entry.dialing_since.is_some(),
            };
            if matches && entry.dialing_since.is_some() {
                let failures = entry.failures + 1;
                let wait = self.backoff_ms(failures);
                let entry = &mut self.entries[i];
                entry.dialing_since = None;
                entry.failures = failures;
                entry.next_ms = now_ms + wait;
            }
        }
    }

    /// `peer` served garbage: never dialled again.
    pub fn ban(&mut self, peer: PeerId) {
        self.banned.insert(peer);
        self.connected.remove(&peer);
    }

    /// A stall or a network change: everything not connected is due now.
    pub fn wake(&mut self, now_ms: u64) {
        for entry in &mut self.entries {
            entry.failures = 0;
            if entry.dialing_since.is_none() {
                entry.next_ms = now_ms;
            }
        }
    }

    /// Peers connected now.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(peer: &PeerId, port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}").parse().unwrap()
    }

    #[test]
    fn a_lost_peer_is_redialled_within_a_second_and_failures_back_off_with_jitter() {
        let a = PeerId::random();
        let b = PeerId::random();
        let mut dialer = Dialer::new([addr(&a, 1), addr(&b, 2)], 3, 7);
        assert_eq!(dialer.due(0), vec![addr(&a, 1), addr(&b, 2)]);
        assert!(dialer.due(1).is_empty(), "a dial in progress is not repeated");
        dialer.connected(a, &addr(&a, 1));
        // `b` stays connected: the client is not cut off, so `a` backs off fully.
        dialer.connected(b, &addr(&b, 2));
        dialer.disconnected(a, 1_000);
        assert!(dialer.due(1_000).is_empty());
        assert_eq!(
            dialer.due(1_000 + FIRST_RETRY_MS * 5 / 4),
            vec![addr(&a, 1)],
            "redialled soon"
        );
        // Failures double the wait, capped, with jitter within ±25 %.
        let mut now = 2_000;
        let mut waits = Vec::new();
        for _ in 0..10 {
            dialer.failed(Some(a), now);
            let next = dialer.next_due_ms().unwrap();
            waits.push(next - now);
            now = next;
            assert_eq!(dialer.due(now), vec![addr(&a, 1)]);
        }
        for (i, wait) in waits.iter().enumerate() {
            let base = (FIRST_RETRY_MS << (i + 1)).min(MAX_BACKOFF_MS);
            assert!(
                *wait >= base * 3 / 4 && *wait <= base * 5 / 4,
                "wait {i}: {wait} vs {base}"
            );
        }
        assert!(waits.last().unwrap() <= &(MAX_BACKOFF_MS * 5 / 4));
        // A dial with no outcome times out and counts as failed.
        assert!(dialer.due(now + DIAL_TIMEOUT_MS).is_empty());
        let timed_out = now + DIAL_TIMEOUT_MS + 1;
        assert!(dialer.due(timed_out).is_empty(), "timed out: waits its backoff");
        assert!(!dialer.due(timed_out + MAX_BACKOFF_MS * 5 / 4 + 1).is_empty());
        // A wake-up makes it due at once.
        dialer.failed(Some(a), now);
        dialer.wake(now + 1);
        assert_eq!(dialer.due(now + 1), vec![addr(&a, 1)]);
    }

    /// A client with no peer left keeps dialling every ~2 s, so it is back
    /// within seconds of a peer becoming reachable (30 s waits otherwise).
    #[test]
    fn a_client_with_no_peer_retries_every_two_seconds_at_most() {
        let a = PeerId::random();
        let mut dialer = Dialer::new([addr(&a, 1)], 1, 11);
        let mut now = 0;
        for _ in 0..12 {
            assert_eq!(dialer.due(now), vec![addr(&a, 1)]);
            dialer.failed(Some(a), now);
            let wait = dialer.next_due_ms().unwrap() - now;
            assert!(wait <= ISOLATED_MAX_BACKOFF_MS * 5 / 4, "waited {wait} ms with no peer");
            now += wait;
        }
    }

    #[test]
    fn learned_peers_fill_up_to_the_minimum_and_bad_or_banned_ones_are_skipped() {
        let (a, b, c, d) = (PeerId::random(), PeerId::random(), PeerId::random(), PeerId::random());
        let mut dialer = Dialer::new([addr(&a, 1)], 2, 1);
        assert_eq!(dialer.due(0).len(), 1);
        dialer.connected(a, &addr(&a, 1));
        dialer.ban(d);
        let learned = dialer.learn([
            addr(&b, 2).to_string(),
            addr(&c, 3).to_string(),
            "not an address".into(),
            "/ip4/127.0.0.1/tcp/9".into(), // no peer id
            addr(&d, 4).to_string(),       // banned
            addr(&b, 2).to_string(),       // known
        ]);
        assert_eq!(learned, 2);
        // One connected of two: learned peers are dialled.
        assert_eq!(dialer.due(10), vec![addr(&b, 2), addr(&c, 3)]);
        dialer.connected(b, &addr(&b, 2));
        dialer.failed(Some(c), 20);
        // Enough peers: learned ones wait.
        assert!(dialer.due(100_000).is_empty());
        // Bounded: at most MAX_LEARNED learned addresses.
        let many: Vec<String> = (0..200)
            .map(|i| addr(&PeerId::random(), 1000 + i).to_string())
            .collect();
        dialer.learn(many);
        assert_eq!(
            dialer.addresses().iter().filter(|(_, s)| *s == Source::Learned).count(),
            MAX_LEARNED
        );
    }

    #[test]
    fn only_this_builds_transports_are_learned() {
        let p = PeerId::random();
        let tcp: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{p}").parse().unwrap();
        let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{p}").parse().unwrap();
        assert!(dialable_here(&tcp));
        assert!(!dialable_here(&ws));
        let mut dialer = Dialer::new([], 1, 1).with_filter(dialable_here);
        assert_eq!(dialer.learn([ws.to_string(), tcp.to_string()]), 1);
    }
}
