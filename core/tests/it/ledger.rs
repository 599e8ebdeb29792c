//! The chain state machine: genesis state, propose → build → apply round
//! trips with real signed commits, uptime proofs, slashing, and every kind
//! of tampered block rejected with the error that names it.

use crate::common::net;
use prost::Message;
use tiernet_core::chain::ledger::{BlockBody, ExecContext, Ledger, LedgerError, decode_params, evidence_id};
use tiernet_core::chain::reputation_rules::{participation_event, slash_event, uptime_event};
use tiernet_core::chain::{
    BlockBuilder, BlockError, CertificateError, GenesisAnchor, Parent, validate_block, vote_for,
};
use tiernet_core::genesis::{
    ConsensusParams, Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile,
};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::registry::IdentityRegistry;
use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::proof::{ProofContext, ProofEffect, ProofError, ProofVerifier, VerifierRegistry};
use tiernet_core::state::{EMPTY_ROOT, identity_key, params_key, proof_key, uptime_key, validators_key};
use tiernet_core::tier::{ReputationRecord, Tier, TierThresholds};
use tiernet_core::wire::limits::MAX_PROOFS_PER_BLOCK;
use tiernet_core::wire::proto::{self, VoteType};
use tiernet_core::wire::sign::{SignedMessage, header_hash, proof_content_id, sign_uptime_witness};

const GENESIS_MS: u64 = 1_700_000_000_000;
const SKEW_MS: u64 = 5_000;
/// One-hour blocks, so that a two-block uptime window is worth 120 minutes.
const BLOCK_TIME_MS: u64 = 3_600_000;
const FRESHNESS: u64 = 10;

fn key(name: &str) -> ZsiKeypair {
    ZsiKeypair::from_seed(name.as_bytes()).unwrap()
}

fn h(bytes: &[u8]) -> Hash32 {
    Hash32::from_slice(bytes).unwrap()
}

fn time_of(height: u64) -> u64 {
    GENESIS_MS + height * 1_000
}

const NOW: u64 = GENESIS_MS + 100_000;

struct World {
    genesis: Genesis,
    anchor: GenesisAnchor,
    /// Validators v0..vn (power 10 each, TL3 at genesis); their identity
    /// key is also their consensus key.
    validators: Vec<ZsiKeypair>,
    /// A registered TL1 identity that submits uptime proofs.
    subject: ZsiKeypair,
    /// Two registered TL1 identities that witness the subject's heartbeats.
    witnesses: Vec<ZsiKeypair>,
    verifiers: VerifierRegistry,
}

fn identity(name: &str, k: &ZsiKeypair, reputation: ReputationFile) -> GenesisIdentity {
    GenesisIdentity::new(name, &k.public(), reputation)
}

fn genesis_file(validators: &[ZsiKeypair], others: &[(&str, &ZsiKeypair)]) -> GenesisFile {
    let mut identities: Vec<GenesisIdentity> = validators
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut entry = identity(
                &format!("v{i}"),
                k,
                ReputationFile {
                    uptime_minutes: 1_440,
                    score: 100,
                    ..Default::default()
                },
            );
            entry.validator = Some(GenesisValidator {
                consensus_key: hex::encode(k.public().identity_key.as_bytes()),
                power: 10,
            });
            entry
        })
        .collect();
    for (name, k) in others {
        identities.push(identity(name, k, ReputationFile::default()));
    }
    GenesisFile {
        stark_programs: Vec::new(),
        network_id: "devnet".into(),
        genesis_time_ms: GENESIS_MS,
        tiers: TiersFile::default(),
        consensus: ConsensusParams {
            block_time_ms: BLOCK_TIME_MS,
            ..ConsensusParams::default()
        },
        uptime: Default::default(),
        identities,
    }
}

impl World {
    fn new() -> Self {
        Self::with_validators(4)
    }

    fn with_validators(n: usize) -> Self {
        let validators: Vec<ZsiKeypair> = (0..n).map(|i| key(&format!("validator-{i}"))).collect();
        let subject = key("subject");
        let witnesses = vec![key("witness-1"), key("witness-2")];
        let others = [("subject", &subject), ("w1", &witnesses[0]), ("w2", &witnesses[1])];
        let genesis = Genesis::from_file(genesis_file(&validators, &others)).unwrap();
        let anchor = GenesisAnchor::from_genesis(&genesis);
        World {
            genesis,
            anchor,
            validators,
            subject,
            witnesses,
            verifiers: VerifierRegistry::with_builtins(),
        }
    }

