//! The chain inside the event loop: accepted `blocks` and `votes` messages
//! and fired timers go to the consensus engine; its outputs are published,
//! scheduled, or turned into sync requests; each committed block refreshes
//! the registry, the validator set and the tiers of connected peers; the
//! `/tiernet/sync/1` protocol serves finalized blocks and headers and
//! fetches them when this node is behind.

use std::time::Duration;

use arc_malachitebft_core_types::Timeout;
use futures::FutureExt;
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use prost::Message;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tiernet_core::wire::{Topic, encode};
use tracing::{debug, info, warn};

use super::{Node, now_ms};
use crate::consensus::engine::{EngineInput, Output};
use crate::sync_server::{self, SyncServer};
use crate::telemetry::{BlockView, ChainView, FINALITY_SAMPLES_KEPT, FinalitySample, IdentityView, ValidatorView};
use tiernet_core::wire::sign::{SignedMessage, header_hash};

/// Most consensus timers armed at once (core arms a handful per round).
pub const MAX_TIMERS: usize = 64;
/// Own consensus messages remembered to skip republishing them.
pub const MAX_PUBLISHED_REMEMBERED: usize = 1024;
/// A sync request older than this is forgotten and may be sent again.
pub const SYNC_RETRY: Duration = Duration::from_secs(3);

/// A timer the engine asked for.
pub(super) type TimerFuture = futures::future::BoxFuture<'static, (Timeout, u64)>;

/// Catch-up in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyncInFlight {
    pub(super) request: OutboundRequestId,
    pub(super) sent_ms: u64,
}

impl Node {
    /// Starts the engine (called once the event loop runs).
    pub(super) fn start_consensus(&mut self) {
        self.drive(EngineInput::Start, None);
    }

    /// Feeds the engine and carries out what it asks for. `source` is the
    /// peer the input came from (asked for blocks when we are behind).
    pub(super) fn drive(&mut self, input: EngineInput, source: Option<PeerId>) {
        let (Some(engine), Some(chain)) = (self.engine.as_mut(), self.chain.as_mut()) else {
            return;
        };
        let height_before = chain.ledger().height();
        let outputs = engine.handle(input, now_ms(), chain);
        let committed = chain.ledger().height() != height_before;
        for output in outputs {
            match output {
                Output::PublishBlocks(m) => self.publish_own(Topic::Blocks, encode(&m)),
                Output::PublishVotes(m) => self.publish_own(Topic::Votes, encode(&m)),
                Output::RebroadcastVotes(mut m) => {
                    m.rebroadcast_ms = now_ms();
                    if let Err(error) = self.publish(Topic::Votes, encode(&m)) {
                        debug!(%error, "vote rebroadcast not published");
                    }
                }
                Output::Schedule {
                    timeout,
                    after,
                    generation,
                } => {
                    if self.timers.len() < MAX_TIMERS {
                        self.timers
                            .push(tokio::time::sleep(after).map(move |()| (timeout, generation)).boxed());
                    } else {
                        warn!("too many consensus timers armed; one dropped");
                    }
                }
                Output::Behind { from, seen } => self.catch_up(from, seen, source),
                Output::Decided { height, block, .. } => {
                    // From the proposer's block time to the decision here.
                    let proposed = block.header.as_ref().map_or(0, |h| h.time_ms);
                    let latency = now_ms().saturating_sub(proposed);
                    self.metrics.chain_height.set(i64::try_from(height).unwrap_or(i64::MAX));
                    self.metrics.finality_ms.set(i64::try_from(latency).unwrap_or(i64::MAX));
                    self.metrics.proofs_included.inc_by(block.proofs.len() as u64);
                    if self.finality.len() >= FINALITY_SAMPLES_KEPT {
                        self.finality.pop_front();
                    }
                    self.finality.push_back(FinalitySample {
                        height,
                        latency_ms: latency,
                    });
                    info!(height, latency_ms = latency, "height decided");
                }
            }
        }
        if committed {
            self.after_commit();
        }
    }

    /// Publishes a consensus message of our own (no peers yet is normal on
    /// start). GossipSub refuses an identical message it already
    /// published, so repeats are skipped here; rebroadcasts for liveness
    /// go out as [`Output::RebroadcastVotes`] with distinct bytes.
    fn publish_own(&mut self, topic: Topic, data: Vec<u8>) {
        let digest = *blake3::hash(&data).as_bytes();
        if self.published.contains(&digest) {
            return;
        }
        if self.published.len() >= MAX_PUBLISHED_REMEMBERED {
            self.published.pop_front();
        }
        self.published.push_back(digest);
        if let Err(error) = self.publish(topic, data) {
            debug!(%error, "consensus message not published");
        }
    }

