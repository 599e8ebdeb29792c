//! The sans-IO sync state machine: a trusted state, the peers, and the
//! events for the user. Every input is verified with `tiernet_core::verify`
//! before it changes anything; a peer whose data does not verify is marked
//! rejected (the caller disconnects it) and an event says why.
//!
//! The machine plans its own requests: the driver calls
//! [`LightSync::poll_request`] and hands every answer back with
//! [`LightSync::handle_response`]`(id, response, now)`; it never waits inside
//! its loop. Time is an input (`now_ms`, ms since the Unix epoch):
//!
//! - **Staleness.** A head whose block time is older than
//!   [`Freshness::max_head_age_ms`] on the local clock is [`SyncStatus::Stale`],
//!   never current; a trusted state older than the trusting period is
//!   [`SyncStatus::Expired`].
//! - **Agreement.** "Up to date" ([`SyncStatus::Current`]) needs a fresh head
//!   that at least `min(`[`Freshness::min_agreeing_peers`]`, connected)` peers
//!   vouched for with verified data: a chain proof that reached it, a block
//!   they forwarded, or a confirmation (a chain proof from the state before
//!   the head to the head). A peer's "nothing newer" is not agreement.
//! - **Evidence.** Two verified headers at one height with different hashes
//!   are a fork signed by the trusted validators: [`Event::Conflict`], and
//!   the status stays [`SyncStatus::Conflicting`].
//! - **Gossip.** [`LightSync::handle_gossip`] says what GossipSub should do
//!   with a block: [`GossipVerdict::Accept`] (forward) only for a block it
//!   verified, [`GossipVerdict::Reject`] (and blame the peer) only for data
//!   invalid for everyone, [`GossipVerdict::Ignore`] for anything it cannot
//!   judge (old, ahead of the head, not enough trust).
//! - **Stalls.** No verified head for [`Freshness::stall_after_ms`] while
//!   not current: [`Event::Stalled`] (the driver redials and asks others).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use libp2p::PeerId;
use tiernet_core::chain::SignatureCheck;
use tiernet_core::genesis::Genesis;
use tiernet_core::hash::Hash32;
use tiernet_core::verify::{self, TrustedState, VerifyError};
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tiernet_core::wire::sign::header_hash;
use tiernet_core::wire::{NetworkId, proto::SyncResponse};

/// Most events kept for the user (the oldest are dropped first).
pub const MAX_EVENTS: usize = 1024;
/// Most requests the machine keeps in flight at once.
pub const MAX_PLANNED_IN_FLIGHT: usize = 8;
/// A planned request not answered within this long is forgotten (the
/// transport times out sooner; this bounds the table).
pub const PLANNED_REQUEST_EXPIRY_MS: u64 = 15_000;
/// Verified heads remembered for conflict detection.
pub const HISTORY: usize = 256;
/// A peer whose request failed is not asked again for this long.
pub const PEER_BACKOFF_MS: u64 = 2_000;
/// The same peer is asked to confirm the head at most this often.
pub const CONFIRM_INTERVAL_MS: u64 = 1_000;
/// Most peer addresses one "get peers" answer may carry (more is garbage).
pub const MAX_LEARNED_PER_ANSWER: usize = 32;
/// Longest multiaddr accepted from a peer, in bytes of text.
pub const MAX_ADDR_LEN: usize = 256;

/// The clock rules of the client (all in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// A head whose block time is older than this on the local clock is
    /// stale. Default 60 s.
    pub max_head_age_ms: u64,
    /// A trusted state older than this no longer vouches for anything new
    /// (tendermint-rs' trusting period): persisted trust older than it is
    /// not used, and the status says [`SyncStatus::Expired`]. Default 7 days.
    pub trusting_period_ms: u64,
    /// Peers that must vouch for the head (when that many are connected)
    /// before it is current. Default 2.
    pub min_agreeing_peers: usize,
    /// A peer is asked for newer heads at least this often, even while
    /// gossip flows (gossip alone could be eclipsed). Default 3 s.
    pub poll_interval_ms: u64,
    /// No verified head for this long while not current: stalled. Default 10 s.
    pub stall_after_ms: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            max_head_age_ms: 60_000,
            trusting_period_ms: 7 * 24 * 60 * 60 * 1000,
            min_agreeing_peers: 2,
            poll_interval_ms: 3_000,
            stall_after_ms: 10_000,
        }
    }
}

