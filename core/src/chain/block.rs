//! Block rules shared by the consensus engine and the light client: the
//! chain commitment, the proofs Merkle root with inclusion proofs, the
//! header builder and the validation of a block (or a header) against its
//! parent.
//!
//! ## Chain commitment
//!
//! ```text
//! chain_commitment_0 = BLAKE3("tiernet/genesis-commitment/v1" ‖ validators_hash ‖ genesis_time_ms (u64 BE) ‖ network_id)
//! chain_commitment_h = BLAKE3("tiernet/chain-commitment/v1" ‖ chain_commitment_{h-1} ‖ h (u64 BE)
//!                             ‖ state_root ‖ proofs_root ‖ validators_hash)
//! ```
//!
//! Every field is fixed-length except the network id, which comes last, so
//! both concatenations are unambiguous. The genesis commitment binds the
//! network, its start time and its first validator set, so two networks (or
//! two restarts of a devnet with another start time) never share a history.
//! The parent of height 1 is the genesis ([`GenesisAnchor`]); its "header
//! hash" is [`Hash32::ZERO`] (`prev_hash` is all zero at height 1).
//!
//! ## Proofs root
//!
//! A binary Merkle tree over the content ids
//! ([`crate::wire::sign::proof_content_id`]) of a block's proof envelopes in
//! block order, shaped as in RFC 6962 / RFC 9162 (a tree of `n > 1` leaves
//! splits at the largest power of two below `n`), with domain-separated
//! hashing:
//!
//! ```text
//! leaf(id)    = BLAKE3("tiernet/proofs-leaf/v1" ‖ id)
//! node(l, r)  = BLAKE3("tiernet/proofs-node/v1" ‖ l ‖ r)
//! proofs_root = BLAKE3("tiernet/proofs-root/v1" ‖ n (u64 BE) ‖ tree root)   (no tree root when n = 0)
//! ```
//!
//! Leaves and inner nodes can never be confused (second-preimage safe), and
//! the leaf count is bound into the root, so an inclusion proof also proves
//! the position and the number of proofs in the block (without the count, a
//! proof for the last leaf of a 3-leaf tree would also pass as one for the
//! second leaf of a 2-leaf tree). The empty root is [`empty_proofs_root`].
//! Inclusion paths list sibling hashes from the leaf up to the root; verify
//! them with [`verify_proof_inclusion`].
//!
//! ## What validation checks, and what it cannot
//!
//! The checks are public functions, one rule each, and this module is the
//! one header rulebook: the light-client verifier ([`crate::verify`]) calls
//! the same functions, so a full node and a light client never disagree on
//! what a valid header is. [`check_height`], [`check_hash_link`]
//! (`prev_hash`), [`check_time`], [`check_commitment`] (the chain
//! commitment link), [`check_proposer`] (membership) and
//! [`verify_header_commit`] (the commit certificate).
//!
//! [`validate_header`] checks everything a header alone can show against
//! its parent and the validator set the parent handed trust to: network,
//! height, `prev_hash`, time, that `current` is the set the parent named,
//! the header's `validators_hash`, the proposer's membership and the chain
//! commitment link. [`validate_block`] adds the body: counts, structure, no
//! proof twice, `proofs_root`, and the `next_validators` rule (present,
//! valid and hashing to `next_validators_hash` when the set changes;
//! absent, with `next_validators_hash` equal to the current set's hash,
//! when it does not). [`validate_finalized`] and [`validate_signed_header`]
//! add the commit certificate: its height, a round not before the header's
//! (a block built in round `r` may be re-proposed and decided in a later
//! round), its block hash and [`verify_commit`](crate::chain::verify_commit) against `current`.
//!
//! ## Chain time
//!
//! Two rules, kept apart because only one of them depends on who checks:
//!
//! - **The time rule** ([`check_time`], part of every validation): a
//!   block's `time_ms` is strictly after its parent's (the genesis time for
//!   height 1) and at most [`MAX_BLOCK_INTERVAL_MS`] after it. Every node
//!   decides it the same way, light clients included.
//! - **The clock rule** ([`check_not_ahead`]): a block is at most
//!   `max_skew_ms` ahead of the receiver's clock `now_ms`. Validators apply
//!   it to proposals ([`validate_block`] with the genesis
//!   `max_clock_skew_ms`): a proposal that breaks it is not voted for, so a
//!   faulty proposer cannot move chain time ahead of the honest clocks by
//!   more than the skew. A certified block is not held to it
//!   ([`validate_certified`], [`validate_certified_header`]: see there why).
//!
//! Honest proposers stamp [`next_block_time`]: their clock, clamped into
//! the range the time rule allows, so their proposals always pass it.
//!
//! Not checked here, because they need state or belong to other layers: the
//! `state_root` (the state machine recomputes it by executing the block),
//! whether the reputation events are the right ones (the state machine;
//! note the header does not commit to them, only their effect on
//! `state_root` does), the proof kinds' own verifiers (the node's registry)
//! and proposer selection (the consensus engine). A block's header `round`
//! is free here; the commit certificate binds it through the header hash.
//!
//! Errors name the field and both values (hashes as their first 8 bytes in
//! hex); [`BlockError::label`] gives a short label for metrics.

use std::collections::BTreeMap;

