//! The file-writing subcommands: `init` (a node's data directory) and
//! `genesis` (a development network's genesis with its keys).
//!
//! Both refuse to overwrite: an existing `config.toml`, `genesis.json` or
//! generated key file is an error naming the file, and nothing is written
//! over it. Each returns what it did; its [`Display`](fmt::Display) is the
//! stdout output of the command, one `key: value` line per fact:
//!
//! | command | lines |
//! |---|---|
//! | `init` | `peer_id: <PeerId>`, `zsi_id: <hex>`, `config: <path>` |
//! | `genesis` | `identity: <name> <zsi hex> <tier> <zsi_key path>` per identity, then `genesis: <path>` |

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use tiernet_core::genesis::{
    ConsensusParams, Genesis, GenesisError, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile,
};
use tiernet_core::identity::{KeyFileError, KeyOrigin, NodeKeypair, ZsiId, ZsiKeypair};
use tiernet_core::tier::{Tier, TierThresholds, tier_of};
use tiernet_core::wire::limits::MAX_VALIDATORS;

use crate::config::{ConfigError, NodeConfig, default_config_toml};

/// File name of the config file `init` writes in the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the node key in the data directory.
pub const NODE_KEY_FILE: &str = "node_key";
/// File name of the ZSI key in the data directory (and in each `genesis` node directory).
pub const ZSI_KEY_FILE: &str = "zsi_key";
/// File name of the genesis file `genesis` writes.
pub const GENESIS_FILE: &str = "genesis.json";
/// Most identities (validators plus members) one `genesis` run creates.
pub const MAX_GENESIS_IDENTITIES: usize = MAX_VALIDATORS;
/// Voting power of each validator unless `--power` says otherwise.
pub const DEFAULT_VALIDATOR_POWER: u64 = 10;

/// A subcommand that could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The file to be written already exists.
    #[error("{path} already exists; refusing to overwrite it (move it away first)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Whether a file exists could not be checked.
    #[error("cannot check whether {path} exists")]
    Check {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A directory could not be created.
    #[error("cannot create directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The data directory cannot be written into the config file.
    #[error("data directory {path}: expected a UTF-8 path (the config file is UTF-8 text)")]
    NonUtf8Path {
        /// The directory.
        path: PathBuf,
    },
    /// A key file could not be loaded, created or written.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The config file `init` generated does not read back (a bug).
    #[error("the generated {path} does not read back as a config file: {source}")]
    GeneratedConfig {
        /// The file it was going to be.
        path: PathBuf,
        /// What the parser said.
        source: ConfigError,
    },
    /// The config file `init` generated reads back with another `data_dir` (a bug).
    #[error("the generated {path} reads back with data_dir {found}; expected {expected}")]
    DataDirReadBack {
        /// The file it was going to be.
        path: PathBuf,
        /// The directory it should name.
        expected: PathBuf,
        /// The directory it names.
        found: PathBuf,
    },
    /// The genesis `genesis` generated does not check (a bug, or parameters
    /// the checks refuse, e.g. a total power that overflows).
    #[error("the generated {path} is not a valid genesis: {source}")]
    GeneratedGenesis {
        /// The file it was going to be.
        path: PathBuf,
        /// What the check said.
        source: GenesisError,
    },
    /// `--validators 0`.
    #[error("--validators 0: expected at least 1 validator")]
    NoValidators,
    /// Too many identities in total.
    #[error(
        "{validators} validators + {members} members = {total} identities; expected at most {MAX_GENESIS_IDENTITIES}"
    )]
    TooManyIdentities {
        /// Validators asked for.
        validators: usize,
        /// Members asked for.
        members: usize,
        /// Their sum.
        total: usize,
    },
}

fn exists(path: &Path) -> Result<bool, CommandError> {
    // `symlink_metadata`: a dangling symlink still counts as "exists".
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CommandError::Check {
            path: path.to_owned(),
            source,
        }),
    }
}

