//! Validating a gossip message: from the bytes gossipsub hands over to a
//! [`Verdict`] with a reason.
//!
//! [`validate`] runs, in order and cheapest first:
//!
//! 1. **decode** with the topic's size cap and structural rules
//!    ([`crate::wire::decode`]);
//! 2. **network**: every network id the message carries is ours;
//! 3. **author**: who signed it, and whether we know them (a validator in
//!    the current set for `blocks`/`votes`, a registered identity elsewhere);
//! 4. **signature** by the author's key (consensus key for votes and
//!    proposals, identity key for everything else), or **certificate**
//!    verification for certified content (commits, polkas, round
//!    certificates, evidence);
//! 5. **admission**: [`AdmissionPolicy::may_publish`] with the author's tier
//!    from the registry (a slashed or unregistered identity is TL0);
//! 6. **freshness and replay** for heartbeats.
//!
//! Cheap state checks come before signatures: a message outside its
//! height window around our head ([`Windows`]) or a heartbeat outside the
//! clock skew is dropped before any signature is verified.
//!
//! | topic | payload | author | key | admission |
//! |---|---|---|---|---|
//! | `blocks` | proposal | validator (proposer) | consensus | TL3 + in set |
//! | `blocks` | finalized block | certified | commit certificate vs current set | certificate verifies |
//! | `votes` | vote | validator | consensus | TL3 + in set |
//! | `votes` | polka, round certificate, evidence | certified | certificate vs current set | certificate verifies |
//! | `proofs` | proof envelope | registered submitter (or a `stwo/v1` registrant: key from the statement) | identity | TL1 |
//! | `snapshots` | announcement | registered announcer | identity | TL2 |
//! | `meta` | heartbeat with ZSI | registered sender | identity | any tier |
//! | `meta` | heartbeat without ZSI | observer (the gossipsub source) | none | TL0, observer rate class |
//! | `meta` | uptime attestation | registered witness | identity | any tier |
//!
//! ## Who pays
//!
//! A [`Verdict::Reject`] is the propagation source's fault: report it
//! `Reject` to gossipsub and count [`RejectReason::peer_event`] against the
//! source. It is returned **only** for content that is invalid for every
//! receiver at every time: undecodable or non-canonical bytes, another
//! network, a bad signature by a key we hold, a certificate whose
//! signatures do not verify, a block body that contradicts its header.
//!
//! Everything that depends on the receiver's clock or state is a
//! [`Verdict::Ignore`] and costs no one: a time outside our skew, a height
//! outside our window, a sequence we have already seen, an author we do not
//! know (yet), a tier or validator-set membership that differs from the
//! relay's view (a registration or a slashing a block ago), a certificate
//! signed by a set we do not hold or short of power in ours. An honest
//! relay validated the message against its own state and cannot know what
//! the next hop thinks.
//!
//! The one exception is a message the propagation source published itself
//! ([`MessageSource::relay_published`]: it is the message's signed
//! GossipSub source, not a forwarder): an unknown or unauthorised author is
//! then its own doing, and a `Reject`.
//!
//! What this module does *not* check, because it belongs to other layers:
//! the propagation source's own tier (the node knows its peers' standings),
//! rate limits (the node applies [`Accepted::rate_class`]), chain rules of a
//! proposal's block (the consensus engine and state machine), the proof
//! kind's own verifier (the node's mempool), and that a block's body matches
//! the header's `proofs_root` (the application).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::admission::{AdmissionPolicy, Decision, DenyReason, Publisher, RateClass};
use crate::chain::{self, CertificateError};
use crate::hash::Hash32;
use crate::identity::ZsiId;
use crate::identity::registry::{IdentityRegistry, RegisteredIdentity};
use crate::reputation::PeerEvent;
use crate::tier::{Tier, TierThresholds, tier_of};
use crate::wire::proto::{self, blocks_message, meta_message, votes_message};
use crate::wire::sign::{SignedMessage, header_hash, message_id, validators_hash, verify_uptime_witness};
use crate::wire::{DecodeError, FieldError, FieldProblem, NetworkId, Topic, decode, encode};

/// Everything [`validate`] needs to know about the world, borrowed.
#[derive(Debug)]
pub struct GossipContext<'a, R: IdentityRegistry> {
    /// Our network.
    pub network: &'a NetworkId,
    /// Registered identities and their reputation (chain state).
    pub registry: &'a R,
    /// The tier function's thresholds (genesis).
    pub thresholds: &'a TierThresholds,
    /// The current validator set: signs proposals and votes, certifies
    /// finalized blocks and certificates.
    pub validators: &'a chain::ValidatorSet,
    /// The publish policy.
    pub policy: &'a AdmissionPolicy,
    /// The height of our last decided block (0 at genesis): the centre of
    /// every height window.
    pub head_height: u64,
    /// The hash of the block at `head_height`, when we hold it: further
    /// announcements of it are dropped before their signatures are checked.
    pub head_hash: Option<Hash32>,
    /// The height windows around `head_height`.
    pub windows: Windows,
    /// Now, in ms since the Unix epoch.
    pub now_ms: u64,
    /// How far a heartbeat's `time_ms` (or a vote rebroadcast's
    /// `rebroadcast_ms`) may be from `now_ms`, either way.
    pub max_clock_skew_ms: u64,
}

/// How far from our head each kind of message may be.
///
/// Below a window a message is old: dropped cheaply (before any signature
/// check) as [`IgnoreReason::Old`], so an authentic old block, vote or
/// announcement cannot be re-injected as new work. Above it, a message is
/// of no use yet; once its signature verifies it is ignored as
/// [`IgnoreReason::Ahead`], which tells the node it is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Votes (and polka and round certificates) this far below the height
    /// being decided are still taken: the double-sign detector compares
    /// recent heights.
    pub votes_behind: u64,
    /// Evidence this far below the height being decided is still taken.
    pub evidence_behind: u64,
    /// Snapshot announcements of a manifest this far below our head.
    pub snapshots_behind: u64,
    /// Uptime attestations whose window ended this far below our head.
    pub attestations_behind: u64,
    /// Proof envelopes this far from our head, either way.
    pub proofs_around: u64,
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            votes_behind: 16,
            evidence_behind: 64,
            snapshots_behind: 1024,
            attestations_behind: 3600,
            proofs_around: 600,
        }
    }
}

