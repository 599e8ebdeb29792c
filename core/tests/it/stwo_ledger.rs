//! Issue 19 at the ledger: an included `stwo/v1` registration adds its
//! subject to the registry (TL1); a second registration of the same
//! identity in one block is skipped by `propose` and refuses the block in
//! `apply`. Proofs from `tiernet-prove fixtures` (core/tests/data/stwo).
#![cfg(feature = "stwo")]

use prost::Message;
use tiernet_core::chain::ledger::{ExecContext, Ledger, LedgerError};
use tiernet_core::chain::{BlockBuilder, GenesisAnchor, Parent};
use tiernet_core::genesis::{ConsensusParams, Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::identity::registry::IdentityRegistry;
use tiernet_core::proof::VerifierRegistry;
use tiernet_core::proof::program::ProgramSpec;
use tiernet_core::proof::stwo::{StwoVerifier, registration_statement};
use tiernet_core::tier::{Tier, tier_of};
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::SignedMessage;

const PROOF: &[u8] = include_bytes!("../data/stwo/posw_k6_fixture_a_epoch0.bin");
const SPEC: &str = include_str!("../data/stwo/spec.json");
const GENESIS_MS: u64 = 1_700_000_000_000;

fn spec() -> ProgramSpec {
    serde_json::from_str(SPEC).unwrap()
}

fn world() -> (Genesis, ZsiKeypair, VerifierRegistry) {
    let validator = ZsiKeypair::from_seed(b"stwo-ledger validator").unwrap();
    let mut identity = GenesisIdentity::new(
        "v0",
        &validator.public(),
        ReputationFile {
            uptime_minutes: 1_440,
            score: 100,
            ..Default::default()
        },
    );
    identity.validator = Some(GenesisValidator {
        consensus_key: hex::encode(validator.public().identity_key.as_bytes()),
        power: 10,
    });
    let genesis = Genesis::from_file(GenesisFile {
        stark_programs: vec![spec()],
        network_id: "devnet".into(),
        genesis_time_ms: GENESIS_MS,
        tiers: Default::default(),
        consensus: ConsensusParams::default(),
        uptime: Default::default(),
        identities: vec![identity],
    })
    .unwrap();
    let mut verifiers = VerifierRegistry::with_builtins();
    verifiers.register(Box::new(StwoVerifier::new(genesis.file.stark_programs.clone())));
    (genesis, validator, verifiers)
}

fn registration(height: u64) -> proto::ProofEnvelope {
    let keys = ZsiKeypair::from_seed(b"tiernet stwo fixture a").unwrap();
    let mut envelope = proto::ProofEnvelope {
        kind: "stwo/v1".into(),
        statement: registration_statement(&keys.public(), 0).encode_to_vec(),
        proof: PROOF.to_vec(),
        submitter: keys.zsi_id().as_bytes().to_vec(),
        height,
        signature: vec![],
    };
    envelope.sign_with(keys.identity_key());
    envelope
}

#[test]
fn an_included_registration_makes_its_subject_tl1_and_only_once_per_block() {
    let (genesis, validator, verifiers) = world();
    let ctx = ExecContext {
        verifiers: &verifiers,
        freshness_blocks: 10,
    };
    let anchor = GenesisAnchor::from_genesis(&genesis);
    let ledger = Ledger::genesis(&genesis).unwrap();
    let subject = ZsiKeypair::from_seed(b"tiernet stwo fixture a").unwrap().zsi_id();
    assert!(ledger.registry().lookup(&subject).is_none());

    // Two registrations of the same identity (different envelopes): the
    // second is skipped.
    let body = ledger
        .propose(&ctx, &[registration(0), registration(1)], None, &[])
        .unwrap();
    assert_eq!(body.proofs.len(), 1);
    assert_eq!(body.skipped.len(), 1);
    assert!(
        body.skipped[0].1.contains("registers an identity"),
        "{:?}",
        body.skipped
    );

    // A block that carries both (and both events) is refused.
    let mut both = body.clone();
    both.proofs.push(registration(1));
    both.reputation_events.push(both.reputation_events[0].clone());
    let builder = BlockBuilder {
        parent: Parent::Genesis(&anchor),
        round: 0,
        time_ms: GENESIS_MS + 1_000,
        proposer: validator.zsi_id(),
        current: ledger.validators(),
        next: &both.next_validators,
        state_root: both.state_root,
    };
    let block = builder.block(both.proofs, both.reputation_events).unwrap();
    let error = ledger.apply(&ctx, &block).unwrap_err();
    assert!(matches!(error, LedgerError::Registration { .. }), "{error}");

    // The proposed block applies: the subject is registered, TL1.
    let block = ledger
        .build_block(
            &ctx,
            Parent::Genesis(&anchor),
            0,
            GENESIS_MS + 1_000,
            validator.zsi_id(),
            body,
        )
        .unwrap();
    let next = ledger.apply(&ctx, &block).unwrap();
    let registered = next.registry().lookup(&subject).expect("registered");
    assert_eq!(tier_of(Some(&registered.reputation), next.thresholds()), Tier::TL1);

    // Replayed later (a new envelope, same proof): refused, the identity is
    // registered.
    let refused = verifiers.check_envelope(
        &registration(2),
        &tiernet_core::proof::ProofContext {
            network: &genesis.network,
            registry: &(next.registry() as &dyn IdentityRegistry),
            thresholds: next.thresholds(),
            height: 1,
            freshness_blocks: 10,
            block_time_ms: 1_000,
        },
    );
    assert!(refused.unwrap_err().to_string().contains("already registered"));
}
