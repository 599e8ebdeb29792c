//! Unit tests of the peer manager: no sockets, `now` is a number.

use super::*;

fn config() -> PeerManagerConfig {
    PeerManagerConfig {
        target_peers: 4,
        max_peers: 8,
        reserved_slots: 4,
        max_connections: 100,
        max_per_ip: 3,
        max_pending_inbound: 4,
        max_pending_per_ip: 2,
        handshake_timeout_ms: 1_000,
        hello_deadline_ms: 1_000,
        tl0_quota: 3,
        tl0_grace_ms: 10_000,
        redial_interval_ms: 1_000,
        backoff_base_ms: 2_000,
        backoff_max_ms: 16_000,
        ip_ban_after: 3,
        ip_ban_window_ms: 60_000,
        ip_ban_ms: 120_000,
        limit_loopback: false,
        reserved: Vec::new(),
    }
}

fn addr(ip: &str) -> Multiaddr {
    format!("/ip4/{ip}/tcp/4000").parse().unwrap()
}

struct Ids(usize);
impl Ids {
    fn next(&mut self) -> ConnectionId {
        self.0 += 1;
        ConnectionId::new_unchecked(self.0)
    }
}

/// Connects a fresh peer inbound from `ip` (pending stage, then established).
fn inbound(m: &mut PeerManager, ids: &mut Ids, ip: &str, now: u64) -> Result<PeerId, Refusal> {
    let peer = PeerId::random();
    inbound_as(m, ids, peer, ip, now).map(|()| peer)
}

fn inbound_as(m: &mut PeerManager, ids: &mut Ids, peer: PeerId, ip: &str, now: u64) -> Result<(), Refusal> {
    let c = ids.next();
    m.on_pending_inbound(c, &addr(ip), now)?;
    m.on_established(c, peer, &addr(ip), Direction::Inbound, now)
        .inspect_err(|_| m.on_connection_failed(c))
}

fn disconnected(actions: &[Action]) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Disconnect { peer, .. } => Some(*peer),
            Action::Dial { .. } => None,
        })
        .collect()
}

#[test]
fn one_ip_gets_at_most_max_per_ip_peers_but_reserved_peers_pass() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    for _ in 0..3 {
        let p = inbound(&mut m, &mut ids, "10.0.0.1", 0).unwrap();
        m.on_hello(p, Tier::TL1, false, &[], 0);
    }
    assert_eq!(inbound(&mut m, &mut ids, "10.0.0.1", 0), Err(Refusal::PerIp));
    // Another IP is not affected.
    assert!(inbound(&mut m, &mut ids, "10.0.0.2", 0).is_ok());
    // A validator we know from before gets in from the crowded IP.
    let validator = PeerId::random();
    m.add_validator(validator, &[]);
    assert!(inbound_as(&mut m, &mut ids, validator, "10.0.0.1", 0).is_ok());
}

#[test]
fn pending_handshakes_are_bounded_and_a_silent_peer_holds_a_slot_only_until_the_hello_deadline() {
    let mut m = PeerManager::new(PeerManagerConfig {
        tl0_quota: 8,
        ..config()
    });
    let mut ids = Ids(0);
    // Four silent peers from four IPs fill the pending slots...
    for i in 0..4 {
        inbound(&mut m, &mut ids, &format!("10.0.1.{i}"), 0).unwrap();
    }
    // ...so a fifth is refused before its Noise handshake.
    let c = ids.next();
    assert_eq!(
        m.on_pending_inbound(c, &addr("10.0.2.1"), 500),
        Err(Refusal::PendingFull)
    );
    // Per IP: two upgrading connections from one IP, the third refused.
    let mut m2 = PeerManager::new(config());
    assert!(m2.on_pending_inbound(ids.next(), &addr("10.0.3.1"), 0).is_ok());
    assert!(m2.on_pending_inbound(ids.next(), &addr("10.0.3.1"), 0).is_ok());
    assert_eq!(
        m2.on_pending_inbound(ids.next(), &addr("10.0.3.1"), 0),
        Err(Refusal::PendingPerIp)
    );
    // After the Hello deadline the silent ones are settled as TL0 and the
    // pending slots are free again.
    m.tick(1_000, &[]);
    assert!(m.on_pending_inbound(ids.next(), &addr("10.0.2.1"), 1_000).is_ok());
    let classes = m.classes();
    assert_eq!(classes.values().sum::<i64>(), 4);
    assert!(classes.keys().all(|c| c.tier == "TL0"), "{classes:?}");
}

