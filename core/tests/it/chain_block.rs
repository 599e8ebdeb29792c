//! Block rules: building a chain, validating each block against its
//! parent, rejecting every kind of tampering, proofs-root inclusion proofs,
//! finalized-block validation with real commit signatures, and reputation
//! transitions moving a validator through the tiers.

use ed25519_dalek::SigningKey;
use tiernet_core::chain::block::MAX_INCLUSION_PATH;
use tiernet_core::chain::reputation_rules::{participation_event, slash_event, uptime_event};
use tiernet_core::chain::{
    BlockBuilder, BlockError, CertificateError, GenesisAnchor, MAX_BLOCK_INTERVAL_MS, Parent, ValidatorSet,
    ValidatorSetError, apply_event, chain_commitment, empty_proofs_root, genesis_commitment, next_block_time,
    participation_events, precommit_for, proofs_inclusion, proofs_inclusion_of_ids, proofs_root, proofs_root_of_ids,
    validate_block, validate_certified, validate_finalized, validate_header, validate_signed_header,
    verify_proof_inclusion,
};
use tiernet_core::hash::Hash32;

use tiernet_core::tier::{ReputationRecord, Tier, TierThresholds, tier_of};
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash, proof_content_id};
use tiernet_core::wire::{NetworkId, limits};

use crate::common::{self, id, key, net};

const GENESIS_MS: u64 = 1_700_000_000_000;
const SKEW_MS: u64 = 5_000;

fn set(members: &[(u8, u64)]) -> ValidatorSet {
    common::members(members)
}

fn four() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10), (4, 10)])
}

/// A set that takes over at height 4 in [`Chain::new`].
fn four_changed() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10), (5, 20)])
}

fn anchor() -> GenesisAnchor {
    GenesisAnchor::new(net(), GENESIS_MS, four().hash())
}

/// A structurally valid envelope; its signature is not checked by block rules.
fn envelope(height: u64, n: u32) -> proto::ProofEnvelope {
    let mut envelope = proto::ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: n.to_be_bytes().to_vec(),
        proof: vec![7; 16],
        submitter: vec![9; 32],
        height,
        signature: vec![],
    };
    envelope.sign_with(&key(9));
    envelope
}

fn time_of(height: u64) -> u64 {
    GENESIS_MS + height * 1_000
}

/// Far enough after the last block that every block is in the past.
fn now() -> u64 {
    time_of(10)
}

/// Five blocks built on the genesis; the validator set changes after height 3.
struct Chain {
    anchor: GenesisAnchor,
    blocks: Vec<proto::Block>,
    /// The set that signs each block (index = height - 1).
    signers: Vec<ValidatorSet>,
}

impl Chain {
    fn new() -> Self {
        let anchor = anchor();
        let (a, b) = (four(), four_changed());
        let mut blocks: Vec<proto::Block> = Vec::new();
        let mut signers = Vec::new();
        for height in 1..=5u64 {
            let current = if height <= 3 { a.clone() } else { b.clone() };
            let next = if height < 3 { a.clone() } else { b.clone() };
            let parent = match blocks.last() {
                Some(block) => Parent::Header(block.header.as_ref().unwrap()),
                None => Parent::Genesis(&anchor),
            };
            let builder = BlockBuilder {
                parent,
                round: (height % 2) as u32,
                time_ms: time_of(height),
                proposer: id((height % 3) as u8 + 1),
                current: &current,
                next: &next,
                state_root: Hash32([height as u8; 32]),
            };
            let proofs: Vec<_> = (0..height as u32).map(|n| envelope(height, n)).collect();
            let events = vec![uptime_event(&id(1), 60)];
            let header = builder.header(&proofs).unwrap();
            let block = builder.block(proofs, events).unwrap();
            assert_eq!(block.header.as_ref(), Some(&header));
            blocks.push(block);
            signers.push(current);
        }
        Self {
            anchor,
            blocks,
            signers,
        }
    }

    fn header(&self, height: u64) -> &proto::Header {
        self.blocks[height as usize - 1].header.as_ref().unwrap()
    }