fn refuse_existing(path: &Path) -> Result<(), CommandError> {
    if exists(path)? {
        return Err(CommandError::Exists { path: path.to_owned() });
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), CommandError> {
    fs::create_dir_all(path).map_err(|source| CommandError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new file (never over an existing one) and fsyncs it.
fn write_new_file(path: &Path, contents: &str) -> Result<(), CommandError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                CommandError::Exists { path: path.to_owned() }
            } else {
                CommandError::Write {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| CommandError::Write {
            path: path.to_owned(),
            source,
        })
}

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

/// What `init` did.
#[derive(Debug, Clone)]
pub struct InitOutcome {
    /// The node's PeerId (from `node_key`).
    pub peer_id: PeerId,
    /// The node's ZSI id (from `zsi_key`).
    pub zsi_id: ZsiId,
    /// The config file written.
    pub config_path: PathBuf,
    /// The node key file, and whether it was created or already there.
    pub node_key: (PathBuf, KeyOrigin),
    /// The ZSI key file, and whether it was created or already there.
    pub zsi_key: (PathBuf, KeyOrigin),
}

impl fmt::Display for InitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "peer_id: {}", self.peer_id)?;
        writeln!(f, "zsi_id: {}", self.zsi_id)?;
        writeln!(f, "config: {}", self.config_path.display())
    }
}