#[test]
fn tl0_quota_prunes_the_least_useful_and_protects_newcomers_for_the_grace_period() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    let useful = inbound(&mut m, &mut ids, "10.0.0.1", 0).unwrap();
    let idle_a = inbound(&mut m, &mut ids, "10.0.0.2", 0).unwrap();
    let idle_b = inbound(&mut m, &mut ids, "10.0.0.3", 100).unwrap();
    for p in [useful, idle_a, idle_b] {
        assert!(m.on_hello(p, Tier::TL0, false, &[], 200).is_empty());
    }
    m.mark_useful(&useful);
    // A fourth TL0 after the grace of the first three: the oldest idle one goes.
    let newcomer = inbound(&mut m, &mut ids, "10.0.0.4", 20_000).unwrap();
    let pruned = disconnected(&m.on_hello(newcomer, Tier::TL0, false, &[], 20_000));
    assert_eq!(pruned, vec![idle_a]);
    // A fifth at once: the other idle one (past its grace) goes, not the
    // newcomer (in its grace) nor the useful one.
    let fifth = inbound(&mut m, &mut ids, "10.0.0.5", 20_001).unwrap();
    let pruned = disconnected(&m.on_hello(fifth, Tier::TL0, false, &[], 20_001));
    assert_eq!(pruned, vec![idle_b]);
    assert!(m.is_connected(&useful) && m.is_connected(&newcomer) && m.is_connected(&fifth));
    // Registered peers are not in the quota.
    let tl1 = inbound(&mut m, &mut ids, "10.0.0.6", 20_002).unwrap();
    assert!(m.on_hello(tl1, Tier::TL1, false, &[], 20_002).is_empty());
}

#[test]
fn outbound_tl0_peers_are_not_in_the_quota() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    for i in 0..5 {
        let p = PeerId::random();
        m.on_established(ids.next(), p, &addr(&format!("10.0.0.{i}")), Direction::Outbound, 0)
            .unwrap();
        assert!(m.on_hello(p, Tier::TL0, false, &[], 0).is_empty());
    }
}

#[test]
fn a_full_node_refuses_strangers_but_admits_validators_and_configured_reserved_peers() {
    let trusted = PeerId::random();
    let mut cfg = config();
    cfg.reserved = vec![(trusted, addr("10.9.9.9"))];
    let mut m = PeerManager::new(cfg);
    let mut ids = Ids(0);
    for i in 0..8 {
        let p = inbound(&mut m, &mut ids, &format!("10.0.0.{i}"), 0).unwrap();
        m.on_hello(p, Tier::TL2, false, &[], 0);
    }
    assert_eq!(inbound(&mut m, &mut ids, "10.0.1.1", 0), Err(Refusal::Full));
    let validator = PeerId::random();
    m.add_validator(validator, &[addr("10.0.5.5")]);
    assert!(inbound_as(&mut m, &mut ids, validator, "10.0.5.5", 0).is_ok());
    assert!(inbound_as(&mut m, &mut ids, trusted, "10.9.9.9", 0).is_ok());
    // Reserved room is bounded too.
    for _ in 0..2 {
        let v = PeerId::random();
        m.add_validator(v, &[]);
        inbound_as(&mut m, &mut ids, v, "10.0.5.5", 0).unwrap();
    }
    let v = PeerId::random();
    m.add_validator(v, &[]);
    assert_eq!(inbound_as(&mut m, &mut ids, v, "10.0.5.5", 0), Err(Refusal::HardCap));
}

#[test]
fn a_validator_proven_by_hello_becomes_reserved_and_its_ip_skips_the_pending_checks() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    let v = PeerId::random();
    m.on_established(ids.next(), v, &addr("10.0.7.7"), Direction::Outbound, 0)
        .unwrap();
    m.on_hello(v, Tier::TL3, true, &[addr("10.0.7.7")], 0);
    assert!(m.is_reserved(&v));
    // Strangers from the validator's IP flood the pending stage: no refusal
    // there (the PeerId is unknown), the PeerId checks come after Noise.
    for _ in 0..10 {
        assert!(m.on_pending_inbound(ids.next(), &addr("10.0.7.7"), 0).is_ok());
    }
    assert_eq!(
        m.on_pending_inbound(ids.next(), &addr("10.0.8.8"), 0),
        Err(Refusal::PendingFull)
    );
}

