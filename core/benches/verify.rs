//! The light client's verifier (`tiernet_core::verify`):
//! 1. median time of `verify_next` on one header with a commit certificate
//!    signed by all of 100 equal-power validators (target: ≤ 2 ms in wasm;
//!    `make bench-wasm` measures that), which checks the 67 signatures of a
//!    quorum, and of `verify_next_with(…, SignatureCheck::All)`, which
//!    checks all 100 (what the light client does before forwarding a
//!    gossiped block); and the one-off cost of a new trusted set: parsing
//!    it and verifying two headers with it, the second of which builds the
//!    set's key table;
//! 2. snapshot chunk verification throughput (`verify_snapshot_chunk`:
//!    manifest hash plus range proof against the root) over a state of
//!    100 000 entries cut in chunks of 1 000 entries, the node's default.
//!
//! Run: `cargo bench -p tiernet-core --bench verify`. Prints figures, asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use prost::Message;
use tiernet_core::chain::{BlockBuilder, GenesisAnchor, Parent, SignatureCheck, ValidatorSet, precommit_for};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::state::{ChunkSummary, MemoryTree, chunk_hash};
use tiernet_core::verify::{TrustedState, verify_next_with, verify_snapshot_chunk, verify_snapshot_manifest};
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash};

const VALIDATORS: u8 = 100;
const HEADER_SAMPLES: usize = 51;
const HEADER_REPEAT: u32 = 10;

const ENTRIES: u64 = 100_000;
const CHUNK_ENTRIES: usize = 1_000;
const CHUNK_ROUNDS: usize = 5;

fn fail(what: &str) -> ! {
    eprintln!("verify bench: {what}");
    std::process::exit(1)
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

fn header_and_commit() {
    let network = NetworkId::new("devnet").unwrap_or_else(|_| fail("network id"));
    let keys: Vec<(ZsiId, SigningKey)> = (1..=VALIDATORS)
        .map(|i| (ZsiId(Hash32([i; 32])), SigningKey::from_bytes(&[i; 32])))
        .collect();
    let mut validators: Vec<proto::Validator> = keys
        .iter()
        .map(|(id, key)| proto::Validator {
            zsi_id: id.as_bytes().to_vec(),
            consensus_key: key.verifying_key().to_bytes().to_vec(),
            power: 10,
        })
        .collect();
    validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.zsi_id.cmp(&b.zsi_id)));
    let set = ValidatorSet::new(proto::ValidatorSet { validators }).unwrap_or_else(|_| fail("validator set"));
    let anchor = GenesisAnchor::new(network.clone(), 1_700_000_000_000, set.hash());
    let trusted = TrustedState::from_anchor(anchor.clone(), set.clone()).unwrap_or_else(|_| fail("trusted state"));
    let header = BlockBuilder {
        parent: Parent::Genesis(&anchor),
        round: 0,
        time_ms: 1_700_000_001_000,
        proposer: keys[0].0,
        current: &set,
        next: &set,
        state_root: Hash32([7; 32]),
    }
    .header(&[])
    .unwrap_or_else(|_| fail("header"));
    let hash = header_hash(&header);
    let signatures = keys
        .iter()
        .map(|(id, key)| {
            let mut vote = precommit_for(&network, header.height, header.round, Some(&hash), id);
            vote.sign_with(key);
            proto::CommitSignature {
                validator: id.as_bytes().to_vec(),
                signature: vote.signature,
            }
        })
        .collect();
    let signed = proto::SignedHeader {
        commit: Some(proto::CommitCertificate {
            height: header.height,
            round: header.round,
            block_hash: hash.0.to_vec(),
            signatures,
        }),
        header: Some(header),
    };
    for (check, what) in [
        (SignatureCheck::Quorum, "verify_next (a quorum's signatures checked)"),
        (SignatureCheck::All, "verify_next_with(All) (every signature checked)"),
    ] {
        let times: Vec<f64> = (0..HEADER_SAMPLES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..HEADER_REPEAT {
                    if verify_next_with(black_box(&trusted), black_box(&signed), None, &network, check).is_err() {
                        fail("the header did not verify");
                    }
                }
                start.elapsed().as_secs_f64() / f64::from(HEADER_REPEAT)
            })
            .collect();
        println!(
            "verify: {what}, one header + commit signed by {VALIDATORS} equal-power validators: median {:.3} ms (target ≤ 2 ms in wasm)",
            median(times) * 1e3
        );
    }
    let times: Vec<f64> = (0..HEADER_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let set = ValidatorSet::from_proto(set.as_proto()).unwrap_or_else(|_| fail("validator set"));
            let fresh = TrustedState::from_anchor(anchor.clone(), set).unwrap_or_else(|_| fail("trusted state"));
            for _ in 0..2 {
                if verify_next_with(
                    black_box(&fresh),
                    black_box(&signed),
                    None,
                    &network,
                    SignatureCheck::Quorum,
                )
                .is_err()
                {
                    fail("the header did not verify");
                }
            }
            start.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "verify: a new trusted set of {VALIDATORS}: parsed, then two headers (the second builds its key table): median {:.3} ms",
        median(times) * 1e3
    );
}