/// Where a message came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageSource<'a> {
    /// The gossipsub `source` field: the original publisher's PeerId bytes
    /// (signed by it; not the forwarding peer). Keys observer heartbeats.
    pub publisher: &'a [u8],
    /// Whether the propagation source (the peer that handed us the message)
    /// is its publisher, rather than a forwarder.
    pub relay_published: bool,
}

/// Who a message is from, as far as its signatures prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// No ZSI: an unsigned TL0 heartbeat. The gossipsub source is the author
    /// (the node rate-limits it by that source).
    Observer,
    /// A ZSI whose signature verified.
    Zsi(ZsiId),
    /// Content certified by validator signatures (finalized blocks, polkas,
    /// round certificates, evidence): whoever forwards it, the validators
    /// are its authors.
    Certified {
        /// Distinct validators whose signatures verified.
        signers: usize,
    },
}

impl Author {
    /// The author's ZSI, for [`Author::Zsi`].
    pub const fn zsi_id(&self) -> Option<ZsiId> {
        match self {
            Author::Zsi(id) => Some(*id),
            _ => None,
        }
    }
}

/// The decoded payload of an accepted message.
#[derive(Debug, Clone, PartialEq)]
// Accepted payloads are moved once into the application, never stored in
// bulk, so boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Payload {
    /// `blocks`.
    Blocks(proto::BlocksMessage),
    /// `votes`.
    Votes(proto::VotesMessage),
    /// `proofs`.
    Proofs(proto::ProofsMessage),
    /// `snapshots`.
    Snapshots(proto::SnapshotsMessage),
    /// `meta`.
    Meta(proto::MetaMessage),
}

impl Payload {
    /// The kind of message, for metrics: `proposal`, `finalized`, `vote`,
    /// `polka`, `round_certificate`, `evidence`, `proof`, `snapshot`,
    /// `heartbeat`, `uptime_attestation` (`empty` for a missing `oneof`,
    /// which decoding never lets through).
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Blocks(m) => match &m.kind {
                Some(blocks_message::Kind::Proposal(_)) => "proposal",
                Some(blocks_message::Kind::Finalized(_)) => "finalized",
                None => "empty",
            },
            Payload::Votes(m) => match &m.kind {
                Some(votes_message::Kind::Vote(_)) => "vote",
                Some(votes_message::Kind::Polka(_)) => "polka",
                Some(votes_message::Kind::RoundCertificate(_)) => "round_certificate",
                Some(votes_message::Kind::Evidence(_)) => "evidence",
                None => "empty",
            },
            Payload::Proofs(_) => "proof",
            Payload::Snapshots(_) => "snapshot",
            Payload::Meta(m) => match &m.kind {
                Some(meta_message::Kind::Heartbeat(_)) => "heartbeat",
                Some(meta_message::Kind::Attestation(_)) => "uptime_attestation",
                None => "empty",
            },
        }
    }
}

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The topic it came on.
    pub topic: Topic,
    /// Who it is from.
    pub author: Author,
    /// The author's tier from the registry. For [`Author::Certified`] content
    /// this is the topic's minimum tier: the validators that certified it
    /// hold publish rights there by the chain rules.
    pub tier: Tier,
    /// How the node should rate-limit it.
    pub rate_class: RateClass,
    /// The decoded message.
    pub payload: Payload,
}

/// The outcome of [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Deliver and forward.
    Accept(Box<Accepted>),
    /// Invalid or unauthorised: drop, report `Reject`, penalise the source.
    Reject(RejectReason),
    /// Not usable here but not the sender's fault: drop, report `Ignore`.
    Ignore(IgnoreReason),
}

impl Verdict {
    /// `accept`, or the reason's label.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Accept(_) => "accept",
            Verdict::Reject(reason) => reason.label(),
            Verdict::Ignore(reason) => reason.label(),
        }
    }

    /// The accepted message, if accepted.
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Verdict::Accept(accepted) => Some(accepted),
            _ => None,
        }
    }
}

/// Why a message is rejected: the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Over the size cap, not protobuf, or breaking the schema's rules.
    #[error("undecodable: {0}")]
    Decode(DecodeError),
    /// A network id that is not ours.
    #[error("message is for network {found:?}, we are {expected:?}")]
    WrongNetwork {
        /// Our network.
        expected: String,
        /// The message's (truncated to 64 characters).
        found: String,
    },
    /// An author we have no record of, in a message its relay published
    /// itself (relayed by anyone else, this is an
    /// [`IgnoreReason::UnknownAuthor`]).
    #[error("author {0} is not registered")]
    UnknownAuthor(ZsiId),
    /// The author's signature does not verify.
    #[error("{what} signature by {author} does not verify")]
    BadSignature {
        /// What was signed (`proposal`, `vote`, `proof envelope`, …).
        what: &'static str,
        /// The claimed author.
        author: ZsiId,
    },
    /// The author may not publish on this topic, and the peer that sent it
    /// to us published it itself (relayed by anyone else, this is an
    /// [`IgnoreReason::Unauthorised`]).
    #[error("{} may not publish: {reason}", show_author(.author))]
    Unauthorised {
        /// The author (`None`: an observer). For a proposal or vote by a
        /// non-member of the validator set this is the *claimed* author:
        /// there is no consensus key to check a signature with.
        author: Option<ZsiId>,
        /// Why not.
        reason: DenyReason,
    },
    /// A certificate (or evidence) whose signatures or structure are wrong
    /// for any validator set.
    #[error("certificate: {0}")]
    BadCertificate(CertificateError),
    /// A block whose body contradicts its header.
    #[error("block: {0}")]
    BadBlock(&'static str),
}

fn show_author(author: &Option<ZsiId>) -> String {
    match author {
        Some(id) => format!("author {id}"),
        None => "an observer".to_owned(),
    }
}

