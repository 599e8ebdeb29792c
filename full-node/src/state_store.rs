//! The chain state tree, persisted in the node's store.
//!
//! A Jellyfish Merkle Tree (`jmt` 0.12) over redb tables, with one tree
//! version per block height. Its root at a height is that height's
//! `Header.state_root`. The hashing scheme (BLAKE3 with tiernet's domain
//! tags) and the proof format are defined and verified in
//! [`tiernet_core::state`]; this module only stores nodes and answers
//! queries, and its tests check that what it serves verifies there.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `state_nodes` | borsh(`jmt` NodeKey) (version + nibble path) | borsh(`jmt` Node) |
//! | `state_values` | key hash ‖ height (u64 big-endian) | `0x00` (deleted) or `0x01` ‖ value |
//! | `state_keys` | key hash | the key (preimage, for snapshot chunks) |
//! | `state_roots` | height | root (32 bytes) |
//! | `state_stale` | stale-since height (u64 BE) ‖ borsh(NodeKey) | empty |
//!
//! # Heights and durability
//!
//! [`StateStore::apply`] writes one height in one redb write transaction
//! (durable on return, see [`crate::store`]); heights are consecutive after
//! the first one applied, which may be any height (the state before it is
//! taken as empty). Reads go through a read transaction and see whole
//! heights only.
//!
//! # Pruning
//!
//! Every height stays readable: nothing is deleted. `jmt` reports which
//! nodes a height makes stale, and they are recorded in `state_stale`, so a
//! later pruning policy ("keep the last N heights and snapshot heights") can
//! delete nodes stale since ≤ h − N with a range scan, plus `state_values`
//! rows superseded before that height and the `state_roots` rows below it.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Arc;

use borsh::BorshDeserialize;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleIterator, JellyfishMerkleTree, KeyHash, OwnedValue, SimpleHasher, Version};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use tiernet_core::hash::Hash32;
use tiernet_core::state::{StateNodeHasher, TreeLeaf, TreeProof, internal_hash, key_hash, leaf_hash, value_hash};
use tiernet_core::wire::limits::{MAX_CHUNK_ENTRIES, MAX_STATE_KEY, MAX_STATE_VALUE};
use tiernet_core::wire::proto;

use crate::store::{Store, StoreError};

const NODES_TABLE: &str = "state_nodes";
const VALUES_TABLE: &str = "state_values";
const KEYS_TABLE: &str = "state_keys";
const ROOTS_TABLE: &str = "state_roots";
const STALE_TABLE: &str = "state_stale";

/// Tree nodes: borsh(NodeKey) → borsh(Node).
pub(crate) const STATE_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(NODES_TABLE);
/// Values by key hash and height: key hash ‖ height BE → `0x00` | `0x01` ‖ value.
pub(crate) const STATE_VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(VALUES_TABLE);
/// Key preimages: key hash → key.
pub(crate) const STATE_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(KEYS_TABLE);
/// Roots: height → root.
pub(crate) const STATE_ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new(ROOTS_TABLE);
/// Stale node index for pruning: stale-since height BE ‖ borsh(NodeKey) → empty.
pub(crate) const STATE_STALE: TableDefinition<&[u8], &[u8]> = TableDefinition::new(STALE_TABLE);

/// Most changes one height may apply (a block's state delta).
pub const MAX_CHANGES_PER_HEIGHT: usize = 1 << 16;

