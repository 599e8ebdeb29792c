//! `tiernet-prove`: the STWO prover CLI (nightly).
//!
//! ```text
//! tiernet-prove posw --network <id> --subject <zsi hex> --epoch <n> [--spec-json <json>] [--log-iterations <k>] --out <file>
//!     proves the sequential-work registration program, draws a progress bar
//!     with the expected time on stderr, writes the encoded proof to <file>
//! tiernet-prove estimate [--spec-json <json>] [--log-iterations <k>]
//!     prints the expected proving time in seconds
//! tiernet-prove bench [--max-log <k>]
//!     prints proving time per 2^k iterations, proof size, verification
//!     time per proof, and what a flood of heavy proofs costs under the budget
//! tiernet-prove fixtures <dir>
//!     writes the proofs the core tests verify (core/tests/data/stwo)
//! ```
//! `tiernet-node register` runs `tiernet-prove posw`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::proof::stwo::{ProgramSpec, VerifyBudget, posw, verify_posw};
use tiernet_core::wire::NetworkId;
use tiernet_prove::{Phase, Progress, Quiet, estimate_secs, prove_posw};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn spec_from(args: &[String]) -> Result<ProgramSpec, String> {
    let mut spec = match arg(args, "--spec-json") {
        Some(json) => serde_json::from_str(&json).map_err(|e| format!("--spec-json: {e}"))?,
        None => ProgramSpec::posw_default(),
    };
    if let Some(k) = arg(args, "--log-iterations") {
        spec.log_iterations = k.parse().map_err(|e| format!("--log-iterations: {e}"))?;
    }
    spec.check()?;
    Ok(spec)
}

/// A one-line progress bar on stderr against the expected time.
struct Bar {
    started: Instant,
    expected: f64,
    last: f64,
}

impl Progress for Bar {
    fn report(&mut self, phase: Phase, fraction: f64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        if elapsed - self.last < 0.2 && phase == Phase::Trace {
            return;
        }
        self.last = elapsed;
        // The trace is about a tenth of the work; commit and prove the rest.
        let done = match phase {
            Phase::Trace => 0.1 * fraction,
            Phase::Commit => 0.1,
            Phase::Prove => 0.35,
            Phase::Done => 1.0,
        };
        let width = 30;
        let filled = ((done * width as f64) as usize).min(width);
        let label = match phase {
            Phase::Trace => "iterating",
            Phase::Commit => "committing",
            Phase::Prove => "proving",
            Phase::Done => "done",
        };
        eprint!(
            "\r[{}{}] {:>3.0}% {label:<10} {elapsed:>6.1}s / ~{:.1}s expected   ",
            "=".repeat(filled),
            " ".repeat(width - filled),
            done * 100.0,
            self.expected
        );
        let _ = std::io::stderr().flush();
        if phase == Phase::Done {
            eprintln!();
        }
    }
}

