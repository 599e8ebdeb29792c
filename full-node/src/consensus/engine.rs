//! A sans-IO driver over Malachite core (CONSENSUS.md §3).
//!
//! [`Engine::handle`] takes one [`EngineInput`] (start, a message from the
//! `blocks` or `votes` topic, a fired timer), runs it through `process!`
//! together with every input core asked for along the way (the outbox:
//! `GetValue` → `Propose`, `Finalize` → `StartHeight`), and returns what the
//! caller must do as [`Output`]s.
//!
//! The application behind it ([`App`]) builds and executes blocks, persists
//! decisions, and keeps the double-sign guard: every vote and proposal is
//! recorded durably before it is published, and a second, different one in
//! the same slot is never published (this stands in for Malachite's WAL:
//! after a crash the node resumes at the height after its last stored block
//! and cannot equivocate whatever it decides again).
//!
//! Catch-up: a [`proto::FinalizedBlock`] for the height being decided (from
//! `blocks` or from the sync protocol) is checked — header links, commit
//! certificate against the current set, execution — and decides that
//! height directly. Messages for later heights raise [`Output::Behind`].
//!
//! Time is an input: [`Engine::handle`] takes the caller's clock `now_ms`
//! and the engine never reads one. It is used twice:
//!
//! - a received proposal whose block is more than the genesis
//!   `max_clock_skew_ms` ahead of `now_ms` (or breaks the time rule against
//!   its parent: strictly later, at most
//!   [`tiernet_core::chain::MAX_BLOCK_INTERVAL_MS`] later) is not handed to
//!   core, exactly like any other invalid proposal: core's propose timeout
//!   fires and this validator prevotes nil, so the height is decided in a
//!   later round by another proposer;
//! - this validator's own blocks get [`next_block_time`]`(parent, now_ms)`,
//!   which always meets the time rule.
//!
//! A finalized block from catch-up is certified: it is held to the time
//! rule but not to the clock ([`chain::validate_certified`] says why); one
//! ahead of our clock is logged, and our clock stays what it is.
//!
//! Proposals for the next height arrive before it starts and cannot be
//! checked yet (their parent is undecided); the engine keeps them, bounded
//! on both sides: only for the height right after the current one, only
//! for rounds below [`MAX_PENDING_PROPOSALS`], only the one of the
//! validator whose turn that round is, first come per round. Nobody can
//! crowd out the proposal that matters, and the buffer never holds more
//! than [`MAX_PENDING_PROPOSALS`] proposals.
//!
//! Liveness: core's rebroadcast timeout sends this validator's latest votes
//! again as [`Output::RebroadcastVotes`] (the caller stamps them so GossipSub
//! does not drop them as duplicates). After a restart mid-round, core has
//! forgotten the votes it cast and the guard refuses different ones in those
//! slots; the votes on disk go out instead, so peers stuck in that round get
//! what they need to complete it. Polka and round certificates are verified
//! when fed but not published: the rebroadcast votes carry the same
//! information, one vote at a time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use arc_malachitebft_core_consensus::{
    ConsensusMsg, Effect, Error as CoreError, Input, LivenessMsg, LocallyProposedValue, Params, Resumable, Resume,
    SignedConsensusMsg, State, ThresholdParams, process,
};
use arc_malachitebft_core_types::{
    CertificateError as MCertError, Context as _, LinearTimeouts, NilOrVal, PolkaCertificate, Round, RoundCertificate,
    RoundCertificateType, SignedMessage, Timeout, TimeoutKind, Timeouts, ValidatorSet as _, ValuePayload,
    VoteExtensionPolicy, VoteType,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use tiernet_core::chain::{self, CertificateError, GenesisAnchor, Parent, next_block_time, verify_commit};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::proto::{self, blocks_message, votes_message};
use tiernet_core::wire::sign::SignedMessage as WireSigned;

use crate::block_store::{Guard, SignedKind};

use super::context::{
    Address, BlockValue, ConsensusProposal, ConsensusValidatorSet, ConsensusVote, Height, Sig, TierCtx, commit_to_proto,
};

/// Most blocks kept per height while waiting for a decision.
pub const MAX_BLOCKS_PER_HEIGHT: usize = 64;
/// Capacity of core's queue of early messages (all heights / per height).
pub const QUEUE_CAPACITY: usize = 1024;
/// Proposals for the next height are kept for its rounds `0..MAX_PENDING_PROPOSALS`,
/// one per round (that round's proposer's), so at most this many.
pub const MAX_PENDING_PROPOSALS: usize = 16;
/// Most local inputs queued inside one [`Engine::handle`] call.
pub const MAX_OUTBOX: usize = 64;

/// What the engine asks of the application.
pub trait App {
    /// The block this validator proposes in `round` on top of `parent`,
    /// stamped `time_ms` (the engine's [`next_block_time`], which meets
    /// the time rule); `None` proposes nothing and lets the round time out.
    fn build(&mut self, parent: Parent<'_>, round: u32, time_ms: u64) -> Option<proto::Block>;
    /// Whether a proposed block, whose header already passed
    /// `validate_block` against its parent, executes to its state root.
    fn check(&mut self, block: &proto::Block) -> bool;
    /// Records durably that this validator signs `hash` (empty = nil) in
    /// slot `(height, round, kind)`, with the signed vote itself for votes
    /// (the double-sign guard, see [`crate::block_store::BlockStore::guard`]).
    /// On [`Guard::Refuse`] the engine publishes nothing new; it sends the
    /// earlier vote again if there is one.
    fn may_sign(&mut self, height: u64, round: u32, kind: SignedKind, hash: &[u8], vote: Option<&proto::Vote>)
    -> Guard;
    /// A height is decided: execute and persist `block` with `commit`.
    /// Returns the validator set of the next height (`None` if the block
    /// could not be committed; the engine then stops at this height).
    fn commit(&mut self, block: &proto::Block, commit: &proto::CommitCertificate) -> Option<chain::ValidatorSet>;
}

/// Where an engine starts, and the chain's clock rule it votes by.
#[derive(Debug, Clone)]
pub struct StartPoint {
    /// The last decided header (`None` at genesis).
    pub last_header: Option<proto::Header>,
    /// The set that signs the next height.
    pub set: chain::ValidatorSet,
    /// How far ahead of `now_ms` a proposal's time may be for this
    /// validator to vote for it (the genesis `max_clock_skew_ms`).
    pub max_clock_skew_ms: u64,
}

/// What the engine is fed.
// Inputs are handled one at a time and never queued in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum EngineInput {
    /// Start consensus at the first height.
    Start,
    /// A message from the `blocks` topic.
    Blocks(proto::BlocksMessage),
    /// A message from the `votes` topic.
    Votes(proto::VotesMessage),
    /// A timer from [`Output::Schedule`] fired.
    Timeout {
        /// The timeout.
        timeout: Timeout,
        /// The generation it was scheduled with.
        generation: u64,
    },
    /// A validator joined or came back: fire the armed rebroadcast timeout
    /// now (our latest votes go out again, and the timer is re-armed).
    /// A restarted validator starts in round 0 and learns where a stalled
    /// round stands only from our votes; at the timer it waited 5 s and
    /// more (+1.5 s a round). Nothing happens when no rebroadcast is armed.
    RebroadcastNow,
}

/// What the caller must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Publish on the `blocks` topic.
    PublishBlocks(proto::BlocksMessage),
    /// Publish on the `votes` topic.
    PublishVotes(proto::VotesMessage),
    /// Publish again on the `votes` topic (core's rebroadcast timeout): the
    /// caller sets `rebroadcast_ms` to its clock so the bytes differ from
    /// the first publication, which GossipSub would drop as a duplicate.
    RebroadcastVotes(proto::VotesMessage),
    /// Feed [`EngineInput::Timeout`] with these fields after `after`.
    Schedule {
        /// The timeout.
        timeout: Timeout,
        /// How long to wait.
        after: Duration,
        /// Its generation (stale firings are ignored).
        generation: u64,
    },
    /// Messages show heights above ours: fetch finalized blocks from
    /// `from` (the next height we need) on, e.g. with the sync protocol.
    Behind {
        /// The first height we lack.
        from: u64,
        /// The highest height seen.
        seen: u64,
    },
    /// A height is decided (already committed by [`App::commit`]).
    Decided {
        /// The height.
        height: u64,
        /// The decided block.
        block: proto::Block,
        /// Its commit certificate (accepted by `verify_commit`).
        commit: proto::CommitCertificate,
    },
}

