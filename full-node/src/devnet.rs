//! `tiernet-node devnet`: a local network of validators in one process, for
//! development and for the web demo.
//!
//! Everything lives under one directory (default `.tiernet/devnet`):
//! `genesis.json` and `node-<i>/` (keys and store of each validator), made on
//! the first run and reused afterwards, so the network keeps its identities
//! and state across runs. Nodes start one after the other; each bootstraps to
//! the ones already running. With `--base-port P`, node `i` listens on TCP
//! `P+10i`, WebSocket `P+10i+1`, WebRTC-direct (UDP) `P+10i+2` and telemetry
//! `P+10i+3`, all on 127.0.0.1; with `--base-port 0` every port is picked
//! free. Once all are up it prints one line per node and writes
//! `devnet.json` (the browser bootstrap addresses and the genesis, which is
//! a light client's checkpoint) next to the genesis.
//!
//! `--forger KINDS` adds one more node, `forger` (not a validator, no ZSI
//! identity, data in `forger/`, ports after the validators'), that follows
//! the chain honestly but answers light-client sync requests with forged
//! data (`testing.forge_sync`): the dishonest peer that the web demo and the
//! browser tests show being caught. `devnet.json` lists it apart from the
//! validators. The forger exists only in a binary built with the cargo
//! feature `testing` (`cargo build -p tiernet-node --features testing`, as
//! `make demo` and the tests do); a release build has no `--forger` flag and
//! [`run`] refuses [`DevnetOptions::forger`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use tiernet_core::wire::NetworkId;
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::commands::{CommandError, GenesisOptions, genesis};
use crate::config::{NodeConfig, ValidConfig};
use crate::node::{Node, NodeError};
use crate::output::{Report, Reporter};

/// Most validators a devnet runs in one process.
pub const MAX_DEVNET_VALIDATORS: usize = 32;

/// How long a node may take to report its listen addresses.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// What `devnet` needs to know.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The devnet's directory.
    pub dir: PathBuf,
    /// Number of validators.
    pub validators: usize,
    /// First port, or 0 for free ports.
    pub base_port: u16,
    /// The network id (for a new genesis).
    pub network_id: NetworkId,
    /// Forgeries of the extra dishonest node (`headers,state,chunks` or
    /// `all`); `None`: no such node. Only a build with the cargo feature
    /// `testing` accepts one.
    pub forger: Option<String>,
}

/// A devnet that could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A bad option.
    #[error("devnet: {0}")]
    Options(String),
    /// The genesis could not be created.
    #[error("devnet genesis: {0}")]
    Genesis(#[from] CommandError),
    /// A node's configuration is invalid.
    #[error("devnet node {index}: {error}")]
    Config {
        /// Which node.
        index: usize,
        /// Why.
        error: crate::config::ConfigError,
    },
    /// A node could not start.
    #[error("devnet node {index}: {error}")]
    Node {
        /// Which node.
        index: usize,
        /// Why.
        error: NodeError,
    },
    /// A node did not report its addresses in time.
    #[error("devnet node {0} did not report its listen addresses within 20 s")]
    Silent(usize),
    /// The genesis could not be read back.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `devnet.json` could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One running devnet node, as printed and written to `devnet.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevnetNode {
    /// `validator-<i>`.
    pub name: String,
    /// PeerId.
    pub peer_id: String,
    /// ZSI id.
    pub zsi_id: String,
    /// Listen addresses with `/p2p/`.
    pub addrs: Vec<String>,
    /// Telemetry URL.
    pub telemetry: String,
}

/// The dishonest node of `--forger`, as written to `devnet.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevnetForger {
    /// The node (its `zsi_id` is empty: it has no ZSI identity).
    #[serde(flatten)]
    pub node: DevnetNode,
    /// What it forges (`testing.forge_sync`).
    pub forges: String,
}

/// `devnet.json`: what a browser needs to join.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevnetFile {
    /// The network id.
    pub network_id: String,
    /// The genesis file's text: a light client's checkpoint.
    pub genesis: String,
    /// WebSocket bootstrap addresses.
    pub websocket: Vec<String>,
    /// WebRTC-direct bootstrap addresses (with certhash).
    pub webrtc_direct: Vec<String>,
    /// Every validator.
    pub nodes: Vec<DevnetNode>,
    /// The dishonest node, if `--forger` was given (not in the lists above).
    pub forger: Option<DevnetForger>,
}

