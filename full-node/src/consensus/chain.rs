//! The node's chain: the [`Ledger`] (chain state) with everything around it
//! that touches disk — finalized blocks and the double-sign guard
//! ([`BlockStore`]), the state tree ([`StateStore`]), the proof [`Mempool`] —
//! plus pending equivocation evidence, found by the bounded
//! [`DoubleSignDetector`] over the votes it is shown. It is the consensus
//! engine's [`App`]: it builds proposals from the mempool (stamped with the
//! time the engine computes from the clock it is handed), executes proposed
//! and decided blocks, and commits decisions durably before the engine
//! moves on.
//!
//! On open it loads the ledger from the state tree at the last stored
//! height ([`Ledger::restore`]: the entries must hash to that block's
//! `state_root`, the validator sets to its header's hashes), so a restart
//! costs the size of the state, not the length of the chain; only blocks
//! stored beyond the state tree (a crash between the two writes) are
//! replayed. If the stored state does not verify, it falls back to
//! replaying every block from genesis, which [`OpenMode::Replay`] (the
//! `tiernet-node verify-chain` command) also forces.

use std::collections::BTreeSet;

use tiernet_core::chain::ledger::{ExecContext, Ledger, LedgerError};
use tiernet_core::chain::{self, GenesisAnchor, Parent, ValidatorSet};
use tiernet_core::genesis::Genesis;
use tiernet_core::identity::ZsiId;
use tiernet_core::proof::{ProofContext, VerifierRegistry};
use tiernet_core::wire::limits::MAX_PROOFS_PER_BLOCK;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::proof_content_id;
use tracing::{info, warn};

use super::double_sign::{DoubleSignDetector, Observed};
use super::engine::{App, StartPoint};
use crate::block_store::{BlockStore, BlockStoreError, Guard, SignedKind};
use crate::mempool::{Inserted, Mempool};
use crate::state_store::{StateStore, StateStoreError};
use crate::store::{Store, StoreError};

pub use super::double_sign::{EVIDENCE_WINDOW_HEIGHTS, MAX_TRACKED_VOTES};

/// Most equivocation evidence kept waiting for a block.
pub const MAX_PENDING_EVIDENCE: usize = 64;
/// How many blocks old a proof envelope may be (and stay in the mempool).
pub const PROOF_FRESHNESS_BLOCKS: u64 = 600;

/// The chain could not be opened or a block could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The genesis state is unusable.
    #[error("genesis: {0}")]
    Genesis(LedgerError),
    /// A stored block no longer executes (the store does not belong to this genesis, or is corrupt).
    #[error("stored block at height {height} does not execute: {source}")]
    Replay {
        /// The height.
        height: u64,
        /// Why.
        source: LedgerError,
    },
    /// A height is missing from the block store.
    #[error("the block store has no block at height {0} below its last height")]
    Gap(u64),
    /// The block store failed.
    #[error(transparent)]
    Blocks(#[from] BlockStoreError),
    /// The state tree failed.
    #[error(transparent)]
    State(#[from] StateStoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a proof envelope offered to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofOutcome {
    /// Verified and now pending in the mempool (forward it).
    Accepted,
    /// Already pending or already on chain (drop it quietly).
    Duplicate,
    /// The mempool is full (drop it quietly).
    Full,
    /// The verifier refused it (reject it; its sender loses score).
    Invalid(tiernet_core::proof::ProofError),
}

/// The chain as one node holds it.
pub struct Chain {
    ledger: Ledger,
    genesis: GenesisAnchor,
    blocks: BlockStore,
    state: StateStore,
    mempool: Mempool,
    verifiers: VerifierRegistry,
    /// The STARK programs of genesis (`stwo/v1`, issue 19).
    programs: Vec<tiernet_core::proof::program::ProgramSpec>,
    evidence: Vec<proto::Evidence>,
    votes: DoubleSignDetector,
    last_commit: Option<proto::CommitCertificate>,
    last_header: Option<proto::Header>,
    me: Option<ZsiId>,
    /// Heights whose block hands trust to a different validator set
    /// (`next_validators_hash != validators_hash`): the steps of chain proofs.
    set_changes: BTreeSet<u64>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("height", &self.ledger.height())
            .field("mempool", &self.mempool.len())
            .finish_non_exhaustive()
    }
}

