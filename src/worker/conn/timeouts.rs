//! Timeout policy: what a connection's one timer waits for, how long by the config the
//! connection is served under, and when a deadline restarts; and the minimum rates, which
//! close a client that keeps a gap timeout at bay by trickling ([`Rates`]). The timing itself
//! (the wheel) belongs to the worker; this only decides.

use std::time::Duration;

use crate::config::Config;
use crate::stats::CloseReason;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that closing does not reset the connection before the client has read our last response.
pub const LINGER: Duration = Duration::from_secs(2);
/// While draining, how long a connection with nothing in flight may stay open before it is
/// closed. A client sending its next request in this time gets it answered (with
/// `Connection: close`) instead of finding the connection closed under it.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);

/// How long a connection may wait for its own responses without any of them going out: longer
/// than any delay or drip a route allows (`max_delay` is at most an hour, and a drip's pieces
/// span at most as much), so it only ends a connection whose responses were lost to a bug.
pub const RESPOND_BACKSTOP: Duration = Duration::from_secs(2 * 3600 + 60);

/// What the connection's timer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A request head (from accept, or from its first byte).
    Head,
    /// More of a request body.
    Body,
    /// The next request on a kept-alive connection.
    Idle,
    /// The client to read its responses.
    Write,
    /// The client to close after our final response.
    Linger,
    /// Its own responses, which complete later: their alarms wake it, and this deadline is
    /// only a backstop.
    Respond,
    /// The end of its TLS handshake (from accept).
    Handshake,
}

/// Where the connection is, as far as its timer cares (see [`Timeouts::rearm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing has arrived since accept.
    Fresh,
    /// Part of a request head has arrived.
    Head,
    /// A head is complete and its body is arriving.
    Body,
    /// Between requests.
    Idle,
    /// Our write side is shut; waiting for the client to close.
    Lingering,
    /// Between requests (or holding them back), owing responses that complete later.
    Responding,
    /// In its TLS handshake.
    Handshake,
}

/// What happened since the timer was last armed: a deadline that measures progress restarts
/// only when there was some.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Response bytes went out (the write deadline measures this, not reads).
    pub wrote: bool,
    /// A request was answered, so what is pending now is a new request whose head deadline
    /// runs from now.
    pub answered: bool,
}

/// A connection's timer state: what its armed deadline waits for.
#[derive(Debug)]
pub struct Timeouts {
    waiting: Waiting,
    /// Never armed yet: the first call arms whatever it is waiting for.
    armed: bool,
}

impl Timeouts {
    /// A connection's timer before its first arming (the header timeout, from accept).
    pub fn new() -> Timeouts {
        Timeouts {
            waiting: Waiting::Head,
            armed: false,
        }
    }

    /// What the armed deadline waits for.
    pub fn waiting(&self) -> Waiting {
        self.waiting
    }

    /// The timeout to arm now, if the deadline must move: when what the connection waits for
    /// changed, when it made progress that restarts the deadline, or when `force`d (a drain
    /// started and timeouts shorten). A lingering connection keeps its deadline, already short.
    // Called for plain and HTTPS connections alike; inline in each.
    #[inline(always)]
    pub fn rearm(
        &mut self,
        stage: Stage,
        owes_output: bool,
        progress: Progress,
        config: &Config,
        draining: bool,
        force: bool,
    ) -> Option<Duration> {
        let (waiting, restart) = waiting_for(stage, owes_output, progress);
        let same = self.armed && waiting == self.waiting;
        if same && (waiting == Waiting::Linger || (!force && !restart)) {
            return None;
        }
        self.armed = true;
        self.waiting = waiting;
        Some(timeout(waiting, config, draining, stage == Stage::Fresh))
    }
}

