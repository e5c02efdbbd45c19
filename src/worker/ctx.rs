//! What a worker's connections share while it answers them: the config and routes they are
//! served by ([`Shared`]), and the worker's buffers, `Date` cache and counters ([`Ctx`]).
//!
//! This sits between the worker loop and the connections it drives, so that neither imports
//! the other's internals.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use crate::access_log::Recorder;
use crate::config::Config;
use crate::handler::{Desk, Router};
use crate::http::date::DateCache;
use crate::stats::StatsWriter;

/// Largest de-chunked body buffer kept for reuse between requests.
const SPARE_KEEP: usize = 64 * 1024;

/// What every worker serves by: the config and the routes built from it.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The routes.
    pub router: Router,
    /// What new HTTPS connections' sessions start with (certificates included), with `[tls]`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the request path needs besides the connection and the parser: the worker's buffers,
/// `Date` cache and counters, and the newest config. Each connection holds the config it is
/// served under, and moves to the newest between requests.
pub struct Ctx {
    /// The config and routes of the last reload: new connections start under it, and every
    /// connection moves to it between requests.
    pub newest: Arc<Shared>,
    /// Responses built during one event, written with one syscall.
    pub wbuf: Vec<u8>,
    /// A body buffer kept for reuse.
    spare: Vec<u8>,
    /// The `Date` header value.
    pub date: DateCache,
    /// What handlers reach of the worker: the last static response rendered, responses
    /// deferred during this event, random numbers.
    pub desk: Desk,
    /// This worker's counters.
    pub stats: StatsWriter,
    /// Shutting down: every response closes its connection.
    pub draining: bool,
    /// When the current loop turn started.
    pub now: Instant,
    /// `now` in the timing wheel's ticks (10 ms), the clock of the minimum rates.
    pub tick: u64,
    /// This worker's access-log lines not yet handed to the log thread.
    pub log: Recorder,
    /// The client of the connection being served, for its access-log lines.
    pub peer: IpAddr,
    /// When the oldest request pending on the connection being served started (its first
    /// byte, or this turn): access-log durations run from it, as the duration histogram's do.
    pub request_start: Instant,
}

impl Ctx {
    /// The context of worker `id` starting at `now` under `newest`, with a write buffer of
    /// `capacity` bytes.
    pub fn new(
        id: usize,
        newest: Arc<Shared>,
        stats: StatsWriter,
        now: Instant,
        capacity: usize,
    ) -> Ctx {
        Ctx {
            newest,
            wbuf: Vec::with_capacity(capacity),
            spare: Vec::new(),
            date: DateCache::new(),
            desk: Desk {
                worker: id,
                ..Desk::default()
            },
            stats,
            draining: false,
            now,
            tick: 0,
            log: Recorder::new(id),
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            request_start: now,
        }
    }

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