impl RejectReason {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            RejectReason::Decode(_) => "decode",
            RejectReason::WrongNetwork { .. } => "wrong_network",
            RejectReason::UnknownAuthor(_) => "unknown_author",
            RejectReason::BadSignature { .. } => "bad_signature",
            RejectReason::Unauthorised { .. } => "unauthorised",
            RejectReason::BadCertificate(_) => "bad_certificate",
            RejectReason::BadBlock(_) => "bad_block",
        }
    }

    /// The local reputation event to record against the propagation source.
    pub const fn peer_event(&self) -> PeerEvent {
        match self {
            RejectReason::Unauthorised { .. } => PeerEvent::UnauthorisedPublish,
            _ => PeerEvent::InvalidMessage,
        }
    }
}

/// Why a message is ignored: not the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    /// The same heartbeat as the last accepted one from its author (it came
    /// again by another path after gossipsub forgot its id).
    #[error("heartbeat {sequence} was already accepted")]
    Duplicate {
        /// Its sequence number.
        sequence: u64,
    },
    /// A finalized block signed by a validator set other than the current
    /// one: it may be valid, but cannot be checked here.
    #[error("block is signed by validator set {validators_hash}, not the current one")]
    UnknownValidatorSet {
        /// The set named by the header.
        validators_hash: Hash32,
    },
    /// An observer heartbeat without a usable gossipsub source (empty or
    /// longer than [`MAX_SOURCE_LEN`]): its sequence cannot be tracked.
    #[error("observer heartbeat without a usable source")]
    Unattributable,
    /// A heartbeat or vote rebroadcast whose time is too far from our clock.
    #[error("time {time_ms} is more than {max_skew_ms} ms from now ({now_ms})")]
    Stale {
        /// The message's time.
        time_ms: u64,
        /// Our time.
        now_ms: u64,
        /// The tolerance.
        max_skew_ms: u64,
    },
    /// A heartbeat sequence number at or below the last accepted one from
    /// the same author (with different content).
    #[error("sequence {sequence} is not above the last accepted {last}")]
    Replay {
        /// The message's sequence number.
        sequence: u64,
        /// The last accepted from this author.
        last: u64,
    },
    /// An author not in our registry (it may be registered in a block we do
    /// not have yet).
    #[error("author {0} is not registered here")]
    UnknownAuthor(ZsiId),
    /// An author whose tier or set membership here does not allow the
    /// topic, relayed by someone else (whose view may differ).
    #[error("{} may not publish here: {reason}", show_author(.author))]
    Unauthorised {
        /// The author.
        author: Option<ZsiId>,
        /// Why not.
        reason: DenyReason,
    },
    /// A certificate or evidence that fails against *our* validator set only
    /// (an unknown validator, too little power, more signers than our set
    /// has): another set may make it valid.
    #[error("certificate does not verify against our validator set: {0}")]
    NotOurSet(CertificateError),
    /// An announcement of the block we already decided at our head.
    #[error("block {height} is our head already")]
    Known {
        /// Its height.
        height: u64,
    },
    /// Below the kind's height window around our head: old.
    #[error("height {height} is below our window (from {low})")]
    Old {
        /// The message's height.
        height: u64,
        /// The lowest height taken.
        low: u64,
    },
    /// Above the kind's height window: authentic (its signatures verified)
    /// but of no use until we catch up.
    #[error("height {height} is ahead of our window (up to {high})")]
    Ahead {
        /// The message's height.
        height: u64,
        /// The highest height taken.
        high: u64,
        /// The height it shows to be finalized already: its own for a
        /// finalized block, the one below for a proposal or a vote.
        finalized: u64,
    },
}

impl IgnoreReason {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            IgnoreReason::Duplicate { .. } => "duplicate",
            IgnoreReason::UnknownValidatorSet { .. } => "unknown_validator_set",
            IgnoreReason::Unattributable => "unattributable",
            IgnoreReason::Stale { .. } => "stale",
            IgnoreReason::Replay { .. } => "replay",
            IgnoreReason::UnknownAuthor(_) => "unknown_author",
            IgnoreReason::Unauthorised { .. } => "unauthorised_relayed",
            IgnoreReason::NotOurSet(_) => "not_our_set",
            IgnoreReason::Known { .. } => "known",
            IgnoreReason::Old { .. } => "old",
            IgnoreReason::Ahead { .. } => "ahead",
        }
    }
}

enum Refusal {
    Reject(RejectReason),
    Ignore(IgnoreReason),
}

impl From<RejectReason> for Refusal {
    fn from(reason: RejectReason) -> Self {
        Refusal::Reject(reason)
    }
}

impl From<IgnoreReason> for Refusal {
    fn from(reason: IgnoreReason) -> Self {
        Refusal::Ignore(reason)
    }
}

impl From<CertificateError> for Refusal {
    /// A certificate error is the sender's fault unless another validator
    /// set could make the certificate valid.
    fn from(error: CertificateError) -> Self {
        match error {
            CertificateError::InsufficientPower { .. }
            | CertificateError::UnknownValidator { .. }
            | CertificateError::TooManySignatures { .. } => Refusal::Ignore(IgnoreReason::NotOurSet(error)),
            error => Refusal::Reject(RejectReason::BadCertificate(error)),
        }
    }
}

type Check<T> = Result<T, Refusal>;

/// Who, at what tier, under which rate class.
struct Admitted {
    author: Author,
    tier: Tier,
    rate_class: RateClass,
}

