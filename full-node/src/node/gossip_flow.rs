//! The path of a GossipSub message through the node. The decisions are
//! made by the sans-IO [`InboundPolicy`] of `tiernet_core::inbound` (relay
//! budgets, seen ids, `tiernet_core::gossip::validate`, observer budgets);
//! this file applies them: the verdict reported to GossipSub (Accept
//! forwards it, Reject lowers the relay's GossipSub score, Ignore drops it
//! quietly), the relay's local reputation event, metrics, a log line, and
//! the follow-up work (consensus input, proof verification, catch-up).

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // Multiaddr: the test API only
use libp2p::{Multiaddr, PeerId};
use tiernet_core::gossip::{GossipContext, Payload};
use tiernet_core::inbound::{Acceptance, Decision, InboundMessage, proof_decision};
use tiernet_core::wire::proto::{self, votes_message};
use tiernet_core::wire::{Topic, encode};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // warn: the test API only
use tracing::{debug, info, warn};

#[cfg(feature = "testing")]
use super::ReceivedMessage;
use super::{Node, now_ms};
use crate::consensus::chain::ProofOutcome;
use crate::consensus::engine::EngineInput;
use crate::metrics::GossipLabels;

/// Most decisions kept for `GET /testing/received`.
#[cfg(feature = "testing")]
pub const RECEIVED_KEPT: usize = 2048;

/// Messages up to this size are kept with their bytes for `GET
/// /testing/received` (a test can publish them again).
#[cfg(feature = "testing")]
pub const RECEIVED_DATA_MAX: usize = 4096;

