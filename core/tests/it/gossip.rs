//! Gossip validation: every topic × payload kind, accepted from an allowed
//! author and rejected (with the specific reason) for each way it can go
//! wrong.

use ed25519_dalek::SigningKey;
use tiernet_core::admission::{AdmissionPolicy, DenyReason, RateClass};
use tiernet_core::chain::{self, ValidatorSet, precommit_for, prevote_for, vote_for};
use tiernet_core::genesis::{
    ConsensusParams, Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile,
};
use tiernet_core::gossip::{
    Author, GossipContext, IgnoreReason, MessageSource, RejectReason, ReplayGuard, Verdict, Windows, validate,
};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::tier::Tier;
use tiernet_core::wire::proto::*;
use tiernet_core::wire::sign::{SignedMessage, header_hash, sign_uptime_witness, validators_hash};
use tiernet_core::wire::{NetworkId, Topic, encode};

const NOW: u64 = 1_764_000_000_000;
const SKEW: u64 = 30_000;
const SOURCE: &[u8] = b"observer-peer-id-bytes";
/// The receiver's last decided height: 9 is being decided.
const HEAD: u64 = 8;

/// Who is who in the fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// Validators, TL3, power 10 each.
    V1,
    V2,
    V3,
    V4,
    /// A validator (power 1) whose on-chain record is only TL1.
    VLow,
    /// Registered TL3, not a validator.
    T3,
    /// Registered TL2.
    T2,
    /// Registered TL1.
    T1,
    /// Registered but slashed: TL0.
    Slashed,
    /// Not registered at all.
    Stranger,
}

use Who::*;

const ALL: [Who; 10] = [V1, V2, V3, V4, VLow, T3, T2, T1, Slashed, Stranger];

impl Who {
    fn name(self) -> String {
        format!("{self:?}")
    }

    fn zsi(self) -> ZsiKeypair {
        ZsiKeypair::from_seed(self.name().as_bytes()).unwrap()
    }

    fn id(self) -> ZsiId {
        self.zsi().zsi_id()
    }

    fn identity_key(self) -> SigningKey {
        self.zsi().identity_key().clone()
    }

    /// A consensus key distinct from the identity key.
    fn consensus_key(self) -> SigningKey {
        SigningKey::from_bytes(&blake3::derive_key(
            "tiernet test consensus key",
            self.name().as_bytes(),
        ))
    }

    fn reputation(self) -> ReputationFile {
        let day = 24 * 60;
        match self {
            V1 | V2 | V3 | V4 | T3 => ReputationFile {
                uptime_minutes: day,
                score: 150,
                ..Default::default()
            },
            T2 => ReputationFile {
                uptime_minutes: day,
                score: 0,
                ..Default::default()
            },
            VLow | T1 | Stranger => ReputationFile::default(),
            Slashed => ReputationFile {
                uptime_minutes: day,
                score: 5_000,
                slashed: true,
                ..Default::default()
            },
        }
    }

    fn power(self) -> Option<u64> {
        match self {
            V1 | V2 | V3 | V4 => Some(10),
            VLow => Some(1),
            _ => None,
        }
    }
}

struct Fixture {
    genesis: Genesis,
    set: ValidatorSet,
    policy: AdmissionPolicy,
    network: NetworkId,
}

impl Fixture {
    fn new() -> Self {
        let identities = ALL
            .iter()
            .filter(|w| **w != Stranger)
            .map(|&w| {
                let mut identity = GenesisIdentity::new(&w.name().to_lowercase(), &w.zsi().public(), w.reputation());
                identity.validator = w.power().map(|power| GenesisValidator {
                    consensus_key: hex::encode(w.consensus_key().verifying_key().as_bytes()),
                    power,
                });
                identity
            })
            .collect();
        let file = GenesisFile {
            stark_programs: Vec::new(),
            network_id: "devnet".into(),
            genesis_time_ms: NOW - 1_000_000,
            tiers: TiersFile::default(),
            consensus: ConsensusParams::default(),
            uptime: Default::default(),
            identities,
        };
        let genesis = Genesis::from_file(file).unwrap();
        let set = ValidatorSet::from_proto(&genesis.validators).unwrap();
        assert_eq!(set.total_power(), 41);
        assert_eq!(set.quorum(), 28);
        Fixture {
            network: genesis.network.clone(),
            genesis,
            set,
            policy: AdmissionPolicy::default(),
        }
    }

    fn ctx(&self) -> GossipContext<'_, tiernet_core::identity::registry::MemoryRegistry> {
        GossipContext {
            network: &self.network,
            registry: &self.genesis.registry,
            thresholds: &self.genesis.thresholds,
            validators: &self.set,
            policy: &self.policy,
            head_height: HEAD,
            head_hash: None,
            windows: Windows::default(),
            now_ms: NOW,
            max_clock_skew_ms: SKEW,
        }
    }

    fn check(&self, topic: Topic, data: &[u8]) -> Verdict {
        self.check_with(topic, data, SOURCE, &mut ReplayGuard::default())
    }

    fn check_with(&self, topic: Topic, data: &[u8], source: &[u8], replay: &mut ReplayGuard) -> Verdict {
        let source = MessageSource {
            publisher: source,
            relay_published: false,
        };
        validate(topic, data, &source, &self.ctx(), replay)
    }

    /// As handed over by the peer that published it.
    fn check_from_publisher(&self, topic: Topic, data: &[u8]) -> Verdict {
        let source = MessageSource {
            publisher: SOURCE,
            relay_published: true,
        };
        validate(topic, data, &source, &self.ctx(), &mut ReplayGuard::default())
    }

    fn header(&self, height: u64, round: u32) -> Header {
        Header {
            network_id: "devnet".into(),
            height,
            round,
            time_ms: NOW,
            prev_hash: vec![1; 32],
            proposer: V1.id().as_bytes().to_vec(),
            validators_hash: self.set.hash().as_bytes().to_vec(),
            next_validators_hash: self.set.hash().as_bytes().to_vec(),
            state_root: vec![2; 32],
            proofs_root: vec![3; 32],
            chain_commitment: vec![4; 32],
        }
    }
}

#[track_caller]
fn accepted(verdict: Verdict) -> tiernet_core::gossip::Accepted {
    match verdict {
        Verdict::Accept(accepted) => *accepted,
        other => panic!("expected accept, got {other:?}"),
    }
}

#[track_caller]
fn rejected(verdict: Verdict, label: &str) -> RejectReason {
    match verdict {
        Verdict::Reject(reason) => {
            assert_eq!(reason.label(), label, "{reason}");
            // Every reason reads as a sentence.
            assert!(!reason.to_string().is_empty());
            reason
        }
        other => panic!("expected reject {label}, got {other:?}"),
    }
}

#[track_caller]
fn ignored(verdict: Verdict, label: &str) -> IgnoreReason {
    match verdict {
        Verdict::Ignore(reason) => {
            assert_eq!(reason.label(), label, "{reason}");
            reason
        }
        other => panic!("expected ignore {label}, got {other:?}"),
    }
}

/// Relayed by someone else: an unauthorised author is ignored (the relay's
/// state may differ from ours), never charged to the relay.
#[track_caller]
fn denied(verdict: Verdict, who: Who, reason: DenyReason) {
    let got = ignored(verdict, "unauthorised_relayed");
    assert_eq!(
        got,
        IgnoreReason::Unauthorised {
            author: Some(who.id()),
            reason
        }
    );
}

fn low(required: Tier, actual: Tier) -> DenyReason {
    DenyReason::TierTooLow { required, actual }
}

