//! The peerstore through its public API: persistence, batching, bounds,
//! addresses and dial order.

use std::path::Path;

use libp2p::{Multiaddr, PeerId};
use tiernet_core::identity::ZsiId;
use tiernet_core::reputation::{Outcome, PeerEvent, ReputationParams};
use tiernet_core::tier::Tier;
use tiernet_node::peerstore::{MAX_ADDRS_PER_PEER, Peerstore};
use tiernet_node::store::{STORE_FILE, Store};

fn params() -> ReputationParams {
    ReputationParams::default()
}

fn open(path: &Path, max_peers: usize, now_ms: u64) -> Peerstore {
    Peerstore::open_at(Store::open(path).unwrap(), max_peers, params(), now_ms).unwrap()
}

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/192.0.2.1/tcp/{port}").parse().unwrap()
}

#[test]
fn records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let peer = PeerId::random();
    let banned = PeerId::random();
    let zsi = ZsiId::from_slice(&[7; 32]).unwrap();
    let now = 1_000_000;
    let (score, ban_end) = {
        let mut peers = open(&path, 100, now);
        peers
            .set_identity(peer, Some(zsi), Tier::TL3, "tiernet-node/0.1", now)
            .unwrap();
        peers.add_addresses(peer, [addr(1), addr(2)], now);
        peers.record_event(peer, PeerEvent::InvalidMessage, now).unwrap();
        peers.ban(banned, now + 60_000).unwrap();
        assert_eq!(peers.flush().unwrap(), 1);
        (peers.score(&peer, now), peers.banned_until(&banned, now))
    };
    assert_eq!(score, -20.0);
    assert_eq!(ban_end, Some(now + 60_000));
    let peers = open(&path, 100, now);
    assert_eq!(peers.len(), 2);
    let record = peers.get(&peer).unwrap();
    assert_eq!(record.zsi_id, Some(zsi));
    assert_eq!(record.tier, Tier::TL3);
    assert_eq!(record.agent, "tiernet-node/0.1");
    assert_eq!(record.addrs, vec![addr(1), addr(2)]);
    assert_eq!(record.last_seen_ms, now);
    assert_eq!(peers.score(&peer, now), score);
    assert_eq!(peers.banned_until(&banned, now), ban_end);
    assert_eq!(peers.banned_until(&peer, now), None);
}

#[test]
fn a_repeated_hello_costs_no_store_write_of_its_own() {
    // Issue 14, point 5: each verified Hello used to write the peer's record
    // at once, so a peer repeating its Hello made the node fsync per message.
    let dir = tempfile::tempdir().unwrap();
    let mut peers = open(&dir.path().join(STORE_FILE), 100, 1_000);
    let peer = PeerId::random();
    let zsi = Some(ZsiId(tiernet_core::hash::Hash32([7; 32])));
    peers.set_identity(peer, zsi, Tier::TL1, "agent/1", 1_000).unwrap();
    let after_first = peers.write_transactions();
    assert!(after_first >= 1, "a new identity is written at once");
    for i in 0..100 {
        peers.set_identity(peer, zsi, Tier::TL1, "agent/1", 1_001 + i).unwrap();
    }
    assert_eq!(
        peers.write_transactions(),
        after_first,
        "the same identity again writes nothing at once"
    );
    assert_eq!(
        peers.flush().unwrap(),
        1,
        "the contact time goes out with the next batch"
    );
    // A change (here the tier) is still written at once.
    peers.set_identity(peer, zsi, Tier::TL2, "agent/1", 2_000).unwrap();
    assert_eq!(peers.write_transactions(), after_first + 2);
}

