//! The light client's verifier: pure predicates over headers, commit
//! certificates, chain proofs, state proofs and snapshot chunks, composed
//! into the few calls a sync state machine needs.
//!
//! Modelled on tendermint-rs's `light-client-verifier`: every check is a
//! function you can call (and test) alone, and every failure says whether the
//! data is **invalid** (forged or bad signatures, wrong roots, broken links,
//! malformed fields: drop the peer) or whether there is **not enough trust**
//! (the signatures are fine, but the validator set the client trusts does not
//! stand behind the header with more than 2/3 of its power: fetch a chain
//! proof, or another header). See [`VerifyError::is_invalid`] and
//! [`VerifyError::is_not_enough_trust`].
//!
//! The header rules themselves are not restated here: hash link,
//! commitment link, height, time, proposer membership and the commit
//! certificate are the functions of [`crate::chain::block`] that a full
//! node validates blocks with ([`block::check_hash_link`],
//! [`block::check_commitment`], [`block::check_height`],
//! [`block::check_time`], [`block::check_proposer`],
//! [`block::verify_header_commit`]); their [`BlockError`] is read into a
//! [`VerifyError`] by [`VerifyError::from_block`]. What this module adds is
//! trust: which validator set may sign, skips and chain proofs. A header
//! [`verify_next_with`]`(…, `[`SignatureCheck::All`]`)` accepts is one
//! [`block::validate_certified_header`] accepts, and the other way round.
//!
//! # Signatures: a verified quorum
//!
//! [`verify_next`], [`verify_skip`] and [`verify_chain_proof`] check a
//! commit's signatures in the signing set's canonical order (power
//! descending) only until the checked power passes 2/3
//! ([`SignatureCheck::Quorum`], [`crate::chain::verify_commit_quorum`]):
//! with 100 equal powers, 67 signatures instead of 100. Every signer is
//! still parsed and must be a distinct member; only the cryptographic
//! check of the signatures past the quorum is skipped, and their power is
//! not counted. What is accepted therefore stands on verified signatures
//! of more than 2/3 of the trusted set's power, as before; a bad signature
//! among those checked is invalid, as before. The difference from a full
//! node: a commit that carries, besides a verified quorum, a bad signature
//! the client did not check is accepted here and refused by
//! [`block::validate_certified_header`]. A client that forwards a block
//! to full nodes must check every signature first
//! ([`verify_next_with`]`(…, `[`SignatureCheck::All`]`)`): they would
//! refuse it and blame the forwarder.
//!
//! The trusted set also keeps a table of its keys' multiples from the
//! second header it verifies on, and batches with it (the same verdict as
//! `ed25519_dalek::verify_batch`, see [`crate::chain::quorum`]); building it
//! costs about as much as 20 headers in wasm, once per set, and a set that
//! signs a single chain-proof step never builds it.
//!
//! Nothing here does IO, reads a clock or spawns a thread, and nothing panics
//! on any input: every count that comes from the network is bounded before it
//! is iterated or allocated for. The crate builds for wasm32.
//!
//! # Trust
//!
//! A [`TrustedState`] is a verified point of the chain (the genesis or a
//! header) and the validator set that signs the height after it, known by
//! hash and, usually, in full. It only ever grows through the functions
//! below, each of which returns a new one:
//!
//! | call | accepts | trust comes from |
//! |---|---|---|
//! | [`verify_next`] | the header at `height + 1` | `prev_hash` and chain-commitment links, time after the trusted header's and at most [`block::MAX_BLOCK_INTERVAL_MS`] after it, its `validators_hash` is the trusted next set, > 2/3 of that set signed |
//! | [`verify_skip`] | a later header | its `validators_hash` is the trusted next set (no set change since), > 2/3 of that set signed, time after the trusted header's and at most one interval per height after it; else [`VerifyError::ValidatorsNotTrusted`] (not enough trust) |
//! | [`verify_chain_proof`] | the last step of a [`proto::ChainProof`] | each step is a [`verify_skip`] with the set the previous step handed trust to |
//!
//! The next validator set of the new state is the one passed as
//! `next_validators` (checked against the header's `next_validators_hash`),
//! or, when none is passed, the signing set if the header says the set does
//! not change; otherwise the new state knows the next set by its hash only
//! ([`TrustedState::next_validators`] is `None`). Such a state still verifies
//! chain proofs and skips (they carry the set that signs), while
//! [`verify_next`] asks for the set with [`VerifyError::NextValidatorsUnknown`]
//! (not enough trust) until [`TrustedState::with_next_validators`] supplies
//! it (from `Block.next_validators`, or a state proof of `validators`).
//!
//! Skipping assumes what every light client of a BFT chain assumes: a set
//! the client trusts keeps more than 2/3 of its power honest for as long as
//! the client relies on it. How long that is (a trusting period) is the
//! caller's policy: this module has no clock.
//!
//! # Invalid or not enough trust
//!
//! | error | class |
//! |---|---|
//! | [`VerifyError::NotEnoughPower`]: every signature verifies but their power is ≤ 2/3 of the trusted set's | not enough trust |
//! | [`VerifyError::ValidatorsNotTrusted`]: a later header signed by another set than the trusted one | not enough trust |
//! | [`VerifyError::NextValidatorsUnknown`]: the trusted state knows the signing set only by hash | not enough trust |
//! | [`VerifyError::BrokenHandOff`]: a chain-proof step signed by a set no earlier step handed trust to | invalid |
//! | everything else: forged signatures, unknown or repeated signers, wrong `prev_hash` or chain commitment, a set that does not hash to what the header says, heights out of order, malformed fields, state and chunk proofs that do not match the root | invalid |
//!
//! A set swapped without a signed hand-off is *not enough trust* for a single
//! header ([`verify_skip`]: the client may simply not have seen the hand-off
//! yet) but *invalid* inside a chain proof ([`verify_chain_proof`]): a chain
//! proof claims to contain every hand-off, so a missing one means the peer
//! sent a wrong proof. An adjacent header ([`verify_next`], or a skip or step
//! that happens to be adjacent) whose `validators_hash` is not the set its
//! parent named is invalid too: nothing can have changed in between.
//! Inside a chain proof, an error of step `i` is wrapped in
//! [`VerifyError::ChainProofStep`], which keeps the class of the error inside.
//!
//! # Usage
//!
//! ```
//! use tiernet_core::genesis::Genesis;
//! use tiernet_core::verify::{self, TrustedState, VerifyError};
//! use tiernet_core::wire::{NetworkId, proto};
//!
//! /// From the genesis to a chain proof's target, then one header further,
//! /// then a state value read at that header.
//! fn follow(
//!     genesis: &Genesis,
//!     proof: &proto::ChainProof,
//!     next: &proto::Block,
//!     commit: &proto::CommitCertificate,
//!     value: &proto::StateValueResponse,
//! ) -> Result<Option<Vec<u8>>, VerifyError> {
//!     let network: &NetworkId = &genesis.network;
//!     let trusted = TrustedState::from_genesis(genesis)?;
//!     let mut head = verify::verify_chain_proof(&trusted, proof, network)?;
//!     if let Some(block) = &next.header {
//!         let signed = proto::SignedHeader { header: Some(block.clone()), commit: Some(commit.clone()) };
//!         match verify::verify_next(&head, &signed, next.next_validators.as_ref(), network) {
//!             Ok(state) => head = state,
//!             // Fine data, but ask for a chain proof first.
//!             Err(e) if e.is_not_enough_trust() => {}
//!             // A forgery: drop the peer.
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     match head.header() {
//!         Some(header) => verify::verify_state_value(header, b"validators", value),
//!         None => Ok(None),
//!     }
//! }
//! ```

use std::fmt;

use crate::chain::block::{self, BlockError, GenesisAnchor, Parent};
use crate::chain::quorum::{CertificateError, QuorumSummary, SignatureCheck, ValidatorSet, ValidatorSetError};
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::identity::ZsiId;
use crate::proof::{ChainProofVerifier, ChainStatement};
use crate::state::{self, ChunkSummary, StateProofError};
use crate::wire::limits::{MAX_CHUNK_ENTRIES, MAX_SNAPSHOT_CHUNKS, MAX_STATE_KEY, MAX_STATE_VALUE, MAX_VALIDATORS};
use crate::wire::proto;
use crate::wire::sign::{header_hash, validators_hash};
use crate::wire::{FieldError, FieldProblem, NetworkId, Validate, fields};

/// Most steps [`verify_chain_proof`] accepts (validator-set hand-offs plus
/// the target); checked before any other work. The wire limit.
pub const MAX_CHAIN_PROOF_STEPS: usize = crate::wire::limits::MAX_CHAIN_PROOF_STEPS;

// ─────────────────────────────────── errors ───────────────────────────────────

use crate::hash::short;

/// Why a header, chain proof, state value or snapshot chunk was not
/// accepted. [`VerifyError::is_not_enough_trust`] separates "the client
/// cannot trust this yet" from "this is wrong" ([`VerifyError::is_invalid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A field breaks the schema (its path says where). Invalid.
    #[error("malformed: {0}")]
    Malformed(#[from] FieldError),
    /// A list over its bound. Invalid.
    #[error("{field}: {count} items, at most {max} allowed")]
    TooMany {
        /// The list.
        field: &'static str,
        /// Its length.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// Another network's data. Invalid.
    #[error("{field}: expected network {expected:?}, found {found:?}")]
    WrongNetwork {
        /// What names the network.
        field: &'static str,
        /// The network being verified.
        expected: String,
        /// What it says (truncated to 64 characters).
        found: String,
    },
    /// A height other than the one required. Invalid.
    #[error("{field}: expected height {expected}, found {found}")]
    WrongHeight {
        /// What names the height.
        field: &'static str,
        /// The required height.
        expected: u64,
        /// The height found.
        found: u64,
    },
    /// A height that is not above the trusted one (or the previous step's). Invalid.
    #[error("{field}: height {found} is not above {after}")]
    HeightNotAfter {
        /// What names the height.
        field: &'static str,
        /// The height it must be above.
        after: u64,
        /// The height found.
        found: u64,
    },
    /// The trusted height is the highest there is: nothing can follow it. Invalid.
    #[error("height {height} has no successor")]
    HeightOverflow {
        /// The trusted height.
        height: u64,
    },
    /// A hash that is not the one the rules require. Invalid.
    #[error("height {height}: {field}: expected {}, found {}", short(.expected), short(.found))]
    Mismatch {
        /// Height of the header (or state, manifest) concerned.
        height: u64,
        /// `header.prev_hash`, `header.chain_commitment`,
        /// `header.validators_hash`, `validators`, `next_validators`,
        /// `commit.block_hash`, `response.key` (as key hashes),
        /// `response.header`, `manifest.state_root`, `statement.*`.
        field: &'static str,
        /// What it must be.
        expected: Hash32,
        /// What it is.
        found: Hash32,
    },
    /// A header not later than the trusted one (chain time is strictly
    /// monotonic, [`block::check_time`]). Invalid.
    #[error("height {height}: header.time_ms {found} is not after the trusted header's {trusted}")]
    TimeBeforeTrusted {
        /// The header's height.
        height: u64,
        /// The trusted header's (or genesis) time.
        trusted: u64,
        /// The header's time.
        found: u64,
    },
    /// A header further after the trusted one than
    /// [`block::MAX_BLOCK_INTERVAL_MS`] per height allows
    /// ([`block::check_time`]). Invalid.
    #[error("height {height}: header.time_ms {found} is more than {max_ms} ms after the trusted header's {trusted}")]
    TimeTooFarAfterTrusted {
        /// The header's height.
        height: u64,
        /// The trusted header's (or genesis) time.
        trusted: u64,
        /// The header's time.
        found: u64,
        /// The largest step allowed from the trusted header to this one.
        max_ms: u64,
    },
    /// A proposer outside the set that signs the header. Invalid.
    #[error("height {height}: header.proposer {proposer} is not in the validator set")]
    UnknownProposer {
        /// The header's height.
        height: u64,
        /// The proposer named.
        proposer: ZsiId,
    },
    /// A commit certificate for an earlier round than the header's. Invalid.
    #[error("height {height}: commit.round {commit_round} is before header.round {header_round}")]
    CommitRound {
        /// The header's height.
        height: u64,
        /// The header's round.
        header_round: u32,
        /// The certificate's round.
        commit_round: u32,
    },
    /// The commit certificate does not verify: a bad signature, an unknown,
    /// malformed or repeated signer, too many signatures. Invalid.
    #[error("height {height}: commit: {source}")]
    Commit {
        /// The header's height.
        height: u64,
        /// What [`verify_commit`](crate::chain::verify_commit) found (never `InsufficientPower`: that is
        /// [`VerifyError::NotEnoughPower`]).
        source: CertificateError,
    },
    /// A validator set from the network that cannot be used. Invalid.
    #[error("{field}: {source}")]
    InvalidValidatorSet {
        /// `validators` or `next_validators`.
        field: &'static str,
        /// Why.
        source: ValidatorSetError,
    },
    /// A chain-proof step signed by a set that no earlier step (nor the
    /// trusted state) handed trust to. Invalid: a chain proof must carry
    /// every hand-off.
    #[error("height {height}: signed by validators {}, but trust was handed to {}", short(.found), short(.trusted))]
    BrokenHandOff {
        /// The step header's height.
        height: u64,
        /// Hash of the set trusted at that point.
        trusted: Hash32,
        /// Hash of the set that signed the step.
        found: Hash32,
    },
    /// Step `step` of a chain proof failed; the class is that of `source`.
    #[error("chain proof step {step} (height {height}): {source}")]
    ChainProofStep {
        /// Position of the step in the proof.
        step: usize,
        /// Height of its header (0 if it has none).
        height: u64,
        /// What went wrong.
        source: Box<VerifyError>,
    },
    /// A state value proof that does not prove the claim against the
    /// header's `state_root`, or is malformed. Invalid.
    #[error("height {height}: state proof: {source}")]
    StateProof {
        /// The header's height.
        height: u64,
        /// What the state verifier found.
        source: StateProofError,
    },
    /// A chunk index past the manifest's chunk count. Invalid.
    #[error("snapshot chunk {index} is out of range: the manifest has {count} chunks")]
    ChunkOutOfRange {
        /// The chunk's index.
        index: u32,
        /// The manifest's chunk count.
        count: u32,
    },
    /// A chunk whose hash is not the one its manifest lists. Invalid.
    #[error("snapshot chunk {index}: hash {}, the manifest lists {}", short(.found), short(.expected))]
    ChunkHash {
        /// The chunk's index.
        index: u32,
        /// The hash in the manifest.
        expected: Hash32,
        /// [`state::chunk_hash`] of the chunk.
        found: Hash32,
    },
    /// A chunk that does not follow the previous chunk's summary (another
    /// root, height or index, or after the last chunk). Invalid.
    #[error("snapshot chunk {index} out of order: {reason}")]
    ChunkOutOfOrder {
        /// The chunk's index.
        index: u32,
        /// What did not follow.
        reason: String,
    },
    /// A chunk that does not prove its entries against the manifest's root. Invalid.
    #[error("snapshot chunk {index}: {source}")]
    Chunk {
        /// The chunk's index.
        index: u32,
        /// What the chunk verifier found.
        source: StateProofError,
    },
    /// The state ends at another chunk than the manifest's last one. Invalid.
    #[error("snapshot chunk {index}: the manifest has {count} chunks but the state {}", if *.state_ends { "ends here" } else { "goes on" })]
    SnapshotLength {
        /// The chunk's index.
        index: u32,
        /// The manifest's chunk count.
        count: u32,
        /// Whether the chunk proved that no key hash comes after it.
        state_ends: bool,
    },
    /// Every signature verified, but their power is short of more than 2/3
    /// of the trusted set's. Not enough trust.
    #[error("height {height}: signed power {signed} of {total} is below the required {required}")]
    NotEnoughPower {
        /// The header's height.
        height: u64,
        /// Power of the distinct valid signers.
        signed: u64,
        /// The threshold (`⌊2·total/3⌋ + 1`).
        required: u64,
        /// Total power of the set.
        total: u64,
    },
    /// A later header signed by a set other than the one the client trusts
    /// for the next height: the set changed in between. Not enough trust.
    #[error("height {height}: signed by validators {}, but the trusted set is {}", short(.found), short(.trusted))]
    ValidatorsNotTrusted {
        /// The header's height.
        height: u64,
        /// Hash of the trusted next set.
        trusted: Hash32,
        /// The header's `validators_hash`.
        found: Hash32,
    },
    /// Any other block rule ([`BlockError`]) the header breaks. Invalid.
    #[error("height {height}: {source}")]
    Block {
        /// The header's height.
        height: u64,
        /// The rule it breaks.
        source: BlockError,
    },
    /// The trusted state knows the set that signs the next height only by
    /// its hash; supply it ([`TrustedState::with_next_validators`]) or use
    /// a chain proof. Not enough trust.
    #[error("the trusted state at height {height} knows the next validator set only by its hash {}", short(.hash))]
    NextValidatorsUnknown {
        /// The trusted height.
        height: u64,
        /// The next set's hash.
        hash: Hash32,
    },
}

impl VerifyError {
    /// True when there is not enough trust: [`VerifyError::NotEnoughPower`],
    /// [`VerifyError::ValidatorsNotTrusted`],
    /// [`VerifyError::NextValidatorsUnknown`], or a chain-proof step failing
    /// with one of them. The data may well be right; the client needs more
    /// (a chain proof, the next set) before it can trust it.
    pub fn is_not_enough_trust(&self) -> bool {
        match self {
            VerifyError::NotEnoughPower { .. }
            | VerifyError::ValidatorsNotTrusted { .. }
            | VerifyError::NextValidatorsUnknown { .. } => true,
            VerifyError::ChainProofStep { source, .. } => source.is_not_enough_trust(),
            _ => false,
        }
    }

    /// True when the data is wrong (forged, malformed, inconsistent): the
    /// peer that sent it should be dropped. Exactly the errors that are not
    /// [`VerifyError::is_not_enough_trust`].
    pub fn is_invalid(&self) -> bool {
        !self.is_not_enough_trust()
    }

    /// The error inside any [`VerifyError::ChainProofStep`] wrapper.
    pub fn innermost(&self) -> &VerifyError {
        match self {
            VerifyError::ChainProofStep { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// A short label for metrics (that of the inner error for a chain-proof step).
    pub fn label(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::TooMany { .. } => "too_many",
            VerifyError::WrongNetwork { .. } => "wrong_network",
            VerifyError::WrongHeight { .. } => "wrong_height",
            VerifyError::HeightNotAfter { .. } => "height_not_after",
            VerifyError::HeightOverflow { .. } => "height_overflow",
            VerifyError::Mismatch { .. } => "mismatch",
            VerifyError::TimeBeforeTrusted { .. } => "time_before_trusted",
            VerifyError::TimeTooFarAfterTrusted { .. } => "time_too_far_after_trusted",
            VerifyError::Block { source, .. } => source.label(),
            VerifyError::UnknownProposer { .. } => "unknown_proposer",
            VerifyError::CommitRound { .. } => "commit_round",
            VerifyError::Commit { .. } => "commit",
            VerifyError::InvalidValidatorSet { .. } => "invalid_validator_set",
            VerifyError::BrokenHandOff { .. } => "broken_hand_off",
            VerifyError::ChainProofStep { source, .. } => source.label(),
            VerifyError::StateProof { .. } => "state_proof",
            VerifyError::ChunkOutOfRange { .. } => "chunk_out_of_range",
            VerifyError::ChunkHash { .. } => "chunk_hash",
            VerifyError::ChunkOutOfOrder { .. } => "chunk_out_of_order",
            VerifyError::Chunk { .. } => "chunk",
            VerifyError::SnapshotLength { .. } => "snapshot_length",
            VerifyError::NotEnoughPower { .. } => "not_enough_power",
            VerifyError::ValidatorsNotTrusted { .. } => "validators_not_trusted",
            VerifyError::NextValidatorsUnknown { .. } => "next_validators_unknown",
        }
    }

    fn missing(field: &str) -> Self {
        VerifyError::Malformed(FieldError::new(field, FieldProblem::Missing))
    }

    /// The verifier's reading of a block rule ([`crate::chain::block`])
    /// broken by the header at `height`: the same verdict in this module's
    /// terms. Every rule is invalid, except a commit whose signatures are
    /// all valid but short of power, which is
    /// [`VerifyError::NotEnoughPower`] (not enough trust).
    pub fn from_block(height: u64, error: BlockError) -> Self {
        match error {
            BlockError::Malformed(e) => VerifyError::Malformed(e),
            BlockError::TooMany { field, count, max } => VerifyError::TooMany { field, count, max },
            BlockError::WrongNetwork { field, expected, found } => VerifyError::WrongNetwork { field, expected, found },
            BlockError::WrongHeight { field, expected, found } => VerifyError::WrongHeight { field, expected, found },
            BlockError::HeightOverflow { height } => VerifyError::HeightOverflow { height },
            BlockError::Mismatch { field, expected, found } => VerifyError::Mismatch {
                height,
                field,
                expected,
                found,
            },
            BlockError::TimeBeforeParent { parent, found } => VerifyError::TimeBeforeTrusted {
                height,
                trusted: parent,
                found,
            },
            BlockError::TimeTooFarAfterParent { parent, found, max_ms } => VerifyError::TimeTooFarAfterTrusted {
                height,
                trusted: parent,
                found,
                max_ms,
            },
            BlockError::UnknownProposer { proposer, .. } => VerifyError::UnknownProposer { height, proposer },
            BlockError::CommitRound {
                header_round,
                commit_round,
            } => VerifyError::CommitRound {
                height,
                header_round,
                commit_round,
            },
            BlockError::Commit(CertificateError::InsufficientPower {
                signed,
                required,
                total,
            }) => VerifyError::NotEnoughPower {
                height,
                signed,
                required,
                total,
            },
            BlockError::Commit(source) => VerifyError::Commit { height, source },
            BlockError::InvalidNextValidators(source) => VerifyError::InvalidValidatorSet {
                field: "next_validators",
                source,
            },
            source @ (BlockError::TimeInFuture { .. }
            | BlockError::DuplicateProof { .. }
            | BlockError::RedundantNextValidators { .. }) => VerifyError::Block { height, source },
        }
    }
}

/// Runs a block rule on the header at `height`, in this module's terms.
fn rule<T>(height: u64, result: Result<T, BlockError>) -> VResult<T> {
    result.map_err(|e| VerifyError::from_block(height, e))
}

type VResult<T> = Result<T, VerifyError>;

fn mismatch(height: u64, field: &'static str, expected: Hash32, found: Hash32) -> VResult<()> {
    if expected == found {
        Ok(())
    } else {
        Err(VerifyError::Mismatch {
            height,
            field,
            expected,
            found,
        })
    }
}

/// Parses a validator set from the network, bounding its size before any work.
fn parse_set(field: &'static str, set: &proto::ValidatorSet) -> VResult<ValidatorSet> {
    check_set_count(field, set)?;
    ValidatorSet::from_proto(set).map_err(|source| VerifyError::InvalidValidatorSet { field, source })
}

fn check_set_count(field: &'static str, set: &proto::ValidatorSet) -> VResult<()> {
    if set.validators.len() > MAX_VALIDATORS {
        return Err(VerifyError::TooMany {
            field,
            count: set.validators.len(),
            max: MAX_VALIDATORS,
        });
    }
    Ok(())
}

// ─────────────────────────────────── trust ───────────────────────────────────

/// Where trust starts or stands: the genesis (height 0) or a verified header.
#[derive(Debug, Clone, PartialEq)]
pub enum Anchor {
    /// Height 0: the genesis, whose "header hash" is all zero.
    Genesis(GenesisAnchor),
    /// A verified header.
    Header(proto::Header),
}

impl Anchor {
    /// As the parent of the next header ([`Parent`] of the block rules).
    pub fn as_parent(&self) -> Parent<'_> {
        match self {
            Anchor::Genesis(anchor) => Parent::Genesis(anchor),
            Anchor::Header(header) => Parent::Header(header),
        }
    }

    /// Its height (0 for the genesis).
    pub fn height(&self) -> u64 {
        self.as_parent().height()
    }

    /// Its header hash ([`Hash32::ZERO`] for the genesis): the next header's `prev_hash`.
    pub fn hash(&self) -> Hash32 {
        self.as_parent().hash()
    }

    /// Its time, ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        self.as_parent().time_ms()
    }

    /// Its network id as written.
    pub fn network_id(&self) -> &str {
        match self {
            Anchor::Genesis(anchor) => anchor.network.as_str(),
            Anchor::Header(header) => &header.network_id,
        }
    }

    /// The header, unless this is the genesis.
    pub fn header(&self) -> Option<&proto::Header> {
        match self {
            Anchor::Genesis(_) => None,
            Anchor::Header(header) => Some(header),
        }
    }
}

/// A verified point of the chain and the validator set that signs the
/// height after it. Built from a genesis or a checkpoint, then grown only by
/// [`verify_next`], [`verify_skip`] and [`verify_chain_proof`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedState {
    anchor: Anchor,
    /// The anchor's chain commitment (parsed once).
    commitment: Hash32,
    /// Hash of the set that signs `height + 1`.
    next_validators_hash: Hash32,
    /// That set, when known (it always hashes to `next_validators_hash`).
    next_validators: Option<ValidatorSet>,
}

impl TrustedState {
    /// Trust in a genesis: height 0, signed next by the genesis validator set.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, VerifyError> {
        let set = parse_set("validators", &genesis.validators)?;
        Self::from_anchor(GenesisAnchor::from_genesis(genesis), set)
    }

    /// Trust in a genesis anchor; `validators` must hash to its `validators_hash`.
    pub fn from_anchor(anchor: GenesisAnchor, validators: ValidatorSet) -> Result<Self, VerifyError> {
        mismatch(0, "validators", anchor.validators_hash, validators.hash())?;
        Ok(Self {
            commitment: anchor.commitment(),
            next_validators_hash: anchor.validators_hash,
            anchor: Anchor::Genesis(anchor),
            next_validators: Some(validators),
        })
    }

    /// Trust in a checkpoint header (verified by other means) and the set
    /// that signs the height after it, which must hash to the header's
    /// `next_validators_hash`.
    pub fn new(header: proto::Header, next_validators: ValidatorSet) -> Result<Self, VerifyError> {
        Self::from_header(header)?.with_set(next_validators)
    }

    /// Trust in a checkpoint header whose next validator set is known only
    /// by its hash (see [`TrustedState::with_next_validators`]).
    pub fn from_header(header: proto::Header) -> Result<Self, VerifyError> {
        header
            .validate()
            .map_err(|e| VerifyError::Malformed(e.within("header")))?;
        Ok(Self {
            commitment: fields::hash_in("header", "chain_commitment", &header.chain_commitment)?,
            next_validators_hash: fields::hash_in("header", "next_validators_hash", &header.next_validators_hash)?,
            anchor: Anchor::Header(header),
            next_validators: None,
        })
    }

    /// The same state with its next validator set supplied (e.g. from
    /// `Block.next_validators`); it must hash to [`TrustedState::next_validators_hash`].
    pub fn with_next_validators(self, next_validators: &proto::ValidatorSet) -> Result<Self, VerifyError> {
        let set = parse_set("next_validators", next_validators)?;
        self.with_set(set)
    }

    fn with_set(mut self, set: ValidatorSet) -> VResult<Self> {
        mismatch(self.height(), "next_validators", self.next_validators_hash, set.hash())?;
        self.next_validators = Some(set);
        Ok(self)
    }

    /// The verified point.
    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// The verified header (`None` at the genesis).
    pub fn header(&self) -> Option<&proto::Header> {
        self.anchor.header()
    }

    /// The verified height (0 at the genesis).
    pub fn height(&self) -> u64 {
        self.anchor.height()
    }

    /// The verified header's hash ([`Hash32::ZERO`] at the genesis).
    pub fn hash(&self) -> Hash32 {
        self.anchor.hash()
    }

    /// The verified header's time (the genesis time at the genesis).
    pub fn time_ms(&self) -> u64 {
        self.anchor.time_ms()
    }

    /// The network id.
    pub fn network_id(&self) -> &str {
        self.anchor.network_id()
    }

    /// The verified chain commitment (the genesis commitment at height 0).
    pub fn chain_commitment(&self) -> Hash32 {
        self.commitment
    }

    /// The verified `state_root` (`None` at the genesis).
    pub fn state_root(&self) -> Option<Hash32> {
        self.header().and_then(|h| Hash32::from_slice(&h.state_root))
    }

    /// Hash of the set that signs the next height.
    pub fn next_validators_hash(&self) -> Hash32 {
        self.next_validators_hash
    }

    /// The set that signs the next height, when known.
    pub fn next_validators(&self) -> Option<&ValidatorSet> {
        self.next_validators.as_ref()
    }
}