    fn ctx(&self) -> ExecContext<'_> {
        ExecContext {
            verifiers: &self.verifiers,
            freshness_blocks: FRESHNESS,
        }
    }

    fn v(&self, i: usize) -> ZsiId {
        self.validators[i].zsi_id()
    }

    fn ledger(&self) -> Ledger {
        Ledger::genesis(&self.genesis).unwrap()
    }

    fn parent<'a>(&'a self, ledger: &'a Ledger) -> Parent<'a> {
        match ledger.last_header() {
            Some(header) => Parent::Header(header),
            None => Parent::Genesis(&self.anchor),
        }
    }

    /// The proposer of the next block: the first member of the current set.
    fn proposer(&self, ledger: &Ledger) -> ZsiId {
        ledger.validators().iter().next().unwrap().zsi_id
    }

    fn build(&self, ledger: &Ledger, body: BlockBody) -> Result<proto::Block, LedgerError> {
        let height = ledger.height() + 1;
        ledger.build_block(
            &self.ctx(),
            self.parent(ledger),
            0,
            time_of(height),
            self.proposer(ledger),
            body,
        )
    }

    /// Like [`World::build`] without the ledger's self-check: for bodies
    /// tampered with on purpose.
    fn build_raw(&self, ledger: &Ledger, body: BlockBody) -> proto::Block {
        let builder = BlockBuilder {
            parent: self.parent(ledger),
            round: 0,
            time_ms: time_of(ledger.height() + 1),
            proposer: self.proposer(ledger),
            current: ledger.validators(),
            next: &body.next_validators,
            state_root: body.state_root,
        };
        let mut block = builder.block(body.proofs, body.reputation_events).unwrap();
        block.last_commit = body.last_commit;
        block
    }

    /// A commit for `block` signed by the validators at `signers`.
    fn commit(&self, block: &proto::Block, signers: &[usize]) -> proto::CommitCertificate {
        let header = block.header.as_ref().unwrap();
        let signers: Vec<_> = signers
            .iter()
            .map(|&i| (self.v(i), self.validators[i].identity_key()))
            .collect();
        crate::common::signed_commit(&net(), header, &signers)
    }

    /// propose → build_block → validate_block → apply; checks the root.
    fn step(
        &self,
        ledger: &Ledger,
        candidates: &[proto::ProofEnvelope],
        last_commit: Option<&proto::CommitCertificate>,
        evidence: &[proto::Evidence],
    ) -> (proto::Block, Ledger) {
        let body = ledger.propose(&self.ctx(), candidates, last_commit, evidence).unwrap();
        let block = self.build(ledger, body).unwrap();
        validate_block(self.parent(ledger), &block, ledger.validators(), &net(), NOW, SKEW_MS).unwrap();
        let next = ledger.apply(&self.ctx(), &block).unwrap();
        assert_eq!(next.height(), ledger.height() + 1);
        assert_eq!(next.root(), h(&block.header.as_ref().unwrap().state_root));
        assert_eq!(next.root(), next.tree().root());
        (block, next)
    }

    /// An `uptime/v1` proof by the subject over heights `from..=to`, fully
    /// witnessed, submitted at `height`.
    fn uptime_proof(&self, from: u64, to: u64, height: u64) -> proto::ProofEnvelope {
        // One heartbeat per 10 s over the window, plus one.
        let heartbeats = ((to - from + 1) * BLOCK_TIME_MS / 10_000 + 1) as u32;
        let claim = proto::UptimeClaim {
            network_id: "devnet".into(),
            subject: self.subject.zsi_id().as_bytes().to_vec(),
            from_height: from,
            to_height: to,
            heartbeats,
        };
        let proof = proto::UptimeProof {
            witnesses: self
                .witnesses
                .iter()
                .map(|w| sign_uptime_witness(&claim, w.zsi_id().as_bytes(), heartbeats, w.identity_key()))
                .collect(),
        };
        let mut envelope = proto::ProofEnvelope {
            kind: "uptime/v1".into(),
            statement: claim.encode_to_vec(),
            proof: proof.encode_to_vec(),
            submitter: self.subject.zsi_id().as_bytes().to_vec(),
            height,
            signature: vec![],
        };
        envelope.sign_with(self.subject.identity_key());
        envelope
    }

    /// A vote by validator `i`, signed with its consensus key.
    fn vote(&self, i: usize, vote_type: VoteType, height: u64, round: u32, value: Option<&Hash32>) -> proto::Vote {
        let mut vote = vote_for(vote_type, &net(), height, round, value, &self.v(i));
        vote.sign_with(self.validators[i].identity_key());
        vote
    }

    /// Validator `i` precommitted two different blocks at height 2, round 0.
    fn double_precommit(&self, i: usize) -> proto::Evidence {
        proto::Evidence {
            first: Some(self.vote(i, VoteType::Precommit, 2, 0, Some(&Hash32([0xaa; 32])))),
            second: Some(self.vote(i, VoteType::Precommit, 2, 0, Some(&Hash32([0xbb; 32])))),
        }
    }

    /// Validator `i` prevoted a block and nil at height 2, round 1.
    fn double_prevote(&self, i: usize) -> proto::Evidence {
        proto::Evidence {
            first: Some(self.vote(i, VoteType::Prevote, 2, 1, Some(&Hash32([0xcc; 32])))),
            second: Some(self.vote(i, VoteType::Prevote, 2, 1, None)),
        }
    }
}

fn record(ledger: &Ledger, id: &ZsiId) -> ReputationRecord {
    ledger.registry().lookup(id).unwrap().reputation
}

fn stored_record(ledger: &Ledger, id: &ZsiId) -> proto::IdentityRecord {
    proto::IdentityRecord::decode(ledger.tree().get(&identity_key(id)).unwrap()).unwrap()
}

