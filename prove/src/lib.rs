//! tiernet's STWO prover (nightly; outside the stable workspace).
//!
//! Proves the sequential-work program `tiernet/posw/v1` whose AIR lives in
//! `tiernet_core::proof::stwo::posw` (the verifier uses the same
//! constraints): [`prove_posw`] generates the trace (one row per
//! iteration, [`posw::N_COLUMNS`] columns), commits it and runs STWO's
//! prover; the result is in the bounded encoding that
//! `tiernet_core::proof::stwo::codec::decode` reads.
//!
//! [`Progress`] reports the phases so the CLI can draw a progress bar;
//! [`estimate_secs`] calibrates on a small proof and extrapolates.

use std::time::Instant;

use stwo::core::channel::Blake2sM31Channel;
use stwo::core::fields::m31::{BaseField, M31};
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::utils::{bit_reverse, coset_order_to_circle_domain_order};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sM31MerkleChannel;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::{CommitmentSchemeProver, prove};
use stwo_constraint_framework::{FrameworkComponent, TraceLocationAllocator};
use tiernet_core::proof::stwo::{ProgramSpec, codec, pcs_config, posw};

/// Why proving failed.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The program spec is unusable.
    #[error("program spec: {0}")]
    Spec(String),
    /// STWO's prover failed.
    #[error("STWO prover: {0}")]
    Stwo(String),
}

/// A phase of proving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Iterating the permutation and writing the trace (fraction done).
    Trace,
    /// Interpolating and committing the trace.
    Commit,
    /// Composition, FRI, queries, proof of work.
    Prove,
    /// Done.
    Done,
}

/// Receives progress: the phase and the fraction of that phase done.
pub trait Progress {
    /// Called from the proving thread.
    fn report(&mut self, phase: Phase, fraction: f64);
}

/// Ignores progress.
pub struct Quiet;

impl Progress for Quiet {
    fn report(&mut self, _phase: Phase, _fraction: f64) {}
}

/// The trace of `2^log_size` iterations from `seed`, in STWO's
/// bit-reversed circle-domain order.
pub fn generate_trace(
    log_size: u32,
    seed: [M31; posw::WIDTH],
    progress: &mut dyn Progress,
) -> Vec<CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>> {
    let n = 1usize << log_size;
    let rc = posw::round_constants();
    let mut columns: Vec<Vec<M31>> = (0..posw::N_COLUMNS).map(|_| Vec::with_capacity(n)).collect();
    let mut row = Vec::with_capacity(posw::N_COLUMNS);
    let mut state = seed;
    let step = (n / 100).max(1);
    for i in 0..n {
        columns[0].push(M31(u32::from(i == 0)));
        columns[1].push(M31::reduce(i as u64));
        state = posw::iterate(state, &rc, &mut row);
        for (column, value) in columns[2..].iter_mut().zip(&row) {
            column.push(*value);
        }
        if i % step == 0 {
            progress.report(Phase::Trace, i as f64 / n as f64);
        }
    }
    let domain = CanonicCoset::new(log_size).circle_domain();
    columns
        .into_iter()
        .map(|column| {
            let mut values = coset_order_to_circle_domain_order(&column);
            bit_reverse(&mut values);
            CircleEvaluation::new(domain, values.into_iter().collect::<BaseColumn>())
        })
        .collect()
}

/// Proves `2^spec.log_iterations` iterations from `seed`; returns the
/// encoded proof.
pub fn prove_posw(
    spec: &ProgramSpec,
    seed: [M31; posw::WIDTH],
    progress: &mut dyn Progress,
) -> Result<Vec<u8>, ProveError> {
    spec.check().map_err(ProveError::Spec)?;
    let log_size = spec.log_iterations;
    let config = pcs_config(spec);
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(log_size + 1 + config.fri_config.log_blowup_factor)
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Blake2sM31Channel::default();
    posw::mix_statement(channel, &seed, log_size);
    let mut scheme = CommitmentSchemeProver::<SimdBackend, Blake2sM31MerkleChannel>::new(config, &twiddles);

    // Preprocessed trace: none (see the AIR's docs).
    let builder = scheme.tree_builder();
    builder.commit(channel);

    let trace = generate_trace(log_size, seed, progress);
    progress.report(Phase::Commit, 0.0);
    let mut builder = scheme.tree_builder();
    builder.extend_evals(trace);
    builder.commit(channel);

    progress.report(Phase::Prove, 0.0);
    let component = FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        posw::PoswEval::new(log_size, seed),
        SecureField::from(M31(0)),
    );
    let proof = prove::<SimdBackend, Blake2sM31MerkleChannel>(&[&component], channel, scheme)
        .map_err(|e| ProveError::Stwo(format!("{e:?}")))?;
    progress.report(Phase::Done, 1.0);
    Ok(codec::encode(&proof))
}

