//! The persistent state tree: roots equal core's reference tree, proofs and
//! snapshot chunks verify with `tiernet_core::state`, and everything
//! survives closing and reopening the store.

use tiernet_core::hash::Hash32;
use tiernet_core::state::{ChunkSummary, EMPTY_ROOT, MemoryTree, verify_chunk, verify_value};
use tiernet_node::state_store::{StateStore, StateStoreError};
use tiernet_node::store::{STORE_FILE, Store};

type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len_mod: usize) -> Vec<u8> {
    let h = blake3::hash(&seed.to_le_bytes());
    let len = 1 + (h.as_bytes()[0] as usize) % len_mod;
    h.as_bytes().iter().cycle().take(len).copied().collect()
}

/// Height h's change set: inserts, updates of earlier keys, deletes, and
/// (for height 3) nothing at all.
fn changes_for(height: u64) -> Changes {
    if height == 3 {
        return Vec::new();
    }
    let mut changes = Vec::new();
    for i in 0..40u64 {
        changes.push((bytes(height * 1000 + i, 30), Some(bytes(height * 7 + i, 60))));
    }
    if height > 1 {
        // Update and delete keys of height 1, delete a key that never existed.
        for i in 0..10u64 {
            changes.push((bytes(1000 + i, 30), Some(format!("updated at {height}").into_bytes())));
        }
        for i in 10..15u64 {
            changes.push((bytes(1000 + i, 30), None));
        }
        changes.push((b"never-there".to_vec(), None));
    }
    // A key set twice in one height: the later change wins.
    changes.push((b"twice".to_vec(), Some(b"first".to_vec())));
    changes.push((b"twice".to_vec(), Some(format!("second {height}").into_bytes())));
    changes
}

fn apply_to(tree: &mut MemoryTree, changes: &Changes) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                tree.insert(k.clone(), v.clone());
            }
            None => {
                tree.remove(k);
            }
        }
    }
}

fn check_height(state: &StateStore, tree: &MemoryTree, height: u64, probes: &[Vec<u8>]) {
    let root = state.root_at(height).unwrap().expect("height applied");
    assert_eq!(root, tree.root(), "jmt root equals core's reference root at {height}");
    for key in probes {
        let (value, proof) = state.get_with_proof(key, height).unwrap();
        assert_eq!(value.as_deref(), tree.get(key), "value of {key:?} at {height}");
        assert_eq!(state.get(key, height).unwrap(), value);
        verify_value(&root, key, value.as_deref(), &proof).unwrap();
        // jmt's proof is the canonical one the reference tree builds.
        assert_eq!(proof, tree.prove(key).into());
        if value.is_some() {
            assert!(verify_value(&root, key, None, &proof).is_err());
        } else {
            assert!(verify_value(&root, key, Some(b"x"), &proof).is_err());
        }
    }
}

fn check_chunks(state: &StateStore, tree: &MemoryTree, height: u64, chunk_size: usize) {
    let root = state.root_at(height).unwrap().expect("height applied");
    let mut previous: Option<ChunkSummary> = None;
    let mut count = 0;
    for index in 0.. {
        let chunk = state.chunk(height, index, chunk_size).unwrap();
        assert_eq!(Some(&chunk), tree.chunk(height, index, chunk_size).as_ref());
        let summary = verify_chunk(&root, &chunk, previous.as_ref()).unwrap();
        count += summary.entries();
        if summary.is_last() {
            assert!(matches!(
                state.chunk(height, index + 1, chunk_size),
                Err(StateStoreError::NoSuchChunk { .. })
            ));
            break;
        }
        previous = Some(summary);
    }
    assert_eq!(count, tree.len());
}

