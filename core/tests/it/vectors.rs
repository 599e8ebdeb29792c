//! Test vectors for other implementations: `tests/vectors/wire-v1.json`.
//!
//! Each vector is a message's canonical encoding (hex) plus what follows from
//! it: a tagged hash, or a signature that verifies under a given key. This
//! test rebuilds every deterministic vector from the code and compares it
//! with the file, so the file cannot drift from the implementation. Run with
//! `TIERNET_UPDATE_VECTORS=1` to rewrite the file after a deliberate change.

use std::path::PathBuf;

use prost::Message;
use serde_json::{Value, json};
use tiernet_core::hash::{tagged_hash, tags};
use tiernet_core::identity::hello::{HelloCheck, HelloInfo, build_hello, verify_hello};
use tiernet_core::identity::{NodeKeypair, ZsiKeypair};
use tiernet_core::wire::proto::*;
use tiernet_core::wire::sign::{SignedMessage, header_hash, message_id, validators_hash, verifying_key};
use tiernet_core::wire::{NetworkId, decode, encode};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/wire-v1.json")
}

fn consensus_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn header() -> Header {
    Header {
        network_id: "devnet".into(),
        height: 42,
        round: 1,
        time_ms: 1_764_000_000_000,
        prev_hash: vec![0x11; 32],
        proposer: vec![0x22; 32],
        validators_hash: vec![0x33; 32],
        next_validators_hash: vec![0x33; 32],
        state_root: vec![0x44; 32],
        proofs_root: vec![0x55; 32],
        chain_commitment: vec![0x66; 32],
    }
}

fn validator_set() -> ValidatorSet {
    let v = |seed: u8, power| Validator {
        zsi_id: vec![seed; 32],
        consensus_key: consensus_key(seed).verifying_key().to_bytes().to_vec(),
        power,
    };
    ValidatorSet {
        validators: vec![v(3, 30), v(1, 25), v(2, 25)],
    }
}

fn vote(block_hash: Vec<u8>, vote_type: VoteType) -> Vote {
    let mut vote = Vote {
        network_id: "devnet".into(),
        vote_type: vote_type as i32,
        height: 42,
        round: 1,
        block_hash,
        validator: vec![1; 32],
        signature: vec![],
    };
    vote.sign_with(&consensus_key(1));
    vote
}

fn hash_vector(name: &str, ty: &str, bytes: &[u8], tag: &str) -> Value {
    json!({
        "name": name,
        "type": ty,
        "hex": hex::encode(bytes),
        "hash_tag": tag,
        "hash": tagged_hash(tag, &[bytes]).to_hex(),
    })
}

fn signed_vector<M: SignedMessage>(name: &str, ty: &str, message: &M, key: &ed25519_dalek::VerifyingKey) -> Value {
    json!({
        "name": name,
        "type": ty,
        "hex": hex::encode(message.encode_to_vec()),
        "signature_tag": M::TAG,
        "signing_bytes_hex": hex::encode(message.signing_bytes()),
        "public_key": hex::encode(key.as_bytes()),
    })
}