/// Validates one gossip message.
///
/// `source` says who published it (the gossipsub source, which keys the
/// replay state of observer heartbeats: they carry no ZSI) and which ZSI
/// the peer that handed it to us proved in its handshake. Messages with a
/// ZSI are keyed by it, so a heartbeat cannot be replayed through another
/// source.
///
/// `replay` is updated only when a heartbeat is accepted.
pub fn validate<R: IdentityRegistry>(
    topic: Topic,
    data: &[u8],
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
    replay: &mut ReplayGuard,
) -> Verdict {
    let result = match topic {
        Topic::Blocks => decoded(data).and_then(|m| blocks(&m, source, ctx).map(|a| (a, Payload::Blocks(m)))),
        Topic::Votes => decoded(data).and_then(|m| votes(&m, source, ctx).map(|a| (a, Payload::Votes(m)))),
        Topic::Proofs => decoded(data).and_then(|m| proofs(&m, source, ctx).map(|a| (a, Payload::Proofs(m)))),
        Topic::Snapshots => decoded(data).and_then(|m| snapshots(&m, source, ctx).map(|a| (a, Payload::Snapshots(m)))),
        Topic::Meta => decoded(data).and_then(|m| meta(&m, source, ctx, replay).map(|a| (a, Payload::Meta(m)))),
    };
    match result {
        Ok((admitted, payload)) => Verdict::Accept(Box::new(Accepted {
            topic,
            author: admitted.author,
            tier: admitted.tier,
            rate_class: admitted.rate_class,
            payload,
        })),
        Err(Refusal::Reject(reason)) => Verdict::Reject(reason),
        Err(Refusal::Ignore(reason)) => Verdict::Ignore(reason),
    }
}

fn decoded<M: crate::wire::WireMessage>(data: &[u8]) -> Check<M> {
    decode::<M>(data).map_err(|e| Refusal::Reject(RejectReason::Decode(e)))
}

/// A field the decoder should have caught; reported as a decode error, never a panic.
fn missing(message: &'static str, field: &str) -> Refusal {
    Refusal::Reject(RejectReason::Decode(DecodeError::Invalid {
        message,
        error: FieldError::new(field, FieldProblem::Missing),
    }))
}

fn zsi(bytes: &[u8], message: &'static str, field: &str) -> Check<ZsiId> {
    ZsiId::from_slice(bytes).ok_or_else(|| {
        Refusal::Reject(RejectReason::Decode(DecodeError::Invalid {
            message,
            error: FieldError::new(
                field,
                FieldProblem::WrongLength {
                    expected: 32,
                    actual: bytes.len(),
                },
            ),
        }))
    })
}

fn network<R: IdentityRegistry>(found: &str, ctx: &GossipContext<'_, R>) -> Check<()> {
    if found != ctx.network.as_str() {
        return Err(Refusal::Reject(RejectReason::WrongNetwork {
            expected: ctx.network.as_str().to_owned(),
            found: found.chars().take(64).collect(),
        }));
    }
    Ok(())
}

/// Where a height stands against the window `[low, high]`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Inside,
    Ahead { height: u64, high: u64 },
}

/// Whether a height is that of a finalized block or of one being decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Finalized,
    Deciding,
}

/// Old (below `low`) is refused at once, before any signature check;
/// ahead (above `high`) is noted, to be ignored once the signatures verify.
fn window(height: u64, low: u64, high: u64) -> Check<Position> {
    if height < low {
        return Err(IgnoreReason::Old { height, low }.into());
    }
    if height > high {
        return Ok(Position::Ahead { height, high });
    }
    Ok(Position::Inside)
}

/// After the signatures verified: an authentic message ahead of our window.
fn inside(position: Position, stage: Stage, admitted: Admitted) -> Check<Admitted> {
    match position {
        Position::Inside => Ok(admitted),
        Position::Ahead { height, high } => Err(IgnoreReason::Ahead {
            height,
            high,
            finalized: match stage {
                Stage::Finalized => height,
                Stage::Deciding => height.saturating_sub(1),
            },
        }
        .into()),
    }
}

/// The height being decided: one above our head.
fn live<R: IdentityRegistry>(ctx: &GossipContext<'_, R>) -> u64 {
    ctx.head_height.saturating_add(1)
}

/// Votes, polkas and round certificates: from `votes_behind` below the live
/// height to the one after it (core buffers the next height's votes).
fn vote_window<R: IdentityRegistry>(height: u64, ctx: &GossipContext<'_, R>) -> Check<Position> {
    let live = live(ctx);
    window(
        height,
        live.saturating_sub(ctx.windows.votes_behind),
        live.saturating_add(1),
    )
}

fn tier<R: IdentityRegistry>(id: &ZsiId, ctx: &GossipContext<'_, R>) -> Tier {
    tier_of(ctx.registry.lookup(id).map(|r| &r.reputation), ctx.thresholds)
}

fn registered<'r, R: IdentityRegistry>(
    id: &ZsiId,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'r, R>,
) -> Check<&'r RegisteredIdentity> {
    ctx.registry.lookup(id).ok_or_else(|| unknown(*id, source))
}

/// An author not in our registry: the sender's fault only when it published
/// the message itself.
fn unknown(id: ZsiId, source: &MessageSource<'_>) -> Refusal {
    if source.relay_published {
        Refusal::Reject(RejectReason::UnknownAuthor(id))
    } else {
        Refusal::Ignore(IgnoreReason::UnknownAuthor(id))
    }
}

/// A denied publish: the sender's fault only when it published the message
/// itself.
fn denied(author: Option<ZsiId>, reason: DenyReason, source: &MessageSource<'_>) -> Refusal {
    if source.relay_published {
        Refusal::Reject(RejectReason::Unauthorised { author, reason })
    } else {
        Refusal::Ignore(IgnoreReason::Unauthorised { author, reason })
    }
}

fn admit<R: IdentityRegistry>(
    topic: Topic,
    author: Option<ZsiId>,
    tier: Tier,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    let in_validator_set = author.is_some_and(|id| ctx.validators.contains(&id));
    match ctx.policy.may_publish(topic, Publisher { tier, in_validator_set }) {
        Decision::Allow(rate_class) => Ok(Admitted {
            author: author.map_or(Author::Observer, Author::Zsi),
            tier,
            rate_class,
        }),
        Decision::Deny(reason) => Err(denied(author, reason, source)),
    }
}

/// A proposal or vote: signed by a member of the current set with its
/// consensus key, then admitted with the member's tier.
fn consensus_message<R: IdentityRegistry, M: SignedMessage>(
    topic: Topic,
    what: &'static str,
    message: &M,
    author: ZsiId,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    let tier = tier(&author, ctx);
    let Some(member) = ctx.validators.get(&author) else {
        if ctx.registry.lookup(&author).is_none() {
            return Err(unknown(author, source));
        }
        // Registered but not a member here: there is no consensus key to
        // check a signature with, and no right to publish with our set.
        let reason = match ctx.policy.may_publish(
            topic,
            Publisher {
                tier,
                in_validator_set: false,
            },
        ) {
            Decision::Deny(reason) => reason,
            Decision::Allow(_) => DenyReason::NotInValidatorSet,
        };
        return Err(denied(Some(author), reason, source));
    };
    message
        .verify_with(member.consensus_key)
        .map_err(|_| RejectReason::BadSignature { what, author })?;
    admit(topic, Some(author), tier, source, ctx)
}

