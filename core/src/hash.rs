//! Domain-separated BLAKE3 hashing.
//!
//! Every hash tiernet computes is `BLAKE3(tag ‖ data)` with a tag from
//! [`tags`]. Tags have the fixed shape `tiernet/<name>/v1` and none is a prefix
//! of another, so the concatenation is unambiguous (a unit test checks this).

use std::fmt;

/// Length in bytes of every tiernet hash and id.
pub const HASH_LEN: usize = 32;

/// Domain tags for hashing and signing. One tag per purpose, never reused.
pub mod tags {
    /// Header hash.
    pub const HEADER: &str = "tiernet/header/v1";
    /// Validator set hash.
    pub const VALIDATORS: &str = "tiernet/validators/v1";
    /// `zsi_id` derivation from the identity and VRF public keys.
    pub const ZSI: &str = "tiernet/zsi/v1";
    /// Signature over a vote.
    pub const VOTE: &str = "tiernet/vote/v1";
    /// Signature over a proposal.
    pub const PROPOSAL: &str = "tiernet/proposal/v1";
    /// Signature over a proof envelope.
    pub const PROOF: &str = "tiernet/proof/v1";
    /// Content id of a proof envelope (dedup key).
    pub const PROOF_ID: &str = "tiernet/proof-id/v1";
    /// Signature over a heartbeat.
    pub const HEARTBEAT: &str = "tiernet/heartbeat/v1";
    /// Signature over an uptime witness statement.
    pub const UPTIME_WITNESS: &str = "tiernet/uptime-witness/v1";
    /// Signature over a snapshot announcement.
    pub const SNAPSHOT: &str = "tiernet/snapshot/v1";
    /// Hash of a snapshot chunk.
    pub const SNAPSHOT_CHUNK: &str = "tiernet/snapshot-chunk/v1";
    /// Signature over a handshake `Hello`.
    pub const HELLO: &str = "tiernet/hello/v1";
    /// VRF input of the handshake.
    pub const HANDSHAKE_VRF: &str = "tiernet/handshake-vrf/v1";
    /// Link of the chain commitment accumulator.
    pub const CHAIN_COMMITMENT: &str = "tiernet/chain-commitment/v1";
    /// Gossipsub message id (content address of the data).
    pub const MESSAGE_ID: &str = "tiernet/message-id/v1";
    /// The chain commitment at height 0, derived from the genesis.
    pub const GENESIS_COMMITMENT: &str = "tiernet/genesis-commitment/v1";
    /// Leaf of the proofs Merkle tree (over a proof content id).
    pub const PROOFS_LEAF: &str = "tiernet/proofs-leaf/v1";
    /// Inner node of the proofs Merkle tree.
    pub const PROOFS_NODE: &str = "tiernet/proofs-node/v1";
    /// A block's `proofs_root`: the leaf count and the tree root.
    pub const PROOFS_ROOT: &str = "tiernet/proofs-root/v1";

    /// A vote rebroadcast: the voter's signature over the whole
    /// `VotesMessage` with its send time, so no third party can re-stamp it.
    pub const VOTE_REBROADCAST: &str = "tiernet/vote-rebroadcast/v1";

    /// All tags, for uniqueness checks.
    pub const ALL: &[&str] = &[
        HEADER,
        VALIDATORS,
        ZSI,
        VOTE,
        PROPOSAL,
        PROOF,
        PROOF_ID,
        HEARTBEAT,
        UPTIME_WITNESS,
        SNAPSHOT,
        SNAPSHOT_CHUNK,
        HELLO,
        HANDSHAKE_VRF,
        CHAIN_COMMITMENT,
        MESSAGE_ID,
        GENESIS_COMMITMENT,
        PROOFS_LEAF,
        PROOFS_NODE,
        PROOFS_ROOT,
        VOTE_REBROADCAST,
    ];
}

/// A 32-byte BLAKE3 digest or id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; HASH_LEN]);

impl Hash32 {
    /// The all-zero hash (the `prev_hash` of height 1).
    pub const ZERO: Hash32 = Hash32([0; HASH_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(Hash32)
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", &self.to_hex()[..16])
    }
}

/// Hex of a hash's first 8 bytes, for error messages.
pub(crate) fn short(hash: &Hash32) -> String {
    hex::encode(&hash.0[..8])
}

/// `BLAKE3(tag ‖ parts[0] ‖ parts[1] ‖ …)`.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(tag.as_bytes());
    for part in parts {
        hasher.update(part);
    }
    Hash32(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tag_is_a_prefix_of_another() {
        for a in tags::ALL {
            for b in tags::ALL {
                if a != b {
                    assert!(!b.starts_with(a), "{a} is a prefix of {b}");
                }
            }
        }
    }

    #[test]
    fn tagged_hash_is_blake3_of_the_concatenation() {
        let expected = blake3::hash(b"tiernet/header/v1abc");
        assert_eq!(tagged_hash(tags::HEADER, &[b"a", b"bc"]).0, *expected.as_bytes());
        assert_ne!(tagged_hash(tags::HEADER, &[b"abc"]), tagged_hash(tags::VOTE, &[b"abc"]));
    }
}
