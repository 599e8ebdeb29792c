//! The sans-IO sync state machine: a trusted state, the peers, and the
//! events for the user. Every input is verified with `tiernet_core::verify`
//! before it changes anything; a peer whose data does not verify is marked
//! rejected (the caller disconnects it) and an event says why.

use std::collections::{BTreeMap, VecDeque};

use libp2p::PeerId;
use tiernet_core::genesis::Genesis;
use tiernet_core::hash::Hash32;
use tiernet_core::verify::{self, TrustedState, VerifyError};
use tiernet_core::wire::proto::{self, sync_response};
use tiernet_core::wire::sign::header_hash;
use tiernet_core::wire::{NetworkId, proto::SyncResponse};

/// Most events kept for the user (the oldest are dropped first).
pub const MAX_EVENTS: usize = 1024;

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
    peers: BTreeMap<PeerId, PeerStatus>,
    events: VecDeque<Event>,
}

impl LightSync {
    /// A machine trusting `checkpoint` on `network`.
    pub fn new(network: NetworkId, checkpoint: Checkpoint) -> Self {
        Self {
            network,
            trusted: checkpoint.state.clone(),
            checkpoint: checkpoint.state,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
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
            self.emit(Event::PeerConnected(peer));
        }
    }

    /// A peer disconnected.
    pub fn handle_disconnected(&mut self, peer: PeerId) {
        if self.peers.get(&peer) == Some(&PeerStatus::Usable) {
            self.peers.remove(&peer);
            self.emit(Event::PeerDisconnected(peer));
        }
    }

    /// Marks `peer` rejected for `reason` (the caller disconnects it).
    pub fn reject(&mut self, peer: PeerId, reason: String) {
        self.peers.insert(peer, PeerStatus::Rejected);
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
        self.trusted = next;
        let head = self.head();
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
    /// (`NotEnoughTrust`); older ones are ignored.
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
        match verify::verify_next(&self.trusted, &signed, next, &self.network) {
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
