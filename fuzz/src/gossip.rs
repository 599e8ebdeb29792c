//! Inbound gossip: the node's inbound policy
//! (`tiernet_core::inbound::InboundPolicy::handle_gossip`, which runs
//! `tiernet_core::gossip::validate`) over an arbitrary topic, message bytes,
//! registry state, head and clock, with a small fixed cast.
//!
//! # Input
//!
//! ```text
//! [topic u8][flags u8][clock i8][registry: 2 bytes × REGISTERED][message bytes…]
//! ```
//!
//! - topic: `Topic::ALL[topic % 5]`.
//! - flags: [`FIX`] re-signs the decoded message with the fixture key of the
//!   author it names (and points a finalized block's commit at its header),
//!   so mutations reach admission and certificate checks instead of dying at
//!   the signature; [`TWICE`] delivers the message a second time;
//!   [`REGISTRY`] replaces the genesis reputations by the registry bytes;
//!   [`NO_SOURCE`] sends it without a gossipsub source; the high four bits
//!   are the receiver's head height (0–15).
//! - clock: the receiver's clock is `NOW_MS + clock × 1 s`; an odd clock
//!   byte means the relay published the message itself.
//! - registry: per registered member, `[a][b]`: `a & 0x80` slashed,
//!   `a & 0x40` 24 h of uptime (else `(a & 0x3f) × 22` minutes), score
//!   `SCORES[b & 7] + (b >> 3)`.
//!
//! # Oracle
//!
//! An accepted message names an author the registry knows (or is an
//! observer heartbeat on `meta`, or certified content on `blocks`/`votes`),
//! with the registry's tier, allowed by the publish table of DESIGN.md
//! (written out here independently of `admission`); a heartbeat delivered
//! twice is not accepted twice. Who pays: a `Reject` always charges the
//! relay, an `Ignore` never does (but for a relay that published a flood
//! itself); and content rejected from a mere forwarder is never accepted
//! under another view (another clock, head and registry): a `Reject` must
//! mean "invalid for everyone at every time".
//!
//! # The inbound-policy switch
//!
//! All calls into the validator go through [`judge`]; moving this target
//! to another inbound API means rewriting that function (and [`Judged`] if
//! the verdict type changes), nothing else.

use std::sync::LazyLock;

use ed25519_dalek::SigningKey;
use tiernet_core::admission::{AdmissionPolicy, RateClass};
use tiernet_core::chain::{ValidatorSet, precommit_for, vote_for};
use tiernet_core::genesis::{
    ConsensusParams, Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile,
};
use tiernet_core::gossip::{Author, GossipContext, Payload, Windows};
use tiernet_core::inbound::{Acceptance, InboundMessage, InboundPolicy};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::identity::registry::{IdentityRegistry, MemoryRegistry};
use tiernet_core::tier::{ReputationRecord, Tier, tier_of};
use tiernet_core::wire::proto::{self, VoteType, blocks_message, meta_message, votes_message};
use tiernet_core::wire::sign::{SignedMessage, header_hash, sign_uptime_witness};
use tiernet_core::wire::{NetworkId, Topic, decode, encode};

use crate::{Input, Seed};

/// The receiver's clock when the clock byte is 0.
pub const NOW_MS: u64 = 1_764_000_000_000;
/// Allowed clock skew of heartbeats and vote rebroadcasts.
pub const SKEW_MS: u64 = 30_000;

/// Flag: re-sign with the named author's fixture key.
pub const FIX: u8 = 1;
/// Flag: deliver the message twice.
pub const TWICE: u8 = 2;
/// Flag: take reputations from the input.
pub const REGISTRY: u8 = 4;
/// Flag: no gossipsub source.
pub const NO_SOURCE: u8 = 8;

/// Score steps around the default thresholds (100, 1000, 10000).
const SCORES: [u64; 8] = [0, 90, 100, 990, 1_000, 9_990, 10_000, u64::MAX - 31];

