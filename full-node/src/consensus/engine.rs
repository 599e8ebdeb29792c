//! A sans-IO driver over Malachite core (CONSENSUS.md §3).
//!
//! [`Engine::handle`] takes one [`EngineInput`] (start, a message from the
//! `blocks` or `votes` topic, a fired timer), runs it through `process!`
//! together with every input core asked for along the way (the outbox:
//! `GetValue` → `Propose`, `Finalize` → `StartHeight`), and returns what the
//! caller must do as [`Output`]s.
//!
//! Not done yet: the WAL (§9), catch-up through finalized blocks
//! (`SyncValueResponse`, §7), and gossip of polka and round certificates
//! (they are verified when fed, but never published).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use arc_malachitebft_core_consensus::{
    ConsensusMsg, Effect, Error as CoreError, Input, LivenessMsg, LocallyProposedValue, Params, Resumable, Resume,
    SignedConsensusMsg, State, ThresholdParams, process,
};
use arc_malachitebft_core_types::{
    CertificateError as MCertError, LinearTimeouts, NilOrVal, PolkaCertificate, Round, RoundCertificate,
    RoundCertificateType, SignedMessage, Timeout, Timeouts, ValidatorSet as _, ValuePayload, VoteExtensionPolicy,
    VoteType,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use tiernet_core::chain::{self, BlockBuilder, CertificateError, GenesisAnchor, Parent, verify_commit};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::proto::{self, blocks_message, votes_message};
use tiernet_core::wire::sign::SignedMessage as WireSigned;

use super::context::{
    Address, BlockValue, ConsensusProposal, ConsensusValidatorSet, ConsensusVote, Height, Sig, TierCtx, commit_to_proto,
};

/// Most blocks kept per height while waiting for a decision.
pub const MAX_BLOCKS_PER_HEIGHT: usize = 64;
/// Capacity of core's queue of early messages (all heights / per height).
pub const QUEUE_CAPACITY: usize = 1024;
/// Most proposals for the next height kept until it starts.
pub const MAX_PENDING_PROPOSALS: usize = 16;
/// Most local inputs queued inside one [`Engine::handle`] call.
pub const MAX_OUTBOX: usize = 64;

/// What the engine is fed.
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
}

/// What the caller must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Publish on the `blocks` topic.
    PublishBlocks(proto::BlocksMessage),
    /// Publish on the `votes` topic.
    PublishVotes(proto::VotesMessage),
    /// Feed [`EngineInput::Timeout`] with these fields after `after`.
    Schedule {
        /// The timeout.
        timeout: Timeout,
        /// How long to wait.
        after: Duration,
        /// Its generation (stale firings are ignored).
        generation: u64,
    },
    /// A height is decided.
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
    last_header: Option<proto::Header>,
    /// Blocks seen at the current height, by id.
    blocks: BTreeMap<Hash32, proto::Block>,
    armed: HashMap<Timeout, u64>,
    generation: u64,
    started: bool,
    /// Proposals for the next height, checked when it starts.
    pending: Vec<proto::Proposal>,
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
    set: &'a ConsensusValidatorSet,
    genesis: &'a GenesisAnchor,
    timeouts: &'a LinearTimeouts,
    last_header: &'a mut Option<proto::Header>,
    blocks: &'a mut BTreeMap<Hash32, proto::Block>,
    armed: &'a mut HashMap<Timeout, u64>,
    generation: &'a mut u64,
    outputs: Vec<Output>,
    outbox: VecDeque<Input<TierCtx>>,
}