/// The proof verifiers of `genesis`: the builtins, plus `stwo/v1` for the
/// STARK programs genesis lists (issue 19: permissionless registration).
pub fn verifiers_for(genesis: &Genesis) -> VerifierRegistry {
    let mut verifiers = VerifierRegistry::with_uptime(&genesis.uptime);
    if !genesis.file.stark_programs.is_empty() {
        verifiers.register(Box::new(tiernet_core::proof::stwo::StwoVerifier::new(
            genesis.file.stark_programs.clone(),
        )));
    }
    verifiers
}

/// How [`Chain::open_with`] rebuilds the chain state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Load it from the state tree at the last stored height (verified
    /// against that block's header); replay only what the state tree lacks.
    FromState,
    /// Replay every stored block from genesis (`verify-chain`).
    Replay,
}

/// The most set-change heights loaded on restore (each is a block that
/// slashed a validator; a chain with more falls back to a replay).
const MAX_SET_CHANGES: usize = 1 << 16;

impl Chain {
    /// Opens the chain of `genesis` in `store` ([`OpenMode::FromState`]).
    /// `me` is this node's ZSI (the proposer field of its blocks). Block
    /// times come from the consensus engine, which is handed the clock
    /// ([`super::engine::Engine::handle`]).
    pub fn open(store: Store, genesis: &Genesis, me: Option<ZsiId>) -> Result<Chain, ChainError> {
        Self::open_with(store, genesis, me, OpenMode::FromState)
    }

    /// Opens the chain, rebuilding its state as `mode` says.
    pub fn open_with(store: Store, genesis: &Genesis, me: Option<ZsiId>, mode: OpenMode) -> Result<Chain, ChainError> {
        let blocks = BlockStore::open(store.clone())?;
        let state = StateStore::open(store.clone())?;
        let mempool = Mempool::open(
            store,
            crate::mempool::DEFAULT_MAX_ENTRIES,
            crate::mempool::DEFAULT_MAX_BYTES,
        )?;
        let mut chain = Chain {
            ledger: Ledger::genesis(genesis).map_err(ChainError::Genesis)?,
            genesis: GenesisAnchor::from_genesis(genesis),
            blocks,
            state,
            mempool,
            verifiers: verifiers_for(genesis),
            programs: genesis.file.stark_programs.clone(),
            evidence: Vec::new(),
            votes: DoubleSignDetector::new(),
            last_commit: None,
            last_header: None,
            me,
            set_changes: BTreeSet::new(),
        };
        let stored_state = chain.state.latest()?.map_or(0, |(h, _)| h);
        if stored_state == 0 && chain.state.root_at(0)?.is_none() {
            chain.state.apply(0, &writes(&chain.ledger))?;
        }
        let last = chain.blocks.last_height()?;
        let base = stored_state.min(last);
        let mut from = 1;
        if mode == OpenMode::FromState && base > 0 {
            match chain.restore(genesis, base) {
                Ok(()) => {
                    info!(height = base, root = %chain.ledger.root(), "chain state loaded from the state store");
                    from = base + 1;
                }
                Err(reason) => {
                    warn!(height = base, %reason, "cannot load the chain state from the state store; replaying every block")
                }
            }
        }
        for height in from..=last {
            let fb = chain.blocks.get(height)?.ok_or(ChainError::Gap(height))?;
            let block = fb.block.unwrap_or_default();
            let next = chain
                .ledger
                .apply(&chain.exec(), &block)
                .map_err(|source| ChainError::Replay { height, source })?;
            if height > stored_state {
                chain.state.apply(height, &writes(&next))?;
            }
            chain.ledger = next;
            chain.note_set_change(block.header.as_ref());
            chain.last_header = block.header;
            chain.last_commit = fb.commit;
        }
        if last >= from {
            info!(from, height = last, root = %chain.ledger.root(), "blocks replayed from the block store");
        }
        Ok(chain)
    }

