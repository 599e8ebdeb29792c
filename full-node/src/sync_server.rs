//! Answers `/tiernet/sync/1` requests from the chain's stores.
//!
//! | request | answer |
//! |---|---|
//! | `Headers { from_height, count }` | up to [`MAX_HEADERS_PER_RESPONSE`] consecutive signed headers |
//! | `Block { height }` | the finalized block (block and commit) |
//! | `ChainProof { trusted_height, target_height }` | one step per validator-set change after the trusted height, then the target (0 = latest) |
//! | `State { key, height }` | the value (or its absence) with its proof and the signed header whose `state_root` it is proven against (0 = latest) |
//! | `SnapshotManifest { height }` | the manifest of a kept snapshot (0 = latest) |
//! | `SnapshotChunk { height, index }` | one chunk of a kept snapshot, with its range proof |
//! | `Peers {}` | up to [`MAX_PEERS_PER_RESPONSE`] dialable addresses of other connected peers ([`peer_addrs`]) |
//!
//! Every error is a [`proto::SyncError`] whose message says what was wrong
//! (which height is missing and which are available, which limit was hit).
//! The caller applies the per-peer rate limit, the concurrency limit and
//! the timeout (the `request_response` behaviour's settings); sizes are
//! capped by the codec and by the limits here.
//!
//! Headers (for `Headers`, chain proofs and state answers) come from the
//! block store's header index ([`BlockStore::signed_headers`]): a range of
//! 64 headers reads 64 small rows and decodes no block, whatever the
//! blocks' bodies hold.
//!
//! A node built with the cargo feature `testing` and started with
//! `--testing-forge-sync <kinds>` answers with forged data ([`Forgeries`]:
//! headers with a corrupted commit signature, state values that are not the
//! ones proven, chunks with an altered entry): the light-client tests'
//! dishonest peer. A release build has no forging code; its [`Forgeries`]
//! is always empty.
//!
//! [`BlockStore::signed_headers`]: crate::block_store::BlockStore::signed_headers

// The helpers' error is the response to send back, built once per request.
#![allow(clippy::result_large_err)]

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use prost::Message;
use tiernet_core::wire::limits::{MAX_PEER_ADDR_LEN, MAX_PEERS_PER_RESPONSE, MAX_SYNC_RESPONSE};
use tiernet_core::wire::proto::{self, sync_request, sync_response};

use crate::block_store::BlockStore;
use crate::consensus::chain::Chain;
use crate::snapshots::{SnapshotError, Snapshots};

/// Most headers one response carries.
pub const MAX_HEADERS_PER_RESPONSE: u32 = 64;
/// Most validator-set changes one chain proof spans; a client further
/// behind asks again from the last step it verified.
pub const MAX_CHAIN_PROOF_STEPS: usize = 128;

/// What serves sync requests: the chain, and its snapshots if any.
#[derive(Debug, Clone, Copy)]
pub struct SyncServer<'a> {
    /// The chain (blocks, state tree, validator-set changes).
    pub chain: &'a Chain,
    /// Kept snapshots (`None`: this node keeps none).
    pub snapshots: Option<&'a Snapshots>,
    /// Test-only: which answers to forge (ignored without the cargo feature
    /// `testing`).
    pub forge: Forgeries,
    /// What a `Peers` request is answered with (see [`peer_addrs`]).
    pub peers: &'a [String],
}

/// The answer to a `Peers` request from `requester`: dialable addresses of
/// the other peers in `known`, each checked (parses, is not a relay
/// circuit, names no other peer in `/p2p`, at most [`MAX_PEER_ADDR_LEN`]
/// bytes) and ending in `/p2p/<peer>`; at most [`MAX_PEERS_PER_RESPONSE`],
/// at most 4 per peer, in the order given.
pub fn peer_addrs<'a>(known: impl IntoIterator<Item = (PeerId, &'a [Multiaddr])>, requester: &PeerId) -> Vec<String> {
    let mut out = Vec::new();
    for (peer, addrs) in known {
        if peer == *requester {
            continue;
        }
        let mut taken = 0;
        for addr in addrs {
            if out.len() >= MAX_PEERS_PER_RESPONSE {
                return out;
            }
            if taken >= 4 {
                break;
            }
            let mut checked = Multiaddr::empty();
            let mut ok = true;
            for protocol in addr.iter() {
                match protocol {
                    Protocol::P2pCircuit => ok = false,
                    Protocol::P2p(id) if id != peer => ok = false,
                    Protocol::P2p(_) => {}
                    other => checked.push(other),
                }
            }
            if !ok || checked.is_empty() {
                continue;
            }
            checked.push(Protocol::P2p(peer));
            let text = checked.to_string();
            if text.len() <= MAX_PEER_ADDR_LEN && !out.contains(&text) {
                out.push(text);
                taken += 1;
            }
        }
    }
    out
}