/// A certificate that fails only against our validator set (another set
/// may make it valid): ignored, not charged to the relay.
#[track_caller]
fn not_our_set(verdict: Verdict, label: &str) {
    match ignored(verdict, "not_our_set") {
        IgnoreReason::NotOurSet(e) => assert_eq!(e.label(), label, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[track_caller]
fn bad_cert(verdict: Verdict, label: &str) {
    match rejected(verdict, "bad_certificate") {
        RejectReason::BadCertificate(e) => assert_eq!(e.label(), label, "{e}"),
        other => panic!("{other:?}"),
    }
}

// ───────────────────────────── builders ─────────────────────────────

fn blocks(kind: blocks_message::Kind) -> Vec<u8> {
    encode(&BlocksMessage { kind: Some(kind) })
}

fn votes(kind: votes_message::Kind) -> Vec<u8> {
    encode(&VotesMessage {
        kind: Some(kind),
        ..Default::default()
    })
}

fn meta(kind: meta_message::Kind) -> Vec<u8> {
    encode(&MetaMessage { kind: Some(kind) })
}

fn proposal(f: &Fixture, proposer: Who, network: &str) -> Proposal {
    let mut header = f.header(HEAD + 1, 0);
    header.network_id = network.into();
    let mut p = Proposal {
        network_id: network.into(),
        height: HEAD + 1,
        round: 0,
        pol_round_plus_one: 0,
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
        proposer: proposer.id().as_bytes().to_vec(),
        signature: vec![],
    };
    p.sign_with(&proposer.consensus_key());
    p
}

fn commit_for(f: &Fixture, header: &Header, signers: &[Who]) -> CommitCertificate {
    commit_in_round(f, header, header.round, signers)
}

/// A commit of `header` whose precommits are from `round`.
fn commit_in_round(f: &Fixture, header: &Header, round: u32, signers: &[Who]) -> CommitCertificate {
    let hash = header_hash(header);
    CommitCertificate {
        height: header.height,
        round,
        block_hash: hash.as_bytes().to_vec(),
        signatures: signers
            .iter()
            .map(|w| {
                let mut vote = precommit_for(&f.network, header.height, round, Some(&hash), &w.id());
                vote.sign_with(&w.consensus_key());
                CommitSignature {
                    validator: w.id().as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect(),
    }
}

fn finalized(f: &Fixture, signers: &[Who]) -> FinalizedBlock {
    let header = f.header(8, 1);
    FinalizedBlock {
        commit: Some(commit_for(f, &header, signers)),
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
    }
}

fn vote(f: &Fixture, voter: Who, network: &str, key: &SigningKey) -> Vote {
    let mut v = precommit_for(&f.network, 9, 0, Some(&Hash32([9; 32])), &voter.id());
    v.network_id = network.into();
    v.sign_with(key);
    v
}

fn vote_signature(f: &Fixture, who: Who, vote_type: VoteType, value: Option<&Hash32>, round: u32) -> VoteSignature {
    let mut v = vote_for(vote_type, &f.network, 9, round, value, &who.id());
    v.sign_with(&who.consensus_key());
    VoteSignature {
        validator: v.validator,
        vote_type: v.vote_type,
        block_hash: v.block_hash,
        signature: v.signature,
    }
}

const BLOCK: Hash32 = Hash32([0xbb; 32]);

fn polka(f: &Fixture, signers: &[Who]) -> PolkaCertificate {
    PolkaCertificate {
        height: 9,
        round: 1,
        block_hash: BLOCK.0.to_vec(),
        signatures: signers
            .iter()
            .map(|&w| vote_signature(f, w, VoteType::Prevote, Some(&BLOCK), 1))
            .collect(),
    }
}

fn round_cert(kind: RoundCertificateKind, signatures: Vec<VoteSignature>) -> RoundCertificate {
    RoundCertificate {
        height: 9,
        round: 2,
        kind: kind as i32,
        signatures,
    }
}

fn evidence(f: &Fixture, who: Who, a: Option<&Hash32>, b: Option<&Hash32>) -> Evidence {
    let sign = |value| {
        let mut v = prevote_for(&f.network, 9, 3, value, &who.id());
        v.sign_with(&who.consensus_key());
        v
    };
    Evidence {
        first: Some(sign(a)),
        second: Some(sign(b)),
    }
}

fn proof(submitter: Who) -> Vec<u8> {
    let mut envelope = ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: b"statement".to_vec(),
        proof: b"proof".to_vec(),
        submitter: submitter.id().as_bytes().to_vec(),
        height: 10,
        signature: vec![],
    };
    envelope.sign_with(&submitter.identity_key());
    encode(&ProofsMessage {
        envelope: Some(envelope),
    })
}

fn announcement(announcer: Who, network: &str) -> SnapshotAnnouncement {
    let mut a = SnapshotAnnouncement {
        manifest: Some(SnapshotManifest {
            network_id: network.into(),
            height: HEAD,
            state_root: vec![5; 32],
            chunk_count: 2,
            total_entries: 10,
            chunk_hashes: vec![vec![6; 32], vec![7; 32]],
        }),
        announcer: announcer.id().as_bytes().to_vec(),
        signature: vec![],
    };
    a.sign_with(&announcer.identity_key());
    a
}

fn snapshots(a: SnapshotAnnouncement) -> Vec<u8> {
    encode(&SnapshotsMessage { announcement: Some(a) })
}

fn heartbeat(sender: Option<Who>, sequence: u64, time_ms: u64) -> Heartbeat {
    let mut hb = Heartbeat {
        network_id: "devnet".into(),
        zsi_id: sender.map(|w| w.id().as_bytes().to_vec()).unwrap_or_default(),
        height: 42,
        head_hash: vec![8; 32],
        time_ms,
        sequence,
        agent: "tiernet-node/0.1.0".into(),
        signature: vec![],
        ..Default::default()
    };
    if let Some(w) = sender {
        hb.sign_with(&w.identity_key());
    }
    hb
}

fn hb_bytes(hb: Heartbeat) -> Vec<u8> {
    meta(meta_message::Kind::Heartbeat(hb))
}

fn claim(network: &str) -> UptimeClaim {
    UptimeClaim {
        network_id: network.into(),
        subject: T2.id().as_bytes().to_vec(),
        from_height: 1,
        to_height: HEAD,
        heartbeats: 11,
    }
}

fn attestation(witness: Who, claim: UptimeClaim) -> UptimeAttestation {
    let w = sign_uptime_witness(&claim, witness.id().as_bytes(), 10, &witness.identity_key());
    UptimeAttestation {
        claim: Some(claim),
        witness: Some(w),
    }
}

// ───────────────────────────── blocks ─────────────────────────────

#[test]
fn blocks_proposal() {
    let f = Fixture::new();
    let ok = blocks(blocks_message::Kind::Proposal(proposal(&f, V1, "devnet")));
    let a = accepted(f.check(Topic::Blocks, &ok));
    assert_eq!(a.author, Author::Zsi(V1.id()));
    assert_eq!((a.tier, a.rate_class), (Tier::TL3, RateClass::Participant));
    assert_eq!(a.payload.kind(), "proposal");
    assert_eq!(a.topic, Topic::Blocks);

    // A validator whose record is only TL1.
    let data = blocks(blocks_message::Kind::Proposal(proposal(&f, VLow, "devnet")));
    denied(f.check(Topic::Blocks, &data), VLow, low(Tier::TL3, Tier::TL1));
    // TL3 but not in the validator set.
    let data = blocks(blocks_message::Kind::Proposal(proposal(&f, T3, "devnet")));
    denied(f.check(Topic::Blocks, &data), T3, DenyReason::NotInValidatorSet);
    // Registered TL1 non-validator: its tier is the first problem.
    let data = blocks(blocks_message::Kind::Proposal(proposal(&f, T1, "devnet")));
    denied(f.check(Topic::Blocks, &data), T1, low(Tier::TL3, Tier::TL1));
    // Unknown author.
    let data = blocks(blocks_message::Kind::Proposal(proposal(&f, Stranger, "devnet")));
    assert_eq!(
        ignored(f.check(Topic::Blocks, &data), "unknown_author"),
        IgnoreReason::UnknownAuthor(Stranger.id())
    );
    // Forged: a flipped signature bit, a changed field, the identity key instead of the consensus key.
    let mut p = proposal(&f, V1, "devnet");
    p.signature[0] ^= 1;
    let r = rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Proposal(p))),
        "bad_signature",
    );
    assert_eq!(
        r,
        RejectReason::BadSignature {
            what: "proposal",
            author: V1.id()
        }
    );
    let mut p = proposal(&f, V1, "devnet");
    p.round = 1;
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Proposal(p))),
        "bad_signature",
    );
    let mut p = proposal(&f, V1, "devnet");
    p.sign_with(&V1.identity_key());
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Proposal(p))),
        "bad_signature",
    );
    // Signed by another validator's key but naming V1.
    let mut p = proposal(&f, V1, "devnet");
    p.sign_with(&V2.consensus_key());
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Proposal(p))),
        "bad_signature",
    );
    // Wrong network, in the proposal and in the header.
    let data = blocks(blocks_message::Kind::Proposal(proposal(&f, V1, "testnet")));
    assert_eq!(
        rejected(f.check(Topic::Blocks, &data), "wrong_network"),
        RejectReason::WrongNetwork {
            expected: "devnet".into(),
            found: "testnet".into()
        }
    );
    let mut p = proposal(&f, V1, "devnet");
    p.block.as_mut().unwrap().header.as_mut().unwrap().network_id = "testnet".into();
    p.sign_with(&V1.consensus_key());
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Proposal(p))),
        "wrong_network",
    );
}

