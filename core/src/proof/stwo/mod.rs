//! The `stwo/v1` proof kind: STWO Circle STARK proofs of programs
//! registered in chain state.
//!
//! - statement: [`proto::StarkStatement`] `{ program, subject, epoch, identity_key, vrf_key }`
//! - proof: a STWO proof in the bounded encoding of [`codec`].
//!
//! Genesis lists the programs ([`ProgramSpec`]: program id, AIR version,
//! bounds on log size and proof bytes, the PCS configuration, the
//! registration epoch length). The first program is
//! [`posw::PROGRAM_ID`], a proof of sequential work bound to one identity
//! and epoch; a valid one registers its subject
//! ([`ProofEffect::Register`]), so a node can join without being in
//! genesis by paying with computation.
//!
//! Order of checks, cheapest first, so an invalid or heavy proof costs
//! little: statement decoded and matched to a known program, the subject is
//! the submitter and derives from the given keys, the epoch is current (or
//! the one before), the subject is not registered yet; then the proof's
//! length against the program's `max_proof_bytes` (before decoding), the
//! bounded decode ([`codec::decode`]), the log size against the program's
//! bounds; only then the STWO verifier. The verifier runs under
//! `catch_unwind` as a last line: STWO asserts on some malformed shapes, and
//! nothing from the network may take a node down.
//!
//! Verification cost is bounded per submitter: [`VerifyBudget`] is the
//! pure per-key, per-window budget the node applies before it verifies a
//! gossiped or submitted proof (over budget is `Ignore`, not `Reject`: the
//! proof may be valid). It is not applied when a block is executed (that
//! must be deterministic), where the per-block proof limit bounds the work.

pub mod budget;
pub mod codec;
pub mod posw;
#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};

use prost::Message;
use stwo::core::air::Component;
use stwo::core::channel::Blake2sM31Channel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fri::FriConfig;
use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sM31MerkleChannel;
use stwo::core::verifier::verify;
use stwo_constraint_framework::{FrameworkComponent, TraceLocationAllocator};

pub use super::program::ProgramSpec;
pub use super::{ProofContext, ProofEffect, ProofError, ProofVerifier};
use crate::identity::ZsiPublic;
use crate::identity::registry::IdentityRegistry;
use crate::wire::{NetworkId, proto};
pub use budget::{OverBudget, VerifyBudget};
/// The base field of STWO (Mersenne-31), re-exported for provers and harnesses.
pub use stwo::core::fields::m31::M31;

/// The kind string.
pub const KIND: &str = super::program::STWO_KIND;

/// The PCS configuration proofs of `spec` use (fixed by the program, not
/// by the proof).
pub fn pcs_config(spec: &ProgramSpec) -> PcsConfig {
    PcsConfig {
        pow_bits: spec.pow_bits,
        fri_config: FriConfig {
            log_blowup_factor: spec.log_blowup_factor,
            log_last_layer_degree_bound: 0,
            n_queries: spec.n_queries,
            fold_step: 1,
        },
        lifting_log_size: None,
    }
}

/// Why a proof of a known program did not verify (the reason of
/// [`ProofError::Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StarkError {
    /// Longer than the program allows (checked before decoding).
    #[error("proof is {len} bytes, above the program's {max}")]
    Oversized {
        /// Its length.
        len: usize,
        /// The program's bound.
        max: usize,
    },
    /// The bytes do not decode.
    #[error("proof does not decode: {0}")]
    Decode(#[from] codec::DecodeError),
    /// The proof's shape does not match the program's AIR.
    #[error("proof shape does not match the program: {0}")]
    Shape(&'static str),
    /// The STWO verifier refused it.
    #[error("STARK verification failed: {0}")]
    Verify(String),
    /// The STWO verifier panicked on it (a malformed proof).
    #[error("STARK verifier refused a malformed proof (panic caught)")]
    Panicked,
}

/// Verifies a decoded-size-checked `proof_bytes` of the sequential-work
/// program for `seed` against `spec`. The single entry point the node, the
/// tests, the bench and the fuzz target use.
pub fn verify_posw(spec: &ProgramSpec, seed: [M31; posw::WIDTH], proof_bytes: &[u8]) -> Result<(), StarkError> {
    if proof_bytes.len() > spec.max_proof_bytes {
        return Err(StarkError::Oversized {
            len: proof_bytes.len(),
            max: spec.max_proof_bytes,
        });
    }
    let config = pcs_config(spec);
    let proof = codec::decode(proof_bytes, spec.max_proof_bytes, config)?;
    let log_size = spec.log_iterations;
    if log_size < spec.min_log_size || log_size > spec.max_log_size {
        return Err(StarkError::Shape("log size outside the program's bounds"));
    }
    let component = FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        posw::PoswEval::new(log_size, seed),
        SecureField::from(M31(0)),
    );
    let sizes = component.trace_log_degree_bounds();
    // preprocessed (empty), trace, composition.
    if proof.0.commitments.len() != 3 || sizes.len() < 2 {
        return Err(StarkError::Shape("expected 3 commitments"));
    }
    if proof.0.sampled_values.len() != 3 || proof.0.queried_values.len() != 3 || proof.0.decommitments.len() != 3 {
        return Err(StarkError::Shape("expected 3 trees"));
    }
    if proof.0.sampled_values[1].len() != posw::N_COLUMNS || proof.0.queried_values[1].len() != posw::N_COLUMNS {
        return Err(StarkError::Shape("trace column count"));
    }
    let run = AssertUnwindSafe(|| {
        let channel = &mut Blake2sM31Channel::default();
        posw::mix_statement(channel, &seed, log_size);
        let mut scheme = CommitmentSchemeVerifier::<Blake2sM31MerkleChannel>::new(config);
        scheme.commit(proof.0.commitments[0], &sizes[0], channel);
        scheme.commit(proof.0.commitments[1], &sizes[1], channel);
        verify(&[&component], channel, &mut scheme, proof).map_err(|e| StarkError::Verify(e.to_string()))
    });
    catch_unwind(run).unwrap_or(Err(StarkError::Panicked))
}

