//! # tiernet-sim
//!
//! A network simulator that runs many **real** tiernet nodes in one
//! process: each is `tiernet_node::Node` (its event loop, GossipSub with
//! our scoring and admission, Noise, the handshake, consensus, ledger,
//! redb stores on disk, the sync server), started with
//! `Node::with_transport` over simulated links with latency and bandwidth
//! ([`link`]), placed in regions with measured round-trip times
//! ([`regions`]). Scenarios are TOML files ([`scenario`]); a run
//! ([`world`]) applies their events and adversaries ([`adversary`]);
//! [`analysis`] turns what the nodes' probes saw into figures and
//! [`report`] writes `report.md`, `figures.json` and PNG plots.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod adversary;
pub mod analysis;
pub mod link;
pub mod regions;
pub mod report;
pub mod scenario;
pub mod world;