/// The default config document with its `data_dir` line set to `data_dir`.
pub fn config_toml_for(data_dir: &Path) -> Result<String, CommandError> {
    let dir = data_dir.to_str().ok_or_else(|| CommandError::NonUtf8Path {
        path: data_dir.to_owned(),
    })?;
    // A TOML basic string with every needed escape.
    let quoted = toml::Value::String(dir.to_owned()).to_string();
    let mut out = String::new();
    for line in default_config_toml().lines() {
        if line.starts_with("data_dir = ") {
            out.push_str("data_dir = ");
            out.push_str(&quoted);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// `tiernet-node init`: prepares `data_dir` for a node.
///
/// Writes `<data_dir>/config.toml` (the default config with `data_dir` set
/// to the directory's absolute path) and creates `<data_dir>/node_key` and
/// `<data_dir>/zsi_key` unless they exist (existing keys are kept and
/// reported). An existing `config.toml` is an error, checked before anything
/// is touched; the config file is written last, so a failed `init` can be
/// run again.
pub fn init(data_dir: &Path) -> Result<InitOutcome, CommandError> {
    let config_path = data_dir.join(CONFIG_FILE);
    refuse_existing(&config_path)?;
    create_dir(data_dir)?;
    let absolute = std::path::absolute(data_dir).map_err(|source| CommandError::Check {
        path: data_dir.to_owned(),
        source,
    })?;
    let config_text = config_toml_for(&absolute)?;
    let parsed =
        NodeConfig::from_toml_str(&config_text, &config_path).map_err(|source| CommandError::GeneratedConfig {
            path: config_path.clone(),
            source,
        })?;
    if parsed.data_dir != absolute {
        return Err(CommandError::DataDirReadBack {
            path: config_path,
            expected: absolute,
            found: parsed.data_dir,
        });
    }

    let node_key_path = data_dir.join(NODE_KEY_FILE);
    let (node_key, node_origin) = NodeKeypair::load_or_create(&node_key_path)?;
    let zsi_key_path = data_dir.join(ZSI_KEY_FILE);
    let (zsi_key, zsi_origin) = ZsiKeypair::load_or_create(&zsi_key_path)?;
    write_new_file(&config_path, &config_text)?;
    Ok(InitOutcome {
        peer_id: node_key.peer_id(),
        zsi_id: zsi_key.zsi_id(),
        config_path,
        node_key: (node_key_path, node_origin),
        zsi_key: (zsi_key_path, zsi_origin),
    })
}

// ---------------------------------------------------------------------------
// genesis
// ---------------------------------------------------------------------------

/// The `--members` list: the tier of each registered non-validator member,
/// written `TL1,TL2,TL0` (case-insensitive; spaces around items allowed; an
/// empty string is no members).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSpec(pub Vec<Tier>);

/// A `--members` list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("member {position} {item:?} is not a tier; expected a comma list of TL0..TL5, e.g. TL1,TL2,TL0")]
pub struct MemberSpecError {
    /// 1-based position in the list.
    pub position: usize,
    /// The offending item.
    pub item: String,
}

impl FromStr for MemberSpec {
    type Err = MemberSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(MemberSpec(Vec::new()));
        }
        s.split(',')
            .enumerate()
            .map(|(i, item)| {
                let trimmed = item.trim();
                Tier::ALL
                    .into_iter()
                    .find(|t| t.label().eq_ignore_ascii_case(trimmed))
                    .ok_or_else(|| MemberSpecError {
                        position: i + 1,
                        item: item.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(MemberSpec)
    }
}

/// The smallest reputation record that [`tier_of`] maps to exactly `tier`
/// under `thresholds`: TL0 is registered but slashed; TL1 is all zero; TL2
/// has just enough uptime; TL3..TL5 add just the tier's score threshold.
pub fn minimum_reputation(tier: Tier, thresholds: &TierThresholds) -> ReputationFile {
    let available = ReputationFile {
        uptime_minutes: thresholds.available_uptime_minutes,
        ..ReputationFile::default()
    };
    match tier {
        Tier::TL0 => ReputationFile {
            slashed: true,
            ..ReputationFile::default()
        },
        Tier::TL1 => ReputationFile::default(),
        Tier::TL2 => available,
        Tier::TL3 => ReputationFile {
            score: thresholds.committed_score,
            ..available
        },
        Tier::TL4 => ReputationFile {
            score: thresholds.reliable_score,
            ..available
        },
        Tier::TL5 => ReputationFile {
            score: thresholds.trusted_score,
            ..available
        },
    }
}

/// What `genesis` is asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisOptions {
    /// Output directory: `genesis.json` and `node-<i>/zsi_key` go here.
    pub out: PathBuf,
    /// Number of validators (at least 1).
    pub validators: usize,
    /// Tiers of the non-validator members, in order.
    pub members: Vec<Tier>,
    /// The network id.
    pub network_id: String,
    /// Voting power of each validator (positive).
    pub power: u64,
    /// Genesis time, ms since the Unix epoch; `None` is now.
    pub genesis_time_ms: Option<u64>,
    /// Development uptime crediting ([`SHORT_UPTIME`], TL2 at
    /// [`SHORT_UPTIME_TL2_MINUTES`]): tiers move in seconds.
    pub short_uptime: bool,
}

/// The uptime params of a development genesis (`genesis --short-uptime`,
/// `devnet`): windows of 5 blocks, no older than 30, two witnesses, one
/// heartbeat a second, and a credited "minute" of one second.
pub const SHORT_UPTIME: tiernet_core::genesis::UptimeParams = tiernet_core::genesis::UptimeParams {
    window_blocks: 5,
    max_age_blocks: 30,
    min_witnesses: 2,
    heartbeat_interval_ms: 1_000,
    minute_ms: 1_000,
};

/// TL2's uptime threshold in a development genesis: 6 credited "minutes"
/// of [`SHORT_UPTIME`], about two windows of witnessed heartbeats.
pub const SHORT_UPTIME_TL2_MINUTES: u64 = 6;

/// One identity `genesis` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedIdentity {
    /// `validator-<i>` or `member-<j>-<tier>`.
    pub name: String,
    /// Its ZSI id.
    pub zsi_id: ZsiId,
    /// Its tier under the genesis thresholds.
    pub tier: Tier,
    /// Whether it is in the validator set.
    pub validator: bool,
    /// Its secret key file.
    pub key_path: PathBuf,
}

/// What `genesis` did.
#[derive(Debug, Clone)]
pub struct GenesisOutcome {
    /// The identities, validators first, then members in `--members` order.
    pub identities: Vec<CreatedIdentity>,
    /// The genesis file written.
    pub genesis_path: PathBuf,
    /// The checked genesis.
    pub genesis: Genesis,
}

impl fmt::Display for GenesisOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for identity in &self.identities {
            writeln!(
                f,
                "identity: {} {} {} {}",
                identity.name,
                identity.zsi_id,
                identity.tier,
                identity.key_path.display()
            )?;
        }
        writeln!(f, "genesis: {}", self.genesis_path.display())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `tiernet-node genesis`: creates `validators` validator identities and one
/// registered member per entry of `members`, writes each secret key to
/// `<out>/node-<i>/zsi_key` (validators first) and the genesis to
/// `<out>/genesis.json`, with default tier thresholds and consensus
/// parameters.
///
/// Validators get the minimum TL3 record and their identity key as
/// consensus key; members get [`minimum_reputation`] of their tier. The
/// genesis is checked with [`Genesis::from_json`] before anything is written.
/// Any existing target file is an error, checked before anything is written.
pub fn genesis(options: &GenesisOptions) -> Result<GenesisOutcome, CommandError> {
    let GenesisOptions {
        out,
        validators,
        members,
        network_id,
        power,
        genesis_time_ms,
        short_uptime,
    } = options;
    let (validators, member_count) = (*validators, members.len());
    if validators == 0 {
        return Err(CommandError::NoValidators);
    }
    let total = validators.saturating_add(member_count);
    if total > MAX_GENESIS_IDENTITIES {
        return Err(CommandError::TooManyIdentities {
            validators,
            members: member_count,
            total,
        });
    }

    let genesis_path = out.join(GENESIS_FILE);
    refuse_existing(&genesis_path)?;
    let key_paths: Vec<PathBuf> = (0..total)
        .map(|i| out.join(format!("node-{i}")).join(ZSI_KEY_FILE))
        .collect();
    for path in &key_paths {
        refuse_existing(path)?;
    }

    let mut thresholds = TierThresholds::default();
    if *short_uptime {
        thresholds.available_uptime_minutes = SHORT_UPTIME_TL2_MINUTES;
    }
    let mut keys = Vec::with_capacity(total);
    let mut identities = Vec::with_capacity(total);
    let mut file_identities = Vec::with_capacity(total);
    let roles = (0..validators)
        .map(|i| (format!("validator-{i}"), Tier::TL3, true))
        .chain(
            members
                .iter()
                .enumerate()
                .map(|(j, tier)| (format!("member-{j}-{tier}"), *tier, false)),
        );
    for ((name, tier, validator), key_path) in roles.zip(&key_paths) {
        let key = ZsiKeypair::generate();
        let public = key.public();
        let mut entry = GenesisIdentity::new(&name, &public, minimum_reputation(tier, &thresholds));
        if validator {
            entry.validator = Some(GenesisValidator {
                consensus_key: hex::encode(public.identity_key.as_bytes()),
                power: *power,
            });
        }
        identities.push(CreatedIdentity {
            name,
            zsi_id: key.zsi_id(),
            tier,
            validator,
            key_path: key_path.clone(),
        });
        file_identities.push(entry);
        keys.push(key);
    }
    let file = GenesisFile {
        stark_programs: Vec::new(),
        network_id: network_id.clone(),
        genesis_time_ms: genesis_time_ms.unwrap_or_else(now_ms),
        tiers: TiersFile {
            available_uptime_minutes: thresholds.available_uptime_minutes,
            ..TiersFile::default()
        },
        consensus: ConsensusParams::default(),
        uptime: if *short_uptime {
            SHORT_UPTIME
        } else {
            Default::default()
        },
        identities: file_identities,
    };
    let text = file.to_json();
    let genesis = Genesis::from_json(&text).map_err(|source| CommandError::GeneratedGenesis {
        path: genesis_path.clone(),
        source,
    })?;
    // The tiers printed are the ones the genesis really gives.
    for identity in &mut identities {
        let record = tiernet_core::identity::registry::IdentityRegistry::lookup(&genesis.registry, &identity.zsi_id)
            .map(|r| r.reputation);
        identity.tier = tier_of(record.as_ref(), &genesis.thresholds);
    }

    create_dir(out)?;
    for (key, path) in keys.iter().zip(&key_paths) {
        key.save_new(path)?;
    }
    write_new_file(&genesis_path, &text)?;
    Ok(GenesisOutcome {
        identities,
        genesis_path,
        genesis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_spec_parses_and_names_the_bad_item() {
        assert_eq!(
            "TL1,tl2, TL0".parse::<MemberSpec>().unwrap(),
            MemberSpec(vec![Tier::TL1, Tier::TL2, Tier::TL0])
        );
        assert_eq!("".parse::<MemberSpec>().unwrap(), MemberSpec(vec![]));
        let err = "TL1,TL9".parse::<MemberSpec>().unwrap_err();
        assert_eq!(err.position, 2);
        assert!(err.to_string().contains("\"TL9\""), "{err}");
        assert!(err.to_string().contains("TL0..TL5"), "{err}");
        assert!("TL1,,TL2".parse::<MemberSpec>().is_err());
    }

    #[test]
    fn minimum_reputation_gives_exactly_the_tier_and_is_minimal() {
        let t = TierThresholds::default();
        for tier in Tier::ALL {
            let record = minimum_reputation(tier, &t);
            assert_eq!(tier_of(Some(&record.into()), &t), tier, "{tier}");
            // One less of the deciding quantity drops the tier.
            if record.score > 0 {
                let lower = ReputationFile {
                    score: record.score - 1,
                    ..record
                };
                assert!(tier_of(Some(&lower.into()), &t) < tier, "{tier}");
            } else if record.uptime_minutes > 0 {
                let lower = ReputationFile {
                    uptime_minutes: record.uptime_minutes - 1,
                    ..record
                };
                assert!(tier_of(Some(&lower.into()), &t) < tier, "{tier}");
            }
        }
    }

    #[test]
    fn config_for_a_dir_reads_back() {
        let dir = Path::new("/tmp/a \"quoted\" dir\\x");
        let text = config_toml_for(dir).unwrap();
        let parsed = NodeConfig::from_toml_str(&text, Path::new("config.toml")).unwrap();
        assert_eq!(parsed.data_dir, dir);
        // Everything else is the default.
        let expected = NodeConfig {
            data_dir: dir.to_owned(),
            ..NodeConfig::default()
        };
        assert_eq!(parsed, expected);
    }

    #[test]
    fn bounds_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g");
        let options = GenesisOptions {
            out: out.clone(),
            validators: 0,
            members: vec![],
            network_id: "devnet".into(),
            power: 10,
            genesis_time_ms: Some(1),
            short_uptime: false,
        };
        assert!(matches!(genesis(&options), Err(CommandError::NoValidators)));
        let options = GenesisOptions {
            validators: 200,
            members: vec![Tier::TL1; 57],
            ..options
        };
        let err = genesis(&options).unwrap_err();
        assert!(
            err.to_string().contains("257 identities; expected at most 256"),
            "{err}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn a_bad_network_id_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g");
        let options = GenesisOptions {
            out: out.clone(),
            validators: 1,
            members: vec![],
            network_id: "Bad Net".into(),
            power: 10,
            genesis_time_ms: None,
            short_uptime: false,
        };
        let err = genesis(&options).unwrap_err();
        assert!(err.to_string().contains("network_id"), "{err}");
        assert!(!out.exists());
    }
}
