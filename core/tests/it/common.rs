//! proptest strategies that produce *valid* wire messages (they pass
//! `Validate`), shared by the round-trip and property tests.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tiernet_core::wire::proto::*;

pub fn hash() -> impl Strategy<Value = Vec<u8>> {
    prop::array::uniform32(any::<u8>()).prop_map(|a| a.to_vec())
}

pub fn sig() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 64)
}

pub fn maybe_hash() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), hash()]
}

pub fn network() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,12}(-[a-z0-9]{1,8})?"
}

pub fn short_string(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("valid regex")
}

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

pub fn vote_type() -> impl Strategy<Value = i32> {
    prop_oneof![Just(VoteType::Prevote as i32), Just(VoteType::Precommit as i32)]
}

pub fn header() -> impl Strategy<Value = Header> {
    (network(), 1..u64::MAX, any::<u32>(), any::<u64>(), vec(hash(), 7)).prop_map(
        |(network_id, height, round, time_ms, h)| Header {
            network_id,
            height,
            round,
            time_ms,
            prev_hash: h[0].clone(),
            proposer: h[1].clone(),
            validators_hash: h[2].clone(),
            next_validators_hash: h[3].clone(),
            state_root: h[4].clone(),
            proofs_root: h[5].clone(),
            chain_commitment: h[6].clone(),
        },
    )
}

/// A canonical validator set: power descending, then zsi_id ascending.
pub fn validator_set() -> impl Strategy<Value = ValidatorSet> {
    vec((hash(), hash(), 1..1_000_000u64), 1..8).prop_map(|mut vs| {
        let mut seen = std::collections::BTreeSet::new();
        vs.retain(|v| seen.insert(v.0.clone()));
        vs.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        ValidatorSet {
            validators: vs
                .into_iter()
                .map(|(zsi_id, consensus_key, power)| Validator {
                    zsi_id,
                    consensus_key,
                    power,
                })
                .collect(),
        }
    })
}

pub fn commit() -> impl Strategy<Value = CommitCertificate> {
    (any::<u64>(), any::<u32>(), hash(), vec((hash(), sig()), 0..6)).prop_map(|(height, round, block_hash, sigs)| {
        CommitCertificate {
            height,
            round,
            block_hash,
            signatures: sigs
                .into_iter()
                .map(|(validator, signature)| CommitSignature { validator, signature })
                .collect(),
        }
    })
}

pub fn vote() -> impl Strategy<Value = Vote> {
    (
        network(),
        vote_type(),
        any::<u64>(),
        any::<u32>(),
        maybe_hash(),
        hash(),
        sig(),
    )
        .prop_map(
            |(network_id, vote_type, height, round, block_hash, validator, signature)| Vote {
                network_id,
                vote_type,
                height,
                round,
                block_hash,
                validator,
                signature,
            },
        )
}

pub fn evidence() -> impl Strategy<Value = Evidence> {
    (vote(), vote()).prop_map(|(a, b)| Evidence {
        first: Some(a),
        second: Some(b),
    })
}

pub fn proof_envelope() -> impl Strategy<Value = ProofEnvelope> {
    ("[a-z]{1,10}/v[0-9]", bytes(64), bytes(256), hash(), any::<u64>(), sig()).prop_map(
        |(kind, statement, proof, submitter, height, signature)| ProofEnvelope {
            kind,
            statement,
            proof,
            submitter,
            height,
            signature,
        },
    )
}

pub fn reputation_event() -> impl Strategy<Value = ReputationEvent> {
    let kind = prop_oneof![
        any::<u64>().prop_map(reputation_event::Kind::UptimeMinutes),
        any::<u64>().prop_map(reputation_event::Kind::Participation),
        evidence().prop_map(reputation_event::Kind::Slash),
    ];
    (hash(), kind).prop_map(|(zsi_id, kind)| ReputationEvent {
        zsi_id,
        kind: Some(kind),
    })
}