    /// Loads the ledger at `height` from the state store (see
    /// [`Ledger::restore`]), with the last header, commit and set changes.
    fn restore(&mut self, genesis: &Genesis, height: u64) -> Result<(), String> {
        let fb = self
            .blocks
            .get(height)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no block at height {height}"))?;
        let header = fb
            .block
            .as_ref()
            .and_then(|b| b.header.clone())
            .ok_or_else(|| format!("the block at height {height} has no header"))?;
        let key = tiernet_core::state::validators_key();
        // The ledger writes the set only when it changes: these are the set
        // changes (and 0, genesis).
        let written = self
            .state
            .written_at(key, height, MAX_SET_CHANGES)
            .map_err(|e| e.to_string())?;
        if written.len() >= MAX_SET_CHANGES {
            return Err(format!("more than {MAX_SET_CHANGES} validator-set changes"));
        }
        let signing_set = if height == 1 {
            self.ledger.validators().clone()
        } else {
            let bytes = self
                .state
                .get(key, height - 1)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no validator set at height {}", height - 1))?;
            let set = <proto::ValidatorSet as prost::Message>::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
            ValidatorSet::from_proto(&set).map_err(|e| e.to_string())?
        };
        let entries = self.state.entries(height).map_err(|e| e.to_string())?;
        self.ledger = Ledger::restore(genesis, &header, signing_set, entries).map_err(|e| e.to_string())?;
        // Confirm each candidate by its header (a state tree that starts at
        // a later height than genesis wrote every key there).
        let mut set_changes = BTreeSet::new();
        for h in written.into_iter().filter(|h| (1..=height).contains(h)) {
            let changed = self
                .blocks
                .signed_header(h)
                .map_err(|e| e.to_string())?
                .and_then(|s| s.header)
                .is_some_and(|hd| hd.next_validators_hash != hd.validators_hash);
            if changed {
                set_changes.insert(h);
            }
        }
        self.set_changes = set_changes;
        self.last_header = Some(header);
        self.last_commit = fb.commit;
        Ok(())
    }

