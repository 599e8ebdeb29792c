//! Finalized blocks and the double-sign guard, in the node's redb store.
//!
//! Table `blocks`: height (u64) → encoded [`proto::FinalizedBlock`] (block
//! and the commit that finalized it). Written in one durable transaction
//! before the node publishes the finalized block or starts the next height,
//! so after a crash the chain resumes from the last block on disk.
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
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tiernet_core::wire::WireMessage;
use tiernet_core::wire::proto;

use crate::store::{Store, StoreError};

const BLOCKS_TABLE: &str = "blocks";
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new(BLOCKS_TABLE);
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
}

/// Finalized blocks and the signing record.
#[derive(Debug, Clone)]
pub struct BlockStore {
    store: Store,
}

impl BlockStore {
    /// A block store over the node's database.
    pub fn new(store: Store) -> Self {
        Self { store }
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
        // Rows are blocks this node validated before storing them (and the
        // chain re-executes them on open), so only the encoding is checked here.
        let bytes = row.value();
        if bytes.len() > <proto::FinalizedBlock as WireMessage>::MAX_SIZE {
            return Err(BlockStoreError::Corrupt {
                height,
                reason: format!("{} bytes is over the block size cap", bytes.len()),
            });
        }
        let block = proto::FinalizedBlock::decode(bytes).map_err(|e| BlockStoreError::Corrupt {
            height,
            reason: e.to_string(),
        })?;
        Ok(Some(block))
    }

    /// Stores a finalized block durably (an existing row is replaced only by
    /// the same block, which consensus guarantees for a height).
    pub fn put(&self, height: u64, block: &proto::FinalizedBlock) -> Result<(), BlockStoreError> {
        let bytes = block.encode_to_vec();
        let db = self.store.database();
        let write = db.begin_write().map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
        {
            let mut table = write
                .open_table(BLOCKS)
                .map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
            table
                .insert(height, bytes.as_slice())
                .map_err(|e| self.err("put block", BLOCKS_TABLE, e))?;
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

#[cfg(test)]
mod tests {
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