/// How far the client can vouch for its head right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// The head is fresh but not yet vouched for by enough peers.
    Syncing,
    /// The head is fresh and vouched for by enough peers: up to date.
    Current,
    /// No usable peer is connected (the head is fresh).
    NoPeers,
    /// The head's block time is `age_ms` old, more than the maximum head
    /// age: the chain stopped, or the client is cut off or eclipsed.
    Stale {
        /// Age of the head's block time on the local clock.
        age_ms: u64,
    },
    /// The trusted state is older than the trusting period.
    Expired {
        /// Age of the trusted header's block time on the local clock.
        age_ms: u64,
    },
    /// Two verified headers at `height` differ: evidence of a fork signed
    /// by trusted validators ([`Event::Conflict`]); nothing is current.
    Conflicting {
        /// The height of the conflict.
        height: u64,
    },
}

impl SyncStatus {
    /// A short label (`current`, `stale`, …).
    pub fn label(&self) -> &'static str {
        match self {
            SyncStatus::Syncing => "syncing",
            SyncStatus::Current => "current",
            SyncStatus::NoPeers => "no-peers",
            SyncStatus::Stale { .. } => "stale",
            SyncStatus::Expired { .. } => "expired",
            SyncStatus::Conflicting { .. } => "conflicting",
        }
    }
}

/// What GossipSub should do with a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Verified: forward it.
    Accept,
    /// Cannot judge (old, ahead, not enough trust, not for a light
    /// client): do not forward, blame no one.
    Ignore,
    /// Invalid for every receiver at every time: do not forward, and the
    /// propagation source is blamed.
    Reject,
}

/// A request's id, unique per machine.
pub type RequestId = u64;

/// A request the machine wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    /// Hand it back with the answer.
    pub id: RequestId,
    /// Who to ask.
    pub peer: PeerId,
    /// What to ask.
    pub request: proto::SyncRequest,
}

#[derive(Debug, Clone)]
enum Purpose {
    /// A chain proof from the head to the peer's latest.
    Advance { from: u64 },
    /// A chain proof from `base` to the head's height: the peer vouches.
    Confirm { base: Box<TrustedState>, target: u64 },
    /// Other full nodes' addresses.
    Peers,
}

#[derive(Debug, Clone)]
struct InFlight {
    peer: PeerId,
    purpose: Purpose,
    sent_ms: u64,
}

/// Where trust starts: the genesis, or a header the user already trusts
/// with the validator set that signs the height after it. A client cannot
/// be built without one.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub(crate) state: TrustedState,
}

impl Checkpoint {
    /// Trust the chain's genesis.
    pub fn genesis(genesis: &Genesis) -> Result<Self, VerifyError> {
        Ok(Self {
            state: TrustedState::from_genesis(genesis)?,
        })
    }

    /// Trust `header`, whose next height is signed by `next_validators`
    /// (it must hash to `header.next_validators_hash`).
    pub fn header(header: proto::Header, next_validators: &proto::ValidatorSet) -> Result<Self, VerifyError> {
        Ok(Self {
            state: TrustedState::from_header(header)?.with_next_validators(next_validators)?,
        })
    }

    /// The trusted height (0 for the genesis).
    pub fn height(&self) -> u64 {
        self.state.height()
    }
}

impl From<TrustedState> for Checkpoint {
    /// Trust a state verified elsewhere (e.g. a client's own earlier head).
    fn from(state: TrustedState) -> Self {
        Self { state }
    }
}

/// The latest verified header, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHead {
    /// Height (0: only the checkpoint is trusted so far).
    pub height: u64,
    /// Header hash.
    pub hash: Hash32,
    /// State root after this block.
    pub state_root: Hash32,
    /// The header's time, ms since the Unix epoch.
    pub time_ms: u64,
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new head was verified.
    HeadVerified(VerifiedHead),
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer disconnected.
    PeerDisconnected(PeerId),
    /// A peer served data that does not verify: it is dropped.
    PeerRejected {
        /// The peer.
        peer: PeerId,
        /// What did not verify.
        reason: String,
    },
    /// A dial failed (the transport reports it; the machine never sees it).
    DialFailed {
        /// The peer dialled, when known.
        peer: Option<PeerId>,
        /// Why.
        reason: String,
    },
    /// The status changed (stale, current, …).
    Status(SyncStatus),
    /// Two verified headers at one height differ: a fork signed by
    /// validators the client trusts. Reported, never resolved silently.
    Conflict {
        /// The height.
        height: u64,
        /// The hash the client had verified.
        ours: Hash32,
        /// The other verified hash.
        theirs: Hash32,
        /// The peer that served the other one.
        peer: PeerId,
    },
    /// No verified head for a while and not current: the client redials
    /// and asks other peers.
    Stalled {
        /// Ms since the last verified head (or the start).
        since_ms: u64,
    },
    /// Progress of long work (a snapshot): `done` of `total` steps.
    SyncProgress {
        /// What is being done.
        what: String,
        /// Steps done.
        done: u64,
        /// Steps in all.
        total: u64,
    },
}

