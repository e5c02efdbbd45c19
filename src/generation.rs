//! Listeners and generations of workers, as the supervisor manages them across reloads.
//!
//! A reload that changes `workers`, `backlog` or `pin` starts a new generation of workers on
//! the *same* listening sockets, then drains the old generation. The supervisor holds its own
//! handle on every listener, so no listener closes while a generation changes, and the kernel
//! never resets a connection waiting in an accept queue. Only a change of `listen` binds new
//! sockets; the old ones close once the old generation has drained.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::listener::{self, BindError};
use crate::stats::WorkerStats;
use crate::worker::{self, Command, Report, Shared, WorkerHandle};

/// The listening sockets of one address.
pub struct Listeners {
    /// The address they are bound to (with the real port when the config said 0).
    pub addr: SocketAddr,
    /// The sockets. Never fewer than the workers of any generation that used them, so that
    /// shrinking the worker count never closes one; several per worker are fine.
    sockets: Vec<TcpListener>,
    /// Came from systemd: we did not bind them and cannot add more of the same kind.
    inherited: bool,
}

impl Listeners {
    /// Bind `count` `SO_REUSEPORT` sockets on `addr`.
    pub fn bind(addr: SocketAddr, count: usize, backlog: u32) -> Result<Listeners, BindError> {
        let sockets = listener::bind_all(addr, count, backlog)?;
        let addr = sockets[0]
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        Ok(Listeners {
            addr,
            sockets,
            inherited: false,
        })
    }

    /// Use sockets passed by systemd socket activation.
    pub fn inherited(sockets: Vec<TcpListener>) -> io::Result<Listeners> {
        let addr = sockets[0].local_addr()?;
        for socket in &sockets {
            // Inherited by every accepted socket (see `listener::bind`).
            socket2::SockRef::from(socket).set_nodelay(true)?;
        }
        Ok(Listeners {
            addr,
            sockets,
            inherited: true,
        })
    }

    /// Were these passed by systemd?
    pub fn is_inherited(&self) -> bool {
        self.inherited
    }

    /// Make sure there is at least one socket per worker (bound ones only; inherited ones are
    /// shared when fewer than the workers).
    pub fn ensure(&mut self, count: usize, backlog: u32) -> Result<(), BindError> {
        while !self.inherited && self.sockets.len() < count {
            let socket = listener::bind(self.addr, backlog).map_err(|source| BindError {
                addr: self.addr,
                source,
            })?;
            self.sockets.push(socket);
        }
        Ok(())
    }

    /// Change the backlog of every socket (`listen` again on a listening socket does that).
    pub fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        for socket in &self.sockets {
            socket2::SockRef::from(socket).listen(backlog.min(i32::MAX as u32) as i32)?;
        }
        Ok(())
    }

    /// Turn TCP_DEFER_ACCEPT on (1 s of silence at most) or off on every socket. Where the
    /// kernel refuses, say so and go on: it is an optimisation, and without it connections are
    /// accepted at the handshake (a worker's first read may then find nothing yet).
    pub fn set_defer_accept(&self, on: bool) {
        for socket in &self.sockets {
            if let Err(e) = crate::sys::set_defer_accept(socket, u32::from(on)) {
                eprintln!(
                    "cerberus: cannot set TCP_DEFER_ACCEPT on {}: {e}; going on without it",
                    self.addr
                );
                return;
            }
        }
    }

    /// Handles on the sockets for `workers` workers: socket `i` goes to worker `i % workers`;
    /// with fewer sockets than workers, every worker shares all of them.
    pub fn split(&self, workers: usize) -> io::Result<Vec<Vec<TcpListener>>> {
        let mut split: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
        if self.sockets.len() >= workers {
            for (i, socket) in self.sockets.iter().enumerate() {
                split[i % workers].push(socket.try_clone()?);
            }
        } else {
            for handles in &mut split {
                for socket in &self.sockets {
                    handles.push(socket.try_clone()?);
                }
            }
        }
        Ok(split)
    }
}

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
}

/// Everything needed to start a generation.
pub struct Start<'a> {
    /// Its number.
    pub number: u64,
    /// Config and routes.
    pub shared: Arc<Shared>,
    /// Sockets to serve.
    pub listeners: &'a Listeners,
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
        for (id, handles) in start
            .listeners
            .split(start.workers)?
            .into_iter()
            .enumerate()
        {
            let core = (!start.cores.is_empty()).then(|| start.cores[id % start.cores.len()]);
            let worker_stats = Arc::new(WorkerStats::default());
            let (tx, number) = (start.reports.clone(), start.number);
            let report = move |r: Report| {
                let _ = tx.send((number, r));
            };
            workers.push(worker::spawn(
                id,
                handles,
                core,
                start.shared.clone(),
                worker_stats.clone(),
                report,
            )?);
            stats.push(worker_stats);
        }
        Ok(Generation {
            number: start.number,
            running: workers.len(),
            workers,
            stats,
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

    /// Wait until every worker of this generation reported `Ready` (reports of other
    /// generations that arrive meanwhile are handed to `other`).
    pub fn wait_ready(
        &self,
        reports: &Receiver<(u64, Report)>,
        timeout: Duration,
        mut other: impl FnMut(u64, Report),
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut ready = 0;
        while ready < self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match reports.recv_timeout(left) {
                Ok((n, Report::Ready(_))) if n == self.number => ready += 1,
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
