//! # tiernet-core
//!
//! The sans-IO heart of tiernet: everything that must behave identically in a
//! full node, in a browser tab and on a phone. No sockets, no clocks, no
//! async runtime: time and input are arguments, results are values. The crate
//! builds for `wasm32-unknown-unknown` (see `scripts/wasm-cargo`).
//!
//! | module | what it holds |
//! |---|---|
//! | [`hash`] | domain-separated BLAKE3 hashing and the 32-byte [`hash::Hash32`] |
//! | [`wire`] | the protobuf schema (`proto/`), topic names, size and count limits, validating decoders, signing over canonical encodings |
//! | [`identity`] | the libp2p node key, the ZSI identity (Ed25519 + sr25519 VRF), the handshake `Hello` |
//! | [`tier`] | the one tier function, from an on-chain reputation record to TL0..TL5 |
//! | [`admission`] | the topic × tier publish policy, with reasons |
//! | [`genesis`] | the genesis file: network, thresholds, timeouts, identities, validators |
//! | [`proof`] | proof envelopes: shared checks, the verifier registry, the `uptime/v1` kind, the chain-proof seam |
//! | [`ratelimit`] | token buckets and a bounded per-key limiter |
//! | [`reputation`] | local peer score: events, decay, ban windows, gossipsub application score |
//! | [`chain`] | checked validator sets, quorum math, commit/polka/round certificate and evidence verification |
//! | [`gossip`] | validating a gossip message: decode, author, signature, admission, freshness, replay → a verdict with a reason |
//! | [`inbound`] | the inbound policy: one gossip message, its relay, the local view and `now` in; accept/ignore/reject, the relay's reputation event and follow-up work out |
//! | [`state`] | the state tree: key layout, BLAKE3 hashing scheme, value/absence proofs and snapshot chunks verified against a root |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod chain;
pub mod genesis;
pub mod gossip;
pub mod hash;
pub mod identity;
pub mod inbound;
pub mod proof;
pub mod ratelimit;
pub mod reputation;
pub mod state;
pub mod tier;
pub mod verify;
pub mod wire;