    fn parent(&self, height: u64) -> Parent<'_> {
        if height == 1 {
            Parent::Genesis(&self.anchor)
        } else {
            Parent::Header(self.header(height - 1))
        }
    }

    fn current(&self, height: u64) -> &ValidatorSet {
        &self.signers[height as usize - 1]
    }

    fn validate(&self, height: u64, block: &proto::Block) -> Result<(), BlockError> {
        validate_block(self.parent(height), block, self.current(height), &net(), now(), SKEW_MS)
    }

    fn finalized(&self, block: proto::Block, signers: &[u8]) -> proto::FinalizedBlock {
        let header = block.header.as_ref().unwrap().clone();
        proto::FinalizedBlock {
            block: Some(block),
            commit: Some(commit(&header, signers)),
        }
    }

    fn validate_finalized(&self, height: u64, finalized: &proto::FinalizedBlock) -> Result<(), BlockError> {
        validate_finalized(
            self.parent(height),
            finalized,
            self.current(height),
            &net(),
            now(),
            SKEW_MS,
        )
        .map(|_| ())
    }
}

/// A commit for `header` signed by `signers` (seeds), in the header's round.
fn commit(header: &proto::Header, signers: &[u8]) -> proto::CommitCertificate {
    let keys: Vec<SigningKey> = signers.iter().map(|&s| key(s)).collect();
    let signers: Vec<_> = signers.iter().zip(&keys).map(|(&s, k)| (id(s), k)).collect();
    crate::common::signed_commit(&net(), header, &signers)
}

fn h(bytes: &[u8]) -> Hash32 {
    Hash32::from_slice(bytes).unwrap()
}

#[test]
fn a_built_chain_validates_block_by_block() {
    let chain = Chain::new();
    for height in 1..=5 {
        let block = &chain.blocks[height as usize - 1];
        chain.validate(height, block).unwrap();
        let header = chain.header(height);
        validate_header(
            chain.parent(height),
            header,
            chain.current(height),
            &net(),
            now(),
            SKEW_MS,
        )
        .unwrap();
        assert_eq!(header.height, height);
        assert_eq!(h(&header.proofs_root), proofs_root(&block.proofs));
        assert_eq!(block.proofs.len(), height as usize);
    }
    // Height 1 links to the genesis.
    let first = chain.header(1);
    assert_eq!(h(&first.prev_hash), Hash32::ZERO);
    assert_eq!(
        h(&first.chain_commitment),
        chain_commitment(
            &genesis_commitment(&net(), GENESIS_MS, &four().hash()),
            1,
            &Hash32([1; 32]),
            &h(&first.proofs_root),
            &four().hash()
        )
    );
    // The hand-off: height 3 names the new set and carries it; 4 and 5 are signed by it.
    assert_eq!(
        chain.blocks[2].next_validators.as_ref(),
        Some(four_changed().as_proto())
    );
    assert_eq!(h(&chain.header(3).next_validators_hash), four_changed().hash());
    assert!(
        chain
            .blocks
            .iter()
            .enumerate()
            .all(|(i, b)| (i == 2) == b.next_validators.is_some())
    );
    assert_eq!(h(&chain.header(4).validators_hash), four_changed().hash());
    // Each header links to the previous one.
    for height in 2..=5 {
        assert_eq!(
            h(&chain.header(height).prev_hash),
            header_hash(chain.header(height - 1))
        );
    }
}

/// Selects one byte field of a header.
type FieldOf = fn(&mut proto::Header) -> &mut Vec<u8>;

