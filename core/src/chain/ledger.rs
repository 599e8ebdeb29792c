//! The chain's deterministic state machine: chain state after a height,
//! block execution, and the proposer's body builder.
//!
//! Every node runs [`Ledger::apply`] on every decided block and reaches the
//! same state; the root of that state ([`Ledger::root`]) is the header's
//! `state_root`. The proposer runs [`Ledger::propose`] to turn its mempool,
//! the commit of the previous block and pending evidence into a block body
//! that [`Ledger::apply`] accepts, and [`Ledger::build_block`] to wrap the
//! body in a header.
//!
//! Pure and wasm-clean: no IO, no clock, no threads. Time does not enter
//! execution at all; the block height does (proof freshness, proof records).
//!
//! ## State layout
//!
//! All keys come from [`crate::state`]; the state only ever grows or
//! overwrites (no key is deleted).
//!
//! | key | value |
//! |---|---|
//! | [`identity_key`]`(zsi_id)` | prost encoding of `IdentityRecord { zsi_id, identity_key, vrf_key, reputation }` (reputation always present) |
//! | [`validators_key`]`()` | prost encoding of the `ValidatorSet` that signs the *next* block (canonical order) |
//! | [`params_key`]`()` | [`encode_params`]: 16 big-endian `u64`s, 128 bytes (format version, tier thresholds, consensus params, uptime params) |
//! | [`proof_key`]`(content_id)` | the height of the block that included the proof, 8 bytes big-endian |
//! | [`uptime_key`]`(zsi_id)` | `to_height` of the subject's last credited uptime window, 8 bytes big-endian |
//!
//! The state is kept in a [`MemoryTree`] that each block updates only at
//! the keys it writes ([`Ledger::last_writes`] lists them, for the node's
//! `jmt` mirror); the root is computed once per block and cached, so
//! [`Ledger::root`] is free.
//!
//! ## Block rules
//!
//! [`Ledger::apply`] executes a block whose header already passed
//! [`crate::chain::validate_block`] against its parent. It checks, in this
//! order, and fails with the first [`LedgerError`]:
//!
//! | what | rule |
//! |---|---|
//! | height | `header.height == height() + 1`; `prev_hash`, `validators_hash` and network match this ledger (cheap re-checks, so a block cannot be applied to the wrong state) |
//! | `last_commit` | absent at height 1; at every later height present, for the previous header (height, round ≥ its round, header hash) and signed by more than 2/3 of the set that signed it ([`verify_commit`](crate::chain::verify_commit)). Too little power is [`LedgerError::LastCommitInsufficientPower`], anything else [`LedgerError::InvalidLastCommit`] |
//! | proofs | each structurally valid, not twice in the block, not already on chain, and accepted by the [`VerifierRegistry`] with a [`ProofContext`] at the *block's* height over the state *before* the block |
//! | uptime windows | an uptime credit's window starts above the subject's last credited window end (chain state, then earlier proofs of the same block): uptime is credited once per window ([`LedgerError::UptimeWindowCredited`]) |
//! | events | exactly: one event per proof with an effect ([`crate::proof::ProofEffect::reputation_event`]), in proof order; then [`participation_events`] of `last_commit` (signers, `zsi_id` ascending); then zero or more slash events |
//! | slash events | the evidence passes [`verify_evidence`] against the current set (the one signing this block) or, failing that, the set that signed the previous block; the event names the culprit; the culprit is not slashed yet and not slashed twice in the block |
//! | next validators | the current set minus the culprits slashed in this block; `header.next_validators_hash` and `block.next_validators` (present only when the set changes) must say so |
//! | state root | `header.state_root` is the root after applying the events in block order ([`apply_event`], default scoring rules), recording each proof at this height and writing the next set |
//!
//! Events apply in block order, so a validator slashed in a block still
//! gets the participation credit listed before its slash event (and the
//! slash then zeroes its score). Proofs are verified against the state
//! before the block: a proof's effect never depends on another proof of the
//! same block.
//!
//! **A set is never emptied.** If slashing every culprit of a block would
//! leave no validator, the set is kept unchanged (the culprits are still
//! slashed, so they are TL0, but they keep signing): an empty set could
//! sign no block and the chain would halt for good. This can only happen
//! when every remaining validator is slashed in one block.
//!
//! Evidence has no age limit: the set changes only by slashing, so a
//! validator that ever equivocated either is still in the set (and can be
//! slashed) or was already slashed.
//!
//! ## Proposer policy (not validity rules)
//!
//! [`Ledger::propose`] takes mempool candidates in the given order and
//! skips — never fails on — any that are malformed, invalid, duplicates,
//! already on chain, over [`MAX_PROOFS_PER_BLOCK`] or over the
//! [`MAX_BLOCK_PROOF_BYTES`] budget (so the proposal fits a `blocks`
//! message); likewise evidence that does not verify, names an
//! already-slashed culprit, or a culprit already slashed by earlier evidence
//! in the list. Each skip is reported with an id and a reason.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use crate::chain::block::{BlockBuilder, BlockError, Parent, verify_header_commit};
use crate::chain::quorum::{CertificateError, QuorumSummary, ValidatorSet, ValidatorSetError, verify_evidence};
use crate::chain::reputation_rules::{apply_event, participation_events, slash_event};
use crate::genesis::{ConsensusParams, Genesis, UptimeParams};
use crate::hash::{Hash32, tagged_hash};
use crate::identity::ZsiId;
use crate::identity::registry::{IdentityRegistry, MemoryRegistry, RegisteredIdentity};
use crate::proof::{ProofContext, ProofEffect, ProofError, VerifiedProof, VerifierRegistry};
use crate::state::{MemoryTree, identity_key, params_key, proof_key, uptime_key, validators_key};
use crate::tier::{ThresholdsError, Tier, TierThresholds, tier_of};
use crate::wire::limits::{MAX_BLOCKS_MESSAGE, MAX_PROOFS_PER_BLOCK, MAX_REPUTATION_EVENTS_PER_BLOCK};
use crate::wire::proto::{self, reputation_event};
use crate::wire::sign::{header_hash, proof_content_id, validators_hash};
use crate::wire::{FieldError, FieldProblem, NetworkId, Validate, fields};

/// Most encoded bytes of proof envelopes a proposer puts in one block
/// (3 MiB): the rest of a [`MAX_BLOCKS_MESSAGE`] proposal is left for the
/// header, events, evidence, validator set and last commit. A proposer
/// policy; [`Ledger::apply`] does not check it.
pub const MAX_BLOCK_PROOF_BYTES: usize = 3 * 1024 * 1024;

