//! The `cerberus` command: parse flags, load the config, run the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cerberus::config::{Config, MetricsListen};
use cerberus::Server;
use clap::Parser;

/// A small, strict, fast HTTP/1.1 server.
///
/// Every setting has a default; a TOML file (--config) can change any of them, and the flags
/// below override the file. Signals: SIGTERM/SIGINT drain and exit (a second one exits at once).
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
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cerberus: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        eprintln!("cerberus: configuration OK");
        return ExitCode::SUCCESS;
    }
    let server = match Server::new(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cerberus: {e}");
            return ExitCode::from(2);
        }
    };
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cerberus: {e}");
            ExitCode::from(1)
        }
    }
}

fn load(args: &Args) -> Result<Config, Box<dyn std::error::Error>> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    if let Some(metrics) = args.metrics_listen {
        config.metrics_listen = metrics;
    }
    config.validate()?;
    if args.check_config {
        // The file's body_file must be readable too.
        cerberus::handler::Router::from_config(&config)?;
    }
    Ok(config)
}