/// Blocks 1 and 2 (block 2 carries the commit of block 1 by v0, v1, v2).
struct TwoBlocks {
    l0: Ledger,
    l1: Ledger,
    l2: Ledger,
    b1: proto::Block,
    b2: proto::Block,
    c1: proto::CommitCertificate,
}

fn two_blocks(w: &World) -> TwoBlocks {
    let l0 = w.ledger();
    let (b1, l1) = w.step(&l0, &[], None, &[]);
    let c1 = w.commit(&b1, &[0, 1, 2]);
    let (b2, l2) = w.step(&l1, &[], Some(&c1), &[]);
    TwoBlocks { l0, l1, l2, b1, b2, c1 }
}

// ───────────────────────────────── genesis ─────────────────────────────────

#[test]
fn genesis_state_is_deterministic_and_laid_out_as_documented() {
    let w = World::new();
    let a = w.ledger();
    let b = Ledger::genesis(&Genesis::from_json(&w.genesis.to_json()).unwrap()).unwrap();
    assert_eq!(a.root(), b.root());
    assert_ne!(a.root(), EMPTY_ROOT);
    assert_eq!(a.root(), a.tree().root());

    // The order of identities in the file does not matter.
    let mut reversed = w.genesis.file.clone();
    reversed.identities.reverse();
    let c = Ledger::genesis(&Genesis::from_file(reversed).unwrap()).unwrap();
    assert_eq!(c.root(), a.root());

    // Any change of content does.
    let mut changed = w.genesis.file.clone();
    changed.identities[5].reputation.score = 1;
    let d = Ledger::genesis(&Genesis::from_file(changed).unwrap()).unwrap();
    assert_ne!(d.root(), a.root());

    // 7 identities, the validator set and the params.
    assert_eq!(a.height(), 0);
    assert_eq!(a.tree().len(), 9);
    assert_eq!(a.last_writes().len(), 9);
    assert_eq!(a.last_block_hash(), Hash32::ZERO);
    assert_eq!(a.validators().hash(), w.genesis.validators_hash());
    assert_eq!(a.last_validators().hash(), w.genesis.validators_hash());
    let v0 = stored_record(&a, &w.v(0));
    assert_eq!(v0.zsi_id, w.v(0).as_bytes().to_vec());
    assert_eq!(
        v0.identity_key,
        w.validators[0].public().identity_key.as_bytes().to_vec()
    );
    assert_eq!(
        v0.reputation,
        Some(proto::ReputationRecord {
            uptime_minutes: 1_440,
            participation: 0,
            score: 100,
            slashed: false
        })
    );
    let set = proto::ValidatorSet::decode(a.tree().get(validators_key()).unwrap()).unwrap();
    assert_eq!(set, w.genesis.validators);
    let (thresholds, consensus) = decode_params(a.tree().get(params_key()).unwrap()).unwrap();
    assert_eq!(thresholds, TierThresholds::default());
    assert_eq!(consensus.block_time_ms, BLOCK_TIME_MS);
    assert_eq!(a.tier(&w.v(0)), Tier::TL3);
    assert_eq!(a.tier(&w.subject.zsi_id()), Tier::TL1);
    assert_eq!(a.tier(&key("stranger").zsi_id()), Tier::TL0);
}

#[test]
fn a_genesis_validator_must_be_registered() {
    let w = World::new();
    let mut genesis = w.genesis.clone();
    let stranger = key("stranger");
    genesis.validators.validators.push(proto::Validator {
        zsi_id: stranger.zsi_id().as_bytes().to_vec(),
        consensus_key: stranger.public().identity_key.as_bytes().to_vec(),
        power: 1,
    });
    assert_eq!(
        Ledger::genesis(&genesis).unwrap_err(),
        LedgerError::UnregisteredValidator {
            validator: stranger.zsi_id()
        }
    );
}

// ─────────────────────────────── round trips ───────────────────────────────

#[test]
fn three_blocks_round_trip_and_credit_the_signers_of_each_commit() {
    let w = World::new();
    let l0 = w.ledger();

    let body = l0.propose(&w.ctx(), &[], None, &[]).unwrap();
    assert!(body.reputation_events.is_empty() && body.skipped.is_empty());
    assert_eq!(body.next_validators.hash(), l0.validators().hash());
    let (b1, l1) = w.step(&l0, &[], None, &[]);
    assert_eq!(b1.last_commit, None);
    // Nothing happened in block 1: the state is the genesis state.
    assert_eq!(l1.root(), l0.root());
    assert!(l1.last_writes().is_empty());
    assert_eq!(l1.last_block_hash(), header_hash(b1.header.as_ref().unwrap()));

    // Block 2 credits the three signers of block 1's commit, in id order.
    let c1 = w.commit(&b1, &[2, 0, 1]);
    let (b2, l2) = w.step(&l1, &[], Some(&c1), &[]);
    let mut signers = [w.v(0), w.v(1), w.v(2)];
    signers.sort();
    let expected: Vec<_> = signers.iter().map(|id| participation_event(id, 1)).collect();
    assert_eq!(b2.reputation_events, expected);
    assert_eq!(b2.last_commit.as_ref(), Some(&c1));
    for i in 0..3 {
        assert_eq!(
            record(&l2, &w.v(i)),
            ReputationRecord {
                uptime_minutes: 1_440,
                participation: 1,
                score: 101,
                slashed: false
            }
        );
        assert_eq!(stored_record(&l2, &w.v(i)).reputation.unwrap().participation, 1);
    }
    assert_eq!(record(&l2, &w.v(3)).participation, 0);
    assert_eq!(l2.last_writes().len(), 3);
    assert_ne!(l2.root(), l1.root());

    // Block 3: all four signed block 2.
    let c2 = w.commit(&b2, &[0, 1, 2, 3]);
    let (b3, l3) = w.step(&l2, &[], Some(&c2), &[]);
    assert_eq!(b3.reputation_events.len(), 4);
    assert_eq!(
        (record(&l3, &w.v(0)).participation, record(&l3, &w.v(0)).score),
        (2, 102)
    );
    assert_eq!(
        (record(&l3, &w.v(3)).participation, record(&l3, &w.v(3)).score),
        (1, 101)
    );
    assert_eq!(l3.height(), 3);
    assert_eq!(l3.validators().hash(), l0.validators().hash());

    // Another node replaying the same blocks reaches the same states.
    let mut replica = Ledger::genesis(&Genesis::from_json(&w.genesis.to_json()).unwrap()).unwrap();
    for (block, ledger) in [(&b1, &l1), (&b2, &l2), (&b3, &l3)] {
        replica = replica.apply(&w.ctx(), block).unwrap();
        assert_eq!(replica.root(), ledger.root());
    }
}