const _: () = assert!(MAX_BLOCK_PROOF_BYTES < MAX_BLOCKS_MESSAGE);

/// Version of the [`encode_params`] format (its first field). Version 2
/// added `max_clock_skew_ms`; version 3 the uptime params.
pub const PARAMS_VERSION: u64 = 3;

/// Length of an [`encode_params`] value: 16 `u64`s.
pub const PARAMS_LEN: usize = 16 * 8;

/// Domain tag of [`evidence_id`]. Not a prefix of any tag in
/// [`crate::hash::tags`] or [`crate::state::tags`], nor they of it.
pub const EVIDENCE_ID_TAG: &str = "tiernet/evidence-id/v1";

/// The value under [`params_key`]: sixteen big-endian `u64`s —
/// [`PARAMS_VERSION`], then the tier thresholds (`available_uptime_minutes`,
/// `committed_score`, `reliable_score`, `trusted_score`), then the consensus
/// params (`propose_timeout_ms`, `prevote_timeout_ms`,
/// `precommit_timeout_ms`, `timeout_delta_ms`, `block_time_ms`,
/// `max_clock_skew_ms`), then the uptime params (`window_blocks`,
/// `max_age_blocks`, `min_witnesses`, `heartbeat_interval_ms`, `minute_ms`).
/// Big-endian like every other integer the chain hashes.
pub fn encode_params(thresholds: &TierThresholds, consensus: &ConsensusParams, uptime: &UptimeParams) -> Vec<u8> {
    [
        PARAMS_VERSION,
        thresholds.available_uptime_minutes,
        thresholds.committed_score,
        thresholds.reliable_score,
        thresholds.trusted_score,
        consensus.propose_timeout_ms,
        consensus.prevote_timeout_ms,
        consensus.precommit_timeout_ms,
        consensus.timeout_delta_ms,
        consensus.block_time_ms,
        consensus.max_clock_skew_ms,
        uptime.window_blocks,
        uptime.max_age_blocks,
        uptime.min_witnesses,
        uptime.heartbeat_interval_ms,
        uptime.minute_ms,
    ]
    .iter()
    .flat_map(|field| field.to_be_bytes())
    .collect()
}

/// Parses an [`encode_params`] value; `None` unless it is exactly
/// [`PARAMS_LEN`] bytes of version [`PARAMS_VERSION`].
pub fn decode_params(bytes: &[u8]) -> Option<(TierThresholds, ConsensusParams)> {
    if bytes.len() != PARAMS_LEN {
        return None;
    }
    let mut fields = bytes
        .chunks_exact(8)
        .map(|chunk| <[u8; 8]>::try_from(chunk).ok().map(u64::from_be_bytes));
    let mut next = || fields.next().flatten();
    if next()? != PARAMS_VERSION {
        return None;
    }
    let thresholds = TierThresholds {
        available_uptime_minutes: next()?,
        committed_score: next()?,
        reliable_score: next()?,
        trusted_score: next()?,
    };
    let consensus = ConsensusParams {
        propose_timeout_ms: next()?,
        prevote_timeout_ms: next()?,
        precommit_timeout_ms: next()?,
        timeout_delta_ms: next()?,
        block_time_ms: next()?,
        max_clock_skew_ms: next()?,
    };
    Some((thresholds, consensus))
}