#[test]
fn blocks_finalized() {
    let f = Fixture::new();
    let data = blocks(blocks_message::Kind::Finalized(finalized(&f, &[V1, V2, V3])));
    let a = accepted(f.check(Topic::Blocks, &data));
    assert_eq!(a.author, Author::Certified { signers: 3 });
    assert_eq!(a.payload.kind(), "finalized");
    assert_eq!(a.rate_class, RateClass::Participant);
    // All five (including the TL1 validator: certification is by power, not tier).
    let data = blocks(blocks_message::Kind::Finalized(finalized(&f, &[V1, V2, V3, V4, VLow])));
    assert_eq!(
        accepted(f.check(Topic::Blocks, &data)).author,
        Author::Certified { signers: 5 }
    );

    // Insufficient power: 10+10+1 = 21 < 28.
    let data = blocks(blocks_message::Kind::Finalized(finalized(&f, &[V1, V2, VLow])));
    match rejected(f.check(Topic::Blocks, &data), "bad_certificate") {
        RejectReason::BadCertificate(e) => assert_eq!(
            e,
            chain::CertificateError::InsufficientPower {
                signed: 21,
                required: 28,
                total: 41
            }
        ),
        other => panic!("{other:?}"),
    }
    // Forged signature.
    let mut fb = finalized(&f, &[V1, V2, V3]);
    fb.commit.as_mut().unwrap().signatures[1].signature[5] ^= 1;
    let r = rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "bad_certificate",
    );
    assert_eq!(
        r,
        RejectReason::BadCertificate(chain::CertificateError::BadSignature { validator: V2.id() })
    );
    // A non-validator's signature in the commit.
    let mut fb = finalized(&f, &[V1, V2, V3]);
    let header = fb.block.as_ref().unwrap().header.clone().unwrap();
    fb.commit
        .as_mut()
        .unwrap()
        .signatures
        .push(commit_for(&f, &header, &[T3]).signatures.remove(0));
    bad_cert(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "unknown_validator",
    );
    // A duplicate signer.
    let data = blocks(blocks_message::Kind::Finalized(finalized(&f, &[V1, V2, V1])));
    bad_cert(f.check(Topic::Blocks, &data), "duplicate_signer");
    // The header was changed after signing: the commit is for another block.
    let mut fb = finalized(&f, &[V1, V2, V3]);
    fb.block.as_mut().unwrap().header.as_mut().unwrap().state_root = vec![9; 32];
    bad_cert(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "wrong_block",
    );
    // Commit height / round that differ from the header.
    let mut fb = finalized(&f, &[V1, V2, V3]);
    fb.commit.as_mut().unwrap().height += 1;
    bad_cert(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "wrong_height",
    );
    // A commit from a round before the header's cannot be honest.
    let header = f.header(8, 2);
    let commit = commit_in_round(&f, &header, 1, &[V1, V2, V3]);
    let fb = FinalizedBlock {
        commit: Some(commit),
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
    };
    bad_cert(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "wrong_round",
    );
    // Wrong network (a header of another network, consistently signed).
    let mut header = f.header(8, 1);
    header.network_id = "testnet".into();
    let fb = FinalizedBlock {
        commit: Some(commit_for(&f, &header, &[V1, V2, V3])),
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
    };
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "wrong_network",
    );
    // next_validators that the header does not name.
    let mut fb = finalized(&f, &[V1, V2, V3]);
    let mut other_set = f.set.as_proto().clone();
    other_set.validators.pop();
    assert_ne!(validators_hash(&other_set), f.set.hash());
    fb.block.as_mut().unwrap().next_validators = Some(other_set);
    rejected(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "bad_block",
    );
    // Signed by a set we do not hold: not the sender's fault.
    let mut header = f.header(8, 1);
    header.validators_hash = vec![0xee; 32];
    let fb = FinalizedBlock {
        commit: Some(commit_for(&f, &header, &[V1, V2, V3])),
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
    };
    ignored(
        f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))),
        "unknown_validator_set",
    );
}

/// Regression: a block proposed in round 1 and decided in round 2 (a
/// re-proposed valid value keeps its header) was rejected on `blocks`, and
/// the honest node that relayed its announcement lost score for it.
#[test]
fn a_block_decided_in_a_later_round_than_proposed_is_accepted() {
    let f = Fixture::new();
    let header = f.header(8, 1);
    let commit = commit_in_round(&f, &header, 2, &[V1, V2, V3]);
    let fb = FinalizedBlock {
        commit: Some(commit),
        block: Some(Block {
            header: Some(header),
            ..Default::default()
        }),
    };
    let a = accepted(f.check(Topic::Blocks, &blocks(blocks_message::Kind::Finalized(fb))));
    assert_eq!(a.author, Author::Certified { signers: 3 });
}

/// Every node announces the block it decided; once we hold that block,
/// another announcement of it is dropped before its commit's signatures
/// are checked (with forged signatures it is still only "known"), while an
/// announcement of another block at our height is checked in full.
#[test]
fn an_announcement_of_our_head_is_dropped_before_its_signatures() {
    let f = Fixture::new();
    let mut fb = finalized(&f, &[V1, V2, V3]);
    let header = fb.block.as_ref().unwrap().header.clone().unwrap();
    fb.commit.as_mut().unwrap().signatures[1].signature[5] ^= 1;
    let data = blocks(blocks_message::Kind::Finalized(fb));
    let ctx = GossipContext {
        head_height: header.height,
        head_hash: Some(header_hash(&header)),
        ..f.ctx()
    };
    let verdict = validate(
        Topic::Blocks,
        &data,
        &MessageSource {
            publisher: SOURCE,
            relay_published: false,
        },
        &ctx,
        &mut ReplayGuard::default(),
    );
    ignored(verdict, "known");
    // Our head is another block: the forged commit is checked and refused.
    let ctx = GossipContext {
        head_hash: Some(Hash32([0x77; 32])),
        ..ctx
    };
    let verdict = validate(
        Topic::Blocks,
        &data,
        &MessageSource {
            publisher: SOURCE,
            relay_published: false,
        },
        &ctx,
        &mut ReplayGuard::default(),
    );
    bad_cert(verdict, "bad_signature");
}

// ───────────────────────────── votes ─────────────────────────────

