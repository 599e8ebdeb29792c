//! Permissionless registration (issue 19), both sides.
//!
//! Registrant (`tiernet-node register`): the command runs `tiernet-prove`
//! first, then starts the node with a [`PendingRegistration`]. Every tick the
//! node, until its ZSI is in its ledger, sends a [`proto::SubmitProofRequest`]
//! with a freshly signed `stwo/v1` envelope (height = its chain height) to a
//! connected peer, at most every [`RETRY_MS`], trying the next peer after a
//! refusal or timeout. Once a block registers it, it prints
//! `registered: <zsi> <height>` on stdout.
//!
//! Full node: `Node::answer_submit_proof` answers a `SubmitProofRequest`
//! (already rate limited per peer as a sync request; a TL0 peer may send
//! one). The envelope is verified under the verification budget — keyed by
//! the peer, since a registrant's ZSI costs nothing — and, if it is valid and
//! new, kept in the mempool and gossiped on `proofs`; the answer says why
//! not otherwise. Without an envelope the answer only carries the height and
//! registration epoch. Gossiped `stwo/v1` envelopes go through the same
//! budget (`Node::stark_budget_allows`), keyed by the submitter when it is
//! registered and by the relay otherwise; over budget is `Ignore`.

use libp2p::PeerId;
use libp2p::request_response::OutboundRequestId;
use prost::Message;
use tiernet_core::identity::ZsiId;
use tiernet_core::proof::program::STWO_KIND;
use tiernet_core::proof::stwo::{OverBudget, VerifyBudget};
use tiernet_core::wire::limits::MAX_ERROR_MESSAGE;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{Topic, encode};
use tracing::{info, warn};

use super::Node;
use crate::consensus::chain::ProofOutcome;
use crate::sync_server;

/// How long a registrant waits for an answer (or for its registration to be
/// included) before it submits again, possibly to another peer.
pub const RETRY_MS: u64 = 5_000;

/// The budget window.
pub const BUDGET_WINDOW_MS: u64 = 10_000;
/// Proof bytes one key may have verified per window (~8 proofs of 128 KiB).
pub const BUDGET_PER_KEY: u64 = 1 << 20;
/// Proof bytes everyone together may have verified per window: with ~2 ms
/// per 128 KiB proof (tiernet-prove bench), well under 1 % of one core.
pub const BUDGET_GLOBAL: u64 = 8 << 20;
/// Keys tracked per window.
pub const BUDGET_KEYS: usize = 4_096;

/// Who pays for a verification.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetKey {
    /// A registered submitter.
    Zsi(ZsiId),
    /// The peer that sent (or relayed) an unregistered submitter's proof.
    Peer(PeerId),
}

/// The node's verification budget for `stwo/v1` proofs.
pub fn new_budget() -> VerifyBudget<BudgetKey> {
    VerifyBudget::new(BUDGET_WINDOW_MS, BUDGET_PER_KEY, BUDGET_GLOBAL, BUDGET_KEYS)
}

/// A registration this node is submitting for itself.
#[derive(Debug, Clone)]
pub struct PendingRegistration {
    /// The statement the proof is bound to.
    pub statement: proto::StarkStatement,
    /// The encoded STARK proof.
    pub proof: Vec<u8>,
    in_flight: Option<(OutboundRequestId, PeerId)>,
    last_try_ms: u64,
    next_peer: usize,
    done: bool,
}

impl PendingRegistration {
    /// A registration to submit.
    pub fn new(statement: proto::StarkStatement, proof: Vec<u8>) -> Self {
        Self {
            statement,
            proof,
            in_flight: None,
            last_try_ms: 0,
            next_peer: 0,
            done: false,
        }
    }
}

fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

impl Node {
    /// Makes this node submit `registration` once it runs (`tiernet-node register`).
    pub fn set_registration(&mut self, registration: PendingRegistration) {
        self.registration = Some(registration);
    }

    /// Whether verifying a gossiped or submitted `stwo/v1` envelope fits
    /// the budget (other kinds always do).
    pub(super) fn stark_budget_allows(
        &mut self,
        envelope: &proto::ProofEnvelope,
        peer: PeerId,
        now: u64,
    ) -> Result<(), OverBudget> {
        if envelope.kind != STWO_KIND {
            return Ok(());
        }
        let key = match ZsiId::from_slice(&envelope.submitter) {
            Some(id) if self.handshake.registry().iter().any(|(known, _)| *known == id) => BudgetKey::Zsi(id),
            _ => BudgetKey::Peer(peer),
        };
        self.stark_budget.try_spend(&key, envelope.proof.len() as u64, now)
    }

