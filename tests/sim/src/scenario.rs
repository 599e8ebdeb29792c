//! Scenario files (TOML): the network, what happens to it, and the pass
//! lines. Unknown keys are refused, so a typo cannot silently turn a pass
//! line off.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Most nodes (honest and adversarial) one run may start.
pub const MAX_NODES: usize = 400;
/// Longest run.
pub const MAX_DURATION_S: u64 = 3600;

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; the report goes to `<out>/<name>/`.
    pub name: String,
    /// What it shows, for the report.
    pub description: String,
    /// Seed of placement, topology, jitter and adversary choices.
    #[serde(default = "one")]
    pub seed: u64,
    /// How long the run lasts after the network is up.
    pub duration_s: u64,
    /// Seconds after start before measuring (meshes form, first blocks).
    #[serde(default = "warmup")]
    pub warmup_s: u64,
    /// Validators (TL3 members of the validator set).
    pub validators: usize,
    /// Registered non-validator full nodes by tier, e.g. `{ TL1 = 5, TL2 = 5 }`.
    #[serde(default)]
    pub members: std::collections::BTreeMap<String, usize>,
    /// Full nodes without a ZSI identity (TL0 observers).
    #[serde(default)]
    pub observers: usize,
    /// Native light clients (tiernet-light over loopback TCP).
    #[serde(default)]
    pub light_clients: usize,
    /// Peers each node dials at start (a random graph).
    #[serde(default = "links")]
    pub links_per_node: usize,
    /// Jitter as a fraction of each link's one-way delay.
    #[serde(default = "jitter")]
    pub jitter: f64,
    /// Upload bandwidth per node, Mbit/s.
    #[serde(default = "upload")]
    pub upload_mbps: u64,
    /// Short uptime windows and one heartbeat a second, as in a devnet
    /// (`genesis --short-uptime`): nodes witness heartbeats and submit
    /// their own uptime proofs during the run, so `proofs` carries real
    /// traffic. Default on.
    #[serde(default = "yes")]
    pub uptime: bool,
    /// Adversaries.
    #[serde(default)]
    pub adversary: Vec<Adversary>,
    /// Things that happen during the run.
    #[serde(default)]
    pub event: Vec<Event>,
    /// Pass lines.
    #[serde(default)]
    pub pass: Vec<PassLine>,
}

fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}
fn warmup() -> u64 {
    20
}
fn links() -> usize {
    5
}
fn jitter() -> f64 {
    0.1
}
fn upload() -> u64 {
    100
}

/// An adversarial behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adversary {
    /// What they do.
    pub kind: AdversaryKind,
    /// How many.
    pub count: usize,
    /// Honest nodes each one connects to.
    #[serde(default = "links")]
    pub links: usize,
    /// When the behaviour turns bad (seconds after start), for kinds that
    /// first behave.
    #[serde(default)]
    pub turn_at_s: u64,
    /// Messages per second each one sends when flooding or publishing garbage.
    #[serde(default = "rate")]
    pub rate_per_s: f64,
}

fn rate() -> f64 {
    10.0
}

/// Adversarial behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdversaryKind {
    /// Plain GossipSub peers that take mesh slots and never forward (they
    /// never validate, so GossipSub never forwards for them).
    NeverForward,
    /// A registered TL1 tiernet node that publishes forged proofs and blocks.
    InvalidPublisher,
    /// Plain GossipSub peers that forward honestly until `turn_at_s`, then
    /// publish valid-looking observer heartbeats at `rate_per_s` (ten times
    /// what a peer may relay) to every connected peer, and redial every
    /// neighbour that drops them.
    Flood,
    /// Plain GossipSub peers that forward honestly until `turn_at_s`, then
    /// all disconnect at once, reconnect, spam invalid messages.
    Sybil,
    /// Full nodes that answer light-client sync requests with forgeries
    /// (`testing.forge_sync = "all"`).
    ForgingServer,
    /// Fresh identities (plain GossipSub peers, no Hello) that dial the
    /// first validator from `turn_at_s` and redial whenever they are
    /// dropped: they try to fill its connection slots.
    Slots,
}

impl AdversaryKind {
    /// Whether it is a plain rust-libp2p peer (`adversary.rs`) rather than a
    /// tiernet node.
    pub fn is_raw(self) -> bool {
        matches!(self, Self::NeverForward | Self::Flood | Self::Sybil | Self::Slots)
    }
}

