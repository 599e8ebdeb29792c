//! One integration-test binary for the crate: each module below was its own
//! binary, and linking each against the whole dependency tree cost minutes
//! and gigabytes of disk per build.

mod chain;
mod commands;
mod common;
mod consensus_sim;
mod devnet;
mod gossip;
mod hardening;
mod light_client;
mod network;
mod node_process;
mod peerstore;
mod snapshots;
mod state_store;