/// Who is who: `(name, validator power, genesis reputation)`. The last one
/// (`stranger`) is not registered; its keys still sign.
const CAST: [(&str, Option<u64>, ReputationFile); 9] = [
    ("v1", Some(10), rep(1_440, 150, false)),
    ("v2", Some(10), rep(1_440, 150, false)),
    ("v3", Some(10), rep(1_440, 150, false)),
    ("v4", Some(1), rep(0, 0, false)),
    ("t3", None, rep(1_440, 150, false)),
    ("t2", None, rep(1_440, 0, false)),
    ("t1", None, rep(0, 0, false)),
    ("slashed", None, rep(1_440, 5_000, true)),
    ("stranger", None, rep(0, 0, false)),
];

/// Registered members: all of [`CAST`] but the stranger.
pub const REGISTERED: usize = CAST.len() - 1;

/// Bytes before the message.
pub const HEADER_LEN: usize = 3 + 2 * REGISTERED;

const fn rep(uptime_minutes: u64, score: u64, slashed: bool) -> ReputationFile {
    ReputationFile {
        uptime_minutes,
        participation: 0,
        score,
        slashed,
    }
}

struct Member {
    zsi: ZsiKeypair,
    /// Distinct from the identity key, as on a real validator.
    consensus: SigningKey,
}

struct World {
    network: NetworkId,
    genesis: Genesis,
    set: ValidatorSet,
    policy: AdmissionPolicy,
    members: Vec<Member>,
}

impl World {
    fn member(&self, id: &[u8]) -> Option<&Member> {
        self.members.iter().find(|m| m.zsi.zsi_id().as_bytes().as_slice() == id)
    }

    fn consensus_key(&self, id: &[u8]) -> Option<&SigningKey> {
        self.member(id).map(|m| &m.consensus)
    }

    fn identity_key(&self, id: &[u8]) -> Option<&SigningKey> {
        self.member(id).map(|m| m.zsi.identity_key())
    }
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let members: Vec<Member> = CAST
        .iter()
        .map(|(name, _, _)| Member {
            zsi: ZsiKeypair::from_seed(format!("fuzz-{name}").as_bytes()).expect("fixture key"),
            consensus: SigningKey::from_bytes(&blake3_key(name)),
        })
        .collect();
    let identities = CAST
        .iter()
        .zip(&members)
        .take(REGISTERED)
        .map(|((name, power, reputation), m)| {
            let mut identity = GenesisIdentity::new(name, &m.zsi.public(), *reputation);
            identity.validator = power.map(|power| GenesisValidator {
                consensus_key: hex(m.consensus.verifying_key().as_bytes()),
                power,
            });
            identity
        })
        .collect();
    let genesis = Genesis::from_file(GenesisFile {
        stark_programs: Vec::new(),
        network_id: "devnet".into(),
        genesis_time_ms: NOW_MS - 1_000_000,
        tiers: TiersFile::default(),
        consensus: ConsensusParams::default(),
        uptime: Default::default(),
        identities,
    })
    .expect("fixture genesis");
    let set = ValidatorSet::from_proto(&genesis.validators).expect("fixture validator set");
    World {
        network: genesis.network.clone(),
        genesis,
        set,
        policy: AdmissionPolicy::default(),
        members,
    }
});

fn blake3_key(name: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, b) in format!("consensus-{name}").bytes().enumerate() {
        key[i % 32] ^= b.wrapping_add(i as u8);
    }
    key[31] ^= 0x5a;
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one delivery came to, as far as the oracle cares.
#[derive(Debug)]
pub enum Judged {
    /// Accepted: author, tier, rate class and whether it was a heartbeat.
    Accepted {
        /// Who it is from.
        author: Author,
        /// The tier the validator gave it.
        tier: Tier,
        /// The rate class.
        rate_class: RateClass,
        /// A heartbeat (observer or signed).
        heartbeat: Option<bool>,
    },
    /// Ignored: no one's fault.
    Ignored,
    /// Rejected: the relay's fault.
    Rejected,
}