/// `snapshots.interval_blocks` of devnet nodes.
pub const DEVNET_SNAPSHOT_INTERVAL_BLOCKS: u64 = 10;

fn port(base: u16, index: usize, offset: u16) -> Result<u16, DevnetError> {
    if base == 0 {
        return Ok(0);
    }
    u16::try_from(index * 10)
        .ok()
        .and_then(|i| base.checked_add(i))
        .and_then(|p| p.checked_add(offset))
        .ok_or_else(|| DevnetError::Options(format!("--base-port {base} leaves no room for {} nodes", index + 1)))
}

/// The configuration of node `index`: a validator below
/// `options.validators`, the forger at `options.validators`.
fn node_config(options: &DevnetOptions, index: usize, bootstrap: &[Multiaddr]) -> Result<ValidConfig, DevnetError> {
    let forger = index == options.validators;
    let dir = match forger {
        true => options.dir.join("forger"),
        false => options.dir.join(format!("node-{index}")),
    };
    let p = |offset| port(options.base_port, index, offset);
    let mut config = NodeConfig {
        network_id: options.network_id.to_string(),
        data_dir: dir.clone(),
        identity_file: match forger {
            true => String::new(),
            false => dir.join("zsi_key").display().to_string(),
        },
        genesis_file: options.dir.join("genesis.json").display().to_string(),
        bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
        ..NodeConfig::default()
    };
    config.listen.tcp = vec![format!("/ip4/127.0.0.1/tcp/{}", p(0)?)];
    config.listen.ws = vec![format!("/ip4/127.0.0.1/tcp/{}/ws", p(1)?)];
    config.listen.webrtc = vec![format!("/ip4/127.0.0.1/udp/{}/webrtc-direct", p(2)?)];
    config.telemetry.listen = format!("127.0.0.1:{}", p(3)?);
    // Snapshots every few seconds, so the demo and the tests see them soon.
    config.snapshots.interval_blocks = DEVNET_SNAPSHOT_INTERVAL_BLOCKS;
    // One heartbeat per genesis heartbeat slot (short uptime windows).
    config.heartbeat.interval_ms = crate::commands::SHORT_UPTIME.heartbeat_interval_ms;
    if forger {
        config.testing = Some(crate::config::TestingConfig {
            forge_sync: options.forger.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
    config.validate().map_err(|error| DevnetError::Config { index, error })
}

/// Creates the genesis on the first run.
fn ensure_genesis(options: &DevnetOptions) -> Result<(), DevnetError> {
    if options.dir.join("genesis.json").exists() {
        return Ok(());
    }
    genesis(&GenesisOptions {
        out: options.dir.clone(),
        validators: options.validators,
        members: vec![],
        network_id: options.network_id.to_string(),
        power: crate::commands::DEFAULT_VALIDATOR_POWER,
        genesis_time_ms: None,
        // Short uptime windows: tiers move in seconds on a devnet.
        short_uptime: true,
    })?;
    Ok(())
}

/// Runs the devnet until `shutdown` completes.
pub async fn run(options: DevnetOptions, shutdown: impl std::future::Future<Output = ()>) -> Result<(), DevnetError> {
    if options.validators == 0 || options.validators > MAX_DEVNET_VALIDATORS {
        return Err(DevnetError::Options(format!(
            "--validators {} is out of range; expected 1 to {MAX_DEVNET_VALIDATORS}",
            options.validators
        )));
    }
    if options.forger.is_some() && !cfg!(feature = "testing") {
        return Err(DevnetError::Options(
            "a forger needs a tiernet-node built with the cargo feature `testing` \
             (cargo build -p tiernet-node --features testing)"
                .into(),
        ));
    }
    ensure_genesis(&options)?;
    let existing = (0..)
        .take_while(|i| options.dir.join(format!("node-{i}")).exists())
        .count();
    if existing < options.validators {
        return Err(DevnetError::Options(format!(
            "{} holds a genesis for {existing} validators; use another --dir for {}",
            options.dir.display(),
            options.validators
        )));
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut bootstrap: Vec<Multiaddr> = Vec::new();
    let mut nodes = Vec::new();
    let mut forger = None;
    let count = options.validators + usize::from(options.forger.is_some());
    for index in 0..count {
        let is_forger = index == options.validators;
        let config = node_config(&options, index, &bootstrap)?;
        let (reports, mut rx) = mpsc::channel(256);
        let node = Node::new(config, Reporter::Channel(reports)).map_err(|error| DevnetError::Node { index, error })?;
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(node.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
        let mut summary = collect_start(index, !is_forger, &mut rx).await?;
        if is_forger {
            summary.name = "forger".into();
            println!(
                "forger: peer {} (forges {}) telemetry {} {}",
                summary.peer_id,
                options.forger.as_deref().unwrap_or_default(),
                summary.telemetry,
                summary.addrs.join(" ")
            );
            forger = Some(DevnetForger {
                node: summary,
                forges: options.forger.clone().unwrap_or_default(),
            });
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            continue;
        }
        if let Some(tcp) = summary.addrs.iter().find(|a| a.contains("/tcp/") && !a.contains("/ws")) {
            bootstrap.push(
                tcp.parse()
                    .map_err(|e| DevnetError::Options(format!("bad address {tcp}: {e}")))?,
            );
        }
        println!(
            "validator-{index}: peer {} telemetry {} {}",
            summary.peer_id,
            summary.telemetry,
            summary.addrs.join(" ")
        );
        nodes.push(summary);
        // Keep draining reports so the node never blocks on a full channel.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
    }
    let genesis_path = options.dir.join("genesis.json");
    let genesis = std::fs::read_to_string(&genesis_path).map_err(|source| DevnetError::Read {
        path: genesis_path,
        source,
    })?;
    let file = DevnetFile {
        network_id: options.network_id.to_string(),
        genesis,
        websocket: nodes
            .iter()
            .flat_map(|n| n.addrs.iter().filter(|a| a.contains("/ws/")).cloned())
            .collect(),
        webrtc_direct: nodes
            .iter()
            .flat_map(|n| n.addrs.iter().filter(|a| a.contains("/webrtc-direct/")).cloned())
            .collect(),
        nodes,
        forger,
    };
    let path = options.dir.join("devnet.json");
    write_json(&path, &file)?;
    println!(
        "devnet: {} validators running; {} written; Ctrl-C stops them",
        options.validators,
        path.display()
    );
    shutdown.await;
    info!("stopping the devnet");
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

fn write_json(path: &Path, file: &DevnetFile) -> Result<(), DevnetError> {
    let text = serde_json::to_string_pretty(file).unwrap_or_default();
    std::fs::write(path, text + "\n").map_err(|source| DevnetError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Reads a starting node's reports until it has its peer id, three listen
/// addresses, its telemetry address and (when `zsi`) its ZSI id.
async fn collect_start(index: usize, zsi: bool, rx: &mut mpsc::Receiver<Report>) -> Result<DevnetNode, DevnetError> {
    let mut node = DevnetNode {
        name: format!("validator-{index}"),
        peer_id: String::new(),
        zsi_id: String::new(),
        addrs: Vec::new(),
        telemetry: String::new(),
    };
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while node.addrs.len() < 3
        || node.telemetry.is_empty()
        || (zsi && node.zsi_id.is_empty())
        || node.peer_id.is_empty()
    {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Report::PeerId(peer))) => node.peer_id = peer.to_string(),
            Ok(Some(Report::ZsiId(zsi))) => node.zsi_id = zsi.to_string(),
            Ok(Some(Report::Listening(addr))) => node.addrs.push(addr.to_string()),
            Ok(Some(Report::Telemetry(addr))) => node.telemetry = telemetry_url(addr),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(DevnetError::Silent(index)),
        }
    }
    Ok(node)
}

fn telemetry_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_spaced_by_ten_and_bounded() {
        assert_eq!(port(7700, 0, 0).unwrap(), 7700);
        assert_eq!(port(7700, 3, 2).unwrap(), 7732);
        assert_eq!(port(0, 5, 3).unwrap(), 0);
        assert!(port(65530, 1, 0).is_err());
    }
}
