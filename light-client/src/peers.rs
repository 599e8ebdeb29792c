//! The peers a client has met, as an app shows them: state, transports of
//! the open connections, last address and why a peer was rejected.
//!
//! [`PeerBook`] is kept by [`crate::LightClient`] from transport events and
//! the sync machine's rejections; every binding (wasm, uniffi) lists it
//! through [`crate::LightClient::peer_infos`] with the same fields. It is
//! bounded: at most [`MAX_TRACKED_PEERS`] peers, the longest-idle
//! disconnected (then rejected) peer is forgotten first, and at most
//! [`MAX_ADDRESSES_PER_PEER`] open-connection addresses per peer.

use std::collections::BTreeMap;

use libp2p::{Multiaddr, PeerId};

/// Most peers remembered.
pub const MAX_TRACKED_PEERS: usize = 256;
/// Most open-connection addresses remembered per peer.
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Where a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerState {
    /// At least one connection is open.
    Connected,
    /// No connection is open; it may be redialled.
    Disconnected,
    /// It served data that does not verify: never asked or dialled again.
    Rejected,
}

impl PeerState {
    /// `connected`, `disconnected` or `rejected`.
    pub const fn label(self) -> &'static str {
        match self {
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Rejected => "rejected",
        }
    }
}

/// The transport of a connection, read from its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TransportKind {
    /// `/tcp/…/ws` or `/wss`.
    WebSocket,
    /// `/udp/…/webrtc-direct`.
    WebRtcDirect,
    /// Plain `/tcp`.
    Tcp,
    /// Anything else.
    Other,
}

impl TransportKind {
    /// The transport of `address`.
    pub fn of(address: &Multiaddr) -> Self {
        use libp2p::multiaddr::Protocol;
        let mut tcp = false;
        for protocol in address.iter() {
            match protocol {
                Protocol::WebRTCDirect => return TransportKind::WebRtcDirect,
                Protocol::Ws(_) | Protocol::Wss(_) => return TransportKind::WebSocket,
                Protocol::Tcp(_) => tcp = true,
                _ => {}
            }
        }
        if tcp { TransportKind::Tcp } else { TransportKind::Other }
    }

    /// `websocket`, `webrtc-direct`, `tcp` or `other`.
    pub const fn label(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "websocket",
            TransportKind::WebRtcDirect => "webrtc-direct",
            TransportKind::Tcp => "tcp",
            TransportKind::Other => "other",
        }
    }
}

/// One peer as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer: PeerId,
    /// Where it stands.
    pub state: PeerState,
    /// The transports of its open connections (sorted, no repeats).
    pub transports: Vec<TransportKind>,
    /// The last remote address it was connected at.
    pub address: Option<Multiaddr>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    state: PeerState,
    open: Vec<Multiaddr>,
    address: Option<Multiaddr>,
    reason: Option<String>,
    /// When it last changed, in updates (for eviction).
    touched: u64,
}

/// The peers met so far (bounded; see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PeerBook {
    known: BTreeMap<PeerId, Entry>,
    updates: u64,
}

impl PeerBook {
    /// A connection to `peer` at `address` opened.
    pub fn connected(&mut self, peer: PeerId, address: &Multiaddr) {
        let entry = self.entry(peer);
        if entry.state != PeerState::Rejected {
            entry.state = PeerState::Connected;
        }
        if entry.open.len() < MAX_ADDRESSES_PER_PEER {
            entry.open.push(address.clone());
        }
        entry.address = Some(address.clone());
    }

    /// A connection to `peer` at `address` closed; `remaining` are still open.
    pub fn disconnected(&mut self, peer: PeerId, address: &Multiaddr, remaining: u32) {
        let entry = self.entry(peer);
        if let Some(i) = entry.open.iter().position(|a| a == address) {
            entry.open.remove(i);
        }
        if remaining == 0 {
            entry.open.clear();
            if entry.state != PeerState::Rejected {
                entry.state = PeerState::Disconnected;
            }
        }
    }

    /// `peer` served data that does not verify.
    pub fn rejected(&mut self, peer: PeerId, reason: &str) {
        let entry = self.entry(peer);
        entry.state = PeerState::Rejected;
        entry.reason = Some(reason.to_owned());
    }

