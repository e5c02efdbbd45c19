//! The `cerberus` command: take inherited listeners, parse flags, load the config, run; or
//! `cerberus reload`, which reloads a running server and waits until it has.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cerberus::config::{Config, ConfigSource, MetricsListen, Overrides};
use cerberus::Server;
use clap::{Parser, Subcommand};

/// A small, strict, fast HTTP/1.1 server.
///
/// Every setting has a default; a TOML file (--config) can change any of them, and the flags
/// below override the file (at start and at every reload). Signals: SIGHUP reloads the file;
/// SIGTERM/SIGINT drain and exit (a second one exits at once).
/// Exit codes: 0 after a clean shutdown, 1 on a runtime error (e.g. the address is taken),
/// 2 on a usage or configuration error.
#[derive(Parser, Debug)]
#[command(name = "cerberus", version, about, long_about)]
struct Args {
    /// TOML configuration file; every key is optional (see README.md).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on; [::]:PORT is dual-stack. [default: 0.0.0.0:8000]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Worker threads, one event loop each. [default: one per CPU this process may use]
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Address of /metrics, /healthz and /readyz, or "off". [default: 127.0.0.1:8010]
    #[arg(long, value_name = "ADDR|off")]
    metrics_listen: Option<MetricsListen>,
    /// Validate the configuration (and read any body_file) and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Reload a running server (SIGHUP) and wait until every worker serves the new
    /// configuration, reading the outcome from its metrics. For systemd's ExecReload=.
    ///
    /// Exit codes: 0 once the new configuration is in force, 1 when the server refused it (it
    /// keeps serving the previous one; its log says why) or the outcome could not be learned
    /// in time, 2 on a usage error.
    Reload {
        /// The server's process id (in a systemd unit: $MAINPID).
        #[arg(long, value_name = "PID")]
        pid: u32,
        /// Where the server's metrics are. [default: metrics_listen of --config, or
        /// 127.0.0.1:8010]
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// How long to wait for the outcome.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    // SAFETY: the first thing `main` does, before any thread starts (clap and the config
    // loading below start none); nothing else in this process owns descriptors 3 and up.
    let inherited = match unsafe { cerberus::take_inherited_listeners() } {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("cerberus: socket activation: {e}");
            return ExitCode::from(1);
        }
    };
    let args = Args::parse();
    if let Some(Command::Reload {
        pid,
        metrics,
        timeout,
    }) = args.command
    {
        return reload(pid, metrics, args.config, timeout);
    }
    let source = ConfigSource {
        path: args.config.clone(),
        overrides: Overrides {
            listen: args.listen,
            workers: args.workers,
            metrics_listen: args.metrics_listen,
        },
    };
    let server = match Server::from_source(source) {
        Ok(server) => server
            .with_listeners(inherited.plain)
            .with_tls_listeners(inherited.https),
        Err(e) => {
            eprintln!("cerberus: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        eprintln!("cerberus: configuration OK");
        return ExitCode::SUCCESS;
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cerberus: {e}");
            ExitCode::from(1)
        }
    }
}

/// `cerberus reload`: the metrics address comes from `--metrics`, else from the config file
/// the server reads (only its `metrics_listen`: the rest may be the broken config being
/// tried), else the default.
fn reload(
    pid: u32,
    metrics: Option<SocketAddr>,
    config: Option<PathBuf>,
    timeout: Duration,
) -> ExitCode {
    let addr = match metrics {
        Some(addr) => Some(addr),
        None => metrics_listen_of(config.as_deref()),
    };
    let Some(addr) = addr else {
        eprintln!(
            "cerberus: reload: the server's metrics_listen is off, so its outcome cannot be \
             read; send SIGHUP yourself (kill -HUP {pid}) and read its log"
        );
        return ExitCode::from(2);
    };
    match cerberus::control::reload(pid, addr, timeout) {
        Ok(()) => {
            eprintln!("cerberus: reloaded: every worker serves the new configuration");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cerberus: reload: {e}");
            ExitCode::from(1)
        }
    }
}

/// The metrics address a server with this config file listens on (`None`: off). A file that
/// does not parse as a whole still names its `metrics_listen`.
fn metrics_listen_of(path: Option<&std::path::Path>) -> Option<SocketAddr> {
    let text = path.and_then(|p| std::fs::read_to_string(p).ok());
    let listen = text
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("metrics_listen")?
                .as_str()?
                .parse::<MetricsListen>()
                .ok()
        })
        .unwrap_or(Config::default().metrics_listen);
    cerberus::control::metrics_addr(&Config {
        metrics_listen: listen,
        ..Config::default()
    })
}
