//! Issue 5 with real `tiernet-node` processes on loopback: four validators
//! finalize blocks whose commit certificates `tiernet-core` verifies; one
//! killed does not stop them, two do, and finality resumes when one
//! returns; proofs wait in a mempool that survives restarts until a block
//! includes them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use tiernet_core::chain::{GenesisAnchor, Parent, ValidatorSet, validate_finalized};
use tiernet_core::genesis::Genesis;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, proof_content_id, sign_uptime_witness};
use tiernet_node::telemetry::{BlockView, ChainView};

use crate::common::{NodeProcess, Started, eventually, genesis, http_get, http_post, metric_sum, peers};

pub(crate) const PROGRESS: Duration = Duration::from_secs(60);

pub(crate) struct Member {
    data: PathBuf,
    args: Vec<String>,
    pub(crate) node: Started,
}

impl Member {
    pub(crate) fn start(net: &Path, name: &str, identity: Option<&Path>, bootstrap: &[&str]) -> Member {
        Self::start_with(net, name, identity, bootstrap, &[])
    }

    /// As [`Member::start`], with more node flags.
    pub(crate) fn start_with(
        net: &Path,
        name: &str,
        identity: Option<&Path>,
        bootstrap: &[&str],
        extra: &[&str],
    ) -> Member {
        let data = net.join(name);
        let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        args.extend::<Vec<String>>(vec![
            "--genesis".into(),
            net.join("genesis.json").display().to_string(),
            "--testing-api".into(),
            "--listen".into(),
            "/ip4/127.0.0.1/tcp/0".into(),
        ]);
        if let Some(identity) = identity {
            args.extend(["--identity".into(), identity.display().to_string()]);
        }
        for peer in bootstrap {
            args.extend(["--bootstrap".into(), (*peer).to_owned()]);
        }
        args.push("run".into());
        let node = Self::spawn(&data, &args, identity.is_some());
        Member { data, args, node }
    }

    fn spawn(data: &Path, args: &[String], has_zsi: bool) -> Started {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Started::from(NodeProcess::start(data, &args), has_zsi)
    }

    /// SIGKILL: a crash, nothing flushed on the way out.
    pub(crate) fn kill(&mut self) {
        self.node.process.signal("KILL");
        self.node.process.wait_exit();
    }

    /// Starts the same node again (same data directory, identity and peers).
    pub(crate) fn restart(&mut self) {
        let has_zsi = self.node.zsi_id.is_some();
        self.node = Self::spawn(&self.data, &self.args, has_zsi);
    }

    /// As [`Member::restart_via`], with `extra` flags before the command.
    pub(crate) fn restart_with(&mut self, bootstrap: &str, extra: &[&str]) {
        let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        args.append(&mut self.args);
        self.args = args;
        self.restart_via(bootstrap);
    }

    /// Starts the same node again with `bootstrap` as its only bootstrap
    /// peer (the original one may have restarted on another port).
    pub(crate) fn restart_via(&mut self, bootstrap: &str) {
        let mut args = Vec::new();
        let mut old = self.args.iter();
        while let Some(arg) = old.next() {
            if arg == "--bootstrap" {
                old.next();
            } else if arg == "run" {
                args.extend(["--bootstrap".to_owned(), bootstrap.to_owned(), arg.clone()]);
            } else {
                args.push(arg.clone());
            }
        }
        self.args = args;
        self.restart();
    }

