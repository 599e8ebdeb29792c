use std::fmt;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use schnorrkel::vrf::{VRFPreOut, VRFProof};
use schnorrkel::{ExpansionMode, MiniSecretKey, signing_context};

use super::keyfile::{self, KeyFileError, KeyOrigin, ParseError};
use crate::hash::{Hash32, tagged_hash, tags};

const MAGIC: &str = "tiernet-zsi-key/v1";
const HEADER: &str = "tiernet ZSI identity: Ed25519 identity key and sr25519 VRF key.\nKeep it private: it holds this participant's on-chain reputation.";
/// schnorrkel signing context of every tiernet VRF evaluation.
const VRF_CONTEXT: &[u8] = b"tiernet/vrf/v1";

/// A ZSI id: `BLAKE3("tiernet/zsi/v1" ‖ identity_pk ‖ vrf_pk)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZsiId(pub Hash32);

impl ZsiId {
    /// Parses 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Hash32::from_slice(bytes).map(ZsiId)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(ZsiId(Hash32(bytes)))
    }
}

impl fmt::Display for ZsiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ZsiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZsiId({})", &self.0.to_hex()[..16])
    }
}

/// The public half of a ZSI identity.
#[derive(Clone, PartialEq, Eq)]
pub struct ZsiPublic {
    /// Ed25519 identity key: signs Hellos, proofs, heartbeats.
    pub identity_key: VerifyingKey,
    /// sr25519 VRF key: proves handshake VRF outputs.
    pub vrf_key: schnorrkel::PublicKey,
}

impl ZsiPublic {
    /// Parses the two 32-byte keys.
    pub fn from_bytes(identity_key: &[u8], vrf_key: &[u8]) -> Result<Self, VrfError> {
        let identity: [u8; 32] = identity_key.try_into().map_err(|_| VrfError::BadIdentityKey)?;
        let identity_key = VerifyingKey::from_bytes(&identity).map_err(|_| VrfError::BadIdentityKey)?;
        let vrf_key = schnorrkel::PublicKey::from_bytes(vrf_key).map_err(|_| VrfError::BadVrfKey)?;
        Ok(Self { identity_key, vrf_key })
    }

    /// The ZSI id these keys derive.
    pub fn zsi_id(&self) -> ZsiId {
        ZsiId(tagged_hash(
            tags::ZSI,
            &[self.identity_key.as_bytes(), &self.vrf_key.to_bytes()],
        ))
    }

    /// Verifies a VRF output and proof over `input`; returns the VRF's
    /// pseudo-random value on success.
    pub fn vrf_verify(&self, input: &[u8], output: &[u8], proof: &[u8]) -> Result<[u8; 32], VrfError> {
        let preout = VRFPreOut::from_bytes(output).map_err(|_| VrfError::BadProof)?;
        let proof = VRFProof::from_bytes(proof).map_err(|_| VrfError::BadProof)?;
        let (inout, _) = self
            .vrf_key
            .vrf_verify(signing_context(VRF_CONTEXT).bytes(input), &preout, &proof)
            .map_err(|_| VrfError::BadProof)?;
        Ok(inout.make_bytes::<[u8; 32]>(b"tiernet/vrf-value"))
    }
}

impl fmt::Debug for ZsiPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZsiPublic").field("zsi_id", &self.zsi_id()).finish()
    }
}

/// A key or VRF proof that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrfError {
    /// The identity key is not a valid Ed25519 public key.
    #[error("identity key is not a valid Ed25519 public key")]
    BadIdentityKey,
    /// The VRF key is not a valid sr25519 public key.
    #[error("VRF key is not a valid sr25519 public key")]
    BadVrfKey,
    /// The VRF output or proof does not verify.
    #[error("VRF proof does not verify")]
    BadProof,
}

/// A participant's ZSI identity with its secrets.
#[derive(Clone)]
pub struct ZsiKeypair {
    identity: SigningKey,
    vrf_secret: MiniSecretKey,
    vrf: schnorrkel::Keypair,
}

