//! The light-client verifier (`tiernet_core::verify`): a chain followed
//! header by header, skips and chain proofs across a validator-set change,
//! every kind of tampering classified as invalid or as not enough trust,
//! state values and snapshot chunks proven against a real `MemoryTree`.

use ed25519_dalek::SigningKey;
use proptest::collection::vec;
use proptest::prelude::*;
use tiernet_core::chain::{
    BlockBuilder, CertificateError, GenesisAnchor, MAX_BLOCK_INTERVAL_MS, Parent, SignatureCheck, ValidatorSet,
    chain_commitment, validate_certified_header,
};
use tiernet_core::genesis::{Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::proof::{ChainProofVerifier, ChainStatement};
use tiernet_core::state::{ChunkSummary, MemoryTree, chunk_hash};
use tiernet_core::verify::{
    self, MAX_CHAIN_PROOF_STEPS, StepVerifier, TrustedState, VerifyError, verify_chain_proof, verify_commitment_link,
    verify_hash_link, verify_next, verify_skip, verify_snapshot_chunk, verify_snapshot_manifest, verify_state_value,
};
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::header_hash;

use crate::common::{self, id, key, net};

const GENESIS_MS: u64 = 1_700_000_000_000;
/// Heights of the test chain; the set changes from A to B after `HAND_OFF`.
const HEIGHTS: u64 = 6;
const HAND_OFF: u64 = 3;
/// Entries of the test state, and of one snapshot chunk.
const STATE_ENTRIES: u32 = 300;
const CHUNK_SIZE: usize = 64;

fn set(seeds: &[u8]) -> ValidatorSet {
    common::members(&seeds.iter().map(|&s| (s, 10)).collect::<Vec<_>>())
}

const A: &[u8] = &[1, 2, 3, 4];
const B: &[u8] = &[1, 2, 5, 6];
/// A set nobody ever handed trust to.
const C: &[u8] = &[7, 8, 9, 10];

/// A commit for `header`, precommitted by `seeds`.
fn commit_by(header: &proto::Header, seeds: &[u8]) -> proto::CommitCertificate {
    let keys: Vec<(ZsiId, SigningKey)> = seeds.iter().map(|&s| (id(s), key(s))).collect();
    let signers: Vec<(ZsiId, &SigningKey)> = keys.iter().map(|(i, k)| (*i, k)).collect();
    common::signed_commit(&net(), header, &signers)
}

fn signed(header: &proto::Header, seeds: &[u8]) -> proto::SignedHeader {
    proto::SignedHeader {
        header: Some(header.clone()),
        commit: Some(commit_by(header, seeds)),
    }
}

fn state_key(i: u32) -> Vec<u8> {
    format!("id/{i:05}").into_bytes()
}

fn state_tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..STATE_ENTRIES {
        tree.insert(
            state_key(i),
            format!("value {i}").repeat(1 + i as usize % 3).into_bytes(),
        );
    }
    tree
}

/// Heights 1..=6 on a genesis signed by A; A signs 1..=3, header 3 hands
/// trust to B, B signs 4..=6. Every header commits to `state_tree()`.
struct Chain {
    anchor: GenesisAnchor,
    headers: Vec<proto::Header>,
    tree: MemoryTree,
}

impl Chain {
    fn new() -> Self {
        let anchor = GenesisAnchor::new(net(), GENESIS_MS, set(A).hash());
        let tree = state_tree();
        let (a, b) = (set(A), set(B));
        let mut headers: Vec<proto::Header> = Vec::new();
        for height in 1..=HEIGHTS {
            let current = if height <= HAND_OFF { &a } else { &b };
            let next = if height < HAND_OFF { &a } else { &b };
            let parent = match headers.last() {
                Some(header) => Parent::Header(header),
                None => Parent::Genesis(&anchor),
            };
            let builder = BlockBuilder {
                parent,
                round: (height % 2) as u32,
                time_ms: GENESIS_MS + height * 1_000,
                proposer: id(if height <= HAND_OFF { A[0] } else { B[2] }),
                current,
                next,
                state_root: tree.root(),
            };
            headers.push(builder.header(&[]).unwrap());
        }
        Self { anchor, headers, tree }
    }

    fn header(&self, height: u64) -> &proto::Header {
        &self.headers[height as usize - 1]
    }

    /// The seeds of the set that signs `height`.
    fn signers(height: u64) -> &'static [u8] {
        if height <= HAND_OFF { A } else { B }
    }

    fn signed(&self, height: u64) -> proto::SignedHeader {
        signed(self.header(height), Self::signers(height))
    }

    fn genesis(&self) -> TrustedState {
        TrustedState::from_anchor(self.anchor.clone(), set(A)).unwrap()
    }

    /// The trusted state after following headers 1..=height one by one.
    fn trusted_at(&self, height: u64) -> TrustedState {
        let mut state = self.genesis();
        for h in 1..=height {
            let next = (h == HAND_OFF).then(|| set(B).into_proto());
            state = verify_next(&state, &self.signed(h), next.as_ref(), &net()).unwrap();
        }
        state
    }

    fn step(&self, height: u64) -> proto::ChainProofStep {
        proto::ChainProofStep {
            header: Some(self.signed(height)),
            validators: Some(set(Self::signers(height)).into_proto()),
        }
    }

    fn proof(&self, trusted_height: u64, heights: &[u64]) -> proto::ChainProof {
        proto::ChainProof {
            trusted_height,
            steps: heights.iter().map(|&h| self.step(h)).collect(),
        }
    }
}

/// `header` with `edit` applied, the proposer made a member of `seeds`, the
/// chain commitment recomputed on `parent_commitment` when given, and
/// re-signed by `seeds`: only what `edit` broke can fail.
fn forged(
    header: &proto::Header,
    parent_commitment: Option<Hash32>,
    seeds: &[u8],
    edit: impl FnOnce(&mut proto::Header),
) -> proto::SignedHeader {
    let mut header = header.clone();
    edit(&mut header);
    header.proposer = vec![seeds[0]; 32];
    if let Some(prev) = parent_commitment {
        let h = |b: &[u8]| Hash32::from_slice(b).unwrap();
        header.chain_commitment = chain_commitment(
            &prev,
            header.height,
            &h(&header.state_root),
            &h(&header.proofs_root),
            &h(&header.validators_hash),
        )
        .0
        .to_vec();
    }
    signed(&header, seeds)
}

fn commitment_of(header: &proto::Header) -> Hash32 {
    Hash32::from_slice(&header.chain_commitment).unwrap()
}

fn invalid(result: Result<TrustedState, VerifyError>) -> VerifyError {
    let e = result.unwrap_err();
    assert!(e.is_invalid() && !e.is_not_enough_trust(), "{e} should be invalid");
    e
}