// ───────────────────────────────── proofs ─────────────────────────────────

#[test]
fn an_included_uptime_proof_credits_its_subject_once() {
    let w = World::new();
    let l0 = w.ledger();
    let (b1, l1) = w.step(&l0, &[], None, &[]);
    let c1 = w.commit(&b1, &[0, 1, 2]);

    let proof = w.uptime_proof(1, 2, 2);
    let id = proof_content_id(&proof);
    let mut forged = w.uptime_proof(1, 2, 3);
    forged.signature[5] ^= 1;
    let forged_id = proof_content_id(&forged);

    let candidates = [proof.clone(), proof.clone(), forged.clone()];
    let body = l1.propose(&w.ctx(), &candidates, Some(&c1), &[]).unwrap();
    assert_eq!(body.proofs, vec![proof.clone()]);
    assert_eq!(
        body.skipped,
        vec![
            (id, "duplicate of candidate 0".to_owned()),
            (forged_id, "invalid: envelope signature does not verify".to_owned()),
        ]
    );
    // Two one-hour blocks, every heartbeat witnessed: 120 minutes.
    assert_eq!(body.reputation_events[0], uptime_event(&w.subject.zsi_id(), 120));
    assert_eq!(body.reputation_events.len(), 4);

    let (b2, l2) = w.step(&l1, &candidates, Some(&c1), &[]);
    assert_eq!(b2.proofs, vec![proof.clone()]);
    let subject = record(&l2, &w.subject.zsi_id());
    assert_eq!((subject.uptime_minutes, subject.score), (120, 2));
    assert_eq!(l2.tier(&w.subject.zsi_id()), Tier::TL1);
    assert!(!l1.contains_proof(&id));
    assert!(l2.contains_proof(&id));
    assert!(!l2.contains_proof(&forged_id));
    assert_eq!(l2.proof_height(&id), Some(2));
    assert_eq!(l2.tree().get(&proof_key(&id)), Some(&2u64.to_be_bytes()[..]));

    // Proposed again: skipped.
    let c2 = w.commit(&b2, &[0, 1, 2, 3]);
    let body = l2
        .propose(&w.ctx(), std::slice::from_ref(&proof), Some(&c2), &[])
        .unwrap();
    assert!(body.proofs.is_empty());
    assert_eq!(
        body.skipped,
        vec![(id, "already on chain (included at height 2)".to_owned())]
    );

    // Included again: rejected, by build_block's self-check and by apply.
    let mut replay = body.clone();
    replay.proofs = vec![proof.clone()];
    replay
        .reputation_events
        .insert(0, uptime_event(&w.subject.zsi_id(), 120));
    let expected = LedgerError::ProofAlreadyIncluded {
        index: 0,
        content_id: id,
        height: 2,
    };
    assert_eq!(w.build(&l2, replay.clone()).unwrap_err(), expected);
    let block = w.build_raw(&l2, replay);
    assert_eq!(l2.apply(&w.ctx(), &block).unwrap_err(), expected);

    // A block carrying the forged proof is rejected with the verifier's reason.
    let mut bad = l1.propose(&w.ctx(), &[], Some(&c1), &[]).unwrap();
    bad.proofs = vec![forged];
    let block = w.build_raw(&l1, bad);
    assert_eq!(
        l1.apply(&w.ctx(), &block).unwrap_err(),
        LedgerError::InvalidProof {
            index: 0,
            content_id: forged_id,
            error: ProofError::BadSignature
        }
    );
}

/// A proof kind that only records its proof (no reputation effect): for
/// block-capacity tests that need many distinct valid proofs.
struct RecordOnly;

impl ProofVerifier for RecordOnly {
    fn kind(&self) -> &'static str {
        "test/record"
    }

    fn verify(
        &self,
        _: &proto::ProofEnvelope,
        _: &ProofContext<'_, &dyn IdentityRegistry>,
    ) -> Result<ProofEffect, ProofError> {
        Ok(ProofEffect::Record)
    }
}

