//! Restoring a [`Ledger`] from stored state instead of replaying blocks
//! (issue 16: restart in constant time).
//!
//! [`Ledger::restore`] takes the state entries at some height, the header
//! of that height and the set that signed it, and rebuilds the ledger:
//! identities (with their reputation) from the identity records, the next
//! validator set and the parameters from their keys. Nothing is taken on
//! trust: the root of the given entries must equal the header's
//! `state_root`, the decoded next set must hash to the header's
//! `next_validators_hash`, the signing set to its `validators_hash`, and the
//! network must be the genesis' one. The header itself is trusted as the
//! caller's own finalized block (the node checked its commit certificate
//! when it stored it; `tiernet-node verify-chain` replays everything from
//! genesis when that trust is in doubt).
//!
//! The restored ledger's [`Ledger::last_writes`] is empty (the writes of the
//! last block are already in the state store); everything else equals the
//! ledger a replay would give, which the tests check.

use prost::Message;

use super::{Ledger, decode_params};
use crate::chain::quorum::ValidatorSet;
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::identity::registry::MemoryRegistry;
use crate::state::{IDENTITY_PREFIX, MemoryTree, params_key, validators_key};
use crate::wire::proto;

/// Why stored state could not be restored into a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The header is for another network.
    #[error("the stored header is for network {found:?}, the genesis for {expected:?}")]
    Network {
        /// The genesis network.
        expected: String,
        /// The header's.
        found: String,
    },
    /// The entries do not hash to the header's state root.
    #[error("the stored state at height {height} has root {computed} but the header says {expected}")]
    Root {
        /// The height.
        height: u64,
        /// The header's `state_root`.
        expected: String,
        /// The root of the entries.
        computed: Hash32,
    },
    /// A required key is missing or does not decode.
    #[error("the stored state at height {height}: {what}")]
    Entry {
        /// The height.
        height: u64,
        /// What is wrong.
        what: String,
    },
    /// A validator set does not match the header's hash.
    #[error("the stored state at height {height}: the {which} validator set does not match the header")]
    Validators {
        /// The height.
        height: u64,
        /// `next` or `signing`.
        which: &'static str,
    },
}

impl Ledger {
    /// The ledger after `header` (a block this node finalized), rebuilt from
    /// the state `entries` at its height and `signing_set`, the set that
    /// signed it (the genesis set at height 1). See the module docs for
    /// what is checked.
    pub fn restore(
        genesis: &Genesis,
        header: &proto::Header,
        signing_set: ValidatorSet,
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<Ledger, RestoreError> {
        let height = header.height;
        if header.network_id != genesis.network.as_str() {
            return Err(RestoreError::Network {
                expected: genesis.network.as_str().to_owned(),
                found: header.network_id.clone(),
            });
        }
        let entry = |what: String| RestoreError::Entry { height, what };
        let mut tree = MemoryTree::new();
        let mut registry = MemoryRegistry::new();
        for (key, value) in entries {
            if key.starts_with(IDENTITY_PREFIX) {
                let record = proto::IdentityRecord::decode(value.as_slice())
                    .map_err(|e| entry(format!("identity record {}: {e}", hex::encode(&key))))?;
                registry
                    .register(&record)
                    .map_err(|e| entry(format!("identity record {}: {e}", hex::encode(&key))))?;
            }
            tree.insert(key, value);
        }
        let root = tree.root();
        if root.as_bytes().as_slice() != header.state_root.as_slice() {
            return Err(RestoreError::Root {
                height,
                expected: hex::encode(&header.state_root),
                computed: root,
            });
        }
        let (thresholds, consensus) = tree
            .get(params_key())
            .and_then(decode_params)
            .ok_or_else(|| entry("the params entry is missing or does not decode".into()))?;
        // The uptime rules are genesis's; the stored entry must say the same.
        let uptime = genesis.uptime;
        if tree.get(params_key()) != Some(super::encode_params(&thresholds, &consensus, &uptime).as_slice()) {
            return Err(entry("the params entry does not match the genesis uptime rules".into()));
        }
        let next = tree
            .get(validators_key())
            .and_then(|v| proto::ValidatorSet::decode(v).ok())
            .and_then(|set| ValidatorSet::from_proto(&set).ok())
            .ok_or_else(|| entry("the validator set entry is missing or unusable".into()))?;
        if next.hash().as_bytes().as_slice() != header.next_validators_hash.as_slice() {
            return Err(RestoreError::Validators { height, which: "next" });
        }
        if signing_set.hash().as_bytes().as_slice() != header.validators_hash.as_slice() {
            return Err(RestoreError::Validators {
                height,
                which: "signing",
            });
        }
        Ok(Ledger {
            network: genesis.network.clone(),
            height,
            thresholds,
            consensus,
            uptime,
            registry,
            validators: next,
            last_validators: signing_set,
            last_header: Some(header.clone()),
            tree,
            writes: Vec::new(),
            root,
        })
    }
}
