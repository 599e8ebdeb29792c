//! Size caps and count bounds. Every decoder checks these before it trusts
//! or allocates anything; every value has a one-line reason.

/// Longest network id (`[a-z0-9-]`, it is part of every topic name).
pub const MAX_NETWORK_ID_LEN: usize = 32;
/// Largest validator set: quorum math and batch verification stay cheap
/// in a browser (100 validators verify in a few ms).
pub const MAX_VALIDATORS: usize = 256;
/// Proof envelopes in one block: bounds block building and verification.
pub const MAX_PROOFS_PER_BLOCK: usize = 1024;
/// Reputation events in one block: one per participant per block is plenty.
pub const MAX_REPUTATION_EVENTS_PER_BLOCK: usize = 4096;
/// Length of a proof kind name such as `uptime/v1`.
pub const MAX_PROOF_KIND_LEN: usize = 64;
/// Bytes of a proof statement.
pub const MAX_PROOF_STATEMENT: usize = 16 * 1024;
/// Bytes of a proof body; succinct proofs are well below this.
pub const MAX_PROOF_BYTES: usize = 128 * 1024;
/// Witnesses of one uptime proof.
pub const MAX_UPTIME_WITNESSES: usize = 64;
/// Handshake feature flags.
pub const MAX_FEATURES: usize = 16;
/// Length of one feature flag.
pub const MAX_FEATURE_LEN: usize = 64;
/// Length of an agent string (`tiernet-node/0.1.0`).
pub const MAX_AGENT_LEN: usize = 128;
/// Most round-trip times in one heartbeat (a mesh is at most 12 peers per
/// topic; 32 leaves room and keeps a heartbeat far below the meta cap).
pub const MAX_HEARTBEAT_RTTS: usize = 32;
/// Longest PeerId in a heartbeat's round-trip list (a PeerId is at most ~70
/// bytes with an inlined key; Ed25519 ones are 38).
pub const MAX_RTT_PEER_ID_LEN: usize = 64;
/// Headers in one sync response.
pub const MAX_HEADERS_PER_RESPONSE: usize = 256;
/// Steps in one chain proof (validator-set hand-offs plus the target).
pub const MAX_CHAIN_PROOF_STEPS: usize = 1024;
/// Chunks of one snapshot.
pub const MAX_SNAPSHOT_CHUNKS: usize = 65_536;
/// Entries in one snapshot chunk.
pub const MAX_CHUNK_ENTRIES: usize = 4096;
/// Bytes of a state key.
pub const MAX_STATE_KEY: usize = 256;
/// Bytes of a state value.
pub const MAX_STATE_VALUE: usize = 64 * 1024;
/// Siblings of a sparse Merkle proof: one per bit of a 256-bit key hash.
pub const MAX_PROOF_SIBLINGS: usize = 256;
/// Length of an error message in a response.
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Size cap of a `blocks` topic message (a proposal carries a whole block).
pub const MAX_BLOCKS_MESSAGE: usize = 4 * 1024 * 1024;
/// Size cap of a `votes` topic message (a certificate of 256 signatures is ~30 KiB).
pub const MAX_VOTES_MESSAGE: usize = 64 * 1024;
/// Size cap of a `proofs` topic message.
pub const MAX_PROOFS_MESSAGE: usize = 160 * 1024;
/// Size cap of a `snapshots` topic message (65,536 chunk hashes would not fit: large snapshots use larger chunks).
pub const MAX_SNAPSHOTS_MESSAGE: usize = 512 * 1024;
/// Size cap of a `meta` topic message (heartbeats are ~200 bytes).
pub const MAX_META_MESSAGE: usize = 4 * 1024;
/// Size cap of a handshake message.
pub const MAX_HANDSHAKE_MESSAGE: usize = 4 * 1024;
/// Size cap of a sync request: a `SubmitProofRequest` carries one proof
/// envelope (issue 19: a STARK registration), so the cap is that of a
/// `proofs` message; every other request is a few bytes.
pub const MAX_SYNC_REQUEST: usize = MAX_PROOFS_MESSAGE;
/// Size cap of a sync response.
pub const MAX_SYNC_RESPONSE: usize = 8 * 1024 * 1024;
/// Most addresses in one `PeersResponse` (issue 18: peer exchange).
pub const MAX_PEERS_PER_RESPONSE: usize = 32;
/// Longest address in a `PeersResponse`, in bytes of text.
pub const MAX_PEER_ADDR_LEN: usize = 256;
