//! A run: the genesis, real tiernet nodes over a [`SimNet`], adversaries,
//! light clients, the scenario's events, and what the probes saw.
//!
//! Every honest node is `tiernet_node::Node` itself (its event loop,
//! GossipSub with our scoring and admission, Noise, the handshake, the
//! consensus engine, ledger and redb stores on disk, the sync server),
//! started with [`Node::with_transport`] over a [`SimTransport`] and a data
//! directory of its own. A crash aborts the node's task: nothing is
//! flushed, as with SIGKILL; the restart opens the same directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::{Multiaddr, PeerId};
use tiernet_core::identity::{NodeKeypair, ZsiKeypair};
use tiernet_core::tier::Tier;
use tiernet_core::wire::Topic;
use tiernet_node::commands::{GenesisOptions, genesis};
use tiernet_node::config::{NodeConfig, ValidConfig};
use tiernet_node::node::probe::{GossipView, ProbeEvent};
use tiernet_node::node::{Node, TransportFactory, now_ms};
use tiernet_node::output::{Report, Reporter};
use tiernet_node::telemetry::TelemetryQuery;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::adversary::{self, RawPeer};
use crate::link::{SimNet, SimTransport};
use crate::regions::{Placement, Rng};
use crate::scenario::{Action, AdversaryKind, Scenario};

/// What a node is in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// In the validator set.
    Validator,
    /// A registered member of this tier.
    Member(Tier),
    /// No ZSI identity (TL0).
    Observer,
    /// Adversarial (of this kind).
    Adversary(AdversaryKind),
}

impl Role {
    /// Whether the node is honest.
    pub fn honest(self) -> bool {
        !matches!(self, Role::Adversary(_))
    }
}

/// Everything the probes and samplers saw, with times in ms since the run began.
#[derive(Default)]
pub struct Record {
    /// (node, event) in arrival order.
    pub events: Vec<(usize, ProbeEvent)>,
    /// Per-second samples.
    pub samples: Vec<Sample>,
    /// Light-client heads: (client, t_ms, height, hash).
    pub light_heads: Vec<(usize, u64, u64, [u8; 32])>,
    /// Crashes and restarts: (node, t_ms, crashed?).
    pub churn: Vec<(usize, u64, bool)>,
    /// When each adversary kind turned bad (ms since start).
    pub turned: BTreeMap<String, u64>,
    /// Process memory (RSS, KiB) over time: (t_ms, kib).
    pub memory: Vec<(u64, u64)>,
    /// Process CPU time (ms) over time: (t_ms, cpu_ms).
    pub cpu: Vec<(u64, u64)>,
    /// The highest height decided by any node so far.
    pub head: u64,
    /// Message ids of the forgeries the invalid publishers sent.
    pub forged: std::collections::HashSet<Vec<u8>>,
    /// The sequence number of the last forgery: every forgery is a new
    /// message (two made in the same millisecond would be one, published
    /// once).
    pub forgery_sequence: u64,
    /// What each flooder did after it turned, by its PeerId.
    pub flood: BTreeMap<PeerId, adversary::FloodLog>,
}

/// One node's state at one sampling tick.
#[derive(Debug, Clone)]
pub struct Sample {
    /// ms since start.
    pub t_ms: u64,
    /// The node.
    pub node: usize,
    /// Its GossipSub view.
    pub view: GossipView,
}

/// A honest tiernet node of the run.
struct SimNode {
    role: Role,
    config: ValidConfig,
    task: Option<JoinHandle<()>>,
    queries: Option<mpsc::Sender<TelemetryQuery>>,
    /// Its loopback TCP address for light clients, once listening.
    tcp: Arc<Mutex<Option<Multiaddr>>>,
    serves_light_clients: bool,
    /// Its metrics registry (the last run's, after a restart).
    registry: Option<Arc<Mutex<prometheus_client::registry::Registry>>>,
}

