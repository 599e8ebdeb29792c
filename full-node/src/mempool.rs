//! The proof mempool: verified proof envelopes waiting for a block.
//!
//! Entries are keyed by content id (`tiernet_core::wire::sign::proof_content_id`),
//! so a proof resubmitted or relayed twice is one entry. The pool lives in
//! memory and in the store (table `mempool`: content id → encoded envelope
//! with its arrival order and height), written at once, so a node that
//! restarts still has its pending proofs. It is bounded by a count and by
//! total bytes; when full, a new proof is refused (the oldest are the ones
//! closest to inclusion, so they are kept). Proofs older than the freshness
//! window are dropped by [`Mempool::expire`]; proofs a block included leave
//! with [`Mempool::remove_included`].

use std::collections::BTreeMap;

use prost::Message;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tiernet_core::hash::Hash32;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::proof_content_id;
use tracing::warn;

use crate::store::{Store, StoreError};

/// The `mempool` table: content id → `arrival (u64 BE) ‖ encoded envelope`.
pub(crate) const MEMPOOL: TableDefinition<&[u8], &[u8]> = TableDefinition::new(MEMPOOL_TABLE);
const MEMPOOL_TABLE: &str = "mempool";

/// Default bound on entries.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;
/// Default bound on total encoded bytes (a full block's worth of proofs, four times over).
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// What [`Mempool::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Added.
    New,
    /// Already there (same content id).
    Duplicate,
    /// Refused: the pool is at its bound.
    Full,
}

#[derive(Debug, Clone)]
struct Entry {
    arrival: u64,
    envelope: proto::ProofEnvelope,
    size: usize,
}

/// Pending proof envelopes, in memory and persisted.
#[derive(Debug)]
pub struct Mempool {
    store: Store,
    entries: BTreeMap<Hash32, Entry>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// Opens the pool, loading what the store holds. Rows that do not
    /// decode are logged, deleted and skipped.
    pub fn open(store: Store, max_entries: usize, max_bytes: usize) -> Result<Self, StoreError> {
        let mut pool = Self {
            store,
            entries: BTreeMap::new(),
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
            bytes: 0,
            next_arrival: 0,
        };
        let mut bad = Vec::new();
        {
            let db = pool.store.database();
            let read = db
                .begin_read()
                .map_err(|e| pool.store.error("open mempool", MEMPOOL_TABLE, e))?;
            match read.open_table(MEMPOOL) {
                Ok(table) => {
                    let rows = table
                        .iter()
                        .map_err(|e| pool.store.error("read mempool", MEMPOOL_TABLE, e))?;
                    for row in rows {
                        let (key, value) = row.map_err(|e| pool.store.error("read mempool", MEMPOOL_TABLE, e))?;
                        match decode_row(key.value(), value.value()) {
                            Some((id, entry)) => {
                                pool.next_arrival = pool.next_arrival.max(entry.arrival + 1);
                                pool.bytes += entry.size;
                                pool.entries.insert(id, entry);
                            }
                            None => bad.push(key.value().to_vec()),
                        }
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(pool.store.error("open mempool", MEMPOOL_TABLE, e)),
            }
        }
        if !bad.is_empty() {
            warn!(rows = bad.len(), "mempool rows that do not decode were dropped");
            pool.delete(&bad)?;
        }
        Ok(pool)
    }

    /// Number of pending proofs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The content ids of the pending proofs.
    pub fn ids(&self) -> Vec<Hash32> {
        self.entries.keys().copied().collect()
    }

    /// Whether a proof with this content id is pending.
    pub fn contains(&self, id: &Hash32) -> bool {
        self.entries.contains_key(id)
    }

    /// Adds a verified envelope (written to the store at once).
    pub fn insert(&mut self, envelope: proto::ProofEnvelope) -> Result<Inserted, StoreError> {
        let id = proof_content_id(&envelope);
        if self.entries.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        let size = envelope.encoded_len();
        if self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            return Ok(Inserted::Full);
        }
        let entry = Entry {
            arrival: self.next_arrival,
            envelope,
            size,
        };
        let row = encode_row(&entry);
        self.write("insert into mempool", |table| {
            table.insert(id.as_bytes().as_slice(), row.as_slice()).map(drop)
        })?;
        self.next_arrival += 1;
        self.bytes += size;
        self.entries.insert(id, entry);
        Ok(Inserted::New)
    }

    /// Up to `limit` pending envelopes for a block, oldest first.
    pub fn select(&self, limit: usize) -> Vec<proto::ProofEnvelope> {
        let mut pending: Vec<&Entry> = self.entries.values().collect();
        pending.sort_by_key(|e| e.arrival);
        pending.into_iter().take(limit).map(|e| e.envelope.clone()).collect()
    }

    /// Removes the proofs a block included; returns how many were pending.
    pub fn remove_included(&mut self, included: &[proto::ProofEnvelope]) -> Result<usize, StoreError> {
        let ids: Vec<Vec<u8>> = included
            .iter()
            .map(proof_content_id)
            .filter(|id| self.entries.contains_key(id))
            .map(|id| id.as_bytes().to_vec())
            .collect();
        self.delete(&ids)?;
        Ok(ids.len())
    }

    /// Drops envelopes whose height is more than `window` blocks from `height`.
    pub fn expire(&mut self, height: u64, window: u64) -> Result<usize, StoreError> {
        let stale: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.envelope.height.abs_diff(height) > window)
            .map(|(id, _)| id.as_bytes().to_vec())
            .collect();
        self.delete(&stale)?;
        Ok(stale.len())
    }