/// Which sync answers a test-only dishonest node forges (only a build with
/// the cargo feature `testing` can set any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgeries {
    /// Headers, blocks and chain proofs (a corrupted commit signature).
    pub headers: bool,
    /// State values (not the value proven).
    pub state: bool,
    /// Snapshot chunks (an altered entry).
    pub chunks: bool,
}

impl Forgeries {
    /// Parses `""` (nothing), `all`, or a comma-separated list of
    /// `headers`, `state`, `chunks`.
    #[cfg(feature = "testing")]
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut forgeries = Self::default();
        for kind in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match kind {
                "all" => {
                    forgeries = Self {
                        headers: true,
                        state: true,
                        chunks: true,
                    }
                }
                "headers" => forgeries.headers = true,
                "state" => forgeries.state = true,
                "chunks" => forgeries.chunks = true,
                other => {
                    return Err(format!(
                        "{other:?} is not a forgery kind; expected headers, state, chunks or all"
                    ));
                }
            }
        }
        Ok(forgeries)
    }
}

/// A sync error response.
pub fn error(code: proto::SyncErrorCode, message: impl Into<String>) -> proto::SyncResponse {
    proto::SyncResponse {
        kind: Some(sync_response::Kind::Error(proto::SyncError {
            code: code as i32,
            message: message.into(),
        })),
    }
}

fn not_found(message: impl Into<String>) -> proto::SyncResponse {
    error(proto::SyncErrorCode::NotFound, message)
}

fn internal(what: &str, e: impl std::fmt::Display) -> proto::SyncResponse {
    tracing::warn!(error = %e, "sync: {what}");
    error(proto::SyncErrorCode::Internal, format!("{what}: {e}"))
}

fn respond(kind: sync_response::Kind) -> proto::SyncResponse {
    proto::SyncResponse { kind: Some(kind) }
}

