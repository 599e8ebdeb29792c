//! tiernet's types behind Malachite's [`Context`] (CONSENSUS.md §2).
//!
//! Sign bytes of votes and proposals are exactly our wire signing bytes
//! (`SignedMessage::signing_bytes` of the canonical `proto::Vote` /
//! `proto::Proposal`), so a Malachite commit certificate converts to a
//! `proto::CommitCertificate` that [`tiernet_core::chain::verify_commit`] accepts.

use std::fmt;

use arc_malachitebft_core_types::{
    self as mtypes, CommitCertificate, Context, LinearTimeouts, NilOrVal, Round, SigningScheme, VoteType,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use prost::Message;
use tiernet_core::chain::{self, vote_for};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash};

/// A block height.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mtypes::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address in consensus: its ZSI id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub ZsiId);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mtypes::Address for Address {}

/// The consensus value: a whole block (ProposalOnly mode). Equality and
/// order are over the canonical encoding.
#[derive(Debug, Clone)]
pub struct BlockValue(pub proto::Block);

impl BlockValue {
    fn bytes(&self) -> Vec<u8> {
        self.0.encode_to_vec()
    }
}

impl PartialEq for BlockValue {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for BlockValue {}

impl PartialOrd for BlockValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BlockValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(&other.bytes())
    }
}

impl mtypes::Value for BlockValue {
    type Id = Hash32;

    /// The header hash; all zero for a block without a header (such blocks
    /// are refused before they reach consensus).
    fn id(&self) -> Hash32 {
        self.0.header.as_ref().map(header_hash).unwrap_or(Hash32::ZERO)
    }
}

fn round_u32(round: Round) -> u32 {
    round.as_u32().unwrap_or(u32::MAX)
}

/// A prevote or precommit; its sign bytes are those of the canonical `proto::Vote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusVote {
    /// The network the vote is for.
    pub network: NetworkId,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block hash, or nil.
    pub value: NilOrVal<Hash32>,
    /// The voter.
    pub validator: Address,
}

impl ConsensusVote {
    /// The canonical wire vote with an empty signature.
    pub fn to_proto(&self) -> proto::Vote {
        let kind = match self.vote_type {
            VoteType::Prevote => proto::VoteType::Prevote,
            VoteType::Precommit => proto::VoteType::Precommit,
        };
        let hash = match &self.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(hash) => Some(hash),
        };
        vote_for(
            kind,
            &self.network,
            self.height.0,
            round_u32(self.round),
            hash,
            &self.validator.0,
        )
    }

    /// The bytes a signature covers.
    pub fn sign_bytes(&self) -> Vec<u8> {
        self.to_proto().signing_bytes()
    }
}

impl mtypes::Vote<TierCtx> for ConsensusVote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<Hash32> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<Hash32> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&mtypes::SignedExtension<TierCtx>> {
        None
    }
    fn take_extension(&mut self) -> Option<mtypes::SignedExtension<TierCtx>> {
        None
    }
    fn extend(self, _extension: mtypes::SignedExtension<TierCtx>) -> Self {
        self
    }
}

/// A block proposal; its sign bytes are those of the canonical `proto::Proposal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusProposal {
    /// The network.
    pub network: NetworkId,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed block.
    pub value: BlockValue,
    /// Proof-of-lock round (nil: none).
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl ConsensusProposal {
    /// The wire proposal with an empty signature.
    pub fn to_proto(&self) -> proto::Proposal {
        proto::Proposal {
            network_id: self.network.as_str().to_owned(),
            height: self.height.0,
            round: round_u32(self.round),
            pol_round_plus_one: self.pol_round.as_u32().map(|r| r.saturating_add(1)).unwrap_or(0),
            block: Some(self.value.0.clone()),
            proposer: self.proposer.0.as_bytes().to_vec(),
            signature: Vec::new(),
        }
    }

    /// The bytes a signature covers.
    pub fn sign_bytes(&self) -> Vec<u8> {
        self.to_proto().signing_bytes()
    }
}

impl mtypes::Proposal<TierCtx> for ConsensusProposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockValue {
        &self.value
    }
    fn take_value(self) -> BlockValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// Unused: tiernet runs Malachite in ProposalOnly mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoParts;

impl mtypes::ProposalPart<TierCtx> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// One validator as Malachite sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusValidator {
    /// Its ZSI id.
    pub address: Address,
    /// Its consensus key.
    pub public_key: VerifyingKey,
    /// Its voting power.
    pub power: u64,
}

impl mtypes::Validator<TierCtx> for ConsensusValidator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// A checked [`chain::ValidatorSet`] in its canonical order (power
/// descending, then ZSI ascending).
#[derive(Debug, Clone)]
pub struct ConsensusValidatorSet {
    validators: Vec<ConsensusValidator>,
    first: ConsensusValidator,
    inner: chain::ValidatorSet,
}

