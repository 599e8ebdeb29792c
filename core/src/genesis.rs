//! Genesis: the network's starting point. The network id, the tier
//! thresholds, the consensus parameters (timeouts, block time, the clock
//! skew a proposal may have: [`ConsensusParams`]), the registered
//! identities with their reputation records, and which of them validate
//! with what power.
//!
//! The file is JSON ([`GenesisFile`]; hex for keys and ids). [`Genesis::from_json`]
//! parses and checks it; every error names the field path and what was
//! expected (`identities[2].zsi_id: expected 64 hex digits`).
//!
//! ```json
//! {
//!   "network_id": "devnet",
//!   "genesis_time_ms": 1764000000000,
//!   "identities": [
//!     {
//!       "name": "validator-0",
//!       "zsi_id": "…64 hex…", "identity_key": "…", "vrf_key": "…",
//!       "reputation": { "uptime_minutes": 1440, "score": 100 },
//!       "validator": { "consensus_key": "…", "power": 10 }
//!     }
//!   ]
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::hash::Hash32;
use crate::identity::ZsiId;
use crate::identity::registry::{MemoryRegistry, RegistryError};
use crate::proof::program::ProgramSpec;
use crate::tier::{ReputationRecord, ThresholdsError, TierThresholds};
use crate::wire::sign::validators_hash;
use crate::wire::topic::InvalidNetworkId;
use crate::wire::{FieldError, NetworkId, Validate, limits, proto};

/// The genesis file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// The network id.
    pub network_id: String,
    /// Wall-clock time of the network's start, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Tier thresholds (defaults if absent).
    #[serde(default)]
    pub tiers: TiersFile,
    /// Consensus timeouts (defaults if absent).
    #[serde(default)]
    pub consensus: ConsensusParams,
    /// Uptime crediting: window length and age, witnesses, heartbeat
    /// interval, the length of a credited minute (defaults if absent).
    #[serde(default)]
    pub uptime: UptimeParams,
    /// Registered identities.
    pub identities: Vec<GenesisIdentity>,
    /// STARK programs (`stwo/v1` proofs; [`ProgramSpec`]): the first
    /// programs registered in chain state. With `tiernet/posw/v1` listed,
    /// an identity can register itself with a proof of sequential work.
    /// Empty (the default): no permissionless registration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stark_programs: Vec<ProgramSpec>,
}

/// How uptime is earned and credited (`uptime/v1` proofs), set in genesis
/// so every node credits alike.
///
/// A subject's credited windows are recorded in chain state: a window
/// must start after the last credited one, span at most `window_blocks`,
/// and end at most `max_age_blocks` before the block that includes it.
/// Production networks keep the defaults; a devnet shortens
/// `minute_ms` so that tiers move in seconds (with the tier threshold
/// `available_uptime_minutes` still counted in those minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UptimeParams {
    /// Longest window one proof may claim, in blocks (default 3600: an
    /// hour of one-second blocks).
    pub window_blocks: u64,
    /// How many blocks before the including block a window may end
    /// (default 3600); older windows are refused, so uptime cannot be
    /// banked and claimed later.
    pub max_age_blocks: u64,
    /// Fewest distinct registered witnesses (other than the subject), at
    /// least 1 (default 2: no single peer vouches alone).
    pub min_witnesses: u64,
    /// The heartbeat interval the credit assumes, ms (default 10 000): a
    /// window of `w` ms allows `w / interval + 1` heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Chain milliseconds per credited minute (default 60 000). A devnet
    /// may set 1 000 so that one second of witnessed uptime counts as a
    /// minute.
    pub minute_ms: u64,
}

impl Default for UptimeParams {
    fn default() -> Self {
        Self {
            window_blocks: 3_600,
            max_age_blocks: 3_600,
            min_witnesses: 2,
            heartbeat_interval_ms: 10_000,
            minute_ms: 60_000,
        }
    }
}

