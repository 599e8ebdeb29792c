//! One integration-test binary for the crate: each module below was its own
//! binary, and linking each against the whole dependency tree cost minutes
//! and gigabytes of disk per build.

mod chain_block;
mod common;
mod gossip;
mod ledger;
mod proof;
mod state;
mod vectors;
mod verify;
mod wire_roundtrip;