#[test]
fn heights_roots_proofs_and_chunks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let mut probes: Vec<Vec<u8>> = (0..60).map(|i| bytes(1000 + i, 30)).collect();
    probes.extend((0..20).map(|i| bytes(4000 + i, 30)));
    probes.push(b"twice".to_vec());
    probes.push(b"absent".to_vec());

    let mut trees = Vec::new();
    let mut tree = MemoryTree::new();
    {
        let state = StateStore::open(Store::open(&path).unwrap()).unwrap();
        assert_eq!(state.latest().unwrap(), None);
        for height in 1..=5 {
            let changes = changes_for(height);
            apply_to(&mut tree, &changes);
            let root = state.apply(height, &changes).unwrap();
            assert_eq!(root, tree.root(), "root of height {height}");
            trees.push(tree.clone());
            check_height(&state, &tree, height, &probes);
        }
        assert_eq!(state.get(b"twice", 2).unwrap().as_deref(), Some(&b"second 2"[..]));
        assert_eq!(state.root_at(3).unwrap(), state.root_at(2).unwrap(), "empty change set");
    }

    let state = StateStore::open(Store::open(&path).unwrap()).unwrap();
    assert_eq!(state.latest().unwrap(), Some((5, tree.root())));
    for (i, tree) in trees.iter().enumerate() {
        let height = i as u64 + 1;
        check_height(&state, tree, height, &probes);
    }
    check_chunks(&state, &trees[0], 1, 7);
    check_chunks(&state, &trees[4], 5, 16);
    check_chunks(&state, &trees[4], 5, 4096);

    // Old heights keep their values after later updates and deletes.
    let key = bytes(1000, 30);
    assert_eq!(state.get(&key, 1).unwrap(), trees[0].get(&key).map(<[u8]>::to_vec));
    assert_eq!(state.get(&key, 5).unwrap().as_deref(), Some(&b"updated at 5"[..]));

    // Continue after reopening; heights must be consecutive.
    assert!(matches!(
        state.apply(7, &changes_for(7)),
        Err(StateStoreError::NotNext { height: 7, expected: 6 })
    ));
    assert!(matches!(state.apply(5, &[]), Err(StateStoreError::NotNext { .. })));
    let changes = changes_for(6);
    apply_to(&mut tree, &changes);
    assert_eq!(state.apply(6, &changes).unwrap(), tree.root());
    check_height(&state, &tree, 6, &probes);
    assert!(matches!(
        state.get(b"k", 99),
        Err(StateStoreError::UnknownHeight {
            height: 99,
            latest: Some(6)
        })
    ));
    assert!(matches!(
        state.get_with_proof(b"k", 0),
        Err(StateStoreError::UnknownHeight { .. })
    ));
}

#[test]
fn first_height_may_be_any_and_deleting_everything_empties_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(Store::open(&dir.path().join(STORE_FILE)).unwrap()).unwrap();
    assert!(matches!(
        state.chunk(9, 0, 10),
        Err(StateStoreError::UnknownHeight { .. })
    ));

    // Starting at height 9: the state before it is empty.
    let root = state.apply(9, &[]).unwrap();
    assert_eq!(root, EMPTY_ROOT);
    let chunk = state.chunk(9, 0, 10).unwrap();
    assert!(verify_chunk(&EMPTY_ROOT, &chunk, None).unwrap().is_last());
    let (value, proof) = state.get_with_proof(b"a", 9).unwrap();
    assert_eq!(value, None);
    verify_value(&root, b"a", None, &proof).unwrap();

    let put: Changes = vec![
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"b".to_vec(), Some(b"2".to_vec())),
    ];
    let root = state.apply(10, &put).unwrap();
    let mut tree = MemoryTree::new();
    apply_to(&mut tree, &put);
    assert_eq!(root, tree.root());

    let delete: Changes = vec![(b"a".to_vec(), None), (b"b".to_vec(), None)];
    assert_eq!(state.apply(11, &delete).unwrap(), EMPTY_ROOT);
    assert_eq!(state.get(b"a", 11).unwrap(), None);
    assert_eq!(state.get(b"a", 10).unwrap().as_deref(), Some(&b"1"[..]));
    let (value, proof) = state.get_with_proof(b"a", 11).unwrap();
    assert_eq!(value, None);
    verify_value(&EMPTY_ROOT, b"a", None, &proof).unwrap();
}

#[test]
fn genesis_height_zero_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(Store::open(&dir.path().join(STORE_FILE)).unwrap()).unwrap();
    let genesis: Changes = vec![(b"params".to_vec(), Some(b"{}".to_vec()))];
    let root = state.apply(0, &genesis).unwrap();
    let mut tree = MemoryTree::new();
    apply_to(&mut tree, &genesis);
    assert_eq!(root, tree.root());
    assert_eq!(state.latest().unwrap(), Some((0, root)));

    let long_key: Changes = vec![(vec![0; tiernet_core::wire::limits::MAX_STATE_KEY + 1], Some(vec![]))];
    assert!(matches!(
        state.apply(1, &long_key),
        Err(StateStoreError::TooLarge { .. })
    ));
    let long_value: Changes = vec![(
        b"k".to_vec(),
        Some(vec![0; tiernet_core::wire::limits::MAX_STATE_VALUE + 1]),
    )];
    assert!(matches!(
        state.apply(1, &long_value),
        Err(StateStoreError::TooLarge { .. })
    ));
    assert!(matches!(state.chunk(0, 0, 0), Err(StateStoreError::ChunkSize { .. })));
    assert!(matches!(
        state.chunk(0, 0, 4097),
        Err(StateStoreError::ChunkSize { .. })
    ));
    assert!(matches!(
        state.chunk(0, 1, 1),
        Err(StateStoreError::NoSuchChunk { chunks: 1, .. })
    ));
    // Nothing was written by the refused applies.
    assert_eq!(state.latest().unwrap(), Some((0, root)));
    assert_ne!(root, Hash32::ZERO);
}