#[test]
fn routine_changes_wait_for_flush_but_bans_are_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let seen = PeerId::random();
    let offender = PeerId::random();
    let now = 5_000_000;
    let ban_end = {
        let mut peers = open(&path, 100, now);
        peers.observe(seen, now);
        peers.add_addresses(seen, [addr(1)], now);
        let ban_end = loop {
            match peers.record_event(offender, PeerEvent::FailedHandshake, now).unwrap() {
                Outcome::Scored { .. } => continue,
                Outcome::Banned { until_ms, .. } => break until_ms,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(peers.dirty_len(), 1, "only the observed peer waits for a flush");
        ban_end
        // Dropped without flush.
    };
    let mut peers = open(&path, 100, now);
    assert!(peers.get(&seen).is_none(), "observe alone does not write");
    assert_eq!(peers.banned_until(&offender, now), Some(ban_end));

    peers.observe(seen, now);
    assert_eq!(peers.flush().unwrap(), 1);
    assert_eq!(peers.flush().unwrap(), 0);
    peers.unban(&offender).unwrap();
    drop(peers);
    let peers = open(&path, 100, now);
    assert_eq!(peers.get(&seen).unwrap().last_seen_ms, now);
    assert_eq!(peers.banned_until(&offender, now), None, "an unban is written at once");
}

#[test]
fn the_bound_holds_and_good_peers_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let max = 8;
    let mut peers = open(&path, max, 0);
    let mut good = Vec::new();
    for i in 0..4 {
        let peer = PeerId::random();
        peers.set_identity(peer, None, Tier::TL4, "", i).unwrap();
        good.push(peer);
    }
    let banned = PeerId::random();
    peers.ban(banned, u64::MAX).unwrap();
    for now in 10..1_000 {
        let peer = PeerId::random();
        peers.observe(peer, now);
        peers.add_addresses(peer, [addr(1)], now);
        assert!(peers.len() <= max);
    }
    peers.flush().unwrap();
    assert_eq!(peers.len(), max);
    for peer in &good {
        assert!(peers.get(peer).is_some(), "a TL4 peer was evicted");
    }
    assert!(peers.banned_until(&banned, 2_000).is_some(), "the ban holds");
    drop(peers);
    let peers = open(&path, max, 2_000);
    assert_eq!(peers.len(), max, "evicted rows are deleted");
    for peer in &good {
        assert!(peers.get(peer).is_some());
    }
}

#[test]
fn addresses_are_deduplicated_most_recent_first_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = open(&dir.path().join(STORE_FILE), 10, 0);
    let peer = PeerId::random();
    peers.add_addresses(peer, [addr(1), addr(2), addr(1)], 1);
    assert_eq!(peers.get(&peer).unwrap().addrs, vec![addr(1), addr(2)]);
    let with_suffix = addr(2).with(libp2p::multiaddr::Protocol::P2p(peer));
    peers.add_addresses(peer, [with_suffix, addr(3)], 2);
    assert_eq!(peers.get(&peer).unwrap().addrs, vec![addr(2), addr(3), addr(1)]);
    peers.add_addresses(peer, (10..30).map(addr), 3);
    let expected: Vec<Multiaddr> = (10..10 + MAX_ADDRS_PER_PEER as u16).map(addr).collect();
    assert_eq!(peers.get(&peer).unwrap().addrs, expected);
    // Nothing dialable: no record is created.
    let nobody = PeerId::random();
    peers.add_addresses(nobody, ["/ip4/0.0.0.0/tcp/1".parse().unwrap()], 4);
    assert!(peers.get(&nobody).is_none());
}

#[test]
fn dial_candidates_are_ordered_and_exclude_banned_and_addressless_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = open(&dir.path().join(STORE_FILE), 10, 0);
    let now = 10_000;
    let [tl1, tl3_poor, tl3_good, tl3_good_recent, banned, no_addr] = std::array::from_fn(|_| PeerId::random());
    peers.set_identity(tl1, None, Tier::TL1, "", now).unwrap();
    peers.set_identity(tl3_poor, None, Tier::TL3, "", now).unwrap();
    peers.set_identity(tl3_good, None, Tier::TL3, "", now - 10).unwrap();
    peers.set_identity(tl3_good_recent, None, Tier::TL3, "", now).unwrap();
    peers.set_identity(banned, None, Tier::TL5, "", now).unwrap();
    peers.set_identity(no_addr, None, Tier::TL5, "", now).unwrap();
    peers.record_event(tl3_poor, PeerEvent::Replay, now).unwrap();
    for peer in [tl1, tl3_poor, tl3_good, tl3_good_recent, banned] {
        peers.add_addresses(peer, [addr(1)], now);
    }
    peers.ban(banned, now + 1).unwrap();
    let order: Vec<PeerId> = peers.dial_candidates(now, 10).into_iter().map(|(p, _)| p).collect();
    assert_eq!(order, vec![tl3_good_recent, tl3_good, tl3_poor, tl1]);
    assert_eq!(peers.dial_candidates(now, 2).len(), 2);
    assert_eq!(peers.dial_candidates(now, 10)[0].1, vec![addr(1)]);
    // Once the ban ends the peer is a candidate again, and first by tier.
    assert_eq!(peers.dial_candidates(now + 1, 10)[0].0, banned);
    assert_eq!(peers.score(&PeerId::random(), now), 0.0);
}

#[test]
fn tier_changes_are_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let peer = PeerId::random();
    {
        let mut peers = open(&path, 10, 0);
        peers.set_tier(&peer, Tier::TL5).unwrap(); // unknown: nothing
        assert!(peers.is_empty());
        peers.set_identity(peer, None, Tier::TL1, "", 1).unwrap();
        peers.set_tier(&peer, Tier::TL2).unwrap();
    }
    assert_eq!(open(&path, 10, 0).get(&peer).unwrap().tier, Tier::TL2);
}
