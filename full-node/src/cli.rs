//! The command line: `tiernet-node [OPTIONS] <COMMAND>`.
//!
//! Flags override the config file, which overrides the built-in defaults.
//! `--listen` replaces the whole `listen.tcp` list (it does not add to it).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use libp2p::Multiaddr;
use tiernet_core::wire::NetworkId;

use crate::config::{ConfigError, ListenKind, NodeConfig, ValidConfig, parse_listen_addr, parse_tcp_listen_addr};

/// tiernet full node: a reputation-tiered libp2p network for a BFT chain.
///
/// Output contract (stdout, one line each): `peer_id: <PeerId>`, `listening: <multiaddr>/p2p/<PeerId>`,
/// `connected: <PeerId>`, `disconnected: <PeerId>`. Logs go to stderr.
#[derive(Debug, Clone, Parser)]
#[command(name = "tiernet-node", version)]
pub struct Cli {
    /// TOML config file (see `print-config`); missing keys take their defaults [default: none (built-in defaults)]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory for the node key and the store; overrides `data_dir` [default: .tiernet/node]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Network id (1-32 of a-z, 0-9, '-'); overrides `network_id` [default: devnet]
    #[arg(long, value_name = "ID")]
    pub network_id: Option<NetworkId>,

    /// TCP listen multiaddr, repeatable (port 0 picks a free port); replaces `listen.tcp` [default: /ip4/0.0.0.0/tcp/7700]
    #[arg(long = "listen", value_name = "ADDR", value_parser = parse_tcp_listen_addr)]
    pub listen: Vec<Multiaddr>,

    /// WebSocket listen multiaddr, repeatable; replaces `listen.ws` [default: /ip4/0.0.0.0/tcp/7701/ws]
    #[arg(long = "listen-ws", value_name = "ADDR", value_parser = |s: &str| parse_listen_addr(ListenKind::Ws, s))]
    pub listen_ws: Vec<Multiaddr>,

    /// WebRTC-direct listen multiaddr, repeatable; replaces `listen.webrtc` [default: /ip4/0.0.0.0/udp/7702/webrtc-direct]
    #[arg(long = "listen-webrtc", value_name = "ADDR", value_parser = |s: &str| parse_listen_addr(ListenKind::WebRtc, s))]
    pub listen_webrtc: Vec<Multiaddr>,

    /// Turn off the WebSocket and WebRTC-direct listeners (TCP only)
    #[arg(long)]
    pub tcp_only: bool,

    /// Bootstrap peer multiaddr ending in `/p2p/<PeerId>`, repeatable; replaces `bootstrap` [default: none]
    #[arg(long = "bootstrap", value_name = "ADDR")]
    pub bootstrap: Vec<String>,

    /// ZSI identity key file; overrides `identity_file` [default: <data_dir>/zsi_key if present]
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Genesis file; overrides `genesis_file` [default: <data_dir>/genesis.json if present]
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,

    /// Serve the test-only /testing endpoints on the telemetry port (never on a real network); sets `testing.api`
    /// (only in builds with the cargo feature `testing`)
    #[cfg(feature = "testing")]
    #[arg(long)]
    pub testing_api: bool,

    /// Take a state snapshot every N blocks (0: never); overrides `snapshots.interval_blocks`
    #[arg(long, value_name = "N")]
    pub snapshot_interval: Option<u64>,

    /// Entries per snapshot chunk; overrides `snapshots.chunk_entries`
    #[arg(long, value_name = "N")]
    pub snapshot_chunk_entries: Option<usize>,

    /// Answer sync requests with forged data (test-only: the dishonest peer of light-client tests):
    /// headers, state, chunks (comma-separated) or all; sets `testing.forge_sync`
    /// (only in builds with the cargo feature `testing`)
    #[cfg(feature = "testing")]
    #[arg(long, value_name = "KINDS")]
    pub testing_forge_sync: Option<String>,