const DELETED: u8 = 0;
const PRESENT: u8 = 1;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// The underlying store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Merkle tree failed (a missing or undecodable node, usually a store error below).
    #[error("state store {path}: {op} at height {height} failed in the Merkle tree: {source}")]
    Tree {
        /// The database file.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The height asked for.
        height: u64,
        /// What `jmt` said.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// `apply` was given a height that does not follow the latest one.
    #[error("state store: cannot apply height {height}: the next height is {expected}")]
    NotNext {
        /// The height given.
        height: u64,
        /// The height that must come next.
        expected: u64,
    },
    /// No state was applied at this height.
    #[error("state store: no state at height {height} (latest: {latest:?})")]
    UnknownHeight {
        /// The height asked for.
        height: u64,
        /// The latest applied height, if any.
        latest: Option<u64>,
    },
    /// An input is over its limit.
    #[error("state store: {what} is {len}, at most {max}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A chunk size outside `1..=MAX_CHUNK_ENTRIES`.
    #[error("state store: chunk size {size} is not in 1..={max}")]
    ChunkSize {
        /// The size asked for.
        size: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A chunk index past the end of the state.
    #[error("state store: height {height} has {chunks} chunk(s) of {chunk_size} entries; there is no chunk {index}")]
    NoSuchChunk {
        /// The height.
        height: u64,
        /// The index asked for.
        index: u32,
        /// The chunk size.
        chunk_size: usize,
        /// How many chunks there are.
        chunks: usize,
    },
    /// A record that does not decode, or a missing record the tree refers to.
    #[error("state store {path}: table `{table}` is corrupt: {what}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A tree node could not be encoded.
    #[error("state store {path}: cannot encode a record for table `{table}`: {source}")]
    Encode {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// What borsh said.
        source: std::io::Error,
    },
}

/// `jmt`'s hasher with tiernet's scheme: nodes under `tiernet/state-node/v1`,
/// values (`SimpleHasher::hash`) under `tiernet/state-value/v1`. Keys are
/// hashed by us ([`key_hash`]) before they reach `jmt`.
pub struct TreeHasher(StateNodeHasher);

impl SimpleHasher for TreeHasher {
    fn new() -> Self {
        TreeHasher(StateNodeHasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        self.0.finalize()
    }

    fn hash(data: impl AsRef<[u8]>) -> [u8; 32] {
        value_hash(data.as_ref()).0
    }
}

type Tree<'a, R> = JellyfishMerkleTree<'a, R, TreeHasher>;
type BytesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// Every (key, value) of a state, as [`StateStore::entries`] returns it.
pub type StateEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// The persistent state tree. Cheap to clone (shares the store).
#[derive(Clone, Debug)]
pub struct StateStore {
    store: Store,
}

impl StateStore {
    /// Opens the state tree in `store`, creating its tables.
    pub fn open(store: Store) -> Result<StateStore, StateStoreError> {
        const OP: &str = "open";
        let db = store.database();
        let txn = db.begin_write().map_err(|e| store.error(OP, NODES_TABLE, e))?;
        txn.open_table(STATE_NODES)
            .map_err(|e| store.error(OP, NODES_TABLE, e))?;
        txn.open_table(STATE_VALUES)
            .map_err(|e| store.error(OP, VALUES_TABLE, e))?;
        txn.open_table(STATE_KEYS).map_err(|e| store.error(OP, KEYS_TABLE, e))?;
        txn.open_table(STATE_ROOTS)
            .map_err(|e| store.error(OP, ROOTS_TABLE, e))?;
        txn.open_table(STATE_STALE)
            .map_err(|e| store.error(OP, STALE_TABLE, e))?;
        txn.commit().map_err(|e| store.error(OP, NODES_TABLE, e))?;
        Ok(StateStore { store })
    }

    /// The latest applied height and its root.
    pub fn latest(&self) -> Result<Option<(u64, Hash32)>, StateStoreError> {
        const OP: &str = "latest";
        let txn = self.begin_read(OP)?;
        let roots = self.open_roots(&txn, OP)?;
        let last = roots.last().map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?;
        last.map(|(h, root)| Ok((h.value(), self.decode_root(root.value())?)))
            .transpose()
    }

    /// The root at `height`, `None` if that height was not applied.
    pub fn root_at(&self, height: u64) -> Result<Option<Hash32>, StateStoreError> {
        const OP: &str = "root_at";
        let txn = self.begin_read(OP)?;
        let roots = self.open_roots(&txn, OP)?;
        let root = roots.get(height).map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?;
        root.map(|r| self.decode_root(r.value())).transpose()
    }

    /// Applies `changes` (`None` deletes; a later change of the same key
    /// wins) on top of the latest height, as `height`, in one durable write
    /// transaction. Returns the new root. `height` must be the latest + 1;
    /// the first height applied may be any.
    pub fn apply(&self, height: u64, changes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<Hash32, StateStoreError> {
        const OP: &str = "apply";
        if changes.len() > MAX_CHANGES_PER_HEIGHT {
            return Err(StateStoreError::TooLarge {
                what: format!("the change set of height {height}"),
                len: changes.len(),
                max: MAX_CHANGES_PER_HEIGHT,
            });
        }
        let mut set: BTreeMap<KeyHash, (&[u8], Option<&Vec<u8>>)> = BTreeMap::new();
        for (i, (key, value)) in changes.iter().enumerate() {
            check_len(|| format!("key of change {i}"), key.len(), MAX_STATE_KEY)?;
            if let Some(value) = value {
                check_len(|| format!("value of change {i}"), value.len(), MAX_STATE_VALUE)?;
            }
            set.insert(KeyHash(key_hash(key).0), (key.as_slice(), value.as_ref()));
        }

        let db = self.store.database();
        let txn = db.begin_write().map_err(|e| self.store.error(OP, NODES_TABLE, e))?;
        let mut roots = txn
            .open_table(STATE_ROOTS)
            .map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?;
        let latest = roots
            .last()
            .map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?
            .map(|(h, _)| h.value());
        let empty_base = match latest {
            Some(latest) => {
                let expected = latest.saturating_add(1);
                if height != expected {
                    return Err(StateStoreError::NotNext { height, expected });
                }
                None
            }
            // The first height: the tree before it is empty.
            None => height.checked_sub(1),
        };

        let mut nodes = txn
            .open_table(STATE_NODES)
            .map_err(|e| self.store.error(OP, NODES_TABLE, e))?;
        let mut values = txn
            .open_table(STATE_VALUES)
            .map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
        let (root, batch) = {
            let reader = Reader {
                store: &self.store,
                nodes: Some(&nodes),
                values: Some(&values),
                empty_base,
            };
            let value_set = set.iter().map(|(kh, (_, v))| (*kh, v.cloned()));
            Tree::new(&reader)
                .put_value_set(value_set, height)
                .map_err(|e| self.tree_error(OP, height, e))?
        };

        self.write_batch(&batch, &mut nodes, &mut values)?;
        let mut stale = txn
            .open_table(STATE_STALE)
            .map_err(|e| self.store.error(OP, STALE_TABLE, e))?;
        for index in &batch.stale_node_index_batch {
            let mut key = index.stale_since_version.to_be_bytes().to_vec();
            key.extend(self.encode(STALE_TABLE, &index.node_key)?);
            stale
                .insert(key.as_slice(), &[][..])
                .map_err(|e| self.store.error(OP, STALE_TABLE, e))?;
        }
        let mut keys = txn
            .open_table(STATE_KEYS)
            .map_err(|e| self.store.error(OP, KEYS_TABLE, e))?;
        for (kh, (key, value)) in &set {
            if value.is_some() {
                keys.insert(&kh.0[..], *key)
                    .map_err(|e| self.store.error(OP, KEYS_TABLE, e))?;
            }
        }
        roots
            .insert(height, &root.0[..])
            .map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?;
        drop((roots, nodes, values, stale, keys));
        txn.commit().map_err(|e| self.store.error(OP, ROOTS_TABLE, e))?;
        Ok(Hash32(root.0))
    }

    /// The value of `key` at `height`.
    pub fn get(&self, key: &[u8], height: u64) -> Result<Option<Vec<u8>>, StateStoreError> {
        const OP: &str = "get";
        let txn = self.begin_read(OP)?;
        self.require_height(&txn, height, OP)?;
        let values = self.open_optional(&txn, STATE_VALUES, VALUES_TABLE, OP)?;
        let reader = Reader {
            store: &self.store,
            nodes: None,
            values: values.as_ref(),
            empty_base: None,
        };
        reader
            .value_at(height, &KeyHash(key_hash(key).0))
            .map_err(|e| self.tree_error(OP, height, e))
    }

    /// The value of `key` at `height` with its proof against
    /// [`root_at`](Self::root_at)`(height)`; verify it with
    /// [`tiernet_core::state::verify_value`].
    pub fn get_with_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, proto::StateProof), StateStoreError> {
        const OP: &str = "get_with_proof";
        let txn = self.begin_read(OP)?;
        self.require_height(&txn, height, OP)?;
        let nodes = self.open_optional(&txn, STATE_NODES, NODES_TABLE, OP)?;
        let values = self.open_optional(&txn, STATE_VALUES, VALUES_TABLE, OP)?;
        let reader = Reader {
            store: &self.store,
            nodes: nodes.as_ref(),
            values: values.as_ref(),
            empty_base: None,
        };
        let (value, proof) = Tree::new(&reader)
            .get_with_proof(KeyHash(key_hash(key).0), height)
            .map_err(|e| self.tree_error(OP, height, e))?;
        let proof = self.convert_proof(&proof)?;
        Ok((value, proto::StateProof::from(&proof)))
    }

    /// Snapshot chunk `index` of the state at `height`: `chunk_size`
    /// consecutive entries in key-hash order and the proof of the last one
    /// (the scheme of [`tiernet_core::state::verify_chunk`]). The empty
    /// state has one empty chunk.
    pub fn chunk(&self, height: u64, index: u32, chunk_size: usize) -> Result<proto::SnapshotChunk, StateStoreError> {
        const OP: &str = "chunk";
        if chunk_size == 0 || chunk_size > MAX_CHUNK_ENTRIES {
            return Err(StateStoreError::ChunkSize {
                size: chunk_size,
                max: MAX_CHUNK_ENTRIES,
            });
        }
        let txn = self.begin_read(OP)?;
        self.require_height(&txn, height, OP)?;
        let nodes = self.open_optional(&txn, STATE_NODES, NODES_TABLE, OP)?;
        let values = self.open_optional(&txn, STATE_VALUES, VALUES_TABLE, OP)?;
        let keys = self.open_optional(&txn, STATE_KEYS, KEYS_TABLE, OP)?;
        let reader = Arc::new(Reader {
            store: &self.store,
            nodes: nodes.as_ref(),
            values: values.as_ref(),
            empty_base: None,
        });
        let leaves = Tree::new(&*reader)
            .get_leaf_count(height)
            .map_err(|e| self.tree_error(OP, height, e))?;
        let chunks = leaves.div_ceil(chunk_size).max(1);
        let start = (index as usize).saturating_mul(chunk_size);
        if index as usize >= chunks {
            return Err(StateStoreError::NoSuchChunk {
                height,
                index,
                chunk_size,
                chunks,
            });
        }
        let mut entries = Vec::with_capacity(chunk_size.min(leaves));
        let mut last_key_hash = None;
        if leaves > 0 {
            let iter = JellyfishMerkleIterator::new_by_index(Arc::clone(&reader), height, start)
                .map_err(|e| self.tree_error(OP, height, e))?;
            for item in iter.take(chunk_size) {
                let (kh, value) = item.map_err(|e| self.tree_error(OP, height, e))?;
                let key = match &keys {
                    Some(keys) => keys
                        .get(&kh.0[..])
                        .map_err(|e| self.store.error(OP, KEYS_TABLE, e))?
                        .map(|k| k.value().to_vec()),
                    None => None,
                };
                let key = key.ok_or_else(|| self.corrupt(KEYS_TABLE, format!("no key for key hash {:?}", kh)))?;
                entries.push(proto::StateEntry { key, value });
                last_key_hash = Some(kh);
            }
        }
        let last_entry_proof = match last_key_hash {
            Some(kh) => {
                let (_, proof) = Tree::new(&*reader)
                    .get_with_proof(kh, height)
                    .map_err(|e| self.tree_error(OP, height, e))?;
                Some(proto::StateProof::from(&self.convert_proof(&proof)?))
            }
            None => None,
        };
        Ok(proto::SnapshotChunk {
            height,
            index,
            entries,
            last_entry_proof,
            right_siblings: Vec::new(),
        })
    }

    /// Every entry of the state at `height` (key, value), in key-hash order:
    /// what a restarting node loads its ledger from instead of replaying
    /// every block (issue 16). Costs the size of the state, not of the chain.
    pub fn entries(&self, height: u64) -> Result<StateEntries, StateStoreError> {
        const OP: &str = "entries";
        let txn = self.begin_read(OP)?;
        self.require_height(&txn, height, OP)?;
        let nodes = self.open_optional(&txn, STATE_NODES, NODES_TABLE, OP)?;
        let values = self.open_optional(&txn, STATE_VALUES, VALUES_TABLE, OP)?;
        let keys = self.open_optional(&txn, STATE_KEYS, KEYS_TABLE, OP)?;
        let reader = Arc::new(Reader {
            store: &self.store,
            nodes: nodes.as_ref(),
            values: values.as_ref(),
            empty_base: None,
        });
        let leaves = Tree::new(&*reader)
            .get_leaf_count(height)
            .map_err(|e| self.tree_error(OP, height, e))?;
        let mut entries = Vec::with_capacity(leaves);
        if leaves == 0 {
            return Ok(entries);
        }
        let iter = JellyfishMerkleIterator::new_by_index(Arc::clone(&reader), height, 0)
            .map_err(|e| self.tree_error(OP, height, e))?;
        for item in iter {
            let (kh, value) = item.map_err(|e| self.tree_error(OP, height, e))?;
            let key = match &keys {
                Some(keys) => keys
                    .get(&kh.0[..])
                    .map_err(|e| self.store.error(OP, KEYS_TABLE, e))?
                    .map(|k| k.value().to_vec()),
                None => None,
            };
            let key = key.ok_or_else(|| self.corrupt(KEYS_TABLE, format!("no key for key hash {:?}", kh)))?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    /// The heights at which `key` was written, up to `to_height`, ascending
    /// (at most `limit`, the latest ones): one range scan of its value rows,
    /// no tree walk. The ledger writes the validator set only when it
    /// changes, so for that key these are the set-change heights.
    pub fn written_at(&self, key: &[u8], to_height: u64, limit: usize) -> Result<Vec<u64>, StateStoreError> {
        const OP: &str = "written_at";
        let txn = self.begin_read(OP)?;
        let Some(values) = self.open_optional(&txn, STATE_VALUES, VALUES_TABLE, OP)? else {
            return Ok(Vec::new());
        };
        let kh = KeyHash(key_hash(key).0);
        let (lo, hi) = (value_key(&kh, 0), value_key(&kh, to_height));
        let mut heights = Vec::new();
        let range = values
            .range(&lo[..]..=&hi[..])
            .map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
        for entry in range.rev().take(limit) {
            let (k, _) = entry.map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
            let tail = k.value().get(32..).and_then(|t| <[u8; 8]>::try_from(t).ok());
            let height = tail.ok_or_else(|| self.corrupt(VALUES_TABLE, "a value row key is not 40 bytes".into()))?;
            heights.push(u64::from_be_bytes(height));
        }
        heights.reverse();
        Ok(heights)
    }

    // ─────────────────────────── helpers ───────────────────────────

    fn begin_read(&self, op: &'static str) -> Result<redb::ReadTransaction, StateStoreError> {
        Ok(self
            .store
            .database()
            .begin_read()
            .map_err(|e| self.store.error(op, ROOTS_TABLE, e))?)
    }

    fn open_roots(
        &self,
        txn: &redb::ReadTransaction,
        op: &'static str,
    ) -> Result<redb::ReadOnlyTable<u64, &'static [u8]>, StateStoreError> {
        Ok(txn
            .open_table(STATE_ROOTS)
            .map_err(|e| self.store.error(op, ROOTS_TABLE, e))?)
    }

    fn open_optional(
        &self,
        txn: &redb::ReadTransaction,
        def: TableDefinition<&'static [u8], &'static [u8]>,
        name: &'static str,
        op: &'static str,
    ) -> Result<Option<BytesTable>, StateStoreError> {
        match txn.open_table(def) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.store.error(op, name, e).into()),
        }
    }

    fn require_height(
        &self,
        txn: &redb::ReadTransaction,
        height: u64,
        op: &'static str,
    ) -> Result<(), StateStoreError> {
        let roots = self.open_roots(txn, op)?;
        if roots
            .get(height)
            .map_err(|e| self.store.error(op, ROOTS_TABLE, e))?
            .is_some()
        {
            return Ok(());
        }
        let latest = roots
            .last()
            .map_err(|e| self.store.error(op, ROOTS_TABLE, e))?
            .map(|(h, _)| h.value());
        Err(StateStoreError::UnknownHeight { height, latest })
    }

    fn decode_root(&self, bytes: &[u8]) -> Result<Hash32, StateStoreError> {
        Hash32::from_slice(bytes).ok_or_else(|| self.corrupt(ROOTS_TABLE, format!("a root of {} bytes", bytes.len())))
    }

    fn write_batch(
        &self,
        batch: &TreeUpdateBatch,
        nodes: &mut redb::Table<&'static [u8], &'static [u8]>,
        values: &mut redb::Table<&'static [u8], &'static [u8]>,
    ) -> Result<(), StateStoreError> {
        const OP: &str = "apply";
        for (key, node) in batch.node_batch.nodes() {
            let key = self.encode(NODES_TABLE, key)?;
            let node = self.encode(NODES_TABLE, node)?;
            nodes
                .insert(key.as_slice(), node.as_slice())
                .map_err(|e| self.store.error(OP, NODES_TABLE, e))?;
        }
        for ((version, kh), value) in batch.node_batch.values() {
            let record = match value {
                Some(value) => {
                    let mut record = Vec::with_capacity(1 + value.len());
                    record.push(PRESENT);
                    record.extend_from_slice(value);
                    record
                }
                None => vec![DELETED],
            };
            values
                .insert(&value_key(kh, *version)[..], record.as_slice())
                .map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
        }
        Ok(())
    }

    fn encode(&self, table: &'static str, item: &impl borsh::BorshSerialize) -> Result<Vec<u8>, StateStoreError> {
        borsh::to_vec(item).map_err(|source| StateStoreError::Encode {
            path: self.store.path().to_path_buf(),
            table,
            source,
        })
    }

    fn corrupt(&self, table: &'static str, what: String) -> StateStoreError {
        StateStoreError::Corrupt {
            path: self.store.path().to_path_buf(),
            table,
            what,
        }
    }

    fn tree_error(&self, op: &'static str, height: u64, source: anyhow::Error) -> StateStoreError {
        StateStoreError::Tree {
            path: self.store.path().to_path_buf(),
            op,
            height,
            source: source.into(),
        }
    }

    /// `jmt`'s proof → core's [`TreeProof`]. `jmt` keeps the siblings
    /// private but serializes them (borsh) as typed nodes; they are hashed
    /// here into the 32-byte siblings of the wire format.
    fn convert_proof(&self, proof: &jmt::proof::SparseMerkleProof<TreeHasher>) -> Result<TreeProof, StateStoreError> {
        let bytes = self.encode(NODES_TABLE, proof)?;
        let mirror = MirrorProof::try_from_slice(&bytes)
            .map_err(|e| self.corrupt(NODES_TABLE, format!("a jmt proof that does not decode: {e}")))?;
        let leaf = mirror.leaf.map(MirrorLeaf::into_leaf);
        let siblings = mirror
            .siblings
            .iter()
            .map(|node| match node {
                MirrorNode::Null => tiernet_core::state::PLACEHOLDER,
                MirrorNode::Internal { left, right } => internal_hash(&Hash32(*left), &Hash32(*right)),
                MirrorNode::Leaf(leaf) => leaf_hash(&Hash32(leaf.key_hash), &Hash32(leaf.value_hash)),
            })
            .collect();
        TreeProof::new(leaf, siblings)
            .map_err(|e| self.corrupt(NODES_TABLE, format!("a jmt proof that is malformed: {e}")))
    }
}

fn check_len(what: impl FnOnce() -> String, len: usize, max: usize) -> Result<(), StateStoreError> {
    if len > max {
        return Err(StateStoreError::TooLarge { what: what(), len, max });
    }
    Ok(())
}

fn value_key(kh: &KeyHash, version: Version) -> [u8; 40] {
    let mut key = [0; 40];
    key[..32].copy_from_slice(&kh.0);
    key[32..].copy_from_slice(&version.to_be_bytes());
    key
}

/// The borsh layout of `jmt::proof::SparseMerkleProof` (its fields are private).
#[derive(BorshDeserialize)]
struct MirrorProof {
    leaf: Option<MirrorLeaf>,
    siblings: Vec<MirrorNode>,
}

#[derive(BorshDeserialize)]
struct MirrorLeaf {
    key_hash: [u8; 32],
    value_hash: [u8; 32],
}

impl MirrorLeaf {
    fn into_leaf(self) -> TreeLeaf {
        TreeLeaf {
            key_hash: Hash32(self.key_hash),
            value_hash: Hash32(self.value_hash),
        }
    }
}

#[derive(BorshDeserialize)]
enum MirrorNode {
    Null,
    Internal { left: [u8; 32], right: [u8; 32] },
    Leaf(MirrorLeaf),
}

/// `jmt`'s view of the tables, inside one read or write transaction.
struct Reader<'a, T> {
    store: &'a Store,
    nodes: Option<&'a T>,
    values: Option<&'a T>,
    /// The version whose root is the empty tree: the one before the first applied height.
    empty_base: Option<Version>,
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> Reader<'_, T> {
    fn value_at(&self, max_version: Version, kh: &KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        const OP: &str = "get_value";
        let Some(values) = self.values else {
            return Ok(None);
        };
        let (lo, hi) = (value_key(kh, 0), value_key(kh, max_version));
        let mut range = values
            .range(&lo[..]..=&hi[..])
            .map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
        let Some(entry) = range.next_back() else {
            return Ok(None);
        };
        let (_, record) = entry.map_err(|e| self.store.error(OP, VALUES_TABLE, e))?;
        match record.value().split_first() {
            Some((&PRESENT, value)) => Ok(Some(value.to_vec())),
            Some((&DELETED, [])) => Ok(None),
            _ => Err(anyhow::anyhow!(
                "store {}: table `{VALUES_TABLE}` holds a corrupt value record for key hash {kh:?}",
                self.store.path().display()
            )),
        }
    }
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> TreeReader for Reader<'_, T> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        const OP: &str = "get_node";
        if self.empty_base == Some(node_key.version()) && node_key.nibble_path().is_empty() {
            return Ok(Some(Node::Null));
        }
        let Some(nodes) = self.nodes else {
            return Ok(None);
        };
        let key = borsh::to_vec(node_key)?;
        let Some(bytes) = nodes
            .get(key.as_slice())
            .map_err(|e| self.store.error(OP, NODES_TABLE, e))?
        else {
            return Ok(None);
        };
        Node::try_from_slice(bytes.value()).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "store {}: table `{NODES_TABLE}` holds a node that does not decode at {node_key:?}: {e}",
                self.store.path().display()
            )
        })
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        self.value_at(max_version, &key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only `jmt`'s restore and migration paths ask for it; this store uses neither.
        Err(anyhow::anyhow!(
            "the state store does not support jmt restore (get_rightmost_leaf)"
        ))
    }
}
