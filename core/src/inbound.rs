//! The inbound policy: what a node does with one gossip message, decided
//! without IO.
//!
//! [`InboundPolicy::handle_gossip`] takes the message, the peer that handed
//! it over (the *relay*, GossipSub's propagation source), the node's local
//! view ([`GossipContext`]) and `now`, and returns a [`Decision`]: the
//! acceptance to report to GossipSub, the reputation event for the relay
//! (if any), the metric label, and the follow-up work (the accepted payload;
//! a height that shows the node is behind). The node only applies it.
//!
//! In order, cheapest first:
//!
//! 1. **Relay budget** per relay and topic ([`RelayLimit`]). Over budget the
//!    message is ignored. The relay is penalised only when its *own*
//!    publications (it is the message's signed GossipSub source) exceed the
//!    budget by themselves ([`OwnLimit`], counted apart from what it
//!    forwards): an honest relay forwards what the network produces and
//!    cannot choose its rate, and forwarding others' messages up to its
//!    budget must not turn its own next heartbeat into a breach.
//! 2. **Seen before**: the content id of every accepted message is kept for
//!    [`SEEN_RETENTION_MS`] (far longer than GossipSub's duplicate cache),
//!    so the same bytes re-injected later are ignored before decoding.
//! 3. [`crate::gossip::validate`]: canonical decoding, network, height
//!    windows and clock skew, author, signatures, certificates, admission,
//!    heartbeat replay. Its [`Verdict`] says who pays (see that module).
//! 4. **Observer budget** per observer on `meta` ([`ObserverLimit`]).
//!
//! Only a [`Verdict::Reject`] costs the relay anything. The first delivery of
//! an accepted message earns it [`PeerEvent::UsefulFirstDelivery`], whose
//! weight in GossipSub's score is capped at a TL3 tier bonus
//! ([`crate::reputation::MAX_EARNED_BONUS`]).

use std::collections::{BTreeMap, HashMap};

use libp2p_identity::PeerId;

use crate::admission::{DenyReason, RateClass};
use crate::gossip::{
    Accepted, GossipContext, IgnoreReason, MessageSource, RejectReason, ReplayEntry, ReplayGuard, Verdict, validate,
};
use crate::hash::Hash32;
use crate::identity::registry::IdentityRegistry;
use crate::proof::ProofError;
use crate::ratelimit::{Limit, Limiter, Rate};
use crate::reputation::PeerEvent;
use crate::wire::Topic;
use crate::wire::sign::message_id;

/// What to tell GossipSub about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Deliver and forward.
    Accept,
    /// Drop quietly: not the relay's fault.
    Ignore,
    /// Drop and lower the relay's GossipSub score.
    Reject,
}

/// What the node does with one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// For GossipSub.
    pub acceptance: Acceptance,
    /// The reputation event to record against the relay, if any.
    pub relay_event: Option<PeerEvent>,
    /// The metric label of the outcome (`accept`, or a reason's label).
    pub label: &'static str,
    /// The tier label for metrics (`-` when unknown).
    pub tier: &'static str,
    /// Why it was not accepted, for logs (formatted only when logged).
    pub reason: Option<Refusal>,
    /// The accepted message, to hand to the application.
    pub accepted: Option<Box<Accepted>>,
    /// An authentic consensus message for a height above our window showed
    /// this height to be finalized: we are behind and should catch up to it.
    pub behind: Option<u64>,
}

impl Decision {
    fn ignore(label: &'static str, reason: Refusal) -> Self {
        Self {
            acceptance: Acceptance::Ignore,
            relay_event: None,
            label,
            tier: "-",
            reason: Some(reason),
            accepted: None,
            behind: None,
        }
    }

    fn reject(label: &'static str, tier: &'static str, event: PeerEvent, reason: Refusal) -> Self {
        Self {
            acceptance: Acceptance::Reject,
            relay_event: Some(event),
            label,
            tier,
            reason: Some(reason),
            accepted: None,
            behind: None,
        }
    }
}

