//! Test-only helpers behind `[testing] api = true`: well-formed messages a
//! node can publish on any topic, authored and signed by its own identity
//! (or by a throw-away key when it has none), so that tests can check what
//! the network's admission lets through. Nothing here runs unless enabled.

use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{NetworkId, Topic, encode, proto};

/// A message for `topic` by `identity`; `sequence` makes each one unique.
/// Proposals, votes and proof envelopes are for `height` (the height being
/// decided, so that they fall in every receiver's window) in a far round
/// (10,000 + `sequence` mod 1,000), where no real vote of the author can
/// make them an equivocation; snapshot announcements are for the height
/// below it.
/// Without an identity, `meta` gets an observer's unsigned heartbeat and the
/// other topics a message signed by a fresh, unregistered key.
pub fn sample_message(
    topic: Topic,
    identity: Option<&ZsiKeypair>,
    network: &NetworkId,
    sequence: u64,
    height: u64,
    now_ms: u64,
) -> Vec<u8> {
    let height = height.max(1);
    let round = 10_000 + u32::try_from(sequence % 1000).unwrap_or(0);
    let throwaway;
    let signer = match identity {
        Some(identity) => identity,
        None if topic == Topic::Meta => {
            return encode(&proto::MetaMessage {
                kind: Some(proto::meta_message::Kind::Heartbeat(observer_heartbeat(
                    network, sequence, now_ms,
                ))),
            });
        }
        None => {
            throwaway = ZsiKeypair::generate();
            &throwaway
        }
    };
    let zsi = signer.zsi_id().as_bytes().to_vec();
    let unique = Hash32(blake3::hash(&sequence.to_be_bytes()).into()).as_bytes().to_vec();
    match topic {
        Topic::Blocks => {
            let mut proposal = proto::Proposal {
                network_id: network.to_string(),
                height,
                round,
                pol_round_plus_one: 0,
                block: Some(proto::Block {
                    header: Some(proto::Header {
                        network_id: network.to_string(),
                        height,
                        round,
                        time_ms: now_ms,
                        prev_hash: unique.clone(),
                        proposer: zsi.clone(),
                        validators_hash: vec![0; 32],
                        next_validators_hash: vec![0; 32],
                        state_root: vec![0; 32],
                        proofs_root: vec![0; 32],
                        chain_commitment: vec![0; 32],
                    }),
                    ..Default::default()
                }),
                proposer: zsi,
                signature: vec![],
            };
            proposal.sign_with(signer.identity_key());
            encode(&proto::BlocksMessage {
                kind: Some(proto::blocks_message::Kind::Proposal(proposal)),
            })
        }
        Topic::Votes => {
            let mut vote = proto::Vote {
                network_id: network.to_string(),
                vote_type: proto::VoteType::Prevote as i32,
                height,
                round,
                block_hash: unique,
                validator: zsi,
                signature: vec![],
            };
            vote.sign_with(signer.identity_key());
            encode(&proto::VotesMessage {
                kind: Some(proto::votes_message::Kind::Vote(vote)),
                ..Default::default()
            })
        }
        Topic::Proofs => {
            let mut envelope = proto::ProofEnvelope {
                kind: "test/v1".into(),
                statement: unique,
                proof: vec![],
                submitter: zsi,
                height,
                signature: vec![],
            };
            envelope.sign_with(signer.identity_key());
            encode(&proto::ProofsMessage {
                envelope: Some(envelope),
            })
        }
        Topic::Snapshots => {
            let mut announcement = proto::SnapshotAnnouncement {
                manifest: Some(proto::SnapshotManifest {
                    network_id: network.to_string(),
                    height: height - 1,
                    state_root: unique,
                    chunk_count: 0,
                    total_entries: 0,
                    chunk_hashes: vec![],
                }),
                announcer: zsi,
                signature: vec![],
            };
            announcement.sign_with(signer.identity_key());
            encode(&proto::SnapshotsMessage {
                announcement: Some(announcement),
            })
        }
        Topic::Meta => {
            let mut heartbeat = proto::Heartbeat {
                zsi_id: zsi,
                ..observer_heartbeat(network, sequence, now_ms)
            };
            heartbeat.sign_with(signer.identity_key());
            encode(&proto::MetaMessage {
                kind: Some(proto::meta_message::Kind::Heartbeat(heartbeat)),
            })
        }
    }
}

fn observer_heartbeat(network: &NetworkId, sequence: u64, now_ms: u64) -> proto::Heartbeat {
    proto::Heartbeat {
        network_id: network.to_string(),
        zsi_id: vec![],
        height: 0,
        head_hash: vec![],
        time_ms: now_ms,
        sequence,
        agent: crate::behaviour::agent_version(),
        signature: vec![],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::wire::decode;

    #[test]
    fn samples_decode_on_their_topic() {
        let network = NetworkId::new("devnet").unwrap();
        let identity = ZsiKeypair::from_seed(b"x").unwrap();
        for topic in Topic::ALL {
            for who in [Some(&identity), None] {
                let bytes = sample_message(topic, who, &network, 7, 1, 1_000);
                let ok = match topic {
                    Topic::Blocks => decode::<proto::BlocksMessage>(&bytes).is_ok(),
                    Topic::Votes => decode::<proto::VotesMessage>(&bytes).is_ok(),
                    Topic::Proofs => decode::<proto::ProofsMessage>(&bytes).is_ok(),
                    Topic::Snapshots => decode::<proto::SnapshotsMessage>(&bytes).is_ok(),
                    Topic::Meta => matches!(
                        decode::<proto::MetaMessage>(&bytes),
                        Ok(proto::MetaMessage {
                            kind: Some(proto::meta_message::Kind::Heartbeat(proto::Heartbeat { network_id, sequence: 7, .. }))
                        }) if network_id == "devnet"
                    ),
                };
                assert!(
                    ok,
                    "{topic} by {}",
                    if who.is_some() { "an identity" } else { "an observer" }
                );
            }
        }
        assert_ne!(
            sample_message(Topic::Votes, Some(&identity), &network, 1, 1, 0),
            sample_message(Topic::Votes, Some(&identity), &network, 2, 1, 0)
        );
    }
}
