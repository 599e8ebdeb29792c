//! Finalized blocks and the double-sign guard, in the node's redb store.
//!
//! Table `blocks`: height (u64) → encoded [`proto::FinalizedBlock`] (block
//! and the commit that finalized it). Written in one durable transaction
//! before the node publishes the finalized block or starts the next height,
//! so after a crash the chain resumes from the last block on disk.
//!
//! Table `headers`: height (u64) → encoded [`proto::SignedHeader`] (the
//! block's header and the commit that finalized it): the header index.
//! [`BlockStore::put`] writes it in the same transaction as the block, so
//! the two tables always agree. Sync requests for headers, chain proofs and
//! state read it ([`BlockStore::signed_headers`]) and never decode a whole
//! block: a block's body (proofs, events) may be megabytes, its header row
//! is a few hundred bytes plus the commit's signatures. A store written
//! before the index existed is filled in by [`BlockStore::open`]
//! (in batches of [`BACKFILL_BATCH`] blocks, one transaction each).
//!
//! Table `signed`: `(height, round, kind)` → the hash this validator signed
//! for (empty = nil). [`BlockStore::guard`] records a vote or proposal
//! durably *before* it is published and refuses a second, different one for
//! the same slot, so a validator that crashes and restarts mid-height never
//! equivocates, whatever the consensus state machine decides after replay.
//!
//! Table `own_votes`: the same slots → the encoded signed [`proto::Vote`],
//! written in the same transaction. A validator that restarts mid-round
//! cannot sign a second vote in a slot, but it can send the one it signed
//! before the crash again, which peers stuck in that round may need.

use prost::Message;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tiernet_core::wire::WireMessage;
use tiernet_core::wire::proto;

use crate::store::{Store, StoreError};

const BLOCKS_TABLE: &str = "blocks";
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new(BLOCKS_TABLE);
const HEADERS_TABLE: &str = "headers";
const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new(HEADERS_TABLE);
const SIGNED_TABLE: &str = "signed";
const SIGNED: TableDefinition<(u64, u32, u8), &[u8]> = TableDefinition::new(SIGNED_TABLE);
const OWN_VOTES_TABLE: &str = "own_votes";
const OWN_VOTES: TableDefinition<(u64, u32, u8), &[u8]> = TableDefinition::new(OWN_VOTES_TABLE);

/// What the double-sign guard says to a signature.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// The first signature in its slot (now on disk), or the same one again.
    Sign,
    /// A different one was signed in the slot before: this one must not be
    /// published. `earlier` is the vote signed then (`None` for proposals,
    /// or a row that does not decode); it may be sent again instead.
    Refuse {
        /// The vote signed in the slot before.
        earlier: Option<proto::Vote>,
    },
}

/// What was signed in a slot of the double-sign guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedKind {
    /// A proposal.
    Proposal = 0,
    /// A prevote.
    Prevote = 1,
    /// A precommit.
    Precommit = 2,
}

