//! The path of a GossipSub message through the node: the per-peer, per-topic
//! rate limit; `tiernet_core::gossip::validate` (decode and size, the signed
//! author's tier against the admission policy, signatures, freshness,
//! replays); the verdict reported to GossipSub (Accept forwards it, Reject
//! lowers the sender's GossipSub score, Ignore drops it quietly); a local
//! reputation event for the propagation source; metrics and a log event.

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // Multiaddr: the test API only
use libp2p::{Multiaddr, PeerId};
use tiernet_core::admission::{DenyReason, RateClass};
use tiernet_core::gossip::{self, Author, GossipContext, Payload, RejectReason, Verdict};
use tiernet_core::ratelimit::Rate;
use tiernet_core::reputation::PeerEvent;
use tiernet_core::wire::proto::{self, votes_message};
use tiernet_core::wire::{Topic, encode};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // warn: the test API only
use tracing::{debug, info, warn};

use super::{Node, ReceivedMessage, now_ms};
use crate::consensus::chain::ProofOutcome;
use crate::consensus::engine::EngineInput;
use crate::metrics::GossipLabels;
use crate::testing::sample_message;

/// Inbound budget per propagation source and topic. Generous for honest
/// relays (which forward every author's messages), tight for floods.
pub fn topic_rate(topic: Topic) -> Rate {
    match topic {
        // Proposals and finalized blocks: about two per height.
        Topic::Blocks => Rate::new(10.0, 30.0),
        // Up to 2 votes × 256 validators per height, relayed.
        Topic::Votes => Rate::new(200.0, 500.0),
        Topic::Proofs => Rate::new(20.0, 50.0),
        // Announcements come every N blocks.
        Topic::Snapshots => Rate::new(1.0, 5.0),
        // Heartbeats of every node, relayed.
        Topic::Meta => Rate::new(20.0, 50.0),
    }
}

/// Sync requests one peer may make (blocks and headers).
pub const SYNC_RATE: Rate = Rate::new(50.0, 100.0);

/// Budget of one observer (TL0) author on `meta`, wherever it is relayed from.
pub const OBSERVER_META_RATE: Rate = Rate::new(0.5, 3.0);

/// Most accepted messages kept for `GET /testing/received`.
pub const RECEIVED_KEPT: usize = 2048;

