//! GossipSub on the five topics, with tier-coupled peer scoring.
//!
//! - Topics are `/tiernet/<network_id>/<name>/1` (`tiernet_core::wire::Topic`).
//! - The message id is `BLAKE3("tiernet/message-id/v1" ‖ data)`: content
//!   addressed, so the same payload relayed by many peers is one message.
//! - Messages are signed by their libp2p source (`ValidationMode::Strict`)
//!   and validated by the application before they are forwarded
//!   (`validate_messages`): `tiernet_core::gossip::validate` decides Accept,
//!   Reject or Ignore from the payload's own signed author and its tier.
//! - Peer scores combine GossipSub's topic scores with an application-
//!   specific score: `tiernet_core::reputation::application_score(tier,
//!   local score)`, refreshed whenever a peer's tier or local score changes.
//!
//! Every chosen value below carries its reason.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::gossipsub::{
    self, ConfigBuilder, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds, TopicHash,
    TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use tiernet_core::wire::sign::message_id;
use tiernet_core::wire::{NetworkId, Topic, limits};

/// GossipSub could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// GossipSub rejected its configuration.
    #[error("invalid GossipSub configuration: {0}")]
    Config(String),
    /// Subscribing to a topic failed.
    #[error("cannot subscribe to {topic}: {reason}")]
    Subscribe {
        /// The topic string.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// Heartbeat: 700 ms keeps mesh repair and IHAVE gossip quick enough for
/// sub-second block finality on small networks without flooding control traffic.
pub const HEARTBEAT: Duration = Duration::from_millis(700);

/// How long message ids are remembered to drop duplicates: the same as the
/// freshness window of time-stamped messages, so an old message can be
/// neither a fresh duplicate nor a fresh message.
pub const DUPLICATE_CACHE: Duration = Duration::from_secs(120);

/// The largest GossipSub frame: the largest topic message (`blocks`) plus
/// room for the GossipSub envelope (source, signature, topic, seqno).
pub const MAX_TRANSMIT: usize = limits::MAX_BLOCKS_MESSAGE + 4096;

/// The five topics of a network, with their hashes.
#[derive(Debug, Clone)]
pub struct Topics {
    by_hash: HashMap<TopicHash, Topic>,
    idents: Vec<(Topic, IdentTopic)>,
}

impl Topics {
    /// The topics of `network`.
    pub fn new(network: &NetworkId) -> Self {
        let idents: Vec<(Topic, IdentTopic)> = Topic::ALL
            .into_iter()
            .map(|t| (t, IdentTopic::new(t.topic_string(network))))
            .collect();
        let by_hash = idents.iter().map(|(t, ident)| (ident.hash(), *t)).collect();
        Self { by_hash, idents }
    }

    /// The topic with this hash, if it is one of ours.
    pub fn topic(&self, hash: &TopicHash) -> Option<Topic> {
        self.by_hash.get(hash).copied()
    }

    /// The GossipSub topic of `topic`.
    pub fn ident(&self, topic: Topic) -> &IdentTopic {
        // `idents` holds every `Topic::ALL` entry, in that order.
        &self.idents[Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0)].1
    }

    /// All five.
    pub fn iter(&self) -> impl Iterator<Item = (Topic, &IdentTopic)> {
        self.idents.iter().map(|(t, i)| (*t, i))
    }
}

/// Per-topic mesh size: (mesh_n, mesh_n_low, mesh_n_high).
fn mesh_size(topic: Topic) -> (usize, usize, usize) {
    match topic {
        // Consensus traffic: a wider mesh cuts hops and so latency.
        Topic::Blocks | Topic::Votes => (8, 6, 12),
        // Everything else tolerates an extra hop: the GossipSub defaults.
        Topic::Proofs | Topic::Snapshots | Topic::Meta => (6, 5, 12),
    }
}

