//! The supervisor: starts the workers, then waits for signals and for their reports.
//!
//! It runs on the main thread. Signals are registered before any worker thread starts, and
//! this is the only place that reacts to them: the handlers only forward the signal number.
//! `SIGHUP => reload`, `SIGTERM | SIGINT => drain` (a second one exits at once).

use std::error::Error;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::config::{Config, ConfigSource, MetricsListen};
mod generation;
mod listeners;

use crate::handler::{Route, Router};
use crate::metrics;
use crate::os::systemd::{self, Notifier};
use crate::shape::counters::Board;
use crate::stats::Observed;
use crate::tls;
use crate::worker::{Command, Report, Shared};
use generation::{Generation, Start};
use listeners::Listeners;

/// How long a new generation of workers may take to start listening, and the workers may take
/// to apply an in-place reload (a worker applies it between two events: milliseconds).
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline [`deadline_after`] gives a wait too long for the clock to represent: a year
/// is as good as never for a drain, and far from overflowing itself.
const FAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A configured server, ready to run.
pub struct Server {
    config: Config,
    /// Where SIGHUP re-reads the config from; without it, a reload rebuilds from `config`
    /// (re-reading `body_file`s).
    source: Option<ConfigSource>,
    /// Routes added by the library user, kept across reloads.
    extra: Vec<Route>,
    /// Listening sockets to serve instead of binding `listen` (socket activation).
    inherited: Vec<std::net::TcpListener>,
    /// HTTPS listening sockets to serve instead of binding `[tls] listen`.
    inherited_tls: Vec<std::net::TcpListener>,
}

impl Server {
    /// A server for this config, with the routes it describes. The config is checked as a
    /// config file is ([`Config::validate`]): a value the server cannot run with (a timeout
    /// out of range, a route with no path) is an `InvalidInput` error here, not a panic later.
    pub fn new(config: Config) -> std::io::Result<Server> {
        config.validate().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("config: {e}"))
        })?;
        check_tls(&config).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Router::from_config(&config)?;
        Ok(Server {
            config,
            source: None,
            extra: Vec::new(),
            inherited: Vec::new(),
            inherited_tls: Vec::new(),
        })
    }

    /// A server that re-reads `source` on SIGHUP.
    pub fn from_source(source: ConfigSource) -> Result<Server, Box<dyn Error>> {
        let config = source.load()?;
        check_tls(&config)?;
        Router::from_config(&config)?;
        Ok(Server {
            config,
            source: Some(source),
            extra: Vec::new(),
            inherited: Vec::new(),
            inherited_tls: Vec::new(),
        })
    }

    /// Serve these listening sockets (for example those systemd passed, from
    /// [`take_inherited_listeners`](crate::take_inherited_listeners)) instead of binding
    /// `listen`; they are kept across reloads, and a reload cannot move them.
    pub fn with_listeners(mut self, listeners: Vec<std::net::TcpListener>) -> Server {
        self.inherited = listeners;
        self
    }

    /// Serve these listening sockets for HTTPS instead of binding `[tls] listen` (those
    /// systemd passed named `https`); the config must have a `[tls]` table.
    pub fn with_tls_listeners(mut self, listeners: Vec<std::net::TcpListener>) -> Server {
        self.inherited_tls = listeners;
        self
    }

    /// Add a route of your own, tried after the configured ones.
    pub fn route(mut self, route: Route) -> Server {
        self.extra.push(route);
        self
    }

    /// Serve until SIGTERM or SIGINT, then drain and return.
    pub fn run(self) -> Result<(), Box<dyn Error>> {
        let signals = forward_signals()?;
        let count = worker_count(&self.config);
        let listeners = listeners_for(&self.config, count, self.inherited)?;
        listeners.set_defer_accept(self.config.defer_accept);
        let mut tls_keys = None;
        let tls = load_tls(&self.config, &mut tls_keys)?;
        let tls_listeners = match &self.config.tls {
            Some(_) if !self.inherited_tls.is_empty() => {
                Some(Listeners::inherited(self.inherited_tls)?)
            }
            Some(t) => Some(Listeners::claim(t.listen, count, self.config.backlog)?),
            None if !self.inherited_tls.is_empty() => {
                return Err(
                    "socket activation passed an HTTPS socket (FileDescriptorName=https), \
                     but the config has no [tls] table to serve it with"
                        .into(),
                );
            }
            None => None,
        };
        if let Some(l) = &tls_listeners {
            l.set_defer_accept(self.config.defer_accept);
        }
        let observed = Arc::new(Observed::new());
        // Before the workers, so a taken metrics address stops start-up before any request
        // is served, and so the counters are scrapeable from the first connection.
        let metrics = match self.config.metrics_listen {
            MetricsListen::On(addr) => {
                format!("metrics on {}", metrics::spawn(addr, observed.clone())?)
            }
            MetricsListen::Off => "metrics off".to_owned(),
        };
        let router = build_router(&self.config, &self.extra, &observed.shapes, count)?;
        let (reports_tx, reports) = crossbeam_channel::unbounded();
        let https = tls_listeners
            .as_ref()
            .map(|l| format!(" and {} (HTTPS)", l.addr))
            .unwrap_or_default();
        let mut sup = Supervisor {
            source: self.source,
            extra: self.extra,
            shared: Arc::new(Shared {
                config: self.config,
                router,
                tls: tls.as_ref().map(|t| t.config.clone()),
            }),
            listeners,
            tls_listeners,
            tls_keys,
            generations: Vec::new(),
            next_number: 0,
            epoch: 0,
            reports_tx,
            reports,
            observed,
            notifier: Notifier::from_env(),
            drain_until: None,
            failure: None,
        };
        let generation = sup.start_generation(count)?;
        let pinned = generation.pinned;
        sup.generations.push(generation);
        sup.observed.server.ready.store(1, Relaxed);
        sup.observed.server.last_reload_ok.store(1, Relaxed);
        sup.serving(tls.as_ref());
        let status = format!(
            "listening on {}{https} with {}",
            sup.listeners.addr,
            describe(count, pinned)
        );
        eprintln!("cerberus: {status}; {metrics}");
        sup.notify(&format!("READY=1\nSTATUS={status}"));
        sup.supervise(&signals)
    }
}