// ───────────────────────────────── predicates ─────────────────────────────────

/// The header and commit of `signed`, both present and structurally valid
/// (hash lengths, at most [`MAX_VALIDATORS`] signatures).
pub fn signed_parts(signed: &proto::SignedHeader) -> Result<(&proto::Header, &proto::CommitCertificate), VerifyError> {
    let header = signed.header.as_ref().ok_or_else(|| VerifyError::missing("header"))?;
    let commit = signed.commit.as_ref().ok_or_else(|| VerifyError::missing("commit"))?;
    header
        .validate()
        .map_err(|e| VerifyError::Malformed(e.within("header")))?;
    commit
        .validate()
        .map_err(|e| VerifyError::Malformed(e.within("commit")))?;
    Ok((header, commit))
}

/// The header is of `network`.
pub fn check_network(header: &proto::Header, network: &NetworkId) -> Result<(), VerifyError> {
    rule(
        header.height,
        block::check_network("header.network_id", &header.network_id, network),
    )
}

/// `next.prev_hash` is the hash of `prev`, the header at the height before
/// ([`block::check_height`], [`block::check_hash_link`]).
pub fn verify_hash_link(prev: &proto::Header, next: &proto::Header) -> Result<(), VerifyError> {
    let parent = Parent::Header(prev);
    rule(next.height, block::check_height(parent, next))?;
    rule(next.height, block::check_hash_link(parent, next))
}