fn mismatch_field(result: Result<(), BlockError>) -> &'static str {
    match result {
        Err(BlockError::Mismatch { field, .. }) => field,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn every_header_field_is_checked() {
    let chain = Chain::new();
    let height = 3;
    let original = chain.blocks[height as usize - 1].clone();
    let with_header = |mutate: &dyn Fn(&mut proto::Header)| {
        let mut block = original.clone();
        mutate(block.header.as_mut().unwrap());
        block
    };
    let flip = |bytes: &mut Vec<u8>| bytes[0] ^= 1;

    // Fields whose own rule names them.
    let block = with_header(&|hd| hd.network_id = "testnet".into());
    assert_eq!(
        chain.validate(height, &block),
        Err(BlockError::WrongNetwork {
            field: "header.network_id",
            expected: "devnet".into(),
            found: "testnet".into()
        })
    );
    let block = with_header(&|hd| hd.height += 1);
    assert_eq!(
        chain.validate(height, &block),
        Err(BlockError::WrongHeight {
            field: "header.height",
            expected: 3,
            found: 4
        })
    );
    let block = with_header(&|hd| hd.time_ms = time_of(2) - 1);
    assert_eq!(
        chain.validate(height, &block),
        Err(BlockError::TimeBeforeParent {
            parent: time_of(2),
            found: time_of(2) - 1
        })
    );
    let block = with_header(&|hd| hd.time_ms = now() + SKEW_MS + 1);
    assert_eq!(
        chain.validate(height, &block),
        Err(BlockError::TimeInFuture {
            found: now() + SKEW_MS + 1,
            now_ms: now(),
            max_skew_ms: SKEW_MS
        })
    );
    let block = with_header(&|hd| hd.proposer = vec![5; 32]);
    assert_eq!(
        chain.validate(height, &block),
        Err(BlockError::UnknownProposer {
            proposer: id(5),
            validators_hash: four().hash()
        })
    );
    let hashes: [(&str, FieldOf); 6] = [
        ("header.prev_hash", |hd| &mut hd.prev_hash),
        ("header.validators_hash", |hd| &mut hd.validators_hash),
        ("header.next_validators_hash", |hd| &mut hd.next_validators_hash),
        ("header.proofs_root", |hd| &mut hd.proofs_root),
        // The state root is only bound by the chain commitment (state is not at hand).
        ("header.chain_commitment", |hd| &mut hd.state_root),
        ("header.chain_commitment", |hd| &mut hd.chain_commitment),
    ];
    for (field, select) in hashes {
        let block = with_header(&|hd| flip(select(hd)));
        assert_eq!(mismatch_field(chain.validate(height, &block)), field);
        // Malformed lengths are schema errors naming the field.
        let block = with_header(&|hd| {
            select(hd).pop();
        });
        match chain.validate(height, &block) {
            Err(BlockError::Malformed(e)) => assert!(e.path.starts_with("header."), "{e}"),
            other => panic!("{field}: expected a schema error, got {other:?}"),
        }
    }

    // Fields no block rule constrains (any round, any later time, any
    // member as proposer) are bound by the commit through the header hash.
    let free: [fn(&mut proto::Header); 3] = [|hd| hd.round -= 1, |hd| hd.time_ms += 1, |hd| hd.proposer = vec![4; 32]];
    let signed = chain.finalized(original.clone(), &[1, 2, 3]);
    chain.validate_finalized(height, &signed).unwrap();
    for mutate in free {
        let mut tampered = signed.clone();
        mutate(tampered.block.as_mut().unwrap().header.as_mut().unwrap());
        chain.validate(height, tampered.block.as_ref().unwrap()).unwrap();
        assert_eq!(
            mismatch_field(chain.validate_finalized(height, &tampered)),
            "commit.block_hash"
        );
    }
    // A later round than the commit's cannot be the decided block.
    let mut tampered = signed.clone();
    tampered.block.as_mut().unwrap().header.as_mut().unwrap().round += 1;
    assert_eq!(
        chain.validate_finalized(height, &tampered),
        Err(BlockError::CommitRound {
            header_round: 2,
            commit_round: 1
        })
    );
    // Every mutation above is also refused as a finalized block.
    let refused: [fn(&mut proto::Header); 5] = [
        |hd| hd.network_id = "testnet".into(),
        |hd| hd.height += 1,
        |hd| hd.prev_hash[0] ^= 1,
        |hd| hd.state_root[0] ^= 1,
        |hd| hd.chain_commitment[0] ^= 1,
    ];
    for mutate in refused {
        let mut tampered = signed.clone();
        mutate(tampered.block.as_mut().unwrap().header.as_mut().unwrap());
        assert!(chain.validate_finalized(height, &tampered).is_err());
    }
}

#[test]
fn body_and_set_rules() {
    let chain = Chain::new();
    let original = chain.blocks[2].clone(); // height 3: 3 proofs, hands over to the new set
    // A proof removed, reordered or replaced.
    let mut block = original.clone();
    block.proofs.pop();
    assert_eq!(mismatch_field(chain.validate(3, &block)), "header.proofs_root");
    let mut block = original.clone();
    block.proofs.swap(0, 1);
    assert_eq!(mismatch_field(chain.validate(3, &block)), "header.proofs_root");
    // The same proof twice.
    let mut block = original.clone();
    block.proofs[2] = block.proofs[0].clone();
    assert_eq!(
        chain.validate(3, &block),
        Err(BlockError::DuplicateProof {
            first: 0,
            second: 2,
            content_id: proof_content_id(&block.proofs[0])
        })
    );
    // Too many proofs, refused before anything is hashed.
    let mut block = original.clone();
    block.proofs = vec![envelope(3, 0); limits::MAX_PROOFS_PER_BLOCK + 1];
    assert_eq!(
        chain.validate(3, &block),
        Err(BlockError::TooMany {
            field: "proofs",
            count: limits::MAX_PROOFS_PER_BLOCK + 1,
            max: limits::MAX_PROOFS_PER_BLOCK
        })
    );
    let mut block = original.clone();
    block.reputation_events = vec![uptime_event(&id(1), 1); limits::MAX_REPUTATION_EVENTS_PER_BLOCK + 1];
    assert_eq!(chain.validate(3, &block).unwrap_err().label(), "too_many");
    // A structurally broken proof.
    let mut block = original.clone();
    block.proofs[1].signature.pop();
    assert_eq!(chain.validate(3, &block).unwrap_err().label(), "malformed");
    // The next set missing while the header names another one.
    let mut block = original.clone();
    block.next_validators = None;
    assert_eq!(
        chain.validate(3, &block),
        Err(BlockError::Mismatch {
            field: "header.next_validators_hash",
            expected: four().hash(),
            found: four_changed().hash()
        })
    );
    // Another next set than the header names.
    let mut block = original.clone();
    block.next_validators = Some(set(&[(1, 10), (6, 10)]).into_proto());
    assert_eq!(mismatch_field(chain.validate(3, &block)), "header.next_validators_hash");
    // Present although it does not change.
    let mut block = chain.blocks[1].clone();
    block.next_validators = Some(four().into_proto());
    assert_eq!(
        chain.validate(2, &block),
        Err(BlockError::RedundantNextValidators {
            validators_hash: four().hash()
        })
    );
    // A next set with a weak key.
    let mut block = original.clone();
    let mut bad = four_changed().into_proto();
    bad.validators[0].consensus_key = vec![0; 32];
    block.next_validators = Some(bad);
    assert!(matches!(
        chain.validate(3, &block),
        Err(BlockError::InvalidNextValidators(
            ValidatorSetError::WeakConsensusKey { .. }
        ))
    ));
    // Validated against a set the parent did not hand trust to.
    assert_eq!(
        validate_block(chain.parent(4), &chain.blocks[3], &four(), &net(), now(), SKEW_MS),
        Err(BlockError::Mismatch {
            field: "current_validators",
            expected: four_changed().hash(),
            found: four().hash()
        })
    );
    // Against another network, or the wrong parent.
    let testnet = NetworkId::new("testnet").unwrap();
    assert_eq!(
        validate_block(chain.parent(3), &original, chain.current(3), &testnet, now(), SKEW_MS)
            .unwrap_err()
            .label(),
        "wrong_network"
    );
    assert_eq!(
        validate_block(chain.parent(2), &original, chain.current(3), &net(), now(), SKEW_MS),
        Err(BlockError::WrongHeight {
            field: "header.height",
            expected: 2,
            found: 3
        })
    );
    // Another genesis (start time) changes the commitment of height 1.
    let other = GenesisAnchor::new(net(), GENESIS_MS - 1, four().hash());
    assert_eq!(
        mismatch_field(validate_block(
            Parent::Genesis(&other),
            &chain.blocks[0],
            &four(),
            &net(),
            now(),
            SKEW_MS
        )),
        "header.chain_commitment"
    );
    // A block without a header.
    let mut block = original;
    block.header = None;
    assert_eq!(chain.validate(3, &block).unwrap_err().label(), "malformed");
}

#[test]
fn the_builder_refuses_what_validation_would() {
    let anchor = anchor();
    let (a, b) = (four(), four_changed());
    let builder = BlockBuilder {
        parent: Parent::Genesis(&anchor),
        round: 0,
        time_ms: time_of(1),
        proposer: id(1),
        current: &a,
        next: &a,
        state_root: Hash32::ZERO,
    };
    let not_member = BlockBuilder {
        proposer: id(9),
        ..builder.clone()
    };
    assert_eq!(
        not_member.block(vec![], vec![]).unwrap_err().label(),
        "unknown_proposer"
    );
    let early = BlockBuilder {
        time_ms: GENESIS_MS - 1,
        ..builder.clone()
    };
    assert_eq!(early.header(&[]).unwrap_err().label(), "time_before_parent");
    let wrong_set = BlockBuilder {
        current: &b,
        next: &b,
        ..builder.clone()
    };
    assert_eq!(mismatch_field(wrong_set.header(&[]).map(|_| ())), "current_validators");
    let dup = vec![envelope(1, 0), envelope(1, 0)];
    assert_eq!(builder.header(&dup).unwrap_err().label(), "duplicate_proof");
    let unsigned = proto::ProofEnvelope {
        signature: vec![],
        ..envelope(1, 0)
    };
    assert_eq!(builder.block(vec![unsigned], vec![]).unwrap_err().label(), "malformed");
    let top = proto::Header {
        height: u64::MAX,
        ..builder.block(vec![], vec![]).unwrap().header.unwrap()
    };
    let after_top = BlockBuilder {
        parent: Parent::Header(&top),
        ..builder.clone()
    };
    assert_eq!(
        after_top.header(&[]),
        Err(BlockError::HeightOverflow { height: u64::MAX })
    );
    // An empty block has the empty proofs root.
    let header = builder.header(&[]).unwrap();
    assert_eq!(h(&header.proofs_root), empty_proofs_root());
}

#[test]
fn proofs_inclusion_for_sizes_0_to_20() {
    for n in 0..=20u32 {
        let proofs: Vec<_> = (0..n).map(|i| envelope(1, i)).collect();
        let ids: Vec<Hash32> = proofs.iter().map(proof_content_id).collect();
        let root = proofs_root(&proofs);
        assert_eq!(root, proofs_root_of_ids(&ids));
        let count = u64::from(n);
        assert_eq!(proofs_inclusion(&proofs, n as usize), None);
        if n == 0 {
            assert_eq!(root, empty_proofs_root());
            assert!(!verify_proof_inclusion(&root, &Hash32::ZERO, 0, 0, &[]));
            continue;
        }
        // Distinct sizes have distinct roots, and so does one more or one less proof.
        assert_ne!(root, proofs_root_of_ids(&ids[..ids.len() - 1]));
        for (i, id) in ids.iter().enumerate() {
            let index = i as u64;
            let path = proofs_inclusion(&proofs, i).unwrap();
            assert_eq!(Some(&path), proofs_inclusion_of_ids(&ids, i).as_ref());
            assert!(path.len() <= MAX_INCLUSION_PATH);
            assert!(verify_proof_inclusion(&root, id, index, count, &path), "n={n} i={i}");
            // Tampered: content, index, count, path, root.
            let other = Hash32([0xee; 32]);
            assert!(!verify_proof_inclusion(&root, &other, index, count, &path));
            for j in 0..count + 2 {
                if j != index {
                    assert!(!verify_proof_inclusion(&root, id, j, count, &path), "n={n} i={i} j={j}");
                }
            }
            assert!(!verify_proof_inclusion(&root, id, index, count + 1, &path));
            if index < count - 1 {
                assert!(!verify_proof_inclusion(&root, id, index, count - 1, &path));
            }
            for k in 0..path.len() {
                let mut bad = path.clone();
                bad[k].0[31] ^= 1;
                assert!(!verify_proof_inclusion(&root, id, index, count, &bad));
            }
            if !path.is_empty() {
                assert!(!verify_proof_inclusion(
                    &root,
                    id,
                    index,
                    count,
                    &path[..path.len() - 1]
                ));
                let mut swapped = path.clone();
                swapped.reverse();
                if swapped != path {
                    assert!(!verify_proof_inclusion(&root, id, index, count, &swapped));
                }
            }
            let mut longer = path.clone();
            longer.push(root);
            assert!(!verify_proof_inclusion(&root, id, index, count, &longer));
            let mut bad_root = root;
            bad_root.0[0] ^= 1;
            assert!(!verify_proof_inclusion(&bad_root, id, index, count, &path));
        }
    }
}

#[test]
fn finalized_blocks_need_a_quorum_of_the_current_set() {
    let chain = Chain::new();
    for height in 1..=3 {
        let block = chain.blocks[height as usize - 1].clone();
        // 3 of 4 (30 of 40, threshold 27): final.
        let finalized = chain.finalized(block.clone(), &[1, 2, 3]);
        let summary = validate_finalized(
            chain.parent(height),
            &finalized,
            chain.current(height),
            &net(),
            now(),
            SKEW_MS,
        )
        .unwrap();
        assert_eq!(summary.signed_power, 30);
        assert_eq!(participation_events(&summary).len(), 3);
        // The same as a signed header for a light client.
        let signed = proto::SignedHeader {
            header: block.header.clone(),
            commit: finalized.commit.clone(),
        };
        validate_signed_header(
            chain.parent(height),
            &signed,
            chain.current(height),
            &net(),
            now(),
            SKEW_MS,
        )
        .unwrap();
        // 2 of 4: every signature valid, not enough power.
        let short = chain.finalized(block, &[2, 4]);
        let err = chain.validate_finalized(height, &short).unwrap_err();
        assert_eq!(
            err,
            BlockError::Commit(CertificateError::InsufficientPower {
                signed: 20,
                required: 27,
                total: 40
            })
        );
        assert!(err.is_insufficient_power());
    }
    // After the hand-off the new set must sign: validator 5 (power 20) and 1 are enough.
    let block = chain.blocks[3].clone();
    chain
        .validate_finalized(4, &chain.finalized(block.clone(), &[5, 1, 2]))
        .unwrap();
    let err = chain
        .validate_finalized(4, &chain.finalized(block.clone(), &[4, 1, 2]))
        .unwrap_err();
    assert_eq!(
        err,
        BlockError::Commit(CertificateError::UnknownValidator { validator: id(4) })
    );

    // Commit fields.
    let block = chain.blocks[0].clone();
    let mut finalized = chain.finalized(block.clone(), &[1, 2, 3]);
    let commit = finalized.commit.as_mut().unwrap();
    commit.signatures[1].signature[5] ^= 1;
    assert_eq!(
        chain.validate_finalized(1, &finalized),
        Err(BlockError::Commit(CertificateError::BadSignature { validator: id(2) }))
    );
    let mut finalized = chain.finalized(block.clone(), &[1, 2, 3]);
    finalized.commit.as_mut().unwrap().height = 2;
    assert_eq!(
        chain.validate_finalized(1, &finalized),
        Err(BlockError::WrongHeight {
            field: "commit.height",
            expected: 1,
            found: 2
        })
    );
    // Block 1 was built in round 1: a commit from round 0 cannot be for it.
    let mut finalized = chain.finalized(block.clone(), &[1, 2, 3]);
    finalized.commit.as_mut().unwrap().round = 0;
    assert_eq!(
        chain.validate_finalized(1, &finalized),
        Err(BlockError::CommitRound {
            header_round: 1,
            commit_round: 0
        })
    );
    // ... but a re-proposal decided in a later round is fine.
    let header = block.header.clone().unwrap();
    let cert = proto::CommitCertificate {
        height: 1,
        round: 4,
        block_hash: header_hash(&header).0.to_vec(),
        signatures: commit_for_hash(&header, 4, &[1, 2, 3]),
    };
    let finalized = proto::FinalizedBlock {
        block: Some(block.clone()),
        commit: Some(cert),
    };
    chain.validate_finalized(1, &finalized).unwrap();
    // A commit for another block.
    let mut finalized = chain.finalized(block.clone(), &[1, 2, 3]);
    finalized.commit.as_mut().unwrap().block_hash = vec![0xcc; 32];
    assert_eq!(
        mismatch_field(chain.validate_finalized(1, &finalized)),
        "commit.block_hash"
    );
    // Missing parts.
    let missing = proto::FinalizedBlock {
        block: Some(block),
        commit: None,
    };
    assert_eq!(chain.validate_finalized(1, &missing).unwrap_err().label(), "malformed");
}

fn commit_for_hash(header: &proto::Header, round: u32, signers: &[u8]) -> Vec<proto::CommitSignature> {
    let hash = header_hash(header);
    signers
        .iter()
        .map(|&s| {
            let mut vote = precommit_for(&net(), header.height, round, Some(&hash), &id(s));
            vote.sign_with(&key(s));
            proto::CommitSignature {
                validator: vec![s; 32],
                signature: vote.signature,
            }
        })
        .collect()
}

#[test]
fn a_validator_climbs_from_tl1_to_tl3_and_falls_to_tl0_when_slashed() {
    let thresholds = TierThresholds::default();
    let me = id(7);
    let mut record = ReputationRecord::default(); // freshly registered
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL1);
    // 22.5 h of uptime, in 90-minute proofs: still TL1 (24 h are needed).
    for _ in 0..15 {
        record = apply_event(record, &uptime_event(&me, 90));
    }
    assert_eq!(record.uptime_minutes, 22 * 60 + 30);
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL1);
    record = apply_event(record, &uptime_event(&me, 90));
    assert_eq!(record.uptime_minutes, 24 * 60);
    assert_eq!(record.score, 24);
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL2);
    // Precommits in commits: one point each, 76 more reach the TL3 score of 100.
    let mut blocks = 0;
    while tier_of(Some(&record), &thresholds) < Tier::TL3 {
        let summary = tiernet_core::chain::QuorumSummary {
            signed_power: 30,
            total_power: 40,
            signers: vec![id(1), me, id(2)],
        };
        let credit: Vec<_> = participation_events(&summary)
            .into_iter()
            .filter(|e| e.zsi_id == me.as_bytes().to_vec())
            .collect();
        assert_eq!(credit, vec![participation_event(&me, 1)]);
        record = apply_event(record, &credit[0]);
        blocks += 1;
        assert!(blocks <= 1_000, "never reached TL3: {record:?}");
    }
    assert_eq!(blocks, 76);
    assert_eq!(record.participation, 76);
    assert_eq!(record.score, 100);
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL3);
    // Equivocation evidence: slashed, TL0, and nothing brings it back.
    let evidence = proto::Evidence {
        first: Some(precommit_for(&net(), 9, 0, None, &me)),
        second: Some(precommit_for(&net(), 9, 0, Some(&Hash32([1; 32])), &me)),
    };
    record = apply_event(record, &slash_event(&me, evidence));
    assert!(record.slashed);
    assert_eq!(record.score, 0);
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL0);
    record = apply_event(record, &uptime_event(&me, 10_000));
    record = apply_event(record, &participation_event(&me, 500));
    assert_eq!(tier_of(Some(&record), &thresholds), Tier::TL0);
    assert_eq!(record.score, 0);
}

