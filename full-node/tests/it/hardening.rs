//! Issue 14 with real processes on loopback: an honest relay never pays
//! for a message that is refused downstream only because of the next hop's
//! clock, and a peer that never answers sync requests cannot keep a
//! restarted validator behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tiernet_core::identity::ZsiKeypair;
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{Topic, encode, proto};

use crate::chain::{Member, PROGRESS, key, network, wait_height};
use crate::common::{eventually, genesis, http_post, metric_sum, peers, wait_for_peers};

/// Writes a config file for node `name` and returns its path.
fn config(net: &Path, name: &str, text: &str) -> String {
    let path: PathBuf = net.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn wait_linked(member: &Member, others: &[&Member]) {
    wait_for_peers(&member.node.telemetry, "connected", |peers| {
        others
            .iter()
            .all(|o| peers.iter().any(|p| p.peer_id == o.node.peer_id && p.connected))
    });
}

fn decisions(member: &Member, topic: &str, decision: &str) -> f64 {
    metric_sum(
        &member.node.telemetry,
        &[
            "tiernet_gossip_messages_total",
            &format!("topic=\"{topic}\""),
            &format!("decision=\"{decision}\""),
        ],
    )
}

/// The maximum clock skew of heartbeats (GossipSub's duplicate cache time).
const SKEW_MS: u64 = 120_000;

#[test]
fn honest_relays_are_not_charged_for_messages_stale_only_at_the_next_hop() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    genesis(net, &["--validators", "1", "--members", "TL1"]);
    // A line M – A – B – C, the chain's one validator V beside A. B's clock
    // runs 3 s ahead of A's, C's 6 s.
    let v = Member::start(net, "v", Some(&key(net, 0)), &[]);
    let a = Member::start(net, "a", None, &[&v.node.tcp]);
    let b_config = config(net, "b", "[testing]\nclock_offset_ms = 3000\n");
    let b = Member::start_with(net, "b", None, &[&a.node.tcp], &["--config", &b_config]);
    let c_config = config(net, "c", "[testing]\nclock_offset_ms = 6000\n");
    let c = Member::start_with(net, "c", None, &[&b.node.tcp], &["--config", &c_config]);
    // The attacker: a registered TL1 identity, connected to A only.
    let m = Member::start(net, "m", Some(&key(net, 1)), &[&a.node.tcp]);
    wait_linked(&a, &[&v, &b, &m]);
    wait_linked(&b, &[&a, &c]);
    // Gossip flows down the line once C follows the chain.
    wait_height(&[&a, &b, &c], 3, "the chain reaches the end of the line");

    // A hundred heartbeats, each just inside A's clock skew: fresh at A,
    // stale at B (whose clock is 3 s ahead).
    let attacker = ZsiKeypair::load(&key(net, 1)).unwrap().unwrap();
    let stale_before = decisions(&b, "meta", "stale");
    for i in 0..100u64 {
        let now = tiernet_node::node::now_ms();
        let mut heartbeat = proto::Heartbeat {
            network_id: "devnet".into(),
            zsi_id: attacker.zsi_id().as_bytes().to_vec(),
            height: 1,
            head_hash: Vec::new(),
            time_ms: now - SKEW_MS + 1_500,
            // Above the attacker node's own clock-based sequence.
            sequence: now + 1_000_000 + i,
            agent: "edge".into(),
            signature: Vec::new(),
            ..Default::default()
        };
        heartbeat.sign_with(attacker.identity_key());
        let data = encode(&proto::MetaMessage {
            kind: Some(proto::meta_message::Kind::Heartbeat(heartbeat)),
        });
        let path = format!(
            "/testing/publish?topic={}&data={}",
            Topic::Meta.name(),
            hex::encode(&data)
        );
        let (status, body) = http_post(&m.node.telemetry, &path);
        assert_eq!(status, 200, "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Positive evidence: B saw them all and found each stale.
    eventually("B finds all hundred stale", PROGRESS, || {
        decisions(&b, "meta", "stale") >= stale_before + 100.0
    });
    // Nobody honest paid: B holds nothing against A, C nothing against B.
    for (judge, relay, name) in [(&b, &a, "A at B"), (&c, &b, "B at C")] {
        let record = peers(&judge.node.telemetry)
            .into_iter()
            .find(|p| p.peer_id == relay.node.peer_id)
            .unwrap_or_else(|| panic!("{name}: no record"));
        assert!(
            record.connected && record.banned_until_ms.is_none(),
            "{name}: {record:?}"
        );
        assert!(record.score >= 0.0, "{name}: score {}", record.score);
    }
    for judge in [&b, &c] {
        let penalties = metric_sum(
            &judge.node.telemetry,
            &["tiernet_reputation_events_total", "invalid_message"],
        );
        assert_eq!(penalties, 0.0, "an honest node recorded invalid messages");
    }
}

#[test]
fn a_peer_that_never_answers_cannot_keep_a_restarted_validator_behind() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let mut v = network(net, &[]);
    wait_height(&[&v[0], &v[1], &v[2], &v[3]], 3, "four validators finalize");
    // The silent peer: a TL0 node that takes sync requests and never answers.
    let silent_config = config(net, "s", "[testing]\nsilent_sync = true\n");
    let s = Member::start_with(net, "s", None, &[&v[0].node.tcp], &["--config", &silent_config]);
    wait_height(&[&s], 3, "the silent peer follows the chain");

    // V3 goes down while the others go on.
    let behind = v[3].height();
    v[3].kill();
    wait_height(&[&v[0], &v[1], &v[2]], behind + 15, "three validators go on");

    // V3 returns with the silent peer as its only reachable peer: the
    // validators are on its block list, so everything reaches it through S.
    let blocked: Vec<String> = v[..3].iter().map(|m| format!("\"{}\"", m.node.peer_id)).collect();
    let v3_config = config(net, "v3", &format!("[peers]\nblock = [{}]\n", blocked.join(", ")));
    v[3].restart_with(&s.node.tcp, &["--config", &v3_config]);
    eventually("V3 asks the silent peer and gives up on it", PROGRESS, || {
        metric_sum(
            &v[3].node.telemetry,
            &["tiernet_catch_up_answers_total", "answer=\"silent\""],
        ) >= 1.0
    });
    // An honest TL0 full node appears, connected to V3 and the validators:
    // V3 catches up from it at once, whatever the silent peer does.
    let f = Member::start(net, "f", None, &[&v[0].node.tcp, &v[3].node.tcp]);
    let head = v[0].height();
    wait_height(&[&v[3]], head, "V3 catches up past the silent peer");
    let applied = metric_sum(
        &v[3].node.telemetry,
        &["tiernet_catch_up_answers_total", "answer=\"applied\""],
    );
    assert!(applied >= 1.0, "V3 caught up through catch-up answers");
    drop(f);
}
