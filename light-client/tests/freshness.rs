//! The machine's defences against stale heads, eclipses and lies, driven in
//! memory with the clock as an input: staleness by the local clock,
//! agreement of two peers, evidence of conflicting verified headers,
//! gossip verdicts, request planning and stall detection.

use libp2p::PeerId;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tiernet_light::Event;
use tiernet_light::sync::{Freshness, GossipVerdict, LightSync, PeerStatus, PlannedRequest, SyncStatus};
use tiernet_light::testing::TestChain as Chain;

fn events(sync: &mut LightSync) -> Vec<Event> {
    std::iter::from_fn(|| sync.poll_event()).collect()
}

fn time_of(chain: &Chain, height: u64) -> u64 {
    chain
        .at(height)
        .block
        .as_ref()
        .unwrap()
        .header
        .as_ref()
        .unwrap()
        .time_ms
}

fn not_found() -> proto::SyncResponse {
    proto::SyncResponse {
        kind: Some(sync_response::Kind::Error(proto::SyncError {
            code: proto::SyncErrorCode::NotFound as i32,
            message: "nothing newer".into(),
        })),
    }
}

/// A chain proof from `from` to `target` of `chain` (one step: the set never changes).
fn proof(chain: &Chain, from: u64, target: u64) -> proto::SyncResponse {
    let block = chain.at(target);
    proto::SyncResponse {
        kind: Some(sync_response::Kind::ChainProof(proto::ChainProof {
            trusted_height: from,
            steps: vec![proto::ChainProofStep {
                header: Some(proto::SignedHeader {
                    header: block.block.as_ref().unwrap().header.clone(),
                    commit: block.commit.clone(),
                }),
                validators: Some(chain.set.as_proto().clone()),
            }],
        })),
    }
}

fn chain_proof_args(p: &PlannedRequest) -> (u64, u64) {
    match &p.request.kind {
        Some(sync_request::Kind::ChainProof(r)) => (r.trusted_height, r.target_height),
        other => panic!("not a chain-proof request: {other:?}"),
    }
}

/// Polls until a chain-proof request (skipping "get peers").
fn next_chain_proof(sync: &mut LightSync, now: u64) -> PlannedRequest {
    loop {
        let p = sync.poll_request(now).expect("a planned request");
        if matches!(p.request.kind, Some(sync_request::Kind::ChainProof(_))) {
            return p;
        }
        sync.handle_response(
            p.id,
            Ok(proto::SyncResponse {
                kind: Some(sync_response::Kind::Peers(proto::PeersResponse { addrs: vec![] })),
            }),
            now,
        );
    }
}

fn machine(chain: &Chain) -> (LightSync, PeerId, PeerId) {
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint()).with_freshness(Freshness {
        max_head_age_ms: 10_000,
        ..Freshness::default()
    });
    let (a, b) = (PeerId::random(), PeerId::random());
    sync.handle_connected(a);
    sync.handle_connected(b);
    (sync, a, b)
}

#[test]
fn nothing_newer_from_one_peer_is_not_up_to_date_and_an_old_head_is_stale() {
    let chain = Chain::new(5);
    let (mut sync, a, b) = machine(&chain);
    let now = time_of(&chain, 5) + 1_000;
    // The machine asks one peer for a chain proof from its trusted height.
    let ask = next_chain_proof(&mut sync, now);
    assert_eq!(chain_proof_args(&ask), (0, 0));
    sync.handle_response(ask.id, Ok(proof(&chain, 0, 5)), now);
    assert_eq!(sync.head().height, 5);
    // One peer vouched; the other says only "nothing newer": not current.
    let other = if ask.peer == a { b } else { a };
    let advance_other = loop {
        let p = next_chain_proof(&mut sync, now + 3_100);
        if p.peer == other {
            break p;
        }
        sync.handle_response(p.id, Ok(not_found()), now + 3_100);
    };
    sync.handle_response(advance_other.id, Ok(not_found()), now + 3_100);
    assert_eq!(
        sync.status(now + 3_100),
        SyncStatus::Syncing,
        "a NotFound is not agreement"
    );
    // The other peer is asked to confirm the head: a proof from the state
    // before it to it. Its verified, equal answer makes the head current.
    let confirm = next_chain_proof(&mut sync, now + 4_200);
    assert_eq!(confirm.peer, other);
    assert_eq!(chain_proof_args(&confirm), (0, 5));
    sync.handle_response(confirm.id, Ok(proof(&chain, 0, 5)), now + 4_200);
    assert_eq!(sync.status(now + 4_200), SyncStatus::Current);
    // The same head, later than the maximum head age on the local clock:
    // stale, whatever the peers say.
    let late = time_of(&chain, 5) + 10_001;
    assert_eq!(sync.status(late), SyncStatus::Stale { age_ms: 10_001 });
    sync.tick(late);
    assert!(events(&mut sync).contains(&Event::Status(SyncStatus::Stale { age_ms: 10_001 })));
    // Far later than the trusting period: expired.
    let much_later = time_of(&chain, 5) + Freshness::default().trusting_period_ms + 1;
    assert!(matches!(sync.status(much_later), SyncStatus::Expired { .. }));
}