use crate::chain::quorum::{
    CertificateError, QuorumSummary, SignatureCheck, ValidatorSet, ValidatorSetError, verify_commit_with,
};
use crate::genesis::Genesis;
use crate::hash::{Hash32, tagged_hash, tags};
use crate::identity::ZsiId;
use crate::wire::limits::{MAX_PROOFS_PER_BLOCK, MAX_REPUTATION_EVENTS_PER_BLOCK};
use crate::wire::proto;
use crate::wire::sign::{header_hash, proof_content_id};
use crate::wire::{FieldError, FieldProblem, NetworkId, Validate, fields};

/// Longest inclusion path [`verify_proof_inclusion`] accepts: one sibling
/// per level of a tree of up to 2⁶⁴ leaves.
pub const MAX_INCLUSION_PATH: usize = 64;

// ───────────────────────────── chain commitment ─────────────────────────────

/// `BLAKE3("tiernet/chain-commitment/v1" ‖ prev ‖ height (u64 BE) ‖ state_root ‖ proofs_root ‖ validators_hash)`:
/// the chain commitment of the header at `height`, given the one at `height - 1`.
pub fn chain_commitment(
    prev: &Hash32,
    height: u64,
    state_root: &Hash32,
    proofs_root: &Hash32,
    validators_hash: &Hash32,
) -> Hash32 {
    tagged_hash(
        tags::CHAIN_COMMITMENT,
        &[
            prev.as_bytes(),
            &height.to_be_bytes(),
            state_root.as_bytes(),
            proofs_root.as_bytes(),
            validators_hash.as_bytes(),
        ],
    )
}

/// The chain commitment at height 0:
/// `BLAKE3("tiernet/genesis-commitment/v1" ‖ validators_hash ‖ genesis_time_ms (u64 BE) ‖ network_id)`.
pub fn genesis_commitment(network: &NetworkId, genesis_time_ms: u64, validators_hash: &Hash32) -> Hash32 {
    tagged_hash(
        tags::GENESIS_COMMITMENT,
        &[
            validators_hash.as_bytes(),
            &genesis_time_ms.to_be_bytes(),
            network.as_str().as_bytes(),
        ],
    )
}

/// What height 1 builds on: the parts of the genesis that the chain commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisAnchor {
    /// The network.
    pub network: NetworkId,
    /// The genesis time, ms since the Unix epoch: height 1 may not be earlier.
    pub time_ms: u64,
    /// Hash of the genesis validator set: the set that signs height 1.
    pub validators_hash: Hash32,
}

impl GenesisAnchor {
    /// An anchor from its parts.
    pub fn new(network: NetworkId, time_ms: u64, validators_hash: Hash32) -> Self {
        Self {
            network,
            time_ms,
            validators_hash,
        }
    }

    /// The anchor of a checked genesis.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        Self::new(
            genesis.network.clone(),
            genesis.genesis_time_ms,
            genesis.validators_hash(),
        )
    }

    /// The chain commitment at height 0 ([`genesis_commitment`]).
    pub fn commitment(&self) -> Hash32 {
        genesis_commitment(&self.network, self.time_ms, &self.validators_hash)
    }
}

/// What a block builds on: the genesis (for height 1) or the previous
/// header, which the caller has already validated.
#[derive(Debug, Clone, Copy)]
pub enum Parent<'a> {
    /// Height 0: the genesis.
    Genesis(&'a GenesisAnchor),
    /// The header at the previous height.
    Header(&'a proto::Header),
}

impl Parent<'_> {
    /// Its height (0 for the genesis).
    pub fn height(&self) -> u64 {
        match self {
            Parent::Genesis(_) => 0,
            Parent::Header(header) => header.height,
        }
    }

    /// What the child's `prev_hash` must be: the header hash, or all zero for the genesis.
    pub fn hash(&self) -> Hash32 {
        match self {
            Parent::Genesis(_) => Hash32::ZERO,
            Parent::Header(header) => header_hash(header),
        }
    }

    /// Its time: the child may not be earlier.
    pub fn time_ms(&self) -> u64 {
        match self {
            Parent::Genesis(anchor) => anchor.time_ms,
            Parent::Header(header) => header.time_ms,
        }
    }

    /// Its network id as written.
    pub fn network_id(&self) -> &str {
        match self {
            Parent::Genesis(anchor) => anchor.network.as_str(),
            Parent::Header(header) => &header.network_id,
        }
    }

    /// Its chain commitment ([`GenesisAnchor::commitment`] for the genesis).
    /// Fails only for a header whose field is not 32 bytes.
    pub fn chain_commitment(&self) -> Result<Hash32, BlockError> {
        match self {
            Parent::Genesis(anchor) => Ok(anchor.commitment()),
            Parent::Header(header) => Ok(fields::hash_in("parent", "chain_commitment", &header.chain_commitment)?),
        }
    }

    /// Hash of the set that must sign the child: the genesis set, or the
    /// header's `next_validators_hash`. Fails only for a malformed header.
    pub fn next_validators_hash(&self) -> Result<Hash32, BlockError> {
        match self {
            Parent::Genesis(anchor) => Ok(anchor.validators_hash),
            Parent::Header(header) => Ok(fields::hash_in(
                "parent",
                "next_validators_hash",
                &header.next_validators_hash,
            )?),
        }
    }
}

// ──────────────────────────────── proofs root ────────────────────────────────