/// The relay of every message.
static RELAY: LazyLock<libp2p_identity::PeerId> =
    LazyLock::new(|| libp2p_identity::Keypair::ed25519_from_bytes([7; 32]).map_or_else(|_| libp2p_identity::PeerId::random(), |k| k.public().to_peer_id()));

/// Another peer, the publisher of what the relay only forwards.
static PUBLISHER: LazyLock<libp2p_identity::PeerId> =
    LazyLock::new(|| libp2p_identity::Keypair::ed25519_from_bytes([9; 32]).map_or_else(|_| libp2p_identity::PeerId::random(), |k| k.public().to_peer_id()));

/// The one call into the inbound policy (see the module docs).
fn judge(
    topic: Topic,
    data: &[u8],
    publisher: Option<libp2p_identity::PeerId>,
    ctx: &GossipContext<'_, MemoryRegistry>,
    policy: &mut InboundPolicy,
) -> Judged {
    let message = InboundMessage {
        topic: Some(topic),
        data,
        relay: *RELAY,
        publisher,
    };
    let decision = policy.handle_gossip(&message, ctx);
    crate::debug(|| format!("{topic}: {}", decision.label));
    let penalised = decision
        .relay_event
        .is_some_and(|e| e.points(&Default::default()) < 0.0);
    match decision.acceptance {
        Acceptance::Accept => {
            let accepted = decision.accepted.expect("an accept carries its message");
            assert!(!penalised, "an accepted message cost its relay");
            assert_eq!(accepted.topic, topic, "accepted on another topic");
            let heartbeat = match &accepted.payload {
                Payload::Meta(proto::MetaMessage {
                    kind: Some(meta_message::Kind::Heartbeat(hb)),
                }) => Some(hb.zsi_id.is_empty()),
                _ => None,
            };
            Judged::Accepted {
                author: accepted.author,
                tier: accepted.tier,
                rate_class: accepted.rate_class,
                heartbeat,
            }
        }
        Acceptance::Reject => {
            assert!(penalised, "a reject did not charge the relay");
            Judged::Rejected
        }
        Acceptance::Ignore => {
            assert!(!penalised || publisher == Some(*RELAY), "an ignore charged a forwarding relay");
            Judged::Ignored
        }
    }
}

/// The publish table of DESIGN.md: may `tier` (in the set or not) publish on `topic`?
fn may_publish(topic: Topic, tier: Tier, in_set: bool) -> bool {
    match topic {
        Topic::Meta => true,
        Topic::Proofs => tier >= Tier::TL1,
        Topic::Snapshots => tier >= Tier::TL2,
        Topic::Blocks | Topic::Votes => tier >= Tier::TL3 && in_set,
    }
}

fn registry_from(input: &mut Input<'_>, use_input: bool) -> MemoryRegistry {
    let w = &*WORLD;
    let mut registry = w.genesis.registry.clone();
    for member in w.members.iter().take(REGISTERED) {
        let (a, b) = (input.u8(), input.u8());
        if !use_input {
            continue;
        }
        let record = ReputationRecord {
            uptime_minutes: if a & 0x40 != 0 {
                24 * 60 + u64::from(a & 0x3f)
            } else {
                u64::from(a & 0x3f) * 22
            },
            participation: 0,
            score: SCORES[usize::from(b & 7)].saturating_add(u64::from(b >> 3)),
            slashed: a & 0x80 != 0,
        };
        registry.set_reputation(&member.zsi.zsi_id(), record);
    }
    registry
}