/// The uptime params of an [`encode_params`] value (its last five fields);
/// `None` unless it is exactly [`PARAMS_LEN`] bytes of version [`PARAMS_VERSION`].
pub fn decode_uptime_params(bytes: &[u8]) -> Option<UptimeParams> {
    decode_params(bytes)?;
    let field = |i: usize| {
        bytes
            .get(i * 8..i * 8 + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
    };
    Some(UptimeParams {
        window_blocks: field(11)?,
        max_age_blocks: field(12)?,
        min_witnesses: field(13)?,
        heartbeat_interval_ms: field(14)?,
        minute_ms: field(15)?,
    })
}

/// The record kept under [`identity_key`] for a registered identity.
pub fn identity_record(zsi_id: &ZsiId, identity: &RegisteredIdentity) -> proto::IdentityRecord {
    proto::IdentityRecord {
        zsi_id: zsi_id.as_bytes().to_vec(),
        identity_key: identity.public.identity_key.as_bytes().to_vec(),
        vrf_key: identity.public.vrf_key.to_bytes().to_vec(),
        reputation: Some((&identity.reputation).into()),
    }
}

/// `BLAKE3("tiernet/evidence-id/v1" ‖ encoding(evidence))`: how
/// [`BlockBody::skipped`] names a piece of evidence.
pub fn evidence_id(evidence: &proto::Evidence) -> Hash32 {
    tagged_hash(EVIDENCE_ID_TAG, &[&evidence.encode_to_vec()])
}

// ─────────────────────────────────── errors ───────────────────────────────────

use crate::hash::short;

fn short_opt(hash: &Option<Hash32>) -> String {
    hash.as_ref().map_or_else(|| "absent".to_owned(), short)
}

/// Why a genesis cannot start a ledger, or a block cannot be proposed,
/// built or applied. Errors about a block name the position (proof or
/// event index) and both values where there are two.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The genesis validator set is unusable.
    #[error("genesis validator set: {0}")]
    GenesisValidators(ValidatorSetError),
    /// The genesis tier thresholds do not increase.
    #[error("genesis tiers: {0}")]
    GenesisThresholds(ThresholdsError),
    /// A genesis validator without an identity record.
    #[error("genesis validator {} is not a registered identity", short(&.validator.0))]
    UnregisteredValidator {
        /// The validator.
        validator: ZsiId,
    },
    /// The ledger is at the highest height: nothing can follow.
    #[error("height {height} has no successor")]
    HeightOverflow {
        /// The ledger's height.
        height: u64,
    },
    /// A field breaks the schema (its path says where).
    #[error("block breaks the schema: {0}")]
    Malformed(#[from] FieldError),
    /// A list over its bound.
    #[error("{field}: {count} items, at most {max} allowed")]
    TooMany {
        /// The list.
        field: &'static str,
        /// Its length.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A block for another height than the next.
    #[error("header.height: expected {expected}, found {found}")]
    WrongHeight {
        /// `height() + 1`.
        expected: u64,
        /// The block's height.
        found: u64,
    },
    /// A block for another network.
    #[error("header.network_id: expected {expected:?}, found {found:?}")]
    WrongNetwork {
        /// Our network.
        expected: String,
        /// The block's (truncated to 64 characters).
        found: String,
    },
    /// A hash that is not the one execution computes.
    #[error("{field}: expected {}, found {}", short(.expected), short(.found))]
    Mismatch {
        /// `header.prev_hash`, `header.validators_hash`,
        /// `header.next_validators_hash` or `header.state_root`.
        field: &'static str,
        /// What execution computes.
        expected: Hash32,
        /// What the block says.
        found: Hash32,
    },
    /// No `last_commit` in a block after height 1.
    #[error("last_commit: missing; block {height} needs the commit of block {previous}")]
    MissingLastCommit {
        /// The block's height.
        height: u64,
        /// The height whose commit is missing.
        previous: u64,
    },
    /// A `last_commit` in block 1, which has no previous block.
    #[error("last_commit: block 1 follows the genesis and carries no commit")]
    UnexpectedLastCommit,
    /// Every signature of `last_commit` verifies, but they hold too little
    /// power: not enough trust rather than a forgery.
    #[error("last_commit: signed power {signed} of {total} is below the required {required}")]
    LastCommitInsufficientPower {
        /// Power of the valid signers.
        signed: u64,
        /// The threshold.
        required: u64,
        /// Total power of the set that signed the previous block.
        total: u64,
    },
    /// `last_commit` is not a valid commit of the previous block (wrong
    /// height or block, earlier round, bad or unknown signer).
    #[error("last_commit: {0}")]
    InvalidLastCommit(BlockError),
    /// A proof envelope breaks the schema.
    #[error("proofs[{index}]: {error}")]
    MalformedProof {
        /// Its position.
        index: usize,
        /// What is wrong.
        error: FieldError,
    },
    /// A proof the verifier registry refuses.
    #[error("proofs[{index}] ({}): {error}", short(.content_id))]
    InvalidProof {
        /// Its position.
        index: usize,
        /// Its content id.
        content_id: Hash32,
        /// Why.
        error: ProofError,
    },
    /// The same proof twice in one block.
    #[error("proofs[{index}]: content id {} repeats proofs[{first}]", short(.content_id))]
    DuplicateProof {
        /// The repeat.
        index: usize,
        /// The first position.
        first: usize,
        /// Its content id.
        content_id: Hash32,
    },
    /// A proof an earlier block already included.
    #[error("proofs[{index}]: content id {} was included at height {height}", short(.content_id))]
    ProofAlreadyIncluded {
        /// Its position.
        index: usize,
        /// Its content id.
        content_id: Hash32,
        /// The height that included it.
        height: u64,
    },
    /// Fewer events than the block's proofs and last commit require.
    #[error("reputation_events[{index}]: missing, expected {expected}")]
    MissingEvent {
        /// Position of the first missing event.
        index: usize,
        /// The event that should be there.
        expected: String,
    },
    /// An event other than the one derived for its position.
    #[error("reputation_events[{index}]: expected {expected}, found {found}")]
    EventMismatch {
        /// Its position.
        index: usize,
        /// The derived event.
        expected: String,
        /// The block's event.
        found: String,
    },
    /// An event after the derived ones that is not a slash.
    #[error("reputation_events[{index}]: {found} is not derived from the block (only slash events may follow)")]
    UnexpectedEvent {
        /// Its position.
        index: usize,
        /// The event.
        found: String,
    },
    /// A slash event whose evidence verifies against neither the current
    /// nor the previous validator set.
    #[error("reputation_events[{index}]: slash evidence: {error}")]
    InvalidEvidence {
        /// Its position.
        index: usize,
        /// Why (against the current set).
        error: CertificateError,
    },
    /// A slash event naming someone other than the evidence's culprit.
    #[error("reputation_events[{index}]: slashes {named}, but the evidence convicts {}", short(&.culprit.0))]
    SlashTargetMismatch {
        /// Its position.
        index: usize,
        /// Who the evidence convicts.
        culprit: ZsiId,
        /// Who the event names (hex, truncated).
        named: String,
    },
    /// A slash of an identity slashed before this block.
    #[error("reputation_events[{index}]: {} is already slashed", short(&.culprit.0))]
    AlreadySlashed {
        /// Its position.
        index: usize,
        /// The culprit.
        culprit: ZsiId,
    },
    /// Two slash events for one culprit in one block.
    #[error("reputation_events[{index}]: {} is already slashed by reputation_events[{first}]", short(&.culprit.0))]
    DuplicateSlash {
        /// The repeat.
        index: usize,
        /// The first slash.
        first: usize,
        /// The culprit.
        culprit: ZsiId,
    },
    /// An event for an identity that is not registered. Derived events only
    /// name registered identities, so this means corrupted state.
    #[error("reputation_events[{index}]: {} is not a registered identity", short(&.zsi_id.0))]
    UnknownIdentity {
        /// Its position.
        index: usize,
        /// The identity.
        zsi_id: ZsiId,
    },
    /// A registration event (an included `stwo/v1` proof) that cannot be
    /// applied: the identity is already registered (earlier in this block)
    /// or the keys do not derive its id.
    #[error("reputation_events[{index}]: registration refused: {error}")]
    Registration {
        /// Its position.
        index: usize,
        /// Why.
        error: crate::identity::registry::RegistryError,
    },
    /// `block.next_validators` is not what the slashes of this block make
    /// the next set (present with the hash of the new set when it changes,
    /// absent otherwise).
    #[error("next_validators: expected {}, found {}", short_opt(.expected), short_opt(.found))]
    NextValidatorsMismatch {
        /// Hash of the set that must be there (`None`: absent).
        expected: Option<Hash32>,
        /// Hash of the set that is there (`None`: absent).
        found: Option<Hash32>,
    },
    /// The set left after slashing is unusable (cannot happen for a subset
    /// of a valid set; kept so that it is an error, not a panic).
    #[error("next validator set: {0}")]
    NextValidatorSet(ValidatorSetError),
    /// [`BlockBuilder`] refused the body.
    #[error("building the block: {0}")]
    Build(BlockError),
    /// An uptime proof whose window does not start above the subject's
    /// last credited window (on chain or earlier in this block): the same
    /// uptime credited twice.
    #[error(
        "proofs[{index}]: uptime window {from_height}..={to_height} of {} does not follow its last credited window (ending at {credited_to})",
        short(&.subject.0)
    )]
    UptimeWindowCredited {
        /// Its position.
        index: usize,
        /// The subject.
        subject: ZsiId,
        /// The window's first height.
        from_height: u64,
        /// The window's last height.
        to_height: u64,
        /// The end of the last credited window.
        credited_to: u64,
    },
}

