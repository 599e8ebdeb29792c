//! `stwo_decode` and `stwo_verify`: the `stwo/v1` proof decoder and the
//! STARK verifier entry point (issue 19) on arbitrary bytes.
//!
//! - `stwo_decode`: `codec::decode` with the fixture program's cap; oracle:
//!   what decodes re-encodes to the same bytes (the encoding is canonical),
//!   and nothing over the cap decodes.
//! - `stwo_verify`: `verify_posw` for the fixture program and seed; oracle:
//!   only the fixture proof itself may verify (any other bytes that verify
//!   would be a forgery, since STWO proofs here are deterministic for a
//!   statement only up to the PoW nonce, which is checked).
//!
//! Seeds: the fixture proof (`core/tests/data/stwo`, made by
//! `tiernet-prove fixtures`), so mutations start from a proof that reaches
//! the deepest checks.

use tiernet_core::identity::ZsiKeypair;
use tiernet_core::proof::program::ProgramSpec;
use tiernet_core::proof::stwo::{M31, codec, pcs_config, posw, verify_posw};
use tiernet_core::wire::NetworkId;

use crate::Seed;

const PROOF: &[u8] = include_bytes!("../../core/tests/data/stwo/posw_k6_fixture_a_epoch0.bin");
const SPEC: &str = include_str!("../../core/tests/data/stwo/spec.json");

struct Fixture {
    spec: ProgramSpec,
    seed: [M31; posw::WIDTH],
}

static FIXTURE: std::sync::LazyLock<Fixture> = std::sync::LazyLock::new(|| {
    let spec: ProgramSpec = serde_json::from_str(SPEC).expect("fixture spec");
    let keys = ZsiKeypair::from_seed(b"tiernet stwo fixture a").expect("fixture key");
    let network = NetworkId::new("devnet").expect("network");
    let seed = posw::seed(&network, &keys.zsi_id(), 0);
    Fixture { spec, seed }
});

/// The fixture proof.
pub fn seeds() -> Vec<Seed> {
    vec![("posw_k6", PROOF.to_vec())]
}

/// `stwo_decode`.
pub fn run_decode(data: &[u8]) {
    let f = &*FIXTURE;
    let cap = f.spec.max_proof_bytes;
    match codec::decode(data, cap, pcs_config(&f.spec)) {
        Ok(proof) => {
            assert!(data.len() <= cap, "decoded above the cap");
            assert_eq!(codec::encode(&proof), data, "decode is not canonical");
        }
        Err(error) => crate::debug(|| format!("stwo_decode: {error}")),
    }
}

/// `stwo_verify`.
pub fn run_verify(data: &[u8]) {
    let f = &*FIXTURE;
    match verify_posw(&f.spec, f.seed, data) {
        Ok(()) => assert_eq!(data, PROOF, "bytes other than the fixture proof verified"),
        Err(error) => crate::debug(|| format!("stwo_verify: {error}")),
    }
}
