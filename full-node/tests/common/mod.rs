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
}

impl NodeProcess {
    /// Starts `tiernet-node --data-dir <data_dir> <args...>`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
            .arg("--data-dir")
            .arg(data_dir)
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
