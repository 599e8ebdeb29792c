//! The liveness table: which nodes this node hears on `meta`, and which of
//! them have gone silent.
//!
//! Sans-IO: [`LivenessTable::heard`] records an accepted heartbeat and
//! [`LivenessTable::tick`] finds the nodes silent for `offline_after`
//! heartbeat intervals; both take `now` in ms. The node turns the
//! transitions into a log line, the `tiernet_liveness_*` metrics and the
//! `/alerts` view. The table is bounded: when it is full, the entry heard
//! longest ago makes room (an offline one first).

use std::collections::BTreeMap;

use serde::Serialize;

/// Default most nodes tracked.
pub const DEFAULT_MAX_NODES: usize = 1024;

/// What an accepted heartbeat says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The sender's last decided height.
    pub height: u64,
    /// Its hash (hex, empty without a chain).
    pub head_hash: String,
    /// The sender's agent string.
    pub agent: String,
    /// The sender's connected peers.
    pub peer_count: u32,
    /// The round-trip times it measured: (PeerId text, ms).
    pub rtts: Vec<(String, u32)>,
    /// The sender's clock when it sent the heartbeat (ms).
    pub sent_ms: u64,
}

/// One tracked node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    last: Heard,
    /// Our clock when we heard it last.
    heard_ms: u64,
    online: bool,
    /// Heartbeats heard since it was added.
    heartbeats: u64,
}

/// A change of a node's liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Silent for `offline_after` intervals.
    Offline {
        /// The node (ZSI id hex).
        node: String,
        /// How long it has been silent, ms.
        silent_ms: u64,
    },
    /// Heard again after it was reported offline.
    Online {
        /// The node.
        node: String,
    },
}

/// A node as shown by `GET /liveness` and `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NodeLiveness {
    /// The node's ZSI id (hex). Observers (no ZSI) are not tracked.
    pub node: String,
    /// `online` or `offline`.
    pub state: String,
    /// Our clock when we last heard it (ms since the Unix epoch).
    pub last_heard_ms: u64,
    /// Milliseconds since then.
    pub silent_ms: u64,
    /// Its last heartbeat's propagation delay: sent (its clock) → heard
    /// (ours), ms; 0 if its clock is ahead.
    pub delay_ms: u64,
    /// Its last reported height.
    pub height: u64,
    /// Its last reported head hash.
    pub head_hash: String,
    /// Its agent string.
    pub agent: String,
    /// Its connected peers.
    pub peer_count: u32,
    /// The round-trip times it measured to its peers, ms.
    pub rtts_ms: BTreeMap<String, u32>,
    /// Heartbeats heard.
    pub heartbeats: u64,
}

/// The bounded table of nodes heard.
#[derive(Debug, Clone)]
pub struct LivenessTable {
    entries: BTreeMap<String, Entry>,
    max_nodes: usize,
    interval_ms: u64,
    offline_after: u32,
}

impl LivenessTable {
    /// A table of at most `max_nodes` nodes that reports a node offline after
    /// `offline_after` heartbeat intervals of `interval_ms` without one.
    pub fn new(max_nodes: usize, interval_ms: u64, offline_after: u32) -> Self {
        Self {
            entries: BTreeMap::new(),
            max_nodes: max_nodes.max(1),
            interval_ms: interval_ms.max(1),
            offline_after: offline_after.max(1),
        }
    }

    /// How long a node may be silent before it is offline, ms.
    pub fn offline_after_ms(&self) -> u64 {
        self.interval_ms.saturating_mul(u64::from(self.offline_after))
    }

