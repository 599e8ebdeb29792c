//! # tiernet-node
//!
//! The full node: everything with IO on the node side. Logic lives in
//! `tiernet-core`; this crate moves bytes and calls it.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | the TOML config file: options, defaults, validation, the commented default document |
//! | [`cli`] | the command line (clap), flags that override the file |
//! | [`behaviour`] | the libp2p behaviour: connection limits, identify, ping |
//! | [`catch_up`] | sans-IO catch-up: whom to ask for the next finalized block, rotation on silence, blame for invalid answers |
//! | [`node`] | the node: key, swarm (TCP, Noise XX, Yamux), listeners, bootstrap dials, event loop, shutdown |
//! | [`output`] | the stdout output contract that tests and tooling parse |
//! | [`liveness`] | sans-IO liveness table: nodes heard on `meta`, offline after `heartbeat.offline_after` silent intervals |
//! | [`uptime`] | sans-IO uptime duty: witness heartbeats, attest windows, assemble and submit the node's own uptime proof |
//! | [`ops_metrics`] | operations metrics: finality, propagation, sync, handshake histograms, build info, syncing, liveness |
//! | [`logging`] | text or JSON log lines, `RUST_LOG`-style filters, spans |
//! | [`peer_manager`] | sans-IO peer manager (limits, reserved slots, TL0 quota, redial, IP bans) and its libp2p gate |
//! | [`discovery`] | Kademlia on full nodes: random walks below the target, learned addresses kept only once a connection proved them |
//! | [`gossip_state`] | seen-message ids and heartbeat replay windows persisted in batches across restarts |
//! | [`verify_chain`] | `tiernet-node verify-chain`: certificates and a replay from genesis, compared with the stored state |
//!
//! ## Cargo feature `testing`
//!
//! The test switches exist only in a build with the feature `testing`:
//! the `--testing-api` flag and the `/testing/*` telemetry endpoints (which
//! publish arbitrary messages, dial, or make a validator double-sign), the
//! `--testing-forge-sync` flag and the forging code of the sync server, the
//! devnet's `--forger`, and the `[testing]` config section. A build without
//! it (`cargo build --release -p tiernet-node`, what operators run) has no
//! such flags in `--help`, refuses them, and refuses a config file with a
//! `[testing]` section, naming the feature. The crate's tests turn it on
//! through a self dev-dependency, and `make test` / `make demo` build the
//! binary they run with `--features testing`; `scripts/check-release-build`
//! (part of `make test`) checks a build without it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod behaviour;
pub mod block_store;
pub mod catch_up;
pub mod cli;
pub mod commands;
pub mod config;
pub mod consensus;
pub mod devnet;
pub mod discovery;
pub mod gossip;
pub mod gossip_state;
pub mod handshake;
pub mod liveness;
pub mod logging;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod ops_metrics;
pub mod output;
pub mod peer_manager;
pub mod peerstore;
pub mod protocol;
pub mod register;
pub mod snapshots;
pub mod state_store;
pub mod store;
pub mod sync_server;
pub mod telemetry;
pub mod testing;
pub mod transport;
pub mod uptime;
pub mod verify_chain;
pub mod webrtc_cert;

pub use config::{ConfigError, NodeConfig, ValidConfig};
pub use node::{Node, NodeError};
pub use output::{Report, Reporter};