/// What the timer should wait for, and whether its deadline restarts (a change of what it
/// waits for always restarts it).
fn waiting_for(stage: Stage, owes_output: bool, progress: Progress) -> (Waiting, bool) {
    match stage {
        Stage::Lingering => (Waiting::Linger, false),
        // From accept, whatever arrives: a handshake trickled byte by byte still ends on time.
        Stage::Handshake => (Waiting::Handshake, false),
        // Only bytes the client took count as progress: reading from a client that does not
        // read its responses must not keep its connection open.
        _ if owes_output => (Waiting::Write, progress.wrote),
        Stage::Body => (Waiting::Body, true),
        // The head deadline runs from the first byte of the request still incomplete (or from
        // accept) and is not pushed back by later bytes of the same request.
        Stage::Fresh => (Waiting::Head, false),
        Stage::Head => (Waiting::Head, progress.answered),
        // Any event on an idle connection is activity (a request was answered).
        Stage::Idle => (Waiting::Idle, true),
        Stage::Responding => (Waiting::Respond, progress.wrote || progress.answered),
    }
}

/// The minimum rates: while a connection reads a body, or owes a client output, the bytes that
/// move in each `min_rate_window` must average at least `min_body_rate` / `min_send_rate`. The
/// first window after the stage begins is the grace. They are judged at the connection's
/// events: a client that trickles makes events, and one that goes silent meets the gap
/// timeouts (`body_timeout`, `write_timeout`) instead.
#[derive(Debug, Default)]
pub struct Rates {
    /// The tick the current window started at, plus one (0: no window, not in a stage that
    /// is judged).
    start: u32,
    /// Bytes moved in the current window.
    bytes: u32,
    /// Judging a body (`false`) or output (`true`).
    sending: bool,
}