/// Expected proving time for `spec`, in seconds: proves a small instance
/// (2^10 iterations, same PCS parameters) and scales by the size ratio
/// times a log factor for the FFTs.
pub fn estimate_secs(spec: &ProgramSpec) -> f64 {
    const CAL: u32 = 10;
    let mut small = spec.clone();
    small.log_iterations = CAL.clamp(spec.min_log_size, spec.max_log_size);
    let started = Instant::now();
    let _ = prove_posw(&small, [M31(1); posw::WIDTH], &mut Quiet);
    let t = started.elapsed().as_secs_f64();
    let ratio = (1u64 << spec.log_iterations.saturating_sub(small.log_iterations)) as f64;
    let log_factor = f64::from(spec.log_iterations + 1) / f64::from(small.log_iterations + 1);
    t * ratio * log_factor
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use stwo::core::pcs::TreeVec;
    use stwo_constraint_framework::{FrameworkEval, assert_constraints_on_polys};
    use tiernet_core::identity::ZsiId;
    use tiernet_core::proof::stwo::{StarkError, verify_posw};
    use tiernet_core::wire::NetworkId;

    use super::*;

    fn spec(log: u32) -> ProgramSpec {
        ProgramSpec {
            log_iterations: log,
            pow_bits: 8,
            ..ProgramSpec::posw_default()
        }
    }

    fn seed_for(id: u8, epoch: u64) -> [M31; posw::WIDTH] {
        posw::seed(
            &NetworkId::new("devnet").unwrap(),
            &ZsiId(tiernet_core::hash::Hash32([id; 32])),
            epoch,
        )
    }

    #[test]
    fn the_trace_satisfies_the_constraints() {
        let log = 5;
        let seed = seed_for(1, 0);
        let trace = generate_trace(log, seed, &mut Quiet);
        let polys = TreeVec::new(vec![vec![], trace.into_iter().map(|c| c.interpolate()).collect()]);
        let eval = posw::PoswEval::new(log, seed);
        assert_constraints_on_polys(
            &polys,
            CanonicCoset::new(log),
            |e| {
                eval.evaluate(e);
            },
            SecureField::from(M31(0)),
        );
    }

    #[test]
    #[should_panic]
    fn a_trace_from_another_seed_violates_the_constraints() {
        let log = 5;
        let trace = generate_trace(log, seed_for(2, 0), &mut Quiet);
        let polys = TreeVec::new(vec![vec![], trace.into_iter().map(|c| c.interpolate()).collect()]);
        let eval = posw::PoswEval::new(log, seed_for(1, 0));
        assert_constraints_on_polys(
            &polys,
            CanonicCoset::new(log),
            |e| {
                eval.evaluate(e);
            },
            SecureField::from(M31(0)),
        );
    }

    #[test]
    fn prove_then_verify_and_refuse_other_seeds_and_sizes() {
        let started = Instant::now();
        let s = spec(6);
        let seed = seed_for(1, 3);
        let proof = prove_posw(&s, seed, &mut Quiet).unwrap();
        assert_eq!(verify_posw(&s, seed, &proof), Ok(()));
        // Another identity or epoch: the seed differs.
        assert!(matches!(
            verify_posw(&s, seed_for(2, 3), &proof),
            Err(StarkError::Verify(_))
        ));
        assert!(matches!(
            verify_posw(&s, seed_for(1, 4), &proof),
            Err(StarkError::Verify(_))
        ));
        // Fewer iterations than the program demands.
        let short = prove_posw(&spec(5), seed, &mut Quiet).unwrap();
        assert!(verify_posw(&s, seed, &short).is_err());
        eprintln!("prove+verify test: {:?}", started.elapsed());
    }
}
