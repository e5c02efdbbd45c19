//! A worker: one thread, its listeners, one `mio` event loop, and the connections it accepted.
//!
//! A worker owns all of its state. What crosses threads is a [`Command`] from the supervisor
//! (with a [`mio::Waker`] to interrupt the loop), a [`Report`] back, and the worker's own
//! counters, which only it writes ([`StatsWriter`]).

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

mod access;
mod alarm;
mod balance;
mod conn;
mod ctx;
mod dispatch;
pub mod fuzz;
mod timer;
mod tls;

pub use balance::{Mailbox, Team};
pub use ctx::Shared;

use crate::config::Balance;
use crate::http::RequestParser;
use crate::log::Throttle;
use crate::stats::{CloseReason, StatsWriter};
use alarm::Alarms;
use balance::{MIN_MOVED_REQUESTS, REBALANCE};
use conn::{Conn, Io, Outcome, Ready, Register};
use ctx::Ctx;
use timer::{Entry, Wheel};
use tls::{News, TlsStream};

const WAKER: Token = Token(usize::MAX);
/// The alarms' timer (responses due at an instant).
const ALARM: Token = Token(usize::MAX - 1);
/// Listener `i` is registered as `Token(LISTENER_BASE - i)`, far above any slab key.
const LISTENER_BASE: usize = usize::MAX - 2;
/// HTTPS listener `i` is registered as `Token(TLS_LISTENER_BASE - i)` (a worker has at most
/// as many listeners of a kind as there can be workers, 1024).
const TLS_LISTENER_BASE: usize = LISTENER_BASE - 4096;
/// HTTPS connection `key` of its slab is registered as `Token(TLS_BASE + key)`, and its alarm
/// is set by that token; plain connections' tokens are their keys, below it.
const TLS_BASE: usize = 1 << (usize::BITS - 2);
/// How late a thread's timers may fire: a response delayed by milliseconds is measured in
/// microseconds of lateness, and the kernel's default slack is 50 µs.
const TIMER_SLACK: Duration = Duration::from_micros(1);
/// Bytes read per `read` call. Large enough for a 16-deep pipeline of browser-sized requests.
const READ_BUF: usize = 64 * 1024;
/// How long accepting pauses when the process or system is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted from one listener per loop turn, so that a flood of new connections
/// cannot starve the established ones of their turn.
const ACCEPT_BATCH: usize = 128;

/// From the supervisor to a worker.
pub enum Command {
    /// Stop accepting, finish in-flight requests, close idle connections, exit.
    Shutdown,
    /// Serve new requests by this config (listen, workers, backlog and pin are unchanged);
    /// answered with [`Report::Reloaded`] carrying the same `epoch` once applied.
    Reload {
        /// The new config and routes.
        shared: Arc<Shared>,
        /// Tells this reload's acknowledgement apart from an earlier one's.
        epoch: u64,
    },
    /// Show the loop is turning: bump the heartbeat counter.
    Ping,
    /// Serve this connection, accepted by another worker of the generation and assigned to
    /// this one (see [`Team`]).
    Adopt(mio::net::TcpStream, IpAddr),
    /// Serve this keep-alive connection from now on: another worker of the generation served
    /// it until now, and moved it here between requests to even out the load.
    Resume(mio::net::TcpStream, IpAddr),
}

/// From a worker to the supervisor.
#[derive(Debug)]
pub enum Report {
    /// The worker is listening; `pinned`: it runs on the one CPU it was given.
    Ready { pinned: bool },
    /// The worker hit an error it cannot recover from.
    Fatal(usize, String),
    /// The worker finished draining and exited.
    Exited(usize),
    /// The worker applied the [`Command::Reload`] of `epoch`: every request that starts from
    /// now on is served by its config.
    Reloaded {
        /// The reload's epoch.
        epoch: u64,
    },
}

/// The supervisor's side of a worker.
pub struct WorkerHandle {
    /// Its commands.
    pub mailbox: Mailbox,
    /// The thread.
    pub thread: JoinHandle<()>,
}

impl WorkerHandle {
    /// Send a command and wake the worker to read it.
    pub fn send(&self, command: Command) {
        self.mailbox.send(command);
    }
}