/// Something that happens during a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Seconds after start.
    pub at_s: u64,
    /// What.
    pub action: Action,
    /// For `partition`: how many validators are on the first side; the
    /// other validators and every other node are split by index parity.
    #[serde(default)]
    pub first_side_validators: usize,
    /// For `churn`: the fraction of honest full nodes crashed each time.
    #[serde(default)]
    pub fraction: f64,
    /// For `churn`: repeat every this many seconds until the end (0: once).
    #[serde(default)]
    pub every_s: u64,
    /// For `churn` and `crash`: how long a crashed node stays down.
    #[serde(default = "down")]
    pub down_s: u64,
    /// For `crash`: the node (index; validators come first).
    #[serde(default)]
    pub node: usize,
}

fn down() -> u64 {
    5
}

/// Event actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Split the network (see [`Event::first_side_validators`]).
    Partition,
    /// End the partition.
    Heal,
    /// Crash (abort, nothing flushed) and later restart a fraction of nodes.
    Churn,
    /// Crash one node (see [`Event::node`]) and restart it `down_s` later.
    Crash,
}

/// One pass line: a named check of the run's figures against a bound.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassLine {
    /// Which figure (see `crate::analysis::CHECKS`).
    pub check: String,
    /// The bound.
    pub bound: f64,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        scenario
            .check()
            .map_err(|reason| ScenarioError::Invalid { path: shown, reason })?;
        Ok(scenario)
    }

    /// Honest full nodes (validators, members, observers).
    pub fn honest_nodes(&self) -> usize {
        self.validators + self.members.values().sum::<usize>() + self.observers
    }

    fn check(&self) -> Result<(), String> {
        if self.validators == 0 {
            return Err("validators: at least one".into());
        }
        let adversaries: usize = self.adversary.iter().map(|a| a.count).sum();
        let total = self.honest_nodes() + adversaries + self.light_clients;
        if total > MAX_NODES {
            return Err(format!("{total} nodes in all; at most {MAX_NODES}"));
        }
        if self.duration_s == 0 || self.duration_s > MAX_DURATION_S {
            return Err(format!("duration_s: 1 to {MAX_DURATION_S}"));
        }
        if self.warmup_s >= self.duration_s {
            return Err("warmup_s must be shorter than duration_s".into());
        }
        for tier in self.members.keys() {
            if !["TL1", "TL2", "TL3", "TL4", "TL5"].contains(&tier.as_str()) {
                return Err(format!("members: unknown tier {tier:?} (TL1..TL5)"));
            }
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("jitter: 0 to 1".into());
        }
        for line in &self.pass {
            if !crate::analysis::CHECKS.iter().any(|(name, _, _)| *name == line.check) {
                return Err(format!("pass: unknown check {:?}", line.check));
            }
        }
        for event in &self.event {
            if event.action == Action::Churn && !(0.0..=1.0).contains(&event.fraction) {
                return Err("event: churn fraction 0 to 1".into());
            }
            if event.action == Action::Crash && event.node >= self.honest_nodes() {
                return Err(format!(
                    "event: crash node {} is not one of the {} honest nodes",
                    event.node,
                    self.honest_nodes()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!scenario.pass.is_empty(), "{} has no pass line", path.display());
            names.push(scenario.name);
        }
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(
            before,
            names.len(),
            "scenario names must be unique (reports would collide)"
        );
        assert!(names.len() >= 11, "{names:?}");
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join("s.toml");
            std::fs::write(&path, text).unwrap();
            Scenario::load(&path).map(|_| ()).unwrap_err().to_string()
        };
        let base = "name = \"x\"\ndescription = \"\"\nduration_s = 60\nvalidators = 4\n";
        assert!(write(&format!("{base}validtors = 3\n")).contains("unknown field"));
        assert!(write(&format!("{base}[[pass]]\ncheck = \"delivery\"\nbound = 1\n")).contains("unknown check"));
        assert!(write(&format!("{base}observers = 500\n")).contains("at most"));
        assert!(write(&format!("{base}members = {{ TL9 = 1 }}\n")).contains("unknown tier"));
        assert!(
            write("name = \"x\"\ndescription = \"\"\nduration_s = 10\nwarmup_s = 20\nvalidators = 1\n")
                .contains("warmup")
        );
    }
}