    fn exec(&self) -> ExecContext<'_> {
        ExecContext {
            verifiers: &self.verifiers,
            freshness_blocks: PROOF_FRESHNESS_BLOCKS,
        }
    }

    fn note_set_change(&mut self, header: Option<&proto::Header>) {
        if let Some(h) = header
            && h.next_validators_hash != h.validators_hash
        {
            self.set_changes.insert(h.height);
        }
    }

    /// Heights in `from..=to` whose block hands trust to a different
    /// validator set, ascending.
    pub fn set_changes(&self, from: u64, to: u64) -> Vec<u64> {
        if from > to {
            return Vec::new();
        }
        self.set_changes.range(from..=to).copied().collect()
    }

    /// Where the consensus engine starts.
    pub fn start_point(&self) -> StartPoint {
        StartPoint {
            last_header: self.last_header.clone(),
            set: self.ledger.validators().clone(),
            max_clock_skew_ms: self.ledger.consensus().max_clock_skew_ms,
        }
    }

    /// The genesis anchor.
    pub fn genesis(&self) -> &GenesisAnchor {
        &self.genesis
    }

    /// The chain state after the last committed block.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The last committed header.
    pub fn last_header(&self) -> Option<&proto::Header> {
        self.last_header.as_ref()
    }

    /// The validator set of the next height.
    pub fn validators(&self) -> &ValidatorSet {
        self.ledger.validators()
    }

    /// The finalized block at `height`, from the store.
    pub fn block(&self, height: u64) -> Result<Option<proto::FinalizedBlock>, BlockStoreError> {
        self.blocks.get(height)
    }

    /// The block store, with its header index (for the sync server).
    pub fn block_store(&self) -> &BlockStore {
        &self.blocks
    }

    /// The state tree.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The proof mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Pending equivocation evidence.
    pub fn pending_evidence(&self) -> &[proto::Evidence] {
        &self.evidence
    }

    /// The STARK programs of genesis (`stwo/v1`).
    pub fn genesis_programs(&self) -> &[tiernet_core::proof::program::ProgramSpec] {
        &self.programs
    }

    /// Verifies a proof envelope from `proofs` against chain state and
    /// keeps it in the mempool if it is new and valid.
    pub fn submit_proof(&mut self, envelope: &proto::ProofEnvelope) -> ProofOutcome {
        let id = proof_content_id(envelope);
        if self.mempool.contains(&id) || self.ledger.contains_proof(&id) {
            return ProofOutcome::Duplicate;
        }
        let consensus = self.ledger.consensus();
        let registry = self.ledger.registry();
        let ctx = ProofContext {
            network: &self.genesis.network,
            registry: &(registry as &dyn tiernet_core::identity::registry::IdentityRegistry),
            thresholds: self.ledger.thresholds(),
            height: self.ledger.height(),
            freshness_blocks: PROOF_FRESHNESS_BLOCKS,
            block_time_ms: consensus.block_time_ms,
        };
        match self.verifiers.check_envelope(envelope, &ctx) {
            Err(error) => return ProofOutcome::Invalid(error),
            // Its uptime window is credited already (the same claim in
            // another envelope): chain state, not a fault of the relay.
            Ok(verified)
                if self
                    .ledger
                    .check_uptime_window(&verified.effect, &std::collections::BTreeMap::new())
                    .is_err() =>
            {
                return ProofOutcome::Duplicate;
            }
            Ok(_) => {}
        }
        match self.mempool.insert(envelope.clone()) {
            Ok(Inserted::New) => ProofOutcome::Accepted,
            Ok(Inserted::Duplicate) => ProofOutcome::Duplicate,
            Ok(Inserted::Full) => ProofOutcome::Full,
            Err(error) => {
                warn!(%error, "mempool write failed; proof dropped");
                ProofOutcome::Full
            }
        }
    }

    /// Remembers a vote accepted from `votes` in the bounded
    /// [`DoubleSignDetector`] (heights around the live one, current members
    /// only, a few slots each); a second, different vote by the same
    /// validator in the same slot becomes evidence. Returns the evidence
    /// when this vote completed it.
    pub fn observe_vote(&mut self, vote: &proto::Vote) -> Option<proto::Evidence> {
        let live = self.ledger.height().saturating_add(1);
        match self.votes.observe(vote, live, self.ledger.validators()) {
            Observed::Conflict(first) => {
                let evidence = proto::Evidence {
                    first: Some(first),
                    second: Some(vote.clone()),
                };
                self.add_evidence(evidence.clone()).then_some(evidence)
            }
            Observed::Ignored | Observed::New | Observed::Same => None,
        }
    }

    /// Votes held by the double-sign detector (at most [`MAX_TRACKED_VOTES`]).
    pub fn tracked_votes(&self) -> usize {
        self.votes.len()
    }

    /// Adds verified evidence to the pending pool; false if invalid,
    /// already known, or its culprit is already slashed.
    pub fn add_evidence(&mut self, evidence: proto::Evidence) -> bool {
        let Ok(culprit) = chain::verify_evidence(&evidence, self.ledger.validators(), &self.genesis.network) else {
            return false;
        };
        if self.ledger.is_slashed(&culprit)
            || self.evidence.len() >= MAX_PENDING_EVIDENCE
            || self.evidence.iter().any(|e| evidence_culprit(e) == Some(culprit))
        {
            return false;
        }
        warn!(%culprit, "equivocation detected; evidence pending for the next block");
        self.evidence.push(evidence);
        true
    }
}

fn evidence_culprit(e: &proto::Evidence) -> Option<ZsiId> {
    e.first.as_ref().and_then(|v| ZsiId::from_slice(&v.validator))
}

/// The state-tree changes of the ledger's last block (at genesis: every
/// entry), as the state store takes them. The ledger never deletes a key.
fn writes(ledger: &Ledger) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    ledger
        .last_writes()
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

