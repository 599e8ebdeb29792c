//! The node's side of the peer manager ([`crate::peer_manager`]): it tells
//! the manager which PeerIds are validators (from the peerstore on start and
//! from every verified Hello), which peers were useful or banned, and runs
//! its periodic step with the peerstore's best known peers as redial
//! candidates. Also the batched persistence of the gossip state
//! ([`crate::gossip_state`]).

use std::collections::HashMap;

use libp2p::PeerId;
use tiernet_core::identity::registry::PeerStanding;
use tiernet_core::wire::Topic;

use tracing::{info, warn};

use super::{Node, now_ms};

/// How many known peers are offered to each redial round.
const REDIAL_CANDIDATES: usize = 64;

/// Least time between two rebroadcasts for joining validators (several
/// joining at once are served by one).
const JOIN_REBROADCAST_GAP_MS: u64 = 250;

/// A validator makes us rebroadcast for its joining at most once in this
/// long.
const JOIN_REBROADCAST_PER_PEER_MS: u64 = 10_000;

/// Most validators remembered as having joined within
/// [`JOIN_REBROADCAST_PER_PEER_MS`] (as many as a validator set holds).
const MAX_JOIN_REBROADCASTS: usize = tiernet_core::wire::limits::MAX_VALIDATORS;

/// When validators joining make us send our votes again: at most once per
/// [`JOIN_REBROADCAST_GAP_MS`] in all (one that joins sooner waits for the
/// next periodic step) and once per [`JOIN_REBROADCAST_PER_PEER_MS`] per
/// validator (one flapping its subscription cannot make every validator
/// republish). `now` is passed in.
#[derive(Debug, Default)]
pub(super) struct JoinRebroadcasts {
    /// When the last one went out (ms).
    last_ms: u64,
    /// A validator joined and has not been served yet.
    due: bool,
    /// Validators that joined lately, and when.
    joined: HashMap<PeerId, u64>,
}

impl JoinRebroadcasts {
    /// `peer` joined: whether to rebroadcast now.
    pub(super) fn on_join(&mut self, peer: PeerId, now: u64) -> bool {
        self.joined
            .retain(|_, at| now.saturating_sub(*at) < JOIN_REBROADCAST_PER_PEER_MS);
        if self.joined.contains_key(&peer) || self.joined.len() >= MAX_JOIN_REBROADCASTS {
            return false;
        }
        self.joined.insert(peer, now);
        self.due = true;
        self.poll(now)
    }

    /// Whether a rebroadcast that had to wait is due now.
    pub(super) fn poll(&mut self, now: u64) -> bool {
        if !self.due || now.saturating_sub(self.last_ms) < JOIN_REBROADCAST_GAP_MS {
            return false;
        }
        self.due = false;
        self.last_ms = now;
        true
    }
}

impl Node {
    /// Makes the validators recorded in the peerstore reserved (their
    /// PeerIds and the IPs of their known addresses), so that a validator
    /// that restarts is admitted even while strangers fill the node.
    pub(super) fn seed_reserved_peers(&mut self) {
        let Some(validators) = &self.validators else {
            return;
        };
        let known: Vec<_> = self
            .peerstore
            .iter()
            .filter(|r| r.zsi_id.is_some_and(|z| validators.contains(&z)))
            .map(|r| (r.peer_id, r.addrs.clone()))
            .collect();
        let gate = &mut self.swarm.behaviour_mut().gate;
        for (peer, addrs) in known {
            gate.add_validator(peer, &addrs);
        }
    }