/// The state the supervisor keeps while serving.
struct Supervisor {
    source: Option<ConfigSource>,
    extra: Vec<Route>,
    /// The config and routes of the newest generation.
    shared: Arc<Shared>,
    listeners: Listeners,
    /// The HTTPS listeners, with `[tls]`.
    tls_listeners: Option<Listeners>,
    /// Session ticket keys and the session cache, shared by every TLS config of the process
    /// (made with the first).
    tls_keys: Option<tls::Keys>,
    /// The newest generation last; older ones are draining.
    generations: Vec<Generation>,
    next_number: u64,
    /// The last in-place reload sent to the workers, to match their acknowledgements.
    epoch: u64,
    reports_tx: Sender<(u64, Report)>,
    reports: Receiver<(u64, Report)>,
    observed: Arc<Observed>,
    notifier: Option<Notifier>,
    /// Set once SIGTERM/SIGINT started the final drain.
    drain_until: Option<Instant>,
    /// Why the process will exit non-zero, if it will.
    failure: Option<String>,
}

impl Supervisor {
    /// Export the certificates now served (none without `[tls]`).
    fn serving(&self, tls: Option<&tls::Loaded>) {
        let served = tls.map(|t| t.served.clone()).unwrap_or_default();
        if let Ok(mut certificates) = self.observed.certificates.write() {
            *certificates = served;
        }
    }

    fn notify(&self, message: &str) {
        if let Some(n) = &self.notifier {
            n.send(message);
        }
    }

    fn start_generation(&mut self, workers: usize) -> Result<Generation, Box<dyn Error>> {
        let config = &self.shared.config;
        let cores = if config.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let number = self.next_number;
        self.next_number += 1;
        let mut generation = Generation::start(Start {
            number,
            shared: self.shared.clone(),
            listeners: &self.listeners,
            tls_listeners: self.tls_listeners.as_ref(),
            workers,
            cores: &cores,
            reports: &self.reports_tx,
        })?;
        let mut early = Vec::new();
        let ready = generation.wait_ready(&self.reports, START_TIMEOUT, |n, r| early.push((n, r)));
        if let Err(e) = ready {
            generation.drain();
            return Err(e.into());
        }
        self.observed.add(&generation.stats);
        self.observed.server.workers.store(workers as i64, Relaxed);
        for (n, r) in early {
            self.on_report(n, r);
        }
        Ok(generation)
    }