fn untrusted(result: Result<TrustedState, VerifyError>) -> VerifyError {
    let e = result.unwrap_err();
    assert!(
        e.is_not_enough_trust() && !e.is_invalid(),
        "{e} should be not-enough-trust"
    );
    e
}

// ───────────────────────────── headers ─────────────────────────────

#[test]
fn a_chain_verifies_header_by_header_across_a_set_change() {
    let chain = Chain::new();
    let mut state = chain.genesis();
    assert_eq!((state.height(), state.hash()), (0, Hash32::ZERO));
    for h in 1..=HEIGHTS {
        let next = (h == HAND_OFF).then(|| set(B).into_proto());
        state = verify_next(&state, &chain.signed(h), next.as_ref(), &net()).unwrap();
        assert_eq!(state.height(), h);
        assert_eq!(state.hash(), header_hash(chain.header(h)));
        assert_eq!(state.header(), Some(chain.header(h)));
        assert_eq!(state.state_root(), Some(chain.tree.root()));
        let expected_next = if h < HAND_OFF { set(A) } else { set(B) };
        assert_eq!(state.next_validators_hash(), expected_next.hash());
        assert_eq!(
            state.next_validators().map(ValidatorSet::hash),
            Some(expected_next.hash())
        );
    }
    // The links themselves, as predicates.
    for h in 2..=HEIGHTS {
        verify_hash_link(chain.header(h - 1), chain.header(h)).unwrap();
        verify_commitment_link(chain.header(h - 1), chain.header(h)).unwrap();
    }
    assert_eq!(
        verify_commitment_link(chain.header(1), chain.header(3))
            .unwrap_err()
            .label(),
        "wrong_height"
    );
}

#[test]
fn a_genesis_file_anchors_trust() {
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
        network_id: "devnet".into(),
        genesis_time_ms: GENESIS_MS,
        tiers: Default::default(),
        consensus: Default::default(),
        uptime: Default::default(),
        identities,
    })
    .unwrap();
    let trusted = TrustedState::from_genesis(&genesis).unwrap();
    assert_eq!(trusted.height(), 0);
    assert_eq!(trusted.next_validators_hash(), genesis.validators_hash());
    let current = ValidatorSet::from_proto(&genesis.validators).unwrap();
    let anchor = GenesisAnchor::from_genesis(&genesis);
    let header = BlockBuilder {
        parent: Parent::Genesis(&anchor),
        round: 0,
        time_ms: GENESIS_MS + 1,
        proposer: keys[0].zsi_id(),
        current: &current,
        next: &current,
        state_root: Hash32([3; 32]),
    }
    .header(&[])
    .unwrap();
    let signers: Vec<(ZsiId, &SigningKey)> = keys.iter().map(|k| (k.zsi_id(), k.identity_key())).collect();
    let signed = proto::SignedHeader {
        commit: Some(common::signed_commit(&net(), &header, &signers[..3])),
        header: Some(header),
    };
    let state = verify_next(&trusted, &signed, None, &net()).unwrap();
    assert_eq!(state.height(), 1);
    // Signed by the genesis set, but not by enough of it.
    let short = proto::SignedHeader {
        commit: Some(common::signed_commit(
            &net(),
            signed.header.as_ref().unwrap(),
            &signers[..2],
        )),
        ..signed
    };
    untrusted(verify_next(&trusted, &short, None, &net()));
}

#[test]
fn a_next_set_known_by_hash_only_must_be_supplied() {
    let chain = Chain::new();
    let at2 = chain.trusted_at(2);
    // Header 3 hands off to B, but B is not passed along.
    let at3 = verify_next(&at2, &chain.signed(3), None, &net()).unwrap();
    assert_eq!(at3.next_validators(), None);
    assert_eq!(at3.next_validators_hash(), set(B).hash());
    let e = untrusted(verify_next(&at3, &chain.signed(4), None, &net()));
    assert_eq!(
        e,
        VerifyError::NextValidatorsUnknown {
            height: 3,
            hash: set(B).hash()
        }
    );
    // The wrong set is refused; the right one unlocks height 4.
    let e = at3.clone().with_next_validators(set(A).as_proto()).unwrap_err();
    assert!(e.is_invalid());
    assert_eq!(e.label(), "mismatch");
    let at3 = at3.with_next_validators(set(B).as_proto()).unwrap();
    verify_next(&at3, &chain.signed(4), None, &net()).unwrap();
    // A next set that is not the one the header names is invalid.
    let e = invalid(verify_next(&at2, &chain.signed(3), Some(set(C).as_proto()), &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "next_validators",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn forged_signatures_are_invalid() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(1);
    let mut bad = chain.signed(2);
    bad.commit.as_mut().unwrap().signatures[1].signature[5] ^= 1;
    let e = invalid(verify_next(&trusted, &bad, None, &net()));
    assert_eq!(
        e,
        VerifyError::Commit {
            height: 2,
            source: CertificateError::BadSignature { validator: id(A[1]) }
        }
    );
    // A forged signature is invalid even when power is short as well.
    let mut bad = signed(chain.header(2), &A[..2]);
    bad.commit.as_mut().unwrap().signatures[0].signature[0] ^= 1;
    assert_eq!(invalid(verify_next(&trusted, &bad, None, &net())).label(), "commit");
    // A member's vote signed with another key.
    let mut bad = chain.signed(2);
    let stolen = commit_by(chain.header(2), &[9]).signatures[0].signature.clone();
    bad.commit.as_mut().unwrap().signatures[2].signature = stolen;
    assert_eq!(invalid(verify_next(&trusted, &bad, None, &net())).label(), "commit");
    // A signer outside the set.
    let mut bad = chain.signed(2);
    let outsider = commit_by(chain.header(2), &[9]).signatures.remove(0);
    bad.commit.as_mut().unwrap().signatures[3] = outsider;
    let e = invalid(verify_next(&trusted, &bad, None, &net()));
    assert!(matches!(
        e,
        VerifyError::Commit {
            source: CertificateError::UnknownValidator { .. },
            ..
        }
    ));
    // The certificate of another header.
    let other = proto::SignedHeader {
        header: Some(chain.header(2).clone()),
        commit: Some(commit_by(chain.header(3), A)),
    };
    assert_eq!(
        invalid(verify_next(&trusted, &other, None, &net())).label(),
        "wrong_height"
    );
    let mut moved = chain.header(2).clone();
    moved.time_ms += 1;
    let other = proto::SignedHeader {
        header: Some(chain.header(2).clone()),
        commit: Some(commit_by(&moved, A)),
    };
    let e = invalid(verify_next(&trusted, &other, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "commit.block_hash",
                ..
            }
        ),
        "{e}"
    );
    // Signed for another network.
    let e = invalid(verify_next(
        &trusted,
        &chain.signed(2),
        None,
        &NetworkId::new("testnet").unwrap(),
    ));
    assert_eq!(e.label(), "wrong_network");
    // Missing parts.
    let e = invalid(verify_next(
        &trusted,
        &proto::SignedHeader {
            commit: None,
            ..chain.signed(2)
        },
        None,
        &net(),
    ));
    assert_eq!(e.label(), "malformed");
}

#[test]
fn a_bad_signature_past_the_quorum_is_not_checked_by_the_light_client() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(1);
    // A is 4 × 10, the quorum 27: validators 1, 2 and 3 (canonical order)
    // are checked, 4 is not and does not count.
    let mut bad = chain.signed(2);
    let commit = bad.commit.as_mut().unwrap();
    let index = commit
        .signatures
        .iter()
        .position(|s| s.validator == id(4).as_bytes())
        .unwrap();
    commit.signatures[index].signature[5] ^= 1;
    assert_eq!(verify_next(&trusted, &bad, None, &net()).unwrap().height(), 2);
    let a = set(A).into_proto();
    assert_eq!(verify_skip(&trusted, &bad, &a, None, &net()).unwrap().height(), 2);
    // Every signature: what a full node and a forwarding client check.
    let forged = VerifyError::Commit {
        height: 2,
        source: CertificateError::BadSignature { validator: id(4) },
    };
    assert_eq!(
        invalid(verify::verify_next_with(
            &trusted,
            &bad,
            None,
            &net(),
            SignatureCheck::All
        )),
        forged
    );
    assert!(validate_certified_header(trusted.anchor().as_parent(), &bad, &set(A), &net()).is_err());
    // Among the checked ones it is invalid under either check.
    let mut bad = chain.signed(2);
    let commit = bad.commit.as_mut().unwrap();
    let index = commit
        .signatures
        .iter()
        .position(|s| s.validator == id(3).as_bytes())
        .unwrap();
    commit.signatures[index].signature[5] ^= 1;
    let forged = VerifyError::Commit {
        height: 2,
        source: CertificateError::BadSignature { validator: id(3) },
    };
    assert_eq!(invalid(verify_next(&trusted, &bad, None, &net())), forged);
    assert_eq!(invalid(verify_skip(&trusted, &bad, &a, None, &net())), forged);
    // Without validator 4 at all, the three others are still a quorum.
    let three = signed(chain.header(2), &A[..3]);
    verify_next(&trusted, &three, None, &net()).unwrap();
}