#[test]
fn votes_vote() {
    let f = Fixture::new();
    let ok = votes(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V2.consensus_key())));
    let a = accepted(f.check(Topic::Votes, &ok));
    assert_eq!(a.author, Author::Zsi(V2.id()));
    assert_eq!(a.tier, Tier::TL3);
    assert_eq!(a.payload.kind(), "vote");

    let data = votes(votes_message::Kind::Vote(vote(
        &f,
        VLow,
        "devnet",
        &VLow.consensus_key(),
    )));
    denied(f.check(Topic::Votes, &data), VLow, low(Tier::TL3, Tier::TL1));
    let data = votes(votes_message::Kind::Vote(vote(&f, T3, "devnet", &T3.consensus_key())));
    denied(f.check(Topic::Votes, &data), T3, DenyReason::NotInValidatorSet);
    let data = votes(votes_message::Kind::Vote(vote(
        &f,
        Stranger,
        "devnet",
        &Stranger.consensus_key(),
    )));
    ignored(f.check(Topic::Votes, &data), "unknown_author");
    // Forged: another key, the identity key, a mutated field.
    let data = votes(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V3.consensus_key())));
    assert_eq!(
        rejected(f.check(Topic::Votes, &data), "bad_signature"),
        RejectReason::BadSignature {
            what: "vote",
            author: V2.id()
        }
    );
    let data = votes(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V2.identity_key())));
    rejected(f.check(Topic::Votes, &data), "bad_signature");
    let mut v = vote(&f, V2, "devnet", &V2.consensus_key());
    v.height += 1;
    rejected(
        f.check(Topic::Votes, &votes(votes_message::Kind::Vote(v))),
        "bad_signature",
    );
    let data = votes(votes_message::Kind::Vote(vote(&f, V2, "testnet", &V2.consensus_key())));
    rejected(f.check(Topic::Votes, &data), "wrong_network");
}

#[test]
fn votes_rebroadcast_carries_a_fresh_send_time() {
    let f = Fixture::new();
    let stamped = |at: u64, key: &SigningKey| {
        let mut m = VotesMessage {
            kind: Some(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V2.consensus_key()))),
            rebroadcast_ms: at,
            rebroadcast_signature: vec![],
        };
        m.sign_with(key);
        encode(&m)
    };
    let rebroadcast = |at: u64| stamped(at, &V2.consensus_key());
    // Distinct bytes for each send, each admitted like the first publication.
    assert_ne!(rebroadcast(NOW), rebroadcast(NOW + 1));
    for at in [NOW, NOW - SKEW, NOW + SKEW] {
        let a = accepted(f.check(Topic::Votes, &rebroadcast(at)));
        assert_eq!(a.author, Author::Zsi(V2.id()));
    }
    // An old rebroadcast (or one from the future) is stale: our clock says
    // so, not the message, so it costs its relay nothing.
    assert_eq!(
        ignored(f.check(Topic::Votes, &rebroadcast(NOW - SKEW - 1)), "stale"),
        IgnoreReason::Stale {
            time_ms: NOW - SKEW - 1,
            now_ms: NOW,
            max_skew_ms: SKEW
        }
    );
    ignored(f.check(Topic::Votes, &rebroadcast(NOW + SKEW + 1)), "stale");
    // Re-minting: anyone but the voter who re-stamps an authentic vote is caught.
    assert_eq!(
        rejected(
            f.check(Topic::Votes, &stamped(NOW, &V3.consensus_key())),
            "bad_signature"
        ),
        RejectReason::BadSignature {
            what: "vote rebroadcast",
            author: V2.id()
        }
    );
    let unsigned = encode(&VotesMessage {
        kind: Some(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V2.consensus_key()))),
        rebroadcast_ms: NOW,
        rebroadcast_signature: vec![],
    });
    rejected(f.check(Topic::Votes, &unsigned), "decode");
}

#[test]
fn votes_polka() {
    let f = Fixture::new();
    let data = votes(votes_message::Kind::Polka(polka(&f, &[V1, V2, V3])));
    let a = accepted(f.check(Topic::Votes, &data));
    assert_eq!(a.author, Author::Certified { signers: 3 });
    assert_eq!(a.payload.kind(), "polka");

    // Power 10+10+1 = 21 < 28.
    let data = votes(votes_message::Kind::Polka(polka(&f, &[V1, V4, VLow])));
    not_our_set(f.check(Topic::Votes, &data), "insufficient_power");
    let mut p = polka(&f, &[V1, V2, V3]);
    p.signatures[2].signature[63] ^= 1;
    bad_cert(
        f.check(Topic::Votes, &votes(votes_message::Kind::Polka(p))),
        "bad_signature",
    );
    let mut p = polka(&f, &[V1, V2, V3]);
    p.round += 1;
    bad_cert(
        f.check(Topic::Votes, &votes(votes_message::Kind::Polka(p))),
        "bad_signature",
    );
    let mut p = polka(&f, &[V1, V2]);
    p.signatures
        .push(vote_signature(&f, T3, VoteType::Prevote, Some(&BLOCK), 1));
    not_our_set(
        f.check(Topic::Votes, &votes(votes_message::Kind::Polka(p))),
        "unknown_validator",
    );
    // Wrong network: prevotes signed for another network.
    let testnet = NetworkId::new("testnet").unwrap();
    let mut p = polka(&f, &[V1, V2, V3]);
    for (s, w) in p.signatures.iter_mut().zip([V1, V2, V3]) {
        let mut v = prevote_for(&testnet, 9, 1, Some(&BLOCK), &w.id());
        v.sign_with(&w.consensus_key());
        s.signature = v.signature;
    }
    bad_cert(
        f.check(Topic::Votes, &votes(votes_message::Kind::Polka(p))),
        "bad_signature",
    );
}

#[test]
fn votes_round_certificate() {
    let f = Fixture::new();
    let other = Hash32([0xcc; 32]);
    // Precommit kind: any value, nil included; more than 2/3.
    let sigs = vec![
        vote_signature(&f, V1, VoteType::Precommit, None, 2),
        vote_signature(&f, V2, VoteType::Precommit, Some(&BLOCK), 2),
        vote_signature(&f, V3, VoteType::Precommit, Some(&other), 2),
    ];
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Precommit,
        sigs.clone(),
    )));
    let a = accepted(f.check(Topic::Votes, &data));
    assert_eq!(a.author, Author::Certified { signers: 3 });
    assert_eq!(a.payload.kind(), "round_certificate");
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Precommit,
        sigs[..2].to_vec(),
    )));
    not_our_set(f.check(Topic::Votes, &data), "insufficient_power");
    // nil claimed for a vote signed for a block.
    let mut forged = sigs.clone();
    forged[1].block_hash.clear();
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Precommit,
        forged,
    )));
    bad_cert(f.check(Topic::Votes, &data), "bad_signature");

    // Skip kind: more than 1/3 (≥ 14 of 41) of any votes; one validator counts once.
    let skip = vec![
        vote_signature(&f, V1, VoteType::Prevote, None, 2),
        vote_signature(&f, V1, VoteType::Precommit, None, 2),
        vote_signature(&f, VLow, VoteType::Prevote, Some(&BLOCK), 2),
    ];
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Skip,
        skip.clone(),
    )));
    match ignored(f.check(Topic::Votes, &data), "not_our_set") {
        IgnoreReason::NotOurSet(e) => assert_eq!(
            e,
            chain::CertificateError::InsufficientPower {
                signed: 11,
                required: 14,
                total: 41
            }
        ),
        other => panic!("{other:?}"),
    }
    let mut enough = skip;
    enough.push(vote_signature(&f, V4, VoteType::Precommit, Some(&other), 2));
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Skip,
        enough.clone(),
    )));
    assert_eq!(
        accepted(f.check(Topic::Votes, &data)).author,
        Author::Certified { signers: 3 }
    );
    let mut forged = enough;
    forged[3].signature[1] ^= 1;
    let data = votes(votes_message::Kind::RoundCertificate(round_cert(
        RoundCertificateKind::Skip,
        forged,
    )));
    bad_cert(f.check(Topic::Votes, &data), "bad_signature");
}