#[test]
fn a_full_block_skips_the_rest_and_still_applies() {
    let mut w = World::new();
    w.verifiers.register(Box::new(RecordOnly));
    let l0 = w.ledger();
    let (b1, l1) = w.step(&l0, &[], None, &[]);
    let c1 = w.commit(&b1, &[0, 1, 2]);
    let ctx = ExecContext {
        verifiers: &w.verifiers,
        freshness_blocks: 2_000,
    };
    // Distinct content ids: the same statement submitted at different heights.
    let candidates: Vec<_> = (0..=MAX_PROOFS_PER_BLOCK as u64)
        .map(|height| {
            let mut envelope = proto::ProofEnvelope {
                kind: "test/record".into(),
                statement: b"recorded".to_vec(),
                proof: vec![],
                submitter: w.subject.zsi_id().as_bytes().to_vec(),
                height,
                signature: vec![],
            };
            envelope.sign_with(w.subject.identity_key());
            envelope
        })
        .collect();
    let body = l1.propose(&ctx, &candidates, Some(&c1), &[]).unwrap();
    assert_eq!(body.proofs.len(), MAX_PROOFS_PER_BLOCK);
    assert_eq!(body.proofs[..], candidates[..MAX_PROOFS_PER_BLOCK]);
    assert_eq!(
        body.skipped,
        vec![(
            proof_content_id(&candidates[MAX_PROOFS_PER_BLOCK]),
            format!("block is full ({MAX_PROOFS_PER_BLOCK} proofs)")
        )]
    );
    let block = w.build_raw(&l1, body);
    let l2 = l1.apply(&ctx, &block).unwrap();
    assert!(
        candidates[..MAX_PROOFS_PER_BLOCK]
            .iter()
            .all(|c| l2.contains_proof(&proof_content_id(c)))
    );
    assert!(!l2.contains_proof(&proof_content_id(&candidates[MAX_PROOFS_PER_BLOCK])));
}

/// Regression (issue 17): one witnessed uptime claim used to be credited
/// again in every envelope it was re-submitted in (another envelope height
/// makes another content id): 1024 copies in one block credited 1024 × 120
/// minutes, and a TL1 identity reached TL5 in a few blocks. Now a window is
/// credited once: it must start above the subject's last credited window,
/// on chain or earlier in the same block.
#[test]
fn one_uptime_claim_is_credited_once_in_any_envelope_at_any_height() {
    let w = World::new();
    let subject = w.subject.zsi_id();
    let ctx = ExecContext {
        verifiers: &w.verifiers,
        freshness_blocks: 2_000,
    };
    let l0 = w.ledger();
    let (b1, l1) = w.step(&l0, &[], None, &[]);
    let c1 = w.commit(&b1, &[0, 1, 2]);

    // 1025 envelopes of the one claim over 1..=2 (distinct content ids).
    let copies: Vec<_> = (0..=MAX_PROOFS_PER_BLOCK as u64)
        .map(|height| w.uptime_proof(1, 2, height))
        .collect();
    let body = l1.propose(&ctx, &copies, Some(&c1), &[]).unwrap();
    assert_eq!(body.proofs, vec![copies[0].clone()]);
    assert_eq!(body.skipped.len(), MAX_PROOFS_PER_BLOCK);
    assert!(
        body.skipped
            .iter()
            .all(|(_, why)| why == "uptime window 1..=2 does not follow the last credited window (ending at 2)"),
        "{:?}",
        body.skipped.first()
    );
    // A block that carries two copies anyway is refused.
    let mut doubled = body.clone();
    doubled.proofs.push(copies[7].clone());
    doubled.reputation_events.insert(1, uptime_event(&subject, 120));
    let block = w.build_raw(&l1, doubled);
    assert_eq!(
        l1.apply(&ctx, &block).unwrap_err(),
        LedgerError::UptimeWindowCredited {
            index: 1,
            subject,
            from_height: 1,
            to_height: 2,
            credited_to: 2,
        }
    );

    let block = w.build(&l1, body).unwrap();
    let l2 = l1.apply(&ctx, &block).unwrap();
    assert_eq!(record(&l2, &subject).uptime_minutes, 120);
    assert_eq!(l2.uptime_credited_to(&subject), Some(2));
    assert_eq!(l2.tree().get(&uptime_key(&subject)), Some(&2u64.to_be_bytes()[..]));
    assert_eq!(l1.uptime_credited_to(&subject), None);

    // In a later block, at any envelope height: refused by the proposer and by apply.
    let c2 = w.commit(&block, &[0, 1, 2, 3]);
    for copy in [&copies[3], &copies[1000], &w.uptime_proof(1, 2, 3)] {
        let body = l2.propose(&ctx, std::slice::from_ref(copy), Some(&c2), &[]).unwrap();
        assert!(body.proofs.is_empty());
        let mut forced = body.clone();
        forced.proofs = vec![copy.clone()];
        forced.reputation_events.insert(0, uptime_event(&subject, 120));
        let block = w.build_raw(&l2, forced);
        assert_eq!(l2.apply(&ctx, &block).unwrap_err().label(), "uptime_window_credited");
    }
    // An overlapping window (2..=3) is refused; the next one (3..=3) is credited.
    let (b3, l3) = w.step(&l2, &[], Some(&c2), &[]);
    let c3 = w.commit(&b3, &[0, 1, 2, 3]);
    let overlapping = w.uptime_proof(2, 3, 3);
    let next = w.uptime_proof(3, 3, 3);
    let body = l3
        .propose(&ctx, &[overlapping.clone(), next.clone()], Some(&c3), &[])
        .unwrap();
    assert_eq!(body.proofs, vec![next]);
    assert_eq!(body.reputation_events[0], uptime_event(&subject, 60));
    let block = w.build(&l3, body).unwrap();
    let l4 = l3.apply(&ctx, &block).unwrap();
    assert_eq!(record(&l4, &subject).uptime_minutes, 180);
    assert_eq!(l4.uptime_credited_to(&subject), Some(3));
}

