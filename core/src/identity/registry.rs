//! The identity registry: which ZSIs are registered, with which keys and
//! reputation. The genesis file fills it now; chain state later.

use std::collections::BTreeMap;

use super::hello::VerifiedHello;
use super::zsi::{ZsiId, ZsiPublic};
use crate::tier::{ReputationRecord, Tier, TierThresholds, tier_of};
use crate::wire::proto;

/// A registered identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredIdentity {
    /// Its keys.
    pub public: ZsiPublic,
    /// Its on-chain reputation.
    pub reputation: ReputationRecord,
}

/// Looks identities up by ZSI id.
pub trait IdentityRegistry {
    /// The registered identity with this id, if any.
    fn lookup(&self, zsi_id: &ZsiId) -> Option<&RegisteredIdentity>;
}

impl<T: IdentityRegistry + ?Sized> IdentityRegistry for &T {
    fn lookup(&self, zsi_id: &ZsiId) -> Option<&RegisteredIdentity> {
        (**self).lookup(zsi_id)
    }
}

/// An in-memory registry.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    identities: BTreeMap<ZsiId, RegisteredIdentity>,
}

/// An identity record that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Keys that do not parse.
    #[error("identity {zsi_id}: {reason}")]
    BadKeys {
        /// The record's id (hex).
        zsi_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The record's id is not the one its keys derive.
    #[error("identity {claimed}: its keys derive {derived}")]
    IdMismatch {
        /// The record's id (hex).
        claimed: String,
        /// The derived id.
        derived: ZsiId,
    },
    /// Two records with one id.
    #[error("identity {0} is registered twice")]
    Duplicate(ZsiId),
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an identity record, checking that its id matches its keys.
    pub fn register(&mut self, record: &proto::IdentityRecord) -> Result<ZsiId, RegistryError> {
        let public =
            ZsiPublic::from_bytes(&record.identity_key, &record.vrf_key).map_err(|e| RegistryError::BadKeys {
                zsi_id: hex::encode(&record.zsi_id),
                reason: e.to_string(),
            })?;
        let derived = public.zsi_id();
        if derived.as_bytes().as_slice() != record.zsi_id.as_slice() {
            return Err(RegistryError::IdMismatch {
                claimed: hex::encode(&record.zsi_id),
                derived,
            });
        }
        if self.identities.contains_key(&derived) {
            return Err(RegistryError::Duplicate(derived));
        }
        let reputation = record
            .reputation
            .as_ref()
            .map(ReputationRecord::from)
            .unwrap_or_default();
        self.identities
            .insert(derived, RegisteredIdentity { public, reputation });
        Ok(derived)
    }

    /// Replaces an identity's reputation; `false` if it is not registered.
    pub fn set_reputation(&mut self, zsi_id: &ZsiId, reputation: ReputationRecord) -> bool {
        match self.identities.get_mut(zsi_id) {
            Some(identity) => {
                identity.reputation = reputation;
                true
            }
            None => false,
        }
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// True when no identity is registered.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// All identities in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&ZsiId, &RegisteredIdentity)> {
        self.identities.iter()
    }
}

impl IdentityRegistry for MemoryRegistry {
    fn lookup(&self, zsi_id: &ZsiId) -> Option<&RegisteredIdentity> {
        self.identities.get(zsi_id)
    }
}

/// A peer's standing after its handshake: its proven ZSI and its tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStanding {
    /// The proven ZSI, if it has one.
    pub zsi_id: Option<ZsiId>,
    /// The tier from the registry (TL0 without a registered ZSI).
    pub tier: Tier,
    /// Why the tier is what it is.
    pub basis: StandingBasis,
}

/// Why a peer has the tier it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandingBasis {
    /// No ZSI in the Hello (a light client or plain observer).
    Observer,
    /// A proven ZSI that is not registered.
    Unregistered,
    /// A registered ZSI whose registered keys differ from the proven ones.
    KeyMismatch,
    /// A registered ZSI: the tier comes from its reputation record.
    Registered,
}