#[test]
fn votes_evidence() {
    let f = Fixture::new();
    let data = votes(votes_message::Kind::Evidence(evidence(&f, V3, Some(&BLOCK), None)));
    let a = accepted(f.check(Topic::Votes, &data));
    assert_eq!(a.author, Author::Certified { signers: 1 });
    assert_eq!(a.payload.kind(), "evidence");
    // Identical votes are not evidence.
    let data = votes(votes_message::Kind::Evidence(evidence(
        &f,
        V3,
        Some(&BLOCK),
        Some(&BLOCK),
    )));
    bad_cert(f.check(Topic::Votes, &data), "not_evidence");
    let mut e = evidence(&f, V3, Some(&BLOCK), None);
    e.second.as_mut().unwrap().signature[9] ^= 1;
    bad_cert(
        f.check(Topic::Votes, &votes(votes_message::Kind::Evidence(e))),
        "bad_signature",
    );
    let data = votes(votes_message::Kind::Evidence(evidence(&f, T3, Some(&BLOCK), None)));
    not_our_set(f.check(Topic::Votes, &data), "unknown_validator");
    let mut e = evidence(&f, V3, Some(&BLOCK), None);
    for v in [e.first.as_mut().unwrap(), e.second.as_mut().unwrap()] {
        v.network_id = "testnet".into();
        v.sign_with(&V3.consensus_key());
    }
    bad_cert(
        f.check(Topic::Votes, &votes(votes_message::Kind::Evidence(e))),
        "wrong_network",
    );
}

// ───────────────────────────── proofs ─────────────────────────────

#[test]
fn proofs_envelope() {
    let f = Fixture::new();
    let a = accepted(f.check(Topic::Proofs, &proof(T1)));
    assert_eq!(a.author, Author::Zsi(T1.id()));
    assert_eq!((a.tier, a.rate_class), (Tier::TL1, RateClass::Participant));
    assert_eq!(a.payload.kind(), "proof");
    // Validators may submit too.
    accepted(f.check(Topic::Proofs, &proof(V1)));
    // A slashed identity is TL0.
    denied(
        f.check(Topic::Proofs, &proof(Slashed)),
        Slashed,
        low(Tier::TL1, Tier::TL0),
    );
    assert_eq!(
        ignored(f.check(Topic::Proofs, &proof(Stranger)), "unknown_author"),
        IgnoreReason::UnknownAuthor(Stranger.id())
    );
    // Forged: mutated after signing, or signed by someone else.
    let mut m: ProofsMessage = tiernet_core::wire::decode(&proof(T1)).unwrap();
    m.envelope.as_mut().unwrap().height += 1;
    rejected(f.check(Topic::Proofs, &encode(&m)), "bad_signature");
    let mut m: ProofsMessage = tiernet_core::wire::decode(&proof(T1)).unwrap();
    m.envelope.as_mut().unwrap().sign_with(&T2.identity_key());
    assert_eq!(
        rejected(f.check(Topic::Proofs, &encode(&m)), "bad_signature"),
        RejectReason::BadSignature {
            what: "proof envelope",
            author: T1.id()
        }
    );
    // A proof envelope carries no network id: the proof kind's statement does
    // (e.g. `UptimeClaim.network_id`), and the kind's verifier checks it.
}

// ───────────────────────────── snapshots ─────────────────────────────

#[test]
fn snapshots_announcement() {
    let f = Fixture::new();
    let a = accepted(f.check(Topic::Snapshots, &snapshots(announcement(T2, "devnet"))));
    assert_eq!(a.author, Author::Zsi(T2.id()));
    assert_eq!(a.tier, Tier::TL2);
    assert_eq!(a.payload.kind(), "snapshot");
    accepted(f.check(Topic::Snapshots, &snapshots(announcement(T3, "devnet"))));
    denied(
        f.check(Topic::Snapshots, &snapshots(announcement(T1, "devnet"))),
        T1,
        low(Tier::TL2, Tier::TL1),
    );
    denied(
        f.check(Topic::Snapshots, &snapshots(announcement(Slashed, "devnet"))),
        Slashed,
        low(Tier::TL2, Tier::TL0),
    );
    ignored(
        f.check(Topic::Snapshots, &snapshots(announcement(Stranger, "devnet"))),
        "unknown_author",
    );
    let mut a = announcement(T2, "devnet");
    a.manifest.as_mut().unwrap().state_root[0] ^= 1;
    rejected(f.check(Topic::Snapshots, &snapshots(a)), "bad_signature");
    rejected(
        f.check(Topic::Snapshots, &snapshots(announcement(T2, "testnet"))),
        "wrong_network",
    );
}

// ───────────────────────────── meta ─────────────────────────────

#[test]
fn meta_heartbeat_with_zsi() {
    let f = Fixture::new();
    let a = accepted(f.check(Topic::Meta, &hb_bytes(heartbeat(Some(T1), 1, NOW))));
    assert_eq!(a.author, Author::Zsi(T1.id()));
    assert_eq!((a.tier, a.rate_class), (Tier::TL1, RateClass::Participant));
    assert_eq!(a.payload.kind(), "heartbeat");
    // Slashed: still allowed on meta, as TL0 under the observer rate class.
    let a = accepted(f.check(Topic::Meta, &hb_bytes(heartbeat(Some(Slashed), 1, NOW))));
    assert_eq!(a.author, Author::Zsi(Slashed.id()));
    assert_eq!((a.tier, a.rate_class), (Tier::TL0, RateClass::Observer));
    // An unregistered ZSI is not an observer.
    assert_eq!(
        ignored(
            f.check(Topic::Meta, &hb_bytes(heartbeat(Some(Stranger), 1, NOW))),
            "unknown_author"
        ),
        IgnoreReason::UnknownAuthor(Stranger.id())
    );
    let mut hb = heartbeat(Some(T1), 1, NOW);
    hb.height += 1;
    rejected(f.check(Topic::Meta, &hb_bytes(hb)), "bad_signature");
    let mut hb = heartbeat(Some(T1), 1, NOW);
    hb.network_id = "testnet".into();
    hb.sign_with(&T1.identity_key());
    rejected(f.check(Topic::Meta, &hb_bytes(hb)), "wrong_network");
}

#[test]
fn meta_heartbeat_freshness() {
    let f = Fixture::new();
    for who in [Some(T1), None] {
        // Exactly at the tolerance, either way: fine.
        accepted(f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, NOW - SKEW))));
        accepted(f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, NOW + SKEW))));
        // One millisecond more: stale (or from the future).
        assert_eq!(
            ignored(
                f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, NOW - SKEW - 1))),
                "stale"
            ),
            IgnoreReason::Stale {
                time_ms: NOW - SKEW - 1,
                now_ms: NOW,
                max_skew_ms: SKEW
            }
        );
        ignored(
            f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, NOW + SKEW + 1))),
            "stale",
        );
        ignored(f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, 0))), "stale");
        ignored(f.check(Topic::Meta, &hb_bytes(heartbeat(who, 1, u64::MAX))), "stale");
    }
}