/// An engine that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The validator set is empty.
    #[error("validator set is empty")]
    EmptySet,
    /// Malachite core reported an error.
    #[error("consensus core: {0}")]
    Core(String),
}

/// One validator's consensus engine (no IO).
pub struct Engine {
    ctx: TierCtx,
    state: State<TierCtx>,
    key: SigningKey,
    set: ConsensusValidatorSet,
    genesis: GenesisAnchor,
    timeouts: LinearTimeouts,
    block_time: Duration,
    last_header: Option<proto::Header>,
    /// Blocks seen at the current height, by id.
    blocks: BTreeMap<Hash32, proto::Block>,
    armed: HashMap<Timeout, u64>,
    generation: u64,
    started: bool,
    /// See [`StartPoint::max_clock_skew_ms`].
    max_clock_skew_ms: u64,
    /// Proposals for the next height by `(height, round)`, checked when it
    /// starts: one height, rounds below [`MAX_PENDING_PROPOSALS`], each
    /// by that round's proposer.
    pending: BTreeMap<(u64, u32), proto::Proposal>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("height", &self.state.height())
            .field("round", &self.state.round())
            .finish_non_exhaustive()
    }
}

struct Turn<'a> {
    ctx: &'a TierCtx,
    key: &'a SigningKey,
    set: &'a mut ConsensusValidatorSet,
    genesis: &'a GenesisAnchor,
    timeouts: &'a LinearTimeouts,
    block_time: Duration,
    now_ms: u64,
    app: &'a mut dyn App,
    last_header: &'a mut Option<proto::Header>,
    blocks: &'a mut BTreeMap<Hash32, proto::Block>,
    armed: &'a mut HashMap<Timeout, u64>,
    generation: &'a mut u64,
    outputs: Vec<Output>,
    outbox: VecDeque<Input<TierCtx>>,
}

