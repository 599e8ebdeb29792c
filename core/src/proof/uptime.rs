//! The built-in `uptime/v1` proof: a node's claim that it was up over a
//! window of heights, countersigned by peers that saw its heartbeats on
//! `meta`.
//!
//! - statement: `UptimeClaim { network_id, subject, from_height, to_height, heartbeats }`
//! - proof: `UptimeProof { witnesses: [UptimeWitness { witness, heartbeats_seen, signature }] }`
//!
//! Rules: the subject is the submitter; the window ends at or before the
//! current height, spans at most [`UptimeVerifier::max_window_blocks`] and
//! ends at most [`UptimeVerifier::max_age_blocks`] before the current
//! height;
//! the claimed heartbeats are possible in that window; every witness is a
//! distinct registered TL1+ identity other than the subject, saw no more
//! heartbeats than claimed, and signed (claim, heartbeats_seen); at least
//! [`UptimeVerifier::min_witnesses`] witnesses. The credit is the window's
//! duration scaled by the coverage that the second-best witness vouches for
//! (so no single witness decides), in whole minutes of
//! [`UptimeVerifier::minute_ms`].
//!
//! **Credited once.** The verifier only judges one proof. The ledger keeps,
//! per subject, the end of the last credited window in chain state
//! (`uptime/<zsi_id>`, [`crate::state::uptime_key`]) and credits a window
//! only if it starts above that end ([`ProofEffect::UptimeCredit`] carries
//! the window for this). The window (`from_height`, `to_height`) is part of
//! the claim every witness signs, so a witnessed claim cannot be moved to
//! another window; re-submitting the same claim in another envelope, at
//! another height or in the same block is refused because its window no
//! longer follows the last credited one.

use std::collections::BTreeSet;

use prost::Message;

use super::{ProofContext, ProofEffect, ProofError, ProofVerifier};
use crate::identity::ZsiId;
use crate::identity::registry::IdentityRegistry;
use crate::tier::{Tier, tier_of};
use crate::wire::sign::verify_uptime_witness;
use crate::wire::{Validate, proto};

/// The kind string.
pub const KIND: &str = "uptime/v1";

/// The `uptime/v1` verifier and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptimeVerifier {
    /// Fewest valid witnesses.
    pub min_witnesses: usize,
    /// Longest window, in blocks.
    pub max_window_blocks: u64,
    /// Interval between a node's heartbeats, in ms.
    pub heartbeat_interval_ms: u64,
    /// Oldest window end accepted, in blocks before the current height.
    pub max_age_blocks: u64,
    /// Chain milliseconds per credited minute.
    pub minute_ms: u64,
}

impl From<&crate::genesis::UptimeParams> for UptimeVerifier {
    fn from(p: &crate::genesis::UptimeParams) -> Self {
        Self {
            min_witnesses: usize::try_from(p.min_witnesses).unwrap_or(usize::MAX),
            max_window_blocks: p.window_blocks,
            heartbeat_interval_ms: p.heartbeat_interval_ms,
            max_age_blocks: p.max_age_blocks,
            minute_ms: p.minute_ms,
        }
    }
}

impl Default for UptimeVerifier {
    /// The genesis defaults ([`crate::genesis::UptimeParams::default`]):
    /// two witnesses, so that no single peer can vouch for another alone;
    /// windows of at most an hour of one-second blocks (a day in 24
    /// proofs), no older than another hour.
    fn default() -> Self {
        Self::from(&crate::genesis::UptimeParams::default())
    }
}

/// The number of heartbeats a window of `window_blocks` blocks of
/// `block_time_ms` allows at one per `heartbeat_interval_ms` (at least 1):
/// what an honest claim states as `UptimeClaim.heartbeats`.
pub fn possible_heartbeats(window_blocks: u64, block_time_ms: u64, heartbeat_interval_ms: u64) -> u64 {
    window_blocks.saturating_mul(block_time_ms) / heartbeat_interval_ms.max(1) + 1
}

fn invalid(reason: impl Into<String>) -> ProofError {
    ProofError::Invalid {
        kind: KIND,
        reason: reason.into(),
    }
}

/// A refusal that depends on this node's chain state (its height, the
/// witnesses' registrations and tiers): another node may accept the proof.
fn unverifiable(reason: impl Into<String>) -> ProofError {
    ProofError::Unverifiable {
        kind: KIND,
        reason: reason.into(),
    }
}