    /// Every peer, by PeerId.
    pub fn list(&self) -> Vec<PeerInfo> {
        self.known
            .iter()
            .map(|(peer, entry)| {
                let mut transports: Vec<TransportKind> = entry.open.iter().map(TransportKind::of).collect();
                transports.sort_unstable();
                transports.dedup();
                PeerInfo {
                    peer: *peer,
                    state: entry.state,
                    transports,
                    address: entry.address.clone(),
                    reason: entry.reason.clone(),
                }
            })
            .collect()
    }

    /// Number of peers remembered.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// True when no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    fn entry(&mut self, peer: PeerId) -> &mut Entry {
        self.updates += 1;
        if !self.known.contains_key(&peer) && self.known.len() >= MAX_TRACKED_PEERS {
            self.evict();
        }
        let touched = self.updates;
        let entry = self.known.entry(peer).or_insert_with(|| Entry {
            state: PeerState::Disconnected,
            open: Vec::new(),
            address: None,
            reason: None,
            touched,
        });
        entry.touched = touched;
        entry
    }

    /// Forgets the longest-idle disconnected peer, else the longest-idle
    /// rejected one, else the longest-idle one.
    fn evict(&mut self) {
        let victim = self
            .known
            .iter()
            .min_by_key(|(_, e)| {
                let rank = match e.state {
                    PeerState::Disconnected => 0,
                    PeerState::Rejected => 1,
                    PeerState::Connected => 2,
                };
                (rank, e.touched)
            })
            .map(|(peer, _)| *peer);
        if let Some(peer) = victim {
            self.known.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn transports_are_read_from_addresses() {
        assert_eq!(
            TransportKind::of(&addr("/ip4/1.2.3.4/tcp/1/ws")),
            TransportKind::WebSocket
        );
        assert_eq!(
            TransportKind::of(&addr("/ip4/1.2.3.4/udp/1/webrtc-direct")),
            TransportKind::WebRtcDirect
        );
        assert_eq!(TransportKind::of(&addr("/ip4/1.2.3.4/tcp/1")), TransportKind::Tcp);
        assert_eq!(
            TransportKind::of(&addr("/ip4/1.2.3.4/udp/1/quic-v1")),
            TransportKind::Other
        );
    }

    #[test]
    fn a_peer_goes_connected_disconnected_and_stays_rejected() {
        let mut book = PeerBook::default();
        let peer = PeerId::random();
        let ws = addr("/ip4/1.2.3.4/tcp/1/ws");
        let tcp = addr("/ip4/1.2.3.4/tcp/2");
        book.connected(peer, &ws);
        book.connected(peer, &tcp);
        let info = &book.list()[0];
        assert_eq!(info.state, PeerState::Connected);
        assert_eq!(info.transports, [TransportKind::WebSocket, TransportKind::Tcp]);
        assert_eq!(info.address.as_ref(), Some(&tcp));
        book.disconnected(peer, &tcp, 1);
        assert_eq!(book.list()[0].transports, [TransportKind::WebSocket]);
        book.disconnected(peer, &ws, 0);
        let info = &book.list()[0];
        assert_eq!(info.state, PeerState::Disconnected);
        assert!(info.transports.is_empty());
        book.rejected(peer, "bad commit");
        book.connected(peer, &ws);
        let info = &book.list()[0];
        assert_eq!(info.state, PeerState::Rejected, "a rejected peer stays rejected");
        assert_eq!(info.reason.as_deref(), Some("bad commit"));
    }

    #[test]
    fn the_book_is_bounded_and_forgets_idle_disconnected_peers_first() {
        let mut book = PeerBook::default();
        let a = addr("/ip4/1.2.3.4/tcp/1");
        let connected = PeerId::random();
        book.connected(connected, &a);
        let rejected = PeerId::random();
        book.rejected(rejected, "forged");
        let mut gone = Vec::new();
        for _ in 0..MAX_TRACKED_PEERS {
            let peer = PeerId::random();
            book.connected(peer, &a);
            book.disconnected(peer, &a, 0);
            gone.push(peer);
        }
        assert_eq!(book.len(), MAX_TRACKED_PEERS);
        let listed: Vec<PeerId> = book.list().iter().map(|p| p.peer).collect();
        assert!(listed.contains(&connected));
        assert!(listed.contains(&rejected));
        assert!(
            !listed.contains(&gone[0]) && !listed.contains(&gone[1]),
            "the oldest went first"
        );
        for _ in 0..MAX_ADDRESSES_PER_PEER + 5 {
            book.connected(connected, &a);
        }
        let info = book.list().into_iter().find(|p| p.peer == connected).unwrap();
        assert_eq!(info.transports, [TransportKind::Tcp]);
    }
}