impl Engine {
    /// An engine for the validator holding `key` (its address is `me`; a
    /// node outside the set follows without voting), at the height after
    /// `resume.last_header` (height 1 on top of `genesis` when it is
    /// `None`). Heights last at least `block_time`.
    pub fn new(
        genesis: GenesisAnchor,
        resume: StartPoint,
        me: ZsiId,
        key: SigningKey,
        timeouts: LinearTimeouts,
        block_time: Duration,
    ) -> Result<Self, EngineError> {
        let ctx = TierCtx::new(genesis.network.clone());
        let set = ConsensusValidatorSet::new(resume.set).ok_or(EngineError::EmptySet)?;
        let first = resume.last_header.as_ref().map_or(1, |h| h.height.saturating_add(1));
        let params = Params {
            address: Address(me),
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalOnly,
            enabled: true,
        };
        let state = State::new(
            ctx.clone(),
            Height(first),
            set.clone(),
            params,
            QUEUE_CAPACITY,
            QUEUE_CAPACITY,
        );
        Ok(Self {
            ctx,
            state,
            key,
            set,
            genesis,
            timeouts,
            block_time,
            last_header: resume.last_header,
            blocks: BTreeMap::new(),
            armed: HashMap::new(),
            generation: 0,
            started: false,
            max_clock_skew_ms: resume.max_clock_skew_ms,
            pending: BTreeMap::new(),
        })
    }

    /// The current height.
    pub fn height(&self) -> u64 {
        self.state.height().0
    }

    /// The current round (`None` before the first round).
    pub fn round(&self) -> Option<u32> {
        self.state.round().as_u32()
    }

    /// The height of the last decided block (0 before any).
    pub fn decided_height(&self) -> u64 {
        self.last_header.as_ref().map_or(0, |h| h.height)
    }

    /// The validator set of the height being decided.
    pub fn validators(&self) -> &chain::ValidatorSet {
        self.set.chain_set()
    }

    /// Proposals kept for the next height (at most [`MAX_PENDING_PROPOSALS`]).
    pub fn pending_proposals(&self) -> impl Iterator<Item = &proto::Proposal> {
        self.pending.values()
    }

    /// Runs one input and everything it triggers. `now_ms` is the caller's
    /// clock (ms since the Unix epoch): the engine reads no clock of its own.
    pub fn handle(&mut self, input: EngineInput, now_ms: u64, app: &mut dyn App) -> Vec<Output> {
        let height = self.height();
        let mut outputs = self.handle_one(input, now_ms, app);
        // A new height: feed the proposals kept for it, once each (feeding
        // never adds to the buffer). Any kept for a height that is no
        // longer the current one (it moved on meanwhile) are dropped.
        if self.height() != height {
            for p in std::mem::take(&mut self.pending).into_values() {
                if p.height == self.height() {
                    let input = EngineInput::Blocks(proto::BlocksMessage {
                        kind: Some(blocks_message::Kind::Proposal(p)),
                    });
                    outputs.extend(self.handle_one(input, now_ms, app));
                }
            }
        }
        outputs
    }