    fn supervise(&mut self, signals: &Receiver<i32>) -> Result<(), Box<dyn Error>> {
        let watchdog = systemd::watchdog_interval();
        let mut next_ping = Instant::now();
        // Each worker's heartbeat at the last check, by the address of its counters.
        let mut beats: Vec<(usize, u64)> = Vec::new();
        loop {
            if watchdog.is_some() && Instant::now() >= next_ping {
                if self.workers_alive(&mut beats) {
                    self.notify("WATCHDOG=1");
                }
                next_ping = Instant::now() + watchdog.unwrap_or_default();
            }
            let mut wake = next_ping.max(Instant::now() + Duration::from_millis(1));
            if watchdog.is_none() {
                wake = Instant::now() + Duration::from_secs(3600);
            }
            if let Some(t) = self.drain_until {
                wake = wake.min(t);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            select! {
                recv(signals) -> signal => match signal {
                    Ok(SIGUSR1) => crate::access_log::reopen(),
                    Ok(SIGHUP) if self.drain_until.is_none() => self.reload(),
                    Ok(SIGHUP) => {}
                    Ok(_) if self.drain_until.is_some() => {
                        eprintln!("cerberus: second signal: exiting now");
                        std::process::exit(1);
                    }
                    Ok(_) => self.shutdown(),
                    Err(_) => return Err("signal thread stopped".into()),
                },
                recv(self.reports) -> report => match report {
                    Ok((n, r)) => self.on_report(n, r),
                    Err(_) => self.generations.clear(),
                },
                default(timeout) => {}
            }
            if self.drain_until.is_some() && self.generations.is_empty() {
                eprintln!("cerberus: stopped");
                return self.failure.take().map_or(Ok(()), |f| Err(f.into()));
            }
            if self.drain_until.is_some_and(|t| Instant::now() >= t) {
                let open: i64 = self.observed.live().iter().map(|w| w.open.get()).sum();
                eprintln!("cerberus: drain timeout: closing {open} connections still open");
                return self.failure.take().map_or(Ok(()), |f| Err(f.into()));
            }
        }
    }

    /// Did every worker answer the ping sent at the last check? Then ping them all again.
    /// A worker stuck in a handler stops answering, the watchdog stops, and systemd restarts
    /// the service.
    fn workers_alive(&self, beats: &mut Vec<(usize, u64)>) -> bool {
        let mut now = Vec::new();
        for generation in &self.generations {
            for stats in &generation.stats {
                now.push((Arc::as_ptr(stats) as usize, stats.heartbeat.get()));
            }
            generation.send(|| Command::Ping);
        }
        let alive = all_answered(beats, &now);
        *beats = now;
        alive
    }

    /// SIGTERM/SIGINT: every generation stops accepting and drains.
    fn shutdown(&mut self) {
        let timeout = self.shared.config.drain_timeout;
        eprintln!("cerberus: shutting down: draining for up to {timeout:?}");
        self.notify("STOPPING=1\nSTATUS=draining");
        self.observed.server.ready.store(0, Relaxed);
        self.drain_until = Some(deadline_after(timeout));
        self.generations.iter().for_each(Generation::drain);
    }

    fn on_report(&mut self, number: u64, report: Report) {
        let Some(index) = self.generations.iter().position(|g| g.number == number) else {
            return;
        };
        match report {
            // Acknowledgements that came after their reload was given up on.
            Report::Ready { .. } | Report::Reloaded { .. } => return,
            Report::Exited(_) => {}
            Report::Fatal(id, e) => {
                eprintln!("cerberus: worker {id} failed: {e}; shutting down");
                self.failure = Some(format!("worker {id} failed: {e}"));
                if self.drain_until.is_none() {
                    self.shutdown();
                }
            }
        }
        let generation = &mut self.generations[index];
        generation.running -= 1;
        if generation.running == 0 {
            let generation = self.generations.remove(index);
            for worker in generation.workers {
                let _ = worker.thread.join();
            }
            self.observed.retire(&generation.stats);
        }
    }

    /// SIGHUP: re-read the config. A bad one is logged and counted; the old one keeps serving.
    fn reload(&mut self) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            systemd::monotonic_usec()
        ));
        let stats = self.observed.server.clone();
        match self.try_reload() {
            Ok(what) => {
                stats.reloads_ok.fetch_add(1, Relaxed);
                stats.last_reload_ok.store(1, Relaxed);
                eprintln!("cerberus: reloaded: {what}");
                self.notify(&format!("READY=1\nSTATUS=reloaded: {what}"));
            }
            Err(e) => {
                stats.reloads_failed.fetch_add(1, Relaxed);
                stats.last_reload_ok.store(0, Relaxed);
                eprintln!("cerberus: reload failed: {e}; still serving the previous configuration");
                self.notify(&format!("READY=1\nSTATUS=reload failed: {e}"));
            }
        }
    }

    fn try_reload(&mut self) -> Result<String, Box<dyn Error>> {
        let config = match &self.source {
            Some(source) => source.load()?,
            None => self.shared.config.clone(),
        };
        let router = build_router(
            &config,
            &self.extra,
            &self.observed.shapes,
            worker_count(&config),
        )?;
        // Certificates are read again at every reload, whatever the config text says.
        let tls = load_tls(&config, &mut self.tls_keys)?;
        let old = &self.shared.config;
        let count = worker_count(&config);
        let tls_listen = |c: &Config| c.tls.as_ref().map(|t| t.listen);
        let structural = config.listen != old.listen
            || tls_listen(&config) != tls_listen(old)
            || count != self.current().workers.len()
            || config.backlog != old.backlog
            || config.pin != old.pin;
        let shared = Arc::new(Shared {
            config,
            router,
            tls: tls.as_ref().map(|t| t.config.clone()),
        });
        if !structural {
            if shared.config.defer_accept != old.defer_accept {
                self.listeners.set_defer_accept(shared.config.defer_accept);
                if let Some(l) = &self.tls_listeners {
                    l.set_defer_accept(shared.config.defer_accept);
                }
            }
            self.shared = shared.clone();
            self.apply_now(shared)?;
            self.serving(tls.as_ref());
            let certificates = if tls.is_some() { ", certificates" } else { "" };
            return Ok(format!(
                "routes, responses, limits and timeouts{certificates}"
            ));
        }
        let new_config = &shared.config;
        if new_config.listen != old.listen && !self.listeners.is_inherited() {
            self.listeners = Listeners::bind(new_config.listen, count, new_config.backlog)?;
        } else {
            self.listeners.ensure(count, new_config.backlog)?;
            if new_config.backlog != old.backlog {
                self.listeners.set_backlog(new_config.backlog)?;
            }
        }
        let old_tls = old.tls.as_ref().map(|t| t.listen);
        match &new_config.tls {
            None => self.tls_listeners = None,
            Some(_)
                if self
                    .tls_listeners
                    .as_ref()
                    .is_some_and(Listeners::is_inherited) => {}
            Some(t) if Some(t.listen) != old_tls || self.tls_listeners.is_none() => {
                self.tls_listeners = Some(Listeners::bind(t.listen, count, new_config.backlog)?);
            }
            Some(_) => {
                if let Some(l) = &mut self.tls_listeners {
                    l.ensure(count, new_config.backlog)?;
                    if new_config.backlog != old.backlog {
                        l.set_backlog(new_config.backlog)?;
                    }
                }
            }
        }
        // Every socket, including any just bound.
        self.listeners.set_defer_accept(new_config.defer_accept);
        if let Some(l) = &self.tls_listeners {
            l.set_defer_accept(new_config.defer_accept);
        }
        let previous = std::mem::replace(&mut self.shared, shared);
        match self.start_generation(count) {
            Ok(generation) => {
                // The new workers listen on the same sockets; now the old ones may stop. Until
                // they read that, they may still accept a connection or answer one more
                // request: they serve it by the new config, applied before they are told.
                if let Err(e) = self.apply_now(self.shared.clone()) {
                    // They are about to drain anyway; the new generation serves by it.
                    eprintln!("cerberus: reload: the old workers, before they drain: {e}");
                }
                self.current().drain();
                self.serving(tls.as_ref());
                let pinned = generation.pinned;
                self.generations.push(generation);
                let https = self
                    .tls_listeners
                    .as_ref()
                    .map(|l| format!(" and {} (HTTPS)", l.addr))
                    .unwrap_or_default();
                Ok(format!(
                    "new generation: listening on {}{https} with {}",
                    self.listeners.addr,
                    describe(count, pinned)
                ))
            }
            Err(e) => {
                self.shared = previous;
                Err(e)
            }
        }
    }

    /// Send `shared` to the workers of the current generation and wait until each serves new
    /// requests by it: whoever asked for the reload (systemd, `cerberus reload`) may rely on
    /// the next request seeing it.
    fn apply_now(&mut self, shared: Arc<Shared>) -> Result<(), String> {
        self.epoch += 1;
        let epoch = self.epoch;
        self.current().send(|| Command::Reload {
            shared: shared.clone(),
            epoch,
        });
        let mut early = Vec::new();
        let applied = self
            .current()
            .wait_reloaded(&self.reports, epoch, START_TIMEOUT, |n, r| {
                early.push((n, r))
            });
        for (n, r) in early {
            self.on_report(n, r);
        }
        applied.map_err(|e| format!("the workers did not confirm the new config: {e}"))
    }

    fn current(&self) -> &Generation {
        self.generations
            .last()
            .expect("a generation runs while the supervisor serves")
    }
}