fn cmd_posw(args: &[String]) -> Result<(), String> {
    let spec = spec_from(args)?;
    let network = NetworkId::new(&arg(args, "--network").ok_or("--network missing")?).map_err(|e| e.to_string())?;
    let subject =
        ZsiId::from_hex(&arg(args, "--subject").ok_or("--subject missing")?).ok_or("--subject: 64 hex digits")?;
    let epoch: u64 = arg(args, "--epoch")
        .ok_or("--epoch missing")?
        .parse()
        .map_err(|e| format!("--epoch: {e}"))?;
    let out = arg(args, "--out").ok_or("--out missing")?;
    let expected = estimate_secs(&spec);
    eprintln!(
        "proving 2^{} = {} iterations of {} for {subject} (epoch {epoch}); expected ~{expected:.1}s",
        spec.log_iterations,
        1u64 << spec.log_iterations,
        posw::PROGRAM_ID
    );
    let mut bar = Bar {
        started: Instant::now(),
        expected,
        last: -1.0,
    };
    let proof = prove_posw(&spec, posw::seed(&network, &subject, epoch), &mut bar).map_err(|e| e.to_string())?;
    std::fs::write(&out, &proof).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "wrote {} bytes to {out} in {:.1}s",
        proof.len(),
        bar.started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn cmd_bench(args: &[String]) -> Result<(), String> {
    let max_log: u32 = arg(args, "--max-log")
        .map_or(Ok(16), |k| k.parse())
        .map_err(|e| format!("{e}"))?;
    let net = NetworkId::new("bench").map_err(|e| e.to_string())?;
    println!(
        "program {} (AIR v{}), {} columns",
        posw::PROGRAM_ID,
        posw::AIR_VERSION,
        posw::N_COLUMNS
    );
    let base = ProgramSpec::posw_default();
    println!(
        "PCS: blowup 2^{}, {} queries, {} PoW bits = {} bits",
        base.log_blowup_factor,
        base.n_queries,
        base.pow_bits,
        base.security_bits()
    );
    println!(
        "{:>4} {:>10} {:>12} {:>12} {:>14}",
        "k", "iters", "prove_s", "proof_bytes", "verify_ms"
    );
    let mut heaviest = None;
    for k in (8..=max_log).step_by(2) {
        let spec = ProgramSpec {
            log_iterations: k,
            ..base.clone()
        };
        let seed = posw::seed(&net, &ZsiId(tiernet_core::hash::Hash32([k as u8; 32])), 0);
        let started = Instant::now();
        let proof = prove_posw(&spec, seed, &mut Quiet).map_err(|e| e.to_string())?;
        let prove_s = started.elapsed().as_secs_f64();
        if let Err(error) = verify_posw(&spec, seed, &proof) {
            println!(
                "{k:>4} {:>10} {prove_s:>12.2} {:>12} refused: {error}",
                1u64 << k,
                proof.len()
            );
            continue;
        }
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let _ = verify_posw(&spec, seed, &proof);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let verify_ms = median(times);
        println!(
            "{k:>4} {:>10} {prove_s:>12.2} {:>12} {verify_ms:>14.2}",
            1u64 << k,
            proof.len()
        );
        heaviest = Some((spec, seed, proof, verify_ms));
    }
    // A flood of the heaviest valid proof (full verification: the worst
    // case), re-sent by 2,000 keys within one window, under the node's
    // budget (full-node register_flow: proof bytes, 1 MiB per key and
    // 8 MiB in total per 10 s window).
    if let Some((spec, seed, proof, verify_ms)) = heaviest {
        let mut budget: VerifyBudget<u32> = VerifyBudget::new(10_000, 1 << 20, 8 << 20, 4_096);
        let started = Instant::now();
        let (mut verified, mut ignored) = (0u32, 0u32);
        for key in 0..2_000u32 {
            if budget.try_spend(&(key % 100), proof.len() as u64, 0).is_err() {
                ignored += 1;
                continue;
            }
            verified += 1;
            let _ = verify_posw(&spec, seed, &proof);
        }
        let spent = started.elapsed().as_secs_f64();
        let bound_ms = (8u64 << 20) / proof.len() as u64;
        println!(
            "flood: 2000 valid 2^{} proofs ({} bytes) from 100 keys in one 10 s window: {verified} verified, {ignored} ignored unverified; {:.0} ms spent (budget allows {bound_ms} proofs = ~{:.0} ms per window)",
            spec.log_iterations,
            proof.len(),
            spent * 1e3,
            bound_ms as f64 * verify_ms
        );
    }
    Ok(())
}

/// The fixture program (small, so core's tests stay in milliseconds).
fn fixture_spec() -> ProgramSpec {
    ProgramSpec {
        log_iterations: 6,
        pow_bits: 8,
        ..ProgramSpec::posw_default()
    }
}

fn cmd_fixtures(args: &[String]) -> Result<(), String> {
    let dir = args.first().ok_or("fixtures <dir>")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let net = NetworkId::new("devnet").map_err(|e| e.to_string())?;
    let keys = ZsiKeypair::from_seed(b"tiernet stwo fixture a").map_err(|e| e.to_string())?;
    let subject = keys.zsi_id();
    let spec = fixture_spec();
    let write = |name: &str, bytes: &[u8]| std::fs::write(format!("{dir}/{name}"), bytes).map_err(|e| e.to_string());
    let proof = prove_posw(&spec, posw::seed(&net, &subject, 0), &mut Quiet).map_err(|e| e.to_string())?;
    write("posw_k6_fixture_a_epoch0.bin", &proof)?;
    let short = ProgramSpec {
        log_iterations: 5,
        ..spec.clone()
    };
    let proof = prove_posw(&short, posw::seed(&net, &subject, 0), &mut Quiet).map_err(|e| e.to_string())?;
    write("posw_k5_fixture_a_epoch0.bin", &proof)?;
    write(
        "spec.json",
        serde_json::to_string_pretty(&spec)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )?;
    println!("fixtures for {subject} written to {dir}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("posw") => cmd_posw(&args[1..]),
        Some("estimate") => spec_from(&args[1..]).map(|spec| println!("{:.1}", estimate_secs(&spec))),
        Some("bench") => cmd_bench(&args[1..]),
        Some("fixtures") => cmd_fixtures(&args[1..]),
        _ => Err("usage: tiernet-prove posw|estimate|bench|fixtures … (see the crate docs)".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tiernet-prove: {error}");
            ExitCode::FAILURE
        }
    }
}
