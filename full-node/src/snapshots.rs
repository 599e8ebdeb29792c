//! State snapshots: which heights are snapshotted and kept, their manifests,
//! and the chunks served for them.
//!
//! A snapshot of height `h` is the whole state at `h` cut into chunks of
//! [`SnapshotPolicy::chunk_entries`] entries, each with the range proof of
//! [`tiernet_core::state::verify_chunk`] against `state_root` at `h`
//! (DESIGN.md, "Full node"; the light client's `sync_snapshot`). The
//! [`proto::SnapshotManifest`] lists the hash ([`chunk_hash`]) of every
//! chunk, so a syncing peer can fetch chunks from anyone and check each one
//! twice: against the manifest hash and against the root. TL2+ nodes
//! announce the manifests they keep on the `snapshots` topic
//! ([`announcement`]).
//!
//! Chunks are not stored: the state store keeps every height (see
//! [`crate::state_store`]), so a chunk of a kept snapshot is read back from
//! the tree when asked for, and re-hashed against the manifest before it is
//! served. Only manifests are stored here.
//!
//! # Table
//!
//! | table | key | value |
//! |---|---|---|
//! | `snapshots` | height (u64) | (chunk size in entries (u64), encoded [`proto::SnapshotManifest`]) |
//!
//! The chunk size is stored with each manifest because the manifest itself
//! does not say it, and the policy may change between restarts: chunks of a
//! snapshot are always cut the way its manifest was built.
//!
//! # Policy and cost
//!
//! [`Snapshots::after_commit`] is called after every committed height; at
//! every [`SnapshotPolicy::interval_blocks`]-th height it reads the whole
//! state once (work and reads proportional to the number of entries, plus
//! one proof per chunk; memory of one chunk plus 32 bytes per chunk), then
//! stores the manifest and drops all but the [`SnapshotPolicy::kept`] most
//! recent ones, in one durable write transaction.

use prost::Message;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::state::chunk_hash;
use tiernet_core::wire::limits::{MAX_CHUNK_ENTRIES, MAX_SNAPSHOT_CHUNKS};
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{NetworkId, Validate, proto};

use crate::state_store::{StateStore, StateStoreError};
use crate::store::{Store, StoreError};

const SNAPSHOTS_TABLE: &str = "snapshots";
/// Manifests: height → (chunk size in entries, encoded manifest).
pub(crate) const SNAPSHOTS: TableDefinition<u64, (u64, &[u8])> = TableDefinition::new(SNAPSHOTS_TABLE);

/// Default for `snapshots.interval_blocks`.
pub const DEFAULT_INTERVAL_BLOCKS: u64 = 100;
/// Default for `snapshots.kept`.
pub const DEFAULT_KEPT: usize = 4;
/// Default for `snapshots.chunk_entries`.
pub const DEFAULT_CHUNK_ENTRIES: usize = 1000;

/// When snapshots are taken, how many are kept, and how they are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot is taken at every height that is a multiple of this
    /// (height 0 excepted); 0 disables snapshots.
    pub interval_blocks: u64,
    /// How many of the most recent snapshots are kept (at least 1).
    pub kept: usize,
    /// Entries per chunk, `1..=MAX_CHUNK_ENTRIES`.
    pub chunk_entries: usize,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            interval_blocks: DEFAULT_INTERVAL_BLOCKS,
            kept: DEFAULT_KEPT,
            chunk_entries: DEFAULT_CHUNK_ENTRIES,
        }
    }
}

/// A [`SnapshotPolicy`] value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("snapshot policy: {key} {problem}")]
pub struct PolicyError {
    /// The field, as named in the `[snapshots]` config section.
    pub key: &'static str,
    /// The value and what was expected.
    pub problem: String,
}