#[test]
fn meta_heartbeat_replay() {
    let f = Fixture::new();
    let mut replay = ReplayGuard::default();
    let first = hb_bytes(heartbeat(Some(T2), 5, NOW));
    accepted(f.check_with(Topic::Meta, &first, SOURCE, &mut replay));
    // The same heartbeat again: ignored, not the forwarder's fault.
    ignored(f.check_with(Topic::Meta, &first, SOURCE, &mut replay), "duplicate");
    // An older one, or another with the same sequence: a replay, from any source.
    let older = hb_bytes(heartbeat(Some(T2), 4, NOW));
    assert_eq!(
        ignored(
            f.check_with(Topic::Meta, &older, b"another-source", &mut replay),
            "replay"
        ),
        IgnoreReason::Replay { sequence: 4, last: 5 }
    );
    let same_seq = hb_bytes(heartbeat(Some(T2), 5, NOW + 1));
    ignored(f.check_with(Topic::Meta, &same_seq, SOURCE, &mut replay), "replay");
    // A forged heartbeat with a higher sequence does not advance the state.
    let mut forged = heartbeat(Some(T2), 100, NOW);
    forged.signature[0] ^= 1;
    rejected(
        f.check_with(Topic::Meta, &hb_bytes(forged), SOURCE, &mut replay),
        "bad_signature",
    );
    accepted(f.check_with(Topic::Meta, &hb_bytes(heartbeat(Some(T2), 6, NOW)), SOURCE, &mut replay));
    // Another author's sequence is independent.
    accepted(f.check_with(Topic::Meta, &hb_bytes(heartbeat(Some(T1), 1, NOW)), SOURCE, &mut replay));
}