fn certified<R: IdentityRegistry>(topic: Topic, signers: usize, ctx: &GossipContext<'_, R>) -> Admitted {
    Admitted {
        author: Author::Certified { signers },
        tier: ctx.policy.rule(topic).min_tier,
        rate_class: RateClass::Participant,
    }
}

fn blocks<R: IdentityRegistry>(
    m: &proto::BlocksMessage,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    const NAME: &str = "BlocksMessage";
    match &m.kind {
        Some(blocks_message::Kind::Proposal(p)) => {
            network(&p.network_id, ctx)?;
            let header = p
                .block
                .as_ref()
                .and_then(|b| b.header.as_ref())
                .ok_or_else(|| missing(NAME, "proposal.block.header"))?;
            network(&header.network_id, ctx)?;
            // The live height, or the next one (kept until its parent is decided).
            let live = live(ctx);
            let position = window(p.height, live, live.saturating_add(1))?;
            let proposer = zsi(&p.proposer, NAME, "proposal.proposer")?;
            let admitted = consensus_message(Topic::Blocks, "proposal", p, proposer, source, ctx)?;
            inside(position, Stage::Deciding, admitted)
        }
        Some(blocks_message::Kind::Finalized(f)) => finalized(f, ctx),
        None => Err(missing(NAME, "kind")),
    }
}

fn finalized<R: IdentityRegistry>(f: &proto::FinalizedBlock, ctx: &GossipContext<'_, R>) -> Check<Admitted> {
    const NAME: &str = "BlocksMessage";
    let block = f.block.as_ref().ok_or_else(|| missing(NAME, "finalized.block"))?;
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| missing(NAME, "finalized.block.header"))?;
    let commit = f.commit.as_ref().ok_or_else(|| missing(NAME, "finalized.commit"))?;
    network(&header.network_id, ctx)?;
    // Our head (relayed on for light clients that follow `blocks`) or the next block.
    let position = window(header.height, ctx.head_height, ctx.head_height.saturating_add(1))?;
    // Internal consistency first: these are the sender's fault whatever the set.
    let hash = header_hash(header);
    // Every node announces the block it decided: once we hold it, another
    // announcement of it is news to nobody we would forward to, and its
    // commit would cost a quorum of signature checks. Dropped before them
    // (a commit for another block at our height is still checked: a fork).
    if header.height == ctx.head_height
        && ctx.head_hash == Some(hash)
        && commit.block_hash.as_slice() == hash.as_bytes()
    {
        return Err(IgnoreReason::Known { height: header.height }.into());
    }
    if commit.block_hash.as_slice() != hash.as_bytes() {
        return Err(CertificateError::WrongBlock {
            expected: hash,
            found: Hash32::from_slice(&commit.block_hash),
        }
        .into());
    }
    if commit.height != header.height {
        return Err(CertificateError::WrongHeight {
            expected: header.height,
            found: commit.height,
        }
        .into());
    }
    // A block proposed in one round may be decided in a later one (a
    // re-proposed valid value keeps its header): the same rule as
    // `chain::verify_header_commit`, so no honest relay pays for it.
    if commit.round < header.round {
        return Err(CertificateError::WrongRound {
            expected: header.round,
            found: commit.round,
        }
        .into());
    }
    if let Some(next) = &block.next_validators
        && validators_hash(next).as_bytes() != header.next_validators_hash.as_slice()
    {
        return Err(RejectReason::BadBlock("next_validators does not hash to header.next_validators_hash").into());
    }
    if header.validators_hash.as_slice() != ctx.validators.hash().as_bytes() {
        let validators_hash = Hash32::from_slice(&header.validators_hash).unwrap_or_default();
        return Err(IgnoreReason::UnknownValidatorSet { validators_hash }.into());
    }
    // The header names the set and it is ours: every certificate error is
    // the block's own, whoever checks it.
    let summary = chain::verify_commit(commit, ctx.validators, ctx.network)
        .map_err(|e| Refusal::Reject(RejectReason::BadCertificate(e)))?;
    inside(
        position,
        Stage::Finalized,
        certified(Topic::Blocks, summary.signers.len(), ctx),
    )
}

fn votes<R: IdentityRegistry>(
    m: &proto::VotesMessage,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    const NAME: &str = "VotesMessage";
    match &m.kind {
        Some(votes_message::Kind::Vote(v)) => {
            network(&v.network_id, ctx)?;
            let position = vote_window(v.height, ctx)?;
            if m.rebroadcast_ms != 0 {
                fresh(m.rebroadcast_ms, ctx)?;
            }
            let voter = zsi(&v.validator, NAME, "vote.validator")?;
            let admitted = consensus_message(Topic::Votes, "vote", v, voter, source, ctx)?;
            if m.rebroadcast_ms != 0
                && let Some(member) = ctx.validators.get(&voter)
            {
                // Only the voter may re-stamp its vote.
                m.verify_with(member.consensus_key)
                    .map_err(|_| RejectReason::BadSignature {
                        what: "vote rebroadcast",
                        author: voter,
                    })?;
            }
            inside(position, Stage::Deciding, admitted)
        }
        Some(votes_message::Kind::Polka(c)) => {
            let position = vote_window(c.height, ctx)?;
            let summary = chain::verify_polka(c, ctx.validators, ctx.network)?;
            inside(
                position,
                Stage::Deciding,
                certified(Topic::Votes, summary.signers.len(), ctx),
            )
        }
        Some(votes_message::Kind::RoundCertificate(c)) => {
            let position = vote_window(c.height, ctx)?;
            let summary = chain::verify_round_certificate(c, ctx.validators, ctx.network)?;
            inside(
                position,
                Stage::Deciding,
                certified(Topic::Votes, summary.signers.len(), ctx),
            )
        }
        Some(votes_message::Kind::Evidence(e)) => {
            let height = e.first.as_ref().map_or(0, |v| v.height);
            let live = live(ctx);
            let position = window(
                height,
                live.saturating_sub(ctx.windows.evidence_behind),
                live.saturating_add(1),
            )?;
            chain::verify_evidence(e, ctx.validators, ctx.network)?;
            inside(position, Stage::Deciding, certified(Topic::Votes, 1, ctx))
        }
        None => Err(missing(NAME, "kind")),
    }
}

