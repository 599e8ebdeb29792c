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

/// The GossipSub behaviour, subscribed to all five topics.
pub fn behaviour(
    key: &Keypair,
    topics: &Topics,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<gossipsub::Behaviour, GossipError> {
    let mut config = ConfigBuilder::default();
    config
        .heartbeat_interval(HEARTBEAT)
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
    let config = config.build().map_err(|e| GossipError::Config(e.to_string()))?;
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

/// Score parameters of one topic.
fn topic_score(topic: Topic) -> TopicScoreParams {
    let (weight, invalid_weight) = match topic {
        // Consensus topics matter most: a peer that serves them well earns
        // the most, one that sends invalid consensus messages loses the most.
        // Kept moderate so that one bad message drops a peer below the
        // gossip threshold but not to the graylist: the local-reputation
        // ban, which needs to see the messages, is the main sanction.
        Topic::Blocks => (1.0, -20.0),
        Topic::Votes => (1.0, -20.0),
        Topic::Proofs => (0.5, -20.0),
        Topic::Snapshots => (0.3, -20.0),
        // Observers may publish here; mistakes are cheaper but still count.
        Topic::Meta => (0.2, -20.0),
    };
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
        // P3: off. Delivery-rate expectations misfire on quiet topics
        // (snapshots, proofs) and in small devnets; P2 and P4 do the work.
        mesh_message_deliveries_weight: 0.0,
        mesh_message_deliveries_decay: 0.5,
        mesh_message_deliveries_cap: 10.0,
        mesh_message_deliveries_threshold: 1.0,
        mesh_message_deliveries_window: Duration::from_millis(10),
        mesh_message_deliveries_activation: Duration::from_secs(30),
        mesh_failure_penalty_weight: 0.0,
        mesh_failure_penalty_decay: 0.5,
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
        // to act, and disconnects the peer well before this.
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
