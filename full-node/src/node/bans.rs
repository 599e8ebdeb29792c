//! Bans and operator lists: a banned or blocklisted peer is refused at the
//! connection level (`allow_block_list`), blacklisted in GossipSub and
//! disconnected; a ban is lifted when its window ends. Allowlisted peers are
//! never banned for their local reputation.

use std::collections::BTreeSet;

use libp2p::PeerId;
use tiernet_core::reputation::{Outcome, PeerEvent, application_score};
use tracing::{debug, info, warn};

use super::{Node, now_ms};
use crate::metrics::{EventLabels, PeerLabels};
use crate::store::StoreError;

impl Node {
    /// Records a local reputation event against `peer`; a resulting ban
    /// blocks and disconnects it. Refreshes the peer's GossipSub score.
    pub(super) fn penalise(&mut self, peer: PeerId, event: PeerEvent, now: u64) {
        self.metrics
            .reputation_events
            .get_or_create(&EventLabels { event: event.label() })
            .inc();
        let outcome = self.peerstore.record_event(peer, event, now);
        self.carry_out(peer, outcome, event.label(), now);
        self.refresh_score(peer);
    }

    /// After a message of `peer`'s was rejected (and penalised): bans it if
    /// the rejection took its GossipSub score below the graylist threshold.
    /// GossipSub drops a graylisted peer's messages before they reach us,
    /// so its local score would stop short of the ban it is due:
    /// invalid messages cost it quadratically in GossipSub (P4) and
    /// linearly here, and a peer with earned merit was graylisted after six
    /// forged proofs while its ban needed eight. Honest relays never get
    /// here: they forward only what they verified, and what depends on the
    /// clock or on local state is ignored, not rejected.
    pub(super) fn ban_if_graylisted(&mut self, peer: PeerId, now: u64) {
        let graylist = crate::gossip::score_thresholds().graylist_threshold;
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(&peer) else {
            return;
        };
        if score >= graylist || self.peerstore.banned_until(&peer, now).is_some() {
            return;
        }
        let outcome = self.peerstore.ban_for_offence(peer, now);
        self.carry_out(peer, outcome, "graylisted", now);
    }

    /// Carries out what a reputation event led to: a ban blocks and
    /// disconnects the peer, unless it is allowlisted.
    #[cfg_attr(not(feature = "testing"), allow(unused_variables))] // now: the probe only
    fn carry_out(&mut self, peer: PeerId, outcome: Result<Outcome, StoreError>, reason: &'static str, now: u64) {
        match outcome {
            Ok(Outcome::Banned { until_ms, offences }) => {
                if self.allow.contains(&peer) {
                    info!(%peer, reason, "allowlisted peer reached the ban threshold; not banned");
                    if let Err(error) = self.peerstore.unban(&peer) {
                        warn!(%peer, %error, "cannot lift the ban of an allowlisted peer");
                    }
                } else {
                    warn!(%peer, until_ms, offences, reason, "peer banned");
                    self.metrics.bans.inc();
                    #[cfg(feature = "testing")]
                    self.probe(|| super::probe::ProbeEvent::Banned { peer, at_ms: now });
                    self.impose_ban(peer, until_ms);
                }
            }
            Ok(outcome) => debug!(%peer, reason, ?outcome, "reputation event"),
            Err(error) => warn!(%peer, %error, "cannot persist a reputation event"),
        }
    }

    /// Records a good deed (no ban can follow).
    pub(super) fn credit(&mut self, peer: PeerId, event: PeerEvent, now: u64) {
        self.metrics
            .reputation_events
            .get_or_create(&EventLabels { event: event.label() })
            .inc();
        if let Err(error) = self.peerstore.record_event(peer, event, now) {
            warn!(%peer, %error, "cannot persist a reputation event");
        }
        self.refresh_score(peer);
    }

    /// Pushes the peer's tier and local score into GossipSub and metrics.
    pub(super) fn refresh_score(&mut self, peer: PeerId) {
        let Some(live) = self.live.get(&peer) else {
            return;
        };
        let tier = self.tier_of(&peer);
        let local = self.peerstore.score(&peer, now_ms());
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, application_score(tier, local));
        let labels = PeerLabels {
            peer: peer.to_string(),
            tier: tier.label(),
        };
        if let Some(old) = live.score_labels.as_ref().filter(|old| **old != labels) {
            self.metrics.peer_score.remove(old);
        }
        self.metrics.peer_score.get_or_create(&labels).set(local);
        if let Some(live) = self.live.get_mut(&peer) {
            live.score_labels = Some(labels);
        }
    }

    /// Refuses, blacklists and disconnects `peer` until `until_ms`.
    pub(super) fn impose_ban(&mut self, peer: PeerId, until_ms: u64) {
        // Before the disconnection: the manager still knows the peer's IPs.
        self.swarm.behaviour_mut().gate.on_peer_banned(&peer, now_ms());
        self.bans.insert(peer, until_ms);
        self.shut_out(peer);
    }

    fn shut_out(&mut self, peer: PeerId) {
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn let_in(&mut self, peer: PeerId) {
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.unblock_peer(peer);
        behaviour.gossipsub.remove_blacklisted_peer(&peer);
    }

    /// Lifts the bans whose window has ended.
    pub(super) fn lift_expired_bans(&mut self, now: u64) {
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.bans.remove(&peer);
            if !self.block.contains(&peer) {
                info!(%peer, "ban ended; the peer may connect again");
                self.let_in(peer);
            }
        }
    }

    /// Re-imposes the bans kept in the peerstore (after a restart).
    pub(super) fn restore_bans(&mut self, now: u64) {
        let banned: Vec<(PeerId, u64)> = self
            .peerstore
            .iter()
            .filter_map(|r| r.reputation.banned_until(now).map(|until| (r.peer_id, until)))
            .collect();
        for (peer, until) in banned {
            info!(%peer, until_ms = until, "ban restored from the peerstore");
            self.impose_ban(peer, until);
        }
    }

    /// Applies new operator lists: newly blocked peers are shut out, peers
    /// taken off the block list are let in (unless banned), allowlisted
    /// peers lose any ban.
    pub(super) fn apply_peer_lists(&mut self, allow: BTreeSet<PeerId>, block: BTreeSet<PeerId>) {
        for peer in block.difference(&self.block).copied().collect::<Vec<_>>() {
            info!(%peer, "blocklisted");
            self.shut_out(peer);
        }
        for peer in self.block.difference(&block).copied().collect::<Vec<_>>() {
            if !self.bans.contains_key(&peer) {
                info!(%peer, "removed from the block list");
                self.let_in(peer);
            }
        }
        for peer in &allow {
            if self.bans.remove(peer).is_some() {
                info!(%peer, "allowlisted: ban lifted");
                if let Err(error) = self.peerstore.unban(peer) {
                    warn!(%peer, %error, "cannot lift the ban of an allowlisted peer");
                }
                if !block.contains(peer) {
                    self.let_in(*peer);
                }
            }
        }
        self.allow = allow;
        self.block = block;
    }
}
