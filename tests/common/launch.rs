//! Start a process with its stderr piped, keep draining that pipe for the process's whole life
//! (so it never blocks on a full pipe), and wait, bounded, for a line it prints. Shared by the
//! server helpers of every test file; the process is killed and reaped when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A running process and what it has written to stderr.
pub struct Launched {
    /// The process.
    pub child: Child,
    /// Everything written to stderr so far.
    log: Arc<Mutex<String>>,
    /// Each stderr line, as it arrives.
    lines: mpsc::Receiver<String>,
}

impl Launched {
    /// Spawn `cmd` with stdin and stdout closed and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Launched {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the process");
        let pipe = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Launched { child, log, lines }
    }

    /// The first value `parse` finds in a line printed within `timeout`.
    pub fn wait_for<T>(&self, timeout: Duration, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = parse(&line) {
                        return Some(found);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
