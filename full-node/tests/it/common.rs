//! Runs the real `tiernet-node` binary; every process is killed on Drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a node gets to print a line or to exit.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `tiernet-node`; killed (SIGKILL) and reaped on Drop.
pub struct NodeProcess {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    /// The data directory's name (names the kept log).
    name: String,
}

/// Listener flags every test node gets.
pub const LOOPBACK_LISTENERS: &[&str] = &[
    "--listen-ws",
    "/ip4/127.0.0.1/tcp/0/ws",
    "--listen-webrtc",
    "/ip4/127.0.0.1/udp/0/webrtc-direct",
    "--telemetry",
    "127.0.0.1:0",
];

impl NodeProcess {
    /// Starts `tiernet-node --data-dir <data_dir> <loopback listeners> <args...>`:
    /// WebSocket, WebRTC-direct and telemetry on 127.0.0.1 with free ports, so
    /// tests never collide on the default ports.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(LOOPBACK_LISTENERS)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tiernet-node");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = sync_channel(64);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().expect("stderr buffer");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self {
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
            name: data_dir
                .file_name()
                .map_or_else(|| "node".to_owned(), |n| n.to_string_lossy().into_owned()),
            seen: Vec::new(),
        }
    }

    /// The value of the next stdout line `<prefix>: <value>`, skipping other
    /// lines; panics after [`TIMEOUT`].
    pub fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let tag = format!("{prefix}: ");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(value) = line.strip_prefix(&tag) {
                        return value.to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no `{prefix}:` line within {TIMEOUT:?}; saw {:?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit();
                    let stderr = self.stderr();
                    panic!(
                        "stdout closed before a `{prefix}:` line; {status}; saw {:?}; stderr:\n{stderr}",
                        self.seen
                    )
                }
            }
        }
    }

    /// The value of a `<prefix>: <value>` line for which `matches` holds,
    /// looking at lines already seen first.
    pub fn wait_for_matching(&mut self, prefix: &str, matches: impl Fn(&str) -> bool) -> String {
        let tag = format!("{prefix}: ");
        if let Some(value) = self
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix(&tag))
            .find(|v| matches(v))
        {
            return value.to_owned();
        }
        loop {
            let value = self.wait_for(prefix);
            if matches(&value) {
                return value;
            }
        }
    }

    /// The node's plain TCP listen address (with `/p2p/`).
    pub fn tcp_addr(&mut self) -> String {
        self.wait_for_matching("listening", |a| a.contains("/tcp/") && !a.contains("/ws"))
    }

    /// The node's listen address for a transport marker such as `/ws/` or `/webrtc-direct/`.
    pub fn addr_with(&mut self, marker: &str) -> String {
        self.wait_for_matching("listening", |a| a.contains(marker))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `INT`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; panics after [`TIMEOUT`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tiernet-node did not exit within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stderr contains every one of `needles`; panics after
    /// [`TIMEOUT`].
    pub fn wait_for_log(&self, needles: &[&str]) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            {
                let text = self.stderr.lock().expect("stderr buffer");
                if needles.iter().all(|n| text.contains(n)) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "stderr did not show {needles:?} within {TIMEOUT:?}:\n{text}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process wrote to stderr so far (it may still be running).
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Everything the process wrote to stderr; waits for it to exit first.
    pub fn stderr(&mut self) -> String {
        self.wait_exit();
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("stderr reader");
        }
        self.stderr.lock().expect("stderr buffer").clone()
    }
}

impl Drop for NodeProcess {
    /// Kills the node; with `TIERNET_TEST_LOG_DIR` set, its stderr is kept
    /// there as `<data dir name>-<pid>.log` (for debugging a failed test).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = std::env::var_os("TIERNET_TEST_LOG_DIR") {
            let name = format!("{}-{}.log", self.name, self.child.id());
            let _ = std::fs::write(Path::new(&dir).join(name), self.stderr_so_far());
        }
    }
}

/// One HTTP/1.1 request over a plain TCP socket: (status code, body).
pub fn http(method: &str, addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to telemetry");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET http://<addr><path>`.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http("GET", addr, path)
}

/// `POST http://<addr><path>` with an empty body.
pub fn http_post(addr: &str, path: &str) -> (u16, String) {
    http("POST", addr, path)
}

/// The node's peers as `/peers` shows them.
pub fn peers(telemetry: &str) -> Vec<tiernet_node::telemetry::PeerView> {
    let (status, body) = http_get(telemetry, "/peers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad /peers JSON ({e}): {body}"))
}

/// Polls `/peers` until `done` holds or [`TIMEOUT`] passes; returns the last answer.
pub fn wait_for_peers(
    telemetry: &str,
    what: &str,
    done: impl Fn(&[tiernet_node::telemetry::PeerView]) -> bool,
) -> Vec<tiernet_node::telemetry::PeerView> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let peers = peers(telemetry);
        if done(&peers) {
            return peers;
        }
        if Instant::now() > deadline {
            panic!("{what}: not reached within {TIMEOUT:?}; /peers = {peers:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `tiernet-node genesis --out <dir> <args...>` and checks it succeeded.
pub fn genesis(dir: &Path, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .arg("genesis")
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .expect("run tiernet-node genesis");
    assert!(
        output.status.success(),
        "genesis failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What a node decided about the last gossip messages it got
/// (`/testing/received`).
pub fn decisions(telemetry: &str) -> Vec<tiernet_node::telemetry::ReceivedView> {
    let (status, body) = http_get(telemetry, "/testing/received");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad /testing/received JSON ({e}): {body}"))
}

/// The gossip messages a node accepted.
pub fn received(telemetry: &str) -> Vec<tiernet_node::telemetry::ReceivedView> {
    decisions(telemetry)
        .into_iter()
        .filter(|r| r.decision == "accept")
        .collect()
}

/// The sum of every sample of `/metrics` whose series (name and labels)
/// contains all of `parts`, e.g. `["tiernet_gossip_messages_total",
/// "decision=\"stale\""]`. 0 when there is none.
pub fn metric_sum(telemetry: &str, parts: &[&str]) -> f64 {
    let (status, body) = http_get(telemetry, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| parts.iter().all(|p| series.contains(p)))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// Polls until `done` holds or `limit` passes; panics with `what` on timeout.
pub fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            panic!("{what}: not reached within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A started node and what it printed about itself.
pub struct Started {
    /// The process.
    pub process: NodeProcess,
    /// `peer_id:`.
    pub peer_id: String,
    /// `zsi_id:`, when the node has one.
    pub zsi_id: Option<String>,
    /// Its plain TCP address.
    pub tcp: String,
    /// Its telemetry `ip:port`.
    pub telemetry: String,
}

impl Started {
    /// Reads the lines a node prints on start. `has_zsi`: whether to expect `zsi_id:`.
    pub fn from(mut process: NodeProcess, has_zsi: bool) -> Self {
        let any = |_: &str| true;
        let peer_id = process.wait_for_matching("peer_id", any);
        let zsi_id = has_zsi.then(|| process.wait_for_matching("zsi_id", any));
        let tcp = process.tcp_addr();
        let telemetry = process
            .wait_for_matching("telemetry", any)
            .trim_start_matches("http://")
            .to_owned();
        Self {
            process,
            peer_id,
            zsi_id,
            tcp,
            telemetry,
        }
    }
}
