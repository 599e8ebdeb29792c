//! `stwo/v1` tests against proofs made by `tiernet-prove fixtures`
//! (core/tests/data/stwo; core itself has no prover: STWO's needs nightly).
//! Identity "fixture a" (`ZsiKeypair::from_seed(b"tiernet stwo fixture a")`),
//! network `devnet`, epoch 0; program: `spec.json` (2^6 iterations).

use prost::Message;

use super::*;
use crate::identity::ZsiKeypair;
use crate::identity::registry::MemoryRegistry;
use crate::proof::VerifierRegistry;
use crate::tier::TierThresholds;
use crate::wire::sign::SignedMessage;

const PROOF_K6: &[u8] = include_bytes!("../../../tests/data/stwo/posw_k6_fixture_a_epoch0.bin");
const PROOF_K5: &[u8] = include_bytes!("../../../tests/data/stwo/posw_k5_fixture_a_epoch0.bin");
const SPEC: &str = include_str!("../../../tests/data/stwo/spec.json");

fn spec() -> ProgramSpec {
    serde_json::from_str(SPEC).unwrap()
}

fn net() -> NetworkId {
    NetworkId::new("devnet").unwrap()
}

fn keys_a() -> ZsiKeypair {
    ZsiKeypair::from_seed(b"tiernet stwo fixture a").unwrap()
}

fn seed_a(epoch: u64) -> [M31; posw::WIDTH] {
    posw::seed(&net(), &keys_a().zsi_id(), epoch)
}

#[test]
fn a_valid_proof_verifies() {
    assert_eq!(spec().check(), Ok(()));
    assert_eq!(verify_posw(&spec(), seed_a(0), PROOF_K6), Ok(()));
}

#[test]
fn a_proof_bound_to_another_identity_is_refused() {
    let other = ZsiKeypair::from_seed(b"someone else").unwrap();
    let seed = posw::seed(&net(), &other.zsi_id(), 0);
    assert!(matches!(
        verify_posw(&spec(), seed, PROOF_K6),
        Err(StarkError::Verify(_))
    ));
}

#[test]
fn a_proof_bound_to_another_epoch_or_network_is_refused() {
    assert!(matches!(
        verify_posw(&spec(), seed_a(1), PROOF_K6),
        Err(StarkError::Verify(_))
    ));
    let seed = posw::seed(&NetworkId::new("testnet").unwrap(), &keys_a().zsi_id(), 0);
    assert!(matches!(
        verify_posw(&spec(), seed, PROOF_K6),
        Err(StarkError::Verify(_))
    ));
}

#[test]
fn a_proof_of_fewer_iterations_is_refused() {
    let result = verify_posw(&spec(), seed_a(0), PROOF_K5);
    assert!(result.is_err(), "{result:?}");
    // And it is a proof of 2^5 iterations, valid for a 2^5 program.
    let short = ProgramSpec {
        log_iterations: 5,
        ..spec()
    };
    assert_eq!(verify_posw(&short, seed_a(0), PROOF_K5), Ok(()));
}

#[test]
fn forged_proofs_are_refused_never_accepted_nor_panicking() {
    // Flip one bit at positions spread over the whole proof: headers,
    // commitments, sampled values, decommitments, FRI, PoW nonce.
    let step = PROOF_K6.len() / 97;
    for at in (0..PROOF_K6.len()).step_by(step.max(1)) {
        let mut forged = PROOF_K6.to_vec();
        forged[at] ^= 0x01;
        assert!(
            verify_posw(&spec(), seed_a(0), &forged).is_err(),
            "bit flip at {at} accepted"
        );
    }
}

#[test]
fn truncated_proofs_are_refused_by_the_decoder() {
    for len in [0, 3, 4, 5, 100, PROOF_K6.len() / 2, PROOF_K6.len() - 1] {
        let result = verify_posw(&spec(), seed_a(0), &PROOF_K6[..len]);
        assert!(
            matches!(
                result,
                Err(StarkError::Decode(
                    codec::DecodeError::Truncated { .. } | codec::DecodeError::BadMagic
                ))
            ),
            "{len}: {result:?}"
        );
    }
}