#[test]
fn insufficient_power_is_not_enough_trust() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(1);
    // 4 × 10: the quorum is 27, three signers (30) pass, two (20) do not.
    verify_next(&trusted, &signed(chain.header(2), &A[..3]), None, &net()).unwrap();
    let e = untrusted(verify_next(&trusted, &signed(chain.header(2), &A[..2]), None, &net()));
    assert_eq!(
        e,
        VerifyError::NotEnoughPower {
            height: 2,
            signed: 20,
            required: 27,
            total: 40
        }
    );
    assert_eq!(e.label(), "not_enough_power");
    let e = untrusted(verify_next(&trusted, &signed(chain.header(2), &[]), None, &net()));
    assert_eq!(e.label(), "not_enough_power");
}

#[test]
fn a_wrong_prev_hash_is_invalid() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(1);
    let bad = forged(chain.header(2), None, A, |h| h.prev_hash[0] ^= 1);
    let e = invalid(verify_next(&trusted, &bad, None, &net()));
    assert_eq!(
        e,
        VerifyError::Mismatch {
            height: 2,
            field: "header.prev_hash",
            expected: header_hash(chain.header(1)),
            found: Hash32::from_slice(&bad.header.as_ref().unwrap().prev_hash).unwrap(),
        }
    );
    assert_eq!(
        verify_hash_link(chain.header(1), bad.header.as_ref().unwrap())
            .unwrap_err()
            .label(),
        "mismatch"
    );
    // The commitment does not cover prev_hash: that link alone still holds.
    verify_commitment_link(chain.header(1), bad.header.as_ref().unwrap()).unwrap();
    // Height 1 must point at the genesis (all zero).
    let bad = forged(chain.header(1), None, A, |h| h.prev_hash = vec![1; 32]);
    assert_eq!(
        invalid(verify_next(&chain.genesis(), &bad, None, &net())).label(),
        "mismatch"
    );
}

#[test]
fn a_wrong_chain_commitment_is_invalid() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(1);
    let bad = forged(chain.header(2), None, A, |h| h.chain_commitment[31] ^= 1);
    let e = invalid(verify_next(&trusted, &bad, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                height: 2,
                field: "header.chain_commitment",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        verify_commitment_link(chain.header(1), bad.header.as_ref().unwrap())
            .unwrap_err()
            .label(),
        "mismatch"
    );
    // A state root changed after the fact breaks the commitment too.
    let bad = forged(chain.header(2), None, A, |h| h.state_root[0] ^= 1);
    let e = invalid(verify_next(&trusted, &bad, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "header.chain_commitment",
                ..
            }
        ),
        "{e}"
    );
    // A commitment built on another history.
    let bad = forged(chain.header(2), Some(Hash32([9; 32])), A, |_| {});
    assert_eq!(invalid(verify_next(&trusted, &bad, None, &net())).label(), "mismatch");
}

#[test]
fn headers_out_of_place_are_invalid() {
    let chain = Chain::new();
    let trusted = chain.trusted_at(2);
    for h in [1, 2, 4] {
        let e = invalid(verify_next(&trusted, &chain.signed(h), None, &net()));
        assert_eq!(e.label(), "wrong_height", "height {h}");
    }
    let e = invalid(verify_skip(&trusted, &chain.signed(2), set(A).as_proto(), None, &net()));
    assert_eq!(e.label(), "height_not_after");
    // Earlier than the trusted header.
    let early = forged(chain.header(3), Some(commitment_of(chain.header(2))), A, |h| {
        h.time_ms = GENESIS_MS
    });
    assert_eq!(
        invalid(verify_next(&trusted, &early, None, &net())).label(),
        "time_before_trusted"
    );
    // A proposer outside the set.
    let mut header = chain.header(3).clone();
    header.proposer = vec![9; 32];
    let e = invalid(verify_next(&trusted, &signed(&header, A), None, &net()));
    assert_eq!(
        e,
        VerifyError::UnknownProposer {
            height: 3,
            proposer: id(9)
        }
    );
}