impl UptimeParams {
    /// Checks that every parameter is positive.
    pub fn validate(&self) -> Result<(), GenesisError> {
        for (value, path) in [
            (self.window_blocks, "uptime.window_blocks"),
            (self.max_age_blocks, "uptime.max_age_blocks"),
            (self.min_witnesses, "uptime.min_witnesses"),
            (self.heartbeat_interval_ms, "uptime.heartbeat_interval_ms"),
            (self.minute_ms, "uptime.minute_ms"),
        ] {
            if value == 0 {
                return Err(GenesisError::Field {
                    path: path.into(),
                    expected: "a positive number",
                });
            }
        }
        if self.min_witnesses > crate::wire::limits::MAX_UPTIME_WITNESSES as u64 {
            return Err(GenesisError::Field {
                path: "uptime.min_witnesses".into(),
                expected: "at most MAX_UPTIME_WITNESSES",
            });
        }
        Ok(())
    }
}

/// Tier thresholds as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TiersFile {
    /// Uptime for TL2, minutes.
    pub available_uptime_minutes: u64,
    /// Score for TL3.
    pub committed_score: u64,
    /// Score for TL4.
    pub reliable_score: u64,
    /// Score for TL5.
    pub trusted_score: u64,
}

impl Default for TiersFile {
    fn default() -> Self {
        let t = TierThresholds::default();
        Self {
            available_uptime_minutes: t.available_uptime_minutes,
            committed_score: t.committed_score,
            reliable_score: t.reliable_score,
            trusted_score: t.trusted_score,
        }
    }
}

impl From<TiersFile> for TierThresholds {
    fn from(t: TiersFile) -> Self {
        Self {
            available_uptime_minutes: t.available_uptime_minutes,
            committed_score: t.committed_score,
            reliable_score: t.reliable_score,
            trusted_score: t.trusted_score,
        }
    }
}

/// Consensus parameters: round timeouts (each grows by `timeout_delta_ms`
/// per round), the block time, and how far ahead of a validator's clock a
/// proposal may be. (The bound on how far a block may be after its parent
/// is the protocol constant [`crate::chain::block::MAX_BLOCK_INTERVAL_MS`],
/// which light clients apply without a genesis.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusParams {
    /// Time to wait for a proposal in round 0.
    pub propose_timeout_ms: u64,
    /// Time to wait for more prevotes after seeing 2/3 of any.
    pub prevote_timeout_ms: u64,
    /// Time to wait for more precommits after seeing 2/3 of any.
    pub precommit_timeout_ms: u64,
    /// Added to each timeout per round.
    pub timeout_delta_ms: u64,
    /// Target time between blocks; the proposer waits this long after a commit.
    /// Below [`crate::chain::block::MAX_BLOCK_INTERVAL_MS`].
    pub block_time_ms: u64,
    /// How far a proposal's `time_ms` may be ahead of a validator's clock
    /// for it to vote for the proposal (default 5 s): a proposal further
    /// ahead gets a nil prevote. It bounds how far a faulty proposer can
    /// move chain time ahead of the honest validators' clocks; honest
    /// validators' clocks must agree to within it, or their proposals go
    /// unvoted. At most [`crate::chain::block::MAX_BLOCK_INTERVAL_MS`].
    pub max_clock_skew_ms: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            propose_timeout_ms: 3_000,
            prevote_timeout_ms: 1_000,
            precommit_timeout_ms: 1_000,
            timeout_delta_ms: 500,
            block_time_ms: 1_000,
            max_clock_skew_ms: 5_000,
        }
    }
}

