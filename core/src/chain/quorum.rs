//! Validator sets, quorum math and certificate verification.
//!
//! A certificate's signatures are over *canonical votes* that the verifier
//! rebuilds from the certificate's fields (CONSENSUS.md §2: sign bytes depend
//! only on network, vote type, height, round, value id and validator). A
//! signature therefore never travels with the vote it covers; a certificate
//! for another network, height, round or block simply fails to verify.
//!
//! | check | threshold |
//! |---|---|
//! | [`verify_commit`] | precommits for the block, power ≥ [`quorum_threshold`] |
//! | [`verify_commit_quorum`] | as [`verify_commit`], but only the highest-power signatures that reach [`quorum_threshold`] are checked ([`SignatureCheck::Quorum`]: light clients) |
//! | [`verify_polka`] | prevotes for the block, power ≥ [`quorum_threshold`] |
//! | [`verify_round_certificate`], precommit kind | precommits for any value (nil too), power ≥ [`quorum_threshold`] |
//! | [`verify_round_certificate`], skip kind | votes of any kind and value, power ≥ [`skip_threshold`] (a validator counts once) |
//! | [`verify_evidence`] | two signed votes by one validator, same type/height/round, different values |
//!
//! Errors separate "not enough trust" ([`CertificateError::InsufficientPower`]:
//! every signature is valid, there are just not enough of them) from invalid
//! certificates (a bad signature, an unknown or repeated signer, a vote of the
//! wrong kind). Signatures are checked before power, so a certificate that is
//! both short and forged is reported as forged.
//!
//! ## Batch verification
//!
//! When there are two or more signatures they are first checked together
//! with `ed25519_dalek::verify_batch` (about twice as fast); if the batch
//! fails, each is checked alone with `verify_strict` so that the error names
//! the validator whose signature failed. A signature valid under
//! `verify_strict` always passes the batch. The converse holds except for
//! signatures deliberately built with a small-order or mixed-order nonce
//! point by the holder of the key itself; such a signature only ever counts
//! the power of the validator that made it, so it cannot forge anyone
//! else's vote. Weak (small-order) consensus keys are refused when a
//! [`ValidatorSet`] is built.
//!
//! A set that keeps verifying for a light client's trusted state also keeps
//! a table of its keys' multiples and batches with it (`chain::batch`: the
//! same transcript, coefficients and equation as `verify_batch`, only the
//! multiscalar multiplication precomputed, so the same verdict).
//!
//! ## Checking only a quorum
//!
//! A light client needs to know that validators holding more than 2/3 of
//! the power signed, not who else did. [`verify_commit_quorum`] parses
//! every signer as [`verify_commit`] does (unknown, repeated and malformed
//! signers and signatures of the wrong length are errors whatever their
//! place), then checks the signatures of the signers in the set's canonical
//! order (power descending, then id) until their power reaches the
//! threshold, and counts only those: with 100 equal powers, 67 signatures
//! instead of 100. A bad signature among them is
//! [`CertificateError::BadSignature`], as in [`verify_commit`]; a bad
//! signature among the others goes unnoticed and counts for nothing. So
//! what it accepts is backed by verified signatures of more than 2/3 of
//! the power, as [`verify_commit`]'s is. Full nodes keep [`verify_commit`]:
//! their participation credits come from the signer list, and a node that
//! forwards a block vouches for every signature in it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{Signature, VerifyingKey};

use super::batch::{self, BatchItem, KeyTable};

use crate::hash::Hash32;
use crate::identity::ZsiId;
use crate::wire::proto::{self, RoundCertificateKind, VoteType};
use crate::wire::sign::{SignedMessage, validators_hash, verifying_key};
use crate::wire::{FieldError, FieldProblem, NetworkId, Validate, fields};

/// Power needed for a quorum: more than 2/3 of `total`, i.e. `⌊2·total/3⌋ + 1`.
/// Computed in `u128`, so it never overflows.
pub fn quorum_threshold(total: u64) -> u64 {
    let threshold = (2 * u128::from(total)) / 3 + 1;
    // ⌊2·u64::MAX/3⌋ + 1 < u64::MAX, so the conversion cannot fail.
    u64::try_from(threshold).unwrap_or(u64::MAX)
}

/// Power needed to skip to a round: more than 1/3 of `total`, i.e. `⌊total/3⌋ + 1`.
pub fn skip_threshold(total: u64) -> u64 {
    total / 3 + 1
}

/// A validator set that passed every check: the schema's structural rules
/// (canonical order, no duplicates, positive powers, a total that fits in
/// `u64`, at most [`crate::wire::limits::MAX_VALIDATORS`] members) and
/// parsed, non-weak Ed25519 consensus keys. Lookups by `zsi_id` are
/// `O(log n)`; the hash is computed once. A set that keeps verifying headers
/// for a light client's trusted state keeps a table of its keys' multiples
/// for batch verification too (built on the second such use, shared by its
/// clones; see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorSet {
    set: proto::ValidatorSet,
    ids: Vec<ZsiId>,
    keys: Vec<VerifyingKey>,
    index: BTreeMap<ZsiId, usize>,
    total_power: u64,
    hash: Hash32,
    tables: KeyTables,
}

/// The set's table of precomputed key multiples for batch verification
/// ([`batch::KeyTable`]), built on the second verification for a trusted
/// state and shared by clones. A cache of the keys: not part of the value
/// (always equal).
#[derive(Clone, Default)]
struct KeyTables(Arc<KeyTablesInner>);

#[derive(Default)]
struct KeyTablesInner {
    trusted_uses: AtomicU32,
    table: OnceLock<Option<KeyTable>>,
}

impl PartialEq for KeyTables {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for KeyTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTables")
            .field("trusted_uses", &self.0.trusted_uses.load(Ordering::Relaxed))
            .field("built", &self.0.table.get().is_some())
            .finish()
    }
}

/// A validator set that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// The set breaks the schema's structural rules.
    #[error("validator set breaks the schema: {0}")]
    Invalid(#[from] FieldError),
    /// A consensus key that is not an Ed25519 point.
    #[error("validator {validator}: consensus key is not a valid Ed25519 public key")]
    BadConsensusKey {
        /// The validator.
        validator: ZsiId,
    },
    /// A consensus key of small order: anyone could sign for it.
    #[error("validator {validator}: consensus key is a weak (small-order) Ed25519 key")]
    WeakConsensusKey {
        /// The validator.
        validator: ZsiId,
    },
}

/// One member of a [`ValidatorSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorEntry<'a> {
    /// Its ZSI (its address in consensus).
    pub zsi_id: ZsiId,
    /// Its voting power (positive).
    pub power: u64,
    /// Its parsed consensus key.
    pub consensus_key: &'a VerifyingKey,
    /// Its position in the canonical order.
    pub position: usize,
}

impl ValidatorSet {
    /// Checks `set` and builds the lookup structures.
    pub fn new(set: proto::ValidatorSet) -> Result<Self, ValidatorSetError> {
        set.validate()?;
        let count = set.validators.len();
        let mut ids = Vec::with_capacity(count);
        let mut keys = Vec::with_capacity(count);
        let mut index = BTreeMap::new();
        let mut total_power: u64 = 0;
        for (position, validator) in set.validators.iter().enumerate() {
            let field = || format!("validators[{position}]");
            let zsi_id = ZsiId(fields::hash_in(&field(), "zsi_id", &validator.zsi_id)?);
            let key = verifying_key(&validator.consensus_key)
                .map_err(|_| ValidatorSetError::BadConsensusKey { validator: zsi_id })?;
            if key.is_weak() {
                return Err(ValidatorSetError::WeakConsensusKey { validator: zsi_id });
            }
            total_power = total_power
                .checked_add(validator.power)
                .ok_or_else(|| FieldError::new("validators", FieldProblem::Rule("total power overflows u64")))?;
            ids.push(zsi_id);
            keys.push(key);
            index.insert(zsi_id, position);
        }
        let hash = validators_hash(&set);
        Ok(Self {
            set,
            ids,
            keys,
            index,
            total_power,
            hash,
            tables: KeyTables::default(),
        })
    }

