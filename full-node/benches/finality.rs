//! Block finality latency on a local 4-validator devnet: from the
//! proposer's block time (header `time_ms`) to each validator's decision,
//! as every node records it (`/chain` → `finality`). Prints the median,
//! p95 and max over every (node, height) sample. DESIGN.md target: ≤ 1 s.
//!
//! Run: `cargo bench -p tiernet-node --bench finality`. It starts the real
//! `tiernet-node devnet --validators 4` on loopback (free ports, a temporary
//! directory), measures `TIERNET_BENCH_HEIGHTS` heights (default 30) after a
//! warm-up, and stops it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tiernet_node::telemetry::ChainView;

const VALIDATORS: usize = 4;
/// Heights left out at the start (connections and meshes still forming).
const WARM_UP: u64 = 3;

/// The devnet process; killed on drop.
struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get_chain(telemetry: &str) -> Option<ChainView> {
    let authority = telemetry.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /chain HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let heights: u64 = std::env::var("TIERNET_BENCH_HEIGHTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().expect("temporary directory");
    let child = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .args([
            "devnet",
            "--validators",
            &VALIDATORS.to_string(),
            "--base-port",
            "0",
            "--dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tiernet-node devnet");
    let mut devnet = Devnet(child);
    let stdout = devnet.0.stdout.take().expect("stdout is piped");
    // Read the node lines, then keep draining: the devnet dies of a closed pipe otherwise.
    let (lines, node_lines) = std::sync::mpsc::sync_channel(64);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("validator-") {
                let _ = lines.try_send(line);
            }
        }
    });
    let mut telemetry = Vec::new();
    while telemetry.len() < VALIDATORS {
        let Ok(line) = node_lines.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        let url = line
            .split_whitespace()
            .skip_while(|w| *w != "telemetry")
            .nth(1)
            .expect("a telemetry address on the validator line");
        telemetry.push(url.to_owned());
    }
    assert_eq!(telemetry.len(), VALIDATORS, "the devnet did not report its nodes");

    let target = WARM_UP + heights;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30 + 5 * target);
    let views = loop {
        let views: Vec<Option<ChainView>> = telemetry.iter().map(|t| get_chain(t)).collect();
        if views.iter().all(|v| v.as_ref().is_some_and(|v| v.height >= target)) {
            break views.into_iter().flatten().collect::<Vec<_>>();
        }
        assert!(
            Instant::now() < deadline,
            "the devnet did not reach height {target} in time"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let elapsed = started.elapsed();

    let mut samples: Vec<u64> = views
        .iter()
        .flat_map(|v| v.finality.iter())
        .filter(|s| s.height > WARM_UP && s.height <= target)
        .map(|s| s.latency_ms)
        .collect();
    samples.sort_unstable();
    assert!(!samples.is_empty(), "no finality samples");
    let block_rate = target as f64 / elapsed.as_secs_f64();
    println!(
        "finality ({VALIDATORS} validators, {heights} heights, {} samples): median {} ms, p95 {} ms, max {} ms; \
         {block_rate:.2} blocks/s (block time 1 s)",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[samples.len() - 1],
    );
}
