//! Balancing connections across the workers of a generation by load.
//!
//! Each worker accepts from its own `SO_REUSEPORT` listener, and the kernel picks the listener
//! by a hash of the connection's addresses: with few long connections (a keep-alive load test,
//! a proxy's pool) that is lumpy, and some workers sit idle while others are overloaded. So a
//! worker that accepts a connection while over its fair share hands it to the least loaded
//! worker of its generation ([`Team::assign`]), through that worker's command channel, and
//! wakes it.
//!
//! Counts are not the whole load: a connection that pipelines is worth many that send a
//! request a second. So every [`REBALANCE`] each worker also publishes how many requests it
//! answered, and one well above the mean moves some of its busiest connections, between
//! requests, to the least busy worker, as long as each move narrows the gap between the two
//! ([`Team::plan_moves`]). A connection between requests
//! is only its socket; the kernel holds whatever arrives meanwhile, and the new worker's
//! registration reports it.
//!
//! The load of a worker is the number of connections assigned to it: its open connections and
//! those on their way to it. Every assignment is a compare-and-swap from the count its
//! decision saw, so two workers deciding at once cannot both fill the same gap. A worker
//! exits only by swapping a count of zero for [`GONE`] ([`Team::retire`]), after which nobody
//! can assign it a connection: so a connection on its way is never dropped with its channel.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{SendError, Sender};
use mio::Waker;

use super::Command;

/// A worker's command channel and the waker of its loop.
#[derive(Clone)]
pub struct Mailbox {
    /// Commands to the worker.
    pub commands: Sender<Command>,
    /// Interrupts the worker's `poll`.
    pub waker: Arc<Waker>,
}

impl Mailbox {
    /// Send a command and wake the worker to read it; `false` if the worker is gone.
    pub fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        if sent {
            let _ = self.waker.wake();
        }
        sent
    }
}

/// The load of a worker that has exited: no assignment can swap it.
const GONE: usize = usize::MAX;

/// One worker's load, alone on its cache line: every worker reads all of them at each accept,
/// and each changes at its own worker's accepts and closes.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Load(AtomicUsize);

/// The workers of one generation, as a connection may be handed among them.
pub struct Team {
    /// Each worker's assigned connections.
    loads: Box<[Load]>,
    /// Each worker's requests in its last [`REBALANCE`], less what it moved on since, plus
    /// what was moved to it.
    rates: Box<[Load]>,
    /// Each worker's mailbox, by worker id.
    mailboxes: Vec<Mailbox>,
}

/// Over the fair share, a worker keeps this much more, in percent of the mean (rounded down),
/// before it hands connections on. 4% keeps the busiest worker within 1.05x of the mean
/// (the share itself is rounded up, so below 1.04x + 1/mean), and saves a hand-off (a channel
/// message and a wake-up) for many accepts of short connections, whose counts wobble around
/// the mean. Below a mean of 25 it is 0: exact shares.
const SLACK_PERCENT: usize = 4;

/// How often a worker compares its request rate with its team's, and may move connections.
pub const REBALANCE: std::time::Duration = std::time::Duration::from_millis(200);

/// A worker moves connections only while it answers more than this share of the mean, in
/// percent: closer than that, moving costs more than it evens out. The same 10% of the mean
/// is the margin a move must leave between the two workers, against measurement noise.
const OVERLOAD_PERCENT: usize = 110;

/// Nor below this many requests per [`REBALANCE`] (100 a second): a quiet server needs no
/// evening out.
const MIN_REQUESTS: usize = 20;

/// Only a connection that answered at least this many requests in the last [`REBALANCE`]
/// (25 a second) is worth moving: fewer is noise, such as the one request each connection of
/// a burst of new ones sends, and moving those would undo the even counts of accept.
pub const MIN_MOVED_REQUESTS: u32 = 5;