/// `next.chain_commitment = H(prev.chain_commitment ‖ height ‖ state_root ‖
/// proofs_root ‖ validators_hash)` ([`block::check_commitment`]), `next`
/// being the header at the height after `prev`.
pub fn verify_commitment_link(prev: &proto::Header, next: &proto::Header) -> Result<(), VerifyError> {
    let parent = Parent::Header(prev);
    rule(next.height, block::check_height(parent, next))?;
    rule(next.height, block::check_commitment(parent, next))
}

/// The header names `validators` as the set that signs it. Invalid otherwise.
pub fn check_header_validators(header: &proto::Header, validators: &ValidatorSet) -> Result<(), VerifyError> {
    mismatch(
        header.height,
        "header.validators_hash",
        fields::hash_in("header", "validators_hash", &header.validators_hash)?,
        validators.hash(),
    )
}

/// The header is signed by the set `trusted` expects next. Not enough trust
/// ([`VerifyError::ValidatorsNotTrusted`]) otherwise.
pub fn check_trusted_validators(trusted: &TrustedState, header: &proto::Header) -> Result<(), VerifyError> {
    let found = fields::hash_in("header", "validators_hash", &header.validators_hash)?;
    if found != trusted.next_validators_hash {
        return Err(VerifyError::ValidatorsNotTrusted {
            height: header.height,
            trusted: trusted.next_validators_hash,
            found,
        });
    }
    Ok(())
}