impl SyncServer<'_> {
    /// The answer to `request`.
    pub fn answer(&self, request: proto::SyncRequest) -> proto::SyncResponse {
        let response = match request.kind {
            None => error(proto::SyncErrorCode::BadRequest, "empty request (no kind set)"),
            Some(sync_request::Kind::Headers(r)) => self.headers(r.from_height, r.count),
            Some(sync_request::Kind::Block(r)) => match self.signed_block(r.height) {
                Ok(fb) => respond(sync_response::Kind::Block(fb)),
                Err(e) => e,
            },
            Some(sync_request::Kind::ChainProof(r)) => self.chain_proof(r.trusted_height, r.target_height),
            Some(sync_request::Kind::State(r)) => self.state(r.key, r.height),
            Some(sync_request::Kind::SnapshotManifest(r)) => self.manifest(r.height),
            Some(sync_request::Kind::SnapshotChunk(r)) => self.chunk(r.height, r.index),
            // Needs the mempool and gossip: the node loop answers it.
            Some(sync_request::Kind::SubmitProof(_)) => error(
                proto::SyncErrorCode::BadRequest,
                "submit_proof is answered by the node, not the store",
            ),
            Some(sync_request::Kind::Peers(_)) => respond(sync_response::Kind::Peers(proto::PeersResponse {
                addrs: self.peers.iter().take(MAX_PEERS_PER_RESPONSE).cloned().collect(),
            })),
        };
        #[cfg(feature = "testing")]
        let response = forge(self.forge, response);
        response
    }

    fn latest(&self) -> u64 {
        self.chain.ledger().height()
    }

    /// `height` (0 = latest), or a not-found answer naming what there is.
    fn resolve(&self, height: u64) -> Result<u64, proto::SyncResponse> {
        let latest = self.latest();
        match height {
            0 if latest == 0 => Err(not_found("no block is finalized yet")),
            0 => Ok(latest),
            h if h > latest => Err(not_found(format!("height {h} is not finalized yet (latest {latest})"))),
            h => Ok(h),
        }
    }

    fn signed_block(&self, height: u64) -> Result<proto::FinalizedBlock, proto::SyncResponse> {
        let height = self.resolve(height)?;
        match self.chain.block(height) {
            Ok(Some(fb)) => Ok(fb),
            Ok(None) => Err(not_found(format!(
                "no block at height {height} in this node's store (latest {})",
                self.latest()
            ))),
            Err(e) => Err(internal("cannot read the block store", e)),
        }
    }

    /// The signed header at `height` (0 = latest), from the header index.
    fn signed_header(&self, height: u64) -> Result<proto::SignedHeader, proto::SyncResponse> {
        let height = self.resolve(height)?;
        match self.chain.block_store().signed_header(height) {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(not_found(format!(
                "no header at height {height} in this node's store (latest {})",
                self.latest()
            ))),
            Err(e) => Err(internal("cannot read the header index", e)),
        }
    }

    fn headers(&self, from: u64, count: u32) -> proto::SyncResponse {
        headers_answer(self.chain.block_store(), self.latest(), from, count)
    }

    /// The set that signs `height` (the `validators` state entry after
    /// `height - 1`).
    fn signing_set(&self, height: u64) -> Result<proto::ValidatorSet, proto::SyncResponse> {
        let key = tiernet_core::state::validators_key();
        let value = self
            .chain
            .state()
            .get(key, height.saturating_sub(1))
            .map_err(|e| internal("cannot read the validator set", e))?
            .ok_or_else(|| not_found(format!("no validator set recorded before height {height}")))?;
        proto::ValidatorSet::decode(value.as_slice()).map_err(|e| internal("stored validator set does not decode", e))
    }

    fn chain_proof(&self, trusted: u64, target: u64) -> proto::SyncResponse {
        if target == 0 && self.latest() <= trusted {
            return not_found(format!(
                "nothing finalized above height {trusted} yet (latest {})",
                self.latest()
            ));
        }
        let target = match self.resolve(target) {
            Ok(t) => t,
            Err(e) => return e,
        };
        if target <= trusted {
            return error(
                proto::SyncErrorCode::BadRequest,
                format!("target height {target} is not above the trusted height {trusted}"),
            );
        }
        // Heights whose block hands trust to a different set: each is a step.
        let changes: Vec<u64> = self.chain.set_changes(trusted + 1, target - 1);
        if changes.len() >= MAX_CHAIN_PROOF_STEPS {
            let last = changes[MAX_CHAIN_PROOF_STEPS - 2];
            return error(
                proto::SyncErrorCode::BadRequest,
                format!(
                    "{} validator-set changes between {trusted} and {target}, more than one proof carries \
                     ({MAX_CHAIN_PROOF_STEPS}); ask for a proof to height {last} first",
                    changes.len()
                ),
            );
        }
        let mut steps = Vec::with_capacity(changes.len() + 1);
        for height in changes.into_iter().chain(std::iter::once(target)) {
            let header = match self.signed_header(height) {
                Ok(h) => h,
                Err(e) => return e,
            };
            let validators = match self.signing_set(height) {
                Ok(v) => v,
                Err(e) => return e,
            };
            steps.push(proto::ChainProofStep {
                header: Some(header),
                validators: Some(validators),
            });
        }
        let proof = proto::ChainProof {
            trusted_height: trusted,
            steps,
        };
        if proof.encoded_len() > MAX_SYNC_RESPONSE {
            return error(
                proto::SyncErrorCode::BadRequest,
                "the chain proof would exceed the response size cap; ask for a nearer target",
            );
        }
        respond(sync_response::Kind::ChainProof(proof))
    }

    fn state(&self, key: Vec<u8>, height: u64) -> proto::SyncResponse {
        if key.is_empty() || key.len() > tiernet_core::wire::limits::MAX_STATE_KEY {
            return error(
                proto::SyncErrorCode::BadRequest,
                format!(
                    "state key of {} bytes (1 to {} allowed)",
                    key.len(),
                    tiernet_core::wire::limits::MAX_STATE_KEY
                ),
            );
        }
        let height = match self.resolve(height) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let header = match self.signed_header(height) {
            Ok(h) => h,
            Err(e) => return e,
        };
        match self.chain.state().get_with_proof(&key, height) {
            Ok((value, proof)) => respond(sync_response::Kind::State(proto::StateValueResponse {
                height,
                key,
                value,
                proof: Some(proof),
                header: Some(header),
            })),
            Err(e) => internal("cannot prove the state value", e),
        }
    }

    fn manifest(&self, height: u64) -> proto::SyncResponse {
        let Some(snapshots) = self.snapshots else {
            return not_found("this node keeps no snapshots");
        };
        match snapshots.manifest(height) {
            Ok(Some(manifest)) => respond(sync_response::Kind::SnapshotManifest(manifest)),
            Ok(None) => not_found(match snapshots.heights() {
                Ok(kept) if kept.is_empty() => "no snapshot taken yet".to_owned(),
                Ok(kept) => format!("no snapshot at height {height}; kept: {kept:?}"),
                Err(e) => format!("no snapshot at height {height} ({e})"),
            }),
            Err(e) => internal("cannot read snapshots", e),
        }
    }

    fn chunk(&self, height: u64, index: u32) -> proto::SyncResponse {
        let Some(snapshots) = self.snapshots else {
            return not_found("this node keeps no snapshots");
        };
        match snapshots.chunk(height, index, self.chain.state()) {
            Ok(chunk) => respond(sync_response::Kind::SnapshotChunk(chunk)),
            Err(e @ (SnapshotError::NoSuchSnapshot { .. } | SnapshotError::NoSuchChunk { .. })) => {
                not_found(e.to_string())
            }
            Err(e) => internal("cannot read the snapshot chunk", e),
        }
    }
}