/// What a peer is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Connected and trusted to answer (not trusted with the truth).
    Usable,
    /// Served bad data: never asked again.
    Rejected,
}

/// Why a response was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The peer answered with an error.
    #[error("peer {peer} answered: {message}")]
    Remote {
        /// The peer.
        peer: PeerId,
        /// Its error code and message.
        message: String,
    },
    /// The peer answered with another kind of response.
    #[error("peer {peer} answered a {expected} request with something else")]
    Unexpected {
        /// The peer.
        peer: PeerId,
        /// What was asked.
        expected: &'static str,
    },
    /// The data does not verify (the peer is rejected).
    #[error("peer {peer} served data that does not verify: {error}")]
    Invalid {
        /// The peer.
        peer: PeerId,
        /// Why.
        error: Box<VerifyError>,
    },
    /// The data breaks the protocol (the peer is rejected).
    #[error("peer {peer} served a malformed answer: {what}")]
    Malformed {
        /// The peer.
        peer: PeerId,
        /// What is wrong.
        what: &'static str,
    },
    /// A block beyond the next height: a chain proof must bridge the gap.
    #[error("block {height} from peer {peer} is beyond the next height {next}; a chain proof is needed")]
    Behind {
        /// The peer.
        peer: PeerId,
        /// The block's height.
        height: u64,
        /// The height we can verify next.
        next: u64,
    },
    /// The answer is proven at another header than our verified head (the
    /// head moved on, or the peer lags): ask again.
    #[error("peer {peer} proved the state at height {served}, not at the verified head {head}")]
    OtherHeight {
        /// The peer.
        peer: PeerId,
        /// The height it answered at.
        served: u64,
        /// Our head.
        head: u64,
    },
    /// A chain proof from a height our head has already moved past (a
    /// gossiped block arrived while asking): not the peer's fault.
    #[error("peer {peer} proved the chain from height {from}, but the head has moved on to {head}")]
    Superseded {
        /// The peer.
        peer: PeerId,
        /// Where its proof starts.
        from: u64,
        /// Our head.
        head: u64,
    },
    /// Nothing past the checkpoint is verified yet.
    #[error("no header is verified yet")]
    NoVerifiedHead,
    /// The data is consistent but our trusted state cannot vouch for it
    /// (e.g. it skips a validator-set change): ask for a chain proof.
    #[error("not enough trust for peer {peer}'s data: {error}")]
    NotEnoughTrust {
        /// The peer.
        peer: PeerId,
        /// Why.
        error: Box<VerifyError>,
    },
}

/// The sync state machine.
#[derive(Debug)]
pub struct LightSync {
    network: NetworkId,
    checkpoint: TrustedState,
    trusted: TrustedState,
    /// The state the head was verified from (a confirmation proves the
    /// head from it).
    previous: Option<TrustedState>,
    peers: BTreeMap<PeerId, PeerStatus>,
    events: VecDeque<Event>,
    freshness: Freshness,
    /// Verified (height, hash), oldest first, at most [`HISTORY`].
    history: VecDeque<(u64, Hash32)>,
    /// Per peer: the height and block time of the latest head it vouched for.
    agreed: BTreeMap<PeerId, (u64, u64)>,
    in_flight: BTreeMap<RequestId, InFlight>,
    next_id: RequestId,
    /// When the next chain-proof request to advance is due.
    advance_due_ms: u64,
    /// Peers not asked until the given time (their last request failed).
    backoff: BTreeMap<PeerId, u64>,
    /// When each peer was last asked to confirm.
    confirm_asked: BTreeMap<PeerId, u64>,
    /// Peers asked for addresses already.
    peers_asked: BTreeSet<PeerId>,
    /// Addresses learned from peers, for the dialer.
    learned: VecDeque<String>,
    /// Latest `now_ms` seen.
    now_ms: u64,
    /// When the head last advanced (or the machine started).
    progress_ms: u64,
    stalled: bool,
    conflict: Option<u64>,
    last_status: Option<SyncStatus>,
    turn: usize,
}