/// Why a message was not accepted: the validator's reason, a proof
/// verifier's, or a policy step's. Kept as a value so that nothing is
/// formatted for a message unless it is logged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The validator's reason for a reject.
    #[error(transparent)]
    Rejected(RejectReason),
    /// The validator's reason for an ignore.
    #[error(transparent)]
    Ignored(IgnoreReason),
    /// The proof kind's verifier refused it.
    #[error(transparent)]
    Proof(ProofError),
    /// A step of the policy (budgets, seen ids, topic).
    #[error("{0}")]
    Policy(&'static str),
}

/// One message as GossipSub hands it over.
#[derive(Debug, Clone, Copy)]
pub struct InboundMessage<'a> {
    /// Its topic (`None`: not one of ours).
    pub topic: Option<Topic>,
    /// The payload.
    pub data: &'a [u8],
    /// The peer that handed it to us (GossipSub's propagation source).
    pub relay: PeerId,
    /// The signed GossipSub source: who published it.
    pub publisher: Option<PeerId>,
}

/// Budget of one relay on one topic. Generous for honest relays (which
/// forward every author's messages), tight for floods.
#[derive(Debug)]
pub enum RelayLimit {}

impl Limit for RelayLimit {
    type Key = (PeerId, Topic);
    const NAME: &'static str = "gossip_relay";
    fn rate(key: &(PeerId, Topic)) -> Rate {
        match key.1 {
            // Proposals and finalized blocks: about two per height.
            Topic::Blocks => Rate::new(10.0, 30.0),
            // Up to 2 votes × 256 validators per height, relayed.
            Topic::Votes => Rate::new(200.0, 500.0),
            Topic::Proofs => Rate::new(20.0, 50.0),
            // Announcements come every N blocks.
            Topic::Snapshots => Rate::new(1.0, 5.0),
            // Heartbeats and attestations of every node, relayed.
            Topic::Meta => Rate::new(20.0, 50.0),
        }
    }
}

/// Budget of one peer's own publications on one topic: the messages it
/// hands over whose signed GossipSub source is itself. The rates are the
/// relay budget's ([`RelayLimit`]); the bucket is apart, so only a peer
/// whose own messages alone exceed what any relay may hand over is
/// charged, never one whose budget went on forwarding others' traffic.
#[derive(Debug)]
pub enum OwnLimit {}

impl Limit for OwnLimit {
    type Key = (PeerId, Topic);
    const NAME: &'static str = "gossip_own";
    fn rate(key: &(PeerId, Topic)) -> Rate {
        RelayLimit::rate(key)
    }
}

/// Budget of one observer (TL0) author on `meta`, wherever it is relayed
/// from. Keyed by the publisher's PeerId bytes.
#[derive(Debug)]
pub enum ObserverLimit {}

impl Limit for ObserverLimit {
    type Key = Vec<u8>;
    const NAME: &'static str = "observer_meta";
    fn rate(_: &Vec<u8>) -> Rate {
        Rate::new(0.5, 3.0)
    }
}

/// How long the content id of an accepted message is remembered.
pub const SEEN_RETENTION_MS: u64 = 30 * 60 * 1000;

/// Most content ids remembered (32 bytes and a time each: about 3 MB).
pub const MAX_SEEN: usize = 65_536;

/// Most keys each limiter tracks.
pub const MAX_LIMITER_KEYS: usize = 8192;

/// Content ids of accepted messages, bounded in count and age; the oldest
/// goes first.
#[derive(Debug, Clone, Default)]
pub struct SeenCache {
    /// id → when it was accepted.
    by_id: HashMap<Hash32, u64>,
    /// (accepted at, id), oldest first.
    order: BTreeMap<(u64, Hash32), ()>,
    max: usize,
}