    pub(crate) fn chain(&self) -> ChainView {
        let (status, body) = http_get(&self.node.telemetry, "/chain");
        assert_eq!(status, 200, "/chain: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad /chain JSON ({e}): {body}"))
    }

    pub(crate) fn height(&self) -> u64 {
        self.chain().height
    }

    pub(crate) fn block(&self, height: u64) -> BlockView {
        let (status, body) = http_get(&self.node.telemetry, &format!("/chain/block/{height}"));
        assert_eq!(status, 200, "/chain/block/{height}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

pub(crate) fn key(net: &Path, i: usize) -> PathBuf {
    net.join(format!("node-{i}")).join("zsi_key")
}

/// Four validators (node-0…3) and, with `members`, more identities.
pub(crate) fn network(net: &Path, members: &[&str]) -> Vec<Member> {
    network_with(net, members, &[])
}

/// As [`network`], every validator started with `extra` flags.
pub(crate) fn network_with(net: &Path, members: &[&str], extra: &[&str]) -> Vec<Member> {
    let members = members.join(",");
    let mut args = vec!["--validators", "4"];
    if !members.is_empty() {
        args.extend(["--members", &members]);
    }
    genesis(net, &args);
    let first = Member::start_with(net, "v0", Some(&key(net, 0)), &[], extra);
    let boot = first.node.tcp.clone();
    let mut all = vec![first];
    for i in 1..4 {
        all.push(Member::start_with(
            net,
            &format!("v{i}"),
            Some(&key(net, i)),
            &[&boot],
            extra,
        ));
    }
    all
}

pub(crate) fn wait_height(members: &[&Member], at_least: u64, what: &str) {
    eventually(what, PROGRESS, || members.iter().all(|m| m.height() >= at_least));
}

/// Every height up to `upto` is the same block on every member, and the
/// whole chain validates from genesis with `tiernet-core`.
pub(crate) fn check_chain(net: &Path, members: &[&Member], upto: u64) {
    let genesis = Genesis::from_json(&std::fs::read_to_string(net.join("genesis.json")).unwrap()).unwrap();
    let anchor = GenesisAnchor::from_genesis(&genesis);
    let mut set = ValidatorSet::new(genesis.validators.clone()).unwrap();
    let mut previous: Option<proto::Header> = None;
    for height in 1..=upto {
        let views: Vec<BlockView> = members.iter().map(|m| m.block(height)).collect();
        for view in &views[1..] {
            assert_eq!(
                view.hash, views[0].hash,
                "two nodes finalized different blocks at {height}"
            );
        }
        let fb = proto::FinalizedBlock::decode(hex::decode(&views[0].finalized).unwrap().as_slice()).unwrap();
        let parent = match &previous {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(&anchor),
        };
        let summary = validate_finalized(parent, &fb, &set, &genesis.network, u64::MAX / 2, 0)
            .unwrap_or_else(|e| panic!("block {height} does not validate: {e}"));
        assert!(summary.signed_power >= set.quorum(), "height {height}");
        let block = fb.block.unwrap();
        if let Some(next) = block.next_validators {
            set = ValidatorSet::new(next).unwrap();
        }
        previous = block.header;
    }
}

#[test]
fn four_validators_finalize_survive_one_crash_and_stall_at_two() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let mut v = network(net, &[]);
    wait_height(&[&v[0], &v[1], &v[2], &v[3]], 3, "all four finalize height 3");

    // One validator crashes: the other three (75% of the power) go on.
    v[3].kill();
    let h = v[..3].iter().map(Member::height).max().unwrap();
    wait_height(
        &[&v[0], &v[1], &v[2]],
        h + 3,
        "three validators finalize three more heights",
    );

    // A second one crashes: 50% of the power cannot finalize. Positive
    // evidence first: the two survivors keep exchanging votes (rounds time
    // out, votes are rebroadcast), and still no height is decided.
    v[2].kill();
    let votes_at = |m: &Member| {
        metric_sum(
            &m.node.telemetry,
            &[
                "tiernet_gossip_messages_total",
                "topic=\"votes\"",
                "decision=\"accept\"",
            ],
        )
    };
    let (stalled, votes_before) = loop {
        let heights = [v[0].height(), v[1].height()];
        let before = [votes_at(&v[0]), votes_at(&v[1])];
        std::thread::sleep(Duration::from_secs(2));
        if [v[0].height(), v[1].height()] == heights {
            break (heights, before);
        }
    };
    eventually("the two survivors exchange votes while stalled", PROGRESS, || {
        votes_at(&v[0]) >= votes_before[0] + 6.0 && votes_at(&v[1]) >= votes_before[1] + 6.0
    });
    assert_eq!(
        [v[0].height(), v[1].height()],
        stalled,
        "finalized with half of the power"
    );

    // One returns: three quarters of the power again, and finality resumes
    // (the returning node learns the stalled round's votes from their
    // rebroadcasts). The one down longest catches up through sync.
    v[2].restart();
    let resumed = stalled[0].max(stalled[1]) + 2;
    wait_height(
        &[&v[0], &v[1], &v[2]],
        resumed,
        "finality resumes with three validators",
    );
    v[3].restart();
    wait_height(&[&v[3]], resumed, "the validator down longest catches up");

    // Every height is the same block on every node, and the whole chain
    // validates from genesis with tiernet-core.
    check_chain(net, &[&v[0], &v[1], &v[2], &v[3]], resumed);
}

/// An uptime proof for `subject` witnessed by two validators.
fn uptime_envelope(subject: &ZsiKeypair, witnesses: [&ZsiKeypair; 2], to_height: u64, valid: bool) -> Vec<u8> {
    let claim = proto::UptimeClaim {
        network_id: "devnet".into(),
        subject: subject.zsi_id().as_bytes().to_vec(),
        from_height: 1,
        to_height,
        heartbeats: 1,
    };
    let mut proof = proto::UptimeProof {
        witnesses: witnesses
            .iter()
            .map(|w| sign_uptime_witness(&claim, w.zsi_id().as_bytes(), 1, w.identity_key()))
            .collect(),
    };
    if !valid {
        proof.witnesses[1].signature[0] ^= 1;
    }
    let mut envelope = proto::ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: claim.encode_to_vec(),
        proof: proof.encode_to_vec(),
        submitter: subject.zsi_id().as_bytes().to_vec(),
        height: to_height,
        signature: vec![],
    };
    envelope.sign_with(subject.identity_key());
    envelope.encode_to_vec()
}