impl Team {
    /// Publish the requests worker `me` answered in the last [`REBALANCE`], and decide whether
    /// it should move some of its connections: `Some((to, gap))` when it answers well over
    /// the mean, where `to` is the least busy worker and `gap` how many more requests `me`
    /// answered than `to`, less a margin. Moving a connection that answered `s` requests
    /// with `s < gap` lowers the busier of the two and leaves the other below where the busier
    /// was (their sum of squares falls, so moves cannot go round in circles); the gap then
    /// shrinks by `2 s`. Report what moved with [`Team::moved`].
    pub fn plan_moves(&self, me: usize, requests: usize) -> Option<(usize, usize)> {
        self.rates[me].0.store(requests, Relaxed);
        let (mut sum, mut live) = (0, 0);
        let (mut least, mut least_rate) = (me, usize::MAX);
        for (i, (rate, load)) in self.rates.iter().zip(self.loads.iter()).enumerate() {
            if load.0.load(Relaxed) == GONE {
                continue;
            }
            let r = rate.0.load(Relaxed);
            sum += r;
            live += 1;
            if r < least_rate {
                (least, least_rate) = (i, r);
            }
        }
        let mean = sum / live.max(1);
        if least == me || requests < MIN_REQUESTS || requests * 100 <= mean * OVERLOAD_PERCENT {
            return None;
        }
        let margin = mean * (OVERLOAD_PERCENT - 100) / 100;
        let gap = (requests - least_rate).saturating_sub(margin);
        (gap > 0).then_some((least, gap))
    }

    /// Worker `me` moved connections that answered `requests` to worker `to`: count them
    /// there at once, so that other workers deciding before `to` publishes again see it.
    pub fn moved(&self, me: usize, to: usize, requests: usize) {
        self.rates[to].0.fetch_add(requests, Relaxed);
        self.rates[me].0.fetch_sub(requests, Relaxed);
    }

