//! # tiernet-fuzz
//!
//! The harnesses behind the cargo-fuzz targets in `fuzz_targets/`: each
//! target is one line that calls a `run` function here, so the harness logic
//! has one home and the targets stay trivial. Every harness feeds untrusted
//! bytes to the code a peer can reach, must never panic, and checks an
//! oracle where one exists (a forged input must never verify).
//!
//! | target | what it feeds | oracle |
//! |---|---|---|
//! | `wire_<kind>` | `tiernet_core::wire::decode::<M>` of every message type read from the network or a peer-served store | what decodes re-encodes canonically and decodes again to the same message |
//! | `wire_frame` | the request-response length prefix decoder | lengths never exceed the cap; a prefix round-trips |
//! | `hello_verify` | `verify_hello` + `standing` on arbitrary Hello bytes against a fixed registry and PeerIds | a verified Hello is bound to its direction; the tier is the registry's |
//! | `gossip_validate` | `gossip::validate` over arbitrary topic, bytes, registry state and clock ([`gossip`]) | an accepted message's author, tier and rights agree with the registry and the publish table; a heartbeat is accepted once |
//! | `snapshot_chunk` | `verify_snapshot_manifest` / `verify_snapshot_chunk` on arbitrary manifests and chunks over a real state tree | every proven entry is in the state; a completed snapshot has all of it |
//! | `ledger_apply` | `Ledger::apply` on arbitrary blocks over a small genesis ledger | a block that applies leads to the next height with the root its header names |
//! | `stwo_decode` | the `stwo/v1` proof decoder ([`stark`]) | what decodes is within the cap and re-encodes to the same bytes |
//! | `stwo_verify` | the `stwo/v1` verifier entry point `verify_posw` ([`stark`]) | only the fixture proof verifies; nothing panics |
//! | `light_sync` | `tiernet_light::sync::LightSync` fed arbitrary responses and blocks between honest ones | the head only moves forward and only to the real chain's headers; honest input still verifies |
//!
//! ## Inputs
//!
//! Harnesses that need more than one message read a small header and then
//! *records*, `[op u8][arg u8][len u16 LE][len bytes]` ([`Input::record`]),
//! so that libFuzzer can splice records across inputs. Each module
//! documents its own layout.
//!
//! ## Seeds
//!
//! Two sources, both generated at run time into `target/fuzz-corpus/<target>`
//! by `scripts/fuzz` (nothing binary is committed):
//! - `scripts/fuzz-seeds` wraps the hex vectors of `tests/vectors/wire-v1.json`
//!   into each target's input format;
//! - every target writes the valid inputs its own fixture can build (signed
//!   blocks, chain proofs, snapshot chunks) when started with
//!   [`SEED_DIR_ENV`] set ([`write_seeds_if_asked`]), so libFuzzer starts
//!   from inputs that reach the deepest checks.
//!
//! A crash becomes a regression test in the crate that owns the code (its
//! own tests), with the crashing input; the artefact itself is not kept.

#![forbid(unsafe_code)]

pub mod gossip;
pub mod hello;
pub mod ledger;
pub mod light;
pub mod snapshot;
pub mod stark;
pub mod wire;

use std::path::PathBuf;

/// When set, a target writes its fixture seeds into this directory at
/// start-up and exits without fuzzing.
pub const SEED_DIR_ENV: &str = "TIERNET_FUZZ_SEED_DIR";

/// Most records a harness reads from one input: bounds the work per input,
/// so a slow input is the code's fault, not the input's length.
pub const MAX_RECORDS: usize = 32;

/// When set, harnesses print what each input came to on stderr (run a
/// target binary on corpus files to see how far they get).
pub const DEBUG_ENV: &str = "TIERNET_FUZZ_DEBUG";

static DEBUG: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| std::env::var_os(DEBUG_ENV).is_some());

/// Prints `what()` on stderr if [`DEBUG_ENV`] is set.
pub fn debug(what: impl FnOnce() -> String) {
    if *DEBUG {
        eprintln!("tiernet-fuzz: {}", what());
    }
}

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);

/// Writes `seeds()` into `$TIERNET_FUZZ_SEED_DIR` as `fixture-<name>-<n>` and
/// exits, if the variable is set; otherwise does nothing. Called from each
/// target's `init`.
pub fn write_seeds_if_asked(seeds: impl FnOnce() -> Vec<Seed>) {
    let Some(dir) = std::env::var_os(SEED_DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(2);
    }
    let seeds = seeds();
    for (n, (name, bytes)) in seeds.iter().enumerate() {
        let path = dir.join(format!("fixture-{name}-{n}"));
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(2);
        }
    }
    println!("wrote {} fixture seeds to {}", seeds.len(), dir.display());
    std::process::exit(0);
}

/// A cursor over a fuzz input. Reads past the end yield zeros and empty
/// slices, so every input is a valid one.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        let b = self.bytes(2);
        u16::from(b.first().copied().unwrap_or(0)) | (u16::from(b.get(1).copied().unwrap_or(0)) << 8)
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next record `[op][arg][len u16 LE][payload]`, or `None` at the end.
    pub fn record(&mut self) -> Option<(u8, u8, &'a [u8])> {
        if self.is_empty() {
            return None;
        }
        let op = self.u8();
        let arg = self.u8();
        let len = usize::from(self.u16());
        Some((op, arg, self.bytes(len)))
    }
}

/// Encodes one record for [`Input::record`] (payloads over 64 KiB are cut).
pub fn record(op: u8, arg: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(usize::from(u16::MAX))];
    let len = payload.len() as u16;
    let mut out = vec![op, arg, len as u8, (len >> 8) as u8];
    out.extend_from_slice(payload);
    out
}
