//! What a worker's connections share while it answers them: the config and routes they are
//! served by ([`Shared`]), and the worker's buffers, `Date` cache and counters ([`Ctx`]).
//!
//! This sits between the worker loop and the connections it drives, so that neither imports
//! the other's internals.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::handler::{Rendered, Router};
use crate::http::date::DateCache;
use crate::stats::WorkerStats;

/// Largest de-chunked body buffer kept for reuse between requests.
const SPARE_KEEP: usize = 64 * 1024;

/// What every worker serves by: the config and the routes built from it.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The routes.
    pub router: Router,
}

/// What the request path needs besides the connection, the parser and the config: the worker's
/// buffers, `Date` cache and counters. The config is passed beside it, since a request that
/// was in flight at a reload is served by the config it started under.
pub struct Ctx {
    /// Responses built during one event, written with one syscall.
    pub wbuf: Vec<u8>,
    /// A body buffer kept for reuse.
    spare: Vec<u8>,
    /// The `Date` header value.
    pub date: DateCache,
    /// The last static response rendered in full, reused while its date is current.
    pub rendered: Rendered,
    /// This worker's counters.
    pub stats: Arc<WorkerStats>,
    /// Shutting down: every response closes its connection.
    pub draining: bool,
    /// When the current loop turn started.
    pub now: Instant,
}

impl Ctx {
    /// The context of a worker starting at `now`, with a write buffer of `capacity` bytes.
    pub fn new(stats: Arc<WorkerStats>, now: Instant, capacity: usize) -> Ctx {
        Ctx {
            wbuf: Vec::with_capacity(capacity),
            spare: Vec::new(),
            date: DateCache::new(),
            rendered: Rendered::default(),
            stats,
            draining: false,
            now,
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