/// Every vector whose bytes the code determines exactly.
fn deterministic_vectors() -> Vec<Value> {
    let alice = ZsiKeypair::from_seed(b"vector-alice").unwrap();
    let alice_public = alice.public();
    let mut envelope = ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: b"statement".to_vec(),
        proof: b"proof".to_vec(),
        submitter: alice.zsi_id().as_bytes().to_vec(),
        height: 40,
        signature: vec![],
    };
    envelope.sign_with(alice.identity_key());
    let mut heartbeat = Heartbeat {
        network_id: "devnet".into(),
        zsi_id: alice.zsi_id().as_bytes().to_vec(),
        height: 42,
        head_hash: vec![0x77; 32],
        time_ms: 1_764_000_000_500,
        sequence: 9,
        agent: "tiernet-node/0.1.0".into(),
        signature: vec![],
        ..Default::default()
    };
    heartbeat.sign_with(alice.identity_key());
    let blocks = BlocksMessage {
        kind: Some(blocks_message::Kind::Finalized(FinalizedBlock {
            block: Some(Block {
                header: Some(header()),
                ..Default::default()
            }),
            commit: Some(CommitCertificate {
                height: 42,
                round: 1,
                block_hash: header_hash(&header()).as_bytes().to_vec(),
                signatures: vec![CommitSignature {
                    validator: vec![1; 32],
                    signature: vote(header_hash(&header()).as_bytes().to_vec(), VoteType::Precommit).signature,
                }],
            }),
        })),
    };
    let request = SyncRequest {
        kind: Some(sync_request::Kind::Headers(HeadersRequest {
            from_height: 1,
            count: 64,
        })),
    };
    vec![
        hash_vector("header", "tiernet.v1.Header", &encode(&header()), tags::HEADER),
        hash_vector(
            "validator_set",
            "tiernet.v1.ValidatorSet",
            &encode(&validator_set()),
            tags::VALIDATORS,
        ),
        signed_vector(
            "precommit",
            "tiernet.v1.Vote",
            &vote(header_hash(&header()).as_bytes().to_vec(), VoteType::Precommit),
            &consensus_key(1).verifying_key(),
        ),
        signed_vector(
            "prevote_nil",
            "tiernet.v1.Vote",
            &vote(vec![], VoteType::Prevote),
            &consensus_key(1).verifying_key(),
        ),
        signed_vector(
            "proof_envelope",
            "tiernet.v1.ProofEnvelope",
            &envelope,
            &alice_public.identity_key,
        ),
        signed_vector(
            "heartbeat",
            "tiernet.v1.Heartbeat",
            &heartbeat,
            &alice_public.identity_key,
        ),
        json!({
            "name": "zsi_id",
            "type": "zsi",
            "identity_key": hex::encode(alice_public.identity_key.as_bytes()),
            "vrf_key": hex::encode(alice_public.vrf_key.to_bytes()),
            "hash_tag": tags::ZSI,
            "hash": alice.zsi_id().to_string(),
        }),
        hash_vector(
            "blocks_message_id",
            "tiernet.v1.BlocksMessage",
            &encode(&blocks),
            tags::MESSAGE_ID,
        ),
        hash_vector(
            "sync_request_headers",
            "tiernet.v1.SyncRequest",
            &encode(&request),
            tags::MESSAGE_ID,
        ),
    ]
}

fn peers() -> (NodeKeypair, NodeKeypair) {
    (
        NodeKeypair::from_secret([7; 32]).unwrap(),
        NodeKeypair::from_secret([8; 32]).unwrap(),
    )
}

/// The Hello vector: schnorrkel's VRF proofs are randomised, so this one is
/// written once and then checked by verifying it, not by rebuilding it.
fn hello_vector() -> Value {
    let alice = ZsiKeypair::from_seed(b"vector-alice").unwrap();
    let (sender, receiver) = peers();
    let info = HelloInfo {
        network: NetworkId::new("devnet").unwrap(),
        epoch: 490_000,
        features: vec!["sync/1".into()],
        agent: "tiernet-node/0.1.0".into(),
    };
    let hello = build_hello(Some(&alice), &info, &sender.peer_id(), &receiver.peer_id());
    json!({
        "name": "hello",
        "type": "tiernet.v1.Hello",
        "hex": hex::encode(encode(&hello)),
        "sender_peer_id": sender.peer_id().to_string(),
        "receiver_peer_id": receiver.peer_id().to_string(),
        "vrf_input": tiernet_core::identity::hello::vrf_input(&info.network, &sender.peer_id(), &receiver.peer_id(), info.epoch).to_hex(),
        "signature_tag": tags::HELLO,
    })
}

