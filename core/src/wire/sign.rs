//! Canonical signing bytes, signatures and content ids.
//!
//! A signature covers `tag ‖ encoding(message with its signature field
//! cleared)`. The canonical encoding is prost's: fields in tag order,
//! default values omitted. Unknown fields are dropped by the decoder, so a
//! message carrying fields this version does not know fails verification
//! rather than being accepted with unsigned content.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;

use super::proto;
use crate::hash::{Hash32, tagged_hash, tags};

/// A message that carries an Ed25519 signature over its own unsigned form.
pub trait SignedMessage: Message + Clone {
    /// Domain tag of the signature.
    const TAG: &'static str;
    /// The signature field.
    fn signature_field(&mut self) -> &mut Vec<u8>;

    /// `tag ‖ encoding(self without signature)`.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature_field().clear();
        let mut bytes = Self::TAG.as_bytes().to_vec();
        bytes.extend_from_slice(&unsigned.encode_to_vec());
        bytes
    }

    /// Signs in place with `key`.
    fn sign_with(&mut self, key: &SigningKey) {
        let signature = key.sign(&self.signing_bytes());
        *self.signature_field() = signature.to_bytes().to_vec();
    }

    /// Checks the signature against `key`.
    fn verify_with(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        let mut copy = self.clone();
        let signature = Signature::from_slice(copy.signature_field()).map_err(|_| SignatureError::Malformed)?;
        key.verify_strict(&self.signing_bytes(), &signature)
            .map_err(|_| SignatureError::Invalid { tag: Self::TAG })
    }
}

/// A signature that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature field is not 64 bytes.
    #[error("signature is not 64 bytes")]
    Malformed,
    /// The signature does not verify under the expected key.
    #[error("signature over {tag} does not verify")]
    Invalid {
        /// Domain tag of the message.
        tag: &'static str,
    },
    /// The key bytes are not a valid Ed25519 public key.
    #[error("public key is not a valid Ed25519 point")]
    BadKey,
}

macro_rules! signed {
    ($ty:ty, $tag:expr) => {
        impl SignedMessage for $ty {
            const TAG: &'static str = $tag;
            fn signature_field(&mut self) -> &mut Vec<u8> {
                &mut self.signature
            }
        }
    };
}

signed!(proto::Vote, tags::VOTE);
signed!(proto::Proposal, tags::PROPOSAL);
signed!(proto::ProofEnvelope, tags::PROOF);
signed!(proto::Heartbeat, tags::HEARTBEAT);
signed!(proto::SnapshotAnnouncement, tags::SNAPSHOT);
signed!(proto::Hello, tags::HELLO);

/// A vote rebroadcast (`rebroadcast_ms` set) is signed as a whole by the
/// vote's validator, send time included: a relay cannot re-stamp an old
/// vote to give it a new message id.
impl SignedMessage for proto::VotesMessage {
    const TAG: &'static str = tags::VOTE_REBROADCAST;
    fn signature_field(&mut self) -> &mut Vec<u8> {
        &mut self.rebroadcast_signature
    }
}

/// Signing bytes of an uptime witness:
/// `"tiernet/uptime-witness/v1" ‖ encoding(claim) ‖ witness ‖ heartbeats_seen (u32 big-endian)`.
///
/// `witness` is the witness's 32-byte `zsi_id`. The witness id and the count
/// have fixed lengths at the end, so the concatenation is unambiguous.
pub fn uptime_witness_signing_bytes(claim: &proto::UptimeClaim, witness: &[u8], heartbeats_seen: u32) -> Vec<u8> {
    let claim = claim.encode_to_vec();
    let mut bytes = Vec::with_capacity(tags::UPTIME_WITNESS.len() + claim.len() + witness.len() + 4);
    bytes.extend_from_slice(tags::UPTIME_WITNESS.as_bytes());
    bytes.extend_from_slice(&claim);
    bytes.extend_from_slice(witness);
    bytes.extend_from_slice(&heartbeats_seen.to_be_bytes());
    bytes
}

/// A witness's countersignature of `claim`: it saw `heartbeats_seen` of the
/// subject's heartbeats. `witness` is the witness's `zsi_id`; `key` its
/// identity key.
pub fn sign_uptime_witness(
    claim: &proto::UptimeClaim,
    witness: &[u8; 32],
    heartbeats_seen: u32,
    key: &SigningKey,
) -> proto::UptimeWitness {
    let signature = key.sign(&uptime_witness_signing_bytes(claim, witness, heartbeats_seen));
    proto::UptimeWitness {
        witness: witness.to_vec(),
        heartbeats_seen,
        signature: signature.to_bytes().to_vec(),
    }
}

/// Checks a witness's countersignature of `claim` against the witness's
/// identity key `key` (looked up by `witness.witness`).
pub fn verify_uptime_witness(
    claim: &proto::UptimeClaim,
    witness: &proto::UptimeWitness,
    key: &VerifyingKey,
) -> Result<(), SignatureError> {
    if witness.witness.len() != 32 {
        // A witness id of another length would make the signing bytes ambiguous.
        return Err(SignatureError::Invalid {
            tag: tags::UPTIME_WITNESS,
        });
    }
    let signature = Signature::from_slice(&witness.signature).map_err(|_| SignatureError::Malformed)?;
    key.verify_strict(
        &uptime_witness_signing_bytes(claim, &witness.witness, witness.heartbeats_seen),
        &signature,
    )
    .map_err(|_| SignatureError::Invalid {
        tag: tags::UPTIME_WITNESS,
    })
}