impl SnapshotPolicy {
    /// Checks that `kept` is at least 1 and `chunk_entries` is in
    /// `1..=MAX_CHUNK_ENTRIES` (every `interval_blocks` is valid).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.kept == 0 {
            return Err(PolicyError {
                key: "kept",
                problem: "is 0; expected at least 1 (set interval_blocks = 0 to disable snapshots)".into(),
            });
        }
        if self.chunk_entries == 0 || self.chunk_entries > MAX_CHUNK_ENTRIES {
            return Err(PolicyError {
                key: "chunk_entries",
                problem: format!("is {}; expected 1 to {MAX_CHUNK_ENTRIES}", self.chunk_entries),
            });
        }
        Ok(())
    }

    /// Whether a snapshot is due at `height`.
    pub fn is_due(&self, height: u64) -> bool {
        self.interval_blocks != 0 && height != 0 && height.is_multiple_of(self.interval_blocks)
    }
}

/// Errors of the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The policy is out of range.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The underlying store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state store failed while building or serving a snapshot.
    #[error("snapshot at height {height}: {op}: {source}")]
    State {
        /// The snapshot's height.
        height: u64,
        /// What was being done.
        op: &'static str,
        /// What the state store said.
        source: StateStoreError,
    },
    /// The state store holds no state at the height to snapshot.
    #[error("snapshot at height {height}: the state store has no state at that height")]
    NoState {
        /// The height.
        height: u64,
    },
    /// The state needs more chunks than a manifest may list.
    #[error(
        "snapshot at height {height}: the state needs more than {max} chunks of {chunk_entries} entries; \
         raise snapshots.chunk_entries"
    )]
    TooManyChunks {
        /// The height.
        height: u64,
        /// The chunk size used.
        chunk_entries: usize,
        /// The most chunks a manifest may list.
        max: usize,
    },
    /// No snapshot is kept at this height.
    #[error("no snapshot at height {height}; kept snapshots: {kept:?}")]
    NoSuchSnapshot {
        /// The height asked for (0 = the latest).
        height: u64,
        /// The heights kept.
        kept: Vec<u64>,
    },
    /// The snapshot has no chunk with this index.
    #[error("snapshot at height {height} has {count} chunk(s); there is no chunk {index}")]
    NoSuchChunk {
        /// The snapshot's height.
        height: u64,
        /// The index asked for.
        index: u32,
        /// How many chunks it has.
        count: u32,
    },
    /// A chunk read back from the state store does not hash to the
    /// manifest's entry: the state at that height changed or is corrupt.
    #[error("snapshot at height {height}: chunk {index} read from the state no longer matches the manifest")]
    ChunkMismatch {
        /// The snapshot's height.
        height: u64,
        /// The chunk index.
        index: u32,
    },
    /// A stored manifest does not decode.
    #[error("store {path}: table `snapshots`: the manifest at height {height} is corrupt: {reason}")]
    Corrupt {
        /// The database file.
        path: std::path::PathBuf,
        /// The height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The snapshot manifests a node keeps, over the node's store. Cheap to
/// clone (shares the store).
#[derive(Debug, Clone)]
pub struct Snapshots {
    store: Store,
    policy: SnapshotPolicy,
    max_chunks: usize,
}

impl Snapshots {
    /// Opens the snapshot table in `store` (creating it) with `policy`,
    /// which must be valid ([`SnapshotPolicy::validate`]).
    pub fn open(store: Store, policy: SnapshotPolicy) -> Result<Snapshots, SnapshotError> {
        const OP: &str = "open snapshots";
        policy.validate()?;
        let db = store.database();
        let txn = db.begin_write().map_err(|e| store.error(OP, SNAPSHOTS_TABLE, e))?;
        txn.open_table(SNAPSHOTS)
            .map_err(|e| store.error(OP, SNAPSHOTS_TABLE, e))?;
        txn.commit().map_err(|e| store.error(OP, SNAPSHOTS_TABLE, e))?;
        Ok(Snapshots {
            store,
            policy,
            max_chunks: MAX_SNAPSHOT_CHUNKS,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &SnapshotPolicy {
        &self.policy
    }

    /// Called once a height is committed and its state applied. When the
    /// policy says a snapshot is due at `height` ([`SnapshotPolicy::is_due`]),
    /// builds the manifest of the state at `height` for `network_id`, stores
    /// it durably, drops the manifests beyond the `kept` most recent ones and
    /// returns it; otherwise returns `None` and does nothing.
    ///
    /// Cost: when due, one pass over the whole state (every entry read and
    /// hashed once, plus one proof per chunk), so the caller should run it
    /// off the hot path; it does so once per `interval_blocks` heights. The
    /// state must not be pruned below `height` while this runs.
    pub fn after_commit(
        &self,
        height: u64,
        network_id: &NetworkId,
        state: &StateStore,
    ) -> Result<Option<proto::SnapshotManifest>, SnapshotError> {
        if !self.policy.is_due(height) {
            return Ok(None);
        }
        let manifest = self.build(height, network_id, state)?;
        self.put(height, &manifest)?;
        Ok(Some(manifest))
    }

    /// The manifest kept at `height`, or the latest one kept for `height` 0.
    pub fn manifest(&self, height: u64) -> Result<Option<proto::SnapshotManifest>, SnapshotError> {
        Ok(self.row(height)?.map(|(_, manifest)| manifest))
    }

    /// The heights of the kept snapshots, ascending.
    pub fn heights(&self) -> Result<Vec<u64>, SnapshotError> {
        const OP: &str = "snapshot heights";
        let db = self.store.database();
        let txn = db.begin_read().map_err(|e| self.err(OP, e))?;
        let table = match txn.open_table(SNAPSHOTS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(OP, e)),
        };
        let mut heights = Vec::new();
        for row in table.iter().map_err(|e| self.err(OP, e))? {
            let (height, _) = row.map_err(|e| self.err(OP, e))?;
            heights.push(height.value());
        }
        Ok(heights)
    }

    /// Chunk `index` of the kept snapshot at `height` (exactly that height),
    /// read from `state` and checked against the manifest's chunk hash.
    pub fn chunk(&self, height: u64, index: u32, state: &StateStore) -> Result<proto::SnapshotChunk, SnapshotError> {
        let (chunk_entries, manifest) = match self.row(height)? {
            Some(row) if height != 0 => row,
            _ => {
                return Err(SnapshotError::NoSuchSnapshot {
                    height,
                    kept: self.heights()?,
                });
            }
        };
        let Some(expected) = manifest.chunk_hashes.get(index as usize) else {
            return Err(SnapshotError::NoSuchChunk {
                height,
                index,
                count: manifest.chunk_count,
            });
        };
        let chunk = state
            .chunk(height, index, chunk_entries)
            .map_err(|source| SnapshotError::State {
                height,
                op: "read chunk",
                source,
            })?;
        if chunk_hash(&chunk).as_bytes()[..] != expected[..] {
            return Err(SnapshotError::ChunkMismatch { height, index });
        }
        Ok(chunk)
    }

    // ─────────────────────────── helpers ───────────────────────────

    /// Reads every chunk of the state at `height` and lists their hashes.
    fn build(
        &self,
        height: u64,
        network_id: &NetworkId,
        state: &StateStore,
    ) -> Result<proto::SnapshotManifest, SnapshotError> {
        let state_error = |op| move |source| SnapshotError::State { height, op, source };
        let root = state
            .root_at(height)
            .map_err(state_error("read the root"))?
            .ok_or(SnapshotError::NoState { height })?;
        let size = self.policy.chunk_entries;
        let mut chunk_hashes = Vec::new();
        let mut total_entries: u64 = 0;
        for index in 0u32.. {
            if chunk_hashes.len() >= self.max_chunks {
                return Err(SnapshotError::TooManyChunks {
                    height,
                    chunk_entries: size,
                    max: self.max_chunks,
                });
            }
            let chunk = match state.chunk(height, index, size) {
                Ok(chunk) => chunk,
                // The previous chunk was full and the last one.
                Err(StateStoreError::NoSuchChunk { .. }) if index > 0 => break,
                Err(source) => return Err(state_error("read chunk")(source)),
            };
            chunk_hashes.push(chunk_hash(&chunk).as_bytes().to_vec());
            total_entries = total_entries.saturating_add(chunk.entries.len() as u64);
            if chunk.entries.len() < size {
                break;
            }
        }
        // At most `max_chunks` ≤ MAX_SNAPSHOT_CHUNKS, which fits in a u32.
        let chunk_count = u32::try_from(chunk_hashes.len()).map_err(|_| SnapshotError::TooManyChunks {
            height,
            chunk_entries: size,
            max: self.max_chunks,
        })?;
        Ok(proto::SnapshotManifest {
            network_id: network_id.to_string(),
            height,
            state_root: root.as_bytes().to_vec(),
            chunk_count,
            total_entries,
            chunk_hashes,
        })
    }

    /// Stores `manifest` and drops all but the `kept` most recent ones, in
    /// one durable transaction.
    fn put(&self, height: u64, manifest: &proto::SnapshotManifest) -> Result<(), SnapshotError> {
        const OP: &str = "store snapshot";
        let bytes = manifest.encode_to_vec();
        let db = self.store.database();
        let txn = db.begin_write().map_err(|e| self.err(OP, e))?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(|e| self.err(OP, e))?;
            table
                .insert(height, (self.policy.chunk_entries as u64, bytes.as_slice()))
                .map_err(|e| self.err(OP, e))?;
            let mut stale = Vec::new();
            for row in table.iter().map_err(|e| self.err(OP, e))?.rev().skip(self.policy.kept) {
                let (h, _) = row.map_err(|e| self.err(OP, e))?;
                stale.push(h.value());
            }
            for h in stale {
                table.remove(h).map_err(|e| self.err(OP, e))?;
            }
        }
        txn.commit().map_err(|e| self.err(OP, e))?;
        Ok(())
    }

    /// The row at `height` (the last one for 0): chunk size and manifest.
    fn row(&self, height: u64) -> Result<Option<(usize, proto::SnapshotManifest)>, SnapshotError> {
        const OP: &str = "read snapshot";
        let db = self.store.database();
        let txn = db.begin_read().map_err(|e| self.err(OP, e))?;
        let table = match txn.open_table(SNAPSHOTS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(OP, e)),
        };
        let row = if height == 0 {
            table.last().map_err(|e| self.err(OP, e))?.map(|(h, v)| {
                let (size, bytes) = v.value();
                (h.value(), size, bytes.to_vec())
            })
        } else {
            table.get(height).map_err(|e| self.err(OP, e))?.map(|v| {
                let (size, bytes) = v.value();
                (height, size, bytes.to_vec())
            })
        };
        let Some((height, chunk_entries, bytes)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: self.store.path().to_path_buf(),
            height,
            reason,
        };
        let chunk_entries = usize::try_from(chunk_entries)
            .ok()
            .filter(|n| (1..=MAX_CHUNK_ENTRIES).contains(n))
            .ok_or_else(|| corrupt(format!("chunk size {chunk_entries} is not in 1..={MAX_CHUNK_ENTRIES}")))?;
        let manifest = proto::SnapshotManifest::decode(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?;
        manifest.validate().map_err(|e| corrupt(e.to_string()))?;
        if manifest.height != height {
            return Err(corrupt(format!("it says height {}", manifest.height)));
        }
        Ok(Some((chunk_entries, manifest)))
    }

    fn err(&self, op: &'static str, e: impl Into<redb::Error>) -> SnapshotError {
        SnapshotError::Store(self.store.error(op, SNAPSHOTS_TABLE, e))
    }
}

/// The signed announcement of `manifest` by `identity`, for the `snapshots`
/// topic (wrapped in a [`proto::SnapshotsMessage`]). Peers check the
/// signature against the announcer's registered identity key and its tier
/// (TL2+). A manifest with more than about 15,000 chunks does not fit in a
/// `snapshots` message ([`tiernet_core::wire::limits::MAX_SNAPSHOTS_MESSAGE`]):
/// the caller checks the encoded size before publishing (large states take
/// larger chunks).
pub fn announcement(manifest: proto::SnapshotManifest, identity: &ZsiKeypair) -> proto::SnapshotAnnouncement {
    let mut announcement = proto::SnapshotAnnouncement {
        manifest: Some(manifest),
        announcer: identity.zsi_id().as_bytes().to_vec(),
        signature: Vec::new(),
    };
    announcement.sign_with(identity.identity_key());
    announcement
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::state::{ChunkSummary, EMPTY_ROOT, verify_chunk};
    use tiernet_core::wire::{decode, encode};

    fn network() -> NetworkId {
        NetworkId::new("devnet").unwrap()
    }

    fn policy(interval_blocks: u64, kept: usize, chunk_entries: usize) -> SnapshotPolicy {
        SnapshotPolicy {
            interval_blocks,
            kept,
            chunk_entries,
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        state: StateStore,
    }

    /// A state with `keys_per_height` new keys at each of heights 1..=heights.
    fn fixture(heights: u64, keys_per_height: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        let state = StateStore::open(store.clone()).unwrap();
        for h in 1..=heights {
            let changes: Vec<_> = (0..keys_per_height)
                .map(|i| {
                    (
                        format!("key {h}/{i}").into_bytes(),
                        Some(format!("value {h}/{i}").into_bytes()),
                    )
                })
                .collect();
            state.apply(h, &changes).unwrap();
        }
        Fixture {
            _dir: dir,
            store,
            state,
        }
    }

    fn verify_all(snapshots: &Snapshots, state: &StateStore, manifest: &proto::SnapshotManifest) -> u64 {
        let root = tiernet_core::hash::Hash32(manifest.state_root.clone().try_into().unwrap());
        let mut previous: Option<ChunkSummary> = None;
        let mut entries = 0;
        for index in 0..manifest.chunk_count {
            let chunk = snapshots.chunk(manifest.height, index, state).unwrap();
            assert_eq!(
                chunk_hash(&chunk).as_bytes().to_vec(),
                manifest.chunk_hashes[index as usize]
            );
            let summary = verify_chunk(&root, &chunk, previous.as_ref()).unwrap();
            assert_eq!(summary.is_last(), index + 1 == manifest.chunk_count, "chunk {index}");
            entries += summary.entries() as u64;
            previous = Some(summary);
        }
        entries
    }

    #[test]
    fn policy_says_when_a_snapshot_is_due() {
        let p = policy(5, 1, 10);
        assert!(!p.is_due(0), "never at height 0");
        assert!(!p.is_due(4));
        assert!(p.is_due(5) && p.is_due(10));
        assert!(!policy(0, 1, 10).is_due(5), "interval 0 disables");
        assert_eq!(policy(5, 0, 10).validate().unwrap_err().key, "kept");
        assert_eq!(policy(5, 1, 0).validate().unwrap_err().key, "chunk_entries");
        assert_eq!(
            policy(5, 1, MAX_CHUNK_ENTRIES + 1).validate().unwrap_err().key,
            "chunk_entries"
        );
        assert!(policy(0, 1, MAX_CHUNK_ENTRIES).validate().is_ok());
        assert!(SnapshotPolicy::default().validate().is_ok());
        let f = fixture(0, 0);
        assert!(matches!(
            Snapshots::open(f.store.clone(), policy(5, 0, 10)),
            Err(SnapshotError::Policy(_))
        ));
    }

    #[test]
    fn manifests_list_every_chunk_and_only_the_kept_ones_remain() {
        // 3 heights × 25 keys: 75 entries at height 3, 50 at height 2.
        let f = fixture(3, 25);
        let snapshots = Snapshots::open(f.store.clone(), policy(1, 2, 10)).unwrap();
        assert_eq!(snapshots.manifest(0).unwrap(), None);
        for h in 1..=3 {
            let manifest = snapshots.after_commit(h, &network(), &f.state).unwrap().unwrap();
            assert_eq!(manifest.height, h);
            assert_eq!(manifest.network_id, "devnet");
            assert_eq!(manifest.total_entries, 25 * h);
            // 25·h entries in chunks of 10; 20 and 50... are exact multiples.
            assert_eq!(manifest.chunk_count as u64, (25 * h).div_ceil(10));
            assert_eq!(manifest.chunk_hashes.len(), manifest.chunk_count as usize);
            assert_eq!(
                manifest.state_root,
                f.state.root_at(h).unwrap().unwrap().as_bytes().to_vec()
            );
            manifest.validate().unwrap();
            assert_eq!(verify_all(&snapshots, &f.state, &manifest), 25 * h);
            assert_eq!(snapshots.manifest(h).unwrap(), Some(manifest.clone()));
            assert_eq!(snapshots.manifest(0).unwrap(), Some(manifest));
        }
        assert_eq!(snapshots.heights().unwrap(), vec![2, 3]);
        assert_eq!(snapshots.manifest(1).unwrap(), None);
        match snapshots.chunk(1, 0, &f.state).unwrap_err() {
            SnapshotError::NoSuchSnapshot { height: 1, kept } => assert_eq!(kept, vec![2, 3]),
            other => panic!("{other:?}"),
        }
        let err = snapshots.chunk(3, 8, &f.state).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::NoSuchChunk {
                    height: 3,
                    index: 8,
                    count: 8
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("has 8 chunk(s); there is no chunk 8"), "{err}");
    }

    #[test]
    fn an_exact_multiple_of_the_chunk_size_has_no_empty_last_chunk() {
        let f = fixture(2, 10);
        let snapshots = Snapshots::open(f.store.clone(), policy(2, 1, 10)).unwrap();
        assert_eq!(snapshots.after_commit(1, &network(), &f.state).unwrap(), None);
        let manifest = snapshots.after_commit(2, &network(), &f.state).unwrap().unwrap();
        assert_eq!((manifest.chunk_count, manifest.total_entries), (2, 20));
        assert_eq!(verify_all(&snapshots, &f.state, &manifest), 20);
    }

    #[test]
    fn the_empty_state_has_one_empty_chunk() {
        let f = fixture(0, 0);
        f.state.apply(4, &[]).unwrap();
        let snapshots = Snapshots::open(f.store.clone(), policy(4, 1, 10)).unwrap();
        let manifest = snapshots.after_commit(4, &network(), &f.state).unwrap().unwrap();
        assert_eq!((manifest.chunk_count, manifest.total_entries), (1, 0));
        assert_eq!(manifest.state_root, EMPTY_ROOT.as_bytes().to_vec());
        assert_eq!(verify_all(&snapshots, &f.state, &manifest), 0);
    }

    #[test]
    fn a_height_without_state_is_an_error_and_nothing_is_stored() {
        let f = fixture(2, 3);
        let snapshots = Snapshots::open(f.store.clone(), policy(5, 1, 10)).unwrap();
        let err = snapshots.after_commit(5, &network(), &f.state).unwrap_err();
        assert!(matches!(err, SnapshotError::NoState { height: 5 }), "{err:?}");
        assert!(snapshots.heights().unwrap().is_empty());
    }

    #[test]
    fn too_many_chunks_is_an_error() {
        let f = fixture(2, 10);
        let mut snapshots = Snapshots::open(f.store.clone(), policy(2, 1, 3)).unwrap();
        snapshots.max_chunks = 6; // 20 entries need 7 chunks of 3
        let err = snapshots.after_commit(2, &network(), &f.state).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::TooManyChunks {
                    height: 2,
                    chunk_entries: 3,
                    max: 6
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("raise snapshots.chunk_entries"), "{err}");
        assert!(snapshots.heights().unwrap().is_empty());
        snapshots.max_chunks = 7;
        assert_eq!(
            snapshots
                .after_commit(2, &network(), &f.state)
                .unwrap()
                .unwrap()
                .chunk_count,
            7
        );
    }

    #[test]
    fn chunks_keep_the_size_of_their_manifest_after_a_policy_change() {
        let f = fixture(2, 10);
        let before = Snapshots::open(f.store.clone(), policy(2, 2, 3)).unwrap();
        let manifest = before.after_commit(2, &network(), &f.state).unwrap().unwrap();
        let after = Snapshots::open(f.store.clone(), policy(2, 2, 8)).unwrap();
        assert_eq!(after.manifest(2).unwrap(), Some(manifest.clone()));
        assert_eq!(verify_all(&after, &f.state, &manifest), 20);
        assert_eq!(after.chunk(2, 0, &f.state).unwrap().entries.len(), 3);
    }

    #[test]
    fn a_chunk_that_no_longer_matches_its_manifest_is_refused() {
        let f = fixture(2, 10);
        let snapshots = Snapshots::open(f.store.clone(), policy(2, 2, 5)).unwrap();
        let mut manifest = snapshots.after_commit(2, &network(), &f.state).unwrap().unwrap();
        manifest.chunk_hashes[1] = vec![0; 32];
        snapshots.put(2, &manifest).unwrap();
        snapshots.chunk(2, 0, &f.state).unwrap();
        let err = snapshots.chunk(2, 1, &f.state).unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChunkMismatch { height: 2, index: 1 }),
            "{err:?}"
        );
    }

    #[test]
    fn a_corrupt_row_is_a_corrupt_error_naming_the_height() {
        let f = fixture(0, 0);
        let snapshots = Snapshots::open(f.store.clone(), policy(2, 2, 5)).unwrap();
        let write = f.store.database().begin_write().unwrap();
        {
            let mut table = write.open_table(SNAPSHOTS).unwrap();
            table.insert(6, (5u64, &b"\xff\xff\xff"[..])).unwrap();
            table.insert(8, (0u64, &[][..])).unwrap();
        }
        write.commit().unwrap();
        for height in [6, 8] {
            let err = snapshots.manifest(height).unwrap_err();
            assert!(
                matches!(&err, SnapshotError::Corrupt { height: h, .. } if *h == height),
                "{err:?}"
            );
            assert!(err.to_string().contains(&format!("height {height}")), "{err}");
        }
        assert_eq!(snapshots.heights().unwrap(), vec![6, 8]);
    }

    #[test]
    fn announcements_are_signed_by_the_identity_and_fit_the_topic() {
        let f = fixture(2, 10);
        let snapshots = Snapshots::open(f.store.clone(), policy(2, 2, 5)).unwrap();
        let manifest = snapshots.after_commit(2, &network(), &f.state).unwrap().unwrap();
        let identity = ZsiKeypair::from_seed(b"announcer").unwrap();
        let signed = announcement(manifest.clone(), &identity);
        assert_eq!(signed.manifest.as_ref(), Some(&manifest));
        assert_eq!(signed.announcer, identity.zsi_id().as_bytes().to_vec());
        let key = identity.identity_key().verifying_key();
        signed.verify_with(&key).unwrap();
        let mut forged = signed.clone();
        if let Some(m) = forged.manifest.as_mut() {
            m.height += 1;
        }
        assert!(forged.verify_with(&key).is_err());
        let other = ZsiKeypair::from_seed(b"someone else").unwrap();
        assert!(signed.verify_with(&other.identity_key().verifying_key()).is_err());
        let bytes = encode(&proto::SnapshotsMessage {
            announcement: Some(signed.clone()),
        });
        let decoded = decode::<proto::SnapshotsMessage>(&bytes).unwrap();
        assert_eq!(decoded.announcement, Some(signed));
    }
}
