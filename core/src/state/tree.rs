//! An in-memory state tree: the reference implementation of the scheme in
//! [`super`], for tests, simulations and small states. Roots and proofs are
//! computed from the sorted leaves on demand (O(n) per call); the node's
//! persistent tree is `jmt` (`tiernet-node`'s `state_store`).

use std::collections::BTreeMap;

use super::{PLACEHOLDER, TREE_DEPTH, TreeLeaf, TreeProof, bit, internal_hash, key_hash, leaf_hash, value_hash};
use crate::hash::Hash32;
use crate::wire::limits::MAX_CHUNK_ENTRIES;
use crate::wire::proto;

/// The hash of the subtree at `depth` holding exactly `leaves` (sorted by key
/// hash, distinct, all sharing their first `depth` bits): placeholder when
/// empty, the leaf when alone, else an internal node over the two halves.
pub(crate) fn subtree_hash(leaves: &[(Hash32, Hash32)], depth: usize) -> Hash32 {
    match leaves {
        [] => PLACEHOLDER,
        [(k, v)] => leaf_hash(k, v),
        // Distinct key hashes differ before bit 256; stop defensively anyway.
        _ if depth >= TREE_DEPTH => PLACEHOLDER,
        _ => {
            let split = leaves.partition_point(|(k, _)| !bit(k, depth));
            let (left, right) = leaves.split_at(split);
            internal_hash(&subtree_hash(left, depth + 1), &subtree_hash(right, depth + 1))
        }
    }
}

/// The canonical proof for `key_hash` among `leaves` (sorted, distinct).
pub(crate) fn prove_in(leaves: &[(Hash32, Hash32)], key_hash: &Hash32) -> TreeProof {
    let mut slice = leaves;
    let mut depth = 0;
    let mut siblings = Vec::new();
    let leaf = loop {
        match slice {
            [] => break None,
            [(k, v)] => {
                break Some(TreeLeaf {
                    key_hash: *k,
                    value_hash: *v,
                });
            }
            _ if depth >= TREE_DEPTH => break None,
            _ => {
                let split = slice.partition_point(|(k, _)| !bit(k, depth));
                let (left, right) = slice.split_at(split);
                if bit(key_hash, depth) {
                    siblings.push(subtree_hash(left, depth + 1));
                    slice = right;
                } else {
                    siblings.push(subtree_hash(right, depth + 1));
                    slice = left;
                }
                depth += 1;
            }
        }
    };
    siblings.reverse();
    TreeProof { leaf, siblings }
}

/// An in-memory key-value state with the same root and proofs as the node's
/// persistent tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    /// key hash → (key, value)
    entries: BTreeMap<Hash32, (Vec<u8>, Vec<u8>)>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`; returns the old value.
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        self.entries.insert(key_hash(&key), (key, value)).map(|(_, old)| old)
    }

    /// Removes `key`; returns the old value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.remove(&key_hash(key)).map(|(_, old)| old)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(&key_hash(key)).map(|(_, v)| v.as_slice())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (key, value) pairs in key-hash order (the order of snapshot chunks).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.values().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    fn leaves(&self) -> Vec<(Hash32, Hash32)> {
        self.entries.iter().map(|(kh, (_, v))| (*kh, value_hash(v))).collect()
    }

    /// The root ([`super::EMPTY_ROOT`] when empty).
    pub fn root(&self) -> Hash32 {
        subtree_hash(&self.leaves(), 0)
    }

    /// The proof of `key`'s value, or of its absence.
    pub fn prove(&self, key: &[u8]) -> TreeProof {
        prove_in(&self.leaves(), &key_hash(key))
    }

    /// Number of chunks of `chunk_size` entries (1 for the empty tree, whose
    /// one chunk is empty); 0 if `chunk_size` is 0.
    pub fn chunk_count(&self, chunk_size: usize) -> usize {
        match chunk_size {
            0 => 0,
            size => self.entries.len().div_ceil(size).max(1),
        }
    }

    /// Snapshot chunk `index` at `height`: entries `index·chunk_size ..` in
    /// key-hash order with the proof of the last one (see [`super::chunk`]).
    /// `None` if `chunk_size` is 0 or above `MAX_CHUNK_ENTRIES`, or `index`
    /// is past the end.
    pub fn chunk(&self, height: u64, index: u32, chunk_size: usize) -> Option<proto::SnapshotChunk> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_ENTRIES {
            return None;
        }
        let start = usize::try_from(index).ok()?.checked_mul(chunk_size)?;
        if index as usize >= self.chunk_count(chunk_size) {
            return None;
        }
        let entries: Vec<proto::StateEntry> = self
            .entries
            .values()
            .skip(start)
            .take(chunk_size)
            .map(|(k, v)| proto::StateEntry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let last_entry_proof = entries
            .last()
            .map(|last| proto::StateProof::from(&self.prove(&last.key)));
        Some(proto::SnapshotChunk {
            height,
            index,
            entries,
            last_entry_proof,
            right_siblings: Vec::new(),
        })
    }
}