fn key(i: u64) -> Vec<u8> {
    let mut key = b"id/".to_vec();
    key.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
    key
}

fn snapshot_chunks() {
    let start = Instant::now();
    let mut tree = MemoryTree::new();
    for i in 0..ENTRIES {
        tree.insert(key(i), vec![(i % 251) as u8; 64]);
    }
    let root = tree.root();
    let count = tree.chunk_count(CHUNK_ENTRIES);
    let chunks: Vec<proto::SnapshotChunk> = (0..count)
        .map(|i| {
            let index = u32::try_from(i).unwrap_or_else(|_| fail("chunk index"));
            tree.chunk(5, index, CHUNK_ENTRIES).unwrap_or_else(|| fail("chunk"))
        })
        .collect();
    let header = proto::Header {
        network_id: "devnet".into(),
        height: 5,
        state_root: root.0.to_vec(),
        ..Default::default()
    };
    let manifest = proto::SnapshotManifest {
        network_id: "devnet".into(),
        height: 5,
        state_root: root.0.to_vec(),
        chunk_count: u32::try_from(chunks.len()).unwrap_or_else(|_| fail("chunk count")),
        total_entries: ENTRIES,
        chunk_hashes: chunks.iter().map(|c| chunk_hash(c).0.to_vec()).collect(),
    };
    if verify_snapshot_manifest(&header, &manifest).is_err() {
        fail("the manifest did not verify");
    }
    let bytes: usize = chunks.iter().map(Message::encoded_len).sum();
    let prepared = start.elapsed().as_secs_f64();
    let times: Vec<f64> = (0..CHUNK_ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut previous: Option<ChunkSummary> = None;
            let mut entries = 0usize;
            for chunk in &chunks {
                match verify_snapshot_chunk(black_box(&manifest), black_box(chunk), previous.as_ref()) {
                    Ok(summary) => {
                        entries += summary.entries();
                        previous = Some(summary);
                    }
                    Err(e) => fail(&format!("chunk {} did not verify: {e}", chunk.index)),
                }
            }
            if entries as u64 != ENTRIES || !previous.is_some_and(|s| s.is_last()) {
                fail("the chunks did not cover the state");
            }
            start.elapsed().as_secs_f64()
        })
        .collect();
    let t = median(times);
    println!(
        "verify: verify_snapshot_chunk, {ENTRIES} entries in {count} chunks of {CHUNK_ENTRIES} ({:.1} MB encoded): median {:.1} ms for the whole state = {:.0} entries/s, {:.1} MB/s ({:.2} ms per chunk; state and chunks built in {prepared:.1} s)",
        bytes as f64 / 1e6,
        t * 1e3,
        ENTRIES as f64 / t,
        bytes as f64 / 1e6 / t,
        t * 1e3 / count as f64,
    );
}

fn main() {
    header_and_commit();
    snapshot_chunks();
}
