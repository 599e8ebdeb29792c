//! The `tiernet-sim` binary's command line: a bad scenario file is refused
//! with its path and reason before anything starts. (`make test` also runs
//! this binary on `scenarios/smoke.toml`; `cargo test` builds it for that.)

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tiernet-sim"))
}

#[test]
fn a_bad_scenario_is_refused_with_its_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\ndescription = \"\"\nduration_s = 60\nvalidators = 0\n",
    )
    .unwrap();
    let out = sim().arg("--out").arg(dir.path()).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("validators"), "{stderr}");
    assert!(!dir.path().join("x").exists(), "nothing ran");
}

#[test]
fn a_missing_file_is_named() {
    let out = sim().arg("/nonexistent/scenario.toml").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.toml"));
}
