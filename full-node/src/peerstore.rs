//! The peerstore: what this node knows about other peers — dialable
//! addresses, verified identity and tier, local reputation and bans — held
//! in memory and persisted in the [`Store`] (table `peers`), so that a
//! restarted node can redial known peers and bans keep holding.
//!
//! Writes are batched: routine changes (a peer seen, new addresses, score
//! changes) only mark the record dirty, and [`Peerstore::flush`] writes every
//! dirty record in one transaction; the owner calls it periodically and at
//! shutdown (nothing is flushed on drop). Changes that must not be lost —
//! a verified identity or tier, and every ban or unban — are written at once.
//!
//! The peerstore is bounded by `max_peers` records; when a new peer would
//! exceed it, [`eviction_victim`] chooses which record goes.
//!
//! Rows are JSON of a private versioned struct (multiaddrs as strings, the
//! ZSI id as hex). A row that does not decode is logged, deleted and skipped
//! when the peerstore is opened.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};
use tiernet_core::identity::ZsiId;
use tiernet_core::reputation::{Outcome, PeerEvent, PeerReputation, ReputationParams};
use tiernet_core::tier::Tier;
use tracing::{debug, warn};

use crate::store::{Store, StoreError};

/// The most addresses kept per peer (the most recent ones).
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// The longest address kept, in bytes of its binary encoding. Longer ones are ignored.
pub const MAX_ADDR_BYTES: usize = 256;
/// The longest agent string kept, in bytes (longer ones are cut on a char boundary).
pub const MAX_AGENT_BYTES: usize = 128;

/// The `peers` table: PeerId bytes → JSON of a `StoredPeer`.
pub(crate) const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(PEERS_TABLE);
const PEERS_TABLE: &str = "peers";

/// The version of the row format written by this code.
const ROW_VERSION: u32 = 1;

/// What the peerstore knows about one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRecord {
    /// The peer.
    pub peer_id: PeerId,
    /// Dialable addresses, most recent first, at most [`MAX_ADDRS_PER_PEER`],
    /// without a `/p2p/<peer>` suffix.
    pub addrs: Vec<Multiaddr>,
    /// The peer's ZSI, if a handshake verified one.
    pub zsi_id: Option<ZsiId>,
    /// The peer's tier (TL0 until a handshake succeeds).
    pub tier: Tier,
    /// The local reputation: score, offences and ban.
    pub reputation: PeerReputation,
    /// When this node last had contact with the peer (ms since the Unix epoch).
    pub last_seen_ms: u64,
    /// The peer's agent string, at most [`MAX_AGENT_BYTES`] bytes.
    pub agent: String,
}

impl PeerRecord {
    fn new(peer_id: PeerId, last_seen_ms: u64) -> Self {
        Self {
            peer_id,
            addrs: Vec::new(),
            zsi_id: None,
            tier: Tier::TL0,
            reputation: PeerReputation::default(),
            last_seen_ms,
            agent: String::new(),
        }
    }
}

/// The persisted form of a [`PeerRecord`] (the key holds the PeerId).
#[derive(Debug, Serialize, Deserialize)]
struct StoredPeer {
    version: u32,
    addrs: Vec<String>,
    zsi_id: Option<String>,
    tier: u8,
    score: f64,
    score_updated_ms: u64,
    offences: u32,
    last_offence_ms: u64,
    banned_until_ms: u64,
    last_seen_ms: u64,
    agent: String,
}

impl StoredPeer {
    fn from_record(record: &PeerRecord) -> Self {
        let (score, score_updated_ms, offences, last_offence_ms, banned_until_ms) = record.reputation.to_parts();
        Self {
            version: ROW_VERSION,
            addrs: record.addrs.iter().map(|a| a.to_string()).collect(),
            zsi_id: record.zsi_id.map(|z| z.to_string()),
            tier: record.tier as u8,
            // JSON has no NaN or infinity; a reputation never holds one, but be safe.
            score: if score.is_finite() { score } else { 0.0 },
            score_updated_ms,
            offences,
            last_offence_ms,
            banned_until_ms,
            last_seen_ms: record.last_seen_ms,
            agent: truncate_agent(&record.agent).to_owned(),
        }
    }

