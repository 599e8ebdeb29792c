//! From what the probes saw to figures, and figures to PASS or FAIL.
//!
//! Definitions (the report repeats them):
//! - A message counts from the publisher's `Published` event, for messages
//!   published by honest nodes between the warm-up and 10 s before the end.
//!   Its expected receivers are the honest tiernet nodes other than the
//!   publisher that were up from 5 s before its publication until 5 s
//!   after (a node restarted a moment ago is still dialing; its rejoin time
//!   is a pass line of its own).
//! - Delivery: receipts (first arrival at a node, whatever its verdict)
//!   over expected receipts, per topic (`blocks` split into proposals and
//!   finalized-block announcements; the latter are meant for neighbours
//!   that have not decided yet and are not part of the delivery pass line).
//! - Propagation latency: receipt time minus publication time, per
//!   (message, receiver); the shortest-path latency of the pair is the
//!   one-way latency of the best route over the region matrix.
//! - Duplicates per message: GossipSub's own counters, (all receipts −
//!   first receipts) / first receipts, per topic; the pass line uses the
//!   topics whose messages average 1 KB or more.

use std::collections::{BTreeMap, HashMap, HashSet};

use libp2p::PeerId;
use serde::Serialize;
use tiernet_core::inbound::Acceptance;
use tiernet_core::reputation::ReputationParams;
use tiernet_core::wire::Topic;
use tiernet_node::node::probe::ProbeEvent;

use crate::regions::shortest_paths;
use crate::scenario::AdversaryKind;
use crate::world::{Role, World};

/// Finalized-block announcements: each node sends its own to its
/// neighbours, who drop it without forwarding once they decided the height
/// themselves. Reported, but not a delivery pass line.
pub const FINALIZED: &str = "finalized";

/// A receiver counts as live for a message if it was up this long before
/// its publication (a node that restarted a moment ago is still dialing;
/// how fast it rejoins is its own pass line, `rejoin_heartbeats`) …
pub const LIVE_BEFORE_MS: u64 = 5_000;
/// … and stays up this long after it.
pub const LIVE_AFTER_MS: u64 = 5_000;

/// GossipSub heartbeat (ms), the unit of some pass lines.
pub const HEARTBEAT_MS: f64 = 700.0;
/// The node's graylist threshold.
pub const GRAYLIST: f64 = -400.0;

/// Every check a pass line may name, with what it compares and whether
/// the figure must be at least (`true`) or at most (`false`) the bound.
pub const CHECKS: &[(&str, &str, bool)] = &[
    (
        "delivery_min_percent",
        "lowest delivery ratio over the topics (%) ≥ bound",
        true,
    ),
    (
        "p95_over_shortest_path",
        "p95 propagation latency / p95 shortest-path latency of the same pairs ≤ bound",
        false,
    ),
    (
        "duplicates_per_large_message",
        "mean duplicates per message on topics averaging ≥ 1 KB ≤ bound",
        false,
    ),
    (
        "finality_p95_ms",
        "p95 finality latency (block time → decision) ≤ bound",
        false,
    ),
    ("forks", "heights decided with two different blocks ≤ bound", false),
    (
        "rejoin_heartbeats",
        "slowest restarted node back in the mesh of every topic, in GossipSub heartbeats ≤ bound",
        false,
    ),
    (
        "honest_p99_ms",
        "honest messages' p99 propagation latency after the adversaries turn ≤ bound",
        false,
    ),
    (
        "adversary_score_max",
        "highest GossipSub score of a still-connected adversary at an honest node, last 20 % of the run ≤ bound",
        false,
    ),
    (
        "never_forward_negative_s",
        "longest time (s) a never-forwarding peer held a mesh slot at an honest node with a score ≥ 0 ≤ bound",
        false,
    ),
    (
        "time_to_graylist_heartbeats",
        "slowest neighbour to graylist or ban the invalid publisher ≤ bound",
        false,
    ),
    (
        "time_to_ban_heartbeats",
        "slowest neighbour to ban the invalid publisher ≤ bound",
        false,
    ),
    (
        "forged_forwarded",
        "forged messages relayed by an honest node ≤ bound",
        false,
    ),
    (
        "flood_cut_s",
        "slowest neighbour to ban a flooder after the flood starts ≤ bound",
        false,
    ),
    (
        "honest_p99_rise_percent",
        "rise of honest p99 latency after the adversaries turn (%) ≤ bound",
        false,
    ),
    (
        "memory_rise_percent",
        "rise of the process's memory growth over the minute after the adversaries turn, against the minute before, in % of the memory at the turn ≤ bound",
        false,
    ),
    (
        "finality_while_split",
        "heights decided while the validators are split ≤ bound",
        false,
    ),
    (
        "finality_after_heal_s",
        "time from healing to the next decided height ≤ bound",
        false,
    ),
    (
        "light_unverified",
        "light-client heads that differ from the honest chain ≤ bound",
        false,
    ),
    (
        "light_head_lag_blocks",
        "largest light-client lag behind the chain head, last 30 s ≤ bound",
        false,
    ),
    (
        "slots_held_max",
        "most slot sybils connected to their target validator at once after they turn ≤ bound",
        false,
    ),
    (
        "target_validator_links_min",
        "fewest other validators connected to the slot sybils' target, last 20 % of the run ≥ bound",
        true,
    ),
    (
        "finality_gap_s",
        "longest time without a decided height after the adversaries turn ≤ bound",
        false,
    ),
];