impl Node {
    pub(super) fn handle_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer subscribed");
                if self.topics.topic(&topic) == Some(Topic::Votes)
                    && self.swarm.behaviour().gate.manager().is_validator(&peer_id)
                {
                    self.validator_joined(peer_id, now_ms());
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer unsubscribed")
            }
            other => debug!(event = ?other, "gossipsub"),
        }
    }

    fn on_gossip(&mut self, relay: PeerId, id: MessageId, message: gossipsub::Message) {
        let now = now_ms();
        let topic = self.topics.topic(&message.topic);
        let _span =
            tracing::debug_span!("gossip", topic = topic.map_or("unknown", Topic::name), peer = %relay).entered();
        let Some(validators) = &self.validators else {
            self.count(topic.unwrap_or(Topic::Meta), "-", "no_genesis");
            self.verdict(&id, &relay, MessageAcceptance::Ignore);
            return;
        };
        let inbound = InboundMessage {
            topic,
            data: &message.data,
            relay,
            publisher: message.source,
        };
        let view = GossipContext {
            network: &self.config.network_id,
            registry: self.handshake.registry(),
            thresholds: self.handshake.thresholds(),
            validators,
            policy: &self.policy,
            head_height: self.chain.as_ref().map_or(0, |c| c.ledger().height()),
            head_hash: match topic {
                Some(Topic::Blocks) => self
                    .chain
                    .as_ref()
                    .and_then(|c| c.last_header())
                    .map(tiernet_core::wire::sign::header_hash),
                _ => None,
            },
            windows: Default::default(),
            now_ms: now,
            max_clock_skew_ms: crate::gossip::DUPLICATE_CACHE.as_millis() as u64,
        };
        let mut decision = self.inbound.handle_gossip(&inbound, &view);
        // A `stwo/v1` proof is verified only within the verification budget
        // (issue 19); over it, the proof is ignored unverified.
        let over_budget = match &decision.accepted {
            Some(accepted) => match &accepted.payload {
                Payload::Proofs(m) => m
                    .envelope
                    .as_ref()
                    .is_some_and(|e| self.stark_budget_allows(e, relay, now).is_err()),
                _ => false,
            },
            None => false,
        };
        // A proof envelope must also pass its kind's verifier against chain state.
        if let Some(accepted) = &decision.accepted
            && let Payload::Proofs(m) = &accepted.payload
            && let Some(chain) = self.chain.as_mut()
            && let Some(envelope) = &m.envelope
        {
            let outcome = match chain.submit_proof(envelope) {
                _ if over_budget => Ok(false),
                ProofOutcome::Accepted => Ok(true),
                ProofOutcome::Duplicate | ProofOutcome::Full => Ok(false),
                ProofOutcome::Invalid(error) => Err(error),
            };
            if let Some(refused) = proof_decision(outcome.as_ref().map(|b| *b), decision.tier) {
                decision = refused;
            }
        }
        #[cfg(feature = "testing")]
        self.probe(|| super::probe::ProbeEvent::Received {
            topic,
            id: id.0.clone(),
            relay,
            publisher: message.source,
            bytes: message.data.len(),
            acceptance: decision.acceptance,
            label: decision.label,
            at_ms: now,
        });
        let topic = topic.unwrap_or(Topic::Meta);
        #[cfg(feature = "testing")]
        self.remember_received(topic, &id, &message, &decision);
        self.apply(topic, relay, message.source, &id, decision, now);
    }

    /// Carries out a decision of the inbound policy.
    fn apply(
        &mut self,
        topic: Topic,
        relay: PeerId,
        publisher: Option<PeerId>,
        id: &MessageId,
        decision: Decision,
        now: u64,
    ) {
        self.count(topic, decision.tier, decision.label);
        let acceptance = match decision.acceptance {
            Acceptance::Accept => MessageAcceptance::Accept,
            Acceptance::Ignore => MessageAcceptance::Ignore,
            Acceptance::Reject => MessageAcceptance::Reject,
        };
        self.verdict(id, &relay, acceptance);
        match decision.acceptance {
            Acceptance::Reject => {
                info!(%topic, peer = %relay, reason = decision.reason.as_ref().map(tracing::field::display), "gossip rejected")
            }
            Acceptance::Ignore => {
                debug!(%topic, peer = %relay, reason = decision.reason.as_ref().map(tracing::field::display), "gossip ignored")
            }
            Acceptance::Accept => self.swarm.behaviour_mut().gate.mark_useful(&relay),
        }
        if let Some(event) = decision.relay_event {
            if event.points(self.peerstore.params()) < 0.0 {
                self.penalise(relay, event, now);
            } else {
                self.credit(relay, event, now);
            }
        }
        if decision.acceptance == Acceptance::Reject {
            self.ban_if_graylisted(relay, now);
        }
        if let Some(seen) = decision.behind {
            self.drive_behind(seen);
        }
        let Some(accepted) = decision.accepted else {
            return;
        };
        debug!(%topic, author = ?accepted.author, tier = %accepted.tier, "gossip accepted");
        match accepted.payload {
            Payload::Meta(m) => self.on_meta(&m, publisher),
            Payload::Blocks(m) => self.drive(EngineInput::Blocks(m)),
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
                        ..Default::default()
                    };
                    if let Err(error) = self.publish(Topic::Votes, encode(&message)) {
                        debug!(%error, "evidence not published");
                    }
                }
                self.drive(EngineInput::Votes(m));
            }
            _ => {}
        }
    }

    /// Test API: keeps what the node decided about a message for `GET
    /// /testing/received`, with the bytes of small messages (bounded;
    /// release builds keep nothing).
    #[cfg(feature = "testing")]
    fn remember_received(
        &mut self,
        topic: Topic,
        id: &MessageId,
        message: &gossipsub::Message,
        decision: &tiernet_core::inbound::Decision,
    ) {
        use tiernet_core::gossip::Author;
        let author = match decision.accepted.as_ref().map(|a| &a.author) {
            Some(Author::Observer) => format!("observer:{}", message.source.map(|p| p.to_string()).unwrap_or_default()),
            Some(Author::Zsi(zsi)) => zsi.to_string(),
            Some(Author::Certified { signers }) => format!("certified:{signers}"),
            None => String::new(),
        };
        if self.received.len() >= RECEIVED_KEPT {
            self.received.pop_front();
        }
        // Hex only when `/testing/received` is read, not per message.
        let data = if message.data.len() <= RECEIVED_DATA_MAX {
            message.data.clone()
        } else {
            Vec::new()
        };
        self.received.push_back(ReceivedMessage {
            topic,
            message_id: hex::encode(&id.0),
            author,
            tier: decision.tier,
            decision: decision.label,
            data,
        });
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
        #[cfg(feature = "testing")]
        let (bytes, kind) = (data.len(), super::probe::message_kind(topic, &data));
        let id = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(ident, data)
            .map_err(|e| format!("cannot publish on {topic}: {e}"))?;
        #[cfg(feature = "testing")]
        self.probe(|| super::probe::ProbeEvent::Published {
            topic,
            kind,
            id: id.0.clone(),
            bytes,
            at_ms: now_ms(),
        });
        Ok(hex::encode(id.0))
    }

    /// Test API: publishes a sample message on `topic`, without our own
    /// admission check (the point is to see what the network lets through).
    #[cfg(feature = "testing")]
    pub(super) fn publish_sample(&mut self, topic: Topic) -> Result<String, String> {
        self.heartbeat_sequence = now_ms().max(self.heartbeat_sequence.saturating_add(1));
        let live = self.chain.as_ref().map_or(1, |c| c.ledger().height().saturating_add(1));
        let data = crate::testing::sample_message(
            topic,
            self.handshake.identity(),
            &self.config.network_id,
            self.heartbeat_sequence,
            live,
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