impl ZsiKeypair {
    /// A fresh random identity.
    pub fn generate() -> Self {
        let mut identity = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut identity);
        let identity_key = SigningKey::from_bytes(&identity);
        let vrf_secret = MiniSecretKey::generate();
        zeroize::Zeroize::zeroize(&mut identity);
        Self::from_parts(identity_key, vrf_secret)
    }

    /// The identity with these two 32-byte secrets.
    pub fn from_secrets(identity: &[u8; 32], vrf: &[u8; 32]) -> Result<Self, VrfError> {
        let vrf_secret = MiniSecretKey::from_bytes(vrf).map_err(|_| VrfError::BadVrfKey)?;
        Ok(Self::from_parts(SigningKey::from_bytes(identity), vrf_secret))
    }

    fn from_parts(identity: SigningKey, vrf_secret: MiniSecretKey) -> Self {
        let vrf = vrf_secret.expand_to_keypair(ExpansionMode::Uniform);
        Self {
            identity,
            vrf_secret,
            vrf,
        }
    }

    /// A deterministic identity derived from a seed (devnets and tests;
    /// never for real participants).
    pub fn from_seed(seed: &[u8]) -> Result<Self, VrfError> {
        let identity = blake3::derive_key("tiernet zsi identity seed v1", seed);
        let vrf = blake3::derive_key("tiernet zsi vrf seed v1", seed);
        Self::from_secrets(&identity, &vrf)
    }

    /// The public keys.
    pub fn public(&self) -> ZsiPublic {
        ZsiPublic {
            identity_key: self.identity.verifying_key(),
            vrf_key: self.vrf.public,
        }
    }

    /// The ZSI id.
    pub fn zsi_id(&self) -> ZsiId {
        self.public().zsi_id()
    }

    /// The Ed25519 identity key, for signing wire messages.
    pub fn identity_key(&self) -> &SigningKey {
        &self.identity
    }

    /// Evaluates the VRF on `input`: returns the 32-byte pre-output and the 64-byte proof.
    pub fn vrf_sign(&self, input: &[u8]) -> ([u8; 32], [u8; 64]) {
        let (inout, proof, _) = self.vrf.vrf_sign(signing_context(VRF_CONTEXT).bytes(input));
        (inout.to_preout().to_bytes(), proof.to_bytes())
    }

    /// The identity in the key file format.
    pub fn to_file_contents(&self) -> zeroize::Zeroizing<String> {
        let vrf = zeroize::Zeroizing::new(self.vrf_secret.to_bytes());
        keyfile::format_secrets(HEADER, MAGIC, &[("identity", self.identity.as_bytes()), ("vrf", &vrf)])
    }

    /// Parses the key file format.
    pub fn from_file_contents(contents: &str) -> Result<Self, ParseError> {
        let [identity, vrf] = keyfile::parse_secrets(contents, MAGIC, ["identity", "vrf"])?;
        Self::from_secrets(&identity, &vrf).map_err(|e| ParseError(e.to_string()))
    }

    /// Loads the identity at `path`, or creates a new one (mode 0600) if there
    /// is no file. A file that exists but does not parse is an error and stays.
    pub fn load_or_create(path: &Path) -> Result<(Self, KeyOrigin), KeyFileError> {
        if let Some(key) = Self::load(path)? {
            return Ok((key, KeyOrigin::Loaded));
        }
        let key = Self::generate();
        keyfile::write_new(path, &key.to_file_contents())?;
        Ok((key, KeyOrigin::Created))
    }

    /// Loads the identity at `path`; `Ok(None)` if there is no file.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyFileError> {
        let Some(contents) = keyfile::read(path)? else {
            return Ok(None);
        };
        Self::from_file_contents(&contents)
            .map(Some)
            .map_err(|e| KeyFileError::Corrupt {
                path: path.to_owned(),
                kind: "ZSI",
                reason: e.0,
            })
    }

    /// Writes the identity to a new file (mode 0600); fails if one exists.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyFileError> {
        keyfile::write_new(path, &self.to_file_contents())
    }
}

impl fmt::Debug for ZsiKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZsiKeypair")
            .field("zsi_id", &self.zsi_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zsi_id_is_the_tagged_hash_of_both_keys() {
        let key = ZsiKeypair::from_seed(b"alice").unwrap();
        let public = key.public();
        let mut input = b"tiernet/zsi/v1".to_vec();
        input.extend_from_slice(public.identity_key.as_bytes());
        input.extend_from_slice(&public.vrf_key.to_bytes());
        assert_eq!(key.zsi_id().0.0, *blake3::hash(&input).as_bytes());
        assert_ne!(key.zsi_id(), ZsiKeypair::from_seed(b"bob").unwrap().zsi_id());
        assert_eq!(key.zsi_id(), ZsiKeypair::from_seed(b"alice").unwrap().zsi_id());
    }

    #[test]
    fn vrf_round_trip_and_binding_to_input_and_key() {
        let key = ZsiKeypair::from_seed(b"alice").unwrap();
        let (output, proof) = key.vrf_sign(b"input");
        let value = key.public().vrf_verify(b"input", &output, &proof).unwrap();
        // Deterministic: the same input gives the same value.
        let (output2, proof2) = key.vrf_sign(b"input");
        assert_eq!(output, output2);
        assert_eq!(value, key.public().vrf_verify(b"input", &output2, &proof2).unwrap());
        assert_eq!(
            key.public().vrf_verify(b"other", &output, &proof),
            Err(VrfError::BadProof)
        );
        let bob = ZsiKeypair::from_seed(b"bob").unwrap().public();
        assert_eq!(bob.vrf_verify(b"input", &output, &proof), Err(VrfError::BadProof));
        let mut bad = proof;
        bad[5] ^= 1;
        assert!(key.public().vrf_verify(b"input", &output, &bad).is_err());
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zsi_key");
        let (created, origin) = ZsiKeypair::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let (loaded, origin) = ZsiKeypair::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(created.zsi_id(), loaded.zsi_id());
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(ZsiKeypair::load(&path), Err(KeyFileError::Corrupt { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
    }
}
