//! Generations of workers, as the supervisor manages them across reloads.
//!
//! A reload that changes `workers`, `backlog` or `pin` starts a new generation of workers on
//! the *same* listening sockets (see [`Listeners`]), then drains the old generation. The
//! supervisor holds its own handle on every listener, so no listener closes while a generation
//! changes, and the kernel never resets a connection waiting in an accept queue.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::listeners::Listeners;
use crate::stats::{StatsWriter, WorkerStats};
use crate::worker::{self, Command, Report, Shared, Team, WorkerHandle};

/// One generation of workers: started together, by one config, drained together.
pub struct Generation {
    /// Counts up from 0 with each structural reload; reports carry it.
    pub number: u64,
    /// The workers.
    pub workers: Vec<WorkerHandle>,
    /// Their counters, in worker order.
    pub stats: Vec<Arc<WorkerStats>>,
    /// Workers that have not exited yet.
    pub running: usize,
    /// Workers that reported running pinned to their CPU (known once all are ready).
    pub pinned: usize,
}

/// Everything needed to start a generation.
pub struct Start<'a> {
    /// Its number.
    pub number: u64,
    /// Config and routes.
    pub shared: Arc<Shared>,
    /// Sockets to serve.
    pub listeners: &'a Listeners,
    /// HTTPS sockets to serve, with `[tls]`.
    pub tls_listeners: Option<&'a Listeners>,
    /// Worker count.
    pub workers: usize,
    /// CPUs to pin to, in order; empty for no pinning.
    pub cores: &'a [core_affinity::CoreId],
    /// Where workers report.
    pub reports: &'a Sender<(u64, Report)>,
}

impl Generation {
    /// Start the workers of a generation. They report `Ready` on `reports` when listening.
    pub fn start(start: Start<'_>) -> io::Result<Generation> {
        let mut workers = Vec::with_capacity(start.workers);
        let mut stats = Vec::with_capacity(start.workers);
        // Every worker's mailbox first: each worker is given all of them, to hand connections
        // to the others.
        let prepared = (0..start.workers)
            .map(|_| worker::prepare())
            .collect::<io::Result<Vec<_>>>()?;
        let team = Arc::new(Team::new(
            prepared.iter().map(|p| p.mailbox.clone()).collect(),
        ));
        let listeners = start.listeners.split(start.workers)?;
        let mut tls_listeners = match start.tls_listeners {
            Some(l) => l.split(start.workers)?,
            None => (0..start.workers).map(|_| Vec::new()).collect(),
        };
        for (id, (prepared, listeners)) in prepared.into_iter().zip(listeners).enumerate() {
            let core = (!start.cores.is_empty()).then(|| start.cores[id % start.cores.len()]);
            let worker_stats = StatsWriter::new();
            stats.push(worker_stats.view());
            let (tx, number) = (start.reports.clone(), start.number);
            let report = move |r: Report| {
                let _ = tx.send((number, r));
            };
            let begin = worker::Start {
                id,
                listeners,
                tls_listeners: std::mem::take(&mut tls_listeners[id]),
                core,
                shared: start.shared.clone(),
                stats: worker_stats,
                team: team.clone(),
            };
            workers.push(worker::spawn(prepared, begin, report)?);
        }
        Ok(Generation {
            number: start.number,
            running: workers.len(),
            workers,
            stats,
            pinned: 0,
        })
    }

    /// Ask every worker to drain and exit.
    pub fn drain(&self) {
        self.workers.iter().for_each(|w| w.send(Command::Shutdown));
    }

    /// Send every worker a command made by `make`.
    pub fn send(&self, make: impl Fn() -> Command) {
        self.workers.iter().for_each(|w| w.send(make()));
    }

    /// Wait until every worker of this generation reported applying the reload of `epoch`
    /// (reports of other kinds, or of other generations, that arrive meanwhile are handed to
    /// `other`; acknowledgements of earlier reloads are dropped).
    pub fn wait_reloaded(
        &self,
        reports: &Receiver<(u64, Report)>,
        epoch: u64,
        timeout: Duration,
        mut other: impl FnMut(u64, Report),
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut applied = 0;
        while applied < self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match reports.recv_timeout(left) {
                Ok((n, Report::Reloaded { epoch: e })) if n == self.number => {
                    applied += usize::from(e == epoch);
                }
                Ok((n, Report::Fatal(id, e))) if n == self.number => {
                    other(n, Report::Fatal(id, e.clone()));
                    return Err(format!("worker {id} failed: {e}"));
                }
                Ok((n, report)) => other(n, report),
                Err(_) => {
                    return Err(format!(
                        "{} of {} workers applied it within {timeout:?}",
                        applied,
                        self.workers.len()
                    ))
                }
            }
        }
        Ok(())
    }

    /// Wait until every worker of this generation reported `Ready` (reports of other
    /// generations that arrive meanwhile are handed to `other`).
    pub fn wait_ready(
        &mut self,
        reports: &Receiver<(u64, Report)>,
        timeout: Duration,
        mut other: impl FnMut(u64, Report),
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut ready = 0;
        self.pinned = 0;
        while ready < self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match reports.recv_timeout(left) {
                Ok((n, Report::Ready { pinned })) if n == self.number => {
                    ready += 1;
                    self.pinned += usize::from(pinned);
                }
                Ok((n, Report::Fatal(id, e))) if n == self.number => {
                    return Err(format!("worker {id} failed to start: {e}"));
                }
                Ok((n, Report::Exited(id))) if n == self.number => {
                    return Err(format!("worker {id} exited during start-up"));
                }
                Ok((n, report)) => other(n, report),
                Err(_) => return Err(format!("workers not ready after {timeout:?}")),
            }
        }
        Ok(())
    }
}