/// `timeout` from now, or [`FAR`] from now when that is past what an `Instant` can hold
/// (`Instant + Duration` panics there).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or(now + FAR)
}

/// The sockets to serve: the ones given (socket activation), or new ones bound to `listen`.
/// Never anything from the environment: only `main` may take inherited descriptors.
fn listeners_for(
    config: &Config,
    count: usize,
    given: Vec<std::net::TcpListener>,
) -> Result<Listeners, Box<dyn Error>> {
    if given.is_empty() {
        Ok(Listeners::claim(config.listen, count, config.backlog)?)
    } else {
        Ok(Listeners::inherited(given)?)
    }
}

/// Read and check `[tls]`'s certificates, if there is one: for `--check-config` and for a
/// server made before it runs.
fn check_tls(config: &Config) -> Result<(), String> {
    match &config.tls {
        Some(t) => tls::load(t, None).map(drop),
        None => Ok(()),
    }
}

/// `[tls]`'s server config, with the process's session keys, made the first time they are
/// needed: seeding their random number generator costs a plain server's start-up nothing.
fn load_tls(config: &Config, keys: &mut Option<tls::Keys>) -> Result<Option<tls::Loaded>, String> {
    let Some(t) = &config.tls else {
        return Ok(None);
    };
    // New keys when there are none yet or their rotation changes; kept only if the config
    // loads, so a refused reload leaves the tickets issued resumable.
    let fresh = match keys {
        Some(k) if k.lifetime() == t.ticket_key_lifetime => None,
        Some(k) => Some(k.with_lifetime(t.ticket_key_lifetime)?),
        None => Some(tls::Keys::new(t.ticket_key_lifetime)?),
    };
    let loaded = tls::load(t, fresh.as_ref().or(keys.as_ref()))?;
    if fresh.is_some() {
        *keys = fresh;
    }
    Ok(Some(loaded))
}