    /// [`ValidatorSet::new`] on a copy of `set`.
    pub fn from_proto(set: &proto::ValidatorSet) -> Result<Self, ValidatorSetError> {
        Self::new(set.clone())
    }

    /// The wire form, in canonical order.
    pub fn as_proto(&self) -> &proto::ValidatorSet {
        &self.set
    }

    /// The wire form, in canonical order.
    pub fn into_proto(self) -> proto::ValidatorSet {
        self.set
    }

    /// Number of validators (at least 1).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: a checked set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The member with this id, if any.
    pub fn get(&self, zsi_id: &ZsiId) -> Option<ValidatorEntry<'_>> {
        let position = *self.index.get(zsi_id)?;
        self.entry(position)
    }

    fn entry(&self, position: usize) -> Option<ValidatorEntry<'_>> {
        Some(ValidatorEntry {
            zsi_id: *self.ids.get(position)?,
            power: self.set.validators.get(position)?.power,
            consensus_key: self.keys.get(position)?,
            position,
        })
    }

    /// Whether `zsi_id` is a member.
    pub fn contains(&self, zsi_id: &ZsiId) -> bool {
        self.index.contains_key(zsi_id)
    }

    /// The member's voting power.
    pub fn power_of(&self, zsi_id: &ZsiId) -> Option<u64> {
        self.get(zsi_id).map(|v| v.power)
    }

    /// The member's consensus key.
    pub fn consensus_key(&self, zsi_id: &ZsiId) -> Option<&VerifyingKey> {
        self.get(zsi_id).map(|v| v.consensus_key)
    }

    /// All members in canonical order (power descending, then id ascending).
    pub fn iter(&self) -> impl Iterator<Item = ValidatorEntry<'_>> {
        (0..self.len()).filter_map(|position| self.entry(position))
    }

    /// Sum of all powers.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// [`quorum_threshold`] of the total power.
    pub fn quorum(&self) -> u64 {
        quorum_threshold(self.total_power)
    }

    /// `BLAKE3("tiernet/validators/v1" ‖ encoding)`, as in headers.
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    /// Notes that the set is about to verify a header for a trusted state
    /// (the light client's [`crate::verify`]). From the second such use on,
    /// batch verification with this set (and its clones) uses a table of
    /// its keys' multiples, built at that use: 1–5 ms natively and
    /// 25–50 ms in wasm for 100 keys, 7.5 KB per key, after which each
    /// batch is cheaper (see `chain::batch`). A set that signs one
    /// chain-proof step never builds it; full nodes never call this.
    pub(crate) fn note_trusted_use(&self) {
        let _ = self
            .tables
            .0
            .trusted_uses
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(1)));
    }

    /// The key table, if the set has been used for a trusted state twice
    /// (building it then).
    fn key_table(&self) -> Option<&KeyTable> {
        let inner = &self.tables.0;
        if let Some(table) = inner.table.get() {
            return table.as_ref();
        }
        if inner.trusted_uses.load(Ordering::Relaxed) < 2 {
            return None;
        }
        inner.table.get_or_init(|| KeyTable::new(&self.keys)).as_ref()
    }
}

/// The canonical vote of `vote_type` whose sign bytes a certificate
/// signature covers. `block_hash` `None` is a vote for nil. The signature
/// field is empty.
pub fn vote_for(
    vote_type: VoteType,
    network: &NetworkId,
    height: u64,
    round: u32,
    block_hash: Option<&Hash32>,
    validator: &ZsiId,
) -> proto::Vote {
    proto::Vote {
        network_id: network.as_str().to_owned(),
        vote_type: vote_type as i32,
        height,
        round,
        block_hash: block_hash.map(|h| h.as_bytes().to_vec()).unwrap_or_default(),
        validator: validator.as_bytes().to_vec(),
        signature: Vec::new(),
    }
}

/// The canonical precommit covered by a commit signature (`None`: nil).
pub fn precommit_for(
    network: &NetworkId,
    height: u64,
    round: u32,
    block_hash: Option<&Hash32>,
    validator: &ZsiId,
) -> proto::Vote {
    vote_for(VoteType::Precommit, network, height, round, block_hash, validator)
}

/// The canonical prevote covered by a polka signature (`None`: nil).
pub fn prevote_for(
    network: &NetworkId,
    height: u64,
    round: u32,
    block_hash: Option<&Hash32>,
    validator: &ZsiId,
) -> proto::Vote {
    vote_for(VoteType::Prevote, network, height, round, block_hash, validator)
}

/// What a verified certificate proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSummary {
    /// Power of the distinct validators whose signatures verified.
    pub signed_power: u64,
    /// Total power of the set.
    pub total_power: u64,
    /// The distinct signers whose signatures were checked (all of them,
    /// except with [`SignatureCheck::Quorum`]), in certificate order (at most
    /// one entry per member of the set).
    pub signers: Vec<ZsiId>,
}

/// Why a certificate or evidence does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Every signature verified but their power is short of the threshold:
    /// "not enough trust", not a forgery.
    #[error("signed power {signed} of {total} is below the required {required}")]
    InsufficientPower {
        /// Power of the distinct valid signers.
        signed: u64,
        /// The threshold.
        required: u64,
        /// Total power of the set.
        total: u64,
    },
    /// A signature that does not verify over the rebuilt vote.
    #[error("signature by validator {validator} does not verify")]
    BadSignature {
        /// Who supposedly signed.
        validator: ZsiId,
    },
    /// A signer that is not in the validator set.
    #[error("validator {validator} is not in the validator set")]
    UnknownValidator {
        /// The unknown id.
        validator: ZsiId,
    },
    /// A signer id that is not 32 bytes.
    #[error("signature {index} names a validator id of {len} bytes, expected 32")]
    MalformedValidator {
        /// Position of the signature.
        index: usize,
        /// Length of the id.
        len: usize,
    },
    /// A validator that signed twice (twice the same kind of vote).
    #[error("validator {validator} signed twice")]
    DuplicateSigner {
        /// The repeated signer.
        validator: ZsiId,
    },
    /// A certificate or signature for another block than the one it must certify.
    #[error("certificate is for block {}, expected {expected}", show_hash(.found))]
    WrongBlock {
        /// The block it must certify.
        expected: Hash32,
        /// What it names (`None`: nil).
        found: Option<Hash32>,
    },
    /// A certificate for another height.
    #[error("certificate is for height {found}, expected {expected}")]
    WrongHeight {
        /// The height it must certify.
        expected: u64,
        /// The height it names.
        found: u64,
    },
    /// A certificate for another round.
    #[error("certificate is for round {found}, expected {expected}")]
    WrongRound {
        /// The round it must certify.
        expected: u32,
        /// The round it names.
        found: u32,
    },
    /// A block hash that is neither 32 bytes nor (where nil is allowed) empty.
    #[error("block hash of {len} bytes, expected 32")]
    MalformedBlockHash {
        /// Its length.
        len: usize,
    },
    /// A vote of a kind the certificate may not contain.
    #[error("vote by validator {validator} has type {found}, expected {expected}")]
    WrongVoteType {
        /// Who voted.
        validator: ZsiId,
        /// What the certificate needs.
        expected: &'static str,
        /// The wire value found.
        found: i32,
    },
    /// More signatures than the set could produce.
    #[error("{count} signatures, more than the {max} the validator set can produce")]
    TooManySignatures {
        /// Signatures in the certificate.
        count: usize,
        /// The most there can be.
        max: usize,
    },
    /// A round certificate kind this version does not know.
    #[error("round certificate kind {0} is unknown or unspecified")]
    UnknownKind(i32),
    /// A vote for another network.
    #[error("vote is for network {found:?}, expected {expected:?}")]
    WrongNetwork {
        /// Our network.
        expected: String,
        /// The vote's network (truncated to 64 characters).
        found: String,
    },
    /// Two votes that do not prove equivocation.
    #[error("not evidence of equivocation: {0}")]
    NotEvidence(&'static str),
}