/// Runs one input; see the module docs.
pub fn run(data: &[u8]) {
    let w = &*WORLD;
    let mut input = Input::new(data);
    let topic = Topic::ALL[usize::from(input.u8()) % Topic::ALL.len()];
    let flags = input.u8();
    let clock = input.u8() as i8;
    let registry = registry_from(&mut input, flags & REGISTRY != 0);
    let message = input.rest();
    let fixed;
    let message = if flags & FIX != 0 {
        fixed = fix(topic, message);
        fixed.as_deref().unwrap_or(message)
    } else {
        message
    };
    let now_ms = NOW_MS.saturating_add_signed(i64::from(clock) * 1_000);
    let thresholds = w.genesis.thresholds;
    let ctx = GossipContext {
        network: &w.network,
        registry: &registry,
        thresholds: &thresholds,
        validators: &w.set,
        policy: &w.policy,
        head_height: u64::from(flags >> 4),
        head_hash: None,
        windows: Windows::default(),
        now_ms,
        max_clock_skew_ms: SKEW_MS,
    };
    let publisher = if flags & NO_SOURCE != 0 {
        None
    } else if clock & 1 != 0 {
        Some(*RELAY)
    } else {
        Some(*PUBLISHER)
    };
    let mut policy = InboundPolicy::default();
    let first = judge(topic, message, publisher, &ctx, &mut policy);
    check(topic, &first, &registry);
    if flags & TWICE != 0 {
        let second = judge(topic, message, publisher, &ctx, &mut policy);
        check(topic, &second, &registry);
        if let (Judged::Accepted { .. }, Judged::Accepted { .. }) = (&first, &second) {
            panic!("a message was accepted twice");
        }
    }
    // A reject of forwarded content must hold in every view: under the
    // genesis registry, another clock and another head it is never accepted.
    if matches!(first, Judged::Rejected) && publisher == Some(*PUBLISHER) {
        let genesis_registry = w.genesis.registry.clone();
        for (shift_s, head) in [(-90i64, 0u64), (45, 7), (0, 15)] {
            let other = GossipContext {
                registry: &genesis_registry,
                head_height: head,
                now_ms: NOW_MS.saturating_add_signed(shift_s * 1_000),
                ..ctx
            };
            let again = judge(topic, message, publisher, &other, &mut InboundPolicy::default());
            assert!(
                !matches!(again, Judged::Accepted { .. }),
                "{topic}: rejected from a forwarder, yet accepted under another view"
            );
        }
    }
}

fn check(topic: Topic, judged: &Judged, registry: &MemoryRegistry) {
    let w = &*WORLD;
    let Judged::Accepted {
        author,
        tier,
        rate_class,
        heartbeat,
    } = judged
    else {
        return;
    };
    match author {
        Author::Zsi(id) => {
            let record = registry.lookup(id).expect("accepted from an unregistered author");
            let expected = tier_of(Some(&record.reputation), &w.genesis.thresholds);
            assert_eq!(*tier, expected, "accepted with a tier that is not the registry's");
            assert!(
                may_publish(topic, expected, w.set.contains(id)),
                "{topic} accepted from {expected} (in set: {})",
                w.set.contains(id)
            );
            let class = if expected == Tier::TL0 {
                RateClass::Observer
            } else {
                RateClass::Participant
            };
            assert_eq!(*rate_class, class);
            assert_ne!(*heartbeat, Some(true), "a heartbeat without ZSI accepted as signed");
        }
        Author::Observer => {
            assert_eq!(topic, Topic::Meta, "observer content accepted on {topic}");
            assert_eq!(
                *heartbeat,
                Some(true),
                "observer content that is not a ZSI-less heartbeat"
            );
            assert_eq!((*tier, *rate_class), (Tier::TL0, RateClass::Observer));
        }
        Author::Certified { signers } => {
            assert!(
                matches!(topic, Topic::Blocks | Topic::Votes),
                "certified content on {topic}"
            );
            assert!(*signers >= 1);
        }
    }
}