    /// Address to announce to peers besides the listen addresses (public address behind NAT), repeatable;
    /// replaces `listen.announce` [default: none]
    #[arg(
        long = "announce",
        value_name = "ADDR",
        env = "TIERNET_ANNOUNCE",
        value_delimiter = ','
    )]
    pub announce: Vec<Multiaddr>,

    /// Log format on stderr: text or json; overrides `log_format` [default: text]
    #[arg(long, value_name = "FORMAT", env = "TIERNET_LOG_FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,

    /// Log filter (RUST_LOG syntax, e.g. info,tiernet_node=debug); overrides `log` and RUST_LOG [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,

    /// Milliseconds between heartbeats on `meta`; overrides `heartbeat.interval_ms` [default: 10000]
    #[arg(long, value_name = "MS", env = "TIERNET_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,

    /// Heartbeat intervals of silence before a node is reported offline; overrides `heartbeat.offline_after`
    /// [default: 3]
    #[arg(long, value_name = "N", env = "TIERNET_OFFLINE_AFTER")]
    pub offline_after: Option<u32>,

    /// Telemetry HTTP ip:port ("" disables); overrides `telemetry.listen` [default: 127.0.0.1:7703]
    #[arg(long, value_name = "ADDR")]
    pub telemetry: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Start the node; stop it with SIGINT (Ctrl-C) or SIGTERM.
    Run,
    /// Print the default configuration as a commented TOML file.
    PrintConfig,
    /// Prepare the data directory: config.toml, node_key and zsi_key.
    ///
    /// Writes <data_dir>/config.toml (refusing to overwrite one) with data_dir set to the directory's absolute
    /// path, and creates <data_dir>/node_key and <data_dir>/zsi_key unless they exist (existing keys are kept).
    /// Prints `peer_id: <PeerId>`, `zsi_id: <hex>` and `config: <path>`.
    Init,
    /// Write a development genesis: N validators plus optional registered members, each with a new ZSI key.
    ///
    /// Writes `DIR/node-<i>/zsi_key` (validators first, then members) and DIR/genesis.json; refuses to
    /// overwrite any of them. Prints `identity: <name> <zsi_id> <tier> <key file>` per identity, then
    /// `genesis: <path>`.
    Genesis {
        /// Output directory
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of validators (at least 1; validators plus members at most 256), each TL3
        #[arg(long, value_name = "N")]
        validators: usize,
        /// Registered non-validator members: a comma list of their tiers, e.g. TL1,TL2,TL0 (TL0 = slashed) [default: none]
        #[arg(long, value_name = "SPEC")]
        members: Option<crate::commands::MemberSpec>,
        /// Network id of the genesis [default: the global --network-id, else devnet]
        #[arg(long = "network-id", value_name = "ID")]
        network_id: Option<NetworkId>,
        /// Voting power of each validator
        #[arg(long, value_name = "P", default_value_t = crate::commands::DEFAULT_VALIDATOR_POWER, value_parser = clap::value_parser!(u64).range(1..))]
        power: u64,
        /// Genesis time, ms since the Unix epoch [default: now]
        #[arg(long, value_name = "T")]
        genesis_time_ms: Option<u64>,
        /// Development uptime: 5-block windows and a credited minute of one second (TL2 at 6), so a TL1 member
        /// becomes TL2 by its own uptime proofs within seconds. Never for a real network.
        #[arg(long)]
        short_uptime: bool,
    },
    /// Register this node's ZSI without genesis: prove sequential work for it (tiernet-prove), then run.
    ///
    /// Needs a genesis whose `stark_programs` list tiernet/posw/v1. Runs `tiernet-prove posw` (nightly; `make
    /// prove`) with a progress bar and the expected time, prints `proved: <zsi> <epoch> <bytes>`, then runs the
    /// node like `run`, submitting the registration to connected full nodes until a block includes it; then
    /// prints `registered: <zsi> <height>` (the identity is TL1 on every node from that height).
    Register {
        /// The tiernet-prove binary [default: $TIERNET_PROVE, else next to this binary, else on PATH]
        #[arg(long, value_name = "PATH")]
        prover: Option<PathBuf>,
        /// Registration epoch the proof binds [default: estimated from genesis time and block time]
        #[arg(long, value_name = "N")]
        epoch: Option<u64>,
    },
    /// Check the stored chain from genesis (stop the node first).
    ///
    /// Checks every stored block's commit certificate (each validator set handing trust to the next),
    /// replays every block through the ledger from genesis and compares the result with the stored state
    /// tree, which is what a restart loads instead of replaying. Prints `verified: <height> <state root>`;
    /// exits with 1 and names the first problem otherwise.
    VerifyChain,
    /// Run a local network of validators in this process (development and the web demo).
    ///
    /// The first run writes DIR/genesis.json and `DIR/node-<i>/`; later runs reuse them. Node i listens on
    /// 127.0.0.1: TCP BASE+10i, WebSocket BASE+10i+1, WebRTC-direct BASE+10i+2, telemetry BASE+10i+3
    /// (BASE 0: free ports). Prints a line per node and writes DIR/devnet.json with the browser
    /// bootstrap addresses. Stop with SIGINT or SIGTERM.
    Devnet {
        /// Number of validators (1 to 32)
        #[arg(long, value_name = "N", default_value_t = 4)]
        validators: usize,
        /// Directory of the devnet
        #[arg(long, value_name = "DIR", default_value = ".tiernet/devnet")]
        dir: PathBuf,
        /// First port (0: free ports)
        #[arg(long, value_name = "PORT", default_value_t = 7700)]
        base_port: u16,
        /// Also run a dishonest non-validator node that answers light-client sync requests with forged data
        /// (headers, state, chunks — comma-separated — or all); listed as `forger` in devnet.json
        /// (only in builds with the cargo feature `testing`)
        #[cfg(feature = "testing")]
        #[arg(long, value_name = "KINDS")]
        forger: Option<String>,
    },
}

