//! Proof envelopes and their verifiers.
//!
//! A `ProofEnvelope { kind, statement, proof, submitter, height, signature }`
//! travels on `proofs`. [`VerifierRegistry::check_envelope`] runs the checks every kind shares
//! (size is done by the decoder): the submitter is registered and at least
//! TL1, its signature verifies, the envelope is fresh (its height within
//! [`ProofContext::freshness_blocks`] of the chain's), and then the verifier
//! registered for the kind ([`ProofVerifier`]) checks statement and proof.
//! A valid envelope yields the on-chain effects it will have once a block
//! includes it ([`ProofEffect`]).
//!
//! Built-in kind: [`uptime::UptimeVerifier`] (`uptime/v1`). With the
//! `stwo` feature: [`stwo::StwoVerifier`] (`stwo/v1`, Circle STARK proofs
//! of genesis programs; registered from genesis by the node, not a
//! builtin). A `stwo/v1` registration is the one envelope whose submitter
//! need not be registered: [`VerifierRegistry::check_envelope`] takes its
//! key from the statement (the id must derive from it).
//!
//! [`ChainProofVerifier`] is the seam for a succinct backend: a STARK that
//! attests "the chain from checkpoint C reaches header H" can stand in for
//! the step-by-step chain proof without the light client changing.

pub mod program;
#[cfg(feature = "stwo")]
pub mod stwo;
pub mod uptime;

use std::collections::BTreeMap;

use crate::hash::Hash32;
use crate::identity::ZsiId;
use crate::identity::registry::IdentityRegistry;
use crate::tier::{Tier, TierThresholds, tier_of};
use crate::wire::sign::{SignedMessage, proof_content_id};
use crate::wire::{NetworkId, proto};

/// What a verifier needs to know about the chain, borrowed.
pub struct ProofContext<'a, R: IdentityRegistry> {
    /// The network.
    pub network: &'a NetworkId,
    /// Registered identities with their reputation (chain state).
    pub registry: &'a R,
    /// Tier thresholds (genesis).
    pub thresholds: &'a TierThresholds,
    /// The chain's current height.
    pub height: u64,
    /// How many blocks old (or ahead) an envelope may be.
    pub freshness_blocks: u64,
    /// Target block time in ms (turns height windows into time).
    pub block_time_ms: u64,
}

/// The on-chain effect of a valid proof once included in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofEffect {
    /// Credit uptime to an identity.
    UptimeCredit {
        /// Who.
        subject: ZsiId,
        /// Minutes credited.
        minutes: u64,
        /// First height of the window (the ledger credits a window only
        /// if it starts above the subject's last credited one).
        from_height: u64,
        /// Last height of the window (recorded as the subject's last
        /// credited window end).
        to_height: u64,
    },
    /// Register a new identity (a `stwo/v1` registration): it becomes TL1.
    Register {
        /// Who.
        subject: ZsiId,
        /// Its Ed25519 identity key.
        identity_key: [u8; 32],
        /// Its sr25519 VRF key.
        vrf_key: [u8; 32],
    },
    /// No state change (kinds that only record the proof).
    Record,
}

impl ProofEffect {
    /// The reputation event to put in a block for this effect, if any.
    pub fn reputation_event(&self) -> Option<proto::ReputationEvent> {
        match self {
            ProofEffect::UptimeCredit { subject, minutes, .. } => Some(proto::ReputationEvent {
                zsi_id: subject.as_bytes().to_vec(),
                kind: Some(proto::reputation_event::Kind::UptimeMinutes(*minutes)),
            }),
            ProofEffect::Register {
                subject,
                identity_key,
                vrf_key,
            } => Some(proto::ReputationEvent {
                zsi_id: subject.as_bytes().to_vec(),
                kind: Some(proto::reputation_event::Kind::Registered(proto::Registration {
                    identity_key: identity_key.to_vec(),
                    vrf_key: vrf_key.to_vec(),
                })),
            }),
            ProofEffect::Record => None,
        }
    }
}

/// Why an envelope was refused. `label()` names it for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No verifier for this kind.
    #[error("no verifier for proof kind {0:?}")]
    UnknownKind(String),
    /// The submitter is not registered.
    #[error("submitter {0} is not registered")]
    UnknownSubmitter(String),
    /// The submitter's tier is below TL1.
    #[error("submitter {submitter} is {tier}; proofs need TL1")]
    TierTooLow {
        /// Who.
        submitter: ZsiId,
        /// Its tier.
        tier: Tier,
    },
    /// The envelope's signature does not verify.
    #[error("envelope signature does not verify")]
    BadSignature,
    /// The envelope is outside the freshness window.
    #[error("envelope height {height} is outside {current}±{window}")]
    Stale {
        /// Its height.
        height: u64,
        /// The chain's.
        current: u64,
        /// The window.
        window: u64,
    },
    /// The kind's verifier refused the statement or proof.
    #[error("invalid {kind} proof: {reason}")]
    Invalid {
        /// The kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// The kind's verifier cannot accept the proof against this node's
    /// chain state (a window that ends above our height, a witness we do
    /// not know yet); a node with other state may.
    #[error("{kind} proof cannot be verified here: {reason}")]
    Unverifiable {
        /// The kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}

impl ProofError {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            ProofError::UnknownKind(_) => "unknown_kind",
            ProofError::UnknownSubmitter(_) => "unknown_submitter",
            ProofError::TierTooLow { .. } => "tier_too_low",
            ProofError::BadSignature => "bad_signature",
            ProofError::Stale { .. } => "stale",
            ProofError::Invalid { .. } => "invalid",
            ProofError::Unverifiable { .. } => "unverifiable",
        }
    }

    /// Whether the envelope is at fault for every receiver at every time
    /// (a bad signature, a proof that does not verify): only then is its
    /// relay to blame. Anything that depends on chain state or the clock
    /// (an unknown submitter or kind, a tier, freshness, unknown witnesses)
    /// is not: an honest relay with other state may have accepted it.
    pub const fn is_fault(&self) -> bool {
        matches!(self, ProofError::BadSignature | ProofError::Invalid { .. })
    }
}