impl ConsensusParams {
    /// Checks the time parameters against
    /// [`crate::chain::block::MAX_BLOCK_INTERVAL_MS`]: a block time at or
    /// above it would make chain time fall ever further behind the clocks,
    /// and a skew above it would allow what the time rule refuses.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let max = crate::chain::block::MAX_BLOCK_INTERVAL_MS;
        if self.block_time_ms >= max {
            return Err(GenesisError::Field {
                path: "consensus.block_time_ms".into(),
                expected: "less than MAX_BLOCK_INTERVAL_MS (86400000)",
            });
        }
        if self.max_clock_skew_ms > max {
            return Err(GenesisError::Field {
                path: "consensus.max_clock_skew_ms".into(),
                expected: "at most MAX_BLOCK_INTERVAL_MS (86400000)",
            });
        }
        Ok(())
    }
}

/// A registered identity as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisIdentity {
    /// A human label (not part of consensus).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// zsi_id, 64 hex digits.
    pub zsi_id: String,
    /// Ed25519 identity key, 64 hex digits.
    pub identity_key: String,
    /// sr25519 VRF key, 64 hex digits.
    pub vrf_key: String,
    /// On-chain reputation at genesis.
    #[serde(default)]
    pub reputation: ReputationFile,
    /// Present if the identity validates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<GenesisValidator>,
}

/// A reputation record as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReputationFile {
    /// Credited uptime, minutes.
    pub uptime_minutes: u64,
    /// Included precommits.
    pub participation: u64,
    /// Score.
    pub score: u64,
    /// Slashed.
    pub slashed: bool,
}

impl From<ReputationFile> for ReputationRecord {
    fn from(r: ReputationFile) -> Self {
        Self {
            uptime_minutes: r.uptime_minutes,
            participation: r.participation,
            score: r.score,
            slashed: r.slashed,
        }
    }
}

/// A validator's consensus key and power as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Ed25519 key that signs votes, 64 hex digits.
    pub consensus_key: String,
    /// Voting power, positive.
    pub power: u64,
}