impl Cli {
    /// The configuration to run with: the config file (`--config`, else
    /// `<data_dir>/config.toml` if it exists — the file `init` writes —
    /// else the defaults), with the flags applied, validated.
    pub fn resolve_config(&self) -> Result<ValidConfig, ConfigError> {
        let mut config = match self.config_path() {
            Some(path) => NodeConfig::load(&path)?,
            None => NodeConfig::default(),
        };
        self.apply_overrides(&mut config);
        config.validate()
    }

    /// The config file to read: `--config`, else `<data_dir>/config.toml`
    /// (`--data-dir` or the default data directory) when it exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.config {
            return Some(path.clone());
        }
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_DATA_DIR));
        let path = data_dir.join("config.toml");
        path.is_file().then_some(path)
    }

    /// Applies the flags that were given to `config`.
    pub fn apply_overrides(&self, config: &mut NodeConfig) {
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(id) = &self.network_id {
            config.network_id = id.to_string();
        }
        if !self.listen.is_empty() {
            config.listen.tcp = self.listen.iter().map(ToString::to_string).collect();
        }
        if !self.listen_ws.is_empty() {
            config.listen.ws = self.listen_ws.iter().map(ToString::to_string).collect();
        }
        if !self.listen_webrtc.is_empty() {
            config.listen.webrtc = self.listen_webrtc.iter().map(ToString::to_string).collect();
        }
        if self.tcp_only {
            config.listen.ws.clear();
            config.listen.tls_ws.clear();
            config.listen.webrtc.clear();
        }
        if !self.bootstrap.is_empty() {
            config.bootstrap = self.bootstrap.clone();
        }
        if let Some(path) = &self.identity {
            config.identity_file = path.display().to_string();
        }
        if let Some(path) = &self.genesis {
            config.genesis_file = path.display().to_string();
        }
        if let Some(addr) = &self.telemetry {
            config.telemetry.listen = addr.clone();
        }
        if !self.announce.is_empty() {
            config.listen.announce = self.announce.iter().map(ToString::to_string).collect();
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        if let Some(log) = &self.log {
            config.log = log.clone();
        }
        if let Some(ms) = self.heartbeat_interval_ms {
            config.heartbeat.interval_ms = ms;
        }
        if let Some(n) = self.offline_after {
            config.heartbeat.offline_after = n;
        }
        if let Some(n) = self.snapshot_interval {
            config.snapshots.interval_blocks = n;
        }
        if let Some(n) = self.snapshot_chunk_entries {
            config.snapshots.chunk_entries = n;
        }
        #[cfg(feature = "testing")]
        {
            if let Some(kinds) = &self.testing_forge_sync {
                config.testing.get_or_insert_with(Default::default).forge_sync = kinds.clone();
            }
            if self.testing_api {
                config.testing.get_or_insert_with(Default::default).api = true;
            }
        }
    }
}

impl Command {
    /// The `--forger` of `devnet` (always `None` in a build without the
    /// cargo feature `testing`, which has no such flag); `None` for the other
    /// commands.
    pub fn devnet_forger(&self) -> Option<String> {
        match self {
            #[cfg(feature = "testing")]
            Command::Devnet { forger, .. } => forger.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_shows_every_default() {
        let help = Cli::command().render_long_help().to_string();
        for default in [
            config::DEFAULT_DATA_DIR,
            config::DEFAULT_NETWORK_ID,
            config::DEFAULT_TCP_LISTEN,
        ] {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{default} missing from\n{help}"
            );
        }
        assert!(help.contains("[default: none"), "{help}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "network_id = \"file-net\"\ndata_dir = \"/from/file\"\n[listen]\ntcp = [\"/ip4/127.0.0.1/tcp/1\"]\n[limits]\nmax_connections = 7\n",
        )
        .unwrap();
        let path_arg = path.to_str().unwrap();

        let cli = Cli::try_parse_from(["tiernet-node", "--config", path_arg, "run"]).unwrap();
        let config = cli.resolve_config().unwrap();
        assert_eq!(config.network_id.as_str(), "file-net");
        assert_eq!(config.max_connections, 7);

        let cli = Cli::try_parse_from([
            "tiernet-node",
            "--config",
            path_arg,
            "--data-dir",
            "/from/flag",
            "--network-id",
            "flag-net",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--listen",
            "/ip6/::1/tcp/0",
            "run",
        ])
        .unwrap();
        assert_eq!(cli.command, Command::Run);
        let config = cli.resolve_config().unwrap();
        assert_eq!(config.network_id.as_str(), "flag-net");
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.listen_tcp.len(), 2);
        assert_eq!(config.max_connections, 7);
    }