fn proofs<R: IdentityRegistry>(
    m: &proto::ProofsMessage,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    const NAME: &str = "ProofsMessage";
    let envelope = m.envelope.as_ref().ok_or_else(|| missing(NAME, "envelope"))?;
    let around = ctx.windows.proofs_around;
    let position = window(
        envelope.height,
        ctx.head_height.saturating_sub(around),
        ctx.head_height.saturating_add(around),
    )?;
    let submitter = zsi(&envelope.submitter, NAME, "envelope.submitter")?;
    // A `stwo/v1` registration comes from an identity not registered yet:
    // its key is in the statement (and derives its id). It is admitted as
    // the TL1 it asks to become; its STARK is verified next, against chain
    // state and under the verification budget (proof::stwo).
    let (key, submitter_tier) = match ctx.registry.lookup(&submitter) {
        Some(identity) => (identity.public.identity_key, tier(&submitter, ctx)),
        None => match crate::proof::program::registration_public(envelope, None) {
            Some(public) => (public.identity_key, Tier::TL1),
            None => return Err(unknown(submitter, source)),
        },
    };
    envelope.verify_with(&key).map_err(|_| RejectReason::BadSignature {
        what: "proof envelope",
        author: submitter,
    })?;
    let admitted = admit(Topic::Proofs, Some(submitter), submitter_tier, source, ctx)?;
    inside(position, Stage::Deciding, admitted)
}

fn snapshots<R: IdentityRegistry>(
    m: &proto::SnapshotsMessage,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
) -> Check<Admitted> {
    const NAME: &str = "SnapshotsMessage";
    let announcement = m.announcement.as_ref().ok_or_else(|| missing(NAME, "announcement"))?;
    let manifest = announcement
        .manifest
        .as_ref()
        .ok_or_else(|| missing(NAME, "announcement.manifest"))?;
    network(&manifest.network_id, ctx)?;
    let position = window(
        manifest.height,
        ctx.head_height.saturating_sub(ctx.windows.snapshots_behind),
        ctx.head_height.saturating_add(1),
    )?;
    let announcer = zsi(&announcement.announcer, NAME, "announcement.announcer")?;
    let identity = registered(&announcer, source, ctx)?;
    announcement
        .verify_with(&identity.public.identity_key)
        .map_err(|_| RejectReason::BadSignature {
            what: "snapshot announcement",
            author: announcer,
        })?;
    let admitted = admit(Topic::Snapshots, Some(announcer), tier(&announcer, ctx), source, ctx)?;
    inside(position, Stage::Deciding, admitted)
}

fn meta<R: IdentityRegistry>(
    m: &proto::MetaMessage,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
    replay: &mut ReplayGuard,
) -> Check<Admitted> {
    const NAME: &str = "MetaMessage";
    match &m.kind {
        Some(meta_message::Kind::Heartbeat(hb)) => heartbeat(hb, source, ctx, replay),
        Some(meta_message::Kind::Attestation(a)) => {
            let claim = a.claim.as_ref().ok_or_else(|| missing(NAME, "attestation.claim"))?;
            let witness = a.witness.as_ref().ok_or_else(|| missing(NAME, "attestation.witness"))?;
            network(&claim.network_id, ctx)?;
            let position = window(
                claim.to_height,
                ctx.head_height.saturating_sub(ctx.windows.attestations_behind),
                ctx.head_height.saturating_add(1),
            )?;
            let witness_id = zsi(&witness.witness, NAME, "attestation.witness.witness")?;
            let identity = registered(&witness_id, source, ctx)?;
            verify_uptime_witness(claim, witness, &identity.public.identity_key).map_err(|_| {
                RejectReason::BadSignature {
                    what: "uptime witness",
                    author: witness_id,
                }
            })?;
            let admitted = admit(Topic::Meta, Some(witness_id), tier(&witness_id, ctx), source, ctx)?;
            inside(position, Stage::Deciding, admitted)
        }
        None => Err(missing(NAME, "kind")),
    }
}

/// `time_ms` is within the clock skew of now (replay protection for
/// messages that carry a send time). Outside it, the message is ignored:
/// whether it is fresh depends on our clock, not on the message alone.
fn fresh<R: IdentityRegistry>(time_ms: u64, ctx: &GossipContext<'_, R>) -> Check<()> {
    if time_ms.abs_diff(ctx.now_ms) > ctx.max_clock_skew_ms {
        return Err(IgnoreReason::Stale {
            time_ms,
            now_ms: ctx.now_ms,
            max_skew_ms: ctx.max_clock_skew_ms,
        }
        .into());
    }
    Ok(())
}