impl LedgerError {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            LedgerError::GenesisValidators(_) => "genesis_validators",
            LedgerError::GenesisThresholds(_) => "genesis_thresholds",
            LedgerError::UnregisteredValidator { .. } => "unregistered_validator",
            LedgerError::HeightOverflow { .. } => "height_overflow",
            LedgerError::Malformed(_) => "malformed",
            LedgerError::TooMany { .. } => "too_many",
            LedgerError::WrongHeight { .. } => "wrong_height",
            LedgerError::WrongNetwork { .. } => "wrong_network",
            LedgerError::Mismatch { .. } => "mismatch",
            LedgerError::MissingLastCommit { .. } => "missing_last_commit",
            LedgerError::UnexpectedLastCommit => "unexpected_last_commit",
            LedgerError::LastCommitInsufficientPower { .. } => "last_commit_insufficient_power",
            LedgerError::InvalidLastCommit(_) => "invalid_last_commit",
            LedgerError::MalformedProof { .. } => "malformed_proof",
            LedgerError::InvalidProof { .. } => "invalid_proof",
            LedgerError::DuplicateProof { .. } => "duplicate_proof",
            LedgerError::ProofAlreadyIncluded { .. } => "proof_already_included",
            LedgerError::MissingEvent { .. } => "missing_event",
            LedgerError::EventMismatch { .. } => "event_mismatch",
            LedgerError::UnexpectedEvent { .. } => "unexpected_event",
            LedgerError::InvalidEvidence { .. } => "invalid_evidence",
            LedgerError::SlashTargetMismatch { .. } => "slash_target_mismatch",
            LedgerError::AlreadySlashed { .. } => "already_slashed",
            LedgerError::DuplicateSlash { .. } => "duplicate_slash",
            LedgerError::UnknownIdentity { .. } => "unknown_identity",
            LedgerError::Registration { .. } => "registration",
            LedgerError::NextValidatorsMismatch { .. } => "next_validators_mismatch",
            LedgerError::NextValidatorSet(_) => "next_validator_set",
            LedgerError::Build(_) => "build",
            LedgerError::UptimeWindowCredited { .. } => "uptime_window_credited",
        }
    }

    /// True when the only fault is a `last_commit` with too little power.
    pub const fn is_insufficient_power(&self) -> bool {
        matches!(self, LedgerError::LastCommitInsufficientPower { .. })
    }
}

type LedgerResult<T> = Result<T, LedgerError>;