fn submit(m: &Member, envelope: &[u8]) {
    let (status, body) = http_post(
        &m.node.telemetry,
        &format!("/testing/submit-proof?envelope={}", hex::encode(envelope)),
    );
    assert_eq!(status, 200, "submit: {body}");
}

fn content_id(envelope: &[u8]) -> String {
    proof_content_id(&proto::ProofEnvelope::decode(envelope).unwrap()).to_string()
}

fn load(path: &Path) -> ZsiKeypair {
    ZsiKeypair::load(path).unwrap().unwrap()
}

#[test]
fn proofs_wait_in_the_mempool_across_restarts_and_bad_ones_cost_score() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let mut v = network(net, &["TL1"]);
    let boot = v[0].node.tcp.clone();
    // node-4 is a registered TL1 member; "stranger" has a ZSI nobody registered (TL0).
    let mut tl1 = Member::start(net, "tl1", Some(&key(net, 4)), &[&boot]);
    let stranger_key = net.join("stranger_key");
    let stranger_zsi = ZsiKeypair::from_seed(b"an unregistered stranger").unwrap();
    stranger_zsi.save_new(&stranger_key).unwrap();
    let stranger = Member::start(net, "stranger", Some(&stranger_key), &[&boot]);
    wait_height(
        &[&v[0], &v[1], &v[2], &v[3], &tl1],
        3,
        "the chain runs and the TL1 node follows it",
    );

    // Stall the chain so the proof has to wait in the mempools.
    v[3].kill();
    v[2].kill();
    std::thread::sleep(Duration::from_secs(3));
    let height = v[0].height().min(v[1].height());
    let witnesses = [&load(&key(net, 0)), &load(&key(net, 1))];
    let subject = load(&key(net, 4));
    let good = uptime_envelope(&subject, witnesses, height, true);
    let good_id = content_id(&good);
    submit(&tl1, &good);
    for m in [&v[0], &v[1], &tl1] {
        eventually("the valid proof reaches the mempool", PROGRESS, || {
            m.chain().mempool.contains(&good_id)
        });
    }
    // A TL0 submitter and an invalid proof are dropped; a duplicate is one entry.
    let from_stranger = uptime_envelope(&stranger_zsi, witnesses, height, true);
    submit(&stranger, &from_stranger);
    let invalid = uptime_envelope(&subject, witnesses, height.saturating_sub(1).max(1), false);
    submit(&tl1, &invalid);
    // Resubmitted: GossipSub's seen cache refuses it at the source, and the
    // mempool keys by content id, so it stays one entry.
    let (_, body) = http_post(
        &tl1.node.telemetry,
        &format!("/testing/submit-proof?envelope={}", hex::encode(&good)),
    );
    assert!(body.contains("local=Duplicate"), "{body}");
    // Positive evidence before the negative check: V0, the only peer of
    // both senders, decided on both bad envelopes.
    let proofs_decided = |decision: &str| {
        metric_sum(
            &v[0].node.telemetry,
            &[
                "tiernet_gossip_messages_total",
                "topic=\"proofs\"",
                &format!("decision=\"{decision}\""),
            ],
        )
    };
    eventually("V0 refused both bad envelopes", PROGRESS, || {
        proofs_decided("invalid_proof") >= 1.0 && proofs_decided("unknown_author") >= 1.0
    });
    for m in [&v[0], &v[1]] {
        let pool = m.chain().mempool;
        assert_eq!(pool, vec![good_id.clone()], "only the valid proof is pending");
    }
    let tl1_score = |m: &Member| {
        peers(&m.node.telemetry)
            .into_iter()
            .find(|p| p.peer_id == tl1.node.peer_id)
            .map_or(0.0, |p| p.score)
    };
    assert!(tl1_score(&v[0]) < 0.0, "the invalid proof cost its sender score");

    // Restarts (a crash of the submitter, a clean stop of a validator) keep it pending.
    // v1 runs throughout: the restarted nodes find the network through it.
    let live = v[1].node.tcp.clone();
    tl1.kill();
    tl1.restart_via(&live);
    v[0].node.process.terminate();
    v[0].node.process.wait_exit();
    v[0].restart_via(&live);
    for m in [&v[0], &tl1] {
        assert!(m.chain().mempool.contains(&good_id), "the proof survived the restart");
    }

    // Quorum returns: a block includes the proof, and it leaves every mempool.
    v[2].restart_via(&live);
    for m in [&v[0], &v[1], &v[2], &tl1] {
        eventually("the proof is included and leaves the mempool", PROGRESS, || {
            m.chain().mempool.is_empty()
        });
    }
    let head = v[0].height();
    let including = (height + 1..=head)
        .map(|h| {
            let view = v[0].block(h);
            let fb = proto::FinalizedBlock::decode(hex::decode(&view.finalized).unwrap().as_slice()).unwrap();
            fb.block.unwrap()
        })
        .find(|b| b.proofs.iter().any(|p| proof_content_id(p).to_string() == good_id))
        .unwrap_or_else(|| panic!("no block up to {head} includes the proof"));
    // The block credits the subject's uptime (whole minutes of a window of
    // a few one-second blocks: zero, but the event is there).
    let subject_id = subject.zsi_id().as_bytes().to_vec();
    assert!(
        including
            .reputation_events
            .iter()
            .any(|e| e.zsi_id == subject_id && matches!(e.kind, Some(proto::reputation_event::Kind::UptimeMinutes(_)))),
        "no uptime credit for the subject: {:?}",
        including.reputation_events
    );
    check_chain(net, &[&v[0], &v[1], &v[2]], head);

    drop(stranger);
}

