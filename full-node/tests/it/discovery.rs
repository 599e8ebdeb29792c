//! Issue 16 discovery with real processes on loopback: 20 full nodes, each
//! given only one bootstrap peer (the one started before it, a line), find
//! their target peer count through Kademlia and the peer manager's
//! redials; a node restarted after its bootstrap moved (restarted on a new
//! port) finds the network again through what it learned.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{NodeProcess, Started, eventually, peers};

const NODES: usize = 20;
const TARGET: usize = 5;

/// The nodes' `[connections]`: a small target, quick redials.
const CONFIG: &str = "[connections]
target_peers = 5
redial_interval_secs = 1
redial_backoff_base_secs = 1
redial_backoff_max_secs = 4
";

struct Peer {
    data: PathBuf,
    args: Vec<String>,
    node: Started,
}

impl Peer {
    fn start(net: &Path, i: usize, bootstrap: Option<&str>) -> Peer {
        let data = net.join(format!("n{i}"));
        let mut args = vec![
            "--config".to_owned(),
            net.join("discovery.toml").display().to_string(),
            "--listen".to_owned(),
            "/ip4/127.0.0.1/tcp/0".to_owned(),
        ];
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap".to_owned(), b.to_owned()]);
        }
        args.push("run".to_owned());
        let node = Self::spawn(&data, &args);
        Peer { data, args, node }
    }

    fn spawn(data: &Path, args: &[String]) -> Started {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Started::from(NodeProcess::start(data, &args), false)
    }

    fn connected(&self) -> usize {
        peers(&self.node.telemetry).iter().filter(|p| p.connected).count()
    }

    fn kill(&mut self) {
        self.node.process.signal("KILL");
        self.node.process.wait_exit();
    }

    fn restart(&mut self) {
        self.node = Self::spawn(&self.data, &self.args);
    }
}

#[test]
fn twenty_nodes_with_one_bootstrap_each_find_their_target_and_a_restart_finds_the_network_again() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    std::fs::write(net.join("discovery.toml"), CONFIG).unwrap();
    let mut nodes: Vec<Peer> = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let bootstrap = nodes.last().map(|p: &Peer| p.node.tcp.clone());
        nodes.push(Peer::start(net, i, bootstrap.as_deref()));
    }
    let started = Instant::now();
    eventually(
        "every node reaches its target peer count",
        Duration::from_secs(60),
        || nodes.iter().all(|n| n.connected() >= TARGET),
    );
    eprintln!("all {NODES} nodes at >= {TARGET} peers after {:?}", started.elapsed());
    // Long enough for the peerstores to be flushed (every 5 s).
    std::thread::sleep(Duration::from_secs(6));

    // Node 10's only bootstrap is node 9. Both crash; node 9 comes back on
    // another port, node 10 with its old (now dead) bootstrap address.
    let old_bootstrap = nodes[9].node.tcp.clone();
    nodes[10].kill();
    nodes[9].kill();
    nodes[9].restart();
    assert_ne!(nodes[9].node.tcp, old_bootstrap, "the bootstrap did not move");
    nodes[10].restart();
    let restarted = Instant::now();
    eventually(
        "the restarted node finds the network again",
        Duration::from_secs(30),
        || nodes[10].connected() >= TARGET,
    );
    eprintln!(
        "the restarted node was back at its target after {:?}",
        restarted.elapsed()
    );
}
