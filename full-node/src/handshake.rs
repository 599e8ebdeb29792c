//! The node's side of `/tiernet/handshake/1`.
//!
//! After Noise XX has authenticated the remote PeerId, the dialer sends its
//! `Hello`; the listener verifies it and answers with its own `Hello` (or a
//! rejection with the reason). Each side then knows the other's proven ZSI,
//! and looks its tier up in the registry — never taking it from the Hello.
//! A peer that never sends a Hello (a plain libp2p peer) stays TL0.
//!
//! [`Handshake`] holds what both directions need and does no IO: the node's
//! event loop moves the messages.

use libp2p::PeerId;
use tiernet_core::genesis::Genesis;
use tiernet_core::identity::hello::{
    HelloCheck, HelloError, HelloInfo, VerifiedHello, build_hello, epoch_at, verify_hello,
};
use tiernet_core::identity::registry::{MemoryRegistry, PeerStanding, standing};
use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::tier::TierThresholds;
use tiernet_core::wire::{NetworkId, proto};

/// Features this node announces in its Hello.
pub const FEATURES: &[&str] = &["sync/1"];

/// How many epochs a peer's Hello may be off by (clock skew at boundaries).
pub const EPOCH_TOLERANCE: u64 = 1;

/// Everything the handshake needs: who we are and the identity registry.
pub struct Handshake {
    network: NetworkId,
    local_peer: PeerId,
    identity: Option<ZsiKeypair>,
    registry: MemoryRegistry,
    thresholds: TierThresholds,
    agent: String,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("network", &self.network)
            .field("local_peer", &self.local_peer)
            .field("zsi_id", &self.zsi_id())
            .field("registered", &self.registry.len())
            .finish()
    }
}

impl Handshake {
    /// A handshake for `local_peer` with an optional ZSI identity and the
    /// registry from `genesis` (empty without one).
    pub fn new(
        network: NetworkId,
        local_peer: PeerId,
        identity: Option<ZsiKeypair>,
        genesis: Option<&Genesis>,
        agent: String,
    ) -> Self {
        Self {
            network,
            local_peer,
            identity,
            registry: genesis.map(|g| g.registry.clone()).unwrap_or_default(),
            thresholds: genesis.map(|g| g.thresholds).unwrap_or_default(),
            agent,
        }
    }

    /// Our ZSI id, if we have one.
    pub fn zsi_id(&self) -> Option<ZsiId> {
        self.identity.as_ref().map(ZsiKeypair::zsi_id)
    }

    /// Our ZSI identity, if we have one.
    pub fn identity(&self) -> Option<&ZsiKeypair> {
        self.identity.as_ref()
    }

    /// The tier thresholds (from genesis).
    pub fn thresholds(&self) -> &TierThresholds {
        &self.thresholds
    }

    /// The identity registry.
    pub fn registry(&self) -> &MemoryRegistry {
        &self.registry
    }

    /// Replaces the registry with the one in chain state after a block.
    pub fn set_registry(&mut self, registry: MemoryRegistry) {
        self.registry = registry;
    }

    /// Our Hello for `remote`, in the epoch of `now_ms`.
    pub fn hello_for(&self, remote: &PeerId, now_ms: u64) -> proto::Hello {
        let info = HelloInfo {
            network: self.network.clone(),
            epoch: epoch_at(now_ms),
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            agent: self.agent.clone(),
        };
        build_hello(self.identity.as_ref(), &info, &self.local_peer, remote)
    }

    /// Verifies a Hello that `remote` sent us and looks its tier up.
    pub fn check(
        &self,
        remote: &PeerId,
        hello: &proto::Hello,
        now_ms: u64,
    ) -> Result<(VerifiedHello, PeerStanding), HelloError> {
        let check = HelloCheck {
            network: &self.network,
            sender: *remote,
            receiver: self.local_peer,
            current_epoch: epoch_at(now_ms),
            epoch_tolerance: EPOCH_TOLERANCE,
        };
        let verified = verify_hello(hello, &check)?;
        let standing = standing(&verified, &self.registry, &self.thresholds);
        Ok((verified, standing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::genesis::{GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile};
    use tiernet_core::tier::Tier;

    fn genesis(validator: &ZsiKeypair) -> Genesis {
        let mut identity = GenesisIdentity::new(
            "v",
            &validator.public(),
            ReputationFile {
                uptime_minutes: 1440,
                score: 100,
                ..Default::default()
            },
        );
        identity.validator = Some(GenesisValidator {
            consensus_key: hex::encode(validator.public().identity_key.as_bytes()),
            power: 1,
        });
        Genesis::from_file(GenesisFile {
            stark_programs: Vec::new(),
            network_id: "devnet".into(),
            genesis_time_ms: 0,
            tiers: Default::default(),
            consensus: Default::default(),
            uptime: Default::default(),
            identities: vec![identity],
        })
        .unwrap()
    }

    #[test]
    fn both_directions_verify_and_tiers_come_from_the_registry() {
        let network = NetworkId::new("devnet").unwrap();
        let validator = ZsiKeypair::from_seed(b"v").unwrap();
        let g = genesis(&validator);
        let (a, b) = (PeerId::random(), PeerId::random());
        let node_a = Handshake::new(network.clone(), a, Some(validator), Some(&g), "a".into());
        let node_b = Handshake::new(network.clone(), b, None, Some(&g), "b".into());
        let now = 1_764_000_000_000;
        let (_, standing) = node_b.check(&a, &node_a.hello_for(&b, now), now).unwrap();
        assert_eq!(standing.tier, Tier::TL3);
        let (_, standing) = node_a.check(&b, &node_b.hello_for(&a, now), now).unwrap();
        assert_eq!(standing.tier, Tier::TL0);
        // A Hello for someone else does not verify here.
        let c = PeerId::random();
        assert!(node_b.check(&a, &node_a.hello_for(&c, now), now).is_err());
    }
}