/// `BLAKE3("tiernet/proofs-leaf/v1" ‖ content_id)`: the leaf of one proof.
pub fn proof_leaf_hash(content_id: &Hash32) -> Hash32 {
    tagged_hash(tags::PROOFS_LEAF, &[content_id.as_bytes()])
}

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    tagged_hash(tags::PROOFS_NODE, &[left.as_bytes(), right.as_bytes()])
}

fn wrap_root(count: u64, tree_root: Option<&Hash32>) -> Hash32 {
    match tree_root {
        Some(root) => tagged_hash(tags::PROOFS_ROOT, &[&count.to_be_bytes(), root.as_bytes()]),
        None => tagged_hash(tags::PROOFS_ROOT, &[&count.to_be_bytes()]),
    }
}

/// The largest power of two below `n` (`n ≥ 2`): where a tree of `n` leaves splits.
fn split_point(n: usize) -> usize {
    let mut k = 1usize;
    while k.saturating_mul(2) < n {
        k <<= 1;
    }
    k
}

/// Root of the tree over already leaf-hashed `leaves`; `None` when empty.
/// Recursion depth is log₂ of the length.
fn tree_root(leaves: &[Hash32]) -> Option<Hash32> {
    match leaves {
        [] => None,
        [leaf] => Some(*leaf),
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            Some(node_hash(&tree_root(left)?, &tree_root(right)?))
        }
    }
}

fn tree_path(leaves: &[Hash32], index: usize, out: &mut Vec<Hash32>) {
    if leaves.len() < 2 {
        return;
    }
    let (left, right) = leaves.split_at(split_point(leaves.len()));
    let sibling = if index < left.len() {
        tree_path(left, index, out);
        tree_root(right)
    } else {
        tree_path(right, index - left.len(), out);
        tree_root(left)
    };
    out.extend(sibling);
}

fn leaves_of(ids: &[Hash32]) -> Vec<Hash32> {
    ids.iter().map(proof_leaf_hash).collect()
}

fn count_u64(n: usize) -> u64 {
    // usize is at most 64 bits on every supported target.
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The `proofs_root` of a block with no proofs.
pub fn empty_proofs_root() -> Hash32 {
    wrap_root(0, None)
}

/// The `proofs_root` over proof content ids in block order.
pub fn proofs_root_of_ids(content_ids: &[Hash32]) -> Hash32 {
    wrap_root(
        count_u64(content_ids.len()),
        tree_root(&leaves_of(content_ids)).as_ref(),
    )
}

/// The `proofs_root` of a block body: over the envelopes' content ids in block order.
pub fn proofs_root(envelopes: &[proto::ProofEnvelope]) -> Hash32 {
    let ids: Vec<Hash32> = envelopes.iter().map(proof_content_id).collect();
    proofs_root_of_ids(&ids)
}

/// The inclusion path of the proof at `index` among `content_ids`: sibling
/// hashes from the leaf up to the root. `None` when `index` is out of range.
pub fn proofs_inclusion_of_ids(content_ids: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= content_ids.len() {
        return None;
    }
    let mut path = Vec::new();
    tree_path(&leaves_of(content_ids), index, &mut path);
    Some(path)
}

/// The inclusion path of the envelope at `index` of a block body (see
/// [`proofs_inclusion_of_ids`]). `None` when `index` is out of range.
pub fn proofs_inclusion(envelopes: &[proto::ProofEnvelope], index: usize) -> Option<Vec<Hash32>> {
    let ids: Vec<Hash32> = envelopes.iter().map(proof_content_id).collect();
    proofs_inclusion_of_ids(&ids, index)
}

/// Whether `path` proves that the proof with `content_id` is at `index` of
/// the `count` proofs committed to by `root` (a header's `proofs_root`).
/// Follows RFC 9162 §2.1.3.2; false for an index out of range, a path of
/// the wrong length or more than [`MAX_INCLUSION_PATH`] entries, or any
/// mismatch.
pub fn verify_proof_inclusion(root: &Hash32, content_id: &Hash32, index: u64, count: u64, path: &[Hash32]) -> bool {
    if index >= count || path.len() > MAX_INCLUSION_PATH {
        return false;
    }
    let mut f = index;
    let mut s = count - 1;
    let mut r = proof_leaf_hash(content_id);
    for sibling in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(sibling, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, sibling);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && wrap_root(count, Some(&r)) == *root
}

// ─────────────────────────────────── errors ───────────────────────────────────

use crate::hash::short;

/// Why a block, header or finalized block does not follow its parent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A field breaks the schema (its path says where: `header.prev_hash`,
    /// `proofs[3].signature`, `parent.chain_commitment`, `commit`).
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
    /// Another network's block (or parent).
    #[error("{field}: expected network {expected:?}, found {found:?}")]
    WrongNetwork {
        /// `header.network_id` or `parent.network_id`.
        field: &'static str,
        /// Our network.
        expected: String,
        /// What it says (truncated to 64 characters).
        found: String,
    },
    /// A height that does not follow.
    #[error("{field}: expected {expected}, found {found}")]
    WrongHeight {
        /// `header.height` or `commit.height`.
        field: &'static str,
        /// The required height.
        expected: u64,
        /// The height found.
        found: u64,
    },
    /// The parent is at the highest height: nothing can follow it.
    #[error("parent.height: {height} has no successor")]
    HeightOverflow {
        /// The parent's height.
        height: u64,
    },
    /// A hash that is not the one the rules compute.
    #[error("{field}: expected {}, found {}", short(.expected), short(.found))]
    Mismatch {
        /// `header.prev_hash`, `header.validators_hash`,
        /// `header.next_validators_hash`, `header.proofs_root`,
        /// `header.chain_commitment`, `commit.block_hash`, or
        /// `current_validators` (the set passed in is not the one the parent
        /// handed trust to).
        field: &'static str,
        /// What it must be.
        expected: Hash32,
        /// What it is.
        found: Hash32,
    },
    /// A block not later than its parent (chain time is strictly monotonic).
    #[error("header.time_ms: {found} is not after the parent's {parent}")]
    TimeBeforeParent {
        /// The parent's time.
        parent: u64,
        /// The block's time.
        found: u64,
    },
    /// A block further after its parent than [`MAX_BLOCK_INTERVAL_MS`] allows.
    #[error("header.time_ms: {found} is more than {max_ms} ms after the parent's {parent}")]
    TimeTooFarAfterParent {
        /// The parent's time.
        parent: u64,
        /// The block's time.
        found: u64,
        /// The largest step allowed.
        max_ms: u64,
    },
    /// A block too far in the future.
    #[error("header.time_ms: {found} is more than {max_skew_ms} ms after now ({now_ms})")]
    TimeInFuture {
        /// The block's time.
        found: u64,
        /// Now.
        now_ms: u64,
        /// The allowed clock skew.
        max_skew_ms: u64,
    },
    /// A proposer outside the validator set.
    #[error("header.proposer: {} is not in the validator set {}", short(&.proposer.0), short(.validators_hash))]
    UnknownProposer {
        /// The proposer named.
        proposer: ZsiId,
        /// Hash of the set.
        validators_hash: Hash32,
    },
    /// The same proof (by content id) twice in one block.
    #[error("proofs[{second}]: content id {} repeats proofs[{first}]", short(.content_id))]
    DuplicateProof {
        /// Its first position.
        first: usize,
        /// The repeat.
        second: usize,
        /// Its content id.
        content_id: Hash32,
    },
    /// `next_validators` present although the set does not change.
    #[error("next_validators: present but equal to the current set {}", short(.validators_hash))]
    RedundantNextValidators {
        /// Hash of the current set.
        validators_hash: Hash32,
    },
    /// `next_validators` that is not a usable validator set.
    #[error("next_validators: {0}")]
    InvalidNextValidators(ValidatorSetError),
    /// A commit certificate for an earlier round than the header's.
    #[error("commit.round: {commit_round} is before header.round {header_round}")]
    CommitRound {
        /// The header's round.
        header_round: u32,
        /// The certificate's round.
        commit_round: u32,
    },
    /// The commit certificate does not verify against the current set.
    #[error("commit: {0}")]
    Commit(CertificateError),
}

