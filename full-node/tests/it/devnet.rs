//! `tiernet-node devnet`: validators in one process find each other, keep
//! their identities across runs, and stop cleanly.

use crate::common::{NodeProcess, wait_for_peers};

fn telemetry_of(devnet: &serde_json::Value) -> Vec<(String, String)> {
    devnet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["peer_id"].as_str().unwrap().to_owned(),
                n["telemetry"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("http://")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_devnet_of_three_validators_connects_and_restarts_with_the_same_identities() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("devnet");
    let net_arg = net.display().to_string();
    let args = ["devnet", "--validators", "3", "--dir", &net_arg, "--base-port", "0"];
    let mut first_ids = Vec::new();
    for run in 0..2 {
        let mut devnet = NodeProcess::start(dir.path(), &args);
        devnet.wait_for("devnet");
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(net.join("devnet.json")).unwrap()).unwrap();
        assert_eq!(file["websocket"].as_array().unwrap().len(), 3);
        assert_eq!(file["webrtc_direct"].as_array().unwrap().len(), 3);
        let genesis = tiernet_core::genesis::Genesis::from_json(file["genesis"].as_str().unwrap()).unwrap();
        assert_eq!(
            genesis.validators.validators.len(),
            3,
            "devnet.json carries the genesis"
        );
        assert!(file["forger"].is_null());
        let nodes = telemetry_of(&file);
        for (peer, telemetry) in &nodes {
            let others: Vec<&String> = nodes.iter().map(|(p, _)| p).filter(|p| *p != peer).collect();
            wait_for_peers(telemetry, "every other validator connected as TL3", |peers| {
                others
                    .iter()
                    .all(|o| peers.iter().any(|p| &&p.peer_id == o && p.connected && p.tier == "TL3"))
            });
        }
        let ids: Vec<String> = nodes.into_iter().map(|(p, _)| p).collect();
        if run == 0 {
            first_ids = ids;
        } else {
            assert_eq!(ids, first_ids, "a second run reuses the identities");
        }
        devnet.terminate();
        assert!(devnet.wait_exit().success());
    }
}

#[test]
fn a_devnet_forger_follows_the_chain_but_is_listed_apart_from_the_validators() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("devnet");
    let net_arg = net.display().to_string();
    let args = [
        "devnet",
        "--validators",
        "2",
        "--dir",
        &net_arg,
        "--base-port",
        "0",
        "--forger",
        "state",
    ];
    let mut devnet = NodeProcess::start(dir.path(), &args);
    devnet.wait_for("devnet");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net.join("devnet.json")).unwrap()).unwrap();
    assert_eq!(file["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(
        file["websocket"].as_array().unwrap().len(),
        2,
        "the forger is not a bootstrap address"
    );
    let forger = &file["forger"];
    assert_eq!(forger["forges"], "state");
    assert_eq!(forger["name"], "forger");
    assert_eq!(forger["zsi_id"], "", "the forger has no ZSI identity");
    let addrs: Vec<&str> = forger["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(addrs.iter().any(|a| a.contains("/ws/")) && addrs.iter().any(|a| a.contains("/webrtc-direct/")));
    let validators: Vec<String> = telemetry_of(&file).into_iter().map(|(p, _)| p).collect();
    let telemetry = forger["telemetry"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    wait_for_peers(&telemetry, "the forger is connected to both validators", |peers| {
        validators
            .iter()
            .all(|v| peers.iter().any(|p| &p.peer_id == v && p.connected))
    });
    devnet.terminate();
    assert!(devnet.wait_exit().success());
}