// ─────────────────────────────── tampering ───────────────────────────────

#[test]
fn tampered_events_state_root_and_height_are_rejected() {
    let w = World::new();
    let TwoBlocks { l0, l1, c1, .. } = two_blocks(&w);
    let proof = w.uptime_proof(1, 2, 2);
    let good_body = l1.propose(&w.ctx(), &[proof], Some(&c1), &[]).unwrap();
    let good = w.build(&l1, good_body.clone()).unwrap();
    // uptime, then the three participation events.
    assert_eq!(good.reputation_events.len(), 4);
    let good_root = l1.apply(&w.ctx(), &good).unwrap().root();

    let mut wrong_root = good_body.clone();
    wrong_root.state_root = Hash32([7; 32]);
    let block = w.build_raw(&l1, wrong_root);
    assert_eq!(
        l1.apply(&w.ctx(), &block).unwrap_err(),
        LedgerError::Mismatch {
            field: "header.state_root",
            expected: good_root,
            found: Hash32([7; 32])
        }
    );

    // The header does not commit to the events: tamper with them in place.
    let with_events = |mutate: &dyn Fn(&mut Vec<proto::ReputationEvent>)| {
        let mut block = good.clone();
        mutate(&mut block.reputation_events);
        l1.apply(&w.ctx(), &block).unwrap_err()
    };
    let extra = with_events(&|events| events.push(participation_event(&w.v(3), 1)));
    assert!(
        matches!(&extra, LedgerError::UnexpectedEvent { index: 4, found } if found.starts_with("participation(1)")),
        "{extra:?}"
    );
    let missing = with_events(&|events| {
        events.pop();
    });
    assert!(
        matches!(&missing, LedgerError::MissingEvent { index: 3, expected } if expected.starts_with("participation(1)")),
        "{missing:?}"
    );
    let reordered = with_events(&|events| events.swap(1, 2));
    assert!(
        matches!(&reordered, LedgerError::EventMismatch { index: 1, .. }),
        "{reordered:?}"
    );
    let inflated = with_events(&|events| events[0] = uptime_event(&w.subject.zsi_id(), 121));
    assert_eq!(
        inflated,
        LedgerError::EventMismatch {
            index: 0,
            expected: format!("uptime_minutes(120) for {}", &w.subject.zsi_id().to_string()[..16]),
            found: format!("uptime_minutes(121) for {}", &w.subject.zsi_id().to_string()[..16]),
        }
    );
    assert_eq!(inflated.label(), "event_mismatch");

    // A block for another height.
    assert_eq!(
        l0.apply(&w.ctx(), &good).unwrap_err(),
        LedgerError::WrongHeight { expected: 1, found: 2 }
    );
}

#[test]
fn forged_missing_and_weak_last_commits_are_rejected() {
    let w = World::new();
    let TwoBlocks { l0, l1, b1, c1, b2, .. } = two_blocks(&w);
    let with_commit = |commit: Option<proto::CommitCertificate>| {
        let mut block = b2.clone();
        block.last_commit = commit;
        l1.apply(&w.ctx(), &block).unwrap_err()
    };

    let mut forged = c1.clone();
    forged.signatures[1].signature[3] ^= 1;
    let signer = ZsiId::from_slice(&forged.signatures[1].validator).unwrap();
    let error = with_commit(Some(forged.clone()));
    assert_eq!(
        error,
        LedgerError::InvalidLastCommit(BlockError::Commit(CertificateError::BadSignature { validator: signer }))
    );
    assert!(!error.is_insufficient_power());

    let weak = w.commit(&b1, &[0, 3]);
    let error = with_commit(Some(weak.clone()));
    assert_eq!(
        error,
        LedgerError::LastCommitInsufficientPower {
            signed: 20,
            required: 27,
            total: 40
        }
    );
    assert!(error.is_insufficient_power());

    assert_eq!(
        with_commit(None),
        LedgerError::MissingLastCommit { height: 2, previous: 1 }
    );

    // Validly signed, but for another block at height 1.
    let mut other = b1.clone();
    other.header.as_mut().unwrap().time_ms += 1;
    let error = with_commit(Some(w.commit(&other, &[0, 1, 2])));
    assert!(
        matches!(
            error,
            LedgerError::InvalidLastCommit(BlockError::Mismatch {
                field: "commit.block_hash",
                ..
            })
        ),
        "{error:?}"
    );

    // The proposer cannot use a bad commit either.
    assert_eq!(
        l1.propose(&w.ctx(), &[], Some(&forged), &[]).unwrap_err(),
        with_commit(Some(forged))
    );
    assert!(
        l1.propose(&w.ctx(), &[], Some(&weak), &[])
            .unwrap_err()
            .is_insufficient_power()
    );

    // Block 1 follows the genesis and carries no commit.
    let mut b1_with_commit = b1.clone();
    b1_with_commit.last_commit = Some(c1.clone());
    assert_eq!(
        l0.apply(&w.ctx(), &b1_with_commit).unwrap_err(),
        LedgerError::UnexpectedLastCommit
    );
    assert_eq!(
        l0.propose(&w.ctx(), &[], Some(&c1), &[]).unwrap_err(),
        LedgerError::UnexpectedLastCommit
    );
}