#[test]
fn with_one_peer_its_verified_head_is_enough() {
    let chain = Chain::new(3);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let a = PeerId::random();
    sync.handle_connected(a);
    let now = time_of(&chain, 3) + 500;
    let ask = next_chain_proof(&mut sync, now);
    sync.handle_response(ask.id, Ok(proof(&chain, 0, 3)), now);
    assert_eq!(sync.status(now), SyncStatus::Current);
}

#[test]
fn conflicting_verified_headers_are_evidence_and_never_current() {
    let chain = Chain::new(4);
    let fork = chain.forked_at(4);
    let (mut sync, a, b) = machine(&chain);
    let now = time_of(&chain, 4) + 1_000;
    let ask = next_chain_proof(&mut sync, now);
    sync.handle_response(ask.id, Ok(proof(&chain, 0, 4)), now);
    let ours = sync.head().hash;
    let other = if ask.peer == a { b } else { a };
    // The other peer confirms with a different header at height 4, signed
    // by the same trusted validators.
    let confirm = loop {
        let p = next_chain_proof(&mut sync, now);
        if p.peer == other && chain_proof_args(&p) == (0, 4) {
            break p;
        }
        sync.handle_response(p.id, Ok(not_found()), now);
    };
    sync.handle_response(confirm.id, Ok(proof(&fork, 0, 4)), now);
    let conflict = events(&mut sync).into_iter().find_map(|e| match e {
        Event::Conflict {
            height,
            ours,
            theirs,
            peer,
        } => Some((height, ours, theirs, peer)),
        _ => None,
    });
    let (height, reported_ours, theirs, peer) = conflict.expect("a Conflict event");
    assert_eq!((height, reported_ours, peer), (4, ours, other));
    assert_ne!(theirs, ours);
    assert_eq!(sync.status(now), SyncStatus::Conflicting { height: 4 });
    assert_eq!(sync.head().hash, ours, "the head is not silently replaced");
}

#[test]
fn gossip_is_accepted_only_when_verified_and_garbage_blames_its_sender() {
    let chain = Chain::new(4);
    let (mut sync, a, b) = machine(&chain);
    let now = time_of(&chain, 4);
    assert_eq!(sync.handle_gossip(a, chain.at(1), now), GossipVerdict::Accept);
    // Old: cannot judge, blame no one.
    assert_eq!(sync.handle_gossip(b, chain.at(1), now), GossipVerdict::Ignore);
    // Ahead of the head: cannot judge either; a chain proof is planned.
    assert_eq!(sync.handle_gossip(b, chain.at(3), now), GossipVerdict::Ignore);
    assert_eq!(sync.peer_status(&b), Some(PeerStatus::Usable));
    let ask = next_chain_proof(&mut sync, now);
    assert_eq!(chain_proof_args(&ask), (1, 0), "the gap is bridged by a chain proof");
    // A forged commit for the next height: invalid for everyone.
    let mut forged = chain.at(2).clone();
    forged.commit.as_mut().unwrap().signatures[0].signature[0] ^= 1;
    assert_eq!(sync.handle_gossip(b, &forged, now), GossipVerdict::Reject);
    assert_eq!(sync.peer_status(&b), Some(PeerStatus::Rejected));
    // Bytes that do not decode, reported by the transport: blamed.
    sync.handle_garbage(a, "undecodable".into());
    assert_eq!(sync.peer_status(&a), Some(PeerStatus::Rejected));
    assert!(sync.usable_peers().is_empty());
    assert_eq!(sync.head().height, 1);
}

