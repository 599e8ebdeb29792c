//! The proof pipeline's pure checks: shared envelope rules and `uptime/v1`.

use prost::Message;
use tiernet_core::genesis::{Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::identity::registry::IdentityRegistry;
use tiernet_core::proof::{ProofContext, ProofEffect, ProofError, VerifierRegistry};
use tiernet_core::wire::sign::{SignedMessage, sign_uptime_witness};
use tiernet_core::wire::{NetworkId, proto};

struct World {
    genesis: Genesis,
    network: NetworkId,
    subject: ZsiKeypair,
    witnesses: Vec<ZsiKeypair>,
    slashed: ZsiKeypair,
    stranger: ZsiKeypair,
}

fn key(name: &str) -> ZsiKeypair {
    ZsiKeypair::from_seed(name.as_bytes()).unwrap()
}

fn world() -> World {
    let subject = key("subject");
    let witnesses = vec![key("w1"), key("w2"), key("w3")];
    let slashed = key("slashed");
    let validator = key("validator");
    let member = |k: &ZsiKeypair, name: &str, slashed: bool| {
        GenesisIdentity::new(
            name,
            &k.public(),
            ReputationFile {
                slashed,
                ..Default::default()
            },
        )
    };
    let mut identities = vec![member(&subject, "subject", false), member(&slashed, "slashed", true)];
    for (i, w) in witnesses.iter().enumerate() {
        identities.push(member(w, &format!("w{i}"), false));
    }
    let mut v = member(&validator, "validator", false);
    v.validator = Some(GenesisValidator {
        consensus_key: hex::encode(validator.public().identity_key.as_bytes()),
        power: 1,
    });
    identities.push(v);
    let genesis = Genesis::from_file(GenesisFile {
        stark_programs: Vec::new(),
        network_id: "devnet".into(),
        genesis_time_ms: 0,
        tiers: Default::default(),
        consensus: Default::default(),
        uptime: Default::default(),
        identities,
    })
    .unwrap();
    World {
        genesis,
        network: NetworkId::new("devnet").unwrap(),
        subject,
        witnesses,
        slashed,
        stranger: key("stranger"),
    }
}

fn claim(w: &World, subject: &ZsiKeypair, from: u64, to: u64, heartbeats: u32) -> proto::UptimeClaim {
    proto::UptimeClaim {
        network_id: w.network.to_string(),
        subject: subject.zsi_id().as_bytes().to_vec(),
        from_height: from,
        to_height: to,
        heartbeats,
    }
}

fn envelope(
    submitter: &ZsiKeypair,
    claim: &proto::UptimeClaim,
    witnesses: &[(&ZsiKeypair, u32)],
) -> proto::ProofEnvelope {
    let proof = proto::UptimeProof {
        witnesses: witnesses
            .iter()
            .map(|(k, seen)| sign_uptime_witness(claim, k.zsi_id().as_bytes(), *seen, k.identity_key()))
            .collect(),
    };
    let mut envelope = proto::ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: claim.encode_to_vec(),
        proof: proof.encode_to_vec(),
        submitter: submitter.zsi_id().as_bytes().to_vec(),
        height: 9_900,
        signature: vec![],
    };
    envelope.sign_with(submitter.identity_key());
    envelope
}

fn check(w: &World, envelope: &proto::ProofEnvelope) -> Result<ProofEffect, ProofError> {
    let registry: &dyn IdentityRegistry = &w.genesis.registry;
    let ctx = ProofContext {
        network: &w.network,
        registry: &registry,
        thresholds: &w.genesis.thresholds,
        height: 10_000,
        freshness_blocks: 200,
        block_time_ms: 1_000,
    };
    VerifierRegistry::with_builtins()
        .check_envelope(envelope, &ctx)
        .map(|v| v.effect)
}