fn build_router(
    config: &Config,
    extra: &[Route],
    shapes: &Board,
    workers: usize,
) -> std::io::Result<Router> {
    let mut router = Router::counted(config, shapes, workers)?;
    for route in extra {
        router.push(route.clone());
    }
    Ok(router)
}

/// `N workers (pinned)`, by what the workers reported: pinning can fail even when the config
/// asks for it (a CPU outside the allowed set, a seccomp filter without sched_setaffinity).
fn describe(count: usize, pinned: usize) -> String {
    match pinned {
        0 => format!("{count} workers (unpinned)"),
        p if p == count => format!("{count} workers (pinned)"),
        p => format!("{count} workers ({p} pinned)"),
    }
}

/// Given each worker's heartbeat at the last check and now (keyed by its counters' address),
/// has every worker seen at both moved on? Workers first seen now count as alive.
fn all_answered(before: &[(usize, u64)], now: &[(usize, u64)]) -> bool {
    now.iter()
        .all(|&(key, beat)| !before.iter().any(|&(k, b)| k == key && b == beat))
}

/// Workers to start: the config's number, or one per CPU this process may use (std's count
/// respects the affinity mask and cgroup CPU quotas).
fn worker_count(config: &Config) -> usize {
    if config.workers > 0 {
        return config.workers;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Deliver SIGTERM, SIGINT, SIGHUP and SIGUSR1 (reopen the access log) as channel messages.
fn forward_signals() -> std::io::Result<Receiver<i32>> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Route as RouteConfig;

    #[test]
    fn the_status_says_how_many_workers_really_are_pinned() {
        assert_eq!(describe(2, 2), "2 workers (pinned)");
        assert_eq!(describe(2, 0), "2 workers (unpinned)");
        assert_eq!(describe(4, 3), "4 workers (3 pinned)");
    }

    #[test]
    fn a_deadline_too_far_for_the_clock_is_far_instead_of_a_panic() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far >= before + FAR, "{far:?}");
        let near = deadline_after(Duration::from_secs(2));
        assert!(near >= before + Duration::from_secs(2) && near < far);
    }

    #[test]
    fn server_new_refuses_a_config_the_file_loader_would_refuse() {
        let huge = Config {
            drain_timeout: Duration::from_secs(u64::MAX),
            ..Config::default()
        };
        let Err(e) = Server::new(huge) else {
            panic!("a drain_timeout of u64::MAX seconds was accepted");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("drain_timeout"), "{e}");
        // A route that matches nothing: building its router would panic.
        let pathless = Config {
            routes: vec![RouteConfig {
                method: None,
                path: None,
                prefix: None,
                handler: crate::config::HandlerKind::Echo,
                status: None,
                content_type: None,
                body: None,
                body_file: None,
                headers: Default::default(),
                shape: None,
            }],
            ..Config::default()
        };
        assert!(Server::new(pathless).is_err());
        assert!(Server::new(Config::default()).is_ok());
    }

    /// `LISTEN_PID`/`LISTEN_FDS` naming this very process and an open listening socket among
    /// its descriptors: a library `Server` still binds its own, and leaves the descriptor to
    /// its owner.
    #[test]
    fn a_server_never_takes_descriptors_the_environment_names() {
        use std::os::fd::AsRawFd;
        let owned = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = owned.as_raw_fd();
        std::env::set_var("LISTEN_PID", std::process::id().to_string());
        std::env::set_var("LISTEN_FDS", (fd - 2).to_string());
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let listeners = listeners_for(&config, 1, Vec::new()).unwrap();
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        assert!(!listeners.is_inherited());
        assert_ne!(listeners.addr, owned.local_addr().unwrap());
        drop(listeners);
        // Still ours: nothing closed it behind our back.
        assert!(owned.local_addr().is_ok());
        let given = listeners_for(&config, 1, vec![owned.try_clone().unwrap()]).unwrap();
        assert!(given.is_inherited());
        assert_eq!(given.addr, owned.local_addr().unwrap());
    }

    #[test]
    fn the_watchdog_needs_every_known_worker_to_have_answered() {
        assert!(all_answered(&[], &[(1, 0), (2, 0)]));
        assert!(all_answered(&[(1, 0), (2, 0)], &[(1, 1), (2, 1)]));
        assert!(!all_answered(&[(1, 0), (2, 0)], &[(1, 1), (2, 0)]));
        // A worker of a new generation, not seen before, does not hold the watchdog back.
        assert!(all_answered(&[(1, 3)], &[(1, 4), (9, 0)]));
    }
}