impl ConsensusValidatorSet {
    /// Wraps a checked set (`None` only for an empty one, which
    /// [`chain::ValidatorSet::new`] never returns).
    pub fn new(inner: chain::ValidatorSet) -> Option<Self> {
        let validators: Vec<ConsensusValidator> = inner
            .iter()
            .map(|v| ConsensusValidator {
                address: Address(v.zsi_id),
                public_key: *v.consensus_key,
                power: v.power,
            })
            .collect();
        let first = validators.first()?.clone();
        Some(Self {
            validators,
            first,
            inner,
        })
    }

    /// The checked set.
    pub fn chain_set(&self) -> &chain::ValidatorSet {
        &self.inner
    }
}

impl PartialEq for ConsensusValidatorSet {
    fn eq(&self, other: &Self) -> bool {
        self.inner.hash() == other.inner.hash()
    }
}

impl Eq for ConsensusValidatorSet {}

impl mtypes::ValidatorSet<TierCtx> for ConsensusValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.inner.total_power()
    }
    fn get_by_address(&self, address: &Address) -> Option<&ConsensusValidator> {
        let position = self.inner.get(&address.0)?.position;
        self.validators.get(position)
    }
    fn get_by_index(&self, index: usize) -> Option<&ConsensusValidator> {
        self.validators.get(index)
    }
}

/// An Ed25519 signature, ordered by its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sig(pub [u8; 64]);

/// Bytes that are not a signature or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodingError {
    /// Not 64 bytes.
    #[error("signature is not 64 bytes")]
    Signature,
    /// Not an Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    PublicKey,
}

/// Ed25519 (ed25519-dalek 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519;

impl SigningScheme for Ed25519 {
    type DecodingError = DecodingError;
    type Signature = Sig;
    type PublicKey = VerifyingKey;
    type PrivateKey = SigningKey;

    fn decode_signature(bytes: &[u8]) -> Result<Sig, DecodingError> {
        <[u8; 64]>::try_from(bytes)
            .map(Sig)
            .map_err(|_| DecodingError::Signature)
    }
    fn encode_signature(signature: &Sig) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey, DecodingError> {
        tiernet_core::wire::sign::verifying_key(bytes).map_err(|_| DecodingError::PublicKey)
    }
    fn encode_public_key(public_key: &VerifyingKey) -> Vec<u8> {
        public_key.to_bytes().to_vec()
    }
}

/// tiernet's consensus context: fixes the network the sign bytes name.
#[derive(Debug, Clone)]
pub struct TierCtx {
    network: NetworkId,
}

impl TierCtx {
    /// A context for `network`.
    pub fn new(network: NetworkId) -> Self {
        Self { network }
    }

    /// The network.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    fn vote(
        &self,
        vote_type: VoteType,
        height: Height,
        round: Round,
        value: NilOrVal<Hash32>,
        a: Address,
    ) -> ConsensusVote {
        ConsensusVote {
            network: self.network.clone(),
            vote_type,
            height,
            round,
            value,
            validator: a,
        }
    }
}

impl Context for TierCtx {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = ConsensusProposal;
    type Validator = ConsensusValidator;
    type ValidatorSet = ConsensusValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockValue;
    type Vote = ConsensusVote;
    type Extension = ();
    type SigningScheme = Ed25519;