pub fn block() -> impl Strategy<Value = Block> {
    (
        header(),
        vec(proof_envelope(), 0..3),
        vec(reputation_event(), 0..3),
        option::of(validator_set()),
        option::of(commit()),
    )
        .prop_map(
            |(header, proofs, reputation_events, next_validators, last_commit)| Block {
                header: Some(header),
                proofs,
                reputation_events,
                next_validators,
                last_commit,
            },
        )
}

pub fn finalized() -> impl Strategy<Value = FinalizedBlock> {
    (block(), commit()).prop_map(|(block, commit)| FinalizedBlock {
        block: Some(block),
        commit: Some(commit),
    })
}

pub fn signed_header() -> impl Strategy<Value = SignedHeader> {
    (header(), commit()).prop_map(|(header, commit)| SignedHeader {
        header: Some(header),
        commit: Some(commit),
    })
}

pub fn proposal() -> impl Strategy<Value = Proposal> {
    (network(), any::<u64>(), 0..1000u32, block(), hash(), sig()).prop_flat_map(
        |(network_id, height, round, block, proposer, signature)| {
            (0..=round).prop_map(move |pol| Proposal {
                network_id: network_id.clone(),
                height,
                round,
                pol_round_plus_one: pol,
                block: Some(block.clone()),
                proposer: proposer.clone(),
                signature: signature.clone(),
            })
        },
    )
}

pub fn vote_signatures() -> impl Strategy<Value = Vec<VoteSignature>> {
    vec((hash(), vote_type(), maybe_hash(), sig()), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(validator, vote_type, block_hash, signature)| VoteSignature {
                validator,
                vote_type,
                block_hash,
                signature,
            })
            .collect()
    })
}

pub fn blocks_message() -> impl Strategy<Value = BlocksMessage> {
    prop_oneof![
        proposal().prop_map(blocks_message::Kind::Proposal),
        finalized().prop_map(blocks_message::Kind::Finalized),
    ]
    .prop_map(|kind| BlocksMessage { kind: Some(kind) })
}

pub fn votes_message() -> impl Strategy<Value = VotesMessage> {
    let polka =
        (any::<u64>(), any::<u32>(), hash(), vote_signatures()).prop_map(|(height, round, block_hash, signatures)| {
            PolkaCertificate {
                height,
                round,
                block_hash,
                signatures,
            }
        });
    let round_cert = (
        any::<u64>(),
        any::<u32>(),
        prop_oneof![
            Just(RoundCertificateKind::Precommit as i32),
            Just(RoundCertificateKind::Skip as i32)
        ],
        vote_signatures(),
    )
        .prop_map(|(height, round, kind, signatures)| RoundCertificate {
            height,
            round,
            kind,
            signatures,
        });
    prop_oneof![
        vote().prop_map(votes_message::Kind::Vote),
        polka.prop_map(votes_message::Kind::Polka),
        round_cert.prop_map(votes_message::Kind::RoundCertificate),
        evidence().prop_map(votes_message::Kind::Evidence),
    ]
    .prop_map(|kind| VotesMessage {
        kind: Some(kind),
        ..Default::default()
    })
}

pub fn proofs_message() -> impl Strategy<Value = ProofsMessage> {
    proof_envelope().prop_map(|e| ProofsMessage { envelope: Some(e) })
}

pub fn manifest() -> impl Strategy<Value = SnapshotManifest> {
    (network(), any::<u64>(), hash(), any::<u64>(), vec(hash(), 0..8)).prop_map(
        |(network_id, height, state_root, total_entries, chunk_hashes)| SnapshotManifest {
            network_id,
            height,
            state_root,
            chunk_count: chunk_hashes.len() as u32,
            total_entries,
            chunk_hashes,
        },
    )
}

pub fn snapshots_message() -> impl Strategy<Value = SnapshotsMessage> {
    (manifest(), hash(), sig()).prop_map(|(manifest, announcer, signature)| SnapshotsMessage {
        announcement: Some(SnapshotAnnouncement {
            manifest: Some(manifest),
            announcer,
            signature,
        }),
    })
}