    fn handle_one(&mut self, input: EngineInput, now_ms: u64, app: &mut dyn App) -> Vec<Output> {
        let mut early = Vec::new();
        let first = match input {
            EngineInput::Start if !self.started => {
                self.started = true;
                Some(self.start_height(self.state.height()))
            }
            EngineInput::Start => None,
            EngineInput::Blocks(msg) => self.decode_blocks(msg, now_ms, app, &mut early),
            EngineInput::Votes(msg) => self.decode_votes(msg, &mut early),
            EngineInput::Timeout { timeout, generation } => {
                if self.armed.get(&timeout) == Some(&generation) {
                    self.armed.remove(&timeout);
                    Some(Input::TimeoutElapsed(timeout))
                } else {
                    None
                }
            }
            EngineInput::RebroadcastNow => {
                // The pending firing's generation is gone from `armed`, so
                // it is ignored when it comes; core arms a new one.
                let armed = self
                    .armed
                    .keys()
                    .filter(|t| t.kind == TimeoutKind::Rebroadcast)
                    .max_by_key(|t| t.round)
                    .copied();
                armed.map(|timeout| {
                    self.armed.remove(&timeout);
                    Input::TimeoutElapsed(timeout)
                })
            }
        };
        let Some(first) = first else {
            return early;
        };
        if !self.started {
            return early;
        }
        let mut turn = Turn {
            ctx: &self.ctx,
            key: &self.key,
            set: &mut self.set,
            genesis: &self.genesis,
            timeouts: &self.timeouts,
            block_time: self.block_time,
            now_ms,
            app,
            last_header: &mut self.last_header,
            blocks: &mut self.blocks,
            armed: &mut self.armed,
            generation: &mut self.generation,
            outputs: early,
            outbox: VecDeque::new(),
        };
        turn.outbox.push_back(first);
        let mut processed = 0usize;
        while let Some(input) = turn.outbox.pop_front() {
            processed += 1;
            if processed > MAX_OUTBOX {
                tracing::warn!("consensus outbox overflow; dropping queued inputs");
                break;
            }
            let result: Result<(), CoreError<TierCtx>> = process!(
                input: input,
                state: &mut self.state,
                metrics: &(),
                with: effect => turn.effect(effect)
            );
            if let Err(error) = result {
                tracing::warn!(%error, "consensus core error");
            }
        }
        turn.outputs
    }

    fn start_height(&self, height: Height) -> Input<TierCtx> {
        Input::StartHeight(
            height,
            self.set.clone(),
            false,
            Some(self.block_time),
            VoteExtensionPolicy::Disabled,
        )
    }

    /// Notes a message for a height beyond the one after our last decision
    /// (which may be in progress or waiting for its block time): the caller
    /// should fetch finalized blocks.
    fn behind(&self, seen: u64, out: &mut Vec<Output>) {
        if seen > self.decided_height().saturating_add(1) {
            out.push(Output::Behind {
                from: self.decided_height().saturating_add(1),
                seen,
            });
        }
    }

    fn decode_blocks(
        &mut self,
        msg: proto::BlocksMessage,
        now_ms: u64,
        app: &mut dyn App,
        out: &mut Vec<Output>,
    ) -> Option<Input<TierCtx>> {
        match msg.kind? {
            blocks_message::Kind::Proposal(p) => {
                let proposal = self.check_proposal(&p, now_ms, app, out)?;
                let signature = Sig(<[u8; 64]>::try_from(p.signature.as_slice()).ok()?);
                Some(Input::Proposal(SignedMessage::new(proposal, signature)))
            }
            blocks_message::Kind::Finalized(fb) => self.catch_up(&fb, now_ms, app, out),
        }
    }