    fn into_record(self, peer_id: PeerId) -> Result<PeerRecord, String> {
        if self.version != ROW_VERSION {
            return Err(format!("unknown row version {}", self.version));
        }
        let mut addrs = Vec::with_capacity(self.addrs.len().min(MAX_ADDRS_PER_PEER));
        for text in self.addrs.iter().take(MAX_ADDRS_PER_PEER) {
            let addr: Multiaddr = text.parse().map_err(|e| format!("bad address {text:?}: {e}"))?;
            if let Some(addr) = dialable(&peer_id, addr)
                && !addrs.contains(&addr)
            {
                addrs.push(addr);
            }
        }
        let zsi_id = match self.zsi_id {
            Some(hex) => Some(ZsiId::from_hex(&hex).ok_or_else(|| format!("bad ZSI id {hex:?}"))?),
            None => None,
        };
        let tier = Tier::from_u8(self.tier).ok_or_else(|| format!("bad tier {}", self.tier))?;
        Ok(PeerRecord {
            peer_id,
            addrs,
            zsi_id,
            tier,
            reputation: PeerReputation::restore(
                self.score,
                self.score_updated_ms,
                self.offences,
                self.last_offence_ms,
                self.banned_until_ms,
            ),
            last_seen_ms: self.last_seen_ms,
            agent: truncate_agent(&self.agent).to_owned(),
        })
    }
}

/// Which record to evict to make room for `keep`, or `None` if there is no
/// other record.
///
/// The policy, so that validators, good peers and running bans are kept:
/// - `keep` (the peer being inserted) is never chosen;
/// - among peers that are not banned at `now_ms` and whose verified ZSI is
///   not in `protected` (the validator set), the lowest
///   `(tier, score at now_ms, last_seen_ms)` is chosen: a low tier goes
///   first, then a poor local score, then the longest unseen;
/// - a banned peer's record is kept while its ban runs, since evicting it
///   would lift the ban; only if every other unprotected record is banned
///   is one chosen: the one whose ban ends first;
/// - a validator's record goes last of all: otherwise strangers that get
///   themselves banned under fresh identities would, once they fill the
///   peerstore, push out the records a restarted node needs to find its
///   validators again. Among validators the lowest key as above.
///
/// Remaining ties are broken by PeerId, so the choice is deterministic.
pub fn eviction_victim<'a>(
    records: impl Iterator<Item = &'a PeerRecord>,
    now_ms: u64,
    params: &ReputationParams,
    keep: &PeerId,
    protected: &HashSet<ZsiId>,
) -> Option<PeerId> {
    lowest(records, now_ms, params, Some(keep), protected)
}

/// The policy of [`eviction_victim`], with `keep` optional (loading from
/// the store favours no row).
fn lowest<'a>(
    records: impl Iterator<Item = &'a PeerRecord>,
    now_ms: u64,
    params: &ReputationParams,
    keep: Option<&PeerId>,
    protected: &HashSet<ZsiId>,
) -> Option<PeerId> {
    // (tier, score, last_seen, peer) of the lowest unbanned; (ban end, peer)
    // of the earliest-ending ban; the lowest validator.
    let mut unbanned: Option<(Tier, f64, u64, PeerId)> = None;
    let mut banned: Option<(u64, PeerId)> = None;
    let mut validator: Option<(Tier, f64, u64, PeerId)> = None;
    for record in records.filter(|r| Some(&r.peer_id) != keep) {
        let key = || {
            (
                record.tier,
                record.reputation.score(now_ms, params),
                record.last_seen_ms,
                record.peer_id,
            )
        };
        if record.zsi_id.is_some_and(|z| protected.contains(&z)) {
            let key = key();
            if validator.as_ref().is_none_or(|best| lower(&key, best)) {
                validator = Some(key);
            }
            continue;
        }
        match record.reputation.banned_until(now_ms) {
            None => {
                let key = key();
                if unbanned.as_ref().is_none_or(|best| lower(&key, best)) {
                    unbanned = Some(key);
                }
            }
            Some(until) => {
                let key = (until, record.peer_id);
                if banned.as_ref().is_none_or(|best| key < *best) {
                    banned = Some(key);
                }
            }
        }
    }
    unbanned
        .map(|(.., peer)| peer)
        .or(banned.map(|(_, peer)| peer))
        .or(validator.map(|(.., peer)| peer))
}

/// `a < b` for the eviction key of an unbanned peer.
fn lower(a: &(Tier, f64, u64, PeerId), b: &(Tier, f64, u64, PeerId)) -> bool {
    a.0.cmp(&b.0)
        .then(a.1.total_cmp(&b.1))
        .then(a.2.cmp(&b.2))
        .then(a.3.cmp(&b.3))
        .is_lt()
}