/// `next` is the set the header names to sign the height after it. Invalid otherwise.
pub fn check_next_validators(header: &proto::Header, next: &ValidatorSet) -> Result<(), VerifyError> {
    mismatch(
        header.height,
        "next_validators",
        fields::hash_in("header", "next_validators_hash", &header.next_validators_hash)?,
        next.hash(),
    )
}

/// The header's proposer is a member of `validators`
/// ([`block::check_proposer`]). Invalid otherwise.
pub fn check_proposer(header: &proto::Header, validators: &ValidatorSet) -> Result<(), VerifyError> {
    rule(header.height, block::check_proposer(header, validators)).map(|_| ())
}

/// `commit` certifies `header` on `network` ([`block::verify_header_commit`]):
/// the same height, a round not before the header's, the header's hash,
/// and valid precommit signatures of distinct members of `validators`
/// holding more than 2/3 of its power (batch Ed25519), every signature
/// checked. Short power with valid signatures is
/// [`VerifyError::NotEnoughPower`] (not enough trust); anything else is
/// invalid.
pub fn verify_commit_certificate(
    header: &proto::Header,
    commit: &proto::CommitCertificate,
    validators: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, VerifyError> {
    verify_commit_certificate_with(header, commit, validators, network, SignatureCheck::All)
}

/// [`verify_commit_certificate`] checking the signatures `check` says:
/// with [`SignatureCheck::Quorum`] (what [`verify_next`] uses) only the
/// highest-power ones, until they pass the quorum.
pub fn verify_commit_certificate_with(
    header: &proto::Header,
    commit: &proto::CommitCertificate,
    validators: &ValidatorSet,
    network: &NetworkId,
    check: SignatureCheck,
) -> Result<QuorumSummary, VerifyError> {
    rule(
        header.height,
        block::verify_header_commit_with(header, commit, validators, network, check),
    )
}

// ─────────────────────────────── headers ───────────────────────────────

/// How a header relates to the trusted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `height + 1`, signed by the trusted next set.
    Adjacent,
    /// Any later height, with the signing set sent along.
    Skip,
    /// A chain-proof step: like a skip, but a set nobody handed trust to is invalid.
    Step,
}

