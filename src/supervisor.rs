//! The supervisor: starts the workers, then waits for signals and for their reports.
//!
//! It runs on the main thread. Signals are registered before any worker thread starts, and
//! this is the only place that reacts to them: the handlers only forward the signal number.

use std::error::Error;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, MetricsListen};
use crate::handler::{Route, Router};
use crate::listener;
use crate::metrics;
use crate::stats::{ServerStats, WorkerStats};
use crate::worker::{self, Command, Report, Shared, WorkerHandle};

/// A configured server, ready to run.
pub struct Server {
    config: Config,
    router: Router,
}

/// What a running server shares with the metrics thread.
pub struct Observed {
    /// Each worker's counters.
    pub workers: Vec<Arc<WorkerStats>>,
    /// Process-wide state.
    pub server: Arc<ServerStats>,
}

impl Server {
    /// A server for this config, with the routes it describes.
    pub fn new(config: Config) -> std::io::Result<Server> {
        let router = Router::from_config(&config)?;
        Ok(Server { config, router })
    }

    /// Add a route of your own, tried after the configured ones.
    pub fn route(mut self, route: Route) -> Server {
        self.router.push(route);
        self
    }

    /// Serve until SIGTERM or SIGINT, then drain and return.
    pub fn run(self) -> Result<(), Box<dyn Error>> {
        let signals = forward_signals()?;
        let count = worker_count(&self.config);
        let listeners = listener::bind_all(self.config.listen, count, self.config.backlog)?;
        let addr = listeners[0].local_addr()?;
        let cores = if self.config.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let shared = Arc::new(Shared {
            config: self.config,
            router: self.router,
        });
        let observed = Arc::new(Observed {
            workers: (0..count)
                .map(|_| Arc::new(WorkerStats::default()))
                .collect(),
            server: Arc::new(ServerStats::default()),
        });
        // Before the workers, so a taken metrics address stops start-up before any request
        // is served, and so the counters are scrapeable from the first connection.
        let metrics = match shared.config.metrics_listen {
            MetricsListen::On(addr) => {
                format!("metrics on {}", metrics::spawn(addr, observed.clone())?)
            }
            MetricsListen::Off => "metrics off".to_owned(),
        };
        let (report_tx, reports) = crossbeam_channel::unbounded();
        let mut workers = Vec::with_capacity(count);
        for (id, listener) in listeners.into_iter().enumerate() {
            let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
            let stats = observed.workers[id].clone();
            workers.push(worker::spawn(
                id,
                listener,
                core,
                shared.clone(),
                stats,
                report_tx.clone(),
            )?);
        }
        drop(report_tx);
        wait_ready(&reports, &workers)?;
        observed.server.workers.store(count as i64, Relaxed);
        observed.server.ready.store(1, Relaxed);
        observed.server.last_reload_ok.store(1, Relaxed);
        let pinning = if cores.is_empty() {
            "unpinned".to_owned()
        } else {
            format!("pinned to {} CPUs", cores.len().min(count))
        };
        eprintln!("cerberus: listening on {addr} with {count} workers ({pinning}); {metrics}");
        supervise(&signals, &reports, &workers, &shared.config, &observed)
    }
}

/// Workers to start: the config's number, or one per CPU this process may use (std's count
/// respects the affinity mask and cgroup CPU quotas).
fn worker_count(config: &Config) -> usize {
    if config.workers > 0 {
        return config.workers;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Deliver SIGTERM, SIGINT and SIGHUP as channel messages.
fn forward_signals() -> std::io::Result<Receiver<i32>> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("cerberus-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

fn wait_ready(reports: &Receiver<Report>, workers: &[WorkerHandle]) -> Result<(), Box<dyn Error>> {
    let mut ready = 0;
    while ready < workers.len() {
        match reports.recv() {
            Ok(Report::Ready(_)) => ready += 1,
            Ok(Report::Fatal(id, e)) => {
                workers.iter().for_each(|w| w.send(Command::Shutdown));
                return Err(format!("worker {id} failed to start: {e}").into());
            }
            Ok(Report::Exited(id)) => {
                return Err(format!("worker {id} exited during start-up").into())
            }
            Err(_) => return Err("workers exited during start-up".into()),
        }
    }
    Ok(())
}

fn supervise(
    signals: &Receiver<i32>,
    reports: &Receiver<Report>,
    workers: &[WorkerHandle],
    config: &Config,
    observed: &Observed,
) -> Result<(), Box<dyn Error>> {
    let mut drain_until: Option<Instant> = None;
    let mut running = workers.len();
    let mut failure: Option<String> = None;
    loop {
        let timeout = drain_until.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        select! {
            recv(signals) -> signal => match signal {
                Ok(SIGHUP) => eprintln!("cerberus: SIGHUP: configuration reload is not supported yet; still serving"),
                Ok(_) if drain_until.is_some() => {
                    eprintln!("cerberus: second signal: exiting now");
                    std::process::exit(1);
                }
                Ok(_) => {
                    eprintln!("cerberus: shutting down: draining for up to {:?}", config.drain_timeout);
                    observed.server.ready.store(0, Relaxed);
                    drain_until = Some(Instant::now() + config.drain_timeout);
                    workers.iter().for_each(|w| w.send(Command::Shutdown));
                }
                Err(_) => return Err("signal thread stopped".into()),
            },
            recv(reports) -> report => match report {
                Ok(Report::Exited(_)) => running -= 1,
                Ok(Report::Fatal(id, e)) => {
                    eprintln!("cerberus: worker {id} failed: {e}; shutting down");
                    failure = Some(format!("worker {id} failed: {e}"));
                    running -= 1;
                    observed.server.ready.store(0, Relaxed);
                    drain_until.get_or_insert(Instant::now() + config.drain_timeout);
                    workers.iter().for_each(|w| w.send(Command::Shutdown));
                }
                Ok(Report::Ready(_)) => {}
                Err(_) => running = 0,
            },
            default(timeout) => {
                let open: i64 = observed.workers.iter().map(|w| w.open.get()).sum();
                eprintln!("cerberus: drain timeout: closing {open} connections still open");
                return failure.map_or(Ok(()), |f| Err(f.into()));
            }
        }
        if running == 0 {
            eprintln!("cerberus: stopped");
            return failure.map_or(Ok(()), |f| Err(f.into()));
        }
    }
}