/// The peerstore: bounded, in memory, persisted in the store.
#[derive(Debug)]
pub struct Peerstore {
    store: Store,
    max_peers: usize,
    params: ReputationParams,
    /// ZSIs whose records are evicted last (the validator set).
    protected: HashSet<ZsiId>,
    records: HashMap<PeerId, PeerRecord>,
    /// Records changed since they were last written. A subset of `records`' keys.
    dirty: HashSet<PeerId>,
    /// Evicted peers whose rows are still to be deleted. Disjoint from
    /// `records`; flushed when it reaches `max_peers` entries.
    evicted: HashSet<PeerId>,
    /// Write transactions committed so far (each costs an fsync).
    write_transactions: u64,
}

impl Peerstore {
    /// Loads the peerstore from `store`, with the wall clock's now for
    /// eviction decisions. See [`Peerstore::open_at`].
    pub fn open(store: Store, max_peers: usize, params: ReputationParams) -> Result<Self, StoreError> {
        Self::open_at(store, max_peers, params, unix_now_ms())
    }

    /// Loads every row of the `peers` table. A row that does not decode is
    /// logged (warn, with the peer id), deleted and skipped. If there are more
    /// rows than `max_peers` (at least 1), the lowest are evicted by the
    /// policy of [`eviction_victim`] at `now_ms` (no row is favoured) and
    /// deleted.
    pub fn open_at(store: Store, max_peers: usize, params: ReputationParams, now_ms: u64) -> Result<Self, StoreError> {
        Self::open_protecting(store, max_peers, params, HashSet::new(), now_ms)
    }

    /// As [`Peerstore::open_at`], with the ZSIs whose records are evicted
    /// last (see [`eviction_victim`]) already known for the load.
    pub fn open_protecting(
        store: Store,
        max_peers: usize,
        params: ReputationParams,
        protected: HashSet<ZsiId>,
        now_ms: u64,
    ) -> Result<Self, StoreError> {
        let mut peerstore = Self {
            store,
            max_peers: max_peers.max(1),
            params,
            protected,
            records: HashMap::new(),
            dirty: HashSet::new(),
            evicted: HashSet::new(),
            write_transactions: 0,
        };
        let rows = peerstore.load(now_ms)?;
        // Delete every row that is not in memory now: corrupt ones and evicted ones.
        if rows != peerstore.records.len() {
            peerstore.evicted.clear();
            let store = &peerstore.store;
            let err = |e: redb::Error| store.error("delete dropped peers", PEERS_TABLE, e);
            let txn = store.database().begin_write().map_err(|e| err(e.into()))?;
            {
                let mut table = txn.open_table(PEERS).map_err(|e| err(e.into()))?;
                let records = &peerstore.records;
                table
                    .retain(|key, _| PeerId::from_bytes(key).is_ok_and(|peer| records.contains_key(&peer)))
                    .map_err(|e| err(e.into()))?;
            }
            txn.commit().map_err(|e| err(e.into()))?;
            debug!(
                dropped = rows - peerstore.records.len(),
                kept = peerstore.records.len(),
                "peerstore: deleted rows"
            );
        }
        Ok(peerstore)
    }

