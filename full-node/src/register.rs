//! `tiernet-node register`: permissionless registration (issue 19).
//!
//! 1. Reads the genesis and the node's ZSI key (created if missing, as `run`
//!    does for `init`), and finds the `tiernet/posw/v1` program in the
//!    genesis `stark_programs` (none: registration is closed).
//! 2. Runs `tiernet-prove posw` (nightly; `make prove` builds it) for the
//!    ZSI and the registration epoch, which shows a progress bar and the
//!    expected time on stderr.
//! 3. Runs the node with the proof as a pending registration
//!    (`node::register_flow`): it submits the registration to connected full
//!    nodes until a block includes it, then prints `registered: <zsi> <height>`
//!    and keeps running as a TL1 node.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tiernet_core::genesis::Genesis;
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::identity::registry::IdentityRegistry;
use tiernet_core::proof::program::{POSW_PROGRAM_ID, ProgramSpec};
use tiernet_core::proof::stwo::registration_statement;

use crate::config::ValidConfig;
use crate::node::register_flow::PendingRegistration;

/// Where to find `tiernet-prove`: the flag, `$TIERNET_PROVE`, next to this
/// binary, or on `PATH`.
pub fn prover_path(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os("TIERNET_PROVE") {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let sibling = dir.join("tiernet-prove");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("tiernet-prove")
}

/// The registration epoch estimated from the clock: chain time advances
/// about one block time per block.
pub fn estimate_epoch(genesis: &Genesis, program: &ProgramSpec, now_ms: u64) -> u64 {
    let blocks = now_ms.saturating_sub(genesis.genesis_time_ms) / genesis.consensus.block_time_ms.max(1);
    program.epoch_at(blocks)
}

/// Proves and returns the pending registration for the configured node.
pub fn prepare(config: &ValidConfig, prover: Option<&Path>, epoch: Option<u64>) -> anyhow::Result<PendingRegistration> {
    let (genesis_path, _) = config.genesis_path();
    let text = std::fs::read_to_string(&genesis_path)
        .with_context(|| format!("genesis {} (genesis_file or --genesis)", genesis_path.display()))?;
    let genesis = Genesis::from_json(&text).with_context(|| format!("genesis {}", genesis_path.display()))?;
    let Some(program) = genesis.file.stark_programs.iter().find(|p| p.id == POSW_PROGRAM_ID) else {
        bail!(
            "genesis lists no {POSW_PROGRAM_ID} program in stark_programs: this network has no permissionless registration"
        );
    };
    let (key_path, _) = config.identity_path();
    let (keys, _) = ZsiKeypair::load_or_create(&key_path).with_context(|| format!("ZSI key {}", key_path.display()))?;
    let subject = keys.zsi_id();
    if genesis.registry.lookup(&subject).is_some() {
        bail!("{subject} is already registered in genesis");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let epoch = epoch.unwrap_or_else(|| estimate_epoch(&genesis, program, now));
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("data dir {}", config.data_dir.display()))?;
    let out = config.data_dir.join("registration.proof");
    let prover = prover_path(prover);
    let spec = serde_json::to_string(program).context("program spec")?;
    eprintln!("registering {subject} (epoch {epoch}) with {}", prover.display());
    let status = Command::new(&prover)
        .args(["posw", "--network", genesis.network.as_str(), "--subject"])
        .arg(subject.to_string())
        .args(["--epoch", &epoch.to_string(), "--spec-json", &spec, "--out"])
        .arg(&out)
        .status()
        .with_context(|| {
            format!(
                "cannot run {} (build it with `make prove`, or pass --prover)",
                prover.display()
            )
        })?;
    if !status.success() {
        bail!("{} failed: {status}", prover.display());
    }
    let proof = std::fs::read(&out).with_context(|| format!("proof {}", out.display()))?;
    if proof.len() > program.max_proof_bytes {
        bail!(
            "proof is {} bytes, above the program's {}",
            proof.len(),
            program.max_proof_bytes
        );
    }
    println!("proved: {subject} {epoch} {}", proof.len());
    Ok(PendingRegistration::new(
        registration_statement(&keys.public(), epoch),
        proof,
    ))
}