fn show_hash(hash: &Option<Hash32>) -> String {
    match hash {
        Some(hash) => hash.to_hex(),
        None => "nil".to_owned(),
    }
}

impl CertificateError {
    /// A short label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            CertificateError::InsufficientPower { .. } => "insufficient_power",
            CertificateError::BadSignature { .. } => "bad_signature",
            CertificateError::UnknownValidator { .. } => "unknown_validator",
            CertificateError::MalformedValidator { .. } => "malformed_validator",
            CertificateError::DuplicateSigner { .. } => "duplicate_signer",
            CertificateError::WrongBlock { .. } => "wrong_block",
            CertificateError::WrongHeight { .. } => "wrong_height",
            CertificateError::WrongRound { .. } => "wrong_round",
            CertificateError::MalformedBlockHash { .. } => "malformed_block_hash",
            CertificateError::WrongVoteType { .. } => "wrong_vote_type",
            CertificateError::TooManySignatures { .. } => "too_many_signatures",
            CertificateError::UnknownKind(_) => "unknown_kind",
            CertificateError::WrongNetwork { .. } => "wrong_network",
            CertificateError::NotEvidence(_) => "not_evidence",
        }
    }

    /// True for [`CertificateError::InsufficientPower`]: valid, just not enough trust.
    pub const fn is_insufficient_power(&self) -> bool {
        matches!(self, CertificateError::InsufficientPower { .. })
    }
}

type CertResult<T> = Result<T, CertificateError>;

fn block_hash(bytes: &[u8]) -> CertResult<Hash32> {
    fields::hash32(bytes).map_err(|e| CertificateError::MalformedBlockHash { len: e.actual })
}

/// Empty → nil (`None`), 32 bytes → a block, anything else is malformed.
fn value_id(bytes: &[u8]) -> CertResult<Option<Hash32>> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        block_hash(bytes).map(Some)
    }
}

fn check_count(count: usize, max: usize) -> CertResult<()> {
    if count > max {
        return Err(CertificateError::TooManySignatures { count, max });
    }
    Ok(())
}

/// How many of a commit certificate's signatures [`verify_commit_with`] checks.
///
/// Structure is always checked in full: every signer must be a distinct
/// member named by a well-formed id, and every signature must be 64 bytes.
/// What differs is how many signatures are checked cryptographically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// Every signature. What a full node needs: the signer list is the
    /// input of participation credits, and a node that forwards a block
    /// vouches for all of it.
    #[default]
    All,
    /// The signatures of the highest-power signers (canonical order: power
    /// descending, then id), just enough of them for their power to reach
    /// the threshold; the others are not checked and do not count. What a
    /// light client needs to trust a header. When the certificate's
    /// signers hold less than the threshold in all, every signature is
    /// checked, so a short and forged certificate is reported as forged.
    Quorum,
}

/// One signature to check.
struct Item<'a> {
    validator: ZsiId,
    /// The signer's position in the set's canonical order (power descending).
    position: usize,
    power: u64,
    key: &'a VerifyingKey,
    /// The vote the signature covers; its sign bytes are built only if the
    /// signature is checked.
    vote: proto::Vote,
    signature: Signature,
}

/// Collects signers, rejects unknown and repeated ones, adds up power, and
/// verifies the signatures at the end.
struct Tally<'a> {
    set: &'a ValidatorSet,
    /// (validator, vote type) pairs seen: a pair may appear once.
    seen: BTreeSet<(ZsiId, i32)>,
    /// Validators whose power is counted (each once).
    counted: BTreeSet<ZsiId>,
    signers: Vec<ZsiId>,
    signed_power: u64,
    items: Vec<Item<'a>>,
}

impl<'a> Tally<'a> {
    fn new(set: &'a ValidatorSet) -> Self {
        Self {
            set,
            seen: BTreeSet::new(),
            counted: BTreeSet::new(),
            signers: Vec::new(),
            signed_power: 0,
            items: Vec::new(),
        }
    }

    /// Parses and admits a signer; returns its id.
    fn admit(&mut self, index: usize, validator: &[u8], vote_type: VoteType) -> CertResult<ZsiId> {
        let id = ZsiId::from_slice(validator).ok_or(CertificateError::MalformedValidator {
            index,
            len: validator.len(),
        })?;
        let entry = self
            .set
            .get(&id)
            .ok_or(CertificateError::UnknownValidator { validator: id })?;
        if !self.seen.insert((id, vote_type as i32)) {
            return Err(CertificateError::DuplicateSigner { validator: id });
        }
        if self.counted.insert(id) {
            // Distinct members of a set whose total fits in u64: no overflow.
            self.signed_power = self.signed_power.saturating_add(entry.power);
            self.signers.push(id);
        }
        Ok(id)
    }

    /// Queues `signature` over `vote`'s sign bytes for verification.
    fn push(&mut self, validator: ZsiId, vote: proto::Vote, signature: &[u8]) -> CertResult<()> {
        let entry = self
            .set
            .get(&validator)
            .ok_or(CertificateError::UnknownValidator { validator })?;
        let signature = Signature::from_slice(signature).map_err(|_| CertificateError::BadSignature { validator })?;
        self.items.push(Item {
            validator,
            position: entry.position,
            power: entry.power,
            key: entry.consensus_key,
            vote,
            signature,
        });
        Ok(())
    }

    fn finish(self, required: u64, check: SignatureCheck) -> CertResult<QuorumSummary> {
        let total = self.set.total_power();
        if check == SignatureCheck::All || self.signed_power < required {
            // Every signature, before power: short and forged is forged.
            verify_items(&self.items.iter().collect::<Vec<_>>(), self.set)?;
            if self.signed_power < required {
                return Err(CertificateError::InsufficientPower {
                    signed: self.signed_power,
                    required,
                    total,
                });
            }
            return Ok(QuorumSummary {
                signed_power: self.signed_power,
                total_power: total,
                signers: self.signers,
            });
        }
        // Highest power first (the set's canonical order; ties by id, so
        // the choice depends on the certificate's signers only), until the
        // power of the chosen reaches the threshold.
        let mut by_power: Vec<&Item<'_>> = self.items.iter().collect();
        by_power.sort_by_key(|item| item.position);
        let mut chosen = BTreeSet::new();
        let mut power: u64 = 0;
        for item in by_power {
            if power >= required {
                break;
            }
            if chosen.insert(item.validator) {
                power = power.saturating_add(item.power);
            }
        }
        // Every vote of a chosen validator (a round certificate may hold
        // two), in certificate order so that a forgery is named as
        // [`verify_commit`] would name it.
        let picked: Vec<&Item<'_>> = self
            .items
            .iter()
            .filter(|item| chosen.contains(&item.validator))
            .collect();
        verify_items(&picked, self.set)?;
        Ok(QuorumSummary {
            signed_power: power,
            total_power: total,
            signers: self.signers.into_iter().filter(|id| chosen.contains(id)).collect(),
        })
    }
}

fn verify_one(item: &Item<'_>, message: &[u8]) -> CertResult<()> {
    item.key
        .verify_strict(message, &item.signature)
        .map_err(|_| CertificateError::BadSignature {
            validator: item.validator,
        })
}

