//! `gossip-bench`: gossip in one node, measured.
//!
//! How many messages per second per core a tiernet node validates and
//! forwards, side by side with a plain rust-libp2p GossipSub node on the
//! same messages (the ratio is the figure), and the latency one relaying
//! node adds.
//!
//! ```text
//! cargo run --release -p tiernet-sim --bin gossip-bench -- [--seconds 10] [--sources 96] ...
//! ```
//!
//! Topology, all in memory over [`SimNet`] with zero delay and unbounded
//! bandwidth (so only CPU is measured):
//!
//! ```text
//! source 1 ─┐
//! source 2 ─┤
//!    …      ├─▶ M (device under test) ─▶ D (sink: records arrivals)
//! source S ─┘
//! ```
//!
//! - The sources are plain GossipSub swarms built with the node's own
//!   GossipSub configuration (`tiernet_node::gossip::behaviour`) and
//!   transport (`tiernet_node::transport::secure_stream`: Noise, Yamux).
//!   They subscribe to nothing and publish through fanout, so M forwards
//!   to D only. Each publishes its share of pre-signed votes.
//! - M is either (a) a real `tiernet_node::Node` (an observer with a
//!   genesis of validators, started with `Node::with_transport`), which
//!   runs every message through its inbound policy (relay budget, seen ids,
//!   canonical decoding, height window, validator signature, admission),
//!   the double-sign detector and the consensus engine before it reports
//!   Accept; or (b) a plain GossipSub swarm with the same configuration
//!   that reports Accept for every message at once.
//! - D is a GossipSub swarm that checks no signature (`ValidationMode::None`)
//!   so that the sink costs little; only M connects the sources and D.
//! - (c) For the latency baseline the sources publish straight to D (no M).
//!
//! The saturated phase is a closed loop: the sources offer up to
//! `--rate-per-source` each but skip their turn while `--in-flight`
//! messages (default 1000) are published and not yet at D (or refused by
//! M). M always has work queued, and no queue grows without end: an open
//! loop above M's capacity makes rust-libp2p GossipSub (0.50) drop
//! forwards that wait over a second and score the receiver down as a slow
//! peer, after which M forwards nothing to D at all. Should a forward be
//! dropped anyway (a starved thread on a loaded machine), what is in
//! flight after 2 s without an arrival is written off and counted, so the
//! loop cannot stall.
//!
//! The node is built with the cargo feature `testing` (for
//! `Node::with_transport` and the probe that counts its verdicts), which
//! also keeps a bounded record of accepted messages for the test API: a
//! little work per message that a production build does not do, so (a)
//! is if anything slightly pessimistic.
//!
//! M runs on a Tokio runtime of its own with one worker thread (threads
//! named `dut`); the sources share another (`harness`) and D has a third
//! (`sink`), so that a busy source never holds D back. M's
//! CPU time is the sum of its threads' run time (`/proc/self/task/*/schedstat`),
//! so messages/s per core = messages D received in the window ÷ M's CPU
//! seconds in it, independent of what else the machine runs. The time M's
//! thread was runnable but waiting for a CPU (the second schedstat field)
//! tells a saturated M held back by other load on the machine from one the
//! sources did not keep busy; both are printed.
//!
//! The messages are votes at the live height by validators of the genesis
//! (`tiernet_node::testing::sample_message`), each (validator, height,
//! round) used once so the double-sign detector finds nothing. The node's
//! relay budget on `votes` is 200/s per relay (burst 500,
//! `tiernet_core::inbound::RelayLimit`); every source stays below it
//! (`--rate-per-source`, default 180/s) and there are enough sources that
//! the budget is not what is measured: the bench counts M's verdicts and
//! says so if any message was not accepted.
//!
//! Figures are printed as a table and written as JSON (`--out`, default
//! `target/bench/gossip.json`).
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use libp2p::Swarm;
use libp2p::gossipsub::{self, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::inbound::Acceptance;
use tiernet_core::wire::sign::message_id;
use tiernet_core::wire::{NetworkId, Topic};
use tiernet_node::commands::{GenesisOptions, genesis};
use tiernet_node::config::NodeConfig;
use tiernet_node::gossip::Topics;
use tiernet_node::node::Node;
use tiernet_node::node::probe::ProbeEvent;
use tiernet_node::output::Reporter;
use tiernet_sim::link::{LinkModel, SimNet, SimTransport};
use tokio::sync::watch;

/// Votes one validator can sign without two of them in one slot: rounds
/// `10_000 + sequence mod 1000` (`sample_message`) at the live height and
/// the next one (the node's vote window at a genesis head).
const VOTES_PER_VALIDATOR: usize = 2 * 1000;
/// Most identities one genesis holds.
const MAX_VALIDATORS: usize = 256;
/// The node's relay budget on `votes` (`tiernet_core::inbound::RelayLimit`).
const RELAY_BUDGET_PER_S: f64 = 200.0;
/// Warm-up rate of each source, and the longest warm-up.
const WARMUP_RATE: f64 = 5.0;
const WARMUP_MAX: Duration = Duration::from_secs(30);
/// Network index of M and D on the [`SimNet`]; sources follow.
const M: usize = 0;
const D: usize = 1;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "gossip-bench",
    about = "Messages/s per core a tiernet node validates and forwards vs plain GossipSub, and latency per hop"
)]
struct Cli {
    /// Length of the saturated measurement window (s), after a 1 s ramp.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Source peers (each one relay to M).
    #[arg(long, default_value_t = 96)]
    sources: usize,
    /// Messages/s each source offers in the saturated phase (below the
    /// node's relay budget of 200/s).
    #[arg(long, default_value_t = 180.0)]
    rate_per_source: f64,
    /// Total messages/s in the low-load latency phase.
    #[arg(long, default_value_t = 100.0)]
    latency_rate: f64,
    /// Length of the latency phase (s).
    #[arg(long, default_value_t = 5.0)]
    latency_seconds: f64,
    /// Most messages in flight (published, not yet at D):
    /// a source skips its turn while there are more. Keeps M busy without
    /// queues that grow without end (GossipSub drops a forward that waits
    /// over 1 s and then scores the receiver down as a slow peer).
    #[arg(long, default_value_t = 1000)]
    in_flight: u64,
    /// Where the JSON figures go.
    #[arg(long, default_value = "target/bench/gossip.json")]
    out: PathBuf,
}

