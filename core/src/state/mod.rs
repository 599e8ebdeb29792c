//! The chain's state tree: commitments, single-value proofs and snapshot chunks.
//!
//! The state is a key-value map committed to by one 32-byte root, the
//! `state_root` of every header. Full nodes keep it in a Jellyfish Merkle Tree
//! (the `jmt` crate, in `tiernet-node`'s `state_store`); this module holds the
//! part everyone needs, pure and wasm-clean: the hashing scheme, the proof
//! types, and the verifiers a light client runs on bytes that come from the
//! network. It does not depend on `jmt`: the scheme below is re-implemented
//! here and checked against `jmt`'s roots and proofs by the node's tests.
//!
//! # The tree
//!
//! Logically the tree is a binary sparse Merkle tree of depth 256 over key
//! hashes, where a subtree with no leaf is the [`PLACEHOLDER`] and a subtree
//! with exactly one leaf is that leaf itself (it sits as high as it can). This
//! is the shape `jmt` 0.12 commits to: its 16-ary internal nodes hash their
//! children as a 4-level binary tree with the same two collapsing rules, so
//! the root is the same as the binary tree's. Bits of a key hash are taken
//! most significant first: bit 0 is the top bit of byte 0; bit `d` chooses the
//! child at depth `d + 1` (0 = left).
//!
//! # Hashing (BLAKE3, domain-separated)
//!
//! | what | hash |
//! |---|---|
//! | key hash | `BLAKE3("tiernet/state-key/v1" ‖ key)` |
//! | value hash | `BLAKE3("tiernet/state-value/v1" ‖ value)` |
//! | leaf | `BLAKE3("tiernet/state-node/v1" ‖ "JMT::LeafNode" ‖ key_hash ‖ value_hash)` |
//! | internal node | `BLAKE3("tiernet/state-node/v1" ‖ "JMT::IntrnalNode" ‖ left ‖ right)` |
//! | empty subtree | the 32 ASCII bytes `SPARSE_MERKLE_PLACEHOLDER_HASH__` ([`PLACEHOLDER`]) |
//!
//! The two node separators (`"JMT::LeafNode"`, 13 bytes, and
//! `"JMT::IntrnalNode"`, 16 bytes, vowel dropped by `jmt`) and the placeholder
//! are fixed by `jmt`; the tags are ours. `jmt` hashes values with
//! `SimpleHasher::hash` and nodes with `new`/`update`/`finalize`, which is
//! how the node gives values and nodes different tags ([`StateNodeHasher`],
//! [`value_hash`]). The root of the empty tree is [`EMPTY_ROOT`].
//!
//! # Single-value proofs
//!
//! A [`TreeProof`] (wire: `StateProof`) is an optional leaf and the sibling
//! hashes from that leaf's depth up to the root (bottom first, so
//! `siblings.len()` is the leaf's depth). It proves, for a key hash `k`:
//! - presence: the leaf is `(k, value_hash(value))`;
//! - absence with another leaf `(k', v')`: `k' ≠ k` and `k` shares the first
//!   `siblings.len()` bits with `k'`, so `k` would have landed in that
//!   one-leaf subtree;
//! - absence with no leaf: the subtree on `k`'s path at that depth is empty.
//!
//! and the siblings must fold (along `k`'s bits) to the root. See
//! [`verify_value`].
//!
//! # Snapshot chunks
//!
//! See [`chunk`] for the scheme: chunk `i` holds consecutive entries in key
//! hash order, the proof of its last entry, and is verified against the root
//! together with the previous chunk's [`ChunkSummary`].

pub mod chunk;
mod tree;

pub use chunk::{ChunkSummary, chunk_hash, verify_chunk};
pub use tree::MemoryTree;

use crate::hash::{HASH_LEN, Hash32, tagged_hash};
use crate::identity::ZsiId;
use crate::wire::limits::MAX_PROOF_SIBLINGS;
use crate::wire::proto;

