//! Start the real `cerberus` binary and drive its process: [`Server::builder`] writes a
//! temporary config, starts the binary (optionally under `prlimit`, with environment
//! variables, or with listening sockets passed as systemd does), and waits, bounded, for its
//! `listening on ...` line. A [`Server`] can be reloaded, signalled and waited for, and is
//! killed when dropped.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::launch::{self, Launched};

/// The path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cerberus");

/// How long a test waits for the server to say it is listening (and for a line it should log
/// after a reload). A debug build on a busy 2-core CI machine can take a while to start its
/// workers.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How many sockets [`Builder::listen_fds`] can pass: the child places them without
/// allocating, in a fixed array.
const MAX_LISTEN_FDS: usize = 8;

/// The first descriptor systemd passes sockets at (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// A temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "cerberus-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Write a file in the directory and return its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a server: see [`Server::builder`].
pub struct Builder {
    config: String,
    /// `--workers`; `None` leaves it to the config file.
    workers: Option<usize>,
    /// `--listen`; `None` leaves it to the config file.
    listen: Option<String>,
    /// `--metrics-listen`; `None` leaves it to the config file.
    metrics_listen: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
    listen_fds: Vec<RawFd>,
    dir: TempDir,
}

impl Builder {
    /// Worker threads (`--workers`); 1 unless set.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// The `--listen` address; `127.0.0.1:0` unless set.
    pub fn listen(mut self, addr: &str) -> Builder {
        self.listen = Some(addr.to_owned());
        self
    }

    /// The `--metrics-listen` address (e.g. `127.0.0.1:0`); `off` unless set.
    pub fn metrics_listen(mut self, addr: &str) -> Builder {
        self.metrics_listen = Some(addr.to_owned());
        self
    }

    /// Pass none of `--listen`, `--workers` and `--metrics-listen`: the config file decides
    /// them, so a reload can change them (flags win over the file at every reload).
    pub fn flags_from_config(mut self) -> Builder {
        self.listen = None;
        self.workers = None;
        self.metrics_listen = None;
        self
    }

    /// Extra command-line arguments.
    pub fn arg(mut self, arg: &str) -> Builder {
        self.args.push(arg.to_owned());
        self
    }

    /// An environment variable for the server.
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Start the server with this open-file limit (soft and hard), via util-linux `prlimit`.
    pub fn nofile(mut self, limit: u64) -> Builder {
        self.nofile = Some(limit);
        self
    }

    /// Pass these listening sockets as systemd socket activation does: at descriptors 3, 4, ...
    /// with `LISTEN_FDS` and `LISTEN_PID` set. They must stay open until [`Builder::start`].
    pub fn listen_fds(mut self, fds: &[RawFd]) -> Builder {
        assert!(
            fds.len() <= MAX_LISTEN_FDS,
            "at most {MAX_LISTEN_FDS} sockets"
        );
        self.listen_fds = fds.to_vec();
        self
    }

    /// Write a file into the server's temporary directory; the config can name it as
    /// `$DIR/<name>` (for `body_file`).
    pub fn file(self, name: &str, contents: &[u8]) -> Builder {
        self.dir.write(name, contents);
        self
    }

    /// Start the server and wait until it is listening.
    pub fn start(self) -> Server {
        let config = write_config(&self.dir, &self.config);
        let mut cmd = self.command(&config);
        let process = Launched::spawn(&mut cmd);
        let Some((bound, https, metrics)) = process.wait_for(READY_TIMEOUT, parse_ready_line)
        else {
            panic!(
                "cerberus did not become ready within {READY_TIMEOUT:?}; stderr:\n{}",
                process.stderr()
            );
        };
        Server {
            process,
            bound,
            https,
            metrics,
            dir: self.dir,
        }
    }

    /// The command line: the binary and its flags, wrapped in `sh` to pass sockets and in
    /// `prlimit` to limit descriptors (both exec the next, so the pid stays the server's).
    fn command(&self, config: &Path) -> Command {
        let mut line: Vec<OsString> = vec![BIN.into()];
        let flags = [
            ("--listen", &self.listen),
            ("--workers", &self.workers.map(|n| n.to_string())),
            ("--metrics-listen", &self.metrics_listen),
        ];
        for (flag, value) in flags {
            if let Some(value) = value {
                line.extend([flag.into(), value.into()]);
            }
        }
        line.extend(["--config".into(), config.into()]);
        line.extend(self.args.iter().map(OsString::from));
        if !self.listen_fds.is_empty() {
            // systemd names the service's pid in LISTEN_PID; `exec` keeps the shell's, `$$`.
            let n = self.listen_fds.len();
            let script = format!("LISTEN_PID=$$ LISTEN_FDS={n} exec \"$0\" \"$@\"");
            line.splice(0..0, ["sh".into(), "-c".into(), script.into()]);
        }
        if let Some(n) = self.nofile {
            line.splice(0..0, ["prlimit".into(), format!("--nofile={n}:{n}").into()]);
        }
        let mut cmd = Command::new(&line[0]);
        cmd.args(&line[1..]);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.listen_fds.is_empty() {
            pass_sockets(&mut cmd, &self.listen_fds);
        }
        cmd
    }
}

