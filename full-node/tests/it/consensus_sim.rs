//! In-process simulation of 4 consensus engines on a virtual clock. Each
//! node's wall clock is the virtual time plus a start (`base_ms`) and its
//! own offset, passed to `Engine::handle` as `now_ms`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use arc_malachitebft_core_types::LinearTimeouts;
use ed25519_dalek::SigningKey;
use std::collections::HashMap;

use tiernet_core::chain::{
    BlockBuilder, GenesisAnchor, MAX_BLOCK_INTERVAL_MS, Parent, ValidatorSet, precommit_for, verify_commit,
};
use tiernet_core::genesis::ConsensusParams;
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash};
use tiernet_node::block_store::{Guard, SignedKind};
use tiernet_node::consensus::engine::{App, Engine, EngineInput, MAX_PENDING_PROPOSALS, Output, StartPoint};

const LATENCY: Duration = Duration::from_millis(5);
/// The genesis time of the simulated chain, ms since the Unix epoch.
const GENESIS_MS: u64 = 1_000;
const YEAR_MS: u64 = 365 * 24 * 3_600_000;

/// The clock skew validators allow proposals (the genesis default).
fn skew_ms() -> u64 {
    ConsensusParams::default().max_clock_skew_ms
}

/// Empty blocks, a fixed set, an in-memory double-sign guard.
struct SimApp {
    me: ZsiId,
    set: ValidatorSet,
    signed: HashMap<Slot, (Vec<u8>, Option<proto::Vote>)>,
    /// A faulty proposer: added to the time the engine asks for.
    ahead_ms: u64,
}

/// A guard slot: (height, round, kind).
type Slot = (u64, u32, u8);

impl App for SimApp {
    fn build(&mut self, parent: Parent<'_>, round: u32, time_ms: u64) -> Option<proto::Block> {
        let builder = BlockBuilder {
            parent,
            round,
            time_ms: time_ms + self.ahead_ms,
            proposer: self.me,
            current: &self.set,
            next: &self.set,
            state_root: Hash32::ZERO,
        };
        builder.block(Vec::new(), Vec::new()).ok()
    }

    fn check(&mut self, _: &proto::Block) -> bool {
        true
    }

    fn may_sign(
        &mut self,
        height: u64,
        round: u32,
        kind: SignedKind,
        hash: &[u8],
        vote: Option<&proto::Vote>,
    ) -> Guard {
        let (signed, earlier) = self
            .signed
            .entry((height, round, kind as u8))
            .or_insert_with(|| (hash.to_vec(), vote.cloned()));
        if signed == hash {
            Guard::Sign
        } else {
            Guard::Refuse {
                earlier: earlier.clone(),
            }
        }
    }

    fn commit(&mut self, _: &proto::Block, _: &proto::CommitCertificate) -> Option<ValidatorSet> {
        Some(self.set.clone())
    }
}

struct Sim {
    engines: Vec<Engine>,
    apps: Vec<SimApp>,
    online: Vec<bool>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize, usize)>>,
    inputs: BTreeMap<usize, EngineInput>,
    seq: u64,
    now: Duration,
    /// Every node's wall clock at virtual time zero.
    base_ms: u64,
    /// Added to one node's clock.
    offset_ms: Vec<u64>,
    decided: Vec<BTreeMap<u64, (proto::Block, proto::CommitCertificate)>>,
    /// The deciding node's clock when it decided each height.
    decided_at: Vec<BTreeMap<u64, u64>>,
    /// Every vote published (first publications), with its node.
    published: Vec<(usize, proto::Vote)>,
    set: ValidatorSet,
    network: NetworkId,
    genesis: GenesisAnchor,
    keys: Vec<SigningKey>,
    ids: Vec<ZsiId>,
}

fn start_point(last_header: Option<proto::Header>, set: &ValidatorSet) -> StartPoint {
    StartPoint {
        last_header,
        set: set.clone(),
        max_clock_skew_ms: skew_ms(),
    }
}