/// A worker's loop and mailbox, made before any worker of its generation starts, so that each
/// can be given all of its team's mailboxes.
pub struct Prepared {
    poll: Poll,
    inbox: Receiver<Command>,
    /// Where its commands (and connections handed to it) go.
    pub mailbox: Mailbox,
}

/// Make a worker's loop and mailbox.
pub fn prepare() -> io::Result<Prepared> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, inbox) = crossbeam_channel::unbounded();
    Ok(Prepared {
        poll,
        inbox,
        mailbox: Mailbox { commands, waker },
    })
}

/// Everything a worker thread starts with besides its loop.
pub struct Start {
    /// Its index in its generation (and in `team`).
    pub id: usize,
    /// The listeners it accepts from: usually one; more after the worker count shrank across
    /// a reload, so that no listener has to close.
    pub listeners: Vec<std::net::TcpListener>,
    /// Its HTTPS listeners (none without `[tls]`), shared out as `listeners` are.
    pub tls_listeners: Vec<std::net::TcpListener>,
    /// The CPU to pin it to.
    pub core: Option<core_affinity::CoreId>,
    /// The config and routes.
    pub shared: Arc<Shared>,
    /// Its counters' only writer.
    pub stats: StatsWriter,
    /// The workers of its generation, for hand-offs.
    pub team: Arc<Team>,
}

/// Start the worker thread of `prepared`.
pub fn spawn(
    prepared: Prepared,
    start: Start,
    report: impl Fn(Report) + Send + Sync + 'static,
) -> io::Result<WorkerHandle> {
    let report: Arc<dyn Fn(Report) + Send + Sync> = Arc::new(report);
    let Prepared {
        poll,
        inbox,
        mailbox,
    } = prepared;
    let id = start.id;
    let thread = std::thread::Builder::new()
        .name(format!("cerberus-worker-{id}"))
        .spawn(move || {
            // Only precision is lost if this fails: say so, and go on.
            if let Err(e) = crate::os::timerfd::set_timer_slack(TIMER_SLACK) {
                eprintln!("cerberus: worker {id}: could not set the timer slack: {e}");
            }
            let pinned = start.core.is_some_and(|core| {
                let pinned = core_affinity::set_for_current(core);
                if !pinned {
                    eprintln!(
                        "cerberus: worker {id}: could not pin to CPU {}; unpinned",
                        core.id
                    );
                }
                pinned
            });
            // A panic is a bug, but it must reach the supervisor as a report, not vanish.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut worker = Worker::new(poll, start, inbox, report.clone())?;
                report(Report::Ready { pinned });
                worker.run()
            }));
            report(match result {
                Ok(Ok(())) => Report::Exited(id),
                Ok(Err(e)) => Report::Fatal(id, e.to_string()),
                Err(_) => Report::Fatal(id, "worker panicked".to_owned()),
            });
        })?;
    Ok(WorkerHandle { mailbox, thread })
}

struct Worker {
    id: usize,
    poll: Poll,
    /// Emptied when draining: deregistering them stops new connections here. The sockets stay
    /// open as long as the supervisor or a newer worker holds them.
    listeners: Vec<TcpListener>,
    conns: Slab<Conn>,
    wheel: Wheel,
    /// Entries taken from the wheel this turn.
    due: Vec<Entry>,
    /// Connections that asked to be woken at an instant (a response they owe is due).
    alarms: Alarms,
    /// Tokens whose alarms went off this turn.
    woken: Vec<usize>,
    /// The HTTPS listeners and connections.
    tls: TlsSide,
    rbuf: Box<[u8]>,
    parser: RequestParser,
    ctx: Ctx,
    inbox: Receiver<Command>,
    /// Reports to the supervisor.
    report: Arc<dyn Fn(Report) + Send + Sync>,
    /// The workers of this generation, for hand-offs.
    team: Arc<Team>,
    /// When this worker next compares its load with its team's.
    next_rebalance: Instant,
    /// Connections that could move, by requests answered: kept to reuse its allocation.
    movable: Vec<(u32, usize)>,
    /// Accepting is paused until then (out of file descriptors).
    accept_paused_until: Option<Instant>,
    /// Keeps the accept-error line to one a second while the descriptors stay exhausted.
    accept_errors: Throttle,
    /// A batch of accepts stopped before the queue was empty: accept again next turn (the
    /// listener is edge-triggered and will not report those connections again).
    accept_more: bool,
}