/// Re-signs the decoded message with the fixture keys of the authors it
/// names; `None` if it does not decode.
fn fix(topic: Topic, data: &[u8]) -> Option<Vec<u8>> {
    let w = &*WORLD;
    Some(match topic {
        Topic::Blocks => {
            let mut m = decode::<proto::BlocksMessage>(data).ok()?;
            match &mut m.kind {
                Some(blocks_message::Kind::Proposal(p)) => {
                    if let Some(key) = w.consensus_key(&p.proposer) {
                        p.sign_with(key);
                    }
                }
                Some(blocks_message::Kind::Finalized(f)) => fix_finalized(f),
                None => {}
            }
            encode(&m)
        }
        Topic::Votes => {
            let mut m = decode::<proto::VotesMessage>(data).ok()?;
            match &mut m.kind {
                Some(votes_message::Kind::Vote(v)) => sign_vote(v),
                Some(votes_message::Kind::Polka(c)) => {
                    for s in &mut c.signatures {
                        sign_vote_signature(s, c.height, c.round);
                    }
                }
                Some(votes_message::Kind::RoundCertificate(c)) => {
                    for s in &mut c.signatures {
                        sign_vote_signature(s, c.height, c.round);
                    }
                }
                Some(votes_message::Kind::Evidence(e)) => {
                    for v in [&mut e.first, &mut e.second].into_iter().flatten() {
                        sign_vote(v);
                    }
                }
                None => {}
            }
            encode(&m)
        }
        Topic::Proofs => {
            let mut m = decode::<proto::ProofsMessage>(data).ok()?;
            if let Some(e) = &mut m.envelope
                && let Some(key) = w.identity_key(&e.submitter)
            {
                e.sign_with(key);
            }
            encode(&m)
        }
        Topic::Snapshots => {
            let mut m = decode::<proto::SnapshotsMessage>(data).ok()?;
            if let Some(a) = &mut m.announcement
                && let Some(key) = w.identity_key(&a.announcer)
            {
                a.sign_with(key);
            }
            encode(&m)
        }
        Topic::Meta => {
            let mut m = decode::<proto::MetaMessage>(data).ok()?;
            match &mut m.kind {
                Some(meta_message::Kind::Heartbeat(hb)) => {
                    if let Some(key) = w.identity_key(&hb.zsi_id) {
                        hb.sign_with(key);
                    }
                }
                Some(meta_message::Kind::Attestation(a)) => {
                    if let (Some(claim), Some(witness)) = (&a.claim, &mut a.witness)
                        && let (Some(key), Some(id)) =
                            (w.identity_key(&witness.witness), ZsiId::from_slice(&witness.witness))
                    {
                        *witness = sign_uptime_witness(claim, id.as_bytes(), witness.heartbeats_seen, key);
                    }
                }
                None => {}
            }
            encode(&m)
        }
    })
}

fn sign_vote(v: &mut proto::Vote) {
    if let Some(key) = WORLD.consensus_key(&v.validator) {
        v.sign_with(key);
    }
}

fn sign_vote_signature(s: &mut proto::VoteSignature, height: u64, round: u32) {
    let w = &*WORLD;
    let (Some(key), Some(id), Ok(vote_type)) = (
        w.consensus_key(&s.validator),
        ZsiId::from_slice(&s.validator),
        VoteType::try_from(s.vote_type),
    ) else {
        return;
    };
    let value = Hash32::from_slice(&s.block_hash);
    let mut vote = vote_for(vote_type, &w.network, height, round, value.as_ref(), &id);
    vote.sign_with(key);
    s.signature = vote.signature;
}

/// Points the commit at the block's header and re-signs its precommits.
fn fix_finalized(f: &mut proto::FinalizedBlock) {
    let w = &*WORLD;
    let Some(header) = f.block.as_ref().and_then(|b| b.header.as_ref()) else {
        return;
    };
    let hash = header_hash(header);
    let commit = f.commit.get_or_insert_with(Default::default);
    commit.block_hash = hash.as_bytes().to_vec();
    commit.height = header.height;
    commit.round = header.round;
    for s in &mut commit.signatures {
        if let (Some(key), Some(id)) = (w.consensus_key(&s.validator), ZsiId::from_slice(&s.validator)) {
            let mut vote = precommit_for(&w.network, header.height, header.round, Some(&hash), &id);
            vote.sign_with(key);
            s.signature = vote.signature;
        }
    }
}

