//! `tiernet-sim`: runs many real tiernet nodes in one process over links
//! with latency and bandwidth, with adversaries, churn and partitions, and
//! writes a report per scenario with each pass line marked PASS or FAIL.
//!
//! ```text
//! tiernet-sim [--out target/sim] tests/sim/scenarios/baseline.toml ...
//! ```
//!
//! Exit status 1 if any pass line fails. See `tests/sim/README.md`.
#![forbid(unsafe_code)]

use tiernet_sim::{analysis, report, scenario, world};

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "tiernet-sim",
    about = "Run network scenarios against real tiernet nodes and report"
)]
struct Cli {
    /// Where reports go: `<out>/<scenario>/report.md`.
    #[arg(long, default_value = "target/sim")]
    out: PathBuf,
    /// Scenario files (TOML).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let scenarios = cli
        .scenarios
        .iter()
        .map(|p| scenario::Scenario::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut failed = Vec::new();
    for scenario in scenarios {
        let name = scenario.name.clone();
        let began = Instant::now();
        let verdicts = runtime.block_on(run_one(scenario, &cli.out))?;
        let fails: Vec<_> = verdicts.iter().filter(|v| !v.pass).collect();
        println!(
            "{name}: {} of {} pass lines pass ({:.0} s); report {}",
            verdicts.len() - fails.len(),
            verdicts.len(),
            began.elapsed().as_secs_f64(),
            cli.out.join(&name).join("report.md").display()
        );
        for v in &verdicts {
            println!(
                "  {} {} = {} (bound {})",
                if v.pass { "PASS" } else { "FAIL" },
                v.check,
                v.figure.map_or("not measured".into(), |f| format!("{f:.3}")),
                v.bound
            );
        }
        if !fails.is_empty() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("pass lines failed in: {}", failed.join(", "));
    }
    Ok(())
}

async fn run_one(scenario: scenario::Scenario, out: &std::path::Path) -> Result<Vec<report::Verdict>> {
    let began = Instant::now();
    let mut world = world::World::build(scenario)?;
    eprintln!(
        "[{}] {} tiernet nodes, {} raw adversaries, {} light clients; data in {}",
        world.scenario.name,
        world.node_count(),
        world.roles.len() - world.node_count(),
        world.scenario.light_clients,
        world.dir().display()
    );
    world.run().await?;
    // Let aborted tasks drop their stores before the directory goes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let duplicates = world.duplicates();
    let traffic = world.traffic();
    let figures = analysis::analyse(&world, &duplicates, &traffic);
    let verdicts = report::verdicts(&world.scenario, &figures);
    let mut roles: Vec<(String, usize)> = world::role_counts(&world.roles).into_iter().collect();
    roles.sort();
    roles.push(("light client".into(), world.scenario.light_clients));
    report::write(
        &out.join(&world.scenario.name),
        &world.scenario,
        &roles,
        &figures,
        &verdicts,
        began.elapsed().as_secs_f64(),
    )?;
    Ok(verdicts)
}