    /// Round-robin `(height + round) mod n` over the canonical order.
    fn select_proposer<'a>(
        &self,
        set: &'a ConsensusValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a ConsensusValidator {
        let n = set.validators.len().max(1) as u64;
        let r = u64::from(round.as_u32().unwrap_or(0));
        let index = (height.0 % n + r % n) % n;
        let index = usize::try_from(index).unwrap_or(0);
        set.validators.get(index).unwrap_or(&set.first)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: Address,
    ) -> ConsensusProposal {
        ConsensusProposal {
            network: self.network.clone(),
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(&self, height: Height, round: Round, value_id: NilOrVal<Hash32>, address: Address) -> ConsensusVote {
        self.vote(VoteType::Prevote, height, round, value_id, address)
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<Hash32>,
        address: Address,
    ) -> ConsensusVote {
        self.vote(VoteType::Precommit, height, round, value_id, address)
    }
}

/// The wire form of a Malachite commit certificate, as
/// [`tiernet_core::chain::verify_commit`] checks it.
pub fn commit_to_proto(cert: &CommitCertificate<TierCtx>) -> proto::CommitCertificate {
    proto::CommitCertificate {
        height: cert.height.0,
        round: round_u32(cert.round),
        block_hash: cert.value_id.as_bytes().to_vec(),
        signatures: cert
            .commit_signatures
            .iter()
            .map(|s| proto::CommitSignature {
                validator: s.address.0.as_bytes().to_vec(),
                signature: s.signature.0.to_vec(),
            })
            .collect(),
    }
}

/// Malachite's round timeouts from the genesis consensus parameters.
pub fn timeouts(params: &tiernet_core::genesis::ConsensusParams) -> LinearTimeouts {
    let ms = std::time::Duration::from_millis;
    let propose = ms(params.propose_timeout_ms);
    let prevote = ms(params.prevote_timeout_ms);
    let precommit = ms(params.precommit_timeout_ms);
    LinearTimeouts {
        propose,
        propose_delta: ms(params.timeout_delta_ms),
        prevote,
        prevote_delta: ms(params.timeout_delta_ms),
        precommit,
        precommit_delta: ms(params.timeout_delta_ms),
        rebroadcast: propose + prevote + precommit,
        max_timeout: std::time::Duration::from_secs(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_malachitebft_core_types::{CommitSignature, Validator as _, ValidatorSet as _};
    use ed25519_dalek::Signer;

    fn setup() -> (TierCtx, Vec<SigningKey>, ConsensusValidatorSet) {
        let keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, k)| proto::Validator {
                zsi_id: vec![i as u8 + 10; 32],
                consensus_key: k.verifying_key().to_bytes().to_vec(),
                power: 10 + i as u64,
            })
            .rev()
            .collect();
        let set = chain::ValidatorSet::new(proto::ValidatorSet { validators }).unwrap();
        let ctx = TierCtx::new(NetworkId::new("unitnet").unwrap());
        (ctx, keys, ConsensusValidatorSet::new(set).unwrap())
    }

    fn key_of<'a>(keys: &'a [SigningKey], set: &ConsensusValidatorSet, a: &Address) -> &'a SigningKey {
        let pk = set.get_by_address(a).unwrap().public_key();
        keys.iter().find(|k| k.verifying_key() == *pk).unwrap()
    }

    #[test]
    fn vote_sign_bytes_are_the_wire_signing_bytes() {
        let (ctx, keys, set) = setup();
        let a = *set.get_by_index(0).unwrap().address();
        let vote = ctx.new_precommit(Height(7), Round::new(2), NilOrVal::Val(Hash32([5; 32])), a);
        let mut wire = vote_for(
            proto::VoteType::Precommit,
            ctx.network(),
            7,
            2,
            Some(&Hash32([5; 32])),
            &a.0,
        );
        assert_eq!(vote.sign_bytes(), wire.signing_bytes());
        let key = key_of(&keys, &set, &a);
        wire.sign_with(key);
        assert_eq!(wire.signature, key.sign(&vote.sign_bytes()).to_bytes().to_vec());
    }

    #[test]
    fn proposer_is_round_robin_over_canonical_order() {
        let (ctx, _, set) = setup();
        // Canonical order is power descending: 13, 12, 11, 10.
        let powers: Vec<u64> = (0..4).map(|i| set.get_by_index(i).unwrap().power).collect();
        assert_eq!(powers, vec![13, 12, 11, 10]);
        for (h, r, expected) in [(1u64, 0u32, 1usize), (1, 1, 2), (3, 2, 1), (4, 0, 0)] {
            let p = ctx.select_proposer(&set, Height(h), Round::new(r));
            assert_eq!(p.address(), set.get_by_index(expected).unwrap().address());
        }
    }

    #[test]
    fn malachite_commit_converts_to_a_verifiable_certificate() {
        let (ctx, keys, set) = setup();
        let id = Hash32([9; 32]);
        let sigs = (0..3)
            .map(|i| {
                let a = *set.get_by_index(i).unwrap().address();
                let vote = ctx.new_precommit(Height(3), Round::new(1), NilOrVal::Val(id), a);
                let sig = Sig(key_of(&keys, &set, &a).sign(&vote.sign_bytes()).to_bytes());
                CommitSignature::new(a, sig)
            })
            .collect();
        let cert = CommitCertificate::<TierCtx> {
            height: Height(3),
            round: Round::new(1),
            value_id: id,
            commit_signatures: sigs,
        };
        let wire = commit_to_proto(&cert);
        let summary = chain::verify_commit(&wire, set.chain_set(), ctx.network()).unwrap();
        assert_eq!(summary.signed_power, 13 + 12 + 11);
        // Another round does not verify.
        let mut other = wire.clone();
        other.round = 2;
        assert!(chain::verify_commit(&other, set.chain_set(), ctx.network()).is_err());
        // Two signers are short of the quorum (> 2/3 of 46 is 31; 13 + 12 = 25).
        let mut short = wire;
        short.signatures.truncate(2);
        assert!(
            chain::verify_commit(&short, set.chain_set(), ctx.network())
                .unwrap_err()
                .is_insufficient_power()
        );
    }
}
