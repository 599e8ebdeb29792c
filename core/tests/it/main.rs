//! One integration-test binary for the crate: each module below was its own
//! binary, and linking each against the whole dependency tree cost minutes
//! and gigabytes of disk per build.

mod admission_props;
mod chain_block;
mod common;
mod gossip;
mod ledger;
mod proof;
mod ratelimit_props;
mod reputation_props;
mod state;
mod stwo_ledger;
mod vectors;
mod verify;
mod wire_roundtrip;