/// Domain tags of the state tree (same shape as [`crate::hash::tags`], and
/// none is a prefix of any tag there; a test checks this).
pub mod tags {
    /// Hash of a state key.
    pub const STATE_KEY: &str = "tiernet/state-key/v1";
    /// Hash of a state value.
    pub const STATE_VALUE: &str = "tiernet/state-value/v1";
    /// Leaf and internal nodes of the state tree.
    pub const STATE_NODE: &str = "tiernet/state-node/v1";
    /// All state tags.
    pub const ALL: &[&str] = &[STATE_KEY, STATE_VALUE, STATE_NODE];
}

/// The hash of an empty subtree, fixed by `jmt`.
pub const PLACEHOLDER: Hash32 = Hash32(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__");

/// The root of the empty state.
pub const EMPTY_ROOT: Hash32 = PLACEHOLDER;

/// Separator before a leaf's key and value hashes (fixed by `jmt`).
pub const LEAF_SEPARATOR: &[u8] = b"JMT::LeafNode";

/// Separator before an internal node's children (fixed by `jmt`).
pub const INTERNAL_SEPARATOR: &[u8] = b"JMT::IntrnalNode";

/// Depth of the tree in bits: the most siblings a proof can have.
pub const TREE_DEPTH: usize = 256;

// ───────────────────────────── key layout ─────────────────────────────

/// Prefix of identity records: `id/` ‖ zsi_id (32 bytes).
pub const IDENTITY_PREFIX: &[u8] = b"id/";
/// Prefix of proof records: `proof/` ‖ content id (32 bytes).
pub const PROOF_PREFIX: &[u8] = b"proof/";
/// The one key of the current validator set.
pub const VALIDATORS_KEY: &[u8] = b"validators";
/// The one key of the chain parameters.
pub const PARAMS_KEY: &[u8] = b"params";
/// Prefix of credited uptime windows: `uptime/` ‖ zsi_id (32 bytes).
pub const UPTIME_PREFIX: &[u8] = b"uptime/";

/// Length of an identity key.
pub const IDENTITY_KEY_LEN: usize = 3 + HASH_LEN;
/// Length of a proof key.
pub const PROOF_KEY_LEN: usize = 6 + HASH_LEN;
/// Length of an uptime-window key.
pub const UPTIME_KEY_LEN: usize = 7 + HASH_LEN;

/// The key of a ZSI identity's record (identity keys and reputation):
/// `b"id/" ‖ zsi_id`.
pub fn identity_key(id: &ZsiId) -> [u8; IDENTITY_KEY_LEN] {
    let mut key = [0; IDENTITY_KEY_LEN];
    key[..IDENTITY_PREFIX.len()].copy_from_slice(IDENTITY_PREFIX);
    key[IDENTITY_PREFIX.len()..].copy_from_slice(id.as_bytes());
    key
}

/// The key of the validator set: `b"validators"`.
pub fn validators_key() -> &'static [u8] {
    VALIDATORS_KEY
}

/// The key of an included proof's record, by its content id:
/// `b"proof/" ‖ proof_id`.
pub fn proof_key(proof_id: &Hash32) -> [u8; PROOF_KEY_LEN] {
    let mut key = [0; PROOF_KEY_LEN];
    key[..PROOF_PREFIX.len()].copy_from_slice(PROOF_PREFIX);
    key[PROOF_PREFIX.len()..].copy_from_slice(proof_id.as_bytes());
    key
}

/// The key of the last uptime window credited to a subject:
/// `b"uptime/" ‖ zsi_id`. Its value is the window's `to_height`, 8 bytes
/// big-endian; a later window must start above it.
pub fn uptime_key(id: &ZsiId) -> [u8; UPTIME_KEY_LEN] {
    let mut key = [0; UPTIME_KEY_LEN];
    key[..UPTIME_PREFIX.len()].copy_from_slice(UPTIME_PREFIX);
    key[UPTIME_PREFIX.len()..].copy_from_slice(id.as_bytes());
    key
}

