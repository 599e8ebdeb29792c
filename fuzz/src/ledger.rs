//! Block execution: `Ledger::apply` (and `validate_block` before it, as a
//! node does) on arbitrary decoded blocks over a small chain: a genesis of
//! four validators and three TL1 identities, and the ledger after a real
//! block 1.
//!
//! # Input
//!
//! ```text
//! [base u8][fix u8][Block bytes…]
//! ```
//!
//! - base: `base & 1` picks the ledger at height 0 or 1.
//! - fix: fields set to what the base expects before applying, so mutations
//!   get past the first checks: `1` height, `2` network, `4` prev_hash,
//!   `8` validators_hash, `16` last_commit := the real commit of block 1
//!   (base 1), `32` skip the structural check that decoding from the
//!   network would have done (apply must not panic on such blocks either).
//!
//! # Oracle
//!
//! A block that applies gives a ledger at the next height whose root is the
//! header's `state_root` and the root of its own tree, and applying it again
//! gives the same root.

use std::sync::LazyLock;

use prost::Message;
use tiernet_core::chain::{BlockBody, ExecContext, GenesisAnchor, Ledger, Parent, precommit_for, validate_block};
use tiernet_core::genesis::{
    ConsensusParams, Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile,
};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::proof::VerifierRegistry;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash, sign_uptime_witness};
use tiernet_core::wire::{Validate, encode};

use crate::{Input, Seed};

const GENESIS_MS: u64 = 1_700_000_000_000;
/// One-hour blocks, as in the ledger tests, so an uptime window is worth minutes.
const BLOCK_TIME_MS: u64 = 3_600_000;
const FRESHNESS: u64 = 10;
const NOW_MS: u64 = GENESIS_MS + 100_000;
const SKEW_MS: u64 = 5_000;

/// Fix: set the height.
pub const FIX_HEIGHT: u8 = 1;
/// Fix: set the network id.
pub const FIX_NETWORK: u8 = 2;
/// Fix: set prev_hash.
pub const FIX_PREV: u8 = 4;
/// Fix: set validators_hash.
pub const FIX_VALIDATORS: u8 = 8;
/// Fix: set last_commit to the real commit of block 1.
pub const FIX_COMMIT: u8 = 16;
/// Do not run the structural check first.
pub const UNCHECKED: u8 = 32;

struct World {
    anchor: GenesisAnchor,
    verifiers: VerifierRegistry,
    /// Ledgers at heights 0 and 1.
    ledgers: [Ledger; 2],
    /// Block 1 and a block 2 with an uptime proof and a slash.
    blocks: [proto::Block; 2],
    /// The commit of block 1 (carried by block 2).
    commit1: proto::CommitCertificate,
}