/// One header rulebook: the same headers, good and bad, each with a valid
/// commit by the set that signs it, go to a full node's header rules
/// (`validate_certified_header`, the rules it validates blocks and
/// catch-up with, without the clock) and to the light client's
/// `verify_next`. They must agree on every one, and agree with what each
/// case is.
#[test]
fn a_full_node_and_a_light_client_agree_on_every_header() {
    let chain = Chain::new();
    // Height 3 on header 2 (signed by A; header 3 hands trust to B), and
    // height 1 on the genesis.
    for (height, trusted) in [(3, chain.trusted_at(2)), (1, chain.genesis())] {
        let parent_time = trusted.time_ms();
        let prev_commitment = trusted.chain_commitment();
        let genuine = chain.header(height).clone();
        let resign = |edit: &dyn Fn(&mut proto::Header)| forged(&genuine, Some(prev_commitment), A, edit);
        let keep_commitment = |edit: &dyn Fn(&mut proto::Header)| forged(&genuine, None, A, edit);
        let mut cases: Vec<(&str, proto::SignedHeader, bool)> = vec![
            ("genuine", chain.signed(height), true),
            ("another round", resign(&|h| h.round += 7), true),
            (
                "one ms after the parent",
                resign(&|h| h.time_ms = parent_time + 1),
                true,
            ),
            (
                "one interval after the parent",
                resign(&|h| h.time_ms = parent_time + MAX_BLOCK_INTERVAL_MS),
                true,
            ),
            (
                "another next set",
                resign(&|h| h.next_validators_hash = set(C).hash().0.to_vec()),
                true,
            ),
            ("time of the parent", resign(&|h| h.time_ms = parent_time), false),
            (
                "time before the parent",
                resign(&|h| h.time_ms = parent_time - 1),
                false,
            ),
            (
                "more than an interval after the parent",
                resign(&|h| h.time_ms = parent_time + MAX_BLOCK_INTERVAL_MS + 1),
                false,
            ),
            (
                "a century ahead",
                resign(&|h| h.time_ms = parent_time + 100 * 365 * 24 * 3_600_000),
                false,
            ),
            ("prev_hash", resign(&|h| h.prev_hash[0] ^= 1), false),
            ("prev_hash length", resign(&|h| h.prev_hash.truncate(31)), false),
            (
                "chain_commitment",
                keep_commitment(&|h| h.chain_commitment[5] ^= 1),
                false,
            ),
            (
                "state_root after the fact",
                keep_commitment(&|h| h.state_root[0] ^= 1),
                false,
            ),
            (
                "proofs_root after the fact",
                keep_commitment(&|h| h.proofs_root[0] ^= 1),
                false,
            ),
            (
                "commitment on another history",
                forged(&genuine, Some(Hash32([9; 32])), A, |_| {}),
                false,
            ),
            (
                "validators_hash",
                resign(&|h| h.validators_hash = set(C).hash().0.to_vec()),
                false,
            ),
            ("height", resign(&|h| h.height += 1), false),
            ("network", resign(&|h| h.network_id = "testnet".into()), false),
            ("signed by too few", signed(&genuine, &A[..2]), false),
            ("signed by another set", signed(&genuine, C), false),
        ];
        let mut outsider = genuine.clone();
        outsider.proposer = vec![9; 32];
        cases.push(("a proposer outside the set", signed(&outsider, A), false));
        let mut forged_signature = chain.signed(height);
        forged_signature.commit.as_mut().unwrap().signatures[0].signature[3] ^= 1;
        cases.push(("a forged signature", forged_signature, false));
        let mut early_commit = chain.signed(height);
        let commit = early_commit.commit.as_mut().unwrap();
        commit.round = commit.round.wrapping_sub(1);
        cases.push(("a commit of an earlier round", early_commit, false));
        let mut other_height = chain.signed(height);
        other_height.commit.as_mut().unwrap().height += 1;
        cases.push(("a commit of another height", other_height, false));

        for (name, signed, valid) in cases {
            let full = validate_certified_header(trusted.anchor().as_parent(), &signed, &set(A), &net());
            let light = verify_next(&trusted, &signed, None, &net());
            let light_all = verify::verify_next_with(&trusted, &signed, None, &net(), SignatureCheck::All);
            assert_eq!(
                full.is_ok(),
                light_all.is_ok(),
                "height {height}, {name}: {light_all:?}"
            );
            assert_eq!(
                full.is_ok(),
                light.is_ok(),
                "height {height}, {name}: full node {full:?}, light client {light:?}"
            );
            assert_eq!(full.is_ok(), valid, "height {height}, {name}: {full:?}");
            // Where both refuse, the light client's verdict is invalid,
            // except for a commit short of power.
            if let Err(e) = light {
                assert_eq!(e.is_not_enough_trust(), name == "signed by too few", "{name}: {e}");
            }
        }
    }
}

#[test]
fn skipping_works_within_one_set_only() {
    let chain = Chain::new();
    let genesis = chain.genesis();
    let a = set(A).into_proto();
    let b = set(B).into_proto();
    // A signs 1..=3: from the genesis straight to 3.
    let at3 = verify_skip(&genesis, &chain.signed(3), &a, Some(&b), &net()).unwrap();
    assert_eq!(at3.height(), 3);
    assert_eq!(at3.next_validators().map(ValidatorSet::hash), Some(set(B).hash()));
    // An adjacent skip is checked like an adjacent header.
    verify_skip(&genesis, &chain.signed(1), &a, None, &net()).unwrap();
    let bad = forged(chain.header(1), None, A, |h| h.prev_hash = vec![1; 32]);
    assert_eq!(
        invalid(verify_skip(&genesis, &bad, &a, None, &net())).label(),
        "mismatch"
    );
    // From 3 (next set B) to 6: B signs it.
    let at6 = verify_skip(&at3, &chain.signed(6), &b, None, &net()).unwrap();
    assert_eq!(at6.height(), 6);
    // From 1 to 5 crosses the hand-off: the data is fine, the trust is not there.
    let at1 = chain.trusted_at(1);
    let e = untrusted(verify_skip(&at1, &chain.signed(5), &b, None, &net()));
    assert_eq!(
        e,
        VerifyError::ValidatorsNotTrusted {
            height: 5,
            trusted: set(A).hash(),
            found: set(B).hash()
        }
    );
    // A set that is not the header's own is invalid, whatever the trust.
    let e = invalid(verify_skip(&at1, &chain.signed(5), &a, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "validators",
                ..
            }
        ),
        "{e}"
    );
    // Skipping needs > 2/3 of the trusted set too.
    let e = untrusted(verify_skip(
        &genesis,
        &signed(chain.header(3), &A[..2]),
        &a,
        None,
        &net(),
    ));
    assert_eq!(e.label(), "not_enough_power");
}