/// The key of the chain parameters: `b"params"`.
pub fn params_key() -> &'static [u8] {
    PARAMS_KEY
}

// ───────────────────────────── hashing ─────────────────────────────

/// `BLAKE3("tiernet/state-key/v1" ‖ key)`: where `key` lives in the tree.
pub fn key_hash(key: &[u8]) -> Hash32 {
    tagged_hash(tags::STATE_KEY, &[key])
}

/// `BLAKE3("tiernet/state-value/v1" ‖ value)`.
pub fn value_hash(value: &[u8]) -> Hash32 {
    tagged_hash(tags::STATE_VALUE, &[value])
}

/// The hash of a leaf.
pub fn leaf_hash(key_hash: &Hash32, value_hash: &Hash32) -> Hash32 {
    tagged_hash(
        tags::STATE_NODE,
        &[LEAF_SEPARATOR, key_hash.as_bytes(), value_hash.as_bytes()],
    )
}

/// The hash of an internal node.
pub fn internal_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    tagged_hash(
        tags::STATE_NODE,
        &[INTERNAL_SEPARATOR, left.as_bytes(), right.as_bytes()],
    )
}

/// Incremental node hasher: `BLAKE3("tiernet/state-node/v1" ‖ …)`. The node
/// wraps it as `jmt`'s `SimpleHasher` (with `hash` = [`value_hash`]).
#[derive(Clone, Debug)]
pub struct StateNodeHasher(blake3::Hasher);

impl StateNodeHasher {
    /// A hasher that has absorbed the node tag.
    pub fn new() -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(tags::STATE_NODE.as_bytes());
        StateNodeHasher(hasher)
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest.
    pub fn finalize(&self) -> [u8; HASH_LEN] {
        *self.0.finalize().as_bytes()
    }
}

impl Default for StateNodeHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Bit `index` (0 = most significant bit of byte 0) of a key hash; `false`
/// past bit 255.
pub(crate) fn bit(hash: &Hash32, index: usize) -> bool {
    match hash.0.get(index / 8) {
        Some(byte) => (byte >> (7 - index % 8)) & 1 == 1,
        None => false,
    }
}

/// Number of leading bits `a` and `b` share (256 if equal).
pub(crate) fn common_prefix_bits(a: &Hash32, b: &Hash32) -> usize {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return i * 8 + diff.leading_zeros() as usize;
        }
    }
    TREE_DEPTH
}

// ───────────────────────────── errors ─────────────────────────────

/// Why a state proof or chunk could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// The proof is not well-formed: wrong lengths, too many items, bad order.
    /// The sender is at fault whatever the root.
    #[error("malformed state proof: {0}")]
    Malformed(#[from] Malformed),
    /// The proof is well-formed but does not prove the claim against `root`.
    #[error("state proof does not match root {root}: {reason}")]
    Mismatch {
        /// The root the proof was checked against.
        root: Hash32,
        /// What did not match.
        reason: Mismatch,
    },
    /// A chunk does not follow the previous chunk (wrong root, height or index).
    #[error("snapshot chunk out of sequence: {0}")]
    OutOfSequence(String),
}

impl StateProofError {
    /// True for [`StateProofError::Malformed`].
    pub fn is_malformed(&self) -> bool {
        matches!(self, StateProofError::Malformed(_))
    }

    fn mismatch(root: &Hash32, reason: Mismatch) -> Self {
        StateProofError::Mismatch { root: *root, reason }
    }
}