/// A worker's HTTPS side: its listeners, and its connections with their own slab and wheel,
/// so that plain connections' code and memory stay as they are.
struct TlsSide {
    /// Emptied when draining, as the plain ones are.
    listeners: Vec<TcpListener>,
    conns: Slab<Conn<TlsStream>>,
    wheel: Wheel,
    due: Vec<Entry>,
}

/// What the worker needs of a connection's socket besides what the connection needs: to
/// count what its own layer did (a TLS handshake done or failed).
trait Stream: conn::Socket + mio::event::Source {
    /// Count what happened since the last call.
    #[inline]
    fn count(&mut self, _stats: &StatsWriter) {}

    /// The connection is closing for `reason`: count what that means at this layer.
    #[inline]
    fn closing(&mut self, _reason: CloseReason, _stats: &StatsWriter) {}
}

/// A new connection's first step, before it is registered.
///
/// With TCP_DEFER_ACCEPT the kernel hands a connection over because its first bytes (a
/// request, or a ClientHello) are here: answer them now, so a `Connection: close` exchange is
/// accept, read, write, close, with no epoll call at all. (Without it the request is often not
/// here yet, and the failed read costs more than it saves.) Adding a socket that already holds
/// data reports it at once, so nothing the first read missed is lost.
#[inline]
fn begin<S: Stream>(conn: &mut Conn<S>, io: Io<'_>, ctx: &mut Ctx) -> Outcome {
    if !ctx.newest.config.defer_accept {
        return conn.start(ctx);
    }
    let arrived = Ready {
        readable: true,
        writable: false,
        read_closed: false,
    };
    let outcome = conn.on_event(arrived, io, ctx);
    conn.socket_mut().count(&ctx.stats);
    outcome
}

impl Stream for mio::net::TcpStream {}

impl Stream for TlsStream {
    fn count(&mut self, stats: &StatsWriter) {
        match self.take_news() {
            Some(News::Done { tls13, resumed }) => stats.tls_done(tls13, resumed),
            Some(News::Failed(why)) => stats.tls_failed(why),
            None => {}
        }
    }

    fn closing(&mut self, reason: CloseReason, stats: &StatsWriter) {
        use crate::stats::TlsFailure;
        match reason {
            CloseReason::HandshakeTimeout => self.fail(TlsFailure::Timeout),
            CloseReason::Client if conn::Socket::handshaking(self) => self.fail(TlsFailure::Closed),
            _ if conn::Socket::handshaking(self) => self.fail(TlsFailure::Other),
            _ => {}
        }
        self.count(stats);
    }
}

/// Run `$body` on the slab and wheel of the connection with `$token`, with `$key` its slab
/// key: the plain ones, or the HTTPS ones.
macro_rules! on_conns {
    ($self:ident, $token:expr, |$conns:ident, $wheel:ident, $key:ident| $body:expr) => {
        if $token < TLS_BASE {
            let ($conns, $wheel, $key) = (&mut $self.conns, &mut $self.wheel, $token);
            $body
        } else {
            let ($conns, $wheel, $key) = (
                &mut $self.tls.conns,
                &mut $self.tls.wheel,
                $token - TLS_BASE,
            );
            $body
        }
    };
}