/// The `stwo/v1` verifier: the programs genesis registered.
#[derive(Debug, Clone, Default)]
pub struct StwoVerifier {
    programs: Vec<ProgramSpec>,
}

impl StwoVerifier {
    /// A verifier for `programs` (genesis).
    pub fn new(programs: Vec<ProgramSpec>) -> Self {
        Self { programs }
    }

    /// The program with this id.
    pub fn program(&self, id: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.id == id)
    }

    /// For a registration envelope (kind `stwo/v1`, statement naming a
    /// known registration program) whose subject is the submitter: the
    /// subject's public keys, checked to derive the subject's id. The
    /// registry lets such an envelope in without a registered submitter.
    pub fn registration_keys(&self, envelope: &proto::ProofEnvelope) -> Option<ZsiPublic> {
        super::program::registration_public(envelope, Some(&self.programs))
    }
}

fn invalid(reason: impl Into<String>) -> ProofError {
    ProofError::Invalid {
        kind: KIND,
        reason: reason.into(),
    }
}

fn unverifiable(reason: impl Into<String>) -> ProofError {
    ProofError::Unverifiable {
        kind: KIND,
        reason: reason.into(),
    }
}

/// The statement and seed of a registration, checked against chain state
/// (everything but the STARK itself).
pub fn check_statement(
    spec: &ProgramSpec,
    statement: &proto::StarkStatement,
    submitter: &[u8],
    network: &NetworkId,
    registry: &dyn IdentityRegistry,
    height: u64,
) -> Result<(ZsiPublic, [M31; posw::WIDTH]), ProofError> {
    if statement.subject != submitter {
        return Err(invalid(
            "subject is not the submitter (proof bound to another identity)",
        ));
    }
    let public = ZsiPublic::from_bytes(&statement.identity_key, &statement.vrf_key)
        .map_err(|e| invalid(format!("subject keys: {e}")))?;
    let subject = public.zsi_id();
    if subject.as_bytes().as_slice() != statement.subject.as_slice() {
        return Err(invalid("subject does not derive from the given keys"));
    }
    let current = spec.epoch_at(height);
    if statement.epoch != current && statement.epoch.saturating_add(1) != current {
        return Err(unverifiable(format!(
            "proof bound to epoch {}, current is {current} (one epoch of grace)",
            statement.epoch
        )));
    }
    if registry.lookup(&subject).is_some() {
        return Err(unverifiable(format!("{subject} is already registered")));
    }
    Ok((public, posw::seed(network, &subject, statement.epoch)))
}

impl ProofVerifier for StwoVerifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn registration_key(&self, envelope: &proto::ProofEnvelope) -> Option<ZsiPublic> {
        self.registration_keys(envelope)
    }

    fn verify(
        &self,
        envelope: &proto::ProofEnvelope,
        ctx: &ProofContext<'_, &dyn IdentityRegistry>,
    ) -> Result<ProofEffect, ProofError> {
        let statement = proto::StarkStatement::decode(envelope.statement.as_slice())
            .map_err(|e| invalid(format!("statement: {e}")))?;
        let spec = self.program(&statement.program).ok_or_else(|| {
            unverifiable(format!(
                "unknown program {:?}",
                statement.program.chars().take(64).collect::<String>()
            ))
        })?;
        let (public, seed) = check_statement(
            spec,
            &statement,
            &envelope.submitter,
            ctx.network,
            *ctx.registry,
            ctx.height,
        )?;
        verify_posw(spec, seed, &envelope.proof).map_err(|e| invalid(e.to_string()))?;
        Ok(ProofEffect::Register {
            subject: public.zsi_id(),
            identity_key: public.identity_key.to_bytes(),
            vrf_key: public.vrf_key.to_bytes(),
        })
    }
}

/// A registration statement for `public` at `epoch` (the prover side).
pub fn registration_statement(public: &ZsiPublic, epoch: u64) -> proto::StarkStatement {
    proto::StarkStatement {
        program: posw::PROGRAM_ID.to_owned(),
        subject: public.zsi_id().as_bytes().to_vec(),
        epoch,
        identity_key: public.identity_key.to_bytes().to_vec(),
        vrf_key: public.vrf_key.to_bytes().to_vec(),
    }
}