/// A run in progress.
pub struct World {
    /// The scenario.
    pub scenario: Scenario,
    /// Placement and link model.
    pub placement: Placement,
    net: Arc<SimNet>,
    nodes: Vec<SimNode>,
    raw: Vec<RawPeer>,
    /// Role of every index (honest nodes first, then raw adversaries).
    pub roles: Vec<Role>,
    /// PeerId of every index.
    pub peer_ids: Vec<PeerId>,
    /// What was seen.
    pub record: Arc<Mutex<Record>>,
    /// When the run began (ms since the Unix epoch).
    pub start_ms: u64,
    light: Vec<tiernet_light::LightClient>,
    rng: Rng,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sim's transport for node `index`: the simulated links, plus
/// loopback TCP for the nodes that serve native light clients.
fn factory(net: Arc<SimNet>, index: usize, with_tcp: bool) -> TransportFactory {
    Box::new(move |key| {
        let sim = SimTransport::new(net, index);
        if with_tcp {
            use libp2p::Transport;
            let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true));
            let both = sim.or_transport(tcp);
            tiernet_node::transport::secure_stream(both, key)
        } else {
            tiernet_node::transport::secure_stream(sim, key)
        }
    })
}

impl World {
    /// Creates the genesis, the nodes and the adversaries (not yet running).
    pub fn build(scenario: Scenario) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tiernet-sim-{}-", scenario.name))
            .tempdir()
            .context("temporary directory")?;
        let root = dir.path().to_owned();
        let mut rng = Rng::new(scenario.seed);
        // Roles: validators, members by tier, observers, invalid publishers
        // and forging servers (tiernet nodes), then raw adversaries.
        let mut roles: Vec<Role> = vec![Role::Validator; scenario.validators];
        let mut member_tiers = Vec::new();
        for (tier, count) in &scenario.members {
            let tier = parse_tier(tier)?;
            for _ in 0..*count {
                roles.push(Role::Member(tier));
                member_tiers.push(tier);
            }
        }
        for adversary in &scenario.adversary {
            if adversary.kind == AdversaryKind::InvalidPublisher {
                for _ in 0..adversary.count {
                    roles.push(Role::Adversary(AdversaryKind::InvalidPublisher));
                    member_tiers.push(Tier::TL1);
                }
            }
        }
        roles.extend(std::iter::repeat_n(Role::Observer, scenario.observers));
        for adversary in &scenario.adversary {
            if adversary.kind == AdversaryKind::ForgingServer {
                roles.extend(std::iter::repeat_n(Role::Adversary(adversary.kind), adversary.count));
            }
        }
        let node_count = roles.len();
        for adversary in &scenario.adversary {
            if adversary.kind.is_raw() {
                roles.extend(std::iter::repeat_n(Role::Adversary(adversary.kind), adversary.count));
            }
        }
        let network_id = format!("sim-{}", scenario.name);
        let created = genesis(&GenesisOptions {
            out: root.clone(),
            validators: scenario.validators,
            members: member_tiers,
            network_id: network_id.clone(),
            power: tiernet_node::commands::DEFAULT_VALIDATOR_POWER,
            genesis_time_ms: None,
            // Short uptime windows, as in a devnet: nodes witness each
            // other's heartbeats and submit uptime proofs within the run,
            // so `proofs` carries real traffic.
            short_uptime: scenario.uptime,
        })
        .context("genesis")?;
        let identities = created.identities.len();

        let placement = Placement::new(roles.len(), scenario.seed, scenario.jitter, scenario.upload_mbps);
        let net = SimNet::new(roles.len(), Box::new(placement.clone()));