/// Percentiles of a sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Percentiles of `values`.
pub fn percentiles(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        n: v.len(),
        p50: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

/// Figures of one topic.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TopicFigures {
    /// Messages counted.
    pub messages: usize,
    /// Mean payload size.
    pub mean_bytes: f64,
    /// Receipts / expected receipts, %.
    pub delivery_percent: f64,
    /// Propagation latency, ms.
    pub latency_ms: Percentiles,
    /// Shortest-path latency of the same pairs, ms.
    pub shortest_ms: Percentiles,
    /// Median time for a message to reach 90 / 99 / 100 % of its receivers, ms.
    pub reach_ms: [f64; 3],
    /// Duplicates per message (GossipSub counters).
    pub duplicates: Option<f64>,
    /// Verdicts at the receivers: accepted, ignored, rejected.
    pub verdicts: [usize; 3],
}

/// Everything a report shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Per topic.
    pub topics: BTreeMap<String, TopicFigures>,
    /// All honest messages together.
    pub latency_ms: Percentiles,
    /// Shortest paths of the same pairs.
    pub shortest_ms: Percentiles,
    /// All honest latencies (for the CDF plot), ms.
    #[serde(skip)]
    pub latencies: Vec<f64>,
    /// Finality latency, ms.
    pub finality_ms: Percentiles,
    /// Highest height decided.
    pub height: u64,
    /// Blocks per second over the run.
    pub blocks_per_s: f64,
    /// Heights decided with different blocks.
    pub forks: usize,
    /// Mesh degree per topic over all samples.
    pub mesh_degree: BTreeMap<String, Percentiles>,
    /// Grafts + prunes per node per minute (from mesh changes between samples).
    pub mesh_changes_per_node_min: f64,
    /// Score drift: (t_s, honest mean, adversary mean) per sample tick.
    pub score_drift: Vec<(f64, Option<f64>, Option<f64>)>,
    /// Delivery over time: (t_s, delivered %) per 10 s of publications.
    pub delivery_over_time: Vec<(f64, f64)>,
    /// Mesh stability over time: (t_s, mean mesh degree on `blocks`).
    pub mesh_over_time: Vec<(f64, f64)>,
    /// Process figures per node: CPU %, memory MiB, bandwidth kB/s up.
    pub per_node: PerNode,
    /// Check name → measured figure.
    pub checks: BTreeMap<String, f64>,
    /// Per topic: longest time (s) an adversary held a mesh slot with a score ≥ 0 (never-forward runs).
    pub never_forward_negative_s: BTreeMap<String, f64>,
    /// Flood runs: per honest node and flooder, what the flooder sent the
    /// node after the flood began, what reached it, and when the node
    /// banned the flooder.
    pub flood_neighbours: Vec<FloodNeighbour>,
    /// Flood runs: what each flooder published after it turned.
    pub flooders: Vec<FlooderSummary>,
    /// Invalid-publisher runs: per honest node that received a forgery
    /// straight from a forger, when and how many, and when it banned it.
    pub forgery_neighbours: Vec<ForgeryNeighbour>,
}

/// What one invalid publisher sent one honest node, and when the node
/// banned it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForgeryNeighbour {
    /// The honest node.
    pub node: usize,
    /// The forger.
    pub forger: String,
    /// Seconds from the turn to the first forgery that reached the node.
    pub first_forgery_s: f64,
    /// Forgeries that reached the node up to its first ban of the forger.
    pub before_ban: u64,
    /// Those by the node's verdict (the inbound policy's label: a
    /// rejection costs the forger, an ignored one nothing).
    pub verdicts_before_ban: BTreeMap<&'static str, u64>,
    /// Seconds from the turn to the node's first ban of the forger (`None`: never).
    pub banned_s: Option<f64>,
    /// Seconds from the turn to the first per-second sample in which the
    /// node's GossipSub score of the forger was below the graylist
    /// threshold (`None`: never seen there).
    pub graylisted_s: Option<f64>,
}

/// What one flooder sent one honest node after the flood began, and what
/// the node made of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodNeighbour {
    /// The honest node.
    pub node: usize,
    /// The flooder.
    pub flooder: String,
    /// Messages the flooder queued for the node after the turn.
    pub sent: u64,
    /// Of those, dropped by the flooder's GossipSub (send queue full or
    /// not sent in time: the node did not read them fast enough).
    pub dropped: u64,
    /// Messages from the flooder that reached the node's inbound policy
    /// after the turn.
    pub receipts: u64,
    /// Seconds from the turn to the first of them (the link's delay, and
    /// any queue on the way).
    pub first_receipt_s: f64,
    /// Seconds from the turn to the last of them.
    pub last_receipt_s: f64,
    /// Of those, the ones up to the node's first ban of it.
    pub before_ban: u64,
    /// Receipts per second from the first until the ban (or the last receipt).
    pub rate_per_s: f64,
    /// Seconds from the turn to the node's ban of it (`None`: never).
    pub banned_s: Option<f64>,
    /// Bans of it by the node after the turn (it comes back when a ban ends).
    pub bans: usize,
    /// Messages from it that reached the node while the first ban lasted
    /// (must be 0: a banned flooder stays cut).
    pub during_ban: u64,
    /// Seconds from the end of the first ban (the flooder comes back) to
    /// the second.
    pub cut_again_s: Option<f64>,
    /// The node's GossipSub score of the flooder at the turn.
    pub score_at_turn: Option<f64>,
    /// Its lowest GossipSub score of the flooder after the turn.
    pub lowest_score: Option<f64>,
}