    /// A Hello was verified: the manager learns the tier and whether the
    /// peer is a validator (which reserves its room).
    pub(super) fn tell_manager_hello(&mut self, peer: PeerId, standing: &PeerStanding, now: u64) {
        let validator = standing
            .zsi_id
            .is_some_and(|z| self.validators.as_ref().is_some_and(|v| v.contains(&z)));
        let addrs = self.peerstore.get(&peer).map(|r| r.addrs.clone()).unwrap_or_default();
        self.swarm
            .behaviour_mut()
            .gate
            .on_hello(peer, standing.tier, validator, &addrs, now);
        let votes = self.topics.ident(Topic::Votes).hash();
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(p, topics)| *p == peer && topics.contains(&&votes));
        if validator && subscribed {
            self.validator_joined(peer, now);
        }
    }

    /// A validator can now hear our votes (its Hello proved it, and it is
    /// subscribed to `votes`): our latest votes go out again at once, so a
    /// validator back from a restart learns where a stalled round stands
    /// without waiting for our rebroadcast timer (limits: [`JoinRebroadcasts`]).
    pub(super) fn validator_joined(&mut self, peer: PeerId, now: u64) {
        if self.join_rebroadcasts.on_join(peer, now) {
            self.drive(crate::consensus::engine::EngineInput::RebroadcastNow);
        }
    }

    /// The periodic step's part: the rebroadcast a validator that joined
    /// too soon after the last one is due.
    pub(super) fn rebroadcast_for_late_joiners(&mut self, now: u64) {
        if self.join_rebroadcasts.poll(now) {
            self.drive(crate::consensus::engine::EngineInput::RebroadcastNow);
        }
    }

    /// The manager's periodic step.
    pub(super) fn peer_manager_tick(&mut self, now: u64) {
        let candidates = if self.swarm.behaviour().gate.manager().redial_due(now) {
            let me = self.peer_id;
            let mut candidates = self.peerstore.dial_candidates(now, REDIAL_CANDIDATES);
            candidates.retain(|(peer, _)| *peer != me);
            candidates
        } else {
            Vec::new()
        };
        self.swarm.behaviour_mut().gate.tick(now, &candidates);
    }
}

impl Node {
    /// Takes the seen ids and replay windows persisted before the last stop
    /// or crash back into the inbound policy.
    pub(super) fn restore_gossip_state(&mut self) {
        let now = now_ms();
        match self.gossip_state.load(now) {
            Ok(tiernet_core::inbound::GossipChanges { seen, replay }) => {
                info!(
                    seen = seen.len(),
                    replay_windows = replay.len(),
                    "gossip state restored"
                );
                self.inbound.restore(seen, replay, now);
            }
            Err(error) => warn!(%error, "cannot load the gossip state; starting without it"),
        }
    }

    /// Writes what changed in the gossip state since the last flush, in one
    /// transaction (never per message).
    pub(super) fn flush_gossip_state(&mut self) {
        let changes = self.inbound.take_changes();
        if let Err(error) = self.gossip_state.write(&changes, now_ms()) {
            warn!(%error, "cannot persist the gossip state");
        }
    }
}

impl Node {
    /// A random walk of the DHT (a closest-peers query for a random key):
    /// every tick while below the target peer count, otherwise every
    /// [`crate::discovery::WALK_INTERVAL`].
    pub(super) fn walk_dht(&mut self) {
        let now = now_ms();
        let below = self.live.len() < self.config.connections.target_peers;
        let due = now.saturating_sub(self.last_walk_ms)
            >= u64::try_from(crate::discovery::WALK_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if !below && !due {
            return;
        }
        self.last_walk_ms = now;
        self.swarm.behaviour_mut().kad.get_closest_peers(PeerId::random());
    }

    /// Kademlia events: only logged (routing is Kademlia's own; addresses
    /// reach the peerstore only from successful outbound connections).
    pub(super) fn handle_kad(&mut self, event: libp2p::kad::Event) {
        match event {
            libp2p::kad::Event::RoutingUpdated { peer, is_new_peer, .. } => {
                if is_new_peer {
                    tracing::debug!(%peer, "discovery: routing table learned a peer");
                }
            }
            other => tracing::trace!(event = ?other, "kad"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_validators_make_us_rebroadcast_within_the_limits() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut r = JoinRebroadcasts::default();
        assert!(r.on_join(a, 1_000));
        // Another one right after: served by the periodic step.
        assert!(!r.on_join(b, 1_100));
        assert!(!r.poll(1_200));
        assert!(r.poll(1_250));
        assert!(!r.poll(1_500), "nothing more is due");
        // The same one again within its window: nothing.
        assert!(!r.on_join(a, 5_000));
        assert!(!r.poll(6_000));
        // After it: again.
        assert!(r.on_join(a, 11_000));
    }
}
