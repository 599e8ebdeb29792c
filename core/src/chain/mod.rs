//! Chain rules that need no state store: validator sets, quorum math and
//! certificate verification.
//!
//! - [`quorum`]: the checked [`ValidatorSet`], [`quorum_threshold`] (more
//!   than 2/3 of the power), the canonical votes a certificate's signatures
//!   cover ([`precommit_for`], [`prevote_for`]), and the verifiers of commit,
//!   polka and round certificates and of equivocation evidence.
//! - [`block`]: the chain commitment (genesis and per height), the proofs
//!   Merkle root with inclusion proofs, [`BlockBuilder`], and validation of a
//!   header, block or finalized block against its [`Parent`]
//!   ([`validate_header`], [`validate_block`], [`validate_finalized`],
//!   [`validate_signed_header`], and without the clock rule
//!   [`validate_certified`], [`validate_certified_header`]). Its single
//!   rules ([`check_hash_link`], [`check_commitment`], [`check_time`],
//!   [`check_proposer`], [`verify_header_commit`], …) are the one header
//!   rulebook, which the light-client verifier calls too.
//! - [`reputation_rules`]: on-chain reputation transitions ([`apply_event`])
//!   under one documented scoring rule, and the participation credit of a
//!   commit ([`participation_events`]).
//! - [`ledger`]: the state machine itself: the chain state after a height
//!   ([`Ledger`]), block execution ([`Ledger::apply`]) and the proposer's
//!   body builder ([`Ledger::propose`], [`Ledger::build_block`]).
//!
//! Everything here is pure: the validator set to check against is an
//! argument, so the same code serves the node (current set), the light
//! client (the set it trusts at a point of a chain proof) and the consensus
//! engine's certificate checks. The ledger holds its state as a value and
//! returns the next state instead of mutating.

mod batch;
pub mod block;
pub mod ledger;
pub mod quorum;
pub mod reputation_rules;

pub use block::{
    BlockBuilder, BlockError, GenesisAnchor, MAX_BLOCK_INTERVAL_MS, Parent, chain_commitment, check_commitment,
    check_hash_link, check_height, check_not_ahead, check_proposer, check_time, empty_proofs_root, genesis_commitment,
    next_block_time, proof_leaf_hash, proofs_inclusion, proofs_inclusion_of_ids, proofs_root, proofs_root_of_ids,
    validate_block, validate_certified, validate_certified_header, validate_finalized, validate_header,
    validate_signed_header, verify_header_commit, verify_header_commit_with, verify_proof_inclusion,
};

pub use ledger::{
    BlockBody, ExecContext, Ledger, LedgerError, MAX_BLOCK_PROOF_BYTES, decode_params, decode_uptime_params,
    encode_params, evidence_id, identity_record,
};
pub use quorum::{
    CertificateError, QuorumSummary, SignatureCheck, ValidatorEntry, ValidatorSet, ValidatorSetError, precommit_for,
    prevote_for, quorum_threshold, skip_threshold, verify_commit, verify_commit_quorum, verify_commit_with,
    verify_evidence, verify_polka, verify_round_certificate, vote_for,
};
pub use reputation_rules::{ScoringRules, apply_event, apply_events, participation_events};

/// Characters of a foreign string (a network id) kept in an error message.
pub(crate) const MESSAGE_FIELD_CHARS: usize = 64;