/// A header for gossip seeds: the genesis flags ([`FIX`], so signatures are
/// made by the harness), clock 0, genesis reputations.
pub fn header(topic: Topic, flags: u8) -> Vec<u8> {
    let index = Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0) as u8;
    let mut out = vec![index, flags, 0];
    out.resize(HEADER_LEN, 0);
    out
}

fn id(i: usize) -> Vec<u8> {
    WORLD.members[i].zsi.zsi_id().as_bytes().to_vec()
}

/// One message per payload kind, authored by members allowed to publish it,
/// with zero signatures that [`FIX`] replaces by real ones.
pub fn seeds() -> Vec<Seed> {
    let w = &*WORLD;
    let net = w.network.as_str().to_owned();
    let set_hash = w.set.hash();
    let vote = |i: usize, vote_type: VoteType, value: Option<&Hash32>| {
        let id = ZsiId::from_slice(&id(i)).expect("32 bytes");
        let mut vote = vote_for(vote_type, &w.network, 5, 0, value, &id);
        vote.signature = vec![0; 64];
        vote
    };
    let block_hash = Hash32([0xab; 32]);
    let header = proto::Header {
        network_id: net.clone(),
        height: 5,
        round: 0,
        time_ms: NOW_MS - 5_000,
        prev_hash: vec![1; 32],
        proposer: id(0),
        validators_hash: set_hash.as_bytes().to_vec(),
        next_validators_hash: set_hash.as_bytes().to_vec(),
        state_root: vec![2; 32],
        proofs_root: vec![3; 32],
        chain_commitment: vec![4; 32],
    };
    let block = proto::Block {
        header: Some(header),
        ..Default::default()
    };
    let commit = proto::CommitCertificate {
        height: 5,
        block_hash: vec![0; 32],
        signatures: (0..3)
            .map(|i| proto::CommitSignature {
                validator: id(i),
                signature: vec![0; 64],
            })
            .collect(),
        ..Default::default()
    };
    let sigs = |vote_type: VoteType, value: Option<&Hash32>| -> Vec<proto::VoteSignature> {
        (0..3)
            .map(|i| proto::VoteSignature {
                validator: id(i),
                vote_type: vote_type as i32,
                block_hash: value.map(|h| h.as_bytes().to_vec()).unwrap_or_default(),
                signature: vec![0; 64],
            })
            .collect()
    };
    let heartbeat = |zsi_id: Vec<u8>, sequence: u64| proto::Heartbeat {
        network_id: net.clone(),
        signature: if zsi_id.is_empty() { Vec::new() } else { vec![0; 64] },
        zsi_id,
        height: 5,
        head_hash: vec![9; 32],
        time_ms: NOW_MS,
        sequence,
        agent: "tiernet-node/0.1.0".into(),
        ..Default::default()
    };
    let claim = proto::UptimeClaim {
        network_id: net.clone(),
        subject: id(6),
        from_height: 1,
        to_height: 4,
        heartbeats: 30,
    };
    let with = |topic: Topic, flags: u8, bytes: Vec<u8>| {
        let mut out = self::header(topic, flags);
        out.extend_from_slice(&bytes);
        out
    };
    let blocks = |kind| encode(&proto::BlocksMessage { kind: Some(kind) });
    let votes = |kind| {
        encode(&proto::VotesMessage {
            kind: Some(kind),
            ..Default::default()
        })
    };
    let meta = |kind| encode(&proto::MetaMessage { kind: Some(kind) });
    vec![
        (
            "proposal",
            with(
                Topic::Blocks,
                FIX,
                blocks(blocks_message::Kind::Proposal(proto::Proposal {
                    network_id: net.clone(),
                    height: 5,
                    round: 0,
                    pol_round_plus_one: 0,
                    block: Some(block.clone()),
                    proposer: id(0),
                    signature: vec![0; 64],
                })),
            ),
        ),
        (
            "finalized",
            with(
                Topic::Blocks,
                FIX,
                blocks(blocks_message::Kind::Finalized(proto::FinalizedBlock {
                    block: Some(block),
                    commit: Some(commit),
                })),
            ),
        ),
        (
            "vote",
            with(
                Topic::Votes,
                FIX,
                votes(votes_message::Kind::Vote(vote(
                    1,
                    VoteType::Precommit,
                    Some(&block_hash),
                ))),
            ),
        ),
        (
            "polka",
            with(
                Topic::Votes,
                FIX,
                votes(votes_message::Kind::Polka(proto::PolkaCertificate {
                    height: 5,
                    round: 0,
                    block_hash: block_hash.as_bytes().to_vec(),
                    signatures: sigs(VoteType::Prevote, Some(&block_hash)),
                })),
            ),
        ),
        (
            "round-certificate",
            with(
                Topic::Votes,
                FIX,
                votes(votes_message::Kind::RoundCertificate(proto::RoundCertificate {
                    height: 5,
                    round: 0,
                    kind: proto::RoundCertificateKind::Precommit as i32,
                    signatures: sigs(VoteType::Precommit, None),
                })),
            ),
        ),
        (
            "evidence",
            with(
                Topic::Votes,
                FIX,
                votes(votes_message::Kind::Evidence(proto::Evidence {
                    first: Some(vote(2, VoteType::Prevote, Some(&block_hash))),
                    second: Some(vote(2, VoteType::Prevote, None)),
                })),
            ),
        ),
        (
            "proof",
            with(
                Topic::Proofs,
                FIX,
                encode(&proto::ProofsMessage {
                    envelope: Some(proto::ProofEnvelope {
                        kind: "uptime/v1".into(),
                        statement: encode(&claim),
                        proof: vec![1, 2, 3],
                        submitter: id(6),
                        height: 5,
                        signature: vec![0; 64],
                    }),
                }),
            ),
        ),
        (
            "snapshot",
            with(
                Topic::Snapshots,
                FIX,
                encode(&proto::SnapshotsMessage {
                    announcement: Some(proto::SnapshotAnnouncement {
                        manifest: Some(proto::SnapshotManifest {
                            network_id: net.clone(),
                            height: 4,
                            state_root: vec![2; 32],
                            chunk_count: 1,
                            total_entries: 3,
                            chunk_hashes: vec![vec![5; 32]],
                        }),
                        announcer: id(5),
                        signature: vec![0; 64],
                    }),
                }),
            ),
        ),
        (
            "heartbeat",
            with(
                Topic::Meta,
                FIX | TWICE,
                meta(meta_message::Kind::Heartbeat(heartbeat(id(4), 7))),
            ),
        ),
        (
            "observer-heartbeat",
            with(
                Topic::Meta,
                TWICE,
                meta(meta_message::Kind::Heartbeat(heartbeat(Vec::new(), 1))),
            ),
        ),
        (
            "attestation",
            with(
                Topic::Meta,
                FIX | REGISTRY,
                meta(meta_message::Kind::Attestation(proto::UptimeAttestation {
                    claim: Some(claim.clone()),
                    witness: Some(proto::UptimeWitness {
                        witness: id(5),
                        heartbeats_seen: 30,
                        signature: vec![0; 64],
                    }),
                })),
            ),
        ),
    ]
}

/// The topic messages of [`seeds`], without the harness header.
pub fn messages() -> Vec<Vec<u8>> {
    seeds()
        .into_iter()
        .map(|(_, seed)| seed[HEADER_LEN..].to_vec())
        .collect()
}