#[test]
fn a_gossiped_block_is_forwarded_only_when_every_signature_verifies() {
    // `verify_next` checks a quorum's signatures (3 of the 4 equal powers);
    // a gossiped block is forwarded, and full nodes refuse one with any bad
    // signature and blame the forwarder: so the gossip path checks them all.
    let chain = Chain::new(4);
    let (mut sync, a, b) = machine(&chain);
    let now = time_of(&chain, 4);
    let last = chain.set.iter().last().map(|v| v.zsi_id).unwrap();
    let mut forged = chain.at(1).clone();
    let commit = forged.commit.as_mut().unwrap();
    let index = commit
        .signatures
        .iter()
        .position(|s| s.validator == last.as_bytes())
        .unwrap();
    commit.signatures[index].signature[0] ^= 1;
    let signed = proto::SignedHeader {
        header: forged.block.as_ref().and_then(|b| b.header.clone()),
        commit: forged.commit.clone(),
    };
    let genesis = tiernet_core::verify::TrustedState::from_anchor(chain.anchor.clone(), chain.set.clone()).unwrap();
    let quorum = tiernet_core::verify::verify_next(&genesis, &signed, None, &chain.network).unwrap();
    assert_eq!(quorum.height(), 1, "a verified quorum: the light client's trust");
    assert_eq!(sync.handle_gossip(b, &forged, now), GossipVerdict::Reject);
    assert_eq!(sync.peer_status(&b), Some(PeerStatus::Rejected));
    assert_eq!(sync.head().height, 0);
    assert_eq!(sync.handle_gossip(a, chain.at(1), now), GossipVerdict::Accept);
}

#[test]
fn no_verified_head_for_a_while_is_a_stall_and_plans_a_new_request() {
    let chain = Chain::new(2);
    let (mut sync, _, _) = machine(&chain);
    let t0 = 1_000_000;
    sync.tick(t0);
    let ask = next_chain_proof(&mut sync, t0);
    // The peer never answers; the transport reports a failure.
    sync.handle_response(ask.id, Err("timeout".into()), t0 + 10);
    let stall = Freshness::default().stall_after_ms;
    sync.tick(t0 + stall + 1);
    assert!(sync.is_stalled());
    assert!(
        events(&mut sync)
            .iter()
            .any(|e| matches!(e, Event::Stalled { since_ms } if *since_ms > stall))
    );
    // The other peer is asked at once.
    let again = next_chain_proof(&mut sync, t0 + stall + 1);
    assert_ne!(again.peer, ask.peer);
    sync.handle_response(again.id, Ok(proof(&chain, 0, 2)), t0 + stall + 2);
    assert_eq!(sync.head().height, 2);
    sync.tick(t0 + stall + 3);
    assert!(!sync.is_stalled());
}

#[test]
fn a_peer_that_answers_garbage_to_get_peers_is_dropped_and_addresses_are_bounded() {
    let chain = Chain::new(1);
    let (mut sync, _, _) = machine(&chain);
    let now = 5_000;
    let mut learned = 0;
    for _ in 0..6 {
        let Some(p) = sync.poll_request(now) else { break };
        let response = match p.request.kind {
            Some(sync_request::Kind::Peers(_)) => proto::SyncResponse {
                kind: Some(sync_response::Kind::Peers(proto::PeersResponse {
                    addrs: (0..40).map(|i| format!("/ip4/127.0.0.1/tcp/{i}")).collect(),
                })),
            },
            _ => not_found(),
        };
        let peer = p.peer;
        let is_peers = matches!(response.kind, Some(sync_response::Kind::Peers(_)));
        sync.handle_response(p.id, Ok(response), now);
        if is_peers {
            learned += 1;
            assert_eq!(
                sync.peer_status(&peer),
                Some(PeerStatus::Rejected),
                "40 addresses is over the cap"
            );
        }
    }
    assert!(learned >= 1);
    assert!(sync.take_learned().is_empty());
}