impl SeenCache {
    /// A cache of at most `max` ids (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            by_id: HashMap::new(),
            order: BTreeMap::new(),
            max: max.max(1),
        }
    }

    /// Whether `id` was accepted within the retention window before `now_ms`.
    pub fn contains(&self, id: &Hash32, now_ms: u64) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|at| now_ms.saturating_sub(*at) < SEEN_RETENTION_MS)
    }

    /// Remembers `id` as accepted at `now_ms`, forgetting expired ids and,
    /// when full, the oldest.
    pub fn insert(&mut self, id: Hash32, now_ms: u64) {
        self.expire(now_ms);
        if let Some(old) = self.by_id.insert(id, now_ms) {
            self.order.remove(&(old, id));
        } else if self.by_id.len() > self.max
            && let Some(((_, oldest), ())) = self.order.pop_first()
        {
            self.by_id.remove(&oldest);
        }
        self.order.insert((now_ms, id), ());
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((&(at, id), ())) = self.order.first_key_value() {
            if now_ms.saturating_sub(at) < SEEN_RETENTION_MS {
                break;
            }
            self.order.pop_first();
            self.by_id.remove(&id);
        }
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every id with when it was accepted, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (Hash32, u64)> + '_ {
        self.order.keys().map(|(at, id)| (*id, *at))
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The state behind the decisions: budgets, seen ids and heartbeat replay
/// windows, all bounded.
#[derive(Debug)]
pub struct InboundPolicy {
    relays: Limiter<RelayLimit>,
    own: Limiter<OwnLimit>,
    observers: Limiter<ObserverLimit>,
    seen: SeenCache,
    replay: ReplayGuard,
    /// Ids accepted since the last [`InboundPolicy::take_changes`], oldest
    /// first (at most [`MAX_SEEN`]: older ones would be evicted anyway).
    fresh: std::collections::VecDeque<(Hash32, u64)>,
}

impl Default for InboundPolicy {
    fn default() -> Self {
        Self {
            relays: Limiter::new(MAX_LIMITER_KEYS),
            own: Limiter::new(MAX_LIMITER_KEYS),
            observers: Limiter::new(MAX_LIMITER_KEYS),
            seen: SeenCache::new(MAX_SEEN),
            replay: ReplayGuard::default(),
            fresh: std::collections::VecDeque::new(),
        }
    }
}

/// The gossip state that must survive a restart, as it changed since the
/// last [`InboundPolicy::take_changes`]: the node writes it in one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipChanges {
    /// Newly accepted content ids and when, oldest first.
    pub seen: Vec<(Hash32, u64)>,
    /// Updated heartbeat replay windows.
    pub replay: Vec<ReplayEntry>,
}

impl GossipChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.replay.is_empty()
    }
}

impl InboundPolicy {
    /// What changed since the last call (seen ids and replay windows), for
    /// a batched write. Bounded by [`MAX_SEEN`] and the replay guard's capacity.
    pub fn take_changes(&mut self) -> GossipChanges {
        GossipChanges {
            seen: std::mem::take(&mut self.fresh).into(),
            replay: self.replay.take_changed(),
        }
    }

    /// Takes persisted state back after a restart: seen ids (expired ones
    /// at `now_ms` are dropped; at most [`MAX_SEEN`], the newest) and
    /// replay windows. Nothing restored counts as a change.
    pub fn restore(
        &mut self,
        seen: impl IntoIterator<Item = (Hash32, u64)>,
        replay: impl IntoIterator<Item = ReplayEntry>,
        now_ms: u64,
    ) {
        let mut seen: Vec<(Hash32, u64)> = seen
            .into_iter()
            .filter(|(_, at)| *at <= now_ms && now_ms - *at < SEEN_RETENTION_MS)
            .collect();
        seen.sort_by_key(|(_, at)| *at);
        for (id, at) in seen {
            self.seen.insert(id, at);
        }
        self.replay.restore(replay);
    }

    /// Every seen id and replay window (a full snapshot, e.g. for a rewrite).
    pub fn snapshot(&self) -> GossipChanges {
        GossipChanges {
            seen: self.seen.entries().collect(),
            replay: self.replay.entries(),
        }
    }