impl ProofVerifier for UptimeVerifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn verify(
        &self,
        envelope: &proto::ProofEnvelope,
        ctx: &ProofContext<'_, &dyn IdentityRegistry>,
    ) -> Result<ProofEffect, ProofError> {
        // The envelope's validation bounded both byte strings already.
        let claim = proto::UptimeClaim::decode(envelope.statement.as_slice())
            .map_err(|e| invalid(format!("statement is not an UptimeClaim: {e}")))?;
        claim.validate().map_err(|e| invalid(format!("statement: {e}")))?;
        let proof = proto::UptimeProof::decode(envelope.proof.as_slice())
            .map_err(|e| invalid(format!("proof is not an UptimeProof: {e}")))?;
        proof.validate().map_err(|e| invalid(format!("proof: {e}")))?;

        if claim.network_id != ctx.network.as_str() {
            return Err(invalid(format!("claim is for network {:?}", claim.network_id)));
        }
        if claim.subject != envelope.submitter {
            return Err(invalid("the subject of the claim is not the submitter"));
        }
        let subject = ZsiId::from_slice(&claim.subject).ok_or_else(|| invalid("subject is not a ZSI id"))?;
        if claim.to_height > ctx.height {
            return Err(unverifiable(format!(
                "window ends at {} after the current height {}",
                claim.to_height, ctx.height
            )));
        }
        if claim.to_height.saturating_add(self.max_age_blocks) < ctx.height {
            return Err(unverifiable(format!(
                "window ends at {}, more than {} blocks before the current height {}",
                claim.to_height, self.max_age_blocks, ctx.height
            )));
        }
        // `validate` checked from_height <= to_height.
        let window_blocks = claim.to_height.saturating_sub(claim.from_height).saturating_add(1);
        if window_blocks > self.max_window_blocks {
            return Err(invalid(format!(
                "window of {window_blocks} blocks is over {}",
                self.max_window_blocks
            )));
        }
        if claim.from_height == 0 {
            return Err(invalid("a window starts at height 1 or later"));
        }
        let window_ms = window_blocks.saturating_mul(ctx.block_time_ms);
        let possible = possible_heartbeats(window_blocks, ctx.block_time_ms, self.heartbeat_interval_ms);
        if claim.heartbeats == 0 || u64::from(claim.heartbeats) > possible {
            return Err(invalid(format!(
                "{} heartbeats claimed; 1 to {possible} fit the window",
                claim.heartbeats
            )));
        }

        let mut seen = BTreeSet::new();
        let mut vouched = Vec::with_capacity(proof.witnesses.len());
        for (i, witness) in proof.witnesses.iter().enumerate() {
            let id =
                ZsiId::from_slice(&witness.witness).ok_or_else(|| invalid(format!("witness {i} is not a ZSI id")))?;
            if id == subject {
                return Err(invalid("the subject cannot witness itself"));
            }
            if !seen.insert(id) {
                return Err(invalid(format!("witness {id} appears twice")));
            }
            let registered = ctx
                .registry
                .lookup(&id)
                .ok_or_else(|| unverifiable(format!("witness {id} is not registered")))?;
            if tier_of(Some(&registered.reputation), ctx.thresholds) < Tier::TL1 {
                return Err(unverifiable(format!("witness {id} is below TL1")));
            }
            if witness.heartbeats_seen > claim.heartbeats {
                return Err(invalid(format!("witness {id} saw more heartbeats than claimed")));
            }
            verify_uptime_witness(&claim, witness, &registered.public.identity_key)
                .map_err(|_| invalid(format!("witness {id}'s signature does not verify")))?;
            vouched.push(witness.heartbeats_seen);
        }
        if vouched.len() < self.min_witnesses {
            return Err(invalid(format!(
                "{} witnesses, at least {} needed",
                vouched.len(),
                self.min_witnesses
            )));
        }
        vouched.sort_unstable_by(|a, b| b.cmp(a));
        // The count the `min_witnesses`-th best witness vouches for (none: nothing to credit).
        let second_best = u64::from(vouched.get(self.min_witnesses.max(1) - 1).copied().unwrap_or(0));
        // Credit = window × (vouched heartbeats / possible heartbeats), capped at the window.
        let credited_ms =
            (u128::from(window_ms) * u128::from(second_best) / u128::from(possible)).min(u128::from(window_ms));
        let minutes = u64::try_from(credited_ms / u128::from(self.minute_ms.max(1))).unwrap_or(u64::MAX);
        Ok(ProofEffect::UptimeCredit {
            subject,
            minutes,
            from_height: claim.from_height,
            to_height: claim.to_height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ZsiKeypair;
    use crate::identity::registry::MemoryRegistry;
    use crate::tier::TierThresholds;
    use crate::wire::NetworkId;
    use crate::wire::sign::SignedMessage;

    #[test]
    fn zero_required_witnesses_and_none_given_credits_nothing_instead_of_panicking() {
        let subject = ZsiKeypair::from_seed(b"s").unwrap();
        let network = NetworkId::new("devnet").unwrap();
        let claim = proto::UptimeClaim {
            network_id: "devnet".into(),
            subject: subject.zsi_id().as_bytes().to_vec(),
            from_height: 1,
            to_height: 10,
            heartbeats: 1,
        };
        let mut envelope = proto::ProofEnvelope {
            kind: KIND.into(),
            statement: claim.encode_to_vec(),
            proof: proto::UptimeProof::default().encode_to_vec(),
            submitter: subject.zsi_id().as_bytes().to_vec(),
            height: 10,
            signature: vec![],
        };
        envelope.sign_with(subject.identity_key());
        let registry = MemoryRegistry::new();
        let registry: &dyn IdentityRegistry = &registry;
        let ctx = ProofContext {
            network: &network,
            registry: &registry,
            thresholds: &TierThresholds::default(),
            height: 10,
            freshness_blocks: 10,
            block_time_ms: 1_000,
        };
        let lenient = UptimeVerifier {
            min_witnesses: 0,
            ..UptimeVerifier::default()
        };
        assert_eq!(
            lenient.verify(&envelope, &ctx),
            Ok(ProofEffect::UptimeCredit {
                subject: subject.zsi_id(),
                minutes: 0,
                from_height: 1,
                to_height: 10,
            })
        );
    }
}
