//! A local chain for tests and benchmarks (no network, no engine): four
//! validators from fixed seeds, blocks built by [`Chain`]'s proposer code
//! and committed with commit certificates signed by three of them, exactly
//! as a decided height is committed. Used by the restart tests and the
//! `restart` benchmark.

use std::path::Path;

use tiernet_core::chain::{GenesisAnchor, Parent, precommit_for};
use tiernet_core::genesis::{Genesis, GenesisError, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
use tiernet_core::identity::{VrfError, ZsiKeypair};
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, header_hash};

use super::chain::{Chain, ChainError};
use super::engine::App;
use crate::store::{Store, StoreError};

/// Validators in the fixture's genesis.
pub const VALIDATORS: usize = 4;

/// A fixture that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A key could not be derived.
    #[error("key: {0}")]
    Key(#[from] VrfError),
    /// The genesis is invalid.
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A block could not be built or committed.
    #[error("height {0}: the block could not be built or committed")]
    Block(u64),
}

/// The fixture's validator keys.
pub fn keys() -> Result<Vec<ZsiKeypair>, FixtureError> {
    (0..VALIDATORS)
        .map(|i| ZsiKeypair::from_seed(format!("fixture-validator-{i}").as_bytes()).map_err(FixtureError::from))
        .collect()
}

/// The fixture's genesis (network `fixturenet`, equal powers).
pub fn genesis(keys: &[ZsiKeypair]) -> Result<Genesis, FixtureError> {
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
    Ok(Genesis::from_file(GenesisFile {
        network_id: "fixturenet".into(),
        genesis_time_ms: 1_000,
        tiers: Default::default(),
        consensus: Default::default(),
        uptime: Default::default(),
        identities,
        stark_programs: Vec::new(),
    })?)
}

/// Opens (or creates) the store at `path` and commits `blocks` more blocks
/// on top of what it holds, proposed by validator 0 and certified by
/// validators 0..3. Returns the chain.
pub fn grow(path: &Path, genesis: &Genesis, keys: &[ZsiKeypair], blocks: u64) -> Result<Chain, FixtureError> {
    let store = Store::open(path)?;
    let mut chain = Chain::open(store, genesis, keys.first().map(ZsiKeypair::zsi_id))?;
    let anchor = GenesisAnchor::from_genesis(genesis);
    for _ in 0..blocks {
        let last = chain.last_header().cloned();
        let height = last.as_ref().map_or(1, |h| h.height + 1);
        let time_ms = last.as_ref().map_or(genesis.genesis_time_ms, |h| h.time_ms) + 1_000;
        let parent = match &last {
            Some(header) => Parent::Header(header),
            None => Parent::Genesis(&anchor),
        };
        let block = chain.build(parent, 0, time_ms).ok_or(FixtureError::Block(height))?;
        let header = block.header.clone().ok_or(FixtureError::Block(height))?;
        let hash = header_hash(&header);
        let signatures = keys
            .iter()
            .take(VALIDATORS - 1)
            .map(|key| {
                let mut vote = precommit_for(&genesis.network, height, header.round, Some(&hash), &key.zsi_id());
                vote.sign_with(key.identity_key());
                proto::CommitSignature {
                    validator: key.zsi_id().as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect();
        let commit = proto::CommitCertificate {
            height,
            round: header.round,
            block_hash: hash.0.to_vec(),
            signatures,
        };
        chain.commit(&block, &commit).ok_or(FixtureError::Block(height))?;
    }
    Ok(chain)
}
