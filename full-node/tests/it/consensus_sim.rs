//! In-process simulation of 4 consensus engines on a virtual clock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use arc_malachitebft_core_types::LinearTimeouts;
use ed25519_dalek::SigningKey;
use std::collections::HashMap;

use tiernet_core::chain::{BlockBuilder, GenesisAnchor, Parent, ValidatorSet, verify_commit};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::header_hash;
use tiernet_node::block_store::{Guard, SignedKind};
use tiernet_node::consensus::engine::{App, Engine, EngineInput, Output, StartPoint};

const LATENCY: Duration = Duration::from_millis(5);

/// Empty blocks, a fixed set, an in-memory double-sign guard.
struct SimApp {
    me: ZsiId,
    set: ValidatorSet,
    signed: HashMap<Slot, (Vec<u8>, Option<proto::Vote>)>,
}

/// A guard slot: (height, round, kind).
type Slot = (u64, u32, u8);

impl App for SimApp {
    fn build(&mut self, parent: Parent<'_>, round: u32) -> Option<proto::Block> {
        let builder = BlockBuilder {
            parent,
            round,
            time_ms: parent.time_ms() + 1,
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
    decided: Vec<BTreeMap<u64, (proto::Block, proto::CommitCertificate)>>,
    set: ValidatorSet,
    network: NetworkId,
    genesis: GenesisAnchor,
    keys: Vec<SigningKey>,
    ids: Vec<ZsiId>,
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
        let genesis = GenesisAnchor::new(network.clone(), 1_000, set.hash());
        let start = StartPoint {
            last_header: None,
            set: set.clone(),
        };
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
            decided: (0..n).map(|_| BTreeMap::new()).collect(),
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
        let start = StartPoint {
            last_header,
            set: self.set.clone(),
        };
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
            let outputs = self.engines[node].handle(input, &mut self.apps[node]);
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
