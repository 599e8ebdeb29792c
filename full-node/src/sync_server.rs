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
//!
//! Every error is a [`proto::SyncError`] whose message says what was wrong
//! (which height is missing and which are available, which limit was hit).
//! The caller applies the per-peer rate limit, the concurrency limit and
//! the timeout (the `request_response` behaviour's settings); sizes are
//! capped by the codec and by the limits here.
//!
//! A node started with `--testing-forge-sync <kinds>` answers with forged
//! data ([`Forgeries`]: headers with a corrupted commit signature, state
//! values that are not the ones proven, chunks with an altered entry): the
//! light-client tests' dishonest peer. Never use it outside tests.

// The helpers' error is the response to send back, built once per request.
#![allow(clippy::result_large_err)]

use prost::Message;
use tiernet_core::wire::limits::MAX_SYNC_RESPONSE;
use tiernet_core::wire::proto::{self, sync_request, sync_response};

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
    /// Test-only: which answers to forge.
    pub forge: Forgeries,
}

/// Which sync answers a test-only dishonest node forges.
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
        let mut response = match request.kind {
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
        };
        forge(self.forge, &mut response);
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

    fn signed_header(&self, height: u64) -> Result<proto::SignedHeader, proto::SyncResponse> {
        let fb = self.signed_block(height)?;
        Ok(proto::SignedHeader {
            header: fb.block.and_then(|b| b.header),
            commit: fb.commit,
        })
    }

    fn headers(&self, from: u64, count: u32) -> proto::SyncResponse {
        let from = from.max(1);
        let count = count.clamp(1, MAX_HEADERS_PER_RESPONSE);
        if from > self.latest() {
            return not_found(format!("height {from} is not finalized yet (latest {})", self.latest()));
        }
        let mut headers = Vec::new();
        let mut size = 0usize;
        for height in from..from
            .saturating_add(u64::from(count))
            .min(self.latest().saturating_add(1))
        {
            match self.signed_header(height) {
                Ok(signed) => {
                    size = size.saturating_add(signed.encoded_len());
                    if size > MAX_SYNC_RESPONSE / 2 {
                        break;
                    }
                    headers.push(signed);
                }
                Err(e) if headers.is_empty() => return e,
                Err(_) => break,
            }
        }
        respond(sync_response::Kind::Headers(proto::HeadersResponse { headers }))
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

/// Test-only dishonesty: the answers `forge` names are altered so that
/// verification must fail.
fn forge(forge: Forgeries, response: &mut proto::SyncResponse) {
    fn forge_commit(commit: Option<&mut proto::CommitCertificate>) {
        if let Some(sig) = commit
            .and_then(|c| c.signatures.first_mut())
            .and_then(|s| s.signature.first_mut())
        {
            *sig ^= 0x01;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
