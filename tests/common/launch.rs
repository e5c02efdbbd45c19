//! Processes for the tests, always bounded in time: [`Launched`] starts one with its stderr
//! piped, keeps draining that pipe for the process's whole life (so it never blocks on a full
//! pipe), and waits for a line it prints; [`run`] runs one to completion. Shared by the server
//! helpers and the outside tools (promtool, Prometheus); a launched process is killed and
//! reaped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`run`] lets a process take: far more than any tool or `cerberus` run to completion
/// needs, so that only a hung process reaches it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(15);

/// A running process and what it has written to stderr.
pub struct Launched {
    /// The process.
    pub child: Child,
    /// Everything written to stderr so far.
    log: Arc<Mutex<String>>,
    /// Each stderr line, as it arrives.
    lines: mpsc::Receiver<String>,
    /// The thread draining stderr, which ends at the pipe's EOF.
    reader: JoinHandle<()>,
}

impl Launched {
    /// Spawn `cmd` with stdin and stdout closed and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Launched {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Launched {
            child,
            log,
            lines,
            reader,
        }
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

    /// Wait up to `timeout` for the process to exit; `None` if it is still running. Once it
    /// has, what it wrote to stderr is all in [`stderr`](Self::stderr) (the pipe is drained to
    /// its end, for up to two seconds more), not just what the reader had taken so far.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let drained = Instant::now() + Duration::from_secs(2);
                while !self.reader.is_finished() && Instant::now() < drained {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
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

/// Run `cmd` to completion with `stdin` as its input; returns its exit status, stdout and
/// stderr. Panics (after killing it) if it has not exited within [`RUN_TIMEOUT`], so a hung
/// process fails the test instead of hanging it.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> (ExitStatus, String, String) {
    run_within(cmd, stdin, RUN_TIMEOUT)
}

/// [`run`] with its own time limit, for a tool that takes longer (testssl.sh).
pub fn run_within(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
    // Every pipe has its own thread, so a process that writes much before it reads (or never
    // reads) cannot block on us. A write error means it exited without reading, which its
    // status reports.
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = drain(child.stdout.take().expect("stdout is piped"));
    let err = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    (status, out.join().unwrap(), err.join().unwrap())
}

/// Read a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
