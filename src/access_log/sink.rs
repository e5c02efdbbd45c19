//! The log thread: the one place that writes access-log lines to their destination, so that
//! a worker never waits on a disk, a full pipe or a FIFO nobody reads.
//!
//! Workers hand over whole batches of lines through a bounded queue ([`QUEUE_BATCHES`]) and
//! take empty buffers back from a pool, so at steady state nothing is allocated. When the
//! queue is full the worker drops its batch and counts the lines
//! (`cerberus_access_log_dropped_total`): the only place lines are lost. A destination that
//! fails (a full disk, a path that cannot be opened) is retried every [`RETRY`] with the
//! batch held, so the queue fills and the loss is counted there too.
//!
//! There is one log thread per process, started by the first worker that logs, because the
//! log is one file per process, as stderr is. The supervisor reaches it only through
//! [`reopen`] (SIGUSR1); workers say where the log goes ([`Control::Target`]) at start and
//! after each reload.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, unbounded, Receiver, RecvTimeoutError, Sender};

use crate::config::AccessLog;
use crate::log::Throttle;

/// Batches waiting for the log thread. With 64 KiB batches that is 2 MiB, a few seconds of
/// lines at a busy worker's rate: enough to ride out a slow `fsync` elsewhere on the disk,
/// small enough that a stalled log costs bounded memory.
pub const QUEUE_BATCHES: usize = 32;
/// How long a failed destination waits before it is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// Permissions of a log file the server creates: the group (`adm` under logrotate's
/// `create`) may read it, others may not; request lines can carry tokens in query strings.
const FILE_MODE: u32 = 0o640;

/// What a worker hands to the log thread.
pub enum Batch {
    /// Whole lines, each ending in a newline.
    Lines(Vec<u8>),
    /// Answer once every batch queued before this one is written (a worker exiting).
    Sync(Sender<()>),
}

/// What changes where lines go.
pub enum Control {
    /// Write to this destination from now on (a worker started or reloaded).
    Target(AccessLog),
    /// Close and open the file again (SIGUSR1, after logrotate moved it).
    Reopen,
}

/// The workers' side of the log thread.
pub struct Sink {
    /// Full batches, bounded: a full queue means the log is behind, and lines are dropped.
    pub batches: Sender<Batch>,
    /// Destination changes; unbounded (a few per reload), and read before batches.
    pub control: Sender<Control>,
    /// Empty buffers to fill next.
    pub spare: Receiver<Vec<u8>>,
}

static SINK: OnceLock<Option<Sink>> = OnceLock::new();

/// The log thread, started on first use; `None` if it could not be started (the lines are
/// then dropped and counted, and serving goes on).
pub fn get() -> Option<&'static Sink> {
    SINK.get_or_init(start).as_ref()
}

/// The log thread if one was started: exiting or signalling should not start one.
pub fn started() -> Option<&'static Sink> {
    SINK.get().and_then(Option::as_ref)
}

/// SIGUSR1: reopen the log file, so that lines go to a fresh file after logrotate renamed the
/// old one. Nothing to do if nothing was ever logged.
pub fn reopen() {
    if let Some(sink) = started() {
        let _ = sink.control.send(Control::Reopen);
    }
}

fn start() -> Option<Sink> {
    let (batches, batch_rx) = bounded(QUEUE_BATCHES);
    let (control, control_rx) = unbounded();
    // A spare for every queued batch and one per worker in hand is more than steady state
    // needs; beyond it, buffers are freed.
    let (spare_tx, spare) = bounded(QUEUE_BATCHES);
    let mut writer = Writer {
        target: AccessLog::Off,
        out: None,
        errors: Throttle::default(),
        control: control_rx,
    };
    let spawned = std::thread::Builder::new()
        .name("cerberus-access-log".into())
        .spawn(move || writer.run(&batch_rx, &spare_tx));
    match spawned {
        Ok(_) => Some(Sink {
            batches,
            control,
            spare,
        }),
        Err(e) => {
            eprintln!("cerberus: access log: cannot start its thread: {e}; lines are dropped");
            None
        }
    }
}

/// Where lines are written now.
enum Output {
    Stderr,
    File(File),
}

/// The log thread's state.
struct Writer {
    /// Where lines should go.
    target: AccessLog,
    /// The open destination; `None` when off, or not open (yet, or again).
    out: Option<Output>,
    /// Keeps a failing destination to one line a second on stderr.
    errors: Throttle,
    control: Receiver<Control>,
}

impl Writer {
    fn run(&mut self, batches: &Receiver<Batch>, spare: &Sender<Vec<u8>>) {
        loop {
            // A new destination applies before the next batch is written.
            while let Ok(c) = self.control.try_recv() {
                self.apply(c);
            }
            select! {
                recv(self.control) -> c => match c {
                    Ok(c) => self.apply(c),
                    Err(_) => return,
                },
                recv(batches) -> b => match b {
                    Ok(Batch::Lines(mut lines)) => {
                        self.write(&lines);
                        lines.clear();
                        let _ = spare.try_send(lines);
                    }
                    Ok(Batch::Sync(done)) => drop(done.send(())),
                    Err(_) => return,
                },
            }
        }
    }

    fn apply(&mut self, control: Control) {
        match control {
            Control::Target(target) if target == self.target => {}
            Control::Target(target) => {
                self.target = target;
                self.open();
            }
            Control::Reopen => self.open(),
        }
    }

    /// (Re)open the destination; a failure is reported, and retried at the next write.
    fn open(&mut self) {
        self.out = None;
        self.out = match &self.target {
            AccessLog::Off => None,
            AccessLog::Stderr => Some(Output::Stderr),
            // Blocks on a FIFO until something reads it: only this thread waits.
            AccessLog::File(path) => match OpenOptions::new()
                .append(true)
                .create(true)
                .mode(FILE_MODE)
                .open(path)
            {
                Ok(file) => Some(Output::File(file)),
                Err(e) => {
                    self.report(&e);
                    None
                }
            },
        };
    }

    /// Write every byte of `lines`, retrying a failing destination until it works or the log
    /// is turned off. Meanwhile the queue fills, and workers count what they drop.
    fn write(&mut self, lines: &[u8]) {
        let mut at = 0;
        while at < lines.len() {
            if matches!(self.target, AccessLog::Off) {
                return;
            }
            let result = match &mut self.out {
                None => Err(io::Error::other("not open")),
                Some(Output::Stderr) => io::stderr().write(&lines[at..]),
                Some(Output::File(file)) => file.write(&lines[at..]),
            };
            match result {
                Ok(0) => self.fail(&io::ErrorKind::WriteZero.into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.fail(&e),
            }
        }
    }

    /// The destination failed: say so (throttled), wait for a reopen, a new target or the
    /// retry interval, and open again.
    fn fail(&mut self, e: &io::Error) {
        if self.out.is_some() {
            self.report(e);
        }
        match self.control.recv_timeout(RETRY) {
            Ok(c) => self.apply(c),
            Err(RecvTimeoutError::Timeout) => self.open(),
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(RETRY),
        }
    }

    fn report(&mut self, e: &io::Error) {
        if let Some(held) = self.errors.note(Instant::now()) {
            let what = match &self.target {
                AccessLog::File(path) => path.display().to_string(),
                _ => "stderr".to_owned(),
            };
            eprintln!(
                "cerberus: access log {what}: {e}; retrying every {RETRY:?}, lines are dropped \
                 while it fails{held}"
            );
        }
    }
}