impl Rates {
    /// Count `moved` bytes for the stage the connection is in, at `tick` (in 10 ms ticks), and
    /// say whether a window just ended below its minimum rate.
    pub fn judge(
        &mut self,
        stage: Stage,
        owes_output: bool,
        moved: (u32, u32),
        tick: u64,
        config: &Config,
    ) -> Option<CloseReason> {
        let (sending, min, bytes) = match (stage, owes_output) {
            (_, true) => (true, config.min_send_rate.0, moved.1),
            (Stage::Body, false) => (false, config.min_body_rate.0, moved.0),
            _ => {
                self.start = 0;
                return None;
            }
        };
        let tick = (tick as u32).max(1);
        if min == 0 || self.start == 0 || self.sending != sending {
            *self = Rates {
                start: tick,
                bytes: 0,
                sending,
            };
            return None;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        let elapsed_ms =
            u64::from(tick.wrapping_sub(self.start)) * super::super::timer::TICK_MILLIS;
        if elapsed_ms < config.min_rate_window.as_millis() as u64 {
            return None;
        }
        if u64::from(self.bytes) * 1000 < min.saturating_mul(elapsed_ms) {
            return Some(match sending {
                true => CloseReason::MinSendRate,
                false => CloseReason::MinBodyRate,
            });
        }
        self.start = tick;
        self.bytes = 0;
        None
    }
}

/// How long to wait for `waiting`, by `config`. While draining, a connection with nothing in
/// flight gets only a short grace.
fn timeout(waiting: Waiting, config: &Config, draining: bool, fresh: bool) -> Duration {
    match waiting {
        Waiting::Head if draining && fresh => DRAIN_IDLE_GRACE.min(config.header_timeout),
        Waiting::Head => config.header_timeout,
        Waiting::Body => config.body_timeout,
        Waiting::Idle if draining => DRAIN_IDLE_GRACE.min(config.keepalive_timeout),
        Waiting::Idle => config.keepalive_timeout,
        Waiting::Write => config.write_timeout,
        Waiting::Linger => LINGER,
        Waiting::Respond => RESPOND_BACKSTOP,
        Waiting::Handshake => config
            .tls
            .as_ref()
            .map_or(config.header_timeout, |tls| tls.handshake_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(4),
            ..Config::default()
        }
    }

    #[test]
    fn each_stage_waits_by_its_own_timeout_from_the_given_config() {
        let c = config();
        let none = Progress::default();
        let cases = [
            (Stage::Fresh, false, 1),
            (Stage::Head, false, 1),
            (Stage::Body, false, 2),
            (Stage::Idle, false, 3),
            (Stage::Idle, true, 4),
            (Stage::Body, true, 4),
        ];
        for (stage, owes, secs) in cases {
            let mut t = Timeouts::new();
            let got = t.rearm(stage, owes, none, &c, false, false);
            assert_eq!(
                got,
                Some(Duration::from_secs(secs)),
                "{stage:?} owes={owes}"
            );
        }
        let mut t = Timeouts::new();
        assert_eq!(
            t.rearm(Stage::Lingering, false, none, &c, false, false),
            Some(LINGER)
        );
    }

    #[test]
    fn a_deadline_moves_only_on_change_progress_or_force() {
        let c = config();
        let none = Progress::default();
        let mut t = Timeouts::new();
        assert!(t
            .rearm(Stage::Fresh, false, none, &c, false, false)
            .is_some());
        // More bytes of the same head do not push its deadline back.
        assert_eq!(t.rearm(Stage::Head, false, none, &c, false, false), None);
        // A request answered: the next head's deadline runs from now.
        let answered = Progress {
            answered: true,
            ..none
        };
        assert!(t
            .rearm(Stage::Head, false, answered, &c, false, false)
            .is_some());
        // Writing without progress keeps the write deadline; a byte taken restarts it.
        assert!(t.rearm(Stage::Idle, true, none, &c, false, false).is_some());
        assert_eq!(t.rearm(Stage::Idle, true, none, &c, false, false), None);
        let wrote = Progress {
            wrote: true,
            ..none
        };
        assert!(t
            .rearm(Stage::Idle, true, wrote, &c, false, false)
            .is_some());
        // A drain shortens an idle connection's wait to the grace.
        assert!(t
            .rearm(Stage::Idle, false, none, &c, false, false)
            .is_some());
        let got = t.rearm(Stage::Idle, false, none, &c, true, true);
        assert_eq!(got, Some(DRAIN_IDLE_GRACE));
        // Lingering keeps its first deadline, even when forced.
        assert!(t
            .rearm(Stage::Lingering, false, none, &c, true, true)
            .is_some());
        assert_eq!(t.rearm(Stage::Lingering, false, none, &c, true, true), None);
    }

    #[test]
    fn a_window_below_the_minimum_rate_closes_and_one_above_starts_the_next() {
        let c = Config {
            min_body_rate: crate::config::Rate(1000),
            min_send_rate: crate::config::Rate(4000),
            min_rate_window: Duration::from_secs(2),
            ..Config::default()
        };
        let mut r = Rates::default();
        // Ticks are 10 ms. The body's window opens at tick 100; 1,500 bytes by tick 250 (1.5 s)
        // is not judged yet; 2,100 by tick 310 (2.1 s) is 1,000 B/s: it passes.
        assert_eq!(r.judge(Stage::Body, false, (0, 0), 100, &c), None);
        assert_eq!(r.judge(Stage::Body, false, (1_500, 0), 250, &c), None);
        assert_eq!(r.judge(Stage::Body, false, (600, 0), 310, &c), None);
        // The next window gets 1,000 bytes in 2.5 s: 400 B/s.
        assert_eq!(
            r.judge(Stage::Body, false, (1_000, 0), 560, &c),
            Some(CloseReason::MinBodyRate)
        );
        // Owing output is judged by the send rate, from a window of its own.
        let mut r = Rates::default();
        assert_eq!(r.judge(Stage::Idle, true, (0, 0), 10, &c), None);
        assert_eq!(
            r.judge(Stage::Idle, true, (0, 7_000), 220, &c),
            Some(CloseReason::MinSendRate)
        );
        // Between requests nothing is judged, and off is off.
        let mut r = Rates::default();
        assert_eq!(r.judge(Stage::Idle, false, (0, 0), 10, &c), None);
        assert_eq!(r.judge(Stage::Idle, false, (0, 0), 9_000, &c), None);
        let off = Config {
            min_body_rate: crate::config::Rate(0),
            ..c
        };
        let mut r = Rates::default();
        assert_eq!(r.judge(Stage::Body, false, (0, 0), 10, &off), None);
        assert_eq!(r.judge(Stage::Body, false, (1, 0), 9_000, &off), None);
    }
}