impl BlockError {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            BlockError::Malformed(_) => "malformed",
            BlockError::TooMany { .. } => "too_many",
            BlockError::WrongNetwork { .. } => "wrong_network",
            BlockError::WrongHeight { .. } => "wrong_height",
            BlockError::HeightOverflow { .. } => "height_overflow",
            BlockError::Mismatch { .. } => "mismatch",
            BlockError::TimeBeforeParent { .. } => "time_before_parent",
            BlockError::TimeTooFarAfterParent { .. } => "time_too_far_after_parent",
            BlockError::TimeInFuture { .. } => "time_in_future",
            BlockError::UnknownProposer { .. } => "unknown_proposer",
            BlockError::DuplicateProof { .. } => "duplicate_proof",
            BlockError::RedundantNextValidators { .. } => "redundant_next_validators",
            BlockError::InvalidNextValidators(_) => "invalid_next_validators",
            BlockError::CommitRound { .. } => "commit_round",
            BlockError::Commit(_) => "commit",
        }
    }

    /// True when the block is fine but its commit lacks power (not a forgery).
    pub const fn is_insufficient_power(&self) -> bool {
        matches!(self, BlockError::Commit(e) if e.is_insufficient_power())
    }
}

type BlockResult<T> = Result<T, BlockError>;