    /// Records a heartbeat from `node` heard at `now`; returns
    /// [`Transition::Online`] when the node had been reported offline.
    pub fn heard(&mut self, node: &str, heard: Heard, now: u64) -> Option<Transition> {
        if let Some(entry) = self.entries.get_mut(node) {
            let was_offline = !entry.online;
            entry.last = heard;
            entry.heard_ms = now;
            entry.online = true;
            entry.heartbeats = entry.heartbeats.saturating_add(1);
            return was_offline.then(|| Transition::Online { node: node.to_owned() });
        }
        if self.entries.len() >= self.max_nodes {
            // Evict the node heard longest ago, offline ones first.
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.online, e.heard_ms))
                .map(|(k, _)| k.clone());
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(
            node.to_owned(),
            Entry {
                last: heard,
                heard_ms: now,
                online: true,
                heartbeats: 1,
            },
        );
        None
    }

    /// Marks nodes silent for [`LivenessTable::offline_after_ms`] offline
    /// and returns each new [`Transition::Offline`].
    pub fn tick(&mut self, now: u64) -> Vec<Transition> {
        let limit = self.offline_after_ms();
        let mut out = Vec::new();
        for (node, entry) in &mut self.entries {
            let silent = now.saturating_sub(entry.heard_ms);
            if entry.online && silent > limit {
                entry.online = false;
                out.push(Transition::Offline {
                    node: node.clone(),
                    silent_ms: silent,
                });
            }
        }
        out
    }

    /// (online, offline) counts.
    pub fn counts(&self) -> (usize, usize) {
        let online = self.entries.values().filter(|e| e.online).count();
        (online, self.entries.len() - online)
    }

    /// Every tracked node.
    pub fn view(&self, now: u64) -> Vec<NodeLiveness> {
        self.entries
            .iter()
            .map(|(node, e)| NodeLiveness {
                node: node.clone(),
                state: if e.online { "online" } else { "offline" }.to_owned(),
                last_heard_ms: e.heard_ms,
                silent_ms: now.saturating_sub(e.heard_ms),
                delay_ms: e.heard_ms.saturating_sub(e.last.sent_ms),
                height: e.last.height,
                head_hash: e.last.head_hash.clone(),
                agent: e.last.agent.clone(),
                peer_count: e.last.peer_count,
                rtts_ms: e.last.rtts.iter().cloned().collect(),
                heartbeats: e.heartbeats,
            })
            .collect()
    }

    /// The offline nodes (the `/alerts` view).
    pub fn offline(&self, now: u64) -> Vec<NodeLiveness> {
        self.view(now).into_iter().filter(|n| n.state == "offline").collect()
    }

    /// The online nodes whose reported height is more than `lag` blocks
    /// below the highest height an online node reported (falling behind).
    pub fn behind(&self, now: u64, lag: u64) -> Vec<NodeLiveness> {
        let best = self.best_height();
        self.view(now)
            .into_iter()
            .filter(|n| n.state == "online" && n.height.saturating_add(lag) < best)
            .collect()
    }

    /// The highest height any online node reported.
    pub fn best_height(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.online)
            .map(|e| e.last.height)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(height: u64) -> Heard {
        Heard {
            height,
            head_hash: String::new(),
            agent: "a".into(),
            peer_count: 3,
            rtts: vec![("p".into(), 4)],
            sent_ms: 990,
        }
    }

    #[test]
    fn a_silent_node_goes_offline_after_n_intervals_and_comes_back() {
        let mut t = LivenessTable::new(8, 100, 3);
        assert_eq!(t.heard("a", hb(1), 1_000), None);
        assert_eq!(t.heard("b", hb(1), 1_000), None);
        assert!(t.tick(1_300).is_empty(), "3 intervals exactly: not yet");
        t.heard("b", hb(2), 1_250);
        assert_eq!(
            t.tick(1_301),
            vec![Transition::Offline {
                node: "a".into(),
                silent_ms: 301
            }]
        );
        assert!(t.tick(1_400).is_empty(), "reported once");
        assert_eq!(t.counts(), (1, 1));
        assert_eq!(t.offline(1_400)[0].node, "a");
        assert_eq!(
            t.heard("a", hb(5), 1_500),
            Some(Transition::Online { node: "a".into() })
        );
        assert_eq!(t.counts(), (2, 0));
        assert_eq!(t.best_height(), 5);
        assert_eq!(t.view(1_500)[0].rtts_ms.get("p"), Some(&4));
        assert_eq!(t.view(1_500)[0].delay_ms, 510);
        t.heard("c", hb(40), 1_500);
        let behind: Vec<String> = t.behind(1_500, 10).into_iter().map(|n| n.node).collect();
        assert_eq!(behind, vec!["a".to_owned(), "b".to_owned()]);
        assert!(t.behind(1_500, 100).is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_evicts_offline_nodes_first() {
        let mut t = LivenessTable::new(2, 100, 1);
        t.heard("old", hb(1), 0);
        t.heard("x", hb(1), 500);
        t.tick(550); // "old" goes offline
        t.heard("new", hb(1), 600);
        let nodes: Vec<String> = t.view(600).into_iter().map(|n| n.node).collect();
        assert_eq!(nodes, vec!["new".to_owned(), "x".to_owned()]);
        for i in 0..100 {
            t.heard(&format!("n{i}"), hb(1), 700 + i);
        }
        assert_eq!(t.view(900).len(), 2);
    }
}