#[test]
fn chain_time_is_strictly_monotonic_bounded_and_clock_free_when_certified() {
    let chain = Chain::new();
    let height = 3;
    let parent = time_of(2);
    let with_time = |time_ms: u64| {
        let mut block = chain.blocks[height as usize - 1].clone();
        block.header.as_mut().unwrap().time_ms = time_ms;
        block
    };
    let certified = |time_ms: u64| chain.finalized(with_time(time_ms), &[1, 2, 3]);
    let check_certified = |finalized: &proto::FinalizedBlock| {
        validate_certified(chain.parent(height), finalized, chain.current(height), &net()).map(|_| ())
    };
    // Not after the parent: refused, certified or not.
    let same = BlockError::TimeBeforeParent { parent, found: parent };
    assert_eq!(chain.validate(height, &with_time(parent)), Err(same.clone()));
    assert_eq!(check_certified(&certified(parent)), Err(same));
    chain.validate(height, &with_time(parent + 1)).unwrap();
    // More than one interval after the parent: refused, certified or not,
    // whatever the clock says.
    let far = parent + MAX_BLOCK_INTERVAL_MS + 1;
    let too_far = BlockError::TimeTooFarAfterParent {
        parent,
        found: far,
        max_ms: MAX_BLOCK_INTERVAL_MS,
    };
    let late_clock = validate_block(
        chain.parent(height),
        &with_time(far),
        chain.current(height),
        &net(),
        u64::MAX / 2,
        SKEW_MS,
    );
    assert_eq!(late_clock, Err(too_far.clone()));
    assert_eq!(check_certified(&certified(far)), Err(too_far.clone()));
    assert_eq!(too_far.label(), "time_too_far_after_parent");
    assert_eq!(
        too_far.to_string(),
        format!("header.time_ms: {far} is more than 86400000 ms after the parent's {parent}")
    );
    // Exactly one interval, ten minutes ahead of the clock: a proposal a
    // validator does not vote for, but a certified block is accepted.
    let ahead = now() + 10 * 60_000;
    assert!(ahead - parent <= MAX_BLOCK_INTERVAL_MS);
    assert_eq!(
        chain.validate_finalized(height, &certified(ahead)),
        Err(BlockError::TimeInFuture {
            found: ahead,
            now_ms: now(),
            max_skew_ms: SKEW_MS
        })
    );
    check_certified(&certified(ahead)).unwrap();
    check_certified(&certified(parent + MAX_BLOCK_INTERVAL_MS)).unwrap();
    // The rest of the rules still hold for a certified block.
    let mut forged = certified(parent + 1);
    forged.commit.as_mut().unwrap().signatures.truncate(2);
    assert!(check_certified(&forged).unwrap_err().is_insufficient_power());
}

