//! Persisted gossip state (issue 16): the content ids of accepted messages
//! and the heartbeat replay windows of [`tiernet_core::inbound`] survive a
//! restart, so a message seen before a crash is not accepted after it.
//!
//! Written in batches, never per message: the node takes what changed
//! ([`InboundPolicy::take_changes`](tiernet_core::inbound::InboundPolicy::take_changes))
//! every [`crate::node::PEERSTORE_FLUSH_INTERVAL`] and at shutdown and
//! writes it in one transaction, so an outsider who gets messages accepted
//! buys at most one durable write per interval, not one per message; and
//! what it can make the node store is bounded by the same limits as the
//! memory (the gossip budgets, [`MAX_SEEN`], the replay guard's capacity).
//! A crash loses at most the last interval.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `gossip_seen` | accepted-at ms (u64 BE) ‖ content id (32 bytes) | empty |
//! | `gossip_replay` | `0` ‖ ZSI id, or `1` ‖ source PeerId bytes | sequence (u64 BE) ‖ fingerprint (32) ‖ accepted-at ms (u64 BE) |
//!
//! Rows older than [`SEEN_RETENTION_MS`] are deleted at each write, and the
//! oldest beyond [`MAX_SEEN`]; the replay table is cut to
//! [`MAX_REPLAY_ROWS`] (least recently updated first). Rows that do not
//! decode are skipped when loading.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use tiernet_core::gossip::{ReplayEntry, ReplayKey};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::inbound::{GossipChanges, MAX_SEEN, SEEN_RETENTION_MS};

use crate::store::{Store, StoreError};

const SEEN_TABLE: &str = "gossip_seen";
const REPLAY_TABLE: &str = "gossip_replay";
const SEEN: TableDefinition<&[u8], &[u8]> = TableDefinition::new(SEEN_TABLE);
const REPLAY: TableDefinition<&[u8], &[u8]> = TableDefinition::new(REPLAY_TABLE);

/// Most replay-window rows kept (twice the replay guard's two maps).
pub const MAX_REPLAY_ROWS: usize = 4 * tiernet_core::gossip::ReplayGuard::DEFAULT_CAPACITY;

/// The persisted gossip state, in the node's store.
#[derive(Debug, Clone)]
pub struct GossipStateStore {
    store: Store,
}

fn replay_key(author: &ReplayKey) -> Vec<u8> {
    match author {
        ReplayKey::Zsi(id) => [&[0u8][..], id.as_bytes()].concat(),
        ReplayKey::Source(bytes) => [&[1u8][..], bytes].concat(),
    }
}

fn decode_replay(key: &[u8], value: &[u8]) -> Option<ReplayEntry> {
    let author = match key.split_first()? {
        (0, id) => ReplayKey::Zsi(ZsiId::from_slice(id)?),
        (1, bytes) if bytes.len() <= tiernet_core::gossip::MAX_SOURCE_LEN => ReplayKey::Source(bytes.to_vec()),
        _ => return None,
    };
    if value.len() != 48 {
        return None;
    }
    let sequence = u64::from_be_bytes(value[..8].try_into().ok()?);
    let fingerprint = Hash32(value[8..40].try_into().ok()?);
    let updated_ms = u64::from_be_bytes(value[40..].try_into().ok()?);
    Some(ReplayEntry {
        author,
        sequence,
        fingerprint,
        updated_ms,
    })
}