    /// Reads every row into `records`, evicting as it goes. Returns how many rows there were.
    fn load(&mut self, now_ms: u64) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let err = |e: redb::Error| store.error("load peers", PEERS_TABLE, e);
        let txn = store.database().begin_read().map_err(|e| err(e.into()))?;
        let table = match txn.open_table(PEERS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(err(e.into())),
        };
        let mut rows = 0;
        for row in table.iter().map_err(|e| err(e.into()))? {
            let (key, value) = row.map_err(|e| err(e.into()))?;
            rows += 1;
            let Ok(peer) = PeerId::from_bytes(key.value()) else {
                warn!(key = %hex::encode(key.value()), "peerstore: dropping a row whose key is not a PeerId");
                continue;
            };
            let decoded = serde_json::from_slice::<StoredPeer>(value.value())
                .map_err(|e| e.to_string())
                .and_then(|stored| stored.into_record(peer));
            match decoded {
                Ok(record) => {
                    self.records.insert(peer, record);
                    while self.records.len() > self.max_peers {
                        let Some(victim) = lowest(self.records.values(), now_ms, &self.params, None, &self.protected)
                        else {
                            break;
                        };
                        self.records.remove(&victim);
                        debug!(peer = %victim, "peerstore: evicted at load");
                    }
                }
                Err(reason) => warn!(%peer, %reason, "peerstore: dropping a row that does not decode"),
            }
        }
        Ok(rows)
    }

    /// The record of `peer`, if known.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.records.get(peer)
    }

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The most records kept.
    pub fn max_peers(&self) -> usize {
        self.max_peers
    }

    /// Sets the ZSIs whose records are evicted last (the current validator
    /// set, bounded by its size).
    pub fn set_protected(&mut self, protected: HashSet<ZsiId>) {
        self.protected = protected;
    }

    /// The reputation parameters scores are computed with.
    pub fn params(&self) -> &ReputationParams {
        &self.params
    }

    /// How many records have changes not yet written (see [`Peerstore::flush`]).
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Every known peer's record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PeerRecord> {
        self.records.values()
    }

    /// Notes contact with `peer` at `now_ms`, creating its record if it is
    /// new (evicting another if the peerstore is full). Batched.
    pub fn observe(&mut self, peer: PeerId, now_ms: u64) {
        self.upsert(peer, now_ms).last_seen_ms = now_ms;
        self.dirty.insert(peer);
        self.after_insert();
    }

    /// Records the outcome of a successful handshake: the verified ZSI (if
    /// any), the tier it gives, and the peer's agent string (cut to
    /// [`MAX_AGENT_BYTES`]). Also notes contact at `now_ms`. Written at once
    /// when the identity, tier or agent changed; batched otherwise, so a
    /// peer repeating its Hello causes no store write of its own.
    pub fn set_identity(
        &mut self,
        peer: PeerId,
        zsi_id: Option<ZsiId>,
        tier: Tier,
        agent: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let agent = truncate_agent(agent);
        let record = self.upsert(peer, now_ms);
        let changed = record.zsi_id != zsi_id || record.tier != tier || record.agent != agent;
        record.zsi_id = zsi_id;
        record.tier = tier;
        if record.agent != agent {
            record.agent = agent.to_owned();
        }
        record.last_seen_ms = now_ms;
        self.after_insert();
        if changed {
            self.write_now(&peer)
        } else {
            // The same identity again (a reconnect, a repeated Hello): the
            // contact time goes out with the next batch, not in a write of its own.
            self.dirty.insert(peer);
            Ok(())
        }
    }

    /// Changes the tier of a known peer (written at once if it changed).
    /// Does nothing for an unknown peer.
    pub fn set_tier(&mut self, peer: &PeerId, tier: Tier) -> Result<(), StoreError> {
        match self.records.get_mut(peer) {
            Some(record) if record.tier != tier => {
                record.tier = tier;
                self.write_now(peer)
            }
            _ => Ok(()),
        }
    }

    /// Adds addresses at which `peer` can be dialled, creating its record if
    /// it is new (with `last_seen_ms = now_ms`). The given addresses become
    /// the most recent, in the given order; duplicates are merged, at most
    /// [`MAX_ADDRS_PER_PEER`] are kept. A `/p2p/<peer>` suffix is removed;
    /// addresses of another peer or with any other `/p2p` component (relay
    /// circuits), with an unspecified IP (`0.0.0.0`, `::`), or longer than
    /// [`MAX_ADDR_BYTES`] are ignored; if none is left, nothing changes.
    /// Batched.
    pub fn add_addresses(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>, now_ms: u64) {
        let mut fresh: Vec<Multiaddr> = Vec::new();
        for addr in addrs {
            if fresh.len() >= MAX_ADDRS_PER_PEER {
                break;
            }
            if let Some(addr) = dialable(&peer, addr)
                && !fresh.contains(&addr)
            {
                fresh.push(addr);
            }
        }
        if fresh.is_empty() {
            return;
        }
        let record = self.upsert(peer, now_ms);
        let old = std::mem::take(&mut record.addrs);
        let mut merged = fresh;
        for addr in old {
            if merged.len() >= MAX_ADDRS_PER_PEER {
                break;
            }
            if !merged.contains(&addr) {
                merged.push(addr);
            }
        }
        record.addrs = merged;
        self.dirty.insert(peer);
        self.after_insert();
    }

    /// Records what `peer` did at `now_ms` (creating its record if it is new)
    /// and returns the outcome. A ban ([`Outcome::Banned`]) is written at
    /// once; other score changes are batched.
    pub fn record_event(&mut self, peer: PeerId, event: PeerEvent, now_ms: u64) -> Result<Outcome, StoreError> {
        let params = self.params;
        let outcome = self.upsert(peer, now_ms).reputation.record(event, now_ms, &params);
        self.after_insert();
        match outcome {
            Outcome::Banned { .. } => self.write_now(&peer)?,
            Outcome::Scored { .. } => {
                self.dirty.insert(peer);
            }
            Outcome::AlreadyBanned { .. } => {}
        }
        Ok(outcome)
    }

    /// Bans `peer` at `now_ms` for an offence whatever its score (see
    /// [`tiernet_core::reputation::PeerReputation::ban_for_offence`]).
    /// Written at once.
    pub fn ban_for_offence(&mut self, peer: PeerId, now_ms: u64) -> Result<Outcome, StoreError> {
        let params = self.params;
        let outcome = self.upsert(peer, now_ms).reputation.ban_for_offence(now_ms, &params);
        self.after_insert();
        if let Outcome::Banned { .. } = outcome {
            self.write_now(&peer)?;
        }
        Ok(outcome)
    }

    /// Bans `peer` until `until_ms` (an operator decision; a longer running
    /// ban is kept). Written at once.
    pub fn ban(&mut self, peer: PeerId, until_ms: u64) -> Result<(), StoreError> {
        let now_ms = unix_now_ms();
        self.upsert(peer, now_ms).reputation.ban_until(until_ms);
        self.after_insert();
        self.write_now(&peer)
    }

    /// Lifts `peer`'s ban, if it is known. Written at once.
    pub fn unban(&mut self, peer: &PeerId) -> Result<(), StoreError> {
        match self.records.get_mut(peer) {
            Some(record) => {
                record.reputation.unban();
                self.write_now(peer)
            }
            None => Ok(()),
        }
    }

    /// When `peer`'s ban ends, if it is banned at `now_ms`.
    pub fn banned_until(&self, peer: &PeerId, now_ms: u64) -> Option<u64> {
        self.records.get(peer)?.reputation.banned_until(now_ms)
    }

    /// `peer`'s local score at `now_ms`; 0.0 for an unknown peer.
    pub fn score(&self, peer: &PeerId, now_ms: u64) -> f64 {
        self.records
            .get(peer)
            .map_or(0.0, |r| r.reputation.score(now_ms, &self.params))
    }

    /// Up to `limit` peers to dial, best first: peers that are not banned at
    /// `now_ms` and have addresses, ordered by tier (highest first), then
    /// score at `now_ms` (highest first), then most recently seen.
    pub fn dial_candidates(&self, now_ms: u64, limit: usize) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut candidates: Vec<(&PeerRecord, f64)> = self
            .records
            .values()
            .filter(|r| !r.addrs.is_empty() && r.reputation.banned_until(now_ms).is_none())
            .map(|r| (r, r.reputation.score(now_ms, &self.params)))
            .collect();
        candidates.sort_by(|(a, a_score), (b, b_score)| {
            b.tier
                .cmp(&a.tier)
                .then(b_score.total_cmp(a_score))
                .then(b.last_seen_ms.cmp(&a.last_seen_ms))
                .then(a.peer_id.cmp(&b.peer_id))
        });
        candidates
            .into_iter()
            .take(limit)
            .map(|(r, _)| (r.peer_id, r.addrs.clone()))
            .collect()
    }

    /// Write transactions this peerstore committed since it was opened (each
    /// is a durable write): what a peer can make the node do to its disk.
    pub fn write_transactions(&self) -> u64 {
        self.write_transactions
    }

    /// Writes every dirty record, and deletes the rows of evicted peers, in
    /// one transaction. Returns how many records were written. On error
    /// nothing is forgotten: the next flush tries again.
    pub fn flush(&mut self) -> Result<usize, StoreError> {
        if self.dirty.is_empty() && self.evicted.is_empty() {
            return Ok(0);
        }
        self.write_transactions += 1;
        let store = &self.store;
        let err = |e: redb::Error| store.error("flush", PEERS_TABLE, e);
        let txn = store.database().begin_write().map_err(|e| err(e.into()))?;
        let mut written = 0;
        {
            let mut table = txn.open_table(PEERS).map_err(|e| err(e.into()))?;
            for peer in &self.evicted {
                table.remove(peer.to_bytes().as_slice()).map_err(|e| err(e.into()))?;
            }
            for peer in &self.dirty {
                if let Some(record) = self.records.get(peer) {
                    let value = encode(store, record)?;
                    table
                        .insert(peer.to_bytes().as_slice(), value.as_slice())
                        .map_err(|e| err(e.into()))?;
                    written += 1;
                }
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        self.dirty.clear();
        self.evicted.clear();
        Ok(written)
    }

    /// Writes `peer`'s record in its own transaction.
    fn write_now(&mut self, peer: &PeerId) -> Result<(), StoreError> {
        let Some(record) = self.records.get(peer) else {
            return Ok(());
        };
        self.write_transactions += 1;
        let store = &self.store;
        let err = |e: redb::Error| store.error("write peer", PEERS_TABLE, e);
        let value = encode(store, record)?;
        let txn = store.database().begin_write().map_err(|e| err(e.into()))?;
        {
            let mut table = txn.open_table(PEERS).map_err(|e| err(e.into()))?;
            table
                .insert(peer.to_bytes().as_slice(), value.as_slice())
                .map_err(|e| err(e.into()))?;
        }
        if let Err(e) = txn.commit() {
            // Keep the change for the next flush.
            self.dirty.insert(*peer);
            return Err(err(e.into()));
        }
        self.dirty.remove(peer);
        Ok(())
    }

    /// The record of `peer`, created (after evicting another if full) if new.
    fn upsert(&mut self, peer: PeerId, now_ms: u64) -> &mut PeerRecord {
        if !self.records.contains_key(&peer) {
            self.make_room(&peer, now_ms);
            self.evicted.remove(&peer);
        }
        self.records
            .entry(peer)
            .or_insert_with(|| PeerRecord::new(peer, now_ms))
    }

    /// Evicts records until there is room for one more (which is `keep`).
    fn make_room(&mut self, keep: &PeerId, now_ms: u64) {
        while self.records.len() >= self.max_peers {
            let Some(victim) = eviction_victim(self.records.values(), now_ms, &self.params, keep, &self.protected)
            else {
                break;
            };
            self.records.remove(&victim);
            self.dirty.remove(&victim);
            self.evicted.insert(victim);
            debug!(peer = %victim, "peerstore: evicted");
        }
    }

    /// Keeps the set of pending row deletions bounded: when it reaches
    /// `max_peers`, flushes. If that fails the deletions are dropped (logged);
    /// the stale rows are trimmed when the peerstore is next opened.
    fn after_insert(&mut self) {
        if self.evicted.len() < self.max_peers {
            return;
        }
        if let Err(error) = self.flush() {
            warn!(%error, pending = self.evicted.len(), "peerstore: cannot delete evicted peers; trimmed at next start");
            self.evicted.clear();
        }
    }
}

/// The JSON row for `record`.
fn encode(store: &Store, record: &PeerRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredPeer::from_record(record)).map_err(|source| StoreError::Encode {
        path: store.path().to_path_buf(),
        table: PEERS_TABLE,
        key: record.peer_id.to_string(),
        source,
    })
}

