//! Median time to verify one state value proof (wire `StateProof`, as a
//! light client receives it) in a state of 100 000 keys. DESIGN.md target:
//! ≤ 1 ms in wasm. Run: `cargo bench -p tiernet-core --bench state_proof`.

use std::hint::black_box;
use std::time::Instant;

use tiernet_core::state::{MemoryTree, verify_value};
use tiernet_core::wire::proto;

const KEYS: u64 = 100_000;
const SAMPLES: u64 = 51;
const REPEAT: u32 = 200;

fn key(i: u64) -> Vec<u8> {
    let mut key = b"id/".to_vec();
    key.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
    key
}

fn main() {
    let mut tree = MemoryTree::new();
    for i in 0..KEYS {
        tree.insert(key(i), vec![(i % 251) as u8; 64]);
    }
    let root = tree.root();
    let cases: Vec<(Vec<u8>, Vec<u8>, proto::StateProof)> = (0..SAMPLES)
        .map(|s| {
            let k = key(s * (KEYS / SAMPLES));
            let v = tree.get(&k).map(<[u8]>::to_vec).unwrap_or_default();
            let proof = proto::StateProof::from(&tree.prove(&k));
            (k, v, proof)
        })
        .collect();
    let mut times: Vec<f64> = cases
        .iter()
        .map(|(k, v, proof)| {
            let start = Instant::now();
            for _ in 0..REPEAT {
                if verify_value(black_box(&root), black_box(k), Some(black_box(v)), black_box(proof)).is_err() {
                    eprintln!("state_proof: a proof failed to verify");
                    std::process::exit(1);
                }
            }
            start.elapsed().as_secs_f64() / f64::from(REPEAT)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let depth: f64 = cases.iter().map(|(_, _, p)| p.siblings.len() as f64).sum::<f64>() / cases.len() as f64;
    println!(
        "state_proof: verify one value proof, {KEYS} keys, mean depth {depth:.1} siblings: median {:.2} µs (target ≤ 1000 µs in wasm)",
        median * 1e6
    );
}
