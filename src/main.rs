//! The `cerberus` command: parse flags, load the config, run the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cerberus::config::{ConfigSource, MetricsListen, Overrides};
use cerberus::Server;
use clap::Parser;

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
    #[arg(long, short = 'c', value_name = "PATH")]
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let source = ConfigSource {
        path: args.config.clone(),
        overrides: Overrides {
            listen: args.listen,
            workers: args.workers,
            metrics_listen: args.metrics_listen,
        },
    };
    let server = match Server::from_source(source) {
        Ok(server) => server,
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