#[test]
fn meta_heartbeat_observer() {
    let f = Fixture::new();
    let mut replay = ReplayGuard::default();
    let data = hb_bytes(heartbeat(None, 3, NOW));
    let a = accepted(f.check_with(Topic::Meta, &data, SOURCE, &mut replay));
    assert_eq!(a.author, Author::Observer);
    assert_eq!((a.tier, a.rate_class), (Tier::TL0, RateClass::Observer));
    // Tracked per source: the same bytes from another source are that source's first.
    accepted(f.check_with(Topic::Meta, &data, b"second-observer", &mut replay));
    ignored(f.check_with(Topic::Meta, &data, SOURCE, &mut replay), "duplicate");
    ignored(
        f.check_with(Topic::Meta, &hb_bytes(heartbeat(None, 2, NOW)), SOURCE, &mut replay),
        "replay",
    );
    accepted(f.check_with(Topic::Meta, &hb_bytes(heartbeat(None, 4, NOW)), SOURCE, &mut replay));
    // No usable source: the sequence cannot be tracked.
    ignored(f.check_with(Topic::Meta, &data, b"", &mut replay), "unattributable");
    ignored(
        f.check_with(Topic::Meta, &data, &[1; 129], &mut replay),
        "unattributable",
    );
    // Network checks apply to observers too.
    let mut hb = heartbeat(None, 10, NOW);
    hb.network_id = "testnet".into();
    rejected(
        f.check_with(Topic::Meta, &hb_bytes(hb), SOURCE, &mut replay),
        "wrong_network",
    );
    // An observer heartbeat may not carry a signature (schema rule).
    let mut hb = heartbeat(None, 11, NOW);
    hb.signature = vec![1; 64];
    match rejected(f.check_with(Topic::Meta, &hb_bytes(hb), SOURCE, &mut replay), "decode") {
        RejectReason::Decode(e) => assert!(e.to_string().contains("heartbeat.signature"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn meta_uptime_attestation() {
    let f = Fixture::new();
    let data = meta(meta_message::Kind::Attestation(attestation(T3, claim("devnet"))));
    let a = accepted(f.check(Topic::Meta, &data));
    assert_eq!(a.author, Author::Zsi(T3.id()));
    assert_eq!(a.tier, Tier::TL3);
    assert_eq!(a.payload.kind(), "uptime_attestation");
    // Slashed witnesses are TL0 and still may publish on meta.
    let data = meta(meta_message::Kind::Attestation(attestation(Slashed, claim("devnet"))));
    assert_eq!(accepted(f.check(Topic::Meta, &data)).rate_class, RateClass::Observer);
    let data = meta(meta_message::Kind::Attestation(attestation(Stranger, claim("devnet"))));
    ignored(f.check(Topic::Meta, &data), "unknown_author");
    // Forged: the count, the claim, the signer.
    let mut att = attestation(T3, claim("devnet"));
    att.witness.as_mut().unwrap().heartbeats_seen += 1;
    assert_eq!(
        rejected(
            f.check(Topic::Meta, &meta(meta_message::Kind::Attestation(att))),
            "bad_signature"
        ),
        RejectReason::BadSignature {
            what: "uptime witness",
            author: T3.id()
        }
    );
    let mut att = attestation(T3, claim("devnet"));
    att.claim.as_mut().unwrap().to_height += 1;
    rejected(
        f.check(Topic::Meta, &meta(meta_message::Kind::Attestation(att))),
        "bad_signature",
    );
    let mut att = attestation(T3, claim("devnet"));
    att.witness.as_mut().unwrap().witness = T2.id().as_bytes().to_vec();
    rejected(
        f.check(Topic::Meta, &meta(meta_message::Kind::Attestation(att))),
        "bad_signature",
    );
    let data = meta(meta_message::Kind::Attestation(attestation(T3, claim("testnet"))));
    rejected(f.check(Topic::Meta, &data), "wrong_network");
    // A witness without its claim does not decode.
    let mut att = attestation(T3, claim("devnet"));
    att.claim = None;
    rejected(
        f.check(Topic::Meta, &meta(meta_message::Kind::Attestation(att))),
        "decode",
    );
}

// ───────────────────────────── bytes ─────────────────────────────

#[test]
fn garbage_and_oversized_input_are_decode_rejections_on_every_topic() {
    let f = Fixture::new();
    let mut replay = ReplayGuard::default();
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 7],
        b"definitely not protobuf".to_vec(),
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for topic in Topic::ALL {
        for data in &garbage {
            let verdict = f.check_with(topic, data, SOURCE, &mut replay);
            rejected(verdict, "decode");
        }
        let oversized = vec![0u8; topic.max_message_size() + 1];
        match rejected(f.check_with(topic, &oversized, SOURCE, &mut replay), "decode") {
            RejectReason::Decode(tiernet_core::wire::DecodeError::TooLarge { len, max, .. }) => {
                assert_eq!((len, max), (topic.max_message_size() + 1, topic.max_message_size()));
            }
            other => panic!("{other:?}"),
        }
    }
    // A valid message of one topic on another is a decode error, never a panic.
    let vote_bytes = votes(votes_message::Kind::Vote(vote(&f, V2, "devnet", &V2.consensus_key())));
    for topic in [Topic::Blocks, Topic::Proofs, Topic::Snapshots, Topic::Meta] {
        assert!(!matches!(
            f.check_with(topic, &vote_bytes, SOURCE, &mut replay),
            Verdict::Accept(_)
        ));
    }
    assert!(replay.is_empty());
}

#[test]
fn every_mutated_byte_of_an_accepted_message_is_never_accepted_as_someone_else() {
    // Flipping any single byte of a signed vote never yields an accepted
    // message from a different author or with different content.
    let f = Fixture::new();
    let v = vote(&f, V2, "devnet", &V2.consensus_key());
    let data = votes(votes_message::Kind::Vote(v.clone()));
    for i in 0..data.len() {
        for bit in [0x01u8, 0x80] {
            let mut mutated = data.clone();
            mutated[i] ^= bit;
            if let Verdict::Accept(a) = f.check(Topic::Votes, &mutated) {
                assert_eq!(a.author, Author::Zsi(V2.id()));
                assert_eq!(
                    a.payload,
                    tiernet_core::gossip::Payload::Votes(VotesMessage {
                        kind: Some(votes_message::Kind::Vote(v.clone())),
                        ..Default::default()
                    })
                );
            }
        }
    }
}

#[test]
fn reject_reasons_map_to_peer_events() {
    use tiernet_core::reputation::PeerEvent;
    let f = Fixture::new();
    let data = votes(votes_message::Kind::Vote(vote(&f, T3, "devnet", &T3.consensus_key())));
    // Sent by the author itself: its own unauthorised publish.
    match f.check_from_publisher(Topic::Votes, &data) {
        Verdict::Reject(r) => assert_eq!(r.peer_event(), PeerEvent::UnauthorisedPublish),
        other => panic!("{other:?}"),
    }
    match f.check(Topic::Votes, b"junk") {
        Verdict::Reject(r) => assert_eq!(r.peer_event(), PeerEvent::InvalidMessage),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unauthorised_or_unknown_author_costs_only_a_peer_that_published_it_itself() {
    let f = Fixture::new();
    let cases = [
        (
            Topic::Blocks,
            blocks(blocks_message::Kind::Proposal(proposal(&f, T1, "devnet"))),
            "unauthorised",
        ),
        (
            Topic::Votes,
            votes(votes_message::Kind::Vote(vote(&f, T3, "devnet", &T3.consensus_key()))),
            "unauthorised",
        ),
        (Topic::Snapshots, snapshots(announcement(T1, "devnet")), "unauthorised"),
        (Topic::Proofs, proof(Stranger), "unknown_author"),
        (
            Topic::Meta,
            hb_bytes(heartbeat(Some(Stranger), 1, NOW)),
            "unknown_author",
        ),
    ];
    for (topic, data, label) in cases {
        // Forwarded: the relay's view of the author may differ from ours.
        match f.check(topic, &data) {
            Verdict::Ignore(IgnoreReason::Unauthorised { .. } | IgnoreReason::UnknownAuthor(_)) => {}
            verdict => panic!("{topic}: {verdict:?}"),
        }
        // Published by the peer that sent it: its own doing.
        rejected(f.check_from_publisher(topic, &data), label);
    }
}

#[test]
fn a_custom_policy_is_honoured() {
    // Proofs for validators only: membership is computed from the current set.
    let mut f = Fixture::new();
    f.policy.proofs.validators_only = true;
    accepted(f.check(Topic::Proofs, &proof(V1)));
    denied(f.check(Topic::Proofs, &proof(T3)), T3, DenyReason::NotInValidatorSet);
    denied(f.check(Topic::Proofs, &proof(T1)), T1, DenyReason::NotInValidatorSet);
    // Meta raised to TL1: observers and slashed identities lose it at once.
    f.policy.meta.min_tier = Tier::TL1;
    let r = ignored(
        f.check(Topic::Meta, &hb_bytes(heartbeat(None, 1, NOW))),
        "unauthorised_relayed",
    );
    assert_eq!(
        r,
        IgnoreReason::Unauthorised {
            author: None,
            reason: low(Tier::TL1, Tier::TL0)
        }
    );
    denied(
        f.check(Topic::Meta, &hb_bytes(heartbeat(Some(Slashed), 1, NOW))),
        Slashed,
        low(Tier::TL1, Tier::TL0),
    );
    accepted(f.check(Topic::Meta, &hb_bytes(heartbeat(Some(T1), 1, NOW))));
}

// ─────────────────────── the inbound policy ───────────────────────

mod inbound {
    use super::*;
    use libp2p_identity::PeerId;
    use tiernet_core::inbound::{Acceptance, InboundMessage, InboundPolicy};
    use tiernet_core::reputation::PeerEvent;

    /// One honest node: its own clock, head and registry.
    struct Honest {
        peer: PeerId,
        policy: InboundPolicy,
        now: u64,
        head: u64,
        registry: tiernet_core::identity::registry::MemoryRegistry,
        /// (relay, event) of every reputation event it recorded.
        events: Vec<(PeerId, PeerEvent)>,
    }

    impl Honest {
        fn new(f: &Fixture, now: u64, head: u64) -> Self {
            Self {
                peer: PeerId::random(),
                policy: InboundPolicy::default(),
                now,
                head,
                registry: f.genesis.registry.clone(),
                events: Vec::new(),
            }
        }

        /// Handles a message from `relay`; returns whether it is forwarded.
        fn receive(&mut self, f: &Fixture, topic: Topic, data: &[u8], relay: PeerId, publisher: PeerId) -> bool {
            let view = GossipContext {
                network: &f.network,
                registry: &self.registry,
                thresholds: &f.genesis.thresholds,
                validators: &f.set,
                policy: &f.policy,
                head_height: self.head,
                head_hash: None,
                windows: Windows::default(),
                now_ms: self.now,
                max_clock_skew_ms: SKEW,
            };
            let message = InboundMessage {
                topic: Some(topic),
                data,
                relay,
                publisher: Some(publisher),
            };
            let decision = self.policy.handle_gossip(&message, &view);
            if let Some(event) = decision.relay_event {
                self.events.push((relay, event));
            }
            decision.acceptance == Acceptance::Accept
        }

        fn penalties_against(&self, relay: PeerId) -> Vec<PeerEvent> {
            self.events
                .iter()
                .filter(|(p, e)| *p == relay && e.points(&Default::default()) < 0.0)
                .map(|(_, e)| *e)
                .collect()
        }
    }

    #[test]
    fn gossip_state_carried_over_a_restart_refuses_what_was_seen_before_it() {
        let f = Fixture::new();
        let (relay, publisher) = (PeerId::random(), PeerId::random());
        let mut before = Honest::new(&f, NOW, 1_000);
        let seen = hb_bytes(heartbeat(Some(T1), 7, NOW));
        assert!(before.receive(&f, Topic::Meta, &seen, relay, publisher));
        let changes = before.policy.take_changes();
        assert_eq!(changes.seen.len(), 1);
        assert_eq!(changes.replay.len(), 1);
        // Taken once: the next batch holds only what is new.
        assert!(before.policy.take_changes().is_empty());
        // The gap this closes: a node that lost its state accepts the same
        // heartbeat again after a crash.
        let mut amnesiac = Honest::new(&f, NOW + 2_000, 1_000);
        assert!(amnesiac.receive(&f, Topic::Meta, &seen, relay, publisher));
        // Restored: the same bytes are seen, an older sequence is a replay,
        // a newer one is fine.
        let mut restarted = Honest::new(&f, NOW + 2_000, 1_000);
        restarted.policy.restore(changes.seen, changes.replay, NOW + 2_000);
        assert!(!restarted.receive(&f, Topic::Meta, &seen, relay, publisher));
        let older = hb_bytes(heartbeat(Some(T1), 6, NOW + 1_000));
        assert!(!restarted.receive(&f, Topic::Meta, &older, relay, publisher));
        let newer = hb_bytes(heartbeat(Some(T1), 8, NOW + 1_500));
        assert!(restarted.receive(&f, Topic::Meta, &newer, relay, publisher));
        // Restoring is no change to write back.
        assert_eq!(restarted.policy.take_changes().seen.len(), 1);
    }

    /// The 10x flood of issue 15, at the policy: a peer that publishes its
    /// own messages far over the relay budget is charged for each one over
    /// it; a relay that forwards others' messages at the same rate only
    /// sees them ignored (it may be relaying an honest burst).
    #[test]
    fn a_flooder_is_charged_per_message_over_the_budget_a_forwarding_relay_is_not() {
        let f = Fixture::new();
        let mut node = Honest::new(&f, NOW, 1_000);
        let (flooder, relay, author) = (PeerId::random(), PeerId::random(), PeerId::random());
        for i in 0..200u64 {
            let own = hb_bytes(heartbeat(None, 1_000 + i, NOW));
            node.receive(&f, Topic::Meta, &own, flooder, flooder);
            let forwarded = hb_bytes(heartbeat(Some(T1), 5_000 + i, NOW));
            node.receive(&f, Topic::Meta, &forwarded, relay, author);
        }
        let charged = node.penalties_against(flooder);
        assert!(
            charged.len() >= 150 && charged.iter().all(|e| *e == PeerEvent::RateLimitBreach),
            "{} charges against the flooder: {charged:?}",
            charged.len()
        );
        assert!(
            node.penalties_against(relay).is_empty(),
            "{:?}",
            node.penalties_against(relay)
        );
    }

    /// An honest relay whose budget on a topic went on forwarding others'
    /// messages is not charged for its own heartbeat there: the charge is
    /// for a peer's own publications over the budget. (Both buckets used
    /// to be one: forwarding 50 heartbeats in a burst turned the relay's
    /// own next message into a `rate_limit_breach`.) A peer that then
    /// publishes far over the budget itself is still charged.
    #[test]
    fn a_relay_is_not_charged_for_its_own_message_when_forwarding_used_its_budget() {
        let f = Fixture::new();
        let mut node = Honest::new(&f, NOW, 1_000);
        let relay = PeerId::random();
        for i in 0..60u64 {
            let forwarded = hb_bytes(heartbeat(Some(T1), 5_000 + i, NOW));
            node.receive(&f, Topic::Meta, &forwarded, relay, PeerId::random());
        }
        for i in 0..3u64 {
            let own = hb_bytes(heartbeat(None, 1_000 + i, NOW));
            node.receive(&f, Topic::Meta, &own, relay, relay);
        }
        assert!(
            node.penalties_against(relay).is_empty(),
            "{:?}",
            node.penalties_against(relay)
        );
        // Its own flood is charged all the same, once its own messages
        // exceed the budget by themselves.
        for i in 3..200u64 {
            let own = hb_bytes(heartbeat(None, 1_000 + i, NOW));
            node.receive(&f, Topic::Meta, &own, relay, relay);
        }
        let charged = node.penalties_against(relay);
        assert!(
            charged.len() >= 140 && charged.iter().all(|e| *e == PeerEvent::RateLimitBreach),
            "{} charges: {charged:?}",
            charged.len()
        );
    }

    /// Messages valid for A but, by clock, height, sequence or registry,
    /// not for B or C, which lag or lead A a little.
    fn boundary_messages(f: &Fixture, a_now: u64, a_head: u64) -> Vec<(Topic, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..20u64 {
            // A heartbeat at the edge of A's skew window.
            out.push((Topic::Meta, hb_bytes(heartbeat(Some(T1), 100 + i, a_now - SKEW + i))));
            // A vote at the bottom of A's window (old for a node one block ahead).
            let mut v = precommit_for(&f.network, a_head + 1 - 16, 0, Some(&Hash32([i as u8; 32])), &V2.id());
            v.sign_with(&V2.consensus_key());
            out.push((Topic::Votes, votes(votes_message::Kind::Vote(v))));
            // A proof envelope at the edge of A's freshness window.
            let mut envelope = ProofEnvelope {
                kind: "uptime/v1".into(),
                statement: i.to_be_bytes().to_vec(),
                proof: b"proof".to_vec(),
                submitter: T1.id().as_bytes().to_vec(),
                height: a_head - Windows::default().proofs_around,
                signature: vec![],
            };
            envelope.sign_with(&T1.identity_key());
            out.push((
                Topic::Proofs,
                encode(&ProofsMessage {
                    envelope: Some(envelope),
                }),
            ));
            // A heartbeat whose sequence C has already seen from another path.
            out.push((Topic::Meta, hb_bytes(heartbeat(Some(T2), 1 + i, a_now))));
            // A vote by a validator that B and C just saw slashed.
            let mut v = precommit_for(&f.network, a_head + 1, 0, Some(&Hash32([i as u8; 32])), &V4.id());
            v.sign_with(&V4.consensus_key());
            out.push((Topic::Votes, votes(votes_message::Kind::Vote(v))));
        }
        out
    }

    #[test]
    fn boundary_messages_relayed_by_honest_nodes_cost_no_honest_node_anything() {
        let f = Fixture::new();
        let attacker = PeerId::random();
        // A is exact; B's clock is 5 s ahead and it is one block ahead; C's
        // clock is 10 s ahead and it is two blocks ahead.
        const A_HEAD: u64 = 1_000;
        let mut a = Honest::new(&f, NOW, A_HEAD);
        let mut b = Honest::new(&f, NOW + 5_000, A_HEAD + 1);
        let mut c = Honest::new(&f, NOW + 10_000, A_HEAD + 2);
        // B and C saw V4 slashed; C saw T2's heartbeats up to 1000.
        for node in [&mut b, &mut c] {
            let mut record = tiernet_core::identity::registry::IdentityRegistry::lookup(&node.registry, &V4.id())
                .unwrap()
                .reputation;
            record.slashed = true;
            assert!(node.registry.set_reputation(&V4.id(), record));
        }
        c.receive(
            &f,
            Topic::Meta,
            &hb_bytes(heartbeat(Some(T2), 1000, NOW + 10_000)),
            PeerId::random(),
            PeerId::random(),
        );
        let messages = boundary_messages(&f, NOW, A_HEAD);
        assert_eq!(messages.len(), 100);
        let (mut at_b, mut at_c) = (0, 0);
        for (topic, data) in &messages {
            if !a.receive(&f, *topic, data, attacker, attacker) {
                continue;
            }
            at_b += 1;
            if !b.receive(&f, *topic, data, a.peer, attacker) {
                continue;
            }
            at_c += 1;
            c.receive(&f, *topic, data, b.peer, attacker);
        }
        // A forwarded every message (each is valid for A) and B some of them.
        assert_eq!(at_b, 100, "A should accept every boundary message");
        assert!(at_c < at_b, "B should drop some: {at_c}");
        assert!(
            b.penalties_against(a.peer).is_empty(),
            "B charged A: {:?}",
            b.penalties_against(a.peer)
        );
        assert!(
            c.penalties_against(b.peer).is_empty(),
            "C charged B: {:?}",
            c.penalties_against(b.peer)
        );
        // The messages themselves were dropped where they were stale: an
        // honest relay forwards nothing its next hop would refuse for fault.
        assert!(a.penalties_against(attacker).is_empty());
    }

    #[test]
    fn old_content_cannot_be_reminted_under_a_new_id() {
        let f = Fixture::new();
        let relay = PeerId::random();
        let mut node = Honest::new(&f, NOW, HEAD);
        let v = vote(&f, V2, "devnet", &V2.consensus_key());
        let canonical = votes(votes_message::Kind::Vote(v.clone()));
        assert!(node.receive(&f, Topic::Votes, &canonical, relay, relay));
        // The same bytes again, long after GossipSub forgot their id: seen.
        node.now += 10 * 60 * 1000;
        assert!(!node.receive(&f, Topic::Votes, &canonical, relay, relay));
        // Other encodings of the same content: an unknown field, trailing
        // bytes, a non-minimal varint, a default value written out.
        let mut unknown_field = canonical.clone();
        unknown_field.extend_from_slice(&[0x78, 0x01]); // field 15, varint 1
        let mut zero_field = canonical.clone();
        zero_field.extend_from_slice(&[0x28, 0x00]); // rebroadcast_ms = 0, written out
        // Field 1's length with a redundant continuation byte.
        let len = prost::decode_length_delimiter(&canonical[1..]).unwrap();
        let mut varint = Vec::new();
        prost::encoding::encode_varint(len as u64, &mut varint);
        let last = varint.len() - 1;
        varint[last] |= 0x80;
        varint.push(0x00);
        let mut padded_len = vec![canonical[0]];
        padded_len.extend_from_slice(&varint);
        padded_len.extend_from_slice(&canonical[1 + prost::length_delimiter_len(len)..]);
        for (what, data) in [
            ("unknown field", unknown_field),
            ("explicit default", zero_field),
            ("padded varint", padded_len),
        ] {
            let verdict = f.check(Topic::Votes, &data);
            match verdict {
                Verdict::Reject(RejectReason::Decode(tiernet_core::wire::DecodeError::NonCanonical { .. })) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        // An old vote, re-injected after our head moved on, is dropped
        // before its signature is checked, and costs no one.
        node.head = HEAD + 20;
        node.now += 60 * 60 * 1000;
        assert!(!node.receive(&f, Topic::Votes, &canonical, relay, relay));
        assert!(node.penalties_against(relay).is_empty());
    }
}