fn heartbeat<R: IdentityRegistry>(
    hb: &proto::Heartbeat,
    source: &MessageSource<'_>,
    ctx: &GossipContext<'_, R>,
    replay: &mut ReplayGuard,
) -> Check<Admitted> {
    network(&hb.network_id, ctx)?;
    fresh(hb.time_ms, ctx)?;
    let (key, admitted) = if hb.zsi_id.is_empty() {
        if source.publisher.is_empty() || source.publisher.len() > MAX_SOURCE_LEN {
            return Err(IgnoreReason::Unattributable.into());
        }
        let admitted = admit(Topic::Meta, None, Tier::TL0, source, ctx)?;
        (ReplayKey::Source(source.publisher.to_vec()), admitted)
    } else {
        let author = zsi(&hb.zsi_id, "MetaMessage", "heartbeat.zsi_id")?;
        let identity = registered(&author, source, ctx)?;
        hb.verify_with(&identity.public.identity_key)
            .map_err(|_| RejectReason::BadSignature {
                what: "heartbeat",
                author,
            })?;
        let admitted = admit(Topic::Meta, Some(author), tier(&author, ctx), source, ctx)?;
        (ReplayKey::Zsi(author), admitted)
    };
    // Decoding accepts only the canonical encoding, so the same heartbeat
    // always has the same fingerprint.
    let fingerprint = message_id(&encode(hb));
    replay
        .check_heartbeat(&key, hb.sequence, &fingerprint, ctx.now_ms)
        .map_err(|e| match e {
            ReplayError::Duplicate { sequence } => IgnoreReason::Duplicate { sequence },
            // Which sequence we saw last is our state: a relay may not have
            // seen the newer one.
            ReplayError::Replay { sequence, last } => IgnoreReason::Replay { sequence, last },
        })?;
    Ok(admitted)
}

/// Longest gossipsub source accepted as an observer's replay key (a PeerId
/// is at most ~70 bytes).
pub const MAX_SOURCE_LEN: usize = 128;

/// Whose heartbeat sequence numbers are tracked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplayKey {
    /// A heartbeat signed by a ZSI, whoever forwarded it.
    Zsi(ZsiId),
    /// An observer's unsigned heartbeat: the gossipsub source PeerId bytes
    /// (at most [`MAX_SOURCE_LEN`]).
    Source(Vec<u8>),
}

impl fmt::Display for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayKey::Zsi(id) => write!(f, "zsi {id}"),
            ReplayKey::Source(bytes) => write!(f, "source {}", hex::encode(bytes)),
        }
    }
}

/// A heartbeat that does not advance its author's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The very heartbeat last accepted from this author.
    #[error("heartbeat {sequence} was already accepted")]
    Duplicate {
        /// Its sequence.
        sequence: u64,
    },
    /// A sequence at or below the last accepted one, with other content.
    #[error("sequence {sequence} is not above the last accepted {last}")]
    Replay {
        /// The message's sequence.
        sequence: u64,
        /// The last accepted.
        last: u64,
    },
}

#[derive(Debug, Clone)]
struct Seen {
    sequence: u64,
    fingerprint: Hash32,
    updated_ms: u64,
    tick: u64,
}

/// A bounded map from author to its last accepted heartbeat, evicting the
/// least recently updated author when full.
#[derive(Debug, Clone)]
struct Lru {
    entries: HashMap<ReplayKey, Seen>,
    /// tick → key, oldest first.
    order: BTreeMap<u64, ReplayKey>,
    max: usize,
}

impl Lru {
    fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            max: max.max(1),
        }
    }

    fn upsert(&mut self, key: &ReplayKey, seen: Seen) {
        if let Some(old) = self.entries.get(key) {
            self.order.remove(&old.tick);
        } else if self.entries.len() >= self.max
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.order.insert(seen.tick, key.clone());
        self.entries.insert(key.clone(), seen);
    }
}

/// Last accepted heartbeat sequence per author, bounded and pure.
///
/// Identities and observers are tracked in separate maps so that a flood of
/// fresh observer sources cannot evict registered identities. When a map is
/// full the least recently updated author is forgotten; a heartbeat of a
/// forgotten author can then be replayed once, but only within the
/// freshness window (`max_clock_skew_ms`), so memory stays bounded without
/// opening old heartbeats to replay. The node persists the windows
/// ([`ReplayGuard::take_changed`], [`ReplayGuard::restore`]) in batches, so
/// that a restart does not reopen them.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    identities: Lru,
    observers: Lru,
    tick: u64,
    /// Authors updated since the last [`ReplayGuard::take_changed`]
    /// (bounded by the two maps' capacities: only tracked authors).
    changed: std::collections::HashSet<ReplayKey>,
}

/// One author's replay window, as persisted: the last accepted heartbeat's
/// sequence and fingerprint, and when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The author.
    pub author: ReplayKey,
    /// The last accepted sequence.
    pub sequence: u64,
    /// The fingerprint of that heartbeat.
    pub fingerprint: Hash32,
    /// When it was accepted (ms).
    pub updated_ms: u64,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_CAPACITY)
    }
}

impl ReplayGuard {
    /// Default number of authors tracked per kind (identities, observers).
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A guard tracking at most `max_identities` ZSI authors and
    /// `max_observers` observer sources (each at least 1).
    pub fn new(max_identities: usize, max_observers: usize) -> Self {
        Self {
            identities: Lru::new(max_identities),
            observers: Lru::new(max_observers),
            tick: 0,
            changed: std::collections::HashSet::new(),
        }
    }

    /// The windows of the authors updated since the last call (still
    /// tracked ones only), and forgets that they changed.
    pub fn take_changed(&mut self) -> Vec<ReplayEntry> {
        let changed = std::mem::take(&mut self.changed);
        let mut out: Vec<ReplayEntry> = changed
            .into_iter()
            .filter_map(|author| {
                let seen = self.map(&author).entries.get(&author)?;
                Some(ReplayEntry {
                    sequence: seen.sequence,
                    fingerprint: seen.fingerprint,
                    updated_ms: seen.updated_ms,
                    author,
                })
            })
            .collect();
        out.sort_by_key(|e| e.updated_ms);
        out
    }

    /// Every tracked author's window, least recently updated first.
    pub fn entries(&self) -> Vec<ReplayEntry> {
        let mut out: Vec<(u64, ReplayEntry)> = Vec::with_capacity(self.len());
        for map in [&self.identities, &self.observers] {
            for (author, seen) in &map.entries {
                out.push((
                    seen.tick,
                    ReplayEntry {
                        author: author.clone(),
                        sequence: seen.sequence,
                        fingerprint: seen.fingerprint,
                        updated_ms: seen.updated_ms,
                    },
                ));
            }
        }
        out.sort_by_key(|(tick, _)| *tick);
        out.into_iter().map(|(_, e)| e).collect()
    }

