//! The worker's alarms: the instants at which connections asked to be woken, because a
//! response they owe is due (see `conn::pending`). The timing wheel's 10 ms ticks, and
//! `epoll_wait`'s whole milliseconds, are too coarse for a response delayed by 5 ms, so the
//! alarms keep a heap of instants and a `timerfd` set to the soonest: epoll then wakes the loop
//! at that instant, to within the thread's timer slack.
//!
//! An alarm is only a wake-up: the connection checks what is due itself. So an alarm left
//! behind (its connection closed, or the key went to a new connection) costs one look, and
//! nothing needs cancelling.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::os::timerfd::TimerFd;

/// A heap of (instant, connection key), and a timer set to the soonest.
#[derive(Debug)]
pub struct Alarms {
    /// Pending alarms, soonest first.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Made on first use: a worker that never defers a response never has one.
    timer: Option<TimerFd>,
    /// The instant the timer is set for, if it is set.
    set_for: Option<Instant>,
}

impl Alarms {
    /// No alarms.
    pub fn new() -> Alarms {
        Alarms {
            heap: BinaryHeap::new(),
            timer: None,
            set_for: None,
        }
    }

    /// Wake the connection at `key` at `when`.
    pub fn set(
        &mut self,
        key: usize,
        when: Instant,
        registry: &Registry,
        token: Token,
    ) -> io::Result<()> {
        self.heap.push(Reverse((when, key)));
        if self.set_for.is_some_and(|t| t <= when) {
            return Ok(());
        }
        if self.timer.is_none() {
            let timer = TimerFd::new()?;
            registry.register(&mut SourceFd(&timer.as_raw_fd()), token, Interest::READABLE)?;
            self.timer = Some(timer);
        }
        self.arm(when)
    }

    /// Are any alarms set (stale ones included)?
    #[inline]
    pub fn waiting(&self) -> bool {
        !self.heap.is_empty()
    }

    /// Is an alarm due by `now`?
    #[inline]
    pub fn due(&self, now: Instant) -> bool {
        self.heap.peek().is_some_and(|&Reverse((at, _))| at <= now)
    }

    /// Take the keys of every alarm due by `now` into `due`, and set the timer for the next.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<usize>) -> io::Result<()> {
        let Some(&Reverse((first, _))) = self.heap.peek() else {
            return Ok(());
        };
        if first > now {
            return Ok(());
        }
        while let Some(&Reverse((when, key))) = self.heap.peek() {
            if when > now {
                break;
            }
            self.heap.pop();
            due.push(key);
        }
        self.set_for = None;
        match self.heap.peek() {
            Some(&Reverse((next, _))) => self.arm(next),
            None => Ok(()),
        }
    }

    /// Set the timer for `when`. The kernel clears an expiry not yet read when a timer is set
    /// again, and the registration is edge-triggered, so the timer is never read.
    fn arm(&mut self, when: Instant) -> io::Result<()> {
        if let Some(timer) = &self.timer {
            // From a fresh clock, not the loop turn's start: a timer set relative to that would
            // fire late by however long the turn has run.
            timer.set(when.saturating_duration_since(Instant::now()))?;
            self.set_for = Some(when);
        }
        Ok(())
    }

    /// Alarms waiting (stale ones included).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn alarms_come_due_in_order_of_their_instants_and_not_before() {
        let poll = mio::Poll::new().unwrap();
        let mut alarms = Alarms::new();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for (key, after) in [(1, 30), (2, 10), (3, 20), (4, 10)] {
            alarms
                .set(key, t0 + ms(after), poll.registry(), Token(9))
                .unwrap();
        }
        let mut due = Vec::new();
        alarms.expire(t0 + ms(9), &mut due).unwrap();
        assert!(due.is_empty());
        alarms.expire(t0 + ms(20), &mut due).unwrap();
        due[..2].sort_unstable();
        assert_eq!(due, [2, 4, 3]);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms.set_for, Some(t0 + ms(30)));
    }
}