impl Engine {
    /// An engine for the validator holding `key` (its address is `me`), at
    /// height 1 on top of `genesis`, with a fixed validator set.
    pub fn new(
        genesis: GenesisAnchor,
        set: chain::ValidatorSet,
        me: ZsiId,
        key: SigningKey,
        timeouts: LinearTimeouts,
    ) -> Result<Self, EngineError> {
        let ctx = TierCtx::new(genesis.network.clone());
        let set = ConsensusValidatorSet::new(set).ok_or(EngineError::EmptySet)?;
        let params = Params {
            address: Address(me),
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalOnly,
            enabled: true,
        };
        let state = State::new(
            ctx.clone(),
            Height(1),
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
            last_header: None,
            blocks: BTreeMap::new(),
            armed: HashMap::new(),
            generation: 0,
            started: false,
            pending: Vec::new(),
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

    /// Runs one input and everything it triggers.
    pub fn handle(&mut self, input: EngineInput) -> Vec<Output> {
        let height = self.height();
        let mut outputs = self.handle_one(input);
        // A new height: feed the proposals kept for it (bounded, no recursion).
        let mut rounds = 0;
        while self.height() != height && !self.pending.is_empty() && rounds < 4 {
            rounds += 1;
            let current = self.height();
            for p in std::mem::take(&mut self.pending) {
                if p.height == current {
                    outputs.extend(self.handle_one(EngineInput::Blocks(proto::BlocksMessage {
                        kind: Some(blocks_message::Kind::Proposal(p)),
                    })));
                } else if p.height > current && self.pending.len() < MAX_PENDING_PROPOSALS {
                    self.pending.push(p);
                }
            }
        }
        outputs
    }

    fn handle_one(&mut self, input: EngineInput) -> Vec<Output> {
        let first = match input {
            EngineInput::Start if !self.started => {
                self.started = true;
                Some(self.start_height(Height(1)))
            }
            EngineInput::Start => None,
            EngineInput::Blocks(msg) => self.decode_blocks(msg),
            EngineInput::Votes(msg) => self.decode_votes(msg),
            EngineInput::Timeout { timeout, generation } => {
                if self.armed.get(&timeout) == Some(&generation) {
                    self.armed.remove(&timeout);
                    Some(Input::TimeoutElapsed(timeout))
                } else {
                    None
                }
            }
        };
        let Some(first) = first else {
            return Vec::new();
        };
        if !self.started {
            return Vec::new();
        }
        let mut turn = Turn {
            ctx: &self.ctx,
            key: &self.key,
            set: &self.set,
            genesis: &self.genesis,
            timeouts: &self.timeouts,
            last_header: &mut self.last_header,
            blocks: &mut self.blocks,
            armed: &mut self.armed,
            generation: &mut self.generation,
            outputs: Vec::new(),
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
        Input::StartHeight(height, self.set.clone(), false, None, VoteExtensionPolicy::Disabled)
    }

    fn decode_blocks(&mut self, msg: proto::BlocksMessage) -> Option<Input<TierCtx>> {
        match msg.kind? {
            blocks_message::Kind::Proposal(p) => {
                let proposal = self.check_proposal(&p)?;
                let signature = Sig(<[u8; 64]>::try_from(p.signature.as_slice()).ok()?);
                Some(Input::Proposal(SignedMessage::new(proposal, signature)))
            }
            // Catch-up through finalized blocks is not done yet.
            blocks_message::Kind::Finalized(_) => None,
        }
    }

    /// Validates a received proposal's block before core sees it (core
    /// treats ProposalOnly values as valid, CONSENSUS.md §5).
    fn check_proposal(&mut self, p: &proto::Proposal) -> Option<ConsensusProposal> {
        if p.network_id != self.ctx.network().as_str() {
            return None;
        }
        // Only a signed proposal by a member may take a slot in the bounded
        // buffers below (core checks the signature and the proposer again).
        let proposer = ZsiId::from_slice(&p.proposer)?;
        let key = self.set.chain_set().consensus_key(&proposer)?;
        WireSigned::verify_with(p, key).ok()?;
        if p.height == self.height().saturating_add(1) {
            // Core would buffer it, but its block can only be checked once
            // its parent is decided: keep it until then.
            if self.pending.len() < MAX_PENDING_PROPOSALS {
                self.pending.push(p.clone());
            }
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
        // No wall clock in a sans-IO engine: accept any time not before the parent's.
        if chain::validate_block(
            parent,
            &block,
            self.set.chain_set(),
            self.ctx.network(),
            u64::MAX / 2,
            0,
        )
        .is_err()
        {
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

    fn decode_votes(&self, msg: proto::VotesMessage) -> Option<Input<TierCtx>> {
        match msg.kind? {
            votes_message::Kind::Vote(v) => {
                if v.network_id != self.ctx.network().as_str() {
                    return None;
                }
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
                        self.outputs.push(Output::PublishBlocks(proto::BlocksMessage {
                            kind: Some(blocks_message::Kind::Proposal(wire)),
                        }));
                    }
                }
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                if let LivenessMsg::Vote(v) = msg {
                    self.publish_vote(&v);
                }
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.publish_vote(&v);
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(_, r) => r.resume_with(()),
            Effect::GetValue(height, round, _, r) => {
                if let Some(block) = self.build_block(round) {
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
                match self.blocks.get(&cert.value_id) {
                    Some(block) => {
                        *self.last_header = block.header.clone();
                        self.outputs.push(Output::Decided {
                            height: cert.height.0,
                            block: block.clone(),
                            commit,
                        });
                    }
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
                let next = Height(cert.height.0.saturating_add(1));
                self.queue(Input::StartHeight(
                    next,
                    self.set.clone(),
                    false,
                    None,
                    VoteExtensionPolicy::Disabled,
                ));
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

    fn publish_vote(&mut self, v: &SignedMessage<TierCtx, ConsensusVote>) {
        let mut wire = v.message.to_proto();
        wire.signature = v.signature.0.to_vec();
        self.outputs.push(Output::PublishVotes(proto::VotesMessage {
            kind: Some(votes_message::Kind::Vote(wire)),
        }));
    }

    /// An empty block on top of the last decided header (or the genesis).
    fn build_block(&self, round: Round) -> Option<proto::Block> {
        let parent = match self.last_header.as_ref() {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(self.genesis),
        };
        let builder = BlockBuilder {
            parent,
            round: round.as_u32()?,
            time_ms: parent.time_ms().saturating_add(1),
            proposer: self.key_zsi()?,
            current: self.set.chain_set(),
            next: self.set.chain_set(),
            state_root: Hash32::ZERO,
        };
        match builder.block(Vec::new(), Vec::new()) {
            Ok(block) => Some(block),
            Err(error) => {
                tracing::error!(%error, "cannot build a block");
                None
            }
        }
    }

    fn key_zsi(&self) -> Option<ZsiId> {
        let public = self.key.verifying_key();
        self.set
            .chain_set()
            .iter()
            .find(|v| *v.consensus_key == public)
            .map(|v| v.zsi_id)
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