    /// After a block: chain state is the new truth for tiers, the registry
    /// and the validator set; connected peers are re-tiered.
    fn after_commit(&mut self) {
        let Some(chain) = &self.chain else {
            return;
        };
        let ledger = chain.ledger();
        self.handshake.set_registry(ledger.registry().clone());
        self.validators = Some(ledger.validators().clone());
        let mut changed = Vec::new();
        for (peer, live) in &mut self.live {
            let Some(standing) = live.standing.as_mut() else {
                continue;
            };
            let Some(zsi) = standing.zsi_id else {
                continue;
            };
            let tier = ledger.tier(&zsi);
            if tier != standing.tier {
                info!(%peer, %zsi, from = %standing.tier, to = %tier, "peer tier changed by the chain");
                standing.tier = tier;
                changed.push((*peer, tier));
            }
        }
        self.take_snapshot();
        for (peer, tier) in changed {
            if let Err(error) = self.peerstore.set_tier(&peer, tier) {
                warn!(%peer, %error, "cannot record the peer's new tier");
            }
            self.refresh_score(peer);
        }
        self.update_tier_gauge();
    }

    /// Takes the snapshot due at this height (if any) and, as a TL2+ node,
    /// announces it on `snapshots`.
    fn take_snapshot(&mut self) {
        let (Some(chain), Some(snapshots)) = (&self.chain, &self.snapshots) else {
            return;
        };
        let height = chain.ledger().height();
        let manifest = match snapshots.after_commit(height, &self.config.network_id, chain.state()) {
            Ok(Some(manifest)) => manifest,
            Ok(None) => return,
            Err(error) => {
                warn!(height, %error, "snapshot not taken");
                return;
            }
        };
        info!(
            height,
            chunks = manifest.chunk_count,
            entries = manifest.total_entries,
            "snapshot taken"
        );
        let Some(identity) = self.handshake.identity() else {
            return;
        };
        if chain.ledger().tier(&identity.zsi_id()) < tiernet_core::tier::Tier::TL2 {
            return;
        }
        let message = proto::SnapshotsMessage {
            announcement: Some(crate::snapshots::announcement(manifest, identity)),
        };
        if let Err(error) = self.publish(Topic::Snapshots, encode(&message)) {
            debug!(%error, "snapshot announcement not published");
        }
    }

    /// Asks `source` (or any connected peer) for the block at `from`.
    fn catch_up(&mut self, from: u64, seen: u64, source: Option<PeerId>) {
        let now = now_ms();
        if let Some(inflight) = self.sync_inflight
            && now.saturating_sub(inflight.sent_ms) < SYNC_RETRY.as_millis() as u64
        {
            return;
        }
        let peer = source.or_else(|| self.live.keys().next().copied());
        let Some(peer) = peer else {
            return;
        };
        debug!(%peer, from, seen, "behind; requesting a finalized block");
        let request = self.swarm.behaviour_mut().sync.send_request(
            &peer,
            proto::SyncRequest {
                kind: Some(sync_request::Kind::Block(proto::BlockRequest { height: from })),
            },
        );
        self.sync_inflight = Some(SyncInFlight { request, sent_ms: now });
    }

