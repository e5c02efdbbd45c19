//! The access log: one line per answered request, in nginx's `combined` format or as JSON
//! ([`format`]), written by a log thread of its own ([`sink`]) so that serving never waits
//! on the disk.
//!
//! Each worker formats its lines into its own buffer (a [`Recorder`]: no lock, no syscall,
//! no allocation per request) and hands the buffer over whole, as one write, once it holds
//! `access_log_buffer` bytes or its oldest line has waited `access_log_flush`. If the log
//! thread is behind and its queue is full, the batch is dropped and counted
//! (`cerberus_access_log_dropped_total`) rather than making the worker wait.

use std::time::{Duration, Instant};

use crossbeam_channel::TrySendError;

use crate::config::{AccessLog, Config};
use crate::http::date::DateCache;
use crate::stats::StatsWriter;

pub mod format;
mod sink;

pub use format::{Entry, Request};
pub use sink::reopen;
use sink::{Batch, Control};

/// How long an exiting worker waits for its last lines to be written. A log that takes longer
/// is stalled, and the lines are dropped (and counted) rather than holding up shutdown.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);

/// One worker's side of the access log: the lines it has not handed over yet.
#[derive(Debug)]
pub struct Recorder {
    /// The worker, named in JSON lines.
    worker: usize,
    /// Lines not handed over yet.
    buf: Vec<u8>,
    /// How many lines `buf` holds, to count them if they are dropped.
    lines: u64,
    /// When the oldest line in `buf` was written: it is handed over `access_log_flush` later.
    oldest: Option<Instant>,
    /// The time of a line, rendered once a second.
    stamp: format::Stamp,
    /// The last client address rendered.
    peer: format::PeerText,
    /// Finds the end of a response's head, for its body's length; built once, because
    /// building a searcher costs more than the search.
    head_end: memchr::memmem::Finder<'static>,
    /// The destination this worker last told the log thread, so a reload that keeps it is
    /// not news.
    told: AccessLog,
}

impl Recorder {
    /// Worker `worker`'s recorder, holding nothing.
    pub fn new(worker: usize) -> Recorder {
        Recorder {
            worker,
            buf: Vec::new(),
            lines: 0,
            oldest: None,
            stamp: format::Stamp::new(),
            peer: format::PeerText::default(),
            head_end: memchr::memmem::Finder::new(b"\r\n\r\n"),
            told: AccessLog::Off,
        }
    }

    /// Add the line for `entry` (whose `worker` is filled in here) in `config`'s format; hand
    /// the batch over once it is full.
    pub fn record(
        &mut self,
        entry: Entry<'_>,
        config: &Config,
        date: &DateCache,
        now: Instant,
        stats: &StatsWriter,
    ) {
        self.stamp.refresh(date);
        let entry = Entry {
            worker: self.worker,
            ..entry
        };
        let format = config.access_log_format;
        format::write(&mut self.buf, format, &entry, &self.stamp, &mut self.peer);
        self.lines += 1;
        self.oldest = self.oldest.or(Some(now));
        if self.buf.len() >= config.access_log_buffer {
            self.flush(stats);
        }
    }

    /// When the lines held must be handed over, if any are held.
    #[inline]
    pub fn deadline(&self, config: &Config) -> Option<Instant> {
        self.oldest.map(|t| t + config.access_log_flush)
    }

    /// Hand the lines over if the oldest has waited long enough.
    #[inline]
    pub fn flush_if_due(&mut self, now: Instant, config: &Config, stats: &StatsWriter) {
        if self.deadline(config).is_some_and(|t| t <= now) {
            self.flush(stats);
        }
    }

    /// Hand the lines held to the log thread, or drop and count them if its queue is full.
    pub fn flush(&mut self, stats: &StatsWriter) {
        if self.lines == 0 {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        self.oldest = None;
        let Some(sink) = sink::get() else {
            stats.access_log_dropped(lines);
            self.buf.clear();
            return;
        };
        let next = sink
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.buf.capacity()));
        let full = std::mem::replace(&mut self.buf, next);
        match sink.batches.try_send(Batch::Lines(full)) {
            Ok(()) => {}
            Err(TrySendError::Full(Batch::Lines(mut full)))
            | Err(TrySendError::Disconnected(Batch::Lines(mut full))) => {
                stats.access_log_dropped(lines);
                // Keep the buffer that already has room; the spare goes unused.
                full.clear();
                self.buf = full;
            }
            Err(_) => {}
        }
    }

    /// Tell the log thread where lines go under `config` (at start and after a reload), after
    /// handing over the lines written before.
    pub fn retarget(&mut self, config: &Config, stats: &StatsWriter) {
        if config.access_log == self.told {
            return;
        }
        self.flush(stats);
        self.told = config.access_log.clone();
        if let Some(sink) = sink::get() {
            let _ = sink.control.send(Control::Target(self.told.clone()));
        }
    }

    /// The worker is exiting: hand over the last lines and wait (at most [`EXIT_WAIT`]) until
    /// they are written, so a clean shutdown loses none.
    pub fn finish(&mut self, stats: &StatsWriter) {
        let Some(sink) = sink::started() else {
            return;
        };
        let until = Instant::now() + EXIT_WAIT;
        let left = || until.saturating_duration_since(Instant::now());
        if self.lines > 0 {
            let full = std::mem::take(&mut self.buf);
            if sink
                .batches
                .send_timeout(Batch::Lines(full), left())
                .is_err()
            {
                stats.access_log_dropped(self.lines);
            }
            self.lines = 0;
            self.oldest = None;
        }
        let (done, written) = crossbeam_channel::bounded(1);
        if sink.batches.send_timeout(Batch::Sync(done), left()).is_ok() {
            let _ = written.recv_timeout(left());
        }
    }
}

impl Recorder {
    /// Bytes of body in `response`, one whole response: what follows its head.
    #[inline]
    pub fn body_len(&self, response: &[u8]) -> usize {
        let head = self.head_end.find(response);
        head.map_or(0, |head| response.len() - head - 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_follows_the_head() {
        let r = Recorder::new(0);
        assert_eq!(
            r.body_len(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nhello\r\n\r\n"),
            9
        );
        assert_eq!(r.body_len(b"HTTP/1.1 204 No Content\r\n\r\n"), 0);
        assert_eq!(r.body_len(b""), 0);
    }
}
