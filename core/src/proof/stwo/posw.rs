//! The first `stwo/v1` program: a proof of sequential work
//! (`tiernet/posw/v1`).
//!
//! The statement: "starting from `seed`, I applied the permutation `P`
//! `2^log_iterations` times in a row". The seed is bound to one network,
//! one ZSI identity and one registration epoch ([`seed`]), so a proof
//! cannot be reused for another identity, network or epoch.
//!
//! `P` is a Poseidon2-style permutation over M31 (width 4, 8 full rounds,
//! S-box `x^5`, the Poseidon2 4×4 linear layer `M4`), with round constants
//! derived from BLAKE3 ([`round_constants`]). What matters here is that it
//! is a permutation whose iteration cannot be shortcut: `P^n(seed)` needs
//! `n` sequential evaluations, and the STARK shows that the prover did them.
//!
//! # AIR
//!
//! One trace row is one iteration; the trace has `2^log_iterations` rows
//! and [`N_COLUMNS`] columns, all in the main trace (no preprocessed
//! columns, so the verifier needs no preprocessed commitment):
//!
//! | column | meaning |
//! |---|---|
//! | `f` | 1 on the row that starts the chain, 0 elsewhere |
//! | `c` | a counter |
//! | `s[0..4]` | the state entering this iteration |
//! | per round `r`, element `j`: `sq`, `q`, `o` | `a²`, `a⁴`, `a⁵` for `a = x_r[j] + rc[r][j]` |
//!
//! where `x_0 = s` and `x_{r+1} = M4·o_r`. Constraints (all degree ≤ 2):
//!
//! - `sq = a²`, `q = sq²`, `o = q·a` for every round and element;
//! - `f·(f − 1) = 0` (f is boolean);
//! - `c − c_prev − 1 + f·2^k = 0` on every row (cyclically): summed over
//!   the whole cyclic domain this gives `2^k·(1 − Σf) = 0`, so exactly one
//!   row has `f = 1` (no selector column has to be trusted);
//! - `s = f·seed + (1 − f)·M4·o_{R−1, prev}`: the starting row holds the
//!   seed, every other row continues the previous row's output.
//!
//! Together: the `2^k` rows are `2^k` consecutive iterations from `seed`.

use std::ops::{Add, Mul, Sub};

use stwo::core::channel::Channel;
use stwo::core::fields::m31::{BaseField, M31, P};
use stwo_constraint_framework::{EvalAtRow, FrameworkEval, ORIGINAL_TRACE_IDX};

use crate::identity::ZsiId;
use crate::wire::NetworkId;

/// Program id of this AIR.
pub const PROGRAM_ID: &str = crate::proof::program::POSW_PROGRAM_ID;
/// AIR version (changes whenever the constraints or trace layout change).
pub const AIR_VERSION: u32 = crate::proof::program::POSW_AIR_VERSION;
/// State width in M31 elements.
pub const WIDTH: usize = 4;
/// Full rounds per iteration.
pub const ROUNDS: usize = 8;
/// Columns per trace row.
pub const N_COLUMNS: usize = 2 + WIDTH + ROUNDS * WIDTH * 3;

/// The seed of a registration proof: BLAKE3 of the domain, the network,
/// the identity and the epoch, as four M31 elements.
pub fn seed(network: &NetworkId, subject: &ZsiId, epoch: u64) -> [M31; WIDTH] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tiernet/stwo/posw/v1/seed");
    let network = network.as_str().as_bytes();
    hasher.update(&(network.len() as u64).to_le_bytes());
    hasher.update(network);
    hasher.update(subject.as_bytes());
    hasher.update(&epoch.to_le_bytes());
    let digest = hasher.finalize();
    elements(digest.as_bytes())
}

fn elements(bytes: &[u8; 32]) -> [M31; WIDTH] {
    let mut out = [M31(0); WIDTH];
    for (j, item) in out.iter_mut().enumerate() {
        let word = u32::from_le_bytes([bytes[4 * j], bytes[4 * j + 1], bytes[4 * j + 2], bytes[4 * j + 3]]);
        *item = M31::reduce(u64::from(word));
    }
    out
}

/// The round constants: `rc[r] = BLAKE3("tiernet/stwo/posw/v1/rc" ‖ r)` as M31 elements.
pub fn round_constants() -> [[M31; WIDTH]; ROUNDS] {
    let mut rc = [[M31(0); WIDTH]; ROUNDS];
    for (r, row) in rc.iter_mut().enumerate() {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"tiernet/stwo/posw/v1/rc");
        hasher.update(&(r as u64).to_le_bytes());
        *row = elements(hasher.finalize().as_bytes());
    }
    rc
}

/// The Poseidon2 4×4 linear layer `M4`.
pub fn mix<F>(x: &[F; WIDTH]) -> [F; WIDTH]
where
    F: Clone + Add<Output = F> + Mul<BaseField, Output = F>,
{
    const M4: [[u32; WIDTH]; WIDTH] = [[5, 7, 1, 3], [4, 6, 1, 1], [1, 3, 5, 7], [1, 1, 4, 6]];
    std::array::from_fn(|i| {
        let row = M4[i];
        x[0].clone() * M31(row[0])
            + x[1].clone() * M31(row[1])
            + x[2].clone() * M31(row[2])
            + x[3].clone() * M31(row[3])
    })
}