/// The answer to `Headers { from, count }` on a chain whose latest height is
/// `latest`: up to [`MAX_HEADERS_PER_RESPONSE`] consecutive signed headers,
/// at most half the response cap in total, read from the header index only
/// (no block is read or decoded).
pub fn headers_answer(blocks: &BlockStore, latest: u64, from: u64, count: u32) -> proto::SyncResponse {
    let from = from.max(1);
    let count = count.clamp(1, MAX_HEADERS_PER_RESPONSE);
    if from > latest {
        return not_found(format!("height {from} is not finalized yet (latest {latest})"));
    }
    let to = from.saturating_add(u64::from(count) - 1).min(latest);
    match blocks.signed_headers(from, to, MAX_SYNC_RESPONSE / 2) {
        Ok(headers) if headers.is_empty() => not_found(format!(
            "no header at height {from} in this node's store (latest {latest})"
        )),
        Ok(headers) => respond(sync_response::Kind::Headers(proto::HeadersResponse { headers })),
        Err(e) => internal("cannot read the header index", e),
    }
}

/// Test-only dishonesty: the answers `forge` names are altered so that
/// verification must fail.
#[cfg(feature = "testing")]
fn forge(forge: Forgeries, mut response: proto::SyncResponse) -> proto::SyncResponse {
    // Every signature: a light client checks only a quorum's worth
    // (highest power first), so one bad signature beyond it leaves a
    // header that is still proven, not a forgery it must catch.
    fn forge_commit(commit: Option<&mut proto::CommitCertificate>) {
        for signature in commit.into_iter().flat_map(|c| c.signatures.iter_mut()) {
            if let Some(byte) = signature.signature.first_mut() {
                *byte ^= 0x01;
            }
        }
    }
    match response.kind.as_mut() {
        Some(sync_response::Kind::Headers(r)) if forge.headers => {
            r.headers.iter_mut().for_each(|h| forge_commit(h.commit.as_mut()));
        }
        Some(sync_response::Kind::Block(fb)) if forge.headers => forge_commit(fb.commit.as_mut()),
        Some(sync_response::Kind::ChainProof(p)) if forge.headers => {
            forge_commit(
                p.steps
                    .last_mut()
                    .and_then(|s| s.header.as_mut())
                    .and_then(|h| h.commit.as_mut()),
            );
        }
        Some(sync_response::Kind::State(s)) if forge.state => {
            s.value = Some(match s.value.take() {
                Some(mut v) => {
                    v.push(0xFF);
                    v
                }
                None => b"forged".to_vec(),
            });
        }
        Some(sync_response::Kind::SnapshotChunk(c)) if forge.chunks => {
            if let Some(entry) = c.entries.first_mut() {
                entry.value.push(0xFF);
            }
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_checked_bounded_and_never_the_requester() {
        let (a, b, me, other) = (PeerId::random(), PeerId::random(), PeerId::random(), PeerId::random());
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let with_a: Multiaddr = format!("/ip4/127.0.0.1/tcp/4002/p2p/{a}").parse().unwrap();
        let foreign: Multiaddr = format!("/ip4/127.0.0.1/tcp/4003/p2p/{other}").parse().unwrap();
        let relay: Multiaddr = format!("/ip4/127.0.0.1/tcp/4004/p2p/{other}/p2p-circuit")
            .parse()
            .unwrap();
        let known_a = [tcp.clone(), with_a, foreign, relay];
        let known_me = [tcp.clone()];
        let many: Vec<Multiaddr> = (0..100u16)
            .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 5000 + i).parse().unwrap())
            .collect();
        let addrs = peer_addrs([(a, &known_a[..]), (me, &known_me[..]), (b, &many[..])], &me);
        assert_eq!(addrs[0], format!("/ip4/127.0.0.1/tcp/4001/p2p/{a}"));
        assert_eq!(addrs[1], format!("/ip4/127.0.0.1/tcp/4002/p2p/{a}"));
        assert!(addrs.iter().all(|x| !x.contains(&me.to_string())), "{addrs:?}");
        assert!(addrs.iter().all(|x| !x.contains(&other.to_string())), "{addrs:?}");
        assert_eq!(
            addrs.iter().filter(|x| x.ends_with(&b.to_string())).count(),
            4,
            "at most 4 per peer"
        );
        // Never more than the cap, whatever is known.
        let peers: Vec<(PeerId, Vec<Multiaddr>)> = (0..50).map(|_| (PeerId::random(), many.clone())).collect();
        let addrs = peer_addrs(peers.iter().map(|(p, a)| (*p, &a[..])), &me);
        assert_eq!(addrs.len(), MAX_PEERS_PER_RESPONSE);
    }

    #[cfg(feature = "testing")]
    #[test]
    fn forgery_kinds_parse_and_unknown_ones_are_refused() {
        assert_eq!(Forgeries::parse("").unwrap(), Forgeries::default());
        let all = Forgeries::parse("all").unwrap();
        assert!(all.headers && all.state && all.chunks);
        let two = Forgeries::parse("state, chunks").unwrap();
        assert!(!two.headers && two.state && two.chunks);
        let err = Forgeries::parse("headers,votes").unwrap_err();
        assert!(err.contains("\"votes\""), "{err}");
    }

    use crate::block_store::tests::{big_block, raw_block_row};
    use crate::store::Store;

    fn heights(response: &proto::SyncResponse) -> Vec<u64> {
        match &response.kind {
            Some(sync_response::Kind::Headers(r)) => {
                r.headers.iter().map(|h| h.header.as_ref().unwrap().height).collect()
            }
            other => panic!("not headers: {other:?}"),
        }
    }

    /// 64 headers are served from the header index without reading a
    /// block: every block row is replaced by bytes that do not decode, and
    /// the answer is still complete and equal to the blocks' headers.
    #[test]
    fn serving_64_headers_decodes_no_block() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockStore::new(Store::open(&dir.path().join("node.redb")).unwrap());
        let latest = 70;
        let mut expected = Vec::new();
        for height in 1..=latest {
            // Bodies of 64 KiB: decoding 64 blocks would cost 4 MiB.
            let block = big_block(height, 64 * 1024, 4);
            blocks.put(height, &block).unwrap();
            expected.push(crate::block_store::signed_header_of(&block));
        }
        for height in 1..=latest {
            raw_block_row(&blocks, height, b"\xff\xff not a block");
        }
        assert!(blocks.get(3).is_err(), "block rows no longer decode");

        let response = headers_answer(&blocks, latest, 3, 64);
        assert_eq!(heights(&response), (3..67).collect::<Vec<_>>());
        let Some(sync_response::Kind::Headers(served)) = response.kind else {
            unreachable!()
        };
        assert_eq!(served.headers, expected[2..66]);
        // The count is capped at 64 and clipped at the latest height.
        assert_eq!(heights(&headers_answer(&blocks, latest, 1, 1_000)).len(), 64);
        assert_eq!(
            heights(&headers_answer(&blocks, latest, 60, 64)),
            (60..=70).collect::<Vec<_>>()
        );
        assert_eq!(heights(&headers_answer(&blocks, latest, 0, 1)), vec![1], "0 means 1");
    }

    #[test]
    fn headers_beyond_the_chain_or_missing_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockStore::new(Store::open(&dir.path().join("node.redb")).unwrap());
        let not_found = |response: proto::SyncResponse| match response.kind {
            Some(sync_response::Kind::Error(e)) => {
                assert_eq!(e.code, proto::SyncErrorCode::NotFound as i32);
                e.message
            }
            other => panic!("not an error: {other:?}"),
        };
        let message = not_found(headers_answer(&blocks, 5, 6, 1));
        assert!(
            message.contains("height 6 is not finalized yet (latest 5)"),
            "{message}"
        );
        let message = not_found(headers_answer(&blocks, 5, 2, 3));
        assert!(message.contains("no header at height 2"), "{message}");
        // A gap ends the range.
        blocks.put(1, &big_block(1, 10, 1)).unwrap();
        blocks.put(3, &big_block(3, 10, 1)).unwrap();
        assert_eq!(heights(&headers_answer(&blocks, 3, 1, 3)), vec![1]);
    }
}