    /// Takes persisted windows back after a restart (oldest first, so the
    /// most recent stay when there are more than fit); an author already
    /// tracked keeps the higher sequence. Restored windows are not
    /// reported as changed.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = ReplayEntry>) {
        let mut entries: Vec<ReplayEntry> = entries.into_iter().collect();
        entries.sort_by_key(|e| e.updated_ms);
        for entry in entries {
            if let ReplayKey::Source(bytes) = &entry.author
                && bytes.len() > MAX_SOURCE_LEN
            {
                continue;
            }
            if self
                .map(&entry.author)
                .entries
                .get(&entry.author)
                .is_some_and(|seen| seen.sequence >= entry.sequence)
            {
                continue;
            }
            self.tick = self.tick.wrapping_add(1);
            let seen = Seen {
                sequence: entry.sequence,
                fingerprint: entry.fingerprint,
                updated_ms: entry.updated_ms,
                tick: self.tick,
            };
            match &entry.author {
                ReplayKey::Zsi(_) => self.identities.upsert(&entry.author, seen),
                ReplayKey::Source(_) => self.observers.upsert(&entry.author, seen),
            }
        }
    }

    fn map(&self, author: &ReplayKey) -> &Lru {
        match author {
            ReplayKey::Zsi(_) => &self.identities,
            ReplayKey::Source(_) => &self.observers,
        }
    }

    /// Accepts `sequence` from `author` if it is strictly greater than the
    /// last accepted one (or the author is new) and records it. The same
    /// heartbeat again (same sequence and `fingerprint`) is a
    /// [`ReplayError::Duplicate`]; any other sequence at or below the last is
    /// a [`ReplayError::Replay`]. Nothing is recorded on error.
    pub fn check_heartbeat(
        &mut self,
        author: &ReplayKey,
        sequence: u64,
        fingerprint: &Hash32,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        if let Some(seen) = self.map(author).entries.get(author)
            && sequence <= seen.sequence
        {
            if sequence == seen.sequence && *fingerprint == seen.fingerprint {
                return Err(ReplayError::Duplicate { sequence });
            }
            return Err(ReplayError::Replay {
                sequence,
                last: seen.sequence,
            });
        }
        self.tick = self.tick.wrapping_add(1);
        let seen = Seen {
            sequence,
            fingerprint: *fingerprint,
            updated_ms: now_ms,
            tick: self.tick,
        };
        match author {
            ReplayKey::Zsi(_) => self.identities.upsert(author, seen),
            ReplayKey::Source(_) => self.observers.upsert(author, seen),
        }
        if self.changed.len() < self.identities.max.saturating_add(self.observers.max) {
            self.changed.insert(author.clone());
        }
        Ok(())
    }

    /// The last accepted sequence of `author` and when it was accepted (`now_ms` then).
    pub fn last(&self, author: &ReplayKey) -> Option<(u64, u64)> {
        self.map(author)
            .entries
            .get(author)
            .map(|seen| (seen.sequence, seen.updated_ms))
    }

    /// Forgets `author`.
    pub fn forget(&mut self, author: &ReplayKey) {
        let map = match author {
            ReplayKey::Zsi(_) => &mut self.identities,
            ReplayKey::Source(_) => &mut self.observers,
        };
        if let Some(seen) = map.entries.remove(author) {
            map.order.remove(&seen.tick);
        }
    }

    /// Number of authors tracked.
    pub fn len(&self) -> usize {
        self.identities.entries.len() + self.observers.entries.len()
    }

    /// True when no author is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zsi_key(seed: u8) -> ReplayKey {
        ReplayKey::Zsi(ZsiId(Hash32([seed; 32])))
    }

    #[test]
    fn sequences_must_increase() {
        let mut guard = ReplayGuard::default();
        let a = zsi_key(1);
        let (f1, f2) = (Hash32([1; 32]), Hash32([2; 32]));
        assert_eq!(guard.check_heartbeat(&a, 5, &f1, 0), Ok(()));
        assert_eq!(
            guard.check_heartbeat(&a, 5, &f1, 1),
            Err(ReplayError::Duplicate { sequence: 5 })
        );
        assert_eq!(
            guard.check_heartbeat(&a, 5, &f2, 1),
            Err(ReplayError::Replay { sequence: 5, last: 5 })
        );
        assert_eq!(
            guard.check_heartbeat(&a, 4, &f2, 1),
            Err(ReplayError::Replay { sequence: 4, last: 5 })
        );
        assert_eq!(guard.check_heartbeat(&a, 6, &f2, 2), Ok(()));
        assert_eq!(guard.last(&a), Some((6, 2)));
        // Another author has its own sequence.
        assert_eq!(guard.check_heartbeat(&zsi_key(2), 0, &f1, 2), Ok(()));
        // Sources and identities are separate even with equal bytes.
        let source = ReplayKey::Source(vec![1; 32]);
        assert_eq!(guard.check_heartbeat(&source, 0, &f1, 2), Ok(()));
        assert_eq!(guard.len(), 3);
        guard.forget(&a);
        assert_eq!(guard.check_heartbeat(&a, 1, &f1, 3), Ok(()));
    }

    #[test]
    fn bounded_least_recently_updated_first_and_observers_cannot_evict_identities() {
        let mut guard = ReplayGuard::new(3, 2);
        let f = Hash32::ZERO;
        for seed in 1..=3 {
            guard.check_heartbeat(&zsi_key(seed), 10, &f, 0).unwrap();
        }
        // Refresh 1, so 2 is the least recently updated.
        guard.check_heartbeat(&zsi_key(1), 11, &f, 1).unwrap();
        guard.check_heartbeat(&zsi_key(4), 10, &f, 2).unwrap();
        assert_eq!(guard.last(&zsi_key(2)), None);
        assert!(guard.last(&zsi_key(1)).is_some());
        assert!(guard.last(&zsi_key(3)).is_some());
        for i in 0..1000u32 {
            let source = ReplayKey::Source(i.to_be_bytes().to_vec());
            guard.check_heartbeat(&source, 1, &f, 3).unwrap();
        }
        assert_eq!(guard.len(), 5);
        assert!(guard.last(&zsi_key(1)).is_some());
        assert!(guard.check_heartbeat(&zsi_key(4), 9, &f, 4).is_err());
    }
}
