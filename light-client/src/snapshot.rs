//! Snapshot download as a sans-IO state machine: a manifest verified
//! against a verified header, then chunks in order, each verified against
//! the manifest (its hash) and the header's `state_root` (its range proof)
//! before its entries are kept. The machine is the resume point: after a
//! disconnect, ask any peer for [`SnapshotSync::next_request`].

use tiernet_core::state::ChunkSummary;
use tiernet_core::verify::{self, VerifyError};
use tiernet_core::wire::proto;

/// Most entries a snapshot download keeps in memory.
pub const MAX_SNAPSHOT_ENTRIES: u64 = 10_000_000;

/// Why a manifest or chunk was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// It does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The snapshot is larger than this client keeps.
    #[error("snapshot of {entries} entries; this client keeps at most {MAX_SNAPSHOT_ENTRIES}")]
    TooLarge {
        /// Entries the manifest announces.
        entries: u64,
    },
    /// Not the chunk asked for.
    #[error("chunk {index} at height {height} answered a request for chunk {expected}")]
    WrongChunk {
        /// The chunk's height.
        height: u64,
        /// The chunk's index.
        index: u32,
        /// The index asked for.
        expected: u32,
    },
}

/// A snapshot being downloaded.
#[derive(Debug, Clone)]
pub struct SnapshotSync {
    manifest: proto::SnapshotManifest,
    previous: Option<ChunkSummary>,
    next_index: u32,
    entries: Vec<proto::StateEntry>,
}

impl SnapshotSync {
    /// Starts from `manifest`, checked against `header` (verified, at the
    /// manifest's height).
    pub fn new(header: &proto::Header, manifest: proto::SnapshotManifest) -> Result<Self, SnapshotError> {
        verify::verify_snapshot_manifest(header, &manifest)?;
        if manifest.total_entries > MAX_SNAPSHOT_ENTRIES {
            return Err(SnapshotError::TooLarge {
                entries: manifest.total_entries,
            });
        }
        Ok(Self {
            manifest,
            previous: None,
            next_index: 0,
            entries: Vec::new(),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &proto::SnapshotManifest {
        &self.manifest
    }

    /// The next chunk to ask for (`None` when complete).
    pub fn next_request(&self) -> Option<proto::SnapshotChunkRequest> {
        (self.next_index < self.manifest.chunk_count).then_some(proto::SnapshotChunkRequest {
            height: self.manifest.height,
            index: self.next_index,
        })
    }

    /// Verifies the next chunk and keeps its entries.
    pub fn handle_chunk(&mut self, chunk: &proto::SnapshotChunk) -> Result<(), SnapshotError> {
        if chunk.index != self.next_index || chunk.height != self.manifest.height {
            return Err(SnapshotError::WrongChunk {
                height: chunk.height,
                index: chunk.index,
                expected: self.next_index,
            });
        }
        let summary = verify::verify_snapshot_chunk(&self.manifest, chunk, self.previous.as_ref())?;
        self.entries.extend(chunk.entries.iter().cloned());
        self.previous = Some(summary);
        self.next_index += 1;
        Ok(())
    }

    /// Chunks verified, and chunks in all.
    pub fn progress(&self) -> (u32, u32) {
        (self.next_index, self.manifest.chunk_count)
    }

    /// Whether every chunk is verified.
    pub fn is_complete(&self) -> bool {
        self.next_index >= self.manifest.chunk_count
    }

    /// The verified entries so far, in key-hash order.
    pub fn entries(&self) -> &[proto::StateEntry] {
        &self.entries
    }
}
