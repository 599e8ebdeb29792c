//! The light client's verification cost in a browser: `tiernet_core::verify`
//! compiled to wasm32 and timed in headless Chromium by wasm-bindgen-test's
//! criterion port. The native counterparts are `cargo bench -p tiernet-core
//! --bench verify` and `--bench state_proof`.
//!
//! 1. `verify_next` on one header whose commit is signed by all of 100
//!    equal-power validators (target ≤ 2 ms in wasm): the 67 signatures of
//!    a quorum are checked; and, for comparison, `verify_next_with(…,
//!    SignatureCheck::All)` on the same header, which checks all 100 (what
//!    the client does before it forwards a gossiped block); and the one-off
//!    cost of a new trusted set: parsing it and verifying two headers with
//!    it, the second of which builds the set's key table;
//! 2. one state value proof in a state of 100 000 keys (target ≤ 1 ms).
//!
//! Run: `make bench-wasm` (scripts/wasm-cargo bench with the test runner).

/// The benchmarks are exported to the runner; `main` only exists because
/// a bench target must have one.
fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("tiernet-wasm's verify bench runs in a browser: make bench-wasm");
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::hint::black_box;

    use tiernet_core::chain::{SignatureCheck, ValidatorSet};
    use tiernet_core::state::{MemoryTree, verify_value};
    use tiernet_core::verify::{TrustedState, verify_next, verify_next_with};
    use tiernet_core::wire::proto;
    use tiernet_light::testing::TestChain;
    use wasm_bindgen_test::{Criterion, wasm_bindgen_bench, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    const VALIDATORS: u8 = 100;
    const KEYS: u64 = 100_000;

    #[wasm_bindgen_bench]
    fn header_and_commit_100_validators(c: &mut Criterion) {
        let chain = TestChain::with_validators(VALIDATORS, 1);
        let trusted = TrustedState::from_anchor(chain.anchor.clone(), chain.set.clone()).unwrap();
        let block = chain.at(1);
        let signed = proto::SignedHeader {
            header: block.block.as_ref().and_then(|b| b.header.clone()),
            commit: block.commit.clone(),
        };
        assert_eq!(
            signed.commit.as_ref().unwrap().signatures.len(),
            usize::from(VALIDATORS)
        );
        c.bench_function("verify_next: one header + commit signed by 100 validators", |b| {
            b.iter(|| verify_next(black_box(&trusted), black_box(&signed), None, &chain.network).unwrap())
        });
        c.bench_function("verify_next_with(All): the same, every signature checked", |b| {
            b.iter(|| {
                verify_next_with(
                    black_box(&trusted),
                    black_box(&signed),
                    None,
                    &chain.network,
                    SignatureCheck::All,
                )
                .unwrap()
            })
        });
        c.bench_function(
            "a new trusted set: parsed, then two headers (the second builds its key table)",
            |b| {
                b.iter(|| {
                    let set = ValidatorSet::from_proto(chain.set.as_proto()).unwrap();
                    let fresh = TrustedState::from_anchor(chain.anchor.clone(), set).unwrap();
                    verify_next(black_box(&fresh), black_box(&signed), None, &chain.network).unwrap();
                    verify_next(black_box(&fresh), black_box(&signed), None, &chain.network).unwrap()
                })
            },
        );
    }

    fn key(i: u64) -> Vec<u8> {
        let mut key = b"id/".to_vec();
        key.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
        key
    }

    #[wasm_bindgen_bench]
    fn state_value_proof_100k_keys(c: &mut Criterion) {
        let mut tree = MemoryTree::new();
        for i in 0..KEYS {
            tree.insert(key(i), vec![(i % 251) as u8; 64]);
        }
        let root = tree.root();
        let k = key(KEYS / 2);
        let value = tree.get(&k).map(<[u8]>::to_vec).unwrap();
        let proof = proto::StateProof::from(&tree.prove(&k));
        c.bench_function("verify_value: one state value proof, 100k keys", |b| {
            b.iter(|| {
                verify_value(
                    black_box(&root),
                    black_box(&k),
                    Some(black_box(&value)),
                    black_box(&proof),
                )
                .unwrap()
            })
        });
    }
}