/// A genesis file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not JSON of the right shape.
    #[error("{path}: {message}")]
    Parse {
        /// Field path where parsing failed (`.` for the top).
        path: String,
        /// What serde reported, with line and column.
        message: String,
    },
    /// The network id breaks the rules.
    #[error("network_id: {0}")]
    NetworkId(#[from] InvalidNetworkId),
    /// A field does not hold what it must.
    #[error("{path}: expected {expected}")]
    Field {
        /// Field path.
        path: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An identity cannot be registered.
    #[error("identities[{index}]: {error}")]
    Identity {
        /// Position in the list.
        index: usize,
        /// Why.
        error: RegistryError,
    },
    /// Tier thresholds that do not increase.
    #[error("tiers: {0}")]
    Tiers(#[from] ThresholdsError),
    /// The validator set is unusable.
    #[error("validator set: {0}")]
    Validators(String),
    /// A STARK program that cannot be used.
    #[error("stark_programs[{index}]: {reason}")]
    Program {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// A checked genesis.
#[derive(Debug, Clone)]
pub struct Genesis {
    /// The network.
    pub network: NetworkId,
    /// Start time, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Tier thresholds.
    pub thresholds: TierThresholds,
    /// Consensus timeouts.
    pub consensus: ConsensusParams,
    /// Uptime crediting.
    pub uptime: UptimeParams,
    /// Registered identities with their reputation.
    pub registry: MemoryRegistry,
    /// The initial validator set, in canonical order.
    pub validators: proto::ValidatorSet,
    /// The file it came from, for re-serialisation.
    pub file: GenesisFile,
}

fn hex32(path: String, value: &str) -> Result<[u8; 32], GenesisError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|_| GenesisError::Field {
        path,
        expected: "64 hex digits",
    })?;
    Ok(out)
}

impl Genesis {
    /// Parses and checks a genesis JSON document.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let file: GenesisFile = serde_path_to_error::deserialize(&mut de).map_err(|e| GenesisError::Parse {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        Genesis::from_file(file)
    }

    /// Checks a parsed genesis file.
    pub fn from_file(file: GenesisFile) -> Result<Genesis, GenesisError> {
        let network = NetworkId::new(&file.network_id)?;
        let thresholds = TierThresholds::from(file.tiers);
        thresholds.validate()?;
        file.consensus.validate()?;
        file.uptime.validate()?;
        let mut registry = MemoryRegistry::new();
        let mut validators = Vec::new();
        for (index, identity) in file.identities.iter().enumerate() {
            let at = |field: &str| format!("identities[{index}].{field}");
            let record = proto::IdentityRecord {
                zsi_id: hex32(at("zsi_id"), &identity.zsi_id)?.to_vec(),
                identity_key: hex32(at("identity_key"), &identity.identity_key)?.to_vec(),
                vrf_key: hex32(at("vrf_key"), &identity.vrf_key)?.to_vec(),
                reputation: Some((&ReputationRecord::from(identity.reputation)).into()),
            };
            registry
                .register(&record)
                .map_err(|error| GenesisError::Identity { index, error })?;
            if let Some(validator) = &identity.validator {
                if validator.power == 0 {
                    return Err(GenesisError::Field {
                        path: at("validator.power"),
                        expected: "a positive voting power",
                    });
                }
                validators.push(proto::Validator {
                    zsi_id: record.zsi_id.clone(),
                    consensus_key: hex32(at("validator.consensus_key"), &validator.consensus_key)?.to_vec(),
                    power: validator.power,
                });
            }
        }
        if validators.len() > limits::MAX_VALIDATORS {
            return Err(GenesisError::Validators(format!(
                "{} validators, at most {} allowed",
                validators.len(),
                limits::MAX_VALIDATORS
            )));
        }
        for (index, program) in file.stark_programs.iter().enumerate() {
            program
                .check()
                .map_err(|reason| GenesisError::Program { index, reason })?;
            if file.stark_programs[..index].iter().any(|p| p.id == program.id) {
                return Err(GenesisError::Program {
                    index,
                    reason: format!("program {:?} listed twice", program.id),
                });
            }
        }
        validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.zsi_id.cmp(&b.zsi_id)));
        let validators = proto::ValidatorSet { validators };
        validators
            .validate()
            .map_err(|e: FieldError| GenesisError::Validators(e.to_string()))?;
        Ok(Genesis {
            network,
            genesis_time_ms: file.genesis_time_ms,
            thresholds,
            consensus: file.consensus,
            uptime: file.uptime,
            registry,
            validators,
            file,
        })
    }

    /// The genesis as pretty JSON.
    pub fn to_json(&self) -> String {
        self.file.to_json()
    }

    /// Hash of the initial validator set.
    pub fn validators_hash(&self) -> Hash32 {
        validators_hash(&self.validators)
    }

    /// Whether `zsi_id` is in the initial validator set.
    pub fn is_validator(&self, zsi_id: &ZsiId) -> bool {
        self.validators
            .validators
            .iter()
            .any(|v| v.zsi_id.as_slice() == zsi_id.as_bytes())
    }
}