        // Keys first: bootstrap lists need every PeerId.
        let mut peer_ids = Vec::with_capacity(roles.len());
        for index in 0..roles.len() {
            let path = root.join(format!("node-{index}")).join("node_key");
            std::fs::create_dir_all(path.parent().unwrap_or(&root))?;
            let (key, _) = NodeKeypair::load_or_create(&path).context("node key")?;
            peer_ids.push(key.peer_id());
        }
        // Honest nodes that serve light clients: a few members/observers.
        let light_servers: Vec<usize> = (scenario.validators..node_count)
            .filter(|i| roles[*i].honest())
            .take(scenario.light_clients.clamp(0, 1).saturating_mul(4))
            .chain((0..node_count).filter(|i| roles[*i] == Role::Adversary(AdversaryKind::ForgingServer)))
            .collect();
        let mut nodes = Vec::with_capacity(node_count);
        for (index, role) in roles.iter().copied().enumerate().take(node_count) {
            let data = root.join(format!("node-{index}"));
            let has_identity = index < identities;
            let mut config = NodeConfig {
                network_id: network_id.clone(),
                data_dir: data.clone(),
                identity_file: if has_identity {
                    data.join("zsi_key").display().to_string()
                } else {
                    String::new()
                },
                genesis_file: root.join("genesis.json").display().to_string(),
                ..NodeConfig::default()
            };
            config.telemetry.listen = String::new();
            config.listen.tcp = Vec::new();
            config.listen.ws = Vec::new();
            config.listen.webrtc = Vec::new();
            config.snapshots.interval_blocks = 10;
            if scenario.uptime {
                config.heartbeat.interval_ms = tiernet_node::commands::SHORT_UPTIME.heartbeat_interval_ms;
            }
            if role == Role::Adversary(AdversaryKind::ForgingServer) {
                config.testing = Some(tiernet_node::config::TestingConfig {
                    forge_sync: "all".into(),
                    ..Default::default()
                });
            }
            let serves = light_servers.contains(&index);
            if serves {
                config.listen.tcp = vec!["/ip4/127.0.0.1/tcp/0".into()];
            }
            let mut config = config.validate().with_context(|| format!("node {index} config"))?;
            // A random graph: each node dials `links_per_node` others.
            let mut bootstrap = Vec::new();
            let honest: Vec<usize> = (0..node_count).filter(|j| *j != index).collect();
            for _ in 0..scenario.links_per_node.min(honest.len()) {
                let j = honest[rng.below(honest.len())];
                if !bootstrap.iter().any(|(p, _)| *p == peer_ids[j]) {
                    bootstrap.push((peer_ids[j], SimNet::address(j)));
                }
            }
            config.bootstrap = bootstrap;
            nodes.push(SimNode {
                role,
                config,
                task: None,
                queries: None,
                tcp: Arc::new(Mutex::new(None)),
                serves_light_clients: serves,
                registry: None,
            });
        }
        Ok(Self {
            placement,
            net,
            nodes,
            raw: Vec::new(),
            roles,
            peer_ids,
            record: Arc::new(Mutex::new(Record::default())),
            start_ms: now_ms(),
            light: Vec::new(),
            rng,
            dir: root,
            _dir: dir,
            scenario,
        })
    }

    /// Number of tiernet nodes (honest and adversarial).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn t_ms(&self) -> u64 {
        now_ms().saturating_sub(self.start_ms)
    }

    /// Starts (or restarts) node `index`.
    fn start_node(&mut self, index: usize) -> Result<()> {
        let net = self.net.clone();
        let record = self.record.clone();
        let start_ms = self.start_ms;
        let Some(sim) = self.nodes.get_mut(index) else {
            return Ok(());
        };
        let (reports, mut rx) = mpsc::channel(256);
        let mut node = Node::with_transport(
            sim.config.clone(),
            Reporter::Channel(reports),
            factory(net, index, sim.serves_light_clients),
            vec![SimNet::address(index)],
        )
        .with_context(|| format!("node {index}"))?;
        node.set_probe(Arc::new(move |event: ProbeEvent| {
            let event = rebase(event, start_ms);
            let mut record = lock(&record);
            if let ProbeEvent::Decided { height, .. } = &event {
                record.head = record.head.max(*height);
            }
            record.events.push((index, event));
        }));
        sim.queries = Some(node.query_sender());
        sim.registry = Some(node.metrics_registry());
        let tcp = sim.tcp.clone();
        tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                if let Report::Listening(addr) = report
                    && addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)))
                {
                    *lock(&tcp) = Some(addr);
                }
            }
        });
        sim.task = Some(tokio::spawn(async move {
            if let Err(error) = node.run(std::future::pending()).await {
                tracing::warn!(index, %error, "node stopped");
            }
        }));
        Ok(())
    }

    /// Aborts node `index`'s task: a crash, nothing flushed.
    fn crash_node(&mut self, index: usize) {
        if let Some(task) = self.nodes.get_mut(index).and_then(|n| n.task.take()) {
            task.abort();
        }
        if let Some(node) = self.nodes.get_mut(index) {
            node.queries = None;
        }
        let t = self.t_ms();
        lock(&self.record).churn.push((index, t, true));
    }

    /// Runs the scenario to its end, printing a progress line.
    pub async fn run(&mut self) -> Result<()> {
        self.start_ms = now_ms();
        for index in 0..self.nodes.len() {
            self.start_node(index)?;
        }
        // Raw adversaries dial honest nodes once those listen.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let honest: Vec<usize> = (0..self.nodes.len()).filter(|i| self.roles[*i].honest()).collect();
        let mut first_raw = self.nodes.len();
        for adversary in self.scenario.adversary.clone() {
            if !adversary.kind.is_raw() {
                continue;
            }
            for k in 0..adversary.count {
                let index = first_raw + k;
                // Slot sybils all go for the first validator.
                let targets: Vec<(PeerId, Multiaddr)> = if adversary.kind == AdversaryKind::Slots {
                    vec![(self.peer_ids[0], SimNet::address(0))]
                } else {
                    (0..adversary.links.min(honest.len()))
                        .map(|_| honest[self.rng.below(honest.len())])
                        .map(|j| (self.peer_ids[j], SimNet::address(j)))
                        .collect()
                };
                let key = load_key(&self.dir, index)?;
                let peer = adversary::spawn(
                    self.net.clone(),
                    index,
                    key,
                    &self.scenario,
                    &adversary,
                    targets,
                    self.start_ms,
                    self.record.clone(),
                )?;
                self.raw.push(peer);
            }
            first_raw += adversary.count;
        }

        let duration = Duration::from_secs(self.scenario.duration_s);
        let started = tokio::time::Instant::now();
        // Four ticks a second: restarted nodes are sampled on every tick
        // (rejoining is measured in 700 ms GossipSub heartbeats), everything
        // else once a second.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_second = None;
        let mut restarted: Vec<(tokio::time::Instant, usize)> = Vec::new();
        let mut next_event = 0usize;
        let mut events = self.scenario.event.clone();
        events.sort_by_key(|e| e.at_s);
        let mut pending_restarts: Vec<(u64, usize)> = Vec::new();
        let mut churn_next: Vec<(u64, crate::scenario::Event)> = Vec::new();
        let mut light_started = false;
        let mut last_line = String::new();
        loop {
            tick.tick().await;
            let elapsed = started.elapsed();
            if elapsed >= duration {
                break;
            }
            let t_s = elapsed.as_secs();
            restarted.retain(|(at, _)| at.elapsed() < Duration::from_secs(10));
            if last_second == Some(t_s) {
                let recent: Vec<usize> = restarted.iter().map(|(_, i)| *i).collect();
                self.sample(Some(&recent)).await;
                continue;
            }
            last_second = Some(t_s);
            // Scenario events.
            while next_event < events.len() && events[next_event].at_s <= t_s {
                let event = events[next_event].clone();
                next_event += 1;
                self.apply(&event, t_s, &mut pending_restarts);
                if event.action == Action::Churn && event.every_s > 0 {
                    churn_next.push((t_s + event.every_s, event));
                }
            }
            let mut due = Vec::new();
            churn_next.retain(|(at, event)| {
                if *at <= t_s {
                    due.push(event.clone());
                    false
                } else {
                    true
                }
            });
            for event in due {
                self.apply(&event, t_s, &mut pending_restarts);
                churn_next.push((t_s + event.every_s, event));
            }
            let restarts: Vec<usize> = pending_restarts
                .iter()
                .filter(|(at, _)| *at <= t_s)
                .map(|(_, i)| *i)
                .collect();
            pending_restarts.retain(|(at, _)| *at > t_s);
            for index in restarts {
                self.start_node(index)?;
                restarted.push((tokio::time::Instant::now(), index));
                let t = self.t_ms();
                lock(&self.record).churn.push((index, t, false));
            }
            // Adversaries that turn. Raw adversaries keep their own clock
            // and turn at `turn_at_s` after `start_ms` exactly; this loop's
            // seconds start half a second later (after they were spawned),
            // so the time of this tick would date their turn too late and
            // hide the first half second of a flood from the figures.
            for adversary in &self.scenario.adversary {
                if adversary.turn_at_s == t_s {
                    let name = format!("{:?}", adversary.kind);
                    let t = if adversary.kind.is_raw() {
                        adversary.turn_at_s * 1000
                    } else {
                        self.t_ms()
                    };
                    lock(&self.record).turned.entry(name).or_insert(t);
                }
            }
            let forgeries = self
                .scenario
                .adversary
                .iter()
                .filter(|a| a.kind == AdversaryKind::InvalidPublisher && t_s >= a.turn_at_s && t_s < a.turn_at_s + 10)
                .map(|a| a.rate_per_s.ceil() as usize)
                .max();
            for _ in 0..forgeries.unwrap_or(0) {
                self.publish_forgeries().await;
            }
            // Light clients start once the chain has a few blocks.
            if !light_started && t_s >= 5 {
                light_started = true;
                self.start_light_clients();
            }
            self.sample(None).await;
            let line = self.progress(t_s);
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
        }
        for client in &self.light {
            client.stop();
        }
        for raw in &mut self.raw {
            raw.stop();
        }
        for index in 0..self.nodes.len() {
            if let Some(task) = self.nodes[index].task.take() {
                task.abort();
            }
        }
        Ok(())
    }

    /// The highest height decided so far (by any node; not the last one
    /// recorded, which may be a slow node's older height).
    fn head_height(&self) -> u64 {
        lock(&self.record).head
    }

    fn progress(&self, t_s: u64) -> String {
        let height = self.head_height();
        let record = lock(&self.record);
        let live = self.nodes.iter().filter(|n| n.task.is_some()).count();
        format!(
            "[{}] t={t_s:>4}s/{}s height {height} live nodes {live}/{} events {}",
            self.scenario.name,
            self.scenario.duration_s,
            self.nodes.len(),
            record.events.len()
        )
    }

    fn apply(&mut self, event: &crate::scenario::Event, t_s: u64, restarts: &mut Vec<(u64, usize)>) {
        match event.action {
            Action::Partition => {
                let sides: Vec<u8> = (0..self.roles.len())
                    .map(|i| {
                        if i < self.scenario.validators {
                            u8::from(i >= event.first_side_validators)
                        } else {
                            (i % 2) as u8
                        }
                    })
                    .collect();
                eprintln!("[{}] t={t_s}s partition", self.scenario.name);
                self.net.partition(sides);
            }
            Action::Heal => {
                eprintln!("[{}] t={t_s}s heal", self.scenario.name);
                self.net.heal();
            }
            Action::Churn => {
                let candidates: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| self.roles[*i].honest() && self.nodes[*i].task.is_some())
                    .collect();
                let count = ((self.nodes.len() as f64) * event.fraction).round() as usize;
                let mut chosen = Vec::new();
                for _ in 0..count.min(candidates.len()) {
                    let pick = candidates[self.rng.below(candidates.len())];
                    if !chosen.contains(&pick) {
                        chosen.push(pick);
                    }
                }
                for index in chosen {
                    self.crash_node(index);
                    restarts.push((t_s + event.down_s, index));
                }
            }
            Action::Crash => {
                if self.nodes.get(event.node).is_some_and(|n| n.task.is_some()) {
                    eprintln!("[{}] t={t_s}s crash node {}", self.scenario.name, event.node);
                    self.crash_node(event.node);
                    restarts.push((t_s + event.down_s, event.node));
                }
            }
        }
    }

    /// Samples the GossipSub view of `only` these nodes, or of every live
    /// node and then also the light clients and the process's memory and CPU.
    async fn sample(&mut self, only: Option<&[usize]>) {
        let t_ms = self.t_ms();
        let mut waits = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if only.is_some_and(|only| !only.contains(&index)) {
                continue;
            }
            let Some(queries) = &node.queries else { continue };
            let (reply, answer) = oneshot::channel();
            if queries.try_send(TelemetryQuery::Gossip(reply)).is_ok() {
                waits.push((index, answer));
            }
        }
        for (index, answer) in waits {
            if let Ok(Ok(view)) = tokio::time::timeout(Duration::from_millis(500), answer).await {
                lock(&self.record).samples.push(Sample {
                    t_ms,
                    node: index,
                    view,
                });
            }
        }
        if only.is_some() {
            return;
        }
        for (k, client) in self.light.iter().enumerate() {
            let head = client.head();
            lock(&self.record)
                .light_heads
                .push((k, t_ms, head.height, *head.hash.as_bytes()));
        }
        let (rss, cpu) = process_usage();
        let mut record = lock(&self.record);
        record.memory.push((t_ms, rss));
        record.cpu.push((t_ms, cpu));
    }

    fn start_light_clients(&mut self) {
        if self.scenario.light_clients == 0 {
            return;
        }
        let genesis = match std::fs::read_to_string(self.dir.join("genesis.json")) {
            Ok(g) => g,
            Err(error) => {
                tracing::warn!(%error, "no genesis for light clients");
                return;
            }
        };
        let honest: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.serves_light_clients && n.role.honest())
            .filter_map(|n| lock(&n.tcp).as_ref().map(ToString::to_string))
            .collect();
        let forging: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.serves_light_clients && !n.role.honest())
            .filter_map(|n| lock(&n.tcp).as_ref().map(ToString::to_string))
            .collect();
        let network = self
            .nodes
            .first()
            .map(|n| n.config.network_id.to_string())
            .unwrap_or_default();
        for k in 0..self.scenario.light_clients {
            // With forging servers: one honest peer and every forger.
            let bootstrap: Vec<String> = if forging.is_empty() {
                honest.iter().skip(k % honest.len().max(1)).take(2).cloned().collect()
            } else {
                honest.iter().take(1).chain(forging.iter()).cloned().collect()
            };
            let built = tiernet_light::LightClient::builder()
                .bootstrap(bootstrap)
                .genesis_json(&network, &genesis)
                .and_then(|(builder, _)| builder.build());
            match built {
                Ok(client) => {
                    let starter = client.clone();
                    tokio::spawn(async move {
                        if let Err(error) = starter.start().await {
                            tracing::warn!(%error, "light client did not start");
                        }
                    });
                    self.light.push(client);
                }
                Err(error) => tracing::warn!(%error, "light client not built"),
            }
        }
    }

    /// The invalid publishers publish a forged proof and a forged block.
    async fn publish_forgeries(&mut self) {
        let forgers: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.roles[*i] == Role::Adversary(AdversaryKind::InvalidPublisher))
            .collect();
        let turned = self.t_ms();
        lock(&self.record)
            .turned
            .entry(format!("{:?}", AdversaryKind::InvalidPublisher))
            .or_insert(turned);
        for index in forgers {
            let Ok(Some(identity)) = ZsiKeypair::load(&self.dir.join(format!("node-{index}")).join("zsi_key")) else {
                continue;
            };
            let network = self.nodes[index].config.network_id.clone();
            // One above the live height. Older messages are dropped before
            // their signature is even checked and cost the forger nothing;
            // a proposal for the live height itself became old whenever
            // the height was decided while it was on its way (a node takes
            // proposals for its live height and the next).
            let height = self.head_height() + 2;
            for topic in [Topic::Proofs, Topic::Blocks] {
                let sequence = {
                    let mut record = lock(&self.record);
                    record.forgery_sequence = now_ms().max(record.forgery_sequence + 1);
                    record.forgery_sequence
                };
                let mut data =
                    tiernet_node::testing::sample_message(topic, Some(&identity), &network, sequence, height, now_ms());
                forge(&mut data);
                if let Some(id) = self.query_publish(index, topic, Some(data)).await
                    && let Ok(id) = hex::decode(id)
                {
                    lock(&self.record).forged.insert(id);
                }
            }
        }
    }

    async fn query_publish(&self, index: usize, topic: Topic, data: Option<Vec<u8>>) -> Option<String> {
        let queries = self.nodes.get(index)?.queries.clone()?;
        let (reply, answer) = oneshot::channel();
        queries.try_send(TelemetryQuery::Publish { topic, data, reply }).ok()?;
        tokio::time::timeout(Duration::from_secs(1), answer)
            .await
            .ok()?
            .ok()?
            .ok()
    }

    /// Duplicates per message by topic name, from GossipSub's counters of
    /// every honest node: (all receipts − first receipts) / first receipts.
    pub fn duplicates(&self) -> BTreeMap<String, f64> {
        let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for node in self.nodes.iter().filter(|n| n.role.honest()) {
            let Some(registry) = &node.registry else { continue };
            let mut text = String::new();
            if prometheus_client::encoding::text::encode(&mut text, &lock(registry)).is_err() {
                continue;
            }
            for line in text.lines() {
                let unfiltered = line.contains("topic_msg_recv_counts_unfiltered_total{");
                if !unfiltered && !line.contains("topic_msg_recv_counts_total{") {
                    continue;
                }
                let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                    continue;
                };
                let Some(topic) = Topic::ALL
                    .into_iter()
                    .find(|t| line.contains(&format!("/{}/", t.name())))
                else {
                    continue;
                };
                let entry = totals.entry(topic.name().to_owned()).or_default();
                if unfiltered {
                    entry.0 += value;
                } else {
                    entry.1 += value;
                }
            }
        }
        totals
            .into_iter()
            .filter(|(_, (_, first))| *first > 0.0)
            .map(|(topic, (all, first))| (topic, (all - first) / first))
            .collect()
    }

    /// Bytes (sent, received) of every tiernet node.
    pub fn traffic(&self) -> Vec<(u64, u64)> {
        (0..self.nodes.len())
            .filter_map(|i| self.net.traffic(i))
            .map(|t| {
                (
                    t.sent.load(std::sync::atomic::Ordering::Relaxed),
                    t.received.load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Data directory of the run (removed when the world is dropped).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Flips a bit in the last byte: a signature that no longer verifies, on a
/// message that still decodes (signatures end every signed message).
fn forge(data: &mut [u8]) {
    if let Some(last) = data.last_mut() {
        *last ^= 0x01;
    }
}

fn rebase(event: ProbeEvent, start_ms: u64) -> ProbeEvent {
    let at = |ms: u64| ms.saturating_sub(start_ms);
    match event {
        ProbeEvent::Published {
            topic,
            kind,
            id,
            bytes,
            at_ms,
        } => ProbeEvent::Published {
            topic,
            kind,
            id,
            bytes,
            at_ms: at(at_ms),
        },
        ProbeEvent::Received {
            topic,
            id,
            relay,
            publisher,
            bytes,
            acceptance,
            label,
            at_ms,
        } => ProbeEvent::Received {
            topic,
            id,
            relay,
            publisher,
            bytes,
            acceptance,
            label,
            at_ms: at(at_ms),
        },
        ProbeEvent::Decided {
            height,
            hash,
            proposed_ms,
            at_ms,
        } => ProbeEvent::Decided {
            height,
            hash,
            proposed_ms: at(proposed_ms),
            at_ms: at(at_ms),
        },
        ProbeEvent::Banned { peer, at_ms } => ProbeEvent::Banned { peer, at_ms: at(at_ms) },
    }
}

fn parse_tier(text: &str) -> Result<Tier> {
    Ok(match text {
        "TL1" => Tier::TL1,
        "TL2" => Tier::TL2,
        "TL3" => Tier::TL3,
        "TL4" => Tier::TL4,
        "TL5" => Tier::TL5,
        other => anyhow::bail!("unknown tier {other}"),
    })
}

fn load_key(dir: &Path, index: usize) -> Result<libp2p::identity::Keypair> {
    let (key, _) = NodeKeypair::load_or_create(&dir.join(format!("node-{index}")).join("node_key"))?;
    Ok(key.to_libp2p())
}

/// Resident memory (KiB) and CPU time (ms, user + system) of this process,
/// from `/proc/self` (0 where unavailable).
pub fn process_usage() -> (u64, u64) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) * 10) // clock ticks of 10 ms
        })
        .unwrap_or(0);
    (rss, cpu)
}

/// Honest node indices by role, for the report.
pub fn role_counts(roles: &[Role]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for role in roles {
        let name = match role {
            Role::Validator => "validator".to_owned(),
            Role::Member(tier) => format!("member {tier}"),
            Role::Observer => "observer (TL0)".to_owned(),
            Role::Adversary(kind) => format!("adversary {kind:?}"),
        };
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}
