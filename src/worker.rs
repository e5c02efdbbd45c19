//! A worker: one thread, one listener, one `mio` event loop, and the connections it accepted.
//!
//! A worker owns all of its state. What crosses threads is a [`Command`] from the supervisor
//! (with a [`mio::Waker`] to interrupt the loop), a [`Report`] back, and the worker's own
//! [`WorkerStats`] atomics, which only it writes.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::Config;
use crate::conn::{Conn, Next, Waiting};
use crate::handler::Router;
use crate::http::date::DateCache;
use crate::http::RequestParser;
use crate::stats::{CloseReason, WorkerStats};
use crate::timer::{Entry, Wheel};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Bytes read per `read` call. Large enough for a 16-deep pipeline of browser-sized requests.
const READ_BUF: usize = 64 * 1024;
/// How long accepting pauses when the process or system is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Largest de-chunked body buffer kept for reuse between requests.
const SPARE_KEEP: usize = 64 * 1024;

/// What every worker serves by: the config and the routes built from it.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The routes.
    pub router: Router,
}

/// From the supervisor to a worker.
pub enum Command {
    /// Stop accepting, finish in-flight requests, close idle connections, exit.
    Shutdown,
}

/// From a worker to the supervisor.
#[derive(Debug)]
pub enum Report {
    /// The worker is listening.
    Ready(usize),
    /// The worker hit an error it cannot recover from.
    Fatal(usize, String),
    /// The worker finished draining and exited.
    Exited(usize),
}

/// The supervisor's side of a worker.
pub struct WorkerHandle {
    /// Commands to the worker.
    pub commands: Sender<Command>,
    /// Interrupts the worker's `poll`.
    pub waker: Arc<Waker>,
    /// The thread.
    pub thread: JoinHandle<()>,
}

impl WorkerHandle {
    /// Send a command and wake the worker to read it.
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// What the request path needs besides the connection and the parser.
pub struct Ctx {
    /// Responses built during one event, written with one syscall.
    pub wbuf: Vec<u8>,
    /// A body buffer kept for reuse.
    spare: Vec<u8>,
    /// The `Date` header value.
    pub date: DateCache,
    /// Config and routes.
    pub shared: Arc<Shared>,
    /// This worker's counters.
    pub stats: Arc<WorkerStats>,
    /// Shutting down: every response closes its connection.
    pub draining: bool,
    /// When the current loop turn started.
    pub now: Instant,
}

impl Ctx {
    /// An empty buffer for a de-chunked body.
    pub fn scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Give a body buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= SPARE_KEEP && buf.capacity() > self.spare.capacity() {
            buf.clear();
            self.spare = buf;
        }
    }
}

/// Start a worker thread serving `listener`.
pub fn spawn(
    id: usize,
    listener: std::net::TcpListener,
    core: Option<core_affinity::CoreId>,
    shared: Arc<Shared>,
    stats: Arc<WorkerStats>,
    reports: Sender<Report>,
) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, inbox) = crossbeam_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name(format!("cerberus-worker-{id}"))
        .spawn(move || {
            if let Some(core) = core {
                if !core_affinity::set_for_current(core) {
                    eprintln!(
                        "cerberus: worker {id}: could not pin to CPU {}; running unpinned",
                        core.id
                    );
                }
            }
            let result = Worker::new(id, poll, listener, shared, stats, inbox).and_then(|mut w| {
                let _ = reports.send(Report::Ready(id));
                w.run()
            });
            let _ = match result {
                Ok(()) => reports.send(Report::Exited(id)),
                Err(e) => reports.send(Report::Fatal(id, e.to_string())),
            };
        })?;
    Ok(WorkerHandle {
        commands,
        waker,
        thread,
    })
}

struct Worker {
    id: usize,
    poll: Poll,
    /// `None` once draining: closing it stops new connections.
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    wheel: Wheel,
    /// Entries taken from the wheel this turn.
    due: Vec<Entry>,
    rbuf: Box<[u8]>,
    parser: RequestParser,
    ctx: Ctx,
    inbox: Receiver<Command>,
    /// Generation for the next connection (see [`Conn::gen`]).
    next_gen: u32,
    /// Accepting is paused until then (out of file descriptors).
    accept_paused_until: Option<Instant>,
}

