//! Hello verification (`/tiernet/handshake/1`): arbitrary Hello bytes,
//! decoded as the handshake codec does, verified by a receiver with fixed
//! PeerIds, network and epoch, then looked up in a fixed registry.
//!
//! Input: the Hello bytes. The fixture matches the `hello` vector of
//! `tests/vectors/wire-v1.json` (sender key `[7; 32]`, receiver `[8; 32]`,
//! `devnet`, epoch 490000, ZSI `vector-alice`), so that vector verifies and
//! libFuzzer mutates a Hello that reaches the VRF check.

use std::sync::LazyLock;

use tiernet_core::identity::hello::{HelloCheck, HelloInfo, build_hello, verify_hello};
use tiernet_core::identity::registry::{IdentityRegistry, MemoryRegistry, StandingBasis, standing};
use tiernet_core::identity::{NodeKeypair, PeerId, ZsiKeypair};
use tiernet_core::tier::{ReputationRecord, Tier, TierThresholds, tier_of};
use tiernet_core::wire::{NetworkId, decode, encode, proto};

use crate::Seed;

/// The receiver's current epoch (the vector's).
pub const EPOCH: u64 = 490_000;

struct World {
    network: NetworkId,
    sender: PeerId,
    receiver: PeerId,
    alice: ZsiKeypair,
    registry: MemoryRegistry,
    thresholds: TierThresholds,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let alice = ZsiKeypair::from_seed(b"vector-alice").expect("fixture key");
    let public = alice.public();
    let mut registry = MemoryRegistry::new();
    registry
        .register(&proto::IdentityRecord {
            zsi_id: alice.zsi_id().as_bytes().to_vec(),
            identity_key: public.identity_key.as_bytes().to_vec(),
            vrf_key: public.vrf_key.to_bytes().to_vec(),
            reputation: Some(proto::ReputationRecord::from(&ReputationRecord {
                uptime_minutes: 24 * 60,
                participation: 0,
                score: 150,
                slashed: false,
            })),
        })
        .expect("fixture identity registers");
    World {
        network: NetworkId::new("devnet").expect("fixture network"),
        sender: NodeKeypair::from_secret([7; 32]).expect("fixture key").peer_id(),
        receiver: NodeKeypair::from_secret([8; 32]).expect("fixture key").peer_id(),
        alice,
        registry,
        thresholds: TierThresholds::default(),
    }
});

/// Decodes and verifies one Hello; see the module docs.
pub fn run(data: &[u8]) {
    let w = &*WORLD;
    let Ok(hello) = decode::<proto::Hello>(data) else {
        return;
    };
    let check = HelloCheck {
        network: &w.network,
        sender: w.sender,
        receiver: w.receiver,
        current_epoch: EPOCH,
        epoch_tolerance: 1,
    };
    let result = verify_hello(&hello, &check);
    crate::debug(|| {
        format!(
            "verify_hello: {:?}",
            result.as_ref().map(|v| v.identity.as_ref().map(|i| i.zsi_id))
        )
    });
    let Ok(verified) = result else {
        return;
    };
    let standing = standing(&verified, &w.registry, &w.thresholds);
    match &verified.identity {
        None => {
            assert!(
                hello.zsi_id.is_empty(),
                "a Hello with a zsi_id verified as an observer's"
            );
            assert_eq!(standing.tier, Tier::TL0);
        }
        Some(identity) => {
            assert_eq!(identity.zsi_id.as_bytes().as_slice(), hello.zsi_id.as_slice());
            assert_eq!(identity.public.zsi_id(), identity.zsi_id);
            // The proof is bound to the direction of the connection.
            let reversed = HelloCheck {
                sender: w.receiver,
                receiver: w.sender,
                ..check
            };
            assert!(
                verify_hello(&hello, &reversed).is_err(),
                "a Hello verified for both directions of a connection"
            );
            let registered = w.registry.lookup(&identity.zsi_id);
            let expected = match registered {
                Some(r) if r.public == identity.public => tier_of(Some(&r.reputation), &w.thresholds),
                _ => Tier::TL0,
            };
            assert_eq!(standing.tier, expected, "tier not from the registry");
            if registered.is_none() {
                assert_eq!(standing.basis, StandingBasis::Unregistered);
            }
        }
    }
}

/// A ZSI Hello and an observer's Hello for the fixture's connection.
pub fn seeds() -> Vec<Seed> {
    let w = &*WORLD;
    let info = HelloInfo {
        network: w.network.clone(),
        epoch: EPOCH,
        features: vec!["sync/1".into()],
        agent: "tiernet-node/0.1.0".into(),
    };
    let signed = build_hello(Some(&w.alice), &info, &w.sender, &w.receiver);
    let observer = build_hello(None, &info, &w.sender, &w.receiver);
    vec![("zsi", encode(&signed)), ("observer", encode(&observer))]
}

/// The Hellos of [`seeds`], the handshake responses around them, and the
/// fixture's identity record.
pub fn messages() -> Vec<Vec<u8>> {
    let w = &*WORLD;
    let mut out = Vec::new();
    for (_, hello) in seeds() {
        if let Ok(hello) = decode::<proto::Hello>(&hello) {
            out.push(encode(&proto::HandshakeResponse {
                result: Some(proto::handshake_response::Result::Hello(hello.clone())),
            }));
            out.push(encode(&hello));
        }
    }
    out.push(encode(&proto::HandshakeResponse {
        result: Some(proto::handshake_response::Result::Rejected(
            "Hello epoch 3 is outside 490000±1".into(),
        )),
    }));
    let alice = w.alice.zsi_id();
    if let Some(registered) = w.registry.lookup(&alice) {
        out.push(encode(&tiernet_core::chain::identity_record(&alice, registered)));
    }
    out
}