fn mismatch(field: &'static str, expected: Hash32, found: Hash32) -> LedgerResult<()> {
    if expected == found {
        Ok(())
    } else {
        Err(LedgerError::Mismatch { field, expected, found })
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> LedgerResult<()> {
    if count > max {
        return Err(LedgerError::TooMany { field, count, max });
    }
    Ok(())
}

/// A short description of an event for error messages.
fn describe(event: &proto::ReputationEvent) -> String {
    let who =
        Hash32::from_slice(&event.zsi_id).map_or_else(|| format!("a {}-byte id", event.zsi_id.len()), |id| short(&id));
    match &event.kind {
        Some(reputation_event::Kind::UptimeMinutes(m)) => format!("uptime_minutes({m}) for {who}"),
        Some(reputation_event::Kind::Participation(n)) => format!("participation({n}) for {who}"),
        Some(reputation_event::Kind::Slash(e)) => format!("slash of {who} (evidence {})", short(&evidence_id(e))),
        Some(reputation_event::Kind::Registered(_)) => format!("registration of {who}"),
        None => format!("an event without kind for {who}"),
    }
}

// ─────────────────────────────────── inputs ───────────────────────────────────

/// What execution needs besides state. The target block time comes from
/// the genesis consensus params stored in the ledger.
#[derive(Debug, Clone, Copy)]
pub struct ExecContext<'a> {
    /// The proof verifiers (every node must run the same set).
    pub verifiers: &'a VerifierRegistry,
    /// How many blocks an envelope's height may be from the block's
    /// ([`ProofContext::freshness_blocks`]).
    pub freshness_blocks: u64,
}

/// What a proposer puts in its block; [`BlockBuilder`] (or
/// [`Ledger::build_block`]) derives the rest of the header.
#[derive(Debug, Clone)]
pub struct BlockBody {
    /// The proofs to include, in block order.
    pub proofs: Vec<proto::ProofEnvelope>,
    /// The derived reputation events (uptime, participation, slashes).
    pub reputation_events: Vec<proto::ReputationEvent>,
    /// The set that signs the next block (the current one when unchanged).
    pub next_validators: ValidatorSet,
    /// The state root after the block.
    pub state_root: Hash32,
    /// The commit that finalized the previous block (`None` for block 1).
    pub last_commit: Option<proto::CommitCertificate>,
    /// Candidates and evidence left out: the proof's content id or the
    /// [`evidence_id`], and why.
    pub skipped: Vec<(Hash32, String)>,
}

/// Why a proof cannot be included (shared by propose and apply).
enum ProofProblem {
    Duplicate {
        first: usize,
    },
    OnChain {
        height: u64,
    },
    Malformed(FieldError),
    Invalid(ProofError),
    WindowCredited {
        subject: ZsiId,
        from_height: u64,
        to_height: u64,
        credited_to: u64,
    },
}

impl ProofProblem {
    fn into_error(self, index: usize, content_id: Hash32) -> LedgerError {
        match self {
            ProofProblem::Duplicate { first } => LedgerError::DuplicateProof {
                index,
                first,
                content_id,
            },
            ProofProblem::OnChain { height } => LedgerError::ProofAlreadyIncluded {
                index,
                content_id,
                height,
            },
            ProofProblem::Malformed(error) => LedgerError::MalformedProof { index, error },
            ProofProblem::Invalid(error) => LedgerError::InvalidProof {
                index,
                content_id,
                error,
            },
            ProofProblem::WindowCredited {
                subject,
                from_height,
                to_height,
                credited_to,
            } => LedgerError::UptimeWindowCredited {
                index,
                subject,
                from_height,
                to_height,
                credited_to,
            },
        }
    }

    fn reason(&self) -> String {
        match self {
            ProofProblem::Duplicate { first } => format!("duplicate of candidate {first}"),
            ProofProblem::OnChain { height } => format!("already on chain (included at height {height})"),
            ProofProblem::Malformed(error) => format!("malformed: {error}"),
            ProofProblem::Invalid(error) => format!("invalid: {error}"),
            ProofProblem::WindowCredited {
                from_height,
                to_height,
                credited_to,
                ..
            } => format!(
                "uptime window {from_height}..={to_height} does not follow the last credited window (ending at {credited_to})"
            ),
        }
    }
}

/// The state a block leads to, before it becomes a [`Ledger`].
struct Outcome {
    registry: MemoryRegistry,
    tree: MemoryTree,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    next: ValidatorSet,
    root: Hash32,
}

// ─────────────────────────────────── ledger ───────────────────────────────────

#[path = "ledger_restore.rs"]
mod restore;
pub use restore::RestoreError;

/// Chain state after some height (0 = genesis).
#[derive(Clone, Debug)]
pub struct Ledger {
    network: NetworkId,
    height: u64,
    thresholds: TierThresholds,
    consensus: ConsensusParams,
    uptime: UptimeParams,
    /// Identities with their current on-chain reputation.
    registry: MemoryRegistry,
    /// The set that signs `height + 1`.
    validators: ValidatorSet,
    /// The set that signed `height` (the genesis set at height 0).
    last_validators: ValidatorSet,
    /// The header at `height` (`None` at genesis).
    last_header: Option<proto::Header>,
    tree: MemoryTree,
    /// What the block at `height` wrote (every entry at genesis).
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    root: Hash32,
}

impl Ledger {
    /// State at height 0 from a checked genesis: every genesis identity with
    /// its reputation, the validator set, the thresholds and the consensus
    /// params. Fails if the set is unusable, a validator is not a
    /// registered identity, or the thresholds do not increase.
    pub fn genesis(genesis: &Genesis) -> Result<Ledger, LedgerError> {
        genesis.thresholds.validate().map_err(LedgerError::GenesisThresholds)?;
        let validators = ValidatorSet::from_proto(&genesis.validators).map_err(LedgerError::GenesisValidators)?;
        if let Some(v) = validators.iter().find(|v| genesis.registry.lookup(&v.zsi_id).is_none()) {
            return Err(LedgerError::UnregisteredValidator { validator: v.zsi_id });
        }
        let mut writes = BTreeMap::new();
        for (id, identity) in genesis.registry.iter() {
            writes.insert(identity_key(id).to_vec(), identity_record(id, identity).encode_to_vec());
        }
        writes.insert(validators_key().to_vec(), validators.as_proto().encode_to_vec());
        writes.insert(
            params_key().to_vec(),
            encode_params(&genesis.thresholds, &genesis.consensus, &genesis.uptime),
        );
        let mut tree = MemoryTree::new();
        for (key, value) in &writes {
            tree.insert(key.clone(), value.clone());
        }
        let root = tree.root();
        Ok(Ledger {
            network: genesis.network.clone(),
            height: 0,
            thresholds: genesis.thresholds,
            consensus: genesis.consensus,
            uptime: genesis.uptime,
            registry: genesis.registry.clone(),
            last_validators: validators.clone(),
            validators,
            last_header: None,
            tree,
            writes: writes.into_iter().collect(),
            root,
        })
    }

    /// The last applied height (0 at genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state root: the [`MemoryTree`] root of all state entries
    /// (cached; computed once per block).
    pub fn root(&self) -> Hash32 {
        self.root
    }

    /// All state entries (the node mirrors them into its `jmt` store).
    pub fn tree(&self) -> &MemoryTree {
        &self.tree
    }

    /// The entries the block at [`Ledger::height`] wrote, in key order (at
    /// genesis: every entry). Nothing is ever deleted, so applying these
    /// to the previous state gives this one.
    pub fn last_writes(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.writes
    }

    /// The network.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    /// The set that signs the next block (`height() + 1`).
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The set that signed the block at `height()` (the genesis set at
    /// height 0): the set `last_commit` of the next block is checked against.
    pub fn last_validators(&self) -> &ValidatorSet {
        &self.last_validators
    }

    /// The header at `height()` (`None` at genesis).
    pub fn last_header(&self) -> Option<&proto::Header> {
        self.last_header.as_ref()
    }

    /// The header hash at `height()` (all zero at genesis): the next
    /// block's `prev_hash`.
    pub fn last_block_hash(&self) -> Hash32 {
        self.last_header.as_ref().map_or(Hash32::ZERO, header_hash)
    }

    /// Identities with their current on-chain reputation.
    pub fn registry(&self) -> &MemoryRegistry {
        &self.registry
    }

    /// The tier thresholds (genesis).
    pub fn thresholds(&self) -> &TierThresholds {
        &self.thresholds
    }

    /// The consensus params (genesis).
    pub fn consensus(&self) -> &ConsensusParams {
        &self.consensus
    }

    /// The uptime params (genesis).
    pub fn uptime(&self) -> &UptimeParams {
        &self.uptime
    }

    /// The last height of the last uptime window credited to `id`, if any
    /// (chain state under [`uptime_key`]).
    pub fn uptime_credited_to(&self, id: &ZsiId) -> Option<u64> {
        let value = self.tree.get(&uptime_key(id))?;
        <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes)
    }

    /// Whether `effect` may be credited after the windows in chain state
    /// and `in_block` (windows credited earlier in the same block): an
    /// uptime window must start above the subject's last credited one.
    /// `Err` carries the end of the window it fails to follow.
    pub fn check_uptime_window(&self, effect: &ProofEffect, in_block: &BTreeMap<ZsiId, u64>) -> Result<(), u64> {
        let ProofEffect::UptimeCredit {
            subject, from_height, ..
        } = effect
        else {
            return Ok(());
        };
        let credited_to = in_block
            .get(subject)
            .copied()
            .or_else(|| self.uptime_credited_to(subject));
        match credited_to {
            Some(end) if *from_height <= end => Err(end),
            _ => Ok(()),
        }
    }

    /// The tier of `id` from its on-chain record ([`tier_of`]): TL0 when
    /// unregistered or slashed.
    pub fn tier(&self, id: &ZsiId) -> Tier {
        tier_of(self.registry.lookup(id).map(|r| &r.reputation), &self.thresholds)
    }

    /// Whether `id` is registered and slashed.
    pub fn is_slashed(&self, id: &ZsiId) -> bool {
        self.registry.lookup(id).is_some_and(|r| r.reputation.slashed)
    }

    /// Whether a block already included the proof with this content id.
    pub fn contains_proof(&self, content_id: &Hash32) -> bool {
        self.tree.get(&proof_key(content_id)).is_some()
    }

    /// The height of the block that included the proof, if any.
    pub fn proof_height(&self, content_id: &Hash32) -> Option<u64> {
        let value = self.tree.get(&proof_key(content_id))?;
        <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes)
    }

    fn next_height(&self) -> LedgerResult<u64> {
        self.height
            .checked_add(1)
            .ok_or(LedgerError::HeightOverflow { height: self.height })
    }

    /// Checks the commit of the block at `height()` as carried by the next
    /// block; returns who signed it (`None` at genesis).
    fn check_last_commit(&self, commit: Option<&proto::CommitCertificate>) -> LedgerResult<Option<QuorumSummary>> {
        match (self.last_header.as_ref(), commit) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(LedgerError::UnexpectedLastCommit),
            (Some(_), None) => Err(LedgerError::MissingLastCommit {
                height: self.height.saturating_add(1),
                previous: self.height,
            }),
            (Some(header), Some(commit)) => {
                commit
                    .validate()
                    .map_err(|e| LedgerError::Malformed(e.within("last_commit")))?;
                verify_header_commit(header, commit, &self.last_validators, &self.network)
                    .map(Some)
                    .map_err(|error| match error {
                        BlockError::Commit(CertificateError::InsufficientPower {
                            signed,
                            required,
                            total,
                        }) => LedgerError::LastCommitInsufficientPower {
                            signed,
                            required,
                            total,
                        },
                        other => LedgerError::InvalidLastCommit(other),
                    })
            }
        }
    }

    /// Whether `envelope` may be included at `height` (`seen`: content ids
    /// already in the block, with their position; `windows`: uptime
    /// windows credited earlier in the block, by subject, updated when
    /// this one is admitted).
    fn admit_proof(
        &self,
        ctx: &ExecContext<'_>,
        height: u64,
        envelope: &proto::ProofEnvelope,
        content_id: Hash32,
        seen: &BTreeMap<Hash32, usize>,
        windows: &mut BTreeMap<ZsiId, u64>,
    ) -> Result<VerifiedProof, ProofProblem> {
        if let Some(&first) = seen.get(&content_id) {
            return Err(ProofProblem::Duplicate { first });
        }
        if self.contains_proof(&content_id) {
            let height = self.proof_height(&content_id).unwrap_or(0);
            return Err(ProofProblem::OnChain { height });
        }
        envelope.validate().map_err(ProofProblem::Malformed)?;
        let registry: &dyn IdentityRegistry = &self.registry;
        let proof_ctx = ProofContext {
            network: &self.network,
            registry: &registry,
            thresholds: &self.thresholds,
            height,
            freshness_blocks: ctx.freshness_blocks,
            block_time_ms: self.consensus.block_time_ms,
        };
        let verified = ctx
            .verifiers
            .check_envelope(envelope, &proof_ctx)
            .map_err(ProofProblem::Invalid)?;
        if let ProofEffect::UptimeCredit {
            subject,
            from_height,
            to_height,
            ..
        } = verified.effect
        {
            if let Err(credited_to) = self.check_uptime_window(&verified.effect, windows) {
                return Err(ProofProblem::WindowCredited {
                    subject,
                    from_height,
                    to_height,
                    credited_to,
                });
            }
            windows.insert(subject, to_height);
        }
        Ok(verified)
    }

    /// The culprit of `evidence`, verified against the current set or,
    /// failing that, the set that signed the last block. The error is the
    /// one against the current set.
    fn check_evidence(&self, evidence: &proto::Evidence) -> Result<ZsiId, CertificateError> {
        match verify_evidence(evidence, &self.validators, &self.network) {
            Ok(culprit) => Ok(culprit),
            Err(error) if self.last_validators.hash() == self.validators.hash() => Err(error),
            Err(error) => verify_evidence(evidence, &self.last_validators, &self.network).map_err(|_| error),
        }
    }

    /// The current set minus `culprits`; unchanged if none is a member or
    /// if nobody would be left (see the module documentation).
    fn next_validators(&self, culprits: &BTreeSet<ZsiId>) -> LedgerResult<ValidatorSet> {
        if !self.validators.iter().any(|v| culprits.contains(&v.zsi_id)) {
            return Ok(self.validators.clone());
        }
        let remaining: Vec<proto::Validator> = self
            .validators
            .as_proto()
            .validators
            .iter()
            .filter(|v| !ZsiId::from_slice(&v.zsi_id).is_some_and(|id| culprits.contains(&id)))
            .cloned()
            .collect();
        if remaining.is_empty() {
            return Ok(self.validators.clone());
        }
        ValidatorSet::new(proto::ValidatorSet { validators: remaining }).map_err(LedgerError::NextValidatorSet)
    }

    /// Applies already-checked events in order, records the proofs at
    /// `height` and writes the next set.
    fn execute(
        &self,
        height: u64,
        proof_ids: &[Hash32],
        windows: &BTreeMap<ZsiId, u64>,
        events: &[proto::ReputationEvent],
    ) -> LedgerResult<Outcome> {
        let mut registry = self.registry.clone();
        let mut touched = BTreeSet::new();
        let mut culprits = BTreeSet::new();
        for (index, event) in events.iter().enumerate() {
            let zsi_id = ZsiId(fields::hash_in(
                &format!("reputation_events[{index}]"),
                "zsi_id",
                &event.zsi_id,
            )?);
            if let Some(reputation_event::Kind::Registered(keys)) = &event.kind {
                // A permissionless registration: the identity joins with an
                // empty record (TL1).
                let record = proto::IdentityRecord {
                    zsi_id: event.zsi_id.clone(),
                    identity_key: keys.identity_key.clone(),
                    vrf_key: keys.vrf_key.clone(),
                    reputation: None,
                };
                registry
                    .register(&record)
                    .map_err(|error| LedgerError::Registration { index, error })?;
                touched.insert(zsi_id);
                continue;
            }
            let record = registry
                .lookup(&zsi_id)
                .map(|r| r.reputation)
                .ok_or(LedgerError::UnknownIdentity { index, zsi_id })?;
            registry.set_reputation(&zsi_id, apply_event(record, event));
            touched.insert(zsi_id);
            if matches!(event.kind, Some(reputation_event::Kind::Slash(_))) {
                culprits.insert(zsi_id);
            }
        }
        let next = self.next_validators(&culprits)?;
        let mut writes = BTreeMap::new();
        for id in &touched {
            if let Some(identity) = registry.lookup(id) {
                writes.insert(identity_key(id).to_vec(), identity_record(id, identity).encode_to_vec());
            }
        }
        for id in proof_ids {
            writes.insert(proof_key(id).to_vec(), height.to_be_bytes().to_vec());
        }
        for (subject, to_height) in windows {
            writes.insert(uptime_key(subject).to_vec(), to_height.to_be_bytes().to_vec());
        }
        if next.hash() != self.validators.hash() {
            writes.insert(validators_key().to_vec(), next.as_proto().encode_to_vec());
        }
        let mut tree = self.tree.clone();
        for (key, value) in &writes {
            tree.insert(key.clone(), value.clone());
        }
        let root = tree.root();
        Ok(Outcome {
            registry,
            tree,
            writes,
            next,
            root,
        })
    }

    /// The body of block `height() + 1`.
    ///
    /// - `candidates`: mempool proofs, in the order to include them; any
    ///   that is malformed, invalid (verifier registry at the block's
    ///   height), a duplicate, already on chain, past
    ///   [`MAX_PROOFS_PER_BLOCK`] or past the [`MAX_BLOCK_PROOF_BYTES`]
    ///   budget is skipped and listed in [`BlockBody::skipped`].
    /// - `last_commit`: the commit that finalized `height()` (`None` for
    ///   block 1); its signers are credited participation. It must verify.
    /// - `evidence`: pending equivocation evidence; any that does not
    ///   verify, or whose culprit is already slashed (before or earlier in
    ///   this list), is skipped.
    ///
    /// Fails only for a missing, unexpected or invalid `last_commit`, or if
    /// the ledger is at the highest height.
    pub fn propose(
        &self,
        ctx: &ExecContext<'_>,
        candidates: &[proto::ProofEnvelope],
        last_commit: Option<&proto::CommitCertificate>,
        evidence: &[proto::Evidence],
    ) -> Result<BlockBody, LedgerError> {
        let height = self.next_height()?;
        let summary = self.check_last_commit(last_commit)?;
        let mut skipped = Vec::new();
        let mut seen = BTreeMap::new();
        let mut windows = BTreeMap::new();
        let mut proofs = Vec::new();
        let mut verified = Vec::new();
        let mut bytes = 0usize;
        for (candidate, envelope) in candidates.iter().enumerate() {
            let content_id = proof_content_id(envelope);
            if proofs.len() >= MAX_PROOFS_PER_BLOCK {
                skipped.push((content_id, format!("block is full ({MAX_PROOFS_PER_BLOCK} proofs)")));
                continue;
            }
            let size = envelope.encoded_len();
            if bytes.saturating_add(size) > MAX_BLOCK_PROOF_BYTES {
                skipped.push((
                    content_id,
                    format!(
                        "{size} bytes do not fit the block's {MAX_BLOCK_PROOF_BYTES}-byte proof budget ({bytes} used)"
                    ),
                ));
                continue;
            }
            match self.admit_proof(ctx, height, envelope, content_id, &seen, &mut windows) {
                Ok(proof) if registers_again(&proof, &verified) => skipped.push((
                    content_id,
                    "registers an identity another proof of this block registers".to_owned(),
                )),
                Ok(proof) => {
                    seen.insert(content_id, candidate);
                    bytes = bytes.saturating_add(size);
                    proofs.push(envelope.clone());
                    verified.push(proof);
                }
                Err(problem) => skipped.push((content_id, problem.reason())),
            }
        }

        let mut events = derived_events(&verified, summary.as_ref());
        let mut culprits: BTreeMap<ZsiId, usize> = BTreeMap::new();
        for (index, item) in evidence.iter().enumerate() {
            let id = evidence_id(item);
            match self.check_evidence(item) {
                Err(error) => skipped.push((id, format!("invalid evidence: {error}"))),
                Ok(culprit) if self.is_slashed(&culprit) => {
                    skipped.push((id, format!("culprit {} is already slashed", short(&culprit.0))));
                }
                Ok(culprit) => match culprits.get(&culprit) {
                    Some(first) => skipped.push((
                        id,
                        format!(
                            "culprit {} is already slashed by evidence {first} of this block",
                            short(&culprit.0)
                        ),
                    )),
                    None => {
                        culprits.insert(culprit, index);
                        events.push(slash_event(&culprit, item.clone()));
                    }
                },
            }
        }
        check_count("reputation_events", events.len(), MAX_REPUTATION_EVENTS_PER_BLOCK)?;

        let ids: Vec<Hash32> = verified.iter().map(|v| v.content_id).collect();
        let outcome = self.execute(height, &ids, &windows, &events)?;
        Ok(BlockBody {
            proofs,
            reputation_events: events,
            next_validators: outcome.next,
            state_root: outcome.root,
            last_commit: last_commit.cloned(),
            skipped,
        })
    }

    /// Builds block `height() + 1` from `body` with [`BlockBuilder`]
    /// (current set = [`Ledger::validators`], next set and state root from
    /// the body) and sets `last_commit`. The block is then checked with
    /// [`Ledger::apply`] (which is why `ctx` is needed), so a block this
    /// returns is one every honest node executes; the price is verifying
    /// the proofs a second time.
    pub fn build_block(
        &self,
        ctx: &ExecContext<'_>,
        parent: Parent<'_>,
        round: u32,
        time_ms: u64,
        proposer: ZsiId,
        body: BlockBody,
    ) -> Result<proto::Block, LedgerError> {
        let builder = BlockBuilder {
            parent,
            round,
            time_ms,
            proposer,
            current: &self.validators,
            next: &body.next_validators,
            state_root: body.state_root,
        };
        let mut block = builder
            .block(body.proofs, body.reputation_events)
            .map_err(LedgerError::Build)?;
        block.last_commit = body.last_commit;
        self.apply(ctx, &block)?;
        Ok(block)
    }

    /// Executes `block`, whose header already passed
    /// [`crate::chain::validate_block`] against the parent, and returns the
    /// state after it. See the module documentation for every rule, in the
    /// order they are checked.
    pub fn apply(&self, ctx: &ExecContext<'_>, block: &proto::Block) -> Result<Ledger, LedgerError> {
        let header = block
            .header
            .as_ref()
            .ok_or_else(|| LedgerError::Malformed(FieldError::new("header", FieldProblem::Missing)))?;
        let height = self.next_height()?;
        if header.height != height {
            return Err(LedgerError::WrongHeight {
                expected: height,
                found: header.height,
            });
        }
        if header.network_id != self.network.as_str() {
            return Err(LedgerError::WrongNetwork {
                expected: self.network.as_str().to_owned(),
                found: header
                    .network_id
                    .chars()
                    .take(crate::chain::MESSAGE_FIELD_CHARS)
                    .collect(),
            });
        }
        mismatch(
            "header.prev_hash",
            self.last_block_hash(),
            fields::hash_in("header", "prev_hash", &header.prev_hash)?,
        )?;
        mismatch(
            "header.validators_hash",
            self.validators.hash(),
            fields::hash_in("header", "validators_hash", &header.validators_hash)?,
        )?;
        check_count("proofs", block.proofs.len(), MAX_PROOFS_PER_BLOCK)?;
        check_count(
            "reputation_events",
            block.reputation_events.len(),
            MAX_REPUTATION_EVENTS_PER_BLOCK,
        )?;

        let summary = self.check_last_commit(block.last_commit.as_ref())?;

        let mut seen = BTreeMap::new();
        let mut windows = BTreeMap::new();
        let mut verified = Vec::with_capacity(block.proofs.len());
        for (index, envelope) in block.proofs.iter().enumerate() {
            let content_id = proof_content_id(envelope);
            let proof = self
                .admit_proof(ctx, height, envelope, content_id, &seen, &mut windows)
                .map_err(|problem| problem.into_error(index, content_id))?;
            seen.insert(content_id, index);
            verified.push(proof);
        }

        let expected = derived_events(&verified, summary.as_ref());
        for (index, want) in expected.iter().enumerate() {
            match block.reputation_events.get(index) {
                None => {
                    return Err(LedgerError::MissingEvent {
                        index,
                        expected: describe(want),
                    });
                }
                Some(found) if found != want => {
                    return Err(LedgerError::EventMismatch {
                        index,
                        expected: describe(want),
                        found: describe(found),
                    });
                }
                Some(_) => {}
            }
        }
        let mut culprits: BTreeMap<ZsiId, usize> = BTreeMap::new();
        for (index, event) in block.reputation_events.iter().enumerate().skip(expected.len()) {
            let Some(reputation_event::Kind::Slash(evidence)) = &event.kind else {
                return Err(LedgerError::UnexpectedEvent {
                    index,
                    found: describe(event),
                });
            };
            let culprit = self
                .check_evidence(evidence)
                .map_err(|error| LedgerError::InvalidEvidence { index, error })?;
            if event.zsi_id.as_slice() != culprit.as_bytes() {
                return Err(LedgerError::SlashTargetMismatch {
                    index,
                    culprit,
                    named: hex::encode(event.zsi_id.get(..8).unwrap_or(&event.zsi_id)),
                });
            }
            if self.is_slashed(&culprit) {
                return Err(LedgerError::AlreadySlashed { index, culprit });
            }
            if let Some(&first) = culprits.get(&culprit) {
                return Err(LedgerError::DuplicateSlash { index, first, culprit });
            }
            culprits.insert(culprit, index);
        }

        let ids: Vec<Hash32> = verified.iter().map(|v| v.content_id).collect();
        let outcome = self.execute(height, &ids, &windows, &block.reputation_events)?;

        let next_hash = outcome.next.hash();
        mismatch(
            "header.next_validators_hash",
            next_hash,
            fields::hash_in("header", "next_validators_hash", &header.next_validators_hash)?,
        )?;
        let expected_next = (next_hash != self.validators.hash()).then_some(next_hash);
        let found_next = block.next_validators.as_ref().map(validators_hash);
        if found_next != expected_next {
            return Err(LedgerError::NextValidatorsMismatch {
                expected: expected_next,
                found: found_next,
            });
        }
        mismatch(
            "header.state_root",
            outcome.root,
            fields::hash_in("header", "state_root", &header.state_root)?,
        )?;

        Ok(Ledger {
            network: self.network.clone(),
            height,
            thresholds: self.thresholds,
            consensus: self.consensus,
            uptime: self.uptime,
            registry: outcome.registry,
            validators: outcome.next,
            last_validators: self.validators.clone(),
            last_header: Some(header.clone()),
            tree: outcome.tree,
            writes: outcome.writes.into_iter().collect(),
            root: outcome.root,
        })
    }
}