impl App for Chain {
    fn build(&mut self, parent: Parent<'_>, round: u32, time_ms: u64) -> Option<proto::Block> {
        let me = self.me?;
        let candidates = self.mempool.select(MAX_PROOFS_PER_BLOCK);
        let body = match self
            .ledger
            .propose(&self.exec(), &candidates, self.last_commit.as_ref(), &self.evidence)
        {
            Ok(body) => body,
            Err(error) => {
                warn!(%error, "cannot build a block body");
                return None;
            }
        };
        for (id, reason) in &body.skipped {
            info!(%id, %reason, "left out of the proposal");
        }
        match self.ledger.build_block(&self.exec(), parent, round, time_ms, me, body) {
            Ok(block) => Some(block),
            Err(error) => {
                warn!(%error, "cannot build a block");
                None
            }
        }
    }

    fn check(&mut self, block: &proto::Block) -> bool {
        match self.ledger.apply(&self.exec(), block) {
            Ok(_) => true,
            Err(error) => {
                info!(%error, "block does not execute");
                false
            }
        }
    }

    fn may_sign(
        &mut self,
        height: u64,
        round: u32,
        kind: SignedKind,
        hash: &[u8],
        vote: Option<&proto::Vote>,
    ) -> Guard {
        self.blocks
            .guard(height, round, kind, hash, vote)
            .unwrap_or_else(|error| {
                warn!(%error, "double-sign guard unavailable; not signing");
                Guard::Refuse { earlier: None }
            })
    }

