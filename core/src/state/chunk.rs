//! Snapshot chunks: the whole state in pieces, each proven against the root.
//!
//! # Scheme
//!
//! The entries of the state, ordered by key hash, are cut into chunks of
//! `chunk_size` consecutive entries; chunk `i` holds entries
//! `i·chunk_size ..`. A chunk carries its entries (key and value) and
//! `last_entry_proof`, the ordinary [`TreeProof`] of its last entry `e`.
//! `right_siblings` is reserved and must be empty. The empty state has one
//! chunk, index 0, with no entries and no proof.
//!
//! Chunks are verified in order. [`verify_chunk`] takes the previous chunk's
//! [`ChunkSummary`] (none for chunk 0), which keeps that chunk's last leaf
//! `p` and its proof, already checked against the same root. The claim of
//! chunk `i` is: *the entries are exactly the leaves of the tree whose key
//! hash lies in `(p, e]`* (`[0, e]` for chunk 0). It is checked so:
//!
//! 1. entries are within size limits and strictly increasing by key hash,
//!    the first one after `p`;
//! 2. `last_entry_proof` proves `e` with its value; `p`'s proof is
//!    re-checked;
//! 3. let `c` be the first bit where `p` and `e` differ (the depth of the
//!    node where their paths split). Every sibling in `e`'s proof that lies
//!    to the left of `e`'s path below `c`, and every sibling in `p`'s proof to
//!    the right of `p`'s path below `c`, covers a subtree whose keys all lie
//!    in `(p, e)`. Each such sibling must equal the hash of the chunk entries
//!    with that subtree's prefix, hashed as a compact subtree (so these
//!    entries are exactly that subtree's leaves). For chunk 0, all left
//!    siblings of `e` are such subtrees;
//! 4. those subtrees partition `(p, e)` except for the one-leaf subtrees of
//!    `p` and `e` themselves, so every entry but `e` must have been used by
//!    exactly one check: the count must come out at `entries − 1`.
//!
//! A chunk is the last one when every sibling to the right of `e`'s path is
//! the placeholder (no key hash above `e`). Since every step only uses
//! hashes already bound to the root, a peer can neither drop, add, change
//! nor reorder entries, and chunks from different peers combine safely.
//!
//! Cost: two proofs of at most 256 siblings each and one hash per entry and
//! per internal node of the chunk's subtrees; no allocation beyond the
//! entries' hashes (bounded by `MAX_CHUNK_ENTRIES`).

use super::tree::subtree_hash;
use super::{
    EMPTY_ROOT, Malformed, Mismatch, PLACEHOLDER, StateProofError, TREE_DEPTH, TreeLeaf, TreeProof, bit,
    common_prefix_bits, key_hash, value_hash,
};
use crate::hash::Hash32;
use crate::wire::limits::{MAX_CHUNK_ENTRIES, MAX_STATE_KEY, MAX_STATE_VALUE};
use crate::wire::proto;

/// What a verified chunk proved; pass it to [`verify_chunk`] for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSummary {
    root: Hash32,
    height: u64,
    index: u32,
    entries: usize,
    first_key_hash: Option<Hash32>,
    /// The last entry's leaf and its verified proof (`None` for the empty state).
    last: Option<(TreeLeaf, TreeProof)>,
    is_last: bool,
}

impl ChunkSummary {
    /// The root the chunk was verified against.
    pub fn root(&self) -> &Hash32 {
        &self.root
    }

    /// The chunk's height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The chunk's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Number of entries in the chunk.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Key hash of the first entry.
    pub fn first_key_hash(&self) -> Option<&Hash32> {
        self.first_key_hash.as_ref()
    }

    /// Key hash of the last entry: every key hash up to it is now covered.
    pub fn last_key_hash(&self) -> Option<&Hash32> {
        self.last.as_ref().map(|(leaf, _)| &leaf.key_hash)
    }

    /// True when no key hash lies after this chunk: the snapshot is complete.
    pub fn is_last(&self) -> bool {
        self.is_last
    }
}

/// The hash a [`proto::SnapshotManifest`] lists for a chunk:
/// `BLAKE3("tiernet/snapshot-chunk/v1" ‖ encoding of the chunk)`.
pub fn chunk_hash(chunk: &proto::SnapshotChunk) -> Hash32 {
    use prost::Message as _;
    crate::hash::tagged_hash(crate::hash::tags::SNAPSHOT_CHUNK, &[&chunk.encode_to_vec()])
}