fn verify_signed(
    trusted: &TrustedState,
    signed: &proto::SignedHeader,
    claimed: Option<&proto::ValidatorSet>,
    next_validators: Option<&proto::ValidatorSet>,
    network: &NetworkId,
    mode: Mode,
    check: SignatureCheck,
) -> VResult<TrustedState> {
    rule(
        trusted.height(),
        block::check_network("trusted.network_id", trusted.network_id(), network),
    )?;
    let (header, commit) = signed_parts(signed)?;
    check_network(header, network)?;
    let height = header.height;
    let trusted_height = trusted.height();
    let parent = trusted.anchor.as_parent();
    let adjacent_height = trusted_height
        .checked_add(1)
        .ok_or(VerifyError::HeightOverflow { height: trusted_height })?;
    if mode == Mode::Adjacent {
        rule(height, block::check_height(parent, header))?;
    } else if height <= trusted_height {
        return Err(VerifyError::HeightNotAfter {
            field: "header.height",
            after: trusted_height,
            found: height,
        });
    }
    // The same time rule as a full node's; over a skip, what the rule for
    // each height in between implies.
    rule(
        height,
        block::check_time(trusted.time_ms(), height - trusted_height, header),
    )?;
    let adjacent = height == adjacent_height;
    if adjacent {
        rule(height, block::check_hash_link(parent, header))?;
        rule(height, block::check_commitment(parent, header))?;
    }

    // The set that signs the header.
    let signs = fields::hash_in("header", "validators_hash", &header.validators_hash)?;
    let parsed;
    let signers: &ValidatorSet = match claimed {
        None => {
            mismatch(height, "header.validators_hash", trusted.next_validators_hash, signs)?;
            let set = trusted
                .next_validators
                .as_ref()
                .ok_or(VerifyError::NextValidatorsUnknown {
                    height: trusted_height,
                    hash: trusted.next_validators_hash,
                })?;
            // The trusted set, verifying again: it keeps its key table.
            set.note_trusted_use();
            set
        }
        Some(claimed) => {
            check_set_count("validators", claimed)?;
            mismatch(height, "validators", signs, validators_hash(claimed))?;
            if signs != trusted.next_validators_hash {
                return Err(match mode {
                    _ if adjacent => VerifyError::Mismatch {
                        height,
                        field: "header.validators_hash",
                        expected: trusted.next_validators_hash,
                        found: signs,
                    },
                    Mode::Step => VerifyError::BrokenHandOff {
                        height,
                        trusted: trusted.next_validators_hash,
                        found: signs,
                    },
                    Mode::Adjacent | Mode::Skip => VerifyError::ValidatorsNotTrusted {
                        height,
                        trusted: trusted.next_validators_hash,
                        found: signs,
                    },
                });
            }
            match &trusted.next_validators {
                Some(set) => {
                    set.note_trusted_use();
                    set
                }
                None => {
                    parsed = parse_set("validators", claimed)?;
                    &parsed
                }
            }
        }
    };
    check_proposer(header, signers)?;

    // The set that signs the height after it.
    let next_hash = fields::hash_in("header", "next_validators_hash", &header.next_validators_hash)?;
    let next = match next_validators {
        Some(next) => {
            let next = parse_set("next_validators", next)?;
            check_next_validators(header, &next)?;
            Some(next)
        }
        None => (next_hash == signs).then(|| signers.clone()),
    };

    // Signatures last: they are the expensive part.
    verify_commit_certificate_with(header, commit, signers, network, check)?;
    Ok(TrustedState {
        anchor: Anchor::Header(header.clone()),
        commitment: fields::hash_in("header", "chain_commitment", &header.chain_commitment)?,
        next_validators_hash: next_hash,
        next_validators: next,
    })
}