#[test]
fn a_set_swapped_without_a_hand_off_is_refused() {
    let chain = Chain::new();
    let c = set(C).into_proto();
    // Header 4 as if C signed it: consistent in itself (validators_hash,
    // commitment, proposer, signatures), but nobody handed trust to C.
    let swapped = forged(chain.header(4), Some(commitment_of(chain.header(3))), C, |h| {
        h.validators_hash = set(C).hash().0.to_vec()
    });
    let at3 = chain.trusted_at(3);
    // Adjacent: the parent named B; nothing can change in between.
    let e = invalid(verify_next(&at3, &swapped, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "header.validators_hash",
                ..
            }
        ),
        "{e}"
    );
    let e = invalid(verify_skip(&at3, &swapped, &c, None, &net()));
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                field: "header.validators_hash",
                ..
            }
        ),
        "{e}"
    );
    // From further back, a single header: not enough trust.
    let at2 = chain.trusted_at(2);
    let e = untrusted(verify_skip(&at2, &swapped, &c, None, &net()));
    assert_eq!(e.label(), "validators_not_trusted");
    // In a chain proof, a missing hand-off is invalid.
    let proof = proto::ChainProof {
        trusted_height: 2,
        steps: vec![proto::ChainProofStep {
            header: Some(swapped.clone()),
            validators: Some(c.clone()),
        }],
    };
    let e = invalid(verify_chain_proof(&at2, &proof, &net()));
    assert_eq!(e.label(), "broken_hand_off");
    assert!(
        matches!(&e, VerifyError::ChainProofStep { step: 0, height: 4, source } if matches!(**source, VerifyError::BrokenHandOff { .. })),
        "{e}"
    );
    // The genuine header 3 with C claimed as its signers: invalid too.
    let mut step = chain.step(3);
    step.validators = Some(c);
    let proof = proto::ChainProof {
        trusted_height: 0,
        steps: vec![step],
    };
    let e = invalid(verify_chain_proof(&chain.genesis(), &proof, &net()));
    assert!(
        matches!(
            e.innermost(),
            VerifyError::Mismatch {
                field: "validators",
                ..
            }
        ),
        "{e}"
    );
}

// ───────────────────────────── chain proofs ─────────────────────────────

#[test]
fn a_chain_proof_follows_a_set_change() {
    let chain = Chain::new();
    let genesis = chain.genesis();
    // A signs 3, which hands off to B; B signs 6.
    let at6 = verify_chain_proof(&genesis, &chain.proof(0, &[3, 6]), &net()).unwrap();
    assert_eq!(at6.height(), 6);
    assert_eq!(at6.hash(), header_hash(chain.header(6)));
    assert_eq!(at6.next_validators().map(ValidatorSet::hash), Some(set(B).hash()));
    // The same state as following every header.
    assert_eq!(at6, chain.trusted_at(HEIGHTS));
    // Steps that hand off nothing are allowed; adjacent ones are linked.
    let via = verify_chain_proof(&genesis, &chain.proof(0, &[1, 2, 3, 4, 6]), &net()).unwrap();
    assert_eq!(via, at6);
    // In two parts: the target at the hand-off knows the next set by hash.
    let at3 = verify_chain_proof(&genesis, &chain.proof(0, &[3]), &net()).unwrap();
    assert_eq!(at3.next_validators(), None);
    assert_eq!(at3.next_validators_hash(), set(B).hash());
    let again = verify_chain_proof(&at3, &chain.proof(3, &[5]), &net()).unwrap();
    assert_eq!(again.height(), 5);
    // Skipping the hand-off step: B's header when A is trusted.
    let e = invalid(verify_chain_proof(&genesis, &chain.proof(0, &[6]), &net()));
    assert_eq!(e.label(), "broken_hand_off");
    let e = invalid(verify_chain_proof(&genesis, &chain.proof(0, &[2, 5]), &net()));
    assert!(
        matches!(e, VerifyError::ChainProofStep { step: 1, height: 5, .. }),
        "{e}"
    );
    // A step short of power: not enough trust, like a single header.
    let mut proof = chain.proof(0, &[3, 6]);
    proof.steps[1].header = Some(signed(chain.header(6), &B[..2]));
    let e = untrusted(verify_chain_proof(&genesis, &proof, &net()));
    assert_eq!(e.label(), "not_enough_power");
    // A forged step: invalid.
    let mut proof = chain.proof(0, &[3, 6]);
    proof.steps[0]
        .header
        .as_mut()
        .unwrap()
        .commit
        .as_mut()
        .unwrap()
        .signatures[0]
        .signature[9] ^= 4;
    let e = invalid(verify_chain_proof(&genesis, &proof, &net()));
    assert!(
        matches!(e, VerifyError::ChainProofStep { step: 0, height: 3, .. }),
        "{e}"
    );
    assert_eq!(e.label(), "commit");
}

#[test]
fn chain_proof_steps_must_be_ordered_and_bounded() {
    let chain = Chain::new();
    let genesis = chain.genesis();
    // Out of order: refused on heights before any signature is checked
    // (step 0 alone would fail on its set instead).
    let e = invalid(verify_chain_proof(&genesis, &chain.proof(0, &[6, 3]), &net()));
    assert_eq!(
        e,
        VerifyError::ChainProofStep {
            step: 1,
            height: 3,
            source: Box::new(VerifyError::HeightNotAfter {
                field: "header.height",
                after: 6,
                found: 3
            })
        }
    );
    let e = invalid(verify_chain_proof(&genesis, &chain.proof(0, &[3, 3]), &net()));
    assert_eq!(e.label(), "height_not_after");
    // Not above the trusted height.
    let at3 = chain.trusted_at(3);
    let e = invalid(verify_chain_proof(&at3, &chain.proof(3, &[2, 5]), &net()));
    assert!(matches!(e, VerifyError::ChainProofStep { step: 0, .. }), "{e}");
    // Another trusted height than ours.
    let e = invalid(verify_chain_proof(&genesis, &chain.proof(1, &[3]), &net()));
    assert_eq!(e.label(), "wrong_height");
    // Empty, missing parts.
    assert_eq!(
        invalid(verify_chain_proof(&genesis, &chain.proof(0, &[]), &net())).label(),
        "malformed"
    );
    let mut proof = chain.proof(0, &[3]);
    proof.steps[0].validators = None;
    assert_eq!(
        invalid(verify_chain_proof(&genesis, &proof, &net())).label(),
        "malformed"
    );
    // Too many steps: refused on the count alone; exactly the limit gets to the heights.
    let mut proof = chain.proof(0, &[3]);
    proof.steps = vec![chain.step(3); MAX_CHAIN_PROOF_STEPS + 1];
    assert_eq!(
        invalid(verify_chain_proof(&genesis, &proof, &net())),
        VerifyError::TooMany {
            field: "steps",
            count: MAX_CHAIN_PROOF_STEPS + 1,
            max: MAX_CHAIN_PROOF_STEPS
        }
    );
    proof.steps.pop();
    assert_eq!(
        invalid(verify_chain_proof(&genesis, &proof, &net())).label(),
        "height_not_after"
    );
}

