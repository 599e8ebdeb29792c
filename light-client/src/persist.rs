//! Persisted trust: the verified head (its header and the validator set
//! that signs the next height) and the addresses of peers that answered
//! well, as bytes an app can keep (a file natively and on mobile, IndexedDB
//! in a browser) and give back on the next start.
//!
//! Format (version 1), all lengths big-endian `u32`:
//! `"TNLT" 1 | len header | len validators | n | n × (len addr) | tagged hash of all before`.
//! The same bytes are the checkpoint export ([`Checkpoint::to_bytes`]).
//! Loading checks the hash, the bounds, the network and that the validator
//! set hashes to the header's `next_validators_hash`; whether the state is
//! recent enough (the trusting period) is the caller's decision
//! ([`crate::sync::LightSync::within_trusting_period`]).

use prost::Message;
use tiernet_core::hash::tagged_hash;
use tiernet_core::verify::TrustedState;
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::proto;

use crate::sync::Checkpoint;

/// Largest persisted trust accepted (a header and a validator set are a
/// few KiB; 1 MiB leaves room for big sets).
pub const MAX_TRUST_BYTES: usize = 1024 * 1024;
/// Most peer addresses kept with the trust.
pub const MAX_SAVED_PEERS: usize = 32;
const MAGIC: &[u8; 4] = b"TNLT";
const VERSION: u8 = 1;
const TAG: &str = "tiernet/light/trust/v1";

/// Why persisted trust cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// The bytes are not persisted trust (truncated, wrong magic, version,
    /// checksum, too big).
    #[error("not a saved trusted state: {0}")]
    Format(&'static str),
    /// A part does not decode.
    #[error("saved trusted state: {0} does not decode")]
    Decode(&'static str),
    /// It is for another network.
    #[error("saved trusted state is for network {found}, not {expected}")]
    Network {
        /// The client's network.
        expected: String,
        /// The saved one.
        found: String,
    },
    /// Header and validator set do not hold together.
    #[error("saved trusted state does not hold together: {0}")]
    Verify(String),
    /// Only a state past the genesis can be saved (the genesis is the
    /// app's checkpoint already).
    #[error("nothing past the checkpoint is verified yet")]
    NothingToSave,
    /// The file could not be read or written.
    #[error("trust file {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A trusted state and the peers that answered well.
#[derive(Debug, Clone)]
pub struct SavedTrust {
    /// The trusted state (a verified header and the next validator set).
    pub state: TrustedState,
    /// Addresses of peers that answered well (dial hints, not trusted).
    pub peers: Vec<String>,
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PersistError> {
        if self.0.len() < n {
            return Err(PersistError::Format("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, PersistError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn chunk(&mut self) -> Result<&'a [u8], PersistError> {
        let n = self.u32()?;
        self.take(n)
    }
}

/// Encodes `state` (which must have a header and its next validator set)
/// with up to [`MAX_SAVED_PEERS`] of `peers`.
pub fn encode(state: &TrustedState, peers: &[String]) -> Result<Vec<u8>, PersistError> {
    let header = state.header().ok_or(PersistError::NothingToSave)?;
    let validators = state.next_validators().ok_or(PersistError::NothingToSave)?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put(&mut out, &header.encode_to_vec());
    put(&mut out, &validators.as_proto().encode_to_vec());
    let peers: Vec<&String> = peers.iter().filter(|p| p.len() <= 256).take(MAX_SAVED_PEERS).collect();
    out.extend_from_slice(&(peers.len() as u32).to_be_bytes());
    for peer in peers {
        put(&mut out, peer.as_bytes());
    }
    let sum = tagged_hash(TAG, &[&out]);
    out.extend_from_slice(sum.as_bytes());
    Ok(out)
}

/// Decodes and checks saved trust for `network`.
pub fn decode(bytes: &[u8], network: &NetworkId) -> Result<SavedTrust, PersistError> {
    if bytes.len() > MAX_TRUST_BYTES {
        return Err(PersistError::Format("too big"));
    }
    if bytes.len() < MAGIC.len() + 1 + 32 {
        return Err(PersistError::Format("truncated"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if tagged_hash(TAG, &[body]).as_bytes() != sum {
        return Err(PersistError::Format("checksum mismatch"));
    }
    let mut r = Reader(body);
    if r.take(4)? != MAGIC {
        return Err(PersistError::Format("wrong magic"));
    }
    if r.take(1)? != [VERSION] {
        return Err(PersistError::Format("unknown version"));
    }
    let header = proto::Header::decode(r.chunk()?).map_err(|_| PersistError::Decode("the header"))?;
    let validators = proto::ValidatorSet::decode(r.chunk()?).map_err(|_| PersistError::Decode("the validator set"))?;
    let count = r.u32()?;
    if count > MAX_SAVED_PEERS {
        return Err(PersistError::Format("too many peers"));
    }
    let mut peers = Vec::with_capacity(count);
    for _ in 0..count {
        let peer = std::str::from_utf8(r.chunk()?).map_err(|_| PersistError::Decode("a peer address"))?;
        peers.push(peer.to_owned());
    }
    if !r.0.is_empty() {
        return Err(PersistError::Format("trailing bytes"));
    }
    if header.network_id != network.to_string() {
        return Err(PersistError::Network {
            expected: network.to_string(),
            found: header.network_id,
        });
    }
    let state = TrustedState::from_header(header)
        .and_then(|s| s.with_next_validators(&validators))
        .map_err(|e| PersistError::Verify(e.to_string()))?;
    Ok(SavedTrust { state, peers })
}

impl Checkpoint {
    /// The checkpoint as bytes (the persisted-trust format without peers),
    /// for export; `None` for the genesis (export the genesis file instead).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        encode(&self.state, &[]).ok()
    }

    /// A checkpoint exported with [`Checkpoint::to_bytes`] (or saved trust),
    /// checked for `network`.
    pub fn from_bytes(bytes: &[u8], network: &NetworkId) -> Result<Self, PersistError> {
        Ok(Checkpoint::from(decode(bytes, network)?.state))
    }
}

/// Reads saved trust from `path` (`Ok(None)`: no file yet).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_file(path: &std::path::Path, network: &NetworkId) -> Result<Option<SavedTrust>, PersistError> {
    let io = |e: std::io::Error| PersistError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > MAX_TRUST_BYTES as u64 {
        return Err(PersistError::Format("too big"));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    decode(&bytes, network).map(Some)
}

/// Writes `bytes` to `path` atomically (a temporary file, then a rename).
#[cfg(not(target_arch = "wasm32"))]
pub fn save_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |e: std::io::Error| PersistError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
