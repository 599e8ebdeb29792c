//! Liveness and uptime in the event loop: the heartbeats this node sends
//! and hears, the liveness table ([`crate::liveness`]), the uptime duty
//! ([`crate::uptime`]: witnessing, attestations, the node's own uptime
//! proof) and the operations metrics ([`crate::ops_metrics`]). The
//! decisions live in those sans-IO modules; this file only moves their
//! inputs and outputs.

use libp2p::PeerId;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::limits::{MAX_HEARTBEAT_RTTS, MAX_RTT_PEER_ID_LEN};
use tiernet_core::wire::proto::{self, meta_message};
use tiernet_core::wire::sign::{SignedMessage, header_hash};
use tiernet_core::wire::{Topic, encode};
use tracing::{debug, info, warn};

use super::{Node, now_ms};
use crate::consensus::chain::ProofOutcome;
use crate::liveness::{Heard, Transition};
use crate::ops_metrics::StateLabels;
use crate::telemetry::AlertsView;

/// Most peers whose round-trip time is remembered.
pub const MAX_RTT_PEERS: usize = 1024;

impl Node {
    /// A ping answer: remember the round-trip time for our heartbeats.
    pub(super) fn record_ping(&mut self, event: &libp2p::ping::Event) {
        match &event.result {
            Ok(rtt) => {
                if self.rtts.len() < MAX_RTT_PEERS || self.rtts.contains_key(&event.peer) {
                    let ms = u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX);
                    self.rtts.insert(event.peer, ms);
                }
            }
            Err(error) => debug!(peer = %event.peer, %error, "ping failed"),
        }
    }

    /// Forgets a disconnected peer's round-trip time.
    pub(super) fn forget_rtt(&mut self, peer: &PeerId) {
        self.rtts.remove(peer);
    }

    /// Publishes our heartbeat on `meta`: our network, identity (signed by
    /// it; an observer's is unsigned), last decided height and its hash, the
    /// time, a sequence that keeps increasing across restarts (the clock in
    /// ms, or one more than the last), our agent, how many peers we are
    /// connected to and the round-trip times we measured to them.
    pub(super) fn publish_heartbeat(&mut self) {
        let now = now_ms();
        self.heartbeat_sequence = now.max(self.heartbeat_sequence.saturating_add(1));
        let (height, head_hash) = match self.chain.as_ref().and_then(|c| c.last_header()) {
            Some(header) => (header.height, header_hash(header).as_bytes().to_vec()),
            None => (0, Vec::new()),
        };
        let mut rtts: Vec<proto::PeerRtt> = self
            .live
            .keys()
            .filter_map(|peer| {
                let rtt_ms = *self.rtts.get(peer)?;
                let peer_id = peer.to_bytes();
                (peer_id.len() <= MAX_RTT_PEER_ID_LEN).then_some(proto::PeerRtt { peer_id, rtt_ms })
            })
            .collect();
        rtts.sort_by(|a, b| a.rtt_ms.cmp(&b.rtt_ms).then(a.peer_id.cmp(&b.peer_id)));
        rtts.truncate(MAX_HEARTBEAT_RTTS);
        let mut heartbeat = proto::Heartbeat {
            network_id: self.config.network_id.to_string(),
            zsi_id: Vec::new(),
            height,
            head_hash,
            time_ms: now,
            sequence: self.heartbeat_sequence,
            agent: crate::behaviour::agent_version(),
            signature: Vec::new(),
            peer_count: u32::try_from(self.live.len()).unwrap_or(u32::MAX),
            rtts,
        };
        if let Some(identity) = self.handshake.identity() {
            heartbeat.zsi_id = identity.zsi_id().as_bytes().to_vec();
            heartbeat.sign_with(identity.identity_key());
        }
        let message = proto::MetaMessage {
            kind: Some(meta_message::Kind::Heartbeat(heartbeat)),
        };
        if let Err(error) = self.publish(Topic::Meta, encode(&message)) {
            debug!(%error, "heartbeat not published");
        }
    }

    /// An accepted `meta` message: a heartbeat updates the liveness table,
    /// the propagation histogram and the uptime witness book; an
    /// attestation may countersign one of our own claims.
    pub(super) fn on_meta(&mut self, message: &proto::MetaMessage, publisher: Option<PeerId>) {
        let now = now_ms();
        match &message.kind {
            Some(meta_message::Kind::Heartbeat(hb)) => {
                let _span = tracing::debug_span!("heartbeat", height = hb.height).entered();
                if now >= hb.time_ms {
                    self.ops
                        .heartbeat_propagation
                        .observe((now - hb.time_ms) as f64 / 1_000.0);
                }
                // Observers (light clients, TL0) come and go: only nodes
                // with a registered identity are tracked and alerted on.
                let Some(zsi) = ZsiId::from_slice(&hb.zsi_id) else {
                    debug!(publisher = ?publisher, "observer heartbeat");
                    return;
                };
                let height = self.chain.as_ref().map_or(0, |c| c.ledger().height());
                if let Some(duty) = self.uptime.as_mut() {
                    duty.heard(zsi, height, now);
                }
                let node = zsi.to_string();
                let heard = Heard {
                    height: hb.height,
                    head_hash: hex::encode(&hb.head_hash),
                    agent: hb.agent.clone(),
                    peer_count: hb.peer_count,
                    rtts: hb
                        .rtts
                        .iter()
                        .map(|r| {
                            let peer = PeerId::from_bytes(&r.peer_id)
                                .map_or_else(|_| hex::encode(&r.peer_id), |p| p.to_string());
                            (peer, r.rtt_ms)
                        })
                        .collect(),
                    sent_ms: hb.time_ms,
                };
                if let Some(Transition::Online { node }) = self.liveness.heard(&node, heard, now) {
                    info!(%node, height = hb.height, "node back online");
                }
                self.update_liveness_gauges();
            }
            Some(meta_message::Kind::Attestation(attestation)) => {
                if let Some(duty) = self.uptime.as_mut()
                    && duty.on_attestation(attestation)
                {
                    debug!(
                        witness = hex::encode(
                            attestation
                                .witness
                                .as_ref()
                                .map(|w| w.witness.as_slice())
                                .unwrap_or(&[])
                        ),
                        "countersignature of our uptime claim"
                    );
                }
            }
            None => {}
        }
    }

    /// Reports nodes that fell silent.
    pub(super) fn liveness_tick(&mut self) {
        let now = now_ms();
        for transition in self.liveness.tick(now) {
            if let Transition::Offline { node, silent_ms } = transition {
                warn!(%node, silent_ms, offline_after = self.config.offline_after, "node offline: no heartbeat");
                self.ops.liveness_offline.inc();
            }
        }
        self.update_liveness_gauges();
    }

    fn update_liveness_gauges(&self) {
        let (online, offline) = self.liveness.counts();
        for (state, n) in [("online", online), ("offline", offline)] {
            self.ops
                .liveness_nodes
                .get_or_create(&StateLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.ops
            .best_known_height
            .set(i64::try_from(self.liveness.best_height()).unwrap_or(i64::MAX));
        let validators_offline = self.validators.as_ref().map_or(0, |set| {
            self.liveness
                .offline(now_ms())
                .iter()
                .filter_map(|n| ZsiId::from_hex(&n.node))
                .filter(|id| set.contains(id))
                .count()
        });
        self.ops
            .validators_offline
            .set(i64::try_from(validators_offline).unwrap_or(i64::MAX));
    }

    /// After a committed block: gauges, then the uptime duty publishes its
    /// attestations and, when one is due, our own uptime proof.
    pub(super) fn uptime_after_commit(&mut self) {
        let Some(chain) = self.chain.as_ref() else {
            return;
        };
        let height = chain.ledger().height();
        self.ops
            .mempool_size
            .set(i64::try_from(chain.mempool().len()).unwrap_or(i64::MAX));
        self.ops.syncing.set(i64::from(self.catch_up.target() > height));
        let identity = self.handshake.identity().cloned();
        let credited_to = identity
            .as_ref()
            .and_then(|i| chain.ledger().uptime_credited_to(&i.zsi_id()));
        let Some(duty) = self.uptime.as_mut() else {
            return;
        };
        let (attestations, proof) = duty.on_height(height, identity.as_ref(), credited_to);
        for attestation in attestations {
            let message = proto::MetaMessage {
                kind: Some(meta_message::Kind::Attestation(attestation)),
            };
            match self.publish(Topic::Meta, encode(&message)) {
                Ok(_) => {
                    self.ops.attestations.inc();
                }
                Err(error) => debug!(%error, "attestation not published"),
            }
        }
        if let Some(envelope) = proof {
            self.submit_uptime_proof(envelope);
        }
    }

    fn submit_uptime_proof(&mut self, envelope: proto::ProofEnvelope) {
        let Some(chain) = self.chain.as_mut() else {
            return;
        };
        let window = claim_window(&envelope.statement);
        let outcome = chain.submit_proof(&envelope);
        match &outcome {
            ProofOutcome::Accepted => {
                info!(?window, height = envelope.height, "own uptime proof submitted");
                self.ops.uptime_proofs.inc();
            }
            other => warn!(?window, outcome = ?other, "own uptime proof not taken by our own mempool"),
        }
        if outcome == ProofOutcome::Accepted {
            let message = proto::ProofsMessage {
                envelope: Some(envelope),
            };
            if let Err(error) = self.publish(Topic::Proofs, encode(&message)) {
                debug!(%error, "uptime proof not published (it waits in our mempool)");
            }
        }
    }

    /// The `/alerts` view.
    pub(super) fn alerts_view(&self) -> AlertsView {
        AlertsView {
            offline_after_heartbeats: self.config.offline_after,
            heartbeat_interval_ms: u64::try_from(self.config.heartbeat_interval.as_millis()).unwrap_or(u64::MAX),
            offline: self.liveness.offline(now_ms()),
            behind: self.liveness.behind(now_ms(), super::BEHIND_ALERT_BLOCKS),
        }
    }
}

/// The window of an encoded `UptimeClaim`, for log lines.
fn claim_window(statement: &[u8]) -> Option<(u64, u64)> {
    use prost::Message;
    proto::UptimeClaim::decode(statement)
        .ok()
        .map(|c| (c.from_height, c.to_height))
}
