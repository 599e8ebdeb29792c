//! End-to-end tests of `tiernet-node init` and `tiernet-node genesis`,
//! running the real binary in temporary directories.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use tiernet_core::genesis::Genesis;
use tiernet_core::identity::registry::IdentityRegistry;
use tiernet_core::identity::{NodeKeypair, ZsiId, ZsiKeypair};
use tiernet_core::tier::{Tier, tier_of};
use tiernet_node::config::NodeConfig;

fn tiernet_node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The `key: value` lines of stdout, in order.
fn lines(output: &Output) -> Vec<(String, String)> {
    stdout(output)
        .lines()
        .map(|line| {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("not `key: value`: {line:?}"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_the_files_and_refuses_to_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let data_arg = data.to_str().unwrap();

    let output = tiernet_node(&["--data-dir", data_arg, "init"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = lines(&output);
    let keys: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["peer_id", "zsi_id", "config"], "{lines:?}");

    let config_path = data.join("config.toml");
    assert_eq!(lines[2].1, config_path.display().to_string());
    let node_key = data.join("node_key");
    let zsi_key = data.join("zsi_key");
    assert_eq!(mode(&node_key), 0o600);
    assert_eq!(mode(&zsi_key), 0o600);

    // The printed ids are the ones in the key files.
    let (node, _) = NodeKeypair::load_or_create(&node_key).unwrap();
    assert_eq!(lines[0].1, node.peer_id().to_string());
    let zsi = ZsiKeypair::load(&zsi_key).unwrap().unwrap();
    assert_eq!(lines[1].1, zsi.zsi_id().to_string());

    // The config is the default one with data_dir pointing here.
    let config = NodeConfig::load(&config_path).unwrap();
    assert_eq!(config.data_dir, data);
    let expected = NodeConfig {
        data_dir: data.clone(),
        ..NodeConfig::default()
    };
    assert_eq!(config, expected);
    assert!(config.validate().is_ok());

    // A second init refuses, names the file, and changes nothing.
    let config_before = std::fs::read(&config_path).unwrap();
    let node_key_before = std::fs::read(&node_key).unwrap();
    let zsi_key_before = std::fs::read(&zsi_key).unwrap();
    let again = tiernet_node(&["--data-dir", data_arg, "init"]);
    assert_eq!(again.status.code(), Some(1));
    let message = stderr(&again);
    assert!(message.contains(&config_path.display().to_string()), "{message}");
    assert!(message.contains("already exists"), "{message}");
    assert!(stdout(&again).is_empty());
    assert_eq!(std::fs::read(&config_path).unwrap(), config_before);
    assert_eq!(std::fs::read(&node_key).unwrap(), node_key_before);
    assert_eq!(std::fs::read(&zsi_key).unwrap(), zsi_key_before);
}

#[test]
fn init_keeps_existing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (node, _) = NodeKeypair::load_or_create(&data.join("node_key")).unwrap();
    let zsi = ZsiKeypair::generate();
    zsi.save_new(&data.join("zsi_key")).unwrap();

    let output = tiernet_node(&["--data-dir", data.to_str().unwrap(), "init"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = lines(&output);
    assert_eq!(lines[0], ("peer_id".into(), node.peer_id().to_string()));
    assert_eq!(lines[1], ("zsi_id".into(), zsi.zsi_id().to_string()));
}

#[test]
fn genesis_gives_exactly_the_tiers_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let out_arg = out.to_str().unwrap();
    let output = tiernet_node(&[
        "genesis",
        "--out",
        out_arg,
        "--validators",
        "3",
        "--members",
        "TL1,TL2,TL0",
        "--network-id",
        "testnet-1",
        "--power",
        "7",
        "--genesis-time-ms",
        "1764000000000",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = lines(&output);
    assert_eq!(lines.len(), 7, "{lines:?}");
    let genesis_path = out.join("genesis.json");
    assert_eq!(lines[6], ("genesis".into(), genesis_path.display().to_string()));

    let genesis = Genesis::from_json(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
    assert_eq!(genesis.network.as_str(), "testnet-1");
    assert_eq!(genesis.genesis_time_ms, 1_764_000_000_000);
    assert_eq!(genesis.registry.len(), 6);
    assert_eq!(genesis.validators.validators.len(), 3);
    assert!(genesis.validators.validators.iter().all(|v| v.power == 7));

    let expected = [
        ("validator-0", Tier::TL3, true),
        ("validator-1", Tier::TL3, true),
        ("validator-2", Tier::TL3, true),
        ("member-0-TL1", Tier::TL1, false),
        ("member-1-TL2", Tier::TL2, false),
        ("member-2-TL0", Tier::TL0, false),
    ];
    let mut seen = BTreeMap::new();
    for (i, ((key, value), (name, tier, validator))) in lines.iter().zip(expected).enumerate() {
        assert_eq!(key, "identity");
        let words: Vec<&str> = value.split(' ').collect();
        assert_eq!(words.len(), 4, "{value}");
        let key_path = out.join(format!("node-{i}")).join("zsi_key");
        assert_eq!(words[0], name);
        assert_eq!(words[2], tier.label(), "{value}");
        assert_eq!(words[3], key_path.display().to_string());
        assert_eq!(mode(&key_path), 0o600);

        // The key file holds the identity that genesis registers, with the tier asked for.
        let key = ZsiKeypair::load(&key_path).unwrap().unwrap();
        let zsi_id = ZsiId::from_hex(words[1]).unwrap();
        assert_eq!(key.zsi_id(), zsi_id);
        let registered = genesis.registry.lookup(&zsi_id).expect("registered");
        assert_eq!(registered.public, key.public());
        assert_eq!(
            tier_of(Some(&registered.reputation), &genesis.thresholds),
            tier,
            "{name}"
        );
        assert_eq!(genesis.is_validator(&zsi_id), validator, "{name}");
        let entry = genesis.file.identities.iter().find(|e| e.name == name).unwrap();
        assert_eq!(entry.zsi_id, words[1]);
        if let Some(v) = &entry.validator {
            assert_eq!(v.consensus_key, entry.identity_key);
        }
        seen.insert(zsi_id, name);
    }
    assert_eq!(seen.len(), 6, "every identity is distinct");
}

#[test]
fn genesis_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let out_arg = out.to_str().unwrap();
    let first = tiernet_node(&["genesis", "--out", out_arg, "--validators", "2"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let genesis_path = out.join("genesis.json");
    let before = std::fs::read(&genesis_path).unwrap();
    let key_before = std::fs::read(out.join("node-0/zsi_key")).unwrap();

    let again = tiernet_node(&["genesis", "--out", out_arg, "--validators", "2"]);
    assert_eq!(again.status.code(), Some(1));
    let message = stderr(&again);
    assert!(message.contains(&genesis_path.display().to_string()), "{message}");
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(std::fs::read(&genesis_path).unwrap(), before);
    assert_eq!(std::fs::read(out.join("node-0/zsi_key")).unwrap(), key_before);

    // A key file in the way is refused too, before anything is written.
    let other = dir.path().join("other");
    let (_, _) = ZsiKeypair::load_or_create(&other.join("node-1/zsi_key")).unwrap();
    let blocked = tiernet_node(&["genesis", "--out", other.to_str().unwrap(), "--validators", "2"]);
    assert_eq!(blocked.status.code(), Some(1));
    let message = stderr(&blocked);
    assert!(
        message.contains(&other.join("node-1/zsi_key").display().to_string()),
        "{message}"
    );
    assert!(!other.join("genesis.json").exists());
    assert!(!other.join("node-0").exists());
}

#[test]
fn genesis_rejects_bad_arguments_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let out_arg = out.to_str().unwrap();

    let bad_spec = tiernet_node(&["genesis", "--out", out_arg, "--validators", "1", "--members", "TL1,TL9"]);
    assert!(!bad_spec.status.success());
    let message = stderr(&bad_spec);
    assert!(message.contains("--members"), "{message}");
    assert!(message.contains("\"TL9\" is not a tier"), "{message}");
    assert!(message.contains("TL0..TL5"), "{message}");

    let none = tiernet_node(&["genesis", "--out", out_arg, "--validators", "0"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("expected at least 1 validator"),
        "{}",
        stderr(&none)
    );

    let members = ["TL2"; 7].join(",");
    let too_many = tiernet_node(&[
        "genesis",
        "--out",
        out_arg,
        "--validators",
        "250",
        "--members",
        &members,
    ]);
    assert_eq!(too_many.status.code(), Some(1));
    assert!(
        stderr(&too_many).contains("257 identities; expected at most 256"),
        "{}",
        stderr(&too_many)
    );

    let zero_power = tiernet_node(&["genesis", "--out", out_arg, "--validators", "1", "--power", "0"]);
    assert!(!zero_power.status.success());
    assert!(stderr(&zero_power).contains("--power"), "{}", stderr(&zero_power));

    let bad_net = tiernet_node(&[
        "genesis",
        "--out",
        out_arg,
        "--validators",
        "1",
        "--network-id",
        "Bad Net",
    ]);
    assert!(!bad_net.status.success());
    assert!(stderr(&bad_net).contains("--network-id"), "{}", stderr(&bad_net));

    assert!(!out.exists(), "nothing is written on a bad argument");
}