#[test]
fn the_step_verifier_attests_chain_statements() {
    let chain = Chain::new();
    let verifier = StepVerifier::new(chain.genesis(), net());
    let proof = chain.proof(0, &[3, 6]);
    let statement = ChainStatement {
        trusted_height: 0,
        trusted_hash: Hash32::ZERO,
        target_height: 6,
        target_hash: header_hash(chain.header(6)),
    };
    verifier.verify_chain(&statement, &proof).unwrap();
    let wrong = [
        ChainStatement {
            target_height: 5,
            ..statement
        },
        ChainStatement {
            target_hash: header_hash(chain.header(5)),
            ..statement
        },
        ChainStatement {
            trusted_hash: Hash32([1; 32]),
            ..statement
        },
        ChainStatement {
            trusted_height: 1,
            ..statement
        },
    ];
    for statement in wrong {
        assert!(verifier.verify_chain(&statement, &proof).unwrap_err().is_invalid());
    }
}

#[test]
fn trusted_states_check_their_validator_sets() {
    let chain = Chain::new();
    // Header 3 names B for height 4.
    TrustedState::new(chain.header(3).clone(), set(B)).unwrap();
    let e = TrustedState::new(chain.header(3).clone(), set(A)).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Mismatch {
                height: 3,
                field: "next_validators",
                ..
            }
        ),
        "{e}"
    );
    let e = TrustedState::from_anchor(chain.anchor.clone(), set(B)).unwrap_err();
    assert!(e.is_invalid());
    let mut broken = chain.header(3).clone();
    broken.next_validators_hash.pop();
    assert_eq!(TrustedState::from_header(broken).unwrap_err().label(), "malformed");
    // A checkpoint verifies onwards like a followed chain.
    let checkpoint = TrustedState::new(chain.header(3).clone(), set(B)).unwrap();
    let at4 = verify_next(&checkpoint, &chain.signed(4), None, &net()).unwrap();
    assert_eq!(at4, chain.trusted_at(4));
    // A trusted state of another network verifies nothing here.
    let e = invalid(verify_next(
        &checkpoint,
        &chain.signed(4),
        None,
        &NetworkId::new("testnet").unwrap(),
    ));
    assert_eq!(e.label(), "wrong_network");
}

// ───────────────────────────── state values ─────────────────────────────

fn value_response(chain: &Chain, height: u64, key: &[u8], value: Option<Vec<u8>>) -> proto::StateValueResponse {
    proto::StateValueResponse {
        height,
        key: key.to_vec(),
        value,
        proof: Some(proto::StateProof::from(&chain.tree.prove(key))),
        header: Some(chain.signed(height)),
    }
}

#[test]
fn state_values_and_absences_are_proven_against_the_root() {
    let chain = Chain::new();
    let header = chain.header(4);
    // Present.
    for i in [0, 17, STATE_ENTRIES - 1] {
        let key = state_key(i);
        let value = chain.tree.get(&key).map(<[u8]>::to_vec);
        assert!(value.is_some());
        let response = value_response(&chain, 4, &key, value.clone());
        assert_eq!(verify_state_value(header, &key, &response).unwrap(), value);
    }
    // Absent.
    let missing = state_key(STATE_ENTRIES + 5);
    let response = value_response(&chain, 4, &missing, None);
    assert_eq!(verify_state_value(header, &missing, &response).unwrap(), None);
    // A response without a header is fine: the caller's header is the reference.
    let response = proto::StateValueResponse {
        header: None,
        ..value_response(&chain, 4, &missing, None)
    };
    assert_eq!(verify_state_value(header, &missing, &response).unwrap(), None);
}

#[test]
fn wrong_state_values_are_invalid() {
    let chain = Chain::new();
    let header = chain.header(4);
    let key = state_key(42);
    let value = chain.tree.get(&key).map(<[u8]>::to_vec);
    let check = |response: &proto::StateValueResponse| {
        let e = verify_state_value(header, &key, response).unwrap_err();
        assert!(e.is_invalid());
        e
    };
    // Another value.
    let e = check(&value_response(&chain, 4, &key, Some(b"rich".to_vec())));
    assert_eq!(e.label(), "state_proof");
    // Claimed absent although present, and present although absent.
    assert_eq!(check(&value_response(&chain, 4, &key, None)).label(), "state_proof");
    let missing = state_key(STATE_ENTRIES + 1);
    let mut response = value_response(&chain, 4, &missing, Some(b"x".to_vec()));
    response.key = key.clone();
    assert_eq!(check(&response).label(), "state_proof");
    // Against another root.
    let mut other_root = header.clone();
    other_root.state_root[3] ^= 1;
    let response = value_response(&chain, 4, &key, value.clone());
    let e = verify_state_value(
        &other_root,
        &key,
        &proto::StateValueResponse {
            header: None,
            ..response
        },
    )
    .unwrap_err();
    assert_eq!(e.label(), "state_proof");
    // A proof from another state.
    let mut changed = chain.tree.clone();
    changed.insert(state_key(7), b"changed".to_vec());
    let mut response = value_response(&chain, 4, &key, value.clone());
    response.proof = Some(proto::StateProof::from(&changed.prove(&key)));
    assert_eq!(check(&response).label(), "state_proof");
    // A tampered sibling.
    let mut response = value_response(&chain, 4, &key, value.clone());
    response.proof.as_mut().unwrap().siblings[0][0] ^= 1;
    assert_eq!(check(&response).label(), "state_proof");
    // The answer to another question.
    let other = state_key(43);
    let response = value_response(&chain, 4, &other, chain.tree.get(&other).map(<[u8]>::to_vec));
    assert!(matches!(
        check(&response),
        VerifyError::Mismatch {
            field: "response.key",
            ..
        }
    ));
    assert_eq!(
        check(&value_response(&chain, 5, &key, value.clone())).label(),
        "wrong_height"
    );
    let mut response = value_response(&chain, 4, &key, value.clone());
    response.header = Some(chain.signed(5));
    assert!(matches!(
        check(&response),
        VerifyError::Mismatch {
            field: "response.header",
            ..
        }
    ));
    let mut response = value_response(&chain, 4, &key, value);
    response.proof = None;
    assert_eq!(check(&response).label(), "malformed");
    let long = vec![0u8; 1024];
    assert_eq!(
        verify_state_value(header, &long, &value_response(&chain, 4, &long, None))
            .unwrap_err()
            .label(),
        "malformed"
    );
}