fn mismatch(field: &'static str, expected: Hash32, found: Hash32) -> BlockResult<()> {
    if expected == found {
        Ok(())
    } else {
        Err(BlockError::Mismatch { field, expected, found })
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> BlockResult<()> {
    if count > max {
        return Err(BlockError::TooMany { field, count, max });
    }
    Ok(())
}

/// The network named by `found` (at `field`) is `network`.
pub(crate) fn check_network(field: &'static str, found: &str, network: &NetworkId) -> BlockResult<()> {
    if found != network.as_str() {
        return Err(BlockError::WrongNetwork {
            field,
            expected: network.as_str().to_owned(),
            found: found.chars().take(crate::chain::MESSAGE_FIELD_CHARS).collect(),
        });
    }
    Ok(())
}

// ──────────────────────────────── chain time ────────────────────────────────

/// The most chain time may advance from one block to the next, in ms (one
/// day). A protocol constant rather than a genesis parameter: a light
/// client started from a checkpoint never sees the genesis, and must still
/// apply exactly the rule full nodes apply. See [`check_time`].
pub const MAX_BLOCK_INTERVAL_MS: u64 = 86_400_000;

/// The time an honest proposer whose clock reads `now_ms` gives the block
/// after one at `parent_time_ms`: its clock, but at least one ms after the
/// parent (time is strictly monotonic) and at most
/// [`MAX_BLOCK_INTERVAL_MS`] after it. After a stall longer than that
/// interval, chain time lags the clocks and catches up by up to one interval
/// per block, so an honest proposal always passes [`check_time`].
pub fn next_block_time(parent_time_ms: u64, now_ms: u64) -> u64 {
    now_ms
        .max(parent_time_ms.saturating_add(1))
        .min(parent_time_ms.saturating_add(MAX_BLOCK_INTERVAL_MS))
}

/// The time rule between `header` and a verified header (or the genesis)
/// `heights` heights below it, at `earlier_ms`: strictly later, and at most
/// `heights` × [`MAX_BLOCK_INTERVAL_MS`] later. For the parent (`heights`
/// = 1) this is the rule every block follows; for a header further up it
/// is what those rules imply, so a chain that passes every step passes it
/// too. No clock is involved: every node decides the same. (`heights` = 0
/// is treated as 1.)
pub fn check_time(earlier_ms: u64, heights: u64, header: &proto::Header) -> Result<(), BlockError> {
    if header.time_ms <= earlier_ms {
        return Err(BlockError::TimeBeforeParent {
            parent: earlier_ms,
            found: header.time_ms,
        });
    }
    let max_ms = heights.max(1).saturating_mul(MAX_BLOCK_INTERVAL_MS);
    if header.time_ms - earlier_ms > max_ms {
        return Err(BlockError::TimeTooFarAfterParent {
            parent: earlier_ms,
            found: header.time_ms,
            max_ms,
        });
    }
    Ok(())
}

/// The clock rule, for proposals only: `header` is at most `max_skew_ms`
/// ahead of the receiver's clock `now_ms`. A proposal that fails it is not
/// voted for ([`validate_block`]); a certified block is not held to it
/// ([`validate_certified`]), since whether it holds depends on the
/// receiver's clock, not on the block.
pub fn check_not_ahead(header: &proto::Header, now_ms: u64, max_skew_ms: u64) -> Result<(), BlockError> {
    if header.time_ms > now_ms.saturating_add(max_skew_ms) {
        return Err(BlockError::TimeInFuture {
            found: header.time_ms,
            now_ms,
            max_skew_ms,
        });
    }
    Ok(())
}

// ───────────────────────────────── validation ─────────────────────────────────

/// `header` is at the height after `parent`.
pub fn check_height(parent: Parent<'_>, header: &proto::Header) -> Result<(), BlockError> {
    let parent_height = parent.height();
    let height = parent_height
        .checked_add(1)
        .ok_or(BlockError::HeightOverflow { height: parent_height })?;
    if header.height != height {
        return Err(BlockError::WrongHeight {
            field: "header.height",
            expected: height,
            found: header.height,
        });
    }
    Ok(())
}

/// The hash link: `header.prev_hash` is the hash of `parent` (all zero for the genesis).
pub fn check_hash_link(parent: Parent<'_>, header: &proto::Header) -> Result<(), BlockError> {
    mismatch(
        "header.prev_hash",
        parent.hash(),
        fields::hash_in("header", "prev_hash", &header.prev_hash)?,
    )
}

/// The commitment link: `header.chain_commitment` is [`chain_commitment`]
/// over the parent's commitment and the header's height, `state_root`,
/// `proofs_root` and `validators_hash`.
pub fn check_commitment(parent: Parent<'_>, header: &proto::Header) -> Result<(), BlockError> {
    let expected = chain_commitment(
        &parent.chain_commitment()?,
        header.height,
        &fields::hash_in("header", "state_root", &header.state_root)?,
        &fields::hash_in("header", "proofs_root", &header.proofs_root)?,
        &fields::hash_in("header", "validators_hash", &header.validators_hash)?,
    );
    mismatch(
        "header.chain_commitment",
        expected,
        fields::hash_in("header", "chain_commitment", &header.chain_commitment)?,
    )
}

/// The header's proposer is a member of `current`, the set that signs it.
/// (Which member's turn it was is the consensus engine's business.)
pub fn check_proposer(header: &proto::Header, current: &ValidatorSet) -> Result<ZsiId, BlockError> {
    let proposer = ZsiId(fields::hash_in("header", "proposer", &header.proposer)?);
    if !current.contains(&proposer) {
        return Err(BlockError::UnknownProposer {
            proposer,
            validators_hash: current.hash(),
        });
    }
    Ok(proposer)
}

/// `now_ms` and the allowed skew; `None` skips the clock rule (the builder,
/// certified blocks).
type Clock = Option<(u64, u64)>;

/// Everything a header alone shows against its parent, except the chain
/// commitment (checked last so that a body mismatch is named first).
fn check_links(
    parent: Parent<'_>,
    header: &proto::Header,
    current: &ValidatorSet,
    network: &NetworkId,
    clock: Clock,
) -> BlockResult<()> {
    header
        .validate()
        .map_err(|e| BlockError::Malformed(e.within("header")))?;
    check_network("header.network_id", &header.network_id, network)?;
    check_network("parent.network_id", parent.network_id(), network)?;
    check_height(parent, header)?;
    check_hash_link(parent, header)?;
    check_time(parent.time_ms(), 1, header)?;
    if let Some((now_ms, max_skew_ms)) = clock {
        check_not_ahead(header, now_ms, max_skew_ms)?;
    }
    mismatch("current_validators", parent.next_validators_hash()?, current.hash())?;
    mismatch(
        "header.validators_hash",
        current.hash(),
        fields::hash_in("header", "validators_hash", &header.validators_hash)?,
    )?;
    check_proposer(header, current)?;
    Ok(())
}

/// Content ids of `proofs`, refusing a proof that appears twice.
fn distinct_content_ids(proofs: &[proto::ProofEnvelope]) -> BlockResult<Vec<Hash32>> {
    check_count("proofs", proofs.len(), MAX_PROOFS_PER_BLOCK)?;
    let ids: Vec<Hash32> = proofs.iter().map(proof_content_id).collect();
    let mut seen = BTreeMap::new();
    for (second, id) in ids.iter().enumerate() {
        if let Some(&first) = seen.get(id) {
            return Err(BlockError::DuplicateProof {
                first,
                second,
                content_id: *id,
            });
        }
        seen.insert(*id, second);
    }
    Ok(ids)
}

fn check_block(
    parent: Parent<'_>,
    block: &proto::Block,
    current: &ValidatorSet,
    network: &NetworkId,
    clock: Clock,
) -> BlockResult<()> {
    check_count("proofs", block.proofs.len(), MAX_PROOFS_PER_BLOCK)?;
    check_count(
        "reputation_events",
        block.reputation_events.len(),
        MAX_REPUTATION_EVENTS_PER_BLOCK,
    )?;
    block.validate().map_err(BlockError::Malformed)?;
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| BlockError::Malformed(FieldError::new("header", FieldProblem::Missing)))?;
    check_links(parent, header, current, network, clock)?;
    let ids = distinct_content_ids(&block.proofs)?;
    mismatch(
        "header.proofs_root",
        proofs_root_of_ids(&ids),
        fields::hash_in("header", "proofs_root", &header.proofs_root)?,
    )?;
    let next_hash = fields::hash_in("header", "next_validators_hash", &header.next_validators_hash)?;
    match &block.next_validators {
        Some(next) => {
            let next = ValidatorSet::from_proto(next).map_err(BlockError::InvalidNextValidators)?;
            if next.hash() == current.hash() {
                return Err(BlockError::RedundantNextValidators {
                    validators_hash: current.hash(),
                });
            }
            mismatch("header.next_validators_hash", next.hash(), next_hash)?;
        }
        None => mismatch("header.next_validators_hash", current.hash(), next_hash)?,
    }
    check_commitment(parent, header)
}

/// Checks a header against its parent: network, height, `prev_hash`, time
/// ([`check_time`]: after the parent's and at most
/// [`MAX_BLOCK_INTERVAL_MS`] after it; [`check_not_ahead`]: `≤ now_ms +
/// max_skew_ms`), that `current` is the set the parent handed trust to,
/// `validators_hash`, the proposer's membership and the chain commitment
/// link. `proofs_root`, `next_validators_hash` and `state_root` are taken
/// as they are (only a body or state can check them).
pub fn validate_header(
    parent: Parent<'_>,
    header: &proto::Header,
    current: &ValidatorSet,
    network: &NetworkId,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), BlockError> {
    check_links(parent, header, current, network, Some((now_ms, max_skew_ms)))?;
    check_commitment(parent, header)
}

/// Checks a block against its parent: [`validate_header`], plus the body's
/// counts and structure, no proof twice, `proofs_root`, and the
/// `next_validators` rule (present, valid, different from `current` and
/// hashing to `next_validators_hash`; or absent with `next_validators_hash`
/// equal to `current`'s hash). `current` is the set that signs this block:
/// the one the parent named. This is what a validator checks before it
/// votes for a proposal, clock rule included.
pub fn validate_block(
    parent: Parent<'_>,
    block: &proto::Block,
    current: &ValidatorSet,
    network: &NetworkId,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), BlockError> {
    check_block(parent, block, current, network, Some((now_ms, max_skew_ms)))
}

/// Checks that `commit` certifies `header` on `network`: the same height, a
/// round not before the header's, the header's hash, and more than 2/3 of
/// `current`'s power in valid precommit signatures ([`verify_commit`](crate::chain::verify_commit)).
/// Returns who signed.
pub fn verify_header_commit(
    header: &proto::Header,
    commit: &proto::CommitCertificate,
    current: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, BlockError> {
    verify_header_commit_with(header, commit, current, network, SignatureCheck::All)
}

/// [`verify_header_commit`] checking the signatures `check` says
/// ([`SignatureCheck::Quorum`]: only enough of the highest-power ones to
/// pass the quorum, as a light client does; see [`verify_commit_with`]).
pub fn verify_header_commit_with(
    header: &proto::Header,
    commit: &proto::CommitCertificate,
    current: &ValidatorSet,
    network: &NetworkId,
    check: SignatureCheck,
) -> Result<QuorumSummary, BlockError> {
    if commit.height != header.height {
        return Err(BlockError::WrongHeight {
            field: "commit.height",
            expected: header.height,
            found: commit.height,
        });
    }
    if commit.round < header.round {
        return Err(BlockError::CommitRound {
            header_round: header.round,
            commit_round: commit.round,
        });
    }
    let found = fields::hash32(&commit.block_hash).map_err(|e| e.at("commit.block_hash"))?;
    mismatch("commit.block_hash", header_hash(header), found)?;
    verify_commit_with(commit, current, network, check).map_err(BlockError::Commit)
}

fn required<'a, T>(field: &str, item: &'a Option<T>) -> BlockResult<&'a T> {
    item.as_ref()
        .ok_or_else(|| BlockError::Malformed(FieldError::new(field, FieldProblem::Missing)))
}