fn key(name: &str) -> ZsiKeypair {
    ZsiKeypair::from_seed(name.as_bytes()).expect("fixture key")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time_of(height: u64) -> u64 {
    GENESIS_MS + height * 1_000
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let validators: Vec<ZsiKeypair> = (0..4).map(|i| key(&format!("validator-{i}"))).collect();
    let subject = key("subject");
    let witnesses = [key("witness-1"), key("witness-2")];
    let mut identities: Vec<GenesisIdentity> = validators
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut entry = GenesisIdentity::new(
                &format!("v{i}"),
                &k.public(),
                ReputationFile {
                    uptime_minutes: 1_440,
                    score: 100,
                    ..Default::default()
                },
            );
            entry.validator = Some(GenesisValidator {
                consensus_key: hex(k.public().identity_key.as_bytes()),
                power: 10,
            });
            entry
        })
        .collect();
    for (name, k) in [("subject", &subject), ("w1", &witnesses[0]), ("w2", &witnesses[1])] {
        identities.push(GenesisIdentity::new(name, &k.public(), ReputationFile::default()));
    }
    let genesis = Genesis::from_file(GenesisFile {
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
    })
    .expect("fixture genesis");
    let anchor = GenesisAnchor::from_genesis(&genesis);
    let verifiers = VerifierRegistry::with_builtins();
    let ctx = ExecContext {
        verifiers: &verifiers,
        freshness_blocks: FRESHNESS,
    };
    let network = genesis.network.clone();
    let l0 = Ledger::genesis(&genesis).expect("fixture ledger");
    let proposer = |l: &Ledger| l.validators().iter().next().map(|v| v.zsi_id).expect("a validator");
    let build = |l: &Ledger, parent: Parent<'_>, body: BlockBody| {
        let height = l.height() + 1;
        l.build_block(&ctx, parent, 0, time_of(height), proposer(l), body)
            .expect("fixture block builds")
    };

    let body = l0.propose(&ctx, &[], None, &[]).expect("fixture body");
    let b1 = build(&l0, Parent::Genesis(&anchor), body);
    let l1 = l0.apply(&ctx, &b1).expect("block 1 applies");
    let h1 = b1.header.clone().expect("header");
    let hash1 = header_hash(&h1);
    let commit1 = proto::CommitCertificate {
        height: 1,
        round: 0,
        block_hash: hash1.as_bytes().to_vec(),
        signatures: validators[..3]
            .iter()
            .map(|k| {
                let mut vote = precommit_for(&network, 1, 0, Some(&hash1), &k.zsi_id());
                vote.sign_with(k.identity_key());
                proto::CommitSignature {
                    validator: k.zsi_id().as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect(),
    };

    // Block 2: an uptime proof of the subject over height 1, witnessed by
    // both witnesses, and validator 3 slashed for a double precommit.
    let heartbeats = (BLOCK_TIME_MS / 10_000 + 1) as u32;
    let claim = proto::UptimeClaim {
        network_id: "devnet".into(),
        subject: subject.zsi_id().as_bytes().to_vec(),
        from_height: 1,
        to_height: 1,
        heartbeats,
    };
    let proof = proto::UptimeProof {
        witnesses: witnesses
            .iter()
            .map(|w| sign_uptime_witness(&claim, w.zsi_id().as_bytes(), heartbeats, w.identity_key()))
            .collect(),
    };
    let mut envelope = proto::ProofEnvelope {
        kind: "uptime/v1".into(),
        statement: claim.encode_to_vec(),
        proof: proof.encode_to_vec(),
        submitter: subject.zsi_id().as_bytes().to_vec(),
        height: 2,
        signature: Vec::new(),
    };
    envelope.sign_with(subject.identity_key());
    let culprit = &validators[3];
    let vote = |value: u8| {
        let mut v = precommit_for(&network, 1, 0, Some(&Hash32([value; 32])), &culprit.zsi_id());
        v.sign_with(culprit.identity_key());
        v
    };
    let evidence = proto::Evidence {
        first: Some(vote(0xaa)),
        second: Some(vote(0xbb)),
    };
    let body = l1
        .propose(&ctx, &[envelope], Some(&commit1), &[evidence])
        .expect("fixture body 2");
    let b2 = build(&l1, Parent::Header(&h1), body);
    World {
        anchor,
        verifiers,
        ledgers: [l0, l1],
        blocks: [b1, b2],
        commit1,
    }
});

/// Runs one input; see the module docs.
pub fn run(data: &[u8]) {
    let w = &*WORLD;
    let mut input = Input::new(data);
    let base = usize::from(input.u8() & 1);
    let fix = input.u8();
    let Ok(mut block) = proto::Block::decode(input.rest()) else {
        return;
    };
    let ledger = &w.ledgers[base];
    if let Some(header) = &mut block.header {
        if fix & FIX_HEIGHT != 0 {
            header.height = ledger.height() + 1;
        }
        if fix & FIX_NETWORK != 0 {
            header.network_id = ledger.network().as_str().to_owned();
        }
        if fix & FIX_PREV != 0 {
            header.prev_hash = ledger.last_block_hash().as_bytes().to_vec();
        }
        if fix & FIX_VALIDATORS != 0 {
            header.validators_hash = ledger.validators().hash().as_bytes().to_vec();
        }
    }
    if fix & FIX_COMMIT != 0 {
        block.last_commit = (base == 1).then(|| w.commit1.clone());
    }
    if fix & UNCHECKED == 0 && block.validate().is_err() {
        return;
    }
    let ctx = ExecContext {
        verifiers: &w.verifiers,
        freshness_blocks: FRESHNESS,
    };
    let parent = match ledger.last_header() {
        Some(header) => Parent::Header(header),
        None => Parent::Genesis(&w.anchor),
    };
    let checked = validate_block(parent, &block, ledger.validators(), ledger.network(), NOW_MS, SKEW_MS);
    let valid = checked.is_ok();
    let applied = ledger.apply(&ctx, &block);
    crate::debug(|| {
        format!(
            "validate_block: {checked:?}; apply: {:?}",
            applied.as_ref().map(|l| l.height())
        )
    });
    let Ok(next) = applied else {
        return;
    };
    let header = block.header.as_ref().expect("an applied block has a header");
    assert_eq!(next.height(), ledger.height() + 1);
    assert_eq!(
        next.root().as_bytes().as_slice(),
        header.state_root.as_slice(),
        "root is not the header's"
    );
    assert_eq!(next.root(), next.tree().root(), "root is not the tree's");
    if valid {
        assert_eq!(next.last_header(), Some(header));
    }
    let again = ledger.apply(&ctx, &block).expect("apply is deterministic");
    assert_eq!(again.root(), next.root(), "apply is not deterministic");
}

/// The two real blocks on their bases, with and without fixes.
pub fn seeds() -> Vec<Seed> {
    let w = &*WORLD;
    let seed = |base: u8, fix: u8, block: &proto::Block| {
        let mut out = vec![base, fix];
        out.extend(encode(block));
        out
    };
    vec![
        ("block-1", seed(0, 0, &w.blocks[0])),
        ("block-2", seed(1, 0, &w.blocks[1])),
        (
            "block-2-fixed",
            seed(1, FIX_HEIGHT | FIX_NETWORK | FIX_PREV | FIX_VALIDATORS, &w.blocks[1]),
        ),
    ]
}

/// Block 1 with its commit, as stored and served, and as gossiped.
pub fn messages() -> Vec<Vec<u8>> {
    let w = &*WORLD;
    let finalized = proto::FinalizedBlock {
        block: Some(w.blocks[0].clone()),
        commit: Some(w.commit1.clone()),
    };
    vec![
        encode(&proto::BlocksMessage {
            kind: Some(proto::blocks_message::Kind::Finalized(finalized.clone())),
        }),
        encode(&proto::SyncResponse {
            kind: Some(proto::sync_response::Kind::Block(finalized.clone())),
        }),
        encode(&finalized),
    ]
}
