//! The chain inside the event loop: accepted `blocks` and `votes` messages
//! and fired timers go to the consensus engine; its outputs are published,
//! scheduled, or turned into sync requests; each committed block refreshes
//! the registry, the validator set and the tiers of connected peers; the
//! `/tiernet/sync/1` protocol serves finalized blocks and headers and
//! fetches them when this node is behind.

use arc_malachitebft_core_types::Timeout;
use futures::FutureExt;
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use prost::Message;
use tiernet_core::chain::Parent;
use tiernet_core::ratelimit::{Limit, Rate};
use tiernet_core::reputation::PeerEvent;
use tiernet_core::wire::proto::{self, sync_request, sync_response};
use tiernet_core::wire::{Topic, encode};
use tracing::{debug, info, warn};

use super::{Node, now_ms};
use crate::catch_up::{Answer, Candidate};
use crate::consensus::engine::{EngineInput, Output};
use crate::sync_server::{self, SyncServer};
use crate::telemetry::{BlockView, ChainView, FINALITY_SAMPLES_KEPT, FinalitySample, IdentityView, ValidatorView};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // SignedMessage: the test API only
use tiernet_core::wire::sign::{SignedMessage, header_hash};

/// Most consensus timers armed at once (core arms a handful per round).
pub const MAX_TIMERS: usize = 64;
/// Own consensus messages remembered to skip republishing them.
pub const MAX_PUBLISHED_REMEMBERED: usize = 1024;
/// A timer the engine asked for.
pub(super) type TimerFuture = futures::future::BoxFuture<'static, (Timeout, u64)>;

/// Sync requests one peer may make (blocks, headers, proofs, state, chunks).
#[derive(Debug)]
pub enum SyncLimit {}

impl Limit for SyncLimit {
    type Key = PeerId;
    const NAME: &'static str = "sync_requests";
    fn rate(_: &PeerId) -> Rate {
        Rate::new(50.0, 100.0)
    }
}

impl Node {
    /// Starts the engine (called once the event loop runs).
    pub(super) fn start_consensus(&mut self) {
        self.drive(EngineInput::Start);
    }