/// Zero delay, no jitter, unbounded bandwidth: only CPU is measured.
struct Instantaneous;

impl LinkModel for Instantaneous {
    fn delay(&self, _: usize, _: usize) -> Duration {
        Duration::ZERO
    }
    fn jitter(&self, _: usize, _: usize, _: u64) -> Duration {
        Duration::ZERO
    }
    fn upload_bps(&self, _: usize) -> u64 {
        u64::MAX
    }
}

/// Which device sits in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dut {
    /// (a) a real tiernet node.
    Tiernet,
    /// (b) a plain GossipSub swarm that accepts everything.
    Plain,
    /// (c) nothing: the sources publish to D directly (latency baseline).
    Direct,
}

impl Dut {
    fn name(self) -> &'static str {
        match self {
            Dut::Tiernet => "tiernet node",
            Dut::Plain => "plain GossipSub",
            Dut::Direct => "direct (no M)",
        }
    }
}

/// What the sources do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    /// Each source publishes at this rate (messages/s).
    Publish(f64),
    Stop,
}

/// State shared by the sources, D and the driver.
#[derive(Default)]
struct Shared {
    /// Sources that saw their target subscribe to `votes`.
    ready: AtomicUsize,
    /// Messages the sources published, and publish calls that failed.
    published: AtomicU64,
    publish_failed: AtomicU64,
    /// Publish times, while `recording`.
    publish_times: Mutex<HashMap<MessageId, Instant>>,
    /// Messages D received (first copies).
    arrived: AtomicU64,
    /// Arrival times at D, while `recording`.
    arrival_times: Mutex<Vec<(MessageId, Instant)>>,
    recording: AtomicBool,
    /// Which source each warm-up message is from (by message id; D checks
    /// no signature, so GossipSub does not tell it the publisher).
    warmup_ids: HashMap<MessageId, usize>,
    /// Sources D has heard from during the warm-up.
    seen_sources: Mutex<HashSet<usize>>,
    /// `--in-flight`.
    in_flight_cap: u64,
    /// Messages given up on: in flight while nothing reached D for
    /// [`STALL`] (a forward GossipSub dropped), so that a loss cannot
    /// shrink the window for good.
    written_off: AtomicU64,
    /// Messages the plain M dropped for a slow peer (GossipSub's `SlowPeer`).
    slow_peer_drops: AtomicU64,
    /// M's verdicts on `votes`: accept, ignore, reject.
    verdicts: [AtomicU64; 3],
}

impl Shared {
    /// Published messages neither at D, nor refused by M, nor written off
    /// as lost.
    fn in_flight(&self) -> u64 {
        let done = self.arrived.load(Ordering::Relaxed)
            + self.verdicts[1].load(Ordering::Relaxed)
            + self.verdicts[2].load(Ordering::Relaxed)
            + self.written_off.load(Ordering::Relaxed);
        self.published.load(Ordering::Relaxed).saturating_sub(done)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// CPU time and run-queue wait (ns) of this process's threads whose name
/// starts with `prefix` (all threads with `""`), from
/// `/proc/self/task/*/schedstat` (time on a CPU, time runnable but waiting
/// for one).
fn thread_cpu_ns(prefix: &str) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    tasks
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.starts_with(prefix)))
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| {
            let mut fields = s.split_whitespace().map(|v| v.parse::<u64>().ok());
            Some((fields.next()??, fields.next()??))
        })
        .fold((0, 0), |(run, wait), (r, w)| (run + r, wait + w))
}