/// Verifies snapshot chunk `chunk` against `root`, following `previous`
/// (the summary of chunk `index − 1`, or `None` for chunk 0). On success the
/// chunk's entries are exactly the state's entries between the previous
/// chunk's last key hash (exclusive) and this chunk's last key hash
/// (inclusive). See the [module docs](self) for the scheme.
pub fn verify_chunk(
    root: &Hash32,
    chunk: &proto::SnapshotChunk,
    previous: Option<&ChunkSummary>,
) -> Result<ChunkSummary, StateProofError> {
    let prev_last = check_sequence(root, chunk, previous)?;
    let leaves = parse_entries(chunk)?;

    let Some(&(last_kh, last_vh)) = leaves.last() else {
        if chunk.last_entry_proof.is_some() {
            return Err(Malformed::UnexpectedLastEntryProof.into());
        }
        if previous.is_some() || *root != EMPTY_ROOT {
            return Err(StateProofError::Mismatch {
                root: *root,
                reason: Mismatch::EmptyChunk,
            });
        }
        return Ok(ChunkSummary {
            root: *root,
            height: chunk.height,
            index: chunk.index,
            entries: 0,
            first_key_hash: None,
            last: None,
            is_last: true,
        });
    };
    if let (Some((p, _)), Some((first, _))) = (prev_last, leaves.first())
        && first <= &p.key_hash
    {
        return Err(Malformed::EntriesOutOfOrder { index: 0 }.into());
    }

    let proof = TreeProof::try_from(
        chunk
            .last_entry_proof
            .as_ref()
            .ok_or(Malformed::MissingLastEntryProof)?,
    )?;
    proof.verify(root, &last_kh, Some(&last_vh))?;

    let inner = &leaves[..leaves.len() - 1];
    let mut covered = 0usize;
    match prev_last {
        None => covered += check_inside(root, &proof, &last_kh, true, None, inner)?,
        Some((p, p_proof)) => {
            p_proof.verify(root, &p.key_hash, Some(&p.value_hash))?;
            // p < e, so they differ at bit `split` < 256: p goes left there, e right.
            let split = common_prefix_bits(&p.key_hash, &last_kh);
            if proof.siblings().len() <= split || p_proof.siblings().len() <= split {
                return Err(StateProofError::Mismatch {
                    root: *root,
                    reason: Mismatch::BoundaryAboveSplit { split },
                });
            }
            covered += check_inside(root, &proof, &last_kh, true, Some(split), inner)?;
            covered += check_inside(root, p_proof, &p.key_hash, false, Some(split), inner)?;
        }
    }
    if covered != inner.len() {
        return Err(StateProofError::Mismatch {
            root: *root,
            reason: Mismatch::ChunkEntriesNotCovered {
                count: inner.len().saturating_sub(covered),
            },
        });
    }

    let depth = proof.siblings().len();
    let is_last = proof
        .siblings()
        .iter()
        .enumerate()
        .all(|(j, sibling)| bit(&last_kh, depth - j - 1) || *sibling == PLACEHOLDER);
    Ok(ChunkSummary {
        root: *root,
        height: chunk.height,
        index: chunk.index,
        entries: leaves.len(),
        first_key_hash: leaves.first().map(|(k, _)| *k),
        last: Some((
            TreeLeaf {
                key_hash: last_kh,
                value_hash: last_vh,
            },
            proof,
        )),
        is_last,
    })
}

/// Checks that `chunk` follows `previous`; returns the previous last leaf.
fn check_sequence<'a>(
    root: &Hash32,
    chunk: &proto::SnapshotChunk,
    previous: Option<&'a ChunkSummary>,
) -> Result<Option<(&'a TreeLeaf, &'a TreeProof)>, StateProofError> {
    let Some(prev) = previous else {
        if chunk.index != 0 {
            return Err(StateProofError::OutOfSequence(format!(
                "chunk {} given without the previous chunk's summary",
                chunk.index
            )));
        }
        return Ok(None);
    };
    let problem = if prev.root != *root {
        Some(format!(
            "previous chunk was verified against root {}, not {root}",
            prev.root
        ))
    } else if prev.height != chunk.height {
        Some(format!(
            "previous chunk is at height {}, this one at {}",
            prev.height, chunk.height
        ))
    } else if prev.index.checked_add(1) != Some(chunk.index) {
        Some(format!("chunk {} does not follow chunk {}", chunk.index, prev.index))
    } else if prev.is_last {
        Some(format!("chunk {} was the last one", prev.index))
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(StateProofError::OutOfSequence(problem));
    }
    // A non-last summary always has a last leaf.
    Ok(prev.last.as_ref().map(|(leaf, proof)| (leaf, proof)))
}

