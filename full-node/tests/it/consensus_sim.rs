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
use tiernet_node::block_store::SignedKind;
use tiernet_node::consensus::engine::{App, Engine, EngineInput, Output, StartPoint};

const LATENCY: Duration = Duration::from_millis(5);

/// Empty blocks, a fixed set, an in-memory double-sign guard.
struct SimApp {
    me: ZsiId,
    set: ValidatorSet,
    signed: HashMap<(u64, u32, u8), Vec<u8>>,
}

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

    fn may_sign(&mut self, height: u64, round: u32, kind: SignedKind, hash: &[u8]) -> bool {
        self.signed
            .entry((height, round, kind as u8))
            .or_insert_with(|| hash.to_vec())
            == hash
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
            .into_iter()
            .zip(&ids)
            .map(|(k, id)| {
                Engine::new(
                    genesis.clone(),
                    start.clone(),
                    *id,
                    k,
                    LinearTimeouts::default(),
                    Duration::ZERO,
                )
                .unwrap()
            })
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

    /// Runs until every online node decided `target` heights or `deadline` passes.
    fn run(&mut self, target: u64, deadline: Duration) {
        while let Some(Reverse((at, _, node, key))) = self.queue.pop() {
            if at > deadline {
                break;
            }
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
                    Output::PublishVotes(msg) => {
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
                    Output::Behind { .. } => {}
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
        EngineInput::Votes(proto::VotesMessage { kind: None }),
    );
    sim.run(2, Duration::from_secs(60));
    sim.check_agreement(2);
}