/// One snapshot of the counters.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    arrived: u64,
    accepted: u64,
    published: u64,
    dut_cpu_ns: u64,
    /// M's threads runnable but waiting for a CPU (other load on the machine).
    dut_wait_ns: u64,
    harness_cpu_ns: u64,
    sink_cpu_ns: u64,
    process_cpu_ns: u64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Self {
        let dut = thread_cpu_ns("dut");
        Self {
            at: Instant::now(),
            arrived: shared.arrived.load(Ordering::Relaxed),
            accepted: shared.verdicts[0].load(Ordering::Relaxed),
            published: shared.published.load(Ordering::Relaxed),
            dut_cpu_ns: dut.0,
            dut_wait_ns: dut.1,
            harness_cpu_ns: thread_cpu_ns("harness").0,
            sink_cpu_ns: thread_cpu_ns("sink").0,
            process_cpu_ns: thread_cpu_ns("").0,
        }
    }
}

/// Figures of one saturated run.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Throughput {
    /// Window length (s).
    window_s: f64,
    /// Messages/s the sources offered (published).
    offered_per_s: f64,
    /// Messages/s D received (M validated and forwarded).
    forwarded_per_s: f64,
    /// Messages/s M accepted (validated; handed to GossipSub to forward).
    accepted_per_s: f64,
    /// CPU cores M used on average (its threads' CPU s ÷ wall s).
    dut_cores: f64,
    /// Messages forwarded per CPU second of M.
    per_core: f64,
    /// CPU cores the whole process used (sources, M, D).
    process_cores: f64,
    /// Of which the sources' thread, and D's.
    sources_cores: f64,
    sink_cores: f64,
    /// Share of the window M's thread was runnable but waiting for a CPU
    /// (the machine's other load).
    dut_cpu_wait: f64,
    /// Messages M accepted per CPU second of M (whether or not D got them).
    validated_per_core: f64,
    /// Messages written off in the window as lost between M and D.
    written_off: u64,
}

/// Latency from publish to arrival at D.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Latency {
    /// Messages/s offered during the phase.
    rate_per_s: f64,
    /// Messages published and matched at D.
    samples: usize,
    /// Published but not seen at D.
    lost: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Everything about one device.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Figures {
    device: String,
    latency: Latency,
    throughput: Option<Throughput>,
    /// M's verdicts on `votes` (tiernet node: from its probe; plain: all accept).
    accepted: u64,
    ignored: u64,
    rejected: u64,
    /// Messages D received over the whole run.
    delivered: u64,
    /// Publish calls that failed (queues full) over the whole run.
    publish_failed: u64,
    /// Messages the plain M dropped for a slow peer (not seen for the tiernet node).
    slow_peer_drops: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    if cli.sources == 0 || cli.sources > 120 {
        bail!("--sources must be 1..=120 (the node allows 128 connections)");
    }
    if cli.rate_per_source >= RELAY_BUDGET_PER_S {
        bail!("--rate-per-source must stay below the node's relay budget of {RELAY_BUDGET_PER_S}/s on votes");
    }
    let machine = Machine::read();
    eprintln!("{}", machine.line());

    // Messages: each source's stream of votes, each (validator, height,
    // round) used once; signed before any measurement.
    let warmup_msgs = (WARMUP_RATE * WARMUP_MAX.as_secs_f64()).ceil() as usize;
    let latency_msgs = (cli.latency_rate / cli.sources as f64 * (cli.latency_seconds + 1.0)).ceil() as usize + 1;
    let saturated_msgs = (cli.rate_per_source * (cli.seconds + 2.0)).ceil() as usize;
    let per_source = warmup_msgs + latency_msgs + saturated_msgs;
    let validators_per_source = per_source.div_ceil(VOTES_PER_VALIDATOR);
    let validators = validators_per_source * cli.sources;
    if validators > MAX_VALIDATORS {
        bail!(
            "{per_source} votes per source need {validators} validators; a genesis holds {MAX_VALIDATORS}: \
             fewer --sources, a lower --rate-per-source or shorter --seconds"
        );
    }
    let dir = tempfile::Builder::new().prefix("tiernet-gossip-bench-").tempdir()?;
    let network_id = "bench-gossip".to_owned();
    let created = genesis(&GenesisOptions {
        out: dir.path().to_owned(),
        validators,
        members: Vec::new(),
        network_id: network_id.clone(),
        power: tiernet_node::commands::DEFAULT_VALIDATOR_POWER,
        genesis_time_ms: None,
        short_uptime: false,
    })
    .context("genesis")?;
    let mut keys = Vec::with_capacity(validators);
    for identity in created.identities.iter().filter(|i| i.validator) {
        keys.push(
            ZsiKeypair::load(&identity.key_path)
                .context("validator key")?
                .context("validator key file missing")?,
        );
    }
    let network = NetworkId::new(&network_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let began = Instant::now();
    let streams = sign_streams(&keys, &network, cli.sources, validators_per_source, per_source);
    eprintln!(
        "signed {} votes by {validators} validators for {} sources in {:.1} s",
        streams.iter().map(Vec::len).sum::<usize>(),
        cli.sources,
        began.elapsed().as_secs_f64()
    );
    let streams = Arc::new(streams);
    let genesis_file = dir.path().join("genesis.json");

    let harness = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("harness")
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for dut in [Dut::Direct, Dut::Plain, Dut::Tiernet] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dut")
            .enable_all()
            .build()?;
        let setup = Setup {
            dut,
            cli: &cli,
            streams: streams.clone(),
            warmup_msgs,
            network_id: network_id.clone(),
            genesis_file: genesis_file.clone(),
            data_dir: dir.path().join(format!("m-{dut:?}")),
        };
        let sink = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sink")
            .enable_all()
            .build()?;
        let figures = harness.block_on(run(setup, runtime.handle().clone(), sink.handle().clone()))?;
        runtime.shutdown_timeout(Duration::from_secs(2));
        sink.shutdown_timeout(Duration::from_secs(2));
        eprintln!("{}: done", dut.name());
        results.push(figures);
    }
    harness.shutdown_timeout(Duration::from_secs(2));
    let machine = Machine {
        load_after: Machine::load(),
        ..machine
    };
    report(&cli, &machine, validators, &results)
}