impl Node {
    pub(super) fn handle_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => debug!(peer = %peer_id, %topic, "peer subscribed"),
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer unsubscribed")
            }
            other => debug!(event = ?other, "gossipsub"),
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let now = now_ms();
        let Some(topic) = self.topics.topic(&message.topic) else {
            self.verdict(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        if !self.rate_limits.check(&(source, topic), topic_rate(topic), now) {
            self.count(topic, "-", "rate_limited");
            self.verdict(&id, &source, MessageAcceptance::Ignore);
            self.penalise(source, PeerEvent::RateLimitBreach, now);
            return;
        }
        let Some(validators) = &self.validators else {
            self.count(topic, "-", "no_genesis");
            self.verdict(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        let author_key = message.source.map(|p| p.to_bytes()).unwrap_or_default();
        let context = GossipContext {
            network: &self.config.network_id,
            registry: self.handshake.registry(),
            thresholds: self.handshake.thresholds(),
            validators,
            policy: &self.policy,
            now_ms: now,
            max_clock_skew_ms: crate::gossip::DUPLICATE_CACHE.as_millis() as u64,
        };
        match gossip::validate(topic, &message.data, &author_key, &context, &mut self.replay) {
            Verdict::Accept(accepted) => {
                if accepted.rate_class == RateClass::Observer
                    && !self
                        .observer_limits
                        .check(&(author_key, topic), OBSERVER_META_RATE, now)
                {
                    self.count(topic, accepted.tier.label(), "observer_rate_limited");
                    self.verdict(&id, &source, MessageAcceptance::Ignore);
                    return;
                }
                // A proof envelope must also pass its verifier against chain state.
                if let Payload::Proofs(m) = &accepted.payload
                    && let Some(chain) = self.chain.as_mut()
                    && let Some(envelope) = &m.envelope
                {
                    match chain.submit_proof(envelope) {
                        ProofOutcome::Accepted => {}
                        ProofOutcome::Duplicate | ProofOutcome::Full => {
                            self.count(topic, accepted.tier.label(), "proof_not_new");
                            self.verdict(&id, &source, MessageAcceptance::Ignore);
                            return;
                        }
                        ProofOutcome::Invalid(reason) => {
                            self.count(topic, accepted.tier.label(), "invalid_proof");
                            info!(%topic, peer = %source, %reason, "invalid proof rejected");
                            self.verdict(&id, &source, MessageAcceptance::Reject);
                            self.penalise(source, PeerEvent::InvalidMessage, now);
                            return;
                        }
                    }
                }
                self.count(topic, accepted.tier.label(), "accept");
                self.verdict(&id, &source, MessageAcceptance::Accept);
                self.credit(source, PeerEvent::UsefulFirstDelivery, now);
                let author = match &accepted.author {
                    Author::Observer => {
                        format!("observer:{}", message.source.map(|p| p.to_string()).unwrap_or_default())
                    }
                    Author::Zsi(zsi) => zsi.to_string(),
                    Author::Certified { signers } => format!("certified:{signers}"),
                };
                debug!(%topic, %author, tier = %accepted.tier, "gossip accepted");
                if self.received.len() >= RECEIVED_KEPT {
                    self.received.pop_front();
                }
                self.received.push_back(ReceivedMessage {
                    topic,
                    message_id: hex::encode(&id.0),
                    author,
                    tier: accepted.tier,
                });
                match accepted.payload {
                    Payload::Blocks(m) => self.drive(EngineInput::Blocks(m), Some(source)),
                    Payload::Votes(m) => {
                        let mut detected = None;
                        if let Some(chain) = self.chain.as_mut() {
                            match &m.kind {
                                Some(votes_message::Kind::Vote(v)) => detected = chain.observe_vote(v),
                                Some(votes_message::Kind::Evidence(e)) => {
                                    chain.add_evidence(e.clone());
                                }
                                _ => {}
                            }
                        }
                        // Evidence we put together ourselves goes to every
                        // validator, not only to the next proposer we are.
                        if let Some(evidence) = detected {
                            let message = proto::VotesMessage {
                                kind: Some(votes_message::Kind::Evidence(evidence)),
                                rebroadcast_ms: 0,
                            };
                            if let Err(error) = self.publish(Topic::Votes, encode(&message)) {
                                debug!(%error, "evidence not published");
                            }
                        }
                        self.drive(EngineInput::Votes(m), Some(source));
                    }
                    _ => {}
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
                self.count(topic, tier, reason.label());
                info!(%topic, peer = %source, reason = %reason, "gossip rejected");
                self.verdict(&id, &source, MessageAcceptance::Reject);
                self.penalise(source, reason.peer_event(), now);
            }
            Verdict::Ignore(reason) => {
                self.count(topic, "-", reason.label());
                self.verdict(&id, &source, MessageAcceptance::Ignore);
            }
        }
    }

    fn verdict(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn count(&self, topic: Topic, tier: &'static str, decision: &'static str) {
        self.metrics
            .gossip
            .get_or_create(&GossipLabels {
                topic: topic.name(),
                tier,
                decision,
            })
            .inc();
    }

    /// Publishes a message of our own on `topic`.
    pub(super) fn publish(&mut self, topic: Topic, data: Vec<u8>) -> Result<String, String> {
        let ident = self.topics.ident(topic).clone();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(ident, data)
            .map(|id| hex::encode(id.0))
            .map_err(|e| format!("cannot publish on {topic}: {e}"))
    }

    /// Publishes our heartbeat on `meta`.
    pub(super) fn publish_heartbeat(&mut self) {
        self.heartbeat_sequence += 1;
        let data = sample_message(
            Topic::Meta,
            self.handshake.identity(),
            &self.config.network_id,
            self.heartbeat_sequence,
            now_ms(),
        );
        if let Err(error) = self.publish(Topic::Meta, data) {
            debug!(%error, "heartbeat not published");
        }
    }

    /// Test API: publishes a sample message on `topic`, without our own
    /// admission check (the point is to see what the network lets through).
    #[cfg(feature = "testing")]
    pub(super) fn publish_sample(&mut self, topic: Topic) -> Result<String, String> {
        self.heartbeat_sequence += 1;
        let data = sample_message(
            topic,
            self.handshake.identity(),
            &self.config.network_id,
            self.heartbeat_sequence,
            now_ms(),
        );
        self.publish(topic, data)
    }

    /// Test API: dials an address.
    #[cfg(feature = "testing")]
    pub(super) fn dial_address(&mut self, addr: &str) -> Result<String, String> {
        let addr: Multiaddr = addr.parse().map_err(|e| format!("{addr:?} is not a multiaddr: {e}"))?;
        self.swarm
            .dial(addr.clone())
            .map(|()| format!("dialing {addr}"))
            .map_err(|e| {
                warn!(%addr, error = %e, "test dial failed");
                format!("cannot dial {addr}: {e}")
            })
    }
}