    fn delete(&mut self, ids: &[Vec<u8>]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write("delete from mempool", |table| {
            ids.iter().try_for_each(|id| table.remove(id.as_slice()).map(drop))
        })?;
        for id in ids {
            if let Some(entry) = Hash32::from_slice(id).and_then(|id| self.entries.remove(&id)) {
                self.bytes -= entry.size;
            }
        }
        Ok(())
    }
}

impl Mempool {
    /// Runs `change` on the table in one durable write transaction.
    fn write(
        &self,
        op: &'static str,
        change: impl FnOnce(&mut redb::Table<'_, &[u8], &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let err = |e: redb::Error| self.store.error(op, MEMPOOL_TABLE, e);
        let write = self.store.database().begin_write().map_err(|e| err(e.into()))?;
        {
            let mut table = write.open_table(MEMPOOL).map_err(|e| err(e.into()))?;
            change(&mut table).map_err(|e| err(e.into()))?;
        }
        write.commit().map_err(|e| err(e.into()))
    }
}

fn encode_row(entry: &Entry) -> Vec<u8> {
    let mut row = entry.arrival.to_be_bytes().to_vec();
    row.extend_from_slice(&entry.envelope.encode_to_vec());
    row
}

/// A stored row, checked: the key must be the envelope's own content id.
fn decode_row(key: &[u8], row: &[u8]) -> Option<(Hash32, Entry)> {
    let (arrival, body) = row.split_at_checked(8)?;
    let arrival = u64::from_be_bytes(arrival.try_into().ok()?);
    let envelope = proto::ProofEnvelope::decode(body).ok()?;
    tiernet_core::wire::Validate::validate(&envelope).ok()?;
    let id = proof_content_id(&envelope);
    (id.as_bytes().as_slice() == key).then(|| {
        (
            id,
            Entry {
                arrival,
                size: envelope.encoded_len(),
                envelope,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(n: u8, height: u64) -> proto::ProofEnvelope {
        proto::ProofEnvelope {
            kind: "uptime/v1".into(),
            statement: vec![n; 10],
            proof: vec![n; 20],
            submitter: vec![n; 32],
            height,
            signature: vec![0; 64],
        }
    }

    fn open(dir: &std::path::Path, max_entries: usize) -> Mempool {
        Mempool::open(
            Store::open(&dir.join("node.redb")).unwrap(),
            max_entries,
            DEFAULT_MAX_BYTES,
        )
        .unwrap()
    }

    #[test]
    fn pending_proofs_survive_a_restart_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut pool = open(dir.path(), 10);
            for n in [3u8, 1, 2] {
                assert_eq!(pool.insert(envelope(n, 5)).unwrap(), Inserted::New);
            }
            assert_eq!(pool.insert(envelope(1, 5)).unwrap(), Inserted::Duplicate);
        }
        let mut pool = open(dir.path(), 10);
        assert_eq!(pool.len(), 3);
        let order: Vec<u8> = pool.select(10).iter().map(|e| e.statement[0]).collect();
        assert_eq!(order, vec![3, 1, 2]);
        // New arrivals still come after the restored ones.
        pool.insert(envelope(9, 5)).unwrap();
        assert_eq!(pool.select(10).last().unwrap().statement[0], 9);
    }

    #[test]
    fn included_and_stale_proofs_leave_and_stay_gone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut pool = open(dir.path(), 10);
            for n in 0..4u8 {
                pool.insert(envelope(n, 100 + u64::from(n) * 10)).unwrap();
            }
            assert_eq!(pool.remove_included(&[envelope(0, 100), envelope(7, 1)]).unwrap(), 1);
            // Heights 110, 120, 130 against 140 with a window of 20: 110 goes.
            assert_eq!(pool.expire(140, 20).unwrap(), 1);
            assert_eq!(pool.len(), 2);
        }
        let pool = open(dir.path(), 10);
        let left: Vec<u8> = pool.select(10).iter().map(|e| e.statement[0]).collect();
        assert_eq!(left, vec![2, 3]);
    }

    #[test]
    fn the_bounds_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = open(dir.path(), 2);
        assert_eq!(pool.insert(envelope(1, 0)).unwrap(), Inserted::New);
        assert_eq!(pool.insert(envelope(2, 0)).unwrap(), Inserted::New);
        assert_eq!(pool.insert(envelope(3, 0)).unwrap(), Inserted::Full);
        let dir = tempfile::tempdir().unwrap();
        let mut tiny = Mempool::open(Store::open(&dir.path().join("node.redb")).unwrap(), 10, 150).unwrap();
        assert_eq!(tiny.insert(envelope(1, 0)).unwrap(), Inserted::New);
        assert_eq!(tiny.insert(envelope(2, 0)).unwrap(), Inserted::Full);
    }

    #[test]
    fn a_row_under_the_wrong_key_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        {
            let write = store.database().begin_write().unwrap();
            {
                let mut table = write.open_table(MEMPOOL).unwrap();
                let row = encode_row(&Entry {
                    arrival: 0,
                    size: 0,
                    envelope: envelope(1, 0),
                });
                table.insert([0u8; 32].as_slice(), row.as_slice()).unwrap();
                table.insert([1u8; 32].as_slice(), [1u8, 2, 3].as_slice()).unwrap();
            }
            write.commit().unwrap();
        }
        let pool = Mempool::open(store.clone(), 10, DEFAULT_MAX_BYTES).unwrap();
        assert!(pool.is_empty());
        drop(pool);
        let pool = Mempool::open(store, 10, DEFAULT_MAX_BYTES).unwrap();
        assert!(pool.is_empty());
    }
}
