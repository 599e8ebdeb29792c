//! `tiernet-node verify-chain`: the full check a restart no longer does.
//!
//! A node loads its chain state from the state store on start (verified
//! against the last block's `state_root`, see
//! [`crate::consensus::chain::Chain::open`]), which costs the size of the
//! state, not the length of the chain. This command is the slow path, for
//! an operator who doubts the store: with the node stopped, it checks every
//! stored block's commit certificate from genesis on (each set handing
//! trust to the next), replays every block through the ledger from genesis
//! ([`OpenMode::Replay`]) and compares the result with the stored state tree
//! and with what a restart would load.

use std::path::PathBuf;

use tiernet_core::chain::{GenesisAnchor, Parent, ValidatorSet, validate_finalized};
use tiernet_core::genesis::Genesis;
use tiernet_core::hash::Hash32;
use tiernet_core::wire::proto;

use crate::config::ValidConfig;
use crate::consensus::chain::{Chain, OpenMode};
use crate::store::Store;

/// What `verify-chain` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The last stored height.
    pub height: u64,
    /// The state root after replaying every block from genesis.
    pub root: Hash32,
}

/// Why the chain did not verify (or could not be read).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No genesis file.
    #[error("genesis file {path}: {reason}")]
    Genesis {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be opened (is the node still running?).
    #[error("store {path}: {reason} (stop the node first: the store is opened exclusively)")]
    Store {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A stored block or its certificate does not validate.
    #[error("block {height} does not validate: {reason}")]
    Block {
        /// The height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The replay failed.
    #[error("replay: {0}")]
    Replay(String),
    /// The replayed state differs from what is stored or loaded.
    #[error("at height {height} the replayed state root is {replayed} but {what} is {found}")]
    Mismatch {
        /// The height.
        height: u64,
        /// The replayed root.
        replayed: Hash32,
        /// Which other root.
        what: &'static str,
        /// Its value.
        found: String,
    },
}

/// Verifies the chain in `config`'s data directory (the node must be stopped).
pub fn verify_chain(config: &ValidConfig) -> Result<VerifyReport, VerifyError> {
    let (path, _) = config.genesis_path();
    let genesis_error = |reason: String| VerifyError::Genesis {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| genesis_error(e.to_string()))?;
    let genesis = Genesis::from_json(&text).map_err(|e| genesis_error(e.to_string()))?;
    let store_path = config.store_path();
    let store = Store::open(&store_path).map_err(|e| VerifyError::Store {
        path: store_path.clone(),
        reason: e.to_string(),
    })?;
    verify_store(&store, &genesis)
}

/// [`verify_chain`] on an open store.
pub fn verify_store(store: &Store, genesis: &Genesis) -> Result<VerifyReport, VerifyError> {
    // 1. Certificates: every block from genesis on, each set handing trust to the next.
    let replayed = Chain::open_with(store.clone(), genesis, None, OpenMode::Replay)
        .map_err(|e| VerifyError::Replay(e.to_string()))?;
    let height = replayed.ledger().height();
    let anchor = GenesisAnchor::from_genesis(genesis);
    let mut set = ValidatorSet::new(genesis.validators.clone()).map_err(|e| VerifyError::Block {
        height: 0,
        reason: format!("genesis validator set: {e}"),
    })?;
    let mut previous: Option<proto::Header> = None;
    for h in 1..=height {
        let block_error = |reason: String| VerifyError::Block { height: h, reason };
        let fb = replayed
            .block(h)
            .map_err(|e| block_error(e.to_string()))?
            .ok_or_else(|| block_error("missing".into()))?;
        let parent = match &previous {
            Some(header) => Parent::Header(header),
            None => Parent::Genesis(&anchor),
        };
        validate_finalized(parent, &fb, &set, &genesis.network, u64::MAX / 2, 0)
            .map_err(|e| block_error(e.to_string()))?;
        let block = fb.block.unwrap_or_default();
        if let Some(next) = block.next_validators {
            set = ValidatorSet::new(next).map_err(|e| block_error(format!("next validator set: {e}")))?;
        }
        previous = block.header;
    }
    // 2. The replay (done by opening in Replay mode) against the stored state tree.
    let root = replayed.ledger().root();
    let stored = replayed
        .state()
        .root_at(height)
        .map_err(|e| VerifyError::Replay(e.to_string()))?;
    if stored != Some(root) {
        return Err(VerifyError::Mismatch {
            height,
            replayed: root,
            what: "the state store's root",
            found: stored.map_or_else(|| "missing".to_owned(), |r| r.to_string()),
        });
    }
    // 3. The stored entries (what a restart loads) hash to the same root.
    let entries = replayed
        .state()
        .entries(height)
        .map_err(|e| VerifyError::Replay(e.to_string()))?;
    let mut tree = tiernet_core::state::MemoryTree::new();
    for (key, value) in entries {
        tree.insert(key, value);
    }
    if tree.root() != root {
        return Err(VerifyError::Mismatch {
            height,
            replayed: root,
            what: "the root of the stored state entries",
            found: tree.root().to_string(),
        });
    }
    Ok(VerifyReport { height, root })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::fixture;

    #[test]
    fn a_restart_loads_the_same_ledger_a_replay_computes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let keys = fixture::keys().unwrap();
        let genesis = fixture::genesis(&keys).unwrap();
        drop(fixture::grow(&path, &genesis, &keys, 12).unwrap());
        let store = Store::open(&path).unwrap();
        let loaded = Chain::open(store.clone(), &genesis, None).unwrap();
        let (l, lh) = (loaded.ledger().clone(), loaded.last_header().cloned());
        let set_changes = loaded.set_changes(0, u64::MAX);
        drop(loaded);
        let replayed = Chain::open_with(store.clone(), &genesis, None, OpenMode::Replay).unwrap();
        let r = replayed.ledger();
        assert_eq!(l.height(), 12);
        assert_eq!(l.root(), r.root());
        assert_eq!(l.validators().hash(), r.validators().hash());
        assert_eq!(l.last_validators().hash(), r.last_validators().hash());
        assert_eq!(lh.as_ref(), replayed.last_header());
        assert_eq!(l.registry().len(), r.registry().len());
        for (id, identity) in r.registry().iter() {
            assert_eq!(l.tier(id), r.tier(id));
            assert_eq!(
                tiernet_core::identity::registry::IdentityRegistry::lookup(l.registry(), id).map(|i| &i.reputation),
                Some(&identity.reputation)
            );
        }
        assert_eq!(l.thresholds(), r.thresholds());
        assert_eq!(set_changes, replayed.set_changes(0, u64::MAX));
        drop(replayed);
        // verify-chain agrees, and the chain grows on after the restore.
        assert_eq!(verify_store(&store, &genesis).unwrap().height, 12);
        drop(store);
        let chain = fixture::grow(&path, &genesis, &keys, 3).unwrap();
        assert_eq!(chain.ledger().height(), 15);
    }

    #[test]
    fn a_tampered_state_tree_is_not_loaded_and_verify_chain_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let keys = fixture::keys().unwrap();
        let genesis = fixture::genesis(&keys).unwrap();
        let honest_root = fixture::grow(&path, &genesis, &keys, 5).unwrap().ledger().root();
        // A stored value of height 5 is changed behind the tree's back: a
        // restart must not load it (the entries no longer hash to the
        // header's state root) and verify-chain must name it.
        let store = Store::open(&path).unwrap();
        {
            let forged = tiernet_core::state::identity_key(&keys[1].zsi_id());
            let state = crate::state_store::StateStore::open(store.clone()).unwrap();
            let bytes = state.get(&forged, 5).unwrap().unwrap();
            let mut record = <proto::IdentityRecord as prost::Message>::decode(bytes.as_slice()).unwrap();
            record.reputation.as_mut().unwrap().score += 1_000;
            let mut value = vec![1u8];
            value.extend(prost::Message::encode_to_vec(&record));
            let mut row = tiernet_core::state::key_hash(&forged).0.to_vec();
            row.extend_from_slice(&5u64.to_be_bytes());
            let txn = store.database().begin_write().unwrap();
            {
                let mut values = txn.open_table(crate::state_store::STATE_VALUES).unwrap();
                values.insert(row.as_slice(), value.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let chain = Chain::open(store.clone(), &genesis, None).unwrap();
        assert_eq!(chain.ledger().height(), 5);
        assert_eq!(chain.ledger().root(), honest_root);
        drop(chain);
        assert!(matches!(
            verify_store(&store, &genesis),
            Err(VerifyError::Mismatch { .. })
        ));
    }
}