/// Size checks, then (key hash, value hash) per entry in strictly increasing order.
fn parse_entries(chunk: &proto::SnapshotChunk) -> Result<Vec<(Hash32, Hash32)>, Malformed> {
    if chunk.entries.len() > MAX_CHUNK_ENTRIES {
        return Err(Malformed::TooManyEntries {
            count: chunk.entries.len(),
            max: MAX_CHUNK_ENTRIES,
        });
    }
    if !chunk.right_siblings.is_empty() {
        return Err(Malformed::RightSiblingsNotEmpty {
            count: chunk.right_siblings.len(),
        });
    }
    let mut leaves: Vec<(Hash32, Hash32)> = Vec::with_capacity(chunk.entries.len());
    for (index, entry) in chunk.entries.iter().enumerate() {
        for (field, len, max) in [
            ("key", entry.key.len(), MAX_STATE_KEY),
            ("value", entry.value.len(), MAX_STATE_VALUE),
        ] {
            if len > max {
                return Err(Malformed::EntryTooLong { index, field, len, max });
            }
        }
        let kh = key_hash(&entry.key);
        if leaves.last().is_some_and(|(prev, _)| *prev >= kh) {
            return Err(Malformed::EntriesOutOfOrder { index });
        }
        leaves.push((kh, value_hash(&entry.value)));
    }
    Ok(leaves)
}

/// For every sibling of `proof` (along `key_hash`) on side `left` (siblings
/// left of the path when `true`, right when `false`) strictly below bit
/// `split`, checks it against the compact hash of the `inner` entries with
/// that sibling's prefix. Returns how many entries were used.
fn check_inside(
    root: &Hash32,
    proof: &TreeProof,
    key_hash: &Hash32,
    left: bool,
    split: Option<usize>,
    inner: &[(Hash32, Hash32)],
) -> Result<usize, StateProofError> {
    let depth = proof.siblings().len();
    let mut used = 0usize;
    for (j, sibling) in proof.siblings().iter().enumerate() {
        // The sibling's subtree root is at depth `d`; it is chosen by bit `d - 1`.
        let d = depth - j;
        let bit_index = d - 1;
        // The path goes right (bit 1) exactly when the sibling is on the left.
        if bit(key_hash, bit_index) != left || split.is_some_and(|c| bit_index <= c) {
            continue;
        }
        let (lo, hi) = prefix_bounds(key_hash, bit_index);
        let start = inner.partition_point(|(k, _)| *k < lo);
        let end = inner.partition_point(|(k, _)| *k <= hi);
        let members = inner.get(start..end).unwrap_or(&[]);
        if subtree_hash(members, d) != *sibling {
            return Err(StateProofError::Mismatch {
                root: *root,
                reason: Mismatch::ChunkSiblingDiffers { depth: d },
            });
        }
        used += members.len();
    }
    Ok(used)
}

/// Lowest and highest key hash of the sibling subtree at bit `bit_index`:
/// `key_hash`'s first `bit_index` bits, the flipped bit, then all zeros / all ones.
fn prefix_bounds(key_hash: &Hash32, bit_index: usize) -> (Hash32, Hash32) {
    let mut lo = *key_hash;
    let mut hi = *key_hash;
    let flipped = !bit(key_hash, bit_index);
    for i in bit_index..TREE_DEPTH {
        let (byte, mask) = (i / 8, 0x80u8 >> (i % 8));
        if let (Some(l), Some(h)) = (lo.0.get_mut(byte), hi.0.get_mut(byte)) {
            if i == bit_index {
                if flipped {
                    *l |= mask;
                    *h |= mask;
                } else {
                    *l &= !mask;
                    *h &= !mask;
                }
            } else {
                *l &= !mask;
                *h |= mask;
            }
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_flip_and_fill() {
        let mut k = Hash32::ZERO;
        k.0[0] = 0b1010_0000;
        let (lo, hi) = prefix_bounds(&k, 1);
        assert_eq!(lo.0[0], 0b1100_0000);
        assert_eq!(hi.0[0], 0b1111_1111);
        assert_eq!(lo.0[1..], [0; 31]);
        assert_eq!(hi.0[1..], [0xff; 31]);
        let (lo, hi) = prefix_bounds(&k, 255);
        assert_eq!(lo.0[31], 1);
        assert_eq!(hi.0[31], 1);
        assert_eq!(lo.0[0], k.0[0]);
    }
}