impl LightSync {
    /// A machine trusting `checkpoint` on `network`.
    pub fn new(network: NetworkId, checkpoint: Checkpoint) -> Self {
        Self {
            network,
            trusted: checkpoint.state.clone(),
            checkpoint: checkpoint.state,
            previous: None,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            freshness: Freshness::default(),
            history: VecDeque::new(),
            agreed: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_id: 1,
            advance_due_ms: 0,
            backoff: BTreeMap::new(),
            confirm_asked: BTreeMap::new(),
            peers_asked: BTreeSet::new(),
            learned: VecDeque::new(),
            now_ms: 0,
            progress_ms: 0,
            stalled: false,
            conflict: None,
            last_status: None,
            turn: 0,
        }
    }

    /// Continues from `state`, a trusted state verified earlier (persisted
    /// trust); the checkpoint stays what it was. Ignored unless it is above
    /// the current trusted height.
    pub fn resume(&mut self, state: TrustedState) -> bool {
        if state.height() <= self.trusted.height() {
            return false;
        }
        self.trusted = state;
        self.previous = None;
        self.history.clear();
        let head = self.head();
        self.history.push_back((head.height, head.hash));
        self.agreed.clear();
        self.advance_due_ms = 0;
        true
    }

    /// Sets the clock rules.
    pub fn with_freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The clock rules.
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// Whether `state` is within the trusting period at `now_ms` (a state
    /// without a header, the genesis, always is).
    pub fn within_trusting_period(&self, state: &TrustedState, now_ms: u64) -> bool {
        state.header().is_none() || now_ms.saturating_sub(state.time_ms()) <= self.freshness.trusting_period_ms
    }

    /// The status at `now_ms` (see [`SyncStatus`]).
    pub fn status(&self, now_ms: u64) -> SyncStatus {
        if let Some(height) = self.conflict {
            return SyncStatus::Conflicting { height };
        }
        let head = self.head();
        let age_ms = now_ms.saturating_sub(self.trusted.time_ms());
        if head.height > 0 && age_ms > self.freshness.trusting_period_ms {
            return SyncStatus::Expired { age_ms };
        }
        let usable = self.usable_peers();
        if head.height == 0 {
            // Nothing verified past the checkpoint yet.
            return if usable.is_empty() {
                SyncStatus::NoPeers
            } else {
                SyncStatus::Syncing
            };
        }
        if age_ms > self.freshness.max_head_age_ms {
            return SyncStatus::Stale { age_ms };
        }
        if usable.is_empty() {
            return SyncStatus::NoPeers;
        }
        let needed = self.freshness.min_agreeing_peers.clamp(1, usable.len().max(1));
        if self.agreeing(now_ms) >= needed {
            SyncStatus::Current
        } else {
            SyncStatus::Syncing
        }
    }

    /// Usable peers that vouched for a head that is still fresh at `now_ms`.
    fn agreeing(&self, now_ms: u64) -> usize {
        self.agreed
            .iter()
            .filter(|(peer, (_, time_ms))| {
                self.peers.get(peer) == Some(&PeerStatus::Usable)
                    && now_ms.saturating_sub(*time_ms) <= self.freshness.max_head_age_ms
            })
            .count()
    }

    /// Peers that vouched for the current head, with the height each
    /// vouched for last.
    pub fn agreement(&self) -> Vec<(PeerId, u64)> {
        self.agreed.iter().map(|(p, (h, _))| (*p, *h)).collect()
    }

    fn vouch(&mut self, peer: PeerId) {
        let head = self.head();
        self.agreed.insert(peer, (head.height, head.time_ms));
    }

    /// Remembers `(height, hash)`; a different hash at a known height is a
    /// conflict (both verified): reported, and the status stays conflicting.
    fn check_conflict(&mut self, peer: PeerId, height: u64, hash: Hash32) -> bool {
        let ours = self.history.iter().find(|(h, _)| *h == height).map(|(_, x)| *x);
        match ours {
            Some(ours) if ours != hash => {
                tracing::warn!(%peer, height, %ours, theirs = %hash, "conflicting verified headers");
                self.conflict = Some(height);
                self.emit(Event::Conflict {
                    height,
                    ours,
                    theirs: hash,
                    peer,
                });
                true
            }
            _ => false,
        }
    }