#[test]
fn honest_block_times_always_meet_the_time_rule() {
    let parent = 1_000_000;
    // The clock, when it is between the bounds.
    assert_eq!(next_block_time(parent, parent + 750), parent + 750);
    // A clock behind the parent: one ms after it.
    assert_eq!(next_block_time(parent, 5), parent + 1);
    assert_eq!(next_block_time(parent, parent), parent + 1);
    // A clock far ahead (after a stall): one interval.
    assert_eq!(next_block_time(parent, u64::MAX), parent + MAX_BLOCK_INTERVAL_MS);
    let anchor = anchor();
    let set = four();
    for now in [
        0,
        GENESIS_MS,
        GENESIS_MS + 1,
        GENESIS_MS + 5 * MAX_BLOCK_INTERVAL_MS,
        u64::MAX,
    ] {
        let time_ms = next_block_time(GENESIS_MS, now);
        let block = BlockBuilder {
            parent: Parent::Genesis(&anchor),
            round: 0,
            time_ms,
            proposer: id(1),
            current: &set,
            next: &set,
            state_root: Hash32::ZERO,
        }
        .block(vec![], vec![])
        .unwrap();
        validate_block(Parent::Genesis(&anchor), &block, &set, &net(), time_ms, 0).unwrap();
    }
}