#[test]
fn oversized_proofs_are_refused_before_decoding() {
    let tight = ProgramSpec {
        max_proof_bytes: PROOF_K6.len() - 1,
        ..spec()
    };
    assert_eq!(
        verify_posw(&tight, seed_a(0), PROOF_K6),
        Err(StarkError::Oversized {
            len: PROOF_K6.len(),
            max: PROOF_K6.len() - 1
        })
    );
    // Trailing bytes are refused too (no slack for smuggled data).
    let mut long = PROOF_K6.to_vec();
    long.push(0);
    assert_eq!(
        verify_posw(&spec(), seed_a(0), &long),
        Err(StarkError::Decode(codec::DecodeError::Trailing(1)))
    );
}

#[test]
fn lying_counts_do_not_allocate() {
    // Magic, one commitment tree count of 0, then a sampled-values tree
    // claiming u32::MAX columns: refused as truncated without allocating.
    let mut bytes = b"STW1".to_vec();
    bytes.push(0);
    bytes.push(1);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        codec::decode(&bytes, 1 << 20, pcs_config(&spec())),
        Err(codec::DecodeError::Truncated { .. })
    ));
}

#[test]
fn the_codec_round_trips() {
    let proof = codec::decode(PROOF_K6, spec().max_proof_bytes, pcs_config(&spec())).unwrap();
    assert_eq!(codec::encode(&proof), PROOF_K6);
}

// ───────────────────────────── envelope level ─────────────────────────────

fn envelope(keys: &ZsiKeypair, statement: &proto::StarkStatement, proof: &[u8], height: u64) -> proto::ProofEnvelope {
    let mut envelope = proto::ProofEnvelope {
        kind: KIND.into(),
        statement: statement.encode_to_vec(),
        proof: proof.to_vec(),
        submitter: keys.zsi_id().as_bytes().to_vec(),
        height,
        signature: vec![],
    };
    envelope.sign_with(keys.identity_key());
    envelope
}

fn check(
    registry: &MemoryRegistry,
    envelope: &proto::ProofEnvelope,
) -> Result<crate::proof::VerifiedProof, ProofError> {
    let mut verifiers = VerifierRegistry::with_builtins();
    verifiers.register(Box::new(StwoVerifier::new(vec![spec()])));
    let network = net();
    let registry: &dyn IdentityRegistry = registry;
    let ctx = ProofContext {
        network: &network,
        registry: &registry,
        thresholds: &TierThresholds::default(),
        height: envelope.height,
        freshness_blocks: 10,
        block_time_ms: 1_000,
    };
    verifiers.check_envelope(envelope, &ctx)
}

fn registered(keys: &ZsiKeypair) -> MemoryRegistry {
    let mut registry = MemoryRegistry::new();
    let public = keys.public();
    registry
        .register(&proto::IdentityRecord {
            zsi_id: public.zsi_id().as_bytes().to_vec(),
            identity_key: public.identity_key.to_bytes().to_vec(),
            vrf_key: public.vrf_key.to_bytes().to_vec(),
            reputation: None,
        })
        .unwrap();
    registry
}

#[test]
fn an_unregistered_identity_registers_itself_with_a_valid_proof() {
    let keys = keys_a();
    let statement = registration_statement(&keys.public(), 0);
    let verified = check(&MemoryRegistry::new(), &envelope(&keys, &statement, PROOF_K6, 5)).unwrap();
    assert_eq!(
        verified.effect,
        ProofEffect::Register {
            subject: keys.zsi_id(),
            identity_key: keys.public().identity_key.to_bytes(),
            vrf_key: keys.public().vrf_key.to_bytes(),
        }
    );
}

#[test]
fn a_registration_for_a_registered_identity_is_refused() {
    let keys = keys_a();
    let statement = registration_statement(&keys.public(), 0);
    let error = check(&registered(&keys), &envelope(&keys, &statement, PROOF_K6, 5)).unwrap_err();
    assert!(error.to_string().contains("already registered"), "{error}");
}