    /// Decides what to do with one message. Pure: the caller passes `now`
    /// in the view (`view.now_ms`).
    pub fn handle_gossip<R: IdentityRegistry>(
        &mut self,
        message: &InboundMessage<'_>,
        view: &GossipContext<'_, R>,
    ) -> Decision {
        let now = view.now_ms;
        let Some(topic) = message.topic else {
            return Decision::ignore("unknown_topic", Refusal::Policy("not one of our topics"));
        };
        // A peer's own messages also take from their own bucket; forwarded
        // ones only from the relay's.
        let own_within = message.publisher != Some(message.relay) || self.own.check(&(message.relay, topic), now);
        if !self.relays.check(&(message.relay, topic), now) {
            let mut decision =
                Decision::ignore("rate_limited", Refusal::Policy("over the relay's budget for the topic"));
            if !own_within {
                decision.relay_event = Some(PeerEvent::RateLimitBreach);
            }
            return decision;
        }
        let id = message_id(message.data);
        if self.seen.contains(&id, now) {
            return Decision::ignore("seen", Refusal::Policy("accepted before"));
        }
        let publisher = message.publisher.map(|p| p.to_bytes()).unwrap_or_default();
        let source = MessageSource {
            publisher: &publisher,
            relay_published: message.publisher == Some(message.relay),
        };
        match validate(topic, message.data, &source, view, &mut self.replay) {
            Verdict::Accept(accepted) => {
                if accepted.rate_class == RateClass::Observer && !self.observers.check(&publisher, now) {
                    return Decision {
                        tier: accepted.tier.label(),
                        ..Decision::ignore(
                            "observer_rate_limited",
                            Refusal::Policy("over the observer's budget on meta"),
                        )
                    };
                }
                self.seen.insert(id, now);
                if self.fresh.len() >= MAX_SEEN {
                    self.fresh.pop_front();
                }
                self.fresh.push_back((id, now));
                Decision {
                    acceptance: Acceptance::Accept,
                    relay_event: Some(PeerEvent::UsefulFirstDelivery),
                    label: "accept",
                    tier: accepted.tier.label(),
                    reason: None,
                    accepted: Some(accepted),
                    behind: None,
                }
            }
            Verdict::Reject(reason) => {
                let tier = match &reason {
                    RejectReason::Unauthorised {
                        reason: DenyReason::TierTooLow { actual, .. },
                        ..
                    } => actual.label(),
                    RejectReason::Unauthorised { .. } => "validator-only",
                    _ => "-",
                };
                Decision::reject(reason.label(), tier, reason.peer_event(), Refusal::Rejected(reason))
            }
            Verdict::Ignore(reason) => {
                let behind = match reason {
                    IgnoreReason::Ahead { finalized, .. } => Some(finalized),
                    _ => None,
                };
                let mut decision = Decision::ignore(reason.label(), Refusal::Ignored(reason));
                if let Some(finalized) = behind
                    && matches!(topic, Topic::Blocks | Topic::Votes)
                {
                    decision.behind = Some(finalized);
                }
                decision
            }
        }
    }
}

/// What becomes of an accepted proof envelope once its kind's verifier ran
/// against chain state: `Ok(true)` new (keep the Accept), `Ok(false)`
/// already pending, on chain or no room (ignore). A refusal costs the relay
/// only when the proof is wrong for everyone ([`ProofError::is_fault`]).
pub fn proof_decision(outcome: Result<bool, &ProofError>, tier: &'static str) -> Option<Decision> {
    match outcome {
        Ok(true) => None,
        Ok(false) => Some(Decision {
            tier,
            ..Decision::ignore(
                "proof_not_new",
                Refusal::Policy("already pending, on chain, or no room"),
            )
        }),
        Err(error) if error.is_fault() => Some(Decision::reject(
            "invalid_proof",
            tier,
            PeerEvent::InvalidMessage,
            Refusal::Proof(error.clone()),
        )),
        Err(error) => Some(Decision {
            tier,
            ..Decision::ignore("proof_unverifiable", Refusal::Proof(error.clone()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_cache_is_bounded_and_expires() {
        let mut seen = SeenCache::new(3);
        for i in 0..10u8 {
            seen.insert(Hash32([i; 32]), u64::from(i));
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.contains(&Hash32([9; 32]), 10));
        assert!(!seen.contains(&Hash32([0; 32]), 10));
        assert!(!seen.contains(&Hash32([9; 32]), 9 + SEEN_RETENTION_MS));
        seen.insert(Hash32([42; 32]), 20 + SEEN_RETENTION_MS);
        assert_eq!(seen.len(), 1);
        // Re-inserting refreshes, without growing.
        seen.insert(Hash32([42; 32]), 21 + SEEN_RETENTION_MS);
        assert_eq!(seen.len(), 1);
    }
}