/// How a proof or chunk is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// More siblings than the tree is deep.
    #[error("{field}: {count} siblings, at most {max}")]
    TooManySiblings {
        /// The field.
        field: &'static str,
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A hash that is not 32 bytes.
    #[error("{field}[{index}]: {len} bytes, expected 32")]
    HashLength {
        /// The field.
        field: &'static str,
        /// Position in a list (0 for single fields).
        index: usize,
        /// The length found.
        len: usize,
    },
    /// Too many entries in a chunk.
    #[error("{count} entries in a chunk, at most {max}")]
    TooManyEntries {
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A chunk entry's key or value is longer than allowed.
    #[error("entries[{index}].{field}: {len} bytes, at most {max}")]
    EntryTooLong {
        /// The entry.
        index: usize,
        /// `key` or `value`.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Chunk entries are not in strictly increasing key-hash order.
    #[error("entries[{index}] is not after the entry before it in key-hash order")]
    EntriesOutOfOrder {
        /// The first entry out of order.
        index: usize,
    },
    /// A non-empty chunk without `last_entry_proof`.
    #[error("a non-empty chunk has no last_entry_proof")]
    MissingLastEntryProof,
    /// An empty chunk with a `last_entry_proof`.
    #[error("an empty chunk has a last_entry_proof")]
    UnexpectedLastEntryProof,
    /// `right_siblings` is reserved and must be empty.
    #[error("right_siblings must be empty ({count} given)")]
    RightSiblingsNotEmpty {
        /// How many were given.
        count: usize,
    },
}

/// How a well-formed proof fails to prove its claim against the root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The siblings fold to another root.
    #[error("the proof folds to root {computed}")]
    RootDiffers {
        /// The root computed from the proof.
        computed: Hash32,
    },
    /// A value was claimed but the proof shows the key absent.
    #[error("a value was claimed, but the proof shows the key absent")]
    ProvesAbsence,
    /// Absence was claimed but the proof's leaf is the key itself.
    #[error("absence was claimed, but the proof's leaf is the key itself")]
    ProvesPresence,
    /// An inclusion proof whose leaf is another key.
    #[error("the proof's leaf is key hash {found}, not {expected}")]
    OtherKey {
        /// The key hash asked about.
        expected: Hash32,
        /// The key hash in the proof's leaf.
        found: Hash32,
    },
    /// The proof's leaf holds another value.
    #[error("the proof's leaf holds value hash {found}, not {expected}")]
    ValueDiffers {
        /// The hash of the claimed value.
        expected: Hash32,
        /// The value hash in the proof's leaf.
        found: Hash32,
    },
    /// An absence proof whose leaf is not on the key's path.
    #[error("the absence proof's leaf {leaf} does not lie on the key's path at depth {depth}")]
    LeafOffPath {
        /// The leaf's key hash.
        leaf: Hash32,
        /// The leaf's depth.
        depth: usize,
    },
    /// A chunk's entries do not hash to a sibling of its boundary proofs.
    #[error("the chunk's entries do not match the boundary proof's sibling at depth {depth}")]
    ChunkSiblingDiffers {
        /// Depth of the sibling subtree's root.
        depth: usize,
    },
    /// Entries of a chunk that no boundary sibling covers (they cannot be in the tree).
    #[error("{count} of the chunk's entries are not covered by its boundary proofs")]
    ChunkEntriesNotCovered {
        /// How many entries were left over.
        count: usize,
    },
    /// The two boundary proofs do not reach below the node where their paths split.
    #[error("the boundary proofs end above the node where their paths split (depth {split})")]
    BoundaryAboveSplit {
        /// Depth of the split node.
        split: usize,
    },
    /// An empty chunk for a non-empty tree.
    #[error("the chunk is empty but the state is not")]
    EmptyChunk,
}

// ───────────────────────────── proofs ─────────────────────────────

/// A leaf of the tree: a key hash and its value's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLeaf {
    /// [`key_hash`] of the key.
    pub key_hash: Hash32,
    /// [`value_hash`] of the value.
    pub value_hash: Hash32,
}

impl TreeLeaf {
    /// The leaf's node hash.
    pub fn hash(&self) -> Hash32 {
        leaf_hash(&self.key_hash, &self.value_hash)
    }
}

/// A sparse Merkle proof for one key: the leaf found on the key's path (if
/// any) and the sibling hashes from that leaf up to the root. At most
/// [`TREE_DEPTH`] siblings (checked on construction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeProof {
    leaf: Option<TreeLeaf>,
    siblings: Vec<Hash32>,
}