    /// Move one connection's count from worker `from` to worker `to`; `false` (and nothing
    /// changed) if `to` is gone.
    pub fn transfer(&self, from: usize, to: usize) -> bool {
        let mut seen = self.loads[to].0.load(Relaxed);
        loop {
            if seen == GONE {
                return false;
            }
            match self.loads[to]
                .0
                .compare_exchange(seen, seen + 1, Relaxed, Relaxed)
            {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        self.release(from);
        true
    }

    /// A team of these workers' mailboxes, in worker order, with nothing assigned yet.
    pub fn new(mailboxes: Vec<Mailbox>) -> Team {
        Team {
            loads: mailboxes.iter().map(|_| Load::default()).collect(),
            rates: mailboxes.iter().map(|_| Load::default()).collect(),
            mailboxes,
        }
    }

    /// Workers in the team.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.loads.len()
    }

    /// Count a connection worker `me` accepted, and choose who serves it: `me`, while that
    /// keeps it within its fair share (the new total over the workers, rounded up, plus the
    /// slack), else the least loaded worker. `balance`: `false` always keeps it (the kernel's
    /// hash decides), still counting.
    pub fn assign(&self, me: usize, balance: bool) -> usize {
        if self.loads.len() == 1 {
            self.keep(me);
            return me;
        }
        loop {
            let mut total = 1;
            let (mut least, mut least_load) = (me, usize::MAX);
            let mut mine = 0;
            let mut live = 0;
            for (i, load) in self.loads.iter().enumerate() {
                let l = load.0.load(Relaxed);
                if l == GONE {
                    continue;
                }
                live += 1;
                total += l;
                if i == me {
                    mine = l;
                }
                if l < least_load {
                    (least, least_load) = (i, l);
                }
            }
            let n = live.max(1);
            let fair = total.div_ceil(n) + total / n * SLACK_PERCENT / 100;
            let target = if !balance || mine < fair { me } else { least };
            let seen = if target == me { mine } else { least_load };
            let swapped = self.loads[target]
                .0
                .compare_exchange(seen, seen + 1, Relaxed, Relaxed);
            if swapped.is_ok() {
                return target;
            }
        }
    }

    /// Worker `w` closed a connection (or adopted none after all).
    pub fn release(&self, w: usize) {
        self.loads[w].0.fetch_sub(1, Relaxed);
    }

    /// Connections assigned to worker `w`, open or on their way to it.
    #[cfg(test)]
    pub fn load(&self, w: usize) -> usize {
        self.loads[w].0.load(Relaxed)
    }

    /// Give worker `to` a connection assigned to it ([`Command::Adopt`] or
    /// [`Command::Resume`]). If its channel is closed (it failed), the assignment is undone
    /// and the command comes back.
    pub fn hand_off(&self, to: usize, command: Command) -> Result<(), Command> {
        let mailbox = &self.mailboxes[to];
        match mailbox.commands.send(command) {
            Ok(()) => {
                let _ = mailbox.waker.wake();
                Ok(())
            }
            Err(SendError(command)) => {
                self.release(to);
                Err(command)
            }
        }
    }

    /// Workers in the team.
    pub fn size(&self) -> usize {
        self.loads.len()
    }

    /// Count one more connection for worker `w` (one handed back to it).
    pub fn keep(&self, w: usize) {
        self.loads[w].0.fetch_add(1, Relaxed);
    }

    /// Worker `w` may exit if nothing is assigned to it: then it never will be.
    pub fn retire(&self, w: usize) -> bool {
        self.loads[w]
            .0
            .compare_exchange(0, GONE, Relaxed, Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(n: usize) -> Team {
        let mailboxes = (0..n)
            .map(|_| {
                let poll = mio::Poll::new().unwrap();
                Mailbox {
                    commands: crossbeam_channel::unbounded().0,
                    waker: Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap()),
                }
            })
            .collect();
        Team::new(mailboxes)
    }

    #[test]
    fn a_lumpy_stream_of_accepts_ends_in_exact_shares() {
        let t = team(16);
        // Every connection lands on worker 3 or 7, as a bad hash would have it.
        for i in 0..64 {
            t.assign(if i % 3 == 0 { 7 } else { 3 }, true);
        }
        assert!((0..16).all(|w| t.load(w) == 4), "{:?}", loads(&t));
    }

    #[test]
    fn the_slack_keeps_connections_local_within_five_percent() {
        let t = team(2);
        for _ in 0..200 {
            t.assign(0, true);
        }
        // The mean is 100; worker 0 keeps up to 4 over it before handing on.
        assert_eq!(loads(&t), vec![104, 96]);
        let t = team(2);
        for _ in 0..6 {
            t.assign(0, false);
        }
        assert_eq!(
            loads(&t),
            vec![6, 0],
            "the hash mode still counts, never hands on"
        );
        t.release(0);
        assert_eq!(t.load(0), 5);
    }

    #[test]
    fn workers_assigning_at_once_never_overfill_a_share() {
        let t = Arc::new(team(8));
        let threads: Vec<_> = (0..4)
            .map(|me| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..200).for_each(|_| {
                        t.assign(me, true);
                    })
                })
            })
            .collect();
        threads.into_iter().for_each(|h| h.join().unwrap());
        let l = loads(&t);
        // The share at the end: 100 each, plus the 4% slack.
        assert_eq!(l.iter().sum::<usize>(), 800);
        assert!(l.iter().all(|&n| (96..=104).contains(&n)), "{l:?}");
    }

    #[test]
    fn a_retired_worker_is_never_assigned_a_connection() {
        let t = team(3);
        assert!(t.retire(2));
        for _ in 0..6 {
            t.assign(0, true);
        }
        assert_eq!(loads(&t)[..2], [3, 3]);
        assert_eq!(t.load(2), GONE);
        // A worker with a connection on its way cannot retire.
        assert!(!t.retire(1));
    }

    #[test]
    fn a_worker_well_above_the_mean_rate_may_narrow_its_gap_to_the_least_busy() {
        let t = team(4);
        assert_eq!(t.plan_moves(3, 10), None, "too quiet to bother");
        // Rates 0, 0, 100, 10: mean 27, margin 2; the gap to worker 0 is 100 - 0 - 2.
        assert_eq!(t.plan_moves(2, 100), Some((0, 98)));
        t.moved(2, 0, 40);
        // Rates 40, 30, 60, 10: worker 1 is under the mean of 35.
        assert_eq!(t.plan_moves(1, 30), None);
        // Rates 36, 30, 60, 10: worker 0 is within 10% of the mean of 34.
        assert_eq!(t.plan_moves(0, 36), None);
        // Worker 2 at 60 is over: its gap to worker 3 is 60 - 10 - 3.
        assert_eq!(t.plan_moves(2, 60), Some((3, 47)));
        let t = team(2);
        t.assign(0, false);
        assert!(t.transfer(0, 1));
        assert_eq!(loads(&t), vec![0, 1]);
        let t = team(2);
        t.assign(0, false);
        assert!(t.retire(1));
        assert!(
            !t.transfer(0, 1),
            "no connection moves to a worker that has exited"
        );
        assert_eq!(t.load(0), 1);
    }

    fn loads(t: &Team) -> Vec<usize> {
        (0..t.len()).map(|w| t.load(w)).collect()
    }
}
