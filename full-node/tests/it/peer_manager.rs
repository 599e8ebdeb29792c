//! Issue 16 with real processes on loopback: strangers cannot fill a
//! validator's connection slots. 150 fresh identities from one host keep
//! dialling one of four validators; another validator that restarts during
//! the flood gets back in (reserved room), finality goes on, and the flood's
//! connections are refused or pruned and counted in the metrics.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::{SwarmEvent, dummy};
use libp2p::{Multiaddr, Swarm};
use tiernet_node::transport::{self, TransportOptions};

use crate::chain::{Member, PROGRESS, key, wait_height};
use crate::common::{eventually, genesis, metric_sum, peers};

/// How many identities flood the target.
const FLOODERS: usize = 150;

/// The target's `[connections]`: loopback is limited like any IP, and the
/// limits are small enough for 150 strangers to hit every one of them.
const TARGET_CONFIG: &str = "[connections]
limit_loopback = true
max_peers = 30
max_per_ip = 25
max_pending_inbound = 16
max_pending_per_ip = 16
hello_deadline_ms = 1000
tl0_quota = 20
tl0_grace_secs = 2
";

/// A flood of `FLOODERS` fresh identities against `target`, each holding
/// its connection and dialling again 250 ms after it loses it, until
/// dropped.
struct Flood {
    stop: Arc<AtomicBool>,
    established: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(target: &str) -> Self {
        let target: Multiaddr = target.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let established = Arc::new(AtomicUsize::new(0));
        let (stop_flag, count) = (stop.clone(), established.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                for _ in 0..FLOODERS {
                    let (target, stop, count) = (target.clone(), stop_flag.clone(), count.clone());
                    tokio::spawn(async move { flooder(target, stop, count).await });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                while !stop_flag.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        Self {
            stop,
            established,
            thread: Some(thread),
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One fresh identity: dial, hold, and dial again 250 ms after losing
/// the connection. It never sends a Hello (a silent stranger).
async fn flooder(target: Multiaddr, stop: Arc<AtomicBool>, established: Arc<AtomicUsize>) {
    let key = Keypair::generate_ed25519();
    let transport = transport::build(
        &key,
        TransportOptions {
            webrtc_certificate: None,
            websocket_tls: None,
        },
    )
    .unwrap();
    let mut swarm = Swarm::new(
        transport,
        dummy::Behaviour,
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(Duration::from_secs(600)),
    );
    let mut connected = false;
    let mut next_dial = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if !connected && Instant::now() >= next_dial {
            let _ = swarm.dial(target.clone());
            next_dial = Instant::now() + Duration::from_millis(250);
        }
        match tokio::time::timeout(Duration::from_millis(200), swarm.select_next_some()).await {
            Ok(SwarmEvent::ConnectionEstablished { .. }) => {
                connected = true;
                established.fetch_add(1, Ordering::Relaxed);
            }
            Ok(SwarmEvent::ConnectionClosed { num_established: 0, .. }) => connected = false,
            _ => {}
        }
    }
}

fn refused_or_pruned(telemetry: &str) -> f64 {
    metric_sum(telemetry, &["tiernet_connections_refused_total"])
        + metric_sum(telemetry, &["tiernet_connections_pruned_total"])
}

fn connected_to(member: &Member, other: &Member) -> bool {
    peers(&member.node.telemetry)
        .iter()
        .any(|p| p.peer_id == other.node.peer_id && p.connected)
}

fn write_config(net: &Path) -> String {
    let path = net.join("target.toml");
    std::fs::write(&path, TARGET_CONFIG).unwrap();
    path.display().to_string()
}

#[test]
fn strangers_cannot_fill_a_validator_and_a_restarted_validator_gets_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    genesis(net, &["--validators", "4"]);
    let config = write_config(net);
    // v0 is the hub (the others know only it) and the flood's target.
    let v0 = Member::start_with(net, "v0", Some(&key(net, 0)), &[], &["--config", &config]);
    let boot = v0.node.tcp.clone();
    let mut v: Vec<Member> = (1..4)
        .map(|i| Member::start(net, &format!("v{i}"), Some(&key(net, i)), &[&boot]))
        .collect();
    wait_height(&[&v0, &v[0], &v[1], &v[2]], 2, "four validators finalize");

    let flood = Flood::start(&boot);
    eventually("the flood is on", PROGRESS, || {
        flood.established.load(Ordering::Relaxed) >= 60
    });

    // A validator crashes and comes back while the strangers keep dialling.
    v[2].kill();
    eventually("the hub notices the crash", PROGRESS, || !connected_to(&v0, &v[2]));
    // Down for a while, as a real crash and restart is: the strangers have
    // time to take any room it left.
    std::thread::sleep(Duration::from_secs(2));
    v[2].restart();
    let restarted_at = Instant::now();
    eventually("the restarted validator is back at the flooded hub", PROGRESS, || {
        connected_to(&v0, &v[2]) && connected_to(&v[2], &v0)
    });
    eprintln!("restarted validator reconnected after {:?}", restarted_at.elapsed());
    let h = v0.height();
    wait_height(
        &[&v0, &v[0], &v[1], &v[2]],
        h + 2,
        "finality goes on, the restarted validator follows",
    );

    // The flood was kept out: the target never holds more strangers than
    // its limits allow, and every refusal and pruning is counted.
    let connected = peers(&v0.node.telemetry).iter().filter(|p| p.connected).count();
    assert!(connected <= 30 + 3, "{connected} peers connected to the target");
    let tl0_inbound = metric_sum(
        &v0.node.telemetry,
        &["tiernet_connections{", "tier=\"TL0\"", "direction=\"inbound\""],
    );
    assert!(tl0_inbound <= 20.0, "{tl0_inbound} inbound TL0 peers above the quota");
    let counted = refused_or_pruned(&v0.node.telemetry);
    assert!(
        counted >= (FLOODERS - 30) as f64,
        "only {counted} flood connections refused or pruned"
    );
    for reason in ["pending_full", "full"] {
        let n = metric_sum(
            &v0.node.telemetry,
            &["tiernet_connections_refused_total", &format!("reason=\"{reason}\"")],
        );
        eprintln!("refused {reason}: {n}");
    }
    eprintln!(
        "pruned tl0_quota: {}",
        metric_sum(
            &v0.node.telemetry,
            &["tiernet_connections_pruned_total", "reason=\"tl0_quota\""]
        )
    );
    drop(flood);
    let _ = &mut v;
}