/// `addr` normalised for dialling `peer`: without a trailing `/p2p/<peer>`;
/// `None` if it is empty, names another peer or has another `/p2p` component
/// (relay circuits), has an unspecified IP, or is longer than [`MAX_ADDR_BYTES`].
fn dialable(peer: &PeerId, mut addr: Multiaddr) -> Option<Multiaddr> {
    if let Some(Protocol::P2p(id)) = addr.iter().last() {
        if id != *peer {
            return None;
        }
        addr.pop();
    }
    let ok = !addr.is_empty()
        && addr.len() <= MAX_ADDR_BYTES
        && addr.iter().all(|p| match p {
            Protocol::Ip4(ip) => !ip.is_unspecified(),
            Protocol::Ip6(ip) => !ip.is_unspecified(),
            Protocol::P2p(_) => false,
            _ => true,
        });
    ok.then_some(addr)
}

/// `agent` cut to at most [`MAX_AGENT_BYTES`] bytes on a char boundary.
fn truncate_agent(agent: &str) -> &str {
    if agent.len() <= MAX_AGENT_BYTES {
        return agent;
    }
    let mut end = MAX_AGENT_BYTES;
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    &agent[..end]
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::STORE_FILE;
    use redb::ReadableTableMetadata;

    fn params() -> ReputationParams {
        ReputationParams::default()
    }

    fn record(tier: Tier, score: f64, last_seen_ms: u64, banned_until_ms: u64) -> PeerRecord {
        PeerRecord {
            tier,
            reputation: PeerReputation::restore(score, 0, 0, 0, banned_until_ms),
            ..PeerRecord::new(PeerId::random(), last_seen_ms)
        }
    }

    #[test]
    fn eviction_prefers_low_tier_then_low_score_then_least_recent() {
        let now = 1_000;
        let keep = record(Tier::TL0, -90.0, 0, 0);
        let low_tier = record(Tier::TL0, 10.0, 900, 0);
        let low_score = record(Tier::TL0, -5.0, 999, 0);
        let old = record(Tier::TL0, -5.0, 10, 0);
        let good = record(Tier::TL3, -50.0, 0, 0);
        let all = [&keep, &low_tier, &low_score, &old, &good];
        let victim = |records: &[&PeerRecord]| {
            eviction_victim(records.iter().copied(), now, &params(), &keep.peer_id, &HashSet::new())
        };
        assert_eq!(victim(&all), Some(old.peer_id));
        assert_eq!(victim(&[&keep, &low_tier, &low_score, &good]), Some(low_score.peer_id));
        assert_eq!(victim(&[&keep, &low_tier, &good]), Some(low_tier.peer_id));
        assert_eq!(victim(&[&keep, &good]), Some(good.peer_id));
        assert_eq!(victim(&[&keep]), None);
        assert_eq!(victim(&[]), None);
    }

    #[test]
    fn eviction_keeps_running_bans_unless_all_are_banned() {
        let now = 1_000;
        let keep = record(Tier::TL0, 0.0, 0, 0);
        let banned_long = record(Tier::TL0, 0.0, 0, 50_000);
        let banned_short = record(Tier::TL0, 0.0, 0, 2_000);
        let expired_ban = record(Tier::TL0, 0.0, 0, 999);
        let trusted = record(Tier::TL5, 50.0, 999, 0);
        let victim = |records: &[&PeerRecord]| {
            eviction_victim(records.iter().copied(), now, &params(), &keep.peer_id, &HashSet::new())
        };
        // An unbanned peer goes before any banned one, even a trusted peer.
        assert_eq!(
            victim(&[&keep, &banned_long, &banned_short, &trusted]),
            Some(trusted.peer_id)
        );
        // A ban that has ended does not protect.
        assert_eq!(
            victim(&[&banned_long, &expired_ban, &trusted]),
            Some(expired_ban.peer_id)
        );
        // All banned: the ban that ends first.
        assert_eq!(
            victim(&[&keep, &banned_long, &banned_short]),
            Some(banned_short.peer_id)
        );
    }

    #[test]
    fn banned_records_are_evicted_before_validators_records() {
        let now = 1_000;
        let keep = record(Tier::TL0, 0.0, 0, 0);
        let mut validator = record(Tier::TL3, 0.0, 0, 0);
        let zsi = ZsiId(tiernet_core::hash::Hash32([7; 32]));
        validator.zsi_id = Some(zsi);
        let banned = record(Tier::TL0, -200.0, 0, 50_000);
        let stranger = record(Tier::TL0, 0.0, 0, 0);
        let protected: HashSet<ZsiId> = [zsi].into();
        let victim = |records: &[&PeerRecord]| {
            eviction_victim(records.iter().copied(), now, &params(), &keep.peer_id, &protected)
        };
        assert_eq!(victim(&[&keep, &validator, &banned, &stranger]), Some(stranger.peer_id));
        // The regression: a peerstore full of banned sybils pushed out the validator.
        assert_eq!(victim(&[&keep, &validator, &banned]), Some(banned.peer_id));
        assert_eq!(victim(&[&keep, &validator]), Some(validator.peer_id));
    }

    #[test]
    fn a_flood_of_banned_identities_does_not_push_a_validator_out_of_the_peerstore() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let zsi = ZsiId(tiernet_core::hash::Hash32([9; 32]));
        let mut peerstore = Peerstore::open_at(store, 8, params(), 0).unwrap();
        peerstore.set_protected([zsi].into());
        let validator = PeerId::random();
        peerstore.set_identity(validator, Some(zsi), Tier::TL3, "v", 0).unwrap();
        for _ in 0..20 {
            peerstore.ban(PeerId::random(), u64::MAX / 2).unwrap();
        }
        assert!(
            peerstore.get(&validator).is_some(),
            "the validator's record was evicted"
        );
        assert_eq!(peerstore.len(), 8);
    }

    #[test]
    fn agent_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate_agent(&long);
        assert!(cut.len() <= MAX_AGENT_BYTES && cut.len() >= MAX_AGENT_BYTES - 1);
        assert!(long.starts_with(cut));
        assert_eq!(truncate_agent("tiernet/0.1"), "tiernet/0.1");
    }

    #[test]
    fn dialable_normalises_and_rejects() {
        let peer = PeerId::random();
        let other = PeerId::random();
        let tcp: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        let with_self = tcp.clone().with(Protocol::P2p(peer));
        assert_eq!(dialable(&peer, with_self), Some(tcp.clone()));
        assert_eq!(dialable(&peer, tcp.clone().with(Protocol::P2p(other))), None);
        assert_eq!(dialable(&peer, "/ip4/0.0.0.0/tcp/1".parse().unwrap()), None);
        assert_eq!(dialable(&peer, "/ip6/::/tcp/1".parse().unwrap()), None);
        assert_eq!(dialable(&peer, Multiaddr::empty()), None);
        assert_eq!(dialable(&peer, Multiaddr::empty().with(Protocol::P2p(peer))), None);
        let long: Multiaddr = format!("/dns4/{}/tcp/1", "a".repeat(300)).parse().unwrap();
        assert_eq!(dialable(&peer, long), None);
        let dns: Multiaddr = "/dns4/node.example/tcp/443/wss".parse().unwrap();
        assert_eq!(dialable(&peer, dns.clone()), Some(dns));
    }

    #[test]
    fn a_corrupt_row_is_skipped_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        let good = PeerId::random();
        let bad_json = PeerId::random();
        let bad_version = PeerId::random();
        {
            let store = Store::open(&path).unwrap();
            let mut peers = Peerstore::open(store.clone(), 10, params()).unwrap();
            peers.set_identity(good, None, Tier::TL2, "good", 5).unwrap();
            drop(peers);
            let txn = store.database().begin_write().unwrap();
            {
                let mut table = txn.open_table(PEERS).unwrap();
                table.insert(bad_json.to_bytes().as_slice(), &b"{not json"[..]).unwrap();
                let mut stored = StoredPeer::from_record(&PeerRecord::new(bad_version, 1));
                stored.version = 99;
                let row = serde_json::to_vec(&stored).unwrap();
                table.insert(bad_version.to_bytes().as_slice(), row.as_slice()).unwrap();
                table.insert(&b"not a peer id"[..], &b"{}"[..]).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let peers = Peerstore::open(store.clone(), 10, params()).unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers.get(&good).unwrap().tier, Tier::TL2);
        assert!(peers.get(&bad_json).is_none());
        let txn = store.database().begin_read().unwrap();
        let table = txn.open_table(PEERS).unwrap();
        assert_eq!(table.len().unwrap(), 1, "the corrupt rows are deleted");
        assert!(table.get(good.to_bytes().as_slice()).unwrap().is_some());
    }

    #[test]
    fn excess_rows_are_evicted_at_open_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        let now = 1_000_000;
        let mut good = Vec::new();
        {
            let store = Store::open(&path).unwrap();
            let mut peers = Peerstore::open_at(store, 10, params(), now).unwrap();
            for i in 0..10u64 {
                let peer = PeerId::random();
                let tier = if i % 2 == 0 { Tier::TL3 } else { Tier::TL0 };
                peers.set_identity(peer, None, tier, "", now + i).unwrap();
                if tier == Tier::TL3 {
                    good.push(peer);
                }
            }
        }
        let store = Store::open(&path).unwrap();
        let peers = Peerstore::open_at(store.clone(), 5, params(), now).unwrap();
        assert_eq!(peers.len(), 5);
        for peer in &good {
            assert!(peers.get(peer).is_some(), "good peers survive");
        }
        let txn = store.database().begin_read().unwrap();
        assert_eq!(txn.open_table(PEERS).unwrap().len().unwrap(), 5);
    }

    #[test]
    fn evicted_rows_are_deleted_at_flush_and_pending_deletions_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(STORE_FILE)).unwrap();
        let mut peers = Peerstore::open_at(store.clone(), 3, params(), 0).unwrap();
        let rows = || {
            let txn = store.database().begin_read().unwrap();
            match txn.open_table(PEERS) {
                Ok(table) => table.len().unwrap(),
                Err(_) => 0,
            }
        };
        for now in 0..3 {
            peers.observe(PeerId::random(), now);
        }
        assert_eq!(peers.flush().unwrap(), 3);
        assert_eq!(rows(), 3);
        peers.observe(PeerId::random(), 10);
        peers.observe(PeerId::random(), 11);
        assert_eq!(peers.len(), 3);
        assert_eq!(peers.evicted.len(), 2);
        assert_eq!(rows(), 3, "nothing written before flush");
        // The third eviction reaches max_peers pending deletions: auto flush.
        peers.observe(PeerId::random(), 12);
        assert!(peers.evicted.is_empty());
        assert_eq!(peers.dirty_len(), 0);
        assert_eq!(rows(), 3);
    }
}