/// Verifies the header at `trusted.height() + 1` and returns the new trusted
/// state.
///
/// Checks, in order: the network; the height; time not before the trusted
/// header; `prev_hash` and the chain commitment link; that the header's
/// `validators_hash` is the trusted next set (invalid otherwise: nothing can
/// change between adjacent heights) and that the set is known
/// ([`VerifyError::NextValidatorsUnknown`] otherwise); the proposer's
/// membership; `next_validators` against `next_validators_hash`; and last,
/// the commit certificate against the trusted set, whose signatures are
/// checked in order of power until they pass the quorum
/// ([`SignatureCheck::Quorum`]; [`verify_next_with`] can check them all).
///
/// `next_validators` is the set that signs the height after the header
/// (`Block.next_validators` when the set changes). With `None`, the new
/// state's next set is the current one if the header says it does not
/// change, and is known only by hash otherwise.
pub fn verify_next(
    trusted: &TrustedState,
    signed: &proto::SignedHeader,
    next_validators: Option<&proto::ValidatorSet>,
    network: &NetworkId,
) -> Result<TrustedState, VerifyError> {
    verify_next_with(trusted, signed, next_validators, network, SignatureCheck::Quorum)
}

/// [`verify_next`] checking the commit's signatures as `check` says.
/// [`SignatureCheck::All`] is for a client that forwards the block to
/// full nodes: they refuse a block with any bad signature, and blame who
/// forwarded it. [`verify_next`] is this with [`SignatureCheck::Quorum`].
pub fn verify_next_with(
    trusted: &TrustedState,
    signed: &proto::SignedHeader,
    next_validators: Option<&proto::ValidatorSet>,
    network: &NetworkId,
    check: SignatureCheck,
) -> Result<TrustedState, VerifyError> {
    verify_signed(trusted, signed, None, next_validators, network, Mode::Adjacent, check)
}

/// Verifies a header at a height above `trusted.height()`, signed by
/// `validators`, and returns the new trusted state.
///
/// `validators` must hash to the header's `validators_hash` (invalid
/// otherwise), and that must be the set `trusted` expects next: when it is
/// not, the set changed since the trusted height and the result is
/// [`VerifyError::ValidatorsNotTrusted`] (not enough trust; get a chain
/// proof). Then as [`verify_next`], without the `prev_hash` and commitment
/// links unless the header happens to be adjacent (then they are checked).
pub fn verify_skip(
    trusted: &TrustedState,
    signed: &proto::SignedHeader,
    validators: &proto::ValidatorSet,
    next_validators: Option<&proto::ValidatorSet>,
    network: &NetworkId,
) -> Result<TrustedState, VerifyError> {
    verify_signed(
        trusted,
        signed,
        Some(validators),
        next_validators,
        network,
        Mode::Skip,
        SignatureCheck::Quorum,
    )
}

