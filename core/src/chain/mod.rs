//! Chain rules that need no state store: validator sets, quorum math and
//! certificate verification.
//!
//! - [`quorum`]: the checked [`ValidatorSet`], [`quorum_threshold`] (more
//!   than 2/3 of the power), the canonical votes a certificate's signatures
//!   cover ([`precommit_for`], [`prevote_for`]), and the verifiers of commit,
//!   polka and round certificates and of equivocation evidence.
//!
//! Everything here is pure: the validator set to check against is an
//! argument, so the same code serves the node (current set), the light
//! client (the set it trusts at a point of a chain proof) and the consensus
//! engine's certificate checks.

pub mod quorum;

pub use quorum::{
    CertificateError, QuorumSummary, ValidatorEntry, ValidatorSet, ValidatorSetError, precommit_for, prevote_for,
    quorum_threshold, skip_threshold, verify_commit, verify_evidence, verify_polka, verify_round_certificate, vote_for,
};
