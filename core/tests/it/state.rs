//! State tree proofs and snapshot chunks: every value and every absence
//! verifies, any tampering fails, chunks reassemble the whole state.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use tiernet_core::hash::Hash32;
use tiernet_core::state::{
    self, ChunkSummary, EMPTY_ROOT, Malformed, MemoryTree, Mismatch, StateProofError, TreeProof, verify_chunk,
    verify_value,
};
use tiernet_core::wire::proto;

fn tree_of(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for (k, v) in map {
        tree.insert(k.clone(), v.clone());
    }
    tree
}

fn kv_map(max: usize) -> impl Strategy<Value = BTreeMap<Vec<u8>, Vec<u8>>> {
    btree_map(vec(any::<u8>(), 0..24), vec(any::<u8>(), 0..40), 0..max)
}

/// Every single-byte flip of a proof's encoding, one at a time.
fn flipped_proofs(proof: &proto::StateProof) -> Vec<proto::StateProof> {
    let mut out = Vec::new();
    if let Some(leaf) = &proof.leaf {
        for i in 0..leaf.key_hash.len() {
            let mut p = proof.clone();
            if let Some(l) = p.leaf.as_mut() {
                l.key_hash[i] ^= 1 << (i % 8);
            }
            out.push(p);
        }
        for i in 0..leaf.value_hash.len() {
            let mut p = proof.clone();
            if let Some(l) = p.leaf.as_mut() {
                l.value_hash[i] ^= 0x80 >> (i % 8);
            }
            out.push(p);
        }
    }
    for s in 0..proof.siblings.len() {
        for i in [0, 7, 31] {
            let mut p = proof.clone();
            p.siblings[s][i] ^= 0x01;
            out.push(p);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn values_and_absences_verify_and_tampering_fails(
        map in kv_map(40),
        absent in vec(vec(any::<u8>(), 24..30), 1..5),
    ) {
        let tree = tree_of(&map);
        let root = tree.root();
        for (key, value) in &map {
            let proof = proto::StateProof::from(&tree.prove(key));
            prop_assert_eq!(verify_value(&root, key, Some(value), &proof), Ok(()));
            // Wrong value, absence claim, wrong root.
            let mut other = value.clone();
            other.push(0);
            prop_assert!(verify_value(&root, key, Some(&other), &proof).is_err());
            prop_assert!(verify_value(&root, key, None, &proof).is_err());
            let mut bad_root = root;
            bad_root.0[5] ^= 4;
            let wrong_root = matches!(
                verify_value(&bad_root, key, Some(value), &proof),
                Err(StateProofError::Mismatch { reason: Mismatch::RootDiffers { .. }, .. })
            );
            prop_assert!(wrong_root);
            for flipped in flipped_proofs(&proof) {
                prop_assert!(verify_value(&root, key, Some(value), &flipped).is_err());
            }
            // A proof for another key proves nothing about this one.
            for (other_key, other_value) in map.iter().filter(|(k, _)| *k != key).take(3) {
                prop_assert!(verify_value(&root, other_key, Some(other_value), &proof).is_err());
                prop_assert!(verify_value(&root, other_key, Some(value), &proof).is_err());
                prop_assert!(verify_value(&root, other_key, None, &proof).is_err());
            }
        }
        for key in absent.iter().filter(|k| !map.contains_key(*k)) {
            let proof = proto::StateProof::from(&tree.prove(key));
            prop_assert_eq!(verify_value(&root, key, None, &proof), Ok(()));
            prop_assert!(verify_value(&root, key, Some(b"x"), &proof).is_err());
            for flipped in flipped_proofs(&proof) {
                prop_assert!(verify_value(&root, key, None, &flipped).is_err());
            }
            // An absence proof for a key does not prove a present key absent.
            if let Some((present, _)) = map.iter().next() {
                prop_assert!(verify_value(&root, present, None, &proof).is_err());
            }
        }
    }

    #[test]
    fn proof_conversion_round_trips(map in kv_map(20), key in vec(any::<u8>(), 0..24)) {
        let tree = tree_of(&map);
        let proof = tree.prove(&key);
        let wire = proto::StateProof::from(&proof);
        prop_assert_eq!(TreeProof::try_from(&wire), Ok(proof));
    }

    #[test]
    fn chunks_reassemble_the_state(map in kv_map(60), chunk_size in 1usize..9) {
        let tree = tree_of(&map);
        let root = tree.root();
        let count = tree.chunk_count(chunk_size);
        let mut previous: Option<ChunkSummary> = None;
        let mut collected = Vec::new();
        for index in 0..count {
            let chunk = tree.chunk(7, index as u32, chunk_size).expect("chunk in range");
            // Tampering with this chunk fails, with or without the right predecessor.
            for bad in tampered_chunks(&chunk) {
                prop_assert!(verify_chunk(&root, &bad, previous.as_ref()).is_err());
            }
            let summary = verify_chunk(&root, &chunk, previous.as_ref());
            prop_assert!(summary.is_ok(), "chunk {}: {:?}", index, summary);
            let summary = summary.expect("checked");
            prop_assert_eq!(summary.is_last(), index + 1 == count);
            prop_assert_eq!(summary.entries(), chunk.entries.len());
            // Replaying the same chunk, or skipping one, is refused.
            prop_assert!(verify_chunk(&root, &chunk, Some(&summary)).is_err());
            if let Some(next) = tree.chunk(7, index as u32 + 2, chunk_size) {
                prop_assert!(verify_chunk(&root, &next, Some(&summary)).is_err());
            }
            collected.extend(chunk.entries.iter().map(|e| (e.key.clone(), e.value.clone())));
            previous = Some(summary);
        }
        prop_assert!(tree.chunk(7, count as u32, chunk_size).is_none());
        let collected: BTreeMap<_, _> = collected.into_iter().collect();
        prop_assert_eq!(collected, map);
    }

    /// A peer that cuts the state differently (drops, shifts, or borrows the
    /// next chunk's entries) is caught even with a valid last-entry proof.
    #[test]
    fn gaps_between_chunks_are_caught(map in kv_map(40), chunk_size in 2usize..6, skip in 0usize..6) {
        let tree = tree_of(&map);
        prop_assume!(tree.len() > chunk_size + 1);
        let root = tree.root();
        let first = tree.chunk(0, 0, chunk_size).expect("chunk 0");
        let summary = verify_chunk(&root, &first, None).expect("chunk 0 verifies");
        let second = tree.chunk(0, 1, chunk_size).expect("chunk 1");
        // Drop one entry of chunk 1 (not the last, which carries the proof).
        let mut gap = second.clone();
        if gap.entries.len() > 1 {
            let at = skip % (gap.entries.len() - 1);
            gap.entries.remove(at);
            prop_assert!(verify_chunk(&root, &gap, Some(&summary)).is_err());
        }
        // Chunk 1 as if chunk 0 had not been sent: its first entries are not covered.
        let mut alone = second.clone();
        alone.index = 0;
        prop_assert!(verify_chunk(&root, &alone, None).is_err());
        // A chunk 0 missing its first entry.
        let mut headless = first.clone();
        headless.entries.remove(0);
        if !headless.entries.is_empty() {
            prop_assert!(verify_chunk(&root, &headless, None).is_err());
        }
    }
}

fn tampered_chunks(chunk: &proto::SnapshotChunk) -> Vec<proto::SnapshotChunk> {
    let mut out = Vec::new();
    for i in 0..chunk.entries.len() {
        let mut c = chunk.clone();
        c.entries[i].value.push(1);
        out.push(c);
        let mut c = chunk.clone();
        c.entries[i].key.push(1);
        out.push(c);
        if chunk.entries.len() > 1 {
            let mut c = chunk.clone();
            c.entries.remove(i);
            out.push(c);
        }
    }
    if chunk.entries.len() > 1 {
        let mut c = chunk.clone();
        c.entries.swap(0, 1);
        out.push(c);
    }
    let mut c = chunk.clone();
    c.entries.push(proto::StateEntry {
        key: b"extra".to_vec(),
        value: b"entry".to_vec(),
    });
    out.push(c);
    if let Some(proof) = &chunk.last_entry_proof {
        for flipped in flipped_proofs(proof) {
            let mut c = chunk.clone();
            c.last_entry_proof = Some(flipped);
            out.push(c);
        }
    }
    let mut c = chunk.clone();
    c.right_siblings.push(vec![0; 32]);
    out.push(c);
    let mut c = chunk.clone();
    c.index += 1;
    out.push(c);
    out
}

#[test]
fn empty_state() {
    let tree = MemoryTree::new();
    assert_eq!(tree.root(), EMPTY_ROOT);
    let proof = proto::StateProof::from(&tree.prove(b"k"));
    assert_eq!(proof, proto::StateProof::default());
    assert_eq!(verify_value(&EMPTY_ROOT, b"k", None, &proof), Ok(()));
    assert!(verify_value(&EMPTY_ROOT, b"k", Some(b""), &proof).is_err());
    let chunk = tree.chunk(3, 0, 16).expect("the empty state has chunk 0");
    assert!(chunk.entries.is_empty() && chunk.last_entry_proof.is_none());
    let summary = verify_chunk(&EMPTY_ROOT, &chunk, None).expect("empty chunk verifies");
    assert!(summary.is_last());
    assert_eq!(summary.last_key_hash(), None);
    assert!(tree.chunk(3, 1, 16).is_none());
    // An empty chunk does not prove a non-empty state empty.
    let mut one = MemoryTree::new();
    one.insert(b"a".to_vec(), b"1".to_vec());
    assert!(matches!(
        verify_chunk(&one.root(), &chunk, None),
        Err(StateProofError::Mismatch {
            reason: Mismatch::EmptyChunk,
            ..
        })
    ));
}

#[test]
fn single_key_root_is_its_leaf() {
    let mut tree = MemoryTree::new();
    tree.insert(b"only".to_vec(), b"v".to_vec());
    let expected = state::leaf_hash(&state::key_hash(b"only"), &state::value_hash(b"v"));
    assert_eq!(tree.root(), expected);
    assert!(tree.prove(b"only").siblings().is_empty());
}

#[test]
fn malformed_proofs_are_told_apart() {
    let mut tree = MemoryTree::new();
    for i in 0..10u8 {
        tree.insert(vec![i], vec![i; 3]);
    }
    let root = tree.root();
    let proof = proto::StateProof::from(&tree.prove(&[4]));
    assert!(!proof.siblings.is_empty());

    let mut short = proof.clone();
    short.siblings[0].pop();
    let err = verify_value(&root, &[4], Some(&[4; 3]), &short).unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert!(matches!(err, StateProofError::Malformed(Malformed::HashLength { .. })));

    let mut long = proof.clone();
    long.siblings = vec![vec![0; 32]; 257];
    let err = verify_value(&root, &[4], Some(&[4; 3]), &long).unwrap_err();
    assert!(matches!(
        err,
        StateProofError::Malformed(Malformed::TooManySiblings { .. })
    ));

    let mut bad_leaf = proof.clone();
    if let Some(leaf) = bad_leaf.leaf.as_mut() {
        leaf.value_hash.push(0);
    }
    assert!(
        verify_value(&root, &[4], Some(&[4; 3]), &bad_leaf)
            .unwrap_err()
            .is_malformed()
    );

    // Well-formed but wrong: not malformed, and the message names the root.
    let err = verify_value(&root, &[4], Some(&[5; 3]), &proof).unwrap_err();
    assert!(!err.is_malformed());
    assert!(err.to_string().contains(&root.to_hex()), "{err}");

    // Deeper than the tree: a proof with 256 siblings is well-formed but wrong.
    let mut deep = proof;
    deep.siblings = vec![vec![1; 32]; 256];
    assert!(
        !verify_value(&root, &[4], Some(&[4; 3]), &deep)
            .unwrap_err()
            .is_malformed()
    );
}

#[test]
fn chunk_limits() {
    let mut tree = MemoryTree::new();
    tree.insert(b"a".to_vec(), b"1".to_vec());
    assert!(tree.chunk(0, 0, 0).is_none());
    assert!(
        tree.chunk(0, 0, tiernet_core::wire::limits::MAX_CHUNK_ENTRIES + 1)
            .is_none()
    );
    assert!(tree.chunk(0, u32::MAX, 4096).is_none());
    let root = tree.root();
    let mut chunk = tree.chunk(0, 0, 1).expect("chunk 0");
    chunk.entries[0].value = vec![0; tiernet_core::wire::limits::MAX_STATE_VALUE + 1];
    assert!(verify_chunk(&root, &chunk, None).unwrap_err().is_malformed());
    let mut chunk = tree.chunk(0, 0, 1).expect("chunk 0");
    chunk.last_entry_proof = None;
    assert!(verify_chunk(&root, &chunk, None).unwrap_err().is_malformed());
    // Chunk 1 without a summary, and a summary for another root.
    let mut later = tree.chunk(0, 0, 1).expect("chunk 0");
    later.index = 1;
    assert!(matches!(
        verify_chunk(&root, &later, None),
        Err(StateProofError::OutOfSequence(_))
    ));
    let summary = verify_chunk(&root, &tree.chunk(0, 0, 1).expect("chunk 0"), None).expect("ok");
    assert!(summary.is_last());
    assert!(matches!(
        verify_chunk(&Hash32([1; 32]), &later, Some(&summary)),
        Err(StateProofError::OutOfSequence(_))
    ));
}

/// Pins the scheme: if this changes, every stored root and every light
/// client in the field disagrees with the new code.
#[test]
fn known_root() {
    let mut tree = MemoryTree::new();
    tree.insert(b"a".to_vec(), b"1".to_vec());
    tree.insert(b"b".to_vec(), b"2".to_vec());
    tree.insert(b"c".to_vec(), b"3".to_vec());
    assert_eq!(
        tree.root().to_hex(),
        "e328c623f18afce566c1f11d6634d2c623223fcc2c05e82096b492fa9fc03f46"
    );
}