    #[test]
    fn bad_flags_are_rejected_by_the_parser() {
        assert!(Cli::try_parse_from(["tiernet-node", "--listen", "foo", "run"]).is_err());
        assert!(Cli::try_parse_from(["tiernet-node", "--listen", "/ip4/127.0.0.1/udp/1", "run"]).is_err());
        assert!(Cli::try_parse_from(["tiernet-node", "--network-id", "Bad Id", "run"]).is_err());
        assert!(Cli::try_parse_from(["tiernet-node"]).is_err());
        // Options come before the command.
        assert!(Cli::try_parse_from(["tiernet-node", "run", "--data-dir", "x"]).is_err());
    }

    /// The test switches exist only with the cargo feature `testing`; a
    /// release build's `--help` does not show them and its parser refuses
    /// them (`scripts/check-release-build` checks the release binary itself).
    #[test]
    fn test_switches_exist_only_in_a_testing_build() {
        let testing = cfg!(feature = "testing");
        let help = Cli::command().render_long_help().to_string();
        assert_eq!(help.contains("--testing-api"), testing, "{help}");
        assert_eq!(help.contains("--testing-forge-sync"), testing, "{help}");
        let mut devnet = Cli::command();
        let devnet_help = devnet
            .find_subcommand_mut("devnet")
            .unwrap()
            .render_long_help()
            .to_string();
        assert_eq!(devnet_help.contains("--forger"), testing, "{devnet_help}");
        for args in [
            &["tiernet-node", "--testing-api", "run"][..],
            &["tiernet-node", "--testing-forge-sync", "all", "run"],
            &["tiernet-node", "devnet", "--forger", "all"],
        ] {
            let parsed = Cli::try_parse_from(args);
            assert_eq!(parsed.is_ok(), testing, "{args:?}");
            if let Err(e) = parsed {
                assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{args:?}: {e}");
            }
        }
    }

    #[cfg(feature = "testing")]
    #[test]
    fn test_switch_flags_set_the_testing_section() {
        let cli =
            Cli::try_parse_from(["tiernet-node", "--testing-api", "--testing-forge-sync", "state", "run"]).unwrap();
        let config = cli.resolve_config().unwrap();
        assert!(config.testing_api);
        assert!(config.testing_forge_sync.state && !config.testing_forge_sync.headers);
        let cli = Cli::try_parse_from(["tiernet-node", "devnet", "--forger", "all"]).unwrap();
        assert_eq!(cli.command.devnet_forger().as_deref(), Some("all"));
        let cli = Cli::try_parse_from(["tiernet-node", "run"]).unwrap();
        assert!(!cli.resolve_config().unwrap().testing_api);
    }

    #[test]
    fn run_reads_the_config_toml_that_init_wrote_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let without = Cli::try_parse_from(["tiernet-node", "--data-dir", data, "run"]).unwrap();
        assert_eq!(without.config_path(), None);
        assert_eq!(
            without.resolve_config().unwrap().offline_after,
            crate::config::DEFAULT_OFFLINE_AFTER
        );
        std::fs::write(
            dir.path().join("config.toml"),
            "network_id = \"from-data-dir\"\n[heartbeat]\noffline_after = 5\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from(["tiernet-node", "--data-dir", data, "run"]).unwrap();
        assert_eq!(cli.config_path(), Some(dir.path().join("config.toml")));
        let config = cli.resolve_config().unwrap();
        assert_eq!(config.network_id.as_str(), "from-data-dir");
        assert_eq!(config.offline_after, 5);
        // Flags still win over the file.
        let cli = Cli::try_parse_from(["tiernet-node", "--data-dir", data, "--offline-after", "2", "run"]).unwrap();
        assert_eq!(cli.resolve_config().unwrap().offline_after, 2);
    }
}
