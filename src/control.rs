//! Reloading a running server and waiting until the reload has happened: `cerberus reload`.
//!
//! systemd 252 has no `Type=notify-reload`, and its `systemctl reload` returns as soon as
//! `ExecReload=` exits. So the unit's `ExecReload=` runs `cerberus reload --pid $MAINPID`,
//! which sends SIGHUP and waits until the server counts that reload in its metrics: as a
//! success once every worker serves new requests by the new config, or as a failure when the
//! config was refused (the old one keeps serving). `systemctl reload` then returns only once
//! the reload took effect, and fails when it was refused.
//!
//! The metrics listener is how it learns the outcome because it is already there, read-only
//! and on loopback by default: no control socket or status file to secure, and nothing the
//! hardened unit has to allow beyond what the service already does.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::config::{Config, MetricsListen};

/// How often the metrics are read while waiting.
const POLL: Duration = Duration::from_millis(10);
/// How long one read of the metrics may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a reload did not take effect.
#[derive(Debug)]
pub enum ReloadError {
    /// The server refused the new config and keeps serving the old one (see its log).
    Refused,
    /// The process could not be signalled, or is not a Cerberus.
    Signal(io::Error),
    /// The server's metrics could not be read, so the outcome cannot be known.
    Metrics(SocketAddr, io::Error),
    /// No outcome within the timeout.
    TimedOut(Duration),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Refused => write!(
                f,
                "the server refused the new configuration and keeps serving the previous one; \
                 its log says why"
            ),
            ReloadError::Signal(e) => write!(f, "cannot signal the server: {e}"),
            ReloadError::Metrics(addr, e) => write!(
                f,
                "cannot read the server's metrics at {addr} to learn the outcome: {e} \
                 (pass --metrics ADDR, or --config with the server's metrics_listen)"
            ),
            ReloadError::TimedOut(t) => {
                write!(f, "no outcome within {t:?}; the reload may still complete")
            }
        }
    }
}

impl std::error::Error for ReloadError {}

/// Where to read the metrics of a server run with `config`: its `metrics_listen`, with an
/// unspecified address (listening on every interface) reached on loopback. `None` when the
/// server has no metrics listener.
pub fn metrics_addr(config: &Config) -> Option<SocketAddr> {
    match config.metrics_listen {
        MetricsListen::Off => None,
        MetricsListen::On(addr) => Some(reachable(addr)),
    }
}

/// `addr`, with `0.0.0.0`/`[::]` replaced by the loopback address of the same family.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

/// Send SIGHUP to the Cerberus at `pid` and wait up to `timeout` until it reports the reload
/// done (every worker serves by the new config) or refused, by its metrics at `metrics`.
pub fn reload(pid: u32, metrics: SocketAddr, timeout: Duration) -> Result<(), ReloadError> {
    is_cerberus(pid).map_err(ReloadError::Signal)?;
    let before = reloads(metrics).map_err(|e| ReloadError::Metrics(metrics, e))?;
    crate::os::sys::kill(pid, libc::SIGHUP).map_err(ReloadError::Signal)?;
    let deadline = Instant::now() + timeout;
    loop {
        std::thread::sleep(POLL);
        match reloads(metrics) {
            Ok(now) if now.failure > before.failure => return Err(ReloadError::Refused),
            Ok(now) if now.success > before.success => return Ok(()),
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => return Err(ReloadError::Metrics(metrics, e)),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(ReloadError::TimedOut(timeout));
        }
    }
}

/// Refuse to signal a process that is not a Cerberus, where that can be seen: a stale or
/// mistyped pid must not send SIGHUP (which ends most programs) to something else.
fn is_cerberus(pid: u32) -> io::Result<()> {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if comm.trim_end().starts_with("cerberus") => Ok(()),
        Ok(comm) => Err(io::Error::other(format!(
            "process {pid} is {:?}, not cerberus",
            comm.trim_end()
        ))),
        // Not shown: gone, or /proc hides it (systemd's ProtectProc= mounts it with hidepid,
        // and hides even the unit's own main process from ExecReload=). kill then says
        // whether the process exists and is ours to signal.
        Err(_) => Ok(()),
    }
}

/// The server's reload counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reloads {
    success: u64,
    failure: u64,
}

/// Read `cerberus_reloads_total` from the metrics at `addr`.
fn reloads(addr: SocketAddr) -> io::Result<Reloads> {
    let mut stream = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT)?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: cerberus\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    parse_reloads(&text).ok_or_else(|| io::Error::other("no cerberus_reloads_total in /metrics"))
}

/// The two `cerberus_reloads_total` samples of an exposition.
fn parse_reloads(text: &str) -> Option<Reloads> {
    let sample = |result: &str| {
        let name = format!("cerberus_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some(Reloads {
        success: sample("success")?,
        failure: sample("failure")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_counters_are_read_from_the_exposition() {
        let text = "# HELP x\ncerberus_reloads_total{result=\"success\"} 3\n\
                    cerberus_reloads_total{result=\"failure\"} 1\ncerberus_workers 2\n";
        assert_eq!(
            parse_reloads(text),
            Some(Reloads {
                success: 3,
                failure: 1
            })
        );
        assert_eq!(parse_reloads("cerberus_workers 2\n"), None);
    }

    #[test]
    fn an_address_on_every_interface_is_reached_on_loopback() {
        let on = |a: &str| reachable(a.parse().unwrap()).to_string();
        assert_eq!(on("0.0.0.0:8010"), "127.0.0.1:8010");
        assert_eq!(on("[::]:8010"), "[::1]:8010");
        assert_eq!(on("10.1.2.3:9000"), "10.1.2.3:9000");
    }

    #[test]
    fn only_a_cerberus_is_signalled() {
        let me = std::process::id();
        // The test binary's name starts with "cerberus" too; pid 1 is init, refused anyway.
        assert!(is_cerberus(1).is_err(), "init is not a cerberus");
        assert!(
            crate::os::sys::kill(u32::MAX - 1, 0).is_err(),
            "no such process"
        );
        assert!(crate::os::sys::kill(1, 0).is_err());
        assert!(crate::os::sys::kill(0, 0).is_err());
        assert!(crate::os::sys::kill(me, 0).is_ok());
    }
}