fn engine(genesis: &GenesisAnchor, start: StartPoint, id: ZsiId, key: &SigningKey) -> Engine {
    Engine::new(
        genesis.clone(),
        start,
        id,
        key.clone(),
        LinearTimeouts::default(),
        Duration::ZERO,
    )
    .unwrap()
}

impl Sim {
    fn new(n: u8, online: &[bool]) -> Self {
        let network = NetworkId::new("simnet").unwrap();
        let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
        let ids: Vec<ZsiId> = (0..n).map(|i| ZsiId(Hash32([i + 10; 32]))).collect();
        let validators = keys
            .iter()
            .zip(&ids)
            .map(|(k, id)| proto::Validator {
                zsi_id: id.as_bytes().to_vec(),
                consensus_key: k.verifying_key().to_bytes().to_vec(),
                power: 25,
            })
            .collect();
        let set = ValidatorSet::new(proto::ValidatorSet { validators }).unwrap();
        let genesis = GenesisAnchor::new(network.clone(), GENESIS_MS, set.hash());
        let start = start_point(None, &set);
        let engines = keys
            .iter()
            .zip(&ids)
            .map(|(k, id)| engine(&genesis, start.clone(), *id, k))
            .collect();
        let apps = ids
            .iter()
            .map(|id| SimApp {
                me: *id,
                set: set.clone(),
                signed: HashMap::new(),
                ahead_ms: 0,
            })
            .collect();
        let mut sim = Sim {
            engines,
            apps,
            online: online.to_vec(),
            queue: BinaryHeap::new(),
            inputs: BTreeMap::new(),
            seq: 0,
            now: Duration::ZERO,
            base_ms: GENESIS_MS,
            offset_ms: vec![0; usize::from(n)],
            decided: (0..n).map(|_| BTreeMap::new()).collect(),
            decided_at: (0..n).map(|_| BTreeMap::new()).collect(),
            published: Vec::new(),
            set,
            network,
            genesis,
            keys,
            ids,
        };
        for node in 0..usize::from(n) {
            sim.push(Duration::ZERO, node, EngineInput::Start);
        }
        sim
    }

    /// Node `node`'s wall clock now.
    fn clock(&self, node: usize) -> u64 {
        self.base_ms + self.now.as_millis() as u64 + self.offset_ms[node]
    }

    fn push(&mut self, at: Duration, node: usize, input: EngineInput) {
        self.seq += 1;
        self.inputs.insert(self.seq as usize, input);
        self.queue.push(Reverse((at, self.seq, node, self.seq as usize)));
    }

    /// Node `node` crashes: it gets nothing until [`Sim::restart`], and
    /// its armed timers die with it.
    fn crash(&mut self, node: usize) {
        self.online[node] = false;
    }

    /// Node `node` starts again from what it stored: its last decided
    /// header and its double-sign guard (the app), nothing of its round.
    fn restart(&mut self, node: usize) {
        let last_header = self.decided[node]
            .values()
            .next_back()
            .and_then(|(b, _)| b.header.clone());
        let start = start_point(last_header, &self.set);
        self.engines[node] = engine(&self.genesis, start, self.ids[node], &self.keys[node]);
        self.online[node] = true;
        self.push(self.now, node, EngineInput::Start);
    }