/// Verifies a chain of trust from `trusted` to the last step of `proof`
/// (DESIGN.md "Chain proof") and returns the trusted state at that step.
///
/// First, before any hashing or signature work: at most
/// [`MAX_CHAIN_PROOF_STEPS`] steps, at least one, `proof.trusted_height`
/// equal to the trusted height, every step with a header, and heights
/// strictly increasing above the trusted height. Then each step in order is
/// verified like [`verify_skip`] against the state the previous step left:
/// its `validators` must hash to its header's `validators_hash`, which must
/// be the set trust was handed to ([`VerifyError::BrokenHandOff`], invalid,
/// otherwise), and sign it with more than 2/3 of the power; its
/// `next_validators_hash` hands trust to the next set. A step that is
/// adjacent to the point before it also gets the `prev_hash` and commitment
/// link checks. Steps that hand off nothing are allowed.
///
/// The target is the last step; check its height against the request with
/// [`TrustedState::height`]. Its next set is known when it does not change
/// there (else only by hash: see the [module docs](self)). Errors of step
/// `i` are wrapped in [`VerifyError::ChainProofStep`].
pub fn verify_chain_proof(
    trusted: &TrustedState,
    proof: &proto::ChainProof,
    network: &NetworkId,
) -> Result<TrustedState, VerifyError> {
    let steps = &proof.steps;
    if steps.len() > MAX_CHAIN_PROOF_STEPS {
        return Err(VerifyError::TooMany {
            field: "steps",
            count: steps.len(),
            max: MAX_CHAIN_PROOF_STEPS,
        });
    }
    if steps.is_empty() {
        return Err(VerifyError::Malformed(FieldError::new(
            "steps",
            FieldProblem::Rule("must not be empty"),
        )));
    }
    if proof.trusted_height != trusted.height() {
        return Err(VerifyError::WrongHeight {
            field: "chain_proof.trusted_height",
            expected: trusted.height(),
            found: proof.trusted_height,
        });
    }
    let mut after = trusted.height();
    for (index, step) in steps.iter().enumerate() {
        let wrap = |height, source| VerifyError::ChainProofStep {
            step: index,
            height,
            source: Box::new(source),
        };
        let header = step_header(step).ok_or_else(|| wrap(0, VerifyError::missing("header.header")))?;
        if header.height <= after {
            return Err(wrap(
                header.height,
                VerifyError::HeightNotAfter {
                    field: "header.height",
                    after,
                    found: header.height,
                },
            ));
        }
        after = header.height;
    }
    let mut reached: Option<TrustedState> = None;
    for (index, step) in steps.iter().enumerate() {
        let height = step_header(step).map_or(0, |h| h.height);
        let wrap = |source| VerifyError::ChainProofStep {
            step: index,
            height,
            source: Box::new(source),
        };
        let signed = step
            .header
            .as_ref()
            .ok_or_else(|| wrap(VerifyError::missing("header")))?;
        let validators = step
            .validators
            .as_ref()
            .ok_or_else(|| wrap(VerifyError::missing("validators")))?;
        let base = reached.as_ref().unwrap_or(trusted);
        let next = verify_signed(
            base,
            signed,
            Some(validators),
            None,
            network,
            Mode::Step,
            SignatureCheck::Quorum,
        )
        .map_err(wrap)?;
        reached = Some(next);
    }
    reached.ok_or_else(|| VerifyError::missing("steps"))
}

fn step_header(step: &proto::ChainProofStep) -> Option<&proto::Header> {
    step.header.as_ref().and_then(|s| s.header.as_ref())
}

/// The step-by-step chain-proof verifier behind the
/// [`ChainProofVerifier`] seam of [`crate::proof`]: a statement holds when
/// it starts at this verifier's trusted state and [`verify_chain_proof`]
/// reaches exactly its target height and header hash.
#[derive(Debug, Clone)]
pub struct StepVerifier {
    trusted: TrustedState,
    network: NetworkId,
}

impl StepVerifier {
    /// A verifier starting from `trusted` on `network`.
    pub fn new(trusted: TrustedState, network: NetworkId) -> Self {
        Self { trusted, network }
    }

    /// The trusted state it starts from.
    pub fn trusted(&self) -> &TrustedState {
        &self.trusted
    }
}

impl ChainProofVerifier for StepVerifier {
    type Proof = proto::ChainProof;
    type Error = VerifyError;

    fn verify_chain(&self, statement: &ChainStatement, proof: &proto::ChainProof) -> Result<(), VerifyError> {
        if statement.trusted_height != self.trusted.height() {
            return Err(VerifyError::WrongHeight {
                field: "statement.trusted_height",
                expected: self.trusted.height(),
                found: statement.trusted_height,
            });
        }
        mismatch(
            statement.trusted_height,
            "statement.trusted_hash",
            self.trusted.hash(),
            statement.trusted_hash,
        )?;
        let reached = verify_chain_proof(&self.trusted, proof, &self.network)?;
        if reached.height() != statement.target_height {
            return Err(VerifyError::WrongHeight {
                field: "statement.target_height",
                expected: statement.target_height,
                found: reached.height(),
            });
        }
        mismatch(
            reached.height(),
            "statement.target_hash",
            statement.target_hash,
            reached.hash(),
        )
    }
}

// ─────────────────────────────── state values ───────────────────────────────

/// Verifies a state read against a verified `header`: the response is for
/// `key` at the header's height (and, if it carries a header, that very
/// header), and its proof shows the value (or its absence) under the
/// header's `state_root`. Returns the proven value, `None` when the key is
/// absent. Every failure is invalid.
pub fn verify_state_value(
    header: &proto::Header,
    key: &[u8],
    response: &proto::StateValueResponse,
) -> Result<Option<Vec<u8>>, VerifyError> {
    let height = header.height;
    for (field, len, max) in [
        ("key", key.len(), MAX_STATE_KEY),
        ("response.key", response.key.len(), MAX_STATE_KEY),
        (
            "response.value",
            response.value.as_ref().map_or(0, Vec::len),
            MAX_STATE_VALUE,
        ),
    ] {
        if len > max {
            return Err(VerifyError::Malformed(FieldError::new(
                field,
                FieldProblem::TooLong { max, actual: len },
            )));
        }
    }
    let root = fields::hash_in("header", "state_root", &header.state_root)?;
    if response.height != height {
        return Err(VerifyError::WrongHeight {
            field: "response.height",
            expected: height,
            found: response.height,
        });
    }
    if response.key != key {
        return Err(VerifyError::Mismatch {
            height,
            field: "response.key",
            expected: state::key_hash(key),
            found: state::key_hash(&response.key),
        });
    }
    if let Some(carried) = response.header.as_ref().and_then(|s| s.header.as_ref()) {
        mismatch(height, "response.header", header_hash(header), header_hash(carried))?;
    }
    let proof = response
        .proof
        .as_ref()
        .ok_or_else(|| VerifyError::missing("response.proof"))?;
    let value = response.value.as_deref();
    state::verify_value(&root, key, value, proof).map_err(|source| VerifyError::StateProof { height, source })?;
    Ok(value.map(<[u8]>::to_vec))
}