    /// Decides the current height from a finalized block, if it is that
    /// height's block and checks out; then starts the next height at once.
    fn catch_up(
        &mut self,
        fb: &proto::FinalizedBlock,
        now_ms: u64,
        app: &mut dyn App,
        out: &mut Vec<Output>,
    ) -> Option<Input<TierCtx>> {
        let block = fb.block.as_ref()?;
        let commit = fb.commit.as_ref()?;
        let height = block.header.as_ref()?.height;
        let next = self.decided_height().saturating_add(1);
        if height != next {
            self.behind(height, out);
            return None;
        }
        let parent = match &self.last_header {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(&self.genesis),
        };
        // Certified: every rule but the clock (see `validate_certified`).
        if let Err(error) = chain::validate_certified(parent, fb, self.set.chain_set(), self.ctx.network()) {
            tracing::debug!(height, %error, "finalized block refused");
            return None;
        }
        if let Some(header) = &block.header
            && chain::check_not_ahead(header, now_ms, self.max_clock_skew_ms).is_err()
        {
            tracing::warn!(
                height,
                time_ms = header.time_ms,
                now_ms,
                "a certified block is ahead of this node's clock; is the clock behind?"
            );
        }
        if !app.check(block) {
            tracing::warn!(height, "a finalized block with a valid commit does not execute here");
            return None;
        }
        let set = app.commit(block, commit)?;
        self.set = ConsensusValidatorSet::new(set)?;
        self.last_header = block.header.clone();
        self.blocks.clear();
        self.pending.retain(|&(h, _), _| h > height);
        tracing::info!(height, "caught up with a finalized block");
        out.push(Output::Decided {
            height,
            block: block.clone(),
            commit: commit.clone(),
        });
        self.started = true;
        Some(self.start_height(Height(height.saturating_add(1))))
    }

    /// Validates a received proposal's block before core sees it (core
    /// treats ProposalOnly values as valid, CONSENSUS.md §5).
    fn check_proposal(
        &mut self,
        p: &proto::Proposal,
        now_ms: u64,
        app: &mut dyn App,
        out: &mut Vec<Output>,
    ) -> Option<ConsensusProposal> {
        if p.network_id != self.ctx.network().as_str() {
            return None;
        }
        // Only a signed proposal by a member may take a slot in the bounded
        // buffers below (core checks the signature and the proposer again).
        let proposer = ZsiId::from_slice(&p.proposer)?;
        let key = self.set.chain_set().consensus_key(&proposer)?;
        WireSigned::verify_with(p, key).ok()?;
        self.behind(p.height, out);
        if p.height > self.height().saturating_add(1) {
            return None;
        }
        if p.height == self.height().saturating_add(1) {
            // Core would buffer it, but its block can only be checked once
            // its parent is decided: keep it until then.
            self.keep_for_next_height(p);
            return None;
        }
        if p.height != self.height() {
            return None;
        }
        let block = p.block.clone()?;
        let header = block.header.as_ref()?;
        let parent = match &self.last_header {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(&self.genesis),
        };
        // A re-proposal (pol_round set) carries a block built by an earlier proposer.
        if header.height != p.height || (p.pol_round_plus_one == 0 && header.proposer != p.proposer) {
            return None;
        }
        // The time rule against the parent, and the clock rule against the
        // caller's `now_ms`: a block from too far ahead is not voted for.
        if let Err(error) = chain::validate_block(
            parent,
            &block,
            self.set.chain_set(),
            self.ctx.network(),
            now_ms,
            self.max_clock_skew_ms,
        ) {
            tracing::debug!(height = p.height, round = p.round, %error, "proposal refused; prevoting nil");
            return None;
        }
        if !app.check(&block) {
            tracing::info!(height = p.height, "proposed block does not execute; not voting for it");
            return None;
        }
        let pol_round = match p.pol_round_plus_one {
            0 => Round::Nil,
            n => Round::new(n - 1),
        };
        let id = header_id(&block);
        if self.blocks.len() < MAX_BLOCKS_PER_HEIGHT {
            self.blocks.entry(id).or_insert_with(|| block.clone());
        }
        Some(ConsensusProposal {
            network: self.ctx.network().clone(),
            height: Height(p.height),
            round: Round::new(p.round),
            value: BlockValue(block),
            pol_round,
            proposer: super::context::Address(proposer),
        })
    }

    /// Keeps `p`, a signed proposal by a member for the next height, if it
    /// is by the proposer of its round (by the current set: the set of the
    /// next height unless this height changes it, when the guess may miss
    /// and the proposal comes too early to use), for a round below
    /// [`MAX_PENDING_PROPOSALS`], and the first one for that round.
    fn keep_for_next_height(&mut self, p: &proto::Proposal) {
        if u64::from(p.round) >= MAX_PENDING_PROPOSALS as u64 {
            return;
        }
        let expected = self
            .ctx
            .select_proposer(&self.set, Height(p.height), Round::new(p.round));
        if expected.address.0.as_bytes().as_slice() != p.proposer.as_slice() {
            return;
        }
        self.pending.retain(|&(h, _), _| h == p.height);
        self.pending.entry((p.height, p.round)).or_insert_with(|| p.clone());
    }