    /// Runs until every online node decided `target` heights or `deadline` passes.
    fn run(&mut self, target: u64, deadline: Duration) {
        while let Some(Reverse((at, ..))) = self.queue.peek() {
            if *at > deadline {
                self.now = deadline;
                break;
            }
            let Some(Reverse((at, _, node, key))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            let input = self.inputs.remove(&key).unwrap();
            if !self.online[node] {
                continue;
            }
            let now_ms = self.clock(node);
            let outputs = self.engines[node].handle(input, now_ms, &mut self.apps[node]);
            for output in outputs {
                match output {
                    Output::PublishBlocks(msg) => {
                        for peer in 0..self.engines.len() {
                            if peer != node {
                                self.push(at + LATENCY, peer, EngineInput::Blocks(msg.clone()));
                            }
                        }
                    }
                    Output::PublishVotes(msg) | Output::RebroadcastVotes(msg) => {
                        if let Some(proto::votes_message::Kind::Vote(v)) = &msg.kind {
                            self.published.push((node, v.clone()));
                        }
                        for peer in 0..self.engines.len() {
                            if peer != node {
                                self.push(at + LATENCY, peer, EngineInput::Votes(msg.clone()));
                            }
                        }
                    }
                    Output::Schedule {
                        timeout,
                        after,
                        generation,
                    } => self.push(at + after, node, EngineInput::Timeout { timeout, generation }),
                    Output::Decided { height, block, commit } => {
                        assert!(self.decided[node].insert(height, (block, commit)).is_none());
                        self.decided_at[node].insert(height, now_ms);
                    }
                    // Sync: any node that decided `from` serves it.
                    Output::Behind { from, .. } => {
                        let served = self.decided.iter().find_map(|d| d.get(&from)).cloned();
                        if let Some((block, commit)) = served {
                            let fb = proto::FinalizedBlock {
                                block: Some(block),
                                commit: Some(commit),
                            };
                            let msg = proto::BlocksMessage {
                                kind: Some(proto::blocks_message::Kind::Finalized(fb)),
                            };
                            self.push(at + LATENCY, node, EngineInput::Blocks(msg));
                        }
                    }
                }
            }
            let done = (0..self.engines.len())
                .filter(|&i| self.online[i])
                .all(|i| self.decided[i].len() as u64 >= target);
            if done {
                break;
            }
        }
    }

    fn check_agreement(&self, heights: u64) {
        let online: Vec<usize> = (0..self.engines.len()).filter(|&i| self.online[i]).collect();
        for h in 1..=heights {
            let (block, _) = &self.decided[online[0]][&h];
            for &i in &online {
                let (other, commit) = self.decided[i].get(&h).expect("decided");
                assert_eq!(other, block, "node {i} decided another block at {h}");
                let header = other.header.as_ref().unwrap();
                assert_eq!(header.height, h);
                assert_eq!(commit.height, h);
                assert_eq!(commit.block_hash, header_hash(header).as_bytes().to_vec());
                let summary = verify_commit(commit, &self.set, &self.network).expect("commit verifies");
                assert!(summary.signed_power >= self.set.quorum());
            }
        }
        // Each block builds on the previous one.
        for h in 2..=heights {
            let prev = self.decided[online[0]][&(h - 1)].0.header.as_ref().unwrap();
            let cur = self.decided[online[0]][&h].0.header.as_ref().unwrap();
            assert_eq!(cur.prev_hash, header_hash(prev).as_bytes().to_vec());
        }
        self.check_times(heights);
    }

    /// Chain time is strictly monotonic, steps at most one interval, and
    /// no block is further ahead of any node's clock when it decided it
    /// than the skew allows.
    fn check_times(&self, heights: u64) {
        let node = (0..self.engines.len()).find(|&i| self.online[i]).unwrap();
        let mut parent = GENESIS_MS;
        for h in 1..=heights {
            let time = self.decided[node][&h].0.header.as_ref().unwrap().time_ms;
            assert!(time > parent, "height {h}: {time} is not after {parent}");
            assert!(
                time - parent <= MAX_BLOCK_INTERVAL_MS,
                "height {h}: {time} is more than an interval after {parent}"
            );
            for (i, at) in self.decided_at.iter().enumerate() {
                if let Some(&at) = at.get(&h) {
                    assert!(
                        time <= at + skew_ms(),
                        "height {h}: {time} is ahead of node {i}'s clock {at}"
                    );
                }
            }
            parent = time;
        }
    }

    /// The prevote `node` published first at `(height, round)`.
    fn prevote(&self, node: usize, height: u64, round: u32) -> Option<&proto::Vote> {
        self.published
            .iter()
            .find(|(n, v)| {
                *n == node && v.height == height && v.round == round && v.vote_type == proto::VoteType::Prevote as i32
            })
            .map(|(_, v)| v)
    }
}

#[test]
fn all_online_decide_three_heights() {
    let mut sim = Sim::new(4, &[true; 4]);
    sim.run(3, Duration::from_secs(60));
    sim.check_agreement(3);
    assert!(sim.now < Duration::from_secs(1), "took {:?}", sim.now);
}

#[test]
fn one_silent_still_decides() {
    // Node 1 is the proposer of height 1, round 0 ((1 + 0) mod 4).
    let mut sim = Sim::new(4, &[true, false, true, true]);
    sim.run(3, Duration::from_secs(120));
    sim.check_agreement(3);
}

#[test]
fn two_silent_do_not_decide() {
    let mut sim = Sim::new(4, &[true, false, true, false]);
    sim.run(1, Duration::from_secs(60));
    assert!(sim.decided.iter().all(|d| d.is_empty()));
    assert!(sim.now >= Duration::from_secs(50), "stopped early at {:?}", sim.now);
}

/// Three of four decide `before` heights; node 2 crashes and the pair left
/// stalls for a minute; `meanwhile` runs during the stall; then node 2
/// restarts and all three must decide two more heights.
fn stall_and_resume(before: u64, meanwhile: impl FnOnce(&mut Sim)) {
    let mut sim = Sim::new(4, &[true, true, true, false]);
    sim.run(before, Duration::from_secs(60));
    sim.check_agreement(before);
    sim.crash(2);
    let stalled: Vec<u64> = (0..2).map(|i| sim.decided[i].len() as u64).collect();
    let crash_at = sim.now;
    sim.run(u64::MAX, crash_at + Duration::from_secs(30));
    meanwhile(&mut sim);
    sim.run(u64::MAX, sim.now + Duration::from_secs(30));
    let after: Vec<u64> = (0..2).map(|i| sim.decided[i].len() as u64).collect();
    assert_eq!(after, stalled, "decided with half of the power");
    sim.restart(2);
    let target = stalled.iter().max().unwrap() + 2;
    sim.run(target, sim.now + Duration::from_secs(120));
    for node in 0..3 {
        assert!(
            sim.decided[node].len() as u64 >= target,
            "node {node} decided {} heights, not {target}",
            sim.decided[node].len()
        );
    }
    sim.check_agreement(target);
}

/// A validator back from a restart starts in round 0 and learns where a
/// stalled round stands only from the others' votes, which they used to
/// send again only at their rebroadcast timer (5 s, +1.5 s a round). A node
/// now feeds `RebroadcastNow` when a validator subscribes to `votes`: the
/// votes go out at once, and the timer is re-armed, not doubled (its old
/// firing is stale). In processes this took the stalled pair's resumption
/// after a restart from 7–20 s to 2–5 s (`chain::four_validators_…`).
#[test]
fn rebroadcast_now_sends_the_votes_at_once_and_keeps_one_timer() {
    // Two of four: a stall, with rebroadcasts running.
    let mut twin = Sim::new(4, &[true, true, false, false]);
    let mut sim = Sim::new(4, &[true, true, false, false]);
    let votes = |sim: &Sim| sim.published.iter().filter(|(n, _)| *n == 0).count();
    for s in [&mut twin, &mut sim] {
        s.run(1, Duration::from_secs(12));
    }
    assert_eq!(votes(&sim), votes(&twin));
    let before = votes(&sim);
    sim.push(sim.now, 0, EngineInput::RebroadcastNow);
    sim.run(1, sim.now + LATENCY);
    assert!(votes(&sim) > before, "no votes sent at once");
    // Over the next minute: as many rebroadcasts as the twin's timer gives,
    // give or take the one that was brought forward.
    let (sent_now, twin_then) = (votes(&sim), votes(&twin));
    for s in [&mut twin, &mut sim] {
        s.run(1, Duration::from_secs(72));
    }
    let (ours, theirs) = (votes(&sim) - sent_now, votes(&twin) - twin_then);
    assert!(ours > 0 && ours <= theirs, "{ours} votes after, the twin {theirs}");
    assert!(
        sim.decided.iter().all(|d| d.is_empty()),
        "decided with half of the power"
    );
}

#[test]
fn a_stalled_pair_resumes_when_a_third_restarts() {
    // Node 2 missed every vote of the stalled round; they reach it through
    // rebroadcasts, and it fetches any block it did not see decided.
    stall_and_resume(2, |_| {});
}

#[test]
fn a_validator_restarted_mid_round_sends_its_earlier_votes() {
    // Height 5 is node 1's to propose (round 0): nodes 0 and 1 prevote its
    // block and wait, short of a quorum. Node 0 restarts during the stall:
    // its core forgot that prevote and would now prevote nil, which its
    // guard refuses; node 2 needs the prevote on disk to complete the round.
    stall_and_resume(4, |sim| {
        sim.crash(0);
        sim.restart(0);
    });
}

#[test]
fn malformed_and_forged_messages_are_ignored() {
    let mut sim = Sim::new(4, &[true; 4]);
    let network = sim.network.as_str().to_owned();
    let junk_votes = [
        proto::Vote::default(),
        proto::Vote {
            network_id: network.clone(),
            vote_type: 2,
            height: u64::MAX,
            round: u32::MAX,
            block_hash: vec![1; 31],
            validator: vec![10; 32],
            signature: vec![0; 64],
        },
        proto::Vote {
            network_id: network.clone(),
            vote_type: 1,
            height: 1,
            round: 0,
            block_hash: vec![1; 32],
            validator: vec![10; 32],
            signature: vec![7; 64],
        },
        proto::Vote {
            network_id: network.clone(),
            vote_type: 9,
            height: 1,
            round: u32::MAX,
            block_hash: Vec::new(),
            validator: vec![99; 32],
            signature: vec![7; 3],
        },
    ];
    for (i, vote) in junk_votes.into_iter().enumerate() {
        let msg = proto::VotesMessage {
            kind: Some(proto::votes_message::Kind::Vote(vote)),
            ..Default::default()
        };
        sim.push(Duration::from_millis(1 + i as u64), 0, EngineInput::Votes(msg));
    }
    let junk_proposals = [
        proto::Proposal::default(),
        proto::Proposal {
            network_id: network.clone(),
            height: 1,
            round: 0,
            pol_round_plus_one: u32::MAX,
            block: Some(proto::Block::default()),
            proposer: vec![11; 32],
            signature: vec![1; 64],
        },
        proto::Proposal {
            network_id: network,
            height: u64::MAX,
            round: u32::MAX,
            pol_round_plus_one: 0,
            block: None,
            proposer: vec![11; 5],
            signature: Vec::new(),
        },
    ];
    for (i, proposal) in junk_proposals.into_iter().enumerate() {
        let msg = proto::BlocksMessage {
            kind: Some(proto::blocks_message::Kind::Proposal(proposal)),
        };
        sim.push(Duration::from_millis(1 + i as u64), 0, EngineInput::Blocks(msg));
    }
    sim.push(
        Duration::from_millis(2),
        0,
        EngineInput::Votes(proto::VotesMessage {
            kind: None,
            ..Default::default()
        }),
    );
    sim.run(2, Duration::from_secs(60));
    sim.check_agreement(2);
}

// ───────────────────────────── chain time ─────────────────────────────

/// Node 1 proposes height 1 in round 0 ((1 + 0) mod 4) and height 5 in
/// round 0, stamping its blocks `ahead_ms` past the time it should. The
/// honest validators prevote nil in those rounds, and another proposer's
/// block with a sane time decides each height in a later round.
fn a_faulty_proposer_ahead_by(ahead_ms: u64) {
    let mut sim = Sim::new(4, &[true; 4]);
    sim.apps[1].ahead_ms = ahead_ms;
    sim.run(6, Duration::from_secs(300));
    sim.check_agreement(6);
    for height in [1, 5] {
        for node in [0, 2, 3] {
            let prevote = sim.prevote(node, height, 0).expect("a prevote in round 0");
            assert!(
                prevote.block_hash.is_empty(),
                "node {node} prevoted the block from the future at height {height}"
            );
        }
        let (block, commit) = &sim.decided[0][&height];
        assert!(commit.round >= 1, "height {height} decided in round {}", commit.round);
        let header = block.header.as_ref().unwrap();
        assert_ne!(header.proposer, sim.ids[1].as_bytes().to_vec());
    }
    for (block, _) in sim.decided[0].values() {
        let header = block.header.as_ref().unwrap();
        assert!(
            header.time_ms < GENESIS_MS + ahead_ms,
            "a block from the future was decided"
        );
    }
}

#[test]
fn a_block_a_century_ahead_is_prevoted_nil_and_the_height_decided_later() {
    a_faulty_proposer_ahead_by(100 * YEAR_MS);
}

#[test]
fn a_block_beyond_the_clock_skew_is_prevoted_nil_and_the_height_decided_later() {
    // Ten minutes: within the interval a block may step, beyond the skew,
    // so only the clock rule refuses it.
    assert!(10 * 60_000 > skew_ms() && 10 * 60_000 < MAX_BLOCK_INTERVAL_MS);
    a_faulty_proposer_ahead_by(10 * 60_000);
}

#[test]
fn block_times_are_monotonic_and_bounded() {
    // The clocks read three and a half intervals past the genesis time (a
    // network that starts late, or resumes after a stall), and disagree by
    // up to most of the skew: the first blocks step one interval each
    // until chain time meets the clocks, then follow them; every step is
    // within the bounds (`check_times`), and honest proposals are never
    // refused.
    let mut sim = Sim::new(4, &[true; 4]);
    sim.base_ms = GENESIS_MS + 3 * MAX_BLOCK_INTERVAL_MS + MAX_BLOCK_INTERVAL_MS / 2;
    sim.offset_ms = vec![0, skew_ms() / 3, 2 * skew_ms() / 3, 9 * skew_ms() / 10];
    sim.run(16, Duration::from_secs(120));
    sim.check_agreement(16);
    let times: Vec<u64> = (1..=16)
        .map(|h| sim.decided[0][&h].0.header.as_ref().unwrap().time_ms)
        .collect();
    for (i, time) in times.iter().take(3).enumerate() {
        assert_eq!(*time, GENESIS_MS + (i as u64 + 1) * MAX_BLOCK_INTERVAL_MS);
    }
    assert!(times[3] >= sim.base_ms, "chain time caught up with the clocks");
    for h in 1..=16 {
        assert_eq!(sim.decided[0][&h].1.round, 0, "height {h} needed more than one round");
    }
}

// ───────────────────── the next height's proposal buffer ─────────────────────

/// A signed proposal of an empty block on `parent` by node `by` of `sim`.
fn proposal(sim: &Sim, parent: Parent<'_>, round: u32, by: usize, time_ms: u64) -> proto::Proposal {
    let block = BlockBuilder {
        parent,
        round,
        time_ms,
        proposer: sim.ids[by],
        current: &sim.set,
        next: &sim.set,
        state_root: Hash32::ZERO,
    }
    .block(Vec::new(), Vec::new())
    .unwrap();
    let mut p = proto::Proposal {
        network_id: sim.network.as_str().to_owned(),
        height: block.header.as_ref().unwrap().height,
        round,
        pol_round_plus_one: 0,
        block: Some(block),
        proposer: sim.ids[by].as_bytes().to_vec(),
        signature: Vec::new(),
    };
    p.sign_with(&sim.keys[by]);
    p
}

fn blocks(p: proto::Proposal) -> EngineInput {
    EngineInput::Blocks(proto::BlocksMessage {
        kind: Some(proto::blocks_message::Kind::Proposal(p)),
    })
}

#[test]
fn the_next_heights_buffer_keeps_only_its_proposers_proposals() {
    let sim = Sim::new(4, &[true; 4]);
    let now = GENESIS_MS + 10_000;
    let mut node = engine(&sim.genesis, start_point(None, &sim.set), sim.ids[0], &sim.keys[0]);
    let mut app = SimApp {
        me: sim.ids[0],
        set: sim.set.clone(),
        signed: HashMap::new(),
        ahead_ms: 0,
    };
    node.handle(EngineInput::Start, now, &mut app);
    // Height 1 as the network decided it: node 1's block, precommitted by all.
    let first = proposal(&sim, Parent::Genesis(&sim.genesis), 0, 1, GENESIS_MS + 1);
    let block1 = first.block.clone().unwrap();
    let header1 = block1.header.clone().unwrap();
    let hash1 = header_hash(&header1);
    let commit1 = proto::CommitCertificate {
        height: 1,
        round: 0,
        block_hash: hash1.0.to_vec(),
        signatures: (0..4)
            .map(|i| {
                let mut vote = precommit_for(&sim.network, 1, 0, Some(&hash1), &sim.ids[i]);
                vote.sign_with(&sim.keys[i]);
                proto::CommitSignature {
                    validator: sim.ids[i].as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect(),
    };
    // Before node 0 has decided height 1, node 3 (a member, never the
    // proposer of height 2, round 0) floods it with signed proposals for
    // height 2, in round 0 and in every round after.
    let parent = Parent::Header(&header1);
    for round in 0..4 * MAX_PENDING_PROPOSALS as u32 {
        node.handle(blocks(proposal(&sim, parent, round, 3, GENESIS_MS + 2)), now, &mut app);
    }
    // Then the real proposal of height 2, round 0 arrives: node 2's ((2 + 0) mod 4).
    let real = proposal(&sim, parent, 0, 2, GENESIS_MS + 2);
    let real_hash = header_hash(real.block.as_ref().unwrap().header.as_ref().unwrap());
    node.handle(blocks(real.clone()), now, &mut app);
    // And every proposer of every round of height 2, up to far rounds.
    for round in 1..4 * MAX_PENDING_PROPOSALS as u32 {
        let by = (2 + round as usize) % 4;
        node.handle(blocks(proposal(&sim, parent, round, by, GENESIS_MS + 2)), now, &mut app);
    }
    let kept: Vec<&proto::Proposal> = node.pending_proposals().collect();
    assert_eq!(kept.len(), MAX_PENDING_PROPOSALS, "one per round below the bound");
    for p in &kept {
        assert_eq!(p.height, 2);
        assert!((p.round as usize) < MAX_PENDING_PROPOSALS);
        let expected = sim.ids[(2 + p.round as usize) % 4];
        assert_eq!(
            p.proposer,
            expected.as_bytes().to_vec(),
            "round {} kept another's",
            p.round
        );
    }
    assert_eq!(kept[0], &real);
    // Height 1 arrives; the real proposal reaches consensus and gets node 0's prevote.
    let finalized = proto::BlocksMessage {
        kind: Some(proto::blocks_message::Kind::Finalized(proto::FinalizedBlock {
            block: Some(block1),
            commit: Some(commit1),
        })),
    };
    let outputs = node.handle(EngineInput::Blocks(finalized), now, &mut app);
    assert_eq!(node.height(), 2);
    let prevoted = outputs.iter().any(|o| match o {
        Output::PublishVotes(m) => matches!(
            &m.kind,
            Some(proto::votes_message::Kind::Vote(v))
                if v.height == 2 && v.round == 0 && v.vote_type == proto::VoteType::Prevote as i32
                    && v.block_hash == real_hash.0.to_vec()
        ),
        _ => false,
    });
    assert!(prevoted, "node 0 did not prevote the real proposal of height 2");
    assert_eq!(node.pending_proposals().count(), 0);
}
