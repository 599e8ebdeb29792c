//! Issue 17 with real processes on loopback: heartbeats carry the real
//! height and measured round-trip times; a killed node is reported offline
//! by every other node within the configured number of heartbeats and
//! online again after it restarts; a TL1 member earns TL2 through its own
//! uptime proofs (no test API), at the same height on every node, and the
//! same claim submitted again is refused.

use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::SignedMessage;
use tiernet_node::telemetry::{AlertsView, NodeLiveness};

use crate::chain::{Member, check_chain, key};
use crate::common::{eventually, genesis, http_get, http_post};

/// Heartbeat interval of the test nodes, ms.
const INTERVAL_MS: u64 = 300;
/// Intervals of silence before a node is offline.
const OFFLINE_AFTER: u64 = 3;

fn flags() -> Vec<String> {
    vec![
        "--heartbeat-interval-ms".into(),
        INTERVAL_MS.to_string(),
        "--offline-after".into(),
        OFFLINE_AFTER.to_string(),
    ]
}

/// Four validators and one TL1 member (node-4), with short uptime windows
/// in the genesis (5 blocks, a credited "minute" of one second, TL2 at 6).
fn devnet(net: &Path) -> Vec<Member> {
    genesis(net, &["--validators", "4", "--members", "TL1", "--short-uptime"]);
    let text = std::fs::read_to_string(net.join("genesis.json")).unwrap();
    let g: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(g["uptime"]["window_blocks"], 5);
    assert_eq!(g["tiers"]["available_uptime_minutes"], 6);
    let flags = flags();
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    let first = Member::start_with(net, "v0", Some(&key(net, 0)), &[], &extra);
    let boot = first.node.tcp.clone();
    let mut all = vec![first];
    for i in 1..5 {
        let name = if i < 4 { format!("v{i}") } else { "m4".to_owned() };
        all.push(Member::start_with(net, &name, Some(&key(net, i)), &[&boot], &extra));
    }
    all
}