impl Worker {
    fn new(
        poll: Poll,
        start: Start,
        inbox: Receiver<Command>,
        report: Arc<dyn Fn(Report) + Send + Sync>,
    ) -> io::Result<Worker> {
        let mut listeners: Vec<TcpListener> = start
            .listeners
            .into_iter()
            .map(TcpListener::from_std)
            .collect();
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(LISTENER_BASE - i), Interest::READABLE)?;
        }
        let mut tls_listeners: Vec<TcpListener> = start
            .tls_listeners
            .into_iter()
            .map(TcpListener::from_std)
            .collect();
        for (i, listener) in tls_listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(TLS_LISTENER_BASE - i), Interest::READABLE)?;
        }
        let now = Instant::now();
        let mut worker = Worker {
            id: start.id,
            poll,
            listeners,
            conns: Slab::new(),
            wheel: Wheel::new(now),
            due: Vec::new(),
            alarms: Alarms::new(),
            woken: Vec::new(),
            tls: TlsSide {
                listeners: tls_listeners,
                conns: Slab::new(),
                wheel: Wheel::new(now),
                due: Vec::new(),
            },
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            parser: RequestParser::new(),
            ctx: Ctx::new(start.id, start.shared, start.stats, now, READ_BUF),
            inbox,
            report,
            team: start.team,
            next_rebalance: now + REBALANCE,
            movable: Vec::new(),
            accept_paused_until: None,
            accept_errors: Throttle::default(),
            accept_more: false,
        };
        let ctx = &mut worker.ctx;
        ctx.log.retarget(&ctx.newest.config, &ctx.stats);
        Ok(worker)
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.ctx.now = Instant::now();
            self.ctx.tick = self.wheel.tick_of(self.ctx.now);
            self.ctx.date.tick(self.ctx.now);
            // Responses due go first: they are the ones that can be late.
            if self.alarms.due(self.ctx.now) {
                self.wake_due()?;
            }
            for event in events.iter() {
                // Connections first: nearly every event is theirs, and their keys are below
                // every other token.
                match event.token() {
                    Token(token) if token < TLS_LISTENER_BASE - 4096 => {
                        self.conn_event(token, event)
                    }
                    WAKER => self.commands(),
                    // The alarms are looked at every turn, below.
                    ALARM => {}
                    Token(t) if t > TLS_LISTENER_BASE => self.accept_from(LISTENER_BASE - t),
                    Token(t) => self.accept_tls_from(TLS_LISTENER_BASE - t),
                }
            }
            if self.accept_paused_until.is_some_and(|t| t <= self.ctx.now) || self.accept_more {
                self.accept_paused_until = None;
                self.accept_more = false;
                self.accept();
            }
            if self.alarms.waiting() {
                // Those that came due while this turn's events were handled: now, not after
                // the next wait.
                self.ctx.now = Instant::now();
                self.ctx.tick = self.wheel.tick_of(self.ctx.now);
                if self.alarms.due(self.ctx.now) {
                    self.wake_due()?;
                }
            }
            self.expire_timers();
            if self.team.size() > 1 && self.ctx.now >= self.next_rebalance {
                self.rebalance();
            }
            let ctx = &mut self.ctx;
            ctx.log
                .flush_if_due(ctx.now, &ctx.newest.config, &ctx.stats);
            // A connection on its way here counts in the team's load: wait for it.
            if self.ctx.draining
                && self.conns.is_empty()
                && self.tls.conns.is_empty()
                && self.team.retire(self.id)
            {
                self.ctx.log.finish(&self.ctx.stats);
                return Ok(());
            }
        }
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        if self.accept_more {
            return Some(Duration::ZERO);
        }
        // The turn's start, not a fresh clock read: a timer then fires late by at most the
        // time this turn took, well inside the wheel's 10 ms tick.
        let now = self.ctx.now;
        let mut timer = self.wheel.next_timeout(now);
        if !self.tls.conns.is_empty() {
            if let Some(t) = self.tls.wheel.next_timeout(now) {
                timer = Some(timer.map_or(t, |p| p.min(t)));
            }
        }
        // The soonest of the other wake-ups, as one instant: subtracting instants is the
        // costly part. Only a worker with connections and peers has load to even out.
        let mut wake = self.accept_paused_until;
        if self.team.size() > 1 && !self.conns.is_empty() {
            wake = Some(wake.map_or(self.next_rebalance, |t| t.min(self.next_rebalance)));
        }
        if let Some(log) = self.ctx.log.deadline(&self.ctx.newest.config) {
            wake = Some(wake.map_or(log, |t| t.min(log)));
        }
        match (timer, wake.map(|t| t.saturating_duration_since(now))) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Accept from every listener.
    fn accept(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept_from(i);
        }
        for i in 0..self.tls.listeners.len() {
            self.accept_tls_from(i);
        }
    }

    /// Accept from listener `i` until the queue is empty, the connection limit is reached, or
    /// fds run out.
    fn accept_from(&mut self, i: usize) {
        let max = self.ctx.newest.config.max_connections;
        for _ in 0..ACCEPT_BATCH {
            if self.accept_paused_until.is_some() || self.conns.len() + self.tls.conns.len() >= max
            {
                return;
            }
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.assign(stream, peer.ip()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.accept_failed(&e),
            }
        }
        self.accept_more = true;
    }

    /// [`accept_from`](Self::accept_from) for HTTPS listener `i`. A copy, not a shared loop
    /// with a flag: the flag's branches cost the plain accept path 50 instructions per
    /// connection (callgrind, `close` scenario).
    fn accept_tls_from(&mut self, i: usize) {
        let max = self.ctx.newest.config.max_connections;
        for _ in 0..ACCEPT_BATCH {
            if self.accept_paused_until.is_some() || self.conns.len() + self.tls.conns.len() >= max
            {
                return;
            }
            let Some(listener) = self.tls.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.add_tls(stream, peer.ip()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.accept_failed(&e),
            }
        }
        self.accept_more = true;
    }

    /// An accept failed: out of descriptors pauses accepting (said once a second); anything
    /// else (ECONNABORTED, EPROTO, EPERM from a firewall, EINTR) lost that one connection.
    #[cold]
    fn accept_failed(&mut self, e: &io::Error) {
        if !out_of_fds(e) {
            return;
        }
        let now = Instant::now();
        if let Some(held) = self.accept_errors.note(now) {
            eprintln!(
                "cerberus: worker {}: accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}{held}",
                self.id
            );
        }
        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
    }

    /// A connection this worker accepted: serve it here, or hand it to the least loaded worker
    /// when this one is over its fair share (`balance = "load"`).
    fn assign(&mut self, stream: mio::net::TcpStream, peer: IpAddr) {
        let balance = self.ctx.newest.config.balance == Balance::Load;
        let to = self.team.assign(self.id, balance);
        if to == self.id {
            return self.add(stream, peer);
        }
        match self.team.hand_off(to, Command::Adopt(stream, peer)) {
            Ok(()) => self.ctx.stats.handed_off(),
            // That worker failed: serve it here after all.
            Err(Command::Adopt(stream, peer)) => {
                self.team.keep(self.id);
                self.add(stream, peer);
            }
            Err(_) => unreachable!("hand_off gives back the command it was given"),
        }
    }

    /// Serve a connection assigned to this worker (its load already counts it).
    #[inline]
    fn add(&mut self, stream: mio::net::TcpStream, peer: IpAddr) {
        // TCP_NODELAY is inherited from the listener.
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let conn = entry.insert(Conn::new(stream, self.ctx.newest.clone(), peer));
        self.ctx.stats.opened();
        let io = Io {
            rbuf: &mut self.rbuf,
            parser: &mut self.parser,
        };
        let outcome = begin(conn, io, &mut self.ctx);
        self.apply(key, outcome);
    }

    /// Serve a connection accepted on an HTTPS listener, here (TLS connections are not
    /// handed between workers): its session starts with the newest certificates.
    fn add_tls(&mut self, stream: mio::net::TcpStream, peer: IpAddr) {
        // A listener outlives a config that dropped `[tls]` only until its generation drains.
        let Some(config) = self.ctx.newest.tls.as_ref() else {
            return;
        };
        let Ok(stream) = TlsStream::new(stream, config) else {
            return;
        };
        self.team.assign(self.id, false);
        let key = self
            .tls
            .conns
            .insert(Conn::new(stream, self.ctx.newest.clone(), peer));
        self.ctx.stats.opened();
        let io = Io {
            rbuf: &mut self.rbuf,
            parser: &mut self.parser,
        };
        let outcome = begin(&mut self.tls.conns[key], io, &mut self.ctx);
        self.apply(TLS_BASE + key, outcome);
    }

    fn conn_event(&mut self, token: usize, event: &mio::event::Event) {
        let ready = Ready {
            readable: event.is_readable() || event.is_read_closed() || event.is_error(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
        };
        let outcome = on_conns!(self, token, |conns, _wheel, key| {
            let Some(conn) = conns.get_mut(key) else {
                return;
            };
            let io = Io {
                rbuf: &mut self.rbuf,
                parser: &mut self.parser,
            };
            let outcome = conn.on_event(ready, io, &mut self.ctx);
            conn.socket_mut().count(&self.ctx.stats);
            outcome
        });
        debug_assert!(self.ctx.wbuf.is_empty(), "a connection left staged bytes");
        self.apply(token, outcome);
    }

    /// Do what the connection asked for: close it, or (re)register it and move its deadline.
    fn apply(&mut self, token: usize, outcome: Outcome) {
        let (register, timeout, wake) = match outcome {
            Outcome::Close(reason) => return self.close(token, reason),
            Outcome::Keep {
                register,
                timeout,
                wake,
            } => (register, timeout, wake),
        };
        let registry = self.poll.registry();
        let failed = on_conns!(self, token, |conns, wheel, key| {
            let registered = match register {
                None => Ok(()),
                Some(Register::New(interest)) => {
                    registry.register(&mut conns[key], Token(token), interest)
                }
                Some(Register::Change(interest)) => {
                    registry.reregister(&mut conns[key], Token(token), interest)
                }
            };
            if registered.is_err() {
                true
            } else {
                if let Some(timeout) = timeout {
                    wheel.arm(key, self.ctx.now, timeout);
                }
                // Without its alarm the response would never go: end it plainly instead.
                wake.then(|| conns[key].wake_at())
                    .flatten()
                    .is_some_and(|at| self.alarms.set(token, at, registry, ALARM).is_err())
            }
        });
        if failed {
            self.close(token, CloseReason::Error);
        }
    }

    /// Wake the connections whose alarms went off: the responses they owe are due.
    fn wake_due(&mut self) -> io::Result<()> {
        let mut woken = std::mem::take(&mut self.woken);
        self.alarms.expire(self.ctx.now, &mut woken)?;
        for token in woken.drain(..) {
            let outcome = on_conns!(self, token, |conns, _wheel, key| {
                let Some(conn) = conns.get_mut(key) else {
                    continue;
                };
                let io = Io {
                    rbuf: &mut self.rbuf,
                    parser: &mut self.parser,
                };
                conn.on_wake(io, &mut self.ctx)
            });
            self.apply(token, outcome);
        }
        self.woken = woken;
        Ok(())
    }

    /// Serve a keep-alive connection another worker moved here between requests (or one
    /// whose move failed, back here).
    fn resume(&mut self, stream: mio::net::TcpStream, peer: IpAddr) {
        self.ctx.stats.moved_in();
        let key = self
            .conns
            .insert(Conn::moved(stream, self.ctx.newest.clone(), peer));
        let outcome = self.conns[key].start(&self.ctx);
        self.apply(key, outcome);
    }

    /// Publish the requests answered since the last check, and when this worker answers well
    /// over its team's mean, move its busiest connections that are between requests to the
    /// least busy worker (see [`Team::plan_moves`]).
    fn rebalance(&mut self) {
        self.next_rebalance = self.ctx.now + REBALANCE;
        let balance = self.ctx.newest.config.balance == Balance::Load && !self.ctx.draining;
        let mut movable = std::mem::take(&mut self.movable);
        let mut answered = 0;
        for (key, conn) in self.conns.iter_mut() {
            let served = conn.take_served();
            answered += served as usize;
            if balance && served >= MIN_MOVED_REQUESTS && conn.is_movable() {
                movable.push((served, key));
            }
        }
        if let Some((to, mut gap)) = self.team.plan_moves(self.id, answered) {
            // Busiest first: the fewest moves that narrow the gap most.
            movable.sort_unstable_by(|a, b| b.cmp(a));
            let mut moved = 0;
            for &(served, key) in &movable {
                let served = served as usize;
                if served < gap && self.move_to(key, to) {
                    gap -= 2 * served.min(gap / 2);
                    moved += served;
                }
            }
            self.team.moved(self.id, to, moved);
        }
        movable.clear();
        self.movable = movable;
    }

    /// Move the connection at `key`, between requests, to worker `to`; `false` if it stays.
    fn move_to(&mut self, key: usize, to: usize) -> bool {
        if !self.team.transfer(self.id, to) {
            return false;
        }
        let mut conn = self.conns.remove(key);
        self.wheel.cancel(key);
        let _ = self.poll.registry().deregister(&mut conn);
        let (stream, peer) = conn.into_parts();
        self.ctx.stats.moved_out();
        match self.team.hand_off(to, Command::Resume(stream, peer)) {
            Ok(()) => {
                self.ctx.stats.handed_off();
                true
            }
            Err(Command::Resume(stream, peer)) => {
                // That worker failed: keep serving it here, counted back in.
                self.team.keep(self.id);
                self.resume(stream, peer);
                false
            }
            Err(_) => unreachable!("hand_off gives back the command it was given"),
        }
    }

    fn close(&mut self, token: usize, reason: CloseReason) {
        // Responses deferred by a connection that closed on an error, before it queued them.
        self.ctx.desk.later.clear();
        // Closing the socket removes it from the epoll set (its fd is never duplicated), so no
        // epoll_ctl is needed.
        on_conns!(self, token, |conns, wheel, key| {
            let mut conn = conns.remove(key);
            conn.socket_mut().closing(reason, &self.ctx.stats);
            drop(conn);
            wheel.cancel(key);
        });
        self.team.release(self.id);
        self.ctx.stats.closed(reason);
        // A free slot: connections waiting in the accept queue can come in on the next turn
        // (not from here: `add` may close, and would recurse).
        if self.conns.len() + self.tls.conns.len() + 1 == self.ctx.newest.config.max_connections {
            self.accept_more = true;
        }
    }

    fn expire_timers(&mut self) {
        let now_tick = self.wheel.tick_of(self.ctx.now);
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(self.ctx.now, &mut due);
        for entry in due.drain(..) {
            let key = entry.0;
            if !self.wheel.fired(entry, now_tick) {
                continue;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let reason = conn.on_timeout(&mut self.ctx);
            self.close(key, reason);
        }
        self.due = due;
        // The same for the HTTPS connections' own wheel (skipped while there are none, so the
        // plain loop turn pays one comparison).
        if self.tls.conns.is_empty() {
            return;
        }
        let now_tick = self.tls.wheel.tick_of(self.ctx.now);
        let mut due = std::mem::take(&mut self.tls.due);
        self.tls.wheel.expire(self.ctx.now, &mut due);
        for entry in due.drain(..) {
            let key = entry.0;
            if !self.tls.wheel.fired(entry, now_tick) {
                continue;
            }
            let Some(conn) = self.tls.conns.get_mut(key) else {
                continue;
            };
            let reason = conn.on_timeout(&mut self.ctx);
            self.close(TLS_BASE + key, reason);
        }
        self.tls.due = due;
    }

    fn commands(&mut self) {
        while let Ok(command) = self.inbox.try_recv() {
            match command {
                Command::Shutdown => self.start_drain(),
                Command::Reload { shared, epoch } => {
                    self.reload(shared);
                    (self.report)(Report::Reloaded { epoch });
                }
                Command::Ping => self.ctx.stats.heartbeat(),
                Command::Adopt(stream, peer) => self.add(stream, peer),
                Command::Resume(stream, peer) => self.resume(stream, peer),
            }
        }
    }

    /// Serve new requests by `shared`. Connections between requests move to it now (so no
    /// idle connection keeps an old config alive); a request already in progress is finished
    /// under the config it started with, and its connection moves after it.
    fn reload(&mut self, shared: Arc<Shared>) {
        self.ctx.newest = shared;
        let ctx = &mut self.ctx;
        ctx.log.retarget(&ctx.newest.config, &ctx.stats);
        for (_, conn) in self.conns.iter_mut() {
            conn.adopt(&self.ctx.newest);
        }
        for (_, conn) in self.tls.conns.iter_mut() {
            conn.adopt(&self.ctx.newest);
        }
    }

    /// Take what is already in the accept queue, stop accepting, and give every connection
    /// with nothing in flight a short grace to send one more request before it is closed.
    /// Requests in flight are answered with `Connection: close`.
    fn start_drain(&mut self) {
        if self.ctx.draining {
            return;
        }
        self.accept();
        for mut listener in self.listeners.drain(..).chain(self.tls.listeners.drain(..)) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.ctx.draining = true;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            // Each deadline again: idle connections now wait only for the drain grace.
            let outcome = self.conns[key].on_drain(&self.ctx);
            self.apply(key, outcome);
        }
        let keys: Vec<usize> = self.tls.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let outcome = self.tls.conns[key].on_drain(&self.ctx);
            self.apply(TLS_BASE + key, outcome);
        }
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: accepting again at once would fail the same way.
fn out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