    /// Moves the clock on: expires forgotten requests, detects a stall and
    /// reports a changed status. Call it every few hundred ms.
    pub fn tick(&mut self, now_ms: u64) {
        self.observe(now_ms);
        let expired: Vec<RequestId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now_ms.saturating_sub(f.sent_ms) > PLANNED_REQUEST_EXPIRY_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(f) = self.in_flight.remove(&id) {
                self.backoff.insert(f.peer, now_ms.saturating_add(PEER_BACKOFF_MS));
            }
        }
        let status = self.status(now_ms);
        let since_ms = now_ms.saturating_sub(self.progress_ms);
        if status != SyncStatus::Current && since_ms > self.freshness.stall_after_ms {
            if !self.stalled {
                self.stalled = true;
                self.advance_due_ms = now_ms;
                self.backoff.clear();
                self.emit(Event::Stalled { since_ms });
            }
        } else {
            self.stalled = false;
        }
        self.report_status(now_ms);
    }

    fn observe(&mut self, now_ms: u64) {
        if self.progress_ms == 0 {
            self.progress_ms = now_ms;
        }
        self.now_ms = self.now_ms.max(now_ms);
    }

    fn report_status(&mut self, now_ms: u64) {
        let status = self.status(now_ms);
        // Ages change every tick: compare the kind only.
        if self.last_status.map(|s| s.label()) != Some(status.label()) {
            self.last_status = Some(status);
            self.emit(Event::Status(status));
        }
    }

    /// Whether the machine is stalled (no verified head for a while).
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// Addresses learned from peers since the last call (unverified: the
    /// dialer tries them; whoever answers must still prove everything).
    pub fn take_learned(&mut self) -> Vec<String> {
        self.learned.drain(..).collect()
    }

    fn pick_peer(&mut self, now_ms: u64, ok: impl Fn(&Self, &PeerId) -> bool) -> Option<PeerId> {
        let candidates: Vec<PeerId> = self
            .usable_peers()
            .into_iter()
            .filter(|p| self.backoff.get(p).is_none_or(|until| *until <= now_ms))
            .filter(|p| !self.in_flight.values().any(|f| f.peer == *p))
            .filter(|p| ok(self, p))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        self.turn = self.turn.wrapping_add(1);
        Some(candidates[self.turn % candidates.len()])
    }

    fn plan(&mut self, peer: PeerId, purpose: Purpose, now_ms: u64) -> PlannedRequest {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let kind = match &purpose {
            Purpose::Advance { from } => sync_request::Kind::ChainProof(proto::ChainProofRequest {
                trusted_height: *from,
                target_height: 0,
            }),
            Purpose::Confirm { base, target } => sync_request::Kind::ChainProof(proto::ChainProofRequest {
                trusted_height: base.height(),
                target_height: *target,
            }),
            Purpose::Peers => sync_request::Kind::Peers(proto::PeersRequest {}),
        };
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                purpose,
                sent_ms: now_ms,
            },
        );
        PlannedRequest {
            id,
            peer,
            request: proto::SyncRequest { kind: Some(kind) },
        }
    }

    /// The next request the machine wants sent, if any (call until `None`
    /// after every input): a chain proof to advance (due at start, on a
    /// gap, after a stall and every poll interval), a confirmation of the
    /// head by a peer that has not vouched for it, and once per peer a
    /// "get peers".
    pub fn poll_request(&mut self, now_ms: u64) -> Option<PlannedRequest> {
        self.observe(now_ms);
        if self.in_flight.len() >= MAX_PLANNED_IN_FLIGHT {
            return None;
        }
        let advancing = self
            .in_flight
            .values()
            .any(|f| matches!(f.purpose, Purpose::Advance { .. }));
        if !advancing
            && now_ms >= self.advance_due_ms
            && let Some(peer) = self.pick_peer(now_ms, |_, _| true)
        {
            self.advance_due_ms = now_ms.saturating_add(self.freshness.poll_interval_ms);
            let from = self.trusted.height();
            return Some(self.plan(peer, Purpose::Advance { from }, now_ms));
        }
        let head = self.head();
        let usable = self.usable_peers().len();
        let needed = self.freshness.min_agreeing_peers.clamp(1, usable.max(1));
        if head.height > 0 && self.agreeing(now_ms) < needed {
            let base = self.previous.clone().unwrap_or_else(|| self.checkpoint.clone());
            if base.height() < head.height {
                let target = head.height;
                let pick = self.pick_peer(now_ms, |m, p| {
                    m.agreed.get(p).is_none_or(|(h, _)| *h < target)
                        && m.confirm_asked
                            .get(p)
                            .is_none_or(|at| now_ms.saturating_sub(*at) >= CONFIRM_INTERVAL_MS)
                });
                if let Some(peer) = pick {
                    self.confirm_asked.insert(peer, now_ms);
                    let purpose = Purpose::Confirm {
                        base: Box::new(base),
                        target,
                    };
                    return Some(self.plan(peer, purpose, now_ms));
                }
            }
        }
        if let Some(peer) = self.pick_peer(now_ms, |m, p| !m.peers_asked.contains(p)) {
            self.peers_asked.insert(peer);
            return Some(self.plan(peer, Purpose::Peers, now_ms));
        }
        None
    }

    /// The answer to planned request `id` (`Err`: the transport failed).
    /// Verifies it, moves the head, records who vouched, blames liars.
    pub fn handle_response(&mut self, id: RequestId, response: Result<SyncResponse, String>, now_ms: u64) {
        self.observe(now_ms);
        let Some(flight) = self.in_flight.remove(&id) else {
            return;
        };
        let peer = flight.peer;
        let response = match response {
            Ok(r) => r,
            Err(reason) => {
                tracing::debug!(%peer, %reason, "request failed");
                self.backoff.insert(peer, now_ms.saturating_add(PEER_BACKOFF_MS));
                if matches!(flight.purpose, Purpose::Advance { .. }) {
                    self.advance_due_ms = now_ms;
                }
                return;
            }
        };
        if self.peers.get(&peer) == Some(&PeerStatus::Rejected) {
            return;
        }
        match flight.purpose {
            Purpose::Advance { from } => self.on_advance(peer, from, response, now_ms),
            Purpose::Confirm { base, target } => self.on_confirm(peer, &base, target, response, now_ms),
            Purpose::Peers => self.on_peers(peer, response),
        }
        self.report_status(now_ms);
    }

    fn on_advance(&mut self, peer: PeerId, from: u64, response: SyncResponse, now_ms: u64) {
        let stale_head = !matches!(self.status(now_ms), SyncStatus::Current | SyncStatus::Syncing);
        let retry_ms = if stale_head {
            500
        } else {
            self.freshness.poll_interval_ms
        };
        match &response.kind {
            Some(sync_response::Kind::ChainProof(proof)) => {
                if proof.trusted_height != from {
                    self.reject(peer, "chain proof from another height than asked".into());
                    self.advance_due_ms = now_ms;
                    return;
                }
                if from < self.trusted.height() {
                    // The head moved on while asking: nothing to take.
                    return;
                }
                match verify::verify_chain_proof(&self.trusted, proof, &self.network) {
                    Ok(next) => {
                        if self.advance(next) {
                            self.vouch(peer);
                        }
                    }
                    Err(error) => {
                        let _ = self.judge(peer, error);
                        self.advance_due_ms = now_ms;
                    }
                }
            }
            Some(sync_response::Kind::Error(e)) if e.code == proto::SyncErrorCode::NotFound as i32 => {
                // "Nothing newer": not agreement (it proves nothing); ask
                // another peer soon if the head is not fresh.
                self.advance_due_ms = now_ms.saturating_add(retry_ms);
            }
            Some(sync_response::Kind::Error(_)) => {
                self.backoff.insert(peer, now_ms.saturating_add(PEER_BACKOFF_MS));
                self.advance_due_ms = now_ms;
            }
            _ => {
                self.reject(peer, "answered a chain-proof request with another kind".into());
                self.advance_due_ms = now_ms;
            }
        }
    }

    fn on_confirm(&mut self, peer: PeerId, base: &TrustedState, target: u64, response: SyncResponse, now_ms: u64) {
        match &response.kind {
            Some(sync_response::Kind::ChainProof(proof)) => {
                if proof.trusted_height != base.height() {
                    self.reject(peer, "chain proof from another height than asked".into());
                    return;
                }
                match verify::verify_chain_proof(base, proof, &self.network) {
                    Ok(state) if state.height() == target => {
                        let hash = state.hash();
                        if !self.check_conflict(peer, target, hash) && self.trusted.height() == target {
                            self.vouch(peer);
                        } else if self.trusted.height() > target
                            && self.history.iter().any(|(h, x)| *h == target && *x == hash)
                        {
                            self.agreed.insert(peer, (target, state.time_ms()));
                        }
                    }
                    Ok(_) => self.reject(peer, "chain proof ends at another height than asked".into()),
                    Err(error) => {
                        let _ = self.judge(peer, error);
                    }
                }
            }
            Some(sync_response::Kind::Error(_)) => {
                // Behind, or busy: no agreement from it for now.
                self.backoff.insert(peer, now_ms.saturating_add(PEER_BACKOFF_MS));
            }
            _ => self.reject(peer, "answered a chain-proof request with another kind".into()),
        }
    }

    fn on_peers(&mut self, peer: PeerId, response: SyncResponse) {
        match response.kind {
            Some(sync_response::Kind::Peers(answer)) => {
                if answer.addrs.len() > MAX_LEARNED_PER_ANSWER {
                    self.reject(peer, format!("{} peer addresses in one answer", answer.addrs.len()));
                    return;
                }
                for addr in answer.addrs {
                    if addr.len() <= MAX_ADDR_LEN && self.learned.len() < MAX_LEARNED_PER_ANSWER * 4 {
                        self.learned.push_back(addr);
                    }
                }
            }
            // An older node without "get peers": nothing learned, no blame.
            _ => tracing::debug!(%peer, "no peer addresses from this peer"),
        }
    }

    /// A gossiped finalized block from `from`: what GossipSub should do
    /// with it. Only a block verified on top of the head is accepted.
    pub fn handle_gossip(&mut self, from: PeerId, block: &proto::FinalizedBlock, now_ms: u64) -> GossipVerdict {
        self.observe(now_ms);
        let verdict = match self.handle_block(from, block) {
            Ok(true) => {
                self.vouch(from);
                GossipVerdict::Accept
            }
            Ok(false) => GossipVerdict::Ignore,
            Err(SyncError::Behind { .. } | SyncError::NotEnoughTrust { .. }) => {
                // A gap (missed blocks, a set change): a chain proof bridges it.
                self.advance_due_ms = now_ms;
                GossipVerdict::Ignore
            }
            Err(SyncError::Invalid { .. } | SyncError::Malformed { .. }) => GossipVerdict::Reject,
            Err(_) => GossipVerdict::Ignore,
        };
        self.report_status(now_ms);
        verdict
    }

    /// Garbage on `blocks` from `from` (bytes that do not decode): the
    /// peer is blamed.
    pub fn handle_garbage(&mut self, from: PeerId, reason: String) {
        if self.peers.get(&from) == Some(&PeerStatus::Usable) {
            self.reject(from, reason);
        }
    }

    /// The network.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    /// The latest verified state.
    pub fn trusted(&self) -> &TrustedState {
        &self.trusted
    }

    /// The checkpoint the client started from.
    pub fn checkpoint(&self) -> &TrustedState {
        &self.checkpoint
    }

    /// The latest verified head.
    pub fn head(&self) -> VerifiedHead {
        head_of(&self.trusted)
    }

    /// Peers that may be asked, in a stable order.
    pub fn usable_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, s)| **s == PeerStatus::Usable)
            .map(|(p, _)| *p)
            .collect()
    }

    /// A peer's status, if known.
    pub fn peer_status(&self, peer: &PeerId) -> Option<PeerStatus> {
        self.peers.get(peer).copied()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Emits a progress event.
    pub fn progress(&mut self, what: &str, done: u64, total: u64) {
        self.emit(Event::SyncProgress {
            what: what.to_owned(),
            done,
            total,
        });
    }

    /// A peer connected (a rejected one stays rejected).
    pub fn handle_connected(&mut self, peer: PeerId) {
        if self.peers.get(&peer) != Some(&PeerStatus::Rejected) {
            self.peers.insert(peer, PeerStatus::Usable);
            self.backoff.remove(&peer);
            // A new peer: ask for newer heads now (it may know more).
            self.advance_due_ms = 0;
            self.emit(Event::PeerConnected(peer));
        }
    }

    /// A peer disconnected.
    pub fn handle_disconnected(&mut self, peer: PeerId) {
        if self.peers.get(&peer) == Some(&PeerStatus::Usable) {
            self.peers.remove(&peer);
            self.agreed.remove(&peer);
            self.peers_asked.remove(&peer);
            self.emit(Event::PeerDisconnected(peer));
        }
    }

    /// Marks `peer` rejected for `reason` (the caller disconnects it).
    pub fn reject(&mut self, peer: PeerId, reason: String) {
        self.peers.insert(peer, PeerStatus::Rejected);
        self.agreed.remove(&peer);
        self.emit(Event::PeerRejected { peer, reason });
    }

    /// Classifies a verification failure: invalid data rejects the peer.
    pub fn judge(&mut self, peer: PeerId, error: VerifyError) -> SyncError {
        if error.is_not_enough_trust() {
            SyncError::NotEnoughTrust {
                peer,
                error: Box::new(error),
            }
        } else {
            self.reject(peer, error.to_string());
            SyncError::Invalid {
                peer,
                error: Box::new(error),
            }
        }
    }

    fn advance(&mut self, next: TrustedState) -> bool {
        if next.height() <= self.trusted.height() {
            return false;
        }
        let previous = std::mem::replace(&mut self.trusted, next);
        self.previous = Some(previous);
        let head = self.head();
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((head.height, head.hash));
        self.progress_ms = self.now_ms;
        self.stalled = false;
        self.emit(Event::HeadVerified(head));
        true
    }

    /// A response to a chain-proof request from the trusted height; true
    /// when it advanced the head.
    pub fn handle_chain_proof(&mut self, peer: PeerId, response: SyncResponse) -> Result<bool, SyncError> {
        let proof = match response.kind {
            Some(sync_response::Kind::ChainProof(p)) => p,
            other => return Err(remote_or_unexpected(peer, other, "chain proof")),
        };
        // Asked before the head moved: the answer is stale, not false. (A
        // proof from above the head is judged by the verifier: invalid.)
        if proof.trusted_height < self.trusted.height() {
            return Err(SyncError::Superseded {
                peer,
                from: proof.trusted_height,
                head: self.trusted.height(),
            });
        }
        match verify::verify_chain_proof(&self.trusted, &proof, &self.network) {
            Ok(next) => Ok(self.advance(next)),
            Err(error) => Err(self.judge(peer, error)),
        }
    }

    /// A finalized block from `blocks`: the next height is verified on top
    /// of the head (true when it advanced); a later one needs a chain proof
    /// (`NotEnoughTrust`); older ones are ignored. Every signature of its
    /// commit is checked ([`SignatureCheck::All`]), not just a quorum: an
    /// accepted block is forwarded, and full nodes refuse (and blame the
    /// forwarder of) a block with any bad signature.
    pub fn handle_block(&mut self, peer: PeerId, block: &proto::FinalizedBlock) -> Result<bool, SyncError> {
        let Some(header) = block.block.as_ref().and_then(|b| b.header.as_ref()) else {
            self.reject(peer, "finalized block without a header".into());
            return Err(SyncError::Malformed {
                peer,
                what: "finalized block without a header",
            });
        };
        let next_height = self.trusted.height().saturating_add(1);
        if header.height < next_height {
            return Ok(false);
        }
        if header.height > next_height {
            return Err(SyncError::Behind {
                peer,
                height: header.height,
                next: next_height,
            });
        }
        let signed = proto::SignedHeader {
            header: Some(header.clone()),
            commit: block.commit.clone(),
        };
        let next = block.block.as_ref().and_then(|b| b.next_validators.as_ref());
        match verify::verify_next_with(&self.trusted, &signed, next, &self.network, SignatureCheck::All) {
            Ok(state) => Ok(self.advance(state)),
            Err(error) => Err(self.judge(peer, error)),
        }
    }

    /// A state value response for `key` at the head: verified against the
    /// head's `state_root` (the response's header must be the head).
    pub fn handle_state(
        &mut self,
        peer: PeerId,
        key: &[u8],
        response: SyncResponse,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let value = match response.kind {
            Some(sync_response::Kind::State(v)) => v,
            other => return Err(remote_or_unexpected(peer, other, "state")),
        };
        let Some(head) = self.trusted.header().cloned() else {
            return Err(SyncError::NoVerifiedHead);
        };
        let served = value.header.as_ref().and_then(|h| h.header.as_ref());
        if served.map(header_hash) != Some(header_hash(&head)) {
            return Err(SyncError::OtherHeight {
                peer,
                served: value.height,
                head: head.height,
            });
        }
        verify::verify_state_value(&head, key, &value).map_err(|error| self.judge(peer, error))
    }
}

/// The head a trusted state stands for.
pub fn head_of(state: &TrustedState) -> VerifiedHead {
    match state.header() {
        Some(h) => VerifiedHead {
            height: h.height,
            hash: header_hash(h),
            state_root: Hash32::from_slice(&h.state_root).unwrap_or_default(),
            time_ms: h.time_ms,
        },
        None => VerifiedHead {
            height: 0,
            hash: Hash32::default(),
            state_root: Hash32::default(),
            time_ms: 0,
        },
    }
}

/// A response that is not the expected kind: the peer's error, or a
/// protocol violation.
pub fn remote_or_unexpected(peer: PeerId, kind: Option<sync_response::Kind>, expected: &'static str) -> SyncError {
    match kind {
        Some(sync_response::Kind::Error(e)) => SyncError::Remote {
            peer,
            message: format!(
                "{:?}: {}",
                proto::SyncErrorCode::try_from(e.code).unwrap_or_default(),
                e.message
            ),
        },
        _ => SyncError::Unexpected { peer, expected },
    }
}