impl Worker {
    fn new(
        id: usize,
        poll: Poll,
        listener: std::net::TcpListener,
        shared: Arc<Shared>,
        stats: Arc<WorkerStats>,
        inbox: Receiver<Command>,
    ) -> io::Result<Worker> {
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let now = Instant::now();
        Ok(Worker {
            id,
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            wheel: Wheel::new(now),
            due: Vec::new(),
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            parser: RequestParser::new(),
            ctx: Ctx {
                wbuf: Vec::with_capacity(READ_BUF),
                spare: Vec::new(),
                date: DateCache::new(),
                shared,
                stats,
                draining: false,
                now,
            },
            inbox,
            next_gen: 0,
            accept_paused_until: None,
        })
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
            self.ctx.date.update(SystemTime::now());
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.commands(),
                    Token(key) => self.conn_event(
                        key,
                        event.is_readable() || event.is_read_closed() || event.is_error(),
                        event.is_writable(),
                    ),
                }
            }
            if self.accept_paused_until.is_some_and(|t| t <= self.ctx.now) {
                self.accept_paused_until = None;
                self.accept();
            }
            self.expire_timers();
            if self.ctx.draining && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let timer = self.wheel.next_timeout(now);
        let accept = self
            .accept_paused_until
            .map(|t| t.saturating_duration_since(now));
        match (timer, accept) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Accept until the queue is empty, the connection limit is reached, or fds run out.
    fn accept(&mut self) {
        let max = self.ctx.shared.config.max_connections;
        while self.accept_paused_until.is_none() && self.conns.len() < max {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => self.add(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_fds(&e) => {
                    eprintln!(
                        "cerberus: worker {}: accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}",
                        self.id
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                }
                // ECONNABORTED, EPROTO, EPERM (firewall), EINTR: that connection is gone, go on.
                Err(_) => {}
            }
        }
    }

    fn add(&mut self, mut stream: mio::net::TcpStream) {
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        // Read and write interest once, edge-triggered: no epoll_ctl per request.
        if self
            .poll
            .registry()
            .register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = entry.insert(Conn::new(stream, self.next_gen));
        conn.waiting = Waiting::Head;
        let timeout = self.ctx.shared.config.header_timeout;
        conn.deadline = self.wheel.deadline(self.ctx.now, timeout);
        conn.wheel_tick = Some(conn.deadline);
        self.wheel
            .schedule((key, conn.gen, conn.deadline), conn.deadline);
        self.ctx.stats.accepted.inc();
        self.ctx.stats.open.add(1);
    }

    fn conn_event(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut next = Next::Keep;
        if writable {
            next = conn.on_writable(&mut self.rbuf, &mut self.parser, &mut self.ctx);
        }
        if readable && next == Next::Keep {
            next = conn.on_readable(&mut self.rbuf, &mut self.parser, &mut self.ctx);
        }
        if next == Next::Keep && self.ctx.draining && conn.is_idle() {
            next = Next::Close(CloseReason::Shutdown);
        }
        match next {
            Next::Keep => self.arm(key),
            Next::Close(reason) => self.close(key, reason),
        }
    }

    /// Point the connection's timer at what it now waits for.
    fn arm(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let (waiting, restart) = conn.waiting_for();
        if !restart && waiting == conn.waiting {
            return;
        }
        let config = &self.ctx.shared.config;
        let timeout = match waiting {
            Waiting::Head => config.header_timeout,
            Waiting::Body => config.body_timeout,
            Waiting::Idle => config.keepalive_timeout,
            Waiting::Write => config.write_timeout,
            Waiting::Linger => Conn::linger(),
        };
        conn.waiting = waiting;
        conn.deadline = self.wheel.deadline(self.ctx.now, timeout);
        // A later deadline is found when the current entry comes due; an earlier one needs
        // an entry of its own (the old one then goes stale).
        if conn.wheel_tick.is_none_or(|t| t > conn.deadline) {
            conn.wheel_tick = Some(conn.deadline);
            self.wheel
                .schedule((key, conn.gen, conn.deadline), conn.deadline);
        }
    }

    fn close(&mut self, key: usize, reason: CloseReason) {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.ctx.stats.closed(reason);
        drop(conn);
        // A free slot: connections waiting in the accept queue can come in now.
        if self.conns.len() + 1 == self.ctx.shared.config.max_connections {
            self.accept();
        }
    }

    fn expire_timers(&mut self) {
        let now_tick = self.wheel.tick_of(self.ctx.now);
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(self.ctx.now, &mut due);
        for (key, gen, tick) in due.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.gen != gen || conn.wheel_tick != Some(tick) {
                continue;
            }
            if conn.deadline > now_tick {
                conn.wheel_tick = Some(conn.deadline);
                self.wheel
                    .schedule((key, gen, conn.deadline), conn.deadline);
                continue;
            }
            conn.wheel_tick = None;
            let reason = conn.on_timeout(&mut self.ctx);
            self.close(key, reason);
        }
        self.due = due;
    }

    fn commands(&mut self) {
        while let Ok(command) = self.inbox.try_recv() {
            match command {
                Command::Shutdown => self.start_drain(),
            }
        }
    }

    /// Take what is already in the accept queue (closing the listener would reset those
    /// connections), stop listening, and close every idle connection.
    fn start_drain(&mut self) {
        if self.ctx.draining {
            return;
        }
        self.accept();
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.ctx.draining = true;
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_idle())
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.close(key, CloseReason::Shutdown);
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