#[test]
fn a_replayed_registration_is_refused_once_registered() {
    // The same proof in a new envelope (another height, so another content
    // id) after the identity was registered by the first.
    let keys = keys_a();
    let statement = registration_statement(&keys.public(), 0);
    assert!(check(&MemoryRegistry::new(), &envelope(&keys, &statement, PROOF_K6, 5)).is_ok());
    let error = check(&registered(&keys), &envelope(&keys, &statement, PROOF_K6, 7)).unwrap_err();
    assert!(error.to_string().contains("already registered"), "{error}");
    assert!(!error.is_fault());
}

#[test]
fn a_registration_signed_by_someone_else_is_refused() {
    // Mallory takes fixture a's statement and proof and signs as herself.
    let keys = keys_a();
    let mallory = ZsiKeypair::from_seed(b"mallory").unwrap();
    let statement = registration_statement(&keys.public(), 0);
    let mut env = envelope(&keys, &statement, PROOF_K6, 5);
    env.sign_with(mallory.identity_key());
    assert_eq!(
        check(&MemoryRegistry::new(), &env).unwrap_err(),
        ProofError::BadSignature
    );
    // Or names herself as submitter: the statement's subject is not hers.
    let env = envelope(&mallory, &statement, PROOF_K6, 5);
    assert!(matches!(
        check(&MemoryRegistry::new(), &env),
        Err(ProofError::UnknownSubmitter(_))
    ));
}

#[test]
fn a_proof_for_another_identity_is_refused() {
    // Bob claims fixture a's proof for himself (his own statement).
    let bob = ZsiKeypair::from_seed(b"bob").unwrap();
    let statement = registration_statement(&bob.public(), 0);
    let error = check(&MemoryRegistry::new(), &envelope(&bob, &statement, PROOF_K6, 5)).unwrap_err();
    assert!(error.is_fault(), "{error}");
    assert!(error.to_string().contains("STARK verification failed"), "{error}");
}

#[test]
fn a_proof_from_an_old_epoch_is_refused() {
    let keys = keys_a();
    let statement = registration_statement(&keys.public(), 0);
    // Epoch 0 spans heights 0..3600; epoch 1 still accepts it (grace), epoch 2 not.
    assert!(check(&MemoryRegistry::new(), &envelope(&keys, &statement, PROOF_K6, 3_650)).is_ok());
    let error = check(&MemoryRegistry::new(), &envelope(&keys, &statement, PROOF_K6, 7_300)).unwrap_err();
    assert!(error.to_string().contains("epoch 0, current is 2"), "{error}");
}

#[test]
fn other_kinds_still_need_a_registered_submitter() {
    let keys = keys_a();
    let mut env = envelope(&keys, &registration_statement(&keys.public(), 0), PROOF_K6, 5);
    env.kind = crate::proof::uptime::KIND.into();
    env.sign_with(keys.identity_key());
    assert!(matches!(
        check(&MemoryRegistry::new(), &env),
        Err(ProofError::UnknownSubmitter(_))
    ));
}

#[test]
fn an_unknown_program_is_refused() {
    let keys = keys_a();
    let mut statement = registration_statement(&keys.public(), 0);
    statement.program = "tiernet/other/v9".into();
    let error = check(&MemoryRegistry::new(), &envelope(&keys, &statement, PROOF_K6, 5)).unwrap_err();
    // Unknown program: no registration key either, so the submitter is unknown.
    assert!(matches!(error, ProofError::UnknownSubmitter(_)), "{error}");
}

#[test]
fn a_registration_fits_a_sync_request() {
    // The heaviest proof the default program allows still fits the
    // request-response cap (MAX_SYNC_REQUEST), with envelope and statement.
    let keys = keys_a();
    let mut env = envelope(&keys, &registration_statement(&keys.public(), 0), PROOF_K6, 5);
    env.proof = vec![0xAB; ProgramSpec::posw_default().max_proof_bytes];
    let request = proto::SyncRequest {
        kind: Some(proto::sync_request::Kind::SubmitProof(proto::SubmitProofRequest {
            envelope: Some(Box::new(env)),
        })),
    };
    let bytes = request.encode_to_vec();
    assert!(bytes.len() <= crate::wire::limits::MAX_SYNC_REQUEST, "{}", bytes.len());
    let decoded: proto::SyncRequest = crate::wire::decode(&bytes).unwrap();
    assert_eq!(decoded, request);
}
