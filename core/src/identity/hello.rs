//! The handshake `Hello` of `/tiernet/handshake/1`.
//!
//! Each side sends a `Hello` right after the Noise XX upgrade. A Hello with a
//! ZSI carries a VRF output and proof over
//! `vrf_input = BLAKE3("tiernet/handshake-vrf/v1" ‖ network_id ‖ sender ‖ receiver ‖ epoch)`
//! (variable-length parts length-prefixed) and is signed by the identity
//! key. Binding both PeerIds and the epoch makes a Hello useless anywhere
//! else: replayed to another peer, on another connection from another
//! PeerId, or in another epoch it fails to verify.
//!
//! [`verify_hello`] checks what the Hello proves about its sender; the tier
//! then comes from the registry ([`super::registry`]), never from the Hello.

use libp2p_identity::PeerId;

use super::zsi::{VrfError, ZsiId, ZsiKeypair, ZsiPublic};
use crate::hash::{Hash32, tagged_hash, tags};
use crate::wire::sign::SignedMessage;
use crate::wire::{FieldError, NetworkId, Validate, proto};

/// What a node says about itself in a Hello besides its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloInfo {
    /// The network it is on.
    pub network: NetworkId,
    /// Its current handshake epoch.
    pub epoch: u64,
    /// Feature flags it supports.
    pub features: Vec<String>,
    /// Its software name and version.
    pub agent: String,
}

/// The VRF input that binds a Hello to one network, sender, receiver and epoch.
pub fn vrf_input(network: &NetworkId, sender: &PeerId, receiver: &PeerId, epoch: u64) -> Hash32 {
    let network = network.as_str().as_bytes();
    let sender = sender.to_bytes();
    let receiver = receiver.to_bytes();
    // Lengths are at most 64 (PeerId) and 32 (network id), so one byte each.
    tagged_hash(
        tags::HANDSHAKE_VRF,
        &[
            &[network.len() as u8],
            network,
            &[sender.len() as u8],
            &sender,
            &[receiver.len() as u8],
            &receiver,
            &epoch.to_be_bytes(),
        ],
    )
}

/// Builds the Hello that `sender` sends to `receiver`. Without an identity
/// it is an observer's Hello (TL0): no keys, no proof, no signature.
pub fn build_hello(
    identity: Option<&ZsiKeypair>,
    info: &HelloInfo,
    sender: &PeerId,
    receiver: &PeerId,
) -> proto::Hello {
    let mut hello = proto::Hello {
        network_id: info.network.as_str().to_owned(),
        epoch: info.epoch,
        features: info.features.clone(),
        agent: info.agent.clone(),
        ..Default::default()
    };
    if let Some(identity) = identity {
        let public = identity.public();
        let (output, proof) = identity.vrf_sign(vrf_input(&info.network, sender, receiver, info.epoch).as_bytes());
        hello.zsi_id = identity.zsi_id().as_bytes().to_vec();
        hello.identity_key = public.identity_key.as_bytes().to_vec();
        hello.vrf_key = public.vrf_key.to_bytes().to_vec();
        hello.vrf_output = output.to_vec();
        hello.vrf_proof = proof.to_vec();
        hello.sign_with(identity.identity_key());
    }
    hello
}

/// What the receiver knows when it checks a Hello.
#[derive(Debug, Clone)]
pub struct HelloCheck<'a> {
    /// The receiver's network.
    pub network: &'a NetworkId,
    /// The PeerId that Noise authenticated for the remote end (the sender).
    pub sender: PeerId,
    /// The receiver's own PeerId.
    pub receiver: PeerId,
    /// The receiver's current epoch.
    pub current_epoch: u64,
    /// How many epochs the sender's may differ by (clock skew at boundaries).
    pub epoch_tolerance: u64,
}

/// A Hello whose claims have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHello {
    /// The proven identity, or `None` for an observer.
    pub identity: Option<VerifiedIdentity>,
    /// The sender's epoch.
    pub epoch: u64,
    /// The sender's features.
    pub features: Vec<String>,
    /// The sender's agent string.
    pub agent: String,
}

/// An identity proven by a Hello: the sender holds both secret keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The ZSI id (derived from the keys, equal to the claimed one).
    pub zsi_id: ZsiId,
    /// The keys.
    pub public: ZsiPublic,
    /// The VRF's pseudo-random value for this connection.
    pub vrf_value: [u8; 32],
}

