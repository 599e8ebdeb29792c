//! STARK programs registered in chain state (genesis `stark_programs`).
//!
//! Plain data, available without the `stwo` feature so every build parses
//! the same genesis; the verifier is [`crate::proof`]'s `stwo` module.

use crate::wire::limits;

/// Program id of the sequential-work registration program.
pub const POSW_PROGRAM_ID: &str = "tiernet/posw/v1";
/// AIR version of the sequential-work program.
pub const POSW_AIR_VERSION: u32 = 1;

/// A STARK program registered in chain state (genesis).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Program id, e.g. `tiernet/posw/v1`.
    pub id: String,
    /// AIR version the verifier must implement.
    pub air_version: u32,
    /// log2 of the iterations a proof must show (`n = 2^log_iterations`).
    pub log_iterations: u32,
    /// Smallest log size accepted (bounds the program's parameters).
    pub min_log_size: u32,
    /// Largest log size accepted: verification cost grows with it.
    pub max_log_size: u32,
    /// Largest proof accepted, in bytes (checked before decoding).
    pub max_proof_bytes: usize,
    /// FRI: log2 of the blowup factor.
    pub log_blowup_factor: u32,
    /// FRI: number of queries.
    pub n_queries: usize,
    /// Proof-of-work bits before the queries.
    pub pow_bits: u32,
    /// Blocks per registration epoch (the seed binds the epoch).
    pub epoch_blocks: u64,
}

impl ProgramSpec {
    /// The default sequential-work registration program: `2^16`
    /// iterations, 96 bits of security (blowup 8, 27 queries, 15 PoW
    /// bits: a higher blowup and fewer queries keep a 2^16 proof well
    /// under the wire's 128 KiB proof limit).
    pub fn posw_default() -> Self {
        Self {
            id: POSW_PROGRAM_ID.to_owned(),
            air_version: POSW_AIR_VERSION,
            log_iterations: 16,
            min_log_size: 4,
            max_log_size: 17,
            max_proof_bytes: limits::MAX_PROOF_BYTES,
            log_blowup_factor: 3,
            n_queries: 27,
            pow_bits: 15,
            epoch_blocks: 3_600,
        }
    }

    /// Bits of security of the PCS configuration (queries × blowup + PoW).
    pub fn security_bits(&self) -> u64 {
        (self.n_queries as u64) * u64::from(self.log_blowup_factor) + u64::from(self.pow_bits)
    }

    /// Checks the spec itself (genesis validation): known program and AIR
    /// version, bounds ordered and within what STWO and the wire allow.
    pub fn check(&self) -> Result<(), String> {
        if self.id != POSW_PROGRAM_ID {
            return Err(format!("unknown program {:?} (known: {})", self.id, POSW_PROGRAM_ID));
        }
        if self.air_version != POSW_AIR_VERSION {
            return Err(format!(
                "AIR version {} not implemented (have {})",
                self.air_version, POSW_AIR_VERSION
            ));
        }
        if !(self.min_log_size <= self.log_iterations && self.log_iterations <= self.max_log_size) {
            return Err("log_iterations must lie in min_log_size..=max_log_size".into());
        }
        if self.min_log_size < 4 || self.max_log_size > 24 {
            return Err("log sizes must lie in 4..=24".into());
        }
        if self.max_proof_bytes == 0 || self.max_proof_bytes > limits::MAX_PROOF_BYTES {
            return Err(format!("max_proof_bytes must lie in 1..={}", limits::MAX_PROOF_BYTES));
        }
        if !(1..=4).contains(&self.log_blowup_factor) || !(1..=128).contains(&self.n_queries) || self.pow_bits > 30 {
            return Err("PCS: log_blowup_factor 1..=4, n_queries 1..=128, pow_bits ≤ 30".into());
        }
        if self.epoch_blocks == 0 {
            return Err("epoch_blocks must be positive".into());
        }
        Ok(())
    }

    /// The registration epoch at `height`.
    pub fn epoch_at(&self, height: u64) -> u64 {
        height / self.epoch_blocks.max(1)
    }
}

/// The keys of a `stwo/v1` registration envelope (for a program in
/// `programs`; `None`: any program id), if its statement names keys that
/// derive its submitter. A pure
/// parse (no STARK verification): gossip uses it to check a registrant's
/// signature before the registrant is in the registry; the STARK is
/// checked by the `stwo/v1` verifier, under the verification budget.
pub fn registration_public(
    envelope: &crate::wire::proto::ProofEnvelope,
    programs: Option<&[ProgramSpec]>,
) -> Option<crate::identity::ZsiPublic> {
    use prost::Message;
    if envelope.kind != STWO_KIND {
        return None;
    }
    let statement = crate::wire::proto::StarkStatement::decode(envelope.statement.as_slice()).ok()?;
    if let Some(programs) = programs {
        programs.iter().find(|p| p.id == statement.program)?;
    }
    let public = crate::identity::ZsiPublic::from_bytes(&statement.identity_key, &statement.vrf_key).ok()?;
    (public.zsi_id().as_bytes().as_slice() == statement.subject.as_slice() && statement.subject == envelope.submitter)
        .then_some(public)
}

/// The kind string of STARK proofs.
pub const STWO_KIND: &str = "stwo/v1";