// ──────────────────────────────── slashing ────────────────────────────────

#[test]
fn equivocation_evidence_slashes_and_removes_the_culprit() {
    let w = World::new();
    let TwoBlocks { l2, b2, .. } = two_blocks(&w);
    let c2 = w.commit(&b2, &[0, 1, 2, 3]);
    let culprit = w.v(3);
    assert_eq!(l2.tier(&culprit), Tier::TL3);

    let first = w.double_precommit(3);
    let second = w.double_prevote(3);
    let mut forged = w.double_precommit(2);
    forged.second.as_mut().unwrap().signature[0] ^= 1;
    let evidence = [first.clone(), second.clone(), forged.clone()];

    let body = l2.propose(&w.ctx(), &[], Some(&c2), &evidence).unwrap();
    assert_eq!(body.reputation_events.len(), 5);
    assert_eq!(body.reputation_events[4], slash_event(&culprit, first.clone()));
    assert_eq!(body.skipped.len(), 2);
    assert_eq!(body.skipped[0].0, evidence_id(&second));
    assert!(
        body.skipped[0]
            .1
            .ends_with("is already slashed by evidence 0 of this block"),
        "{}",
        body.skipped[0].1
    );
    assert_eq!(body.skipped[1].0, evidence_id(&forged));
    assert_eq!(
        body.skipped[1].1,
        format!(
            "invalid evidence: {}",
            CertificateError::BadSignature { validator: w.v(2) }
        )
    );
    assert_eq!(body.next_validators.len(), 3);
    assert!(!body.next_validators.contains(&culprit));
    assert_ne!(body.next_validators.hash(), l2.validators().hash());

    let (b3, l3) = w.step(&l2, &[], Some(&c2), &evidence);
    let header = b3.header.as_ref().unwrap();
    assert_eq!(h(&header.next_validators_hash), body.next_validators.hash());
    assert_eq!(h(&header.validators_hash), l2.validators().hash());
    assert_eq!(b3.next_validators.as_ref(), Some(body.next_validators.as_proto()));

    assert!(l3.is_slashed(&culprit));
    assert!(!l3.is_slashed(&w.v(0)));
    assert_eq!(l3.tier(&culprit), Tier::TL0);
    assert_eq!(l3.tier(&w.v(0)), Tier::TL3);
    assert_eq!(
        record(&l3, &culprit),
        ReputationRecord {
            uptime_minutes: 1_440,
            // Credited for signing block 2 before the slash in the same block.
            participation: 1,
            score: 0,
            slashed: true
        }
    );
    assert!(stored_record(&l3, &culprit).reputation.unwrap().slashed);
    assert_eq!(l3.validators().len(), 3);
    assert!(!l3.validators().contains(&culprit));
    assert!(l3.last_validators().contains(&culprit));
    let stored = proto::ValidatorSet::decode(l3.tree().get(validators_key()).unwrap()).unwrap();
    assert_eq!(&stored, l3.validators().as_proto());

    // Later evidence against the same culprit: skipped by the proposer ...
    let c3 = w.commit(&b3, &[0, 1, 2]);
    let body = l3
        .propose(&w.ctx(), &[], Some(&c3), std::slice::from_ref(&second))
        .unwrap();
    assert_eq!(body.reputation_events.len(), 3);
    assert_eq!(body.next_validators.hash(), l3.validators().hash());
    assert_eq!(body.skipped.len(), 1);
    assert!(
        body.skipped[0].1.ends_with("is already slashed"),
        "{}",
        body.skipped[0].1
    );
    // ... and rejected in a block (verified against the set that signed block 3).
    let mut again = body;
    again.reputation_events.push(slash_event(&culprit, second));
    let block = w.build_raw(&l3, again);
    assert_eq!(
        l3.apply(&w.ctx(), &block).unwrap_err(),
        LedgerError::AlreadySlashed { index: 3, culprit }
    );
    // Block 4 is signed by the reduced set.
    let (b4, _) = w.step(&l3, &[], Some(&c3), &[]);
    assert_eq!(h(&b4.header.as_ref().unwrap().validators_hash), l3.validators().hash());
}