    /// Feeds the engine and carries out what it asks for.
    pub(super) fn drive(&mut self, input: EngineInput) {
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
                    // Stamped and signed by us (the voter), so that no one
                    // else can re-stamp our vote to mint a new message id.
                    let Some(identity) = self.handshake.identity() else {
                        continue;
                    };
                    m.rebroadcast_ms = now_ms();
                    m.sign_with(identity.identity_key());
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
                Output::Behind { seen, .. } => self.drive_behind(seen.saturating_sub(1)),
                Output::Decided { height, block, .. } => {
                    // From the proposer's block time to the decision here.
                    let proposed = block.header.as_ref().map_or(0, |h| h.time_ms);
                    let latency = now_ms().saturating_sub(proposed);
                    self.metrics.chain_height.set(i64::try_from(height).unwrap_or(i64::MAX));
                    self.metrics.finality_ms.set(i64::try_from(latency).unwrap_or(i64::MAX));
                    self.ops.finality.observe(latency as f64 / 1_000.0);
                    self.metrics.proofs_included.inc_by(block.proofs.len() as u64);
                    if self.finality.len() >= FINALITY_SAMPLES_KEPT {
                        self.finality.pop_front();
                    }
                    self.finality.push_back(FinalitySample {
                        height,
                        latency_ms: latency,
                    });
                    info!(height, latency_ms = latency, "height decided");
                    #[cfg(feature = "testing")]
                    self.probe(|| super::probe::ProbeEvent::Decided {
                        height,
                        hash: block
                            .header
                            .as_ref()
                            .map_or([0; 32], |h| *tiernet_core::wire::sign::header_hash(h).as_bytes()),
                        proposed_ms: proposed,
                        at_ms: now_ms(),
                    });
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
        let _span = tracing::info_span!("block_commit", height = chain.ledger().height()).entered();
        let ledger = chain.ledger();
        self.handshake.set_registry(ledger.registry().clone());
        self.validators = Some(ledger.validators().clone());
        self.peerstore
            .set_protected(ledger.validators().iter().map(|v| v.zsi_id).collect());
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
        self.uptime_after_commit();
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

    /// An authentic message showed block `finalized` to be decided
    /// elsewhere: catch up to it. Whoever delivered that message is only one
    /// candidate among the connected peers ([`crate::catch_up`]).
    pub(super) fn drive_behind(&mut self, finalized: u64) {
        self.catch_up.saw(finalized);
        self.poll_catch_up();
    }

    /// Sends the next catch-up request, if one is due (also called on a
    /// timer, so that a peer that never answers is passed over).
    pub(super) fn poll_catch_up(&mut self) {
        let Some(chain) = &self.chain else {
            return;
        };
        let head = chain.ledger().height();
        let validators = chain.validators();
        let now = now_ms();
        let candidates: Vec<Candidate> = self
            .live
            .iter()
            .map(|(peer, live)| Candidate {
                peer: *peer,
                validator: live
                    .standing
                    .as_ref()
                    .and_then(|s| s.zsi_id)
                    .is_some_and(|zsi| validators.contains(&zsi)),
                score: self.peerstore.score(peer, now),
            })
            .collect();
        let silent_before = self.catch_up.silent();
        let ask = self.catch_up.poll(head, &candidates, now);
        let newly_silent = self.catch_up.silent() - silent_before;
        if newly_silent > 0 {
            self.metrics
                .catch_up
                .get_or_create(&crate::metrics::AnswerLabels { answer: "silent" })
                .inc_by(newly_silent);
        }
        let Some(ask) = ask else {
            return;
        };
        debug!(peer = %ask.peer, height = ask.height, target = self.catch_up.target(), "behind; requesting a finalized block");
        let request = self.swarm.behaviour_mut().sync.send_request(
            &ask.peer,
            proto::SyncRequest {
                kind: Some(sync_request::Kind::Block(proto::BlockRequest { height: ask.height })),
            },
        );
        self.catch_up.sent(ask, request, now);
        self.sync_sent_ms = Some(now);
        self.ops.syncing.set(1);
    }

    /// Judges a catch-up answer, applies it if it is good, and records the
    /// outcome against the peer.
    fn on_catch_up_response(
        &mut self,
        peer: PeerId,
        request: OutboundRequestId,
        asked: u64,
        response: proto::SyncResponse,
    ) {
        let now = now_ms();
        let _span = tracing::info_span!("sync_request", %peer, height = asked).entered();
        if let Some(sent) = self.sync_sent_ms.take() {
            self.ops.sync_request.observe(now.saturating_sub(sent) as f64 / 1_000.0);
        }
        let answer = match response.kind {
            Some(sync_response::Kind::Block(fb)) => self.apply_caught_up(peer, asked, fb),
            Some(sync_response::Kind::Error(e)) => {
                debug!(%peer, code = e.code, message = %e.message, "catch-up: sync error");
                Answer::NotFound
            }
            _ => {
                debug!(%peer, "catch-up: not a block");
                Answer::Invalid
            }
        };
        self.metrics
            .catch_up
            .get_or_create(&crate::metrics::AnswerLabels { answer: answer.label() })
            .inc();
        if let Some(event) = self.catch_up.answered(request, answer, now) {
            if event == PeerEvent::BadResponse {
                warn!(%peer, height = asked, "catch-up: invalid block; asking another peer");
                self.penalise(peer, event, now);
            } else {
                self.credit(peer, event, now);
            }
        }
        self.poll_catch_up();
    }

    /// Checks a finalized block asked for at `asked` against our head and
    /// validator set before the engine sees it.
    fn apply_caught_up(&mut self, peer: PeerId, asked: u64, fb: proto::FinalizedBlock) -> Answer {
        let Some(chain) = &self.chain else {
            return Answer::Unusable;
        };
        let head = chain.ledger().height();
        if asked <= head {
            // Our head moved (gossip was faster): nothing to judge.
            return Answer::Unusable;
        }
        let height = fb
            .block
            .as_ref()
            .and_then(|b| b.header.as_ref())
            .map_or(0, |h| h.height);
        if height != asked {
            debug!(%peer, asked, height, "catch-up: a block at another height");
            return Answer::Invalid;
        }
        let parent = match chain.last_header() {
            Some(header) => Parent::Header(header),
            None => Parent::Genesis(chain.genesis()),
        };
        if let Err(error) =
            tiernet_core::chain::validate_certified(parent, &fb, chain.validators(), &self.config.network_id)
        {
            debug!(%peer, height, %error, "catch-up: block does not verify");
            return Answer::Invalid;
        }
        debug!(%peer, height, "finalized block from sync");
        self.drive(EngineInput::Blocks(proto::BlocksMessage {
            kind: Some(proto::blocks_message::Kind::Finalized(fb)),
        }));
        let moved = self.chain.as_ref().is_some_and(|c| c.ledger().height() >= asked);
        if moved { Answer::Applied } else { Answer::Unusable }
    }

    pub(super) fn handle_sync(&mut self, event: request_response::Event<proto::SyncRequest, proto::SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.answer_sync(peer, request, channel);
                }
                request_response::Message::Response { request_id, response } => {
                    if self.on_registration_response(request_id, &response) {
                        return;
                    }
                    if let Some(asked) = self.catch_up.asked(request_id) {
                        self.on_catch_up_response(peer, request_id, asked, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                debug!(%peer, %error, "sync request failed");
                if self.catch_up.asked(request_id).is_some() {
                    self.metrics
                        .catch_up
                        .get_or_create(&crate::metrics::AnswerLabels {
                            answer: Answer::Failed.label(),
                        })
                        .inc();
                    let _ = self.catch_up.answered(request_id, Answer::Failed, now_ms());
                }
                self.poll_catch_up();
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
        #[cfg(feature = "testing")]
        if self.config.testing_silent_sync {
            // The silent peer of the catch-up tests: hold the request open
            // and never answer (bounded: the oldest is dropped).
            if self.silent_requests.len() >= 64 {
                self.silent_requests.pop_front();
            }
            self.silent_requests.push_back(channel);
            debug!(%peer, ?request, "test switch: sync request held unanswered");
            return;
        }
        let response = if !self.sync_limits.check(&peer, now) {
            let rate = SyncLimit::rate(&peer);
            sync_server::error(
                proto::SyncErrorCode::RateLimited,
                format!(
                    "too many sync requests: at most {} per second, bursts of {}",
                    rate.per_second, rate.burst
                ),
            )
        } else if let Some(proto::sync_request::Kind::SubmitProof(submit)) = request.kind {
            self.answer_submit_proof(peer, submit, now)
        } else {
            match &self.chain {
                None => sync_server::error(proto::SyncErrorCode::NotFound, "this node has no chain (no genesis)"),
                Some(chain) => {
                    // Peer exchange (issue 18): other connected peers' addresses.
                    let peers = match &request.kind {
                        Some(proto::sync_request::Kind::Peers(_)) => self.peer_addrs_for(&peer),
                        _ => Vec::new(),
                    };
                    SyncServer {
                        chain,
                        snapshots: self.snapshots.as_ref(),
                        forge: self.config.testing_forge_sync,
                        peers: &peers,
                    }
                    .answer(request)
                }
            }
        };
        self.ops
            .sync_response_bytes
            .observe(prost::Message::encoded_len(&response) as f64);
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
    /// Dialable addresses of the connected, unbanned peers other than
    /// `requester`, from the peerstore (a `Peers` sync answer).
    fn peer_addrs_for(&self, requester: &PeerId) -> Vec<String> {
        let mut live: Vec<&PeerId> = self.live.keys().filter(|p| !self.bans.contains_key(p)).collect();
        live.sort();
        let known = live
            .into_iter()
            .filter_map(|p| self.peerstore.get(p).map(|r| (*p, r.addrs.as_slice())));
        crate::sync_server::peer_addrs(known, requester)
    }

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
    #[cfg(feature = "testing")]
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
    #[cfg(feature = "testing")]
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
                ..Default::default()
            };
            ids.push(self.publish(Topic::Votes, encode(&message))?);
        }
        Ok(format!("height {height}: {}", ids.join(" ")))
    }
}