impl TreeProof {
    /// A proof from its parts; siblings bottom first. Fails with more than
    /// [`TREE_DEPTH`] siblings.
    pub fn new(leaf: Option<TreeLeaf>, siblings: Vec<Hash32>) -> Result<Self, Malformed> {
        if siblings.len() > TREE_DEPTH {
            return Err(Malformed::TooManySiblings {
                field: "siblings",
                count: siblings.len(),
                max: TREE_DEPTH,
            });
        }
        Ok(TreeProof { leaf, siblings })
    }

    /// The leaf at the end of the path.
    pub fn leaf(&self) -> Option<&TreeLeaf> {
        self.leaf.as_ref()
    }

    /// Sibling hashes, bottom (deepest) first.
    pub fn siblings(&self) -> &[Hash32] {
        &self.siblings
    }

    /// The root these siblings fold to along `key_hash`'s path, starting
    /// from the leaf (or the placeholder).
    pub fn root_along(&self, key_hash: &Hash32) -> Hash32 {
        let depth = self.siblings.len();
        let mut current = self.leaf.as_ref().map_or(PLACEHOLDER, TreeLeaf::hash);
        for (j, sibling) in self.siblings.iter().enumerate() {
            // siblings[j] is the sibling at depth `depth - j`, chosen by bit `depth - j - 1`.
            current = if bit(key_hash, depth - j - 1) {
                internal_hash(sibling, &current)
            } else {
                internal_hash(&current, sibling)
            };
        }
        current
    }

    /// Checks that this proves `key_hash ↦ value_hash` (`Some`) or that
    /// `key_hash` is absent (`None`) under `root`.
    pub fn verify(&self, root: &Hash32, key_hash: &Hash32, value_hash: Option<&Hash32>) -> Result<(), StateProofError> {
        let fail = |reason| Err(StateProofError::mismatch(root, reason));
        match (value_hash, &self.leaf) {
            (Some(expected), Some(leaf)) => {
                if leaf.key_hash != *key_hash {
                    return fail(Mismatch::OtherKey {
                        expected: *key_hash,
                        found: leaf.key_hash,
                    });
                }
                if leaf.value_hash != *expected {
                    return fail(Mismatch::ValueDiffers {
                        expected: *expected,
                        found: leaf.value_hash,
                    });
                }
            }
            (Some(_), None) => return fail(Mismatch::ProvesAbsence),
            (None, Some(leaf)) => {
                if leaf.key_hash == *key_hash {
                    return fail(Mismatch::ProvesPresence);
                }
                if common_prefix_bits(key_hash, &leaf.key_hash) < self.siblings.len() {
                    return fail(Mismatch::LeafOffPath {
                        leaf: leaf.key_hash,
                        depth: self.siblings.len(),
                    });
                }
            }
            (None, None) => {}
        }
        let computed = self.root_along(key_hash);
        if computed != *root {
            return fail(Mismatch::RootDiffers { computed });
        }
        Ok(())
    }
}

fn hash_field(field: &'static str, index: usize, bytes: &[u8]) -> Result<Hash32, Malformed> {
    crate::wire::fields::hash32(bytes).map_err(|e| Malformed::HashLength {
        field,
        index,
        len: e.actual,
    })
}

/// Parses sibling hashes, bounded by [`MAX_PROOF_SIBLINGS`] before allocating.
pub(crate) fn parse_siblings(field: &'static str, siblings: &[Vec<u8>]) -> Result<Vec<Hash32>, Malformed> {
    let max = MAX_PROOF_SIBLINGS.min(TREE_DEPTH);
    if siblings.len() > max {
        return Err(Malformed::TooManySiblings {
            field,
            count: siblings.len(),
            max,
        });
    }
    siblings
        .iter()
        .enumerate()
        .map(|(i, s)| hash_field(field, i, s))
        .collect()
}