    /// The answer to a `SubmitProofRequest` from `peer`.
    pub(super) fn answer_submit_proof(
        &mut self,
        peer: PeerId,
        request: proto::SubmitProofRequest,
        now: u64,
    ) -> proto::SyncResponse {
        let Some(chain) = self.chain.as_ref() else {
            return sync_server::error(proto::SyncErrorCode::NotFound, "this node has no chain (no genesis)");
        };
        let height = chain.ledger().height();
        let epoch = chain
            .genesis_programs()
            .first()
            .map_or(0, |program| program.epoch_at(height));
        let answer = |accepted: bool, reason: String| proto::SyncResponse {
            kind: Some(sync_response::Kind::SubmitProof(proto::SubmitProofResponse {
                accepted,
                reason: truncate(reason),
                height,
                epoch,
            })),
        };
        let Some(envelope) = request.envelope else {
            return answer(false, "no envelope: height and epoch only".into());
        };
        if let Err(over) = self.stark_budget_allows(&envelope, peer, now) {
            return sync_server::error(proto::SyncErrorCode::RateLimited, over.to_string());
        }
        let Some(chain) = self.chain.as_mut() else {
            return answer(false, "no chain".into());
        };
        match chain.submit_proof(&envelope) {
            ProofOutcome::Accepted => {
                let message = proto::ProofsMessage {
                    envelope: Some(*envelope),
                };
                if let Err(error) = self.publish(Topic::Proofs, encode(&message)) {
                    warn!(%error, "submitted proof kept but not gossiped");
                }
                info!(%peer, "submitted proof accepted and gossiped on proofs");
                answer(true, String::new())
            }
            ProofOutcome::Duplicate => answer(true, "already pending or on chain".into()),
            ProofOutcome::Full => answer(false, "mempool full".into()),
            ProofOutcome::Invalid(error) => answer(false, error.to_string()),
        }
    }

    /// Drives our own registration, if any (called on a timer).
    pub(super) fn drive_registration(&mut self, now: u64) {
        let Some(registration) = self.registration.as_ref() else {
            return;
        };
        if registration.done {
            return;
        }
        let Some(chain) = self.chain.as_ref() else {
            return;
        };
        let subject = ZsiId::from_slice(&registration.statement.subject);
        if let Some(subject) = subject
            && chain.ledger().registry().iter().any(|(id, _)| *id == subject)
        {
            let height = chain.ledger().height();
            println!("registered: {subject} {height}");
            info!(%subject, height, "our registration is on chain: TL1");
            if let Some(r) = self.registration.as_mut() {
                r.done = true;
            }
            return;
        }
        if registration.in_flight.is_some() && now.saturating_sub(registration.last_try_ms) < RETRY_MS {
            return;
        }
        if registration.in_flight.is_none()
            && registration.last_try_ms != 0
            && now.saturating_sub(registration.last_try_ms) < RETRY_MS
        {
            return;
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        let Some(keys) = self.handshake.identity() else {
            warn!("registration needs a ZSI key");
            return;
        };
        let height = chain.ledger().height();
        let mut envelope = proto::ProofEnvelope {
            kind: STWO_KIND.into(),
            statement: registration.statement.encode_to_vec(),
            proof: registration.proof.clone(),
            submitter: registration.statement.subject.clone(),
            height,
            signature: vec![],
        };
        envelope.sign_with(keys.identity_key());
        let peer = peers[registration.next_peer % peers.len()];
        let request = proto::SyncRequest {
            kind: Some(sync_request::Kind::SubmitProof(proto::SubmitProofRequest {
                envelope: Some(Box::new(envelope)),
            })),
        };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        info!(%peer, height, "registration submitted");
        if let Some(r) = self.registration.as_mut() {
            r.in_flight = Some((id, peer));
            r.last_try_ms = now;
            r.next_peer = r.next_peer.wrapping_add(1);
        }
    }

    /// Whether `id` is our registration's request; if so, takes its answer.
    pub(super) fn on_registration_response(&mut self, id: OutboundRequestId, response: &proto::SyncResponse) -> bool {
        let Some(registration) = self.registration.as_mut() else {
            return false;
        };
        let Some((asked, peer)) = registration.in_flight else {
            return false;
        };
        if asked != id {
            return false;
        }
        registration.in_flight = None;
        match &response.kind {
            Some(sync_response::Kind::SubmitProof(answer)) if answer.accepted => {
                info!(%peer, height = answer.height, "registration accepted; waiting for a block");
            }
            Some(sync_response::Kind::SubmitProof(answer)) => {
                warn!(%peer, reason = %answer.reason, "registration refused");
            }
            Some(sync_response::Kind::Error(error)) => warn!(%peer, reason = %error.message, "registration refused"),
            _ => warn!(%peer, "registration: unexpected answer"),
        }
        true
    }
}