fn finalized_parts(finalized: &proto::FinalizedBlock) -> BlockResult<(&proto::Block, &proto::CommitCertificate)> {
    Ok((
        required("block", &finalized.block)?,
        required("commit", &finalized.commit)?,
    ))
}

fn signed_parts(signed: &proto::SignedHeader) -> BlockResult<(&proto::Header, &proto::CommitCertificate)> {
    Ok((required("header", &signed.header)?, required("commit", &signed.commit)?))
}

/// [`validate_block`] and [`verify_header_commit`]: a finalized block that
/// follows `parent` and is certified by `current`, and is not ahead of
/// `now_ms` by more than `max_skew_ms`. Returns who signed the commit (the
/// input of [`crate::chain::reputation_rules::participation_events`]).
pub fn validate_finalized(
    parent: Parent<'_>,
    finalized: &proto::FinalizedBlock,
    current: &ValidatorSet,
    network: &NetworkId,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<QuorumSummary, BlockError> {
    let (block, commit) = finalized_parts(finalized)?;
    validate_block(parent, block, current, network, now_ms, max_skew_ms)?;
    let header = required("block.header", &block.header)?;
    verify_header_commit(header, commit, current, network)
}

/// A finalized block as catch-up receives it: every rule of
/// [`validate_finalized`] except the clock rule ([`check_not_ahead`]).
///
/// A certified block was voted for by more than 2/3 of the power, each of
/// whom applied the clock rule with its own clock when it prevoted; if it
/// looks ahead of ours, it is our clock that is likely behind. Refusing it
/// would leave this node unable to ever catch up (the rest of the chain
/// builds on it), and waiting for our clock would stall it for as long as
/// the clock is wrong. So a certified block is held to the rules that do
/// not depend on who checks, strictly monotonic time bounded by
/// [`MAX_BLOCK_INTERVAL_MS`] included, and to nothing else; it does not
/// move the receiver's idea of "now", which stays its own clock.
pub fn validate_certified(
    parent: Parent<'_>,
    finalized: &proto::FinalizedBlock,
    current: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, BlockError> {
    let (block, commit) = finalized_parts(finalized)?;
    check_block(parent, block, current, network, None)?;
    let header = required("block.header", &block.header)?;
    verify_header_commit(header, commit, current, network)
}

/// [`validate_header`] and [`verify_header_commit`]: a certified header
/// that follows `parent`, not ahead of `now_ms` by more than
/// `max_skew_ms`. Returns who signed the commit.
pub fn validate_signed_header(
    parent: Parent<'_>,
    signed: &proto::SignedHeader,
    current: &ValidatorSet,
    network: &NetworkId,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<QuorumSummary, BlockError> {
    let (header, commit) = signed_parts(signed)?;
    validate_header(parent, header, current, network, now_ms, max_skew_ms)?;
    verify_header_commit(header, commit, current, network)
}

/// A certified header with the rules of [`validate_certified`] (no clock):
/// what a full node holds a header to, and so exactly what the light
/// client's [`crate::verify::verify_next`] accepts (both are built from
/// the same checks: [`check_height`], [`check_hash_link`], [`check_time`],
/// [`check_commitment`], [`check_proposer`], [`verify_header_commit`]).
pub fn validate_certified_header(
    parent: Parent<'_>,
    signed: &proto::SignedHeader,
    current: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, BlockError> {
    let (header, commit) = signed_parts(signed)?;
    check_links(parent, header, current, network, None)?;
    check_commitment(parent, header)?;
    verify_header_commit(header, commit, current, network)
}

// ───────────────────────────────── building ─────────────────────────────────

/// Builds the next header and block on `parent`, computing every derived
/// field: `height = parent + 1`, `prev_hash`, `validators_hash`,
/// `next_validators_hash`, `proofs_root` and `chain_commitment`.
///
/// The result is checked with the same rules as [`validate_block`] (except
/// the clock rule, which needs a receiver's clock), so the builder never
/// returns a block that its own validation would refuse. Give it
/// `time_ms` from [`next_block_time`] to meet the time rules.
#[derive(Debug, Clone)]
pub struct BlockBuilder<'a> {
    /// What the block builds on (its network is the block's).
    pub parent: Parent<'a>,
    /// The consensus round of the proposal.
    pub round: u32,
    /// The proposer's wall-clock time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The proposer (a member of `current`).
    pub proposer: ZsiId,
    /// The set that signs this block: the one the parent named.
    pub current: &'a ValidatorSet,
    /// The set that signs the next block (`current` when it does not change).
    pub next: &'a ValidatorSet,
    /// The state root after applying this block.
    pub state_root: Hash32,
}

impl BlockBuilder<'_> {
    fn network(&self) -> BlockResult<NetworkId> {
        NetworkId::new(self.parent.network_id()).map_err(|e| {
            BlockError::Malformed(FieldError::new("network_id", FieldProblem::Rule(e.reason)).within("parent"))
        })
    }

    fn assemble(&self, proofs_root: Hash32) -> BlockResult<proto::Header> {
        let height = self.parent.height().checked_add(1).ok_or(BlockError::HeightOverflow {
            height: self.parent.height(),
        })?;
        let validators_hash = self.current.hash();
        let commitment = chain_commitment(
            &self.parent.chain_commitment()?,
            height,
            &self.state_root,
            &proofs_root,
            &validators_hash,
        );
        Ok(proto::Header {
            network_id: self.parent.network_id().to_owned(),
            height,
            round: self.round,
            time_ms: self.time_ms,
            prev_hash: self.parent.hash().0.to_vec(),
            proposer: self.proposer.as_bytes().to_vec(),
            validators_hash: validators_hash.0.to_vec(),
            next_validators_hash: self.next.hash().0.to_vec(),
            state_root: self.state_root.0.to_vec(),
            proofs_root: proofs_root.0.to_vec(),
            chain_commitment: commitment.0.to_vec(),
        })
    }

    /// The header of a block carrying `proofs` (in this order), checked
    /// as in [`validate_header`] without the future-time check.
    pub fn header(&self, proofs: &[proto::ProofEnvelope]) -> Result<proto::Header, BlockError> {
        let network = self.network()?;
        let ids = distinct_content_ids(proofs)?;
        let header = self.assemble(proofs_root_of_ids(&ids))?;
        check_links(self.parent, &header, self.current, &network, None)?;
        check_commitment(self.parent, &header)?;
        Ok(header)
    }

    /// The whole block: header, `proofs`, `reputation_events`, and
    /// `next_validators` when `next` differs from `current`; checked as in
    /// [`validate_block`] without the future-time check.
    pub fn block(
        &self,
        proofs: Vec<proto::ProofEnvelope>,
        reputation_events: Vec<proto::ReputationEvent>,
    ) -> Result<proto::Block, BlockError> {
        let network = self.network()?;
        check_count(
            "reputation_events",
            reputation_events.len(),
            MAX_REPUTATION_EVENTS_PER_BLOCK,
        )?;
        let ids = distinct_content_ids(&proofs)?;
        let header = self.assemble(proofs_root_of_ids(&ids))?;
        let next_validators = (self.next.hash() != self.current.hash()).then(|| self.next.as_proto().clone());
        let block = proto::Block {
            header: Some(header),
            proofs,
            reputation_events,
            next_validators,
            last_commit: None,
        };
        check_block(self.parent, &block, self.current, &network, None)?;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<Hash32> {
        (0..n).map(|i| Hash32([i; 32])).collect()
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below_n() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1024, 512),
            (1025, 1024),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn small_trees_have_the_documented_shape() {
        let leaf = |i: u8| proof_leaf_hash(&Hash32([i; 32]));
        assert_eq!(
            proofs_root_of_ids(&[]),
            tagged_hash(tags::PROOFS_ROOT, &[&0u64.to_be_bytes()])
        );
        assert_eq!(
            proofs_root_of_ids(&ids(1)),
            tagged_hash(tags::PROOFS_ROOT, &[&1u64.to_be_bytes(), leaf(0).as_bytes()])
        );
        let three = node_hash(&node_hash(&leaf(0), &leaf(1)), &leaf(2));
        assert_eq!(
            proofs_root_of_ids(&ids(3)),
            tagged_hash(tags::PROOFS_ROOT, &[&3u64.to_be_bytes(), three.as_bytes()])
        );
        assert_eq!(
            proofs_inclusion_of_ids(&ids(3), 2),
            Some(vec![node_hash(&leaf(0), &leaf(1))])
        );
        assert_eq!(proofs_inclusion_of_ids(&ids(3), 0), Some(vec![leaf(1), leaf(2)]));
        assert_eq!(proofs_inclusion_of_ids(&ids(3), 3), None);
    }

    #[test]
    fn the_count_is_bound_into_the_root() {
        // Without the count, the path of leaf 2 of [a, b, c] would also prove
        // leaf 1 of a two-leaf tree [node(a, b), c].
        let three = ids(3);
        let root = proofs_root_of_ids(&three);
        let path = proofs_inclusion_of_ids(&three, 2).unwrap_or_default();
        assert!(verify_proof_inclusion(&root, &three[2], 2, 3, &path));
        assert!(!verify_proof_inclusion(&root, &three[2], 1, 2, &path));
    }

    #[test]
    fn verify_refuses_absurd_inputs_without_panicking() {
        let root = proofs_root_of_ids(&ids(4));
        assert!(!verify_proof_inclusion(&root, &Hash32::ZERO, 0, 0, &[]));
        assert!(!verify_proof_inclusion(&root, &Hash32::ZERO, u64::MAX, u64::MAX, &[]));
        let long = vec![Hash32::ZERO; MAX_INCLUSION_PATH + 1];
        assert!(!verify_proof_inclusion(&root, &Hash32::ZERO, 3, u64::MAX, &long));
        let max = vec![Hash32::ZERO; MAX_INCLUSION_PATH];
        assert!(!verify_proof_inclusion(
            &root,
            &Hash32::ZERO,
            u64::MAX - 1,
            u64::MAX,
            &max
        ));
    }

    #[test]
    fn errors_name_the_field_and_both_values() {
        let e = BlockError::Mismatch {
            field: "header.prev_hash",
            expected: Hash32([0xab; 32]),
            found: Hash32([0x01; 32]),
        };
        assert_eq!(
            e.to_string(),
            "header.prev_hash: expected abababababababab, found 0101010101010101"
        );
        assert_eq!(e.label(), "mismatch");
    }
}