/// What one flooder published after it turned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlooderSummary {
    /// The flooder.
    pub flooder: String,
    /// Publishes GossipSub took.
    pub published: u64,
    /// Publishes it refused, by error.
    pub refused: BTreeMap<String, u64>,
    /// Connections established after the turn (redials; a node that
    /// banned it closes them at once).
    pub reconnected: u64,
}

/// Per-node resource figures (process totals divided by the node count).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PerNode {
    /// CPU, % of one core per node.
    pub cpu_percent: f64,
    /// Resident memory per node, MiB.
    pub memory_mib: f64,
    /// Upload per node, kB/s (mean).
    pub upload_kbps: f64,
    /// Download per node, kB/s (mean).
    pub download_kbps: f64,
}

/// One second of samples: honest scores, adversary scores, `blocks` mesh degrees.
type Tick = (Vec<f64>, Vec<f64>, Vec<f64>);

#[derive(Default)]
struct TopicSums {
    messages: usize,
    expected: usize,
    got: usize,
    latency: Vec<f64>,
    shortest: Vec<f64>,
    reach: Vec<[f64; 3]>,
    bytes: usize,
    verdicts: [usize; 3],
}

struct Msg {
    kind: &'static str,
    publisher: usize,
    at: u64,
    bytes: usize,
    receipts: Vec<(usize, u64)>,
    verdicts: [usize; 3],
}