/// Signs every source's stream: source `j` uses validators
/// `j·k .. (j+1)·k`, going through heights 1 and 2 and sequences 0..1000 so
/// that each validator's rounds only go up in the order they are sent.
fn sign_streams(
    keys: &[ZsiKeypair],
    network: &NetworkId,
    sources: usize,
    per_validator: usize,
    per_source: usize,
) -> Vec<Vec<Vec<u8>>> {
    let now = tiernet_node::node::now_ms();
    let sign = |source: usize| -> Vec<Vec<u8>> {
        let mine = &keys[source * per_validator..(source + 1) * per_validator];
        (0..per_source)
            .map(|i| {
                let validator = &mine[i % per_validator];
                let slot = i / per_validator;
                let height = 1 + (slot / 1000) as u64;
                let sequence = (slot % 1000) as u64;
                tiernet_node::testing::sample_message(Topic::Votes, Some(validator), network, sequence, height, now)
            })
            .collect()
    };
    // Two threads: signing is most of the set-up time.
    let half = sources / 2;
    std::thread::scope(|scope| {
        let second = scope.spawn(|| (half..sources).map(sign).collect::<Vec<_>>());
        let mut all: Vec<_> = (0..half).map(sign).collect();
        match second.join() {
            Ok(rest) => all.extend(rest),
            Err(_) => all.extend((half..sources).map(sign)),
        }
        all
    })
}

/// One run's inputs.
struct Setup<'a> {
    dut: Dut,
    cli: &'a Cli,
    streams: Arc<Vec<Vec<Vec<u8>>>>,
    /// The first this many messages of each stream are for the warm-up.
    warmup_msgs: usize,
    network_id: String,
    genesis_file: PathBuf,
    data_dir: PathBuf,
}

