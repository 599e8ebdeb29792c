//! The sans-IO sync machine driven in memory: a 4-validator chain signed in
//! memory (`tiernet_light::testing`), fed to `LightSync` as a peer would
//! serve it; and the whole client over the in-memory transport.

use libp2p::PeerId;
use tiernet_core::wire::sign::header_hash;
use tiernet_light::Event;
use tiernet_light::sync::{LightSync, PeerStatus, SyncError};
use tiernet_light::testing::TestChain as Chain;

fn events(sync: &mut LightSync) -> Vec<Event> {
    std::iter::from_fn(|| sync.poll_event()).collect()
}

#[test]
fn blocks_in_order_advance_the_head_and_each_is_reported() {
    let chain = Chain::new(5);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    for h in 1..=5 {
        assert!(sync.handle_block(peer, chain.at(h)).unwrap());
    }
    let head = sync.head();
    assert_eq!(head.height, 5);
    let header = chain.at(5).block.as_ref().unwrap().header.as_ref().unwrap();
    assert_eq!(head.hash, header_hash(header));
    let verified = events(&mut sync)
        .into_iter()
        .filter(|e| matches!(e, Event::HeadVerified(_)))
        .count();
    assert_eq!(verified, 5);
    // An old block again changes nothing.
    assert!(!sync.handle_block(peer, chain.at(3)).unwrap());
    assert_eq!(sync.head().height, 5);
}

#[test]
fn a_gap_asks_for_a_chain_proof_without_blaming_the_peer() {
    let chain = Chain::new(4);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    let err = sync.handle_block(peer, chain.at(3)).unwrap_err();
    assert!(matches!(err, SyncError::Behind { height: 3, next: 1, .. }), "{err:?}");
    assert_eq!(sync.peer_status(&peer), Some(PeerStatus::Usable));
    assert_eq!(sync.head().height, 0);
}

#[test]
fn a_forged_block_rejects_its_peer_and_leaves_the_head() {
    let chain = Chain::new(2);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let (liar, honest) = (PeerId::random(), PeerId::random());
    sync.handle_connected(liar);
    sync.handle_connected(honest);
    let mut forged = chain.at(1).clone();
    forged.commit.as_mut().unwrap().signatures[0].signature[0] ^= 1;
    let err = sync.handle_block(liar, &forged).unwrap_err();
    assert!(matches!(err, SyncError::Invalid { .. }), "{err:?}");
    assert_eq!(sync.peer_status(&liar), Some(PeerStatus::Rejected));
    assert_eq!(sync.usable_peers(), vec![honest]);
    assert!(
        events(&mut sync)
            .iter()
            .any(|e| matches!(e, Event::PeerRejected { peer, .. } if *peer == liar))
    );
    assert_eq!(sync.head().height, 0);
    // A rejected peer that reconnects stays rejected; the honest block verifies.
    sync.handle_connected(liar);
    assert_eq!(sync.peer_status(&liar), Some(PeerStatus::Rejected));
    assert!(sync.handle_block(honest, chain.at(1)).unwrap());
}

#[test]
fn too_little_power_is_not_enough_trust_not_a_lie() {
    let chain = Chain::new(1);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    let mut short = chain.at(1).clone();
    short.commit.as_mut().unwrap().signatures.truncate(2);
    let err = sync.handle_block(peer, &short).unwrap_err();
    assert!(matches!(err, SyncError::NotEnoughTrust { .. }), "{err:?}");
    assert_eq!(sync.peer_status(&peer), Some(PeerStatus::Usable));
}

#[tokio::test]
async fn the_client_over_memory_peers_verifies_the_head_and_drops_a_forger() {
    use std::sync::{Arc, Mutex};
    use tiernet_light::LightClient;
    use tiernet_light::testing::{MemoryTransport, PeerBehaviour};
    use tiernet_light::transport::TransportEvent;

    let chain = Arc::new(Mutex::new(Chain::new(6)));
    let checkpoint = chain.lock().unwrap().checkpoint();
    let network = chain.lock().unwrap().network.clone();
    let transport = MemoryTransport::new(
        Arc::clone(&chain),
        &[PeerBehaviour::ForgesCommits, PeerBehaviour::Honest],
    );
    let (forger, _) = transport.peers()[0];
    let gossip = transport.gossip();
    let client = LightClient::builder()
        .network(network)
        .checkpoint(checkpoint)
        .transport(Box::new(transport))
        .build()
        .unwrap();
    let mut events = client.events();
    let head = client.start().await.unwrap();
    assert_eq!(head.height, 6);
    // Questions rotate over the peers: within two new heights the forger
    // has been asked (and its forged proof rejected).
    for _ in 0..2 {
        if client.is_rejected(&forger) {
            break;
        }
        chain.lock().unwrap().extend();
        client.sync_to_latest().await.unwrap();
    }
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::PeerRejected { peer, reason } if *peer == forger && reason.contains("commit"))),
        "{seen:?}"
    );
    assert!(client.is_rejected(&forger));
    assert_eq!(client.peers().len(), 1);
    // A gossiped block advances the head.
    let (from, block) = {
        let mut chain = chain.lock().unwrap();
        let block = chain.extend().clone();
        (client.peers()[0], block)
    };
    let height = client.head().height + 1;
    gossip
        .send(TransportEvent::Block {
            from,
            block: Box::new(block),
        })
        .await
        .unwrap();
    for _ in 0..100 {
        if client.head().height == height {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(client.head().height, height);
    // Stopped, it keeps its head and answers nothing more.
    client.stop();
    assert_eq!(client.head().height, height);
    assert_eq!(
        client.sync_to_latest().await.unwrap_err(),
        tiernet_light::ClientError::NotStarted
    );
}

#[test]
fn a_chain_proof_from_below_the_head_is_stale_not_a_lie() {
    let chain = Chain::new(3);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    // Asked at height 0; block 1 arrives by gossip before the answer.
    let answer = chain.chain_proof(0);
    assert!(sync.handle_block(peer, chain.at(1)).unwrap());
    let err = sync.handle_chain_proof(peer, answer).unwrap_err();
    assert!(matches!(err, SyncError::Superseded { from: 0, head: 1, .. }), "{err:?}");
    assert_eq!(sync.peer_status(&peer), Some(PeerStatus::Usable));
    // Asked again from the new head, the proof verifies.
    assert!(sync.handle_chain_proof(peer, chain.chain_proof(1)).unwrap());
    assert_eq!(sync.head().height, 3);
}