// ───────────────────────────── snapshots ─────────────────────────────

fn chunks_of(tree: &MemoryTree, height: u64) -> Vec<proto::SnapshotChunk> {
    (0..tree.chunk_count(CHUNK_SIZE) as u32)
        .map(|i| tree.chunk(height, i, CHUNK_SIZE).unwrap())
        .collect()
}

fn manifest_of(header: &proto::Header, tree: &MemoryTree, chunks: &[proto::SnapshotChunk]) -> proto::SnapshotManifest {
    proto::SnapshotManifest {
        network_id: header.network_id.clone(),
        height: header.height,
        state_root: tree.root().0.to_vec(),
        chunk_count: chunks.len() as u32,
        total_entries: tree.len() as u64,
        chunk_hashes: chunks.iter().map(|c| chunk_hash(c).0.to_vec()).collect(),
    }
}

/// (key, value) pairs.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Verifies `chunks` in order, returning the entries they proved.
fn verify_all(manifest: &proto::SnapshotManifest, chunks: &[proto::SnapshotChunk]) -> Result<Entries, VerifyError> {
    let mut previous: Option<ChunkSummary> = None;
    let mut entries = Vec::new();
    for chunk in chunks {
        previous = Some(verify_snapshot_chunk(manifest, chunk, previous.as_ref())?);
        entries.extend(chunk.entries.iter().map(|e| (e.key.clone(), e.value.clone())));
    }
    Ok(entries)
}

#[test]
fn a_snapshot_verifies_chunk_by_chunk() {
    let chain = Chain::new();
    let header = chain.header(5);
    let chunks = chunks_of(&chain.tree, 5);
    assert_eq!(chunks.len(), (STATE_ENTRIES as usize).div_ceil(CHUNK_SIZE));
    let manifest = manifest_of(header, &chain.tree, &chunks);
    verify_snapshot_manifest(header, &manifest).unwrap();
    let entries = verify_all(&manifest, &chunks).unwrap();
    let expected: Entries = chain.tree.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert_eq!(entries, expected);
    // The empty state: one empty chunk.
    let empty = MemoryTree::new();
    let mut header = header.clone();
    header.state_root = empty.root().0.to_vec();
    let chunks = chunks_of(&empty, 5);
    let manifest = manifest_of(&header, &empty, &chunks);
    verify_snapshot_manifest(&header, &manifest).unwrap();
    assert_eq!(verify_all(&manifest, &chunks).unwrap(), vec![]);
}

#[test]
fn a_wrong_manifest_is_invalid() {
    let chain = Chain::new();
    let header = chain.header(5);
    let chunks = chunks_of(&chain.tree, 5);
    let good = manifest_of(header, &chain.tree, &chunks);
    let check = |edit: &dyn Fn(&mut proto::SnapshotManifest)| {
        let mut manifest = good.clone();
        edit(&mut manifest);
        let e = verify_snapshot_manifest(header, &manifest).unwrap_err();
        assert!(e.is_invalid());
        e.label()
    };
    assert_eq!(check(&|m| m.state_root[0] ^= 1), "mismatch");
    assert_eq!(check(&|m| m.height += 1), "wrong_height");
    assert_eq!(check(&|m| m.network_id = "testnet".into()), "wrong_network");
    assert_eq!(check(&|m| m.chunk_count += 1), "malformed");
    assert_eq!(
        check(&|m| {
            m.chunk_hashes[1].pop();
        }),
        "malformed"
    );
    assert_eq!(
        check(&|m| {
            m.chunk_count = 0;
            m.chunk_hashes.clear()
        }),
        "malformed"
    );
    assert_eq!(check(&|m| m.total_entries = u64::MAX), "malformed");
    assert_eq!(check(&|m| m.chunk_hashes = vec![vec![0; 32]; 65_537]), "too_many");
    // The manifest of another state at that height.
    let mut other = chain.tree.clone();
    other.remove(&state_key(0));
    let manifest = manifest_of(header, &other, &chunks_of(&other, 5));
    assert_eq!(
        verify_snapshot_manifest(header, &manifest).unwrap_err().label(),
        "mismatch"
    );
}

#[test]
fn wrong_chunks_are_invalid() {
    let chain = Chain::new();
    let header = chain.header(5);
    let chunks = chunks_of(&chain.tree, 5);
    let manifest = manifest_of(header, &chain.tree, &chunks);
    let first = verify_snapshot_chunk(&manifest, &chunks[0], None).unwrap();
    let second = verify_snapshot_chunk(&manifest, &chunks[1], Some(&first)).unwrap();

    // Corrupted in transit: its hash is not the manifest's.
    let mut corrupted = chunks[1].clone();
    corrupted.entries[3].value.push(b'!');
    let e = verify_snapshot_chunk(&manifest, &corrupted, Some(&first)).unwrap_err();
    assert!(matches!(e, VerifyError::ChunkHash { index: 1, .. }), "{e}");
    // Corrupted at the source, with a manifest that lists the bad chunk:
    // the chunk proof against the root still refuses it.
    let mut lying = manifest.clone();
    lying.chunk_hashes[1] = chunk_hash(&corrupted).0.to_vec();
    let e = verify_snapshot_chunk(&lying, &corrupted, Some(&first)).unwrap_err();
    assert!(matches!(e, VerifyError::Chunk { index: 1, .. }), "{e}");
    assert!(e.is_invalid());
    // An entry dropped, or one added, likewise.
    let mut dropped = chunks[1].clone();
    dropped.entries.remove(10);
    let mut lying = manifest.clone();
    lying.chunk_hashes[1] = chunk_hash(&dropped).0.to_vec();
    assert_eq!(
        verify_snapshot_chunk(&lying, &dropped, Some(&first))
            .unwrap_err()
            .label(),
        "chunk"
    );
    // The hash of another chunk of the same snapshot.
    let mut swapped = manifest.clone();
    swapped.chunk_hashes.swap(1, 2);
    assert_eq!(
        verify_snapshot_chunk(&swapped, &chunks[1], Some(&first))
            .unwrap_err()
            .label(),
        "chunk_hash"
    );

    // Out of order: chunk 2 after chunk 0, chunk 1 first, chunk 0 twice.
    let e = verify_snapshot_chunk(&manifest, &chunks[2], Some(&first)).unwrap_err();
    assert!(matches!(e, VerifyError::ChunkOutOfOrder { index: 2, .. }), "{e}");
    let e = verify_snapshot_chunk(&manifest, &chunks[1], None).unwrap_err();
    assert_eq!(e.label(), "chunk_out_of_order");
    let e = verify_snapshot_chunk(&manifest, &chunks[0], Some(&second)).unwrap_err();
    assert_eq!(e.label(), "chunk_out_of_order");
    // Past the manifest's count, at another height.
    let mut beyond = chunks[1].clone();
    beyond.index = manifest.chunk_count;
    assert_eq!(
        verify_snapshot_chunk(&manifest, &beyond, Some(&second)).unwrap_err(),
        VerifyError::ChunkOutOfRange {
            index: manifest.chunk_count,
            count: manifest.chunk_count
        }
    );
    let mut later = chunks[0].clone();
    later.height = 6;
    assert_eq!(
        verify_snapshot_chunk(&manifest, &later, None).unwrap_err().label(),
        "wrong_height"
    );

    // A manifest that ends early, or lists a chunk after the end of the state.
    let last = chunks.len() - 1;
    let mut short = manifest.clone();
    short.chunk_hashes.pop();
    short.chunk_count -= 1;
    let e = verify_all(&short, &chunks[..last]).unwrap_err();
    assert_eq!(
        e,
        VerifyError::SnapshotLength {
            index: last as u32 - 1,
            count: last as u32,
            state_ends: false
        }
    );
    let mut long = manifest.clone();
    long.chunk_hashes.push(vec![0; 32]);
    long.chunk_count += 1;
    let e = verify_all(&long, &chunks).unwrap_err();
    assert!(matches!(e, VerifyError::SnapshotLength { state_ends: true, .. }), "{e}");
    // Too many entries: refused before hashing.
    let mut huge = chunks[0].clone();
    huge.entries = vec![proto::StateEntry::default(); 4097];
    assert_eq!(
        verify_snapshot_chunk(&manifest, &huge, None).unwrap_err().label(),
        "too_many"
    );
}