    fn commit(&mut self, block: &proto::Block, commit: &proto::CommitCertificate) -> Option<ValidatorSet> {
        let height = block.header.as_ref()?.height;
        let next = match self.ledger.apply(&self.exec(), block) {
            Ok(next) => next,
            Err(error) => {
                warn!(height, %error, "decided block does not execute");
                return None;
            }
        };
        let finalized = proto::FinalizedBlock {
            block: Some(block.clone()),
            commit: Some(commit.clone()),
        };
        // The block is durable before anything else changes: a crash from
        // here on replays it on the next start.
        if let Err(error) = self.blocks.put(height, &finalized) {
            warn!(height, %error, "cannot store the decided block");
            return None;
        }
        if let Err(error) = self.state.apply(height, &writes(&next)) {
            warn!(height, %error, "cannot update the state tree");
        }
        if let Err(error) = self.mempool.remove_included(&block.proofs) {
            warn!(height, %error, "cannot remove included proofs from the mempool");
        }
        if let Err(error) = self.mempool.expire(height, PROOF_FRESHNESS_BLOCKS) {
            warn!(height, %error, "cannot expire old proofs");
        }
        self.ledger = next;
        self.evidence.retain(|e| {
            evidence_culprit(e).is_some_and(|c| !self.ledger.is_slashed(&c))
                && chain::verify_evidence(e, self.ledger.validators(), &self.genesis.network).is_ok()
        });
        self.votes.prune(height.saturating_add(1));
        self.note_set_change(block.header.as_ref());
        self.last_header = block.header.clone();
        self.last_commit = Some(commit.clone());
        info!(
            height,
            proofs = block.proofs.len(),
            events = block.reputation_events.len(),
            root = %self.ledger.root(),
            "block committed"
        );
        Some(self.ledger.validators().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::double_sign::{EVIDENCE_FUTURE_HEIGHTS, MAX_SLOTS_PER_VALIDATOR};
    use tiernet_core::chain::vote_for;
    use tiernet_core::genesis::{GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
    use tiernet_core::hash::Hash32;
    use tiernet_core::identity::ZsiKeypair;
    use tiernet_core::wire::sign::SignedMessage;

    struct Net {
        chain: Chain,
        keys: Vec<ZsiKeypair>,
        _dir: tempfile::TempDir,
    }

    /// A chain at its genesis (live height 1) with four validators.
    fn net() -> Net {
        let keys: Vec<ZsiKeypair> = (0..4)
            .map(|i| ZsiKeypair::from_seed(format!("validator-{i}").as_bytes()).unwrap())
            .collect();
        let identities = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut entry = GenesisIdentity::new(&format!("v{i}"), &k.public(), ReputationFile::default());
                entry.validator = Some(GenesisValidator {
                    consensus_key: hex::encode(k.public().identity_key.as_bytes()),
                    power: 10,
                });
                entry
            })
            .collect();
        let genesis = Genesis::from_file(GenesisFile {
            stark_programs: Vec::new(),
            network_id: "unitnet".into(),
            genesis_time_ms: 1_000,
            tiers: Default::default(),
            consensus: Default::default(),
            uptime: Default::default(),
            identities,
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        let chain = Chain::open(store, &genesis, Some(keys[0].zsi_id())).unwrap();
        Net { chain, keys, _dir: dir }
    }

    impl Net {
        /// A prevote (`precommit` false) or precommit signed by validator `i`.
        fn vote(&self, i: usize, height: u64, round: u32, precommit: bool, value: u8) -> proto::Vote {
            let mut vote = self.unsigned(i, height, round, precommit, value);
            vote.sign_with(self.keys[i].identity_key());
            vote
        }

        /// The same vote unsigned: the detector sees votes whose signature
        /// the gossip layer already checked, and does not check it again.
        fn unsigned(&self, i: usize, height: u64, round: u32, precommit: bool, value: u8) -> proto::Vote {
            let kind = if precommit {
                proto::VoteType::Precommit
            } else {
                proto::VoteType::Prevote
            };
            let network = self.chain.genesis().network.clone();
            let zsi = self.keys[i].zsi_id();
            vote_for(kind, &network, height, round, Some(&Hash32([value; 32])), &zsi)
        }
    }

    #[test]
    fn a_flood_of_votes_cannot_hide_an_equivocation_at_the_live_height() {
        let mut net = net();
        let live = 1;
        // Validator 1 prevotes a block at the live height…
        assert_eq!(net.chain.observe_vote(&net.vote(1, live, 0, false, 0xaa)), None);
        // …then validator 2 signs every slot it can: many rounds at the
        // live height, at every height of the window, and far beyond it.
        for height in live..live + 3_000 {
            let rounds = if height <= live + EVIDENCE_FUTURE_HEIGHTS {
                40
            } else {
                2
            };
            for round in 0..rounds {
                for precommit in [false, true] {
                    let vote = net.unsigned(2, height, round, precommit, 7);
                    assert_eq!(net.chain.observe_vote(&vote), None);
                }
            }
        }
        // Validator 1's second, different prevote in the same slot is still caught.
        let evidence = net
            .chain
            .observe_vote(&net.vote(1, live, 0, false, 0xbb))
            .expect("the equivocation is detected after the flood");
        assert_eq!(evidence.first, Some(net.vote(1, live, 0, false, 0xaa)));
        assert_eq!(net.chain.pending_evidence().len(), 1);
        // The flood took validator 2's own slots of the window, no more.
        let heights = (EVIDENCE_FUTURE_HEIGHTS + 1) as usize;
        assert_eq!(net.chain.tracked_votes(), 1 + heights * MAX_SLOTS_PER_VALIDATOR);
    }

    #[test]
    fn votes_far_ahead_of_the_live_height_are_not_tracked() {
        let mut net = net();
        let far = 1 + EVIDENCE_FUTURE_HEIGHTS + 1;
        for height in [far, far + 1, 1_000_000, u64::MAX] {
            assert_eq!(net.chain.observe_vote(&net.vote(3, height, 0, true, 1)), None);
            assert_eq!(net.chain.observe_vote(&net.vote(3, height, 0, true, 2)), None);
        }
        assert_eq!(net.chain.tracked_votes(), 0);
        assert!(net.chain.pending_evidence().is_empty());
        // Within the window, the same pair is evidence.
        let near = far - 1;
        assert_eq!(net.chain.observe_vote(&net.vote(3, near, 0, true, 1)), None);
        assert!(net.chain.observe_vote(&net.vote(3, near, 0, true, 2)).is_some());
    }
}