/// Why a Hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// A field breaks the schema.
    #[error("malformed Hello: {0}")]
    Malformed(#[from] FieldError),
    /// The sender is on another network.
    #[error("Hello is for network {got:?}, this node is on {expected:?}")]
    WrongNetwork {
        /// Our network.
        expected: String,
        /// Theirs.
        got: String,
    },
    /// The sender's epoch is too far from ours.
    #[error("Hello epoch {epoch} is outside {current}±{tolerance}")]
    StaleEpoch {
        /// Their epoch.
        epoch: u64,
        /// Ours.
        current: u64,
        /// The tolerance.
        tolerance: u64,
    },
    /// A key does not parse.
    #[error("Hello keys: {0}")]
    BadKey(VrfError),
    /// The claimed zsi_id is not the one the keys derive.
    #[error("Hello claims zsi_id {claimed} but its keys derive {derived}")]
    ZsiMismatch {
        /// What the Hello says.
        claimed: String,
        /// What the keys give.
        derived: ZsiId,
    },
    /// The identity key's signature over the Hello does not verify.
    #[error("Hello signature does not verify")]
    BadSignature,
    /// The VRF proof does not verify for this sender, receiver and epoch
    /// (a forged proof, or a Hello replayed from another connection).
    #[error("Hello VRF proof does not verify for this connection and epoch")]
    BadVrfProof,
}

/// Checks a Hello received from `check.sender`.
pub fn verify_hello(hello: &proto::Hello, check: &HelloCheck<'_>) -> Result<VerifiedHello, HelloError> {
    hello.validate()?;
    if hello.network_id != check.network.as_str() {
        return Err(HelloError::WrongNetwork {
            expected: check.network.as_str().to_owned(),
            got: hello.network_id.clone(),
        });
    }
    if hello.epoch.abs_diff(check.current_epoch) > check.epoch_tolerance {
        return Err(HelloError::StaleEpoch {
            epoch: hello.epoch,
            current: check.current_epoch,
            tolerance: check.epoch_tolerance,
        });
    }
    let identity = if hello.zsi_id.is_empty() {
        None
    } else {
        let public = ZsiPublic::from_bytes(&hello.identity_key, &hello.vrf_key).map_err(HelloError::BadKey)?;
        let derived = public.zsi_id();
        if derived.as_bytes().as_slice() != hello.zsi_id.as_slice() {
            return Err(HelloError::ZsiMismatch {
                claimed: hex::encode(&hello.zsi_id),
                derived,
            });
        }
        hello
            .verify_with(&public.identity_key)
            .map_err(|_| HelloError::BadSignature)?;
        let input = vrf_input(check.network, &check.sender, &check.receiver, hello.epoch);
        let vrf_value = public
            .vrf_verify(input.as_bytes(), &hello.vrf_output, &hello.vrf_proof)
            .map_err(|_| HelloError::BadVrfProof)?;
        Some(VerifiedIdentity {
            zsi_id: derived,
            public,
            vrf_value,
        })
    };
    Ok(VerifiedHello {
        identity,
        epoch: hello.epoch,
        features: hello.features.clone(),
        agent: hello.agent.clone(),
    })
}

/// The handshake epoch at a wall-clock time: hours since the Unix epoch.
/// An epoch long enough that clocks rarely disagree, short enough that a
/// leaked Hello soon expires.
pub fn epoch_at(unix_ms: u64) -> u64 {
    unix_ms / EPOCH_MS
}