// ───────────────────────────────── snapshots ─────────────────────────────────

/// Checks a snapshot manifest against the verified header at its height:
/// at most [`MAX_SNAPSHOT_CHUNKS`] chunk hashes (checked first), the schema
/// (`chunk_count` equal to the number of 32-byte chunk hashes), at least one
/// chunk, `total_entries` at most `chunk_count × MAX_CHUNK_ENTRIES`, and the
/// same network, height and `state_root` as the header. The chunk hashes
/// themselves are only a peer's claim; [`verify_snapshot_chunk`] proves
/// every chunk against the root.
pub fn verify_snapshot_manifest(header: &proto::Header, manifest: &proto::SnapshotManifest) -> Result<(), VerifyError> {
    if manifest.chunk_hashes.len() > MAX_SNAPSHOT_CHUNKS {
        return Err(VerifyError::TooMany {
            field: "manifest.chunk_hashes",
            count: manifest.chunk_hashes.len(),
            max: MAX_SNAPSHOT_CHUNKS,
        });
    }
    manifest
        .validate()
        .map_err(|e| VerifyError::Malformed(e.within("manifest")))?;
    if manifest.chunk_count == 0 {
        return Err(VerifyError::Malformed(FieldError::new(
            "manifest.chunk_count",
            FieldProblem::Rule("must be at least 1"),
        )));
    }
    let max_entries = u64::from(manifest.chunk_count).saturating_mul(MAX_CHUNK_ENTRIES as u64);
    if manifest.total_entries > max_entries {
        return Err(VerifyError::Malformed(FieldError::new(
            "manifest.total_entries",
            FieldProblem::Rule("more than chunk_count × MAX_CHUNK_ENTRIES"),
        )));
    }
    if manifest.network_id != header.network_id {
        return Err(VerifyError::WrongNetwork {
            field: "manifest.network_id",
            expected: header
                .network_id
                .chars()
                .take(crate::chain::MESSAGE_FIELD_CHARS)
                .collect(),
            found: manifest
                .network_id
                .chars()
                .take(crate::chain::MESSAGE_FIELD_CHARS)
                .collect(),
        });
    }
    if manifest.height != header.height {
        return Err(VerifyError::WrongHeight {
            field: "manifest.height",
            expected: header.height,
            found: manifest.height,
        });
    }
    let found = Hash32::from_slice(&manifest.state_root).ok_or_else(|| VerifyError::missing("manifest.state_root"))?;
    mismatch(
        header.height,
        "manifest.state_root",
        fields::hash_in("header", "state_root", &header.state_root)?,
        found,
    )
}

/// Verifies snapshot chunk `chunk` of a manifest already checked with
/// [`verify_snapshot_manifest`], following `previous` (the summary of chunk
/// `index − 1`; `None` for chunk 0): the chunk is structurally valid (entry
/// count bounded first), at the manifest's height, within its chunk count,
/// hashes ([`state::chunk_hash`]) to the manifest's entry, and proves its
/// entries against the manifest's `state_root` ([`state::verify_chunk`]);
/// and the state ends exactly at the manifest's last chunk. Returns the
/// summary to pass with the next chunk. Every failure is invalid.
pub fn verify_snapshot_chunk(
    manifest: &proto::SnapshotManifest,
    chunk: &proto::SnapshotChunk,
    previous: Option<&ChunkSummary>,
) -> Result<ChunkSummary, VerifyError> {
    let index = chunk.index;
    let count = manifest.chunk_count;
    if manifest.chunk_hashes.len() != count as usize {
        return Err(VerifyError::Malformed(FieldError::new(
            "manifest.chunk_hashes",
            FieldProblem::Rule("must have chunk_count items"),
        )));
    }
    if chunk.entries.len() > MAX_CHUNK_ENTRIES {
        return Err(VerifyError::TooMany {
            field: "chunk.entries",
            count: chunk.entries.len(),
            max: MAX_CHUNK_ENTRIES,
        });
    }
    chunk
        .validate()
        .map_err(|e| VerifyError::Malformed(e.within("chunk")))?;
    if chunk.height != manifest.height {
        return Err(VerifyError::WrongHeight {
            field: "chunk.height",
            expected: manifest.height,
            found: chunk.height,
        });
    }
    let listed = usize::try_from(index)
        .ok()
        .and_then(|i| manifest.chunk_hashes.get(i))
        .ok_or(VerifyError::ChunkOutOfRange { index, count })?;
    let expected = fields::hash32(listed).map_err(|e| e.at("manifest.chunk_hashes"))?;
    let found = state::chunk_hash(chunk);
    if found != expected {
        return Err(VerifyError::ChunkHash { index, expected, found });
    }
    let root = Hash32::from_slice(&manifest.state_root).ok_or_else(|| VerifyError::missing("manifest.state_root"))?;
    let summary = state::verify_chunk(&root, chunk, previous).map_err(|e| match e {
        StateProofError::OutOfSequence(reason) => VerifyError::ChunkOutOfOrder { index, reason },
        source => VerifyError::Chunk { index, source },
    })?;
    let manifest_last = index.checked_add(1) == Some(count);
    if summary.is_last() != manifest_last {
        return Err(VerifyError::SnapshotLength {
            index,
            count,
            state_ends: summary.is_last(),
        });
    }
    Ok(summary)
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Genesis(anchor) => write!(f, "genesis of {}", anchor.network.as_str()),
            Anchor::Header(header) => write!(f, "header {} at height {}", short(&header_hash(header)), header.height),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_labels() {
        let trust = VerifyError::NotEnoughPower {
            height: 3,
            signed: 20,
            required: 27,
            total: 40,
        };
        assert!(trust.is_not_enough_trust() && !trust.is_invalid());
        assert_eq!(trust.label(), "not_enough_power");
        let wrapped = VerifyError::ChainProofStep {
            step: 2,
            height: 3,
            source: Box::new(trust.clone()),
        };
        assert!(wrapped.is_not_enough_trust());
        assert_eq!(wrapped.label(), "not_enough_power");
        assert_eq!(wrapped.innermost(), &trust);
        let forged = VerifyError::BrokenHandOff {
            height: 3,
            trusted: Hash32([1; 32]),
            found: Hash32([2; 32]),
        };
        assert!(forged.is_invalid() && !forged.is_not_enough_trust());
        assert_eq!(
            forged.to_string(),
            "height 3: signed by validators 0202020202020202, but trust was handed to 0101010101010101"
        );
    }
}