/// Parses an Ed25519 public key from wire bytes.
pub fn verifying_key(bytes: &[u8]) -> Result<VerifyingKey, SignatureError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SignatureError::BadKey)
}

/// `BLAKE3("tiernet/header/v1" ‖ encoding(header))`.
pub fn header_hash(header: &proto::Header) -> Hash32 {
    tagged_hash(tags::HEADER, &[&header.encode_to_vec()])
}

/// `BLAKE3("tiernet/validators/v1" ‖ encoding(set))`.
pub fn validators_hash(set: &proto::ValidatorSet) -> Hash32 {
    tagged_hash(tags::VALIDATORS, &[&set.encode_to_vec()])
}

/// Content id of a proof envelope: `BLAKE3("tiernet/proof-id/v1" ‖ encoding without signature)`.
/// Two submissions of the same proof by the same submitter share an id.
pub fn proof_content_id(envelope: &proto::ProofEnvelope) -> Hash32 {
    let mut unsigned = envelope.clone();
    unsigned.signature.clear();
    tagged_hash(tags::PROOF_ID, &[&unsigned.encode_to_vec()])
}

/// Gossipsub message id: `BLAKE3("tiernet/message-id/v1" ‖ data)`, a content address.
pub fn message_id(data: &[u8]) -> Hash32 {
    tagged_hash(tags::MESSAGE_ID, &[data])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn vote() -> proto::Vote {
        proto::Vote {
            network_id: "devnet".into(),
            vote_type: proto::VoteType::Precommit as i32,
            height: 7,
            round: 1,
            block_hash: vec![9; 32],
            validator: vec![1; 32],
            signature: vec![],
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let mut v = vote();
        v.sign_with(&key(1));
        assert_eq!(v.signature.len(), 64);
        v.verify_with(&key(1).verifying_key()).unwrap();
        assert!(v.verify_with(&key(2).verifying_key()).is_err());
    }

    #[test]
    fn every_signed_field_is_covered() {
        let mut v = vote();
        v.sign_with(&key(1));
        let pk = key(1).verifying_key();
        let mutations: Vec<fn(&mut proto::Vote)> = vec![
            |v| v.network_id = "other".into(),
            |v| v.vote_type = proto::VoteType::Prevote as i32,
            |v| v.height += 1,
            |v| v.round += 1,
            |v| v.block_hash = vec![],
            |v| v.validator[0] ^= 1,
            |v| v.signature[0] ^= 1,
        ];
        for mutate in mutations {
            let mut changed = v.clone();
            mutate(&mut changed);
            assert!(changed.verify_with(&pk).is_err());
        }
    }

    #[test]
    fn signing_bytes_start_with_the_tag_and_ignore_the_signature() {
        let mut v = vote();
        let before = v.signing_bytes();
        v.sign_with(&key(3));
        assert_eq!(before, v.signing_bytes());
        assert!(before.starts_with(tags::VOTE.as_bytes()));
    }

    fn claim() -> proto::UptimeClaim {
        proto::UptimeClaim {
            network_id: "devnet".into(),
            subject: vec![5; 32],
            from_height: 10,
            to_height: 20,
            heartbeats: 11,
        }
    }

    #[test]
    fn uptime_witness_signing_bytes_layout() {
        let bytes = uptime_witness_signing_bytes(&claim(), &[7; 32], 0x0102_0304);
        let mut expected = b"tiernet/uptime-witness/v1".to_vec();
        expected.extend_from_slice(&claim().encode_to_vec());
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn uptime_witness_covers_claim_witness_and_count() {
        let witness = sign_uptime_witness(&claim(), &[7; 32], 9, &key(7));
        let pk = key(7).verifying_key();
        verify_uptime_witness(&claim(), &witness, &pk).unwrap();
        assert!(verify_uptime_witness(&claim(), &witness, &key(8).verifying_key()).is_err());
        let mut other = claim();
        other.to_height += 1;
        assert!(verify_uptime_witness(&other, &witness, &pk).is_err());
        let mut other = claim();
        other.network_id = "testnet".into();
        assert!(verify_uptime_witness(&other, &witness, &pk).is_err());
        let mutations: Vec<fn(&mut proto::UptimeWitness)> = vec![
            |w| w.heartbeats_seen += 1,
            |w| w.witness[0] ^= 1,
            |w| w.signature[0] ^= 1,
            |w| w.witness.truncate(31),
            |w| w.signature.truncate(63),
        ];
        for mutate in mutations {
            let mut changed = witness.clone();
            mutate(&mut changed);
            assert!(verify_uptime_witness(&claim(), &changed, &pk).is_err());
        }
    }

    #[test]
    fn proof_content_id_ignores_the_signature() {
        let mut envelope = proto::ProofEnvelope {
            kind: "uptime/v1".into(),
            statement: vec![1, 2],
            proof: vec![3],
            submitter: vec![4; 32],
            height: 10,
            signature: vec![],
        };
        let id = proof_content_id(&envelope);
        envelope.sign_with(&key(4));
        assert_eq!(id, proof_content_id(&envelope));
        envelope.height = 11;
        assert_ne!(id, proof_content_id(&envelope));
    }
}