/// Whether `proof` registers an identity that one of `earlier` registers.
fn registers_again(proof: &VerifiedProof, earlier: &[VerifiedProof]) -> bool {
    let ProofEffect::Register { subject, .. } = &proof.effect else {
        return false;
    };
    earlier
        .iter()
        .any(|p| matches!(&p.effect, ProofEffect::Register { subject: s, .. } if s == subject))
}

/// The events a block's proofs and last commit require, in block order:
/// uptime (and other proof) effects in proof order, then participation.
fn derived_events(verified: &[VerifiedProof], summary: Option<&QuorumSummary>) -> Vec<proto::ReputationEvent> {
    let mut events: Vec<proto::ReputationEvent> = verified
        .iter()
        .filter_map(|proof| proof.effect.reputation_event())
        .collect();
    if let Some(summary) = summary {
        events.extend(participation_events(summary));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_refuse_other_shapes() {
        let thresholds = TierThresholds {
            available_uptime_minutes: 1,
            committed_score: 2,
            reliable_score: 3,
            trusted_score: 4,
        };
        let consensus = ConsensusParams {
            propose_timeout_ms: 5,
            prevote_timeout_ms: 6,
            precommit_timeout_ms: 7,
            timeout_delta_ms: 8,
            block_time_ms: 9,
            max_clock_skew_ms: 10,
        };
        let uptime = UptimeParams {
            window_blocks: 11,
            max_age_blocks: 12,
            min_witnesses: 13,
            heartbeat_interval_ms: 14,
            minute_ms: 15,
        };
        let bytes = encode_params(&thresholds, &consensus, &uptime);
        assert_eq!(bytes.len(), PARAMS_LEN);
        assert_eq!(&bytes[..8], &3u64.to_be_bytes());
        assert_eq!(&bytes[72..80], &9u64.to_be_bytes());
        assert_eq!(&bytes[80..88], &10u64.to_be_bytes());
        assert_eq!(&bytes[120..], &15u64.to_be_bytes());
        assert_eq!(decode_params(&bytes), Some((thresholds, consensus)));
        assert_eq!(decode_uptime_params(&bytes), Some(uptime));
        assert_eq!(decode_params(&bytes[..88]), None);
        let mut other_version = bytes.clone();
        other_version[7] = 2;
        assert_eq!(decode_params(&other_version), None);
        assert_eq!(decode_uptime_params(&other_version), None);
    }

    #[test]
    fn evidence_tag_is_prefix_free_with_all_tags() {
        let all: Vec<&str> = crate::hash::tags::ALL
            .iter()
            .chain(crate::state::tags::ALL)
            .copied()
            .collect();
        for tag in all {
            assert!(!tag.starts_with(EVIDENCE_ID_TAG) && !EVIDENCE_ID_TAG.starts_with(tag));
        }
    }
}
