//! Snapshots by policy over a real state store: only the kept heights stay,
//! every chunk served verifies in sequence against the manifest's root and
//! hashes to the manifest's entry, together the chunks are exactly the state
//! at that height, wrong requests get typed errors, and manifests survive
//! reopening the store.

use std::collections::BTreeMap;

use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::state::{ChunkSummary, chunk_hash, verify_chunk};
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{NetworkId, proto};
use tiernet_node::snapshots::{SnapshotError, SnapshotPolicy, Snapshots, announcement};
use tiernet_node::state_store::StateStore;
use tiernet_node::store::{STORE_FILE, Store};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

const POLICY: SnapshotPolicy = SnapshotPolicy {
    interval_blocks: 2,
    kept: 2,
    chunk_entries: 50,
};

fn key(i: u64) -> Vec<u8> {
    format!("account/{i:04}").into_bytes()
}

/// Height h: 80 new keys, updates of 20 earlier ones and deletes of 5 more
/// (from height 2 on). Seven heights leave a few hundred keys.
fn changes_for(height: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut changes = Vec::new();
    let first = (height - 1) * 80;
    for i in first..first + 80 {
        changes.push((key(i), Some(blake3::hash(&i.to_le_bytes()).as_bytes().to_vec())));
    }
    if height > 1 {
        let earlier = (height - 2) * 80;
        for i in earlier..earlier + 20 {
            changes.push((key(i), Some(format!("updated at {height}").into_bytes())));
        }
        for i in earlier + 20..earlier + 25 {
            changes.push((key(i), None));
        }
    }
    changes
}

fn apply(expected: &mut State, changes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in changes {
        match v {
            Some(v) => expected.insert(k.clone(), v.clone()),
            None => expected.remove(k),
        };
    }
}

/// Fetches every chunk of `manifest`, verifying each in sequence, and
/// returns the state they make up.
fn fetch_all(snapshots: &Snapshots, state: &StateStore, manifest: &proto::SnapshotManifest) -> State {
    let root = Hash32(manifest.state_root.clone().try_into().expect("32-byte root"));
    let mut previous: Option<ChunkSummary> = None;
    let mut fetched = State::new();
    for index in 0..manifest.chunk_count {
        let chunk = snapshots.chunk(manifest.height, index, state).unwrap();
        assert_eq!((chunk.height, chunk.index), (manifest.height, index));
        assert_eq!(
            chunk_hash(&chunk).as_bytes().to_vec(),
            manifest.chunk_hashes[index as usize],
            "chunk {index} of height {} hashes to the manifest's entry",
            manifest.height
        );
        let summary = verify_chunk(&root, &chunk, previous.as_ref())
            .unwrap_or_else(|e| panic!("chunk {index} of height {}: {e}", manifest.height));
        assert!(chunk.entries.len() <= POLICY.chunk_entries);
        assert_eq!(summary.is_last(), index + 1 == manifest.chunk_count, "chunk {index}");
        for entry in chunk.entries {
            assert!(fetched.insert(entry.key, entry.value).is_none(), "a key served twice");
        }
        previous = Some(summary);
    }
    fetched
}