impl GenesisFile {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and integers cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl GenesisIdentity {
    /// The entry for a ZSI identity's public keys.
    pub fn new(name: &str, public: &crate::identity::ZsiPublic, reputation: ReputationFile) -> Self {
        Self {
            name: name.to_owned(),
            zsi_id: public.zsi_id().to_string(),
            identity_key: hex::encode(public.identity_key.as_bytes()),
            vrf_key: hex::encode(public.vrf_key.to_bytes()),
            reputation,
            validator: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ZsiKeypair;
    use crate::identity::registry::IdentityRegistry;
    use crate::tier::{Tier, tier_of};

    fn file(n: usize) -> GenesisFile {
        let identities = (0..n)
            .map(|i| {
                let key = ZsiKeypair::from_seed(format!("v{i}").as_bytes()).unwrap();
                let mut identity = GenesisIdentity::new(
                    &format!("validator-{i}"),
                    &key.public(),
                    ReputationFile {
                        uptime_minutes: 1440,
                        score: 100,
                        ..Default::default()
                    },
                );
                identity.validator = Some(GenesisValidator {
                    consensus_key: hex::encode(key.public().identity_key.as_bytes()),
                    power: 10,
                });
                identity
            })
            .collect();
        GenesisFile {
            stark_programs: Vec::new(),
            network_id: "devnet".into(),
            genesis_time_ms: 1,
            tiers: TiersFile::default(),
            consensus: ConsensusParams::default(),
            uptime: Default::default(),
            identities,
        }
    }

    #[test]
    fn round_trip_and_registry() {
        let text = file(4).to_json();
        let genesis = Genesis::from_json(&text).unwrap();
        assert_eq!(genesis.registry.len(), 4);
        assert_eq!(genesis.validators.validators.len(), 4);
        let key = ZsiKeypair::from_seed(b"v2").unwrap();
        let registered = genesis.registry.lookup(&key.zsi_id()).unwrap();
        assert_eq!(tier_of(Some(&registered.reputation), &genesis.thresholds), Tier::TL3);
        assert!(genesis.is_validator(&key.zsi_id()));
        assert_eq!(
            Genesis::from_json(&genesis.to_json()).unwrap().validators,
            genesis.validators
        );
    }

    #[test]
    fn errors_name_the_field() {
        let mut f = file(3);
        f.identities[2].vrf_key = "xyz".into();
        let err = Genesis::from_json(&f.to_json()).unwrap_err().to_string();
        assert_eq!(err, "identities[2].vrf_key: expected 64 hex digits");

        let mut f = file(3);
        f.identities[1].zsi_id = f.identities[0].zsi_id.clone();
        let err = Genesis::from_json(&f.to_json()).unwrap_err().to_string();
        assert!(err.starts_with("identities[1]: identity "), "{err}");

        let err = Genesis::from_json(r#"{"network_id":"devnet","genesis_time_ms":"soon","identities":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("genesis_time_ms: invalid type"), "{err}");

        let err = Genesis::from_json(r#"{"network_id":"devnet","genesis_time_ms":1,"identities":[],"extra":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");

        let err = Genesis::from_json(r#"{"network_id":"Dev Net","genesis_time_ms":1,"identities":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("network_id: invalid network id"), "{err}");
    }

    #[test]
    fn time_parameters_are_bounded() {
        let mut f = file(1);
        f.consensus.max_clock_skew_ms = crate::chain::block::MAX_BLOCK_INTERVAL_MS + 1;
        let err = Genesis::from_file(f).unwrap_err().to_string();
        assert!(
            err.starts_with("consensus.max_clock_skew_ms: expected at most"),
            "{err}"
        );
        let mut f = file(1);
        f.consensus.block_time_ms = crate::chain::block::MAX_BLOCK_INTERVAL_MS;
        let err = Genesis::from_file(f).unwrap_err().to_string();
        assert!(err.starts_with("consensus.block_time_ms: expected less than"), "{err}");
        // A file written without the skew gets the default.
        let mut value: serde_json::Value = serde_json::from_str(&file(1).to_json()).unwrap();
        value["consensus"].as_object_mut().unwrap().remove("max_clock_skew_ms");
        let genesis = Genesis::from_json(&value.to_string()).unwrap();
        assert_eq!(genesis.consensus.max_clock_skew_ms, 5_000);
    }

    #[test]
    fn a_genesis_without_validators_is_refused() {
        let mut f = file(2);
        for identity in &mut f.identities {
            identity.validator = None;
        }
        assert!(matches!(Genesis::from_file(f), Err(GenesisError::Validators(_))));
        let mut f = file(2);
        f.identities[0].validator.as_mut().unwrap().power = 0;
        assert!(
            Genesis::from_file(f)
                .unwrap_err()
                .to_string()
                .contains("validator.power")
        );
    }
}