/// The GossipSub configuration of a node on `topics`: heartbeat, strict
/// signatures, validation by the application, content-addressed ids and
/// per-topic mesh sizes and frame limits. [`behaviour`] adds peer scoring
/// and the subscriptions; the network simulator builds its adversaries from
/// the same configuration.
pub fn config(topics: &Topics) -> Result<gossipsub::Config, GossipError> {
    let mut config = ConfigBuilder::default();
    config
        .heartbeat_interval(HEARTBEAT)
        // The first heartbeat (which fills the meshes) half an interval after
        // start, not GossipSub's default 5 s: a restarted node is back in
        // its meshes within a few heartbeats (issue 16, tests/it/crash.rs).
        .heartbeat_initial_delay(HEARTBEAT / 2)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|message| MessageId::from(message_id(&message.data).as_bytes().to_vec()))
        .duplicate_cache_time(DUPLICATE_CACHE)
        .max_transmit_size(MAX_TRANSMIT);
    for (topic, ident) in topics.iter() {
        let (n, low, high) = mesh_size(topic);
        config
            .mesh_n_for_topic(n, ident.hash())
            .mesh_n_low_for_topic(low, ident.hash())
            .mesh_n_high_for_topic(high, ident.hash())
            .max_transmit_size_for_topic(topic.max_message_size() + 4096, ident.hash());
    }
    config.build().map_err(|e| GossipError::Config(e.to_string()))
}