/// One iteration: returns the trace row (without `f` and `c`: the
/// `N_COLUMNS - 2` values `s`, then per round and element `sq, q, o`) and
/// the state after the iteration.
pub fn iterate(state: [M31; WIDTH], rc: &[[M31; WIDTH]; ROUNDS], row: &mut Vec<M31>) -> [M31; WIDTH] {
    row.clear();
    row.extend_from_slice(&state);
    let mut x = state;
    for constants in rc {
        let mut out = [M31(0); WIDTH];
        for j in 0..WIDTH {
            let a = x[j] + constants[j];
            let sq = a * a;
            let q = sq * sq;
            let o = q * a;
            row.extend_from_slice(&[sq, q, o]);
            out[j] = o;
        }
        x = mix(&out);
    }
    x
}

/// `P^(2^log_iterations)(seed)`, without a trace (tests and estimates).
pub fn chain_output(seed: [M31; WIDTH], log_iterations: u32) -> [M31; WIDTH] {
    let rc = round_constants();
    let mut row = Vec::with_capacity(N_COLUMNS);
    let mut state = seed;
    for _ in 0..(1u64 << log_iterations) {
        state = iterate(state, &rc, &mut row);
    }
    state
}

/// Mixes the public statement into the Fiat-Shamir channel, before any
/// commitment (prover and verifier alike).
pub fn mix_statement<C: Channel>(channel: &mut C, seed: &[M31; WIDTH], log_iterations: u32) {
    let mut words = Vec::with_capacity(WIDTH + 2);
    words.push(AIR_VERSION);
    words.push(log_iterations);
    words.extend(seed.iter().map(|m| m.0));
    channel.mix_u32s(&words);
}

/// The constraints (shared by prover and verifier).
#[derive(Debug, Clone)]
pub struct PoswEval {
    /// log2 of the number of iterations (= trace rows).
    pub log_iterations: u32,
    /// The chain's start.
    pub seed: [M31; WIDTH],
    /// Round constants ([`round_constants`]).
    pub rc: [[M31; WIDTH]; ROUNDS],
}

impl PoswEval {
    /// The AIR for `2^log_iterations` iterations from `seed`.
    pub fn new(log_iterations: u32, seed: [M31; WIDTH]) -> Self {
        Self {
            log_iterations,
            seed,
            rc: round_constants(),
        }
    }
}

fn sub<F: Clone + Sub<Output = F>>(a: &F, b: &F) -> F {
    a.clone() - b.clone()
}

impl FrameworkEval for PoswEval {
    fn log_size(&self) -> u32 {
        self.log_iterations
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_iterations + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let one = E::F::from(M31(1));
        let f = eval.next_trace_mask();
        let [c_prev, c] = eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [-1, 0]);
        let s: [E::F; WIDTH] = std::array::from_fn(|_| eval.next_trace_mask());
        let mut x = s.clone();
        let mut prev_out: [E::F; WIDTH] = std::array::from_fn(|_| E::F::from(M31(0)));
        for (r, constants) in self.rc.iter().enumerate() {
            let mut out: [E::F; WIDTH] = std::array::from_fn(|_| E::F::from(M31(0)));
            for j in 0..WIDTH {
                let a = x[j].clone() + E::F::from(constants[j]);
                let sq = eval.next_trace_mask();
                let q = eval.next_trace_mask();
                let o = if r + 1 == ROUNDS {
                    let [o_prev, o] = eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [-1, 0]);
                    prev_out[j] = o_prev;
                    o
                } else {
                    eval.next_trace_mask()
                };
                eval.add_constraint(sq.clone() - a.clone() * a.clone());
                eval.add_constraint(q.clone() - sq.clone() * sq);
                eval.add_constraint(o.clone() - q * a);
                out[j] = o;
            }
            x = mix(&out);
        }
        // f is boolean.
        eval.add_constraint(f.clone() * f.clone() - f.clone());
        // Exactly one starting row (see the module docs).
        let rows = M31::reduce(1u64 << self.log_iterations);
        eval.add_constraint(sub(&c, &c_prev) - one.clone() + f.clone() * rows);
        // The start holds the seed; every other row continues the previous one.
        let continued = mix(&prev_out);
        for j in 0..WIDTH {
            let expected = f.clone() * self.seed[j] + (one.clone() - f.clone()) * continued[j].clone();
            eval.add_constraint(s[j].clone() - expected);
        }
        eval
    }
}

/// Whether `value` is a canonical M31 element.
pub const fn is_canonical(value: u32) -> bool {
    value < P
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_binds_network_identity_and_epoch() {
        let net = NetworkId::new("devnet").unwrap();
        let other_net = NetworkId::new("testnet").unwrap();
        let a = ZsiId(crate::hash::Hash32([1; 32]));
        let b = ZsiId(crate::hash::Hash32([2; 32]));
        let base = seed(&net, &a, 7);
        assert_ne!(base, seed(&net, &b, 7));
        assert_ne!(base, seed(&net, &a, 8));
        assert_ne!(base, seed(&other_net, &a, 7));
        assert!(base.iter().all(|m| is_canonical(m.0)));
    }

    #[test]
    fn iteration_is_a_permutation_step_with_the_documented_layout() {
        let rc = round_constants();
        let mut row = Vec::new();
        let next = iterate([M31(1), M31(2), M31(3), M31(4)], &rc, &mut row);
        assert_eq!(row.len(), N_COLUMNS - 2);
        assert_eq!(&row[..WIDTH], &[M31(1), M31(2), M31(3), M31(4)]);
        let a = M31(1) + rc[0][0];
        assert_eq!(row[WIDTH..WIDTH + 3], [a * a, a * a * a * a, a * a * a * a * a]);
        assert_ne!(next, [M31(1), M31(2), M31(3), M31(4)]);
        // Deterministic.
        assert_eq!(next, iterate([M31(1), M31(2), M31(3), M31(4)], &rc, &mut row));
    }
}