#[test]
fn vectors_match_the_code() {
    let mut built = deterministic_vectors();
    if std::env::var_os("TIERNET_UPDATE_VECTORS").is_some() {
        built.push(hello_vector());
        let file = json!({
            "schema": "tiernet.v1 (core/proto/tiernet/v1/tiernet.proto)",
            "notes": "hex is the canonical prost encoding. hash = BLAKE3(hash_tag || bytes of hex). A signature covers signing_bytes_hex = signature_tag || encoding with the signature field empty. The hello's VRF proof is randomised: check it by verification.",
            "vectors": built,
        });
        std::fs::write(path(), serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(path())
        .expect("tests/vectors/wire-v1.json exists (TIERNET_UPDATE_VECTORS=1 writes it)");
    let file: Value = serde_json::from_str(&text).unwrap();
    let on_disk = file["vectors"].as_array().unwrap();
    for vector in &built {
        let name = vector["name"].as_str().unwrap();
        let stored = on_disk
            .iter()
            .find(|v| v["name"] == vector["name"])
            .unwrap_or_else(|| panic!("vector {name} is missing from the file"));
        assert_eq!(stored, vector, "vector {name} differs from the code");
    }
}

#[test]
fn stored_vectors_are_self_consistent() {
    let text = std::fs::read_to_string(path()).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    for vector in file["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let bytes = vector["hex"].as_str().map(|h| hex::decode(h).unwrap());
        if let (Some(bytes), Some(tag)) = (&bytes, vector["hash_tag"].as_str()) {
            assert_eq!(
                tagged_hash(tag, &[bytes]).to_hex(),
                vector["hash"].as_str().unwrap(),
                "{name}"
            );
        }
        match vector["type"].as_str().unwrap() {
            "tiernet.v1.Header" => {
                let header = Header::decode(bytes.as_deref().unwrap()).unwrap();
                assert_eq!(header_hash(&header).to_hex(), vector["hash"].as_str().unwrap());
            }
            "tiernet.v1.ValidatorSet" => {
                let set = ValidatorSet::decode(bytes.as_deref().unwrap()).unwrap();
                assert_eq!(validators_hash(&set).to_hex(), vector["hash"].as_str().unwrap());
            }
            "tiernet.v1.Vote" => check_signed::<Vote>(vector),
            "tiernet.v1.ProofEnvelope" => check_signed::<ProofEnvelope>(vector),
            "tiernet.v1.Heartbeat" => check_signed::<Heartbeat>(vector),
            "tiernet.v1.BlocksMessage" => {
                let bytes = bytes.as_deref().unwrap();
                decode::<BlocksMessage>(bytes).unwrap();
                assert_eq!(message_id(bytes).to_hex(), vector["hash"].as_str().unwrap());
            }
            "tiernet.v1.SyncRequest" => {
                decode::<SyncRequest>(bytes.as_deref().unwrap()).unwrap();
            }
            "tiernet.v1.Hello" => check_hello(vector),
            "zsi" => {
                let public = tiernet_core::identity::ZsiPublic::from_bytes(
                    &hex::decode(vector["identity_key"].as_str().unwrap()).unwrap(),
                    &hex::decode(vector["vrf_key"].as_str().unwrap()).unwrap(),
                )
                .unwrap();
                assert_eq!(public.zsi_id().to_string(), vector["hash"].as_str().unwrap());
            }
            other => panic!("vector {name} has unknown type {other}"),
        }
    }
}

fn check_signed<M: SignedMessage + Default>(vector: &Value) {
    let bytes = hex::decode(vector["hex"].as_str().unwrap()).unwrap();
    let message = M::decode(bytes.as_slice()).unwrap();
    assert_eq!(message.encode_to_vec(), bytes, "encoding is canonical");
    assert_eq!(
        hex::encode(message.signing_bytes()),
        vector["signing_bytes_hex"].as_str().unwrap()
    );
    let key = verifying_key(&hex::decode(vector["public_key"].as_str().unwrap()).unwrap()).unwrap();
    message.verify_with(&key).unwrap();
}

fn check_hello(vector: &Value) {
    let bytes = hex::decode(vector["hex"].as_str().unwrap()).unwrap();
    let hello: Hello = decode(&bytes).unwrap();
    let (sender, receiver) = peers();
    assert_eq!(vector["sender_peer_id"], sender.peer_id().to_string());
    let network = NetworkId::new("devnet").unwrap();
    let check = HelloCheck {
        network: &network,
        sender: sender.peer_id(),
        receiver: receiver.peer_id(),
        current_epoch: hello.epoch,
        epoch_tolerance: 0,
    };
    let verified = verify_hello(&hello, &check).unwrap();
    assert_eq!(
        verified.identity.unwrap().zsi_id,
        ZsiKeypair::from_seed(b"vector-alice").unwrap().zsi_id()
    );
    let input = tiernet_core::identity::hello::vrf_input(&network, &sender.peer_id(), &receiver.peer_id(), hello.epoch);
    assert_eq!(input.to_hex(), vector["vrf_input"].as_str().unwrap());
    // Swapping sender and receiver must fail: the proof is bound to the direction.
    let reversed = HelloCheck {
        sender: receiver.peer_id(),
        receiver: sender.peer_id(),
        ..check
    };
    assert!(verify_hello(&hello, &reversed).is_err());
}