/// Batch first (with the set's key table when it has one, else
/// `ed25519_dalek::verify_batch`: the same verdict); on failure one by one
/// with `verify_strict`, to name the culprit.
fn verify_items(items: &[&Item<'_>], set: &ValidatorSet) -> CertResult<()> {
    let messages: Vec<Vec<u8>> = items.iter().map(|i| i.vote.signing_bytes()).collect();
    if items.len() >= 2 {
        let batch_ok = match set.key_table() {
            Some(table) => {
                let batch: Vec<BatchItem<'_>> = items
                    .iter()
                    .zip(&messages)
                    .map(|(item, message)| BatchItem {
                        position: item.position,
                        key: item.key,
                        message,
                        signature: &item.signature,
                    })
                    .collect();
                batch::verify_batch(table, &batch)
            }
            None => {
                let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                let signatures: Vec<Signature> = items.iter().map(|i| i.signature).collect();
                let keys: Vec<VerifyingKey> = items.iter().map(|i| *i.key).collect();
                ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok()
            }
        };
        if batch_ok {
            return Ok(());
        }
    }
    items
        .iter()
        .zip(&messages)
        .try_for_each(|(item, message)| verify_one(item, message))
}

/// Verifies a commit certificate against `set`: every signature is a
/// precommit for `cert.block_hash` at `cert.height`/`cert.round` on
/// `network`, by a distinct member, and their power reaches
/// [`quorum_threshold`]. Every signature is checked
/// ([`SignatureCheck::All`]).
pub fn verify_commit(
    cert: &proto::CommitCertificate,
    set: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, CertificateError> {
    verify_commit_with(cert, set, network, SignatureCheck::All)
}

/// [`verify_commit`] that checks only the signatures of the
/// highest-power signers whose power reaches the quorum
/// ([`SignatureCheck::Quorum`]): the light client's check. The summary
/// names the signers whose signatures were checked, and their power.
pub fn verify_commit_quorum(
    cert: &proto::CommitCertificate,
    set: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, CertificateError> {
    verify_commit_with(cert, set, network, SignatureCheck::Quorum)
}

/// [`verify_commit`] with the given [`SignatureCheck`].
pub fn verify_commit_with(
    cert: &proto::CommitCertificate,
    set: &ValidatorSet,
    network: &NetworkId,
    check: SignatureCheck,
) -> Result<QuorumSummary, CertificateError> {
    let block = block_hash(&cert.block_hash)?;
    check_count(cert.signatures.len(), set.len())?;
    let mut tally = Tally::new(set);
    for (index, signature) in cert.signatures.iter().enumerate() {
        let validator = tally.admit(index, &signature.validator, VoteType::Precommit)?;
        let vote = precommit_for(network, cert.height, cert.round, Some(&block), &validator);
        tally.push(validator, vote, &signature.signature)?;
    }
    tally.finish(set.quorum(), check)
}

/// Verifies a polka certificate: more than 2/3 of the power prevoted for
/// `cert.block_hash` in `cert.round`. Every signature must say it is a
/// prevote for that block.
pub fn verify_polka(
    cert: &proto::PolkaCertificate,
    set: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, CertificateError> {
    let block = block_hash(&cert.block_hash)?;
    check_count(cert.signatures.len(), set.len())?;
    let mut tally = Tally::new(set);
    for (index, signature) in cert.signatures.iter().enumerate() {
        let validator = tally.admit(index, &signature.validator, VoteType::Prevote)?;
        if signature.vote_type != VoteType::Prevote as i32 {
            return Err(CertificateError::WrongVoteType {
                validator,
                expected: "prevote",
                found: signature.vote_type,
            });
        }
        let value = value_id(&signature.block_hash)?;
        if value != Some(block) {
            return Err(CertificateError::WrongBlock {
                expected: block,
                found: value,
            });
        }
        let vote = prevote_for(network, cert.height, cert.round, Some(&block), &validator);
        tally.push(validator, vote, &signature.signature)?;
    }
    tally.finish(set.quorum(), SignatureCheck::All)
}

/// Verifies a round certificate.
///
/// - Precommit kind: precommits (for any value, nil included) by distinct
///   members holding power ≥ [`quorum_threshold`].
/// - Skip kind: prevotes or precommits (any value) by members holding power
///   ≥ [`skip_threshold`]; a member may appear once per vote type and its
///   power counts once.
///
/// Each signature is checked over the vote rebuilt from its own type and
/// value and the certificate's height and round.
pub fn verify_round_certificate(
    cert: &proto::RoundCertificate,
    set: &ValidatorSet,
    network: &NetworkId,
) -> Result<QuorumSummary, CertificateError> {
    let kind = match RoundCertificateKind::try_from(cert.kind) {
        Ok(kind @ (RoundCertificateKind::Precommit | RoundCertificateKind::Skip)) => kind,
        _ => return Err(CertificateError::UnknownKind(cert.kind)),
    };
    let (max, required) = match kind {
        RoundCertificateKind::Skip => (set.len().saturating_mul(2), skip_threshold(set.total_power())),
        _ => (set.len(), set.quorum()),
    };
    check_count(cert.signatures.len(), max)?;
    let mut tally = Tally::new(set);
    for (index, signature) in cert.signatures.iter().enumerate() {
        let vote_type = match (kind, VoteType::try_from(signature.vote_type)) {
            (_, Ok(VoteType::Precommit)) => VoteType::Precommit,
            (RoundCertificateKind::Skip, Ok(VoteType::Prevote)) => VoteType::Prevote,
            _ => {
                let expected = match kind {
                    RoundCertificateKind::Skip => "prevote or precommit",
                    _ => "precommit",
                };
                let validator =
                    ZsiId::from_slice(&signature.validator).ok_or(CertificateError::MalformedValidator {
                        index,
                        len: signature.validator.len(),
                    })?;
                return Err(CertificateError::WrongVoteType {
                    validator,
                    expected,
                    found: signature.vote_type,
                });
            }
        };
        let validator = tally.admit(index, &signature.validator, vote_type)?;
        let value = value_id(&signature.block_hash)?;
        let vote = vote_for(vote_type, network, cert.height, cert.round, value.as_ref(), &validator);
        tally.push(validator, vote, &signature.signature)?;
    }
    tally.finish(required, SignatureCheck::All)
}

fn truncated(s: &str) -> String {
    s.chars().take(super::MESSAGE_FIELD_CHARS).collect()
}

/// Verifies equivocation evidence: two votes by the same member of `set`,
/// on `network`, of the same type, height and round, for different values
/// (nil counts as a value), both correctly signed. Returns the offender.
pub fn verify_evidence(
    e: &proto::Evidence,
    set: &ValidatorSet,
    network: &NetworkId,
) -> Result<ZsiId, CertificateError> {
    let (Some(first), Some(second)) = (&e.first, &e.second) else {
        return Err(CertificateError::NotEvidence("a vote is missing"));
    };
    for vote in [first, second] {
        if vote.network_id != network.as_str() {
            return Err(CertificateError::WrongNetwork {
                expected: network.as_str().to_owned(),
                found: truncated(&vote.network_id),
            });
        }
    }
    if first.validator != second.validator {
        return Err(CertificateError::NotEvidence("the votes are by different validators"));
    }
    let validator = ZsiId::from_slice(&first.validator).ok_or(CertificateError::MalformedValidator {
        index: 0,
        len: first.validator.len(),
    })?;
    if first.vote_type != second.vote_type {
        return Err(CertificateError::NotEvidence("the votes are of different types"));
    }
    if !matches!(
        VoteType::try_from(first.vote_type),
        Ok(VoteType::Prevote | VoteType::Precommit)
    ) {
        return Err(CertificateError::WrongVoteType {
            validator,
            expected: "prevote or precommit",
            found: first.vote_type,
        });
    }
    if first.height != second.height {
        return Err(CertificateError::NotEvidence("the votes are for different heights"));
    }
    if first.round != second.round {
        return Err(CertificateError::NotEvidence("the votes are for different rounds"));
    }
    if value_id(&first.block_hash)? == value_id(&second.block_hash)? {
        return Err(CertificateError::NotEvidence("the votes are for the same value"));
    }
    let key = set
        .consensus_key(&validator)
        .ok_or(CertificateError::UnknownValidator { validator })?;
    for vote in [first, second] {
        vote.verify_with(key)
            .map_err(|_| CertificateError::BadSignature { validator })?;
    }
    Ok(validator)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    fn net() -> NetworkId {
        NetworkId::new("devnet").unwrap()
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn id(seed: u8) -> ZsiId {
        ZsiId(Hash32([seed; 32]))
    }

    /// A set of validators `(seed, power)`, sorted canonically.
    fn set(members: &[(u8, u64)]) -> ValidatorSet {
        let mut validators: Vec<proto::Validator> = members
            .iter()
            .map(|&(seed, power)| proto::Validator {
                zsi_id: vec![seed; 32],
                consensus_key: key(seed).verifying_key().to_bytes().to_vec(),
                power,
            })
            .collect();
        validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.zsi_id.cmp(&b.zsi_id)));
        ValidatorSet::new(proto::ValidatorSet { validators }).unwrap()
    }

    const BLOCK: Hash32 = Hash32([0xbb; 32]);

    fn sign(vote: &proto::Vote, seed: u8) -> Vec<u8> {
        let mut vote = vote.clone();
        vote.sign_with(&key(seed));
        vote.signature
    }

    fn commit(signers: &[u8]) -> proto::CommitCertificate {
        proto::CommitCertificate {
            height: 5,
            round: 2,
            block_hash: BLOCK.0.to_vec(),
            signatures: signers
                .iter()
                .map(|&s| proto::CommitSignature {
                    validator: vec![s; 32],
                    signature: sign(&precommit_for(&net(), 5, 2, Some(&BLOCK), &id(s)), s),
                })
                .collect(),
        }
    }

    fn vote_sig(
        seed: u8,
        vote_type: VoteType,
        value: Option<&Hash32>,
        height: u64,
        round: u32,
    ) -> proto::VoteSignature {
        let vote = vote_for(vote_type, &net(), height, round, value, &id(seed));
        proto::VoteSignature {
            validator: vec![seed; 32],
            vote_type: vote_type as i32,
            block_hash: vote.block_hash.clone(),
            signature: sign(&vote, seed),
        }
    }

    fn polka(signers: &[u8]) -> proto::PolkaCertificate {
        proto::PolkaCertificate {
            height: 5,
            round: 2,
            block_hash: BLOCK.0.to_vec(),
            signatures: signers
                .iter()
                .map(|&s| vote_sig(s, VoteType::Prevote, Some(&BLOCK), 5, 2))
                .collect(),
        }
    }

    #[test]
    fn thresholds() {
        assert_eq!(quorum_threshold(0), 1);
        assert_eq!(quorum_threshold(1), 1);
        assert_eq!(quorum_threshold(3), 3);
        assert_eq!(quorum_threshold(4), 3);
        assert_eq!(quorum_threshold(100), 67);
        assert_eq!(quorum_threshold(u64::MAX), (u64::MAX / 3) * 2 + 1);
        assert_eq!(skip_threshold(3), 2);
        assert_eq!(skip_threshold(100), 34);
        assert_eq!(skip_threshold(u64::MAX), u64::MAX / 3 + 1);
    }

    #[test]
    fn validator_set_lookup_and_hash() {
        let s = set(&[(1, 10), (2, 30), (3, 20)]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.total_power(), 60);
        assert_eq!(s.quorum(), 41);
        assert_eq!(s.power_of(&id(2)), Some(30));
        assert_eq!(s.get(&id(2)).unwrap().position, 0);
        assert!(s.get(&id(9)).is_none());
        assert_eq!(s.hash(), validators_hash(s.as_proto()));
        let order: Vec<ZsiId> = s.iter().map(|v| v.zsi_id).collect();
        assert_eq!(order, vec![id(2), id(3), id(1)]);
    }

    #[test]
    fn validator_set_rejects_bad_keys_and_structure() {
        let good = set(&[(1, 10), (2, 5)]).into_proto();
        let mut bad = good.clone();
        // y = 2 is not on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        bad.validators[0].consensus_key = not_a_point.to_vec();
        assert!(matches!(
            ValidatorSet::new(bad),
            Err(ValidatorSetError::BadConsensusKey { .. })
        ));
        let mut weak = good.clone();
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        weak.validators[1].consensus_key = identity.to_vec();
        assert!(matches!(
            ValidatorSet::new(weak),
            Err(ValidatorSetError::WeakConsensusKey { .. })
        ));
        let mut unordered = good.clone();
        unordered.validators.swap(0, 1);
        assert!(matches!(
            ValidatorSet::new(unordered),
            Err(ValidatorSetError::Invalid(_))
        ));
        assert!(matches!(
            ValidatorSet::new(proto::ValidatorSet::default()),
            Err(ValidatorSetError::Invalid(_))
        ));
        let mut huge = good;
        huge.validators[1].power = u64::MAX;
        huge.validators.swap(0, 1);
        assert!(matches!(ValidatorSet::new(huge), Err(ValidatorSetError::Invalid(_))));
    }

    #[test]
    fn commit_at_the_quorum_boundary() {
        // total 100, quorum 67: 34+33 = 67 passes, 33+33 = 66 fails.
        let s = set(&[(1, 34), (2, 33), (3, 33)]);
        let summary = verify_commit(&commit(&[1, 2]), &s, &net()).unwrap();
        assert_eq!(summary.signed_power, 67);
        assert_eq!(summary.total_power, 100);
        assert_eq!(summary.signers, vec![id(1), id(2)]);
        let err = verify_commit(&commit(&[2, 3]), &s, &net()).unwrap_err();
        assert_eq!(
            err,
            CertificateError::InsufficientPower {
                signed: 66,
                required: 67,
                total: 100
            }
        );
        assert!(err.is_insufficient_power());
        assert!(verify_commit(&commit(&[1, 2, 3]), &s, &net()).is_ok());
        assert!(
            verify_commit(&commit(&[]), &s, &net())
                .unwrap_err()
                .is_insufficient_power()
        );

        // Equal powers: 2 of 3 is exactly 2/3, not more.
        let s = set(&[(1, 1), (2, 1), (3, 1)]);
        assert!(
            verify_commit(&commit(&[1, 2]), &s, &net())
                .unwrap_err()
                .is_insufficient_power()
        );
        assert!(verify_commit(&commit(&[3, 1, 2]), &s, &net()).is_ok());

        // Unequal: one heavy validator alone is enough, three light ones are not.
        let s = set(&[(1, 70), (2, 10), (3, 10), (4, 10)]);
        assert!(verify_commit(&commit(&[1]), &s, &net()).is_ok());
        assert_eq!(
            verify_commit(&commit(&[2, 3, 4]), &s, &net()).unwrap_err(),
            CertificateError::InsufficientPower {
                signed: 30,
                required: 67,
                total: 100
            }
        );
    }

    #[test]
    fn commit_rejects_forged_signatures_naming_the_culprit() {
        let s = set(&[(1, 10), (2, 10), (3, 10), (4, 10)]);
        for culprit in 0..4 {
            let mut cert = commit(&[1, 2, 3, 4]);
            cert.signatures[culprit].signature[7] ^= 1;
            assert_eq!(
                verify_commit(&cert, &s, &net()),
                Err(CertificateError::BadSignature {
                    validator: id(culprit as u8 + 1)
                })
            );
        }
        // Signed by the wrong key.
        let mut cert = commit(&[1, 2, 3]);
        cert.signatures[1].signature = sign(&precommit_for(&net(), 5, 2, Some(&BLOCK), &id(2)), 9);
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(2) }
        );
        // Truncated signature.
        let mut cert = commit(&[1, 2, 3]);
        cert.signatures[2].signature.truncate(10);
        assert_eq!(verify_commit(&cert, &s, &net()).unwrap_err().label(), "bad_signature");
        // A forged signature is reported even when power is short too.
        let mut cert = commit(&[1]);
        cert.signatures[0].signature[0] ^= 1;
        assert_eq!(verify_commit(&cert, &s, &net()).unwrap_err().label(), "bad_signature");
    }

    #[test]
    fn commit_signatures_bind_every_field() {
        let s = set(&[(1, 10), (2, 10), (3, 10)]);
        let mutations: Vec<fn(&mut proto::CommitCertificate)> =
            vec![|c| c.height += 1, |c| c.round += 1, |c| c.block_hash[0] ^= 1, |c| {
                // Signatures moved to other validators.
                let first = c.signatures[0].signature.clone();
                c.signatures[0].signature = c.signatures[1].signature.clone();
                c.signatures[1].signature = first;
            }];
        for mutate in mutations {
            let mut cert = commit(&[1, 2, 3]);
            mutate(&mut cert);
            assert_eq!(verify_commit(&cert, &s, &net()).unwrap_err().label(), "bad_signature");
        }
        let other = NetworkId::new("testnet").unwrap();
        assert_eq!(
            verify_commit(&commit(&[1, 2, 3]), &s, &other).unwrap_err().label(),
            "bad_signature"
        );
        // A prevote signature is not a precommit signature.
        let mut cert = commit(&[1, 2, 3]);
        cert.signatures[0].signature = sign(&prevote_for(&net(), 5, 2, Some(&BLOCK), &id(1)), 1);
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(1) }
        );
    }

    #[test]
    fn commit_rejects_unknown_and_duplicate_signers() {
        let s = set(&[(1, 10), (2, 10), (3, 10)]);
        let mut cert = commit(&[1, 2, 3]);
        cert.signatures.push(commit(&[4]).signatures.remove(0));
        // Four signatures from a set of three: refused before any crypto.
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err().label(),
            "too_many_signatures"
        );
        let cert = commit(&[1, 4, 2]);
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::UnknownValidator { validator: id(4) }
        );
        let cert = commit(&[1, 2, 1]);
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::DuplicateSigner { validator: id(1) }
        );
        let mut cert = commit(&[1, 2]);
        cert.signatures[1].validator.pop();
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::MalformedValidator { index: 1, len: 31 }
        );
        let mut cert = commit(&[1, 2, 3]);
        cert.block_hash.clear();
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::MalformedBlockHash { len: 0 }
        );
    }

    #[test]
    fn commit_of_a_full_set_verifies() {
        let members: Vec<(u8, u64)> = (1..=100).map(|i| (i, u64::from(i))).collect();
        let s = set(&members);
        let all: Vec<u8> = (1..=100).collect();
        let summary = verify_commit(&commit(&all), &s, &net()).unwrap();
        assert_eq!(summary.signed_power, 5050);
        assert_eq!(summary.signers.len(), 100);
        let mut cert = commit(&all);
        cert.signatures[57].signature[40] ^= 0x10;
        assert_eq!(
            verify_commit(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(58) }
        );
    }

    /// Both checks of one certificate.
    fn both(
        cert: &proto::CommitCertificate,
        s: &ValidatorSet,
    ) -> (CertResult<QuorumSummary>, CertResult<QuorumSummary>) {
        (verify_commit(cert, s, &net()), verify_commit_quorum(cert, s, &net()))
    }

    #[test]
    fn quorum_check_takes_the_highest_power_first_and_stops_at_the_quorum() {
        // total 100, quorum 67: validator 1 alone (70) is a quorum.
        let s = set(&[(1, 70), (2, 10), (3, 10), (4, 10)]);
        let cert = commit(&[2, 3, 4, 1]);
        let summary = verify_commit_quorum(&cert, &s, &net()).unwrap();
        assert_eq!(summary.signed_power, 70);
        assert_eq!(summary.signers, vec![id(1)]);
        assert_eq!(summary.total_power, 100);
        assert_eq!(verify_commit(&cert, &s, &net()).unwrap().signed_power, 100);
        // A bad signature among those checked is invalid, as with every check.
        let mut bad = cert.clone();
        bad.signatures[3].signature[9] ^= 1;
        assert_eq!(
            both(&bad, &s),
            (
                Err(CertificateError::BadSignature { validator: id(1) }),
                Err(CertificateError::BadSignature { validator: id(1) })
            )
        );
        // One past the quorum is not checked: a full node refuses the
        // certificate, a light client has its verified quorum.
        let mut extra = cert.clone();
        extra.signatures[0].signature[9] ^= 1;
        assert_eq!(
            verify_commit(&extra, &s, &net()),
            Err(CertificateError::BadSignature { validator: id(2) })
        );
        assert_eq!(verify_commit_quorum(&extra, &s, &net()).unwrap().signers, vec![id(1)]);
        // Without validator 1 the three others (30) are short: every
        // signature is checked and a forgery is reported as such.
        let short = commit(&[2, 3, 4]);
        assert_eq!(
            verify_commit_quorum(&short, &s, &net()),
            Err(CertificateError::InsufficientPower {
                signed: 30,
                required: 67,
                total: 100
            })
        );
        let mut short_and_forged = short;
        short_and_forged.signatures[2].signature[0] ^= 1;
        assert_eq!(
            both(&short_and_forged, &s),
            (
                Err(CertificateError::BadSignature { validator: id(4) }),
                Err(CertificateError::BadSignature { validator: id(4) })
            )
        );
    }

    #[test]
    fn quorum_check_of_100_equal_powers_checks_67_in_canonical_order() {
        let members: Vec<(u8, u64)> = (1..=100).map(|i| (i, 10)).collect();
        let s = set(&members);
        let mut all: Vec<u8> = (1..=100).collect();
        // Certificate order does not change the choice.
        all.reverse();
        let cert = commit(&all);
        let summary = verify_commit_quorum(&cert, &s, &net()).unwrap();
        assert_eq!(summary.signed_power, 670);
        assert!(summary.signed_power >= s.quorum());
        let mut chosen = summary.signers.clone();
        chosen.sort();
        assert_eq!(chosen, (1..=67).map(id).collect::<Vec<_>>());
        // Certificate order is kept in the summary.
        assert_eq!(summary.signers.first(), Some(&id(67)));
        // Validator 58 is checked, validator 81 is not.
        for (seed, checked) in [(58u8, true), (81, false)] {
            let mut bad = cert.clone();
            let index = all.iter().position(|&s| s == seed).unwrap();
            bad.signatures[index].signature[40] ^= 0x10;
            let expected = Err(CertificateError::BadSignature { validator: id(seed) });
            assert_eq!(verify_commit(&bad, &s, &net()), expected);
            if checked {
                assert_eq!(verify_commit_quorum(&bad, &s, &net()), expected);
            } else {
                assert_eq!(verify_commit_quorum(&bad, &s, &net()).unwrap().signed_power, 670);
            }
        }
        // Exactly a quorum: every signature is checked.
        let quorum: Vec<u8> = (34..=100).collect();
        let mut bad = commit(&quorum);
        bad.signatures[66].signature[1] ^= 1;
        assert_eq!(
            verify_commit_quorum(&bad, &s, &net()),
            Err(CertificateError::BadSignature { validator: id(100) })
        );
    }

    #[test]
    fn quorum_check_still_parses_every_signer() {
        // Structural errors past the quorum are errors, as in verify_commit.
        let s = set(&[(1, 70), (2, 10), (3, 10), (4, 10)]);
        let cases: Vec<(proto::CommitCertificate, CertificateError)> = vec![
            (
                commit(&[1, 2, 9]),
                CertificateError::UnknownValidator { validator: id(9) },
            ),
            (
                commit(&[1, 2, 2]),
                CertificateError::DuplicateSigner { validator: id(2) },
            ),
            (
                {
                    let mut c = commit(&[1, 2, 3]);
                    c.signatures[2].validator.pop();
                    c
                },
                CertificateError::MalformedValidator { index: 2, len: 31 },
            ),
            (
                {
                    let mut c = commit(&[1, 2, 3]);
                    c.signatures[2].signature.truncate(63);
                    c
                },
                CertificateError::BadSignature { validator: id(3) },
            ),
            (
                {
                    let mut c = commit(&[1, 2, 3, 4]);
                    c.signatures.push(commit(&[5]).signatures.remove(0));
                    c
                },
                CertificateError::TooManySignatures { count: 5, max: 4 },
            ),
        ];
        for (cert, error) in cases {
            assert_eq!(both(&cert, &s), (Err(error.clone()), Err(error)));
        }
    }

    /// `s` of a signature plus the group order ℓ: the same point equation,
    /// but a non-canonical scalar that strict verification refuses.
    fn non_canonical_s(signature: &[u8]) -> Vec<u8> {
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = signature.to_vec();
        let mut carry = 0u16;
        for (byte, ell) in out[32..].iter_mut().zip(ELL) {
            let sum = u16::from(*byte) + u16::from(ell) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    /// `s` as a trusted state's set after two uses: it batches with its key table.
    fn tabled(s: &ValidatorSet) -> ValidatorSet {
        let s = s.clone();
        s.note_trusted_use();
        s.note_trusted_use();
        assert!(s.key_table().is_some());
        s
    }

    #[test]
    fn the_key_table_is_built_on_the_second_trusted_use_and_shared_by_clones() {
        let s = set(&[(1, 10), (2, 10), (3, 10)]);
        assert!(s.key_table().is_none());
        s.note_trusted_use();
        assert!(s.key_table().is_none(), "one use (a chain-proof step) builds nothing");
        let clone = s.clone();
        clone.note_trusted_use();
        assert!(s.key_table().is_some());
        assert_eq!(s, set(&[(1, 10), (2, 10), (3, 10)]), "a cache, not part of the value");
        // A set built anew starts over.
        assert!(set(&[(1, 10), (2, 10), (3, 10)]).key_table().is_none());
    }

    #[test]
    fn forgeries_fail_with_the_same_errors_with_and_without_the_key_table() {
        let members: Vec<(u8, u64)> = (1..=10).map(|i| (i, 10)).collect();
        let plain = set(&members);
        forgeries_fail_with_the_same_errors(&plain);
        forgeries_fail_with_the_same_errors(&tabled(&plain));
        // The 100-validator cases, with the table.
        let members: Vec<(u8, u64)> = (1..=100).map(|i| (i, u64::from(i))).collect();
        let s = tabled(&set(&members));
        let all: Vec<u8> = (1..=100).collect();
        assert_eq!(verify_commit(&commit(&all), &s, &net()).unwrap().signed_power, 5050);
        let mut cert = commit(&all);
        cert.signatures[57].signature[40] ^= 0x10;
        assert_eq!(
            both(&cert, &s),
            (
                Err(CertificateError::BadSignature { validator: id(58) }),
                Err(CertificateError::BadSignature { validator: id(58) })
            )
        );
        // Round certificates, where one key signs twice (skip kind).
        let s = tabled(&set(&[(1, 10), (2, 10), (3, 10), (4, 10)]));
        let two = vec![
            vote_sig(1, VoteType::Prevote, None, 5, 3),
            vote_sig(1, VoteType::Precommit, None, 5, 3),
            vote_sig(2, VoteType::Prevote, Some(&BLOCK), 5, 3),
        ];
        let cert = proto::RoundCertificate {
            height: 5,
            round: 3,
            kind: RoundCertificateKind::Skip as i32,
            signatures: two.clone(),
        };
        assert_eq!(verify_round_certificate(&cert, &s, &net()).unwrap().signed_power, 20);
        let mut forged = cert;
        forged.signatures[1].signature[2] ^= 1;
        assert_eq!(
            verify_round_certificate(&forged, &s, &net()),
            Err(CertificateError::BadSignature { validator: id(1) })
        );
    }

    fn forgeries_fail_with_the_same_errors(s: &ValidatorSet) {
        let s = s.clone();
        let all: Vec<u8> = (1..=10).collect();
        let genuine = commit(&all);
        let precommit = |seed: u8| precommit_for(&net(), 5, 2, Some(&BLOCK), &id(seed));
        // Validator 3 (checked under both: it is among the 7 highest).
        let forgeries: Vec<(&str, Vec<u8>)> = vec![
            ("a flipped bit", {
                let mut sig = genuine.signatures[2].signature.clone();
                sig[20] ^= 4;
                sig
            }),
            ("a key outside the set", sign(&precommit(3), 42)),
            ("another member's key", sign(&precommit(3), 4)),
            (
                "another message",
                sign(&prevote_for(&net(), 5, 2, Some(&BLOCK), &id(3)), 3),
            ),
            (
                "another height",
                sign(&precommit_for(&net(), 6, 2, Some(&BLOCK), &id(3)), 3),
            ),
            ("a non-canonical s", non_canonical_s(&genuine.signatures[2].signature)),
            ("R the identity, s zero", {
                let mut sig = vec![0u8; 64];
                sig[0] = 1;
                sig
            }),
            ("R of order 2", {
                // (0, -1): y = p - 1.
                let mut sig = vec![0xffu8; 64];
                sig[0] = 0xec;
                sig[31] = 0x7f;
                sig[32..].fill(0);
                sig
            }),
            ("R not on the curve", {
                let mut sig = genuine.signatures[2].signature.clone();
                sig[..32].fill(0);
                sig[0] = 2;
                sig
            }),
            ("all zero", vec![0u8; 64]),
        ];
        for (name, signature) in forgeries {
            // Alone in the batch, first, last and in the middle of it.
            for position in [0usize, 2, 9] {
                let mut order = all.clone();
                order.retain(|&v| v != 3);
                order.insert(position, 3);
                let mut cert = commit(&order);
                cert.signatures[position].signature = signature.clone();
                let expected = Err(CertificateError::BadSignature { validator: id(3) });
                assert_eq!(both(&cert, &s), (expected.clone(), expected), "{name} at {position}");
            }
            let mut alone = commit(&[3]);
            alone.signatures[0].signature = signature.clone();
            let expected = Err(CertificateError::BadSignature { validator: id(3) });
            assert_eq!(both(&alone, &s), (expected.clone(), expected), "{name} alone");
        }
        // The non-canonical s is otherwise the genuine signature: it fails
        // for its encoding only.
        let sig = Signature::from_slice(&genuine.signatures[2].signature).unwrap();
        let message = precommit(3).signing_bytes();
        key(3).verifying_key().verify_strict(&message, &sig).unwrap();
        let stretched = Signature::from_slice(&non_canonical_s(&genuine.signatures[2].signature)).unwrap();
        assert!(key(3).verifying_key().verify_strict(&message, &stretched).is_err());
        assert!(ed25519_dalek::Verifier::verify(&key(3).verifying_key(), &message, &stretched).is_err());
        // The genuine certificate passes both.
        let (full, quorum) = both(&genuine, &s);
        assert_eq!(full.unwrap().signed_power, 100);
        assert_eq!(quorum.unwrap().signed_power, 70);
    }

    #[test]
    fn polka_rules() {
        let s = set(&[(1, 10), (2, 10), (3, 10), (4, 10)]);
        assert_eq!(verify_polka(&polka(&[1, 2, 3]), &s, &net()).unwrap().signed_power, 30);
        assert!(
            verify_polka(&polka(&[1, 2]), &s, &net())
                .unwrap_err()
                .is_insufficient_power()
        );
        // A precommit in a polka.
        let mut cert = polka(&[1, 2, 3]);
        cert.signatures[2] = vote_sig(3, VoteType::Precommit, Some(&BLOCK), 5, 2);
        assert_eq!(verify_polka(&cert, &s, &net()).unwrap_err().label(), "wrong_vote_type");
        // A prevote for nil in a polka for a block.
        let mut cert = polka(&[1, 2, 3]);
        cert.signatures[0] = vote_sig(1, VoteType::Prevote, None, 5, 2);
        assert_eq!(
            verify_polka(&cert, &s, &net()).unwrap_err(),
            CertificateError::WrongBlock {
                expected: BLOCK,
                found: None
            }
        );
        // The signature's own block hash field is not enough: the signature
        // must be over the certificate's block.
        let mut cert = polka(&[1, 2, 3]);
        cert.signatures[1].signature = sign(&prevote_for(&net(), 5, 2, None, &id(2)), 2);
        assert_eq!(
            verify_polka(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(2) }
        );
        let cert = polka(&[1, 2, 2]);
        assert_eq!(verify_polka(&cert, &s, &net()).unwrap_err().label(), "duplicate_signer");
        let cert = polka(&[1, 2, 7]);
        assert_eq!(
            verify_polka(&cert, &s, &net()).unwrap_err().label(),
            "unknown_validator"
        );
    }

    fn round_cert(kind: RoundCertificateKind, signatures: Vec<proto::VoteSignature>) -> proto::RoundCertificate {
        proto::RoundCertificate {
            height: 5,
            round: 3,
            kind: kind as i32,
            signatures,
        }
    }

    #[test]
    fn precommit_round_certificate_accepts_any_value_including_nil() {
        let s = set(&[(1, 10), (2, 10), (3, 10), (4, 10)]);
        let other = Hash32([0xcc; 32]);
        let sigs = vec![
            vote_sig(1, VoteType::Precommit, None, 5, 3),
            vote_sig(2, VoteType::Precommit, Some(&BLOCK), 5, 3),
            vote_sig(3, VoteType::Precommit, Some(&other), 5, 3),
        ];
        let cert = round_cert(RoundCertificateKind::Precommit, sigs.clone());
        assert_eq!(verify_round_certificate(&cert, &s, &net()).unwrap().signed_power, 30);
        let cert = round_cert(RoundCertificateKind::Precommit, sigs[..2].to_vec());
        assert!(
            verify_round_certificate(&cert, &s, &net())
                .unwrap_err()
                .is_insufficient_power()
        );
        // nil vs value: claiming nil for a vote signed for a block fails.
        let mut forged = sigs.clone();
        forged[1].block_hash.clear();
        let cert = round_cert(RoundCertificateKind::Precommit, forged);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(2) }
        );
        // ... and claiming a block for a nil vote fails too.
        let mut forged = sigs.clone();
        forged[0].block_hash = BLOCK.0.to_vec();
        let cert = round_cert(RoundCertificateKind::Precommit, forged);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err(),
            CertificateError::BadSignature { validator: id(1) }
        );
        // Prevotes do not count for the precommit kind.
        let mut mixed = sigs.clone();
        mixed[2] = vote_sig(3, VoteType::Prevote, None, 5, 3);
        let cert = round_cert(RoundCertificateKind::Precommit, mixed);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err().label(),
            "wrong_vote_type"
        );
        // Another round's votes.
        let sigs = vec![
            vote_sig(1, VoteType::Precommit, None, 5, 2),
            vote_sig(2, VoteType::Precommit, None, 5, 2),
            vote_sig(3, VoteType::Precommit, None, 5, 2),
        ];
        let cert = round_cert(RoundCertificateKind::Precommit, sigs);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err().label(),
            "bad_signature"
        );
    }

    #[test]
    fn skip_round_certificate_counts_each_validator_once() {
        // total 40, skip threshold 14: one validator (10) is not enough, two are.
        let s = set(&[(1, 10), (2, 10), (3, 10), (4, 10)]);
        let both_of_one = vec![
            vote_sig(1, VoteType::Prevote, None, 5, 3),
            vote_sig(1, VoteType::Precommit, None, 5, 3),
        ];
        let cert = round_cert(RoundCertificateKind::Skip, both_of_one.clone());
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err(),
            CertificateError::InsufficientPower {
                signed: 10,
                required: 14,
                total: 40
            }
        );
        let mut two = both_of_one;
        two.push(vote_sig(2, VoteType::Prevote, Some(&BLOCK), 5, 3));
        let cert = round_cert(RoundCertificateKind::Skip, two.clone());
        let summary = verify_round_certificate(&cert, &s, &net()).unwrap();
        assert_eq!(summary.signed_power, 20);
        assert_eq!(summary.signers, vec![id(1), id(2)]);
        // The same vote type twice by one validator is a duplicate.
        let mut dup = two;
        dup.push(vote_sig(2, VoteType::Prevote, None, 5, 3));
        let cert = round_cert(RoundCertificateKind::Skip, dup);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err(),
            CertificateError::DuplicateSigner { validator: id(2) }
        );
        // Unspecified kind and vote type.
        let cert = round_cert(RoundCertificateKind::Unspecified, vec![]);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err(),
            CertificateError::UnknownKind(0)
        );
        let mut bad = vote_sig(3, VoteType::Prevote, None, 5, 3);
        bad.vote_type = 0;
        let cert = round_cert(RoundCertificateKind::Skip, vec![bad]);
        assert_eq!(
            verify_round_certificate(&cert, &s, &net()).unwrap_err().label(),
            "wrong_vote_type"
        );
    }

    fn signed_vote(seed: u8, vote_type: VoteType, value: Option<&Hash32>) -> proto::Vote {
        let mut vote = vote_for(vote_type, &net(), 5, 2, value, &id(seed));
        vote.sign_with(&key(seed));
        vote
    }

    fn evidence(a: proto::Vote, b: proto::Vote) -> proto::Evidence {
        proto::Evidence {
            first: Some(a),
            second: Some(b),
        }
    }

    #[test]
    fn evidence_rules() {
        let s = set(&[(1, 10), (2, 10), (3, 10)]);
        let other = Hash32([0xcc; 32]);
        let a = signed_vote(1, VoteType::Precommit, Some(&BLOCK));
        let b = signed_vote(1, VoteType::Precommit, Some(&other));
        assert_eq!(verify_evidence(&evidence(a.clone(), b.clone()), &s, &net()), Ok(id(1)));
        // nil counts as a value.
        let nil = signed_vote(1, VoteType::Precommit, None);
        assert_eq!(
            verify_evidence(&evidence(nil.clone(), a.clone()), &s, &net()),
            Ok(id(1))
        );
        // Identical votes are not evidence.
        assert_eq!(
            verify_evidence(&evidence(a.clone(), a.clone()), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        assert_eq!(
            verify_evidence(&evidence(nil.clone(), nil), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        // Different validators, types, heights or rounds are not evidence.
        let by_two = signed_vote(2, VoteType::Precommit, Some(&other));
        assert_eq!(
            verify_evidence(&evidence(a.clone(), by_two), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        let prevote = signed_vote(1, VoteType::Prevote, Some(&other));
        assert_eq!(
            verify_evidence(&evidence(a.clone(), prevote), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        let mut later = b.clone();
        later.height += 1;
        later.sign_with(&key(1));
        assert_eq!(
            verify_evidence(&evidence(a.clone(), later), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        let mut later = b.clone();
        later.round += 1;
        later.sign_with(&key(1));
        assert_eq!(
            verify_evidence(&evidence(a.clone(), later), &s, &net())
                .unwrap_err()
                .label(),
            "not_evidence"
        );
        // A forged second vote.
        let mut forged = b.clone();
        forged.signature[3] ^= 1;
        assert_eq!(
            verify_evidence(&evidence(a.clone(), forged), &s, &net()),
            Err(CertificateError::BadSignature { validator: id(1) })
        );
        // Not a member.
        let a9 = signed_vote(9, VoteType::Precommit, Some(&BLOCK));
        let b9 = signed_vote(9, VoteType::Precommit, None);
        assert_eq!(
            verify_evidence(&evidence(a9, b9), &s, &net()),
            Err(CertificateError::UnknownValidator { validator: id(9) })
        );
        // Wrong network.
        let testnet = NetworkId::new("testnet").unwrap();
        assert_eq!(
            verify_evidence(&evidence(a.clone(), b.clone()), &s, &testnet)
                .unwrap_err()
                .label(),
            "wrong_network"
        );
        // Missing vote.
        let half = proto::Evidence {
            first: Some(a),
            second: None,
        };
        assert_eq!(verify_evidence(&half, &s, &net()).unwrap_err().label(), "not_evidence");
    }
}