/// Runs one device: start M (on `dut_runtime`), D and the sources; warm up;
/// the latency phase; the saturated phase (not for [`Dut::Direct`]).
async fn run(
    setup: Setup<'_>,
    dut_runtime: tokio::runtime::Handle,
    sink_runtime: tokio::runtime::Handle,
) -> Result<Figures> {
    let cli = setup.cli;
    let net = SimNet::new(cli.sources + 2, Box::new(Instantaneous));
    let network = NetworkId::new(&setup.network_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let topics = Topics::new(&network);
    let warmup_ids = setup
        .streams
        .iter()
        .enumerate()
        .flat_map(|(j, stream)| {
            stream
                .iter()
                .take(setup.warmup_msgs)
                .map(move |data| (MessageId::from(message_id(data).as_bytes().to_vec()), j))
        })
        .collect();
    let shared = Arc::new(Shared {
        warmup_ids,
        in_flight_cap: cli.in_flight.max(1),
        ..Shared::default()
    });
    let (stop_m, stopped_m) = watch::channel(false);

    // M.
    let target = match setup.dut {
        Dut::Tiernet => {
            let mut config = NodeConfig {
                network_id: setup.network_id.clone(),
                data_dir: setup.data_dir.clone(),
                identity_file: String::new(),
                genesis_file: setup.genesis_file.display().to_string(),
                ..NodeConfig::default()
            };
            config.telemetry.listen = String::new();
            config.listen.tcp = Vec::new();
            config.listen.ws = Vec::new();
            config.listen.webrtc = Vec::new();
            let config = config.validate().context("M's configuration")?;
            let net = net.clone();
            let shared = shared.clone();
            let (started, start) = tokio::sync::oneshot::channel();
            dut_runtime.spawn(async move {
                let factory: tiernet_node::node::TransportFactory =
                    Box::new(move |key| tiernet_node::transport::secure_stream(SimTransport::new(net, M), key));
                let mut node = match Node::with_transport(config, Reporter::Silent, factory, vec![SimNet::address(M)]) {
                    Ok(node) => node,
                    Err(error) => {
                        let _ = started.send(Err(anyhow::anyhow!("M: {error}")));
                        return;
                    }
                };
                node.set_probe(Arc::new(move |event: ProbeEvent| {
                    if let ProbeEvent::Received {
                        topic: Some(Topic::Votes),
                        acceptance,
                        ..
                    } = event
                    {
                        let k = match acceptance {
                            Acceptance::Accept => 0,
                            Acceptance::Ignore => 1,
                            Acceptance::Reject => 2,
                        };
                        shared.verdicts[k].fetch_add(1, Ordering::Relaxed);
                    }
                }));
                let _ = started.send(Ok(()));
                let mut stopped_m = stopped_m;
                let shutdown = async move {
                    let _ = stopped_m.wait_for(|s| *s).await;
                };
                if let Err(error) = node.run(shutdown).await {
                    eprintln!("M stopped: {error}");
                }
            });
            start.await.context("M did not start")??;
            Some(SimNet::address(M))
        }
        Dut::Plain => {
            let net = net.clone();
            let shared = shared.clone();
            let topics = topics.clone();
            let (started, start) = tokio::sync::oneshot::channel();
            dut_runtime.spawn(async move {
                let key = Keypair::generate_ed25519();
                let swarm = plain_swarm(&net, M, &key, &topics, false).and_then(|mut swarm| {
                    swarm.listen_on(SimNet::address(M))?;
                    Ok(swarm)
                });
                match swarm {
                    Ok(swarm) => {
                        let _ = started.send(Ok(()));
                        plain_relay(swarm, shared, stopped_m).await;
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
            });
            start.await.context("M did not start")??;
            Some(SimNet::address(M))
        }
        Dut::Direct => None,
    };

    // D: listens when direct, else dials M.
    let (stop_peers, stopped_peers) = watch::channel(Phase::Idle);
    let (started, start) = tokio::sync::oneshot::channel();
    let d_task = {
        let (net, topics, shared, target, stopped) = (
            net.clone(),
            topics.clone(),
            shared.clone(),
            target.clone(),
            stopped_peers.clone(),
        );
        sink_runtime.spawn(async move {
            let d = sink_swarm(&net, &Keypair::generate_ed25519(), &topics).and_then(|mut d| {
                match target {
                    Some(m) => d.dial(m)?,
                    None => {
                        d.listen_on(SimNet::address(D))?;
                    }
                }
                Ok(d)
            });
            match d {
                Ok(d) => {
                    let _ = started.send(Ok(()));
                    sink(d, shared, stopped).await;
                }
                Err(error) => {
                    let _ = started.send(Err(error));
                }
            }
        })
    };
    start.await.context("D did not start")??;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let target = target.unwrap_or_else(|| SimNet::address(D));

    // Sources.
    let mut source_tasks = Vec::with_capacity(cli.sources);
    for j in 0..cli.sources {
        let key = Keypair::generate_ed25519();
        let mut swarm = plain_swarm(&net, 2 + j, &key, &topics, true)?;
        swarm.dial(target.clone())?;
        source_tasks.push(tokio::spawn(source(
            swarm,
            j,
            cli.sources,
            setup.streams.clone(),
            topics.ident(Topic::Votes).clone(),
            shared.clone(),
            stopped_peers.clone(),
        )));
    }

    // Warm-up: until D has heard from every source (M's mesh includes D).
    let began = Instant::now();
    stop_peers.send_replace(Phase::Publish(WARMUP_RATE));
    while lock(&shared.seen_sources).len() < cli.sources {
        if began.elapsed() > WARMUP_MAX {
            bail!(
                "{}: after {:?} D had heard from {} of {} sources ({} ready)",
                setup.dut.name(),
                WARMUP_MAX,
                lock(&shared.seen_sources).len(),
                cli.sources,
                shared.ready.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_peers.send_replace(Phase::Idle);
    eprintln!(
        "{}: warm-up done in {:.1} s",
        setup.dut.name(),
        began.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Latency at low load.
    shared.recording.store(true, Ordering::Relaxed);
    stop_peers.send_replace(Phase::Publish(cli.latency_rate / cli.sources as f64));
    tokio::time::sleep(Duration::from_secs_f64(cli.latency_seconds)).await;
    stop_peers.send_replace(Phase::Idle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.recording.store(false, Ordering::Relaxed);
    let latency = latency(&shared, cli.latency_rate);
    eprintln!(
        "{}: latency p50 {:.3} ms p99 {:.3} ms ({} samples)",
        setup.dut.name(),
        latency.p50_ms,
        latency.p99_ms,
        latency.samples
    );

    // Saturated.
    let throughput = if setup.dut == Dut::Direct {
        None
    } else {
        stop_peers.send_replace(Phase::Publish(cli.rate_per_source));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Snapshot::take(&shared);
        let watch = write_off_stalls(&shared, Duration::from_secs_f64(cli.seconds));
        let (end, written_off) = watch.await;
        stop_peers.send_replace(Phase::Idle);
        let wall = (end.at - start.at).as_secs_f64();
        let dut_cpu = (end.dut_cpu_ns - start.dut_cpu_ns) as f64 / 1e9;
        let forwarded = (end.arrived - start.arrived) as f64;
        let t = Throughput {
            window_s: wall,
            offered_per_s: (end.published - start.published) as f64 / wall,
            forwarded_per_s: forwarded / wall,
            accepted_per_s: (end.accepted - start.accepted) as f64 / wall,
            dut_cores: dut_cpu / wall,
            per_core: if dut_cpu > 0.0 { forwarded / dut_cpu } else { 0.0 },
            process_cores: (end.process_cpu_ns - start.process_cpu_ns) as f64 / 1e9 / wall,
            sources_cores: (end.harness_cpu_ns - start.harness_cpu_ns) as f64 / 1e9 / wall,
            sink_cores: (end.sink_cpu_ns - start.sink_cpu_ns) as f64 / 1e9 / wall,
            dut_cpu_wait: (end.dut_wait_ns - start.dut_wait_ns) as f64 / 1e9 / wall,
            validated_per_core: if dut_cpu > 0.0 {
                (end.accepted - start.accepted) as f64 / dut_cpu
            } else {
                0.0
            },
            written_off,
        };
        eprintln!(
            "{}: offered {:.0}/s accepted {:.0}/s forwarded {:.0}/s, M busy {:.2} cores (waited for a CPU {:.2}), sources {:.2}, D {:.2}, {:.0} msg/s per core",
            setup.dut.name(),
            t.offered_per_s,
            t.accepted_per_s,
            t.forwarded_per_s,
            t.dut_cores,
            t.dut_cpu_wait,
            t.sources_cores,
            t.sink_cores,
            t.per_core
        );
        // Let queues drain before the totals.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Some(t)
    };

    stop_peers.send_replace(Phase::Stop);
    let _ = stop_m.send(true);
    for task in source_tasks {
        let _ = task.await;
    }
    let _ = d_task.await;
    let verdict = |k: usize| shared.verdicts[k].load(Ordering::Relaxed);
    Ok(Figures {
        device: setup.dut.name().to_owned(),
        latency,
        throughput,
        accepted: verdict(0),
        ignored: verdict(1),
        rejected: verdict(2),
        delivered: shared.arrived.load(Ordering::Relaxed),
        publish_failed: shared.publish_failed.load(Ordering::Relaxed),
        slow_peer_drops: shared.slow_peer_drops.load(Ordering::Relaxed),
    })
}

/// How long nothing may reach D while messages are in flight before
/// those are written off as lost.
const STALL: Duration = Duration::from_secs(2);

/// Waits `window`; meanwhile, whenever nothing reached D for [`STALL`]
/// with messages in flight, writes those off. Returns the end snapshot
/// and how many were written off.
async fn write_off_stalls(shared: &Shared, window: Duration) -> (Snapshot, u64) {
    let began = Instant::now();
    let mut written_off = 0;
    let (mut last, mut since) = (shared.arrived.load(Ordering::Relaxed), Instant::now());
    while began.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(100).min(window.saturating_sub(began.elapsed()))).await;
        let arrived = shared.arrived.load(Ordering::Relaxed);
        if arrived != last {
            (last, since) = (arrived, Instant::now());
        } else if since.elapsed() >= STALL {
            let lost = shared.in_flight();
            shared.written_off.fetch_add(lost, Ordering::Relaxed);
            written_off += lost;
            since = Instant::now();
        }
    }
    (Snapshot::take(shared), written_off)
}

/// A GossipSub swarm with the node's configuration and transport; a
/// source subscribes to nothing (it publishes through fanout).
fn plain_swarm(
    net: &Arc<SimNet>,
    index: usize,
    key: &Keypair,
    topics: &Topics,
    source: bool,
) -> Result<Swarm<gossipsub::Behaviour>> {
    let transport = tiernet_node::transport::secure_stream(SimTransport::new(net.clone(), index), key)?;
    let mut registry = prometheus_client::registry::Registry::default();
    let mut behaviour = tiernet_node::gossip::behaviour(key, topics, &mut registry)?;
    if source {
        for (_, ident) in topics.iter() {
            behaviour.unsubscribe(ident);
        }
    }
    Ok(Swarm::new(
        transport,
        behaviour,
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(Duration::from_secs(3600)),
    ))
}

/// D's swarm: subscribed to `votes`, no signature check, the node's
/// message ids (so ids match the sources').
fn sink_swarm(net: &Arc<SimNet>, key: &Keypair, topics: &Topics) -> Result<Swarm<gossipsub::Behaviour>> {
    let transport = tiernet_node::transport::secure_stream(SimTransport::new(net.clone(), D), key)?;
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(tiernet_node::gossip::HEARTBEAT)
        .validation_mode(ValidationMode::None)
        .message_id_fn(|message| MessageId::from(message_id(&message.data).as_bytes().to_vec()))
        .duplicate_cache_time(tiernet_node::gossip::DUPLICATE_CACHE)
        .max_transmit_size(tiernet_node::gossip::MAX_TRANSMIT)
        .build()
        .map_err(|e| anyhow::anyhow!("sink config: {e}"))?;
    let mut behaviour =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config).map_err(|e| anyhow::anyhow!(e))?;
    behaviour.subscribe(topics.ident(Topic::Votes))?;
    Ok(Swarm::new(
        transport,
        behaviour,
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(Duration::from_secs(3600)),
    ))
}

/// (b): accepts every message at once, so GossipSub forwards it.
async fn plain_relay(mut swarm: Swarm<gossipsub::Behaviour>, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            event = swarm.select_next_some() => {
                match event {
                    SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, .. }) => {
                        swarm.behaviour_mut().report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Accept,
                        );
                        shared.verdicts[0].fetch_add(1, Ordering::Relaxed);
                    }
                    SwarmEvent::Behaviour(gossipsub::Event::SlowPeer { failed_messages, .. }) => {
                        shared.slow_peer_drops.fetch_add((failed_messages.priority + failed_messages.non_priority) as u64, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// D: counts arrivals, notes their times while recording, and which
/// sources it has heard from.
async fn sink(mut swarm: Swarm<gossipsub::Behaviour>, shared: Arc<Shared>, mut phase: watch::Receiver<Phase>) {
    loop {
        tokio::select! {
            _ = phase.wait_for(|p| *p == Phase::Stop) => break,
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, .. }) = event {
                    let at = Instant::now();
                    shared.arrived.fetch_add(1, Ordering::Relaxed);
                    if let Some(source) = shared.warmup_ids.get(&message_id) {
                        lock(&shared.seen_sources).insert(*source);
                    }
                    if shared.recording.load(Ordering::Relaxed) {
                        lock(&shared.arrival_times).push((message_id, at));
                    }
                }
            }
        }
    }
}

/// A source: once its target subscribed to `votes`, publishes its stream
/// at the phase's rate (staggered against the other sources).
async fn source(
    mut swarm: Swarm<gossipsub::Behaviour>,
    index: usize,
    sources: usize,
    streams: Arc<Vec<Vec<Vec<u8>>>>,
    topic: gossipsub::IdentTopic,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) {
    let stream = streams.get(index).map_or(&[][..], Vec::as_slice);
    let mut next = 0usize;
    let mut ready = false;
    let mut ticks: Option<tokio::time::Interval> = None;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let current = *phase.borrow_and_update();
                ticks = match current {
                    Phase::Stop => break,
                    Phase::Idle => None,
                    Phase::Publish(rate) => {
                        let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
                        let offset = period.mul_f64(index as f64 / sources as f64);
                        Some(tokio::time::interval_at(tokio::time::Instant::now() + offset, period))
                    }
                };
            }
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic: t, .. }) = event
                    && t == topic.hash()
                    && !ready
                {
                    ready = true;
                    shared.ready.fetch_add(1, Ordering::Relaxed);
                }
            }
            () = tick(&mut ticks), if ready => {
                if shared.in_flight() >= shared.in_flight_cap {
                    continue;
                }
                let Some(data) = stream.get(next) else {
                    shared.publish_failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                next += 1;
                let at = Instant::now();
                match swarm.behaviour_mut().publish(topic.clone(), data.clone()) {
                    Ok(id) => {
                        shared.published.fetch_add(1, Ordering::Relaxed);
                        if shared.recording.load(Ordering::Relaxed) {
                            lock(&shared.publish_times).insert(id, at);
                        }
                    }
                    Err(_) => {
                        shared.publish_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// The next tick of `ticks`; never, without an interval.
async fn tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Publish → arrival at D of the messages published while recording.
fn latency(shared: &Shared, rate: f64) -> Latency {
    let published = lock(&shared.publish_times);
    let arrivals = lock(&shared.arrival_times);
    let mut samples: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, at)| {
            published
                .get(id)
                .map(|sent| at.saturating_duration_since(*sent).as_secs_f64() * 1e3)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    Latency {
        rate_per_s: rate,
        samples: samples.len(),
        lost: published.len().saturating_sub(samples.len()),
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        max_ms: samples.last().copied().unwrap_or(f64::NAN),
    }
}

/// The machine, as far as the figures depend on it.
#[derive(Debug, Clone, serde::Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    load_before: String,
    load_after: String,
}

impl Machine {
    fn read() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            load_before: Self::load(),
            load_after: String::new(),
        }
    }

    fn load() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    fn line(&self) -> String {
        format!(
            "machine: {} cores ({}), load average {}",
            self.cores, self.cpu, self.load_before
        )
    }
}

/// The build profile the figures come from.
fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug (figures not meaningful)"
    } else {
        "release"
    }
}