#[test]
fn redial_respects_target_and_backoff_and_always_tries_reserved_peers() {
    let trusted = PeerId::random();
    let mut cfg = config();
    cfg.reserved = vec![(trusted, addr("10.9.9.9"))];
    cfg.target_peers = 2;
    let mut m = PeerManager::new(cfg);
    let candidates: Vec<(PeerId, Vec<Multiaddr>)> = (0..5)
        .map(|i| (PeerId::random(), vec![addr(&format!("10.1.0.{i}"))]))
        .collect();
    let dials = |actions: Vec<Action>| -> Vec<PeerId> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Dial { peer, .. } => Some(peer),
                Action::Disconnect { .. } => None,
            })
            .collect()
    };
    // Reserved first, then candidates only up to the target.
    let first = dials(m.tick(1_000, &candidates));
    assert_eq!(first, vec![trusted, candidates[0].0]);
    // Both fail: each waits 2 s, then 4 s after the second failure.
    m.on_dial_failed(trusted, 1_100);
    m.on_dial_failed(candidates[0].0, 1_100);
    assert_eq!(m.next_dial_ms(&trusted), 3_100);
    let second = dials(m.tick(2_100, &candidates));
    assert_eq!(
        second,
        vec![candidates[1].0, candidates[2].0],
        "backoff holds the failed ones"
    );
    m.on_dial_failed(candidates[1].0, 2_200);
    m.on_dial_failed(candidates[2].0, 2_200);
    let third = dials(m.tick(3_200, &candidates));
    assert!(
        third.contains(&trusted) && third.contains(&candidates[0].0),
        "{third:?}"
    );
    m.on_dial_failed(trusted, 3_300);
    assert_eq!(m.next_dial_ms(&trusted), 7_300);
    // The backoff is capped.
    for _ in 0..10 {
        m.on_dial_failed(trusted, 10_000);
    }
    assert_eq!(m.next_dial_ms(&trusted), 26_000);
    // A connected peer is not dialled; a connected reserved peer neither.
    let mut ids = Ids(0);
    m.on_established(ids.next(), trusted, &addr("10.9.9.9"), Direction::Outbound, 30_000)
        .unwrap();
    assert!(!dials(m.tick(30_000, &candidates)).contains(&trusted));
}

#[test]
fn repeated_bans_from_one_ip_ban_the_ip_and_its_strangers_but_not_reserved_peers() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    let validator = PeerId::random();
    m.add_validator(validator, &[]);
    inbound_as(&mut m, &mut ids, validator, "10.0.0.9", 0).unwrap();
    let bystander = inbound(&mut m, &mut ids, "10.0.0.9", 0).unwrap();
    for i in 0..2u64 {
        let p = inbound(&mut m, &mut ids, "10.0.0.9", i).unwrap();
        assert!(m.on_peer_banned(&p, i).is_empty());
        m.on_closed(ConnectionId::new_unchecked(ids.0));
    }
    let third = inbound(&mut m, &mut ids, "10.0.0.9", 10).unwrap();
    let pruned = disconnected(&m.on_peer_banned(&third, 10));
    assert!(pruned.contains(&bystander) && pruned.contains(&third), "{pruned:?}");
    assert!(!pruned.contains(&validator));
    assert!(m.is_ip_banned(&"10.0.0.9".parse().unwrap(), 11));
    assert_eq!(
        m.on_pending_inbound(ids.next(), &addr("10.0.0.9"), 11),
        Err(Refusal::IpBanned)
    );
    // The ban ends.
    m.tick(120_011, &[]);
    assert!(m.on_pending_inbound(ids.next(), &addr("10.0.0.9"), 120_011).is_ok());
}

#[test]
fn bans_spread_out_beyond_the_window_do_not_ban_the_ip() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    for i in 0..5u64 {
        let now = i * 61_000;
        let p = inbound(&mut m, &mut ids, "10.0.0.9", now).unwrap();
        assert!(m.on_peer_banned(&p, now).is_empty());
        m.on_closed(ConnectionId::new_unchecked(ids.0));
    }
    assert!(!m.is_ip_banned(&"10.0.0.9".parse().unwrap(), 5 * 61_000));
}