    fn decode_votes(&self, msg: proto::VotesMessage, out: &mut Vec<Output>) -> Option<Input<TierCtx>> {
        match msg.kind? {
            votes_message::Kind::Vote(v) => {
                if v.network_id != self.ctx.network().as_str() {
                    return None;
                }
                self.behind(v.height, out);
                let vote_type = match proto::VoteType::try_from(v.vote_type).ok()? {
                    proto::VoteType::Prevote => VoteType::Prevote,
                    proto::VoteType::Precommit => VoteType::Precommit,
                    proto::VoteType::Unspecified => return None,
                };
                let value = if v.block_hash.is_empty() {
                    NilOrVal::Nil
                } else {
                    NilOrVal::Val(Hash32::from_slice(&v.block_hash)?)
                };
                let vote = ConsensusVote {
                    network: self.ctx.network().clone(),
                    vote_type,
                    height: Height(v.height),
                    round: Round::new(v.round),
                    value,
                    validator: Address(ZsiId::from_slice(&v.validator)?),
                };
                let signature = Sig(<[u8; 64]>::try_from(v.signature.as_slice()).ok()?);
                Some(Input::Vote(SignedMessage::new(vote, signature)))
            }
            // Polka and round certificates and evidence: not decoded yet.
            _ => None,
        }
    }
}

fn header_id(block: &proto::Block) -> Hash32 {
    use arc_malachitebft_core_types::Value as _;
    BlockValue(block.clone()).id()
}

fn verify_bytes(key: &VerifyingKey, bytes: &[u8], sig: &Sig) -> bool {
    key.verify_strict(bytes, &Signature::from_bytes(&sig.0)).is_ok()
}