/// The tier of a peer that sent `hello`, from the registry.
pub fn standing(hello: &VerifiedHello, registry: &impl IdentityRegistry, thresholds: &TierThresholds) -> PeerStanding {
    let Some(identity) = &hello.identity else {
        return PeerStanding {
            zsi_id: None,
            tier: Tier::TL0,
            basis: StandingBasis::Observer,
        };
    };
    let (tier, basis) = match registry.lookup(&identity.zsi_id) {
        None => (Tier::TL0, StandingBasis::Unregistered),
        Some(registered) if registered.public != identity.public => (Tier::TL0, StandingBasis::KeyMismatch),
        Some(registered) => (
            tier_of(Some(&registered.reputation), thresholds),
            StandingBasis::Registered,
        ),
    };
    PeerStanding {
        zsi_id: Some(identity.zsi_id),
        tier,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ZsiKeypair;
    use crate::identity::hello::{HelloCheck, HelloInfo, build_hello, verify_hello};
    use crate::wire::NetworkId;
    use libp2p_identity::PeerId;

    fn record(key: &ZsiKeypair, score: u64) -> proto::IdentityRecord {
        let public = key.public();
        proto::IdentityRecord {
            zsi_id: key.zsi_id().as_bytes().to_vec(),
            identity_key: public.identity_key.as_bytes().to_vec(),
            vrf_key: public.vrf_key.to_bytes().to_vec(),
            reputation: Some(proto::ReputationRecord {
                uptime_minutes: 24 * 60,
                participation: 0,
                score,
                slashed: false,
            }),
        }
    }

    fn hello_from(key: Option<&ZsiKeypair>) -> VerifiedHello {
        let network = NetworkId::new("devnet").unwrap();
        let (a, b) = (PeerId::random(), PeerId::random());
        let info = HelloInfo {
            network: network.clone(),
            epoch: 1,
            features: vec![],
            agent: String::new(),
        };
        let hello = build_hello(key, &info, &a, &b);
        let check = HelloCheck {
            network: &network,
            sender: a,
            receiver: b,
            current_epoch: 1,
            epoch_tolerance: 0,
        };
        verify_hello(&hello, &check).unwrap()
    }

    #[test]
    fn tier_comes_from_the_registry() {
        let alice = ZsiKeypair::from_seed(b"alice").unwrap();
        let bob = ZsiKeypair::from_seed(b"bob").unwrap();
        let mut registry = MemoryRegistry::new();
        registry.register(&record(&alice, 150)).unwrap();
        let t = TierThresholds::default();

        let s = standing(&hello_from(Some(&alice)), &registry, &t);
        assert_eq!((s.tier, s.basis), (Tier::TL3, StandingBasis::Registered));
        let s = standing(&hello_from(Some(&bob)), &registry, &t);
        assert_eq!((s.tier, s.basis), (Tier::TL0, StandingBasis::Unregistered));
        let s = standing(&hello_from(None), &registry, &t);
        assert_eq!((s.tier, s.basis), (Tier::TL0, StandingBasis::Observer));

        registry.set_reputation(
            &alice.zsi_id(),
            ReputationRecord {
                slashed: true,
                ..Default::default()
            },
        );
        assert_eq!(standing(&hello_from(Some(&alice)), &registry, &t).tier, Tier::TL0);
    }

    #[test]
    fn register_checks_ids_and_duplicates() {
        let alice = ZsiKeypair::from_seed(b"alice").unwrap();
        let mut registry = MemoryRegistry::new();
        let mut bad = record(&alice, 0);
        bad.zsi_id[0] ^= 1;
        assert!(matches!(registry.register(&bad), Err(RegistryError::IdMismatch { .. })));
        registry.register(&record(&alice, 0)).unwrap();
        assert!(matches!(
            registry.register(&record(&alice, 0)),
            Err(RegistryError::Duplicate(_))
        ));
        assert_eq!(registry.len(), 1);
    }
}