#[test]
fn invalid_slash_events_are_rejected() {
    let w = World::new();
    let TwoBlocks { l2, b2, .. } = two_blocks(&w);
    let c2 = w.commit(&b2, &[0, 1, 2, 3]);
    let good_body = l2.propose(&w.ctx(), &[], Some(&c2), &[w.double_precommit(3)]).unwrap();
    let good = w.build(&l2, good_body.clone()).unwrap();
    assert_eq!(good.reputation_events.len(), 5);
    let apply_with = |mutate: &dyn Fn(&mut proto::Block)| {
        let mut block = good.clone();
        mutate(&mut block);
        l2.apply(&w.ctx(), &block).unwrap_err()
    };

    let mut forged = w.double_precommit(2);
    forged.second.as_mut().unwrap().signature[0] ^= 1;
    assert_eq!(
        apply_with(&|b| b.reputation_events[4] = slash_event(&w.v(2), forged.clone())),
        LedgerError::InvalidEvidence {
            index: 4,
            error: CertificateError::BadSignature { validator: w.v(2) }
        }
    );
    // Two votes for the same value prove nothing.
    let same = proto::Evidence {
        first: w.double_precommit(2).first,
        second: w.double_precommit(2).first,
    };
    let error = apply_with(&|b| b.reputation_events[4] = slash_event(&w.v(2), same.clone()));
    assert!(
        matches!(
            error,
            LedgerError::InvalidEvidence {
                index: 4,
                error: CertificateError::NotEvidence(_)
            }
        ),
        "{error:?}"
    );
    // A stranger's double vote: not a validator of either set.
    let stranger = proto::Evidence {
        first: Some(w.vote(0, VoteType::Precommit, 2, 0, None)),
        second: Some(w.vote(0, VoteType::Precommit, 2, 0, Some(&Hash32([1; 32])))),
    };
    let mut stranger = stranger;
    for vote in [stranger.first.as_mut().unwrap(), stranger.second.as_mut().unwrap()] {
        vote.validator = w.subject.zsi_id().as_bytes().to_vec();
        vote.sign_with(w.subject.identity_key());
    }
    assert_eq!(
        apply_with(&|b| b.reputation_events[4] = slash_event(&w.subject.zsi_id(), stranger.clone())),
        LedgerError::InvalidEvidence {
            index: 4,
            error: CertificateError::UnknownValidator {
                validator: w.subject.zsi_id()
            }
        }
    );
    // Valid evidence against v3, but the event slashes v2.
    let error = apply_with(&|b| b.reputation_events[4] = slash_event(&w.v(2), w.double_precommit(3)));
    assert!(
        matches!(error, LedgerError::SlashTargetMismatch { index: 4, culprit, .. } if culprit == w.v(3)),
        "{error:?}"
    );
    // The same culprit twice.
    assert_eq!(
        apply_with(&|b| b.reputation_events.push(slash_event(&w.v(3), w.double_prevote(3)))),
        LedgerError::DuplicateSlash {
            index: 5,
            first: 4,
            culprit: w.v(3)
        }
    );
    // The slash without removing the culprit from the next set.
    let mut kept = good_body.clone();
    kept.next_validators = l2.validators().clone();
    let block = w.build_raw(&l2, kept);
    assert_eq!(
        l2.apply(&w.ctx(), &block).unwrap_err(),
        LedgerError::Mismatch {
            field: "header.next_validators_hash",
            expected: good_body.next_validators.hash(),
            found: l2.validators().hash()
        }
    );
    // The header names the new set but the block does not carry it.
    assert_eq!(
        apply_with(&|b| b.next_validators = None),
        LedgerError::NextValidatorsMismatch {
            expected: Some(good_body.next_validators.hash()),
            found: None
        }
    );
    // Removing the culprit without slashing it.
    let error = apply_with(&|b| {
        b.reputation_events.pop();
    });
    assert_eq!(
        error,
        LedgerError::Mismatch {
            field: "header.next_validators_hash",
            expected: l2.validators().hash(),
            found: good_body.next_validators.hash()
        }
    );
}

#[test]
fn slashing_the_last_validator_keeps_the_set() {
    let w = World::with_validators(1);
    let l0 = w.ledger();
    let evidence = w.double_precommit(0);
    let body = l0
        .propose(&w.ctx(), &[], None, std::slice::from_ref(&evidence))
        .unwrap();
    assert_eq!(body.reputation_events, vec![slash_event(&w.v(0), evidence.clone())]);
    assert_eq!(body.next_validators.hash(), l0.validators().hash());
    let (b1, l1) = w.step(&l0, &[], None, &[evidence]);
    assert_eq!(b1.next_validators, None);
    assert!(l1.is_slashed(&w.v(0)));
    assert_eq!(l1.tier(&w.v(0)), Tier::TL0);
    assert_eq!(l1.validators().hash(), l0.validators().hash());
    assert!(l1.validators().contains(&w.v(0)));
    // The chain goes on, signed by the slashed validator.
    let c1 = w.commit(&b1, &[0]);
    let (_, l2) = w.step(&l1, &[], Some(&c1), &[]);
    assert_eq!(l2.height(), 2);
    // A slashed record is frozen: the participation credit changes nothing.
    assert_eq!(record(&l2, &w.v(0)), record(&l1, &w.v(0)));
    assert_eq!(l2.root(), l1.root());
}