/// Length of a handshake epoch in milliseconds (one hour).
pub const EPOCH_MS: u64 = 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    struct Setup {
        network: NetworkId,
        alice: ZsiKeypair,
        alice_peer: PeerId,
        bob_peer: PeerId,
        carol_peer: PeerId,
    }

    fn setup() -> Setup {
        Setup {
            network: NetworkId::new("devnet").unwrap(),
            alice: ZsiKeypair::from_seed(b"alice").unwrap(),
            alice_peer: PeerId::random(),
            bob_peer: PeerId::random(),
            carol_peer: PeerId::random(),
        }
    }

    fn info(s: &Setup, epoch: u64) -> HelloInfo {
        HelloInfo {
            network: s.network.clone(),
            epoch,
            features: vec!["sync/1".into()],
            agent: "test/0".into(),
        }
    }

    fn check(s: &Setup, sender: PeerId, receiver: PeerId, epoch: u64) -> HelloCheck<'_> {
        HelloCheck {
            network: &s.network,
            sender,
            receiver,
            current_epoch: epoch,
            epoch_tolerance: 1,
        }
    }

    #[test]
    fn genuine_hello_verifies_and_proves_the_zsi() {
        let s = setup();
        let hello = build_hello(Some(&s.alice), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        let verified = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 100)).unwrap();
        let identity = verified.identity.unwrap();
        assert_eq!(identity.zsi_id, s.alice.zsi_id());
        // Neighbouring epochs are tolerated.
        verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 101)).unwrap();
    }

    #[test]
    fn observer_hello_has_no_identity() {
        let s = setup();
        let hello = build_hello(None, &info(&s, 5), &s.alice_peer, &s.bob_peer);
        let verified = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 5)).unwrap();
        assert_eq!(verified.identity, None);
    }

    #[test]
    fn replay_to_another_peer_is_rejected() {
        let s = setup();
        let hello = build_hello(Some(&s.alice), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        // Bob forwards Alice's Hello to Carol, pretending to be Alice's connection.
        let err = verify_hello(&hello, &check(&s, s.alice_peer, s.carol_peer, 100)).unwrap_err();
        assert_eq!(err, HelloError::BadVrfProof);
        // Bob replays it on his own connection to Carol.
        let err = verify_hello(&hello, &check(&s, s.bob_peer, s.carol_peer, 100)).unwrap_err();
        assert_eq!(err, HelloError::BadVrfProof);
    }

    #[test]
    fn replay_in_another_epoch_is_rejected() {
        let s = setup();
        let hello = build_hello(Some(&s.alice), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        let err = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 102)).unwrap_err();
        assert!(matches!(err, HelloError::StaleEpoch { .. }));
        // Re-labelling the epoch breaks the signature.
        let mut relabelled = hello.clone();
        relabelled.epoch = 102;
        let err = verify_hello(&relabelled, &check(&s, s.alice_peer, s.bob_peer, 102)).unwrap_err();
        assert_eq!(err, HelloError::BadSignature);
    }

    #[test]
    fn any_changed_field_is_rejected() {
        let s = setup();
        let hello = build_hello(Some(&s.alice), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        let c = check(&s, s.alice_peer, s.bob_peer, 100);
        let mallory = ZsiKeypair::from_seed(b"mallory").unwrap().public();
        type Mutation = Box<dyn Fn(&mut proto::Hello)>;
        let mutations: Vec<(&str, Mutation)> = vec![
            ("network_id", Box::new(|h| h.network_id = "devnet2".into())),
            ("zsi_id", Box::new(|h| h.zsi_id[0] ^= 1)),
            (
                "identity_key",
                Box::new(move |h| h.identity_key = mallory.identity_key.as_bytes().to_vec()),
            ),
            (
                "vrf_key",
                Box::new(move |h| h.vrf_key = mallory.vrf_key.to_bytes().to_vec()),
            ),
            ("epoch", Box::new(|h| h.epoch += 1)),
            ("features", Box::new(|h| h.features.push("admin".into()))),
            ("agent", Box::new(|h| h.agent = "evil/1".into())),
            ("vrf_output", Box::new(|h| h.vrf_output[3] ^= 1)),
            ("vrf_proof", Box::new(|h| h.vrf_proof[3] ^= 1)),
            ("signature", Box::new(|h| h.signature[3] ^= 1)),
        ];
        for (field, mutate) in mutations {
            let mut changed = hello.clone();
            mutate(&mut changed);
            assert!(verify_hello(&changed, &c).is_err(), "changing {field} was accepted");
        }
    }

    #[test]
    fn a_forged_signature_with_a_genuine_vrf_proof_is_rejected() {
        let s = setup();
        let mut hello = build_hello(Some(&s.alice), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        let mallory = ZsiKeypair::from_seed(b"mallory").unwrap();
        hello.sign_with(mallory.identity_key());
        let err = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 100)).unwrap_err();
        assert_eq!(err, HelloError::BadSignature);
    }

    #[test]
    fn a_self_consistent_hello_from_other_keys_cannot_claim_alices_zsi() {
        let s = setup();
        let mallory = ZsiKeypair::from_seed(b"mallory").unwrap();
        let mut hello = build_hello(Some(&mallory), &info(&s, 100), &s.alice_peer, &s.bob_peer);
        hello.zsi_id = s.alice.zsi_id().as_bytes().to_vec();
        hello.sign_with(mallory.identity_key());
        let err = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 100)).unwrap_err();
        assert!(matches!(err, HelloError::ZsiMismatch { .. }));
    }

    #[test]
    fn observer_hello_with_identity_material_is_malformed() {
        let s = setup();
        let mut hello = build_hello(None, &info(&s, 5), &s.alice_peer, &s.bob_peer);
        hello.signature = vec![0; 64];
        let err = verify_hello(&hello, &check(&s, s.alice_peer, s.bob_peer, 5)).unwrap_err();
        assert!(matches!(err, HelloError::Malformed(_)));
    }
}