impl TryFrom<&proto::StateProof> for TreeProof {
    type Error = Malformed;

    fn try_from(proof: &proto::StateProof) -> Result<Self, Malformed> {
        let leaf = match &proof.leaf {
            Some(leaf) => Some(TreeLeaf {
                key_hash: hash_field("leaf.key_hash", 0, &leaf.key_hash)?,
                value_hash: hash_field("leaf.value_hash", 0, &leaf.value_hash)?,
            }),
            None => None,
        };
        let siblings = parse_siblings("siblings", &proof.siblings)?;
        TreeProof::new(leaf, siblings)
    }
}

impl From<&TreeProof> for proto::StateProof {
    fn from(proof: &TreeProof) -> Self {
        proto::StateProof {
            leaf: proof.leaf.map(|leaf| proto::LeafNode {
                key_hash: leaf.key_hash.0.to_vec(),
                value_hash: leaf.value_hash.0.to_vec(),
            }),
            siblings: proof.siblings.iter().map(|s| s.0.to_vec()).collect(),
        }
    }
}

impl From<TreeProof> for proto::StateProof {
    fn from(proof: TreeProof) -> Self {
        proto::StateProof::from(&proof)
    }
}

/// Verifies a state read from the network: that `key` holds `value`
/// (`Some`), or that `key` is absent (`None`), in the state whose root is
/// `root`. A malformed proof is [`StateProofError::Malformed`]; a
/// well-formed one that proves something else is
/// [`StateProofError::Mismatch`].
pub fn verify_value(
    root: &Hash32,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &proto::StateProof,
) -> Result<(), StateProofError> {
    let proof = TreeProof::try_from(proof)?;
    let value_hash = value.map(value_hash);
    proof.verify(root, &key_hash(key), value_hash.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_tags_are_prefix_free_with_all_tags() {
        let all: Vec<&str> = crate::hash::tags::ALL.iter().chain(tags::ALL).copied().collect();
        for a in &all {
            for b in &all {
                if a != b {
                    assert!(!b.starts_with(a), "{a} is a prefix of {b}");
                }
            }
        }
    }

    #[test]
    fn node_hasher_matches_leaf_and_internal_hash() {
        let (a, b) = (key_hash(b"a"), value_hash(b"b"));
        let mut h = StateNodeHasher::new();
        h.update(LEAF_SEPARATOR);
        h.update(a.as_bytes());
        h.update(b.as_bytes());
        assert_eq!(Hash32(h.finalize()), leaf_hash(&a, &b));
        let mut h = StateNodeHasher::default();
        h.update(INTERNAL_SEPARATOR);
        h.update(a.as_bytes());
        h.update(b.as_bytes());
        assert_eq!(Hash32(h.finalize()), internal_hash(&a, &b));
        assert_ne!(leaf_hash(&a, &b), internal_hash(&a, &b));
    }

    #[test]
    fn bits_and_prefixes() {
        let mut h = Hash32::ZERO;
        h.0[0] = 0b1010_0000;
        assert!(bit(&h, 0) && !bit(&h, 1) && bit(&h, 2) && !bit(&h, 3));
        assert!(!bit(&h, 256) && !bit(&h, usize::MAX));
        assert_eq!(common_prefix_bits(&h, &h), 256);
        assert_eq!(common_prefix_bits(&h, &Hash32::ZERO), 0);
        let mut g = h;
        g.0[31] = 1;
        assert_eq!(common_prefix_bits(&h, &g), 255);
    }

    #[test]
    fn key_layout() {
        let id = ZsiId(Hash32([7; 32]));
        let key = identity_key(&id);
        assert_eq!(&key[..3], b"id/");
        assert_eq!(&key[3..], &[7; 32]);
        let key = proof_key(&Hash32([9; 32]));
        assert_eq!(&key[..6], b"proof/");
        assert_eq!(validators_key(), b"validators");
        assert_eq!(params_key(), b"params");
    }
}