pub fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        network(),
        option::of((hash(), sig())),
        any::<u64>(),
        maybe_hash(),
        any::<u64>(),
        any::<u64>(),
        short_string(40),
    )
        .prop_map(|(network_id, identity, height, head_hash, time_ms, sequence, agent)| {
            let (zsi_id, signature) = identity.unwrap_or_default();
            Heartbeat {
                network_id,
                zsi_id,
                height,
                head_hash,
                time_ms,
                sequence,
                agent,
                signature,
                ..Default::default()
            }
        })
}

pub fn meta_message() -> impl Strategy<Value = MetaMessage> {
    let claim = (network(), hash(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(network_id, subject, a, b, heartbeats)| UptimeClaim {
            network_id,
            subject,
            from_height: a.min(b),
            to_height: a.max(b),
            heartbeats,
        },
    );
    let witness = (claim, hash(), any::<u32>(), sig()).prop_map(|(claim, witness, heartbeats_seen, signature)| {
        UptimeAttestation {
            claim: Some(claim),
            witness: Some(UptimeWitness {
                witness,
                heartbeats_seen,
                signature,
            }),
        }
    });
    prop_oneof![
        heartbeat().prop_map(meta_message::Kind::Heartbeat),
        witness.prop_map(meta_message::Kind::Attestation),
    ]
    .prop_map(|kind| MetaMessage { kind: Some(kind) })
}

pub fn hello() -> impl Strategy<Value = Hello> {
    let identity = option::of((hash(), hash(), hash(), hash(), sig(), sig()));
    (
        network(),
        identity,
        any::<u64>(),
        vec("[a-z/0-9]{1,12}", 0..4),
        short_string(40),
    )
        .prop_map(|(network_id, identity, epoch, features, agent)| {
            let mut hello = Hello {
                network_id,
                epoch,
                features,
                agent,
                ..Default::default()
            };
            if let Some((zsi_id, identity_key, vrf_key, vrf_output, vrf_proof, signature)) = identity {
                hello.zsi_id = zsi_id;
                hello.identity_key = identity_key;
                hello.vrf_key = vrf_key;
                hello.vrf_output = vrf_output;
                hello.vrf_proof = vrf_proof;
                hello.signature = signature;
            }
            hello
        })
}

pub fn handshake_response() -> impl Strategy<Value = HandshakeResponse> {
    prop_oneof![
        hello().prop_map(handshake_response::Result::Hello),
        short_string(100).prop_map(handshake_response::Result::Rejected),
    ]
    .prop_map(|result| HandshakeResponse { result: Some(result) })
}

pub fn sync_request() -> impl Strategy<Value = SyncRequest> {
    use sync_request::Kind;
    prop_oneof![
        (any::<u64>(), 1..=256u32)
            .prop_map(|(from_height, count)| Kind::Headers(HeadersRequest { from_height, count })),
        any::<u64>().prop_map(|height| Kind::Block(BlockRequest { height })),
        (0..1000u64, 0..1000u64).prop_map(|(a, b)| Kind::ChainProof(ChainProofRequest {
            trusted_height: a.min(b),
            target_height: a.max(b),
        })),
        (bytes(64), any::<u64>()).prop_map(|(key, height)| Kind::State(StateRequest { key, height })),
        any::<u64>().prop_map(|height| Kind::SnapshotManifest(SnapshotManifestRequest { height })),
        (any::<u64>(), any::<u32>())
            .prop_map(|(height, index)| Kind::SnapshotChunk(SnapshotChunkRequest { height, index })),
    ]
    .prop_map(|kind| SyncRequest { kind: Some(kind) })
}

pub fn state_proof() -> impl Strategy<Value = StateProof> {
    (option::of((hash(), hash())), vec(hash(), 0..10)).prop_map(|(leaf, siblings)| StateProof {
        leaf: leaf.map(|(key_hash, value_hash)| LeafNode { key_hash, value_hash }),
        siblings,
    })
}

pub fn sync_response() -> impl Strategy<Value = SyncResponse> {
    use sync_response::Kind;
    let chain_proof =
        (any::<u64>(), vec((signed_header(), validator_set()), 1..4)).prop_map(|(trusted_height, steps)| ChainProof {
            trusted_height,
            steps: steps
                .into_iter()
                .map(|(header, validators)| ChainProofStep {
                    header: Some(header),
                    validators: Some(validators),
                })
                .collect(),
        });
    let state = (
        any::<u64>(),
        bytes(32),
        option::of(bytes(64)),
        state_proof(),
        signed_header(),
    )
        .prop_map(|(height, key, value, proof, header)| StateValueResponse {
            height,
            key,
            value,
            proof: Some(proof),
            header: Some(header),
        });
    let chunk = (
        any::<u64>(),
        any::<u32>(),
        vec((bytes(16), bytes(32)), 0..6),
        option::of(state_proof()),
        vec(hash(), 0..6),
    )
        .prop_map(
            |(height, index, entries, last_entry_proof, right_siblings)| SnapshotChunk {
                height,
                index,
                entries: entries
                    .into_iter()
                    .map(|(key, value)| StateEntry { key, value })
                    .collect(),
                last_entry_proof,
                right_siblings,
            },
        );
    let error = (1..=5i32, short_string(60)).prop_map(|(code, message)| SyncError { code, message });
    prop_oneof![
        vec(signed_header(), 0..3).prop_map(|headers| Kind::Headers(HeadersResponse { headers })),
        finalized().prop_map(Kind::Block),
        chain_proof.prop_map(Kind::ChainProof),
        state.prop_map(Kind::State),
        manifest().prop_map(Kind::SnapshotManifest),
        chunk.prop_map(Kind::SnapshotChunk),
        error.prop_map(Kind::Error),
    ]
    .prop_map(|kind| SyncResponse { kind: Some(kind) })
}

/// A commit certificate for `header`, precommitted by each `(validator, consensus key)`.
pub fn signed_commit(
    network: &tiernet_core::wire::NetworkId,
    header: &Header,
    signers: &[(tiernet_core::identity::ZsiId, &ed25519_dalek::SigningKey)],
) -> CommitCertificate {
    use tiernet_core::wire::sign::SignedMessage;
    let hash = tiernet_core::wire::sign::header_hash(header);
    CommitCertificate {
        height: header.height,
        round: header.round,
        block_hash: hash.0.to_vec(),
        signatures: signers
            .iter()
            .map(|(validator, key)| {
                let mut vote =
                    tiernet_core::chain::precommit_for(network, header.height, header.round, Some(&hash), validator);
                vote.sign_with(key);
                CommitSignature {
                    validator: validator.as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect(),
    }
}

/// The `devnet` network id.
pub fn net() -> tiernet_core::wire::NetworkId {
    tiernet_core::wire::NetworkId::new("devnet").unwrap()
}

/// A deterministic consensus key.
pub fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

/// A deterministic ZSI id (`seed` repeated).
pub fn id(seed: u8) -> tiernet_core::identity::ZsiId {
    tiernet_core::identity::ZsiId(tiernet_core::hash::Hash32([seed; 32]))
}

/// A validator set of `(seed, power)` members, keys from [`key`], in the
/// canonical order.
pub fn members(members: &[(u8, u64)]) -> tiernet_core::chain::ValidatorSet {
    let mut validators: Vec<Validator> = members
        .iter()
        .map(|&(seed, power)| Validator {
            zsi_id: vec![seed; 32],
            consensus_key: key(seed).verifying_key().to_bytes().to_vec(),
            power,
        })
        .collect();
    validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.zsi_id.cmp(&b.zsi_id)));
    tiernet_core::chain::ValidatorSet::new(ValidatorSet { validators }).unwrap()
}