/// The GossipSub behaviour, subscribed to all five topics.
pub fn behaviour(
    key: &Keypair,
    topics: &Topics,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<gossipsub::Behaviour, GossipError> {
    let config = config(topics)?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| GossipError::Config(e.to_owned()))?
        .with_metrics(registry, Default::default());
    behaviour
        .with_peer_score(score_params(topics), score_thresholds())
        .map_err(GossipError::Config)?;
    for (_, ident) in topics.iter() {
        behaviour.subscribe(ident).map_err(|e| GossipError::Subscribe {
            topic: ident.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(behaviour)
}

/// A mesh peer's deliveries count if they arrive this long after the
/// first copy: on links across continents an honest peer's copy is often
/// a few hundred ms behind the first.
pub const MESH_DELIVERY_WINDOW: Duration = Duration::from_secs(2);

/// A new mesh peer owes no deliveries for this long.
pub const MESH_DELIVERY_ACTIVATION: Duration = Duration::from_secs(30);

/// How fast a pruned peer's delivery deficit is forgotten (per second):
/// half-life about 70 s, so a never-forwarding peer pruned with a full
/// deficit stays below zero, and out of every mesh, for minutes.
pub const MESH_FAILURE_DECAY: f64 = 0.99;

/// P3: what a mesh peer owes in deliveries on one topic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshDeliveryParams {
    /// Penalty per squared deficit (0: P3 off).
    pub weight: f64,
    /// The decayed delivery count a mesh peer must keep up.
    pub threshold: f64,
    /// Decay of the count per second (a peer relaying `r` messages/s holds
    /// about `r / (1 − decay)`).
    pub decay: f64,
    /// Largest count that is credited.
    pub cap: f64,
}

/// P3 per topic. A peer that takes mesh slots and never forwards (the
/// CVE-2022-47547 pattern) must end below zero, so it is pruned from every
/// mesh and not grafted back while its deficit lasts.
///
/// - `votes`: every validator votes twice per height and rebroadcasts
///   while a height stalls, and a mesh peer's copy counts up to
///   [`MESH_DELIVERY_WINDOW`] after the first, so any honest peer keeps
///   far above one message per ten seconds (threshold 1 at decay 0.9).
///   One squared unit of deficit costs 10, more than an hour of P1 credit
///   is worth on that topic.
/// - `meta`: every node, leaves included, sends its own heartbeat every
///   10 s, so the bar is one heartbeat in about 40 s (threshold 0.2 at
///   decay 0.95); the penalty is small, it adds to the one on `votes`.
/// - `blocks`: a proposal and finalized-block announcements every block
///   time; same bar as `votes`. A light client with a single full-node
///   peer has nobody to forward to and ends at −10 there: pruned from that
///   node's mesh but far above the gossip threshold (−20), so it still
///   gets every block through IHAVE/IWANT; with two peers it forwards
///   what it verified and owes nothing.
/// - `proofs`, `snapshots`: off. They can be quiet for minutes, and every
///   honest mesh peer would owe deliveries nobody had to give.
pub fn mesh_delivery_params(topic: Topic) -> MeshDeliveryParams {
    match topic {
        Topic::Votes | Topic::Blocks => MeshDeliveryParams {
            weight: -10.0,
            threshold: 1.0,
            decay: 0.9,
            cap: 50.0,
        },
        Topic::Meta => MeshDeliveryParams {
            weight: -100.0,
            threshold: 0.2,
            decay: 0.95,
            cap: 20.0,
        },
        Topic::Proofs | Topic::Snapshots => MeshDeliveryParams {
            weight: 0.0,
            threshold: 1.0,
            decay: 0.5,
            cap: 10.0,
        },
    }
}

/// Score parameters of one topic.
fn topic_score(topic: Topic) -> TopicScoreParams {
    let (weight, invalid_weight) = match topic {
        // Consensus topics matter most: a peer that serves them well earns
        // the most, one that sends invalid consensus messages loses the most.
        // Kept moderate so that one bad message drops a peer below the
        // gossip threshold but not to the graylist: the local-reputation
        // ban, which needs to see the messages, is the main sanction. (P4
        // is quadratic, so a peer with earned merit reaches the graylist
        // after six or seven invalid messages on one topic, before its
        // ban; the rejection that graylists a peer bans it, see
        // `Node::ban_if_graylisted`.)
        Topic::Blocks => (1.0, -20.0),
        Topic::Votes => (1.0, -20.0),
        Topic::Proofs => (0.5, -20.0),
        Topic::Snapshots => (0.3, -20.0),
        // Observers may publish here; mistakes are cheaper but still count.
        Topic::Meta => (0.2, -20.0),
    };
    let p3 = mesh_delivery_params(topic);
    TopicScoreParams {
        topic_weight: weight,
        // P1: a little credit for staying in the mesh, capped at an hour, so
        // long-lived peers are kept over newcomers but cannot bank much.
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        // P2: first deliveries are what a useful peer provides.
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 100.0,
        // P3 (mesh deliveries) and P3b (its memory after a prune): see
        // [`mesh_delivery_params`].
        mesh_message_deliveries_weight: p3.weight,
        mesh_message_deliveries_decay: p3.decay,
        mesh_message_deliveries_cap: p3.cap,
        mesh_message_deliveries_threshold: p3.threshold,
        mesh_message_deliveries_window: MESH_DELIVERY_WINDOW,
        mesh_message_deliveries_activation: MESH_DELIVERY_ACTIVATION,
        mesh_failure_penalty_weight: p3.weight,
        mesh_failure_penalty_decay: MESH_FAILURE_DECAY,
        // P4: invalid messages (our Reject verdicts) cost quadratically.
        invalid_message_deliveries_weight: invalid_weight,
        invalid_message_deliveries_decay: 0.5,
    }
}

/// Peer score parameters for all topics.
pub fn score_params(topics: &Topics) -> PeerScoreParams {
    PeerScoreParams {
        topics: topics.iter().map(|(t, ident)| (ident.hash(), topic_score(t))).collect(),
        // Topic scores can at most add this much: keeps an active peer's
        // positive score from outweighing a bad tier or local reputation.
        topic_score_cap: 50.0,
        // P5: tier bonus plus local reputation, one for one.
        app_specific_weight: 1.0,
        // P6: more than 10 peers from one IP costs; loopback is exempt so a
        // devnet on one machine is not penalised.
        ip_colocation_factor_weight: -5.0,
        ip_colocation_factor_threshold: 10.0,
        ip_colocation_factor_whitelist: ["127.0.0.1".parse(), "::1".parse()].into_iter().flatten().collect(),
        // P7: GossipSub protocol misbehaviour (e.g. broken promises).
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: 0.9,
        decay_interval: Duration::from_secs(1),
        decay_to_zero: 0.01,
        // A disconnected peer's score is remembered for an hour, so
        // reconnecting does not wash a bad score away.
        retain_score: Duration::from_secs(3600),
        ..PeerScoreParams::default()
    }
}

/// Score thresholds.
pub fn score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        // Below -20 we stop gossiping (IHAVE/IWANT) with the peer: one
        // invalid consensus message takes a peer there.
        gossip_threshold: -20.0,
        // Below -60 we stop publishing to it: a peer that has sent a few
        // invalid messages no longer receives ours.
        publish_threshold: -60.0,
        // Below -400 we drop everything it sends before validation. Far
        // below the others on purpose: the local-reputation ban (at -100
        // local score, a few deliberate violations) must see the messages
        // to act. A peer whose own invalid message takes it below this is
        // banned at once, since its later ones would go unseen.
        graylist_threshold: -400.0,
        // Peer exchange only from peers with at least a TL3 tier bonus.
        accept_px_threshold: 10.0,
        // Opportunistic grafting when the mesh's median score sags below 5.
        opportunistic_graft_threshold: 5.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_both_ways() {
        let network = NetworkId::new("devnet").unwrap();
        let topics = Topics::new(&network);
        for topic in Topic::ALL {
            let ident = topics.ident(topic);
            assert_eq!(ident.to_string(), topic.topic_string(&network));
            assert_eq!(topics.topic(&ident.hash()), Some(topic));
        }
        assert_eq!(topics.topic(&IdentTopic::new("/other/1").hash()), None);
    }

    #[test]
    fn a_never_forwarding_mesh_peer_ends_below_zero_and_honest_peers_do_not() {
        let topics = Topics::new(&NetworkId::new("devnet").unwrap());
        let params = score_params(&topics);
        let votes = &params.topics[&topics.ident(Topic::Votes).hash()];
        let meta = &params.topics[&topics.ident(Topic::Meta).hash()];
        // Never forwarding: the whole threshold is missing, squared, on both topics.
        let penalty = votes.topic_weight
            * votes.mesh_message_deliveries_weight
            * votes.mesh_message_deliveries_threshold.powi(2)
            + meta.topic_weight * meta.mesh_message_deliveries_weight * meta.mesh_message_deliveries_threshold.powi(2);
        // What it can have earned by then: P1 on all five topics for two activation windows.
        let window = 2.0 * MESH_DELIVERY_ACTIVATION.as_secs_f64();
        let credit: f64 = params
            .topics
            .values()
            .map(|t| t.topic_weight * t.time_in_mesh_weight * (window / t.time_in_mesh_quantum.as_secs_f64()))
            .sum();
        assert!(penalty + credit < 0.0, "penalty {penalty} credit {credit}");
        // An honest leaf that only sends its own heartbeat every 10 s keeps
        // its meta count above the bar: the lowest point of the decayed count.
        let lowest = meta
            .mesh_message_deliveries_decay
            .powf(crate::node::HEARTBEAT_INTERVAL.as_secs_f64());
        assert!(lowest > meta.mesh_message_deliveries_threshold, "{lowest}");
        // P3 stays off where traffic can pause for minutes.
        for topic in [Topic::Proofs, Topic::Snapshots] {
            assert_eq!(
                params.topics[&topics.ident(topic).hash()].mesh_message_deliveries_weight,
                0.0
            );
        }
    }

    #[test]
    fn the_configuration_is_accepted_and_scores_are_consistent() {
        let network = NetworkId::new("devnet").unwrap();
        let topics = Topics::new(&network);
        let mut registry = prometheus_client::registry::Registry::default();
        behaviour(&Keypair::generate_ed25519(), &topics, &mut registry).unwrap();
        let params = score_params(&topics);
        params.validate().unwrap();
        score_thresholds().validate().unwrap();
        assert_eq!(params.topics.len(), 5);
        // A TL3 validator's tier bonus clears the PX threshold, an observer's does not.
        let t = score_thresholds();
        assert!(
            tiernet_core::reputation::application_score(tiernet_core::tier::Tier::TL3, 0.0) >= t.accept_px_threshold
        );
        assert!(
            tiernet_core::reputation::application_score(tiernet_core::tier::Tier::TL0, 0.0) < t.accept_px_threshold
        );
    }
}