/// Place `fds` at descriptors 3, 4, ... of the child, without close-on-exec.
fn pass_sockets(cmd: &mut Command, fds: &[RawFd]) {
    let mut from = [0; MAX_LISTEN_FDS];
    from[..fds.len()].copy_from_slice(fds);
    let n = fds.len();
    let end = LISTEN_FDS_START + RawFd::try_from(n).expect("few sockets");
    // SAFETY: between fork and exec the closure only calls dup, dup2 and close, which are
    // async-signal-safe, and it does not allocate (fixed arrays on its stack). The descriptors
    // stay open in the parent until the child has exec'd (see `Builder::listen_fds`).
    unsafe {
        cmd.pre_exec(move || {
            // Copy every socket out of the way first, so placing one cannot clobber another.
            // A copy is never below its own target (0-2 are taken and copies come in order),
            // and it has no close-on-exec flag.
            let mut moved = [0; MAX_LISTEN_FDS];
            for (copy, &fd) in moved.iter_mut().zip(&from[..n]) {
                *copy = libc::dup(fd);
                if *copy < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (target, &copy) in (LISTEN_FDS_START..).zip(&moved[..n]) {
                if copy != target && libc::dup2(copy, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for &copy in &moved[..n] {
                if copy >= end {
                    libc::close(copy);
                }
            }
            Ok(())
        });
    }
}

/// Write the config as the server reads it: `pin = false` in front (pinning only slows a
/// shared 2-core CI machine down; tests never need it), and `$DIR` replaced by `dir`.
fn write_config(dir: &TempDir, config: &str) -> PathBuf {
    let path = dir.path().display().to_string();
    let text = format!("pin = false\n{}", config.replace("$DIR", &path));
    dir.write("cerberus.toml", text.as_bytes())
}

/// The addresses in `cerberus: listening on ADDR [and ADDR (HTTPS)] with N workers (...);
/// metrics on ADDR` (or `; metrics off`).
fn parse_ready_line(line: &str) -> Option<(SocketAddr, Option<SocketAddr>, Option<SocketAddr>)> {
    let rest = line.strip_prefix("cerberus: listening on ")?;
    let mut words = rest.split(' ');
    let bound = words.next()?.parse().ok()?;
    let https = match (words.next(), words.next(), words.next()) {
        (Some("and"), Some(addr), Some("(HTTPS)")) => Some(addr.parse().ok()?),
        _ => None,
    };
    if line.ends_with("; metrics off") {
        return Some((bound, https, None));
    }
    let metrics = line.rsplit_once("; metrics on ")?.1.parse().ok()?;
    Some((bound, https, Some(metrics)))
}

/// A running `cerberus` process. Killed (SIGKILL) and reaped when dropped.
pub struct Server {
    /// The process and its stderr.
    process: Launched,
    /// The address from the ready line.
    bound: SocketAddr,
    /// The HTTPS address from the ready line, with `[tls]`.
    https: Option<SocketAddr>,
    /// The metrics address from the ready line; `None` when it said `metrics off`.
    metrics: Option<SocketAddr>,
    /// Holds the config file (and any body files) until the server is gone.
    dir: TempDir,
}

impl Server {
    /// The server's temporary directory, which holds its config file (`cerberus.toml`, which
    /// a test may rewrite before a SIGHUP) and any files given to the builder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server with this config (TOML; `pin = false` is added in front, and `$DIR` is replaced
    /// by the server's temporary directory).
    pub fn builder(config: &str) -> Builder {
        Builder {
            config: config.to_owned(),
            workers: Some(1),
            listen: Some("127.0.0.1:0".to_owned()),
            metrics_listen: Some("off".to_owned()),
            args: Vec::new(),
            env: Vec::new(),
            nofile: None,
            listen_fds: Vec::new(),
            dir: TempDir::new(),
        }
    }

    /// Start a one-worker server with this config.
    pub fn start(config: &str) -> Server {
        Server::builder(config).start()
    }

    /// The address the server said it listens on.
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// An address to connect to: the bound one, with a wildcard IP replaced by loopback.
    pub fn addr(&self) -> SocketAddr {
        let mut addr = self.bound();
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        addr
    }

    /// The HTTPS address the server said it listens on; panics without `[tls]`.
    pub fn https(&self) -> SocketAddr {
        self.https.expect("the server listens for HTTPS")
    }

    /// The metrics address the server said it listens on; `None` when metrics are off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The metrics address; panics if metrics are off.
    pub fn metrics(&self) -> SocketAddr {
        self.metrics.expect("metrics are on")
    }

    /// A new client connection to the server.
    pub fn connect(&self) -> super::Client {
        super::Client::connect(self.addr())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Send a signal to the server (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our own
        // child, which is not reaped until `wait_exit` or drop, so it cannot be a reused pid.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            io::Error::last_os_error()
        );
    }

    /// Rewrite the config file (as [`Server::builder`] writes it) and send SIGHUP.
    pub fn reload_with(&self, config: &str) {
        write_config(&self.dir, config);
        self.signal(libc::SIGHUP);
    }

    /// Wait up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Wait until stderr contains `needle` at least `count` times; panics (showing stderr) if
    /// it does not within the ready timeout.
    pub fn wait_stderr(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.stderr().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {count}x {needle:?} in stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size since the process started, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `kB` field of `/proc/PID/status`, named with its colon.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} line"));
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad {field} value"))
    }

    /// CPU time used so far (user + system), in clock ticks (`/proc/PID/stat`).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // The command name is in parentheses and may contain spaces; fields follow the last ')'.
        let after = &stat[stat.rfind(')').expect("comm field") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the comm.
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        self.open_fds_below(usize::MAX)
    }

    /// Open file descriptors of the server process numbered below `limit` (descriptors
    /// inherited from the test's environment can sit above an `RLIMIT_NOFILE`).
    pub fn open_fds_below(&self, limit: usize) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
                    .filter(|&fd| fd < limit)
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Run the binary to completion with these arguments (no server expected to stay up).
/// Returns the exit status, stdout and stderr. Killed, failing the test, after
/// [`launch::RUN_TIMEOUT`].
pub fn run_bin(args: &[&str]) -> (ExitStatus, String, String) {
    launch::run(Command::new(BIN).args(args), b"")
}
