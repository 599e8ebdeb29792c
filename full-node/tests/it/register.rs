//! Issue 19 with real processes: an identity that is not in genesis
//! registers itself with a STWO proof of sequential work (`tiernet-node
//! register`), becomes TL1 on every validator at the same height, and then
//! publishes on `proofs` as a registered TL1 author.
//!
//! The proof: by default the one `tiernet-prove fixtures` made for the
//! fixture identity (core/tests/data/stwo: network `devnet`, epoch 0,
//! 2^6 iterations), handed over by a stand-in prover script, so this stable
//! test needs no nightly build. With `TIERNET_PROVE=<path to tiernet-prove>`
//! the real prover proves it instead.

use std::path::Path;

use prost::Message;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::proof::program::ProgramSpec;
use tiernet_core::proof::stwo::registration_statement;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::SignedMessage;

use crate::chain::{Member, PROGRESS, key};
use crate::common::{NodeProcess, Started, eventually, genesis, http_post, metric_sum};

const FIXTURE_PROOF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/stwo/posw_k6_fixture_a_epoch0.bin"
);
const FIXTURE_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/stwo/spec.json");

fn fixture_keys() -> ZsiKeypair {
    ZsiKeypair::from_seed(b"tiernet stwo fixture a").unwrap()
}

/// A prover that copies the fixture proof to `--out`.
fn stand_in_prover(dir: &Path) -> String {
    let path = dir.join("stand-in-prove.sh");
    let script = format!(
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --out ]; then cp '{FIXTURE_PROOF}' \"$2\"; exit $?; fi\n  shift\ndone\nexit 1\n"
    );
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.display().to_string()
}

fn tier_of(member: &Member, zsi: &str) -> Option<String> {
    member
        .chain()
        .identities
        .into_iter()
        .find(|i| i.zsi_id == zsi)
        .map(|i| i.tier)
}

/// The height of the block that registered `zsi`, on `member`.
fn registration_height(member: &Member, zsi: &str) -> Option<u64> {
    (1..=member.height()).find(|&h| {
        let block = member.block(h);
        let finalized = proto::FinalizedBlock::decode(hex::decode(&block.finalized).unwrap().as_slice()).unwrap();
        finalized.block.is_some_and(|b| {
            b.reputation_events.iter().any(|e| {
                hex::encode(&e.zsi_id) == zsi && matches!(e.kind, Some(proto::reputation_event::Kind::Registered(_)))
            })
        })
    })
}

#[test]
fn an_unregistered_node_registers_with_a_stark_and_becomes_tl1_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    genesis(net, &["--validators", "3"]);
    // Open registration: genesis lists the sequential-work program.
    let path = net.join("genesis.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let spec: ProgramSpec = serde_json::from_str(&std::fs::read_to_string(FIXTURE_SPEC).unwrap()).unwrap();
    json["stark_programs"] = serde_json::json!([spec]);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();

    let v0 = Member::start(net, "v0", Some(&key(net, 0)), &[]);
    let boot = v0.node.tcp.clone();
    let validators = [
        v0,
        Member::start(net, "v1", Some(&key(net, 1)), &[&boot]),
        Member::start(net, "v2", Some(&key(net, 2)), &[&boot]),
    ];

    // The registrant: a key that is not in genesis.
    let keys = fixture_keys();
    let zsi = keys.zsi_id().to_string();
    let data = net.join("registrant");
    std::fs::create_dir_all(&data).unwrap();
    let key_file = data.join("zsi_key");
    std::fs::write(&key_file, keys.to_file_contents().as_str()).unwrap();
    assert_eq!(tier_of(&validators[0], &zsi), None, "not registered before");
    let prover = std::env::var("TIERNET_PROVE").unwrap_or_else(|_| stand_in_prover(net));
    let genesis_arg = path.display().to_string();
    let key_arg = key_file.display().to_string();
    let process = NodeProcess::start(
        &data,
        &[
            "--genesis",
            &genesis_arg,
            "--identity",
            &key_arg,
            "--testing-api",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--bootstrap",
            &boot,
            "register",
            "--prover",
            &prover,
            "--epoch",
            "0",
        ],
    );
    let mut registrant = Started::from(process, true);
    let proved = registrant.process.wait_for_matching("proved", |_| true);
    assert!(proved.starts_with(&zsi), "{proved}");
    // TL1 on every validator, registered by the same block.
    let deadline = std::time::Instant::now() + PROGRESS;
    while !validators.iter().all(|v| tier_of(v, &zsi).as_deref() == Some("TL1")) {
        assert!(
            std::time::Instant::now() < deadline,
            "not TL1 everywhere within {PROGRESS:?}; registrant stderr:\n{}\nv0 stderr:\n{}",
            registrant.process.stderr_so_far(),
            validators[0].node.process.stderr_so_far()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let registered = registrant.process.wait_for("registered");
    assert!(registered.starts_with(&zsi), "{registered}");
    let heights: Vec<Option<u64>> = validators.iter().map(|v| registration_height(v, &zsi)).collect();
    let at = heights[0].expect("a block registers it");
    assert!(heights.iter().all(|h| *h == Some(at)), "{heights:?}");
    let hashes: Vec<String> = validators.iter().map(|v| v.block(at).hash).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");

    // Now it publishes on `proofs` as a registered TL1 author: a second
    // registration is admitted by gossip (TL1 author) and ignored by the
    // chain as already registered.
    let height = validators[0].height();
    let mut envelope = proto::ProofEnvelope {
        kind: "stwo/v1".into(),
        statement: registration_statement(&keys.public(), 0).encode_to_vec(),
        proof: std::fs::read(FIXTURE_PROOF).unwrap(),
        submitter: keys.zsi_id().as_bytes().to_vec(),
        height,
        signature: vec![],
    };
    envelope.sign_with(keys.identity_key());
    let hex_envelope = hex::encode(envelope.encode_to_vec());
    let (status, body) = http_post(
        &registrant.telemetry,
        &format!("/testing/submit-proof?envelope={hex_envelope}"),
    );
    assert_eq!(status, 200, "{body}");
    let series = [
        "tiernet_gossip_messages_total",
        "topic=\"proofs\"",
        "tier=\"TL1\"",
        "decision=\"proof_unverifiable\"",
    ];
    eventually("validators see its proofs message as from TL1", PROGRESS, || {
        validators.iter().any(|v| metric_sum(&v.node.telemetry, &series) >= 1.0)
    });
    registrant.process.terminate();
}
