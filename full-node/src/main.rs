//! `tiernet-node`: the full node binary. See `tiernet-node --help`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tiernet_node::cli::{Cli, Command};
use tiernet_node::commands;
use tiernet_node::config::{DEFAULT_NETWORK_ID, default_config_toml};
use tiernet_node::{Node, Reporter};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::PrintConfig => print_config(),
        Command::Run => run(&cli, None),
        Command::Register { prover, epoch } => register(&cli, prover.as_deref(), *epoch),
        Command::Init => init(&cli),
        Command::VerifyChain => verify_chain(&cli),
        Command::Devnet {
            validators,
            dir,
            base_port,
            ..
        } => devnet(&cli, *validators, dir.clone(), *base_port, cli.command.devnet_forger()),
        Command::Genesis {
            out,
            validators,
            members,
            network_id,
            power,
            genesis_time_ms,
            short_uptime,
        } => {
            let network_id = network_id
                .as_ref()
                .or(cli.network_id.as_ref())
                .map_or_else(|| DEFAULT_NETWORK_ID.to_owned(), ToString::to_string);
            genesis(&commands::GenesisOptions {
                out: out.clone(),
                validators: *validators,
                members: members.clone().unwrap_or_default().0,
                network_id,
                power: *power,
                genesis_time_ms: *genesis_time_ms,
                short_uptime: *short_uptime,
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The devnet's log filter (stderr).
const DEVNET_LOG_FILTER: &str =
    "warn,webrtc=error,webrtc_ice=error,webrtc_dtls=error,webrtc_sctp=error,webrtc_srtp=error";

fn devnet(
    cli: &Cli,
    validators: usize,
    dir: std::path::PathBuf,
    base_port: u16,
    forger: Option<String>,
) -> anyhow::Result<()> {
    let network_id = match &cli.network_id {
        Some(id) => id.clone(),
        None => tiernet_core::wire::NetworkId::new(DEFAULT_NETWORK_ID)?,
    };
    tracing_subscriber::fmt()
        // The WebRTC stack warns at every browser tab that closes; only its errors matter here.
        .with_env_filter(EnvFilter::try_new(DEVNET_LOG_FILTER).context("log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    runtime.block_on(async move {
        let mut sigint = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let options = tiernet_node::devnet::DevnetOptions {
            dir,
            validators,
            base_port,
            network_id,
            forger,
        };
        tiernet_node::devnet::run(options, async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
            }
        })
        .await?;
        Ok(())
    })
}

fn verify_chain(cli: &Cli) -> anyhow::Result<()> {
    let config = cli.resolve_config()?;
    let report = tiernet_node::verify_chain::verify_chain(&config)?;
    print_stdout(&format!("verified: {} {}\n", report.height, report.root))
}

fn print_config() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(default_config_toml().as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

fn init(cli: &Cli) -> anyhow::Result<()> {
    let config = cli.resolve_config()?;
    let outcome = commands::init(&config.data_dir)?;
    print_stdout(&outcome.to_string())
}

fn genesis(options: &commands::GenesisOptions) -> anyhow::Result<()> {
    let outcome = commands::genesis(options)?;
    print_stdout(&outcome.to_string())
}

fn register(cli: &Cli, prover: Option<&std::path::Path>, epoch: Option<u64>) -> anyhow::Result<()> {
    let config = cli.resolve_config()?;
    let registration = tiernet_node::register::prepare(&config, prover, epoch)?;
    run(cli, Some(registration))
}

fn run(cli: &Cli, registration: Option<tiernet_node::node::register_flow::PendingRegistration>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    runtime.block_on(run_node(cli, registration))
}

async fn run_node(
    cli: &Cli,
    registration: Option<tiernet_node::node::register_flow::PendingRegistration>,
) -> anyhow::Result<()> {
    // Install the handlers first, so that a signal that arrives while the
    // node starts still means a clean shutdown.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;

    let config = cli.resolve_config()?;
    // `--log` beats RUST_LOG, which beats the config file's `log`.
    let rust_log = std::env::var("RUST_LOG").ok();
    let rust_log = if cli.log.is_some() { None } else { rust_log };
    let filter = tiernet_node::logging::filter(rust_log.as_deref(), &config.log)?;
    tiernet_node::logging::init(config.log_format, filter, std::io::stderr().is_terminal());

    let mut node = Node::new(config, Reporter::Stdout)?;
    if let Some(registration) = registration {
        node.set_registration(registration);
    }
    // SIGHUP: re-read the config file (with the same flags) and hand it to
    // the node, which applies the [peers] allow and block lists at once.
    let reloads = node.reload_sender();
    let reload_cli = cli.clone();
    tokio::spawn(async move {
        while sighup.recv().await.is_some() {
            match reload_cli.resolve_config() {
                Ok(config) => {
                    tracing::info!("SIGHUP: configuration re-read");
                    if reloads.send(config).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: configuration not reloaded"),
            }
        }
    });
    node.run(async move {
        tokio::select! {
            _ = sigint.recv() => tracing::info!("SIGINT received"),
            _ = sigterm.recv() => tracing::info!("SIGTERM received"),
        }
    })
    .await?;
    Ok(())
}
