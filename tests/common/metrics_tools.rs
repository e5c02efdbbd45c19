//! Outside tools for `tests/metrics.rs`: promtool, a real Prometheus, and `/proc`.
//!
//! - [`run_tool`] runs promtool (bounded in time); find it with [`crate::common::tool`], which
//!   fails (not skips) when `CI=true`.
//! - [`Prometheus`] runs a real Prometheus server scraping Cerberus, and queries it.
//! - [`listening_ports`] says which TCP ports a process listens on.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use super::launch::{self, Launched};
use super::{find, TempDir, READ_TIMEOUT};

/// Run a tool with `stdin` as its input; returns (success, stdout + stderr).
pub fn run_tool(tool: &Path, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let (status, mut text, err) = launch::run(Command::new(tool).args(args), stdin);
    text.push_str(&err);
    (status.success(), text)
}

/// The TCP ports `pid` listens on: its socket inodes matched against `/proc/net/tcp{,6}`.
pub fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?.to_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let f: Vec<&str> = line.split_whitespace().collect();
            const LISTEN: &str = "0A";
            if f.len() > 9 && f[3] == LISTEN && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().expect("address:port");
                ports.insert(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().unwrap().port()
}

/// A real Prometheus server scraping one target every second. Killed when dropped.
pub struct Prometheus {
    /// The process and its log (stderr).
    process: Launched,
    /// Its web/API address.
    pub addr: SocketAddr,
    /// Config and TSDB.
    dir: TempDir,
}

impl Prometheus {
    /// Start `binary` scraping `target`'s `/metrics` every second.
    pub fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = TempDir::new();
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: cerberus\n    static_configs:\n\
             \x20     - targets: ['{target}']\n"
        );
        let config = dir.write("prometheus.yml", yaml.as_bytes());
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let process = Launched::spawn(
            Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}")),
        );
        Prometheus { process, addr, dir }
    }

    /// The single value of an instant query, if Prometheus is up and the result is one sample.
    pub fn query(&self, expr: &str) -> Option<f64> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let text =
            format!("GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: prometheus\r\n\r\n");
        // Not `Client`: Prometheus may not listen yet, which is `None` here, not a panic.
        let mut s = TcpStream::connect_timeout(&self.addr, READ_TIMEOUT).ok()?;
        s.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
        s.write_all(text.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        // `HTTP/1.0 200 OK`: it answers in the version it was asked in.
        if raw.split(|&b| b == b' ').nth(1) != Some(b"200") {
            return None;
        }
        let end = find(&raw, b"\r\n\r\n")? + 4;
        let json: serde_json::Value = serde_json::from_slice(&raw[end..]).ok()?;
        let result = json["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Prometheus's own log, for failure messages.
    pub fn log(&self) -> String {
        self.process.stderr()
    }
}