impl GossipStateStore {
    /// The gossip state in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every stored seen id accepted within the retention window before
    /// `now_ms`, and every replay window.
    pub fn load(&self, now_ms: u64) -> Result<GossipChanges, StoreError> {
        const OP: &str = "load gossip state";
        let err = |table, e: redb::Error| self.store.error(OP, table, e);
        let txn = self
            .store
            .database()
            .begin_read()
            .map_err(|e| err(SEEN_TABLE, e.into()))?;
        let mut seen = Vec::new();
        match txn.open_table(SEEN) {
            Ok(table) => {
                let cutoff = now_ms.saturating_sub(SEEN_RETENTION_MS).to_be_bytes();
                for row in table.range(&cutoff[..]..).map_err(|e| err(SEEN_TABLE, e.into()))? {
                    let (key, _) = row.map_err(|e| err(SEEN_TABLE, e.into()))?;
                    let key = key.value();
                    if key.len() != 40 {
                        continue;
                    }
                    let at = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
                    let id = Hash32(key[8..].try_into().unwrap_or_default());
                    seen.push((id, at));
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err(SEEN_TABLE, e.into())),
        }
        let mut replay = Vec::new();
        match txn.open_table(REPLAY) {
            Ok(table) => {
                for row in table.iter().map_err(|e| err(REPLAY_TABLE, e.into()))? {
                    let (key, value) = row.map_err(|e| err(REPLAY_TABLE, e.into()))?;
                    if let Some(entry) = decode_replay(key.value(), value.value()) {
                        replay.push(entry);
                    }
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err(REPLAY_TABLE, e.into())),
        }
        Ok(GossipChanges { seen, replay })
    }

    /// Writes one batch of changes in one transaction, deleting expired and
    /// excess rows. Does nothing for an empty batch.
    pub fn write(&self, changes: &GossipChanges, now_ms: u64) -> Result<(), StoreError> {
        const OP: &str = "write gossip state";
        if changes.is_empty() {
            return Ok(());
        }
        let err = |table, e: redb::Error| self.store.error(OP, table, e);
        let txn = self
            .store
            .database()
            .begin_write()
            .map_err(|e| err(SEEN_TABLE, e.into()))?;
        {
            let mut seen = txn.open_table(SEEN).map_err(|e| err(SEEN_TABLE, e.into()))?;
            for (id, at) in &changes.seen {
                let mut key = [0u8; 40];
                key[..8].copy_from_slice(&at.to_be_bytes());
                key[8..].copy_from_slice(id.as_bytes());
                seen.insert(&key[..], &[][..]).map_err(|e| err(SEEN_TABLE, e.into()))?;
            }
            let cutoff = now_ms.saturating_sub(SEEN_RETENTION_MS).to_be_bytes();
            seen.retain_in(..&cutoff[..], |_, _| false)
                .map_err(|e| err(SEEN_TABLE, e.into()))?;
            let len = seen.len().map_err(|e| err(SEEN_TABLE, e.into()))?;
            for _ in MAX_SEEN as u64..len {
                seen.pop_first().map_err(|e| err(SEEN_TABLE, e.into()))?;
            }
            let mut replay = txn.open_table(REPLAY).map_err(|e| err(REPLAY_TABLE, e.into()))?;
            for entry in &changes.replay {
                let mut value = [0u8; 48];
                value[..8].copy_from_slice(&entry.sequence.to_be_bytes());
                value[8..40].copy_from_slice(entry.fingerprint.as_bytes());
                value[40..].copy_from_slice(&entry.updated_ms.to_be_bytes());
                replay
                    .insert(replay_key(&entry.author).as_slice(), &value[..])
                    .map_err(|e| err(REPLAY_TABLE, e.into()))?;
            }
            let len = replay.len().map_err(|e| err(REPLAY_TABLE, e.into()))?;
            if len > MAX_REPLAY_ROWS as u64 {
                // Keep the most recently updated half.
                let mut times: Vec<u64> = Vec::with_capacity(len as usize);
                for row in replay.iter().map_err(|e| err(REPLAY_TABLE, e.into()))? {
                    let (_, value) = row.map_err(|e| err(REPLAY_TABLE, e.into()))?;
                    let v = value.value();
                    times.push(
                        v.get(40..48)
                            .and_then(|t| t.try_into().ok())
                            .map_or(0, u64::from_be_bytes),
                    );
                }
                times.sort_unstable();
                let cut = times[times.len() - MAX_REPLAY_ROWS / 2];
                replay
                    .retain(|_, v| {
                        v.get(40..48)
                            .and_then(|t| t.try_into().ok())
                            .map_or(0, u64::from_be_bytes)
                            >= cut
                    })
                    .map_err(|e| err(REPLAY_TABLE, e.into()))?;
            }
        }
        txn.commit().map_err(|e| err(SEEN_TABLE, e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seed: u8, sequence: u64, at: u64) -> ReplayEntry {
        ReplayEntry {
            author: ReplayKey::Zsi(ZsiId(Hash32([seed; 32]))),
            sequence,
            fingerprint: Hash32([seed; 32]),
            updated_ms: at,
        }
    }

    #[test]
    fn changes_survive_a_crash_and_expired_rows_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let now = 10 * SEEN_RETENTION_MS;
        {
            let state = GossipStateStore::new(Store::open(&path).unwrap());
            let changes = GossipChanges {
                seen: vec![
                    (Hash32([1; 32]), now - SEEN_RETENTION_MS - 1),
                    (Hash32([2; 32]), now - 5),
                ],
                replay: vec![entry(1, 7, now - 5), entry(2, 9, now - 4)],
            };
            state.write(&changes, now).unwrap();
            let newer = GossipChanges {
                seen: vec![],
                replay: vec![entry(1, 8, now - 1)],
            };
            state.write(&newer, now).unwrap();
            // A crash: the store is dropped without anything else.
        }
        let state = GossipStateStore::new(Store::open(&path).unwrap());
        let GossipChanges { seen, replay } = state.load(now).unwrap();
        assert_eq!(seen, vec![(Hash32([2; 32]), now - 5)]);
        assert_eq!(replay.len(), 2);
        assert!(replay.contains(&entry(1, 8, now - 1)));
        assert!(replay.contains(&entry(2, 9, now - 4)));
    }

    #[test]
    fn tables_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let state = GossipStateStore::new(Store::open(&dir.path().join("node.redb")).unwrap());
        let now = SEEN_RETENTION_MS;
        let seen: Vec<(Hash32, u64)> = (0..MAX_SEEN as u64 + 100)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&i.to_be_bytes());
                (Hash32(id), now - 1_000 + i % 1_000)
            })
            .collect();
        let replay: Vec<ReplayEntry> = (0..MAX_REPLAY_ROWS as u64 + 10)
            .map(|i| ReplayEntry {
                author: ReplayKey::Source(i.to_be_bytes().to_vec()),
                sequence: 1,
                fingerprint: Hash32::ZERO,
                updated_ms: i,
            })
            .collect();
        state.write(&GossipChanges { seen, replay }, now).unwrap();
        let GossipChanges { seen, replay } = state.load(now).unwrap();
        assert_eq!(seen.len(), MAX_SEEN);
        assert!(replay.len() <= MAX_REPLAY_ROWS);
    }
}