/// A block store error: the store failed, or a row it holds is corrupt.
#[derive(Debug, thiserror::Error)]
pub enum BlockStoreError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored block does not decode.
    #[error("stored block at height {height} is corrupt: {reason}")]
    Corrupt {
        /// The height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// A row of the header index does not decode.
    #[error("stored header at height {height} is corrupt: {reason}")]
    CorruptHeader {
        /// The height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Blocks whose header rows one backfill transaction writes.
pub const BACKFILL_BATCH: usize = 256;

/// Finalized blocks and the signing record.
#[derive(Debug, Clone)]
pub struct BlockStore {
    store: Store,
}

impl BlockStore {
    /// A block store over the node's database, as it is (no backfill of
    /// the header index; see [`BlockStore::open`]).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A block store over the node's database, with the header index
    /// completed for blocks stored without one (a store written by an
    /// older version, or by one that stopped in the middle of a backfill).
    pub fn open(store: Store) -> Result<Self, BlockStoreError> {
        let blocks = Self::new(store);
        let added = blocks.backfill_headers()?;
        if added > 0 {
            tracing::info!(headers = added, "header index filled in from the stored blocks");
        }
        Ok(blocks)
    }

    /// Writes the header-index row of every stored block that has none, in
    /// transactions of at most [`BACKFILL_BATCH`] blocks; returns how many
    /// rows it wrote. Cheap when the index is complete (the two tables have
    /// as many rows: their lengths are kept by redb).
    pub fn backfill_headers(&self) -> Result<u64, BlockStoreError> {
        if self.index_complete()? {
            return Ok(0);
        }
        let db = self.store.database();
        let mut added = 0u64;
        let mut from = 0u64;
        loop {
            let write = db
                .begin_write()
                .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?;
            let more = {
                let blocks = write
                    .open_table(BLOCKS)
                    .map_err(|e| self.err("backfill headers", BLOCKS_TABLE, e))?;
                let mut headers = write
                    .open_table(HEADERS)
                    .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?;
                let stored = blocks
                    .len()
                    .map_err(|e| self.err("backfill headers", BLOCKS_TABLE, e))?;
                let indexed = headers
                    .len()
                    .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?;
                if indexed >= stored {
                    false
                } else {
                    let mut batch = 0usize;
                    let mut more = false;
                    for row in blocks
                        .range(from..)
                        .map_err(|e| self.err("backfill headers", BLOCKS_TABLE, e))?
                    {
                        let (key, value) = row.map_err(|e| self.err("backfill headers", BLOCKS_TABLE, e))?;
                        let height = key.value();
                        from = height.saturating_add(1);
                        let present = headers
                            .get(height)
                            .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?
                            .is_some();
                        if present {
                            continue;
                        }
                        let block = decode_block(height, value.value())?;
                        headers
                            .insert(height, signed_header_of(&block).encode_to_vec().as_slice())
                            .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?;
                        added += 1;
                        batch += 1;
                        if batch == BACKFILL_BATCH {
                            more = true;
                            break;
                        }
                    }
                    more
                }
            };
            write
                .commit()
                .map_err(|e| self.err("backfill headers", HEADERS_TABLE, e))?;
            if !more {
                return Ok(added);
            }
        }
    }

    /// Whether the header index has a row for every stored block (checked
    /// by the tables' lengths, in a read transaction).
    fn index_complete(&self) -> Result<bool, BlockStoreError> {
        let db = self.store.database();
        let read = db
            .begin_read()
            .map_err(|e| self.err("check headers", HEADERS_TABLE, e))?;
        let stored = match read.open_table(BLOCKS) {
            Ok(t) => t.len().map_err(|e| self.err("check headers", BLOCKS_TABLE, e))?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(self.err("check headers", BLOCKS_TABLE, e)),
        };
        let indexed = match read.open_table(HEADERS) {
            Ok(t) => t.len().map_err(|e| self.err("check headers", HEADERS_TABLE, e))?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(self.err("check headers", HEADERS_TABLE, e)),
        };
        Ok(indexed >= stored)
    }

    /// The highest finalized height on disk (0 when there is none).
    pub fn last_height(&self) -> Result<u64, BlockStoreError> {
        let db = self.store.database();
        let read = db.begin_read().map_err(|e| self.err("last height", BLOCKS_TABLE, e))?;
        let table = match read.open_table(BLOCKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(self.err("last height", BLOCKS_TABLE, e)),
        };
        let last = table.last().map_err(|e| self.err("last height", BLOCKS_TABLE, e))?;
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    /// The finalized block at `height`, if stored.
    pub fn get(&self, height: u64) -> Result<Option<proto::FinalizedBlock>, BlockStoreError> {
        let db = self.store.database();
        let read = db.begin_read().map_err(|e| self.err("get block", BLOCKS_TABLE, e))?;
        let table = match read.open_table(BLOCKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err("get block", BLOCKS_TABLE, e)),
        };
        let Some(row) = table.get(height).map_err(|e| self.err("get block", BLOCKS_TABLE, e))? else {
            return Ok(None);
        };
        decode_block(height, row.value()).map(Some)
    }

    /// The signed header (header and commit) at `height` from the header
    /// index, if stored. Reads no block.
    pub fn signed_header(&self, height: u64) -> Result<Option<proto::SignedHeader>, BlockStoreError> {
        let mut headers = self.signed_headers(height, height, usize::MAX)?;
        Ok(headers.pop())
    }

    /// Consecutive signed headers from `from` up to `to` (inclusive), from
    /// the header index: it stops at the first height it does not hold, and
    /// before the encoded rows would exceed `max_bytes` in total. Reads no
    /// block.
    pub fn signed_headers(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<proto::SignedHeader>, BlockStoreError> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let db = self.store.database();
        let read = db.begin_read().map_err(|e| self.err("get headers", HEADERS_TABLE, e))?;
        let table = match read.open_table(HEADERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(out),
            Err(e) => return Err(self.err("get headers", HEADERS_TABLE, e)),
        };
        let mut expected = from;
        let mut size = 0usize;
        for row in table
            .range(from..=to)
            .map_err(|e| self.err("get headers", HEADERS_TABLE, e))?
        {
            let (key, value) = row.map_err(|e| self.err("get headers", HEADERS_TABLE, e))?;
            let height = key.value();
            if height != expected {
                break;
            }
            let bytes = value.value();
            size = size.saturating_add(bytes.len());
            if size > max_bytes {
                break;
            }
            out.push(decode_header(height, bytes)?);
            expected = expected.saturating_add(1);
        }
        Ok(out)
    }

    /// Stores a finalized block durably, with its header-index row in the
    /// same transaction (an existing row is replaced only by the same
    /// block, which consensus guarantees for a height).
    pub fn put(&self, height: u64, block: &proto::FinalizedBlock) -> Result<(), BlockStoreError> {
        let bytes = block.encode_to_vec();
        let header = signed_header_of(block).encode_to_vec();
        let db = self.store.database();
        let write = db.begin_write().map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
        {
            let mut table = write
                .open_table(BLOCKS)
                .map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
            table
                .insert(height, bytes.as_slice())
                .map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
            let mut headers = write
                .open_table(HEADERS)
                .map_err(|e| self.err("put block", HEADERS_TABLE, e))?;
            headers
                .insert(height, header.as_slice())
                .map_err(|e| self.err("put block", HEADERS_TABLE, e))?;
        }
        write.commit().map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
        Ok(())
    }

    /// Records that this validator signs `hash` (empty = nil) in slot
    /// `(height, round, kind)`, with the signed `vote` itself for votes.
    /// [`Guard::Sign`] when that is the first signature in the slot (now on
    /// disk) or the same one again; [`Guard::Refuse`] when a different one
    /// was signed there before, in which case the caller must not publish.
    pub fn guard(
        &self,
        height: u64,
        round: u32,
        kind: SignedKind,
        hash: &[u8],
        vote: Option<&proto::Vote>,
    ) -> Result<Guard, BlockStoreError> {
        let key = (height, round, kind as u8);
        let db = self.store.database();
        let write = db.begin_write().map_err(|e| self.err("guard", SIGNED_TABLE, e))?;
        let answer = {
            let mut table = write
                .open_table(SIGNED)
                .map_err(|e| self.err("guard", SIGNED_TABLE, e))?;
            let mut votes = write
                .open_table(OWN_VOTES)
                .map_err(|e| self.err("guard", OWN_VOTES_TABLE, e))?;
            let previous = table
                .get(key)
                .map_err(|e| self.err("guard", SIGNED_TABLE, e))?
                .map(|v| v.value().to_vec());
            match previous {
                Some(previous) if previous == hash => Guard::Sign,
                Some(_) => {
                    let earlier = votes
                        .get(key)
                        .map_err(|e| self.err("guard", OWN_VOTES_TABLE, e))?
                        .and_then(|v| proto::Vote::decode(v.value()).ok());
                    Guard::Refuse { earlier }
                }
                None => {
                    table
                        .insert(key, hash)
                        .map_err(|e| self.err("guard", SIGNED_TABLE, e))?;
                    if let Some(vote) = vote {
                        votes
                            .insert(key, vote.encode_to_vec().as_slice())
                            .map_err(|e| self.err("guard", OWN_VOTES_TABLE, e))?;
                    }
                    // Old heights can never be signed again: keep the tables small.
                    if height > GUARD_KEPT_HEIGHTS {
                        let below = (height - GUARD_KEPT_HEIGHTS, 0, 0);
                        let old: Vec<(u64, u32, u8)> = table
                            .range(..below)
                            .map_err(|e| self.err("guard", SIGNED_TABLE, e))?
                            .filter_map(|r| r.ok().map(|(k, _)| k.value()))
                            .collect();
                        for k in old {
                            table.remove(k).map_err(|e| self.err("guard", SIGNED_TABLE, e))?;
                            votes.remove(k).map_err(|e| self.err("guard", OWN_VOTES_TABLE, e))?;
                        }
                    }
                    Guard::Sign
                }
            }
        };
        write.commit().map_err(|e| self.err("guard", SIGNED_TABLE, e))?;
        Ok(answer)
    }

    fn err(&self, op: &'static str, table: &'static str, e: impl Into<redb::Error>) -> BlockStoreError {
        BlockStoreError::Store(self.store.error(op, table, e))
    }
}

/// Heights of signing records kept below the current one.
pub const GUARD_KEPT_HEIGHTS: u64 = 16;

/// The header-index row of a finalized block: its header and its commit.
pub fn signed_header_of(block: &proto::FinalizedBlock) -> proto::SignedHeader {
    proto::SignedHeader {
        header: block.block.as_ref().and_then(|b| b.header.clone()),
        commit: block.commit.clone(),
    }
}

/// A stored block. Rows are blocks this node validated before storing them
/// (and the chain re-executes them on open), so only the encoding is checked.
fn decode_block(height: u64, bytes: &[u8]) -> Result<proto::FinalizedBlock, BlockStoreError> {
    if bytes.len() > <proto::FinalizedBlock as WireMessage>::MAX_SIZE {
        return Err(BlockStoreError::Corrupt {
            height,
            reason: format!("{} bytes is over the block size cap", bytes.len()),
        });
    }
    proto::FinalizedBlock::decode(bytes).map_err(|e| BlockStoreError::Corrupt {
        height,
        reason: e.to_string(),
    })
}

/// A header-index row; never larger than the block it came from.
fn decode_header(height: u64, bytes: &[u8]) -> Result<proto::SignedHeader, BlockStoreError> {
    if bytes.len() > <proto::FinalizedBlock as WireMessage>::MAX_SIZE {
        return Err(BlockStoreError::CorruptHeader {
            height,
            reason: format!("{} bytes is over the block size cap", bytes.len()),
        });
    }
    proto::SignedHeader::decode(bytes).map_err(|e| BlockStoreError::CorruptHeader {
        height,
        reason: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlockStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        (dir, BlockStore::new(store))
    }

    #[test]
    fn blocks_round_trip_and_last_height() {
        let (_dir, blocks) = store();
        assert_eq!(blocks.last_height().unwrap(), 0);
        assert!(blocks.get(1).unwrap().is_none());
        let fb = proto::FinalizedBlock {
            block: Some(proto::Block {
                header: Some(proto::Header {
                    height: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            commit: Some(proto::CommitCertificate::default()),
        };
        blocks.put(1, &fb).unwrap();
        blocks.put(2, &fb).unwrap();
        assert_eq!(blocks.last_height().unwrap(), 2);
        assert_eq!(blocks.get(1).unwrap(), Some(fb));
    }

    /// A finalized block at `height` whose body carries `body` bytes of
    /// proofs, with a commit signed by `signers` validators.
    pub(crate) fn big_block(height: u64, body: usize, signers: usize) -> proto::FinalizedBlock {
        proto::FinalizedBlock {
            block: Some(proto::Block {
                header: Some(proto::Header {
                    network_id: "devnet".into(),
                    height,
                    time_ms: 1_000 + height,
                    prev_hash: vec![height as u8; 32],
                    state_root: vec![7; 32],
                    ..Default::default()
                }),
                proofs: vec![proto::ProofEnvelope {
                    kind: "test/v1".into(),
                    proof: vec![height as u8; body],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            commit: Some(proto::CommitCertificate {
                height,
                block_hash: vec![height as u8; 32],
                signatures: (0..signers)
                    .map(|i| proto::CommitSignature {
                        validator: vec![i as u8; 32],
                        signature: vec![height as u8; 64],
                    })
                    .collect(),
                ..Default::default()
            }),
        }
    }

    /// Writes `bytes` straight into the `blocks` row of `height`, as a
    /// store written without the index (or a damaged row) would hold.
    pub(crate) fn raw_block_row(store: &BlockStore, height: u64, bytes: &[u8]) {
        let write = store.store.database().begin_write().unwrap();
        write.open_table(BLOCKS).unwrap().insert(height, bytes).unwrap();
        write.commit().unwrap();
    }

    fn index_rows(store: &BlockStore) -> u64 {
        let read = store.store.database().begin_read().unwrap();
        match read.open_table(HEADERS) {
            Ok(t) => t.len().unwrap(),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every block has its header row, and the row is the block's header and commit.
    fn assert_tables_agree(store: &BlockStore, last: u64) {
        for height in 1..=last {
            let block = store.get(height).unwrap().unwrap();
            let signed = store.signed_header(height).unwrap();
            assert_eq!(signed, Some(signed_header_of(&block)), "height {height}");
            assert_eq!(signed.unwrap().header.unwrap().height, height);
        }
        assert_eq!(index_rows(store), last);
        assert_eq!(store.signed_header(last + 1).unwrap(), None);
    }

    #[test]
    fn put_writes_the_header_index_with_the_block_and_they_agree() {
        let (_dir, blocks) = store();
        for height in 1..=20 {
            blocks.put(height, &big_block(height, 1_000, 4)).unwrap();
        }
        assert_tables_agree(&blocks, 20);
        let range = blocks.signed_headers(5, 9, usize::MAX).unwrap();
        assert_eq!(
            range
                .iter()
                .map(|h| h.header.as_ref().unwrap().height)
                .collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9]
        );
        assert!(blocks.signed_headers(9, 5, usize::MAX).unwrap().is_empty());
        assert_eq!(
            blocks.signed_headers(19, 30, usize::MAX).unwrap().len(),
            2,
            "stops at the end"
        );
        // The byte budget stops the range before it is exceeded.
        let one = signed_header_of(&big_block(1, 1_000, 4)).encoded_len();
        assert_eq!(blocks.signed_headers(1, 20, 3 * one + one / 2).unwrap().len(), 3);
    }

    #[test]
    fn header_rows_are_small_whatever_the_block_body() {
        let (_dir, blocks) = store();
        blocks.put(1, &big_block(1, 1 << 20, 4)).unwrap();
        let row = blocks.signed_header(1).unwrap().unwrap().encoded_len();
        assert!(row < 1_000, "{row} bytes for the header row of a 1 MiB block");
    }

    #[test]
    fn open_backfills_the_index_of_an_older_store_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let last = (2 * BACKFILL_BATCH + 5) as u64;
        {
            // An older version wrote blocks only.
            let old = BlockStore::new(Store::open(&path).unwrap());
            for height in 1..=last {
                raw_block_row(&old, height, &big_block(height, 100, 2).encode_to_vec());
            }
            assert_eq!(index_rows(&old), 0);
            assert_eq!(old.signed_header(1).unwrap(), None);
        }
        let blocks = BlockStore::open(Store::open(&path).unwrap()).unwrap();
        assert_tables_agree(&blocks, last);
        assert_eq!(blocks.backfill_headers().unwrap(), 0, "nothing left to do");

        // A store with part of the index (a backfill cut short, or blocks
        // written by an older version afterwards) gets the rest.
        raw_block_row(&blocks, last + 1, &big_block(last + 1, 100, 2).encode_to_vec());
        raw_block_row(&blocks, last + 2, &big_block(last + 2, 100, 2).encode_to_vec());
        assert_eq!(blocks.backfill_headers().unwrap(), 2);
        assert_tables_agree(&blocks, last + 2);
    }

    #[test]
    fn a_corrupt_block_stops_the_backfill_with_its_height() {
        let (_dir, blocks) = store();
        raw_block_row(&blocks, 1, &big_block(1, 10, 1).encode_to_vec());
        raw_block_row(&blocks, 2, &[0xff, 0xff, 0xff]);
        let err = blocks.backfill_headers().unwrap_err();
        assert!(matches!(err, BlockStoreError::Corrupt { height: 2, .. }), "{err}");
    }

    fn vote(hash: &[u8]) -> proto::Vote {
        proto::Vote {
            height: 5,
            block_hash: hash.to_vec(),
            signature: vec![7; 64],
            ..Default::default()
        }
    }

    fn guard(blocks: &BlockStore, height: u64, round: u32, kind: SignedKind, hash: &[u8]) -> Guard {
        blocks.guard(height, round, kind, hash, Some(&vote(hash))).unwrap()
    }

    #[test]
    fn the_guard_refuses_a_second_different_signature_in_a_slot() {
        let (_dir, blocks) = store();
        let refused = Guard::Refuse {
            earlier: Some(vote(&[1; 32])),
        };
        assert_eq!(guard(&blocks, 5, 0, SignedKind::Prevote, &[1; 32]), Guard::Sign);
        assert_eq!(
            guard(&blocks, 5, 0, SignedKind::Prevote, &[1; 32]),
            Guard::Sign,
            "same vote again"
        );
        assert_eq!(
            guard(&blocks, 5, 0, SignedKind::Prevote, &[2; 32]),
            refused,
            "other value: refused, with the vote signed before"
        );
        assert_eq!(
            guard(&blocks, 5, 0, SignedKind::Prevote, &[]),
            refused,
            "nil after a value"
        );
        assert_eq!(
            guard(&blocks, 5, 0, SignedKind::Precommit, &[2; 32]),
            Guard::Sign,
            "other kind"
        );
        assert_eq!(
            guard(&blocks, 5, 1, SignedKind::Prevote, &[2; 32]),
            Guard::Sign,
            "other round"
        );
        assert_eq!(
            blocks.guard(5, 0, SignedKind::Proposal, &[4; 32], None).unwrap(),
            Guard::Sign
        );
        assert_eq!(
            blocks.guard(5, 0, SignedKind::Proposal, &[5; 32], None).unwrap(),
            Guard::Refuse { earlier: None },
            "a second proposal"
        );
        // Old slots are pruned once far below.
        assert_eq!(
            guard(&blocks, 5 + GUARD_KEPT_HEIGHTS + 1, 0, SignedKind::Prevote, &[3; 32]),
            Guard::Sign
        );
        assert_eq!(
            guard(&blocks, 5, 0, SignedKind::Prevote, &[2; 32]),
            Guard::Sign,
            "pruned"
        );
    }

    #[test]
    fn the_guard_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let blocks = BlockStore::new(Store::open(&path).unwrap());
            assert_eq!(guard(&blocks, 9, 2, SignedKind::Precommit, &[1; 32]), Guard::Sign);
        }
        let blocks = BlockStore::new(Store::open(&path).unwrap());
        assert_eq!(
            guard(&blocks, 9, 2, SignedKind::Precommit, &[]),
            Guard::Refuse {
                earlier: Some(vote(&[1; 32]))
            }
        );
    }
}
