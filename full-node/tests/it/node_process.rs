//! End-to-end tests of the `tiernet-node` binary over 127.0.0.1.

use std::process::Command;

use crate::common::NodeProcess;

const LOCAL: [&str; 2] = ["--listen", "/ip4/127.0.0.1/tcp/0"];

fn run_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = LOCAL.iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("run".into());
    args
}

fn start(data_dir: &std::path::Path, extra: &[&str]) -> NodeProcess {
    let args = run_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    NodeProcess::start(data_dir, &args)
}

#[test]
fn sigterm_is_a_clean_exit_and_the_peer_id_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");

    let mut node = start(&data, &[]);
    let peer_id = node.wait_for("peer_id");
    let listening = node.tcp_addr();
    assert!(listening.starts_with("/ip4/127.0.0.1/tcp/"), "{listening}");
    assert!(listening.ends_with(&format!("/p2p/{peer_id}")), "{listening}");
    node.terminate();
    let status = node.wait_exit();
    let stderr = node.stderr();
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(data.join("node_key").is_file());

    let mut again = start(&data, &[]);
    assert_eq!(again.wait_for("peer_id"), peer_id);
    again.wait_for("listening");
    again.signal("INT");
    assert!(again.wait_exit().success(), "SIGINT is a clean exit too");
}

#[test]
fn a_port_in_use_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = start(&dir.path().join("a"), &[]);
    let a_addr = a.tcp_addr();
    let port = a_addr.split('/').nth(4).unwrap().to_owned();

    let taken = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut b = NodeProcess::start(&dir.path().join("b"), &["--listen", &taken, "run"]);
    let status = b.wait_exit();
    let stderr = b.stderr();
    assert_eq!(status.code(), Some(1), "{status}; stderr:\n{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {taken}")), "{stderr}");
}

#[test]
fn a_corrupt_node_key_is_an_error_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let key = data.join("node_key");
    let garbage = b"tiernet-node-key/v1 ed25519 not-hex\n\xff\x00".to_vec();
    std::fs::write(&key, &garbage).unwrap();

    let mut node = start(&data, &[]);
    let status = node.wait_exit();
    let stderr = node.stderr();
    assert_eq!(status.code(), Some(1), "{status}; stderr:\n{stderr}");
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), garbage);
    assert!(
        node.seen.iter().all(|l| !l.starts_with("listening:")),
        "{:?}",
        node.seen
    );
}

#[test]
fn a_bad_config_file_is_an_error_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[limits]\nmax_connections = \"lots\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("node"))
        .args(run_args(&[]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(stderr.contains("limits.max_connections"), "{stderr}");
    assert!(!dir.path().join("node").exists(), "nothing is created for a bad config");
}

#[test]
fn print_config_prints_the_default_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .arg("print-config")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        tiernet_node::config::default_config_toml()
    );
}

#[test]
fn a_node_connects_to_its_bootstrap_peer() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = start(&dir.path().join("a"), &[]);
    let a_id = a.wait_for("peer_id");
    let a_addr = a.tcp_addr();

    let config = dir.path().join("b.toml");
    std::fs::write(&config, format!("bootstrap = [\"{a_addr}\"]\n")).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let mut b = start(&dir.path().join("b"), &["--config", &config]);
    let b_id = b.wait_for("peer_id");
    assert_ne!(a_id, b_id);

    assert_eq!(b.wait_for("connected"), a_id);
    assert_eq!(a.wait_for("connected"), b_id);
    // identify runs over the connection, with our protocol and agent.
    let agent = format!("agent=tiernet-node/{}", env!("CARGO_PKG_VERSION"));
    for (node, other) in [(&a, &b_id), (&b, &a_id)] {
        node.wait_for_log(&[
            &format!("peer={other}"),
            "peer identified",
            &agent,
            "protocol=/tiernet/id/1.0.0",
        ]);
    }

    b.terminate();
    assert!(b.wait_exit().success());
    assert_eq!(a.wait_for("disconnected"), b_id);
    a.terminate();
    assert!(a.wait_exit().success());
}

/// Whether the node closed `stream` (or does within `within`).
fn closed_by_node(stream: &std::net::TcpStream, within: std::time::Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// A stranger that connects and says nothing holds a pending slot only
/// until the handshake timeout. The transport had none: at the default
/// limits, 16 silent TCP connections from 4 IPs kept every new inbound
/// connection out for good (measured: still open after 60 s, every
/// newcomer refused as `pending_full`).
#[test]
fn silent_connections_free_their_pending_slots() {
    use std::net::TcpStream;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[connections]\nmax_pending_inbound = 4\nhandshake_timeout_ms = 1000\n",
    )
    .unwrap();
    let mut node = start(&dir.path().join("node"), &["--config", config.to_str().unwrap()]);
    let addr = node.tcp_addr();
    let port: u16 = addr.split('/').nth(4).unwrap().parse().unwrap();
    let connect = || TcpStream::connect(("127.0.0.1", port)).unwrap();

    let silent: Vec<TcpStream> = (0..4).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        closed_by_node(&connect(), Duration::from_millis(500)),
        "four silent connections fill the pending slots: a fifth is refused"
    );
    let dropped = silent.iter().all(|s| closed_by_node(s, Duration::from_secs(3)));
    assert!(
        dropped,
        "the node dropped the silent connections after the handshake timeout"
    );
    assert!(
        !closed_by_node(&connect(), Duration::from_millis(300)),
        "a newcomer gets a pending slot again"
    );
}
