//! Round-trip and property tests for every top-level wire message.

use crate::common::*;
use proptest::prelude::*;
use tiernet_core::wire::proto::*;
use tiernet_core::wire::{DecodeError, FieldProblem, WireMessage, decode, encode};

/// encode → decode gives back the same message, and re-encoding is
/// byte-identical (the encoding is canonical).
fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(message: &M) -> Result<(), TestCaseError> {
    let bytes = encode(message);
    let back: M = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, message);
    prop_assert_eq!(encode(&back), bytes);
    Ok(())
}

/// Arbitrary bytes never panic the decoder; they decode or give a typed error.
fn never_panics<M: WireMessage>(bytes: &[u8]) {
    match decode::<M>(bytes) {
        // Only the one canonical encoding is ever accepted.
        Ok(message) => assert_eq!(encode(&message), bytes),
        Err(
            DecodeError::TooLarge { .. }
            | DecodeError::Malformed { .. }
            | DecodeError::Invalid { .. }
            | DecodeError::NonCanonical { .. },
        ) => {}
    }
}

/// Flipping bytes of a valid encoding never panics either.
fn mutations_never_panic<M: WireMessage>(message: &M, flips: &[(usize, u8)]) {
    let mut bytes = encode(message);
    if bytes.is_empty() {
        return;
    }
    for (at, xor) in flips {
        let i = at % bytes.len();
        bytes[i] ^= xor;
    }
    never_panics::<M>(&bytes);
    never_panics::<M>(&bytes[..bytes.len() / 2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test] fn blocks_round_trip(m in blocks_message()) { round_trip(&m)?; }
    #[test] fn votes_round_trip(m in votes_message()) { round_trip(&m)?; }
    #[test] fn proofs_round_trip(m in proofs_message()) { round_trip(&m)?; }
    #[test] fn snapshots_round_trip(m in snapshots_message()) { round_trip(&m)?; }
    #[test] fn meta_round_trip(m in meta_message()) { round_trip(&m)?; }
    #[test] fn hello_round_trip(m in hello()) { round_trip(&m)?; }
    #[test] fn handshake_response_round_trip(m in handshake_response()) { round_trip(&m)?; }
    #[test] fn sync_request_round_trip(m in sync_request()) { round_trip(&m)?; }
    #[test] fn sync_response_round_trip(m in sync_response()) { round_trip(&m)?; }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        never_panics::<BlocksMessage>(&bytes);
        never_panics::<VotesMessage>(&bytes);
        never_panics::<ProofsMessage>(&bytes);
        never_panics::<SnapshotsMessage>(&bytes);
        never_panics::<MetaMessage>(&bytes);
        never_panics::<Hello>(&bytes);
        never_panics::<HandshakeResponse>(&bytes);
        never_panics::<SyncRequest>(&bytes);
        never_panics::<SyncResponse>(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        b in blocks_message(), v in votes_message(), r in sync_response(),
        flips in proptest::collection::vec((any::<usize>(), 1..=255u8), 1..4),
    ) {
        mutations_never_panic(&b, &flips);
        mutations_never_panic(&v, &flips);
        mutations_never_panic(&r, &flips);
    }
}

/// A header every field of which is well-formed.
fn valid_header(network: &str) -> Header {
    Header {
        network_id: network.into(),
        height: 1,
        prev_hash: vec![0; 32],
        proposer: vec![0; 32],
        validators_hash: vec![0; 32],
        next_validators_hash: vec![0; 32],
        state_root: vec![0; 32],
        proofs_root: vec![0; 32],
        chain_commitment: vec![0; 32],
        ..Default::default()
    }
}

fn invalid_field(err: DecodeError) -> (String, FieldProblem) {
    match err {
        DecodeError::Invalid { error, .. } => (error.path, error.problem),
        other => panic!("expected an invalid field, got {other}"),
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let bytes = vec![0u8; MetaMessage::MAX_SIZE + 1];
    match decode::<MetaMessage>(&bytes) {
        Err(DecodeError::TooLarge { len, max, .. }) => {
            assert_eq!(len, MetaMessage::MAX_SIZE + 1);
            assert_eq!(max, MetaMessage::MAX_SIZE);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn wrong_hash_length_names_the_field_path() {
    let mut header = Header {
        state_root: vec![0; 31],
        ..valid_header("devnet")
    };
    let message = |header: Header| BlocksMessage {
        kind: Some(blocks_message::Kind::Finalized(FinalizedBlock {
            block: Some(Block {
                header: Some(header),
                ..Default::default()
            }),
            commit: Some(CommitCertificate {
                block_hash: vec![0; 32],
                ..Default::default()
            }),
        })),
    };
    let err = decode::<BlocksMessage>(&encode(&message(header.clone()))).unwrap_err();
    assert_eq!(
        invalid_field(err.clone()),
        (
            "finalized.block.header.state_root".to_string(),
            FieldProblem::WrongLength {
                expected: 32,
                actual: 31
            }
        )
    );
    assert!(err.to_string().contains("finalized.block.header.state_root"), "{err}");
    header.state_root = vec![0; 32];
    decode::<BlocksMessage>(&encode(&message(header))).unwrap();
}

#[test]
fn too_many_items_are_refused() {
    let commit = CommitCertificate {
        block_hash: vec![0; 32],
        signatures: vec![
            CommitSignature {
                validator: vec![0; 32],
                signature: vec![0; 64]
            };
            257
        ],
        ..Default::default()
    };
    let response = SyncResponse {
        kind: Some(sync_response::Kind::Headers(HeadersResponse {
            headers: vec![SignedHeader {
                header: Some(valid_header("n")),
                commit: Some(commit),
            }],
        })),
    };
    let (path, problem) = invalid_field(decode::<SyncResponse>(&encode(&response)).unwrap_err());
    assert_eq!(path, "headers.headers[0].commit.signatures");
    assert_eq!(problem, FieldProblem::TooMany { max: 256, actual: 257 });
}

#[test]
fn heartbeat_round_trip_times_are_bounded() {
    let heartbeat = |rtts: Vec<PeerRtt>| MetaMessage {
        kind: Some(meta_message::Kind::Heartbeat(Heartbeat {
            network_id: "n".into(),
            time_ms: 1,
            sequence: 1,
            peer_count: 40,
            rtts,
            ..Default::default()
        })),
    };
    let rtt = |len: usize| PeerRtt {
        peer_id: vec![1; len],
        rtt_ms: 3,
    };
    let ok = heartbeat(vec![rtt(38); 32]);
    assert_eq!(decode::<MetaMessage>(&encode(&ok)).unwrap(), ok);
    let (path, problem) = invalid_field(decode::<MetaMessage>(&encode(&heartbeat(vec![rtt(38); 33]))).unwrap_err());
    assert_eq!(path, "heartbeat.rtts");
    assert_eq!(problem, FieldProblem::TooMany { max: 32, actual: 33 });
    let (path, problem) = invalid_field(decode::<MetaMessage>(&encode(&heartbeat(vec![rtt(65)]))).unwrap_err());
    assert_eq!(path, "heartbeat.rtts[0].peer_id");
    assert_eq!(problem, FieldProblem::TooLong { max: 64, actual: 65 });
}

#[test]
fn empty_oneof_and_unknown_enums_are_refused() {
    let (path, problem) = invalid_field(decode::<VotesMessage>(&[]).unwrap_err());
    assert_eq!((path.as_str(), problem), ("kind", FieldProblem::Missing));

    let vote = Vote {
        network_id: "devnet".into(),
        vote_type: 7,
        height: 1,
        round: 0,
        block_hash: vec![],
        validator: vec![0; 32],
        signature: vec![0; 64],
    };
    let message = VotesMessage {
        kind: Some(votes_message::Kind::Vote(vote.clone())),
        ..Default::default()
    };
    let (path, problem) = invalid_field(decode::<VotesMessage>(&encode(&message)).unwrap_err());
    assert_eq!((path.as_str(), problem), ("vote.vote_type", FieldProblem::BadEnum(7)));
    let unspecified = VotesMessage {
        kind: Some(votes_message::Kind::Vote(Vote { vote_type: 0, ..vote })),
        ..Default::default()
    };
    assert!(decode::<VotesMessage>(&encode(&unspecified)).is_err());
}

#[test]
fn validator_sets_must_be_canonical() {
    let v = |id: u8, power| Validator {
        zsi_id: vec![id; 32],
        consensus_key: vec![0; 32],
        power,
    };
    let response = |validators| SyncResponse {
        kind: Some(sync_response::Kind::ChainProof(ChainProof {
            trusted_height: 1,
            steps: vec![ChainProofStep {
                header: Some(SignedHeader {
                    header: Some(valid_header("n")),
                    commit: Some(CommitCertificate {
                        block_hash: vec![0; 32],
                        ..Default::default()
                    }),
                }),
                validators: Some(ValidatorSet { validators }),
            }],
        })),
    };
    decode::<SyncResponse>(&encode(&response(vec![v(2, 10), v(1, 5), v(3, 5)]))).unwrap();
    for bad in [
        vec![v(1, 5), v(2, 10)],         // power ascending
        vec![v(3, 5), v(1, 5)],          // id descending at equal power
        vec![v(1, 5), v(1, 5)],          // duplicate
        vec![v(1, 9), v(2, 7), v(1, 5)], // duplicate at another power
        vec![v(1, 0)],                   // zero power
        vec![],                          // empty
        vec![v(1, u64::MAX), v(2, 1)],   // total overflows
    ] {
        assert!(
            decode::<SyncResponse>(&encode(&response(bad.clone()))).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn network_ids_in_messages_are_checked() {
    let hello = Hello {
        network_id: "Not Valid".into(),
        ..Default::default()
    };
    let (path, _) = invalid_field(decode::<Hello>(&encode(&hello)).unwrap_err());
    assert_eq!(path, "network_id");
}