/// Computes the figures of a finished run.
pub fn analyse(world: &World, duplicates: &BTreeMap<String, f64>, traffic: &[(u64, u64)]) -> Figures {
    let record = world.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let scenario = &world.scenario;
    let end_ms = scenario.duration_s * 1000;
    let window = (scenario.warmup_s * 1000, end_ms.saturating_sub(10_000));
    let honest = |i: usize| world.roles.get(i).is_some_and(|r| r.honest());
    let index_of: HashMap<PeerId, usize> = world.peer_ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let turn_ms = scenario
        .adversary
        .iter()
        .map(|a| a.turn_at_s * 1000)
        .min()
        .unwrap_or(u64::MAX);

    // Down intervals per node (crash → restart).
    let mut down: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for (node, t, crashed) in &record.churn {
        let spans = down.entry(*node).or_default();
        if *crashed {
            spans.push((*t, u64::MAX));
        } else if let Some(last) = spans.last_mut() {
            last.1 = *t;
        }
    }
    let up_during = |node: usize, from: u64, to: u64| {
        down.get(&node)
            .is_none_or(|spans| spans.iter().all(|(a, b)| *b < from || *a > to))
    };

    let mut messages: HashMap<Vec<u8>, Msg> = HashMap::new();
    let forged_ids = &record.forged;
    for (node, event) in &record.events {
        if let ProbeEvent::Published {
            kind, id, bytes, at_ms, ..
        } = event
            && honest(*node)
            && *at_ms >= window.0
            && *at_ms <= window.1
        {
            messages.entry(id.clone()).or_insert(Msg {
                kind,
                publisher: *node,
                at: *at_ms,
                bytes: *bytes,
                receipts: Vec::new(),
                verdicts: [0; 3],
            });
        }
    }
    let mut forged_forwarded = 0usize;
    for (node, event) in &record.events {
        if let ProbeEvent::Received {
            id,
            at_ms,
            relay,
            acceptance,
            ..
        } = event
        {
            if let Some(m) = messages.get_mut(id)
                && honest(*node)
                && *node != m.publisher
            {
                m.receipts.push((*node, at_ms.saturating_sub(m.at)));
                m.verdicts[match acceptance {
                    Acceptance::Accept => 0,
                    Acceptance::Ignore => 1,
                    Acceptance::Reject => 2,
                }] += 1;
            }
            if forged_ids.contains(id) && index_of.get(relay).is_some_and(|r| honest(*r)) {
                forged_forwarded += 1;
            }
        }
    }
    let honest_nodes: Vec<usize> = (0..world.node_count()).filter(|i| honest(*i)).collect();
    let mut figures = Figures::default();
    let mut all_lat = Vec::new();
    let mut all_short = Vec::new();
    let mut after_turn = Vec::new();
    let mut before_turn = Vec::new();
    let mut by_topic: BTreeMap<&'static str, TopicSums> = BTreeMap::new();
    let mut delivery_bins: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut paths_cache: HashMap<usize, Vec<f64>> = HashMap::new();
    for m in messages.values() {
        let expected: Vec<usize> = honest_nodes
            .iter()
            .copied()
            .filter(|n| {
                *n != m.publisher
                    && up_during(*n, m.at.saturating_sub(LIVE_BEFORE_MS), m.at + LIVE_AFTER_MS)
                    && up_during(m.publisher, m.at, m.at + 1000)
            })
            .collect();
        if expected.is_empty() {
            continue;
        }
        let got: Vec<&(usize, u64)> = m.receipts.iter().filter(|(n, _)| expected.contains(n)).collect();
        if std::env::var_os("TIERNET_SIM_DEBUG").is_some() && got.len() < expected.len() {
            let missing: Vec<usize> = expected
                .iter()
                .copied()
                .filter(|n| !m.receipts.iter().any(|(r, _)| r == n))
                .collect();
            eprintln!(
                "missed: {} published by {} at {} ms ({} bytes, verdicts {:?}) not received by {missing:?}",
                m.kind, m.publisher, m.at, m.bytes, m.verdicts
            );
        }
        let paths = paths_cache
            .entry(m.publisher)
            .or_insert_with(|| shortest_paths(&world.placement, m.publisher));
        let entry = by_topic.entry(m.kind).or_default();
        entry.messages += 1;
        entry.expected += expected.len();
        entry.got += got.len();
        entry.bytes += m.bytes;
        for k in 0..3 {
            entry.verdicts[k] += m.verdicts[k];
        }
        if m.kind != FINALIZED {
            let bin = delivery_bins.entry(m.at / 10_000).or_default();
            bin.0 += expected.len();
            bin.1 += got.len();
        }
        let mut lat: Vec<f64> = got.iter().map(|(_, l)| *l as f64).collect();
        for (n, l) in &got {
            let short = paths.get(*n).copied().unwrap_or(0.0);
            entry.latency.push(*l as f64);
            entry.shortest.push(short);
            all_lat.push(*l as f64);
            all_short.push(short);
            if m.at >= turn_ms {
                after_turn.push(*l as f64);
            } else {
                before_turn.push(*l as f64);
            }
        }
        lat.sort_by(f64::total_cmp);
        let reach = |q: f64| {
            let need = ((expected.len() as f64) * q).ceil() as usize;
            if need == 0 {
                0.0
            } else {
                lat.get(need - 1).copied().unwrap_or(f64::INFINITY)
            }
        };
        entry.reach.push([reach(0.9), reach(0.99), reach(1.0)]);
    }
    let mut min_delivery = f64::INFINITY;
    let mut dup_large: Vec<f64> = Vec::new();
    for (topic, sums) in by_topic {
        let TopicSums {
            messages: count,
            expected,
            got,
            latency: lat,
            shortest: short,
            reach,
            bytes,
            verdicts,
        } = sums;
        let delivery = 100.0 * got as f64 / expected.max(1) as f64;
        if topic != FINALIZED {
            min_delivery = min_delivery.min(delivery);
        }
        let median = |k: usize| {
            let v: Vec<f64> = reach.iter().map(|r| r[k]).collect();
            percentiles(&v).p50
        };
        let mean_bytes = bytes as f64 / count.max(1) as f64;
        let topic_name = match topic {
            "proposal" | FINALIZED => "blocks",
            other => other,
        };
        let dups = duplicates.get(topic_name).copied();
        if mean_bytes >= 1024.0
            && let Some(d) = dups
        {
            dup_large.push(d);
        }
        figures.topics.insert(
            topic.to_owned(),
            TopicFigures {
                messages: count,
                mean_bytes,
                delivery_percent: delivery,
                latency_ms: percentiles(&lat),
                shortest_ms: percentiles(&short),
                reach_ms: [median(0), median(1), median(2)],
                duplicates: dups,
                verdicts,
            },
        );
    }
    figures.latency_ms = percentiles(&all_lat);
    figures.shortest_ms = percentiles(&all_short);
    figures.latencies = all_lat;
    figures.delivery_over_time = delivery_bins
        .iter()
        .map(|(bin, (e, g))| ((*bin * 10) as f64, 100.0 * *g as f64 / (*e).max(1) as f64))
        .collect();

    // Chain: finality, forks, heights.
    let mut decided: BTreeMap<u64, HashSet<[u8; 32]>> = BTreeMap::new();
    let mut finality = Vec::new();
    let mut first_decided: BTreeMap<u64, u64> = BTreeMap::new();
    let mut bans: Vec<(usize, PeerId, u64)> = Vec::new();
    for (node, event) in &record.events {
        match event {
            ProbeEvent::Decided {
                height,
                hash,
                proposed_ms,
                at_ms,
            } if honest(*node) => {
                decided.entry(*height).or_default().insert(*hash);
                if *at_ms >= window.0 {
                    finality.push(at_ms.saturating_sub(*proposed_ms) as f64);
                }
                let first = first_decided.entry(*height).or_insert(*at_ms);
                *first = (*first).min(*at_ms);
            }
            ProbeEvent::Banned { peer, at_ms } if honest(*node) => bans.push((*node, *peer, *at_ms)),
            _ => {}
        }
    }
    figures.forks = decided.values().filter(|h| h.len() > 1).count();
    figures.height = decided.keys().next_back().copied().unwrap_or(0);
    figures.finality_ms = percentiles(&finality);
    figures.blocks_per_s = figures.height as f64 / scenario.duration_s.max(1) as f64;

    // Meshes and scores from the samples.
    let mut degree: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut last_mesh: HashMap<(usize, Topic), HashSet<PeerId>> = HashMap::new();
    let mut changes = 0usize;
    // Per second: honest peers' scores, adversaries' scores, `blocks` mesh degrees.
    let mut ticks: BTreeMap<u64, Tick> = BTreeMap::new();
    let adversary = |p: &PeerId| index_of.get(p).is_some_and(|i| !honest(*i));
    let mut adv_score_late: f64 = f64::NEG_INFINITY;
    let mut graylisted_at: HashMap<(usize, PeerId), u64> = HashMap::new();
    // (adversary, honest node, topic) → start of its current stretch in that
    // mesh with a score ≥ 0; and the longest such stretch per topic.
    let mut stretch: HashMap<(PeerId, usize, Topic), u64> = HashMap::new();
    let mut longest_stretch: BTreeMap<String, f64> = BTreeMap::new();
    for sample in &record.samples {
        if !honest(sample.node) {
            continue;
        }
        let tick = ticks.entry(sample.t_ms / 1000).or_default();
        let scores: HashMap<PeerId, f64> = sample
            .view
            .scores
            .iter()
            .filter_map(|(p, s)| s.map(|s| (*p, s)))
            .collect();
        for (topic, peers) in &sample.view.mesh {
            longest_stretch.entry(topic.name().to_owned()).or_insert(0.0);
            for peer in index_of.keys().filter(|p| adversary(p)) {
                let key = (*peer, sample.node, *topic);
                let holding = peers.contains(peer) && scores.get(peer).is_some_and(|s| *s >= 0.0);
                if holding {
                    let since = *stretch.entry(key).or_insert(sample.t_ms);
                    let longest = longest_stretch.entry(topic.name().to_owned()).or_insert(0.0);
                    *longest = longest.max(sample.t_ms.saturating_sub(since) as f64 / 1000.0);
                } else {
                    stretch.remove(&key);
                }
            }
            let set: HashSet<PeerId> = peers.iter().copied().collect();
            if *topic == Topic::Blocks {
                tick.2.push(set.len() as f64);
            }
            if sample.t_ms >= window.0 {
                degree
                    .entry(topic.name().to_owned())
                    .or_default()
                    .push(set.len() as f64);
            }
            if let Some(old) = last_mesh.insert((sample.node, *topic), set.clone())
                && sample.t_ms >= window.0
            {
                changes += old.symmetric_difference(&set).count();
            }
        }
        for (peer, score) in &sample.view.scores {
            let Some(score) = score else { continue };
            if adversary(peer) {
                tick.1.push(*score);
                if sample.t_ms >= end_ms * 4 / 5 {
                    adv_score_late = adv_score_late.max(*score);
                }
                if *score < GRAYLIST {
                    graylisted_at.entry((sample.node, *peer)).or_insert(sample.t_ms);
                }
            } else {
                tick.0.push(*score);
            }
        }
    }
    let mean = |v: &Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    figures.score_drift = ticks.iter().map(|(t, v)| (*t as f64, mean(&v.0), mean(&v.1))).collect();
    figures.mesh_over_time = ticks
        .iter()
        .filter_map(|(t, v)| mean(&v.2).map(|m| (*t as f64, m)))
        .collect();
    figures.mesh_degree = degree.iter().map(|(k, v)| (k.clone(), percentiles(v))).collect();
    let minutes = (end_ms.saturating_sub(window.0)) as f64 / 60_000.0;
    figures.mesh_changes_per_node_min = changes as f64 / honest_nodes.len().max(1) as f64 / minutes.max(1e-9);

    // Rejoin after a restart: first sample with a non-empty mesh on every topic.
    let mut rejoin_worst: f64 = 0.0;
    for (node, t, crashed) in &record.churn {
        if *crashed || *t + 10_000 > end_ms {
            continue;
        }
        let back = record
            .samples
            .iter()
            .filter(|s| s.node == *node && s.t_ms >= *t)
            .find(|s| s.view.mesh.iter().all(|(_, peers)| !peers.is_empty()))
            .map_or(f64::INFINITY, |s| (s.t_ms - t) as f64);
        rejoin_worst = rejoin_worst.max(back / HEARTBEAT_MS);
    }

    // Process figures.
    let nodes = world.node_count().max(1) as f64;
    let secs = scenario.duration_s.max(1) as f64;
    let cpu = record.cpu.last().map_or(0, |c| c.1) as f64 - record.cpu.first().map_or(0, |c| c.1) as f64;
    let rss = record.memory.iter().map(|m| m.1).max().unwrap_or(0) as f64;
    let (up, downl) = traffic.iter().fold((0u64, 0u64), |acc, t| (acc.0 + t.0, acc.1 + t.1));
    figures.per_node = PerNode {
        cpu_percent: 100.0 * cpu / 1000.0 / secs / nodes,
        memory_mib: rss / 1024.0 / nodes,
        upload_kbps: up as f64 / 1000.0 / secs / nodes,
        download_kbps: downl as f64 / 1000.0 / secs / nodes,
    };

    // Checks.
    let checks = &mut figures.checks;
    if min_delivery.is_finite() {
        checks.insert("delivery_min_percent".into(), min_delivery);
    }
    if figures.shortest_ms.p95 > 0.0 {
        checks.insert(
            "p95_over_shortest_path".into(),
            figures.latency_ms.p95 / figures.shortest_ms.p95,
        );
    }
    if !dup_large.is_empty() {
        checks.insert(
            "duplicates_per_large_message".into(),
            dup_large.iter().sum::<f64>() / dup_large.len() as f64,
        );
    }
    checks.insert("finality_p95_ms".into(), figures.finality_ms.p95);
    checks.insert("forks".into(), figures.forks as f64);
    checks.insert("rejoin_heartbeats".into(), rejoin_worst);
    checks.insert("honest_p99_ms".into(), percentiles(&after_turn).p99);
    checks.insert(
        "adversary_score_max".into(),
        if adv_score_late.is_finite() {
            adv_score_late
        } else {
            GRAYLIST - 1.0
        },
    );
    let never: Vec<PeerId> = index_of
        .iter()
        .filter(|(_, i)| world.roles.get(**i) == Some(&Role::Adversary(AdversaryKind::NeverForward)))
        .map(|(p, _)| *p)
        .collect();
    if !never.is_empty() {
        // A slot held while the score is ≥ 0 is what the attack buys; a
        // negative score gets the peer pruned at the next heartbeat.
        let worst = longest_stretch.values().copied().fold(0.0, f64::max);
        figures.never_forward_negative_s = longest_stretch;
        checks.insert("never_forward_negative_s".into(), worst);
    }
    let turned = |kind: AdversaryKind| record.turned.get(&format!("{kind:?}")).copied();
    let kind_peers = |kind: AdversaryKind| -> Vec<PeerId> {
        index_of
            .iter()
            .filter(|(_, i)| world.roles.get(**i) == Some(&Role::Adversary(kind)))
            .map(|(p, _)| *p)
            .collect()
    };
    // Neighbours that received something directly from a peer.
    // (For an invalid publisher: only the nodes it sent a forgery to; its
    // honest messages reach more, and those owe it no ban.)
    let mut neighbours: HashMap<PeerId, HashSet<usize>> = HashMap::new();
    for (node, event) in &record.events {
        if let ProbeEvent::Received { relay, id, .. } = event
            && honest(*node)
        {
            let publisher = index_of.get(relay).and_then(|i| world.roles.get(*i));
            if publisher == Some(&Role::Adversary(AdversaryKind::InvalidPublisher)) && !forged_ids.contains(id) {
                continue;
            }
            neighbours.entry(*relay).or_default().insert(*node);
        }
    }
    let worst_time = |peers: &[PeerId], since: u64, with_graylist: bool| {
        peers
            .iter()
            .flat_map(|p| neighbours.get(p).into_iter().flatten().map(move |n| (p, *n)))
            .map(|(p, n)| {
                let ban = bans
                    .iter()
                    .filter(|(bn, bp, _)| *bn == n && bp == p)
                    .map(|(_, _, t)| *t)
                    .min();
                let gray = with_graylist.then(|| graylisted_at.get(&(n, *p)).copied()).flatten();
                match [ban, gray].into_iter().flatten().min() {
                    Some(t) => t.saturating_sub(since) as f64,
                    None => f64::INFINITY,
                }
            })
            .fold(0.0, f64::max)
    };
    if let Some(since) = turned(AdversaryKind::InvalidPublisher) {
        let peers = kind_peers(AdversaryKind::InvalidPublisher);
        checks.insert(
            "time_to_graylist_heartbeats".into(),
            worst_time(&peers, since, true) / HEARTBEAT_MS,
        );
        checks.insert(
            "time_to_ban_heartbeats".into(),
            worst_time(&peers, since, false) / HEARTBEAT_MS,
        );
        checks.insert("forged_forwarded".into(), forged_forwarded as f64);
        // (node, forger) → (first forgery's time, times of all of them).
        let mut got: BTreeMap<(usize, PeerId), Vec<(u64, &'static str)>> = BTreeMap::new();
        for (node, event) in &record.events {
            if let ProbeEvent::Received {
                relay,
                id,
                at_ms,
                label,
                ..
            } = event
                && honest(*node)
                && peers.contains(relay)
                && forged_ids.contains(id)
            {
                got.entry((*node, *relay)).or_default().push((*at_ms, label));
            }
        }
        figures.forgery_neighbours = got
            .into_iter()
            .map(|((node, forger), times)| {
                let banned = bans
                    .iter()
                    .filter(|(n, p, t)| *n == node && *p == forger && *t >= since)
                    .map(|(_, _, t)| *t)
                    .min();
                let first = times.iter().map(|(t, _)| *t).min().unwrap_or(since);
                let mut verdicts: BTreeMap<&'static str, u64> = BTreeMap::new();
                for (_, label) in times.iter().filter(|(t, _)| banned.is_none_or(|b| *t <= b)) {
                    *verdicts.entry(*label).or_default() += 1;
                }
                ForgeryNeighbour {
                    node,
                    forger: forger.to_string(),
                    first_forgery_s: first.saturating_sub(since) as f64 / 1000.0,
                    before_ban: verdicts.values().sum(),
                    verdicts_before_ban: verdicts,
                    banned_s: banned.map(|b| b.saturating_sub(since) as f64 / 1000.0),
                    graylisted_s: graylisted_at
                        .get(&(node, forger))
                        .map(|g| g.saturating_sub(since) as f64 / 1000.0),
                }
            })
            .collect();
    }
    if let Some(since) = turned(AdversaryKind::Flood) {
        let peers = kind_peers(AdversaryKind::Flood);
        // (node, flooder) → (receipts after the turn, the first one's and
        // the last one's time).
        let mut got: BTreeMap<(usize, PeerId), (u64, u64, u64)> = BTreeMap::new();
        for (node, event) in &record.events {
            if let ProbeEvent::Received { relay, at_ms, .. } = event
                && honest(*node)
                && *at_ms >= since
                && peers.contains(relay)
            {
                let entry = got.entry((*node, *relay)).or_insert((0, u64::MAX, 0));
                entry.0 += 1;
                entry.1 = entry.1.min(*at_ms);
                entry.2 = entry.2.max(*at_ms);
            }
        }
        // The cut is measured at every node the flood reached (flooders
        // forward honest traffic before they turn, so earlier receipts say
        // nothing about the flood).
        let cut = got
            .keys()
            .map(|(node, flooder)| {
                bans.iter()
                    .filter(|(n, p, t)| n == node && p == flooder && *t >= since)
                    .map(|(_, _, t)| (t - since) as f64)
                    .reduce(f64::min)
                    .unwrap_or(f64::INFINITY)
            })
            .fold(0.0, f64::max);
        checks.insert("flood_cut_s".into(), cut / 1000.0);
        let index_of_node = |peer: &PeerId| index_of.get(peer).copied().filter(|i| honest(*i));
        let mut pairs: BTreeMap<(usize, PeerId), FloodNeighbour> = BTreeMap::new();
        for (flooder, log) in &record.flood {
            for (peer, sent) in &log.sent {
                if let Some(node) = index_of_node(peer) {
                    pairs.entry((node, *flooder)).or_default().sent = *sent;
                }
            }
            for (peer, dropped) in &log.dropped {
                if let Some(node) = index_of_node(peer) {
                    pairs.entry((node, *flooder)).or_default().dropped = *dropped;
                }
            }
        }
        for ((node, flooder), (receipts, first, last)) in got {
            let pair = pairs.entry((node, flooder)).or_default();
            pair.receipts = receipts;
            pair.first_receipt_s = first.saturating_sub(since) as f64 / 1000.0;
            pair.last_receipt_s = last.saturating_sub(since) as f64 / 1000.0;
        }
        figures.flood_neighbours = pairs
            .into_iter()
            .map(|((node, flooder), mut pair)| {
                pair.node = node;
                pair.flooder = flooder.to_string();
                let mut banned_at: Vec<u64> = bans
                    .iter()
                    .filter(|(n, p, t)| *n == node && *p == flooder && *t >= since)
                    .map(|(_, _, t)| *t)
                    .collect();
                banned_at.sort_unstable();
                pair.bans = banned_at.len();
                pair.banned_s = banned_at.first().map(|t| (t - since) as f64 / 1000.0);
                if let Some(&first) = banned_at.first() {
                    // A ban must hold: nothing from the flooder reaches the
                    // node while the first ban lasts. When it ends the
                    // flooder is back, and is cut again.
                    let until = first.saturating_add(ReputationParams::default().base_ban_ms);
                    for (n, event) in &record.events {
                        if let ProbeEvent::Received { relay, at_ms, .. } = event
                            && *n == node
                            && *relay == flooder
                        {
                            if *at_ms >= since && *at_ms <= first {
                                pair.before_ban += 1;
                            } else if *at_ms > first && *at_ms < until {
                                pair.during_ban += 1;
                            }
                        }
                    }
                    pair.cut_again_s = banned_at
                        .get(1)
                        .map(|second| second.saturating_sub(until) as f64 / 1000.0);
                }
                // The node's GossipSub score of the flooder: at the turn,
                // and the lowest while connected after it (below -400 it
                // drops the flooder's messages unread: graylisted).
                let scores = || {
                    record
                        .samples
                        .iter()
                        .filter(move |s| s.node == node)
                        .filter_map(move |s| {
                            s.view
                                .scores
                                .iter()
                                .find(|(p, _)| *p == flooder)
                                .and_then(|(_, score)| score.map(|v| (s.t_ms, v)))
                        })
                };
                pair.score_at_turn = scores().rfind(|(t, _)| *t <= since).map(|(_, v)| v);
                pair.lowest_score = scores().filter(|(t, _)| *t > since).map(|(_, v)| v).reduce(f64::min);
                let (span, counted) = match pair.banned_s {
                    Some(banned) => (banned - pair.first_receipt_s, pair.before_ban),
                    None => (pair.last_receipt_s - pair.first_receipt_s, pair.receipts),
                };
                pair.rate_per_s = if span > 0.0 { counted as f64 / span } else { 0.0 };
                pair
            })
            .collect();
        figures.flooders = record
            .flood
            .iter()
            .map(|(flooder, log)| FlooderSummary {
                flooder: flooder.to_string(),
                published: log.published,
                refused: log.refused.clone(),
                reconnected: log.reconnected.values().sum(),
            })
            .collect();
    }
    if turn_ms < end_ms {
        let before = percentiles(&before_turn).p99;
        if before > 0.0 {
            checks.insert(
                "honest_p99_rise_percent".into(),
                100.0 * (percentiles(&after_turn).p99 - before) / before,
            );
        }
        // All nodes share the process, and the simulator's own records
        // grow all run long: compare the growth over the minute after the
        // turn with the growth over the minute before it.
        let span = 60_000u64
            .min(turn_ms.saturating_sub(window.0))
            .min(end_ms.saturating_sub(turn_ms));
        let at = |t: u64| {
            record
                .memory
                .iter()
                .min_by_key(|(s, _)| s.abs_diff(t))
                .map_or(0.0, |(_, m)| *m as f64)
        };
        let (before, turn, after) = (at(turn_ms.saturating_sub(span)), at(turn_ms), at(turn_ms + span));
        if span > 0 && turn > 0.0 {
            checks.insert(
                "memory_rise_percent".into(),
                100.0 * ((after - turn) - (turn - before)) / turn,
            );
        }
    }
    // Slot sybils: what they hold at their target (the first validator),
    // the validators the target keeps, and finality meanwhile.
    if let Some(since) = turned(AdversaryKind::Slots) {
        let slots: HashSet<PeerId> = kind_peers(AdversaryKind::Slots).into_iter().collect();
        let validators: HashSet<PeerId> = world.peer_ids.iter().take(scenario.validators).copied().collect();
        let mut held_max = 0usize;
        let mut links_min: Option<usize> = None;
        for sample in record.samples.iter().filter(|s| s.node == 0) {
            let connected = || sample.view.scores.iter().map(|(p, _)| p);
            if sample.t_ms >= since {
                held_max = held_max.max(connected().filter(|p| slots.contains(p)).count());
            }
            if sample.t_ms * 5 >= end_ms * 4 {
                let links = connected().filter(|p| validators.contains(p)).count();
                links_min = Some(links_min.map_or(links, |m| m.min(links)));
            }
        }
        checks.insert("slots_held_max".into(), held_max as f64);
        checks.insert("target_validator_links_min".into(), links_min.unwrap_or(0) as f64);
    }
    if turn_ms < end_ms {
        let mut times: Vec<u64> = std::iter::once(turn_ms)
            .chain(first_decided.values().copied().filter(|t| *t > turn_ms))
            .chain(std::iter::once(window.1))
            .collect();
        times.sort_unstable();
        let gap = times.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(0);
        checks.insert("finality_gap_s".into(), gap as f64 / 1000.0);
    }
    // Partitions.
    let split = scenario
        .event
        .iter()
        .filter(|e| e.action == crate::scenario::Action::Partition)
        .map(|e| e.at_s * 1000);
    let heal: Vec<u64> = scenario
        .event
        .iter()
        .filter(|e| e.action == crate::scenario::Action::Heal)
        .map(|e| e.at_s * 1000)
        .collect();
    let mut while_split = 0usize;
    let mut after_heal: f64 = 0.0;
    for start in split {
        let end = heal.iter().copied().find(|h| *h > start).unwrap_or(end_ms);
        let before = first_decided
            .iter()
            .filter(|(_, t)| **t <= start)
            .map(|(h, _)| *h)
            .max()
            .unwrap_or(0);
        // A height already under way when the split came may still finish.
        while_split += first_decided
            .iter()
            .filter(|(h, t)| **h > before + 1 && **t > start && **t < end)
            .count();
        if end < end_ms {
            let next = first_decided.values().filter(|t| **t >= end).min().copied();
            after_heal = after_heal.max(next.map_or(f64::INFINITY, |t| (t - end) as f64 / 1000.0));
        }
    }
    if !heal.is_empty() {
        checks.insert("finality_while_split".into(), while_split as f64);
        checks.insert("finality_after_heal_s".into(), after_heal);
    }
    // Light clients.
    if !record.light_heads.is_empty() {
        let chain: HashMap<u64, HashSet<[u8; 32]>> = decided.clone().into_iter().collect();
        let unverified = record
            .light_heads
            .iter()
            .filter(|(_, _, h, hash)| *h > 0 && chain.get(h).is_some_and(|set| !set.contains(hash)))
            .count();
        checks.insert("light_unverified".into(), unverified as f64);
        let lag = record
            .light_heads
            .iter()
            .filter(|(_, t, _, _)| *t + 30_000 >= end_ms)
            .map(|(_, t, h, _)| {
                let head = first_decided
                    .iter()
                    .filter(|(_, ft)| **ft <= *t)
                    .map(|(h, _)| *h)
                    .max()
                    .unwrap_or(0);
                head.saturating_sub(*h) as f64
            })
            .fold(0.0, f64::max);
        checks.insert("light_head_lag_blocks".into(), lag);
    }
    figures
}