// ───────────────────────────── arbitrary input ─────────────────────────────

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random (structurally valid) messages never verify and never panic.
    #[test]
    fn random_input_is_refused_without_panicking(
        headers in vec((common::signed_header(), common::validator_set()), 0..4),
        trusted_height in 0..3u64,
        manifest in common::manifest(),
        proof in common::state_proof(),
        key in common::bytes(40),
        value in proptest::option::of(common::bytes(40)),
    ) {
        let chain = Chain::new();
        let trusted = if trusted_height == 0 { chain.genesis() } else { chain.trusted_at(trusted_height) };
        for (signed, validators) in &headers {
            prop_assert!(verify_next(&trusted, signed, Some(validators), &net()).is_err());
            prop_assert!(verify_skip(&trusted, signed, validators, None, &net()).is_err());
        }
        let chain_proof = proto::ChainProof {
            trusted_height,
            steps: headers
                .iter()
                .map(|(header, validators)| proto::ChainProofStep {
                    header: Some(header.clone()),
                    validators: Some(validators.clone()),
                })
                .collect(),
        };
        prop_assert!(verify_chain_proof(&trusted, &chain_proof, &net()).is_err());
        // Genuine steps with random ones mixed in.
        let mut mixed = chain.proof(trusted_height, &[3, 6]);
        mixed.steps.extend(chain_proof.steps.iter().cloned());
        if !chain_proof.steps.is_empty() {
            prop_assert!(verify_chain_proof(&trusted, &mixed, &net()).is_err());
        }
        let header = chain.header(4);
        let response = proto::StateValueResponse { height: 4, key: key.clone(), value, proof: Some(proof), header: None };
        // A random proof can prove nothing but a random key's absence in the real root.
        if let Ok(found) = verify_state_value(header, &key, &response) {
            prop_assert!(found.is_none() && chain.tree.get(&key).is_none());
        }
        let _ = verify_snapshot_manifest(header, &manifest);
        let chunk = chain.tree.chunk(4, 0, CHUNK_SIZE).unwrap();
        prop_assert!(verify_snapshot_chunk(&manifest, &chunk, None).is_err());
        let _ = verify::signed_parts(&proto::SignedHeader::default());
    }
}

#[test]
fn predicates_one_by_one() {
    let chain = Chain::new();
    let (h3, h4) = (chain.header(3), chain.header(4));
    verify::check_network(h4, &net()).unwrap();
    assert_eq!(
        verify::check_network(h4, &NetworkId::new("testnet").unwrap())
            .unwrap_err()
            .label(),
        "wrong_network"
    );
    verify::check_header_validators(h4, &set(B)).unwrap();
    assert_eq!(
        verify::check_header_validators(h4, &set(A)).unwrap_err().label(),
        "mismatch"
    );
    verify::check_next_validators(h3, &set(B)).unwrap();
    assert_eq!(
        verify::check_next_validators(h3, &set(A)).unwrap_err().label(),
        "mismatch"
    );
    verify::check_proposer(h4, &set(B)).unwrap();
    assert_eq!(
        verify::check_proposer(h4, &set(A)).unwrap_err().label(),
        "unknown_proposer"
    );
    let at3 = chain.trusted_at(3);
    verify::check_trusted_validators(&at3, h4).unwrap();
    let e = verify::check_trusted_validators(&chain.trusted_at(1), h4).unwrap_err();
    assert!(e.is_not_enough_trust());
    let commit = commit_by(h4, B);
    let summary = verify::verify_commit_certificate(h4, &commit, &set(B), &net()).unwrap();
    assert_eq!((summary.signed_power, summary.total_power), (40, 40));
    // B's precommits counted against A: 1 and 2 are in both, 5 and 6 are not.
    let e = verify::verify_commit_certificate(h4, &commit, &set(A), &net()).unwrap_err();
    assert_eq!(e.label(), "commit");
    let e = verify::verify_commit_certificate(h4, &commit_by(h4, &B[..2]), &set(A), &net()).unwrap_err();
    assert!(e.is_not_enough_trust(), "{e}");
    // Height 3 was decided in round 1: a round-0 certificate cannot be its commit.
    assert_eq!(h3.round, 1);
    let mut early = commit_by(h3, A);
    early.round = 0;
    assert_eq!(
        verify::verify_commit_certificate(h3, &early, &set(A), &net())
            .unwrap_err()
            .label(),
        "commit_round"
    );
    let signed4 = chain.signed(4);
    let (header, commit) = verify::signed_parts(&signed4).unwrap();
    assert_eq!((header, commit.height), (h4, 4));
    let mut short_hash = chain.signed(4);
    short_hash.commit.as_mut().unwrap().block_hash.pop();
    assert_eq!(verify::signed_parts(&short_hash).unwrap_err().label(), "malformed");
}