/// The counter `tiernet_gossip_messages_total{labels}` on `m` (0 if absent).
fn gossip_count(m: &Member, labels: &str) -> u64 {
    let (status, metrics) = http_get(&m.node.telemetry, "/metrics");
    assert_eq!(status, 200);
    let needle = format!("tiernet_gossip_messages_total{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_double_signing_validator_is_slashed_to_tl0_everywhere_and_its_votes_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let v = network(net, &[]);
    wait_height(&[&v[0], &v[1], &v[2], &v[3]], 3, "all four finalize height 3");
    let culprit = v[3].node.zsi_id.clone().expect("validators have a ZSI");

    // v3 signs two different prevotes for the height being decided.
    let (status, body) = http_post(&v[3].node.telemetry, "/testing/equivocate");
    assert_eq!(status, 200, "{body}");
    for m in &v {
        eventually("every node slashes the double-signer", PROGRESS, || {
            let chain = m.chain();
            let record = chain.identities.iter().find(|i| i.zsi_id == culprit).cloned();
            record.is_some_and(|r| r.slashed && r.tier == "TL0")
                && chain.validators.iter().all(|val| val.zsi_id != culprit)
        });
    }
    // Its peers see it as TL0 (v0, the bootstrap node, is one; any other
    // node that knows it too), and the other three keep finalizing.
    eventually("v0 re-tiers the slashed validator", PROGRESS, || {
        peers(&v[0].node.telemetry)
            .iter()
            .any(|p| p.peer_id == v[3].node.peer_id && p.tier == "TL0")
    });
    for m in &v[1..3] {
        let known = peers(&m.node.telemetry);
        if let Some(record) = known.iter().find(|p| p.peer_id == v[3].node.peer_id && p.connected) {
            assert_eq!(record.tier, "TL0", "a connected peer still sees the old tier");
        }
    }
    let h = v[0].height();
    wait_height(&[&v[0], &v[1], &v[2]], h + 2, "the other three keep finalizing");

    // Its votes are no longer accepted: it is outside the set, and TL0.
    let refused = "topic=\"votes\",tier=\"TL0\",decision=\"unauthorised\"";
    let before = gossip_count(&v[0], refused);
    let (status, body) = http_post(&v[3].node.telemetry, "/testing/equivocate");
    assert_eq!(status, 200, "{body}");
    eventually("the slashed validator's votes are refused", PROGRESS, || {
        gossip_count(&v[0], refused) > before
    });
    let head = v[0].height().min(v[1].height()).min(v[2].height());
    check_chain(net, &[&v[0], &v[1], &v[2]], head);
}