#[test]
fn closed_and_failed_connections_free_their_slots() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    for _ in 0..3 {
        let p = inbound(&mut m, &mut ids, "10.0.0.1", 0).unwrap();
        m.on_hello(p, Tier::TL1, false, &[], 0);
    }
    assert_eq!(inbound(&mut m, &mut ids, "10.0.0.1", 0), Err(Refusal::PerIp));
    m.on_closed(ConnectionId::new_unchecked(1));
    assert!(inbound(&mut m, &mut ids, "10.0.0.1", 0).is_ok());
    // A pending connection that fails before Noise frees its pending slot.
    let mut m = PeerManager::new(config());
    let c = ids.next();
    m.on_pending_inbound(c, &addr("10.0.0.2"), 0).unwrap();
    m.on_pending_inbound(ids.next(), &addr("10.0.0.2"), 0).unwrap();
    assert!(m.on_pending_inbound(ids.next(), &addr("10.0.0.2"), 0).is_err());
    m.on_connection_failed(c);
    assert!(m.on_pending_inbound(ids.next(), &addr("10.0.0.2"), 0).is_ok());
}

#[test]
fn the_default_section_parses_back_to_the_defaults() {
    let text = config::default_section();
    #[derive(serde::Deserialize)]
    struct Doc {
        connections: ConnectionsConfig,
    }
    let doc: Doc = toml::from_str(&text).unwrap();
    assert_eq!(doc.connections, ConnectionsConfig::default());
    assert!(doc.connections.validate(128).is_ok());
    let bad = ConnectionsConfig {
        tl0_quota: 100,
        ..Default::default()
    };
    assert_eq!(bad.validate(128).unwrap_err().key, "tl0_quota");
    let no_time = ConnectionsConfig {
        handshake_timeout_ms: 0,
        ..Default::default()
    };
    assert_eq!(no_time.validate(128).unwrap_err().key, "handshake_timeout_ms");
}

#[test]
fn loopback_is_exempt_from_per_ip_rules_unless_configured() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    for _ in 0..6 {
        let p = inbound(&mut m, &mut ids, "127.0.0.1", 0).unwrap();
        m.on_hello(p, Tier::TL1, false, &[], 0);
    }
    let mut m = PeerManager::new(PeerManagerConfig {
        limit_loopback: true,
        ..config()
    });
    for _ in 0..3 {
        let p = inbound(&mut m, &mut ids, "127.0.0.1", 0).unwrap();
        m.on_hello(p, Tier::TL1, false, &[], 0);
    }
    assert_eq!(inbound(&mut m, &mut ids, "127.0.0.1", 0), Err(Refusal::PerIp));
}

fn addr6(ip: &str) -> Multiaddr {
    format!("/ip6/{ip}/tcp/4000").parse().unwrap()
}

/// A host holds a whole IPv6 /64 and may use a new address for every
/// connection: per-address rules let it take any number of pending slots
/// and shed every IP ban. Per-IP rules now count an IPv6 /64 as one IP.
#[test]
fn an_ipv6_host_cannot_dodge_per_ip_rules_with_new_addresses_from_its_64() {
    let mut m = PeerManager::new(config());
    let mut ids = Ids(0);
    // Pending per IP: two from the /64, the third refused, whatever its address.
    assert!(m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:1::1"), 0).is_ok());
    assert!(m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:1::2"), 0).is_ok());
    assert_eq!(
        m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:1:ffff::3"), 0),
        Err(Refusal::PendingPerIp)
    );
    // Another /64 has budget of its own.
    assert!(m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:2::1"), 0).is_ok());

    // Bans from three addresses of one /64 ban the /64.
    let mut m = PeerManager::new(config());
    for i in 0..3u64 {
        let c = ids.next();
        let from = addr6(&format!("2001:db8:0:9::{}", i + 1));
        m.on_pending_inbound(c, &from, i).unwrap();
        let p = PeerId::random();
        m.on_established(c, p, &from, Direction::Inbound, i).unwrap();
        m.on_peer_banned(&p, i);
        m.on_closed(c);
    }
    assert!(m.is_ip_banned(&"2001:db8:0:9::abcd".parse().unwrap(), 10));
    assert_eq!(
        m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:9:1:2:3:4"), 10),
        Err(Refusal::IpBanned)
    );
    assert!(m.on_pending_inbound(ids.next(), &addr6("2001:db8:0:a::1"), 10).is_ok());
}

#[test]
fn address_groups_are_ipv4_addresses_and_ipv6_64s() {
    let group = |ip: &str| address_group(ip.parse().unwrap()).to_string();
    assert_eq!(group("10.1.2.3"), "10.1.2.3");
    assert_eq!(group("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
    assert_eq!(group("::ffff:10.1.2.3"), "10.1.2.3");
    assert_eq!(group("::1"), "::1");
}