fn liveness(m: &Member) -> Vec<NodeLiveness> {
    let (status, body) = http_get(&m.node.telemetry, "/liveness");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn alerts(m: &Member) -> AlertsView {
    let (status, body) = http_get(&m.node.telemetry, "/alerts");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn zsi(m: &Member) -> String {
    m.node.zsi_id.clone().unwrap()
}

#[test]
fn a_killed_node_is_reported_offline_everywhere_and_online_after_restart_and_heartbeats_are_real() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = devnet(dir.path());
    let ids: Vec<String> = nodes.iter().map(zsi).collect();
    // Everyone hears everyone, with real heights and measured RTTs.
    eventually("every node hears the four others", Duration::from_secs(30), || {
        nodes.iter().enumerate().all(|(i, m)| {
            let heard = liveness(m);
            ids.iter().enumerate().filter(|(j, _)| *j != i).all(|(_, id)| {
                heard
                    .iter()
                    .any(|n| &n.node == id && n.state == "online" && n.height > 0)
            })
        })
    });
    eventually(
        "v1's heartbeats carry round-trip times",
        Duration::from_secs(30),
        || {
            liveness(&nodes[0])
                .iter()
                .any(|n| n.node == ids[1] && !n.rtts_ms.is_empty() && n.peer_count > 0)
        },
    );
    let own_height = nodes[1].height();
    let of_v1 = liveness(&nodes[0]).into_iter().find(|n| n.node == ids[1]).unwrap();
    assert!(
        of_v1.height + 3 >= own_height && of_v1.height <= own_height + 3,
        "v1 reported height {} while its chain is at {own_height}",
        of_v1.height
    );
    assert_eq!(of_v1.head_hash.len(), 64);
    assert!(of_v1.agent.starts_with("tiernet-node/"), "{}", of_v1.agent);
    assert!(of_v1.rtts_ms.values().all(|&ms| ms < 1_000), "{:?}", of_v1.rtts_ms);
    assert!(
        of_v1.delay_ms < 2_000,
        "propagation delay {} ms on loopback",
        of_v1.delay_ms
    );
    assert!(of_v1.peer_count as usize >= of_v1.rtts_ms.len().min(1));
    eprintln!(
        "v0 hears v1 at height {} (own {own_height}), {} peers, RTTs {:?}, delay {} ms",
        of_v1.height, of_v1.peer_count, of_v1.rtts_ms, of_v1.delay_ms
    );

    // Kill a validator (the three others still finalize): every other node
    // reports it offline in time.
    const VICTIM: usize = 3;
    let victim = ids[VICTIM].clone();
    let others: Vec<usize> = (0..nodes.len()).filter(|i| *i != VICTIM).collect();
    nodes[VICTIM].kill();
    let killed = Instant::now();
    let mut reported = vec![None; others.len()];
    let limit = Duration::from_secs(15);
    while reported.iter().any(Option::is_none) && killed.elapsed() < limit {
        for (slot, &i) in others.iter().enumerate() {
            if reported[slot].is_none() && alerts(&nodes[i]).offline.iter().any(|n| n.node == victim) {
                reported[slot] = Some(killed.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reported: Vec<Duration> = reported
        .into_iter()
        .map(|r| r.expect("every node reports the killed node offline"))
        .collect();
    // Offline after 3 silent intervals (0.9 s), checked every 0.3–0.5 s, plus
    // the heartbeat that may have been in flight: well within 3 s.
    let bound = Duration::from_millis(INTERVAL_MS * (OFFLINE_AFTER + 2) + 1_000);
    assert!(
        reported.iter().all(|d| *d <= bound),
        "reported after {reported:?}, bound {bound:?}"
    );
    eprintln!("offline reported after {reported:?} (interval {INTERVAL_MS} ms, offline after {OFFLINE_AFTER})");
    for &i in &others {
        let telemetry = &nodes[i].node.telemetry;
        let offline = crate::common::metric_sum(telemetry, &["tiernet_liveness_nodes", "state=\"offline\""]);
        assert_eq!(offline, 1.0, "node {i}");
        let validators = crate::common::metric_sum(telemetry, &["tiernet_liveness_validators_offline"]);
        assert_eq!(validators, 1.0, "node {i}: the killed node is a validator");
    }

    // Every metric the dashboard and the alert rules use is on /metrics.
    every_deployed_metric_is_exported(&nodes[0].node.telemetry);

    // Restart: online again everywhere.
    let boot = nodes[0].node.tcp.clone();
    nodes[VICTIM].restart_via(&boot);
    eventually(
        "the restarted node is online again everywhere",
        Duration::from_secs(30),
        || {
            others.iter().all(|&i| {
                !alerts(&nodes[i]).offline.iter().any(|n| n.node == victim)
                    && liveness(&nodes[i])
                        .iter()
                        .any(|n| n.node == victim && n.state == "online")
            })
        },
    );
}

#[test]
fn a_tl1_member_earns_tl2_by_its_own_uptime_proofs_and_a_replay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = devnet(dir.path());
    let member = zsi(&nodes[4]);
    let tier_of = |m: &Member| {
        m.chain()
            .identities
            .into_iter()
            .find(|i| i.zsi_id == member)
            .map(|i| i.tier)
            .unwrap()
    };
    assert_eq!(tier_of(&nodes[0]), "TL1");
    eventually("the member is TL2 on every node", Duration::from_secs(50), || {
        nodes.iter().all(|m| tier_of(m) == "TL2")
    });
    let upto = nodes.iter().map(Member::height).min().unwrap();
    check_chain(dir.path(), &nodes.iter().collect::<Vec<_>>(), upto);

    // The height at which it became TL2, from each node's own blocks.
    let mut crossings = Vec::new();
    let mut included = None;
    for m in &nodes {
        let mut minutes = 0;
        let mut crossed = None;
        for height in 1..=upto {
            let view = m.block(height);
            let fb = proto::FinalizedBlock::decode(hex::decode(&view.finalized).unwrap().as_slice()).unwrap();
            let block = fb.block.unwrap();
            for event in &block.reputation_events {
                if hex::encode(&event.zsi_id) == member
                    && let Some(proto::reputation_event::Kind::UptimeMinutes(n)) = event.kind
                {
                    minutes += n;
                }
            }
            for envelope in &block.proofs {
                if hex::encode(&envelope.submitter) == member && included.is_none() {
                    included = Some(envelope.clone());
                }
            }
            if crossed.is_none() && minutes >= 6 {
                crossed = Some(height);
            }
        }
        crossings.push(crossed.expect("the member's credited uptime reaches 6"));
    }
    assert!(crossings.iter().all(|h| *h == crossings[0]), "{crossings:?}");
    eprintln!("member TL2 at height {} on every node", crossings[0]);

    // The same claim again, in a new envelope at the current height: refused.
    let included = included.expect("an uptime proof of the member was included");
    let subject = ZsiKeypair::load(&key(dir.path(), 4)).unwrap().unwrap();
    let mut again = included.clone();
    again.height = nodes[0].height();
    again.sign_with(subject.identity_key());
    assert_ne!(again, included);
    let (status, body) = http_post(
        &nodes[0].node.telemetry,
        &format!("/testing/submit-proof?envelope={}", hex::encode(again.encode_to_vec())),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("local=Duplicate"), "{body}");
}

/// The metric names (`tiernet_…`) in `deploy/grafana/tiernet-dashboard.json`
/// and `deploy/prometheus/tiernet-rules.yml`, each checked against a running
/// node's `/metrics`.
fn every_deployed_metric_is_exported(telemetry: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("deploy");
    let mut names = std::collections::BTreeSet::new();
    for file in ["grafana/tiernet-dashboard.json", "prometheus/tiernet-rules.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("tiernet_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    assert!(names.len() >= 15, "{names:?}");
    let (status, body) = http_get(telemetry, "/metrics");
    assert_eq!(status, 200);
    let exported: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "dashboard or rules use metrics the node does not export: {missing:?}"
    );
}
