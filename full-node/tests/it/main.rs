//! One integration-test binary for the crate: each module below was its own
//! binary, and linking each against the whole dependency tree cost minutes
//! and gigabytes of disk per build.

mod chain;
mod commands;
mod common;
mod consensus_sim;
mod crash;
mod devnet;
mod discovery;
mod gossip;
mod hardening;
mod light_client;
mod light_wallet;
mod liveness;
mod network;
mod node_process;
mod peer_manager;
mod peerstore;
mod register;
mod snapshots;
mod state_store;