fn report(cli: &Cli, machine: &Machine, validators: usize, results: &[Figures]) -> Result<()> {
    let find = |name: &str| results.iter().find(|f| f.device == name);
    let (Some(a), Some(b), Some(c)) = (
        find(Dut::Tiernet.name()),
        find(Dut::Plain.name()),
        find(Dut::Direct.name()),
    ) else {
        bail!("a run is missing");
    };
    let ta = a.throughput.clone().unwrap_or_default();
    let tb = b.throughput.clone().unwrap_or_default();
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    let per_core_ratio = ratio(ta.per_core, tb.per_core);
    // Per hop: the median through M less the median straight to D. Tails
    // are shown as measured, not subtracted: on a shared machine they are
    // scheduling noise, and the difference of two p99s is no p99.
    let hop_a = a.latency.p50_ms - c.latency.p50_ms;
    let hop_b = b.latency.p50_ms - c.latency.p50_ms;
    println!();
    println!(
        "gossip-bench: votes, {} sources × {:.0}/s offered ({:.0}/s in all; node's relay budget 200/s per relay, \
         so not the limit), {validators} validators, {:.0} s window, {} build",
        cli.sources,
        cli.rate_per_source,
        cli.rate_per_source * cli.sources as f64,
        cli.seconds,
        build()
    );
    println!(
        "{} — M, the sources and D on 1-thread runtimes of their own; CPU from /proc schedstat (load after: {})",
        machine.line(),
        machine.load_after
    );
    println!();
    println!("| figure | (a) tiernet node | (b) plain GossipSub | (a)/(b) |");
    println!("|---|---|---|---|");
    println!(
        "| saturated throughput, msg/s forwarded to D | {:.0} | {:.0} | {:.2} |",
        ta.forwarded_per_s,
        tb.forwarded_per_s,
        ratio(ta.forwarded_per_s, tb.forwarded_per_s)
    );
    println!(
        "| published by the sources (closed loop), msg/s | {:.0} | {:.0} | |",
        ta.offered_per_s, tb.offered_per_s
    );
    println!(
        "| accepted by M, msg/s | {:.0} | {:.0} | |",
        ta.accepted_per_s, tb.accepted_per_s
    );
    println!(
        "| M's thread: share of the window on a CPU / runnable but waiting for one | {:.2} / {:.2} | {:.2} / {:.2} | |",
        ta.dut_cores, ta.dut_cpu_wait, tb.dut_cores, tb.dut_cpu_wait
    );
    println!(
        "| **msg/s per core (validated + forwarded)** | **{:.0}** | **{:.0}** | **{:.2}** |",
        ta.per_core, tb.per_core, per_core_ratio
    );
    println!(
        "| msg/s per core validated (accepted by M, whether or not D got them) | {:.0} | {:.0} | {:.2} |",
        ta.validated_per_core,
        tb.validated_per_core,
        ratio(ta.validated_per_core, tb.validated_per_core)
    );
    println!(
        "| in flight written off as lost between M and D (window) | {} | {} | |",
        ta.written_off, tb.written_off
    );
    println!(
        "| CPU per message in M, µs | {:.1} | {:.1} | {:.2} |",
        1e6 / ta.per_core,
        1e6 / tb.per_core,
        ratio(tb.per_core, ta.per_core)
    );
    println!(
        "| CPU of the whole process (sources, M, D), cores | {:.2} | {:.2} | |",
        ta.process_cores, tb.process_cores
    );
    println!(
        "| M's verdicts on votes: accept / ignore / reject | {} / {} / {} | {} / 0 / 0 | |",
        a.accepted, a.ignored, a.rejected, b.accepted
    );
    println!(
        "| delivered to D / publish failures (whole run) | {} / {} | {} / {} | |",
        a.delivered, a.publish_failed, b.delivered, b.publish_failed
    );
    println!(
        "| forwards M dropped for a slow peer (GossipSub SlowPeer) | not observable | {} | |",
        b.slow_peer_drops
    );
    println!(
        "| latency publish → D at {:.0} msg/s, p50 / p99 ms (direct, no M: {:.3} / {:.3}) | {:.3} / {:.3} | {:.3} / {:.3} | |",
        cli.latency_rate,
        c.latency.p50_ms,
        c.latency.p99_ms,
        a.latency.p50_ms,
        a.latency.p99_ms,
        b.latency.p50_ms,
        b.latency.p99_ms
    );
    println!(
        "| **latency added per hop** (p50 via M − p50 direct), ms | **{hop_a:.3}** | {hop_b:.3} | {:.2} |",
        ratio(hop_a, hop_b)
    );
    if a.ignored + a.rejected > 0 {
        println!();
        println!(
            "NOTE: the tiernet node did not accept {} votes (ignored {}, rejected {}): see RUST_LOG=debug",
            a.ignored + a.rejected,
            a.ignored,
            a.rejected
        );
    }
    for (name, t) in [("tiernet node", &ta), ("plain GossipSub", &tb)] {
        let runnable = t.dut_cores + t.dut_cpu_wait;
        if runnable < 0.9 {
            println!(
                "NOTE: {name}: M's thread was runnable {runnable:.2} of the window: the sources did not saturate it; \
                 msg/s per core is still CPU-based but not a capacity"
            );
        } else if t.dut_cpu_wait > 0.05 {
            println!(
                "NOTE: {name}: M was saturated (runnable {runnable:.2} of the window) but other load on the machine \
                 kept it off a CPU {:.2} of the time: throughput is lower than M's capacity; msg/s per core \
                 (CPU-time based) is not affected",
                t.dut_cpu_wait
            );
        }
    }
    let json = serde_json::json!({
        "bench": "gossip",
        "topic": "votes",
        "machine": machine,
        "build": build(),
        "sources": cli.sources,
        "rate_per_source": cli.rate_per_source,
        "relay_budget_per_s": RELAY_BUDGET_PER_S,
        "validators": validators,
        "window_s": cli.seconds,
        "latency_rate_per_s": cli.latency_rate,
        "results": results,
        "ratio_per_core": per_core_ratio,
        "ratio_throughput": ratio(ta.forwarded_per_s, tb.forwarded_per_s),
        "hop_latency_p50_ms": { "tiernet": hop_a, "plain": hop_b },
    });
    if let Some(parent) = cli.out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("write {}", cli.out.display()))?;
    println!();
    println!("figures written to {}", cli.out.display());
    Ok(())
}