    pub(super) fn handle_sync(&mut self, event: request_response::Event<proto::SyncRequest, proto::SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.answer_sync(peer, request, channel);
                }
                request_response::Message::Response { request_id, response } => {
                    let ours = self.sync_inflight.filter(|s| s.request == request_id);
                    if ours.is_none() {
                        return;
                    }
                    self.sync_inflight = None;
                    match response.kind {
                        Some(sync_response::Kind::Block(fb)) => {
                            let height = fb
                                .block
                                .as_ref()
                                .and_then(|b| b.header.as_ref())
                                .map_or(0, |h| h.height);
                            debug!(%peer, height, "finalized block from sync");
                            self.drive(
                                EngineInput::Blocks(proto::BlocksMessage {
                                    kind: Some(proto::blocks_message::Kind::Finalized(fb)),
                                }),
                                Some(peer),
                            );
                        }
                        Some(sync_response::Kind::Error(e)) => {
                            debug!(%peer, code = e.code, message = %e.message, "sync error")
                        }
                        _ => debug!(%peer, "unexpected sync response"),
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                if self.sync_inflight.is_some_and(|s| s.request == request_id) {
                    self.sync_inflight = None;
                }
                debug!(%peer, %error, "sync request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => debug!(%peer, %error, "sync answer failed"),
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn answer_sync(
        &mut self,
        peer: PeerId,
        request: proto::SyncRequest,
        channel: ResponseChannel<proto::SyncResponse>,
    ) {
        let now = now_ms();
        let response = if !self
            .rate_limits
            .check(&(peer, Topic::Blocks), super::gossip_flow::SYNC_RATE, now)
        {
            sync_server::error(
                proto::SyncErrorCode::RateLimited,
                format!(
                    "too many sync requests: at most {} per second, bursts of {}",
                    super::gossip_flow::SYNC_RATE.per_second,
                    super::gossip_flow::SYNC_RATE.burst
                ),
            )
        } else {
            match &self.chain {
                None => sync_server::error(proto::SyncErrorCode::NotFound, "this node has no chain (no genesis)"),
                Some(chain) => SyncServer {
                    chain,
                    snapshots: self.snapshots.as_ref(),
                    forge: self.config.testing_forge_sync,
                }
                .answer(request),
            }
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            debug!(%peer, "sync requester went away");
        }
    }
}

impl Node {
    pub(super) fn chain_view(&self) -> Option<ChainView> {
        let chain = self.chain.as_ref()?;
        let ledger = chain.ledger();
        Some(ChainView {
            height: ledger.height(),
            block_hash: chain
                .last_header()
                .map(|h| header_hash(h).to_string())
                .unwrap_or_default(),
            state_root: ledger.root().to_string(),
            validators: ledger
                .validators()
                .iter()
                .map(|v| ValidatorView {
                    zsi_id: v.zsi_id.to_string(),
                    power: v.power,
                })
                .collect(),
            identities: ledger
                .registry()
                .iter()
                .map(|(id, r)| IdentityView {
                    zsi_id: id.to_string(),
                    tier: ledger.tier(id).label().to_owned(),
                    score: r.reputation.score,
                    uptime_minutes: r.reputation.uptime_minutes,
                    participation: r.reputation.participation,
                    slashed: r.reputation.slashed,
                })
                .collect(),
            mempool: chain.mempool().ids().iter().map(ToString::to_string).collect(),
            pending_evidence: chain.pending_evidence().len(),
            finality: self.finality.iter().copied().collect(),
        })
    }

    pub(super) fn block_view(&self, height: u64) -> Option<BlockView> {
        let fb = self.chain.as_ref()?.block(height).ok()??;
        let header = fb.block.as_ref()?.header.as_ref()?;
        Some(BlockView {
            height,
            hash: header_hash(header).to_string(),
            finalized: hex::encode(fb.encode_to_vec()),
        })
    }

    /// Test API: takes a proof envelope into our mempool and publishes it.
    pub(super) fn submit_own_proof(&mut self, envelope_hex: &str) -> Result<String, String> {
        let bytes = hex::decode(envelope_hex).map_err(|e| format!("envelope is not hex: {e}"))?;
        let envelope =
            proto::ProofEnvelope::decode(bytes.as_slice()).map_err(|e| format!("not a ProofEnvelope: {e}"))?;
        let outcome = match self.chain.as_mut() {
            Some(chain) => format!("{:?}", chain.submit_proof(&envelope)),
            None => "no chain".to_owned(),
        };
        let message = proto::ProofsMessage {
            envelope: Some(envelope),
        };
        let id = self.publish(Topic::Proofs, encode(&message)).unwrap_or_else(|e| e);
        Ok(format!("{id} local={outcome}"))
    }

    /// Test API: signs two prevotes for different blocks at the height
    /// being decided, round 0, with our consensus key, and publishes both.
    pub(super) fn equivocate(&mut self) -> Result<String, String> {
        let identity = self.handshake.identity().ok_or("no identity")?.clone();
        let height = self
            .chain
            .as_ref()
            .ok_or("no chain")?
            .ledger()
            .height()
            .saturating_add(1);
        let mut ids = Vec::new();
        for fill in [0xA1u8, 0xB2] {
            let mut vote = proto::Vote {
                network_id: self.config.network_id.to_string(),
                vote_type: proto::VoteType::Prevote as i32,
                height,
                round: 0,
                block_hash: vec![fill; 32],
                validator: identity.zsi_id().as_bytes().to_vec(),
                signature: Vec::new(),
            };
            vote.sign_with(identity.identity_key());
            let message = proto::VotesMessage {
                kind: Some(proto::votes_message::Kind::Vote(vote)),
                rebroadcast_ms: 0,
            };
            ids.push(self.publish(Topic::Votes, encode(&message))?);
        }
        Ok(format!("height {height}: {}", ids.join(" ")))
    }
}
