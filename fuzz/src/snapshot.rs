//! Snapshot verification: `verify_snapshot_manifest` and
//! `verify_snapshot_chunk` over a real state tree of [`ENTRIES`] entries cut
//! into chunks of [`CHUNK_SIZE`], fed manifests and chunks a peer chose.
//!
//! # Input
//!
//! `[flags u8]` then records (see [`crate::Input::record`]):
//!
//! | op % 4 | what |
//! |---|---|
//! | 0 | the honest chunk `arg % count` |
//! | 1 | the payload as a `SnapshotChunk`; if `arg & 1` (or flags `& 1`), the manifest in use is first made to list this chunk's own hash at its index (a lying manifest: only the state root protects) |
//! | 2 | the payload as a `SnapshotManifest`, checked against the header; if it passes it replaces the manifest and restarts |
//! | 3 | restart from chunk 0 |
//!
//! # Oracle
//!
//! Every entry of an accepted chunk is in the state with that value, and
//! when the last chunk is accepted, the accepted chunks hold the whole state.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use prost::Message;
use tiernet_core::state::{ChunkSummary, MemoryTree, chunk_hash};
use tiernet_core::verify::{verify_snapshot_chunk, verify_snapshot_manifest};
use tiernet_core::wire::{encode, proto};

use crate::{Input, MAX_RECORDS, Seed, record};

/// Entries in the fixture state.
pub const ENTRIES: usize = 20;
/// Entries per honest chunk.
pub const CHUNK_SIZE: usize = 6;
/// Height of the snapshot.
const HEIGHT: u64 = 7;

struct World {
    header: proto::Header,
    tree: MemoryTree,
    manifest: proto::SnapshotManifest,
    chunks: Vec<proto::SnapshotChunk>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut tree = MemoryTree::new();
    for i in 0..ENTRIES {
        tree.insert(format!("key-{i}").into_bytes(), vec![i as u8; 1 + i % 5]);
    }
    let root = tree.root();
    let chunks: Vec<proto::SnapshotChunk> = (0..tree.chunk_count(CHUNK_SIZE))
        .map(|i| tree.chunk(HEIGHT, i as u32, CHUNK_SIZE).expect("fixture chunk"))
        .collect();
    let header = proto::Header {
        network_id: "devnet".into(),
        height: HEIGHT,
        round: 0,
        time_ms: 1_700_000_000_000,
        prev_hash: vec![1; 32],
        proposer: vec![2; 32],
        validators_hash: vec![3; 32],
        next_validators_hash: vec![3; 32],
        state_root: root.as_bytes().to_vec(),
        proofs_root: vec![4; 32],
        chain_commitment: vec![5; 32],
    };
    let manifest = proto::SnapshotManifest {
        network_id: "devnet".into(),
        height: HEIGHT,
        state_root: root.as_bytes().to_vec(),
        chunk_count: chunks.len() as u32,
        total_entries: ENTRIES as u64,
        chunk_hashes: chunks.iter().map(|c| chunk_hash(c).as_bytes().to_vec()).collect(),
    };
    verify_snapshot_manifest(&header, &manifest).expect("fixture manifest verifies");
    World {
        header,
        tree,
        manifest,
        chunks,
    }
});

struct Run<'w> {
    world: &'w World,
    manifest: proto::SnapshotManifest,
    previous: Option<ChunkSummary>,
    proven: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Run<'_> {
    fn restart(&mut self) {
        self.previous = None;
        self.proven.clear();
    }

    fn feed(&mut self, manifest: &proto::SnapshotManifest, chunk: &proto::SnapshotChunk) {
        let result = verify_snapshot_chunk(manifest, chunk, self.previous.as_ref());
        crate::debug(|| format!("chunk {}: {:?}", chunk.index, result.as_ref().map(|s| s.is_last())));
        let Ok(summary) = result else {
            return;
        };
        assert_eq!(summary.index(), chunk.index);
        assert_eq!(summary.entries(), chunk.entries.len());
        for entry in &chunk.entries {
            assert_eq!(
                self.world.tree.get(&entry.key),
                Some(entry.value.as_slice()),
                "chunk {} proved an entry that is not in the state",
                chunk.index
            );
            self.proven.insert(entry.key.clone(), entry.value.clone());
        }
        if summary.is_last() {
            assert_eq!(
                self.proven.len(),
                self.world.tree.len(),
                "the last chunk verified but the snapshot misses entries"
            );
        }
        self.previous = Some(summary);
    }
}

/// Runs one input; see the module docs.
pub fn run(data: &[u8]) {
    let w = &*WORLD;
    let mut input = Input::new(data);
    let flags = input.u8();
    let mut run = Run {
        world: w,
        manifest: w.manifest.clone(),
        previous: None,
        proven: BTreeMap::new(),
    };
    for _ in 0..MAX_RECORDS {
        let Some((op, arg, payload)) = input.record() else {
            break;
        };
        match op % 4 {
            0 => {
                let chunk = &w.chunks[usize::from(arg) % w.chunks.len()];
                let manifest = run.manifest.clone();
                run.feed(&manifest, chunk);
            }
            1 => {
                let Ok(chunk) = proto::SnapshotChunk::decode(payload) else {
                    continue;
                };
                let mut manifest = run.manifest.clone();
                if (arg | flags) & 1 != 0
                    && let Some(slot) = usize::try_from(chunk.index)
                        .ok()
                        .and_then(|i| manifest.chunk_hashes.get_mut(i))
                {
                    *slot = chunk_hash(&chunk).as_bytes().to_vec();
                }
                run.feed(&manifest, &chunk);
            }
            2 => {
                let Ok(manifest) = proto::SnapshotManifest::decode(payload) else {
                    continue;
                };
                if verify_snapshot_manifest(&w.header, &manifest).is_ok() {
                    assert_eq!(
                        manifest.state_root, w.header.state_root,
                        "manifest of another root accepted"
                    );
                    run.manifest = manifest;
                    run.restart();
                }
            }
            _ => run.restart(),
        }
    }
}

/// The honest chunks in order as raw chunks, honest and lying-manifest variants, and the manifest.
pub fn seeds() -> Vec<Seed> {
    let w = &*WORLD;
    let raw = |lie: u8| -> Vec<u8> {
        let mut out = vec![0];
        for chunk in &w.chunks {
            out.extend(record(1, lie, &chunk.encode_to_vec()));
        }
        out
    };
    let mut manifest_first = vec![0];
    manifest_first.extend(record(2, 0, &w.manifest.encode_to_vec()));
    for i in 0..w.chunks.len() {
        manifest_first.extend(record(0, i as u8, &[]));
    }
    vec![
        ("chunks", raw(0)),
        ("chunks-lying-manifest", raw(1)),
        ("manifest", manifest_first),
    ]
}

/// The manifest and the chunks as sync responses, and the announcement a
/// node would gossip (unsigned).
pub fn messages() -> Vec<Vec<u8>> {
    use proto::sync_response::Kind;
    let w = &*WORLD;
    let mut out = vec![encode(&proto::SyncResponse {
        kind: Some(Kind::SnapshotManifest(w.manifest.clone())),
    })];
    for chunk in &w.chunks {
        out.push(encode(&proto::SyncResponse {
            kind: Some(Kind::SnapshotChunk(chunk.clone())),
        }));
    }
    out.push(encode(&proto::SnapshotsMessage {
        announcement: Some(proto::SnapshotAnnouncement {
            manifest: Some(w.manifest.clone()),
            announcer: vec![6; 32],
            signature: vec![0; 64],
        }),
    }));
    out
}
