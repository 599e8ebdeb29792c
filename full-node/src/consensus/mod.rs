//! Consensus: a sans-IO engine over Malachite core (CONSENSUS.md).
//!
//! | module | what it holds |
//! |---|---|
//! | [`context`] | tiernet's types behind Malachite's `Context` |
//! | [`engine`] | the driver: inputs in, publishes/timers/decisions out |
//! | [`chain`] | the ledger, block store, state tree and mempool behind the engine |
//! | [`double_sign`] | the bounded equivocation detector over `votes` |
//! | [`fixture`] | a local chain for tests and benchmarks (restart, verify-chain) |

pub mod chain;
pub mod context;
pub mod double_sign;
pub mod engine;
pub mod fixture;