/// Verifies the statement and proof of one kind.
pub trait ProofVerifier: Send + Sync {
    /// The kind string, e.g. `uptime/v1`.
    fn kind(&self) -> &'static str;

    /// For an envelope that registers its own, not yet registered,
    /// submitter: the identity key to check its signature with. `None`
    /// (the default) for every kind that needs a registered TL1 submitter.
    fn registration_key(&self, _envelope: &proto::ProofEnvelope) -> Option<crate::identity::ZsiPublic> {
        None
    }

    /// Checks `envelope` (already known to be from a registered TL1+
    /// submitter, signed and fresh) and returns its effect.
    fn verify(
        &self,
        envelope: &proto::ProofEnvelope,
        ctx: &ProofContext<'_, &dyn IdentityRegistry>,
    ) -> Result<ProofEffect, ProofError>;
}

/// The verifiers a node runs, by kind.
#[derive(Default)]
pub struct VerifierRegistry {
    verifiers: BTreeMap<&'static str, Box<dyn ProofVerifier>>,
}

impl std::fmt::Debug for VerifierRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.verifiers.keys()).finish()
    }
}

impl VerifierRegistry {
    /// The registry with the built-in kinds at their default parameters.
    pub fn with_builtins() -> Self {
        Self::with_uptime(&crate::genesis::UptimeParams::default())
    }

    /// The registry with the built-in kinds, `uptime/v1` with the
    /// genesis's uptime parameters (what every node of a network must run).
    pub fn with_uptime(params: &crate::genesis::UptimeParams) -> Self {
        let mut registry = Self::default();
        registry.register(Box::new(uptime::UptimeVerifier::from(params)));
        registry
    }

    /// Adds (or replaces) the verifier of its kind.
    pub fn register(&mut self, verifier: Box<dyn ProofVerifier>) {
        self.verifiers.insert(verifier.kind(), verifier);
    }

    /// The kinds known.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.verifiers.keys().copied()
    }

    /// Runs the shared checks and the kind's verifier.
    pub fn check_envelope(
        &self,
        envelope: &proto::ProofEnvelope,
        ctx: &ProofContext<'_, &dyn IdentityRegistry>,
    ) -> Result<VerifiedProof, ProofError> {
        let verifier = self
            .verifiers
            .get(envelope.kind.as_str())
            .ok_or_else(|| ProofError::UnknownKind(envelope.kind.chars().take(64).collect()))?;
        let submitter = ZsiId::from_slice(&envelope.submitter)
            .ok_or_else(|| ProofError::UnknownSubmitter(hex::encode(&envelope.submitter)))?;
        let key = match ctx.registry.lookup(&submitter) {
            Some(registered) => {
                let tier = tier_of(Some(&registered.reputation), ctx.thresholds);
                if tier < Tier::TL1 {
                    return Err(ProofError::TierTooLow { submitter, tier });
                }
                registered.public.identity_key
            }
            // A self-registration: the key comes with the statement.
            None => match verifier.registration_key(envelope) {
                Some(public) => public.identity_key,
                None => return Err(ProofError::UnknownSubmitter(submitter.to_string())),
            },
        };
        envelope.verify_with(&key).map_err(|_| ProofError::BadSignature)?;
        if envelope.height.abs_diff(ctx.height) > ctx.freshness_blocks {
            return Err(ProofError::Stale {
                height: envelope.height,
                current: ctx.height,
                window: ctx.freshness_blocks,
            });
        }
        let effect = verifier.verify(envelope, ctx)?;
        Ok(VerifiedProof {
            content_id: proof_content_id(envelope),
            submitter,
            effect,
        })
    }
}

/// An envelope that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// Its content id (the mempool and dedup key).
    pub content_id: Hash32,
    /// Its submitter.
    pub submitter: ZsiId,
    /// What including it will do.
    pub effect: ProofEffect,
}

/// The statement a chain proof makes: from a trusted checkpoint, the chain
/// reaches `target` (its header hash at `target_height`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStatement {
    /// Height of the trusted checkpoint.
    pub trusted_height: u64,
    /// Header hash of the trusted checkpoint.
    pub trusted_hash: Hash32,
    /// Height reached.
    pub target_height: u64,
    /// Header hash reached.
    pub target_hash: Hash32,
}

/// Verifies that a chain proof attests a [`ChainStatement`]. The step-by-step
/// verifier (validator-set hand-offs, `core::verify`) implements it; a
/// succinct (STARK) backend can implement it later with the same meaning.
pub trait ChainProofVerifier {
    /// The proof format this backend reads.
    type Proof;
    /// Why a proof was refused.
    type Error: std::error::Error;
    /// Checks that `proof` attests `statement`.
    fn verify_chain(&self, statement: &ChainStatement, proof: &Self::Proof) -> Result<(), Self::Error>;
}