fn reason(result: Result<ProofEffect, ProofError>) -> String {
    match result {
        Ok(effect) => panic!("expected a rejection, got {effect:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_witnessed_uptime_claim_credits_the_vouched_share_of_its_window() {
    let w = world();
    // 600 one-second blocks = 10 minutes; 61 heartbeats fit at one per 10 s.
    let c = claim(&w, &w.subject, 9_301, 9_900, 61);
    let e = envelope(&w.subject, &c, &[(&w.witnesses[0], 61), (&w.witnesses[1], 58)]);
    let effect = check(&w, &e).unwrap();
    // The second-best witness vouches for 58 of 61: 600 s × 58/61 = 570 s → 9 minutes.
    assert_eq!(
        effect,
        ProofEffect::UptimeCredit {
            subject: w.subject.zsi_id(),
            minutes: 9,
            from_height: 9_301,
            to_height: 9_900,
        }
    );
    let event = effect.reputation_event().unwrap();
    assert_eq!(event.kind, Some(proto::reputation_event::Kind::UptimeMinutes(9)));
    // A third witness only helps if it raises the second-best count.
    let e = envelope(
        &w.subject,
        &c,
        &[(&w.witnesses[0], 61), (&w.witnesses[1], 30), (&w.witnesses[2], 61)],
    );
    assert_eq!(
        check(&w, &e).unwrap(),
        ProofEffect::UptimeCredit {
            subject: w.subject.zsi_id(),
            minutes: 10,
            from_height: 9_301,
            to_height: 9_900,
        }
    );
}

#[test]
fn shared_envelope_rules() {
    let w = world();
    let c = claim(&w, &w.subject, 9_301, 9_900, 61);
    let good = envelope(&w.subject, &c, &[(&w.witnesses[0], 61), (&w.witnesses[1], 61)]);
    assert!(check(&w, &good).is_ok());

    let mut unknown_kind = good.clone();
    unknown_kind.kind = "zk/v9".into();
    unknown_kind.sign_with(w.subject.identity_key());
    assert!(reason(check(&w, &unknown_kind)).contains("no verifier"));

    let c_stranger = claim(&w, &w.stranger, 9_301, 9_900, 61);
    let by_stranger = envelope(
        &w.stranger,
        &c_stranger,
        &[(&w.witnesses[0], 61), (&w.witnesses[1], 61)],
    );
    assert!(reason(check(&w, &by_stranger)).contains("not registered"));

    let c_slashed = claim(&w, &w.slashed, 9_301, 9_900, 61);
    let by_slashed = envelope(&w.slashed, &c_slashed, &[(&w.witnesses[0], 61), (&w.witnesses[1], 61)]);
    assert!(reason(check(&w, &by_slashed)).contains("proofs need TL1"));

    let mut forged = good.clone();
    forged.signature[0] ^= 1;
    assert_eq!(check(&w, &forged), Err(ProofError::BadSignature));

    let mut stale = good.clone();
    stale.height = 9_700;
    stale.sign_with(w.subject.identity_key());
    assert_eq!(check(&w, &stale).unwrap_err().label(), "stale");
}

#[test]
fn uptime_rules_each_refuse() {
    let w = world();
    let (w1, w2, w3) = (&w.witnesses[0], &w.witnesses[1], &w.witnesses[2]);
    let cases: Vec<(&str, proto::ProofEnvelope)> = vec![
        ("network", {
            let mut c = claim(&w, &w.subject, 9_301, 9_900, 61);
            c.network_id = "other".into();
            envelope(&w.subject, &c, &[(w1, 61), (w2, 61)])
        }),
        ("not the submitter", {
            let c = claim(&w, w3, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61), (w2, 61)])
        }),
        (
            "after the current height",
            envelope(
                &w.subject,
                &claim(&w, &w.subject, 9_901, 10_001, 11),
                &[(w1, 11), (w2, 11)],
            ),
        ),
        (
            // An old window: uptime cannot be banked and claimed later.
            "more than 3600 blocks before the current height",
            envelope(
                &w.subject,
                &claim(&w, &w.subject, 6_000, 6_399, 41),
                &[(w1, 41), (w2, 41)],
            ),
        ),
        (
            "window of",
            envelope(&w.subject, &claim(&w, &w.subject, 1, 10_000, 11), &[(w1, 11), (w2, 11)]),
        ),
        (
            "heartbeats claimed",
            envelope(
                &w.subject,
                &claim(&w, &w.subject, 9_301, 9_900, 62),
                &[(w1, 61), (w2, 61)],
            ),
        ),
        ("cannot witness itself", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61), (&w.subject, 61)])
        }),
        ("appears twice", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61), (w1, 61)])
        }),
        ("is not registered", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61), (&w.stranger, 61)])
        }),
        ("below TL1", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61), (&w.slashed, 61)])
        }),
        ("more heartbeats than claimed", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 40);
            envelope(&w.subject, &c, &[(w1, 41), (w2, 40)])
        }),
        ("signature does not verify", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            let mut e = envelope(&w.subject, &c, &[(w1, 61), (w2, 61)]);
            let mut proof = proto::UptimeProof::decode(e.proof.as_slice()).unwrap();
            proof.witnesses[1].heartbeats_seen = 60; // no longer what w2 signed
            e.proof = proof.encode_to_vec();
            e.sign_with(w.subject.identity_key());
            e
        }),
        // The window is part of what every witness signed: countersignatures
        // of one window cannot be moved to a later (not yet credited) one.
        ("signature does not verify", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            let mut e = envelope(&w.subject, &c, &[(w1, 61), (w2, 61)]);
            let moved = claim(&w, &w.subject, 9_302, 9_901, 61);
            e.statement = moved.encode_to_vec();
            e.height = 9_901;
            e.sign_with(w.subject.identity_key());
            e
        }),
        ("at least 2 needed", {
            let c = claim(&w, &w.subject, 9_301, 9_900, 61);
            envelope(&w.subject, &c, &[(w1, 61)])
        }),
        ("not an UptimeClaim", {
            let mut e = envelope(
                &w.subject,
                &claim(&w, &w.subject, 9_301, 9_900, 61),
                &[(w1, 61), (w2, 61)],
            );
            e.statement = vec![0xff, 0xff];
            e.sign_with(w.subject.identity_key());
            e
        }),
    ];
    for (expected, e) in cases {
        let why = reason(check(&w, &e));
        assert!(why.contains(expected), "expected {expected:?}, got {why:?}");
    }
}