#[test]
fn snapshots_by_policy_verify_are_pruned_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let network = NetworkId::new("snapnet").unwrap();
    let mut expected = State::new();
    let mut states: BTreeMap<u64, State> = BTreeMap::new();
    let mut taken = Vec::new();
    let kept_manifests: Vec<proto::SnapshotManifest>;
    {
        let store = Store::open(&path).unwrap();
        let state = StateStore::open(store.clone()).unwrap();
        let snapshots = Snapshots::open(store, POLICY).unwrap();
        for height in 1..=7 {
            let changes = changes_for(height);
            apply(&mut expected, &changes);
            state.apply(height, &changes).unwrap();
            states.insert(height, expected.clone());
            let made = snapshots.after_commit(height, &network, &state).unwrap();
            assert_eq!(made.is_some(), height % 2 == 0, "a snapshot at {height}");
            if let Some(manifest) = made {
                assert_eq!(manifest.height, height);
                assert_eq!(manifest.network_id, "snapnet");
                assert_eq!(
                    manifest.state_root,
                    state.root_at(height).unwrap().unwrap().as_bytes().to_vec()
                );
                assert_eq!(manifest.total_entries, expected.len() as u64);
                assert_eq!(
                    manifest.chunk_count as usize,
                    expected.len().div_ceil(POLICY.chunk_entries)
                );
                assert_eq!(manifest.chunk_hashes.len(), manifest.chunk_count as usize);
                taken.push(height);
            }
        }
        assert_eq!(taken, vec![2, 4, 6]);
        assert!(states[&6].len() > 300, "a few hundred keys: {}", states[&6].len());
        assert_eq!(
            snapshots.heights().unwrap(),
            vec![4, 6],
            "only the 2 most recent are kept"
        );
        assert_eq!(snapshots.manifest(2).unwrap(), None);
        assert_eq!(snapshots.manifest(0).unwrap().map(|m| m.height), Some(6), "0 = latest");
        kept_manifests = [4, 6].map(|h| snapshots.manifest(h).unwrap().unwrap()).to_vec();
        for manifest in &kept_manifests {
            assert_eq!(
                fetch_all(&snapshots, &state, manifest),
                states[&manifest.height],
                "the chunks of height {} are exactly its state",
                manifest.height
            );
        }
        // The two kept snapshots differ (the state changed in between).
        assert_ne!(kept_manifests[0].state_root, kept_manifests[1].state_root);
    }

    // Reopen: manifests are still there and chunks are still served.
    let store = Store::open(&path).unwrap();
    let state = StateStore::open(store.clone()).unwrap();
    let snapshots = Snapshots::open(store, POLICY).unwrap();
    assert_eq!(snapshots.heights().unwrap(), vec![4, 6]);
    for manifest in &kept_manifests {
        assert_eq!(snapshots.manifest(manifest.height).unwrap().as_ref(), Some(manifest));
        assert_eq!(fetch_all(&snapshots, &state, manifest), states[&manifest.height]);
    }

    // A pruned height, a height never snapshotted, and "latest" (0) are not
    // chunk heights; an index past the end is a typed error.
    for height in [2, 5, 0] {
        match snapshots.chunk(height, 0, &state) {
            Err(SnapshotError::NoSuchSnapshot { height: h, kept }) => {
                assert_eq!((h, kept), (height, vec![4, 6]));
            }
            other => panic!("height {height}: {other:?}"),
        }
    }
    let count = kept_manifests[1].chunk_count;
    for index in [count, count + 1, u32::MAX] {
        match snapshots.chunk(6, index, &state) {
            Err(SnapshotError::NoSuchChunk {
                height: 6,
                index: i,
                count: c,
            }) => assert_eq!((i, c), (index, count)),
            other => panic!("index {index}: {other:?}"),
        }
    }

    // Snapshotting continues after the reopen and prunes again.
    let changes = changes_for(8);
    apply(&mut expected, &changes);
    state.apply(8, &changes).unwrap();
    let manifest = snapshots.after_commit(8, &network, &state).unwrap().unwrap();
    assert_eq!(snapshots.heights().unwrap(), vec![6, 8]);
    assert_eq!(fetch_all(&snapshots, &state, &manifest), expected);

    // Its announcement is signed by the identity.
    let identity = ZsiKeypair::from_seed(b"snapshot announcer").unwrap();
    let signed = announcement(manifest.clone(), &identity);
    assert_eq!(signed.manifest, Some(manifest));
    assert_eq!(signed.announcer, identity.zsi_id().as_bytes().to_vec());
    signed.verify_with(&identity.identity_key().verifying_key()).unwrap();
}