impl Turn<'_> {
    fn sign(&self, bytes: &[u8]) -> Sig {
        Sig(self.key.sign(bytes).to_bytes())
    }

    fn effect(&mut self, effect: Effect<TierCtx>) -> Result<Resume<TierCtx>, EngineError> {
        Ok(match effect {
            Effect::CancelAllTimeouts(r) => {
                self.armed.clear();
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                self.armed.remove(&t);
                r.resume_with(())
            }
            Effect::ScheduleTimeout(t, r) => {
                *self.generation += 1;
                self.armed.insert(t, *self.generation);
                self.outputs.push(Output::Schedule {
                    timeout: t,
                    after: Timeouts::<TierCtx>::duration_for(self.timeouts, t),
                    generation: *self.generation,
                });
                r.resume_with(())
            }
            Effect::StartRound(_, _, _, _, r) => r.resume_with(()),
            Effect::PublishConsensusMsg(msg, r) => {
                match msg {
                    SignedConsensusMsg::Vote(v) => self.publish_vote(&v),
                    SignedConsensusMsg::Proposal(p) => {
                        let mut wire = p.message.to_proto();
                        wire.signature = p.signature.0.to_vec();
                        let id = header_id(&p.message.value.0);
                        match self
                            .app
                            .may_sign(wire.height, wire.round, SignedKind::Proposal, id.as_bytes(), None)
                        {
                            Guard::Sign => self.outputs.push(Output::PublishBlocks(proto::BlocksMessage {
                                kind: Some(blocks_message::Kind::Proposal(wire)),
                            })),
                            Guard::Refuse { .. } => tracing::warn!(
                                height = wire.height,
                                round = wire.round,
                                "double-sign guard held back a proposal"
                            ),
                        }
                    }
                }
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                if let LivenessMsg::Vote(v) = msg {
                    self.rebroadcast_vote(&v);
                }
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.rebroadcast_vote(&v);
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(_, r) => r.resume_with(()),
            Effect::GetValue(height, round, _, r) => {
                if let Some(block) = self.build_block(round, height) {
                    if self.blocks.len() < MAX_BLOCKS_PER_HEIGHT {
                        self.blocks.insert(header_id(&block), block.clone());
                    }
                    self.queue(Input::Propose(LocallyProposedValue::new(
                        height,
                        round,
                        BlockValue(block),
                    )));
                }
                r.resume_with(())
            }
            Effect::RestreamProposal(.., r) => r.resume_with(()),
            Effect::CertVerifiedSyncValue(_, _, r) => r.resume_with(()),
            Effect::CertRejectedSyncValue(_, _, _, r) => r.resume_with(()),
            Effect::Decide(cert, _, r) => {
                let commit = commit_to_proto(&cert);
                match self.blocks.get(&cert.value_id).cloned() {
                    Some(block) => match self.app.commit(&block, &commit).and_then(ConsensusValidatorSet::new) {
                        Some(next) => {
                            *self.set = next;
                            *self.last_header = block.header.clone();
                            self.outputs.push(Output::Decided {
                                height: cert.height.0,
                                block,
                                commit,
                            });
                        }
                        None => tracing::error!(height = cert.height.0, "decided block could not be committed"),
                    },
                    None => tracing::error!(height = cert.height.0, "decided a block we do not hold"),
                }
                r.resume_with(())
            }
            Effect::Finalize(cert, _, _, r) => {
                if let Some(block) = self.blocks.get(&cert.value_id) {
                    self.outputs.push(Output::PublishBlocks(proto::BlocksMessage {
                        kind: Some(blocks_message::Kind::Finalized(proto::FinalizedBlock {
                            block: Some(block.clone()),
                            commit: Some(commit_to_proto(&cert)),
                        })),
                    }));
                }
                self.blocks.clear();
                // Only move on once the decision is committed.
                if self.last_header.as_ref().map(|h| h.height) == Some(cert.height.0) {
                    let next = Height(cert.height.0.saturating_add(1));
                    self.queue(Input::StartHeight(
                        next,
                        self.set.clone(),
                        false,
                        Some(self.block_time),
                        VoteExtensionPolicy::Disabled,
                    ));
                }
                r.resume_with(())
            }
            Effect::SignVote(v, r) => {
                let sig = self.sign(&v.sign_bytes());
                r.resume_with(SignedMessage::new(v, sig))
            }
            Effect::SignProposal(p, r) => {
                let sig = self.sign(&p.sign_bytes());
                r.resume_with(SignedMessage::new(p, sig))
            }
            Effect::VerifySignature(msg, key, r) => {
                let ok = match &msg.message {
                    ConsensusMsg::Vote(v) => verify_bytes(&key, &v.sign_bytes(), &msg.signature),
                    ConsensusMsg::Proposal(p) => verify_bytes(&key, &p.sign_bytes(), &msg.signature),
                };
                r.resume_with(ok)
            }
            Effect::VerifyCommitCertificate(cert, set, _, r) => {
                let wire = commit_to_proto(&cert);
                let result = verify_commit(&wire, set.chain_set(), self.ctx.network())
                    .map(|_| ())
                    .map_err(|e| match e {
                        CertificateError::InsufficientPower {
                            signed,
                            required,
                            total,
                        } => MCertError::NotEnoughVotingPower {
                            signed,
                            total,
                            expected: required,
                        },
                        other => MCertError::VerificationError(Some(boxed(other))),
                    });
                r.resume_with(result)
            }
            Effect::VerifyExtendedCommitCertificate(_, _, _, _, r) => {
                // Only reached through sync, which is not done yet.
                r.resume_with(Err(MCertError::VerificationError(None)))
            }
            Effect::VerifyPolkaCertificate(cert, set, _, r) => r.resume_with(self.verify_polka(&cert, &set)),
            Effect::VerifyRoundCertificate(cert, set, _, r) => r.resume_with(self.verify_round(&cert, &set)),
            Effect::WalAppend(_, _, r) => r.resume_with(()),
            Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(.., r) => r.resume_with(Ok(())),
        })
    }

    fn queue(&mut self, input: Input<TierCtx>) {
        if self.outbox.len() < MAX_OUTBOX {
            self.outbox.push_back(input);
        } else {
            tracing::warn!("consensus outbox full; dropping a local input");
        }
    }

    /// Publishes a vote core signed, through the double-sign guard.
    fn publish_vote(&mut self, v: &SignedMessage<TierCtx, ConsensusVote>) {
        self.send_vote(v, false);
    }

    /// Sends a vote again (core's rebroadcast timeout), through the guard.
    fn rebroadcast_vote(&mut self, v: &SignedMessage<TierCtx, ConsensusVote>) {
        self.send_vote(v, true);
    }

    /// A vote passes the guard, or the vote signed in its slot before (a
    /// restart mid-round: core has forgotten it, peers may need it) goes
    /// out in its place as a rebroadcast, since peers saw its bytes before.
    fn send_vote(&mut self, v: &SignedMessage<TierCtx, ConsensusVote>, again: bool) {
        let mut wire = v.message.to_proto();
        wire.signature = v.signature.0.to_vec();
        let kind = match v.message.vote_type {
            VoteType::Prevote => SignedKind::Prevote,
            VoteType::Precommit => SignedKind::Precommit,
        };
        let (height, round) = (wire.height, wire.round);
        let (vote, again) = match self.app.may_sign(height, round, kind, &wire.block_hash, Some(&wire)) {
            Guard::Sign => (wire, again),
            Guard::Refuse { earlier: Some(earlier) } => {
                tracing::debug!(
                    height,
                    round,
                    ?kind,
                    "double-sign guard: sending the earlier vote instead"
                );
                (earlier, true)
            }
            Guard::Refuse { earlier: None } => {
                tracing::warn!(height, round, ?kind, "double-sign guard held back a vote");
                return;
            }
        };
        let message = proto::VotesMessage {
            kind: Some(votes_message::Kind::Vote(vote)),
            ..Default::default()
        };
        self.outputs.push(if again {
            Output::RebroadcastVotes(message)
        } else {
            Output::PublishVotes(message)
        });
    }

    /// The application's block on top of the last decided header (or the genesis).
    fn build_block(&mut self, round: Round, height: Height) -> Option<proto::Block> {
        let parent = match self.last_header.as_ref() {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(self.genesis),
        };
        let time_ms = next_block_time(parent.time_ms(), self.now_ms);
        let block = self.app.build(parent, round.as_u32()?, time_ms)?;
        if block.header.as_ref().map(|h| h.height) != Some(height.0) {
            tracing::error!(height = height.0, "the application built a block for another height");
            return None;
        }
        Some(block)
    }

    /// Counts distinct valid signers of rebuilt votes against `threshold`.
    // The error type is Malachite's (it is what `Resume::CertificateValidity` carries).
    #[allow(clippy::result_large_err)]
    fn tally<'v>(
        &self,
        set: &ConsensusValidatorSet,
        votes: impl Iterator<Item = (ConsensusVote, &'v Sig)>,
        threshold: u64,
    ) -> Result<(), MCertError<TierCtx>> {
        let mut seen = std::collections::BTreeSet::new();
        let mut signed: u64 = 0;
        for (vote, sig) in votes {
            let address = vote.validator;
            let Some(validator) = set.get_by_address(&address) else {
                return Err(MCertError::UnknownValidator(address));
            };
            if !seen.insert(address) {
                return Err(MCertError::DuplicateVote(address));
            }
            if !verify_bytes(&validator.public_key, &vote.sign_bytes(), sig) {
                return Err(MCertError::VerificationError(None));
            }
            signed = signed.saturating_add(validator.power);
        }
        if signed < threshold {
            return Err(MCertError::NotEnoughVotingPower {
                signed,
                total: set.total_voting_power(),
                expected: threshold,
            });
        }
        Ok(())
    }

    // The error type is Malachite's (it is what `Resume::CertificateValidity` carries).
    #[allow(clippy::result_large_err)]
    fn verify_polka(
        &self,
        cert: &PolkaCertificate<TierCtx>,
        set: &ConsensusValidatorSet,
    ) -> Result<(), MCertError<TierCtx>> {
        let votes = cert.polka_signatures.iter().map(|s| {
            let vote = ConsensusVote {
                network: self.ctx.network().clone(),
                vote_type: VoteType::Prevote,
                height: cert.height,
                round: cert.round,
                value: NilOrVal::Val(cert.value_id),
                validator: s.address,
            };
            (vote, &s.signature)
        });
        self.tally(set, votes, chain::quorum_threshold(set.total_voting_power()))
    }

    // The error type is Malachite's (it is what `Resume::CertificateValidity` carries).
    #[allow(clippy::result_large_err)]
    fn verify_round(
        &self,
        cert: &RoundCertificate<TierCtx>,
        set: &ConsensusValidatorSet,
    ) -> Result<(), MCertError<TierCtx>> {
        let total = set.total_voting_power();
        let threshold = match cert.cert_type {
            RoundCertificateType::Precommit => {
                if let Some(s) = cert
                    .round_signatures
                    .iter()
                    .find(|s| s.vote_type != VoteType::Precommit)
                {
                    return Err(MCertError::InvalidVoteType(s.address));
                }
                chain::quorum_threshold(total)
            }
            RoundCertificateType::Skip => chain::skip_threshold(total),
        };
        let votes = cert.round_signatures.iter().map(|s| {
            let vote = ConsensusVote {
                network: self.ctx.network().clone(),
                vote_type: s.vote_type,
                height: cert.height,
                round: cert.round,
                value: s.value_id,
                validator: s.address,
            };
            (vote, &s.signature)
        });
        self.tally(set, votes, threshold)
    }
}

fn boxed(e: CertificateError) -> arc_malachitebft_core_types::BoxError {
    arc_malachitebft_core_types::BoxError::new(Box::new(e))
}
